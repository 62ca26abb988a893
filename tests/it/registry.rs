//! Registries: pushes to the real distribution registry on loopback in
//! every auth mode (started by `scripts/registry`), checked with skopeo
//! and podman; uploads counted and faults injected by a proxy in between.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::fault_proxy::Proxy;
use crate::support::*;

/// A registry started by `scripts/registry`, by mode.
fn registry(mode: &str) -> String {
    let var = format!("HOIST_REGISTRY_{}", mode.to_uppercase());
    std::env::var(&var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run `eval \"$(scripts/registry start)\"` first (scripts/test does)"
        )
    })
}

/// Copies a test base into a registry with skopeo (every platform when
/// `all`), so a build can use it as a registry base.
fn seed(base_file: &str, dest: &str, all: bool) {
    let src = format!("oci-archive:{}", base(base_file).display());
    let mut args = vec!["copy", "-q", "--dest-tls-verify=false"];
    if all {
        args.push("--all");
    }
    args.extend([src.as_str(), dest]);
    run("skopeo", &args).ok();
}

/// A repository name of this test run's own: the lab registry keeps its
/// data between runs, and a test must start from a repository without blobs.
fn repo(name: &str) -> String {
    use std::sync::OnceLock;
    static RUN: OnceLock<u128> = OnceLock::new();
    let run = RUN.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    });
    format!("it/{name}-{run}")
}

fn creds() -> (String, String) {
    (
        std::env::var("HOIST_REGISTRY_USER").unwrap_or("hoist".into()),
        std::env::var("HOIST_REGISTRY_PASSWORD").unwrap_or("hoist-pass".into()),
    )
}

/// Builds `small_app` on the amd64 Alpine archive and pushes it.
fn build_push(env: &Env, tag: &str, extra: &[&str]) -> Run {
    let app = env.path("app");
    if !app.exists() {
        small_app(&app);
    }
    let base = format!("oci-archive:{}", base("alpine-amd64.oci.tar").display());
    let mut args = vec![
        "build",
        app.to_str().unwrap(),
        "--base",
        &base,
        "--user",
        "nextjs",
        "--tag",
        tag,
        "--push",
    ];
    args.extend(extra);
    env.hoist(&args)
}

/// podman pulls and runs the pushed image.
fn podman_runs(image: &str, pull_args: &[&str]) {
    require_podman();
    let mut args = vec!["pull", "-q"];
    args.extend(pull_args);
    args.push(image);
    podman_store(&args).ok();
    let id = run("podman", &["run", "--rm", image, "id", "-u"]);
    assert_eq!(id.ok().trim(), "1001");
    podman_store(&["rmi", "-f", image]);
}

#[test]
fn push_plain_http() {
    let env = Env::new();
    let r = registry("plain");
    let tag = format!("{r}/{}:1", repo("plain"));
    let digest = build_push(&env, &tag, &[]).ok().trim().to_owned();
    assert_eq!(inspected_digest(&tag), digest);
    podman_runs(&tag, &["--tls-verify=false"]);
}

/// The manifest digest `skopeo inspect` reads for `tag` (plain HTTP).
fn inspected_digest(tag: &str) -> String {
    let m = run(
        "skopeo",
        &["inspect", "--tls-verify=false", &format!("docker://{tag}")],
    )
    .ok()
    .to_owned();
    let m: serde_json::Value = serde_json::from_str(&m).unwrap();
    m["Digest"].as_str().unwrap_or_default().to_owned()
}

/// A plain-HTTP loopback registry needs no CA store, and hoist loads
/// none for it (loading one costs every push tens of milliseconds): with
/// the system's CA store pointed at nothing, a build from a base in that
/// registry and its push still work, and the pushed image is the one
/// hoist names.
#[test]
fn a_plain_loopback_registry_needs_no_ca_store() {
    let env = Env::new();
    let r = registry("plain");
    let base_ref = format!("{r}/{}:base", repo("no-ca-base"));
    seed(
        "alpine-amd64.oci.tar",
        &format!("docker://{base_ref}"),
        false,
    );
    let tag = format!("{r}/{}:1", repo("no-ca"));
    let app = env.path("app");
    small_app(&app);
    let nothing = env.path("no-such-ca");
    let nothing = nothing.to_str().unwrap();
    let no_ca = [("SSL_CERT_FILE", nothing), ("SSL_CERT_DIR", nothing)];
    let args = [
        "build",
        app.to_str().unwrap(),
        "--base",
        &base_ref,
        "--user",
        "nextjs",
        "--tag",
        &tag,
        "--push",
    ];
    let digest = env.hoist_with(&args, &no_ca).ok().trim().to_owned();
    assert_eq!(inspected_digest(&tag), digest);
}

