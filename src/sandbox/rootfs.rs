//! The step's root folder: the base's layers (and the steps' below it)
//! unpacked into the scratch folder, whiteouts applied.
//!
//! Layers are read with hoist's safe reader, so every path is already
//! inside the image (`..` stopped at the root, as containerd reads it).
//! What the reader cannot know is the folder being written: a symlink
//! unpacked earlier (`lib -> /`) would carry a later entry (`lib/x`) out
//! of the scratch folder if the kernel followed it. So hoist resolves
//! every folder on an entry's way itself, as the overlayfs appliers of
//! containerd and podman do: a link the same layer made is followed
//! inside the image, a lower layer's link is hidden by a new folder, and
//! the kernel is never handed a path with a link in it. Folder modes are
//! set last, and never through a link.
//!
//! The disk is watched as the layers expand ([`room`](super::room)), so a
//! base too large for it stops the step with an error, not a full disk.
//!
//! Owners are not set here (the caller may not own those ids on the
//! host): they are returned, and set from inside the user namespace,
//! where the ids exist.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::image::Descriptor;
use crate::layer::compress::decompress;
use crate::layer::reader::{EntryKind, Flow, Item, LayerReadError, LayerReader};
use crate::layer::ImagePath;
use crate::store::{human_size, Store};

use super::room::{self, Room};
use super::SandboxError;

/// An entry's owner inside the image, for entries not owned by root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    // Without a filter nothing asks for the whole: always `Some`.
    Ok(unpack_some(store, layers, root, probe, None)?.unwrap_or_default())
}

/// Unpacks only what lies under `wanted` (image paths, relative) and the
/// folders on the way to them: a copy out of a stage reads a few paths of
/// an image whose other thousands of files would cost more to write than
/// the copy itself. `None` when that cannot be exact: a link on the way
/// to a wanted path (it may lead anywhere in the image), or a hard link
/// inside to a file outside; the caller then unpacks everything.
pub fn unpack_only(
    store: &Store,
    layers: &[Descriptor],
    root: &Path,
    wanted: &[String],
) -> Result<Option<Vec<Owner>>, SandboxError> {
    let only = Only::new(wanted, true);
    unpack_some(store, layers, root, &room::statvfs, Some(&only))
}

/// [`unpack_only`] for a reader that takes a link for what it is (a link
/// entry) rather than following it: a wanted link, or one right inside a
/// wanted folder, is written as a link. A link on the way to a wanted
/// path still needs the whole.
pub fn unpack_paths(
    store: &Store,
    layers: &[Descriptor],
    root: &Path,
    wanted: &[String],
) -> Result<Option<Vec<Owner>>, SandboxError> {
    let only = Only::new(wanted, false);
    unpack_some(store, layers, root, &room::statvfs, Some(&only))
}

/// Store keys (by layer digest) listing what a layer holds, each path cut
/// to [`INDEX_DEPTH`] parts: a filtered unpack skips a layer none of whose
/// paths is on the way to, or inside, a wanted one, without reading it.
/// Made as a layer is read whole; the layer's digest names its content,
/// so the list never goes stale.
const INDEX_KIND: &str = "layer-paths";
const INDEX_DEPTH: usize = 3;

/// An item's line in a layer's index: its path (a whiteout's, an opaque
/// folder's) cut to [`INDEX_DEPTH`] parts; `""` for the root, which every
/// filter reads.
fn index_entry(item: &Item) -> String {
    let p = match item {
        Item::Entry(e) => e.path.as_str(),
        Item::Whiteout(p) => p.as_str(),
        Item::Opaque(Some(d)) => d.as_str(),
        Item::Opaque(None) | Item::NotUtf8 { .. } => "",
    };
    p.split('/').take(INDEX_DEPTH).collect::<Vec<_>>().join("/")
}

/// The paths [`unpack_only`] keeps.
struct Only {
    paths: Vec<String>,
    /// Whether a link the reader is given leads on (a copy follows it;
    /// [`unpack_paths`]' reader does not).
    links_lead: bool,
}

