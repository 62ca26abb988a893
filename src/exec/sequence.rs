//! A sequenced graph (a Dockerfile): every stage, the image's too, is a
//! list of steps run in order, and the image is the last stage's
//! filesystem with the config the stage ends with.
//!
//! Each step's key chains the one below it (the base's manifest digest,
//! or the parent stage's last key) with what the step is: a RUN's command,
//! env, workdir and user; a COPY's planned entries with their contents'
//! hashes and owners; a native install's manifests. A key in the store is
//! the layer, so an unchanged step below a changed one is reused, as
//! BuildKit's cache is. Owners and "is the destination a folder" are read
//! from the stage's own layers (its `/etc/passwd`, its tree), as docker
//! reads them from the stage's filesystem.

use std::collections::BTreeMap;

use crate::deps::DepsOptions;
use crate::digest::Digest;
use crate::exec::stage::ground_facts as facts_of;
use crate::exec::steps::{mounts, place};
use crate::exec::{BuildError, BuildOptions, BuildResult, Event, LayerKind, LayerSummary};
use crate::facts::{self, Facts, PathKind};
use crate::graph::native::NativeRun;
use crate::graph::spec::{InstallSpec, MkdirSpec, PlaceFrom, PlaceSpec, StageBase};
use crate::graph::{Stage, Step};
use crate::image::{media, to_json, Descriptor, ImageConfig, Manifest, Platform};
use crate::layer::{EntryMeta, ImagePath, Layer, LayerWriter};
use crate::reference::Reference;
use crate::registry;
use crate::sandbox::Ground;
use crate::store::Store;
use crate::transport::{BaseImage, BuiltImage, Transport};

/// The image a stage chain starts from.
#[derive(Debug, Clone)]
struct Root {
    base: BaseImage,
    remote: Option<Reference>,
    transport: Transport,
}

/// A built stage.
#[derive(Debug, Clone)]
struct Built {
    root: Root,
    ground: Ground,
    /// The layers the Dockerfile added, its parent stages' included.
    layers: Vec<LayerSummary>,
    key: String,
}

