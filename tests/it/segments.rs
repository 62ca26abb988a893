//! Segmented deps layers (src/layer/segments.rs): a requirement added in
//! a warm store gives the very deps layer an empty store gives, and that
//! layer is read by podman (loaded and run) and umoci (unpacked).

use crate::support::*;

/// A context with this requirements.txt and an app.py.
fn project(env: &Env, requirements: &str) -> std::path::PathBuf {
    let dir = env.path("app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("requirements.txt"), requirements).unwrap();
    std::fs::write(dir.join("app.py"), "print('hi')\n").unwrap();
    dir
}

/// `hoist build` of `requirements` on the python base into the OCI layout
/// `name` (tag `x`), plus an archive `name.tar` tagged `tag` when given.
fn build(env: &Env, requirements: &str, name: &str, tag: Option<&str>) {
    let ctx = project(env, requirements);
    let base = format!("oci-archive:{}", base("python.oci.tar").display());
    let layout = format!("oci:{}:x", env.path(name).display());
    let mut args = vec![
        "build",
        ctx.to_str().unwrap(),
        "--base",
        &base,
        "--deps",
        "pip",
    ];
    args.extend(["--output", &layout]);
    let archive = format!("oci-archive:{}", env.path(&format!("{name}.tar")).display());
    if let Some(tag) = tag {
        args.extend(["--tag", tag, "--output", &archive]);
    }
    env.hoist(&args).ok();
}

const BEFORE: &str = "six==1.16.0\nidna==3.7\n";
const AFTER: &str = "six==1.16.0\nidna==3.7\ncertifi==2024.2.2\n";

#[test]
fn pip_requirement_added_in_a_warm_store_equals_a_cold_build_and_runs() {
    require_podman();
    let warm = Env::new();
    build(&warm, BEFORE, "before", None);
    let tag = "localhost/hoist-segments:test";
    build(&warm, AFTER, "after", Some(tag));
    let cold = Env::new();
    build(&cold, AFTER, "cold", None);
    let before = layer_digest(&warm.path("before"), "hoist deps").expect("a deps layer");
    let after = layer_digest(&warm.path("after"), "hoist deps").expect("a deps layer");
    let from_empty = layer_digest(&cold.path("cold"), "hoist deps").expect("a deps layer");
    assert_ne!(before, after);
    assert_eq!(after, from_empty, "warm and cold deps layers differ");
    // The warm store kept the segments of six and idna: a segment entry
    // per wheel and per skeleton, two builds' worth.
    let kept = std::fs::read_dir(warm.path("cache/keys/deps-segment"))
        .unwrap()
        .count();
    assert_eq!(
        kept,
        3 + 2,
        "skeleton, six, idna; then a skeleton and certifi"
    );

    let _loaded = Loaded::load(&warm.path("after.tar"), tag);
    let py = "import six, idna, certifi; print(idna.encode('b\u{fc}cher.example').decode(), certifi.__version__)";
    let out = podman_store(&["run", "--rm", tag, "python3", "-c", py]);
    assert_eq!(out.ok().trim(), "xn--bcher-kva.example 2024.02.02");

    let bundle = warm.path("bundle");
    umoci_unpack(&warm.path("after"), "x", &bundle);
    let found = |name: &str| {
        let out = run(
            "find",
            &[bundle.join("rootfs").to_str().unwrap(), "-path", name],
        );
        !out.ok().trim().is_empty()
    };
    assert!(found("*/python3*/dist-packages/certifi/cacert.pem"));
    assert!(found("*/python3*/dist-packages/six.py"));
}
