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

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::ops::Bound;
use std::rc::Rc;
use std::sync::Arc;

use pep440_rs::{LocalSegment, Operator, Version, VersionSpecifier, VersionSpecifiers};
use pep508_rs::{ExtraName, MarkerEnvironment, PackageName, Requirement, VersionOrUrl};
use pubgrub::{
    DefaultStringReporter, Dependencies, DependencyProvider, DerivationTree, Derived, External,
    Map, PackageResolutionStatistics, PubGrubError, Ranges, ReportFormatter, Reporter, Term,
};

use super::dist::{DistFile, DistKind};
use super::env::PythonEnv;
use super::metadata::CoreMetadata;
use super::tags::{self, Tag, Target};

/// Where the resolver reads projects from: the indexes and wheelhouses the
/// requirements name, behind the index client. A trait, so that resolution
/// is tested against projects held in memory.
pub trait Source: Sync {
    /// Every file the indexes offer for the project (any version, any
    /// tags); empty when none of them knows the project.
    fn files(&self, name: &PackageName) -> Result<Vec<DistFile>, SourceError>;
    /// The core metadata of one file (the chosen wheel of a version).
    fn metadata(&self, file: &DistFile) -> Result<CoreMetadata, SourceError>;
    /// A wheel for the image built from `sdist`, one of `name`'s files,
    /// when this source builds sdists (`sdists = "sandbox"`); `None` when
    /// it does not, and the version then has no wheel.
    fn build(&self, name: &PackageName, sdist: &DistFile) -> Result<Option<DistFile>, SourceError> {
        let _ = (name, sdist);
        Ok(None)
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

/// Resolves the requirements for the image, as `pip install` would.
pub fn resolve(source: &dyn Source, input: &ResolveInput) -> Result<Resolution, ResolveError> {
    let provider = Provider::new(source, input)?;
    match pubgrub::resolve(&provider, Pkg::Root, root_version()) {
        Ok(solution) => provider.resolution(solution.into_iter().collect()),
        Err(PubGrubError::NoSolution(tree)) => Err(provider.explain(tree)),
        Err(PubGrubError::ErrorRetrievingDependencies { source, .. })
        | Err(PubGrubError::ErrorChoosingVersion { source, .. })
        | Err(PubGrubError::ErrorInShouldCancel(source)) => Err(source),
    }
}

// ---------------------------------------------------------------------------
// Versions and ranges

type Range = Ranges<Version>;

/// A requirement's name, extras and specifiers, as written (no marker).
fn requirement_text(req: &Requirement) -> String {
    let mut text = req.name.to_string();
    if !req.extras.is_empty() {
        let extras: Vec<String> = req.extras.iter().map(ToString::to_string).collect();
        text.push_str(&format!("[{}]", extras.join(",")));
    }
    if let Some(VersionOrUrl::VersionSpecifier(specs)) = &req.version_or_url {
        text.push_str(&specs.to_string());
    }
    text
}

/// The version of the virtual root project whose dependencies are the
/// top-level requirements.
fn root_version() -> Version {
    Version::new([0])
}

/// The greatest local version of `v` (`v+<u64::MAX>`): no real label sorts
/// above it, so `[v, local_max(v)]` holds `v` and all its local versions.
fn local_max(v: &Version) -> Version {
    v.clone().with_local(vec![LocalSegment::Number(u64::MAX)])
}

/// A specifier as a range of versions.
///
/// PEP 440: when the specifier names a public version, candidates' local
/// labels are ignored, so `==1.0` matches `1.0+cpu` and `<=1.0` does too.
/// pep440_rs's conversion gives `==1.0` the single version `1.0`; the
/// operators where a local label changes the answer are converted here,
/// and `<` of a post-release, which pep440_rs gets wrong.
fn specifier_range(spec: &VersionSpecifier) -> Range {
    let v = spec.version();
    if !v.local().is_empty() {
        return Range::from(spec.clone());
    }
    match spec.operator() {
        Operator::Equal => Range::from_range_bounds(v.clone()..=local_max(v)),
        Operator::NotEqual => Range::from_range_bounds(v.clone()..=local_max(v)).complement(),
        Operator::LessThanEqual => Range::lower_than(local_max(v)),
        // `<V` leaves out V's pre-releases; V's base release is below a
        // post-release V, and pep440_rs's floor for it is not.
        Operator::LessThan if v.is_post() && !v.any_prerelease() => {
            let base = v.clone().with_post(None);
            Range::strictly_lower_than(base.clone().with_min(Some(0)))
                .union(&Range::from_range_bounds(base..v.clone()))
        }
        _ => Range::from(spec.clone()),
    }
}

fn specifiers_range(specs: &VersionSpecifiers) -> Range {
    specs.iter().fold(Range::full(), |acc, s| {
        acc.intersection(&specifier_range(s))
    })
}

/// pip's `is_pinned`: `===`, or `==` without a wildcard.
fn pins(spec: &VersionSpecifier) -> bool {
    matches!(spec.operator(), Operator::Equal | Operator::ExactEqual)
}

/// packaging's `Specifier.prereleases`: a specifier that names a
/// pre-release (other than by `!=`) lets pre-releases in.
fn names_prerelease(spec: &VersionSpecifier) -> bool {
    !matches!(spec.operator(), Operator::NotEqual | Operator::NotEqualStar)
        && spec.version().any_prerelease()
}

/// Whether the range is one version (with its local versions).
fn is_pin(range: &Range) -> bool {
    let mut segments = range.iter();
    match (segments.next(), segments.next()) {
        (Some((Bound::Included(a), Bound::Included(b))), None) => a == b || *b == local_max(a),
        _ => false,
    }
}

/// A version for people: without the helper parts ranges use.
fn show_version(v: &Version) -> String {
    let mut v = v.clone();
    if v.local() == [LocalSegment::Number(u64::MAX)] {
        v = v.without_local();
    }
    if Version::max(&v).is_some() {
        v = v.with_max(None);
    }
    if Version::min(&v).is_some() {
        v = v.with_min(None);
    }
    v.to_string()
}

/// The version a gap between two segments leaves out, when it is one.
fn point_gap<'a>(upper: &'a Bound<Version>, lower: &Bound<Version>) -> Option<&'a Version> {
    match (upper, lower) {
        (Bound::Excluded(x), Bound::Excluded(y)) if x == y || *y == local_max(x) => Some(x),
        _ => None,
    }
}

fn lower_clause(bound: &Bound<Version>) -> Option<String> {
    match bound {
        Bound::Included(v) => Some(format!(">={}", show_version(v))),
        Bound::Excluded(v) => Some(format!(">{}", show_version(v))),
        Bound::Unbounded => None,
    }
}

fn upper_clause(bound: &Bound<Version>) -> Option<String> {
    match bound {
        Bound::Included(v) => Some(format!("<={}", show_version(v))),
        Bound::Excluded(v) => Some(format!("<{}", show_version(v))),
        Bound::Unbounded => None,
    }
}

fn show_segment(lower: &Bound<Version>, upper: &Bound<Version>) -> String {
    if let (Bound::Included(a), Bound::Included(b)) = (lower, upper) {
        if a == b || *b == local_max(a) {
            return format!("=={}", show_version(a));
        }
    }
    let clauses: Vec<String> = [lower_clause(lower), upper_clause(upper)]
        .into_iter()
        .flatten()
        .collect();
    clauses.join(",")
}

/// A range as pip users write specifiers: `>=1,!=1.5,<2`, `==2.0`, or
/// alternatives joined by `or`; empty for every version.
fn show_range(range: &Range) -> String {
    let segments: Vec<(&Bound<Version>, &Bound<Version>)> = range.iter().collect();
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
        return "(no version)".to_owned();
    };
    if segments.len() == 1 {
        return show_segment(first.0, first.1);
    }
    let gaps: Option<Vec<&Version>> = segments
        .windows(2)
        .map(|w| point_gap(w[0].1, w[1].0))
        .collect();
    match gaps {
        Some(gaps) => {
            let mut clauses: Vec<String> = lower_clause(first.0).into_iter().collect();
            clauses.extend(gaps.iter().map(|v| format!("!={}", show_version(v))));
            clauses.extend(upper_clause(last.1));
            clauses.join(",")
        }
        None => segments
            .iter()
            .map(|(l, u)| show_segment(l, u))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

// ---------------------------------------------------------------------------
// What pubgrub decides

/// A pubgrub package: the top-level requirements, a project, or one
/// extra of a project.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Pkg {
    Root,
    Project(PackageName),
    Extra(PackageName, ExtraName),
}

impl Pkg {
    fn name(&self) -> Option<&PackageName> {
        match self {
            Pkg::Root => None,
            Pkg::Project(n) | Pkg::Extra(n, _) => Some(n),
        }
    }

    /// The package with a range, as a requirement reads: `a>=1`,
    /// `a[x]==2.0`, `a (<1 or >=2)`.
    fn with_range(&self, range: &Range) -> String {
        if *self == Pkg::Root {
            return self.to_string();
        }
        let range = show_range(range);
        if range.starts_with('(') {
            format!("{self} {range}")
        } else if range.contains(" or ") {
            format!("{self} ({range})")
        } else {
            format!("{self}{range}")
        }
    }
}

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => f.write_str("your requirements"),
            Pkg::Project(n) => write!(f, "{n}"),
            Pkg::Extra(n, e) => write!(f, "{n}[{e}]"),
        }
    }
}

/// Why a version cannot be used though it has files (pubgrub's custom
/// incompatibility).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unusable {
    /// Its metadata's `Requires-Python` excludes the image's Python.
    RequiresPython {
        requires: VersionSpecifiers,
        python: Version,
    },
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::RequiresPython { requires, python } => {
                write!(f, "requires Python {requires} (the image has {python})")
            }
        }
    }
}

