//! Bad input: each case is a clear error naming the thing, exit code 1, no
//! panic, and nothing left at the output path.

use std::path::Path;
use std::process::Command;

use crate::support::*;

/// Runs a build that must fail, and checks the output path stays empty.
fn fails(env: &Env, base: &str, extra: &[&str], needle: &str) {
    let app = env.path("app");
    if !app.exists() {
        small_app(&app);
    }
    let out = env.path("out.tar");
    let layout = env.path("layout");
    let mut args = vec![
        "build".to_owned(),
        app.display().to_string(),
        "--base".into(),
        base.into(),
        "--output".into(),
        format!("oci-archive:{}", out.display()),
        "--output".into(),
        format!("oci:{}:x", layout.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.hoist(&args).fails_with(needle);
    assert!(!out.exists(), "nothing may be left at {}", out.display());
    assert!(
        !layout.exists(),
        "nothing may be left at {}",
        layout.display()
    );
    let leftovers: Vec<_> = std::fs::read_dir(env.tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        leftovers
            .iter()
            .all(|n| n == "app" || n == "cache" || n == "base" || n == "base.tar"),
        "temporary files left behind: {leftovers:?}"
    );
}

/// Copies the busybox OCI layout so a test can damage it.
fn busybox_copy(env: &Env) -> std::path::PathBuf {
    let dst = env.path("base");
    copy_tree(&base("oci/busybox"), &dst);
    dst
}

fn manifest_of(layout: &Path) -> (serde_json::Value, std::path::PathBuf) {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let path = layout.join("blobs/sha256").join(&digest[7..]);
    (
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap(),
        path,
    )
}

#[test]
fn missing_base() {
    let env = Env::new();
    fails(
        &env,
        &format!("oci-archive:{}", env.path("nope.tar").display()),
        &[],
        "nope.tar",
    );
    fails(
        &env,
        &format!("oci:{}", env.path("nodir").display()),
        &[],
        "nodir",
    );
}

#[test]
fn blob_whose_digest_does_not_match() {
    let env = Env::new();
    let layout = busybox_copy(&env);
    let (m, _) = manifest_of(&layout);
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_owned();
    let path = layout.join("blobs/sha256").join(&layer[7..]);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    fails(&env, &format!("oci:{}", layout.display()), &[], &layer);
    // And nothing unverified entered the store.
    assert!(!env.path("cache/blobs/sha256").join(&layer[7..]).exists());
}

#[test]
fn truncated_gzip_layer() {
    require("umoci", "umoci");
    let env = Env::new();
    let layout = busybox_copy(&env);
    // A layer whose digest matches its (truncated) bytes: only reading the
    // gzip stream can find the fault. umoci adds the layer; we cut it.
    std::fs::create_dir_all(env.path("extra/etc")).unwrap();
    std::fs::write(env.path("extra/etc/motd"), "x".repeat(200_000)).unwrap();
    let tar = env.path("extra.tar");
    run(
        "tar",
        &[
            "-C",
            &env.path("extra").display().to_string(),
            "-cf",
            &tar.display().to_string(),
            ".",
        ],
    )
    .ok();
    run(
        "umoci",
        &[
            "raw",
            "add-layer",
            "--image",
            &format!("{}:latest", layout.display()),
            &tar.display().to_string(),
        ],
    )
    .ok();
    std::fs::remove_file(&tar).unwrap();
    std::fs::remove_dir_all(env.path("extra")).unwrap();
    let (mut m, mpath) = manifest_of(&layout);
    let top = m["layers"].as_array().unwrap().last().unwrap().clone();
    let old = top["digest"].as_str().unwrap().to_owned();
    let bytes = std::fs::read(layout.join("blobs/sha256").join(&old[7..])).unwrap();
    let cut = &bytes[..bytes.len() / 2];
    let new = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(cut))
    );
    std::fs::write(layout.join("blobs/sha256").join(&new[7..]), cut).unwrap();
    let n = m["layers"].as_array().unwrap().len();
    m["layers"][n - 1]["digest"] = new.clone().into();
    m["layers"][n - 1]["size"] = cut.len().into();
    rewrite_manifest(&layout, &mpath, &m);
    fails(
        &env,
        &format!("oci:{}", layout.display()),
        &["--user", "app"],
        &new[..19],
    );
}

