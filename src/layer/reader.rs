//! The safe streaming reader of untrusted layer tars.
//!
//! Base layers come from registries and archives hoist does not control, so
//! their tar streams are read as hostile input. This reader never unpacks
//! anything: it walks the entries with the `tar` crate and turns each one
//! into an [`Item`] whose paths are already checked ([`ImagePath`]), so
//! whatever consumes a layer (facts, inspect, an exporter) works on values
//! that cannot name a place outside the image.
//!
//! What it checks, and why:
//! - Every entry path and hard-link target is read as containerd reads it
//!   ([`clean_entry_path`]): a leading `/` or `./` is dropped, `..` is
//!   resolved lexically and stops at the root (`a/../../b` is `b`), and an
//!   entry that names the root itself (`./`) is skipped. So an absolute or
//!   climbing name lands where containerd (Docker, Kubernetes) and podman
//!   (whose containers/storage unpacks inside a chroot, so `..` stops at
//!   its root too) put it, and never outside the image.
//! - Symlink targets are *not* judged here: a symlink may point anywhere,
//!   including out of the image, because only resolving it can be unsafe.
//!   Consumers resolve targets inside the image (see `facts`).
//! - OCI whiteouts are decoded once, here (image-spec `layer.md`,
//!   "Whiteouts"): `D/.wh..wh..opq` makes `D` opaque, `D/.wh.NAME` removes
//!   `D/NAME` from the layers below. Other `.wh..wh.` names are aufs
//!   metadata (hard-link directories) and are skipped, as the spec asks.
//! - Size is bounded twice: the whole uncompressed stream (a small gzip can
//!   expand to terabytes), and the extension records (GNU long names, PAX
//!   headers) that the `tar` crate reads whole into memory before it hands
//!   out the entry they describe. Without the second bound one entry with a
//!   gigabyte-long name would exhaust memory however small the layer is.
//!
//! Content of regular files is handed to the caller as a `Read` that ends
//! at the entry's end; the caller decides how much of it to read (and
//! should bound it with `Read::take`). Whatever the caller leaves unread
//! is skipped before the next header is parsed.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use super::path::{clean_entry_path, EntryPath, ImagePath, PathError};
use super::writer::EntryMeta;

/// The largest uncompressed layer stream the reader accepts: 64 GiB.
pub const MAX_LAYER_BYTES: u64 = 64 << 30;

/// The most bytes the `tar` crate may consume to produce one entry: its
/// header blocks plus GNU long name/link and PAX records (which it buffers
/// whole). Real ones are a few KiB (PATH_MAX is 4096); 1 MiB leaves room
/// for PAX xattrs.
pub const MAX_HEADER_BYTES: u64 = 1 << 20;

/// The opaque-directory marker (image-spec, "Opaque Whiteout").
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Prefix of whiteout files.
const WHITEOUT_PREFIX: &str = ".wh.";
/// Prefix of names reserved for aufs metadata; never content.
const AUFS_META_PREFIX: &str = ".wh..wh.";

/// Why a layer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LayerReadError {
    #[error("reading the layer's tar stream: {0}")]
    Io(#[source] io::Error),
    #[error("layer entry `{path}` is unsafe: {why}")]
    UnsafePath { path: String, why: &'static str },
    #[error("layer entry `{path}` is a hard link to `{target}`, which is unsafe: {why}")]
    UnsafeLink {
        path: String,
        target: String,
        why: &'static str,
    },
    #[error("layer entry `{path}` is a whiteout that names no file (`.wh.` must be followed by a plain name)")]
    BadWhiteout { path: String },
    #[error("layer entry `{path}` has a bad tar header: {source}")]
    BadHeader {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("layer entry `{path}` has tar type `{}` (byte {typeflag}), which no container runtime unpacks", char::from(*.typeflag).escape_default())]
    UnknownType { path: String, typeflag: u8 },
    #[error("the layer is larger than {limit} bytes uncompressed; refusing to read further")]
    TooBig { limit: u64 },
    #[error("a layer entry's headers (long name, long link, PAX records) take more than {limit} bytes; refusing to buffer them")]
    HeaderTooBig { limit: u64 },
}

impl From<io::Error> for LayerReadError {
    /// Unwraps a `LayerReadError` that travelled through an `io::Error`
    /// (the size guards can only fail through `Read`); anything else is a
    /// plain I/O or format error of the stream.
    fn from(e: io::Error) -> Self {
        let is_ours = e
            .get_ref()
            .is_some_and(|inner| inner.is::<LayerReadError>());
        if is_ours {
            if let Some(inner) = e.into_inner() {
                if let Ok(ours) = inner.downcast::<LayerReadError>() {
                    return *ours;
                }
            }
            // Unreachable in practice: `is` said it was ours.
            return LayerReadError::Io(io::Error::other("layer size guard tripped"));
        }
        LayerReadError::Io(e)
    }
}

/// What one tar entry means for the image's filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A file, folder, link or special file.
    Entry(Entry),
    /// `.wh.NAME` in folder D: `D/NAME` is removed from the layers below.
    Whiteout(ImagePath),
    /// `.wh..wh..opq` in folder D: D's contents in the layers below are
    /// hidden (this layer's own entries in D stay visible). `None` is the
    /// layer's root folder.
    Opaque(Option<ImagePath>),
    /// An entry whose path (or hard-link target) is not UTF-8. hoist
    /// cannot name it, so it is reported rather than dropped silently; it
    /// has already been checked for `..`. The path is shown lossily.
    NotUtf8 { path: String },
}

