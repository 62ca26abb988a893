//! Wheels into the store: downloaded in parallel, verified as they stream.
//!
//! A wheel is stored as an ordinary blob, and blobs are named by their
//! sha256, which is the hash indexes state and `--hash` pins: so finding a
//! wheel in the store needs no entry of its own, only its hash. A file
//! whose hash nobody states (an HTML page without `#sha256=`) is found
//! again through a `pip-url/<sha256 of its URL>` entry naming its blob;
//! index files never change once published, as PyPI enforces.
//!
//! Each download is read once, as it arrives: the bytes go to a store
//! temp file and to a sha256. The blob is moved into place only when the
//! hash is the one the index states and, in pip's hash-checking mode (any
//! `--hash` on the requirement), one of the `--hash` values too; otherwise
//! the temp file is dropped and nothing is stored. A mismatch is never
//! retried: the index and the requirements disagree, and the user must
//! know. Files of a find-links folder are copied in through the same
//! checks, so the layer writer reads every wheel from the store alike.
//!
//! Up to [`PARALLEL`] downloads run at once, on plain threads over the
//! index's one blocking HTTP client. Connection errors, HTTP 429 and 5xx
//! are retried with doubling, jittered delays (the index module's
//! [`super::index::ATTEMPTS`] tries in all). The first failure stops the
//! others from starting new downloads.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::Url;
use sha2::{Digest as _, Sha256};

use super::dist::{DistFile, Location};
use super::index::{check_status, error_chain, sha256_digest, with_retries, Attempt, Index};
use crate::digest::Digest;
use crate::store::{BlobWriter, Store, StoreError};

/// Downloads at once.
pub const PARALLEL: usize = 8;

/// The largest wheel accepted (the largest on PyPI are around 1 GiB).
pub const MAX_WHEEL_BYTES: u64 = 2 << 30;

/// The store's entry kind for files found by URL.
const URL_KEY_KIND: &str = "pip-url";

/// A transfer gets this long, plus a second per [`SLOWEST_RATE`] bytes of
/// its stated size, before it is abandoned as stalled (and retried).
const BASE_TIMEOUT: Duration = Duration::from_secs(300);
const SLOWEST_RATE: u64 = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("`{filename}`: {url} answered HTTP {status}{hint}")]
    Http {
        filename: String,
        url: String,
        status: u16,
        hint: String,
    },
    #[error("`{filename}`: downloading {url} failed after {attempts} attempts: {why}")]
    Network {
        filename: String,
        url: String,
        attempts: u32,
        why: String,
    },
    #[error(
        "`{filename}` from {from} has sha256 {actual}, but the index states {expected}; the \
         index, a proxy or the transfer is broken (nothing was stored)"
    )]
    IndexHash {
        filename: String,
        from: String,
        expected: String,
        actual: String,
    },
    #[error(
        "`{filename}` has sha256 {actual} ({how}), which is none of the requirement's \
         --hash values ({allowed}); nothing was stored. If the new file is trusted, update \
         the hashes in the requirements"
    )]
    RequirementsHash {
        filename: String,
        how: &'static str,
        allowed: String,
        actual: String,
    },
    #[error("`{filename}`: the stated sha256 `{hash}` is not 64 hex digits")]
    BadHash { filename: String, hash: String },
    #[error("`{filename}` is larger than {MAX_WHEEL_BYTES} bytes; hoist refuses it")]
    TooLarge { filename: String },
    #[error(
        "offline: `{filename}` is not in the store; run once online, or put the file in a \
         --find-links folder"
    )]
    Offline { filename: String },
    #[error("`{filename}`: `{url}` is not a valid URL: {why}")]
    BadUrl {
        filename: String,
        url: String,
        why: String,
    },
    #[error("reading {path}: {source}")]
    Local {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("storing `{filename}`: {source}")]
    Store {
        filename: String,
        #[source]
        source: StoreError,
    },
}

