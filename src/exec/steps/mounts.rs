//! `RUN --mount`: a step's mounts from the graph's [`RunMount`]s.
//!
//! Two halves, as BuildKit splits them. The key ([`key`]) is known before
//! anything runs: each mount's settings, plus the content of what a bind
//! shows (the context's files under its source, hashed; a stage's key; an
//! image's manifest digest), but never a cache's or a secret's content,
//! so a changed secret or a fuller cache reruns nothing. The mounts
//! themselves ([`resolve`]) are made only when the step runs, and live
//! while the returned [`Held`] does:
//!
//! - a bind of the context shows the files `.dockerignore` lets through
//!   (copied to a scratch folder, so an ignored `.env` stays out and a
//!   `rw` bind's writes are thrown away, as BuildKit throws them away);
//!   a bind `from` a stage or image unpacks its filesystem there;
//! - a cache is the store's folder for its id (see
//!   [`crate::store::mounts`]), held with its sharing;
//! - a secret is a copy of the file or variable given with `--secret`, in
//!   a scratch folder outside the step's root (mode 0400 unless `mode`
//!   says), or a variable of the step's environment (`env=`), kept out of
//!   the step's key; a secret not given is skipped unless `required`;
//! - a tmpfs is made by the sandbox.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::exec::steps::context::{Context, EntryKind, Filter};
use crate::exec::{BuildError, BuildOptions, SecretSource};
use crate::graph::spec::{CacheSharing, PlaceFrom, RunMount, RunMountKind};
use crate::sandbox::{Ground, Mount, MountSource};
use crate::store::mounts::{CacheDir, Share};
use crate::store::Store;

/// A stage's or image's filesystem, for a bind `from` it: the layers and
/// what identifies them in a key.
pub type Tree = (Ground, String);

/// What a step's mounts hold while it runs; dropped after it.
#[derive(Default)]
pub struct Held {
    pub mounts: Vec<Mount>,
    pub secret_env: Vec<(String, String)>,
    _caches: Vec<CacheDir>,
    _scratch: Vec<Scratch>,
}

/// A scratch folder under the store, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        crate::sandbox::remove_tree(&self.0);
    }
}

fn instr(at: &str, message: String) -> BuildError {
    BuildError::Instruction {
        at: at.to_owned(),
        message,
    }
}

/// The secret id of a secret mount: its `id`, else its target's name.
fn secret_id(m: &RunMount) -> String {
    m.id.clone().unwrap_or_else(|| {
        m.target
            .as_deref()
            .and_then(|t| t.rsplit('/').find(|p| !p.is_empty()))
            .unwrap_or_default()
            .to_owned()
    })
}

/// What the mounts add to the step's key. `tree` gives a bind's stage or
/// image (only its key is read here).
pub fn key(
    opts: &BuildOptions,
    mounts: &[RunMount],
    tree: &mut dyn FnMut(&PlaceFrom) -> Result<Tree, BuildError>,
    at: &str,
) -> Result<String, BuildError> {
    let mut text = String::new();
    for m in mounts {
        text.push_str(&format!("{m:?}"));
        if m.kind == RunMountKind::Bind {
            let content = match &m.from {
                None | Some(PlaceFrom::Context) => {
                    context_key(opts, m.source.as_deref().unwrap_or("."), at)?
                }
                Some(f) => tree(f)?.1,
            };
            text.push_str(&format!(" content {content}"));
        }
        text.push('\n');
    }
    Ok(text)
}

/// The context's entries under `source` (after the ignore file), with
/// their paths relative to it.
fn context_entries(
    opts: &BuildOptions,
    source: &str,
    at: &str,
) -> Result<(PathBuf, Vec<(String, EntryKind)>), BuildError> {
    let rel = clean(source, at)?;
    let ctx = Context::scan_filtered(&opts.context, &opts.ignore_file, &Filter::default())?;
    let mut out = Vec::new();
    let base = opts.context.join(&rel);
    for e in &ctx.entries {
        let under = match rel.as_str() {
            "" => Some(e.rel.as_str()),
            r if e.rel == r => Some(""),
            r => e.rel.strip_prefix(&format!("{r}/")),
        };
        if let Some(u) = under {
            out.push((u.to_owned(), e.kind.clone()));
        }
    }
    if out.is_empty() && !rel.is_empty() {
        return Err(instr(
            at,
            format!("RUN --mount=type=bind,source={source}: the build context has no `{rel}` (or .dockerignore leaves it out)"),
        ));
    }
    Ok((base, out))
}

