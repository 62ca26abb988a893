//! A copy from a stage's filesystem: exactly the named path, read from the
//! stage's layers (top first, whiteouts applied) as the sandbox unpacks
//! them, written as one layer with every mtime at `SOURCE_DATE_EPOCH`.
//!
//! The walk never follows a link: a folder on the way to the path that is
//! a link is an error, and links under it are copied as links, so nothing
//! outside the unpacked stage is ever read.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::exec::{BuildError, BuildOptions};
use crate::graph::spec::StageCopy;
use crate::layer::{EntryMeta, ImagePath, Layer, LayerWriter};
use crate::sandbox::Ground;
use crate::store::Store;

/// The key of a copy's layer: the stage's key and the copy's settings.
pub fn key(opts: &BuildOptions, copy: &StageCopy, stage_key: &str, owner: (u32, u32)) -> String {
    Digest::of(
        format!(
            "hoist stage copy v1\n{stage_key}\n{}\n{}\n{owner:?} {:?}\n{:?} {} {}\n",
            copy.from, copy.to, copy.mode, opts.compression, opts.epoch, opts.workdir
        )
        .as_bytes(),
    )
    .hex()
    .to_owned()
}

/// Where the copy lands in the image.
pub fn destination(opts: &BuildOptions, copy: &StageCopy) -> Result<ImagePath, BuildError> {
    let abs = match copy.to.starts_with('/') {
        true => copy.to.clone(),
        false if copy.to.is_empty() => opts.workdir.clone(),
        false => format!("{}/{}", opts.workdir.trim_end_matches('/'), copy.to),
    };
    ImagePath::new(&abs).map_err(|_| BuildError::Workdir(abs.clone()))
}

/// The owner a copy's files get: `UID:GID`, the image user's name, or
/// root.
pub fn owner(opts: &BuildOptions, copy: &StageCopy) -> Result<(u32, u32), BuildError> {
    let Some(o) = &copy.owner else {
        return Ok((0, 0));
    };
    let (u, g) = o.split_once(':').unwrap_or((o, o));
    if let (Ok(u), Ok(g)) = (u.parse::<u32>(), g.parse::<u32>()) {
        return Ok((u, g));
    }
    match &opts.user {
        Some(spec) if spec.name == u => {
            let uid = spec.uid.unwrap_or(crate::exec::steps::user::DEFAULT_UID);
            Ok((uid, spec.gid.unwrap_or(uid)))
        }
        _ => Err(BuildError::StageOwner {
            at: copy.at.clone(),
            owner: o.clone(),
        }),
    }
}

/// Unpacks the stage once and writes each copy's layer.
pub fn write(
    opts: &BuildOptions,
    store: &Store,
    ground: &Ground,
    copies: &[&StageCopy],
) -> Result<Vec<(Layer, usize)>, BuildError> {
    let wanted: Vec<String> = copies.iter().map(|c| c.from.clone()).collect();
    super::with_unpacked_only(store, ground, "copy-", &wanted, |(root, _)| {
        let mut out = Vec::new();
        for copy in copies {
            let src = locate(root, copy)?;
            let dest = destination(opts, copy)?;
            let (uid, gid) = owner(opts, copy)?;
            let mut w = LayerWriter::new(store, opts.compression, opts.epoch)?;
            for anc in dest.ancestors() {
                w.dir(&anc, EntryMeta::root(0o755))?;
            }
            let mut files = 0;
            put(&mut w, &src, &dest, (uid, gid), copy.mode, &mut files)?;
            out.push((w.finish()?, files));
        }
        Ok(out)
    })
}

/// The host path of `copy.from` inside the unpacked stage, checked: no
/// link on the way, and it exists.
fn locate(root: &Path, copy: &StageCopy) -> Result<PathBuf, BuildError> {
    let parts: Vec<&str> = copy
        .from
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let mut p = root.to_owned();
    let mut shown = String::new();
    for (i, part) in parts.iter().enumerate() {
        if *part == ".." {
            return Err(BuildError::StageLink {
                stage: copy.stage.clone(),
                path: copy.from.clone(),
                why: "it climbs out with `..`".into(),
            });
        }
        let next = p.join(part);
        let meta = match fs::symlink_metadata(&next) {
            Ok(m) => m,
            Err(_) => {
                return Err(BuildError::StagePath {
                    stage: copy.stage.clone(),
                    path: copy.from.clone(),
                    near: near(&p, &shown, part),
                })
            }
        };
        if meta.file_type().is_symlink() && i + 1 < parts.len() {
            return Err(BuildError::StageLink {
                stage: copy.stage.clone(),
                path: copy.from.clone(),
                why: format!("/{shown}{part} is a link; name the path it points to"),
            });
        }
        shown.push_str(part);
        shown.push('/');
        p = next;
    }
    Ok(p)
}

/// What the folder `dir` (the stage's `/shown`) holds, closest names to
/// `want` first.
fn near(dir: &Path, shown: &str, want: &str) -> String {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort_by_key(|n| (!n.starts_with(&want[..want.len().min(1)]), n.clone()));
    names.truncate(12);
    match names.is_empty() {
        true => format!("/{shown} is empty"),
        false => format!("/{shown} holds {}", names.join(", ")),
    }
}

/// Lists `src` (and what is under it) placed at `dest`.
fn collect(
    src: &Path,
    dest: &ImagePath,
    out: &mut Vec<(ImagePath, PathBuf)>,
) -> Result<(), BuildError> {
    out.push((dest.clone(), src.to_owned()));
    let meta = fs::symlink_metadata(src).map_err(|source| BuildError::ReadFile {
        path: src.to_owned(),
        source,
    })?;
    if meta.is_dir() {
        let rd = fs::read_dir(src).map_err(|source| BuildError::ReadFile {
            path: src.to_owned(),
            source,
        })?;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let child = dest
                .join(&name)
                .map_err(|_| BuildError::Workdir(format!("{dest}/{name}")))?;
            collect(&e.path(), &child, out)?;
        }
    }
    Ok(())
}

/// Writes `src` (and what is under it) at `dest`, in path order as a
/// layer's entries must be.
fn put(
    w: &mut LayerWriter,
    src: &Path,
    dest: &ImagePath,
    (uid, gid): (u32, u32),
    mode: Option<u32>,
    files: &mut usize,
) -> Result<(), BuildError> {
    let mut all = Vec::new();
    collect(src, dest, &mut all)?;
    all.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let entry = |m: u32| EntryMeta {
        mode: m,
        uid: uid.into(),
        gid: gid.into(),
    };
    for (dest, src) in all {
        let read_err = |source| BuildError::ReadFile {
            path: src.clone(),
            source,
        };
        let meta = fs::symlink_metadata(&src).map_err(read_err)?;
        let bits = meta.permissions().mode() & 0o7777;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(&src).map_err(read_err)?;
            w.symlink(&dest, &target.to_string_lossy(), entry(0o777))?;
        } else if ft.is_dir() {
            w.dir(&dest, entry(bits))?;
        } else if ft.is_file() {
            let mut f = fs_err::File::open(&src).map_err(read_err)?;
            w.file(&dest, entry(mode.unwrap_or(bits)), meta.size(), &mut f)?;
            *files += 1;
        }
        // Devices, fifos and sockets are left out: a build has no reason
        // to hand them to an image.
    }
    Ok(())
}
