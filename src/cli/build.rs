//! `hoist build`.

use anyhow::{bail, Result};
use clap::Args;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hoist::deps::DepsKind;
use hoist::exec::{self, Event, RunSettings};
use hoist::frontend::recipe::project::{discover, Overrides};
use hoist::frontend::recipe::Spec;
use hoist::graph::config;
use hoist::graph::spec::UserSpec;
use hoist::layer::Compression;
use hoist::ops::batch::{self, Built, Job};
use hoist::registry;
use hoist::store::{human_size, Store};
use hoist::transport::Transport;

use super::render::{event_line, Mode, Renderer};
use super::{platforms, registry_options, source_date_epoch, RegistryArgs};

#[derive(Debug, Args, Default)]
pub struct BuildArgs {
    /// What to build: image names from ./hoist.toml (default: all of them), or an app folder (the build context; its hoist.toml is read if it has one).
    pub what: Vec<String>,
    /// The hoist.toml, a Dockerfile/Containerfile, or compose files (repeatable, merged as docker compose merges them) to read (default: ./hoist.toml, or the app folder's; in a folder with a Dockerfile and no hoist.toml, the Dockerfile).
    #[arg(long = "file", short = 'f', value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// A compose profile to enable (repeatable; default COMPOSE_PROFILES).
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
    /// A Dockerfile build arg, KEY=VALUE (repeatable); KEY alone takes the environment's value.
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// A secret for Dockerfile `RUN --mount=type=secret` steps: id=ID,src=FILE or id=ID,env=VARIABLE (repeatable); never written to a layer.
    #[arg(long = "secret", value_name = "id=ID,src=FILE")]
    pub secrets: Vec<String>,
    /// Start from a stock recipe: node, nextjs-standalone, python or static.
    #[arg(long)]
    pub recipe: Option<String>,
    /// The target to build: prod (default), dev, or one the hoist.toml defines.
    #[arg(long)]
    pub target: Option<String>,
    /// Print what would be built and why (the base, each layer reused or built, the build step), writing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: list the files the app layer would hold.
    #[arg(long, requires = "dry_run")]
    pub list_files: bool,
    /// Write each image as an oci-archive DIR/NAME.tar (NAME-TARGET.tar for targets other than prod).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// The base image: a registry reference (alpine:3.20, docker://REF), oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:TAG].
    #[arg(long)]
    pub base: Option<String>,
    /// The platform(s) to build for, os/arch[/variant][,...]: several give one image each under an OCI index (default: this machine's).
    #[arg(long)]
    pub platform: Option<String>,
    /// The app user, NAME[:UID[:GID]] (ids default to 1001); reused when the base has it.
    #[arg(long)]
    pub user: Option<String>,
    /// Where the app's files go in the image, and the working directory (default /app).
    #[arg(long)]
    pub workdir: Option<String>,
    /// Environment variable KEY=VALUE (repeatable).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Entrypoint: a JSON array or a command line.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Command: a JSON array or a command line.
    #[arg(long)]
    pub cmd: Option<String>,
    /// Label KEY=VALUE (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Exposed port, PORT[/tcp|udp|sctp] (repeatable).
    #[arg(long = "expose", value_name = "PORT")]
    pub expose: Vec<String>,
    /// Signal that stops the container, e.g. SIGTERM.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Health check command (Docker's HEALTHCHECK): a JSON array or a shell command, or NONE.
    #[arg(long)]
    pub healthcheck: Option<String>,
    /// Time between health checks, e.g. 30s.
    #[arg(long, requires = "healthcheck")]
    pub healthcheck_interval: Option<String>,
    /// Time a health check may take, e.g. 5s.
    #[arg(long, requires = "healthcheck")]
    pub healthcheck_timeout: Option<String>,
    /// Failures before the container is unhealthy.
    #[arg(long, requires = "healthcheck")]
    pub healthcheck_retries: Option<u64>,
    /// A name for the image, recorded in archives and layouts (repeatable).
    #[arg(long = "tag", short = 't')]
    pub tags: Vec<String>,
    /// Where to write the image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:TAG], docker-daemon:NAME[:TAG] (Docker's socket), containers-storage:NAME[:TAG] (podman's store) (repeatable).
    #[arg(long = "output", short = 'o')]
    pub outputs: Vec<String>,
    /// Load the image into the local engine under its tags: Docker when DOCKER_HOST is set or its socket answers, else podman.
    #[arg(long)]
    pub load: bool,
    /// Layer compression: gzip (default), zstd or none.
    #[arg(long)]
    pub compression: Option<String>,
    /// The ignore file, relative to the context (default .dockerignore).
    #[arg(long)]
    pub ignore_file: Option<String>,
    /// Push the image to the registry of every --tag.
    #[arg(long)]
    pub push: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// The deps layer's installer: auto (from the files in the context; the default), npm, pip or none.
    #[arg(long, value_name = "auto|npm|pip|none")]
    pub deps: Option<String>,
    /// Keep development dependencies: npm ci without --omit=dev; pip also installs requirements-dev.txt.
    #[arg(long)]
    pub dev: bool,
    /// Fail when a dependency has install scripts (hoist runs none) instead of warning.
    #[arg(long)]
    pub strict_scripts: bool,
    /// npm: `sandbox` runs the dependencies' install scripts (node-gyp builds) inside the image, in hoist's rootless sandbox; `ignore` (default) runs none.
    #[arg(long, value_name = "ignore|sandbox")]
    pub scripts: Option<String>,
    /// pip: `sandbox` builds packages that have only an sdist into wheels inside the image, in hoist's rootless sandbox; `refuse` (default) fails naming them.
    #[arg(long, value_name = "refuse|sandbox")]
    pub sdists: Option<String>,
    /// Dockerfile RUN lines: `auto` (default) does the ones hoist recognises (npm ci, pip install -r, useradd, mkdir...) natively; `never` runs every RUN as written in the sandbox.
    #[arg(long, value_name = "auto|never")]
    pub native: Option<String>,
    /// When to ask the registry what the base's tag names: `newer` (default) asks with one HEAD and reads the manifest only when it moved; `missing` asks only when the store has never seen the tag; `never` asks nothing and fails when the base is not in the store; `always` reads the manifest again.
    #[arg(long, value_name = "always|missing|never|newer", default_value = "newer", value_parser = parse_pull)]
    pub pull: registry::PullPolicy,
    /// Rebuild the deps layer even when the cache has it.
    #[arg(long)]
    pub no_cache: bool,
    /// pip: resolve requirements.txt afresh instead of using the cached resolution, and ask the index for every page again (otherwise a page the index said is fresh, ten minutes on PyPI, is used without a request, as pip and uv do).
    #[arg(long)]
    pub refresh: bool,
    /// pip: install from pylock.toml only, and fail when it does not satisfy requirements.txt.
    #[arg(long)]
    pub locked: bool,
    /// Write a bill of materials: spdx (SPDX 2.3 JSON) or cyclonedx (CycloneDX 1.5 JSON), next to each archive or layout output (FILE.spdx.json, FILE.cdx.json) and attached to each pushed image.
    #[arg(long, value_name = "spdx|cyclonedx")]
    pub sbom: Option<String>,
    /// Write the bill of materials to FILE instead of next to the outputs.
    #[arg(long, value_name = "FILE", requires = "sbom")]
    pub sbom_output: Option<std::path::PathBuf>,
    /// Look deps layers up in this registry repository before resolving or downloading anything (repeatable: the first hit wins).
    #[arg(long = "cache-from", value_name = "REPOSITORY")]
    pub cache_from: Vec<String>,
    /// Share deps layers to this registry repository, each tagged by its cache key.
    #[arg(long = "cache-to", value_name = "REPOSITORY")]
    pub cache_to: Option<String>,
    /// Import a file written by `hoist bundle` into the store (verified) first; with --offline, build without network.
    #[arg(long, value_name = "FILE")]
    pub from_bundle: Option<PathBuf>,
}

