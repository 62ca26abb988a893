//! `[[run]]` steps: commands run in hoist's own namespaces sandbox on the
//! base, each step's changes becoming a layer, checked by reading the
//! layer with GNU tar and running the image under podman.

use std::path::Path;

use crate::support::*;

/// A context whose hoist.toml builds on `base` with `steps` (TOML).
fn project(env: &Env, base: &str, steps: &str) -> String {
    let dir = env.path("ctx");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("app.txt"), "app\n").unwrap();
    let base = base_path(base);
    std::fs::write(
        dir.join("hoist.toml"),
        format!("[image]\nbase = \"oci-archive:{base}\"\ncmd = [\"sh\"]\n\n{steps}"),
    )
    .unwrap();
    dir.display().to_string()
}

fn base_path(rel: &str) -> String {
    base(rel).display().to_string()
}

/// The entries of the step layer (`hoist run: ...`) of the image in
/// `layout`, as `tar tv` lists them: "mode uid/gid path".
fn run_layer(layout: &Path) -> Vec<String> {
    let digest = layer_digest(layout, "hoist run").expect("the image has a run layer");
    let blob = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let out = run("tar", &["tvzf", &blob.display().to_string()]);
    out.ok()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {}", f[0], f[1], f[f.len() - 1])
        })
        .collect()
}

/// Scratch folders left in the store's sandbox folder.
fn scratch_left(env: &Env) -> Vec<String> {
    std::fs::read_dir(env.path("cache/sandbox"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Alpine's package repository is not reachable from the test hosts, so
/// the Alpine step uses busybox alone (no apk).
#[test]
fn an_alpine_busybox_step_is_exactly_its_changes_with_a_whiteout() {
    let env = Env::new();
    let ctx = project(
        &env,
        "alpine.oci.tar",
        "[[run]]\ncommand = [\"sh\", \"-c\", \"mkdir /data && echo hi > /data/x && chown 1000:1000 /data/x && rm /etc/motd\"]\n",
    );
    let out = env.path("out");
    let oci = format!("oci:{}", out.display());
    env.hoist(&["build", &ctx, "--output", &oci]).ok();
    assert_eq!(
        run_layer(&out),
        [
            "drwxr-xr-x 0/0 data",
            "-rw-r--r-- 1000/1000 data/x",
            "drwxr-xr-x 0/0 etc",
            "-rw-r--r-- 0/0 etc/.wh.motd",
        ],
        "the step's layer holds what it changed, owners as the sandbox saw them"
    );
    assert!(scratch_left(&env).is_empty(), "{:?}", scratch_left(&env));

    // The same step again is the cached layer.
    let again = env.hoist(&["build", &ctx, "--output", &oci]);
    again.ok();
    assert!(
        again
            .stderr
            .lines()
            .any(|l| l.trim_start().starts_with("run ") && l.ends_with("reused")),
        "{}",
        again.stderr
    );

    require_podman();
    let tar = env.path("img.tar").display().to_string();
    env.hoist(&[
        "build",
        &ctx,
        "--output",
        &format!("oci-archive:{tar}:localhost/hoist-run-alpine:t"),
    ])
    .ok();
    podman_store(&["load", "-i", &tar]).ok();
    let seen = run(
        "podman",
        &["run", "--rm", "localhost/hoist-run-alpine:t", "sh", "-c",
          "cat /data/x; stat -c %u:%g /data/x; test -e /etc/motd && echo motd-still-there; echo end"],
    );
    assert_eq!(seen.ok(), "hi\n1000:1000\nend\n");
    podman_store(&["rmi", "-f", "localhost/hoist-run-alpine:t"]);
}

#[test]
fn a_failing_step_fails_the_build_with_its_output_and_leaves_nothing() {
    let env = Env::new();
    let ctx = project(
        &env,
        "busybox.oci.tar",
        "[[run]]\ncommand = [\"sh\", \"-c\", \"echo made > /made; echo going-wrong >&2; exit 3\"]\n",
    );
    let out = env.path("out");
    let r = env.hoist(&["build", &ctx, "--output", &format!("oci:{}", out.display())]);
    r.fails_with("exited with status 3");
    r.fails_with("going-wrong");
    assert!(!out.exists(), "no image is written");
    assert!(scratch_left(&env).is_empty(), "{:?}", scratch_left(&env));
    let keys = env.path("cache/keys/run-layer");
    let cached = std::fs::read_dir(&keys).map(|d| d.count()).unwrap_or(0);
    assert_eq!(cached, 0, "no layer is recorded for a failed step");

    let missing = project(
        &env,
        "busybox.oci.tar",
        "[[run]]\ncommand = [\"no-such-tool\"]\n",
    );
    env.hoist(&[
        "build",
        &missing,
        "--output",
        &format!("oci:{}", out.display()),
    ])
    .fails_with("cannot run `no-such-tool`");
}

#[test]
fn a_step_cannot_write_to_the_host() {
    let env = Env::new();
    let marker = env.path("host-file");
    let ctx = project(
        &env,
        "busybox.oci.tar",
        &format!(
            "[[run]]\ncommand = [\"sh\", \"-c\", \"echo x > {m}; ls /proc/1/root/{m} 2>/dev/null; echo x > /proc/sys/kernel/hostname 2>/dev/null && exit 9; true\"]\n",
            m = marker.display()
        ),
    );
    let out = env.path("out");
    env.hoist(&["build", &ctx, "--output", &format!("oci:{}", out.display())])
        .ok();
    assert!(!marker.exists(), "the step wrote on the host");
    // /tmp is the sandbox's own tmpfs: nothing of it reaches the layer.
    assert_eq!(run_layer(&out), Vec::<String>::new());
}

#[test]
fn apt_get_installs_a_package_on_debian_and_it_runs() {
    let env = Env::new();
    let ctx = project(
        &env,
        "debian.oci.tar",
        "[[run]]\ncommand = \"sh -c 'apt-get update && apt-get install -y --no-install-recommends jq && rm -rf /var/lib/apt/lists/*'\"\nenv = { DEBIAN_FRONTEND = \"noninteractive\" }\n",
    );
    let tar = env.path("img.tar").display().to_string();
    let out = env.path("out");
    env.hoist(&[
        "build",
        &ctx,
        "--output",
        &format!("oci:{}", out.display()),
        "--output",
        &format!("oci-archive:{tar}:localhost/hoist-run-jq:t"),
    ])
    .ok();
    let entries = run_layer(&out);
    assert!(
        entries.iter().any(|e| e.ends_with(" usr/bin/jq")),
        "{entries:?}"
    );
    assert!(
        entries
            .iter()
            .all(|e| !e.contains(" proc/") && !e.contains(" dev/") && !e.contains(" tmp/")),
        "mount points stay out of the layer: {entries:?}"
    );
    require_podman();
    podman_store(&["load", "-i", &tar]).ok();
    let v = run(
        "podman",
        &["run", "--rm", "localhost/hoist-run-jq:t", "jq", "--version"],
    );
    assert!(v.ok().starts_with("jq-"), "{}", v.ok());
    podman_store(&["rmi", "-f", "localhost/hoist-run-jq:t"]);
}
