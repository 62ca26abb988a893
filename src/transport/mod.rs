//! Transports: where an image comes from and where it goes.
//!
//! Names are spelled as skopeo spells them (`oci:DIR[:TAG]`,
//! `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:TAG]`, `docker://REF`,
//! or a bare `REF`), so that a user can move the same string between
//! hoist, skopeo and podman.
//!
//! Reading is split in two. A [`Source`] finds the image a name means
//! (tag, then platform through any index) and opens its blobs, verifying
//! every byte against its digest; it never writes anything. [`load_base`]
//! then imports what it found into the store, and [`crate::ops::inspect`] only
//! reads it. The three local formats share the rest: an OCI layout is read
//! the same way from a folder or from a tar (indexed once, then read by
//! offset, never extracted), and a docker-archive is turned into an OCI
//! manifest on the way in so that the rest of hoist sees one shape.
//!
//! Writing ([`write_output`]) builds each output beside its final path and
//! renames it into place only when it is complete, so a failure never
//! leaves a half-written image where a user or a tool would find it.

mod docker_archive;
pub mod engine;
mod layout;
mod output;
mod source;
mod tarfile;
#[cfg(test)]
mod tests;

/// `manifest.json` of a docker-archive, for the property tests.
#[cfg(test)]
pub(crate) fn fuzz_parse_manifest_json(bytes: &[u8]) -> Result<(), TransportError> {
    docker_archive::parse_manifest_json(bytes, "fuzz.tar").map(drop)
}

use std::io;

use crate::digest::Digest;
use crate::image::{media, Descriptor, ImageConfig, ImageError, Manifest, Platform};
use crate::store::{Store, StoreError};

pub use crate::reference::name::{is_valid_oci_ref_name, normalize_name};
pub use crate::reference::transport::{NameError, Transport};
pub use source::{open_source, Digester, HashOnly, IndexSummary, RawBlob, Resolved, Source};

/// Manifests, indexes, configs and `manifest.json` files larger than this
/// are refused rather than read: they are JSON held in memory, and a real
/// one is a few KiB.
pub const MAX_JSON_SIZE: u64 = 4 << 20;

/// Joins a list for an error message.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

/// Parses a transport name as [`Transport::parse`] does, and recognises a
/// bare path (`./image`, `/srv/base.tar`) by what it holds: a folder with
/// `index.json` is `oci:`, a tar holding `index.json` is `oci-archive:`,
/// one holding only `manifest.json` is `docker-archive:` (what `docker
/// save` writes). Anything else gets the parse error, which names the
/// three prefixes.
pub fn recognise(s: &str) -> Result<Transport, TransportError> {
    match Transport::parse(s) {
        Err(NameError::BarePath { .. }) => {}
        other => return Ok(other?),
    }
    let path = match (s.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => std::path::PathBuf::from(home).join(rest),
        _ => std::path::PathBuf::from(s),
    };
    if path.join("index.json").is_file() {
        return Ok(Transport::Oci {
            dir: path,
            tag: None,
        });
    }
    // A file that is no tar (or holds neither document) gets the error
    // naming the three formats, not the tar reader's complaint.
    if let Some(tar) = path
        .is_file()
        .then(|| tarfile::TarIndex::open(&path).ok())
        .flatten()
    {
        if tar.find("index.json")?.is_some() {
            return Ok(Transport::OciArchive {
                file: path,
                tag: None,
            });
        }
        if tar.find("manifest.json")?.is_some() {
            return Ok(Transport::DockerArchive {
                file: path,
                tag: None,
            });
        }
    }
    Err(NameError::BarePath {
        input: s.to_owned(),
    }
    .into())
}

