//! One pip install: a project's requirements to a cached site-packages
//! layer, as `pip install --no-compile -r requirements.txt` run inside
//! the image would leave it, without running anything.
//!
//! 1. The packages ([`Pin`]s) come from pylock.toml when the project has
//!    one (as is; `--locked` also checks it still satisfies the
//!    requirements), else from the resolution cached under a key of the
//!    requirements' bytes, the index options and the image's interpreter
//!    and platform, else from a fresh resolution ([`super::resolve`]) over
//!    the configured indexes, kept once its layer is built. `--refresh` skips the
//!    cache and asks the index for every page again, however fresh. So a code-only rebuild asks no index anything, as Docker's
//!    `RUN pip install` layer is keyed on the copied requirements file.
//! 2. The layer's key ([`layer_key`]) hashes what the layer's bytes
//!    depend on: each wheel's name and sha256, the interpreter, the
//!    install scheme, the compression, the mtime and [`FORMAT_VERSION`].
//!    When the store has a layer for it, nothing is downloaded.
//!
//!    A shared cache (`--cache-from`, [`crate::cache`]) is asked after
//!    each local miss, the resolution first (under the resolution key, so
//!    a fresh runner needs no index) and then the layer; both are shared
//!    to `--cache-to` once the layer is had.
//! 3. Otherwise the wheels are downloaded in parallel and verified
//!    ([`super::download`]), and written straight from the zips into the
//!    layer ([`super::wheel`]).
//!
//! pip's hash-checking mode is kept: when requirements carry `--hash`,
//! every installed package must be a requirement with hashes, and every
//! wheel's sha256 must be one of them.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::dist::{DistFile, DistKind, Location};
use super::download::{download_all, DownloadError, DownloadEvent};
use super::env::PythonEnv;
use super::index::{Index, IndexConfig, IndexError};
use super::lock::{Lock, LockError, LockedPackage, LockedWheel};
use super::metadata::CoreMetadata;
use super::project::Project;
use super::resolve::{self, Requested, ResolveError, ResolveInput, Source, SourceError};
use super::sdist::Builder;
use super::tags::WheelFilename;
use super::wheel::{self, WheelError, WheelInput};
use crate::digest::Digest;
use crate::image::Descriptor;
use crate::layer::{Compression, Layer};
use crate::store::{Store, StoreError};

/// The version of hoist's Python layer layout; part of every layer key.
pub const FORMAT_VERSION: u32 = 1;

/// The store's cache-entry kind for site-packages layers.
pub const LAYER_KEY_KIND: &str = "deps-pip";

/// The store's cache-entry kind for resolutions.
pub const RESOLUTION_KEY_KIND: &str = "pip-resolution";

/// The shared cache's kind for wheels built from sdists, by the wheel's
/// sha256: a fresh job that gets a resolution naming one gets the wheel
/// too, and neither asks an index nor builds.
pub const BUILT_WHEEL_SHARE_KIND: &str = "pip-built-wheel-blob";

/// The media type a built wheel travels under in the shared cache.
const WHEEL_MEDIA_TYPE: &str = "application/vnd.hoist.python.wheel.v1+zip";

/// The store digest of a pin's wheel, when its sha256 is known.
fn wheel_digest(p: &Pin) -> Option<Digest> {
    p.sha256
        .as_deref()
        .and_then(|h| Digest::parse(&format!("sha256:{h}")).ok())
}

/// What INSTALLER says (PEP 376: the tool that installed the files).
pub const INSTALLER: &str = "hoist";

#[derive(Debug, thiserror::Error)]
pub enum PipError {
    #[error("pylock.toml: {0}")]
    Lock(#[from] LockError),
    #[error("--locked needs a pylock.toml next to requirements.txt: write one with `hoist lock`")]
    NoLock,
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Download(#[from] DownloadError),
    #[error(transparent)]
    Wheel(#[from] WheelError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "hash-checking mode: {name} {version} (required by {by}) is not in the requirements with \
         --hash; pip wants every package pinned with hashes (pip-compile --generate-hashes \
         writes them all)"
    )]
    HashMissing {
        name: String,
        version: String,
        by: String,
    },
    #[error("{name}: {why}")]
    Pin { name: String, why: String },
    #[error("{name}: the locked wheel {file} has a path with `..` or `.` in it; write it as a plain path")]
    LockPath { name: String, file: String },
}

/// What one install is asked to do.
#[derive(Debug, Clone)]
pub struct InstallOptions<'a> {
    pub env: &'a PythonEnv,
    /// Build the layer even when the cache has it.
    pub no_cache: bool,
    /// Resolve afresh instead of using the cached resolution.
    pub refresh: bool,
    /// Install only from pylock.toml, and only when it satisfies the
    /// requirements.
    pub locked: bool,
    /// No network: every answer must be in the store.
    pub offline: bool,
    pub compression: Compression,
    pub epoch: u64,
    /// A shared cache to look resolutions and layers up in after a local
    /// miss, and to share them to.
    pub shared: Option<&'a dyn crate::cache::SharedCache>,
    /// `sdists = "sandbox"`: where versions that have only an sdist are
    /// built into wheels ([`super::sdist`]); `None` refuses them.
    pub sdists: Option<&'a crate::sandbox::Ground>,
}

