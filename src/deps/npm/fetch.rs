//! Tarballs into the store: downloaded in parallel, verified as they
//! stream, kept by integrity.
//!
//! A tarball is stored as an ordinary blob (named by its sha256, like
//! every blob) and found again through a cache entry
//! `npm-tarball/<hex of its strongest integrity hash>` that names the blob.
//! So a later build, whatever its lockfile, downloads nothing whose
//! integrity the store already has, and several hoist processes can share
//! one store (entries and blobs are written atomically).
//!
//! Each download is read once, as it arrives: the bytes go to a store
//! temp file and to the integrity hash, and the same bytes, decompressed,
//! go through [`tarball::scan`], which the layer writer needs anyway. Only
//! when the integrity matches and the scan found nothing wrong is the blob
//! moved into place and its entry written; otherwise the temp file is
//! dropped and nothing is cached. A tarball already in the store is only
//! scanned.
//!
//! Up to [`PARALLEL`] downloads run at once, on plain threads over the one
//! blocking HTTP client. Connection errors, a transfer cut off, HTTP 429
//! and the 5xx that mean "not now" are retried as hoist's one retry policy
//! says ([`crate::net::retry`]: bounded tries, doubling jittered delays,
//! the server's `Retry-After` up to a cap); a mismatched integrity is never
//! retried: the lockfile and the registry disagree, and the user must
//! know. The first failure stops the others from starting new downloads.

use crate::error_chain;
use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::integrity::{Integrity, IntegrityError, Verifier};
use super::lockfile::InstallPath;
use super::npmrc::Npmrc;
use super::path::RelPath;
use super::tarball::{self, ScanError, TarFile, MAX_TARBALL_BYTES};
use crate::digest::Digest;
use crate::layer::compress::decompress;
use crate::net::retry::{retry_on_status, Attempt, RetryPolicy};
use crate::store::{BlobWriter, Store, StoreError};

/// Downloads at once.
pub const PARALLEL: usize = 8;

/// A stalled download is abandoned (and retried) after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// The store's cache-entry kind for tarballs.
pub const KEY_KIND: &str = "npm-tarball";

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("`{key}`: {url} answered HTTP {status}{hint}")]
    Http {
        key: String,
        url: String,
        status: u16,
        hint: String,
    },
    #[error("`{key}`: downloading {url} failed after {attempts} attempts: {why}")]
    Network {
        key: String,
        url: String,
        attempts: u32,
        why: String,
    },
    #[error("`{key}`: the tarball from {url} does not match the lockfile's integrity: {source}; the lockfile or the registry is wrong (run `npm install` to refresh the lockfile, or check the registry)")]
    Integrity {
        key: String,
        url: String,
        #[source]
        source: IntegrityError,
    },
    #[error("`{key}`: the tarball from {url} is larger than {MAX_TARBALL_BYTES} bytes")]
    TooLarge { key: String, url: String },
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error("storing an npm tarball: {0}")]
    Store(#[from] StoreError),
    #[error("setting up the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// One tarball to have in the store.
#[derive(Debug, Clone)]
pub struct Job {
    /// The lockfile key whose tarball it is, for messages.
    pub key: InstallPath,
    pub url: String,
    pub integrity: Integrity,
    /// Bin targets inside the package (and its bundled packages), which
    /// [`tarball::scan`] must know.
    pub bins: HashSet<RelPath>,
}

/// A tarball in the store, with its files.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub digest: Digest,
    /// Bytes downloaded (0 when it was in the store).
    pub downloaded: u64,
    pub files: Vec<TarFile>,
}

/// The cache entry of one tarball.
#[derive(Debug, Serialize, Deserialize)]
struct KeyEntry {
    digest: Digest,
    size: u64,
}

