//! The registry cache: two CI jobs with separate empty stores share one
//! registry; the second gets the deps layer from the cache without
//! downloading a package.
//!
//! Job 2 runs with every proxy variable pointing at a port nothing listens
//! on (only the loopback registry is exempt), so any request to npm's
//! registry fails the build; and the registry's access log shows which
//! requests the cache lookups made.

use std::path::PathBuf;

use crate::support::*;

/// A registry started by `scripts/registry`, by mode.
pub fn registry(mode: &str) -> String {
    let var = format!("HOIST_REGISTRY_{}", mode.to_uppercase());
    std::env::var(&var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run `eval \"$(scripts/registry start)\"` first (scripts/test does)"
        )
    })
}

/// The access log of a registry `scripts/registry` started.
fn registry_log(mode: &str) -> PathBuf {
    let lab = std::env::var_os("HOIST_LAB_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/lab"));
    let log = lab.join("registry").join(mode).join("registry.log");
    assert!(
        log.is_file(),
        "{} is missing: is the {mode} registry started by scripts/registry (with this HOIST_LAB_TMP)?",
        log.display()
    );
    log
}

/// The requests (`METHOD PATH STATUS`) the access log gained after
/// `from` bytes, for paths under `/v2/REPO/`.
fn requests_since(log: &PathBuf, from: u64, repo: &str) -> Vec<String> {
    let text = std::fs::read(log).unwrap();
    let text = String::from_utf8_lossy(&text[from as usize..]).into_owned();
    let needle = format!(" /v2/{repo}/");
    text.lines()
        .filter_map(|l| {
            // 127.0.0.1 - - [date] "GET /v2/... HTTP/1.1" 200 785 "" "agent"
            let (_, rest) = l.split_once("] \"")?;
            let (request, after) = rest.split_once("\" ")?;
            let mut r = request.split(' ');
            let (method, path) = (r.next()?, r.next()?);
            let status = after.split(' ').next()?;
            format!(" {path}")
                .starts_with(&needle)
                .then(|| format!("{method} {path} {status}"))
        })
        .collect()
}

/// A repository name of this test run's own: the lab registry keeps its
/// data between runs.
pub fn unique_repo(name: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("it/{name}-{now}")
}

/// Every proxy at a dead port (npm, PyPI and every other host
/// unreachable), but the loopback registry reachable.
const NPM_UNREACHABLE: &[(&str, &str)] = &[
    ("HTTPS_PROXY", "http://127.0.0.1:9"),
    ("https_proxy", "http://127.0.0.1:9"),
    ("HTTP_PROXY", "http://127.0.0.1:9"),
    ("http_proxy", "http://127.0.0.1:9"),
    ("ALL_PROXY", "http://127.0.0.1:9"),
    ("all_proxy", "http://127.0.0.1:9"),
    ("NO_PROXY", "127.0.0.1"),
    ("no_proxy", "127.0.0.1"),
];

/// Builds testdata/web on the node base into an OCI layout in `env`.
fn build_web(env: &Env, extra: &[&str], vars: &[(&str, &str)]) -> (Run, PathBuf) {
    let layout = env.path("image");
    let base = format!("oci-archive:{}", base("node.oci.tar").display());
    let out = format!("oci:{}", layout.display());
    let web = testdata("web");
    let mut args = vec![
        "build",
        web.to_str().unwrap(),
        "--base",
        &base,
        "--output",
        &out,
    ];
    args.extend(extra);
    (env.hoist_with(&args, vars), layout)
}

#[test]
fn second_ci_job_gets_the_deps_layer_from_the_registry_cache() {
    let reg = registry("plain");
    let repo = unique_repo("rcache-npm");
    let cache = format!("{reg}/{repo}");
    let log = registry_log("plain");

    // Job 1: an empty store, npm reachable; it builds and shares the layer.
    let job1 = Env::new();
    let (run1, layout1) = build_web(&job1, &["--cache-to", &cache], &[]);
    let digest1 = run1.ok().trim().to_owned();
    assert!(
        run1.stderr.contains("deps-npm shared to"),
        "{}",
        run1.stderr
    );
    assert!(run1.stderr.contains("downloaded"), "{}", run1.stderr);
    let deps1 = layer_digest(&layout1, "hoist deps").expect("a deps layer");
    let listed = run(
        "skopeo",
        &[
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{cache}"),
        ],
    );
    let tags: serde_json::Value = serde_json::from_str(listed.ok()).unwrap();
    let tags = tags["Tags"].as_array().unwrap();
    assert_eq!(tags.len(), 1, "one entry shared: {tags:?}");
    let tag = tags[0].as_str().unwrap();
    assert!(tag.starts_with("deps-npm-") && tag.len() == 9 + 64, "{tag}");
    let manifest = serde_json::from_str::<serde_json::Value>(
        run(
            "skopeo",
            &[
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{cache}:{tag}"),
            ],
        )
        .ok(),
    )
    .unwrap();
    assert_eq!(
        manifest["artifactType"],
        "application/vnd.hoist.cache.v1+json"
    );
    assert_eq!(manifest["layers"][0]["digest"], deps1.as_str());

    // Job 2: another empty store, and npm unreachable: the layer can only
    // come from the registry cache.
    let before = std::fs::metadata(&log).unwrap().len();
    let job2 = Env::new();
    let (run2, layout2) = build_web(&job2, &["--cache-from", &cache], NPM_UNREACHABLE);
    let digest2 = run2.ok().trim().to_owned();
    assert!(run2.stderr.contains("deps-npm hit in"), "{}", run2.stderr);
    assert!(
        run2.stderr.contains("reused from the cache"),
        "{}",
        run2.stderr
    );
    assert_eq!(layer_digest(&layout2, "hoist deps").unwrap(), deps1);
    assert_eq!(digest2, digest1, "the same image");
    // The registry saw one manifest read and two blob reads (the entry and
    // the layer), and nothing else: no upload, no other lookup.
    let requests = requests_since(&log, before, &repo);
    let kinds: Vec<String> = requests
        .iter()
        .map(|r| {
            let mut p = r.split(' ');
            let (method, path, status) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
            let what = if path.contains("/manifests/deps-npm-") {
                "manifest"
            } else if path.contains("/blobs/sha256:") {
                "blob"
            } else {
                path
            };
            format!("{method} {what} {status}")
        })
        .collect();
    assert_eq!(
        kinds,
        ["GET manifest 200", "GET blob 200", "GET blob 200"],
        "{requests:#?}"
    );

    // Job 2 again with --cache-to as well: its local hit is already
    // shared, so only a HEAD is made.
    let before = std::fs::metadata(&log).unwrap().len();
    let (run3, _) = build_web(
        &job2,
        &["--cache-from", &cache, "--cache-to", &cache],
        NPM_UNREACHABLE,
    );
    assert_eq!(run3.ok().trim(), digest1);
    let requests = requests_since(&log, before, &repo);
    assert!(
        requests.len() == 1 && requests[0].starts_with("HEAD ") && requests[0].ends_with(" 200"),
        "{requests:#?}"
    );
}

