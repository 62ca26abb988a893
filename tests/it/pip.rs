//! The pip deps layer, against pip itself and against bad input.
//!
//! Each test says in its doc comment which "Done when" line of issue 5 it
//! proves.
//!
//! Golden tests (line 1): a requirement set is resolved by hoist (`hoist
//! lock` into a temporary file) and by pip (`pip install --dry-run
//! --report` for the image's interpreter and platform), and both must name
//! the same distributions at the same versions, and pick the same wheel
//! file. The image is then built, its deps layer extracted with GNU tar,
//! and compared with `pip install --no-deps --no-compile --root DIR` of
//! the very wheel files hoist installed (copied out of hoist's store under
//! their real names, so nothing is downloaded twice). Last, every
//! top-level module of the layer is imported in the image under podman.
//!
//! pip is Debian's (`/usr/bin/python3 -m pip`, package python3-pip) on
//! Debian's CPython 3.11.2, the python base's own interpreter. That
//! matters twice. pip evaluates environment markers against the
//! interpreter that runs it, whatever `--python-version` says, so only a
//! 3.11 pip on x86_64 resolves for the image. And pip's install scheme is
//! the interpreter's: with `--root DIR` and no `--prefix`, pip on the host
//! writes the very files it writes inside the image, under DIR. (Checked
//! by hand for testdata/pip/api: Debian's pip 23.0.1 run inside the python
//! base under podman wrote the same 3130 files, modes and contents as
//! `--root` on the host; pip 25.0.1 put headers and scripts in the same
//! places.) So the reference needs no mapping of paths. The brief named `--target DIR`
//! instead: that uses pip's "home" scheme, which moves scripts to
//! `DIR/bin`, data to DIR and headers to `DIR/include/python/<dist>`, so
//! a comparison with it must guess where each lands in the image, and it
//! cannot tell where Debian's scheme puts headers: in
//! `/usr/include/python3.11/<dist>` (greenlet has headers), not under
//! `/usr/local` like everything else.
//!
//! pip runs `--isolated` (no `PIP_*` variables or user configuration: this
//! machine's `PIP_FIND_LINKS` would change its answers) with umask 022.
//!
//! Set aside in the tree comparison, because they differ by design:
//! - script shebangs: pip's name the interpreter that ran it
//!   (`/usr/bin/python3`), hoist's the image's versioned one
//!   (`/usr/bin/python3.11`); both are compared as `#!python`, and
//!   hoist's are asserted on their own;
//! - RECORD (it holds the scripts' hashes, so their shebangs), INSTALLER
//!   (the installer's name) and REQUESTED (pip's mark for what was asked
//!   for by name). hoist's RECORD is checked on its own instead: every line
//!   names a file of the layer with its hash and size, and every file of
//!   the layer is in some RECORD.
//!
//! Bad input (line 5) is served from a local `--find-links` folder of
//! wheels made by tests/support/make-wheel.py, with `--no-index`.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::support::*;

/// The interpreter pip runs on: Debian's, 3.11.2 like the python base's.
const PYTHON: &str = "/usr/bin/python3";

/// The python base's install scheme, as hoist must write it (Debian's
/// python3 sends root's `pip install` to /usr/local, dist-packages).
const SITE: &str = "usr/local/lib/python3.11/dist-packages";
const SCRIPTS: &str = "usr/local/bin";
const SHEBANG: &str = "#!/usr/bin/python3.11";

// ---------------------------------------------------------------------
// pip

/// Fails, with the install command, unless Debian's python3 has pip.
fn require_pip() {
    require(PYTHON, "python3");
    let v = run(PYTHON, &["-m", "pip", "--version"]);
    assert_eq!(
        v.status, 0,
        "`{PYTHON} -m pip` does not work: run scripts/install-tools (apt-get install python3-pip)\n{}",
        v.stderr
    );
    // `--root` gives the image's paths only on the image's own scheme.
    let site = run(
        PYTHON,
        &[
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
    );
    assert_eq!(
        site.ok().trim(),
        format!("/{SITE}"),
        "{PYTHON} is not Debian bookworm's python3 3.11, whose install scheme the python base has"
    );
}

/// Runs `python3 -m pip --isolated ARGS` with umask 022.
fn pip(args: &[&str]) -> Run {
    require_pip();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 022 && exec {PYTHON} -m pip --isolated --disable-pip-version-check \"$@\""
        ))
        .arg("sh")
        .args(args)
        .output()
        .expect("run pip");
    Run {
        what: format!("pip {}", args.join(" ")),
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// pip's options for the python base's interpreter and platform: CPython
/// 3.11 on glibc 2.36 (bookworm), so every manylinux tag from 2_36 down.
/// pip adds the legacy aliases (manylinux2010, manylinux1) of
/// manylinux2014 itself; the 2_16..2_5 tags are listed too because the
/// image's glibc runs them, and so does hoist.
fn pip_platform(arch: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
    ]
    .map(String::from)
    .to_vec();
    for minor in (5..=36).rev() {
        args.push(format!("--platform=manylinux_2_{minor}_{arch}"));
    }
    args.push(format!("--platform=manylinux2014_{arch}"));
    args.push(format!("--platform=linux_{arch}"));
    args
}

fn normalize_name(name: &str) -> String {
    pep508_rs::PackageName::from_str(name)
        .unwrap_or_else(|e| panic!("package name `{name}`: {e}"))
        .to_string()
}

fn normalize_version(v: &str) -> String {
    pep440_rs::Version::from_str(v)
        .unwrap_or_else(|e| panic!("version `{v}`: {e}"))
        .to_string()
}

