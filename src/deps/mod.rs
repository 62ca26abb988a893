//! Third-party dependencies installed natively, one module per ecosystem.
//!
//! Each installer turns an ecosystem's manifests into layer entries; none of
//! them runs the ecosystem's own tool or touches image transport.

pub mod npm;
