//! Wheel filenames and the tags a target image accepts.
//!
//! A wheel says in its filename which interpreters, ABIs and platforms it
//! runs on (`name-ver(-build)?-py-abi-plat.whl`, each tag part possibly a
//! `.`-separated set). Choosing a wheel means ranking those tags against
//! the ordered list of tags the image's CPython accepts. The order is the
//! one pip uses (the `packaging` library's `sys_tags`), which refines
//! PEP 425:
//!
//! 1. `cpXY-cpXY-plat`, `cpXY-abi3-plat`, `cpXY-none-plat`, then
//!    `cp3W-abi3-plat` for every older W down to cp32;
//! 2. `pyXY-none-plat`, `py3-none-plat`, `py3W-none-plat` down to py30;
//! 3. `cpXY-none-any`, then `pyXY-none-any`, `py3-none-any`, ... `py30-none-any`.
//!
//! Within each, platforms go from most to least specific: for glibc X.Y,
//! `manylinux_X_Y` down to `manylinux_2_17` (and down to `manylinux_2_5` on
//! x86_64), each followed by its legacy alias where one exists
//! (manylinux2014 = 2_17, manylinux2010 = 2_12, manylinux1 = 2_5); for
//! musl 1.Y, `musllinux_1_Y` down to `musllinux_1_0`; last `linux_<arch>`.
//! When the base's C library cannot be told, there are no platforms at
//! all and only `any` wheels fit: pure Python needs no C library.
//!
//! The target comes from the base image's facts, never from the host.

use std::fmt;
use std::str::FromStr;

use pep440_rs::Version;
use pep508_rs::PackageName;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("wheel filename `{0}` does not end in .whl")]
    NotWheel(String),
    #[error("wheel filename `{0}` is not name-version(-build)?-python-abi-platform.whl")]
    Shape(String),
    #[error("wheel filename `{filename}`: bad name: {message}")]
    Name { filename: String, message: String },
    #[error("wheel filename `{filename}`: bad version `{version}`: {message}")]
    Version {
        filename: String,
        version: String,
        message: String,
    },
    #[error("wheel filename `{filename}`: build tag `{build}` must start with a digit")]
    Build { filename: String, build: String },
}

/// One (python, abi, platform) triple, such as `cp312-abi3-manylinux_2_17_x86_64`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag {
    pub python: String,
    pub abi: String,
    pub platform: String,
}

impl Tag {
    pub fn new(python: &str, abi: &str, platform: &str) -> Tag {
        Tag {
            python: python.to_owned(),
            abi: abi.to_owned(),
            platform: platform.to_owned(),
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.python, self.abi, self.platform)
    }
}

/// A parsed wheel filename.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelFilename {
    pub name: PackageName,
    pub version: Version,
    pub build: Option<String>,
    /// The tag sets, expanded from their `.`-compressed form.
    pub python: Vec<String>,
    pub abi: Vec<String>,
    pub platform: Vec<String>,
}

impl WheelFilename {
    pub fn parse(filename: &str) -> Result<WheelFilename, TagError> {
        let stem = filename
            .strip_suffix(".whl")
            .ok_or_else(|| TagError::NotWheel(filename.to_owned()))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, build, py, abi, plat) = match parts.as_slice() {
            [n, v, p, a, pl] => (*n, *v, None, *p, *a, *pl),
            [n, v, b, p, a, pl] => (*n, *v, Some(*b), *p, *a, *pl),
            _ => return Err(TagError::Shape(filename.to_owned())),
        };
        let set = |s: &str| -> Result<Vec<String>, TagError> {
            let items: Vec<String> = s.split('.').map(str::to_owned).collect();
            if items.iter().any(|i| i.is_empty()) {
                return Err(TagError::Shape(filename.to_owned()));
            }
            Ok(items)
        };
        if name.is_empty() {
            return Err(TagError::Name {
                filename: filename.to_owned(),
                message: "empty".to_owned(),
            });
        }
        let name = PackageName::from_str(name).map_err(|e| TagError::Name {
            filename: filename.to_owned(),
            message: e.to_string(),
        })?;
        let version_parsed = Version::from_str(version).map_err(|e| TagError::Version {
            filename: filename.to_owned(),
            version: version.to_owned(),
            message: e.to_string(),
        })?;
        if let Some(b) = build {
            if !b.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(TagError::Build {
                    filename: filename.to_owned(),
                    build: b.to_owned(),
                });
            }
        }
        Ok(WheelFilename {
            name,
            version: version_parsed,
            build: build.map(str::to_owned),
            python: set(py)?,
            abi: set(abi)?,
            platform: set(plat)?,
        })
    }

    /// Every tag the filename claims (the product of its three sets).
    pub fn tags(&self) -> Vec<Tag> {
        let mut out = Vec::new();
        for p in &self.python {
            for a in &self.abi {
                for pl in &self.platform {
                    out.push(Tag::new(p, a, pl));
                }
            }
        }
        out
    }
}

