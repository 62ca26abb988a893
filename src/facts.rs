//! What a base image's filesystem says: its users and groups, its
//! os-release, its `/home`, and which C library its programs use.
//!
//! hoist never unpacks a base. To learn these facts it streams the base's
//! layer tars through the safe reader ([`crate::layer::reader`]), top layer
//! first, and answers each question as overlayfs would for the merged
//! tree: an entry in an upper layer hides the same path below, a whiteout
//! (`.wh.NAME`) hides a path and everything under it in the layers below,
//! an opaque folder (`.wh..wh..opq`) hides what the layers below hold in
//! it, and a non-folder entry hides everything the layers below hold under
//! its path. Layers are read no further down than needed: once every path
//! of interest is decided, the lower layers are not even opened.
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
//! [`MAX_SCANS`] passes; real bases need one, two when `etc` is a link).
//! A hard link to a wanted file takes its content from the link's target
//! in the same layer, collected the same way.
//!
//! Memory stays small: content is kept only for the wanted files, only
//! from the topmost layer that decides them, and only up to
//! [`MAX_FACT_FILE_BYTES`]; a larger wanted file is an error naming it,
//! never read whole. The uncompressed size of each layer stream is bounded
//! by the reader.
//!
//! The C library ([`Libc`]) follows the distribution family when
//! os-release names one hoist knows (Alpine is musl, Debian and Ubuntu are
//! glibc, whatever extra loader a package added: gcompat on Alpine, musl
//! on Debian). Otherwise it is told by the dynamic loader the image holds,
//! as the kernel finds it from a program's `PT_INTERP`: glibc's
//! (`/lib64/ld-linux-x86-64.so.2`, `/lib/ld-linux-aarch64.so.1`...) or
//! musl's (`/lib/ld-musl-<arch>.so.1`); glibc when both are there. That
//! takes one more pass, in which only existence is asked, so a loader's
//! bytes are never read; the loaders' usual homes behind merged-usr and
//! multiarch links (`/usr/lib/x86_64-linux-gnu/...`) are collected in the
//! same pass, so one extra pass decides them on real bases.
//!
//! Facts depend on the layers only, so [`read_facts_cached`] keeps them in
//! the store under the base's manifest digest: a rebuild on the same base
//! reads no layer at all (for a registry base, downloads none).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::io::Read;

use crate::digest::Digest;
use crate::image::Descriptor;
use crate::layer::compress::decompress;
use crate::layer::reader::{EntryKind, Flow, Item, LayerReadError, LayerReader};
use crate::layer::{EntryMeta, ImagePath};
use crate::store::{Store, StoreError};

/// The largest wanted file hoist reads: 4 MiB. A passwd file that big
/// holds tens of thousands of users and is not a container's.
pub const MAX_FACT_FILE_BYTES: u64 = 4 << 20;

/// Symbolic links followed when resolving one path (Linux's limit).
pub const MAX_SYMLINK_HOPS: usize = 40;

/// Passes over the layers before giving up on a chain of links.
pub const MAX_SCANS: usize = 8;

const PASSWD: &str = "etc/passwd";
const GROUP: &str = "etc/group";
const SHADOW: &str = "etc/shadow";
const GSHADOW: &str = "etc/gshadow";
const HOME: &str = "home";
/// os-release(5): `/etc/os-release` wins; `/usr/lib/os-release` is the
/// fallback (and the usual target of the former, which is a link).
const OS_RELEASE: &str = "etc/os-release";
const OS_RELEASE_FALLBACK: &str = "usr/lib/os-release";

/// glibc's dynamic loaders, as programs name them (`PT_INTERP`), and the
/// Debian multiarch folder where merged-usr systems keep the real file.
const GLIBC_LOADERS: &[(&str, &str)] = &[
    ("lib64/ld-linux-x86-64.so.2", "x86_64-linux-gnu"),
    ("lib/ld-linux-aarch64.so.1", "aarch64-linux-gnu"),
    ("lib/ld-linux-armhf.so.3", "arm-linux-gnueabihf"),
    ("lib/ld-linux.so.3", "arm-linux-gnueabi"),
    ("lib/ld-linux.so.2", "i386-linux-gnu"),
    ("lib64/ld64.so.2", "powerpc64le-linux-gnu"),
    ("lib/ld64.so.1", "s390x-linux-gnu"),
    ("lib/ld-linux-riscv64-lp64d.so.1", "riscv64-linux-gnu"),
    (
        "lib64/ld-linux-loongarch-lp64d.so.1",
        "loongarch64-linux-gnu",
    ),
];

