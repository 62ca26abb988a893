//! Installing hand-built wheels: where files land, what is made, and what
//! is refused (with nothing left in the store).

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};
use std::str::FromStr;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::record::RecordHash;
use super::*;
use crate::deps::pip::env::Scheme;
use crate::deps::pip::tags::{Arch, Libc, Target};
use crate::layer::compress::decompress;
use crate::layer::ImagePath;

/// A wheel file: name, bytes, unix mode.
type File<'a> = (&'a str, &'a [u8], u32);

fn p(s: &str) -> ImagePath {
    ImagePath::new(s).unwrap()
}

/// An image with CPython 3.12 in /usr/local; platlib differs from
/// purelib so that tests can tell them apart.
pub(super) fn env_312() -> PythonEnv {
    PythonEnv {
        version: (3, 12),
        full_version: pep440_rs::Version::from_str("3.12.4").unwrap(),
        full_version_known: true,
        interpreter: p("usr/local/bin/python3.12"),
        scheme: Scheme {
            purelib: p("usr/local/lib/python3.12/site-packages"),
            platlib: p("usr/local/lib64/python3.12/site-packages"),
            scripts: p("usr/local/bin"),
            data: p("usr/local"),
            headers: p("usr/local/include/python3.12"),
            home: None,
        },
        target: Target {
            python: (3, 12),
            arch: Arch::X86_64,
            libc: Libc::Glibc {
                major: 2,
                minor: 36,
            },
        },
    }
}

/// A zip of `files`, deflated.
fn zip_of(files: &[File]) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes, mode) in files {
        let opts = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .unix_permissions(*mode);
        if name.ends_with('/') {
            w.add_directory(*name, opts).unwrap();
        } else {
            w.start_file(*name, opts).unwrap();
            w.write_all(bytes).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

/// RECORD text listing `files` with their true hashes and sizes, and
/// RECORD itself.
fn record_of(dist_info: &str, files: &[File]) -> String {
    let mut out = String::new();
    for (name, bytes, _) in files {
        if !name.ends_with('/') {
            out.push_str(&format!(
                "{name},{},{}\n",
                RecordHash::sha256_of(bytes),
                bytes.len()
            ));
        }
    }
    out.push_str(&format!("{dist_info}/RECORD,,\n"));
    out
}

const WHEEL_PURE: &str =
    "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
const WHEEL_PLAT: &str =
    "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: cp312-cp312-linux_x86_64\n";

/// A wheel of `stem` (`demo-1.0`) with `files`, its WHEEL text, and a
/// true RECORD.
fn wheel_with(stem: &str, wheel_text: &str, files: &[File]) -> Vec<u8> {
    let dist_info = format!("{stem}.dist-info");
    let wheel_name = format!("{dist_info}/WHEEL");
    let mut all: Vec<File> = files.to_vec();
    all.push((&wheel_name, wheel_text.as_bytes(), 0o644));
    let record = record_of(&dist_info, &all);
    let record_name = format!("{dist_info}/RECORD");
    all.push((&record_name, record.as_bytes(), 0o644));
    zip_of(&all)
}

/// A wheel as [`wheel_with`], with `RECORD` text of its own.
fn wheel_with_record(stem: &str, files: &[File], record: &str) -> Vec<u8> {
    let wheel_name = format!("{stem}.dist-info/WHEEL");
    let record_name = format!("{stem}.dist-info/RECORD");
    let mut all: Vec<File> = files.to_vec();
    all.push((&wheel_name, WHEEL_PURE.as_bytes(), 0o644));
    all.push((&record_name, record.as_bytes(), 0o644));
    zip_of(&all)
}

/// What a layer holds: path -> (mode, content), folders with `None`.
type Tree = BTreeMap<String, (u32, Option<Vec<u8>>)>;

pub(super) fn read_layer(store: &Store, layer: &Layer) -> Tree {
    let blob = store.open_blob(&layer.descriptor.digest).unwrap();
    let (_, r) = decompress(blob).unwrap();
    let mut ar = tar::Archive::new(r);
    let mut out = Tree::new();
    let mut prev = String::new();
    let mut order: Vec<String> = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header();
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
        assert_eq!(h.mtime().unwrap(), 1_700_000_000);
        let path = e.path().unwrap().to_string_lossy().into_owned();
        // Segmented: folders first, then each wheel's files in order; each
        // entry's folder comes before it, and no path comes twice.
        assert!(!out.contains_key(&path), "{path} twice");
        order.push(path.clone());
        if h.entry_type() == tar::EntryType::Directory {
            assert!(prev < path, "folder {prev} then {path}");
            prev.clone_from(&path);
        }
        let mode = h.mode().unwrap();
        let content = match h.entry_type() {
            tar::EntryType::Directory => None,
            tar::EntryType::Regular => {
                let mut v = Vec::new();
                e.read_to_end(&mut v).unwrap();
                Some(v)
            }
            other => panic!("{path}: unexpected {other:?}"),
        };
        out.insert(path, (mode, content));
    }
    // Each entry's folder, when the layer has it, comes before it.
    let at: BTreeMap<&String, usize> = order.iter().enumerate().map(|(i, p)| (p, i)).collect();
    for (i, path) in order.iter().enumerate() {
        if let Some((dir, _)) = path.rsplit_once('/') {
            if let Some(j) = at.get(&dir.to_owned()) {
                assert!(*j < i, "{path} came before its folder");
            }
        }
    }
    out
}

/// A store in a temp dir with `wheels` in it.
struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
    inputs: Vec<WheelInput>,
}

