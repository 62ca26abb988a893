//! package.json and package-lock.json, read from bytes.
//!
//! hoist installs exactly what the lockfile says, so the lockfile is the
//! only input that matters; package.json is read to check the two agree
//! (as `npm ci` refuses a lockfile out of step with its package.json).
//!
//! Only lockfile versions 2 and 3 are read (npm 7 and later). Both have the
//! `packages` map: one entry per folder npm creates, keyed by its path from
//! the project root (`node_modules/a/node_modules/@s/b`), with `""` the
//! project itself and bare folder keys (`packages/a`) for workspaces. A
//! version 1 lockfile only has the nested `dependencies` tree, from which
//! the layout npm would choose cannot be read back without re-running its
//! placement, so it is refused with the command that upgrades it.
//! npm-shrinkwrap.json has the same format and wins over package-lock.json
//! when both are present ([`choose_lockfile`]).
//!
//! Keys are validated here, once: an [`InstallPath`] is a chain of
//! `node_modules/<name>` (scoped names `@scope/name` allowed) under the
//! project root or a workspace folder, or a workspace folder itself; no
//! `..`, no absolute path, no empty component. Everything further in joins
//! them under the workdir without checking again.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use super::integrity::{Integrity, IntegrityError};
use super::path::RelPath;

/// Lockfile names npm reads, in the order it prefers them.
pub const LOCKFILE_NAMES: [&str; 2] = ["npm-shrinkwrap.json", "package-lock.json"];

/// Lockfiles of other package managers, named in the error when one of them
/// is all a project has.
const FOREIGN_LOCKFILES: [&str; 4] = ["yarn.lock", "pnpm-lock.yaml", "bun.lock", "bun.lockb"];

#[derive(Debug, thiserror::Error)]
pub enum LockfileError {
    #[error("package.json is not valid: {0}")]
    PackageJson(#[source] serde_json::Error),
    #[error("the lockfile is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error(
        "the lockfile is version 1 (npm 6 or older) and has no `packages` map; \
         regenerate it with npm 7 or later: `npm install --package-lock-only`"
    )]
    Version1,
    #[error(
        "the lockfile has lockfileVersion {0}; hoist reads versions 2 and 3 \
         (npm 7 and later)"
    )]
    UnsupportedVersion(String),
    #[error(
        "the lockfile (version {0}) has no `packages` map; regenerate it: \
         `npm install --package-lock-only`"
    )]
    MissingPackages(u64),
    #[error("the lockfile has no root entry (`\"\"`) in `packages`; regenerate it: `npm install --package-lock-only`")]
    MissingRoot,
    #[error("lockfile key `{key}` is not an install path: {reason}")]
    InvalidKey { key: String, reason: String },
    #[error("lockfile entry `{key}` is malformed: {source}")]
    Entry {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("lockfile entry `{key}` has a bad integrity: {source}")]
    Integrity {
        key: String,
        #[source]
        source: IntegrityError,
    },
    #[error(
        "package.json and the lockfile are out of step: {kind} `{name}` is {} in package.json \
         but {} in the lockfile; run `npm install` to update the lockfile",
        show_spec(package_json),
        show_spec(lockfile)
    )]
    OutOfStep {
        kind: &'static str,
        name: String,
        package_json: Option<String>,
        lockfile: Option<String>,
    },
    #[error("no package.json found; an npm project needs package.json and package-lock.json")]
    NoPackageJson,
    #[error(
        "package.json has no lockfile beside it; create package-lock.json with \
         `npm install --package-lock-only`"
    )]
    NoLockfile,
    #[error(
        "found {}, but hoist reads only package-lock.json and npm-shrinkwrap.json; \
         create one with `npm install --package-lock-only`",
        found.join(", ")
    )]
    ForeignLockfile { found: Vec<String> },
}

fn show_spec(spec: &Option<String>) -> String {
    match spec {
        Some(s) => format!("`{s}`"),
        None => "absent".to_owned(),
    }
}

