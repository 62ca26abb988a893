//! What the index's tests share: names, URLs, bare links, a config, a
//! wheel's metadata.

use std::str::FromStr;

use pep508_rs::PackageName;
use reqwest::Url;

use super::super::dist::Location;
use super::{IndexConfig, RawFile};

pub(super) const SIX_WHL: &str = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254";

pub(super) fn name(s: &str) -> PackageName {
    PackageName::from_str(s).unwrap()
}

pub(super) fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

/// A RawFile with only the fields a case sets.
pub(super) fn raw(filename: &str, location: &str) -> RawFile {
    RawFile {
        filename: filename.to_owned(),
        location: Location::Url(location.to_owned()),
        sha256: None,
        requires_python: None,
        yanked: false,
        metadata: None,
        size: None,
    }
}

pub(super) const A_METADATA: &[u8] =
    b"Metadata-Version: 2.1\nName: a\nVersion: 1.0\nRequires-Dist: b>=2\n\nLong text.\n";

pub(super) fn config(index: &str) -> IndexConfig {
    IndexConfig {
        index_url: index.to_owned(),
        ..IndexConfig::default()
    }
}

pub(super) const JSON: &str = "application/vnd.pypi.simple.v1+json";
