//! Building images and checking them with the tools users load them with.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::support::*;

/// Builds `small_app` on the Alpine index base with user nextjs.
fn build_small(env: &Env, outputs: &[&str]) -> String {
    small_app(&env.path("app"));
    let base = format!("oci-archive:{}", base("alpine.oci.tar").display());
    let app = env.path("app").display().to_string();
    let mut args = vec![
        "build",
        &app,
        "--base",
        &base,
        "--platform",
        "linux/amd64",
        "--user",
        "nextjs:1001",
        "--cmd",
        r#"["node","server.js"]"#,
        "--tag",
        "web:dev",
        "--env",
        "NODE_ENV=production",
        "--expose",
        "3000",
        "--label",
        "org.example.team=web",
    ];
    for o in outputs {
        args.extend(["--output", o]);
    }
    env.hoist(&args).ok().trim().to_owned()
}

#[test]
fn podman_loads_and_runs_as_the_app_user() {
    require_podman();
    let env = Env::new();
    let out = env.path("web.tar").display().to_string();
    build_small(&env, &[&format!("oci-archive:{out}")]);
    let loaded = podman_store(&["load", "-i", &out]).ok().to_owned();
    assert!(loaded.contains("localhost/web:dev"), "{loaded}");
    let id = run("podman", &["run", "--rm", "localhost/web:dev", "id", "-u"]);
    assert_eq!(id.ok().trim(), "1001");
    let perms = run(
        "podman",
        &["run", "--rm", "localhost/web:dev", "sh", "-c",
          "cd /app && test -r server.js && ! test -w server.js && ! touch new 2>/dev/null && test -x bin/run.sh && echo fine; pwd; echo $HOME; test -w $HOME && echo home-writable"],
    );
    let text = perms.ok();
    assert!(text.contains("fine"), "{text}");
    assert!(text.contains("/app\n"), "{text}");
    assert!(text.contains("/home/nextjs"), "{text}");
    assert!(text.contains("home-writable"), "{text}");
    podman_store(&["rmi", "-f", "localhost/web:dev"]);
}