/// musl's dynamic loaders, one per architecture (musl's `LDSO_ARCH`).
const MUSL_LOADERS: &[&str] = &[
    "lib/ld-musl-x86_64.so.1",
    "lib/ld-musl-aarch64.so.1",
    "lib/ld-musl-armhf.so.1",
    "lib/ld-musl-arm.so.1",
    "lib/ld-musl-i386.so.1",
    "lib/ld-musl-powerpc64le.so.1",
    "lib/ld-musl-s390x.so.1",
    "lib/ld-musl-riscv64.so.1",
    "lib/ld-musl-loongarch64.so.1",
];

/// Where a loader may really live: as named, under `usr/` (merged-usr
/// links `lib` to `usr/lib`), and, for glibc, in the multiarch folder the
/// named path links to on Debian.
fn loader_homes(named: &str, multiarch: Option<&str>) -> Vec<String> {
    let mut homes = vec![named.to_owned(), format!("usr/{named}")];
    if let (Some(triplet), Some((_, file))) = (multiarch, named.rsplit_once('/')) {
        homes.push(format!("lib/{triplet}/{file}"));
        homes.push(format!("usr/lib/{triplet}/{file}"));
    }
    homes
}

/// The paths collected in the first pass.
const FIRST_PASS: &[&str] = &[
    PASSWD,
    GROUP,
    SHADOW,
    GSHADOW,
    OS_RELEASE,
    OS_RELEASE_FALLBACK,
    HOME,
];

/// Why the facts of a base could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading base layer {layer}: {source}")]
    Layer {
        layer: Digest,
        #[source]
        source: LayerReadError,
    },
    #[error(
        "{path} in the base is {size} bytes (at {found}); hoist reads at most {limit} bytes of it"
    )]
    TooLarge {
        path: String,
        found: String,
        size: u64,
        limit: u64,
    },
    #[error("resolving {path} in the base followed more than {MAX_SYMLINK_HOPS} links (a loop?), the last at {at}")]
    LinkLoop { path: String, at: String },
    #[error("{path} in the base is {what} (at {found}), not a regular file")]
    NotAFile {
        path: String,
        found: String,
        what: &'static str,
    },
    #[error("{path} in base layer {layer} is a hard link to {target}, which that layer does not hold as a file")]
    BrokenHardlink {
        layer: Digest,
        path: String,
        target: String,
    },
    #[error("resolving {path} in the base needed more than {MAX_SCANS} passes over its layers (links chained through many folders); giving up")]
    TooManyScans { path: String },
}

/// A wanted file as the base holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFact {
    pub content: Vec<u8>,
    /// Mode, uid and gid of the file as found (of the link target's, for a
    /// link).
    pub meta: EntryMeta,
}

/// What hoist knows of a base's filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    pub passwd: Option<FileFact>,
    pub group: Option<FileFact>,
    pub shadow: Option<FileFact>,
    pub gshadow: Option<FileFact>,
    /// `/etc/os-release`, else `/usr/lib/os-release`, parsed.
    pub os_release: Option<OsRelease>,
    /// `/home`, if it is a folder (through links). A folder that exists
    /// only because a layer holds files below it has no entry of its own;
    /// it gets the mode runtimes create such folders with: 0755, root.
    pub home: Option<EntryMeta>,
    /// The C library, `None` when the image has no dynamic loader hoist
    /// knows and its family does not say (busybox, scratch, static).
    pub libc: Option<Libc>,
}

/// The C library an image's programs are linked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Libc {
    Glibc,
    Musl,
}

impl Libc {
    /// The C library of a distribution family, when the family says.
    fn of_family(family: OsFamily) -> Option<Libc> {
        match family {
            OsFamily::Alpine => Some(Libc::Musl),
            OsFamily::Debian => Some(Libc::Glibc),
            OsFamily::Other => None,
        }
    }

    /// Decides from the loaders found.
    fn of_loaders(glibc: bool, musl: bool) -> Option<Libc> {
        match (glibc, musl) {
            (true, _) => Some(Libc::Glibc),
            (false, true) => Some(Libc::Musl),
            (false, false) => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Libc::Glibc => "glibc",
            Libc::Musl => "musl",
        }
    }
}

impl std::fmt::Display for Libc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Facts {
    /// The distribution family, from os-release; a base without one (busybox,
    /// scratch) is `Other`.
    pub fn os_family(&self) -> OsFamily {
        self.os_release
            .as_ref()
            .map_or(OsFamily::Other, OsRelease::family)
    }
}

/// The distribution families whose conventions hoist follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsFamily {
    Alpine,
    Debian,
    Other,
}

/// The fields of os-release(5) hoist uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsRelease {
    /// `ID`; `linux` when unset, as the spec says.
    pub id: String,
    /// `ID_LIKE`, split on spaces.
    pub id_like: Vec<String>,
    pub version_id: Option<String>,
    pub pretty_name: Option<String>,
}