/// Builds the image of a sequenced graph: its stages in order, then the
/// config, manifest and outputs.
pub fn build(
    opts: &BuildOptions,
    store: &Store,
    report: &mut dyn FnMut(Event),
    net: &dyn registry::Progress,
) -> Result<BuildResult, BuildError> {
    if opts.sbom.is_some() {
        return Err(BuildError::Instruction {
            at: "--sbom".into(),
            message: "hoist writes SBOMs for hoist.toml builds only yet; build without --sbom"
                .into(),
        });
    }
    let mut built: BTreeMap<String, Built> = BTreeMap::new();
    let mut mode = Mode::Build(
        crate::cache::remote::RegistryCache::new(&opts.cache, &opts.registry)?.map(Box::new),
    );
    for (i, stage) in opts.graph.stages.iter().enumerate() {
        let b = run_stage(opts, i, stage, &built, store, report, net, &mut mode)?;
        built.insert(stage.name.clone(), b);
    }
    let target = opts
        .graph
        .image()
        .ok_or_else(|| BuildError::Panicked("a Dockerfile graph with no stage".into()))?;
    let out = built
        .remove(&target.name)
        .ok_or_else(|| BuildError::Panicked("the target stage was not built".into()))?;
    let mut settings = target.config.clone().unwrap_or_default();
    if let Some(u) = &settings.user {
        let facts = facts_of(store, &out.ground)?;
        settings.user =
            Some(
                numeric_user(u, &facts).map_err(|message| BuildError::Instruction {
                    at: format!("USER {u}"),
                    message,
                })?,
            );
    }
    let created = crate::image::rfc3339(opts.epoch);
    let added: Vec<(Digest, String)> = out
        .layers
        .iter()
        .map(|l| (l.layer.diff_id.clone(), l.what.clone()))
        .collect();
    let root = out.root;
    let cfg = crate::exec::steps::config::derive(&root.base.config, &settings, &added, &created);
    let runs_node = |c: &crate::image::ContainerConfig| {
        let first = |v: &Option<Vec<String>>| v.as_ref().and_then(|v| v.first().cloned());
        [first(&c.entrypoint), first(&c.cmd)]
            .into_iter()
            .chain([c
                .healthcheck
                .as_ref()
                .and_then(|h| h.test.as_ref()?.get(1).cloned())])
            .any(|w| w.as_deref() == Some("node"))
    };
    let shell_forms = !crate::exec::steps::config::shell_forms(&settings, true).is_empty();
    if shell_forms || cfg.config.as_ref().is_some_and(runs_node) {
        let facts = facts_of(store, &out.ground)?;
        let refused = match facts.shell {
            false => crate::exec::steps::config::no_shell_error(&settings, true),
            true => None,
        }
        .or_else(|| crate::exec::steps::config::off_path_error(&cfg, facts.node.as_ref(), true));
        if let Some((at, message)) = refused {
            return Err(BuildError::Instruction { at, message });
        }
    }
    if let Some(w) = crate::exec::steps::config::root_warning(&cfg) {
        report(Event::Warning(w));
    }
    let (cfg_digest, cfg_size) = store.put_bytes(&to_json(&cfg))?;
    let layers: Vec<Descriptor> = out.ground.layers.clone();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_owned()),
        config: Descriptor::new(media::OCI_CONFIG, cfg_digest, cfg_size),
        layers,
        annotations: None,
    };
    let (m_digest, m_size) = store.put_bytes(&to_json(&manifest))?;
    let mut m_desc = Descriptor::new(media::OCI_MANIFEST, m_digest, m_size);
    m_desc.platform = Some(root.base.platform.clone());
    let image = BuiltImage {
        manifest: m_desc,
        manifest_json: manifest,
        config_json: cfg,
    };
    let mut o = opts.clone();
    o.base = root.transport.clone();
    let inventory = crate::sbom::Inventory::new(
        &image.manifest,
        &opts.tags,
        &root.base,
        &o.base,
        root.remote.as_ref(),
        None,
        Vec::new(),
    );
    crate::exec::build::deliver(&o, store, &image, root.remote.as_ref(), report, net)?;
    Ok(BuildResult {
        image,
        base: root.remote,
        new_layers: out.layers,
        base_layers: root.base.layers.len(),
        base_size: root.base.layers.iter().map(|l| l.size).sum(),
        inventory,
    })
}

/// What `paths` are in `ground`, read once per stack of layers.
fn kinds(store: &Store, ground: &Ground, paths: &[String]) -> Result<Vec<PathKind>, BuildError> {
    Ok(facts::path_kinds_cached(store, &ground.layers, paths)?)
}

/// `USER` as ids: `name[:group]` looked up in the image's passwd and
/// group, numbers kept.
pub fn numeric_user(spec: &str, facts: &Facts) -> Result<String, String> {
    let (u, g) = resolve_owner(spec, facts)?;
    Ok(format!("{u}:{g}"))
}

/// An owner (`--chown`, USER, WORKDIR's) as ids: `USER[:GROUP]`, each a
/// name the stage's `/etc/passwd` / `/etc/group` holds or a number; a
/// user alone takes its primary group (a number alone, the same number).
pub fn resolve_owner(spec: &str, facts: &Facts) -> Result<(u32, u32), String> {
    use crate::exec::steps::user::{parse_group, parse_passwd};
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let content = |f: &Option<crate::facts::FileFact>| {
        f.as_ref().map(|f| f.content.clone()).unwrap_or_default()
    };
    let (passwd, group) = (content(&facts.passwd), content(&facts.group));
    let users = parse_passwd(&passwd).map_err(|e| e.to_string())?;
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (n, users.iter().find(|e| e.uid == n).map_or(n, |e| e.gid)),
        Err(_) => users
            .iter()
            .find(|e| e.name == u)
            .map(|e| (e.uid, e.gid))
            .ok_or_else(|| {
                format!("user `{u}` is not in the stage's /etc/passwd: add it first (RUN useradd ... or adduser) or give a number")
            })?,
    };
    let gid = match g {
        None | Some("") => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => parse_group(&group)
                .map_err(|e| e.to_string())?
                .iter()
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| {
                    format!("group `{g}` is not in the stage's /etc/group: add it first (RUN groupadd ... or addgroup) or give a number")
                })?,
        },
    };
    Ok((uid, gid))
}

