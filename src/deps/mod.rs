//! Third-party dependencies installed natively, one module per ecosystem.
//!
//! Each installer turns an ecosystem's manifests into layer entries; none of
//! them runs the ecosystem's own tool or touches image transport.
//!
//! The build calls this module twice: [`prepare`] before it reads the
//! base, to decide which installer applies (`--deps`, or what the project
//! folder holds) and to read and check the manifests, so that bad input
//! fails before any slow step; then [`Project::install`] once the base's
//! facts (its C library) are known, which returns the deps layer, from
//! the cache or freshly built.

pub mod npm;
pub mod pip;

use std::path::Path;

use crate::facts;
use crate::image::Platform;
use crate::layer::{Compression, ImagePath, Layer};
use crate::store::Store;

pub use crate::graph::spec::DepsKind;

/// How the deps layer is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DepsOptions {
    pub kind: DepsKind,
    /// Keep development dependencies (the dev target).
    pub dev: bool,
    /// Refuse packages whose install scripts would have run.
    pub strict_scripts: bool,
    /// Rebuild the layer even when the cache has it.
    pub no_cache: bool,
    /// pip: resolve afresh instead of using the cached resolution.
    pub refresh: bool,
    /// pip: install only from pylock.toml, and only when it satisfies the
    /// requirements.
    pub locked: bool,
    /// No network: every package and answer must be in the store.
    pub offline: bool,
    /// npm: run the install scripts of the packages that have them in the
    /// sandbox, on the base and the run steps, into the deps layer.
    pub scripts_in_sandbox: bool,
    /// pip: build the packages that have only an sdist into wheels in the
    /// sandbox, on the base and the run steps.
    pub sdists_in_sandbox: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error("--deps npm: {0} has no package.json")]
    NoPackageJson(String),
    #[error("--deps pip: {0} has no requirements.txt")]
    NoRequirements(String),
    #[error(
        "{0} has both npm and Python manifests; say which installer makes the deps layer with \
         --deps npm or --deps pip"
    )]
    Both(String),
    #[error(transparent)]
    Npm(#[from] npm::NpmError),
    #[error(transparent)]
    PipProject(#[from] pip::project::ProjectError),
    #[error(transparent)]
    PipEnv(#[from] pip::env::EnvError),
    #[error("pip install --user: the user's home {0}")]
    UserHome(String),
    #[error(transparent)]
    Pip(#[from] pip::install::PipError),
    #[error("--deps pip needs the base's facts (its Python), and none were read")]
    NoFacts,
}

/// Python project files hoist does not read; it says how to export a
/// requirements.txt from them.
const OTHER_PYTHON_FILES: [(&str, &str); 3] = [
    (
        "pyproject.toml",
        "uv export --format requirements-txt, or pip-compile pyproject.toml",
    ),
    ("poetry.lock", "poetry export -f requirements.txt"),
    ("Pipfile", "pipenv requirements"),
];

/// A project whose dependencies go into a deps layer.
#[derive(Debug)]
pub enum Project {
    Npm(Box<npm::Project>),
    Pip(Box<pip::project::Project>),
}

/// Decides which installer applies to the project in `root` and reads its
/// manifests; `None` when no deps layer is wanted. Reports to `warn` what
/// `auto` leaves out.
pub fn prepare(
    root: &Path,
    opts: &DepsOptions,
    warn: &mut dyn FnMut(String),
) -> Result<Option<Project>, DepsError> {
    let has = |name: &str| root.join(name).is_file();
    let env = |name: &str| std::env::var(name).ok();
    let npm_files = ["package.json", "package-lock.json", "npm-shrinkwrap.json"]
        .into_iter()
        .any(has);
    let requirements = has(pip::project::REQUIREMENTS_NAME);
    let read_pip = || -> Result<Option<Project>, DepsError> {
        Ok(pip::project::Project::read(root, opts.dev)?.map(|p| Project::Pip(Box::new(p))))
    };
    let read_npm = || -> Result<Option<Project>, DepsError> {
        Ok(npm::Project::read(root, &env)?.map(|p| Project::Npm(Box::new(p))))
    };
    match opts.kind {
        DepsKind::None => Ok(None),
        DepsKind::Pip if !requirements => {
            let hint = OTHER_PYTHON_FILES
                .iter()
                .find(|(f, _)| has(f))
                .map(|(f, how)| format!(" (it has {f}: export one with `{how}`)"))
                .unwrap_or_default();
            Err(DepsError::NoRequirements(format!(
                "{}{hint}",
                root.display()
            )))
        }
        DepsKind::Pip => read_pip(),
        DepsKind::Npm => {
            if !has("package.json") {
                return Err(DepsError::NoPackageJson(root.display().to_string()));
            }
            read_npm()
        }
        DepsKind::Auto => match (npm_files, requirements) {
            (true, true) => Err(DepsError::Both(root.display().to_string())),
            (true, false) => read_npm(),
            (false, true) => read_pip(),
            (false, false) => {
                if let Some((f, how)) = OTHER_PYTHON_FILES.iter().find(|(f, _)| has(f)) {
                    warn(format!(
                        "found {f} but no requirements.txt, which is what hoist installs from; \
                         the image gets no deps layer (export one with `{how}`)"
                    ));
                }
                Ok(None)
            }
        },
    }
}

/// What the build knows that an installer needs.
#[derive(Debug, Clone)]
pub struct InstallInput<'a> {
    pub workdir: &'a ImagePath,
    pub platform: &'a Platform,
    /// What the base's filesystem says (its C library, its Python).
    pub facts: Option<&'a facts::Facts>,
    /// The base's config `Env` (official python images state their
    /// version there).
    pub config_env: &'a [String],
    pub compression: Compression,
    pub epoch: u64,
    /// A shared cache (`--cache-from`, `--cache-to`) to look layers up in
    /// after a local miss, and to share them to.
    pub shared: Option<&'a dyn crate::cache::SharedCache>,
    /// Where install scripts and sdist builds run: the base and the
    /// `[[run]]` steps' layers.
    pub sandbox: Option<&'a crate::sandbox::Ground>,
    /// pip: `pip install --user` by the user whose home this is.
    pub pip_user_home: Option<&'a ImagePath>,
}

/// What a deps layer holds and how it was had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepsSummary {
    /// `npm`.
    pub ecosystem: &'static str,
    /// The file the dependencies were read from.
    pub manifest: String,
    /// Found in the cache (nothing was downloaded or unpacked).
    pub reused: bool,
    pub packages: usize,
    pub files: usize,
    pub bin_links: usize,
    pub links: usize,
    /// Packages downloaded by this build, and their bytes.
    pub downloaded: usize,
    pub downloaded_bytes: u64,
    /// Packages found in the store.
    pub from_store: usize,
    /// pip: sdists built into wheels in the sandbox by this build.
    pub built_sdists: usize,
}

/// A deps layer.
#[derive(Debug, Clone)]
pub struct DepsLayer {
    pub layer: Layer,
    /// What made it, for the image's history (`npm ci --omit=dev ...`).
    pub command: String,
    pub summary: DepsSummary,
    /// Each third-party package in it, for the SBOM; known on a cache hit
    /// too (from the lockfile or the pins, which the hit path reads).
    pub packages: Vec<Package>,
}

/// The package ecosystem a [`Package`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ecosystem {
    Npm,
    Pypi,
    /// A Debian package the base holds (dpkg's status or status.d).
    Deb,
    /// An Alpine package the base holds.
    Apk,
}

