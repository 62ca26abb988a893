//! The package index client: which files a project has, and their core
//! metadata.
//!
//! pip finds files in three kinds of places, and so does this module:
//!
//! 1. a *simple index* (`--index-url`, default PyPI, and each
//!    `--extra-index-url`): one page per project at `<index>/<name>/`, the
//!    name normalised (PEP 503). The page is asked for as PEP 691 JSON,
//!    with PEP 503 HTML accepted in its place, since many private indexes
//!    serve only HTML;
//! 2. a *find-links folder* (`--find-links /wheels`): every archive in it
//!    whose name is the project's: the wheelhouse of an air-gapped host;
//! 3. a *find-links page* (`--find-links https://host/wheels.html`): one
//!    HTML page of links for all projects, fetched once.
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
//! Credentials written into an index URL (`https://user:pass@host/simple/`)
//! are taken out of it: they are sent as HTTP Basic credentials to that
//! scheme, host and port only, and never shown in messages. On a redirect
//! to another host, the HTTP client drops them.
//!
//! Pages are cached in memory for the run (the resolver asks for a
//! project many times, from several threads: [`Index`] is `Sync`), and,
//! when the index has a store ([`Index::with_store`]), in the store, so
//! that an offline run can resolve from what an earlier run saw. Core
//! metadata is cached in the store by the sha256 of its file: it never
//! changes for a given file.

use crate::error_chain;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::PackageName;
use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::dist::{DistFile, DistKind, Location};
use super::download::{self, DownloadError};
use super::metadata::{CoreMetadata, MetadataError};
use super::tags::WheelFilename;
use crate::digest::Digest;
use crate::store::{Store, StoreError};

/// The index pip uses when told nothing else.
pub const PYPI: &str = "https://pypi.org/simple/";

/// Where PyPI keeps its files (and their PEP 658 `.metadata`).
const PYPI_FILES_HOST: &str = "files.pythonhosted.org";

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

/// Store cache-entry kinds.
const PAGE_KEY_KIND: &str = "pip-page";
const METADATA_KEY_KIND: &str = "pip-metadata";

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

