//! `hoist lock`.

use anyhow::{bail, Context as _, Result};
use clap::Args;

use std::path::{Path, PathBuf};

use hoist::deps::{DepsKind, DepsOptions};
use hoist::exec::{BuildOptions, Event, RunSettings};
use hoist::frontend::recipe::project::{discover, Overrides};
use hoist::frontend::recipe::Spec;
use hoist::graph::config::ConfigSettings;
use hoist::layer::Compression;
use hoist::store::Store;

use super::render::{event_line, Mode, Renderer};
use super::{platforms, registry_options, RegistryArgs};

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The app folder holding requirements.txt.
    #[arg(default_value = ".")]
    pub context: PathBuf,
    /// The base image the app will run on (its Python, C library and CPU decide the wheels); default: the base CONTEXT/hoist.toml names.
    #[arg(long)]
    pub base: Option<String>,
    /// The platform(s) to lock for, os/arch[/variant][,...] (default: this machine's).
    #[arg(long)]
    pub platform: Option<String>,
    /// Where to write the lock (default: CONTEXT/pylock.toml).
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Ask the index for every page again (otherwise a page the index said is fresh, ten minutes on PyPI, is used without a request, as pip and uv do).
    #[arg(long)]
    pub refresh: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub(super) fn run(a: LockArgs, out: &Renderer) -> Result<()> {
    let output = a
        .output
        .clone()
        .unwrap_or_else(|| a.context.join(hoist::deps::pip::lock::LOCK_NAME));
    let registry = registry_options(&a.registry);
    let deps = DepsOptions {
        kind: DepsKind::Pip,
        offline: a.registry.offline,
        refresh: a.refresh,
        ..DepsOptions::default()
    };
    let (opts, platforms) = match &a.base {
        Some(base) => {
            let platforms = platforms(a.platform.as_deref())?;
            let opts = BuildOptions {
                context: a.context.clone(),
                ignore_file: ".dockerignore".into(),
                base: hoist::transport::recognise(base)?,
                platform: platforms[0].clone(),
                user: None,
                workdir: "/app".into(),
                settings: ConfigSettings::default(),
                tags: Vec::new(),
                outputs: Vec::new(),
                compression: Compression::default(),
                epoch: 0,
                push: Vec::new(),
                registry,
                deps,
                app: Default::default(),
                step: None,
                sbom: None,
                cache: Default::default(),
                run: Vec::new(),
                graph: hoist::graph::Graph {
                    stages: Vec::new(),
                    sequenced: false,
                },
                stage_layers: Vec::new(),
                frontend_files: Vec::new(),
                secrets: Vec::new(),
            };
            (opts, platforms)
        }
        // The base (and platforms) the app's hoist.toml builds on.
        None => {
            let context = a.context.display().to_string();
            let (project, names) = discover(None, &[context], Path::new(""))?;
            let [name] = names.as_slice() else {
                bail!(
                    "{} builds several images ({}); run hoist lock in one image's folder, or pass --base",
                    a.context.display(),
                    project.image_names().join(", ")
                );
            };
            let overrides = Overrides {
                recipe: None,
                target: None,
                spec: Spec::default(),
            };
            let r = project
                .resolve(name.as_deref(), &overrides)
                .context("hoist lock without --base takes the base from hoist.toml")?;
            let run = RunSettings {
                epoch: 0,
                registry,
                no_cache: false,
                refresh: false,
                push: false,
                output_dir: None,
                default_tags: false,
                sbom: None,
                cache: Default::default(),
            };
            let (mut opts, recipe_platforms) = hoist::ops::build::options(&r, &run)?;
            opts.deps = deps;
            let platforms = match a.platform.as_deref() {
                Some(p) => platforms(Some(p))?,
                None => recipe_platforms,
            };
            (opts, platforms)
        }
    };
    let store = Store::open_default()?;
    let started = std::time::Instant::now();
    let mut report = |e: Event| out.line(&event_line(e, out.mode() == Mode::Bars));
    let locked = hoist::ops::lock::lock(&opts, &platforms, &output, &store, &mut report, out)?;
    let per: Vec<String> = locked
        .packages
        .iter()
        .map(|(p, n)| format!("{p}: {n} packages"))
        .collect();
    out.line(&format!(
        "locked  {} ({}; {} entries) in {:.2}s",
        locked.path.display(),
        per.join(", "),
        locked.entries,
        started.elapsed().as_secs_f64()
    ));
    outln!("{}", locked.path.display());
    Ok(())
}
