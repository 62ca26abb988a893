//! One npm install: a project's manifests to a cached node_modules layer.
//!
//! [`Project::read`] reads and checks what the project folder says
//! (package.json, the lockfile, `.npmrc`) before the build touches the
//! base, so bad input fails fast. [`Project::install`] then does what
//! `npm ci --ignore-scripts` would, for the image's platform:
//!
//! 1. select the lockfile entries for the omit set and the platform
//!    ([`super::select`]), and the `.bin` links ([`super::bins`]);
//! 2. report the packages whose install scripts npm would have run
//!    (`--strict-scripts`: refuse them);
//! 3. compute the cache key ([`cache_key`]); when the store has a layer
//!    for it, reuse it: no tarball is opened and no request is made; else
//!    ask the shared cache, if any (`--cache-from`, [`crate::cache`]),
//!    which brings the layer into the store;
//! 4. otherwise fetch the tarballs ([`super::fetch`]), write the layer
//!    ([`super::layout`]) and record it under the key; and share it
//!    (`--cache-to`), as a reused layer is too.
//!
//! The key hashes everything the layer's bytes depend on, and nothing
//! else: the selected entries (key, kind, integrity, link target, name,
//! `bin`, flags), which `.bin` targets of linked folders exist, the omit
//! set, the platform and libc, the workdir, the compression, the mtime
//! (`SOURCE_DATE_EPOCH`) and [`FORMAT_VERSION`], bumped whenever hoist
//! changes how it lays a package out. Registries and `resolved` URLs are
//! not in it: a tarball is the same bytes wherever it comes from, as its
//! integrity proves.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::bins::{bin_links, BinError, Bins};
use super::fetch::{FetchError, Fetcher, Job};
use super::layout::{self, LayoutError, TarballSource};
use super::lockfile::{
    check_in_step, choose_lockfile, Bin, Lockfile, LockfileError, PackageJson, LOCKFILE_NAMES,
};
use super::npmrc::{Npmrc, NpmrcError};
use super::path::RelPath;
use super::select::{select, Kind, Libc, Omit, SelectError, Selection, Target};
use crate::digest::Digest;
use crate::image::{Descriptor, Platform};
use crate::layer::{Compression, ImagePath, Layer};
use crate::store::{Store, StoreError};

/// The version of hoist's npm layout; part of every cache key.
pub const FORMAT_VERSION: u32 = 1;

/// The store's cache-entry kind for npm layers.
pub const KEY_KIND: &str = "deps-npm";

/// The lifecycle scripts of the project itself that `npm ci` runs.
const ROOT_SCRIPTS: [&str; 7] = [
    "preinstall",
    "install",
    "postinstall",
    "prepublish",
    "preprepare",
    "prepare",
    "postprepare",
];

#[derive(Debug, thiserror::Error)]
pub enum NpmError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {source}")]
    Lockfile {
        file: String,
        #[source]
        source: LockfileError,
    },
    #[error("the project's .npmrc: {0}")]
    Npmrc(#[from] NpmrcError),
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error(transparent)]
    Bin(#[from] BinError),
    #[error(
        "lockfile entry `{key}` has no `integrity`, so its tarball cannot be verified; \
         regenerate the lockfile with `npm install --package-lock-only`"
    )]
    MissingIntegrity { key: String },
    #[error(
        "lockfile entry `{key}` comes from `{resolved}`; hoist installs registry tarballs \
         (http and https) and workspace links only"
    )]
    UnsupportedSource { key: String, resolved: String },
    #[error("lockfile entry `{key}` has neither `resolved` nor `version`: hoist cannot tell where to download it")]
    NoSource { key: String },
    #[error(
        "--strict-scripts: {} would run install scripts under npm ci, and hoist runs none: {}; \
         drop --strict-scripts to build without them, or drop those dependencies",
        count_packages(list.len()),
        list.join(", ")
    )]
    InstallScripts { list: Vec<String> },
    #[error(transparent)]
    Scripts(#[from] crate::sandbox::SandboxError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn count_packages(n: usize) -> String {
    if n == 1 {
        "1 package".to_owned()
    } else {
        format!("{n} packages")
    }
}

