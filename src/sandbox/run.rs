//! Running one command in the namespaces.
//!
//! Three processes, as unshare(1) -f does it:
//! - hoist (the parent) forks a child;
//! - the child unshares a user, mount and PID namespace and waits while
//!   the parent writes its id map (a process cannot map ids for itself
//!   beyond its own, so the parent or the setuid `newuidmap` does), then
//!   sets the image's owners on the unpacked files (ids that only exist
//!   inside) and walks the root folder ("before");
//! - the child forks the step's process, PID 1 of the new PID namespace,
//!   which takes a mount namespace of its own (so its mounts never show
//!   in the child's walks), mounts /proc (its own; /proc/sys read-only), binds /dev's
//!   null, zero, random, urandom and tty and a copy of resolv.conf,
//!   mounts a tmpfs on /tmp, pivots into the root folder and detaches the
//!   host's root (so no path inside leads out: chroot alone can be left
//!   by a process that holds CAP_SYS_CHROOT in its namespace), then
//!   drops to the step's user and execs the command;
//! - when the step ends, the child walks the root folder again, writes
//!   what changed (owners as the sandbox sees them) to the result file,
//!   and, for an ordinary caller, hands every entry back to root inside
//!   (the caller outside) with owner read and write bits: files of the
//!   subordinate ids (`_apt`'s 0700 folders) could otherwise be neither
//!   read into the layer nor removed by the caller.
//!
//! The network is shared with the host (apt and apk need it). Every mount
//! lives in the new mount namespace and goes with its last process, so
//! nothing is left mounted on the host whatever happens.
//!
//! Everything the step's process needs is prepared before the fork; it
//! only makes system calls. The child also walks folders and writes JSON,
//! which allocates: glibc's fork leaves malloc usable in the child, and
//! no lock of the parent's other threads is taken on that path.

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{self, ForkResult, Gid, Pid, Uid};

use super::diff::{self, Outcome};
use super::idmap::IdMap;
use super::SandboxError;

/// A bind mount into the root folder.
pub struct Bind {
    pub source: CString,
    pub target: CString,
    /// Skipped when it fails (the host has no tty).
    pub optional: bool,
}

/// A step's own mount (`RUN --mount`): a bind of a host path, or a tmpfs.
pub struct UserMount {
    /// The host path bound; `None` for a tmpfs.
    pub source: Option<CString>,
    pub target: CString,
    pub readonly: bool,
    /// A tmpfs's options.
    pub data: Option<CString>,
    /// Flags the host's mount of the source carries, which a read-only
    /// remount inside a user namespace must keep.
    pub locked: MsFlags,
    /// Made by the step's process (a folder when `Some(true)`): targets
    /// inside its /tmp, which exists only there.
    pub make: Option<bool>,
}

/// The flags of the host mount holding `path` that a user namespace
/// cannot drop (nosuid, nodev, noexec, atime settings).
pub fn locked_flags(path: &Path) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(v) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = v.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

/// Everything the child needs, made before the fork.
pub struct Prepared {
    pub root: CString,
    pub proc_dir: CString,
    pub proc_sys: CString,
    pub tmp_dir: Option<CString>,
    pub binds: Vec<Bind>,
    /// Paths to try for the command, in PATH order.
    pub candidates: Vec<CString>,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub workdir: String,
    pub uid: u32,
    pub gid: u32,
    /// Host paths and the owners (inside ids) to give them, with the
    /// mode to set again afterwards (chown clears setuid and setgid).
    pub owners: Vec<(CString, u32, u32, Option<u32>)>,
    /// The step's own mounts, in the order they are made.
    pub mounts: Vec<UserMount>,
    /// The root folder, for the walks.
    pub root_path: PathBuf,
    /// Mount points under the root whose contents are not walked.
    pub skip: Vec<String>,
    /// Whether to hand the root folder back to the caller after the step.
    pub hand_back: bool,
    /// Seconds the step may run (0: no limit).
    pub timeout_secs: u32,
    /// The overlay mounted on the root, when there is one.
    pub overlay: Option<Overlay>,
}

