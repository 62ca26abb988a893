//! One build: base -> facts -> user layer -> deps layer -> app layer ->
//! config -> manifest -> outputs.
//!
//! Layers are ordered from least to most often changed (base, user, deps,
//! app), so a code-only change rebuilds and re-ships the app layer alone,
//! as a well-ordered Dockerfile does; the deps layer comes from the cache
//! while the lockfile is unchanged. Everything that lands in an image comes
//! from the inputs and `SOURCE_DATE_EPOCH` only (never the host's clock,
//! paths or user names), so the same inputs give the same digest anywhere.

use crate::deps::{self};
use crate::digest::Digest;
use crate::exec::assemble::{emit_sbom, push_all, push_image};
use crate::exec::record;
use crate::exec::steps::app::{app_epoch, AppFiles};
use crate::exec::steps::config;
use crate::exec::steps::host::HostStep;
use crate::exec::steps::user::{user_key, user_layer, UserPlan};
use crate::exec::walk;
use crate::exec::{BuildError, BuildOptions, Event, LayerKind, LayerSummary};
use crate::facts::{self, Facts};
use crate::graph::config::ConfigSettings;
use crate::graph::spec::UserSpec;
use crate::image::{media, to_json, Descriptor, Manifest};
use crate::layer::Layer;
use crate::reference::Reference;
use crate::registry::{self, Client};
use crate::store::Store;
use crate::transport::{self, BaseImage, BuiltImage, Transport};

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

