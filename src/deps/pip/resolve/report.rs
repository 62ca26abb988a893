//! Explaining a failure: pubgrub's derivation tree in pip users' words.
//!
//! When no set of versions fits, pubgrub returns the chain of reasons
//! (the derivation tree). Before it is written out, the tree is made to
//! speak of what exists: a project no index lists is reported as unknown
//! rather than explained; steps that only say "no other version exists"
//! are folded into their neighbour; ranges are simplified against the
//! project's known versions. The report then reads requirements as pip
//! users write them, top-level ones with their `file:line`, and ends with
//! notes on what it leaves implicit: versions skipped for the image, the
//! constraints involved, the versions there are.

use std::sync::Arc;

use pep440_rs::Version;
use pep508_rs::PackageName;
use pubgrub::{
    DefaultStringReporter, DerivationTree, Derived, External, Map, ReportFormatter, Reporter, Term,
};

use super::super::tags;
use super::candidate::tag_summary;
use super::package::{Pkg, Unusable};
use super::provider::Provider;
use super::range::{is_pin, Range};
use super::ResolveError;

type Tree = DerivationTree<Pkg, Range, Unusable>;

impl Provider<'_> {
    pub(super) fn explain(&self, tree: Tree) -> ResolveError {
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
