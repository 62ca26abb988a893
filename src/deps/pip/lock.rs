//! pylock.toml (PEP 751): a resolution written down, so builds install
//! exactly the same wheels wherever and whenever they run.
//!
//! `hoist lock` writes one for the base's platforms; a build finds it next
//! to requirements.txt and installs from it as is, with no resolution and
//! no index listing: each package whose `marker` holds for the image gets
//! its best-fitting wheel among those listed, checked against the listed
//! sha256. `--locked` also checks that the lock still satisfies the
//! requirements (every top-level requirement that applies to the image is
//! met by a locked version), as `uv sync --locked` refuses a stale lock.
//!
//! hoist installs wheels only, so a lock naming an sdist, a VCS checkout,
//! a folder or an archive for a package the image needs is refused with
//! the package named; such entries are fine for packages whose marker
//! rules them out. What hoist writes is deliberately small and stable:
//! packages sorted by name, each wheel with its URL (or path, for a
//! `--find-links` folder), size and sha256, so a diff of two locks reads
//! as the list of changed packages.

use std::collections::BTreeMap;
use std::str::FromStr;

use pep440_rs::Version;
use pep508_rs::{MarkerTree, PackageName};
use serde::Deserialize;

use super::env::PythonEnv;
use super::requirements::RequirementLine;
use super::tags::{best_tag_rank, compatible_tags, WheelFilename};

/// The file name, next to requirements.txt.
pub const LOCK_NAME: &str = "pylock.toml";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LockError {
    #[error("not valid TOML: {0}")]
    Toml(String),
    #[error("lock-version {0} is not one hoist reads (1.x); write it again with `hoist lock`")]
    Version(String),
    #[error("package #{index}: {why}")]
    Package { index: usize, why: String },
    #[error(
        "{name} {version} is locked without a wheel (only {what}); hoist installs wheels only: \
         lock a version that has wheels, or build one into a --find-links folder"
    )]
    NotWheel {
        name: String,
        version: String,
        what: String,
    },
    #[error(
        "{name} {version}: none of the locked wheels fits the image ({wheels}); tags tried, best \
         first: {tried}. Run `hoist lock` for this base and platform"
    )]
    NoWheel {
        name: String,
        version: String,
        wheels: String,
        tried: String,
    },
    #[error("{name} is locked twice for this image ({first} and {second}); the markers overlap")]
    Twice {
        name: String,
        first: String,
        second: String,
    },
    #[error(
        "pylock.toml does not satisfy the requirements: {0}; run `hoist lock` to update it, or \
         build without --locked to resolve afresh"
    )]
    Unsatisfied(String),
}

/// A wheel of a locked package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedWheel {
    pub filename: WheelFilename,
    /// The file name as written (`name` in the lock).
    pub name: String,
    pub url: Option<String>,
    /// Relative to the lock's folder.
    pub path: Option<String>,
    pub size: Option<u64>,
    /// Lower-case hex.
    pub sha256: String,
}

/// One `[[packages]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedPackage {
    pub name: PackageName,
    pub version: Version,
    /// When the package applies; absent means always.
    pub marker: Option<MarkerTree>,
    /// The index it came from.
    pub index: Option<String>,
    pub wheels: Vec<LockedWheel>,
    /// What else the entry offers when it has no wheel, for messages.
    pub other_source: Option<&'static str>,
}

/// A pylock.toml.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lock {
    pub requires_python: Option<String>,
    pub packages: Vec<LockedPackage>,
}

/// A package the image gets, and the wheel chosen for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen<'a> {
    pub package: &'a LockedPackage,
    pub wheel: &'a LockedWheel,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawLock {
    lock_version: String,
    requires_python: Option<String>,
    #[serde(default)]
    packages: Vec<RawPackage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawPackage {
    name: String,
    version: Option<String>,
    marker: Option<String>,
    index: Option<String>,
    #[serde(default)]
    wheels: Vec<RawWheel>,
    sdist: Option<toml::Value>,
    vcs: Option<toml::Value>,
    directory: Option<toml::Value>,
    archive: Option<toml::Value>,
}

