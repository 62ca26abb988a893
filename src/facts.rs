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
//! never read whole. The files read for a version (`libc.so.6`, the
//! package databases) are streamed through scanners that keep a few
//! numbers and names, whatever their size. The uncompressed size of each
//! layer stream is bounded by the reader.
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
//! The C library's version decides which manylinux or musllinux wheels
//! fit, so it is read too, without running a program. For glibc the first
//! source is the library itself: `libc.so.6` defines one symbol version
//! per release it is compatible with (`GLIBC_2.2.5` ... `GLIBC_2.36`), so
//! the highest such name in its string table is its own version, on any
//! distribution. It is about 2 MB, so it is streamed through a scanner and
//! never kept. The package databases come next: dpkg's `libc6`, apk's
//! `glibc` (Wolfi). For musl only Alpine's apk database (`musl`) says; the
//! library carries its version untagged.
//!
//! The image's CPython ([`PythonFacts`]) is the one `python3` on `PATH`
//! finds: `/usr/local` (python images build it there) before `/usr` (the
//! distribution's package); in one prefix, the version `bin/python3` links
//! to, else the newest. A Python is there when both its versioned
//! interpreter (`bin/python3.X`) and its standard library
//! (`lib/python3.X/os.py`) are; only their existence is asked, for 3.6 to
//! 3.15. Its full version comes from
//! the distribution's package database when the distribution installed it
//! (dpkg's `python3.X-minimal`, apk's `python3`); the python images say it
//! in their config instead, which is not a layer's to tell
//! ([`crate::deps::pip::env`] reads it there).
//!
//! Facts depend on the layers only, so [`read_facts_cached`] keeps them in
//! the store under the base's manifest digest: a rebuild on the same base
//! reads no layer at all (for a registry base, downloads none).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::io::{ErrorKind, Read};
use std::ops::RangeInclusive;

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

/// Where `libc.so.6` lives beside the glibc loaders above (the real
/// file may be a link away: `libc-2.31.so` before glibc 2.34). The
/// multiarch folders come first, so an image with a second architecture's
/// libraries (same version, dpkg insists) still answers for its own.
fn libc_so_homes() -> Vec<String> {
    let mut homes = Vec::new();
    for (_, triplet) in GLIBC_LOADERS {
        homes.push(format!("lib/{triplet}/libc.so.6"));
        homes.push(format!("usr/lib/{triplet}/libc.so.6"));
    }
    for folder in ["lib64", "usr/lib64", "lib", "usr/lib"] {
        homes.push(format!("{folder}/libc.so.6"));
    }
    homes
}

/// dpkg's database of installed packages (Debian, Ubuntu).
const DPKG_STATUS: &str = "var/lib/dpkg/status";

/// apk's database of installed packages (Alpine, Wolfi), and where it is
/// once `/lib` is a link to `/usr/lib`.
const APK_INSTALLED: &[&str] = &["lib/apk/db/installed", "usr/lib/apk/db/installed"];

/// The CPython 3 minor versions looked for.
const PYTHON_MINORS: RangeInclusive<u32> = 6..=15;

/// Where a CPython may live, in the order `PATH` finds them in the python
/// images (`/usr/local/bin` before `/usr/bin`).
const PYTHON_PREFIXES: &[&str] = &["usr/local", "usr"];

/// A folder Debian's python3 package ships, and only Debian's.
const DEBIAN_DIST_PACKAGES: &str = "usr/lib/python3/dist-packages";

/// The paths whose existence tells where the image's Pythons are.
fn python_paths() -> Vec<String> {
    let mut paths = vec![DEBIAN_DIST_PACKAGES.to_owned()];
    for prefix in PYTHON_PREFIXES {
        paths.push(format!("{prefix}/bin/python3"));
        for minor in PYTHON_MINORS {
            paths.push(format!("{prefix}/bin/python3.{minor}"));
            paths.push(format!("{prefix}/lib/python3.{minor}/os.py"));
        }
    }
    paths
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
    /// The C library's major.minor (glibc 2.36, musl 1.2), `None` when
    /// nothing in the image says.
    pub libc_version: Option<(u32, u32)>,
    /// The CPython `python3` runs, `None` when the image has none.
    pub python: Option<PythonFacts>,
}

/// The image's CPython, as its filesystem shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonFacts {
    /// CPython major.minor, such as (3, 11).
    pub version: (u32, u32),
    /// The versioned interpreter: `/usr/local/bin/python3.12`.
    pub interpreter: ImagePath,
    pub layout: PythonLayout,
    /// The upstream version of the distribution package that installed
    /// it (`3.11.2` of Debian's `3.11.2-6+deb12u2`, `3.12.3` of Alpine's
    /// `3.12.3-r1`), when a package database says.
    pub package_version: Option<String>,
}

/// Who installed the image's CPython, which decides where pip installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PythonLayout {
    /// Built from source into `/usr/local`, as the python images do:
    /// `/usr/local/lib/python3.X/site-packages`, `/usr/local/bin`.
    UsrLocal,
    /// Debian's (or Ubuntu's) python3 package in `/usr`, whose patched
    /// scheme sends `pip install` as root to
    /// `/usr/local/lib/python3.X/dist-packages` and `/usr/local/bin`.
    Debian,
    /// Another distribution's python3 package in `/usr` with the stock
    /// scheme (Alpine): `/usr/lib/python3.X/site-packages`, `/usr/bin`.
    Usr,
}

