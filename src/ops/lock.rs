//! `hoist lock`: resolve a Python project for its base's platforms and
//! write pylock.toml, so later builds install exactly those wheels.
//!
//! A resolution depends on the image, not the host: the interpreter's
//! version, the C library and the CPU decide which versions and wheels
//! fit. So the base is read as a build reads it (its facts, not its layers'
//! bytes where a registry base allows) once per platform, each platform is
//! resolved on its own, and the resolutions are merged into one lock (see
//! [`crate::deps::pip::install::lock_of`]). The file is written to a
//! temporary name and renamed, so a failed lock leaves the old one intact.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::deps::pip::env::PythonEnv;
use crate::deps::pip::install::{lock_of, Pin};
use crate::deps::pip::project::{Project, REQUIREMENTS_NAME};
use crate::deps::DepsError;
use crate::exec::build::{load_base, registry_client};
use crate::exec::{BuildError, BuildOptions, Event};
use crate::facts;
use crate::image::Platform;
use crate::registry;
use crate::store::Store;

/// What `hoist lock` wrote.
#[derive(Debug, Clone)]
pub struct Locked {
    pub path: PathBuf,
    /// Packages per platform, in the order the platforms were given.
    pub packages: Vec<(Platform, usize)>,
    /// Entries in the file.
    pub entries: usize,
}

/// Resolves `opts.context`'s requirements for each platform of `opts.base`
/// and writes the lock to `output`.
pub fn lock(
    opts: &BuildOptions,
    platforms: &[Platform],
    output: &Path,
    store: &Store,
    report: &mut dyn FnMut(Event),
    net: &dyn registry::Progress,
) -> Result<Locked, BuildError> {
    let project = Project::read(&opts.context, opts.deps.dev)
        .map_err(DepsError::from)?
        .ok_or_else(|| {
            DepsError::NoRequirements(format!(
                "{} (hoist lock reads {REQUIREMENTS_NAME})",
                opts.context.display()
            ))
        })?;
    let mut resolutions: Vec<(PythonEnv, Vec<Pin>)> = Vec::new();
    for platform in platforms {
        let mut one = opts.clone();
        one.platform = platform.clone();
        let client = registry_client(&one, true)?;
        let (base, remote) = load_base(&one, store, client.as_ref(), net)?;
        report(Event::Base {
            source: base.source.clone(),
            digest: base.manifest_digest.clone(),
            platform: base.platform.clone(),
            layers: base.layers.len(),
        });
        let mut fetched = remote.is_none();
        let facts = facts::read_facts_cached(
            store,
            &base.manifest_digest,
            &base.layers,
            &mut || -> Result<(), BuildError> {
                if let (false, Some((c, r))) = (fetched, client.as_ref().zip(remote.as_ref())) {
                    c.fetch_blobs(r, &base.layers, store, net)?;
                    let diff_ids = &base.config.rootfs.diff_ids;
                    crate::layer::verify::verify_base(store, &base.source, &base.layers, diff_ids)
                        .map_err(registry::RegistryError::from)?;
                    fetched = true;
                }
                Ok(())
            },
        )?;
        let config_env = base
            .config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default();
        let env =
            PythonEnv::from_facts(&facts, &base.platform, &config_env).map_err(DepsError::from)?;
        let pins = project
            .resolve(
                &env,
                store,
                opts.deps.offline,
                opts.deps.refresh,
                &mut |w| report(Event::Warning(w)),
            )
            .map_err(DepsError::from)?;
        resolutions.push((env, pins));
    }
    let views: Vec<(&PythonEnv, Vec<Pin>)> = resolutions
        .iter()
        .map(|(e, p)| (e, relative_paths(p, &opts.context)))
        .collect();
    let lock = lock_of(&views).map_err(DepsError::from)?;
    write_atomically(output, lock.to_toml().as_bytes())?;
    Ok(Locked {
        path: output.to_owned(),
        packages: platforms
            .iter()
            .cloned()
            .zip(resolutions.iter().map(|(_, p)| p.len()))
            .collect(),
        entries: lock.packages.len(),
    })
}

/// Local wheels under the project folder are recorded relative to it, so
/// the lock works from any checkout.
fn relative_paths(pins: &[Pin], root: &Path) -> Vec<Pin> {
    pins.iter()
        .map(|p| {
            let mut p = p.clone();
            if let Some(rel) = p.path.as_ref().and_then(|a| a.strip_prefix(root).ok()) {
                p.path = Some(rel.to_owned());
            }
            p
        })
        .collect()
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let io = |source: std::io::Error| BuildError::WriteFile {
        path: path.to_owned(),
        source,
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
