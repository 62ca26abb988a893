//! Every base format hoist reads, each made by third-party tools.

use crate::support::*;

fn build_on(env: &Env, base: &str, extra: &[&str]) -> serde_json::Value {
    let app = env.path("app");
    if !app.exists() {
        small_app(&app);
    }
    let out = format!("oci:{}:t", env.path("out").display());
    let mut args = vec![
        "build",
        app.to_str().unwrap(),
        "--base",
        base,
        "--output",
        &out,
    ];
    args.extend(extra);
    env.hoist(&args).ok();
    let config = skopeo_config(&out);
    let manifest = skopeo_raw(&out);
    std::fs::remove_dir_all(env.path("out")).unwrap();
    serde_json::json!({"config": config, "manifest": manifest})
}

#[test]
fn oci_layout_with_tag() {
    let env = Env::new();
    let got = build_on(
        &env,
        &format!("oci:{}:latest", base("oci/busybox").display()),
        &["--user", "app:2000"],
    );
    assert_eq!(got["config"]["config"]["User"], "2000:2000");
    assert_eq!(got["manifest"]["layers"].as_array().unwrap().len(), 3);
}

#[test]
fn oci_layout_without_tag_when_it_holds_one_image() {
    let env = Env::new();
    let got = build_on(
        &env,
        &format!("oci:{}", base("oci/debian").display()),
        &["--user", "agent"],
    );
    assert_eq!(got["config"]["config"]["User"], "1001:1001");
}

#[test]
fn docker_archive_from_podman_save() {
    let env = Env::new();
    let got = build_on(
        &env,
        &format!("docker-archive:{}", base("busybox.docker.tar").display()),
        &["--user", "app"],
    );
    assert_eq!(got["config"]["architecture"], "amd64");
    assert_eq!(got["manifest"]["layers"].as_array().unwrap().len(), 3);
}

#[test]
fn multi_platform_index_picks_the_asked_platform() {
    let env = Env::new();
    let src = format!("oci-archive:{}", base("alpine.oci.tar").display());
    let arm = build_on(
        &env,
        &src,
        &["--platform", "linux/arm64", "--user", "nextjs"],
    );
    assert_eq!(arm["config"]["architecture"], "arm64");
    let arm_v8 = build_on(&env, &src, &["--platform", "linux/arm64/v8"]);
    assert_eq!(arm_v8["config"]["architecture"], "arm64");
    let amd = build_on(&env, &src, &["--platform", "linux/amd64"]);
    assert_eq!(amd["config"]["architecture"], "amd64");
    assert_ne!(arm["manifest"]["layers"][0], amd["manifest"]["layers"][0]);
}

#[test]
fn docker_manifest_list() {
    let env = Env::new();
    let src = format!("oci:{}:3.20", base("oci/alpine-dockerlist").display());
    let arm = build_on(
        &env,
        &src,
        &["--platform", "linux/arm64", "--user", "nextjs"],
    );
    assert_eq!(arm["config"]["architecture"], "arm64");
    // Docker media types of the base are written as OCI ones.
    for l in arm["manifest"]["layers"].as_array().unwrap() {
        assert!(
            l["mediaType"]
                .as_str()
                .unwrap()
                .starts_with("application/vnd.oci.image.layer."),
            "{l}"
        );
    }
}

#[test]
fn debian_bases_with_node_and_python() {
    let env = Env::new();
    let node = build_on(
        &env,
        &format!("oci-archive:{}", base("node.oci.tar").display()),
        &["--user", "nextjs:1001"],
    );
    assert_eq!(node["manifest"]["layers"].as_array().unwrap().len(), 4);
    let py = build_on(
        &env,
        &format!("oci-archive:{}", base("python.oci.tar").display()),
        &["--user", "agent:1001"],
    );
    assert_eq!(py["config"]["config"]["User"], "1001:1001");
}

#[test]
fn inspect_reads_every_transport() {
    let env = Env::new();
    for src in [
        format!("oci:{}:latest", base("oci/busybox").display()),
        format!("oci-archive:{}", base("busybox.oci.tar").display()),
        format!("docker-archive:{}", base("busybox.docker.tar").display()),
        format!("oci-archive:{}", base("alpine.oci.tar").display()),
    ] {
        let out = env.hoist(&["inspect", &src]).ok().to_owned();
        assert!(out.contains("linux/amd64"), "{src}:\n{out}");
    }
    let arm = env
        .hoist(&[
            "inspect",
            "--platform",
            "linux/arm64",
            &format!("oci-archive:{}", base("alpine.oci.tar").display()),
        ])
        .ok()
        .to_owned();
    assert!(arm.contains("linux/arm64"), "{arm}");
}
