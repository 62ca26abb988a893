//! The overlay view of a base's layer tars: the engine every fact asks.
//!
//! It exists apart from the facts because how a path is found in a stack
//! of layers is one idea, and what `/etc/os-release` or `libc.so.6` means
//! is another: this file knows tars, whiteouts and links, and nothing of
//! what any path is for. The facts' modules ask it questions (a file's
//! content, whether a path exists, is a folder, what a scanner found in
//! it) and get either an answer or what another pass must collect.
//!
//! Each question is answered as overlayfs would for the merged tree: an
//! entry in an upper layer hides the same path below, a whiteout
//! (`.wh.NAME`) hides a path and everything under it in the layers below,
//! an opaque folder (`.wh..wh..opq`) hides what the layers below hold in
//! it, and a non-folder entry hides everything the layers below hold under
//! its path. Layers are read top first and no further down than needed:
//! once every path of interest is decided, the lower layers are not even
//! opened.
//!
//! Symbolic links are resolved inside the image only, as a chroot would:
//! an absolute target starts at the image's root, a relative one at the
//! link's folder, `..` stops at the root, every component (not only the
//! last: merged-usr `lib -> usr/lib`, or `etc` itself a link) is followed,
//! and at most [`MAX_SYMLINK_HOPS`] links are followed per path, like
//! Linux's `ELOOP` limit. A tar stream can only be read once, in order,
//! and link targets are known only once read, so resolution works in
//! rounds: one pass over the layers collects the paths known to matter
//! (the wanted files, `usr/lib/os-release`, their folders); when a link
//! leads somewhere not collected, another pass collects that too (at most
//! [`super::MAX_SCANS`] passes; real bases need one, two when `etc` is a
//! link). A hard link to a wanted file takes its content from the link's
//! target in the same layer, collected the same way.
//!
//! Memory stays small: content is kept only for the wanted files, only
//! from the topmost layer that decides them, and only up to
//! [`MAX_FACT_FILE_BYTES`]; a larger wanted file is an error naming it,
//! never read whole. A file read only for a version is streamed through
//! the scanners of [`super::scanners`], which keep a few numbers and
//! names, whatever its size. The uncompressed size of each layer stream
//! is bounded by the reader.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::io::{ErrorKind, Read};

use super::scanners::{ScanKind, Scanned, Scanner};
use super::{FactsError, FileFact, MAX_FACT_FILE_BYTES, MAX_SYMLINK_HOPS};
use crate::image::Descriptor;
use crate::layer::compress::decompress;
use crate::layer::reader::{EntryKind, Flow, Item, LayerReadError, LayerReader};
use crate::layer::{EntryMeta, ImagePath};
use crate::store::Store;

/// A path built from the facts' constants as an [`ImagePath`].
pub(super) fn image_path(s: &str) -> ImagePath {
    // The constants are plain relative paths; `new` cannot refuse them.
    ImagePath::new(s).unwrap_or_else(|_| unreachable!("bad constant path {s}"))
}

/// What a pass collects.
#[derive(Debug, Default)]
pub(super) struct Wants {
    /// Paths looked up in the merged tree; always holds their ancestors.
    paths: BTreeSet<ImagePath>,
    /// The same, as strings, for the per-entry ancestor check.
    path_strs: HashSet<String>,
    /// Hard-link targets whose content is wanted from one layer.
    links: BTreeSet<(usize, ImagePath)>,
    /// Paths of `paths` whose content is not kept: those whose kind
    /// matters but whose content does not (the dynamic loaders, Python's
    /// files), and those only scanned.
    unread: HashSet<ImagePath>,
    /// Paths whose content is streamed through scanners, and which.
    scans: HashMap<ImagePath, BTreeSet<ScanKind>>,
    /// Folders whose every file is streamed through a scanner (dpkg's
    /// `status.d`, one record per package): read from every layer, as
    /// the merged folder is the union of them.
    children: HashMap<ImagePath, ScanKind>,
}

impl Wants {
    pub(super) fn add_path(&mut self, p: &ImagePath) -> bool {
        let mut new = false;
        for a in p.ancestors().into_iter().chain([p.clone()]) {
            self.path_strs.insert(a.as_str().to_owned());
            new |= self.paths.insert(a);
        }
        new
    }

    /// Adds a path whose content is never read, unless it is also wanted
    /// for its content.
    pub(super) fn add_kind_only(&mut self, p: &ImagePath) -> bool {
        let known = self.paths.contains(p);
        let new = self.add_path(p);
        if !known {
            self.unread.insert(p.clone());
        }
        new
    }

    /// Adds a path whose content `kind` scans; its content is not kept
    /// unless it is also wanted for it.
    pub(super) fn add_scan(&mut self, p: &ImagePath, kind: ScanKind) -> bool {
        let new = self.add_kind_only(p);
        self.scans.entry(p.clone()).or_default().insert(kind) || new
    }

    /// The hard-link targets whose content is wanted from layer `layer`.
    fn links_in(&self, layer: usize) -> HashSet<&ImagePath> {
        self.links
            .iter()
            .filter(|(l, _)| *l == layer)
            .map(|(_, p)| p)
            .collect()
    }

    /// The paths asked for whose content is not read.
    pub(super) fn kind_only_paths(&self) -> impl Iterator<Item = &ImagePath> {
        self.unread.iter()
    }

    pub(super) fn add(&mut self, need: &Need) -> bool {
        match need {
            Need::Path(p) => {
                let now_read = self.unread.remove(p);
                self.add_path(p) || now_read
            }
            Need::KindOnly(p) => self.add_kind_only(p),
            Need::Scan(p, kind) => self.add_scan(p, *kind),
            Need::Link(layer, p) => self.links.insert((*layer, p.clone())),
            Need::Children(p, kind) => {
                let new = self.add_kind_only(p);
                self.children.insert(p.clone(), *kind).is_none() || new
            }
        }
    }
}

