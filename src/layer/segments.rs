//! Segmented layers: a deps layer assembled from pieces compressed one
//! package at a time, so that a dependency change compresses only what
//! changed.
//!
//! Why: a deps layer holds tens of packages and up to some hundred MB; one
//! added package used to mean compressing all of it again (most of a
//! warm dependency change's time). Here the uncompressed tar stream is cut
//! into *segments* whose bounds depend only on what the layer holds: the
//! caller lays them out (a skeleton of folders and shared entries first,
//! then one segment per package, in a stable order) and this module
//! compresses each segment alone, keeps it in the store under a key of
//! everything that shapes its bytes ([`SegmentKey`]), and joins the
//! segments into one layer. A segment found in the store is not made
//! again; a cold build makes every segment the same way, so a layer built
//! from a warm store and one built from an empty store are the same bytes.
//!
//! How the pieces join, per compression:
//! - **gzip**: a segment is raw deflate, its first chunk primed with
//!   nothing, its last chunk ended by a sync flush (byte-aligned, no end of
//!   stream), written by [`ChunkedEncoder::segment`] (so a large package
//!   still uses every core, chunk by chunk, with the dictionary priming
//!   inside the segment). The layer is the gzip header, the segments, the
//!   tar's end-of-archive as a last segment, a final empty deflate block
//!   (`03 00`), and the trailer: the CRC-32 of the whole stream (the
//!   segments' CRC-32s joined with crc32 combine) and its length. That is
//!   one gzip member, which every reader reads (some stop after the first
//!   member, so several members are not an option).
//! - **zstd**: a segment is its chunks' frames; the layer is the frames in
//!   order, which every zstd reader reads in sequence.
//! - **none**: the segments' tar bytes laid end to end.
//!
//! The layer's digest comes from copying the segments; its diff_id (the
//! SHA-256 of the uncompressed stream) needs the stream itself, so a
//! second thread inflates the segments into a hasher beside the copy.
//! Both read the blobs through small buffers: memory stays flat whatever
//! the layer's size. The copy checks each blob's digest and the inflater
//! each segment's length and CRC-32; a stored segment that fails either (or
//! whose blob is gone) is made again rather than trusted.

use std::io::{self, BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::compress::Compression;
use super::parallel::{self, ChunkedEncoder, Codec, CHUNK};
use super::path::ImagePath;
use super::writer::{EntryMeta, Layer, LayerError, TarWriter};
use crate::digest::{Digest, HashingWriter, VerifyingReader};
use crate::image::Descriptor;
use crate::store::{BlobWriter, Store, StoreError};

/// The store's entry kind for segments (`keys/deps-segment/<key>`;
/// `store/gc.rs` counts it under deps).
pub const SEGMENT_KIND: &str = "deps-segment";

/// Part of every key: change it when anything changes a segment's bytes
/// that the key does not otherwise cover (the tar header form, the
/// encoder's feeding).
const FORMAT: &str = "hoist-segment-1";

/// The final empty deflate block (fixed Huffman, BFINAL set): ends the
/// deflate stream after the last sync-flushed segment.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// The tar end-of-archive: two zero blocks.
const END_OF_ARCHIVE: usize = 1024;

/// A segment whose entries hold at least this many bytes is compressed
/// on its own, on every thread; smaller ones are compressed side by side,
/// one thread each.
const BIG: u64 = 4 * CHUNK as u64;

/// What an entry is, for its segment's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
    Hardlink,
}

/// Builds a segment's key: a hash of everything that shapes the
/// segment's bytes. The caller adds each entry, in the order it will
/// write them, with its content's identity (bytes that name the content
/// for good: a blob digest and a member name, a hash of bytes made here).
pub struct SegmentKey {
    hasher: Sha256,
    bytes: u64,
}

impl SegmentKey {
    /// A key for a segment compressed as `compression`, whose entries all
    /// have the mtime `epoch`.
    pub fn new(compression: Compression, epoch: u64) -> SegmentKey {
        let mut k = SegmentKey {
            hasher: Sha256::new(),
            bytes: 0,
        };
        let codec = match compression {
            Compression::None => "none".to_owned(),
            Compression::Gzip => format!("gzip-{}", parallel::GZIP_LEVEL),
            Compression::Zstd => format!("zstd-{}", parallel::ZSTD_LEVEL),
        };
        k.field(FORMAT.as_bytes());
        k.field(codec.as_bytes());
        k.field(&(CHUNK as u64).to_le_bytes());
        k.field(&epoch.to_le_bytes());
        k
    }

    fn field(&mut self, bytes: &[u8]) {
        self.hasher.update((bytes.len() as u64).to_le_bytes());
        self.hasher.update(bytes);
    }

