//! Who may delete from the store, and when.
//!
//! Writing needs no lock: blobs and entries appear by atomic rename, and
//! "already there" is the same bytes. Deleting is another matter. A build
//! checks that a blob is there (`has`), and reads it seconds or minutes
//! later; an entry is written after its blobs, so for a moment a fresh blob
//! is referenced by nothing. A prune that ran in either gap would break the
//! build. A grace period ("never delete what changed in the last N
//! minutes") covers the second gap only: an old blob a build has just
//! decided to reuse looks exactly like garbage.
//!
//! So every process that opens the store holds a shared `flock(2)` on
//! `ROOT/lock` for as long as it has the store open, and the delete phase
//! of a prune (or a `verify --repair`) takes it exclusively. Builds never
//! wait for each other; a prune waits (up to a timeout the user chooses)
//! for running builds to finish, and a build that starts during the short
//! delete phase waits for it to end. The kernel drops a lock when its
//! process dies, so a crash never leaves the store locked. The lock file
//! is opened close-on-exec, so a host step's children do not inherit it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use super::StoreError;

/// A shared lock on one store, held while the handle lives.
#[derive(Debug)]
pub(crate) struct StoreLock {
    file: File,
}

impl StoreLock {
    /// Opens `ROOT/lock` and takes it shared, waiting while a prune deletes.
    pub(crate) fn shared(root: &Path) -> io::Result<StoreLock> {
        let path = root.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        flock(&file, libc::LOCK_SH)?;
        Ok(StoreLock { file })
    }

    /// Turns this handle's shared lock into an exclusive one, polling
    /// until no other process holds the store or `wait` has passed. The
    /// guard turns it back into a shared lock when dropped.
    ///
    /// Converting a flock is not atomic (the shared lock is let go first),
    /// which is what keeps two prunes that wait for each other from
    /// deadlocking.
    pub(crate) fn exclusive(
        &self,
        root: &Path,
        wait: Duration,
    ) -> Result<ExclusiveGuard<'_>, StoreError> {
        let start = Instant::now();
        loop {
            match flock(&self.file, libc::LOCK_EX | libc::LOCK_NB) {
                Ok(()) => return Ok(ExclusiveGuard { lock: self }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && start.elapsed() < wait => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let _ = flock(&self.file, libc::LOCK_SH);
                    return Err(StoreError::Busy {
                        root: root.to_owned(),
                        waited: wait,
                    });
                }
                Err(e) => {
                    let _ = flock(&self.file, libc::LOCK_SH);
                    return Err(e.into());
                }
            }
        }
    }
}

/// Exclusive use of the store; shared again when dropped.
#[derive(Debug)]
pub(crate) struct ExclusiveGuard<'a> {
    lock: &'a StoreLock,
}

impl Drop for ExclusiveGuard<'_> {
    fn drop(&mut self) {
        let _ = flock(&self.lock.file, libc::LOCK_SH);
    }
}

/// `flock(2)`, retried when a signal interrupts a wait.
pub(crate) fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: the descriptor is open for as long as `file` lives.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_locks_coexist_and_exclusive_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let a = StoreLock::shared(dir.path()).unwrap();
        let b = StoreLock::shared(dir.path()).unwrap();
        // `b` is another open file: another holder, as another process is.
        let err = a
            .exclusive(dir.path(), Duration::from_millis(120))
            .unwrap_err();
        assert!(matches!(err, StoreError::Busy { .. }), "{err}");
        drop(b);
        let guard = a.exclusive(dir.path(), Duration::from_secs(5)).unwrap();
        // While held, nobody else gets even a shared lock.
        let c = File::open(dir.path().join("lock")).unwrap();
        let e = flock(&c, libc::LOCK_SH | libc::LOCK_NB).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        drop(guard);
        flock(&c, libc::LOCK_SH | libc::LOCK_NB).unwrap();
    }
}