/// What another pass must collect.
#[derive(Debug)]
pub(super) enum Need {
    Path(ImagePath),
    /// A path whose kind, not content, is wanted.
    KindOnly(ImagePath),
    /// A path whose content is scanned, not kept.
    Scan(ImagePath, ScanKind),
    Link(usize, ImagePath),
    /// Every file right below a folder, scanned.
    Children(ImagePath, ScanKind),
}

pub(super) enum Outcome<T> {
    Ready(T),
    Need(Vec<Need>),
}

impl<T> Outcome<T> {
    pub(super) fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Ready(v) => Outcome::Ready(f(v)),
            Outcome::Need(n) => Outcome::Need(n),
        }
    }
}

/// One entry of a layer, as far as a pass keeps it.
#[derive(Debug)]
pub(super) struct Rec {
    pub(super) kind: RecKind,
    pub(super) meta: EntryMeta,
    content: Content,
    /// What the scanners the path asked for found in its content.
    scanned: Vec<(ScanKind, Scanned)>,
}

#[derive(Debug)]
pub(super) enum RecKind {
    Dir,
    File,
    Symlink(String),
    Hardlink(ImagePath),
    Other,
}

#[derive(Debug)]
enum Content {
    NotRead,
    Bytes(Vec<u8>),
    TooLarge(u64),
}

/// What one layer says about the wanted paths.
#[derive(Debug, Default)]
struct LayerRec {
    /// Entries at wanted paths (the last one wins, as when unpacking).
    entries: HashMap<ImagePath, Rec>,
    /// Wanted paths this layer holds something below, so a folder.
    implicit_dirs: HashSet<ImagePath>,
    whiteouts: HashSet<ImagePath>,
    opaque: HashSet<ImagePath>,
    opaque_root: bool,
    /// Files right below the [`Wants::children`] folders, by folder and
    /// name: what the scanner found, `None` for a whiteout or an entry
    /// that is no regular file (it hides lower layers' all the same).
    children: HashMap<ImagePath, BTreeMap<String, Option<Scanned>>>,
}

impl LayerRec {
    /// Whether this layer hides the lower layers' entries below one of
    /// `ancestors`: an opaque root, a whiteout or opaque marker on the
    /// way, or something other than a folder standing there.
    fn hides_below(&self, ancestors: &[ImagePath]) -> bool {
        self.opaque_root
            || ancestors.iter().any(|a| {
                self.whiteouts.contains(a)
                    || self.opaque.contains(a)
                    || self
                        .entries
                        .get(a)
                        .is_some_and(|r| !matches!(r.kind, RecKind::Dir))
            })
    }

    /// Whether this layer hides the lower layers' children of `dir`
    /// (whose ancestors are `ancestors`): a whiteout or opaque marker on
    /// it or above it, or something other than a folder there.
    fn hides_children_below(&self, dir: &ImagePath, ancestors: &[ImagePath]) -> bool {
        let replaced = self
            .entries
            .get(dir)
            .is_some_and(|r| !matches!(r.kind, RecKind::Dir));
        self.whiteouts.contains(dir)
            || self.opaque.contains(dir)
            || replaced
            || self.hides_below(ancestors)
    }
}

/// A path in the merged tree, from the layers read so far.
enum Look<'a> {
    /// The topmost entry at the path, in layer `.0`.
    Found(usize, &'a Rec),
    /// A folder with no entry of its own: only files below it.
    ImplicitDir,
    Absent,
    /// A layer that decides it was not read.
    Undetermined,
    /// Not collected in this pass.
    Unknown,
}

/// Where resolving a path ends.
pub(super) enum Resolved<'a> {
    Absent,
    /// The image's root, or a folder without an entry.
    ImplicitDir,
    Found {
        path: ImagePath,
        layer: usize,
        rec: &'a Rec,
    },
}

/// What a hard link's layer holds at the link's target.
enum Held<'a> {
    Rec(&'a Rec),
    /// The target was collected from that layer, and is not there.
    Broken,
    /// Not collected in this pass.
    NotCollected,
}

/// One pass over the layers.
pub(super) struct Scan<'a> {
    wants: &'a Wants,
    layers: &'a [Descriptor],
    /// By layer index, bottom first; `None` for layers not read.
    recs: Vec<Option<LayerRec>>,
}

impl<'a> Scan<'a> {
    /// Reads layers top-down until every wanted path is decided.
    pub(super) fn run(
        store: &Store,
        layers: &'a [Descriptor],
        wants: &'a Wants,
    ) -> Result<Self, FactsError> {
        let mut scan = Scan {
            wants,
            layers,
            recs: layers.iter().map(|_| None).collect(),
        };
        let mut ahead = read_ahead(store, layers, wants);
        for i in (0..layers.len()).rev() {
            let open: HashSet<&ImagePath> = wants
                .paths
                .iter()
                .filter(|p| matches!(scan.lookup(p), Look::Undetermined))
                .collect();
            let links = wants.links_in(i);
            // A folder whose children are wanted is read from every layer
            // until one above hides what lies below it.
            let children_open = wants.children.keys().any(|dir| {
                let ancestors = dir.ancestors();
                !scan.recs[i + 1..]
                    .iter()
                    .flatten()
                    .any(|rec| rec.hides_children_below(dir, &ancestors))
            });
            if open.is_empty() && !children_open && !wants.links.iter().any(|(l, _)| *l <= i) {
                break;
            }
            // Read ahead with every wanted path open, a layer holds at
            // least what this read would collect (and fails as it would:
            // every read goes through the whole stream).
            scan.recs[i] = Some(match ahead.get_mut(i).and_then(Option::take) {
                Some(rec) => rec?,
                None => read_layer(store, &layers[i], wants, &open, &links)?,
            });
        }
        Ok(scan)
    }