/// Fetches tarballs for one install.
pub struct Fetcher<'a> {
    store: &'a Store,
    npmrc: &'a Npmrc,
    client: reqwest::blocking::Client,
    /// One lock per integrity, so that packages sharing a tarball (one
    /// version installed at several paths) download it once: the second
    /// waits for the first and finds it in the store.
    in_flight: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl<'a> Fetcher<'a> {
    pub fn new(store: &'a Store, npmrc: &'a Npmrc) -> Result<Self, FetchError> {
        Ok(Fetcher {
            store,
            npmrc,
            client: crate::net::client().map_err(FetchError::Client)?,
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    /// Has every job's tarball in the store and scanned; results in job
    /// order. On failure, the error of the first failed job (in job
    /// order) among those tried.
    pub fn fetch_all(&self, jobs: &[Job]) -> Result<Vec<Fetched>, FetchError> {
        crate::net::parallel::try_map(jobs, PARALLEL, |job| self.fetch_one(job))
    }

    fn fetch_one(&self, job: &Job) -> Result<Fetched, FetchError> {
        let lock = {
            let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(job.integrity.strongest().hex())
                .or_default()
                .clone()
        };
        let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = self.cached(job)? {
            return Ok(f);
        }
        RetryPolicy::default().run(
            || self.download(job),
            |_, _, _| {},
            |attempts, why| FetchError::Network {
                key: job.key.to_string(),
                url: job.url.clone(),
                attempts,
                why,
            },
        )
    }

    /// The tarball, scanned, when the store has it.
    fn cached(&self, job: &Job) -> Result<Option<Fetched>, FetchError> {
        let name = job.integrity.strongest().hex();
        let Some(bytes) = self.store.get_key(KEY_KIND, &name)? else {
            return Ok(None);
        };
        // An unreadable entry, or one whose blob was pruned, is a miss.
        let Ok(entry) = serde_json::from_slice::<KeyEntry>(&bytes) else {
            return Ok(None);
        };
        let blob = match self.store.open_blob(&entry.digest) {
            Ok(b) => b,
            Err(StoreError::Missing(..)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let files = scan(&job.key, &job.bins, blob)?;
        Ok(Some(Fetched {
            digest: entry.digest,
            downloaded: 0,
            files,
        }))
    }

    fn download(&self, job: &Job) -> Result<Fetched, Attempt<FetchError>> {
        let fatal = |e: FetchError| Attempt::Fatal(e);
        let mut request = self.client.get(&job.url).timeout(REQUEST_TIMEOUT);
        let auth = self.npmrc.auth_for(&job.url);
        if let Some(auth) = auth {
            request = request.header(reqwest::header::AUTHORIZATION, auth.header());
        }
        let response = request.send().map_err(|e| Attempt::broken(&e))?;
        retry_on_status(&response)?;
        let status = response.status();
        if !status.is_success() {
            let hint = match status.as_u16() {
                401 | 403 if auth.is_some() => {
                    ": the credentials in the project's .npmrc were refused".to_owned()
                }
                401 | 403 => format!(
                    ": the registry wants credentials; add `{}:_authToken=${{NPM_TOKEN}}` to the project's .npmrc",
                    nerf_dart(&job.url)
                ),
                404 => ": the registry does not have it (unpublished, or a wrong registry in .npmrc?)"
                    .to_owned(),
                _ => String::new(),
            };
            return Err(fatal(FetchError::Http {
                key: job.key.to_string(),
                url: job.url.clone(),
                status: status.as_u16(),
                hint,
            }));
        }

        let blob = self
            .store
            .writer()
            .map_err(|e| fatal(FetchError::Store(e)))?;
        let size = response.content_length().unwrap_or(0);
        let mut tee = Tee {
            inner: crate::activity::Task::start(
                crate::activity::Kind::Download,
                job.url.rsplit('/').next().unwrap_or(&job.url),
                size,
            )
            .reader(response),
            blob,
            verifier: job.integrity.verifier(),
            count: 0,
            network_error: None,
            store_error: None,
        };
        // Decompress and scan the bytes as they arrive; whatever the scan
        // leaves (the gzip trailer, padding) is read after it.
        let scanned = match decompress(&mut tee) {
            Ok((_, stream)) => tarball::scan(&job.key, stream, &|p| job.bins.contains(p)),
            Err(source) => Err(ScanError::Format {
                package: job.key.to_string(),
                source,
            }),
        };
        let drained = io::copy(&mut tee, &mut io::sink());
        if let Some(e) = tee.store_error.take() {
            return Err(fatal(FetchError::Store(StoreError::Io(e))));
        }
        if tee.count > MAX_TARBALL_BYTES {
            return Err(fatal(FetchError::TooLarge {
                key: job.key.to_string(),
                url: job.url.clone(),
            }));
        }
        if let Some(why) = tee.network_error.take() {
            return Err(Attempt::Retry { why, after: None });
        }
        if let Err(e) = drained {
            return Err(Attempt::Retry {
                why: e.to_string(),
                after: None,
            });
        }
        let Tee {
            blob,
            verifier,
            count,
            ..
        } = tee;
        verifier.finish().map_err(|source| {
            fatal(FetchError::Integrity {
                key: job.key.to_string(),
                url: job.url.clone(),
                source,
            })
        })?;
        let files = scanned.map_err(|e| fatal(e.into()))?;
        let (digest, size) = blob
            .finish(None, None)
            .map_err(|e| fatal(FetchError::Store(e)))?;
        let entry = serde_json::to_vec(&KeyEntry {
            digest: digest.clone(),
            size,
        })
        .unwrap_or_default();
        self.store
            .put_key(KEY_KIND, &job.integrity.strongest().hex(), &entry)
            .map_err(|e| fatal(FetchError::Store(e)))?;
        Ok(Fetched {
            digest,
            downloaded: count,
            files,
        })
    }
}

/// Scans a stored tarball blob.
fn scan(
    key: &InstallPath,
    bins: &HashSet<RelPath>,
    blob: impl Read,
) -> Result<Vec<TarFile>, ScanError> {
    let (_, stream) = decompress(blob).map_err(|source| ScanError::Format {
        package: key.to_string(),
        source,
    })?;
    tarball::scan(key, stream, &|p| bins.contains(p))
}

/// `//host[:port]/` of a URL, as .npmrc keys credentials.
fn nerf_dart(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("//{h}:{p}/"),
            (Some(h), None) => format!("//{h}/"),
            _ => "//registry.example.com/".to_owned(),
        },
        Err(_) => "//registry.example.com/".to_owned(),
    }
}

/// Passes a download through, copying it to a store temp file and the
/// integrity hash. Errors of each side are kept apart, so a dropped
/// connection is retried while a full disk is not.
struct Tee<R> {
    inner: R,
    blob: BlobWriter,
    verifier: Verifier,
    count: u64,
    network_error: Option<String>,
    store_error: Option<io::Error>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.count > MAX_TARBALL_BYTES {
            return Err(io::Error::other("tarball too large"));
        }
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                let why = error_chain(&e);
                self.network_error = Some(why.clone());
                return Err(io::Error::other(why));
            }
        };
        if let Err(e) = self.blob.write_all(&buf[..n]) {
            let kind = e.kind();
            self.store_error = Some(e);
            return Err(io::Error::new(kind, "writing to the store failed"));
        }
        self.verifier.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nerf_darts() {
        assert_eq!(
            nerf_dart("https://npm.example.com/a/-/a-1.tgz"),
            "//npm.example.com/"
        );
        assert_eq!(
            nerf_dart("http://127.0.0.1:8080/x.tgz"),
            "//127.0.0.1:8080/"
        );
    }
}