/// The layer an install made or found, and what it holds.
#[derive(Debug, Clone)]
pub struct Installed {
    pub layer: Layer,
    /// What pip command the layer stands for, for the image history.
    pub command: String,
    pub reused: bool,
    /// Where the package list came from: `pylock.toml`, `cache` or
    /// `resolved`.
    pub pins_from: &'static str,
    pub counts: Counts,
    /// Every wheel of the layer, for the SBOM.
    pub packages: Vec<crate::deps::Package>,
}

/// What an install put in its layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub packages: usize,
    pub files: usize,
    pub scripts: usize,
    #[serde(skip)]
    pub downloaded: usize,
    #[serde(skip)]
    pub downloaded_bytes: u64,
    #[serde(skip)]
    pub from_store: usize,
    /// Sdists built into wheels in the sandbox by this install.
    #[serde(skip)]
    pub built: usize,
}

/// One package to install and the wheel chosen for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub name: String,
    pub version: String,
    pub filename: String,
    pub url: Option<String>,
    /// A local wheel (a `--find-links` folder, or relative to the lock).
    pub path: Option<PathBuf>,
    pub sha256: Option<String>,
    pub size: Option<u64>,
    /// Who wanted it, for messages.
    #[serde(default)]
    pub required_by: Vec<String>,
    /// The sdist hoist built the wheel from (`sdists = "sandbox"`); the
    /// wheel is then a blob of the store, `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdist: Option<String>,
}

impl Pin {
    fn from_dist(name: String, version: String, file: &DistFile, required_by: Vec<String>) -> Pin {
        let (url, path) = match &file.location {
            Location::Url(u) => (Some(u.clone()), None),
            Location::Path(p) => (None, Some(p.clone())),
        };
        Pin {
            name,
            version,
            filename: file.filename.clone(),
            url,
            path,
            sha256: file.sha256.clone(),
            size: file.size,
            required_by,
            sdist: None,
        }
    }

    /// The file as the downloader takes it.
    fn dist_file(&self) -> Result<DistFile, PipError> {
        let filename = WheelFilename::parse(&self.filename).map_err(|e| PipError::Pin {
            name: self.name.clone(),
            why: e.to_string(),
        })?;
        let location = match (&self.url, &self.path) {
            (Some(u), _) => Location::Url(u.clone()),
            (None, Some(p)) => Location::Path(p.clone()),
            (None, None) => {
                return Err(PipError::LockPath {
                    name: self.name.clone(),
                    file: self.filename.clone(),
                })
            }
        };
        Ok(DistFile {
            filename: self.filename.clone(),
            kind: DistKind::Wheel(filename),
            location,
            sha256: self.sha256.clone(),
            requires_python: None,
            yanked: false,
            metadata: None,
            size: self.size,
        })
    }
}

/// The packages to install, where the list came from, and the cache key a
/// fresh resolution is to be kept under once installed.
struct Pins {
    pins: Vec<Pin>,
    /// Wheels downloaded while resolving: file name and bytes.
    ahead: HashMap<String, u64>,
    from: &'static str,
    unsaved: Option<String>,
    /// The resolution key, when the pins are a resolution (not a lock).
    key: Option<String>,
    /// Sdists built in the sandbox to make them.
    built: usize,
}

/// The resolver's view of the indexes (and of the sdist builder, when
/// sdists are built).
struct IndexSource<'a> {
    index: &'a Index,
    store: &'a Store,
    builder: Option<&'a Builder<'a>>,
    /// Packages found (total) and read (done), for the progress view.
    task: &'a crate::activity::Task,
    /// When set, wheels the resolver decides on are downloaded into the
    /// store as it goes on, and noted here (file name, bytes fetched).
    ahead: Option<&'a Mutex<HashMap<String, u64>>>,
}

