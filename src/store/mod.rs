//! The local content-addressed store.
//!
//! Blobs live at `ROOT/blobs/sha256/<hex>` and nowhere else; a blob file
//! exists only once its bytes have been hashed and found to match its name.
//! Writes go to a unique temporary file in `ROOT/tmp` (same file system),
//! are flushed and fsynced, checked, then renamed into place, and the folder
//! is fsynced. Renames are atomic, and a blob that "already exists" is, by
//! construction, the same bytes: so several hoist processes can share one
//! store without locks, and a crash never leaves a half-written blob where
//! a reader would find it.
//!
//! Deleting is the one thing that needs care: see `lock.rs` for why every
//! open store holds a shared lock and a prune takes it exclusively, and
//! [`gc`] for what is kept. Reading a cache entry refreshes its file's
//! modification time, which is how the store knows what was used last.
//!
//! The root is `$HOIST_CACHE`, else `$XDG_CACHE_HOME/hoist`, else
//! `~/.cache/hoist`.

pub mod gc;
mod lock;
pub mod mounts;
pub mod trees;

pub(crate) use lock::flock;

use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fs_err as fs;

use crate::digest::{Digest, HashingWriter};

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("blob content does not match its digest: expected {expected}, got {actual} ({size} bytes); the source is corrupt or was changed while being read")]
    DigestMismatch {
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    #[error("blob {digest} has {actual} bytes, but its descriptor says {expected}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("no cache folder: set HOIST_CACHE, XDG_CACHE_HOME or HOME")]
    NoRoot,
    #[error("cache key `{0}` is not a valid store key")]
    BadKey(String),
    #[error("blob {0} is not in the store at {1}")]
    Missing(Digest, PathBuf),
    #[error("other hoist processes are still using the store at {} after waiting {}s; try again when they finish, or wait longer with --wait", root.display(), waited.as_secs())]
    Busy { root: PathBuf, waited: Duration },
}

/// A handle on the store's root folder.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// Held shared while any clone of this handle lives.
    lock: Arc<lock::StoreLock>,
}

impl Store {
    /// Opens the store at its default location (see the module docs).
    pub fn open_default() -> Result<Store, StoreError> {
        Store::open(default_root()?)
    }

    /// Opens (creating if needed) the store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let root = root.into();
        fs::create_dir_all(root.join("blobs/sha256"))?;
        fs::create_dir_all(root.join("tmp"))?;
        let lock = Arc::new(lock::StoreLock::shared(&root)?);
        Ok(Store { root, lock })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A full disk told as the user can act on it: the store's folder and
    /// the ways out, not the name of the temporary file that did not fit
    /// (it is gone by the time the message is read). Other errors pass.
    pub(crate) fn disk_full(&self, e: io::Error) -> io::Error {
        match e.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => io::Error::new(
                e.kind(),
                format!(
                    "no space left on the disk of the store at {}: free space there (`hoist cache prune`), or set HOIST_CACHE to a folder on a larger disk",
                    self.root.display()
                ),
            ),
            _ => e,
        }
    }

    /// Where the blob with this digest lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn has(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Opens a stored blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<fs::File, StoreError> {
        let path = self.blob_path(digest);
        match fs::File::open(&path) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::Missing(digest.clone(), path))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a small stored blob (a manifest, a config) whole.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let mut buf = Vec::new();
        self.open_blob(digest)?.read_to_end(&mut buf)?;
        Ok(buf)
    }

    /// Starts writing a new blob; its digest is known when it is finished.
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        let tmp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(self.root.join("tmp"))
            .map_err(|e| self.disk_full(e))?;
        Ok(BlobWriter {
            store: self.clone(),
            out: HashingWriter::new(BufWriter::with_capacity(256 * 1024, tmp)),
        })
    }

    /// Stores a small blob held in memory.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<(Digest, u64), StoreError> {
        let digest = Digest::of(bytes);
        if self.has(&digest) {
            return Ok((digest, bytes.len() as u64));
        }
        let mut w = self.writer()?;
        w.write_all(bytes)?;
        w.finish(Some(&digest), Some(bytes.len() as u64))
    }

    /// Copies a blob from `reader` into the store, verifying it has the
    /// expected digest and size. Skips the copy when the blob is present.
    pub fn import(
        &self,
        reader: &mut dyn Read,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<(), StoreError> {
        if self.has(digest) {
            return Ok(());
        }
        let mut w = self.writer()?;
        io::copy(reader, &mut w)?;
        w.finish(Some(digest), size)?;
        Ok(())
    }
}

