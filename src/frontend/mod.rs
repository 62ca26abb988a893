//! Frontends: every way a user describes an image, turned into a
//! [`crate::graph::Graph`]. A frontend reads files and flags and runs
//! nothing: it fills in the data types of [`crate::graph::spec`] and
//! leaves keys, caches and work to [`crate::exec`].
//!
//! Today there is hoist's own [`recipe`] (hoist.toml, flags, stock
//! recipes, detection), which lowers onto the graph. The Dockerfile
//! ([`dockerfile`]: parser, typed instructions, expansion) and compose
//! ([`compose`]: loading, interpolation, extends, merge, model) frontends
//! are being built beside it; once they lower onto the same graph, every
//! frontend gets the same executor.

pub mod compose;
pub mod dockerfile;
pub mod recipe;
