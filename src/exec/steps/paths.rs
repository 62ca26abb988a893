//! `RUN mkdir` / `chown` / `chmod` done natively: the layer the sandbox
//! would have written for the line, without running it.
//!
//! The ground (the stage's layers) is unpacked into a scratch folder in
//! the store, as the sandbox unpacks it, and the operations are applied
//! to a record of the entries they touch, never to the folder: the
//! folder only answers what exists, its kind, mode and size, and gives
//! the bytes of files re-emitted. Owners come from the unpack (they are
//! not set on the host), so whoever runs hoist reads what the sandbox's
//! root would.
//!
//! What goes into the layer is what the sandbox's diff
//! ([`crate::sandbox::diff`]) finds after the command: every entry whose
//! kind, mode, owner, size, mtime or ctime changed. So:
//!
//! - a folder `mkdir` makes, and the folder it was made in (its mtime
//!   changed), unless that is `/`, which a layer does not list;
//! - every entry `chown` or `chmod` was applied to, even when its owner
//!   or mode stayed the same (the call changes its ctime); with `-R`,
//!   everything under the path, links included for `chown` (GNU and
//!   busybox `chown -R` change the link, not its target), links left out
//!   for `chmod` (which never changes a link);
//! - files with their contents, every mtime at `SOURCE_DATE_EPOCH`, as
//!   the diff's layer has them.
//!
//! Where the command would not do exactly that, or would fail, this
//! says "run it in the sandbox" ([`PathsLayer::Sandbox`]) instead of
//! guessing: a link on the way to a path or at it, a path that does not
//! exist (the command's own error is the one to show), an owner name the
//! image does not have, a file with several hard links (changing one
//! changes them all), setuid/setgid files under `chown` (the kernel
//! clears those bits) and folders under `chmod` (GNU keeps those bits
//! on folders, busybox does not), a folder made in a setgid folder, and
//! the sandbox's own mount points (`/proc`, `/tmp`, `/dev`, `/sys`,
//! `/etc/resolv.conf`).
//!
//! The caller uses this only for a RUN as root: new folders belong to
//! root, and a user other than root could not `chown`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::exec::BuildError;
use crate::graph::native::{ModeSpec, NativeOp, UMASK};
use crate::layer::{Compression, EntryMeta, ImagePath, Layer, LayerWriter};
use crate::sandbox::Ground;
use crate::store::Store;

/// What [`paths_layer`] made of the operations.
// One per RUN, moved once: the layer stays inline for the caller's match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum PathsLayer {
    /// The layer the command would leave.
    Native(Layer),
    /// The command must run in the sandbox: `why` says what hoist cannot
    /// do exactly (or what would make the command fail).
    Sandbox { why: String },
}

/// Writes the layer `ops` (mkdir, chown, chmod, in order) leave on
/// `ground`; relative paths resolve against `workdir` (absolute).
pub fn paths_layer(
    store: &Store,
    ground: &Ground,
    ops: &[NativeOp],
    workdir: &str,
    compression: Compression,
    epoch: u64,
) -> Result<PathsLayer, BuildError> {
    super::with_unpacked(store, ground, "paths-", |(root, owners)| {
        let mut tree = Tree {
            root,
            owners: owners
                .into_iter()
                .map(|o| (o.rel, (o.uid, o.gid, o.mode)))
                .collect(),
            nodes: BTreeMap::new(),
            changed: BTreeSet::new(),
        };
        match tree.apply_all(ops, workdir) {
            Ok(()) => tree
                .write(store, compression, epoch)
                .map(PathsLayer::Native),
            Err(Stop::Sandbox(why)) => Ok(PathsLayer::Sandbox { why }),
            Err(Stop::Failed(e)) => Err(e),
        }
    })
}

/// Why the native path stopped.
enum Stop {
    Sandbox(String),
    Failed(BuildError),
}

impl From<BuildError> for Stop {
    fn from(e: BuildError) -> Stop {
        Stop::Failed(e)
    }
}

