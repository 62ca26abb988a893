//! Running `[[run]]` steps in a rootless sandbox, each step becoming a
//! layer.
//!
//! A step runs as root of its own user namespace (mapped to the caller,
//! see [`idmap`]) in its own mount and PID namespaces, with the image's
//! layers as its root: an overlay of the layers unpacked once into the
//! store, its writes going to the scratch folder ([`overlay`]), else the
//! layers unpacked into the scratch folder ([`rootfs`]); the network is
//! the host's. What it changed is found by walking the folder
//! before and after ([`diff`]) and written as a layer. The scratch folder
//! is the only place on the host the step can write to, and a guard
//! removes it when the step ends, whether it worked or not.
//!
//! No daemon, no setuid helper beyond the system's `newuidmap` (only when
//! a subordinate range is granted), no runtime (runc, crun) involved.

pub mod diff;
pub mod idmap;
pub mod overlay;
pub mod room;
pub mod rootfs;
pub mod run;

use std::ffi::CString;
use std::fs;
use std::io::{Read, Seek};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::image::Descriptor;
use crate::layer::{Compression, Layer, LayerError};
use crate::store::{Store, StoreError};

use idmap::IdMap;
use run::{Bind, Exit, Prepared};

/// Why a step could not run, or failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` cannot go into the sandbox: {why}")]
    Unsafe { path: String, why: &'static str },
    #[error("reading a layer: {0}")]
    ReadLayer(#[from] crate::layer::reader::LayerReadError),
    #[error("reading layer {digest}: {source}")]
    Layer {
        digest: String,
        #[source]
        source: crate::layer::reader::LayerReadError,
    },
    #[error(transparent)]
    NoRoom(Box<room::NoRoom>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the step's layer: {0}")]
    Write(#[from] LayerError),
    #[error("this host does not let users create user namespaces ({0}); run steps need them: enable them with `sysctl -w user.max_user_namespaces=15000` (and `kernel.unprivileged_userns_clone=1` on Debian kernels, or `kernel.apparmor_restrict_unprivileged_userns=0` on Ubuntu 24.04+), or run the build where they are allowed")]
    NoUserNamespaces(String),
    #[error("writing the sandbox's id map ({what}): {why}")]
    IdMap { what: String, why: String },
    #[error("setting up the sandbox: {stage}: {why}")]
    Setup { stage: String, why: String },
    #[error("[[run]] user `{user}`: {why}")]
    User { user: String, why: String },
    #[error("[[run]] workdir `{0}` must be an absolute path, like /src")]
    Workdir(String),
    #[error("{command} {how}; its output ends:\n{output}")]
    Failed {
        command: String,
        how: String,
        output: String,
    },
}

/// One step: what runs, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// Killed after this long (`timeout = "10m"`); `None` waits.
    pub timeout: Option<std::time::Duration>,
    /// Mounted while the step runs; what is under them is never part of
    /// the step's layer.
    pub mounts: Vec<Mount>,
    /// Environment variables holding secrets: set for the step, kept out
    /// of its cache key and of every report.
    pub secret_env: Vec<(String, String)>,
}

/// Something mounted into the root while a step runs (`RUN --mount`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Absolute path inside the root.
    pub target: String,
    pub source: MountSource,
    /// The owner (inside ids) a bind's source is given before the step
    /// (a new cache folder's `uid`/`gid`, a secret file's); ids the
    /// sandbox cannot map leave it root's.
    pub owner: Option<(u32, u32)>,
    /// What the mount is in a cache key: its settings, never the content
    /// of a cache or a secret (as BuildKit keys them).
    pub key: String,
}

/// What a [`Mount`] puts at its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A host folder or file, bind-mounted.
    Bind { path: PathBuf, readonly: bool },
    /// An empty in-memory folder, of at most `size` bytes when given.
    Tmpfs { size: Option<u64> },
}

impl Step {
    /// What the step's layer depends on, for cache keys: everything but
    /// the timeout, which changes whether a step ends, not what it makes,
    /// and the secrets' values.
    pub fn key_text(&self) -> String {
        let mut t = format!(
            "{:?} {:?} {:?} {:?}",
            self.command, self.env, self.workdir, self.user
        );
        for m in &self.mounts {
            t.push_str(&format!(" mount {:?}", m.key));
        }
        t
    }

    /// The command as a shell would show it.
    pub fn shown(&self) -> String {
        shell_words::join(&self.command)
    }
}