impl Fixture {
    fn new(wheels: &[(&str, Vec<u8>)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let inputs = wheels
            .iter()
            .map(|(filename, bytes)| WheelInput {
                filename: (*filename).to_owned(),
                blob: store.put_bytes(bytes).unwrap().0,
                requested: true,
            })
            .collect();
        Fixture { dir, store, inputs }
    }

    fn install(&self) -> Result<WheelLayer, WheelError> {
        write_layer(
            &self.store,
            &self.inputs,
            &env_312(),
            "hoist",
            Compression::Gzip,
            1_700_000_000,
        )
    }

    /// Installs, expecting an error whose text holds every one of `want`;
    /// checks that the store holds only the input wheels afterwards.
    fn refuse(&self, want: &[&str]) -> WheelError {
        let err = match self.install() {
            Ok(_) => panic!("installed; wanted an error with {want:?}"),
            Err(e) => e,
        };
        let text = err.to_string();
        for w in want {
            assert!(text.contains(w), "`{text}` lacks `{w}`");
        }
        let count = |sub: &str| {
            std::fs::read_dir(self.dir.path().join(sub))
                .unwrap()
                .count()
        };
        assert_eq!(count("tmp"), 0, "a temp file was left: {text}");
        let unique: std::collections::BTreeSet<_> = self.inputs.iter().map(|i| &i.blob).collect();
        // Segments finished before the error stay, as cache entries.
        let segments = self.store.list_keys("deps-segment").unwrap().len();
        assert_eq!(
            count("blobs/sha256") - segments,
            unique.len(),
            "a blob was left: {text}"
        );
        let kinds: Vec<_> = match std::fs::read_dir(self.dir.path().join("keys")) {
            Ok(rd) => rd.map(|e| e.unwrap().file_name()).collect(),
            Err(_) => Vec::new(),
        };
        assert!(kinds.iter().all(|k| k == "deps-segment"), "{kinds:?}");
        err
    }
}

const SITE: &str = "usr/local/lib/python3.12/site-packages";

#[test]
fn purelib_wheel_lands_in_site_packages_with_record_and_installer() {
    let files: &[File] = &[
        ("demo/__init__.py", b"print('hi')\n", 0o644),
        ("demo/run.sh", b"#!/bin/sh\n", 0o755),
        ("demo/sub/", b"", 0o755),
        ("demo/sub/data.txt", b"data", 0o100644 | 0o4000),
        (
            "demo-1.0.dist-info/METADATA",
            b"Name: demo\nVersion: 1.0\n",
            0o644,
        ),
    ];
    let fx = Fixture::new(&[(
        "demo-1.0-py3-none-any.whl",
        wheel_with("demo-1.0", WHEEL_PURE, files),
    )]);
    let out = fx.install().unwrap();
    let tree = read_layer(&fx.store, &out.layer);
    let names: Vec<&str> = tree.keys().map(String::as_str).collect();
    let site = |rest: &str| format!("{SITE}/{rest}");
    let mut want = vec![
        "usr".to_owned(),
        "usr/local".to_owned(),
        "usr/local/lib".to_owned(),
        "usr/local/lib/python3.12".to_owned(),
        SITE.to_owned(),
    ];
    for rest in [
        "demo",
        "demo-1.0.dist-info",
        "demo-1.0.dist-info/INSTALLER",
        "demo-1.0.dist-info/METADATA",
        "demo-1.0.dist-info/RECORD",
        "demo-1.0.dist-info/REQUESTED",
        "demo-1.0.dist-info/WHEEL",
        "demo/__init__.py",
        "demo/run.sh",
        "demo/sub",
        "demo/sub/data.txt",
    ] {
        want.push(site(rest));
    }
    want.sort();
    assert_eq!(names, want);
    assert_eq!((out.files, out.scripts), (8, 0));
    for (path, (mode, content)) in &tree {
        let want_mode = match (content, path.ends_with("run.sh")) {
            (None, _) | (_, true) => 0o755,
            _ => 0o644,
        };
        assert_eq!(*mode, want_mode, "{path}");
    }
    let file = |rest: &str| tree[&site(rest)].1.clone().unwrap();
    assert_eq!(file("demo/sub/data.txt"), b"data");
    assert_eq!(file("demo-1.0.dist-info/INSTALLER"), b"hoist\n");
    assert_eq!(file("demo-1.0.dist-info/REQUESTED"), b"");
    let record = String::from_utf8(file("demo-1.0.dist-info/RECORD")).unwrap();
    let h = |b: &[u8]| RecordHash::sha256_of(b).to_string();
    let want_record = [
        format!("demo-1.0.dist-info/INSTALLER,{},6", h(b"hoist\n")),
        format!(
            "demo-1.0.dist-info/METADATA,{},24",
            h(b"Name: demo\nVersion: 1.0\n")
        ),
        "demo-1.0.dist-info/RECORD,,".to_owned(),
        format!("demo-1.0.dist-info/REQUESTED,{},0", h(b"")),
        format!(
            "demo-1.0.dist-info/WHEEL,{},{}",
            h(WHEEL_PURE.as_bytes()),
            WHEEL_PURE.len()
        ),
        format!("demo/__init__.py,{},12", h(b"print('hi')\n")),
        format!("demo/run.sh,{},10", h(b"#!/bin/sh\n")),
        format!("demo/sub/data.txt,{},4", h(b"data")),
    ]
    .map(|l| l + "\r\n")
    .concat();
    assert_eq!(record, want_record);

    // The same inputs give the same layer.
    let again = fx.install().unwrap();
    assert_eq!(again.layer.descriptor.digest, out.layer.descriptor.digest);
}

#[test]
fn platlib_root_and_data_folders_go_to_their_scheme_paths() {
    let script = b"#!python -E\nimport sys\nprint(sys.argv)\n";
    let plain_script = b"#!/bin/sh\necho hi\n";
    let files: &[File] = &[
        ("native/__init__.py", b"", 0o644),
        ("native/_ext.so", b"\x7fELF", 0o755),
        ("native-2.0.data/purelib/pure_mod.py", b"x = 1\n", 0o644),
        ("native-2.0.data/platlib/plat_mod.py", b"y = 2\n", 0o644),
        ("native-2.0.data/headers/native.h", b"int f(void);\n", 0o644),
        ("native-2.0.data/data/share/native/doc.txt", b"doc", 0o644),
        ("native-2.0.data/scripts/native-tool", script, 0o644),
        ("native-2.0.data/scripts/plain", plain_script, 0o644),
    ];
    let fx = Fixture::new(&[(
        "native-2.0-cp312-cp312-linux_x86_64.whl",
        wheel_with("native-2.0", WHEEL_PLAT, files),
    )]);
    let out = fx.install().unwrap();
    let tree = read_layer(&fx.store, &out.layer);
    let plat = "usr/local/lib64/python3.12/site-packages";
    let get = |path: &str| -> (u32, Vec<u8>) {
        let (mode, content) = tree.get(path).unwrap_or_else(|| panic!("no {path}"));
        (*mode, content.clone().unwrap())
    };
    assert_eq!(
        get(&format!("{plat}/native/_ext.so")),
        (0o755, b"\x7fELF".to_vec())
    );
    assert_eq!(get(&format!("{SITE}/pure_mod.py")).1, b"x = 1\n");
    assert_eq!(get(&format!("{plat}/plat_mod.py")).1, b"y = 2\n");
    assert_eq!(
        get("usr/local/include/python3.12/native/native.h").1,
        b"int f(void);\n"
    );
    assert_eq!(get("usr/local/share/native/doc.txt").1, b"doc");
    let rewritten = b"#!/usr/local/bin/python3.12\nimport sys\nprint(sys.argv)\n";
    assert_eq!(
        get("usr/local/bin/native-tool"),
        (0o755, rewritten.to_vec())
    );
    assert_eq!(get("usr/local/bin/plain"), (0o755, plain_script.to_vec()));
    assert!(!tree.keys().any(|k| k.contains(".data")));
    assert_eq!((out.files, out.scripts), (12, 2));

    let record = String::from_utf8(get(&format!("{plat}/native-2.0.dist-info/RECORD")).1).unwrap();
    let rows: Vec<&str> = record.lines().collect();
    let h = |b: &[u8]| RecordHash::sha256_of(b).to_string();
    for want in [
        format!(
            "../../../bin/native-tool,{},{}",
            h(rewritten),
            rewritten.len()
        ),
        format!(
            "../../../bin/plain,{},{}",
            h(plain_script),
            plain_script.len()
        ),
        format!(
            "../../../include/python3.12/native/native.h,{},13",
            h(b"int f(void);\n")
        ),
        format!("../../../share/native/doc.txt,{},3", h(b"doc")),
        format!(
            "../../../lib/python3.12/site-packages/pure_mod.py,{},6",
            h(b"x = 1\n")
        ),
        format!("plat_mod.py,{},6", h(b"y = 2\n")),
        format!("native/_ext.so,{},4", h(b"\x7fELF")),
        "native-2.0.dist-info/RECORD,,".to_owned(),
    ] {
        assert!(rows.contains(&want.as_str()), "{want} not in\n{record}");
    }
    assert!(!record.contains(".data/"), "{record}");
}

#[test]
fn entry_points_become_launchers_and_replace_setuptools_wrappers() {
    let entry_points = b"[console_scripts]\ntool = demo.cli:main\n[gui_scripts]\ngtool = demo.gui:app.run [extra]\n";
    let files: &[File] = &[
        ("demo/__init__.py", b"", 0o644),
        ("demo-1.0.dist-info/entry_points.txt", entry_points, 0o644),
        ("demo-1.0.data/scripts/tool", b"#!python\nwrapper\n", 0o755),
        ("demo-1.0.data/scripts/tool-script.py", b"wrapper\n", 0o755),
    ];
    let fx = Fixture::new(&[(
        "demo-1.0-py3-none-any.whl",
        wheel_with("demo-1.0", WHEEL_PURE, files),
    )]);
    let out = fx.install().unwrap();
    let tree = read_layer(&fx.store, &out.layer);
    let bins: Vec<&str> = tree
        .keys()
        .filter(|k| k.starts_with("usr/local/bin/"))
        .map(String::as_str)
        .collect();
    assert_eq!(bins, ["usr/local/bin/gtool", "usr/local/bin/tool"]);
    let (mode, tool) = &tree["usr/local/bin/tool"];
    assert_eq!(*mode, 0o755);
    let tool = String::from_utf8(tool.clone().unwrap()).unwrap();
    assert!(
        tool.starts_with("#!/usr/local/bin/python3.12\n# -*- coding: utf-8 -*-\n"),
        "{tool}"
    );
    assert!(tool.contains("from demo.cli import main\n"), "{tool}");
    let gtool = String::from_utf8(tree["usr/local/bin/gtool"].1.clone().unwrap()).unwrap();
    assert!(gtool.contains("from demo.gui import app\n"), "{gtool}");
    assert!(gtool.contains("sys.exit(app.run())\n"), "{gtool}");
    assert_eq!(out.scripts, 2);

    let record = String::from_utf8(
        tree[&format!("{SITE}/demo-1.0.dist-info/RECORD")]
            .1
            .clone()
            .unwrap(),
    )
    .unwrap();
    let tool_row = format!(
        "../../../bin/tool,{},{}",
        RecordHash::sha256_of(tool.as_bytes()),
        tool.len()
    );
    assert!(record.lines().any(|l| l == tool_row), "{record}");
    assert!(
        !record.contains("scripts/"),
        "wrapper rows stay out:\n{record}"
    );
}

#[test]
fn identical_files_are_shared_and_different_ones_refused() {
    let ns = b"__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n";
    let a: &[File] = &[("ns/__init__.py", ns, 0o644), ("ns/a.py", b"a", 0o644)];
    let b: &[File] = &[("ns/__init__.py", ns, 0o644), ("ns/b.py", b"b", 0o644)];
    let fx = Fixture::new(&[
        (
            "ns.a-1.0-py3-none-any.whl",
            wheel_with("ns.a-1.0", WHEEL_PURE, a),
        ),
        (
            "ns_b-1.0-py3-none-any.whl",
            wheel_with("ns_b-1.0", WHEEL_PURE, b),
        ),
    ]);
    let tree = read_layer(&fx.store, &fx.install().unwrap().layer);
    assert!(tree.contains_key(&format!("{SITE}/ns/__init__.py")));
    assert!(tree.contains_key(&format!("{SITE}/ns/a.py")));
    assert!(tree.contains_key(&format!("{SITE}/ns/b.py")));

    let c: &[File] = &[("ns/a.py", b"other a", 0o644)];
    let fx = Fixture::new(&[
        (
            "ns.a-1.0-py3-none-any.whl",
            wheel_with("ns.a-1.0", WHEEL_PURE, a),
        ),
        (
            "other-2.0-py3-none-any.whl",
            wheel_with("other-2.0", WHEEL_PURE, c),
        ),
    ]);
    fx.refuse(&[
        "/usr/local/lib/python3.12/site-packages/ns/a.py",
        "ns.a-1.0-py3-none-any.whl",
        "other-2.0-py3-none-any.whl",
    ]);

    // A file where another wheel needs a folder.
    let d: &[File] = &[("ns", b"not a folder", 0o644)];
    let fx = Fixture::new(&[
        (
            "ns.a-1.0-py3-none-any.whl",
            wheel_with("ns.a-1.0", WHEEL_PURE, a),
        ),
        ("d-1.0-py3-none-any.whl", wheel_with("d-1.0", WHEEL_PURE, d)),
    ]);
    fx.refuse(&["site-packages/ns`", "d-1.0-py3-none-any.whl", "folder"]);

    // Two launchers of one name from two wheels.
    let ep = |target: &'static str| -> Vec<u8> {
        format!("[console_scripts]\ntool = {target}:main\n").into_bytes()
    };
    let (ep1, ep2) = (ep("one"), ep("two"));
    let w1: &[File] = &[("one-1.0.dist-info/entry_points.txt", &ep1, 0o644)];
    let w2: &[File] = &[("two-1.0.dist-info/entry_points.txt", &ep2, 0o644)];
    let fx = Fixture::new(&[
        (
            "one-1.0-py3-none-any.whl",
            wheel_with("one-1.0", WHEEL_PURE, w1),
        ),
        (
            "two-1.0-py3-none-any.whl",
            wheel_with("two-1.0", WHEEL_PURE, w2),
        ),
    ]);
    fx.refuse(&["/usr/local/bin/tool", "`tool` script of one-1.0", "two-1.0"]);
}