/// The image's CPU, as wheel platform tags spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// From an OCI architecture (`amd64`, `arm64`) or the wheel spelling.
    pub fn from_oci(arch: &str) -> Option<Arch> {
        match arch {
            "amd64" | "x86_64" => Some(Arch::X86_64),
            "arm64" | "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }
}

/// The image's C library and its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Libc {
    Glibc {
        major: u32,
        minor: u32,
    },
    Musl {
        major: u32,
        minor: u32,
    },
    /// hoist cannot tell the base's C library (or its version): only
    /// wheels without native code (platform `any`) fit, since those need
    /// no C library at all.
    Unknown,
}

/// What the wheels must run on: the image's CPython, CPU and C library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// CPython major.minor, such as (3, 12).
    pub python: (u32, u32),
    pub arch: Arch,
    pub libc: Libc,
}

/// Platform tags for the target, most specific first.
fn platforms(arch: Arch, libc: Libc) -> Vec<String> {
    let a = arch.as_str();
    let mut out = Vec::new();
    match libc {
        Libc::Glibc { major, minor } => {
            // manylinux2014 and later only exist from 2_17 on for most
            // architectures; x86_64 goes back to manylinux1 (2_5).
            let floor = match arch {
                Arch::X86_64 => 5,
                Arch::Aarch64 => 17,
            };
            if major == 2 {
                for m in (floor..=minor).rev() {
                    out.push(format!("manylinux_2_{m}_{a}"));
                    let legacy = match m {
                        17 => Some("manylinux2014"),
                        12 => Some("manylinux2010"),
                        5 => Some("manylinux1"),
                        _ => None,
                    };
                    if let Some(l) = legacy {
                        out.push(format!("{l}_{a}"));
                    }
                }
            }
        }
        Libc::Musl { major, minor } => {
            for m in (0..=minor).rev() {
                out.push(format!("musllinux_{major}_{m}_{a}"));
            }
        }
        // Not even `linux_<arch>`: a native wheel of any tag needs a libc.
        Libc::Unknown => return out,
    }
    out.push(format!("linux_{a}"));
    out
}

/// The tags the target accepts, best first (see the module docs).
pub fn compatible_tags(target: &Target) -> Vec<Tag> {
    let (major, minor) = target.python;
    let plats = platforms(target.arch, target.libc);
    let cp = format!("cp{major}{minor}");
    let mut out = Vec::new();
    let all = |py: &str, abi: &str, out: &mut Vec<Tag>| {
        for p in &plats {
            out.push(Tag::new(py, abi, p));
        }
    };
    all(&cp, &cp, &mut out);
    // abi3 is the stable ABI, defined from CPython 3.2 on.
    let abi3 = major == 3 && minor >= 2;
    if abi3 {
        all(&cp, "abi3", &mut out);
    }
    all(&cp, "none", &mut out);
    if abi3 {
        for m in (2..minor).rev() {
            all(&format!("cp{major}{m}"), "abi3", &mut out);
        }
    }
    // pyXY, pyX, then every older pyXW.
    let mut py = vec![format!("py{major}{minor}"), format!("py{major}")];
    for m in (0..minor).rev() {
        py.push(format!("py{major}{m}"));
    }
    for v in &py {
        all(v, "none", &mut out);
    }
    out.push(Tag::new(&cp, "none", "any"));
    for v in &py {
        out.push(Tag::new(v, "none", "any"));
    }
    out
}

