//! `ADD archive.tar.gz /dest/`: a local tar archive extracted at the
//! destination, as docker's ADD does it.
//!
//! BuildKit decides by content, not by name: a regular file whose bytes,
//! after gzip, bzip2, xz or zstd (or none), start with a valid tar header
//! is extracted; anything else (an empty `x.tar.gz` too) is copied as a
//! file. The extraction is moby's go-archive `Untar`, whose rules this
//! module keeps:
//! - a leading `/` is dropped (the entry lands under the destination); a
//!   name or hard-link target that climbs out with `..` is an error, as
//!   docker's "invalid entry name" (the safe reader refuses it);
//! - owners are the archive's numeric uid/gid, or `--chown`'s for every
//!   entry; modes are the archive's, setuid/setgid/sticky included
//!   (`--chmod` does not apply to extracted entries, as in BuildKit);
//! - folders an entry needs but the archive does not list are not
//!   written: the runtime makes a missing one 0755 root:root as go-archive
//!   does, and one the stage has (or a link to one, which go-archive
//!   writes through) stays as it is; a later entry replaces an earlier one
//!   at the same path (a folder merges into a folder, anything else
//!   removes what was there);
//! - a hard link shares its target's content, owner and mode.
//!
//! Nothing is unpacked on disk: the decompressed contents of the archive's
//! files are appended to one spool file in the store's scratch folder and
//! the entries kept as a sorted list pointing into it, so the layer writer
//! can write them in path order whatever order the archive has. What hoist
//! does not do: entries under a link the archive made (go-archive follows
//! it inside the destination) and device nodes or FIFOs are errors naming
//! the entry; xattrs are not kept; every mtime is `SOURCE_DATE_EPOCH` (docker
//! keeps the archive's).

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::layer::reader::{EntryKind, Flow, Item, LayerReadError, LayerReader};
use crate::layer::EntryMeta;

/// The largest dictionary an xz archive may ask for (xz -9 uses 64 MiB).
const XZ_MEMORY_KIB: u32 = 512 * 1024;

/// Why an archive could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum UntarError {
    #[error("{0}")]
    Read(#[from] LayerReadError),
    #[error("reading the archive: {0}")]
    Io(#[from] io::Error),
    #[error("entry `{path}`: {why}")]
    Entry { path: String, why: String },
}

/// What one extracted entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// Content number `data` of the spool (hard links share one).
    File {
        data: usize,
    },
    Symlink(String),
}

/// One entry at its path under the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// Relative to the destination, never empty.
    pub rel: String,
    pub kind: Kind,
    pub meta: EntryMeta,
}

/// An archive's entries, sorted by path, and their contents.
pub struct Untarred {
    pub entries: Vec<Extracted>,
    /// (offset, size) of each content in the spool.
    data: Vec<(u64, u64)>,
    spool: tempfile::NamedTempFile,
}

impl Untarred {
    /// The size of content number `data`.
    pub fn size(&self, data: usize) -> u64 {
        self.data.get(data).map_or(0, |d| d.1)
    }

    /// A reader of content number `data`.
    pub fn content(&self, data: usize) -> io::Result<impl Read + '_> {
        let (offset, size) = self.data.get(data).copied().unwrap_or((0, 0));
        let mut f = self.spool.as_file();
        f.seek(SeekFrom::Start(offset))?;
        Ok(f.take(size))
    }
}

/// The decompressed stream of `r`, its compression told from its first
/// bytes as go-archive's `DecompressStream` tells it.
pub fn decompress<'a, R: Read + 'a>(r: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut buf = BufReader::with_capacity(256 * 1024, r);
    let head = buf.fill_buf()?;
    let skippable_zstd = head.len() >= 8
        && u32::from_le_bytes([head[0], head[1], head[2], head[3]]) & 0xFFFF_FFF0 == 0x184D_2A50;
    Ok(if head.starts_with(b"BZh") {
        Box::new(bzip2::bufread::MultiBzDecoder::new(buf))
    } else if head.starts_with(&[0x1f, 0x8b, 0x08]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(buf))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(lzma_rust2::XzReader::new_mem_limit(
            buf,
            true,
            XZ_MEMORY_KIB,
        ))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) || skippable_zstd {
        Box::new(zstd::stream::read::Decoder::with_buffer(buf)?)
    } else {
        Box::new(buf)
    })
}

/// Whether ADD extracts the file at `p`: a regular file (not a link)
/// whose decompressed content starts with a valid tar header, as
/// BuildKit's `isArchivePath` judges it.
pub fn is_archive(p: &Path) -> bool {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_file() => {}
        _ => return false,
    }
    let Ok(f) = std::fs::File::open(p) else {
        return false;
    };
    let Ok(r) = decompress(f) else {
        return false;
    };
    // The first header (with a long name or PAX records) fits in 1 MiB.
    let mut a = tar::Archive::new(r.take(1 << 20));
    let Ok(mut entries) = a.entries() else {
        return false;
    };
    matches!(entries.next(), Some(Ok(_)))
}