/// Which lockfile to read, given the file names present in the project
/// folder: npm-shrinkwrap.json over package-lock.json, as npm does.
pub fn choose_lockfile(present: &[&str]) -> Result<&'static str, LockfileError> {
    if !present.contains(&"package.json") {
        return Err(LockfileError::NoPackageJson);
    }
    for name in LOCKFILE_NAMES {
        if present.contains(&name) {
            return Ok(name);
        }
    }
    let found: Vec<String> = FOREIGN_LOCKFILES
        .iter()
        .filter(|f| present.contains(f))
        .map(|f| (*f).to_owned())
        .collect();
    if found.is_empty() {
        Err(LockfileError::NoLockfile)
    } else {
        Err(LockfileError::ForeignLockfile { found })
    }
}

/// A `packages` key other than the root: where npm puts one folder or link.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstallPath {
    path: RelPath,
    /// Byte offset of the package name in `path`; `None` for a workspace
    /// folder (a key with no `node_modules` component).
    name_at: Option<usize>,
    /// How many `node_modules/<name>` steps the key has.
    depth: usize,
}

impl InstallPath {
    /// Validates a lockfile key. The root key `""` is not an install path;
    /// [`Lockfile::parse`] keeps it apart.
    pub fn parse(key: &str) -> Result<InstallPath, LockfileError> {
        let bad = |reason: String| LockfileError::InvalidKey {
            key: key.to_owned(),
            reason,
        };
        let path = RelPath::new(key).map_err(|e| bad(e.to_string()))?;
        let segments: Vec<&str> = key.split('/').collect();
        let Some(first) = segments.iter().position(|s| *s == "node_modules") else {
            return Ok(InstallPath {
                path,
                name_at: None,
                depth: 0,
            });
        };
        // Byte offset of each segment, to slice names out of `path`.
        let mut offsets = Vec::with_capacity(segments.len());
        let mut at = 0;
        for s in &segments {
            offsets.push(at);
            at += s.len() + 1;
        }
        let mut i = first;
        let mut depth = 0;
        let mut name_at = 0;
        while i < segments.len() {
            if segments[i] != "node_modules" {
                return Err(bad(format!(
                    "expected `node_modules` where `{}` is",
                    segments[i]
                )));
            }
            let Some(&name) = segments.get(i + 1) else {
                return Err(bad("ends in `node_modules` without a package name".into()));
            };
            name_at = offsets[i + 1];
            check_name_segment(name).map_err(&bad)?;
            if name.starts_with('@') {
                if name.len() == 1 {
                    return Err(bad("scope `@` has no name".into()));
                }
                let Some(&rest) = segments.get(i + 2) else {
                    return Err(bad(format!("scope `{name}` without a package name")));
                };
                if rest.starts_with('@') {
                    return Err(bad(format!("`{name}/{rest}` is not a package name")));
                }
                check_name_segment(rest).map_err(&bad)?;
                i += 3;
            } else {
                i += 2;
            }
            depth += 1;
        }
        Ok(InstallPath {
            path,
            name_at: Some(name_at),
            depth,
        })
    }

    pub fn as_str(&self) -> &str {
        self.path.as_str()
    }

    pub fn rel_path(&self) -> &RelPath {
        &self.path
    }

    /// The folder name the package is installed under (`@s/b` for
    /// `node_modules/a/node_modules/@s/b`); `None` for a workspace folder.
    /// For an alias this is the alias, not the package's own name.
    pub fn name(&self) -> Option<&str> {
        self.name_at.map(|at| &self.path.as_str()[at..])
    }

    /// The `node_modules` folder holding this package, `None` for a
    /// workspace folder.
    pub fn node_modules(&self) -> Option<RelPath> {
        let at = self.name_at?;
        RelPath::new(&self.path.as_str()[..at - 1]).ok()
    }

    /// The package whose `node_modules` holds this one: `node_modules/a`
    /// for `node_modules/a/node_modules/b`, `packages/w` for
    /// `packages/w/node_modules/b`; `None` when that is the project root
    /// (or for a workspace folder).
    pub fn parent(&self) -> Option<InstallPath> {
        let folder = self.node_modules()?;
        let owner = folder.as_str().strip_suffix("/node_modules")?;
        InstallPath::parse(owner).ok()
    }

    /// A workspace folder (`packages/a`), which holds the workspace's own
    /// files rather than an installed package.
    pub fn is_workspace_folder(&self) -> bool {
        self.name_at.is_none()
    }