#[test]
fn push_basic_auth_with_login() {
    let env = Env::new();
    let r = registry("basic");
    let (user, pass) = creds();
    let tag = format!("{r}/{}:1", repo("basic"));
    let authfile = env.path("auth.json");
    let auth = authfile.to_str().unwrap();
    // No credentials: a clear error with the way out.
    build_push(&env, &tag, &["--authfile", auth]).fails_with("hoist login");
    // A wrong password: a clear error naming the registry, nothing saved.
    let login = |password: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hoist"))
            .args([
                "login",
                &r,
                "-u",
                &user,
                "--password-stdin",
                "--authfile",
                auth,
            ])
            .env("HOIST_CACHE", env.path("cache"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let bad = login("wrong-password");
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains(&r) && !err.contains("panicked"), "{err}");
    assert!(
        !err.contains("wrong-password"),
        "the password is never printed: {err}"
    );
    assert!(!authfile.exists());
    let good = login(&pass);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let saved = std::fs::read_to_string(&authfile).unwrap();
    assert!(saved.contains(&r));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&authfile).unwrap().permissions().mode() & 0o777,
        0o600
    );
    build_push(&env, &tag, &["--authfile", auth]).ok();
    run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &format!("{user}:{pass}"),
            &format!("docker://{tag}"),
        ],
    )
    .ok();
    podman_runs(
        &tag,
        &["--tls-verify=false", "--creds", &format!("{user}:{pass}")],
    );
    env.hoist(&["logout", &r, "--authfile", auth]).ok();
    assert!(!std::fs::read_to_string(&authfile).unwrap().contains(&r));
}