/// What one install is asked to do.
#[derive(Debug, Clone)]
pub struct InstallOptions<'a> {
    pub workdir: &'a ImagePath,
    /// The image's platform (its os and architecture matter).
    pub platform: &'a Platform,
    /// The base's C library, `None` when unknown.
    pub libc: Option<Libc>,
    /// Keep devDependencies (`npm ci`), else `npm ci --omit=dev`.
    pub dev: bool,
    pub strict_scripts: bool,
    /// Build even when the cache has the layer.
    pub no_cache: bool,
    pub compression: Compression,
    pub epoch: u64,
    /// A shared cache to look the layer up in after a local miss, and to
    /// share it to.
    pub shared: Option<&'a dyn crate::cache::SharedCache>,
    /// Where to run the packages' install scripts (`scripts =
    /// "sandbox"`); `None` runs none.
    pub scripts: Option<&'a crate::sandbox::Ground>,
}

/// The layer an install made or found, and what it holds.
#[derive(Debug, Clone)]
pub struct Installed {
    pub layer: Layer,
    /// What `npm` command the layer stands for, for the image history.
    pub command: String,
    pub reused: bool,
    pub counts: Counts,
    /// Every package of the layer (tarball and bundled entries; links and
    /// workspaces are the app's own), for the SBOM.
    pub packages: Vec<crate::deps::Package>,
}

/// What an install put in its layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Installed packages, links included.
    pub packages: usize,
    pub files: usize,
    pub bin_links: usize,
    pub links: usize,
    /// Tarballs downloaded by this build, and their bytes.
    #[serde(skip)]
    pub downloaded: usize,
    #[serde(skip)]
    pub downloaded_bytes: u64,
    /// Tarballs found in the store.
    #[serde(skip)]
    pub from_store: usize,
    /// Times a tarball was decompressed while writing (reopenings
    /// included).
    #[serde(skip)]
    pub tarball_reads: usize,
}

/// The cache entry of an npm layer.
#[derive(Debug, Serialize, Deserialize)]
struct CacheEntry {
    descriptor: Descriptor,
    diff_id: Digest,
    uncompressed_size: u64,
    counts: Counts,
}

/// An npm project, read and checked.
#[derive(Debug)]
pub struct Project {
    root: PathBuf,
    lockfile_name: &'static str,
    lockfile: Lockfile,
    npmrc: Npmrc,
    /// The project's own install scripts (package.json), which npm ci runs.
    root_scripts: Vec<String>,
}

impl Project {
    /// Reads the npm project in `root`; `None` when package.json declares
    /// no dependency and there is no lockfile (nothing to install).
    /// `env` expands `${VAR}` in `.npmrc`.
    pub fn read(
        root: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Project>, NpmError> {
        let present: Vec<&str> = [
            "package.json",
            LOCKFILE_NAMES[0],
            LOCKFILE_NAMES[1],
            "yarn.lock",
            "pnpm-lock.yaml",
            "bun.lock",
            "bun.lockb",
        ]
        .into_iter()
        .filter(|name| root.join(name).is_file())
        .collect();
        let read = |name: &str| {
            let path = root.join(name);
            fs_err::read(&path).map_err(|source| NpmError::Read { path, source })
        };
        let lockfile_name = match choose_lockfile(&present) {
            Ok(name) => name,
            Err(LockfileError::NoLockfile) => {
                let pj = PackageJson::parse(&read("package.json")?).map_err(|source| {
                    NpmError::Lockfile {
                        file: "package.json".into(),
                        source,
                    }
                })?;
                let none = pj.dependencies.is_empty()
                    && pj.dev_dependencies.is_empty()
                    && pj.optional_dependencies.is_empty()
                    && pj.peer_dependencies.is_empty();
                if none {
                    return Ok(None);
                }
                return Err(NpmError::Lockfile {
                    file: "package.json".into(),
                    source: LockfileError::NoLockfile,
                });
            }
            Err(source) => {
                return Err(NpmError::Lockfile {
                    file: root.display().to_string(),
                    source,
                })
            }
        };
        let package_json =
            PackageJson::parse(&read("package.json")?).map_err(|source| NpmError::Lockfile {
                file: "package.json".into(),
                source,
            })?;
        let lockfile =
            Lockfile::parse(&read(lockfile_name)?).map_err(|source| NpmError::Lockfile {
                file: lockfile_name.into(),
                source,
            })?;
        check_in_step(&package_json, &lockfile).map_err(|source| NpmError::Lockfile {
            file: lockfile_name.into(),
            source,
        })?;
        let npmrc = match fs_err::read_to_string(root.join(".npmrc")) {
            Ok(text) => Npmrc::parse(&text, env)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Npmrc::default(),
            Err(source) => {
                return Err(NpmError::Read {
                    path: root.join(".npmrc"),
                    source,
                })
            }
        };
        let root_scripts = ROOT_SCRIPTS
            .iter()
            .filter(|s| package_json.scripts.contains_key(**s))
            .map(|s| (*s).to_owned())
            .collect();
        Ok(Some(Project {
            root: root.to_owned(),
            lockfile_name,
            lockfile,
            npmrc,
            root_scripts,
        }))
    }

    /// The lockfile read: `package-lock.json` or `npm-shrinkwrap.json`.
    pub fn lockfile_name(&self) -> &'static str {
        self.lockfile_name
    }

