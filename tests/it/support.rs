//! Shared helpers for the integration tests: where the test bases are,
//! running hoist with a private store, and running the real third-party
//! tools (skopeo, umoci, podman, docker) that check hoist's output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The folder of test bases built by `scripts/make-bases`.
pub fn bases() -> PathBuf {
    std::env::var_os("HOIST_BASES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bases"))
}

/// A test base, or a failure saying how to make it.
pub fn base(rel: &str) -> PathBuf {
    let p = bases().join(rel);
    assert!(
        p.exists(),
        "test base {} is missing: run scripts/make-bases (scripts/test does) with HOIST_ALPINE_DIR set",
        p.display()
    );
    p
}

/// The repository's testdata folder.
pub fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

/// Fails, with the install command, when a tool is missing.
pub fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed: run scripts/install-tools (apt-get install {package})"
    );
}

/// Fails unless podman's state is pointed away from the system's.
pub fn require_podman() {
    require("podman", "podman");
    require("runc", "runc");
    assert!(
        std::env::var_os("CONTAINERS_STORAGE_CONF").is_some(),
        "podman is not configured for tests: `. scripts/podman-env` first (scripts/test does)"
    );
}

/// A temporary folder with a private hoist store.
pub struct Env {
    pub tmp: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            tmp: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Runs hoist with this environment's store.
    pub fn hoist(&self, args: &[&str]) -> Run {
        self.hoist_with(args, &[])
    }

    pub fn hoist_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
        cmd.args(args).env("HOIST_CACHE", self.path("cache"));
        cmd.env_remove("SOURCE_DATE_EPOCH");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::of(
            format!("hoist {}", args.join(" ")),
            cmd.output().expect("run hoist"),
        )
    }
}

/// What a command did.
pub struct Run {
    pub what: String,
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn of(what: String, o: Output) -> Run {
        Run {
            what,
            status: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.status, 0,
            "{} failed:\nstdout:\n{}\nstderr:\n{}",
            self.what, self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts a clean failure (exit 1, no panic) whose message has `needle`.
    #[track_caller]
    pub fn fails_with(&self, needle: &str) {
        assert_eq!(
            self.status, 1,
            "{} should fail with exit 1:\nstdout:\n{}\nstderr:\n{}",
            self.what, self.stdout, self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "{} panicked:\n{}",
            self.what,
            self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "{}: expected `{needle}` in the error:\n{}",
            self.what,
            self.stderr
        );
    }
}

/// `len` incompressible-ish bytes (xorshift), the same for the same seed.
pub fn noise(len: usize, seed: u8) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Runs a tool and returns what it did.
pub fn run(program: &str, args: &[&str]) -> Run {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Run::of(format!("{program} {}", args.join(" ")), out)
}

/// Runs a tool with extra environment variables.
pub fn run_env(program: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Run::of(format!("{program} {}", args.join(" ")), out)
}

/// `skopeo copy -q FROM TO`, which must succeed.
pub fn skopeo_copy(from: &str, to: &str) {
    run("skopeo", &["copy", "-q", from, to]).ok();
}

/// An image loaded into podman's store, removed again when dropped (also
/// when the test fails).
pub struct Loaded(String);

impl Loaded {
    pub fn load(archive: &Path, tag: &str) -> Loaded {
        let loaded = podman_store(&["load", "-i", archive.to_str().unwrap()]);
        assert!(loaded.ok().contains(tag), "podman load: {}", loaded.stdout);
        Loaded(tag.to_owned())
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        podman_store(&["rmi", "-f", &self.0]);
    }
}

/// `umoci unpack` of the image tagged `tag` in the OCI layout `layout`
/// into the bundle folder `bundle` (its files under `bundle/rootfs`).
pub fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) {
    require("umoci", "umoci");
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:{tag}", layout.display()),
            &bundle.display().to_string(),
        ],
    )
    .ok();
}

/// `skopeo inspect --raw` (the manifest) of an image, parsed.
pub fn skopeo_raw(image: &str) -> serde_json::Value {
    require("skopeo", "skopeo");
    serde_json::from_str(run("skopeo", &["inspect", "--raw", image]).ok()).expect("manifest JSON")
}

/// `skopeo inspect --config` of an image, parsed.
pub fn skopeo_config(image: &str) -> serde_json::Value {
    require("skopeo", "skopeo");
    serde_json::from_str(run("skopeo", &["inspect", "--config", image]).ok()).expect("config JSON")
}

