//! The image's Python, as the installer sees it: where pip would put
//! files inside the image, which wheels fit it, and how its markers
//! evaluate.
//!
//! Everything here describes the image, never the host: hoist runs no
//! Python, so the interpreter's version, install scheme and C library are
//! read from the base's filesystem ([`crate::facts`]) and its platform.
//!
//! [`PythonEnv::from_facts`] turns those facts into what `pip install`
//! run as root in the image would use. The scheme follows who installed
//! the interpreter: the python images build CPython into `/usr/local`
//! with the stock scheme; Debian patches its python3 so that pip, as
//! root, installs into `/usr/local/lib/python3.X/dist-packages` and
//! `/usr/local/bin`, away from the packages dpkg owns; Alpine keeps the
//! stock scheme with prefix `/usr`. The full version, which only markers
//! use, comes from the python images' `PYTHON_VERSION` in the image
//! config, or from the distribution's package, else is X.Y.0.

use std::str::FromStr;

use pep440_rs::Version;
use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder};

use super::tags;
use crate::facts::{self, Facts, PythonFacts, PythonLayout};
use crate::image::Platform;
use crate::layer::path::PathError;
use crate::layer::ImagePath;

/// Why the image's Python environment cannot be told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("the base has no CPython (looked in /usr/local/bin and /usr/bin): use a python base such as python:3.12-slim, or --deps none")]
    NoPython,
    #[error("hoist chooses Python wheels for linux/amd64 and linux/arm64 only, not {os}/{architecture}: build for one of them, or use --deps none")]
    Platform { os: String, architecture: String },
    #[error("{at}: `{requirement}` has a marker on the interpreter's full version, but the base does not say Python {major}.{minor}'s (no PYTHON_VERSION in its config, no python3.{minor}-minimal package record): hoist does not guess; set the marker on python_version, or build on a base that records its Python (a package database, or PYTHON_VERSION)")]
    UnknownFullVersion {
        at: String,
        requirement: String,
        major: u32,
        minor: u32,
    },
}

/// The folders pip's install scheme names, as absolute paths in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheme {
    /// Pure-Python packages (`site-packages`, or Debian's `dist-packages`).
    pub purelib: ImagePath,
    /// Packages with extension modules; the same folder on every Linux
    /// Python hoist knows.
    pub platlib: ImagePath,
    /// Console and GUI entry points and `.data/scripts`.
    pub scripts: ImagePath,
    /// `.data/data`: the prefix (`/usr/local` or `/usr`).
    pub data: ImagePath,
    /// `.data/headers`: `<prefix>/include/python3.X/<package>`' parent.
    pub headers: ImagePath,
    /// `pip install --user`: the user's home, which the image has (with
    /// its own mode and owner): the layer writes no folder from it up.
    pub home: Option<ImagePath>,
}

/// The image's interpreter and install scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonEnv {
    /// CPython major.minor.
    pub version: (u32, u32),
    /// `3.11.2`; major.minor.0 when the image does not say.
    pub full_version: Version,
    /// Whether the image said the full version (else it is a guess, and
    /// no marker may depend on its patch part).
    pub full_version_known: bool,
    /// The interpreter scripts' shebangs name (`/usr/local/bin/python3.12`).
    pub interpreter: ImagePath,
    pub scheme: Scheme,
    /// Interpreter, CPU and C library, for the wheels' tags.
    pub target: tags::Target,
}

impl PythonEnv {
    /// The environment of the base's CPython for `platform`. `config_env`
    /// is the image config's `Env` (`KEY=value`), where the python images
    /// say their full version.
    pub fn from_facts(
        facts: &Facts,
        platform: &Platform,
        config_env: &[String],
    ) -> Result<PythonEnv, EnvError> {
        let python = facts.python.as_ref().ok_or(EnvError::NoPython)?;
        let arch = match tags::Arch::from_oci(&platform.architecture) {
            Some(arch) if platform.os == "linux" => arch,
            _ => {
                return Err(EnvError::Platform {
                    os: platform.os.clone(),
                    architecture: platform.architecture.clone(),
                })
            }
        };
        // A base whose C library (or its version) cannot be told still
        // takes pure wheels; a native one is refused by the resolver,
        // naming the package (`ResolveError::NeedsLibc`).
        let libc = match (facts.libc, facts.libc_version) {
            (Some(facts::Libc::Glibc), Some((major, minor))) => tags::Libc::Glibc { major, minor },
            (Some(facts::Libc::Musl), Some((major, minor))) => tags::Libc::Musl { major, minor },
            _ => tags::Libc::Unknown,
        };
        Ok(PythonEnv {
            version: python.version,
            full_version: full_version(python, config_env),
            full_version_known: said_full_version(python, config_env).is_some(),
            interpreter: python.interpreter.clone(),
            scheme: Scheme::of(python),
            target: tags::Target {
                python: python.version,
                arch,
                libc,
            },
        })
    }