    /// Installs into a layer (or finds it in the cache); `None` when the
    /// selection installs nothing. Warnings go to `warn`.
    pub fn install(
        &self,
        opts: &InstallOptions<'_>,
        store: &Store,
        warn: &mut dyn FnMut(String),
    ) -> Result<Option<Installed>, NpmError> {
        for w in &self.npmrc.warnings {
            warn(w.clone());
        }
        let target = Target::from_oci(&opts.platform.os, &opts.platform.architecture, opts.libc)?;
        let omit = if opts.dev { Omit::NOTHING } else { Omit::DEV };
        let selection = select(&self.lockfile, omit, &target)?;
        let bins = bin_links(&self.lockfile, &selection)?;
        if opts.scripts.is_none() {
            self.check_scripts(&selection, opts.strict_scripts, warn)?;
        } else if !self.root_scripts.is_empty() {
            warn(format!(
                "the project's own {} scripts do not run (they need the app's files, which come after the deps layer); run them in a [build] step",
                self.root_scripts.join(", ")
            ));
        }
        let scripted: Vec<String> = selection
            .install_scripts
            .iter()
            .map(|p| p.to_string())
            .collect();
        // The install scripts, in the sandbox over the native layer.
        let finish = |native: Installed,
                      warn: &mut dyn FnMut(String)|
         -> Result<Installed, NpmError> {
            let Some(ground) = opts.scripts.filter(|_| !scripted.is_empty()) else {
                return Ok(native);
            };
            let made = super::scripts::run(
                store,
                ground,
                &native.layer,
                opts.workdir,
                &scripted,
                opts.no_cache,
                opts.compression,
                opts.epoch,
            )?;
            if made.left_out > 0 {
                warn(format!(
                    "the install scripts changed {} paths outside node_modules; they are not in the deps layer",
                    made.left_out
                ));
            }
            Ok(Installed {
                layer: made.layer,
                command: native.command.replace(" --ignore-scripts", ""),
                reused: native.reused && made.reused,
                ..native
            })
        };
        for b in &bins.shadowed {
            warn(format!(
                "`{}` also has a bin `{}`, but `{}` was linked first (as npm links them)",
                b.package, b.name, b.link
            ));
        }
        let packages = selection
            .install
            .iter()
            .filter(|s| !matches!(s.kind, Kind::Workspace))
            .count();
        if packages == 0 {
            return Ok(None);
        }
        let command = if opts.dev {
            "npm ci --ignore-scripts".to_owned()
        } else {
            "npm ci --omit=dev --ignore-scripts".to_owned()
        };
        let jobs = self.jobs(&selection, &bins)?;
        let listed = packages_of(&selection, &jobs);
        let in_project = |p: &RelPath| self.root.join(p.as_str()).exists();
        let key = cache_key(opts, omit, &target, &selection, &bins, &in_project);

        if !opts.no_cache {
            // The store, else a shared cache (which copies the entry and
            // its layer into the store), before any tarball is fetched.
            let hit = match cached(store, &key)? {
                None if crate::cache::fetch(opts.shared, KEY_KIND, &key, store) => {
                    cached(store, &key)?
                }
                hit => hit,
            };
            if let Some((entry, bytes)) = hit {
                let blobs = [entry.descriptor.clone()];
                crate::cache::share(opts.shared, KEY_KIND, &key, &bytes, &blobs, store);
                return finish(
                    Installed {
                        layer: Layer {
                            descriptor: entry.descriptor,
                            diff_id: entry.diff_id,
                            uncompressed_size: entry.uncompressed_size,
                        },
                        command,
                        reused: true,
                        counts: entry.counts,
                        packages: listed,
                    },
                    warn,
                )
                .map(Some);
            }
        }

        let fetched = Fetcher::new(store, &self.npmrc)?.fetch_all(&jobs)?;
        let sources: Vec<TarballSource<'_>> = jobs
            .iter()
            .zip(&fetched)
            .map(|(job, fetched)| TarballSource {
                key: &job.key,
                fetched,
            })
            .collect();
        let plan = layout::plan(opts.workdir, &selection, &bins, &sources, &in_project)?;
        let (layer, stats) = layout::write(&plan, store, opts.compression, opts.epoch)?;
        let counts = Counts {
            packages,
            files: plan.files,
            bin_links: plan.bin_links,
            links: plan.links,
            downloaded: fetched.iter().filter(|f| f.downloaded > 0).count(),
            downloaded_bytes: fetched.iter().map(|f| f.downloaded).sum(),
            from_store: fetched.iter().filter(|f| f.downloaded == 0).count(),
            tarball_reads: stats.tarball_reads,
        };
        let entry = CacheEntry {
            descriptor: layer.descriptor.clone(),
            diff_id: layer.diff_id.clone(),
            uncompressed_size: layer.uncompressed_size,
            counts: counts.clone(),
        };
        let bytes = serde_json::to_vec(&entry).unwrap_or_default();
        store.put_key(KEY_KIND, &key, &bytes)?;
        let blobs = [layer.descriptor.clone()];
        crate::cache::share(opts.shared, KEY_KIND, &key, &bytes, &blobs, store);
        finish(
            Installed {
                layer,
                command,
                reused: false,
                counts,
                packages: listed,
            },
            warn,
        )
        .map(Some)
    }

