//! The app layer: the context's files, placed under the destination by
//! the recipe's copy rules, owned by root (or by the app user where the
//! recipe makes a path writable).
//!
//! The files are first listed with a hash of each file's bytes
//! ([`AppFiles`]), then written. The list is what makes the layer
//! cacheable (its key is a hash over the list, so an unchanged app layer
//! is reused without writing a byte) and explainable (a dry run compares
//! it with the last build's and names the files that changed).
//!
//! Copy rules are how a multi-stage Dockerfile's `COPY --from=build
//! /app/.next/standalone ./` is written without stages: `from` is a
//! folder of the context, `to` where it lands under the destination.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::exec::steps::context::{Context, ContextEntry, EntryKind};
use crate::exec::{BuildError, BuildOptions};
use crate::graph::spec::CopyRule;
use crate::layer::{Compression, EntryMeta, ImagePath, Layer, LayerError, LayerWriter};
use crate::store::Store;

/// Why the app layer cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("`{0}` is not a path inside the image")]
    Path(String),
    #[error("[app] writable needs an app user to own the files: set [image] user, or --user")]
    WritableWithoutUser,
    #[error("[app] copy: nothing in the context is at `{from}` (after the ignore file); is a build step missing, or does .dockerignore drop it?")]
    NothingToCopy { from: String },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the app layer: {0}")]
    Layer(#[from] LayerError),
}

/// What one app-layer entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppKind {
    Dir,
    File {
        host: PathBuf,
        size: u64,
        /// The bytes' sha256, once [`AppFiles::hash`] has run.
        digest: Option<Digest>,
    },
    Symlink(String),
    Hardlink(ImagePath),
}

/// One entry of the app layer.
#[derive(Debug, Clone)]
pub struct AppFile {
    /// Its place in the image.
    pub path: ImagePath,
    /// Its path in the context, for messages.
    pub source: String,
    pub kind: AppKind,
    pub meta: EntryMeta,
}

/// Everything the app layer holds, in path order.
#[derive(Debug, Clone)]
pub struct AppFiles {
    pub dest: ImagePath,
    pub entries: Vec<AppFile>,
    /// The destination folder's owner when `writable` names it (`"."`):
    /// a dev server that writes its cache there (`next dev`'s .next).
    pub dest_owner: Option<(u32, u32)>,
}

/// Where `rel` lands by `rule`, relative to the destination, or `None`
/// when the rule does not take it.
fn place(rule: &CopyRule, rel: &str, is_dir: bool) -> Option<String> {
    let sub = if rule.from.is_empty() {
        rel
    } else if rel == rule.from {
        if is_dir {
            ""
        } else {
            rel.rsplit('/').next().unwrap_or(rel)
        }
    } else {
        rel.strip_prefix(&rule.from)?.strip_prefix('/')?
    };
    Some(match (rule.to.as_str(), sub) {
        ("", s) => s.to_owned(),
        (t, "") => t.to_owned(),
        (t, s) => format!("{t}/{s}"),
    })
}