/// One distribution of a resolution.
#[derive(Debug, Clone)]
struct Resolved {
    version: String,
    /// Wheel file names: pip's one, or all that hoist's lock lists.
    wheels: Vec<Wheel>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Wheel {
    filename: String,
    sha256: String,
}

/// What pip would install for `requirements` on the python base, by
/// normalized name.
fn pip_resolution(env: &Env, requirements: &Path, arch: &str) -> BTreeMap<String, Resolved> {
    let report = env.path("pip-report.json");
    let target = env.path("pip-dry-run");
    let mut args: Vec<String> = [
        "install",
        "--dry-run",
        "--ignore-installed",
        "--quiet",
        "--target",
        target.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    args.extend(pip_platform(arch));
    args.extend(["-r".into(), requirements.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    pip(&args).ok();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).expect("pip's report is JSON");
    let mut out = BTreeMap::new();
    for item in report["install"].as_array().expect("report.install") {
        let url = item["download_info"]["url"].as_str().unwrap();
        let wheel = Wheel {
            filename: url.rsplit('/').next().unwrap().to_owned(),
            sha256: item["download_info"]["archive_info"]["hashes"]["sha256"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        };
        out.insert(
            normalize_name(item["metadata"]["name"].as_str().unwrap()),
            Resolved {
                version: normalize_version(item["metadata"]["version"].as_str().unwrap()),
                wheels: vec![wheel],
            },
        );
    }
    out
}

// ---------------------------------------------------------------------
// hoist's lock

/// The packages of a pylock.toml hoist wrote, by normalized name, with
/// checks of its shape: sorted packages, every wheel with a URL, a size
/// and a sha256.
fn read_lock(path: &Path) -> BTreeMap<String, Resolved> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (did `hoist lock` write it?)", path.display()));
    let lock: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("{} is not TOML: {e}\n{text}", path.display()));
    assert_eq!(
        lock.get("lock-version").and_then(|v| v.as_str()),
        Some("1.0"),
        "{}: lock-version",
        path.display()
    );
    let packages = lock["packages"].as_array().expect("[[packages]]");
    let mut names = Vec::new();
    let mut out = BTreeMap::new();
    for p in packages {
        let name = p["name"].as_str().expect("packages.name");
        let version = p["version"].as_str().expect("packages.version");
        names.push(name.to_owned());
        let wheels: Vec<Wheel> = p
            .get("wheels")
            .and_then(|w| w.as_array())
            .unwrap_or_else(|| panic!("{name} {version} has no wheels in the lock"))
            .iter()
            .map(|w| {
                let filename = w["name"].as_str().expect("wheels.name").to_owned();
                assert!(
                    w.get("url").and_then(|u| u.as_str()).is_some()
                        || w.get("path").and_then(|u| u.as_str()).is_some(),
                    "{filename}: no url or path in the lock"
                );
                assert!(
                    w.get("size").and_then(|s| s.as_integer()).is_some(),
                    "{filename}: no size in the lock"
                );
                let sha256 = w["hashes"]["sha256"]
                    .as_str()
                    .expect("wheels.hashes.sha256")
                    .to_owned();
                assert_eq!(sha256.len(), 64, "{filename}: sha256 `{sha256}`");
                Wheel { filename, sha256 }
            })
            .collect();
        out.insert(
            normalize_name(name),
            Resolved {
                version: normalize_version(version),
                wheels,
            },
        );
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "{}: packages are not sorted", path.display());
    out
}

/// Asserts pip and hoist resolved the same distributions at the same
/// versions, listing both side by side when they did not.
#[track_caller]
fn assert_same_resolution(
    what: &str,
    pip: &BTreeMap<String, Resolved>,
    hoist: &BTreeMap<String, Resolved>,
) {
    let names: BTreeSet<&String> = pip.keys().chain(hoist.keys()).collect();
    let mut differ = false;
    let mut table = Vec::new();
    for n in names {
        let (p, h) = (pip.get(n), hoist.get(n));
        let same = matches!((p, h), (Some(p), Some(h)) if p.version == h.version);
        differ |= !same;
        let show = |r: Option<&Resolved>| match r {
            None => "-".to_owned(),
            Some(r) => format!(
                "{} ({})",
                r.version,
                r.wheels
                    .iter()
                    .map(|w| w.filename.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        table.push(format!(
            "{} {n}: pip {} | hoist {}",
            if same { " " } else { "!" },
            show(p),
            show(h)
        ));
    }
    assert!(
        !differ,
        "{what}: hoist's resolution differs from pip's (lines with ! differ):\n{}",
        table.join("\n")
    );
}

// ---------------------------------------------------------------------
// Images and layers

/// An entry of a folder tree, as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir(u32),
    /// Mode and sha256 of the content.
    File(u32, String),
    Link(String),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every entry under `root`, by relative path. Files in a `bin` folder
/// whose first line is `shebang` are hashed with that line as `#!python`,
/// so that two trees whose scripts differ only by their interpreter
/// compare equal.
fn tree(root: &Path, shebang: Option<&str>) -> BTreeMap<String, Node> {
    fn walk(root: &Path, dir: &Path, shebang: Option<&str>, out: &mut BTreeMap<String, Node>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&p).unwrap();
                out.insert(rel, Node::Link(target.to_string_lossy().into_owned()));
            } else if meta.is_dir() {
                out.insert(rel, Node::Dir(mode));
                walk(root, &p, shebang, out);
            } else {
                let mut bytes = std::fs::read(&p).unwrap();
                let in_bin = p.parent().and_then(|d| d.file_name()) == Some("bin".as_ref());
                if let Some(line) = shebang.filter(|_| in_bin) {
                    if bytes.starts_with(format!("{line}\n").as_bytes()) {
                        bytes.splice(..line.len(), b"#!python".iter().copied());
                    }
                }
                out.insert(rel, Node::File(mode, hex(&Sha256::digest(&bytes))));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, shebang, &mut out);
    out
}

/// The dist-info files set aside (see the module docs).
fn set_aside(path: &str) -> bool {
    let mut parts = path.rsplitn(2, '/');
    let file = parts.next().unwrap_or("");
    let dir = parts.next().unwrap_or("");
    dir.ends_with(".dist-info") && matches!(file, "RECORD" | "INSTALLER" | "REQUESTED")
}

/// Asserts two trees are equal, listing the first differences.
#[track_caller]
fn assert_same_tree(what: &str, pip: &BTreeMap<String, Node>, ours: &BTreeMap<String, Node>) {
    let keys: BTreeSet<&String> = pip.keys().chain(ours.keys()).collect();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|k| !set_aside(k) && pip.get(*k) != ours.get(*k))
        .map(|k| format!("  {k}: pip {:?}, hoist {:?}", pip.get(k), ours.get(k)))
        .collect();
    assert!(
        diffs.is_empty(),
        "{what}: {} of {} entries differ:\n{}",
        diffs.len(),
        pip.len(),
        diffs
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(pip.len() > 10, "{what}: suspiciously small tree");
}

/// Checks every RECORD in `site` (a folder of the extracted layer at
/// `root`): each line names a file that is there, with its sha256 and
/// size, and together they cover every file the layer has.
fn check_records(root: &Path, site: &str) -> usize {
    let site_dir = root.join(site);
    let mut recorded = BTreeSet::new();
    let mut records = 0;
    for e in std::fs::read_dir(&site_dir).unwrap() {
        let dist_info = e.unwrap().path();
        if !dist_info.to_string_lossy().ends_with(".dist-info") {
            continue;
        }
        records += 1;
        let record = dist_info.join("RECORD");
        let text = std::fs::read_to_string(&record)
            .unwrap_or_else(|e| panic!("{}: {e}", record.display()));
        for line in text.lines().filter(|l| !l.is_empty()) {
            // Paths with commas are quoted (csv); none in these sets.
            let mut fields = line.rsplitn(3, ',');
            let (size, hash, path) = (fields.next(), fields.next(), fields.next());
            let (Some(size), Some(hash), Some(path)) = (size, hash, path) else {
                panic!("{}: bad line `{line}`", record.display());
            };
            let file = normalize(&site_dir.join(path));
            let rel = file
                .strip_prefix(root)
                .unwrap_or_else(|_| panic!("{}: `{path}` leaves the layer", record.display()))
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&file).unwrap_or_else(|e| {
                panic!("{}: `{path}` is not in the layer: {e}", record.display())
            });
            if let Some(digest) = hash.strip_prefix("sha256=") {
                let want =
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&bytes));
                assert_eq!(digest, want, "{}: hash of `{path}`", record.display());
                assert_eq!(
                    size,
                    bytes.len().to_string(),
                    "{}: size of `{path}`",
                    record.display()
                );
            } else {
                assert!(
                    hash.is_empty() && path.ends_with("RECORD"),
                    "{}: `{line}` has no sha256",
                    record.display()
                );
            }
            recorded.insert(rel);
        }
    }
    for (path, node) in tree(root, None) {
        if matches!(node, Node::File(..)) {
            assert!(
                recorded.contains(&path),
                "{path} is in the layer but in no RECORD"
            );
        }
    }
    records
}

/// `a/b/../c` as `a/c`, without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// The top-level modules and packages the layer's distributions install:
/// `top_level.txt` where a dist-info has one, else the first component of
/// the `.py` and `.so` paths of its RECORD, up to its first dot (so
/// `numpy.libs`, a folder of vendored libraries, counts as numpy). Names
/// that start with `_` are kept: in these sets (`_yaml` of PyYAML) they
/// import on their own; namespace packages (`google` of protobuf,
/// `mpl_toolkits`) import too.
fn top_level_modules(site_dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(site_dir).unwrap() {
        let dist_info = e.unwrap().path();
        if !dist_info.to_string_lossy().ends_with(".dist-info") {
            continue;
        }
        let names: Vec<String> = match std::fs::read_to_string(dist_info.join("top_level.txt")) {
            Ok(t) => t.lines().map(|l| l.trim().replace('/', ".")).collect(),
            Err(_) => std::fs::read_to_string(dist_info.join("RECORD"))
                .unwrap()
                .lines()
                .filter_map(|l| l.split(',').next())
                .filter(|p| !p.starts_with(".."))
                .filter(|p| p.ends_with(".py") || p.ends_with(".so"))
                .map(|p| {
                    let first = p.split('/').next().unwrap();
                    first.split('.').next().unwrap().to_owned()
                })
                .collect(),
        };
        for n in names {
            let top = n.split('.').next().unwrap_or_default();
            let installed = site_dir.join(top).is_dir()
                || site_dir.join(format!("{top}.py")).is_file()
                || has_extension_module(site_dir, top);
            if !top.is_empty() && installed {
                out.insert(top.to_owned());
            }
        }
    }
    out
}

fn has_extension_module(site_dir: &Path, name: &str) -> bool {
    std::fs::read_dir(site_dir).unwrap().any(|e| {
        let f = e.unwrap().file_name().to_string_lossy().into_owned();
        f.starts_with(&format!("{name}.")) && f.ends_with(".so")
    })
}

/// Imports every module in the image under podman; fails listing those
/// that do not import.
fn import_all_in_image(image: &str, modules: &BTreeSet<String>) {
    const SCRIPT: &str = "import importlib, sys\n\
        bad = []\n\
        for m in sys.argv[1:]:\n\
        \x20   try:\n\
        \x20       importlib.import_module(m)\n\
        \x20   except Exception as e:\n\
        \x20       bad.append('%s: %s: %s' % (m, type(e).__name__, e))\n\
        print('\\n'.join(bad) or 'imported %d' % (len(sys.argv) - 1))\n\
        sys.exit(1 if bad else 0)\n";
    let mut args = vec![
        "run",
        "--rm",
        "--network",
        "host",
        image,
        "python3",
        "-c",
        SCRIPT,
    ];
    args.extend(modules.iter().map(String::as_str));
    let r = run("podman", &args);
    assert_eq!(
        r.status, 0,
        "importing in {image} failed:\n{}{}",
        r.stdout, r.stderr
    );
    assert_eq!(r.stdout.trim(), format!("imported {}", modules.len()));
}

// ---------------------------------------------------------------------
// The golden comparison

/// `hoist lock CTX --base BASE ARGS...`.
fn hoist_lock(env: &Env, ctx: &Path, base: &str, args: &[&str]) -> Run {
    let mut all = vec!["lock", ctx.to_str().unwrap(), "--base", base];
    all.extend(args);
    env.hoist(&all)
}

/// `hoist build CTX --base BASE --deps pip --output oci:LAYOUT:x ARGS...`
/// with the environment variables `vars`.
fn hoist_build(
    env: &Env,
    ctx: &Path,
    base: &str,
    layout: &Path,
    args: &[&str],
    vars: &[(&str, &str)],
) -> Run {
    let out = format!("oci:{}:x", layout.display());
    let mut all = vec![
        "build",
        ctx.to_str().unwrap(),
        "--base",
        base,
        "--deps",
        "pip",
        "--output",
        &out,
    ];
    all.extend(args);
    env.hoist_with(&all, vars)
}

/// The python base, as hoist's --base.
fn python_base() -> String {
    format!("oci-archive:{}", base("python.oci.tar").display())
}

/// The wheels hoist installed: of each locked package, the wheel whose
/// blob is in the store (hoist keeps wheels as blobs named by their
/// sha256). Exactly one per package.
fn installed_wheels(env: &Env, lock: &BTreeMap<String, Resolved>) -> BTreeMap<String, Wheel> {
    let blobs = env.path("cache/blobs/sha256");
    lock.iter()
        .map(|(name, r)| {
            let stored: Vec<&Wheel> = r
                .wheels
                .iter()
                .filter(|w| blobs.join(&w.sha256).is_file())
                .collect();
            assert_eq!(
                stored.len(),
                1,
                "{name} {}: of the locked wheels {:?}, the store holds {:?} (one expected)",
                r.version,
                r.wheels,
                stored
            );
            (name.clone(), stored[0].clone())
        })
        .collect()
}

/// Copies (hardlinks) the wheels out of the store under their file names.
fn wheels_folder(env: &Env, wheels: &BTreeMap<String, Wheel>, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for w in wheels.values() {
        let blob = env.path("cache/blobs/sha256").join(&w.sha256);
        let to = dir.join(&w.filename);
        if std::fs::hard_link(&blob, &to).is_err() {
            std::fs::copy(&blob, &to).unwrap();
        }
    }
}

/// The first line of every file in `dir`, by file name (none when `dir`
/// is not there).
fn shebangs(dir: &Path) -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|e| {
            let p = e.unwrap().path();
            let text = std::fs::read(&p).unwrap();
            let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                String::from_utf8_lossy(first).into_owned(),
            )
        })
        .collect()
}