impl Source for IndexSource<'_> {
    fn files(
        &self,
        name: &pep508_rs::PackageName,
    ) -> Result<std::sync::Arc<Vec<DistFile>>, SourceError> {
        self.task.add_total(1);
        match self.index.files_shared(name) {
            // The resolver names the requirer of a project no index has.
            Err(IndexError::UnknownPackage { .. }) => Ok(Default::default()),
            other => other.map_err(SourceError::new),
        }
    }

    fn kept_files(&self, name: &pep508_rs::PackageName) -> Option<Vec<DistFile>> {
        self.index.kept_files(name)
    }

    fn kept_metadata(&self, file: &DistFile) -> Option<CoreMetadata> {
        self.index.kept_metadata(file, self.store)
    }

    fn metadata(&self, file: &DistFile) -> Result<CoreMetadata, SourceError> {
        self.task.add(1);
        self.index
            .metadata(file, self.store)
            .map_err(SourceError::new)
    }

    fn download_ahead(&self, wheel: &DistFile) {
        let Some(ahead) = self.ahead else {
            return;
        };
        // Errors are the installer's to meet and report.
        let _ = super::download::download(self.index, self.store, wheel, &[], &|e| {
            if let DownloadEvent::Downloaded { file, bytes } = e {
                let mut map = ahead.lock().unwrap_or_else(|e| e.into_inner());
                map.insert(file.filename.clone(), bytes);
            }
        });
    }

    fn build(
        &self,
        name: &pep508_rs::PackageName,
        sdist: &DistFile,
    ) -> Result<Option<DistFile>, SourceError> {
        let Some(builder) = self.builder else {
            return Ok(None);
        };
        // Build requirements are wheels only: no builds within builds.
        let plain = IndexSource {
            builder: None,
            ahead: None,
            ..*self
        };
        builder
            .wheel(&plain, name, sdist)
            .map(Some)
            .map_err(SourceError::new)
    }
}

#[derive(Serialize, Deserialize)]
struct CacheEntry {
    descriptor: Descriptor,
    diff_id: Digest,
    uncompressed_size: u64,
    counts: Counts,
    /// Each wheel's sha256 by file name, as downloaded: a pin from a
    /// `--find-links` folder may state none, and the SBOM wants it on a
    /// cache hit too. Absent in entries older than the field.
    #[serde(default)]
    wheel_sha256: BTreeMap<String, String>,
}

impl Project {
    /// Where to look: pip's environment variables (`PIP_INDEX_URL`, ...),
    /// then what the requirements files say, which wins as it does in pip.
    pub fn index_config(&self, offline: bool) -> Result<IndexConfig, PipError> {
        let mut config = IndexConfig::from_env()?;
        if let Some(url) = &self.index.index_url {
            config.index_url = url.clone();
        }
        config
            .extra_index_urls
            .extend(self.index.extra_index_urls.iter().cloned());
        config
            .find_links
            .extend(self.index.find_links.iter().cloned());
        config.no_index |= self.index.no_index;
        config.offline = offline;
        Ok(config)
    }

    /// The index client; with `revalidate` (`--refresh`), kept pages are
    /// asked for again however fresh they are.
    fn index(&self, store: &Store, offline: bool, revalidate: bool) -> Result<Index, PipError> {
        let config = IndexConfig {
            revalidate,
            ..self.index_config(offline)?
        };
        Ok(Index::new(config)?.with_store(store.clone()))
    }

    /// Resolves the requirements for the image over the indexes, taking
    /// published wheels only (what `hoist lock` writes); with `refresh`,
    /// every index page is asked for again, however fresh the kept copy.
    pub fn resolve(
        &self,
        env: &PythonEnv,
        store: &Store,
        offline: bool,
        refresh: bool,
        warn: &mut dyn FnMut(String),
    ) -> Result<Vec<Pin>, PipError> {
        Ok(self
            .resolve_downloading(env, store, offline, refresh, None, None, warn)?
            .0)
    }

    /// Resolves the requirements for the image; with `sdists`, versions
    /// that have only an sdist get a wheel built on that ground (and the
    /// number built is said too); with `ahead`, the wheels of the versions
    /// decided on download into the store while the resolution goes on,
    /// noted in `ahead`; with `revalidate`, every index page is asked for
    /// again, however fresh the kept copy.
    #[allow(clippy::too_many_arguments)]
    fn resolve_downloading(
        &self,
        env: &PythonEnv,
        store: &Store,
        offline: bool,
        revalidate: bool,
        sdists: Option<&crate::sandbox::Ground>,
        ahead: Option<&Mutex<HashMap<String, u64>>>,
        warn: &mut dyn FnMut(String),
    ) -> Result<(Vec<Pin>, usize), PipError> {
        let index = self.index(store, offline, revalidate)?;
        let builder = sdists.map(|ground| Builder::new(&index, store, env, ground, self.hashes()));
        let task = crate::activity::Task::start(
            crate::activity::Kind::Resolve,
            super::project::REQUIREMENTS_NAME,
            0,
        );
        let source = IndexSource {
            index: &index,
            store,
            builder: builder.as_ref(),
            task: &task,
            ahead,
        };
        let requested = |lines: &[super::project::Located]| -> Vec<Requested> {
            lines
                .iter()
                .map(|(file, l)| Requested {
                    requirement: l.requirement.clone(),
                    file: file.clone(),
                    line: l.line,
                })
                .collect()
        };
        let mut input = ResolveInput::for_env(env);
        input.requirements = requested(&self.requirements);
        input.constraints = requested(&self.constraints);
        input.pre = self.index.pre;
        let resolution = resolve::resolve(&source, &input)?;
        task.complete();
        for w in &resolution.warnings {
            warn(w.clone());
        }
        let pins = resolution
            .packages
            .iter()
            .map(|p| {
                let mut pin = Pin::from_dist(
                    p.name.to_string(),
                    p.version.to_string(),
                    &p.wheel,
                    p.required_by.clone(),
                );
                pin.sdist = builder.as_ref().and_then(|b| b.sdist_of(&p.wheel.filename));
                pin
            })
            .collect();
        let built = builder.map_or(0, |b| b.built());
        // The index holds every listing it read (for a big set, hundreds
        // of thousands of files): freeing them is left to a thread of its
        // own, off the build's way.
        std::thread::spawn(move || drop(index));
        Ok((pins, built))
    }

