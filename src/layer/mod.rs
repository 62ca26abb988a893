//! Layers: writing deterministic tar streams, reading untrusted ones.
//!
//! `layer` knows nothing of where a layer goes (store, archive, registry)
//! nor of npm or pip: every producer feeds the writer entries alike, and
//! every consumer of base layers goes through the same safe reader.

pub mod compress;
pub mod parallel;
pub mod path;
pub mod reader;
pub mod segments;
pub mod verify;
pub mod writer;

pub use compress::Compression;
pub use path::ImagePath;
pub use writer::{EntryMeta, Layer, LayerError, LayerWriter};