    /// Refuses a top-level requirement whose markers depend on the
    /// interpreter's patch version when the base does not say it
    /// (`python_full_version >= "3.11.1"` on a Python known only as
    /// 3.11): the marker evaluated at X.Y.0 and at the last X.Y release
    /// differs. `lines` are `(where, requirement)`.
    pub fn check_full_version<'a>(
        &self,
        python: &PythonFacts,
        config_env: &[String],
        lines: impl IntoIterator<Item = (String, &'a pep508_rs::Requirement)>,
    ) -> Result<(), EnvError> {
        if said_full_version(python, config_env).is_some() {
            return Ok(());
        }
        let (major, minor) = self.version;
        let (low, high) = (self.markers(), self.at_last_patch().markers());
        for (at, req) in lines {
            if req.marker.evaluate(&low, &[]) != req.marker.evaluate(&high, &[]) {
                return Err(EnvError::UnknownFullVersion {
                    at,
                    requirement: req.to_string(),
                    major,
                    minor,
                });
            }
        }
        Ok(())
    }

    /// This interpreter at the last patch release of its major.minor: a
    /// marker that evaluates differently here and at X.Y.0 needs the full
    /// version the image does not say.
    pub fn at_last_patch(&self) -> PythonEnv {
        let (major, minor) = self.version;
        PythonEnv {
            full_version: Version::new([u64::from(major), u64::from(minor), u64::from(u32::MAX)]),
            ..self.clone()
        }
    }

    /// The PEP 508 marker environment of the image's interpreter on Linux.
    pub fn markers(&self) -> MarkerEnvironment {
        let (major, minor) = self.version;
        let python_version = format!("{major}.{minor}");
        let full_version = self.full_version.to_string();
        MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: &full_version,
            os_name: "posix",
            platform_machine: self.target.arch.as_str(),
            platform_python_implementation: "CPython",
            // The kernel is the host's at run time; markers on it are rare
            // and have no right answer at build time.
            platform_release: "",
            platform_system: "Linux",
            platform_version: "",
            python_full_version: &full_version,
            python_version: &python_version,
            sys_platform: "linux",
        })
        .expect("a Version and two numbers print as parseable versions")
    }
}

impl Scheme {
    /// Where `pip install`, run as root, puts files for this Python.
    fn of(python: &PythonFacts) -> Scheme {
        let (_, minor) = python.version;
        let (prefix, packages) = match python.layout {
            PythonLayout::UsrLocal => ("usr/local", "site-packages"),
            PythonLayout::Debian => ("usr/local", "dist-packages"),
            PythonLayout::Usr => ("usr", "site-packages"),
        };
        // Debian's `posix_local` scheme keeps headers under /usr (its pip
        // puts greenlet's in /usr/include/python3.11/greenlet).
        let headers = match python.layout {
            PythonLayout::Debian => "usr",
            _ => prefix,
        };
        let lib = scheme_path(&format!("{prefix}/lib/python3.{minor}/{packages}"));
        Scheme {
            purelib: lib.clone(),
            platlib: lib,
            scripts: scheme_path(&format!("{prefix}/bin")),
            data: scheme_path(prefix),
            headers: scheme_path(&format!("{headers}/include/python3.{minor}")),
            home: None,
        }
    }

