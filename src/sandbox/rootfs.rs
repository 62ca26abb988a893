//! The step's root folder: the base's layers (and the steps' below it)
//! unpacked into the scratch folder, whiteouts applied.
//!
//! Layers are read with hoist's safe reader, so every path is already
//! inside the image. What the reader cannot know is the folder being
//! written: a symlink unpacked earlier (`lib -> /`) would carry a later
//! entry (`lib/x`) out of the scratch folder. So every parent of an
//! entry is checked to be a real folder, never followed: an image whose
//! tar writes through a link is refused, naming the entry.
//!
//! Owners are not set here (the caller may not own those ids on the
//! host): they are returned, and set from inside the user namespace,
//! where the ids exist.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::image::Descriptor;
use crate::layer::compress::decompress;
use crate::layer::reader::{EntryKind, Flow, Item, LayerReadError, LayerReader};
use crate::store::Store;

use super::SandboxError;

/// An entry's owner inside the image, for entries not owned by root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub rel: String,
    pub uid: u32,
    pub gid: u32,
    /// The mode to set again after the owner (chown clears setuid and
    /// setgid bits); only for files that have them.
    pub mode: Option<u32>,
}

/// Unpacks `layers` (bottom first) into `root`; returns the owners to set.
pub fn unpack(
    store: &Store,
    layers: &[Descriptor],
    root: &Path,
) -> Result<Vec<Owner>, SandboxError> {
    let mut owners: BTreeMap<String, (u32, u32, Option<u32>)> = BTreeMap::new();
    let mut dir_modes: BTreeMap<String, u32> = BTreeMap::new();
    for desc in layers {
        let layer_err = |source: LayerReadError| SandboxError::Layer {
            digest: desc.digest.to_string(),
            source,
        };
        let blob = store.open_blob(&desc.digest)?;
        let (_, stream) = decompress(blob).map_err(|e| layer_err(e.into()))?;
        LayerReader::new(stream)
            .for_each(|item, content| -> Result<Flow, SandboxError> {
                apply(root, item, content, &mut owners, &mut dir_modes)?;
                Ok(Flow::Continue)
            })
            .map_err(|e| match e {
                SandboxError::ReadLayer(source) => layer_err(source),
                other => other,
            })?;
    }
    // Folder modes last, deepest first, so a read-only folder is filled
    // before it is closed.
    for (rel, mode) in dir_modes.iter().rev() {
        let p = root.join(rel);
        set_mode(&p, *mode)?;
    }
    Ok(owners
        .into_iter()
        .filter(|(_, (u, g, _))| (*u, *g) != (0, 0))
        .map(|(rel, (uid, gid, mode))| Owner {
            rel,
            uid,
            gid,
            mode,
        })
        .collect())
}