/// What the downloader reports as it goes.
#[derive(Debug, Clone, Copy)]
pub enum DownloadEvent<'a> {
    /// The file was in the store: nothing was fetched.
    Cached { file: &'a DistFile },
    /// The file was fetched (or copied from a find-links folder).
    Downloaded { file: &'a DistFile, bytes: u64 },
    /// An attempt failed and another follows.
    Retrying {
        file: &'a DistFile,
        attempt: u32,
        why: &'a str,
    },
}

/// Has every file in the store, each checked against the index's sha256
/// and, when the paired list is not empty, against those `--hash` values
/// (lower-case hex); their blob digests in the order given. On failure,
/// the error of the first failed file (in the order given) among those
/// tried.
pub fn download_all(
    index: &Index,
    store: &Store,
    files: &[(DistFile, Vec<String>)],
    progress: &(dyn Fn(DownloadEvent<'_>) + Sync),
) -> Result<Vec<Digest>, DownloadError> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        for _ in 0..PARALLEL.min(files.len()) {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= files.len() || stop.load(Ordering::Relaxed) {
                    break;
                }
                let (file, hashes) = &files[i];
                let result = download(index, store, file, hashes, progress);
                if result.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                if tx.send((i, result)).is_err() {
                    break;
                }
            });
        }
    });
    drop(tx);
    let mut results: Vec<Option<Digest>> = vec![None; files.len()];
    let mut first_error: Option<(usize, DownloadError)> = None;
    for (i, result) in rx {
        match result {
            Ok(d) => results[i] = Some(d),
            Err(e) => {
                if !first_error.as_ref().is_some_and(|(at, _)| *at < i) {
                    first_error = Some((i, e));
                }
            }
        }
    }
    if let Some((_, e)) = first_error {
        return Err(e);
    }
    Ok(results.into_iter().flatten().collect())
}

