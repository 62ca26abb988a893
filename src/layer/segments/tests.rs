use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use super::*;
use crate::layer::compress::decompress;
use crate::layer::reader::{EntryKind as ReadKind, Flow, Item, LayerReadError, LayerReader};

fn p(s: &str) -> ImagePath {
    ImagePath::new(s).unwrap()
}

/// A package: its name and files (path, bytes).
struct Pkg {
    files: Vec<(String, Vec<u8>)>,
}

/// Bytes shaped like code, `len` long, from a seed.
fn text(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(
            format!("def f{}(x):\n    return x * {}\n", x % 977, x % 13).as_bytes(),
        );
    }
    out.truncate(len);
    out
}

fn pkg(name: &str, sizes: &[usize]) -> Pkg {
    Pkg {
        files: sizes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let seed = name.bytes().map(u64::from).sum::<u64>() * 31 + i as u64;
                (format!("lib/{name}/m{i}.py"), text(*n, seed))
            })
            .collect(),
    }
}

/// The segments of a layer of `pkgs`: the folders, then one per package;
/// a symlink in the skeleton.
fn layout(c: Compression, pkgs: &[&Pkg]) -> (Vec<Segment>, Vec<ImagePath>) {
    let mut dirs = BTreeSet::new();
    for pk in pkgs {
        for (f, _) in &pk.files {
            for d in p(f).ancestors() {
                dirs.insert(d);
            }
        }
    }
    let dirs: Vec<ImagePath> = dirs.into_iter().collect();
    let mut skel = SegmentKey::new(c, 7);
    for d in &dirs {
        skel.entry(d, EntryKind::Dir, EntryMeta::root(0o755), 0, "", b"");
    }
    skel.entry(
        &p("lib/zlink"),
        EntryKind::Symlink,
        EntryMeta::root(0o777),
        0,
        "lib",
        b"",
    );
    let mut segs = vec![skel.finish()];
    for pk in pkgs {
        let mut k = SegmentKey::new(c, 7);
        for (f, bytes) in &pk.files {
            let id = Digest::of(bytes);
            let meta = EntryMeta::root(0o644);
            k.entry(
                &p(f),
                EntryKind::File,
                meta,
                bytes.len() as u64,
                "",
                id.as_str().as_bytes(),
            );
        }
        segs.push(k.finish());
    }
    (segs, dirs)
}

/// Writes the layer of `pkgs`; returns it and the segments made.
fn build(store: &Store, c: Compression, pkgs: &[&Pkg]) -> (Layer, Vec<usize>) {
    let (segs, dirs) = layout(c, pkgs);
    let made = Mutex::new(Vec::new());
    let layer = write::<LayerError, _>(store, c, 7, &segs, |i, w| {
        made.lock().unwrap().push(i);
        if i == 0 {
            for d in &dirs {
                w.dir(d, EntryMeta::root(0o755))?;
            }
            return w.symlink(&p("lib/zlink"), "lib", EntryMeta::root(0o777));
        }
        for (f, bytes) in &pkgs[i - 1].files {
            w.file(
                &p(f),
                EntryMeta::root(0o644),
                bytes.len() as u64,
                &mut &bytes[..],
            )?;
        }
        Ok(())
    })
    .unwrap();
    let mut made = made.into_inner().unwrap();
    made.sort();
    (layer, made)
}

fn blob(store: &Store, layer: &Layer) -> Vec<u8> {
    store.read_blob(&layer.descriptor.digest).unwrap()
}

/// Every entry hoist's own reader sees, with each file's bytes.
fn read_back(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let (_, r) = decompress(bytes).unwrap();
    let mut out = Vec::new();
    LayerReader::new(r)
        .for_each(|item, content| {
            if let Item::Entry(e) = item {
                let mut b = Vec::new();
                match e.kind {
                    ReadKind::File { .. } => {
                        content.read_to_end(&mut b)?;
                    }
                    ReadKind::Symlink { target } => b = target.into_bytes(),
                    _ => {}
                }
                out.push((e.path.to_string(), b));
            }
            Ok::<_, LayerReadError>(Flow::Continue)
        })
        .unwrap();
    out
}

fn three() -> Vec<Pkg> {
    vec![
        pkg("alpha", &[100, 20_000]),
        // Larger than BIG: compressed alone, on several chunks.
        pkg("beta", &[3 * CHUNK, 2 * CHUNK + 5]),
        pkg("gamma", &[0, 7]),
    ]
}

#[test]
fn incremental_equals_cold_and_makes_only_what_changed() {
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let all = three();
        let added = pkg("delta", &[40_000]);
        let warm = tempfile::tempdir().unwrap();
        let warm = Store::open(warm.path()).unwrap();
        let (_, made) = build(&warm, c, &[&all[0], &all[1], &all[2]]);
        assert_eq!(made, vec![0, 1, 2, 3], "{c:?}");
        let (inc, made) = build(&warm, c, &[&all[0], &all[1], &added, &all[2]]);
        // The skeleton (new folders) and the added package only.
        assert_eq!(made, vec![0, 3], "{c:?}");
        let cold = tempfile::tempdir().unwrap();
        let cold = Store::open(cold.path()).unwrap();
        let (from_empty, made) = build(&cold, c, &[&all[0], &all[1], &added, &all[2]]);
        assert_eq!(made.len(), 5);
        assert_eq!(inc.descriptor, from_empty.descriptor, "{c:?}");
        assert_eq!(inc.diff_id, from_empty.diff_id, "{c:?}");
        assert!(blob(&warm, &inc) == blob(&cold, &from_empty), "{c:?}");
        // The same again: nothing made.
        let (again, made) = build(&warm, c, &[&all[0], &all[1], &added, &all[2]]);
        assert!(made.is_empty(), "{c:?}: {made:?}");
        assert_eq!(again.descriptor, inc.descriptor);
    }
}

