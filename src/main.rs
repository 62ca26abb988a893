//! The `hoist` command: parse the command line, call the library, render
//! progress and errors. No image logic lives here.

mod cli;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use clap::Parser;

use hoist::batch::{self, Built, Job};
use hoist::build::{self, BuildOptions, Event, RunSettings};
use hoist::config::{self, ConfigSettings};
use hoist::deps::{DepsKind, DepsOptions};
use hoist::image::Platform;
use hoist::layer::Compression;
use hoist::progress::{human_size, Mode, Renderer};
use hoist::recipe::project::{discover, Overrides, Project};
use hoist::recipe::Spec;
use hoist::reference::Reference;
use hoist::registry::{self, Client};
use hoist::store::Store;
use hoist::transport::Transport;
use hoist::user::UserSpec;

/// Writes a line of the command's result to stdout. A closed pipe (`| head
/// -1`) is an `io::Error` of kind `BrokenPipe` that `main` ends on quietly,
/// where `println!` would panic.
macro_rules! outln {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*).map_err(stdout_error)?
    };
}

/// [`outln!`] without the newline.
macro_rules! out {
    ($($arg:tt)*) => {
        write!(std::io::stdout().lock(), $($arg)*).map_err(stdout_error)?
    };
}

/// Stdout's reader has gone: it had what it wanted (`hoist cache ls | head
/// -1`), so hoist ends quietly with status 0. Only writes to stdout are
/// marked so: a broken pipe to a helper process stays an error.
#[derive(Debug, thiserror::Error)]
#[error("stdout is closed")]
struct StdoutClosed;

fn stdout_error(e: std::io::Error) -> anyhow::Error {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe => StdoutClosed.into(),
        _ => anyhow::Error::new(e).context("writing to stdout"),
    }
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let out = Renderer::new(Mode::detect(cli.quiet));
    let result = match cli.command {
        cli::Command::Build(args) => run_build(*args, &out),
        cli::Command::Bundle(args) => run_bundle(*args, &out),
        cli::Command::Init(args) => run_init(args, &out),
        cli::Command::Lock(args) => run_lock(args, &out),
        cli::Command::Inspect(args) => run_inspect(args, &out),
        cli::Command::Pull(args) => run_pull(args, &out),
        cli::Command::Login(args) => run_login(args, &out),
        cli::Command::Logout(args) => run_logout(args, &out),
        cli::Command::Cache(cmd) => run_cache(cmd, &out),
        cli::Command::Images(args) => run_images(args),
        cli::Command::History(args) => run_history(args),
    };
    // Flushing here surfaces a closed pipe that a partial line met.
    let result = result.and_then(|()| std::io::stdout().flush().map_err(stdout_error));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.chain().any(|c| c.is::<StdoutClosed>()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: it panics when stderr is a closed pipe too.
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "error: {e}");
            for cause in e.chain().skip(1) {
                let _ = writeln!(err, "  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn platform(arg: Option<&str>) -> Result<Platform> {
    match arg {
        Some(p) => Platform::parse(p).map_err(anyhow::Error::msg),
        None => Ok(Platform::host()),
    }
}

/// `--platform os/arch[/variant][,...]`: one or several platforms.
fn platforms(arg: Option<&str>) -> Result<Vec<Platform>> {
    let Some(list) = arg else {
        return Ok(vec![Platform::host()]);
    };
    let mut out: Vec<Platform> = Vec::new();
    for p in list.split(',').map(str::trim) {
        let p = Platform::parse(p).map_err(anyhow::Error::msg)?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.is_empty() {
        anyhow::bail!(
            "--platform names no platform: give one or more, like linux/amd64,linux/arm64"
        );
    }
    Ok(out)
}

/// `SOURCE_DATE_EPOCH`, or 0 so that builds are reproducible by default.
fn source_date_epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v.trim().parse().with_context(|| {
            format!("SOURCE_DATE_EPOCH `{v}` is not a number of seconds since 1970")
        }),
        _ => Ok(0),
    }
}