    /// Looks `p` up in the merged tree, without following links.
    fn lookup(&self, p: &ImagePath) -> Look<'_> {
        if !self.wants.paths.contains(p) {
            return Look::Unknown;
        }
        let ancestors = p.ancestors();
        let mut implicit = false;
        for (i, rec) in self.recs.iter().enumerate().rev() {
            let Some(rec) = rec else {
                return Look::Undetermined;
            };
            if let Some(r) = rec.entries.get(p) {
                return Look::Found(i, r);
            }
            implicit |= rec.implicit_dirs.contains(p);
            let hidden = rec.whiteouts.contains(p) || rec.hides_below(&ancestors);
            if hidden {
                break;
            }
        }
        if implicit {
            Look::ImplicitDir
        } else {
            Look::Absent
        }
    }

    /// Resolves `wanted` through every link, chroot-like.
    pub(super) fn resolve(&self, wanted: &str) -> Result<Outcome<Resolved<'_>>, FactsError> {
        let mut queue: VecDeque<String> = VecDeque::new();
        push_front_parts(&mut queue, wanted);
        let mut stack: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = queue.pop_front() {
            if part == ".." {
                stack.pop();
                continue;
            }
            stack.push(part);
            let Ok(cur) = ImagePath::new(&stack.join("/")) else {
                // A NUL in a link target: no such file.
                return Ok(Outcome::Ready(Resolved::Absent));
            };
            let last = queue.is_empty();
            match self.lookup(&cur) {
                Look::Unknown | Look::Undetermined => {
                    return Ok(Outcome::Need(vec![Need::Path(cur)]))
                }
                Look::Absent => return Ok(Outcome::Ready(Resolved::Absent)),
                Look::ImplicitDir => {
                    if last {
                        return Ok(Outcome::Ready(Resolved::ImplicitDir));
                    }
                }
                Look::Found(layer, rec) => match &rec.kind {
                    // An empty target names nothing (ENOENT).
                    RecKind::Symlink(target) if target.is_empty() => {
                        return Ok(Outcome::Ready(Resolved::Absent))
                    }
                    RecKind::Symlink(target) => {
                        hops += 1;
                        if hops > MAX_SYMLINK_HOPS {
                            return Err(FactsError::LinkLoop {
                                path: format!("/{wanted}"),
                                at: cur.to_string(),
                            });
                        }
                        stack.pop();
                        if target.starts_with('/') {
                            stack.clear();
                        }
                        push_front_parts(&mut queue, target);
                    }
                    RecKind::Dir if !last => {}
                    // A file in the middle of a path: ENOTDIR.
                    _ if !last => return Ok(Outcome::Ready(Resolved::Absent)),
                    _ => {
                        return Ok(Outcome::Ready(Resolved::Found {
                            path: cur,
                            layer,
                            rec,
                        }))
                    }
                },
            }
        }
        // The path ended in `..` (or was the root): a folder passed earlier.
        let Ok(cur) = ImagePath::new(&stack.join("/")) else {
            return Ok(Outcome::Ready(Resolved::ImplicitDir));
        };
        Ok(Outcome::Ready(match self.lookup(&cur) {
            Look::Found(layer, rec) => Resolved::Found {
                path: cur,
                layer,
                rec,
            },
            _ => Resolved::ImplicitDir,
        }))
    }

    /// The content of a wanted regular file, through links.
    pub(super) fn file(&self, wanted: &str) -> Result<Outcome<Option<FileFact>>, FactsError> {
        let not_a_file = |found: String, what| FactsError::NotAFile {
            path: format!("/{wanted}"),
            found,
            what,
        };
        let (mut path, layer, mut rec) = match self.resolve(wanted)? {
            Outcome::Need(n) => return Ok(Outcome::Need(n)),
            Outcome::Ready(Resolved::Absent) => return Ok(Outcome::Ready(None)),
            Outcome::Ready(Resolved::ImplicitDir) => {
                return Err(not_a_file(format!("/{wanted}"), "a folder"))
            }
            Outcome::Ready(Resolved::Found { path, layer, rec }) => (path, layer, rec),
        };
        let mut hops = 0;
        loop {
            match (&rec.kind, &rec.content) {
                (RecKind::File, Content::Bytes(b)) => {
                    return Ok(Outcome::Ready(Some(FileFact {
                        content: b.clone(),
                        meta: rec.meta,
                    })))
                }
                (RecKind::File, Content::TooLarge(size)) => {
                    return Err(FactsError::TooLarge {
                        path: format!("/{wanted}"),
                        found: path.to_string(),
                        size: *size,
                        limit: MAX_FACT_FILE_BYTES,
                    })
                }
                (RecKind::File, Content::NotRead) => {
                    // Kept for its kind only: a hard-link target that is
                    // decided by a higher layer for path lookups.
                    return Ok(Outcome::Need(vec![Need::Link(layer, path)]));
                }
                (RecKind::Hardlink(target), _) => {
                    match self.hard_link(wanted, layer, &path, target, &mut hops)? {
                        Held::Rec(r) => {
                            path = target.clone();
                            rec = r;
                        }
                        Held::Broken => {
                            return Err(FactsError::BrokenHardlink {
                                layer: self.layers[layer].digest.clone(),
                                path: path.to_string(),
                                target: target.to_string(),
                            })
                        }
                        Held::NotCollected => {
                            return Ok(Outcome::Need(vec![Need::Link(layer, target.clone())]))
                        }
                    }
                }
                (RecKind::Dir, _) => return Err(not_a_file(path.to_string(), "a folder")),
                (RecKind::Other, _) => {
                    return Err(not_a_file(path.to_string(), "a device node or FIFO"))
                }
                (RecKind::Symlink(_), _) => {
                    return Err(not_a_file(
                        path.to_string(),
                        "a hard link to a symbolic link",
                    ))
                }
            }
        }
    }

    /// What `kind` finds in the regular file `wanted` resolves to; `None`
    /// when it resolves to no regular file. The facts scanned for are
    /// optional, so an odd entry (a folder, a broken hard link) is no file,
    /// never an error.
    pub(super) fn scanned(
        &self,
        wanted: &str,
        kind: ScanKind,
    ) -> Result<Outcome<Option<Scanned>>, FactsError> {
        let (mut path, layer, mut rec) = match self.resolve(wanted)? {
            Outcome::Need(needs) => {
                let needs = needs
                    .into_iter()
                    .map(|n| match n {
                        Need::Path(p) => Need::Scan(p, kind),
                        other => other,
                    })
                    .collect();
                return Ok(Outcome::Need(needs));
            }
            Outcome::Ready(Resolved::Found { path, layer, rec }) => (path, layer, rec),
            Outcome::Ready(Resolved::Absent | Resolved::ImplicitDir) => {
                return Ok(Outcome::Ready(None))
            }
        };
        let mut hops = 0;
        loop {
            match &rec.kind {
                RecKind::File => {
                    if let Some((_, found)) = rec.scanned.iter().find(|(k, _)| *k == kind) {
                        return Ok(Outcome::Ready(Some(found.clone())));
                    }
                    if let Content::Bytes(bytes) = &rec.content {
                        return Ok(Outcome::Ready(Some(kind.scan(bytes))));
                    }
                    let mut needs = vec![Need::Scan(path.clone(), kind)];
                    if hops > 0 {
                        // A hard link's target is read from its layer.
                        needs.push(Need::Link(layer, path));
                    }
                    return Ok(Outcome::Need(needs));
                }
                RecKind::Hardlink(target) => {
                    match self.hard_link(wanted, layer, &path, target, &mut hops)? {
                        Held::Rec(r) => {
                            path = target.clone();
                            rec = r;
                        }
                        Held::Broken => return Ok(Outcome::Ready(None)),
                        Held::NotCollected => {
                            return Ok(Outcome::Need(vec![
                                Need::Scan(target.clone(), kind),
                                Need::Link(layer, target.clone()),
                            ]))
                        }
                    }
                }
                RecKind::Dir | RecKind::Symlink(_) | RecKind::Other => {
                    return Ok(Outcome::Ready(None))
                }
            }
        }
    }

    /// One step along the hard link at `path` in `layer` to `target`,
    /// the `hops`-th link followed for `wanted` (an error past
    /// [`MAX_SYMLINK_HOPS`]). A hard link names a file of its own layer.
    fn hard_link(
        &self,
        wanted: &str,
        layer: usize,
        path: &ImagePath,
        target: &ImagePath,
        hops: &mut usize,
    ) -> Result<Held<'_>, FactsError> {
        *hops += 1;
        if *hops > MAX_SYMLINK_HOPS {
            return Err(FactsError::LinkLoop {
                path: format!("/{wanted}"),
                at: path.to_string(),
            });
        }
        let held = self.recs[layer]
            .as_ref()
            .and_then(|r| r.entries.get(target));
        Ok(match held {
            Some(r) => Held::Rec(r),
            None if self.wants.links.contains(&(layer, target.clone())) => Held::Broken,
            None => Held::NotCollected,
        })
    }

    /// Whether `wanted` resolves (through links) to something other than a
    /// folder. Its content is never read.
    pub(super) fn exists(&self, wanted: &str) -> Result<Outcome<bool>, FactsError> {
        Ok(match self.resolve(wanted)? {
            Outcome::Need(needs) => Outcome::Need(kind_only(needs)),
            Outcome::Ready(Resolved::Found { rec, .. }) => {
                Outcome::Ready(!matches!(rec.kind, RecKind::Dir))
            }
            Outcome::Ready(Resolved::Absent | Resolved::ImplicitDir) => Outcome::Ready(false),
        })
    }

    /// What `kind` found in each file right below the folder `dir`, by
    /// name, in the merged tree: a higher layer's file (or whiteout) hides
    /// a lower one's; an opaque, whited-out or replaced folder hides
    /// every lower layer. `dir` is taken as written, links not followed.
    pub(super) fn children_scanned(
        &self,
        dir: &str,
        kind: ScanKind,
    ) -> Outcome<BTreeMap<String, Scanned>> {
        let dir = match ImagePath::new(dir) {
            Ok(d) => d,
            Err(_) => return Outcome::Ready(BTreeMap::new()),
        };
        if self.wants.children.get(&dir) != Some(&kind) {
            return Outcome::Need(vec![Need::Children(dir, kind)]);
        }
        let mut seen: BTreeMap<String, Option<Scanned>> = BTreeMap::new();
        let ancestors = dir.ancestors();
        for rec in self.recs.iter().rev() {
            let Some(rec) = rec else {
                return Outcome::Need(vec![Need::Children(dir, kind)]);
            };
            if let Some(files) = rec.children.get(&dir) {
                for (name, found) in files {
                    seen.entry(name.clone()).or_insert_with(|| found.clone());
                }
            }
            if rec.hides_children_below(&dir, &ancestors) {
                break;
            }
        }
        Outcome::Ready(
            seen.into_iter()
                .filter_map(|(name, found)| Some((name, found?)))
                .collect(),
        )
    }

    /// Whether `wanted` resolves (through links) to a folder.
    pub(super) fn is_dir(&self, wanted: &str) -> Result<Outcome<bool>, FactsError> {
        Ok(match self.resolve(wanted)? {
            Outcome::Need(needs) => Outcome::Need(kind_only(needs)),
            Outcome::Ready(Resolved::Found { rec, .. }) => {
                Outcome::Ready(matches!(rec.kind, RecKind::Dir))
            }
            Outcome::Ready(Resolved::ImplicitDir) => Outcome::Ready(true),
            Outcome::Ready(Resolved::Absent) => Outcome::Ready(false),
        })
    }
}

