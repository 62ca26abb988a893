//! `hoist build -f Dockerfile`: a Dockerfile (and the build's flags) ->
//! the build graph -> one build job, run like any other.
//!
//! The Dockerfile is read twice over: once to learn which images its
//! stages start from, whose configs (Env, WorkingDir, User) the expansion
//! and the stages need, then for real with them. Both passes are the
//! frontend's pure functions; only the configs come from the registry or
//! a local transport, through the executor's base resolution.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::deps::DepsOptions;
use crate::exec::{AppOptions, BuildError, BuildOptions, RunSettings};
use crate::frontend::dockerfile::expand::{self, Inputs};
use crate::frontend::dockerfile::lower::{self, BaseConfig, LowerInputs};
use crate::frontend::dockerfile::shell::Vars;
use crate::frontend::dockerfile::{instructions, parser, DockerfileError};
use crate::graph::config::ConfigSettings;
use crate::image::Platform;
use crate::layer::Compression;
use crate::ops::batch::Job;
use crate::ops::build::OpsError;
use crate::reference::Reference;
use crate::registry;
use crate::store::Store;
use crate::transport::Transport;

/// One Dockerfile build as the command line (or a compose service) asks.
#[derive(Debug, Clone)]
pub struct DockerfileBuild {
    /// The Dockerfile's path (for errors and its `.dockerignore`).
    pub file: PathBuf,
    /// The Dockerfile's text when it is not read from `file`
    /// (`dockerfile_inline`).
    pub inline: Option<String>,
    pub context: PathBuf,
    pub build_args: Vec<(String, String)>,
    pub target: Option<String>,
    /// The image's name in reports.
    pub name: String,
    pub tags: Vec<String>,
    pub outputs: Vec<Transport>,
    /// Labels set on top of the Dockerfile's.
    pub labels: BTreeMap<String, String>,
    pub platforms: Vec<Platform>,
    pub compression: Compression,
    /// `--secret`: what `RUN --mount=type=secret` reads, by id.
    pub secrets: Vec<(String, crate::exec::SecretSource)>,
    /// `--native=never`: every RUN runs in the sandbox as written.
    pub native: crate::frontend::dockerfile::native::Native,
}

/// Whether `path` names a Dockerfile rather than a hoist.toml: by its
/// name (`Dockerfile`, `Containerfile`, `*.Dockerfile`, `Dockerfile.*`),
/// else by its first instruction.
pub fn is_dockerfile(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.contains("dockerfile") || name.contains("containerfile") {
        return true;
    }
    if name.ends_with(".toml") {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let w = l
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            w == "FROM" || w == "ARG"
        })
        .unwrap_or(false)
}

/// The ignore file BuildKit reads for `file`: `<file>.dockerignore` next
/// to it when present, else the context's `.dockerignore`.
fn ignore_file(file: &Path) -> String {
    let own = PathBuf::from(format!("{}.dockerignore", file.display()));
    match own.is_file() {
        true => std::path::absolute(&own)
            .unwrap_or(own)
            .to_string_lossy()
            .into_owned(),
        false => ".dockerignore".into(),
    }
}

/// BuildKit's predefined platform ARGs for a build on this machine for
/// `p`.
fn predefined(p: &Platform) -> Vars {
    let mut v = Vars::new();
    let host = Platform::host();
    for (prefix, pl) in [("TARGET", p), ("BUILD", &host)] {
        v.set(&format!("{prefix}PLATFORM"), &pl.to_string());
        v.set(&format!("{prefix}OS"), &pl.os);
        v.set(&format!("{prefix}ARCH"), &pl.architecture);
        v.set(
            &format!("{prefix}VARIANT"),
            pl.variant.as_deref().unwrap_or(""),
        );
    }
    v
}

/// The base configs the stages start from, by image name.
fn base_configs(
    names: &[String],
    opts: &BuildOptions,
    store: &Store,
    net: &dyn registry::Progress,
) -> Result<BTreeMap<String, (BaseConfig, Vars)>, OpsError> {
    let mut out = BTreeMap::new();
    for n in names {
        if out.contains_key(n) || n.eq_ignore_ascii_case("scratch") {
            continue;
        }
        let t = crate::transport::recognise(n).map_err(|source| BuildError::Base {
            base: n.clone(),
            source,
        })?;
        let cfg = crate::exec::base::config(&t, opts, store, net)?;
        // A base's ONBUILD triggers run in the stage built on it, in
        // docker; hoist does not run them yet, and says so rather than
        // build something else.
        let triggers = cfg
            .config
            .as_ref()
            .and_then(|c| c.extra.get("OnBuild"))
            .and_then(|v| v.as_array())
            .map_or(0, Vec::len);
        if triggers > 0 {
            return Err(BuildError::Instruction {
                at: format!("FROM {n}"),
                message: format!(
                    "the image has {triggers} ONBUILD trigger(s), which hoist does not run yet; start from an image without them, or copy its triggers into the Dockerfile"
                ),
            }
            .into());
        }
        let (workdir, user, env) = crate::exec::sequence::base_config(&cfg);
        let mut vars = Vars::new();
        for e in &env {
            if let Some((k, v)) = e.split_once('=') {
                vars.set(k, v);
            }
        }
        out.insert(n.clone(), (BaseConfig { workdir, user }, vars));
    }
    Ok(out)
}

fn recognise(n: &str) -> Result<Transport, OpsError> {
    crate::transport::recognise(n).map_err(|source| {
        BuildError::Base {
            base: n.to_owned(),
            source,
        }
        .into()
    })
}