/// Runs one build: the walk with the backend that makes each layer (or
/// takes it from the cache), then the config, manifest, outputs, pushes
/// and SBOM.
pub fn build(
    opts: &BuildOptions,
    store: &Store,
    report: &mut dyn FnMut(Event),
    net: &dyn registry::Progress,
) -> Result<BuildResult, BuildError> {
    if opts.graph.sequenced {
        return crate::exec::sequence::build(opts, store, report, net);
    }
    walk::workdir(opts)?;
    if let Some(sbom) = &opts.sbom {
        crate::sbom::check_destination(sbom, &opts.outputs, !opts.push.is_empty())?;
    }
    let client = registry_client(opts, matches!(opts.base, Transport::Registry(_)))?;
    let mut b = Build {
        opts,
        store,
        report,
        net,
        client: client.as_ref(),
        base: None,
        remote: None,
        fetched: false,
        settings: opts.settings.clone(),
        new_layers: Vec::new(),
        packages: Vec::new(),
    };
    let walked = walk::walk(opts, store, &mut b)?;
    let base = walked.base;
    let facts = walked.facts;
    let files = walked.files;
    let remote = b.remote.clone();
    let packages = std::mem::take(&mut b.packages);
    let mut new_layers = std::mem::take(&mut b.new_layers);
    let mut settings = std::mem::take(&mut b.settings);
    settings.workdir = Some(walked.workdir.absolute());
    new_layers.extend(opts.stage_layers.iter().cloned());

    let created = rfc3339(opts.epoch);
    let added: Vec<(Digest, String)> = new_layers
        .iter()
        .map(|l| (l.layer.diff_id.clone(), l.what.clone()))
        .collect();
    if let Some((at, message)) = facts
        .as_ref()
        .filter(|f| !f.shell)
        .and_then(|_| config::no_shell_error(&settings, false))
    {
        return Err(BuildError::Instruction { at, message });
    }
    let cfg = config::derive(&base.config, &settings, &added, &created);
    if let Some((at, message)) = facts
        .as_ref()
        .and_then(|f| config::off_path_error(&cfg, f.node.as_ref(), false))
    {
        return Err(BuildError::Instruction { at, message });
    }
    if let Some(w) = config::entrypoint_warning(&base.config, &settings) {
        (b.report)(Event::Warning(w));
    }
    if let Some(w) = config::root_warning(&cfg) {
        (b.report)(Event::Warning(w));
    }
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
        b.need_layers()?;
        transport::write_output(out, &image, &opts.tags, store).map_err(|source| {
            BuildError::Output {
                output: out.to_string(),
                source,
            }
        })?;
        (b.report)(Event::Output {
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
            b.report,
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
        b.report,
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

/// Writes a built image to the build's outputs and pushes it, for an
/// image whose layers are all in the store.
pub(crate) fn deliver(
    opts: &BuildOptions,
    store: &Store,
    image: &BuiltImage,
    remote: Option<&Reference>,
    report: &mut dyn FnMut(Event),
    net: &dyn registry::Progress,
) -> Result<(), BuildError> {
    let client = registry_client(opts, false)?;
    let mut pushes: Vec<Reference> = Vec::new();
    for out in &opts.outputs {
        if let Transport::Registry(r) = out {
            pushes.push(Reference::parse(r)?);
            continue;
        }
        transport::write_output(out, image, &opts.tags, store).map_err(|source| {
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
        let one = [push_image(image, store)?];
        push_all(client, &pushes, &one, None, remote, store, report, net)?;
    }
    Ok(())
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

pub use crate::image::rfc3339;

/// The backend of a build: every step makes its layer or takes it from
/// the cache, and reports what it did.
struct Build<'a, 'r> {
    opts: &'a BuildOptions,
    store: &'a Store,
    report: &'r mut dyn FnMut(Event),
    net: &'a dyn registry::Progress,
    client: Option<&'a Client>,
    /// The base, once resolved.
    base: Option<BaseImage>,
    /// The base's registry reference, for a registry base.
    remote: Option<Reference>,
    /// A registry base's layers are in the store (and verified).
    fetched: bool,
    settings: ConfigSettings,
    new_layers: Vec<LayerSummary>,
    packages: Vec<crate::deps::Package>,
}

impl Build<'_, '_> {
    /// A registry base's layers are fetched only when their bytes are
    /// needed: to read facts, run a step, or write an archive. A push
    /// mounts them.
    fn need_layers(&mut self) -> Result<(), BuildError> {
        if self.fetched {
            return Ok(());
        }
        if let (Some(c), Some(r), Some(base)) = (self.client, &self.remote, &self.base) {
            c.fetch_blobs(r, &base.layers, self.store, self.net)?;
            let diff_ids = &base.config.rootfs.diff_ids;
            crate::layer::verify::verify_base(self.store, &base.source, &base.layers, diff_ids)
                .map_err(registry::RegistryError::from)?;
        }
        self.fetched = true;
        Ok(())
    }

    fn layer(&mut self, what: String, layer: Layer, kind: LayerKind, reused: bool, files: usize) {
        (self.report)(Event::Layer {
            what: what.clone(),
            digest: layer.descriptor.digest.clone(),
            size: layer.descriptor.size,
            files,
        });
        self.new_layers.push(LayerSummary {
            what,
            layer,
            kind,
            reused,
        });
    }
}

impl walk::Backend for Build<'_, '_> {
    type Base = BaseImage;

    fn warn(&mut self, warning: String) {
        (self.report)(Event::Warning(warning));
    }

    fn host_step(&mut self, step: &HostStep) -> Result<(), BuildError> {
        (self.report)(Event::Step(
            step.run_if_needed(&self.opts.context, self.store)?,
        ));
        Ok(())
    }

    fn base(&mut self) -> Result<(walk::BaseView, BaseImage), BuildError> {
        let (base, remote) = load_base(self.opts, self.store, self.client, self.net)?;
        self.fetched = remote.is_none();
        self.remote = remote;
        (self.report)(Event::Base {
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
            || self.opts.settings.healthcheck.is_some()
        {
            (self.report)(Event::Warning(
                "the image has a HEALTHCHECK, kept in Docker's config form: docker honours it, podman and Kubernetes ignore it in OCI images".into(),
            ));
        }
        let view = walk::BaseView {
            digest: base.manifest_digest.clone(),
            layers: base.layers.clone(),
            env: base
                .config
                .config
                .as_ref()
                .and_then(|c| c.env.clone())
                .unwrap_or_default(),
        };
        self.base = Some(base.clone());
        Ok((view, base))
    }

    fn run_step(
        &mut self,
        step: &crate::sandbox::Step,
        key: &str,
        ground: &crate::sandbox::Ground,
        _below_known: bool,
    ) -> Result<Option<Layer>, BuildError> {
        self.need_layers()?;
        let (opts, store) = (self.opts, self.store);
        let mut files = 0;
        let (layer, reused) =
            crate::cache::layer::get_or_make::<BuildError>(store, "run-layer", key, || {
                let made =
                    crate::sandbox::run_step(store, ground, step, opts.compression, opts.epoch)?;
                files = made.changes;
                Ok(made.layer)
            })?;
        let what = format!("hoist run: {}", step.shown());
        self.layer(what, layer.clone(), LayerKind::Run, reused, files);
        Ok(Some(layer))
    }

    fn facts(
        &mut self,
        stack: &Digest,
        ground: &crate::sandbox::Ground,
        _runs_known: bool,
        wanted: bool,
    ) -> Result<Option<Facts>, BuildError> {
        if !wanted {
            return Ok(None);
        }
        let store = self.store;
        Ok(Some(facts::read_facts_cached(
            store,
            stack,
            &ground.layers,
            &mut || self.need_layers(),
        )?))
    }

    fn user(
        &mut self,
        spec: &UserSpec,
        plan: Option<&UserPlan>,
        facts: Option<&Facts>,
    ) -> Result<(), BuildError> {
        let (Some(plan), Some(facts)) = (plan, facts) else {
            return Ok(());
        };
        self.settings.user = Some(format!("{}:{}", plan.uid, plan.gid));
        if plan.reused {
            (self.report)(Event::UserReused {
                name: spec.name.clone(),
                uid: plan.uid,
                gid: plan.gid,
            });
            return Ok(());
        }
        let (opts, store) = (self.opts, self.store);
        let key = user_key(opts, plan);
        let (layer, reused) =
            crate::cache::layer::get_or_make::<BuildError>(store, "user-layer", &key, || {
                user_layer(store, opts, facts, plan)
            })?;
        let what = format!(
            "hoist user {} {}:{} home {}",
            spec.name, plan.uid, plan.gid, plan.home
        );
        self.layer(what, layer, LayerKind::User, reused, 0);
        Ok(())
    }

    fn deps(&mut self, step: walk::DepsStep<'_>) -> Result<(), BuildError> {
        let opts = self.opts;
        let Some(base) = &self.base else {
            return Ok(());
        };
        let shared = crate::cache::remote::RegistryCache::new(&opts.cache, &opts.registry)?;
        let input = deps::InstallInput {
            workdir: step.workdir,
            platform: &base.platform,
            facts: step.facts,
            config_env: base
                .config
                .config
                .as_ref()
                .and_then(|c| c.env.as_deref())
                .unwrap_or_default(),
            compression: opts.compression,
            epoch: opts.epoch,
            shared: shared.as_ref().map(|c| c as &dyn crate::cache::SharedCache),
            sandbox: Some(step.ground),
            pip_user_home: None,
        };
        let report = &mut *self.report;
        let mut warn = |w: String| report(Event::Warning(w));
        let installed = step
            .project
            .install(&input, &opts.deps, self.store, &mut warn);
        for note in shared.iter().flat_map(|c| c.take_notes()) {
            (self.report)(Event::Cache(note));
        }
        let Some(d) = installed? else {
            return Ok(());
        };
        if let Some(e) = step
            .context
            .entries
            .iter()
            .filter(|_| d.summary.ecosystem == "npm")
            .find(|e| e.rel == "node_modules" || e.rel.starts_with("node_modules/"))
        {
            (self.report)(Event::Warning(format!(
                "the build context has {} (not ignored): the app layer puts it over the deps layer's; add node_modules to {}",
                e.rel.split('/').next().unwrap_or("node_modules"),
                opts.ignore_file
            )));
        }
        let what = format!(
            "hoist deps: {} ({} packages)",
            d.command, d.summary.packages
        );
        self.packages = d.packages;
        (self.report)(Event::Deps(d.summary.clone()));
        self.layer(
            what,
            d.layer,
            LayerKind::Deps,
            d.summary.reused,
            d.summary.files,
        );
        Ok(())
    }

    fn app(&mut self, files: &AppFiles, key: &str) -> Result<(), BuildError> {
        let (opts, store) = (self.opts, self.store);
        let epoch = app_epoch(opts)?;
        let (app, reused) =
            crate::cache::layer::get_or_make::<BuildError>(store, "app-layer", key, || {
                Ok(files.write(store, opts.compression, epoch)?)
            })?;
        let what = format!(
            "hoist app: COPY . {} ({} files)",
            files.dest.absolute(),
            files.file_count()
        );
        self.layer(what, app, LayerKind::App, reused, files.file_count());
        Ok(())
    }
}
