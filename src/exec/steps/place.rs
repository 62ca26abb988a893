//! A Dockerfile's COPY and ADD: sources of the context, of a stage or of
//! an image, placed by docker's rules, as one layer.
//!
//! The rules (BuildKit's copy): a folder source's contents land in the
//! destination; a file lands in the destination when it is a folder
//! (written with a trailing `/`, named with several sources, or already a
//! folder in the stage), else at the destination path. Globs match
//! within one path part, as Go's `filepath.Match`. Modes are kept as the
//! source has them (`--chmod` replaces them), owners are root unless
//! `--chown` says; a destination folder that does not exist yet is made
//! with the owner. Every mtime is `SOURCE_DATE_EPOCH`: hoist's images are
//! reproducible, where docker keeps the context's mtimes.
//!
//! Entries are planned first (sorted, their contents hashed for the key),
//! then written, so a step whose key is in the cache reads no file twice.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use fs_err as fs;

use crate::digest::Digest;
use crate::exec::steps::context::{Context, EntryKind, Filter};
use crate::exec::BuildError;
use crate::graph::spec::PlaceSpec;
use crate::layer::{Compression, EntryMeta, ImagePath, Layer, LayerWriter};
use crate::store::Store;

/// One entry to write.
#[derive(Debug, Clone)]
enum What {
    Dir,
    File {
        src: PathBuf,
        size: u64,
    },
    Inline(String),
    Link(String),
    /// Content `data` of extracted archive number `archive`.
    Spooled {
        archive: usize,
        data: usize,
    },
}

#[derive(Debug, Clone)]
struct Planned {
    dest: ImagePath,
    what: What,
    mode: u32,
    /// The entry's own owner (an archive's); the placement's when `None`.
    owner: Option<(u64, u64)>,
    /// Which source put it there: a later source wins at the same path.
    seq: usize,
}

/// A local tar archive ADD extracts, at write time.
#[derive(Debug, Clone)]
struct ArchiveSource {
    path: PathBuf,
    /// The source as written, for errors.
    shown: String,
    /// Where it is extracted (no leading `/`; `""` is the root).
    dest_root: String,
    seq: usize,
}

/// What a COPY or ADD will write, planned.
#[derive(Debug, Clone)]
pub struct Placement {
    entries: Vec<Planned>,
    archives: Vec<ArchiveSource>,
    /// Checkouts the entries read from, kept until the layer is written.
    _clones: Vec<super::git::Cloned>,
    owner: (u32, u32),
    /// `--chown` was given: it overrides an archive's owners too.
    chown: bool,
    at: String,
    /// The hash of what is written (paths, kinds, modes, contents).
    pub key: String,
}

