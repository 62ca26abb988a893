//! The `node_modules/.bin` links npm makes for installed packages.
//!
//! npm (bin-links, via `npm ci`) gives every installed package with a
//! `bin` field one relative symlink per command in the `.bin` folder of the
//! `node_modules` that holds the package:
//! `node_modules/a/node_modules/.bin/x -> ../@s/b/cli.js` for a package at
//! `node_modules/a/node_modules/@s/b`. The project root and workspace
//! folders get none (they are "top" packages); a workspace link at
//! `node_modules/w` gets the bins of the folder it points at, through the
//! link.
//!
//! `bin` is normalised as npm's `normalize-package-bin` does: a string is
//! one command named after the package without its scope; target paths are
//! normalised lexically. Where npm would quietly clamp a hostile entry
//! (`../../etc/passwd` becomes `etc/passwd`, `a/b` as a name becomes `b`),
//! hoist refuses it instead and names the package and the bin. An empty
//! target is skipped, as npm skips it. `directories.bin` is not in
//! lockfiles and is not expanded here.
//!
//! When two packages in one `node_modules` want the same command, npm's
//! link step processes packages sorted by depth and then path, and the
//! first one keeps the name; links to workspaces come after all regular
//! packages. The losers are kept in [`Bins::shadowed`] for a warning. (npm
//! sorts paths with `localeCompare`; byte order is used here, which only
//! differs for names that differ in case or punctuation alone.)
//!
//! Every bin target is made executable whether or not its link won, as
//! pacote does when it unpacks; [`Bins::is_executable`] answers that for
//! the tarball writer. npm also skips a link whose target is missing from
//! the tarball; only the writer can know that.

use std::collections::{BTreeMap, HashSet};

use super::lockfile::{Bin, InstallPath, Lockfile};
use super::path::{relative_link, RelPath, RelPathError};
use super::select::{Kind, Selection};

/// One `.bin` symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinLink {
    /// The package it belongs to (for a workspace link, the link's path).
    pub package: InstallPath,
    /// The command name.
    pub name: String,
    /// Where the symlink goes, from the project root:
    /// `node_modules/.bin/<name>`.
    pub link: RelPath,
    /// The symlink's text: `../<package>/<file>`.
    pub target: String,
    /// The file inside the package it points at.
    pub file: RelPath,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinError {
    #[error("`{package}`: bin name `{name}` is not a plain command name")]
    BadName { package: String, name: String },
    #[error("`{package}`: bin `{name}` points at `{path}`, outside the package")]
    Outside {
        package: String,
        name: String,
        path: String,
    },
}

/// All `.bin` links of one selection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bins {
    /// The links to write, sorted by link path.
    pub links: Vec<BinLink>,
    /// Links that lost their name to an earlier package in the same folder.
    pub shadowed: Vec<BinLink>,
    executables: HashSet<(InstallPath, RelPath)>,
}

impl Bins {
    /// Whether `file` inside the package at `package` is a bin target, and
    /// so must be executable.
    pub fn is_executable(&self, package: &InstallPath, file: &RelPath) -> bool {
        // Avoid cloning for the lookup in the common case of no bins.
        !self.executables.is_empty() && self.executables.contains(&(package.clone(), file.clone()))
    }
}

/// The package name without its scope: `@s/b` -> `b`.
fn unscoped(name: &str) -> &str {
    if name.starts_with('@') {
        name.split_once('/').map_or(name, |(_, n)| n)
    } else {
        name
    }
}

/// A package's `bin` as a map of command name to file inside the package.
/// `package` names the package in errors; `package_name` is its real name,
/// which a single-string `bin` is called by.
pub fn normalize_bin(
    package: &str,
    package_name: &str,
    bin: &Bin,
) -> Result<BTreeMap<String, RelPath>, BinError> {
    let entries: Vec<(&str, &str)> = match bin {
        Bin::Single(path) => vec![(unscoped(package_name), path.as_str())],
        Bin::Map(map) => map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
    };
    let mut out = BTreeMap::new();
    for (name, path) in entries {
        let plain =
            !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
        if !plain {
            return Err(BinError::BadName {
                package: package.to_owned(),
                name: name.to_owned(),
            });
        }
        // npm turns backslashes into slashes before normalising.
        let file = match RelPath::normalize(&path.replace('\\', "/")) {
            Ok(file) => file,
            Err(RelPathError::Empty) => continue,
            Err(_) => {
                return Err(BinError::Outside {
                    package: package.to_owned(),
                    name: name.to_owned(),
                    path: path.to_owned(),
                })
            }
        };
        out.insert(name.to_owned(), file);
    }
    Ok(out)
}

