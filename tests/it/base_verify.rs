//! Base layers are verified once as they come in: a layer whose gzip CRC
//! is wrong, one that uncompresses to something other than its diff_id,
//! one cut short, and one of a media type hoist does not know are each
//! refused (exit 1, the message naming the layer, nothing at the output),
//! through every local source transport. The bad bases are made from a
//! real busybox base with python's gzip, hashlib and json, not with hoist.
//! A verified layer is remembered in the store and not read again. A layer
//! in `zstd:chunked`'s shape (several zstd frames made by the zstd tool,
//! then the table of contents in skippable frames) builds, through a
//! layout and through the test registry, and the image runs under podman;
//! so does a base podman itself pushed with `--compression-format
//! zstd:chunked`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::support::*;

/// Damages layer 0 of the OCI layout at argv[1] as argv[2] says, fixing
/// every descriptor so that only the damage itself is wrong; prints the
/// new layer digest.
const DAMAGE: &str = r#"
import sys, json, gzip, hashlib, os
d, how = sys.argv[1], sys.argv[2]
B = os.path.join(d, 'blobs', 'sha256')
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(os.path.join(B, h), 'wb').write(b)
    return 'sha256:' + h
idx = json.load(open(os.path.join(d, 'index.json')))
m = json.load(open(os.path.join(B, idx['manifests'][0]['digest'][7:])))
L = m['layers'][0]
blob = open(os.path.join(B, L['digest'][7:]), 'rb').read()
if how == 'crc':
    b = bytearray(blob); b[-8] ^= 1; blob = bytes(b)
elif how == 'diffid':
    blob = gzip.compress(gzip.decompress(blob) + b'\0' * 1024, mtime=0)