    /// Adds one entry: `link` is a link's target (empty otherwise).
    pub fn entry(
        &mut self,
        path: &ImagePath,
        kind: EntryKind,
        meta: EntryMeta,
        size: u64,
        link: &str,
        identity: &[u8],
    ) {
        self.field(path.as_str().as_bytes());
        self.field(&[kind as u8]);
        self.field(&meta.mode.to_le_bytes());
        self.field(&meta.uid.to_le_bytes());
        self.field(&meta.gid.to_le_bytes());
        self.field(&size.to_le_bytes());
        self.field(link.as_bytes());
        self.field(identity);
        self.bytes += size;
    }

    /// The segment, as [`write`] takes it.
    pub fn finish(self) -> Segment {
        Segment {
            key: hex::encode(self.hasher.finalize()),
            bytes: self.bytes,
        }
    }
}

/// One segment of a layer: its key and about how many bytes it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub key: String,
    pub bytes: u64,
}

/// A segment in the store: the entry `deps-segment/<key>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    /// The compressed bytes (named `digest`, which `hoist cache verify`
    /// reads as a blob the entry needs).
    #[serde(rename = "digest")]
    blob: Digest,
    size: u64,
    /// The uncompressed length and CRC-32.
    uncompressed: u64,
    crc: u32,
}

/// Where a segment's tar stream goes: its compressor, then a store blob.
/// Once shut, it drops what it is given (the tar builder's own
/// end-of-archive, which belongs at the end of the layer only).
pub struct Gate {
    inner: SegmentSink,
    shut: bool,
}

// One per segment being made: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum SegmentSink {
    Plain(BlobWriter, crc32fast::Hasher),
    Chunked(ChunkedEncoder<BlobWriter>),
}

impl SegmentSink {
    fn new(out: BlobWriter, compression: Compression, threads: usize) -> SegmentSink {
        let codec = match compression {
            Compression::None => return SegmentSink::Plain(out, crc32fast::Hasher::new()),
            Compression::Gzip => Codec::Gzip,
            Compression::Zstd => Codec::Zstd,
        };
        SegmentSink::Chunked(ChunkedEncoder::segment(out, codec, threads))
    }

    /// The blob writer, the CRC-32 and the length of what went in.
    fn finish(self) -> io::Result<(BlobWriter, u32, u64)> {
        match self {
            SegmentSink::Plain(w, crc) => {
                let len = w.count();
                Ok((w, crc.finalize(), len))
            }
            SegmentSink::Chunked(e) => e.finish_segment(),
        }
    }
}

impl Write for Gate {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.shut {
            return Ok(buf.len());
        }
        match &mut self.inner {
            SegmentSink::Plain(w, crc) => {
                w.write_all(buf)?;
                crc.update(buf);
                Ok(buf.len())
            }
            SegmentSink::Chunked(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            SegmentSink::Plain(w, _) => w.flush(),
            SegmentSink::Chunked(e) => e.flush(),
        }
    }
}

/// Writes one segment's entries, in sorted path order, with the methods
/// of [`TarWriter`] (`dir`, `file`, `symlink`, `hardlink`).
pub type SegmentWriter = TarWriter<Gate, ()>;