/// A hash algorithm a package's artifact is known by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashAlgorithm {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

/// One hash of a package's artifact (the npm tarball, the wheel).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackageHash {
    pub algorithm: HashAlgorithm,
    /// Lower-case hex.
    pub hex: String,
}

/// One third-party package an installer put in a deps layer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Package {
    pub ecosystem: Ecosystem,
    /// The name as its registry spells it (`@scope/name` for npm).
    pub name: String,
    pub version: String,
    /// Where its artifact was fetched from, when known.
    pub download: Option<String>,
    /// The artifact's file name (a wheel's), when it has one.
    pub file: Option<String>,
    /// Where it lies in the layer, relative to the install root
    /// (`node_modules/a/node_modules/b`), when that is known.
    pub path: Option<String>,
    pub hashes: Vec<PackageHash>,
}

impl Project {
    /// The deps layer (cached or built), or `None` when there is nothing
    /// to install.
    pub fn install(
        &self,
        input: &InstallInput<'_>,
        opts: &DepsOptions,
        store: &Store,
        warn: &mut dyn FnMut(String),
    ) -> Result<Option<DepsLayer>, DepsError> {
        match self {
            Project::Npm(project) => {
                let libc = input.facts.and_then(|f| f.libc).map(|l| match l {
                    facts::Libc::Glibc => npm::select::Libc::Glibc,
                    facts::Libc::Musl => npm::select::Libc::Musl,
                });
                let installed = project.install(
                    &npm::InstallOptions {
                        workdir: input.workdir,
                        platform: input.platform,
                        libc,
                        dev: opts.dev,
                        strict_scripts: opts.strict_scripts,
                        no_cache: opts.no_cache,
                        compression: input.compression,
                        epoch: input.epoch,
                        shared: input.shared,
                        scripts: input.sandbox.filter(|_| opts.scripts_in_sandbox),
                    },
                    store,
                    warn,
                )?;
                Ok(installed.map(|i| DepsLayer {
                    packages: i.packages,
                    summary: DepsSummary {
                        ecosystem: "npm",
                        manifest: project.lockfile_name().to_owned(),
                        reused: i.reused,
                        packages: i.counts.packages,
                        files: i.counts.files,
                        bin_links: i.counts.bin_links,
                        links: i.counts.links,
                        downloaded: i.counts.downloaded,
                        downloaded_bytes: i.counts.downloaded_bytes,
                        from_store: i.counts.from_store,
                        built_sdists: 0,
                    },
                    layer: i.layer,
                    command: i.command,
                }))
            }
            Project::Pip(project) => {
                let facts = input.facts.ok_or(DepsError::NoFacts)?;
                let mut env =
                    pip::env::PythonEnv::from_facts(facts, input.platform, input.config_env)?;
                if let Some(home) = input.pip_user_home {
                    env.scheme = pip::env::Scheme::user(home, env.version)
                        .map_err(|e| DepsError::UserHome(e.to_string()))?;
                }
                if let Some(python) = &facts.python {
                    let lines = project.requirements.iter().chain(&project.constraints);
                    env.check_full_version(
                        python,
                        input.config_env,
                        lines.map(|(file, l)| (format!("{file}:{}", l.line), &l.requirement)),
                    )?;
                }
                let i = project.install(
                    &pip::install::InstallOptions {
                        env: &env,
                        no_cache: opts.no_cache,
                        refresh: opts.refresh,
                        locked: opts.locked,
                        offline: opts.offline,
                        compression: input.compression,
                        epoch: input.epoch,
                        shared: input.shared,
                        sdists: input.sandbox.filter(|_| opts.sdists_in_sandbox),
                    },
                    store,
                    warn,
                )?;
                Ok(Some(DepsLayer {
                    packages: i.packages,
                    summary: DepsSummary {
                        ecosystem: "pip",
                        manifest: match i.pins_from {
                            "pylock.toml" => "pylock.toml".to_owned(),
                            _ => pip::project::REQUIREMENTS_NAME.to_owned(),
                        },
                        reused: i.reused,
                        packages: i.counts.packages,
                        files: i.counts.files,
                        bin_links: i.counts.scripts,
                        links: 0,
                        downloaded: i.counts.downloaded,
                        downloaded_bytes: i.counts.downloaded_bytes,
                        from_store: i.counts.from_store,
                        built_sdists: i.counts.built,
                    },
                    layer: i.layer,
                    command: i.command,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        for (s, k) in [
            ("auto", DepsKind::Auto),
            ("npm", DepsKind::Npm),
            ("pip", DepsKind::Pip),
            ("none", DepsKind::None),
        ] {
            assert_eq!(DepsKind::parse(s), Ok(k));
        }
        assert!(DepsKind::parse("yarn")
            .unwrap_err()
            .contains("auto (default), npm, pip or none"));
    }

    #[test]
    fn prepare_decides_from_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let w = |name: &str, body: &str| std::fs::write(root.join(name), body).unwrap();
        let auto = DepsOptions::default();
        let run = |opts: DepsOptions| {
            let mut warnings = Vec::new();
            let r = prepare(root, &opts, &mut |w| warnings.push(w));
            (r, warnings)
        };
        // Nothing at all.
        let (r, warnings) = run(auto);
        assert!(r.unwrap().is_none() && warnings.is_empty());
        // pyproject.toml alone: a warning saying how to export; --deps pip:
        // an error saying the same.
        w("pyproject.toml", "[project]\nname = 'x'\n");
        let (r, warnings) = run(auto);
        assert!(r.unwrap().is_none());
        assert!(warnings[0].contains("uv export"), "{warnings:?}");
        let pip = DepsOptions {
            kind: DepsKind::Pip,
            ..auto
        };
        let err = run(pip).0.unwrap_err().to_string();
        assert!(
            err.contains("has no requirements.txt") && err.contains("uv export"),
            "{err}"
        );
        // requirements.txt: the pip installer, by auto or by name.
        w("requirements.txt", "flask\n");
        assert!(matches!(run(auto).0, Ok(Some(Project::Pip(_)))));
        assert!(matches!(run(pip).0, Ok(Some(Project::Pip(_)))));
        // Both kinds of manifest: auto asks which.
        w("package.json", r#"{"name": "x"}"#);
        let err = run(auto).0.unwrap_err().to_string();
        assert!(err.contains("--deps npm or --deps pip"), "{err}");
        std::fs::remove_file(root.join("requirements.txt")).unwrap();
        std::fs::remove_file(root.join("pyproject.toml")).unwrap();
        // package.json with no dependency: nothing to install.
        w(
            "package.json",
            r#"{"name": "x", "scripts": {"start": "node ."}}"#,
        );
        let (r, warnings) = run(auto);
        assert!(r.unwrap().is_none() && warnings.is_empty(), "{warnings:?}");
        // With a dependency and no lockfile: the error says how to make one.
        w("package.json", r#"{"dependencies": {"ms": "^2"}}"#);
        let err = run(auto).0.unwrap_err().to_string();
        assert!(err.contains("npm install --package-lock-only"), "{err}");
        let none = DepsOptions {
            kind: DepsKind::None,
            ..auto
        };
        assert!(run(none).0.unwrap().is_none());
        std::fs::remove_file(root.join("package.json")).unwrap();
        let npm = DepsOptions {
            kind: DepsKind::Npm,
            ..auto
        };
        assert!(matches!(run(npm).0, Err(DepsError::NoPackageJson(_))));
    }
}
