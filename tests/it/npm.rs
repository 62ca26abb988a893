//! The npm deps layer, against npm itself and against bad input.
//!
//! Golden tests: each lockfile is installed by hoist (into an image) and by
//! `npm ci --ignore-scripts [--omit=dev]` on the host, in temporary copies,
//! for the image's platform (npm's `--cpu` and `--libc` say which). The
//! deps layer is extracted with GNU tar and the two trees are compared:
//! paths, kinds, modes, contents and link targets. npm also writes
//! `node_modules/.package-lock.json`, its "hidden lockfile" (a cache of the
//! tree it installed, for its own later runs); hoist does not, and it is
//! left out of the comparison.
//!
//! Bad input comes from a tiny HTTP server on 127.0.0.1 started by the
//! test, serving crafted tarballs, with the lockfile's `resolved` URLs
//! pointing at it; it also counts requests and can fail on purpose.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use sha2::{Digest as _, Sha256, Sha512};

use crate::support::*;

/// An entry of a folder tree, as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir(u32),
    /// Mode and sha256 of the content.
    File(u32, String),
    Link(String),
}

/// Every entry under `root`, by relative path.
fn tree(root: &Path) -> BTreeMap<String, Node> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
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
                walk(root, &p, out);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.insert(rel, Node::File(mode, hex(&Sha256::digest(&bytes))));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Asserts two trees are equal, listing the first differences.
#[track_caller]
fn assert_same_tree(what: &str, npm: &BTreeMap<String, Node>, ours: &BTreeMap<String, Node>) {
    let keys: std::collections::BTreeSet<&String> = npm.keys().chain(ours.keys()).collect();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|k| npm.get(*k) != ours.get(*k))
        .map(|k| format!("  {k}: npm {:?}, hoist {:?}", npm.get(k), ours.get(k)))
        .collect();
    assert!(
        diffs.is_empty(),
        "{what}: {} of {} entries differ:\n{}",
        diffs.len(),
        npm.len(),
        diffs
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(npm.len() > 10, "{what}: suspiciously small tree");
}

/// An npm cache shared by the golden tests, so npm downloads each tarball
/// once per machine rather than once per test.
fn npm_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("npm-cache")
}

/// Fails unless npm is 10.2 or later, which has `--libc`.
fn require_npm() {
    require("npm", "npm");
    let version = run("npm", &["--version"]).ok().trim().to_owned();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    assert!(
        (major, minor) >= (10, 2),
        "npm {version} is too old for these tests (they need --libc, npm 10.2 or later): run scripts/install-tools"
    );
}

/// Runs npm in `dir` with umask 022 (npm's modes depend on it).
fn npm(dir: &Path, args: &[&str]) {
    require_npm();
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 022 && exec npm \"$@\"")
        .arg("sh")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run npm");
    assert!(
        out.status.success(),
        "npm {} in {} failed:\n{}\n{}",
        args.join(" "),
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One golden comparison.
struct Golden<'a> {
    fixture: &'a str,
    base: &'a str,
    platform: &'a str,
    dev: bool,
    /// Tells npm the image's platform (`--cpu=arm64`, `--libc=musl`).
    npm_platform: &'a [&'a str],
}

