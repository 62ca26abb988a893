//! The node_modules layer, written straight from the tarballs in the store.
//!
//! Two steps. [`plan`] lists every entry of the layer, sorted by path as
//! the layer writer requires: each package's files (from the scans
//! [`super::fetch`] made) at `WORKDIR/<lockfile key>/<path in the
//! tarball>`, the `.bin` links, the workspace links, and every folder
//! above them. [`write()`] then streams the files' bytes out of the
//! tarballs, with no tree on disk.
//!
//! The layer is segmented ([`crate::layer::segments`]): a skeleton of
//! every folder and link, then one segment per tarball holding that
//! tarball's files in path order, tarballs in the order of their first
//! file. Each segment is kept in the store under a key of its entries and
//! its tarball's digest, so a lockfile change compresses the changed
//! packages and the skeleton only.
//!
//! Inside a segment the order is the hard part. A tarball's entries come in
//! whatever order its author's tools wrote them, not sorted. So a
//! segment opens its tarball and writes the wanted files in path order;
//! a wanted file that the tarball holds later than others still wanted is
//! reached by reading past those; each one passed is kept in a bounded
//! buffer ([`BUFFER_BYTES`] per open tarball), the one needed latest
//! evicted first when full. A file passed and not kept is read again by
//! reopening the tarball (gzip decodes at hundreds of MB/s, and with the
//! eviction order each reopening buys a full buffer of the next files), so
//! memory stays flat even for packages of hundreds of MB in reverse order,
//! and a typical tarball is decompressed exactly once.
//!
//! What goes where, as npm (arborist, pacote, bin-links) does it:
//! - Files of a tarball that fall inside another installed (non-bundled)
//!   package's folder are dropped: npm extracts that package into a
//!   folder it empties first. Bundled packages (`inBundle`) come from
//!   their parent's tarball and are written from it.
//! - Folders are 0755 and every entry is owned by root; a package's own
//!   folder exists even when its tarball holds no file.
//! - A `.bin` link whose target is not in the package is skipped, as
//!   bin-links skips it. A link wins over a tarball file at its path.
//! - Workspace and `file:` folder links are relative symlinks to the
//!   folder in the project, whose files the app layer brings.
//! - A path that would be both a file (or link) and a folder is an error
//!   naming both: a tar cannot say it, and a link with entries below it
//!   would let later entries escape through it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, Read};
use std::sync::Mutex;

use super::bins::Bins;
use super::fetch::Fetched;
use super::lockfile::InstallPath;
use super::path::{relative_link, RelPath};
use super::select::{Kind, Selection};
use super::tarball::{fix_crlf_shebang, TarEntries, TarStream, DIR_MODE, MAX_CRLF_BIN_BYTES};
use crate::digest::Digest;
use crate::layer::compress::decompress;
use crate::layer::segments::{self, EntryKind, Segment, SegmentKey, SegmentWriter};
use crate::layer::{Compression, EntryMeta, ImagePath, Layer, LayerError};
use crate::store::{Store, StoreError};

/// The most file content kept in memory per open tarball.
pub const BUFFER_BYTES: u64 = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("`{path}` would be both {first} and {second} in node_modules; the lockfile or a tarball is inconsistent")]
    Conflict {
        path: String,
        first: String,
        second: String,
    },
    #[error("`{key}`: {path} is not a valid path in the image: {why}")]
    BadPath {
        key: String,
        path: String,
        why: String,
    },
    #[error("`{key}`: reading the stored tarball {digest}: {source}")]
    Tarball {
        key: String,
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error("`{key}`: the stored tarball {digest} no longer holds `{entry}` as scanned (the store was changed underneath)")]
    Changed {
        key: String,
        digest: Digest,
        entry: String,
    },
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One tarball the layer is written from.
#[derive(Debug, Clone, Copy)]
pub struct TarballSource<'a> {
    pub key: &'a InstallPath,
    pub fetched: &'a Fetched,
}

/// Where a layer entry's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Dir,
    Symlink(String),
    File {
        /// Index into [`Plan::tarballs`].
        tarball: usize,
        ordinal: u32,
        size: u64,
        /// The CRLF shebang fix applies; `size` is the fixed size.
        fix: bool,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    path: ImagePath,
    mode: u32,
    source: Source,
}

/// A tarball as the writer reads it.
#[derive(Debug, Clone)]
struct PlannedTarball {
    key: String,
    digest: Digest,
}