/// Where credentials may go: scheme, host, port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    fn of(url: &Url) -> Option<Origin> {
        Some(Origin {
            scheme: url.scheme().to_owned(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default(),
        })
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
    credentials: Vec<(Origin, String)>,
    /// (host, Authorization value) from the netrc file.
    netrc: Vec<(String, String)>,
    offline: bool,
    client: reqwest::blocking::Client,
    store: Option<Store>,
    projects: Mutex<HashMap<PackageName, Slot<Arc<Vec<DistFile>>>>>,
    /// Flat listings of find-links folders and pages, by source number.
    flat: Mutex<HashMap<usize, Slot<Arc<Vec<RawFile>>>>>,
    metadata: Mutex<HashMap<String, CoreMetadata>>,
    /// One lock per file being downloaded, shared with [`download`].
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
        let netrc = match &config.netrc {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| IndexError::Netrc {
                    path: path.clone(),
                    source,
                })?;
                parse_netrc(&text)
                    .into_iter()
                    .map(|(host, user, password)| {
                        (host.to_ascii_lowercase(), basic(&user, &password))
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        Ok(Index {
            sources,
            credentials,
            netrc,
            offline: config.offline,
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
        let slot = {
            let mut map = lock(&self.projects);
            map.entry(name.clone()).or_default().clone()
        };
        let mut slot = lock(&slot);
        if let Some(files) = slot.as_ref() {
            return Ok(files.as_ref().clone());
        }
        let files = Arc::new(self.fetch_files(name)?);
        *slot = Some(files.clone());
        Ok(files.as_ref().clone())
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

    /// A page's links; `None` when the index has no such page (404, 410).
    fn page(&self, url: &Url) -> Result<Option<Vec<RawFile>>, IndexError> {
        let Some(page) = self.fetch_page(url)? else {
            return Ok(None);
        };
        let base = Url::parse(&page.url).map_err(|e| IndexError::BadPage {
            url: url.to_string(),
            why: format!("it redirected to `{}`: {e}", page.url),
        })?;
        let json = page.content_type.contains("json")
            || (!page.content_type.contains("html")
                && page.body.trim_ascii_start().starts_with(b"{"));
        let raws = if json {
            parse_json_page(&page.body, &base).map_err(|why| IndexError::BadPage {
                url: url.to_string(),
                why,
            })?
        } else {
            parse_html_page(&page.body, &base)
        };
        Ok(Some(raws))
    }

    /// A page's bytes, from the network (then kept in the store) or, when
    /// offline, from the store.
    fn fetch_page(&self, url: &Url) -> Result<Option<StoredPage>, IndexError> {
        let key = Digest::of(url.as_str().as_bytes()).hex().to_owned();
        if self.offline {
            return match self.stored_page(&key)? {
                Some(page) if page.status == 200 => Ok(Some(page)),
                Some(_) => Ok(None),
                None => Err(IndexError::Offline {
                    url: url.to_string(),
                }),
            };
        }
        let got = self.get(url, ACCEPT, MAX_PAGE_BYTES, Some(PAGE_TIMEOUT))?;
        let page = match got {
            Some(g) => StoredPage {
                status: 200,
                url: g.url,
                content_type: g.content_type,
                body: g.body,
            },
            None => StoredPage {
                status: 404,
                url: url.to_string(),
                content_type: String::new(),
                body: Vec::new(),
            },
        };
        if let Some(store) = &self.store {
            let (digest, _) = store.put_bytes(&page.body)?;
            let entry = PageEntry {
                status: page.status,
                url: page.url.clone(),
                content_type: page.content_type.clone(),
                body: digest,
            };
            if let Ok(json) = serde_json::to_vec(&entry) {
                store.put_key(PAGE_KEY_KIND, &key, &json)?;
            }
        }
        Ok((page.status == 200).then_some(page))
    }

    fn stored_page(&self, key: &str) -> Result<Option<StoredPage>, IndexError> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let Some(bytes) = store.get_key(PAGE_KEY_KIND, key)? else {
            return Ok(None);
        };
        // An unreadable entry, or one whose blob is gone, is a miss.
        let Ok(entry) = serde_json::from_slice::<PageEntry>(&bytes) else {
            return Ok(None);
        };
        let body = match store.read_blob(&entry.body) {
            Ok(b) => b,
            Err(StoreError::Missing(..)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(Some(StoredPage {
            status: entry.status,
            url: entry.url,
            content_type: entry.content_type,
            body,
        }))
    }

    /// The core metadata of a wheel, checked against its file name: from
    /// memory, the store, the wheel itself when it is local or stored, the
    /// index's PEP 658 `.metadata` file, or else by downloading the wheel
    /// into the store.
    pub fn metadata(&self, file: &DistFile, store: &Store) -> Result<CoreMetadata, IndexError> {
        let DistKind::Wheel(wheel) = &file.kind else {
            return Err(IndexError::Sdist {
                filename: file.filename.clone(),
            });
        };
        let memo = format!("{}#{:?}", file.filename, file.location);
        if let Some(m) = lock(&self.metadata).get(&memo) {
            return Ok(m.clone());
        }
        let bytes = self.metadata_bytes(file, wheel, store)?;
        let m = CoreMetadata::parse(&bytes).map_err(|source| IndexError::Metadata {
            filename: file.filename.clone(),
            source,
        })?;
        if m.name != wheel.name || m.version != wheel.version {
            return Err(IndexError::MetadataMismatch {
                filename: file.filename.clone(),
                name: m.name.to_string(),
                version: m.version.to_string(),
            });
        }
        if let Some(hex) = &file.sha256 {
            if store.get_key(METADATA_KEY_KIND, hex)?.is_none() {
                store.put_key(METADATA_KEY_KIND, hex, header_part(&bytes))?;
            }
        }
        lock(&self.metadata).insert(memo, m.clone());
        Ok(m)
    }

    fn metadata_bytes(
        &self,
        file: &DistFile,
        wheel: &WheelFilename,
        store: &Store,
    ) -> Result<Vec<u8>, IndexError> {
        let digest = match &file.sha256 {
            Some(hex) => Some(sha256_digest(hex).ok_or_else(|| IndexError::BadWheel {
                filename: file.filename.clone(),
                why: format!("its stated sha256 `{hex}` is not 64 hex digits"),
            })?),
            None => None,
        };
        if let Some(d) = &digest {
            if let Some(bytes) = store.get_key(METADATA_KEY_KIND, d.hex())? {
                return Ok(bytes);
            }
            if store.has(d) {
                return read_wheel_metadata(store.open_blob(d)?, wheel, &file.filename);
            }
        }
        let url = match &file.location {
            Location::Path(path) => {
                let f = fs_err::File::open(path).map_err(|e| IndexError::BadWheel {
                    filename: file.filename.clone(),
                    why: e.to_string(),
                })?;
                return read_wheel_metadata(f, wheel, &file.filename);
            }
            Location::Url(url) => url,
        };
        // PyPI serves `.metadata` for every wheel, but a proxy in the way
        // may drop the `core-metadata` key from its pages (this network's
        // does): ask PyPI's file host anyway, and download the wheel only
        // when it answers 404. The wheel is verified by its own hash
        // later; the metadata's name and version are checked below.
        let expected = file.metadata.clone().or_else(|| {
            Url::parse(url)
                .ok()
                .filter(|u| u.host_str() == Some(PYPI_FILES_HOST))
                .map(|_| None)
        });
        if let (Some(expected), false) = (expected, self.offline) {
            if let Some(bytes) = self.pep658(file, url, expected.as_deref())? {
                return Ok(bytes);
            }
        }
        let digest = download::download(self, store, file, &[], &|_| {})?;
        read_wheel_metadata(store.open_blob(&digest)?, wheel, &file.filename)
    }

    /// `<url>.metadata`, verified; `None` when the index does not have it
    /// after all.
    fn pep658(
        &self,
        file: &DistFile,
        url: &str,
        expected: Option<&str>,
    ) -> Result<Option<Vec<u8>>, IndexError> {
        // PEP 658: the file's URL with `.metadata` appended to its path
        // (a query, if any, stays after it).
        let mut parsed = Url::parse(url).map_err(|e| IndexError::BadUrl {
            url: url.to_owned(),
            why: e.to_string(),
        })?;
        let path = format!("{}.metadata", parsed.path());
        parsed.set_path(&path);
        let meta_url = parsed.to_string();
        let Some(got) = self.get(&parsed, "*/*", MAX_METADATA_BYTES, Some(PAGE_TIMEOUT))? else {
            return Ok(None);
        };
        if let Some(expected) = expected {
            let actual = Digest::of(&got.body);
            if actual.hex() != expected.to_ascii_lowercase() {
                return Err(IndexError::MetadataHash {
                    filename: file.filename.clone(),
                    url: meta_url,
                    expected: expected.to_owned(),
                    actual: actual.hex().to_owned(),
                });
            }
        }
        Ok(Some(got.body))
    }

    /// Reads the core metadata of several wheels at once (up to
    /// [`download::PARALLEL`] at a time), so that the resolver's later
    /// [`Index::metadata`] calls are answered from memory. Failures are
    /// left for those calls to report.
    pub fn prefetch(&self, files: &[DistFile], store: &Store) {
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..download::PARALLEL.min(files.len()) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    let _ = self.metadata(file, store);
                });
            }
        });
    }

    /// A request with the credentials its origin has, if any.
    pub(super) fn request(&self, url: &Url) -> (reqwest::blocking::RequestBuilder, bool) {
        let mut request = self.client.get(url.clone());
        let origin = Origin::of(url);
        let from_url = origin
            .as_ref()
            .and_then(|o| self.credentials.iter().find(|(origin, _)| origin == o))
            .map(|(_, header)| header);
        let auth = from_url.or_else(|| {
            let host = origin?.host;
            self.netrc
                .iter()
                .find(|(h, _)| *h == host)
                .map(|(_, header)| header)
        });
        if let Some(header) = auth {
            request = request.header(reqwest::header::AUTHORIZATION, header);
        }
        (request, auth.is_some())
    }

    /// GETs a small document whole, with retries; `None` on 404 or 410.
    fn get(
        &self,
        url: &Url,
        accept: &str,
        limit: u64,
        timeout: Option<Duration>,
    ) -> Result<Option<Got>, IndexError> {
        with_retries(
            || {
                let (mut request, authed) = self.request(url);
                request = request.header(reqwest::header::ACCEPT, accept);
                if let Some(t) = timeout {
                    request = request.timeout(t);
                }
                let response = request.send().map_err(|e| Attempt::Retry {
                    why: error_chain(&e),
                    after: None,
                })?;
                let status = response.status().as_u16();
                if matches!(status, 404 | 410) {
                    return Ok(None);
                }
                check_status(&response, authed).map_err(|a| {
                    a.map(|(status, hint)| IndexError::Http {
                        url: url.to_string(),
                        status,
                        hint,
                    })
                })?;
                let final_url = response.url().to_string();
                let content_type = response
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let mut body = Vec::new();
                response
                    .take(limit + 1)
                    .read_to_end(&mut body)
                    .map_err(|e| Attempt::Retry {
                        why: error_chain(&e),
                        after: None,
                    })?;
                if body.len() as u64 > limit {
                    return Err(Attempt::Fatal(IndexError::TooLarge {
                        url: url.to_string(),
                        limit,
                    }));
                }
                Ok(Some(Got {
                    url: final_url,
                    content_type,
                    body,
                }))
            },
            |_, _| {},
            |attempts, why| IndexError::Network {
                url: url.to_string(),
                attempts,
                why,
            },
        )
    }
}

/// A document fetched whole.
struct Got {
    /// After redirects: relative links resolve against it.
    url: String,
    content_type: String,
    body: Vec<u8>,
}

/// A page as kept in the store.
struct StoredPage {
    status: u16,
    url: String,
    content_type: String,
    body: Vec<u8>,
}

