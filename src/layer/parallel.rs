//! Compressing a layer on every core, with the same bytes whatever the
//! number of threads.
//!
//! Why: gzip level 6 runs at about 25–55 MB/s on one core, far slower than
//! reading files, building the tar or hashing it, so one compressor thread
//! is the whole cost of writing a large layer.
//!
//! How: the uncompressed stream is cut into chunks of [`CHUNK`] bytes at
//! fixed offsets (0, 1 MiB, 2 MiB, ...). Offsets, never timing, decide the
//! cuts, and each chunk's compressed bytes are a pure function of the chunk,
//! the 32 KiB before it and whether it is the last one. So 1, 2 or 16
//! threads give the same blob; the writer hands chunks to a small pool of
//! threads and writes the results back in order.
//!
//! - **gzip** is one standard member, as pigz writes it: each chunk is raw
//!   deflate primed with the previous chunk's last 32 KiB as its dictionary
//!   (so matches still reach across the cut and the size stays within a few
//!   tenths of a percent of one-thread gzip), ended with a sync flush
//!   (byte-aligned, the next chunk starts a new block); the last chunk ends
//!   the stream. The CRC-32s of the chunks are joined with crc32 combine
//!   and written, with the length, in the one trailer. One member rather
//!   than one member per chunk because every gzip reader reads one member,
//!   while some stop after the first (Go's and Python's gzip read them all;
//!   we still do not want to depend on it).
//! - **zstd** is one independent frame per chunk (a zstd frame cannot refer
//!   to the data of the frame before it); every zstd reader reads frames in
//!   sequence. zstd's own multithreading is not used: its output differs
//!   from its single-thread mode, and frames of our own keep one code path.
//!
//! The same encoder also writes the *segments* of a segmented layer
//! ([`super::segments`]): [`ChunkedEncoder::segment`] compresses a piece of
//! a stream alone (its first chunk primed with nothing), with no gzip
//! header or trailer and its last gzip chunk ended by a sync flush rather
//! than the end of the stream, so that segments can be laid end to end
//! and closed by the layer's own end.
//!
//! A stream shorter than one chunk is compressed exactly as before this
//! module existed (one gzip member or zstd frame, from the same encoder
//! settings), and with no thread started.
//!
//! Each chunk gets a fresh deflate state: a reused one, even after a
//! reset, gave other bytes for the same chunk depending on what it had
//! compressed before (seen on the 200 MB bench tree, 1 against 2 threads),
//! and which chunk lands on which thread is timing.
//!
//! Memory stays flat: at most `2 × threads` chunks are in flight (the
//! writer waits for the oldest before it sends another), so with the
//! default at most 16 threads the encoder holds some tens of MiB, whatever
//! the layer's size.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Crc, FlushCompress, Status};

/// Uncompressed bytes per chunk. Part of the output's identity: changing it
/// changes the digest of every layer larger than one chunk.
pub const CHUNK: usize = 1 << 20;

/// The deflate window: how much of the previous chunk primes the next.
const WINDOW: usize = 32 * 1024;

/// The most threads one encoder uses, whatever the machine has: past this
/// the writer thread (tar and SHA-256) is the limit, and memory grows with
/// the number of chunks in flight.
pub const MAX_THREADS: usize = 16;

/// The environment variable that sets the number of compression threads.
pub const THREADS_ENV: &str = "HOIST_COMPRESS_THREADS";

pub(crate) const GZIP_LEVEL: u32 = 6;
pub(crate) const ZSTD_LEVEL: i32 = 3;

/// The gzip header flate2's `GzEncoder` writes: no name, mtime 0, no extra
/// flags for level 6, OS 255 ("unknown"), so the bytes are the same on any
/// host.
pub(crate) const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// What the chunks are compressed into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Zstd,
}

/// A bad `HOIST_COMPRESS_THREADS` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{THREADS_ENV}=`{0}` is not a number of threads: set it to a number from 1 to {MAX_THREADS}, or unset it to use every core")]
pub struct BadThreads(pub String);

/// The number of compression threads: `HOIST_COMPRESS_THREADS` when set,
/// else the cores this process may use, at most [`MAX_THREADS`].
pub fn default_threads() -> Result<usize, BadThreads> {
    match std::env::var(THREADS_ENV) {
        Ok(v) => parse_threads(&v),
        Err(_) => Ok(std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(MAX_THREADS)),
    }
}

