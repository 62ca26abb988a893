//! `RUN groupadd/useradd/addgroup/adduser ...` done natively: the layer
//! hoist writes is the one the command would have left, entry for entry
//! (the tests run the command in the sandbox and compare the two).
//!
//! What "the command would have left" means depends on the tool in the
//! base, so the ground's own files decide ([`Tools`]): shadow's
//! `groupadd`/`useradd` and Debian's perl `adduser` are recognised by their
//! dpkg versions, busybox's `adduser`/`addgroup` by the applet links and
//! Alpine's apk database. Only versions whose behaviour is modelled here
//! (and tested against the real tool) are done natively; any other base,
//! any setting hoist does not model (`/etc/adduser.conf` settings, a
//! `CREATE_MAIL_SPOOL=yes`, lastlog records to reset, an `adduser.local`
//! hook ...), and any command the tool would refuse (a name in use, a
//! missing group) answers `None`: the caller runs the command in the
//! sandbox, which gives the real result or the real error.
//!
//! Each tool is modelled as the programs it runs: Debian's `adduser` runs
//! `groupadd`, `useradd`, `chfn` and `gpasswd`, each of which rewrites the
//! files it changes and leaves the previous version as `FILE-` (shadow's
//! commonio; busybox's `update_passwd` likewise). Ids are allocated by
//! each tool's own rule: shadow picks system ids downward from the top of
//! `SYS_UID_MAX` (below the lowest one in use), others upward; adduser and
//! busybox take the first free id from the bottom of their ranges.
//!
//! The password-change day in `/etc/shadow` is `SOURCE_DATE_EPOCH / 86400`
//! (`epoch`): what shadow's tools write when `SOURCE_DATE_EPOCH` is in
//! their environment (and, for 0, an empty field, as they do). busybox
//! reads the clock instead; hoist still writes the epoch's day, so the
//! layer is reproducible: that field is the one difference from running
//! busybox, and the tests check it is the only one.

/// A [`tree::Odd`] naming the line that found it.
macro_rules! odd {
    () => {
        $crate::exec::steps::accounts::tree::Odd {
            at: concat!(file!(), ":", line!()),
        }
    };
}

mod busybox;
mod db;
mod debian;
mod shadow;
mod tree;

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use crate::exec::BuildError;
use crate::graph::native::{AccountOp, Flavour, Program};
use crate::layer::{Compression, EntryMeta, ImagePath, Layer, LayerWriter};
use crate::sandbox::Ground;
use crate::store::Store;

use tree::{Kind, Odd, Tree};

/// shadow's version whose `groupadd`/`useradd`/`chfn`/`gpasswd` are
/// modelled (Debian 12's `passwd` package).
const SHADOW_VERSIONS: &[&str] = &["1:4.13+dfsg1-1"];
/// Debian's `adduser` versions modelled (Debian 12).
const ADDUSER_VERSIONS: &[&str] = &["3.134"];
/// busybox versions modelled (Alpine 3.19 to 3.21 ship 1.36.1).
const BUSYBOX_VERSIONS: &[&str] = &["1.36.1-"];

/// Writes the layer that running `ops` in order on `ground` would leave,
/// or `None` when that cannot be done exactly here (see the module docs):
/// then the caller runs the commands in the sandbox.
pub fn accounts_layer(
    store: &Store,
    ground: &Ground,
    ops: &[AccountOp],
    compression: Compression,
    epoch: u64,
) -> Result<Option<Layer>, BuildError> {
    Ok(native(store, ground, ops, compression, epoch)?.ok())
}

/// The cache key of the layer [`accounts_layer`] writes for `ops` on
/// `ground`: the ground's layers, the commands, and what else the result
/// depends on (busybox reads `$SHELL` from the environment).
pub fn key(ground: &Ground, ops: &[AccountOp], compression: Compression, epoch: u64) -> String {
    let mut text = format!(
        "hoist accounts layer v1\n{}\n{compression:?} {epoch}\n",
        ground.key()
    );
    for e in ground.image_env.iter().filter(|e| e.starts_with("SHELL=")) {
        text.push_str(e);
        text.push('\n');
    }
    for op in ops {
        text.push_str(&shell_words::join(&op.argv));
        text.push('\n');
    }
    crate::digest::Digest::of(text.as_bytes()).hex().to_owned()
}