/// What a step made.
#[derive(Debug, Clone)]
pub struct StepLayer {
    pub layer: Layer,
    /// Entries in the layer (whiteouts included).
    pub changes: usize,
    pub whiteouts: usize,
}

/// The environment variables passed through from the host when set, so
/// a step reaches the network the way the host does.
const PROXY_VARS: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
];

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How many bytes of a failed step's output the error shows.
const OUTPUT_TAIL: u64 = 8 << 10;

/// Where a step runs and what it starts from.
#[derive(Debug, Clone)]
pub struct Ground {
    /// The base's layers, then the layers below the step, bottom first.
    pub layers: Vec<Descriptor>,
    /// The image config's `Env`.
    pub image_env: Vec<String>,
    /// Where the scratch folder is made.
    pub scratch_parent: PathBuf,
}

impl Ground {
    /// The same ground with `layer` on top.
    pub fn with(&self, layer: &Descriptor) -> Ground {
        let mut g = self.clone();
        g.layers.push(layer.clone());
        g
    }

    /// What identifies the ground in a cache key: its layers' digests.
    pub fn key(&self) -> String {
        self.layers
            .iter()
            .map(|d| d.digest.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A host file copied into the root folder before the step (so it is
/// part of the "before" walk and never shows as a change).
pub struct Input {
    pub from: PathBuf,
    /// Its path inside, relative to the root.
    pub to: String,
}

/// Runs `step` on `ground` and writes what it changed as a layer.
pub fn run_step(
    store: &Store,
    ground: &Ground,
    step: &Step,
    compression: Compression,
    epoch: u64,
) -> Result<StepLayer, SandboxError> {
    run_in(store, ground, step, &[], |root, walked| {
        let layer = diff::write_layer(store, root, walked, compression, epoch)?;
        Ok(StepLayer {
            layer,
            changes: walked.changes.len(),
            whiteouts: walked.whiteouts(),
        })
    })
}

/// Runs `step` on `ground` with `inputs` copied in; on success `take`
/// gets a folder holding what the step made or changed at their paths
/// (the root folder as the step left it, or the overlay's upper folder),
/// and what changed, before the scratch folder goes.
pub fn run_in<T>(
    store: &Store,
    ground: &Ground,
    step: &Step,
    inputs: &[Input],
    take: impl FnOnce(&Path, &diff::Walked) -> Result<T, SandboxError>,
) -> Result<T, SandboxError> {
    let workdir = step.workdir.clone().unwrap_or_else(|| "/".into());
    if !workdir.starts_with('/') || workdir.split('/').any(|c| c == "..") {
        return Err(SandboxError::Workdir(workdir));
    }
    let caller = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let ids = if caller.0 == 0 {
        // root needs no helper: the sandbox sees the host's low ids as
        // its own (apt drops to `_apt`, uid 42), still without any
        // privilege over the host's namespaces.
        IdMap {
            host_uid: 0,
            host_gid: 0,
            uid_range: Some(idmap::SubRange {
                start: 1,
                count: 65535,
            }),
            gid_range: Some(idmap::SubRange {
                start: 1,
                count: 65535,
            }),
        }
    } else {
        // newuidmap checks /etc/subuid against the account's name, not
        // against $USER.
        let name = nix::unistd::User::from_uid(caller.0.into())
            .ok()
            .flatten()
            .map(|u| u.name)
            .or_else(|| std::env::var("USER").ok());
        IdMap::for_caller(caller.0, caller.1, name.as_deref())
    };

    let scratch_parent = ground.scratch_parent.as_path();
    fs::create_dir_all(scratch_parent).map_err(|e| rootfs::io_err(scratch_parent, e))?;
    let scratch = Scratch(
        tempfile::Builder::new()
            .prefix("run-")
            .tempdir_in(scratch_parent)
            .map_err(|e| rootfs::io_err(scratch_parent, e))?
            .keep(),
    );
    let root = scratch.0.join("rootfs");
    fs::create_dir(&root).map_err(|e| rootfs::io_err(&root, e))?;
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755))
        .map_err(|e| rootfs::io_err(&root, e))?;
    let (mut view, owners, overlay) = match overlay_root(store, ground, &scratch.0, &root)? {
        Some((view, owners, o)) => (view, owners, Some(o)),
        None => (
            overlay::View::plain(&root),
            rootfs::unpack(store, &ground.layers, &root)?,
            None,
        ),
    };
    let read = |rel: &str| view.read(rel);
    let (uid, gid) = match step.user.as_deref() {
        None => (0, 0),
        Some(u) => resolve_user(u, &read("etc/passwd"), &read("etc/group"))?,
    };
    let home = home_of(uid, &read("etc/passwd"));
    for input in inputs {
        let to = view.checked(&input.to)?;
        fs::copy(&input.from, &to).map_err(|e| rootfs::io_err(&input.from, e))?;
    }

    // Mount points, made before the "before" walk so they never show as
    // changes.
    let mut binds = Vec::new();
    for dev in ["null", "zero", "random", "urandom", "tty"] {
        if let Some(target) = placeholder(&mut view, &format!("dev/{dev}"), false)? {
            binds.push(Bind {
                source: cstr(format!("/dev/{dev}"))?,
                target: cpath(&target)?,
                optional: dev == "tty",
            });
        }
    }
    let resolv = scratch.0.join("resolv.conf");
    let host_resolv = fs::read("/etc/resolv.conf").unwrap_or_default();
    fs::write(&resolv, host_resolv).map_err(|e| rootfs::io_err(&resolv, e))?;
    if let Some(target) = placeholder(&mut view, "etc/resolv.conf", false)? {
        binds.push(Bind {
            source: cpath(&resolv)?,
            target: cpath(&target)?,
            optional: false,
        });
    }
    let proc_dir = placeholder(&mut view, "proc", true)?.ok_or(SandboxError::Unsafe {
        path: "/proc".into(),
        why: "it is a link or a file in the image",
    })?;
    let tmp_dir = placeholder(&mut view, "tmp", true)?;
    let (user_mounts, mut skip, mount_owners) = mount_points(&mut view, &step.mounts)?;
    view.finish()?;

    let mut env = step_env(&ground.image_env, &step.env, &home);
    for (k, v) in &step.secret_env {
        env.retain(|e| e.split_once('=').is_none_or(|(ek, _)| ek != k));
        env.push(format!("{k}={v}"));
    }
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_owned();
    let program = step.command.first().cloned().unwrap_or_default();
    let candidates: Vec<String> = if program.contains('/') {
        vec![program.clone()]
    } else {
        path_var
            .split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| format!("{}/{program}", d.trim_end_matches('/')))
            .collect()
    };
    let prepared = Prepared {
        root: cpath(&root)?,
        proc_sys: cpath(&proc_dir.join("sys"))?,
        proc_dir: cpath(&proc_dir)?,
        tmp_dir: tmp_dir.as_deref().map(cpath).transpose()?,
        binds,
        candidates: candidates.into_iter().map(cstr).collect::<Result<_, _>>()?,
        argv: step
            .command
            .iter()
            .cloned()
            .map(cstr)
            .collect::<Result<_, _>>()?,
        envp: env.into_iter().map(cstr).collect::<Result<_, _>>()?,
        workdir,
        uid,
        gid,
        owners: owners
            .iter()
            .map(|o| Ok((cpath(&root.join(&o.rel))?, o.uid, o.gid, o.mode)))
            .chain(mount_owners.into_iter().map(Ok))
            .collect::<Result<_, SandboxError>>()?,
        mounts: user_mounts,
        root_path: root.clone(),
        // Mount points hold other file systems while the step runs.
        skip: {
            skip.extend(["proc".to_owned(), "tmp".to_owned()]);
            skip
        },
        hand_back: caller.0 != 0,
        timeout_secs: step
            .timeout
            .map_or(0, |t| u32::try_from(t.as_secs().max(1)).unwrap_or(u32::MAX)),
        overlay,
    };
    let open_new = |path: &Path| {
        fs::OpenOptions::new()
            .create_new(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| rootfs::io_err(path, e))
    };
    let mut log = open_new(&scratch.0.join("output.log"))?;
    let result = open_new(&scratch.0.join("result.json"))?;

    let exit = run::run(&prepared, &ids, &log, &result)?;
    let failed = |how: String, log: &mut fs::File| SandboxError::Failed {
        command: format!("[[run]] step `{}`", step.shown()),
        how,
        output: tail(log),
    };
    // A walk that failed says so whatever the step did (the "before"
    // walk failing means the step never ran).
    let walked = match diff::read_outcome(&result) {
        Ok(diff::Outcome::Failed(why)) => {
            return Err(SandboxError::Setup {
                stage: "walking the root folder".into(),
                why,
            })
        }
        Ok(diff::Outcome::Walked(walked)) => Ok(walked),
        Ok(diff::Outcome::TimedOut) => {
            let after = step.timeout.unwrap_or_default();
            return Err(failed(
                format!("timed out after {after:?} and was killed"),
                &mut log,
            ));
        }
        Err(e) => Err(e),
    };
    if exit != Exit::Code(0) {
        let how = match exit {
            Exit::Code(c) => format!("exited with status {c}"),
            Exit::Signal(s) => format!("was killed by signal {s}"),
        };
        return Err(failed(how, &mut log));
    }
    let wrote = match &prepared.overlay {
        Some(o) => o.upper.clone(),
        None => root,
    };
    take(&wrote, &walked?)
}

/// The step's root as an overlay over the ground's unpacked tree (made
/// in the store when missing): the view the parent prepares, the owners
/// to set and the overlay; `None` when the ground is empty, the
/// overlay is not wanted or the kernel does not allow it (see
/// [`overlay`]).
fn overlay_root(
    store: &Store,
    ground: &Ground,
    scratch: &Path,
    root: &Path,
) -> Result<Option<(overlay::View, Vec<rootfs::Owner>, run::Overlay)>, SandboxError> {
    let digests = ground.layers.iter().map(|d| &d.digest);
    let Some(chain) = crate::store::trees::chain_id(digests) else {
        return Ok(None);
    };
    let (upper, work) = (scratch.join("upper"), scratch.join("work"));
    let lower = crate::store::trees::tree_path(store.root(), chain.hex());
    let Some(options) = overlay::options(&lower, &upper, &work) else {
        return Ok(None);
    };
    if !overlay::wanted() || !overlay::supported(scratch) {
        return Ok(None);
    }
    let tree = store.tree_or_make(&chain, |dir| {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
            .map_err(|e| rootfs::io_err(dir, e))?;
        let owners = rootfs::unpack(store, &ground.layers, dir)?;
        serde_json::to_vec(&owners).map_err(|e| SandboxError::Setup {
            stage: "keeping the unpacked layers".into(),
            why: e.to_string(),
        })
    })?;
    let owners: Vec<rootfs::Owner> =
        serde_json::from_slice(&tree.value).map_err(|e| SandboxError::Setup {
            stage: format!("reading the unpacked layers' record {}", chain.hex()),
            why: e.to_string(),
        })?;
    for d in [&upper, &work] {
        fs::create_dir(d).map_err(|e| rootfs::io_err(d, e))?;
    }
    // The merged root shows the upper folder's mode: the image's.
    let mode = fs::metadata(&tree.path)
        .map_err(|e| rootfs::io_err(&tree.path, e))?
        .permissions();
    fs::set_permissions(&upper, mode).map_err(|e| rootfs::io_err(&upper, e))?;
    let view = overlay::View::overlay(root, &upper, &tree.path);
    let o = run::Overlay {
        options,
        upper,
        work,
        lower: tree.path,
    };
    Ok(Some((view, owners, o)))
}

/// A step's `user` as Docker reads `USER`: `NAME` or `UID`, optionally
/// `:GROUP` or `:GID`; names are looked up in the image's /etc/passwd
/// and /etc/group (as the step will see them); without a group, the
/// user's primary group from /etc/passwd, else 0.
fn resolve_user(user: &str, passwd: &[u8], group: &[u8]) -> Result<(u32, u32), SandboxError> {
    let fail = |why: String| SandboxError::User {
        user: user.to_owned(),
        why,
    };
    let (users, groups) = (table(passwd), table(group));
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let entry = match u.parse::<u32>() {
        Ok(id) => users.iter().find(|e| e.id == id),
        Err(_) => Some(users.iter().find(|e| e.name == u).ok_or_else(|| {
            fail(format!("no user `{u}` in the image's /etc/passwd (a step before may add it, or give UID[:GID])"))
        })?),
    };
    let uid = match u.parse::<u32>() {
        Ok(id) => id,
        Err(_) => entry.map(|e| e.id).unwrap_or_default(),
    };
    let gid = match g {
        None => entry.and_then(|e| e.gid).unwrap_or(0),
        Some(g) => match g.parse::<u32>() {
            Ok(id) => id,
            Err(_) => groups
                .iter()
                .find(|e| e.name == g)
                .map(|e| e.id)
                .ok_or_else(|| fail(format!("no group `{g}` in the image's /etc/group")))?,
        },
    };
    Ok((uid, gid))
}

/// A line of /etc/passwd or /etc/group, as far as a step needs it.
struct Row {
    name: String,
    id: u32,
    /// /etc/passwd's primary group.
    gid: Option<u32>,
    /// /etc/passwd's home folder.
    home: Option<String>,
}

/// The rows of /etc/passwd or /etc/group with a numeric id.
fn table(bytes: &[u8]) -> Vec<Row> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Row {
                name: f[0].to_owned(),
                id: f.get(2)?.parse().ok()?,
                gid: f.get(3).and_then(|g| g.parse().ok()),
                home: f.get(5).map(|h| (*h).to_owned()),
            })
        })
        .collect()
}