/// Every entry of the layer, sorted.
#[derive(Debug, Clone)]
pub struct Plan {
    entries: Vec<Entry>,
    tarballs: Vec<PlannedTarball>,
    pub files: usize,
    pub bin_links: usize,
    pub links: usize,
    /// `.bin` links skipped because their target is missing.
    pub missing_bins: Vec<String>,
}

/// The bin targets each tarball must make executable, as paths inside it:
/// a package's own, and those of the bundled packages it carries
/// (`node_modules/<bundled>/<file>`).
pub fn bins_by_tarball(
    selection: &Selection<'_>,
    bins: &Bins,
) -> HashMap<InstallPath, HashSet<RelPath>> {
    let kinds: HashMap<&InstallPath, &Kind> = selection
        .install
        .iter()
        .map(|s| (s.path, &s.kind))
        .collect();
    let mut out: HashMap<InstallPath, HashSet<RelPath>> = HashMap::new();
    for b in bins.links.iter().chain(&bins.shadowed) {
        // The nearest package at or above the bin's with a tarball.
        let mut owner = Some(b.package.clone());
        while let Some(p) = owner {
            match kinds.get(&p) {
                Some(Kind::Tarball) => {
                    let inside = match b.package.as_str().strip_prefix(p.as_str()) {
                        Some("") => Some(b.file.clone()),
                        Some(rest) => RelPath::new(rest.trim_start_matches('/'))
                            .ok()
                            .map(|r| r.join(&b.file)),
                        None => None,
                    };
                    if let Some(inside) = inside {
                        out.entry(p).or_default().insert(inside);
                    }
                    break;
                }
                Some(Kind::Bundled) => owner = p.parent(),
                _ => break,
            }
        }
    }
    out
}

/// What one layer entry is, for conflict messages.
fn describe(source: &Source, tarballs: &[PlannedTarball]) -> String {
    match source {
        Source::Dir => "a folder".to_owned(),
        Source::Symlink(t) => format!("a link to `{t}`"),
        Source::File { tarball, .. } => format!("a file of `{}`", tarballs[*tarball].key),
    }
}