/// A filesystem entry of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: ImagePath,
    pub kind: EntryKind,
    pub meta: EntryMeta,
}

/// The kind of a filesystem entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    /// A regular file of `size` bytes (its content is the `Read` handed
    /// alongside the item).
    File {
        size: u64,
    },
    /// A symbolic link. The target is kept as written (absolute or
    /// relative, possibly climbing with `..`): resolve it inside the image.
    /// A target that is not UTF-8 is kept lossily; it cannot name any path
    /// hoist looks for.
    Symlink {
        target: String,
    },
    /// A hard link to an entry earlier in the same layer.
    Hardlink {
        target: ImagePath,
    },
    /// A device node or FIFO.
    Other,
}

/// What the visitor wants after an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Reads the items of one uncompressed layer tar stream.
pub struct LayerReader<R: Read> {
    archive: tar::Archive<Guarded<R>>,
    guard: Arc<Guard>,
    /// Read as docker's ADD extracts an archive, not as a layer.
    untar: bool,
}

impl<R: Read> LayerReader<R> {
    /// A reader with the default size bound ([`MAX_LAYER_BYTES`]). `r` is
    /// the uncompressed stream, e.g. from `layer::compress::decompress`.
    pub fn new(r: R) -> Self {
        Self::with_limit(r, MAX_LAYER_BYTES)
    }

    /// A reader that fails once more than `max_bytes` uncompressed bytes
    /// have been read.
    pub fn with_limit(r: R, max_bytes: u64) -> Self {
        let guard = Arc::new(Guard {
            total: AtomicU64::new(0),
            limit: max_bytes,
            header_left: AtomicU64::new(u64::MAX),
            tripped: AtomicU8::new(0),
        });
        LayerReader {
            archive: tar::Archive::new(Guarded {
                inner: r,
                guard: guard.clone(),
            }),
            guard,
            untar: false,
        }
    }

    /// Reads the stream as docker's `ADD` extracts a local archive
    /// (moby's go-archive `Untar`) rather than as a layer: a name or
    /// hard-link target that climbs out with `..` is an error (go-archive's
    /// "invalid entry name"), not clamped at the root, and a `.wh.` name is
    /// an error, since go-archive would write it as a plain file that no
    /// layer can hold (every reader takes it for a whiteout).
    pub fn untar(mut self) -> Self {
        self.untar = true;
        self
    }