/// The files of one version, sorted by what they are to the image.
#[derive(Debug, Default)]
struct Offer {
    /// Wheels whose tags fit the image, with the rank of their best tag.
    wheels: Vec<(usize, DistFile)>,
    sdists: Vec<DistFile>,
    /// Wheels for other interpreters, platforms or Pythons, by filename.
    foreign: Vec<String>,
    /// A `Requires-Python` that left files out.
    requires_python: Option<VersionSpecifiers>,
}

impl Offer {
    /// PEP 592: yanked files count only when the version is pinned and
    /// every file left is yanked (pip's `all_yanked and pinned`).
    fn takes_yanked(&self, pinned: bool) -> bool {
        pinned && self.wheels.iter().all(|(_, f)| f.yanked) && self.sdists.iter().all(|f| f.yanked)
    }

    fn installable(&self, pinned: bool) -> bool {
        let yanked = self.takes_yanked(pinned);
        self.wheels.iter().any(|(_, f)| yanked || !f.yanked)
            || self.sdists.iter().any(|f| yanked || !f.yanked)
    }

    /// The wheel pip would take: best tag, then highest build tag.
    fn best_wheel(&self, pinned: bool) -> Option<&DistFile> {
        let yanked = self.takes_yanked(pinned);
        self.wheels
            .iter()
            .filter(|(_, f)| yanked || !f.yanked)
            .min_by_key(|(rank, f)| (*rank, Reverse(build_key(f))))
            .map(|(_, f)| f)
    }

    /// The sdist to build when no wheel fits: a `.tar.gz` first, as
    /// PyPI has for every sdist since PEP 625.
    fn best_sdist(&self, pinned: bool) -> Option<&DistFile> {
        let yanked = self.takes_yanked(pinned);
        self.sdists
            .iter()
            .filter(|f| yanked || !f.yanked)
            .min_by_key(|f| !f.filename.ends_with(".tar.gz"))
    }

    /// Why no file of this version is installable, when none is.
    fn why_not(&self, pinned: bool) -> Option<String> {
        if self.installable(pinned) {
            return None;
        }
        if !self.wheels.is_empty() || !self.sdists.is_empty() {
            return Some("is yanked (pin it with == to take it anyway)".to_owned());
        }
        if let Some(rp) = &self.requires_python {
            return Some(format!("requires Python {rp}"));
        }
        match self.foreign.first() {
            Some(f) => Some(format!(
                "has no sdist and no wheel for this image ({f}, ...)"
            )),
            None => Some("has no files".to_owned()),
        }
    }
}

/// A wheel's build tag as pip orders it: its number, then the rest.
fn build_key(file: &DistFile) -> Option<(u64, String)> {
    let DistKind::Wheel(w) = &file.kind else {
        return None;
    };
    let build = w.build.as_deref()?;
    let digits = build.len() - build.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let number = build[..digits].parse().unwrap_or(u64::MAX);
    Some((number, build[digits..].to_owned()))
}

/// What the indexes offer for one project.
#[derive(Debug, Default)]
struct Project {
    offers: BTreeMap<Version, Offer>,
    /// Whether any index listed any file.
    listed: bool,
}

/// Dependencies of one package version, merged by package.
#[derive(Debug, Default, Clone)]
struct Edges(Vec<(Pkg, Range)>);

impl Edges {
    /// Adds a dependency; two on one package keep both ranges' common part.
    fn add(&mut self, pkg: Pkg, range: Range) {
        match self.0.iter_mut().find(|(p, _)| *p == pkg) {
            Some((_, r)) => *r = r.intersection(&range),
            None => self.0.push((pkg, range)),
        }
    }
}

/// Pubgrub's priority: a tier, then discovery order (earlier first).
type Priority = (u8, Reverse<usize>);

/// A package involved in this many conflicts is decided earlier, so that
/// the choices it conflicts with are made around it.
const CONFLICT_EARLY: u32 = 5;

/// Index listings fetched at once when a version adds several projects.
const PREFETCH_THREADS: usize = 8;

/// The state pubgrub's questions are answered from. Single-threaded, as
/// pubgrub is; listings are prefetched on scoped threads.
struct Provider<'a> {
    source: &'a dyn Source,
    input: &'a ResolveInput,
    /// Rank of each tag the image accepts, 0 best.
    tag_ranks: HashMap<Tag, usize>,
    root_edges: Edges,
    /// The top-level requirements by the package they add: where each
    /// was written (`file:line`) and what it says.
    root_lines: HashMap<Pkg, Vec<(String, String)>>,
    /// Constraints by project: the range, and where they were written.
    constraints: HashMap<PackageName, (Range, Vec<String>)>,
    projects: RefCell<HashMap<PackageName, Rc<Project>>>,
    prefetched: RefCell<HashMap<PackageName, Result<Vec<DistFile>, SourceError>>>,
    metadata: RefCell<BTreeMap<(PackageName, Version), Rc<CoreMetadata>>>,
    /// Wheels the source built from sdists, by version.
    built: RefCell<HashMap<(PackageName, Version), DistFile>>,
    edges: RefCell<HashMap<(Pkg, Version), Edges>>,
    /// `==`/`===` specifiers seen for each project (yanked files).
    pins: RefCell<HashMap<PackageName, Vec<VersionSpecifier>>>,
    /// Projects some specifier lets pre-releases into.
    explicit_pre: RefCell<HashSet<PackageName>>,
    /// The version last chosen for each project, which its extras prefer.
    chosen: RefCell<HashMap<PackageName, Version>>,
    order: RefCell<HashMap<Pkg, usize>>,
    /// Extras asked of a version whose metadata does not declare them.
    missing_extras: RefCell<BTreeSet<(PackageName, Version, ExtraName)>>,
}

