//! One build stage: its keys, known before anything runs, and its steps
//! run when a consumer's copy is not in the cache.
//!
//! Keys come first, as BuildKit's cache map does: a stage's key chains its
//! base's digest (or its parent stage's key), the hashes of the files that
//! decide its deps, the content of the context files it copies, and each
//! run step's command, env, workdir and user. A change to a file the stage
//! does not copy changes no key, so nothing runs.

use std::collections::BTreeMap;

use crate::deps::{self, DepsOptions};
use crate::digest::Digest;
use crate::exec::steps::app::AppFiles;
use crate::exec::steps::context::{Context, Filter};
use crate::exec::{BuildError, BuildOptions, Event};
use crate::graph::spec::{StageBase, StageSpec};
use crate::graph::{Stage, Step};
use crate::layer::ImagePath;
use crate::registry;
use crate::sandbox::Ground;
use crate::store::Store;
use crate::transport::Transport;

/// A stage's keys: one per step, each covering everything below it.
#[derive(Debug, Clone)]
pub struct StageKeys {
    /// The base's manifest digest, or the parent stage's last key.
    pub base: String,
    pub steps: Vec<String>,
    /// The context files the stage copies (path -> content hash), for
    /// "changed: ..." in a dry run.
    pub files: BTreeMap<String, String>,
    /// The key of the layer of context files.
    pub copy: String,
    /// The hash of the files that decide the deps.
    pub deps: String,
}

impl StageKeys {
    /// The key of the stage's filesystem as it ends.
    pub fn last(&self) -> &str {
        self.steps.last().map_or(&self.base, String::as_str)
    }
}

/// What a built stage ends with: the layers to run on or copy from.
#[derive(Debug, Clone)]
pub struct StageOut {
    pub ground: Ground,
}

fn spec(stage: &Stage) -> Result<&StageSpec, BuildError> {
    stage
        .spec
        .as_ref()
        .ok_or_else(|| BuildError::Panicked(format!("stage {} has no spec", stage.name)))
}

/// The context files a stage copies, placed at its workdir.
pub fn stage_files(
    opts: &BuildOptions,
    stage: &Stage,
    rules: &[crate::graph::spec::CopyRule],
) -> Result<AppFiles, BuildError> {
    let s = spec(stage)?;
    let filter = Filter {
        exclude: opts
            .frontend_files
            .iter()
            .chain(&s.exclude)
            .cloned()
            .collect(),
        include: Vec::new(),
        keep: Vec::new(),
    };
    let ctx = Context::scan_filtered(&opts.context, &opts.ignore_file, &filter)?;
    let dest = workdir(stage)?;
    let mut files = AppFiles::plan(&ctx, &dest, rules, &[], None)?;
    files.hash()?;
    Ok(files)
}

fn workdir(stage: &Stage) -> Result<ImagePath, BuildError> {
    ImagePath::new(&stage.workdir)
        .ok()
        .filter(|_| stage.workdir.starts_with('/'))
        .ok_or_else(|| BuildError::Workdir(stage.workdir.clone()))
}

/// A hash of the files that decide the stage's deps.
fn deps_inputs(opts: &BuildOptions) -> String {
    let t = crate::exec::record::inputs_text(&opts.context);
    Digest::of(t.as_bytes()).hex().to_owned()
}

/// The stage's run step as the sandbox runs it: the stage's workdir, env
/// and user unless the step says.
pub fn sandbox_step(stage: &Stage, r: &crate::graph::spec::RunSpec) -> crate::sandbox::Step {
    let s = stage.spec.as_ref();
    let mut env: Vec<(String, String)> = s.map(|s| s.env.clone()).unwrap_or_default();
    for (k, v) in &r.env {
        match env.iter_mut().find(|(ek, _)| ek == k) {
            Some(e) => e.1.clone_from(v),
            None => env.push((k.clone(), v.clone())),
        }
    }
    crate::sandbox::Step {
        command: r.command.clone(),
        env,
        workdir: Some(r.workdir.clone().unwrap_or_else(|| stage.workdir.clone())),
        user: r.user.clone().or_else(|| s.and_then(|s| s.user.clone())),
        timeout: r.timeout,
        mounts: Vec::new(),
        secret_env: Vec::new(),
    }
}