/// The command line's image settings, as the top layer of the recipe.
pub(super) fn flags_spec(a: &BuildArgs) -> Result<Spec> {
    let duration = |s: &Option<String>| s.as_deref().map(config::parse_duration).transpose();
    let mut s = Spec::default();
    let i = &mut s.image;
    i.base = a
        .base
        .as_deref()
        .map(hoist::transport::recognise)
        .transpose()?;
    i.platforms = a
        .platform
        .as_deref()
        .map(|p| platforms(Some(p)))
        .transpose()?;
    i.workdir = a.workdir.clone();
    i.user = a.user.as_deref().map(UserSpec::parse).transpose()?;
    i.entrypoint = a
        .entrypoint
        .as_deref()
        .map(config::parse_command)
        .transpose()?;
    i.cmd = a.cmd.as_deref().map(config::parse_command).transpose()?;
    i.env = a
        .env
        .iter()
        .map(|e| config::parse_env(e))
        .collect::<Result<_, _>>()?;
    i.labels = a
        .labels
        .iter()
        .map(|l| config::parse_label(l))
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    if !a.expose.is_empty() {
        i.expose = Some(
            a.expose
                .iter()
                .map(|p| config::parse_port(p))
                .collect::<Result<_, _>>()?,
        );
    }
    i.stop_signal = a
        .stop_signal
        .as_deref()
        .map(config::parse_signal)
        .transpose()?;
    i.healthcheck = a
        .healthcheck
        .as_deref()
        .map(|h| {
            config::healthcheck(
                h,
                duration(&a.healthcheck_interval)?,
                duration(&a.healthcheck_timeout)?,
                a.healthcheck_retries,
            )
        })
        .transpose()?;
    if !a.tags.is_empty() {
        i.tags = Some(
            a.tags
                .iter()
                .map(|t| hoist::transport::normalize_name(t))
                .collect::<Result<_, _>>()?,
        );
    }
    if !a.outputs.is_empty() || a.load {
        i.outputs = Some(outputs_of(a)?);
    }
    i.compression = compression_of(a)?;
    s.app.ignore_file = a.ignore_file.clone();
    s.deps.kind = a
        .deps
        .as_deref()
        .map(DepsKind::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    s.deps.dev = a.dev.then_some(true);
    s.deps.strict_scripts = a.strict_scripts.then_some(true);
    s.deps.locked = a.locked.then_some(true);
    s.deps.scripts_in_sandbox = a
        .scripts
        .as_deref()
        .map(hoist::graph::spec::parse_scripts)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--scripts: {e}"))?;
    s.deps.sdists_in_sandbox = a
        .sdists
        .as_deref()
        .map(hoist::graph::spec::parse_sdists)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--sdists: {e}"))?;
    Ok(s)
}

/// Renders a job's events; with several images, each line names its image.
pub(super) fn job_reporter(out: &Renderer, several: bool) -> impl Fn(&Job, Event) + Sync + '_ {
    let color = out.mode() == Mode::Bars;
    move |job: &Job, e: Event| {
        let line = event_line(e, color);
        match several {
            true => out.line(&format!("{:<10} {line}", job.name)),
            false => out.line(&line),
        }
    }
}

