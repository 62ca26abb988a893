//! An image that will run as root builds, with one warning line saying so
//! and how to change it: `--user root`, `user = { name = "root" }` in
//! hoist.toml, and no user at all on a base that sets none; once for a
//! build of several platforms. An image with another user builds without
//! it.

use crate::support::*;

const HOW: &str =
    "name another with --user NAME[:UID], `user` in hoist.toml or USER in the Dockerfile";

/// The warning lines of a build's stderr.
fn warnings(run: &Run) -> Vec<String> {
    run.stderr
        .lines()
        .filter(|l| l.starts_with("warning "))
        .map(str::to_owned)
        .collect()
}

/// Builds `app` on busybox with `args`; returns the run and the image's
/// config.User.
fn build(env: &Env, app: &str, args: &[&str]) -> (Run, String) {
    let out = env.path(&format!("out-{}.tar", args.len()));
    let base = format!("oci-archive:{}", base("busybox.oci.tar").display());
    let archive = format!("oci-archive:{}", out.display());
    let mut all = vec!["build", app, "--base", &base, "--output", &archive];
    all.extend_from_slice(args);
    let run = env.hoist(&all);
    run.ok();
    let user = skopeo_config(&archive)["config"]["User"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    std::fs::remove_file(&out).unwrap();
    (run, user)
}

#[test]
fn an_image_that_runs_as_root_builds_with_one_warning_line() {
    require("skopeo", "skopeo");
    let env = Env::new();
    let app = env.path("app");
    small_app(&app);
    let app = app.display().to_string();

    let (run, user) = build(&env, &app, &["--user", "root"]);
    assert_eq!(user, "0:0");
    assert_eq!(
        warnings(&run),
        [format!(
            "warning the image runs as root (user `0:0`); {HOW}"
        )]
    );

    let (run, user) = build(&env, &app, &[]);
    assert_eq!(user, "", "busybox sets no user");
    assert_eq!(
        warnings(&run),
        [format!(
            "warning the image runs as root: no user is set, by the build or by the base; {HOW}"
        )]
    );

    let (run, user) = build(&env, &app, &["--user", "app:1001"]);
    assert_eq!(user, "1001:1001");
    assert_eq!(warnings(&run), Vec::<String>::new());

    // The same from hoist.toml.
    let toml = std::path::Path::new(&app).join("hoist.toml");
    std::fs::write(&toml, "[image]\nuser = { name = \"root\" }\n").unwrap();
    let (run, user) = build(&env, &app, &[]);
    assert_eq!(user, "0:0");
    assert_eq!(
        warnings(&run),
        [format!(
            "warning the image runs as root (user `0:0`); {HOW}"
        )]
    );
    std::fs::write(&toml, "[image]\nuser = { name = \"web\", uid = 1002 }\n").unwrap();
    let (run, user) = build(&env, &app, &[]);
    assert_eq!(user, "1002:1002");
    assert_eq!(warnings(&run), Vec::<String>::new());
    std::fs::remove_file(&toml).unwrap();

    // Two platforms, one image that runs as root: one line.
    let base = format!("oci-archive:{}", base("python-multi.oci.tar").display());
    let layout = format!("oci:{}", env.path("multi").display());
    let run = env.hoist(&[
        "build",
        &app,
        "--base",
        &base,
        "--platform",
        "linux/amd64,linux/arm64",
        "--output",
        &layout,
    ]);
    run.ok();
    assert_eq!(
        warnings(&run),
        [format!(
            "warning the image runs as root: no user is set, by the build or by the base; {HOW}"
        )]
    );
}