    /// Calls `visit` with each item in stream order, and for regular files
    /// a reader of the content (an empty reader for every other item).
    /// Stops at the end of the archive, at the first error, or when
    /// `visit` returns [`Flow::Stop`].
    pub fn for_each<E, F>(mut self, mut visit: F) -> Result<(), E>
    where
        E: From<LayerReadError>,
        F: FnMut(Item, &mut dyn Read) -> Result<Flow, E>,
    {
        let guard = self.guard.clone();
        let mut entries = self
            .archive
            .entries()
            .map_err(|e| E::from(LayerReadError::from(e)))?;
        loop {
            // Only header blocks and extension records are read inside
            // `next()`: the previous entry's content was drained below.
            guard.header_left.store(MAX_HEADER_BYTES, Ordering::Relaxed);
            let next = entries.next();
            guard.header_left.store(u64::MAX, Ordering::Relaxed);
            let mut entry = match next {
                None => return Ok(()),
                Some(Err(e)) => return Err(LayerReadError::from(e).into()),
                Some(Ok(entry)) => entry,
            };
            if let Some(item) = classify(&entry, self.untar)? {
                let flow = if let Item::Entry(Entry {
                    kind: EntryKind::File { size },
                    ..
                }) = &item
                {
                    let mut content = Exact {
                        remaining: *size,
                        inner: &mut entry,
                    };
                    visit(item, &mut content)?
                } else {
                    visit(item, &mut io::empty())?
                };
                if flow == Flow::Stop {
                    return Ok(());
                }
            }
            io::copy(&mut entry, &mut io::sink()).map_err(LayerReadError::from)?;
        }
    }
}

/// Turns one tar entry into an item; `None` for entries that are not part
/// of the filesystem (the root, PAX global headers, aufs metadata).
fn classify<R: Read>(
    entry: &tar::Entry<'_, R>,
    untar: bool,
) -> Result<Option<Item>, LayerReadError> {
    let header = entry.header();
    let kind = header.entry_type();
    if kind.is_pax_global_extensions() {
        return Ok(None);
    }
    let raw = entry.path_bytes();
    let shown = || String::from_utf8_lossy(&raw).into_owned();
    let unsafe_path = |e: PathError| LayerReadError::UnsafePath {
        path: shown(),
        why: e.why,
    };
    if untar {
        if climbs(&raw) {
            return Err(LayerReadError::UnsafePath {
                path: shown(),
                why: "it climbs out of the destination with `..` (docker refuses it too)",
            });
        }
        if raw
            .split(|b| *b == b'/')
            .any(|c| c.starts_with(WHITEOUT_PREFIX.as_bytes()))
        {
            return Err(LayerReadError::UnsafePath {
                path: shown(),
                why: "a `.wh.` name is a whiteout in a layer, so hoist cannot write it as a file; rename it in the archive",
            });
        }
        if kind.is_hard_link() {
            if let Some(t) = entry.link_name_bytes() {
                if climbs(&t) || clean_entry_path(&t).is_ok_and(|p| p == EntryPath::Root) {
                    return Err(LayerReadError::UnsafeLink {
                        path: shown(),
                        target: String::from_utf8_lossy(&t).into_owned(),
                        why: "it points out of the destination (docker refuses it too)",
                    });
                }
            }
        }
    }
    let path = match clean_entry_path(&raw).map_err(unsafe_path)? {
        // containerd skips an entry that resolves to the root, whatever
        // its type ("file ignored: resolved to root").
        EntryPath::Root => return Ok(None),
        EntryPath::NotUtf8(path) => return Ok(Some(Item::NotUtf8 { path })),
        EntryPath::Path(p) => p,
    };
    let parent = path.parent();
    let name = path.file_name();
    if name == OPAQUE_MARKER {
        return Ok(Some(Item::Opaque(parent)));
    }
    if path
        .as_str()
        .split('/')
        .any(|c| c.starts_with(AUFS_META_PREFIX))
    {
        return Ok(None);
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
        if matches!(hidden, "" | "." | "..") {
            return Err(LayerReadError::BadWhiteout { path: shown() });
        }
        let target = match &parent {
            Some(p) => p.join(hidden),
            None => ImagePath::new(hidden),
        }
        .map_err(|_| LayerReadError::BadWhiteout { path: shown() })?;
        return Ok(Some(Item::Whiteout(target)));
    }
    let text = shown();
    let text = text.as_str();

    let bad_header = |source| LayerReadError::BadHeader {
        path: text.to_owned(),
        source,
    };
    let typeflag = header.entry_type().as_byte();
    let kind = if kind.is_dir() || (typeflag == 0 && raw.ends_with(b"/")) {
        // A pre-POSIX tar marks folders with a trailing `/` only.
        EntryKind::Dir
    } else if kind.is_file() || kind.is_contiguous() {
        EntryKind::File { size: entry.size() }
    } else if kind.is_gnu_sparse() {
        EntryKind::File {
            size: header.size().map_err(bad_header)?,
        }
    } else if kind.is_symlink() {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| bad_header(io::Error::other("symbolic link without a target")))?;
        EntryKind::Symlink {
            target: String::from_utf8_lossy(&target).into_owned(),
        }
    } else if kind.is_hard_link() {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| bad_header(io::Error::other("hard link without a target")))?;
        let unsafe_link = |why| LayerReadError::UnsafeLink {
            path: text.to_owned(),
            target: String::from_utf8_lossy(&target).into_owned(),
            why,
        };
        let target = match clean_entry_path(&target).map_err(|e| unsafe_link(e.why))? {
            EntryPath::Path(p) => p,
            EntryPath::Root => return Err(unsafe_link("it names the image's root")),
            EntryPath::NotUtf8(_) => {
                return Ok(Some(Item::NotUtf8 {
                    path: text.to_owned(),
                }))
            }
        };
        EntryKind::Hardlink { target }
    } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
        EntryKind::Other
    } else {
        return Err(LayerReadError::UnknownType {
            path: text.to_owned(),
            typeflag,
        });
    };
    let meta = EntryMeta {
        mode: header.mode().map_err(bad_header)?,
        uid: header.uid().map_err(bad_header)?,
        gid: header.gid().map_err(bad_header)?,
    };
    Ok(Some(Item::Entry(Entry { path, kind, meta })))
}

