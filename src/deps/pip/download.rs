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
//! index's one blocking HTTP client. Connection errors, a transfer cut
//! off, HTTP 429 and the 5xx that mean "not now" are retried as hoist's
//! one retry policy says ([`crate::net::retry`]). The first failure stops
//! the others from starting new downloads.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use sha2::{Digest as _, Sha256};

use super::dist::{DistFile, Location};
use super::index::{check_status, sha256_digest, with_retries, Attempt, Index};
use crate::digest::Digest;
use crate::error_chain;
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
    crate::net::parallel::try_map(files, PARALLEL, |(file, hashes)| {
        download(index, store, file, hashes, progress)
    })
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
    let task = crate::activity::Task::start(crate::activity::Kind::Download, &file.filename, size);
    copy_in(&mut task.reader(response), store, check, url.as_str())
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::super::index::test_server::{Reply, Server};
    use super::super::index::IndexConfig;
    use super::super::tags::WheelFilename;
    use super::*;
    use crate::deps::pip::dist::DistKind;

    const WHEEL: &[u8] = b"pretend this is a zip";

    fn wheel_file(location: Location, sha256: Option<&str>) -> DistFile {
        let filename = "a-1.0-py3-none-any.whl";
        DistFile {
            filename: filename.to_owned(),
            kind: DistKind::Wheel(WheelFilename::parse(filename).unwrap()),
            location,
            sha256: sha256.map(str::to_owned),
            requires_python: None,
            yanked: false,
            metadata: None,
            size: None,
        }
    }

    fn at(server: &Server, path: &str) -> Location {
        Location::Url(format!("{}{path}", server.url))
    }

    fn hex(bytes: &[u8]) -> String {
        Digest::of(bytes).hex().to_owned()
    }

    fn an_index(offline: bool) -> Index {
        Index::new(IndexConfig {
            no_index: true,
            offline,
            ..IndexConfig::default()
        })
        .unwrap()
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    /// Files in the store's blob and temp folders.
    fn stored(dir: &tempfile::TempDir) -> usize {
        ["blobs/sha256", "tmp"]
            .iter()
            .map(|d| std::fs::read_dir(dir.path().join(d)).unwrap().count())
            .sum()
    }

    #[test]
    fn downloads_are_stored_once_and_found_again() {
        let server = Server::start(vec![("/w.whl", vec![Reply::ok("application/zip", WHEEL)])]);
        let (_dir, store) = store();
        let index = an_index(false);
        let file = wheel_file(at(&server, "/w.whl"), Some(&hex(WHEEL)));
        let events = Mutex::new(Vec::new());
        let progress = |e: DownloadEvent<'_>| {
            events.lock().unwrap().push(match e {
                DownloadEvent::Cached { .. } => "cached".to_owned(),
                DownloadEvent::Downloaded { bytes, .. } => format!("downloaded {bytes}"),
                DownloadEvent::Retrying { attempt, .. } => format!("retry {attempt}"),
            })
        };
        let d = download(&index, &store, &file, &[], &progress).unwrap();
        assert_eq!(d, Digest::of(WHEEL));
        assert_eq!(store.read_blob(&d).unwrap(), WHEEL);
        // In hash-checking mode too, with the hash in upper case.
        let d2 = download(
            &index,
            &store,
            &file,
            &[hex(WHEEL).to_uppercase()],
            &progress,
        )
        .unwrap();
        assert_eq!(d2, d);
        assert_eq!(server.hits("/w.whl"), 1);
        assert_eq!(*events.lock().unwrap(), ["downloaded 21", "cached"]);

        // Offline, a stored file is found; one that is not is an error.
        assert_eq!(
            download(&an_index(true), &store, &file, &[], &|_| {}).unwrap(),
            d
        );
        let missing = wheel_file(at(&server, "/w.whl"), Some(&"0".repeat(64)));
        let err = download(&an_index(true), &store, &missing, &[], &|_| {}).unwrap_err();
        assert!(matches!(err, DownloadError::Offline { .. }), "{err}");
        assert_eq!(server.hits("/w.whl"), 1);
    }

    #[test]
    fn mismatches_are_errors_that_store_nothing_and_are_not_retried() {
        let server = Server::start(vec![("/w.whl", vec![Reply::ok("application/zip", WHEEL)])]);
        let index = an_index(false);
        let other = hex(b"other");

        // The index states another hash.
        let (dir, store) = store();
        let file = wheel_file(at(&server, "/w.whl"), Some(&other));
        let err = download(&index, &store, &file, &[], &|_| {}).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DownloadError::IndexHash { .. }), "{msg}");
        assert!(
            msg.contains(&other)
                && msg.contains(&hex(WHEEL))
                && msg.contains("a-1.0-py3-none-any.whl"),
            "{msg}"
        );
        assert_eq!(stored(&dir), 0);
        assert_eq!(server.hits("/w.whl"), 1);

        // No index hash, and --hash values that are not the file's.
        let file = wheel_file(at(&server, "/w.whl"), None);
        let err =
            download(&index, &store, &file, std::slice::from_ref(&other), &|_| {}).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                DownloadError::RequirementsHash {
                    how: "as downloaded",
                    ..
                }
            ),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("sha256:{other}")) && msg.contains(&hex(WHEEL)),
            "{msg}"
        );
        assert_eq!(stored(&dir), 0);
        assert_eq!(server.hits("/w.whl"), 2);

        // The index's hash is not among the --hash values: refused before
        // any request.
        let file = wheel_file(at(&server, "/w.whl"), Some(&hex(WHEEL)));
        let err =
            download(&index, &store, &file, std::slice::from_ref(&other), &|_| {}).unwrap_err();
        assert!(
            matches!(
                err,
                DownloadError::RequirementsHash {
                    how: "as the index states",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(server.hits("/w.whl"), 2);

        // One of several --hash values is enough.
        download(&index, &store, &file, &[other, hex(WHEEL)], &|_| {}).unwrap();
        assert_eq!(stored(&dir), 1);

        // Malformed hashes are errors, not silently ignored.
        let err = download(&index, &store, &file, &["xyz".to_owned()], &|_| {}).unwrap_err();
        assert!(matches!(err, DownloadError::BadHash { .. }), "{err}");
    }

    #[test]
    fn server_errors_are_retried_client_errors_are_not() {
        let server = Server::start(vec![
            (
                "/flaky.whl",
                vec![
                    Reply::status(503),
                    Reply::status(429),
                    Reply::ok("application/zip", WHEEL),
                ],
            ),
            ("/gone.whl", vec![Reply::status(404)]),
        ]);
        let (_dir, store) = store();
        let index = an_index(false);
        let retries = Mutex::new(Vec::new());
        let progress = |e: DownloadEvent<'_>| {
            if let DownloadEvent::Retrying { attempt, why, .. } = e {
                retries.lock().unwrap().push(format!("{attempt}: {why}"));
            }
        };
        let file = wheel_file(at(&server, "/flaky.whl"), Some(&hex(WHEEL)));
        download(&index, &store, &file, &[], &progress).unwrap();
        assert_eq!(server.hits("/flaky.whl"), 3);
        let retries = retries.into_inner().unwrap();
        assert_eq!(retries.len(), 2, "{retries:?}");
        assert!(retries[0].contains("503"), "{retries:?}");

        let file = wheel_file(at(&server, "/gone.whl"), Some(&"1".repeat(64)));
        let err = download(&index, &store, &file, &[], &|_| {}).unwrap_err();
        assert!(
            matches!(err, DownloadError::Http { status: 404, .. }),
            "{err}"
        );
        assert_eq!(server.hits("/gone.whl"), 1);
    }

    #[test]
    fn files_without_a_stated_hash_are_found_again_by_url() {
        let server = Server::start(vec![("/w.whl", vec![Reply::ok("application/zip", WHEEL)])]);
        let (_dir, store) = store();
        let file = wheel_file(at(&server, "/w.whl"), None);
        let d = download(&an_index(false), &store, &file, &[], &|_| {}).unwrap();
        assert_eq!(
            download(&an_index(false), &store, &file, &[], &|_| {}).unwrap(),
            d
        );
        assert_eq!(
            download(&an_index(true), &store, &file, &[], &|_| {}).unwrap(),
            d
        );
        assert_eq!(server.hits("/w.whl"), 1);
        // A --hash the stored file does not have sends it to the network,
        // whose answer is then refused.
        let err =
            download(&an_index(false), &store, &file, &["2".repeat(64)], &|_| {}).unwrap_err();
        assert!(
            matches!(err, DownloadError::RequirementsHash { .. }),
            "{err}"
        );
        assert_eq!(server.hits("/w.whl"), 2);
    }

    #[test]
    fn local_files_are_imported_through_the_same_checks() {
        let wheelhouse = tempfile::tempdir().unwrap();
        let path = wheelhouse.path().join("a-1.0-py3-none-any.whl");
        std::fs::write(&path, WHEEL).unwrap();
        let file = wheel_file(Location::Path(path.clone()), None);
        let (dir, store) = store();
        let err = download(&an_index(true), &store, &file, &["3".repeat(64)], &|_| {}).unwrap_err();
        assert!(
            matches!(err, DownloadError::RequirementsHash { .. }),
            "{err}"
        );
        assert_eq!(stored(&dir), 0);
        // Offline is no obstacle to a local file.
        let d = download(&an_index(true), &store, &file, &[hex(WHEEL)], &|_| {}).unwrap();
        assert_eq!(store.read_blob(&d).unwrap(), WHEEL);

        let missing = wheel_file(Location::Path(wheelhouse.path().join("nope.whl")), None);
        let err = download(&an_index(true), &store, &missing, &[], &|_| {}).unwrap_err();
        assert!(matches!(err, DownloadError::Local { .. }), "{err}");
        assert!(err.to_string().contains("nope.whl"), "{err}");
    }

    #[test]
    fn oversized_files_are_refused_before_downloading() {
        let server = Server::start(vec![(
            "/big.whl",
            vec![Reply::ok("application/zip", WHEEL)],
        )]);
        let (_dir, store) = store();
        let file = DistFile {
            size: Some(MAX_WHEEL_BYTES + 1),
            ..wheel_file(at(&server, "/big.whl"), None)
        };
        let err = download(&an_index(false), &store, &file, &[], &|_| {}).unwrap_err();
        assert!(matches!(err, DownloadError::TooLarge { .. }), "{err}");
        assert_eq!(server.hits("/big.whl"), 0);
    }

    #[test]
    fn download_all_keeps_the_order_and_reports_the_first_failure() {
        let bodies: Vec<Vec<u8>> = (0..12).map(|i| format!("wheel {i}").into_bytes()).collect();
        let paths: Vec<String> = (0..12).map(|i| format!("/w{i}.whl")).collect();
        let server = Server::start(
            paths
                .iter()
                .zip(&bodies)
                .map(|(p, b)| (p.as_str(), vec![Reply::ok("application/zip", b.clone())]))
                .collect(),
        );
        let (_dir, store) = store();
        let jobs: Vec<(DistFile, Vec<String>)> = paths
            .iter()
            .zip(&bodies)
            .map(|(p, b)| {
                let mut f = wheel_file(at(&server, p), Some(&hex(b)));
                f.filename = format!("a-1.0-py3-none-any.whl{p}");
                (f, vec![])
            })
            .collect();
        let got = download_all(&an_index(false), &store, &jobs, &|_| {}).unwrap();
        let want: Vec<Digest> = bodies.iter().map(|b| Digest::of(b)).collect();
        assert_eq!(got, want);

        let mut bad = jobs.clone();
        bad[3].0.sha256 = Some("4".repeat(64));
        bad[3].0.location = at(&server, "/w11.whl");
        let err = download_all(&an_index(false), &store, &bad, &|_| {}).unwrap_err();
        assert!(matches!(err, DownloadError::IndexHash { .. }), "{err}");
        assert!(download_all(&an_index(false), &store, &[], &|_| {})
            .unwrap()
            .is_empty());
    }
}