    /// Number of `node_modules/<name>` steps: 1 for `node_modules/a`.
    pub fn depth(&self) -> usize {
        self.depth
    }
}

fn check_name_segment(name: &str) -> Result<(), String> {
    // `.bin` and `.package-lock.json` live in node_modules; a package named
    // like them would collide. npm package names never start with a dot.
    if name.starts_with('.') {
        return Err(format!("`{name}` is not a package name (starts with `.`)"));
    }
    if name == "node_modules" {
        return Err("`node_modules` is not a package name".into());
    }
    Ok(())
}

impl fmt::Display for InstallPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `bin` field: a single path (named after the package) or a map of names
/// to paths. npm normalises to the map form when it writes lockfiles, but
/// both are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Bin {
    Single(String),
    Map(BTreeMap<String, String>),
}

/// One `packages` entry, with the fields hoist acts on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Package {
    /// Set when it differs from the folder name (aliases), and for the root
    /// and workspace folders.
    pub name: Option<String>,
    pub version: Option<String>,
    /// The tarball URL; for a link, the target folder relative to the root.
    pub resolved: Option<String>,
    pub integrity: Option<Integrity>,
    /// A symlink to `resolved` instead of a folder (workspaces, `file:` dirs).
    pub link: bool,
    /// Only needed by devDependencies.
    pub dev: bool,
    /// Only needed by optionalDependencies.
    pub optional: bool,
    /// Needed by devDependencies or optionalDependencies, not by production.
    pub dev_optional: bool,
    pub peer: bool,
    /// Ships inside an ancestor's tarball (bundleDependencies).
    pub in_bundle: bool,
    /// Nothing depends on it; npm prunes it.
    pub extraneous: bool,
    pub has_install_script: bool,
    pub bin: Option<Bin>,
    pub os: Vec<String>,
    pub cpu: Vec<String>,
    pub libc: Vec<String>,
    /// Only when it is a plain string; old packages have objects here.
    pub license: Option<String>,
    /// Only the string-valued entries; old packages have arrays here.
    pub engines: BTreeMap<String, String>,
    pub dependencies: BTreeMap<String, String>,
    pub dev_dependencies: BTreeMap<String, String>,
    pub optional_dependencies: BTreeMap<String, String>,
    pub peer_dependencies: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPackage {
    name: Option<String>,
    version: Option<String>,
    resolved: Option<String>,
    integrity: Option<String>,
    #[serde(default)]
    link: bool,
    #[serde(default)]
    dev: bool,
    #[serde(default)]
    optional: bool,
    #[serde(default)]
    dev_optional: bool,
    #[serde(default)]
    peer: bool,
    #[serde(default)]
    in_bundle: bool,
    #[serde(default)]
    extraneous: bool,
    #[serde(default)]
    has_install_script: bool,
    bin: Option<Bin>,
    os: Option<OneOrMany>,
    cpu: Option<OneOrMany>,
    libc: Option<OneOrMany>,
    license: Option<Value>,
    engines: Option<Value>,
    #[serde(default)]
    dependencies: BTreeMap<String, String>,
    #[serde(default)]
    dev_dependencies: BTreeMap<String, String>,
    #[serde(default)]
    optional_dependencies: BTreeMap<String, String>,
    #[serde(default)]
    peer_dependencies: BTreeMap<String, String>,
}

