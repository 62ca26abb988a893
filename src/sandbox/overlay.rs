//! The step's root as an overlay: the stack below the step unpacked once
//! into the store ([`crate::store::trees`]) as the read-only lower, the
//! step's writes going to an upper folder in its scratch folder.
//!
//! Why: unpacking the base per step run cost 2.4 s of a 2.6 s no-op step
//! (80 MB Debian base, ext4 inode allocation). Linux 5.11+ lets a user
//! namespace's root mount overlayfs (with `userxattr`: whiteouts are
//! `0:0` character devices, opaque folders a `user.overlay.opaque`
//! xattr), so the sandbox mounts it itself, after it became root of its
//! namespace and before the "before" walk; the mount goes with the
//! namespace. Where the kernel or the file system refuses (an older
//! kernel, a store on a file system overlayfs cannot use as upper, no
//! user namespaces at all), the step's root is unpacked as before: a
//! probe mount answers once per process. For now the overlay is asked
//! for with `HOIST_SANDBOX_ROOT=overlay` (see [`wanted`]). Cached files are never hard-linked into a writable root (the
//! step could change the cache through them): overlayfs copies a file up
//! before the first write.
//!
//! The step's layer is still found by the two walks over the root (see
//! [`super::diff`]), not by reading the upper folder: the walks define
//! the layer today (a folder removed and made again is whiteouts for
//! what it held, where an upper folder would be opaque), and the layer
//! must not change with the way its root was made. What overlayfs
//! changes under the walks is made up for there: a folder is copied up
//! (new ctime; a merged folder's link count is 1) whenever something
//! below it is, so a folder is compared without its ctime and link
//! count, unless the upper folder holds it with nothing new below it
//! (then the step changed the folder itself: `chown` to the owner it
//! had). A file or link is copied up only when the step opened it for
//! writing or changed it, which an unpacked root's ctime shows too.
//! Where a lower file with several links changes or goes, its other
//! paths are put in the layer too (their shared inode changed on an
//! unpacked root) and copied up for it (see [`super::diff::Lower`]).
//!
//! Where the layer still differs from the unpacked root's, which is why
//! the overlay is not yet the default: a folder whose metadata a step set
//! to the values it had while changing something below it (`chmod -R
//! g+w` over a tree that has it: the unpacked root's ctime shows the
//! folder, the overlay's stat cannot tell it from a copy-up); a file a
//! step only opened read-write (apt's lock files: copied up, so in the
//! layer, as in docker's); a file written in place that has another hard
//! link in the image (overlayfs breaks the link: the other paths keep
//! their old bytes).
//!
//! The parent prepares the root before the namespace exists (mount
//! points, input files, /etc/resolv.conf): with an overlay it writes
//! them into the upper folder, folders on their way made there with the
//! lower's modes, which is what the merged root then shows.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::rootfs::io_err;
use super::SandboxError;

/// Whether the step's root is an overlay: `HOIST_SANDBOX_ROOT=overlay`
/// asks for it. Not yet the default: where a step sets a folder's
/// metadata to the values it had while changing something below it
/// (`chmod -R g+w` over a tree that has it), the unpacked root's layer
/// holds the folder and the overlay's cannot tell (see the module docs).
pub fn wanted() -> bool {
    std::env::var("HOIST_SANDBOX_ROOT").is_ok_and(|v| v == "overlay")
}

/// The overlay's mount options; `None` when a path holds a character the
/// option syntax cannot carry (`,`, `:`, `\`), or they are too long.
pub fn options(lower: &Path, upper: &Path, work: &Path) -> Option<CString> {
    let mut parts = Vec::new();
    for (key, p) in [("lowerdir", lower), ("upperdir", upper), ("workdir", work)] {
        let s = p.to_str()?;
        if s.contains([',', ':', '\\', '\0']) {
            return None;
        }
        parts.push(format!("{key}={s}"));
    }
    parts.push("userxattr".into());
    let text = parts.join(",");
    // The kernel takes one page of options.
    (text.len() < 4000).then(|| CString::new(text).ok())?
}

/// Whether an overlay can be mounted inside a user namespace on the file
/// system of `dir`: asked once per process, by mounting one.
pub fn supported(dir: &Path) -> bool {
    static ANSWER: Mutex<Option<bool>> = Mutex::new(None);
    let mut answer = ANSWER.lock().unwrap_or_else(|e| e.into_inner());
    *answer.get_or_insert_with(|| probe(dir).unwrap_or(false))
}

fn probe(dir: &Path) -> io::Result<bool> {
    let t = tempfile::Builder::new().prefix("probe-").tempdir_in(dir)?;
    for d in ["l", "u", "w", "m"] {
        fs::create_dir(t.path().join(d))?;
    }
    fs::write(t.path().join("l/f"), b"")?;
    let Some(opts) = options(
        &t.path().join("l"),
        &t.path().join("u"),
        &t.path().join("w"),
    ) else {
        return Ok(false);
    };
    let target = CString::new(t.path().join("m").as_os_str().as_bytes())?;
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    let maps = [
        (c"/proc/self/setgroups", CString::new("deny")?),
        (c"/proc/self/uid_map", CString::new(format!("0 {uid} 1"))?),
        (c"/proc/self/gid_map", CString::new(format!("0 {gid} 1"))?),
    ];
    // SAFETY: the child makes system calls on values made above and ends
    // with _exit.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Child => {
            let flags = nix::sched::CloneFlags::CLONE_NEWUSER | nix::sched::CloneFlags::CLONE_NEWNS;
            let mut ok = nix::sched::unshare(flags).is_ok();
            for (file, text) in &maps {
                // SAFETY: valid C strings; plain open/write/close.
                unsafe {
                    let fd = libc::open(file.as_ptr(), libc::O_WRONLY);
                    let n = text.as_bytes().len();
                    ok = ok && fd >= 0 && libc::write(fd, text.as_ptr().cast(), n) == n as isize;
                    libc::close(fd);
                }
            }
            ok = ok
                && nix::mount::mount(
                    Some("overlay"),
                    target.as_c_str(),
                    Some("overlay"),
                    nix::mount::MsFlags::empty(),
                    Some(opts.as_c_str()),
                )
                .is_ok();
            // SAFETY: ends the child without the parent's destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        nix::unistd::ForkResult::Parent { child } => loop {
            match nix::sys::wait::waitpid(child, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => {
                    super::remove_tree(t.path());
                    return Ok(true);
                }
                _ => {
                    super::remove_tree(t.path());
                    return Ok(false);
                }
            }
        },
    }
}