#[test]
fn push_bearer_token() {
    let env = Env::new();
    let r = registry("token");
    let (user, pass) = creds();
    let tag = format!("{r}/{}:1", repo("token"));
    let authfile = env.path("auth.json");
    // Anonymous: the token server grants pull only, so the push is refused.
    build_push(&env, &tag, &["--authfile", authfile.to_str().unwrap()]).fails_with(&r);
    let auth = base64_auth(&user, &pass);
    std::fs::write(
        &authfile,
        format!(r#"{{"auths":{{"{r}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    build_push(&env, &tag, &["--authfile", authfile.to_str().unwrap()]).ok();
    // Anonymous pulls are allowed.
    run(
        "skopeo",
        &["inspect", "--tls-verify=false", &format!("docker://{tag}")],
    )
    .ok();
    podman_runs(&tag, &["--tls-verify=false"]);
}

fn base64_auth(user: &str, pass: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
}

#[test]
fn push_tls_with_certs_d() {
    let env = Env::new();
    let r = registry("tls");
    let certs_d = std::env::var("HOIST_REGISTRY_CERTS_D")
        .expect("HOIST_REGISTRY_CERTS_D from scripts/registry");
    let tag = format!("{r}/{}:1", repo("tls"));
    // Without the CA the certificate is refused, with a hint.
    build_push(
        &env,
        &tag,
        &["--cert-dir", &env.path("empty").display().to_string()],
    )
    .fails_with("UnknownIssuer");
    build_push(&env, &tag, &["--cert-dir", &certs_d]).ok();
    let host_dir = format!("{certs_d}/{r}");
    run(
        "skopeo",
        &[
            "inspect",
            "--cert-dir",
            &host_dir,
            &format!("docker://{tag}"),
        ],
    )
    .ok();
    podman_runs(&tag, &["--cert-dir", &host_dir]);
}

fn layers_of(tag: &str) -> Vec<String> {
    let m: serde_json::Value = serde_json::from_str(
        run(
            "skopeo",
            &[
                "inspect",
                "--tls-verify=false",
                "--raw",
                &format!("docker://{tag}"),
            ],
        )
        .ok(),
    )
    .unwrap();
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn unchanged_push_uploads_nothing_and_a_code_change_only_the_app_layer() {
    let env = Env::new();
    let proxy = Proxy::start(&env, "");
    let tag = format!("{}/{}:1", proxy.addr, repo("counted"));
    build_push(&env, &tag, &[]).ok();
    let first = proxy.uploaded();
    assert_eq!(
        first.len(),
        4,
        "base, user, app layers and config: {first:?}"
    );
    let before = proxy.requests().len();
    build_push(&env, &tag, &[]).ok();
    assert_eq!(proxy.uploaded().len(), 4, "the second push uploads no blob");
    // hoist remembers what it pushed there: no blob is asked about.
    let second = proxy.requests()[before..].to_vec();
    assert!(
        !second
            .iter()
            .any(|r| r["kind"] == "blob" || r["kind"] == "upload"),
        "the unchanged push asked about blobs: {second:?}"
    );
    eprintln!("round trips: unchanged push {}", round_trips(&second));
    let before = proxy.requests().len();
    std::fs::write(env.path("app/server.js"), "console.log('v2')\n").unwrap();
    build_push(&env, &tag, &[]).ok();
    let edit = proxy.requests()[before..].to_vec();
    eprintln!("round trips: code edit push {}", round_trips(&edit));
    let after = proxy.uploaded();
    let new: Vec<_> = after[first.len()..].to_vec();
    let layers = layers_of(&tag);
    assert_eq!(new.len(), 2, "only the app layer and the config: {new:?}");
    assert!(
        new.contains(layers.last().unwrap()),
        "the app layer was uploaded"
    );
    assert!(
        !new.contains(&layers[0]) && !new.contains(&layers[1]),
        "base and user layers were not"
    );
    assert_eq!(proxy.manifest_puts(), 3);
    // No blob was asked about (the two new ones are small and hoist knows
    // the repository: they are sent straight away); each went up in two
    // requests, POST ?digest= and a PUT, as distribution ignores the
    // single POST's body.
    assert!(
        !edit.iter().any(|r| r["kind"] == "blob"),
        "no blob was checked: {edit:?}"
    );
    assert_eq!(
        edit.iter().filter(|r| r["kind"] == "upload").count(),
        4,
        "{edit:?}"
    );
    assert!(
        !edit.iter().any(|r| r["method"] == "PATCH"),
        "small blobs need no PATCH: {edit:?}"
    );
}

/// `METHOD kind` of each request, counted: what a push cost.
fn round_trips(reqs: &[serde_json::Value]) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for r in reqs {
        *counts
            .entry(format!(
                "{} {}",
                r["method"].as_str().unwrap_or("?"),
                r["kind"].as_str().unwrap_or("?")
            ))
            .or_default() += 1;
    }
    format!("{} requests: {counts:?}", reqs.len())
}

/// The test the issue asks for: hoist remembers that the registry holds a
/// blob, the blob is deleted from the registry behind its back, and the
/// next push of the same image must upload it again (the registry refuses
/// the manifest, hoist forgets what it remembered, checks every blob, and
/// puts the manifest again), not skip it; the image then pulls and runs.
#[test]
fn a_blob_deleted_behind_hoists_back_is_uploaded_again() {
    require("curl", "curl");
    let env = Env::new();
    let proxy = Proxy::start(&env, "");
    let plain = registry("plain");
    let name = repo("forgotten");
    let tag = format!("{}/{name}:1", proxy.addr);
    build_push(&env, &tag, &[]).ok();
    let first = proxy.uploaded().len();
    let layers = layers_of(&tag);
    let (base_layer, app_layer) = (layers[0].clone(), layers.last().unwrap().clone());
    for d in [&base_layer, &app_layer] {
        let code = run(
            "curl",
            &[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "DELETE",
                &format!("http://{plain}/v2/{name}/blobs/{d}"),
            ],
        );
        assert_eq!(code.ok().trim(), "202", "the registry deleted blob {d}");
    }
    let again = build_push(&env, &tag, &[]);
    again.ok();
    let uploaded = proxy.uploaded()[first..].to_vec();
    for d in [&base_layer, &app_layer] {
        assert!(
            uploaded.contains(d),
            "deleted blob {d} was uploaded again: {uploaded:?}"
        );
    }
    assert!(
        again.stderr.contains("checking every blob again"),
        "the retry says why: {}",
        again.stderr
    );
    // The memory was rebuilt: the next push asks about no blob again.
    let before = proxy.requests().len();
    build_push(&env, &tag, &[]).ok();
    let third = proxy.requests()[before..].to_vec();
    assert!(
        !third
            .iter()
            .any(|r| r["kind"] == "blob" || r["kind"] == "upload"),
        "{third:?}"
    );
    podman_runs(&format!("{plain}/{name}:1"), &["--tls-verify=false"]);
}

/// `--pull`: by default a base tag the store has seen costs one manifest
/// HEAD and no GET; `missing` asks nothing; `never` fails, naming the
/// image, when the store has never seen it; `always` reads the manifest;
/// and when the tag moves, the default reads the new manifest.
#[test]
fn pull_policy_asks_the_registry_only_as_told() {
    let env = Env::new();
    let proxy = Proxy::start(&env, "");
    let plain = registry("plain");
    let name = repo("pull-policy");
    seed(
        "alpine-amd64.oci.tar",
        &format!("docker://{plain}/{name}:3.20"),
        false,
    );
    small_app(&env.path("app"));
    let base = format!("{}/{name}:3.20", proxy.addr);
    let build = |pull: &str| {
        let out = env.path("out.tar");
        let before = proxy.requests().len();
        let r = env.hoist(&[
            "build",
            env.path("app").to_str().unwrap(),
            "--base",
            &base,
            "--output",
            &format!("oci-archive:{}", out.display()),
            &format!("--pull={pull}"),
        ]);
        let reqs: Vec<serde_json::Value> = proxy.requests()[before..]
            .iter()
            .filter(|q| q["kind"] == "manifest")
            .cloned()
            .collect();
        let count = |m: &str| reqs.iter().filter(|q| q["method"] == m).count();
        (r, count("HEAD"), count("GET"))
    };
    let (r, _, _) = build("never");
    r.fails_with("--pull=never");
    assert!(r.stderr.contains(&name), "names the image: {}", r.stderr);
    let (r, _, gets) = build("newer");
    r.ok();
    assert!(gets >= 1, "the first build reads the manifest");
    let (r, heads, gets) = build("newer");
    r.ok();
    assert_eq!((heads, gets), (1, 0), "newer: one HEAD, no GET");
    let (r, heads, gets) = build("missing");
    r.ok();
    assert_eq!((heads, gets), (0, 0), "missing: nothing asked");
    let (r, heads, gets) = build("never");
    r.ok();
    assert_eq!((heads, gets), (0, 0), "never: nothing asked");
    let (r, heads, gets) = build("always");
    r.ok();
    assert_eq!((heads, gets), (0, 1), "always: the manifest read again");
    // The tag moves: the default sees it and reads the new manifest.
    seed(
        "busybox.oci.tar",
        &format!("docker://{plain}/{name}:3.20"),
        false,
    );
    let (r, heads, gets) = build("newer");
    r.ok();
    assert_eq!((heads, gets), (1, 1), "newer after the tag moved");
    let first_layer = |image: String| {
        let v: serde_json::Value =
            serde_json::from_str(run("skopeo", &["inspect", &image]).ok()).unwrap();
        v["Layers"][0].as_str().unwrap().to_owned()
    };
    assert_eq!(
        first_layer(format!("oci-archive:{}", env.path("out.tar").display())),
        first_layer(format!(
            "oci-archive:{}",
            crate::support::base("busybox.oci.tar").display()
        )),
        "the build used the moved tag's image"
    );
}

#[test]
fn a_base_on_the_target_registry_is_mounted_not_uploaded() {
    let env = Env::new();
    let proxy = Proxy::start(&env, "");
    let plain = registry("plain");
    seed(
        "alpine-amd64.oci.tar",
        &format!("docker://{plain}/{}:3.20", repo("base-alpine")),
        false,
    );
    small_app(&env.path("app"));
    let tag = format!("{}/{}:1", proxy.addr, repo("mounted"));
    env.hoist(&[
        "build",
        env.path("app").to_str().unwrap(),
        "--base",
        &format!("{}/{}:3.20", proxy.addr, repo("base-alpine")),
        "--tag",
        &tag,
        "--push",
    ])
    .ok();
    let layers = layers_of(&tag);
    let reqs = proxy.requests();
    let base_layer = &layers[0];
    assert!(
        !proxy.uploaded().contains(base_layer),
        "no base bytes uploaded"
    );
    assert!(
        reqs.iter()
            .any(|r| r["mount_from"] == repo("base-alpine").as_str() && r["status"] == 201),
        "the base layer was mounted: {reqs:?}"
    );
    assert!(
        !reqs.iter().any(|r| r["kind"] == "blob"
            && r["method"] == "GET"
            && r["digest"] == base_layer.as_str()),
        "the base layer was never downloaded (no --user, no archive output)"
    );
}

#[test]
fn pushes_and_pulls_survive_injected_faults() {
    let env = Env::new();
    let faults = "429@blob-get:1,503@manifest-get:1,reset@blob-get:1+1,truncate@blob-get:1+2,503@blob-put:1,503@manifest-put:1";
    let proxy = Proxy::start(&env, faults);
    let plain = registry("plain");
    seed(
        "debian.oci.tar",
        &format!("docker://{plain}/{}:1", repo("faulty-base")),
        false,
    );
    small_app(&env.path("app"));
    let tag = format!("{}/{}:1", proxy.addr, repo("faulty"));
    let out = env.path("out.tar");
    let built = env.hoist(&[
        "build",
        env.path("app").to_str().unwrap(),
        "--base",
        &format!("{}/{}:1", proxy.addr, repo("faulty-base")),
        "--user",
        "agent",
        "--tag",
        &tag,
        "--push",
        "--output",
        &format!("oci-archive:{}", out.display()),
    ]);
    built.ok();
    assert!(
        built.stderr.contains("retry"),
        "retries were reported:\n{}",
        built.stderr
    );
    let faulted: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| !r["fault"].is_null())
        .collect();
    assert!(faulted.len() >= 5, "faults were injected: {faulted:?}");
    run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{plain}/{}:1", repo("faulty")),
        ],
    )
    .ok();
    // Every stored blob matches its name.
    env.hoist(&["inspect", &format!("oci-archive:{}", out.display())])
        .ok();
    for entry in std::fs::read_dir(env.path("cache/blobs/sha256")).unwrap() {
        let p = entry.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        let hex = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        assert_eq!(p.file_name().unwrap().to_str().unwrap(), hex);
    }
}