/// Has one file in the store (see [`download_all`]).
pub fn download(
    index: &Index,
    store: &Store,
    file: &DistFile,
    hashes: &[String],
    progress: &(dyn Fn(DownloadEvent<'_>) + Sync),
) -> Result<Digest, DownloadError> {
    let check = Check::new(file, hashes)?;
    if let Some(expected) = &check.expected {
        if !check.allows(expected) {
            return Err(check.not_allowed(expected, "as the index states"));
        }
    }
    if file.size.is_some_and(|s| s > MAX_WHEEL_BYTES) {
        return Err(DownloadError::TooLarge {
            filename: file.filename.clone(),
        });
    }

    // Files shared by several callers (the resolver reading metadata, the
    // installer) are fetched once: the second waits, then finds it stored.
    let lock = {
        let mut map = index.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(format!("{}#{:?}", file.filename, file.location))
            .or_default()
            .clone()
    };
    let _held = lock.lock().unwrap_or_else(|e| e.into_inner());

    if let Some(digest) = cached(store, file, &check)? {
        progress(DownloadEvent::Cached { file });
        return Ok(digest);
    }
    let (digest, bytes) = match &file.location {
        Location::Path(path) => {
            let mut f = fs_err::File::open(path).map_err(|source| DownloadError::Local {
                path: path.clone(),
                source,
            })?;
            copy_in(&mut f, store, &check, &path.display().to_string()).map_err(|e| match e {
                Attempt::Fatal(e) => e,
                Attempt::Retry { why, .. } => DownloadError::Local {
                    path: path.clone(),
                    source: io::Error::other(why),
                },
            })?
        }
        Location::Url(url) => {
            if index.offline() {
                return Err(DownloadError::Offline {
                    filename: file.filename.clone(),
                });
            }
            let parsed = Url::parse(url).map_err(|e| DownloadError::BadUrl {
                filename: file.filename.clone(),
                url: url.clone(),
                why: e.to_string(),
            })?;
            let got = with_retries(
                || fetch(index, store, &check, &parsed),
                |attempt, why| progress(DownloadEvent::Retrying { file, attempt, why }),
                |attempts, why| DownloadError::Network {
                    filename: file.filename.clone(),
                    url: url.clone(),
                    attempts,
                    why,
                },
            )?;
            if check.expected.is_none() {
                // Found next time by its URL (see the module docs).
                let key = Digest::of(url.as_bytes());
                store
                    .put_key(URL_KEY_KIND, key.hex(), got.0.as_str().as_bytes())
                    .map_err(|source| check.store_error(source))?;
            }
            got
        }
    };
    progress(DownloadEvent::Downloaded { file, bytes });
    Ok(digest)
}

/// What a file's bytes must hash to.
struct Check<'a> {
    file: &'a DistFile,
    /// The index's sha256.
    expected: Option<Digest>,
    /// `--hash` values; empty outside hash-checking mode.
    allowed: Vec<Digest>,
}

impl<'a> Check<'a> {
    fn new(file: &'a DistFile, hashes: &[String]) -> Result<Check<'a>, DownloadError> {
        let parse = |h: &String| {
            sha256_digest(h).ok_or_else(|| DownloadError::BadHash {
                filename: file.filename.clone(),
                hash: h.clone(),
            })
        };
        Ok(Check {
            file,
            expected: file.sha256.as_ref().map(parse).transpose()?,
            allowed: hashes.iter().map(parse).collect::<Result<_, _>>()?,
        })
    }

    fn allows(&self, digest: &Digest) -> bool {
        self.allowed.is_empty() || self.allowed.contains(digest)
    }

    fn not_allowed(&self, actual: &Digest, how: &'static str) -> DownloadError {
        DownloadError::RequirementsHash {
            filename: self.file.filename.clone(),
            how,
            allowed: self
                .allowed
                .iter()
                .map(|d| format!("sha256:{}", d.hex()))
                .collect::<Vec<_>>()
                .join(", "),
            actual: actual.hex().to_owned(),
        }
    }

    /// Whether `actual`, hashed from bytes read `from` somewhere, may be
    /// stored.
    fn verify(&self, actual: &Digest, from: &str) -> Result<(), DownloadError> {
        if let Some(expected) = &self.expected {
            if expected != actual {
                return Err(DownloadError::IndexHash {
                    filename: self.file.filename.clone(),
                    from: from.to_owned(),
                    expected: expected.hex().to_owned(),
                    actual: actual.hex().to_owned(),
                });
            }
        }
        if !self.allows(actual) {
            return Err(self.not_allowed(actual, "as downloaded"));
        }
        Ok(())
    }

    fn store_error(&self, source: StoreError) -> DownloadError {
        DownloadError::Store {
            filename: self.file.filename.clone(),
            source,
        }
    }
}

/// The file's blob, when the store has it under a hash that passes the
/// check.
fn cached(store: &Store, file: &DistFile, check: &Check) -> Result<Option<Digest>, DownloadError> {
    let known: Vec<&Digest> = match &check.expected {
        Some(d) => vec![d],
        None => check.allowed.iter().collect(),
    };
    if let Some(d) = known.into_iter().find(|d| store.has(d)) {
        return Ok(Some(d.clone()));
    }
    let Location::Url(url) = &file.location else {
        return Ok(None);
    };
    if check.expected.is_some() {
        return Ok(None);
    }
    let key = Digest::of(url.as_bytes());
    let entry = store
        .get_key(URL_KEY_KIND, key.hex())
        .map_err(|source| check.store_error(source))?;
    // An unreadable entry, a pruned blob or one the hashes do not allow
    // is a miss: the file is fetched again and checked.
    let digest = entry
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|s| Digest::parse(s.trim()).ok())
        .filter(|d| store.has(d) && check.allows(d));
    Ok(digest)
}

/// One download attempt.
fn fetch(
    index: &Index,
    store: &Store,
    check: &Check,
    url: &Url,
) -> Result<(Digest, u64), Attempt<DownloadError>> {
    let file = check.file;
    let (request, authed) = index.request(url);
    let size = file.size.unwrap_or(0);
    let timeout = BASE_TIMEOUT + Duration::from_secs(size / SLOWEST_RATE);
    let response = request
        .timeout(timeout)
        .send()
        .map_err(|e| Attempt::Retry {
            why: error_chain(&e),
            after: None,
        })?;
    check_status(&response, authed).map_err(|a| {
        a.map(|(status, hint)| DownloadError::Http {
            filename: file.filename.clone(),
            url: url.to_string(),
            status,
            hint,
        })
    })?;
    let mut response = response;
    copy_in(&mut response, store, check, url.as_str())
}

/// Copies a file into the store while hashing it; stores it only when it
/// passes the check. A read error is worth a retry, anything else is not.
fn copy_in(
    reader: &mut dyn Read,
    store: &Store,
    check: &Check,
    from: &str,
) -> Result<(Digest, u64), Attempt<DownloadError>> {
    let fatal = Attempt::Fatal;
    let mut blob: BlobWriter = store
        .writer()
        .map_err(|source| fatal(check.store_error(source)))?;
    let mut hasher = Sha256::new();
    let mut count: u64 = 0;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Attempt::Retry {
                    why: error_chain(&e),
                    after: None,
                })
            }
        };
        count += n as u64;
        if count > MAX_WHEEL_BYTES {
            return Err(fatal(DownloadError::TooLarge {
                filename: check.file.filename.clone(),
            }));
        }
        blob.write_all(&buf[..n])
            .map_err(|e| fatal(check.store_error(StoreError::Io(e))))?;
        hasher.update(&buf[..n]);
    }
    let actual = Digest::from_sha256(hasher);
    check.verify(&actual, from).map_err(fatal)?;
    let (digest, size) = blob
        .finish(Some(&actual), Some(count))
        .map_err(|source| fatal(check.store_error(source)))?;
    Ok((digest, size))
}