/// Loads an image base: every layer in the store.
fn load_root(
    opts: &BuildOptions,
    t: &Transport,
    store: &Store,
    net: &dyn registry::Progress,
) -> Result<Root, BuildError> {
    let mut o = opts.clone();
    o.base = t.clone();
    let client = crate::exec::build::registry_client(&o, matches!(t, Transport::Registry(_)))?;
    let (base, remote) = crate::exec::build::load_base(&o, store, client.as_ref(), net)?;
    if let (Some(c), Some(r)) = (&client, &remote) {
        c.fetch_blobs(r, &base.layers, store, net)?;
    }
    Ok(Root {
        base,
        remote,
        transport: t.clone(),
    })
}

/// `FROM scratch`: no layers and a config that says only the platform
/// (`--platform`, else the host's), as BuildKit starts one. Its "digest"
/// names the platform, so the keys of its steps differ per platform.
fn scratch_root(platform: &Platform) -> Root {
    let config = ImageConfig {
        created: None,
        author: None,
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        config: None,
        rootfs: crate::image::RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        },
        history: Vec::new(),
        extra: Default::default(),
    };
    let text = format!("hoist scratch v1 {platform}");
    Root {
        base: BaseImage {
            source: "scratch".into(),
            manifest_digest: Digest::of(text.as_bytes()),
            config_digest: Digest::of(&to_json(&config)),
            config,
            layers: Vec::new(),
            platform: platform.clone(),
        },
        remote: None,
        transport: Transport::Registry("scratch".into()),
    }
}

fn ground_of(root: &Root, store: &Store) -> Ground {
    Ground {
        layers: root.base.layers.clone(),
        image_env: root
            .base
            .config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default(),
        scratch_parent: store.root().join("sandbox"),
    }
}

/// Whether a walk makes layers, or (`--dry-run`) only looks their keys up
/// and says what a build would do at each step.
enum Mode {
    /// With the registry cache (`--cache-from`, `--cache-to`) native
    /// installs look up and share.
    Build(Option<Box<crate::cache::remote::RegistryCache>>),
    Explain {
        /// (stage index, step index) -> what a build would do.
        verdicts: BTreeMap<(usize, usize), String>,
        /// Stages with a step that would be built: what follows is
        /// unknown until then.
        blind: std::collections::BTreeSet<String>,
    },
}

impl Mode {
    /// The layer under `key` of `kind`: made on a miss when building,
    /// `None` on a miss when explaining.
    fn obtain(
        &self,
        store: &Store,
        kind: &str,
        key: &str,
        make: impl FnOnce() -> Result<Layer, BuildError>,
    ) -> Result<Option<(Layer, bool)>, BuildError> {
        match self {
            Mode::Build(_) => {
                crate::cache::layer::get_or_make::<BuildError>(store, kind, key, make).map(Some)
            }
            Mode::Explain { .. } => {
                Ok(crate::cache::layer::lookup(store, kind, key)?.map(|l| (l, true)))
            }
        }
    }

    fn say(&mut self, at: (usize, usize), verdict: String) {
        if let Mode::Explain { verdicts, .. } = self {
            verdicts.insert(at, verdict);
        }
    }

    fn is_blind(&self, stage: &str) -> bool {
        matches!(self, Mode::Explain { blind, .. } if blind.contains(stage))
    }

    fn blind(&mut self, stage: &str) {
        if let Mode::Explain { blind, .. } = self {
            blind.insert(stage.to_owned());
        }
    }
}

