//! Offline bundles: everything a build fetches, in one file, for a host
//! with no network.
//!
//! `hoist bundle` runs the builds on the connected host against a fresh,
//! empty store of its own, and also downloads every base layer (a build
//! fetches them only when it needs their bytes, an air-gapped build may
//! need them all). What that store then holds is exactly what the builds
//! read from the network, plus what they made. The bundle keeps the
//! former:
//!
//! - every blob but the images' own (their manifests, configs and the
//!   layers hoist wrote): base indexes, manifests, configs and layers, npm
//!   tarballs, wheels;
//! - the store entries of the kinds in [`INPUT_KINDS`]: which digest a
//!   base's tag meant, the base's facts, which blob holds each tarball or
//!   wheel, pip's index pages, metadata and resolutions.
//!
//! Layer entries (`deps-npm`, `app-layer`...) are left out on purpose: the
//! air-gapped build makes its layers again from the inputs, and gets the
//! same digests because hoist's builds are deterministic.
//!
//! # The file
//!
//! A tar file: first `hoist-bundle.json` (the [`Index`]: the images built
//! and every blob and entry, each with its sha256 and size), then
//! `blobs/sha256/<hex>` in digest order, then `keys/<kind>/<name>`. Tar
//! headers are fixed (mode 0644, owner 0, mtime 0), so a bundle of the
//! same inputs is the same bytes. It is written to a temporary file next
//! to the output and renamed into place when complete.
//!
//! # Import
//!
//! [`import`] reads the tar in one pass. Every blob goes through
//! [`Store::import`], which hashes it and keeps it only when it matches
//! its name and the index's size; every entry is hashed against the
//! index; nothing that the index does not list is accepted, and an entry
//! of another kind than [`INPUT_KINDS`] is refused. Entries are written
//! only after every blob is in, and only when nothing listed is missing,
//! so a truncated bundle leaves no entry naming a missing blob (the blobs
//! it did bring are verified, and harmless).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::exec::{BuildError, Event};
use crate::ops::batch::{self, Job};
use crate::registry::{self, Client, RegistryError};
use crate::store::{Store, StoreError};

/// The version of the format, in the index's `format`.
pub const FORMAT: &str = "hoist-bundle/1";

/// The index's name inside the tar.
pub const INDEX_NAME: &str = "hoist-bundle.json";

/// The store entry kinds a bundle carries: what builds learn from the
/// network (see the module docs).
pub const INPUT_KINDS: [&str; 7] = [
    "registry-tag",
    "facts",
    "npm-tarball",
    "pip-page",
    "pip-metadata",
    "pip-url",
    "pip-resolution",
];

/// An index larger than this is refused (a real one is a few hundred KiB).
const MAX_INDEX_SIZE: u64 = 64 << 20;
/// A store entry larger than this is refused (a real one is a few KiB; a
/// pip index page can be a few MiB).
const MAX_ENTRY_SIZE: u64 = 32 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("building image `{image}` for the bundle: {source}")]
    Build {
        image: String,
        #[source]
        source: Box<BuildError>,
    },
    #[error("fetching the base layers of image `{image}` for the bundle: {source}")]
    Base {
        image: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{file} is not a hoist bundle ({why}); write one with `hoist bundle --output FILE` on a connected host")]
    NotBundle { file: PathBuf, why: String },
    #[error("bundle {file}: {why}; the bundle is damaged or was changed: write it again with `hoist bundle`")]
    Damaged { file: PathBuf, why: String },
}

/// A bundle's table of contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// [`FORMAT`].
    pub format: String,
    /// The images built to make the bundle, as built on the connected
    /// host.
    pub images: Vec<BundledImage>,
    pub blobs: Vec<Item>,
    pub keys: Vec<KeyItem>,
}

/// One image a bundle was made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundledImage {
    pub name: String,
    pub target: String,
    pub platforms: Vec<String>,
    pub base: String,
    /// The digest the connected host built (the manifest's, or the
    /// index's for several platforms).
    pub digest: Digest,
}

/// A blob: its digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub digest: Digest,
    pub size: u64,
}

/// A store entry: its kind and name, and the digest and size of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyItem {
    pub kind: String,
    pub name: String,
    pub digest: Digest,
    pub size: u64,
}

/// What [`create`] wrote.
#[derive(Debug, Clone)]
pub struct Created {
    pub index: Index,
    /// The bundle's size in bytes.
    pub size: u64,
}

/// What [`import`] brought into the store.
#[derive(Debug, Clone)]
pub struct Imported {
    pub index: Index,
    /// Blobs that were not in the store yet.
    pub new_blobs: usize,
}