/// The command line's image settings, as the top layer of the recipe.
fn flags_spec(a: &cli::BuildArgs) -> Result<Spec> {
    let duration = |s: &Option<String>| s.as_deref().map(config::parse_duration).transpose();
    let mut s = Spec::default();
    let i = &mut s.image;
    i.base = a.base.as_deref().map(Transport::parse).transpose()?;
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
    if !a.outputs.is_empty() {
        i.outputs = Some(
            a.outputs
                .iter()
                .map(|o| Transport::parse(o))
                .collect::<Result<_, _>>()?,
        );
    }
    i.compression = a
        .compression
        .as_deref()
        .map(Compression::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
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
        .map(hoist::deps::parse_scripts)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--scripts: {e}"))?;
    s.deps.sdists_in_sandbox = a
        .sdists
        .as_deref()
        .map(hoist::deps::parse_sdists)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--sdists: {e}"))?;
    Ok(s)
}

/// One build job per image name of the project, resolved against the
/// command line's overrides.
fn jobs_of(
    project: &Project,
    names: &[Option<String>],
    overrides: &Overrides,
    run: &RunSettings,
) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for name in names {
        let r = project.resolve(name.as_deref(), overrides)?;
        let (opts, platforms) = BuildOptions::from_recipe(&r, run)?;
        jobs.push(Job {
            name: r.name,
            target: r.target,
            opts,
            platforms,
        });
    }
    Ok(jobs)
}

/// Renders a job's events; with several images, each line names its image.
fn job_reporter(out: &Renderer, several: bool) -> impl Fn(&Job, Event) + Sync + '_ {
    let color = out.mode() == Mode::Bars;
    move |job: &Job, e: Event| {
        let line = event_line(e, color);
        match several {
            true => out.line(&format!("{:<10} {line}", job.name)),
            false => out.line(&line),
        }
    }
}

fn run_build(a: cli::BuildArgs, out: &Renderer) -> Result<()> {
    let overrides = Overrides {
        recipe: a.recipe.clone(),
        target: a.target.clone(),
        spec: flags_spec(&a)?,
    };
    let (project, names) = discover(a.file.as_deref(), &a.what, Path::new(""))?;
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
        registry: registry_options(&a.registry),
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
    let jobs = jobs_of(&project, &names, &overrides, &run)?;
    let store = Store::open_default()?;
    if let Some(file) = &a.from_bundle {
        let imported = hoist::bundle::import(file, &store)?;
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
            let (stages, copies) = hoist::exec::explain(&job.opts, &store, out)
                .with_context(|| format!("planning image `{}`", job.name))?;
            let mut plan = hoist::plan::plan(&job.opts, &store, a.list_files, out)
                .with_context(|| format!("planning image `{}`", job.name))?;
            plan.layers.extend(copies);
            out!("{stages}{}", plan.render(&job.name, &job.target));
        }
        return Ok(());
    }
    let several = jobs.len() > 1;
    let report = job_reporter(out, several);
    let results = batch::build_all(&jobs, &store, &report, out);
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
        out.line(&summary_table(&jobs, &results));
    }
    if !failed.is_empty() {
        match (several, results.into_iter().find_map(Result::err)) {
            (false, Some(e)) => return Err(e.into()),
            _ => bail!(
                "{} of {} images failed:\n  {}",
                failed.len(),
                jobs.len(),
                failed.join("\n  ")
            ),
        }
    }
    Ok(())
}