/// Copies a folder tree (files, folders, links) with `cp -a`.
pub fn copy_tree(from: &Path, to: &Path) {
    run(
        "cp",
        &["-a", &from.display().to_string(), &to.display().to_string()],
    )
    .ok();
}

/// A small app folder: a server file, an executable script, a nested
/// folder, and files that its .dockerignore drops.
pub fn small_app(dir: &Path) {
    let w = |rel: &str, body: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    };
    w("server.js", "console.log('hi')\n");
    w("lib/util.js", "module.exports = 1\n");
    w("bin/run.sh", "#!/bin/sh\necho run\n");
    w("tests/a.test.js", "test\n");
    w("docs/guide.md", "# guide\n");
    w("README.md", "# app\n");
    w(".dockerignore", "tests\ndocs\n*.md\n!README.md\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("bin/run.sh"),
        std::fs::Permissions::from_mode(0o775),
    )
    .unwrap();
}

/// The layers of the image in an OCI layout (its only image, also when
/// that is under an index), with the history entry that made each:
/// (created_by, digest).
pub fn layers_by_history(layout: &Path) -> Vec<(String, String)> {
    let json = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
    };
    let blob = |d: &serde_json::Value| {
        layout
            .join("blobs/sha256")
            .join(d.as_str().unwrap().trim_start_matches("sha256:"))
    };
    let index = json(layout.join("index.json"));
    let mut manifest = json(blob(&index["manifests"][0]["digest"]));
    if let Some(children) = manifest["manifests"].as_array() {
        assert_eq!(children.len(), 1, "one platform built: {manifest}");
        manifest = json(blob(&children[0]["digest"]));
    }
    let config = json(blob(&manifest["config"]["digest"]));
    let history: Vec<String> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| !h["empty_layer"].as_bool().unwrap_or(false))
        .map(|h| h["created_by"].as_str().unwrap_or("").to_owned())
        .collect();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(history.len(), layers.len(), "history and layers line up");
    history
        .into_iter()
        .zip(
            layers
                .iter()
                .map(|l| l["digest"].as_str().unwrap().to_owned()),
        )
        .collect()
}

/// The digest of the layer whose history starts with `what`.
pub fn layer_digest(layout: &Path, what: &str) -> Option<String> {
    layers_by_history(layout)
        .into_iter()
        .find(|(h, _)| h.starts_with(what))
        .map(|(_, d)| d)
}

/// Extracts the deps layer of the image in `layout` into `dest` with GNU
/// tar.
pub fn extract_deps_layer(layout: &Path, dest: &Path) {
    require("tar", "tar");
    let digest = layer_digest(layout, "hoist deps").expect("the image has a deps layer");
    let blob = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    std::fs::create_dir_all(dest).unwrap();
    // umask 022: the folders tar makes for entries whose parents the layer
    // does not list get the modes pip's get.
    run(
        "sh",
        &[
            "-c",
            "umask 022 && exec tar -xzpf \"$0\" -C \"$1\"",
            blob.to_str().unwrap(),
            dest.to_str().unwrap(),
        ],
    )
    .ok();
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Environment in which any request fails: every proxy variable points at
/// a port nothing listens on, and nothing is exempt.
pub const OFFLINE: &[(&str, &str)] = &[
    ("HTTPS_PROXY", "http://127.0.0.1:9"),
    ("https_proxy", "http://127.0.0.1:9"),
    ("HTTP_PROXY", "http://127.0.0.1:9"),
    ("http_proxy", "http://127.0.0.1:9"),
    ("ALL_PROXY", "http://127.0.0.1:9"),
    ("all_proxy", "http://127.0.0.1:9"),
    ("NO_PROXY", ""),
    ("no_proxy", ""),
];

/// Serialises what adds or removes images in podman's store: tests run in
/// parallel, and a `podman rmi` while another test loads an image with a
/// shared base layer can delete that layer mid-load ("layer not known").
static PODMAN_STORE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds the podman store lock, for a hoist run that loads into podman.
pub fn hold_podman_store() -> std::sync::MutexGuard<'static, ()> {
    PODMAN_STORE.lock().unwrap_or_else(|e| e.into_inner())
}