/// Builds `jobs` on a fresh store and writes what they fetched to
/// `output` (see the module docs). The jobs' outputs, pushes and registry
/// caches are dropped: making a bundle writes nothing but the bundle.
pub fn create(
    jobs: &[Job],
    output: &Path,
    report: &(dyn Fn(&Job, Event) + Sync),
    net: &dyn registry::Progress,
) -> Result<Created, BundleError> {
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| BundleError::Io { path, source }
    };
    let scratch = tempfile::Builder::new()
        .prefix(".hoist-bundle-")
        .tempdir_in(dir)
        .map_err(io_err(dir))?;
    let store = Store::open(scratch.path().join("store"))?;
    let jobs: Vec<Job> = jobs
        .iter()
        .map(|j| {
            let mut j = j.clone();
            j.opts.outputs.clear();
            j.opts.push.clear();
            j.opts.cache = Default::default();
            j.opts.deps.no_cache = false;
            j
        })
        .collect();
    let results = batch::build_all(&jobs, &store, report, net);

    let mut images = Vec::new();
    // Blobs the builds made, which the bundle leaves out.
    let mut made: BTreeSet<Digest> = BTreeSet::new();
    let mut base_blobs: BTreeSet<Digest> = BTreeSet::new();
    for (job, result) in jobs.iter().zip(results) {
        let built = result.map_err(|source| BundleError::Build {
            image: job.name.clone(),
            source: Box::new(source),
        })?;
        made.insert(built.digest.clone());
        for r in &built.images {
            let m = &r.image.manifest_json;
            let (base_layers, new_layers) = m.layers.split_at(r.base_layers.min(m.layers.len()));
            if let Some(base) = &r.base {
                let client =
                    Client::new(job.opts.registry.clone()).map_err(|source| BundleError::Base {
                        image: job.name.clone(),
                        source: Box::new(source),
                    })?;
                let diff_ids = &r.image.config_json.rootfs.diff_ids;
                let diff_ids = &diff_ids[..base_layers.len().min(diff_ids.len())];
                let name = format!("docker://{base}");
                client
                    .fetch_blobs(base, base_layers, &store, net)
                    .and_then(|_| {
                        crate::layer::verify::verify_base(&store, &name, base_layers, diff_ids)
                            .map_err(RegistryError::from)
                    })
                    .map_err(|source| BundleError::Base {
                        image: job.name.clone(),
                        source: Box::new(source),
                    })?;
            }
            made.insert(r.image.manifest.digest.clone());
            made.insert(m.config.digest.clone());
            made.extend(new_layers.iter().map(|l| l.digest.clone()));
            base_blobs.extend(base_layers.iter().map(|l| l.digest.clone()));
        }
        images.push(BundledImage {
            name: job.name.clone(),
            target: job.target.clone(),
            platforms: job.platforms.iter().map(|p| p.to_string()).collect(),
            base: job.opts.base.to_string(),
            digest: built.digest,
        });
    }
    let leave_out: BTreeSet<Digest> = made.difference(&base_blobs).cloned().collect();
    let index = Index {
        format: FORMAT.to_owned(),
        images,
        blobs: list_blobs(&store, &leave_out)?,
        keys: list_keys(&store)?,
    };
    let size = write(&index, &store, output)?;
    Ok(Created { index, size })
}

/// Every blob of `store` but those in `leave_out`, in digest order.
fn list_blobs(store: &Store, leave_out: &BTreeSet<Digest>) -> Result<Vec<Item>, BundleError> {
    let dir = store.root().join("blobs/sha256");
    let mut out = Vec::new();
    for e in fs_err::read_dir(&dir).map_err(|source| BundleError::Io {
        path: dir.clone(),
        source,
    })? {
        let e = e.map_err(|source| BundleError::Io {
            path: dir.clone(),
            source,
        })?;
        let Ok(digest) = Digest::parse(&format!("sha256:{}", e.file_name().to_string_lossy()))
        else {
            continue;
        };
        if leave_out.contains(&digest) {
            continue;
        }
        let size = e
            .metadata()
            .map_err(|source| BundleError::Io {
                path: e.path(),
                source,
            })?
            .len();
        out.push(Item { digest, size });
    }
    out.sort_by(|a, b| a.digest.cmp(&b.digest));
    Ok(out)
}

