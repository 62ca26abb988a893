//! A Python project's inputs, read before the build touches the base:
//! requirements.txt with its `-r` and `-c` includes, the index options
//! they carry, and pylock.toml when there is one.
//!
//! Reading everything first means bad input (a typo in a pin, a missing
//! include, a half-hashed file) fails in milliseconds, before any base is
//! pulled. The bytes of every file read also make the resolution's cache
//! key ([`Project::inputs_digest`]): as Docker keys `RUN pip install` on
//! the copied requirements file, a code-only rebuild finds the resolution
//! in the store and asks no index anything.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use pep508_rs::VersionOrUrl;
use sha2::{Digest as _, Sha256};

use super::lock::{Lock, LockError, LOCK_NAME};
use super::requirements::{IncludeKind, RequirementLine, RequirementsError, RequirementsTxt};

/// The requirements file a project is found by.
pub const REQUIREMENTS_NAME: &str = "requirements.txt";

/// The dev target's extra requirements files, the first found is read
/// after requirements.txt (the usual names; `-r requirements.txt` inside
/// one is not read twice).
pub const DEV_REQUIREMENTS_NAMES: [&str; 3] = [
    "requirements-dev.txt",
    "dev-requirements.txt",
    "requirements/dev.txt",
];

/// How deep `-r` includes may nest; pip has no limit but a cycle check.
const MAX_INCLUDE_DEPTH: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {source}")]
    Requirements {
        file: String,
        #[source]
        source: RequirementsError,
    },
    #[error("{file}:{line}: `{include}` leaves the project folder; keep included files inside it, the build reads nothing else")]
    IncludeOutside {
        file: String,
        line: usize,
        include: String,
    },
    #[error("{file}:{line}: `-r {include}` includes itself (through {chain}); remove the cycle")]
    IncludeCycle {
        file: String,
        line: usize,
        include: String,
        chain: String,
    },
    #[error(
        "{file}:{line}: {name} has no --hash, but other requirements do; pip's hash-checking \
         mode wants a --hash on every requirement (pip-compile --generate-hashes writes them)"
    )]
    MissingHash {
        file: String,
        line: usize,
        name: String,
    },
    #[error(
        "{file}:{line}: {name} has --hash values but is not pinned with ==; pip's hash-checking \
         mode wants exact pins"
    )]
    HashNotPinned {
        file: String,
        line: usize,
        name: String,
    },
    #[error("{path}: {source}")]
    Lock {
        path: String,
        #[source]
        source: LockError,
    },
}

/// Index options gathered from every requirements file read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexOptions {
    /// `--index-url`: the last one read wins, as in pip.
    pub index_url: Option<String>,
    pub extra_index_urls: Vec<String>,
    /// `--find-links`: URLs as written, folders made absolute (relative
    /// ones are relative to the file that names them).
    pub find_links: Vec<String>,
    pub no_index: bool,
    pub pre: bool,
}

/// A requirement and the file it was read from (relative to the project).
pub type Located = (String, RequirementLine);

/// The project's Python inputs.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub requirements: Vec<Located>,
    pub constraints: Vec<Located>,
    pub index: IndexOptions,
    /// Some requirement carries `--hash`, so all do (pip's
    /// hash-checking mode).
    pub require_hashes: bool,
    /// pylock.toml next to requirements.txt, parsed.
    pub lock: Option<Lock>,
    /// sha256 of every file read (names and bytes, in reading order).
    pub inputs_digest: String,
}

impl Project {
    /// Reads `root/requirements.txt` and what it includes (with `dev`, also
    /// the first of [`DEV_REQUIREMENTS_NAMES`] there is); `None` when the
    /// project has no requirements file.
    pub fn read(root: &Path, dev: bool) -> Result<Option<Project>, ProjectError> {
        let main = root.join(REQUIREMENTS_NAME);
        if !main.is_file() {
            return Ok(None);
        }
        let mut reader = Reader {
            root,
            read: Vec::new(),
            hasher: Sha256::new(),
            project: Project {
                root: root.to_owned(),
                requirements: Vec::new(),
                constraints: Vec::new(),
                index: IndexOptions::default(),
                require_hashes: false,
                lock: None,
                inputs_digest: String::new(),
            },
        };
        reader.file(
            REQUIREMENTS_NAME,
            IncludeKind::Requirements,
            &mut Vec::new(),
        )?;
        let dev_file = DEV_REQUIREMENTS_NAMES
            .into_iter()
            .filter(|_| dev)
            .find(|n| root.join(n).is_file());
        if let Some(name) = dev_file {
            reader.file(name, IncludeKind::Requirements, &mut Vec::new())?;
        }
        let mut project = reader.project;
        project.inputs_digest = hex::encode(reader.hasher.finalize());
        project.check_hashes()?;
        let lock_path = root.join(LOCK_NAME);
        if lock_path.is_file() {
            let bytes = read(&lock_path)?;
            project.lock = Some(Lock::parse(&bytes).map_err(|source| ProjectError::Lock {
                path: lock_path.display().to_string(),
                source,
            })?);
        }
        Ok(Some(project))
    }