fn sandbox<T>(why: String) -> Result<T, Stop> {
    Err(Stop::Sandbox(why))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink(String),
    /// Devices, fifos, sockets: a layer leaves them out.
    Other,
}

/// An entry as the command leaves it.
#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    nlink: u64,
    /// Made by the operations (not in the unpacked folder).
    new: bool,
}

/// The unpacked ground and what the operations did to it.
struct Tree<'a> {
    root: &'a Path,
    /// Owners (and setuid/setgid modes) the unpack did not set on the
    /// host; an entry not here is root's.
    owners: HashMap<String, (u32, u32, Option<u32>)>,
    /// Every entry looked at, as it is now.
    nodes: BTreeMap<String, Node>,
    /// The entries the layer holds.
    changed: BTreeSet<String>,
}

/// Paths that are the sandbox's mount points or files while a step runs.
fn mount_point(rel: &str) -> bool {
    let first = rel.split('/').next().unwrap_or_default();
    ["proc", "tmp", "dev", "sys"].contains(&first) || rel == "etc/resolv.conf"
}

impl Tree<'_> {
    fn apply_all(&mut self, ops: &[NativeOp], workdir: &str) -> Result<(), Stop> {
        let wd = self.resolve("/", workdir)?;
        if !wd.is_empty() {
            self.real_dirs(&wd, true, "the workdir")?;
        }
        for op in ops {
            match op {
                NativeOp::Mkdir {
                    parents,
                    mode,
                    paths,
                } => {
                    for p in paths {
                        let rel = self.resolve(&wd, p)?;
                        self.mkdir(&rel, *parents, *mode)?;
                    }
                }
                NativeOp::Chown {
                    owner,
                    recursive,
                    paths,
                } => {
                    let ids = self.owner(owner)?;
                    for p in paths {
                        let rel = self.resolve(&wd, p)?;
                        self.top(&rel, "chown")?;
                        self.chown(&rel, ids, *recursive)?;
                    }
                }
                NativeOp::Chmod {
                    mode,
                    recursive,
                    paths,
                } => {
                    for p in paths {
                        let rel = self.resolve(&wd, p)?;
                        self.top(&rel, "chmod")?;
                        self.chmod(&rel, mode, *recursive)?;
                    }
                }
                other => return sandbox(format!("{other:?} is not a path operation")),
            }
        }
        Ok(())
    }

    /// `p` made absolute against `wd` (relative to the root, `""` for
    /// `/`).
    fn resolve(&self, wd: &str, p: &str) -> Result<String, Stop> {
        let full = match p.starts_with('/') {
            true => p.to_owned(),
            false => format!("/{wd}/{p}"),
        };
        let mut parts = Vec::new();
        for c in full.split('/') {
            match c {
                "" | "." => {}
                ".." => return sandbox(format!("`{p}` climbs with `..`")),
                c => parts.push(c),
            }
        }
        let rel = parts.join("/");
        if mount_point(&rel) {
            return sandbox(format!(
                "/{rel} is where the sandbox mounts its own files while a step runs"
            ));
        }
        Ok(rel)
    }

    /// Checks that `rel` (when `itself`) and every folder above it are
    /// real folders, not links.
    fn real_dirs(&mut self, rel: &str, itself: bool, what: &str) -> Result<(), Stop> {
        let parts: Vec<&str> = rel.split('/').collect();
        let upto = if itself { parts.len() } else { parts.len() - 1 };
        for i in 1..=upto {
            let prefix = parts[..i].join("/");
            match self.get(&prefix)? {
                Some(n) if n.kind == Kind::Dir => {}
                Some(n) if matches!(n.kind, Kind::Symlink(_)) => {
                    return sandbox(format!("/{prefix}, on the way to {what}, is a link"))
                }
                Some(_) => {
                    return sandbox(format!("/{prefix}, on the way to {what}, is not a folder"))
                }
                None => return sandbox(format!("/{prefix}, on the way to {what}, does not exist")),
            }
        }
        Ok(())
    }

    /// The entry at `rel` as the operations left it so far.
    fn get(&mut self, rel: &str) -> Result<Option<Node>, Stop> {
        if let Some(n) = self.nodes.get(rel) {
            return Ok(Some(n.clone()));
        }
        let p = self.root.join(rel);
        let m = match fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(BuildError::ReadFile { path: p, source }.into()),
        };
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            Kind::File
        } else if ft.is_symlink() {
            let t = fs::read_link(&p).map_err(|source| BuildError::ReadFile {
                path: p.clone(),
                source,
            })?;
            match t.to_str() {
                Some(t) => Kind::Symlink(t.to_owned()),
                None => return sandbox(format!("/{rel} links to a name that is not UTF-8")),
            }
        } else {
            Kind::Other
        };
        let (uid, gid, special) = self.owners.get(rel).copied().unwrap_or((0, 0, None));
        let node = Node {
            mode: special.unwrap_or(m.mode() & 0o7777),
            size: if kind == Kind::File { m.size() } else { 0 },
            kind,
            uid,
            gid,
            nlink: m.nlink(),
            new: false,
        };
        self.nodes.insert(rel.to_owned(), node.clone());
        Ok(Some(node))
    }

    /// The names in folder `rel`, as the operations left it.
    fn children(&self, rel: &str) -> Result<Vec<String>, Stop> {
        let join = |name: &str| match rel {
            "" => name.to_owned(),
            _ => format!("{rel}/{name}"),
        };
        let mut out = BTreeSet::new();
        let on_disk = self.nodes.get(rel).is_none_or(|n| !n.new);
        if on_disk {
            let p = self.root.join(rel);
            let rd = fs::read_dir(&p).map_err(|source| BuildError::ReadFile {
                path: p.clone(),
                source,
            })?;
            for e in rd {
                let e = e.map_err(|source| BuildError::ReadFile {
                    path: p.clone(),
                    source,
                })?;
                match e.file_name().to_str() {
                    Some(n) => out.insert(join(n)),
                    None => return sandbox(format!("/{rel} holds a name that is not UTF-8")),
                };
            }
        }
        let under = match rel {
            "" => String::new(),
            _ => format!("{rel}/"),
        };
        for (k, n) in self.nodes.range(under.clone()..) {
            if !k.starts_with(&under) {
                break;
            }
            if n.new && !k[under.len()..].contains('/') {
                out.insert(k.clone());
            }
        }
        Ok(out.into_iter().collect())
    }

    fn set(&mut self, rel: &str, node: Node) {
        self.nodes.insert(rel.to_owned(), node);
        self.changed.insert(rel.to_owned());
    }

    /// `mkdir [-p] [-m MODE] rel`.
    fn mkdir(&mut self, rel: &str, parents: bool, mode: Option<u32>) -> Result<(), Stop> {
        if rel.is_empty() {
            return match parents {
                true => Ok(()),
                false => sandbox("mkdir / fails: it exists".into()),
            };
        }
        let parts: Vec<&str> = rel.split('/').collect();
        for i in 1..=parts.len() {
            let prefix = parts[..i].join("/");
            let last = i == parts.len();
            match self.get(&prefix)? {
                Some(n) if n.kind == Kind::Dir => {
                    if last && !parents {
                        return sandbox(format!("mkdir /{prefix} fails: it exists"));
                    }
                }
                Some(n) if matches!(n.kind, Kind::Symlink(_)) => {
                    return sandbox(format!("/{prefix} is a link; mkdir would follow it"))
                }
                Some(_) => {
                    return sandbox(format!("mkdir /{rel} fails: /{prefix} is not a folder"))
                }
                None => {
                    if !last && !parents {
                        return sandbox(format!("mkdir /{rel} fails: /{prefix} does not exist"));
                    }
                    let up = parts[..i - 1].join("/");
                    if !up.is_empty() {
                        let Some(p) = self.get(&up)? else {
                            return sandbox(format!("/{up} vanished"));
                        };
                        if p.mode & 0o2000 != 0 {
                            return sandbox(format!(
                                "/{up} is setgid: a folder made in it takes its group"
                            ));
                        }
                        // Its mtime changes.
                        self.set(&up, p);
                    }
                    let dir_mode = match (last, mode) {
                        (true, Some(m)) => m,
                        // a=rwx less the umask (GNU adds u+wx for -p's
                        // parents: already there).
                        _ => 0o777 & !UMASK,
                    };
                    self.set(
                        &prefix,
                        Node {
                            kind: Kind::Dir,
                            mode: dir_mode,
                            uid: 0,
                            gid: 0,
                            size: 0,
                            nlink: 2,
                            new: true,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Checks a path `chown`/`chmod` is given: it exists, it is not `/`,
    /// no link on the way or at it.
    fn top(&mut self, rel: &str, cmd: &str) -> Result<(), Stop> {
        if rel.is_empty() {
            return sandbox(format!("{cmd} on / changes an entry a layer does not hold"));
        }
        self.real_dirs(rel, false, &format!("/{rel}"))?;
        match self.get(rel)? {
            None => sandbox(format!("{cmd} /{rel} fails: it does not exist")),
            Some(n) if matches!(n.kind, Kind::Symlink(_)) => {
                sandbox(format!("/{rel} is a link; {cmd} would follow it"))
            }
            Some(_) => Ok(()),
        }
    }

    /// `USER`, `USER:GROUP`, `:GROUP` to ids, names read from the
    /// image's /etc/passwd and /etc/group (as chown reads them: the name
    /// first, then a number).
    fn owner(&mut self, spec: &str) -> Result<(Option<u32>, Option<u32>), Stop> {
        let (u, g) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let uid = match u {
            "" => None,
            u => Some(self.account_id("etc/passwd", u)?),
        };
        let gid = match g {
            None => None,
            Some(g) => Some(self.account_id("etc/group", g)?),
        };
        Ok((uid, gid))
    }

    /// The id of `name` in the image's passwd or group file.
    fn account_id(&mut self, file: &str, name: &str) -> Result<u32, Stop> {
        let bytes = match self.get(file)? {
            Some(n) if n.kind == Kind::File && self.real_dirs(file, false, file).is_ok() => {
                let p = self.root.join(file);
                fs::read(&p).map_err(|source| BuildError::ReadFile { path: p, source })?
            }
            _ => Vec::new(),
        };
        let text = String::from_utf8_lossy(&bytes);
        let by_name = text.lines().find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some(name)).then(|| f.nth(1).and_then(|id| id.parse::<u32>().ok()))?
        });
        match by_name.or_else(|| name.parse::<u32>().ok()) {
            Some(id) => Ok(id),
            None => sandbox(format!(
                "no `{name}` in the image's /{file}: chown would fail"
            )),
        }
    }

    fn chown(
        &mut self,
        rel: &str,
        (uid, gid): (Option<u32>, Option<u32>),
        recursive: bool,
    ) -> Result<(), Stop> {
        let Some(mut n) = self.get(rel)? else {
            return sandbox(format!("/{rel} vanished"));
        };
        match n.kind {
            Kind::Other => return Ok(()),
            Kind::File if n.mode & 0o6000 != 0 => {
                return sandbox(format!(
                    "/{rel} is setuid or setgid; chown clears those bits as the kernel decides"
                ))
            }
            Kind::File if n.nlink > 1 => {
                return sandbox(format!(
                    "/{rel} has other hard links, which chown changes too"
                ))
            }
            _ => {}
        }
        n.uid = uid.unwrap_or(n.uid);
        n.gid = gid.unwrap_or(n.gid);
        let dir = n.kind == Kind::Dir;
        self.set(rel, n);
        if recursive && dir {
            for child in self.children(rel)? {
                self.chown(&child, (uid, gid), true)?;
            }
        }
        Ok(())
    }

    fn chmod(&mut self, rel: &str, mode: &ModeSpec, recursive: bool) -> Result<(), Stop> {
        let Some(mut n) = self.get(rel)? else {
            return sandbox(format!("/{rel} vanished"));
        };
        match n.kind {
            // chmod never changes a link; -R passes them by.
            Kind::Symlink(_) | Kind::Other => return Ok(()),
            Kind::Dir if n.mode & 0o6000 != 0 => {
                return sandbox(format!(
                    "/{rel} is a setuid or setgid folder, which GNU and busybox chmod treat differently"
                ))
            }
            Kind::File if n.nlink > 1 => {
                return sandbox(format!(
                    "/{rel} has other hard links, which chmod changes too"
                ))
            }
            _ => {}
        }
        let dir = n.kind == Kind::Dir;
        n.mode = mode.apply(n.mode, dir);
        self.set(rel, n);
        if recursive && dir {
            for child in self.children(rel)? {
                self.chmod(&child, mode, true)?;
            }
        }
        Ok(())
    }

    /// The changed entries as a layer, in path order.
    fn write(
        &self,
        store: &Store,
        compression: Compression,
        epoch: u64,
    ) -> Result<Layer, BuildError> {
        let mut w = LayerWriter::new(store, compression, epoch)?;
        for rel in &self.changed {
            let Some(n) = self.nodes.get(rel) else {
                continue;
            };
            let path = ImagePath::new(rel).map_err(|_| BuildError::Workdir(format!("/{rel}")))?;
            let meta = EntryMeta {
                mode: n.mode,
                uid: n.uid.into(),
                gid: n.gid.into(),
            };
            match &n.kind {
                Kind::Dir => w.dir(&path, meta)?,
                Kind::Symlink(t) => w.symlink(&path, t, meta)?,
                Kind::File => {
                    let p: PathBuf = self.root.join(rel);
                    let mut f = fs::File::open(&p).map_err(|source| BuildError::ReadFile {
                        path: p.clone(),
                        source,
                    })?;
                    w.file(&path, meta, n.size, &mut f)?;
                }
                Kind::Other => {}
            }
        }
        Ok(w.finish()?)
    }
}

#[cfg(test)]
mod tests {
    //! The same command lines natively and in the real sandbox, on the
    //! Alpine (busybox) and Debian (GNU coreutils) test bases, over a
    //! layer made in the sandbox first: the two layers must hold the same
    //! entries, byte for byte.

    use super::*;
    use crate::frontend::dockerfile::instructions::CommandLine;
    use crate::frontend::dockerfile::native::recognise;
    use crate::image::Platform;
    use crate::layer::compress::decompress;
    use crate::layer::reader::{EntryKind, Flow, Item, LayerReader};
    use crate::sandbox::{run_step, Step};
    use sha2::{Digest as _, Sha256};

    /// The test bases (scripts/make-bases), as the integration tests find
    /// them.
    fn base(name: &str) -> PathBuf {
        let dir = std::env::var_os("HOIST_BASES")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bases"));
        let p = dir.join(name);
        assert!(
            p.exists(),
            "test base {} is missing: run scripts/make-bases with HOIST_ALPINE_DIR set",
            p.display()
        );
        p
    }

    fn ground(store: &Store, archive: &str) -> Ground {
        let t = crate::transport::recognise(&format!("oci-archive:{}", base(archive).display()))
            .expect("a base archive");
        let b = crate::transport::load_base(&t, &Platform::host(), store).expect("the base loads");
        let env = b
            .config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default();
        Ground {
            layers: b.layers,
            image_env: env,
            scratch_parent: store.root().join("sandbox"),
        }
    }

    fn sh(line: &str, workdir: &str) -> Step {
        Step {
            command: vec!["/bin/sh".into(), "-c".into(), line.into()],
            env: Vec::new(),
            workdir: Some(workdir.into()),
            user: None,
            timeout: None,
            mounts: Vec::new(),
            secret_env: Vec::new(),
        }
    }

    /// Runs `line` in the sandbox; a sandbox that cannot run fails the
    /// test with its reason.
    fn in_sandbox(store: &Store, ground: &Ground, line: &str, workdir: &str) -> Layer {
        run_step(store, ground, &sh(line, workdir), Compression::Gzip, 0)
            .unwrap_or_else(|e| panic!("the sandbox must run `{line}` for this test: {e}"))
            .layer
    }

    /// A layer's entries: path, kind, mode, uid, gid, size, link target,
    /// sha256 of the content.
    fn entries(store: &Store, layer: &Layer) -> Vec<String> {
        let blob = store.open_blob(&layer.descriptor.digest).expect("blob");
        let (_, stream) = decompress(blob).expect("decompress");
        let mut out = Vec::new();
        LayerReader::new(stream)
            .for_each(
                |item, content| -> Result<Flow, crate::layer::reader::LayerReadError> {
                    let line = match item {
                        Item::Entry(e) => {
                            let m = e.meta;
                            let kind = match e.kind {
                                EntryKind::Dir => "dir".to_owned(),
                                EntryKind::File { size } => {
                                    let mut bytes = Vec::new();
                                    content.read_to_end(&mut bytes).expect("content");
                                    format!("file {size} {}", hex::encode(Sha256::digest(&bytes)))
                                }
                                EntryKind::Symlink { target } => format!("symlink -> {target}"),
                                EntryKind::Hardlink { target } => format!("hardlink -> {target}"),
                                EntryKind::Other => "other".to_owned(),
                            };
                            format!("{} {kind} {:o} {}:{}", e.path, m.mode, m.uid, m.gid)
                        }
                        other => format!("{other:?}"),
                    };
                    out.push(line);
                    Ok(Flow::Continue)
                },
            )
            .expect("the layer reads");
        out
    }

    /// What the lines below start from: a tree with a file, a private
    /// file, a link, a folder owned by 5:5, a group-writable folder and
    /// file, an empty folder and a script.
    const SETUP: &str = "mkdir -p /srv/tree/sub /srv/gw /srv/d /srv/deep \
        && echo hello > /srv/tree/f && echo x > /srv/tree/sub/g && chmod 600 /srv/tree/sub/g \
        && ln -s f /srv/tree/link && chown 5:5 /srv/tree/sub \
        && chmod 775 /srv/gw && echo w > /srv/gw/w && chmod 664 /srv/gw/w \
        && echo '#!/bin/sh' > /srv/x.sh && chmod 644 /srv/x.sh";

    /// (line, workdir)
    const LINES: &[(&str, &str)] = &[
        ("mkdir -p a/b/c", "/srv"),
        ("mkdir -p /opt/new/deeper", "/"),
        ("mkdir -m 700 /srv/private", "/"),
        ("mkdir -p -m 700 /srv/deep/x/y", "/"),
        ("mkdir -p -m 700 /srv/d", "/"),
        ("mkdir one two && mkdir one/three", "/srv/d"),
        ("chown -R 1000:1000 /srv/tree", "/"),
        ("chown -R daemon:daemon tree", "/srv"),
        ("chown daemon /srv/d /srv/x.sh", "/"),
        ("chown :daemon /srv/tree/f", "/"),
        ("chown root:root /srv/d", "/"),
        ("mkdir -p /app/data && chown -R daemon:daemon /app", "/"),
        ("chmod 755 /srv/x.sh", "/"),
        ("chmod -R g+w /srv/gw", "/"),
        ("chmod -R g+w /srv/tree", "/"),
        ("chmod u+x /srv/x.sh", "/"),
        ("chmod +x /srv/x.sh", "/"),
        ("chmod -R a+rX /srv/tree", "/"),
        ("chmod -R go-rwx,u=rwX /srv/tree", "/"),
        ("chmod 1777 /srv/d && chmod a-t /srv/d", "/"),
        ("chmod +t /srv/d", "/"),
        ("chmod u+s,g+s /srv/x.sh", "/"),
        (
            "set -e; mkdir -p /srv/app && chown daemon:daemon /srv/app && chmod 750 /srv/app",
            "/",
        ),
    ];

    fn same_as_the_sandbox(archive: &str) {
        assert_eq!(
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022)).bits(),
            0o022,
            "the sandbox takes hoist's umask: run the tests with umask 022, as RUN has it"
        );
        let tmp = tempfile::tempdir().expect("temp dir");
        let store = Store::open(tmp.path().join("store")).expect("store");
        let base = ground(&store, archive);
        let below = in_sandbox(&store, &base, SETUP, "/");
        let ground = base.with(&below.descriptor);
        let mut failures = Vec::new();
        for (line, workdir) in LINES {
            let cmd = CommandLine {
                args: vec![line.to_string()],
                shell: true,
                heredocs: Vec::new(),
            };
            let ops = recognise(&cmd, &[]).unwrap_or_else(|| panic!("`{line}` is recognised"));
            let native = match paths_layer(&store, &ground, &ops, workdir, Compression::Gzip, 0) {
                Ok(PathsLayer::Native(l)) => l,
                Ok(PathsLayer::Sandbox { why }) => panic!("`{line}` went to the sandbox: {why}"),
                Err(e) => panic!("`{line}`: {e}"),
            };
            let ran = in_sandbox(&store, &ground, line, workdir);
            let (n, r) = (entries(&store, &native), entries(&store, &ran));
            if n != r || native.diff_id != ran.diff_id {
                failures.push(format!(
                    "{archive}: `{line}` (in {workdir})\n  native:  {n:#?}\n  sandbox: {r:#?}"
                ));
            }
            assert!(
                !r.is_empty() || line.contains("-p -m 700 /srv/d"),
                "`{line}` changed nothing in the sandbox"
            );
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn paths_natively_as_in_the_sandbox_on_alpine() {
        same_as_the_sandbox("alpine.oci.tar");
    }

    #[test]
    fn paths_natively_as_in_the_sandbox_on_debian() {
        same_as_the_sandbox("debian.oci.tar");
    }

    /// What hoist does not do natively goes to the sandbox, with why.
    #[test]
    fn the_sandbox_where_native_would_not_be_exact() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let store = Store::open(tmp.path().join("store")).expect("store");
        let base = ground(&store, "alpine.oci.tar");
        let below = in_sandbox(&store, &base, SETUP, "/");
        let ground = base.with(&below.descriptor);
        for (line, workdir, why) in [
            ("chown nosuch /srv/d", "/", "no `nosuch`"),
            ("chown daemon:nosuch /srv/d", "/", "no `nosuch`"),
            ("mkdir /srv/d", "/", "exists"),
            ("mkdir /srv/none/x", "/", "does not exist"),
            ("mkdir /srv/x.sh/y", "/", "not a folder"),
            ("chmod 755 /srv/tree/link", "/", "is a link"),
            ("chown daemon /srv/tree/link/x", "/", "is a link"),
            ("chmod 755 /srv/missing", "/", "does not exist"),
            ("mkdir -p /tmp/x", "/", "mounts"),
            ("chmod 755 x.sh", "/srv/nowhere", "does not exist"),
            ("chown -R daemon /", "/", "on /"),
        ] {
            let cmd = CommandLine {
                args: vec![line.to_string()],
                shell: true,
                heredocs: Vec::new(),
            };
            let ops = recognise(&cmd, &[]).unwrap_or_else(|| panic!("`{line}` is recognised"));
            match paths_layer(&store, &ground, &ops, workdir, Compression::Gzip, 0) {
                Ok(PathsLayer::Sandbox { why: got }) => {
                    assert!(got.contains(why), "`{line}`: {got}")
                }
                Ok(PathsLayer::Native(_)) => panic!("`{line}` was done natively"),
                Err(e) => panic!("`{line}`: {e}"),
            }
        }
    }
}
