//! Installing wheels into one deps layer, as `pip install --no-deps
//! --no-compile` would install them into the image, without running pip.
//!
//! [`write_layer`] takes wheels already in the store (blobs named by their
//! sha256) and writes one layer holding every file they install: the
//! wheel's root in purelib or platlib, its `.data` folders in the
//! scheme's folders, launchers for its entry points, and its `.dist-info`
//! with a rewritten RECORD and an INSTALLER file. No `.pyc` is written
//! (`--no-compile`): compiling needs the image's interpreter, which hoist
//! never runs. The layer holds what pip would leave in the image, with
//! two differences, both on purpose:
//! - Everything is checked. Every file must be listed in RECORD with the
//!   hash it has (pip checks none), and paths, entry kinds and sizes are
//!   checked as the `archive` and `plan` modules describe; a wheel that
//!   fails leaves nothing in the store.
//! - Two wheels that install different bytes at one path are refused,
//!   naming both, where pip silently keeps the last one; identical bytes
//!   are written once (old-style namespace packages ship the same
//!   `__init__.py` in several wheels).
//!
//! The work is done in two steps, so memory stays flat whatever the
//! wheels' sizes: `plan` reads each wheel's central directory and
//! metadata and lists every entry of the layer, sorted; `write` then
//! streams each file out of its zip into the layer writer, checking its
//! hash as it goes. The parsers of the wheel's metadata files
//! ([`dist_info`] for WHEEL, [`record`], [`entry_points`]) take bytes and
//! are tested on their own.

mod archive;
pub mod dist_info;
pub mod entry_points;
mod plan;
pub mod record;
mod scripts;
mod write;

#[cfg(test)]
mod pip_compare;
#[cfg(test)]
mod tests;

use std::io;

use super::env::PythonEnv;
use super::tags::TagError;
use crate::digest::Digest;
use crate::layer::{Compression, Layer, LayerError};
use crate::store::{Store, StoreError};

/// One wheel to install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelInput {
    /// The wheel's file name (`six-1.16.0-py2.py3-none-any.whl`): it names
    /// the project and version the wheel must hold.
    pub filename: String,
    /// The wheel's bytes in the store.
    pub blob: Digest,
    /// The user asked for this project (a top-level requirement): its
    /// `.dist-info` gets an empty `REQUESTED` file, as pip writes one.
    pub requested: bool,
}

/// The layer written, and what it holds.
#[derive(Debug, Clone)]
pub struct WheelLayer {
    pub layer: Layer,
    /// Files (not folders) in the layer.
    pub files: usize,
    /// Of those, scripts: entry-point launchers and `.data/scripts` files.
    pub scripts: usize,
}