fn parse_threads(v: &str) -> Result<usize, BadThreads> {
    match v.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        _ => Err(BadThreads(v.to_owned())),
    }
}

/// A chunk compressed, with what the writer needs to join it.
struct Done {
    bytes: Vec<u8>,
    crc: Crc,
}

/// One chunk to compress.
struct Job {
    data: Vec<u8>,
    dict: Vec<u8>,
    last: bool,
    reply: SyncSender<io::Result<Done>>,
}

/// A compressor (one per thread).
struct Worker {
    codec: Codec,
    /// The thread's zstd context, made once: making one per 1 MiB chunk
    /// cost about as much as compressing the chunk. zstd's output is a
    /// function of the input and the parameters alone, so reusing the
    /// context changes no byte.
    zstd: Option<zstd::stream::raw::Encoder<'static>>,
}

impl Worker {
    fn new(codec: Codec) -> Worker {
        Worker { codec, zstd: None }
    }

    /// Compresses one chunk: a pure function of its arguments, which is
    /// what makes the output independent of the thread count.
    fn compress(&mut self, data: &[u8], dict: &[u8], last: bool) -> io::Result<Done> {
        // Both codecs: the gzip trailer needs it, and so does a segment
        // (its length and CRC-32 are checked as it is read back).
        let mut crc = Crc::new();
        crc.update(data);
        let bytes = match self.codec {
            Codec::Gzip => {
                // A fresh deflate state per chunk: zlib-rs's reset leaves
                // enough behind that a reused state gave other bytes after
                // other chunks (found by the bench; the 200-chunk test in
                // tests/it/chunked.rs holds it).
                let mut c = Compress::new(flate2::Compression::new(GZIP_LEVEL), false);
                deflate_chunk(&mut c, data, dict, last)?
            }
            Codec::Zstd => {
                let z = match &mut self.zstd {
                    Some(z) => z,
                    None => self
                        .zstd
                        .insert(zstd::stream::raw::Encoder::new(ZSTD_LEVEL)?),
                };
                zstd_chunk(z, data)?
            }
        };
        Ok(Done { bytes, crc })
    }
}

/// One zstd frame of `data` on a reused context, fed as the stream
/// encoder feeds it (the input, then the end with none), so that the
/// frame is the one `zstd::stream::write::Encoder` writes: no content
/// size in its header, the parameters of an unknown-size stream.
fn zstd_chunk(z: &mut zstd::stream::raw::Encoder<'static>, data: &[u8]) -> io::Result<Vec<u8>> {
    use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
    z.reinit()?;
    let mut out: Vec<u8> = Vec::with_capacity(data.len() / 2 + 1024);
    let mut buf = vec![0u8; zstd::zstd_safe::CCtx::out_size()];
    let mut input = InBuffer::around(data);
    while input.pos < data.len() {
        let mut o = OutBuffer::around(&mut buf[..]);
        z.run(&mut input, &mut o)?;
        out.extend_from_slice(o.as_slice());
    }
    loop {
        let mut o = OutBuffer::around(&mut buf[..]);
        let left = z.finish(&mut o, true)?;
        out.extend_from_slice(o.as_slice());
        if left == 0 {
            return Ok(out);
        }
    }
}