/// The value of a ready outcome; a needing one adds to `needs`.
pub(super) fn ready<T>(outcome: Outcome<T>, needs: &mut Vec<Need>) -> Option<T> {
    match outcome {
        Outcome::Ready(v) => Some(v),
        Outcome::Need(n) => {
            needs.extend(n);
            None
        }
    }
}

/// Needs of a question about a path's kind: its content is not wanted.
pub(super) fn kind_only(needs: Vec<Need>) -> Vec<Need> {
    needs
        .into_iter()
        .map(|n| match n {
            Need::Path(p) => Need::KindOnly(p),
            other => other,
        })
        .collect()
}

/// Puts the parts of `path` at the front of `queue`, in order, without the
/// empty and `.` parts.
fn push_front_parts(queue: &mut VecDeque<String>, path: &str) {
    for part in path.rsplit('/') {
        if !part.is_empty() && part != "." {
            queue.push_front(part.to_owned());
        }
    }
}

/// Reads one layer, keeping what `wants` asks: the kind of every wanted
/// path, the content of the `open` ones (not decided by a higher layer) and
/// of the hard-link targets wanted from this layer.
/// Every layer read at once, each on a thread of its own up to the
/// machine's cores, with every wanted path open: decompressing is the
/// whole cost of a pass, and the layers of a base are independent. The
/// pass then takes these results top-down as if it read them in turn;
/// one it stops above was read for nothing, which costs a core, not
/// time. One layer, or one core: nothing read ahead.
fn read_ahead(
    store: &Store,
    layers: &[Descriptor],
    wants: &Wants,
) -> Vec<Option<Result<LayerRec, FactsError>>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if layers.len() < 2 || threads < 2 {
        return layers.iter().map(|_| None).collect();
    }
    let open: HashSet<&ImagePath> = wants.paths.iter().collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<Result<LayerRec, FactsError>>> =
        layers.iter().map(|_| None).collect();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.min(layers.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut read = Vec::new();
                    // Top layer first: the pass needs it first.
                    while let Some(i) = layers
                        .len()
                        .checked_sub(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1)
                    {
                        let links = wants.links_in(i);
                        read.push((i, read_layer(store, &layers[i], wants, &open, &links)));
                    }
                    read
                })
            })
            .collect();
        // A worker that panicked leaves its layers to the pass itself.
        for (i, rec) in workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
        {
            results[i] = Some(rec);
        }
    });
    results
}