/// [`accounts_layer`], saying where hoist gave up when it does.
fn native(
    store: &Store,
    ground: &Ground,
    ops: &[AccountOp],
    compression: Compression,
    epoch: u64,
) -> Result<Result<Layer, Odd>, BuildError> {
    let parent = store.root().join("sandbox");
    fs::create_dir_all(&parent).map_err(|source| BuildError::WriteFile {
        path: parent.clone(),
        source,
    })?;
    let scratch = tempfile::Builder::new()
        .prefix("accounts-")
        .tempdir_in(&parent)
        .map_err(|source| BuildError::WriteFile {
            path: parent.clone(),
            source,
        })?;
    let root = scratch.path().join("rootfs");
    let result = (|| {
        if let Some(done) = attempt(store, ground, ops, compression, epoch, &root, Some(&SCOPE))? {
            return Ok(done);
        }
        crate::sandbox::remove_tree(&root);
        Ok(attempt(store, ground, ops, compression, epoch, &root, None)?.unwrap_or(Err(odd!())))
    })();
    crate::sandbox::remove_tree(scratch.path());
    result
}

/// What the modelled tools read (with the folders on the way), so that a
/// first attempt unpacks only these: a Debian base is 80 MB of files the
/// tools never open, and writing them is most of the step's time. The
/// tree notices a read outside them ([`Tree::outside`]: a home folder
/// elsewhere, say), and the step starts again on the whole ground.
/// `lib` and `sbin` are here for the links merged-/usr bases have there
/// (`/lib/apk/db/installed` and `/sbin/pam_tally2` are read through
/// them); where they are folders they are small.
const SCOPE: [&str; 15] = [
    "etc",
    "home",
    "root",
    "run",
    "lib",
    "sbin",
    "usr/lib/apk",
    "usr/sbin",
    "usr/local",
    "usr/bin/chfn",
    "usr/bin/gpasswd",
    "var/lib/dpkg/status",
    "var/log/faillog",
    "var/log/lastlog",
    "var/mail",
];

/// One try at [`native`] in `root` (made, empty), on the ground's files
/// under `scope` or on all of them: `None` when the part unpacked was not
/// enough to tell (a link on the way to it, a read outside it).
fn attempt(
    store: &Store,
    ground: &Ground,
    ops: &[AccountOp],
    compression: Compression,
    epoch: u64,
    root: &Path,
    scope: Option<&[&str]>,
) -> Result<Option<Result<Layer, Odd>>, BuildError> {
    fs::create_dir(root).map_err(|source| BuildError::WriteFile {
        path: root.to_owned(),
        source,
    })?;
    let mut tree = match scope {
        Some(scope) => {
            let wanted: Vec<String> = scope.iter().map(|s| (*s).to_owned()).collect();
            let Some(owners) =
                crate::sandbox::rootfs::unpack_paths(store, &ground.layers, root, &wanted)?
            else {
                return Ok(None);
            };
            Tree::partial(root.to_owned(), owner_map(owners), scope)
        }
        None => {
            let owners = crate::sandbox::rootfs::unpack(store, &ground.layers, root)?;
            Tree::new(root.to_owned(), owner_map(owners))
        }
    };
    let applied = apply(&mut tree, ops, &ground.image_env, epoch).and_then(|()| tree.changes());
    if tree.outside() {
        return Ok(None);
    }
    let changes = match applied {
        Ok(c) => c,
        Err(odd) => return Ok(Some(Err(odd))),
    };
    let mut w = LayerWriter::new(store, compression, epoch)?;
    for (rel, node) in changes {
        let path = ImagePath::new(&rel).map_err(|_| BuildError::Workdir(rel.clone()))?;
        let meta = EntryMeta {
            mode: node.mode,
            uid: node.uid.into(),
            gid: node.gid.into(),
        };
        match &node.kind {
            Kind::Dir => w.dir(&path, meta)?,
            Kind::File(bytes) => w.file(&path, meta, bytes.len() as u64, &mut &bytes[..])?,
            Kind::Symlink(t) => w.symlink(&path, t, meta)?,
        }
    }
    Ok(Some(Ok(w.finish()?)))
}

fn owner_map(owners: Vec<crate::sandbox::rootfs::Owner>) -> HashMap<String, (u32, u32)> {
    owners
        .into_iter()
        .map(|o| (o.rel, (o.uid, o.gid)))
        .collect()
}

