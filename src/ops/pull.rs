//! `hoist pull`: copy one platform's image from a registry into the store,
//! ready to be written as an archive or layout for an air-gapped host, or
//! pushed to another registry.
//!
//! The image is kept exactly as the registry serves it (manifest bytes,
//! media types, compressed layers), so its digest is the registry's and a
//! later `--base oci-archive:FILE` build gives the same result as a build
//! on the registry reference. A copy to another registry keeps that digest
//! too: the same manifest bytes are pushed.

use crate::image::Platform;
use crate::reference::Reference;
use crate::registry::{
    Client, Progress, PushImage, PushPlan, PushReport, RegistryError, RemoteImage,
};
use crate::store::Store;
use crate::transport::BuiltImage;

/// Pulls `r` for `platform`: manifest, config and every layer end up in
/// the store, verified.
pub fn pull(
    client: &Client,
    r: &Reference,
    platform: &Platform,
    store: &Store,
    progress: &dyn Progress,
) -> Result<RemoteImage, RegistryError> {
    client
        .pull(r, std::slice::from_ref(platform), store, progress)?
        .into_iter()
        .next()
        .ok_or_else(|| RegistryError::NoPlatform {
            reference: r.to_string(),
            wanted: platform.to_string(),
            available: Vec::new(),
        })
}

/// The pulled image as an output writer takes it.
pub fn built(img: &RemoteImage) -> BuiltImage {
    let mut manifest = img.manifest_descriptor.clone();
    manifest.platform = Some(img.platform.clone());
    BuiltImage {
        manifest,
        manifest_json: img.manifest.clone(),
        config_json: img.config.clone(),
    }
}

/// Pushes the pulled image to `target` with its manifest bytes unchanged
/// (so under the same digest); blobs the target's registry can mount from
/// the source's repository are mounted, the others uploaded from the store.
pub fn push(
    client: &Client,
    img: &RemoteImage,
    target: &Reference,
    store: &Store,
    progress: &dyn Progress,
) -> Result<PushReport, RegistryError> {
    let mut blobs = vec![img.manifest.config.clone()];
    blobs.extend(img.layers.iter().cloned());
    let images = [PushImage {
        manifest: img.manifest_descriptor.clone(),
        manifest_bytes: img.manifest_bytes.clone(),
        blobs,
    }];
    let plan = PushPlan {
        images: &images,
        index: None,
        extra_tags: &[],
        base: Some(&img.reference),
    };
    client.push(target, &plan, store, progress)
}
