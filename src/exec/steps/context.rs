//! The build context: the app folder, walked and filtered into the entries
//! of the app layer.
//!
//! The walk is separate from the writing so that the entries can be sorted
//! (the tar must be in path order for determinism) and checked (links,
//! special files) before a byte is written. Only metadata is held in
//! memory; file contents are streamed when the layer is written.
//!
//! Modes are normalised as the app layer needs them: files 0644, or 0755
//! when any execute bit is set, folders 0755, all owned by root, so the
//! app user can read but not change them, whatever the host's umask and
//! owners were.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use fs_err as fs;

use crate::ignore::{IgnoreError, IgnoreRules};

/// Why the context cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("context folder {0} does not exist or is not a folder")]
    NotADir(PathBuf),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Ignore(#[from] IgnoreError),
    #[error("{path} is a symbolic link to `{target}`, which points outside the context; copy the file in, or add `{rel}` to .dockerignore")]
    LinkOutside {
        path: PathBuf,
        target: String,
        rel: String,
    },
    #[error("{path} is a {kind}; hoist copies files, folders and links only: add `{rel}` to .dockerignore")]
    Special {
        path: PathBuf,
        kind: &'static str,
        rel: String,
    },
    #[error("{0} has a name that is not valid UTF-8; rename it or add it to .dockerignore")]
    NotUtf8(PathBuf),
}

/// What kind of thing an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File {
        size: u64,
        executable: bool,
    },
    Symlink {
        target: String,
    },
    /// A second name for a file that appears earlier (in sorted order).
    Hardlink {
        to: String,
    },
}

/// One entry of the context, relative to its root with `/` separators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    pub rel: String,
    pub kind: EntryKind,
}

impl ContextEntry {
    /// The normalised mode for the app layer.
    pub fn mode(&self) -> u32 {
        match &self.kind {
            EntryKind::Dir => 0o755,
            EntryKind::File {
                executable: true, ..
            } => 0o755,
            EntryKind::File { .. } | EntryKind::Hardlink { .. } => 0o644,
            EntryKind::Symlink { .. } => 0o777,
        }
    }
}

/// What a recipe adds to the ignore file: patterns (in `.dockerignore`
/// syntax) to drop, to keep only, and to keep whatever the rest says
/// (a host build step's outputs, often listed in `.dockerignore`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Dropped after the ignore file's own lines.
    pub exclude: Vec<String>,
    /// When not empty, only these (and what is under them) are kept.
    pub include: Vec<String>,
    /// Kept even when the ignore file, `exclude` or `include` drop them.
    pub keep: Vec<String>,
}

impl Filter {
    /// The rule sets an entry must pass: the ignore file with `exclude`
    /// and `keep` appended (so its own line numbers stay right in its
    /// errors), and, for `include`, `*` then an exception per pattern.
    fn rules(&self, root: &Path, ignore_file: &str) -> Result<Vec<IgnoreRules>, ContextError> {
        let path = root.join(ignore_file);
        let mut text = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let keep: Vec<String> = self.keep.iter().map(|k| format!("!{k}")).collect();
        let mut sets = Vec::new();
        if !self.exclude.is_empty() || !keep.is_empty() || !text.is_empty() {
            text.push(b'\n');
            for line in self.exclude.iter().chain(&keep) {
                text.extend_from_slice(line.as_bytes());
                text.push(b'\n');
            }
            sets.push(IgnoreRules::parse(&text).map_err(|e| e.in_file(&path))?);
        }
        if !self.include.is_empty() {
            let mut lines = vec!["*".to_owned()];
            lines.extend(self.include.iter().map(|i| format!("!{i}")));
            lines.extend(keep);
            sets.push(IgnoreRules::parse(lines.join("\n").as_bytes())?);
        }
        Ok(sets)
    }
}

/// A scanned context: its root and entries in sorted path order.
#[derive(Debug)]
pub struct Context {
    pub root: PathBuf,
    pub entries: Vec<ContextEntry>,
}

impl Context {
    /// Walks `root`, dropping what the ignore file (`.dockerignore` by
    /// default) excludes, with Docker's semantics.
    pub fn scan(root: &Path, ignore_file: &str) -> Result<Context, ContextError> {
        Self::scan_filtered(root, ignore_file, &Filter::default())
    }

    /// [`Context::scan`], with a recipe's [`Filter`] on top of the ignore
    /// file.
    pub fn scan_filtered(
        root: &Path,
        ignore_file: &str,
        filter: &Filter,
    ) -> Result<Context, ContextError> {
        if !root.is_dir() {
            return Err(ContextError::NotADir(root.to_owned()));
        }
        let rules = filter.rules(root, ignore_file)?;
        let mut raw = Vec::new();
        walk(root, root, "", &rules, &mut raw)?;
        raw.sort_by(|a, b| a.0.rel.cmp(&b.0.rel));
        // Parent folders of kept entries whose folders were excluded (a
        // `!` exception re-including a file) are implied, as Docker does.
        let mut entries: Vec<ContextEntry> = Vec::with_capacity(raw.len());
        let mut have: std::collections::HashSet<String> = raw
            .iter()
            .filter(|(e, _)| e.kind == EntryKind::Dir)
            .map(|(e, _)| e.rel.clone())
            .collect();
        let mut implied = Vec::new();
        for (e, _) in &raw {
            let mut p = e.rel.as_str();
            while let Some((parent, _)) = p.rsplit_once('/') {
                if have.insert(parent.to_owned()) {
                    implied.push(ContextEntry {
                        rel: parent.to_owned(),
                        kind: EntryKind::Dir,
                    });
                }
                p = parent;
            }
        }
        let mut first_of_inode: HashMap<(u64, u64), String> = HashMap::new();
        for (mut e, inode) in raw {
            if let (EntryKind::File { .. }, Some(key)) = (&e.kind, inode) {
                if let Some(first) = first_of_inode.get(&key) {
                    e.kind = EntryKind::Hardlink { to: first.clone() };
                } else {
                    first_of_inode.insert(key, e.rel.clone());
                }
            }
            entries.push(e);
        }
        entries.extend(implied);
        entries.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(Context {
            root: root.to_owned(),
            entries,
        })
    }

