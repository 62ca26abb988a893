//! Reading a wheel's zip archive out of the store, without trusting it.
//!
//! A zip is read through its central directory, which allows jumping to
//! any file, so the layer writer can take files in its own order. What
//! the zip crate does not check is checked here:
//! - The central directory may name a file twice; the zip crate keeps
//!   one of them silently. [`open`] walks the directory itself and
//!   refuses the wheel when the counts differ.
//! - Only regular files and folders are accepted: a symlink, device,
//!   FIFO or socket entry is refused (wheels hold none; pip would write a
//!   symlink's target as a file). Of a file's mode only "executable" is
//!   kept, as pip keeps it: a regular file with any `x` bit becomes 0755,
//!   anything else 0644, so setuid and setgid bits never get through.
//! - A zip entry states its size, but nothing stops its data inflating to
//!   more. Every read here stops at the stated size and then checks that
//!   the data ends there (which also makes the zip crate check the CRC),
//!   and [`Verified`] hashes what passes so RECORD can be checked.

use std::collections::HashSet;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

use fs_err as fs;
use zip::{CompressionMethod, ZipArchive};

use super::record::{Hasher, RecordHash};
use super::WheelError;
use crate::digest::Digest;
use crate::store::Store;

/// An open wheel.
pub type Zip = ZipArchive<BufReader<fs::File>>;

/// The most bytes a metadata file (`WHEEL`, `RECORD`,
/// `entry_points.txt`) may have: RECORD of the largest wheels on PyPI is
/// a few MB.
pub const MAX_METADATA_BYTES: u64 = 64 << 20;

/// Central directory file header signature.
const CENTRAL_HEADER: [u8; 4] = *b"PK\x01\x02";

/// What a zip entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File { executable: bool },
}

/// One entry of the archive's central directory.
#[derive(Debug, Clone)]
pub struct Entry {
    pub index: usize,
    pub name: String,
    /// The uncompressed size the archive states.
    pub size: u64,
    pub kind: Kind,
}

/// Opens the wheel stored as `blob`. With `check_names`, also refuses an
/// archive whose central directory names a file twice.
pub fn open(
    store: &Store,
    wheel: &str,
    blob: &Digest,
    check_names: bool,
) -> Result<Zip, WheelError> {
    let open = || {
        store.open_blob(blob).map_err(|source| WheelError::Store {
            wheel: wheel.to_owned(),
            source,
        })
    };
    let zip = ZipArchive::new(BufReader::new(open()?)).map_err(|source| WheelError::Zip {
        wheel: wheel.to_owned(),
        source,
    })?;
    if check_names {
        let mut file = BufReader::new(open()?);
        let read_err = |source| WheelError::Read {
            wheel: wheel.to_owned(),
            file: "the zip's central directory".to_owned(),
            source,
        };
        let names = central_names(&mut file, zip.central_directory_start()).map_err(read_err)?;
        let mut seen = HashSet::new();
        for name in &names {
            if !seen.insert(name.as_slice()) {
                return Err(WheelError::DuplicateEntry {
                    wheel: wheel.to_owned(),
                    file: String::from_utf8_lossy(name).into_owned(),
                });
            }
        }
        if names.len() != zip.len() {
            // Two names that decode to the same text.
            return Err(WheelError::DuplicateEntry {
                wheel: wheel.to_owned(),
                file: format!(
                    "one of its {} entries (the directory lists {}, {} distinct)",
                    names.len(),
                    names.len(),
                    zip.len()
                ),
            });
        }
    }
    Ok(zip)
}

/// The raw names of the central directory's entries, read from `start`
/// until the next record is not a central file header.
fn central_names(file: &mut (impl Read + Seek), start: u64) -> io::Result<Vec<Vec<u8>>> {
    file.seek(SeekFrom::Start(start))?;
    let mut names = Vec::new();
    loop {
        let mut fixed = [0u8; 46];
        match file.read_exact(&mut fixed[..4]) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        if fixed[..4] != CENTRAL_HEADER {
            break;
        }
        file.read_exact(&mut fixed[4..])?;
        let u16_at = |i: usize| u64::from(u16::from_le_bytes([fixed[i], fixed[i + 1]]));
        let (name_len, extra_len, comment_len) = (u16_at(28), u16_at(30), u16_at(32));
        let mut name = Vec::new();
        file.by_ref().take(name_len).read_to_end(&mut name)?;
        if name.len() as u64 != name_len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        names.push(name);
        let skip = i64::try_from(extra_len + comment_len).unwrap_or(i64::MAX);
        file.seek(SeekFrom::Current(skip))?;
    }
    Ok(names)
}