/// Line 1 for one requirement set: resolution, tree and imports.
fn golden(fixture: &str, min_packages: usize) {
    require_podman();
    require_pip();
    let env = Env::new();
    let name = fixture.replace('/', "-");
    let ctx = env.path(&name);
    copy_tree(&testdata(fixture), &ctx);
    let requirements = ctx.join("requirements.txt");

    // 1. The same distributions and versions as pip, for the same target.
    let theirs = pip_resolution(&env, &requirements, "x86_64");
    let lock_path = env.path("pylock.toml");
    hoist_lock(
        &env,
        &ctx,
        &python_base(),
        &["--output", lock_path.to_str().unwrap()],
    )
    .ok();
    assert!(
        !ctx.join("pylock.toml").exists(),
        "--output elsewhere, yet the context got a pylock.toml"
    );
    let ours = read_lock(&lock_path);
    assert_same_resolution(&name, &theirs, &ours);
    assert!(
        ours.len() >= min_packages,
        "{name}: {} packages, expected at least {min_packages}",
        ours.len()
    );

    // 2. The image, and the wheels it was built from.
    let layout = env.path("oci");
    let archive = env.path("image.tar");
    let tag = format!("localhost/hoist-pip-{name}:test");
    hoist_build(
        &env,
        &ctx,
        &python_base(),
        &layout,
        &[
            "--platform",
            "linux/amd64",
            "--tag",
            &tag,
            "--output",
            &format!("oci-archive:{}", archive.display()),
        ],
        &[],
    )
    .ok();
    let installed = installed_wheels(&env, &ours);
    let mismatched: Vec<String> = installed
        .iter()
        .filter(|(n, w)| theirs[*n].wheels[0] != **w)
        .map(|(n, w)| {
            format!(
                "  {n}: pip {} ({}), hoist {} ({})",
                theirs[n].wheels[0].filename, theirs[n].wheels[0].sha256, w.filename, w.sha256
            )
        })
        .collect();
    assert!(
        mismatched.is_empty(),
        "{name}: hoist installed other wheel files than pip picks:\n{}",
        mismatched.join("\n")
    );

    // 3. The layer against pip's install of the same files.
    let layer = env.path("layer");
    extract_deps_layer(&layout, &layer);
    let wheels = env.path("wheels");
    wheels_folder(&env, &installed, &wheels);
    let pins = env.path("pins.txt");
    let pinned: Vec<String> = ours
        .iter()
        .map(|(n, r)| format!("{n}=={}\n", r.version))
        .collect();
    std::fs::write(&pins, pinned.concat()).unwrap();
    let root = env.path("pip-root");
    pip(&[
        "install",
        "--quiet",
        "--no-deps",
        "--no-compile",
        "--ignore-installed",
        "--no-warn-script-location",
        "--no-index",
        "--find-links",
        wheels.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "-r",
        pins.to_str().unwrap(),
    ])
    .ok();
    let pip_tree = tree(&root, Some(&format!("#!{PYTHON}")));
    let layer_tree = tree(&layer, Some(SHEBANG));
    assert_same_tree(&name, &pip_tree, &layer_tree);
    // Scripts: where pip wrote its interpreter, hoist wrote the image's.
    let pip_scripts = shebangs(&root.join(SCRIPTS));
    let our_scripts = shebangs(&layer.join(SCRIPTS));
    let pips = format!("#!{PYTHON}");
    for (script, line) in &pip_scripts {
        if *line == pips {
            assert_eq!(
                our_scripts.get(script).map(String::as_str),
                Some(SHEBANG),
                "{name}: shebang of {SCRIPTS}/{script}"
            );
        }
    }
    let records = check_records(&layer, SITE);
    assert_eq!(records, ours.len(), "{name}: one dist-info per package");

    // 4. Every top-level module imports in the image.
    let modules = top_level_modules(&layer.join(SITE));
    assert!(modules.len() >= ours.len() / 2, "{name}: only {modules:?}");
    let _loaded = Loaded::load(&archive, &tag);
    import_all_in_image(&tag, &modules);
}

