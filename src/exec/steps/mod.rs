//! The step kinds the executor runs, one file each: the user layer, the
//! app layer over the build context, copies from stages, host steps, run
//! steps through the sandbox, and the image config rules. Each step turns
//! its inputs into a layer (or a config change) the executor records under
//! the step's key; none of them decides what is cached.

pub mod accounts;
pub mod app;
pub mod config;
pub mod context;
pub mod copy;
pub mod host;
pub mod mounts;
pub mod paths;
pub mod place;
pub mod run;
pub mod user;
