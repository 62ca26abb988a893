//! Core metadata of a wheel, from the cheapest place that has it.
//!
//! The resolver needs a version's dependencies before choosing it, and a
//! wheel can be large, so its `METADATA` is looked for in order: memory,
//! the store (kept by the wheel's sha256: it never changes for a given
//! file), the wheel itself when it is local or already stored, the
//! index's PEP 658 `<url>.metadata` file (verified against the hash the
//! page states), and only then the wheel, downloaded into the store where
//! the install will find it. Whatever the place, the metadata must name
//! the project and version the file name does, as pip requires.

use std::io::{Read, Seek};
use std::str::FromStr;

use pep508_rs::PackageName;
use reqwest::Url;

use super::super::dist::{DistFile, DistKind, Location};
use super::super::download;
use super::super::metadata::CoreMetadata;
use super::super::tags::WheelFilename;
use super::{lock, sha256_digest, Index, IndexError, MAX_METADATA_BYTES, PAGE_TIMEOUT};
use crate::digest::Digest;
use crate::store::Store;

/// Where PyPI keeps its files (and their PEP 658 `.metadata`).
const PYPI_FILES_HOST: &str = "files.pythonhosted.org";

/// Store cache-entry kind of core metadata.
const METADATA_KEY_KIND: &str = "pip-metadata";

impl Index {
    /// The core metadata of a wheel, checked against its file name: from
    /// memory, the store, the wheel itself when it is local or stored, the
    /// index's PEP 658 `.metadata` file, or else by downloading the wheel
    /// into the store.
    pub fn metadata(&self, file: &DistFile, store: &Store) -> Result<CoreMetadata, IndexError> {
        let DistKind::Wheel(wheel) = &file.kind else {
            return Err(IndexError::Sdist {
                filename: file.filename.clone(),
            });
        };
        let memo = format!("{}#{:?}", file.filename, file.location);
        if let Some(m) = lock(&self.metadata).get(&memo) {
            return Ok(m.clone());
        }
        let bytes = self.metadata_bytes(file, wheel, store)?;
        let m = CoreMetadata::parse(&bytes).map_err(|source| IndexError::Metadata {
            filename: file.filename.clone(),
            source,
        })?;
        if m.name != wheel.name || m.version != wheel.version {
            return Err(IndexError::MetadataMismatch {
                filename: file.filename.clone(),
                name: m.name.to_string(),
                version: m.version.to_string(),
            });
        }
        if let Some(hex) = &file.sha256 {
            if store.get_key(METADATA_KEY_KIND, hex)?.is_none() {
                store.put_key(METADATA_KEY_KIND, hex, header_part(&bytes))?;
            }
        }
        lock(&self.metadata).insert(memo, m.clone());
        Ok(m)
    }

    /// A wheel's core metadata when it costs no request: from memory or
    /// the store's entry by the wheel's sha256. Unchecked against the file
    /// name: a hint for reading ahead, never an answer.
    pub fn kept_metadata(&self, file: &DistFile, store: &Store) -> Option<CoreMetadata> {
        let memo = format!("{}#{:?}", file.filename, file.location);
        if let Some(m) = lock(&self.metadata).get(&memo) {
            return Some(m.clone());
        }
        let hex = file.sha256.as_deref()?;
        let bytes = store.get_key(METADATA_KEY_KIND, hex).ok()??;
        CoreMetadata::parse(&bytes).ok()
    }

