//! What a base image's filesystem says: its users and groups, its
//! os-release, its `/home`, which C library its programs use and at which
//! version, and which CPython it holds.
//!
//! hoist never unpacks a base. To learn these facts it streams the base's
//! layer tars through the safe reader ([`crate::layer::reader`]), top layer
//! first, and answers each question as overlayfs would for the merged
//! tree, reading layers no further down than needed. The answers are
//! pulled together by [`read_facts`]; [`read_facts_cached`] keeps them in
//! the store, so a rebuild on the same base reads no layer at all.
//!
//! The folder is shaped so that how a path is found and what a file means
//! stay apart:
//!
//! - `merged.rs` is the engine: the overlay view of the layer tars
//!   (whiteouts, opaque folders, symbolic and hard links resolved inside
//!   the image) in passes that collect only the paths asked for. It knows
//!   nothing of what any path means.
//! - `os_release.rs`, `libc.rs`, `python.rs` and `pkgdb.rs` (dpkg's and
//!   apk's databases) each know where their files live and what they
//!   mean, and ask the engine. This file asks for the account files
//!   (`/etc/passwd`, `/etc/group` and their shadows, `/home`) itself:
//!   they are kept whole, and reading what they say (and writing the user
//!   layer) is the user step's, so there is no accounts module here yet.
//! - `scanners.rs` names the streaming scanners a pass feeds a large file
//!   through (`libc.so.6`, the package databases) when only a version is
//!   wanted from it, never its content.
//! - `cache.rs` is the facts' entry in the store, keyed by the base's
//!   manifest digest.
//! - `fixtures.rs` (tests only) holds the hand-made bases the modules'
//!   tests share.
//!
//! A question the layers read so far cannot answer says what the next
//! pass must collect; [`read_facts`] runs passes until every question is
//! answered, at most [`MAX_SCANS`] times.
//!
//! Memory stays small: content is kept only for the wanted files, only
//! from the topmost layer that decides them, and only up to
//! [`MAX_FACT_FILE_BYTES`]; a larger wanted file is an error naming it.

mod cache;
#[cfg(test)]
mod fixtures;
mod libc;
mod merged;
mod node;
mod os_release;
mod pkgdb;
mod python;
mod scanners;

use crate::digest::Digest;
use crate::image::Descriptor;
use crate::layer::reader::LayerReadError;
use crate::layer::{EntryMeta, ImagePath};
use crate::store::{Store, StoreError};

pub use cache::{path_kinds_cached, read_facts_cached};
pub use libc::Libc;
pub use os_release::{OsFamily, OsRelease};
pub use python::{PythonFacts, PythonLayout};

use merged::{image_path, ready, Need, Outcome, RecKind, Resolved, Scan, Wants};
use scanners::{ScanKind, Scanned};

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
const SHELL: &str = "bin/sh";

/// The paths collected in the first pass.
const FIRST_PASS: &[&str] = &[
    PASSWD,
    GROUP,
    SHADOW,
    GSHADOW,
    os_release::OS_RELEASE,
    os_release::OS_RELEASE_FALLBACK,
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
    /// The `node` binary: the first on the images' `PATH`, else where
    /// distroless puts it (`/nodejs/bin/node`); `None` when there is none.
    pub node: Option<ImagePath>,
    /// `/bin/sh` is there (through links): shell-form commands can run.
    pub shell: bool,
    /// The distribution's installed packages (dpkg's status and status.d
    /// records, or apk's database), by name, sorted.
    pub packages: Vec<OsPackage>,
}

/// A package the base's distribution installed, as its database says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsPackage {
    pub name: String,
    /// As the database spells it: `2.36-9+deb12u7`, `1.2.5-r0`.
    pub version: String,
    pub manager: PackageManager,
}

/// Which package database a package came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    Dpkg,
    Apk,
}

impl PackageManager {
    pub fn as_str(self) -> &'static str {
        match self {
            PackageManager::Dpkg => "dpkg",
            PackageManager::Apk => "apk",
        }
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

/// Reads the facts of a base from its layers, given bottom-first as in its
/// manifest. Their blobs must be in `store`.
pub fn read_facts(store: &Store, layers: &[Descriptor]) -> Result<Facts, FactsError> {
    read_facts_passes(store, layers).map(|(facts, _)| facts)
}

/// [`read_facts`], and how many passes over the layers it took.
fn read_facts_passes(store: &Store, layers: &[Descriptor]) -> Result<(Facts, usize), FactsError> {
    let mut wants = first_pass();

    let mut last_need = None;
    for pass in 1..=MAX_SCANS {
        let scan = Scan::run(store, layers, &wants)?;
        let needs = match facts(&scan)? {
            Outcome::Ready(facts) => return Ok((facts, pass)),
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
            Some(
                Need::Path(p)
                | Need::KindOnly(p)
                | Need::Scan(p, _)
                | Need::Link(_, p)
                | Need::Children(p, _),
            ) => p.to_string(),
            None => "/".to_owned(),
        },
    })
}

