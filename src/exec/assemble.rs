//! The last steps of a build: the OCI index over several platforms'
//! images, the outputs (`oci:`, `oci-archive:`, `docker-archive:`), the
//! pushes (one per repository, with every tag) and the SBOM.

use crate::exec::build::{build, registry_client};
use crate::exec::{BuildError, BuildOptions, BuildResult, Event};
use crate::image::{media, to_json, Descriptor, Platform};
use crate::reference::Reference;
use crate::registry::{self, Client, PushImage, PushPlan};
use crate::store::Store;
use crate::transport::{self, BuiltImage, Transport};

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

/// Writes the SBOM of `inventories` when the build asks for one, next to
/// each output and, for `pushes`, as an artifact in their repositories.
pub(crate) fn emit_sbom(
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

/// What a push needs of one built image.
pub(crate) fn push_image(image: &BuiltImage, store: &Store) -> Result<PushImage, BuildError> {
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
pub(crate) fn push_all(
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
