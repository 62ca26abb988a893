//! The provider: pubgrub's questions answered the way pip answers them.
//!
//! pubgrub asks which package to decide next, which version to try
//! ([`super::candidate`]) and what a version depends on. The provider
//! reads the requirements and constraints into pubgrub's terms once,
//! lists each project once and reads each version's metadata once from
//! its wheel (both through [`super::prefetch`], which fetches them ahead
//! as soon as a requirement names the project), and keeps what the report
//! and the resolution need afterwards: who asked for what, which extras
//! are missing, the order packages appeared in.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use pep440_rs::{Version, VersionSpecifier};
use pep508_rs::{ExtraName, MarkerEnvironment, PackageName, Requirement, VersionOrUrl};
use pubgrub::{Dependencies, DependencyProvider, PackageResolutionStatistics};

use super::super::dist::DistFile;
use super::super::metadata::CoreMetadata;
use super::super::tags::{self, Tag};
use super::candidate::Project;
use super::package::{Pkg, Unusable};
use super::prefetch::Ahead;
use super::range::{is_pin, names_prerelease, pins, specifiers_range, Range};
use super::{Pinned, Resolution, ResolveError, ResolveInput, Source};

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

/// Rank of each tag the image accepts, 0 best.
pub(super) fn tag_ranks(input: &ResolveInput) -> HashMap<Tag, usize> {
    tags::compatible_tags(&input.target)
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, i))
        .collect()
}

/// The state pubgrub's questions are answered from. Single-threaded, as
/// pubgrub is; listings and metadata are read ahead on other threads.
pub(super) struct Provider<'a> {
    pub(super) source: &'a dyn Source,
    ahead: &'a Ahead<'a>,
    pub(super) input: &'a ResolveInput,
    /// Rank of each tag the image accepts, 0 best.
    pub(super) tag_ranks: HashMap<Tag, usize>,
    root_edges: Edges,
    /// The top-level requirements by the package they add: where each
    /// was written (`file:line`) and what it says.
    pub(super) root_lines: HashMap<Pkg, Vec<(String, String)>>,
    /// Constraints by project: the range, and where they were written.
    pub(super) constraints: HashMap<PackageName, (Range, Vec<String>)>,
    pub(super) projects: RefCell<HashMap<PackageName, Rc<Project>>>,
    metadata: RefCell<BTreeMap<(PackageName, Version), Arc<CoreMetadata>>>,
    /// Wheels the source built from sdists, by version.
    pub(super) built: RefCell<HashMap<(PackageName, Version), DistFile>>,
    edges: RefCell<HashMap<(Pkg, Version), Edges>>,
    /// `==`/`===` specifiers seen for each project (yanked files).
    pub(super) pins: RefCell<HashMap<PackageName, Vec<VersionSpecifier>>>,
    /// Projects some specifier lets pre-releases into.
    pub(super) explicit_pre: RefCell<HashSet<PackageName>>,
    /// The version last chosen for each project, which its extras prefer.
    pub(super) chosen: RefCell<HashMap<PackageName, Version>>,
    order: RefCell<HashMap<Pkg, usize>>,
    /// Extras asked of a version whose metadata does not declare them.
    missing_extras: RefCell<BTreeSet<(PackageName, Version, ExtraName)>>,
}

