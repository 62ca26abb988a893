//! The command line, as clap derive structs only. `main.rs` turns these
//! into library calls.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Daemonless, rootless, reproducible OCI image assembler.
#[derive(Debug, Parser)]
#[command(name = "hoist", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image from an app folder on top of a base image.
    Build(Box<BuildArgs>),
    /// Show an image's platform, config and layers.
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The app folder (the build context).
    #[arg(default_value = ".")]
    pub context: PathBuf,
    /// The base image: oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:TAG].
    #[arg(long)]
    pub base: String,
    /// The platform to build for, os/arch[/variant] (default: this machine's).
    #[arg(long)]
    pub platform: Option<String>,
    /// The app user, NAME[:UID[:GID]] (ids default to 1001); reused when the base has it.
    #[arg(long)]
    pub user: Option<String>,
    /// Where the app's files go in the image, and the working directory.
    #[arg(long, default_value = "/app")]
    pub workdir: String,
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
    /// Where to write the image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:TAG] (repeatable).
    #[arg(long = "output", short = 'o')]
    pub outputs: Vec<String>,
    /// Layer compression: gzip, zstd or none.
    #[arg(long, default_value = "gzip")]
    pub compression: String,
    /// The ignore file, relative to the context.
    #[arg(long, default_value = ".dockerignore")]
    pub ignore_file: String,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image: oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:TAG].
    pub source: String,
    /// The platform to show when the source holds several (default: this machine's).
    #[arg(long)]
    pub platform: Option<String>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}