fn golden(env: &Env, g: &Golden) {
    let name = format!(
        "{}-{}-{}",
        g.fixture.replace('/', "-"),
        if g.dev { "dev" } else { "prod" },
        g.platform.replace('/', "-")
    );
    let npm_dir = env.path(&format!("{name}-npm"));
    let app_dir = env.path(&format!("{name}-app"));
    copy_tree(&testdata(g.fixture), &npm_dir);
    copy_tree(&testdata(g.fixture), &app_dir);

    let cache = npm_cache();
    let mut args = vec![
        "ci",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--cache",
        cache.to_str().unwrap(),
    ];
    if !g.dev {
        args.push("--omit=dev");
    }
    args.extend(g.npm_platform);
    npm(&npm_dir, &args);

    let layout = env.path(&format!("{name}-oci"));
    let base = format!("oci-archive:{}", base(g.base).display());
    let out = format!("oci:{}:x", layout.display());
    let mut args = vec![
        "build",
        app_dir.to_str().unwrap(),
        "--base",
        &base,
        "--platform",
        g.platform,
        "--output",
        &out,
    ];
    if g.dev {
        args.push("--dev");
    }
    env.hoist(&args).ok();
    let ours = env.path(&format!("{name}-layer"));
    extract_deps_layer(&layout, &ours);

    let mut theirs = tree(&npm_dir.join("node_modules"));
    // npm's hidden lockfile: see the module docs.
    assert!(theirs.remove(".package-lock.json").is_some());
    assert_same_tree(
        &format!("{name}: node_modules"),
        &theirs,
        &tree(&ours.join("app/node_modules")),
    );
    // Workspaces' own node_modules.
    let packages = npm_dir.join("packages");
    if packages.is_dir() {
        for ws in std::fs::read_dir(&packages).unwrap() {
            let ws = ws.unwrap().path();
            let nm = ws.join("node_modules");
            if nm.is_dir() {
                let rel = nm.strip_prefix(&npm_dir).unwrap();
                assert_same_tree(
                    &format!("{name}: {}", rel.display()),
                    &tree(&nm),
                    &tree(&ours.join("app").join(rel)),
                );
            }
        }
    }
}

fn node_prod_and_dev(fixture: &str) {
    let env = Env::new();
    for dev in [false, true] {
        golden(
            &env,
            &Golden {
                fixture,
                base: "node.oci.tar",
                platform: "linux/amd64",
                dev,
                npm_platform: &["--cpu=x64", "--libc=glibc"],
            },
        );
    }
}

#[test]
fn golden_web() {
    node_prod_and_dev("web");
}

#[test]
fn golden_tools_esbuild_babel() {
    node_prod_and_dev("npm/tools");
    // arm64 and musl: esbuild's platform package for Alpine on arm64.
    golden(
        &Env::new(),
        &Golden {
            fixture: "npm/tools",
            base: "alpine.oci.tar",
            platform: "linux/arm64",
            dev: true,
            npm_platform: &["--cpu=arm64", "--libc=musl"],
        },
    );
}

#[test]
fn golden_vite_rollup() {
    node_prod_and_dev("npm/vite");
    // rollup's packages say `libc`: musl on Alpine.
    golden(
        &Env::new(),
        &Golden {
            fixture: "npm/vite",
            base: "alpine.oci.tar",
            platform: "linux/amd64",
            dev: false,
            npm_platform: &["--cpu=x64", "--libc=musl"],
        },
    );
}

#[test]
fn golden_monorepo_workspaces() {
    node_prod_and_dev("npm/monorepo");
}

#[test]
fn web_image_runs_under_podman_and_answers_health() {
    require_podman();
    require("curl", "curl");
    let env = Env::new();
    let out = env.path("web.tar");
    let tag = "localhost/hoist-npm-web:test";
    env.hoist(&[
        "build",
        testdata("web").to_str().unwrap(),
        "--base",
        &format!("oci-archive:{}", base("node.oci.tar").display()),
        "--user",
        "nextjs:1001",
        "--env",
        "NODE_ENV=production",
        "--cmd",
        r#"["node","server.js"]"#,
        "--tag",
        tag,
        "--output",
        &format!("oci-archive:{}", out.display()),
    ])
    .ok();
    podman_store(&["load", "-i", out.to_str().unwrap()]).ok();
    let answer = podman_serve(tag, free_port(), "/health");
    podman_store(&["rmi", "-f", tag]);
    assert_eq!(answer.trim(), r#"{"status":"ok"}"#);
}

// ---------------------------------------------------------------------
// A tiny HTTP server for crafted tarballs.

/// What the server answers on one path.
#[derive(Clone)]
enum Route {
    Body(Vec<u8>),
    /// Answers 503 this many times, then the body.
    FailFirst(u32, Vec<u8>),
    Status(u16),
    /// The body only with `Authorization: <value>`, else 401.
    WithAuth(String, Vec<u8>),
}

/// One request the server saw.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    authorization: Option<String>,
}