/// The home folder runc gives a process of `uid` when HOME is not set:
/// the user's /etc/passwd entry's, else `/`.
fn home_of(uid: u32, passwd: &[u8]) -> String {
    table(passwd)
        .into_iter()
        .find(|r| r.id == uid && r.home.is_some())
        .and_then(|r| r.home)
        .unwrap_or_else(|| "/".to_owned())
}

/// The step's environment: the image's, the host's proxy settings, then
/// the step's own (later wins); PATH always set, HOME the user's `home`
/// unless set (as docker's runc sets them).
fn step_env(image: &[String], step: &[(String, String)], home: &str) -> Vec<String> {
    let mut vars: Vec<(String, String)> = image
        .iter()
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let mut set = |k: &str, v: &str| match vars.iter_mut().find(|(vk, _)| vk == k) {
        Some(e) => e.1 = v.to_owned(),
        None => vars.push((k.to_owned(), v.to_owned())),
    };
    for k in PROXY_VARS {
        if let Ok(v) = std::env::var(k) {
            set(k, &v);
        }
    }
    for (k, v) in step {
        set(k, v);
    }
    if !vars.iter().any(|(k, _)| k == "PATH") {
        vars.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    if !vars.iter().any(|(k, _)| k == "HOME") {
        vars.push(("HOME".into(), home.to_owned()));
    }
    vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The step's own mounts, shallowest target first (so a mount inside
/// another lands on top of it); their mount points made before the
/// "before" walk, as BuildKit's stubs are, so neither they nor the folders
/// made for them show in the layer unless the step writes beside them.
/// Targets under /tmp are made inside the step's tmpfs instead. Returns
/// the mounts, the folders the walks skip, and the owners to set.
#[allow(clippy::type_complexity)]
fn mount_points(
    view: &mut overlay::View,
    mounts: &[Mount],
) -> Result<
    (
        Vec<run::UserMount>,
        Vec<String>,
        Vec<(CString, u32, u32, Option<u32>)>,
    ),
    SandboxError,
> {
    let mut sorted: Vec<&Mount> = mounts.iter().collect();
    sorted.sort_by_key(|m| m.target.split('/').filter(|c| !c.is_empty()).count());
    let mut out = Vec::new();
    let mut skip = Vec::new();
    let mut owners = Vec::new();
    for m in sorted {
        let rel = m.target.trim_matches('/').to_owned();
        if !m.target.starts_with('/') || rel.is_empty() || rel.split('/').any(|c| c == "..") {
            return Err(SandboxError::Unsafe {
                path: m.target.clone(),
                why: "a mount target must be an absolute path below / without `..`",
            });
        }
        let dir = match &m.source {
            MountSource::Bind { path, .. } => fs::metadata(path)
                .map_err(|e| rootfs::io_err(path, e))?
                .is_dir(),
            MountSource::Tmpfs { .. } => true,
        };
        let in_tmp = rel == "tmp" || rel.starts_with("tmp/");
        let target = match in_tmp {
            true => view.root.join(&rel),
            false => placeholder(view, &rel, dir)?.ok_or(SandboxError::Unsafe {
                path: m.target.clone(),
                why: "the image has a link there, or a file where the mount is a folder (or the other way round)",
            })?,
        };
        if dir && !in_tmp {
            skip.push(rel.clone());
        }
        let (source, readonly, data, locked) = match &m.source {
            MountSource::Bind { path, readonly } => {
                if let Some((uid, gid)) = m.owner {
                    owners.push((cpath(path)?, uid, gid, None));
                }
                (Some(cpath(path)?), *readonly, None, run::locked_flags(path))
            }
            MountSource::Tmpfs { size } => {
                let data = match size {
                    Some(n) => format!("mode=1777,size={n}"),
                    None => "mode=1777".to_owned(),
                };
                (None, false, Some(cstr(data)?), nix::mount::MsFlags::empty())
            }
        };
        out.push(run::UserMount {
            source,
            target: cpath(&target)?,
            readonly,
            data,
            locked,
            make: in_tmp.then_some(dir),
        });
    }
    Ok((out, skip, owners))
}

/// Makes sure `rel` exists in the root as a folder or an empty file to
/// mount on; its path as the step's root has it, `None` when the image
/// has a link there (nothing is mounted through a link).
fn placeholder(
    view: &mut overlay::View,
    rel: &str,
    dir: bool,
) -> Result<Option<PathBuf>, SandboxError> {
    let p = view.checked(rel)?;
    let seen = match p.strip_prefix(&view.write) {
        Ok(inside) => view.root.join(inside),
        Err(_) => p.clone(),
    };
    match view.metadata(&rel_of(&p, &view.write)) {
        Some(m) if m.is_dir() == dir && !m.file_type().is_symlink() => Ok(Some(seen)),
        Some(_) => Ok(None),
        None => {
            let r = match dir {
                true => fs::create_dir(&p),
                false => fs::write(&p, b""),
            };
            r.map_err(|e| rootfs::io_err(&p, e))?;
            Ok(Some(seen))
        }
    }
}

/// `p`'s path below `base`, as text.
fn rel_of(p: &Path, base: &Path) -> String {
    p.strip_prefix(base)
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn cstr(s: String) -> Result<CString, SandboxError> {
    CString::new(s).map_err(|e| SandboxError::Unsafe {
        path: String::from_utf8_lossy(&e.into_vec()).into_owned(),
        why: "it holds a NUL byte",
    })
}

fn cpath(p: &Path) -> Result<CString, SandboxError> {
    cstr(String::from_utf8_lossy(p.as_os_str().as_bytes()).into_owned())
}

fn tail(log: &mut fs::File) -> String {
    let len = log.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = log.seek(std::io::SeekFrom::Start(len.saturating_sub(OUTPUT_TAIL)));
    let mut s = String::new();
    let _ = log.read_to_string(&mut s);
    s.trim_end().to_owned()
}

/// The scratch folder; removed when dropped, on success and on failure.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        remove_tree(&self.0);
    }
}

/// Removes a tree the step may have left read-only folders in.
pub fn remove_tree(p: &Path) {
    crate::store::trees::remove_tree(p);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_as_runc_sets_it() {
        let passwd =
            b"root:x:0:0:root:/root:/bin/sh\nagent:x:1001:1002::/home/agent:/bin/sh\nbad:x:7\n";
        for (uid, home) in [(0, "/root"), (1001, "/home/agent"), (7, "/"), (4242, "/")] {
            assert_eq!(home_of(uid, passwd), home, "uid {uid}");
        }
        let env = step_env(&["HOME=/image".into()], &[], "/home/agent");
        assert!(env.contains(&"HOME=/image".to_owned()));
        let env = step_env(&[], &[], "/home/agent");
        assert!(env.contains(&"HOME=/home/agent".to_owned()));
    }

    #[test]
    fn users_as_docker_reads_them() {
        let passwd = b"root:x:0:0:root:/root:/bin/sh\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\nagent:x:1001:1002::/home/agent:/bin/sh\n";
        let group = b"root:x:0:\nstaff:x:50:\nagent:x:1002:\n";
        for (user, want) in [
            ("agent", Ok((1001, 1002))),
            ("agent:staff", Ok((1001, 50))),
            ("agent:7", Ok((1001, 7))),
            ("1001", Ok((1001, 1002))),
            ("4000", Ok((4000, 0))),
            ("4000:4000", Ok((4000, 4000))),
            ("_apt", Ok((42, 65534))),
            ("nobody", Err("no user `nobody`")),
            ("agent:wheel", Err("no group `wheel`")),
        ] {
            let got = resolve_user(user, passwd, group).map_err(|e| e.to_string());
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{user}"),
                (Err(g), Err(w)) => assert!(g.contains(w), "{user}: {g}"),
                (g, w) => panic!("{user}: got {g:?}, want {w:?}"),
            }
        }
    }
}
