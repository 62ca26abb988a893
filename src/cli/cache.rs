//! `hoist cache`.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use hoist::store::Store;

use super::render::Renderer;
use super::show;

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List the store's entries: category, kind, size of what each keeps, last use.
    Ls(CacheShowArgs),
    /// Total size by category (bases, packages, deps, layers, images, mounts, metadata).
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

pub(super) fn run(cmd: CacheCommand, out: &Renderer) -> Result<()> {
    use hoist::store::gc;
    let store = Store::open_default()?;
    let wait = |w: &str| gc::parse_age(w).map_err(|e| anyhow::anyhow!("--wait: {e}"));
    match cmd {
        CacheCommand::Ls(a) => {
            let ls = gc::scan(&store)?.listing();
            show(a.json, &ls, gc::Listing::render)
        }
        CacheCommand::Du(a) => {
            let du = gc::scan(&store)?.usage();
            show(a.json, &du, gc::Usage::render)
        }
        CacheCommand::Prune(a) => {
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
        CacheCommand::Verify(a) => {
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
