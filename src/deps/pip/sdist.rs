//! Wheels built from sdists in the sandbox (`sdists = "sandbox"`).
//!
//! A version that has only an sdist needs a build, and a build runs the
//! project's own code: it happens in hoist's rootless sandbox, on the
//! image's own filesystem (the base and the `[[run]]` steps), with the
//! image's own Python, so that an extension module links against the
//! image's libraries, never the host's. The image needs no pip: hoist is
//! the PEP 517 frontend.
//!
//! 1. The sdist is downloaded and checked like a wheel
//!    ([`super::download`]) and its `pyproject.toml` read natively
//!    ([`BuildSystem::parse`]): PEP 518 `requires` and PEP 517
//!    `build-backend`, or setuptools' legacy backend when it says none.
//! 2. The build requirements are resolved for the image's Python by the
//!    same resolver and indexes as the project's, downloaded as wheels,
//!    and installed by hoist's wheel installer into a layer of their own
//!    under [`BUILD_ENV`] (build isolation, as pip's, without pip).
//! 3. That layer goes on top of the ground, the sdist is copied in, and
//!    `python3 -c` runs the embedded frontend script
//!    (`sdist_frontend.py`), which unpacks the sdist under `/tmp`, checks
//!    what `get_requires_for_build_wheel` asks for, and calls
//!    `build_wheel`. The wheel is taken from the root folder before the
//!    sandbox's scratch folder goes, checked (its name, version and tags
//!    must be the sdist's and fit the image) and stored.
//!
//! The wheel is kept under a `pip-built-wheel` entry keyed by the sdist's
//! sha256, the ground and the interpreter ([`Builder::key`]), written only
//! once the wheel is stored: a rebuild, and `--offline`, take it from
//! there without running anything.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use pep508_rs::{PackageName, Requirement};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::dist::{DistFile, DistKind, Location};
use super::download::{self, DownloadError};
use super::env::{PythonEnv, Scheme};
use super::index::{sha256_digest, Index};
use super::install::normalize;
use super::resolve::{self, Requested, ResolveError, ResolveInput, Source};
use super::tags::{self, WheelFilename};
use super::wheel::{self, WheelError, WheelInput};
use crate::digest::Digest;
use crate::layer::{Compression, ImagePath};
use crate::sandbox::{self, Ground, SandboxError};
use crate::store::{Store, StoreError};

/// The store's entry kind for wheels built from sdists.
pub const BUILT_KEY_KIND: &str = "pip-built-wheel";

/// The version of the build recipe (frontend, environment); part of every
/// built wheel's key.
const BUILDER_VERSION: u32 = 1;

/// Where the build requirements are installed in the sandbox (on
/// `PYTHONPATH`), and where the sdist and the wheel go.
pub const BUILD_ENV: &str = "hoist-build/env";
const BUILD_IN: &str = "hoist-build/in";
const BUILD_OUT: &str = "hoist-build/out";

/// The PEP 517 frontend the image's Python runs.
const FRONTEND: &str = include_str!("sdist_frontend.py");

/// The backend PEP 517 says to assume when pyproject.toml names none.
const LEGACY_BACKEND: &str = "setuptools.build_meta:__legacy__";

/// What such a project needs (pip's defaults): setuptools, and `wheel`,
/// which setuptools before 70.1 asks for to build a wheel.
const LEGACY_REQUIRES: [&str; 2] = ["setuptools>=40.8.0", "wheel"];

/// The largest pyproject.toml read from an sdist.
const MAX_PYPROJECT_BYTES: u64 = 1 << 20;

/// Zip timestamps in the built wheel (setuptools and wheel honour it):
/// 1980-01-01, the earliest a zip can hold.
const SOURCE_DATE_EPOCH: &str = "315532800";

