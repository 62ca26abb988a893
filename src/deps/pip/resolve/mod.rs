//! Which versions pip would install for the image: requirements in, one
//! wheel per project out.
//!
//! pip resolves with resolvelib, a backtracking search that asks the index
//! for candidates newest first. hoist uses pubgrub (the algorithm uv builds
//! on) for the search, because it backtracks by learning why a choice
//! failed, and because its record of those reasons becomes an explanation
//! when no answer exists. What pip would choose is kept in the provider,
//! which answers pubgrub's three questions (which version next, what it
//! depends on, which project to decide next) the way pip's finder and
//! resolver answer them:
//!
//! 1. **Candidates.** A version counts when at least one of its files is
//!    installable for the image: a wheel whose tags fit the image's
//!    interpreter, CPU and C library, or an sdist. Files whose
//!    `Requires-Python` excludes the image's Python are left out one by
//!    one, as pip does. Yanked files (PEP 592) count only when every
//!    remaining file of the version is yanked and a requirement pins that
//!    version with `==` or `===`.
//! 2. **Order.** Newest first. Pre-releases only with `--pre`, when some
//!    requirement's specifier names a pre-release, or when no final
//!    release is left in the range (packaging's fallback, which pip
//!    inherits). Pins and pre-release specifiers count from when they are
//!    read, even if the version that said them is later given up.
//! 3. **Dependencies.** Read from the core metadata of the best wheel of
//!    the chosen version, fetched once per version. Markers are evaluated
//!    for the image's marker environment, never the host's. An extra is a
//!    project of its own, `name[extra]`: its version `v` depends on
//!    `name == v` and on the requirements whose marker holds only with
//!    that extra, so the extra's dependencies come in exactly when some
//!    requirer asks for it (pip's `ExtrasCandidate`). An extra the
//!    metadata does not declare adds nothing, with a warning, as in pip.
//! 4. **Constraints** (`-c` files) narrow every requirement on their
//!    project and add none; versions they pin count as pinned.
//!
//! A chosen version that has no wheel for the image (only an sdist, or an
//! sdist beside wheels for other platforms) stops the resolution with
//! [`ResolveError::NoWheel`]: pip would build the sdist, and quietly
//! taking an older version instead would install something pip would not.
//! Unless the [`Source`] builds sdists (`sdists = "sandbox"`,
//! [`super::sdist`]): then the version's wheel is the one built from its
//! sdist, and its dependencies are read from that wheel's metadata.
//!
//! Where the search order cannot match resolvelib's, the answer can differ
//! only when several answers exist after backtracking: for sets that
//! resolve without conflicts, newest-first gives pip's answer.
//!
//! The parts, as uv's resolver has them: `range` turns specifiers into
//! pubgrub's version ranges and back; `package` is what pubgrub decides
//! about (projects, extras, the root); `candidate` sorts a project's
//! files for the image and picks the version to try next; `provider`
//! answers pubgrub's questions and keeps the state they are answered from;
//! `prefetch` reads listings and metadata ahead of those questions, on
//! other threads, and downloads decided wheels meanwhile; `report` turns
//! a failure into the explanation users read. This file
//! holds the interface: the [`Source`] of projects, the input, the
//! resolution and its errors.

use std::collections::BTreeSet;
use std::sync::Arc;

use pep440_rs::Version;
use pep508_rs::{ExtraName, MarkerEnvironment, PackageName, Requirement};
use pubgrub::PubGrubError;

use super::dist::DistFile;
use super::env::PythonEnv;
use super::metadata::CoreMetadata;
use super::tags::Target;

mod candidate;
mod package;
mod prefetch;
mod provider;
mod range;
mod report;
#[cfg(test)]
mod tests;

use package::{root_version, Pkg};
use provider::Provider;