/// Where the parent prepares the root: the root folder itself, or, with
/// an overlay, its upper folder over the lower tree.
pub struct View {
    /// The root as the step sees it (the mount point with an overlay).
    pub root: PathBuf,
    /// Where the parent writes.
    pub write: PathBuf,
    /// The overlay's lower tree.
    pub lower: Option<PathBuf>,
    /// Folders made in the upper folder over the lower's, and their
    /// lower modes, set when the preparing is done.
    made: Vec<(PathBuf, u32)>,
}

impl View {
    /// The root folder, unpacked.
    pub fn plain(root: &Path) -> View {
        View {
            root: root.to_owned(),
            write: root.to_owned(),
            lower: None,
            made: Vec::new(),
        }
    }

    /// An overlay of `upper` over `lower`, mounted at `root`.
    pub fn overlay(root: &Path, upper: &Path, lower: &Path) -> View {
        View {
            root: root.to_owned(),
            write: upper.to_owned(),
            lower: Some(lower.to_owned()),
            made: Vec::new(),
        }
    }

    /// What the root holds at `rel` (no link followed at its end): the
    /// upper folder's entry, else the lower's.
    pub fn metadata(&self, rel: &str) -> Option<fs::Metadata> {
        let rel = rel.trim_matches('/');
        fs::symlink_metadata(self.write.join(rel)).ok().or_else(|| {
            let lower = self.lower.as_ref()?;
            super::rootfs::real_dir(lower, parent_of(rel))?;
            fs::symlink_metadata(lower.join(rel)).ok()
        })
    }

    /// Reads a file of the root (empty when it is not there).
    pub fn read(&self, rel: &str) -> Vec<u8> {
        let from = |base: &Path| {
            super::rootfs::real_dir(base, parent_of(rel)).and_then(|d| {
                let name = rel.rsplit('/').next().unwrap_or(rel);
                fs::read(d.join(name)).ok()
            })
        };
        from(&self.write)
            .or_else(|| self.lower.as_deref().and_then(from))
            .unwrap_or_default()
    }

    /// Where the parent writes `rel`, after making sure every folder on
    /// its way is a real folder (made when missing; over a lower folder,
    /// with its mode), never a link; see [`super::rootfs::checked`].
    pub fn checked(&mut self, rel: &str) -> Result<PathBuf, SandboxError> {
        let Some(lower) = self.lower.clone() else {
            return super::rootfs::checked(&self.write, rel);
        };
        let parts: Vec<&str> = rel
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        let (Some(last), false) = (parts.last(), parts.contains(&"..")) else {
            // Nothing, or a climb: the plain check says which.
            return super::rootfs::checked(&self.write, rel);
        };
        let mut at = String::new();
        for c in &parts[..parts.len() - 1] {
            at = match at.is_empty() {
                true => (*c).to_owned(),
                false => format!("{at}/{c}"),
            };
            let up = self.write.join(&at);
            match fs::symlink_metadata(&up) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => return super::rootfs::checked(&self.write, rel),
                Err(_) => {}
            }
            let mode = match fs::symlink_metadata(lower.join(&at)) {
                Ok(m) if m.is_dir() => Some(m.mode() & 0o7777),
                Ok(_) => {
                    return Err(SandboxError::Unsafe {
                        path: rel.to_owned(),
                        why: "a folder on its way is a link or a file in the layers below; hoist never writes through links",
                    })
                }
                Err(_) => None,
            };
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&up)
                .map_err(|e| io_err(&up, e))?;
            if let Some(mode) = mode {
                self.made.push((up, mode));
            }
        }
        Ok(self
            .write
            .join(parts[..parts.len() - 1].join("/"))
            .join(last))
    }

    /// Gives the folders made over lower ones their lower modes, deepest
    /// first (so a read-only one is filled before it is closed).
    pub fn finish(&mut self) -> Result<(), SandboxError> {
        for (p, mode) in self.made.drain(..).rev() {
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).map_err(|e| io_err(&p, e))?;
        }
        Ok(())
    }
}

fn parent_of(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(d, _)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_carry_plain_paths_only() {
        let p = Path::new;
        for (lower, want) in [
            (
                "/s/trees/ab",
                Some("lowerdir=/s/trees/ab,upperdir=/s/u,workdir=/s/w,userxattr"),
            ),
            ("/s/a,b", None),
            ("/s/a:b", None),
            ("/s/a\\b", None),
        ] {
            let got = options(p(lower), p("/s/u"), p("/s/w"));
            assert_eq!(
                got.as_deref().and_then(|c| c.to_str().ok()),
                want,
                "{lower}"
            );
        }
        let long = format!("/{}", "x".repeat(4000));
        assert_eq!(
            options(p(&long), p("/u"), p("/w")),
            None,
            "one page at most"
        );
    }
}