    /// pip's `posix_user` scheme for `pip install --user` by the user
    /// whose home is `home` (user base `~/.local`; Debian's python too
    /// uses `site-packages` there).
    pub fn user(home: &ImagePath, (_, minor): (u32, u32)) -> Result<Scheme, PathError> {
        let base = home.join(".local")?;
        let lib = base.join(&format!("lib/python3.{minor}/site-packages"))?;
        Ok(Scheme {
            purelib: lib.clone(),
            platlib: lib,
            scripts: base.join("bin")?,
            headers: base.join(&format!("include/python3.{minor}"))?,
            data: base,
            home: Some(home.clone()),
        })
    }
}

/// A scheme folder as an [`ImagePath`].
fn scheme_path(path: &str) -> ImagePath {
    // Built from constant folders and a number: `new` cannot refuse it.
    ImagePath::new(path).unwrap_or_else(|_| unreachable!("bad scheme path {path}"))
}

/// The interpreter's full version: the python images' `PYTHON_VERSION`
/// for their `/usr/local` build, the distribution package's version for
/// its own; X.Y.0 when neither says, or says another X.Y.
fn full_version(python: &PythonFacts, config_env: &[String]) -> Version {
    let (major, minor) = python.version;
    said_full_version(python, config_env)
        .unwrap_or_else(|| Version::new([u64::from(major), u64::from(minor), 0]))
}

/// The full version the image says, if it says one of its X.Y.
fn said_full_version(python: &PythonFacts, config_env: &[String]) -> Option<Version> {
    let said = match python.layout {
        // The last assignment wins, as when a container starts.
        PythonLayout::UsrLocal => config_env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PYTHON_VERSION=")),
        PythonLayout::Debian | PythonLayout::Usr => python.package_version.as_deref(),
    };
    said.and_then(|v| cpython_version(v, python.version))
}

