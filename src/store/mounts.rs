//! Cache mounts' folders (`RUN --mount=type=cache`): one folder per id,
//! kept between builds, as BuildKit keeps its cache mounts.
//!
//! A cache folder is not content-addressed: steps write into it while they
//! run. So it lives beside the blobs, at `ROOT/mounts/cache/NAME/`, with an
//! entry `keys/cache-mount/NAME` naming its id. The entry is what the rest
//! of the store sees: `hoist cache ls` and `du` count the folder under it,
//! its mtime is the folder's last use, and a prune that drops the entry
//! removes the folder with it (see [`super::gc`]); a prune runs only while
//! no build holds the store, so never under a running step.
//!
//! Steps sharing one folder take a `flock(2)` on `NAME.lock` beside it for
//! as long as they use it: shared for `sharing=shared`, exclusive (waiting)
//! for `locked`. A `private` step tries for an exclusive lock without
//! waiting and, when another step holds the folder, gets a new empty one
//! in `ROOT/tmp` that goes when it ends (BuildKit makes a new cache
//! instance then too).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::lock::flock;
use super::{Store, StoreError};
use crate::digest::Digest;

/// The entry kind of cache mounts.
pub const CACHE_MOUNT_KIND: &str = "cache-mount";

/// How steps share one cache folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    Shared,
    Private,
    Locked,
}

/// A cache folder held for one step; let go when dropped.
#[derive(Debug)]
pub struct CacheDir {
    pub path: PathBuf,
    /// Made for this step (a new id, or a private step's own folder):
    /// the mount's `uid`, `gid` and `mode` apply.
    pub created: bool,
    _lock: Option<File>,
    _temp: Option<tempfile::TempDir>,
}

/// The folder name of a cache id: readable, and unique by a hash.
pub fn cache_name(id: &str) -> String {
    let readable: String = id
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' | '.' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .take(40)
        .collect();
    let readable = readable.trim_start_matches(['.', '-']);
    let hash = Digest::of(id.as_bytes());
    match readable.is_empty() {
        true => hash.hex()[..16].to_owned(),
        false => format!("{readable}-{}", &hash.hex()[..12]),
    }
}

/// Where the cache folder `name` lives.
pub fn cache_path(root: &Path, name: &str) -> PathBuf {
    root.join("mounts/cache").join(name)
}

impl Store {
    /// The cache folder of `id`, made (with `mode`) when it is new, held
    /// as `share` says until the returned value is dropped.
    pub fn cache_dir(&self, id: &str, share: Share, mode: u32) -> Result<CacheDir, StoreError> {
        let name = cache_name(id);
        let path = cache_path(self.root(), &name);
        let parent = path.parent().unwrap_or(self.root()).to_owned();
        fs_err::create_dir_all(&parent)?;
        let lock_path = parent.join(format!("{name}.lock"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", lock_path.display())))?;
        match share {
            Share::Shared => flock(&lock, libc::LOCK_SH)?,
            Share::Locked => flock(&lock, libc::LOCK_EX)?,
            Share::Private => {
                if let Err(e) = flock(&lock, libc::LOCK_EX | libc::LOCK_NB) {
                    if e.kind() != io::ErrorKind::WouldBlock {
                        return Err(e.into());
                    }
                    let temp = tempfile::Builder::new()
                        .prefix("cache-mount-")
                        .tempdir_in(self.root().join("tmp"))?;
                    fs_err::set_permissions(temp.path(), std::fs::Permissions::from_mode(mode))?;
                    return Ok(CacheDir {
                        path: temp.path().to_owned(),
                        created: true,
                        _lock: None,
                        _temp: Some(temp),
                    });
                }
            }
        }
        let created = match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {
                fs_err::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
                true
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => {
                return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display())).into())
            }
        };
        // Written (or touched) on every use: its mtime is the last use.
        let value = serde_json::json!({ "id": id }).to_string();
        self.put_key(CACHE_MOUNT_KIND, &name, value.as_bytes())?;
        Ok(CacheDir {
            path,
            created,
            _lock: Some(lock),
            _temp: None,
        })
    }
}

/// The bytes a folder's files take (not following links).
pub fn tree_size(p: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

/// Removes a cache folder and its lock file; folders a step left
/// read-only are opened first.
pub fn remove_cache(root: &Path, name: &str) -> Result<(), StoreError> {
    let path = cache_path(root, name);
    let _ = std::fs::remove_file(path.with_file_name(format!("{name}.lock")));
    super::trees::remove_tree(&path);
    if path.exists() {
        fs_err::remove_dir_all(&path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_readable_and_distinct() {
        for (id, want) in [
            ("/root/.cache", "root-.cache-"),
            ("npm", "npm-"),
            ("/", ""),
            ("Go Build", "go-build-"),
        ] {
            let n = cache_name(id);
            assert!(n.starts_with(want), "{id}: {n}");
            assert!(!n.starts_with('.') && !n.contains('/'), "{id}: {n}");
        }
        assert_ne!(cache_name("/a b"), cache_name("/a-b"));
    }

    #[test]
    fn locked_and_private_sharing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.cache_dir("/c", Share::Shared, 0o755).unwrap();
        assert!(a.created);
        std::fs::write(a.path.join("f"), "x").unwrap();
        // A private step finds it in use: a new empty folder.
        let p = store.cache_dir("/c", Share::Private, 0o755).unwrap();
        assert_ne!(p.path, a.path);
        assert!(p.created && std::fs::read_dir(&p.path).unwrap().next().is_none());
        let b = store.cache_dir("/c", Share::Shared, 0o755).unwrap();
        assert_eq!((b.path.clone(), b.created), (a.path.clone(), false));
        let temp = p.path.clone();
        drop((a, b, p));
        assert!(!temp.exists(), "a private step's folder goes with it");
        let p = store.cache_dir("/c", Share::Private, 0o755).unwrap();
        assert!(p.path.join("f").is_file(), "free again: the kept folder");
        assert_eq!(store.list_keys(CACHE_MOUNT_KIND).unwrap().len(), 1);
    }
}
