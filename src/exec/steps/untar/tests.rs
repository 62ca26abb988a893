use std::io::{Read, Write};

use super::*;
use crate::layer::reader::tests::RawTar;

/// Writes `bytes` compressed with `how` into a file under `dir`.
fn archive(dir: &Path, name: &str, how: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    let data = match how {
        "none" => bytes.to_vec(),
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(bytes).unwrap();
            e.finish().unwrap()
        }
        "bzip2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(bytes).unwrap();
            e.finish().unwrap()
        }
        "zstd" => zstd::encode_all(bytes, 1).unwrap(),
        "xz" => {
            // The system's xz makes the archive, as a user's would.
            let mut c = std::process::Command::new("xz")
                .args(["-c", "-z"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("xz (apt-get install xz-utils)");
            c.stdin.take().unwrap().write_all(bytes).unwrap();
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            out.stdout
        }
        other => panic!("{other}"),
    };
    std::fs::write(&p, data).unwrap();
    p
}

fn listing(u: &Untarred) -> Vec<String> {
    u.entries
        .iter()
        .map(|e| {
            let what = match &e.kind {
                Kind::Dir => "dir".to_owned(),
                Kind::File { data } => {
                    let mut s = String::new();
                    u.content(*data).unwrap().read_to_string(&mut s).unwrap();
                    format!("file {s:?}")
                }
                Kind::Symlink(t) => format!("link {t}"),
            };
            format!(
                "{} {:o} {}:{} {what}",
                e.rel, e.meta.mode, e.meta.uid, e.meta.gid
            )
        })
        .collect()
}

#[test]
fn every_compression_is_an_archive() {
    let d = tempfile::tempdir().unwrap();
    let tar = RawTar::new().file("a.txt", b"hello").finish();
    for how in ["none", "gzip", "bzip2", "xz", "zstd"] {
        let p = archive(d.path(), &format!("x.{how}"), how, &tar);
        assert!(is_archive(&p), "{how}");
        let u = extract(&p, d.path(), None).unwrap();
        assert_eq!(listing(&u), ["a.txt 644 0:0 file \"hello\""], "{how}");
    }
    // Not archives, whatever their names: an empty file, text, gzip of
    // text (docker copies these as files).
    std::fs::write(d.path().join("empty.tar.gz"), b"").unwrap();
    std::fs::write(d.path().join("notes.tar"), b"just text\n".repeat(100)).unwrap();
    let gz_text = archive(d.path(), "text.gz", "gzip", b"plain text, no tar");
    for p in [
        d.path().join("empty.tar.gz"),
        d.path().join("notes.tar"),
        gz_text,
    ] {
        assert!(!is_archive(&p), "{}", p.display());
    }
}

#[test]
fn extraction_table() {
    // (what the archive holds, --chown, the entries or the error)
    type Case = (
        fn(&mut RawTar) -> &mut RawTar,
        Option<(u32, u32)>,
        Result<&'static [&'static str], &'static str>,
    );
    let cases: &[Case] = &[
        // Owners and modes from the archive; folders it does not list
        // are left to the runtime (or the stage).
        (
            |t| t.file_meta("bin/tool", b"x", 0o4755, 1000, 50),
            None,
            Ok(&["bin/tool 4755 1000:50 file \"x\""]),
        ),
        // --chown for every entry the archive lists.
        (
            |t| t.dir("etc/").file_meta("etc/conf", b"c", 0o600, 7, 7),
            Some((1001, 1001)),
            Ok(&["etc 755 1001:1001 dir", "etc/conf 600 1001:1001 file \"c\""]),
        ),
        // Absolute names land under the destination; `./` is skipped.
        (
            |t| t.dir("./").file("/abs/f", b"1").file("./rel/../g", b"2"),
            None,
            Ok(&["abs/f 644 0:0 file \"1\"", "g 644 0:0 file \"2\""]),
        ),
        // A later entry replaces an earlier one; a folder replaced by a
        // file takes what was under it along.
        (
            |t| t.file("a", b"old").file("a", b"new").dir("d/").file("d/x", b"x").file("d", b"now a file"),
            None,
            Ok(&["a 644 0:0 file \"new\"", "d 644 0:0 file \"now a file\""]),
        ),
        // Links: symbolic kept as written, hard sharing the content (and
        // the inode: the link's mode, 0777 here, is its target's too, as
        // go-archive's chmod of the link leaves it).
        (
            |t| t.file("f", b"data").symlink("s", "/etc/passwd").hardlink("h", "f"),
            None,
            Ok(&["f 777 0:0 file \"data\"", "h 777 0:0 file \"data\"", "s 777 0:0 link /etc/passwd"]),
        ),
        (
            |t| t.file("../up", b"x"),
            None,
            Err("layer entry `../up` is unsafe: it climbs out of the destination with `..` (docker refuses it too)"),
        ),
        (
            |t| t.file("a/../../up", b"x"),
            None,
            Err("layer entry `a/../../up` is unsafe: it climbs out of the destination with `..` (docker refuses it too)"),
        ),
        (
            |t| t.file("f", b"x").hardlink("h", "../../etc/shadow"),
            None,
            Err("layer entry `h` is a hard link to `../../etc/shadow`, which is unsafe: it points out of the destination (docker refuses it too)"),
        ),
        (
            |t| t.hardlink("h", "nothing"),
            None,
            Err("entry `h`: a hard link to `nothing`, which is not a file the archive wrote before it"),
        ),
        (
            |t| t.fifo("run/fifo"),
            None,
            Err("entry `run/fifo`: a device node or FIFO: hoist writes no special files; leave it out of the archive (rootless BuildKit skips it too)"),
        ),
        (
            |t| t.file("etc/.wh.passwd", b""),
            None,
            Err("layer entry `etc/.wh.passwd` is unsafe: a `.wh.` name is a whiteout in a layer, so hoist cannot write it as a file; rename it in the archive"),
        ),
        (
            |t| t.symlink("lib", "usr/lib").file("lib/x", b"x"),
            None,
            Err("entry `lib/x`: `lib` is a symbolic link in the archive; hoist does not extract through links (docker follows it inside the destination): put the entry under the link's target"),
        ),
    ];
    let d = tempfile::tempdir().unwrap();
    for (i, (build, chown, want)) in cases.iter().enumerate() {
        let mut t = RawTar::new();
        build(&mut t);
        let p = archive(d.path(), &format!("case{i}.tar"), "none", &t.finish());
        let got = extract(&p, d.path(), *chown)
            .map(|u| listing(&u))
            .map_err(|e| e.to_string());
        let want = want
            .map(|w| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .map_err(str::to_owned);
        assert_eq!(got, want, "case {i}");
    }
}
