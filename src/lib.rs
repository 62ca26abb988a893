//! hoist: assemble OCI images without a daemon, without root, and without
//! running anything inside the image.
//!
//! The library holds all of hoist's logic; `main.rs` only parses the command
//! line and renders what the library reports. See DESIGN.md for the flow.

pub mod digest;
pub mod ignore;
pub mod image;
pub mod layer;
pub mod store;
