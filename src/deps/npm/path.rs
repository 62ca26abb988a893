//! Relative paths that cannot leave the folder they are relative to.
//!
//! npm data names paths in three places that end up in a layer: lockfile
//! keys, `bin` targets and tarball entries. Each is untrusted text. A
//! [`RelPath`] is one that was checked once, at the edge, to be relative,
//! non-empty and free of `..`, `.` and empty components, so code further in
//! can put it under a prefix without checking again (the idea of rattler's
//! `ValidatedRelativePath`).
//!
//! Two constructors, because npm itself treats the sources differently:
//! lockfile keys are written by npm in canonical form, so anything odd is
//! refused ([`RelPath::new`]); `bin` targets are written by package authors
//! (`./bin/cli.js`, `lib//x.js`) and npm normalises them lexically, so
//! [`RelPath::normalize`] does the same but still refuses to climb out.

use std::fmt;

/// A relative `/`-separated path with at least one component, none of them
/// empty, `.` or `..`, and no NUL byte.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(String);

/// Why a path is not a [`RelPath`]; each carries the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelPathError {
    #[error("path is empty")]
    Empty,
    #[error("path `{0}` is absolute")]
    Absolute(String),
    #[error("path `{0}` leaves its folder (`..`)")]
    ParentDir(String),
    #[error("path `{0}` has an empty component")]
    EmptyComponent(String),
    #[error("path `{0}` has a `.` component")]
    CurrentDir(String),
    #[error("path `{0}` contains a NUL byte")]
    Nul(String),
}

impl RelPath {
    /// Accepts only a path already in canonical form.
    pub fn new(path: &str) -> Result<Self, RelPathError> {
        check_common(path)?;
        for component in path.split('/') {
            match component {
                "" => return Err(RelPathError::EmptyComponent(path.to_owned())),
                "." => return Err(RelPathError::CurrentDir(path.to_owned())),
                ".." => return Err(RelPathError::ParentDir(path.to_owned())),
                _ => {}
            }
        }
        Ok(RelPath(path.to_owned()))
    }

    /// Normalises lexically as npm's `path.join` does (drops `.` and empty
    /// components, lets `a/..` cancel), but refuses a path that climbs above
    /// its start or is absolute, instead of clamping it as npm would.
    pub fn normalize(path: &str) -> Result<Self, RelPathError> {
        check_common(path)?;
        let mut out: Vec<&str> = Vec::new();
        for component in path.split('/') {
            match component {
                "" | "." => {}
                ".." => {
                    if out.pop().is_none() {
                        return Err(RelPathError::ParentDir(path.to_owned()));
                    }
                }
                c => out.push(c),
            }
        }
        if out.is_empty() {
            return Err(RelPathError::Empty);
        }
        Ok(RelPath(out.join("/")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The path without its last component, `None` for a single component.
    pub fn parent(&self) -> Option<RelPath> {
        self.0.rsplit_once('/').map(|(p, _)| RelPath(p.to_owned()))
    }

    /// `self/other`; both are valid, so the result is too.
    pub fn join(&self, other: &RelPath) -> RelPath {
        RelPath(format!("{}/{}", self.0, other.0))
    }

    /// `self/component` for a single checked component.
    pub(crate) fn join_str(&self, component: &str) -> Result<RelPath, RelPathError> {
        let tail = RelPath::new(component)?;
        Ok(self.join(&tail))
    }
}

fn check_common(path: &str) -> Result<(), RelPathError> {
    if path.is_empty() {
        return Err(RelPathError::Empty);
    }
    if path.contains('\0') {
        return Err(RelPathError::Nul(path.to_owned()));
    }
    if path.starts_with('/') {
        return Err(RelPathError::Absolute(path.to_owned()));
    }
    Ok(())
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RelPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The text of a relative symlink placed at `link` that points at `target`,
/// both relative to the same root: what Node's
/// `path.relative(dirname(link), target)` gives, as npm writes it.
pub fn relative_link(link: &RelPath, target: &RelPath) -> String {
    let mut from: Vec<&str> = link.components().collect();
    from.pop();
    let to: Vec<&str> = target.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; from.len() - common];
    parts.extend(&to[common..]);
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_accepts_only_canonical_paths() {
        let cases: &[(&str, Result<&str, RelPathError>)] = &[
            ("a", Ok("a")),
            ("a/b/c.js", Ok("a/b/c.js")),
            ("@scope/name", Ok("@scope/name")),
            ("a..b/c", Ok("a..b/c")),
            ("", Err(RelPathError::Empty)),
            ("/a", Err(RelPathError::Absolute("/a".into()))),
            ("a//b", Err(RelPathError::EmptyComponent("a//b".into()))),
            ("a/", Err(RelPathError::EmptyComponent("a/".into()))),
            ("./a", Err(RelPathError::CurrentDir("./a".into()))),
            ("a/../b", Err(RelPathError::ParentDir("a/../b".into()))),
            ("..", Err(RelPathError::ParentDir("..".into()))),
            ("a\0b", Err(RelPathError::Nul("a\0b".into()))),
        ];
        for (input, want) in cases {
            let got = RelPath::new(input);
            assert_eq!(
                got.as_ref().map(RelPath::as_str),
                want.as_ref().map(|s| *s),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn normalize_cancels_but_never_climbs() {
        let cases: &[(&str, Result<&str, RelPathError>)] = &[
            ("./bin/cli.js", Ok("bin/cli.js")),
            ("bin//cli.js", Ok("bin/cli.js")),
            ("bin/../cli.js", Ok("cli.js")),
            ("a/./b/", Ok("a/b")),
            ("../x", Err(RelPathError::ParentDir("../x".into()))),
            (
                "a/../../x",
                Err(RelPathError::ParentDir("a/../../x".into())),
            ),
            (
                "/etc/passwd",
                Err(RelPathError::Absolute("/etc/passwd".into())),
            ),
            (".", Err(RelPathError::Empty)),
            ("a/..", Err(RelPathError::Empty)),
            ("", Err(RelPathError::Empty)),
        ];
        for (input, want) in cases {
            let got = RelPath::normalize(input);
            assert_eq!(
                got.as_ref().map(RelPath::as_str),
                want.as_ref().map(|s| *s),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn parent_file_name_join() {
        let p = RelPath::new("node_modules/@s/n").unwrap();
        assert_eq!(p.file_name(), "n");
        assert_eq!(p.parent().unwrap().as_str(), "node_modules/@s");
        assert_eq!(RelPath::new("a").unwrap().parent(), None);
        assert_eq!(
            p.join(&RelPath::new("bin/x").unwrap()).as_str(),
            "node_modules/@s/n/bin/x"
        );
        assert!(p.join_str("..").is_err());
        assert!(p.join_str("a/b").is_ok());
    }

    #[test]
    fn relative_link_matches_node_path_relative() {
        let cases = [
            (
                "node_modules/.bin/mime",
                "node_modules/mime/cli.js",
                "../mime/cli.js",
            ),
            (
                "node_modules/a/node_modules/.bin/x",
                "node_modules/a/node_modules/@s/x/bin/x.js",
                "../@s/x/bin/x.js",
            ),
            ("node_modules/a", "packages/a", "../packages/a"),
            ("node_modules/@s/a", "packages/a", "../../packages/a"),
            ("packages/a/node_modules/b", "packages/b", "../../b"),
            ("a", "b", "b"),
            ("x/a", "x", "."),
        ];
        for (link, target, want) in cases {
            let got = relative_link(&RelPath::new(link).unwrap(), &RelPath::new(target).unwrap());
            assert_eq!(got, want, "link {link} -> {target}");
        }
    }
}
