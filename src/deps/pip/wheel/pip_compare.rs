//! Real wheels from PyPI, installed by hoist and by pip, compared file by
//! file.
//!
//! pip installs with `--target`, which puts purelib and platlib in the
//! target folder and scripts in its `bin`; hoist installs for an image
//! whose Python is the host's version in `/usr/local`. The files must be
//! the same, with the same executable bit, except the ones that say who
//! installed how (RECORD, INSTALLER, REQUESTED, direct_url.json) and the
//! scripts' shebang lines, which name each one's interpreter. Every
//! RECORD hoist writes must also list the layer's files with their true
//! hashes.
//!
//! Needs python3 with pip and access to PyPI (it fails naming what is
//! missing; nothing skips it).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::str::FromStr;

use super::record::{self, RecordHash};
use super::tests::read_layer;
use super::*;
use crate::deps::pip::env::Scheme;
use crate::layer::ImagePath;

/// Small wheels covering: a plain module (six), console scripts
/// (pyflakes), a `.data/scripts` file with `#!python` (jsonpointer), and
/// a platlib wheel with an executable extension module (markupsafe).
const WHEELS: &[&str] = &[
    "six==1.16.0",
    "pyflakes==3.2.0",
    "jsonpointer==2.4",
    "markupsafe==3.0.2",
];

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .output()
        .unwrap_or_else(|e| {
            panic!("running {cmd:?}: {e}; install Python 3 and pip (apt-get install python3-pip)")
        });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir`, by path relative to it.
fn walk(dir: &Path, rel: &str, out: &mut BTreeMap<String, (bool, Vec<u8>)>) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            walk(&entry.path(), &rel, out);
        } else {
            let exec = meta.permissions().mode() & 0o111 != 0;
            out.insert(rel, (exec, std::fs::read(entry.path()).unwrap()));
        }
    }
}

/// `base/rel` with `..` folded.
fn resolve(base: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = base.split('/').collect();
    for part in rel.split('/') {
        if part == ".." {
            parts.pop();
        } else {
            parts.push(part);
        }
    }
    parts.join("/")
}

/// The text after the first line.
fn after_first_line(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(i) => &bytes[i + 1..],
        None => &[],
    }
}

#[test]
fn real_wheels_install_as_pip_installs_them() {
    let tmp = tempfile::tempdir().unwrap();
    let wheels_dir = tmp.path().join("wheels");
    let target = tmp.path().join("target");
    let version =
        run(Command::new("python3").args(["-c", "import sys; print(*sys.version_info[:2])"]));
    let (major, minor) = match version.split_whitespace().collect::<Vec<_>>()[..] {
        [a, b] => (a.parse::<u32>().unwrap(), b.parse::<u32>().unwrap()),
        _ => panic!("python3 printed {version:?}"),
    };
    run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
        ])
        .arg(&wheels_dir)
        .args(WHEELS));
    let mut files: Vec<_> = std::fs::read_dir(&wheels_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), WHEELS.len(), "{files:?}");
    run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-compile",
            "--no-index",
            "--target",
        ])
        .arg(&target)
        .args(&files));

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let inputs: Vec<WheelInput> = files
        .iter()
        .map(|f| WheelInput {
            filename: f.file_name().unwrap().to_string_lossy().into_owned(),
            blob: store.put_bytes(&std::fs::read(f).unwrap()).unwrap().0,
            requested: true,
        })
        .collect();
    let p = |s: &str| ImagePath::new(s).unwrap();
    let site = format!("usr/local/lib/python{major}.{minor}/site-packages");
    let mut env = tests::env_312();
    env.version = (major, minor);
    env.full_version = pep440_rs::Version::from_str(&format!("{major}.{minor}")).unwrap();
    env.interpreter = p(&format!("usr/local/bin/python{major}.{minor}"));
    env.scheme = Scheme {
        purelib: p(&site),
        platlib: p(&site),
        scripts: p("usr/local/bin"),
        data: p("usr/local"),
        headers: p(&format!("usr/local/include/python{major}.{minor}")),
        home: None,
    };
    let out = write_layer(
        &store,
        &inputs,
        &env,
        "hoist",
        Compression::Gzip,
        1_700_000_000,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let tree = read_layer(&store, &out.layer);

    let own = |path: &str| {
        ["RECORD", "INSTALLER", "REQUESTED", "direct_url.json"]
            .iter()
            .any(|f| path.ends_with(&format!(".dist-info/{f}")))
    };
    let mut pip_files = BTreeMap::new();
    walk(&target, "", &mut pip_files);
    let pip_files: BTreeMap<String, (bool, Vec<u8>)> = pip_files
        .into_iter()
        .filter(|(k, _)| !own(k))
        .map(|(k, v)| match k.strip_prefix("bin/") {
            Some(script) => (format!("usr/local/bin/{script}"), v),
            None => (format!("{site}/{k}"), v),
        })
        .collect();
    let ours: BTreeMap<String, (bool, Vec<u8>)> = tree
        .iter()
        .filter_map(|(k, (mode, content))| {
            let content = content.clone()?;
            (!own(k)).then(|| (k.clone(), (mode & 0o111 != 0, content)))
        })
        .collect();
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        pip_files.keys().collect::<Vec<_>>()
    );
    let shebang = format!("#!/usr/local/bin/python{major}.{minor}\n");
    for (path, (exec, bytes)) in &ours {
        let (pip_exec, pip_bytes) = &pip_files[path];
        assert_eq!(exec, pip_exec, "executable bit of {path}");
        if path.starts_with("usr/local/bin/") {
            assert!(bytes.starts_with(shebang.as_bytes()), "{path}");
            assert!(pip_bytes.starts_with(b"#!"), "{path}");
            assert_eq!(
                after_first_line(bytes),
                after_first_line(pip_bytes),
                "{path}"
            );
        } else {
            assert!(bytes == pip_bytes, "{path} differs from pip's");
        }
    }
    assert!(ours.contains_key("usr/local/bin/pyflakes"));
    assert!(ours.contains_key("usr/local/bin/jsonpointer"));

    // Every RECORD lists the layer's files with their true hashes.
    let mut listed = 0;
    for (path, (_, content)) in &tree {
        if !path.ends_with(".dist-info/RECORD") {
            continue;
        }
        let rows = record::parse(content.as_deref().unwrap()).unwrap();
        for row in rows {
            let installed = resolve(&site, &row.path);
            let Some((_, Some(bytes))) = tree.get(&installed) else {
                panic!("{path} lists {} ({installed}), not in the layer", row.path);
            };
            match row.hash {
                Some(h) => {
                    assert_eq!(h, RecordHash::sha256_of(bytes), "{installed}");
                    assert_eq!(row.size, Some(bytes.len() as u64), "{installed}");
                }
                None => assert!(installed.ends_with("/RECORD"), "{installed}"),
            }
            listed += 1;
        }
    }
    assert_eq!(listed, out.files);
}