#[test]
fn a_registry_that_keeps_failing_gives_a_clear_error() {
    let env = Env::new();
    let proxy = Proxy::start(&env, "503@manifest-get:*");
    let plain = registry("plain");
    seed(
        "busybox.oci.tar",
        &format!("docker://{plain}/{}:1", repo("down")),
        false,
    );
    small_app(&env.path("app"));
    let out = env.path("out.tar");
    let r = env.hoist(&[
        "build",
        env.path("app").to_str().unwrap(),
        "--base",
        &format!("{}/{}:1", proxy.addr, repo("down")),
        "--output",
        &format!("oci-archive:{}", out.display()),
    ]);
    r.fails_with("503");
    assert!(!out.exists());
}

#[test]
fn pull_then_build_offline_without_a_network() {
    require("unshare", "util-linux");
    let env = Env::new();
    let plain = registry("plain");
    seed(
        "alpine.oci.tar",
        &format!("docker://{plain}/{}:3.20", repo("offline-alpine")),
        true,
    );
    let archive = env.path("alpine.tar");
    env.hoist(&[
        "pull",
        &format!("{plain}/{}:3.20", repo("offline-alpine")),
        "--platform",
        "linux/amd64",
        "--output",
        &format!("oci-archive:{}", archive.display()),
    ])
    .ok();
    skopeo_raw(&format!("oci-archive:{}", archive.display()));
    small_app(&env.path("app"));
    let out = env.path("web.tar");
    let hoist = env!("CARGO_BIN_EXE_hoist");
    let r = run_env(
        "unshare",
        &[
            "-n",
            hoist,
            "build",
            env.path("app").to_str().unwrap(),
            "--base",
            &format!("oci-archive:{}", archive.display()),
            "--user",
            "nextjs",
            "--offline",
            "--output",
            &format!("oci-archive:{}", out.display()),
        ],
        &[("HOIST_CACHE", env.path("offline-cache").to_str().unwrap())],
    );
    r.ok();
    assert!(out.exists());
    // A registry base offline, with nothing stored, names what is missing.
    let r = run_env(
        "unshare",
        &[
            "-n",
            hoist,
            "build",
            env.path("app").to_str().unwrap(),
            "--base",
            &format!("{plain}/{}:3.20", repo("offline-alpine")),
            "--offline",
        ],
        &[("HOIST_CACHE", env.path("empty-cache").to_str().unwrap())],
    );
    assert_eq!(r.status, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("offline") && r.stderr.contains("it/offline-alpine"),
        "{}",
        r.stderr
    );
}