/// The facts (users, libc, Python) of a ground, cached by its layers.
pub(crate) fn ground_facts(
    store: &Store,
    ground: &Ground,
) -> Result<crate::facts::Facts, BuildError> {
    let stack = Digest::of(format!("stage facts {}", ground.key()).as_bytes());
    crate::facts::read_facts_cached::<BuildError>(store, &stack, &ground.layers, &mut || Ok(()))
}

/// Where a native install lands: the layers below it and the image's
/// settings it reads.
pub(crate) struct InstallOn<'a> {
    pub ground: &'a Ground,
    pub workdir: &'a ImagePath,
    pub platform: &'a crate::image::Platform,
    /// The config's `Env` (official python images state their version).
    pub config_env: &'a [String],
    pub shared: Option<&'a dyn crate::cache::SharedCache>,
    /// `pip install --user` by the user whose home this is.
    pub pip_user_home: Option<&'a ImagePath>,
}

/// Installs the deps of the project folder `dir` natively on a stage's
/// ground (its facts read for the C library and Python); `None` when the
/// folder asks for none.
pub(crate) fn install_on(
    opts: &BuildOptions,
    store: &Store,
    dir: &std::path::Path,
    dopts: &DepsOptions,
    on: &InstallOn<'_>,
    warn: &mut dyn FnMut(String),
) -> Result<Option<deps::DepsLayer>, BuildError> {
    let Some(project) = deps::prepare(dir, dopts, warn)? else {
        return Ok(None);
    };
    let facts = ground_facts(store, on.ground)?;
    let input = deps::InstallInput {
        workdir: on.workdir,
        platform: on.platform,
        facts: Some(&facts),
        config_env: on.config_env,
        compression: opts.compression,
        epoch: opts.epoch,
        shared: on.shared,
        sandbox: Some(on.ground),
        pip_user_home: on.pip_user_home,
    };
    Ok(project.install(&input, dopts, store, warn)?)
}

/// Works out a stage's keys; `parents` holds the keys of the stages
/// before it.
pub fn keys(
    opts: &BuildOptions,
    stage: &Stage,
    parents: &BTreeMap<String, StageKeys>,
    store: &Store,
    net: &dyn registry::Progress,
) -> Result<StageKeys, BuildError> {
    let base = match &stage.base {
        StageBase::Image(t) => super::base::peek(t, opts, store, net)?.digest.to_string(),
        StageBase::Stage(p) => parents
            .get(p)
            .map(|k| k.last().to_owned())
            .ok_or_else(|| BuildError::Panicked(format!("stage {p} has no keys")))?,
        StageBase::Scratch => return Err(scratch_stage()),
    };
    let mut chain = format!(
        "hoist stage v1\n{base}\n{} {:?} {}\nworkdir {}\n",
        opts.platform, opts.compression, opts.epoch, stage.workdir
    );
    let mut steps = Vec::new();
    let mut files = BTreeMap::new();
    let mut copy = String::new();
    let mut deps = String::new();
    for step in &stage.steps {
        match step {
            Step::Deps(d) => {
                deps = deps_inputs(opts);
                chain.push_str(&format!("deps {:?} dev={} {deps}\n", d.kind, d.dev));
            }
            Step::Context(rules) => {
                let f = stage_files(opts, stage, rules)?;
                copy = f.key(opts.compression, opts.epoch);
                chain.push_str(&format!("copy {copy}\n"));
                files = f.manifest();
            }
            Step::Run(r) => chain.push_str(&format!("run {}\n", sandbox_step(stage, r).key_text())),
            other => {
                return Err(BuildError::Panicked(format!(
                    "a build stage has a {} step",
                    other.kind()
                )))
            }
        }
        steps.push(Digest::of(chain.as_bytes()).hex().to_owned());
    }
    Ok(StageKeys {
        base,
        steps,
        files,
        copy,
        deps,
    })
}

