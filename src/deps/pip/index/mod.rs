//! The package index client: which files a project has, and their core
//! metadata.
//!
//! pip finds files in three kinds of places, and so does this module:
//!
//! 1. a *simple index* (`--index-url`, default PyPI, and each
//!    `--extra-index-url`): one page per project at `<index>/<name>/`, the
//!    name normalised (PEP 503). The page is asked for as PEP 691 JSON
//!    (`json`), with PEP 503 HTML (`html`) accepted in its place, since
//!    many private indexes serve only HTML;
//! 2. a *find-links folder* (`--find-links /wheels`): every archive in it
//!    whose name is the project's: the wheelhouse of an air-gapped host;
//! 3. a *find-links page* (`--find-links https://host/wheels.html`): one
//!    HTML page of links for all projects, fetched once (`find_links`).
//!
//! The answers of every place are merged, as pip merges them: an extra
//! index is not a fallback but a peer of the main one, whatever that means
//! for dependency confusion (pin with `--hash`, or use one index that
//! proxies the others). Places are asked in a fixed order (find-links,
//! then the index, then the extra indexes) and a file name seen twice is
//! kept from the first place only, so the answer does not depend on
//! timing. Files whose names do not parse (eggs, installers, odd wheel
//! names) are left out, as pip leaves them out.
//!
//! This file holds what ties the places together: the configuration, the
//! errors, the [`Index`] and its merge, and what a link's file name says.
//! Each other concern is a module, as uv's client splits them:
//!
//! - `auth`: credentials from URLs and netrc, sent to their origin only;
//! - `client`: one request with its credentials, a small document
//!   fetched whole; `retry`: the retry loop it and the downloader share;
//! - `page`: a project page fetched, kept in the store for offline runs,
//!   and parsed by its content type;
//! - `json` and `html`: the two page formats, bytes in, links out;
//! - `find_links`: find-links folders and pages;
//! - `metadata`: a wheel's core metadata from the cheapest place.
//!
//! Pages are cached in memory for the run (the resolver asks for a
//! project many times, from several threads: [`Index`] is `Sync`), and,
//! when the index has a store ([`Index::with_store`]), in the store, so
//! that an offline run can resolve from what an earlier run saw. Core
//! metadata is cached in the store by the sha256 of its file: it never
//! changes for a given file.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::PackageName;
use reqwest::Url;

use super::dist::{DistFile, DistKind, Location};
use super::download::DownloadError;
use super::metadata::{CoreMetadata, MetadataError};
use super::tags::WheelFilename;
use crate::digest::Digest;
use crate::store::{Store, StoreError};

mod auth;
mod client;
mod find_links;
#[cfg(test)]
mod fixtures;
mod freshness;
mod html;
mod json;
mod metadata;
mod page;
mod retry;
#[cfg(test)]
pub(super) mod test_server;

use auth::{redact, take_credentials, Credentials, Origin};
use find_links::{find_links_source, list_folder};
// The parsers, where the fuzz tests reach them.
#[cfg(test)]
pub(crate) use auth::parse_netrc;
#[cfg(test)]
pub(crate) use html::parse_html_page;
#[cfg(test)]
pub(crate) use json::parse_json_page;
pub(super) use retry::{check_status, with_retries, Attempt};

/// The index pip uses when told nothing else.
pub const PYPI: &str = "https://pypi.org/simple/";

/// PEP 691 content negotiation: JSON first, HTML accepted.
pub const ACCEPT: &str =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// The largest project page read (the biggest projects' JSON pages are a
/// few tens of MB).
pub const MAX_PAGE_BYTES: u64 = 256 << 20;

/// The largest core metadata read, from the index or out of a wheel.
pub const MAX_METADATA_BYTES: u64 = 16 << 20;