#[test]
fn multi_platform_build_pushes_an_index() {
    require_podman();
    let env = Env::new();
    let plain = registry("plain");
    seed(
        "alpine.oci.tar",
        &format!("docker://{plain}/{}:3.20", repo("multi-alpine")),
        true,
    );
    small_app(&env.path("app"));
    let tag = format!("{plain}/{}:1", repo("multi"));
    let out = env.path("multi.tar");
    let digest = env
        .hoist(&[
            "build",
            env.path("app").to_str().unwrap(),
            "--base",
            &format!("{plain}/{}:3.20", repo("multi-alpine")),
            "--platform",
            "linux/amd64,linux/arm64",
            "--user",
            "nextjs",
            "--tag",
            &tag,
            "--push",
            "--output",
            &format!("oci-archive:{}", out.display()),
        ])
        .ok()
        .trim()
        .to_owned();
    let index: serde_json::Value = serde_json::from_str(
        run(
            "skopeo",
            &[
                "inspect",
                "--tls-verify=false",
                "--raw",
                &format!("docker://{tag}"),
            ],
        )
        .ok(),
    )
    .unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap(),
                m["platform"]["variant"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64/", "linux/arm64/v8"]);
    let archive = skopeo_raw(&format!("oci-archive:{}", out.display()));
    assert_eq!(
        archive["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let pushed_digest = run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            &format!("docker://{tag}"),
        ],
    )
    .ok()
    .trim()
    .to_owned();
    assert!(!pushed_digest.is_empty());
    assert!(digest.starts_with("sha256:"));
    let shown = env
        .hoist(&[
            "inspect",
            &format!("docker://{tag}"),
            "--platform",
            "linux/arm64/v8",
        ])
        .ok()
        .to_owned();
    for needle in [
        "linux/arm64",
        "linux/amd64, linux/arm64/v8",
        "hoist app",
        "1001:1001",
        &digest,
    ] {
        assert!(shown.contains(needle), "`{needle}` missing from:\n{shown}");
    }
    podman_store(&[
        "pull",
        "-q",
        "--tls-verify=false",
        "--platform",
        "linux/arm64",
        &tag,
    ])
    .ok();
    let arch = run(
        "podman",
        &["image", "inspect", "--format", "{{.Architecture}}", &tag],
    )
    .ok()
    .trim()
    .to_owned();
    assert_eq!(arch, "arm64");
    podman_store(&["rmi", "-f", &tag]);
}

/// `hoist pull --output docker://` copies one platform to another
/// registry under the same digest: blobs mounted within a registry, and
/// uploaded to another one (here: basic auth, after `hoist login`).
#[test]
fn pull_copies_one_platform_to_a_registry() {
    let env = Env::new();
    let plain = registry("plain");
    let src = format!("{plain}/{}:3.20", repo("copy-src"));
    seed("alpine.oci.tar", &format!("docker://{src}"), true);
    let same = format!("{plain}/{}:copied", repo("copy-dst"));
    let digest = env
        .hoist(&[
            "pull",
            &src,
            "--platform",
            "linux/arm64",
            "--output",
            &format!("docker://{same}"),
        ])
        .ok()
        .trim()
        .to_owned();
    assert!(digest.starts_with("sha256:"), "{digest}");
    let raw = run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{same}"),
        ],
    );
    assert!(raw.ok().contains("\"layers\""), "one platform's manifest");
    let inspect = run(
        "skopeo",
        &["inspect", "--tls-verify=false", &format!("docker://{same}")],
    );
    let inspect: serde_json::Value = serde_json::from_str(inspect.ok()).unwrap();
    assert_eq!(inspect["Digest"], digest.as_str());
    assert_eq!(inspect["Architecture"], "arm64");

    let basic = registry("basic");
    let (user, pass) = creds();
    let auth = env.path("auth.json");
    std::fs::write(
        &auth,
        format!(
            r#"{{"auths":{{"{basic}":{{"auth":"{}"}}}}}}"#,
            base64_auth(&user, &pass)
        ),
    )
    .unwrap();
    let auth = auth.to_str().unwrap();
    let other = format!("{basic}/{}:copied", repo("copy-other"));
    let again = env.hoist(&[
        "pull",
        &src,
        "--platform",
        "linux/arm64",
        "--authfile",
        auth,
        "--output",
        &format!("docker://{other}"),
    ]);
    assert_eq!(again.ok().trim(), digest);
    let creds = format!("--creds={user}:{pass}");
    let inspect = run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &creds,
            &format!("docker://{other}"),
        ],
    );
    let inspect: serde_json::Value = serde_json::from_str(inspect.ok()).unwrap();
    assert_eq!(inspect["Digest"], digest.as_str());
}