/// An overlay for the root (see [`super::overlay`]).
pub struct Overlay {
    /// Its mount options.
    pub options: CString,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// The lower tree, for the walks' comparison.
    pub lower: PathBuf,
}

impl Prepared {
    /// Hands what the step wrote back to the caller (see
    /// [`diff::hand_back`]): the root folder, or the overlay's upper and
    /// work folders (never the merged root, which would copy everything
    /// up).
    fn hand_back(&self) {
        match &self.overlay {
            None => diff::hand_back(&self.root_path),
            Some(o) => {
                let _ = umount2(self.root.as_c_str(), MntFlags::MNT_DETACH);
                diff::hand_back(&o.upper);
                diff::hand_back(&o.work);
            }
        }
    }
}

/// How the step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// Stages the child reports failures for.
const STAGES: &[&str] = &[
    "creating the user, mount and PID namespaces",
    "becoming root in the user namespace",
    "setting the image's file owners",
    "starting the step's process",
    "mounting the image's layers (overlayfs)",
];

/// Runs the prepared step. Output goes to `log`; what the step changed
/// is written to `result` as an [`Outcome`].
pub fn run(
    p: &Prepared,
    ids: &IdMap,
    log: &fs::File,
    result: &fs::File,
) -> Result<Exit, SandboxError> {
    let (from_child, to_parent) = unistd::pipe().map_err(|e| sys("pipe", e))?;
    let (from_parent, to_child) = unistd::pipe().map_err(|e| sys("pipe", e))?;
    let hoist = unistd::getpid();
    // SAFETY: the child only makes system calls on values prepared above
    // (and allocates to format an error, which glibc's fork makes safe).
    let child = match unsafe { unistd::fork() }.map_err(|e| sys("fork", e))? {
        ForkResult::Child => {
            drop(from_child);
            drop(to_child);
            die_with(Some(hoist));
            child(p, ids.is_range(), log, result, &to_parent, &from_parent)
        }
        ForkResult::Parent { child } => child,
    };
    drop(to_parent);
    drop(from_parent);
    let result = parent(child, ids, &from_child, &to_child);
    // However the conversation ended, the child must not wait forever.
    drop(to_child);
    let status = loop {
        match waitpid(child, None) {
            Err(Errno::EINTR) => continue,
            other => break other.map_err(|e| sys("waitpid", e))?,
        }
    };
    result?;
    Ok(match status {
        WaitStatus::Exited(_, c) => Exit::Code(c),
        WaitStatus::Signaled(_, s, _) => Exit::Signal(s as i32),
        _ => Exit::Code(-1),
    })
}

fn parent(
    child: Pid,
    ids: &IdMap,
    from_child: &OwnedFd,
    to_child: &OwnedFd,
) -> Result<(), SandboxError> {
    expect(from_child, b'U')?;
    write_maps(child, ids)?;
    send(to_child, b'M')?;
    expect(from_child, b'C')
}

/// Reads the child's next message; a failure it reports becomes an error.
fn expect(fd: &OwnedFd, want: u8) -> Result<(), SandboxError> {
    let mut b = [0u8; 6];
    let n = read_full(fd, &mut b);
    match (n, b[0]) {
        (1.., x) if x == want => Ok(()),
        (6, b'X') => {
            let stage = STAGES
                .get(usize::from(b[1]))
                .copied()
                .unwrap_or("setting up");
            let errno = Errno::from_raw(i32::from_le_bytes([b[2], b[3], b[4], b[5]]));
            if usize::from(b[1]) == 0
                && matches!(
                    errno,
                    Errno::EPERM | Errno::EINVAL | Errno::ENOSPC | Errno::EACCES
                )
            {
                return Err(SandboxError::NoUserNamespaces(errno.desc().to_owned()));
            }
            Err(SandboxError::Setup {
                stage: stage.to_owned(),
                why: errno.desc().to_owned(),
            })
        }
        _ => Err(SandboxError::Setup {
            stage: "talking to the sandbox's process".into(),
            why: "it ended early".into(),
        }),
    }
}

fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> usize {
    // The first byte says how long the message is.
    let mut got = 0;
    while got < buf.len() {
        match unistd::read(fd.as_fd(), &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
        if got >= 1 && buf[0] != b'X' {
            break;
        }
    }
    got
}

fn send(fd: &OwnedFd, b: u8) -> Result<(), SandboxError> {
    unistd::write(fd.as_fd(), &[b])
        .map(drop)
        .map_err(|e| sys("writing to the sandbox's process", e))
}

fn write_maps(child: Pid, ids: &IdMap) -> Result<(), SandboxError> {
    let proc = format!("/proc/{child}");
    let text = |lines: Vec<[u32; 3]>| {
        lines
            .iter()
            .map(|[a, b, c]| format!("{a} {b} {c}\n"))
            .collect::<String>()
    };
    let write = |file: &str, body: &str| -> Result<(), SandboxError> {
        let path = format!("{proc}/{file}");
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(body.as_bytes()))
            .map_err(|e| SandboxError::IdMap {
                what: path,
                why: e.to_string(),
            })
    };
    if !ids.is_range() || unistd::geteuid().is_root() {
        if !ids.is_range() {
            // A single-id map may be written by its owner only once
            // setgroups is denied (user_namespaces(7)).
            write("setgroups", "deny")?;
        }
        write("uid_map", &text(ids.uid_lines()))?;
        write("gid_map", &text(ids.gid_lines()))?;
        return Ok(());
    }
    for (tool, lines) in [
        ("newuidmap", ids.uid_lines()),
        ("newgidmap", ids.gid_lines()),
    ] {
        let exe = super::idmap::helper(tool).ok_or_else(|| SandboxError::IdMap {
            what: tool.into(),
            why: format!(
                "it is not installed (apt-get install uidmap), yet /etc/sub{}id grants a range",
                &tool[3..4]
            ),
        })?;
        let args: Vec<String> = std::iter::once(child.to_string())
            .chain(lines.iter().flatten().map(u32::to_string))
            .collect();
        let out = Command::new(&exe)
            .args(&args)
            .output()
            .map_err(|e| SandboxError::IdMap {
                what: tool.into(),
                why: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(SandboxError::IdMap {
                what: format!("{tool} {}", args.join(" ")),
                why: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
    }
    Ok(())
}

fn sys(what: &str, e: Errno) -> SandboxError {
    SandboxError::Setup {
        stage: what.to_owned(),
        why: e.desc().to_owned(),
    }
}

/// Asks the kernel to kill this process when its parent ends (hoist
/// killed by CI's timeout must not leave a step running); ends at once
/// when the parent, `parent` when it can be seen, is already gone. (PID
/// 1 of a new PID namespace sees its parent as 0.)
fn die_with(parent: Option<Pid>) {
    // SAFETY: prctl with an integer argument; no memory is passed.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if parent.is_some_and(|p| unistd::getppid() != p) {
        // SAFETY: see `fail`.
        unsafe { libc::_exit(126) }
    }
}

/// Tells the parent a stage failed, and ends.
fn fail(to_parent: &OwnedFd, stage: u8, e: Errno) -> ! {
    let n = (e as i32).to_le_bytes();
    let _ = unistd::write(to_parent.as_fd(), &[b'X', stage, n[0], n[1], n[2], n[3]]);
    // SAFETY: _exit ends the process without running the parent's
    // destructors or atexit handlers twice.
    unsafe { libc::_exit(126) }
}

fn wait_for(fd: &OwnedFd, want: u8) -> bool {
    let mut b = [0u8; 1];
    loop {
        match unistd::read(fd.as_fd(), &mut b) {
            Ok(1) => return b[0] == want,
            Err(Errno::EINTR) => continue,
            _ => return false,
        }
    }
}

fn child(
    p: &Prepared,
    range: bool,
    log: &fs::File,
    result: &fs::File,
    to_parent: &OwnedFd,
    from_parent: &OwnedFd,
) -> ! {
    let quit = |code| -> ! {
        // SAFETY: see `fail`.
        unsafe { libc::_exit(code) }
    };
    if let Err(e) =
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID)
    {
        fail(to_parent, 0, e);
    }
    let _ = unistd::write(to_parent.as_fd(), b"U");
    if !wait_for(from_parent, b'M') {
        quit(126);
    }
    if range {
        if let Err(e) = unistd::setgroups(&[]) {
            fail(to_parent, 1, e);
        }
    }
    let root = (Uid::from_raw(0), Gid::from_raw(0));
    if let Err(e) = unistd::setresgid(root.1, root.1, root.1)
        .and_then(|_| unistd::setresuid(root.0, root.0, root.0))
    {
        fail(to_parent, 1, e);
    }
    // From here on, files may belong to ids the caller cannot touch: a
    // failure hands them back first, so the scratch folder can go.
    let bail = |stage: u8, e: Errno| -> ! {
        if p.hand_back {
            p.hand_back();
        }
        fail(to_parent, stage, e)
    };
    if let Some(o) = &p.overlay {
        let r = mount(
            Some("overlay"),
            p.root.as_c_str(),
            Some("overlay"),
            MsFlags::empty(),
            Some(o.options.as_c_str()),
        );
        if let Err(e) = r {
            bail(4, e);
        }
    }
    if range {
        for (path, uid, gid, mode) in &p.owners {
            // SAFETY: a valid C string; lchown never follows a link.
            let r = Errno::result(unsafe { libc::lchown(path.as_ptr(), *uid, *gid) });
            // An id beyond the granted range stays root's.
            match r {
                Err(Errno::EINVAL) => {}
                Err(e) => bail(2, e),
                Ok(_) => {
                    if let Some(mode) = mode {
                        // SAFETY: a valid C string; only files get a mode.
                        let r = Errno::result(unsafe { libc::chmod(path.as_ptr(), *mode) });
                        if let Err(e) = r {
                            bail(2, e);
                        }
                    }
                }
            }
        }
    }
    // What the upper folder holds before the step (mount points, inputs,
    // files given their owners): the step cannot copy those up.
    let in_upper: std::collections::HashSet<String> = match &p.overlay {
        Some(o) => diff::snapshot(&o.upper, &[])
            .map(|s| s.into_keys().collect())
            .unwrap_or_default(),
        None => Default::default(),
    };
    let before = diff::snapshot(&p.root_path, &p.skip);
    let _ = unistd::write(to_parent.as_fd(), b"C");
    let code = match before {
        Err(e) => {
            diff::write_outcome(result, &Outcome::Failed(e.to_string()));
            125
        }
        Ok(before) => {
            let (code, timed_out) = run_step_process(p, log).unwrap_or_else(|e| bail(3, e));
            let outcome = match diff::snapshot(&p.root_path, &p.skip) {
                Ok(_) if timed_out => Outcome::TimedOut,
                Ok(after) => {
                    let lower = p.overlay.as_ref().map(|o| diff::Lower {
                        tree: &o.lower,
                        upper: &o.upper,
                        root: &p.root_path,
                        in_upper: &in_upper,
                    });
                    let walked = diff::compare_with(&before, after, lower.as_ref());
                    if let Some(o) = &p.overlay {
                        copy_up(&p.root_path, &o.upper, &walked);
                    }
                    Outcome::Walked(walked)
                }
                Err(e) => Outcome::Failed(e.to_string()),
            };
            diff::write_outcome(result, &outcome);
            code
        }
    };
    if p.hand_back {
        p.hand_back();
    }
    quit(code)
}

/// Copies up the files put in the layer that the upper folder does not
/// hold (the other links of a file the step changed: see
/// [`diff::Lower`]), so the layer reads every file it puts from there:
/// opening one for writing makes overlayfs copy it up, bytes and
/// metadata unchanged.
fn copy_up(root: &Path, upper: &Path, walked: &diff::Walked) {
    for c in &walked.changes {
        let diff::Change::Put(rel) = c else { continue };
        let is_file = walked
            .stats
            .get(rel)
            .is_some_and(|s| s.kind == diff::Kind::File);
        if is_file && fs::symlink_metadata(upper.join(rel)).is_err() {
            let _ = fs::OpenOptions::new().write(true).open(root.join(rel));
        }
    }
}

/// Makes one of the step's own mounts (in the step's process).
fn mount_one(m: &UserMount) -> Result<(), (String, Errno)> {
    let none: Option<&str> = None;
    let shown = m.target.to_string_lossy();
    if let Some(dir) = m.make {
        let target = Path::new(std::ffi::OsStr::from_bytes(m.target.as_bytes()));
        let r = match dir {
            true => fs::create_dir_all(target),
            false => target
                .parent()
                .map_or(Ok(()), fs::create_dir_all)
                .and_then(|_| {
                    fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(target)
                        .map(drop)
                }),
        };
        if let Err(e) = r {
            return Err((
                format!("making the mount point {shown}"),
                Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            ));
        }
    }
    let r = match &m.source {
        Some(src) => mount(
            Some(src.as_c_str()),
            m.target.as_c_str(),
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        ),
        None => mount(
            Some("tmpfs"),
            m.target.as_c_str(),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            m.data.as_deref(),
        ),
    };
    if let Err(e) = r {
        return Err((format!("mounting {shown}"), e));
    }
    if m.readonly {
        let r = mount(
            none,
            m.target.as_c_str(),
            none,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | m.locked,
            none,
        );
        if let Err(e) = r {
            return Err((format!("making {shown} read-only"), e));
        }
    }
    Ok(())
}

/// Set by SIGALRM: the step's time is up.
static TIME_UP: AtomicBool = AtomicBool::new(false);

extern "C" fn time_up(_: libc::c_int) {
    TIME_UP.store(true, Ordering::SeqCst);
}

/// Forks the step's process and waits for it; its exit code (128 + the
/// signal when killed, as shells report it), and whether it was killed
/// for running past the timeout. The alarm interrupts the wait; PID 1
/// killed takes every process of the step's PID namespace with it.
fn run_step_process(p: &Prepared, log: &fs::File) -> Result<(i32, bool), Errno> {
    if p.timeout_secs > 0 {
        let action = SigAction::new(
            SigHandler::Handler(time_up),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(Signal::SIGALRM, &action) }?;
    }
    // SAFETY: as above; the grandchild execs or exits.
    match unsafe { unistd::fork() }? {
        ForkResult::Child => step(p, log),
        ForkResult::Parent { child } => {
            if p.timeout_secs > 0 {
                unistd::alarm::set(p.timeout_secs);
            }
            let mut killed = false;
            loop {
                match waitpid(child, None) {
                    Err(Errno::EINTR) => {
                        if TIME_UP.load(Ordering::SeqCst) && !killed {
                            let _ = kill(child, Signal::SIGKILL);
                            killed = true;
                        }
                    }
                    Ok(WaitStatus::Exited(_, c)) => return Ok((c, killed)),
                    Ok(WaitStatus::Signaled(_, s, _)) => return Ok((128 + s as i32, killed)),
                    _ => return Ok((125, killed)),
                }
            }
        }
    }
}

/// PID 1 of the step: mounts, pivots, drops to the user, execs.
fn step(p: &Prepared, log: &fs::File) -> ! {
    let mut log_w = log;
    let die = |what: &str, e: Errno| -> ! {
        let mut w = log;
        let _ = writeln!(w, "hoist sandbox: {what}: {}", e.desc());
        // SAFETY: see `fail`.
        unsafe { libc::_exit(125) }
    };
    if let Err(e) = unshare(CloneFlags::CLONE_NEWNS) {
        die("taking a mount namespace of its own", e);
    }
    let none: Option<&str> = None;
    let r = mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none);
    if let Err(e) = r {
        die("making the mounts private", e);
    }
    if let Err(e) = mount(
        Some(p.root.as_c_str()),
        p.root.as_c_str(),
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    ) {
        die("binding the root folder", e);
    }
    let proc_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if let Err(e) = mount(
        Some("proc"),
        p.proc_dir.as_c_str(),
        Some("proc"),
        proc_flags,
        none,
    ) {
        die("mounting /proc", e);
    }
    // /proc/sys reaches kernel settings; the step may read them only.
    let r = mount(
        Some(p.proc_sys.as_c_str()),
        p.proc_sys.as_c_str(),
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )
    .and_then(|_| {
        mount(
            none,
            p.proc_sys.as_c_str(),
            none,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | proc_flags,
            none,
        )
    });
    if let Err(e) = r {
        die("making /proc/sys read-only", e);
    }
    for b in &p.binds {
        let r = mount(
            Some(b.source.as_c_str()),
            b.target.as_c_str(),
            none,
            MsFlags::MS_BIND,
            none,
        );
        if let (Err(e), false) = (r, b.optional) {
            die(&format!("binding {}", b.source.to_string_lossy()), e);
        }
    }
    if let Some(tmp) = &p.tmp_dir {
        let r = mount(
            Some("tmpfs"),
            tmp.as_c_str(),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777"),
        );
        if let Err(e) = r {
            die("mounting /tmp", e);
        }
    }
    for m in &p.mounts {
        if let Err((what, e)) = mount_one(m) {
            die(&what, e);
        }
    }
    let r = unistd::chdir(p.root.as_c_str())
        .and_then(|_| unistd::pivot_root(".", "."))
        .and_then(|_| umount2(".", MntFlags::MNT_DETACH))
        .and_then(|_| unistd::chdir("/"));
    if let Err(e) = r {
        die("entering the root folder (pivot_root)", e);
    }
    if let Err(e) = fs::create_dir_all(&p.workdir) {
        let _ = writeln!(
            log_w,
            "hoist sandbox: creating the workdir {}: {e}",
            p.workdir
        );
        // SAFETY: see `fail`.
        unsafe { libc::_exit(125) }
    }
    if let Err(e) = unistd::chdir(Path::new(&p.workdir)) {
        die("entering the workdir", e);
    }
    let (uid, gid) = (Uid::from_raw(p.uid), Gid::from_raw(p.gid));
    if p.uid != 0 || p.gid != 0 {
        let r = unistd::setgroups(&[gid])
            .or(Ok::<(), Errno>(()))
            .and_then(|_| unistd::setresgid(gid, gid, gid))
            .and_then(|_| unistd::setresuid(uid, uid, uid));
        if let Err(e) = r {
            die(&format!("becoming user {}:{}", p.uid, p.gid), e);
        }
    }
    // After the last change of ids, which clears it: when the step's
    // PID 1 goes, the kernel ends every process of its PID namespace.
    die_with(None);
    let null = fs::File::open("/dev/null");
    if let Ok(null) = &null {
        let _ = unistd::dup2_stdin(null);
    }
    let _ = unistd::dup2_stdout(log);
    let _ = unistd::dup2_stderr(log);
    let mut last = Errno::ENOENT;
    for c in &p.candidates {
        match unistd::execve(c.as_c_str(), &p.argv, &p.envp) {
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => continue,
            Err(e) => last = e,
            Ok(never) => match never {},
        }
    }
    let shown = p
        .argv
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let hint = match last {
        // The kernel knows no format for it: on a build for another
        // platform, the image's programs are that platform's.
        Errno::ENOEXEC => "a program of another architecture, which this host runs only with binfmt QEMU; hoist does a RUN natively only where the result is exact, and this one needs the sandbox",
        _ => "is it installed in the image, and on its PATH?",
    };
    let _ = writeln!(
        log_w,
        "hoist sandbox: cannot run `{shown}`: {} ({hint})",
        last.desc()
    );
    // SAFETY: see `fail`.
    unsafe { libc::_exit(127) }
}
