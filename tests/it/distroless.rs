//! Distroless bases (issue 21): look-alikes of gcr.io/distroless's
//! python3 and nodejs images made by scripts/make-bases from Debian's
//! .debs with dpkg-deb and umoci (never with hoist): per-package
//! `/var/lib/dpkg/status.d` records and no status file, no shell, node at
//! `/nodejs/bin/node`, an `Entrypoint`, no history entries.

use std::path::{Path, PathBuf};

use crate::dockerfile::{build as dockerfile_build, healthy};
use crate::support::*;

fn python_distroless() -> String {
    format!(
        "oci-archive:{}",
        base("python-distroless.oci.tar").display()
    )
}

fn node_distroless() -> String {
    format!("oci-archive:{}", base("node-distroless.oci.tar").display())
}

/// A project whose requirements install `yes` only from Python 3.11.1 on
/// and `no` only below it, both from a local `--find-links` folder of
/// wheels made by tests/support/make-wheel.py.
fn marker_project(env: &Env) -> PathBuf {
    let ctx = env.path("markers");
    std::fs::create_dir_all(ctx.join("wheels")).unwrap();
    std::fs::write(
        ctx.join("requirements.txt"),
        "--no-index\n--find-links wheels\nyes==1.0 ; python_full_version >= \"3.11.1\"\nno==1.0 ; python_full_version < \"3.11.1\"\n",
    )
    .unwrap();
    std::fs::write(ctx.join("app.py"), "print('hi')\n").unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/make-wheel.py");
    for name in ["yes", "no"] {
        run(
            "python3",
            &[
                script.to_str().unwrap(),
                ctx.join("wheels").to_str().unwrap(),
                name,
                "1.0",
                "good",
            ],
        )
        .ok();
    }
    ctx
}

/// The purls of an SPDX document's packages.
fn purls(sbom: &Path) -> Vec<String> {
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sbom).expect("the SBOM was written")).unwrap();
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str())
        .map(str::to_owned)
        .collect()
}

/// Done when, line 1: Python's exact version is read from status.d, so a
/// `python_full_version` marker resolves as on the slim base (Debian's
/// python3 3.11.2 on both); the SBOM lists the base's packages.
#[test]
fn status_d_gives_the_exact_python_and_the_sbom_the_base_packages() {
    let env = Env::new();
    let ctx = marker_project(&env);
    let slim = format!("oci-archive:{}", base("python.oci.tar").display());
    let mut pypi = Vec::new();
    for (name, base) in [("slim", slim), ("distroless", python_distroless())] {
        let sbom = env.path(&format!("{name}.spdx.json"));
        env.hoist(&[
            "build",
            ctx.to_str().unwrap(),
            "--base",
            &base,
            "--deps",
            "pip",
            "--sbom",
            "spdx",
            "--sbom-output",
            sbom.to_str().unwrap(),
            "--output",
            &format!("oci:{}:x", env.path(name).display()),
        ])
        .ok();
        let all = purls(&sbom);
        let wheels: Vec<String> = all
            .iter()
            .filter(|p| p.starts_with("pkg:pypi/"))
            .cloned()
            .collect();
        assert_eq!(wheels, ["pkg:pypi/yes@1.0"], "{name}: {all:?}");
        pypi.push(wheels);
        if name == "distroless" {
            for needle in [
                "pkg:deb/debian/python3.11-minimal@3.11.2-",
                "pkg:deb/debian/libc6@2.36-",
                "pkg:deb/debian/libssl3@",
                "pkg:deb/debian/tzdata@",
            ] {
                assert!(
                    all.iter().any(|p| p.starts_with(needle)),
                    "{needle} missing from the distroless SBOM: {all:?}"
                );
            }
            assert!(
                !all.iter().any(|p| p.contains("md5sums")),
                "an md5sums list taken for a package: {all:?}"
            );
        }
    }
    assert_eq!(pypi[0], pypi[1]);
}