/// Why wheels cannot be installed. Every variant names the wheel and,
/// where there is one, the file inside it.
#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    #[error("`{filename}` is not a wheel's file name: {source}")]
    Filename {
        filename: String,
        #[source]
        source: TagError,
    },
    #[error("{wheel}: {source}")]
    Store {
        wheel: String,
        #[source]
        source: StoreError,
    },
    #[error("{wheel} is not a readable zip archive: {source}; the download is broken: delete the blob from the cache and fetch it again")]
    Zip {
        wheel: String,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{wheel}: cannot open `{file}` in the archive: {source}; the wheel is broken: fetch it again")]
    Entry {
        wheel: String,
        file: String,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{wheel}: reading `{file}`: {source}; the wheel is broken: fetch it again")]
    Read {
        wheel: String,
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("{wheel} holds `{file}` more than once; a wheel must not (the archive is broken or crafted)")]
    DuplicateEntry { wheel: String, file: String },
    #[error("{wheel}: `{file}` is {what}; hoist installs regular files only")]
    NotAFile {
        wheel: String,
        file: String,
        what: &'static str,
    },
    #[error("{wheel}: refusing `{file}`: the path {why}")]
    BadPath {
        wheel: String,
        file: String,
        why: &'static str,
    },
    #[error("{wheel} has .dist-info folders {found}; a wheel has exactly one, named for its project and version")]
    DistInfo { wheel: String, found: String },
    #[error("{wheel} has .data folders {found}; a wheel has at most one, named for its project and version")]
    DataFolders { wheel: String, found: String },
    #[error("{wheel}: folder `{folder}` does not name {name} {version} as the wheel's file name does; the file was renamed or the wheel is broken")]
    FolderName {
        wheel: String,
        folder: String,
        name: String,
        version: String,
    },
    #[error("{wheel}: `{file}` is in the .data folder but not under one of its subfolders {keys}")]
    DataKey {
        wheel: String,
        file: String,
        keys: &'static str,
    },
    #[error("{wheel} has no `{file}`; it is not a valid wheel")]
    Missing { wheel: String, file: String },
    #[error("{wheel}: {source}")]
    WheelFile {
        wheel: String,
        #[source]
        source: dist_info::WheelFileError,
    },
    #[error("{wheel}: {source}")]
    Record {
        wheel: String,
        #[source]
        source: record::RecordError,
    },
    #[error("{wheel}: {source}")]
    EntryPoints {
        wheel: String,
        #[source]
        source: entry_points::EntryPointError,
    },
    #[error("{wheel}: RECORD lists `{file}` twice with different hashes or sizes")]
    RecordTwice { wheel: String, file: String },
    #[error("{wheel}: `{file}` is not listed in RECORD; the wheel is broken or was altered")]
    NotInRecord { wheel: String, file: String },
    #[error("{wheel}: RECORD lists `{file}` without a hash; the wheel is broken")]
    NoHash { wheel: String, file: String },
    #[error("{wheel}: RECORD lists `{file}`, which the wheel does not hold; the wheel is broken or was altered")]
    NotInWheel { wheel: String, file: String },
    #[error("{wheel}: `{file}` has {actual} bytes but RECORD says {expected}; the wheel is broken or was altered: fetch it again")]
    SizeMismatch {
        wheel: String,
        file: String,
        expected: u64,
        actual: u64,
    },
    #[error("{wheel}: `{file}` hashes to {actual} but RECORD says {expected}; the wheel is broken or was altered: fetch it again")]
    HashMismatch {
        wheel: String,
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{wheel}: `{file}` inflates to more than the {size} bytes its zip entry states; the archive is broken or crafted")]
    Inflates {
        wheel: String,
        file: String,
        size: u64,
    },
    #[error("{wheel}: `{file}` ends after {got} of the {size} bytes its zip entry states; the wheel is broken: fetch it again")]
    Short {
        wheel: String,
        file: String,
        size: u64,
        got: u64,
    },
    #[error("{wheel}: `{file}` is larger than {limit} bytes, too large for a metadata file")]
    TooLarge {
        wheel: String,
        file: String,
        limit: u64,
    },
    #[error("`{path}` would be both {first} and {second}; hoist does not let one wheel's file replace another's (pip would keep the last): drop one of the requirements")]
    Conflict {
        path: String,
        first: String,
        second: String,
    },
    #[error(transparent)]
    Layer(#[from] LayerError),
}

/// Installs `wheels` into one layer for the image's Python `env`:
/// checks every wheel, then writes the layer into the store. `installer`
/// goes into each `INSTALLER` file; every entry gets the mtime `epoch`.
/// On error nothing is left in the store.
pub fn write_layer(
    store: &Store,
    wheels: &[WheelInput],
    env: &PythonEnv,
    installer: &str,
    compression: Compression,
    epoch: u64,
) -> Result<WheelLayer, WheelError> {
    let plan = plan::Plan::new(store, wheels, env, installer)?;
    let layer = write::write(&plan, store, compression, epoch)?;
    Ok(WheelLayer {
        layer,
        files: plan.files(),
        scripts: plan.scripts(),
    })
}