/// Lists the layer's entries. `in_project` says whether a file exists in
/// the project (for `.bin` links into linked folders).
pub fn plan(
    workdir: &ImagePath,
    selection: &Selection<'_>,
    bins: &Bins,
    tarballs: &[TarballSource<'_>],
    in_project: &dyn Fn(&RelPath) -> bool,
) -> Result<Plan, LayoutError> {
    let image_path = |key: &str, rel: &str| {
        workdir.join(rel).map_err(|e| LayoutError::BadPath {
            key: key.to_owned(),
            path: rel.to_owned(),
            why: e.why.to_owned(),
        })
    };
    // Installed folders that are not bundled: nothing of another tarball
    // lands in them.
    let owners: HashSet<&str> = selection
        .install
        .iter()
        .filter(|s| !matches!(s.kind, Kind::Bundled))
        .map(|s| s.path.as_str())
        .collect();

    // Path -> entry; files first, then links (which replace a file at
    // their path), then folders.
    let mut by_path: BTreeMap<ImagePath, (u32, Source)> = BTreeMap::new();
    let mut planned = Vec::with_capacity(tarballs.len());
    let mut files = 0;
    for (t, tb) in tarballs.iter().enumerate() {
        let key = tb.key.as_str();
        planned.push(PlannedTarball {
            key: key.to_owned(),
            digest: tb.fetched.digest.clone(),
        });
        for f in &tb.fetched.files {
            let rel = tb.key.rel_path().join(&f.path);
            if inside_other_package(key, f.path.as_str(), &owners) {
                continue;
            }
            let path = image_path(key, rel.as_str())?;
            let source = Source::File {
                tarball: t,
                ordinal: f.ordinal,
                size: f.written_size(),
                fix: f.fixed_size.is_some(),
            };
            if let Some((_, prev)) = by_path.insert(path.clone(), (f.mode, source.clone())) {
                return Err(LayoutError::Conflict {
                    path: path.to_string(),
                    first: describe(&prev, &planned),
                    second: describe(&source, &planned),
                });
            }
            files += 1;
        }
    }

    let mut links = 0;
    let mut missing_bins = Vec::new();
    let mut symlinks: Vec<(ImagePath, String)> = Vec::new();
    for s in &selection.install {
        if let Kind::Link { target } = &s.kind {
            let path = image_path(s.path.as_str(), s.path.as_str())?;
            symlinks.push((path, relative_link(s.path.rel_path(), target)));
            links += 1;
        }
    }
    let linked: HashMap<&str, &RelPath> = selection
        .install
        .iter()
        .filter_map(|s| match &s.kind {
            Kind::Link { target } => Some((s.path.as_str(), target)),
            _ => None,
        })
        .collect();
    let mut bin_links = 0;
    for b in &bins.links {
        let exists = match linked.get(b.package.as_str()) {
            Some(target) => in_project(&target.join(&b.file)),
            None => {
                let target = image_path(
                    b.package.as_str(),
                    b.package.rel_path().join(&b.file).as_str(),
                )?;
                let below = format!("{}/", target.as_str());
                by_path.contains_key(&target)
                    || by_path
                        .range(target.clone()..)
                        .next()
                        .is_some_and(|(p, _)| p.as_str().starts_with(&below))
            }
        };
        if !exists {
            missing_bins.push(format!("{} -> {}", b.link, b.target));
            continue;
        }
        let path = image_path(b.package.as_str(), b.link.as_str())?;
        symlinks.push((path, b.target.clone()));
        bin_links += 1;
    }
    for (path, target) in symlinks {
        let source = Source::Symlink(target);
        if let Some((_, prev)) = by_path.insert(path.clone(), (0o777, source.clone())) {
            match prev {
                // A link replaces a file, as bin-links clobbers one.
                Source::File { .. } => files -= 1,
                _ => {
                    return Err(LayoutError::Conflict {
                        path: path.to_string(),
                        first: describe(&prev, &planned),
                        second: describe(&source, &planned),
                    })
                }
            }
        }
    }

    // Folders: the workdir and its ancestors, each package's own folder,
    // and every folder above an entry.
    let mut dirs: BTreeSet<ImagePath> = BTreeSet::new();
    dirs.extend(workdir.ancestors());
    dirs.insert(workdir.clone());
    // Each folder goes in with its ancestors (so a folder already in the
    // set has them all, and the walk up stops there): a package folder
    // inserted alone left `node_modules` itself out of a layer with no
    // `.bin` links, where npm writes it.
    let with_ancestors = |dirs: &mut BTreeSet<ImagePath>, mut cur: Option<ImagePath>| {
        while let Some(p) = cur {
            if !dirs.insert(p.clone()) {
                break;
            }
            cur = p.parent();
        }
    };
    for s in &selection.install {
        if matches!(s.kind, Kind::Tarball) {
            let dir = image_path(s.path.as_str(), s.path.as_str())?;
            with_ancestors(&mut dirs, Some(dir));
        }
    }
    for path in by_path.keys() {
        with_ancestors(&mut dirs, path.parent());
    }
    for dir in dirs {
        if let Some((_, prev)) = by_path.get(&dir) {
            return Err(LayoutError::Conflict {
                path: dir.to_string(),
                first: describe(prev, &planned),
                second: "a folder".to_owned(),
            });
        }
        by_path.insert(dir, (DIR_MODE, Source::Dir));
    }
    // Every ancestor of every entry is a folder now, so a file or link
    // with entries below it was refused above.
    let entries: Vec<Entry> = by_path
        .into_iter()
        .map(|(path, (mode, source))| Entry { path, mode, source })
        .collect();
    Ok(Plan {
        entries,
        tarballs: planned,
        files,
        bin_links,
        links,
        missing_bins,
    })
}

/// Whether `rel`, a file of the tarball of the package at `key`, lies in
/// the folder of another installed, non-bundled package
/// (`node_modules/<dep>/...` inside it).
fn inside_other_package(key: &str, rel: &str, owners: &HashSet<&str>) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let mut i = 0;
    let mut folder = key.to_owned();
    while i + 1 < parts.len() {
        if parts[i] != "node_modules" {
            return false;
        }
        let name_len = if parts[i + 1].starts_with('@') { 2 } else { 1 };
        if i + 1 + name_len > parts.len() {
            return false;
        }
        folder.push_str("/node_modules/");
        folder.push_str(&parts[i + 1..i + 1 + name_len].join("/"));
        if i + 1 + name_len == parts.len() {
            // The package folder's name itself as a file.
            return false;
        }
        if owners.contains(folder.as_str()) {
            return true;
        }
        i += 1 + name_len;
    }
    false
}

/// What writing the layer took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Tarballs opened (decompressed from the start), reopenings included.
    pub tarball_reads: usize,
    /// The most file bytes buffered at once.
    pub peak_buffered: u64,
}