pub(super) fn run(a: BuildArgs, out: &Renderer) -> Result<()> {
    if a.files
        .first()
        .is_some_and(|f| hoist::ops::compose::is_compose_file(f))
    {
        return run_compose(&a, out);
    }
    if !a.profiles.is_empty() {
        bail!("--profile is for compose files: name them with -f docker-compose.yml");
    }
    if a.files.len() > 1 {
        bail!("-f names one hoist.toml or Dockerfile; several -f are for compose files (docker-compose.yml)");
    }
    if let Some((file, context)) = dockerfile_of(&a)? {
        return run_dockerfile(&a, &file, &context, out);
    }
    if !a.build_args.is_empty() {
        bail!("--build-arg is for Dockerfile builds: name the Dockerfile with -f Dockerfile");
    }
    if !a.secrets.is_empty() {
        bail!("--secret is for Dockerfile builds (RUN --mount=type=secret): name the Dockerfile with -f Dockerfile");
    }
    if a.native.is_some() {
        bail!("--native is for Dockerfile and compose builds (which RUN lines hoist does natively): name the Dockerfile with -f Dockerfile");
    }
    let overrides = Overrides {
        recipe: a.recipe.clone(),
        target: a.target.clone(),
        spec: flags_spec(&a)?,
    };
    let (project, names) = discover(
        a.files.first().map(PathBuf::as_path),
        &a.what,
        Path::new(""),
    )?;
    if names.len() > 1 && (!a.tags.is_empty() || !a.outputs.is_empty()) {
        bail!(
            "--tag and --output name one image, and this builds {}: use --output-dir DIR, or tags and outputs in each [images.NAME.image]",
            project.image_names().join(", ")
        );
    }
    if names.len() > 1 && a.sbom_output.is_some() {
        bail!(
            "--sbom-output names one file, and this builds {}: leave it out, and each image's SBOM goes next to its output",
            project.image_names().join(", ")
        );
    }
    let run = RunSettings {
        epoch: source_date_epoch()?,
        registry: build_registry_options(&a),
        no_cache: a.no_cache,
        refresh: a.refresh,
        push: a.push,
        output_dir: a.output_dir.clone(),
        default_tags: project.file.is_some(),
        sbom: a
            .sbom
            .as_deref()
            .map(|f| -> Result<hoist::sbom::SbomOptions> {
                Ok(hoist::sbom::SbomOptions {
                    format: hoist::sbom::Format::parse(f).map_err(anyhow::Error::msg)?,
                    output: a.sbom_output.clone(),
                })
            })
            .transpose()?,
        cache: hoist::cache::CacheOptions::parse(&a.cache_from, a.cache_to.as_deref())?,
    };
    let jobs = hoist::ops::build::jobs(&project, &names, &overrides, &run)?;
    let store = Store::open_default()?;
    if let Some(file) = &a.from_bundle {
        let imported = hoist::ops::bundle::import(file, &store)?;
        out.line(&format!(
            "bundle  {}: {} blobs ({} new), {} entries imported and verified",
            file.display(),
            imported.index.blobs.len(),
            imported.new_blobs,
            imported.index.keys.len()
        ));
    }
    if a.dry_run {
        for job in &jobs {
            out!(
                "{}",
                hoist::ops::build::dry_run(job, &store, a.list_files, out)?
            );
        }
        return Ok(());
    }
    run_jobs(&jobs, &store, out)
}