/// Stores a changed manifest and points index.json at it.
fn rewrite_manifest(layout: &Path, old_path: &Path, m: &serde_json::Value) {
    let bytes = serde_json::to_vec(m).unwrap();
    let d = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    std::fs::write(layout.join("blobs/sha256").join(&d), &bytes).unwrap();
    let _ = old_path;
    let ipath = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&ipath).unwrap()).unwrap();
    index["manifests"][0]["digest"] = format!("sha256:{d}").into();
    index["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(ipath, serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn layer_entry_climbing_out_with_dotdot() {
    require("umoci", "umoci");
    let env = Env::new();
    let layout = busybox_copy(&env);
    // GNU tar with -P keeps a `../` member name as given.
    std::fs::create_dir_all(env.path("w/d")).unwrap();
    std::fs::write(env.path("w/evil"), "pwned\n").unwrap();
    let tar = env.path("evil.tar");
    run(
        "tar",
        &[
            "-C",
            &env.path("w/d").display().to_string(),
            "-P",
            "-cf",
            &tar.display().to_string(),
            "../evil",
        ],
    )
    .ok();
    let listed = run("tar", &["-tPf", &tar.display().to_string()])
        .ok()
        .to_owned();
    assert_eq!(listed.trim(), "../evil");
    run(
        "umoci",
        &[
            "raw",
            "add-layer",
            "--image",
            &format!("{}:latest", layout.display()),
            &tar.display().to_string(),
        ],
    )
    .ok();
    std::fs::remove_file(&tar).unwrap();
    std::fs::remove_dir_all(env.path("w")).unwrap();
    // Read as containerd reads it (issue 18: `..` clamped at the root):
    // the build, which reads the base's /etc/passwd for the user, succeeds
    // and nothing lands outside the store.
    let app = env.path("app");
    small_app(&app);
    let out = env.path("out.tar");
    env.hoist(&[
        "build",
        app.to_str().unwrap(),
        "--base",
        &format!("oci:{}", layout.display()),
        "--user",
        "app",
        "--output",
        &format!("oci-archive:{}", out.display()),
    ])
    .ok();
    assert!(out.is_file());
    for dir in [env.path(""), env.path("w"), env.path("cache/..")] {
        assert!(!dir.join("evil").exists(), "{} has evil", dir.display());
    }
}

#[test]
fn symlink_in_the_context_pointing_outside() {
    let env = Env::new();
    small_app(&env.path("app"));
    std::os::unix::fs::symlink("../../etc/passwd", env.path("app/lib/passwd")).unwrap();
    fails(
        &env,
        &format!("oci-archive:{}", base("busybox.oci.tar").display()),
        &[],
        "lib/passwd",
    );
}

#[test]
fn uid_clash() {
    let env = Env::new();
    // busybox's passwd has nobody with uid 65534.
    fails(
        &env,
        &format!("oci-archive:{}", base("busybox.oci.tar").display()),
        &["--user", "app:65534"],
        "65534",
    );
}

#[test]
fn unknown_platform_lists_the_available_ones() {
    let env = Env::new();
    let src = format!("oci-archive:{}", base("alpine.oci.tar").display());
    fails(&env, &src, &["--platform", "linux/s390x"], "linux/arm64");
    fails(&env, &src, &["--platform", "linux/s390x"], "linux/amd64");
}

#[test]
fn bad_flags_are_named() {
    let env = Env::new();
    let src = format!("oci-archive:{}", base("busybox.oci.tar").display());
    fails(&env, &src, &["--expose", "99999"], "99999");
    fails(&env, &src, &["--user", "Bad Name"], "Bad Name");
    fails(&env, &src, &["--platform", "linux"], "os/arch");
    fails(&env, &src, &["--workdir", "relative"], "relative");
    fails(&env, &src, &["--workdir", "/"], "`/` is the image's root");
}

#[test]
fn empty_platform_list_in_hoist_toml() {
    let env = Env::new();
    let app = env.path("app");
    small_app(&app);
    let toml = format!(
        "[image]\nbase = \"oci-archive:{}\"\nplatforms = []\n",
        base("busybox.oci.tar").display()
    );
    std::fs::write(app.join("hoist.toml"), toml).unwrap();
    let out = env.path("out.tar");
    let want = "hoist.toml:3:13: [image] key `platforms`: the list is empty";
    let app = app.display().to_string();
    let output = format!("oci-archive:{}", out.display());
    env.hoist(&["build", &app, "--output", &output])
        .fails_with(want);
    env.hoist(&["build", &app, "--dry-run"]).fails_with(want);
    env.hoist(&["bundle", &app, "--output", &out.display().to_string()])
        .fails_with(want);
    assert!(!out.exists());
}