impl Placement {
    /// The files written, archives' contents not counted.
    pub fn file_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.what, What::File { .. } | What::Inline(_)))
            .count()
    }

    /// Whether an ADD extracts an archive here.
    pub fn has_archives(&self) -> bool {
        !self.archives.is_empty()
    }

    /// Writes the layer; archives are extracted now, so a placement whose
    /// key is in the cache never reads them.
    pub fn write(
        &self,
        store: &Store,
        compression: Compression,
        epoch: u64,
    ) -> Result<Layer, BuildError> {
        self.write_over(store, compression, epoch, None)
    }

    /// Writes the layer over the stage unpacked at `stage`: an archive
    /// entry under a folder the archive does not list, which the stage has
    /// as a link (Debian's `/lib -> usr/lib`), lands where the link leads,
    /// as docker's extraction writes through it (a runtime would otherwise
    /// make a folder that hides the link).
    pub fn write_over(
        &self,
        store: &Store,
        compression: Compression,
        epoch: u64,
        stage: Option<&Path>,
    ) -> Result<Layer, BuildError> {
        let (uid, gid) = self.owner;
        let meta = |e: &Planned| {
            let (uid, gid) = e.owner.unwrap_or((uid.into(), gid.into()));
            EntryMeta {
                mode: e.mode,
                uid,
                gid,
            }
        };
        let mut untarred = Vec::new();
        let mut all = self.entries.clone();
        for (i, a) in self.archives.iter().enumerate() {
            let chown = self.chown.then_some(self.owner);
            let u =
                super::untar::extract(&a.path, &store.root().join("tmp"), chown).map_err(|e| {
                    BuildError::Instruction {
                        at: self.at.clone(),
                        message: format!("ADD {}: {e}", a.shown),
                    }
                })?;
            for x in &u.entries {
                let p = match a.dest_root.is_empty() {
                    true => x.rel.clone(),
                    false => format!("{}/{}", a.dest_root, x.rel),
                };
                all.push(Planned {
                    dest: ImagePath::new(&p).map_err(|_| BuildError::Instruction {
                        at: self.at.clone(),
                        message: format!("ADD {}: `{p}` is not a path hoist can write", a.shown),
                    })?,
                    what: match &x.kind {
                        super::untar::Kind::Dir => What::Dir,
                        super::untar::Kind::File { data } => What::Spooled {
                            archive: i,
                            data: *data,
                        },
                        super::untar::Kind::Symlink(t) => What::Link(t.clone()),
                    },
                    mode: x.meta.mode,
                    owner: Some((x.meta.uid, x.meta.gid)),
                    seq: a.seq,
                });
            }
            untarred.push(u);
        }
        if let Some(root) = stage.filter(|_| !self.archives.is_empty()) {
            let listed: std::collections::HashSet<String> =
                all.iter().map(|e| e.dest.as_str().to_owned()).collect();
            for e in all
                .iter_mut()
                .filter(|e| matches!(e.what, What::Spooled { .. }) || e.owner.is_some())
            {
                if let Some(p) = through_links(root, e.dest.as_str(), &listed) {
                    if let Ok(ip) = ImagePath::new(&p) {
                        e.dest = ip;
                    }
                }
            }
        }
        if !self.archives.is_empty() {
            settle(&mut all);
        }
        // Names of one archive content after the first are hard links.
        let mut linked: std::collections::HashMap<(usize, usize), ImagePath> = Default::default();
        let mut w = LayerWriter::new(store, compression, epoch)?;
        for e in &all {
            match &e.what {
                What::Dir => w.dir(&e.dest, meta(e))?,
                What::File { src, size } => {
                    let mut f = fs::File::open(src).map_err(|source| BuildError::ReadFile {
                        path: src.clone(),
                        source,
                    })?;
                    w.file(&e.dest, meta(e), *size, &mut f)?;
                }
                What::Inline(body) => {
                    let bytes = body.as_bytes();
                    w.file(&e.dest, meta(e), bytes.len() as u64, &mut &bytes[..])?;
                }
                What::Link(t) => w.symlink(
                    &e.dest,
                    t,
                    EntryMeta {
                        mode: 0o777,
                        ..meta(e)
                    },
                )?,
                What::Spooled { archive, data } => {
                    if let Some(first) = linked.get(&(*archive, *data)) {
                        w.hardlink(&e.dest, first, meta(e))?;
                        continue;
                    }
                    let u = &untarred[*archive];
                    let mut r = u.content(*data).map_err(|source| BuildError::ReadFile {
                        path: self.archives[*archive].path.clone(),
                        source,
                    })?;
                    w.file(&e.dest, meta(e), u.size(*data), &mut r)?;
                    linked.insert((*archive, *data), e.dest.clone());
                }
            }
        }
        Ok(w.finish()?)
    }
}

/// `path` with its folders that are links in the stage at `root` (and
/// not written by this layer) followed inside the stage, when any is;
/// `None` when none is, or the links loop.
fn through_links(
    root: &Path,
    path: &str,
    listed: &std::collections::HashSet<String>,
) -> Option<String> {
    let (dirs, name) = path.rsplit_once('/')?;
    let mut queue: std::collections::VecDeque<String> =
        dirs.split('/').map(str::to_owned).collect();
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = queue.pop_front() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => cur.push(part),
        }
        let p = cur.join("/");
        if listed.contains(&p) {
            continue;
        }
        let host = root.join(&p);
        let is_link = std::fs::symlink_metadata(&host).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            continue;
        }
        hops += 1;
        if hops > 40 {
            return None;
        }
        let target = std::fs::read_link(&host).ok()?;
        let target = target.to_string_lossy();
        cur.pop();
        if target.starts_with('/') {
            cur.clear();
        }
        for t in target.split('/').rev() {
            queue.push_front(t.to_owned());
        }
    }
    (hops > 0).then(|| match cur.is_empty() {
        true => name.to_owned(),
        false => format!("{}/{name}", cur.join("/")),
    })
}