/// `hoist bundle`: the builds `hoist build` would run, on a fresh store,
/// and what they fetched written to one file.
fn run_bundle(a: cli::BundleArgs, out: &Renderer) -> Result<()> {
    let b = cli::BuildArgs {
        what: a.what,
        file: a.file,
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
    let (project, names) = discover(b.file.as_deref(), &b.what, Path::new(""))?;
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
    let jobs = jobs_of(&project, &names, &overrides, &run)?;
    let several = jobs.len() > 1;
    let report = job_reporter(out, several);
    let created = hoist::bundle::create(&jobs, &a.output, &report, out)?;
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
fn summary_table(jobs: &[Job], results: &[Result<Built, build::BuildError>]) -> String {
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

fn run_init(a: cli::InitArgs, out: &Renderer) -> Result<()> {
    let written =
        hoist::recipe::init::write(&a.context, a.base.as_deref(), a.recipe.as_deref(), a.force)?;
    out.line(&format!(
        "wrote   {} from the stock recipe `{}` (found: {})",
        written.path.display(),
        written.recipe,
        written.because
    ));
    outln!("{}", written.path.display());
    Ok(())
}

fn run_lock(a: cli::LockArgs, out: &Renderer) -> Result<()> {
    let output = a
        .output
        .clone()
        .unwrap_or_else(|| a.context.join(hoist::deps::pip::lock::LOCK_NAME));
    let registry = registry_options(&a.registry);
    let deps = DepsOptions {
        kind: DepsKind::Pip,
        offline: a.registry.offline,
        ..DepsOptions::default()
    };
    let (opts, platforms) = match &a.base {
        Some(base) => {
            let platforms = platforms(a.platform.as_deref())?;
            let opts = BuildOptions {
                context: a.context.clone(),
                ignore_file: ".dockerignore".into(),
                base: Transport::parse(base)?,
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
                graph: hoist::graph::Graph { stages: Vec::new() },
                stage_layers: Vec::new(),
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
            let (mut opts, recipe_platforms) = BuildOptions::from_recipe(&r, &run)?;
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
    let locked = hoist::lock::lock(&opts, &platforms, &output, &store, &mut report, out)?;
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

/// One line for a build event.
fn event_line(e: Event, color: bool) -> String {
    match e {
        Event::Base {
            source,
            digest,
            platform,
            layers,
        } => format!("base    {source} {platform} {} ({layers} layers)", digest.short()),
        Event::Layer {
            what, digest, size, ..
        } => format!("layer   {} {:>10}  {what}", digest.short(), human_size(size)),
        Event::UserReused { name, uid, gid } => {
            format!("user    {name} ({uid}:{gid}) already in the base, reused")
        }
        Event::Deps(d) => {
            let how = if d.reused {
                "reused from the cache".to_owned()
            } else {
                format!(
                    "built: {} downloaded ({}), {} from the store",
                    d.downloaded,
                    human_size(d.downloaded_bytes),
                    d.from_store
                )
            };
            let how = match d.built_sdists {
                0 => how,
                n => format!("{how}; {n} sdists built into wheels in the sandbox"),
            };
            let bins = if d.ecosystem == "pip" {
                "scripts"
            } else {
                "bin links"
            };
            format!(
                "deps    {} from {}: {} packages, {} files, {} {bins}; {how}",
                d.ecosystem, d.manifest, d.packages, d.files, d.bin_links
            )
        }
        Event::Output { output } => format!("wrote   {output}"),
        Event::Step(s) if s.ran => format!("step    ran `{}` ({})", s.command, s.why),
        Event::Step(s) => format!("step    skipped `{}`: {}", s.command, s.why),
        Event::Pushed {
            target,
            digest,
            uploaded,
            mounted,
            skipped,
            bytes,
        } => format!(
            "pushed  {target}@{digest}: {uploaded} uploaded ({}), {mounted} mounted, {skipped} already there",
            human_size(bytes)
        ),
        Event::Cache(note) => cache_line(note),
        Event::Stage {
            stage,
            what,
            digest,
            reused,
        } => format!(
            "stage   {stage}: {} {what} ({})",
            digest.short(),
            if reused { "reused" } else { "built" }
        ),
        Event::Warning(w) if color => format!("\x1b[33mwarning\x1b[0m {w}"),
        Event::Warning(w) => format!("warning {w}"),
    }
}

/// One line for what the registry cache did.
fn cache_line(note: hoist::cache::remote::Note) -> String {
    use hoist::cache::remote::Note;
    match note {
        Note::Hit {
            kind,
            from,
            downloaded,
            bytes,
        } => format!(
            "cache   {kind} hit in {from}: {downloaded} blobs downloaded ({})",
            human_size(bytes)
        ),
        Note::Shared {
            kind,
            to,
            uploaded,
            bytes,
        } => format!(
            "cache   {kind} shared to {to}: {uploaded} blobs uploaded ({})",
            human_size(bytes)
        ),
        Note::Problem(p) => format!("cache   {p}"),
    }
}

fn run_inspect(a: cli::InspectArgs, out: &Renderer) -> Result<()> {
    let source = Transport::parse(&a.source)?;
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
            hoist::inspect::inspect_pulled(&img, &store)?
        }
        _ => hoist::inspect::inspect(&source, platform.as_ref())?,
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", report.render());
    }
    Ok(())
}

fn registry_options(a: &cli::RegistryArgs) -> registry::Options {
    let mut o = registry::Options::from_env();
    o.insecure.extend(a.insecure_registry.iter().cloned());
    o.offline = a.offline;
    if let Some(f) = &a.authfile {
        o.auth_files.insert(0, f.clone());
    }
    if let Some(d) = &a.cert_dir {
        o.certs_dirs.insert(0, d.clone());
    }
    o
}

fn run_pull(a: cli::PullArgs, out: &Renderer) -> Result<()> {
    let r = Reference::parse(
        a.reference
            .strip_prefix("docker://")
            .unwrap_or(&a.reference),
    )?;
    let platform = platform(a.platform.as_deref())?;
    let outputs: Vec<Transport> = a
        .outputs
        .iter()
        .map(|o| Transport::parse(o))
        .collect::<Result<_, _>>()?;
    let store = Store::open_default()?;
    let client = Client::new(registry_options(&a.registry))?;
    let remote = hoist::pull::pull(&client, &r, &platform, &store, out)?;
    let img = hoist::pull::built(&remote);
    let name = r.to_string();
    for dest in &outputs {
        if let Transport::Registry(target) = dest {
            let target = Reference::parse(target).with_context(|| format!("--output {dest}"))?;
            let pushed = hoist::pull::push(&client, &remote, &target, &store, out)
                .with_context(|| format!("pushing to {dest}"))?;
            out.line(&format!(
                "pushed  docker://{} ({} uploaded, {} mounted, {} already there)",
                pushed.target,
                pushed.uploaded.len(),
                pushed.mounted.len(),
                pushed.skipped.len()
            ));
            continue;
        }
        hoist::transport::write_output(dest, &img, std::slice::from_ref(&name), &store)
            .with_context(|| format!("writing {dest}"))?;
        out.line(&format!("wrote   {dest}"));
    }
    outln!("{}", img.manifest.digest);
    Ok(())
}

fn run_login(a: cli::LoginArgs, out: &Renderer) -> Result<()> {
    if !a.password_stdin {
        bail!("give the password on standard input with --password-stdin (a password on the command line would land in shell history)");
    }
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    let password = password.trim_end_matches(['\n', '\r']);
    let client = Client::new(registry_options(&a.registry_args))?;
    let file = client.login(
        &a.registry,
        &a.username,
        password,
        a.registry_args.authfile.as_deref(),
        out,
    )?;
    out.line(&format!(
        "Login Succeeded: credentials for {} saved in {}",
        a.registry,
        file.display()
    ));
    Ok(())
}

fn run_logout(a: cli::LogoutArgs, out: &Renderer) -> Result<()> {
    let (file, removed) = registry::logout(&a.registry, a.authfile.as_deref())?;
    if removed {
        out.line(&format!(
            "Removed login credentials for {} from {}",
            a.registry,
            file.display()
        ));
    } else {
        out.line(&format!(
            "Not logged in to {} (nothing in {})",
            a.registry,
            file.display()
        ));
    }
    Ok(())
}

fn run_cache(cmd: cli::CacheCommand, out: &Renderer) -> Result<()> {
    use hoist::store::gc;
    let store = Store::open_default()?;
    let wait = |w: &str| gc::parse_age(w).map_err(|e| anyhow::anyhow!("--wait: {e}"));
    match cmd {
        cli::CacheCommand::Ls(a) => {
            let ls = gc::scan(&store)?.listing();
            show(a.json, &ls, gc::Listing::render)
        }
        cli::CacheCommand::Du(a) => {
            let du = gc::scan(&store)?.usage();
            show(a.json, &du, gc::Usage::render)
        }
        cli::CacheCommand::Prune(a) => {
            let policy = gc::Policy {
                all: a.all,
                older_than: a
                    .older_than
                    .as_deref()
                    .map(gc::parse_age)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--older-than: {e}"))?,
                max_size: a
                    .max_size
                    .as_deref()
                    .map(gc::parse_size)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--max-size: {e}"))?,
            };
            let now = std::time::SystemTime::now();
            let r = gc::prune(&store, &policy, now, wait(&a.wait)?, a.dry_run)?;
            out.line(&r.render());
            Ok(())
        }
        cli::CacheCommand::Verify(a) => {
            let r = gc::verify(&store, a.repair, wait(&a.wait)?)?;
            show(a.json, &r, gc::VerifyReport::render)?;
            if !r.problems.is_empty() && !r.repaired {
                bail!(
                    "the store at {} has {} problems; `hoist cache verify --repair` removes the bad blobs and entries (builds make them again), or `hoist cache prune --all` starts afresh",
                    store.root().display(),
                    r.problems.len()
                );
            }
            Ok(())
        }
    }
}

fn run_images(a: cli::ImagesArgs) -> Result<()> {
    let store = Store::open_default()?;
    let records = hoist::images::list(&store)?;
    show(a.json, &records, |r| hoist::images::render_list(r))
}

fn run_history(a: cli::HistoryArgs) -> Result<()> {
    let store = Store::open_default()?;
    let platform = a
        .platform
        .as_deref()
        .map(Platform::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let h = hoist::images::history(&store, &a.image, platform.as_ref())?;
    show(a.json, &h, hoist::images::History::render)
}

/// Prints a report as text for people, or as JSON for scripts.
fn show<T: serde::Serialize + ?Sized>(
    json: bool,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> Result<()> {
    match json {
        true => outln!("{}", serde_json::to_string_pretty(value)?),
        false => out!("{}", text(value)),
    }
    Ok(())
}
