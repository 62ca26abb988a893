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
    /// Print no progress (errors still go to stderr; results to stdout).
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image from an app folder on top of a base image, or every image of ./hoist.toml.
    Build(Box<BuildArgs>),
    /// Write everything a build fetches (bases, packages, resolutions) into one file, for `hoist build --from-bundle FILE --offline`.
    Bundle(Box<BundleArgs>),
    /// Write a commented hoist.toml for an app folder, from the stock recipe that fits it.
    Init(InitArgs),
    /// Resolve requirements.txt for the base's platforms and write pylock.toml (PEP 751).
    Lock(LockArgs),
    /// Show an image's platform, config and layers.
    Inspect(InspectArgs),
    /// Copy an image from a registry into an archive or layout (for air-gapped hosts).
    Pull(PullArgs),
    /// Save credentials for a registry in containers' auth.json.
    Login(LoginArgs),
    /// Remove saved credentials for a registry.
    Logout(LogoutArgs),
    /// Look at, prune and check the local store ($HOIST_CACHE).
    #[command(subcommand)]
    Cache(CacheCommand),
    /// List the images hoist built with this store: tags, digests, platforms, sizes, dates.
    Images(ImagesArgs),
    /// Show an image layer by layer: what made each, and its size.
    History(HistoryArgs),
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

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image, e.g. alpine:3.20 or docker://registry.example.com/team/base:1.
    pub reference: String,
    /// The platform to pull, os/arch[/variant] (default: this machine's).
    #[arg(long)]
    pub platform: Option<String>,
    /// Where to write it: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:TAG], or docker://REF to copy it to another registry (repeatable).
    #[arg(long = "output", short = 'o', required = true)]
    pub outputs: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry, HOST[:PORT].
    pub registry: String,
    /// The user name.
    #[arg(long, short = 'u')]
    pub username: String,
    /// Read the password from standard input (the password is never taken as an argument).
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry_args: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry, HOST[:PORT].
    pub registry: String,
    /// The auth file to remove the credentials from.
    #[arg(long, value_name = "FILE", env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<PathBuf>,
}

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

#[derive(Debug, Args, Default)]
pub struct BuildArgs {
    /// What to build: image names from ./hoist.toml (default: all of them), or an app folder (the build context; its hoist.toml is read if it has one).
    pub what: Vec<String>,
    /// The hoist.toml to read (default: ./hoist.toml, or the app folder's).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,
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
    /// Where to write the image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:TAG] (repeatable).
    #[arg(long = "output", short = 'o')]
    pub outputs: Vec<String>,
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
    /// Rebuild the deps layer even when the cache has it.
    #[arg(long)]
    pub no_cache: bool,
    /// pip: resolve requirements.txt afresh instead of using the cached resolution.
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
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image: a registry reference (docker://REF or REF), oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:TAG].
    pub source: String,
    /// The platform to show when the source holds several (default: this machine's).
    #[arg(long)]
    pub platform: Option<String>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List the store's entries: category, kind, size of what each keeps, last use.
    Ls(CacheShowArgs),
    /// Total size by category (bases, packages, deps, layers, images, metadata).
    Du(CacheShowArgs),
    /// Remove entries by age or size budget, then every blob nothing needs.
    Prune(PruneArgs),
    /// Rehash every blob; report corrupt blobs and entries whose blobs are gone (exit 1).
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct CacheShowArgs {
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove entries not used for longer than this: 7d, 12h, 30m, 2w.
    #[arg(long, value_name = "AGE")]
    pub older_than: Option<String>,
    /// Then remove the least recently used until the store fits: 2G, 500MB, 1.5GiB.
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Remove everything.
    #[arg(long, conflicts_with_all = ["older_than", "max_size"])]
    pub all: bool,
    /// Say what would go, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for running builds to let go of the store: 30s, 10m.
    #[arg(long, value_name = "AGE", default_value = "5m")]
    pub wait: String,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Remove what is wrong (corrupt blobs, entries naming missing blobs); builds make them again.
    #[arg(long)]
    pub repair: bool,
    /// With --repair, how long to wait for running builds to let go of the store.
    #[arg(long, value_name = "AGE", default_value = "5m")]
    pub wait: String,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

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