/// Done when, line 1, for testdata/agent (requests, PyYAML): the same
/// resolution as pip, the same installed tree as `pip install --no-deps
/// --root` of the same wheels, every top-level module imports.
#[test]
fn golden_agent() {
    golden("agent", 6);
}

/// Done when, line 1, for testdata/pip/api (fastapi, uvicorn[standard],
/// httpx, SQLAlchemy, orjson, boto3; 30+ packages, native wheels).
#[test]
fn golden_api() {
    golden("pip/api", 30);
}

/// Done when, line 1, for testdata/pip/data (numpy, pandas, grpcio,
/// protobuf, matplotlib, ...; 30+ packages, native wheels).
#[test]
fn golden_data() {
    golden("pip/data", 30);
}

// ---------------------------------------------------------------------
// The image runs

/// Done when, line 2: the testdata/agent image, built on the Debian python
/// base with the pip deps layer and the app user of its Dockerfile
/// (agent, 1001), runs as that user under podman and answers GET /health
/// (the port comes from `$PORT`, see testdata/agent/worker/settings.py).
#[test]
fn agent_image_serves_health_under_podman() {
    require_podman();
    require("curl", "curl");
    let env = Env::new();
    let out = env.path("agent.tar");
    let tag = "localhost/hoist-pip-agent-health:test";
    hoist_build(
        &env,
        &testdata("agent"),
        &python_base(),
        &env.path("oci"),
        &[
            "--user",
            "agent:1001",
            "--cmd",
            r#"["python3","app.py"]"#,
            "--tag",
            tag,
            "--output",
            &format!("oci-archive:{}", out.display()),
        ],
        &[],
    )
    .ok();
    let _loaded = Loaded::load(&out, tag);
    let id = run("podman", &["run", "--rm", tag, "id", "-u"]);
    assert_eq!(id.ok().trim(), "1001");
    let answer = podman_serve(tag, free_port(), "/health");
    assert_eq!(answer.trim(), r#"{"status": "ok"}"#);
}

// ---------------------------------------------------------------------
// Other platforms

/// The platform tag of a wheel file name (`manylinux_2_17_aarch64...`).
fn platform_tag(filename: &str) -> &str {
    filename
        .trim_end_matches(".whl")
        .rsplit('-')
        .next()
        .unwrap_or_default()
}

/// ELF e_machine of a file, `None` when it is not an ELF file.
fn elf_machine(path: &Path) -> Option<u16> {
    let bytes = std::fs::read(path).ok()?;
    (bytes.len() > 20 && bytes.starts_with(b"\x7fELF"))
        .then(|| u16::from_le_bytes([bytes[18], bytes[19]]))
}

/// Every shared object (`*.so`, `*.so.N`) under `root`.
fn shared_objects(root: &Path) -> Vec<PathBuf> {
    tree(root, None)
        .into_iter()
        .filter(|(p, n)| {
            let f = p.rsplit('/').next().unwrap_or_default();
            matches!(n, Node::File(..)) && (f.ends_with(".so") || f.contains(".so."))
        })
        .map(|(p, _)| root.join(p))
        .collect()
}

/// Done when, line 3: building testdata/pip/api for linux/arm64 on this
/// amd64 host picks aarch64 wheels, and every shared object in the deps
/// layer is an AArch64 ELF (e_machine 183).
///
/// The base is python-multi (scripts/make-bases): the python base for
/// amd64 and, for arm64, Debian's arm64 python3 EXTRACTED without running
/// maintainer scripts, since this host cannot run arm64 programs; hoist
/// reads files only, so it sees the same Python layout as in a configured
/// image.
#[test]
fn arm64_build_picks_aarch64_wheels() {
    let env = Env::new();
    let ctx = env.path("api");
    copy_tree(&testdata("pip/api"), &ctx);
    let multi = format!("oci-archive:{}", base("python-multi.oci.tar").display());
    let lock_path = env.path("pylock.toml");
    hoist_lock(
        &env,
        &ctx,
        &multi,
        &[
            "--platform",
            "linux/arm64",
            "--output",
            lock_path.to_str().unwrap(),
        ],
    )
    .ok();
    let lock = read_lock(&lock_path);
    let layout = env.path("oci");
    hoist_build(
        &env,
        &ctx,
        &multi,
        &layout,
        &["--platform", "linux/arm64"],
        &[],
    )
    .ok();
    let config = skopeo_config(&format!("oci:{}:x", layout.display()));
    assert_eq!(config["architecture"], "arm64");
    let installed = installed_wheels(&env, &lock);
    let native: Vec<&String> = installed
        .values()
        .map(|w| &w.filename)
        .filter(|f| platform_tag(f) != "any")
        .collect();
    let wrong: Vec<&&String> = native
        .iter()
        .filter(|f| !platform_tag(f).contains("aarch64") || f.contains("x86_64"))
        .collect();
    assert!(wrong.is_empty(), "not aarch64 wheels: {wrong:?}");
    // uvloop, orjson, pydantic-core, greenlet, httptools, watchfiles,
    // websockets, PyYAML at least.
    assert!(native.len() >= 8, "native wheels: {native:?}");

    let layer = env.path("layer");
    extract_deps_layer(&layout, &layer);
    let objects = shared_objects(&layer);
    let not_arm: Vec<String> = objects
        .iter()
        .filter(|p| elf_machine(p) != Some(183))
        .map(|p| format!("{} (e_machine {:?})", p.display(), elf_machine(p)))
        .collect();
    assert!(not_arm.is_empty(), "not AArch64 ELF: {not_arm:?}");
    assert!(objects.len() >= native.len(), "shared objects: {objects:?}");
    check_records(&layer, SITE);
}

/// The Alpine image without Python.
fn alpine_base() -> String {
    format!("oci-archive:{}", base("alpine-amd64.oci.tar").display())
}

/// The Alpine image with the file layout of Alpine's python3 package (a
/// stand-in: the Alpine package repository is unreachable from here, see
/// scripts/make-bases). It runs no Python, and nothing is run in it.
fn alpine_pylayout_base() -> String {
    format!("oci-archive:{}", base("alpine-pylayout.oci.tar").display())
}

/// A build context with this requirements.txt and an app.py.
fn project(env: &Env, name: &str, requirements: &str) -> PathBuf {
    let dir = env.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("requirements.txt"), requirements).unwrap();
    std::fs::write(dir.join("app.py"), "print('hi')\n").unwrap();
    dir
}