#[test]
fn record_must_match_the_zip() {
    let stem = "demo-1.0";
    let name = "demo-1.0-py3-none-any.whl";
    let body: &[u8] = b"print('hi')\n";
    let good = RecordHash::sha256_of(body);
    let other = RecordHash::sha256_of(b"print('ho')\n");
    let wheel_row = format!(
        "{stem}.dist-info/WHEEL,{},{}\n",
        RecordHash::sha256_of(WHEEL_PURE.as_bytes()),
        WHEEL_PURE.len()
    );
    let files: &[File] = &[("demo/__init__.py", body, 0o644)];
    let other_text = other.to_string();
    let cases: Vec<(String, Vec<&str>)> = vec![
        // A hash that does not match: found while streaming.
        (
            format!("demo/__init__.py,{other},12\n{wheel_row}"),
            vec![name, "demo/__init__.py", &other_text],
        ),
        (
            format!("demo/__init__.py,{good},13\n{wheel_row}"),
            vec![name, "demo/__init__.py", "12 bytes", "13"],
        ),
        (
            wheel_row.clone(),
            vec![name, "demo/__init__.py", "not listed in RECORD"],
        ),
        (
            format!("demo/__init__.py,{good},12\ndemo/gone.py,{good},12\n{wheel_row}"),
            vec![name, "demo/gone.py", "does not hold"],
        ),
        (
            format!("demo/__init__.py,,\n{wheel_row}"),
            vec![name, "demo/__init__.py", "without a hash"],
        ),
        (
            format!("demo/__init__.py,md5=abc,12\n{wheel_row}"),
            vec![name, "RECORD line 1", "md5"],
        ),
    ];
    for (record, want) in cases {
        let fx = Fixture::new(&[(name, wheel_with_record(stem, files, &record))]);
        fx.refuse(&want);
    }
    // A RECORD row without a hash for a file the zip lacks is kept, as pip
    // keeps it; RECORD.jws may be present and unlisted.
    let record = format!("demo/__init__.py,{good},12\ndemo/__pycache__/x.pyc,,\n{wheel_row}");
    let with_sig: &[File] = &[
        ("demo/__init__.py", body, 0o644),
        ("demo-1.0.dist-info/RECORD.jws", b"{}", 0o644),
    ];
    let fx = Fixture::new(&[(name, wheel_with_record(stem, with_sig, &record))]);
    let tree = read_layer(&fx.store, &fx.install().unwrap().layer);
    let record = String::from_utf8(
        tree[&format!("{SITE}/demo-1.0.dist-info/RECORD")]
            .1
            .clone()
            .unwrap(),
    )
    .unwrap();
    assert!(record.contains("demo/__pycache__/x.pyc,,\r\n"), "{record}");
    assert!(
        record.contains("demo-1.0.dist-info/RECORD.jws,,\r\n"),
        "{record}"
    );
}

