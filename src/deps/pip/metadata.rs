//! Core metadata (`METADATA`, PEP 566/643): what a distribution needs.
//!
//! The resolver needs four fields of it; they come from the index's PEP 658
//! `.metadata` file, or from the wheel's `*.dist-info/METADATA`.

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{ExtraName, PackageName, Requirement};

/// The fields of a distribution's core metadata the resolver uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreMetadata {
    pub name: PackageName,
    pub version: Version,
    /// `Requires-Dist`, markers unevaluated (extras are markers too).
    pub requires_dist: Vec<Requirement>,
    pub requires_python: Option<VersionSpecifiers>,
    pub provides_extras: Vec<ExtraName>,
}