/// `--dry-run` for a sequenced graph: each stage and step, with whether a
/// build would reuse its layer or make it, and how (native, sandbox).
pub fn explain(
    opts: &BuildOptions,
    store: &Store,
    net: &dyn registry::Progress,
) -> Result<String, BuildError> {
    let mut mode = Mode::Explain {
        verdicts: BTreeMap::new(),
        blind: Default::default(),
    };
    let mut built: BTreeMap<String, Built> = BTreeMap::new();
    for (i, stage) in opts.graph.stages.iter().enumerate() {
        let b = run_stage(opts, i, stage, &built, store, &mut |_| {}, net, &mut mode)?;
        built.insert(stage.name.clone(), b);
    }
    let Mode::Explain { verdicts, .. } = mode else {
        return Ok(String::new());
    };
    Ok(crate::graph::dump::render(&opts.graph, true, &|i, j| {
        verdicts.get(&(i, j)).cloned()
    }))
}

/// How a step is done, for the dry run.
fn how(step: &Step) -> &'static str {
    match step {
        Step::Run(r) if r.native.is_some() => "native where exact, else sandbox",
        Step::Run(_) => "sandbox",
        Step::Install(_) => "native",
        _ => "hoist",
    }
}

#[allow(clippy::too_many_arguments)]
fn run_stage(
    opts: &BuildOptions,
    index: usize,
    stage: &Stage,
    built: &BTreeMap<String, Built>,
    store: &Store,
    report: &mut dyn FnMut(Event),
    net: &dyn registry::Progress,
    mode: &mut Mode,
) -> Result<Built, BuildError> {
    let (root, mut ground, mut layers, base_key) = match &stage.base {
        StageBase::Image(t) => {
            let root = load_root(opts, t, store, net)?;
            let g = ground_of(&root, store);
            let k = root.base.manifest_digest.to_string();
            (root, g, Vec::new(), k)
        }
        StageBase::Scratch => {
            let root = scratch_root(&opts.platform);
            let g = ground_of(&root, store);
            let k = root.base.manifest_digest.to_string();
            (root, g, Vec::new(), k)
        }
        StageBase::Stage(p) => {
            let b = built
                .get(p)
                .ok_or_else(|| BuildError::Panicked(format!("stage {p} was not built")))?;
            if mode.is_blind(p) {
                mode.blind(&stage.name);
            }
            (
                b.root.clone(),
                b.ground.clone(),
                b.layers.clone(),
                b.key.clone(),
            )
        }
    };
    let mut chain = format!(
        "hoist sequence v1\n{base_key}\n{} {:?} {}\n",
        opts.platform, opts.compression, opts.epoch
    );
    let platform: Platform = root.base.platform.clone();
    for (j, step) in stage.steps.iter().enumerate() {
        if mode.is_blind(&stage.name) {
            mode.say(
                (index, j),
                format!("build ({}; a step above is built)", how(step)),
            );
            continue;
        }
        if let Step::Place(PlaceSpec {
            from: PlaceFrom::Stage(s),
            ..
        }) = step
        {
            if mode.is_blind(s) {
                mode.say((index, j), format!("build (stage {s} is built)"));
                mode.blind(&stage.name);
                continue;
            }
        }
        let made: Option<(Layer, String, bool, LayerKind)> = match step {
            Step::Run(r) => {
                let mut s = crate::exec::stage::sandbox_step(stage, r);
                // RUN --mount: binds of the context, a stage or an image,
                // cache folders, secrets (see exec::steps::mounts).
                let at = format!("RUN {}", s.shown());
                if let Some(b) = r.mounts.iter().find_map(|m| match &m.from {
                    Some(PlaceFrom::Stage(b)) if mode.is_blind(b) => Some(b),
                    _ => None,
                }) {
                    mode.say((index, j), format!("build (stage {b} is built)"));
                    mode.blind(&stage.name);
                    continue;
                }
                let mut tree = |f: &PlaceFrom| -> Result<mounts::Tree, BuildError> {
                    match f {
                        PlaceFrom::Stage(b) => built
                            .get(b)
                            .map(|b| (b.ground.clone(), b.key.clone()))
                            .ok_or_else(|| {
                                BuildError::Panicked(format!("stage {b} was not built"))
                            }),
                        PlaceFrom::Image(t) => {
                            let root = load_root(opts, t, store, net)?;
                            Ok((
                                ground_of(&root, store),
                                root.base.manifest_digest.to_string(),
                            ))
                        }
                        PlaceFrom::Context => Err(BuildError::Panicked(
                            "a bind of the context has no tree".into(),
                        )),
                    }
                };
                let mount_key = mounts::key(opts, &r.mounts, &mut tree, &at)?;
                chain.push_str(&format!("run {}\n", s.key_text()));
                // A line hoist may do natively keys apart from the same
                // line run as written (`--native=never`), so that asking
                // for the sandbox never reuses a native layer.
                if r.native.is_some() {
                    chain.push_str("native\n");
                }
                if !mount_key.is_empty() {
                    chain.push_str(&format!("mounts {mount_key}"));
                }
                let key = Digest::of(chain.as_bytes()).hex().to_owned();
                let mut natively = false;
                mode.obtain(store, "run-layer", &key, || {
                    if let Some(native) = &r.native {
                        if let Some(l) = native_run(opts, store, &ground, native, r)? {
                            natively = true;
                            return Ok(l);
                        }
                    }
                    let held = mounts::resolve(opts, store, &r.mounts, &mut tree, &at)?;
                    s.mounts = held.mounts.clone();
                    s.secret_env = held.secret_env.clone();
                    crate::sandbox::run_step(store, &ground, &s, opts.compression, opts.epoch)
                        .map(|m| m.layer)
                        .map_err(|source| BuildError::StageStep {
                            stage: stage.name.clone(),
                            step: format!("RUN {}", s.shown()),
                            source: Box::new(source),
                        })
                })?
                .map(|(layer, reused)| {
                    let (what, kind) = match (natively, &r.native) {
                        (true, Some(NativeRun::Accounts(_))) => (
                            format!("RUN {} (hoist: native)", s.shown()),
                            LayerKind::User,
                        ),
                        (true, _) => (format!("RUN {} (hoist: native)", s.shown()), LayerKind::Run),
                        (false, _) => (format!("RUN {}", s.shown()), LayerKind::Run),
                    };
                    (layer, what, reused, kind)
                })
            }
            Step::Place(p) => place_layer(opts, p, &ground, built, store, net, &mut chain, mode)?
                .map(|(layer, files, reused)| {
                    let what =
                        format!("COPY {} -> {} ({files} files)", p.sources.join(" "), p.dest);
                    (layer, what, reused, LayerKind::Copy)
                }),
            Step::Mkdir(m) => match mkdir(opts, m, &ground, store, &mut chain, mode)? {
                Made::Nothing => {
                    mode.say((index, j), "nothing to do (the folder exists)".into());
                    continue;
                }
                Made::Unknown => None,
                Made::Layer(l, reused) => {
                    let l = *l;
                    Some((l, format!("WORKDIR {}", m.path), reused, LayerKind::Workdir))
                }
            },
            Step::Install(i) => {
                match install(opts, i, &ground, &platform, store, &mut chain, report, mode)? {
                    Made::Nothing => continue,
                    Made::Unknown => None,
                    Made::Layer(l, reused) => {
                        let l = *l;
                        let tool = match i.kind {
                            crate::deps::DepsKind::Pip => "pip",
                            _ => "npm",
                        };
                        let what = format!("RUN {} (hoist: native, no {tool} ran)", i.command);
                        Some((l, what, reused, LayerKind::Deps))
                    }
                }
            }
            other => {
                return Err(BuildError::Panicked(format!(
                    "a Dockerfile stage has a {} step",
                    other.kind()
                )))
            }
        };
        let Some((layer, what, reused, kind)) = made else {
            mode.say(
                (index, j),
                format!("build ({}; not in the cache)", how(step)),
            );
            mode.blind(&stage.name);
            continue;
        };
        mode.say((index, j), format!("reuse ({}; in the cache)", how(step)));
        report(Event::Stage {
            stage: stage.name.clone(),
            what,
            digest: layer.descriptor.digest.clone(),
            reused,
        });
        ground = ground.with(&layer.descriptor);
        // The image's history says what the step is, the same whether
        // the layer was made or reused, so the config (and the digest)
        // does not depend on the cache.
        layers.push(LayerSummary {
            what: history(stage, step),
            layer,
            kind,
            reused,
        });
    }
    Ok(Built {
        root,
        ground,
        layers,
        key: Digest::of(chain.as_bytes()).hex().to_owned(),
    })
}

