//! hoist: assemble OCI images without a daemon, without root, and without
//! running anything inside the image.
//!
//! The library holds all of hoist's logic; `main.rs` only parses the command
//! line and renders what the library reports. See DESIGN.md for the flow.

pub mod app;
pub mod batch;
pub mod build;
pub mod bundle;
pub mod cache;
pub mod config;
pub mod context;
pub mod deps;
pub mod digest;
pub mod exec;
pub mod facts;
pub mod graph;
pub mod host_step;
pub mod ignore;
pub mod image;
pub mod images;
pub mod inspect;
pub mod layer;
pub mod lock;
pub mod net;
pub mod plan;
pub mod progress;
pub mod pull;
pub mod recipe;
pub mod reference;
pub mod registry;
pub mod sandbox;
pub mod sbom;
pub mod store;
pub mod transport;
pub mod user;

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
