//! What a step changed, as a layer.
//!
//! The root folder is walked before the step and after it (never
//! following links). An entry is changed when it is new, or when its
//! kind, mode, owner, size, mtime, ctime or inode differ: ctime cannot be
//! set from user space, so any write, chmod or chown shows, and no file
//! has to be hashed twice (the same rule overlayfs's copy-up follows: a
//! touched file is a changed file). An entry gone after the step becomes
//! a `.wh.NAME` whiteout in its folder, unless its folder went too (the
//! folder's whiteout covers it).
//!
//! Both walks run inside the user namespace (see [`super::run`]), so
//! owners are recorded as the sandbox saw them, whoever the caller is;
//! the layer carries those and every mtime is `SOURCE_DATE_EPOCH`, so it
//! depends on what the step did, not on the host.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::CString;
use std::fs;
use std::io::{Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::image::Descriptor;
use crate::layer::compress::decompress;
use crate::layer::reader::{EntryKind, Flow, Item, LayerReader};
use crate::layer::{Compression, EntryMeta, ImagePath, Layer, LayerWriter};
use crate::store::Store;

use super::rootfs::io_err;
use super::SandboxError;

/// The kind of a walked entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Dir,
    File,
    Symlink(String),
    Other,
}

/// What the walk records of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    pub ino: (u64, u64),
    pub nlink: u64,
}

/// Every entry under a root, by path relative to it.
pub type Snapshot = BTreeMap<String, Stat>;

/// Walks `root` without following links. `skip` names paths whose
/// contents are not the image's (mount points).
pub fn snapshot(root: &Path, skip: &[String]) -> Result<Snapshot, SandboxError> {
    let mut out = Snapshot::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let dir = if rel.is_empty() {
            root.to_owned()
        } else {
            root.join(&rel)
        };
        let rd = fs::read_dir(&dir).map_err(|e| io_err(&dir, e))?;
        for e in rd {
            let e = e.map_err(|e| io_err(&dir, e))?;
            let name = e.file_name();
            let Some(name) = name.to_str() else {
                return Err(SandboxError::Unsafe {
                    path: e.path().display().to_string(),
                    why: "the step made a name that is not UTF-8, which a layer cannot carry",
                });
            };
            let child = if rel.is_empty() {
                name.to_owned()
            } else {
                format!("{rel}/{name}")
            };
            let p = e.path();
            let m = fs::symlink_metadata(&p).map_err(|e| io_err(&p, e))?;
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                Kind::Dir
            } else if ft.is_file() {
                Kind::File
            } else if ft.is_symlink() {
                let t = fs::read_link(&p).map_err(|e| io_err(&p, e))?;
                Kind::Symlink(t.to_string_lossy().into_owned())
            } else {
                Kind::Other
            };
            if kind == Kind::Dir && !skip.contains(&child) {
                stack.push(child.clone());
            }
            out.insert(
                child,
                Stat {
                    kind,
                    mode: m.mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                    size: if ft.is_file() { m.size() } else { 0 },
                    mtime: (m.mtime(), m.mtime_nsec()),
                    ctime: (m.ctime(), m.ctime_nsec()),
                    ino: (m.dev(), m.ino()),
                    nlink: m.nlink(),
                },
            );
        }
    }
    Ok(out)
}

/// One entry of the step's layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// Added or modified: the entry as it is now.
    Put(String),
    /// Removed: the whiteout's path (`D/.wh.NAME`).
    Whiteout(String),
}

impl Change {
    /// The entry's path in the layer.
    pub fn path(&self) -> &str {
        match self {
            Change::Put(p) | Change::Whiteout(p) => p,
        }
    }
}

/// The changes between two walks, in the order a layer lists them.
pub fn changes(before: &Snapshot, after: &Snapshot) -> Vec<Change> {
    changes_with(before, after, None)
}

/// What [`changes_with`] needs to see past an overlay's copy-ups (see
/// [`super::overlay`]): the lower tree, the merged root as the walks saw
/// it, and what the upper folder held before the step.
pub struct Lower<'a> {
    pub tree: &'a Path,
    pub upper: &'a Path,
    pub root: &'a Path,
    pub in_upper: &'a HashSet<String>,
}