#[test]
fn durations_beyond_go_time_are_refused() {
    let env = Env::new();
    let src = format!("oci-archive:{}", base("busybox.oci.tar").display());
    for flag in ["--healthcheck-interval", "--healthcheck-timeout"] {
        fails(
            &env,
            &src,
            &["--healthcheck", "true", flag, "5000000h"],
            "duration `5000000h` is longer than 2562047h47m16s",
        );
    }
    fails(
        &env,
        &src,
        &[
            "--healthcheck",
            "true",
            "--healthcheck-retries",
            "18446744073709551615",
        ],
        "--healthcheck-retries 18446744073709551615",
    );
}

/// A reader that closes the pipe early (`| head -1`) ends hoist quietly,
/// with status 0 under `set -o pipefail`, never a panic.
#[test]
fn closed_stdout_ends_quietly() {
    require("bash", "bash");
    let env = Env::new();
    let image = format!("oci-archive:{}", base("alpine.oci.tar").display());
    for (args, reader) in [
        ("cache ls", "(exec 0<&-; true)"),
        ("inspect \"$1\"", "(exec 0<&-; true)"),
        ("inspect \"$1\"", "head -1 >/dev/null"),
        ("inspect --json \"$1\"", "(exec 0<&-; sleep 0)"),
    ] {
        let script = format!(
            "set -o pipefail; for i in 1 2 3 4 5; do \"$0\" {args} | {reader} || exit $?; done"
        );
        let r = Command::new("bash")
            .args(["-c", &script, env!("CARGO_BIN_EXE_hoist"), &image])
            .env("HOIST_CACHE", env.path("cache"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(
            r.status.code(),
            Some(0),
            "hoist {args} | {reader}: {stderr}"
        );
        assert_eq!(stderr, "", "hoist {args} | {reader}");
    }
}

/// An output that cannot be created names the path the user gave (not
/// hoist's temporary file beside it) and why.
#[test]
fn outputs_that_cannot_be_created_say_why() {
    let env = Env::new();
    let app = env.path("app");
    small_app(&app);
    let src = format!("oci-archive:{}", base("busybox.oci.tar").display());
    let mut cases = vec![
        (
            "/proc/x.tar".to_owned(),
            "cannot write /proc/x.tar: the folder /proc does not take new files (a virtual file system such as /proc or /sys)".to_owned(),
        ),
        // EACCES for root on sysfs, EROFS where /sys is mounted read-only.
        ("/sys/x.tar".into(), "cannot write /sys/x.tar: the folder /sys ".into()),
    ];
    // A folder the user cannot write to: only for an ordinary user, as
    // root writes anywhere (there the cases above check the message).
    use std::os::unix::fs::PermissionsExt;
    let ro = env.path("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(ro.join("probe"), b"").is_err() {
        let out = ro.join("x.tar").display().to_string();
        cases.push((out.clone(), format!("cannot write {out}: the folder")));
    }
    for (out, want) in cases {
        let r = env.hoist(&[
            "build",
            app.to_str().unwrap(),
            "--base",
            &src,
            "--output",
            &format!("oci-archive:{out}"),
        ]);
        r.fails_with(&want);
        assert!(!r.stderr.contains(".tmp"), "{}", r.stderr);
    }
}

#[test]
fn a_bare_path_base_is_recognised_by_what_it_holds() {
    let env = Env::new();
    let app = env.path("app");
    small_app(&app);
    let app = app.display().to_string();
    // The test bases scripts/make-bases makes with umoci, skopeo and podman save.
    let cases = [
        (base("oci/busybox"), "base    oci:"),
        (base("busybox.oci.tar"), "base    oci-archive:"),
        (base("busybox.docker.tar"), "base    docker-archive:"),
    ];
    for (path, want) in cases {
        let path = path.display().to_string();
        let run = env.hoist(&[
            "build",
            &app,
            "--base",
            &path,
            "--deps",
            "none",
            "--dry-run",
        ]);
        run.ok();
        assert!(run.stdout.contains(want), "{path}: {}", run.stdout);
        let shown = env.hoist(&["inspect", &path]);
        shown.ok();
    }
    // A path that holds no image: the error names the three formats.
    let not_image = env.path("notes.txt");
    std::fs::write(&not_image, "not an image").unwrap();
    let not_image = not_image.display().to_string();
    env.hoist(&["build", &app, "--base", &not_image, "--dry-run"])
        .fails_with(&format!(
            "`{not_image}` is a path, not an image reference: name the format, as oci:{not_image}"
        ));
}
