//! Room on the disk for unpacked layers.
//!
//! A layer's compressed size says little about what it expands to (a
//! gzip of zeros expands a thousandfold), and the tar header of a file
//! says its size only as the file begins. So the unpacking asks the file
//! system itself: once before it starts (is there room for at least the
//! compressed bytes?), again before any file that would not fit in what
//! was free at the last look, and again every [`CHECK_EVERY`] bytes
//! (other writers share the disk). It stops, before writing, when what is
//! left would fall under a reserve kept for everything else on that file
//! system, so a base that expands too far ends the build with an error
//! that says so instead of a full disk.
//!
//! The file system is asked through a [`Probe`], so a test can stand for
//! a small disk without mounting one.

use std::io;
use std::path::{Path, PathBuf};

use crate::store::human_size;

use super::SandboxError;

/// A layer that does not fit: what, where, how much, and the fix.
#[derive(Debug, thiserror::Error)]
#[error("unpacking {what} into {dir} needs at least {needed}{entry}, but that file system has {free} free and hoist leaves {reserve} of it for everything else; free space there, or set HOIST_CACHE to a folder on a larger file system (steps unpack their base under $HOIST_CACHE)")]
pub struct NoRoom {
    /// `layer sha256:…`, or `N layers (… compressed)`.
    pub what: String,
    pub dir: PathBuf,
    pub needed: String,
    /// `, the next being /PATH of SIZE`, or nothing.
    pub entry: String,
    pub free: String,
    pub reserve: String,
}

/// How many bytes may be written between two looks at the file system.
pub const CHECK_EVERY: u64 = 16 << 20;

/// The most the reserve ever is: 64 MiB.
pub const MAX_RESERVE: u64 = 64 << 20;

/// What a file system says of its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes an unprivileged writer may still use.
    pub free: u64,
    /// The file system's size in bytes.
    pub total: u64,
}

/// Asks the file system holding a path for its room.
pub type Probe<'a> = dyn Fn(&Path) -> io::Result<Space> + 'a;

/// The file system's own answer (`statvfs`).
pub fn statvfs(path: &Path) -> io::Result<Space> {
    let s = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    let unit = s.fragment_size();
    Ok(Space {
        free: s.blocks_available().saturating_mul(unit),
        total: s.blocks().saturating_mul(unit),
    })
}

/// The room left while one tree is unpacked.
pub struct Room<'a> {
    probe: &'a Probe<'a>,
    dir: PathBuf,
    reserve: u64,
    /// Free bytes at the last look, less what was written since.
    free: u64,
    /// Bytes written since the last look.
    since: u64,
    /// Bytes written in all.
    written: u64,
}

impl<'a> Room<'a> {
    /// Looks at the file system holding `dir` and checks that at least
    /// `at_least` bytes (the layers' compressed size: they expand to no
    /// less in practice) fit above the reserve.
    pub fn open(
        probe: &'a Probe<'a>,
        dir: &Path,
        at_least: u64,
        what: &str,
    ) -> Result<Room<'a>, SandboxError> {
        let space = probe(dir).map_err(|e| super::rootfs::io_err(dir, e))?;
        let room = Room {
            probe,
            dir: dir.to_owned(),
            // 2% of the file system, at most MAX_RESERVE.
            reserve: (space.total / 50).min(MAX_RESERVE),
            free: space.free,
            since: 0,
            written: 0,
        };
        if room.free.saturating_sub(room.reserve) < at_least {
            return Err(room.full(what, "", at_least));
        }
        Ok(room)
    }

    /// Takes `size` bytes for the entry `path` of `what` (`layer
    /// sha256:…`), or says that they do not fit; called before the bytes
    /// are written.
    pub fn take(&mut self, size: u64, what: &str, path: &str) -> Result<(), SandboxError> {
        let fits = |r: &Room| size <= r.free.saturating_sub(r.reserve);
        if self.since.saturating_add(size) >= CHECK_EVERY || !fits(self) {
            self.look()?;
        }
        if !fits(self) {
            return Err(self.full(what, path, size));
        }
        self.free -= size;
        self.since += size;
        self.written += size;
        Ok(())
    }

    /// The file system said it is full while writing `path` (another
    /// writer took the room): the same error as when the check saw it.
    pub fn ran_out(&mut self, what: &str, path: &str, size: u64) -> SandboxError {
        // A failed look keeps the last known room.
        let _ = self.look();
        // `take` already counted the file in what was written.
        let mut e = self.full(what, "", 0);
        if let SandboxError::NoRoom(e) = &mut e {
            e.entry = format!(
                ", the file system having filled up (another writer?) while /{path} of {} was written",
                human_size(size)
            );
        }
        e
    }

    fn look(&mut self) -> Result<(), SandboxError> {
        let space = (self.probe)(&self.dir).map_err(|e| super::rootfs::io_err(&self.dir, e))?;
        self.free = space.free;
        self.since = 0;
        Ok(())
    }

    fn full(&self, what: &str, path: &str, next: u64) -> SandboxError {
        SandboxError::NoRoom(Box::new(NoRoom {
            what: what.to_owned(),
            dir: self.dir.clone(),
            needed: human_size(self.written.saturating_add(next)),
            entry: if path.is_empty() {
                String::new()
            } else {
                format!(", the next being /{path} of {}", human_size(next))
            },
            free: human_size(self.free),
            reserve: human_size(self.reserve),
        }))
    }
}