#[derive(Deserialize)]
struct RawWheel {
    name: Option<String>,
    url: Option<String>,
    path: Option<String>,
    size: Option<u64>,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
}

impl Lock {
    /// Reads a pylock.toml.
    pub fn parse(bytes: &[u8]) -> Result<Lock, LockError> {
        let text = std::str::from_utf8(bytes).map_err(|e| LockError::Toml(e.to_string()))?;
        let raw: RawLock = toml::from_str(text).map_err(|e| LockError::Toml(e.to_string()))?;
        if raw.lock_version.split('.').next() != Some("1") {
            return Err(LockError::Version(raw.lock_version));
        }
        let packages = raw
            .packages
            .into_iter()
            .enumerate()
            .map(|(i, p)| package(p).map_err(|why| LockError::Package { index: i + 1, why }))
            .collect::<Result<_, _>>()?;
        Ok(Lock {
            requires_python: raw.requires_python,
            packages,
        })
    }

    /// The packages the image gets, each with its best-fitting wheel.
    pub fn select(&self, env: &PythonEnv) -> Result<Vec<Chosen<'_>>, LockError> {
        let markers = env.markers();
        let mut chosen: BTreeMap<&PackageName, Chosen<'_>> = BTreeMap::new();
        for p in &self.packages {
            if p.marker
                .as_ref()
                .is_some_and(|m| !m.evaluate(&markers, &[]))
            {
                continue;
            }
            if p.wheels.is_empty() {
                return Err(LockError::NotWheel {
                    name: p.name.to_string(),
                    version: p.version.to_string(),
                    what: p.other_source.unwrap_or("nothing").to_owned(),
                });
            }
            let wheel = p
                .wheels
                .iter()
                .filter_map(|w| Some((best_tag_rank(&w.filename.tags(), &env.target)?, w)))
                .min_by_key(|(rank, _)| *rank)
                .map(|(_, w)| w)
                .ok_or_else(|| LockError::NoWheel {
                    name: p.name.to_string(),
                    version: p.version.to_string(),
                    wheels: p
                        .wheels
                        .iter()
                        .map(|w| w.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    tried: tags_tried(env),
                })?;
            if let Some(first) = chosen.get(&p.name) {
                return Err(LockError::Twice {
                    name: p.name.to_string(),
                    first: first.package.version.to_string(),
                    second: p.version.to_string(),
                });
            }
            chosen.insert(&p.name, Chosen { package: p, wheel });
        }
        Ok(chosen.into_values().collect())
    }

    /// Checks that every top-level requirement that applies to the image is
    /// met by a locked version, with its extras' packages present and a
    /// `--hash` list that admits the chosen wheel.
    pub fn check_satisfies(
        &self,
        requirements: &[(String, RequirementLine)],
        env: &PythonEnv,
    ) -> Result<(), LockError> {
        let chosen = self.select(env)?;
        let markers = env.markers();
        let by_name: BTreeMap<&PackageName, &Chosen<'_>> =
            chosen.iter().map(|c| (&c.package.name, c)).collect();
        for (file, line) in requirements {
            let req = &line.requirement;
            if !req.evaluate_markers(&markers, &[]) {
                continue;
            }
            let at = format!("{file}:{} wants {req}", line.line);
            let Some(c) = by_name.get(&req.name) else {
                return Err(LockError::Unsatisfied(format!("{at}, which is not locked")));
            };
            let version = &c.package.version;
            if let Some(pep508_rs::VersionOrUrl::VersionSpecifier(spec)) = &req.version_or_url {
                if !spec.contains(version) {
                    return Err(LockError::Unsatisfied(format!("{at}, locked is {version}")));
                }
            }
            if !line.hashes.is_empty() && !line.hashes.contains(&c.wheel.sha256) {
                return Err(LockError::Unsatisfied(format!(
                    "{at} with --hash values that do not include the locked {} (sha256 {})",
                    c.wheel.name, c.wheel.sha256
                )));
            }
        }
        Ok(())
    }