impl OsRelease {
    /// Parses an os-release file. The format (os-release(5)) is a list of
    /// shell-compatible `KEY=VALUE` assignments, one per line: values may be
    /// single- or double-quoted, shell special characters escaped with a
    /// backslash; `#` starts a comment line; blank lines are ignored. The
    /// spec tells readers to be lenient, so lines that are not assignments
    /// are skipped and a bad byte sequence becomes U+FFFD.
    pub fn parse(bytes: &[u8]) -> OsRelease {
        let text = String::from_utf8_lossy(bytes);
        let mut vars: HashMap<&str, String> = HashMap::new();
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, raw)) = line.split_once('=') else {
                continue;
            };
            let valid_key = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid_key {
                vars.insert(key, shell_unquote(raw));
            }
        }
        let mut take = |k: &str| vars.remove(k).filter(|v| !v.is_empty());
        OsRelease {
            id: take("ID").unwrap_or_else(|| "linux".to_owned()),
            id_like: take("ID_LIKE")
                .map(|v| v.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            version_id: take("VERSION_ID"),
            pretty_name: take("PRETTY_NAME"),
        }
    }

    /// The family by `ID`, then by `ID_LIKE` in order.
    pub fn family(&self) -> OsFamily {
        std::iter::once(&self.id)
            .chain(&self.id_like)
            .find_map(|id| match id.as_str() {
                "alpine" => Some(OsFamily::Alpine),
                "debian" | "ubuntu" => Some(OsFamily::Debian),
                _ => None,
            })
            .unwrap_or(OsFamily::Other)
    }
}

/// One shell word, as `sh` reads the right side of an assignment: quotes
/// removed, backslash escapes applied (inside double quotes only before
/// `$`, `` ` ``, `"`, `\`), ended by unquoted white space. An unterminated
/// quote runs to the end of the line.
fn shell_unquote(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (None, '\\') => out.extend(chars.next()),
            (None, c) if c.is_whitespace() => break,
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('"'), '\\') => match chars.next() {
                Some(n @ ('$' | '`' | '"' | '\\')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            },
            (_, c) => out.push(c),
        }
    }
    out
}

/// The store's cache-entry kind for facts; the entry name is
/// `v<FACTS_CACHE_VERSION>-<manifest hex>`.
const FACTS_KEY_KIND: &str = "facts";

/// Bumped whenever what facts hold or how they are read changes.
const FACTS_CACHE_VERSION: u32 = 1;

/// [`read_facts`], through a cache entry keyed by the base's manifest
/// digest. `fetch` is called before the layers are read, on a miss only
/// (a registry base downloads its layers there).
pub fn read_facts_cached<E: From<FactsError>>(
    store: &Store,
    manifest: &Digest,
    layers: &[Descriptor],
    fetch: &mut dyn FnMut() -> Result<(), E>,
) -> Result<Facts, E> {
    let name = format!("v{FACTS_CACHE_VERSION}-{}", manifest.hex());
    let cached = store
        .get_key(FACTS_KEY_KIND, &name)
        .map_err(FactsError::from)?;
    if let Some(facts) = cached.and_then(|b| serde_json::from_slice::<cache::Facts>(&b).ok()) {
        return Ok(facts.into());
    }
    fetch()?;
    let facts = read_facts(store, layers)?;
    let json = serde_json::to_vec(&cache::Facts::from(&facts)).unwrap_or_default();
    store
        .put_key(FACTS_KEY_KIND, &name, &json)
        .map_err(FactsError::from)?;
    Ok(facts)
}

/// The serialised form of [`Facts`] in the store.
mod cache {
    use base64::Engine as _;
    use serde::{Deserialize, Serialize};

    use super::{EntryMeta, Libc, OsRelease};

    #[derive(Serialize, Deserialize)]
    pub(super) struct Facts {
        passwd: Option<File>,
        group: Option<File>,
        shadow: Option<File>,
        gshadow: Option<File>,
        os_release: Option<Os>,
        home: Option<Meta>,
        libc: Option<String>,
    }

    #[derive(Serialize, Deserialize)]
    struct File {
        /// base64, so any bytes round-trip.
        content: String,
        meta: Meta,
    }

    #[derive(Serialize, Deserialize)]
    struct Meta {
        mode: u32,
        uid: u64,
        gid: u64,
    }

    #[derive(Serialize, Deserialize)]
    struct Os {
        id: String,
        id_like: Vec<String>,
        version_id: Option<String>,
        pretty_name: Option<String>,
    }

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    fn meta(m: &EntryMeta) -> Meta {
        Meta {
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
        }
    }

    fn entry_meta(m: Meta) -> EntryMeta {
        EntryMeta {
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
        }
    }

    fn file(f: &Option<super::FileFact>) -> Option<File> {
        f.as_ref().map(|f| File {
            content: B64.encode(&f.content),
            meta: meta(&f.meta),
        })
    }

    fn file_fact(f: Option<File>) -> Option<super::FileFact> {
        let f = f?;
        Some(super::FileFact {
            content: B64.decode(f.content).ok()?,
            meta: entry_meta(f.meta),
        })
    }

