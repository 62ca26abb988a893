//! `hoist init`.

use anyhow::Result;
use clap::Args;

use std::path::PathBuf;

use super::render::Renderer;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The app folder.
    #[arg(default_value = ".")]
    pub context: PathBuf,
    /// The base to write into the file (default: the stock recipe's, e.g. docker.io/library/node:22-alpine).
    #[arg(long)]
    pub base: Option<String>,
    /// Use this stock recipe rather than the one detected: node, nextjs-standalone, python or static.
    #[arg(long)]
    pub recipe: Option<String>,
    /// Replace an existing hoist.toml.
    #[arg(long)]
    pub force: bool,
}

pub(super) fn run(a: InitArgs, out: &Renderer) -> Result<()> {
    let written = hoist::frontend::recipe::init::write(
        &a.context,
        a.base.as_deref(),
        a.recipe.as_deref(),
        a.force,
    )?;
    out.line(&format!(
        "wrote   {} from the stock recipe `{}` (found: {})",
        written.path.display(),
        written.recipe,
        written.because
    ));
    outln!("{}", written.path.display());
    Ok(())
}