    /// The lock as TOML, packages sorted by name then version.
    pub fn to_toml(&self) -> String {
        let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
        let mut out = String::from("lock-version = \"1.0\"\ncreated-by = \"hoist\"\n");
        if let Some(rp) = &self.requires_python {
            out += &format!("requires-python = {}\n", q(rp));
        }
        let mut packages: Vec<&LockedPackage> = self.packages.iter().collect();
        packages.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        for p in packages {
            out += &format!(
                "\n[[packages]]\nname = {}\nversion = {}\n",
                q(p.name.as_ref()),
                q(&p.version.to_string())
            );
            if let Some(m) = p.marker.as_ref().and_then(MarkerTree::try_to_string) {
                out += &format!("marker = {}\n", q(&m));
            }
            if let Some(i) = &p.index {
                out += &format!("index = {}\n", q(i));
            }
            let mut wheels: Vec<&LockedWheel> = p.wheels.iter().collect();
            wheels.sort_by(|a, b| a.name.cmp(&b.name));
            wheels.dedup_by(|a, b| a.name == b.name);
            for w in wheels {
                out += &format!("[[packages.wheels]]\nname = {}\n", q(&w.name));
                if let Some(u) = &w.url {
                    out += &format!("url = {}\n", q(u));
                }
                if let Some(p) = &w.path {
                    out += &format!("path = {}\n", q(p));
                }
                if let Some(s) = w.size {
                    out += &format!("size = {s}\n");
                }
                out += &format!("hashes = {{ sha256 = {} }}\n", q(&w.sha256));
            }
        }
        out
    }
}

/// The image's best few tags and its most general one, for messages.
pub fn tags_tried(env: &PythonEnv) -> String {
    let tags = compatible_tags(&env.target);
    let show: Vec<String> = tags.iter().take(3).map(ToString::to_string).collect();
    match tags.last() {
        Some(last) if tags.len() > 3 => format!("{} ... {last}", show.join(", ")),
        _ => show.join(", "),
    }
}

fn package(p: RawPackage) -> Result<LockedPackage, String> {
    let name = PackageName::from_str(&p.name).map_err(|e| format!("name `{}`: {e}", p.name))?;
    let version = p
        .version
        .as_deref()
        .ok_or_else(|| format!("{name} has no version; hoist needs one for every package"))?;
    let version =
        Version::from_str(version).map_err(|e| format!("{name} version `{version}`: {e}"))?;
    let marker = p
        .marker
        .as_deref()
        .map(|m| MarkerTree::from_str(m).map_err(|e| format!("{name} marker `{m}`: {e}")))
        .transpose()?;
    let wheels = p
        .wheels
        .into_iter()
        .map(|w| wheel(&name, &version, w))
        .collect::<Result<Vec<_>, _>>()?;
    let other_source = [
        (p.sdist.is_some(), "an sdist"),
        (p.vcs.is_some(), "a VCS source"),
        (p.directory.is_some(), "a directory"),
        (p.archive.is_some(), "an archive"),
    ]
    .into_iter()
    .find_map(|(has, what)| has.then_some(what));
    Ok(LockedPackage {
        name,
        version,
        marker,
        index: p.index,
        wheels,
        other_source,
    })
}