fn read_layer(
    store: &Store,
    desc: &Descriptor,
    wants: &Wants,
    open: &HashSet<&ImagePath>,
    links: &HashSet<&ImagePath>,
) -> Result<LayerRec, FactsError> {
    let layer_err = |source: LayerReadError| FactsError::Layer {
        layer: desc.digest.clone(),
        source,
    };
    let blob = store.open_blob(&desc.digest)?;
    let (_, stream) = decompress(blob).map_err(|e| layer_err(e.into()))?;
    let mut rec = LayerRec::default();
    LayerReader::new(stream)
        .for_each(|item, content| {
            match item {
                Item::Entry(e) => {
                    let path_str = e.path.as_str();
                    for (at, _) in path_str.match_indices('/') {
                        let ancestor = &path_str[..at];
                        if wants.path_strs.contains(ancestor) {
                            if let Ok(a) = ImagePath::new(ancestor) {
                                rec.implicit_dirs.insert(a);
                            }
                        }
                    }
                    if let Some((dir, name, kind)) = child_of(wants, &e.path) {
                        let found = match e.kind {
                            EntryKind::File { size } => {
                                let (_, found) = read_file(content, size, false, &[kind])?;
                                found.into_iter().next().map(|(_, f)| f)
                            }
                            _ => None,
                        };
                        rec.children.entry(dir).or_default().insert(name, found);
                        return Ok(Flow::Continue);
                    }
                    let is_open = open.contains(&e.path);
                    let via_link = links.contains(&e.path);
                    let keep = (is_open && !wants.unread.contains(&e.path)) || via_link;
                    let scans: Vec<ScanKind> = match wants.scans.get(&e.path) {
                        Some(kinds) if is_open || via_link => kinds.iter().copied().collect(),
                        _ => Vec::new(),
                    };
                    if !keep && !wants.paths.contains(&e.path) {
                        return Ok(Flow::Continue);
                    }
                    let mut scanned = Vec::new();
                    let (kind, body) = match e.kind {
                        EntryKind::Dir => (RecKind::Dir, Content::NotRead),
                        EntryKind::File { size } if keep || !scans.is_empty() => {
                            let (body, found) = read_file(content, size, keep, &scans)?;
                            scanned = found;
                            (RecKind::File, body)
                        }
                        EntryKind::File { .. } => (RecKind::File, Content::NotRead),
                        EntryKind::Symlink { target } => {
                            (RecKind::Symlink(target), Content::NotRead)
                        }
                        EntryKind::Hardlink { target } => {
                            (RecKind::Hardlink(target), Content::NotRead)
                        }
                        EntryKind::Other => (RecKind::Other, Content::NotRead),
                    };
                    rec.entries.insert(
                        e.path,
                        Rec {
                            kind,
                            meta: e.meta,
                            content: body,
                            scanned,
                        },
                    );
                }
                Item::Whiteout(p) => {
                    if let Some((dir, name, _)) = child_of(wants, &p) {
                        rec.children.entry(dir).or_default().insert(name, None);
                    }
                    if wants.paths.contains(&p) {
                        rec.whiteouts.insert(p);
                    }
                }
                Item::Opaque(Some(d)) => {
                    if wants.paths.contains(&d) {
                        rec.opaque.insert(d);
                    }
                }
                Item::Opaque(None) => rec.opaque_root = true,
                // No wanted path is anything but UTF-8.
                Item::NotUtf8 { .. } => {}
            }
            Ok(Flow::Continue)
        })
        .map_err(layer_err)?;
    Ok(rec)
}