/// The layer of a RUN line of account tools, or of mkdir/chown/chmod,
/// made natively; `None` where the native result would not be exactly the
/// command's (the step then runs in the sandbox).
fn native_run(
    opts: &BuildOptions,
    store: &Store,
    ground: &Ground,
    native: &NativeRun,
    r: &crate::graph::spec::RunSpec,
) -> Result<Option<Layer>, BuildError> {
    match native {
        NativeRun::Accounts(ops) => crate::exec::steps::accounts::accounts_layer(
            store,
            ground,
            ops,
            opts.compression,
            opts.epoch,
        ),
        NativeRun::Paths(ops) => {
            let workdir = r.workdir.as_deref().unwrap_or("/");
            match crate::exec::steps::paths::paths_layer(
                store,
                ground,
                ops,
                workdir,
                opts.compression,
                opts.epoch,
            )? {
                crate::exec::steps::paths::PathsLayer::Native(l) => Ok(Some(l)),
                crate::exec::steps::paths::PathsLayer::Sandbox { .. } => Ok(None),
            }
        }
    }
}

/// A step's line in the image's history.
fn history(stage: &Stage, step: &Step) -> String {
    match step {
        Step::Run(r) => format!("RUN {}", crate::exec::stage::sandbox_step(stage, r).shown()),
        Step::Place(p) => format!("COPY {} -> {}", p.sources.join(" "), p.dest),
        Step::Mkdir(m) => format!("WORKDIR {}", m.path),
        Step::Install(i) => format!("RUN {} (hoist: native)", i.command),
        other => other.kind().to_owned(),
    }
}