elif how == 'truncated':
    blob = blob[:len(blob) // 2]
elif how == 'mediatype':
    L['mediaType'] = 'application/vnd.oci.image.layer.v1.tar+bzip2'
elif how == 'count':
    cfg = json.load(open(os.path.join(B, m['config']['digest'][7:])))
    cfg['rootfs']['diff_ids'].append(cfg['rootfs']['diff_ids'][0])
    cb = json.dumps(cfg).encode()
    m['config']['digest'] = put(cb); m['config']['size'] = len(cb)
L['digest'] = put(blob); L['size'] = len(blob)
mb = json.dumps(m).encode()
idx['manifests'][0]['digest'] = put(mb); idx['manifests'][0]['size'] = len(mb)
json.dump(idx, open(os.path.join(d, 'index.json'), 'w'))
print(L['digest'])
"#;

/// Runs a build that must fail with every needle, and checks that nothing
/// is left at the output paths.
fn refused(env: &Env, base: &str, needles: &[&str]) {
    let app = env.path("app");
    if !app.exists() {
        small_app(&app);
    }
    let out = env.path("out.tar");
    let layout = env.path("out-layout");
    let run = env.hoist(&[
        "build",
        &app.display().to_string(),
        "--base",
        base,
        "--output",
        &format!("oci-archive:{}", out.display()),
        "--output",
        &format!("oci:{}:x", layout.display()),
    ]);
    for n in needles {
        run.fails_with(n);
    }
    assert!(!out.exists(), "nothing may be left at {}", out.display());
    assert!(
        !layout.exists(),
        "nothing may be left at {}",
        layout.display()
    );
}

fn tar_dir(dir: &Path, file: &Path) {
    run(
        "tar",
        &[
            "-C",
            &dir.display().to_string(),
            "-cf",
            &file.display().to_string(),
            ".",
        ],
    )
    .ok();
}

#[test]
fn damaged_layers_are_refused_through_oci_and_oci_archive() {
    require("python3", "python3");
    let cases: [(&str, &[&str]); 5] = [
        (
            "crc",
            &[
                "layer 0 (application/vnd.oci.image.layer.v1.tar+gzip",
                "is damaged",
                "diff_id",
            ],
        ),
        (
            "diffid",
            &[
                "layer 0 (application/vnd.oci.image.layer.v1.tar+gzip",
                "uncompresses to",
                "diff_id is sha256:",
            ],
        ),
        (
            "truncated",
            &[
                "layer 0 (application/vnd.oci.image.layer.v1.tar+gzip",
                "is damaged",
            ],
        ),
        (
            "mediatype",
            &[
                "layer 0",
                "unknown layer media type `application/vnd.oci.image.layer.v1.tar+bzip2`",
            ],
        ),
        ("count", &["diff_ids"]),
    ];
    for (how, needles) in cases {
        let env = Env::new();
        let dir = env.path("base");
        copy_tree(&base("oci/busybox"), &dir);
        let digest = run("python3", &["-c", DAMAGE, &dir.display().to_string(), how])
            .ok()
            .trim()
            .to_owned();
        let mut all = needles.to_vec();
        if how != "count" {
            all.push(&digest);
        }
        let oci = format!("oci:{}", dir.display());
        refused(&env, &oci, &all);
        all.push("oci:");
        let file = env.path("base.tar");
        tar_dir(&dir, &file);
        let archive = format!("oci-archive:{}", file.display());
        refused(&env, &archive, &[&[archive.as_str()][..], needles].concat());
    }
}

#[test]
fn damaged_layer_is_refused_through_docker_archive() {
    require("python3", "python3");
    let env = Env::new();
    let dir = env.path("base");
    std::fs::create_dir_all(&dir).unwrap();
    run(
        "tar",
        &[
            "-C",
            &dir.display().to_string(),
            "-xf",
            &base("busybox.docker.tar").display().to_string(),
        ],
    )
    .ok();
    // docker save's layer is an uncompressed tar; make it a gzip stream
    // with a wrong CRC (docker-archive names layers by file, not digest).
    let flip = r#"
import sys, gzip, glob, os
for p in glob.glob(os.path.join(sys.argv[1], '*.tar')):
    os.chmod(p, 0o644)
    b = bytearray(gzip.compress(open(p, 'rb').read(), mtime=0)); b[-8] ^= 1
    open(p, 'wb').write(bytes(b))
"#;
    run("python3", &["-c", flip, &dir.display().to_string()]).ok();
    let file = env.path("base.tar");
    tar_dir(&dir, &file);
    let source = format!("docker-archive:{}", file.display());
    refused(&env, &source, &[&source, "layer 0", "+gzip", "is damaged"]);
}

#[test]
fn a_verified_layer_is_not_read_again() {
    let env = Env::new();
    let app = env.path("app");
    small_app(&app);
    let src = format!("oci:{}", base("oci/busybox").display());
    let build = |n: &str| {
        env.hoist(&[
            "build",
            &app.display().to_string(),
            "--base",
            &src,
            "--output",
            &format!("oci-archive:{}", env.path(n).display()),
        ])
        .ok();
    };
    build("one.tar");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(base("oci/busybox").join("index.json")).unwrap())
            .unwrap();
    let mdigest = index["manifests"][0]["digest"].as_str().unwrap();
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(base("oci/busybox").join("blobs/sha256").join(&mdigest[7..])).unwrap(),
    )
    .unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    let record = env.path("cache/keys/layer-verified").join(&layer[7..]);
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            base("oci/busybox")
                .join("blobs/sha256")
                .join(&m["config"]["digest"].as_str().unwrap()[7..]),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(value["diff_id"], config["rootfs"]["diff_ids"][0]);
    // A layer read again is recorded again (a new file renamed in place);
    // a remembered one only has its record consulted.
    let before = std::fs::metadata(&record).unwrap().ino();
    build("two.tar");
    assert_eq!(
        std::fs::metadata(&record).unwrap().ino(),
        before,
        "the layer was verified again"
    );
    assert_eq!(
        std::fs::read(env.path("one.tar")).unwrap(),
        std::fs::read(env.path("two.tar")).unwrap()
    );
}