/// The rank of the best of `tags` for the target (0 is best), or `None`
/// when the wheel does not fit the target at all.
pub fn best_tag_rank(tags: &[Tag], target: &Target) -> Option<usize> {
    let compatible = compatible_tags(target);
    tags.iter()
        .filter_map(|t| compatible.iter().position(|c| c == t))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GLIBC_236: Libc = Libc::Glibc {
        major: 2,
        minor: 36,
    };
    const MUSL_12: Libc = Libc::Musl { major: 1, minor: 2 };

    fn target(minor: u32, arch: Arch, libc: Libc) -> Target {
        Target {
            python: (3, minor),
            arch,
            libc,
        }
    }

    #[test]
    fn filenames() {
        // (filename, name, version, build, python, abi, platform)
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a str,
            Option<&'a str>,
            &'a str,
            &'a str,
            &'a str,
        );
        let cases: &[Case] = &[
            (
                "requests-2.31.0-py3-none-any.whl",
                "requests",
                "2.31.0",
                None,
                "py3",
                "none",
                "any",
            ),
            (
                "six-1.16.0-py2.py3-none-any.whl",
                "six",
                "1.16.0",
                None,
                "py2.py3",
                "none",
                "any",
            ),
            (
                "numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "numpy",
                "1.26.4",
                None,
                "cp312",
                "cp312",
                "manylinux_2_17_x86_64.manylinux2014_x86_64",
            ),
            (
                "pydantic_core-2.16.3-cp312-cp312-musllinux_1_1_aarch64.whl",
                "pydantic-core",
                "2.16.3",
                None,
                "cp312",
                "cp312",
                "musllinux_1_1_aarch64",
            ),
            (
                "cryptography-42.0.5-cp39-abi3-manylinux_2_28_aarch64.whl",
                "cryptography",
                "42.0.5",
                None,
                "cp39",
                "abi3",
                "manylinux_2_28_aarch64",
            ),
            (
                "foo-1.0-1build2-py3-none-any.whl",
                "foo",
                "1.0",
                Some("1build2"),
                "py3",
                "none",
                "any",
            ),
            (
                "Foo.Bar-1.0rc1.post2-py3-none-any.whl",
                "foo-bar",
                "1.0rc1.post2",
                None,
                "py3",
                "none",
                "any",
            ),
        ];
        for (f, name, ver, build, py, abi, plat) in cases {
            let w = WheelFilename::parse(f).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(w.name.as_ref(), *name, "{f}");
            assert_eq!(w.version, Version::from_str(ver).unwrap(), "{f}");
            assert_eq!(w.build.as_deref(), *build, "{f}");
            assert_eq!(w.python.join("."), *py, "{f}");
            assert_eq!(w.abi.join("."), *abi, "{f}");
            assert_eq!(w.platform.join("."), *plat, "{f}");
        }
    }

    #[test]
    fn bad_filenames() {
        let cases: &[(&str, &str)] = &[
            ("requests-2.31.0.tar.gz", "does not end in .whl"),
            ("requests-2.31.0-py3-none.whl", "is not name-version"),
            ("a-1-2-3-py3-none-any.whl", "is not name-version"),
            (
                "requests-2.31.0-py3..py2-none-any.whl",
                "is not name-version",
            ),
            ("requests-notaversion!-py3-none-any.whl", "bad version"),
            ("-1.0-py3-none-any.whl", "bad name"),
            ("foo-1.0-build-py3-none-any.whl", "must start with a digit"),
        ];
        for (f, want) in cases {
            let err = WheelFilename::parse(f).unwrap_err().to_string();
            assert!(err.contains(want), "{f}: {err}");
        }
    }

    #[test]
    fn expanded_tags() {
        let w =
            WheelFilename::parse("x-1-py2.py3-none-manylinux1_x86_64.linux_x86_64.whl").unwrap();
        let tags: Vec<String> = w.tags().iter().map(Tag::to_string).collect();
        assert_eq!(
            tags,
            [
                "py2-none-manylinux1_x86_64",
                "py2-none-linux_x86_64",
                "py3-none-manylinux1_x86_64",
                "py3-none-linux_x86_64",
            ]
        );
    }

    #[test]
    fn platform_lists() {
        let cases: &[(Arch, Libc, &[&str])] = &[
            (
                Arch::Aarch64,
                Libc::Glibc {
                    major: 2,
                    minor: 19,
                },
                &[
                    "manylinux_2_19_aarch64",
                    "manylinux_2_18_aarch64",
                    "manylinux_2_17_aarch64",
                    "manylinux2014_aarch64",
                    "linux_aarch64",
                ],
            ),
            (
                Arch::Aarch64,
                Libc::Glibc {
                    major: 2,
                    minor: 12,
                },
                &["linux_aarch64"],
            ),
            (
                Arch::X86_64,
                Libc::Musl { major: 1, minor: 2 },
                &[
                    "musllinux_1_2_x86_64",
                    "musllinux_1_1_x86_64",
                    "musllinux_1_0_x86_64",
                    "linux_x86_64",
                ],
            ),
            (Arch::X86_64, Libc::Unknown, &[]),
            (Arch::Aarch64, Libc::Unknown, &[]),
        ];
        for (arch, libc, want) in cases {
            assert_eq!(platforms(*arch, *libc), *want, "{arch:?} {libc:?}");
        }
        let x86 = platforms(Arch::X86_64, GLIBC_236);
        assert_eq!(
            x86.first().map(String::as_str),
            Some("manylinux_2_36_x86_64")
        );
        for legacy in [
            "manylinux2014_x86_64",
            "manylinux2010_x86_64",
            "manylinux1_x86_64",
        ] {
            assert!(x86.iter().any(|p| p == legacy), "{legacy}");
        }
        assert_eq!(x86.last().map(String::as_str), Some("linux_x86_64"));
        // Each alias right after its manylinux_2_Y name.
        let at = |p: &str| x86.iter().position(|x| x == p).unwrap();
        assert_eq!(at("manylinux2014_x86_64"), at("manylinux_2_17_x86_64") + 1);
        assert_eq!(at("manylinux2010_x86_64"), at("manylinux_2_12_x86_64") + 1);
        assert_eq!(at("manylinux1_x86_64"), at("manylinux_2_5_x86_64") + 1);
    }

    #[test]
    fn tag_order() {
        let t = target(12, Arch::X86_64, GLIBC_236);
        let tags: Vec<String> = compatible_tags(&t).iter().map(Tag::to_string).collect();
        let at = |s: &str| {
            tags.iter()
                .position(|x| x == s)
                .unwrap_or_else(|| panic!("{s} missing"))
        };
        assert_eq!(tags[0], "cp312-cp312-manylinux_2_36_x86_64");
        assert_eq!(tags.last().map(String::as_str), Some("py30-none-any"));
        // Each of these before the next.
        let order = [
            "cp312-cp312-manylinux_2_36_x86_64",
            "cp312-cp312-manylinux2014_x86_64",
            "cp312-cp312-linux_x86_64",
            "cp312-abi3-manylinux_2_36_x86_64",
            "cp312-none-manylinux_2_17_x86_64",
            "cp311-abi3-manylinux_2_28_x86_64",
            "cp32-abi3-manylinux1_x86_64",
            "py312-none-manylinux_2_17_x86_64",
            "py3-none-manylinux_2_17_x86_64",
            "py311-none-linux_x86_64",
            "cp312-none-any",
            "py312-none-any",
            "py3-none-any",
            "py311-none-any",
            "py30-none-any",
        ];
        for w in order.windows(2) {
            assert!(at(w[0]) < at(w[1]), "{} should come before {}", w[0], w[1]);
        }
        for absent in [
            "cp31-abi3-linux_x86_64",
            "cp313-cp313-manylinux_2_17_x86_64",
            "cp312-cp312-manylinux_2_37_x86_64",
            "cp312-cp312-musllinux_1_2_x86_64",
            "py2-none-any",
            "cp312-cp312-manylinux_2_17_aarch64",
        ] {
            assert!(!tags.iter().any(|x| x == absent), "{absent} present");
        }
    }

    #[test]
    fn ranking_wheels() {
        let glibc = target(12, Arch::X86_64, GLIBC_236);
        let arm = target(11, Arch::Aarch64, GLIBC_236);
        let musl = target(12, Arch::X86_64, MUSL_12);
        let old_glibc = target(
            12,
            Arch::X86_64,
            Libc::Glibc {
                major: 2,
                minor: 17,
            },
        );
        let rank = |f: &str, t: &Target| best_tag_rank(&WheelFilename::parse(f).unwrap().tags(), t);
        // (filename, target, fits)
        let fits: &[(&str, &Target, bool)] = &[
            ("requests-2.31.0-py3-none-any.whl", &glibc, true),
            ("requests-2.31.0-py3-none-any.whl", &musl, true),
            ("six-1.16.0-py2.py3-none-any.whl", &arm, true),
            ("legacy-1.0-py2-none-any.whl", &glibc, false),
            (
                "numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                &glibc,
                true,
            ),
            (
                "numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                &musl,
                false,
            ),
            (
                "numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                &arm,
                false,
            ),
            (
                "orjson-3.10.0-cp312-cp312-musllinux_1_2_x86_64.whl",
                &musl,
                true,
            ),
            (
                "orjson-3.10.0-cp312-cp312-musllinux_1_2_x86_64.whl",
                &glibc,
                false,
            ),
            (
                "uvloop-0.19.0-cp312-cp312-manylinux_2_28_x86_64.whl",
                &old_glibc,
                false,
            ),
            (
                "uvloop-0.19.0-cp312-cp312-manylinux_2_28_x86_64.whl",
                &glibc,
                true,
            ),
            (
                "cryptography-42.0.5-cp39-abi3-manylinux_2_28_aarch64.whl",
                &arm,
                true,
            ),
            (
                "cryptography-42.0.5-cp39-abi3-manylinux_2_28_aarch64.whl",
                &glibc,
                false,
            ),
            (
                "grpcio-1.62.1-cp311-cp311-manylinux_2_17_aarch64.whl",
                &arm,
                true,
            ),
            (
                "grpcio-1.62.1-cp311-cp311-manylinux_2_17_x86_64.whl",
                &glibc,
                false,
            ),
        ];
        for (f, t, want) in fits {
            assert_eq!(rank(f, t).is_some(), *want, "{f} on {t:?}");
        }
        // Better wheels rank lower.
        let better: &[(&str, &str, &Target)] = &[
            (
                "x-1-cp312-cp312-manylinux_2_28_x86_64.whl",
                "x-1-cp312-abi3-manylinux_2_28_x86_64.whl",
                &glibc,
            ),
            (
                "x-1-cp312-abi3-manylinux_2_17_x86_64.whl",
                "x-1-py3-none-any.whl",
                &glibc,
            ),
            (
                "x-1-cp312-cp312-manylinux_2_28_x86_64.whl",
                "x-1-cp312-cp312-manylinux_2_17_x86_64.whl",
                &glibc,
            ),
            (
                "x-1-cp310-abi3-manylinux_2_17_x86_64.whl",
                "x-1-cp38-abi3-manylinux_2_17_x86_64.whl",
                &glibc,
            ),
            (
                "x-1-cp312-cp312-musllinux_1_2_x86_64.whl",
                "x-1-cp312-cp312-musllinux_1_1_x86_64.whl",
                &musl,
            ),
            ("x-1-py3-none-any.whl", "x-1-py2.py30-none-any.whl", &glibc),
        ];
        for (good, worse, t) in better {
            let (g, w) = (rank(good, t), rank(worse, t));
            assert!(
                g.is_some() && w.is_some() && g < w,
                "{good} {g:?} vs {worse} {w:?}"
            );
        }
        assert_eq!(
            rank("x-1-cp312-cp312-manylinux_2_36_x86_64.whl", &glibc),
            Some(0)
        );
    }

    #[test]
    fn archs() {
        assert_eq!(Arch::from_oci("amd64"), Some(Arch::X86_64));
        assert_eq!(Arch::from_oci("arm64"), Some(Arch::Aarch64));
        assert_eq!(Arch::from_oci("s390x"), None);
    }

    #[test]
    fn unknown_libc_takes_pure_wheels_only() {
        let t = target(12, Arch::X86_64, Libc::Unknown);
        let cases: &[(&str, bool)] = &[
            ("six-1.16.0-py2.py3-none-any.whl", true),
            ("idna-3.7-py3-none-any.whl", true),
            ("tomli-2.0.1-cp312-none-any.whl", true),
            ("charset_normalizer-3.3.2-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", false),
            ("charset_normalizer-3.3.2-cp312-cp312-musllinux_1_1_x86_64.whl", false),
            ("cffi-1.16.0-cp312-abi3-linux_x86_64.whl", false),
            ("mypy-1.0-py3-none-linux_x86_64.whl", false),
        ];
        for (file, fits) in cases {
            let w = WheelFilename::parse(file).unwrap();
            assert_eq!(best_tag_rank(&w.tags(), &t).is_some(), *fits, "{file}");
        }
        assert!(compatible_tags(&t).iter().all(|tag| tag.platform == "any"));
    }
}