impl<'a> Provider<'a> {
    pub(super) fn new(
        source: &'a dyn Source,
        input: &'a ResolveInput,
        ahead: &'a Ahead<'a>,
    ) -> Result<Provider<'a>, ResolveError> {
        let mut provider = Provider {
            source,
            ahead,
            input,
            tag_ranks: tag_ranks(input),
            root_edges: Edges::default(),
            root_lines: HashMap::new(),
            constraints: HashMap::new(),
            projects: RefCell::default(),
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
        for (pkg, range) in &edges.0 {
            if let Pkg::Project(n) = pkg {
                ahead.narrow(n, range);
            }
        }
        for (n, (range, _)) in &provider.constraints {
            ahead.narrow(n, range);
        }
        provider.read_ahead(&edges);
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

    /// The project's files, read once (or taken from what was read
    /// ahead).
    pub(super) fn project(&self, name: &PackageName) -> Result<Rc<Project>, ResolveError> {
        let cached = self.projects.borrow().get(name).cloned();
        if let Some(project) = cached {
            return Ok(project);
        }
        let files = self
            .ahead
            .files(name)
            .map_err(|source| ResolveError::Source {
                package: name.clone(),
                source,
            })?;
        let project = Rc::new(self.classify(name, &files));
        self.projects
            .borrow_mut()
            .insert(name.clone(), Rc::clone(&project));
        Ok(project)
    }

    /// Has the projects the edges name read ahead, with what they depend
    /// on: resolution then waits on the slowest fetch, not on their sum.
    fn read_ahead(&self, edges: &Edges) {
        for (pkg, range) in &edges.0 {
            match pkg {
                Pkg::Root => {}
                Pkg::Project(n) => self.ahead.want(n, range, &[]),
                Pkg::Extra(n, e) => self.ahead.want(n, range, std::slice::from_ref(e)),
            }
        }
    }

    /// The core metadata of a version, read once from its wheel.
    fn metadata(
        &self,
        name: &PackageName,
        version: &Version,
    ) -> Result<Arc<CoreMetadata>, ResolveError> {
        let key = (name.clone(), version.clone());
        let cached = self.metadata.borrow().get(&key).cloned();
        if let Some(metadata) = cached {
            return Ok(metadata);
        }
        let wheel = self.wheel(name, version)?;
        let metadata = self
            .ahead
            .metadata(&wheel)
            .map_err(|source| ResolveError::Metadata {
                file: wheel.filename.clone(),
                source,
            })?;
        if metadata.name != *name || metadata.version != *version {
            return Err(ResolveError::MetadataMismatch {
                file: wheel.filename.clone(),
                name: metadata.name.clone(),
                version: metadata.version.clone(),
                expected_name: name.clone(),
                expected_version: version.clone(),
            });
        }
        self.metadata
            .borrow_mut()
            .insert(key, Arc::clone(&metadata));
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
            let applies = |markers: &MarkerEnvironment| match extra {
                None => req.marker.evaluate(markers, &[]),
                // Only what the extra adds: the rest is the project's own.
                Some(e) => {
                    req.marker.evaluate(markers, std::slice::from_ref(e))
                        && !req.marker.evaluate(markers, &[])
                }
            };
            if let Some(high) = &self.input.unknown_patch {
                if applies(markers) != applies(high) {
                    return Err(ResolveError::UnknownFullVersion {
                        requirer: requirer(),
                        requirement: req.to_string(),
                        major: self.input.target.python.0,
                        minor: self.input.target.python.1,
                    });
                }
            }
            let applies = applies(markers);
            if applies {
                let within = extra.is_none().then_some(name);
                self.add_requirement(&mut edges, req, within, requirer)?;
            }
        }
        Ok(Ok(edges))
    }

    /// Where the top-level requirements adding this package were written.
    pub(super) fn origins(&self, pkg: &Pkg) -> Vec<String> {
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
    pub(super) fn resolution(
        &self,
        mut selected: Vec<(Pkg, Version)>,
    ) -> Result<Resolution, ResolveError> {
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
        self.choose(package, range)
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, Range, Unusable>, ResolveError> {
        let edges = match package {
            Pkg::Root => self.root_edges.clone(),
            Pkg::Project(n) => match self.dependencies(n, version, None)? {
                Ok(edges) => {
                    // Decided on: its wheel downloads while the rest is
                    // resolved.
                    self.ahead.download(&self.wheel(n, version)?);
                    edges
                }
                Err(why) => return Ok(Dependencies::Unavailable(why)),
            },
            Pkg::Extra(n, e) => match self.dependencies(n, version, Some(e))? {
                Ok(edges) => edges,
                Err(why) => return Ok(Dependencies::Unavailable(why)),
            },
        };
        self.read_ahead(&edges);
        let constraints = edges.0.iter().cloned().collect();
        self.edges
            .borrow_mut()
            .insert((package.clone(), version.clone()), edges);
        Ok(Dependencies::Available(constraints))
    }
}