impl<'a> Provider<'a> {
    fn new(source: &'a dyn Source, input: &'a ResolveInput) -> Result<Provider<'a>, ResolveError> {
        let tag_ranks = tags::compatible_tags(&input.target)
            .into_iter()
            .enumerate()
            .map(|(i, t)| (t, i))
            .collect();
        let mut provider = Provider {
            source,
            input,
            tag_ranks,
            root_edges: Edges::default(),
            root_lines: HashMap::new(),
            constraints: HashMap::new(),
            projects: RefCell::default(),
            prefetched: RefCell::default(),
            metadata: RefCell::default(),
            built: RefCell::default(),
            edges: RefCell::default(),
            pins: RefCell::default(),
            explicit_pre: RefCell::default(),
            chosen: RefCell::default(),
            order: RefCell::default(),
            missing_extras: RefCell::default(),
        };
        for c in &input.constraints {
            let req = &c.requirement;
            if !req.marker.evaluate(&input.markers, &[]) {
                continue;
            }
            if !req.extras.is_empty() {
                return Err(ResolveError::ConstraintExtras {
                    origin: c.origin(),
                    requirement: req.to_string(),
                });
            }
            let range = provider.requirement_range(req, || c.origin())?;
            let entry = provider
                .constraints
                .entry(req.name.clone())
                .or_insert_with(|| (Range::full(), Vec::new()));
            entry.0 = entry.0.intersection(&range);
            entry.1.push(c.origin());
        }
        let mut edges = Edges::default();
        for r in &input.requirements {
            if !r.requirement.marker.evaluate(&input.markers, &[]) {
                continue;
            }
            let added =
                provider.add_requirement(&mut edges, &r.requirement, None, || r.origin())?;
            for pkg in added {
                provider
                    .root_lines
                    .entry(pkg)
                    .or_default()
                    .push((r.origin(), requirement_text(&r.requirement)));
            }
        }
        provider.prefetch(&edges);
        provider.root_edges = edges;
        Ok(provider)
    }

    /// The range a requirement allows, noting its pins and pre-releases.
    fn requirement_range(
        &self,
        req: &Requirement,
        requirer: impl Fn() -> String,
    ) -> Result<Range, ResolveError> {
        match &req.version_or_url {
            None => Ok(Range::full()),
            Some(VersionOrUrl::VersionSpecifier(specs)) => {
                for s in specs.iter() {
                    if pins(s) {
                        let mut pins = self.pins.borrow_mut();
                        let known = pins.entry(req.name.clone()).or_default();
                        if !known.contains(s) {
                            known.push(s.clone());
                        }
                    }
                    if names_prerelease(s) {
                        self.explicit_pre.borrow_mut().insert(req.name.clone());
                    }
                }
                Ok(specifiers_range(specs))
            }
            Some(VersionOrUrl::Url(_)) => Err(ResolveError::Url {
                requirer: requirer(),
                requirement: req.to_string(),
            }),
        }
    }

    /// Adds the packages a requirement stands for (the project and each
    /// extra), narrowed by the constraints; `within` is the project whose
    /// own dependency this is, which does not depend on itself. Returns the
    /// packages added.
    fn add_requirement(
        &self,
        edges: &mut Edges,
        req: &Requirement,
        within: Option<&PackageName>,
        requirer: impl Fn() -> String,
    ) -> Result<Vec<Pkg>, ResolveError> {
        let mut range = self.requirement_range(req, requirer)?;
        if let Some((constraint, _)) = self.constraints.get(&req.name) {
            range = range.intersection(constraint);
        }
        let mut added = Vec::new();
        if within != Some(&req.name) {
            added.push(Pkg::Project(req.name.clone()));
        }
        for extra in &req.extras {
            added.push(Pkg::Extra(req.name.clone(), extra.clone()));
        }
        for pkg in &added {
            edges.add(pkg.clone(), range.clone());
        }
        Ok(added)
    }

    /// The project's files, read once (or taken from a prefetch).
    fn project(&self, name: &PackageName) -> Result<Rc<Project>, ResolveError> {
        let cached = self.projects.borrow().get(name).cloned();
        if let Some(project) = cached {
            return Ok(project);
        }
        let prefetched = self.prefetched.borrow_mut().remove(name);
        let files = prefetched
            .unwrap_or_else(|| self.source.files(name))
            .map_err(|source| ResolveError::Source {
                package: name.clone(),
                source,
            })?;
        let project = Rc::new(self.classify(name, files));
        self.projects
            .borrow_mut()
            .insert(name.clone(), Rc::clone(&project));
        Ok(project)
    }

    /// Reads the listings of the projects the edges name that are not
    /// read yet, several at once: resolution then waits on the slowest
    /// listing, not on their sum.
    fn prefetch(&self, edges: &Edges) {
        let mut missing: Vec<PackageName> = Vec::new();
        {
            let projects = self.projects.borrow();
            let prefetched = self.prefetched.borrow();
            for (pkg, _) in &edges.0 {
                if let Some(name) = pkg.name() {
                    if !projects.contains_key(name)
                        && !prefetched.contains_key(name)
                        && !missing.contains(name)
                    {
                        missing.push(name.clone());
                    }
                }
            }
        }
        if missing.len() < 2 {
            return;
        }
        let source = self.source;
        let results: Vec<(PackageName, Result<Vec<DistFile>, SourceError>)> =
            std::thread::scope(|scope| {
                let threads = PREFETCH_THREADS.min(missing.len());
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let names: Vec<&PackageName> =
                            missing.iter().skip(t).step_by(threads).collect();
                        scope.spawn(move || {
                            names
                                .into_iter()
                                .map(|n| (n.clone(), source.files(n)))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| match h.join() {
                        Ok(results) => results,
                        // The source panicked: let its panic through.
                        Err(panic) => std::panic::resume_unwind(panic),
                    })
                    .collect()
            });
        self.prefetched.borrow_mut().extend(results);
    }

    /// Sorts a project's files by version and by use to the image.
    fn classify(&self, name: &PackageName, files: Vec<DistFile>) -> Project {
        let mut project = Project {
            listed: !files.is_empty(),
            ..Project::default()
        };
        for file in files {
            // pip skips files of another project (a wrong listing).
            if let DistKind::Wheel(w) = &file.kind {
                if w.name != *name {
                    continue;
                }
            }
            let offer = project.offers.entry(file.version().clone()).or_default();
            if let Some(rp) = &file.requires_python {
                if !rp.contains(&self.input.python) {
                    offer.requires_python.get_or_insert_with(|| rp.clone());
                    if matches!(file.kind, DistKind::Wheel(_)) {
                        offer.foreign.push(file.filename);
                    }
                    continue;
                }
            }
            match &file.kind {
                DistKind::Wheel(w) => {
                    let rank = w.tags().iter().filter_map(|t| self.tag_ranks.get(t)).min();
                    match rank {
                        Some(&rank) => offer.wheels.push((rank, file)),
                        None => offer.foreign.push(file.filename),
                    }
                }
                DistKind::Sdist { .. } => offer.sdists.push(file),
            }
        }
        project
    }

    /// Whether a requirement pins this version with `==` or `===`.
    fn pinned(&self, name: &PackageName, version: &Version) -> bool {
        self.pins
            .borrow()
            .get(name)
            .is_some_and(|specs| specs.iter().any(|s| s.contains(version)))
    }

    fn no_wheel(
        &self,
        name: &PackageName,
        version: &Version,
        offer: Option<&Offer>,
    ) -> ResolveError {
        const SHOWN: usize = 4;
        let mut available: Vec<String> = offer
            .map(|o| {
                o.foreign
                    .iter()
                    .chain(o.wheels.iter().map(|(_, f)| &f.filename))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if available.len() > SHOWN {
            let more = available.len() - SHOWN;
            available.truncate(SHOWN);
            available.push(format!("{more} more wheels"));
        }
        if self.input.target.libc == tags::Libc::Unknown && !available.is_empty() {
            return ResolveError::NeedsLibc {
                package: name.clone(),
                version: version.clone(),
                available,
            };
        }
        ResolveError::NoWheel {
            package: name.clone(),
            version: version.clone(),
            tried: tag_summary(&self.input.target),
            available,
        }
    }

    /// The wheel of a version: its best published wheel for the image,
    /// else one the source builds from its sdist (once per version).
    fn wheel(&self, name: &PackageName, version: &Version) -> Result<DistFile, ResolveError> {
        let project = self.project(name)?;
        let offer = project.offers.get(version);
        let pinned = self.pinned(name, version);
        if let Some(wheel) = offer.and_then(|o| o.best_wheel(pinned)) {
            return Ok(wheel.clone());
        }
        let key = (name.clone(), version.clone());
        if let Some(wheel) = self.built.borrow().get(&key) {
            return Ok(wheel.clone());
        }
        if let Some(sdist) = offer.and_then(|o| o.best_sdist(pinned)) {
            let built = self
                .source
                .build(name, sdist)
                .map_err(|why| ResolveError::Build {
                    package: name.clone(),
                    version: version.clone(),
                    why,
                })?;
            if let Some(wheel) = built {
                self.built.borrow_mut().insert(key, wheel.clone());
                return Ok(wheel);
            }
        }
        Err(self.no_wheel(name, version, offer))
    }

    /// The core metadata of a version, read once from its wheel.
    fn metadata(
        &self,
        name: &PackageName,
        version: &Version,
    ) -> Result<Rc<CoreMetadata>, ResolveError> {
        let key = (name.clone(), version.clone());
        let cached = self.metadata.borrow().get(&key).cloned();
        if let Some(metadata) = cached {
            return Ok(metadata);
        }
        let wheel = self.wheel(name, version)?;
        let metadata = self
            .source
            .metadata(&wheel)
            .map_err(|source| ResolveError::Metadata {
                file: wheel.filename.clone(),
                source,
            })?;
        if metadata.name != *name || metadata.version != *version {
            return Err(ResolveError::MetadataMismatch {
                file: wheel.filename.clone(),
                name: metadata.name,
                version: metadata.version,
                expected_name: name.clone(),
                expected_version: version.clone(),
            });
        }
        let metadata = Rc::new(metadata);
        self.metadata.borrow_mut().insert(key, Rc::clone(&metadata));
        Ok(metadata)
    }

    /// The dependencies of `name==version`, or of its `extra`.
    fn dependencies(
        &self,
        name: &PackageName,
        version: &Version,
        extra: Option<&ExtraName>,
    ) -> Result<Result<Edges, Unusable>, ResolveError> {
        let metadata = self.metadata(name, version)?;
        if let Some(rp) = &metadata.requires_python {
            if !rp.contains(&self.input.python) {
                return Ok(Err(Unusable::RequiresPython {
                    requires: rp.clone(),
                    python: self.input.python.clone(),
                }));
            }
        }
        let markers = &self.input.markers;
        let mut edges = Edges::default();
        let requirer = || match extra {
            None => format!("`{name}=={version}`"),
            Some(e) => format!("`{name}[{e}]=={version}`"),
        };
        if let Some(extra) = extra {
            edges.add(
                Pkg::Project(name.clone()),
                Range::singleton(version.clone()),
            );
            if !metadata.provides_extras.contains(extra) {
                self.missing_extras.borrow_mut().insert((
                    name.clone(),
                    version.clone(),
                    extra.clone(),
                ));
                return Ok(Ok(edges));
            }
        }
        for req in &metadata.requires_dist {
            let applies = match extra {
                None => req.marker.evaluate(markers, &[]),
                // Only what the extra adds: the rest is the project's own.
                Some(e) => {
                    req.marker.evaluate(markers, std::slice::from_ref(e))
                        && !req.marker.evaluate(markers, &[])
                }
            };
            if applies {
                let within = extra.is_none().then_some(name);
                self.add_requirement(&mut edges, req, within, requirer)?;
            }
        }
        Ok(Ok(edges))
    }

    /// Where the top-level requirements adding this package were written.
    fn origins(&self, pkg: &Pkg) -> Vec<String> {
        let lines = self
            .root_lines
            .get(pkg)
            .map(Vec::as_slice)
            .unwrap_or_default();
        lines.iter().map(|(origin, _)| origin.clone()).collect()
    }

    fn order_of(&self, pkg: &Pkg) -> usize {
        let mut order = self.order.borrow_mut();
        let next = order.len();
        *order.entry(pkg.clone()).or_insert(next)
    }

    /// The selected versions as the installer wants them.
    fn resolution(&self, mut selected: Vec<(Pkg, Version)>) -> Result<Resolution, ResolveError> {
        selected.sort();
        let mut versions: BTreeMap<PackageName, Version> = BTreeMap::new();
        let mut extras: BTreeMap<PackageName, BTreeSet<ExtraName>> = BTreeMap::new();
        for (pkg, version) in &selected {
            match pkg {
                Pkg::Root => {}
                Pkg::Project(n) => {
                    versions.insert(n.clone(), version.clone());
                }
                Pkg::Extra(n, e) => {
                    extras.entry(n.clone()).or_default().insert(e.clone());
                }
            }
        }
        let mut required_by: BTreeMap<PackageName, Vec<String>> = BTreeMap::new();
        let edges = self.edges.borrow();
        for (pkg, version) in &selected {
            let Some(deps) = edges.get(&(pkg.clone(), version.clone())) else {
                continue;
            };
            for (dep, _) in &deps.0 {
                let Some(dep_name) = dep.name() else { continue };
                if pkg.name() == Some(dep_name) || !versions.contains_key(dep_name) {
                    continue;
                }
                let labels = match pkg {
                    Pkg::Root => self.origins(dep),
                    Pkg::Project(n) => vec![format!("{n}=={version}")],
                    Pkg::Extra(n, e) => vec![format!("{n}[{e}]=={version}")],
                };
                let list = required_by.entry(dep_name.clone()).or_default();
                for label in labels {
                    if !list.contains(&label) {
                        list.push(label);
                    }
                }
            }
        }
        let mut packages = Vec::new();
        for (name, version) in versions {
            let wheel = self.wheel(&name, &version)?;
            packages.push(Pinned {
                extras: extras.remove(&name).unwrap_or_default(),
                required_by: required_by.remove(&name).unwrap_or_default(),
                name,
                version,
                wheel,
            });
        }
        let warnings = self
            .missing_extras
            .borrow()
            .iter()
            .filter(|(n, v, e)| {
                packages
                    .iter()
                    .any(|p| p.name == *n && p.version == *v && p.extras.contains(e))
            })
            .map(|(n, v, e)| format!("{n} {v} does not provide the extra '{e}'"))
            .collect();
        Ok(Resolution { packages, warnings })
    }
}

impl DependencyProvider for Provider<'_> {
    type P = Pkg;
    type V = Version;
    type VS = Range;
    type M = Unusable;
    type Priority = Priority;
    type Err = ResolveError;

    /// Root first; then pins, which cost nothing to decide; then packages
    /// that keep conflicting; then the top-level and constrained ones; the
    /// rest in the order they appeared (breadth first, as pip goes).
    fn prioritize(
        &self,
        package: &Pkg,
        range: &Range,
        stats: &PackageResolutionStatistics,
    ) -> Priority {
        let order = Reverse(self.order_of(package));
        let tier = match package {
            Pkg::Root => 5,
            _ if is_pin(range) => 4,
            _ if stats.conflict_count() >= CONFLICT_EARLY => 3,
            Pkg::Project(n) | Pkg::Extra(n, _)
                if self.root_edges.0.iter().any(|(p, _)| p.name() == Some(n))
                    || self.constraints.contains_key(n) =>
            {
                2
            }
            _ => 1,
        };
        (tier, order)
    }

    fn choose_version(
        &self,
        package: &Pkg,
        range: &Range,
    ) -> Result<Option<Version>, ResolveError> {
        let name = match package {
            Pkg::Root => return Ok(Some(root_version()).filter(|v| range.contains(v))),
            Pkg::Project(n) | Pkg::Extra(n, _) => n,
        };
        let project = self.project(name)?;
        let usable = |v: &Version| {
            range.contains(v)
                && project
                    .offers
                    .get(v)
                    .is_some_and(|o| o.installable(self.pinned(name, v)))
        };
        // An extra takes its project's version when it can: any other
        // choice conflicts with `name == version` at once.
        if let Pkg::Extra(..) = package {
            let chosen = self.chosen.borrow().get(name).cloned();
            if let Some(v) = chosen.filter(|v| usable(v)) {
                return Ok(Some(v));
            }
        }
        let allow_pre = self.input.pre || self.explicit_pre.borrow().contains(name);
        let mut newest_pre = None;
        let mut choice = None;
        for version in project.offers.keys().rev().filter(|v| usable(v)) {
            if allow_pre || !version.any_prerelease() {
                choice = Some(version.clone());
                break;
            }
            newest_pre.get_or_insert(version);
        }
        let choice = choice.or_else(|| newest_pre.cloned());
        if let (Pkg::Project(_), Some(v)) = (package, &choice) {
            self.chosen.borrow_mut().insert(name.clone(), v.clone());
        }
        Ok(choice)
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, Range, Unusable>, ResolveError> {
        let edges = match package {
            Pkg::Root => self.root_edges.clone(),
            Pkg::Project(n) => match self.dependencies(n, version, None)? {
                Ok(edges) => edges,
                Err(why) => return Ok(Dependencies::Unavailable(why)),
            },
            Pkg::Extra(n, e) => match self.dependencies(n, version, Some(e))? {
                Ok(edges) => edges,
                Err(why) => return Ok(Dependencies::Unavailable(why)),
            },
        };
        self.prefetch(&edges);
        let constraints = edges.0.iter().cloned().collect();
        self.edges
            .borrow_mut()
            .insert((package.clone(), version.clone()), edges);
        Ok(Dependencies::Available(constraints))
    }
}

/// A few of the image's best tags, for messages: the best, the best
/// stable-ABI one, and the pure-Python one.
fn tag_summary(target: &Target) -> Vec<String> {
    let tags = tags::compatible_tags(target);
    let mut out: Vec<String> = Vec::new();
    let picks = [
        tags.first(),
        tags.iter().find(|t| t.abi == "abi3"),
        tags.iter()
            .find(|t| t.python == "py3" && t.platform == "any"),
    ];
    for t in picks.into_iter().flatten() {
        let t = t.to_string();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Explaining a failure

type Tree = DerivationTree<Pkg, Range, Unusable>;

impl Provider<'_> {
    fn explain(&self, tree: Tree) -> ResolveError {
        let mut no_versions: Vec<(Pkg, Range)> = Vec::new();
        let mut requirers: Vec<(Pkg, Range, Pkg)> = Vec::new();
        walk(&tree, &mut |external| match external {
            External::NoVersions(p, r) => no_versions.push((p.clone(), r.clone())),
            External::FromDependencyOf(p, r, dep, _) => {
                requirers.push((p.clone(), r.clone(), dep.clone()))
            }
            External::NotRoot(..) | External::Custom(..) => {}
        });
        no_versions.sort();
        // A project no index lists is a typo or a missing index, whoever
        // asked for it: say so rather than explain the conflict.
        for (pkg, _) in &no_versions {
            let Some(name) = pkg.name() else { continue };
            let listed = self.projects.borrow().get(name).is_none_or(|p| p.listed);
            if listed {
                continue;
            }
            let mut required_by = Vec::new();
            for (requirer, range, dep) in &requirers {
                if dep.name() != Some(name) {
                    continue;
                }
                let labels = match requirer {
                    Pkg::Root => self.origins(dep),
                    _ => vec![requirer.with_range(&self.simplify(requirer, range))],
                };
                for label in labels {
                    if !required_by.contains(&label) {
                        required_by.push(label);
                    }
                }
            }
            return ResolveError::UnknownPackage {
                package: name.clone(),
                required_by,
            };
        }
        let tree = self.simplify_tree(&collapse(&tree));
        let mut report = DefaultStringReporter::report_with_formatter(&tree, &Phrasing(self));
        let mut hints = self.hints(&tree);
        if self.input.target.libc == tags::Libc::Unknown {
            hints.push(
                "hoist cannot tell this base's C library, so only pure-Python (`none-any`) \
                 wheels fit it; a package with native wheels only needs a Debian-, Ubuntu- or \
                 Alpine-based python base (python:3.12-slim, python:3.12-alpine)"
                    .to_owned(),
            );
        }
        if !hints.is_empty() {
            report.push_str("\nNotes:");
            for hint in hints {
                report.push_str("\n  - ");
                report.push_str(&hint);
            }
        }
        ResolveError::NoSolution { report }
    }

    /// The range, rewritten as simply as the project's known versions
    /// allow (`>=1,<1.5 or >1.5` becomes `!=1.5` when no other version
    /// lies between): the report speaks of versions that exist.
    fn simplify(&self, pkg: &Pkg, range: &Range) -> Range {
        let project = pkg
            .name()
            .and_then(|n| self.projects.borrow().get(n).cloned());
        match project {
            Some(p) if !p.offers.is_empty() && !is_pin(range) => range.simplify(p.offers.keys()),
            _ => range.clone(),
        }
    }

    fn simplify_tree(&self, tree: &Tree) -> Tree {
        match tree {
            DerivationTree::External(e) => DerivationTree::External(match e {
                External::NotRoot(p, v) => External::NotRoot(p.clone(), v.clone()),
                External::NoVersions(p, r) => External::NoVersions(p.clone(), self.simplify(p, r)),
                External::FromDependencyOf(p, r, d, dr) => External::FromDependencyOf(
                    p.clone(),
                    self.simplify(p, r),
                    d.clone(),
                    self.simplify(d, dr),
                ),
                External::Custom(p, r, m) => {
                    External::Custom(p.clone(), self.simplify(p, r), m.clone())
                }
            }),
            DerivationTree::Derived(d) => {
                let mut terms = Map::default();
                for (p, t) in &d.terms {
                    let t = match t {
                        Term::Positive(r) => Term::Positive(self.simplify(p, r)),
                        Term::Negative(r) => Term::Negative(self.simplify(p, r)),
                    };
                    terms.insert(p.clone(), t);
                }
                DerivationTree::Derived(Derived {
                    terms,
                    shared_id: d.shared_id,
                    cause1: Arc::new(self.simplify_tree(&d.cause1)),
                    cause2: Arc::new(self.simplify_tree(&d.cause2)),
                })
            }
        }
    }

    /// What the conflict report leaves implicit: versions skipped for the
    /// image, the constraints, and the versions there are.
    ///
    /// Read from the tree as reported: the "no version" steps merged into
    /// a dependency are left out, those left are the ones the report names.
    fn hints(&self, tree: &Tree) -> Vec<String> {
        const SHOWN: usize = 5;
        let mut no_versions: Vec<(Pkg, Range)> = Vec::new();
        walk(tree, &mut |external| {
            if let External::NoVersions(p, r) = external {
                no_versions.push((p.clone(), r.clone()));
            }
        });
        no_versions.sort();
        let mut hints = Vec::new();
        let mut names: Vec<&PackageName> = Vec::new();
        for (pkg, _) in &no_versions {
            if let Some(n) = pkg.name() {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        for name in names {
            let Some(project) = self.projects.borrow().get(name).cloned() else {
                continue;
            };
            let in_range = |v: &Version| {
                no_versions
                    .iter()
                    .any(|(p, r)| p.name() == Some(name) && r.contains(v))
            };
            let mut skipped = 0;
            for (version, offer) in project.offers.iter().rev() {
                if !in_range(version) {
                    continue;
                }
                if let Some(why) = offer.why_not(self.pinned(name, version)) {
                    if skipped < SHOWN {
                        hints.push(format!("{name} {version} {why}"));
                    }
                    skipped += 1;
                }
            }
            if skipped > SHOWN {
                hints.push(format!("{name}: {} more versions skipped", skipped - SHOWN));
            }
            let usable: Vec<String> = project
                .offers
                .iter()
                .rev()
                .filter(|(v, o)| o.installable(self.pinned(name, v)))
                .map(|(v, _)| v.to_string())
                .take(SHOWN)
                .collect();
            if usable.is_empty() {
                hints.push(format!(
                    "{name} has no version for this image (tags tried, best first: {}); ways out: \
                     a wheelhouse folder through --find-links, another base, or a version that \
                     has wheels for it",
                    tag_summary(&self.input.target).join(", ")
                ));
            } else {
                hints.push(format!(
                    "versions of {name} for this image: {}{}",
                    usable.join(", "),
                    if usable.len() == SHOWN { ", ..." } else { "" }
                ));
            }
        }
        let mut constrained: Vec<&PackageName> = tree
            .packages()
            .into_iter()
            .filter_map(Pkg::name)
            .filter(|n| self.constraints.contains_key(*n))
            .collect();
        constrained.sort();
        constrained.dedup();
        for name in constrained {
            if let Some((range, origins)) = self.constraints.get(name) {
                hints.push(format!(
                    "{} allows only {}",
                    origins.join(", "),
                    Pkg::Project(name.clone()).with_range(range)
                ));
            }
        }
        hints
    }
}

/// Folds "no other version of `p` exists" into "`p` requires ...":
/// `b==1.0 requires a>=2` with no other `b` reads `b requires a>=2`.
///
/// pubgrub's own `collapse_no_versions` also folds a missing dependency
/// into its requirer's range (`a requires b>=3` when no `b>=3` exists),
/// which hides the reason; this one leaves those steps in the report.
fn collapse(tree: &Tree) -> Tree {
    let DerivationTree::Derived(d) = tree else {
        return tree.clone();
    };
    if let (DerivationTree::External(a), DerivationTree::External(b)) = (&*d.cause1, &*d.cause2) {
        let merged = match (a, b) {
            (External::NoVersions(p, none), External::FromDependencyOf(q, r, dep, dr))
            | (External::FromDependencyOf(q, r, dep, dr), External::NoVersions(p, none))
                if p == q =>
            {
                Some(External::FromDependencyOf(
                    q.clone(),
                    r.union(none),
                    dep.clone(),
                    dr.clone(),
                ))
            }
            _ => None,
        };
        if let Some(merged) = merged {
            return DerivationTree::External(merged);
        }
    }
    // "p in r cannot be used" and "no other p exists" conclude "p cannot
    // be used": skip the step, keep the conclusion.
    for (derived, other) in [(&d.cause1, &d.cause2), (&d.cause2, &d.cause1)] {
        if let (DerivationTree::Derived(x), DerivationTree::External(External::NoVersions(p, _))) =
            (&**derived, &**other)
        {
            if x.shared_id.is_none() && matches!(x.terms.get(p), Some(Term::Positive(_))) {
                return collapse(&DerivationTree::Derived(Derived {
                    terms: d.terms.clone(),
                    shared_id: d.shared_id,
                    cause1: Arc::clone(&x.cause1),
                    cause2: Arc::clone(&x.cause2),
                }));
            }
        }
    }
    DerivationTree::Derived(Derived {
        terms: d.terms.clone(),
        shared_id: d.shared_id,
        cause1: Arc::new(collapse(&d.cause1)),
        cause2: Arc::new(collapse(&d.cause2)),
    })
}

/// Calls `visit` on every external incompatibility of the tree.
fn walk(tree: &Tree, visit: &mut impl FnMut(&External<Pkg, Range, Unusable>)) {
    match tree {
        DerivationTree::External(e) => visit(e),
        DerivationTree::Derived(d) => {
            walk(&d.cause1, visit);
            walk(&d.cause2, visit);
        }
    }
}

/// How the report reads: requirements as pip users write them, top-level
/// ones with the file and line they came from.
struct Phrasing<'p, 'a>(&'p Provider<'a>);

impl Phrasing<'_, '_> {
    /// A top-level requirement, in the words of its lines: `you require
    /// a>=1 (requirements.txt:1) and a<2 (requirements.txt:4)`.
    fn requested(&self, dep: &Pkg, range: &Range) -> String {
        let lines = self
            .0
            .root_lines
            .get(dep)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if lines.is_empty() {
            return format!("you require {}", dep.with_range(range));
        }
        let said: Vec<String> = lines
            .iter()
            .map(|(origin, text)| format!("{text} ({origin})"))
            .collect();
        let mut text = format!("you require {}", said.join(" and "));
        if range.is_empty() {
            text.push_str(", and no version is all of those");
        }
        text
    }

    fn sorted_terms(terms: &Map<Pkg, Term<Range>>) -> Vec<(&Pkg, &Term<Range>)> {
        let mut terms: Vec<_> = terms.iter().collect();
        terms.sort_by(|a, b| a.0.cmp(b.0));
        terms
    }
}

impl ReportFormatter<Pkg, Range, Unusable> for Phrasing<'_, '_> {
    type Output = String;

    fn format_external(&self, external: &External<Pkg, Range, Unusable>) -> String {
        match external {
            External::NotRoot(..) => "your requirements are being resolved".to_owned(),
            External::NoVersions(p, r) => {
                if *r == Range::full() {
                    format!("no version of {p} fits the image")
                } else {
                    format!("no version of {} fits the image", p.with_range(r))
                }
            }
            External::Custom(p, r, why) => format!("{} {why}", p.with_range(r)),
            External::FromDependencyOf(Pkg::Root, _, dep, r) => self.requested(dep, r),
            External::FromDependencyOf(p, r, dep, dr) => {
                format!("{} requires {}", p.with_range(r), dep.with_range(dr))
            }
        }
    }

    fn format_terms(&self, terms: &Map<Pkg, Term<Range>>) -> String {
        // The root is always chosen: a term saying so adds nothing.
        let mut terms = Self::sorted_terms(terms);
        terms.retain(|(p, t)| !(**p == Pkg::Root && matches!(t, Term::Positive(_))));
        match terms.as_slice() {
            [] => "your requirements cannot all be met".to_owned(),
            [(p, Term::Positive(r))] => format!("{} cannot be used", p.with_range(r)),
            [(p, Term::Negative(r))] => format!("you need {}", p.with_range(r)),
            [(p, Term::Positive(r)), (q, Term::Positive(qr))] => format!(
                "{} and {} cannot both be used",
                p.with_range(r),
                q.with_range(qr)
            ),
            [(p, Term::Positive(r)), (d, Term::Negative(dr))]
            | [(d, Term::Negative(dr)), (p, Term::Positive(r))] => {
                format!("{} requires {}", p.with_range(r), d.with_range(dr))
            }
            many => {
                let parts: Vec<String> = many
                    .iter()
                    .map(|(p, t)| match t {
                        Term::Positive(r) => p.with_range(r),
                        Term::Negative(r) => format!("not {}", p.with_range(r)),
                    })
                    .collect();
                format!("{} cannot go together", parts.join(", "))
            }
        }
    }

    fn explain_both_external(
        &self,
        external1: &External<Pkg, Range, Unusable>,
        external2: &External<Pkg, Range, Unusable>,
        current_terms: &Map<Pkg, Term<Range>>,
    ) -> String {
        format!(
            "Because {} and {}, {}.",
            self.format_external(external1),
            self.format_external(external2),
            self.format_terms(current_terms)
        )
    }

    fn explain_both_ref(
        &self,
        ref_id1: usize,
        derived1: &Derived<Pkg, Range, Unusable>,
        ref_id2: usize,
        derived2: &Derived<Pkg, Range, Unusable>,
        current_terms: &Map<Pkg, Term<Range>>,
    ) -> String {
        format!(
            "Because {} ({ref_id1}) and {} ({ref_id2}), {}.",
            self.format_terms(&derived1.terms),
            self.format_terms(&derived2.terms),
            self.format_terms(current_terms)
        )
    }

    fn explain_ref_and_external(
        &self,
        ref_id: usize,
        derived: &Derived<Pkg, Range, Unusable>,
        external: &External<Pkg, Range, Unusable>,
        current_terms: &Map<Pkg, Term<Range>>,
    ) -> String {
        format!(
            "Because {} ({ref_id}) and {}, {}.",
            self.format_terms(&derived.terms),
            self.format_external(external),
            self.format_terms(current_terms)
        )
    }

    fn and_explain_external(
        &self,
        external: &External<Pkg, Range, Unusable>,
        current_terms: &Map<Pkg, Term<Range>>,
    ) -> String {
        format!(
            "And because {}, {}.",
            self.format_external(external),
            self.format_terms(current_terms)
        )
    }

    fn and_explain_ref(
        &self,
        ref_id: usize,
        derived: &Derived<Pkg, Range, Unusable>,
        current_terms: &Map<Pkg, Term<Range>>,
    ) -> String {
        format!(
            "And because {} ({ref_id}), {}.",
            self.format_terms(&derived.terms),
            self.format_terms(current_terms)
        )
    }

    fn and_explain_prior_and_external(
        &self,
        prior_external: &External<Pkg, Range, Unusable>,
        external: &External<Pkg, Range, Unusable>,
        current_terms: &Map<Pkg, Term<Range>>,
    ) -> String {
        format!(
            "And because {} and {}, {}.",
            self.format_external(prior_external),
            self.format_external(external),
            self.format_terms(current_terms)
        )
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::sync::Mutex;

    use pep508_rs::MarkerEnvironmentBuilder;

    use super::*;
    use crate::deps::pip::dist::Location;
    use crate::deps::pip::tags::{Arch, Libc, WheelFilename};

    /// An index in memory, one release per line:
    /// `name version [flag ...] [: requirement | requirement ...]`.
    ///
    /// Each release has a `py3-none-any` wheel unless flags say otherwise:
    /// `whl=PY-ABI-PLAT` (repeatable) replaces it with wheels of those
    /// tags, `nowheel` drops it, `sdist` adds an sdist, `yanked` yanks
    /// every file, `rp=SPEC` gives the files a Requires-Python,
    /// `meta-rp=SPEC` gives it to the metadata only, `metaname=NAME`
    /// makes the metadata lie about the name. Extras are declared from the
    /// `extra == "..."` markers of the requirements.
    #[derive(Default)]
    struct Fake {
        files: BTreeMap<PackageName, Vec<DistFile>>,
        metadata: HashMap<String, CoreMetadata>,
        broken: Vec<PackageName>,
        files_calls: Mutex<Vec<PackageName>>,
        metadata_calls: Mutex<Vec<String>>,
    }

    fn name(s: &str) -> PackageName {
        PackageName::from_str(s).unwrap()
    }

    fn version(s: &str) -> Version {
        Version::from_str(s).unwrap()
    }

    fn file(filename: String, kind: DistKind) -> DistFile {
        DistFile {
            location: Location::Url(format!("https://files.example/{filename}")),
            filename,
            kind,
            sha256: None,
            requires_python: None,
            yanked: false,
            metadata: Some(None),
            size: None,
        }
    }

    impl Fake {
        fn parse(text: &str) -> Fake {
            let mut fake = Fake::default();
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let (head, requires) = line.split_once(':').unwrap_or((line, ""));
                let mut words = head.split_whitespace();
                let (n, v) = (words.next().unwrap(), words.next().unwrap());
                let flags: Vec<&str> = words.collect();
                let requires: Vec<Requirement> = requires
                    .split('|')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(|r| Requirement::from_str(r).unwrap_or_else(|e| panic!("{r}: {e}")))
                    .collect();
                let flag = |key: &str| {
                    flags
                        .iter()
                        .filter_map(move |f| f.strip_prefix(key))
                        .collect::<Vec<_>>()
                };
                let mut tags: Vec<&str> = flag("whl=");
                if tags.is_empty() && !flags.contains(&"nowheel") {
                    tags.push("py3-none-any");
                }
                let mut files: Vec<DistFile> = tags
                    .iter()
                    .map(|t| {
                        let f = format!("{}-{v}-{t}.whl", n.replace('-', "_"));
                        let w = WheelFilename::parse(&f).unwrap();
                        file(f, DistKind::Wheel(w))
                    })
                    .collect();
                if flags.contains(&"sdist") {
                    let kind = DistKind::Sdist {
                        version: version(v),
                    };
                    files.push(file(format!("{n}-{v}.tar.gz"), kind));
                }
                let rp = flag("rp=")
                    .first()
                    .map(|s| VersionSpecifiers::from_str(s).unwrap());
                for f in &mut files {
                    f.yanked = flags.contains(&"yanked");
                    f.requires_python = rp.clone();
                }
                let extras: BTreeSet<ExtraName> = requires
                    .iter()
                    .flat_map(|r| {
                        let m = r.marker.try_to_string().unwrap_or_default();
                        m.split("extra == '")
                            .skip(1)
                            .map(|rest| {
                                ExtraName::from_str(&rest[..rest.find('\'').unwrap()]).unwrap()
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect();
                let metadata = CoreMetadata {
                    name: flag("metaname=")
                        .first()
                        .map_or_else(|| name(n), |m| name(m)),
                    version: version(v),
                    requires_dist: requires,
                    requires_python: flag("meta-rp=")
                        .first()
                        .map(|s| VersionSpecifiers::from_str(s).unwrap()),
                    provides_extras: extras.into_iter().collect(),
                };
                for f in &files {
                    fake.metadata.insert(f.filename.clone(), metadata.clone());
                }
                fake.files.entry(name(n)).or_default().extend(files);
            }
            fake
        }
    }

    impl Source for Fake {
        fn files(&self, name: &PackageName) -> Result<Vec<DistFile>, SourceError> {
            self.files_calls.lock().unwrap().push(name.clone());
            if self.broken.contains(name) {
                return Err(SourceError::new(format!("HTTP 503 for /simple/{name}/")));
            }
            Ok(self.files.get(name).cloned().unwrap_or_default())
        }

        fn metadata(&self, file: &DistFile) -> Result<CoreMetadata, SourceError> {
            self.metadata_calls
                .lock()
                .unwrap()
                .push(file.filename.clone());
            self.metadata
                .get(&file.filename)
                .cloned()
                .ok_or_else(|| SourceError::new("no such file"))
        }
    }

    /// CPython 3.11.2 on x86_64 glibc 2.36 (Debian bookworm).
    fn input(requirements: &str, constraints: &str, pre: bool) -> ResolveInput {
        let markers = MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: "3.11.2",
            os_name: "posix",
            platform_machine: "x86_64",
            platform_python_implementation: "CPython",
            platform_release: "",
            platform_system: "Linux",
            platform_version: "",
            python_full_version: "3.11.2",
            python_version: "3.11",
            sys_platform: "linux",
        })
        .unwrap();
        let lines = |text: &str, file: &str| -> Vec<Requested> {
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| Requested {
                    requirement: Requirement::from_str(l.trim()).unwrap(),
                    file: file.to_owned(),
                    line: i + 1,
                })
                .collect()
        };
        ResolveInput {
            requirements: lines(requirements, "requirements.txt"),
            constraints: lines(constraints, "constraints.txt"),
            markers,
            target: Target {
                python: (3, 11),
                arch: Arch::X86_64,
                libc: Libc::Glibc {
                    major: 2,
                    minor: 36,
                },
            },
            python: version("3.11.2"),
            pre,
        }
    }

    /// `a==1.0 b[x,y]==2.0`, in name order.
    fn show(resolution: &Resolution) -> String {
        let one = |p: &Pinned| {
            let extras: Vec<String> = p.extras.iter().map(ToString::to_string).collect();
            let extras = if extras.is_empty() {
                String::new()
            } else {
                format!("[{}]", extras.join(","))
            };
            format!("{}{extras}=={}", p.name, p.version)
        };
        resolution
            .packages
            .iter()
            .map(one)
            .collect::<Vec<_>>()
            .join(" ")
    }

    const CHAIN: &str = "
        a 1.0 : b>=1
        b 0.9
        b 1.0 : c
        c 1.0
        c 2.0
    ";

    const EXTRAS: &str = "
        web 1.0 : core | fast; extra == 'speed' | web[json]; extra == 'all' | web[speed]; extra == 'all' | orjson; extra == 'json'
        core 1.0
        fast 1.0
        orjson 3.0
        user 1.0 : web[speed]
        other 1.0 : web
    ";

    const MARKERS: &str = "
        a 1.0 : old; python_version < '3.8' | win; sys_platform == 'win32' | arm; platform_machine == 'aarch64' | x86; platform_machine == 'x86_64' | new; python_full_version >= '3.11.1'
        old 1.0
        win 1.0
        arm 1.0
        x86 1.0
        new 1.0
        top 1.0
    ";

    const PYTHON: &str = "
        a 3.0 meta-rp=>=3.12
        a 2.0 rp=>=3.12
        a 1.5 rp=<3.12,>=3.8
        a 1.0
    ";

    const YANKED: &str = "
        a 2.0 yanked
        a 1.0
        b 1.0 yanked
    ";

    const PRE: &str = "
        a 2.0b1
        a 1.0
        b 1.0rc1
        c 1.0 : a>=2.0b1
        d 1.0 : a!=2.0b1
    ";

    const LOCAL: &str = "
        torch 2.0
        torch 2.0+cpu
        torch 2.0.post1
        torch 1.9+cpu
    ";

    const BACKTRACK: &str = "
        a 2.0 : b==1.0
        a 1.0 : b==2.0
        b 1.0
        b 2.0
    ";

    const WHEELS: &str = "
        a 2.0 whl=cp39-cp39-manylinux_2_17_x86_64 whl=cp311-cp311-win_amd64
        a 1.0 whl=py3-none-any whl=cp311-cp311-manylinux_2_17_x86_64 whl=cp311-cp311-musllinux_1_2_x86_64
        s 2.0 nowheel sdist
        s 1.0
        w 2.0 whl=cp311-cp311-win_amd64 whl=cp311-cp311-macosx_11_0_arm64 sdist
        w 1.0
        m 1.0 whl=cp311-abi3-manylinux_2_28_x86_64 whl=cp311-cp311-manylinux_2_28_x86_64 whl=cp311-cp311-manylinux_2_17_x86_64
    ";

    #[test]
    fn ranges_match_specifiers() {
        let specs = [
            "==1.0",
            "!=1.0",
            "<=1.0",
            ">1.0",
            "<1.0",
            ">=1.0",
            "~=1.0",
            "==1.*",
            "!=1.*",
            "==1.0+cpu",
            "!=1.0+cpu",
            ">1.0.post1",
            "<1.0.post1",
            "<=1.0.post1",
            "<2.0rc1",
            ">=2.0b1",
            "==2.0b1",
            ">2.0b1",
            "~=1.0.1",
            "==1.0.0",
            "<2",
            ">=1,<2,!=1.5",
        ];
        let versions = [
            "0.9",
            "1.0a1",
            "1.0",
            "1.0.0",
            "1.0+cpu",
            "1.0.post1",
            "1.0.post1+cu118",
            "1.0.post2",
            "1.0.1",
            "1.1",
            "1.5",
            "1.5+x",
            "2.0.dev0",
            "2.0b1",
            "2.0rc1",
            "2.0",
            "2.0+cpu",
            "3.0",
        ];
        // Where pep440_rs's `contains` is stricter than packaging (pip):
        // packaging lets `<V` take V's pre-releases when V is one itself.
        let packaging = [("<2.0rc1", "2.0.dev0", true), ("<2.0rc1", "2.0b1", true)];
        for spec in specs {
            let specs = VersionSpecifiers::from_str(spec).unwrap();
            let range = specifiers_range(&specs);
            for v in versions {
                let want = packaging
                    .iter()
                    .find(|(s, x, _)| *s == spec && *x == v)
                    .map_or_else(|| specs.contains(&version(v)), |(_, _, w)| *w);
                assert_eq!(range.contains(&version(v)), want, "{v} in {spec} ({range})");
            }
        }
    }

    #[test]
    fn ranges_read_as_specifiers() {
        let cases = [
            ("==1.0", "==1.0"),
            ("!=1.5", "!=1.5"),
            (">=1,<2", ">=1,<2"),
            (">=1,<2,!=1.5", ">=1,!=1.5,<2"),
            ("<=1.0", "<=1.0"),
            (">1.0", ">1.0"),
            ("<1.0", "<1.0"),
            ("~=1.4", ">=1.4,<2.dev0"),
            ("", ""),
        ];
        for (spec, want) in cases {
            let range = specifiers_range(&VersionSpecifiers::from_str(spec).unwrap());
            assert_eq!(show_range(&range), want, "{spec}");
        }
        let either = specifiers_range(&VersionSpecifiers::from_str("<1").unwrap()).union(
            &specifiers_range(&VersionSpecifiers::from_str(">=2").unwrap()),
        );
        assert_eq!(Pkg::Project(name("a")).with_range(&either), "a (<1 or >=2)");
        assert_eq!(show_range(&Range::empty()), "(no version)");
        assert!(is_pin(&specifiers_range(
            &VersionSpecifiers::from_str("==1.0").unwrap()
        )));
        assert!(is_pin(&Range::singleton(version("1.0"))));
        assert!(!is_pin(&specifiers_range(
            &VersionSpecifiers::from_str("<=1.0").unwrap()
        )));
    }

    #[test]
    fn resolutions() {
        // (what, index, requirements, constraints, --pre, expected)
        let cases: &[(&str, &str, &str, &str, bool, &str)] = &[
            ("chain, newest first", CHAIN, "a", "", false, "a==1.0 b==1.0 c==2.0"),
            ("top-level pin", CHAIN, "a\nc==1.0", "", false, "a==1.0 b==1.0 c==1.0"),
            ("two lines, one project", CHAIN, "c>=1\nc<2", "", false, "c==1.0"),
            ("no extra, no extra deps", EXTRAS, "web", "", false, "core==1.0 web==1.0"),
            ("an extra", EXTRAS, "web[speed]", "", false, "core==1.0 fast==1.0 web[speed]==1.0"),
            (
                "an extra that asks for others",
                EXTRAS,
                "web[all]",
                "",
                false,
                "core==1.0 fast==1.0 orjson==3.0 web[all,json,speed]==1.0",
            ),
            (
                "pkg[x] and pkg from different requirers",
                EXTRAS,
                "other\nuser",
                "",
                false,
                "core==1.0 fast==1.0 other==1.0 user==1.0 web[speed]==1.0",
            ),
            ("extra spelled differently", EXTRAS, "Web[Speed]", "", false, "core==1.0 fast==1.0 web[speed]==1.0"),
            (
                "markers for the image, transitive",
                MARKERS,
                "a",
                "",
                false,
                "a==1.0 new==1.0 x86==1.0",
            ),
            (
                "markers for the image, top level",
                MARKERS,
                "old; python_version < '3.8'\nwin; sys_platform == 'win32'\narm; platform_machine == 'aarch64'\ntop; python_version >= '3.11' and sys_platform == 'linux'",
                "",
                false,
                "top==1.0",
            ),
            ("requires-python skips newest", PYTHON, "a", "", false, "a==1.5"),
            ("requires-python, pinned away", PYTHON, "a<1.5", "", false, "a==1.0"),
            ("yanked skipped", YANKED, "a", "", false, "a==1.0"),
            ("yanked taken when pinned", YANKED, "a==2.0", "", false, "a==2.0"),
            ("yanked taken when pinned ===", YANKED, "a===2.0", "", false, "a==2.0"),
            ("yanked pinned by a constraint", YANKED, "a", "a==2.0", false, "a==2.0"),
            ("pre-release skipped", PRE, "a", "", false, "a==1.0"),
            ("--pre", PRE, "a", "", true, "a==2.0b1"),
            ("specifier names a pre-release", PRE, "a>=2.0b1", "", false, "a==2.0b1"),
            ("transitive specifier names one", PRE, "c", "", false, "a==2.0b1 c==1.0"),
            ("!= does not let pre-releases in", PRE, "d", "", false, "a==1.0 d==1.0"),
            ("only pre-releases: taken", PRE, "b", "", false, "b==1.0rc1"),
            ("only pre-releases in range: taken", PRE, "a>1.0", "", false, "a==2.0b1"),
            ("== matches local versions", LOCAL, "torch==2.0", "", false, "torch==2.0+cpu"),
            ("== with a local label", LOCAL, "torch==1.9+cpu", "", false, "torch==1.9+cpu"),
            ("<= matches local versions", LOCAL, "torch<=2.0", "", false, "torch==2.0+cpu"),
            ("!= excludes local versions", LOCAL, "torch!=2.0,<2.0.post1", "", false, "torch==1.9+cpu"),
            ("> excludes post and local", LOCAL, "torch>1.9,<2.0.post1", "", false, "torch==2.0+cpu"),
            ("constraint narrows", CHAIN, "a", "c<2", false, "a==1.0 b==1.0 c==1.0"),
            ("constraint adds nothing", CHAIN, "c", "a==1.0\nzzz==1", false, "c==2.0"),
            ("constraint with a false marker", CHAIN, "c", "c<2; sys_platform == 'win32'", false, "c==2.0"),
            ("backtracking", BACKTRACK, "a\nb>=2", "", false, "a==1.0 b==2.0"),
            ("wheels for elsewhere only: skipped", WHEELS, "a", "", false, "a==1.0"),
        ];
        for (what, index, reqs, constraints, pre, want) in cases {
            let fake = Fake::parse(index);
            let got = resolve(&fake, &input(reqs, constraints, *pre))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(show(&got), *want, "{what}");
            // Each listing read once, each version's metadata once.
            for calls in [
                fake.files_calls
                    .lock()
                    .unwrap()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
                fake.metadata_calls.lock().unwrap().clone(),
            ] {
                let mut unique = calls.clone();
                unique.sort();
                unique.dedup();
                assert_eq!(unique.len(), calls.len(), "{what}: {calls:?}");
            }
        }
    }

    #[test]
    fn chosen_wheels() {
        // (requirement, the wheel taken)
        let cases = [
            ("a", "a-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"),
            ("m", "m-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"),
            ("s<2", "s-1.0-py3-none-any.whl"),
        ];
        for (req, want) in cases {
            let got = resolve(&Fake::parse(WHEELS), &input(req, "", false)).unwrap();
            assert_eq!(got.packages[0].wheel.filename, want, "{req}");
        }
    }

    #[test]
    fn who_requires_what() {
        let got = resolve(
            &Fake::parse(EXTRAS),
            &input("other\nuser\nweb[nosuch]", "", false),
        )
        .unwrap();
        let by: Vec<(String, Vec<String>)> = got
            .packages
            .iter()
            .map(|p| (p.name.to_string(), p.required_by.clone()))
            .collect();
        let want: Vec<(String, Vec<String>)> = [
            ("core", &["web==1.0"][..]),
            ("fast", &["web[speed]==1.0"]),
            ("other", &["requirements.txt:1"]),
            ("user", &["requirements.txt:2"]),
            ("web", &["requirements.txt:3", "other==1.0", "user==1.0"]),
        ]
        .iter()
        .map(|(n, r)| (n.to_string(), r.iter().map(ToString::to_string).collect()))
        .collect();
        assert_eq!(by, want);
        assert_eq!(
            got.warnings,
            ["web 1.0 does not provide the extra 'nosuch'"]
        );
    }

    #[test]
    fn metadata_only_for_versions_tried() {
        // (index, requirements, metadata that must be read, and must not)
        let cases: &[(&str, &str, &[&str], &[&str])] = &[
            (CHAIN, "a", &["b-1.0-py3-none-any.whl"], &["b-0.9-py3-none-any.whl", "c-1.0-py3-none-any.whl"]),
            // The extra takes the version its project already has.
            (
                "web 2.0 : x; extra == 'speed'\nweb 1.0 : x; extra == 'speed'\nx 1.0\nuser 1.0 : web[speed]",
                "web<2\nuser",
                &["web-1.0-py3-none-any.whl"],
                &["web-2.0-py3-none-any.whl"],
            ),
        ];
        for (index, reqs, read, unread) in cases {
            let fake = Fake::parse(index);
            resolve(&fake, &input(reqs, "", false)).unwrap();
            let calls = fake.metadata_calls.lock().unwrap().clone();
            for f in *read {
                assert!(calls.iter().any(|c| c == f), "{f} not read: {calls:?}");
            }
            for f in *unread {
                assert!(!calls.iter().any(|c| c == f), "{f} read: {calls:?}");
            }
        }
    }

    #[test]
    fn source_errors_name_the_project() {
        let mut fake = Fake::parse(CHAIN);
        fake.broken.push(name("b"));
        let err = resolve(&fake, &input("a", "", false))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "reading the index for `b`: HTTP 503 for /simple/b/");
    }

    #[test]
    fn failures() {
        // (what, index, requirements, constraints, substrings of the error)
        let cases: &[(&str, &str, &str, &str, &[&str])] = &[
            (
                "unsatisfiable pair",
                "a 1.0\na 2.0\nb 1.0 : a>=2",
                "a==1.0\nb",
                "",
                &[
                    "you require a==1.0 (requirements.txt:1)",
                    "b requires a>=2",
                    "you require b (requirements.txt:2)",
                ],
            ),
            (
                "two lines that disagree",
                CHAIN,
                "c>=2 ; python_version >= '3'\na\nc<2",
                "",
                &["you require c>=2 (requirements.txt:1) and c<2 (requirements.txt:3), and no version is all of those"],
            ),
            (
                "conflict through a constraint",
                CHAIN,
                "a",
                "c>2",
                &["c>2", "constraints.txt:1 allows only c>2"],
            ),
            (
                "yanked only, not pinned",
                YANKED,
                "b",
                "",
                &["no version of b fits the image", "b 1.0 is yanked"],
            ),
            (
                "requires-python everywhere",
                "a 2.0 rp=>=3.12\na 1.0 meta-rp=>=3.13",
                "a",
                "",
                &[
                    "a==1.0 requires Python >=3.13 (the image has 3.11.2)",
                    "a 2.0 requires Python >=3.12",
                ],
            ),
            (
                "wheels for other platforms only",
                "x 1.0 whl=cp311-cp311-win_amd64 whl=cp311-cp311-manylinux_2_17_aarch64",
                "x",
                "",
                &[
                    "no version of x fits the image",
                    "x 1.0 has no sdist and no wheel for this image (x-1.0-cp311-cp311-win_amd64.whl, ...)",
                    "x has no version for this image",
                ],
            ),
            (
                "newest sdist only: no wheel",
                WHEELS,
                "s",
                "",
                &[
                    "`s==2.0` has no wheel for this image (only an sdist)",
                    "cp311-cp311-manylinux_2_36_x86_64",
                    "py3-none-any",
                    "--find-links",
                    "`s<2.0`",
                    "sandbox",
                ],
            ),
            (
                "newest for other platforms and an sdist",
                WHEELS,
                "w",
                "",
                &[
                    "`w==2.0` has no wheel",
                    "w-2.0-cp311-cp311-win_amd64.whl",
                    "w-2.0-cp311-cp311-macosx_11_0_arm64.whl",
                ],
            ),
            (
                "unknown top-level package",
                CHAIN,
                "a\nnosuch>=1",
                "",
                &[
                    "`nosuch` is on no index (required by requirements.txt:2)",
                    "--index-url",
                ],
            ),
            (
                "unknown transitive package",
                "a 1.0 : nosuch",
                "a",
                "",
                &["`nosuch` is on no index (required by a==1.0)"],
            ),
            (
                "metadata disagrees with the file",
                "a 1.0 metaname=b",
                "a",
                "",
                &["a-1.0-py3-none-any.whl says it is `b==1.0`, not `a==1.0`"],
            ),
            (
                "URL dependency",
                "a 1.0 : b @ https://example.com/b-1.0-py3-none-any.whl",
                "a",
                "",
                &[
                    "`a==1.0` requires `b @ https://example.com/b-1.0-py3-none-any.whl` from a URL",
                    "--find-links",
                ],
            ),
            (
                "constraint with extras",
                CHAIN,
                "a",
                "b[x]<2",
                &["constraints.txt:1: constraint `b[x]<2` has extras"],
            ),
        ];
        for (what, index, reqs, constraints, wants) in cases {
            let fake = Fake::parse(index);
            let err = match resolve(&fake, &input(reqs, constraints, false)) {
                Ok(r) => panic!("{what}: resolved to {}", show(&r)),
                Err(e) => e.to_string(),
            };
            for want in *wants {
                assert!(err.contains(want), "{what}: {want:?} not in:\n{err}");
            }
        }
    }

    mod build_tests {
        //! A source that builds sdists: the built wheel stands for the version,
        //! its metadata gives the dependencies, and a failed build names the
        //! version.
        use super::*;

        /// Wraps [`Fake`]: an sdist "builds" into a `py3-none-any` wheel with
        /// the sdist's metadata; `fail` names projects whose build fails.
        struct Building {
            fake: Fake,
            fail: Vec<&'static str>,
            builds: std::sync::Mutex<Vec<String>>,
        }

        impl Source for Building {
            fn files(&self, name: &PackageName) -> Result<Vec<DistFile>, SourceError> {
                self.fake.files(name)
            }
            fn metadata(&self, file: &DistFile) -> Result<CoreMetadata, SourceError> {
                match file.filename.strip_suffix("-py3-none-any.whl") {
                    Some(stem) if file.filename.contains("-0built") => {
                        let sdist = format!("{}.tar.gz", stem.trim_end_matches("-0built"));
                        let m = self.fake.metadata.get(&sdist).cloned();
                        m.ok_or_else(|| SourceError::new("no such sdist"))
                    }
                    _ => self.fake.metadata(file),
                }
            }
            fn build(
                &self,
                name: &PackageName,
                sdist: &DistFile,
            ) -> Result<Option<DistFile>, SourceError> {
                self.builds.lock().unwrap().push(sdist.filename.clone());
                if self.fail.contains(&name.as_ref()) {
                    return Err(SourceError::new("the build exited with status 1"));
                }
                let stem = sdist.filename.trim_end_matches(".tar.gz");
                let f = format!("{stem}-0built-py3-none-any.whl");
                let w = WheelFilename::parse(&f).unwrap();
                Ok(Some(file(f, DistKind::Wheel(w))))
            }
        }

        #[test]
        fn sdists_built_by_the_source() {
            let index = "
            app 1.0 nowheel sdist : dep>=2
            dep 2.0
            dep 1.0
            broken 1.0 nowheel sdist
            both 1.0 sdist
        ";
            // (requirements, Ok(chosen files) or Err(part of the message), builds)
            type Case = (
                &'static str,
                Result<Vec<&'static str>, &'static str>,
                Vec<&'static str>,
            );
            let cases: Vec<Case> = vec![
                (
                    "app",
                    Ok(vec![
                        "app-1.0-0built-py3-none-any.whl",
                        "dep-2.0-py3-none-any.whl",
                    ]),
                    vec!["app-1.0.tar.gz"],
                ),
                // A published wheel wins over a build.
                ("both", Ok(vec!["both-1.0-py3-none-any.whl"]), vec![]),
                (
                    "broken",
                    Err("building `broken==1.0` from its sdist: the build exited with status 1"),
                    vec!["broken-1.0.tar.gz"],
                ),
            ];
            for (reqs, want, builds) in cases {
                let source = Building {
                    fake: Fake::parse(index),
                    fail: vec!["broken"],
                    builds: Default::default(),
                };
                let got = resolve(&source, &input(reqs, "", false));
                match (got, want) {
                    (Ok(r), Ok(files)) => {
                        let chosen: Vec<&str> = r
                            .packages
                            .iter()
                            .map(|p| p.wheel.filename.as_str())
                            .collect();
                        assert_eq!(chosen, files, "{reqs}");
                    }
                    (Err(e), Err(part)) => assert!(e.to_string().contains(part), "{reqs}: {e}"),
                    (got, want) => panic!("{reqs}: got {got:?}, want {want:?}"),
                }
                assert_eq!(*source.builds.lock().unwrap(), builds, "{reqs}: built once");
            }
        }
    }

    #[test]
    fn unknown_libc_takes_pure_wheels_and_names_a_package_that_needs_one() {
        let mut unknown = input("p\nn", "", false);
        unknown.target.libc = Libc::Unknown;
        let fake = Fake::parse(
            "p 1.0 whl=py3-none-any\n\
             n 2.0 whl=cp311-cp311-manylinux_2_17_x86_64 sdist\n\
             n 1.0 whl=py3-none-any",
        );
        // The pure wheel of `p` installs; `n` 2.0 only has a native wheel
        // (and an sdist): the error names it and says why.
        let err = resolve(&fake, &unknown).unwrap_err().to_string();
        for needle in [
            "`n==2.0` has only wheels with native code (n-2.0-cp311-cp311-manylinux_2_17_x86_64.whl)",
            "cannot tell on this base",
            "python:3.12-slim",
        ] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
        let pinned = input("p\nn<2", "", false);
        let got = resolve(
            &fake,
            &ResolveInput {
                target: unknown.target,
                ..pinned
            },
        )
        .unwrap();
        assert_eq!(show(&got), "n==1.0 p==1.0");
        // Native wheels only, no sdist: the resolver's report says why.
        let native = Fake::parse("x 1.0 whl=cp311-cp311-manylinux_2_17_x86_64");
        let mut only_x = input("x", "", false);
        only_x.target.libc = Libc::Unknown;
        let err = resolve(&native, &only_x).unwrap_err().to_string();
        assert!(
            err.contains("only pure-Python (`none-any`) wheels fit"),
            "{err}"
        );
    }
}
