//! A file an index or wheelhouse offers for a project, and where it is.
//!
//! The index client ([`super::index`]) makes these from PEP 691 JSON,
//! PEP 503 HTML or a folder listing; the resolver ([`super::resolve`])
//! chooses among them; the downloader fetches the chosen ones.

use std::path::PathBuf;

use pep440_rs::{Version, VersionSpecifiers};

use super::tags::WheelFilename;

/// Where a file's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// An absolute http(s) URL (relative links are resolved by the index
    /// client).
    Url(String),
    /// A file in a `--find-links` folder.
    Path(PathBuf),
}

/// What the filename says the file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DistKind {
    Wheel(WheelFilename),
    /// A source distribution (`.tar.gz`, `.zip`): hoist cannot build it,
    /// but it tells which versions exist, as pip sees them.
    Sdist { version: Version },
}

/// One file of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistFile {
    pub filename: String,
    pub kind: DistKind,
    pub location: Location,
    /// The sha256 the index states, lower-case hex.
    pub sha256: Option<String>,
    /// `Requires-Python` as the index states it (PEP 345/503
    /// `data-requires-python`).
    pub requires_python: Option<VersionSpecifiers>,
    /// Yanked (PEP 592): chosen only when pinned with `==` or `===`.
    pub yanked: bool,
    /// PEP 658/714: the index serves the core metadata at `<url>.metadata`;
    /// `Some(None)` when it does without stating its sha256.
    pub metadata: Option<Option<String>>,
    pub size: Option<u64>,
}

impl DistFile {
    /// The version the filename says.
    pub fn version(&self) -> &Version {
        match &self.kind {
            DistKind::Wheel(w) => &w.version,
            DistKind::Sdist { version } => version,
        }
    }
}