/// Every entry of the [`INPUT_KINDS`] in `store`, sorted.
fn list_keys(store: &Store) -> Result<Vec<KeyItem>, BundleError> {
    let mut out = Vec::new();
    for kind in INPUT_KINDS {
        let dir = store.root().join("keys").join(kind);
        let entries = match fs_err::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(BundleError::Io { path: dir, source }),
        };
        for e in entries {
            let e = e.map_err(|source| BundleError::Io {
                path: dir.clone(),
                source,
            })?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(bytes) = store.get_key(kind, &name)? else {
                continue;
            };
            out.push(KeyItem {
                kind: kind.to_owned(),
                digest: Digest::of(&bytes),
                size: bytes.len() as u64,
                name,
            });
        }
    }
    out.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
    Ok(out)
}

/// A tar header with fixed metadata.
fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

/// Writes the bundle to a temporary file next to `output`, then renames
/// it into place. Returns its size.
fn write(index: &Index, store: &Store, output: &Path) -> Result<u64, BundleError> {
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io_at = |path: &Path| {
        let path = path.to_owned();
        move |source| BundleError::Io { path, source }
    };
    let tmp = tempfile::Builder::new()
        .prefix(".hoist-bundle-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io_at(dir))?;
    let mut tar = tar::Builder::new(io::BufWriter::with_capacity(256 * 1024, tmp));
    let json = serde_json::to_vec_pretty(index).unwrap_or_default();
    let mut h = header(json.len() as u64);
    tar.append_data(&mut h, INDEX_NAME, &json[..])
        .map_err(io_at(output))?;
    for b in &index.blobs {
        let mut h = header(b.size);
        let f = store.open_blob(&b.digest)?;
        tar.append_data(&mut h, format!("blobs/sha256/{}", b.digest.hex()), f)
            .map_err(io_at(&store.blob_path(&b.digest)))?;
    }
    for k in &index.keys {
        let bytes = store.get_key(&k.kind, &k.name)?.unwrap_or_default();
        let mut h = header(bytes.len() as u64);
        tar.append_data(&mut h, format!("keys/{}/{}", k.kind, k.name), &bytes[..])
            .map_err(io_at(output))?;
    }
    let buf = tar.into_inner().map_err(io_at(output))?;
    let tmp = buf.into_inner().map_err(|e| BundleError::Io {
        path: output.to_owned(),
        source: e.into_error(),
    })?;
    // Readable as any other file the user writes (a temporary file is
    // private).
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(io_at(output))?;
    tmp.as_file().sync_all().map_err(io_at(output))?;
    let size = tmp.as_file().metadata().map_err(io_at(output))?.len();
    tmp.persist(output).map_err(|e| BundleError::Io {
        path: output.to_owned(),
        source: e.error,
    })?;
    crate::store::sync_dir(dir);
    Ok(size)
}

/// What a path inside the bundle names.
#[derive(Debug, PartialEq, Eq)]
enum Member {
    Index,
    Blob(Digest),
    Key { kind: String, name: String },
}

/// Parses a member's path; `None` for anything a bundle does not hold.
fn member(path: &str) -> Option<Member> {
    if path == INDEX_NAME {
        return Some(Member::Index);
    }
    if let Some(hex) = path.strip_prefix("blobs/sha256/") {
        return Digest::parse(&format!("sha256:{hex}"))
            .ok()
            .map(Member::Blob);
    }
    let rest = path.strip_prefix("keys/")?;
    let (kind, name) = rest.split_once('/')?;
    // The store checks names again when the entry is written.
    let plain = |s: &str| !s.is_empty() && !s.starts_with('.') && !s.contains('/');
    (INPUT_KINDS.contains(&kind) && plain(name)).then(|| Member::Key {
        kind: kind.to_owned(),
        name: name.to_owned(),
    })
}

/// Parses and checks an index read from `file`.
pub fn parse_index(bytes: &[u8], file: &Path) -> Result<Index, BundleError> {
    let not = |why: String| BundleError::NotBundle {
        file: file.to_owned(),
        why,
    };
    let index: Index = serde_json::from_slice(bytes).map_err(|e| not(format!("its index: {e}")))?;
    if index.format != FORMAT {
        return Err(not(format!(
            "its format is `{}`, and this hoist reads `{FORMAT}`",
            index.format
        )));
    }
    if let Some(k) = index
        .keys
        .iter()
        .find(|k| !INPUT_KINDS.contains(&k.kind.as_str()))
    {
        return Err(not(format!(
            "it lists an entry of kind `{}`, which bundles do not carry",
            k.kind
        )));
    }
    Ok(index)
}

/// Imports the bundle `file` into `store`, verifying everything (see the
/// module docs).
pub fn import(file: &Path, store: &Store) -> Result<Imported, BundleError> {
    let f = fs_err::File::open(file).map_err(|source| BundleError::Io {
        path: file.to_owned(),
        source,
    })?;
    import_from(io::BufReader::with_capacity(256 * 1024, f), file, store)
}

/// [`import`] from a reader; `file` names it in errors.
pub fn import_from(reader: impl Read, file: &Path, store: &Store) -> Result<Imported, BundleError> {
    let damaged = |why: String| BundleError::Damaged {
        file: file.to_owned(),
        why,
    };
    let io_err = |source| BundleError::Io {
        path: file.to_owned(),
        source,
    };
    let mut archive = tar::Archive::new(reader);
    let mut index: Option<Index> = None;
    let mut blobs: BTreeMap<Digest, (u64, bool)> = BTreeMap::new();
    // (kind, name) -> (digest, size, bytes once read)
    type Listed = BTreeMap<(String, String), (Digest, u64, Option<Vec<u8>>)>;
    let mut keys: Listed = BTreeMap::new();
    let mut new_blobs = 0;
    for entry in archive.entries().map_err(io_err)? {
        let mut entry = entry.map_err(io_err)?;
        let path = entry.path().map_err(io_err)?.to_string_lossy().into_owned();
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(damaged(format!("`{path}` is not a regular file")));
        }
        let size = entry.header().size().map_err(io_err)?;
        let Some(m) = member(&path) else {
            return Err(damaged(format!("`{path}` is nothing a bundle holds")));
        };
        if index.is_none() {
            if m != Member::Index {
                return Err(BundleError::NotBundle {
                    file: file.to_owned(),
                    why: format!("it starts with `{path}`, not {INDEX_NAME}"),
                });
            }
            if size > MAX_INDEX_SIZE {
                return Err(damaged(format!("its index has {size} bytes")));
            }
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(io_err)?;
            let ix = parse_index(&bytes, file)?;
            blobs = ix
                .blobs
                .iter()
                .map(|b| (b.digest.clone(), (b.size, false)))
                .collect();
            keys = ix
                .keys
                .iter()
                .map(|k| {
                    (
                        (k.kind.clone(), k.name.clone()),
                        (k.digest.clone(), k.size, None),
                    )
                })
                .collect();
            index = Some(ix);
            continue;
        }
        match m {
            Member::Index => return Err(damaged(format!("it has a second {INDEX_NAME}"))),
            Member::Blob(digest) => {
                let Some((want, seen)) = blobs.get_mut(&digest) else {
                    return Err(damaged(format!("blob {digest} is not in its index")));
                };
                if !store.has(&digest) {
                    new_blobs += 1;
                }
                store.import(&mut entry, &digest, Some(*want))?;
                *seen = true;
            }
            Member::Key { kind, name } => {
                let Some((digest, want, bytes)) = keys.get_mut(&(kind.clone(), name.clone()))
                else {
                    return Err(damaged(format!("entry {kind}/{name} is not in its index")));
                };
                if size != *want || size > MAX_ENTRY_SIZE {
                    return Err(damaged(format!(
                        "entry {kind}/{name} has {size} bytes, and its index says {want}"
                    )));
                }
                let mut buf = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut buf).map_err(io_err)?;
                let actual = Digest::of(&buf);
                if actual != *digest {
                    return Err(damaged(format!(
                        "entry {kind}/{name} hashes to {actual}, and its index says {digest}"
                    )));
                }
                *bytes = Some(buf);
            }
        }
    }
    let Some(index) = index else {
        return Err(BundleError::NotBundle {
            file: file.to_owned(),
            why: "it is empty".into(),
        });
    };
    if let Some((d, _)) = blobs.iter().find(|(_, (_, seen))| !seen) {
        return Err(damaged(format!(
            "blob {d} is in its index but not in the file (is it cut short?)"
        )));
    }
    let mut entries = Vec::new();
    for ((kind, name), (_, _, bytes)) in keys {
        let Some(bytes) = bytes else {
            return Err(damaged(format!(
                "entry {kind}/{name} is in its index but not in the file (is it cut short?)"
            )));
        };
        entries.push((kind, name, bytes));
    }
    for (kind, name, bytes) in entries {
        store.put_key(&kind, &name, &bytes)?;
    }
    Ok(Imported { index, new_blobs })
}