    /// The packages to install and where the list came from.
    fn pins(
        &self,
        opts: &InstallOptions<'_>,
        store: &Store,
        warn: &mut dyn FnMut(String),
    ) -> Result<Pins, PipError> {
        if let Some(lock) = &self.lock {
            match lock.check_satisfies(&self.requirements, opts.env) {
                Ok(()) => {}
                Err(e) if opts.locked => return Err(e.into()),
                Err(e) => warn(format!("{e}; installing from it as is")),
            }
            let pins = lock
                .select(opts.env)?
                .into_iter()
                .map(|c| self.pin_from_lock(c.package, c.wheel))
                .collect::<Result<_, _>>()?;
            return Ok(Pins {
                pins,
                ahead: HashMap::new(),
                from: "pylock.toml",
                unsaved: None,
                key: None,
                built: 0,
            });
        }
        if opts.locked {
            return Err(PipError::NoLock);
        }
        let key = self.resolution_key(opts.env, &self.index_config(opts.offline)?, opts.sdists);
        if !opts.refresh {
            let mut cached = store.get_key(RESOLUTION_KEY_KIND, &key)?;
            if cached.is_none()
                && crate::cache::fetch(opts.shared, RESOLUTION_KEY_KIND, &key, store)
            {
                cached = store.get_key(RESOLUTION_KEY_KIND, &key)?;
            }
            // A wheel built from an sdist lives in this store, or in the
            // shared cache: a resolution naming one that is in neither
            // is resolved again (which builds it again).
            let built_here = |p: &Pin| {
                p.sdist.is_none()
                    || wheel_digest(p).is_some_and(|d| {
                        store.has(&d)
                            || (crate::cache::fetch(
                                opts.shared,
                                BUILT_WHEEL_SHARE_KIND,
                                d.hex(),
                                store,
                            ) && store.has(&d))
                    })
            };
            if let Some(bytes) = cached {
                if let Ok(pins) = serde_json::from_slice::<Vec<Pin>>(&bytes) {
                    if pins.iter().all(built_here) {
                        return Ok(Pins {
                            pins,
                            ahead: HashMap::new(),
                            from: "cache",
                            unsaved: None,
                            key: Some(key),
                            built: 0,
                        });
                    }
                }
            }
        }
        // In hash-checking mode a wheel is checked against the `--hash`
        // values as it downloads: the installer does that, not the resolver.
        let ahead = Mutex::new(HashMap::new());
        let downloading = (!self.require_hashes && self.hashes().is_empty()).then_some(&ahead);
        let (pins, built) = self.resolve_downloading(
            opts.env,
            store,
            opts.offline,
            opts.refresh,
            opts.sdists,
            downloading,
            warn,
        )?;
        self.check_hash_mode(&pins)?;
        Ok(Pins {
            pins,
            ahead: ahead.into_inner().unwrap_or_else(|e| e.into_inner()),
            from: "resolved",
            unsaved: Some(key.clone()),
            key: Some(key),
            built,
        })
    }

