//! Which C library a base's programs use, and at which version.
//!
//! The C library decides which npm packages and Python wheels fit (npm's
//! `libc`, manylinux or musllinux), and it must be told from the image,
//! never from the host, without running a program.
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
//! The version is read too. For glibc the first source is the library
//! itself: `libc.so.6` defines one symbol version per release it is
//! compatible with (`GLIBC_2.2.5` ... `GLIBC_2.36`), so the highest such
//! name in its string table is its own version, on any distribution. It
//! is about 2 MB, so it is streamed through [`GlibcScan`] and never kept.
//! The package databases come next ([`super::pkgdb`]): dpkg's `libc6`,
//! apk's `glibc` (Wolfi). For musl only Alpine's apk database (`musl`)
//! says; the library carries its version untagged.

use super::merged::{ready, Need, Outcome, Scan};
use super::os_release::OsFamily;
use super::pkgdb::{apk_upstream, dpkg_upstream, major_minor, Packages};
use super::scanners::{ScanKind, Scanned};
use super::FactsError;
use crate::layer::ImagePath;

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
pub(super) fn libc_so_homes() -> Vec<String> {
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

/// The C library: by the family when it says, else by the loaders found.
pub(super) fn libc(scan: &Scan, family: OsFamily) -> Result<Outcome<Option<Libc>>, FactsError> {
    if let Some(libc) = Libc::of_family(family) {
        return Ok(Outcome::Ready(Some(libc)));
    }
    let mut needs = Vec::new();
    let glibc = any_loader(scan, GLIBC_LOADERS.iter().map(|(n, m)| (*n, Some(*m))))?;
    let musl = any_loader(scan, MUSL_LOADERS.iter().map(|n| (*n, None)))?;
    let glibc = ready(glibc, &mut needs);
    let musl = ready(musl, &mut needs);
    Ok(match (glibc, musl) {
        (Some(g), Some(m)) => Outcome::Ready(Libc::of_loaders(g, m)),
        _ => Outcome::Need(needs),
    })
}

/// The C library's major.minor: for glibc from the first `libc.so.6`
/// found, else from dpkg's `libc6` or apk's `glibc`; for musl from
/// apk's `musl`.
pub(super) fn libc_version(
    scan: &Scan,
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
                match scan.scanned(&home, ScanKind::Glibc)? {
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

/// Whether any of the loaders (named path, multiarch folder) exists;
/// when one is not decided yet, every loader's homes are asked for.
fn any_loader<'l>(
    scan: &Scan,
    loaders: impl Iterator<Item = (&'l str, Option<&'l str>)> + Clone,
) -> Result<Outcome<bool>, FactsError> {
    let mut needs = Vec::new();
    for (named, _) in loaders.clone() {
        match scan.exists(named)? {
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

const GLIBC_PREFIX: &[u8] = b"GLIBC_";

/// Finds the highest `GLIBC_X.Y` (or `GLIBC_X.Y.Z`) that stands as a
/// whole NUL-terminated string (after a NUL or at the start): how the
/// names of `libc.so.6`'s version definitions sit in its dynamic string
/// table. `GLIBC_PRIVATE` and the like do not count.
#[derive(Debug)]
pub(super) struct GlibcScan {
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
    pub(super) fn feed(&mut self, chunk: &[u8]) {
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

    /// The highest version found.
    pub(super) fn finish(self) -> Option<(u32, u32)> {
        self.highest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::fixtures::*;
    use crate::facts::{read_facts, MAX_FACT_FILE_BYTES};
    use crate::image::Descriptor;
    use crate::layer::reader::tests::RawTar;

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
}