    impl From<&super::Facts> for Facts {
        fn from(f: &super::Facts) -> Facts {
            Facts {
                passwd: file(&f.passwd),
                group: file(&f.group),
                shadow: file(&f.shadow),
                gshadow: file(&f.gshadow),
                os_release: f.os_release.as_ref().map(|o| Os {
                    id: o.id.clone(),
                    id_like: o.id_like.clone(),
                    version_id: o.version_id.clone(),
                    pretty_name: o.pretty_name.clone(),
                }),
                home: f.home.as_ref().map(meta),
                libc: f.libc.map(|l| l.as_str().to_owned()),
            }
        }
    }

    impl From<Facts> for super::Facts {
        fn from(f: Facts) -> super::Facts {
            super::Facts {
                passwd: file_fact(f.passwd),
                group: file_fact(f.group),
                shadow: file_fact(f.shadow),
                gshadow: file_fact(f.gshadow),
                os_release: f.os_release.map(|o| OsRelease {
                    id: o.id,
                    id_like: o.id_like,
                    version_id: o.version_id,
                    pretty_name: o.pretty_name,
                }),
                home: f.home.map(entry_meta),
                libc: match f.libc.as_deref() {
                    Some("glibc") => Some(Libc::Glibc),
                    Some("musl") => Some(Libc::Musl),
                    _ => None,
                },
            }
        }
    }
}

/// Reads the facts of a base from its layers, given bottom-first as in its
/// manifest. Their blobs must be in `store`.
pub fn read_facts(store: &Store, layers: &[Descriptor]) -> Result<Facts, FactsError> {
    let mut wants = Wants::default();
    for path in FIRST_PASS {
        wants.add_path(&image_path(path));
    }

    let mut last_need = None;
    for _ in 0..MAX_SCANS {
        let scan = Scan::run(store, layers, &wants)?;
        let needs = match scan.facts()? {
            Outcome::Ready(facts) => return Ok(facts),
            Outcome::Need(needs) => needs,
        };
        let mut progress = false;
        for need in &needs {
            progress |= wants.add(need);
        }
        last_need = needs.into_iter().next();
        if !progress {
            break;
        }
    }
    Err(FactsError::TooManyScans {
        path: match last_need {
            Some(Need::Path(p)) | Some(Need::KindOnly(p)) | Some(Need::Link(_, p)) => p.to_string(),
            None => "/".to_owned(),
        },
    })
}

/// A constant path of this module as an [`ImagePath`].
fn image_path(s: &'static str) -> ImagePath {
    // The constants are plain relative paths; `new` cannot refuse them.
    ImagePath::new(s).unwrap_or_else(|_| unreachable!("bad constant path {s}"))
}

/// What a pass collects.
#[derive(Debug, Default)]
struct Wants {
    /// Paths looked up in the merged tree; always holds their ancestors.
    paths: BTreeSet<ImagePath>,
    /// The same, as strings, for the per-entry ancestor check.
    path_strs: HashSet<String>,
    /// Hard-link targets whose content is wanted from one layer.
    links: BTreeSet<(usize, ImagePath)>,
    /// Paths of `paths` whose kind matters but whose content does not
    /// (the dynamic loaders): never read.
    kind_only: HashSet<ImagePath>,
}

impl Wants {
    fn add_path(&mut self, p: &ImagePath) -> bool {
        let mut new = false;
        for a in p.ancestors().into_iter().chain([p.clone()]) {
            self.path_strs.insert(a.as_str().to_owned());
            new |= self.paths.insert(a);
        }
        new
    }

    /// Adds a path whose content is never read, unless it is also wanted
    /// for its content.
    fn add_kind_only(&mut self, p: &ImagePath) -> bool {
        let known = self.paths.contains(p);
        let new = self.add_path(p);
        if !known {
            self.kind_only.insert(p.clone());
        }
        new
    }

    fn add(&mut self, need: &Need) -> bool {
        match need {
            Need::Path(p) => {
                let now_read = self.kind_only.remove(p);
                self.add_path(p) || now_read
            }
            Need::KindOnly(p) => self.add_kind_only(p),
            Need::Link(layer, p) => self.links.insert((*layer, p.clone())),
        }
    }
}

/// What another pass must collect.
#[derive(Debug)]
enum Need {
    Path(ImagePath),
    /// A path whose kind, not content, is wanted.
    KindOnly(ImagePath),
    Link(usize, ImagePath),
}

enum Outcome<T> {
    Ready(T),
    Need(Vec<Need>),
}

/// One entry of a layer, as far as a pass keeps it.
#[derive(Debug)]
struct Rec {
    kind: RecKind,
    meta: EntryMeta,
    content: Content,
}

