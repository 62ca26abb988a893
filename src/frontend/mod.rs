//! Frontends: every way a user describes an image, turned into a
//! [`crate::graph::Graph`]. A frontend reads files and flags and runs
//! nothing: it fills in the data types of [`crate::graph::spec`] and
//! leaves keys, caches and work to [`crate::exec`].
//!
//! Today there is hoist's own [`recipe`] (hoist.toml, flags, stock
//! recipes, detection), and the loading half of [`compose`] (lowering next). The Dockerfile and compose frontends land beside it
//! and lower onto the same graph, so every frontend gets the same executor.

pub mod compose;
pub mod recipe;
