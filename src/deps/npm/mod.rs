//! npm: package-lock.json to a node_modules layer, without running npm.
//!
//! The lockfile already records every decision npm's resolver made, down to
//! the folder each package lands in, so installing is reading, selecting,
//! fetching and unpacking; nothing runs. The steps live apart so each can
//! be tested on bytes alone:
//!
//! - [`lockfile`]: package.json and package-lock.json v2/v3 from bytes, with
//!   every key validated as an install path;
//! - [`integrity`]: SRI strings and the verifier for downloaded tarballs;
//! - [`npmrc`]: the project's `.npmrc`: registries, scopes, credentials;
//! - [`select`]: what `npm ci` would install for one omit set and platform;
//! - [`bins`]: the `node_modules/.bin` links npm makes;
//! - [`tarball`]: where each tarball entry goes and with what mode, and the
//!   bounded scan of a whole tarball;
//! - [`path`]: the relative-path type the others hand around.
//!
//! And the steps with I/O, on top of them:
//!
//! - [`fetch`]: tarballs downloaded in parallel, verified as they stream,
//!   kept in the store by integrity;
//! - [`layout`]: the layer's entries in sorted order, written straight from
//!   the stored tarballs;
//! - [`install`]: one install, from the project folder to a cached layer.

pub mod bins;
pub mod fetch;
pub mod install;
pub mod integrity;
pub mod layout;
pub mod lockfile;
pub mod npmrc;
pub mod path;
pub mod scripts;
pub mod select;
pub mod tarball;

pub use install::{Counts, InstallOptions, Installed, NpmError, Project};