/// What a step that may make no layer made.
enum Made {
    /// Nothing to do: no layer.
    Nothing,
    /// Not in the cache, and the walk only explains.
    Unknown,
    Layer(Box<Layer>, bool),
}

/// The destination's kind and the folders to make for it.
fn destination(
    store: &Store,
    ground: &Ground,
    dest: &str,
) -> Result<(bool, Vec<String>), BuildError> {
    let d = dest.trim_end_matches('/');
    let mut paths: Vec<String> = Vec::new();
    let mut cur = String::new();
    for part in d.split('/').filter(|p| !p.is_empty()) {
        cur.push('/');
        cur.push_str(part);
        paths.push(cur.clone());
    }
    if paths.is_empty() {
        return Ok((true, Vec::new()));
    }
    let k = kinds(store, ground, &paths)?;
    let is_dir = matches!(k.last(), Some(PathKind::Dir(_)));
    // The destination folder is made when it is missing and is a folder
    // (several sources, a trailing `/`): its missing ancestors with it.
    let missing: Vec<String> = paths
        .iter()
        .zip(&k)
        .filter(|(_, k)| matches!(k, PathKind::Absent))
        .map(|(p, _)| p.clone())
        .collect();
    Ok((is_dir, missing))
}

/// The layer of a COPY or ADD, from the cache or made: its key chains
/// the planned entries (context) or the source stage's key and the
/// copy's settings (a stage or image, unpacked only on a miss).
#[allow(clippy::too_many_arguments)]
fn place_layer(
    opts: &BuildOptions,
    p: &PlaceSpec,
    ground: &Ground,
    built: &BTreeMap<String, Built>,
    store: &Store,
    net: &dyn registry::Progress,
    chain: &mut String,
    mode: &Mode,
) -> Result<Option<(Layer, usize, bool)>, BuildError> {
    let owner = match &p.owner {
        None => (0, 0),
        Some(o) => resolve_owner(o, &facts_of(store, ground)?).map_err(|message| {
            BuildError::Instruction {
                at: p.at.clone(),
                message: format!("--chown={o}: {message}"),
            }
        })?,
    };
    let (is_dir, mut missing) = destination(store, ground, &p.dest)?;
    let dir_dest = p.dest.ends_with('/') || p.parents || p.sources.len() + p.inline.len() > 1;
    if !dir_dest && !is_dir {
        // A file destination: only its folders are made.
        missing.pop();
    }
    let settings = format!(
        "{:?} {:?} {} {owner:?} {:?} {is_dir} {missing:?} {:?}",
        p.sources, p.inline, p.dest, p.mode, p.exclude
    );
    let (tree, source_key, what) = match &p.from {
        PlaceFrom::Context => {
            let placement = place::plan_context(
                p,
                &opts.context,
                &opts.ignore_file,
                &opts.frontend_files,
                is_dir,
                &missing,
                owner,
                (store, opts.registry.offline),
            )?;
            chain.push_str(&format!("place {}\n", placement.key));
            let key = Digest::of(chain.as_bytes()).hex().to_owned();
            let files = placement.file_count();
            return Ok(mode
                .obtain(store, "place-layer", &key, || {
                    // An archive may write through the stage's links: it
                    // is extracted over the stage's files.
                    match placement.has_archives() && !ground.layers.is_empty() {
                        true => crate::exec::steps::with_unpacked(
                            store,
                            ground,
                            "place-",
                            |(root, _)| {
                                placement.write_over(
                                    store,
                                    opts.compression,
                                    opts.epoch,
                                    Some(root),
                                )
                            },
                        ),
                        false => placement.write(store, opts.compression, opts.epoch),
                    }
                })?
                .map(|(layer, reused)| (layer, files, reused)));
        }
        PlaceFrom::Stage(s) => {
            let b = built
                .get(s)
                .ok_or_else(|| BuildError::Panicked(format!("stage {s} was not built")))?;
            (Some(b.ground.clone()), b.key.clone(), format!("stage {s}"))
        }
        // The image's digest is the key; its layers are fetched only when
        // the copy is not in the cache.
        PlaceFrom::Image(t) => {
            let k = crate::exec::base::peek(t, opts, store, net)?
                .digest
                .to_string();
            (None, k, format!("image {t}"))
        }
    };
    chain.push_str(&format!("place-from {source_key} {settings}\n"));
    let key = Digest::of(chain.as_bytes()).hex().to_owned();
    let mut files = 0;
    let got = mode.obtain(store, "place-layer", &key, || {
        let tree = match (tree, &p.from) {
            (Some(g), _) => g,
            (None, PlaceFrom::Image(t)) => ground_of(&load_root(opts, t, store, net)?, store),
            (None, _) => return Err(BuildError::Panicked("a copy with no source".into())),
        };
        let wanted = unpacked_for(&p.sources);
        crate::exec::steps::with_unpacked_only(store, &tree, "place-", &wanted, |(root, _)| {
            let plan = place::plan_tree(p, root, is_dir, &missing, owner, &what)?;
            files = plan.file_count();
            plan.write(store, opts.compression, opts.epoch)
        })
    })?;
    Ok(got.map(|(layer, reused)| (layer, files, reused)))
}