    fn pin_from_lock(&self, p: &LockedPackage, w: &LockedWheel) -> Result<Pin, PipError> {
        let path = match &w.path {
            None => None,
            Some(rel) => {
                use std::path::Component;
                let plain = std::path::Path::new(rel)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_) | Component::RootDir));
                if !plain {
                    return Err(PipError::LockPath {
                        name: p.name.to_string(),
                        file: w.name.clone(),
                    });
                }
                Some(self.root.join(rel))
            }
        };
        Ok(Pin {
            name: p.name.to_string(),
            version: p.version.to_string(),
            filename: w.name.clone(),
            url: w.url.clone(),
            path,
            sha256: Some(w.sha256.clone()),
            size: w.size,
            required_by: Vec::new(),
            sdist: None,
        })
    }

    /// In hash-checking mode every package must be a hashed requirement.
    fn check_hash_mode(&self, pins: &[Pin]) -> Result<(), PipError> {
        if !self.require_hashes {
            return Ok(());
        }
        let hashed = self.hashes();
        for p in pins {
            let key = normalize(&p.name);
            if !hashed.contains_key(&key) {
                return Err(PipError::HashMissing {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    by: if p.required_by.is_empty() {
                        "the requirements".to_owned()
                    } else {
                        p.required_by.join(", ")
                    },
                });
            }
        }
        Ok(())
    }

    /// `--hash` values by normalised package name.
    fn hashes(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (_, l) in &self.requirements {
            if !l.hashes.is_empty() {
                out.entry(normalize(l.requirement.name.as_ref()))
                    .or_default()
                    .extend(l.hashes.iter().cloned());
            }
        }
        out
    }

    /// The key of a resolution: the requirements' bytes, where packages
    /// are looked for (the requirements' options and pip's environment
    /// variables), the image's interpreter and platform, and, when sdists
    /// are built, the ground they are built on.
    pub fn resolution_key(
        &self,
        env: &PythonEnv,
        index: &IndexConfig,
        sdists: Option<&crate::sandbox::Ground>,
    ) -> String {
        let doc = json!({
            "resolver": format!("hoist-pip/{FORMAT_VERSION}"),
            "inputs": self.inputs_digest,
            "index": [
                index.index_url,
                index.extra_index_urls,
                index.find_links,
                index.no_index,
                self.index.pre,
            ],
            "python": env.full_version.to_string(),
            "target": format!("{:?}", env.target),
            "sdists": sdists.map(|g| g.key()),
        });
        hex::encode(Sha256::digest(doc.to_string()))
    }

    /// The deps layer (cached or built).
    pub fn install(
        &self,
        opts: &InstallOptions<'_>,
        store: &Store,
        warn: &mut dyn FnMut(String),
    ) -> Result<Installed, PipError> {
        let Pins {
            pins,
            ahead,
            from: pins_from,
            unsaved,
            key: resolution_key,
            built,
        } = self.pins(opts, store, warn)?;
        // A fresh resolution is kept only once its wheels made a layer, so
        // a failed build (a hash mismatch, a bad wheel) leaves nothing that
        // a fixed index or wheelhouse would not replace.
        let save = |store: &Store| -> Result<(), PipError> {
            if let Some(key) = &unsaved {
                let bytes = serde_json::to_vec(&pins).unwrap_or_default();
                store.put_key(RESOLUTION_KEY_KIND, key, &bytes)?;
            }
            Ok(())
        };
        let command = format!(
            "pip install --no-compile -r requirements.txt{}",
            if pins_from == "pylock.toml" {
                " (pylock.toml)"
            } else {
                ""
            }
        );
        let top: Vec<String> = self.top_level().iter().map(|n| normalize(n)).collect();
        let key = layer_key(&pins, &top, opts);
        // Once the layer is had: the layer, then the resolution that
        // leads to it, to the shared cache.
        let share = |store: &Store, entry: &[u8], layer: &Descriptor| {
            let blobs = [layer.clone()];
            crate::cache::share(opts.shared, LAYER_KEY_KIND, &key, entry, &blobs, store);
            if let Some(rk) = &resolution_key {
                let bytes = serde_json::to_vec(&pins).unwrap_or_default();
                crate::cache::share(opts.shared, RESOLUTION_KEY_KIND, rk, &bytes, &[], store);
            }
            // The wheels built here, which that resolution names.
            for p in pins.iter().filter(|p| p.sdist.is_some()) {
                let Some(d) = wheel_digest(p).filter(|d| store.has(d)) else {
                    continue;
                };
                let size = std::fs::metadata(store.blob_path(&d)).map_or(0, |m| m.len());
                let blob = Descriptor::new(WHEEL_MEDIA_TYPE, d.clone(), size);
                let entry =
                    json!({ "filename": p.filename, "digest": d.to_string(), "size": size });
                let entry = serde_json::to_vec(&entry).unwrap_or_default();
                crate::cache::share(
                    opts.shared,
                    BUILT_WHEEL_SHARE_KIND,
                    d.hex(),
                    &entry,
                    &[blob],
                    store,
                );
            }
        };
        if !opts.no_cache {
            let mut cached = store.get_key(LAYER_KEY_KIND, &key)?;
            let usable = |b: &Option<Vec<u8>>| {
                b.as_deref()
                    .and_then(|b| serde_json::from_slice::<CacheEntry>(b).ok())
                    .is_some_and(|e| store.has(&e.descriptor.digest))
            };
            if !usable(&cached) && crate::cache::fetch(opts.shared, LAYER_KEY_KIND, &key, store) {
                cached = store.get_key(LAYER_KEY_KIND, &key)?;
            }
            if let Some(bytes) = cached {
                if let Ok(entry) = serde_json::from_slice::<CacheEntry>(&bytes) {
                    if store.has(&entry.descriptor.digest) {
                        save(store)?;
                        let packages = packages_of(&pins, &entry.wheel_sha256);
                        share(store, &bytes, &entry.descriptor);
                        return Ok(Installed {
                            layer: Layer {
                                descriptor: entry.descriptor,
                                diff_id: entry.diff_id,
                                uncompressed_size: entry.uncompressed_size,
                            },
                            command,
                            reused: true,
                            pins_from,
                            counts: Counts {
                                built,
                                ..entry.counts
                            },
                            packages,
                        });
                    }
                }
            }
        }
        let hashes = self.hashes();
        let files = pins
            .iter()
            .map(|p| {
                // A built wheel's sdist was checked against the hashes.
                let allowed = match &p.sdist {
                    Some(_) => Vec::new(),
                    None => hashes.get(&normalize(&p.name)).cloned().unwrap_or_default(),
                };
                Ok((p.dist_file()?, allowed))
            })
            .collect::<Result<Vec<_>, PipError>>()?;
        let index = self.index(store, opts.offline, false)?;
        let downloaded = AtomicUsize::new(0);
        let downloaded_bytes = AtomicU64::new(0);
        let from_store = AtomicUsize::new(0);
        let digests = download_all(&index, store, &files, &|e| match e {
            // Downloaded while resolving: a download of this build.
            DownloadEvent::Cached { file } if ahead.contains_key(&file.filename) => {
                downloaded.fetch_add(1, Ordering::Relaxed);
                downloaded_bytes.fetch_add(ahead[&file.filename], Ordering::Relaxed);
            }
            DownloadEvent::Cached { .. } => {
                from_store.fetch_add(1, Ordering::Relaxed);
            }
            DownloadEvent::Downloaded { bytes, .. } => {
                downloaded.fetch_add(1, Ordering::Relaxed);
                downloaded_bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            DownloadEvent::Retrying { .. } => {}
        })?;
        let wheels: Vec<WheelInput> = pins
            .iter()
            .zip(&digests)
            .map(|(p, d)| WheelInput {
                filename: p.filename.clone(),
                blob: d.clone(),
                requested: top.contains(&normalize(&p.name)),
            })
            .collect();
        let written = wheel::write_layer(
            store,
            &wheels,
            opts.env,
            INSTALLER,
            opts.compression,
            opts.epoch,
        )?;
        let counts = Counts {
            packages: pins.len(),
            files: written.files,
            scripts: written.scripts,
            downloaded: downloaded.into_inner(),
            downloaded_bytes: downloaded_bytes.into_inner(),
            from_store: from_store.into_inner(),
            built,
        };
        let layer = written.layer;
        let wheel_sha256: BTreeMap<String, String> = pins
            .iter()
            .zip(&digests)
            .map(|(p, d)| (p.filename.clone(), d.hex().to_owned()))
            .collect();
        let entry = CacheEntry {
            descriptor: layer.descriptor.clone(),
            diff_id: layer.diff_id.clone(),
            uncompressed_size: layer.uncompressed_size,
            counts: counts.clone(),
            wheel_sha256,
        };
        let bytes = serde_json::to_vec(&entry).unwrap_or_default();
        store.put_key(LAYER_KEY_KIND, &key, &bytes)?;
        save(store)?;
        let packages = packages_of(&pins, &entry.wheel_sha256);
        share(store, &bytes, &layer.descriptor);
        Ok(Installed {
            layer,
            command,
            reused: false,
            pins_from,
            counts,
            packages,
        })
    }
}