/// Rewrites layer 0 of the OCI layout at argv[1] as `zstd:chunked` lays a
/// layer out: the tar cut in three, each part its own zstd frame (by the
/// zstd tool), then a table of contents and a footer in skippable frames;
/// with argv[2] `lead`, a skippable frame first too, which a reader that
/// sniffs for the zstd frame magic takes for an uncompressed tar.
const CHUNK: &str = r#"
import sys, json, gzip, hashlib, os, struct, subprocess
d = sys.argv[1]
B = os.path.join(d, 'blobs', 'sha256')
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(os.path.join(B, h), 'wb').write(b)
    return 'sha256:' + h
def frame(b):
    return subprocess.run(['zstd', '-q', '-c', '--check'], input=b, capture_output=True, check=True).stdout
def skippable(b):
    return struct.pack('<II', 0x184D2A50, len(b)) + b
idx = json.load(open(os.path.join(d, 'index.json')))
m = json.load(open(os.path.join(B, idx['manifests'][0]['digest'][7:])))
L = m['layers'][0]
tar = gzip.decompress(open(os.path.join(B, L['digest'][7:]), 'rb').read())
a, b = len(tar) // 3, 2 * len(tar) // 3
toc = frame(json.dumps({'version': 1, 'entries': []}).encode())
lead = skippable(b'hoist') if sys.argv[2] == 'lead' else b''
blob = lead + frame(tar[:a]) + frame(tar[a:b]) + frame(tar[b:]) + skippable(toc) + skippable(b'\0' * 64)
L['mediaType'] = 'application/vnd.oci.image.layer.v1.tar+zstd'
L['digest'] = put(blob); L['size'] = len(blob)
mb = json.dumps(m).encode()
idx['manifests'][0]['digest'] = put(mb); idx['manifests'][0]['size'] = len(mb)
json.dump(idx, open(os.path.join(d, 'index.json'), 'w'))
print(L['digest'])
"#;

#[test]
fn a_zstd_chunked_shaped_base_builds_and_runs() {
    require("python3", "python3");
    require("zstd", "zstd");
    let env = Env::new();
    let dir = env.path("base");
    copy_tree(&base("oci/busybox"), &dir);
    run(
        "python3",
        &["-c", CHUNK, &dir.display().to_string(), "lead"],
    )
    .ok();
    let chunked = env.path("chunked");
    copy_tree(&base("oci/busybox"), &chunked);
    run(
        "python3",
        &["-c", CHUNK, &chunked.display().to_string(), "-"],
    )
    .ok();
    let build = app_builder(&env);
    build(&format!("oci:{}", dir.display()), "local.tar");
    // zstd:chunked's own shape through a registry pull too (skopeo 1.9
    // takes a leading skippable frame for an uncompressed tar and gzips
    // the zstd bytes, a base hoist rightly refuses).
    let (registry, nanos) = (plain_registry(), nanos());
    let remote = format!("{registry}/it/zstd-chunked-{nanos}:1");
    push_layout(&chunked, &remote);
    build(&remote, "pulled.tar");
    require_podman();
    // podman 4.3 itself cannot read a layer that opens with a skippable
    // frame, so only zstd:chunked's own shape is run.
    build(&format!("oci:{}", chunked.display()), "chunked.tar");
    for out in ["chunked.tar", "pulled.tar"] {
        let archive = format!("oci-archive:{}", env.path(out).display());
        let ls = podman_store(&["run", "--rm", &archive, "ls", "/bin/busybox"]);
        assert_eq!(ls.ok().trim(), "/bin/busybox");
    }
}