/// What [`Only`] makes of an item.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Keep,
    Skip,
    /// A link where a wanted path must pass: only a whole unpack is exact.
    Whole,
}

impl Only {
    fn new(wanted: &[String], links_lead: bool) -> Only {
        Only {
            paths: wanted
                .iter()
                .map(|w| w.trim_matches('/').to_owned())
                .collect(),
            links_lead,
        }
    }

    /// Whether `p` is wanted or inside a wanted path.
    fn inside(&self, p: &str) -> bool {
        self.paths.iter().any(|w| {
            w.is_empty() || p == w || (p.starts_with(w.as_str()) && p[w.len()..].starts_with('/'))
        })
    }

    /// Whether `p` is a wanted path or right inside one (where a glob in
    /// the path after it could match).
    fn named(&self, p: &str) -> bool {
        let parent = p.rsplit_once('/').map_or("", |(d, _)| d);
        self.paths.iter().any(|w| p == w || parent == w)
    }

    /// Whether `p` is a folder on the way to a wanted path.
    fn on_the_way(&self, p: &str) -> bool {
        self.paths
            .iter()
            .any(|w| p.is_empty() || (w.starts_with(p) && w[p.len()..].starts_with('/')))
    }

    fn judge(&self, item: &Item) -> Verdict {
        let keep = |p: &str| self.inside(p) || self.on_the_way(p);
        match item {
            Item::Whiteout(p) => match keep(p.as_str()) {
                true => Verdict::Keep,
                false => Verdict::Skip,
            },
            Item::Opaque(d) => match keep(d.as_ref().map_or("", |d| d.as_str())) {
                true => Verdict::Keep,
                false => Verdict::Skip,
            },
            Item::NotUtf8 { .. } => Verdict::Skip,
            Item::Entry(e) => {
                let p = e.path.as_str();
                if self.inside(p) {
                    match &e.kind {
                        EntryKind::Hardlink { target } if !self.inside(target.as_str()) => {
                            Verdict::Whole
                        }
                        // A copy follows a link it is given, or a glob
                        // matches, to wherever it leads.
                        EntryKind::Symlink { .. } if self.links_lead && self.named(p) => {
                            Verdict::Whole
                        }
                        _ => Verdict::Keep,
                    }
                } else if self.on_the_way(p) {
                    match e.kind {
                        EntryKind::Dir => Verdict::Keep,
                        _ => Verdict::Whole,
                    }
                } else {
                    Verdict::Skip
                }
            }
        }
    }
}

fn unpack_some(
    store: &Store,
    layers: &[Descriptor],
    root: &Path,
    probe: &room::Probe<'_>,
    only: Option<&Only>,
) -> Result<Option<Vec<Owner>>, SandboxError> {
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
        // A layer with nothing on the way to a wanted path is not read.
        let index = store.get_key(INDEX_KIND, desc.digest.hex())?;
        if let (Some(only), Some(index)) = (only, &index) {
            let index = String::from_utf8_lossy(index);
            if !index.lines().any(|t| only.inside(t) || only.on_the_way(t)) {
                continue;
            }
        }
        let mut seen = index.is_none().then(std::collections::BTreeSet::new);
        let what = format!("layer {}", desc.digest);
        let blob = store.open_blob(&desc.digest)?;
        let (_, stream) = decompress(blob).map_err(|e| layer_err(e.into()))?;
        let mut to = Target {
            root,
            room: &mut room,
            what: &what,
            unpacked: HashSet::new(),
        };
        let mut whole = false;
        LayerReader::new(stream)
            .for_each(|item, content| -> Result<Flow, SandboxError> {
                if let Some(seen) = seen.as_mut() {
                    seen.insert(index_entry(&item));
                }
                match only.map_or(Verdict::Keep, |o| o.judge(&item)) {
                    Verdict::Keep => {}
                    Verdict::Skip => return Ok(Flow::Continue),
                    Verdict::Whole => {
                        whole = true;
                        return Ok(Flow::Stop);
                    }
                }
                apply(&mut to, item, content, &mut owners, &mut dir_modes)?;
                Ok(Flow::Continue)
            })
            .map_err(|e| match e {
                SandboxError::ReadLayer(source) => layer_err(source),
                other => other,
            })?;
        if whole {
            return Ok(None);
        }
        if let Some(seen) = seen {
            let text: Vec<&str> = seen.iter().map(String::as_str).collect();
            store.put_key(INDEX_KIND, desc.digest.hex(), text.join("\n").as_bytes())?;
        }
    }
    // Folder modes last, deepest first, so a read-only folder is filled
    // before it is closed.
    for (rel, mode) in dir_modes.iter().rev() {
        // Recorded folders are real folders; checked again, so a mode is
        // never set through a link whatever a layer did after.
        if let Some(p) = real_dir(root, rel) {
            set_mode(&p, *mode)?;
        }
    }
    Ok(Some(
        owners
            .into_iter()
            .filter(|(_, (u, g, _))| (*u, *g) != (0, 0))
            .map(|(rel, (uid, gid, mode))| Owner {
                rel,
                uid,
                gid,
                mode,
            })
            .collect(),
    ))
}

