//! One build: base -> facts -> user layer -> deps layer -> app layer ->
//! config -> manifest -> outputs.
//!
//! Layers are ordered from least to most often changed (base, user, deps,
//! app), so a code-only change rebuilds and re-ships the app layer alone,
//! as a well-ordered Dockerfile does; the deps layer comes from the cache
//! while the lockfile is unchanged. Everything that lands in an image comes
//! from the inputs and `SOURCE_DATE_EPOCH` only (never the host's clock,
//! paths or user names), so the same inputs give the same digest anywhere.

pub mod record;

use std::path::PathBuf;

use crate::app::{AppError, AppFiles};
use crate::config::{self, ConfigSettings};
use crate::context::{Context, ContextError, EntryKind, Filter};
use crate::deps::{self, DepsError, DepsOptions, DepsSummary};
use crate::digest::Digest;
use crate::facts::{self, Facts};
use crate::host_step::{HostStep, StepError, StepOutcome};
use crate::image::{media, to_json, Descriptor, Manifest, Platform};
use crate::layer::{Compression, EntryMeta, ImagePath, Layer, LayerError, LayerWriter};
use crate::recipe::spec::CopyRule;
use crate::recipe::RecipeError;
use crate::reference::{Reference, ReferenceError};
use crate::registry::{self, Client, PushImage, PushPlan, RegistryError};
use crate::store::{Store, StoreError};
use crate::transport::{self, BaseImage, BuiltImage, Transport};
use crate::user::{self, UserSpec};

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("base {base}: {source}")]
    Base {
        base: String,
        #[source]
        source: transport::TransportError,
    },
    #[error("reading the base's facts (/etc/passwd, /etc/group, /etc/os-release, its C library and Python): {0}")]
    Facts(#[from] facts::FactsError),
    #[error(transparent)]
    User(#[from] user::UserError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Deps(#[from] DepsError),
    #[error("writing a layer: {0}")]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("output {output}: {source}")]
    Output {
        output: String,
        #[source]
        source: transport::TransportError,
    },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("--workdir {}", crate::config::workdir_problem(.0))]
    Workdir(String),
    #[error(transparent)]
    App(#[from] AppError),
    #[error(transparent)]
    Step(#[from] StepError),
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    #[error("building image `{0}` stopped on a bug (a panic); please report it")]
    Panicked(String),
    #[error("--push needs a tag naming where to push image `{0}`: --tag registry.example.com/team/{0}:1.0, or tags = [...] in its [image]")]
    PushWithoutTag(String),
    #[error("[app] mtime = \"commit\": cannot read the last commit's time in {dir} ({why}); is it a git checkout? Use mtime = \"fixed\" otherwise")]
    CommitTime { dir: PathBuf, why: String },
    #[error("reading {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Sbom(#[from] crate::sbom::SbomError),
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
    #[error("stage `{stage}`, step {step}: {source}")]
    StageStep {
        stage: String,
        step: String,
        #[source]
        source: Box<crate::sandbox::SandboxError>,
    },
    #[error("copy from stage `{stage}`: `{path}` does not exist in the stage ({near})")]
    StagePath {
        stage: String,
        path: String,
        near: String,
    },
    #[error("copy from stage `{stage}`: `{path}`: {why}")]
    StageLink {
        stage: String,
        path: String,
        why: String,
    },
    #[error("{at}: copy owner `{owner}` is neither UID:GID nor the image user's name")]
    StageOwner { at: String, owner: String },
    #[error("an image that copies from stages is built for one platform: stages run their commands, and hoist does not emulate other platforms; build each platform on its own host")]
    StagesMultiPlatform,
}

/// Everything one build needs.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub context: PathBuf,
    pub ignore_file: String,
    pub base: Transport,
    pub platform: Platform,
    pub user: Option<UserSpec>,
    pub workdir: String,
    pub settings: ConfigSettings,
    pub tags: Vec<String>,
    pub outputs: Vec<Transport>,
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`: mtimes of new files and `created` times.
    pub epoch: u64,
    /// Registry references to push the image to (`--push` with `--tag`s);
    /// references in one repository are pushed once, with every tag.
    pub push: Vec<Reference>,
    /// How registries are reached (insecure hosts, offline, certs, auth).
    pub registry: registry::Options,
    /// The deps layer: which installer, which dependencies.
    pub deps: DepsOptions,
    /// How the app layer is laid out.
    pub app: AppOptions,
    /// A command run on the host before anything else (`npm run build`).
    pub step: Option<HostStep>,
    /// `--sbom`: write (and attach) a bill of materials.
    pub sbom: Option<crate::sbom::SbomOptions>,
    /// The registry cache for deps layers (`--cache-from`, `--cache-to`).
    pub cache: crate::cache::CacheOptions,
    /// `[[run]]` steps, run in the sandbox on the base, in order.
    pub run: Vec<crate::sandbox::Step>,
    /// The build graph: the stages the image copies from, then the
    /// image's own stage.
    pub graph: crate::graph::Graph,
    /// The layers copied from stages, made by [`crate::exec::prepare`];
    /// they go on top of the app layer.
    pub stage_layers: Vec<LayerSummary>,
}

/// What a build needs beyond its recipe: the command line's settings that
/// are not about the image.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub epoch: u64,
    pub registry: registry::Options,
    pub no_cache: bool,
    pub refresh: bool,
    pub push: bool,
    /// Write each image as `DIR/NAME.tar` (oci-archive).
    pub output_dir: Option<PathBuf>,
    /// Tag images without tags `NAME:latest` (`NAME:TARGET` for other
    /// targets), as a project file's images need names to be loaded.
    pub default_tags: bool,
    /// `--sbom`: write (and attach) a bill of materials.
    pub sbom: Option<crate::sbom::SbomOptions>,
    /// The registry cache for deps layers (`--cache-from`, `--cache-to`).
    pub cache: crate::cache::CacheOptions,
}

impl BuildOptions {
    /// The build a resolved recipe describes, and its platforms.
    pub fn from_recipe(
        r: &crate::recipe::Resolved,
        run: &RunSettings,
    ) -> Result<(BuildOptions, Vec<Platform>), BuildError> {
        let s = &r.spec;
        let i = &s.image;
        let platforms = i
            .platforms
            .clone()
            .unwrap_or_else(|| vec![Platform::host()]);
        let mut tags = i.tags.clone().unwrap_or_default();
        if tags.is_empty() && run.default_tags {
            let tag = match r.target.as_str() {
                crate::recipe::project::DEFAULT_TARGET => "latest",
                t => t,
            };
            tags.push(
                crate::transport::normalize_name(&format!("{}:{tag}", r.name)).map_err(
                    |source| BuildError::Output {
                        output: r.name.clone(),
                        source,
                    },
                )?,
            );
        }
        let mut outputs = i.outputs.clone().unwrap_or_default();
        if let Some(dir) = &run.output_dir {
            let file = match r.target.as_str() {
                crate::recipe::project::DEFAULT_TARGET => format!("{}.tar", r.name),
                t => format!("{}-{t}.tar", r.name),
            };
            outputs.push(Transport::OciArchive {
                file: dir.join(file),
                tag: None,
            });
        }
        let push = match run.push {
            true if tags.is_empty() => {
                return Err(BuildError::PushWithoutTag(r.name.clone()));
            }
            true => tags
                .iter()
                .map(|t| Reference::parse(t))
                .collect::<Result<_, _>>()?,
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
                    exclude: [crate::recipe::project::FILE_NAME.to_owned()]
                        .into_iter()
                        .chain(s.app.exclude.clone().unwrap_or_default())
                        .collect(),
                    include: s.app.include.clone().unwrap_or_default(),
                    keep: Vec::new(),
                },
                destination: s.app.destination.clone(),
                writable: s.app.writable.clone().unwrap_or_default(),
                copy: s.app.copy.clone().unwrap_or_default(),
                mtime_commit: s.app.mtime == Some(crate::recipe::spec::Mtime::Commit),
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
                })
                .collect(),
            graph: crate::recipe::lower::lower(r)?,
            stage_layers: Vec::new(),
        };
        Ok((opts, platforms))
    }
}

/// How the app layer is laid out: a recipe's `[app]` section.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    /// Patterns on top of the ignore file.
    pub filter: Filter,
    /// Where the files go (default: the workdir).
    pub destination: Option<String>,
    /// Paths under the destination the app user owns.
    pub writable: Vec<String>,
    /// Folders of the context and where they land (default: all of it at
    /// the destination).
    pub copy: Vec<CopyRule>,
    /// Files get the last git commit's time rather than
    /// `SOURCE_DATE_EPOCH`.
    pub mtime_commit: bool,
    /// No app layer from the context: the recipe's copies all come from
    /// stages.
    pub none_from_context: bool,
}

/// What a build reports as it goes; the CLI renders it.
#[derive(Debug, Clone)]
pub enum Event {
    Base {
        source: String,
        digest: Digest,
        platform: Platform,
        layers: usize,
    },
    Layer {
        what: String,
        digest: Digest,
        size: u64,
        files: usize,
    },
    UserReused {
        name: String,
        uid: u32,
        gid: u32,
    },
    /// The deps layer, reused from the cache or built; its `Layer` event
    /// follows.
    Deps(DepsSummary),
    /// The host build step ran, or was skipped.
    Step(StepOutcome),
    /// A build stage's layer, reused from the cache or made.
    Stage {
        stage: String,
        what: String,
        digest: Digest,
        reused: bool,
    },
    /// What the registry cache did (a hit, a share, a problem).
    Cache(crate::cache::remote::Note),
    Output {
        output: String,
    },
    Pushed {
        target: String,
        digest: Digest,
        uploaded: usize,
        mounted: usize,
        skipped: usize,
        bytes: u64,
    },
    Warning(String),
}

/// Which of the layers hoist adds a layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// A `[[run]]` step's changes.
    Run,
    User,
    Deps,
    App,
    /// A copy from a build stage.
    Copy,
}

impl LayerKind {
    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Run => "run",
            LayerKind::User => "user",
            LayerKind::Deps => "deps",
            LayerKind::App => "app",
            LayerKind::Copy => "copy",
        }
    }
}

/// One layer of the result, for the summary.
#[derive(Debug, Clone)]
pub struct LayerSummary {
    pub what: String,
    pub layer: Layer,
    pub kind: LayerKind,
    /// Taken from the cache rather than written.
    pub reused: bool,
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct BuildResult {
    pub image: BuiltImage,
    /// The base's registry reference, when it came from a registry.
    pub base: Option<Reference>,
    pub new_layers: Vec<LayerSummary>,
    pub base_layers: usize,
    /// The base's layers' compressed size.
    pub base_size: u64,
    /// What the image holds (base, packages), for its SBOM.
    pub inventory: crate::sbom::Inventory,
}

/// Runs one build.
pub fn build(
    opts: &BuildOptions,
    store: &Store,
    report: &mut dyn FnMut(Event),
    net: &dyn registry::Progress,
) -> Result<BuildResult, BuildError> {
    let workdir = ImagePath::new(&opts.workdir)
        .ok()
        .filter(|_| opts.workdir.starts_with('/'))
        .ok_or_else(|| BuildError::Workdir(opts.workdir.clone()))?;
    if let Some(sbom) = &opts.sbom {
        crate::sbom::check_destination(sbom, &opts.outputs, !opts.push.is_empty())?;
    }
    if let Some(step) = &opts.step {
        report(Event::Step(step.run_if_needed(&opts.context, store)?));
    }
    // Scan the context and read the manifests first: bad input fails
    // before any base I/O.
    let ctx = scan_context(opts)?;
    let mut warn = |w: String| report(Event::Warning(w));
    let deps_project = deps::prepare(&opts.context, &opts.deps, &mut warn)?;

    let client = registry_client(opts, matches!(opts.base, Transport::Registry(_)))?;
    let (base, remote) = load_base(opts, store, client.as_ref(), net)?;
    // A registry base's layers are fetched only when their bytes are
    // needed: to read facts, or to write an archive. A push mounts them.
    let mut fetched = remote.is_none();
    let mut need_layers = |store: &Store| -> Result<(), BuildError> {
        if let (false, Some((c, r))) = (fetched, client.as_ref().zip(remote.as_ref())) {
            c.fetch_blobs(r, &base.layers, store, net)?;
            let diff_ids = &base.config.rootfs.diff_ids;
            crate::layer::verify::verify_base(store, &base.source, &base.layers, diff_ids)
                .map_err(registry::RegistryError::from)?;
            fetched = true;
        }
        Ok(())
    };
    report(Event::Base {
        source: base.source.clone(),
        digest: base.manifest_digest.clone(),
        platform: base.platform.clone(),
        layers: base.layers.len(),
    });
    if base
        .config
        .config
        .as_ref()
        .is_some_and(|c| c.healthcheck.is_some())
        || opts.settings.healthcheck.is_some()
    {
        report(Event::Warning(
            "the image has a HEALTHCHECK, kept in Docker's config form: docker honours it, podman and Kubernetes ignore it in OCI images".into(),
        ));
    }

    let mut settings = opts.settings.clone();
    settings.workdir = Some(workdir.absolute());
    let mut new_layers = Vec::new();
    let mut owner = None;
    let mut packages = Vec::new();

    let ground = run_steps(
        opts,
        store,
        &base,
        &mut need_layers,
        report,
        &mut new_layers,
    )?;

    let facts = if opts.user.is_some() || deps_project.is_some() || opts.sbom.is_some() {
        // The run steps may add users, a Python or a C library: the facts
        // are read of the base and the steps' layers together.
        let stack = facts_key(&base.manifest_digest, base.layers.len(), &ground);
        Some(facts::read_facts_cached(
            store,
            &stack,
            &ground.layers,
            &mut || need_layers(store),
        )?)
    } else {
        None
    };

    if let (Some(spec), Some(facts)) = (&opts.user, &facts) {
        let plan = user::plan_user(spec, facts, opts.epoch / 86_400)?;
        settings.user = Some(format!("{}:{}", plan.uid, plan.gid));
        owner = Some((plan.uid, plan.gid));
        if plan.reused {
            report(Event::UserReused {
                name: spec.name.clone(),
                uid: plan.uid,
                gid: plan.gid,
            });
        } else {
            let key = user_key(opts, &plan);
            let (layer, reused) =
                crate::cache::layer::get_or_make::<BuildError>(store, "user-layer", &key, || {
                    user_layer(store, opts, facts, &plan)
                })?;
            let what = format!(
                "hoist user {} {}:{} home {}",
                spec.name, plan.uid, plan.gid, plan.home
            );
            report(Event::Layer {
                what: what.clone(),
                digest: layer.descriptor.digest.clone(),
                size: layer.descriptor.size,
                files: 0,
            });
            new_layers.push(LayerSummary {
                what,
                layer,
                kind: LayerKind::User,
                reused,
            });
        }
    }

    if let Some(project) = &deps_project {
        let input = deps::InstallInput {
            workdir: &workdir,
            platform: &base.platform,
            facts: facts.as_ref(),
            config_env: base
                .config
                .config
                .as_ref()
                .and_then(|c| c.env.as_deref())
                .unwrap_or_default(),
            compression: opts.compression,
            epoch: opts.epoch,
            shared: None,
            sandbox: Some(&ground),
        };
        let shared = crate::cache::remote::RegistryCache::new(&opts.cache, &opts.registry)?;
        let input = deps::InstallInput {
            shared: shared.as_ref().map(|c| c as &dyn crate::cache::SharedCache),
            ..input
        };
        let mut warn = |w: String| report(Event::Warning(w));
        let installed = project.install(&input, &opts.deps, store, &mut warn);
        for note in shared.iter().flat_map(|c| c.take_notes()) {
            report(Event::Cache(note));
        }
        if let Some(d) = installed? {
            if let Some(e) = ctx
                .entries
                .iter()
                .filter(|_| d.summary.ecosystem == "npm")
                .find(|e| e.rel == "node_modules" || e.rel.starts_with("node_modules/"))
            {
                report(Event::Warning(format!(
                    "the build context has {} (not ignored): the app layer puts it over the deps layer's; add node_modules to {}",
                    e.rel.split('/').next().unwrap_or("node_modules"),
                    opts.ignore_file
                )));
            }
            let what = format!(
                "hoist deps: {} ({} packages)",
                d.command, d.summary.packages
            );
            let reused = d.summary.reused;
            packages = d.packages;
            report(Event::Deps(d.summary.clone()));
            report(Event::Layer {
                what: what.clone(),
                digest: d.layer.descriptor.digest.clone(),
                size: d.layer.descriptor.size,
                files: d.summary.files,
            });
            new_layers.push(LayerSummary {
                what,
                layer: d.layer,
                kind: LayerKind::Deps,
                reused,
            });
        }
    }

    let mut files = app_files(opts, &ctx, &workdir, owner)?;
    files.hash()?;
    if !opts.app.none_from_context {
        let epoch = app_epoch(opts)?;
        let key = files.key(opts.compression, epoch);
        let (app, reused) =
            crate::cache::layer::get_or_make::<BuildError>(store, "app-layer", &key, || {
                Ok(files.write(store, opts.compression, epoch)?)
            })?;
        let what = format!(
            "hoist app: COPY . {} ({} files)",
            files.dest.absolute(),
            files.file_count()
        );
        report(Event::Layer {
            what: what.clone(),
            digest: app.descriptor.digest.clone(),
            size: app.descriptor.size,
            files: files.file_count(),
        });
        new_layers.push(LayerSummary {
            what,
            layer: app,
            kind: LayerKind::App,
            reused,
        });
    }
    new_layers.extend(opts.stage_layers.iter().cloned());

    let created = rfc3339(opts.epoch);
    let added: Vec<(Digest, String)> = new_layers
        .iter()
        .map(|l| (l.layer.diff_id.clone(), l.what.clone()))
        .collect();
    let cfg = config::derive(&base.config, &settings, &added, &created);
    let cfg_bytes = to_json(&cfg);
    let (cfg_digest, cfg_size) = store.put_bytes(&cfg_bytes)?;

    // The base's layer descriptors already carry OCI media types.
    let mut layers: Vec<Descriptor> = base.layers.clone();
    layers.extend(new_layers.iter().map(|l| l.layer.descriptor.clone()));
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_owned()),
        config: Descriptor::new(media::OCI_CONFIG, cfg_digest, cfg_size),
        layers,
        annotations: None,
    };
    let manifest_bytes = to_json(&manifest);
    let (m_digest, m_size) = store.put_bytes(&manifest_bytes)?;
    let mut m_desc = Descriptor::new(media::OCI_MANIFEST, m_digest, m_size);
    // The base's platform carries the index entry's variant (arm64/v8)
    // where its config has none.
    m_desc.platform = Some(base.platform.clone());
    let image = BuiltImage {
        manifest: m_desc,
        manifest_json: manifest,
        config_json: cfg,
    };
    let inventory = crate::sbom::Inventory::new(
        &image.manifest,
        &opts.tags,
        &base,
        &opts.base,
        remote.as_ref(),
        facts.as_ref(),
        packages,
    );

    let mut pushes: Vec<Reference> = Vec::new();
    for out in &opts.outputs {
        if let Transport::Registry(r) = out {
            pushes.push(Reference::parse(r)?);
            continue;
        }
        need_layers(store)?;
        transport::write_output(out, &image, &opts.tags, store).map_err(|source| {
            BuildError::Output {
                output: out.to_string(),
                source,
            }
        })?;
        report(Event::Output {
            output: out.to_string(),
        });
    }
    pushes.extend(opts.push.iter().cloned());
    if let Some(client) = &client {
        let one = [push_image(&image, store)?];
        push_all(
            client,
            &pushes,
            &one,
            None,
            remote.as_ref(),
            store,
            report,
            net,
        )?;
    }
    let inventories = [&inventory];
    emit_sbom(
        opts,
        &inventories,
        &pushes,
        client.as_ref(),
        store,
        net,
        report,
    )?;
    record::save_record(opts, store, &base.manifest_digest, &files)?;
    Ok(BuildResult {
        image,
        base: remote,
        new_layers,
        base_layers: base.layers.len(),
        base_size: base.layers.iter().map(|l| l.size).sum(),
        inventory,
    })
}

/// The context as the recipe filters it; a host step's outputs are kept
/// whatever the ignore file says (they are what the image is for).
pub fn scan_context(opts: &BuildOptions) -> Result<Context, BuildError> {
    let mut filter = opts.app.filter.clone();
    if let Some(step) = &opts.step {
        filter.keep.extend(step.outputs.iter().cloned());
    }
    Ok(Context::scan_filtered(
        &opts.context,
        &opts.ignore_file,
        &filter,
    )?)
}

/// The app layer's entries, placed as the recipe says.
pub fn app_files(
    opts: &BuildOptions,
    ctx: &Context,
    workdir: &ImagePath,
    owner: Option<(u32, u32)>,
) -> Result<AppFiles, BuildError> {
    let dest = match &opts.app.destination {
        Some(d) => ImagePath::new(d)
            .ok()
            .filter(|_| d.starts_with('/'))
            .ok_or_else(|| BuildError::Workdir(d.clone()))?,
        None => workdir.clone(),
    };
    Ok(AppFiles::plan(
        ctx,
        &dest,
        &opts.app.copy,
        &opts.app.writable,
        owner,
    )?)
}

/// The app layer's mtime: `SOURCE_DATE_EPOCH`, or the last commit's.
pub fn app_epoch(opts: &BuildOptions) -> Result<u64, BuildError> {
    if !opts.app.mtime_commit {
        return Ok(opts.epoch);
    }
    let fail = |why: String| BuildError::CommitTime {
        dir: opts.context.clone(),
        why,
    };
    let out = std::process::Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(&opts.context)
        .output()
        .map_err(|e| fail(format!("running git: {e}")))?;
    if !out.status.success() {
        return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| fail("git printed no commit time".into()))
}

/// Writes the SBOM of `inventories` when the build asks for one, next to
/// each output and, for `pushes`, as an artifact in their repositories.
fn emit_sbom(
    opts: &BuildOptions,
    inventories: &[&crate::sbom::Inventory],
    pushes: &[Reference],
    client: Option<&registry::Client>,
    store: &Store,
    net: &dyn registry::Progress,
    report: &mut dyn FnMut(Event),
) -> Result<(), BuildError> {
    let Some(sbom) = &opts.sbom else {
        return Ok(());
    };
    let wrote = crate::sbom::emit(
        sbom,
        inventories,
        &opts.outputs,
        pushes,
        client,
        store,
        opts.epoch,
        net,
    )?;
    for output in wrote {
        report(Event::Output { output });
    }
    Ok(())
}

/// The cache keys of the run steps' layers: a chain that starts with the
/// base, to which each step adds its text and each layer made its
/// diff_id, so a step's key covers everything below it.
pub(crate) struct RunChain(String);

impl RunChain {
    pub(crate) fn new(base: &Digest, compression: crate::layer::Compression, epoch: u64) -> Self {
        RunChain(format!(
            "hoist run layer v2\n{base} {compression:?} {epoch}\n"
        ))
    }

    /// The key of `step`'s layer.
    pub(crate) fn key(&mut self, step: &crate::sandbox::Step) -> String {
        self.0.push_str(&format!("{}\n", step.key_text()));
        Digest::of(self.0.as_bytes()).hex().to_owned()
    }

    /// Records the layer the step made.
    pub(crate) fn made(&mut self, layer: &Layer) {
        self.0.push_str(&format!("{}\n", layer.diff_id));
    }
}

/// The key the facts of `base` with the run steps' layers on top
/// (`ground`) are cached under.
pub(crate) fn facts_key(
    base: &Digest,
    base_layers: usize,
    ground: &crate::sandbox::Ground,
) -> Digest {
    match ground.layers.len() == base_layers {
        true => base.clone(),
        false => Digest::of(format!("{base} {}", ground.key()).as_bytes()),
    }
}

/// Runs the `[[run]]` steps in the sandbox, each on the base and the
/// steps before it; each step's layer is cached by a key of the base's
/// digest, the steps so far and the layers they made. Returns the ground
/// the deps' install scripts and builds run on: the base and the steps.
fn run_steps(
    opts: &BuildOptions,
    store: &Store,
    base: &BaseImage,
    need_layers: &mut dyn FnMut(&Store) -> Result<(), BuildError>,
    report: &mut dyn FnMut(Event),
    new_layers: &mut Vec<LayerSummary>,
) -> Result<crate::sandbox::Ground, BuildError> {
    let mut ground = crate::sandbox::Ground {
        layers: base.layers.clone(),
        image_env: base
            .config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default(),
        scratch_parent: store.root().join("sandbox"),
    };
    if opts.run.is_empty() {
        return Ok(ground);
    }
    need_layers(store)?;
    let mut chain = RunChain::new(&base.manifest_digest, opts.compression, opts.epoch);
    for step in &opts.run {
        let key = chain.key(step);
        let mut files = 0;
        let (layer, reused) =
            crate::cache::layer::get_or_make::<BuildError>(store, "run-layer", &key, || {
                let made =
                    crate::sandbox::run_step(store, &ground, step, opts.compression, opts.epoch)?;
                files = made.changes;
                Ok(made.layer)
            })?;
        chain.made(&layer);
        ground = ground.with(&layer.descriptor);
        let what = format!("hoist run: {}", step.shown());
        report(Event::Layer {
            what: what.clone(),
            digest: layer.descriptor.digest.clone(),
            size: layer.descriptor.size,
            files,
        });
        new_layers.push(LayerSummary {
            what,
            layer,
            kind: LayerKind::Run,
            reused,
        });
    }
    Ok(ground)
}

pub(crate) fn user_key(opts: &BuildOptions, plan: &user::UserPlan) -> String {
    let mut h = format!(
        "hoist user layer v1\n{:?} {} {}:{} {}\n",
        opts.compression, opts.epoch, plan.uid, plan.gid, plan.home
    )
    .into_bytes();
    for f in [&plan.passwd, &plan.group, &plan.shadow, &plan.gshadow] {
        h.extend_from_slice(
            Digest::of(f.as_deref().unwrap_or_default())
                .as_str()
                .as_bytes(),
        );
        h.push(b'\n');
    }
    Digest::of(&h).hex().to_owned()
}

/// A registry client, when the build talks to a registry at all: for a
/// registry base, a push, or a `docker://` output.
pub(crate) fn registry_client(
    opts: &BuildOptions,
    remote_base: bool,
) -> Result<Option<Client>, BuildError> {
    let needed = remote_base
        || !opts.push.is_empty()
        || opts
            .outputs
            .iter()
            .any(|o| matches!(o, Transport::Registry(_)));
    Ok(match needed {
        true => Some(Client::new(opts.registry.clone())?),
        false => None,
    })
}

/// Reads the base: from a local transport (every blob imported into the
/// store), or from a registry (manifest and config only; the layers stay
/// remote until needed). Returns the registry reference for the latter.
pub(crate) fn load_base(
    opts: &BuildOptions,
    store: &Store,
    client: Option<&Client>,
    net: &dyn registry::Progress,
) -> Result<(BaseImage, Option<Reference>), BuildError> {
    let (Transport::Registry(name), Some(client)) = (&opts.base, client) else {
        let base = transport::load_base(&opts.base, &opts.platform, store).map_err(|source| {
            BuildError::Base {
                base: opts.base.to_string(),
                source,
            }
        })?;
        return Ok((base, None));
    };
    let r = Reference::parse(name)?;
    let img = client.resolve(&r, &opts.platform, store, net)?;
    let base = BaseImage {
        source: format!("docker://{}", img.reference),
        manifest_digest: img.manifest_digest.clone(),
        config: img.config.clone(),
        config_digest: img.config_digest.clone(),
        layers: img.oci_layers(),
        platform: img.platform.clone(),
    };
    Ok((base, Some(img.reference.clone())))
}

/// What a push needs of one built image.
fn push_image(image: &BuiltImage, store: &Store) -> Result<PushImage, BuildError> {
    let m = &image.manifest_json;
    let mut blobs = vec![m.config.clone()];
    blobs.extend(m.layers.iter().cloned());
    Ok(PushImage {
        manifest: image.manifest.clone(),
        manifest_bytes: store.read_blob(&image.manifest.digest)?,
        blobs,
    })
}

/// Pushes the images (one, or several under `index`) to each target;
/// targets in one repository share one push, with every tag.
#[allow(clippy::too_many_arguments)]
fn push_all(
    client: &Client,
    targets: &[Reference],
    images: &[PushImage],
    index: Option<&[u8]>,
    base: Option<&Reference>,
    store: &Store,
    report: &mut dyn FnMut(Event),
    net: &dyn registry::Progress,
) -> Result<(), BuildError> {
    let mut groups: Vec<(Reference, Vec<String>)> = Vec::new();
    for t in targets {
        let tag = t.tag().unwrap_or("latest").to_owned();
        match groups
            .iter_mut()
            .find(|(g, _)| g.registry() == t.registry() && g.repository() == t.repository())
        {
            Some((_, tags)) => {
                if !tags.contains(&tag) {
                    tags.push(tag)
                }
            }
            None => groups.push((t.clone(), Vec::new())),
        }
    }
    for (target, extra_tags) in groups {
        let plan = PushPlan {
            images,
            index,
            extra_tags: &extra_tags,
            base,
        };
        let r = client.push(&target, &plan, store, net)?;
        report(Event::Pushed {
            target: target.to_string(),
            digest: r.digest.clone(),
            uploaded: r.uploaded.len(),
            mounted: r.mounted.len(),
            skipped: r.skipped.len(),
            bytes: r.bytes_uploaded,
        });
    }
    Ok(())
}

/// The user layer: passwd, group (and shadow files where the base has
/// them) with the user appended, each keeping the base file's mode and
/// owner, and the user's home owned by the user.
fn user_layer(
    store: &Store,
    opts: &BuildOptions,
    facts: &Facts,
    plan: &user::UserPlan,
) -> Result<Layer, BuildError> {
    enum Item<'a> {
        Dir(EntryMeta),
        File(EntryMeta, &'a [u8]),
    }
    let path = |s: &str| ImagePath::new(s).map_err(|_| BuildError::Workdir(s.to_owned()));
    let mut entries: Vec<(ImagePath, Item)> = Vec::new();
    let files = [
        ("etc/passwd", &plan.passwd, &facts.passwd),
        ("etc/group", &plan.group, &facts.group),
        ("etc/shadow", &plan.shadow, &facts.shadow),
        ("etc/gshadow", &plan.gshadow, &facts.gshadow),
    ];
    for (name, content, fact) in files {
        if let Some(content) = content {
            let meta = fact.as_ref().map_or(EntryMeta::root(0o644), |f| f.meta);
            entries.push((path(name)?, Item::File(meta, content)));
        }
    }
    let home = path(&plan.home)?;
    for anc in home.ancestors() {
        // Only folders the base lacks are written, so the base's own
        // metadata for /home stays as it was.
        if anc.as_str() == "home" && facts.home.is_some() {
            continue;
        }
        entries.push((anc, Item::Dir(EntryMeta::root(0o755))));
    }
    let owned = EntryMeta {
        mode: 0o755,
        uid: plan.uid.into(),
        gid: plan.gid.into(),
    };
    entries.push((home, Item::Dir(owned)));
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut w = LayerWriter::new(store, opts.compression, opts.epoch)?;
    for (p, item) in entries {
        match item {
            Item::File(meta, bytes) => w.file(&p, meta, bytes.len() as u64, &mut &bytes[..])?,
            Item::Dir(meta) => w.dir(&p, meta)?,
        }
    }
    Ok(w.finish()?)
}

/// The app layer: the context's entries under the workdir, owned by root.
pub fn app_layer(
    store: &Store,
    ctx: &Context,
    workdir: &ImagePath,
    compression: Compression,
    epoch: u64,
) -> Result<Layer, BuildError> {
    let mut w = LayerWriter::new(store, compression, epoch)?;
    for anc in workdir.ancestors() {
        w.dir(&anc, EntryMeta::root(0o755))?;
    }
    w.dir(workdir, EntryMeta::root(0o755))?;
    let image_path = |rel: &str| {
        workdir
            .join(rel)
            .map_err(|_| BuildError::Workdir(rel.to_owned()))
    };
    for e in &ctx.entries {
        let p = image_path(&e.rel)?;
        let meta = EntryMeta::root(e.mode());
        match &e.kind {
            EntryKind::Dir => w.dir(&p, meta)?,
            EntryKind::File { size, .. } => {
                let host = ctx.host_path(e);
                let mut f = fs_err::File::open(&host).map_err(|source| BuildError::ReadFile {
                    path: host.clone(),
                    source,
                })?;
                w.file(&p, meta, *size, &mut f)?;
            }
            EntryKind::Symlink { target } => w.symlink(&p, target, meta)?,
            EntryKind::Hardlink { to } => w.hardlink(&p, &image_path(to)?, meta)?,
        }
    }
    Ok(w.finish()?)
}

pub use crate::image::rfc3339;

/// The result of a build for several platforms.
#[derive(Debug, Clone)]
pub struct MultiResult {
    /// The OCI index naming each platform's manifest (in the store).
    pub index: Descriptor,
    pub images: Vec<BuildResult>,
}

/// Builds one image per platform of a multi-platform base (no emulation:
/// nothing runs in the image), then one OCI index over them, written to
/// the `oci:`/`oci-archive:` outputs and pushed under every tag.
pub fn build_platforms(
    opts: &BuildOptions,
    platforms: &[Platform],
    store: &Store,
    report: &mut dyn FnMut(Event),
    net: &dyn registry::Progress,
) -> Result<MultiResult, BuildError> {
    if let Some(sbom) = &opts.sbom {
        crate::sbom::check_destination(sbom, &opts.outputs, !opts.push.is_empty())?;
    }
    let mut one = opts.clone();
    one.outputs.clear();
    one.push.clear();
    one.sbom = None;
    let mut images = Vec::new();
    for p in platforms {
        one.platform = p.clone();
        images.push(build(&one, store, report, net)?);
    }
    let index = crate::image::Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.to_owned()),
        manifests: images.iter().map(|r| r.image.manifest.clone()).collect(),
        annotations: None,
    };
    let index_bytes = to_json(&index);
    let (digest, size) = store.put_bytes(&index_bytes)?;
    let index_desc = Descriptor::new(media::OCI_INDEX, digest, size);

    let mut pushes: Vec<Reference> = opts.push.clone();
    let client = registry_client(opts, images.iter().any(|r| r.base.is_some()))?;
    let built: Vec<BuiltImage> = images.iter().map(|r| r.image.clone()).collect();
    for out in &opts.outputs {
        if let Transport::Registry(r) = out {
            pushes.push(Reference::parse(r)?);
            continue;
        }
        if let Some(client) = &client {
            for r in &images {
                if let Some(base) = &r.base {
                    let layers = &r.image.manifest_json.layers;
                    client.fetch_blobs(base, layers, store, net)?;
                    let n = r.base_layers.min(layers.len());
                    let diff_ids = &r.image.config_json.rootfs.diff_ids;
                    let name = format!("docker://{base}");
                    let base_ids = &diff_ids[..n.min(diff_ids.len())];
                    crate::layer::verify::verify_base(store, &name, &layers[..n], base_ids)
                        .map_err(registry::RegistryError::from)?;
                }
            }
        }
        transport::write_index_output(out, &index_desc, &built, &opts.tags, store).map_err(
            |source| BuildError::Output {
                output: out.to_string(),
                source,
            },
        )?;
        report(Event::Output {
            output: out.to_string(),
        });
    }
    if let Some(client) = &client {
        let push_images = built
            .iter()
            .map(|i| push_image(i, store))
            .collect::<Result<Vec<_>, _>>()?;
        let base = images.iter().find_map(|r| r.base.clone());
        push_all(
            client,
            &pushes,
            &push_images,
            Some(&index_bytes),
            base.as_ref(),
            store,
            report,
            net,
        )?;
    }
    let inventories: Vec<&crate::sbom::Inventory> = images.iter().map(|r| &r.inventory).collect();
    emit_sbom(
        opts,
        &inventories,
        &pushes,
        client.as_ref(),
        store,
        net,
        report,
    )?;
    Ok(MultiResult {
        index: index_desc,
        images,
    })
}