#[test]
fn readers_see_the_whole_stream() {
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let pkgs = three();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (layer, _) = build(&store, c, &[&pkgs[0], &pkgs[1], &pkgs[2]]);
        let bytes = blob(&store, &layer);
        assert_eq!(bytes.len() as u64, layer.descriptor.size);
        let entries = read_back(&bytes);
        // Folders and the symlink first, then each package's files.
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names[..6],
            [
                "/lib",
                "/lib/alpha",
                "/lib/beta",
                "/lib/gamma",
                "/lib/zlink",
                "/lib/alpha/m0.py"
            ],
            "{c:?}"
        );
        let files: Vec<&(String, Vec<u8>)> = pkgs.iter().flat_map(|p| &p.files).collect();
        assert_eq!(entries.len(), 5 + files.len());
        for (got, want) in entries[5..].iter().zip(files) {
            assert!(
                got.0 == format!("/{}", want.0) && got.1 == want.1,
                "{c:?}: {} differs",
                want.0
            );
        }
        // The uncompressed stream hashes to the diff_id and ends the tar.
        let (_, mut r) = decompress(&bytes[..]).unwrap();
        let mut raw = Vec::new();
        r.read_to_end(&mut raw).unwrap();
        assert_eq!(Digest::of(&raw), layer.diff_id, "{c:?}");
        assert_eq!(raw.len() as u64, layer.uncompressed_size);
        assert!(raw[raw.len() - 1024..].iter().all(|b| *b == 0));
        if c == Compression::Gzip {
            // One member: a reader that stops after the first member (and
            // checks the CRC-32 and length) reads it all.
            let mut one = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut one)
                .unwrap();
            assert!(one == raw, "the first gzip member does not hold the stream");
            assert_eq!(bytes[bytes.len() - 10..bytes.len() - 8], FINAL_BLOCK);
        }
        if c != Compression::None {
            assert_eq!(python_digest(c, &bytes), layer.diff_id.hex(), "{c:?}");
        }
    }
}

/// The SHA-256 of what Python's gzip or zstandard module reads from `bytes`.
fn python_digest(c: Compression, bytes: &[u8]) -> String {
    let script = match c {
        Compression::Gzip => {
            "import gzip,hashlib,sys\nprint(hashlib.sha256(gzip.decompress(sys.stdin.buffer.read())).hexdigest())"
        }
        _ => {
            "import zstandard,hashlib,sys,io\nr=zstandard.ZstdDecompressor().stream_reader(io.BytesIO(sys.stdin.buffer.read()),read_across_frames=True)\nprint(hashlib.sha256(r.read()).hexdigest())"
        }
    };
    // Debian's Python, where scripts/install-tools puts python3-zstandard
    // (a python3 earlier on PATH, such as pyenv's, may lack it).
    let python = match std::path::Path::new("/usr/bin/python3").exists() {
        true => "/usr/bin/python3",
        false => "python3",
    };
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed: apt-get install python3 python3-zstandard");
    let mut stdin = child.stdin.take().unwrap();
    let data = bytes.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "python3 could not read the layer ({}); for zstd: apt-get install python3-zstandard",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_missing_or_corrupt_stored_segment_is_made_again() {
    let pkgs = three();
    let refs = [&pkgs[0], &pkgs[1], &pkgs[2]];
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (first, _) = build(&store, Compression::Gzip, &refs);
    let (segs, _) = layout(Compression::Gzip, &refs);
    let stored = |i: usize| lookup(&store, &segs[i].key).unwrap();
    // Corrupt, same length: found by the digest check as it is copied.
    let path = store.blob_path(&stored(1).blob);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    // Gone.
    std::fs::remove_file(store.blob_path(&stored(3).blob)).unwrap();
    let (again, made) = build(&store, Compression::Gzip, &refs);
    assert_eq!(made, vec![1, 3]);
    assert_eq!(again.descriptor, first.descriptor);
    assert_eq!(again.diff_id, first.diff_id);
}

#[test]
fn keys_change_with_what_shapes_the_bytes() {
    let key = |c: Compression, epoch: u64, mode: u32, id: &[u8]| {
        let mut k = SegmentKey::new(c, epoch);
        k.entry(&p("a/b"), EntryKind::File, EntryMeta::root(mode), 3, "", id);
        k.finish().key
    };
    let base = key(Compression::Gzip, 0, 0o644, b"x");
    assert_eq!(base, key(Compression::Gzip, 0, 0o644, b"x"));
    for other in [
        key(Compression::Zstd, 0, 0o644, b"x"),
        key(Compression::Gzip, 1, 0o644, b"x"),
        key(Compression::Gzip, 0, 0o755, b"x"),
        key(Compression::Gzip, 0, 0o644, b"y"),
    ] {
        assert_ne!(base, other);
    }
}

#[test]
fn an_error_while_producing_leaves_no_layer() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut k = SegmentKey::new(Compression::Gzip, 0);
    k.entry(
        &p("f"),
        EntryKind::File,
        EntryMeta::root(0o644),
        10,
        "",
        b"",
    );
    let segs = [k.finish()];
    let err = write::<LayerError, _>(&store, Compression::Gzip, 0, &segs, |_, w| {
        w.file(&p("f"), EntryMeta::root(0o644), 10, &mut &b"abc"[..])
    })
    .unwrap_err();
    assert!(
        matches!(err, LayerError::FileChanged { got: 3, .. }),
        "{err}"
    );
    assert!(lookup(&store, &segs[0].key).is_none());
    let blobs = std::fs::read_dir(dir.path().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0);
}
