//! Paths inside an image.
//!
//! An [`ImagePath`] is a relative path whose every component is a normal
//! name: never empty, `.`, `..`, nor containing a NUL. Such a path cannot
//! leave the image's root, whatever it is joined to. It is the only kind
//! of path the layer writer accepts and the kind every reader produces
//! after checking a tar entry, so the check happens once, at the edge.
//!
//! A tar entry's name is not an [`ImagePath`] yet: layers made by other
//! tools may name `/abs/file` or `../../up/file`. [`clean_entry_path`]
//! reads such names as containerd's `archive.Apply` does (the name is
//! cleaned lexically as if it hung from `/`, so `..` stops at the root),
//! and every reader of base layers goes through it, so hoist, containerd
//! and the image's author agree on where an entry lands.

use std::fmt;

/// Why a path is not a safe image path.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("path `{path}` {why}")]
pub struct PathError {
    pub path: String,
    pub why: &'static str,
}

/// A validated path inside an image, stored without a leading `/`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImagePath(String);

impl ImagePath {
    /// Accepts an absolute or relative path; a leading `/` or `./` is
    /// dropped, repeated and trailing `/` are folded. Refuses `..`, NUL,
    /// and the root itself.
    pub fn new(path: &str) -> Result<ImagePath, PathError> {
        let err = |why| PathError {
            path: path.to_owned(),
            why,
        };
        if path.contains('\0') {
            return Err(err("contains a NUL byte"));
        }
        let mut parts = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => continue,
                ".." => return Err(err("climbs out with `..`")),
                p => parts.push(p),
            }
        }
        if parts.is_empty() {
            return Err(err("names the root, not a file in it"));
        }
        Ok(ImagePath(parts.join("/")))
    }

    /// The path without a leading `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path with a leading `/`.
    pub fn absolute(&self) -> String {
        format!("/{}", self.0)
    }

    /// `self/name`, when `name` is a safe relative path.
    pub fn join(&self, rel: &str) -> Result<ImagePath, PathError> {
        ImagePath::new(&format!("{}/{}", self.0, rel))
    }

    /// The parent folder, or `None` at the top level.
    pub fn parent(&self) -> Option<ImagePath> {
        self.0
            .rsplit_once('/')
            .map(|(p, _)| ImagePath(p.to_owned()))
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// Every ancestor, outermost first (`a`, `a/b` for `a/b/c`).
    pub fn ancestors(&self) -> Vec<ImagePath> {
        let mut out = Vec::new();
        let mut cur = self.parent();
        while let Some(p) = cur {
            cur = p.parent();
            out.push(p);
        }
        out.reverse();
        out
    }

    /// Whether `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &ImagePath) -> bool {
        self.0 == other.0
            || (self.0.starts_with(&other.0) && self.0.as_bytes().get(other.0.len()) == Some(&b'/'))
    }
}

/// Where a tar entry's name (or a hard link's target) lands in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryPath {
    /// The root itself (`./`, `/`, `a/..`, `..`).
    Root,
    /// A path inside the image.
    Path(ImagePath),
    /// A name that is not UTF-8 once cleaned, shown lossily.
    NotUtf8(String),
}

/// Reads a tar entry's name as containerd does: `filepath.Clean("/" +
/// name)`, made relative. Empty and `.` components go, a `..` removes the
/// component before it and is dropped at the root (containerd's
/// `fs.RootPath` joins every name to `/` first). So `/abs/file` is
/// `abs/file`, `../../up/file` is `up/file` and `a/../../b` is `b`: the
/// name can never leave the image. The same reading serves hard-link
/// targets (containerd's `hardlinkRootPath`); symlink targets are never
/// cleaned, they are kept as written.
///
/// A NUL byte (possible only through a PAX record) is refused.
pub fn clean_entry_path(raw: &[u8]) -> Result<EntryPath, PathError> {
    let lossy = || String::from_utf8_lossy(raw).into_owned();
    if raw.contains(&0) {
        return Err(PathError {
            path: lossy(),
            why: "contains a NUL byte",
        });
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Ok(EntryPath::Root);
    }
    let joined = parts.join(&b'/');
    match String::from_utf8(joined) {
        // Every component is a normal name, so `new` cannot refuse it.
        Ok(s) => ImagePath::new(&s).map(EntryPath::Path),
        Err(e) => Ok(EntryPath::NotUtf8(
            String::from_utf8_lossy(e.as_bytes()).into_owned(),
        )),
    }
}

impl fmt::Display for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

impl fmt::Debug for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImagePath(/{})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("/etc/passwd", Some("etc/passwd")),
            ("etc/passwd", Some("etc/passwd")),
            ("./etc//passwd/", Some("etc/passwd")),
            ("app", Some("app")),
            ("../etc", None),
            ("a/../../b", None),
            ("a/..", None),
            ("/", None),
            ("", None),
            (".", None),
            ("a\0b", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                ImagePath::new(input).ok().as_ref().map(ImagePath::as_str),
                *want,
                "{input:?}"
            );
        }
    }

    #[test]
    fn clean_entry_path_table() {
        use EntryPath::{NotUtf8, Root};
        let path = |s: &str| EntryPath::Path(ImagePath::new(s).unwrap());
        // Each expected value is what containerd's
        // filepath.Join(root, filepath.Clean("/"+name)) gives.
        let cases: &[(&[u8], EntryPath)] = &[
            (b"etc/passwd", path("etc/passwd")),
            (b"./etc//passwd/", path("etc/passwd")),
            (b"/abs/file", path("abs/file")),
            (b"//abs/./file", path("abs/file")),
            (b"../../up/file", path("up/file")),
            (b"a/../../b", path("b")),
            (b"a/b/../c", path("a/c")),
            (b"/../../etc/shadow", path("etc/shadow")),
            (b"a/../.wh.x", path(".wh.x")),
            (b"..", Root),
            (b"a/..", Root),
            (b"./", Root),
            (b"/", Root),
            (b"", Root),
            (b"a\xff/../b", path("b")),
            (b"x/a\xffb", NotUtf8("x/a\u{fffd}b".into())),
        ];
        for (raw, want) in cases {
            let got = clean_entry_path(raw);
            assert_eq!(got.as_ref(), Ok(want), "{:?}", String::from_utf8_lossy(raw));
        }
        assert!(clean_entry_path(b"a\0b").is_err());
    }

    #[test]
    fn relations() {
        let p = ImagePath::new("a/b/c").unwrap();
        assert_eq!(p.parent().unwrap().as_str(), "a/b");
        assert_eq!(p.file_name(), "c");
        let anc: Vec<_> = p
            .ancestors()
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect();
        assert_eq!(anc, ["a", "a/b"]);
        assert!(p.starts_with(&ImagePath::new("a/b").unwrap()));
        assert!(!ImagePath::new("a/bc")
            .unwrap()
            .starts_with(&ImagePath::new("a/b").unwrap()));
    }
}