/// Done when, line 1: node is found at /nodejs/bin/node. A health check
/// naming a bare `node` (not on the image's PATH) is refused with the
/// full path to write; written so, the image builds.
#[test]
fn node_is_found_at_nodejs_bin_node() {
    let env = Env::new();
    let web = testdata("web");
    let build = |health: &str, out: &str| {
        env.hoist(&[
            "build",
            web.to_str().unwrap(),
            "--base",
            &node_distroless(),
            "--user",
            "nonroot:65532",
            "--cmd",
            r#"["server.js"]"#,
            "--healthcheck",
            health,
            "--output",
            &format!("oci-archive:{}", env.path(out).display()),
        ])
    };
    let check = r#"require('http').get('http://127.0.0.1:3000/health', r => process.exit(r.statusCode === 200 ? 0 : 1))"#;
    let bare = serde_json::to_string(&["node", "-e", check]).unwrap();
    let refused = build(&bare, "bare.tar");
    refused.fails_with("--healthcheck: `node` is not on the image's PATH");
    refused.fails_with("its node is /nodejs/bin/node; give the full path: --healthcheck '[\"/nodejs/bin/node\",\"-e\",");
    assert!(!env.path("bare.tar").exists());
    let full = serde_json::to_string(&["/nodejs/bin/node", "-e", check]).unwrap();
    build(&full, "full.tar").ok();
}

/// Done when, line 2: a base with no history has every layer labelled
/// right by `hoist inspect` and `podman history` (each base layer its own
/// line, then hoist's).
#[test]
fn a_base_without_history_is_labelled_layer_by_layer() {
    require_podman();
    let env = Env::new();
    let out = env.path("web.tar");
    let tag = "localhost/hoist-distroless-history:test";
    env.hoist(&[
        "build",
        testdata("web").to_str().unwrap(),
        "--base",
        &node_distroless(),
        "--user",
        "nonroot:65532",
        "--entrypoint",
        r#"["/nodejs/bin/node","server.js"]"#,
        "--tag",
        tag,
        "--output",
        &format!("oci-archive:{}", out.display()),
    ])
    .ok();
    let shown = env
        .hoist(&["inspect", &format!("oci-archive:{}", out.display())])
        .ok()
        .to_owned();
    let rows: Vec<&str> = shown
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("#  DIGEST"))
        .skip(1)
        .take_while(|l| !l.starts_with("Total"))
        .collect();
    let wanted = ["base layer 1", "base layer 2", "hoist deps", "hoist app"];
    assert_eq!(rows.len(), wanted.len(), "{shown}");
    for (row, want) in rows.iter().zip(wanted) {
        assert!(row.contains(want), "`{want}` expected on `{row}`:\n{shown}");
    }

    let _loaded = Loaded::load(&out, tag);
    let history: serde_json::Value =
        serde_json::from_str(run("podman", &["history", "--format", "json", tag]).ok()).unwrap();
    // Newest first; each layer's size next to the entry podman gave it.
    let entries: Vec<(String, u64)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["CreatedBy"].as_str().unwrap_or_default().to_owned(),
                h["size"].as_u64().unwrap_or_default(),
            )
        })
        .filter(|(_, size)| *size > 0)
        .collect();
    let names: Vec<&str> = entries.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(entries.len(), 4, "{entries:?}");
    for (got, want) in names
        .iter()
        .zip(["hoist app", "hoist deps", "base layer 2", "base layer 1"])
    {
        assert!(got.starts_with(want), "podman history: {entries:?}");
    }
    // The base's layers are the large ones (node and its libraries, libc):
    // the app is a few files.
    assert!(entries[0].1 < 1 << 20, "{entries:?}");
    assert!(
        entries[2].1 > 10 << 20 && entries[3].1 > 10 << 20,
        "{entries:?}"
    );
}