/// A page request stalled this long is abandoned (and retried).
const PAGE_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index URL `{url}` is not usable: {why}")]
    BadUrl { url: String, why: String },
    #[error("{var}=`{value}`: {why}")]
    BadEnv {
        var: &'static str,
        value: String,
        why: String,
    },
    #[error(
        "no index has a project named `{name}` (looked in {tried}); check its name in the \
         requirements, or add the index that has it (--extra-index-url) or a wheelhouse \
         (--find-links)"
    )]
    UnknownPackage { name: PackageName, tried: String },
    #[error("{url} answered HTTP {status}{hint}")]
    Http {
        url: String,
        status: u16,
        hint: String,
    },
    #[error("fetching {url} failed after {attempts} attempts: {why}")]
    Network {
        url: String,
        attempts: u32,
        why: String,
    },
    #[error("{url} is not a PEP 691 or PEP 503 simple index page: {why}")]
    BadPage { url: String, why: String },
    #[error("{url} is larger than {limit} bytes; refusing to read it")]
    TooLarge { url: String, limit: u64 },
    #[error(
        "offline: {url} is not in the cache; run once online to fill it, or install from a \
         wheelhouse with --no-index --find-links DIR"
    )]
    Offline { url: String },
    #[error("reading the netrc file {path}: {source}; fix it or set NETRC to another file")]
    Netrc {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading the find-links folder {path}: {source}")]
    Folder {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "`{filename}` is a source distribution: hoist installs wheels only and does not \
         build them to read their metadata; pick a version that has a wheel for the image"
    )]
    Sdist { filename: String },
    #[error("`{filename}`: {source}")]
    Metadata {
        filename: String,
        #[source]
        source: MetadataError,
    },
    #[error(
        "`{filename}` says in its metadata that it is {name} {version}; the file is \
         mislabelled (pip refuses it too), pick another version"
    )]
    MetadataMismatch {
        filename: String,
        name: String,
        version: String,
    },
    #[error(
        "the core metadata of `{filename}` from {url} has sha256 {actual}, but the index \
         says {expected}; the index or a proxy between is broken"
    )]
    MetadataHash {
        filename: String,
        url: String,
        expected: String,
        actual: String,
    },
    #[error("`{filename}` is not a readable wheel: {why}")]
    BadWheel { filename: String, why: String },
    #[error(transparent)]
    Download(#[from] DownloadError),
    #[error("storing index data: {0}")]
    Store(#[from] StoreError),
    #[error("setting up the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Where to look for files, as pip's options say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexConfig {
    /// `--index-url` / `PIP_INDEX_URL`.
    pub index_url: String,
    /// `--extra-index-url` / `PIP_EXTRA_INDEX_URL`.
    pub extra_index_urls: Vec<String>,
    /// `--find-links` / `PIP_FIND_LINKS`: folders (or `file://` URLs) and
    /// http(s) pages of links. A folder that does not exist holds nothing,
    /// as in pip.
    pub find_links: Vec<String>,
    /// `--no-index` / `PIP_NO_INDEX`: only the find-links are used.
    pub no_index: bool,
    /// No network at all: pages and files come from the store or the
    /// find-links folders.
    pub offline: bool,
    /// A netrc file (`$NETRC`, else `~/.netrc`) whose `machine` entries
    /// give credentials to hosts the URLs give none, as pip's HTTP library
    /// does. Its `default` entry is not used: it would send a password to
    /// every host.
    pub netrc: Option<PathBuf>,
    /// `--refresh`: ask for every page again, however fresh the index
    /// said the kept copy is (conditionally, when it gave validators).
    pub revalidate: bool,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            index_url: PYPI.to_owned(),
            extra_index_urls: Vec::new(),
            find_links: Vec::new(),
            no_index: false,
            offline: false,
            netrc: None,
            revalidate: false,
        }
    }
}

impl IndexConfig {
    /// The defaults with pip's environment variables applied
    /// (`PIP_INDEX_URL`, `PIP_EXTRA_INDEX_URL`, `PIP_FIND_LINKS`, the
    /// lists whitespace-separated, and `PIP_NO_INDEX`). Options from
    /// requirements files go on top of this, as they do in pip.
    pub fn from_env() -> Result<IndexConfig, IndexError> {
        IndexConfig::from_vars(|k| std::env::var(k).ok())
    }