/// Done when, line 4 (a): on Alpine without Python, `--deps pip` fails
/// clearly, and writes nothing.
#[test]
fn alpine_without_python_is_refused() {
    let env = Env::new();
    let ctx = project(&env, "app", "orjson==3.10.12\n");
    let out = env.path("out");
    hoist_build(&env, &ctx, &alpine_base(), &out, &[], &[]).fails_with("no CPython");
    assert!(!out.exists());
    let lock = env.path("pylock.toml");
    hoist_lock(
        &env,
        &ctx,
        &alpine_base(),
        &["--output", lock.to_str().unwrap()],
    )
    .fails_with("no CPython");
    assert!(!lock.exists());
    assert!(!ctx.join("pylock.toml").exists());
}

/// Done when, line 4 (b): on Alpine's Python layout (CPython 3.12, musl)
/// orjson comes as its musllinux wheel, whose extension module is linked
/// against musl.
#[test]
fn alpine_python_layout_gets_musllinux_wheels() {
    require("readelf", "binutils");
    let env = Env::new();
    let ctx = project(&env, "app", "orjson==3.10.12\n");
    let lock_path = env.path("pylock.toml");
    hoist_lock(
        &env,
        &ctx,
        &alpine_pylayout_base(),
        &["--output", lock_path.to_str().unwrap()],
    )
    .ok();
    let lock = read_lock(&lock_path);
    assert_eq!(lock.keys().collect::<Vec<_>>(), ["orjson"]);
    let orjson = &lock["orjson"];
    assert_eq!(orjson.version, "3.10.12");
    for w in &orjson.wheels {
        assert!(
            platform_tag(&w.filename).starts_with("musllinux_") && w.filename.contains("x86_64"),
            "a wheel that does not fit Alpine x86_64 is locked: {}",
            w.filename
        );
    }
    let layout = env.path("oci");
    hoist_build(&env, &ctx, &alpine_pylayout_base(), &layout, &[], &[]).ok();
    let installed = installed_wheels(&env, &lock);
    assert_eq!(
        installed["orjson"].filename,
        "orjson-3.10.12-cp312-cp312-musllinux_1_2_x86_64.whl"
    );
    let layer = env.path("layer");
    extract_deps_layer(&layout, &layer);
    let site = "usr/lib/python3.12/site-packages";
    let so = layer
        .join(site)
        .join("orjson/orjson.cpython-312-x86_64-linux-musl.so");
    assert_eq!(
        elf_machine(&so),
        Some(62),
        "{} is an x86-64 ELF",
        so.display()
    );
    // Linked against musl: its C library is `libc.so` (glibc's is
    // `libc.so.6`), and it needs no glibc symbol version (`GLIBC_2.x`).
    let dynamic = run("readelf", &["-d", "-V", so.to_str().unwrap()]);
    let dynamic = dynamic.ok();
    assert!(
        dynamic.contains("Shared library: [libc.so]")
            && !dynamic.contains("libc.so.6")
            && !dynamic.contains("GLIBC_"),
        "{dynamic}"
    );
    assert_eq!(check_records(&layer, site), 1);
}

/// Done when, line 4 (c): a package with only manylinux wheels and no
/// sdist (pysqlite3-binary 0.5.4.post2: manylinux2014 x86_64 wheels for
/// CPython 3.8 to 3.14, nothing else) fails clearly on Alpine, naming the
/// package and the tags tried.
#[test]
fn alpine_python_layout_without_a_musllinux_wheel_is_refused() {
    let env = Env::new();
    let ctx = project(&env, "app", "pysqlite3-binary==0.5.4.post2\n");
    let out = env.path("out");
    let r = hoist_build(&env, &ctx, &alpine_pylayout_base(), &out, &[], &[]);
    r.fails_with("pysqlite3-binary");
    r.fails_with("cp312-cp312-musllinux_1_2_x86_64");
    assert!(!out.exists());
}