impl Lower<'_> {
    /// Whether the folder `rel`, walked as `was` and `now`, is unchanged
    /// by the step where the walks saw a difference: a copy-up's new ctime
    /// and a merged folder's link count of 1 are not changes. A file or
    /// link the step copied up it opened for writing or changed (on an
    /// unpacked root its ctime changed too, but for a file only opened
    /// read-write).
    fn same(&self, rel: &str, was: &Stat, now: &Stat) -> bool {
        let meta = |s: &Stat| (s.mode, s.uid, s.gid, s.mtime, s.ino);
        match (&was.kind, &now.kind) {
            // A folder is copied up whenever something below it is; one
            // in the upper folder with nothing new below it there was
            // changed itself (`chown` to the owner it had).
            (Kind::Dir, Kind::Dir) => meta(was) == meta(now) && !self.changed_itself(rel),
            _ => false,
        }
    }

    /// The other paths of a lower file with several links one of which
    /// the step changed or removed: on an unpacked root they share the
    /// inode, whose ctime and link count change with it, so they are
    /// changes there too (overlayfs copies up the one path alone).
    fn links_touched(&self, before: &Snapshot, after: &Snapshot, put: &[Change]) -> Vec<Change> {
        let put: HashSet<&str> = put.iter().map(Change::path).collect();
        // By the lower tree's inode: a path the upper folder held before
        // the step (given its owner) was copied up, its link broken.
        let mut groups: HashMap<u64, Vec<&str>> = HashMap::new();
        for (rel, was) in before {
            if was.kind != Kind::File {
                continue;
            }
            let ino = match self.in_upper.contains(rel) {
                false => (was.nlink > 1).then_some(was.ino.1),
                true => self
                    .lower_file(rel)
                    .filter(|m| m.nlink() > 1)
                    .map(|m| m.ino()),
            };
            if let Some(ino) = ino {
                groups.entry(ino).or_default().push(rel);
            }
        }
        let mut out = Vec::new();
        for paths in groups.values() {
            let touched = paths
                .iter()
                .any(|p| put.contains(p) || !after.contains_key(*p));
            if !touched {
                continue;
            }
            for p in paths {
                if after.contains_key(*p) && !put.contains(p) {
                    out.push(Change::Put((*p).to_owned()));
                }
            }
        }
        out
    }

    /// Whether the folder `rel` is in the upper folder with nothing the
    /// step put there below it.
    fn changed_itself(&self, rel: &str) -> bool {
        let Some(dir) = super::rootfs::real_dir(self.upper, rel) else {
            return false;
        };
        let Ok(rd) = fs::read_dir(dir) else {
            return false;
        };
        !rd.flatten().any(|e| {
            let name = e.file_name();
            let child = format!("{rel}/{}", name.to_string_lossy());
            !self.in_upper.contains(&child)
        })
    }

    /// The lower tree's `rel`, reached through real folders only.
    fn lower_path(&self, rel: &str) -> Option<std::path::PathBuf> {
        let parent = rel.rsplit_once('/').map_or("", |(d, _)| d);
        let name = rel.rsplit('/').next().unwrap_or(rel);
        super::rootfs::real_dir(self.tree, parent).map(|d| d.join(name))
    }

    /// The lower tree's `rel` when it is a file.
    fn lower_file(&self, rel: &str) -> Option<fs::Metadata> {
        let m = fs::symlink_metadata(self.lower_path(rel)?).ok()?;
        m.is_file().then_some(m)
    }
}

