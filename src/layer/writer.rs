//! The deterministic layer writer.
//!
//! One pass: tar entries go through a SHA-256 (the diff_id, of the
//! uncompressed stream), then the compressor, then another SHA-256 (the
//! digest, of the compressed blob) straight into a store temp file. Nothing
//! is buffered beyond a few hundred KiB, so memory stays flat whatever the
//! layer's size.
//!
//! Determinism is the writer's job, not its callers': every header is built
//! here, from numbers only (no user or group names), with one mtime for
//! every entry and fixed compression settings. Callers must hand entries in
//! sorted path order, which the writer checks, so the same tree always
//! gives the same bytes.

use std::io::{self, Read};
use std::sync::Arc;

use crate::digest::{Digest, HashingWriter};
use crate::image::Descriptor;
use crate::store::{BlobWriter, Store, StoreError};

use super::compress::{Compression, Encoder};
use super::path::ImagePath;

/// Errors while writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("layer entries out of order: {next} came after {prev} (this is a bug in hoist)")]
    Unsorted { prev: String, next: String },
    #[error("{path} changed while it was being read: expected {expected} bytes, got {got}")]
    FileChanged {
        path: String,
        expected: u64,
        got: u64,
    },
}

/// Ownership and permission bits of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryMeta {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

impl EntryMeta {
    /// Owned by root with the given mode.
    pub fn root(mode: u32) -> EntryMeta {
        EntryMeta {
            mode,
            uid: 0,
            gid: 0,
        }
    }
}

/// A finished layer in the store.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The compressed blob's descriptor.
    pub descriptor: Descriptor,
    /// The digest of the uncompressed tar stream.
    pub diff_id: Digest,
    /// The uncompressed size.
    pub uncompressed_size: u64,
}

type Sink = HashingWriter<Encoder<HashingWriter<BlobWriter>>>;

/// Writes one layer into the store.
pub type LayerWriter = TarWriter<Sink, Compression>;

/// Tar entries, built deterministically and checked to come in sorted
/// order, written into `W`. `S` is what the finished stream needs: a
/// whole layer's compression here, a segment's state in
/// [`super::segments`].
pub struct TarWriter<W: io::Write, S> {
    tar: tar::Builder<W>,
    pub(crate) state: S,
    mtime: u64,
    last: Option<String>,
    /// Bytes into the compressor, for the progress view.
    task: Arc<crate::activity::Task>,
}

impl<W: io::Write, S> TarWriter<W, S> {
    /// Starts a tar stream into `out`; `mtime` is stamped on every entry.
    pub(crate) fn start(out: W, state: S, mtime: u64, task: Arc<crate::activity::Task>) -> Self {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Deterministic);
        tar.follow_symlinks(false);
        TarWriter {
            tar,
            state,
            mtime,
            last: None,
            task,
        }
    }

    /// Starts another sorted run: what follows is checked against itself,
    /// not against what came before. For rewriting a layer made of runs
    /// each in order (a segmented deps layer, [`super::segments`]) in its
    /// own order.
    pub fn new_run(&mut self) {
        self.last = None;
    }

    /// The stream's writer, for the segment writer to close it off.
    pub(crate) fn sink_mut(&mut self) -> &mut W {
        self.tar.get_mut()
    }

    /// Ends the tar stream (writing its end-of-archive into the sink).
    pub(crate) fn into_parts(self) -> Result<(W, S), LayerError> {
        Ok((self.tar.into_inner()?, self.state))
    }
}

impl LayerWriter {
    /// Starts a layer; `mtime` is stamped on every entry.
    pub fn new(store: &Store, compression: Compression, mtime: u64) -> Result<Self, LayerError> {
        let blob = HashingWriter::new(store.writer()?);
        let sink = HashingWriter::new(compression.encoder(blob)?);
        let task = crate::activity::Task::start(crate::activity::Kind::Compress, "layer", 0);
        Ok(TarWriter::start(sink, compression, mtime, Arc::new(task)))
    }

    /// Ends the tar stream, the compression and the blob; returns the
    /// layer's descriptor, diff_id and uncompressed size.
    pub fn finish(self) -> Result<Layer, LayerError> {
        let (sink, compression) = self.into_parts()?;
        let (encoder, diff_id, uncompressed_size) = sink.finish();
        let (blob, _, _) = encoder.finish()?.finish();
        let (digest, size) = blob.finish(None, None)?;
        Ok(Layer {
            descriptor: Descriptor::new(compression.media_type(), digest, size),
            diff_id,
            uncompressed_size,
        })
    }
}

impl<W: io::Write, S> TarWriter<W, S> {
    fn header(
        &mut self,
        path: &ImagePath,
        kind: tar::EntryType,
        meta: EntryMeta,
        size: u64,
    ) -> Result<tar::Header, LayerError> {
        let name = path.as_str();
        if let Some(prev) = &self.last {
            if prev.as_str() >= name {
                return Err(LayerError::Unsorted {
                    prev: prev.clone(),
                    next: name.to_owned(),
                });
            }
        }
        self.last = Some(name.to_owned());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(meta.mode & 0o7777);
        h.set_uid(meta.uid);
        h.set_gid(meta.gid);
        h.set_mtime(self.mtime);
        h.set_size(size);
        Ok(h)
    }