/// What of a stage or image a COPY --from reads: each source, or its
/// folder when its last part is a glob; the whole tree for anything less
/// plain (`..`, a glob higher up).
fn unpacked_for(sources: &[String]) -> Vec<String> {
    let glob = |c: &str| c.contains(['*', '?', '[']);
    sources
        .iter()
        .map(|s| {
            let parts: Vec<&str> = s
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .collect();
            let Some((last, dirs)) = parts.split_last() else {
                return String::new();
            };
            if parts.contains(&"..") || dirs.iter().any(|c| glob(c)) {
                return String::new();
            }
            match glob(last) {
                true => dirs.join("/"),
                false => parts.join("/"),
            }
        })
        .collect()
}

fn mkdir(
    opts: &BuildOptions,
    m: &MkdirSpec,
    ground: &Ground,
    store: &Store,
    chain: &mut String,
    mode: &Mode,
) -> Result<Made, BuildError> {
    let (_, missing) = destination(store, ground, &m.path)?;
    if missing.is_empty() {
        return Ok(Made::Nothing);
    }
    let (uid, gid) = match &m.owner {
        None => (0, 0),
        Some(o) => resolve_owner(o, &facts_of(store, ground)?).map_err(|message| {
            BuildError::Instruction {
                at: format!("WORKDIR {}", m.path),
                message,
            }
        })?,
    };
    chain.push_str(&format!("mkdir {} {uid}:{gid}\n", missing.join(" ")));
    let key = Digest::of(chain.as_bytes()).hex().to_owned();
    let r = mode.obtain(store, "place-layer", &key, || {
        let mut w = LayerWriter::new(store, opts.compression, opts.epoch)?;
        for p in &missing {
            let ip = ImagePath::new(p.trim_start_matches('/'))
                .map_err(|_| BuildError::Workdir(p.clone()))?;
            w.dir(
                &ip,
                EntryMeta {
                    mode: 0o755,
                    uid: uid.into(),
                    gid: gid.into(),
                },
            )?;
        }
        Ok(w.finish()?)
    })?;
    Ok(match r {
        Some((l, reused)) => Made::Layer(Box::new(l), reused),
        None => Made::Unknown,
    })
}