/// A registries.conf mirror: the origin (nothing listens there) is only
/// reached through its mirror, the lab's plain registry.
#[test]
fn pull_through_a_registries_conf_mirror() {
    let env = Env::new();
    let plain = registry("plain");
    let name = repo("mirrored");
    seed(
        "alpine.oci.tar",
        &format!("docker://{plain}/{name}:3.20"),
        true,
    );
    let origin = format!("127.0.0.1:{}", free_port());
    let conf = env.path("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nlocation = \"{origin}\"\ninsecure = true\n[[registry.mirror]]\nlocation = \"{plain}\"\ninsecure = true\n"
        ),
    )
    .unwrap();
    let out = env.path("alpine.tar");
    let conf = conf.to_str().unwrap();
    let pulled = env.hoist_with(
        &[
            "pull",
            &format!("{origin}/{name}:3.20"),
            "--platform",
            "linux/arm64",
            "--output",
            &format!("oci-archive:{}", out.display()),
        ],
        &[("CONTAINERS_REGISTRIES_CONF", conf)],
    );
    let digest = pulled.ok().trim().to_owned();
    // The digest of the index's arm64 entry, as the registry serves it.
    let index = run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{plain}/{name}:3.20"),
        ],
    );
    let index: serde_json::Value = serde_json::from_str(index.ok()).unwrap();
    let arm64 = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == "arm64")
        .unwrap();
    assert_eq!(arm64["digest"], digest.as_str());
    skopeo_raw(&format!("oci-archive:{}", out.display()));
    // Without the mirror the origin is unreachable, and the error says so.
    let empty = env.path("empty.conf");
    std::fs::write(&empty, "").unwrap();
    env.hoist_with(
        &[
            "pull",
            &format!("{origin}/{name}:3.20"),
            "--platform",
            "linux/arm64",
            "--output",
            &format!("oci-archive:{}", env.path("no.tar").display()),
        ],
        &[
            ("CONTAINERS_REGISTRIES_CONF", empty.to_str().unwrap()),
            ("HOIST_CACHE", env.path("cache2").to_str().unwrap()),
        ],
    )
    .fails_with(&origin);
}