#[test]
fn hostile_paths_are_refused() {
    let name = "demo-1.0-py3-none-any.whl";
    for (path, want) in [
        ("../evil.py", "`..`"),
        ("demo/../../evil.py", "`..`"),
        ("/etc/evil", "absolute"),
        ("demo\\..\\..\\evil.py", "backslash"),
        ("demo//evil.py", "empty path component"),
        ("demo-1.0.data/nowhere/x", "subfolders"),
        ("demo-1.0.data/x", "subfolders"),
        ("demo-1.0.data/scripts/", ""),
    ] {
        let files: &[File] = &[(path, b"x", 0o644)];
        let fx = Fixture::new(&[(name, wheel_with("demo-1.0", WHEEL_PURE, files))]);
        if path.ends_with('/') {
            // An empty scripts folder installs nothing.
            fx.install().unwrap();
            continue;
        }
        fx.refuse(&[name, path, want]);
    }
}

#[test]
fn layout_of_the_wheel_is_checked() {
    let name = "demo-1.0-py3-none-any.whl";
    // Wheel-Version 2.
    let fx = Fixture::new(&[(
        name,
        wheel_with(
            "demo-1.0",
            "Wheel-Version: 2.0\nRoot-Is-Purelib: true\n",
            &[],
        ),
    )]);
    fx.refuse(&[name, "WHEEL", "Wheel-Version 2.0", "1.x"]);
    // The dist-info of another release.
    let fx = Fixture::new(&[(name, wheel_with("demo-1.1", WHEEL_PURE, &[]))]);
    fx.refuse(&[name, "`demo-1.1.dist-info`", "demo 1.0"]);
    // Two dist-info folders.
    let other: &[File] = &[("other-1.0.dist-info/METADATA", b"", 0o644)];
    let fx = Fixture::new(&[(name, wheel_with("demo-1.0", WHEEL_PURE, other))]);
    fx.refuse(&[name, "`demo-1.0.dist-info`, `other-1.0.dist-info`"]);
    // No WHEEL.
    let record = "demo-1.0.dist-info/RECORD,,\n";
    let bytes = zip_of(&[("demo-1.0.dist-info/RECORD", record.as_bytes(), 0o644)]);
    let fx = Fixture::new(&[(name, bytes)]);
    fx.refuse(&[name, "demo-1.0.dist-info/WHEEL"]);
    // Not a zip at all; a bad file name.
    let fx = Fixture::new(&[(name, b"not a zip".to_vec())]);
    fx.refuse(&[name, "zip"]);
    let fx = Fixture::new(&[("demo.zip", wheel_with("demo-1.0", WHEEL_PURE, &[]))]);
    fx.refuse(&["demo.zip", ".whl"]);
}