impl AppFiles {
    /// Places the context's entries. `owner` is the app user's uid and
    /// gid, which `writable` paths (relative to the destination) get.
    pub fn plan(
        ctx: &Context,
        dest: &ImagePath,
        copy: &[CopyRule],
        writable: &[String],
        owner: Option<(u32, u32)>,
    ) -> Result<AppFiles, AppError> {
        let whole = [CopyRule {
            from: String::new(),
            to: String::new(),
        }];
        let rules = if copy.is_empty() { &whole[..] } else { copy };
        if !writable.is_empty() && owner.is_none() {
            return Err(AppError::WritableWithoutUser);
        }
        let mut placed: BTreeMap<String, (&ContextEntry, String)> = BTreeMap::new();
        // Where each context path landed, for hard links.
        let mut landed: BTreeMap<&str, String> = BTreeMap::new();
        for rule in rules {
            let mut any = false;
            for e in &ctx.entries {
                let Some(to) = place(rule, &e.rel, e.kind == EntryKind::Dir) else {
                    continue;
                };
                any = true;
                if to.is_empty() {
                    continue;
                }
                landed.insert(&e.rel, to.clone());
                placed.insert(to, (e, e.rel.clone()));
            }
            if !any && !rule.from.is_empty() {
                return Err(AppError::NothingToCopy {
                    from: rule.from.clone(),
                });
            }
        }
        // Folders a rule's `to` implies (`.next` for `.next/static`).
        let implied: Vec<String> = placed
            .keys()
            .flat_map(|k| {
                let mut parents = Vec::new();
                let mut p = k.as_str();
                while let Some((parent, _)) = p.rsplit_once('/') {
                    parents.push(parent.to_owned());
                    p = parent;
                }
                parents
            })
            .filter(|p| !placed.contains_key(p))
            .collect();
        let dir_entry = ContextEntry {
            rel: String::new(),
            kind: EntryKind::Dir,
        };
        let mut entries = Vec::new();
        let join = |rel: &str| dest.join(rel).map_err(|_| AppError::Path(rel.to_owned()));
        let mut all: BTreeMap<String, (&ContextEntry, String)> = placed;
        for p in implied {
            all.entry(p).or_insert((&dir_entry, String::new()));
        }
        for (to, (e, source)) in &all {
            let meta = match owner.filter(|_| {
                writable
                    .iter()
                    .any(|w| w.is_empty() || to == w || to.starts_with(&format!("{w}/")))
            }) {
                Some((uid, gid)) => EntryMeta {
                    mode: e.mode(),
                    uid: uid.into(),
                    gid: gid.into(),
                },
                None => EntryMeta::root(e.mode()),
            };
            let kind = match &e.kind {
                EntryKind::Dir => AppKind::Dir,
                EntryKind::File { size, .. } => AppKind::File {
                    host: ctx.host_path(e),
                    size: *size,
                    digest: None,
                },
                EntryKind::Symlink { target } => AppKind::Symlink(target.clone()),
                EntryKind::Hardlink { to: first } => match landed.get(first.as_str()) {
                    // The first name was placed before this one (the
                    // context is in path order): link to it.
                    Some(first_to) if first_to < to => AppKind::Hardlink(join(first_to)?),
                    // Otherwise the file's bytes, under this name.
                    _ => {
                        let host = ctx.host_path(e);
                        let size = fs_err::metadata(&host)
                            .map_err(|source| AppError::Read {
                                path: host.clone(),
                                source,
                            })?
                            .len();
                        AppKind::File {
                            host,
                            size,
                            digest: None,
                        }
                    }
                },
            };
            entries.push(AppFile {
                path: join(to)?,
                source: source.clone(),
                kind,
                meta,
            });
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(AppFiles {
            dest: dest.clone(),
            entries,
            dest_owner: owner.filter(|_| writable.iter().any(String::is_empty)),
        })
    }

    /// Hashes every file's bytes (streamed), for the key and the record.
    pub fn hash(&mut self) -> Result<(), AppError> {
        for e in &mut self.entries {
            if let AppKind::File { host, digest, .. } = &mut e.kind {
                let f = fs_err::File::open(&*host).map_err(|source| AppError::Read {
                    path: host.clone(),
                    source,
                })?;
                *digest = Some(Digest::of_reader(f).map_err(|source| AppError::Read {
                    path: host.clone(),
                    source,
                })?);
            }
        }
        Ok(())
    }

    /// Number of files (hard links included).
    pub fn file_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.kind, AppKind::File { .. } | AppKind::Hardlink(_)))
            .count()
    }

    /// One line per entry saying what it is (path, kind, mode, owner,
    /// content hash): what the layer's key and a build's record are made
    /// of. Call [`AppFiles::hash`] first.
    pub fn manifest(&self) -> BTreeMap<String, String> {
        self.entries
            .iter()
            .map(|e| {
                let what = match &e.kind {
                    AppKind::Dir => "dir".to_owned(),
                    AppKind::File { digest, size, .. } => format!(
                        "file {size} {}",
                        digest.as_ref().map_or("?", |d| d.as_str())
                    ),
                    AppKind::Symlink(t) => format!("symlink {t}"),
                    AppKind::Hardlink(t) => format!("hardlink {t}"),
                };
                (
                    e.path.absolute(),
                    format!("{what} {:o} {}:{}", e.meta.mode, e.meta.uid, e.meta.gid),
                )
            })
            .collect()
    }

    /// The layer's cache key: its entries and how they are written.
    pub fn key(&self, compression: Compression, epoch: u64) -> String {
        let mut text = format!(
            "hoist app layer v1\ncompression {compression:?}\nepoch {epoch}\ndest {}\n",
            self.dest
        );
        if let Some((uid, gid)) = self.dest_owner {
            text.push_str(&format!("dest owner {uid}:{gid}\n"));
        }
        for (p, what) in self.manifest() {
            text.push_str(&format!("{p}\t{what}\n"));
        }
        Digest::of(text.as_bytes()).hex().to_owned()
    }

    /// Writes the layer: the destination and its parents (root's, 0755),
    /// then every entry.
    pub fn write(
        &self,
        store: &Store,
        compression: Compression,
        epoch: u64,
    ) -> Result<Layer, AppError> {
        let mut w = LayerWriter::new(store, compression, epoch)?;
        for anc in self.dest.ancestors() {
            w.dir(&anc, EntryMeta::root(0o755))?;
        }
        let dest_meta = match self.dest_owner {
            Some((uid, gid)) => EntryMeta {
                mode: 0o755,
                uid: uid.into(),
                gid: gid.into(),
            },
            None => EntryMeta::root(0o755),
        };
        w.dir(&self.dest, dest_meta)?;
        for e in &self.entries {
            match &e.kind {
                AppKind::Dir => w.dir(&e.path, e.meta)?,
                AppKind::File { host, size, .. } => {
                    let mut f = fs_err::File::open(host).map_err(|source| AppError::Read {
                        path: host.clone(),
                        source,
                    })?;
                    w.file(&e.path, e.meta, *size, &mut f)?;
                }
                AppKind::Symlink(target) => w.symlink(&e.path, target, e.meta)?,
                AppKind::Hardlink(to) => w.hardlink(&e.path, to, e.meta)?,
            }
        }
        Ok(w.finish()?)
    }
}