impl PythonLayout {
    pub fn as_str(self) -> &'static str {
        match self {
            PythonLayout::UsrLocal => "usr-local",
            PythonLayout::Debian => "debian",
            PythonLayout::Usr => "usr",
        }
    }
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
const FACTS_CACHE_VERSION: u32 = 2;

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
    let cached = cached.and_then(|b| serde_json::from_slice::<cache::Facts>(&b).ok());
    // An entry that does not read back whole is a miss, and is rewritten.
    if let Some(facts) = cached.and_then(cache::Facts::into_facts) {
        return Ok(facts);
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

    use super::{EntryMeta, ImagePath, Libc, OsRelease, PythonFacts, PythonLayout};

    #[derive(Serialize, Deserialize)]
    pub(super) struct Facts {
        passwd: Option<File>,
        group: Option<File>,
        shadow: Option<File>,
        gshadow: Option<File>,
        os_release: Option<Os>,
        home: Option<Meta>,
        libc: Option<String>,
        libc_version: Option<(u32, u32)>,
        python: Option<Python>,
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

    #[derive(Serialize, Deserialize)]
    struct Python {
        version: (u32, u32),
        interpreter: String,
        layout: String,
        package_version: Option<String>,
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

    /// `Some(None)` for no file, `None` for an entry that does not decode.
    fn file_fact(f: Option<File>) -> Option<Option<super::FileFact>> {
        let Some(f) = f else {
            return Some(None);
        };
        Some(Some(super::FileFact {
            content: B64.decode(f.content).ok()?,
            meta: entry_meta(f.meta),
        }))
    }

    /// The same, for the optional fields whose stored form can be bad.
    fn decode<S, T>(stored: Option<S>, read: impl FnOnce(S) -> Option<T>) -> Option<Option<T>> {
        match stored {
            None => Some(None),
            Some(s) => read(s).map(Some),
        }
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
                libc_version: f.libc_version,
                python: f.python.as_ref().map(|p| Python {
                    version: p.version,
                    interpreter: p.interpreter.as_str().to_owned(),
                    layout: p.layout.as_str().to_owned(),
                    package_version: p.package_version.clone(),
                }),
            }
        }
    }

    impl Facts {
        /// The facts, unless a field does not read back.
        pub(super) fn into_facts(self) -> Option<super::Facts> {
            Some(super::Facts {
                passwd: file_fact(self.passwd)?,
                group: file_fact(self.group)?,
                shadow: file_fact(self.shadow)?,
                gshadow: file_fact(self.gshadow)?,
                os_release: self.os_release.map(|o| OsRelease {
                    id: o.id,
                    id_like: o.id_like,
                    version_id: o.version_id,
                    pretty_name: o.pretty_name,
                }),
                home: self.home.map(entry_meta),
                libc: decode(self.libc, |l| match l.as_str() {
                    "glibc" => Some(Libc::Glibc),
                    "musl" => Some(Libc::Musl),
                    _ => None,
                })?,
                libc_version: self.libc_version,
                python: decode(self.python, |p| {
                    Some(PythonFacts {
                        version: p.version,
                        interpreter: ImagePath::new(&p.interpreter).ok()?,
                        layout: match p.layout.as_str() {
                            "usr-local" => PythonLayout::UsrLocal,
                            "debian" => PythonLayout::Debian,
                            "usr" => PythonLayout::Usr,
                            _ => return None,
                        },
                        package_version: p.package_version,
                    })
                })?,
            })
        }
    }
}

/// Reads the facts of a base from its layers, given bottom-first as in its
/// manifest. Their blobs must be in `store`.
pub fn read_facts(store: &Store, layers: &[Descriptor]) -> Result<Facts, FactsError> {
    let mut wants = Wants::first_pass();

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
            Some(Need::Path(p) | Need::KindOnly(p) | Need::Scan(p, _) | Need::Link(_, p)) => {
                p.to_string()
            }
            None => "/".to_owned(),
        },
    })
}

/// A path built from this module's constants as an [`ImagePath`].
fn image_path(s: &str) -> ImagePath {
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
    /// Paths of `paths` whose content is not kept: those whose kind
    /// matters but whose content does not (the dynamic loaders, Python's
    /// files), and those only scanned.
    unread: HashSet<ImagePath>,
    /// Paths whose content is streamed through scanners, and which.
    scans: HashMap<ImagePath, BTreeSet<ScanKind>>,
}

