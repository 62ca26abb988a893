//! Layers larger than one compression chunk (1 MiB): the same bytes on any
//! number of compression threads, and read by every reader users have:
//! Python's gzip, the gzip and zstd tools, skopeo (Go), umoci, podman.

use std::path::Path;

use crate::support::*;

/// `small_app` plus a 5.5 MiB file (text, noise, text): six chunks.
fn big_app(dir: &Path) -> Vec<u8> {
    small_app(dir);
    let text = "const layer = require('layer'); // chunked\n".repeat(70_000);
    let big = [text.as_bytes(), &noise(2_500_000, 9), text.as_bytes()].concat();
    std::fs::write(dir.join("big.bin"), &big).unwrap();
    big
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The app layer (the top one) of the only image in an OCI layout: its
/// blob path and its diff_id.
fn top_layer(layout: &Path) -> (std::path::PathBuf, String) {
    let blob = |d: &serde_json::Value| {
        layout
            .join("blobs/sha256")
            .join(d.as_str().unwrap().trim_start_matches("sha256:"))
    };
    let index = json(&layout.join("index.json"));
    let manifest = json(&blob(&index["manifests"][0]["digest"]));
    let config = json(&blob(&manifest["config"]["digest"]));
    let layers = manifest["layers"].as_array().unwrap();
    let ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    (
        blob(&layers[layers.len() - 1]["digest"]),
        ids[ids.len() - 1].as_str().unwrap().to_owned(),
    )
}

#[test]
fn multi_chunk_layers_are_the_same_on_any_thread_count_and_every_reader_takes_them() {
    require_podman();
    require("umoci", "umoci");
    require("zstd", "zstd");
    let env = Env::new();
    let app = env.path("app");
    let big = big_app(&app);
    let base = format!("oci-archive:{}", base("busybox.oci.tar").display());
    for compression in ["gzip", "zstd"] {
        let tag = format!("hoist-test/chunked-{compression}:1");
        let mut digests = Vec::new();
        for threads in ["1", "2", "8"] {
            let layout = env.path(&format!("{compression}-{threads}"));
            let out = env
                .hoist_with(
                    &[
                        "build",
                        app.to_str().unwrap(),
                        "--base",
                        &base,
                        "--compression",
                        compression,
                        "--tag",
                        &tag,
                        "--output",
                        &format!("oci:{}:dev", layout.display()),
                    ],
                    &[("HOIST_COMPRESS_THREADS", threads)],
                )
                .ok()
                .trim()
                .to_owned();
            digests.push((threads, out));
            // Each build writes its layer afresh: no store shared.
            std::fs::remove_dir_all(env.path("cache")).unwrap();
        }
        assert!(
            digests.iter().all(|(_, d)| *d == digests[0].1),
            "{compression}: the image differs by thread count: {digests:?}"
        );

        let layout = env.path(&format!("{compression}-2"));
        let (blob, diff_id) = top_layer(&layout);
        let blob_s = blob.to_str().unwrap();
        // More than one chunk made it into the blob.
        assert!(std::fs::metadata(&blob).unwrap().len() > 2 << 20);
        let script = match compression {
            // Python's gzip module (zlib), one member.
            "gzip" => "import gzip,hashlib,sys; print('sha256:'+hashlib.sha256(gzip.open(sys.argv[1]).read()).hexdigest())",
            _ => "import hashlib,subprocess,sys; print('sha256:'+hashlib.sha256(subprocess.run(['zstd','-dc',sys.argv[1]],check=True,capture_output=True).stdout).hexdigest())",
        };
        let got = run("python3", &["-c", script, blob_s])
            .ok()
            .trim()
            .to_owned();
        assert_eq!(
            got, diff_id,
            "{compression}: decoded layer is not its diff_id"
        );
        let tool = if compression == "gzip" {
            "gzip"
        } else {
            "zstd"
        };
        run(tool, &["-t", blob_s]).ok();

        // skopeo (Go's decompressors) copies and decompresses it.
        let dir = env.path(&format!("{compression}-dir"));
        run(
            "skopeo",
            &[
                "copy",
                "-q",
                "--dest-decompress",
                &format!("oci:{}:dev", layout.display()),
                &format!("dir:{}", dir.display()),
            ],
        )
        .ok();
        let plain = std::fs::read(dir.join(diff_id.trim_start_matches("sha256:"))).unwrap();
        assert_eq!(format!("sha256:{}", sha256_hex(&plain)), diff_id);

        // umoci unpacks the file byte for byte (umoci 0.4.7, Debian's,
        // refuses the zstd media type whatever the blob holds: gzip only).
        if compression == "gzip" {
            umoci_sees(&layout, &env.path("bundle"), &big);
        }

        // podman loads it and runs from it.
        let archive = env.path(&format!("{compression}.tar"));
        skopeo_copy(
            &format!("oci:{}:dev", layout.display()),
            &format!("oci-archive:{}:localhost/{tag}", archive.display()),
        );
        let _loaded = Loaded::load(&archive, &format!("localhost/{tag}"));
        let sum = run(
            "podman",
            &[
                "run",
                "--rm",
                &format!("localhost/{tag}"),
                "sha256sum",
                "/app/big.bin",
            ],
        );
        assert!(
            sum.ok().starts_with(&sha256_hex(&big)),
            "{compression}: podman sees another big.bin: {}",
            sum.stdout
        );
    }
}

fn umoci_sees(layout: &Path, bundle: &Path, big: &[u8]) {
    umoci_unpack(layout, "dev", bundle);
    let unpacked = std::fs::read(bundle.join("rootfs/app/big.bin")).unwrap();
    assert!(unpacked == big, "umoci's big.bin differs");
}

#[test]
fn a_bad_thread_count_is_refused_by_name() {
    let env = Env::new();
    small_app(&env.path("app"));
    let base = format!("oci-archive:{}", base("busybox.oci.tar").display());
    for bad in ["0", "many", "99"] {
        env.hoist_with(
            &[
                "build",
                env.path("app").to_str().unwrap(),
                "--base",
                &base,
                "--output",
                &format!("oci:{}:dev", env.path("out").display()),
            ],
            &[("HOIST_COMPRESS_THREADS", bad)],
        )
        .fails_with(&format!("HOIST_COMPRESS_THREADS=`{bad}`"));
    }
}
