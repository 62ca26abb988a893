//! Which lockfile entries `npm ci` would install for one target.
//!
//! Two filters, applied as npm applies them, each on the entry's own flags
//! (npm computed them over the whole graph when it wrote the lockfile):
//!
//! 1. The omit set (npm's `Node.shouldOmit`): `--omit=dev` drops entries
//!    marked `dev`; `--omit=optional` drops `optional`; `--omit=peer` drops
//!    `peer`; `devOptional` (needed by dev *or* optional, neither alone)
//!    goes only when both dev and optional are omitted. `extraneous`
//!    entries are pruned whatever the omit set, as npm prunes them.
//! 2. Platform fit (npm-install-checks' `checkPlatform`), for the image's
//!    platform rather than the host's: `os`, `cpu` and `libc` lists where
//!    `!x` excludes `x`, a list of only exclusions admits everything else,
//!    and a lone `any` admits everything. A `libc` list only fits a linux
//!    target whose libc is known. An `optional` entry that does not fit is
//!    skipped, as npm skips a failed optional install; any other is an
//!    error, as npm's `EBADPLATFORM` is.
//!
//! An entry whose parent folder is not installed (`node_modules/a/...`
//! when `a` was skipped) is skipped too: npm would have nowhere to put it,
//! and its flags say it is only reachable from that parent anyway. npm also
//! drops the optional-only dependencies of a failed optional package that
//! sit elsewhere in the tree (its `optionalSet`); that needs the dependency
//! edges and is not done here. Platform packages (esbuild's, @next/swc's,
//! fsevents) have no dependencies, so it rarely matters.
//!
//! The project root is not an entry: its files are the app, not deps.

use std::collections::HashSet;
use std::fmt;

use super::lockfile::{InstallPath, Lockfile, Package};
use super::path::RelPath;

/// The dependency kinds to leave out, as npm's `--omit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Omit {
    pub dev: bool,
    pub optional: bool,
    pub peer: bool,
}

impl Omit {
    /// Install everything: `npm ci` (hoist's dev target).
    pub const NOTHING: Omit = Omit {
        dev: false,
        optional: false,
        peer: false,
    };

    /// `npm ci --omit=dev` (hoist's prod target).
    pub const DEV: Omit = Omit {
        dev: true,
        optional: false,
        peer: false,
    };

    /// Whether npm would leave this entry out.
    pub fn omits(&self, package: &Package) -> bool {
        (self.dev && package.dev)
            || (self.optional && package.optional)
            || (self.peer && package.peer)
            || (self.dev && self.optional && package.dev_optional)
    }
}

/// The C library of a linux image, as npm's `libc` field names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Libc {
    Glibc,
    Musl,
}

impl Libc {
    pub fn as_str(self) -> &'static str {
        match self {
            Libc::Glibc => "glibc",
            Libc::Musl => "musl",
        }
    }
}

impl fmt::Display for Libc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The platform packages are chosen for, in npm's names (`process.platform`,
/// `process.arch`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// `linux` for every image hoist builds today.
    pub os: String,
    /// `x64`, `arm64`, `arm`, ...
    pub cpu: String,
    /// `None` when the base image's libc is unknown (distroless static):
    /// then, as in npm, any package with a `libc` list does not fit.
    pub libc: Option<Libc>,
}

impl Target {
    /// The npm platform of an OCI platform (`linux`/`amd64` is `linux`/`x64`).
    pub fn from_oci(
        os: &str,
        architecture: &str,
        libc: Option<Libc>,
    ) -> Result<Target, SelectError> {
        match (npm_os(os), npm_cpu(architecture)) {
            (Some(os), Some(cpu)) => Ok(Target {
                os: os.to_owned(),
                cpu: cpu.to_owned(),
                libc,
            }),
            _ => Err(SelectError::UnknownPlatform {
                os: os.to_owned(),
                architecture: architecture.to_owned(),
            }),
        }
    }

    /// What the package asks for that this target is not, `None` if it fits.
    /// Mirrors npm-install-checks' `checkPlatform` given an explicit
    /// environment.
    pub fn mismatch(&self, package: &Package) -> Option<String> {
        let mut wants = Vec::new();
        if !package.os.is_empty() && !check_list(&self.os, &package.os) {
            wants.push(format!("os {}", package.os.join(", ")));
        }
        if !package.cpu.is_empty() && !check_list(&self.cpu, &package.cpu) {
            wants.push(format!("cpu {}", package.cpu.join(", ")));
        }
        if !package.libc.is_empty() {
            let fits = match self.libc {
                Some(libc) if self.os == "linux" => check_list(libc.as_str(), &package.libc),
                _ => false,
            };
            if !fits {
                wants.push(format!("libc {}", package.libc.join(", ")));
            }
        }
        if wants.is_empty() {
            None
        } else {
            Some(wants.join("; "))
        }
    }