impl Wants {
    /// What the first pass collects: the wanted files, Python's paths, and
    /// the files scanned for versions.
    fn first_pass() -> Wants {
        let mut wants = Wants::default();
        for path in FIRST_PASS {
            wants.add_path(&image_path(path));
        }
        for path in python_paths() {
            wants.add_kind_only(&image_path(&path));
        }
        for path in libc_so_homes() {
            wants.add_scan(&image_path(&path), ScanKind::Glibc);
        }
        wants.add_scan(&image_path(DPKG_STATUS), ScanKind::Dpkg);
        for path in APK_INSTALLED {
            wants.add_scan(&image_path(path), ScanKind::Apk);
        }
        wants
    }

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
            self.unread.insert(p.clone());
        }
        new
    }

    /// Adds a path whose content `kind` scans; its content is not kept
    /// unless it is also wanted for it.
    fn add_scan(&mut self, p: &ImagePath, kind: ScanKind) -> bool {
        let new = self.add_kind_only(p);
        self.scans.entry(p.clone()).or_default().insert(kind) || new
    }

    fn add(&mut self, need: &Need) -> bool {
        match need {
            Need::Path(p) => {
                let now_read = self.unread.remove(p);
                self.add_path(p) || now_read
            }
            Need::KindOnly(p) => self.add_kind_only(p),
            Need::Scan(p, kind) => self.add_scan(p, *kind),
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
    /// A path whose content is scanned, not kept.
    Scan(ImagePath, ScanKind),
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
    /// What the scanners the path asked for found in its content.
    scanned: Vec<(ScanKind, Scanned)>,
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
        let passwd = ready(self.file(PASSWD)?, &mut needs).flatten();
        let group = ready(self.file(GROUP)?, &mut needs).flatten();
        let shadow = ready(self.file(SHADOW)?, &mut needs).flatten();
        let gshadow = ready(self.file(GSHADOW)?, &mut needs).flatten();
        let os_release = match self.file(OS_RELEASE)? {
            Outcome::Ready(None) => ready(self.file(OS_RELEASE_FALLBACK)?, &mut needs).flatten(),
            other => ready(other, &mut needs).flatten(),
        };
        let home = ready(self.home()?, &mut needs).flatten();
        let dpkg = ready(self.scanned(DPKG_STATUS, ScanKind::Dpkg)?, &mut needs).flatten();
        let apk = ready(self.apk()?, &mut needs).flatten();
        if !needs.is_empty() {
            return Ok(Outcome::Need(needs));
        }
        let dpkg = dpkg.map(Scanned::into_packages).unwrap_or_default();
        let apk = apk.map(Scanned::into_packages).unwrap_or_default();
        let os_release = os_release.map(|f| OsRelease::parse(&f.content));
        let family = os_release
            .as_ref()
            .map_or(OsFamily::Other, OsRelease::family);
        let libc = match Libc::of_family(family) {
            Some(libc) => Some(libc),
            None => {
                let glibc = self.any_loader(GLIBC_LOADERS.iter().map(|(n, m)| (*n, Some(*m))))?;
                let musl = self.any_loader(MUSL_LOADERS.iter().map(|n| (*n, None)))?;
                let glibc = ready(glibc, &mut needs);
                let musl = ready(musl, &mut needs);
                match (glibc, musl) {
                    (Some(g), Some(m)) => Libc::of_loaders(g, m),
                    _ => return Ok(Outcome::Need(needs)),
                }
            }
        };
        let libc_version = ready(self.libc_version(libc, &dpkg, &apk)?, &mut needs).flatten();
        let python = ready(self.python(family, &dpkg, &apk)?, &mut needs).flatten();
        if !needs.is_empty() {
            return Ok(Outcome::Need(needs));
        }
        Ok(Outcome::Ready(Facts {
            passwd,
            group,
            shadow,
            gshadow,
            os_release,
            home,
            libc,
            libc_version,
            python,
        }))
    }

    /// apk's database, where it is.
    fn apk(&self) -> Result<Outcome<Option<Scanned>>, FactsError> {
        for path in APK_INSTALLED {
            match self.scanned(path, ScanKind::Apk)? {
                Outcome::Ready(None) => {}
                decided => return Ok(decided),
            }
        }
        Ok(Outcome::Ready(None))
    }

    /// The C library's major.minor: for glibc from the first `libc.so.6`
    /// found, else from dpkg's `libc6` or apk's `glibc`; for musl from
    /// apk's `musl`.
    fn libc_version(
        &self,
        libc: Option<Libc>,
        dpkg: &Packages,
        apk: &Packages,
    ) -> Result<Outcome<Option<(u32, u32)>>, FactsError> {
        let dpkg_version = |name: &str| dpkg.get(name).and_then(|v| major_minor(dpkg_upstream(v)));
        let apk_version = |name: &str| apk.get(name).and_then(|v| major_minor(apk_upstream(v)));
        Ok(Outcome::Ready(match libc {
            None => None,
            Some(Libc::Musl) => apk_version("musl"),
            Some(Libc::Glibc) => {
                let mut needs = Vec::new();
                for home in libc_so_homes() {
                    match self.scanned(&home, ScanKind::Glibc)? {
                        Outcome::Ready(found) => {
                            if let Some(v) = found.as_ref().and_then(Scanned::glibc) {
                                if needs.is_empty() {
                                    return Ok(Outcome::Ready(Some(v)));
                                }
                                // An earlier home is undecided: it may win.
                                break;
                            }
                        }
                        Outcome::Need(n) => needs.extend(n),
                    }
                }
                if !needs.is_empty() {
                    return Ok(Outcome::Need(needs));
                }
                dpkg_version("libc6").or_else(|| apk_version("glibc"))
            }
        }))
    }

    /// The CPython `python3` on the python images' `PATH` runs: in the
    /// first prefix that has one, the version `bin/python3` links to, else
    /// the newest.
    fn python(
        &self,
        family: OsFamily,
        dpkg: &Packages,
        apk: &Packages,
    ) -> Result<Outcome<Option<PythonFacts>>, FactsError> {
        for prefix in PYTHON_PREFIXES {
            let mut needs = Vec::new();
            let mut found = Vec::new();
            for minor in PYTHON_MINORS {
                let interpreter = format!("{prefix}/bin/python3.{minor}");
                let stdlib = format!("{prefix}/lib/python3.{minor}/os.py");
                let has_interpreter = ready(self.exists(&interpreter)?, &mut needs);
                let has_stdlib = ready(self.exists(&stdlib)?, &mut needs);
                if has_interpreter == Some(true) && has_stdlib == Some(true) {
                    found.push((minor, image_path(&interpreter)));
                }
            }
            let python3 = match self.resolve(&format!("{prefix}/bin/python3"))? {
                Outcome::Need(n) => {
                    needs.extend(kind_only(n));
                    None
                }
                Outcome::Ready(Resolved::Found { path, .. }) => Some(path),
                Outcome::Ready(_) => None,
            };
            if !needs.is_empty() {
                return Ok(Outcome::Need(needs));
            }
            let chosen = found
                .iter()
                .find(|(_, interpreter)| Some(interpreter) == python3.as_ref())
                .or(found.last());
            let Some((minor, interpreter)) = chosen.cloned() else {
                continue;
            };
            let layout = if *prefix == "usr/local" {
                PythonLayout::UsrLocal
            } else if family == OsFamily::Debian {
                PythonLayout::Debian
            } else {
                match self.is_dir(DEBIAN_DIST_PACKAGES)? {
                    Outcome::Need(n) => return Ok(Outcome::Need(n)),
                    Outcome::Ready(true) => PythonLayout::Debian,
                    Outcome::Ready(false) => PythonLayout::Usr,
                }
            };
            let package_version = match layout {
                PythonLayout::UsrLocal => None,
                PythonLayout::Debian => [
                    format!("python3.{minor}-minimal"),
                    format!("libpython3.{minor}-minimal"),
                ]
                .iter()
                .find_map(|name| dpkg.get(name))
                .map(|v| dpkg_upstream(v)),
                PythonLayout::Usr => apk.get("python3").map(|v| apk_upstream(v)),
            }
            // A package of another minor version is not this Python's.
            .filter(|v| major_minor(v) == Some((3, minor)))
            .map(str::to_owned);
            return Ok(Outcome::Ready(Some(PythonFacts {
                version: (3, minor),
                interpreter,
                layout,
                package_version,
            })));
        }
        Ok(Outcome::Ready(None))
    }

    /// What `kind` finds in the regular file `wanted` resolves to; `None`
    /// when it resolves to no regular file. The facts scanned for are
    /// optional, so an odd entry (a folder, a broken hard link) is no file,
    /// never an error.
    fn scanned(
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
                            return Ok(Outcome::Ready(None))
                        }
                        None => {
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
            Outcome::Need(needs) => Outcome::Need(kind_only(needs)),
            Outcome::Ready(Resolved::Found { rec, .. }) => {
                Outcome::Ready(!matches!(rec.kind, RecKind::Dir))
            }
            Outcome::Ready(Resolved::Absent | Resolved::ImplicitDir) => Outcome::Ready(false),
        })
    }

    /// Whether `wanted` resolves (through links) to a folder.
    fn is_dir(&self, wanted: &str) -> Result<Outcome<bool>, FactsError> {
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
fn ready<T>(outcome: Outcome<T>, needs: &mut Vec<Need>) -> Option<T> {
    match outcome {
        Outcome::Ready(v) => Some(v),
        Outcome::Need(n) => {
            needs.extend(n);
            None
        }
    }
}

/// Needs of a question about a path's kind: its content is not wanted.
fn kind_only(needs: Vec<Need>) -> Vec<Need> {
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

/// What a scanned file is read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum ScanKind {
    /// `libc.so.6`: the highest `GLIBC_X.Y` it defines.
    Glibc,
    /// dpkg's status file: the versions of the installed packages
    /// [`DbFormat::wants`] names.
    Dpkg,
    /// apk's installed database: the same.
    Apk,
}

/// Installed packages of interest, by name, with their versions as the
/// database spells them (`2.36-9+deb12u7`, `1.2.5-r0`).
type Packages = BTreeMap<String, String>;

/// What a scanner found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scanned {
    Glibc(Option<(u32, u32)>),
    Packages(Packages),
}

impl Scanned {
    fn glibc(&self) -> Option<(u32, u32)> {
        match self {
            Scanned::Glibc(v) => *v,
            Scanned::Packages(_) => None,
        }
    }

    fn into_packages(self) -> Packages {
        match self {
            Scanned::Packages(p) => p,
            Scanned::Glibc(_) => Packages::new(),
        }
    }
}

impl ScanKind {
    fn scanner(self) -> Scanner {
        match self {
            ScanKind::Glibc => Scanner::Glibc(GlibcScan::default()),
            ScanKind::Dpkg => Scanner::Db(DbScan::new(DbFormat::Dpkg)),
            ScanKind::Apk => Scanner::Db(DbScan::new(DbFormat::Apk)),
        }
    }

    /// Scans content already read whole.
    fn scan(self, bytes: &[u8]) -> Scanned {
        let mut scanner = self.scanner();
        scanner.feed(bytes);
        scanner.finish()
    }
}