/// A hoist.toml stage names an image or a stage as its base; only a
/// Dockerfile starts from nothing.
fn scratch_stage() -> BuildError {
    BuildError::Panicked("a hoist.toml stage starts from scratch".into())
}

/// Builds a stage on its base (an image, or a built parent stage): each
/// step's layer comes from the cache under its key, or is made.
#[allow(clippy::too_many_arguments)]
pub fn run(
    opts: &BuildOptions,
    stage: &Stage,
    keys: &StageKeys,
    parents: &BTreeMap<String, StageOut>,
    store: &Store,
    report: &mut dyn FnMut(Event),
    net: &dyn registry::Progress,
) -> Result<StageOut, BuildError> {
    let wd = workdir(stage)?;
    let (mut ground, platform, config_env) = match &stage.base {
        StageBase::Image(t) => {
            let mut o = opts.clone();
            o.base = t.clone();
            let client =
                crate::exec::build::registry_client(&o, matches!(t, Transport::Registry(_)))?;
            let (base, remote) = crate::exec::build::load_base(&o, store, client.as_ref(), net)?;
            if let (Some(c), Some(r)) = (&client, &remote) {
                c.fetch_blobs(r, &base.layers, store, net)?;
            }
            let env = base
                .config
                .config
                .as_ref()
                .and_then(|c| c.env.clone())
                .unwrap_or_default();
            let ground = Ground {
                layers: base.layers.clone(),
                image_env: env.clone(),
                scratch_parent: store.root().join("sandbox"),
            };
            (ground, base.platform.clone(), env)
        }
        StageBase::Stage(p) => {
            let out = parents
                .get(p)
                .ok_or_else(|| BuildError::Panicked(format!("stage {p} was not built")))?;
            let g = out.ground.clone();
            let env = g.image_env.clone();
            (g, opts.platform.clone(), env)
        }
        StageBase::Scratch => return Err(scratch_stage()),
    };
    for (step, key) in stage.steps.iter().zip(&keys.steps) {
        let (layer, what, reused) = match step {
            Step::Deps(d) => {
                let dopts = DepsOptions {
                    kind: d.kind,
                    dev: d.dev,
                    ..opts.deps
                };
                let mut warn =
                    |w: String| report(Event::Warning(format!("stage {}: {w}", stage.name)));
                let on = InstallOn {
                    ground: &ground,
                    workdir: &wd,
                    platform: &platform,
                    config_env: &config_env,
                    shared: None,
                    pip_user_home: None,
                };
                let Some(d) = install_on(opts, store, &opts.context, &dopts, &on, &mut warn)?
                else {
                    continue;
                };
                let what = format!("deps: {} ({} packages)", d.command, d.summary.packages);
                (d.layer, what, d.summary.reused)
            }
            Step::Context(rules) => {
                let files = stage_files(opts, stage, rules)?;
                let k = files.key(opts.compression, opts.epoch);
                let (layer, reused) =
                    crate::cache::layer::get_or_make::<BuildError>(store, "app-layer", &k, || {
                        Ok(files.write(store, opts.compression, opts.epoch)?)
                    })?;
                (layer, format!("copy: {} files", files.file_count()), reused)
            }
            Step::Run(r) => {
                let step = sandbox_step(stage, r);
                let (layer, reused) = crate::cache::layer::get_or_make::<BuildError>(
                    store,
                    "run-layer",
                    key,
                    || {
                        crate::sandbox::run_step(
                            store,
                            &ground,
                            &step,
                            opts.compression,
                            opts.epoch,
                        )
                        .map(|m| m.layer)
                        .map_err(|source| BuildError::StageStep {
                            stage: stage.name.clone(),
                            step: format!("run `{}`", step.shown()),
                            source: Box::new(source),
                        })
                    },
                )?;
                (layer, format!("run: {}", step.shown()), reused)
            }
            _ => continue,
        };
        report(Event::Stage {
            stage: stage.name.clone(),
            what,
            digest: layer.descriptor.digest.clone(),
            reused,
        });
        ground = ground.with(&layer.descriptor);
    }
    Ok(StageOut { ground })
}