/// Errors reading or writing images through a transport.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("docker://{reference} is a registry, not a file: push there with `hoist build --push --tag {reference}` or `hoist pull IMAGE --output docker://{reference}`, or give oci:, oci-archive: or docker-archive: here")]
    RegistryNotYet { reference: String },
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{path} is not an OCI image layout: {why}")]
    NotLayout { path: String, why: String },
    #[error("{path} is not a readable tar archive: {source}")]
    BadArchive {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{archive}: {why}")]
    BadDockerArchive { archive: String, why: String },
    #[error("{archive}: member name `{path}` {why}; refusing to use it")]
    BadArchivePath {
        archive: String,
        path: String,
        why: String,
    },
    #[error("{archive} has no member `{member}`")]
    MissingMember { archive: String, member: String },
    #[error("blob {digest} is missing: expected at {location}")]
    MissingBlob { digest: Digest, location: String },
    #[error("blob {digest} at {location} is corrupt: {detail}")]
    BlobCorrupt {
        digest: Digest,
        location: String,
        detail: String,
    },
    #[error("reading blob {digest}: {source}")]
    ReadBlob {
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error("{what} is {size} bytes, more than the {limit} bytes hoist reads for a JSON document")]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error("{source_name} has no image named `{tag}`; it has: {}", list(.available))]
    TagNotFound {
        source_name: String,
        tag: String,
        available: Vec<String>,
    },
    #[error("{source_name} holds {count} images; name one as {source_name}:TAG, one of: {}", list(.available))]
    TagRequired {
        source_name: String,
        count: usize,
        available: Vec<String>,
    },
    #[error("{source_name}: {count} entries are named `{tag}` and they do not say their platforms, so hoist cannot choose")]
    AmbiguousTag {
        source_name: String,
        tag: String,
        count: usize,
    },
    #[error("{source_name} has no image for platform {wanted}; it has: {}", list(.available))]
    NoPlatform {
        source_name: String,
        wanted: String,
        available: Vec<String>,
    },
    #[error("{source_name} is an image for {have}, not for the wanted platform {wanted}")]
    PlatformMismatch {
        source_name: String,
        wanted: String,
        have: String,
    },
    #[error("{source_name}: indexes nested deeper than {depth} levels at {digest}; refusing to follow further")]
    IndexTooDeep {
        source_name: String,
        digest: Digest,
        depth: usize,
    },
    #[error("{source_name}: manifest {digest} has {layers} layers but its config lists {diff_ids} diff_ids")]
    LayerCountMismatch {
        source_name: String,
        digest: Digest,
        layers: usize,
        diff_ids: usize,
    },
    #[error(
        "layer {digest} uncompresses to {actual}, but the config says its diff_id is {expected}"
    )]
    DiffIdMismatch {
        digest: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("{path} {why}; refusing to overwrite it")]
    OutputExists { path: String, why: String },
    #[error(transparent)]
    LayerRefused(#[from] Box<crate::layer::verify::VerifyError>),
    #[error("cannot write {path}: {why}")]
    CannotCreate { path: String, why: String },
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error("{name} is an output only: hoist does not read images out of a local engine; save it first (`docker save -o base.tar IMAGE`, `podman save -o base.tar IMAGE`) and give docker-archive:base.tar")]
    OutputOnly { name: String },
}

/// A base image read from a source and imported into the store.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// Where it came from, as the user would spell it.
    pub source: String,
    /// The digest of the manifest bytes read (or of the OCI manifest
    /// synthesized for a docker-archive image).
    pub manifest_digest: Digest,
    pub config: ImageConfig,
    pub config_digest: Digest,
    /// Layer descriptors with OCI media types; every blob is in the store.
    pub layers: Vec<Descriptor>,
    /// The config's platform, with the index entry's variant when the
    /// config has none (umoci cannot write one).
    pub platform: Platform,
}

/// An image hoist built; every blob it names is in the store.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// The OCI manifest blob's descriptor, with its platform set.
    pub manifest: Descriptor,
    pub manifest_json: Manifest,
    pub config_json: ImageConfig,
}

/// Reads the base `t` names for `platform`, imports its manifest, config
/// and layers into `store` (each verified against its digest), and
/// returns what the build needs to know about it.
///
/// Layers are imported first and the manifest last, so a manifest in the
/// store always has its blobs beside it.
pub fn load_base(
    t: &Transport,
    platform: &Platform,
    store: &Store,
) -> Result<BaseImage, TransportError> {
    let mut src = open_source(t)?;
    let resolved = src.resolve(Some(platform), &mut source::Importer(store))?;
    for layer in resolved.layers() {
        source::import_blob(&*src, layer, store)?;
    }
    let report = crate::layer::verify::verify_base(
        store,
        src.name(),
        resolved.layers(),
        &resolved.config.rootfs.diff_ids,
    )?;
    store.put_bytes(&resolved.config_bytes)?;
    store.put_bytes(&resolved.manifest_bytes)?;
    let layers = resolved
        .layers()
        .iter()
        .map(|d| {
            let mut d = d.clone();
            d.media_type = media::oci_layer_type(&d.media_type).to_owned();
            d
        })
        .collect::<Vec<_>>();
    let config_digest = resolved.config_digest().clone();
    let (mut layers, mut config) = (layers, resolved.config);
    crate::layer::verify::correct_base(&report, &mut layers, &mut config.rootfs.diff_ids);
    Ok(BaseImage {
        source: src.name().to_owned(),
        manifest_digest: resolved.manifest.digest.clone(),
        config_digest,
        config,
        layers,
        platform: resolved.platform,
    })
}

/// Writes several images under the OCI index `index` (in the store) to
/// `t`: an `oci:` layout or an `oci-archive:`.
pub fn write_index_output(
    t: &Transport,
    index: &Descriptor,
    images: &[BuiltImage],
    tags: &[String],
    store: &Store,
) -> Result<(), TransportError> {
    output::write_index(t, index, images, tags, store)
}

/// Writes `image` to `t`, naming it with `tags` (`web:dev` style names,
/// normalised with [`normalize_name`]).
pub fn write_output(
    t: &Transport,
    image: &BuiltImage,
    tags: &[String],
    store: &Store,
) -> Result<(), TransportError> {
    output::write(t, image, tags, store)
}