/// Builds the small app on a base into an archive under `env`:
/// `build(base, "out.tar")`.
fn app_builder(env: &Env) -> impl Fn(&str, &str) + '_ {
    let app = env.path("app");
    small_app(&app);
    move |base: &str, out: &str| {
        env.hoist(&[
            "build",
            &app.display().to_string(),
            "--base",
            base,
            "--output",
            &format!("oci-archive:{}", env.path(out).display()),
        ])
        .ok();
    }
}

fn plain_registry() -> String {
    std::env::var("HOIST_REGISTRY_PLAIN").unwrap_or_else(|_| {
        panic!("HOIST_REGISTRY_PLAIN is not set: run `eval \"$(scripts/registry start)\"` first (scripts/test does)")
    })
}

/// A repository suffix of this run's own (the lab registry keeps its data).
fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Copies an OCI layout to the registry with skopeo, blobs as they are.
fn push_layout(dir: &Path, remote: &str) {
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &format!("oci:{}", dir.display()),
            &format!("docker://{remote}"),
        ],
    )
    .ok();
}

#[test]
fn damaged_layers_are_refused_through_a_registry_pull() {
    require("python3", "python3");
    for (how, needle) in [("crc", "is damaged"), ("diffid", "uncompresses to")] {
        let env = Env::new();
        let dir = env.path("base");
        copy_tree(&base("oci/busybox"), &dir);
        let digest = run("python3", &["-c", DAMAGE, &dir.display().to_string(), how])
            .ok()
            .trim()
            .to_owned();
        let remote = format!("{}/it/damaged-{how}-{}:1", plain_registry(), nanos());
        push_layout(&dir, &remote);
        refused(&env, &remote, &["layer 0", needle, &digest]);
        // Nothing is remembered as verified.
        assert!(!env
            .path("cache/keys/layer-verified")
            .join(&digest[7..])
            .exists());
    }
}

/// Checks an OCI archive the way containerd does: every layer, decoded
/// by the zstd or gzip tool, must hash to its config's diff_id. Prints
/// each layer's media type and whether it still carries `zstd:chunked`
/// annotations.
const DIFF_IDS: &str = r#"
import sys, json, hashlib, os, subprocess, tarfile, tempfile
d = tempfile.mkdtemp()
tarfile.open(sys.argv[1]).extractall(d)
B = os.path.join(d, 'blobs', 'sha256')
blob = lambda dg: os.path.join(B, dg.split(':')[1])
idx = json.load(open(os.path.join(d, 'index.json')))
m = json.load(open(blob(idx['manifests'][0]['digest'])))
c = json.load(open(blob(m['config']['digest'])))
assert len(m['layers']) == len(c['rootfs']['diff_ids'])
for l, want in zip(m['layers'], c['rootfs']['diff_ids']):
    tool = 'zstd' if 'zstd' in l['mediaType'] else 'gzip'
    raw = subprocess.run([tool, '-dc', blob(l['digest'])], check=True, capture_output=True).stdout
    got = 'sha256:' + hashlib.sha256(raw).hexdigest()
    assert got == want, (l['digest'], got, want)
    chunked = any('zstd-chunked' in k for k in (l.get('annotations') or {}))
    print(l['mediaType'], 'chunked' if chunked else 'plain')
"#;

