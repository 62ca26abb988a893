//! What pubgrub decides about: the packages, and why a version is unusable.
//!
//! An extra is a package of its own, `name[extra]`, beside its project
//! (pip's `ExtrasCandidate`, uv's `PubGrubPackage`): its version `v`
//! depends on `name == v`, so the extra's dependencies come in exactly
//! when some requirer asks for it. A virtual root package stands for the
//! top-level requirements. Packages print as the reports name them.

use std::fmt;

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{ExtraName, PackageName};

use super::range::{show_range, Range};

/// The version of the virtual root project whose dependencies are the
/// top-level requirements.
pub(super) fn root_version() -> Version {
    Version::new([0])
}

/// A pubgrub package: the top-level requirements, a project, or one
/// extra of a project.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Pkg {
    Root,
    Project(PackageName),
    Extra(PackageName, ExtraName),
}

impl Pkg {
    pub(super) fn name(&self) -> Option<&PackageName> {
        match self {
            Pkg::Root => None,
            Pkg::Project(n) | Pkg::Extra(n, _) => Some(n),
        }
    }

    /// The package with a range, as a requirement reads: `a>=1`,
    /// `a[x]==2.0`, `a (<1 or >=2)`.
    pub(super) fn with_range(&self, range: &Range) -> String {
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
pub(super) enum Unusable {
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
