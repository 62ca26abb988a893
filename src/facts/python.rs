//! The image's CPython, as its filesystem shows it: which one `python3`
//! runs, where pip must install for it, and its version.
//!
//! pip installs into the image's own interpreter, so the wheels that fit
//! and the folders they go to follow what the base holds, never the host.
//! The image's CPython ([`PythonFacts`]) is the one `python3` on `PATH`
//! finds: `/usr/local` (python images build it there) before `/usr` (the
//! distribution's package); in one prefix, the version `bin/python3` links
//! to, else the newest. A Python is there when both its versioned
//! interpreter (`bin/python3.X`) and its standard library
//! (`lib/python3.X/os.py`) are; only their existence is asked, for 3.6 to
//! 3.15. Its full version comes from the distribution's package database
//! ([`super::pkgdb`]) when the distribution installed it (dpkg's
//! `python3.X-minimal`, apk's `python3`); the python images say it in
//! their config instead, which is not a layer's to tell
//! ([`crate::deps::pip::env`] reads it there).

use std::ops::RangeInclusive;

use super::merged::{image_path, kind_only, ready, Outcome, Resolved, Scan};
use super::os_release::OsFamily;
use super::pkgdb::{apk_upstream, dpkg_upstream, major_minor, Packages};
use super::FactsError;
use crate::layer::ImagePath;

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

/// The CPython 3 minor versions looked for.
pub(super) const PYTHON_MINORS: RangeInclusive<u32> = 6..=15;

/// Where a CPython may live, in the order `PATH` finds them in the python
/// images (`/usr/local/bin` before `/usr/bin`).
const PYTHON_PREFIXES: &[&str] = &["usr/local", "usr"];

/// A folder Debian's python3 package ships, and only Debian's.
const DEBIAN_DIST_PACKAGES: &str = "usr/lib/python3/dist-packages";

/// The paths whose existence tells where the image's Pythons are.
pub(super) fn python_paths() -> Vec<String> {
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

/// The CPython `python3` on the python images' `PATH` runs: in the
/// first prefix that has one, the version `bin/python3` links to, else
/// the newest.
pub(super) fn python(
    scan: &Scan,
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
            let has_interpreter = ready(scan.exists(&interpreter)?, &mut needs);
            let has_stdlib = ready(scan.exists(&stdlib)?, &mut needs);
            if has_interpreter == Some(true) && has_stdlib == Some(true) {
                found.push((minor, image_path(&interpreter)));
            }
        }
        let python3 = match scan.resolve(&format!("{prefix}/bin/python3"))? {
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
            match scan.is_dir(DEBIAN_DIST_PACKAGES)? {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::fixtures::*;
    use crate::facts::Libc;
    use crate::layer::reader::tests::RawTar;

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
}
