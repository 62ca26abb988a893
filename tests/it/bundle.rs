//! Offline bundles: `hoist bundle` on a connected host, then a build from
//! the bundle in a network namespace with no network at all (`unshare
//! -n`), which must give the online build's digest.

use std::process::Command;

use crate::rcache::{registry, unique_repo};
use crate::support::*;

/// Runs hoist with `env`'s store inside a new network namespace (only a
/// loopback interface, down): no request can leave, not even to
/// 127.0.0.1.
fn hoist_without_network(env: &Env, args: &[&str]) -> Run {
    let bin = env!("CARGO_BIN_EXE_hoist");
    let run_in = |unshare: &str| {
        let out = Command::new("unshare")
            .arg(unshare)
            .arg(bin)
            .args(args)
            .env("HOIST_CACHE", env.path("cache"))
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .expect("run unshare (util-linux)");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // `unshare -n` needs root; as another user, map it to root first.
    let (mut status, mut stdout, mut stderr) = run_in("-n");
    if status != 0 && stderr.contains("unshare failed") {
        (status, stdout, stderr) = run_in("-rn");
    }
    assert!(
        !stderr.contains("unshare failed"),
        "cannot make a network namespace: {stderr}"
    );
    Run {
        what: format!("unshare -n hoist {}", args.join(" ")),
        status,
        stdout,
        stderr,
    }
}

#[test]
fn build_from_a_bundle_without_network_gives_the_online_digest() {
    require("unshare", "util-linux");
    require("skopeo", "skopeo");
    let reg = registry("plain");
    let node = format!("{reg}/{}:22", unique_repo("bundle-node"));
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &format!("oci-archive:{}", base("node.oci.tar").display()),
            &format!("docker://{node}"),
        ],
    )
    .ok();
    let web = testdata("web");
    let web = web.to_str().unwrap();

    // Online: a registry base, npm's registry.
    let online = Env::new();
    let out = format!("oci:{}", online.path("image").display());
    let digest = online
        .hoist(&["build", web, "--base", &node, "--output", &out])
        .ok()
        .trim()
        .to_owned();

    // The bundle, made with a store of its own.
    let maker = Env::new();
    let file = maker.path("build-inputs.tar");
    let made = maker.hoist(&[
        "bundle",
        web,
        "--base",
        &node,
        "--output",
        file.to_str().unwrap(),
    ]);
    made.ok();
    assert!(made.stderr.contains(&digest), "{}", made.stderr);
    let listing = run("tar", &["tf", file.to_str().unwrap()]).ok().to_owned();
    let names: Vec<&str> = listing.lines().collect();
    assert_eq!(names[0], "hoist-bundle.json");
    assert!(names.iter().any(|n| n.starts_with("keys/npm-tarball/")));
    assert!(names.iter().any(|n| n.starts_with("keys/registry-tag/")));
    // Inputs only: the layers hoist made are not in it.
    let deps = layer_digest(&online.path("image"), "hoist deps").unwrap();
    let deps_blob = format!("blobs/sha256/{}", deps.trim_start_matches("sha256:"));
    assert!(!names.contains(&deps_blob.as_str()), "{names:?}");
    // Every base layer is, though the build only needed them for facts.
    let manifest = skopeo_raw(&format!("oci:{}", online.path("image").display()));
    let layers = manifest["layers"].as_array().unwrap();
    for l in &layers[..layers.len() - 2] {
        let blob = format!(
            "blobs/sha256/{}",
            l["digest"].as_str().unwrap().trim_start_matches("sha256:")
        );
        assert!(names.contains(&blob.as_str()), "base layer {blob} missing");
    }

    // Air-gapped: an empty store, no network at all.
    let air = Env::new();
    let out = format!("oci:{}", air.path("image").display());
    let offline = hoist_without_network(
        &air,
        &[
            "build",
            web,
            "--base",
            &node,
            "--output",
            &out,
            "--from-bundle",
            file.to_str().unwrap(),
            "--offline",
        ],
    );
    assert_eq!(offline.ok().trim(), digest, "{}", offline.stderr);
    assert!(
        offline.stderr.contains("entries imported and verified"),
        "{}",
        offline.stderr
    );
    // The deps layer was made again, from the bundled tarballs.
    assert!(
        offline.stderr.contains("built: 0 downloaded"),
        "{}",
        offline.stderr
    );

    // Without the bundle, the same offline build fails and says why.
    let bare = Env::new();
    hoist_without_network(&bare, &["build", web, "--base", &node, "--offline"])
        .fails_with("--offline");
}

#[test]
fn a_damaged_bundle_is_refused_and_imports_no_entry() {
    let env = Env::new();
    let file = env.path("not-a-bundle.tar");
    std::fs::write(&file, b"hello").unwrap();
    let app = env.path("app");
    small_app(&app);
    let base = format!("oci-archive:{}", base("alpine-amd64.oci.tar").display());
    env.hoist(&[
        "build",
        app.to_str().unwrap(),
        "--base",
        &base,
        "--from-bundle",
        file.to_str().unwrap(),
    ])
    .fails_with("not-a-bundle.tar");
    assert!(!env.path("cache/keys").exists(), "no entry imported");
}