/// Writes the planned layer into the store, as segments (see the module
/// docs): the stored ones are reused, the others made on every core.
pub fn write(
    plan: &Plan,
    store: &Store,
    compression: Compression,
    epoch: u64,
) -> Result<(Layer, WriteStats), LayoutError> {
    let layout = segments(plan);
    let keys: Vec<Segment> = layout
        .iter()
        .map(|list| key(plan, list, compression, epoch))
        .collect();
    let wanted = wanted_by_tarball(plan);
    let total = Mutex::new(WriteStats::default());
    let layer = segments::write(store, compression, epoch, &keys, |i, out| {
        let mut w = Writer {
            plan,
            store,
            out,
            next: 0,
            wanted: &wanted,
            stats: WriteStats::default(),
            buffered: 0,
        };
        let result = w.segment(&layout[i]);
        if let Ok(mut t) = total.lock() {
            t.tarball_reads += w.stats.tarball_reads;
            t.peak_buffered = t.peak_buffered.max(w.stats.peak_buffered);
        }
        result
    })?;
    Ok((layer, total.into_inner().unwrap_or_default()))
}

/// The layer's segments, as plan indices: the skeleton (folders and
/// links), then each tarball's files, tarballs in the order of their
/// first file; entries in path order inside each.
fn segments(plan: &Plan) -> Vec<Vec<usize>> {
    let mut skeleton = Vec::new();
    let mut tarballs: Vec<Vec<usize>> = vec![Vec::new(); plan.tarballs.len()];
    for (i, e) in plan.entries.iter().enumerate() {
        match e.source {
            Source::File { tarball, .. } if tarball < tarballs.len() => tarballs[tarball].push(i),
            _ => skeleton.push(i),
        }
    }
    tarballs.retain(|t| !t.is_empty());
    tarballs.sort_by_key(|t| t[0]);
    let mut out = vec![skeleton];
    out.extend(tarballs);
    out
}

/// A segment's key: every entry's header fields and where its bytes come
/// from (the tarball's digest, the entry's place in it, the shebang fix).
fn key(plan: &Plan, list: &[usize], compression: Compression, epoch: u64) -> Segment {
    let mut k = SegmentKey::new(compression, epoch);
    for &i in list {
        let e = &plan.entries[i];
        let meta = EntryMeta::root(e.mode);
        match &e.source {
            Source::Dir => k.entry(&e.path, EntryKind::Dir, meta, 0, "", b""),
            Source::Symlink(target) => k.entry(&e.path, EntryKind::Symlink, meta, 0, target, b""),
            Source::File {
                tarball,
                ordinal,
                size,
                fix,
            } => {
                let digest = plan.tarballs.get(*tarball).map(|t| t.digest.as_str());
                let id = format!("{}\0{ordinal}\0{fix}", digest.unwrap_or_default());
                k.entry(&e.path, EntryKind::File, meta, *size, "", id.as_bytes());
            }
        }
    }
    k.finish()
}

/// For each tarball, its files' ordinals and their places in the plan.
fn wanted_by_tarball(plan: &Plan) -> Vec<HashMap<u32, usize>> {
    let mut wanted: Vec<HashMap<u32, usize>> =
        plan.tarballs.iter().map(|_| HashMap::new()).collect();
    for (i, e) in plan.entries.iter().enumerate() {
        if let Source::File {
            tarball, ordinal, ..
        } = e.source
        {
            wanted[tarball].insert(ordinal, i);
        }
    }
    wanted
}

struct Writer<'a> {
    plan: &'a Plan,
    store: &'a Store,
    out: &'a mut SegmentWriter,
    /// The plan entry being written.
    next: usize,
    wanted: &'a [HashMap<u32, usize>],
    stats: WriteStats,
    /// Bytes buffered across every open block.
    buffered: u64,
}

/// Files read ahead of their turn, by plan index.
#[derive(Default)]
struct Buffer {
    files: BTreeMap<usize, Vec<u8>>,
    bytes: u64,
}

impl<'a> Writer<'a> {
    /// Writes a folder or link.
    fn simple(&mut self) -> Result<(), LayoutError> {
        let e = &self.plan.entries[self.next];
        let meta = EntryMeta::root(e.mode);
        match &e.source {
            Source::Dir => self.out.dir(&e.path, meta)?,
            Source::Symlink(target) => self.out.symlink(&e.path, target, meta)?,
            Source::File { .. } => unreachable!("files are written by blocks"),
        }
        self.next += 1;
        Ok(())
    }

    /// Writes one segment: folders and links, or one tarball's files.
    fn segment(&mut self, list: &[usize]) -> Result<(), LayoutError> {
        match list.first().map(|i| &self.plan.entries[*i].source) {
            Some(Source::File { tarball, .. }) => self.block(*tarball, list),
            _ => {
                for &i in list {
                    self.next = i;
                    self.simple()?;
                }
                Ok(())
            }
        }
    }