/// Finds the central directory header of `name` in a zip; returns its
/// offset.
fn central_header(zip: &[u8], name: &str) -> usize {
    let mut at = 0;
    while let Some(i) = zip[at..].windows(4).position(|w| w == b"PK\x01\x02") {
        let h = at + i;
        let len = u16::from_le_bytes([zip[h + 28], zip[h + 29]]) as usize;
        if &zip[h + 46..h + 46 + len] == name.as_bytes() {
            return h;
        }
        at = h + 4;
    }
    panic!("no central header for {name}");
}

fn set_mode(zip: &mut [u8], name: &str, mode: u32) {
    let h = central_header(zip, name);
    zip[h + 38..h + 42].copy_from_slice(&(mode << 16).to_le_bytes());
}

#[test]
fn modes_keep_only_the_executable_bit() {
    let name = "demo-1.0-py3-none-any.whl";
    let files: &[File] = &[
        ("demo/suid", b"x", 0o755),
        ("demo/sgid", b"x", 0o644),
        ("demo/typeless", b"x", 0o755),
    ];
    let mut bytes = wheel_with("demo-1.0", WHEEL_PURE, files);
    set_mode(&mut bytes, "demo/suid", 0o104755);
    set_mode(&mut bytes, "demo/sgid", 0o102644);
    set_mode(&mut bytes, "demo/typeless", 0o755);
    let fx = Fixture::new(&[(name, bytes)]);
    let tree = read_layer(&fx.store, &fx.install().unwrap().layer);
    let mode = |f: &str| tree[&format!("{SITE}/demo/{f}")].0;
    // pip: executable only for a regular file with an x bit.
    assert_eq!(
        (mode("suid"), mode("sgid"), mode("typeless")),
        (0o755, 0o644, 0o644)
    );

    for (kind, want) in [(0o120777, "symbolic link"), (0o020644, "device")] {
        let mut bytes = wheel_with("demo-1.0", WHEEL_PURE, files);
        set_mode(&mut bytes, "demo/sgid", kind);
        let fx = Fixture::new(&[(name, bytes)]);
        fx.refuse(&[name, "demo/sgid", want]);
    }
}

