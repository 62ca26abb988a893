//! An SBOM attached to a pushed image, as the OCI image and distribution
//! specs 1.1 attach artifacts: an image manifest whose `artifactType` is
//! the document's media type, whose config is the empty descriptor
//! (`application/vnd.oci.empty.v1+json`, `{}`), whose one layer is the
//! document, and whose `subject` is the image's manifest.
//!
//! The artifact is pushed by digest (no tag). A registry with the
//! referrers API (`GET /v2/NAME/referrers/DIGEST`) lists it from its
//! `subject` by itself. One without it (CNCF distribution 2.x, Debian's
//! docker-registry) gets the spec's fallback: the tag `sha256-<hex of the
//! subject>` names an image index of the subject's referrers, which the
//! pusher reads, extends with the new artifact, and pushes again. That
//! read-modify-write is not atomic (two pushers at once may drop one's
//! entry); the spec accepts as much.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Format, SbomError};
use crate::digest::Digest;
use crate::image::{media, to_json, Descriptor, Index};
use crate::reference::Reference;
use crate::registry::{self, Client, PushImage, PushPlan};
use crate::store::Store;

/// The OCI 1.1 empty descriptor's media type.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// Its content: `{}`.
pub const EMPTY_CONTENT: &[u8] = b"{}";

const TITLE: &str = "org.opencontainers.image.title";
const CREATED: &str = "org.opencontainers.image.created";

/// How the artifact was made findable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// The registry's referrers API lists it.
    Referrers,
    /// Under the referrers tag (the registry has no referrers API).
    Tag(String),
}

impl std::fmt::Display for How {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            How::Referrers => f.write_str("listed by the referrers API"),
            How::Tag(t) => write!(f, "listed under the referrers tag {t}"),
        }
    }
}

/// What [`attach`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The artifact manifest's digest.
    pub digest: Digest,
    pub how: How,
}

/// A descriptor with the `data` field the empty config carries.
#[derive(Serialize)]
struct EmptyDescriptor {
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    digest: Digest,
    size: u64,
    data: &'static str,
}

#[derive(Serialize)]
struct ArtifactManifest<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    #[serde(rename = "artifactType")]
    artifact_type: &'static str,
    config: EmptyDescriptor,
    layers: Vec<Descriptor>,
    subject: &'a Descriptor,
    annotations: BTreeMap<String, String>,
}

/// The artifact manifest carrying `document` about `subject`: its bytes,
/// and the blobs it needs (the empty config and the document), which
/// are put into `store`.
pub fn artifact(
    format: Format,
    document: &[u8],
    subject: &Descriptor,
    created: &str,
    store: &Store,
) -> Result<(Vec<u8>, Vec<Descriptor>), SbomError> {
    let (empty_digest, empty_size) = store.put_bytes(EMPTY_CONTENT)?;
    let (doc_digest, doc_size) = store.put_bytes(document)?;
    let mut layer = Descriptor::new(format.media_type(), doc_digest, doc_size);
    layer.annotations = Some(BTreeMap::from([(
        TITLE.to_owned(),
        format!("sbom{}", format.extension()),
    )]));
    // The subject as a plain descriptor: no platform, no annotations.
    let subject = Descriptor::new(
        subject.media_type.clone(),
        subject.digest.clone(),
        subject.size,
    );
    let manifest = ArtifactManifest {
        schema_version: 2,
        media_type: media::OCI_MANIFEST,
        artifact_type: format.media_type(),
        config: EmptyDescriptor {
            media_type: EMPTY_MEDIA_TYPE,
            digest: empty_digest.clone(),
            size: empty_size,
            data: "e30=",
        },
        layers: vec![layer.clone()],
        subject: &subject,
        annotations: BTreeMap::from([(CREATED.to_owned(), created.to_owned())]),
    };
    let blobs = vec![
        Descriptor::new(EMPTY_MEDIA_TYPE, empty_digest, empty_size),
        layer,
    ];
    Ok((to_json(&manifest), blobs))
}

/// The referrers tag of a subject: `sha256-<hex>`.
pub fn referrers_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// The referrers index `existing` (the bytes under the referrers tag, if
/// any) with `entry` added, or `None` when it lists `entry` already.
pub fn extend_index(
    existing: Option<&[u8]>,
    entry: &Descriptor,
) -> Result<Option<Vec<u8>>, String> {
    let mut index = match existing {
        Some(bytes) => serde_json::from_slice::<Index>(bytes)
            .map_err(|e| format!("something that is not an image index ({e})"))?,
        None => Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.to_owned()),
            manifests: Vec::new(),
            annotations: None,
        },
    };
    if index.manifests.iter().any(|d| d.digest == entry.digest) {
        return Ok(None);
    }
    index.manifests.push(entry.clone());
    Ok(Some(to_json(&index)))
}

