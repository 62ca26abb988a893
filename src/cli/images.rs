//! `hoist images`.

use anyhow::Result;
use clap::Args;

use hoist::image::Platform;
use hoist::store::Store;

use super::show;

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// A built image (tag, name or digest prefix, as `hoist images` lists), or oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:TAG].
    pub image: String,
    /// The platform to show when the image has several (default: this machine's).
    #[arg(long)]
    pub platform: Option<String>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn run_images(a: ImagesArgs) -> Result<()> {
    let store = Store::open_default()?;
    let records = hoist::ops::images::list(&store)?;
    show(a.json, &records, |r| hoist::ops::images::render_list(r))
}

pub(super) fn run_history(a: HistoryArgs) -> Result<()> {
    let store = Store::open_default()?;
    let platform = a
        .platform
        .as_deref()
        .map(Platform::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let h = hoist::ops::images::history(&store, &a.image, platform.as_ref())?;
    show(a.json, &h, hoist::ops::images::History::render)
}
