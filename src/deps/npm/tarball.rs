//! Where an npm tarball's entries land, and with what mode.
//!
//! npm unpacks with pacote over node-tar, and hoist must produce the same
//! files without a temporary tree, so the rules are reproduced here as pure
//! functions the layer writer calls per entry:
//!
//! - The first path component is stripped (node-tar's `strip: 1`). It is
//!   usually `package/`, but any name is allowed (`node/`, `.`), since
//!   npm never looks at it. An entry with nothing left (the top folder
//!   itself, or a loose file beside it) is skipped.
//! - What is left must stay inside the package: an absolute path or a `..`
//!   component is an error (node-tar only warns and skips; the issue asks
//!   for a clear failure), as is an empty component in the middle of the
//!   path. `.` components are dropped. A trailing `/` (directory entries)
//!   is fine.
//! - Only regular files are written. pacote drops hard and symbolic links
//!   and every other type, and does not extract directory entries: folders
//!   are created as needed, so they are always 0755.
//! - A file's mode is pacote's `((mode | 0o666) & ~umask) | 0o600`, with the
//!   usual umask 022: `0o644` plus whatever execute bits the tarball had,
//!   so `0o744` stays `0o744`; a bin target is `0o755` (bin-links'
//!   `fixBin`). Set-id and sticky bits are dropped, as hoist drops them for
//!   every package.
//! - pacote renames `.gitignore` to `.npmignore` (npm once published
//!   `.npmignore` files that way), unless an `.npmignore` already came
//!   earlier in the same folder, in which case the `.gitignore` is dropped:
//!   [`IgnoreFileRename`].

use std::collections::HashSet;

use super::lockfile::InstallPath;
use super::path::RelPath;

/// The mode of every folder in an installed package.
pub const DIR_MODE: u32 = 0o755;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TarballError {
    #[error("`{package}`: tarball entry `{entry}` is an absolute path")]
    Absolute { package: String, entry: String },
    #[error("`{package}`: tarball entry `{entry}` leaves the package (`..`)")]
    ParentDir { package: String, entry: String },
    #[error("`{package}`: tarball entry `{entry}` has an empty path component")]
    EmptyComponent { package: String, entry: String },
    #[error("`{package}`: tarball entry `{entry}` contains a NUL byte")]
    Nul { package: String, entry: String },
}

type MakeError = fn(String, String) -> TarballError;
const ABSOLUTE: MakeError = |package, entry| TarballError::Absolute { package, entry };
const PARENT_DIR: MakeError = |package, entry| TarballError::ParentDir { package, entry };
const EMPTY_COMPONENT: MakeError = |package, entry| TarballError::EmptyComponent { package, entry };
const NUL: MakeError = |package, entry| TarballError::Nul { package, entry };

/// The path inside the package for a tarball entry of the package at
/// `package`; `Ok(None)` when the entry maps to nothing (the top folder).
pub fn entry_path(package: &InstallPath, entry: &str) -> Result<Option<RelPath>, TarballError> {
    let fail = |make: MakeError| Err(make(package.to_string(), entry.to_owned()));
    if entry.contains('\0') {
        return fail(NUL);
    }
    if entry.starts_with('/') {
        return fail(ABSOLUTE);
    }
    let Some((first, rest)) = entry.split_once('/') else {
        return Ok(None);
    };
    if first == ".." {
        return fail(PARENT_DIR);
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok(None);
    }
    let mut kept: Vec<&str> = Vec::new();
    for component in rest.split('/') {
        match component {
            "" => return fail(EMPTY_COMPONENT),
            "." => {}
            ".." => return fail(PARENT_DIR),
            c => kept.push(c),
        }
    }
    if kept.is_empty() {
        return Ok(None);
    }
    // Every component was checked above, so this cannot fail; map the
    // impossible case to the closest error rather than panic.
    match RelPath::new(&kept.join("/")) {
        Ok(path) => Ok(Some(path)),
        Err(_) => fail(EMPTY_COMPONENT),
    }
}

/// The mode npm gives a regular file from a tarball whose header says
/// `tar_mode`.
pub fn file_mode(tar_mode: u32, bin_target: bool) -> u32 {
    if bin_target {
        0o755
    } else {
        0o644 | (tar_mode & 0o111)
    }
}