    /// Hash-checking mode: when one requirement has `--hash`, every one
    /// must, pinned with `==`.
    fn check_hashes(&mut self) -> Result<(), ProjectError> {
        self.require_hashes = self.requirements.iter().any(|(_, l)| !l.hashes.is_empty());
        if !self.require_hashes {
            return Ok(());
        }
        for (file, l) in &self.requirements {
            let name = l.requirement.name.to_string();
            if l.hashes.is_empty() {
                return Err(ProjectError::MissingHash {
                    file: file.clone(),
                    line: l.line,
                    name,
                });
            }
            if pinned(l).is_none() {
                return Err(ProjectError::HashNotPinned {
                    file: file.clone(),
                    line: l.line,
                    name,
                });
            }
        }
        Ok(())
    }

    /// The names of the top-level requirements.
    pub fn top_level(&self) -> BTreeSet<String> {
        self.requirements
            .iter()
            .map(|(_, l)| l.requirement.name.to_string())
            .collect()
    }
}

/// The version a `==` pin names (no wildcard), if the line is one.
pub fn pinned(l: &RequirementLine) -> Option<String> {
    let Some(VersionOrUrl::VersionSpecifier(spec)) = &l.requirement.version_or_url else {
        return None;
    };
    let mut it = spec.iter();
    let (Some(one), None) = (it.next(), it.next()) else {
        return None;
    };
    let text = one.to_string();
    let v = text
        .strip_prefix("===")
        .or_else(|| text.strip_prefix("=="))?
        .trim();
    (!v.ends_with(".*")).then(|| v.to_owned())
}

fn read(path: &Path) -> Result<Vec<u8>, ProjectError> {
    std::fs::read(path).map_err(|source| ProjectError::Read {
        path: path.display().to_string(),
        source,
    })
}

struct Reader<'a> {
    root: &'a Path,
    /// Files read so far, as (path, kind): one included twice is read once.
    read: Vec<(String, IncludeKind)>,
    hasher: Sha256,
    project: Project,
}

impl Reader<'_> {
    /// Reads one file (`rel` to the project root) and its includes.
    fn file(
        &mut self,
        rel: &str,
        kind: IncludeKind,
        chain: &mut Vec<String>,
    ) -> Result<(), ProjectError> {
        if self.read.iter().any(|(r, k)| r == rel && *k == kind) {
            return Ok(());
        }
        self.read.push((rel.to_owned(), kind));
        let bytes = read(&self.root.join(rel))?;
        self.hasher.update(format!("{rel}\0{}\0", bytes.len()));
        self.hasher.update(&bytes);
        let parsed =
            RequirementsTxt::parse(&bytes).map_err(|source| ProjectError::Requirements {
                file: rel.to_owned(),
                source,
            })?;
        chain.push(rel.to_owned());
        let dir = Path::new(rel).parent().unwrap_or(Path::new(""));
        let lines = parsed.requirements.into_iter().map(|l| (rel.to_owned(), l));
        match kind {
            IncludeKind::Requirements => self.project.requirements.extend(lines),
            IncludeKind::Constraints => self.project.constraints.extend(lines),
        }
        let index = &mut self.project.index;
        if parsed.index_url.is_some() {
            index.index_url = parsed.index_url;
        }
        index.extra_index_urls.extend(parsed.extra_index_urls);
        for link in parsed.find_links {
            let is_url = link.contains("://");
            index.find_links.push(if is_url {
                link
            } else {
                self.root.join(dir).join(&link).display().to_string()
            });
        }
        index.no_index |= parsed.no_index;
        index.pre |= parsed.pre;
        for inc in parsed.includes {
            let joined =
                normalize(&dir.join(&inc.path)).ok_or_else(|| ProjectError::IncludeOutside {
                    file: rel.to_owned(),
                    line: inc.line,
                    include: inc.path.clone(),
                })?;
            if chain.contains(&joined) {
                return Err(ProjectError::IncludeCycle {
                    file: rel.to_owned(),
                    line: inc.line,
                    include: inc.path.clone(),
                    chain: chain.join(" -> "),
                });
            }
            if chain.len() >= MAX_INCLUDE_DEPTH {
                return Err(ProjectError::IncludeCycle {
                    file: rel.to_owned(),
                    line: inc.line,
                    include: inc.path.clone(),
                    chain: format!("{} levels of includes", chain.len()),
                });
            }
            // A constraints file's own `-r` lines constrain too.
            let kind = match (kind, inc.kind) {
                (IncludeKind::Constraints, _) => IncludeKind::Constraints,
                (_, k) => k,
            };
            self.file(&joined, kind, chain)?;
        }
        chain.pop();
        Ok(())
    }
}