    pub fn fits(&self, package: &Package) -> bool {
        self.mismatch(package).is_none()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.libc {
            Some(libc) => write!(f, "{}/{} ({libc})", self.os, self.cpu),
            None => write!(f, "{}/{} (libc unknown)", self.os, self.cpu),
        }
    }
}

/// npm's `process.platform` for an OCI `os`.
pub fn npm_os(oci_os: &str) -> Option<&'static str> {
    Some(match oci_os {
        "linux" => "linux",
        "windows" => "win32",
        "darwin" => "darwin",
        "freebsd" => "freebsd",
        "openbsd" => "openbsd",
        "netbsd" => "netbsd",
        "aix" => "aix",
        "android" => "android",
        "solaris" | "illumos" => "sunos",
        _ => return None,
    })
}

/// npm's `process.arch` for an OCI `architecture` (Go's GOARCH names). The
/// arm variant does not matter: Node calls every 32-bit arm `arm`.
pub fn npm_cpu(oci_architecture: &str) -> Option<&'static str> {
    Some(match oci_architecture {
        "amd64" => "x64",
        "arm64" => "arm64",
        "arm" => "arm",
        "386" => "ia32",
        "ppc64le" | "ppc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loong64" => "loong64",
        "mips" => "mips",
        "mipsle" => "mipsel",
        _ => return None,
    })
}

/// npm-install-checks' `checkList`: `value` must match none of the `!`
/// entries and, if there are plain entries, at least one of them.
pub fn check_list(value: &str, list: &[String]) -> bool {
    if list.len() == 1 && list[0] == "any" {
        return true;
    }
    let mut negated = 0;
    let mut matched = false;
    for entry in list {
        match entry.strip_prefix('!') {
            Some(excluded) => {
                if excluded == value {
                    return false;
                }
                negated += 1;
            }
            None => matched = matched || entry == value,
        }
    }
    matched || negated == list.len()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("the OCI platform {os}/{architecture} has no npm equivalent")]
    UnknownPlatform { os: String, architecture: String },
    #[error(
        "`{path}` is not optional but does not fit {target}: it wants {wants}; \
         regenerate the lockfile so npm picks a package for this platform, or \
         build for another platform"
    )]
    Unfit {
        path: String,
        target: String,
        wants: String,
    },
    #[error(
        "`{path}` links to `{resolved}`, which is outside the project; only \
         workspace links inside the build context can be installed"
    )]
    LinkOutside { path: String, resolved: String },
    #[error("`{path}` is a link without a `resolved` target")]
    LinkWithoutTarget { path: String },
}

/// How a selected entry gets its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Downloaded from `resolved` and checked against `integrity`.
    Tarball,
    /// Arrives inside an ancestor's tarball (`inBundle`); nothing to fetch,
    /// but it gets `.bin` links like any package.
    Bundled,
    /// A symlink to a folder of the project, relative to the project root.
    Link { target: RelPath },
    /// A workspace folder: the app's own files, plus its own node_modules
    /// entries listed separately.
    Workspace,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Selected<'a> {
    pub path: &'a InstallPath,
    pub package: &'a Package,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Left out by the omit set.
    Omitted,
    /// Marked `extraneous`: nothing depends on it.
    Extraneous,
    /// Optional, and not for this platform; says what it wanted.
    Platform { wants: String },
    /// Its parent folder is not installed.
    ParentSkipped,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Skipped<'a> {
    pub path: &'a InstallPath,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selection<'a> {
    /// What to install, in lockfile key order (parents before children).
    pub install: Vec<Selected<'a>>,
    pub skipped: Vec<Skipped<'a>>,
    /// Installed entries with `hasInstallScript`: npm would have run their
    /// install scripts; hoist runs nothing and warns.
    pub install_scripts: Vec<&'a InstallPath>,
    /// The project itself has install scripts (`npm ci` runs those too).
    pub root_install_script: bool,
}

