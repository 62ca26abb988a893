//! Shared caches: deps layers (and pip resolutions) kept in a registry,
//! so that CI runners with empty stores reuse what another runner built.
//!
//! The local store maps a cache key to a small entry (JSON naming a layer
//! blob) under `keys/KIND/KEY`. A shared cache holds the same thing as an
//! OCI artifact in a registry repository, one per entry:
//!
//! - a manifest with `artifactType` [`ARTIFACT_TYPE`], tagged
//!   [`tag`]`(kind, key)` (`deps-npm-<key>`), and annotations naming the
//!   kind and the whole key;
//! - its config: the entry's bytes as the local store keeps them
//!   ([`ENTRY_MEDIA_TYPE`]);
//! - its layers: the blobs the entry names (the deps layer, with its own
//!   layer media type, so a registry can mount it into an image), or the
//!   OCI empty descriptor for an entry that names none (a resolution).
//!
//! Installers consult a [`SharedCache`] only after the local store
//! missed, and before anything is resolved or downloaded: a hit copies
//! the entry and its blobs into the store (verified by digest), and the
//! installer then finds them there as if it had built them. After a build
//! (or a local hit) they share the entry, so one job's layer serves the
//! next. The trait keeps the installers free of registries; the registry
//! side is [`remote::RegistryCache`].
//!
//! What is keyed, per installer:
//! - npm: the layer key, computed from the lockfile alone (no network);
//! - pip: the layer key hashes the resolved wheels, which a fresh runner
//!   does not have; so the resolution is shared too, under the resolution
//!   key (the requirements' bytes, the index options and the image's
//!   interpreter and platform). A runner looks up the resolution, then the
//!   layer: two manifest requests and no index request. With a pylock.toml
//!   the pins come from the file and only the layer is looked up;
//! - build stages: each layer the image copies from a stage, under its
//!   copy key (which chains the stage's keys, known before anything
//!   runs); [`crate::exec`] looks them up before it would run a stage.
//!
//! A shared cache is trusted as the registry is: whoever may push to its
//! repository decides what a hit puts in images. Point `--cache-from` only
//! at repositories the builds' own pushers control.
//!
//! A cache never fails a build: a registry that cannot be reached, or an
//! artifact that does not check out, is reported and the build goes on
//! without it.

pub mod layer;
pub mod remote;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::image::{media, Descriptor};
use crate::reference::{is_valid_tag, Reference};
use crate::store::Store;

/// The `artifactType` of a cache entry's manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.hoist.cache.v1+json";

/// The media type of the config blob: the entry as the store keeps it.
pub const ENTRY_MEDIA_TYPE: &str = "application/vnd.hoist.cache.entry.v1+json";

/// OCI 1.1's empty descriptor, the layer of an entry that names no blob.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_JSON: &[u8] = b"{}";

/// Annotations on the manifest: which entry it holds.
pub const KIND_ANNOTATION: &str = "dev.hoist.cache.kind";
pub const KEY_ANNOTATION: &str = "dev.hoist.cache.key";

/// The longest key used as is in a tag; longer keys are hashed.
const MAX_KEY_IN_TAG: usize = 64;

/// Where shared entries come from and go to (`--cache-from`,
/// `--cache-to`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheOptions {
    /// Repositories looked up in order; the first hit wins.
    pub from: Vec<Reference>,
    /// The repository entries are shared to.
    pub to: Option<Reference>,
}

impl CacheOptions {
    pub fn is_empty(&self) -> bool {
        self.from.is_empty() && self.to.is_none()
    }