/// Lists the archive's entries, refusing encrypted ones and anything but
/// regular files and folders.
pub fn list(zip: &mut Zip, wheel: &str) -> Result<Vec<Entry>, WheelError> {
    const TYPE: u32 = 0o170000;
    const REGULAR: u32 = 0o100000;
    const DIR: u32 = 0o040000;
    let mut out = Vec::with_capacity(zip.len());
    for index in 0..zip.len() {
        let name = zip.name_for_index(index).unwrap_or_default().to_owned();
        let file = zip
            .by_index_raw(index)
            .map_err(|source| WheelError::Entry {
                wheel: wheel.to_owned(),
                file: name.clone(),
                source,
            })?;
        let refuse = |what: &'static str| WheelError::NotAFile {
            wheel: wheel.to_owned(),
            file: name.clone(),
            what,
        };
        if file.encrypted() {
            return Err(refuse("encrypted"));
        }
        if !matches!(
            file.compression(),
            CompressionMethod::Stored | CompressionMethod::Deflated
        ) {
            return Err(refuse("compressed with a method other than deflate"));
        }
        let mode = file.unix_mode().unwrap_or(0);
        let kind = if name.ends_with('/') {
            if !matches!(mode & TYPE, 0 | DIR) {
                return Err(refuse("a folder name on a non-folder entry"));
            }
            Kind::Dir
        } else {
            match mode & TYPE {
                // Zips written without a file type state permissions only;
                // pip then never makes the file executable.
                0 => Kind::File { executable: false },
                REGULAR => Kind::File {
                    executable: mode & 0o111 != 0,
                },
                0o120000 => return Err(refuse("a symbolic link")),
                DIR => return Err(refuse("a folder without a trailing `/`")),
                _ => return Err(refuse("a device, FIFO or socket")),
            }
        };
        out.push(Entry {
            index,
            size: file.size(),
            name,
            kind,
        });
    }
    Ok(out)
}

/// Reads a whole metadata file (at most [`MAX_METADATA_BYTES`]).
pub fn read_small(zip: &mut Zip, wheel: &str, entry: &Entry) -> Result<Vec<u8>, WheelError> {
    if entry.size > MAX_METADATA_BYTES {
        return Err(WheelError::TooLarge {
            wheel: wheel.to_owned(),
            file: entry.name.clone(),
            limit: MAX_METADATA_BYTES,
        });
    }
    let mut reader = open_entry(zip, wheel, entry, None)?;
    let mut bytes = Vec::new();
    if let Err(source) = reader.by_ref().take(entry.size).read_to_end(&mut bytes) {
        return Err(reader.read_error(source));
    }
    reader.finish(entry.size)?;
    Ok(bytes)
}

/// Opens an entry for reading; `expected` is the hash it must have.
pub fn open_entry<'a>(
    zip: &'a mut Zip,
    wheel: &str,
    entry: &Entry,
    expected: Option<&RecordHash>,
) -> Result<Verified<'a>, WheelError> {
    let file = zip
        .by_index(entry.index)
        .map_err(|source| WheelError::Entry {
            wheel: wheel.to_owned(),
            file: entry.name.clone(),
            source,
        })?;
    Ok(Verified {
        inner: Box::new(file),
        wheel: wheel.to_owned(),
        file: entry.name.clone(),
        hasher: expected.map(|h| (h.clone(), h.algo.hasher())),
        count: 0,
        failed: None,
    })
}

/// An entry being read: counts and hashes what passes, and keeps the
/// first read error so it can be told from a write error later.
pub struct Verified<'a> {
    inner: Box<dyn Read + 'a>,
    wheel: String,
    file: String,
    hasher: Option<(RecordHash, Hasher)>,
    count: u64,
    failed: Option<io::Error>,
}

impl Verified<'_> {
    /// The error to report for `source`, the error a read returned: the
    /// stored one when it came from this entry.
    pub fn read_error(&mut self, source: io::Error) -> WheelError {
        WheelError::Read {
            wheel: self.wheel.clone(),
            file: self.file.clone(),
            source: self.failed.take().unwrap_or(source),
        }
    }

    /// Whether a read of this entry failed.
    pub fn has_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Checks that the data ends at `size` bytes (letting the zip crate
    /// check the CRC) and has the expected hash.
    pub fn finish(mut self, size: u64) -> Result<(), WheelError> {
        let mut probe = [0u8; 1];
        let extra = match self.read(&mut probe) {
            Ok(n) => n,
            Err(source) => return Err(self.read_error(source)),
        };
        if extra > 0 || self.count > size {
            return Err(WheelError::Inflates {
                wheel: self.wheel,
                file: self.file,
                size,
            });
        }
        if self.count < size {
            return Err(WheelError::Short {
                wheel: self.wheel,
                file: self.file,
                size,
                got: self.count,
            });
        }
        if let Some((expected, hasher)) = self.hasher {
            let actual = hasher.finish();
            if actual != expected {
                return Err(WheelError::HashMismatch {
                    wheel: self.wheel,
                    file: self.file,
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        Ok(())
    }
}

impl Read for Verified<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                if let Some((_, h)) = &mut self.hasher {
                    h.update(&buf[..n]);
                }
                self.count += n as u64;
                Ok(n)
            }
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.failed.get_or_insert(e);
                Err(copy)
            }
        }
    }
}
