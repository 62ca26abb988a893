//! `hoist build`: a resolved recipe (or flags) -> the executor's options
//! -> one build per image and platform -> outputs and pushes.
//!
//! This is where a frontend's description meets the executor: the
//! recipe's [`Resolved`] spec becomes [`BuildOptions`] and its graph, so
//! neither the frontend nor the executor imports the other.

use crate::deps::DepsOptions;
use crate::exec::steps::context::Filter;
use crate::exec::steps::host::HostStep;
use crate::exec::{AppOptions, BuildError, BuildOptions, RunSettings};
use crate::frontend::recipe::project::{Overrides, Project};
use crate::frontend::recipe::{RecipeError, Resolved};
use crate::graph::config::ConfigSettings;
use crate::image::Platform;
use crate::ops::batch::Job;
use crate::reference::Reference;
use crate::registry;
use crate::store::Store;
use crate::transport::Transport;

/// Why `hoist build` could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    #[error(transparent)]
    Build(Box<BuildError>),
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
    #[error(transparent)]
    Dockerfile(#[from] crate::frontend::dockerfile::DockerfileError),
    #[error(transparent)]
    Compose(Box<crate::ops::compose::ComposeError>),
    #[error("planning image `{image}`")]
    Plan {
        image: String,
        #[source]
        source: Box<BuildError>,
    },
}

impl From<BuildError> for OpsError {
    fn from(e: BuildError) -> Self {
        OpsError::Build(Box::new(e))
    }
}

/// One build job per image name of the project, resolved against the
/// command line's overrides.
pub fn jobs(
    project: &Project,
    names: &[Option<String>],
    overrides: &Overrides,
    run: &RunSettings,
) -> Result<Vec<Job>, OpsError> {
    let mut jobs = Vec::new();
    for name in names {
        let r = project.resolve(name.as_deref(), overrides)?;
        let (opts, platforms) = options(&r, run)?;
        jobs.push(Job {
            name: r.name,
            target: r.target,
            opts,
            platforms,
        });
    }
    Ok(jobs)
}

/// `hoist build --dry-run` for one image: the stages it reaches and the
/// layers it would make, each with whether it would be reused and why.
pub fn dry_run(
    job: &Job,
    store: &Store,
    list_files: bool,
    net: &dyn registry::Progress,
) -> Result<String, OpsError> {
    let plan_err = |source| OpsError::Plan {
        image: job.name.clone(),
        source: Box::new(source),
    };
    let (stages, copies) = crate::exec::explain(&job.opts, store, net).map_err(plan_err)?;
    let mut plan =
        crate::exec::explain::plan(&job.opts, store, list_files, net).map_err(plan_err)?;
    plan.layers.extend(copies);
    Ok(format!("{stages}{}", plan.render(&job.name, &job.target)))
}