/// The build job of one Dockerfile build.
pub fn job(
    b: &DockerfileBuild,
    run: &RunSettings,
    store: &Store,
    net: &dyn registry::Progress,
) -> Result<Job, OpsError> {
    let shown = b.file.display().to_string();
    let bytes = match &b.inline {
        Some(t) => t.clone().into_bytes(),
        None => std::fs::read(&b.file).map_err(|e| DockerfileError {
            file: shown.clone(),
            line: 1,
            column: 1,
            message: format!("cannot read it: {e}"),
        })?,
    };
    let df = parser::parse(&bytes, &shown)?;
    let ins = instructions::parse(&df)?;
    let platforms = match b.platforms.is_empty() {
        true => vec![Platform::host()],
        false => b.platforms.clone(),
    };
    let pre = predefined(&platforms[0]);
    let mut opts = options(b, run, &platforms[0])?;

    // First pass: which images the stages start from.
    let no_env = |_: &str| Vars::new();
    let first = expand::expand(
        &ins,
        Inputs {
            build_args: &b.build_args,
            predefined: &pre,
            base_env: &no_env,
        },
    )?;
    // Bad input fails before any base is read: the stages lowered once
    // with bases that say nothing.
    let nothing = |_: &str| BaseConfig::default();
    let reached = lower::lower(
        &shown,
        &first,
        &LowerInputs {
            target: b.target.as_deref(),
            base_config: &nothing,
            native: b.native,
        },
    )?;
    let stage_names: Vec<String> = first
        .stages
        .iter()
        .filter_map(|s| s.stage.name.clone())
        .collect();
    // Only the bases of the stages the target reaches are read, as
    // BuildKit reads them: another target's base may be out of reach.
    let reached: Vec<&str> = reached.stages.iter().map(|s| s.name.as_str()).collect();
    let images: Vec<String> = first
        .stages
        .iter()
        .filter(|s| {
            let name = s
                .stage
                .name
                .clone()
                .unwrap_or_else(|| s.stage.index.to_string());
            reached.contains(&name.as_str())
        })
        .map(|s| s.stage.base.clone())
        .filter(|base| !stage_names.contains(&base.to_ascii_lowercase()))
        .collect();
    let configs = base_configs(&images, &opts, store, net)?;
    let base_env = |name: &str| configs.get(name).map(|c| c.1.clone()).unwrap_or_default();
    let ex = expand::expand(
        &ins,
        Inputs {
            build_args: &b.build_args,
            predefined: &pre,
            base_env: &base_env,
        },
    )?;
    let base_config = |name: &str| configs.get(name).map(|c| c.0.clone()).unwrap_or_default();
    let mut graph = lower::lower(
        &shown,
        &ex,
        &LowerInputs {
            target: b.target.as_deref(),
            base_config: &base_config,
            native: b.native,
        },
    )?;
    // A base may be any transport hoist reads (`oci-archive:FILE`, a bare
    // path to a layout), as `--base` may.
    for s in &mut graph.stages {
        if let crate::graph::spec::StageBase::Image(Transport::Registry(n)) = &s.base {
            s.base = crate::graph::spec::StageBase::Image(recognise(n)?);
        }
        for step in &mut s.steps {
            if let crate::graph::Step::Place(p) = step {
                if let crate::graph::spec::PlaceFrom::Image(Transport::Registry(n)) = &p.from {
                    p.from = crate::graph::spec::PlaceFrom::Image(recognise(n)?);
                }
            }
        }
    }
    if let Some(last) = graph.stages.last_mut() {
        let cfg = last.config.get_or_insert_with(ConfigSettings::default);
        cfg.labels
            .extend(b.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    // The registry client and the SBOM's base: the first image a stage
    // starts from.
    if let Some(crate::graph::spec::StageBase::Image(t)) = graph.stages.first().map(|s| &s.base) {
        opts.base = t.clone();
    }
    opts.graph = graph;
    Ok(Job {
        name: b.name.clone(),
        target: b.target.clone().unwrap_or_else(|| "default".into()),
        opts,
        platforms,
    })
}

/// The executor's options for a Dockerfile build (the graph set later).
fn options(
    b: &DockerfileBuild,
    run: &RunSettings,
    platform: &Platform,
) -> Result<BuildOptions, OpsError> {
    let push = match run.push {
        true if b.tags.is_empty() => return Err(BuildError::PushWithoutTag(b.name.clone()).into()),
        true => b
            .tags
            .iter()
            .map(|t| Reference::parse(t))
            .collect::<Result<_, _>>()
            .map_err(BuildError::from)?,
        false => Vec::new(),
    };
    let mut outputs = b.outputs.clone();
    if let Some(dir) = &run.output_dir {
        let file = match &b.target {
            None => format!("{}.tar", b.name),
            Some(t) => format!("{}-{t}.tar", b.name),
        };
        outputs.push(Transport::OciArchive {
            file: dir.join(file),
            tag: None,
        });
    }
    Ok(BuildOptions {
        context: b.context.clone(),
        ignore_file: ignore_file(&b.file),
        base: Transport::Registry("scratch".into()),
        platform: platform.clone(),
        user: None,
        workdir: "/".into(),
        settings: ConfigSettings::default(),
        tags: b.tags.clone(),
        outputs,
        compression: b.compression,
        epoch: run.epoch,
        push,
        registry: run.registry.clone(),
        deps: DepsOptions {
            no_cache: run.no_cache,
            refresh: run.refresh,
            offline: run.registry.offline,
            ..DepsOptions::default()
        },
        app: AppOptions::default(),
        step: None,
        sbom: run.sbom.clone(),
        cache: run.cache.clone(),
        run: Vec::new(),
        graph: crate::graph::Graph {
            stages: Vec::new(),
            sequenced: true,
        },
        stage_layers: Vec::new(),
        frontend_files: Vec::new(),
        secrets: b.secrets.clone(),
    })
}
