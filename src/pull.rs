//! `hoist pull`: copy one platform's image from a registry into the store,
//! ready to be written as an archive or layout for an air-gapped host.
//!
//! The image is kept exactly as the registry serves it (manifest bytes,
//! media types, compressed layers), so its digest is the registry's and a
//! later `--base oci-archive:FILE` build gives the same result as a build
//! on the registry reference.

use crate::image::Platform;
use crate::reference::Reference;
use crate::registry::{Client, Progress, RegistryError};
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
) -> Result<BuiltImage, RegistryError> {
    let img = client
        .pull(r, std::slice::from_ref(platform), store, progress)?
        .into_iter()
        .next()
        .ok_or_else(|| RegistryError::NoPlatform {
            reference: r.to_string(),
            wanted: platform.to_string(),
            available: Vec::new(),
        })?;
    let mut manifest = img.manifest_descriptor.clone();
    manifest.platform = Some(img.platform.clone());
    Ok(BuiltImage {
        manifest,
        manifest_json: img.manifest,
        config_json: img.config,
    })
}
