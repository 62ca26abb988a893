//! `hoist bundle`.

use anyhow::Result;
use clap::Args;

use std::path::{Path, PathBuf};

use hoist::exec::RunSettings;
use hoist::frontend::recipe::project::{discover, Overrides};
use hoist::store::human_size;

use super::build::{flags_spec, job_reporter, BuildArgs};
use super::render::Renderer;
use super::{registry_options, source_date_epoch, RegistryArgs};

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// What the bundle is for: image names from ./hoist.toml (default: all of them), or an app folder.
    pub what: Vec<String>,
    /// The file to write (a tar: an index, then blobs and store entries).
    #[arg(long = "output", short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// The hoist.toml to read (default: ./hoist.toml, or the app folder's).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Start from a stock recipe: node, nextjs-standalone, python or static.
    #[arg(long)]
    pub recipe: Option<String>,
    /// The target the builds will use: prod (default), dev, or one the hoist.toml defines.
    #[arg(long)]
    pub target: Option<String>,
    /// The base image, as `hoist build --base` takes it.
    #[arg(long)]
    pub base: Option<String>,
    /// The platform(s) the builds will use, os/arch[/variant][,...] (default: this machine's).
    #[arg(long)]
    pub platform: Option<String>,
    /// The deps layer's installer: auto (the default), npm, pip or none.
    #[arg(long, value_name = "auto|npm|pip|none")]
    pub deps: Option<String>,
    /// Bundle development dependencies too (as `hoist build --dev` installs them).
    #[arg(long)]
    pub dev: bool,
    /// pip: install from pylock.toml only.
    #[arg(long)]
    pub locked: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `hoist bundle`: the builds `hoist build` would run, on a fresh store,
/// and what they fetched written to one file.
pub(super) fn run(a: BundleArgs, out: &Renderer) -> Result<()> {
    let b = BuildArgs {
        what: a.what,
        files: a.file.into_iter().collect(),
        recipe: a.recipe,
        target: a.target,
        base: a.base,
        platform: a.platform,
        deps: a.deps,
        dev: a.dev,
        locked: a.locked,
        registry: a.registry,
        ..Default::default()
    };
    let overrides = Overrides {
        recipe: b.recipe.clone(),
        target: b.target.clone(),
        spec: flags_spec(&b)?,
    };
    let (project, names) = discover(
        b.files.first().map(PathBuf::as_path),
        &b.what,
        Path::new(""),
    )?;
    let run = RunSettings {
        epoch: source_date_epoch()?,
        registry: registry_options(&b.registry),
        no_cache: false,
        refresh: false,
        push: false,
        output_dir: None,
        default_tags: project.file.is_some(),
        cache: Default::default(),
        sbom: None,
    };
    let jobs = hoist::ops::build::jobs(&project, &names, &overrides, &run)?;
    let several = jobs.len() > 1;
    let report = job_reporter(out, several);
    let created = hoist::ops::bundle::create(&jobs, &a.output, &report, out)?;
    for image in &created.index.images {
        out.line(&format!(
            "bundled {} ({}) on {} for {}: built {}",
            image.name,
            image.target,
            image.base,
            image.platforms.join(","),
            image.digest
        ));
    }
    out.line(&format!(
        "wrote   {}: {} blobs, {} entries, {}",
        a.output.display(),
        created.index.blobs.len(),
        created.index.keys.len(),
        human_size(created.size)
    ));
    outln!("{}", a.output.display());
    Ok(())
}