/// `a/../b/./c` -> `b/c`; `None` when it climbs out of the root or is
/// absolute.
fn normalize(p: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(s) => parts.push(s.to_str()?.to_owned()),
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(
        files: &[(&str, &str)],
    ) -> (tempfile::TempDir, Result<Option<Project>, ProjectError>) {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        let r = Project::read(dir.path(), false);
        (dir, r)
    }

    const H: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn includes_constraints_and_options() {
        let (dir, r) = project(&[
            (
                "requirements.txt",
                "-r reqs/base.txt\n-c constraints.txt\nflask>=3\n--extra-index-url https://extra/simple/\n",
            ),
            ("reqs/base.txt", "requests==2.32.3\n-f ../wheels\n--pre\n"),
            ("constraints.txt", "urllib3<2\n-r more-constraints.txt\n"),
            ("more-constraints.txt", "idna<4\n-i https://mirror/simple/\n"),
        ]);
        let p = r.unwrap().unwrap();
        let names = |v: &[Located]| -> Vec<String> {
            v.iter()
                .map(|(f, l)| format!("{f}:{}:{}", l.line, l.requirement.name))
                .collect()
        };
        assert_eq!(
            names(&p.requirements),
            ["requirements.txt:3:flask", "reqs/base.txt:1:requests"]
        );
        assert_eq!(
            names(&p.constraints),
            ["constraints.txt:1:urllib3", "more-constraints.txt:1:idna"]
        );
        assert_eq!(p.index.index_url.as_deref(), Some("https://mirror/simple/"));
        assert_eq!(p.index.extra_index_urls, ["https://extra/simple/"]);
        assert_eq!(
            p.index.find_links,
            [dir.path().join("reqs/../wheels").display().to_string()]
        );
        assert!(p.index.pre && !p.index.no_index && !p.require_hashes);
        assert_eq!(p.inputs_digest.len(), 64);
        assert!(p.lock.is_none());
    }

    #[test]
    fn inputs_digest_follows_every_file() {
        let d = |inc: &str| {
            let (_dir, r) = project(&[("requirements.txt", "-r b.txt\n"), ("b.txt", inc)]);
            r.unwrap().unwrap().inputs_digest
        };
        assert_eq!(d("six\n"), d("six\n"));
        assert_ne!(d("six\n"), d("six==1.17.0\n"));
    }

    #[test]
    fn dev_reads_the_dev_requirements_too() {
        let files = [
            ("requirements.txt", "flask\n"),
            ("requirements-dev.txt", "-r requirements.txt\npytest\n"),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        let names = |dev| -> Vec<String> {
            Project::read(dir.path(), dev)
                .unwrap()
                .unwrap()
                .requirements
                .iter()
                .map(|(f, l)| format!("{f}:{}", l.requirement.name))
                .collect()
        };
        assert_eq!(names(false), ["requirements.txt:flask"]);
        assert_eq!(
            names(true),
            ["requirements.txt:flask", "requirements-dev.txt:pytest"]
        );
    }

    #[test]
    fn no_requirements_file_is_no_project() {
        let (_dir, r) = project(&[("pyproject.toml", "")]);
        assert!(r.unwrap().is_none());
    }

    #[test]
    fn bad_inputs_name_file_and_line() {
        for (files, want) in [
            (
                vec![("requirements.txt", "six\n-r missing.txt\n")],
                "reading ",
            ),
            (
                vec![("requirements.txt", "six\n-r ../outside.txt\n")],
                "requirements.txt:2: `../outside.txt` leaves the project folder",
            ),
            (
                vec![("requirements.txt", "-r a.txt\n"), ("a.txt", "\n-r requirements.txt\n")],
                "a.txt:2: `-r requirements.txt` includes itself (through requirements.txt -> a.txt)",
            ),
            (
                vec![("requirements.txt", "-r a.txt\n"), ("a.txt", "six==\n")],
                "a.txt: ",
            ),
            (
                vec![(
                    "requirements.txt",
                    &*format!("six==1.17.0 --hash=sha256:{H}\nidna==3.10\n"),
                )],
                "requirements.txt:2: idna has no --hash",
            ),
            (
                vec![("requirements.txt", &*format!("six>=1 --hash=sha256:{H}\n"))],
                "requirements.txt:1: six has --hash values but is not pinned",
            ),
            (
                vec![("requirements.txt", "six\n"), ("pylock.toml", "lock-version = \"9\"\n")],
                "pylock.toml: lock-version 9",
            ),
        ] {
            let (_dir, r) = project(&files);
            let err = r.unwrap_err().to_string();
            assert!(err.contains(want), "{files:?}\n=> {err}");
        }
    }

    #[test]
    fn hash_mode_and_pins() {
        let (_dir, r) = project(&[(
            "requirements.txt",
            &*format!("six==1.17.0 --hash=sha256:{H}\nidna===3.10 --hash=sha256:{H}\n"),
        )]);
        let p = r.unwrap().unwrap();
        assert!(p.require_hashes);
        let pins: Vec<Option<String>> = p.requirements.iter().map(|(_, l)| pinned(l)).collect();
        assert_eq!(pins, [Some("1.17.0".into()), Some("3.10".into())]);
        let one = |s: &str| pinned(&RequirementsTxt::parse(s.as_bytes()).unwrap().requirements[0]);
        assert_eq!(one("six==1.*\n"), None);
        assert_eq!(one("six>=1,<2\n"), None);
        assert_eq!(one("six\n"), None);
    }
}