fn apply(
    root: &Path,
    item: Item,
    content: &mut dyn io::Read,
    owners: &mut BTreeMap<String, (u32, u32, Option<u32>)>,
    dir_modes: &mut BTreeMap<String, u32>,
) -> Result<(), SandboxError> {
    match item {
        Item::Whiteout(p) => {
            let rel = p.as_str().to_owned();
            let path = checked(root, &rel)?;
            remove_any(&path)?;
            let under = format!("{rel}/");
            owners.retain(|k, _| k != &rel && !k.starts_with(&under));
            dir_modes.retain(|k, _| k != &rel && !k.starts_with(&under));
        }
        Item::Opaque(dir) => {
            let rel = dir.map(|d| d.as_str().to_owned()).unwrap_or_default();
            let path = if rel.is_empty() {
                root.to_owned()
            } else {
                checked(root, &rel)?
            };
            if let Ok(rd) = fs::read_dir(&path) {
                for e in rd {
                    let e = e.map_err(|e| io_err(&path, e))?;
                    remove_any(&e.path())?;
                }
            }
            let under = format!("{rel}/");
            let keep = |k: &String| !rel.is_empty() && !k.starts_with(&under);
            owners.retain(|k, _| keep(k));
            dir_modes.retain(|k, _| keep(k));
        }
        Item::NotUtf8 { path } => {
            return Err(SandboxError::Unsafe {
                path,
                why: "its name is not UTF-8, which hoist cannot carry into a step",
            })
        }
        Item::Entry(e) => {
            let rel = e.path.as_str().to_owned();
            let path = checked(root, &rel)?;
            let mode = e.meta.mode & 0o7777;
            let special = matches!(e.kind, EntryKind::File { .. }) && mode & 0o6000 != 0;
            let existing = fs::symlink_metadata(&path).ok();
            let keep_dir =
                matches!(e.kind, EntryKind::Dir) && existing.as_ref().is_some_and(|m| m.is_dir());
            if existing.is_some() && !keep_dir {
                remove_any(&path)?;
            }
            match e.kind {
                EntryKind::Dir => {
                    if !keep_dir {
                        fs::DirBuilder::new()
                            .mode(0o755)
                            .create(&path)
                            .map_err(|err| io_err(&path, err))?;
                    }
                    dir_modes.insert(rel.clone(), mode);
                }
                EntryKind::File { size } => {
                    let mut f = fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&path)
                        .map_err(|err| io_err(&path, err))?;
                    let n = io::copy(&mut Read::take(&mut *content, size), &mut f)
                        .map_err(|err| io_err(&path, err))?;
                    if n != size {
                        return Err(SandboxError::Unsafe {
                            path: rel,
                            why: "the layer ended inside this file",
                        });
                    }
                    set_mode(&path, mode)?;
                }
                EntryKind::Symlink { target } => {
                    std::os::unix::fs::symlink(&target, &path).map_err(|err| io_err(&path, err))?;
                }
                EntryKind::Hardlink { target } => {
                    let from = checked(root, target.as_str())?;
                    fs::hard_link(&from, &path).map_err(|err| io_err(&path, err))?;
                    if let Some(o) = owners.get(target.as_str()).copied() {
                        owners.insert(rel, o);
                    }
                    return Ok(());
                }
                // Device nodes and FIFOs cannot be made without privileges;
                // the sandbox's /dev comes from the host instead.
                EntryKind::Other => return Ok(()),
            }
            let ids = (
                u32::try_from(e.meta.uid).unwrap_or(super::idmap::OVERFLOW_ID),
                u32::try_from(e.meta.gid).unwrap_or(super::idmap::OVERFLOW_ID),
                special.then_some(mode),
            );
            owners.insert(rel, ids);
        }
    }
    Ok(())
}

/// `root/rel`, after checking that every folder on the way is a real
/// folder (created when missing), never a link.
pub fn checked(root: &Path, rel: &str) -> Result<PathBuf, SandboxError> {
    let mut p = root.to_owned();
    let parts: Vec<&str> = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(SandboxError::Unsafe {
            path: rel.to_owned(),
            why: "it climbs out with `..`",
        });
    }
    let Some((last, dirs)) = parts.split_last() else {
        return Ok(p);
    };
    for c in dirs {
        p.push(c);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(SandboxError::Unsafe {
                    path: rel.to_owned(),
                    why: "a folder on its way is a link or a file in the layers below; hoist never writes through links",
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&p)
                    .map_err(|err| io_err(&p, err))?;
            }
            Err(e) => return Err(io_err(&p, e)),
        }
    }
    p.push(last);
    Ok(p)
}

/// Removes a file, link or folder tree; a missing one is fine.
pub fn remove_any(p: &Path) -> Result<(), SandboxError> {
    let r = match fs::symlink_metadata(p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
    };
    r.map_err(|e| io_err(p, e))
}

fn set_mode(p: &Path, mode: u32) -> Result<(), SandboxError> {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(|e| io_err(p, e))
}

pub(crate) fn io_err(path: &Path, source: io::Error) -> SandboxError {
    SandboxError::Io {
        path: path.to_owned(),
        source,
    }
}