#[test]
fn duplicate_zip_entries_are_refused() {
    let name = "demo-1.0-py3-none-any.whl";
    let files: &[File] = &[("demo/aa.py", b"a", 0o644), ("demo/bb.py", b"b", 0o644)];
    let bytes = wheel_with("demo-1.0", WHEEL_PURE, files);
    // Rename bb.py to aa.py everywhere (local and central headers).
    let from = b"demo/bb.py";
    let mut patched = bytes.clone();
    let mut i = 0;
    while i + from.len() <= patched.len() {
        if &patched[i..i + from.len()] == from {
            patched[i..i + from.len()].copy_from_slice(b"demo/aa.py");
        }
        i += 1;
    }
    let fx = Fixture::new(&[(name, patched)]);
    fx.refuse(&[name, "demo/aa.py", "more than once"]);
}

#[test]
fn an_entry_that_inflates_past_its_size_is_stopped() {
    let name = "demo-1.0-py3-none-any.whl";
    let big = vec![b'a'; 100_000];
    let first = &big[..10];
    let record = format!(
        "demo/big.txt,{},10\ndemo-1.0.dist-info/WHEEL,{},{}\ndemo-1.0.dist-info/RECORD,,\n",
        RecordHash::sha256_of(first),
        RecordHash::sha256_of(WHEEL_PURE.as_bytes()),
        WHEEL_PURE.len()
    );
    let mut bytes = wheel_with_record("demo-1.0", &[("demo/big.txt", &big, 0o644)], &record);
    // State 10 bytes in the central directory and the local header.
    let h = central_header(&bytes, "demo/big.txt");
    bytes[h + 24..h + 28].copy_from_slice(&10u32.to_le_bytes());
    let local = u32::from_le_bytes(bytes[h + 42..h + 46].try_into().unwrap()) as usize;
    bytes[local + 22..local + 26].copy_from_slice(&10u32.to_le_bytes());
    let fx = Fixture::new(&[(name, bytes)]);
    fx.refuse(&[name, "demo/big.txt", "inflates to more than the 10 bytes"]);
}