struct Server {
    port: u16,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let (r, h) = (routes.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, h) = (r.clone(), h.clone());
                std::thread::spawn(move || serve(stream, &r, &h));
            }
        });
        Server { port, routes, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn route(&self, path: &str, route: Route) {
        self.routes
            .lock()
            .unwrap()
            .insert(format!("/{path}"), route);
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, routes: &Mutex<HashMap<String, Route>>, hits: &Mutex<Vec<Hit>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_owned());
            }
        }
    }
    hits.lock().unwrap().push(Hit {
        path: path.clone(),
        authorization: authorization.clone(),
    });
    let (status, body) = {
        let mut routes = routes.lock().unwrap();
        match routes.get_mut(&path) {
            None => (404, Vec::new()),
            Some(Route::Body(b)) => (200, b.clone()),
            Some(Route::Status(s)) => (*s, Vec::new()),
            Some(Route::FailFirst(n, b)) => {
                if *n > 0 {
                    *n -= 1;
                    (503, Vec::new())
                } else {
                    (200, b.clone())
                }
            }
            Some(Route::WithAuth(want, b)) => {
                if authorization.as_deref() == Some(want.as_str()) {
                    (200, b.clone())
                } else {
                    (401, Vec::new())
                }
            }
        }
    };
    let mut stream = stream;
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// A gzipped tarball of (raw path, content, mode) regular files; paths are
/// written as given, `..` included.
fn tgz(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(content.len() as u64);
        h.set_mode(*mode);
        h.set_mtime(0);
        let slot = &mut h.as_old_mut().name;
        slot[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, *content).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn sri(bytes: &[u8]) -> String {
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes))
    )
}

/// One package of a local project.
struct Pkg {
    name: &'static str,
    tarball: Vec<u8>,
    /// Extra lockfile fields (`bin`, `hasInstallScript`...); `integrity`
    /// and `resolved` here replace the computed ones (null drops them).
    extra: serde_json::Value,
}

impl Pkg {
    fn new(name: &'static str, tarball: Vec<u8>) -> Pkg {
        Pkg {
            name,
            tarball,
            extra: serde_json::json!({}),
        }
    }

    fn with(mut self, extra: serde_json::Value) -> Pkg {
        self.extra = extra;
        self
    }
}