/// [`changes`], seeing past an overlay's copy-ups when there is one.
pub fn changes_with(before: &Snapshot, after: &Snapshot, lower: Option<&Lower>) -> Vec<Change> {
    let mut out = Vec::new();
    for (rel, now) in after {
        let same = match before.get(rel) {
            None => false,
            Some(was) => was == now || lower.is_some_and(|l| l.same(rel, was, now)),
        };
        if !same {
            out.push(Change::Put(rel.clone()));
        }
    }
    if let Some(lower) = lower {
        out.extend(lower.links_touched(before, after, &out));
    }
    for (rel, was) in before {
        if after.contains_key(rel) {
            continue;
        }
        let _ = was;
        let (parent, name) = match rel.rsplit_once('/') {
            Some((d, n)) => (Some(d), n),
            None => (None, rel.as_str()),
        };
        // The folder's own whiteout (or its replacement by a file)
        // already hides everything below it.
        let parent_kept = parent.is_none_or(|d| {
            after.get(d).is_some_and(|s| s.kind == Kind::Dir)
                && before.get(d).is_some_and(|s| s.kind == Kind::Dir)
        });
        if parent_kept {
            let wh = match parent {
                Some(d) => format!("{d}/.wh.{name}"),
                None => format!(".wh.{name}"),
            };
            out.push(Change::Whiteout(wh));
        }
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

/// What a step changed: the layer's entries in order, and the walk's
/// record of each one put.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Walked {
    pub changes: Vec<Change>,
    pub stats: BTreeMap<String, Stat>,
}

impl Walked {
    /// How many of the changes are whiteouts.
    pub fn whiteouts(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| matches!(c, Change::Whiteout(_)))
            .count()
    }
}

/// The changes from `before` to `after`, keeping the records of the
/// entries put only.
pub fn compare(before: &Snapshot, after: Snapshot) -> Walked {
    compare_with(before, after, None)
}

/// [`compare`], seeing past an overlay's copy-ups when there is one.
pub fn compare_with(before: &Snapshot, mut after: Snapshot, lower: Option<&Lower>) -> Walked {
    let changes = changes_with(before, &after, lower);
    let put: HashSet<&str> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Put(p) => Some(p.as_str()),
            Change::Whiteout(_) => None,
        })
        .collect();
    after.retain(|k, _| put.contains(k.as_str()));
    Walked {
        changes,
        stats: after,
    }
}

/// What the sandbox's child reports to hoist through the result file.
#[derive(Debug, Serialize, Deserialize)]
pub enum Outcome {
    Walked(Walked),
    /// The step ran past its timeout and was killed.
    TimedOut,
    /// A walk failed; the message says where.
    Failed(String),
}

/// Writes the outcome (in the child; errors leave the file empty, which
/// reads as "no outcome").
pub fn write_outcome(mut f: &fs::File, outcome: &Outcome) {
    if let Ok(bytes) = serde_json::to_vec(outcome) {
        let _ = f.write_all(&bytes);
    }
}

/// Reads what the child wrote.
pub fn read_outcome(mut f: &fs::File) -> Result<Outcome, SandboxError> {
    let mut bytes = Vec::new();
    let _ = f.seek(std::io::SeekFrom::Start(0));
    let _ = f.read_to_end(&mut bytes);
    serde_json::from_slice(&bytes).map_err(|_| SandboxError::Setup {
        stage: "walking the root folder after the step".into(),
        why: "the sandbox ended before it said what changed".into(),
    })
}

/// Gives every entry under `root` to root inside (the caller outside)
/// with owner read and write (and search, for folders) bits, so the
/// caller can read the step's files and remove the scratch folder. Runs
/// in the child, inside the user namespace; failures are left to the
/// removal, which reports what it cannot remove.
pub fn hand_back(root: &Path) {
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        give(&dir, true);
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else {
                give(&e.path(), t.is_file());
            }
        }
    }
}

fn give(p: &Path, chmod: bool) {
    let Ok(m) = fs::symlink_metadata(p) else {
        return;
    };
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else {
        return;
    };
    if m.uid() != 0 || m.gid() != 0 {
        // SAFETY: a valid C string; lchown never follows a link.
        unsafe { libc::lchown(c.as_ptr(), 0, 0) };
    }
    let want = if m.is_dir() { 0o700 } else { 0o600 };
    if chmod && m.mode() & want != want {
        // SAFETY: a valid C string naming a file or folder, not a link.
        unsafe { libc::chmod(c.as_ptr(), (m.mode() & 0o7777 | want) as libc::mode_t) };
    }
}