/// A CPython version as images and packages spell it, if it is one of
/// `major.minor`: `3.11.2`, `3.14.0rc1`; Debian's `3.14.0~rc1` (its `~`
/// sorts pre-releases first; PEP 440 needs none). A `+` suffix is the
/// packager's (`+dfsg`), not CPython's, and is dropped.
fn cpython_version(text: &str, (major, minor): (u32, u32)) -> Option<Version> {
    let text = text.split('+').next()?.trim().replace('~', "");
    let version = Version::from_str(&text).ok()?;
    let release = [u64::from(major), u64::from(minor)];
    let fits = version.epoch() == 0
        && version.release().get(..2) == Some(&release[..])
        && version.post().is_none()
        && version.dev().is_none();
    fits.then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python(layout: PythonLayout, minor: u32, package: Option<&str>) -> PythonFacts {
        let bin = match layout {
            PythonLayout::UsrLocal => "usr/local/bin",
            PythonLayout::Debian | PythonLayout::Usr => "usr/bin",
        };
        PythonFacts {
            version: (3, minor),
            interpreter: ImagePath::new(&format!("{bin}/python3.{minor}")).unwrap(),
            layout,
            package_version: package.map(str::to_owned),
        }
    }

    fn base(
        python: Option<PythonFacts>,
        libc: Option<facts::Libc>,
        version: Option<(u32, u32)>,
    ) -> Facts {
        Facts {
            libc,
            libc_version: version,
            python,
            ..Facts::default()
        }
    }

    #[test]
    fn from_facts_layouts() {
        struct Case {
            name: &'static str,
            facts: Facts,
            platform: &'static str,
            env: &'static [&'static str],
            /// purelib, scripts, data, headers
            scheme: [&'static str; 4],
            interpreter: &'static str,
            full_version: &'static str,
            target: tags::Target,
        }
        let glibc = |major, minor| tags::Libc::Glibc { major, minor };
        let cases = [
            Case {
                name: "python image",
                facts: base(
                    Some(python(PythonLayout::UsrLocal, 12, None)),
                    Some(facts::Libc::Glibc),
                    Some((2, 36)),
                ),
                platform: "linux/amd64",
                env: &[
                    "PATH=/usr/local/bin:/usr/bin",
                    "PYTHON_VERSION=3.12.1",
                    "PYTHON_VERSION=3.12.7",
                ],
                scheme: [
                    "/usr/local/lib/python3.12/site-packages",
                    "/usr/local/bin",
                    "/usr/local",
                    "/usr/local/include/python3.12",
                ],
                interpreter: "/usr/local/bin/python3.12",
                full_version: "3.12.7",
                target: tags::Target {
                    python: (3, 12),
                    arch: tags::Arch::X86_64,
                    libc: glibc(2, 36),
                },
            },
            Case {
                name: "python image, a release candidate",
                facts: base(
                    Some(python(PythonLayout::UsrLocal, 14, Some("3.14.9"))),
                    Some(facts::Libc::Musl),
                    Some((1, 2)),
                ),
                platform: "linux/arm64/v8",
                env: &["PYTHON_VERSION=3.14.0rc2"],
                scheme: [
                    "/usr/local/lib/python3.14/site-packages",
                    "/usr/local/bin",
                    "/usr/local",
                    "/usr/local/include/python3.14",
                ],
                interpreter: "/usr/local/bin/python3.14",
                full_version: "3.14.0rc2",
                target: tags::Target {
                    python: (3, 14),
                    arch: tags::Arch::Aarch64,
                    libc: tags::Libc::Musl { major: 1, minor: 2 },
                },
            },
            Case {
                name: "Debian's python3",
                facts: base(
                    Some(python(PythonLayout::Debian, 11, Some("3.11.2"))),
                    Some(facts::Libc::Glibc),
                    Some((2, 36)),
                ),
                platform: "linux/arm64",
                // Not Debian's Python's: ignored.
                env: &["PYTHON_VERSION=3.11.9"],
                scheme: [
                    "/usr/local/lib/python3.11/dist-packages",
                    "/usr/local/bin",
                    "/usr/local",
                    "/usr/include/python3.11",
                ],
                interpreter: "/usr/bin/python3.11",
                full_version: "3.11.2",
                target: tags::Target {
                    python: (3, 11),
                    arch: tags::Arch::Aarch64,
                    libc: glibc(2, 36),
                },
            },
            Case {
                name: "Alpine's python3",
                facts: base(
                    Some(python(PythonLayout::Usr, 12, Some("3.12.3"))),
                    Some(facts::Libc::Musl),
                    Some((1, 2)),
                ),
                platform: "linux/amd64",
                env: &[],
                scheme: [
                    "/usr/lib/python3.12/site-packages",
                    "/usr/bin",
                    "/usr",
                    "/usr/include/python3.12",
                ],
                interpreter: "/usr/bin/python3.12",
                full_version: "3.12.3",
                target: tags::Target {
                    python: (3, 12),
                    arch: tags::Arch::X86_64,
                    libc: tags::Libc::Musl { major: 1, minor: 2 },
                },
            },
            Case {
                name: "no version said: X.Y.0",
                facts: base(
                    Some(python(PythonLayout::Usr, 9, None)),
                    Some(facts::Libc::Glibc),
                    Some((2, 28)),
                ),
                platform: "linux/amd64",
                env: &["PYTHON_VERSION=3.9.18"],
                scheme: [
                    "/usr/lib/python3.9/site-packages",
                    "/usr/bin",
                    "/usr",
                    "/usr/include/python3.9",
                ],
                interpreter: "/usr/bin/python3.9",
                full_version: "3.9.0",
                target: tags::Target {
                    python: (3, 9),
                    arch: tags::Arch::X86_64,
                    libc: glibc(2, 28),
                },
            },
        ];
        for c in cases {
            let platform = Platform::parse(c.platform).unwrap();
            let env: Vec<String> = c.env.iter().map(|e| e.to_string()).collect();
            let got = PythonEnv::from_facts(&c.facts, &platform, &env)
                .unwrap_or_else(|e| panic!("{}: {e}", c.name));
            let scheme = [
                &got.scheme.purelib,
                &got.scheme.scripts,
                &got.scheme.data,
                &got.scheme.headers,
            ]
            .map(|p| p.absolute());
            assert_eq!(scheme, c.scheme, "{}", c.name);
            assert_eq!(got.scheme.platlib, got.scheme.purelib, "{}", c.name);
            assert_eq!(got.interpreter.absolute(), c.interpreter, "{}", c.name);
            assert_eq!(got.full_version.to_string(), c.full_version, "{}", c.name);
            assert_eq!(got.target, c.target, "{}", c.name);
            assert_eq!(got.version, c.target.python, "{}", c.name);
            // The markers take the same versions.
            let markers = got.markers();
            assert_eq!(
                markers.python_full_version().version.to_string(),
                c.full_version,
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn unknown_full_version_markers_table() {
        let amd64 = Platform::parse("linux/amd64").unwrap();
        // (package version the base says, PYTHON_VERSION, requirement, refused)
        let cases = [
            (None, None, "a ; python_full_version >= '3.11.1'", true),
            (None, None, "a ; python_full_version < '3.11.1'", true),
            (None, None, "a ; implementation_version >= '3.11.1'", true),
            (None, None, "a ; python_version >= '3.11'", false),
            (None, None, "a ; python_full_version >= '3.8'", false),
            (None, None, "a", false),
            (
                Some("3.11.2"),
                None,
                "a ; python_full_version >= '3.11.1'",
                false,
            ),
            (
                None,
                Some("PYTHON_VERSION=3.11.9"),
                "a ; python_full_version >= '3.11.1'",
                true,
            ),
        ];
        for (package, config, line, refused) in cases {
            let py = python(PythonLayout::Debian, 11, package);
            let facts = base(Some(py.clone()), Some(facts::Libc::Glibc), Some((2, 36)));
            let config: Vec<String> = config.into_iter().map(str::to_owned).collect();
            let env = PythonEnv::from_facts(&facts, &amd64, &config).unwrap();
            let req = pep508_rs::Requirement::from_str(line).unwrap();
            let got =
                env.check_full_version(&py, &config, [("requirements.txt:3".to_owned(), &req)]);
            match got {
                Err(e) => {
                    assert!(refused, "{line}: {e}");
                    let text = e.to_string();
                    assert!(text.starts_with("requirements.txt:3: `a"), "{text}");
                    assert!(text.contains("does not say Python 3.11's"), "{text}");
                }
                Ok(()) => assert!(!refused, "{line} {package:?} passed"),
            }
        }
    }

    #[test]
    fn a_libc_hoist_cannot_tell_takes_pure_wheels() {
        let py = || Some(python(PythonLayout::UsrLocal, 12, None));
        let amd64 = Platform::parse("linux/amd64").unwrap();
        for facts in [
            base(py(), None, None),
            base(py(), Some(facts::Libc::Glibc), None),
            base(py(), Some(facts::Libc::Musl), None),
        ] {
            let env = PythonEnv::from_facts(&facts, &amd64, &[]).unwrap();
            assert_eq!(env.target.libc, tags::Libc::Unknown);
        }
    }

    #[test]
    fn from_facts_errors() {
        let py = || Some(python(PythonLayout::UsrLocal, 12, None));
        let cases = [
            (
                base(None, Some(facts::Libc::Glibc), Some((2, 36))),
                "linux/amd64",
                "the base has no CPython (looked in /usr/local/bin and /usr/bin): use a python base such as python:3.12-slim, or --deps none",
            ),
            (
                base(py(), Some(facts::Libc::Glibc), Some((2, 36))),
                "linux/arm/v7",
                "not linux/arm: build for one of them",
            ),
            (
                base(py(), Some(facts::Libc::Glibc), Some((2, 36))),
                "windows/amd64",
                "not windows/amd64",
            ),
        ];
        for (facts, platform, needle) in cases {
            let platform = Platform::parse(platform).unwrap();
            let err = PythonEnv::from_facts(&facts, &platform, &[]).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn cpython_version_table() {
        let cases = [
            ("3.11.2", (3, 11), Some("3.11.2")),
            ("3.14.0~rc1", (3, 14), Some("3.14.0rc1")),
            ("3.14.0rc2", (3, 14), Some("3.14.0rc2")),
            ("3.11.2+dfsg", (3, 11), Some("3.11.2")),
            (" 3.12.7 ", (3, 12), Some("3.12.7")),
            ("3.12", (3, 12), Some("3.12")),
            ("3.11.2", (3, 12), None),
            ("3", (3, 12), None),
            ("1!3.12.1", (3, 12), None),
            ("3.12.1.post1", (3, 12), None),
            ("3.12.1.dev0", (3, 12), None),
            ("not a version", (3, 12), None),
            ("", (3, 12), None),
        ];
        for (text, version, want) in cases {
            let got = cpython_version(text, version).map(|v| v.to_string());
            assert_eq!(got.as_deref(), want, "{text:?}");
        }
    }
}