impl Store {
    /// Where the cache entry `kind/name` lives. `kind` is a fixed word
    /// chosen by the caller (`deps-npm`, `npm-tarball`...), `name` a hex
    /// key; both are checked so a key can never leave the store.
    fn key_path(&self, kind: &str, name: &str) -> Result<PathBuf, StoreError> {
        let ok = |s: &str, extra: &[u8]| {
            !s.is_empty()
                && s.len() <= 200
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b))
        };
        if !ok(kind, b"-") || !ok(name, b"-_.") || name.starts_with('.') {
            return Err(StoreError::BadKey(format!("{kind}/{name}")));
        }
        Ok(self.root.join("keys").join(kind).join(name))
    }

    /// Reads a cache entry: small bytes (usually JSON naming blobs) that a
    /// cache key maps to. `None` when absent. A hit marks the entry used
    /// now (its file's mtime), for `hoist cache prune`.
    pub fn get_key(&self, kind: &str, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut file = match fs::File::open(self.key_path(kind, name)?) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        // Best effort: a store on a read-only mount is still readable.
        let _ = file.file().set_modified(SystemTime::now());
        Ok(Some(bytes))
    }

    /// Writes a cache entry atomically (temp file, fsync, rename). Write
    /// the blobs an entry names first, so an entry never points at
    /// nothing.
    pub fn put_key(&self, kind: &str, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write_key(kind, name, value, true)
    }
}

impl Store {
    /// Writes an entry that only saves work (a hint: losing it costs a
    /// request, never a wrong answer) atomically but without fsync: after
    /// a crash it may be missing or empty, which its reader must take as
    /// "nothing known". Spares the two fsyncs of [`Store::put_key`]
    /// (about 10 ms each on a busy disk) where a build waits for them.
    pub fn put_hint(&self, kind: &str, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write_key(kind, name, value, false)
    }

    /// [`Store::put_key`] (`durable`: the file and its folder fsynced) or
    /// [`Store::put_hint`].
    fn write_key(
        &self,
        kind: &str,
        name: &str,
        value: &[u8],
        durable: bool,
    ) -> Result<(), StoreError> {
        let path = self.key_path(kind, name)?;
        let dir = path.parent().unwrap_or(&self.root).to_owned();
        fs::create_dir_all(&dir)?;
        let full = |e| self.disk_full(e);
        let mut tmp = tempfile::Builder::new()
            .prefix("key-")
            .tempfile_in(self.root.join("tmp"))
            .map_err(full)?;
        tmp.write_all(value).map_err(full)?;
        if durable {
            tmp.as_file().sync_all().map_err(full)?;
        }
        tmp.persist(&path).map_err(|e| full(e.error))?;
        if durable {
            sync_dir(&dir);
        }
        Ok(())
    }