    /// Parses `--cache-from` and `--cache-to` values: repositories,
    /// written without a tag or digest (`registry.example.com/team/cache`).
    pub fn parse(from: &[String], to: Option<&str>) -> Result<CacheOptions, CacheError> {
        let repo = |s: &str| -> Result<Reference, CacheError> {
            let s = s.strip_prefix("docker://").unwrap_or(s);
            let bad = |why: String| CacheError::BadRepository {
                input: s.to_owned(),
                why,
            };
            let r = Reference::parse(s).map_err(|e| bad(e.to_string()))?;
            // A bare name parses as `:latest`; an explicit tag or digest
            // would be overwritten by the entries' tags: refuse it.
            if r.digest().is_some() || s.rsplit('/').next().is_some_and(|t| t.contains(':')) {
                return Err(bad(
                    "name a repository without a tag or digest; each entry gets its own tag".into(),
                ));
            }
            Ok(r)
        };
        Ok(CacheOptions {
            from: from.iter().map(|s| repo(s)).collect::<Result<_, _>>()?,
            to: to.map(repo).transpose()?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache repository `{input}`: {why}")]
    BadRepository { input: String, why: String },
    #[error("cache entry {kind}/{key}: `{tag}` is not a valid tag")]
    BadTag {
        kind: String,
        key: String,
        tag: String,
    },
    #[error("cache artifact {tag}: {why}")]
    BadArtifact { tag: String, why: String },
}

/// A shared cache, as the installers see it. Neither method fails the
/// build: problems are the cache's to report (see
/// [`remote::RegistryCache::take_notes`]).
pub trait SharedCache: std::fmt::Debug + Sync {
    /// Brings the entry `kind/key` and the blobs it names into `store`
    /// when a shared cache has it; `true` on a hit (the entry is then in
    /// the store).
    fn fetch(&self, kind: &str, key: &str, store: &Store) -> bool;

    /// Shares the entry `kind/key` (`entry` as the store keeps it), which
    /// names `blobs` (all in `store`). Does nothing without a destination
    /// or when the destination has it already.
    fn share(&self, kind: &str, key: &str, entry: &[u8], blobs: &[Descriptor], store: &Store);
}

/// Looks `kind/key` up in `shared`, if there is one: the hook the
/// installers call after a local miss.
pub fn fetch(shared: Option<&dyn SharedCache>, kind: &str, key: &str, store: &Store) -> bool {
    shared.is_some_and(|s| s.fetch(kind, key, store))
}

/// Shares `kind/key` through `shared`, if there is one.
pub fn share(
    shared: Option<&dyn SharedCache>,
    kind: &str,
    key: &str,
    entry: &[u8],
    blobs: &[Descriptor],
    store: &Store,
) {
    if let Some(s) = shared {
        s.share(kind, key, entry, blobs, store);
    }
}

/// The tag an entry is kept under: `KIND-KEY`, or `KIND-` and the sha256
/// of the key when the key is longer than 64 characters or has characters
/// a tag cannot hold.
pub fn tag(kind: &str, key: &str) -> Result<String, CacheError> {
    let direct = format!("{kind}-{key}");
    let t = if key.len() <= MAX_KEY_IN_TAG && is_valid_tag(&direct) {
        direct
    } else {
        format!("{kind}-{}", Digest::of(key.as_bytes()).hex())
    };
    if !is_valid_tag(&t) {
        return Err(CacheError::BadTag {
            kind: kind.to_owned(),
            key: key.to_owned(),
            tag: t,
        });
    }
    Ok(t)
}

/// A cache entry's manifest, as pushed and as read back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Artifact {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    #[serde(rename = "artifactType", default)]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl Artifact {
    /// The manifest for entry `kind/key` whose config is `entry` and
    /// whose blobs are `blobs` (the empty descriptor when there are none).
    pub fn new(kind: &str, key: &str, entry: Descriptor, blobs: &[Descriptor]) -> Artifact {
        let layers = match blobs {
            [] => vec![empty_descriptor()],
            _ => blobs.to_vec(),
        };
        Artifact {
            schema_version: 2,
            media_type: media::OCI_MANIFEST.to_owned(),
            artifact_type: Some(ARTIFACT_TYPE.to_owned()),
            config: entry,
            layers,
            annotations: BTreeMap::from([
                (KIND_ANNOTATION.to_owned(), kind.to_owned()),
                (KEY_ANNOTATION.to_owned(), key.to_owned()),
            ]),
        }
    }

    /// Parses a manifest read under `tag` and checks that it is a hoist
    /// cache entry for exactly `kind/key`.
    pub fn parse(bytes: &[u8], tag: &str, kind: &str, key: &str) -> Result<Artifact, CacheError> {
        let bad = |why: String| CacheError::BadArtifact {
            tag: tag.to_owned(),
            why,
        };
        let a: Artifact =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not an OCI manifest: {e}")))?;
        if a.artifact_type.as_deref() != Some(ARTIFACT_TYPE) {
            return Err(bad(format!(
                "its artifactType is {:?}, not {ARTIFACT_TYPE}; is the repository used for something else?",
                a.artifact_type.unwrap_or_default()
            )));
        }
        if a.config.media_type != ENTRY_MEDIA_TYPE {
            return Err(bad(format!(
                "its config is {}, not {ENTRY_MEDIA_TYPE}",
                a.config.media_type
            )));
        }
        // The entry is read into memory and written as a store key.
        if a.config.size > 1 << 20 {
            return Err(bad(format!("its entry is {} bytes", a.config.size)));
        }
        let says = |k: &str| a.annotations.get(k).map(String::as_str);
        if says(KIND_ANNOTATION) != Some(kind) || says(KEY_ANNOTATION) != Some(key) {
            return Err(bad(format!(
                "it holds {}/{}, not {kind}/{key}",
                says(KIND_ANNOTATION).unwrap_or("?"),
                says(KEY_ANNOTATION).unwrap_or("?")
            )));
        }
        Ok(a)
    }

    /// The manifest's bytes (compact, fields in a fixed order).
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::image::to_json(self)
    }

    /// The blobs the entry names (the empty descriptor left out).
    pub fn blobs(&self) -> Vec<Descriptor> {
        self.layers
            .iter()
            .filter(|d| d.media_type != EMPTY_MEDIA_TYPE)
            .cloned()
            .collect()
    }
}

/// OCI 1.1's descriptor of the two-byte blob `{}`.
pub fn empty_descriptor() -> Descriptor {
    Descriptor::new(
        EMPTY_MEDIA_TYPE,
        Digest::of(EMPTY_JSON),
        EMPTY_JSON.len() as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn tags() {
        let long = "a".repeat(65);
        let hashed = format!("deps-npm-{}", Digest::of(long.as_bytes()).hex());
        for (kind, key, want) in [
            ("deps-npm", KEY, format!("deps-npm-{KEY}")),
            ("pip-resolution", "abc", "pip-resolution-abc".to_owned()),
            ("deps-npm", long.as_str(), hashed.clone()),
            // Characters a tag cannot hold: hashed as well.
            (
                "deps-npm",
                "a/b",
                format!("deps-npm-{}", Digest::of(b"a/b").hex()),
            ),
        ] {
            let t = tag(kind, key).unwrap();
            assert_eq!(t, want, "{kind}/{key}");
            assert!(t.len() <= 128);
        }
        assert!(tag("-bad", KEY).is_err());
    }

    #[test]
    fn repositories_parse_without_tags() {
        let o = CacheOptions::parse(
            &[
                "127.0.0.1:5000/team/cache".into(),
                "docker://ghcr.io/a/b".into(),
            ],
            Some("localhost:5000/cache"),
        )
        .unwrap();
        assert_eq!(o.from.len(), 2);
        assert_eq!(o.from[0].repository(), "team/cache");
        assert_eq!(o.from[1].registry(), "ghcr.io");
        assert_eq!(o.to.unwrap().repository(), "cache");
        for bad in [
            "127.0.0.1:5000/cache:v1",
            "cache@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "bad//repo",
        ] {
            let err = CacheOptions::parse(&[bad.to_owned()], None).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("cache repository `{bad}`")),
                "{err}"
            );
        }
        assert!(CacheOptions::default().is_empty());
    }