    /// The host path of an entry.
    pub fn host_path(&self, entry: &ContextEntry) -> PathBuf {
        self.root.join(&entry.rel)
    }

    /// Number of regular files (hard links included).
    pub fn file_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::File { .. } | EntryKind::Hardlink { .. }))
            .count()
    }
}

type Raw = (ContextEntry, Option<(u64, u64)>);

fn walk(
    root: &Path,
    dir: &Path,
    prefix: &str,
    rules: &[IgnoreRules],
    out: &mut Vec<Raw>,
) -> Result<(), ContextError> {
    for item in fs::read_dir(dir)? {
        let item = item?;
        let path = item.path();
        let name = item
            .file_name()
            .into_string()
            .map_err(|_| ContextError::NotUtf8(path.clone()))?;
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let meta = fs::symlink_metadata(&path)?;
        let ft = meta.file_type();
        let excluded = rules.iter().any(|r| r.is_excluded(&rel));
        if ft.is_dir() {
            if !excluded {
                out.push((
                    ContextEntry {
                        rel: rel.clone(),
                        kind: EntryKind::Dir,
                    },
                    None,
                ));
            }
            // Walk into an excluded folder only when every set that
            // excludes it could keep something beneath it.
            if rules
                .iter()
                .all(|r| !r.is_excluded(&rel) || r.may_include_under(&rel))
            {
                walk(root, &path, &rel, rules, out)?;
            }
            continue;
        }
        if excluded {
            continue;
        }
        let kind = if ft.is_file() {
            EntryKind::File {
                size: meta.len(),
                executable: meta.mode() & 0o111 != 0,
            }
        } else if ft.is_symlink() {
            let target = fs::read_link(&path)?;
            let target = target
                .to_str()
                .ok_or_else(|| ContextError::NotUtf8(path.clone()))?
                .to_owned();
            if !link_stays_inside(&rel, &target) {
                return Err(ContextError::LinkOutside { path, target, rel });
            }
            EntryKind::Symlink { target }
        } else {
            use std::os::unix::fs::FileTypeExt;
            let kind = if ft.is_socket() {
                "socket"
            } else if ft.is_fifo() {
                "named pipe"
            } else {
                "device"
            };
            return Err(ContextError::Special { path, kind, rel });
        };
        let inode = (meta.nlink() > 1).then(|| (meta.dev(), meta.ino()));
        out.push((ContextEntry { rel, kind }, inode));
    }
    let _ = root;
    Ok(())
}

/// Whether a link at `rel` (relative to the context root) with `target`
/// resolves, lexically, to a path inside the context. Absolute targets
/// would point into the image's root, not the app, so they are refused.
pub fn link_stays_inside(rel: &str, target: &str) -> bool {
    if target.starts_with('/') || target.is_empty() {
        return false;
    }
    let mut depth: Vec<&str> = rel.split('/').collect();
    depth.pop(); // the link's own name
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            p => depth.push(p),
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_table() {
        let cases = [
            ("a", "b", true),
            ("a", "../b", false),
            ("d/a", "../b", true),
            ("d/a", "../../b", false),
            ("d/a", "./x/../../b", true),
            ("d/a", "/etc/passwd", false),
            ("d/a", "x/../../..", false),
        ];
        for (rel, target, want) in cases {
            assert_eq!(link_stays_inside(rel, target), want, "{rel} -> {target}");
        }
    }

    #[test]
    fn scan_sorts_filters_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("src/sub")).unwrap();
        fs::create_dir_all(r.join("docs")).unwrap();
        fs::create_dir_all(r.join("tests")).unwrap();
        fs::write(r.join("src/sub/b.js"), "b").unwrap();
        fs::write(r.join("src/a.js"), "a").unwrap();
        fs::write(r.join("docs/x.md"), "x").unwrap();
        fs::write(r.join("docs/keep.md"), "k").unwrap();
        fs::write(r.join("tests/t.js"), "t").unwrap();
        fs::write(r.join(".dockerignore"), "tests\ndocs\n!docs/keep.md\n").unwrap();
        fs::hard_link(r.join("src/a.js"), r.join("src/z.js")).unwrap();
        std::os::unix::fs::symlink("a.js", r.join("src/link.js")).unwrap();
        let ctx = Context::scan(r, ".dockerignore").unwrap();
        let rels: Vec<&str> = ctx.entries.iter().map(|e| e.rel.as_str()).collect();
        assert_eq!(
            rels,
            [
                ".dockerignore",
                "docs",
                "docs/keep.md",
                "src",
                "src/a.js",
                "src/link.js",
                "src/sub",
                "src/sub/b.js",
                "src/z.js"
            ]
        );
        assert_eq!(
            ctx.entries[8].kind,
            EntryKind::Hardlink {
                to: "src/a.js".into()
            }
        );
        std::os::unix::fs::symlink("../../etc/passwd", r.join("src/bad")).unwrap();
        let err = Context::scan(r, ".dockerignore").unwrap_err();
        assert!(matches!(err, ContextError::LinkOutside { .. }), "{err}");
    }
}