#[derive(Debug, thiserror::Error)]
pub enum SdistError {
    #[error("{sdist}: {why}")]
    BuildSystem { sdist: String, why: String },
    #[error("reading {sdist}: {why}")]
    Archive { sdist: String, why: String },
    // Causes are part of each message here, never a `#[source]`: the CLI
    // prints the chain, and would say them twice.
    #[error("resolving its build requirements ({requires}): {why}")]
    Requires {
        requires: String,
        why: Box<ResolveError>,
    },
    #[error(transparent)]
    Download(#[from] DownloadError),
    #[error("installing its build requirements: {0}")]
    Env(WheelError),
    #[error("the build of {sdist} {how}; its output ends:\n{output}")]
    Failed {
        sdist: String,
        how: String,
        output: String,
    },
    #[error("the sandbox: {0}")]
    Sandbox(SandboxError),
    #[error("the build of {sdist} {why}")]
    Output { sdist: String, why: String },
    #[error(
        "offline: {sdist} has not been built for this image yet, and building it needs the \
         index; run once online"
    )]
    Offline { sdist: String },
    #[error(
        "{sdist} has sha256 {actual}, which is none of the requirement's --hash values \
         ({allowed})"
    )]
    Hash {
        sdist: String,
        actual: String,
        allowed: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A PEP 517 backend reference, `module.path:object.path`, checked to be
/// dotted Python identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend(String);

impl Backend {
    pub fn parse(s: &str) -> Result<Backend, String> {
        let dotted = |part: &str| {
            !part.is_empty()
                && part.split('.').all(|id| {
                    id.chars()
                        .next()
                        .is_some_and(|c| c.is_alphabetic() || c == '_')
                        && id.chars().all(|c| c.is_alphanumeric() || c == '_')
                })
        };
        let (module, object) = match s.split_once(':') {
            Some((m, o)) => (m, Some(o)),
            None => (s, None),
        };
        if dotted(module) && object.is_none_or(dotted) {
            Ok(Backend(s.to_owned()))
        } else {
            Err(format!(
                "build-backend `{s}` is not a `module.path` or `module.path:object`"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An sdist's `[build-system]`: what to install, and which backend to
/// call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSystem {
    pub requires: Vec<Requirement>,
    pub backend: Backend,
    /// PEP 517 in-tree backends: folders of the source tree, relative.
    pub backend_path: Vec<String>,
}

#[derive(Deserialize)]
struct PyProject {
    #[serde(rename = "build-system")]
    build_system: Option<RawBuildSystem>,
}

#[derive(Deserialize)]
struct RawBuildSystem {
    requires: Option<Vec<String>>,
    #[serde(rename = "build-backend")]
    build_backend: Option<String>,
    #[serde(rename = "backend-path", default)]
    backend_path: Vec<String>,
}

impl BuildSystem {
    /// What pip assumes for a project without pyproject.toml, or without
    /// a `[build-system]` table in it.
    pub fn legacy() -> BuildSystem {
        BuildSystem {
            requires: LEGACY_REQUIRES
                .iter()
                .filter_map(|r| r.parse().ok())
                .collect(),
            backend: Backend(LEGACY_BACKEND.to_owned()),
            backend_path: Vec::new(),
        }
    }

    /// Reads `[build-system]` from pyproject.toml's bytes (`None`: the
    /// sdist has none). PEP 518: a table without `requires` is an error;
    /// PEP 517: without `build-backend`, setuptools' legacy backend.
    pub fn parse(pyproject: Option<&[u8]>) -> Result<BuildSystem, String> {
        let Some(bytes) = pyproject else {
            return Ok(BuildSystem::legacy());
        };
        let text = std::str::from_utf8(bytes).map_err(|e| format!("pyproject.toml: {e}"))?;
        let doc: PyProject = toml::from_str(text).map_err(|e| format!("pyproject.toml: {e}"))?;
        let Some(raw) = doc.build_system else {
            return Ok(BuildSystem::legacy());
        };
        let requires = raw.requires.ok_or(
            "pyproject.toml has a [build-system] table without `requires` (PEP 518 says it \
             must have one)",
        )?;
        let requires = requires
            .iter()
            .map(|r| {
                super::requirements::parse_pep508(r)
                    .map_err(|e| format!("pyproject.toml: build requirement `{r}`: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let backend = match raw.build_backend {
            Some(b) => Backend::parse(&b).map_err(|e| format!("pyproject.toml: {e}"))?,
            None => Backend(LEGACY_BACKEND.to_owned()),
        };
        for p in &raw.backend_path {
            if p.starts_with('/') || p.split('/').any(|c| c == "..") {
                return Err(format!(
                    "pyproject.toml: backend-path `{p}` leaves the source tree"
                ));
            }
        }
        Ok(BuildSystem {
            requires,
            backend,
            backend_path: raw.backend_path,
        })
    }
}

/// The sdist's top-level `pyproject.toml` (`<name>-<version>/pyproject.toml`),
/// if it has one. Reads `.tar.gz`, `.tgz`, `.tar` and `.zip` sdists.
pub fn pyproject_of(
    filename: &str,
    archive: impl Read + std::io::Seek,
) -> Result<Option<Vec<u8>>, String> {
    let top_level = |path: &str| {
        let parts: Vec<&str> = path
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        parts.len() == 2 && parts[1] == "pyproject.toml"
    };
    let read = |r: &mut dyn Read| -> Result<Vec<u8>, String> {
        let mut bytes = Vec::new();
        r.take(MAX_PYPROJECT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        if bytes.len() as u64 > MAX_PYPROJECT_BYTES {
            return Err("its pyproject.toml is larger than 1 MiB".into());
        }
        Ok(bytes)
    };
    let tar_of = |r: Box<dyn Read + '_>| -> Result<Option<Vec<u8>>, String> {
        let mut tar = tar::Archive::new(r);
        for entry in tar.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| e.to_string())?;
            let path = entry.path().map_err(|e| e.to_string())?;
            if entry.header().entry_type().is_file() && top_level(&path.to_string_lossy()) {
                return read(&mut entry).map(Some);
            }
        }
        Ok(None)
    };
    let lower = filename.to_ascii_lowercase();
    if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        tar_of(Box::new(flate2::read::GzDecoder::new(archive)))
    } else if lower.ends_with(".tar") {
        tar_of(Box::new(archive))
    } else if lower.ends_with(".zip") {
        let mut zip = zip::ZipArchive::new(archive).map_err(|e| e.to_string())?;
        let name = zip.file_names().find(|n| top_level(n)).map(str::to_owned);
        match name {
            None => Ok(None),
            Some(n) => {
                let mut f = zip.by_name(&n).map_err(|e| e.to_string())?;
                read(&mut f).map(Some)
            }
        }
    } else {
        Err("hoist builds .tar.gz, .tgz, .tar and .zip sdists only".into())
    }
}

/// What [`BUILT_KEY_KIND`] entries hold: the wheel's name and blob.
#[derive(Debug, Serialize, Deserialize)]
struct BuiltEntry {
    filename: String,
    digest: Digest,
    size: u64,
}

/// Builds sdists into wheels for one image.
pub struct Builder<'a> {
    pub index: &'a Index,
    pub store: &'a Store,
    pub env: &'a PythonEnv,
    pub ground: &'a Ground,
    /// `--hash` values by normalised project name (hash-checking mode):
    /// they apply to the sdist.
    pub hashes: BTreeMap<String, Vec<String>>,
    /// Sandbox builds run (cache hits not counted).
    built: AtomicUsize,
    /// The sdist each wheel handed out was built from, by wheel name.
    sources: std::sync::Mutex<BTreeMap<String, String>>,
}

impl<'a> Builder<'a> {
    pub fn new(
        index: &'a Index,
        store: &'a Store,
        env: &'a PythonEnv,
        ground: &'a Ground,
        hashes: BTreeMap<String, Vec<String>>,
    ) -> Builder<'a> {
        Builder {
            index,
            store,
            env,
            ground,
            hashes,
            built: AtomicUsize::new(0),
            sources: Default::default(),
        }
    }

    /// The sdist a wheel this builder handed out was built from.
    pub fn sdist_of(&self, wheel: &str) -> Option<String> {
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        sources.get(wheel).cloned()
    }

    /// How many sdists were built in the sandbox so far.
    pub fn built(&self) -> usize {
        self.built.load(Ordering::Relaxed)
    }

    /// The built wheel's key: everything its bytes depend on.
    pub fn key(&self, sdist_sha256: &str) -> String {
        let env = self.env;
        let doc = json!({
            "builder": format!("hoist-sdist/{BUILDER_VERSION}"),
            "sdist": sdist_sha256.to_ascii_lowercase(),
            "ground": self.ground.key(),
            "interpreter": env.interpreter.as_str(),
            "python": env.full_version.to_string(),
            "target": format!("{:?}", env.target),
        });
        hex::encode(Sha256::digest(doc.to_string()))
    }

    /// A wheel of `name` built from `sdist` for the image, from the store
    /// or from a build; `source` resolves the build requirements.
    pub fn wheel(
        &self,
        source: &dyn Source,
        name: &PackageName,
        sdist: &DistFile,
    ) -> Result<DistFile, SdistError> {
        let wheel = self.find_or_build(source, name, sdist)?;
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        sources.insert(wheel.filename.clone(), sdist.filename.clone());
        Ok(wheel)
    }

    fn find_or_build(
        &self,
        source: &dyn Source,
        name: &PackageName,
        sdist: &DistFile,
    ) -> Result<DistFile, SdistError> {
        let allowed = self
            .hashes
            .get(&normalize(name.as_ref()))
            .cloned()
            .unwrap_or_default();
        if let Some(hex) = &sdist.sha256 {
            if let Some(found) = self.cached(&self.key(hex))? {
                self.check_hash(sdist, hex, &allowed)?;
                return Ok(found);
            }
        }
        let digest = download::download(self.index, self.store, sdist, &allowed, &|_| {})?;
        let key = self.key(digest.hex());
        if let Some(found) = self.cached(&key)? {
            return Ok(found);
        }
        if self.index.offline() {
            return Err(SdistError::Offline {
                sdist: sdist.filename.clone(),
            });
        }
        let built = self.build(source, name, sdist, &digest)?;
        self.built.fetch_add(1, Ordering::Relaxed);
        let entry = serde_json::to_vec(&built).unwrap_or_default();
        let file = self.dist_file(&built).ok_or_else(|| SdistError::Output {
            sdist: sdist.filename.clone(),
            why: format!("made `{}`, which is not a wheel's name", built.filename),
        })?;
        self.store.put_key(BUILT_KEY_KIND, &key, &entry)?;
        Ok(file)
    }

    fn check_hash(
        &self,
        sdist: &DistFile,
        hex: &str,
        allowed: &[String],
    ) -> Result<(), SdistError> {
        let actual = sha256_digest(hex);
        if allowed.is_empty() || allowed.iter().any(|a| sha256_digest(a) == actual) {
            return Ok(());
        }
        Err(SdistError::Hash {
            sdist: sdist.filename.clone(),
            actual: hex.to_owned(),
            allowed: allowed.join(", "),
        })
    }

    /// The wheel a key names, when the store still has it.
    fn cached(&self, key: &str) -> Result<Option<DistFile>, SdistError> {
        let entry = self
            .store
            .get_key(BUILT_KEY_KIND, key)?
            .and_then(|b| serde_json::from_slice::<BuiltEntry>(&b).ok())
            .filter(|e| self.store.has(&e.digest));
        Ok(entry.and_then(|e| self.dist_file(&e)))
    }

    /// A built wheel as the resolver and downloader take it: a local file
    /// (its blob) with its sha256, so both find it in the store.
    fn dist_file(&self, built: &BuiltEntry) -> Option<DistFile> {
        let kind = DistKind::Wheel(WheelFilename::parse(&built.filename).ok()?);
        Some(DistFile {
            filename: built.filename.clone(),
            kind,
            location: Location::Path(self.store.blob_path(&built.digest)),
            sha256: Some(built.digest.hex().to_owned()),
            requires_python: None,
            yanked: false,
            metadata: None,
            size: Some(built.size),
        })
    }

    /// Runs the build: the build environment's layer, then the frontend
    /// in the sandbox on it.
    fn build(
        &self,
        source: &dyn Source,
        name: &PackageName,
        sdist: &DistFile,
        digest: &Digest,
    ) -> Result<BuiltEntry, SdistError> {
        let bad = |why: String| SdistError::BuildSystem {
            sdist: sdist.filename.clone(),
            why,
        };
        let blob = self.store.open_blob(digest)?;
        let pyproject =
            pyproject_of(&sdist.filename, std::io::BufReader::new(blob)).map_err(|why| {
                SdistError::Archive {
                    sdist: sdist.filename.clone(),
                    why,
                }
            })?;
        let system = BuildSystem::parse(pyproject.as_deref()).map_err(bad)?;
        let ground = match self.env_layer(source, sdist, &system)? {
            Some(layer) => self.ground.with(&layer),
            None => self.ground.clone(),
        };
        let sdist_in = format!("{BUILD_IN}/{}", safe_name(&sdist.filename));
        let step = sandbox::Step {
            command: vec![
                self.env.interpreter.absolute(),
                "-c".into(),
                FRONTEND.into(),
                format!("/{sdist_in}"),
                format!("/{BUILD_OUT}"),
                system.backend.as_str().to_owned(),
                serde_json::to_string(&system.backend_path).unwrap_or_else(|_| "[]".into()),
            ],
            env: vec![
                ("PYTHONPATH".into(), format!("/{BUILD_ENV}")),
                ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
                ("PYTHONNOUSERSITE".into(), "1".into()),
                ("SOURCE_DATE_EPOCH".into(), SOURCE_DATE_EPOCH.into()),
                ("HOME".into(), "/tmp".into()),
                (
                    "PATH".into(),
                    format!("/{BUILD_ENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
                ),
            ],
            workdir: Some("/tmp".into()),
            user: None,
            timeout: None,
            mounts: Vec::new(),
            secret_env: Vec::new(),
        };
        let inputs = [sandbox::Input {
            from: self.store.blob_path(digest),
            to: sdist_in,
        }];
        let taken = sandbox::run_in(self.store, &ground, &step, &inputs, |root, _| {
            Ok(self.take_wheel(root, &sdist.filename))
        });
        match taken {
            Ok(result) => result.and_then(|w| self.check_wheel(name, sdist, w)),
            Err(SandboxError::Failed { how, output, .. }) => Err(SdistError::Failed {
                sdist: sdist.filename.clone(),
                how,
                output,
            }),
            Err(e) => Err(SdistError::Sandbox(e)),
        }
    }

    /// Resolves, downloads and installs the build requirements into a
    /// layer under [`BUILD_ENV`]; `None` when there are none.
    fn env_layer(
        &self,
        source: &dyn Source,
        sdist: &DistFile,
        system: &BuildSystem,
    ) -> Result<Option<crate::image::Descriptor>, SdistError> {
        if system.requires.is_empty() {
            return Ok(None);
        }
        let mut input = ResolveInput::for_env(self.env);
        let origin = format!("{} pyproject.toml [build-system] requires", sdist.filename);
        input.requirements = system
            .requires
            .iter()
            .map(|r| Requested {
                requirement: r.clone(),
                file: origin.clone(),
                line: 0,
            })
            .collect();
        let requires_err = |why| SdistError::Requires {
            requires: system
                .requires
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            why: Box::new(why),
        };
        let resolution = resolve::resolve(source, &input).map_err(requires_err)?;
        let files: Vec<(DistFile, Vec<String>)> = resolution
            .packages
            .iter()
            .map(|p| (p.wheel.clone(), Vec::new()))
            .collect();
        let digests = download::download_all(self.index, self.store, &files, &|_| {})?;
        let wheels: Vec<WheelInput> = files
            .iter()
            .zip(digests)
            .map(|((f, _), blob)| WheelInput {
                filename: f.filename.clone(),
                blob,
                requested: false,
            })
            .collect();
        let env = build_env(self.env).map_err(|why| SdistError::Output {
            sdist: sdist.filename.clone(),
            why,
        })?;
        let written = wheel::write_layer(
            self.store,
            &wheels,
            &env,
            super::install::INSTALLER,
            Compression::None,
            0,
        )
        .map_err(SdistError::Env)?;
        Ok(Some(written.layer.descriptor))
    }

    /// The one wheel the frontend left in [`BUILD_OUT`], into the store.
    fn take_wheel(&self, root: &Path, sdist: &str) -> Result<BuiltEntry, SdistError> {
        let out = root.join(BUILD_OUT);
        let output_err = |why: String| SdistError::Output {
            sdist: sdist.to_owned(),
            why,
        };
        let mut wheels = Vec::new();
        for entry in
            fs_err::read_dir(&out).map_err(|e| output_err(format!("left no output: {e}")))?
        {
            let entry = entry.map_err(|e| output_err(e.to_string()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".whl") && entry.file_type().is_ok_and(|t| t.is_file()) {
                wheels.push((name, entry.path()));
            }
        }
        let [(filename, path)] = <[_; 1]>::try_from(wheels).map_err(|w: Vec<_>| {
            output_err(format!("left {} wheels in /{BUILD_OUT}, not one", w.len()))
        })?;
        let mut f = fs_err::File::open(&path).map_err(|e| output_err(e.to_string()))?;
        let mut w = self.store.writer()?;
        std::io::copy(&mut f, &mut w).map_err(|e| output_err(e.to_string()))?;
        let (digest, size) = w.finish(None, None)?;
        Ok(BuiltEntry {
            filename,
            digest,
            size,
        })
    }

    /// The wheel must be the sdist's project and version, and fit the
    /// image.
    fn check_wheel(
        &self,
        name: &PackageName,
        sdist: &DistFile,
        built: BuiltEntry,
    ) -> Result<BuiltEntry, SdistError> {
        let why = |why: String| SdistError::Output {
            sdist: sdist.filename.clone(),
            why,
        };
        let w = WheelFilename::parse(&built.filename)
            .map_err(|e| why(format!("made `{}`: {e}", built.filename)))?;
        if w.name != *name || w.version != *sdist.version() {
            return Err(why(format!(
                "made `{}`, which is not {name} {}",
                built.filename,
                sdist.version()
            )));
        }
        if tags::best_tag_rank(&w.tags(), &self.env.target).is_none() {
            return Err(why(format!(
                "made `{}`, whose tags do not fit the image",
                built.filename
            )));
        }
        Ok(built)
    }
}

/// The image's Python with every scheme folder under [`BUILD_ENV`]: the
/// build requirements' files, kept apart from the image's.
fn build_env(env: &PythonEnv) -> Result<PythonEnv, String> {
    let p = |rel: &str| ImagePath::new(rel).map_err(|e| e.to_string());
    Ok(PythonEnv {
        scheme: Scheme {
            purelib: p(BUILD_ENV)?,
            platlib: p(BUILD_ENV)?,
            scripts: p(&format!("{BUILD_ENV}/bin"))?,
            data: p(&format!("{BUILD_ENV}/data"))?,
            headers: p(&format!("{BUILD_ENV}/include"))?,
            home: None,
        },
        ..env.clone()
    })
}

/// The sdist's file name as one safe path component.
fn safe_name(filename: &str) -> String {
    filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_systems() {
        let legacy = BuildSystem::legacy();
        let reqs =
            |b: &BuildSystem| -> Vec<String> { b.requires.iter().map(|r| r.to_string()).collect() };
        assert_eq!(reqs(&legacy), ["setuptools>=40.8.0", "wheel"]);
        // (pyproject.toml, Ok((requires, backend, backend-path)) or Err(part of message))
        type Want = Result<(Vec<&'static str>, &'static str, Vec<&'static str>), &'static str>;
        let cases: Vec<(Option<&str>, Want)> = vec![
            (
                None,
                Ok((
                    vec!["setuptools>=40.8.0", "wheel"],
                    LEGACY_BACKEND,
                    vec![],
                )),
            ),
            (
                Some("[project]\nname = 'x'\n"),
                Ok((
                    vec!["setuptools>=40.8.0", "wheel"],
                    LEGACY_BACKEND,
                    vec![],
                )),
            ),
            (
                Some("[build-system]\nrequires = ['flit_core >=3.2,<4']\nbuild-backend = 'flit_core.buildapi'\n"),
                Ok((vec!["flit-core>=3.2,<4"], "flit_core.buildapi", vec![])),
            ),
            (
                Some("[build-system]\nrequires = ['setuptools>=61']\n"),
                Ok((vec!["setuptools>=61"], LEGACY_BACKEND, vec![])),
            ),
            (
                Some("[build-system]\nrequires = []\nbuild-backend = 'backend'\nbackend-path = ['_build']\n"),
                Ok((vec![], "backend", vec!["_build"])),
            ),
            (
                Some("[build-system]\nrequires = ['hatchling']\nbuild-backend = 'hatchling.build:Backend.x'\n"),
                Ok((vec!["hatchling"], "hatchling.build:Backend.x", vec![])),
            ),
            (
                Some("[build-system]\nbuild-backend = 'x'\n"),
                Err("without `requires`"),
            ),
            (
                Some("[build-system]\nrequires = ['not a requirement!']\n"),
                Err("build requirement `not a requirement!`"),
            ),
            (
                Some("[build-system]\nrequires = []\nbuild-backend = 'os; rm -rf'\n"),
                Err("is not a `module.path`"),
            ),
            (
                Some("[build-system]\nrequires = []\nbackend-path = ['../up']\n"),
                Err("leaves the source tree"),
            ),
            (Some("[build-system\n"), Err("pyproject.toml:")),
        ];
        for (text, want) in cases {
            let got = BuildSystem::parse(text.map(str::as_bytes));
            match (got, want) {
                (Ok(b), Ok((requires, backend, path))) => {
                    assert_eq!(reqs(&b), requires, "{text:?}");
                    assert_eq!(b.backend.as_str(), backend, "{text:?}");
                    assert_eq!(b.backend_path, path, "{text:?}");
                }
                (Err(e), Err(part)) => assert!(e.contains(part), "{text:?}: {e}"),
                (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let gz = flate2::write::GzEncoder::new(&mut out, flate2::Compression::fast());
            let mut tar = tar::Builder::new(gz);
            for (path, body) in files {
                let mut h = tar::Header::new_gnu();
                h.set_size(body.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                tar.append_data(&mut h, path, *body).unwrap();
            }
            tar.into_inner().unwrap().finish().unwrap();
        }
        out
    }

    #[test]
    fn pyproject_in_archives() {
        let py = b"[build-system]\nrequires = []\n".as_slice();
        // (file name, archive, Ok(pyproject.toml) or Err(part of message))
        type Case<'a> = (&'a str, Vec<u8>, Result<Option<&'a [u8]>, &'a str>);
        let cases: Vec<Case> = vec![
            (
                "x-1.0.tar.gz",
                tar_gz(&[
                    ("x-1.0/setup.py", b"".as_slice()),
                    ("x-1.0/pyproject.toml", py),
                ]),
                Ok(Some(py)),
            ),
            (
                "x-1.0.tar.gz",
                tar_gz(&[
                    ("x-1.0/setup.py", b"".as_slice()),
                    ("x-1.0/sub/pyproject.toml", py),
                ]),
                Ok(None),
            ),
            (
                "x-1.0.zip",
                super::super::index::test_server::zip_of(&[("x-1.0/pyproject.toml", py)]),
                Ok(Some(py)),
            ),
            (
                "x-1.0.tar.bz2",
                Vec::new(),
                Err(".tar.gz, .tgz, .tar and .zip"),
            ),
            ("x-1.0.tar.gz", b"not gzip".to_vec(), Err("")),
        ];
        for (name, bytes, want) in cases {
            let got = pyproject_of(name, std::io::Cursor::new(bytes));
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g.as_deref(), w, "{name}"),
                (Err(e), Err(part)) => assert!(e.contains(part), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn backends_and_names() {
        for (s, ok) in [
            ("setuptools.build_meta", true),
            ("setuptools.build_meta:__legacy__", true),
            ("a:b.c", true),
            ("", false),
            ("a:", false),
            ("a b", false),
            ("1a", false),
        ] {
            assert_eq!(Backend::parse(s).is_ok(), ok, "{s}");
        }
        assert_eq!(safe_name("docopt-0.6.2.tar.gz"), "docopt-0.6.2.tar.gz");
        assert_eq!(safe_name("a/b c.zip"), "a_b_c.zip");
    }
}