/// Done when, line 3: the warning and the errors, with the words the
/// README shows.
#[test]
fn what_a_shell_less_image_will_do_is_said() {
    let env = Env::new();
    let web = testdata("web");
    let out = |name: &str| format!("oci-archive:{}", env.path(name).display());
    let warned = env.hoist(&[
        "build",
        web.to_str().unwrap(),
        "--base",
        &node_distroless(),
        "--user",
        "nonroot:65532",
        "--cmd",
        r#"["node","server.js"]"#,
        "--output",
        &out("warned.tar"),
    ]);
    warned.ok();
    assert!(
        warned.stderr.contains("the base's entrypoint stays, so the container will run: /nodejs/bin/node node server.js; to run the command alone add --entrypoint '[]', or give --cmd the entrypoint's arguments only (--cmd '[\"server.js\"]')"),
        "{}",
        warned.stderr
    );
    // The dry run says the same, and the command line.
    let plan = env.hoist(&[
        "build",
        "--dry-run",
        web.to_str().unwrap(),
        "--base",
        &node_distroless(),
        "--cmd",
        r#"["server.js"]"#,
    ]);
    assert!(
        plan.ok().contains("command /nodejs/bin/node server.js\n"),
        "{}",
        plan.stdout
    );

    let shell = env.hoist(&[
        "build",
        web.to_str().unwrap(),
        "--base",
        &node_distroless(),
        "--cmd",
        r#"["server.js"]"#,
        "--healthcheck",
        "curl -f http://127.0.0.1:3000/health",
        "--output",
        &out("shell.tar"),
    ]);
    shell.fails_with("--healthcheck: `curl -f http://127.0.0.1:3000/health` runs through /bin/sh, which the image does not have (a distroless base?), so it can never run; give the exec form: --healthcheck '[\"curl\",\"-f\",\"http://127.0.0.1:3000/health\"]'");
    assert!(!env.path("shell.tar").exists());

    // A Dockerfile's shell-form CMD, the same.
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("app.py"), "print('hi')\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "ARG BASE\nFROM ${BASE}\nCOPY app.py /app/\nCMD python3 /app/app.py\n",
    )
    .unwrap();
    let docker = env.hoist(&[
        "build",
        "-f",
        ctx.join("Dockerfile").to_str().unwrap(),
        ctx.to_str().unwrap(),
        "--build-arg",
        &format!("BASE={}", python_distroless()),
        "--output",
        &out("cmd.tar"),
    ]);
    docker.fails_with("CMD: `python3 /app/app.py` runs through /bin/sh, which the image does not have (a distroless base?), so it can never run; give the exec form: CMD [\"python3\",\"/app/app.py\"]");
    assert!(!env.path("cmd.tar").exists());
}

/// Done when, line 4: the prod-distroless targets of both examples run as
/// uid 65532 under podman, pass their health checks and answer /health.
#[test]
fn distroless_examples_run_as_nonroot_and_are_healthy() {
    require_podman();
    let env = Env::new();
    let arg = |name: &str, file: &str| format!("{name}=oci-archive:{}", base(file).display());
    let cases = [
        (
            "web",
            vec![
                arg("NODE_DISTROLESS", "node-distroless.oci.tar"),
                arg("BUILD_IMAGE", "node.oci.tar"),
                arg("NODE_IMAGE", "node.oci.tar"),
            ],
            r#"{"status":"ok"}"#,
        ),
        (
            "agent",
            vec![
                arg("PYTHON_DISTROLESS", "python-distroless.oci.tar"),
                arg("PYTHON_IMAGE", "python.oci.tar"),
            ],
            r#"{"status": "ok"}"#,
        ),
    ];
    for (app, args, want) in cases {
        let tag = format!("localhost/hoist-distroless-{app}:test");
        let mut a = vec!["--target", "prod-distroless"];
        for b in &args {
            a.extend(["--build-arg", b.as_str()]);
        }
        let (_, docker) = dockerfile_build(&env, app, &tag, &a);
        let _loaded = Loaded::load(&docker, &tag);
        let user = run("podman", &["inspect", "--format", "{{.Config.User}}", &tag]);
        assert_eq!(user.ok().trim(), "65532:65532", "{app}");
        // No shell, no `id`: the uid the process runs as, from podman.
        let port = format!("PORT={}", free_port());
        let id = run(
            "podman",
            &["run", "-d", "--network", "host", "-e", &port, &tag],
        )
        .ok()
        .trim()
        .to_owned();
        std::thread::sleep(std::time::Duration::from_millis(500));
        let top = run("podman", &["top", &id, "huser", "user"]);
        run("podman", &["rm", "-f", "-t", "0", &id]);
        assert!(top.ok().contains("65532"), "{app}: {}", top.stdout);
        let answer = healthy(&tag, free_port());
        assert_eq!(answer.trim(), want, "{app}");
    }
}

/// Where the interpreter's full version cannot be known (the arm64 half
/// of python-multi is extracted, with no dpkg database), a marker that
/// needs it is an error naming the requirement, not a guess of X.Y.0.
#[test]
fn an_unknown_full_version_is_not_guessed() {
    let env = Env::new();
    let ctx = marker_project(&env);
    let out = env.path("arm64");
    let refused = env.hoist(&[
        "build",
        ctx.to_str().unwrap(),
        "--base",
        &format!("oci-archive:{}", base("python-multi.oci.tar").display()),
        "--platform",
        "linux/arm64",
        "--deps",
        "pip",
        "--output",
        &format!("oci:{}:x", out.display()),
    ]);
    refused.fails_with("requirements.txt:3: `yes==1.0 ; python_full_version >= '3.11.1'` has a marker on the interpreter's full version, but the base does not say Python 3.11's");
    assert!(!out.exists());
}