/// pacote's `.gitignore` to `.npmignore` rename, which depends on the order
/// of entries in one tarball; use one per tarball.
#[derive(Debug, Default)]
pub struct IgnoreFileRename {
    seen_npmignore: HashSet<RelPath>,
}

impl IgnoreFileRename {
    pub fn new() -> Self {
        Self::default()
    }

    /// For a regular file at `path` (already through [`entry_path`]): the
    /// path to write it at, or `None` to drop it.
    pub fn file(&mut self, path: RelPath) -> Option<RelPath> {
        match path.file_name() {
            ".npmignore" => {
                self.seen_npmignore.insert(path.clone());
                Some(path)
            }
            ".gitignore" => {
                let renamed = match path.parent() {
                    Some(dir) => dir.join_str(".npmignore").ok()?,
                    None => RelPath::new(".npmignore").ok()?,
                };
                if self.seen_npmignore.contains(&renamed) {
                    None
                } else {
                    Some(renamed)
                }
            }
            _ => Some(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths() {
        let pkg = InstallPath::parse("node_modules/@s/a").unwrap();
        let cases: &[(&str, Option<&str>)] = &[
            ("package/index.js", Some("index.js")),
            ("package/lib/x.js", Some("lib/x.js")),
            ("package/lib/", Some("lib")),
            ("package/", None),
            ("package", None),
            ("README.md", None),
            ("node/lib/x.js", Some("lib/x.js")),
            ("./package.json", Some("package.json")),
            ("package/./lib/./x.js", Some("lib/x.js")),
            ("package/.", None),
            ("package/..x/y..", Some("..x/y..")),
            ("package/.gitignore", Some(".gitignore")),
        ];
        for (entry, want) in cases {
            let got = entry_path(&pkg, entry).unwrap();
            assert_eq!(got.as_ref().map(RelPath::as_str), *want, "{entry}");
        }
    }

    #[test]
    fn entry_path_errors_name_package_and_entry() {
        let pkg = InstallPath::parse("node_modules/a").unwrap();
        let cases = [
            ("package/../x", PARENT_DIR),
            ("package/lib/../../x", PARENT_DIR),
            ("../x", PARENT_DIR),
            ("/package/x", ABSOLUTE),
            ("package//x", EMPTY_COMPONENT),
            ("package/a//", EMPTY_COMPONENT),
            ("package/a\0b", NUL),
        ];
        for (entry, make) in cases {
            let err = entry_path(&pkg, entry).unwrap_err();
            assert!(err.to_string().contains("`node_modules/a`"), "{err}");
            assert_eq!(
                err,
                make("node_modules/a".into(), entry.into()),
                "{entry:?}"
            );
        }
    }

    #[test]
    fn modes_like_pacote() {
        let cases = [
            (0o644, false, 0o644),
            (0o600, false, 0o644),
            (0o666, false, 0o644),
            (0o000, false, 0o644),
            (0o755, false, 0o755),
            (0o744, false, 0o744),
            (0o700, false, 0o744),
            (0o711, false, 0o755),
            (0o4755, false, 0o755),
            (0o2644, false, 0o644),
            (0o1777, false, 0o755),
            (0o644, true, 0o755),
            (0o600, true, 0o755),
            (0o4755, true, 0o755),
        ];
        for (tar_mode, bin, want) in cases {
            assert_eq!(file_mode(tar_mode, bin), want, "{tar_mode:o} bin={bin}");
        }
        assert_eq!(DIR_MODE, 0o755);
    }

    #[test]
    fn gitignore_becomes_npmignore() {
        let p = |s: &str| RelPath::new(s).unwrap();
        let mut r = IgnoreFileRename::new();
        // entry in tarball order, written as
        let cases: &[(&str, Option<&str>)] = &[
            (".gitignore", Some(".npmignore")),
            ("lib/.npmignore", Some("lib/.npmignore")),
            ("lib/.gitignore", None),
            ("test/.gitignore", Some("test/.npmignore")),
            ("test/.npmignore", Some("test/.npmignore")),
            ("index.js", Some("index.js")),
            ("x.gitignore", Some("x.gitignore")),
        ];
        for (path, want) in cases {
            assert_eq!(
                r.file(p(path)).as_ref().map(RelPath::as_str),
                *want,
                "{path}"
            );
        }
    }
}