    /// Writes the files of tarball `t` (the plan indices `list`).
    fn block(&mut self, t: usize, list: &[usize]) -> Result<(), LayoutError> {
        let plan = self.plan;
        let tb = &plan.tarballs[t];
        let mut buffer = Buffer::default();
        let result = self.block_inner(t, tb, list, &mut buffer);
        self.buffered -= buffer.bytes;
        result
    }

    fn block_inner(
        &mut self,
        t: usize,
        tb: &PlannedTarball,
        list: &[usize],
        buffer: &mut Buffer,
    ) -> Result<(), LayoutError> {
        let read_err = |source: io::Error| LayoutError::Tarball {
            key: tb.key.clone(),
            digest: tb.digest.clone(),
            source,
        };
        let mut cur = 0;
        loop {
            // (Re)open the tarball.
            let blob = self.store.open_blob(&tb.digest)?;
            let (_, stream) = decompress(blob).map_err(read_err)?;
            let mut tar = TarStream::new(stream);
            let mut entries = tar.entries().map_err(read_err)?;
            self.stats.tarball_reads += 1;
            let mut pos: u32 = 0;
            let plan = self.plan;
            loop {
                let Some(&i) = list.get(cur) else {
                    return Ok(());
                };
                self.next = i;
                let Source::File {
                    ordinal, size, fix, ..
                } = plan.entries[i].source
                else {
                    self.simple()?;
                    cur += 1;
                    continue;
                };
                if let Some(bytes) = buffer.files.remove(&i) {
                    buffer.bytes -= bytes.len() as u64;
                    self.buffered -= bytes.len() as u64;
                    self.write_file(tb, &mut &bytes[..], bytes.len() as u64, size, fix)?;
                    cur += 1;
                    continue;
                }
                if ordinal < pos {
                    // Passed and not kept: read the tarball again.
                    break;
                }
                self.advance_to(t, tb, &mut entries, &mut pos, ordinal, size, fix, buffer)?;
                cur += 1;
            }
        }
    }

    /// Reads the tarball on to `ordinal`, keeping files wanted later in
    /// the buffer, and writes that one.
    #[allow(clippy::too_many_arguments)]
    fn advance_to<R: Read>(
        &mut self,
        t: usize,
        tb: &PlannedTarball,
        entries: &mut TarEntries<'_, R>,
        pos: &mut u32,
        ordinal: u32,
        size: u64,
        fix: bool,
        buffer: &mut Buffer,
    ) -> Result<(), LayoutError> {
        let read_err = |source: io::Error| LayoutError::Tarball {
            key: tb.key.clone(),
            digest: tb.digest.clone(),
            source,
        };
        loop {
            let Some(next) = entries.next() else {
                return Err(LayoutError::Changed {
                    key: tb.key.clone(),
                    digest: tb.digest.clone(),
                    entry: self.plan.entries[self.next].path.to_string(),
                });
            };
            let (ord, mut entry) = next.map_err(read_err)?;
            *pos = ord + 1;
            if ord == ordinal {
                let raw = entry.size();
                return self.write_file(tb, &mut entry, raw, size, fix);
            }
            let Some(&rank) = self.wanted[t].get(&ord) else {
                continue;
            };
            if rank <= self.next {
                continue;
            }
            let raw = entry.size();
            let (room, freed) = buffer.make_room(rank, raw);
            self.buffered -= freed;
            if !room {
                continue;
            }
            let mut bytes = Vec::with_capacity(raw as usize);
            (&mut entry)
                .take(raw)
                .read_to_end(&mut bytes)
                .map_err(read_err)?;
            buffer.bytes += bytes.len() as u64;
            self.buffered += bytes.len() as u64;
            self.stats.peak_buffered = self.stats.peak_buffered.max(self.buffered);
            buffer.files.insert(rank, bytes);
        }
    }

