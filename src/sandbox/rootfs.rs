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
use crate::store::{human_size, Store};

use super::room::{self, Room};
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
/// Stops with [`SandboxError::NoRoom`] before the disk fills (see
/// [`room`](super::room)); the caller removes what was written.
pub fn unpack(
    store: &Store,
    layers: &[Descriptor],
    root: &Path,
) -> Result<Vec<Owner>, SandboxError> {
    unpack_with(store, layers, root, &room::statvfs)
}

/// [`unpack`], asking `probe` for the room on the disk.
pub fn unpack_with(
    store: &Store,
    layers: &[Descriptor],
    root: &Path,
    probe: &room::Probe<'_>,
) -> Result<Vec<Owner>, SandboxError> {
    let mut owners: BTreeMap<String, (u32, u32, Option<u32>)> = BTreeMap::new();
    let mut dir_modes: BTreeMap<String, u32> = BTreeMap::new();
    let compressed: u64 = layers.iter().map(|d| d.size).sum();
    let what = match layers {
        [one] => format!("layer {}", one.digest),
        _ => format!(
            "{} layers ({} compressed)",
            layers.len(),
            human_size(compressed)
        ),
    };
    let mut room = Room::open(probe, root, compressed, &what)?;
    for desc in layers {
        let layer_err = |source: LayerReadError| SandboxError::Layer {
            digest: desc.digest.to_string(),
            source,
        };
        let what = format!("layer {}", desc.digest);
        let blob = store.open_blob(&desc.digest)?;
        let (_, stream) = decompress(blob).map_err(|e| layer_err(e.into()))?;
        LayerReader::new(stream)
            .for_each(|item, content| -> Result<Flow, SandboxError> {
                let mut to = Target {
                    root,
                    room: &mut room,
                    what: &what,
                };
                apply(&mut to, item, content, &mut owners, &mut dir_modes)?;
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

/// Where entries go, and the room they may take.
struct Target<'a, 'r> {
    root: &'a Path,
    room: &'a mut Room<'r>,
    /// `layer sha256:…`, for errors.
    what: &'a str,
}

fn apply(
    to: &mut Target<'_, '_>,
    item: Item,
    content: &mut dyn io::Read,
    owners: &mut BTreeMap<String, (u32, u32, Option<u32>)>,
    dir_modes: &mut BTreeMap<String, u32>,
) -> Result<(), SandboxError> {
    let root = to.root;
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
                    to.room.take(size, to.what, &rel)?;
                    let mut f = fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&path)
                        .map_err(|err| io_err(&path, err))?;
                    let n =
                        io::copy(&mut Read::take(&mut *content, size), &mut f).map_err(|err| {
                            match err.kind() {
                                io::ErrorKind::StorageFull => to.room.ran_out(to.what, &rel, size),
                                _ => io_err(&path, err),
                            }
                        })?;
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::layer::reader::tests::{put_gzip, RawTar};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        (dir, store)
    }

    /// Bytes of the regular files under `dir`.
    fn used(dir: &Path) -> u64 {
        let mut n = 0;
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                n += used(&e.path());
            } else if m.is_file() {
                n += m.len();
            }
        }
        n
    }

    /// The tree containerd's `archive.Apply` makes of climbing and
    /// absolute names: each cleaned as if it hung from `/`, a hard link's
    /// target likewise, a symlink's target as written, a whiteout whose
    /// name climbs removing what its cleaned name names.
    #[test]
    fn climbing_names_unpack_where_containerd_puts_them() {
        let (dir, store) = store();
        let lower = RawTar::new()
            .file("gone", b"lower")
            .file("kept", b"lower")
            .finish();
        let upper = RawTar::new()
            .file("/abs/file", b"abs")
            .file("../../up/file", b"up")
            .file("a/../../b", b"b")
            .hardlink("hl", "/abs/file")
            .hardlink("up/hl", "../../up/../up/file")
            .symlink("../sym", "../../outside")
            .file("x/../../.wh.gone", b"")
            .finish();
        let layers = [put_gzip(&store, &lower), put_gzip(&store, &upper)];
        let root = dir.path().join("scratch/rootfs");
        fs::create_dir_all(&root).unwrap();
        unpack(&store, &layers, &root).unwrap();
        let mut tree = Vec::new();
        for rel in [
            "abs/file", "up/file", "b", "hl", "up/hl", "sym", "gone", "kept",
        ] {
            let p = root.join(rel);
            let line = match p.symlink_metadata() {
                Err(_) => format!("{rel} missing"),
                Ok(m) if m.is_symlink() => {
                    format!("{rel} -> {}", fs::read_link(&p).unwrap().display())
                }
                Ok(m) => format!(
                    "{rel} {:?} links={}",
                    String::from_utf8(fs::read(&p).unwrap()).unwrap(),
                    m.nlink()
                ),
            };
            tree.push(line);
        }
        assert_eq!(
            tree,
            [
                "abs/file \"abs\" links=2",
                "up/file \"up\" links=2",
                "b \"b\" links=1",
                "hl \"abs\" links=2",
                "up/hl \"up\" links=2",
                "sym -> ../../outside",
                "gone missing",
                "kept \"lower\" links=1",
            ]
        );
        let ino = |rel: &str| root.join(rel).metadata().unwrap().ino();
        assert_eq!(ino("hl"), ino("abs/file"));
        // Nothing landed beside the root.
        let beside: Vec<_> = fs::read_dir(dir.path().join("scratch"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(beside, ["rootfs"]);
        assert!(!dir.path().join("up").exists() && !dir.path().join("outside").exists());
    }

    /// A small disk, stood for by a probe: `cap` bytes, less what the
    /// files under the root take.
    fn disk(root: &Path, cap: u64) -> impl Fn(&Path) -> io::Result<room::Space> + '_ {
        move |_: &Path| {
            Ok(room::Space {
                free: cap.saturating_sub(used(root)),
                total: cap,
            })
        }
    }

    #[test]
    fn a_layer_bigger_than_the_disk_stops_before_filling_it() {
        let (dir, store) = store();
        let mib = vec![0u8; 1 << 20];
        let mut many = RawTar::new();
        for i in 0..12 {
            many.file(&format!("f{i:02}"), &mib);
        }
        let many = put_gzip(&store, &many.finish());
        let one_big = put_gzip(&store, &RawTar::new().file("big", &[0; 20 << 20]).finish());
        let cap: u64 = 8 << 20;
        for layer in [&many, &one_big] {
            let root = dir
                .path()
                .join(format!("root-{}", &layer.digest.hex()[..8]));
            fs::create_dir(&root).unwrap();
            let probe = disk(&root, cap);
            let err = unpack_with(&store, std::slice::from_ref(layer), &root, &probe)
                .unwrap_err()
                .to_string();
            let head = format!("unpacking layer {} into {}", layer.digest, root.display());
            for needle in [
                head.as_str(),
                // Stopped at the file that did not fit.
                ", the next being /",
                "free and hoist leaves 167.8 kB of it for everything else",
                "free space there, or set HOIST_CACHE to a folder on a larger file system",
            ] {
                assert!(err.contains(needle), "{needle}\n{err}");
            }
            // Never more than the disk minus the reserve was written.
            assert!(used(&root) <= cap - cap / 50, "{}", used(&root));
        }
        // The same layers fit a disk large enough.
        let root = dir.path().join("roomy");
        fs::create_dir(&root).unwrap();
        unpack_with(&store, &[many, one_big], &root, &disk(&root, 64 << 20)).unwrap();
        assert_eq!(used(&root), 32 << 20);
    }

    #[test]
    fn layers_whose_compressed_size_does_not_fit_are_refused_before_writing() {
        let (dir, store) = store();
        let layer = put_gzip(&store, &RawTar::new().file("x", &[7; 4096]).finish());
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        let tiny = |_: &Path| {
            Ok(room::Space {
                free: 10,
                total: 1 << 30,
            })
        };
        let err = unpack_with(&store, &[layer.clone(), layer], &root, &tiny)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("unpacking 2 layers ("), "{err}");
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
    }
}