/// The `.bin` links npm would make for a selection.
pub fn bin_links(lockfile: &Lockfile, selection: &Selection<'_>) -> Result<Bins, BinError> {
    // (is a link, depth, path): npm links regular packages first, then
    // workspace links, each sorted by depth then path.
    let mut order: Vec<(bool, usize, &InstallPath, &Bin, String)> = Vec::new();
    for entry in &selection.install {
        let path = entry.path;
        let source = match &entry.kind {
            Kind::Workspace => continue,
            Kind::Tarball | Kind::Bundled => Some(entry.package),
            Kind::Link { target } => lockfile.get(target.as_str()),
        };
        let Some(source) = source else { continue };
        let Some(bin) = &source.bin else { continue };
        let name = source
            .name
            .clone()
            .or_else(|| path.name().map(str::to_owned))
            .unwrap_or_default();
        let is_link = matches!(entry.kind, Kind::Link { .. });
        order.push((is_link, path.depth(), path, bin, name));
    }
    order.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));

    let mut bins = Bins::default();
    let mut taken: HashSet<RelPath> = HashSet::new();
    for (_, _, path, bin, name) in order {
        let Some(folder) = path.node_modules() else {
            continue;
        };
        let dot_bin = folder.join_str(".bin").map_err(|_| BinError::BadName {
            package: path.to_string(),
            name: ".bin".into(),
        })?;
        for (command, file) in normalize_bin(path.as_str(), &name, bin)? {
            let link = dot_bin.join_str(&command).map_err(|_| BinError::BadName {
                package: path.to_string(),
                name: command.clone(),
            })?;
            let target = relative_link(&link, &path.rel_path().join(&file));
            bins.executables.insert((path.clone(), file.clone()));
            let entry = BinLink {
                package: path.clone(),
                name: command,
                link,
                target,
                file,
            };
            if taken.insert(entry.link.clone()) {
                bins.links.push(entry);
            } else {
                bins.shadowed.push(entry);
            }
        }
    }
    bins.links.sort_by(|a, b| a.link.cmp(&b.link));
    Ok(bins)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps::npm::select::{select, Libc, Omit, Target};

    const WEB_LOCK: &[u8] = include_bytes!("../../../testdata/web/package-lock.json");

    fn map(entries: &[(&str, &str)]) -> Bin {
        Bin::Map(
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn normalize() {
        // package name, bin, expected (name, file) pairs
        type Case<'a> = (&'a str, Bin, Vec<(&'a str, &'a str)>);
        let cases: Vec<Case> = vec![
            (
                "mime",
                Bin::Single("cli.js".into()),
                vec![("mime", "cli.js")],
            ),
            (
                "@s/tool",
                Bin::Single("./bin/tool.js".into()),
                vec![("tool", "bin/tool.js")],
            ),
            (
                "x",
                map(&[("a", "bin//a.js"), ("b", "lib/../b.js"), ("c", "bin\\c.js")]),
                vec![("a", "bin/a.js"), ("b", "b.js"), ("c", "bin/c.js")],
            ),
            (
                "x",
                map(&[("empty", ""), ("dot", "."), ("ok", "ok.js")]),
                vec![("ok", "ok.js")],
            ),
            ("x", map(&[]), vec![]),
        ];
        for (name, bin, want) in cases {
            let got = normalize_bin("node_modules/x", name, &bin).unwrap();
            let got: Vec<(&str, &str)> =
                got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert_eq!(got, want, "{name} {bin:?}");
        }
    }

    #[test]
    fn normalize_errors_name_package_and_bin() {
        let outside = |name: &str, path: &str| BinError::Outside {
            package: "node_modules/x".into(),
            name: name.into(),
            path: path.into(),
        };
        let bad_name = |name: &str| BinError::BadName {
            package: "node_modules/x".into(),
            name: name.into(),
        };
        let cases = [
            (map(&[("a", "../x")]), outside("a", "../x")),
            (map(&[("a", "bin/../../x")]), outside("a", "bin/../../x")),
            (map(&[("a", "/usr/bin/env")]), outside("a", "/usr/bin/env")),
            (map(&[("a", "..\\x")]), outside("a", "..\\x")),
            (map(&[("../evil", "x.js")]), bad_name("../evil")),
            (map(&[("a/b", "x.js")]), bad_name("a/b")),
            (map(&[("a\\b", "x.js")]), bad_name("a\\b")),
            (map(&[("..", "x.js")]), bad_name("..")),
            (map(&[(".", "x.js")]), bad_name(".")),
            (map(&[("", "x.js")]), bad_name("")),
        ];
        for (bin, want) in cases {
            let err = normalize_bin("node_modules/x", "x", &bin).unwrap_err();
            assert!(err.to_string().contains("`node_modules/x`"), "{err}");
            assert_eq!(err, want, "{bin:?}");
        }
    }

    fn lock(packages: &str) -> Lockfile {
        let json =
            format!(r#"{{"lockfileVersion": 3, "packages": {{"": {{"name": "app"}}{packages}}}}}"#);
        Lockfile::parse(json.as_bytes()).unwrap()
    }

    fn linux() -> Target {
        Target::from_oci("linux", "amd64", Some(Libc::Glibc)).unwrap()
    }

    fn links(bins: &[BinLink]) -> Vec<(&str, &str)> {
        bins.iter()
            .map(|b| (b.link.as_str(), b.target.as_str()))
            .collect()
    }

    #[test]
    fn links_go_in_the_nearest_node_modules() {
        let l = lock(
            r#", "node_modules/mime": {"bin": {"mime": "cli.js"}},
                 "node_modules/@s/tool": {"bin": "./bin/tool.js"},
                 "node_modules/alias": {"name": "@real/thing", "bin": "t.js"},
                 "node_modules/a/node_modules/semver": {"bin": {"semver": "bin/semver.js"}},
                 "node_modules/a/node_modules/@t/x/node_modules/y": {"bin": {"y": "y"}},
                 "packages/w": {"name": "@ws/w", "bin": {"w": "w.js"}},
                 "packages/w/node_modules/z": {"bin": {"z": "z.js"}},
                 "node_modules/@ws/w": {"resolved": "packages/w", "link": true},
                 "node_modules/nobin": {}"#,
        );
        let s = select(&l, Omit::NOTHING, &linux()).unwrap();
        let bins = bin_links(&l, &s).unwrap();
        assert_eq!(
            links(&bins.links),
            [
                ("node_modules/.bin/mime", "../mime/cli.js"),
                ("node_modules/.bin/thing", "../alias/t.js"),
                ("node_modules/.bin/tool", "../@s/tool/bin/tool.js"),
                ("node_modules/.bin/w", "../@ws/w/w.js"),
                (
                    "node_modules/a/node_modules/.bin/semver",
                    "../semver/bin/semver.js"
                ),
                (
                    "node_modules/a/node_modules/@t/x/node_modules/.bin/y",
                    "../y/y"
                ),
                ("packages/w/node_modules/.bin/z", "../z/z.js"),
            ]
        );
        assert!(bins.shadowed.is_empty());
        let tool = InstallPath::parse("node_modules/@s/tool").unwrap();
        assert!(bins.is_executable(&tool, &RelPath::new("bin/tool.js").unwrap()));
        assert!(!bins.is_executable(&tool, &RelPath::new("index.js").unwrap()));
        let mime = bins.links.iter().find(|b| b.name == "mime").unwrap();
        assert_eq!(mime.package.as_str(), "node_modules/mime");
        assert_eq!(mime.file.as_str(), "cli.js");
    }

    #[test]
    fn first_package_keeps_a_contested_name() {
        let l = lock(
            r#", "node_modules/zeta": {"bin": {"tool": "z.js"}},
                 "node_modules/alpha": {"bin": {"tool": "a.js"}},
                 "node_modules/ws": {"resolved": "packages/ws", "link": true},
                 "packages/ws": {"name": "ws", "bin": {"alpha-cli": "x.js", "tool": "w.js"}}"#,
        );
        let s = select(&l, Omit::NOTHING, &linux()).unwrap();
        let bins = bin_links(&l, &s).unwrap();
        assert_eq!(
            links(&bins.links),
            [
                ("node_modules/.bin/alpha-cli", "../ws/x.js"),
                ("node_modules/.bin/tool", "../alpha/a.js"),
            ]
        );
        assert_eq!(
            links(&bins.shadowed),
            [
                ("node_modules/.bin/tool", "../zeta/z.js"),
                ("node_modules/.bin/tool", "../ws/w.js"),
            ]
        );
        // A shadowed bin's file is still made executable, as pacote does.
        let zeta = InstallPath::parse("node_modules/zeta").unwrap();
        assert!(bins.is_executable(&zeta, &RelPath::new("z.js").unwrap()));
    }

    #[test]
    fn omitted_packages_get_no_links_and_bad_bins_fail() {
        let l = lock(
            r#", "node_modules/dev-tool": {"dev": true, "bin": {"t": "../../evil"}},
                 "node_modules/ok": {"bin": {"ok": "ok.js"}}"#,
        );
        let prod = select(&l, Omit::DEV, &linux()).unwrap();
        assert_eq!(
            links(&bin_links(&l, &prod).unwrap().links),
            [("node_modules/.bin/ok", "../ok/ok.js")]
        );
        let dev = select(&l, Omit::NOTHING, &linux()).unwrap();
        assert_eq!(
            bin_links(&l, &dev).unwrap_err(),
            BinError::Outside {
                package: "node_modules/dev-tool".into(),
                name: "t".into(),
                path: "../../evil".into(),
            }
        );
    }

    #[test]
    fn web_lockfile() {
        let l = Lockfile::parse(WEB_LOCK).unwrap();
        let prod = select(&l, Omit::DEV, &linux()).unwrap();
        let bins = bin_links(&l, &prod).unwrap();
        assert_eq!(
            links(&bins.links),
            [("node_modules/.bin/mime", "../mime/cli.js")]
        );
        let dev = select(&l, Omit::NOTHING, &linux()).unwrap();
        let dev_bins = bin_links(&l, &dev).unwrap();
        assert_eq!(
            links(&dev_bins.links),
            [
                ("node_modules/.bin/mime", "../mime/cli.js"),
                ("node_modules/.bin/nodemon", "../nodemon/bin/nodemon.js"),
                ("node_modules/.bin/nodetouch", "../touch/bin/nodetouch.js"),
                ("node_modules/.bin/semver", "../semver/bin/semver.js"),
            ]
        );
        assert!(dev_bins.shadowed.is_empty());
    }
}