/// Sorts entries by path, the latest source winning at a path.
fn settle(out: &mut Vec<Planned>) {
    out.sort_by(|a, b| a.dest.as_str().cmp(b.dest.as_str()).then(b.seq.cmp(&a.seq)));
    out.dedup_by(|later, earlier| later.dest == earlier.dest);
}

fn instr(spec: &PlaceSpec, message: String) -> BuildError {
    BuildError::Instruction {
        at: spec.at.clone(),
        message,
    }
}

/// Whether `pattern` (a path with globs in its parts) matches `rel`.
fn matches(pattern: &str, rel: &str) -> bool {
    let pp: Vec<&str> = pattern.split('/').collect();
    let rp: Vec<&str> = rel.split('/').collect();
    pp.len() == rp.len()
        && pp
            .iter()
            .zip(&rp)
            .all(|(p, r)| crate::ignore::glob_match(p, r))
}

/// Whether `pattern`'s parts match `rel`'s, `**` standing for any number
/// of parts (none too).
fn matches_deep(pattern: &[&str], rel: &[&str]) -> bool {
    match pattern.split_first() {
        None => rel.is_empty(),
        Some((&"**", rest)) => (0..=rel.len()).any(|i| matches_deep(rest, &rel[i..])),
        Some((p, rest)) => rel
            .split_first()
            .is_some_and(|(r, rrest)| crate::ignore::glob_match(p, r) && matches_deep(rest, rrest)),
    }
}

/// COPY --parents: what `source` selects from `entries`, as BuildKit
/// selects it: the part after a `/./` pivot (else the whole source) is a
/// pattern under the pivot's folder (else the root); every entry it
/// matches, what is under a matched folder and the folders on the way
/// land at their path below the pivot. A pattern without globs must
/// match; one with globs may match nothing. Returns (source path,
/// destination path relative to the destination, kind).
fn with_parents(
    source: &str,
    entries: &[(String, EntryKind)],
) -> Result<Vec<(String, String, EntryKind)>, String> {
    let (base, pattern) = match source.split_once("/./") {
        Some((b, p)) => (clean(b), clean(p)),
        None => (String::new(), clean(source)),
    };
    if base.split('/').chain(pattern.split('/')).any(|p| p == "..") {
        return Err(format!("`{source}` climbs out with `..`"));
    }
    if base.split('/').any(|p| p == "**") {
        return Err(format!(
            "`{source}`: hoist takes `**` after the `/./` pivot only"
        ));
    }
    let glob = source.contains(['*', '?', '[']);
    let base: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    let pat: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
    // Each entry's parts below the pivot folder its path matches, if any.
    let below = |r: &str| -> Option<usize> {
        let parts: Vec<&str> = r.split('/').collect();
        (parts.len() > base.len()
            && base
                .iter()
                .zip(&parts)
                .all(|(b, p)| crate::ignore::glob_match(b, p)))
        .then_some(base.len())
    };
    let mut picked: std::collections::BTreeSet<String> = Default::default();
    for (r, _) in entries {
        let Some(skip) = below(r) else { continue };
        let parts: Vec<&str> = r.split('/').collect();
        let under = &parts[skip..];
        // The entry itself or a folder above it (below the pivot) matches.
        let hit = pat.is_empty() || (1..=under.len()).any(|n| matches_deep(&pat, &under[..n]));
        if hit {
            for n in skip + 1..=parts.len() {
                picked.insert(parts[..n].join("/"));
            }
        }
    }
    if picked.is_empty() && !glob {
        return Err(format!(
            "`{source}` is not in the build context (or the ignore file leaves it out)"
        ));
    }
    Ok(entries
        .iter()
        .filter(|(r, _)| picked.contains(r))
        .map(|(r, k)| {
            let under = r.split('/').skip(base.len()).collect::<Vec<_>>().join("/");
            (r.clone(), under, k.clone())
        })
        .collect())
}