/// `--compression`, when given.
fn compression_of(a: &BuildArgs) -> Result<Option<Compression>> {
    a.compression
        .as_deref()
        .map(Compression::parse)
        .transpose()
        .map_err(anyhow::Error::msg)
}

/// `--output`s, and the local engine for `--load`.
fn outputs_of(a: &BuildArgs) -> Result<Vec<Transport>> {
    let mut outputs: Vec<Transport> = a
        .outputs
        .iter()
        .map(|o| Transport::parse(o))
        .collect::<Result<_, _>>()?;
    if a.load {
        let engine = hoist::transport::engine::detect()?;
        outputs.push(Transport::Engine { engine, name: None });
    }
    Ok(outputs)
}

/// The Dockerfile this build reads and its context, when it is one: `-f`
/// naming a Dockerfile (the context is the folder given, else `.`), or no
/// file and no hoist.toml in the current folder, which has a Dockerfile
/// or Containerfile (as `docker build .`).
fn dockerfile_of(a: &BuildArgs) -> Result<Option<(PathBuf, PathBuf)>> {
    let context = |a: &BuildArgs| -> Result<PathBuf> {
        match a.what.as_slice() {
            [] => Ok(PathBuf::from(".")),
            [one] => Ok(PathBuf::from(one)),
            more => bail!(
                "a Dockerfile build takes one context folder, and {} were given: {}",
                more.len(),
                more.join(" ")
            ),
        }
    };
    match a.files.first() {
        Some(f) if hoist::ops::dockerfile::is_dockerfile(f) => Ok(Some((f.clone(), context(a)?))),
        Some(_) => Ok(None),
        None if a.what.is_empty()
            && a.recipe.is_none()
            && !Path::new(hoist::frontend::recipe::project::FILE_NAME).exists() =>
        {
            Ok(["Dockerfile", "Containerfile"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
                .map(|p| (p, PathBuf::from("."))))
        }
        None => Ok(None),
    }
}

/// Flags that describe a hoist.toml image and mean nothing to a
/// Dockerfile build: refused rather than ignored.
fn refuse_recipe_flags(a: &BuildArgs) -> Result<()> {
    let given: Vec<&str> = [
        ("--recipe", a.recipe.is_some()),
        ("--base", a.base.is_some()),
        ("--user", a.user.is_some()),
        ("--workdir", a.workdir.is_some()),
        ("--env", !a.env.is_empty()),
        ("--entrypoint", a.entrypoint.is_some()),
        ("--cmd", a.cmd.is_some()),
        ("--expose", !a.expose.is_empty()),
        ("--healthcheck", a.healthcheck.is_some()),
        ("--deps", a.deps.is_some()),
        ("--dev", a.dev),
    ]
    .into_iter()
    .filter(|(_, on)| *on)
    .map(|(f, _)| f)
    .collect();
    if !given.is_empty() {
        bail!(
            "{} describe a hoist.toml image; a Dockerfile build takes its settings from the Dockerfile (use --build-arg for its ARGs)",
            given.join(", ")
        );
    }
    Ok(())
}

/// `--native=auto|never` (auto when not given).
fn native_of(a: &BuildArgs) -> Result<hoist::frontend::dockerfile::native::Native> {
    a.native
        .as_deref()
        .map(hoist::frontend::dockerfile::native::Native::parse)
        .transpose()
        .map_err(anyhow::Error::msg)
        .map(Option::unwrap_or_default)
}

/// `--build-arg KEY=VALUE`s; a bare KEY takes the environment's value, or
/// is left out when unset, as docker does.
fn build_args_of(a: &BuildArgs) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for b in &a.build_args {
        match b.split_once('=') {
            Some((k, v)) if !k.is_empty() => out.push((k.to_owned(), v.to_owned())),
            None if !b.is_empty() => {
                if let Ok(v) = std::env::var(b) {
                    out.push((b.clone(), v));
                }
            }
            _ => bail!("--build-arg `{b}` is not KEY=VALUE"),
        }
    }
    Ok(out)
}

