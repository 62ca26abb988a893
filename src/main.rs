//! The `hoist` command: parse the command line, call the library, render
//! progress and errors. No image logic lives here.

mod cli;

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use clap::Parser;

use hoist::build::{self, BuildOptions, Event};
use hoist::config::{self, ConfigSettings};
use hoist::deps::{DepsKind, DepsOptions};
use hoist::image::Platform;
use hoist::layer::Compression;
use hoist::progress::{human_size, Mode, Renderer};
use hoist::reference::Reference;
use hoist::registry::{self, Client};
use hoist::store::Store;
use hoist::transport::Transport;
use hoist::user::UserSpec;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let out = Renderer::new(Mode::detect(cli.quiet));
    let result = match cli.command {
        cli::Command::Build(args) => run_build(*args, &out),
        cli::Command::Lock(args) => run_lock(args, &out),
        cli::Command::Inspect(args) => run_inspect(args, &out),
        cli::Command::Pull(args) => run_pull(args, &out),
        cli::Command::Login(args) => run_login(args, &out),
        cli::Command::Logout(args) => run_logout(args, &out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
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

fn run_build(a: cli::BuildArgs, out: &Renderer) -> Result<()> {
    let platforms = platforms(a.platform.as_deref())?;
    let duration = |s: &Option<String>| s.as_deref().map(config::parse_duration).transpose();
    let settings = ConfigSettings {
        user: None,
        env: a
            .env
            .iter()
            .map(|e| config::parse_env(e))
            .collect::<Result<_, _>>()?,
        entrypoint: a
            .entrypoint
            .as_deref()
            .map(config::parse_command)
            .transpose()?,
        cmd: a.cmd.as_deref().map(config::parse_command).transpose()?,
        workdir: None,
        labels: a
            .labels
            .iter()
            .map(|l| config::parse_label(l))
            .collect::<Result<BTreeMap<_, _>, _>>()?,
        expose: a
            .expose
            .iter()
            .map(|p| config::parse_port(p))
            .collect::<Result<_, _>>()?,
        stop_signal: a
            .stop_signal
            .as_deref()
            .map(config::parse_signal)
            .transpose()?,
        healthcheck: a
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
            .transpose()?,
    };
    let mut tags = Vec::new();
    for t in &a.tags {
        tags.push(hoist::transport::normalize_name(t)?);
    }
    let opts = BuildOptions {
        context: a.context.clone(),
        ignore_file: a.ignore_file.clone(),
        base: Transport::parse(&a.base)?,
        platform: platforms[0].clone(),
        user: a.user.as_deref().map(UserSpec::parse).transpose()?,
        workdir: a.workdir.clone(),
        settings,
        tags,
        outputs: a
            .outputs
            .iter()
            .map(|o| Transport::parse(o))
            .collect::<Result<_, _>>()?,
        compression: Compression::parse(&a.compression).map_err(anyhow::Error::msg)?,
        epoch: source_date_epoch()?,
        push: if a.push {
            if a.tags.is_empty() {
                bail!("--push needs a --tag naming where to push, e.g. --tag registry.example.com/team/web:1.4");
            }
            a.tags
                .iter()
                .map(|t| Reference::parse(t))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        },
        registry: registry_options(&a.registry),
        deps: DepsOptions {
            kind: DepsKind::parse(&a.deps).map_err(anyhow::Error::msg)?,
            dev: a.dev,
            strict_scripts: a.strict_scripts,
            no_cache: a.no_cache,
            refresh: a.refresh,
            locked: a.locked,
            offline: a.registry.offline,
        },
    };
    let store = Store::open_default()?;
    let started = std::time::Instant::now();
    let mut report = |e: Event| out.line(&event_line(e, out.mode() == Mode::Bars));
    if platforms.len() > 1 {
        let multi = build::build_platforms(&opts, &platforms, &store, &mut report, out)?;
        out.line(&format!(
            "built   {} ({} platforms) in {:.2}s",
            multi.index.digest,
            multi.images.len(),
            started.elapsed().as_secs_f64()
        ));
        println!("{}", multi.index.digest);
        return Ok(());
    }
    let result = build::build(&opts, &store, &mut report, out)?;
    out.line(&format!(
        "built   {} in {:.2}s ({} base layers, {} new)",
        result.image.manifest.digest,
        started.elapsed().as_secs_f64(),
        result.base_layers,
        result.new_layers.len()
    ));
    println!("{}", result.image.manifest.digest);
    Ok(())
}

fn run_lock(a: cli::LockArgs, out: &Renderer) -> Result<()> {
    let platforms = platforms(a.platform.as_deref())?;
    let output = a
        .output
        .clone()
        .unwrap_or_else(|| a.context.join(hoist::deps::pip::lock::LOCK_NAME));
    let opts = BuildOptions {
        context: a.context.clone(),
        ignore_file: ".dockerignore".into(),
        base: Transport::parse(&a.base)?,
        platform: platforms[0].clone(),
        user: None,
        workdir: "/app".into(),
        settings: ConfigSettings::default(),
        tags: Vec::new(),
        outputs: Vec::new(),
        compression: Compression::default(),
        epoch: 0,
        push: Vec::new(),
        registry: registry_options(&a.registry),
        deps: DepsOptions {
            kind: DepsKind::Pip,
            offline: a.registry.offline,
            ..DepsOptions::default()
        },
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
    println!("{}", locked.path.display());
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
        Event::Warning(w) if color => format!("\x1b[33mwarning\x1b[0m {w}"),
        Event::Warning(w) => format!("warning {w}"),
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
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
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
    let img = hoist::pull::pull(&client, &r, &platform, &store, out)?;
    let name = r.to_string();
    for dest in &outputs {
        hoist::transport::write_output(dest, &img, std::slice::from_ref(&name), &store)
            .with_context(|| format!("writing {dest}"))?;
        out.line(&format!("wrote   {dest}"));
    }
    println!("{}", img.manifest.digest);
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