/// A small valid package tarball.
fn good_tarball(name: &str) -> Vec<u8> {
    tgz(&[
        (
            "package/package.json",
            format!(r#"{{"name":"{name}","version":"1.0.0"}}"#).as_bytes(),
            0o644,
        ),
        (
            "package/index.js",
            format!("module.exports = '{name}';\n").as_bytes(),
            0o644,
        ),
        (
            "package/bin/cli.js",
            b"#!/usr/bin/env node\r\nconsole.log(1)\r\n",
            0o644,
        ),
    ])
}

/// Writes an app folder whose lockfile installs `pkgs` from `server`.
fn local_project(dir: &Path, server: &Server, pkgs: &[Pkg]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut deps = serde_json::Map::new();
    let mut packages = serde_json::Map::new();
    for p in pkgs {
        deps.insert(p.name.into(), "1.0.0".into());
        let file = format!("{}-1.0.0.tgz", p.name);
        server.route(&file, Route::Body(p.tarball.clone()));
        let mut entry = serde_json::json!({
            "version": "1.0.0",
            "resolved": server.url(&file),
            "integrity": sri(&p.tarball),
        });
        for (k, v) in p.extra.as_object().unwrap() {
            if v.is_null() {
                entry.as_object_mut().unwrap().remove(k);
            } else {
                entry[k] = v.clone();
            }
        }
        packages.insert(format!("node_modules/{}", p.name), entry);
    }
    let mut all = serde_json::Map::new();
    all.insert(
        String::new(),
        serde_json::json!({"name": "local", "version": "1.0.0", "dependencies": deps}),
    );
    all.extend(packages);
    let lock = serde_json::json!({
        "name": "local", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
        "packages": all,
    });
    let pj = serde_json::json!({"name": "local", "version": "1.0.0", "dependencies": deps});
    std::fs::write(
        dir.join("package-lock.json"),
        serde_json::to_vec_pretty(&lock).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("package.json"),
        serde_json::to_vec_pretty(&pj).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("index.js"), "require('left');\n").unwrap();
}

/// Environment for hoist that reaches 127.0.0.1 directly.
const LOCAL: &[(&str, &str)] = &[("NO_PROXY", "127.0.0.1"), ("no_proxy", "127.0.0.1")];

/// Builds `app` on the small Alpine base into an OCI layout.
fn build_local(env: &Env, app: &Path, layout: &str, extra: &[&str], vars: &[(&str, &str)]) -> Run {
    let base = format!("oci-archive:{}", base("alpine-amd64.oci.tar").display());
    let out = format!("oci:{}:x", env.path(layout).display());
    let mut args = vec![
        "build",
        app.to_str().unwrap(),
        "--base",
        &base,
        "--output",
        &out,
    ];
    args.extend(extra);
    env.hoist_with(&args, vars)
}

/// The cache entries of one kind in `env`'s store.
fn keys(env: &Env, kind: &str) -> Vec<String> {
    match std::fs::read_dir(env.path("cache/keys").join(kind)) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Asserts the store holds no npm cache entry, no leftover temp file,
/// and none of these blobs.
#[track_caller]
fn nothing_cached(env: &Env, blobs: &[&[u8]]) {
    assert_eq!(keys(env, "deps-npm"), Vec::<String>::new());
    assert_eq!(keys(env, "npm-tarball"), Vec::<String>::new());
    let tmp: Vec<_> = std::fs::read_dir(env.path("cache/tmp"))
        .map(|rd| rd.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(tmp.is_empty(), "temp files left: {tmp:?}");
    for b in blobs {
        let path = env.path("cache/blobs/sha256").join(hex(&Sha256::digest(b)));
        assert!(!path.exists(), "{} was stored", path.display());
    }
}

#[test]
fn local_project_layer_bins_and_determinism() {
    let server = Server::start();
    let env = Env::new();
    let app = env.path("app");
    local_project(
        &app,
        &server,
        &[
            Pkg::new("left", good_tarball("left"))
                .with(serde_json::json!({"bin": {"left": "bin/cli.js"}})),
            Pkg::new("right", good_tarball("right")),
        ],
    );
    let first = build_local(&env, &app, "one", &[], LOCAL);
    first.ok();
    assert!(
        first
            .stderr
            .contains("2 packages, 6 files, 1 bin links; built: 2 downloaded"),
        "{}",
        first.stderr
    );
    let layer = env.path("layer");
    extract_deps_layer(&env.path("one"), &layer);
    let t = tree(&layer.join("app/node_modules"));
    assert_eq!(t[".bin/left"], Node::Link("../left/bin/cli.js".into()));
    // The bin target is executable and its CRLF shebang line is LF now.
    let cli = std::fs::read(layer.join("app/node_modules/left/bin/cli.js")).unwrap();
    assert_eq!(cli, b"#!/usr/bin/env node\nconsole.log(1)\r\n");
    assert!(matches!(t["left/bin/cli.js"], Node::File(0o755, _)));
    assert!(matches!(t["right/bin/cli.js"], Node::File(0o644, _)));
    assert_eq!(t["left"], Node::Dir(0o755));

    // Another store, same inputs: the same layer, byte for byte.
    let other = Env::new();
    build_local(&other, &app, "two", &[], LOCAL).ok();
    assert_eq!(
        layer_digest(&env.path("one"), "hoist deps:"),
        layer_digest(&other.path("two"), "hoist deps:")
    );

    // A changed key (another SOURCE_DATE_EPOCH) rebuilds the layer from the
    // stored tarballs: no request.
    let before = server.hits().len();
    let again = build_local(
        &env,
        &app,
        "three",
        &[],
        &[LOCAL, &[("SOURCE_DATE_EPOCH", "1700000000")]].concat(),
    );
    again.ok();
    assert!(
        again
            .stderr
            .contains("built: 0 downloaded (0 B), 2 from the store"),
        "{}",
        again.stderr
    );
    assert_eq!(
        server.hits().len(),
        before,
        "no request for stored tarballs"
    );
    assert_ne!(
        layer_digest(&env.path("three"), "hoist deps:"),
        layer_digest(&env.path("one"), "hoist deps:")
    );

    // A host node_modules in the context would cover the layer's: a warning.
    std::fs::create_dir_all(app.join("node_modules/left")).unwrap();
    std::fs::write(app.join("node_modules/left/index.js"), "stale").unwrap();
    let covered = build_local(&env, &app, "four", &[], LOCAL);
    covered.ok();
    assert!(
        covered.stderr.contains(
            "the build context has node_modules (not ignored): the app layer puts it over the deps layer's; add node_modules to .dockerignore"
        ),
        "{}",
        covered.stderr
    );
}

#[test]
fn rebuild_after_a_code_change_makes_no_request_and_opens_no_tarball() {
    let env = Env::new();
    let app = env.path("web");
    copy_tree(&testdata("web"), &app);
    let base = format!("oci-archive:{}", base("node.oci.tar").display());
    let build = |layout: &str, extra: &[&str], vars: &[(&str, &str)]| {
        let out = format!("oci:{}:x", env.path(layout).display());
        let mut args = vec![
            "build",
            app.to_str().unwrap(),
            "--base",
            &base,
            "--output",
            &out,
        ];
        args.extend(extra);
        env.hoist_with(&args, vars)
    };
    build("first", &[], &[]).ok();

    // A code-only change.
    let server_js = app.join("server.js");
    let mut code = std::fs::read_to_string(&server_js).unwrap();
    code.push_str("// a change\n");
    std::fs::write(&server_js, code).unwrap();
    // No tarball left to open: their blobs and entries are removed, only
    // the cached layer stays. And no request can succeed.
    let tarballs = env.path("cache/keys/npm-tarball");
    let mut removed = 0;
    for e in std::fs::read_dir(&tarballs).unwrap() {
        let entry: serde_json::Value =
            serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
        let digest = entry["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        std::fs::remove_file(env.path("cache/blobs/sha256").join(digest)).unwrap();
        removed += 1;
    }
    std::fs::remove_dir_all(&tarballs).unwrap();
    assert!(removed > 50, "{removed} tarballs");

    let second = build("second", &[], OFFLINE);
    second.ok();
    assert!(
        second.stderr.contains("reused from the cache"),
        "{}",
        second.stderr
    );
    let (one, two) = (env.path("first"), env.path("second"));
    assert_eq!(
        layer_digest(&one, "hoist deps:"),
        layer_digest(&two, "hoist deps:")
    );
    assert_ne!(
        layer_digest(&one, "hoist app:"),
        layer_digest(&two, "hoist app:")
    );
    // The control: without the cached layer the same build must download,
    // and cannot.
    build("third", &["--no-cache"], OFFLINE).fails_with("failed after 5 attempts");
}

#[test]
fn integrity_mismatch_is_an_error_and_nothing_is_cached() {
    let server = Server::start();
    let env = Env::new();
    let app = env.path("app");
    let served = good_tarball("left");
    local_project(
        &app,
        &server,
        &[Pkg::new("left", served.clone())
            .with(serde_json::json!({"integrity": sri(b"other bytes")}))],
    );
    build_local(&env, &app, "out", &[], LOCAL)
        .fails_with("`node_modules/left`: the tarball from http://127.0.0.1");
    build_local(&env, &app, "out", &[], LOCAL).fails_with(
        "does not match the lockfile's integrity: integrity mismatch: expected sha512-",
    );
    nothing_cached(&env, &[&served]);
    assert!(!env.path("out").exists());
}

#[test]
fn missing_integrity_is_an_error_before_any_download() {
    let server = Server::start();
    let env = Env::new();
    let app = env.path("app");
    local_project(
        &app,
        &server,
        &[Pkg::new("left", good_tarball("left")).with(serde_json::json!({"integrity": null}))],
    );
    build_local(&env, &app, "out", &[], LOCAL)
        .fails_with("lockfile entry `node_modules/left` has no `integrity`");
    assert!(server.hits().is_empty());
    nothing_cached(&env, &[]);
}

#[test]
fn lockfile_out_of_step_with_package_json() {
    let server = Server::start();
    let env = Env::new();
    let app = env.path("app");
    local_project(&app, &server, &[Pkg::new("left", good_tarball("left"))]);
    std::fs::write(
        app.join("package.json"),
        r#"{"name": "local", "dependencies": {"left": "^2.0.0"}}"#,
    )
    .unwrap();
    build_local(&env, &app, "out", &[], LOCAL).fails_with(
        "package-lock.json: package.json and the lockfile are out of step: dependency `left` is `^2.0.0` in package.json but `1.0.0` in the lockfile; run `npm install`",
    );
    assert!(server.hits().is_empty());
    nothing_cached(&env, &[]);
}

#[test]
fn tarball_entry_climbing_out_is_an_error() {
    let server = Server::start();
    let env = Env::new();
    let app = env.path("app");
    let evil = tgz(&[
        ("package/package.json", b"{}", 0o644),
        ("package/../../../../etc/evil", b"pwned", 0o755),
    ]);
    local_project(&app, &server, &[Pkg::new("left", evil.clone())]);
    build_local(&env, &app, "out", &[], LOCAL).fails_with(
        "`node_modules/left`: tarball entry `package/../../../../etc/evil` leaves the package (`..`)",
    );
    nothing_cached(&env, &[&evil]);
}

#[test]
fn bin_pointing_outside_its_package_is_an_error() {
    let server = Server::start();
    let env = Env::new();
    let app = env.path("app");
    local_project(
        &app,
        &server,
        &[Pkg::new("left", good_tarball("left"))
            .with(serde_json::json!({"bin": {"sh": "../../../bin/sh"}}))],
    );
    build_local(&env, &app, "out", &[], LOCAL).fails_with(
        "`node_modules/left`: bin `sh` points at `../../../bin/sh`, outside the package",
    );
    assert!(server.hits().is_empty());
    nothing_cached(&env, &[]);
}

#[test]
fn server_errors_are_retried_and_http_errors_named() {
    let server = Server::start();
    let env = Env::new();
    let app = env.path("app");
    let tarball = good_tarball("left");
    local_project(&app, &server, &[Pkg::new("left", tarball.clone())]);
    server.route("left-1.0.0.tgz", Route::FailFirst(2, tarball));
    build_local(&env, &app, "out", &[], LOCAL).ok();
    assert_eq!(server.hits().len(), 3, "two 503s, then the tarball");

    let env = Env::new();
    server.route("left-1.0.0.tgz", Route::Status(404));
    build_local(&env, &app, "out", &[], LOCAL).fails_with(&format!(
        "`node_modules/left`: {} answered HTTP 404: the registry does not have it",
        server.url("left-1.0.0.tgz")
    ));
    nothing_cached(&env, &[]);
}

#[test]
fn npmrc_registry_and_token_go_only_to_their_host() {
    let registry = Server::start();
    let elsewhere = Server::start();
    let env = Env::new();
    let app = env.path("app");
    let left = good_tarball("left");
    let right = good_tarball("right");
    // `left` has no `resolved`: its URL comes from the registry in .npmrc.
    // `right` is resolved on another host, which must not see the token.
    local_project(
        &app,
        &elsewhere,
        &[
            Pkg::new("left", left.clone()).with(serde_json::json!({"resolved": null})),
            Pkg::new("right", right),
        ],
    );
    registry.route(
        "left/-/left-1.0.0.tgz",
        Route::WithAuth("Bearer s3cret".into(), left),
    );
    std::fs::write(
        app.join(".npmrc"),
        format!(
            "registry=http://127.0.0.1:{port}/\n//127.0.0.1:{port}/:_authToken=${{TEST_NPM_TOKEN}}\n",
            port = registry.port
        ),
    )
    .unwrap();
    build_local(
        &env,
        &app,
        "out",
        &[],
        &[LOCAL, &[("TEST_NPM_TOKEN", "s3cret")]].concat(),
    )
    .ok();
    let to_registry = registry.hits();
    assert_eq!(to_registry.len(), 1, "{to_registry:?}");
    assert_eq!(to_registry[0].path, "/left/-/left-1.0.0.tgz");
    assert_eq!(
        to_registry[0].authorization.as_deref(),
        Some("Bearer s3cret")
    );
    let to_elsewhere = elsewhere.hits();
    assert_eq!(to_elsewhere.len(), 1, "{to_elsewhere:?}");
    assert_eq!(to_elsewhere[0].authorization, None);

    // Without the token the registry refuses, and the error says where the
    // token goes.
    let env = Env::new();
    std::fs::write(
        app.join(".npmrc"),
        format!("registry=http://127.0.0.1:{}/\n", registry.port),
    )
    .unwrap();
    build_local(&env, &app, "out", &[], LOCAL).fails_with(&format!(
        "answered HTTP 401: the registry wants credentials; add `//127.0.0.1:{}/:_authToken=${{NPM_TOKEN}}` to the project's .npmrc",
        registry.port
    ));
}

#[test]
fn install_scripts_warn_or_fail_with_strict_scripts() {
    let server = Server::start();
    let env = Env::new();
    let app = env.path("app");
    local_project(
        &app,
        &server,
        &[Pkg::new("left", good_tarball("left"))
            .with(serde_json::json!({"hasInstallScript": true}))],
    );
    let warned = build_local(&env, &app, "out", &[], LOCAL);
    warned.ok();
    assert!(
        warned
            .stderr
            .contains("1 package would run install scripts under npm ci, and hoist runs none"),
        "{}",
        warned.stderr
    );
    assert!(
        warned.stderr.contains("node_modules/left"),
        "{}",
        warned.stderr
    );
    build_local(&env, &app, "strict", &["--strict-scripts"], LOCAL).fails_with(
        "--strict-scripts: 1 package would run install scripts under npm ci, and hoist runs none: node_modules/left",
    );
    assert!(!env.path("strict").exists());
}

#[test]
fn deps_kinds_auto_npm_none_on_a_python_project() {
    let env = Env::new();
    let agent = testdata("agent");
    let python = format!("oci-archive:{}", base("python.oci.tar").display());
    let out = format!("oci:{}:x", env.path("agent").display());
    let args = |extra: &'static str| {
        let mut a = vec![
            "build".to_owned(),
            agent.display().to_string(),
            "--base".into(),
            python.clone(),
            "--output".into(),
            out.clone(),
        ];
        if !extra.is_empty() {
            a.extend(["--deps".to_owned(), extra.to_owned()]);
        }
        a
    };
    let run_with = |extra| {
        let a = args(extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        env.hoist(&a)
    };
    // auto on a Python project: the pip installer makes the deps layer.
    let auto = run_with("");
    auto.ok();
    assert!(
        auto.stderr.contains("deps    pip from requirements.txt"),
        "{}",
        auto.stderr
    );
    assert!(layer_digest(&env.path("agent"), "hoist deps: pip install").is_some());
    run_with("npm").fails_with("has no package.json");
    run_with("none").ok();
    assert!(layer_digest(&env.path("agent"), "hoist deps:").is_none());
    run_with("yarn").fails_with("unknown --deps `yarn`");
    // --deps none on an npm project: no deps layer, no request.
    let web = env.path("web");
    copy_tree(&testdata("web"), &web);
    let node = format!("oci-archive:{}", base("node.oci.tar").display());
    let layout = env.path("web-oci");
    env.hoist_with(
        &[
            "build",
            web.to_str().unwrap(),
            "--base",
            &node,
            "--deps",
            "none",
            "--output",
            &format!("oci:{}:x", layout.display()),
        ],
        OFFLINE,
    )
    .ok();
    assert!(layer_digest(&layout, "hoist deps:").is_none());
}