#[derive(Debug)]
enum RecKind {
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
enum Resolved<'a> {
    Absent,
    /// The image's root, or a folder without an entry.
    ImplicitDir,
    Found {
        path: ImagePath,
        layer: usize,
        rec: &'a Rec,
    },
}

/// One pass over the layers.
struct Scan<'a> {
    wants: &'a Wants,
    layers: &'a [Descriptor],
    /// By layer index, bottom first; `None` for layers not read.
    recs: Vec<Option<LayerRec>>,
}

impl<'a> Scan<'a> {
    /// Reads layers top-down until every wanted path is decided.
    fn run(store: &Store, layers: &'a [Descriptor], wants: &'a Wants) -> Result<Self, FactsError> {
        let mut scan = Scan {
            wants,
            layers,
            recs: layers.iter().map(|_| None).collect(),
        };
        for i in (0..layers.len()).rev() {
            let open: HashSet<&ImagePath> = wants
                .paths
                .iter()
                .filter(|p| matches!(scan.lookup(p), Look::Undetermined))
                .collect();
            let links: HashSet<&ImagePath> = wants
                .links
                .iter()
                .filter(|(l, _)| *l == i)
                .map(|(_, p)| p)
                .collect();
            if open.is_empty() && !wants.links.iter().any(|(l, _)| *l <= i) {
                break;
            }
            scan.recs[i] = Some(read_layer(store, &layers[i], wants, &open, &links)?);
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
            let hidden = rec.opaque_root
                || rec.whiteouts.contains(p)
                || ancestors.iter().any(|a| {
                    rec.whiteouts.contains(a)
                        || rec.opaque.contains(a)
                        || rec
                            .entries
                            .get(a)
                            .is_some_and(|r| !matches!(r.kind, RecKind::Dir))
                });
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
    fn resolve(&self, wanted: &str) -> Result<Outcome<Resolved<'_>>, FactsError> {
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
    fn file(&self, wanted: &str) -> Result<Outcome<Option<FileFact>>, FactsError> {
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
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(FactsError::LinkLoop {
                            path: format!("/{wanted}"),
                            at: path.to_string(),
                        });
                    }
                    let held = self.recs[layer]
                        .as_ref()
                        .and_then(|r| r.entries.get(target));
                    match held {
                        Some(r) => {
                            path = target.clone();
                            rec = r;
                        }
                        None if self.wants.links.contains(&(layer, target.clone())) => {
                            return Err(FactsError::BrokenHardlink {
                                layer: self.layers[layer].digest.clone(),
                                path: path.to_string(),
                                target: target.to_string(),
                            })
                        }
                        None => return Ok(Outcome::Need(vec![Need::Link(layer, target.clone())])),
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

    /// `/home`'s metadata if it resolves to a folder.
    fn home(&self) -> Result<Outcome<Option<EntryMeta>>, FactsError> {
        Ok(match self.resolve(HOME)? {
            Outcome::Need(n) => Outcome::Need(n),
            Outcome::Ready(Resolved::Found { rec, .. }) => {
                Outcome::Ready(matches!(rec.kind, RecKind::Dir).then_some(rec.meta))
            }
            Outcome::Ready(Resolved::ImplicitDir) => Outcome::Ready(Some(EntryMeta::root(0o755))),
            Outcome::Ready(Resolved::Absent) => Outcome::Ready(None),
        })
    }

    /// Every fact, or what the next pass must collect.
    fn facts(&self) -> Result<Outcome<Facts>, FactsError> {
        let mut needs = Vec::new();
        let mut ready = |o: Outcome<Option<FileFact>>| match o {
            Outcome::Ready(v) => v,
            Outcome::Need(n) => {
                needs.extend(n);
                None
            }
        };
        let passwd = ready(self.file(PASSWD)?);
        let group = ready(self.file(GROUP)?);
        let shadow = ready(self.file(SHADOW)?);
        let gshadow = ready(self.file(GSHADOW)?);
        let os_release = match self.file(OS_RELEASE)? {
            Outcome::Ready(None) => ready(self.file(OS_RELEASE_FALLBACK)?),
            other => ready(other),
        };
        let home = match self.home()? {
            Outcome::Ready(h) => h,
            Outcome::Need(n) => {
                needs.extend(n);
                None
            }
        };
        if !needs.is_empty() {
            return Ok(Outcome::Need(needs));
        }
        let os_release = os_release.map(|f| OsRelease::parse(&f.content));
        let family = os_release
            .as_ref()
            .map_or(OsFamily::Other, OsRelease::family);
        let libc = match Libc::of_family(family) {
            Some(libc) => Some(libc),
            None => {
                let glibc = self.any_loader(GLIBC_LOADERS.iter().map(|(n, m)| (*n, Some(*m))))?;
                let musl = self.any_loader(MUSL_LOADERS.iter().map(|n| (*n, None)))?;
                match (glibc, musl) {
                    (Outcome::Ready(g), Outcome::Ready(m)) => Libc::of_loaders(g, m),
                    (g, m) => {
                        for o in [g, m] {
                            if let Outcome::Need(n) = o {
                                needs.extend(n);
                            }
                        }
                        return Ok(Outcome::Need(needs));
                    }
                }
            }
        };
        Ok(Outcome::Ready(Facts {
            passwd,
            group,
            shadow,
            gshadow,
            os_release,
            home,
            libc,
        }))
    }

    /// Whether any of the loaders (named path, multiarch folder) exists;
    /// when one is not decided yet, every loader's homes are asked for.
    fn any_loader<'l>(
        &self,
        loaders: impl Iterator<Item = (&'l str, Option<&'l str>)> + Clone,
    ) -> Result<Outcome<bool>, FactsError> {
        let mut needs = Vec::new();
        for (named, _) in loaders.clone() {
            match self.exists(named)? {
                Outcome::Ready(true) => return Ok(Outcome::Ready(true)),
                Outcome::Ready(false) => {}
                Outcome::Need(n) => needs.extend(n),
            }
        }
        if needs.is_empty() {
            return Ok(Outcome::Ready(false));
        }
        for (named, multiarch) in loaders {
            for home in loader_homes(named, multiarch) {
                if let Ok(p) = ImagePath::new(&home) {
                    needs.push(Need::KindOnly(p));
                }
            }
        }
        Ok(Outcome::Need(needs))
    }

    /// Whether `wanted` resolves (through links) to something other than a
    /// folder. Its content is never read.
    fn exists(&self, wanted: &str) -> Result<Outcome<bool>, FactsError> {
        Ok(match self.resolve(wanted)? {
            Outcome::Need(needs) => Outcome::Need(
                needs
                    .into_iter()
                    .map(|n| match n {
                        Need::Path(p) => Need::KindOnly(p),
                        other => other,
                    })
                    .collect(),
            ),
            Outcome::Ready(Resolved::Found { rec, .. }) => {
                Outcome::Ready(!matches!(rec.kind, RecKind::Dir))
            }
            Outcome::Ready(Resolved::Absent | Resolved::ImplicitDir) => Outcome::Ready(false),
        })
    }
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
                    let read = (open.contains(&e.path) && !wants.kind_only.contains(&e.path))
                        || links.contains(&e.path);
                    if !read && !wants.paths.contains(&e.path) {
                        return Ok(Flow::Continue);
                    }
                    let (kind, body) = match e.kind {
                        EntryKind::Dir => (RecKind::Dir, Content::NotRead),
                        EntryKind::File { size } if read => {
                            (RecKind::File, read_bounded(content, size)?)
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
                        },
                    );
                }
                Item::Whiteout(p) => {
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

    use super::*;
    use crate::layer::reader::tests::RawTar;
    use crate::layer::{Compression, LayerWriter};

    const ALPINE_OS_RELEASE: &[u8] = b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\nHOME_URL=\"https://alpinelinux.org/\"\nBUG_REPORT_URL=\"https://gitlab.alpinelinux.org/alpine/aports/-/issues\"\n";
    const DEBIAN_OS_RELEASE: &[u8] = b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\nHOME_URL=\"https://www.debian.org/\"\n";

    #[test]
    fn os_release_parse_table() {
        struct Case {
            input: &'static [u8],
            id: &'static str,
            id_like: &'static [&'static str],
            version_id: Option<&'static str>,
            pretty_name: Option<&'static str>,
            family: OsFamily,
        }
        let cases = [
            Case {
                input: ALPINE_OS_RELEASE,
                id: "alpine",
                id_like: &[],
                version_id: Some("3.20.3"),
                pretty_name: Some("Alpine Linux v3.20"),
                family: OsFamily::Alpine,
            },
            Case {
                input: DEBIAN_OS_RELEASE,
                id: "debian",
                id_like: &[],
                version_id: Some("12"),
                pretty_name: Some("Debian GNU/Linux 12 (bookworm)"),
                family: OsFamily::Debian,
            },
            Case {
                input: b"ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\n",
                id: "ubuntu",
                id_like: &["debian"],
                version_id: Some("24.04"),
                pretty_name: None,
                family: OsFamily::Debian,
            },
            Case {
                input: b"ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n",
                id: "linuxmint",
                id_like: &["ubuntu", "debian"],
                version_id: None,
                pretty_name: None,
                family: OsFamily::Debian,
            },
            Case {
                input: b"ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n",
                id: "rocky",
                id_like: &["rhel", "centos", "fedora"],
                version_id: None,
                pretty_name: None,
                family: OsFamily::Other,
            },
            Case {
                // Comments, blank lines, indentation, single quotes,
                // escapes inside and outside double quotes, junk lines.
                input: b"# a comment\n\n  ID='wolfi'\nnot an assignment\n1BAD=x\nPRETTY_NAME=\"say \\\"hi\\\" \\$HOME \\n\"\nVERSION_ID=a\\ b # trailing\n",
                id: "wolfi",
                id_like: &[],
                version_id: Some("a b"),
                pretty_name: Some("say \"hi\" $HOME \\n"),
                family: OsFamily::Other,
            },
            Case {
                input: b"NAME=Busybox\nID=\nPRETTY_NAME=\"unterminated\n",
                id: "linux",
                id_like: &[],
                version_id: None,
                pretty_name: Some("unterminated"),
                family: OsFamily::Other,
            },
            Case {
                input: b"ID=\"a\"'b'c\r\nVERSION_ID=\xff\n",
                id: "abc",
                id_like: &[],
                version_id: Some("\u{fffd}"),
                pretty_name: None,
                family: OsFamily::Other,
            },
        ];
        for c in cases {
            let got = OsRelease::parse(c.input);
            let shown = String::from_utf8_lossy(c.input);
            assert_eq!(got.id, c.id, "{shown}");
            assert_eq!(got.id_like, c.id_like, "{shown}");
            assert_eq!(got.version_id.as_deref(), c.version_id, "{shown}");
            assert_eq!(got.pretty_name.as_deref(), c.pretty_name, "{shown}");
            assert_eq!(got.family(), c.family, "{shown}");
        }
    }

    fn p(s: &str) -> ImagePath {
        ImagePath::new(s).unwrap()
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    /// Gzips a hand-made tar into the store.
    fn raw_layer(store: &Store, tar: &[u8]) -> Descriptor {
        let mut enc = Compression::Gzip.encoder(Vec::new()).unwrap();
        enc.write_all(tar).unwrap();
        let gz = enc.finish().unwrap();
        let (digest, size) = store.put_bytes(&gz).unwrap();
        Descriptor::new(Compression::Gzip.media_type(), digest, size)
    }

    enum E<'a> {
        Dir(&'a str),
        File(&'a str, &'a [u8]),
        Link(&'a str, &'a str),
    }

    /// A layer from the deterministic writer (entries sorted here).
    fn layer(store: &Store, entries: &[E]) -> Descriptor {
        let mut sorted: Vec<&E> = entries.iter().collect();
        let name = |e: &E| match e {
            E::Dir(n) | E::File(n, _) | E::Link(n, _) => n.to_string(),
        };
        sorted.sort_by_key(|e| name(e));
        let mut w = LayerWriter::new(store, Compression::Zstd, 0).unwrap();
        for e in sorted {
            match e {
                E::Dir(n) => w.dir(&p(n), EntryMeta::root(0o755)).unwrap(),
                E::File(n, c) => w
                    .file(&p(n), EntryMeta::root(0o644), c.len() as u64, &mut &c[..])
                    .unwrap(),
                E::Link(n, t) => w.symlink(&p(n), t, EntryMeta::root(0o777)).unwrap(),
            }
        }
        w.finish().unwrap().descriptor
    }

    fn content(f: &Option<FileFact>) -> Option<&[u8]> {
        f.as_ref().map(|f| &f.content[..])
    }

    const PASSWD_A: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n";
    const PASSWD_B: &[u8] =
        b"root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000:Linux User,,,:/home/node:/bin/sh\n";

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
    fn libc_from_family_or_loader() {
        let big = vec![b'x'; MAX_FACT_FILE_BYTES as usize + 1];
        let merged_usr_glibc = |t: &mut RawTar| -> Vec<u8> {
            t.symlink("lib", "usr/lib")
                .symlink("lib64", "usr/lib64")
                .symlink(
                    "usr/lib64/ld-linux-x86-64.so.2",
                    "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                )
                // Larger than a fact file may be: only its kind is asked.
                .file("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", &big)
                .finish()
        };
        // name, layers bottom first, libc
        type Case = (&'static str, Vec<Vec<u8>>, Option<Libc>);
        let cases: Vec<Case> = vec![
            (
                "alpine by family, whatever loaders",
                vec![RawTar::new()
                    .file("etc/os-release", ALPINE_OS_RELEASE)
                    .file("lib/ld-musl-x86_64.so.1", b"")
                    .file("lib64/ld-linux-x86-64.so.2", b"gcompat")
                    .finish()],
                Some(Libc::Musl),
            ),
            (
                "debian by family",
                vec![RawTar::new()
                    .file("etc/os-release", DEBIAN_OS_RELEASE)
                    .finish()],
                Some(Libc::Glibc),
            ),
            (
                "glibc loader behind merged-usr and multiarch links",
                vec![merged_usr_glibc(&mut RawTar::new())],
                Some(Libc::Glibc),
            ),
            (
                "musl loader of another architecture, in a lower layer",
                vec![
                    RawTar::new().file("lib/ld-musl-aarch64.so.1", b"").finish(),
                    RawTar::new().file("etc/os-release", b"ID=void\n").finish(),
                ],
                Some(Libc::Musl),
            ),
            (
                "both loaders, unknown family: glibc",
                vec![merged_usr_glibc(
                    RawTar::new().file("lib/ld-musl-x86_64.so.1", b""),
                )],
                Some(Libc::Glibc),
            ),
            (
                "a whited-out loader is gone",
                vec![
                    RawTar::new().file("lib/ld-musl-x86_64.so.1", b"").finish(),
                    RawTar::new()
                        .file("lib/.wh.ld-musl-x86_64.so.1", b"")
                        .finish(),
                ],
                None,
            ),
            (
                "a dangling loader link is no loader",
                vec![RawTar::new()
                    .symlink("lib/ld-musl-x86_64.so.1", "nowhere")
                    .finish()],
                None,
            ),
            (
                "no loader, unknown family",
                vec![RawTar::new().file("bin/busybox", b"").finish()],
                None,
            ),
        ];
        for (name, layers, want) in cases {
            let (_d, s) = store();
            let layers: Vec<Descriptor> = layers.iter().map(|t| raw_layer(&s, t)).collect();
            let facts = read_facts(&s, &layers).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(facts.libc, want, "{name}");
        }
    }

    #[test]
    fn cached_facts_round_trip_and_skip_the_layers() {
        let (_d, s) = store();
        let base = raw_layer(
            &s,
            &RawTar::new()
                .file_meta(
                    "etc/passwd",
                    b"root:x:0:0::/root:/bin/sh\n\xff",
                    0o600,
                    0,
                    42,
                )
                .file("etc/group", b"root:x:0:\n")
                .file("etc/os-release", ALPINE_OS_RELEASE)
                .dir("home/")
                .finish(),
        );
        let manifest = Digest::of(b"a manifest");
        let mut fetched = 0;
        let mut fetch = || -> Result<(), FactsError> {
            fetched += 1;
            Ok(())
        };
        let first =
            read_facts_cached(&s, &manifest, std::slice::from_ref(&base), &mut fetch).unwrap();
        assert_eq!(first, read_facts(&s, std::slice::from_ref(&base)).unwrap());
        assert_eq!(first.libc, Some(Libc::Musl));
        // The second time, not a layer is read: not even the missing one.
        let missing = Descriptor::new(
            Compression::Gzip.media_type(),
            Digest::of(b"not in the store"),
            1,
        );
        let mut fetch = || -> Result<(), FactsError> { panic!("fetched on a hit") };
        let second = read_facts_cached(&s, &manifest, &[missing], &mut fetch).unwrap();
        assert_eq!(second, first);
        assert_eq!(fetched, 1);
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
                "entry climbing out",
                RawTar::new().file("../etc/passwd", PASSWD_A).finish(),
                "`../etc/passwd`",
            ),
            (
                "hard link climbing out",
                RawTar::new()
                    .hardlink("etc/passwd", "../../etc/shadow")
                    .finish(),
                "`../../etc/shadow`",
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

    #[test]
    fn stops_before_layers_it_does_not_need() {
        let (_d, s) = store();
        // Never stored: opening it would fail.
        let missing = Descriptor::new(
            Compression::Gzip.media_type(),
            Digest::of(b"not in the store"),
            1,
        );
        let top = layer(
            &s,
            &[
                E::Dir("etc"),
                E::File("etc/passwd", PASSWD_A),
                E::File("etc/group", b"root:x:0:\n"),
                E::File("etc/shadow", b""),
                E::File("etc/gshadow", b""),
                E::Link("etc/os-release", "../usr/lib/os-release"),
                E::Dir("usr"),
                E::Dir("usr/lib"),
                E::File("usr/lib/os-release", ALPINE_OS_RELEASE),
                E::Dir("home"),
            ],
        );
        let facts = read_facts(&s, &[missing.clone(), top]).unwrap();
        assert_eq!(facts.os_family(), OsFamily::Alpine);
        // While a base whose top layer leaves something open reads on.
        let top = layer(&s, &[E::File("etc/passwd", PASSWD_A)]);
        let err = read_facts(&s, &[missing, top]).unwrap_err();
        assert!(
            matches!(err, FactsError::Store(StoreError::Missing(..))),
            "{err}"
        );
    }

    #[test]
    fn empty_base_has_no_facts() {
        let (_d, s) = store();
        let facts = read_facts(&s, &[]).unwrap();
        assert_eq!(facts, Facts::default());
        assert_eq!(facts.os_family(), OsFamily::Other);
        let busybox = layer(&s, &[E::Dir("bin"), E::File("bin/busybox", b"\x7fELF")]);
        assert_eq!(read_facts(&s, &[busybox]).unwrap(), Facts::default());
    }
}