/// Issue 18, item 4: on a base whose C library hoist cannot tell (the
/// Alpine python layout with its musl loader, os-release and apk database
/// whited out by a layer umoci adds), a pure wheel installs and a package
/// with only native wheels is refused by name, saying why.
#[test]
fn pure_wheels_install_on_a_base_whose_libc_is_unknown() {
    require("umoci", "umoci");
    let env = Env::new();
    let lay = env.path("base");
    std::fs::create_dir_all(&lay).unwrap();
    let layout = lay.display().to_string();
    run(
        "tar",
        &[
            "-C",
            &layout,
            "-xf",
            &base("alpine-pylayout.oci.tar").display().to_string(),
        ],
    )
    .ok();
    let wh = env.path("whiteouts");
    for f in [
        "lib/.wh.ld-musl-x86_64.so.1",
        "lib/.wh.ld-musl-aarch64.so.1",
        "etc/.wh.os-release",
        "usr/lib/.wh.os-release",
        "lib/apk/db/.wh.installed",
    ] {
        let p = wh.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "").unwrap();
    }
    let tar = env.path("whiteouts.tar");
    let (wh_s, tar_s) = (wh.display().to_string(), tar.display().to_string());
    run("tar", &["-C", &wh_s, "-cf", &tar_s, "."]).ok();
    run(
        "umoci",
        &[
            "raw",
            "add-layer",
            "--image",
            &format!("{layout}:3.20.3"),
            &tar_s,
        ],
    )
    .ok();
    let base = format!("oci:{layout}:3.20.3");
    let ctx = project(&env, "app", "six==1.16.0\n");
    let out = env.path("out");
    hoist_build(&env, &ctx, &base, &out, &[], &[]).ok();
    assert!(
        extract_and_find(&out, "six.py"),
        "six.py is not in the deps layer"
    );
    let ctx = project(&env, "native", "pysqlite3-binary==0.5.4.post2\n");
    let out = env.path("out-native");
    let r = hoist_build(&env, &ctx, &base, &out, &[], &[]);
    r.fails_with("pysqlite3-binary");
    r.fails_with("cannot tell this base's C library");
    assert!(!out.exists());
}

/// Whether any layer of the layout's image holds a file named `name`.
fn extract_and_find(layout: &Path, name: &str) -> bool {
    let blobs = layout.join("blobs/sha256");
    std::fs::read_dir(&blobs).unwrap().any(|e| {
        let path = e.unwrap().path();
        let listing = Command::new("tar").arg("-tzf").arg(&path).output();
        listing.is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.ends_with(&format!("/{name}")))
        })
    })
}

// ---------------------------------------------------------------------
// Bad input