/// The context as the recipe filters it; a host step's outputs are kept
/// whatever the ignore file says (they are what the image is for).
pub fn scan_context(opts: &BuildOptions) -> Result<Context, BuildError> {
    let mut filter = opts.app.filter.clone();
    if let Some(step) = &opts.step {
        filter.keep.extend(step.outputs.iter().cloned());
    }
    Ok(Context::scan_filtered(
        &opts.context,
        &opts.ignore_file,
        &filter,
    )?)
}

/// The app layer's entries, placed as the recipe says.
pub fn app_files(
    opts: &BuildOptions,
    ctx: &Context,
    workdir: &ImagePath,
    owner: Option<(u32, u32)>,
) -> Result<AppFiles, BuildError> {
    let dest = match &opts.app.destination {
        Some(d) => ImagePath::new(d)
            .ok()
            .filter(|_| d.starts_with('/'))
            .ok_or_else(|| BuildError::Workdir(d.clone()))?,
        None => workdir.clone(),
    };
    Ok(AppFiles::plan(
        ctx,
        &dest,
        &opts.app.copy,
        &opts.app.writable,
        owner,
    )?)
}

/// The app layer's mtime: `SOURCE_DATE_EPOCH`, or the last commit's.
pub fn app_epoch(opts: &BuildOptions) -> Result<u64, BuildError> {
    if !opts.app.mtime_commit {
        return Ok(opts.epoch);
    }
    let fail = |why: String| BuildError::CommitTime {
        dir: opts.context.clone(),
        why,
    };
    let out = std::process::Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(&opts.context)
        .output()
        .map_err(|e| fail(format!("running git: {e}")))?;
    if !out.status.success() {
        return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| fail("git printed no commit time".into()))
}