/// The cache entry of a page: its body is a blob.
#[derive(Serialize, Deserialize)]
struct PageEntry {
    status: u16,
    url: String,
    content_type: String,
    body: Digest,
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

fn find_links_source(
    raw: &str,
    credentials: &mut Vec<(Origin, String)>,
) -> Result<Source, IndexError> {
    let raw = raw.trim();
    let bad = |why: String| IndexError::BadUrl {
        url: redact(raw),
        why,
    };
    match Url::parse(raw) {
        Ok(url) if url.scheme() == "file" => url
            .to_file_path()
            .map(Source::Folder)
            .map_err(|()| bad("not a local path".to_owned())),
        Ok(mut url) if matches!(url.scheme(), "http" | "https") => {
            take_credentials(&mut url, credentials);
            url.set_fragment(None);
            Ok(Source::Page(url))
        }
        // A Windows drive (`c:`) or any other single-letter "scheme" is no
        // URL; anything else unknown is a mistake.
        Ok(url) if url.scheme().len() > 1 => {
            Err(bad(format!("`{}:` links are not supported", url.scheme())))
        }
        _ => Ok(Source::Folder(PathBuf::from(raw))),
    }
}

/// Moves `user:password@` out of a URL into the credentials list.
fn take_credentials(url: &mut Url, credentials: &mut Vec<(Origin, String)>) {
    if url.username().is_empty() && url.password().is_none() {
        return;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = decode(url.username());
    let password = url.password().map(decode).unwrap_or_default();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if let Some(origin) = Origin::of(url) {
        if !credentials.iter().any(|(o, _)| *o == origin) {
            credentials.push((origin, basic(&user, &password)));
        }
    }
}

/// An HTTP Basic `Authorization` value.
fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// The `machine` entries of a netrc file: (host, login, password). Tokens
/// are separated by white space; `#` starts a comment; `macdef` bodies
/// (up to an empty line) and `default` entries are skipped.
pub(crate) fn parse_netrc(text: &str) -> Vec<(String, String, String)> {
    let mut tokens = Vec::new();
    let mut in_macro = false;
    for line in text.lines() {
        if in_macro {
            in_macro = !line.trim().is_empty();
            continue;
        }
        let line = line.split_once('#').map_or(line, |(before, _)| before);
        for w in line.split_whitespace() {
            if w == "macdef" {
                in_macro = true;
                break;
            }
            tokens.push(w);
        }
    }
    let mut out = Vec::new();
    let mut current: Option<(Option<&str>, &str, &str)> = None;
    let flush = |c: Option<(Option<&str>, &str, &str)>, out: &mut Vec<(String, String, String)>| {
        if let Some((Some(host), login, password)) = c {
            out.push((host.to_owned(), login.to_owned(), password.to_owned()));
        }
    };
    let mut it = tokens.into_iter();
    while let Some(t) = it.next() {
        match t {
            "machine" => {
                flush(current.take(), &mut out);
                current = it.next().map(|h| (Some(h), "", ""));
            }
            "default" => {
                flush(current.take(), &mut out);
                current = Some((None, "", ""));
            }
            "login" | "password" | "account" => {
                let value = it.next().unwrap_or_default();
                if let Some(c) = current.as_mut() {
                    match t {
                        "login" => c.1 = value,
                        "password" => c.2 = value,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    flush(current, &mut out);
    out
}

/// A URL as it may be shown: without its user and password (a token is
/// often written as the user).
fn redact(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) if matches!(url.scheme(), "http" | "https") => {
            if !url.username().is_empty() || url.password().is_some() {
                let _ = url.set_password(None);
                let _ = url.set_username("****");
            }
            url.to_string()
        }
        // Anything else: whatever sits before an `@` may be a secret.
        _ => match raw.rsplit_once('@') {
            Some((_, rest)) => format!("****@{rest}"),
            None => raw.to_owned(),
        },
    }
}

/// The archives of a find-links folder, in name order. A folder that does
/// not exist holds nothing (pip ignores it too).
fn list_folder(path: &Path) -> Result<Vec<RawFile>, IndexError> {
    let folder_err = |source| IndexError::Folder {
        path: path.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(folder_err(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(folder_err)?;
        let Ok(filename) = entry.file_name().into_string() else {
            continue;
        };
        let meta = match std::fs::metadata(entry.path()) {
            Ok(m) if m.is_file() => m,
            _ => continue,
        };
        let location = std::path::absolute(entry.path()).unwrap_or_else(|_| entry.path());
        out.push(RawFile {
            filename,
            location: Location::Path(location),
            sha256: None,
            requires_python: None,
            yanked: false,
            metadata: None,
            size: Some(meta.len()),
        });
    }
    out.sort_by(|a, b| a.filename.cmp(&b.filename));
    Ok(out)
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

/// The headers of a METADATA file, without the long description after
/// them: what is kept in the store.
fn header_part(bytes: &[u8]) -> &[u8] {
    let mut at = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if line == b"\n" || line == b"\r\n" {
            break;
        }
        at += line.len();
    }
    &bytes[..at]
}

/// A wheel's `*.dist-info/METADATA` bytes.
fn read_wheel_metadata(
    reader: impl Read + Seek,
    wheel: &WheelFilename,
    filename: &str,
) -> Result<Vec<u8>, IndexError> {
    let bad = |why: String| IndexError::BadWheel {
        filename: filename.to_owned(),
        why,
    };
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| bad(e.to_string()))?;
    let candidates: Vec<String> = zip
        .file_names()
        .filter(|n| {
            n.strip_suffix("/METADATA")
                .is_some_and(|dir| !dir.contains('/') && dir.ends_with(".dist-info"))
        })
        .map(str::to_owned)
        .collect();
    // One .dist-info folder is the rule; if there are several, the one
    // named for the project (`name-version.dist-info`) is the wheel's.
    let name = match candidates.as_slice() {
        [one] => one.clone(),
        [] => return Err(bad("it has no *.dist-info/METADATA".to_owned())),
        several => several
            .iter()
            .find(|n| {
                n.split_once('-')
                    .and_then(|(dist, _)| PackageName::from_str(dist).ok())
                    .is_some_and(|d| d == wheel.name)
            })
            .cloned()
            .ok_or_else(|| {
                bad(format!(
                    "it has several metadata files: {}",
                    several.join(", ")
                ))
            })?,
    };
    let entry = zip
        .by_name(&name)
        .map_err(|e| bad(format!("{name}: {e}")))?;
    let mut bytes = Vec::new();
    entry
        .take(MAX_METADATA_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("{name}: {e}")))?;
    if bytes.len() as u64 > MAX_METADATA_BYTES {
        return Err(bad(format!(
            "{name} is larger than {MAX_METADATA_BYTES} bytes"
        )));
    }
    Ok(bytes)
}

// ---------------------------------------------------------------------------
// Page parsers: bytes in, links out.

/// PEP 691 JSON.
#[derive(Deserialize)]
struct JsonPage {
    #[serde(default)]
    meta: Option<JsonMeta>,
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonMeta {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
    #[serde(default, rename = "requires-python")]
    requires_python: Option<String>,
    #[serde(default)]
    yanked: Option<BoolOr<String>>,
    /// PEP 714's name, preferred over the older one.
    #[serde(default, rename = "core-metadata")]
    core_metadata: Option<BoolOr<BTreeMap<String, String>>>,
    #[serde(default, rename = "dist-info-metadata")]
    dist_info_metadata: Option<BoolOr<BTreeMap<String, String>>>,
    #[serde(default)]
    size: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BoolOr<T> {
    Bool(bool),
    Other(T),
}

pub(crate) fn parse_json_page(bytes: &[u8], page_url: &Url) -> Result<Vec<RawFile>, String> {
    let page: JsonPage = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    // PEP 691: a client must refuse a major API version it does not know.
    if let Some(v) = page.meta.and_then(|m| m.api_version) {
        if v.split('.').next() != Some("1") {
            return Err(format!(
                "API version {v} is not one hoist reads (1.x); a newer hoist may read it"
            ));
        }
    }
    let mut out = Vec::new();
    for f in page.files {
        let Ok(mut url) = page_url.join(&f.url) else {
            continue;
        };
        url.set_fragment(None);
        let metadata = match f.core_metadata.or(f.dist_info_metadata) {
            None | Some(BoolOr::Bool(false)) => None,
            Some(BoolOr::Bool(true)) => Some(None),
            Some(BoolOr::Other(hashes)) => Some(hashes.get("sha256").cloned()),
        };
        out.push(RawFile {
            filename: f.filename,
            location: Location::Url(url.to_string()),
            sha256: f.hashes.get("sha256").cloned(),
            requires_python: f.requires_python,
            // PEP 691: a string, any string, is a reason, so yanked.
            yanked: match f.yanked {
                None | Some(BoolOr::Bool(false)) => false,
                Some(BoolOr::Bool(true)) | Some(BoolOr::Other(_)) => true,
            },
            metadata,
            size: f.size,
        });
    }
    Ok(out)
}

/// PEP 503 HTML: every `<a href>`, honouring `<base href>`; comments are
/// skipped. HTML is read leniently, as pip reads it: what is not a link is
/// ignored, and a page never fails to parse.
pub(crate) fn parse_html_page(bytes: &[u8], page_url: &Url) -> Vec<RawFile> {
    let text = String::from_utf8_lossy(bytes);
    let mut base = page_url.clone();
    let mut out = Vec::new();
    let mut rest: &str = &text;
    while let Some(at) = rest.find('<') {
        rest = &rest[at..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let (tag, attrs, after) = read_tag(&rest[1..]);
        rest = after;
        let href = attrs
            .iter()
            .find(|(k, _)| k == "href")
            .map(|(_, v)| v.as_str());
        if tag.eq_ignore_ascii_case("base") {
            if let Some(b) = href.and_then(|h| page_url.join(h).ok()) {
                base = b;
            }
            continue;
        }
        if !tag.eq_ignore_ascii_case("a") {
            continue;
        }
        let Some(mut url) = href.and_then(|h| base.join(h).ok()) else {
            continue;
        };
        let sha256 = url.fragment().and_then(|f| {
            f.split('&')
                .find_map(|kv| kv.strip_prefix("sha256=").map(str::to_owned))
        });
        url.set_fragment(None);
        let Some(filename) = url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        let attr = |name: &str| {
            attrs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let metadata = attr("data-core-metadata")
            .or_else(|| attr("data-dist-info-metadata"))
            .and_then(|v| match v.trim() {
                "true" => Some(None),
                other => other
                    .split_once('=')
                    .map(|(alg, hex)| (alg == "sha256").then(|| hex.to_owned())),
            });
        out.push(RawFile {
            filename,
            location: Location::Url(url.to_string()),
            sha256,
            requires_python: attr("data-requires-python"),
            yanked: attr("data-yanked").is_some(),
            metadata,
            size: None,
        });
    }
    out
}

/// Reads a tag after its `<`: its name, its attributes (names lower case,
/// values with character references decoded) and what follows its `>`.
fn read_tag(s: &str) -> (&str, Vec<(String, String)>, &str) {
    let name_end = s
        .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
        .unwrap_or(s.len());
    let name = &s[..name_end];
    let mut rest = &s[name_end..];
    let mut attrs = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if rest.is_empty() {
            return (name, attrs, rest);
        }
        if let Some(after) = rest.strip_prefix('>') {
            return (name, attrs, after);
        }
        let key_end = rest
            .find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let key = rest[..key_end].to_ascii_lowercase();
        rest = rest[key_end..].trim_start();
        let mut value = String::new();
        if let Some(after_eq) = rest.strip_prefix('=') {
            let v = after_eq.trim_start();
            let (raw, after) = match v.chars().next() {
                Some(q @ ('"' | '\'')) => match v[1..].find(q) {
                    Some(end) => (&v[1..1 + end], &v[end + 2..]),
                    None => (&v[1..], ""),
                },
                _ => {
                    let end = v
                        .find(|c: char| c.is_ascii_whitespace() || c == '>')
                        .unwrap_or(v.len());
                    (&v[..end], &v[end..])
                }
            };
            value = decode_entities(raw);
            rest = after;
        }
        if key.is_empty() {
            // A stray character: skip it so the loop moves on.
            let skip = rest.chars().next().map_or(0, char::len_utf8);
            rest = &rest[skip..];
            continue;
        }
        attrs.push((key, value));
    }
}

/// HTML character references: the named ones an index writes, and
/// numeric ones. Others are left as they are.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.get(1..).and_then(|r| {
            let end = r.find(';').filter(|&e| e <= 10)?;
            let name = &r[..end];
            let c = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let number = name.strip_prefix('#')?;
                    let code = match number.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => number.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, end + 2))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------
// Retries, shared with the downloader.

pub(super) use crate::net::retry::Attempt;

/// Runs `attempt` as hoist's one retry policy says ([`crate::net::retry`]);
/// `on_retry` hears of each retry, `give_up` makes the final error.
pub(super) fn with_retries<T, E>(
    attempt: impl FnMut() -> Result<T, Attempt<E>>,
    on_retry: impl Fn(u32, &str),
    give_up: impl FnOnce(u32, String) -> E,
) -> Result<T, E> {
    crate::net::RetryPolicy::default().run(attempt, |n, why, _| on_retry(n, why), give_up)
}

/// Sorts a response's status: success passes; 408, 429 and the 5xx that
/// mean "not now" are retried (honouring `Retry-After`); anything else is
/// final, as (status, hint).
pub(super) fn check_status(
    response: &reqwest::blocking::Response,
    authed: bool,
) -> Result<(), Attempt<(u16, String)>> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    crate::net::retry::retry_on_status(response)?;
    let code = status.as_u16();
    let hint = match code {
        401 | 403 if authed => ": the credentials in the index URL were refused".to_owned(),
        401 | 403 => ": the index wants credentials; put them in the index URL \
                      (https://USER:TOKEN@host/simple/)"
            .to_owned(),
        _ => String::new(),
    };
    Err(Attempt::Fatal((code, hint)))
}

/// A small HTTP server for tests: canned replies by path, every request
/// recorded. Shared with the downloader's tests.
#[cfg(test)]
pub(super) mod test_server {
    use std::collections::{HashMap, VecDeque};
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Clone)]
    pub struct Reply {
        pub status: u16,
        pub content_type: String,
        pub body: Vec<u8>,
    }

    impl Reply {
        pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
            Reply {
                status: 200,
                content_type: content_type.to_owned(),
                body: body.into(),
            }
        }

        pub fn status(status: u16) -> Reply {
            Reply {
                status,
                content_type: "text/plain".to_owned(),
                body: Vec::new(),
            }
        }
    }

    /// One request as the server saw it; header names in lower case.
    #[derive(Debug, Clone)]
    pub struct Seen {
        pub path: String,
        pub headers: Vec<(String, String)>,
    }

    impl Seen {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }
    }

    pub struct Server {
        /// `http://127.0.0.1:PORT`, no trailing slash.
        pub url: String,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl Server {
        /// Serves each path's replies in turn, repeating the last; 404 for
        /// unknown paths.
        pub fn start(routes: Vec<(&str, Vec<Reply>)>) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let mut routes: HashMap<String, VecDeque<Reply>> = routes
                .into_iter()
                .map(|(p, r)| (p.to_owned(), r.into()))
                .collect();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let log = seen.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut first = String::new();
                    if reader.read_line(&mut first).is_err() {
                        continue;
                    }
                    let path = first.split(' ').nth(1).unwrap_or("").to_owned();
                    let mut headers = Vec::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                        }
                    }
                    log.lock().unwrap().push(Seen {
                        path: path.clone(),
                        headers,
                    });
                    let reply = match routes.get_mut(&path) {
                        Some(q) if q.len() > 1 => q.pop_front().unwrap(),
                        Some(q) => q.front().cloned().unwrap(),
                        None => Reply::status(404),
                    };
                    let head = format!(
                        "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        reply.status,
                        reply.content_type,
                        reply.body.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&reply.body);
                }
            });
            Server { url, seen }
        }

        pub fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }

        pub fn hits(&self, path: &str) -> usize {
            self.seen().iter().filter(|s| s.path == path).count()
        }
    }

    /// A zip holding the given files, as a wheel is.
    pub fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in files {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            w.start_file(*name, options).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::test_server::{zip_of, Reply, Server};
    use super::*;

    const SIX_WHL: &str = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254";

    fn name(s: &str) -> PackageName {
        PackageName::from_str(s).unwrap()
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    /// A RawFile with only the fields a case sets.
    fn raw(filename: &str, location: &str) -> RawFile {
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

    #[test]
    fn json_pages_table() {
        let page = url("https://idx.example/simple/six/");
        let cases: Vec<(&str, &str, Vec<RawFile>)> = vec![
            (
                "PyPI's shape: absolute URL, hashes, requires-python, size",
                r#"{"meta":{"api-version":"1.1"},"name":"six","files":[{"filename":"six-1.16.0-py2.py3-none-any.whl","hashes":{"sha256":"8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"},"requires-python":">=2.7, !=3.0.*","size":11053,"upload-time":"2021-05-05T14:18:17Z","url":"https://files.example/six-1.16.0-py2.py3-none-any.whl","yanked":false}]}"#,
                vec![RawFile {
                    sha256: Some(SIX_WHL.to_owned()),
                    requires_python: Some(">=2.7, !=3.0.*".to_owned()),
                    size: Some(11053),
                    ..raw(
                        "six-1.16.0-py2.py3-none-any.whl",
                        "https://files.example/six-1.16.0-py2.py3-none-any.whl",
                    )
                }],
            ),
            (
                "relative URLs, fragments dropped; yanked with a reason; core-metadata forms",
                r#"{"files":[
                    {"filename":"a-1-py3-none-any.whl","url":"../../files/a-1-py3-none-any.whl#sha256=00","hashes":{"md5":"x"},"yanked":"broken","core-metadata":{"sha256":"ab"}},
                    {"filename":"a-2-py3-none-any.whl","url":"a-2-py3-none-any.whl","hashes":{},"yanked":true,"core-metadata":true},
                    {"filename":"a-3-py3-none-any.whl","url":"/a-3-py3-none-any.whl","dist-info-metadata":{"sha256":"cd"}},
                    {"filename":"a-4-py3-none-any.whl","url":"a-4-py3-none-any.whl","core-metadata":false,"dist-info-metadata":true},
                    {"filename":"a-5-py3-none-any.whl","url":"a-5-py3-none-any.whl","core-metadata":{"md5":"x"}}
                ]}"#,
                vec![
                    RawFile {
                        yanked: true,
                        metadata: Some(Some("ab".to_owned())),
                        ..raw(
                            "a-1-py3-none-any.whl",
                            "https://idx.example/files/a-1-py3-none-any.whl",
                        )
                    },
                    RawFile {
                        yanked: true,
                        metadata: Some(None),
                        ..raw(
                            "a-2-py3-none-any.whl",
                            "https://idx.example/simple/six/a-2-py3-none-any.whl",
                        )
                    },
                    RawFile {
                        metadata: Some(Some("cd".to_owned())),
                        ..raw(
                            "a-3-py3-none-any.whl",
                            "https://idx.example/a-3-py3-none-any.whl",
                        )
                    },
                    // core-metadata wins over dist-info-metadata, even false.
                    raw(
                        "a-4-py3-none-any.whl",
                        "https://idx.example/simple/six/a-4-py3-none-any.whl",
                    ),
                    RawFile {
                        metadata: Some(None),
                        ..raw(
                            "a-5-py3-none-any.whl",
                            "https://idx.example/simple/six/a-5-py3-none-any.whl",
                        )
                    },
                ],
            ),
            (
                "no files",
                r#"{"meta":{"api-version":"1.0"},"files":[]}"#,
                vec![],
            ),
        ];
        for (what, json, want) in cases {
            let got =
                parse_json_page(json.as_bytes(), &page).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(got, want, "{what}");
        }

        for (what, json) in [
            (
                "API version 2",
                r#"{"meta":{"api-version":"2.0"},"files":[]}"#,
            ),
            ("not JSON", "<html></html>"),
            ("no files", r#"{"name":"six"}"#),
            (
                "a file without url",
                r#"{"files":[{"filename":"a-1.tar.gz"}]}"#,
            ),
        ] {
            assert!(parse_json_page(json.as_bytes(), &page).is_err(), "{what}");
        }
    }

    #[test]
    fn html_pages_table() {
        let page = url("https://idx.example/simple/six/");
        let cases: Vec<(&str, &str, Vec<RawFile>)> = vec![
            (
                "PyPI's shape: hash fragment, escaped requires-python",
                r#"<!DOCTYPE html><html><body><h1>Links for six</h1>
<a href="https://files.example/p/six-1.16.0-py2.py3-none-any.whl#sha256=8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254" data-requires-python="&gt;=2.7, !=3.0.*">six-1.16.0-py2.py3-none-any.whl</a><br/>
</body></html>"#,
                vec![RawFile {
                    sha256: Some(SIX_WHL.to_owned()),
                    requires_python: Some(">=2.7, !=3.0.*".to_owned()),
                    ..raw(
                        "six-1.16.0-py2.py3-none-any.whl",
                        "https://files.example/p/six-1.16.0-py2.py3-none-any.whl",
                    )
                }],
            ),
            (
                "relative links, data attributes, odd quoting and case, comments",
                r#"<html><!-- <a href="hidden-1.tar.gz">x</a> -->
<A HREF='../../f/a-1.tar.gz#md5=00&amp;sha256=ABCD' data-yanked="">a</A>
<a data-core-metadata="true" href=a-2.tar.gz>a</a>
<a href="a-3.tar.gz" data-dist-info-metadata="sha256=ef" data-requires-python="&lt;4&#44;&#x3e;=3">a</a>
<a href="a-4.tar.gz" data-core-metadata="sha512=00" data-yanked="reason &amp; more">a</a>
<a href="torch-2.0.0%2Bcpu-cp311-cp311-linux_x86_64.whl">t</a>
<a name="no-href">x</a><a href="">empty</a>
</html>"#,
                vec![
                    RawFile {
                        sha256: Some("ABCD".to_owned()),
                        yanked: true,
                        ..raw("a-1.tar.gz", "https://idx.example/f/a-1.tar.gz")
                    },
                    RawFile {
                        metadata: Some(None),
                        ..raw("a-2.tar.gz", "https://idx.example/simple/six/a-2.tar.gz")
                    },
                    RawFile {
                        metadata: Some(Some("ef".to_owned())),
                        requires_python: Some("<4,>=3".to_owned()),
                        ..raw("a-3.tar.gz", "https://idx.example/simple/six/a-3.tar.gz")
                    },
                    RawFile {
                        metadata: Some(None),
                        yanked: true,
                        ..raw("a-4.tar.gz", "https://idx.example/simple/six/a-4.tar.gz")
                    },
                    raw(
                        "torch-2.0.0+cpu-cp311-cp311-linux_x86_64.whl",
                        "https://idx.example/simple/six/torch-2.0.0%2Bcpu-cp311-cp311-linux_x86_64.whl",
                    ),
                ],
            ),
            (
                "a base element moves relative links",
                r#"<html><head><base href="https://mirror.example/pkgs/"></head>
<a href="b-1.zip">b</a></html>"#,
                vec![raw("b-1.zip", "https://mirror.example/pkgs/b-1.zip")],
            ),
            ("not HTML at all", "{\"files\": []}", vec![]),
            ("a truncated tag", "<a href=\"x-1.tar.gz", vec![raw("x-1.tar.gz", "https://idx.example/simple/six/x-1.tar.gz")]),
        ];
        for (what, html, want) in cases {
            assert_eq!(parse_html_page(html.as_bytes(), &page), want, "{what}");
        }
    }

    #[test]
    fn entities_table() {
        for (input, want) in [
            ("&gt;=3.8", ">=3.8"),
            ("a&amp;b&lt;c&quot;d&apos;e", "a&b<c\"d'e"),
            ("&#62;&#x3E;&#X3e;", ">>>"),
            (
                "&unknown; & &#xZZ; &#1114112;",
                "&unknown; & &#xZZ; &#1114112;",
            ),
            ("&amp", "&amp"),
            ("é&gt;", "é>"),
        ] {
            assert_eq!(decode_entities(input), want, "{input}");
        }
    }

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
    fn index_urls_lose_their_credentials() {
        let mut creds = Vec::new();
        let u = index_url("https://me:p%40ss@Private.example:8443/simple", &mut creds).unwrap();
        assert_eq!(u.as_str(), "https://private.example:8443/simple/");
        let token = base64::engine::general_purpose::STANDARD.encode("me:p@ss");
        assert_eq!(
            creds,
            vec![(
                Origin {
                    scheme: "https".into(),
                    host: "private.example".into(),
                    port: Some(8443)
                },
                format!("Basic {token}")
            )]
        );
        let u = index_url("https://pypi.org/simple/", &mut creds).unwrap();
        assert_eq!(u.as_str(), "https://pypi.org/simple/");
        assert_eq!(creds.len(), 1);

        for bad in ["file:///srv/simple", "not a url", "ftp://x/simple"] {
            assert!(index_url(bad, &mut creds).is_err(), "{bad}");
        }
        let err = index_url("ftp://me:secret@x/simple", &mut creds)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
        assert_eq!(
            redact("https://me:secret@x/simple/"),
            "https://****@x/simple/"
        );
        assert_eq!(redact("me:secret@x/simple"), "****@x/simple");
        assert_eq!(redact("https://token@x/simple/"), "https://****@x/simple/");
        assert_eq!(redact("https://x/simple/"), "https://x/simple/");
    }

    #[test]
    fn find_links_sources_table() {
        let mut creds = Vec::new();
        let folder = |s: &str| {
            find_links_source(s, &mut Vec::new()).map(|s| match s {
                Source::Folder(p) => p.display().to_string(),
                Source::Page(u) => format!("page {u}"),
                Source::Index(u) => format!("index {u}"),
            })
        };
        assert_eq!(folder("/wheels").unwrap(), "/wheels");
        assert_eq!(folder("wheels").unwrap(), "wheels");
        assert_eq!(folder("file:///opt/wheels").unwrap(), "/opt/wheels");
        assert_eq!(
            folder("https://h.example/w.html#x").unwrap(),
            "page https://h.example/w.html"
        );
        assert!(folder("s3://bucket/wheels").is_err());
        let Source::Page(u) = find_links_source("https://u:p@h.example/w/", &mut creds).unwrap()
        else {
            panic!("not a page")
        };
        assert_eq!(u.as_str(), "https://h.example/w/");
        assert_eq!(creds.len(), 1);
    }

    #[test]
    fn header_part_table() {
        for (input, want) in [
            ("A: 1\nB: 2\n\nbody\n", "A: 1\nB: 2\n"),
            ("A: 1\r\n\r\nbody", "A: 1\r\n"),
            ("A: 1\nB: 2", "A: 1\nB: 2"),
            ("\nbody", ""),
        ] {
            assert_eq!(header_part(input.as_bytes()), want.as_bytes(), "{input:?}");
        }
    }

    const A_METADATA: &[u8] =
        b"Metadata-Version: 2.1\nName: a\nVersion: 1.0\nRequires-Dist: b>=2\n\nLong text.\n";

    #[test]
    fn wheel_metadata_is_found_in_the_zip() {
        let a = WheelFilename::parse("a-1.0-py3-none-any.whl").unwrap();
        let read = |files: &[(&str, &[u8])]| {
            read_wheel_metadata(io::Cursor::new(zip_of(files)), &a, "a-1.0-py3-none-any.whl")
        };
        let got = read(&[
            ("a/__init__.py", b""),
            ("a-1.0.dist-info/METADATA", A_METADATA),
        ])
        .unwrap();
        assert_eq!(got, A_METADATA);
        // Several dist-info folders: the project's.
        let got = read(&[
            ("b-2.dist-info/METADATA", b"Name: b\n"),
            ("A-1.0.dist-info/METADATA", A_METADATA),
        ])
        .unwrap();
        assert_eq!(got, A_METADATA);

        for (what, files) in [
            ("none", &[("a/METADATA", &b"x"[..])][..]),
            ("nested", &[("x/a-1.0.dist-info/METADATA", &b"x"[..])][..]),
            (
                "several, none the project's",
                &[
                    ("b-1.dist-info/METADATA", &b"x"[..]),
                    ("c-1.dist-info/METADATA", &b"x"[..]),
                ][..],
            ),
        ] {
            let err = read(files).unwrap_err();
            assert!(matches!(err, IndexError::BadWheel { .. }), "{what}: {err}");
        }
        let err =
            read_wheel_metadata(io::Cursor::new(b"not a zip".to_vec()), &a, "a.whl").unwrap_err();
        assert!(matches!(err, IndexError::BadWheel { .. }), "{err}");
    }

    fn config(index: &str) -> IndexConfig {
        IndexConfig {
            index_url: index.to_owned(),
            ..IndexConfig::default()
        }
    }

    const JSON: &str = "application/vnd.pypi.simple.v1+json";

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
    fn credentials_go_to_their_origin_only() {
        let files = Server::start(vec![(
            "/f/a-1.0-py3-none-any.whl.metadata",
            vec![Reply::ok("text/plain", A_METADATA)],
        )]);
        let page = format!(
            r#"{{"files":[{{"filename":"a-1.0-py3-none-any.whl","url":"{}/f/a-1.0-py3-none-any.whl","core-metadata":true}}]}}"#,
            files.url
        );
        let main = Server::start(vec![("/simple/a/", vec![Reply::ok(JSON, page)])]);
        let with_creds = main.url.replace("http://", "http://me:secret@");
        let index = Index::new(config(&format!("{with_creds}/simple/"))).unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let f = &index.files(&name("a")).unwrap()[0];
        let m = index.metadata(f, &store).unwrap();
        assert_eq!(m.requires_dist.len(), 1);

        let token = base64::engine::general_purpose::STANDARD.encode("me:secret");
        assert_eq!(
            main.seen()[0].header("authorization"),
            Some(format!("Basic {token}").as_str())
        );
        assert_eq!(files.seen()[0].header("authorization"), None);
    }

    #[test]
    fn http_errors_retries_and_hints() {
        let main = Server::start(vec![
            (
                "/simple/flaky/",
                vec![Reply::status(503), Reply::ok(JSON, r#"{"files":[]}"#)],
            ),
            ("/simple/private/", vec![Reply::status(401)]),
            ("/simple/teapot/", vec![Reply::status(418)]),
            ("/simple/garbled/", vec![Reply::ok(JSON, "{not json")]),
        ]);
        let index = Index::new(config(&format!("{}/simple/", main.url))).unwrap();
        assert_eq!(index.files(&name("flaky")).unwrap(), vec![]);
        assert_eq!(main.hits("/simple/flaky/"), 2);

        let msg = index.files(&name("private")).unwrap_err().to_string();
        assert!(
            msg.contains("HTTP 401") && msg.contains("https://USER:TOKEN@host/simple/"),
            "{msg}"
        );
        assert_eq!(main.hits("/simple/private/"), 1);
        let msg = index.files(&name("teapot")).unwrap_err().to_string();
        assert!(msg.contains("HTTP 418"), "{msg}");
        let err = index.files(&name("garbled")).unwrap_err();
        assert!(matches!(err, IndexError::BadPage { .. }), "{err}");
        // Errors are not remembered: asked again, the index is asked again.
        let _ = index.files(&name("private"));
        assert_eq!(main.hits("/simple/private/"), 2);
    }

    #[test]
    fn offline_runs_read_the_pages_an_online_run_kept() {
        let main = Server::start(vec![(
            "/simple/a/",
            vec![Reply::ok(
                "text/html",
                r#"<a href="a-1.0-py3-none-any.whl">a</a>"#,
            )],
        )]);
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let cfg = config(&format!("{}/simple/", main.url));
        let online = Index::new(cfg.clone()).unwrap().with_store(store.clone());
        let want = online.files(&name("a")).unwrap();
        assert!(matches!(
            online.files(&name("gone")),
            Err(IndexError::UnknownPackage { .. })
        ));

        let offline = Index::new(IndexConfig {
            offline: true,
            ..cfg.clone()
        })
        .unwrap()
        .with_store(store);
        assert_eq!(offline.files(&name("a")).unwrap(), want);
        assert!(matches!(
            offline.files(&name("gone")),
            Err(IndexError::UnknownPackage { .. })
        ));
        let err = offline.files(&name("never-seen")).unwrap_err();
        assert!(matches!(err, IndexError::Offline { .. }), "{err}");
        assert_eq!(main.seen().len(), 2);

        let bare = Index::new(IndexConfig {
            offline: true,
            ..cfg
        })
        .unwrap();
        assert!(matches!(
            bare.files(&name("a")),
            Err(IndexError::Offline { .. })
        ));
    }

    /// A page listing one wheel of `a` at `/f/`, with the given extra JSON.
    fn page_for(server_url: &str, wheel: &[u8], extra: &str) -> String {
        format!(
            r#"{{"files":[{{"filename":"a-1.0-py3-none-any.whl","url":"{server_url}/f/a-1.0-py3-none-any.whl","hashes":{{"sha256":"{}"}}{extra}}}]}}"#,
            Digest::of(wheel).hex()
        )
    }

    #[test]
    fn metadata_from_pep_658_verified_and_cached_in_the_store() {
        let wheel = zip_of(&[("a-1.0.dist-info/METADATA", A_METADATA)]);
        let meta_hash = Digest::of(A_METADATA).hex().to_owned();
        let extra = format!(r#","core-metadata":{{"sha256":"{meta_hash}"}}"#);
        let server = Server::start(vec![(
            "/f/a-1.0-py3-none-any.whl.metadata",
            vec![Reply::ok("application/octet-stream", A_METADATA)],
        )]);
        let main = Server::start(vec![(
            "/simple/a/",
            vec![Reply::ok(JSON, page_for(&server.url, &wheel, &extra))],
        )]);
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let cfg = config(&format!("{}/simple/", main.url));
        let index = Index::new(cfg.clone()).unwrap();
        let f = index.files(&name("a")).unwrap().remove(0);
        let m = index.metadata(&f, &store).unwrap();
        assert_eq!(m.version, Version::from_str("1.0").unwrap());
        index.metadata(&f, &store).unwrap();
        assert_eq!(
            server.seen().len(),
            1,
            "the wheel is not downloaded; metadata once"
        );

        // A later, offline run reads it from the store.
        let offline = Index::new(IndexConfig {
            offline: true,
            ..cfg
        })
        .unwrap();
        assert_eq!(offline.metadata(&f, &store).unwrap(), m);
        assert_eq!(server.seen().len(), 1);

        // A metadata file whose hash is not the stated one is refused.
        let wrong = DistFile {
            metadata: Some(Some("0".repeat(64))),
            sha256: Some("1".repeat(64)),
            ..f.clone()
        };
        let err = Index::new(config(&main.url))
            .unwrap()
            .metadata(&wrong, &store)
            .unwrap_err();
        assert!(matches!(err, IndexError::MetadataHash { .. }), "{err}");
        assert!(store
            .get_key(METADATA_KEY_KIND, &"1".repeat(64))
            .unwrap()
            .is_none());
    }

    #[test]
    fn metadata_from_the_wheel_when_the_index_has_none() {
        let wheel = zip_of(&[("a-1.0.dist-info/METADATA", A_METADATA)]);
        let server = Server::start(vec![(
            "/f/a-1.0-py3-none-any.whl",
            vec![Reply::ok("application/octet-stream", wheel.clone())],
        )]);
        let main = Server::start(vec![(
            "/simple/a/",
            vec![Reply::ok(JSON, page_for(&server.url, &wheel, ""))],
        )]);
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let index = Index::new(config(&format!("{}/simple/", main.url))).unwrap();
        let f = index.files(&name("a")).unwrap().remove(0);
        let m = index.metadata(&f, &store).unwrap();
        assert_eq!(m.name, name("a"));
        assert!(
            store.has(&Digest::of(&wheel)),
            "the wheel is kept for the install"
        );
        let key = store
            .get_key(METADATA_KEY_KIND, Digest::of(&wheel).hex())
            .unwrap()
            .unwrap();
        assert!(!key.ends_with(b"Long text.\n"), "only headers are kept");

        // A wheel that calls itself something else is refused.
        let liar = zip_of(&[("a-1.0.dist-info/METADATA", b"Name: a\nVersion: 2.0\n")]);
        let wheelhouse = tempfile::tempdir().unwrap();
        let path = wheelhouse.path().join("a-1.0-py3-none-any.whl");
        std::fs::write(&path, &liar).unwrap();
        let local = Index::new(IndexConfig {
            no_index: true,
            find_links: vec![wheelhouse.path().display().to_string()],
            ..IndexConfig::default()
        })
        .unwrap();
        let f = local.files(&name("a")).unwrap().remove(0);
        let err = local.metadata(&f, &store).unwrap_err();
        assert!(matches!(err, IndexError::MetadataMismatch { .. }), "{err}");

        let sdist = DistFile {
            filename: "a-1.0.tar.gz".into(),
            kind: DistKind::Sdist {
                version: Version::from_str("1.0").unwrap(),
            },
            ..f
        };
        assert!(matches!(
            local.metadata(&sdist, &store),
            Err(IndexError::Sdist { .. })
        ));
    }

    #[test]
    fn netrc_table() {
        type Entry = (&'static str, &'static str, &'static str);
        let cases: &[(&str, &[Entry])] = &[
            ("", &[]),
            (
                "machine a.example login me password s3cret\nmachine b.example\n  login you\n  password pw # comment\n",
                &[("a.example", "me", "s3cret"), ("b.example", "you", "pw")],
            ),
            (
                "default login anyone password x\nmachine c.example login c account acct password p\n",
                &[("c.example", "c", "p")],
            ),
            (
                "macdef init\nmachine hidden.example login no password no\n\nmachine d.example login d password q\n",
                &[("d.example", "d", "q")],
            ),
            ("machine", &[]),
            ("machine e.example login", &[("e.example", "", "")]),
        ];
        for (text, want) in cases {
            let got = parse_netrc(text);
            let got: Vec<(&str, &str, &str)> = got
                .iter()
                .map(|(h, l, p)| (h.as_str(), l.as_str(), p.as_str()))
                .collect();
            assert_eq!(got, *want, "{text:?}");
        }
    }

    #[test]
    fn netrc_credentials_go_to_their_host_unless_the_url_has_some() {
        let dir = tempfile::tempdir().unwrap();
        let netrc = dir.path().join("netrc");
        std::fs::write(&netrc, "machine 127.0.0.1 login net password rc\n").unwrap();
        let cfg = IndexConfig::from_vars(|k| (k == "NETRC").then(|| netrc.display().to_string()))
            .unwrap();
        assert_eq!(cfg.netrc.as_deref(), Some(netrc.as_path()));
        let no_file = IndexConfig::from_vars(|k| (k == "HOME").then(|| "/no/such/home".to_owned()));
        assert_eq!(no_file.unwrap().netrc, None);

        let main = Server::start(vec![(
            "/simple/a/",
            vec![Reply::ok(JSON, r#"{"files":[]}"#)],
        )]);
        let index = Index::new(IndexConfig {
            index_url: format!("{}/simple/", main.url),
            ..cfg.clone()
        })
        .unwrap();
        index.files(&name("a")).unwrap();
        let header = |user: &str, pw: &str| basic(user, pw);
        assert_eq!(
            main.seen()[0].header("authorization"),
            Some(header("net", "rc").as_str())
        );

        let with_url = Index::new(IndexConfig {
            index_url: format!("{}/simple/", main.url.replace("http://", "http://u:p@")),
            ..cfg.clone()
        })
        .unwrap();
        with_url.files(&name("a")).unwrap();
        assert_eq!(
            main.seen()[1].header("authorization"),
            Some(header("u", "p").as_str())
        );

        let unreadable = Index::new(IndexConfig {
            netrc: Some(dir.path().join("missing")),
            ..cfg
        });
        assert!(matches!(unreadable, Err(IndexError::Netrc { .. })));
    }

    #[test]
    fn prefetch_fills_the_memory_for_later_questions() {
        let wheel = zip_of(&[("a-1.0.dist-info/METADATA", A_METADATA)]);
        let server = Server::start(vec![(
            "/f/a-1.0-py3-none-any.whl",
            vec![Reply::ok("application/zip", wheel.clone())],
        )]);
        let main = Server::start(vec![(
            "/simple/a/",
            vec![Reply::ok(JSON, page_for(&server.url, &wheel, ""))],
        )]);
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let index = Index::new(config(&format!("{}/simple/", main.url))).unwrap();
        let files = index.files(&name("a")).unwrap();
        let twice = [files.clone(), files].concat();
        index.prefetch(&twice, &store);
        assert_eq!(server.seen().len(), 1);
        // Gone from the store, still known for the run.
        std::fs::remove_dir_all(store_dir.path().join("keys")).unwrap();
        std::fs::remove_file(store.blob_path(&Digest::of(&wheel))).unwrap();
        index.metadata(&twice[0], &store).unwrap();
        assert_eq!(server.seen().len(), 1);
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