/// What a path is in the merged tree of a stack of layers, links
/// followed inside the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathKind {
    Absent,
    /// A folder: its entry's metadata, or a folder made only because a
    /// layer holds files below it (0755, root).
    Dir(EntryMeta),
    /// A file, link target that is not a folder, or special file.
    Other,
}

/// What each of `paths` (absolute or relative to the root) is in the
/// merged tree of `layers`, read with the same engine as the facts, so a
/// Dockerfile's "is the destination a folder" is answered as a runtime
/// would see the tree.
pub fn path_kinds(
    store: &Store,
    layers: &[Descriptor],
    paths: &[String],
) -> Result<Vec<PathKind>, FactsError> {
    let mut wants = Wants::default();
    for p in paths {
        if let Ok(ip) = ImagePath::new(p.trim_start_matches('/')) {
            wants.add_kind_only(&ip);
        }
    }
    for _ in 0..MAX_SCANS {
        let scan = Scan::run(store, layers, &wants)?;
        let mut needs = Vec::new();
        let mut out = Vec::new();
        for p in paths {
            let rel = p.trim_start_matches('/');
            if rel.is_empty() {
                out.push(PathKind::Dir(EntryMeta::root(0o755)));
                continue;
            }
            match scan.resolve(rel)? {
                Outcome::Need(n) => needs.extend(n),
                Outcome::Ready(Resolved::Absent) => out.push(PathKind::Absent),
                Outcome::Ready(Resolved::ImplicitDir) => {
                    out.push(PathKind::Dir(EntryMeta::root(0o755)))
                }
                Outcome::Ready(Resolved::Found { rec, .. }) => out.push(match rec.kind {
                    RecKind::Dir => PathKind::Dir(rec.meta),
                    _ => PathKind::Other,
                }),
            }
        }
        if needs.is_empty() {
            return Ok(out);
        }
        let mut progress = false;
        for need in &needs {
            progress |= wants.add(need);
        }
        if !progress {
            break;
        }
    }
    Err(FactsError::TooManyScans {
        path: paths.join(", "),
    })
}

/// What the first pass collects: the wanted files, Python's paths, and
/// the files scanned for versions.
fn first_pass() -> Wants {
    let mut wants = Wants::default();
    for path in FIRST_PASS {
        wants.add_path(&image_path(path));
    }
    for path in python::python_paths() {
        wants.add_kind_only(&image_path(&path));
    }
    for path in libc::libc_so_homes() {
        wants.add_scan(&image_path(&path), ScanKind::Glibc);
    }
    wants.add_scan(&image_path(pkgdb::DPKG_STATUS), ScanKind::Dpkg);
    // distroless keeps one dpkg record per package in `status.d`: asked
    // for up front, as a folder's children are read from every layer and a
    // pass reads every layer anyway when a path is absent from the top.
    wants.add(&Need::Children(
        image_path(pkgdb::DPKG_STATUS_D),
        ScanKind::DpkgRecord,
    ));
    wants.add_kind_only(&image_path(SHELL));
    for path in node::NODE_PATHS {
        wants.add_kind_only(&image_path(path));
    }
    for path in LIKELY_LINK_TARGETS {
        wants.add_kind_only(&image_path(path));
    }
    // On a merged-/usr base (Debian since bookworm, Ubuntu, Fedora) `bin`,
    // `sbin`, `lib` and `lib64` are links into `usr`: asking for the `usr`
    // twin of every such path now saves the pass that following the link
    // would cost.
    let twins: Vec<ImagePath> = wants
        .kind_only_paths()
        .filter_map(|p| usr_twin(p.as_str()))
        .filter_map(|t| ImagePath::new(&t).ok())
        .collect();
    for twin in &twins {
        wants.add_kind_only(twin);
    }
    for path in pkgdb::APK_INSTALLED {
        wants.add_scan(&image_path(path), ScanKind::Apk);
    }
    wants
}

/// What `/bin/sh` usually links to, asked for in the first pass so that
/// following the link needs no second one (each pass reads every layer).
const LIKELY_LINK_TARGETS: &[&str] = &[
    "bin/dash",
    "bin/bash",
    "bin/busybox",
    "usr/bin/dash",
    "usr/bin/bash",
    "usr/bin/busybox",
];

/// The path a merged-/usr base keeps `path` at, when `path` is under one
/// of the top-level folders such a base links into `usr`.
fn usr_twin(path: &str) -> Option<String> {
    let top = path.split('/').next()?;
    ["bin", "sbin", "lib", "lib64"]
        .contains(&top)
        .then(|| format!("usr/{path}"))
}