/// Credentials from a `docker-credential-*` helper named in the auth
/// file's credHelpers, for a registry (the lab's Basic one, behind a
/// proxy) whose blob downloads redirect to another host: the credentials
/// go to the registry, never to the host the blobs come from.
#[test]
fn pull_with_a_credential_helper_and_blobs_redirected_elsewhere() {
    let env = Env::new();
    let (plain, basic) = (registry("plain"), registry("basic"));
    let (user, pass) = creds();
    let name = repo("redirected");
    seed(
        "alpine.oci.tar",
        &format!("docker://{plain}/{name}:3.20"),
        true,
    );
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            "--all",
            "--dest-tls-verify=false",
            &format!("--dest-creds={user}:{pass}"),
            &format!("oci-archive:{}", base("alpine.oci.tar").display()),
            &format!("docker://{basic}/{name}:3.20"),
        ],
    )
    .ok();
    // Blobs come from `localhost` (another host name than the registry's
    // 127.0.0.1), through a counting proxy in front of the plain registry.
    let blobs = Proxy::start_with(&env, &format!("http://{plain}"), &[]);
    let blobs_port = blobs.addr.rsplit(':').next().unwrap().to_owned();
    let redirect_to = format!("http://localhost:{blobs_port}");
    let front = Proxy::start_with(
        &env,
        &format!("http://{basic}"),
        &[
            "--faults",
            "redirect@blob-get:*",
            "--redirect-to",
            &redirect_to,
        ],
    );
    // The helper answers for the registry and notes each call.
    let bin = env.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = env.path("helper-calls");
    let helper = bin.join("docker-credential-hoist-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread -r server\necho \"$1 $server\" >> '{}'\n[ \"$1\" = get ] || exit 1\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{pass}\"}}' \"$server\"\n",
            calls.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let auth = env.path("auth.json");
    std::fs::write(
        &auth,
        format!(
            r#"{{"auths":{{}},"credHelpers":{{"{}":"hoist-test"}}}}"#,
            front.addr
        ),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = env.path("alpine.tar");
    env.hoist_with(
        &[
            "pull",
            &format!("{}/{name}:3.20", front.addr),
            "--platform",
            "linux/amd64",
            "--authfile",
            auth.to_str().unwrap(),
            "--output",
            &format!("oci-archive:{}", out.display()),
        ],
        &[("PATH", &path)],
    )
    .ok();
    skopeo_raw(&format!("oci-archive:{}", out.display()));
    let calls = std::fs::read_to_string(&calls).unwrap_or_default();
    assert!(
        calls.contains(&format!("get {}", front.addr)),
        "helper calls: {calls}"
    );
    let asked = front.requests();
    let redirected: Vec<_> = asked
        .iter()
        .filter(|r| r["kind"] == "blob" && r["method"] == "GET")
        .collect();
    assert!(!redirected.is_empty(), "{asked:?}");
    for r in &redirected {
        assert_eq!(r["status"], 307, "{r}");
        assert_eq!(
            r["authorization"], "Basic",
            "the registry gets the credentials: {r}"
        );
    }
    let served = blobs.requests();
    let got: Vec<_> = served
        .iter()
        .filter(|r| r["kind"] == "blob" && r["method"] == "GET")
        .collect();
    assert_eq!(got.len(), redirected.len(), "{served:?}");
    for r in got {
        assert_eq!(r["status"], 200, "{r}");
        assert!(
            r["authorization"].is_null(),
            "credentials leaked to the blob host: {r}"
        );
    }
}

/// A token server may answer any `expires_in`: the largest u64 (which
/// overflowed the token cache's clock arithmetic, a panic) is kept for
/// at most a day, and the pull works. The lab's token registry is reached
/// through a proxy that points its challenge at a second proxy, in front
/// of the real token server, which rewrites `expires_in`.
#[test]
fn a_token_with_a_huge_lifetime_is_capped() {
    let env = Env::new();
    let token = registry("token");
    let (user, pass) = creds();
    let name = repo("huge-ttl");
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &format!("--dest-creds={user}:{pass}"),
            &format!("oci-archive:{}", base("busybox.oci.tar").display()),
            &format!("docker://{token}/{name}:1"),
        ],
    )
    .ok();
    let realm = std::env::var("HOIST_REGISTRY_TOKEN_REALM").unwrap_or_else(|_| {
        panic!("HOIST_REGISTRY_TOKEN_REALM is not set: run `eval \"$(scripts/registry start)\"` first (scripts/test does)")
    });
    let (realm_origin, realm_path) = realm
        .strip_prefix("http://")
        .and_then(|r| r.split_once('/'))
        .expect("an http:// realm");
    let tokens = Proxy::start_with(
        &env,
        &format!("http://{realm_origin}"),
        &["--json-set", "expires_in=18446744073709551615"],
    );
    let front = Proxy::start_with(
        &env,
        &format!("http://{token}"),
        &["--realm", &format!("http://{}/{realm_path}", tokens.addr)],
    );
    let out = env.path("busybox.tar");
    env.hoist(&[
        "pull",
        &format!("{}/{name}:1", front.addr),
        "--output",
        &format!("oci-archive:{}", out.display()),
    ])
    .ok();
    skopeo_raw(&format!("oci-archive:{}", out.display()));
    let answered: Vec<_> = tokens
        .requests()
        .into_iter()
        .filter(|r| r["status"] == 200)
        .collect();
    assert!(
        !answered.is_empty(),
        "the token came through the rewriting proxy"
    );
}