/// `source` as a context path: relative, `/`-separated, no `..`.
fn clean(source: &str, at: &str) -> Result<String, BuildError> {
    let parts: Vec<&str> = source
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(instr(
            at,
            format!("RUN --mount source={source}: a bind of the context cannot reach outside it; drop the `..`"),
        ));
    }
    Ok(parts.join("/"))
}

fn context_key(opts: &BuildOptions, source: &str, at: &str) -> Result<String, BuildError> {
    let (base, entries) = context_entries(opts, source, at)?;
    let mut text = String::new();
    for (rel, kind) in &entries {
        let full = if rel.is_empty() {
            base.clone()
        } else {
            base.join(rel)
        };
        let content = match kind {
            EntryKind::File { .. } => {
                let f = fs_err::File::open(&full).map_err(|e| instr(at, e.to_string()))?;
                Digest::of_reader(f)
                    .map_err(|e| instr(at, format!("{}: {e}", full.display())))?
                    .to_string()
            }
            _ => String::new(),
        };
        text.push_str(&format!("{rel} {kind:?} {content}\n"));
    }
    Ok(Digest::of(text.as_bytes()).hex().to_owned())
}

/// Makes the step's mounts. `tree` gives a bind's stage or image.
pub fn resolve(
    opts: &BuildOptions,
    store: &Store,
    mounts: &[RunMount],
    tree: &mut dyn FnMut(&PlaceFrom) -> Result<Tree, BuildError>,
    at: &str,
) -> Result<Held, BuildError> {
    let mut held = Held::default();
    for m in mounts {
        let target = m.target.clone();
        let mount = |source, owner| Mount {
            target: target.clone().unwrap_or_default(),
            source,
            owner,
            key: String::new(),
        };
        match m.kind {
            RunMountKind::Tmpfs => held
                .mounts
                .push(mount(MountSource::Tmpfs { size: m.size }, None)),
            RunMountKind::Cache => {
                if m.from.is_some() {
                    return Err(instr(at, "RUN --mount=type=cache,from=...: seeding a cache from a stage is not supported yet; drop `from`".into()));
                }
                let id =
                    m.id.clone()
                        .or_else(|| m.target.clone())
                        .unwrap_or_default();
                let share = match m.sharing {
                    CacheSharing::Shared => Share::Shared,
                    CacheSharing::Private => Share::Private,
                    CacheSharing::Locked => Share::Locked,
                };
                let dir = store.cache_dir(&id, share, m.mode.unwrap_or(0o755))?;
                let ids = (m.uid.unwrap_or(0), m.gid.unwrap_or(0));
                let owner = (dir.created && ids != (0, 0)).then_some(ids);
                held.mounts.push(mount(
                    MountSource::Bind {
                        path: dir.path.clone(),
                        readonly: m.readonly,
                    },
                    owner,
                ));
                held._caches.push(dir);
            }
            RunMountKind::Secret => {
                let id = secret_id(m);
                let Some((_, given)) = opts.secrets.iter().find(|(i, _)| *i == id) else {
                    if m.required {
                        return Err(instr(at, format!("RUN --mount=type=secret,id={id}: the secret `{id}` is required and was not given; pass it with `hoist build --secret id={id},src=FILE` (or `--secret id={id},env=VARIABLE`)")));
                    }
                    continue;
                };
                let value = match given {
                    SecretSource::File(p) => std::fs::read(p).map_err(|e| {
                        instr(
                            at,
                            format!("--secret id={id},src={}: cannot read it: {e}", p.display()),
                        )
                    })?,
                    SecretSource::Env(v) => std::env::var_os(v)
                        .ok_or_else(|| {
                            instr(
                                at,
                                format!("--secret id={id},env={v}: the variable `{v}` is not set"),
                            )
                        })?
                        .into_encoded_bytes(),
                };
                if let Some(var) = &m.env {
                    let v = String::from_utf8(value.clone()).map_err(|_| {
                        instr(at, format!("RUN --mount=type=secret,id={id},env={var}: the secret is not text, which an environment variable cannot hold; mount it as a file"))
                    })?;
                    held.secret_env.push((var.clone(), v));
                    if m.target.is_none() {
                        continue;
                    }
                }
                let scratch = scratch_dir(store, "secret-")?;
                let file = scratch.0.join("secret");
                std::fs::write(&file, &value).map_err(|source| BuildError::WriteFile {
                    path: file.clone(),
                    source,
                })?;
                std::fs::set_permissions(
                    &file,
                    std::fs::Permissions::from_mode(m.mode.unwrap_or(0o400)),
                )
                .map_err(|source| BuildError::WriteFile {
                    path: file.clone(),
                    source,
                })?;
                let ids = (m.uid.unwrap_or(0), m.gid.unwrap_or(0));
                let target = m
                    .target
                    .clone()
                    .unwrap_or_else(|| format!("/run/secrets/{id}"));
                held.mounts.push(Mount {
                    target,
                    source: MountSource::Bind {
                        path: file,
                        readonly: true,
                    },
                    owner: (ids != (0, 0)).then_some(ids),
                    key: String::new(),
                });
                held._scratch.push(scratch);
            }
            RunMountKind::Bind => {
                let scratch = scratch_dir(store, "bind-")?;
                let path = match &m.from {
                    None | Some(PlaceFrom::Context) => {
                        copy_context(opts, m.source.as_deref().unwrap_or("."), &scratch.0, at)?
                    }
                    Some(f) => {
                        let (ground, _) = tree(f)?;
                        let root = scratch.0.join("rootfs");
                        std::fs::create_dir(&root).map_err(|source| BuildError::WriteFile {
                            path: root.clone(),
                            source,
                        })?;
                        crate::sandbox::rootfs::unpack(store, &ground.layers, &root)?;
                        let src = m.source.as_deref().unwrap_or("/");
                        let p = crate::sandbox::rootfs::checked(&root, src)?;
                        if std::fs::symlink_metadata(&p).is_err() {
                            return Err(instr(at, format!("RUN --mount=type=bind,source={src}: the stage or image has no `{src}`")));
                        }
                        p
                    }
                };
                held.mounts.push(mount(
                    MountSource::Bind {
                        path,
                        readonly: m.readonly,
                    },
                    None,
                ));
                held._scratch.push(scratch);
            }
        }
    }
    Ok(held)
}