/// A scanner fed a file's content in chunks of any size.
enum Scanner {
    Glibc(GlibcScan),
    Db(DbScan),
}

impl Scanner {
    fn feed(&mut self, chunk: &[u8]) {
        match self {
            Scanner::Glibc(s) => s.feed(chunk),
            Scanner::Db(s) => s.feed(chunk),
        }
    }

    fn finish(self) -> Scanned {
        match self {
            Scanner::Glibc(s) => Scanned::Glibc(s.highest),
            Scanner::Db(s) => Scanned::Packages(s.finish()),
        }
    }
}

const GLIBC_PREFIX: &[u8] = b"GLIBC_";

/// Finds the highest `GLIBC_X.Y` (or `GLIBC_X.Y.Z`) that stands as a
/// whole NUL-terminated string (after a NUL or at the start): how the
/// names of `libc.so.6`'s version definitions sit in its dynamic string
/// table. `GLIBC_PRIVATE` and the like do not count.
#[derive(Debug)]
struct GlibcScan {
    state: GlibcState,
    /// Whether the previous byte ended a string (or there was none).
    at_start: bool,
    highest: Option<(u32, u32)>,
}

impl Default for GlibcScan {
    fn default() -> Self {
        GlibcScan {
            state: GlibcState::Idle,
            at_start: true,
            highest: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum GlibcState {
    Idle,
    /// This many bytes of [`GLIBC_PREFIX`] matched.
    Prefix(usize),
    Major(Option<u32>),
    Minor(u32, Option<u32>),
    /// Major, minor, and whether the third number has a digit yet.
    Patch(u32, u32, bool),
}

impl GlibcScan {
    fn feed(&mut self, chunk: &[u8]) {
        use GlibcState::*;
        // `None` when the number would overflow: no version glibc has.
        let digit = |acc: Option<u32>, b: u8| {
            acc.unwrap_or(0)
                .checked_mul(10)?
                .checked_add(u32::from(b - b'0'))
        };
        for &b in chunk {
            let is_digit = b.is_ascii_digit();
            self.state = match self.state {
                Idle if self.at_start && b == GLIBC_PREFIX[0] => Prefix(1),
                Prefix(n) if GLIBC_PREFIX.get(n) == Some(&b) => {
                    if n + 1 == GLIBC_PREFIX.len() {
                        Major(None)
                    } else {
                        Prefix(n + 1)
                    }
                }
                Major(m) if is_digit => digit(m, b).map_or(Idle, |m| Major(Some(m))),
                Major(Some(m)) if b == b'.' => Minor(m, None),
                Minor(m, n) if is_digit => digit(n, b).map_or(Idle, |n| Minor(m, Some(n))),
                Minor(m, Some(n)) if b == b'.' => Patch(m, n, false),
                Minor(m, Some(n)) | Patch(m, n, true) if b == 0 => {
                    self.highest = self.highest.max(Some((m, n)));
                    Idle
                }
                Patch(m, n, _) if is_digit => Patch(m, n, true),
                _ => Idle,
            };
            self.at_start = b == 0;
        }
    }
}

/// The package databases hoist reads. Both are stanzas of fields, one
/// per line, separated by blank lines: dpkg's status file is deb822
/// (`Package: libc6`, continuation lines start with a space), apk's
/// installed database has one-letter keys (`P:musl`, `V:1.2.5-r0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DbFormat {
    Dpkg,
    Apk,
}

impl DbFormat {
    /// The packages whose versions hoist wants: the C library's and
    /// CPython's.
    fn wants(self, name: &str) -> bool {
        match self {
            DbFormat::Dpkg => {
                let python = |prefix: &str| {
                    name.strip_prefix(prefix)
                        .and_then(|n| n.strip_suffix("-minimal"))
                        .and_then(|minor| minor.parse::<u32>().ok())
                        .is_some_and(|minor| PYTHON_MINORS.contains(&minor))
                };
                name == "libc6" || python("python3.") || python("libpython3.")
            }
            DbFormat::Apk => matches!(name, "musl" | "glibc" | "python3"),
        }
    }
}

/// Lines longer than this are no field hoist reads (descriptions, file
/// lists); their bytes are dropped as they stream by.
const MAX_DB_LINE: usize = 4096;

/// Streams a package database, keeping only the installed versions of
/// the packages [`DbFormat::wants`] names.
#[derive(Debug)]
struct DbScan {
    format: DbFormat,
    line: Vec<u8>,
    /// The current line is longer than [`MAX_DB_LINE`].
    overlong: bool,
    name: Option<String>,
    version: Option<String>,
    /// dpkg keeps removed packages whose configuration files remain:
    /// only `Status: <want> <flag> installed` is installed.
    installed: bool,
    found: Packages,
}

impl DbScan {
    fn new(format: DbFormat) -> DbScan {
        DbScan {
            format,
            line: Vec::new(),
            overlong: false,
            name: None,
            version: None,
            installed: false,
            found: Packages::new(),
        }
    }

    fn feed(&mut self, mut chunk: &[u8]) {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            self.push(&chunk[..end]);
            self.end_line();
            chunk = &chunk[end + 1..];
        }
        self.push(chunk);
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.overlong {
            return;
        }
        if self.line.len() + bytes.len() > MAX_DB_LINE {
            self.overlong = true;
            self.line.clear();
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn end_line(&mut self) {
        if std::mem::take(&mut self.overlong) {
            // Not blank, so the stanza goes on.
            return;
        }
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.end_stanza();
        } else {
            self.field(&line);
        }
        // Keep the allocation for the next line.
        self.line = line;
        self.line.clear();
    }

    fn field(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let (key, value) = match self.format {
            // A continuation line belongs to a field hoist does not read.
            DbFormat::Dpkg if text.starts_with([' ', '\t']) => return,
            DbFormat::Dpkg | DbFormat::Apk => match text.split_once(':') {
                Some((k, v)) => (k, v.trim()),
                None => return,
            },
        };
        match (self.format, key) {
            (DbFormat::Dpkg, k) if k.eq_ignore_ascii_case("Package") => {
                self.name = Some(value.to_owned())
            }
            (DbFormat::Dpkg, k) if k.eq_ignore_ascii_case("Version") => {
                self.version = Some(value.to_owned())
            }
            (DbFormat::Dpkg, k) if k.eq_ignore_ascii_case("Status") => {
                self.installed = value.split_ascii_whitespace().nth(2) == Some("installed")
            }
            (DbFormat::Apk, "P") => self.name = Some(value.to_owned()),
            (DbFormat::Apk, "V") => self.version = Some(value.to_owned()),
            _ => {}
        }
    }

    fn end_stanza(&mut self) {
        let installed = std::mem::take(&mut self.installed) || self.format == DbFormat::Apk;
        if let (Some(name), Some(version)) = (self.name.take(), self.version.take()) {
            // A second architecture's copy (libc6:i386) has the same
            // version, dpkg insists: the first one stays.
            if installed && self.format.wants(&name) {
                self.found.entry(name).or_insert(version);
            }
        }
    }

    fn finish(mut self) -> Packages {
        if !self.line.is_empty() || self.overlong {
            self.end_line();
        }
        self.end_stanza();
        self.found
    }
}

/// The upstream part of a Debian version, `[epoch:]upstream[-revision]`
/// (deb-version(7)): `3.11.2` of `3.11.2-6+deb12u2`.
fn dpkg_upstream(version: &str) -> &str {
    let version = match version.split_once(':') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => {
            rest
        }
        _ => version,
    };
    version
        .rsplit_once('-')
        .map_or(version, |(upstream, _)| upstream)
}

/// The upstream part of an apk version, without the package release:
/// `1.2.5` of `1.2.5-r0`.
fn apk_upstream(version: &str) -> &str {
    match version.rsplit_once("-r") {
        Some((upstream, release))
            if !release.is_empty() && release.bytes().all(|b| b.is_ascii_digit()) =>
        {
            upstream
        }
        _ => version,
    }
}

/// The leading `major.minor` of a version: (2, 36) of `2.36`, (1, 2) of
/// `1.2.5`, (3, 14) of `3.14.0~rc1`.
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let (major, rest) = version.split_once('.')?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    Some((number(major)?, number(&rest[..end])?))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::layer::reader::tests::RawTar;
    use crate::layer::{Compression, LayerWriter};

