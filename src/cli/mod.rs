//! The command line: the only place with clap or terminal output. Each
//! subcommand has a file holding its arguments and a `run` that calls the
//! library (one `hoist::ops` entry point where there is logic to
//! orchestrate) and draws what it returns; `render.rs` draws the events
//! the library reports. `main.rs` only calls [`main`].

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};

use hoist::image::Platform;
use hoist::registry;

/// Writes a line of the command's result to stdout. A closed pipe (`| head
/// -1`) is an `io::Error` of kind `BrokenPipe` that `main` ends on quietly,
/// where `println!` would panic.
macro_rules! outln {
    ($($arg:tt)*) => {
        {
            use std::io::Write as _;
            writeln!(std::io::stdout().lock(), $($arg)*).map_err($crate::cli::stdout_error)?
        }
    };
}

/// [`outln!`] without the newline.
macro_rules! out {
    ($($arg:tt)*) => {
        {
            use std::io::Write as _;
            write!(std::io::stdout().lock(), $($arg)*).map_err($crate::cli::stdout_error)?
        }
    };
}

mod build;
mod bundle;
mod cache;
mod images;
mod init;
mod inspect;
mod lock;
mod login;
mod pull;
mod render;

use render::{Mode, ProgressArg, Renderer};

/// Stdout's reader has gone: it had what it wanted (`hoist cache ls | head
/// -1`), so hoist ends quietly with status 0. Only writes to stdout are
/// marked so: a broken pipe to a helper process stays an error.
#[derive(Debug, thiserror::Error)]
#[error("stdout is closed")]
struct StdoutClosed;

pub(crate) fn stdout_error(e: std::io::Error) -> anyhow::Error {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe => StdoutClosed.into(),
        _ => anyhow::Error::new(e).context("writing to stdout"),
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = std::sync::Arc::new(Renderer::new(Mode::detect(cli.progress, cli.quiet)));
    let sink = out.clone();
    hoist::activity::set_sink(move |e| sink.activity(e));
    let out = &*out;
    let result = match cli.command {
        Command::Build(args) => build::run(*args, out),
        Command::Bundle(args) => bundle::run(*args, out),
        Command::Init(args) => init::run(args, out),
        Command::Lock(args) => lock::run(args, out),
        Command::Inspect(args) => inspect::run(args, out),
        Command::Pull(args) => pull::run(args, out),
        Command::Login(args) => login::run_login(args, out),
        Command::Logout(args) => login::run_logout(args, out),
        Command::Cache(cmd) => cache::run(cmd, out),
        Command::Images(args) => images::run_images(args),
        Command::History(args) => images::run_history(args),
    };
    // Flushing here surfaces a closed pipe that a partial line met.
    let result = result.and_then(|()| std::io::stdout().flush().map_err(stdout_error));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.chain().any(|c| c.is::<StdoutClosed>()) => ExitCode::SUCCESS,
        Err(e) => {
            out.clear();
            // Not eprintln!: it panics when stderr is a closed pipe too.
            let mut err = std::io::stderr().lock();
            for line in error_lines(e.chain().map(|c| c.to_string())) {
                let _ = writeln!(err, "{line}");
            }
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes as printed: `error: ...`, then one `caused
/// by: ...` line for each cause that the lines above do not already
/// quote (many messages name their cause: `base oci:x: <the cause>`).
fn error_lines(chain: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut said = String::new();
    let mut lines = Vec::new();
    for (n, text) in chain.into_iter().enumerate() {
        if n > 0 && said.contains(&text) {
            continue;
        }
        lines.push(match n {
            0 => format!("error: {text}"),
            _ => format!("  caused by: {text}"),
        });
        said.push_str(&text);
        said.push('\n');
    }
    lines
}

pub(crate) fn platform(arg: Option<&str>) -> Result<Platform> {
    match arg {
        Some(p) => Platform::parse(p).map_err(anyhow::Error::msg),
        None => Ok(Platform::host()),
    }
}

/// `--platform os/arch[/variant][,...]`: one or several platforms.
pub(crate) fn platforms(arg: Option<&str>) -> Result<Vec<Platform>> {
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
pub(crate) fn source_date_epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v.trim().parse().with_context(|| {
            format!("SOURCE_DATE_EPOCH `{v}` is not a number of seconds since 1970")
        }),
        _ => Ok(0),
    }
}

pub(crate) fn registry_options(a: &RegistryArgs) -> registry::Options {
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

/// Prints a report as text for people, or as JSON for scripts.
pub(crate) fn show<T: serde::Serialize + ?Sized>(
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

/// Daemonless, rootless, reproducible OCI image assembler.
#[derive(Debug, Parser)]
#[command(name = "hoist", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print no progress (errors still go to stderr; results to stdout): `--progress quiet`.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// How progress shows on stderr: a live view (tty), a line per step for CI logs (plain), nothing (quiet), or tty on a terminal and plain elsewhere (auto).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        env = "HOIST_PROGRESS"
    )]
    pub progress: ProgressArg,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image from an app folder on top of a base image, or every image of ./hoist.toml.
    Build(Box<build::BuildArgs>),
    /// Write everything a build fetches (bases, packages, resolutions) into one file, for `hoist build --from-bundle FILE --offline`.
    Bundle(Box<bundle::BundleArgs>),
    /// Write a commented hoist.toml for an app folder, from the stock recipe that fits it.
    Init(init::InitArgs),
    /// Resolve requirements.txt for the base's platforms and write pylock.toml (PEP 751).
    Lock(lock::LockArgs),
    /// Show an image's platform, config and layers.
    Inspect(inspect::InspectArgs),
    /// Copy an image from a registry into an archive or layout (for air-gapped hosts).
    Pull(pull::PullArgs),
    /// Save credentials for a registry in containers' auth.json.
    Login(login::LoginArgs),
    /// Remove saved credentials for a registry.
    Logout(login::LogoutArgs),
    /// Look at, prune and check the local store ($HOIST_CACHE).
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// List the images hoist built with this store: tags, digests, platforms, sizes, dates.
    Images(images::ImagesArgs),
    /// Show an image layer by layer: what made each, and its size.
    History(images::HistoryArgs),
}

/// How registries are reached; shared by every command that talks to one.
#[derive(Debug, Args, Clone, Default)]
pub struct RegistryArgs {
    /// Allow plain HTTP (and unverified TLS) to this registry, HOST[:PORT] (repeatable).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// Never touch the network: use what the store holds, and name what is missing.
    #[arg(long)]
    pub offline: bool,
    /// The auth file to read credentials from first (default: containers' auth.json, then Docker's config).
    #[arg(long, value_name = "FILE", env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<PathBuf>,
    /// A certs.d-style folder of CA and client certificates, HOST:PORT/*.crt (default /etc/containers/certs.d).
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::error_lines;

    #[test]
    fn causes_are_printed_once() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["boom"], &["error: boom"]),
            (
                &["planning image `web`", "no such file"],
                &["error: planning image `web`", "  caused by: no such file"],
            ),
            (
                &["base oci:x: x is for linux/amd64", "x is for linux/amd64"],
                &["error: base oci:x: x is for linux/amd64"],
            ),
            (&["a", "b: c", "c"], &["error: a", "  caused by: b: c"]),
        ];
        for (chain, want) in cases {
            let got = error_lines(chain.iter().map(|s| s.to_string()));
            assert_eq!(got, *want, "{chain:?}");
        }
    }
}