/// Raw deflate of `data`, primed with `dict`, ended with a sync flush (or
/// the end of the stream when `last`).
fn deflate_chunk(c: &mut Compress, data: &[u8], dict: &[u8], last: bool) -> io::Result<Vec<u8>> {
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out: Vec<u8> = Vec::with_capacity(data.len() / 2 + 4096);
    // Fed as flate2's `GzEncoder` feeds it (the input with no flush, then
    // the flush alone, through a 32 KiB output buffer), so a one-chunk
    // stream is the very bytes hoist wrote before chunking: zlib-rs may
    // choose other blocks when it sees more output space or the end early.
    let mut scratch: Vec<u8> = Vec::with_capacity(32 * 1024);
    let mut consumed = 0usize;
    while consumed < data.len() {
        let before = c.total_in();
        c.compress_vec(&data[consumed..], &mut scratch, FlushCompress::None)
            .map_err(io::Error::other)?;
        consumed += (c.total_in() - before) as usize;
        out.extend_from_slice(&scratch);
        scratch.clear();
    }
    loop {
        let status = c
            .compress_vec(&[], &mut scratch, flush)
            .map_err(io::Error::other)?;
        let full = scratch.len() == scratch.capacity();
        out.extend_from_slice(&scratch);
        scratch.clear();
        match status {
            Status::StreamEnd => break,
            // A flush is complete when the call left output space unused
            // (zlib's rule for Z_SYNC_FLUSH).
            Status::Ok | Status::BufError => {
                if !last && !full {
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// The threads of one encoder. Dropping it closes the job queue and waits
/// for the threads to end.
struct Pool {
    jobs: Option<SyncSender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    fn start(codec: Codec, threads: usize) -> io::Result<Pool> {
        let (tx, rx) = mpsc::sync_channel::<Job>(threads);
        let rx = Arc::new(Mutex::new(rx));
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            let h = std::thread::Builder::new()
                .name(format!("hoist-compress-{i}"))
                .spawn(move || {
                    let mut w = Worker::new(codec);
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let done = w.compress(&job.data, &job.dict, job.last);
                        // The writer may have given up (an error elsewhere).
                        let _ = job.reply.send(done);
                    }
                })?;
            handles.push(h);
        }
        Ok(Pool {
            jobs: Some(tx),
            threads: handles,
        })
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs = None;
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}

/// A compressing writer that cuts its input into fixed chunks and
/// compresses them on a pool of threads (see the module docs);
/// [`ChunkedEncoder::finish`] ends the stream.
pub struct ChunkedEncoder<W: Write> {
    out: W,
    codec: Codec,
    threads: usize,
    /// The chunk being filled.
    buf: Vec<u8>,
    /// The last [`WINDOW`] bytes of the chunk sent before `buf`.
    tail: Vec<u8>,
    sent: u64,
    /// Chunks written to `out`.
    written: u64,
    /// Replies of the chunks in flight, oldest first.
    queue: VecDeque<Receiver<io::Result<Done>>>,
    pool: Option<Pool>,
    inline: Option<Worker>,
    crc: Crc,
    len: u64,
    /// A segment: no gzip header or trailer, no end of the deflate stream.
    segment: bool,
}

impl<W: Write> ChunkedEncoder<W> {
    /// An encoder using `threads` threads (1: everything on the caller's
    /// thread; the bytes are the same either way).
    pub fn new(out: W, codec: Codec, threads: usize) -> ChunkedEncoder<W> {
        ChunkedEncoder {
            out,
            codec,
            threads: threads.clamp(1, MAX_THREADS),
            buf: Vec::with_capacity(64 * 1024),
            tail: Vec::new(),
            sent: 0,
            written: 0,
            queue: VecDeque::new(),
            pool: None,
            inline: None,
            crc: Crc::new(),
            len: 0,
            segment: false,
        }
    }

    /// An encoder of one segment of a stream (see the module docs):
    /// [`ChunkedEncoder::finish_segment`] ends it.
    pub fn segment(out: W, codec: Codec, threads: usize) -> ChunkedEncoder<W> {
        ChunkedEncoder {
            segment: true,
            ..ChunkedEncoder::new(out, codec, threads)
        }
    }

    /// Hands the filled chunk on; `last` ends the stream with it.
    fn send(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(if last { 0 } else { CHUNK }),
        );
        let dict = std::mem::take(&mut self.tail);
        if self.codec == Codec::Gzip && !last {
            self.tail = data[data.len().saturating_sub(WINDOW)..].to_vec();
        }
        let first = self.sent == 0;
        self.sent += 1;
        let alone = first && last;
        // A segment's last gzip chunk ends with a sync flush, as the others.
        let last = last && !self.segment;
        if self.threads == 1 || alone {
            let done = self
                .inline
                .get_or_insert_with(|| Worker::new(self.codec))
                .compress(&data, &dict, last)?;
            return self.put(done);
        }
        while self.queue.len() >= 2 * self.threads {
            self.take_oldest()?;
        }
        if self.pool.is_none() {
            self.pool = Some(Pool::start(self.codec, self.threads)?);
        }
        let (reply, rx) = mpsc::sync_channel(1);
        let jobs = self.pool.as_ref().and_then(|p| p.jobs.as_ref());
        let sent = jobs.is_some_and(|jobs| {
            jobs.send(Job {
                data,
                dict,
                last,
                reply,
            })
            .is_ok()
        });
        if !sent {
            return Err(stopped());
        }
        self.queue.push_back(rx);
        Ok(())
    }

    /// Waits for the oldest chunk in flight and writes it.
    fn take_oldest(&mut self) -> io::Result<()> {
        let Some(rx) = self.queue.pop_front() else {
            return Ok(());
        };
        let done = rx.recv().map_err(|_| stopped())??;
        self.put(done)
    }

    /// Writes the next compressed chunk (after the gzip header, for the first).
    fn put(&mut self, done: Done) -> io::Result<()> {
        if self.written == 0 && self.codec == Codec::Gzip && !self.segment {
            self.out.write_all(&GZIP_HEADER)?;
        }
        self.written += 1;
        self.out.write_all(&done.bytes)?;
        self.len += done.crc.amount() as u64;
        self.crc.combine(&done.crc);
        Ok(())
    }

    /// Ends the stream: the last chunk, every chunk in flight, the gzip
    /// trailer. Returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.drain()?;
        if self.codec == Codec::Gzip {
            let mut trailer = [0u8; 8];
            trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
            trailer[4..].copy_from_slice(&(self.len as u32).to_le_bytes());
            self.out.write_all(&trailer)?;
        }
        Ok(self.out)
    }
}

impl<W: Write> ChunkedEncoder<W> {
    /// Sends the last chunk and writes every chunk in flight.
    fn drain(&mut self) -> io::Result<()> {
        self.send(true)?;
        while !self.queue.is_empty() {
            self.take_oldest()?;
        }
        Ok(())
    }

    /// Ends a segment started with [`ChunkedEncoder::segment`]: returns the
    /// inner writer and the CRC-32 and length of the uncompressed bytes.
    pub fn finish_segment(mut self) -> io::Result<(W, u32, u64)> {
        self.drain()?;
        Ok((self.out, self.crc.sum(), self.len))
    }
}

fn stopped() -> io::Error {
    io::Error::other("a compression thread stopped unexpectedly (this is a bug in hoist)")
}

impl<W: Write> Write for ChunkedEncoder<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let total = data.len();
        while !data.is_empty() {
            if self.buf.len() == CHUNK {
                // More is coming, so the full chunk is not the last.
                self.send(false)?;
            }
            let n = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Chunks are cut at fixed offsets only: a flush must not cut one.
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::layer::compress::decompress;

    /// Layer-like bytes: text runs, random runs and zeros, from a seed.
    fn sample(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let words: [&[u8]; 6] = [b"import ", b"layer ", b"return ", b"{}\n", b"value", b" = "];
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            match next() % 4 {
                0 => out.extend((0..(next() % 9000) / 8).flat_map(|_| next().to_le_bytes())),
                1 => out.extend(std::iter::repeat_n(0u8, (next() % 5000) as usize)),
                _ => {
                    for _ in 0..next() % 2000 {
                        out.extend_from_slice(words[(next() % 6) as usize]);
                    }
                }
            }
        }
        out.truncate(len);
        out
    }

    /// Incompressible bytes.
    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..len.div_ceil(8))
            .flat_map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()
            })
            .take(len)
            .collect()
    }

    /// Writes `data` in pieces of the given sizes, in turn.
    fn encode(codec: Codec, threads: usize, data: &[u8], pieces: &[usize]) -> Vec<u8> {
        let mut e = ChunkedEncoder::new(Vec::new(), codec, threads);
        let mut rest = data;
        for step in pieces.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*step).min(rest.len());
            e.write_all(&rest[..n]).unwrap();
            rest = &rest[n..];
        }
        e.finish().unwrap()
    }

    /// What hoist wrote before chunking: one encoder on one thread.
    fn one_thread_classic(codec: Codec, data: &[u8]) -> Vec<u8> {
        match codec {
            Codec::Gzip => {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(GZIP_LEVEL));
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Codec::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL).unwrap();
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
        }
    }

    const SIZES: [usize; 8] = [
        0,
        1,
        5000,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        2 * CHUNK,
        3 * CHUNK + 12_345,
    ];

    #[test]
    fn same_bytes_whatever_the_threads_and_the_write_sizes() {
        for codec in [Codec::Gzip, Codec::Zstd] {
            for (i, len) in SIZES.into_iter().enumerate() {
                let data = sample(len, i as u64 + 7);
                let reference = encode(codec, 1, &data, &[len.max(1)]);
                for (threads, pieces) in [
                    (1, &[1usize, 511, 4096][..]),
                    (2, &[65_536][..]),
                    (2, &[CHUNK][..]),
                    (8, &[100_000, 3][..]),
                    (MAX_THREADS, &[CHUNK + 7][..]),
                ] {
                    let got = encode(codec, threads, &data, pieces);
                    assert!(
                        got == reference,
                        "{codec:?}, {len} bytes, {threads} threads, pieces {pieces:?}: output differs"
                    );
                }
                // hoist's own reader (and flate2's) gives the input back.
                let (_, mut r) = decompress(&reference[..]).unwrap();
                let mut back = Vec::new();
                r.read_to_end(&mut back).unwrap();
                assert!(back == data, "{codec:?}, {len} bytes: round trip differs");
                // Up to one chunk: exactly what one classic encoder writes.
                if len <= CHUNK {
                    assert!(
                        reference == one_thread_classic(codec, &data),
                        "{codec:?}, {len} bytes: a one-chunk stream changed"
                    );
                }
            }
        }
    }

    #[test]
    fn gzip_is_one_member_whatever_its_size() {
        let data = sample(4 * CHUNK + 99, 3);
        let gz = encode(Codec::Gzip, 2, &data, &[70_000]);
        // GzDecoder stops at the end of the first member.
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == data, "the first member does not hold everything");
    }

    #[test]
    fn zstd_is_one_frame_per_chunk() {
        let data = sample(3 * CHUNK + 1, 5);
        let zs = encode(Codec::Zstd, 2, &data, &[CHUNK]);
        let mut frames = 0;
        let mut rest = &zs[..];
        while !rest.is_empty() {
            let n = zstd::zstd_safe::find_frame_compressed_size(rest).unwrap();
            rest = &rest[n..];
            frames += 1;
        }
        assert_eq!(frames, 4);
    }

    #[test]
    fn gzip_size_stays_near_one_thread_gzip() {
        let data = sample(6 * CHUNK, 11);
        let chunked = encode(Codec::Gzip, 2, &data, &[CHUNK]).len() as f64;
        let classic = one_thread_classic(Codec::Gzip, &data).len() as f64;
        let grow = chunked / classic - 1.0;
        assert!(grow < 0.01, "chunked gzip is {:.2} % larger", grow * 100.0);
    }

    /// Many chunks, so that each thread compresses chunks after other
    /// chunks: a chunk must not depend on what its thread did before
    /// (which chunk lands on which thread is timing).
    #[test]
    fn many_chunks_are_the_same_on_one_and_two_threads() {
        // Shaped like the bench tree: mixed text, long incompressible runs
        // (stored blocks), long repetitive runs.
        let json: Vec<u8> = (0..60_000)
            .flat_map(|i| format!("{{\"id\":{},\"name\":\"item-{i}\"}}\n", i % 1000).into_bytes())
            .collect();
        let data = [
            sample(6 * CHUNK, 23),
            noise(5 * CHUNK + 77),
            json.clone(),
            sample(3 * CHUNK, 24),
            noise(2 * CHUNK),
            json,
        ]
        .concat();
        for codec in [Codec::Gzip, Codec::Zstd] {
            let one = encode(codec, 1, &data, &[CHUNK]);
            let two = encode(codec, 2, &data, &[CHUNK]);
            assert!(one == two, "{codec:?}: 1 and 2 threads differ");
        }
    }

    #[test]
    fn thread_counts_parse() {
        for (v, want) in [
            ("1", Some(1)),
            ("2", Some(2)),
            (" 16 ", Some(16)),
            ("0", None),
            ("17", None),
            ("-1", None),
            ("", None),
            ("two", None),
        ] {
            let got = parse_threads(v);
            assert_eq!(got.clone().ok(), want, "{v:?}");
            if let Err(e) = got {
                assert!(e.to_string().contains(&format!("`{v}`")), "{e}");
            }
        }
    }
}