/// Where entries go, and the room they may take.
struct Target<'a, 'r> {
    root: &'a Path,
    room: &'a mut Room<'r>,
    /// `layer sha256:…`, for errors.
    what: &'a str,
    /// What this layer unpacked so far, which its opaque markers keep.
    unpacked: HashSet<String>,
}

fn apply(
    to: &mut Target<'_, '_>,
    item: Item,
    content: &mut dyn io::Read,
    owners: &mut BTreeMap<String, (u32, u32, Option<u32>)>,
    dir_modes: &mut BTreeMap<String, u32>,
) -> Result<(), SandboxError> {
    let root = to.root;
    // Lower layers' links that this entry's folders replace.
    let mut replaced = Vec::new();
    let forget_replaced = |replaced: &mut Vec<String>,
                           owners: &mut BTreeMap<String, (u32, u32, Option<u32>)>,
                           dir_modes: &mut BTreeMap<String, u32>| {
        for r in replaced.drain(..) {
            forget(&r, owners, dir_modes);
        }
    };
    match item {
        Item::Whiteout(p) => {
            let (path, rel) = resolve_parent(root, &p, &to.unpacked, &mut replaced)?;
            forget_replaced(&mut replaced, owners, dir_modes);
            remove_any(&path)?;
            forget(&rel, owners, dir_modes);
        }
        Item::Opaque(dir) => {
            // The folder itself is resolved too, as containerd does: the
            // marker's own folder is the "parent" it resolves.
            let (path, rel) = match &dir {
                Some(d) => resolve(root, d.as_str(), true, &to.unpacked, &mut replaced)?,
                None => (root.to_owned(), String::new()),
            };
            forget_replaced(&mut replaced, owners, dir_modes);
            hide_below(&path, &rel, &to.unpacked, owners, dir_modes)?;
        }
        Item::NotUtf8 { path } => {
            return Err(SandboxError::Unsafe {
                path,
                why: "its name is not UTF-8, which hoist cannot carry into a step",
            })
        }
        Item::Entry(e) => {
            let (path, rel) = resolve_parent(root, &e.path, &to.unpacked, &mut replaced)?;
            forget_replaced(&mut replaced, owners, dir_modes);
            // Its folders too: an opaque marker keeps the way to it.
            let mut at = rel.as_str();
            while !at.is_empty() && to.unpacked.insert(at.to_owned()) {
                at = at.rsplit_once('/').map_or("", |(p, _)| p);
            }
            let mode = e.meta.mode & 0o7777;
            let special = matches!(e.kind, EntryKind::File { .. }) && mode & 0o6000 != 0;
            let existing = fs::symlink_metadata(&path).ok();
            let keep_dir =
                matches!(e.kind, EntryKind::Dir) && existing.as_ref().is_some_and(|m| m.is_dir());
            if existing.is_some() && !keep_dir {
                remove_any(&path)?;
                // What was recorded under the old entry is gone with it (a
                // folder's mode must never be set through the link that
                // replaced it).
                forget(&rel, owners, dir_modes);
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
                    // containerd's hardlinkRootPath: the target's folder
                    // resolved inside the image, its name as written.
                    let (from, target) = match target.parent() {
                        Some(dir) => {
                            let (host, dir) =
                                resolve(root, dir.as_str(), false, &to.unpacked, &mut replaced)?;
                            let name = target.file_name();
                            (host.join(name), format!("{dir}/{name}"))
                        }
                        None => (root.join(target.as_str()), target.as_str().to_owned()),
                    };
                    let target = target.trim_start_matches('/');
                    fs::hard_link(&from, &path).map_err(|err| io_err(&path, err))?;
                    if let Some(o) = owners.get(target).copied() {
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

/// An opaque folder: removes what the layers below put in `path` (the
/// image's `rel`), keeping what this layer unpacked there, in whatever
/// order the marker came (containerd walks the folder the same way).
fn hide_below(
    path: &Path,
    rel: &str,
    unpacked: &HashSet<String>,
    owners: &mut BTreeMap<String, (u32, u32, Option<u32>)>,
    dir_modes: &mut BTreeMap<String, u32>,
) -> Result<(), SandboxError> {
    let Ok(rd) = fs::read_dir(path) else {
        return Ok(());
    };
    for e in rd {
        let e = e.map_err(|e| io_err(path, e))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            remove_any(&e.path())?;
            continue;
        };
        let child = match rel.is_empty() {
            true => name.to_owned(),
            false => format!("{rel}/{name}"),
        };
        if !unpacked.contains(&child) {
            remove_any(&e.path())?;
            forget(&child, owners, dir_modes);
        } else if e.file_type().is_ok_and(|t| t.is_dir()) {
            hide_below(&e.path(), &child, unpacked, owners, dir_modes)?;
        }
    }
    Ok(())
}

/// Forgets the owners and folder modes recorded at `rel` and below it.
fn forget(
    rel: &str,
    owners: &mut BTreeMap<String, (u32, u32, Option<u32>)>,
    dir_modes: &mut BTreeMap<String, u32>,
) {
    let under = format!("{rel}/");
    let gone = |k: &String| rel.is_empty() || k == rel || k.starts_with(&under);
    owners.retain(|k, _| !gone(k));
    dir_modes.retain(|k, _| !gone(k));
}

/// The most links one path may pass through (containerd's limit).
const MAX_LINKS: u32 = 255;

/// `path`'s folder resolved inside the image by [`resolve`], and its name
/// as written (never followed: the entry replaces whatever is there).
/// Returns the host path and the path in the image.
fn resolve_parent(
    root: &Path,
    path: &ImagePath,
    unpacked: &HashSet<String>,
    replaced: &mut Vec<String>,
) -> Result<(PathBuf, String), SandboxError> {
    let name = path.file_name();
    match path.parent() {
        None => Ok((root.join(name), name.to_owned())),
        Some(dir) => {
            let (host, dir) = resolve(root, dir.as_str(), true, unpacked, replaced)?;
            let rel = match dir.is_empty() {
                true => name.to_owned(),
                false => format!("{dir}/{name}"),
            };
            Ok((host.join(name), rel))
        }
    }
}

/// Where the folder `rel` (a path in the image) is under `root`, as
/// containerd's overlayfs applier and podman's overlay driver find it:
/// each layer is unpacked on its own, over the layers below.
/// - A link this layer made is followed *inside the image* (containerd's
///   `fs.RootPath`: an absolute target starts again at the image's root,
///   `..` stops there), so a layer holding `lib -> usr/lib` and `lib/x`
///   writes `usr/lib/x`.
/// - A link from a layer below is not seen by the layer being unpacked: a
///   folder on its way replaces it (overlayfs shows the upper folder), so
///   `lib/x` over a lower `lib -> usr/lib` makes a real `lib` folder.
///
/// Links are read here, never by the kernel, so nothing outside the root
/// is ever looked at. Missing folders are made (0755) when `create`.
/// Returns the host path and the path in the image.
fn resolve(
    root: &Path,
    rel: &str,
    create: bool,
    unpacked: &HashSet<String>,
    replaced: &mut Vec<String>,
) -> Result<(PathBuf, String), SandboxError> {
    let mut done: Vec<String> = Vec::new();
    let mut todo: Vec<String> = rel.split('/').rev().map(str::to_owned).collect();
    let mut links = 0;
    let unsafe_path = |why| SandboxError::Unsafe {
        path: rel.to_owned(),
        why,
    };
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        let host = done.iter().fold(root.to_owned(), |p, d| p.join(d)).join(&c);
        let here = match done.is_empty() {
            true => c.clone(),
            false => format!("{}/{c}", done.join("/")),
        };
        match fs::symlink_metadata(&host) {
            Ok(m) if m.is_symlink() && unpacked.contains(&here) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(unsafe_path("it passes through more than 255 links"));
                }
                let target = fs::read_link(&host).map_err(|e| io_err(&host, e))?;
                let target = target.to_string_lossy();
                if target.starts_with('/') {
                    done.clear();
                }
                todo.extend(target.split('/').rev().map(str::to_owned));
            }
            Ok(m) if m.is_dir() => done.push(c),
            Ok(m) if m.is_symlink() => {
                // A lower layer's link: this layer's folder hides it.
                if create {
                    remove_any(&host)?;
                    mkdir(&host)?;
                    replaced.push(here);
                }
                done.push(c);
            }
            Ok(_) => {
                return Err(unsafe_path(
                    "a folder on its way is a file in the layers below",
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if create {
                    mkdir(&host)?;
                }
                done.push(c);
            }
            Err(e) => return Err(io_err(&host, e)),
        }
    }
    let host = done.iter().fold(root.to_owned(), |p, d| p.join(d));
    Ok((host, done.join("/")))
}

fn mkdir(p: &Path) -> Result<(), SandboxError> {
    fs::DirBuilder::new()
        .mode(0o755)
        .create(p)
        .map_err(|err| io_err(p, err))
}

/// `root/rel` when every component of it is a real folder, no link.
pub(crate) fn real_dir(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut p = root.to_owned();
    for c in rel.split('/').filter(|c| !c.is_empty()) {
        p.push(c);
        if !fs::symlink_metadata(&p).ok()?.is_dir() {
            return None;
        }
    }
    Some(p)
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
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

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

    /// Every path under `root` with its kind, mode and content.
    fn listing(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_owned()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                let m = p.symlink_metadata().unwrap();
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                let what = if m.is_dir() {
                    stack.push(p.clone());
                    "dir".to_owned()
                } else if m.is_symlink() {
                    format!("-> {}", fs::read_link(&p).unwrap().display())
                } else {
                    String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned()
                };
                out.push(format!("{rel} {:o} {what}", m.mode() & 0o7777));
            }
        }
        out.sort();
        out
    }

    /// A filtered unpack writes exactly the full unpack's entries under
    /// the wanted paths and the folders on the way (whiteouts and opaque
    /// folders applied the same); a link where a wanted path must pass, or
    /// at a wanted path, or a hard link out of it, asks for the whole.
    #[test]
    fn an_unpack_of_some_paths_is_the_whole_one_cut_down() {
        let (dir, store) = store();
        let lower = RawTar::new()
            .dir("app/")
            .file("app/node_modules/a/index.js", b"a")
            .file("app/node_modules/gone.js", b"gone")
            .file("app/node_modules/hidden/x.js", b"x")
            .file("app/other.js", b"other")
            .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
            .dir("usr/lib/")
            .symlink("lib", "usr/lib")
            .file("usr/lib/libc.so", b"libc")
            .finish();
        let upper = RawTar::new()
            .file("app/node_modules/.wh.gone.js", b"")
            .file("app/node_modules/hidden/.wh..wh..opq", b"")
            .file("app/node_modules/hidden/y.js", b"y")
            .hardlink("app/node_modules/a/same.js", "app/node_modules/a/index.js")
            .symlink("app/node_modules/.bin/a", "../a/index.js")
            .finish();
        let layers = [put_gzip(&store, &lower), put_gzip(&store, &upper)];
        let whole = dir.path().join("whole");
        fs::create_dir(&whole).unwrap();
        unpack(&store, &layers, &whole).unwrap();
        let cut = dir.path().join("cut");
        fs::create_dir(&cut).unwrap();
        let wanted = ["/app/node_modules".to_owned()];
        assert!(unpack_only(&store, &layers, &cut, &wanted)
            .unwrap()
            .is_some());
        let expected: Vec<String> = listing(&whole)
            .into_iter()
            .filter(|l| l.starts_with("app/node_modules") || l.starts_with("app "))
            .collect();
        assert_eq!(listing(&cut), expected);
        assert!(listing(&cut)
            .iter()
            .any(|l| l.starts_with("app/node_modules/hidden/y.js")));
        assert!(!listing(&cut)
            .iter()
            .any(|l| l.contains("gone") || l.contains("hidden/x")));

        for (wanted, whole) in [
            ("lib/libc.so", true),           // a link on the way
            ("lib", true),                   // the wanted path is a link
            ("usr/lib/libc.so", false),      // a plain way
            ("app/node_modules/a", false),   // a hard link inside to inside
            ("app/node_modules/.bin", true), // a link right inside (globs)
        ] {
            let root = dir.path().join(format!("r-{}", wanted.replace('/', "_")));
            fs::create_dir(&root).unwrap();
            let got = unpack_only(&store, &layers, &root, &[wanted.to_owned()]).unwrap();
            assert_eq!(got.is_none(), whole, "{wanted}");
        }
        let out = RawTar::new()
            .hardlink("app/node_modules/a/out.js", "app/other.js")
            .finish();
        let layers = [layers[0].clone(), put_gzip(&store, &out)];
        let root = dir.path().join("hardlink-out");
        fs::create_dir(&root).unwrap();
        let got = unpack_only(&store, &layers, &root, &["app/node_modules".to_owned()]).unwrap();
        assert!(got.is_none(), "a hard link to a file not unpacked");
    }

    /// Once a layer was read whole, its index lets a filtered unpack skip
    /// it without opening it when nothing in it is on the way to a wanted
    /// path; a layer with no index yet is read.
    #[test]
    fn a_layer_with_nothing_wanted_is_not_read() {
        let (dir, store) = store();
        let base = RawTar::new()
            .dir("usr/lib/")
            .file("usr/lib/big", b"big")
            .finish();
        let top = RawTar::new().file("app/x.js", b"x").finish();
        let layers = [put_gzip(&store, &base), put_gzip(&store, &top)];
        let wanted = ["app".to_owned()];
        let first = dir.path().join("first");
        fs::create_dir(&first).unwrap();
        assert!(unpack_only(&store, &layers, &first, &wanted)
            .unwrap()
            .is_some());
        // Both layers are indexed now: without the base's blob, the copy
        // of /app still unpacks, and reads only the top layer.
        fs::remove_file(store.blob_path(&layers[0].digest)).unwrap();
        let second = dir.path().join("second");
        fs::create_dir(&second).unwrap();
        assert!(unpack_only(&store, &layers, &second, &wanted)
            .unwrap()
            .is_some());
        assert_eq!(listing(&second), listing(&first));
        assert_eq!(listing(&second), ["app 755 dir", "app/x.js 644 x"]);
        // A wanted path the base holds needs its blob.
        let third = dir.path().join("third");
        fs::create_dir(&third).unwrap();
        assert!(unpack_only(&store, &layers, &third, &["usr/lib".to_owned()]).is_err());
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

    /// A link the same layer made is followed inside the image (containerd's
    /// `fs.RootPath`); a lower layer's link is hidden by the folder the
    /// upper layer makes (overlayfs, as containerd and podman unpack).
    /// Neither reaches the host, even when it names a host folder.
    #[test]
    fn links_on_the_way_are_followed_inside_the_image_only() {
        let (dir, store) = store();
        let host = dir.path().join("host");
        fs::create_dir(&host).unwrap();
        fs::write(host.join("precious"), b"host").unwrap();
        fs::set_permissions(&host, fs::Permissions::from_mode(0o755)).unwrap();
        let host_abs = host.display().to_string();
        let lower = RawTar::new()
            .dir("usr/lib/")
            .symlink("lib", "usr/lib")
            .symlink("hostlink", &host_abs)
            .finish();
        let mut moded = RawTar::new().dir("moded/").finish();
        // `moded` gets a mode the host folder does not have.
        moded[100..107].copy_from_slice(b"0000700");
        let mut h = tar::Header::from_byte_slice(&moded[..512]).clone();
        h.set_cksum();
        moded[..512].copy_from_slice(h.as_bytes());
        let upper = RawTar::new()
            .file("lib/x", b"x")
            .hardlink("lib/x2", "lib/x")
            .file("hostlink/z", b"z")
            .symlink("ln", "usr/lib")
            .file("ln/y", b"y")
            .symlink("up", "../../../..")
            .file("up/w", b"w")
            .symlink("hostln", &host_abs)
            .file("hostln/v", b"v")
            .file("hostln/.wh..wh..opq", b"")
            .finish();
        // A folder whose mode was recorded, replaced by a link to the
        // host: the mode must not reach the host folder.
        let relink = RawTar::new().symlink("moded", &host_abs).finish();
        let layers = [
            put_gzip(&store, &lower),
            put_gzip(&store, &moded),
            put_gzip(&store, &upper),
            put_gzip(&store, &relink),
        ];
        let root = dir.path().join("rootfs");
        fs::create_dir(&root).unwrap();
        unpack(&store, &layers, &root).unwrap();
        let kind = |rel: &str| {
            let m = root.join(rel).symlink_metadata();
            match m {
                Ok(m) if m.is_symlink() => "link",
                Ok(m) if m.is_dir() => "dir",
                Ok(_) => "file",
                Err(_) => "missing",
            }
        };
        let read = |rel: &str| fs::read(root.join(rel)).unwrap();
        // Lower links hidden by folders.
        assert_eq!(
            (kind("lib"), kind("lib/x"), kind("usr/lib/x")),
            ("dir", "file", "missing")
        );
        assert_eq!(read("lib/x2"), b"x");
        assert_eq!(
            (kind("hostlink"), read("hostlink/z")),
            ("dir", b"z".to_vec())
        );
        // This layer's links followed inside the image.
        assert_eq!((kind("ln"), read("usr/lib/y")), ("link", b"y".to_vec()));
        assert_eq!((kind("up"), read("w")), ("link", b"w".to_vec()));
        let inside = host_abs.trim_start_matches('/');
        assert_eq!(read(&format!("{inside}/v")), b"v");
        // The host folder is untouched: its file, nothing added, its mode.
        let host_names: Vec<_> = fs::read_dir(&host)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(host_names, ["precious"]);
        assert_eq!(host.metadata().unwrap().mode() & 0o7777, 0o755);
        assert_eq!(kind("moded"), "link");

        let looped = RawTar::new()
            .symlink("loop", "loop")
            .file("loop/f", b"")
            .finish();
        let root = dir.path().join("rootfs2");
        fs::create_dir(&root).unwrap();
        let err = unpack(&store, &[put_gzip(&store, &looped)], &root).unwrap_err();
        assert!(err.to_string().contains("more than 255 links"), "{err}");
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