    /// Every entry of `kind`, name and bytes, sorted by name; reading them
    /// here does not mark them used (listing is not using).
    pub fn list_keys(&self, kind: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let dir = self.key_path(kind, "x")?.with_file_name("");
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for e in rd {
            let e = e?;
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            match fs::read(e.path()) {
                Ok(b) => out.push((name, b)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A blob being written. Dropping it without [`BlobWriter::finish`] leaves
/// nothing behind.
pub struct BlobWriter {
    store: Store,
    out: HashingWriter<BufWriter<tempfile::NamedTempFile>>,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.out.count()
    }

    /// Flushes, fsyncs, checks the digest (and size) when one is expected,
    /// and moves the blob into place. Returns its digest and size.
    pub fn finish(
        self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64), StoreError> {
        self.finish_as(expected, expected_size, true)
    }

    /// [`finish`](Self::finish) without the fsyncs: the blob still lands
    /// by temp file and rename, whole or not at all while the machine
    /// runs, but a crash may leave it short. Only for blobs whose every
    /// reader checks them against their digest and makes them again when
    /// they do not match (layer segments): a crash then costs work, never
    /// a wrong answer. A layer segment is tens of blobs per build, and two
    /// fsyncs each were most of a cold deps layer's time on a busy disk.
    pub fn finish_hint(self) -> Result<(Digest, u64), StoreError> {
        self.finish_as(None, None, false)
    }

    fn finish_as(
        self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
        durable: bool,
    ) -> Result<(Digest, u64), StoreError> {
        let full = |e| self.store.disk_full(e);
        let (buf, digest, size) = self.out.finish();
        let tmp = buf.into_inner().map_err(|e| full(e.into_error()))?;
        if let Some(expected) = expected {
            if *expected != digest {
                return Err(StoreError::DigestMismatch {
                    expected: expected.clone(),
                    actual: digest,
                    size,
                });
            }
        }
        if let Some(expected) = expected_size {
            if expected != size {
                return Err(StoreError::SizeMismatch {
                    digest,
                    expected,
                    actual: size,
                });
            }
        }
        if durable {
            tmp.as_file().sync_all().map_err(full)?;
        }
        let dest = self.store.blob_path(&digest);
        if !dest.exists() {
            tmp.persist(&dest).map_err(|e| full(e.error))?;
            if durable {
                sync_dir(dest.parent().unwrap_or(Path::new(".")));
            }
        }
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf).map_err(|e| self.store.disk_full(e))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush().map_err(|e| self.store.disk_full(e))
    }
}

/// Best effort: make a rename durable. Some file systems refuse to fsync a
/// folder; the rename is still atomic there, so that is not an error.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn default_root() -> Result<PathBuf, StoreError> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = var("HOIST_CACHE") {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = var("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(p).join("hoist"));
    }
    if let Some(p) = var("HOME") {
        return Ok(PathBuf::from(p).join(".cache/hoist"));
    }
    Err(StoreError::NoRoot)
}

/// The key kind of build records (`hoist images`, `hoist history`): the
/// store names it so that its garbage collector can tell them apart.
pub const IMAGES_KIND: &str = "image";

/// Sizes for people, in decimal units as registries and docker show them.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (d, n) = store.put_bytes(b"hello").unwrap();
        assert_eq!(n, 5);
        assert_eq!(store.read_blob(&d).unwrap(), b"hello");
        // Second put is a no-op success.
        store.put_bytes(b"hello").unwrap();
    }

    #[test]
    fn import_rejects_wrong_digest_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let claimed = Digest::of(b"other");
        let err = store
            .import(&mut &b"hello"[..], &claimed, Some(5))
            .unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
        assert!(!store.has(&claimed));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(
            fs::read_dir(dir.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn keys_round_trip_and_refuse_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get_key("deps-npm", "abc123").unwrap(), None);
        store.put_key("deps-npm", "abc123", b"{}").unwrap();
        assert_eq!(store.get_key("deps-npm", "abc123").unwrap().unwrap(), b"{}");
        for (kind, name) in [
            ("../x", "a"),
            ("k", "../a"),
            ("k", ".."),
            ("K", "a"),
            ("k", "a/b"),
            ("", "a"),
        ] {
            assert!(store.put_key(kind, name, b"x").is_err(), "{kind}/{name}");
        }
    }

    #[test]
    fn import_rejects_wrong_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::of(b"hello");
        let err = store.import(&mut &b"hello"[..], &d, Some(6)).unwrap_err();
        assert!(matches!(err, StoreError::SizeMismatch { .. }), "{err}");
    }
}