/// Writes a layer made of `segments`, in that order, into the store:
/// takes each from the store when its key is there, else calls
/// `produce(i, writer)` to write segment `i`'s entries (missing segments
/// are made side by side on every core), then joins them (see the module
/// docs). The segments' entries must match what their keys say.
pub fn write<E, F>(
    store: &Store,
    compression: Compression,
    epoch: u64,
    segments: &[Segment],
    produce: F,
) -> Result<Layer, E>
where
    E: From<LayerError> + Send,
    F: Fn(usize, &mut SegmentWriter) -> Result<(), E> + Sync,
{
    let threads = parallel::default_threads()
        .map_err(|e| LayerError::Io(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let maker = Maker {
        store,
        compression,
        epoch,
        segments,
        threads,
        task: Arc::new(crate::activity::Task::start(
            crate::activity::Kind::Compress,
            "layer",
            0,
        )),
    };
    let mut stored: Vec<Option<Stored>> = segments.iter().map(|s| lookup(store, &s.key)).collect();
    let mut fresh = vec![false; segments.len()];
    loop {
        let missing: Vec<usize> = (0..segments.len())
            .filter(|i| stored[*i].is_none())
            .collect();
        for (i, s) in maker.make(&missing, &produce)? {
            stored[i] = Some(s);
            fresh[i] = true;
        }
        let parts: Vec<Stored> = stored.iter().flatten().cloned().collect();
        match assemble(store, compression, &parts) {
            Ok(layer) => return Ok(layer),
            // A stored segment that does not read back is made again.
            Err(Failed::Segment(i, _)) if !fresh[i] => {
                let _ = std::fs::remove_file(store.blob_path(&parts[i].blob));
                stored[i] = None;
            }
            Err(Failed::Segment(_, e)) => return Err(LayerError::Io(e).into()),
            Err(Failed::Layer(e)) => return Err(e.into()),
        }
    }
}

/// The stored segment under `key`, when its entry reads and its blob is
/// there with the size the entry says (its digest is checked as it is
/// copied).
fn lookup(store: &Store, key: &str) -> Option<Stored> {
    let bytes = store.get_key(SEGMENT_KIND, key).ok()??;
    let s: Stored = serde_json::from_slice(&bytes).ok()?;
    let len = std::fs::metadata(store.blob_path(&s.blob)).ok()?.len();
    (len == s.size).then_some(s)
}

/// What makes missing segments.
struct Maker<'a> {
    store: &'a Store,
    compression: Compression,
    epoch: u64,
    segments: &'a [Segment],
    threads: usize,
    task: Arc<crate::activity::Task>,
}

impl Maker<'_> {
    /// Makes the segments `missing`: each big one alone on every thread,
    /// then the small ones side by side, one thread each. Which thread
    /// makes which changes no byte.
    fn make<E, F>(&self, missing: &[usize], produce: &F) -> Result<Vec<(usize, Stored)>, E>
    where
        E: From<LayerError> + Send,
        F: Fn(usize, &mut SegmentWriter) -> Result<(), E> + Sync,
    {
        let (big, small): (Vec<usize>, Vec<usize>) = missing
            .iter()
            .partition(|i| self.segments[**i].bytes >= BIG);
        let mut made = Vec::with_capacity(missing.len());
        for i in big {
            made.push((i, self.one(i, self.threads, produce)?));
        }
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let results: Mutex<Vec<(usize, Stored)>> = Mutex::new(Vec::new());
        let error: Mutex<Option<E>> = Mutex::new(None);
        let workers = self.threads.min(small.len());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        let Some(&i) = small.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            return;
                        };
                        match self.one(i, 1, produce) {
                            Ok(st) => {
                                if let Ok(mut r) = results.lock() {
                                    r.push((i, st));
                                }
                            }
                            Err(e) => {
                                stop.store(true, Ordering::Relaxed);
                                if let Ok(mut slot) = error.lock() {
                                    slot.get_or_insert(e);
                                }
                                return;
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = error.into_inner().ok().flatten() {
            return Err(e);
        }
        let results = results.into_inner().unwrap_or_default();
        if results.len() != small.len() {
            return Err(LayerError::Io(io::Error::other(
                "a segment thread stopped unexpectedly (this is a bug in hoist)",
            ))
            .into());
        }
        made.extend(results);
        Ok(made)
    }

    /// Makes segment `i` on `threads` threads and records it.
    fn one<E, F>(&self, i: usize, threads: usize, produce: &F) -> Result<Stored, E>
    where
        E: From<LayerError>,
        F: Fn(usize, &mut SegmentWriter) -> Result<(), E>,
    {
        let blob = self.store.writer().map_err(LayerError::from)?;
        let gate = Gate {
            inner: SegmentSink::new(blob, self.compression, threads),
            shut: false,
        };
        let mut w = TarWriter::start(gate, (), self.epoch, Arc::clone(&self.task));
        produce(i, &mut w)?;
        w.sink_mut().shut = true;
        let (gate, ()) = w.into_parts()?;
        let (blob, crc, uncompressed) = gate.inner.finish().map_err(LayerError::from)?;
        // Not fsynced, nor is its entry: joining checks every segment's
        // digest, length and CRC-32 and makes a bad one again, and the
        // layer joined from them is durable.
        let (digest, size) = blob.finish_hint().map_err(LayerError::from)?;
        let stored = Stored {
            blob: digest,
            size,
            uncompressed,
            crc,
        };
        let entry = serde_json::to_vec(&stored).map_err(|e| LayerError::Io(e.into()))?;
        self.store
            .put_hint(SEGMENT_KIND, &self.segments[i].key, &entry)
            .map_err(LayerError::from)?;
        Ok(stored)
    }
}

/// Why joining failed: a segment did not read back (index, why), or
/// something else.
enum Failed {
    Segment(usize, io::Error),
    Layer(LayerError),
}

impl From<io::Error> for Failed {
    fn from(e: io::Error) -> Failed {
        Failed::Layer(e.into())
    }
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Failed {
        Failed::Layer(e.into())
    }
}

/// The tar's end-of-archive, compressed as a segment.
fn end_of_archive(compression: Compression) -> io::Result<(Vec<u8>, u32, u64)> {
    let zeros = [0u8; END_OF_ARCHIVE];
    let codec = match compression {
        Compression::None => {
            let mut crc = crc32fast::Hasher::new();
            crc.update(&zeros);
            return Ok((zeros.to_vec(), crc.finalize(), zeros.len() as u64));
        }
        Compression::Gzip => Codec::Gzip,
        Compression::Zstd => Codec::Zstd,
    };
    let mut e = ChunkedEncoder::segment(Vec::new(), codec, 1);
    e.write_all(&zeros)?;
    e.finish_segment()
}

/// Joins `parts` into a layer blob (see the module docs).
fn assemble(store: &Store, compression: Compression, parts: &[Stored]) -> Result<Layer, Failed> {
    let (end, end_crc, end_len) = end_of_archive(compression)?;
    let mut out = HashingWriter::new(store.writer()?);
    let (diff, copied) = std::thread::scope(|s| {
        let diff = s.spawn(|| uncompressed_digest(store, compression, parts));
        let copied = copy_parts(store, compression, parts, &mut out);
        (diff.join(), copied)
    });
    copied?;
    let (mut hasher, mut len) = match diff {
        Ok(r) => r?,
        Err(_) => {
            return Err(
                io::Error::other("the diff_id thread stopped (this is a bug in hoist)").into(),
            )
        }
    };
    hasher.update([0u8; END_OF_ARCHIVE]);
    len += END_OF_ARCHIVE as u64;
    out.write_all(&end)?;
    if compression == Compression::Gzip {
        out.write_all(&FINAL_BLOCK)?;
        let mut crc = crc32fast::Hasher::new();
        for p in parts {
            crc.combine(&crc32fast::Hasher::new_with_initial_len(
                p.crc,
                p.uncompressed,
            ));
        }
        crc.combine(&crc32fast::Hasher::new_with_initial_len(end_crc, end_len));
        out.write_all(&crc.finalize().to_le_bytes())?;
        out.write_all(&(len as u32).to_le_bytes())?;
    }
    let (blob, _, _) = out.finish();
    let (digest, size) = blob.finish(None, None)?;
    Ok(Layer {
        descriptor: Descriptor::new(compression.media_type(), digest, size),
        diff_id: Digest::from_sha256(hasher),
        uncompressed_size: len,
    })
}

/// Copies the compressed segments into `out`, after the gzip header,
/// checking each blob's digest.
fn copy_parts(
    store: &Store,
    compression: Compression,
    parts: &[Stored],
    out: &mut impl Write,
) -> Result<(), Failed> {
    if compression == Compression::Gzip {
        out.write_all(&parallel::GZIP_HEADER)?;
    }
    let mut buf = vec![0u8; 256 * 1024];
    for (i, p) in parts.iter().enumerate() {
        let bad = |e: io::Error| Failed::Segment(i, e);
        let file = store
            .open_blob(&p.blob)
            .map_err(|e| bad(io::Error::other(e)))?;
        let mut r = VerifyingReader::new(file, p.blob.clone(), Some(p.size));
        loop {
            let n = r.read(&mut buf).map_err(bad)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
        }
    }
    Ok(())
}

/// The SHA-256 (unfinished) and length of the segments' uncompressed
/// bytes, each segment's length and CRC-32 checked.
fn uncompressed_digest(
    store: &Store,
    compression: Compression,
    parts: &[Stored],
) -> Result<(Sha256, u64), Failed> {
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    for (i, p) in parts.iter().enumerate() {
        let bad = |e: io::Error| Failed::Segment(i, e);
        let file = store
            .open_blob(&p.blob)
            .map_err(|e| bad(io::Error::other(e)))?;
        let raw = BufReader::with_capacity(128 * 1024, file).take(p.size);
        let mut r: Box<dyn Read> = match compression {
            Compression::None => Box::new(raw),
            Compression::Gzip => Box::new(flate2::read::DeflateDecoder::new(
                raw.chain(&FINAL_BLOCK[..]),
            )),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(raw).map_err(bad)?),
        };
        let mut crc = crc32fast::Hasher::new();
        let mut len = 0u64;
        loop {
            let n = r.read(&mut buf).map_err(bad)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            crc.update(&buf[..n]);
            len += n as u64;
        }
        let got = crc.finalize();
        if len != p.uncompressed || got != p.crc {
            return Err(bad(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "stored layer segment {} does not read back as recorded ({len} {} {} {})",
                    p.blob, p.uncompressed, p.crc, got
                ),
            )));
        }
        total += len;
    }
    Ok((hasher, total))
}

#[cfg(test)]
mod tests;
