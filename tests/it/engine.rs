//! `--output docker-daemon:` and `containers-storage:`, and `--load`:
//! images streamed into the real test dockerd and podman, then run.

use std::path::Path;
use std::process::Command;

use crate::support::*;

/// The test dockerd's `unix://` address.
fn docker_host() -> String {
    match std::env::var("HOIST_TEST_DOCKER_HOST") {
        Ok(h) => h,
        Err(_) => panic!("no dockerd for tests: run `scripts/dockerd start` and set HOIST_TEST_DOCKER_HOST (scripts/test does)"),
    }
}

fn docker(args: &[&str]) -> Run {
    run_env("/usr/bin/docker", args, &[("DOCKER_HOST", &docker_host())])
}

/// Runs hoist with exactly the engine settings given: DOCKER_HOST and the
/// docker CLI's config are taken from `env` only, and TMPDIR is a fresh
/// folder that must stay empty.
fn hoist_engine(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let tmp = env.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
    cmd.args(args)
        .env("HOIST_CACHE", env.path("cache"))
        .env("TMPDIR", &tmp)
        .env("DOCKER_CONFIG", env.path("docker-config"))
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION")
        .env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run hoist");
    Run {
        what: format!("hoist {}", args.join(" ")),
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `hoist build` of the small app on Alpine (user 1001) with `extra`.
fn build_args(env: &Env, extra: &[&str]) -> Vec<String> {
    small_app(&env.path("app"));
    let mut args: Vec<String> = [
        "build",
        &env.path("app").display().to_string(),
        "--base",
        &format!("oci-archive:{}", base("alpine.oci.tar").display()),
        "--platform",
        "linux/amd64",
        "--user",
        "app:1001",
        "--cmd",
        r#"["sh","-c","echo served by $(id -u) from $(cat /app/lib/util.js)"]"#,
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn build(env: &Env, extra: &[&str], vars: &[(&str, &str)]) -> Run {
    let args = build_args(env, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    hoist_engine(env, &args, vars)
}

/// Nothing was written beside hoist: no archive staged in TMPDIR.
fn assert_nothing_staged(env: &Env) {
    let left: Vec<_> = std::fs::read_dir(env.path("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

const SAID: &str = "served by 1001 from module.exports = 1";

#[test]
fn docker_daemon_output_loads_and_runs() {
    let env = Env::new();
    let host = docker_host();
    let name = "hoist-it-engine/docker:one";
    // zstd layers: Docker 20.10 reads none, and gets them uncompressed.
    let built = build(
        &env,
        &[
            "--compression",
            "zstd",
            "--output",
            &format!("docker-daemon:{name}"),
            "--tag",
            "hoist-it-engine/docker:two",
        ],
        &[("DOCKER_HOST", &host)],
    );
    built.ok();
    assert!(
        built
            .stderr
            .contains("docker-daemon:hoist-it-engine/docker:one"),
        "{}",
        built.stderr
    );
    assert_nothing_staged(&env);
    let out = docker(&["run", "--rm", "--network=host", name]);
    assert_eq!(out.ok().trim(), SAID);
    // The --tag name too, spelled as `docker build -t` would name it.
    let inspect = docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.User}} {{.Id}}",
        "hoist-it-engine/docker:two",
    ]);
    let text = inspect.ok().trim().to_owned();
    let (user, id) = text.split_once(' ').unwrap();
    assert_eq!(user, "1001:1001");
    // Docker's image ID is the config digest hoist wrote.
    let layout = env.path("layout");
    build(
        &env,
        &["--output", &format!("oci:{}", layout.display())],
        &[],
    )
    .ok();
    let config = skopeo_raw(&format!("oci:{}", layout.display()))["config"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(id, config);
    docker(&["rmi", "-f", name, "hoist-it-engine/docker:two"]).ok();
}

#[test]
fn containers_storage_output_loads_and_runs() {
    require_podman();
    let env = Env::new();
    let name = "hoist-it-engine/podman:one";
    let built = {
        let _held = hold_podman_store();
        build(
            &env,
            &[
                "--output",
                &format!("containers-storage:{name}"),
                "--tag",
                "hoist-it-engine/podman:two",
            ],
            &[],
        )
    };
    let digest = built.ok().trim().to_owned();
    assert_nothing_staged(&env);
    let full = format!("localhost/{name}");
    let out = run("podman", &["run", "--rm", &full]);
    assert_eq!(out.ok().trim(), SAID);
    // podman keeps the manifest hoist built: the digest hoist printed.
    let digests = run(
        "podman",
        &[
            "image",
            "inspect",
            "--format",
            "{{.Digest}}",
            "localhost/hoist-it-engine/podman:two",
        ],
    );
    assert_eq!(digests.ok().trim(), digest);
    podman_store(&["rmi", "-f", &full, "localhost/hoist-it-engine/podman:two"]).ok();
}

#[test]
fn load_picks_docker_when_docker_host_is_set() {
    let env = Env::new();
    let host = docker_host();
    let tag = "hoist-it-engine/load:docker";
    build(&env, &["--load", "--tag", tag], &[("DOCKER_HOST", &host)]).ok();
    let out = docker(&["run", "--rm", "--network=host", tag]);
    assert_eq!(out.ok().trim(), SAID);
    docker(&["rmi", "-f", tag]).ok();
}

/// A docker CLI config whose current context points at `socket`.
fn docker_context(env: &Env, socket: &Path) {
    use sha2::Digest;
    let dir = env.path("docker-config");
    let meta = dir
        .join("contexts/meta")
        .join(hex::encode(sha2::Sha256::digest(b"elsewhere")));
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(
        dir.join("config.json"),
        r#"{"auths":{},"currentContext":"elsewhere"}"#,
    )
    .unwrap();
    std::fs::write(
        meta.join("meta.json"),
        format!(
            r#"{{"Name":"elsewhere","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"unix://{}","SkipTLSVerify":false}}}}}}"#,
            socket.display()
        ),
    )
    .unwrap();
}

#[test]
fn load_follows_the_docker_context_and_falls_back_to_podman() {
    require_podman();
    let env = Env::new();
    // The current context names the test dockerd: --load goes there.
    let host = docker_host();
    let socket = host.strip_prefix("unix://").unwrap();
    docker_context(&env, Path::new(socket));
    let tag = "hoist-it-engine/load:context";
    build(&env, &["--load", "--tag", tag], &[]).ok();
    assert_eq!(
        docker(&["run", "--rm", "--network=host", tag]).ok().trim(),
        SAID
    );
    docker(&["rmi", "-f", tag]).ok();

    // A context whose socket answers nothing: podman gets it.
    docker_context(&env, &env.path("no-daemon.sock"));
    let tag = "hoist-it-engine/load:podman";
    {
        let _held = hold_podman_store();
        build(&env, &["--load", "--tag", tag], &[]).ok();
    }
    let full = format!("localhost/{tag}");
    assert_eq!(run("podman", &["run", "--rm", &full]).ok().trim(), SAID);
    podman_store(&["rmi", "-f", &full]).ok();
}

#[test]
fn load_without_any_engine_names_both() {
    let env = Env::new();
    docker_context(&env, &env.path("no-daemon.sock"));
    // No podman on PATH either: only the folder of a shell.
    let r = build(&env, &["--load", "--tag", "x"], &[("PATH", "/nonexistent")]);
    r.fails_with("--load found no container engine");
    for needle in [
        "no-daemon.sock",
        "`podman` is not on PATH",
        "--output docker-daemon:NAME",
    ] {
        assert!(r.stderr.contains(needle), "{needle}: {}", r.stderr);
    }
}

#[test]
fn engine_errors_name_the_socket_or_say_the_daemons_words() {
    let env = Env::new();
    let missing = env.path("nowhere/docker.sock");
    let r = build(
        &env,
        &["--output", "docker-daemon:hoist-it-engine/err:1"],
        &[("DOCKER_HOST", &format!("unix://{}", missing.display()))],
    );
    r.fails_with(&format!(
        "cannot reach the Docker daemon at {}",
        missing.display()
    ));
    assert!(r.stderr.contains("Start Docker"), "{}", r.stderr);

    build(
        &env,
        &["--output", "docker-daemon:hoist-it-engine/err:1"],
        &[("DOCKER_HOST", "tcp://127.0.0.1:2375")],
    )
    .fails_with("over its unix socket only");

    // The real daemon's refusal, in its own words.
    let r = build(
        &env,
        &["--output", "docker-daemon:hoist-it-engine/err:1"],
        &[
            ("DOCKER_HOST", &docker_host()),
            ("DOCKER_API_VERSION", "9.99"),
        ],
    );
    r.fails_with("refused the image: client version 9.99 is too new");

    // podman's own words when its store cannot be opened.
    require_podman();
    let conf = env.path("storage.conf");
    std::fs::write(
        &conf,
        format!(
            "[storage]\ndriver = \"no-such-driver\"\ngraphroot = \"{0}/g\"\nrunroot = \"{0}/r\"\n",
            env.path("podman").display()
        ),
    )
    .unwrap();
    let r = build(
        &env,
        &["--output", "containers-storage:hoist-it-engine/err:1"],
        &[("CONTAINERS_STORAGE_CONF", &conf.display().to_string())],
    );
    r.fails_with("`podman load --quiet` failed: Error:");
    assert!(r.stderr.contains("no-such-driver"), "{}", r.stderr);

    // An engine is an output only.
    hoist_engine(&env, &["inspect", "docker-daemon:alpine:3.20"], &[])
        .fails_with("docker-daemon:alpine:3.20 is an output only");
}

/// podman's leftovers in its temporary folder (where `podman load` copies
/// its standard input).
fn podman_tmp_files() -> Vec<String> {
    let Some(dir) = std::env::var_os("HOIST_CONTAINERS_DIR") else {
        return Vec::new();
    };
    match std::fs::read_dir(Path::new(&dir).join("tmp")) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("podman"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn a_corrupt_store_blob_loads_nothing() {
    require_podman();
    let env = Env::new();
    let layout = env.path("layout");
    build(
        &env,
        &["--output", &format!("oci:{}", layout.display())],
        &[],
    )
    .ok();
    let m = skopeo_raw(&format!("oci:{}", layout.display()));
    let base_layer = m["layers"][0]["digest"].as_str().unwrap();
    let blob = env
        .path("cache/blobs/sha256")
        .join(base_layer.strip_prefix("sha256:").unwrap());
    // One byte flipped near the end: the stream is well under way when
    // the digest check fails.
    let mut bytes = std::fs::read(&blob).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();

    let name = "hoist-it-engine/corrupt:1";
    {
        let _held = hold_podman_store();
        let before = podman_tmp_files();
        build(
            &env,
            &["--output", &format!("containers-storage:{name}")],
            &[],
        )
        .fails_with("does not match its digest");
        assert_eq!(
            podman_tmp_files(),
            before,
            "podman's copy of the cut-off archive"
        );
    }
    let exists = run("podman", &["image", "exists", &format!("localhost/{name}")]);
    assert_eq!(exists.status, 1, "podman loaded a cut-off archive");

    build(
        &env,
        &["--output", &format!("docker-daemon:{name}")],
        &[("DOCKER_HOST", &docker_host())],
    )
    .fails_with(base_layer);
    let inspect = docker(&["image", "inspect", name]);
    assert_ne!(inspect.status, 0, "docker loaded a corrupt image");
    assert_nothing_staged(&env);
}

/// Runs `args` as the rootless test account, under its own podman
/// configuration (`scripts/podman-env` with the lab in `env`).
fn as_rootless(env: &Env, args: &[&str]) -> Run {
    use std::os::unix::process::CommandExt;
    let u = rootless();
    let runtime = env.path("run");
    if !runtime.exists() {
        std::fs::create_dir(&runtime).unwrap();
        std::os::unix::fs::chown(&runtime, Some(u.uid), Some(u.gid)).unwrap();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/podman-env");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(". {} && exec \"$@\"", script.display()))
        .arg("bash")
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", env.tmp.path())
        .env("USER", u.name)
        .env("LOGNAME", u.name)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("HOIST_LAB_TMP", env.path("lab"))
        .env("HOIST_CACHE", env.path("cache"))
        .current_dir(env.tmp.path())
        .uid(u.uid)
        .gid(u.gid)
        .output()
        .expect("run as the rootless account");
    Run {
        what: format!("{} (as {})", args.join(" "), u.name),
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn containers_storage_loads_into_the_rootless_users_store() {
    require_podman();
    let env = Env::for_who(Who::Rootless);
    let name = "hoist-it-engine/rootless:1";
    let args = build_args(&env, &["--output", &format!("containers-storage:{name}")]);
    let mut cmd = vec![env!("CARGO_BIN_EXE_hoist")];
    cmd.extend(args.iter().map(String::as_str));
    let built = as_rootless(&env, &cmd);
    built.ok();
    let full = format!("localhost/{name}");
    let ran = as_rootless(&env, &["podman", "run", "--rm", &full]);
    // Stop the user's podman pause process (its pid file is in podman's
    // tmp_dir, which scripts/podman-env puts in the lab) before judging.
    let pid_file = env.path("lab/containers-overlay/tmp/pause.pid");
    match std::fs::read_to_string(&pid_file) {
        Ok(pid) => drop(run("kill", &[pid.trim()])),
        Err(e) => eprintln!(
            "no podman pause process to stop ({}: {e})",
            pid_file.display()
        ),
    }
    assert_eq!(ran.ok().trim(), SAID);
    // In that user's store, not root's.
    assert_eq!(run("podman", &["image", "exists", &full]).status, 1);
}

/// `hoist pull` writes through the same outputs: a registry image goes
/// straight into both engines.
#[test]
fn pull_loads_into_both_engines() {
    require_podman();
    let env = Env::new();
    let plain = std::env::var("HOIST_REGISTRY_PLAIN").unwrap_or_else(|_| {
        panic!("HOIST_REGISTRY_PLAIN is not set: run `eval \"$(scripts/registry start)\"` first (scripts/test does)")
    });
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let src = format!("{plain}/it/engine-pull-{nanos}:3.20");
    let archive = format!("oci-archive:{}", base("alpine.oci.tar").display());
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            "--all",
            "--dest-tls-verify=false",
            &archive,
            &format!("docker://{src}"),
        ],
    )
    .ok();
    let name = "hoist-it-engine/pulled:1";
    {
        let _held = hold_podman_store();
        hoist_engine(
            &env,
            &[
                "pull",
                &src,
                "--platform",
                "linux/amd64",
                "--output",
                &format!("docker-daemon:{name}"),
                "--output",
                &format!("containers-storage:{name}"),
            ],
            &[("DOCKER_HOST", &docker_host())],
        )
        .ok();
    }
    let release = |r: Run| r.ok().trim().to_owned();
    let from_docker = release(docker(&[
        "run",
        "--rm",
        "--network=host",
        name,
        "cat",
        "/etc/alpine-release",
    ]));
    let full = format!("localhost/{name}");
    let from_podman = release(run(
        "podman",
        &["run", "--rm", &full, "cat", "/etc/alpine-release"],
    ));
    assert!(from_docker.starts_with("3."), "{from_docker}");
    assert_eq!(from_docker, from_podman);
    docker(&["rmi", "-f", name, &src]).ok();
    podman_store(&["rmi", "-f", &full]).ok();
}
