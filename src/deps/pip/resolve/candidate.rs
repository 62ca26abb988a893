//! Candidates: which files of a version suit the image, and which version
//! to try next.
//!
//! A project's files are sorted per version into an [`Offer`]: wheels
//! whose tags fit the image (with the rank of their best tag), sdists, and
//! the rest, left out for another interpreter, platform or Python. A
//! version counts when something in its offer is installable, yanked files
//! only when pinned (PEP 592). The next version is the newest that counts,
//! pre-releases only when allowed or when nothing else is left; its wheel
//! is the best-ranked one, or one the [`super::Source`] builds from the
//! sdist. This is the part of pip's finder the resolution depends on, kept
//! apart from the provider's bookkeeping as uv keeps its candidate
//! selector.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::PackageName;

use super::super::dist::{DistFile, DistKind};
use super::super::tags::{self, Target};
use super::package::{root_version, Pkg};
use super::provider::Provider;
use super::range::Range;
use super::ResolveError;

/// The files of one version, sorted by what they are to the image.
#[derive(Debug, Default)]
pub(super) struct Offer {
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

    pub(super) fn installable(&self, pinned: bool) -> bool {
        let yanked = self.takes_yanked(pinned);
        self.wheels.iter().any(|(_, f)| yanked || !f.yanked)
            || self.sdists.iter().any(|f| yanked || !f.yanked)
    }

    /// The wheel pip would take: best tag, then highest build tag.
    pub(super) fn best_wheel(&self, pinned: bool) -> Option<&DistFile> {
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
    pub(super) fn why_not(&self, pinned: bool) -> Option<String> {
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
pub(super) struct Project {
    pub(super) offers: BTreeMap<Version, Offer>,
    /// Whether any index listed any file.
    pub(super) listed: bool,
}

impl Provider<'_> {
    /// Sorts a project's files by version and by use to the image.
    pub(super) fn classify(&self, name: &PackageName, files: &[DistFile]) -> Project {
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
                        offer.foreign.push(file.filename.clone());
                    }
                    continue;
                }
            }
            match &file.kind {
                DistKind::Wheel(w) => {
                    let rank = w.tags().iter().filter_map(|t| self.tag_ranks.get(t)).min();
                    match rank {
                        Some(&rank) => offer.wheels.push((rank, file.clone())),
                        None => offer.foreign.push(file.filename.clone()),
                    }
                }
                DistKind::Sdist { .. } => offer.sdists.push(file.clone()),
            }
        }
        project
    }

    /// Whether a requirement pins this version with `==` or `===`.
    pub(super) fn pinned(&self, name: &PackageName, version: &Version) -> bool {
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
    pub(super) fn wheel(
        &self,
        name: &PackageName,
        version: &Version,
    ) -> Result<DistFile, ResolveError> {
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

    /// The version to try next for `package` within `range`, as pip's
    /// finder orders them (see the module docs); `None` when none is left.
    pub(super) fn choose(
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
}

/// A few of the image's best tags, for messages: the best, the best
/// stable-ABI one, and the pure-Python one.
pub(super) fn tag_summary(target: &Target) -> Vec<String> {
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