/// Where the resolver reads projects from: the indexes and wheelhouses the
/// requirements name, behind the index client. A trait, so that resolution
/// is tested against projects held in memory.
pub trait Source: Sync {
    /// Every file the indexes offer for the project (any version, any
    /// tags); empty when none of them knows the project.
    fn files(&self, name: &PackageName) -> Result<Arc<Vec<DistFile>>, SourceError>;
    /// The core metadata of one file (the chosen wheel of a version).
    fn metadata(&self, file: &DistFile) -> Result<CoreMetadata, SourceError>;
    /// A wheel for the image built from `sdist`, one of `name`'s files,
    /// when this source builds sdists (`sdists = "sandbox"`); `None` when
    /// it does not, and the version then has no wheel.
    fn build(&self, name: &PackageName, sdist: &DistFile) -> Result<Option<DistFile>, SourceError> {
        let _ = (name, sdist);
        Ok(None)
    }
    /// Has `wheel` ready for the install (in the store, say), once the
    /// resolver has decided on its version; called on a reading-ahead
    /// thread while the resolution goes on. A failure says nothing: the
    /// installer meets it again and reports it. By default, nothing.
    fn download_ahead(&self, wheel: &DistFile) {
        let _ = wheel;
    }
    /// What an earlier run was told of the project, when that costs no
    /// request and [`Source::files`] will (a kept page the index must be
    /// asked about again): reading ahead walks it meanwhile. Never an
    /// answer. By default, nothing.
    fn kept_files(&self, name: &PackageName) -> Option<Vec<DistFile>> {
        let _ = name;
        None
    }
    /// A wheel's core metadata when it costs no request (kept from an
    /// earlier run); a hint like [`Source::kept_files`]. By default,
    /// nothing.
    fn kept_metadata(&self, file: &DistFile) -> Option<CoreMetadata> {
        let _ = file;
        None
    }
}

/// A failure of the [`Source`]: the index client's error, boxed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(Box<dyn std::error::Error + Send + Sync>);

impl SourceError {
    /// Wraps an error, or a message (`String`, `&str`).
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> SourceError {
        SourceError(error.into())
    }

    /// The wrapped error, for a caller that wants to downcast it.
    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync> {
        self.0
    }
}

/// A requirement and where it was written, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    /// Name, extras, specifiers and the unevaluated marker.
    pub requirement: Requirement,
    /// The requirements or constraints file, as the user named it.
    pub file: String,
    /// The line in that file, counting from 1.
    pub line: usize,
}

impl Requested {
    fn origin(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// What to resolve, and for which image.
#[derive(Debug, Clone)]
pub struct ResolveInput {
    /// The top-level requirements (`-r` files already followed).
    pub requirements: Vec<Requested>,
    /// `-c` files: they narrow versions and add no project.
    pub constraints: Vec<Requested>,
    /// The image's marker environment ([`PythonEnv::markers`]).
    pub markers: MarkerEnvironment,
    /// The image's interpreter, CPU and C library, for wheel tags.
    pub target: Target,
    /// The image's full Python version, for `Requires-Python`.
    pub python: Version,
    /// `--pre`: pre-releases are candidates like any release.
    pub pre: bool,
    /// When the image does not say its interpreter's patch version: the
    /// markers at the last patch release, so that a dependency whose
    /// marker depends on it is refused rather than guessed at.
    pub unknown_patch: Option<MarkerEnvironment>,
}

impl ResolveInput {
    /// An input for the image's Python, with no requirements yet.
    pub fn for_env(env: &PythonEnv) -> ResolveInput {
        ResolveInput {
            requirements: Vec::new(),
            constraints: Vec::new(),
            markers: env.markers(),
            target: env.target,
            python: env.full_version.clone(),
            pre: false,
            unknown_patch: (!env.full_version_known).then(|| env.at_last_patch().markers()),
        }
    }
}

/// One project of the resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    pub name: PackageName,
    pub version: Version,
    /// The best-ranked wheel of that version for the image.
    pub wheel: DistFile,
    /// The extras some requirer asked for.
    pub extras: BTreeSet<ExtraName>,
    /// Who asked for it: `file:line` for a top-level requirement,
    /// `name==version` (or `name[extra]==version`) for a project.
    pub required_by: Vec<String>,
}

/// The projects to install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Sorted by normalized name.
    pub packages: Vec<Pinned>,
    /// What pip would warn about, such as an extra a project lacks.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{requirer} requires `{requirement}`, whose marker depends on the interpreter's full version, but the base does not say Python {major}.{minor}'s (no PYTHON_VERSION in its config, no python3.{minor}-minimal package record): hoist does not guess; build on a base that records its Python (a package database, or PYTHON_VERSION in its config)")]
    UnknownFullVersion {
        requirer: String,
        requirement: String,
        major: u32,
        minor: u32,
    },
    #[error("reading the index for `{package}`: {source}")]
    Source {
        package: PackageName,
        source: SourceError,
    },
    #[error("reading the metadata of {file}: {source}")]
    Metadata { file: String, source: SourceError },
    #[error(
        "`{package}` is on no index (required by {}); check the name for a typo, or add the \
         index that has it (--index-url, --extra-index-url) or a wheelhouse (--find-links)",
        .required_by.join(", ")
    )]
    UnknownPackage {
        package: PackageName,
        required_by: Vec<String>,
    },
    #[error(
        "`{package}=={version}` has no wheel for this image ({}); the image takes {}; \
         pip would build it from source. Ways out: let hoist build it from the sdist in \
         the sandbox, on the image, with `sdists = \"sandbox\"` in hoist.toml's [deps] or \
         `--sdists sandbox` (hoist build only); put a wheel built for the image in a folder \
         and pass it with --find-links; use a base image the published wheels fit; or pin \
         an older version that has wheels (`{package}<{version}`)",
        offered(.available), .tried.join(", ")
    )]
    NoWheel {
        package: PackageName,
        version: Version,
        /// The image's best tags, a short summary.
        tried: Vec<String>,
        /// A few wheel filenames of that version.
        available: Vec<String>,
    },
    #[error(
        "`{package}=={version}` has only wheels with native code ({}), and those need the \
         image's C library, which hoist cannot tell on this base (no glibc or musl loader, or \
         no version for it). Pure-Python (`none-any`) wheels install on any base; for this one \
         use a Debian-, Ubuntu- or Alpine-based python base (python:3.12-slim, \
         python:3.12-alpine), or pin a version of `{package}` that has a pure wheel",
        .available.join(", ")
    )]
    NeedsLibc {
        package: PackageName,
        version: Version,
        /// A few wheel filenames of that version.
        available: Vec<String>,
    },
    /// The build's error is the message, not a cause (`why` is no
    /// `source`): the CLI would print its output tail twice.
    #[error("building `{package}=={version}` from its sdist: {why}")]
    Build {
        package: PackageName,
        version: Version,
        why: SourceError,
    },
    #[error(
        "the metadata of {file} says it is `{name}=={version}`, not `{expected_name}=={expected_version}`; \
         the index serves inconsistent files: report it to the project, and pin another version \
         meanwhile"
    )]
    MetadataMismatch {
        file: String,
        name: PackageName,
        version: Version,
        expected_name: PackageName,
        expected_version: Version,
    },
    #[error(
        "{requirer} requires `{requirement}` from a URL; hoist installs from indexes and \
         wheelhouses only: put the wheel in a folder and pass it with --find-links, and name \
         the project without the URL"
    )]
    Url {
        requirer: String,
        requirement: String,
    },
    #[error(
        "{origin}: constraint `{requirement}` has extras; constraints only narrow versions \
         (pip refuses them too): drop the `[...]`"
    )]
    ConstraintExtras { origin: String, requirement: String },
    #[error(
        "no set of versions satisfies the requirements for this image:\n{report}\n\
         Loosen or change one of the requirements or constraints named above so that they agree"
    )]
    NoSolution { report: String },
}

