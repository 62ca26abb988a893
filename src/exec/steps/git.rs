//! `ADD https://host/repo.git#ref:subdir /dest/`: a git repository cloned
//! as BuildKit's git source clones it.
//!
//! The fragment names what to check out (a branch, tag or commit; the
//! remote's HEAD when empty) and, after `:`, the folder whose contents are
//! added. `.git` is left out unless `--keep-git-dir=true`; `--checksum`
//! is the commit, or its start. Files are written 644, or 755 when
//! executable, folders 755, as BuildKit writes them.
//!
//! The host's `git` fetches into a scratch folder of the store (prompts
//! off, the system's config ignored; `HTTPS_PROXY` and the CAs as git
//! reads them), which goes when the step's layer is written. Only
//! `http(s)://` remotes: SSH needs an agent hoist does not forward.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::exec::BuildError;
use crate::store::Store;

/// A checked-out repository.
#[derive(Debug, Clone)]
pub struct Cloned {
    /// The ADD source as written.
    pub source: String,
    /// What is added: the checkout, or its subfolder.
    pub root: PathBuf,
    pub commit: String,
    _dir: Arc<tempfile::TempDir>,
}

/// Splits `https://host/repo.git#ref:subdir` into (remote, ref, subdir).
pub fn parse(source: &str) -> (String, String, String) {
    let (remote, fragment) = source.split_once('#').unwrap_or((source, ""));
    let (r, sub) = fragment.split_once(':').unwrap_or((fragment, ""));
    (remote.to_owned(), r.to_owned(), sub.to_owned())
}

/// Clones `source` into the store's scratch folder.
pub fn clone(
    store: &Store,
    source: &str,
    commit: Option<&str>,
    keep_git_dir: bool,
    offline: bool,
    at: &str,
) -> Result<Cloned, BuildError> {
    let err = |message: String| BuildError::Instruction {
        at: at.to_owned(),
        message: format!("ADD {source}: {message}"),
    };
    if offline {
        return Err(err(
            "--offline: cloning needs the network; clone it into the context and COPY it".into(),
        ));
    }
    let (remote, reference, sub) = parse(source);
    if sub.split('/').any(|p| p == "..") {
        return Err(err(format!(
            "the folder `{sub}` climbs out of the repository"
        )));
    }
    let dir = tempfile::Builder::new()
        .prefix("git-")
        .tempdir_in(store.root().join("tmp"))
        .map_err(|e| err(format!("making a scratch folder: {e}")))?;
    let git = |args: &[&str]| -> Result<String, BuildError> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir.path())
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| err(format!("running git: {e} (install git)")))?;
        if !out.status.success() {
            return Err(err(format!(
                "git {} failed: {}",
                args.first().copied().unwrap_or_default(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    git(&["init", "-q"])?;
    let want = match reference.as_str() {
        "" => "HEAD",
        r => r,
    };
    git(&["fetch", "-q", "--no-tags", &remote, want])?;
    git(&["checkout", "-q", "FETCH_HEAD"])?;
    let head = git(&["rev-parse", "HEAD"])?;
    if let Some(c) = commit {
        if !head.starts_with(c) {
            return Err(err(format!(
                "checksum mismatch: --checksum says commit {c} but {want} is {head}"
            )));
        }
    }
    if !keep_git_dir {
        std::fs::remove_dir_all(dir.path().join(".git"))
            .map_err(|e| err(format!("removing .git: {e}")))?;
    }
    let root = match sub.trim_matches('/') {
        "" => dir.path().to_owned(),
        s => dir.path().join(s),
    };
    let is_dir = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
    if !is_dir(&root) {
        return Err(err(format!("the repository has no folder `{sub}`")));
    }
    Ok(Cloned {
        source: source.to_owned(),
        root,
        commit: head,
        _dir: Arc::new(dir),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_table() {
        let cases = [
            ("https://h/r.git", ("https://h/r.git", "", "")),
            ("https://h/r.git#v1.2", ("https://h/r.git", "v1.2", "")),
            (
                "https://h/r.git#main:docs",
                ("https://h/r.git", "main", "docs"),
            ),
            (
                "https://h/r.git#:sub/dir",
                ("https://h/r.git", "", "sub/dir"),
            ),
        ];
        for (s, (r, f, d)) in cases {
            assert_eq!(
                super::parse(s),
                (r.to_owned(), f.to_owned(), d.to_owned()),
                "{s}"
            );
        }
    }
}