/// Extracts the archive at `archive` (a spool in `scratch`), owners from
/// the archive unless `chown` gives them.
pub fn extract(
    archive: &Path,
    scratch: &Path,
    chown: Option<(u32, u32)>,
) -> Result<Untarred, UntarError> {
    let f = std::fs::File::open(archive)?;
    let mut spool = tempfile::Builder::new()
        .prefix("untar-")
        .tempfile_in(scratch)?;
    let mut tree: BTreeMap<String, Extracted> = BTreeMap::new();
    // Folders only an entry's path names: not written, so that a folder
    // the stage has as a link stays one (go-archive writes through it).
    let mut implied: std::collections::HashSet<String> = Default::default();
    let mut data: Vec<(u64, u64)> = Vec::new();
    // Each content's owner and mode: one inode, so a hard link's header
    // sets its target's too.
    let mut metas: Vec<EntryMeta> = Vec::new();
    let mut offset = 0u64;
    let bad = |path: &str, why: String| UntarError::Entry {
        path: path.to_owned(),
        why,
    };
    {
        let mut out = io::BufWriter::new(spool.as_file_mut());
        LayerReader::new(decompress(f)?).untar().for_each(
            |item, content| -> Result<Flow, UntarError> {
                let e = match item {
                    Item::Entry(e) => e,
                    Item::NotUtf8 { path } => {
                        return Err(bad(&path, "its name is not UTF-8, which hoist cannot write into an image".into()))
                    }
                    Item::Whiteout(p) | Item::Opaque(Some(p)) => {
                        return Err(bad(p.as_str(), "a whiteout name cannot be extracted".into()))
                    }
                    Item::Opaque(None) => {
                        return Err(bad(".wh..wh..opq", "a whiteout name cannot be extracted".into()))
                    }
                };
                let rel = e.path.as_str().to_owned();
                // Every folder above must be a folder: made when missing,
                // an error when the archive made it a file or a link.
                let parts: Vec<&str> = rel.split('/').collect();
                for i in 1..parts.len() {
                    let up = parts[..i].join("/");
                    match tree.get(&up).map(|x| &x.kind) {
                        None => {
                            implied.insert(up.clone());
                            tree.insert(
                                up.clone(),
                                Extracted {
                                    rel: up,
                                    kind: Kind::Dir,
                                    meta: EntryMeta::root(0o755),
                                },
                            );
                        }
                        Some(Kind::Dir) => {}
                        Some(Kind::Symlink(_)) => {
                            return Err(bad(&rel, format!("`{up}` is a symbolic link in the archive; hoist does not extract through links (docker follows it inside the destination): put the entry under the link's target")))
                        }
                        Some(Kind::File { .. }) => {
                            return Err(bad(&rel, format!("`{up}` is a file in the archive, not a folder")))
                        }
                    }
                }
                let mut meta = e.meta;
                meta.mode &= 0o7777;
                if let Some((uid, gid)) = chown {
                    meta.uid = uid.into();
                    meta.gid = gid.into();
                }
                let kind = match e.kind {
                    EntryKind::Dir => Kind::Dir,
                    EntryKind::Symlink { target } => Kind::Symlink(target),
                    EntryKind::File { size } => {
                        let n = io::copy(&mut content.take(size), &mut out)?;
                        if n != size {
                            return Err(bad(&rel, format!("the archive ends {} bytes into this {size}-byte file", n)));
                        }
                        data.push((offset, size));
                        metas.push(meta);
                        offset += size;
                        Kind::File {
                            data: data.len() - 1,
                        }
                    }
                    EntryKind::Hardlink { target } => {
                        let t = target.as_str();
                        match tree.get(t).map(|x| &x.kind) {
                            Some(Kind::File { data }) => {
                                if let Some(m) = metas.get_mut(*data) {
                                    *m = meta;
                                }
                                Kind::File { data: *data }
                            }
                            Some(k @ Kind::Symlink(_)) => k.clone(),
                            _ => {
                                return Err(bad(&rel, format!("a hard link to `{t}`, which is not a file the archive wrote before it")))
                            }
                        }
                    }
                    EntryKind::Other => {
                        return Err(bad(&rel, "a device node or FIFO: hoist writes no special files; leave it out of the archive (rootless BuildKit skips it too)".into()))
                    }
                };
                // Replacing: a folder merges into a folder; anything else
                // removes what was at the path, and under it.
                let merge = kind == Kind::Dir
                    && matches!(tree.get(&rel).map(|x| &x.kind), Some(Kind::Dir));
                if !merge {
                    let under = format!("{rel}/");
                    let gone: Vec<String> = tree
                        .range(under.clone()..)
                        .take_while(|(k, _)| k.starts_with(&under))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in gone {
                        tree.remove(&k);
                    }
                }
                implied.remove(&rel);
                tree.insert(rel.clone(), Extracted { rel, kind, meta });
                Ok(Flow::Continue)
            },
        )?;
        out.flush()?;
    }
    let mut entries: Vec<Extracted> = tree
        .into_values()
        .filter(|x| !implied.contains(&x.rel))
        .collect();
    for x in &mut entries {
        if let Kind::File { data } = x.kind {
            if let Some(m) = metas.get(data) {
                x.meta = *m;
            }
        }
    }
    Ok(Untarred {
        entries,
        data,
        spool,
    })
}

#[cfg(test)]
mod tests;
