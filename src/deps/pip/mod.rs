//! Python dependencies from wheels, without running pip.
//!
//! This holds the pure parsers the installer is built from, each taking
//! bytes or strings and returning data, so that they are tested without
//! files or network: [`requirements`] reads requirements.txt as
//! `pip install -r` does, and [`tags`] reads wheel filenames and ranks
//! them for the image's interpreter, architecture and C library.

pub mod requirements;
pub mod tags;