    /// Warns about (or with `strict`, refuses) the install scripts npm
    /// would have run.
    fn check_scripts(
        &self,
        selection: &Selection<'_>,
        strict: bool,
        warn: &mut dyn FnMut(String),
    ) -> Result<(), NpmError> {
        let mut list: Vec<String> = selection
            .install_scripts
            .iter()
            .map(|p| p.to_string())
            .collect();
        if !self.root_scripts.is_empty() {
            list.push(format!(
                "the project itself ({})",
                self.root_scripts.join(", ")
            ));
        } else if selection.root_install_script {
            list.push("the project itself".to_owned());
        }
        if list.is_empty() {
            return Ok(());
        }
        if strict {
            return Err(NpmError::InstallScripts { list });
        }
        warn(format!(
            "{} would run install scripts under npm ci, and hoist runs none (the lockfile says \
             only `hasInstallScript`: a preinstall, install or postinstall script, or a \
             binding.gyp that npm builds with node-gyp): {}; if the app needs what they make, \
             build it into the base or the app; --strict-scripts makes this an error",
            count_packages(list.len()),
            list.join(", ")
        ));
        Ok(())
    }

    /// One download job per tarball-kind entry, in lockfile order.
    fn jobs(&self, selection: &Selection<'_>, bins: &Bins) -> Result<Vec<Job>, NpmError> {
        let mut by_tarball = layout::bins_by_tarball(selection, bins);
        let mut jobs = Vec::new();
        for s in &selection.install {
            if !matches!(s.kind, Kind::Tarball) {
                continue;
            }
            let key = s.path.to_string();
            let integrity = s
                .package
                .integrity
                .clone()
                .ok_or_else(|| NpmError::MissingIntegrity { key: key.clone() })?;
            let name = s
                .package
                .name
                .clone()
                .or_else(|| s.path.name().map(str::to_owned))
                .unwrap_or_default();
            if let Some(resolved) = &s.package.resolved {
                if !(resolved.starts_with("https://") || resolved.starts_with("http://")) {
                    return Err(NpmError::UnsupportedSource {
                        key,
                        resolved: resolved.clone(),
                    });
                }
            }
            let url = self
                .npmrc
                .tarball_url(
                    &name,
                    s.package.version.as_deref(),
                    s.package.resolved.as_deref(),
                )
                .ok_or(NpmError::NoSource { key })?;
            jobs.push(Job {
                key: s.path.clone(),
                url,
                integrity,
                bins: by_tarball.remove(s.path).unwrap_or_default(),
            });
        }
        Ok(jobs)
    }
}

