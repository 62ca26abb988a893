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
use crate::exec::steps::app::{app_epoch, app_files, scan_context};
use crate::exec::steps::config::{self};
use crate::exec::steps::run::run_steps;
use crate::exec::steps::user::{self, user_key, user_layer};
use crate::exec::{BuildError, BuildOptions, Event, LayerKind, LayerSummary};
use crate::facts::{self};
use crate::image::{media, to_json, Descriptor, Manifest};
use crate::layer::ImagePath;
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