/// `podman ARGS...` (load, pull, rmi) holding the store lock.
pub fn podman_store(args: &[&str]) -> Run {
    let _held = PODMAN_STORE.lock().unwrap_or_else(|e| e.into_inner());
    run("podman", args)
}

/// An ordinary account with a subordinate id range in /etc/subuid and
/// /etc/subgid, as rootless podman users have: `hoist-rootless`, made
/// once per test run (the tests run as root in CI).
pub struct Rootless {
    pub name: &'static str,
    pub uid: u32,
    pub gid: u32,
}

/// The rootless account, created when missing.
pub fn rootless() -> &'static Rootless {
    static USER: std::sync::OnceLock<Rootless> = std::sync::OnceLock::new();
    USER.get_or_init(|| {
        const NAME: &str = "hoist-rootless";
        assert!(
            is_root(),
            "the rootless tests create the account `{NAME}`: run the suite as root (scripts/test in CI does)"
        );
        require("newuidmap", "uidmap");
        require("useradd", "passwd");
        let exists = Command::new("id").arg(NAME).output().unwrap().status.success();
        if !exists {
            let o = Command::new("useradd")
                .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", NAME])
                .output()
                .unwrap();
            assert!(o.status.success(), "useradd {NAME}: {}", String::from_utf8_lossy(&o.stderr));
        }
        for file in ["/etc/subuid", "/etc/subgid"] {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            if !text.lines().any(|l| l.starts_with(&format!("{NAME}:"))) {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(file)
                    .unwrap();
                use std::io::Write;
                writeln!(f, "{NAME}:400000:65536").unwrap();
            }
        }
        let id = |flag: &str| -> u32 {
            let o = Command::new("id").args([flag, NAME]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
        };
        Rootless {
            name: NAME,
            uid: id("-u"),
            gid: id("-g"),
        }
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Who runs hoist in a test that runs both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Root,
    Rootless,
}

impl Env {
    /// An environment whose folder belongs to `who`.
    pub fn for_who(who: Who) -> Env {
        let env = Env::new();
        if who == Who::Rootless {
            let u = rootless();
            std::os::unix::fs::chown(env.tmp.path(), Some(u.uid), Some(u.gid)).unwrap();
        }
        env
    }

    /// Runs hoist as `who` with this environment's store.
    pub fn hoist_by(&self, who: Who, args: &[&str]) -> Run {
        self.hoist_by_with(who, args, &[])
    }

    /// [`Env::hoist_by`] with more environment variables.
    pub fn hoist_by_with(&self, who: Who, args: &[&str], env: &[(&str, &str)]) -> Run {
        if who == Who::Root {
            return self.hoist_with(args, env);
        }
        use std::os::unix::process::CommandExt;
        let u = rootless();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
        cmd.args(args)
            .env("HOIST_CACHE", self.path("cache"))
            .env("HOME", self.tmp.path())
            .env("USER", u.name)
            .env("LOGNAME", u.name)
            .env_remove("SOURCE_DATE_EPOCH")
            .envs(env.iter().copied())
            .uid(u.uid)
            .gid(u.gid);
        Run::of(
            format!("hoist {} (as {})", args.join(" "), u.name),
            cmd.output().expect("run hoist"),
        )
    }
}

/// Starts `image` under podman (host network, `PORT=port`), waits up to
/// 60 s (a dev server compiles on the first request) for `path` to answer
/// and returns the body; the container is removed either way, and its
/// logs are shown when nothing answered.
pub fn podman_serve(image: &str, port: u16, path: &str) -> String {
    require("curl", "curl");
    let id = run(
        "podman",
        &[
            "run",
            "-d",
            "--network",
            "host",
            "-e",
            &format!("PORT={port}"),
            image,
        ],
    )
    .ok()
    .trim()
    .to_owned();
    let url = format!("http://127.0.0.1:{port}{path}");
    let mut answer = None;
    for _ in 0..240 {
        let r = run("curl", &["-sf", "--max-time", "2", &url]);
        if r.status == 0 {
            answer = Some(r.stdout);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let logs = run("podman", &["logs", &id]);
    run("podman", &["rm", "-f", "-t", "0", &id]);
    answer.unwrap_or_else(|| {
        panic!(
            "{url} never answered; container logs:\n{}{}",
            logs.stdout, logs.stderr
        )
    })
}
