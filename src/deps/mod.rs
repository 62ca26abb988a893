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

/// `--deps`: which installer makes the deps layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DepsKind {
    /// Decide from the files in the project folder.
    #[default]
    Auto,
    Npm,
    Pip,
    None,
}

impl DepsKind {
    pub fn parse(s: &str) -> Result<DepsKind, String> {
        match s {
            "auto" => Ok(DepsKind::Auto),
            "npm" => Ok(DepsKind::Npm),
            "pip" => Ok(DepsKind::Pip),
            "none" => Ok(DepsKind::None),
            other => Err(format!(
                "unknown --deps `{other}`: use auto (default), npm, pip or none"
            )),
        }
    }
}

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
}

#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error(
        "--deps pip: Python dependencies are not installed by hoist yet; build with \
         --deps none and install them into the base for now"
    )]
    PipUnsupported,
    #[error("--deps npm: {0} has no package.json")]
    NoPackageJson(String),
    #[error(transparent)]
    Npm(#[from] npm::NpmError),
}

/// Files that mark a Python project.
const PYTHON_FILES: [&str; 3] = ["requirements.txt", "pyproject.toml", "Pipfile"];

/// A project whose dependencies go into a deps layer.
#[derive(Debug)]
pub enum Project {
    Npm(npm::Project),
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
    let python: Vec<&str> = PYTHON_FILES.into_iter().filter(|f| has(f)).collect();
    match opts.kind {
        DepsKind::None => Ok(None),
        DepsKind::Pip => Err(DepsError::PipUnsupported),
        DepsKind::Npm => {
            if !has("package.json") {
                return Err(DepsError::NoPackageJson(root.display().to_string()));
            }
            Ok(npm::Project::read(root, &env)?.map(Project::Npm))
        }
        DepsKind::Auto => {
            let npm = ["package.json", "package-lock.json", "npm-shrinkwrap.json"]
                .into_iter()
                .any(has);
            if !python.is_empty() {
                warn(format!(
                    "found {}, but hoist does not install Python dependencies yet; {}",
                    python.join(", "),
                    if npm {
                        "only the npm dependencies go in the deps layer"
                    } else {
                        "the image gets no deps layer"
                    }
                ));
            }
            if !npm {
                return Ok(None);
            }
            Ok(npm::Project::read(root, &env)?.map(Project::Npm))
        }
    }
}

/// What the build knows that an installer needs.
#[derive(Debug, Clone)]
pub struct InstallInput<'a> {
    pub workdir: &'a ImagePath,
    pub platform: &'a Platform,
    pub libc: Option<facts::Libc>,
    pub compression: Compression,
    pub epoch: u64,
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
}

/// A deps layer.
#[derive(Debug, Clone)]
pub struct DepsLayer {
    pub layer: Layer,
    /// What made it, for the image's history (`npm ci --omit=dev ...`).
    pub command: String,
    pub summary: DepsSummary,
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
                let libc = input.libc.map(|l| match l {
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
                    },
                    store,
                    warn,
                )?;
                Ok(installed.map(|i| DepsLayer {
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
        // requirements.txt alone: a warning, no layer; --deps pip: an error.
        w("requirements.txt", "flask\n");
        let (r, warnings) = run(auto);
        assert!(r.unwrap().is_none());
        assert!(warnings[0].contains("no deps layer"), "{warnings:?}");
        let pip = DepsOptions {
            kind: DepsKind::Pip,
            ..auto
        };
        assert!(matches!(run(pip).0, Err(DepsError::PipUnsupported)));
        // package.json with no dependency: nothing to install.
        w(
            "package.json",
            r#"{"name": "x", "scripts": {"start": "node ."}}"#,
        );
        let (r, warnings) = run(auto);
        assert!(r.unwrap().is_none());
        assert!(
            warnings[0].contains("only the npm dependencies"),
            "{warnings:?}"
        );
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