/// The packages a selection installs, as the SBOM lists them: each
/// tarball entry with the URL it is fetched from and its integrity's
/// hashes, and each bundled entry (it arrives in its parent's tarball, so
/// it has no URL or hash of its own).
fn packages_of(selection: &Selection<'_>, jobs: &[Job]) -> Vec<crate::deps::Package> {
    use super::integrity::Algorithm;
    use crate::deps::{Ecosystem, HashAlgorithm, Package, PackageHash};
    let urls: std::collections::HashMap<&str, &str> = jobs
        .iter()
        .map(|j| (j.key.as_str(), j.url.as_str()))
        .collect();
    selection
        .install
        .iter()
        .filter(|s| matches!(s.kind, Kind::Tarball | Kind::Bundled))
        .filter_map(|s| {
            let name = s
                .package
                .name
                .clone()
                .or_else(|| s.path.name().map(str::to_owned))?;
            let hashes = s
                .package
                .integrity
                .iter()
                .flat_map(|i| i.hashes())
                .map(|h| PackageHash {
                    algorithm: match h.algorithm() {
                        Algorithm::Sha1 => HashAlgorithm::Sha1,
                        Algorithm::Sha256 => HashAlgorithm::Sha256,
                        Algorithm::Sha384 => HashAlgorithm::Sha384,
                        Algorithm::Sha512 => HashAlgorithm::Sha512,
                    },
                    hex: h.hex(),
                })
                .collect();
            Some(Package {
                ecosystem: Ecosystem::Npm,
                name,
                version: s.package.version.clone().unwrap_or_default(),
                download: urls.get(s.path.as_str()).map(|u| (*u).to_owned()),
                file: None,
                path: Some(s.path.to_string()),
                hashes,
            })
        })
        .collect()
}

/// The layer cached under `key`, and its entry's bytes, when the store
/// has both.
fn cached(store: &Store, key: &str) -> Result<Option<(CacheEntry, Vec<u8>)>, NpmError> {
    let Some(bytes) = store.get_key(KEY_KIND, key)? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<CacheEntry>(&bytes)
        .ok()
        .filter(|e| store.has(&e.descriptor.digest))
        .map(|e| (e, bytes)))
}