fn scratch_dir(store: &Store, prefix: &str) -> Result<Scratch, BuildError> {
    let parent = store.root().join("sandbox");
    std::fs::create_dir_all(&parent).map_err(|source| BuildError::WriteFile {
        path: parent.clone(),
        source,
    })?;
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&parent)
        .map_err(|source| BuildError::WriteFile {
            path: parent.clone(),
            source,
        })?
        .keep();
    Ok(Scratch(dir))
}

/// Copies the context's files under `source` into `scratch`; returns
/// the path to bind (a folder, or one file).
fn copy_context(
    opts: &BuildOptions,
    source: &str,
    scratch: &Path,
    at: &str,
) -> Result<PathBuf, BuildError> {
    let (base, entries) = context_entries(opts, source, at)?;
    let out = scratch.join("src");
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| BuildError::WriteFile { path, source }
    };
    let single_file = matches!(entries.as_slice(), [(r, EntryKind::File { .. })] if r.is_empty());
    if single_file {
        std::fs::copy(&base, &out).map_err(io(&out))?;
        return Ok(out);
    }
    std::fs::create_dir(&out).map_err(io(&out))?;
    for (rel, kind) in &entries {
        if rel.is_empty() {
            continue;
        }
        let to = out.join(rel);
        match kind {
            EntryKind::Dir => std::fs::create_dir_all(&to).map_err(io(&to))?,
            EntryKind::File { .. } | EntryKind::Hardlink { .. } => {
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent).map_err(io(parent))?;
                }
                std::fs::copy(base.join(rel), &to).map_err(io(&to))?;
            }
            EntryKind::Symlink { target } => {
                std::os::unix::fs::symlink(target, &to).map_err(io(&to))?
            }
        }
    }
    Ok(out)
}