/// Writes the changes under `root` as a layer.
pub fn write_layer(
    store: &Store,
    root: &Path,
    walked: &Walked,
    compression: Compression,
    epoch: u64,
) -> Result<Layer, SandboxError> {
    let mut w = LayerWriter::new(store, compression, epoch)?;
    let mut links = HashMap::new();
    for c in &walked.changes {
        write_change(&mut w, root, walked, c, &mut links)?;
    }
    Ok(w.finish()?)
}

/// Writes `layer` with the changes the step made over it: its entries
/// the step changed or removed are replaced by what the step left (a
/// removal by a whiteout, which hides nothing when the layer alone had
/// the entry), merged in path order into each of the layer's sorted runs
/// (a segmented deps layer is several: its folders, then one run per
/// package), each change into the first run it sorts into. Only changes whose path `keep`
/// accepts are written (an install script's changes outside the package
/// folders stay out of the deps layer). Returns the layer and how many
/// changes were left out.
pub fn write_over(
    store: &Store,
    layer: &Descriptor,
    root: &Path,
    walked: &Walked,
    keep: &dyn Fn(&str) -> bool,
    compression: Compression,
    epoch: u64,
) -> Result<(Layer, usize), SandboxError> {
    let kept: Vec<&Change> = walked.changes.iter().filter(|c| keep(c.path())).collect();
    let left_out = walked.changes.len() - kept.len();
    let put: HashSet<&str> = kept
        .iter()
        .filter_map(|c| match c {
            Change::Put(p) => Some(p.as_str()),
            Change::Whiteout(_) => None,
        })
        .collect();
    let removed: HashSet<String> = kept
        .iter()
        .filter_map(|c| match c {
            Change::Whiteout(p) => Some(whiteout_target(p)),
            Change::Put(_) => None,
        })
        .collect();
    let replaced = |p: &str| {
        put.contains(p)
            || std::iter::successors(Some(p), |p| p.rsplit_once('/').map(|(d, _)| d))
                .any(|a| removed.contains(a))
    };
    let mut w = LayerWriter::new(store, compression, epoch)?;
    let mut links = HashMap::new();
    let mut pending = kept.iter().peekable();
    let blob = store.open_blob(&layer.digest)?;
    let layer_err = |source| SandboxError::Layer {
        digest: layer.digest.to_string(),
        source,
    };
    let (_, stream) = decompress(blob).map_err(|e| layer_err(e.into()))?;
    let mut last: Option<String> = None;
    LayerReader::new(stream)
        .for_each(|item, content| -> Result<Flow, SandboxError> {
            let Item::Entry(e) = item else {
                // hoist's deps layers hold no whiteouts; any other item
                // is left to the step's walk.
                return Ok(Flow::Continue);
            };
            let path = e.path.as_str();
            if last.as_deref().is_some_and(|l| path <= l) {
                w.new_run();
            }
            last = Some(path.to_owned());
            while let Some(c) = pending.next_if(|c| c.path() < path) {
                write_change(&mut w, root, walked, c, &mut links)?;
            }
            if replaced(path) {
                return Ok(Flow::Continue);
            }
            match e.kind {
                EntryKind::Dir => w.dir(&e.path, e.meta)?,
                EntryKind::File { size } => w.file(&e.path, e.meta, size, content)?,
                EntryKind::Symlink { target } => w.symlink(&e.path, &target, e.meta)?,
                EntryKind::Hardlink { target } if !replaced(target.as_str()) => {
                    w.hardlink(&e.path, &target, e.meta)?
                }
                EntryKind::Hardlink { .. } | EntryKind::Other => {}
            }
            Ok(Flow::Continue)
        })
        .map_err(|e| match e {
            SandboxError::ReadLayer(source) => layer_err(source),
            other => other,
        })?;
    for c in pending {
        write_change(&mut w, root, walked, c, &mut links)?;
    }
    Ok((w.finish()?, left_out))
}

