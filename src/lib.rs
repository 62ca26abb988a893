//! hoist: assemble OCI images without a daemon, without root, and without
//! running anything inside the image that need not run there.
//!
//! # Overview
//!
//! A build flows one way, and the modules are laid out as it flows:
//!
//! ```text
//! frontend  ->  graph  ->  exec  ->  layer / image  ->  store / transport / registry
//! (what the     (pure      (key -> cached? -> run -> layer -> record)
//!  user wrote)   data)
//! ```
//!
//! - [`frontend`]: every way to describe an image (today hoist.toml, flags
//!   and stock recipes in [`frontend::recipe`]) turned into a
//!   [`graph::Graph`]. Runs nothing. [`frontend::compose`] loads compose
//!   files as `docker compose` does (its lowering comes next).
//! - [`graph`]: what a build is, as pure data: stages, steps, and the
//!   settings every frontend fills in ([`graph::spec`], [`graph::config`]).
//! - [`exec`]: the executor. For each step its key first, then the cache,
//!   and only on a miss the work: [`exec::steps`] (user, app, copy, host,
//!   run, config), native installs through [`deps`], sandbox runs through
//!   [`sandbox`]; [`exec::assemble`] writes manifests, indexes, outputs
//!   and pushes. `--dry-run` is [`exec::explain`](mod@exec::explain).
//! - [`ops`]: one entry point per verb (build, bundle, inspect, images,
//!   lock, pull), orchestration only; the `hoist` binary's `cli` module
//!   parses argv, calls one of these and draws the events they report.
//!   The library prints nothing.
//! - Below the executor: [`deps`] (npm and pip installed natively),
//!   [`facts`] (what a base's filesystem says), [`sandbox`] (rootless
//!   runs), [`sbom`], [`cache`] (registry-shared cache entries), [`ignore`]
//!   (`.dockerignore`).
//! - The bottom: [`layer`] (deterministic tar streams, untrusted ones
//!   read safely), [`image`] (OCI documents), [`store`] (the
//!   content-addressed store), [`transport`] (`oci:`, `oci-archive:`,
//!   `docker-archive:`), [`registry`] (the distribution client), [`net`]
//!   (the HTTP setup and the one retry policy), [`activity`] (signs of life
//!   from long work, for the CLI to draw), and the types that prove
//!   validity: [`digest`], [`reference`](mod@reference) (image references and transport
//!   names).
//!
//! No module imports one above it: `tests/it/layout.rs` reads the `use
//! crate::` lines and fails on any circle between top-level modules.

pub mod activity;
pub mod cache;
pub mod deps;
pub mod digest;
pub mod exec;
pub mod facts;
pub mod frontend;
pub mod graph;
pub mod ignore;
pub mod image;
pub mod layer;
pub mod net;
pub mod ops;
pub mod reference;
pub mod registry;
pub mod sandbox;
pub mod sbom;
pub mod store;
pub mod transport;

#[cfg(test)]
mod fuzz;

/// An error and its causes on one line, each cause once (a message that
/// already quotes its cause does not repeat it).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}