/// The settings of a Dockerfile or compose build that are not about the
/// image.
fn dockerfile_run(a: &BuildArgs) -> Result<RunSettings> {
    if a.sbom.is_some() {
        bail!("--sbom: hoist writes SBOMs for hoist.toml builds only yet; build the Dockerfile without --sbom");
    }
    Ok(RunSettings {
        epoch: source_date_epoch()?,
        registry: build_registry_options(a),
        no_cache: a.no_cache,
        refresh: a.refresh,
        push: a.push,
        output_dir: a.output_dir.clone(),
        default_tags: false,
        sbom: None,
        cache: hoist::cache::CacheOptions::parse(&a.cache_from, a.cache_to.as_deref())?,
    })
}

/// Runs the jobs side by side and prints each image's table and digest
/// (and a summary for several); fails naming each image that failed.
fn run_jobs(jobs: &[Job], store: &Store, out: &Renderer) -> Result<()> {
    let several = jobs.len() > 1;
    let report = job_reporter(out, several);
    let results = batch::build_all(jobs, store, &report, out);
    let mut failed = Vec::new();
    for (job, r) in jobs.iter().zip(&results) {
        match r {
            Ok(b) => {
                out.line(&layer_table(job, b));
                match several {
                    true => outln!("{} {}", job.name, b.digest),
                    false => outln!("{}", b.digest),
                }
            }
            Err(e) => failed.push(format!("image `{}`: {}", job.name, hoist::error_chain(e))),
        }
    }
    if several {
        out.line(&summary_table(jobs, &results));
    }
    match (several, results.into_iter().find_map(Result::err)) {
        (_, None) => Ok(()),
        (false, Some(e)) => Err(e.into()),
        (true, Some(_)) => bail!(
            "{} of {} images failed:\n  {}",
            failed.len(),
            jobs.len(),
            failed.join("\n  ")
        ),
    }
}

/// `hoist build -f docker-compose.yml [-f docker-compose.prod.yml]
/// [SERVICE...]`: every service with a build section, side by side.
fn run_compose(a: &BuildArgs, out: &Renderer) -> Result<()> {
    refuse_recipe_flags(a)?;
    if let Some(f) = a
        .files
        .iter()
        .find(|f| !hoist::ops::compose::is_compose_file(f))
    {
        bail!(
            "{}: with compose files every -f is a compose file (.yml or .yaml)",
            f.display()
        );
    }
    if !a.tags.is_empty() || a.target.is_some() {
        bail!("--tag and --target name one image; with compose files each service's `image:` and `build.target` say them");
    }
    let req = hoist::ops::compose::ComposeRequest {
        files: a.files.clone(),
        services: a.what.clone(),
        profiles: a.profiles.clone(),
        build_args: build_args_of(a)?,
        outputs: outputs_of(a)?,
        compression: compression_of(a)?.unwrap_or_default(),
        platforms: match &a.platform {
            Some(p) => platforms(Some(p))?,
            None => Vec::new(),
        },
        native: native_of(a)?,
    };
    let run = dockerfile_run(a)?;
    let store = Store::open_default()?;
    let (jobs, notes) = hoist::ops::compose::jobs(&req, &run, &store, out)?;
    for n in &notes {
        out.line(&format!("compose {n}"));
    }
    if jobs.is_empty() {
        bail!("no service has a build section: nothing to build");
    }
    if a.dry_run {
        for job in &jobs {
            out!(
                "{}",
                hoist::exec::sequence::explain(&job.opts, &store, out)?
            );
        }
        return Ok(());
    }
    run_jobs(&jobs, &store, out)
}

