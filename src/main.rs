//! The `hoist` command: parse the command line, call the library, render
//! progress and errors. No image logic lives here.

mod cli;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use clap::Parser;

use hoist::build::{self, BuildOptions, Event};
use hoist::config::{self, ConfigSettings};
use hoist::image::Platform;
use hoist::layer::Compression;
use hoist::reference::Reference;
use hoist::registry::{self, Client};
use hoist::store::Store;
use hoist::transport::Transport;
use hoist::user::UserSpec;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Build(args) => run_build(*args),
        cli::Command::Inspect(args) => run_inspect(args),
        cli::Command::Pull(args) => run_pull(args),
        cli::Command::Login(args) => run_login(args),
        cli::Command::Logout(args) => run_logout(args),
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

fn run_build(a: cli::BuildArgs) -> Result<()> {
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
    };
    let store = Store::open_default()?;
    let started = std::time::Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut report = |e: Event| {
        match e {
        Event::Base {
            source,
            digest,
            platform,
            layers,
        } => {
            eprintln!(
                "base    {source} {platform} {} ({layers} layers)",
                digest.short()
            )
        }
        Event::Layer {
            what, digest, size, ..
        } => {
            eprintln!(
                "layer   {} {:>10}  {what}",
                digest.short(),
                human_size(size)
            )
        }
        Event::UserReused { name, uid, gid } => {
            eprintln!("user    {name} ({uid}:{gid}) already in the base, reused")
        }
        Event::Output { output } => eprintln!("wrote   {output}"),
        Event::Pushed {
            target,
            digest,
            uploaded,
            mounted,
            skipped,
            bytes,
        } => eprintln!(
            "pushed  {target}@{digest}: {uploaded} uploaded ({}), {mounted} mounted, {skipped} already there",
            human_size(bytes)
        ),
        Event::Warning(w) => {
            if tty {
                eprintln!("\x1b[33mwarning\x1b[0m {w}")
            } else {
                eprintln!("warning {w}")
            }
        }
    }
    };
    let net = NetProgress::new();
    if platforms.len() > 1 {
        let multi = build::build_platforms(&opts, &platforms, &store, &mut report, &net)?;
        eprintln!(
            "built   {} ({} platforms) in {:.2}s",
            multi.index.digest,
            multi.images.len(),
            started.elapsed().as_secs_f64()
        );
        println!("{}", multi.index.digest);
        return Ok(());
    }
    let result = build::build(&opts, &store, &mut report, &net)?;
    eprintln!(
        "built   {} in {:.2}s ({} base layers, {} new)",
        result.image.manifest.digest,
        started.elapsed().as_secs_f64(),
        result.base_layers,
        result.new_layers.len()
    );
    println!("{}", result.image.manifest.digest);
    Ok(())
}

fn run_inspect(a: cli::InspectArgs) -> Result<()> {
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
            let net = NetProgress::new();
            let img = client.resolve(&r, &p, &store, &net)?;
            client.fetch_blobs(&r, &img.layers, &store, &net)?;
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

fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
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

/// Renders registry transfers as plain lines on stderr: one when a blob
/// is done, one per retry. (Blob-level lines suit CI logs; a terminal
/// gets the same lines.)
struct NetProgress;

impl NetProgress {
    fn new() -> NetProgress {
        NetProgress
    }
}

impl registry::Progress for NetProgress {
    fn event(&self, e: &registry::Event<'_>) {
        use registry::Event as E;
        match e {
            E::BlobDone {
                digest,
                size,
                outcome,
            } => {
                eprintln!(
                    "blob    {} {:>10}  {outcome:?}",
                    digest.short(),
                    human_size(*size)
                )
            }
            E::ManifestPushed { reference, digest } => {
                eprintln!("manifest {reference} {}", digest.short())
            }
            E::Retrying {
                what,
                retry,
                wait,
                why,
            } => {
                eprintln!(
                    "retry   {what} (try {retry}, in {:.1}s): {why}",
                    wait.as_secs_f64()
                )
            }
            _ => {}
        }
    }
}

fn run_pull(a: cli::PullArgs) -> Result<()> {
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
    let net = NetProgress::new();
    let img = hoist::pull::pull(&client, &r, &platform, &store, &net)?;
    let name = r.to_string();
    for out in &outputs {
        hoist::transport::write_output(out, &img, std::slice::from_ref(&name), &store)
            .with_context(|| format!("writing {out}"))?;
        eprintln!("wrote   {out}");
    }
    println!("{}", img.manifest.digest);
    Ok(())
}

fn run_login(a: cli::LoginArgs) -> Result<()> {
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
        &NetProgress::new(),
    )?;
    eprintln!(
        "Login Succeeded: credentials for {} saved in {}",
        a.registry,
        file.display()
    );
    Ok(())
}

fn run_logout(a: cli::LogoutArgs) -> Result<()> {
    let (file, removed) = registry::logout(&a.registry, a.authfile.as_deref())?;
    if removed {
        eprintln!(
            "Removed login credentials for {} from {}",
            a.registry,
            file.display()
        );
    } else {
        eprintln!(
            "Not logged in to {} (nothing in {})",
            a.registry,
            file.display()
        );
    }
    Ok(())
}
