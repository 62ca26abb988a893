//! One entry point per verb (build, bundle, inspect, images, lock, pull):
//! orchestration only. Each function takes what the command line parsed,
//! drives frontend -> graph -> exec -> outputs, and returns what happened
//! for the CLI to draw; the CLI holds no logic of its own and the library
//! prints nothing. Cargo's `src/cargo/ops` is the model.

pub mod batch;
pub mod build;
pub mod bundle;
pub mod compose;
pub mod dockerfile;
pub mod images;
pub mod inspect;
pub mod lock;
pub mod pull;