/// Chooses what `npm ci` with `omit` would install on `target`.
pub fn select<'a>(
    lockfile: &'a Lockfile,
    omit: Omit,
    target: &Target,
) -> Result<Selection<'a>, SelectError> {
    let mut selection = Selection {
        root_install_script: lockfile.root.has_install_script,
        ..Selection::default()
    };
    let mut skipped: HashSet<&InstallPath> = HashSet::new();
    // Keys are sorted, and a key sorts before every key it is a prefix of,
    // so a parent is always decided before its children.
    for (path, package) in &lockfile.packages {
        let reason = if path.parent().is_some_and(|p| skipped.contains(&p)) {
            Some(SkipReason::ParentSkipped)
        } else if package.extraneous {
            Some(SkipReason::Extraneous)
        } else if omit.omits(package) {
            Some(SkipReason::Omitted)
        } else {
            None
        };
        if let Some(reason) = reason {
            skipped.insert(path);
            selection.skipped.push(Skipped { path, reason });
            continue;
        }

        let kind = kind_of(path, package)?;
        // A link's platform fields are on the folder it points at. Bundled
        // entries come with their parent's tarball and npm does not check
        // them on their own.
        let platform = match &kind {
            Kind::Link { target } => lockfile.get(target.as_str()),
            Kind::Bundled => None,
            Kind::Tarball | Kind::Workspace => Some(package),
        };
        if let Some(wants) = platform.and_then(|p| target.mismatch(p)) {
            if package.optional {
                skipped.insert(path);
                selection.skipped.push(Skipped {
                    path,
                    reason: SkipReason::Platform { wants },
                });
                continue;
            }
            return Err(SelectError::Unfit {
                path: path.to_string(),
                target: target.to_string(),
                wants,
            });
        }

        if package.has_install_script {
            selection.install_scripts.push(path);
        }
        selection.install.push(Selected {
            path,
            package,
            kind,
        });
    }
    Ok(selection)
}