/// Runs the ops on the tree; `Err` as soon as one cannot be modelled.
fn apply(tree: &mut Tree, ops: &[AccountOp], env: &[String], epoch: u64) -> Result<(), Odd> {
    let tools = Tools::find(tree)?;
    for op in ops {
        let flavour = match op.program {
            Program::Groupadd | Program::Useradd if tools.shadow => Flavour::Shadow,
            Program::Addgroup | Program::Adduser if tools.debian_adduser => Flavour::Debian,
            Program::Addgroup | Program::Adduser if tools.busybox => Flavour::Busybox,
            _ => return Err(odd!()),
        };
        let action = op.reading(flavour).ok_or(odd!())?;
        match flavour {
            Flavour::Shadow => shadow::Shadow::new(tree, epoch)?.run(action)?,
            Flavour::Debian => debian::run(tree, action, epoch)?,
            Flavour::Busybox => busybox::run(tree, action, env, epoch)?,
        }
    }
    Ok(())
}

/// Which modelled tools the ground has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Tools {
    shadow: bool,
    debian_adduser: bool,
    busybox: bool,
}

impl Tools {
    fn find(tree: &Tree) -> Result<Tools, Odd> {
        let mut t = Tools::default();
        // Nothing earlier on PATH may stand in for the tools.
        for dir in ["usr/local/sbin", "usr/local/bin"] {
            for p in [
                "groupadd", "useradd", "addgroup", "adduser", "chfn", "gpasswd",
            ] {
                if tree.node(&format!("{dir}/{p}"))?.is_some() {
                    return Ok(t);
                }
            }
        }
        // The databases are read as a process would, through links
        // (`/lib` is one on merged-/usr systems).
        let file = |rel: &str| -> Result<Option<Vec<u8>>, Odd> {
            Ok(match tree.resolve(rel)? {
                Some(tree::Node {
                    kind: Kind::File(b),
                    ..
                }) => Some(b),
                _ => None,
            })
        };
        if let Some(status) = file("var/lib/dpkg/status")? {
            let version = |pkg: &str| dpkg_version(&status, pkg);
            let regular =
                |p: &str| matches!(tree.node(p), Ok(Some(n)) if matches!(n.kind, Kind::File(_)));
            t.shadow = version("passwd").is_some_and(|v| {
                SHADOW_VERSIONS
                    .iter()
                    .any(|k| v == *k || v.starts_with(&format!("{k}+")))
            }) && [
                "usr/sbin/groupadd",
                "usr/sbin/useradd",
                "usr/bin/chfn",
                "usr/bin/gpasswd",
            ]
            .iter()
            .all(|p| regular(p));
            t.debian_adduser = t.shadow
                && version("adduser").is_some_and(|v| ADDUSER_VERSIONS.contains(&v.as_str()))
                && regular("usr/sbin/adduser")
                && matches!(tree.node("usr/sbin/addgroup")?, Some(n) if n.kind == Kind::Symlink("adduser".into()));
        }
        if let Some(installed) = file("lib/apk/db/installed")? {
            let text = String::from_utf8_lossy(&installed);
            let busybox = text.split("\n\n").any(|para| {
                para.lines().any(|l| l == "P:busybox")
                    && para.lines().any(|l| {
                        l.strip_prefix("V:")
                            .is_some_and(|v| BUSYBOX_VERSIONS.iter().any(|k| v.starts_with(k)))
                    })
            });
            let applet = |p: &str| matches!(tree.node(p), Ok(Some(n)) if n.kind == Kind::Symlink("/bin/busybox".into()));
            t.busybox = busybox
                && tree.resolve("etc/alpine-release")?.is_some()
                && applet("usr/sbin/adduser")
                && applet("usr/sbin/addgroup");
        }
        Ok(t)
    }
}

/// The version of an installed package in a dpkg status file.
fn dpkg_version(status: &[u8], pkg: &str) -> Option<String> {
    let text = String::from_utf8_lossy(status);
    text.split("\n\n").find_map(|para| {
        let field = |k: &str| {
            para.lines()
                .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_owned()))
        };
        (field("Package:")? == pkg && field("Status:")? == "install ok installed")
            .then(|| field("Version:"))
            .flatten()
    })
}

#[cfg(test)]
mod tests;