impl Package {
    fn from_json(key: &str, value: Value) -> Result<Package, LockfileError> {
        let raw: RawPackage =
            serde_json::from_value(value).map_err(|source| LockfileError::Entry {
                key: key.to_owned(),
                source,
            })?;
        let integrity = raw
            .integrity
            .as_deref()
            .map(Integrity::parse)
            .transpose()
            .map_err(|source| LockfileError::Integrity {
                key: key.to_owned(),
                source,
            })?;
        let engines = match raw.engines {
            Some(Value::Object(map)) => map
                .into_iter()
                .filter_map(|(k, v)| match v {
                    Value::String(s) => Some((k, s)),
                    _ => None,
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        let license = match raw.license {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        Ok(Package {
            name: raw.name,
            version: raw.version,
            resolved: raw.resolved,
            integrity,
            link: raw.link,
            dev: raw.dev,
            optional: raw.optional,
            dev_optional: raw.dev_optional,
            peer: raw.peer,
            in_bundle: raw.in_bundle,
            extraneous: raw.extraneous,
            has_install_script: raw.has_install_script,
            bin: raw.bin,
            os: raw.os.map(OneOrMany::into_vec).unwrap_or_default(),
            cpu: raw.cpu.map(OneOrMany::into_vec).unwrap_or_default(),
            libc: raw.libc.map(OneOrMany::into_vec).unwrap_or_default(),
            license,
            engines,
            dependencies: raw.dependencies,
            dev_dependencies: raw.dev_dependencies,
            optional_dependencies: raw.optional_dependencies,
            peer_dependencies: raw.peer_dependencies,
        })
    }
}

/// A package-lock.json (or npm-shrinkwrap.json), version 2 or 3.
#[derive(Debug, Clone, PartialEq)]
pub struct Lockfile {
    pub name: Option<String>,
    pub version: Option<String>,
    pub lockfile_version: u64,
    /// The `""` entry: the project itself.
    pub root: Package,
    /// Every other entry, ordered by key.
    pub packages: BTreeMap<InstallPath, Package>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLockfile {
    name: Option<String>,
    version: Option<String>,
    lockfile_version: Option<Value>,
    packages: Option<serde_json::Map<String, Value>>,
}

impl Lockfile {
    pub fn parse(bytes: &[u8]) -> Result<Lockfile, LockfileError> {
        let raw: RawLockfile = serde_json::from_slice(bytes).map_err(LockfileError::Json)?;
        let lockfile_version = match &raw.lockfile_version {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| LockfileError::UnsupportedVersion(v.to_string()))?,
            ),
        };
        let packages = match (lockfile_version, raw.packages) {
            (None | Some(0 | 1), _) => return Err(LockfileError::Version1),
            (Some(v), _) if v > 3 => return Err(LockfileError::UnsupportedVersion(v.to_string())),
            (Some(v), None) => return Err(LockfileError::MissingPackages(v)),
            (Some(_), Some(p)) => p,
        };
        let lockfile_version = lockfile_version.unwrap_or_default();
        let mut root = None;
        let mut entries = BTreeMap::new();
        for (key, value) in packages {
            if key.is_empty() {
                root = Some(Package::from_json(&key, value)?);
                continue;
            }
            let path = InstallPath::parse(&key)?;
            let package = Package::from_json(&key, value)?;
            entries.insert(path, package);
        }
        Ok(Lockfile {
            name: raw.name,
            version: raw.version,
            lockfile_version,
            root: root.ok_or(LockfileError::MissingRoot)?,
            packages: entries,
        })
    }

    /// The entry at a key; `""` is the root.
    pub fn get(&self, key: &str) -> Option<&Package> {
        if key.is_empty() {
            return Some(&self.root);
        }
        let path = InstallPath::parse(key).ok()?;
        self.packages.get(&path)
    }
}

/// The parts of package.json hoist reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PackageJson {
    pub name: Option<String>,
    pub version: Option<String>,
    pub dependencies: BTreeMap<String, String>,
    pub dev_dependencies: BTreeMap<String, String>,
    pub optional_dependencies: BTreeMap<String, String>,
    pub peer_dependencies: BTreeMap<String, String>,
    /// Workspace globs, from either `workspaces: [...]` or
    /// `workspaces: { packages: [...] }`.
    pub workspaces: Vec<String>,
    /// Lifecycle scripts: `preinstall`, `install`, `postinstall` and
    /// `prepare` of the project itself run under `npm ci`.
    pub scripts: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawWorkspaces {
    List(Vec<String>),
    Object {
        #[serde(default)]
        packages: Vec<String>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPackageJson {
    name: Option<String>,
    version: Option<String>,
    #[serde(default)]
    dependencies: BTreeMap<String, String>,
    #[serde(default)]
    dev_dependencies: BTreeMap<String, String>,
    #[serde(default)]
    optional_dependencies: BTreeMap<String, String>,
    #[serde(default)]
    peer_dependencies: BTreeMap<String, String>,
    workspaces: Option<RawWorkspaces>,
    #[serde(default)]
    scripts: BTreeMap<String, String>,
}

impl PackageJson {
    pub fn parse(bytes: &[u8]) -> Result<PackageJson, LockfileError> {
        let raw: RawPackageJson =
            serde_json::from_slice(bytes).map_err(LockfileError::PackageJson)?;
        let workspaces = match raw.workspaces {
            None => Vec::new(),
            Some(RawWorkspaces::List(v)) => v,
            Some(RawWorkspaces::Object { packages }) => packages,
        };
        Ok(PackageJson {
            name: raw.name,
            version: raw.version,
            dependencies: raw.dependencies,
            dev_dependencies: raw.dev_dependencies,
            optional_dependencies: raw.optional_dependencies,
            peer_dependencies: raw.peer_dependencies,
            workspaces,
            scripts: raw.scripts,
        })
    }
}

/// The dependency kinds both files list, with npm's normalisation: a name
/// in `optionalDependencies` is dropped from `dependencies` (npm's
/// `read-package-json-fast` does this before writing the lockfile root).
fn declared(
    dependencies: &BTreeMap<String, String>,
    dev: &BTreeMap<String, String>,
    optional: &BTreeMap<String, String>,
    peer: &BTreeMap<String, String>,
) -> [(&'static str, BTreeMap<String, String>); 4] {
    let mut deps = dependencies.clone();
    deps.retain(|name, _| !optional.contains_key(name));
    [
        ("dependency", deps),
        ("devDependency", dev.clone()),
        ("optionalDependency", optional.clone()),
        ("peerDependency", peer.clone()),
    ]
}

/// Checks that the lockfile's root entry declares the same dependencies,
/// with the same specs, as package.json.
///
/// `npm ci` re-resolves the tree to compare; this compares what both files
/// declare, which catches the usual case (a dependency added or changed in
/// package.json without `npm install`) without a registry. Workspaces'
/// own package.json files are not compared.
pub fn check_in_step(package_json: &PackageJson, lockfile: &Lockfile) -> Result<(), LockfileError> {
    let p = package_json;
    let r = &lockfile.root;
    let left = declared(
        &p.dependencies,
        &p.dev_dependencies,
        &p.optional_dependencies,
        &p.peer_dependencies,
    );
    let right = declared(
        &r.dependencies,
        &r.dev_dependencies,
        &r.optional_dependencies,
        &r.peer_dependencies,
    );
    for ((kind, pj), (_, lock)) in left.iter().zip(right.iter()) {
        let names: std::collections::BTreeSet<&String> = pj.keys().chain(lock.keys()).collect();
        for name in names {
            let a = pj.get(name);
            let b = lock.get(name);
            if a != b {
                return Err(LockfileError::OutOfStep {
                    kind,
                    name: name.clone(),
                    package_json: a.cloned(),
                    lockfile: b.cloned(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB_LOCK: &[u8] = include_bytes!("../../../testdata/web/package-lock.json");
    const WEB_PACKAGE: &[u8] = include_bytes!("../../../testdata/web/package.json");

    #[test]
    fn install_paths() {
        // key, name, node_modules folder, depth
        let ok: &[(&str, Option<&str>, Option<&str>, usize)] = &[
            ("node_modules/a", Some("a"), Some("node_modules"), 1),
            ("node_modules/@s/a", Some("@s/a"), Some("node_modules"), 1),
            (
                "node_modules/a/node_modules/b",
                Some("b"),
                Some("node_modules/a/node_modules"),
                2,
            ),
            (
                "node_modules/@s/a/node_modules/@t/b/node_modules/c",
                Some("c"),
                Some("node_modules/@s/a/node_modules/@t/b/node_modules"),
                3,
            ),
            ("packages/a", None, None, 0),
            ("a", None, None, 0),
            (
                "packages/a/node_modules/b",
                Some("b"),
                Some("packages/a/node_modules"),
                1,
            ),
        ];
        for (key, name, nm, depth) in ok {
            let p = InstallPath::parse(key).unwrap();
            assert_eq!(p.as_str(), *key);
            assert_eq!(p.name(), *name, "{key}");
            assert_eq!(p.node_modules().as_ref().map(RelPath::as_str), *nm, "{key}");
            assert_eq!(p.depth(), *depth, "{key}");
            assert_eq!(p.is_workspace_folder(), name.is_none(), "{key}");
        }
        let parents = [
            ("node_modules/a", None),
            ("packages/a", None),
            ("node_modules/a/node_modules/@s/b", Some("node_modules/a")),
            (
                "node_modules/@s/a/node_modules/b",
                Some("node_modules/@s/a"),
            ),
            ("packages/a/node_modules/b", Some("packages/a")),
        ];
        for (key, parent) in parents {
            let p = InstallPath::parse(key).unwrap();
            assert_eq!(
                p.parent().as_ref().map(InstallPath::as_str),
                parent,
                "{key}"
            );
        }
    }

    #[test]
    fn install_path_errors_name_the_key() {
        let bad = [
            ("/node_modules/a", "absolute"),
            ("node_modules/../etc", ".."),
            ("node_modules/a/../../x", ".."),
            ("node_modules//a", "empty component"),
            ("node_modules/a/", "empty component"),
            ("./node_modules/a", "`.` component"),
            ("node_modules", "without a package name"),
            ("node_modules/a/node_modules", "without a package name"),
            ("node_modules/@s", "without a package name"),
            ("node_modules/@/a", "scope `@`"),
            ("node_modules/@s/@t", "not a package name"),
            ("node_modules/a/b", "expected `node_modules`"),
            ("node_modules/.bin", "starts with `.`"),
            ("node_modules/@s/.x", "starts with `.`"),
            ("node_modules/node_modules/a", "`node_modules` is not"),
            ("packages/..", ".."),
        ];
        for (key, reason) in bad {
            let err = InstallPath::parse(key).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(&err, LockfileError::InvalidKey { key: k, .. } if k == key),
                "{key}: {msg}"
            );
            assert!(msg.contains(reason), "{key}: {msg}");
            assert!(msg.contains(key), "{key}: {msg}");
        }
    }

    #[test]
    fn versions() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"lockfileVersion": 1, "dependencies": {}}"#,
                "npm 7 or later",
            ),
            (r#"{"dependencies": {}}"#, "npm install --package-lock-only"),
            (
                r#"{"lockfileVersion": 4, "packages": {"": {}}}"#,
                "lockfileVersion 4",
            ),
            (
                r#"{"lockfileVersion": "3", "packages": {"": {}}}"#,
                "lockfileVersion \"3\"",
            ),
            (r#"{"lockfileVersion": 2}"#, "no `packages` map"),
            (r#"{"lockfileVersion": 3, "packages": {}}"#, "no root entry"),
            (
                r#"{"lockfileVersion": 3, "packages": {"": {}"#,
                "not valid JSON",
            ),
            (r#"[]"#, "not valid JSON"),
        ];
        for (json, want) in cases {
            let err = Lockfile::parse(json.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
        for v in [2, 3] {
            let json = format!(r#"{{"lockfileVersion": {v}, "packages": {{"": {{}}}}}}"#);
            assert_eq!(
                Lockfile::parse(json.as_bytes()).unwrap().lockfile_version,
                v
            );
        }
    }

    #[test]
    fn entry_fields() {
        let json = br#"{
          "name": "app", "version": "1.0.0", "lockfileVersion": 3,
          "packages": {
            "": {"name": "app", "dependencies": {"a": "^1"}, "workspaces": ["packages/*"]},
            "node_modules/a": {
              "version": "1.2.3",
              "resolved": "https://registry.npmjs.org/a/-/a-1.2.3.tgz",
              "integrity": "sha512-6v4IHpk8LhlrMxoEJQsbdqP/X7h2og9ojpR20GiIPC2rrYLY5HSaZg3bXMqtfBm/DzmeGVV69LUsE8YvhOvDTw==",
              "dev": true, "optional": true, "devOptional": true, "peer": true,
              "hasInstallScript": true, "inBundle": true, "extraneous": true,
              "bin": {"a": "bin/a.js", "a2": "./x"},
              "os": ["linux", "!win32"], "cpu": "x64", "libc": ["glibc"],
              "license": "MIT", "engines": {"node": ">=18", "npm": ">=7"},
              "dependencies": {"b": "2"}, "optionalDependencies": {"c": "3"},
              "peerDependencies": {"d": "4"}
            },
            "node_modules/b": {"bin": "cli.js", "license": {"type": "MIT"}, "engines": ["node >= 0.4"]},
            "node_modules/w": {"resolved": "packages/w", "link": true},
            "packages/w": {"name": "w", "version": "0.0.1"}
          }
        }"#;
        let lock = Lockfile::parse(json).unwrap();
        assert_eq!(lock.name.as_deref(), Some("app"));
        assert_eq!(lock.version.as_deref(), Some("1.0.0"));
        assert_eq!(
            lock.root.dependencies.get("a").map(String::as_str),
            Some("^1")
        );
        let a = lock.get("node_modules/a").unwrap();
        assert_eq!(a.version.as_deref(), Some("1.2.3"));
        assert!(a.resolved.as_deref().unwrap().ends_with("a-1.2.3.tgz"));
        assert!(a.integrity.is_some());
        assert!(a.dev && a.optional && a.dev_optional && a.peer);
        assert!(a.has_install_script && a.in_bundle && a.extraneous && !a.link);
        let want_bin: BTreeMap<String, String> = [("a", "bin/a.js"), ("a2", "./x")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(a.bin, Some(Bin::Map(want_bin)));
        assert_eq!(a.os, ["linux", "!win32"]);
        assert_eq!(a.cpu, ["x64"]);
        assert_eq!(a.libc, ["glibc"]);
        assert_eq!(a.license.as_deref(), Some("MIT"));
        assert_eq!(a.engines.len(), 2);
        assert_eq!(a.dependencies.len(), 1);
        assert_eq!(a.optional_dependencies.len(), 1);
        assert_eq!(a.peer_dependencies.len(), 1);
        let b = lock.get("node_modules/b").unwrap();
        assert_eq!(b.bin, Some(Bin::Single("cli.js".into())));
        assert_eq!(b.license, None);
        assert!(b.engines.is_empty());
        assert!(!b.dev && !b.optional && b.os.is_empty());
        let w = lock.get("node_modules/w").unwrap();
        assert!(w.link);
        assert_eq!(w.resolved.as_deref(), Some("packages/w"));
        let folder = lock
            .packages
            .keys()
            .find(|k| k.as_str() == "packages/w")
            .unwrap();
        assert!(folder.is_workspace_folder());
        assert_eq!(lock.get("node_modules/zzz"), None);
        assert_eq!(lock.get("../x"), None);
    }

    #[test]
    fn entry_errors_name_the_key() {
        let cases: &[(&str, &str)] = &[
            (
                r#""node_modules/a": {"dev": "yes"}"#,
                "`node_modules/a` is malformed",
            ),
            (
                r#""node_modules/a": {"bin": 3}"#,
                "`node_modules/a` is malformed",
            ),
            (
                r#""node_modules/a": {"integrity": "sha512-xx"}"#,
                "`node_modules/a` has a bad integrity",
            ),
            (
                r#""node_modules/../a": {}"#,
                "`node_modules/../a` is not an install path",
            ),
            (r#""/abs": {}"#, "`/abs` is not an install path"),
        ];
        for (entry, want) in cases {
            let json = format!(r#"{{"lockfileVersion": 3, "packages": {{"": {{}}, {entry}}}}}"#);
            let err = Lockfile::parse(json.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{entry}: {err}");
        }
    }

    #[test]
    fn web_lockfile() {
        let lock = Lockfile::parse(WEB_LOCK).unwrap();
        assert_eq!(lock.lockfile_version, 3);
        assert_eq!(lock.packages.len(), 105);
        assert_eq!(lock.packages.values().filter(|p| p.dev).count(), 27);
        assert!(lock
            .packages
            .values()
            .all(|p| p.integrity.is_some() && p.resolved.is_some()));
        let nested = lock
            .packages
            .keys()
            .find(|k| k.as_str() == "node_modules/send/node_modules/debug/node_modules/ms")
            .unwrap();
        assert_eq!(nested.depth(), 3);
        let fsevents = lock.get("node_modules/fsevents").unwrap();
        assert_eq!(fsevents.os, ["darwin"]);
        assert!(fsevents.optional && fsevents.dev);
        let pj = PackageJson::parse(WEB_PACKAGE).unwrap();
        assert_eq!(
            pj.scripts.get("start").map(String::as_str),
            Some("node server.js")
        );
        check_in_step(&pj, &lock).unwrap();
    }

    #[test]
    fn package_json() {
        let pj = PackageJson::parse(
            br#"{"name": "x", "workspaces": {"packages": ["a/*"]}, "scripts": {"postinstall": "node x"},
                 "devDependencies": {"d": "1"}, "unknown": [1, 2]}"#,
        )
        .unwrap();
        assert_eq!(pj.workspaces, ["a/*"]);
        assert_eq!(pj.dev_dependencies.len(), 1);
        let pj = PackageJson::parse(br#"{"workspaces": ["a", "b"]}"#).unwrap();
        assert_eq!(pj.workspaces, ["a", "b"]);
        let err = PackageJson::parse(br#"{"dependencies": {"a": 1}}"#).unwrap_err();
        assert!(
            err.to_string().starts_with("package.json is not valid"),
            "{err}"
        );
    }

    #[test]
    fn in_step() {
        let lock_with = |root: &str| {
            let json = format!(r#"{{"lockfileVersion": 3, "packages": {{"": {root}}}}}"#);
            Lockfile::parse(json.as_bytes()).unwrap()
        };
        // package.json, lockfile root, Ok or the error's text
        let cases: &[(&str, &str, Result<(), &str>)] = &[
            (
                r#"{"dependencies": {"a": "^1"}}"#,
                r#"{"dependencies": {"a": "^1"}}"#,
                Ok(()),
            ),
            (r#"{}"#, r#"{}"#, Ok(())),
            (
                // npm drops a name listed in both from `dependencies`.
                r#"{"dependencies": {"a": "^1"}, "optionalDependencies": {"a": "^1"}}"#,
                r#"{"optionalDependencies": {"a": "^1"}}"#,
                Ok(()),
            ),
            (
                r#"{"dependencies": {"a": "^2"}}"#,
                r#"{"dependencies": {"a": "^1"}}"#,
                Err("dependency `a` is `^2` in package.json but `^1` in the lockfile"),
            ),
            (
                r#"{"dependencies": {"a": "^1", "b": "1"}}"#,
                r#"{"dependencies": {"a": "^1"}}"#,
                Err("dependency `b` is `1` in package.json but absent in the lockfile"),
            ),
            (
                r#"{}"#,
                r#"{"devDependencies": {"t": "1"}}"#,
                Err("devDependency `t` is absent in package.json but `1`"),
            ),
            (
                r#"{"dependencies": {"t": "1"}}"#,
                r#"{"devDependencies": {"t": "1"}}"#,
                Err("dependency `t` is `1` in package.json but absent"),
            ),
        ];
        for (pj, root, want) in cases {
            let got = check_in_step(
                &PackageJson::parse(pj.as_bytes()).unwrap(),
                &lock_with(root),
            );
            match (got, want) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err(w)) => {
                    let msg = e.to_string();
                    assert!(msg.contains(w), "{pj} vs {root}: {msg}");
                    assert!(msg.contains("npm install"), "{msg}");
                }
                (got, want) => panic!("{pj} vs {root}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn which_lockfile() {
        let cases: &[(&[&str], Result<&str, &str>)] = &[
            (
                &["package.json", "package-lock.json"],
                Ok("package-lock.json"),
            ),
            (
                &["package.json", "package-lock.json", "npm-shrinkwrap.json"],
                Ok("npm-shrinkwrap.json"),
            ),
            (
                &["package.json", "yarn.lock", "package-lock.json"],
                Ok("package-lock.json"),
            ),
            (&["package.json"], Err("npm install --package-lock-only")),
            (
                &["package.json", "yarn.lock"],
                Err("found yarn.lock, but hoist reads only"),
            ),
            (
                &["package.json", "pnpm-lock.yaml", "bun.lockb"],
                Err("found pnpm-lock.yaml, bun.lockb"),
            ),
            (&["package-lock.json"], Err("no package.json")),
        ];
        for (present, want) in cases {
            match (choose_lockfile(present), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, *w),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{present:?}: {e}"),
                (got, want) => panic!("{present:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