/// Builds a lock from the resolutions of several images (one per
/// platform): a package resolved alike everywhere gets one entry with
/// every platform's wheel; one that differs gets an entry per version,
/// with a marker naming the machines it applies to.
pub fn lock_of(resolutions: &[(&PythonEnv, Vec<Pin>)]) -> Result<Lock, PipError> {
    // (name, version) -> (wheels, machines)
    type Seen<'a> = (Vec<&'a Pin>, Vec<&'a str>);
    let mut by: BTreeMap<(String, String), Seen<'_>> = BTreeMap::new();
    for (env, pins) in resolutions {
        for p in pins {
            let e = by
                .entry((normalize(&p.name), p.version.clone()))
                .or_default();
            e.0.push(p);
            e.1.push(env.target.arch.as_str());
        }
    }
    let all: Vec<&str> = resolutions
        .iter()
        .map(|(e, _)| e.target.arch.as_str())
        .collect();
    let mut packages = Vec::new();
    for ((name, version), (pins, mut machines)) in by {
        machines.sort_unstable();
        machines.dedup();
        let marker = if all.iter().all(|m| machines.contains(m)) {
            None
        } else {
            let text = machines
                .iter()
                .map(|m| format!("platform_machine == '{m}'"))
                .collect::<Vec<_>>()
                .join(" or ");
            Some(
                text.parse()
                    .map_err(|e: pep508_rs::Pep508Error| PipError::Pin {
                        name: name.clone(),
                        why: e.to_string(),
                    })?,
            )
        };
        let bad = |why: String| PipError::Pin {
            name: name.clone(),
            why,
        };
        let mut wheels = Vec::new();
        for p in pins {
            if let Some(sdist) = &p.sdist {
                return Err(bad(format!(
                    "its wheel was built from {sdist} in the sandbox, and hoist lock takes \
                     published wheels only: build without a lock, or put a wheel in a \
                     --find-links folder"
                )));
            }
            let filename = WheelFilename::parse(&p.filename).map_err(|e| bad(e.to_string()))?;
            let sha256 = p.sha256.clone().ok_or_else(|| {
                bad(format!(
                    "the index gave no sha256 for {}, and a lock needs one",
                    p.filename
                ))
            })?;
            wheels.push(LockedWheel {
                filename,
                name: p.filename.clone(),
                url: p.url.clone(),
                path: p.path.as_ref().map(|p| p.display().to_string()),
                size: p.size,
                sha256,
            });
        }
        packages.push(LockedPackage {
            name: name
                .parse()
                .map_err(|e: pep508_rs::InvalidNameError| bad(e.to_string()))?,
            version: version
                .parse()
                .map_err(|e| bad(format!("version {version}: {e}")))?,
            marker,
            index: None,
            wheels,
            other_source: None,
        });
    }
    let requires_python = resolutions.first().map(|(e, _)| {
        let (major, minor) = e.version;
        format!("=={major}.{minor}.*")
    });
    Ok(Lock {
        requires_python,
        packages,
    })
}