    /// Writes the current plan entry from `content` (`raw` bytes as in the
    /// tarball; `size` as planned, after any fix).
    fn write_file(
        &mut self,
        tb: &PlannedTarball,
        content: &mut dyn Read,
        raw: u64,
        size: u64,
        fix: bool,
    ) -> Result<(), LayoutError> {
        let e = &self.plan.entries[self.next];
        let meta = EntryMeta::root(e.mode);
        if fix {
            let mut bytes = Vec::new();
            content
                .take(raw.min(MAX_CRLF_BIN_BYTES))
                .read_to_end(&mut bytes)
                .map_err(|source| LayoutError::Tarball {
                    key: tb.key.clone(),
                    digest: tb.digest.clone(),
                    source,
                })?;
            let fixed = fix_crlf_shebang(&bytes).filter(|f| f.len() as u64 == size);
            let Some(fixed) = fixed else {
                return Err(LayoutError::Changed {
                    key: tb.key.clone(),
                    digest: tb.digest.clone(),
                    entry: e.path.to_string(),
                });
            };
            self.out.file(&e.path, meta, size, &mut &fixed[..])?;
        } else {
            if raw != size {
                return Err(LayoutError::Changed {
                    key: tb.key.clone(),
                    digest: tb.digest.clone(),
                    entry: e.path.to_string(),
                });
            }
            self.out.file(&e.path, meta, size, content)?;
        }
        self.next += 1;
        Ok(())
    }
}

