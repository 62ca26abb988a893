//! The shared cache in a registry: `--cache-from` and `--cache-to`.
//!
//! A lookup is one `GET /v2/REPO/manifests/KIND-KEY` per `--cache-from`
//! repository (a 404 is a miss), then the entry and its blobs through
//! [`Client::fetch_blobs`], which verifies each against its digest before
//! it lands in the store; only then is the entry written as a store key,
//! so a key never names a blob that is not there. Sharing is a `HEAD` of
//! the tag (present: nothing to do, the key fixes the content), then an
//! ordinary [`Client::push`] of the artifact: blobs the registry has are
//! skipped, the rest uploaded, the manifest put last under its tag.
//!
//! Nothing here fails a build. What happened (hits, shares, problems) is
//! kept as [`Note`]s for the build to report.

use std::sync::Mutex;

use super::{tag, Artifact, CacheError, CacheOptions, SharedCache, EMPTY_JSON, ENTRY_MEDIA_TYPE};
use crate::digest::Digest;
use crate::image::{media, Descriptor};
use crate::reference::{Reference, ReferenceError};
use crate::registry::{self, Client, NoProgress, PushImage, PushPlan, RegistryError};
use crate::store::{Store, StoreError};

/// What the registry cache did, for the build's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// An entry came from `from`: its blobs, `downloaded` of which were
    /// not in the store yet (`bytes` in all).
    Hit {
        kind: String,
        from: String,
        downloaded: usize,
        bytes: u64,
    },
    /// An entry was pushed to `to`; `uploaded` blobs (`bytes`) were new
    /// there.
    Shared {
        kind: String,
        to: String,
        uploaded: usize,
        bytes: u64,
    },
    /// Something went wrong; the build goes on without the cache.
    Problem(String),
}

#[derive(Debug, thiserror::Error)]
enum RemoteError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
}

/// A registry-backed [`SharedCache`].
#[derive(Debug)]
pub struct RegistryCache {
    client: Client,
    opts: CacheOptions,
    notes: Mutex<Vec<Note>>,
}

impl RegistryCache {
    /// The cache `opts` describe, reached as `registry` says; `None` when
    /// there is none. Offline, a cache is not consulted (a note says so).
    pub fn new(
        opts: &CacheOptions,
        registry: &registry::Options,
    ) -> Result<Option<RegistryCache>, RegistryError> {
        if opts.is_empty() {
            return Ok(None);
        }
        let cache = RegistryCache {
            client: Client::new(registry.clone())?,
            opts: opts.clone(),
            notes: Mutex::new(Vec::new()),
        };
        if registry.offline {
            cache.note(Note::Problem(
                "--offline: the registry cache (--cache-from, --cache-to) is not used".into(),
            ));
            return Ok(Some(RegistryCache {
                opts: CacheOptions::default(),
                ..cache
            }));
        }
        Ok(Some(cache))
    }

    /// What happened since the last call.
    pub fn take_notes(&self) -> Vec<Note> {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn note(&self, n: Note) {
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).push(n);
    }

    /// Looks `kind/key` up in `repo`: `None` on a miss.
    fn fetch_from(
        &self,
        repo: &Reference,
        kind: &str,
        key: &str,
        store: &Store,
    ) -> Result<Option<Note>, RemoteError> {
        let tag = tag(kind, key)?;
        let r = repo.with_tag(&tag)?;
        let (_, _, bytes) = match self.client.get_manifest(&r, &NoProgress) {
            Ok(found) => found,
            Err(RegistryError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let artifact = Artifact::parse(&bytes, &tag, kind, key)?;
        let mut blobs = vec![artifact.config.clone()];
        blobs.extend(artifact.blobs());
        let fetched = self.client.fetch_blobs(&r, &blobs, store, &NoProgress)?;
        let entry = store.read_blob(&artifact.config.digest)?;
        store.put_key(kind, key, &entry)?;
        Ok(Some(Note::Hit {
            kind: kind.to_owned(),
            from: r.to_string(),
            downloaded: fetched.downloaded.len(),
            bytes: fetched.bytes_downloaded,
        }))
    }

    /// Pushes `kind/key` to `to` unless it is there: `None` when it was.
    fn share_to(
        &self,
        to: &Reference,
        kind: &str,
        key: &str,
        entry: &[u8],
        blobs: &[Descriptor],
        store: &Store,
    ) -> Result<Option<Note>, RemoteError> {
        let tag = tag(kind, key)?;
        let r = to.with_tag(&tag)?;
        if self.client.head_manifest(&r, &NoProgress)?.is_some() {
            return Ok(None);
        }
        let (digest, size) = store.put_bytes(entry)?;
        let config = Descriptor::new(ENTRY_MEDIA_TYPE, digest, size);
        if blobs.is_empty() {
            store.put_bytes(EMPTY_JSON)?;
        }
        let artifact = Artifact::new(kind, key, config.clone(), blobs);
        let bytes = artifact.to_bytes();
        let image = PushImage {
            manifest: Descriptor::new(media::OCI_MANIFEST, Digest::of(&bytes), bytes.len() as u64),
            manifest_bytes: bytes,
            blobs: std::iter::once(config)
                .chain(artifact.layers.iter().cloned())
                .collect(),
        };
        let plan = PushPlan {
            images: std::slice::from_ref(&image),
            index: None,
            extra_tags: &[],
            base: None,
        };
        let report = self.client.push(&r, &plan, store, &NoProgress)?;
        Ok(Some(Note::Shared {
            kind: kind.to_owned(),
            to: r.to_string(),
            uploaded: report.uploaded.len(),
            bytes: report.bytes_uploaded,
        }))
    }
}

impl SharedCache for RegistryCache {
    fn fetch(&self, kind: &str, key: &str, store: &Store) -> bool {
        for repo in &self.opts.from {
            match self.fetch_from(repo, kind, key, store) {
                Ok(Some(hit)) => {
                    self.note(hit);
                    return true;
                }
                Ok(None) => {}
                Err(e) => self.note(Note::Problem(format!(
                    "--cache-from {}: {e}; going on without it",
                    repo.name()
                ))),
            }
        }
        false
    }

    fn share(&self, kind: &str, key: &str, entry: &[u8], blobs: &[Descriptor], store: &Store) {
        let Some(to) = &self.opts.to else { return };
        match self.share_to(to, kind, key, entry, blobs, store) {
            Ok(Some(shared)) => self.note(shared),
            Ok(None) => {}
            Err(e) => self.note(Note::Problem(format!(
                "--cache-to {}: {e}; the layer is not shared (the image is unaffected)",
                to.name()
            ))),
        }
    }
}
