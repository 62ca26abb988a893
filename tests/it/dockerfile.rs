//! `hoist build -f Dockerfile`: the example apps' own Dockerfiles built as
//! they are, their images run under podman.
//!
//! The bases the Dockerfiles start from have no npm and no pip (the test
//! bases `node` and `python`, made by scripts/make-bases with third-party
//! tools): the builds succeeding with `RUN npm ci` and `RUN pip install`
//! in them shows those lines ran natively, with no npm or pip process.

use std::path::Path;

use crate::support::*;

/// The image archive `archive` copied to a `dir:` folder by skopeo.
fn unpacked(env: &Env, archive: &Path) -> std::path::PathBuf {
    let dir = env.path(&format!(
        "unpacked-{}-{}",
        archive.file_name().unwrap().to_string_lossy(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    skopeo_copy(
        &format!("oci-archive:{}", archive.display()),
        &format!("dir:{}", dir.display()),
    );
    dir
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The image config as written (skopeo's view drops Docker's fields).
fn raw_config(env: &Env, archive: &Path) -> serde_json::Value {
    let dir = unpacked(env, archive);
    let m = json(&dir.join("manifest.json"));
    json(
        &dir.join(
            m["config"]["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        ),
    )
}

/// Whether any layer of the image archive `archive` holds `path`
/// (listed with skopeo and tar, not hoist).
fn image_holds(env: &Env, archive: &Path, path: &str) -> bool {
    let dir = unpacked(env, archive);
    let manifest = json(&dir.join("manifest.json"));
    manifest["layers"].as_array().unwrap().iter().any(|l| {
        let blob = dir.join(l["digest"].as_str().unwrap().trim_start_matches("sha256:"));
        let listed = run("tar", &["-tzf", blob.to_str().unwrap()]);
        listed
            .stdout
            .lines()
            .any(|line| line.trim_start_matches("./").trim_end_matches('/') == path)
    })
}

/// Starts `image` (host network, `PORT=port`), waits for its health check
/// to pass (`podman healthcheck run`, up to 60 s) and returns what GET
/// /health answered; the container is removed either way.
pub(crate) fn healthy(image: &str, port: u16) -> String {
    let answer = podman_serve(image, port, "/health");
    let id = run(
        "podman",
        &[
            "run",
            "-d",
            "--network",
            "host",
            "-e",
            &format!("PORT={}", port + 1),
            image,
        ],
    )
    .ok()
    .trim()
    .to_owned();
    let mut last = None;
    for _ in 0..120 {
        let r = run("podman", &["healthcheck", "run", &id]);
        if r.status == 0 {
            last = None;
            break;
        }
        last = Some(format!("{}{}", r.stdout, r.stderr));
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    run("podman", &["rm", "-f", "-t", "0", &id]);
    assert!(last.is_none(), "the health check never passed: {last:?}");
    answer
}

/// Builds `app`'s Dockerfile with `args` into a docker archive (podman
/// honours HEALTHCHECK for docker-format images only) and an OCI archive.
pub(crate) fn build(
    env: &Env,
    app: &str,
    tag: &str,
    args: &[&str],
) -> (String, std::path::PathBuf) {
    build_with(env, app, tag, args, &[])
}

fn build_with(
    env: &Env,
    app: &str,
    tag: &str,
    args: &[&str],
    vars: &[(&str, &str)],
) -> (String, std::path::PathBuf) {
    let docker = env.path(&format!("{app}.docker.tar"));
    let oci = env.path(&format!("{app}.oci.tar"));
    let dockerfile = testdata(&format!("{app}/Dockerfile"));
    let context = testdata(app);
    let mut a = vec![
        "build",
        "-f",
        dockerfile.to_str().unwrap(),
        context.to_str().unwrap(),
        "--tag",
        tag,
    ];
    let outs = [
        format!("docker-archive:{}", docker.display()),
        format!("oci-archive:{}", oci.display()),
    ];
    for o in &outs {
        a.extend(["--output", o.as_str()]);
    }
    a.extend(args);
    let r = env.hoist_with(&a, vars);
    (format!("{}{}", r.ok(), r.stderr), docker)
}

#[test]
fn web_dockerfile_prod_and_dev_targets() {
    require_podman();
    let env = Env::new();
    let node = format!("NODE_IMAGE=oci-archive:{}", base("node.oci.tar").display());
    let build_image = format!("BUILD_IMAGE=oci-archive:{}", base("node.oci.tar").display());
    let tag = "localhost/hoist-df-web:prod";
    let (report, archive) = build(
        &env,
        "web",
        tag,
        &["--build-arg", &node, "--build-arg", &build_image],
    );
    assert!(
        !image_holds(&env, &base("node.oci.tar"), "usr/local/bin/npm")
            && !image_holds(&env, &base("node.oci.tar"), "usr/bin/npm"),
        "the node test base must have no npm for this test to show npm did not run"
    );
    assert!(
        report
            .contains("RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund (hoist: native, no npm ran)"),
        "npm ci was not done natively:\n{report}"
    );
    // A rebuild reuses every step and gives the same image: the history
    // does not depend on the cache.
    let digest = |r: &str| {
        r.lines()
            .find(|l| l.starts_with("sha256:"))
            .map(str::to_owned)
    };
    let (again, _) = build(
        &env,
        "web",
        tag,
        &["--build-arg", &node, "--build-arg", &build_image],
    );
    assert!(!again.contains("(built)"), "a step ran again:\n{again}");
    assert_eq!(digest(&report), digest(&again), "{report}\n{again}");
    assert!(digest(&report).is_some());
    let _loaded = Loaded::load(&archive, tag);
    let cfg = raw_config(&env, &env.path("web.oci.tar"));
    assert_eq!(cfg["config"]["User"], "1001:1001", "USER nextjs, as ids");
    assert_eq!(
        cfg["config"]["Cmd"],
        serde_json::json!(["node", "server.js"])
    );
    assert_eq!(cfg["config"]["WorkingDir"], "/app");
    assert!(cfg["config"]["ExposedPorts"]["3000/tcp"].is_object());
    assert_eq!(cfg["config"]["Healthcheck"]["Retries"], 3);
    let who = run("podman", &["run", "--rm", tag, "id", "-un"]);
    assert_eq!(who.ok().trim(), "nextjs");
    let answer = healthy(tag, free_port());
    assert!(answer.contains("ok"), "{answer}");

    // The dev target: every dependency (nodemon), no user, no health check.
    let tag = "localhost/hoist-df-web:dev";
    let (report, _) = build(
        &env,
        "web",
        tag,
        &[
            "--build-arg",
            &node,
            "--build-arg",
            &build_image,
            "--target",
            "dev",
        ],
    );
    assert!(
        report.contains(
            "RUN npm ci --ignore-scripts --no-audit --no-fund (hoist: native, no npm ran)"
        ),
        "{report}"
    );
    let cfg = raw_config(&env, &env.path("web.oci.tar"));
    assert!(cfg["config"].get("User").is_none(), "{cfg}");
    assert!(cfg["config"].get("Healthcheck").is_none(), "{cfg}");
    assert!(image_holds(
        &env,
        &env.path("web.oci.tar"),
        "app/node_modules/nodemon/package.json"
    ));
}

#[test]
fn agent_dockerfile_prod_runs_as_agent() {
    require_podman();
    let env = Env::new();
    let python = format!(
        "PYTHON_IMAGE=oci-archive:{}",
        base("python.oci.tar").display()
    );
    let tag = "localhost/hoist-df-agent:prod";
    let (report, archive) = build(&env, "agent", tag, &["--build-arg", &python]);
    assert!(
        report.contains(
            "RUN pip install --no-cache-dir -r requirements.txt (hoist: native, no pip ran)"
        ),
        "pip install was not done natively:\n{report}"
    );
    let _loaded = Loaded::load(&archive, tag);
    let who = run("podman", &["run", "--rm", tag, "id", "-un"]);
    assert_eq!(who.ok().trim(), "agent");
    let no_pip = run(
        "podman",
        &["run", "--rm", tag, "python3", "-m", "pip", "--version"],
    );
    assert_ne!(
        no_pip.status, 0,
        "the python test base must have no pip: pip did not run"
    );
    let answer = healthy(tag, free_port());
    assert_eq!(answer.trim(), r#"{"status": "ok"}"#);
}

/// Bad input: each an error naming the file, the line and the fix; no
/// output written.
#[test]
fn dockerfile_errors_name_the_line() {
    let env = Env::new();
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let out = env.path("out.tar");
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "FROM alpine\nFROBNICATE x\n",
            &[],
            "Dockerfile:2:1: unknown instruction `FROBNICATE`: a Dockerfile instruction is one of FROM",
        ),
        (
            "FROM alpine AS a\n",
            &["--target", "prod"],
            "--target prod: there is no stage `prod`; its stages are a",
        ),
        (
            "FROM alpine\nADD git@example.com:x.git /x/\n",
            &[],
            "Dockerfile:2:1: ADD git@example.com:x.git: hoist clones git repositories over http(s) only",
        ),
        (
            "FROM alpine\nRUN --mount=type=ssh git clone git@example.com:x\n",
            &[],
            "Dockerfile:2:1: RUN --mount=type=ssh: not supported yet",
        ),
    ];
    for (text, extra, want) in cases {
        let file = ctx.join("Dockerfile");
        std::fs::write(&file, text).unwrap();
        let mut a = vec![
            "build",
            "-f",
            file.to_str().unwrap(),
            ctx.to_str().unwrap(),
            "--offline",
        ];
        let o = format!("oci-archive:{}", out.display());
        a.extend(["--output", o.as_str()]);
        a.extend(extra.iter());
        env.hoist(&a).fails_with(want);
        assert!(!out.exists(), "{text}: an output was written");
    }
}

/// Every path of `image`'s filesystem with its type, mode, owner and size
/// (`find / -xdev` run in the image by `tool`), without what the runtime
/// mounts in.
fn tree_of(tool: &dyn Fn(&[&str]) -> Run, image: &str) -> Vec<String> {
    let out = tool(&[
        "run",
        "--rm",
        "--network=host",
        "--user",
        "0",
        "--entrypoint",
        "find",
        image,
        "/",
        "-xdev",
        "-printf",
        "%p %y %m %U:%G %s\n",
    ]);
    // What the runtime makes (the root folder's mode, mounted files), and
    // hoist's documented difference (README, "Dockerfiles"): npm's hidden
    // lockfile, which npm rebuilds when missing.
    let skip = [
        "/",
        "/etc/hosts",
        "/etc/hostname",
        "/etc/resolv.conf",
        "/run/.containerenv",
        "/.dockerenv",
        "/app/node_modules/.package-lock.json",
    ];
    let mut lines: Vec<String> = out
        .ok()
        .lines()
        .filter(|l| !skip.iter().any(|s| l.split(' ').next() == Some(s)))
        // Folder sizes depend on the filesystem the runtime unpacked to.
        .map(|l| match l.split(' ').nth(1) {
            Some("d") => l.rsplit_once(' ').map_or(l, |(a, _)| a).to_owned(),
            _ => l.to_owned(),
        })
        .collect();
    lines.sort();
    lines
}

/// Done when: testdata/web/Dockerfile built with hoist and with `docker
/// build` (BuildKit) gives the same file tree and the same config, but
/// for hoist's documented differences (README: USER written as ids).
#[test]
fn web_dockerfile_matches_docker_build() {
    require_podman();
    let Some(host) = std::env::var_os("HOIST_TEST_DOCKER_HOST") else {
        panic!("no dockerd for tests: run `scripts/dockerd start` and set HOIST_TEST_DOCKER_HOST (scripts/test does)");
    };
    let host = host.to_string_lossy().into_owned();
    let docker = |args: &[&str]| {
        run_env(
            "/usr/bin/docker",
            args,
            &[("DOCKER_HOST", &host), ("DOCKER_BUILDKIT", "1")],
        )
    };
    let env = Env::new();
    // The same bases for both, loaded into docker with skopeo.
    let mut build_args = Vec::new();
    for (arg, file, name) in [
        ("NODE_IMAGE", "node.oci.tar", "hoist-df-node:base"),
        ("BUILD_IMAGE", "node-npm.oci.tar", "hoist-df-node-npm:base"),
    ] {
        let tar = env.path(&format!("{name}.docker.tar").replace(':', "-"));
        skopeo_copy(
            &format!("oci-archive:{}", base(file).display()),
            &format!("docker-archive:{}:{name}", tar.display()),
        );
        docker(&["load", "-i", tar.to_str().unwrap()]).ok();
        build_args.push((arg, name, format!("oci-archive:{}", base(file).display())));
    }
    let ctx = testdata("web");
    let mut dargs = vec!["build", "--network", "host", "-t", "hoist-df-web:docker"];
    let pairs: Vec<String> = build_args
        .iter()
        .map(|(a, n, _)| format!("{a}={n}"))
        .collect();
    for p in &pairs {
        dargs.extend(["--build-arg", p.as_str()]);
    }
    dargs.push(ctx.to_str().unwrap());
    docker(&dargs).ok();

    let tag = "localhost/hoist-df-web:cmp";
    let hargs: Vec<String> = build_args
        .iter()
        .map(|(a, _, t)| format!("{a}={t}"))
        .collect();
    let mut a: Vec<&str> = Vec::new();
    for h in &hargs {
        a.extend(["--build-arg", h.as_str()]);
    }
    // useradd writes the day of SOURCE_DATE_EPOCH in /etc/shadow where
    // docker's writes the day of the build: the same day here.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let (report, archive) = build_with(&env, "web", tag, &a, &[("SOURCE_DATE_EPOCH", &now)]);
    assert!(
        report.contains("useradd --uid 1001") && report.contains("(hoist: native)"),
        "the user step was not done natively:\n{report}"
    );
    let _loaded = Loaded::load(&archive, tag);

    let podman = |args: &[&str]| run("podman", args);
    let theirs = tree_of(&docker, "hoist-df-web:docker");
    let ours = tree_of(&podman, tag);
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter()
            .filter(|l| !b.contains(l))
            .take(20)
            .cloned()
            .collect()
    };
    assert!(
        theirs.len() > 1000,
        "docker's tree is too small: {}",
        theirs.len()
    );
    assert_eq!(
        (only(&theirs, &ours), only(&ours, &theirs)),
        (Vec::new(), Vec::new()),
        "file trees differ (docker only, hoist only)"
    );

    let dcfg: serde_json::Value =
        serde_json::from_str(docker(&["image", "inspect", "hoist-df-web:docker"]).ok()).unwrap();
    let dcfg = &dcfg[0]["Config"];
    let ours = raw_config(&env, &env.path("web.oci.tar"));
    let ours = &ours["config"];
    for key in [
        "Env",
        "Cmd",
        "Entrypoint",
        "ExposedPorts",
        "Healthcheck",
        "WorkingDir",
        "Labels",
    ] {
        let (d, o) = (&dcfg[key], &ours[key]);
        let empty = |v: &serde_json::Value| {
            v.is_null() || v == &serde_json::json!({}) || v == &serde_json::json!([]) || v == ""
        };
        assert!(
            d == o || (empty(d) && empty(o)),
            "{key}: docker {d}, hoist {o}"
        );
    }
    // USER: docker keeps the name, hoist writes the ids it resolves to.
    assert_eq!(dcfg["User"], "nextjs");
    assert_eq!(ours["User"], "1001:1001");
    docker(&[
        "rmi",
        "-f",
        "hoist-df-web:docker",
        "hoist-df-node:base",
        "hoist-df-node-npm:base",
    ]);
}

/// Done when: `hoist build -f docker-compose.prod.yml` builds both
/// services' images, side by side, one archive each; they run as their
/// users under podman and pass their health checks.
#[test]
fn compose_prod_file_builds_both_images() {
    require_podman();
    let env = Env::new();
    let dir = testdata("compose-seed");
    let out = env.path("out");
    let args: Vec<String> = [
        ("NODE_IMAGE", "node.oci.tar"),
        ("BUILD_IMAGE", "node.oci.tar"),
        ("PYTHON_IMAGE", "python.oci.tar"),
    ]
    .iter()
    .map(|(k, f)| format!("{k}=oci-archive:{}", base(f).display()))
    .collect();
    let file = dir.join("docker-compose.prod.yml");
    let mut a = vec![
        "build",
        "-f",
        file.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
    ];
    for x in &args {
        a.extend(["--build-arg", x.as_str()]);
    }
    let r = env.hoist(&a);
    let report = format!("{}{}", r.ok(), r.stderr);
    assert!(report.contains("(hoist: native, no npm ran)"), "{report}");
    assert!(report.contains("(hoist: native, no pip ran)"), "{report}");
    for (service, user, image) in [
        ("web", "nextjs", "hoist-example-web"),
        ("agent", "agent", "hoist-example-agent"),
    ] {
        let archive = out.join(format!("{service}-prod.tar"));
        assert!(
            archive.is_file(),
            "{} missing:\n{report}",
            archive.display()
        );
        // podman honours HEALTHCHECK in docker-format images: converted by
        // skopeo, the config as hoist wrote it.
        let docker = env.path(&format!("{service}.docker.tar"));
        let tag = format!("localhost/{image}:compose");
        skopeo_copy(
            &format!("oci-archive:{}", archive.display()),
            &format!("docker-archive:{}:{tag}", docker.display()),
        );
        let _loaded = Loaded::load(&docker, &tag);
        let who = run("podman", &["run", "--rm", &tag, "id", "-un"]);
        assert_eq!(who.ok().trim(), user);
        // The compose file's health checks name fixed ports, the images'
        // own read $PORT: the image's check is the one podman runs.
        let answer = healthy(&tag, free_port());
        assert!(answer.contains("ok"), "{service}: {answer}");
    }
    // The dev file alone: the dev targets, named <project>-<service>.
    let file = dir.join("docker-compose.yml");
    let mut a = vec!["build", "-f", file.to_str().unwrap(), "--dry-run", "web"];
    for x in &args {
        a.extend(["--build-arg", x.as_str()]);
    }
    let plan = env.hoist(&a).ok().to_owned();
    assert!(plan.contains("image dev ("), "{plan}");
    assert!(!plan.contains("agent"), "only the service named: {plan}");
}

/// Every layer of the image archive `archive`, decompressed, with its
/// entry list (as GNU tar lists it).
fn layers_of(env: &Env, archive: &Path) -> Vec<(Vec<u8>, Vec<String>)> {
    let dir = unpacked(env, archive);
    let manifest = json(&dir.join("manifest.json"));
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let blob = dir.join(l["digest"].as_str().unwrap().trim_start_matches("sha256:"));
            let bytes = std::process::Command::new("gzip")
                .args(["-dc", blob.to_str().unwrap()])
                .output()
                .unwrap()
                .stdout;
            let listed = run("tar", &["-tzf", blob.to_str().unwrap()]);
            let names = listed
                .ok()
                .lines()
                .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_owned())
                .collect();
            (bytes, names)
        })
        .collect()
}

/// The content of `path` in the topmost layer of `archive` that has it.
fn file_in(env: &Env, archive: &Path, path: &str) -> Option<String> {
    let dir = unpacked(env, archive);
    let manifest = json(&dir.join("manifest.json"));
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find_map(|l| {
            let blob = dir.join(l["digest"].as_str().unwrap().trim_start_matches("sha256:"));
            let listed = run("tar", &["-tzf", blob.to_str().unwrap()]);
            let name = listed
                .ok()
                .lines()
                .find(|n| n.trim_start_matches("./") == path)?
                .to_owned();
            Some(
                run("tar", &["-xzOf", blob.to_str().unwrap(), &name])
                    .ok()
                    .to_owned(),
            )
        })
}

/// Builds the Dockerfile `text` in `ctx` on busybox into `out`, with
/// `extra` flags.
fn build_on_busybox(env: &Env, ctx: &Path, text: &str, out: &Path, extra: &[&str]) -> Run {
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("ARG BASE\nFROM ${{BASE}} AS first\n{text}"),
    )
    .unwrap();
    let base_arg = format!("BASE=oci-archive:{}", base("busybox.oci.tar").display());
    let o = format!("oci-archive:{}", out.display());
    let file = ctx.join("Dockerfile");
    let mut a = vec![
        "build",
        "-f",
        file.to_str().unwrap(),
        ctx.to_str().unwrap(),
        "--build-arg",
        &base_arg,
        "--output",
        &o,
    ];
    a.extend(extra);
    env.hoist(&a)
}

/// RUN --mount=type=cache: the folder outlives the build (a rerun step
/// sees what the last run left), is counted by `hoist cache du` and
/// removed by `hoist cache prune --all`, and nothing of it is in a layer.
#[test]
fn run_cache_mount_persists_between_builds() {
    let env = Env::new();
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let out = env.path("out.tar");
    let text = "COPY v.txt /v.txt\nRUN --mount=type=cache,target=/root/.cache sh -c 'echo x >> /root/.cache/log; wc -l < /root/.cache/log > /count'\n";
    for (round, want) in [("1", "1"), ("2", "2")] {
        std::fs::write(ctx.join("v.txt"), round).unwrap();
        build_on_busybox(&env, &ctx, text, &out, &[]).ok();
        let count = file_in(&env, &out, "count").expect("the step wrote /count");
        assert_eq!(count.trim(), want, "round {round}");
    }
    for (_, names) in layers_of(&env, &out) {
        assert!(
            !names.iter().any(|n| n.starts_with("root/.cache")),
            "the cache mount is in a layer: {names:?}"
        );
    }
    let folders: Vec<_> = std::fs::read_dir(env.path("cache/mounts/cache"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert_eq!(folders.len(), 1, "one folder for the id /root/.cache");
    let log = std::fs::read_to_string(folders[0].path().join("log")).unwrap();
    assert_eq!(log, "x\nx\n");
    let du = env.hoist(&["cache", "du"]);
    assert!(
        du.ok().lines().any(|l| l.starts_with("mounts ")),
        "{}",
        du.stdout
    );
    env.hoist(&["cache", "prune", "--all"]).ok();
    assert!(
        !folders[0].path().exists(),
        "prune --all removes the cache folder"
    );
}

/// RUN --mount=type=secret: readable in the step (as a file and as a
/// variable), in no layer; a required secret not given is an error naming
/// the flag.
#[test]
fn run_secret_mount_stays_out_of_layers() {
    let env = Env::new();
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let secret = env.path("tok.txt");
    std::fs::write(&secret, "s3cr3t-value-42").unwrap();
    let out = env.path("out.tar");
    let text = "RUN --mount=type=secret,id=tok --mount=type=secret,id=tok,env=TOK sh -c 'test \"$(cat /run/secrets/tok)\" = s3cr3t-value-42 && test \"$TOK\" = s3cr3t-value-42 && echo ok > /seen'\n";
    let src = format!("id=tok,src={}", secret.display());
    build_on_busybox(&env, &ctx, text, &out, &["--secret", &src]).ok();
    assert_eq!(
        file_in(&env, &out, "seen").as_deref().map(str::trim),
        Some("ok")
    );
    for (bytes, names) in layers_of(&env, &out) {
        assert!(
            !names.iter().any(|n| n.starts_with("run/secrets")),
            "the secret's mount point is in a layer: {names:?}"
        );
        assert!(
            !bytes.windows(15).any(|w| w == b"s3cr3t-value-42"),
            "the secret's value is in a layer"
        );
    }
    // From an environment variable of hoist's.
    let r = env.hoist_with(
        &[
            "build",
            "-f",
            ctx.join("Dockerfile").to_str().unwrap(),
            ctx.to_str().unwrap(),
            "--build-arg",
            &format!("BASE=oci-archive:{}", base("busybox.oci.tar").display()),
            "--output",
            &format!("oci-archive:{}", out.display()),
            "--secret",
            "id=tok,env=HOIST_TEST_TOK",
            "--no-cache",
        ],
        &[("HOIST_TEST_TOK", "s3cr3t-value-42")],
    );
    r.ok();
    std::fs::remove_file(&out).unwrap();
    build_on_busybox(
        &env,
        &ctx,
        "RUN --mount=type=secret,id=missing,required=true cat /run/secrets/missing\n",
        &out,
        &[],
    )
    .fails_with("RUN --mount=type=secret,id=missing: the secret `missing` is required and was not given; pass it with `hoist build --secret id=missing,src=FILE`");
    assert!(!out.exists());
}

/// RUN --mount=type=bind of the context (what .dockerignore lets
/// through, read-only) and of another stage, and a tmpfs: read by the
/// step, in no layer.
#[test]
fn run_bind_mounts_of_context_and_stage() {
    let env = Env::new();
    let ctx = env.path("ctx");
    std::fs::create_dir_all(ctx.join("sub")).unwrap();
    std::fs::write(ctx.join("sub/data.txt"), "from the context\n").unwrap();
    std::fs::write(ctx.join("private.env"), "nope\n").unwrap();
    std::fs::write(ctx.join(".dockerignore"), "private.env\n").unwrap();
    let out = env.path("out.tar");
    let text = "RUN mkdir -p /out && echo built > /out/artifact\n\
FROM ${BASE}\n\
RUN --mount=type=bind,source=.,target=/src --mount=type=bind,from=first,source=/out,target=/mnt/out --mount=type=tmpfs,target=/scratch sh -c 'cat /src/sub/data.txt > /got; ls -a /src > /listing; cat /mnt/out/artifact > /artifact; echo t > /scratch/t; if touch /src/new 2>/dev/null; then echo writable > /rw; fi'\n";
    build_on_busybox(&env, &ctx, text, &out, &[]).ok();
    assert_eq!(
        file_in(&env, &out, "got").as_deref(),
        Some("from the context\n")
    );
    let listing = file_in(&env, &out, "listing").unwrap();
    assert!(
        listing.contains("sub") && !listing.contains("private.env"),
        "{listing}"
    );
    assert_eq!(file_in(&env, &out, "artifact").as_deref(), Some("built\n"));
    assert_eq!(
        file_in(&env, &out, "rw"),
        None,
        "the context bind is read-only"
    );
    for (_, names) in layers_of(&env, &out) {
        for n in &names {
            assert!(
                !(n == "src"
                    || n.starts_with("src/")
                    || n.starts_with("mnt/out")
                    || n.starts_with("scratch")),
                "a mount is in a layer: {n}"
            );
        }
    }
    // A change to the bound files reruns the step.
    std::fs::write(ctx.join("sub/data.txt"), "changed\n").unwrap();
    build_on_busybox(&env, &ctx, text, &out, &[]).ok();
    assert_eq!(file_in(&env, &out, "got").as_deref(), Some("changed\n"));
}

/// As an ordinary user (the sandbox maps a subordinate range): a cache
/// folder made for `uid=1000` and a secret given to that user are theirs
/// in the step. (Known gap: `hoist cache prune` as that user cannot yet
/// remove files the step's user left in the folder.)
#[test]
fn run_mounts_rootless_with_owners() {
    let env = Env::for_who(Who::Rootless);
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let secret = env.path("tok.txt");
    std::fs::write(&secret, "rootless-secret").unwrap();
    let u = rootless();
    for p in [&ctx, &secret] {
        std::os::unix::fs::chown(p, Some(u.uid), Some(u.gid)).unwrap();
    }
    let out = env.path("out.tar");
    let text = "USER 1000:1000\nRUN --mount=type=cache,target=/c,uid=1000,gid=1000 --mount=type=secret,id=tok,uid=1000 sh -c 'echo x >> /c/log && test \"$(cat /run/secrets/tok)\" = rootless-secret && stat -c %u /c > /w/owner'\n";
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("ARG BASE\nFROM ${{BASE}}\nRUN mkdir -m 777 /w\n{text}"),
    )
    .unwrap();
    let base_arg = format!("BASE=oci-archive:{}", base("busybox.oci.tar").display());
    let o = format!("oci-archive:{}", out.display());
    let src = format!("id=tok,src={}", secret.display());
    let file = ctx.join("Dockerfile");
    env.hoist_by(
        Who::Rootless,
        &[
            "build",
            "-f",
            file.to_str().unwrap(),
            ctx.to_str().unwrap(),
            "--build-arg",
            &base_arg,
            "--output",
            &o,
            "--secret",
            &src,
        ],
    )
    .ok();
    let owner = file_in(&env, &out, "w/owner");
    assert_eq!(owner.as_deref().map(str::trim), Some("1000"));
}