fn wheel(name: &PackageName, version: &Version, w: RawWheel) -> Result<LockedWheel, String> {
    let file = w
        .name
        .clone()
        .or_else(|| {
            let from = w.url.as_deref().or(w.path.as_deref())?;
            let last = from.rsplit('/').next()?;
            Some(last.split(['?', '#']).next().unwrap_or(last).to_owned())
        })
        .ok_or_else(|| format!("{name}: a wheel with neither name, url nor path"))?;
    let filename = WheelFilename::parse(&file).map_err(|e| format!("{name}: {e}"))?;
    if &filename.name != name || &filename.version != version {
        return Err(format!(
            "{name} {version}: the wheel {file} is of another package or version"
        ));
    }
    if w.url.is_none() && w.path.is_none() {
        return Err(format!("{name}: the wheel {file} has neither url nor path"));
    }
    let sha256 = w
        .hashes
        .get("sha256")
        .map(|h| h.to_ascii_lowercase())
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("{name}: the wheel {file} has no sha256 in `hashes`"))?;
    Ok(LockedWheel {
        filename,
        name: file,
        url: w.url,
        path: w.path,
        size: w.size,
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps::pip::env::Scheme;
    use crate::deps::pip::requirements::RequirementsTxt;
    use crate::deps::pip::tags::{Arch, Libc, Target};
    use crate::layer::ImagePath;

    fn env(arch: Arch) -> PythonEnv {
        let p = |s: &str| ImagePath::new(s).unwrap();
        PythonEnv {
            version: (3, 11),
            full_version: Version::from_str("3.11.2").unwrap(),
            full_version_known: true,
            interpreter: p("usr/bin/python3.11"),
            scheme: Scheme {
                purelib: p("usr/local/lib/python3.11/dist-packages"),
                platlib: p("usr/local/lib/python3.11/dist-packages"),
                scripts: p("usr/local/bin"),
                data: p("usr/local"),
                headers: p("usr/local/include/python3.11"),
                home: None,
            },
            target: Target {
                python: (3, 11),
                arch,
                libc: Libc::Glibc {
                    major: 2,
                    minor: 36,
                },
            },
        }
    }

    const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";
    const H3: &str = "3333333333333333333333333333333333333333333333333333333333333333";

    fn sample() -> String {
        format!(
            r#"lock-version = "1.0"
created-by = "someone"
requires-python = ">=3.9"

[[packages]]
name = "Orjson"
version = "3.10.12"
[[packages.wheels]]
url = "https://files.example/orjson-3.10.12-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
hashes = {{ sha256 = "{H1}" }}
[[packages.wheels]]
name = "orjson-3.10.12-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
url = "https://files.example/orjson-aarch64.whl"
size = 12
hashes = {{ sha256 = "{H2}" }}

[[packages]]
name = "colorama"
version = "0.4.6"
marker = "sys_platform == 'win32'"
sdist = {{ url = "https://files.example/colorama-0.4.6.tar.gz", hashes = {{ sha256 = "{H3}" }} }}

[[packages]]
name = "six"
version = "1.17.0"
[[packages.wheels]]
path = "wheels/six-1.17.0-py2.py3-none-any.whl"
hashes = {{ sha256 = "{H3}" }}
"#
        )
    }

    #[test]
    fn select_picks_wheels_by_marker_and_tag() {
        let lock = Lock::parse(sample().as_bytes()).unwrap();
        for (arch, want) in [(Arch::X86_64, H1), (Arch::Aarch64, H2)] {
            let chosen = lock.select(&env(arch)).unwrap();
            let got: Vec<(String, &str)> = chosen
                .iter()
                .map(|c| (c.package.name.to_string(), c.wheel.sha256.as_str()))
                .collect();
            assert_eq!(
                got,
                vec![("orjson".to_owned(), want), ("six".to_owned(), H3)],
                "{arch:?}"
            );
        }
    }

    #[test]
    fn round_trip_is_stable() {
        let lock = Lock::parse(sample().as_bytes()).unwrap();
        let text = lock.to_toml();
        let again = Lock::parse(text.as_bytes()).unwrap();
        assert_eq!(again.to_toml(), text);
        assert_eq!(again.packages.len(), 3);
        assert!(
            text.contains("marker = \"sys_platform == 'win32'\""),
            "{text}"
        );
        assert!(text.contains("path = \"wheels/six-1.17.0-py2.py3-none-any.whl\""));
    }

    #[test]
    fn bad_locks_name_the_problem() {
        let wheel = |name: &str, hashes: &str| {
            format!("lock-version = \"1.0\"\n[[packages]]\nname = \"six\"\nversion = \"1.17.0\"\n[[packages.wheels]]\nname = \"{name}\"\nurl = \"https://x/y.whl\"\n{hashes}\n")
        };
        let good_hash = format!("hashes = {{ sha256 = \"{H1}\" }}");
        for (text, want) in [
            ("lock-version = \"2.0\"\n".to_owned(), "lock-version 2.0"),
            ("lock-version = [\n".to_owned(), "not valid TOML"),
            (
                "lock-version = \"1.0\"\n[[packages]]\nname = \"six\"\n".to_owned(),
                "six has no version",
            ),
            (
                wheel("six-1.17.0-py3-none-any.whl", "hashes = { md5 = \"00\" }"),
                "has no sha256",
            ),
            (
                wheel("six-1.16.0-py3-none-any.whl", &good_hash),
                "another package or version",
            ),
            (wheel("six.whl", &good_hash), "package #1: six"),
        ] {
            let err = Lock::parse(text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{text}\n=> {err}");
        }
    }

    #[test]
    fn select_refuses_what_it_cannot_install() {
        let sdist_only = format!(
            "lock-version = \"1.0\"\n[[packages]]\nname = \"pkg\"\nversion = \"1.0\"\nsdist = {{ url = \"https://x/pkg-1.0.tar.gz\", hashes = {{ sha256 = \"{H1}\" }} }}\n"
        );
        let err = Lock::parse(sdist_only.as_bytes())
            .unwrap()
            .select(&env(Arch::X86_64))
            .unwrap_err();
        assert!(err.to_string().contains("only an sdist"), "{err}");

        let win_only = format!(
            "lock-version = \"1.0\"\n[[packages]]\nname = \"pkg\"\nversion = \"1.0\"\n[[packages.wheels]]\nurl = \"https://x/pkg-1.0-cp311-cp311-win_amd64.whl\"\nhashes = {{ sha256 = \"{H1}\" }}\n"
        );
        let err = Lock::parse(win_only.as_bytes())
            .unwrap()
            .select(&env(Arch::X86_64))
            .unwrap_err()
            .to_string();
        assert!(err.contains("pkg 1.0: none of the locked wheels"), "{err}");
        assert!(err.contains("cp311-cp311-manylinux_2_36_x86_64"), "{err}");

        let twice = format!(
            "lock-version = \"1.0\"\n[[packages]]\nname = \"six\"\nversion = \"1.16.0\"\n[[packages.wheels]]\nurl = \"https://x/six-1.16.0-py3-none-any.whl\"\nhashes = {{ sha256 = \"{H1}\" }}\n[[packages]]\nname = \"six\"\nversion = \"1.17.0\"\n[[packages.wheels]]\nurl = \"https://x/six-1.17.0-py3-none-any.whl\"\nhashes = {{ sha256 = \"{H1}\" }}\n"
        );
        let err = Lock::parse(twice.as_bytes())
            .unwrap()
            .select(&env(Arch::X86_64))
            .unwrap_err();
        assert!(matches!(err, LockError::Twice { .. }), "{err}");
    }

    #[test]
    fn locked_check_against_requirements() {
        let lock = Lock::parse(sample().as_bytes()).unwrap();
        let env = env(Arch::X86_64);
        let check = |text: &str| {
            let reqs = RequirementsTxt::parse(text.as_bytes()).unwrap();
            let lines: Vec<(String, RequirementLine)> = reqs
                .requirements
                .into_iter()
                .map(|l| ("requirements.txt".to_owned(), l))
                .collect();
            lock.check_satisfies(&lines, &env)
        };
        for ok in [
            "orjson==3.10.12\nsix\n",
            "orjson>=3\n",
            "pywin32==306 ; sys_platform == 'win32'\n",
            &format!("six --hash=sha256:{H2} --hash=sha256:{H3}\n"),
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for (bad, want) in [
            (
                "orjson==3.10.13\n",
                "requirements.txt:1 wants orjson==3.10.13, locked is 3.10.12",
            ),
            (
                "\nflask\n",
                "requirements.txt:2 wants flask, which is not locked",
            ),
            (
                &format!("six --hash=sha256:{H2}\n"),
                "do not include the locked",
            ),
        ] {
            let err = check(bad).unwrap_err().to_string();
            assert!(err.contains(want), "{bad}\n=> {err}");
            assert!(err.contains("hoist lock"), "{err}");
        }
    }
}