/// The cache key of an npm layer: sha256 (hex) of a canonical JSON
/// document of what the layer depends on (see the module docs).
pub fn cache_key(
    opts: &InstallOptions<'_>,
    omit: Omit,
    target: &Target,
    selection: &Selection<'_>,
    bins: &Bins,
    in_project: &dyn Fn(&RelPath) -> bool,
) -> String {
    let packages: Vec<serde_json::Value> = selection
        .install
        .iter()
        .map(|s| {
            let p = s.package;
            let (kind, target) = match &s.kind {
                Kind::Tarball => ("tarball", None),
                Kind::Bundled => ("bundled", None),
                Kind::Link { target } => ("link", Some(target.as_str())),
                Kind::Workspace => ("workspace", None),
            };
            json!([
                s.path.as_str(),
                kind,
                p.integrity.as_ref().map(|i| i.strongest().to_string()),
                target,
                p.name,
                p.bin.as_ref().map(|b| match b {
                    Bin::Single(path) => json!(path),
                    Bin::Map(map) => json!(map),
                }),
                [
                    p.dev,
                    p.optional,
                    p.dev_optional,
                    p.peer,
                    p.has_install_script
                ],
            ])
        })
        .collect();
    let links: HashSet<&str> = selection
        .install
        .iter()
        .filter(|s| matches!(s.kind, Kind::Link { .. }))
        .map(|s| s.path.as_str())
        .collect();
    // Whether each `.bin` target inside a linked folder exists: the app's
    // files decide whether its link is made.
    let linked_bins: Vec<serde_json::Value> = bins
        .links
        .iter()
        .filter(|b| links.contains(b.package.as_str()))
        .map(|b| {
            let target = selection.install.iter().find_map(|s| match &s.kind {
                Kind::Link { target } if s.path == &b.package => Some(target.join(&b.file)),
                _ => None,
            });
            json!([b.link.as_str(), target.is_some_and(|t| in_project(&t))])
        })
        .collect();
    let doc = json!({
        "installer": format!("hoist-npm/{FORMAT_VERSION}"),
        "workdir": opts.workdir.absolute(),
        "omit": {"dev": omit.dev, "optional": omit.optional, "peer": omit.peer},
        "platform": {"os": target.os, "cpu": target.cpu, "libc": target.libc.map(Libc::as_str)},
        "compression": opts.compression.media_type(),
        "epoch": opts.epoch,
        "packages": packages,
        "linked_bins": linked_bins,
    });
    let bytes = serde_json::to_vec(&doc).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB_LOCK: &[u8] = include_bytes!("../../../testdata/web/package-lock.json");

    struct Change {
        workdir: &'static str,
        omit: Omit,
        cpu: &'static str,
        libc: Option<Libc>,
        epoch: u64,
        compression: Compression,
        strict_scripts: bool,
        no_cache: bool,
    }

    const BASE: Change = Change {
        workdir: "/app",
        omit: Omit::DEV,
        cpu: "amd64",
        libc: Some(Libc::Glibc),
        epoch: 0,
        compression: Compression::Gzip,
        strict_scripts: false,
        no_cache: false,
    };

    fn key_of(lock: &Lockfile, c: Change) -> String {
        let workdir = ImagePath::new(c.workdir).unwrap();
        let platform = Platform::parse(&format!("linux/{}", c.cpu)).unwrap();
        let opts = InstallOptions {
            workdir: &workdir,
            platform: &platform,
            libc: c.libc,
            dev: false,
            strict_scripts: c.strict_scripts,
            no_cache: c.no_cache,
            compression: c.compression,
            epoch: c.epoch,
            shared: None,
            scripts: None,
        };
        let target = Target::from_oci("linux", c.cpu, c.libc).unwrap();
        let selection = select(lock, c.omit, &target).unwrap();
        let bins = bin_links(lock, &selection).unwrap();
        cache_key(&opts, c.omit, &target, &selection, &bins, &|_| true)
    }

    #[test]
    fn cache_key_follows_what_the_layer_depends_on() {
        let lock = Lockfile::parse(WEB_LOCK).unwrap();
        let base = key_of(&lock, BASE);
        assert_eq!(base.len(), 64);
        assert_eq!(base, key_of(&lock, BASE), "stable");
        // Flags that do not change the layer leave the key alone.
        let same = [
            Change {
                strict_scripts: true,
                ..BASE
            },
            Change {
                no_cache: true,
                ..BASE
            },
        ];
        for c in same {
            assert_eq!(key_of(&lock, c), base);
        }
        let changed = [
            Change {
                omit: Omit::NOTHING,
                ..BASE
            },
            Change {
                cpu: "arm64",
                ..BASE
            },
            Change {
                libc: Some(Libc::Musl),
                ..BASE
            },
            Change { epoch: 1, ..BASE },
            Change {
                compression: Compression::Zstd,
                ..BASE
            },
            Change {
                workdir: "/srv",
                ..BASE
            },
        ];
        for (i, c) in changed.into_iter().enumerate() {
            assert_ne!(key_of(&lock, c), base, "change {i}");
        }
        // Another integrity for one package: another key.
        let mut other = lock.clone();
        let ms = other
            .packages
            .iter_mut()
            .find(|(k, _)| k.as_str() == "node_modules/ms")
            .unwrap()
            .1;
        ms.integrity = other_integrity();
        assert_ne!(key_of(&other, BASE), base);
        // A resolved URL (another registry) does not matter.
        let mut mirror = lock.clone();
        for p in mirror.packages.values_mut() {
            if let Some(r) = &mut p.resolved {
                *r = r.replace("registry.npmjs.org", "mirror.example.com");
            }
        }
        assert_eq!(key_of(&mirror, BASE), base);
    }

    fn other_integrity() -> Option<super::super::integrity::Integrity> {
        super::super::integrity::Integrity::parse(
            "sha512-6v4IHpk8LhlrMxoEJQsbdqP/X7h2og9ojpR20GiIPC2rrYLY5HSaZg3bXMqtfBm/DzmeGVV69LUsE8YvhOvDTw==",
        )
        .ok()
    }
}