/// The wanted folder `path` is right below, its name there, and the
/// scanner for it, when `path` is a child of a [`Wants::children`] folder.
fn child_of(wants: &Wants, path: &ImagePath) -> Option<(ImagePath, String, ScanKind)> {
    if wants.children.is_empty() {
        return None;
    }
    let (dir, name) = path.as_str().rsplit_once('/')?;
    let dir = ImagePath::new(dir).ok()?;
    let kind = *wants.children.get(&dir)?;
    Some((dir, name.to_owned(), kind))
}

/// Streams a file through the `scans` scanners, keeping its content too
/// when `keep` (as [`read_bounded`] would). Only the scanners' small state
/// is held, however large the file.
fn read_file(
    content: &mut dyn Read,
    size: u64,
    keep: bool,
    scans: &[ScanKind],
) -> Result<(Content, Vec<(ScanKind, Scanned)>), LayerReadError> {
    if scans.is_empty() {
        let body = if keep {
            read_bounded(content, size)?
        } else {
            Content::NotRead
        };
        return Ok((body, Vec::new()));
    }
    let mut scanners: Vec<Scanner> = scans.iter().map(|k| k.scanner()).collect();
    let mut kept = (keep && size <= MAX_FACT_FILE_BYTES).then(Vec::new);
    let mut buf = vec![0; 64 << 10];
    let mut total: u64 = 0;
    loop {
        let n = match content.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        let chunk = &buf[..n];
        total += n as u64;
        for s in &mut scanners {
            s.feed(chunk);
        }
        if total > MAX_FACT_FILE_BYTES {
            kept = None;
        }
        if let Some(k) = &mut kept {
            k.extend_from_slice(chunk);
        }
    }
    let body = match kept {
        _ if !keep => Content::NotRead,
        Some(bytes) => Content::Bytes(bytes),
        None => Content::TooLarge(total.max(size)),
    };
    let found = scans
        .iter()
        .copied()
        .zip(scanners.into_iter().map(Scanner::finish))
        .collect();
    Ok((body, found))
}