    /// [`IndexConfig::from_env`] over any source of variables.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<IndexConfig, IndexError> {
        let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let list = |k: &str| -> Vec<String> {
            var(k)
                .map(|v| v.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let mut config = IndexConfig::default();
        if let Some(url) = var("PIP_INDEX_URL") {
            config.index_url = url.trim().to_owned();
        }
        config.extra_index_urls = list("PIP_EXTRA_INDEX_URL");
        config.find_links = list("PIP_FIND_LINKS");
        config.netrc = var("NETRC")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| Path::new(&h).join(".netrc")))
            .filter(|p| p.is_file());
        if let Some(v) = var("PIP_NO_INDEX") {
            // pip reads boolean variables with strtobool.
            config.no_index = match v.trim().to_ascii_lowercase().as_str() {
                "1" | "y" | "yes" | "t" | "true" | "on" => true,
                "0" | "n" | "no" | "f" | "false" | "off" => false,
                _ => {
                    return Err(IndexError::BadEnv {
                        var: "PIP_NO_INDEX",
                        value: v,
                        why: "expected 1, yes, true, on, or 0, no, false, off".to_owned(),
                    })
                }
            };
        }
        Ok(config)
    }
}

/// A place files are listed.
#[derive(Debug)]
enum Source {
    /// A simple index: one page per project under this URL (ends in `/`).
    Index(Url),
    /// A find-links folder.
    Folder(PathBuf),
    /// A find-links page, listing every project's files.
    Page(Url),
}

impl Source {
    fn describe(&self, name: &PackageName) -> String {
        match self {
            Source::Index(url) => format!("{url}{name}/"),
            Source::Folder(path) => path.display().to_string(),
            Source::Page(url) => url.to_string(),
        }
    }
}

/// One link of a page or folder, before its file name is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawFile {
    filename: String,
    location: Location,
    sha256: Option<String>,
    requires_python: Option<String>,
    yanked: bool,
    metadata: Option<Option<String>>,
    size: Option<u64>,
}

/// A per-key slot, filled once; its lock makes a second asker wait for
/// the first instead of fetching the same thing again.
type Slot<T> = Arc<Mutex<Option<T>>>;

