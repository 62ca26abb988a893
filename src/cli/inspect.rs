//! `hoist inspect`.

use anyhow::Result;
use clap::Args;

use hoist::image::Platform;
use hoist::reference::Reference;
use hoist::registry::Client;
use hoist::store::Store;
use hoist::transport::Transport;

use super::render::Renderer;
use super::{registry_options, RegistryArgs};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image: a registry reference (docker://REF or REF), oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:TAG].
    pub source: String,
    /// The platform to show when the source holds several (default: this machine's).
    #[arg(long)]
    pub platform: Option<String>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub(super) fn run(a: InspectArgs, out: &Renderer) -> Result<()> {
    let source = hoist::transport::recognise(&a.source)?;
    let platform = a
        .platform
        .as_deref()
        .map(Platform::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let report = match &source {
        Transport::Registry(name) => {
            // A registry image's layers are pulled into the store (verified,
            // and reused by later builds) to measure their uncompressed sizes.
            let r = Reference::parse(name)?;
            let store = Store::open_default()?;
            let client = Client::new(registry_options(&a.registry))?;
            let p = platform.clone().unwrap_or_else(Platform::host);
            let img = client.resolve(&r, &p, &store, out)?;
            client.fetch_blobs(&r, &img.layers, &store, out)?;
            hoist::ops::inspect::inspect_pulled(&img, &store)?
        }
        _ => hoist::ops::inspect::inspect(&source, platform.as_ref())?,
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", report.render());
    }
    Ok(())
}