/// The app layer: the context's entries under the workdir, owned by root.
pub fn app_layer(
    store: &Store,
    ctx: &Context,
    workdir: &ImagePath,
    compression: Compression,
    epoch: u64,
) -> Result<Layer, BuildError> {
    let mut w = LayerWriter::new(store, compression, epoch)?;
    for anc in workdir.ancestors() {
        w.dir(&anc, EntryMeta::root(0o755))?;
    }
    w.dir(workdir, EntryMeta::root(0o755))?;
    let image_path = |rel: &str| {
        workdir
            .join(rel)
            .map_err(|_| BuildError::Workdir(rel.to_owned()))
    };
    for e in &ctx.entries {
        let p = image_path(&e.rel)?;
        let meta = EntryMeta::root(e.mode());
        match &e.kind {
            EntryKind::Dir => w.dir(&p, meta)?,
            EntryKind::File { size, .. } => {
                let host = ctx.host_path(e);
                let mut f = fs_err::File::open(&host).map_err(|source| BuildError::ReadFile {
                    path: host.clone(),
                    source,
                })?;
                w.file(&p, meta, *size, &mut f)?;
            }
            EntryKind::Symlink { target } => w.symlink(&p, target, meta)?,
            EntryKind::Hardlink { to } => w.hardlink(&p, &image_path(to)?, meta)?,
        }
    }
    Ok(w.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_table() {
        let r = |from: &str, to: &str| CopyRule {
            from: from.into(),
            to: to.into(),
        };
        let cases = [
            (r("", ""), "server.js", false, Some("server.js")),
            (
                r(".next/standalone", ""),
                ".next/standalone/server.js",
                false,
                Some("server.js"),
            ),
            (
                r(".next/standalone", ""),
                ".next/standalone",
                true,
                Some(""),
            ),
            (
                r(".next/standalone", ""),
                ".next/standalone2/x",
                false,
                None,
            ),
            (
                r(".next/static", ".next/static"),
                ".next/static/a.js",
                false,
                Some(".next/static/a.js"),
            ),
            (r("public", "public"), "public", true, Some("public")),
            (
                r("dist/app.js", "bin"),
                "dist/app.js",
                false,
                Some("bin/app.js"),
            ),
            (r("public", "public"), "src/x", false, None),
        ];
        for (rule, rel, dir, want) in cases {
            assert_eq!(place(&rule, rel, dir).as_deref(), want, "{rule:?} {rel}");
        }
    }

    #[test]
    fn plan_maps_implies_parents_and_owns_writable() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for (p, body) in [
            (".next/standalone/server.js", "s"),
            (".next/standalone/node_modules/x/index.js", "x"),
            (".next/static/chunks/a.js", "a"),
            ("public/logo.svg", "l"),
            ("src/page.js", "p"),
        ] {
            fs_err::create_dir_all(r.join(p).parent().unwrap()).unwrap();
            fs_err::write(r.join(p), body).unwrap();
        }
        let ctx = Context::scan(r, ".dockerignore").unwrap();
        let rule = |from: &str, to: &str| CopyRule {
            from: from.into(),
            to: to.into(),
        };
        let copy = [
            rule(".next/standalone", ""),
            rule(".next/static", ".next/static"),
            rule("public", "public"),
        ];
        let dest = ImagePath::new("app").unwrap();
        let mut files =
            AppFiles::plan(&ctx, &dest, &copy, &["public".into()], Some((1001, 1001))).unwrap();
        files.hash().unwrap();
        let paths: Vec<String> = files.entries.iter().map(|e| e.path.absolute()).collect();
        assert_eq!(
            paths,
            [
                "/app/.next",
                "/app/.next/static",
                "/app/.next/static/chunks",
                "/app/.next/static/chunks/a.js",
                "/app/node_modules",
                "/app/node_modules/x",
                "/app/node_modules/x/index.js",
                "/app/public",
                "/app/public/logo.svg",
                "/app/server.js",
            ]
        );
        let owner = |p: &str| {
            let e = files
                .entries
                .iter()
                .find(|e| e.path.absolute() == p)
                .unwrap();
            (e.meta.uid, e.meta.gid)
        };
        assert_eq!(owner("/app/public/logo.svg"), (1001, 1001));
        assert_eq!(owner("/app/public"), (1001, 1001));
        assert_eq!(owner("/app/server.js"), (0, 0));
        let key = files.key(Compression::Gzip, 0);
        fs_err::write(r.join("public/logo.svg"), "changed").unwrap();
        files.hash().unwrap();
        assert_ne!(
            files.key(Compression::Gzip, 0),
            key,
            "content is in the key"
        );
        let err = AppFiles::plan(&ctx, &dest, &[rule("dist", "")], &[], None).unwrap_err();
        assert!(
            err.to_string()
                .contains("nothing in the context is at `dist`"),
            "{err}"
        );
    }
}