/// Every cache entry of `env`'s store, as `kind/name`.
fn keys(env: &Env) -> BTreeSet<String> {
    let root = env.path("cache/keys");
    let mut out = BTreeSet::new();
    for kind in std::fs::read_dir(&root).into_iter().flatten() {
        let kind = kind.unwrap();
        for e in std::fs::read_dir(kind.path()).unwrap() {
            out.insert(format!(
                "{}/{}",
                kind.file_name().to_string_lossy(),
                e.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    out
}

/// Builds a project without dependencies but with an app user on the
/// python base, so that what any build on it caches (the base's facts) is
/// in the store before a failing build is watched.
fn prime(env: &Env) {
    let ctx = project(env, "primer", "");
    std::fs::remove_file(ctx.join("requirements.txt")).unwrap();
    env.hoist(&[
        "build",
        ctx.to_str().unwrap(),
        "--base",
        &python_base(),
        "--deps",
        "none",
        "--user",
        "primer:1001",
        "--output",
        &format!("oci:{}:x", env.path("primer-oci").display()),
    ])
    .ok();
    assert!(
        keys(env).iter().any(|k| k.starts_with("facts/")),
        "the primer cached the base's facts: {:?}",
        keys(env)
    );
}

/// The cache kinds that hold what is true whatever a build then makes of
/// them, so a failed build may leave them: what an index serves, as it
/// serves it (its pages, and the core metadata of its files, keyed by the
/// sha256 the page gives), and the deps layer's segments finished before
/// the error (folders and other wheels, each checked against its digest,
/// length and CRC-32 when used; a refused wheel's own segment is never
/// kept: `layer::segments` tests). Anything else a failed build leaves (a
/// resolution, a layer) would be its own result.
const KEPT_ON_FAILURE: &[&str] = &["pip-page/", "pip-metadata/", "deps-segment/"];

/// Builds `ctx` with `--deps pip`, and checks that it fails with exit 1
/// and each of `needles` in the message, writes nothing at the output,
/// adds no cache entry (but those of [`KEPT_ON_FAILURE`]) and leaves
/// no temporary file. What does not hold is added to `problems`, so that a
/// test reports every case at once.
fn refused(env: &Env, ctx: &Path, needles: &[&str], problems: &mut Vec<String>) {
    let before = keys(env);
    let out = env.path(&format!(
        "{}-out",
        ctx.file_name().unwrap().to_string_lossy()
    ));
    let r = hoist_build(env, ctx, &python_base(), &out, &[], &[]);
    let mut wrong = Vec::new();
    if r.status != 1 || r.stderr.contains("panicked") {
        wrong.push(format!("exit {} (1 expected, no panic)", r.status));
    }
    for n in needles.iter().filter(|n| !r.stderr.contains(*n)) {
        wrong.push(format!("`{n}` is not in the message"));
    }
    if out.exists() {
        wrong.push(format!("{} was written", out.display()));
    }
    let new: Vec<String> = keys(env)
        .difference(&before)
        .filter(|k| !KEPT_ON_FAILURE.iter().any(|kind| k.starts_with(kind)))
        .cloned()
        .collect();
    if !new.is_empty() {
        wrong.push(format!("new cache entries: {new:?}"));
    }
    let tmp: Vec<_> = std::fs::read_dir(env.path("cache/tmp"))
        .map(|rd| rd.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    if !tmp.is_empty() {
        wrong.push(format!("temp files left: {tmp:?}"));
    }
    if !wrong.is_empty() {
        problems.push(format!(
            "{}:\n  {}\n  stderr: {}",
            r.what,
            wrong.join("\n  "),
            r.stderr.trim()
        ));
    }
}

/// Fails listing the problems [`refused`] found.
#[track_caller]
fn no_problems(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} case(s) not refused as they should be:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// Done when, line 5, for what the index serves: a `--hash` that is not
/// the pinned wheel's, a package no index has, and two requirements no
/// version satisfies together (pip refuses the first and last too).
#[test]
fn bad_requirements_are_refused_and_nothing_is_cached() {
    let env = Env::new();
    prime(&env);
    let mut problems = Vec::new();

    let wrong = hex(&Sha256::digest(b"not six"));
    let hashed = project(
        &env,
        "hash",
        &format!("six==1.17.0 --hash=sha256:{wrong}\n"),
    );
    let r = pip(&[
        "download",
        "--no-deps",
        "-d",
        env.path("pip-download").to_str().unwrap(),
        "-r",
        hashed.join("requirements.txt").to_str().unwrap(),
    ]);
    assert!(
        r.status != 0 && r.stderr.contains("DO NOT MATCH THE HASHES"),
        "pip accepts the wrong hash:\n{}",
        r.stderr
    );
    refused(&env, &hashed, &["six", &wrong], &mut problems);

    let unknown = project(&env, "unknown", "this-package-does-not-exist-hoist==1.0\n");
    refused(
        &env,
        &unknown,
        &["this-package-does-not-exist-hoist"],
        &mut problems,
    );
    let lock = env.path("unknown.toml");
    hoist_lock(
        &env,
        &unknown,
        &python_base(),
        &["--output", lock.to_str().unwrap()],
    )
    .fails_with("this-package-does-not-exist-hoist");
    assert!(!lock.exists());

    let unsat = project(&env, "unsat", "requests==2.32.3\nurllib3<1.21\n");
    let mut args: Vec<String> = [
        "install",
        "--dry-run",
        "--ignore-installed",
        "--target",
        env.path("pip-unsat").to_str().unwrap(),
        "-r",
        unsat.join("requirements.txt").to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    args.extend(pip_platform("x86_64"));
    let r = pip(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        r.status != 0 && r.stderr.contains("ResolutionImpossible"),
        "pip resolves requests==2.32.3 with urllib3<1.21:\n{}",
        r.stderr
    );
    refused(&env, &unsat, &["requests", "urllib3"], &mut problems);
    no_problems(&problems);
}

/// A project that installs `name==1.0` from a `--find-links` folder of one
/// wheel made by tests/support/make-wheel.py, with `--no-index`.
fn local_wheel_project(env: &Env, name: &str, kind: &str) -> PathBuf {
    require_pip();
    let ctx = project(
        env,
        name,
        &format!("--no-index\n--find-links wheels\n{name}==1.0\n"),
    );
    std::fs::create_dir(ctx.join("wheels")).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/make-wheel.py");
    run(
        PYTHON,
        &[
            script.to_str().unwrap(),
            ctx.join("wheels").to_str().unwrap(),
            name,
            "1.0",
            kind,
        ],
    )
    .ok();
    ctx
}

/// Done when, line 5, for crafted wheels from a local `--find-links`
/// folder: one whose RECORD does not match its files, and one with a path
/// that leaves site-packages. A well-formed wheel from the same kind of
/// folder installs (the control).
///
/// pip refuses the second and installs the first: pip 23 does not check
/// RECORD's hashes on install. hoist does, so it is stricter than pip here.
#[test]
fn crafted_wheels_are_refused_and_nothing_is_cached() {
    let env = Env::new();
    prime(&env);
    let mut problems = Vec::new();

    let good = local_wheel_project(&env, "goodpkg", "good");
    let layout = env.path("good-oci");
    hoist_build(&env, &good, &python_base(), &layout, &[], &[]).ok();
    let layer = env.path("good-layer");
    extract_deps_layer(&layout, &layer);
    assert_eq!(
        std::fs::read_to_string(layer.join(SITE).join("goodpkg/__init__.py")).unwrap(),
        "VALUE = 'goodpkg'\n"
    );
    assert_eq!(check_records(&layer, SITE), 1);

    let bad_record = local_wheel_project(&env, "badrecord", "bad-record");
    refused(
        &env,
        &bad_record,
        &["badrecord", "RECORD", "badrecord/__init__.py"],
        &mut problems,
    );

    let escape = local_wheel_project(&env, "escapepkg", "escape");
    let wheel = escape.join("wheels/escapepkg-1.0-py3-none-any.whl");
    let r = pip(&[
        "install",
        "--no-deps",
        "--target",
        env.path("pip-escape").to_str().unwrap(),
        wheel.to_str().unwrap(),
    ]);
    assert!(
        r.status != 0 && r.stderr.contains("outside the target directory"),
        "pip installs escapepkg:\n{}",
        r.stderr
    );
    refused(
        &env,
        &escape,
        &["escapepkg", "../../../../tmp/hoist-escape-escapepkg"],
        &mut problems,
    );
    assert!(!Path::new("/tmp/hoist-escape-escapepkg").exists());
    no_problems(&problems);
}

// ---------------------------------------------------------------------
// Rebuilds and locks

/// Done when, line 6 (first part): after a code-only change, the rebuild
/// touches no network (every proxy points at a closed port) and reuses the
/// deps layer as it was; so does `--offline`. The control: `--refresh`,
/// which re-resolves, cannot succeed in that environment.
#[test]
fn code_only_rebuild_touches_no_network() {
    let env = Env::new();
    let ctx = env.path("agent");
    copy_tree(&testdata("agent"), &ctx);
    hoist_build(&env, &ctx, &python_base(), &env.path("first"), &[], &[]).ok();

    let app = ctx.join("app.py");
    let mut code = std::fs::read_to_string(&app).unwrap();
    code.push_str("# a change\n");
    std::fs::write(&app, code).unwrap();

    hoist_build(
        &env,
        &ctx,
        &python_base(),
        &env.path("second"),
        &[],
        OFFLINE,
    )
    .ok();
    hoist_build(
        &env,
        &ctx,
        &python_base(),
        &env.path("third"),
        &["--offline"],
        OFFLINE,
    )
    .ok();
    let (one, two, three) = (env.path("first"), env.path("second"), env.path("third"));
    let deps = layer_digest(&one, "hoist deps");
    assert!(deps.is_some(), "the first build has a deps layer");
    assert_eq!(deps, layer_digest(&two, "hoist deps"));
    assert_eq!(deps, layer_digest(&three, "hoist deps"));
    assert_ne!(
        layer_digest(&one, "hoist app"),
        layer_digest(&two, "hoist app")
    );
    let control = hoist_build(
        &env,
        &ctx,
        &python_base(),
        &env.path("fourth"),
        &["--refresh"],
        OFFLINE,
    );
    assert_eq!(
        control.status, 1,
        "--refresh with every proxy closed should fail:\n{}",
        control.stderr
    );
    assert!(!env.path("fourth").exists());
}

/// Done when, line 6 (second and third parts): `hoist lock` writes
/// pylock.toml next to requirements.txt (the same bytes twice), a
/// `--locked` build from it succeeds, and once requirements.txt pins a
/// version the lock lacks, `--locked` fails naming the requirement.
#[test]
fn locked_builds_follow_the_lock() {
    let env = Env::new();
    let ctx = env.path("agent");
    copy_tree(&testdata("agent"), &ctx);
    let lock = ctx.join("pylock.toml");
    hoist_lock(&env, &ctx, &python_base(), &[]).ok();
    let locked = read_lock(&lock);
    assert_eq!(locked["requests"].version, "2.32.3");
    assert_eq!(locked["pyyaml"].version, "6.0.2");
    let again = env.path("again.toml");
    hoist_lock(
        &env,
        &ctx,
        &python_base(),
        &["--output", again.to_str().unwrap()],
    )
    .ok();
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        std::fs::read_to_string(&again).unwrap(),
        "two locks of the same input"
    );

    hoist_build(
        &env,
        &ctx,
        &python_base(),
        &env.path("locked"),
        &["--locked"],
        &[],
    )
    .ok();
    let layer = env.path("layer");
    extract_deps_layer(&env.path("locked"), &layer);
    assert!(layer.join(SITE).join("requests-2.32.3.dist-info").is_dir());
    assert_eq!(check_records(&layer, SITE), locked.len());

    let requirements = ctx.join("requirements.txt");
    let text = std::fs::read_to_string(&requirements).unwrap();
    assert!(text.contains("\nrequests==2.32.3\n"));
    std::fs::write(
        &requirements,
        text.replace("requests==2.32.3", "requests==2.31.0"),
    )
    .unwrap();
    let r = hoist_build(
        &env,
        &ctx,
        &python_base(),
        &env.path("stale"),
        &["--locked"],
        &[],
    );
    r.fails_with("pylock.toml does not satisfy the requirements");
    r.fails_with("requirements.txt:3 wants requests==2.31.0, locked is 2.32.3");
    assert!(!env.path("stale").exists());
}

/// Issue 9, `sdists = "sandbox"`: docopt 0.6.2 has only an sdist (a
/// setup.py, no pyproject.toml). Without the option the build fails
/// naming the package and the option; with it, hoist resolves and
/// installs setuptools and wheel natively into a build environment, builds
/// the wheel in the sandbox with the python base's own python3 (which has
/// no pip), and installs it like any wheel. A second build, offline, with
/// neither the layer nor the resolution from the cache, takes the built
/// wheel from the store: nothing is built, and the layer is the same.
#[test]
fn sdist_only_package_is_built_in_the_sandbox() {
    require_podman();
    let env = Env::new();
    let ctx = project(&env, "app", "docopt==0.6.2\n");
    let layout = env.path("oci");
    let r = hoist_build(&env, &ctx, &python_base(), &layout, &[], &[]);
    r.fails_with("`docopt==0.6.2` has no wheel for this image (only an sdist)");
    r.fails_with(r#"sdists = "sandbox""#);
    assert!(!layout.exists());

    let tag = "localhost/hoist-pip-sdist:test";
    let archive = env.path("sdist.tar");
    let started = std::time::Instant::now();
    let first = hoist_build(
        &env,
        &ctx,
        &python_base(),
        &layout,
        &[
            "--sdists",
            "sandbox",
            "--tag",
            tag,
            "--output",
            &format!("oci-archive:{}", archive.display()),
        ],
        &[],
    );
    first.ok();
    eprintln!("first build with the sdist built: {:?}", started.elapsed());
    assert!(
        first
            .stderr
            .contains("1 sdists built into wheels in the sandbox"),
        "{}",
        first.stderr
    );
    let deps = layer_digest(&layout, "hoist deps").expect("a deps layer");

    let layer = env.path("layer");
    extract_deps_layer(&layout, &layer);
    assert!(layer.join(SITE).join("docopt.py").is_file());
    let dist_info = layer.join(SITE).join("docopt-0.6.2.dist-info");
    assert_eq!(
        std::fs::read_to_string(dist_info.join("INSTALLER")).unwrap(),
        "hoist\n"
    );
    assert!(dist_info.join("RECORD").is_file());
    assert_eq!(check_records(&layer, SITE), 1);
    // Nothing of the build environment gets into the layer.
    let everything: Vec<String> = tree(&layer, None).into_keys().collect();
    assert!(
        everything
            .iter()
            .all(|p| !p.contains("hoist-build") && !p.contains("setuptools")),
        "{everything:?}"
    );

    let _loaded = Loaded::load(&archive, tag);
    let version = run(
        "podman",
        &[
            "run",
            "--rm",
            tag,
            "python3",
            "-c",
            "import docopt; print(docopt.__version__)",
        ],
    );
    assert_eq!(version.ok().trim(), "0.6.2");

    let again = env.path("again");
    let started = std::time::Instant::now();
    let second = hoist_build(
        &env,
        &ctx,
        &python_base(),
        &again,
        &[
            "--sdists",
            "sandbox",
            "--offline",
            "--no-cache",
            "--refresh",
        ],
        &[],
    );
    second.ok();
    eprintln!(
        "second build from the stored wheel: {:?}",
        started.elapsed()
    );
    assert!(!second.stderr.contains("sdists built"), "{}", second.stderr);
    assert!(second.stderr.contains("deps    pip"), "{}", second.stderr);
    assert_eq!(layer_digest(&again, "hoist deps").as_ref(), Some(&deps));
}

/// Issue 9: a build that fails says which package and version, and shows
/// the end of the build's output; nothing is cached for it. The sdist
/// comes from a `--find-links` folder and names an in-tree backend
/// (PEP 517 `backend-path`) that needs no build requirements.
#[test]
fn failed_sdist_build_names_the_package_and_caches_nothing() {
    require_podman();
    let env = Env::new();
    let ctx = project(&env, "app", "--no-index\n--find-links sdists\nboom==1.0\n");
    let src = env.path("boom-1.0");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("pyproject.toml"),
        "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n",
    )
    .unwrap();
    std::fs::write(
        src.join("backend.py"),
        "def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n    \
         print('compiling boom')\n    raise RuntimeError('boom: no compiler here')\n",
    )
    .unwrap();
    std::fs::create_dir(ctx.join("sdists")).unwrap();
    let sdist = ctx.join("sdists/boom-1.0.tar.gz");
    run(
        "tar",
        &[
            "-czf",
            sdist.to_str().unwrap(),
            "-C",
            env.path("").to_str().unwrap(),
            "boom-1.0",
        ],
    )
    .ok();
    let r = hoist_build(
        &env,
        &ctx,
        &python_base(),
        &env.path("oci"),
        &["--sdists", "sandbox"],
        &[],
    );
    r.fails_with("building `boom==1.0` from its sdist");
    r.fails_with("the build of boom-1.0.tar.gz exited with status 1");
    r.fails_with("RuntimeError: boom: no compiler here");
    assert!(!env.path("oci").exists());
    let built = env.path("cache/keys/pip-built-wheel");
    let entries = std::fs::read_dir(&built).map(|d| d.count()).unwrap_or(0);
    assert_eq!(entries, 0, "a failed build left a cache entry");
}
