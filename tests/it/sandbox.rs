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

/// A podman tag per way of running, so the two variants never meet.
fn tag(who: Who) -> &'static str {
    match who {
        Who::Root => "root",
        Who::Rootless => "rootless",
    }
}

fn base_path(rel: &str) -> String {
    base(rel).display().to_string()
}

/// The entries of the step layer (`hoist run: ...`) of the image in
/// `layout`, as `tar tv` lists them: "mode uid/gid path".
fn run_layer(layout: &Path) -> Vec<String> {
    layer_entries(layout, "hoist run")
}

/// The entries of the layer whose history starts with `what`.
fn layer_entries(layout: &Path, what: &str) -> Vec<String> {
    let digest =
        layer_digest(layout, what).unwrap_or_else(|| panic!("the image has no `{what}` layer"));
    let blob = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let out = run("tar", &["tvzf", &blob.display().to_string()]);
    out.ok()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // mode owner size date time path [-> target]
            format!("{} {} {}", f[0], f[1], f[5])
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
    alpine_busybox_step(Who::Root);
}

#[test]
fn an_alpine_busybox_step_as_an_ordinary_user() {
    alpine_busybox_step(Who::Rootless);
}

fn alpine_busybox_step(who: Who) {
    let env = Env::for_who(who);
    let ctx = project(
        &env,
        "alpine.oci.tar",
        "[[run]]\ncommand = [\"sh\", \"-c\", \"mkdir /data && echo hi > /data/x && chown 1000:1000 /data/x && rm /etc/motd\"]\n",
    );
    let out = env.path("out");
    let oci = format!("oci:{}", out.display());
    let plan = env.hoist_by(who, &["build", &ctx, "--dry-run"]);
    assert!(
        plan.ok().contains("run     build  `sh -c"),
        "{}",
        plan.stdout
    );
    env.hoist_by(who, &["build", &ctx, "--output", &oci]).ok();
    let plan = env.hoist_by(who, &["build", &ctx, "--dry-run"]);
    assert!(
        plan.ok().contains("run     reuse  `sh -c")
            && plan.stdout.contains("unchanged (in the cache)"),
        "{}",
        plan.stdout
    );
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
    let again = env.hoist_by(who, &["build", &ctx, "--output", &oci]);
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
    env.hoist_by(
        who,
        &[
            "build",
            &ctx,
            "--output",
            &format!("oci-archive:{tar}:localhost/hoist-run-alpine:{}", tag(who)),
        ],
    )
    .ok();
    podman_store(&["load", "-i", &tar]).ok();
    let seen = run(
        "podman",
        &["run", "--rm", &format!("localhost/hoist-run-alpine:{}", tag(who)), "sh", "-c",
          "cat /data/x; stat -c %u:%g /data/x; test -e /etc/motd && echo motd-still-there; echo end"],
    );
    assert_eq!(seen.ok(), "hi\n1000:1000\nend\n");
    podman_store(&[
        "rmi",
        "-f",
        &format!("localhost/hoist-run-alpine:{}", tag(who)),
    ]);
}

#[test]
fn a_failing_step_fails_the_build_with_its_output_and_leaves_nothing() {
    failing_step(Who::Root);
}

#[test]
fn a_failing_step_as_an_ordinary_user_leaves_nothing() {
    failing_step(Who::Rootless);
}

fn failing_step(who: Who) {
    let env = Env::for_who(who);
    let ctx = project(
        &env,
        "busybox.oci.tar",
        "[[run]]\ncommand = [\"sh\", \"-c\", \"echo made > /made; echo going-wrong >&2; exit 3\"]\n",
    );
    let out = env.path("out");
    let r = env.hoist_by(
        who,
        &["build", &ctx, "--output", &format!("oci:{}", out.display())],
    );
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
    env.hoist_by(
        who,
        &[
            "build",
            &missing,
            "--output",
            &format!("oci:{}", out.display()),
        ],
    )
    .fails_with("cannot run `no-such-tool`");
}

#[test]
fn a_step_cannot_write_to_the_host() {
    let who = Who::Root;
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
    env.hoist_by(
        who,
        &["build", &ctx, "--output", &format!("oci:{}", out.display())],
    )
    .ok();
    assert!(!marker.exists(), "the step wrote on the host");
    // /tmp is the sandbox's own tmpfs: nothing of it reaches the layer.
    assert_eq!(run_layer(&out), Vec::<String>::new());
}