/// Whether a tar name leaves the folder it is extracted in, as go-archive
/// judges it: `path.Clean` of the name without its leading `/`s is `..` or
/// starts with `../`.
fn climbs(raw: &[u8]) -> bool {
    let mut depth = 0usize;
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            _ => depth += 1,
        }
    }
    false
}

/// A file's content that fails instead of ending early: a truncated
/// stream must never pass for a shorter file.
struct Exact<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the layer ends {} bytes before this file does",
                    self.remaining
                ),
            ));
        }
        self.remaining = self.remaining.saturating_sub(n as u64);
        Ok(n)
    }
}

/// Shared between the reader and the stream it wraps: the two size bounds.
/// Atomics rather than `Cell`s so a `LayerReader` can move across threads.
struct Guard {
    total: AtomicU64,
    limit: u64,
    /// Bytes the `tar` crate may still read for the entry being parsed;
    /// `u64::MAX` while content is read.
    header_left: AtomicU64,
    /// 0 = fine, 1 = the stream was too big, 2 = the headers were.
    tripped: AtomicU8,
}

/// The uncompressed stream, counted.
struct Guarded<R> {
    inner: R,
    guard: Arc<Guard>,
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let g = &self.guard;
        match g.tripped.load(Ordering::Relaxed) {
            1 => return Err(io::Error::other(LayerReadError::TooBig { limit: g.limit })),
            2 => {
                return Err(io::Error::other(LayerReadError::HeaderTooBig {
                    limit: MAX_HEADER_BYTES,
                }))
            }
            _ => {}
        }
        let n = self.inner.read(buf)?;
        let total = g.total.load(Ordering::Relaxed).saturating_add(n as u64);
        g.total.store(total, Ordering::Relaxed);
        if total > g.limit {
            g.tripped.store(1, Ordering::Relaxed);
            return Err(io::Error::other(LayerReadError::TooBig { limit: g.limit }));
        }
        let left = g.header_left.load(Ordering::Relaxed);
        if left != u64::MAX {
            if n as u64 > left {
                g.tripped.store(2, Ordering::Relaxed);
                return Err(io::Error::other(LayerReadError::HeaderTooBig {
                    limit: MAX_HEADER_BYTES,
                }));
            }
            g.header_left.store(left - n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds raw tars for tests, including entries no well-behaved writer
    /// produces (`..`, absolute names, out-of-order whiteouts).
    pub(crate) struct RawTar {
        b: tar::Builder<Vec<u8>>,
    }

    impl RawTar {
        pub(crate) fn new() -> Self {
            RawTar {
                b: tar::Builder::new(Vec::new()),
            }
        }

        fn header(name: &str, kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(size);
            h.set_mode(mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            let slot = &mut h.as_old_mut().name;
            assert!(name.len() < slot.len(), "test name too long for raw header");
            slot[..name.len()].copy_from_slice(name.as_bytes());
            h
        }

        pub(crate) fn file(&mut self, name: &str, content: &[u8]) -> &mut Self {
            self.file_meta(name, content, 0o644, 0, 0)
        }

        pub(crate) fn file_meta(
            &mut self,
            name: &str,
            content: &[u8],
            mode: u32,
            uid: u64,
            gid: u64,
        ) -> &mut Self {
            let mut h = Self::header(name, tar::EntryType::Regular, content.len() as u64, mode);
            h.set_uid(uid);
            h.set_gid(gid);
            h.set_cksum();
            self.b.append(&h, content).unwrap();
            self
        }

        pub(crate) fn dir(&mut self, name: &str) -> &mut Self {
            let mut h = Self::header(name, tar::EntryType::Directory, 0, 0o755);
            h.set_cksum();
            self.b.append(&h, io::empty()).unwrap();
            self
        }

        fn link(&mut self, kind: tar::EntryType, name: &str, target: &str) -> &mut Self {
            let mut h = Self::header(name, kind, 0, 0o777);
            let slot = &mut h.as_old_mut().linkname;
            slot[..target.len()].copy_from_slice(target.as_bytes());
            h.set_cksum();
            self.b.append(&h, io::empty()).unwrap();
            self
        }

        pub(crate) fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
            self.link(tar::EntryType::Symlink, name, target)
        }

        pub(crate) fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
            self.link(tar::EntryType::Link, name, target)
        }

        pub(crate) fn fifo(&mut self, name: &str) -> &mut Self {
            let mut h = Self::header(name, tar::EntryType::Fifo, 0, 0o644);
            h.set_cksum();
            self.b.append(&h, io::empty()).unwrap();
            self
        }

        /// A PAX `x` record followed by the entry it describes.
        pub(crate) fn pax(&mut self, records: &[(&str, &str)]) -> &mut Self {
            let mut data = Vec::new();
            for (k, v) in records {
                let body = format!(" {k}={v}\n");
                // The length prefix counts itself.
                let mut len = body.len() + 1;
                while format!("{len}{body}").len() != len {
                    len += 1;
                }
                data.extend_from_slice(format!("{len}{body}").as_bytes());
            }
            let mut h = Self::header(
                "PaxHeaders/x",
                tar::EntryType::XHeader,
                data.len() as u64,
                0o644,
            );
            h.set_cksum();
            self.b.append(&h, &data[..]).unwrap();
            self
        }

        /// A GNU long-name record claiming `size` bytes (all zeros).
        pub(crate) fn gnu_long_name(&mut self, size: u64) -> &mut Self {
            let mut h = Self::header("././@LongLink", tar::EntryType::GNULongName, size, 0o644);
            h.set_cksum();
            self.b.append(&h, io::repeat(b'a').take(size)).unwrap();
            self
        }

        pub(crate) fn finish(&mut self) -> Vec<u8> {
            let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
            b.into_inner().unwrap()
        }
    }

    /// Gzips a hand-made tar into the store, as a base layer would come.
    pub(crate) fn put_gzip(store: &crate::store::Store, tar: &[u8]) -> crate::image::Descriptor {
        use crate::layer::Compression;
        use std::io::Write;
        let mut enc = Compression::Gzip.encoder(Vec::new()).unwrap();
        enc.write_all(tar).unwrap();
        let gz = enc.finish().unwrap();
        let (digest, size) = store.put_bytes(&gz).unwrap();
        crate::image::Descriptor::new(Compression::Gzip.media_type(), digest, size)
    }

    fn p(s: &str) -> ImagePath {
        ImagePath::new(s).unwrap()
    }

    /// Reads every item, with file contents.
    fn read_all(tar: &[u8]) -> Result<Vec<(Item, Vec<u8>)>, LayerReadError> {
        let mut out = Vec::new();
        LayerReader::new(tar).for_each(|item, content| {
            let mut buf = Vec::new();
            content.read_to_end(&mut buf)?;
            out.push((item, buf));
            Ok::<_, LayerReadError>(Flow::Continue)
        })?;
        Ok(out)
    }

    fn entry(path: &str, kind: EntryKind, mode: u32) -> Item {
        Item::Entry(Entry {
            path: p(path),
            kind,
            meta: EntryMeta::root(mode),
        })
    }

    #[test]
    fn items_table() {
        let tar = RawTar::new()
            .dir("./")
            .dir("./etc/")
            .file("./etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
            .file("/abs/file", b"x")
            .symlink("etc/os-release", "../usr/lib/os-release")
            .symlink("escape", "/../../../etc/shadow")
            .hardlink("etc/passwd-", "./etc/passwd")
            .fifo("run/fifo")
            .file("etc/.wh.shadow", b"")
            .file("etc/.wh..wh..opq", b"")
            .file(".wh..wh..opq", b"")
            .file(".wh.top", b"")
            .dir(".wh..wh.plnk/")
            .file(".wh..wh.plnk/123.4", b"x")
            .finish();
        let got = read_all(&tar).unwrap();
        let want: Vec<(Item, Vec<u8>)> = vec![
            (entry("etc", EntryKind::Dir, 0o755), vec![]),
            (
                entry("etc/passwd", EntryKind::File { size: 26 }, 0o644),
                b"root:x:0:0::/root:/bin/sh\n".to_vec(),
            ),
            (
                entry("abs/file", EntryKind::File { size: 1 }, 0o644),
                b"x".to_vec(),
            ),
            (
                entry(
                    "etc/os-release",
                    EntryKind::Symlink {
                        target: "../usr/lib/os-release".into(),
                    },
                    0o777,
                ),
                vec![],
            ),
            (
                entry(
                    "escape",
                    EntryKind::Symlink {
                        target: "/../../../etc/shadow".into(),
                    },
                    0o777,
                ),
                vec![],
            ),
            (
                entry(
                    "etc/passwd-",
                    EntryKind::Hardlink {
                        target: p("etc/passwd"),
                    },
                    0o777,
                ),
                vec![],
            ),
            (entry("run/fifo", EntryKind::Other, 0o644), vec![]),
            (Item::Whiteout(p("etc/shadow")), vec![]),
            (Item::Opaque(Some(p("etc"))), vec![]),
            (Item::Opaque(None), vec![]),
            (Item::Whiteout(p("top")), vec![]),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn errors_table() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                RawTar::new().hardlink("a", "x/../..").finish(),
                "hard link to `x/../..`, which is unsafe: it names the image's root",
            ),
            (RawTar::new().file("etc/.wh.", b"").finish(), "etc/.wh."),
            (RawTar::new().file("etc/.wh..", b"").finish(), "etc/.wh.."),
            (
                RawTar::new().file("x/../etc/.wh..", b"").finish(),
                "x/../etc/.wh..",
            ),
        ];
        for (tar, needle) in cases {
            let err = read_all(&tar).unwrap_err();
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
    }

    /// Names that climb or start at `/` are read as containerd reads them
    /// (see `path::clean_entry_path`), whiteouts and hard-link targets
    /// included; symlink targets stay as written.
    #[test]
    fn climbing_names_land_where_containerd_puts_them() {
        let tar = RawTar::new()
            .file("/abs/file", b"a")
            .file("../../up/file", b"u")
            .file("a/../../b", b"b")
            .hardlink("link", "/abs/file")
            .hardlink("up/link", "../../../up/file")
            .symlink("../sym", "../../outside")
            .file("../x/../.wh.gone", b"")
            .file("../../etc/.wh..wh..opq", b"")
            .file("./", b"skipped: resolves to the root")
            .dir("..")
            .finish();
        let got: Vec<Item> = read_all(&tar)
            .unwrap()
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        let link = |to: &str| EntryKind::Hardlink { target: p(to) };
        let want = vec![
            entry("abs/file", EntryKind::File { size: 1 }, 0o644),
            entry("up/file", EntryKind::File { size: 1 }, 0o644),
            entry("b", EntryKind::File { size: 1 }, 0o644),
            entry("link", link("abs/file"), 0o777),
            entry("up/link", link("up/file"), 0o777),
            entry(
                "sym",
                EntryKind::Symlink {
                    target: "../../outside".into(),
                },
                0o777,
            ),
            Item::Whiteout(p("gone")),
            Item::Opaque(Some(p("etc"))),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn unknown_type_is_named() {
        let mut h = tar::Header::new_gnu();
        h.set_path("weird").unwrap();
        h.set_entry_type(tar::EntryType::new(b'Z'));
        h.set_size(0);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, io::empty()).unwrap();
        let err = read_all(&b.into_inner().unwrap()).unwrap_err();
        assert!(
            matches!(&err, LayerReadError::UnknownType { path, typeflag: b'Z' } if path == "weird"),
            "{err}"
        );
    }

    #[test]
    fn long_names_gnu_and_pax() {
        let long = format!("usr/{}/file", "d".repeat(200));
        let target = format!("/{}", "t".repeat(150));
        // GNU LongName/LongLink, as the tar crate's builder writes them.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o600);
        h.set_size(2);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, &long, &b"hi"[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        b.append_link(&mut h, format!("{long}2"), &target).unwrap();
        let gnu = b.into_inner().unwrap();
        // PAX path/linkpath records.
        let pax = RawTar::new()
            .pax(&[("path", &long), ("uid", "1234")])
            .file("short", b"hi")
            .pax(&[("path", &format!("{long}2")), ("linkpath", &target)])
            .symlink("short2", "x")
            .finish();
        for tar in [gnu, pax] {
            let got = read_all(&tar).unwrap();
            assert_eq!(got.len(), 2);
            let Item::Entry(e) = &got[0].0 else {
                panic!("{:?}", got[0])
            };
            assert_eq!(e.path.as_str(), long);
            assert_eq!(got[0].1, b"hi");
            let Item::Entry(e) = &got[1].0 else {
                panic!("{:?}", got[1])
            };
            assert_eq!(e.path.as_str(), format!("{long}2"));
            assert_eq!(
                e.kind,
                EntryKind::Symlink {
                    target: target.clone()
                }
            );
        }
    }

    #[test]
    fn pax_uid_is_applied() {
        let tar = RawTar::new()
            .pax(&[("uid", "70000"), ("gid", "70001")])
            .file("f", b"")
            .finish();
        let got = read_all(&tar).unwrap();
        let Item::Entry(e) = &got[0].0 else { panic!() };
        assert_eq!((e.meta.uid, e.meta.gid), (70000, 70001));
    }

    #[test]
    fn unread_content_is_skipped_and_stop_stops() {
        let tar = RawTar::new()
            .file("a", &[b'a'; 5000])
            .file("b", b"bb")
            .file("c", b"cc")
            .finish();
        let mut seen = Vec::new();
        LayerReader::new(&tar[..])
            .for_each(|item, content| {
                let Item::Entry(e) = item else { panic!() };
                let mut first = [0u8; 1];
                content.read_exact(&mut first)?;
                seen.push((e.path.as_str().to_owned(), first[0]));
                Ok::<_, LayerReadError>(if e.path.as_str() == "b" {
                    Flow::Stop
                } else {
                    Flow::Continue
                })
            })
            .unwrap();
        assert_eq!(seen, [("a".to_owned(), b'a'), ("b".to_owned(), b'b')]);
    }

    #[test]
    fn size_bounds() {
        let tar = RawTar::new().file("a", &[0; 4096]).finish();
        let err = LayerReader::with_limit(&tar[..], 2048)
            .for_each(|_, c| {
                io::copy(c, &mut io::sink())?;
                Ok::<_, LayerReadError>(Flow::Continue)
            })
            .unwrap_err();
        assert!(
            matches!(err, LayerReadError::TooBig { limit: 2048 }),
            "{err}"
        );
        // Also when the visitor does not read the content itself.
        let err = LayerReader::with_limit(&tar[..], 2048)
            .for_each(|_, _| Ok::<_, LayerReadError>(Flow::Continue))
            .unwrap_err();
        assert!(matches!(err, LayerReadError::TooBig { .. }), "{err}");

        let tar = RawTar::new()
            .gnu_long_name(MAX_HEADER_BYTES + 1)
            .file("x", b"")
            .finish();
        let err = read_all(&tar).unwrap_err();
        assert!(matches!(err, LayerReadError::HeaderTooBig { .. }), "{err}");
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        let tar = RawTar::new().file("a", &[1; 3000]).finish();
        assert!(read_all(&tar[..1000]).is_err());
        let mut bad = tar.clone();
        bad[10] ^= 0xff; // breaks the header checksum
        assert!(matches!(read_all(&bad), Err(LayerReadError::Io(_))));
        assert!(read_all(&[]).unwrap().is_empty());
    }

    #[test]
    fn non_utf8_path_is_reported() {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..3].copy_from_slice(b"a\xffb");
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(0);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, io::empty()).unwrap();
        let got = read_all(&b.into_inner().unwrap()).unwrap();
        assert_eq!(
            got[0].0,
            Item::NotUtf8 {
                path: "a\u{fffd}b".into()
            }
        );
    }
}