fn kind_of(path: &InstallPath, package: &Package) -> Result<Kind, SelectError> {
    if package.link {
        let resolved =
            package
                .resolved
                .as_deref()
                .ok_or_else(|| SelectError::LinkWithoutTarget {
                    path: path.to_string(),
                })?;
        let target = RelPath::normalize(resolved).map_err(|_| SelectError::LinkOutside {
            path: path.to_string(),
            resolved: resolved.to_owned(),
        })?;
        return Ok(Kind::Link { target });
    }
    if path.is_workspace_folder() {
        return Ok(Kind::Workspace);
    }
    if package.in_bundle {
        return Ok(Kind::Bundled);
    }
    Ok(Kind::Tarball)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB_LOCK: &[u8] = include_bytes!("../../../testdata/web/package-lock.json");

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn linux(cpu: &str, libc: Option<Libc>) -> Target {
        Target {
            os: "linux".into(),
            cpu: cpu.into(),
            libc,
        }
    }

    #[test]
    fn check_list_like_npm() {
        let cases: &[(&str, &[&str], bool)] = &[
            ("linux", &["linux"], true),
            ("linux", &["darwin"], false),
            ("linux", &["darwin", "linux"], true),
            ("linux", &["!win32"], true),
            ("linux", &["!linux"], false),
            ("linux", &["!win32", "!darwin"], true),
            // A plain entry makes a match necessary, even beside exclusions.
            ("linux", &["!win32", "darwin"], false),
            ("linux", &["!linux", "linux"], false),
            ("linux", &["any"], true),
            ("linux", &["any", "darwin"], false),
            ("x64", &["x64", "arm64"], true),
            ("arm64", &["x64"], false),
            ("musl", &["glibc"], false),
            ("glibc", &["!musl"], true),
        ];
        for (value, list, want) in cases {
            assert_eq!(
                check_list(value, &strings(list)),
                *want,
                "{value} in {list:?}"
            );
        }
    }

    #[test]
    fn omit_like_npm() {
        let flags = |dev, optional, dev_optional, peer| Package {
            dev,
            optional,
            dev_optional,
            peer,
            ..Package::default()
        };
        let dev = Omit::DEV;
        let opt = Omit {
            optional: true,
            ..Omit::NOTHING
        };
        let both = Omit {
            dev: true,
            optional: true,
            peer: false,
        };
        let peer = Omit {
            peer: true,
            ..Omit::NOTHING
        };
        // package flags (dev, optional, devOptional, peer), omit, dropped
        let cases = [
            (flags(false, false, false, false), dev, false),
            (flags(true, false, false, false), dev, true),
            (flags(true, false, false, false), opt, false),
            (flags(false, true, false, false), dev, false),
            (flags(false, true, false, false), opt, true),
            // dev and optional: only needed by an optional devDependency.
            (flags(true, true, false, false), dev, true),
            (flags(true, true, false, false), opt, true),
            (flags(false, false, true, false), dev, false),
            (flags(false, false, true, false), opt, false),
            (flags(false, false, true, false), both, true),
            (flags(false, false, false, true), dev, false),
            (flags(false, false, false, true), peer, true),
            (flags(true, true, true, true), Omit::NOTHING, false),
        ];
        for (i, (package, omit, want)) in cases.iter().enumerate() {
            assert_eq!(omit.omits(package), *want, "case {i}: {omit:?}");
        }
    }

    #[test]
    fn platform_fit() {
        let pkg = |os: &[&str], cpu: &[&str], libc: &[&str]| Package {
            os: strings(os),
            cpu: strings(cpu),
            libc: strings(libc),
            ..Package::default()
        };
        let gnu64 = linux("x64", Some(Libc::Glibc));
        let musl_arm = linux("arm64", Some(Libc::Musl));
        let unknown = linux("x64", None);
        let darwin = Target {
            os: "darwin".into(),
            cpu: "arm64".into(),
            libc: Some(Libc::Glibc),
        };
        let cases: &[(Package, &Target, Option<&str>)] = &[
            (pkg(&[], &[], &[]), &gnu64, None),
            (pkg(&["darwin"], &[], &[]), &gnu64, Some("os darwin")),
            (pkg(&["!win32"], &["x64", "arm64"], &[]), &musl_arm, None),
            (
                pkg(&["linux"], &["arm64"], &["glibc"]),
                &gnu64,
                Some("cpu arm64"),
            ),
            (
                pkg(&["linux"], &["arm64"], &["musl"]),
                &gnu64,
                Some("cpu arm64; libc musl"),
            ),
            (pkg(&["linux"], &["arm64"], &["musl"]), &musl_arm, None),
            (
                pkg(&["linux"], &["x64"], &["musl"]),
                &gnu64,
                Some("libc musl"),
            ),
            (pkg(&[], &["!arm64"], &[]), &musl_arm, Some("cpu !arm64")),
            // Unknown libc: any libc list fails, as in npm.
            (pkg(&[], &[], &["glibc"]), &unknown, Some("libc glibc")),
            (pkg(&[], &[], &["!musl"]), &unknown, Some("libc !musl")),
            (pkg(&["linux"], &[], &[]), &unknown, None),
            // libc only means something on linux.
            (pkg(&[], &[], &["glibc"]), &darwin, Some("libc glibc")),
            (pkg(&["darwin"], &[], &[]), &darwin, None),
        ];
        for (i, (package, target, want)) in cases.iter().enumerate() {
            assert_eq!(
                target.mismatch(package).as_deref(),
                *want,
                "case {i} on {target}"
            );
        }
    }

    #[test]
    fn oci_platforms() {
        let cases = [
            ("linux", "amd64", Some(("linux", "x64"))),
            ("linux", "arm64", Some(("linux", "arm64"))),
            ("linux", "arm", Some(("linux", "arm"))),
            ("linux", "386", Some(("linux", "ia32"))),
            ("linux", "ppc64le", Some(("linux", "ppc64"))),
            ("linux", "s390x", Some(("linux", "s390x"))),
            ("linux", "riscv64", Some(("linux", "riscv64"))),
            ("windows", "amd64", Some(("win32", "x64"))),
            ("linux", "x86_64", None),
            ("plan9", "amd64", None),
        ];
        for (os, arch, want) in cases {
            let got = Target::from_oci(os, arch, Some(Libc::Musl));
            match want {
                Some((o, c)) => {
                    let t = got.unwrap();
                    assert_eq!((t.os.as_str(), t.cpu.as_str()), (o, c));
                    assert_eq!(t.libc, Some(Libc::Musl));
                }
                None => assert_eq!(
                    got.unwrap_err(),
                    SelectError::UnknownPlatform {
                        os: os.into(),
                        architecture: arch.into()
                    }
                ),
            }
        }
    }

    fn lock(packages: &str) -> Lockfile {
        let json =
            format!(r#"{{"lockfileVersion": 3, "packages": {{"": {{"name": "app"}}{packages}}}}}"#);
        Lockfile::parse(json.as_bytes()).unwrap()
    }

    fn installed(s: &Selection<'_>) -> Vec<String> {
        s.install.iter().map(|e| e.path.to_string()).collect()
    }

    #[test]
    fn optional_unfit_is_skipped_required_unfit_is_an_error() {
        let l = lock(
            r#", "node_modules/esbuild": {"hasInstallScript": true},
                 "node_modules/@esbuild/linux-x64": {"optional": true, "os": ["linux"], "cpu": ["x64"]},
                 "node_modules/@esbuild/linux-arm64": {"optional": true, "os": ["linux"], "cpu": ["arm64"]},
                 "node_modules/@esbuild/darwin-arm64": {"optional": true, "os": ["darwin"], "cpu": ["arm64"]}"#,
        );
        let s = select(&l, Omit::DEV, &linux("arm64", Some(Libc::Musl))).unwrap();
        assert_eq!(
            installed(&s),
            ["node_modules/@esbuild/linux-arm64", "node_modules/esbuild"]
        );
        assert_eq!(s.skipped.len(), 2);
        assert!(s
            .skipped
            .iter()
            .all(|k| matches!(k.reason, SkipReason::Platform { .. })));
        assert_eq!(
            s.install_scripts
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>(),
            ["node_modules/esbuild"]
        );
        assert!(!s.root_install_script);

        let l = lock(r#", "node_modules/only-mac": {"os": ["darwin"], "cpu": ["arm64"]}"#);
        let err = select(&l, Omit::DEV, &linux("x64", Some(Libc::Glibc))).unwrap_err();
        assert_eq!(
            err,
            SelectError::Unfit {
                path: "node_modules/only-mac".into(),
                target: "linux/x64 (glibc)".into(),
                wants: "os darwin; cpu arm64".into(),
            }
        );
        assert!(err.to_string().contains("`node_modules/only-mac`"));

        // devOptional is not optional: an unfit one is an error unless omitted.
        let l = lock(r#", "node_modules/x": {"devOptional": true, "libc": ["musl"]}"#);
        let target = linux("x64", Some(Libc::Glibc));
        assert!(select(&l, Omit::DEV, &target).is_err());
        let both = Omit {
            dev: true,
            optional: true,
            peer: false,
        };
        assert!(select(&l, both, &target).unwrap().install.is_empty());
    }

    #[test]
    fn children_of_skipped_parents_are_skipped() {
        let l = lock(
            r#", "node_modules/a": {"optional": true, "os": ["darwin"]},
                 "node_modules/a/node_modules/b": {"optional": true},
                 "node_modules/a/node_modules/b/node_modules/c": {"optional": true},
                 "node_modules/a-b": {},
                 "node_modules/d": {"dev": true},
                 "node_modules/d/node_modules/e": {"dev": true},
                 "node_modules/x": {"extraneous": true}"#,
        );
        let s = select(&l, Omit::DEV, &linux("x64", Some(Libc::Glibc))).unwrap();
        assert_eq!(installed(&s), ["node_modules/a-b"]);
        let reasons: Vec<(&str, &SkipReason)> = s
            .skipped
            .iter()
            .map(|k| (k.path.as_str(), &k.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                (
                    "node_modules/a",
                    &SkipReason::Platform {
                        wants: "os darwin".into()
                    }
                ),
                ("node_modules/a/node_modules/b", &SkipReason::ParentSkipped),
                (
                    "node_modules/a/node_modules/b/node_modules/c",
                    &SkipReason::ParentSkipped
                ),
                ("node_modules/d", &SkipReason::Omitted),
                ("node_modules/d/node_modules/e", &SkipReason::ParentSkipped),
                ("node_modules/x", &SkipReason::Extraneous),
            ]
        );
    }

    #[test]
    fn kinds_links_workspaces_bundles() {
        let l = lock(
            r#", "node_modules/w": {"resolved": "packages/w", "link": true},
                 "node_modules/v": {"resolved": "./packages/v/", "link": true},
                 "packages/w": {"name": "w", "version": "1.0.0", "cpu": ["x64"], "hasInstallScript": true},
                 "packages/v": {"name": "v"},
                 "packages/w/node_modules/dep": {},
                 "node_modules/p": {},
                 "node_modules/p/node_modules/inner": {"inBundle": true, "os": ["darwin"]}"#,
        );
        let s = select(&l, Omit::NOTHING, &linux("x64", Some(Libc::Glibc))).unwrap();
        let kinds: Vec<(&str, &Kind)> = s
            .install
            .iter()
            .map(|e| (e.path.as_str(), &e.kind))
            .collect();
        let link = |t: &str| Kind::Link {
            target: RelPath::new(t).unwrap(),
        };
        assert_eq!(
            kinds,
            [
                ("node_modules/p", &Kind::Tarball),
                ("node_modules/p/node_modules/inner", &Kind::Bundled),
                ("node_modules/v", &link("packages/v")),
                ("node_modules/w", &link("packages/w")),
                ("packages/v", &Kind::Workspace),
                ("packages/w", &Kind::Workspace),
                ("packages/w/node_modules/dep", &Kind::Tarball),
            ]
        );
        assert_eq!(
            s.install_scripts
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>(),
            ["packages/w"]
        );
        // The link is checked against its target's platform fields.
        let err = select(&l, Omit::NOTHING, &linux("arm64", Some(Libc::Glibc))).unwrap_err();
        assert_eq!(
            err,
            SelectError::Unfit {
                path: "node_modules/w".into(),
                target: "linux/arm64 (glibc)".into(),
                wants: "cpu x64".into(),
            }
        );
    }

    #[test]
    fn bad_links() {
        let target = linux("x64", Some(Libc::Glibc));
        let cases = [
            (
                r#", "node_modules/s": {"resolved": "../shared", "link": true}"#,
                SelectError::LinkOutside {
                    path: "node_modules/s".into(),
                    resolved: "../shared".into(),
                },
            ),
            (
                r#", "node_modules/s": {"resolved": "/srv/shared", "link": true}"#,
                SelectError::LinkOutside {
                    path: "node_modules/s".into(),
                    resolved: "/srv/shared".into(),
                },
            ),
            (
                r#", "node_modules/s": {"link": true}"#,
                SelectError::LinkWithoutTarget {
                    path: "node_modules/s".into(),
                },
            ),
        ];
        for (entries, want) in cases {
            assert_eq!(
                select(&lock(entries), Omit::DEV, &target).unwrap_err(),
                want
            );
        }
        // An omitted link is never looked at.
        let l = lock(r#", "node_modules/s": {"resolved": "../shared", "link": true, "dev": true}"#);
        assert!(select(&l, Omit::DEV, &target).unwrap().install.is_empty());
    }

    #[test]
    fn root_install_script_is_reported() {
        let l = Lockfile::parse(
            br#"{"lockfileVersion": 3, "packages": {"": {"hasInstallScript": true}}}"#,
        )
        .unwrap();
        let s = select(&l, Omit::DEV, &linux("x64", Some(Libc::Glibc))).unwrap();
        assert!(s.root_install_script);
        assert!(s.install.is_empty());
    }

    #[test]
    fn web_lockfile() {
        let l = Lockfile::parse(WEB_LOCK).unwrap();
        let gnu64 = Target::from_oci("linux", "amd64", Some(Libc::Glibc)).unwrap();
        let musl_arm = Target::from_oci("linux", "arm64", Some(Libc::Musl)).unwrap();
        for target in [&gnu64, &musl_arm] {
            let prod = select(&l, Omit::DEV, target).unwrap();
            assert_eq!(prod.install.len(), 78, "{target}");
            assert_eq!(prod.skipped.len(), 27, "{target}");
            assert!(prod.skipped.iter().all(|k| k.reason == SkipReason::Omitted));
            assert!(prod
                .install
                .iter()
                .all(|e| e.kind == Kind::Tarball && !e.package.dev));
            assert!(prod
                .install
                .iter()
                .any(|e| e.path.as_str() == "node_modules/express"));
            assert!(prod.install_scripts.is_empty());

            let dev = select(&l, Omit::NOTHING, target).unwrap();
            assert_eq!(dev.install.len(), 104, "{target}");
            let skipped: Vec<_> = dev
                .skipped
                .iter()
                .map(|k| (k.path.as_str(), &k.reason))
                .collect();
            assert_eq!(
                skipped,
                [(
                    "node_modules/fsevents",
                    &SkipReason::Platform {
                        wants: "os darwin".into()
                    }
                )]
            );
        }
        // On a mac, fsevents is installed.
        let mac = Target::from_oci("darwin", "arm64", None).unwrap();
        assert_eq!(select(&l, Omit::NOTHING, &mac).unwrap().install.len(), 105);
    }
}