/// The path a `D/.wh.NAME` whiteout removes.
fn whiteout_target(wh: &str) -> String {
    let strip = |n: &str| n.strip_prefix(".wh.").unwrap_or(n).to_owned();
    match wh.rsplit_once('/') {
        Some((d, n)) => format!("{d}/{}", strip(n)),
        None => strip(wh),
    }
}

/// Adds one change to `w`. Hard links inside the layer: the first path
/// of an inode (remembered in `links`) carries the content, the others
/// link to it.
fn write_change(
    w: &mut LayerWriter,
    root: &Path,
    walked: &Walked,
    c: &Change,
    links: &mut HashMap<(u64, u64), ImagePath>,
) -> Result<(), SandboxError> {
    let image_path = |p: &str| {
        ImagePath::new(p).map_err(|_| SandboxError::Unsafe {
            path: p.to_owned(),
            why: "the step made a path a layer cannot hold",
        })
    };
    let p = match c {
        Change::Whiteout(p) => {
            let meta = EntryMeta::root(0o644);
            w.file(&image_path(p)?, meta, 0, &mut std::io::empty())?;
            return Ok(());
        }
        Change::Put(p) => p,
    };
    let Some(s) = walked.stats.get(p) else {
        return Ok(());
    };
    let path = image_path(p)?;
    let meta = EntryMeta {
        mode: s.mode,
        uid: u64::from(s.uid),
        gid: u64::from(s.gid),
    };
    match &s.kind {
        Kind::Dir => w.dir(&path, meta)?,
        Kind::Symlink(t) => w.symlink(&path, t, meta)?,
        Kind::File => {
            if s.nlink > 1 {
                if let Some(t) = links.get(&s.ino) {
                    w.hardlink(&path, t, meta)?;
                    return Ok(());
                }
                links.insert(s.ino, path.clone());
            }
            let full = root.join(p);
            let mut f = fs::File::open(&full).map_err(|e| io_err(&full, e))?;
            w.file(&path, meta, s.size, &mut f)?;
        }
        // Device nodes and FIFOs a step makes cannot be made again where
        // the image is unpacked rootless; leave them out.
        Kind::Other => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(kind: Kind, ino: u64) -> Stat {
        Stat {
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: (1, 0),
            ctime: (1, 0),
            ino: (1, ino),
            nlink: 1,
        }
    }

    fn snap(v: &[(&str, Kind, u64)]) -> Snapshot {
        v.iter()
            .map(|(p, k, i)| (p.to_string(), st(k.clone(), *i)))
            .collect()
    }

    #[test]
    fn changes_and_whiteouts() {
        let before = snap(&[
            ("etc", Kind::Dir, 1),
            ("etc/motd", Kind::File, 2),
            ("etc/hosts", Kind::File, 3),
            ("opt", Kind::Dir, 4),
            ("opt/a", Kind::File, 5),
            ("opt/a.b", Kind::File, 6),
            ("srv", Kind::Dir, 7),
            ("srv/x", Kind::File, 8),
        ]);
        let mut after = snap(&[
            ("etc", Kind::Dir, 1),
            ("etc/hosts", Kind::File, 3),
            ("data", Kind::Dir, 10),
            ("data/x", Kind::File, 11),
            ("srv", Kind::File, 12),
        ]);
        after.get_mut("etc").unwrap().mtime = (2, 0);
        let got: Vec<String> = changes(&before, &after)
            .iter()
            .map(|c| match c {
                Change::Put(p) => p.clone(),
                Change::Whiteout(p) => format!("-{p}"),
            })
            .collect();
        assert_eq!(
            got,
            ["-.wh.opt", "data", "data/x", "etc", "-etc/.wh.motd", "srv"],
            "opt's contents are covered by its whiteout; srv became a file"
        );
        assert!(changes(&before, &before).is_empty());
    }

    #[test]
    fn whiteout_targets() {
        for (wh, target) in [
            (".wh.opt", "opt"),
            ("etc/.wh.motd", "etc/motd"),
            (
                "app/node_modules/x/.wh..wh.lock",
                "app/node_modules/x/.wh.lock",
            ),
        ] {
            assert_eq!(whiteout_target(wh), target, "{wh}");
        }
    }
}