/// How a [`ResolveError::NoWheel`] names the files the version has.
fn offered(available: &[String]) -> String {
    if available.is_empty() {
        "only an sdist".to_owned()
    } else {
        format!("it has an sdist and {}", available.join(", "))
    }
}

/// Resolves the requirements for the image, as `pip install` would,
/// reading ahead on [`prefetch::WORKERS`] threads.
pub fn resolve(source: &dyn Source, input: &ResolveInput) -> Result<Resolution, ResolveError> {
    resolve_reading_ahead(source, input, prefetch::WORKERS)
}

/// [`resolve`] with `workers` threads reading ahead; with none, every
/// listing and metadata file is fetched when the resolver asks for it.
fn resolve_reading_ahead(
    source: &dyn Source,
    input: &ResolveInput,
    workers: usize,
) -> Result<Resolution, ResolveError> {
    let image = prefetch::Image {
        tag_ranks: provider::tag_ranks(input),
        python: &input.python,
        markers: &input.markers,
        pre: input.pre,
    };
    let ahead = prefetch::Ahead::new(source, image, workers > 0);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| ahead.work());
        }
        // Whatever way the resolution ends (a panic included), the
        // workers stop, so that the scope can end.
        let _finish = prefetch::FinishOnDrop(&ahead);
        let provider = Provider::new(source, input, &ahead)?;
        match pubgrub::resolve(&provider, Pkg::Root, root_version()) {
            Ok(solution) => provider.resolution(solution.into_iter().collect()),
            Err(PubGrubError::NoSolution(tree)) => Err(provider.explain(tree)),
            Err(PubGrubError::ErrorRetrievingDependencies { source, .. })
            | Err(PubGrubError::ErrorChoosingVersion { source, .. })
            | Err(PubGrubError::ErrorInShouldCancel(source)) => Err(source),
        }
    })
}