impl Buffer {
    /// Makes room for a file of `size` bytes wanted at plan index `rank`,
    /// evicting files wanted later than it. Says whether to keep it (not
    /// when too large, or when everything kept is wanted sooner), and how
    /// many bytes were evicted.
    fn make_room(&mut self, rank: usize, size: u64) -> (bool, u64) {
        if size > BUFFER_BYTES {
            return (false, 0);
        }
        let mut freed = 0;
        while self.bytes + size > BUFFER_BYTES {
            match self.files.last_key_value() {
                Some((&last, _)) if last > rank => {
                    if let Some(evicted) = self.files.remove(&last) {
                        self.bytes -= evicted.len() as u64;
                        freed += evicted.len() as u64;
                    }
                }
                _ => return (false, freed),
            }
        }
        (true, freed)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::deps::npm::bins::bin_links;
    use crate::deps::npm::lockfile::Lockfile;
    use crate::deps::npm::select::{select, Libc, Omit, Target};
    use crate::deps::npm::tarball::scan;
    use crate::layer::reader::tests::RawTar;

    /// A lockfile with these `packages` entries (after the root).
    fn lockfile(packages: &str) -> Lockfile {
        let json =
            format!(r#"{{"lockfileVersion": 3, "packages": {{"": {{"name": "app"}}{packages}}}}}"#);
        Lockfile::parse(json.as_bytes()).unwrap()
    }

    fn gz(tar: &[u8]) -> Vec<u8> {
        let mut enc = Compression::Gzip.encoder(Vec::new()).unwrap();
        enc.write_all(tar).unwrap();
        enc.finish().unwrap()
    }

    /// What a layer holds: path -> (mode, content or link target).
    type Tree = BTreeMap<String, (u32, String)>;

    fn read_layer(store: &Store, layer: &Layer) -> Tree {
        let blob = store.open_blob(&layer.descriptor.digest).unwrap();
        let (_, r) = decompress(blob).unwrap();
        let mut ar = tar::Archive::new(r);
        let mut out = Tree::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mode = e.header().mode().unwrap();
            let body = match e.header().entry_type() {
                tar::EntryType::Directory => "/".to_owned(),
                tar::EntryType::Symlink => {
                    format!("-> {}", e.link_name().unwrap().unwrap().display())
                }
                _ => {
                    let mut s = String::new();
                    e.read_to_string(&mut s).unwrap();
                    s
                }
            };
            out.insert(path, (mode, body));
        }
        out
    }

    /// Builds the layer for `lock` with these tarballs (lockfile key ->
    /// tar bytes), on linux/x64 glibc, prod selection.
    fn build(
        lock: &Lockfile,
        tarballs: &[(&str, Vec<u8>)],
    ) -> Result<(Tree, WriteStats, Plan), LayoutError> {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (layer, stats, plan) = build_in(&store, lock, tarballs)?;
        Ok((read_layer(&store, &layer), stats, plan))
    }

    fn build_in(
        store: &Store,
        lock: &Lockfile,
        tarballs: &[(&str, Vec<u8>)],
    ) -> Result<(Layer, WriteStats, Plan), LayoutError> {
        let target = Target::from_oci("linux", "amd64", Some(Libc::Glibc)).unwrap();
        let selection = select(lock, Omit::DEV, &target).unwrap();
        let bins = bin_links(lock, &selection).unwrap();
        let mut fetched = Vec::new();
        let by_tarball = bins_by_tarball(&selection, &bins);
        let none = HashSet::new();
        for (key, tar) in tarballs {
            let path = InstallPath::parse(key).unwrap();
            let bin_files = by_tarball.get(&path).unwrap_or(&none);
            let files = scan(&path, &tar[..], &|p| bin_files.contains(p)).unwrap();
            let (digest, _) = store.put_bytes(&gz(tar)).unwrap();
            fetched.push((
                path,
                Fetched {
                    digest,
                    downloaded: 0,
                    files,
                },
            ));
        }
        let sources: Vec<TarballSource> = fetched
            .iter()
            .map(|(key, fetched)| TarballSource { key, fetched })
            .collect();
        let workdir = ImagePath::new("/app").unwrap();
        let plan = plan(&workdir, &selection, &bins, &sources, &|p| {
            p.as_str() == "packages/w/cli.js"
        })?;
        let (layer, stats) = write(&plan, store, Compression::Gzip, 0)?;
        Ok((layer, stats, plan))
    }

    /// A package added to the lockfile in a warm store: only its tarball
    /// is read (the other's segment is reused), and the layer is the one
    /// an empty store makes.
    #[test]
    fn an_added_package_reads_only_its_tarball_and_equals_a_cold_build() {
        let a = (
            "node_modules/a",
            RawTar::new().file("package/a.js", b"a").finish(),
        );
        let b = (
            "node_modules/b",
            RawTar::new().file("package/b.js", b"b").finish(),
        );
        let one = lockfile(r#", "node_modules/a": {}"#);
        let two = lockfile(r#", "node_modules/a": {}, "node_modules/b": {}"#);
        let warm = tempfile::tempdir().unwrap();
        let warm = Store::open(warm.path()).unwrap();
        let (_, stats, _) = build_in(&warm, &one, std::slice::from_ref(&a)).unwrap();
        assert_eq!(stats.tarball_reads, 1);
        let (inc, stats, _) = build_in(&warm, &two, &[a.clone(), b.clone()]).unwrap();
        assert_eq!(stats.tarball_reads, 1, "a's segment is reused");
        let cold = tempfile::tempdir().unwrap();
        let cold = Store::open(cold.path()).unwrap();
        let (from_empty, stats, _) = build_in(&cold, &two, &[b, a]).unwrap();
        assert_eq!(stats.tarball_reads, 2);
        assert_eq!(inc.descriptor, from_empty.descriptor);
        assert_eq!(inc.diff_id, from_empty.diff_id);
        let tree = read_layer(&cold, &from_empty);
        assert!(tree.contains_key("app/node_modules/b/b.js"), "{tree:?}");
    }

    fn file(mode: u32, body: &str) -> (u32, String) {
        (mode, body.to_owned())
    }

    fn dir() -> (u32, String) {
        (0o755, "/".to_owned())
    }

    fn link(target: &str) -> (u32, String) {
        (0o777, format!("-> {target}"))
    }

    #[test]
    fn nested_bundled_and_unsorted_tarballs() {
        let lock = lockfile(
            r#", "node_modules/a": {"bin": {"a": "bin/a.js"}},
                 "node_modules/a/node_modules/b": {},
                 "node_modules/a/node_modules/c": {"inBundle": true, "bin": {"c": "c.js"}},
                 "node_modules/a-z": {},
                 "node_modules/w": {"resolved": "packages/w", "link": true},
                 "packages/w": {"name": "w", "bin": {"w": "cli.js", "gone": "nope.js"}},
                 "node_modules/dev": {"dev": true}"#,
        );
        // a's entries in reverse order, with its bundled c, and a stale copy
        // of b that b's own tarball replaces.
        let a = RawTar::new()
            .file("package/z.js", b"z")
            .file("package/node_modules/c/c.js", b"c")
            .file("package/node_modules/b/stale.js", b"stale")
            .file("package/lib/x.js", b"x")
            .file_meta(
                "package/bin/a.js",
                b"#!/usr/bin/env node\r\na\r\n",
                0o644,
                0,
                0,
            )
            .file("package/package.json", b"{}")
            .finish();
        let b = RawTar::new()
            .file("package/index.js", b"b")
            .file_meta("package/run.sh", b"#!/bin/sh\n", 0o744, 0, 0)
            .finish();
        let az = RawTar::new().finish();
        let (tree, stats, plan) = build(
            &lock,
            &[
                ("node_modules/a", a),
                ("node_modules/a/node_modules/b", b),
                ("node_modules/a-z", az),
            ],
        )
        .unwrap();
        let want: Tree = [
            ("app", dir()),
            ("app/node_modules", dir()),
            ("app/node_modules/.bin", dir()),
            ("app/node_modules/.bin/a", link("../a/bin/a.js")),
            ("app/node_modules/.bin/w", link("../w/cli.js")),
            ("app/node_modules/a", dir()),
            ("app/node_modules/a-z", dir()),
            ("app/node_modules/a/bin", dir()),
            (
                "app/node_modules/a/bin/a.js",
                file(0o755, "#!/usr/bin/env node\na\r\n"),
            ),
            ("app/node_modules/a/lib", dir()),
            ("app/node_modules/a/lib/x.js", file(0o644, "x")),
            ("app/node_modules/a/node_modules", dir()),
            ("app/node_modules/a/node_modules/.bin", dir()),
            ("app/node_modules/a/node_modules/.bin/c", link("../c/c.js")),
            ("app/node_modules/a/node_modules/b", dir()),
            (
                "app/node_modules/a/node_modules/b/index.js",
                file(0o644, "b"),
            ),
            (
                "app/node_modules/a/node_modules/b/run.sh",
                file(0o744, "#!/bin/sh\n"),
            ),
            ("app/node_modules/a/node_modules/c", dir()),
            ("app/node_modules/a/node_modules/c/c.js", file(0o755, "c")),
            ("app/node_modules/a/package.json", file(0o644, "{}")),
            ("app/node_modules/a/z.js", file(0o644, "z")),
            ("app/node_modules/w", link("../packages/w")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(tree, want);
        // One read per tarball with files (a-z has none): small files out
        // of order are buffered.
        assert_eq!(stats.tarball_reads, 2);
        assert_eq!(
            plan.missing_bins,
            ["node_modules/.bin/gone -> ../w/nope.js"]
        );
        assert_eq!((plan.files, plan.bin_links, plan.links), (7, 3, 1));
    }

    #[test]
    fn large_files_in_reverse_order_are_read_again_not_held() {
        let lock = lockfile(r#", "node_modules/big": {}"#);
        let chunk = 3 << 20;
        let mut tar = RawTar::new();
        // f9 .. f0: the layer wants f0 first, the tarball has it last.
        for i in (0..10u8).rev() {
            tar.file(&format!("package/f{i}"), &vec![b'0' + i; chunk]);
        }
        let (tree, stats, _) = build(&lock, &[("node_modules/big", tar.finish())]).unwrap();
        for i in 0..10u8 {
            let (mode, body) = &tree[&format!("app/node_modules/big/f{i}")];
            assert_eq!(*mode, 0o644);
            assert!(
                body.len() == chunk && body.bytes().all(|b| b == b'0' + i),
                "f{i}"
            );
        }
        assert!(stats.peak_buffered <= BUFFER_BYTES, "{stats:?}");
        // Each read buys the buffer's worth (2 files) plus the one streamed.
        assert!((3..=5).contains(&stats.tarball_reads), "{stats:?}");
    }

    #[test]
    fn conflicts_are_errors() {
        let lock = lockfile(r#", "node_modules/a": {}"#);
        let tar = RawTar::new()
            .file("package/x", b"file")
            .file("package/x/y", b"below a file")
            .finish();
        let err = build(&lock, &[("node_modules/a", tar)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "`/app/node_modules/a/x` would be both a file of `node_modules/a` and a folder"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_link_replaces_a_file() {
        let lock = lockfile(
            r#", "node_modules/a": {},
                 "node_modules/a/node_modules/c": {"inBundle": true, "bin": {"c": "c.js"}}"#,
        );
        let tar = RawTar::new()
            .file("package/node_modules/c/c.js", b"c")
            .file("package/node_modules/.bin/c", b"a copy npm pack made")
            .finish();
        let (tree, _, plan) = build(&lock, &[("node_modules/a", tar)]).unwrap();
        assert_eq!(
            tree["app/node_modules/a/node_modules/.bin/c"],
            link("../c/c.js")
        );
        assert_eq!(plan.files, 1);
    }

    #[test]
    fn inside_other_package_table() {
        let owners: HashSet<&str> = [
            "node_modules/a",
            "node_modules/a/node_modules/b",
            "node_modules/a/node_modules/@s/d",
        ]
        .into_iter()
        .collect();
        let cases = [
            ("index.js", false),
            ("node_modules/b/x.js", true),
            ("node_modules/b", false),
            ("node_modules/c/x.js", false),
            ("node_modules/@s/d/x.js", true),
            ("node_modules/@s/e/x.js", false),
            ("lib/node_modules/b/x.js", false),
        ];
        for (rel, want) in cases {
            assert_eq!(
                inside_other_package("node_modules/a", rel, &owners),
                want,
                "{rel}"
            );
        }
    }
}