    fn metadata_bytes(
        &self,
        file: &DistFile,
        wheel: &WheelFilename,
        store: &Store,
    ) -> Result<Vec<u8>, IndexError> {
        let digest = match &file.sha256 {
            Some(hex) => Some(sha256_digest(hex).ok_or_else(|| IndexError::BadWheel {
                filename: file.filename.clone(),
                why: format!("its stated sha256 `{hex}` is not 64 hex digits"),
            })?),
            None => None,
        };
        if let Some(d) = &digest {
            if let Some(bytes) = store.get_key(METADATA_KEY_KIND, d.hex())? {
                return Ok(bytes);
            }
            if store.has(d) {
                return read_wheel_metadata(store.open_blob(d)?, wheel, &file.filename);
            }
        }
        let url = match &file.location {
            Location::Path(path) => {
                let f = fs_err::File::open(path).map_err(|e| IndexError::BadWheel {
                    filename: file.filename.clone(),
                    why: e.to_string(),
                })?;
                return read_wheel_metadata(f, wheel, &file.filename);
            }
            Location::Url(url) => url,
        };
        // PyPI serves `.metadata` for every wheel, but a proxy in the way
        // may drop the `core-metadata` key from its pages (this network's
        // does): ask PyPI's file host anyway, and download the wheel only
        // when it answers 404. The wheel is verified by its own hash
        // later; the metadata's name and version are checked below.
        let expected = file.metadata.clone().or_else(|| {
            Url::parse(url)
                .ok()
                .filter(|u| u.host_str() == Some(PYPI_FILES_HOST))
                .map(|_| None)
        });
        if let (Some(expected), false) = (expected, self.offline) {
            if let Some(bytes) = self.pep658(file, url, expected.as_deref())? {
                return Ok(bytes);
            }
        }
        let digest = download::download(self, store, file, &[], &|_| {})?;
        read_wheel_metadata(store.open_blob(&digest)?, wheel, &file.filename)
    }

    /// `<url>.metadata`, verified; `None` when the index does not have it
    /// after all.
    fn pep658(
        &self,
        file: &DistFile,
        url: &str,
        expected: Option<&str>,
    ) -> Result<Option<Vec<u8>>, IndexError> {
        // PEP 658: the file's URL with `.metadata` appended to its path
        // (a query, if any, stays after it).
        let mut parsed = Url::parse(url).map_err(|e| IndexError::BadUrl {
            url: url.to_owned(),
            why: e.to_string(),
        })?;
        let path = format!("{}.metadata", parsed.path());
        parsed.set_path(&path);
        let meta_url = parsed.to_string();
        let Some(got) = self.get(&parsed, "*/*", MAX_METADATA_BYTES, Some(PAGE_TIMEOUT))? else {
            return Ok(None);
        };
        if let Some(expected) = expected {
            let actual = Digest::of(&got.body);
            if actual.hex() != expected.to_ascii_lowercase() {
                return Err(IndexError::MetadataHash {
                    filename: file.filename.clone(),
                    url: meta_url,
                    expected: expected.to_owned(),
                    actual: actual.hex().to_owned(),
                });
            }
        }
        Ok(Some(got.body))
    }

    /// Reads the core metadata of several wheels at once (up to
    /// [`download::PARALLEL`] at a time), so that the resolver's later
    /// [`Index::metadata`] calls are answered from memory. Failures are
    /// left for those calls to report.
    pub fn prefetch(&self, files: &[DistFile], store: &Store) {
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..download::PARALLEL.min(files.len()) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    let _ = self.metadata(file, store);
                });
            }
        });
    }
}

/// The headers of a METADATA file, without the long description after
/// them: what is kept in the store.
fn header_part(bytes: &[u8]) -> &[u8] {
    let mut at = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if line == b"\n" || line == b"\r\n" {
            break;
        }
        at += line.len();
    }
    &bytes[..at]
}