/// A tar of `members`, for tests that make bundles by hand.
#[cfg(test)]
fn tar_with(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, bytes) in members {
        let mut h = header(bytes.len() as u64);
        tar.append_data(&mut h, path, *bytes).unwrap();
    }
    tar.into_inner().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_of(blobs: &[&[u8]], keys: &[(&str, &str, &[u8])]) -> Vec<u8> {
        let ix = Index {
            format: FORMAT.into(),
            images: Vec::new(),
            blobs: blobs
                .iter()
                .map(|b| Item {
                    digest: Digest::of(b),
                    size: b.len() as u64,
                })
                .collect(),
            keys: keys
                .iter()
                .map(|(kind, name, b)| KeyItem {
                    kind: (*kind).into(),
                    name: (*name).into(),
                    digest: Digest::of(b),
                    size: b.len() as u64,
                })
                .collect(),
        };
        serde_json::to_vec(&ix).unwrap()
    }

    fn blob_path(b: &[u8]) -> String {
        format!("blobs/sha256/{}", Digest::of(b).hex())
    }

    #[test]
    fn members() {
        let d = Digest::of(b"x");
        for (path, want) in [
            (INDEX_NAME.to_owned(), Some(Member::Index)),
            (
                format!("blobs/sha256/{}", d.hex()),
                Some(Member::Blob(d.clone())),
            ),
            (
                "keys/npm-tarball/abc".to_owned(),
                Some(Member::Key {
                    kind: "npm-tarball".into(),
                    name: "abc".into(),
                }),
            ),
            ("keys/deps-npm/abc".to_owned(), None),
            ("keys/npm-tarball/../x".to_owned(), None),
            ("keys/npm-tarball/.x".to_owned(), None),
            ("blobs/sha256/nothex".to_owned(), None),
            ("../etc/passwd".to_owned(), None),
        ] {
            assert_eq!(member(&path), want, "{path}");
        }
    }

    #[test]
    fn import_verifies_and_writes_entries_last() {
        let good: &[u8] = b"a blob";
        let key: &[u8] = b"sha256:abc";
        let ix = index_of(&[good], &[("registry-tag", "t1", key)]);
        let file = Path::new("b.tar");
        let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
            (
                "complete",
                tar_with(&[
                    (INDEX_NAME, &ix),
                    (&blob_path(good), good),
                    ("keys/registry-tag/t1", key),
                ]),
                None,
            ),
            (
                "a blob changed",
                tar_with(&[
                    (INDEX_NAME, &ix),
                    (&blob_path(good), b"a blOb"),
                    ("keys/registry-tag/t1", key),
                ]),
                Some("does not match its digest"),
            ),
            (
                "an entry changed",
                tar_with(&[
                    (INDEX_NAME, &ix),
                    (&blob_path(good), good),
                    ("keys/registry-tag/t1", b"sha256:abd"),
                ]),
                Some("hashes to"),
            ),
            (
                "cut short",
                tar_with(&[(INDEX_NAME, &ix), (&blob_path(good), good)]),
                Some("entry registry-tag/t1 is in its index but not in the file"),
            ),
            (
                "an extra blob",
                tar_with(&[(INDEX_NAME, &ix), (&blob_path(b"other"), b"other")]),
                Some("is not in its index"),
            ),
            (
                "no index first",
                tar_with(&[(&blob_path(good), good)]),
                Some("not hoist-bundle.json"),
            ),
            (
                "another file",
                tar_with(&[(INDEX_NAME, &ix), ("etc/passwd", b"x")]),
                Some("nothing a bundle holds"),
            ),
            ("empty", Vec::new(), Some("it is empty")),
            (
                "not JSON",
                tar_with(&[(INDEX_NAME, b"nope")]),
                Some("its index"),
            ),
        ];
        for (what, bytes, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let got = import_from(&bytes[..], file, &store);
            match want {
                None => {
                    let imported = got.unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(imported.new_blobs, 1);
                    assert!(store.has(&Digest::of(good)));
                    assert_eq!(store.get_key("registry-tag", "t1").unwrap().unwrap(), key);
                }
                Some(needle) => {
                    let err = got.err().unwrap_or_else(|| panic!("{what}: imported"));
                    assert!(err.to_string().contains(needle), "{what}: {err}");
                    // No entry is written from a bundle that failed.
                    assert_eq!(store.get_key("registry-tag", "t1").unwrap(), None, "{what}");
                }
            }
        }
    }

    #[test]
    fn index_refuses_other_formats_and_kinds() {
        let file = Path::new("b.tar");
        let mut ix: Index = serde_json::from_slice(&index_of(&[], &[])).unwrap();
        ix.format = "hoist-bundle/9".into();
        let err = parse_index(&serde_json::to_vec(&ix).unwrap(), file).unwrap_err();
        assert!(err.to_string().contains("hoist-bundle/9"), "{err}");
        let ix = index_of(&[], &[("deps-npm", "k", b"{}")]);
        let err = parse_index(&ix, file).unwrap_err();
        assert!(err.to_string().contains("`deps-npm`"), "{err}");
    }
}