    fn layer() -> Descriptor {
        Descriptor::new(media::OCI_LAYER_GZIP, Digest::of(b"layer"), 5)
    }

    #[test]
    fn artifact_round_trips_and_checks_what_it_holds() {
        let entry = Descriptor::new(ENTRY_MEDIA_TYPE, Digest::of(b"{}"), 2);
        let a = Artifact::new("deps-npm", KEY, entry.clone(), &[layer()]);
        let bytes = a.to_bytes();
        assert_eq!(bytes, a.to_bytes(), "deterministic");
        let t = tag("deps-npm", KEY).unwrap();
        let back = Artifact::parse(&bytes, &t, "deps-npm", KEY).unwrap();
        assert_eq!(back.blobs(), vec![layer()]);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(ARTIFACT_TYPE), "{text}");

        // No blobs: the empty descriptor stands in, and is not a blob.
        let r = Artifact::new("pip-resolution", "k", entry.clone(), &[]);
        assert_eq!(r.layers, vec![empty_descriptor()]);
        assert!(r.blobs().is_empty());

        let mut other_type = a.clone();
        other_type.artifact_type = Some("application/vnd.example".into());
        let mut other_config = a.clone();
        other_config.config.media_type = media::OCI_CONFIG.into();
        let mut big = a.clone();
        big.config.size = 2 << 20;
        for (what, doc, kind, key, needle) in [
            (
                "another artifact",
                other_type.to_bytes(),
                "deps-npm",
                KEY,
                "artifactType",
            ),
            (
                "an image",
                other_config.to_bytes(),
                "deps-npm",
                KEY,
                "its config is",
            ),
            ("a huge entry", big.to_bytes(), "deps-npm", KEY, "bytes"),
            (
                "another kind",
                bytes.clone(),
                "deps-pip",
                KEY,
                "not deps-pip/",
            ),
            (
                "another key",
                bytes.clone(),
                "deps-npm",
                "beef",
                "not deps-npm/beef",
            ),
            (
                "not JSON",
                b"nope".to_vec(),
                "deps-npm",
                KEY,
                "not an OCI manifest",
            ),
        ] {
            let err = Artifact::parse(&doc, &t, kind, key)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{what}: {err}");
        }
    }
}