/// Pushes the SBOM `document` to `target`'s repository as an artifact
/// referring to `subject` (already pushed there), and makes it findable.
#[allow(clippy::too_many_arguments)]
pub fn attach(
    client: &Client,
    target: &Reference,
    format: Format,
    document: &[u8],
    subject: &Descriptor,
    created: &str,
    store: &Store,
    progress: &dyn registry::Progress,
) -> Result<Attached, SbomError> {
    let fail = |source: registry::RegistryError| SbomError::Attach {
        target: target.name(),
        source: Box::new(source),
    };
    let (bytes, blobs) = artifact(format, document, subject, created, store)?;
    let digest = Digest::of(&bytes);
    let mut entry = Descriptor::new(media::OCI_MANIFEST, digest.clone(), bytes.len() as u64);
    entry.artifact_type = Some(format.media_type().to_owned());
    entry.annotations = Some(BTreeMap::from([(CREATED.to_owned(), created.to_owned())]));
    let image = PushImage {
        manifest: Descriptor::new(media::OCI_MANIFEST, digest.clone(), bytes.len() as u64),
        manifest_bytes: bytes,
        blobs,
    };
    fn plan<'a>(image: &'a PushImage, index: Option<&'a [u8]>) -> PushPlan<'a> {
        PushPlan {
            images: std::slice::from_ref(image),
            index,
            extra_tags: &[],
            base: None,
        }
    }
    let supported = client
        .referrers(target, &subject.digest, progress)
        .map_err(fail)?
        .is_some();
    if supported {
        client
            .push(
                &target.with_digest(digest.clone()),
                &plan(&image, None),
                store,
                progress,
            )
            .map_err(fail)?;
        return Ok(Attached {
            digest,
            how: How::Referrers,
        });
    }
    let tag = referrers_tag(&subject.digest);
    let tagged = target
        .with_tag(&tag)
        .map_err(|e| fail(registry::RegistryError::from(e)))?;
    let existing = match client.head_manifest(&tagged, progress).map_err(fail)? {
        Some(d) => Some(
            client
                .get_manifest(&tagged.with_digest(d.digest), progress)
                .map_err(fail)?
                .2,
        ),
        None => None,
    };
    let bad = |why| SbomError::BadReferrersIndex {
        target: target.name(),
        tag: tag.clone(),
        why,
    };
    match extend_index(existing.as_deref(), &entry).map_err(bad)? {
        Some(index) => {
            client
                .push(&tagged, &plan(&image, Some(&index)), store, progress)
                .map_err(fail)?;
        }
        None => {
            client
                .push(
                    &target.with_digest(digest.clone()),
                    &plan(&image, None),
                    store,
                    progress,
                )
                .map_err(fail)?;
        }
    }
    Ok(Attached {
        digest,
        how: How::Tag(tag),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn the_artifact_refers_to_its_subject() {
        let (_dir, store) = store();
        let mut subject = Descriptor::new(media::OCI_MANIFEST, Digest::of(b"image"), 5);
        subject.platform = Some(crate::image::Platform::parse("linux/amd64").unwrap());
        let doc = br#"{"spdxVersion":"SPDX-2.3"}"#;
        let (bytes, blobs) =
            artifact(Format::Spdx, doc, &subject, "1970-01-01T00:00:00Z", &store).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["mediaType"], media::OCI_MANIFEST);
        assert_eq!(v["artifactType"], "application/spdx+json");
        assert_eq!(v["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(
            v["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(v["config"]["data"], "e30=");
        assert_eq!(v["layers"][0]["mediaType"], "application/spdx+json");
        assert_eq!(v["layers"][0]["digest"], Digest::of(doc).as_str());
        assert_eq!(v["subject"]["digest"], subject.digest.as_str());
        assert!(v["subject"].get("platform").is_none());
        // Every blob it names is in the store, to be pushed.
        for b in &blobs {
            assert!(store.has(&b.digest), "{}", b.digest);
        }
        // Same inputs, same bytes.
        let again = artifact(Format::Spdx, doc, &subject, "1970-01-01T00:00:00Z", &store).unwrap();
        assert_eq!(again.0, bytes);
    }

    #[test]
    fn referrers_index_grows_once() {
        let a = Descriptor::new(media::OCI_MANIFEST, Digest::of(b"a"), 1);
        let b = Descriptor::new(media::OCI_MANIFEST, Digest::of(b"b"), 1);
        let one = extend_index(None, &a).unwrap().unwrap();
        let parsed: Index = serde_json::from_slice(&one).unwrap();
        assert_eq!(parsed.media_type.as_deref(), Some(media::OCI_INDEX));
        assert_eq!(parsed.manifests, std::slice::from_ref(&a));
        assert_eq!(
            extend_index(Some(&one), &a).unwrap(),
            None,
            "already listed"
        );
        let two = extend_index(Some(&one), &b).unwrap().unwrap();
        let parsed: Index = serde_json::from_slice(&two).unwrap();
        assert_eq!(parsed.manifests, [a, b.clone()]);
        let err = extend_index(Some(b"not json"), &b).unwrap_err();
        assert!(err.contains("not an image index"), "{err}");
        assert_eq!(
            referrers_tag(&Digest::of(b"x")),
            format!("sha256-{}", Digest::of(b"x").hex())
        );
    }
}