/// A file's content, unless it is larger than [`MAX_FACT_FILE_BYTES`].
fn read_bounded(content: &mut dyn Read, size: u64) -> Result<Content, LayerReadError> {
    if size > MAX_FACT_FILE_BYTES {
        return Ok(Content::TooLarge(size));
    }
    let mut buf = Vec::with_capacity(size as usize);
    content
        .take(MAX_FACT_FILE_BYTES + 1)
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_FACT_FILE_BYTES {
        return Ok(Content::TooLarge(buf.len() as u64));
    }
    Ok(Content::Bytes(buf))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use crate::digest::Digest;
    use crate::facts::fixtures::*;
    use crate::facts::{read_facts, FactsError, OsFamily, MAX_FACT_FILE_BYTES};
    use crate::image::Descriptor;
    use crate::layer::reader::tests::RawTar;
    use crate::layer::{Compression, EntryMeta};
    use crate::store::StoreError;

    #[test]
    fn lower_layer_files_show_through() {
        let (_d, s) = store();
        let base = layer(
            &s,
            &[
                E::Dir("etc"),
                E::File("etc/passwd", PASSWD_A),
                E::File("etc/group", b"root:x:0:\n"),
                E::File("etc/shadow", b"root:*::0:::::\n"),
                E::File("etc/os-release", ALPINE_OS_RELEASE),
                E::Dir("home"),
            ],
        );
        let top = layer(&s, &[E::Dir("app"), E::File("app/x", b"x")]);
        let facts = read_facts(&s, &[base, top]).unwrap();
        assert_eq!(content(&facts.passwd), Some(PASSWD_A));
        assert_eq!(content(&facts.group), Some(&b"root:x:0:\n"[..]));
        assert_eq!(content(&facts.shadow), Some(&b"root:*::0:::::\n"[..]));
        assert_eq!(facts.gshadow, None);
        assert_eq!(facts.passwd.as_ref().unwrap().meta, EntryMeta::root(0o644));
        assert_eq!(facts.home, Some(EntryMeta::root(0o755)));
        assert_eq!(facts.os_family(), OsFamily::Alpine);
        assert_eq!(
            facts.os_release.unwrap().version_id.as_deref(),
            Some("3.20.3")
        );
    }

    #[test]
    fn upper_layers_win_and_whiteouts_hide() {
        let (_d, s) = store();
        let base = layer(
            &s,
            &[
                E::File("etc/passwd", PASSWD_A),
                E::File("etc/shadow", b"root:*::0:::::\n"),
                E::Dir("home"),
            ],
        );
        let mid = layer(&s, &[E::File("etc/passwd", PASSWD_B)]);
        let top = RawTar::new()
            .file("etc/.wh.shadow", b"")
            .file(".wh.home", b"")
            .finish();
        let top = raw_layer(&s, &top);
        let facts = read_facts(&s, &[base, mid, top]).unwrap();
        assert_eq!(content(&facts.passwd), Some(PASSWD_B));
        assert_eq!(facts.shadow, None);
        assert_eq!(facts.home, None);
    }

    #[test]
    fn opaque_folder_hides_lower_but_not_its_own_layer() {
        let (_d, s) = store();
        let base = layer(
            &s,
            &[
                E::File("etc/passwd", PASSWD_A),
                E::File("etc/group", b"old\n"),
            ],
        );
        // The marker after the file on purpose: order inside a layer does
        // not matter.
        let top = RawTar::new()
            .file("etc/group", b"new\n")
            .file("etc/.wh..wh..opq", b"")
            .finish();
        let top = raw_layer(&s, &top);
        let facts = read_facts(&s, &[base, top]).unwrap();
        assert_eq!(facts.passwd, None);
        assert_eq!(content(&facts.group), Some(&b"new\n"[..]));
    }

    #[test]
    fn non_folder_hides_what_lower_layers_hold_below_it() {
        let (_d, s) = store();
        let base = layer(&s, &[E::File("etc/passwd", PASSWD_A)]);
        let top = layer(&s, &[E::File("etc", b"not a folder")]);
        let facts = read_facts(&s, &[base, top]).unwrap();
        assert_eq!(facts.passwd, None);
    }

    #[test]
    fn symlinks_resolve_inside_the_image() {
        struct Case {
            name: &'static str,
            layers: Vec<Vec<u8>>,
            passwd: Option<&'static [u8]>,
            family: OsFamily,
        }
        let cases = [
            Case {
                name: "relative os-release link, target in a lower layer",
                layers: vec![
                    RawTar::new()
                        .file("usr/lib/os-release", DEBIAN_OS_RELEASE)
                        .finish(),
                    RawTar::new()
                        .symlink("etc/os-release", "../usr/lib/os-release")
                        .finish(),
                ],
                passwd: None,
                family: OsFamily::Debian,
            },
            Case {
                name: "absolute os-release link",
                layers: vec![RawTar::new()
                    .symlink("etc/os-release", "/usr/lib/os-release")
                    .file("usr/lib/os-release", ALPINE_OS_RELEASE)
                    .finish()],
                passwd: None,
                family: OsFamily::Alpine,
            },
            Case {
                name: "merged-usr ancestor link",
                layers: vec![RawTar::new()
                    .symlink("lib", "usr/lib")
                    .symlink("etc/os-release", "../lib/os-release")
                    .file("usr/lib/os-release", DEBIAN_OS_RELEASE)
                    .finish()],
                passwd: None,
                family: OsFamily::Debian,
            },
            Case {
                name: "etc itself a link (needs a second pass)",
                layers: vec![RawTar::new()
                    .symlink("etc", "private/etc")
                    .file("private/etc/passwd", PASSWD_A)
                    .finish()],
                passwd: Some(PASSWD_A),
                family: OsFamily::Other,
            },
            Case {
                name: "links through links through `..`",
                layers: vec![RawTar::new()
                    .dir("a/b/")
                    .symlink("etc", "a/b/../../c/etc")
                    .symlink("c", "/d")
                    .file("d/etc/passwd", PASSWD_B)
                    .finish()],
                passwd: Some(PASSWD_B),
                family: OsFamily::Other,
            },
            Case {
                name: "`..` stops at the root",
                layers: vec![RawTar::new()
                    .symlink("etc/passwd", "../../../../etc/passwd.real")
                    .file("etc/passwd.real", PASSWD_A)
                    .finish()],
                passwd: Some(PASSWD_A),
                family: OsFamily::Other,
            },
            Case {
                name: "an escaping absolute link stays inside",
                layers: vec![RawTar::new()
                    .symlink("etc/passwd", "/../etc/./passwd.real")
                    .file("etc/passwd.real", PASSWD_B)
                    .finish()],
                passwd: Some(PASSWD_B),
                family: OsFamily::Other,
            },
            Case {
                name: "`..` after a missing folder",
                layers: vec![RawTar::new()
                    .symlink("etc", "a/../d/etc")
                    .file("d/etc/passwd", PASSWD_B)
                    .finish()],
                passwd: None,
                family: OsFamily::Other,
            },
            Case {
                name: "empty link target (through PAX; a header cannot say it)",
                layers: vec![RawTar::new()
                    .pax(&[("linkpath", "")])
                    .symlink("etc/passwd", "x")
                    .finish()],
                passwd: None,
                family: OsFamily::Other,
            },
            Case {
                name: "dangling link",
                layers: vec![RawTar::new().symlink("etc/passwd", "nowhere").finish()],
                passwd: None,
                family: OsFamily::Other,
            },
            Case {
                name: "link whose target a higher layer whites out",
                layers: vec![
                    RawTar::new()
                        .symlink("etc/passwd", "/srv/passwd")
                        .file("srv/passwd", PASSWD_A)
                        .finish(),
                    RawTar::new().file(".wh.srv", b"").finish(),
                ],
                passwd: None,
                family: OsFamily::Other,
            },
            Case {
                name: "file in the middle of a path",
                layers: vec![RawTar::new()
                    .file("x", b"")
                    .symlink("etc/passwd", "/x/passwd")
                    .finish()],
                passwd: None,
                family: OsFamily::Other,
            },
            Case {
                name: "hard link to a file earlier in the layer",
                layers: vec![RawTar::new()
                    .file_meta("etc/passwd-", PASSWD_B, 0o600, 0, 42)
                    .hardlink("etc/passwd", "etc/passwd-")
                    .finish()],
                passwd: Some(PASSWD_B),
                family: OsFamily::Other,
            },
            Case {
                name: "climbing and absolute names, read as containerd reads them",
                layers: vec![RawTar::new()
                    .file("../../etc/passwd-", PASSWD_B)
                    .hardlink("/etc/passwd", "a/../../etc/passwd-")
                    .file("/etc/os-release", ALPINE_OS_RELEASE)
                    .finish()],
                passwd: Some(PASSWD_B),
                family: OsFamily::Alpine,
            },
            Case {
                name: "folder with no entry of its own",
                layers: vec![RawTar::new().file("etc/passwd", PASSWD_A).finish()],
                passwd: Some(PASSWD_A),
                family: OsFamily::Other,
            },
        ];
        for c in cases {
            let (_d, s) = store();
            let layers: Vec<Descriptor> = c.layers.iter().map(|t| raw_layer(&s, t)).collect();
            let facts = read_facts(&s, &layers).unwrap_or_else(|e| panic!("{}: {e}", c.name));
            assert_eq!(content(&facts.passwd), c.passwd, "{}", c.name);
            assert_eq!(facts.os_family(), c.family, "{}", c.name);
        }
    }

    #[test]
    fn hard_link_meta_is_the_targets() {
        let (_d, s) = store();
        let tar = RawTar::new()
            .file_meta("etc/shadow-", b"root:*::0:::::\n", 0o640, 0, 42)
            .hardlink("etc/shadow", "etc/shadow-")
            .finish();
        let facts = read_facts(&s, &[raw_layer(&s, &tar)]).unwrap();
        let shadow = facts.shadow.unwrap();
        assert_eq!(shadow.content, b"root:*::0:::::\n");
        assert_eq!(
            shadow.meta,
            EntryMeta {
                mode: 0o640,
                uid: 0,
                gid: 42
            }
        );
    }

    #[test]
    fn errors_table() {
        let big = vec![b'x'; MAX_FACT_FILE_BYTES as usize + 1];
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "link loop",
                RawTar::new()
                    .symlink("etc/passwd", "passwd2")
                    .symlink("etc/passwd2", "/etc/passwd")
                    .finish(),
                "more than 40 links",
            ),
            (
                "self loop in a folder",
                RawTar::new().symlink("etc", "etc").finish(),
                "more than 40 links",
            ),
            (
                "too large",
                RawTar::new().file("etc/group", &big).finish(),
                "/etc/group in the base is 4194305 bytes",
            ),
            (
                "too large behind a link",
                RawTar::new()
                    .symlink("etc/group", "/g")
                    .file("g", &big)
                    .finish(),
                "(at /g)",
            ),
            (
                "broken hard link",
                RawTar::new().hardlink("etc/passwd", "etc/nothing").finish(),
                "hard link to /etc/nothing",
            ),
            (
                "passwd is a folder",
                RawTar::new().dir("etc/passwd/").finish(),
                "/etc/passwd in the base is a folder",
            ),
        ];
        for (name, tar, needle) in cases {
            let (_d, s) = store();
            let err = read_facts(&s, &[raw_layer(&s, &tar)]).unwrap_err();
            assert!(err.to_string().contains(needle), "{name}: {err}");
        }
    }

    #[test]
    fn too_large_file_hidden_by_an_upper_layer_is_fine() {
        let (_d, s) = store();
        let big = vec![b'x'; MAX_FACT_FILE_BYTES as usize + 1];
        let base = raw_layer(&s, &RawTar::new().file("etc/passwd", &big).finish());
        let top = raw_layer(&s, &RawTar::new().file("etc/passwd", PASSWD_A).finish());
        let facts = read_facts(&s, &[base, top]).unwrap();
        assert_eq!(content(&facts.passwd), Some(PASSWD_A));
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let (_d, s) = store();
        let mut tar = RawTar::new();
        for i in 0..200 {
            tar.file(&format!("usr/share/f{i}"), &[b'a' + (i % 26) as u8; 3000]);
        }
        let tar = tar.file("etc/passwd", PASSWD_A).finish();
        let mut enc = Compression::Gzip.encoder(Vec::new()).unwrap();
        enc.write_all(&tar).unwrap();
        let gz = enc.finish().unwrap();
        let (digest, size) = s.put_bytes(&gz[..gz.len() / 2]).unwrap();
        let desc = Descriptor::new(Compression::Gzip.media_type(), digest.clone(), size);
        let err = read_facts(&s, &[desc]).unwrap_err();
        assert!(
            matches!(&err, FactsError::Layer { layer, .. } if *layer == digest),
            "{err}"
        );
    }

    /// Reading ahead opens every wanted path in every layer: what a lower
    /// layer holds at a path a layer above decides (here a file too large
    /// to read) changes nothing, as when the layers are read in turn.
    #[test]
    fn read_ahead_does_not_fail_on_what_a_layer_above_decides() {
        let (_d, s) = store();
        let big = vec![b'x'; MAX_FACT_FILE_BYTES as usize + 1];
        let bottom = raw_layer(&s, &RawTar::new().file("etc/passwd", &big).finish());
        let top = raw_layer(&s, &RawTar::new().file("etc/passwd", PASSWD_A).finish());
        let facts = read_facts(&s, &[bottom.clone(), top]).unwrap();
        assert_eq!(content(&facts.passwd), Some(PASSWD_A));
        // Alone, the same layer is the error.
        let err = read_facts(&s, &[bottom]).unwrap_err();
        assert!(matches!(err, FactsError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn stops_before_layers_it_does_not_need() {
        let (_d, s) = store();
        // Never stored: opening it would fail.
        let missing = Descriptor::new(
            Compression::Gzip.media_type(),
            Digest::of(b"not in the store"),
            1,
        );
        // Every path of interest decided: by an entry, or hidden from the
        // layers below by an opaque folder or a whiteout.
        let top = RawTar::new()
            .dir("etc/")
            .file("etc/passwd", PASSWD_A)
            .file("etc/group", b"root:x:0:\n")
            .file("etc/shadow", b"")
            .file("etc/gshadow", b"")
            .symlink("etc/os-release", "../usr/lib/os-release")
            .dir("usr/")
            .file("usr/.wh..wh..opq", b"")
            .file("usr/lib/os-release", ALPINE_OS_RELEASE)
            .file("usr/bin/python3.12", b"")
            .file("usr/lib/python3.12/os.py", b"")
            .dir("lib/")
            .file("lib/.wh..wh..opq", b"")
            .file("lib/apk/db/installed", ALPINE_APK_DB)
            .file(".wh.lib64", b"")
            .file(".wh.var", b"")
            .file(".wh.bin", b"")
            .file(".wh.sbin", b"")
            .file(".wh.nodejs", b"")
            .dir("home/")
            .finish();
        let top = raw_layer(&s, &top);
        let facts = read_facts(&s, &[missing.clone(), top]).unwrap();
        assert_eq!(facts.os_family(), OsFamily::Alpine);
        assert_eq!(facts.libc_version, Some((1, 2)));
        assert_eq!(facts.python.map(|p| p.version), Some((3, 12)));
        // While a base whose top layer leaves something open reads on.
        let top = layer(&s, &[E::File("etc/passwd", PASSWD_A)]);
        let err = read_facts(&s, &[missing, top]).unwrap_err();
        assert!(
            matches!(err, FactsError::Store(StoreError::Missing(..))),
            "{err}"
        );
    }
}