/// Lists projects' files and reads their core metadata. Shared by
/// reference between threads.
pub struct Index {
    sources: Vec<Source>,
    auth: Credentials,
    offline: bool,
    /// Kept pages are asked for again even while fresh.
    revalidate: bool,
    client: reqwest::blocking::Client,
    store: Option<Store>,
    projects: Mutex<HashMap<PackageName, Slot<Arc<Vec<DistFile>>>>>,
    /// Flat listings of find-links folders and pages, by source number.
    flat: Mutex<HashMap<usize, Slot<Arc<Vec<RawFile>>>>>,
    metadata: Mutex<HashMap<String, CoreMetadata>>,
    /// One lock per file being downloaded, shared with [`super::download`].
    pub(super) in_flight: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl Index {
    pub fn new(config: IndexConfig) -> Result<Index, IndexError> {
        let mut credentials = Vec::new();
        let mut sources = Vec::new();
        for link in &config.find_links {
            sources.push(find_links_source(link, &mut credentials)?);
        }
        if !config.no_index {
            let urls = std::iter::once(&config.index_url).chain(&config.extra_index_urls);
            for url in urls {
                sources.push(Source::Index(index_url(url, &mut credentials)?));
            }
        }
        Ok(Index {
            sources,
            auth: Credentials::new(credentials, config.netrc.as_deref())?,
            offline: config.offline,
            revalidate: config.revalidate,
            client: crate::net::client().map_err(IndexError::Client)?,
            store: None,
            projects: Mutex::new(HashMap::new()),
            flat: Mutex::new(HashMap::new()),
            metadata: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    /// Keeps every page fetched in `store`, and reads them from it when
    /// offline.
    pub fn with_store(mut self, store: Store) -> Index {
        self.store = Some(store);
        self
    }

    pub fn offline(&self) -> bool {
        self.offline
    }

    /// Every file of the project in every place, merged (see the module
    /// docs). An empty list when a place has the project but no file;
    /// [`IndexError::UnknownPackage`] when no place has it.
    pub fn files(&self, name: &PackageName) -> Result<Vec<DistFile>, IndexError> {
        Ok(self.files_shared(name)?.as_ref().clone())
    }

    /// [`Index::files`], shared rather than copied: a big project lists
    /// thousands of files.
    pub fn files_shared(&self, name: &PackageName) -> Result<Arc<Vec<DistFile>>, IndexError> {
        let slot = {
            let mut map = lock(&self.projects);
            map.entry(name.clone()).or_default().clone()
        };
        let mut slot = lock(&slot);
        if let Some(files) = slot.as_ref() {
            return Ok(Arc::clone(files));
        }
        let files = Arc::new(self.fetch_files(name)?);
        *slot = Some(files.clone());
        Ok(files)
    }

    /// What the indexes said of the project last time, from the store
    /// alone and without a request: a hint for reading ahead while the
    /// real listing is asked for ([`page`]'s docs). `None` when the answer
    /// is already in memory or will cost no request (a fresh page), when
    /// the store has no page of it, or when find-links are configured
    /// (their listings are read whole anyway).
    pub fn kept_files(&self, name: &PackageName) -> Option<Vec<DistFile>> {
        if self.offline || self.store.is_none() {
            return None;
        }
        // A listing in memory needs no hint; one being fetched (its slot
        // locked) is what the hint is for.
        let slot = lock(&self.projects).get(name).cloned();
        if slot.is_some_and(|slot| slot.try_lock().is_ok_and(|s| s.is_some())) {
            return None;
        }
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for source in &self.sources {
            let Source::Index(base) = source else {
                return None;
            };
            let url = base.join(&format!("{name}/")).ok()?;
            for raw in self.kept_page(&url)? {
                if let Some(file) = to_dist(&raw, name) {
                    if seen.insert(file.filename.clone()) {
                        out.push(file);
                    }
                }
            }
        }
        Some(out)
    }

    fn fetch_files(&self, name: &PackageName) -> Result<Vec<DistFile>, IndexError> {
        let mut out: Vec<DistFile> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut found = false;
        for (i, source) in self.sources.iter().enumerate() {
            let raws: Arc<Vec<RawFile>> = match source {
                Source::Index(base) => {
                    let url = base
                        .join(&format!("{name}/"))
                        .map_err(|e| IndexError::BadUrl {
                            url: base.to_string(),
                            why: e.to_string(),
                        })?;
                    match self.page(&url)? {
                        Some(raws) => {
                            found = true;
                            Arc::new(raws)
                        }
                        None => continue,
                    }
                }
                Source::Folder(_) | Source::Page(_) => self.flat(i)?,
            };
            for raw in raws.iter() {
                let Some(file) = to_dist(raw, name) else {
                    continue;
                };
                found |= !matches!(source, Source::Index(_));
                if seen.insert(file.filename.clone()) {
                    out.push(file);
                }
            }
        }
        if !found {
            let tried: Vec<String> = self.sources.iter().map(|s| s.describe(name)).collect();
            return Err(IndexError::UnknownPackage {
                name: name.clone(),
                tried: if tried.is_empty() {
                    "nowhere: --no-index without --find-links".to_owned()
                } else {
                    tried.join(", ")
                },
            });
        }
        Ok(out)
    }

    /// The links of find-links source `i`, read once.
    fn flat(&self, i: usize) -> Result<Arc<Vec<RawFile>>, IndexError> {
        let slot = lock(&self.flat).entry(i).or_default().clone();
        let mut slot = lock(&slot);
        if let Some(raws) = slot.as_ref() {
            return Ok(raws.clone());
        }
        let raws = match &self.sources[i] {
            Source::Folder(path) => list_folder(path)?,
            Source::Page(url) => self.page(url)?.unwrap_or_default(),
            Source::Index(_) => Vec::new(),
        };
        let raws = Arc::new(raws);
        *slot = Some(raws.clone());
        Ok(raws)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An index URL with its credentials taken out (and recorded), ending in
/// `/` so that project names join under it.
fn index_url(raw: &str, credentials: &mut Vec<(Origin, String)>) -> Result<Url, IndexError> {
    let bad = |why: &str| IndexError::BadUrl {
        url: redact(raw),
        why: why.to_owned(),
    };
    let mut url = Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(
            "only http(s) indexes are read; for a local folder of wheels use --find-links",
        ));
    }
    take_credentials(&mut url, credentials);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url.set_fragment(None);
    url.set_query(None);
    Ok(url)
}

/// A link as a file of `project`, or `None` when its name is not one of
/// the project's wheels or source archives, or its hash is malformed.
fn to_dist(raw: &RawFile, project: &PackageName) -> Option<DistFile> {
    let kind = dist_kind(&raw.filename, project)?;
    let sha256 = match &raw.sha256 {
        Some(h) => Some(sha256_digest(h)?.hex().to_owned()),
        None => None,
    };
    let metadata = match &raw.metadata {
        Some(Some(h)) => Some(sha256_digest(h).map(|d| d.hex().to_owned())),
        Some(None) => Some(None),
        None => None,
    };
    Some(DistFile {
        filename: raw.filename.clone(),
        kind,
        location: raw.location.clone(),
        sha256,
        // pip ignores a Requires-Python it cannot read.
        requires_python: raw
            .requires_python
            .as_deref()
            .and_then(|s| VersionSpecifiers::from_str(s.trim()).ok()),
        yanked: raw.yanked,
        metadata,
        size: raw.size,
    })
}

/// `sha256:<hex>` from a hex string in any case.
pub(super) fn sha256_digest(hex: &str) -> Option<Digest> {
    Digest::parse(&format!("sha256:{}", hex.trim().to_ascii_lowercase())).ok()
}

/// Source archive extensions pip accepts.
const SDIST_EXTENSIONS: &[&str] = &[".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip"];

/// What a file name says, if it is one of `project`'s.
fn dist_kind(filename: &str, project: &PackageName) -> Option<DistKind> {
    if filename.ends_with(".whl") {
        let wheel = WheelFilename::parse(filename).ok()?;
        return (wheel.name == *project).then_some(DistKind::Wheel(wheel));
    }
    let lower = filename.to_ascii_lowercase();
    let ext = SDIST_EXTENSIONS.iter().find(|e| lower.ends_with(*e))?;
    let stem = &filename[..filename.len() - ext.len()];
    // `name-version`, where the name may itself hold dashes: the version
    // starts after the first dash before which the name is the project's.
    for (i, _) in stem.match_indices('-') {
        if PackageName::from_str(&stem[..i]).is_ok_and(|n| n == *project) {
            let version = Version::from_str(&stem[i + 1..]).ok()?;
            return Some(DistKind::Sdist { version });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::fixtures::{name, raw, JSON, SIX_WHL};
    use super::test_server::{Reply, Server};
    use super::*;
    use crate::store::Store;

    #[test]
    fn file_names_table() {
        let wheel = |s: &str| DistKind::Wheel(WheelFilename::parse(s).unwrap());
        let sdist = |v: &str| DistKind::Sdist {
            version: Version::from_str(v).unwrap(),
        };
        let cases: Vec<(&str, &str, Option<DistKind>)> = vec![
            (
                "six",
                "six-1.16.0-py2.py3-none-any.whl",
                Some(wheel("six-1.16.0-py2.py3-none-any.whl")),
            ),
            ("six", "six-1.16.0.tar.gz", Some(sdist("1.16.0"))),
            (
                "python-dateutil",
                "python-dateutil-2.8.2.tar.gz",
                Some(sdist("2.8.2")),
            ),
            (
                "zope-interface",
                "zope.interface-5.0.zip",
                Some(sdist("5.0")),
            ),
            (
                "zope-interface",
                "Zope.Interface-5.0.TAR.GZ",
                Some(sdist("5.0")),
            ),
            (
                "pyyaml",
                "PyYAML-6.0.1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                Some(wheel(
                    "PyYAML-6.0.1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                )),
            ),
            ("a", "a-1.tar.bz2", Some(sdist("1"))),
            ("a", "a-1.tgz", Some(sdist("1"))),
            // Another project's files, eggs, installers, bad names.
            ("six", "sixer-1.0.tar.gz", None),
            ("six", "six-extra-1.0.tar.gz", None),
            ("six", "other-1.0-py3-none-any.whl", None),
            ("six", "six-1.16.0-py2.7.egg", None),
            ("six", "six-1.16.0.win32.exe", None),
            ("six", "six-1.16.0.whl", None),
            ("six", "six-latest.tar.gz", None),
            ("six", "six.tar.gz", None),
        ];
        for (project, filename, want) in cases {
            assert_eq!(
                dist_kind(filename, &name(project)),
                want,
                "{project}: {filename}"
            );
        }
    }

    #[test]
    fn raw_files_become_dist_files() {
        let six = name("six");
        let base = RawFile {
            sha256: Some(SIX_WHL.to_ascii_uppercase()),
            requires_python: Some(" >=3.8 ".to_owned()),
            metadata: Some(Some("AB".repeat(32))),
            ..raw(
                "six-1.16.0-py2.py3-none-any.whl",
                "https://f.example/six.whl",
            )
        };
        let d = to_dist(&base, &six).unwrap();
        assert_eq!(d.sha256.as_deref(), Some(SIX_WHL));
        assert_eq!(d.metadata, Some(Some("ab".repeat(32))));
        assert_eq!(
            d.requires_python,
            Some(VersionSpecifiers::from_str(">=3.8").unwrap())
        );
        assert_eq!(d.version(), &Version::from_str("1.16.0").unwrap());

        // A malformed stated hash makes the file unusable; a malformed
        // metadata hash only loses the hash; a bad Requires-Python is
        // ignored, as pip ignores it.
        let bad_hash = RawFile {
            sha256: Some("00".into()),
            ..base.clone()
        };
        assert_eq!(to_dist(&bad_hash, &six), None);
        let bad_meta = RawFile {
            metadata: Some(Some("zz".into())),
            ..base.clone()
        };
        assert_eq!(to_dist(&bad_meta, &six).unwrap().metadata, Some(None));
        let bad_rp = RawFile {
            requires_python: Some(">=3.x".into()),
            ..base
        };
        assert_eq!(to_dist(&bad_rp, &six).unwrap().requires_python, None);
    }

    #[test]
    fn config_from_vars_table() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let cases: &[(&[(&str, &str)], IndexConfig)] = &[
            (&[], IndexConfig::default()),
            (
                &[
                    ("PIP_INDEX_URL", " https://mirror.example/simple "),
                    (
                        "PIP_EXTRA_INDEX_URL",
                        "https://a.example/simple\n https://b.example/simple",
                    ),
                    ("PIP_FIND_LINKS", "/wheels  /more"),
                    ("PIP_NO_INDEX", "yes"),
                ],
                IndexConfig {
                    index_url: "https://mirror.example/simple".into(),
                    extra_index_urls: vec![
                        "https://a.example/simple".into(),
                        "https://b.example/simple".into(),
                    ],
                    find_links: vec!["/wheels".into(), "/more".into()],
                    no_index: true,
                    offline: false,
                    netrc: None,
                    revalidate: false,
                },
            ),
            (
                &[("PIP_INDEX_URL", ""), ("PIP_NO_INDEX", "off")],
                IndexConfig::default(),
            ),
        ];
        for (pairs, want) in cases {
            assert_eq!(
                &IndexConfig::from_vars(vars(pairs)).unwrap(),
                want,
                "{pairs:?}"
            );
        }
        let err = IndexConfig::from_vars(vars(&[("PIP_NO_INDEX", "maybe")])).unwrap_err();
        assert!(err.to_string().contains("PIP_NO_INDEX=`maybe`"), "{err}");
    }

    #[test]
    fn files_are_merged_across_places_in_order() {
        let wheelhouse = tempfile::tempdir().unwrap();
        for f in [
            "a-1.0-py3-none-any.whl",
            "a-0.9.tar.gz",
            "ab-1.0-py3-none-any.whl",
            "a-1.0.egg",
            "notes.txt",
        ] {
            std::fs::write(wheelhouse.path().join(f), b"x").unwrap();
        }
        let main = Server::start(vec![(
            "/simple/a/",
            vec![Reply::ok(
                JSON,
                r#"{"files":[{"filename":"a-1.0-py3-none-any.whl","url":"/f/a-1.0-py3-none-any.whl","hashes":{}},
                             {"filename":"a-2.0-py3-none-any.whl","url":"/f/a-2.0-py3-none-any.whl","hashes":{}}]}"#,
            )],
        )]);
        let extra = Server::start(vec![(
            "/simple/a/",
            vec![Reply::ok(
                "text/html",
                r#"<a href="a-3.0-py3-none-any.whl#sha256=8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254">x</a>"#,
            )],
        )]);
        let index = Index::new(IndexConfig {
            index_url: format!("{}/simple", main.url),
            extra_index_urls: vec![format!("{}/simple/", extra.url)],
            find_links: vec![wheelhouse.path().display().to_string()],
            ..IndexConfig::default()
        })
        .unwrap();
        let files = index.files(&name("A")).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.filename.as_str()).collect();
        assert_eq!(
            names,
            [
                "a-0.9.tar.gz",
                "a-1.0-py3-none-any.whl",
                "a-2.0-py3-none-any.whl",
                "a-3.0-py3-none-any.whl"
            ]
        );
        assert!(
            matches!(&files[1].location, Location::Path(p) if p.starts_with(wheelhouse.path()))
        );
        assert_eq!(
            files[2].location,
            Location::Url(format!("{}/f/a-2.0-py3-none-any.whl", main.url))
        );
        assert_eq!(
            files[3].location,
            Location::Url(format!("{}/simple/a/a-3.0-py3-none-any.whl", extra.url))
        );
        assert_eq!(files[3].sha256.as_deref(), Some(SIX_WHL));
        let seen = main.seen();
        assert_eq!(seen[0].header("accept"), Some(ACCEPT));

        // Asked again: answered from memory.
        index.files(&name("a")).unwrap();
        assert_eq!(main.hits("/simple/a/"), 1);
        assert_eq!(extra.hits("/simple/a/"), 1);
    }

    #[test]
    fn a_project_nobody_has_is_unknown_and_names_where_it_looked() {
        let main = Server::start(vec![(
            "/simple/empty/",
            vec![Reply::ok(JSON, r#"{"files":[]}"#)],
        )]);
        let wheelhouse = tempfile::tempdir().unwrap();
        let index = Index::new(IndexConfig {
            index_url: format!("{}/simple/", main.url),
            find_links: vec![
                wheelhouse.path().display().to_string(),
                "/no/such/folder".into(),
            ],
            ..IndexConfig::default()
        })
        .unwrap();
        // A page with no files: the project exists, with nothing to offer.
        assert_eq!(index.files(&name("empty")).unwrap(), vec![]);
        let err = index.files(&name("nope")).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, IndexError::UnknownPackage { .. }), "{msg}");
        for part in [
            format!("{}/simple/nope/", main.url),
            wheelhouse.path().display().to_string(),
            "/no/such/folder".to_owned(),
        ] {
            assert!(msg.contains(&part), "{msg} lacks {part}");
        }

        let none = Index::new(IndexConfig {
            no_index: true,
            ..IndexConfig::default()
        })
        .unwrap();
        let msg = none.files(&name("a")).unwrap_err().to_string();
        assert!(msg.contains("--no-index without --find-links"), "{msg}");
    }

    #[test]
    fn index_is_shared_between_threads() {
        fn sync<T: Sync + Send>() {}
        sync::<Index>();
    }

    /// Against pypi.org: it needs the network, and fails saying so
    /// without it (no variable turns it into a pass).
    #[test]
    fn live_pypi_six() {
        let index = Index::new(IndexConfig::default()).unwrap();
        let files = index.files(&name("six")).unwrap_or_else(|e| {
            panic!("this test needs https://pypi.org (HTTPS_PROXY is honoured): {e}")
        });
        let wheel = files
            .iter()
            .find(|f| f.filename == "six-1.16.0-py2.py3-none-any.whl")
            .expect("six 1.16.0's wheel is listed");
        assert_eq!(wheel.sha256.as_deref(), Some(SIX_WHL));
        assert!(matches!(&wheel.location, Location::Url(u) if u.starts_with("https://")));
        assert!(wheel.requires_python.is_some());
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let m = index.metadata(wheel, &store).unwrap();
        assert_eq!(
            (m.name.as_ref(), m.version.to_string().as_str()),
            ("six", "1.16.0")
        );
    }
}