/// A base pushed by podman itself with `--compression-format
/// zstd:chunked`. Its first layer is a rootfs tar made by GNU tar (padded
/// to a 10 KiB record, as GNU tar, bsdtar and Python write them) and
/// imported with `podman import`; podman's zstd:chunked writer drops
/// that padding but keeps the padded tar's diff_id in the config
/// (containers/storage#1771), which containerd and newer podman refuse.
/// The layer is unique to the run, so podman compresses it afresh every
/// time. hoist builds on it from the registry and from an oci-archive
/// skopeo copied, both give the same image, the image runs, and its
/// config names what each layer really uncompresses to.
#[test]
fn a_base_podman_pushed_as_zstd_chunked_builds_and_runs() {
    require_podman();
    require("zstd", "zstd");
    require("python3", "python3");
    let env = Env::new();
    let (registry, nanos) = (plain_registry(), nanos());
    let rootfs = env.path("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let busybox = base("oci/busybox");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(busybox.join("index.json")).unwrap()).unwrap();
    let blob = |d: &serde_json::Value| busybox.join("blobs/sha256").join(&d.as_str().unwrap()[7..]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(&index["manifests"][0]["digest"])).unwrap())
            .unwrap();
    let layer = blob(&manifest["layers"][0]["digest"]);
    run(
        "tar",
        &[
            "-xzf",
            &layer.display().to_string(),
            "-C",
            &rootfs.display().to_string(),
        ],
    )
    .ok();
    std::fs::write(rootfs.join("etc/run-id"), format!("run {nanos}\n")).unwrap();
    let padded = env.path("rootfs.tar");
    tar_dir(&rootfs, &padded);
    assert_eq!(std::fs::metadata(&padded).unwrap().len() % 10240, 0);
    let imported = format!("localhost/hoist-it-zchk-base-{nanos}:1");
    podman_store(&["import", "-q", &padded.display().to_string(), &imported]).ok();
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("marker"), format!("chunked {nanos}\n")).unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        format!("FROM {imported}\nCOPY marker /etc/marker\n"),
    )
    .unwrap();
    let local = format!("localhost/hoist-it-zchk-{nanos}:1");
    podman_store(&["build", "-q", "-t", &local, &ctx.display().to_string()]).ok();
    let remote = format!("{registry}/it/podman-zstd-chunked-{nanos}:1");
    podman_store(&[
        "push",
        "-q",
        "--tls-verify=false",
        "--compression-format",
        "zstd:chunked",
        &local,
        &format!("docker://{remote}"),
    ])
    .ok();
    podman_store(&["rmi", "-f", &local, &imported]).ok();
    let raw: serde_json::Value = serde_json::from_str(
        run(
            "skopeo",
            &[
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{remote}"),
            ],
        )
        .ok(),
    )
    .unwrap();
    let layers = raw["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "{raw}");
    for l in layers {
        assert!(
            l["mediaType"].as_str().unwrap().ends_with("tar+zstd")
                && l["annotations"]
                    .as_object()
                    .is_some_and(|a| a.keys().any(|k| k.contains("zstd-chunked"))),
            "podman pushed zstd:chunked layers:\n{raw}"
        );
    }
    let build = app_builder(&env);
    build(&remote, "out.tar");
    // The same base as an archive skopeo wrote, in a store of its own.
    let copied = env.path("copied.tar");
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            "--src-tls-verify=false",
            &format!("docker://{remote}"),
            &format!("oci-archive:{}", copied.display()),
        ],
    )
    .ok();
    std::fs::remove_dir_all(env.path("cache")).unwrap();
    build(
        &format!("oci-archive:{}", copied.display()),
        "from-archive.tar",
    );
    assert_eq!(
        std::fs::read(env.path("out.tar")).unwrap(),
        std::fs::read(env.path("from-archive.tar")).unwrap(),
        "the same base through a registry and an archive makes the same image"
    );
    let out = env.path("out.tar");
    let checked = run("python3", &["-c", DIFF_IDS, &out.display().to_string()]);
    assert_eq!(
        checked.ok().lines().collect::<Vec<_>>(),
        [
            // The base layer's annotations describe the padded tar: dropped.
            "application/vnd.oci.image.layer.v1.tar+zstd plain",
            "application/vnd.oci.image.layer.v1.tar+zstd chunked",
            "application/vnd.oci.image.layer.v1.tar+gzip plain",
        ]
    );
    let archive = format!("oci-archive:{}", out.display());
    let cat = podman_store(&["run", "--rm", &archive, "cat", "/etc/marker", "/etc/run-id"]);
    assert_eq!(cat.ok(), format!("chunked {nanos}\nrun {nanos}\n"));
}