/// The build a resolved recipe describes, and its platforms.
pub fn options(r: &Resolved, run: &RunSettings) -> Result<(BuildOptions, Vec<Platform>), OpsError> {
    let s = &r.spec;
    let i = &s.image;
    let platforms = i
        .platforms
        .clone()
        .unwrap_or_else(|| vec![Platform::host()]);
    let mut tags = i.tags.clone().unwrap_or_default();
    if tags.is_empty() && run.default_tags {
        let tag = match r.target.as_str() {
            crate::frontend::recipe::project::DEFAULT_TARGET => "latest",
            t => t,
        };
        tags.push(
            crate::transport::normalize_name(&format!("{}:{tag}", r.name)).map_err(|source| {
                BuildError::Output {
                    output: r.name.clone(),
                    source: source.into(),
                }
            })?,
        );
    }
    let mut outputs = i.outputs.clone().unwrap_or_default();
    if let Some(dir) = &run.output_dir {
        let file = match r.target.as_str() {
            crate::frontend::recipe::project::DEFAULT_TARGET => format!("{}.tar", r.name),
            t => format!("{}-{t}.tar", r.name),
        };
        outputs.push(Transport::OciArchive {
            file: dir.join(file),
            tag: None,
        });
    }
    let push = match run.push {
        true if tags.is_empty() => {
            return Err(BuildError::PushWithoutTag(r.name.clone()).into());
        }
        true => tags
            .iter()
            .map(|t| Reference::parse(t))
            .collect::<Result<_, _>>()
            .map_err(BuildError::from)?,
        false => Vec::new(),
    };
    let opts = BuildOptions {
        context: r.context.clone(),
        ignore_file: s
            .app
            .ignore_file
            .clone()
            .unwrap_or_else(|| ".dockerignore".into()),
        base: r.base()?.clone(),
        platform: platforms[0].clone(),
        user: i.user.clone(),
        workdir: i.workdir.clone().unwrap_or_else(|| "/app".into()),
        settings: ConfigSettings {
            user: None,
            env: i.env.clone(),
            entrypoint: i.entrypoint.clone(),
            cmd: i.cmd.clone(),
            workdir: None,
            labels: i.labels.clone(),
            expose: i.expose.clone().unwrap_or_default(),
            stop_signal: i.stop_signal.clone(),
            healthcheck: i.healthcheck.clone(),
            ..Default::default()
        },
        tags,
        outputs,
        compression: i.compression.unwrap_or_default(),
        epoch: run.epoch,
        push,
        registry: run.registry.clone(),
        deps: DepsOptions {
            kind: s.deps.kind.unwrap_or_default(),
            dev: s.deps.dev.unwrap_or(false),
            strict_scripts: s.deps.strict_scripts.unwrap_or(false),
            no_cache: run.no_cache,
            refresh: run.refresh,
            locked: s.deps.locked.unwrap_or(false),
            offline: run.registry.offline,
            scripts_in_sandbox: s.deps.scripts_in_sandbox.unwrap_or(false),
            sdists_in_sandbox: s.deps.sdists_in_sandbox.unwrap_or(false),
        },
        app: AppOptions {
            filter: Filter {
                // The project file describes the image; it is not
                // part of the app (as a Dockerfile usually is not).
                exclude: [crate::frontend::recipe::project::FILE_NAME.to_owned()]
                    .into_iter()
                    .chain(s.app.exclude.clone().unwrap_or_default())
                    .collect(),
                include: s.app.include.clone().unwrap_or_default(),
                keep: Vec::new(),
            },
            destination: s.app.destination.clone(),
            writable: s.app.writable.clone().unwrap_or_default(),
            copy: s.app.copy.clone().unwrap_or_default(),
            mtime_commit: s.app.mtime == Some(crate::frontend::recipe::spec::Mtime::Commit),
            none_from_context: s.app.copy.as_ref().is_some_and(Vec::is_empty)
                && s.app.stage_copy.as_ref().is_some_and(|c| !c.is_empty()),
        },
        step: s
            .build
            .run
            .clone()
            .filter(|r| !r.is_empty())
            .map(|run| HostStep {
                run,
                inputs: s.build.inputs.clone().unwrap_or_default(),
                outputs: s.build.outputs.clone().unwrap_or_default(),
            }),
        sbom: run.sbom.clone(),
        cache: run.cache.clone(),
        run: s
            .run
            .iter()
            .flatten()
            .map(|r| crate::sandbox::Step {
                command: r.command.clone(),
                env: r.env.clone(),
                workdir: r.workdir.clone(),
                user: r.user.clone(),
                timeout: r.timeout,
                mounts: Vec::new(),
                secret_env: Vec::new(),
            })
            .collect(),
        graph: crate::frontend::recipe::lower::lower(r)?,
        stage_layers: Vec::new(),
        frontend_files: vec![crate::frontend::recipe::project::FILE_NAME.to_owned()],
        secrets: Vec::new(),
    };
    Ok((opts, platforms))
}
