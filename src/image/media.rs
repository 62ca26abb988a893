//! Media types of the OCI and Docker image formats, and how they map onto
//! each other.

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// The kind of document a media type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Manifest,
    Index,
    Config,
    Layer,
    Other,
}

impl MediaType {
    pub fn classify(media_type: &str) -> MediaType {
        match media_type {
            OCI_MANIFEST | DOCKER_MANIFEST => MediaType::Manifest,
            OCI_INDEX | DOCKER_LIST => MediaType::Index,
            OCI_CONFIG | DOCKER_CONFIG => MediaType::Config,
            m if m.starts_with("application/vnd.oci.image.layer.")
                || m.starts_with("application/vnd.docker.image.rootfs.") =>
            {
                MediaType::Layer
            }
            _ => MediaType::Other,
        }
    }
}

/// The OCI media type for a layer read from a base, so that the images
/// hoist writes use OCI media types throughout. Docker's gzip layers are
/// byte-identical to OCI's (FACTS.md), so only the name changes.
pub fn oci_layer_type(media_type: &str) -> &str {
    match media_type {
        DOCKER_LAYER_GZIP => OCI_LAYER_GZIP,
        "application/vnd.docker.image.rootfs.diff.tar" => OCI_LAYER,
        "application/vnd.docker.image.rootfs.diff.tar.zstd" => OCI_LAYER_ZSTD,
        DOCKER_LAYER_FOREIGN => "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        other => other,
    }
}