/// Every fact, or what the next pass must collect.
fn facts(scan: &Scan) -> Result<Outcome<Facts>, FactsError> {
    let mut needs = Vec::new();
    let passwd = ready(scan.file(PASSWD)?, &mut needs).flatten();
    let group = ready(scan.file(GROUP)?, &mut needs).flatten();
    let shadow = ready(scan.file(SHADOW)?, &mut needs).flatten();
    let gshadow = ready(scan.file(GSHADOW)?, &mut needs).flatten();
    let os_release = match scan.file(os_release::OS_RELEASE)? {
        Outcome::Ready(None) => {
            ready(scan.file(os_release::OS_RELEASE_FALLBACK)?, &mut needs).flatten()
        }
        other => ready(other, &mut needs).flatten(),
    };
    let home = ready(home(scan)?, &mut needs).flatten();
    let dpkg = ready(pkgdb::dpkg_packages(scan)?, &mut needs);
    let apk = ready(pkgdb::apk(scan)?, &mut needs).flatten();
    let node = ready(node::node(scan)?, &mut needs).flatten();
    let shell = ready(scan.exists(SHELL)?, &mut needs).unwrap_or(false);
    if !needs.is_empty() {
        return Ok(Outcome::Need(needs));
    }
    let dpkg = dpkg.unwrap_or_default();
    let apk = apk.map(Scanned::into_packages).unwrap_or_default();
    let os_release = os_release.map(|f| OsRelease::parse(&f.content));
    let family = os_release
        .as_ref()
        .map_or(OsFamily::Other, OsRelease::family);
    let libc = match libc::libc(scan, family)? {
        Outcome::Ready(libc) => libc,
        Outcome::Need(needs) => return Ok(Outcome::Need(needs)),
    };
    let libc_version = ready(libc::libc_version(scan, libc, &dpkg, &apk)?, &mut needs).flatten();
    let python = ready(python::python(scan, family, &dpkg, &apk)?, &mut needs).flatten();
    if !needs.is_empty() {
        return Ok(Outcome::Need(needs));
    }
    let packages = [(PackageManager::Dpkg, &dpkg), (PackageManager::Apk, &apk)]
        .into_iter()
        .flat_map(|(manager, found)| {
            found.iter().map(move |(name, version)| OsPackage {
                name: name.clone(),
                version: version.clone(),
                manager,
            })
        })
        .collect();
    Ok(Outcome::Ready(Facts {
        node,
        shell,
        packages,
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

/// `/home`'s metadata if it resolves to a folder.
fn home(scan: &Scan) -> Result<Outcome<Option<EntryMeta>>, FactsError> {
    Ok(match scan.resolve(HOME)? {
        Outcome::Need(n) => Outcome::Need(n),
        Outcome::Ready(Resolved::Found { rec, .. }) => {
            Outcome::Ready(matches!(rec.kind, RecKind::Dir).then_some(rec.meta))
        }
        Outcome::Ready(Resolved::ImplicitDir) => Outcome::Ready(Some(EntryMeta::root(0o755))),
        Outcome::Ready(Resolved::Absent) => Outcome::Ready(None),
    })
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn empty_base_has_no_facts() {
        let (_d, s) = store();
        let facts = read_facts(&s, &[]).unwrap();
        assert_eq!(facts, Facts::default());
        assert_eq!(facts.os_family(), OsFamily::Other);
        let busybox = layer(&s, &[E::Dir("bin"), E::File("bin/busybox", b"\x7fELF")]);
        assert_eq!(read_facts(&s, &[busybox]).unwrap(), Facts::default());
    }

    /// The usual bases are read in one pass over their layers: the first
    /// pass asks for the merged-/usr twins, the shells `/bin/sh` links to
    /// and distroless's `status.d`; a link elsewhere still resolves, in
    /// one pass more.
    #[test]
    fn usual_bases_take_one_pass() {
        use crate::layer::reader::tests::RawTar;
        let passwd: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n";
        let alpine_release: &[u8] = b"ID=alpine\nVERSION_ID=3.20.3\n";
        let cases: Vec<(&str, Vec<u8>, bool, usize)> = vec![
            (
                "bookworm, sh -> dash",
                bookworm(&mut RawTar::new())
                    .file("etc/passwd", passwd)
                    .symlink("usr/bin/sh", "dash")
                    .file("usr/bin/dash", b"\x7fELF")
                    .finish(),
                true,
                1,
            ),
            (
                "alpine, sh -> /bin/busybox",
                RawTar::new()
                    .file("etc/os-release", alpine_release)
                    .file("etc/passwd", passwd)
                    .file("bin/busybox", b"\x7fELF")
                    .symlink("bin/sh", "/bin/busybox")
                    .file("lib/ld-musl-x86_64.so.1", b"\x7fELF")
                    .finish(),
                true,
                1,
            ),
            (
                "distroless, records in status.d, no shell",
                RawTar::new()
                    .file("etc/passwd", passwd)
                    .file(
                        "var/lib/dpkg/status.d/libc6",
                        b"Package: libc6\nVersion: 2.36-9\n",
                    )
                    .finish(),
                false,
                1,
            ),
            (
                "bookworm, sh -> mksh: the link is followed in a second pass",
                bookworm(&mut RawTar::new())
                    .file("etc/passwd", passwd)
                    .symlink("usr/bin/sh", "mksh")
                    .file("usr/bin/mksh", b"\x7fELF")
                    .finish(),
                true,
                2,
            ),
        ];
        for (name, tar, shell, passes) in cases {
            let (_d, s) = store();
            let base = raw_layer(&s, &tar);
            let (facts, n) =
                read_facts_passes(&s, &[base]).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(facts.shell, shell, "{name}");
            assert!(facts.passwd.is_some(), "{name}");
            assert_eq!(n, passes, "{name}");
        }
    }
}