    const ALPINE_OS_RELEASE: &[u8] = b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\nHOME_URL=\"https://alpinelinux.org/\"\nBUG_REPORT_URL=\"https://gitlab.alpinelinux.org/alpine/aports/-/issues\"\n";
    const DEBIAN_OS_RELEASE: &[u8] = b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\nHOME_URL=\"https://www.debian.org/\"\n";
    /// Alpine's installed database, as in alpine:3.20 with python3 added.
    const ALPINE_APK_DB: &[u8] = b"C:Q1PS2iNeHDH3BF6TgqSMu/pcc3XIY=\nP:musl\nV:1.2.5-r0\nA:x86_64\nS:411527\nI:657408\nT:the musl c library (libc) implementation\nU:https://musl.libc.org/\nL:MIT\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\nR:libc.musl-x86_64.so.1\n\nC:Q1abc=\nP:busybox\nV:1.36.1-r29\n\nC:Q1def=\nP:python3\nV:3.12.3-r1\nA:x86_64\nT:A high-level scripting language\nD:so:libc.musl-x86_64.so.1 so:libpython3.12.so.1.0\n";
    /// dpkg's status file, as in Debian bookworm with python3 installed,
    /// shortened, with a removed Python whose configuration files remain.
    const DEBIAN_DPKG_STATUS: &[u8] = b"Package: libc6\nStatus: install ok installed\nPriority: optional\nSection: libs\nArchitecture: amd64\nMulti-Arch: same\nSource: glibc\nVersion: 2.36-9+deb12u7\nDescription: GNU C Library: Shared libraries\n Contains the standard libraries that are used by nearly all programs on\n the system.\n\nPackage: libpython3.11-minimal\nStatus: install ok installed\nVersion: 3.11.2-6+deb12u2\nConffiles:\n /etc/python3.11/sitecustomize.py 0123456789abcdef\n\nPackage: python3.11-minimal\nStatus: install ok installed\nVersion: 3.11.2-6+deb12u2\n\nPackage: python3.9-minimal\nStatus: deinstall ok config-files\nVersion: 3.9.2-1\n\nPackage: python3-minimal\nStatus: install ok installed\nSource: python3-defaults\nVersion: 3.11.2-1+b1\n";

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
    }

    /// A layer from the deterministic writer (entries sorted here).
    fn layer(store: &Store, entries: &[E]) -> Descriptor {
        let mut sorted: Vec<&E> = entries.iter().collect();
        let name = |e: &E| match e {
            E::Dir(n) | E::File(n, _) => n.to_string(),
        };
        sorted.sort_by_key(|e| name(e));
        let mut w = LayerWriter::new(store, Compression::Zstd, 0).unwrap();
        for e in sorted {
            match e {
                E::Dir(n) => w.dir(&p(n), EntryMeta::root(0o755)).unwrap(),
                E::File(n, c) => w
                    .file(&p(n), EntryMeta::root(0o644), c.len() as u64, &mut &c[..])
                    .unwrap(),
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

    /// Python's version, interpreter, layout and package version.
    type PyWant = ((u32, u32), &'static str, PythonLayout, Option<&'static str>);

    /// A base with the layers and what its facts say of libc and Python.
    struct PyCase {
        name: &'static str,
        layers: Vec<Vec<u8>>,
        libc: Option<Libc>,
        libc_version: Option<(u32, u32)>,
        /// version, interpreter, layout, package version
        python: Option<PyWant>,
    }

    fn check(cases: Vec<PyCase>) {
        for c in cases {
            let (_d, s) = store();
            let layers: Vec<Descriptor> = c.layers.iter().map(|t| raw_layer(&s, t)).collect();
            let facts = read_facts(&s, &layers).unwrap_or_else(|e| panic!("{}: {e}", c.name));
            assert_eq!(facts.libc, c.libc, "{}", c.name);
            assert_eq!(facts.libc_version, c.libc_version, "{}", c.name);
            let want = c
                .python
                .map(|(version, interpreter, layout, package)| PythonFacts {
                    version,
                    interpreter: p(interpreter),
                    layout,
                    package_version: package.map(str::to_owned),
                });
            assert_eq!(facts.python, want, "{}", c.name);
        }
    }

    /// A Debian bookworm root as mmdebstrap leaves it: merged-usr links,
    /// the loader, libc.so.6 and dpkg's status.
    fn bookworm(t: &mut RawTar) -> &mut RawTar {
        t.symlink("bin", "usr/bin")
            .symlink("lib", "usr/lib")
            .symlink("lib64", "usr/lib64")
            .symlink("etc/os-release", "../usr/lib/os-release")
            .file("usr/lib/os-release", DEBIAN_OS_RELEASE)
            .symlink(
                "usr/lib64/ld-linux-x86-64.so.2",
                "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            )
            .file("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", b"\x7fELF")
            .file(
                "usr/lib/x86_64-linux-gnu/libc.so.6",
                b"\x7fELF\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.36\0GLIBC_PRIVATE\0",
            )
            .file("var/lib/dpkg/status", DEBIAN_DPKG_STATUS)
    }

    /// Debian's python3 package on top of [`bookworm`].
    fn debian_python3(t: &mut RawTar) -> &mut RawTar {
        t.symlink("usr/bin/python3", "python3.11")
            .file("usr/bin/python3.11", b"\x7fELF")
            .file("usr/lib/python3.11/os.py", b"")
            .dir("usr/lib/python3/dist-packages/")
    }

    /// The python image's build in /usr/local.
    fn usr_local_python(t: &mut RawTar, minor: u32) -> &mut RawTar {
        t.file(&format!("usr/local/bin/python3.{minor}"), b"\x7fELF")
            .file(&format!("usr/local/lib/python3.{minor}/os.py"), b"")
    }

    #[test]
    fn python_layouts() {
        use PythonLayout::*;
        let glibc = (Some(Libc::Glibc), Some((2, 36)));
        let cases = vec![
            PyCase {
                name: "python image: /usr/local on Debian",
                layers: vec![
                    bookworm(&mut RawTar::new()).finish(),
                    usr_local_python(&mut RawTar::new(), 12)
                        .symlink("usr/local/bin/python3", "python3.12")
                        .dir("usr/local/lib/python3.12/site-packages/")
                        .finish(),
                ],
                libc: glibc.0,
                libc_version: glibc.1,
                python: Some(((3, 12), "usr/local/bin/python3.12", UsrLocal, None)),
            },
            PyCase {
                name: "Debian's python3",
                layers: vec![
                    bookworm(&mut RawTar::new()).finish(),
                    debian_python3(&mut RawTar::new()).finish(),
                ],
                libc: glibc.0,
                libc_version: glibc.1,
                python: Some(((3, 11), "usr/bin/python3.11", Debian, Some("3.11.2"))),
            },
            PyCase {
                name: "Debian's by its dist-packages, without os-release or dpkg",
                layers: vec![debian_python3(&mut RawTar::new()).finish()],
                libc: None,
                libc_version: None,
                python: Some(((3, 11), "usr/bin/python3.11", Debian, None)),
            },
            PyCase {
                name: "Alpine's python3",
                layers: vec![RawTar::new()
                    .file("etc/os-release", ALPINE_OS_RELEASE)
                    .file("lib/ld-musl-x86_64.so.1", b"\x7fELF")
                    .file("lib/apk/db/installed", ALPINE_APK_DB)
                    .symlink("usr/bin/python3", "python3.12")
                    .file("usr/bin/python3.12", b"\x7fELF")
                    .file("usr/lib/python3.12/os.py", b"")
                    .finish()],
                libc: Some(Libc::Musl),
                libc_version: Some((1, 2)),
                python: Some(((3, 12), "usr/bin/python3.12", Usr, Some("3.12.3"))),
            },
            PyCase {
                name: "a package of another minor version is not this Python's",
                layers: vec![RawTar::new()
                    .file("etc/os-release", ALPINE_OS_RELEASE)
                    .file("lib/apk/db/installed", ALPINE_APK_DB)
                    .file("usr/bin/python3.13", b"\x7fELF")
                    .file("usr/lib/python3.13/os.py", b"")
                    .finish()],
                libc: Some(Libc::Musl),
                libc_version: Some((1, 2)),
                python: Some(((3, 13), "usr/bin/python3.13", Usr, None)),
            },
            PyCase {
                name: "/usr/local before /usr",
                layers: vec![
                    bookworm(&mut RawTar::new()).finish(),
                    debian_python3(&mut RawTar::new()).finish(),
                    usr_local_python(&mut RawTar::new(), 10).finish(),
                ],
                libc: glibc.0,
                libc_version: glibc.1,
                python: Some(((3, 10), "usr/local/bin/python3.10", UsrLocal, None)),
            },
            PyCase {
                name: "the one python3 links to",
                layers: vec![
                    usr_local_python(usr_local_python(&mut RawTar::new(), 11), 12)
                        .symlink("usr/local/bin/python3", "/usr/local/bin/python3.11")
                        .finish(),
                ],
                libc: None,
                libc_version: None,
                python: Some(((3, 11), "usr/local/bin/python3.11", UsrLocal, None)),
            },
            PyCase {
                name: "else the newest (numerically)",
                layers: vec![
                    usr_local_python(usr_local_python(&mut RawTar::new(), 9), 10)
                        .symlink("usr/local/bin/python3", "python3.8")
                        .finish(),
                ],
                libc: None,
                libc_version: None,
                python: Some(((3, 10), "usr/local/bin/python3.10", UsrLocal, None)),
            },
            PyCase {
                name: "a whited-out standard library",
                layers: vec![
                    bookworm(&mut RawTar::new()).finish(),
                    debian_python3(&mut RawTar::new()).finish(),
                    usr_local_python(&mut RawTar::new(), 12).finish(),
                    RawTar::new()
                        .file("usr/local/lib/.wh.python3.12", b"")
                        .finish(),
                ],
                libc: glibc.0,
                libc_version: glibc.1,
                python: Some(((3, 11), "usr/bin/python3.11", Debian, Some("3.11.2"))),
            },
            PyCase {
                name: "whited-out interpreters",
                layers: vec![
                    debian_python3(&mut RawTar::new()).finish(),
                    usr_local_python(&mut RawTar::new(), 12).finish(),
                    RawTar::new()
                        .file("usr/bin/.wh.python3.11", b"")
                        .file("usr/local/bin/.wh..wh..opq", b"")
                        .finish(),
                ],
                libc: None,
                libc_version: None,
                python: None,
            },
            PyCase {
                name: "an interpreter without its standard library, and the reverse",
                layers: vec![RawTar::new()
                    .file("usr/local/bin/python3.12", b"\x7fELF")
                    .file("usr/lib/python3.11/os.py", b"")
                    .finish()],
                libc: None,
                libc_version: None,
                python: None,
            },
            PyCase {
                name: "versions hoist does not look for",
                layers: vec![
                    usr_local_python(usr_local_python(&mut RawTar::new(), 5), 16).finish(),
                ],
                libc: None,
                libc_version: None,
                python: None,
            },
            PyCase {
                name: "an interpreter that is a link elsewhere (a second pass)",
                layers: vec![RawTar::new()
                    .symlink("usr/local/bin/python3.13", "/opt/python/bin/python3.13")
                    .file("opt/python/bin/python3.13", b"\x7fELF")
                    .file("usr/local/lib/python3.13/os.py", b"")
                    .finish()],
                libc: None,
                libc_version: None,
                python: Some(((3, 13), "usr/local/bin/python3.13", UsrLocal, None)),
            },
            PyCase {
                name: "an interpreter that is a folder is none",
                layers: vec![RawTar::new()
                    .dir("usr/local/bin/python3.12/")
                    .file("usr/local/lib/python3.12/os.py", b"")
                    .finish()],
                libc: None,
                libc_version: None,
                python: None,
            },
        ];
        check(cases);
    }

    #[test]
    fn libc_version_sources() {
        let big = {
            let mut b = vec![0; MAX_FACT_FILE_BYTES as usize + 1];
            b.extend_from_slice(b"GLIBC_2.41\0");
            b
        };
        let glibc_os = |id: &str| format!("ID={id}\n").into_bytes();
        let cases = vec![
            PyCase {
                name: "libc.so.6 behind merged-usr, over dpkg's libc6",
                layers: vec![bookworm(&mut RawTar::new())
                    .file(
                        "var/lib/dpkg/status",
                        b"Package: libc6\nStatus: install ok installed\nVersion: 2.31-13\n",
                    )
                    .finish()],
                libc: Some(Libc::Glibc),
                libc_version: Some((2, 36)),
                python: None,
            },
            PyCase {
                name: "libc.so.6 linked to libc-2.31.so (before glibc 2.34)",
                layers: vec![RawTar::new()
                    .file("etc/os-release", DEBIAN_OS_RELEASE)
                    .symlink("lib/x86_64-linux-gnu/libc.so.6", "libc-2.31.so")
                    .file(
                        "lib/x86_64-linux-gnu/libc-2.31.so",
                        b"GLIBC_2.30\0GLIBC_2.31\0",
                    )
                    .finish()],
                libc: Some(Libc::Glibc),
                libc_version: Some((2, 31)),
                python: None,
            },
            PyCase {
                name: "libc.so.6 larger than a fact file is streamed, not kept",
                layers: vec![RawTar::new()
                    .file("etc/os-release", &glibc_os("fedora"))
                    .file("lib64/ld-linux-x86-64.so.2", b"")
                    .file("lib64/libc.so.6", &big)
                    .finish()],
                libc: Some(Libc::Glibc),
                libc_version: Some((2, 41)),
                python: None,
            },
            PyCase {
                name: "libc.so.6 a hard link in its layer",
                layers: vec![RawTar::new()
                    .file("etc/os-release", DEBIAN_OS_RELEASE)
                    .file("lib/aarch64-linux-gnu/libc-2.39.so", b"GLIBC_2.39\0")
                    .hardlink("lib/aarch64-linux-gnu/libc.so.6", "lib/aarch64-linux-gnu/libc-2.39.so")
                    .finish()],
                libc: Some(Libc::Glibc),
                libc_version: Some((2, 39)),
                python: None,
            },
            PyCase {
                name: "libc.so.6 a hard link to a file an upper layer replaced",
                layers: vec![
                    RawTar::new()
                        .file("etc/os-release", DEBIAN_OS_RELEASE)
                        .file("usr/lib/libc.so.6", b"GLIBC_2.39\0")
                        .hardlink("lib64/libc.so.6", "usr/lib/libc.so.6")
                        .finish(),
                    RawTar::new()
                        .file("usr/lib/libc.so.6", b"GLIBC_2.1\0")
                        .finish(),
                ],
                libc: Some(Libc::Glibc),
                libc_version: Some((2, 39)),
                python: None,
            },
            PyCase {
                name: "libc.so.6 whited out: dpkg's libc6",
                layers: vec![
                    bookworm(&mut RawTar::new()).finish(),
                    RawTar::new()
                        .file("usr/lib/x86_64-linux-gnu/.wh.libc.so.6", b"")
                        .finish(),
                ],
                libc: Some(Libc::Glibc),
                libc_version: Some((2, 36)),
                python: None,
            },
            PyCase {
                name: "libc.so.6 without version names: dpkg's libc6 with an epoch",
                layers: vec![RawTar::new()
                    .file("etc/os-release", b"ID=ubuntu\nID_LIKE=debian\n")
                    .file("usr/lib/x86_64-linux-gnu/libc.so.6", b"GLIBC_PRIVATE\0")
                    .file(
                        "var/lib/dpkg/status",
                        b"Package: libc6\nStatus: install ok installed\nVersion: 1:2.39-0ubuntu8.3\n",
                    )
                    .finish()],
                libc: Some(Libc::Glibc),
                libc_version: Some((2, 39)),
                python: None,
            },
            PyCase {
                name: "apk's glibc (Wolfi)",
                layers: vec![RawTar::new()
                    .file("etc/os-release", &glibc_os("wolfi"))
                    .file("lib64/ld-linux-x86-64.so.2", b"")
                    .file("usr/lib/apk/db/installed", b"P:glibc\nV:2.40-r3\n\nP:python3\n")
                    .symlink("lib", "usr/lib")
                    .finish()],
                libc: Some(Libc::Glibc),
                libc_version: Some((2, 40)),
                python: None,
            },
            PyCase {
                name: "apk's musl",
                layers: vec![RawTar::new()
                    .file("etc/os-release", ALPINE_OS_RELEASE)
                    .file("lib/apk/db/installed", ALPINE_APK_DB)
                    .finish()],
                libc: Some(Libc::Musl),
                libc_version: Some((1, 2)),
                python: None,
            },
            PyCase {
                name: "musl without apk's database",
                layers: vec![RawTar::new()
                    .file("lib/ld-musl-x86_64.so.1", b"")
                    .file("lib/libc.so.6", b"GLIBC_2.36\0")
                    .finish()],
                libc: Some(Libc::Musl),
                libc_version: None,
                python: None,
            },
            PyCase {
                name: "glibc that nothing dates",
                layers: vec![RawTar::new()
                    .file("etc/os-release", DEBIAN_OS_RELEASE)
                    .file("var/lib/dpkg/status", b"Package: libc6\nStatus: deinstall ok config-files\nVersion: 2.36-9\n")
                    .finish()],
                libc: Some(Libc::Glibc),
                libc_version: None,
                python: None,
            },
            PyCase {
                name: "no C library: no version",
                layers: vec![RawTar::new().file("lib/libc.so.6", b"GLIBC_2.36\0").finish()],
                libc: None,
                libc_version: None,
                python: None,
            },
        ];
        check(cases);
    }

    #[test]
    fn glibc_scan_table() {
        type Case = (&'static [u8], Option<(u32, u32)>);
        let cases: &[Case] = &[
            (b"GLIBC_2.34\0GLIBC_2.36\0", Some((2, 36))),
            (b"\x7fELF\0GLIBC_2.2.5\0GLIBC_2.3\0", Some((2, 3))),
            (b"GLIBC_2.39\0GLIBC_2.4\0", Some((2, 39))),
            (
                b"GLIBC_PRIVATE\0GLIBC_2.17\0GLIBC_ABI_DT_RELR\0",
                Some((2, 17)),
            ),
            (b"GLIBC_2.36.1\0", Some((2, 36))),
            (b"GGLIBC_2.1\0GLIBC_GLIBC_2.2\0", None),
            (b"xGLIBC_2.40\0", None),
            (b"GLIBC_2.40", None),
            (b"GLIBC_2.\0", None),
            (b"GLIBC_.5\0", None),
            (b"GLIBC_2.36x\0", None),
            (b"GLIBC_2.36.\0", None),
            (b"GLIBC_99999999999.1\0GLIBC_2.99999999999\0", None),
            (b"", None),
        ];
        for (bytes, want) in cases {
            let shown = String::from_utf8_lossy(bytes);
            assert_eq!(
                ScanKind::Glibc.scan(bytes),
                Scanned::Glibc(*want),
                "{shown}"
            );
            // Any chunking finds the same.
            for size in [1, 3, 7] {
                let mut scanner = ScanKind::Glibc.scanner();
                bytes.chunks(size).for_each(|c| scanner.feed(c));
                assert_eq!(scanner.finish(), Scanned::Glibc(*want), "{shown} by {size}");
            }
        }
    }

    #[test]
    fn package_db_table() {
        let long = format!(
            "Package: python3.12-minimal\nStatus: install ok installed\nDescription: {}\nVersion: 3.12.1-1\n\n",
            "x".repeat(MAX_DB_LINE * 2)
        );
        type Case<'a> = (ScanKind, &'a [u8], &'static [(&'static str, &'static str)]);
        let cases: Vec<Case> = vec![
            (
                ScanKind::Dpkg,
                DEBIAN_DPKG_STATUS,
                &[
                    ("libc6", "2.36-9+deb12u7"),
                    ("libpython3.11-minimal", "3.11.2-6+deb12u2"),
                    ("python3.11-minimal", "3.11.2-6+deb12u2"),
                ],
            ),
            (
                ScanKind::Dpkg,
                // Any case of key, no final newline, a second architecture.
                b"package: libc6\nstatus: install ok installed\nversion: 2.36-9\n\nPackage: libc6\nStatus: install ok installed\nVersion: 2.35-1",
                &[("libc6", "2.36-9")],
            ),
            (
                ScanKind::Dpkg,
                long.as_bytes(),
                &[("python3.12-minimal", "3.12.1-1")],
            ),
            (
                ScanKind::Dpkg,
                // Half-installed, no status, a version in a continuation.
                b"Package: libc6\nStatus: install reinstreq half-installed\nVersion: 2.36-9\n\nPackage: python3.11-minimal\nVersion: 3.11.2-6\n\nPackage: libpython3.12-minimal\nStatus: install ok installed\nDescription: x\n Version: 3.12.0-1\n",
                &[],
            ),
            (
                ScanKind::Apk,
                ALPINE_APK_DB,
                &[("musl", "1.2.5-r0"), ("python3", "3.12.3-r1")],
            ),
            (
                ScanKind::Apk,
                b"P:glibc\nV:2.40-r3\n\n\n\nP:nameless-version\n\nV:1.0\n",
                &[("glibc", "2.40-r3")],
            ),
            (ScanKind::Apk, b"", &[]),
        ];
        for (kind, bytes, want) in cases {
            let want: Packages = want
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]);
            assert_eq!(kind.scan(bytes), Scanned::Packages(want.clone()), "{shown}");
            for size in [1, 5, 4096] {
                let mut scanner = kind.scanner();
                bytes.chunks(size).for_each(|c| scanner.feed(c));
                let got = scanner.finish();
                assert_eq!(got, Scanned::Packages(want.clone()), "{shown} by {size}");
            }
        }
    }

    #[test]
    fn version_parts_table() {
        let cases = [
            ("2.36-9+deb12u7", "2.36", Some((2, 36))),
            ("1:2.39-0ubuntu8.3", "2.39", Some((2, 39))),
            ("3.11.2-6+deb12u2", "3.11.2", Some((3, 11))),
            ("3.14.0~rc1-1", "3.14.0~rc1", Some((3, 14))),
            ("2.36", "2.36", Some((2, 36))),
            ("a:1.2-3-4", "a:1.2-3", None),
            ("1.2", "1.2", Some((1, 2))),
            ("12", "12", None),
            ("+1.2", "+1.2", None),
        ];
        for (version, upstream, parts) in cases {
            assert_eq!(dpkg_upstream(version), upstream, "{version}");
            assert_eq!(major_minor(upstream), parts, "{version}");
        }
        let apk = [
            ("1.2.5-r0", "1.2.5"),
            ("3.12.3-r12", "3.12.3"),
            ("2.40", "2.40"),
            ("1.0-rc1", "1.0-rc1"),
            ("1.0-r", "1.0-r"),
        ];
        for (version, upstream) in apk {
            assert_eq!(apk_upstream(version), upstream, "{version}");
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
                .file("lib/apk/db/installed", ALPINE_APK_DB)
                .file("usr/bin/python3.12", b"")
                .file("usr/lib/python3.12/os.py", b"")
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
        assert_eq!(first.libc_version, Some((1, 2)));
        assert_eq!(
            first.python.as_ref().map(|p| p.package_version.as_deref()),
            Some(Some("3.12.3"))
        );
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
    fn cache_form_round_trips_every_fact() {
        let python = |layout, package: Option<&str>| PythonFacts {
            version: (3, 9),
            interpreter: p("usr/local/bin/python3.9"),
            layout,
            package_version: package.map(str::to_owned),
        };
        let cases = [
            Facts::default(),
            Facts {
                passwd: Some(FileFact {
                    content: b"\xff\0".to_vec(),
                    meta: EntryMeta::root(0o600),
                }),
                os_release: Some(OsRelease::parse(DEBIAN_OS_RELEASE)),
                home: Some(EntryMeta::root(0o755)),
                libc: Some(Libc::Glibc),
                libc_version: Some((2, 36)),
                python: Some(python(PythonLayout::UsrLocal, None)),
                ..Facts::default()
            },
            Facts {
                libc: Some(Libc::Musl),
                python: Some(python(PythonLayout::Debian, Some("3.9.2"))),
                ..Facts::default()
            },
            Facts {
                python: Some(python(PythonLayout::Usr, Some("3.9.18"))),
                ..Facts::default()
            },
        ];
        for facts in cases {
            let json = serde_json::to_vec(&cache::Facts::from(&facts)).unwrap();
            let back = serde_json::from_slice::<cache::Facts>(&json).unwrap();
            assert_eq!(back.into_facts(), Some(facts));
        }
    }

    #[test]
    fn a_cache_entry_that_does_not_read_back_is_a_miss() {
        let (_d, s) = store();
        let base = raw_layer(
            &s,
            &RawTar::new()
                .file("usr/local/bin/python3.12", b"")
                .file("usr/local/lib/python3.12/os.py", b"")
                .finish(),
        );
        let manifest = Digest::of(b"a manifest");
        let name = format!("v{FACTS_CACHE_VERSION}-{}", manifest.hex());
        let mut stored = serde_json::to_value(cache::Facts::from(&Facts::default())).unwrap();
        stored["python"] = serde_json::json!({
            "version": [3, 12],
            "interpreter": "usr/local/bin/python3.12",
            "layout": "a layout from the future",
            "package_version": null,
        });
        s.put_key(FACTS_KEY_KIND, &name, stored.to_string().as_bytes())
            .unwrap();
        let mut fetched = 0;
        let mut fetch = || -> Result<(), FactsError> {
            fetched += 1;
            Ok(())
        };
        let facts = read_facts_cached(&s, &manifest, &[base], &mut fetch).unwrap();
        assert_eq!(fetched, 1);
        assert_eq!(facts.python.map(|p| p.layout), Some(PythonLayout::UsrLocal));
        // And it was rewritten.
        let again = s.get_key(FACTS_KEY_KIND, &name).unwrap().unwrap();
        let again = serde_json::from_slice::<cache::Facts>(&again).unwrap();
        assert!(again.into_facts().is_some());
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
