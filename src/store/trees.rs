//! Unpacked trees: a stack of layers unpacked once, kept by chain id, so
//! a sandboxed step starts from it instead of unpacking its base again.
//!
//! Unpacking a base into a folder costs what the kernel takes to allocate
//! its inodes (2.4 s of a 2.6 s no-op step for the 80 MB Debian base on
//! this project's ext4 host), and a step's root was unpacked afresh per
//! run. A tree is the whole stack (base layers and the step layers below
//! a step) unpacked and flattened, at `ROOT/trees/HEX/`, where HEX names
//! the stack: the chain of its layers' digests (see [`chain_id`]). Its
//! entry `keys/unpacked-tree/HEX` holds what the unpacker returns beside
//! the tree (the owners it could not set), so a hit needs no layer read.
//!
//! A tree is made under a temporary name in `ROOT/tmp` and renamed into
//! place, so a reader never sees half a tree; two builds making the same
//! tree at once both finish, and the second rename loses harmlessly. A
//! tree is never written after that: steps see it as a read-only overlay
//! lower (see [`crate::sandbox::overlay`]). The entry is the unit the
//! store's gc prunes: `hoist cache ls` and `du` count the tree under it,
//! its mtime is the tree's last use, and a prune that drops the entry
//! removes the tree (under the store's exclusive lock, so never under a
//! running step).

use std::io;
use std::path::{Path, PathBuf};

use super::{Store, StoreError};
use crate::digest::Digest;

/// The entry kind of unpacked trees.
pub const TREE_KIND: &str = "unpacked-tree";

/// The id of a stack of layers (bottom first), as OCI's ChainID chains
/// diff_ids, here over the blobs' digests: the first layer's digest, then
/// `sha256(chain + " " + next digest)` for each layer above.
pub fn chain_id<'a>(layers: impl IntoIterator<Item = &'a Digest>) -> Option<Digest> {
    layers.into_iter().fold(None, |chain, d| match chain {
        None => Some(d.clone()),
        Some(c) => Some(Digest::of(format!("{c} {d}").as_bytes())),
    })
}

/// Where the tree named `name` (a chain id's hex) lives.
pub fn tree_path(root: &Path, name: &str) -> PathBuf {
    root.join("trees").join(name)
}

/// A tree found in, or just put into, the store.
#[derive(Debug, Clone)]
pub struct Tree {
    pub path: PathBuf,
    /// What the maker stored beside it.
    pub value: Vec<u8>,
}

impl Store {
    /// The tree of `chain`, when the store has it (marking it used).
    pub fn tree(&self, chain: &Digest) -> Result<Option<Tree>, StoreError> {
        let path = tree_path(self.root(), chain.hex());
        let Some(value) = self.get_key(TREE_KIND, chain.hex())? else {
            return Ok(None);
        };
        Ok(path.is_dir().then_some(Tree { path, value }))
    }

    /// The tree of `chain`: the stored one, else one `make` fills (given
    /// an empty folder; it returns what to keep beside the tree). A tree
    /// `make` fails to fill is removed.
    pub fn tree_or_make<E: From<StoreError>>(
        &self,
        chain: &Digest,
        make: impl FnOnce(&Path) -> Result<Vec<u8>, E>,
    ) -> Result<Tree, E> {
        if let Some(t) = self.tree(chain)? {
            return Ok(t);
        }
        let temp = tempfile::Builder::new()
            .prefix("tree-")
            .tempdir_in(self.root().join("tmp"))
            .map_err(|e| StoreError::from(self.disk_full(e)))?;
        let made = temp.path().join("t");
        fs_err::create_dir(&made).map_err(StoreError::from)?;
        let value = match make(&made) {
            Ok(v) => v,
            Err(e) => {
                remove_tree(temp.path());
                return Err(e);
            }
        };
        let path = tree_path(self.root(), chain.hex());
        fs_err::create_dir_all(self.root().join("trees")).map_err(StoreError::from)?;
        match std::fs::rename(&made, &path) {
            Ok(()) => {}
            // Another build put the same tree first: the same content.
            Err(e)
                if path.is_dir()
                    && matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) => {}
            Err(e) => {
                remove_tree(temp.path());
                let e = io::Error::new(e.kind(), format!("{}: {e}", path.display()));
                return Err(StoreError::from(e).into());
            }
        }
        remove_tree(temp.path());
        super::sync_dir(&self.root().join("trees"));
        self.put_key(TREE_KIND, chain.hex(), &value)?;
        Ok(Tree { path, value })
    }
}

/// Removes a tree a store holds (a cache folder, an unpacked tree); folders
/// left without write permission are opened first.
pub fn remove_tree(path: &Path) {
    if std::fs::remove_dir_all(path).is_ok() || !path.exists() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![path.to_owned()];
    while let Some(d) = stack.pop() {
        let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700));
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(path);
}

/// Removes the tree of the entry `name`; one that cannot be removed is an
/// error, so its entry stays and it is still counted.
pub fn remove(root: &Path, name: &str) -> Result<(), StoreError> {
    let path = tree_path(root, name);
    remove_tree(&path);
    match path.exists() {
        true => Err(io::Error::other(format!("{}: could not be removed", path.display())).into()),
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_name_the_stack() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        assert_eq!(chain_id([] as [&Digest; 0]), None);
        assert_eq!(chain_id([&a]), Some(a.clone()));
        let ab = chain_id([&a, &b]).unwrap();
        assert_eq!(ab, Digest::of(format!("{a} {b}").as_bytes()));
        assert_ne!(Some(ab), chain_id([&b, &a]), "order matters");
    }

    #[test]
    fn a_tree_is_made_once_and_a_failed_one_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let chain = Digest::of(b"stack");
        let failed: Result<Tree, StoreError> = store.tree_or_make(&chain, |p| {
            std::fs::write(p.join("half"), b"x").unwrap();
            Err(io::Error::other("broken layer").into())
        });
        assert!(failed.is_err());
        assert!(store.tree(&chain).unwrap().is_none());
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );

        let t = store
            .tree_or_make(&chain, |p| -> Result<_, StoreError> {
                std::fs::write(p.join("f"), b"x").unwrap();
                Ok(b"[]".to_vec())
            })
            .unwrap();
        assert_eq!(std::fs::read(t.path.join("f")).unwrap(), b"x");
        let again = store
            .tree_or_make(&chain, |_| -> Result<Vec<u8>, StoreError> {
                panic!("made twice")
            })
            .unwrap();
        assert_eq!((again.path, again.value), (t.path.clone(), b"[]".to_vec()));
        remove(dir.path(), chain.hex()).unwrap();
        assert!(!t.path.exists());
    }
}