/// A native install in place of `RUN npm ci` / `RUN pip install -r`. Its
/// layer is remembered under a key of the steps below and the manifests,
/// so an unchanged install reads no lockfile and asks no index again
/// (`--no-cache` and `--refresh` install afresh).
#[allow(clippy::too_many_arguments)]
fn install(
    opts: &BuildOptions,
    i: &InstallSpec,
    ground: &Ground,
    platform: &Platform,
    store: &Store,
    chain: &mut String,
    report: &mut dyn FnMut(Event),
    mode: &Mode,
) -> Result<Made, BuildError> {
    let dir = opts.context.join(&i.project);
    let inputs = crate::exec::record::inputs_text(&dir);
    chain.push_str(&format!(
        "install {:?} dev={} scripts={} {} {inputs}",
        i.kind, i.dev, i.scripts, i.workdir
    ));
    if let Some(home) = &i.user_home {
        chain.push_str(&format!(" user {home}"));
    }
    let key = Digest::of(chain.as_bytes()).hex().to_owned();
    const KIND: &str = "dockerfile-install";
    let afresh = opts.deps.no_cache || opts.deps.refresh;
    if !afresh {
        if let Some(l) = crate::cache::layer::lookup(store, KIND, &key)? {
            return Ok(Made::Layer(Box::new(l), true));
        }
    }
    let shared = match mode {
        Mode::Explain { .. } => return Ok(Made::Unknown),
        Mode::Build(remote) => remote
            .as_deref()
            .map(|c| c as &dyn crate::cache::SharedCache),
    };
    let dopts = DepsOptions {
        kind: i.kind,
        dev: i.dev,
        scripts_in_sandbox: i.scripts,
        sdists_in_sandbox: i.scripts,
        ..opts.deps
    };
    let wd = ImagePath::new(i.workdir.trim_start_matches('/'))
        .map_err(|_| BuildError::Workdir(i.workdir.clone()))?;
    let home = i
        .user_home
        .as_deref()
        .map(|h| ImagePath::new(h.trim_start_matches('/')))
        .transpose()
        .map_err(|_| BuildError::Workdir(i.workdir.clone()))?;
    let on = crate::exec::stage::InstallOn {
        ground,
        workdir: &wd,
        platform,
        config_env: &ground.image_env,
        shared,
        pip_user_home: home.as_ref(),
    };
    let mut warn = |w: String| report(Event::Warning(format!("{}: {w}", i.at)));
    let Some(d) = crate::exec::stage::install_on(opts, store, &dir, &dopts, &on, &mut warn)? else {
        return Ok(Made::Nothing);
    };
    crate::cache::layer::remember(store, KIND, &key, &d.layer)?;
    if let Mode::Build(Some(remote)) = mode {
        for note in remote.take_notes() {
            report(Event::Cache(note));
        }
    }
    Ok(Made::Layer(Box::new(d.layer), d.summary.reused))
}

/// The config a base image gives a Dockerfile stage to start from.
pub fn base_config(cfg: &ImageConfig) -> (Option<String>, Option<String>, Vec<String>) {
    let c = cfg.config.as_ref();
    (
        c.and_then(|c| c.working_dir.clone()),
        c.and_then(|c| c.user.clone()),
        c.and_then(|c| c.env.clone()).unwrap_or_default(),
    )
}