#[test]
fn requested_is_an_input() {
    let name = "demo-1.0-py3-none-any.whl";
    let mut fx = Fixture::new(&[(name, wheel_with("demo-1.0", WHEEL_PURE, &[]))]);
    fx.inputs[0].requested = false;
    let tree = read_layer(&fx.store, &fx.install().unwrap().layer);
    assert!(!tree.keys().any(|k| k.ends_with("REQUESTED")));
    assert!(tree.contains_key(&format!("{SITE}/demo-1.0.dist-info/INSTALLER")));
}

#[test]
fn short_or_corrupt_entries_are_refused() {
    let name = "demo-1.0-py3-none-any.whl";
    let body = vec![b'z'; 5000];
    let files: &[File] = &[("demo/data.bin", &body, 0o644)];

    // An entry that states more bytes than it holds.
    let mut short = wheel_with("demo-1.0", WHEEL_PURE, files);
    let h = central_header(&short, "demo/data.bin");
    short[h + 24..h + 28].copy_from_slice(&6000u32.to_le_bytes());
    let local = u32::from_le_bytes(short[h + 42..h + 46].try_into().unwrap()) as usize;
    short[local + 22..local + 26].copy_from_slice(&6000u32.to_le_bytes());
    // RECORD says 5000: the size check catches it before any streaming.
    let fx = Fixture::new(&[(name, short)]);
    fx.refuse(&[name, "demo/data.bin", "5000"]);
    // RECORD states no size: the stream ends early.
    let record = format!(
        "demo/data.bin,{},\ndemo-1.0.dist-info/WHEEL,{},{}\n",
        RecordHash::sha256_of(&body),
        RecordHash::sha256_of(WHEEL_PURE.as_bytes()),
        WHEEL_PURE.len()
    );
    let mut short = wheel_with_record("demo-1.0", files, &record);
    let h = central_header(&short, "demo/data.bin");
    short[h + 24..h + 28].copy_from_slice(&6000u32.to_le_bytes());
    let local = u32::from_le_bytes(short[h + 42..h + 46].try_into().unwrap()) as usize;
    short[local + 22..local + 26].copy_from_slice(&6000u32.to_le_bytes());
    let fx = Fixture::new(&[(name, short)]);
    fx.refuse(&[name, "demo/data.bin", "ends after 5000 of the 6000 bytes"]);

    // Damaged compressed bytes: an error naming the file, whichever check
    // (inflate, CRC, hash) sees it first.
    let mut corrupt = wheel_with("demo-1.0", WHEEL_PURE, files);
    let h = central_header(&corrupt, "demo/data.bin");
    let local = u32::from_le_bytes(corrupt[h + 42..h + 46].try_into().unwrap()) as usize;
    let name_len = u16::from_le_bytes([corrupt[local + 26], corrupt[local + 27]]) as usize;
    let extra_len = u16::from_le_bytes([corrupt[local + 28], corrupt[local + 29]]) as usize;
    let data = local + 30 + name_len + extra_len;
    for b in &mut corrupt[data + 2..data + 12] {
        *b ^= 0x55;
    }
    let fx = Fixture::new(&[(name, corrupt)]);
    fx.refuse(&[name, "demo/data.bin"]);
}

