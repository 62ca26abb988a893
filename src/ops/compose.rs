//! `hoist build -f docker-compose.yml [-f docker-compose.prod.yml]
//! [SERVICE...]`: the compose files read as `docker compose` merges them,
//! one Dockerfile build job per service with a `build:` section, built
//! side by side like any jobs.

use std::path::{Path, PathBuf};

use crate::exec::RunSettings;
use crate::frontend::compose::{self, DockerfileSource, Options, RealFiles, ServiceBuild, Source};
use crate::image::Platform;
use crate::layer::Compression;
use crate::ops::batch::Job;
use crate::ops::build::OpsError;
use crate::ops::dockerfile::{self, DockerfileBuild};
use crate::registry;
use crate::store::Store;
use crate::transport::Transport;

/// Why a compose build cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{file}: cannot read it: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Compose(#[from] compose::Error),
    #[error("{at}: service `{service}`: {message}")]
    Service {
        at: String,
        service: String,
        message: String,
    },
}

/// What the command line adds to every service's build.
#[derive(Debug, Clone, Default)]
pub struct ComposeRequest {
    pub files: Vec<PathBuf>,
    /// SERVICE arguments: only those (default every service with a build).
    pub services: Vec<String>,
    pub profiles: Vec<String>,
    /// `--build-arg`: over each service's `args`.
    pub build_args: Vec<(String, String)>,
    /// Outputs every image goes to too (`--load`).
    pub outputs: Vec<Transport>,
    pub compression: Compression,
    /// `--platform`: over the services' platforms.
    pub platforms: Vec<Platform>,
    /// `--native=never`: every RUN runs in the sandbox as written.
    pub native: crate::frontend::dockerfile::native::Native,
}

/// The builds the files ask for: one job per service, and a line per
/// service skipped (it only names an image).
pub fn jobs(
    req: &ComposeRequest,
    run: &RunSettings,
    store: &Store,
    net: &dyn registry::Progress,
) -> Result<(Vec<Job>, Vec<String>), OpsError> {
    let mut sources = Vec::new();
    for f in &req.files {
        let bytes = std::fs::read(f).map_err(|source| ComposeError::Read {
            file: f.display().to_string(),
            source,
        })?;
        sources.push(Source {
            path: f.clone(),
            bytes,
        });
    }
    let opts = Options {
        profiles: req.profiles.clone(),
        services: req.services.clone(),
        env: std::env::vars().collect(),
        ..Options::default()
    };
    let planned = compose::load_builds(&sources, &opts, &RealFiles).map_err(ComposeError::from)?;
    let mut notes: Vec<String> = planned.warnings.clone();
    notes.extend(
        planned
            .skipped
            .iter()
            .map(|s| format!("service {}: {}", s.service, s.why)),
    );
    let mut jobs = Vec::new();
    for b in &planned.builds {
        let mut run = run.clone();
        run.no_cache |= b.no_cache;
        let build = service_build(b, req, &mut run)?;
        jobs.push(dockerfile::job(&build, &run, store, net)?);
    }
    Ok((jobs, notes))
}

fn refuse(b: &ServiceBuild, message: String) -> OpsError {
    OpsError::from(ComposeError::Service {
        at: b.at.clone(),
        service: b.service.clone(),
        message,
    })
}

/// One service's build as a Dockerfile build.
fn service_build(
    b: &ServiceBuild,
    req: &ComposeRequest,
    run: &mut RunSettings,
) -> Result<DockerfileBuild, OpsError> {
    if !b.context.is_dir() {
        return Err(refuse(
            b,
            format!(
                "build context {} is not a folder: fix `build.context`",
                b.context.display()
            ),
        ));
    }
    if let Some(compose::Network::None) = b.network {
        return Err(refuse(
            b,
            "build.network: none: hoist's sandbox shares the host's network; drop it".into(),
        ));
    }
    if !b.cache_from.is_empty() || !b.cache_to.is_empty() {
        let from: Vec<String> = b.cache_from.iter().map(|c| cache_ref(c)).collect();
        let to: Vec<String> = b.cache_to.iter().map(|c| cache_ref(c)).collect();
        if to.len() > 1 {
            return Err(refuse(
                b,
                "build.cache_to: hoist shares to one repository; keep one".into(),
            ));
        }
        // Hoist's registry cache, checked as `--cache-from`/`--cache-to` are.
        run.cache = crate::cache::CacheOptions::parse(&from, to.first().map(String::as_str))
            .map_err(|e| refuse(b, format!("build.cache_from/cache_to: {e}")))?;
    }
    let (file, inline) = match &b.dockerfile {
        DockerfileSource::Path(p) => (p.clone(), None),
        DockerfileSource::Inline(t) => (b.context.join("Dockerfile (inline)"), Some(t.clone())),
    };
    if inline.is_none() && !file.is_file() {
        return Err(refuse(
            b,
            format!(
                "{} does not exist: fix `build.dockerfile` (relative to the context)",
                file.display()
            ),
        ));
    }
    let mut args = b.args.clone();
    for (k, v) in &req.build_args {
        match args.iter_mut().find(|(ak, _)| ak == k) {
            Some(a) => a.1.clone_from(v),
            None => args.push((k.clone(), v.clone())),
        }
    }
    let mut tags = Vec::new();
    for t in std::iter::once(&b.image).chain(&b.tags) {
        let n = crate::transport::normalize_name(t)
            .map_err(|e| refuse(b, format!("image name `{t}`: {e}")))?;
        if !tags.contains(&n) {
            tags.push(n);
        }
    }
    let platforms = match req.platforms.is_empty() {
        false => req.platforms.clone(),
        true => b
            .platforms
            .iter()
            .map(|p| Platform::parse(p).map_err(|e| refuse(b, format!("platform `{p}`: {e}"))))
            .collect::<Result<_, _>>()?,
    };
    Ok(DockerfileBuild {
        file,
        inline,
        context: b.context.clone(),
        build_args: args,
        target: b.target.clone(),
        name: b.service.clone(),
        tags,
        outputs: req.outputs.clone(),
        labels: b.labels.clone(),
        platforms,
        compression: req.compression,
        native: req.native,
        secrets: b
            .secrets
            .iter()
            .map(|sec| {
                let source = match &sec.source {
                    compose::SecretSource::File(p) => crate::exec::SecretSource::File(p.clone()),
                    compose::SecretSource::Env(v) => crate::exec::SecretSource::Env(v.clone()),
                };
                (sec.id.clone(), source)
            })
            .collect(),
    })
}

/// A `cache_from`/`cache_to` entry's repository: `type=registry,ref=R`
/// or a bare reference.
fn cache_ref(s: &str) -> String {
    s.split(',')
        .find_map(|kv| kv.strip_prefix("ref="))
        .unwrap_or(s)
        .to_owned()
}

/// Whether `path` names a compose file: `*.yml` / `*.yaml`.
pub fn is_compose_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yml" | "yaml")
    )
}

impl From<ComposeError> for OpsError {
    fn from(e: ComposeError) -> Self {
        OpsError::Compose(Box::new(e))
    }
}