/// A wheel's `*.dist-info/METADATA` bytes.
fn read_wheel_metadata(
    reader: impl Read + Seek,
    wheel: &WheelFilename,
    filename: &str,
) -> Result<Vec<u8>, IndexError> {
    let bad = |why: String| IndexError::BadWheel {
        filename: filename.to_owned(),
        why,
    };
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| bad(e.to_string()))?;
    let candidates: Vec<String> = zip
        .file_names()
        .filter(|n| {
            n.strip_suffix("/METADATA")
                .is_some_and(|dir| !dir.contains('/') && dir.ends_with(".dist-info"))
        })
        .map(str::to_owned)
        .collect();
    // One .dist-info folder is the rule; if there are several, the one
    // named for the project (`name-version.dist-info`) is the wheel's.
    let name = match candidates.as_slice() {
        [one] => one.clone(),
        [] => return Err(bad("it has no *.dist-info/METADATA".to_owned())),
        several => several
            .iter()
            .find(|n| {
                n.split_once('-')
                    .and_then(|(dist, _)| PackageName::from_str(dist).ok())
                    .is_some_and(|d| d == wheel.name)
            })
            .cloned()
            .ok_or_else(|| {
                bad(format!(
                    "it has several metadata files: {}",
                    several.join(", ")
                ))
            })?,
    };
    let entry = zip
        .by_name(&name)
        .map_err(|e| bad(format!("{name}: {e}")))?;
    let mut bytes = Vec::new();
    entry
        .take(MAX_METADATA_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("{name}: {e}")))?;
    if bytes.len() as u64 > MAX_METADATA_BYTES {
        return Err(bad(format!(
            "{name} is larger than {MAX_METADATA_BYTES} bytes"
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::super::fixtures::{config, name, A_METADATA, JSON};
    use super::super::test_server::{zip_of, Reply, Server};
    use super::super::IndexConfig;
    use super::*;
    use pep440_rs::Version;

    #[test]
    fn header_part_table() {
        for (input, want) in [
            ("A: 1\nB: 2\n\nbody\n", "A: 1\nB: 2\n"),
            ("A: 1\r\n\r\nbody", "A: 1\r\n"),
            ("A: 1\nB: 2", "A: 1\nB: 2"),
            ("\nbody", ""),
        ] {
            assert_eq!(header_part(input.as_bytes()), want.as_bytes(), "{input:?}");
        }
    }

    #[test]
    fn wheel_metadata_is_found_in_the_zip() {
        let a = WheelFilename::parse("a-1.0-py3-none-any.whl").unwrap();
        let read = |files: &[(&str, &[u8])]| {
            read_wheel_metadata(io::Cursor::new(zip_of(files)), &a, "a-1.0-py3-none-any.whl")
        };
        let got = read(&[
            ("a/__init__.py", b""),
            ("a-1.0.dist-info/METADATA", A_METADATA),
        ])
        .unwrap();
        assert_eq!(got, A_METADATA);
        // Several dist-info folders: the project's.
        let got = read(&[
            ("b-2.dist-info/METADATA", b"Name: b\n"),
            ("A-1.0.dist-info/METADATA", A_METADATA),
        ])
        .unwrap();
        assert_eq!(got, A_METADATA);

        for (what, files) in [
            ("none", &[("a/METADATA", &b"x"[..])][..]),
            ("nested", &[("x/a-1.0.dist-info/METADATA", &b"x"[..])][..]),
            (
                "several, none the project's",
                &[
                    ("b-1.dist-info/METADATA", &b"x"[..]),
                    ("c-1.dist-info/METADATA", &b"x"[..]),
                ][..],
            ),
        ] {
            let err = read(files).unwrap_err();
            assert!(matches!(err, IndexError::BadWheel { .. }), "{what}: {err}");
        }
        let err =
            read_wheel_metadata(io::Cursor::new(b"not a zip".to_vec()), &a, "a.whl").unwrap_err();
        assert!(matches!(err, IndexError::BadWheel { .. }), "{err}");
    }

    /// A page listing one wheel of `a` at `/f/`, with the given extra JSON.
    fn page_for(server_url: &str, wheel: &[u8], extra: &str) -> String {
        format!(
            r#"{{"files":[{{"filename":"a-1.0-py3-none-any.whl","url":"{server_url}/f/a-1.0-py3-none-any.whl","hashes":{{"sha256":"{}"}}{extra}}}]}}"#,
            Digest::of(wheel).hex()
        )
    }

    #[test]
    fn metadata_from_pep_658_verified_and_cached_in_the_store() {
        let wheel = zip_of(&[("a-1.0.dist-info/METADATA", A_METADATA)]);
        let meta_hash = Digest::of(A_METADATA).hex().to_owned();
        let extra = format!(r#","core-metadata":{{"sha256":"{meta_hash}"}}"#);
        let server = Server::start(vec![(
            "/f/a-1.0-py3-none-any.whl.metadata",
            vec![Reply::ok("application/octet-stream", A_METADATA)],
        )]);
        let main = Server::start(vec![(
            "/simple/a/",
            vec![Reply::ok(JSON, page_for(&server.url, &wheel, &extra))],
        )]);
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let cfg = config(&format!("{}/simple/", main.url));
        let index = Index::new(cfg.clone()).unwrap();
        let f = index.files(&name("a")).unwrap().remove(0);
        let m = index.metadata(&f, &store).unwrap();
        assert_eq!(m.version, Version::from_str("1.0").unwrap());
        index.metadata(&f, &store).unwrap();
        assert_eq!(
            server.seen().len(),
            1,
            "the wheel is not downloaded; metadata once"
        );

        // A later, offline run reads it from the store.
        let offline = Index::new(IndexConfig {
            offline: true,
            ..cfg
        })
        .unwrap();
        assert_eq!(offline.metadata(&f, &store).unwrap(), m);
        assert_eq!(server.seen().len(), 1);

        // A metadata file whose hash is not the stated one is refused.
        let wrong = DistFile {
            metadata: Some(Some("0".repeat(64))),
            sha256: Some("1".repeat(64)),
            ..f.clone()
        };
        let err = Index::new(config(&main.url))
            .unwrap()
            .metadata(&wrong, &store)
            .unwrap_err();
        assert!(matches!(err, IndexError::MetadataHash { .. }), "{err}");
        assert!(store
            .get_key(METADATA_KEY_KIND, &"1".repeat(64))
            .unwrap()
            .is_none());
    }

    /// A file server holding `wheel` as `a` 1.0's, and an index whose page
    /// lists it without PEP 658 metadata: (files, index).
    fn serve_wheel(wheel: &[u8], content_type: &str) -> (Server, Server) {
        let files = Server::start(vec![(
            "/f/a-1.0-py3-none-any.whl",
            vec![Reply::ok(content_type, wheel.to_vec())],
        )]);
        let index = Server::start(vec![(
            "/simple/a/",
            vec![Reply::ok(JSON, page_for(&files.url, wheel, ""))],
        )]);
        (files, index)
    }

    #[test]
    fn metadata_from_the_wheel_when_the_index_has_none() {
        let wheel = zip_of(&[("a-1.0.dist-info/METADATA", A_METADATA)]);
        let (_files, main) = serve_wheel(&wheel, "application/octet-stream");
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let index = Index::new(config(&format!("{}/simple/", main.url))).unwrap();
        let f = index.files(&name("a")).unwrap().remove(0);
        let m = index.metadata(&f, &store).unwrap();
        assert_eq!(m.name, name("a"));
        assert!(
            store.has(&Digest::of(&wheel)),
            "the wheel is kept for the install"
        );
        let key = store
            .get_key(METADATA_KEY_KIND, Digest::of(&wheel).hex())
            .unwrap()
            .unwrap();
        assert!(!key.ends_with(b"Long text.\n"), "only headers are kept");

        // A wheel that calls itself something else is refused.
        let liar = zip_of(&[("a-1.0.dist-info/METADATA", b"Name: a\nVersion: 2.0\n")]);
        let wheelhouse = tempfile::tempdir().unwrap();
        let path = wheelhouse.path().join("a-1.0-py3-none-any.whl");
        std::fs::write(&path, &liar).unwrap();
        let local = Index::new(IndexConfig {
            no_index: true,
            find_links: vec![wheelhouse.path().display().to_string()],
            ..IndexConfig::default()
        })
        .unwrap();
        let f = local.files(&name("a")).unwrap().remove(0);
        let err = local.metadata(&f, &store).unwrap_err();
        assert!(matches!(err, IndexError::MetadataMismatch { .. }), "{err}");

        let sdist = DistFile {
            filename: "a-1.0.tar.gz".into(),
            kind: DistKind::Sdist {
                version: Version::from_str("1.0").unwrap(),
            },
            ..f
        };
        assert!(matches!(
            local.metadata(&sdist, &store),
            Err(IndexError::Sdist { .. })
        ));
    }

    #[test]
    fn prefetch_fills_the_memory_for_later_questions() {
        let wheel = zip_of(&[("a-1.0.dist-info/METADATA", A_METADATA)]);
        let (server, main) = serve_wheel(&wheel, "application/zip");
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let index = Index::new(config(&format!("{}/simple/", main.url))).unwrap();
        let files = index.files(&name("a")).unwrap();
        let twice = [files.clone(), files].concat();
        index.prefetch(&twice, &store);
        assert_eq!(server.seen().len(), 1);
        // Gone from the store, still known for the run.
        std::fs::remove_dir_all(store_dir.path().join("keys")).unwrap();
        std::fs::remove_file(store.blob_path(&Digest::of(&wheel))).unwrap();
        index.metadata(&twice[0], &store).unwrap();
        assert_eq!(server.seen().len(), 1);
    }
}
