//! Layer writer throughput: hoist's tar + gzip + two SHA-256 passes (diff_id
//! and digest) in one stream, beside `tar -c | gzip | sha256sum` on the same
//! generated 200 MB tree, in one run. Run with `cargo bench --bench layer`
//! (or `scripts/bench`); criterion prints MiB/s for both.
//!
//! hoist compresses on every core (see `hoist::layer::parallel`); the
//! "1 thread" rows set `HOIST_COMPRESS_THREADS=1` for comparison. The blob is
//! the same bytes either way, which each run checks.
//!
//! The tree mixes what app and deps layers hold: many small text files
//! (source, compressible), some large random files (images, wasm, already
//! compressed) and some large repetitive ones (bundles, maps). It is made
//! once with a fixed seed under target/bench-tree and reused.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use hoist::exec::steps::app::app_layer;
use hoist::exec::steps::context::Context;
use hoist::layer::{Compression, ImagePath};
use hoist::store::Store;

const TREE_BYTES: u64 = 200 * 1000 * 1000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const WORDS: &[&str] = &[
    "const", "function", "return", "import", "export", "default", "if", "else", "await", "async",
    "=>", "{", "}", "(", ")", ";", "value", "request", "response", "user", "config", "layer",
    "image", "this", "new", "null",
];

fn tree() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-tree");
    let done = root.join(".complete");
    if done.exists() {
        return root;
    }
    let _ = std::fs::remove_dir_all(&root);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut written = 0u64;
    let write = |rel: String, bytes: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::File::create(p).unwrap().write_all(bytes).unwrap();
        bytes.len() as u64
    };
    // 40 MB of small source-like files.
    let mut i = 0;
    while written < 40_000_000 {
        let mut s = String::new();
        while s.len() < 20_000 {
            s.push_str(WORDS[(rng.next() % WORDS.len() as u64) as usize]);
            s.push(if rng.next().is_multiple_of(8) {
                '\n'
            } else {
                ' '
            });
        }
        written += write(format!("src/m{}/f{i}.js", i % 50), s.as_bytes());
        i += 1;
    }
    // 100 MB of incompressible files.
    for j in 0..100 {
        let buf: Vec<u8> = (0..1_000_000 / 8)
            .flat_map(|_| rng.next().to_le_bytes())
            .collect();
        written += write(format!("assets/bin{j}.dat"), &buf);
    }
    // The rest as repetitive large files.
    let mut j = 0;
    while written < TREE_BYTES {
        let line = format!(
            "{{\"id\":{},\"name\":\"item-{}\",\"tags\":[\"a\",\"b\"]}}\n",
            rng.next() % 1000,
            j
        );
        let buf = line.repeat(1_000_000 / line.len());
        written += write(format!("dist/bundle{j}.json"), buf.as_bytes());
        j += 1;
    }
    std::fs::write(&done, b"").unwrap();
    root
}

fn layer_throughput(c: &mut Criterion) {
    let root = tree();
    let ctx = Context::scan(&root, ".dockerignore").expect("scan");
    let bytes: u64 = ctx
        .entries
        .iter()
        .map(|e| match e.kind {
            hoist::exec::steps::context::EntryKind::File { size, .. } => size,
            _ => 0,
        })
        .sum();
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let workdir = ImagePath::new("app").unwrap();

    let mut g = c.benchmark_group("layer-200MB");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(40))
        .throughput(Throughput::Bytes(bytes));
    let threads = hoist::layer::parallel::default_threads().unwrap();
    eprintln!("compression threads: {threads} (HOIST_COMPRESS_THREADS or the cores)");
    let mut digests = std::collections::HashMap::new();
    for (name, compression, one_thread) in [
        ("hoist tar+gzip+sha256", Compression::Gzip, false),
        ("hoist tar+gzip+sha256, 1 thread", Compression::Gzip, true),
        ("hoist tar+zstd+sha256", Compression::Zstd, false),
        ("hoist tar+zstd+sha256, 1 thread", Compression::Zstd, true),
    ] {
        // Edition 2021: set_var is safe; nothing else reads the environment
        // while criterion runs one benchmark at a time.
        if one_thread {
            std::env::set_var(hoist::layer::parallel::THREADS_ENV, "1");
        } else {
            std::env::remove_var(hoist::layer::parallel::THREADS_ENV);
        }
        g.bench_function(name, |b| {
            b.iter(|| {
                let layer = app_layer(&store, &ctx, &workdir, compression, 0).unwrap();
                let seen = digests
                    .entry(format!("{compression:?}"))
                    .or_insert_with(|| layer.descriptor.digest.clone());
                assert_eq!(*seen, layer.descriptor.digest, "{name}: the blob changed");
                // Keep the store from growing: each run writes the same blob.
                let _ = std::fs::remove_file(store.blob_path(&layer.descriptor.digest));
            })
        });
    }
    std::env::remove_var(hoist::layer::parallel::THREADS_ENV);
    g.bench_function("tar -c | gzip | sha256sum", |b| {
        b.iter(|| {
            let st = Command::new("sh")
                .arg("-c")
                .arg("tar -C \"$1\" --sort=name -cf - . | gzip -6 | sha256sum >/dev/null")
                .arg("sh")
                .arg(&root)
                .status()
                .unwrap();
            assert!(st.success());
        })
    });
    g.finish();
}

criterion_group!(benches, layer_throughput);
criterion_main!(benches);