#[test]
fn apt_get_installs_a_package_on_debian_and_it_runs() {
    apt_get_step(Who::Root);
}

#[test]
fn apt_get_as_an_ordinary_user() {
    apt_get_step(Who::Rootless);
}

fn apt_get_step(who: Who) {
    let env = Env::for_who(who);
    let ctx = project(
        &env,
        "debian.oci.tar",
        "[[run]]\ncommand = \"sh -c 'apt-get update && apt-get install -y --no-install-recommends jq && rm -rf /var/lib/apt/lists/*'\"\nenv = { DEBIAN_FRONTEND = \"noninteractive\" }\n",
    );
    let tar = env.path("img.tar").display().to_string();
    let out = env.path("out");
    env.hoist_by(
        who,
        &[
            "build",
            &ctx,
            "--output",
            &format!("oci:{}", out.display()),
            "--output",
            &format!("oci-archive:{tar}:localhost/hoist-run-jq:{}", tag(who)),
        ],
    )
    .ok();
    let entries = run_layer(&out);
    require_podman();
    podman_store(&["load", "-i", &tar]).ok();
    let image = format!("localhost/hoist-run-jq:{}", tag(who));
    let v = run("podman", &["run", "--rm", &image, "jq", "--version"]);
    assert!(v.ok().starts_with("jq-"), "{}", v.ok());

    // Exactly what apt changed: the three packages' files and links as
    // dpkg lists them (asked of the running image; the base's dpkg.cfg.d
    // leaves out docs and man pages, so only those there), apt's and
    // dpkg's own records, and the folders holding them; nothing else.
    let listed = run(
        "podman",
        &["run", "--rm", &image, "sh", "-c",
          "dpkg -L jq libjq1 libonig5 | while read -r f; do if [ -L \"$f\" ] || [ -f \"$f\" ]; then echo \"$f\"; fi; done"],
    );
    let packaged: std::collections::BTreeSet<String> = listed
        .ok()
        .lines()
        .filter(|l| l.starts_with('/') && *l != "/.")
        .map(|l| l.trim_start_matches('/').to_owned())
        .collect();
    let state = [
        "etc/ld.so.cache",
        "var/lib/dpkg/",
        "var/lib/apt/",
        "var/cache/apt/",
        "var/cache/ldconfig/",
        "var/log/",
    ];
    let paths: Vec<(bool, String)> = entries
        .iter()
        .map(|e| (e.starts_with('d'), e.rsplit(' ').next().unwrap().to_owned()))
        .collect();
    for (dir, p) in &paths {
        let expected = packaged.contains(p)
            || state
                .iter()
                .any(|s| p == s.trim_end_matches('/') || p.starts_with(s))
            || (*dir
                && (packaged
                    .iter()
                    .chain(
                        state
                            .iter()
                            .map(|s| s.to_string())
                            .collect::<Vec<_>>()
                            .iter(),
                    )
                    .any(|q| q.starts_with(&format!("{p}/")))));
        assert!(
            expected,
            "`{p}` is in the layer, yet apt did not install or record it: {entries:#?}"
        );
    }
    let in_layer: std::collections::BTreeSet<&str> =
        paths.iter().map(|(_, p)| p.as_str()).collect();
    let missing: Vec<&String> = packaged
        .iter()
        .filter(|p| !in_layer.contains(p.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "files dpkg installed are not in the layer: {missing:?}"
    );
    assert!(
        entries
            .iter()
            .all(|e| !e.contains(" proc/") && !e.contains(" dev/") && !e.contains(" tmp/")),
        "mount points stay out of the layer: {entries:?}"
    );
    podman_store(&["rmi", "-f", &format!("localhost/hoist-run-jq:{}", tag(who))]);
}

/// The gyp example's context: testdata/gyp (epoll, a C++ addon whose
/// install script is `node-gyp rebuild`) on the Debian node base, with a
/// run step installing the compiler, make, python3 and Debian's node-gyp
/// (which builds against the image's own node headers, no download).
fn gyp_project(env: &Env, scripts: &str) -> String {
    let dir = env.path("gyp");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["package.json", "package-lock.json", "server.js"] {
        std::fs::copy(testdata("gyp").join(f), dir.join(f)).unwrap();
    }
    std::fs::write(
        dir.join("hoist.toml"),
        format!(
            r#"[image]
base = "oci-archive:{base}"
workdir = "/app"
cmd = ["node", "server.js"]

[[run]]
command = ["sh", "-c", "apt-get update && apt-get install -y --no-install-recommends g++ make python3 node-gyp && rm -rf /var/lib/apt/lists/*"]
env = {{ DEBIAN_FRONTEND = "noninteractive" }}

[deps]
kind = "npm"
{scripts}
"#,
            base = base_path("node.oci.tar")
        ),
    )
    .unwrap();
    dir.display().to_string()
}

#[test]
fn an_npm_addon_builds_with_node_gyp_in_the_sandbox() {
    npm_addon(Who::Root);
}

#[test]
fn an_npm_addon_builds_with_node_gyp_as_an_ordinary_user() {
    npm_addon(Who::Rootless);
}

fn npm_addon(who: Who) {
    let env = Env::for_who(who);
    let ctx = gyp_project(&env, "scripts = \"sandbox\"");
    let out = env.path("out");
    let tar = env.path("img.tar").display().to_string();
    let image = format!("localhost/hoist-gyp:{}", tag(who));
    let build = env.hoist_by(
        who,
        &[
            "build",
            &ctx,
            "--output",
            &format!("oci:{}", out.display()),
            "--output",
            &format!("oci-archive:{tar}:{image}"),
        ],
    );
    build.ok();
    assert!(
        !build.stderr.contains("would run install scripts"),
        "{}",
        build.stderr
    );
    let deps = layer_entries(&out, "hoist deps");
    let addon = "app/node_modules/epoll/build/Release/epoll.node";
    assert!(
        deps.iter().any(|e| e.ends_with(&format!(" {addon}"))),
        "the deps layer holds the addon node-gyp built: {deps:#?}"
    );
    assert!(
        deps.iter()
            .any(|e| e.ends_with(" app/node_modules/nan/nan.h")),
        "and the natively installed packages: {deps:#?}"
    );
    assert!(
        deps.iter().all(|e| {
            let p = e.rsplit(' ').next().unwrap();
            p == "app" || p.starts_with("app/node_modules")
        }),
        "nothing but node_modules: {deps:#?}"
    );
    assert!(scratch_left(&env).is_empty(), "{:?}", scratch_left(&env));

    // The same inputs again: the scripted layer is reused, nothing runs.
    let again = env.hoist_by(
        who,
        &["build", &ctx, "--output", &format!("oci:{}", out.display())],
    );
    again.ok();
    assert!(
        again
            .stderr
            .lines()
            .any(|l| l.trim_start().starts_with("deps ") && l.ends_with("reused")),
        "{}",
        again.stderr
    );

    require_podman();
    podman_store(&["load", "-i", &tar]).ok();
    let seen = run("podman", &["run", "--rm", &image]);
    assert_eq!(seen.ok(), "epoll addon loaded: function\n");
    podman_store(&["rmi", "-f", &image]);
}

#[test]
fn a_failing_install_script_fails_the_build_and_leaves_nothing() {
    let env = Env::new();
    // No compiler in the image: node-gyp cannot build the addon.
    let ctx = gyp_project(&env, "scripts = \"sandbox\"");
    let toml = std::path::Path::new(&ctx).join("hoist.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let text = text.replace("g++ make python3 node-gyp", "python3 node-gyp");
    std::fs::write(&toml, text).unwrap();
    let out = env.path("out");
    let r = env.hoist(&["build", &ctx, "--output", &format!("oci:{}", out.display())]);
    r.fails_with("the install scripts of node_modules/epoll");
    r.fails_with("node-gyp rebuild");
    assert!(!out.exists());
    assert!(scratch_left(&env).is_empty(), "{:?}", scratch_left(&env));
    let keys = env.path("cache/keys/deps-npm-scripts");
    let cached = std::fs::read_dir(&keys).map(|d| d.count()).unwrap_or(0);
    assert_eq!(cached, 0, "no layer is recorded for failed scripts");
}

#[test]
fn without_user_namespaces_the_error_says_what_to_enable() {
    require("unshare", "util-linux");
    let env = Env::new();
    let ctx = project(&env, "busybox.oci.tar", "[[run]]\ncommand = [\"true\"]\n");
    // A user namespace whose limit of nested user namespaces is 0 stands
    // for a host where they are disabled.
    let o = std::process::Command::new("unshare")
        .args([
            "-Ur",
            "sh",
            "-c",
            "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\"",
            "sh",
        ])
        .arg(env!("CARGO_BIN_EXE_hoist"))
        .args([
            "build",
            &ctx,
            "--output",
            &format!("oci:{}", env.path("out").display()),
        ])
        .env("HOIST_CACHE", env.path("cache"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("does not let users create user namespaces"),
        "{err}"
    );
    assert!(err.contains("sysctl -w user.max_user_namespaces"), "{err}");
    assert!(!env.path("out").exists());
}

#[test]
fn killing_hoist_ends_the_step() {
    let env = Env::new();
    let marker = format!("hoist-step-{}", std::process::id());
    let ctx = project(
        &env,
        "busybox.oci.tar",
        &format!("[[run]]\ncommand = [\"sh\", \"-c\", \"sleep 300; echo {marker}\"]\n"),
    );
    let mut hoist = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args([
            "build",
            &ctx,
            "--output",
            &format!("oci:{}", env.path("out").display()),
        ])
        .env("HOIST_CACHE", env.path("cache"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let running = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .any(|c| String::from_utf8_lossy(&c).contains(&marker))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !running() {
        assert!(
            std::time::Instant::now() < deadline,
            "the step never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    hoist.kill().unwrap();
    hoist.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while running() {
        assert!(
            std::time::Instant::now() < deadline,
            "the step outlived hoist"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The facts hoist reads (here /etc/passwd) come from the base and the
/// run steps together: a user a step adds is the image's user.
#[test]
fn a_user_a_step_adds_is_seen_by_user() {
    let env = Env::new();
    let ctx = project(
        &env,
        "alpine.oci.tar",
        "[[run]]\ncommand = [\"adduser\", \"-D\", \"-u\", \"1234\", \"-h\", \"/home/agent\", \"agent\"]\n\n[[run]]\ncommand = [\"sh\", \"-c\", \"id > /home/agent/id\"]\nuser = \"agent\"\n",
    );
    let out = env.path("out");
    let r = env.hoist(&[
        "build",
        &ctx,
        "--user",
        "agent",
        "--output",
        &format!("oci:{}", out.display()),
    ]);
    r.ok();
    assert!(
        r.stderr
            .contains("user    agent (1234:1234) already in the base, reused"),
        "{}",
        r.stderr
    );
    let config = skopeo_config(&format!("oci:{}", out.display()));
    assert_eq!(config["config"]["User"], "1234:1234");
    // The second step ran as `agent`, looked up in the first one's passwd.
    assert_eq!(
        layer_entries(&out, "hoist run: sh"),
        [
            "drwxr-sr-x 1234/1234 home/agent",
            "-rw-r--r-- 1234/1234 home/agent/id"
        ]
    );
}

#[test]
fn a_step_past_its_timeout_is_killed() {
    step_timeout(Who::Root);
}

#[test]
fn a_step_past_its_timeout_is_killed_as_an_ordinary_user() {
    step_timeout(Who::Rootless);
}

fn step_timeout(who: Who) {
    let env = Env::for_who(who);
    let ctx = project(
        &env,
        "busybox.oci.tar",
        "[[run]]\ncommand = [\"sh\", \"-c\", \"echo started; mkdir -p /data/x; sleep 60 & sleep 60\"]\ntimeout = \"1s\"\n",
    );
    let out = env.path("out");
    let started = std::time::Instant::now();
    let r = env.hoist_by(
        who,
        &["build", &ctx, "--output", &format!("oci:{}", out.display())],
    );
    r.fails_with("timed out after 1s and was killed");
    r.fails_with("started");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(!out.exists());
    assert!(scratch_left(&env).is_empty(), "{:?}", scratch_left(&env));
}

/// A step's root is an overlay over its ground unpacked once into the
/// store (`trees/`, one per chain id); the layers are the ones an unpacked
/// root gives (`HOIST_SANDBOX_ROOT=unpack`), digest for digest, for steps
/// that add, change in place, remove, re-make a folder, change owners and
/// modes, open a file read-write without writing (as apt does its lock
/// files) and link; a second step starts from the first one's tree.
#[test]
fn an_overlay_root_gives_the_layers_an_unpacked_root_gives() {
    overlay_root(Who::Root);
}

#[test]
fn an_overlay_root_gives_the_same_layers_as_an_ordinary_user() {
    overlay_root(Who::Rootless);
}

fn overlay_root(who: Who) {
    let steps = |second: &str| {
        format!(
            "[[run]]\ncommand = [\"sh\", \"-c\", \"{}\"]\n\n[[run]]\ncommand = [\"sh\", \"-c\", \"{second}\"]\n",
            [
                "mkdir /data && echo hi > /data/x && chown 1000:1000 /data/x",
                "ln /data/x /data/hard && ln -s x /data/soft",
                "rm /etc/motd && echo extra >> /etc/passwd && chmod 600 /etc/issue",
                "rm -rf /var/cache/apt && mkdir -p /var/cache/apt/x",
                ": 3<>/etc/hostname && cat /etc/shadow > /dev/null",
                "touch -d @0 /etc/debian_version && chown 0:42 /etc/host.conf",
            ]
            .join(" && ")
        )
    };
    let mut built = Vec::new();
    for how in ["unpack", "overlay"] {
        let env = Env::for_who(who);
        let ctx = project(
            &env,
            "debian.oci.tar",
            &steps("echo two > /data/y && rm /data/hard"),
        );
        let out = env.path("out");
        let vars = [("HOIST_SANDBOX_ROOT", how)];
        env.hoist_by_with(
            who,
            &["build", &ctx, "--output", &format!("oci:{}", out.display())],
            &vars,
        )
        .ok();
        assert!(
            scratch_left(&env).is_empty(),
            "{how}: {:?}",
            scratch_left(&env)
        );
        let trees: Vec<_> = std::fs::read_dir(env.path("cache/trees"))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        match how {
            "unpack" => assert!(trees.is_empty(), "{trees:?}"),
            _ => {
                assert_eq!(
                    trees.len(),
                    2,
                    "the base's tree and the first step's: {trees:?}"
                );
                // Another second step starts from the trees already there.
                let before: Vec<u64> = trees.iter().map(|t| ino(t)).collect();
                let ctx = project(&env, "debian.oci.tar", &steps("echo three > /data/y"));
                let again = env.path("again");
                env.hoist_by_with(
                    who,
                    &[
                        "build",
                        &ctx,
                        "--output",
                        &format!("oci:{}", again.display()),
                    ],
                    &vars,
                )
                .ok();
                let after: Vec<u64> = trees.iter().map(|t| ino(t)).collect();
                assert_eq!(before, after, "the trees are kept, not made again");
                assert_eq!(
                    layer_entries(&again, "hoist run: sh -c 'echo three").len(),
                    2
                );
                let du = env.hoist_by(who, &["cache", "du"]);
                assert!(du.ok().contains("unpacked"), "{}", du.stdout);
                env.hoist_by(who, &["cache", "prune", "--all"]).ok();
                let left = std::fs::read_dir(env.path("cache/trees")).unwrap().count();
                assert_eq!(left, 0, "a prune removes the trees with their entries");
            }
        }
        let layers: Vec<String> = layers_by_history(&out)
            .into_iter()
            .map(|(h, d)| format!("{d} {h}"))
            .collect();
        built.push((layers, run_layer(&out)));
    }
    assert_eq!(
        built[0], built[1],
        "the overlay's layers are the unpacked root's"
    );
    let entries = &built[1].1;
    for want in [
        "-rw-r--r-- 1000/1000 data/hard",
        "hrw-r--r-- 1000/1000 data/x",
        "-rw------- 0/0 etc/issue",
        "-rw-r--r-- 0/0 etc/.wh.motd",
        "-rw-r--r-- 0/0 var/cache/apt/.wh.archives",
        "-rw-r--r-- 0/42 etc/host.conf",
    ] {
        assert!(entries.iter().any(|e| e == want), "{want} in {entries:#?}");
    }
    assert!(
        !entries.iter().any(|e| e.ends_with(" etc/shadow")),
        "a file only read is not in the layer: {entries:#?}"
    );
}