/// The wheels of a layer, as the SBOM lists them: name, version, file,
/// URL and sha256 (the pin's, else the one measured when it was
/// downloaded, from `measured`).
fn packages_of(pins: &[Pin], measured: &BTreeMap<String, String>) -> Vec<crate::deps::Package> {
    use crate::deps::{Ecosystem, HashAlgorithm, Package, PackageHash};
    pins.iter()
        .map(|p| Package {
            ecosystem: Ecosystem::Pypi,
            name: p.name.clone(),
            version: p.version.clone(),
            download: p.url.clone(),
            file: Some(p.filename.clone()),
            path: None,
            hashes: p
                .sha256
                .as_ref()
                .or_else(|| measured.get(&p.filename))
                .map(|hex| PackageHash {
                    algorithm: HashAlgorithm::Sha256,
                    hex: hex.to_ascii_lowercase(),
                })
                .into_iter()
                .collect(),
        })
        .collect()
}

/// The layer's cache key: everything its bytes depend on.
pub fn layer_key(pins: &[Pin], requested: &[String], opts: &InstallOptions<'_>) -> String {
    let mut wheels: Vec<(&str, Option<&str>, bool)> = pins
        .iter()
        .map(|p| {
            let wanted = requested.contains(&normalize(&p.name));
            (p.filename.as_str(), p.sha256.as_deref(), wanted)
        })
        .collect();
    wheels.sort_unstable();
    let env = opts.env;
    let s = &env.scheme;
    let doc = json!({
        "installer": format!("hoist-pip/{FORMAT_VERSION}"),
        "wheels": wheels,
        "interpreter": env.interpreter.as_str(),
        "python": env.full_version.to_string(),
        "target": format!("{:?}", env.target),
        "scheme": [s.purelib.as_str(), s.platlib.as_str(), s.scripts.as_str(), s.data.as_str(), s.headers.as_str()],
        "compression": format!("{:?}", opts.compression),
        "epoch": opts.epoch,
    });
    hex::encode(Sha256::digest(doc.to_string()))
}