#[test]
fn an_unreachable_cache_is_reported_and_the_build_goes_on() {
    let env = Env::new();
    let dead = format!("127.0.0.1:{}/cache", free_port());
    let (r, _) = build_web(&env, &["--cache-from", &dead, "--cache-to", &dead], &[]);
    r.ok();
    assert!(
        r.stderr.contains(&format!("--cache-from {dead}"))
            && r.stderr.contains("going on without it"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("--cache-to {dead}")),
        "{}",
        r.stderr
    );
    // A tag or digest in a cache repository is refused up front.
    let (r, _) = build_web(&env, &["--cache-from", "127.0.0.1:5000/cache:v1"], &[]);
    r.fails_with("cache repository `127.0.0.1:5000/cache:v1`");
}

#[test]
fn pip_shares_the_resolution_too_so_a_fresh_job_asks_no_index() {
    let reg = registry("plain");
    let cache = format!("{reg}/{}", unique_repo("rcache-pip"));
    let api = testdata("pip/api");
    let base = format!("oci-archive:{}", base("python.oci.tar").display());
    let build = |env: &Env, flag: &str, vars: &[(&str, &str)]| {
        let out = format!("oci:{}", env.path("image").display());
        let args = [
            "build",
            api.to_str().unwrap(),
            "--base",
            &base,
            "--platform",
            "linux/amd64",
            "--output",
            &out,
            flag,
            &cache,
        ];
        env.hoist_with(&args, vars)
    };
    let job1 = Env::new();
    let run1 = build(&job1, "--cache-to", &[]);
    let digest = run1.ok().trim().to_owned();
    for kind in ["deps-pip", "pip-resolution"] {
        assert!(
            run1.stderr.contains(&format!("{kind} shared to")),
            "{}",
            run1.stderr
        );
    }
    // No index, no wheel host: only the loopback registry answers.
    let job2 = Env::new();
    let run2 = build(&job2, "--cache-from", NPM_UNREACHABLE);
    assert_eq!(run2.ok().trim(), digest);
    for kind in ["pip-resolution", "deps-pip"] {
        assert!(
            run2.stderr.contains(&format!("{kind} hit in")),
            "{}",
            run2.stderr
        );
    }
    assert!(
        run2.stderr.contains("reused from the cache"),
        "{}",
        run2.stderr
    );
}

/// A wheel built from an sdist in job 1's sandbox travels with the
/// resolution: job 2, on an empty store with no index reachable, gets
/// the same deps layer without building anything.
#[test]
fn a_wheel_built_from_an_sdist_is_shared_with_the_resolution() {
    let reg = registry("plain");
    let cache = format!("{reg}/{}", unique_repo("rcache-sdist"));
    let base = format!("oci-archive:{}", base("python.oci.tar").display());
    let build = |env: &Env, flag: &str, vars: &[(&str, &str)]| {
        let app = env.path("app");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(app.join("requirements.txt"), "docopt==0.6.2\n").unwrap();
        std::fs::write(app.join("main.py"), "import docopt\n").unwrap();
        let out = format!("oci:{}", env.path("image").display());
        let args = [
            "build",
            app.to_str().unwrap(),
            "--base",
            &base,
            "--sdists",
            "sandbox",
            "--output",
            &out,
            flag,
            &cache,
        ];
        env.hoist_with(&args, vars)
    };
    let job1 = Env::new();
    let run1 = build(&job1, "--cache-to", &[]);
    let digest = run1.ok().trim().to_owned();
    assert!(
        run1.stderr
            .contains("sdists built into wheels in the sandbox"),
        "{}",
        run1.stderr
    );
    assert!(
        run1.stderr.contains("pip-built-wheel-blob shared to"),
        "{}",
        run1.stderr
    );
    let job2 = Env::new();
    let run2 = build(&job2, "--cache-from", NPM_UNREACHABLE);
    assert_eq!(run2.ok().trim(), digest);
    assert!(
        run2.stderr.contains("pip-built-wheel-blob hit in"),
        "{}",
        run2.stderr
    );
    assert!(
        !run2.stderr.contains("built into wheels in the sandbox"),
        "{}",
        run2.stderr
    );
    assert!(
        std::fs::read_dir(job2.path("cache/sandbox")).map_or(true, |d| d.count() == 0),
        "nothing ran in the sandbox"
    );
}