#[test]
fn skopeo_reads_every_output() {
    let env = Env::new();
    let oci = format!("oci:{}:dev", env.path("layout").display());
    let arc = format!("oci-archive:{}", env.path("web.tar").display());
    let dock = format!("docker-archive:{}", env.path("web.docker.tar").display());
    let digest = build_small(&env, &[&oci, &arc, &dock]);
    for image in [&oci, &arc] {
        let m = skopeo_raw(image);
        assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 3, "alpine + user + app: {m}");
        let c = skopeo_config(image);
        assert_eq!(c["architecture"], "amd64");
        assert_eq!(c["config"]["User"], "1001:1001");
        assert_eq!(c["config"]["Cmd"], serde_json::json!(["node", "server.js"]));
        assert_eq!(c["config"]["WorkingDir"], "/app");
        assert_eq!(c["config"]["Labels"]["org.example.team"], "web");
        assert!(c["config"]["ExposedPorts"]["3000/tcp"].is_object());
        assert!(c["config"]["Env"]
            .as_array()
            .unwrap()
            .contains(&"NODE_ENV=production".into()));
        assert_eq!(c["created"], "1970-01-01T00:00:00Z");
        assert_eq!(
            c["history"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|h| h["empty_layer"] != true)
                .count(),
            3
        );
    }
    let raw = run("skopeo", &["inspect", "--raw", &arc]).ok().to_owned();
    assert_eq!(
        format!("sha256:{}", sha256_hex(raw.as_bytes())),
        digest,
        "the digest printed is the manifest's"
    );
    let d = run("skopeo", &["inspect", &dock]).ok().to_owned();
    let d: serde_json::Value = serde_json::from_str(&d).unwrap();
    assert_eq!(d["Layers"].as_array().unwrap().len(), 3);
    assert_eq!(d["Architecture"], "amd64");
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn umoci_unpacks_files_modes_owners_and_users() {
    require("umoci", "umoci");
    let env = Env::new();
    let layout = env.path("layout");
    build_small(&env, &[&format!("oci:{}:dev", layout.display())]);
    let bundle = env.path("bundle");
    umoci_unpack(&layout, "dev", &bundle);
    let root = bundle.join("rootfs");
    let meta = |rel: &str| {
        std::fs::symlink_metadata(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    };
    for (rel, mode) in [
        ("app", 0o755),
        ("app/server.js", 0o644),
        ("app/lib/util.js", 0o644),
        ("app/bin/run.sh", 0o755),
        ("app/README.md", 0o644),
    ] {
        let m = meta(rel);
        assert_eq!(m.permissions().mode() & 0o7777, mode, "{rel}");
        assert_eq!((m.uid(), m.gid()), (0, 0), "{rel} owned by root");
    }
    for dropped in ["app/tests", "app/docs", "app/tests/a.test.js"] {
        assert!(
            !root.join(dropped).exists(),
            "{dropped} should be dropped by .dockerignore"
        );
    }
    let home = meta("home/nextjs");
    assert_eq!((home.uid(), home.gid()), (1001, 1001));
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let last = passwd.lines().last().unwrap();
    assert!(last.starts_with("nextjs:x:1001:1001:"), "{last}");
    assert!(last.ends_with(":/home/nextjs:/sbin/nologin"), "{last}");
    assert!(
        passwd.starts_with("root:x:0:0:root:/root:/bin/sh\n"),
        "base lines kept"
    );
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
    assert_eq!(group.lines().last().unwrap(), "nextjs:x:1001:");
    let shadow = meta("etc/shadow");
    assert_eq!(
        shadow.permissions().mode() & 0o777,
        0o640,
        "the base's shadow mode is kept"
    );
    // The base's own files are there too.
    assert!(root.join("etc/alpine-release").exists());
}

#[test]
fn oci_image_tool_validates_the_layout() {
    require("oci-image-tool", "oci-image-tool");
    let env = Env::new();
    let layout = env.path("layout");
    build_small(&env, &[&format!("oci:{}:dev", layout.display())]);
    run(
        "oci-image-tool",
        &[
            "validate",
            "--type",
            "image",
            "--ref",
            "name=dev",
            &layout.display().to_string(),
        ],
    )
    .ok();
}

#[test]
fn docker_loads_the_docker_archive() {
    let Some(host) = std::env::var_os("HOIST_TEST_DOCKER_HOST") else {
        panic!("no dockerd for tests: run `scripts/dockerd start` and set HOIST_TEST_DOCKER_HOST (scripts/test does)");
    };
    let host = host.to_string_lossy().into_owned();
    let env = Env::new();
    let out = env.path("web.docker.tar").display().to_string();
    build_small(&env, &[&format!("docker-archive:{out}")]);
    let docker = |args: &[&str]| run_env("/usr/bin/docker", args, &[("DOCKER_HOST", &host)]);
    let loaded = docker(&["load", "-i", &out]).ok().to_owned();
    assert!(loaded.contains("localhost/web:dev"), "{loaded}");
    let id = docker(&[
        "run",
        "--rm",
        "--network=host",
        "localhost/web:dev",
        "id",
        "-u",
    ]);
    assert_eq!(id.ok().trim(), "1001");
    docker(&["rmi", "-f", "localhost/web:dev"]);
}

#[test]
fn reproducible_across_folders_times_and_stores() {
    let a = Env::new();
    let b = Env::new();
    small_app(&a.path("app"));
    copy_tree(&a.path("app"), &b.path("elsewhere"));
    // Different mtimes and a different umask-ish mode on the copy.
    run(
        "touch",
        &[
            "-d",
            "2001-02-03",
            &b.path("elsewhere/server.js").display().to_string(),
        ],
    )
    .ok();
    std::fs::set_permissions(
        b.path("elsewhere/lib/util.js"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let base = format!("oci-archive:{}", base("busybox.oci.tar").display());
    let build = |env: &Env, dir: &str| {
        env.hoist(&[
            "build",
            &env.path(dir).display().to_string(),
            "--base",
            &base,
            "--user",
            "app",
        ])
        .ok()
        .trim()
        .to_owned()
    };
    let first = build(&a, "app");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = build(&b, "elsewhere");
    assert_eq!(first, second);
    assert!(first.starts_with("sha256:"));
    // SOURCE_DATE_EPOCH is the one clock that counts.
    let dated = a
        .hoist_with(
            &[
                "build",
                &a.path("app").display().to_string(),
                "--base",
                &base,
                "--user",
                "app",
            ],
            &[("SOURCE_DATE_EPOCH", "1700000000")],
        )
        .ok()
        .trim()
        .to_owned();
    assert_ne!(dated, first);
}

#[test]
fn a_source_change_changes_only_the_app_layer() {
    let env = Env::new();
    small_app(&env.path("app"));
    let base = format!("oci-archive:{}", base("alpine-amd64.oci.tar").display());
    let build = |out: &str| {
        env.hoist(&[
            "build",
            &env.path("app").display().to_string(),
            "--base",
            &base,
            "--user",
            "nextjs",
            "--output",
            &format!("oci:{}:x", env.path(out).display()),
        ])
        .ok();
        skopeo_raw(&format!("oci:{}:x", env.path(out).display()))
    };
    let before = build("one");
    std::fs::write(env.path("app/server.js"), "console.log('changed')\n").unwrap();
    let after = build("two");
    let (l1, l2) = (
        before["layers"].as_array().unwrap(),
        after["layers"].as_array().unwrap(),
    );
    assert_eq!(l1.len(), l2.len());
    let n = l1.len();
    assert_eq!(l1[..n - 1], l2[..n - 1], "base and user layers unchanged");
    assert_ne!(l1[n - 1], l2[n - 1], "app layer changed");
    assert_ne!(before["config"], after["config"]);
}

#[test]
fn zstd_layers_load_in_podman() {
    require_podman();
    let env = Env::new();
    let out = env.path("z.tar").display().to_string();
    small_app(&env.path("app"));
    let base = format!("oci-archive:{}", base("busybox.oci.tar").display());
    env.hoist(&[
        "build",
        &env.path("app").display().to_string(),
        "--base",
        &base,
        "--compression",
        "zstd",
        "--tag",
        "hoist-test/zstd:1",
        "--output",
        &format!("oci-archive:{out}"),
    ])
    .ok();
    let m = skopeo_raw(&format!("oci-archive:{out}"));
    assert_eq!(
        m["layers"][1]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    podman_store(&["load", "-i", &out]).ok();
    let cat = run(
        "podman",
        &[
            "run",
            "--rm",
            "localhost/hoist-test/zstd:1",
            "cat",
            "/app/server.js",
        ],
    );
    assert_eq!(cat.ok(), "console.log('hi')\n");
    podman_store(&["rmi", "-f", "localhost/hoist-test/zstd:1"]);
}

#[test]
fn inspect_shows_what_was_built() {
    let env = Env::new();
    let out = env.path("web.tar").display().to_string();
    let digest = build_small(&env, &[&format!("oci-archive:{out}")]);
    let human = env
        .hoist(&["inspect", &format!("oci-archive:{out}")])
        .ok()
        .to_owned();
    for needle in [
        "linux/amd64",
        "1001:1001",
        "node",
        "server.js",
        "3000/tcp",
        "NODE_ENV=production",
        &digest[..19],
    ] {
        assert!(human.contains(needle), "`{needle}` missing from:\n{human}");
    }
    let json: serde_json::Value = serde_json::from_str(
        env.hoist(&["inspect", "--json", &format!("oci-archive:{out}")])
            .ok(),
    )
    .unwrap();
    let text = json.to_string();
    assert!(text.contains(&digest), "{text}");
    assert!(text.contains("hoist app"), "history shown: {text}");
}

#[test]
fn example_apps_build_with_their_dockerignore() {
    require("umoci", "umoci");
    let env = Env::new();
    let cases = [
        (
            "web",
            "node.oci.tar",
            "nextjs:1001",
            &[
                "server.js",
                "package.json",
                "package-lock.json",
                "README.md",
                "src/routes.js",
                "public/index.html",
            ][..],
            &[
                "tests",
                "docs",
                "CHANGELOG.md",
                "Dockerfile",
                ".dockerignore",
                ".gitignore",
            ][..],
        ),
        (
            "agent",
            "python.oci.tar",
            "agent:1001",
            &[
                "app.py",
                "requirements.txt",
                "worker/settings.py",
                "README.md",
            ][..],
            &["tests", "Dockerfile", ".dockerignore"][..],
        ),
    ];
    for (app, base_file, user, kept, dropped) in cases {
        let layout = env.path(app);
        let src = format!("oci-archive:{}", base(base_file).display());
        let out = format!("oci:{}:dev", layout.display());
        env.hoist(&[
            "build",
            testdata(app).to_str().unwrap(),
            "--base",
            &src,
            "--user",
            user,
            "--output",
            &out,
        ])
        .ok();
        let bundle = env.path(&format!("{app}-bundle"));
        umoci_unpack(&layout, "dev", &bundle);
        let root = bundle.join("rootfs/app");
        for k in kept {
            assert!(root.join(k).is_file(), "{app}: {k} should be in the image");
        }
        for d in dropped {
            assert!(
                !root.join(d).exists(),
                "{app}: {d} should be dropped by .dockerignore"
            );
        }
        let passwd = std::fs::read_to_string(bundle.join("rootfs/etc/passwd")).unwrap();
        let name = user.split(':').next().unwrap();
        assert!(
            passwd
                .lines()
                .last()
                .unwrap()
                .starts_with(&format!("{name}:x:1001:1001:")),
            "{passwd}"
        );
        assert!(
            passwd.contains(":/usr/sbin/nologin\n"),
            "Debian's nologin: {passwd}"
        );
    }
}