    /// Adds a folder.
    pub fn dir(&mut self, path: &ImagePath, meta: EntryMeta) -> Result<(), LayerError> {
        let mut h = self.header(path, tar::EntryType::Directory, meta, 0)?;
        self.tar.append_data(&mut h, path.as_str(), io::empty())?;
        Ok(())
    }

    /// Adds a regular file of exactly `size` bytes read from `content`.
    pub fn file(
        &mut self,
        path: &ImagePath,
        meta: EntryMeta,
        size: u64,
        content: &mut dyn Read,
    ) -> Result<(), LayerError> {
        let mut h = self.header(path, tar::EntryType::Regular, meta, size)?;
        let mut exact = ExactReader {
            inner: content.take(size),
            remaining: size,
            task: &self.task,
        };
        match self.tar.append_data(&mut h, path.as_str(), &mut exact) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(LayerError::FileChanged {
                path: path.to_string(),
                expected: size,
                got: size - exact.remaining,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds a symbolic link (its target is stored as given).
    pub fn symlink(
        &mut self,
        path: &ImagePath,
        target: &str,
        meta: EntryMeta,
    ) -> Result<(), LayerError> {
        let mut h = self.header(path, tar::EntryType::Symlink, meta, 0)?;
        self.tar.append_link(&mut h, path.as_str(), target)?;
        Ok(())
    }

    /// Adds a hard link to an entry written earlier in this layer.
    pub fn hardlink(
        &mut self,
        path: &ImagePath,
        target: &ImagePath,
        meta: EntryMeta,
    ) -> Result<(), LayerError> {
        let mut h = self.header(path, tar::EntryType::Link, meta, 0)?;
        self.tar
            .append_link(&mut h, path.as_str(), target.as_str())?;
        Ok(())
    }
}

/// Yields exactly `remaining` bytes or fails with `UnexpectedEof`, so a file
/// that shrinks while it is read can never produce a corrupt tar.
struct ExactReader<'t, R> {
    inner: R,
    remaining: u64,
    task: &'t crate::activity::Task,
}

impl<R: Read> Read for ExactReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.remaining -= n as u64;
        self.task.add(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::compress::decompress;

    fn p(s: &str) -> ImagePath {
        ImagePath::new(s).unwrap()
    }

    fn write_sample(store: &Store, c: Compression) -> Layer {
        let mut w = LayerWriter::new(store, c, 0).unwrap();
        w.dir(&p("app"), EntryMeta::root(0o755)).unwrap();
        let long = format!("app/{}", "x".repeat(150));
        w.file(&p(&long), EntryMeta::root(0o644), 3, &mut &b"abc"[..])
            .unwrap();
        w.file(&p("app/y"), EntryMeta::root(0o644), 2, &mut &b"hi"[..])
            .unwrap();
        w.hardlink(&p("app/z"), &p("app/y"), EntryMeta::root(0o644))
            .unwrap();
        w.symlink(&p("app/zz"), "y", EntryMeta::root(0o777))
            .unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn deterministic_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = write_sample(&store, Compression::Gzip);
        let b = write_sample(&store, Compression::Gzip);
        assert_eq!(a.descriptor.digest, b.descriptor.digest);
        assert_eq!(a.diff_id, b.diff_id);
        let blob = store.open_blob(&a.descriptor.digest).unwrap();
        let (_, r) = decompress(blob).unwrap();
        let mut ar = tar::Archive::new(r);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                assert_eq!(e.header().mtime().unwrap(), 0);
                assert_eq!(e.header().username().unwrap(), Some(""));
                e.path().unwrap().to_string_lossy().into_owned()
            })
            .collect();
        assert_eq!(names.len(), 5);
        assert_eq!(names[1].len(), 4 + 150);
        let none = write_sample(&store, Compression::None);
        assert_eq!(none.descriptor.digest, a.diff_id);
        assert_eq!(none.uncompressed_size, a.uncompressed_size);
    }

    #[test]
    fn refuses_unsorted_and_short_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = LayerWriter::new(&store, Compression::Gzip, 0).unwrap();
        w.dir(&p("b"), EntryMeta::root(0o755)).unwrap();
        assert!(matches!(
            w.dir(&p("a"), EntryMeta::root(0o755)),
            Err(LayerError::Unsorted { .. })
        ));
        let mut w = LayerWriter::new(&store, Compression::Gzip, 0).unwrap();
        let err = w
            .file(&p("f"), EntryMeta::root(0o644), 10, &mut &b"abc"[..])
            .unwrap_err();
        assert!(
            matches!(err, LayerError::FileChanged { got: 3, .. }),
            "{err}"
        );
    }
}