/// A source as a clean relative path (`""` is the root).
fn clean(s: &str) -> String {
    let parts: Vec<&str> = s
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    parts.join("/")
}

/// Plans a COPY or ADD from a folder on the host (the context, or an
/// unpacked stage): `root`'s `entries` (sorted, relative) with `host`
/// giving each one's path on disk, and the downloads of an ADD's URLs.
/// `dest_is_dir` says whether the destination exists as a folder;
/// `missing` lists the destination's folders to make.
#[allow(clippy::too_many_arguments)]
fn plan(
    spec: &PlaceSpec,
    entries: &[(String, EntryKind)],
    host: &dyn Fn(&str) -> PathBuf,
    (downloads, clones): (&[super::download::Downloaded], &[super::git::Cloned]),
    dest_is_dir: bool,
    missing: &[String],
    owner: (u32, u32),
    what_source: &str,
) -> Result<Placement, BuildError> {
    let several = spec.sources.len() + spec.inline.len() > 1
        || spec.sources.iter().any(|s| s.contains(['*', '?', '[']));
    let dest_dir = spec.dest.ends_with('/') || several || dest_is_dir;
    let dest_root = spec.dest.trim_end_matches('/');
    let at = |rel: &str| -> Result<ImagePath, BuildError> {
        let p = match rel.is_empty() {
            true => dest_root.to_owned(),
            false => format!("{dest_root}/{rel}"),
        };
        ImagePath::new(p.trim_start_matches('/')).map_err(|_| {
            instr(
                spec,
                format!("destination `{p}` is not a path hoist can write"),
            )
        })
    };
    let chmod = |mode: u32, dir: bool| match &spec.mode {
        Some(c) => c.apply(mode, dir),
        None => mode,
    };
    let mut out: Vec<Planned> = Vec::new();
    let mut archives: Vec<ArchiveSource> = Vec::new();
    for m in missing {
        out.push(Planned {
            dest: ImagePath::new(m.trim_start_matches('/'))
                .map_err(|_| instr(spec, format!("destination `{m}` is not a path")))?,
            what: What::Dir,
            mode: chmod(0o755, true),
            owner: None,
            seq: 0,
        });
    }
    let mode_of = |path: &Path, kind: &EntryKind| -> Result<u32, BuildError> {
        if let EntryKind::Symlink { .. } = kind {
            return Ok(0o777);
        }
        let meta = std::fs::symlink_metadata(path).map_err(|source| BuildError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        Ok(chmod(
            meta.permissions().mode() & 0o7777,
            matches!(kind, EntryKind::Dir),
        ))
    };
    // An archive is extracted into the destination, made a folder when
    // missing (0755, the --chown owner), as BuildKit's unpack makes it.
    let mut extract_at = |path: PathBuf,
                          shown: &str,
                          seq: usize,
                          out: &mut Vec<Planned>|
     -> Result<(), BuildError> {
        let root = dest_root.trim_start_matches('/').to_owned();
        if !root.is_empty() && !dest_is_dir {
            out.push(Planned {
                dest: at("")?,
                what: What::Dir,
                mode: 0o755,
                owner: None,
                seq,
            });
        }
        archives.push(ArchiveSource {
            path,
            shown: shown.to_owned(),
            dest_root: root,
            seq,
        });
        Ok(())
    };
    let push = |out: &mut Vec<Planned>,
                rel_dest: &str,
                src_rel: &str,
                kind: &EntryKind,
                seq: usize|
     -> Result<(), BuildError> {
        let src = host(src_rel);
        let what = match kind {
            EntryKind::Dir => What::Dir,
            EntryKind::File { .. } | EntryKind::Hardlink { .. } => {
                let size = std::fs::metadata(&src)
                    .map_err(|source| BuildError::ReadFile {
                        path: src.clone(),
                        source,
                    })?
                    .size();
                What::File {
                    src: src.clone(),
                    size,
                }
            }
            EntryKind::Symlink { target } => What::Link(target.clone()),
        };
        out.push(Planned {
            dest: at(rel_dest)?,
            mode: mode_of(&src, kind)?,
            what,
            owner: None,
            seq,
        });
        Ok(())
    };
    for (i, source) in spec.sources.iter().enumerate() {
        let seq = i + 1;
        if let Some(d) = downloads.iter().find(|d| &d.url == source) {
            // BuildKit's HTTP source writes the file 0600.
            if spec.unpack_urls && super::untar::is_archive(&d.path) {
                extract_at(d.path.clone(), source, seq, &mut out)?;
                continue;
            }
            out.push(Planned {
                dest: match dest_dir {
                    true => at(&d.name)?,
                    false => at("")?,
                },
                what: What::File {
                    src: d.path.clone(),
                    size: d.size,
                },
                mode: chmod(0o600, false),
                owner: None,
                seq,
            });
            continue;
        }
        if let Some(c) = clones.iter().find(|c| &c.source == source) {
            // The checkout's contents land at the destination: files 644
            // (755 when executable), folders 755, as BuildKit writes them.
            let root = dest_root.trim_start_matches('/');
            if !root.is_empty() && !dest_is_dir {
                out.push(Planned {
                    dest: at("")?,
                    what: What::Dir,
                    mode: chmod(0o755, true),
                    owner: None,
                    seq,
                });
            }
            let mut found = Vec::new();
            walk(&c.root, &c.root, &mut found)?;
            for (rel, kind) in found {
                let src = c.root.join(&rel);
                let (what, mode) = match kind {
                    EntryKind::Dir => (What::Dir, chmod(0o755, true)),
                    EntryKind::Symlink { target } => (What::Link(target), 0o777),
                    EntryKind::File { size, executable } => (
                        What::File { src, size },
                        chmod(if executable { 0o755 } else { 0o644 }, false),
                    ),
                    EntryKind::Hardlink { .. } => continue,
                };
                out.push(Planned {
                    dest: at(&rel)?,
                    what,
                    mode,
                    owner: None,
                    seq,
                });
            }
            continue;
        }
        if spec.parents {
            for (rel, dest, kind) in with_parents(source, entries).map_err(|m| instr(spec, m))? {
                push(&mut out, &dest, &rel, &kind, seq)?;
            }
            continue;
        }
        let s = clean(source);
        let glob = s.contains(['*', '?', '[']);
        let hits: Vec<&(String, EntryKind)> = match (glob, s.as_str()) {
            (true, _) => entries.iter().filter(|(r, _)| matches(&s, r)).collect(),
            (false, "") => vec![],
            (false, _) => entries.iter().filter(|(r, _)| *r == s).collect(),
        };
        let root_source = !glob && s.is_empty();
        if hits.is_empty() && !root_source {
            if glob {
                return Err(instr(
                    spec,
                    format!("`{source}` matches nothing in {what_source}"),
                ));
            }
            return Err(instr(
                spec,
                format!("`{source}` is not in {what_source} (or the ignore file leaves it out)"),
            ));
        }
        let mut sources: Vec<(String, EntryKind)> = hits.into_iter().cloned().collect();
        if root_source {
            sources.push((String::new(), EntryKind::Dir));
        }
        for (rel, kind) in sources {
            match kind {
                EntryKind::Dir => {
                    // The folder's contents land at the destination.
                    let prefix = match rel.is_empty() {
                        true => String::new(),
                        false => format!("{rel}/"),
                    };
                    for (r, k) in entries {
                        if let Some(under) = r.strip_prefix(&prefix) {
                            if !under.is_empty() && (rel.is_empty() || r.starts_with(&prefix)) {
                                push(&mut out, under, r, k, seq)?;
                            }
                        }
                    }
                }
                EntryKind::File { .. } if spec.extract && super::untar::is_archive(&host(&rel)) => {
                    extract_at(host(&rel), &rel, seq, &mut out)?;
                }
                k => {
                    let name = rel.rsplit('/').next().unwrap_or(&rel).to_owned();
                    match dest_dir {
                        true => push(&mut out, &name, &rel, &k, seq)?,
                        false => push(&mut out, "", &rel, &k, seq)?,
                    }
                }
            }
        }
    }
    for (j, (name, body)) in spec.inline.iter().enumerate() {
        let dest = match dest_dir {
            true => at(name)?,
            false => at("")?,
        };
        out.push(Planned {
            dest,
            what: What::Inline(body.clone()),
            mode: chmod(0o644, false),
            owner: None,
            seq: spec.sources.len() + 1 + j,
        });
    }
    // A later source wins over an earlier one at the same path.
    settle(&mut out);
    let mut text = format!("hoist place v2\n{owner:?} chown={}\n", spec.owner.is_some());
    for e in &out {
        let content = match &e.what {
            What::Dir => "dir".to_owned(),
            What::File { src, .. } => {
                let f = fs::File::open(src).map_err(|source| BuildError::ReadFile {
                    path: src.clone(),
                    source,
                })?;
                format!(
                    "file {}",
                    Digest::of_reader(f).map_err(|source| BuildError::ReadFile {
                        path: src.clone(),
                        source,
                    })?
                )
            }
            What::Inline(b) => format!("inline {}", Digest::of(b.as_bytes())),
            What::Link(t) => format!("link {t}"),
            What::Spooled { .. } => "spooled".to_owned(),
        };
        text.push_str(&format!(
            "{} {:o} {} {content}\n",
            e.dest.as_str(),
            e.mode,
            e.seq
        ));
    }
    for a in &archives {
        let f = fs::File::open(&a.path).map_err(|source| BuildError::ReadFile {
            path: a.path.clone(),
            source,
        })?;
        let d = Digest::of_reader(f).map_err(|source| BuildError::ReadFile {
            path: a.path.clone(),
            source,
        })?;
        text.push_str(&format!("archive /{} {} {d}\n", a.dest_root, a.seq));
    }
    Ok(Placement {
        entries: out,
        archives,
        _clones: clones.to_vec(),
        owner,
        chown: spec.owner.is_some(),
        at: spec.at.clone(),
        key: Digest::of(text.as_bytes()).hex().to_owned(),
    })
}

/// Plans a COPY or ADD from the build context (and an ADD's URLs,
/// downloaded now: their content is part of the key).
#[allow(clippy::too_many_arguments)]
pub fn plan_context(
    spec: &PlaceSpec,
    context: &Path,
    ignore_file: &str,
    exclude: &[String],
    dest_is_dir: bool,
    missing: &[String],
    owner: (u32, u32),
    (store, offline): (&Store, bool),
) -> Result<Placement, BuildError> {
    let mut downloads = Vec::new();
    let mut clones = Vec::new();
    for url in spec
        .sources
        .iter()
        .filter(|s| s.starts_with("http://") || s.starts_with("https://"))
    {
        if crate::graph::spec::is_git_source(url) {
            clones.push(super::git::clone(
                store,
                url,
                spec.commit.as_deref(),
                spec.keep_git_dir,
                offline,
                &spec.at,
            )?);
            continue;
        }
        downloads.push(super::download::fetch(
            store,
            url,
            spec.checksum.as_ref(),
            offline,
            &spec.at,
        )?);
    }
    let filter = Filter {
        exclude: exclude.iter().chain(&spec.exclude).cloned().collect(),
        include: Vec::new(),
        keep: Vec::new(),
    };
    let ctx = Context::scan_filtered(context, ignore_file, &filter)?;
    let entries: Vec<(String, EntryKind)> = ctx
        .entries
        .iter()
        .map(|e| (e.rel.clone(), e.kind.clone()))
        .collect();
    plan(
        spec,
        &entries,
        &|rel| context.join(rel),
        (&downloads, &clones),
        dest_is_dir,
        missing,
        owner,
        "the build context",
    )
}

/// Plans a COPY --from of an unpacked stage or image at `root`: each
/// source is found without following links on the way.
pub fn plan_tree(
    spec: &PlaceSpec,
    root: &Path,
    dest_is_dir: bool,
    missing: &[String],
    owner: (u32, u32),
    what_source: &str,
) -> Result<Placement, BuildError> {
    let mut entries: Vec<(String, EntryKind)> = Vec::new();
    for source in &spec.sources {
        let s = clean(source);
        if s.split('/').any(|p| p == "..") {
            return Err(instr(spec, format!("`{source}` climbs out with `..`")));
        }
        if spec.parents {
            // Everything under the source's first folder with a glob (or
            // the pivot): the pattern picks from it.
            let fixed: Vec<&str> = source
                .split('/')
                .filter(|p| !p.is_empty())
                .take_while(|p| *p != "." && !p.contains(['*', '?', '[']))
                .collect();
            let dir = fixed[..fixed.len().saturating_sub(1)].join("/");
            list_tree(root, &dir, &mut entries, spec)?;
            // The folders on the way, which keep their modes too.
            for n in 1..=fixed.len().saturating_sub(1) {
                let up = fixed[..n].join("/");
                if root.join(&up).is_dir() && !root.join(&up).is_symlink() {
                    entries.push((up, EntryKind::Dir));
                }
            }
            continue;
        }
        // The folder holding the source (globs in the last part only).
        let (dir, _) = s.rsplit_once('/').unwrap_or(("", &s));
        if dir.contains(['*', '?', '[']) {
            return Err(instr(
                spec,
                format!("`{source}`: hoist matches globs in a COPY --from source's last part only"),
            ));
        }
        list_tree(root, dir, &mut entries, spec)?;
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|a, b| a.0 == b.0);
    plan(
        spec,
        &entries,
        &|rel| root.join(rel),
        (&[], &[]),
        dest_is_dir,
        missing,
        owner,
        what_source,
    )
}

/// Lists `dir` (relative to `root`) and what is under it, as context
/// entries; a link on the way is an error.
fn list_tree(
    root: &Path,
    dir: &str,
    out: &mut Vec<(String, EntryKind)>,
    spec: &PlaceSpec,
) -> Result<(), BuildError> {
    let mut p = root.to_owned();
    for part in dir.split('/').filter(|s| !s.is_empty()) {
        p = p.join(part);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(instr(
                    spec,
                    format!(
                        "/{dir}: {} is a link; name the path it points to",
                        p.strip_prefix(root).unwrap_or(&p).display()
                    ),
                ))
            }
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
    }
    walk(root, &p, out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, EntryKind)>) -> Result<(), BuildError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(_) => return Ok(()),
    };
    for e in rd.flatten() {
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let meta = std::fs::symlink_metadata(&path).map_err(|source| BuildError::ReadFile {
            path: path.clone(),
            source,
        })?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let t = std::fs::read_link(&path).map_err(|source| BuildError::ReadFile {
                path: path.clone(),
                source,
            })?;
            out.push((
                rel,
                EntryKind::Symlink {
                    target: t.to_string_lossy().into_owned(),
                },
            ));
        } else if ft.is_dir() {
            out.push((rel, EntryKind::Dir));
            walk(root, &path, out)?;
        } else if ft.is_file() {
            out.push((
                rel,
                EntryKind::File {
                    size: meta.size(),
                    executable: meta.permissions().mode() & 0o111 != 0,
                },
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::spec::PlaceFrom;

    fn spec(sources: &[&str], dest: &str) -> PlaceSpec {
        PlaceSpec {
            from: PlaceFrom::Context,
            sources: sources.iter().map(|s| (*s).to_owned()).collect(),
            inline: Vec::new(),
            dest: dest.into(),
            owner: None,
            mode: None,
            exclude: Vec::new(),
            extract: false,
            unpack_urls: false,
            parents: false,
            checksum: None,
            commit: None,
            keep_git_dir: false,
            at: "Dockerfile:3".into(),
        }
    }

    /// (sources, dest, dest exists as a folder, the paths written or the error)
    type Case<'a> = (&'a [&'a str], &'a str, bool, Result<&'a str, &'a str>);

    #[test]
    fn docker_copy_rules() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let s = tempfile::tempdir().unwrap();
        let store = Store::open(s.path()).unwrap();
        std::fs::create_dir_all(root.join("src/lib")).unwrap();
        for f in [
            "package.json",
            "package-lock.json",
            "server.js",
            "src/a.js",
            "src/lib/b.js",
        ] {
            std::fs::write(root.join(f), f).unwrap();
        }
        let cases: &[Case] = &[
            (&["."], "/app/", false, Ok("app/package-lock.json app/package.json app/server.js app/src app/src/a.js app/src/lib app/src/lib/b.js")),
            (&["src"], "/app", false, Ok("app/a.js app/lib app/lib/b.js")),
            (&["server.js"], "/app/main.js", false, Ok("app/main.js")),
            (&["server.js"], "/app/", false, Ok("app/server.js")),
            (&["server.js"], "/app", true, Ok("app/server.js")),
            (&["package*.json"], "/app/", false, Ok("app/package-lock.json app/package.json")),
            (&["package.json", "server.js"], "/w/", false, Ok("w/package.json w/server.js")),
            (&["src/*.js"], "/x/", false, Ok("x/a.js")),
            (&["nope.txt"], "/app/", false, Err("Dockerfile:3: `nope.txt` is not in the build context (or the ignore file leaves it out)")),
            (&["*.md"], "/app/", false, Err("Dockerfile:3: `*.md` matches nothing in the build context")),
        ];
        for (sources, dest, is_dir, want) in cases {
            let got = planned(&spec(sources, dest), root, *is_dir, &store);
            assert_eq!(
                got,
                want.map(str::to_owned).map_err(str::to_owned),
                "{sources:?} {dest}"
            );
        }
    }

    /// The destinations `sp` plans from the context at `root`, or the error.
    fn planned(sp: &PlaceSpec, root: &Path, is_dir: bool, store: &Store) -> Result<String, String> {
        plan_context(
            sp,
            root,
            ".dockerignore",
            &[],
            is_dir,
            &[],
            (0, 0),
            (store, false),
        )
        .map(|p| {
            p.entries
                .iter()
                .map(|e| e.dest.as_str().to_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .map_err(|e| e.to_string())
    }

    /// COPY --parents, with BuildKit's own examples (docs and
    /// dockerfile_parents_test.go) as the expected results.
    #[test]
    fn copy_parents_rules() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for f in [
            "foo1/foo2/bar",
            "foo1/foo2/baz",
            "x/a.txt",
            "y/a.txt",
            "src/a.txt",
            "src/x/b.txt",
            "src/x/y/c.txt",
            "src/x/y/d.md",
            "a/b/c/d/foo",
            "a/b/c/d/e/bay",
            "a/b2/c/d/e/bar",
        ] {
            std::fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
            std::fs::write(root.join(f), f).unwrap();
        }
        let s = tempfile::tempdir().unwrap();
        let store = Store::open(s.path()).unwrap();
        let cases: &[(&[&str], &str, Result<&str, &str>)] = &[
            (&["foo1/foo2/bar"], "/", Ok("foo1 foo1/foo2 foo1/foo2/bar")),
            (&["foo1/foo2/ba*"], "/test/", Ok("test/foo1 test/foo1/foo2 test/foo1/foo2/bar test/foo1/foo2/baz")),
            (&["./x/a.txt", "./y/a.txt"], "/parents/", Ok("parents/x parents/x/a.txt parents/y parents/y/a.txt")),
            (&["./src/**/*.txt"], "/p/", Ok("p/src p/src/a.txt p/src/x p/src/x/b.txt p/src/x/y p/src/x/y/c.txt")),
            (&["a/b/./c/d"], "/out/", Ok("out/c out/c/d out/c/d/e out/c/d/e/bay out/c/d/foo")),
            (&["a/./*/c"], "/out/", Ok("out/b out/b/c out/b/c/d out/b/c/d/e out/b/c/d/e/bay out/b/c/d/foo out/b2 out/b2/c out/b2/c/d out/b2/c/d/e out/b2/c/d/e/bar")),
            (&["a/b*/./c/**/e"], "/out/", Ok("out/c out/c/d out/c/d/e out/c/d/e/bar out/c/d/e/bay")),
            (&["a/b2*/nothing*"], "/out/", Ok("")),
            (&["nope/x"], "/out/", Err("Dockerfile:3: `nope/x` is not in the build context (or the ignore file leaves it out)")),
        ];
        for (sources, dest, want) in cases {
            let mut sp = spec(sources, dest);
            sp.parents = true;
            let got = planned(&sp, root, false, &store);
            assert_eq!(
                got,
                want.map(str::to_owned).map_err(str::to_owned),
                "{sources:?} {dest}"
            );
        }
    }
}
