//! The base as a step key and the dry run need it: its manifest digest,
//! platform and layers, read without importing anything (a local source is
//! hashed in place, a registry one resolved with its manifest and config
//! cached). One place, so a stage's key and `--dry-run` agree on what the
//! base is.

use crate::digest::Digest;
use crate::exec::{BuildError, BuildOptions};
use crate::image::Descriptor;
use crate::reference::Reference;
use crate::registry;
use crate::store::Store;
use crate::transport::{self, HashOnly, Transport};

/// A base as resolved for the build's platform.
pub struct PeekedBase {
    pub digest: Digest,
    /// `SOURCE PLATFORM DIGEST (N layers)`, as the dry run prints it.
    pub line: String,
    pub layers: Vec<Descriptor>,
    /// Its config, for what the image will run.
    pub config: crate::image::ImageConfig,
}

/// Resolves `base` for `opts.platform` without importing its layers.
pub fn peek(
    base: &Transport,
    opts: &BuildOptions,
    store: &Store,
    net: &dyn registry::Progress,
) -> Result<PeekedBase, BuildError> {
    match base {
        Transport::Registry(name) => {
            let client = registry::Client::new(opts.registry.clone())?;
            let img = client.resolve(&Reference::parse(name)?, &opts.platform, store, net)?;
            let layers = img.oci_layers();
            Ok(PeekedBase {
                line: format!(
                    "docker://{} {} {} ({} layers)",
                    img.reference,
                    img.platform,
                    img.manifest_digest,
                    layers.len()
                ),
                digest: img.manifest_digest,
                layers,
                config: img.config,
            })
        }
        local => {
            let fail = |source| BuildError::Base {
                base: local.to_string(),
                source,
            };
            let mut src = transport::open_source(local).map_err(fail)?;
            let r = src
                .resolve(Some(&opts.platform), &mut HashOnly)
                .map_err(fail)?;
            Ok(PeekedBase {
                line: format!(
                    "{} {} {} ({} layers)",
                    src.name(),
                    r.platform,
                    r.manifest.digest,
                    r.layers().len()
                ),
                digest: r.manifest.digest.clone(),
                layers: r.layers().to_vec(),
                config: r.config.clone(),
            })
        }
    }
}

/// The config of `base` for `opts.platform`: from the registry (manifest
/// and config only, cached), or read from a local transport.
pub fn config(
    base: &Transport,
    opts: &BuildOptions,
    store: &Store,
    net: &dyn registry::Progress,
) -> Result<crate::image::ImageConfig, BuildError> {
    match base {
        Transport::Registry(name) => {
            let client = registry::Client::new(opts.registry.clone())?;
            let img = client.resolve(&Reference::parse(name)?, &opts.platform, store, net)?;
            Ok(img.config)
        }
        local => {
            let b = transport::load_base(local, &opts.platform, store).map_err(|source| {
                BuildError::Base {
                    base: local.to_string(),
                    source,
                }
            })?;
            Ok(b.config)
        }
    }
}
