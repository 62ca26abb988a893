//! Python dependencies from wheels, without running pip.
//!
//! The pure parsers come first, each taking bytes or strings and
//! returning data, so that they are tested without files or network:
//! [`requirements`] reads requirements.txt as `pip install -r` does, and
//! [`tags`] reads wheel filenames and ranks them for the image's
//! interpreter, architecture and C library. [`env`](mod@env) describes the image's
//! Python, [`dist`] the files an index offers.

pub mod dist;
pub mod download;
pub mod env;
pub mod index;
pub mod install;
pub mod lock;
pub mod metadata;
pub mod project;
pub mod requirements;
pub mod resolve;
pub mod sdist;
pub mod tags;
pub mod wheel;
