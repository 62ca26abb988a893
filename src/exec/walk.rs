//! The image's own stage, walked once for a build and for `--dry-run`.
//!
//! The walk decides the order and the keys: the host step, the context,
//! the base, each `[[run]]` step's key in its chain, the facts the user
//! and deps steps read, the user's owner ids, the app layer's key. What
//! happens at each step is the [`Backend`]'s: [`crate::exec::build`] makes
//! or reuses the layer, [`crate::exec::explain`] only looks the key up and
//! says why it would be reused or built. One walk, so a dry run cannot
//! drift from what a build does (imagebuilder's no-op executor and cargo's
//! dirty reasons are the models).

use crate::deps::{self, Project};
use crate::digest::Digest;
use crate::exec::build::facts_key;
use crate::exec::steps::app::{app_epoch, app_files, scan_context, AppFiles};
use crate::exec::steps::context::Context;
use crate::exec::steps::host::HostStep;
use crate::exec::steps::run::RunChain;
use crate::exec::steps::user::{self, UserPlan};
use crate::exec::{BuildError, BuildOptions};
use crate::facts::Facts;
use crate::graph::spec::UserSpec;
use crate::image::Descriptor;
use crate::layer::{ImagePath, Layer};
use crate::sandbox::{Ground, Step};
use crate::store::Store;

/// The base as the walk needs it: what keys chain from, and the layers
/// the run steps and the facts stand on.
pub(crate) struct BaseView {
    pub digest: Digest,
    pub layers: Vec<Descriptor>,
    /// The base config's `Env`, which run steps see.
    pub env: Vec<String>,
}

/// What happens at each step of the walk.
pub(crate) trait Backend {
    /// A warning found on the way (a manifest's oddity).
    fn warn(&mut self, warning: String);
    /// The host build step: run it, or say whether it would run.
    fn host_step(&mut self, step: &HostStep) -> Result<(), BuildError>;
    /// What the backend keeps of the base, handed back after the walk.
    type Base;
    /// Resolves the base.
    fn base(&mut self) -> Result<(BaseView, Self::Base), BuildError>;
    /// One `[[run]]` step with its key: its layer when it is known (made,
    /// or in the cache), `None` when the step would run. `below_known`
    /// says every step below it is known.
    fn run_step(
        &mut self,
        step: &Step,
        key: &str,
        ground: &Ground,
        below_known: bool,
    ) -> Result<Option<Layer>, BuildError>;
    /// The facts of the base with the run steps' layers (`ground`), cached
    /// under `stack`; `wanted` when a later step or the SBOM reads them.
    fn facts(
        &mut self,
        stack: &Digest,
        ground: &Ground,
        runs_known: bool,
        wanted: bool,
    ) -> Result<Option<Facts>, BuildError>;
    /// The app user, planned against the facts when they are known.
    fn user(
        &mut self,
        spec: &UserSpec,
        plan: Option<&UserPlan>,
        facts: Option<&Facts>,
    ) -> Result<(), BuildError>;
    /// The deps layer of `project`.
    fn deps(&mut self, step: DepsStep<'_>) -> Result<(), BuildError>;
    /// The app layer, whose key is `key`.
    fn app(&mut self, files: &AppFiles, key: &str) -> Result<(), BuildError>;
}

/// What the deps step gets.
pub(crate) struct DepsStep<'a> {
    pub project: &'a Project,
    pub workdir: &'a ImagePath,
    pub facts: Option<&'a Facts>,
    pub ground: &'a Ground,
    pub context: &'a Context,
}

/// What the walk found, for the backend's last steps.
pub(crate) struct Walked<B> {
    pub base: B,
    pub workdir: ImagePath,
    pub files: AppFiles,
    pub facts: Option<Facts>,
}

/// The workdir as an image path, refused unless absolute.
pub(crate) fn workdir(opts: &BuildOptions) -> Result<ImagePath, BuildError> {
    ImagePath::new(&opts.workdir)
        .ok()
        .filter(|_| opts.workdir.starts_with('/'))
        .ok_or_else(|| BuildError::Workdir(opts.workdir.clone()))
}

/// Walks the image's own stage with `backend`.
pub(crate) fn walk<B: Backend>(
    opts: &BuildOptions,
    store: &Store,
    backend: &mut B,
) -> Result<Walked<B::Base>, BuildError> {
    let workdir = workdir(opts)?;
    if let Some(step) = &opts.step {
        backend.host_step(step)?;
    }
    // Scan the context and read the manifests first: bad input fails
    // before any base I/O.
    let ctx = scan_context(opts)?;
    let project = deps::prepare(&opts.context, &opts.deps, &mut |w| backend.warn(w))?;
    let (base, kept) = backend.base()?;

    // The run steps: each layer's key chains the base, the steps below and
    // the layers they made.
    let mut ground = Ground {
        layers: base.layers.clone(),
        image_env: base.env,
        scratch_parent: store.root().join("sandbox"),
    };
    let mut chain = RunChain::new(&base.digest, opts.compression, opts.epoch);
    let mut known = true;
    for step in &opts.run {
        let key = chain.key(step);
        match backend.run_step(step, &key, &ground, known)? {
            Some(layer) => {
                chain.made(&layer);
                ground = ground.with(&layer.descriptor);
            }
            None => known = false,
        }
    }

    // The run steps may add users, a Python or a C library: the facts are
    // read of the base and the steps' layers together.
    let stack = facts_key(&base.digest, base.layers.len(), &ground);
    // A shell-form command is checked against the image's /bin/sh.
    let wanted = opts.user.is_some()
        || project.is_some()
        || opts.sbom.is_some()
        || !crate::exec::steps::config::shell_forms(&opts.settings, false).is_empty();
    let facts = backend.facts(&stack, &ground, known, wanted)?;

    let mut owner = None;
    if let Some(spec) = &opts.user {
        let plan = facts
            .as_ref()
            .map(|f| user::plan_user(spec, f, opts.epoch / 86_400))
            .transpose()?;
        owner = Some(match &plan {
            Some(p) => (p.uid, p.gid),
            None => (
                spec.uid.unwrap_or(user::DEFAULT_UID),
                spec.gid.or(spec.uid).unwrap_or(user::DEFAULT_UID),
            ),
        });
        backend.user(spec, plan.as_ref(), facts.as_ref())?;
    }

    if let Some(project) = &project {
        backend.deps(DepsStep {
            project,
            workdir: &workdir,
            facts: facts.as_ref(),
            ground: &ground,
            context: &ctx,
        })?;
    }

    let mut files = app_files(opts, &ctx, &workdir, owner)?;
    files.hash()?;
    if !opts.app.none_from_context {
        let key = files.key(opts.compression, app_epoch(opts)?);
        backend.app(&files, &key)?;
    }
    Ok(Walked {
        base: kept,
        workdir,
        files,
        facts,
    })
}