#[test]
fn a_script_is_checked_before_its_shebang_is_rewritten() {
    let name = "demo-1.0-py3-none-any.whl";
    let script: &[u8] = b"#!python\nprint('x')\n";
    let files: &[File] = &[("demo-1.0.data/scripts/tool", script, 0o755)];
    let record = format!(
        "demo-1.0.data/scripts/tool,{},{}\ndemo-1.0.dist-info/WHEEL,{},{}\n",
        RecordHash::sha256_of(b"#!python\nprint('y')\n"),
        script.len(),
        RecordHash::sha256_of(WHEEL_PURE.as_bytes()),
        WHEEL_PURE.len()
    );
    let fx = Fixture::new(&[(name, wheel_with_record("demo-1.0", files, &record))]);
    fx.refuse(&[name, "demo-1.0.data/scripts/tool", "hashes to"]);
}

/// A wheel added in a warm store: the layer is the one an empty store
/// makes, whatever order the wheels come in, and only the new wheel's
/// segment, the skeleton and (here) ns.a's segment get new keys.
#[test]
fn an_added_wheel_gives_the_layer_an_empty_store_gives() {
    let ns = b"__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n";
    let a: &[File] = &[("ns/__init__.py", ns, 0o644), ("ns/a.py", b"a", 0o644)];
    let b: &[File] = &[("ns/__init__.py", ns, 0o644), ("ns/b.py", b"b", 0o644)];
    let c: &[File] = &[("cc/__init__.py", b"c = 1\n", 0o644)];
    let wa = (
        "ns.a-1.0-py3-none-any.whl",
        wheel_with("ns.a-1.0", WHEEL_PURE, a),
    );
    let wb = (
        "ns_b-1.0-py3-none-any.whl",
        wheel_with("ns_b-1.0", WHEEL_PURE, b),
    );
    let wc = (
        "cc-1.0-py3-none-any.whl",
        wheel_with("cc-1.0", WHEEL_PURE, c),
    );
    let mut warm = Fixture::new(&[wa.clone(), wc.clone(), wb.clone()]);
    let all = warm.inputs.clone();
    warm.inputs = vec![all[0].clone(), all[1].clone()];
    warm.install().unwrap();
    let stamp = |fx: &Fixture| -> BTreeMap<String, std::time::SystemTime> {
        fx.store
            .list_keys("deps-segment")
            .unwrap()
            .into_iter()
            .map(|(k, _)| {
                let p = fx.dir.path().join("keys/deps-segment").join(&k);
                (k, std::fs::metadata(p).unwrap().modified().unwrap())
            })
            .collect()
    };
    let before = stamp(&warm);
    assert_eq!(before.len(), 3, "skeleton, ns.a, cc");
    std::thread::sleep(std::time::Duration::from_millis(20));
    warm.inputs = all;
    let inc = warm.install().unwrap().layer;
    let after = stamp(&warm);
    // New: a skeleton and ns_b's segment; ns/__init__.py moved from ns.a's
    // segment to the skeleton (two wheels ship it), so ns.a's changed too.
    assert_eq!(after.len(), 6);
    assert!(before.keys().all(|k| after.contains_key(k)));
    let cold = Fixture::new(&[wb, wa, wc]);
    let from_empty = cold.install().unwrap().layer;
    assert_eq!(inc.descriptor, from_empty.descriptor);
    assert_eq!(inc.diff_id, from_empty.diff_id);
    let tree = read_layer(&cold.store, &from_empty);
    assert!(tree.contains_key(&format!("{SITE}/cc/__init__.py")));
}