/// `hoist build -f Dockerfile [CONTEXT]`.
fn run_dockerfile(a: &BuildArgs, file: &Path, context: &Path, out: &Renderer) -> Result<()> {
    refuse_recipe_flags(a)?;
    if !context.is_dir() {
        bail!(
            "build context {} is not a folder: give the folder the Dockerfile's COPY lines read from",
            context.display()
        );
    }
    let build_args = build_args_of(a)?;
    let mut labels = BTreeMap::new();
    for l in &a.labels {
        let (k, v) = config::parse_label(l)?;
        labels.insert(k, v);
    }
    let name = a
        .tags
        .first()
        .map(|t| {
            let last = t.rsplit('/').next().unwrap_or(t);
            last.split([':', '@']).next().unwrap_or(last).to_owned()
        })
        .unwrap_or_else(|| {
            std::path::absolute(context)
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "image".into())
        });
    let b = hoist::ops::dockerfile::DockerfileBuild {
        file: file.to_owned(),
        inline: None,
        context: context.to_owned(),
        build_args,
        target: a.target.clone(),
        name,
        tags: a.tags.clone(),
        outputs: outputs_of(a)?,
        labels,
        platforms: platforms(a.platform.as_deref())?,
        compression: compression_of(a)?.unwrap_or_default(),
        secrets: a
            .secrets
            .iter()
            .map(|s| hoist::exec::SecretSource::parse(s))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?,
        native: native_of(a)?,
    };
    let run = dockerfile_run(a)?;
    let store = Store::open_default()?;
    let job = hoist::ops::dockerfile::job(&b, &run, &store, out)?;
    if a.dry_run {
        out!(
            "{}",
            hoist::exec::sequence::explain(&job.opts, &store, out)?
        );
        return Ok(());
    }
    run_jobs(&[job], &store, out)
}

/// The layers of one build: size, and whether each was reused, like the
/// size table people keep for their Dockerfiles.
fn layer_table(job: &Job, b: &Built) -> String {
    let mut t = format!(
        "summary {} ({}), {:.2}s\n        {:<6} {:>10}  {}\n",
        job.name,
        job.target,
        b.elapsed.as_secs_f64(),
        "layer",
        "size",
        "how"
    );
    for (n, r) in b.images.iter().enumerate() {
        if b.images.len() > 1 {
            let p = r
                .image
                .manifest
                .platform
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default();
            t.push_str(&format!("        {p}\n"));
        }
        t.push_str(&format!(
            "        {:<6} {:>10}  {} layers\n",
            "base",
            human_size(r.base_size),
            r.base_layers
        ));
        for l in &r.new_layers {
            t.push_str(&format!(
                "        {:<6} {:>10}  {}\n",
                l.kind.name(),
                human_size(l.layer.descriptor.size),
                if l.reused { "reused" } else { "built" }
            ));
        }
        let total = r.base_size
            + r.new_layers
                .iter()
                .map(|l| l.layer.descriptor.size)
                .sum::<u64>();
        t.push_str(&format!("        {:<6} {:>10}", "total", human_size(total)));
        if n + 1 < b.images.len() {
            t.push('\n');
        }
    }
    t
}

/// One line per image of a several-image build.
fn summary_table(jobs: &[Job], results: &[Result<Built, exec::BuildError>]) -> String {
    let mut t = format!(
        "{:<12} {:<8} {:<14} {:>10}  {:<20} {:>7}\n",
        "image", "target", "digest", "size", "layers", "time"
    );
    for (job, r) in jobs.iter().zip(results) {
        match r {
            Ok(b) => {
                let (reused, built) = b.reused_built();
                t.push_str(&format!(
                    "{:<12} {:<8} {:<14} {:>10}  {:<20} {:>6.2}s\n",
                    job.name,
                    job.target,
                    b.digest.short(),
                    human_size(b.size()),
                    format!("{reused} reused, {built} built"),
                    b.elapsed.as_secs_f64()
                ));
            }
            Err(_) => t.push_str(&format!("{:<12} {:<8} failed\n", job.name, job.target)),
        }
    }
    t.trim_end().to_owned()
}

/// `--pull`'s value, in podman's words.
fn parse_pull(s: &str) -> Result<registry::PullPolicy, String> {
    registry::PullPolicy::parse(s)
        .ok_or_else(|| format!("`{s}` is not a pull policy: use always, missing, never or newer"))
}

/// How a build reaches registries: the shared flags and `--pull`.
fn build_registry_options(a: &BuildArgs) -> registry::Options {
    let mut o = registry_options(&a.registry);
    o.pull = a.pull;
    o
}