/// PEP 503 normalisation: runs of `-_.` become `-`, lower case.
pub(super) fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps::pip::env::Scheme;
    use crate::deps::pip::tags::{Arch, Libc, Target};
    use crate::layer::ImagePath;

    fn env(arch: Arch) -> PythonEnv {
        let p = |s: &str| ImagePath::new(s).unwrap();
        PythonEnv {
            version: (3, 11),
            full_version: "3.11.2".parse().unwrap(),
            full_version_known: true,
            interpreter: p("usr/bin/python3.11"),
            scheme: Scheme {
                purelib: p("usr/local/lib/python3.11/dist-packages"),
                platlib: p("usr/local/lib/python3.11/dist-packages"),
                scripts: p("usr/local/bin"),
                data: p("usr/local"),
                headers: p("usr/local/include/python3.11"),
                home: None,
            },
            target: Target {
                python: (3, 11),
                arch,
                libc: Libc::Glibc {
                    major: 2,
                    minor: 36,
                },
            },
        }
    }

    fn pin(name: &str, version: &str, filename: &str, hash: char) -> Pin {
        Pin {
            name: name.into(),
            version: version.into(),
            filename: filename.into(),
            url: Some(format!("https://files.example/{filename}")),
            path: None,
            sha256: Some(hash.to_string().repeat(64)),
            size: Some(1),
            required_by: Vec::new(),
            sdist: None,
        }
    }

    #[test]
    fn normalize_table() {
        for (raw, want) in [
            ("PyYAML", "pyyaml"),
            ("typing_extensions", "typing-extensions"),
            ("zope.interface", "zope-interface"),
            ("a-_.b", "a-b"),
        ] {
            assert_eq!(normalize(raw), want, "{raw}");
        }
    }

    #[test]
    fn lock_of_merges_platforms() {
        let (amd, arm) = (env(Arch::X86_64), env(Arch::Aarch64));
        let six = pin("six", "1.17.0", "six-1.17.0-py2.py3-none-any.whl", 'a');
        let amd_pins = vec![
            six.clone(),
            pin(
                "orjson",
                "3.10.12",
                "orjson-3.10.12-cp311-cp311-manylinux_2_17_x86_64.whl",
                'b',
            ),
            pin("x86only", "1.0", "x86only-1.0-py3-none-any.whl", 'c'),
        ];
        let arm_pins = vec![
            six,
            pin(
                "orjson",
                "3.10.12",
                "orjson-3.10.12-cp311-cp311-manylinux_2_17_aarch64.whl",
                'd',
            ),
        ];
        let lock = lock_of(&[(&amd, amd_pins), (&arm, arm_pins)]).unwrap();
        let view: Vec<(String, usize, Option<String>)> = lock
            .packages
            .iter()
            .map(|p| {
                let m = p.marker.as_ref().and_then(|m| m.try_to_string());
                (p.name.to_string(), p.wheels.len(), m)
            })
            .collect();
        assert_eq!(
            view,
            vec![
                ("orjson".into(), 2, None),
                ("six".into(), 2, None),
                (
                    "x86only".into(),
                    1,
                    Some("platform_machine == 'x86_64'".into())
                ),
            ]
        );
        // Each platform gets its own wheel back from the written lock.
        let text = lock.to_toml();
        let again = Lock::parse(text.as_bytes()).unwrap();
        for (e, want) in [(&amd, 3, 'b'), (&arm, 2, 'd')].map(|(e, n, h)| (e, (n, h))) {
            let chosen = again.select(e).unwrap();
            assert_eq!(chosen.len(), want.0);
            let orjson = chosen.iter().find(|c| c.package.name.as_ref() == "orjson");
            assert_eq!(orjson.unwrap().wheel.sha256, want.1.to_string().repeat(64));
        }
        // A pin without a sha256 cannot be locked.
        let mut bare = pin("six", "1.17.0", "six-1.17.0-py2.py3-none-any.whl", 'a');
        bare.sha256 = None;
        let err = lock_of(&[(&amd, vec![bare])]).unwrap_err().to_string();
        assert!(err.contains("no sha256"), "{err}");
    }

    #[test]
    fn layer_key_follows_what_the_layer_depends_on() {
        let e = env(Arch::X86_64);
        let opts = |env: &PythonEnv, epoch: u64| -> String {
            let o = InstallOptions {
                env,
                no_cache: false,
                refresh: false,
                locked: false,
                offline: false,
                compression: Compression::Gzip,
                epoch,
                shared: None,
                sdists: None,
            };
            let pins = vec![pin("six", "1.17.0", "six-1.17.0-py2.py3-none-any.whl", 'a')];
            layer_key(&pins, &["six".to_owned()], &o)
        };
        let base = opts(&e, 0);
        assert_eq!(base, opts(&e, 0), "stable");
        assert_ne!(base, opts(&e, 1), "epoch");
        let mut other = e.clone();
        other.interpreter = ImagePath::new("usr/local/bin/python3.11").unwrap();
        assert_ne!(base, opts(&other, 0), "interpreter");
        let mut other = e.clone();
        other.scheme.scripts = ImagePath::new("usr/bin").unwrap();
        assert_ne!(base, opts(&other, 0), "scheme");
        let o = InstallOptions {
            env: &e,
            no_cache: true,
            refresh: true,
            locked: true,
            offline: true,
            compression: Compression::Gzip,
            shared: None,
            sdists: None,
            epoch: 0,
        };
        let pins = vec![pin("six", "1.17.0", "six-1.17.0-py2.py3-none-any.whl", 'a')];
        assert_eq!(layer_key(&pins, &["six".to_owned()], &o), base, "flags");
        assert_ne!(layer_key(&pins, &[], &o), base, "REQUESTED");
        let other = vec![pin("six", "1.17.0", "six-1.17.0-py2.py3-none-any.whl", 'b')];
        assert_ne!(
            layer_key(&other, &["six".to_owned()], &o),
            base,
            "wheel hash"
        );
    }
}
