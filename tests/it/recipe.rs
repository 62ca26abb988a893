//! Recipes and projects: hoist.toml with several images, stock recipes,
//! targets, `hoist init`, `--dry-run`, checked by running the images in
//! podman.

use std::path::{Path, PathBuf};

use crate::support::*;

/// A copy of testdata's project (hoist.toml, web, agent, nextjs) in a
/// temporary folder, with `target/bases` pointing at the test bases, so
/// the build step's outputs never land in the repository.
fn project(env: &Env) -> PathBuf {
    let root = env.path("repo");
    std::fs::create_dir_all(root.join("testdata")).unwrap();
    std::fs::create_dir_all(root.join("target")).unwrap();
    for d in ["project", "web", "agent", "nextjs"] {
        copy_tree(&testdata(d), &root.join("testdata"));
    }
    base("node.oci.tar");
    std::os::unix::fs::symlink(bases(), root.join("target/bases")).unwrap();
    let _ = std::fs::remove_dir_all(root.join("testdata/nextjs/.next"));
    root.join("testdata/project")
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Loads `tar`, checks who the image runs as and its env, starts it on
/// `port` and returns the body of `path`.
fn run_image(tar: &Path, name: &str, env_var: &str, port: u16, path: &str) -> (String, String) {
    podman_store(&["load", "-i", &s(tar)]).ok();
    let who = run(
        "podman",
        &[
            "run",
            "--rm",
            "--entrypoint",
            "sh",
            name,
            "-c",
            &format!("id -u; id -g; echo ${env_var}; pwd"),
        ],
    )
    .ok()
    .to_owned();
    let body = podman_serve(name, port, path);
    podman_store(&["rmi", "-f", name]);
    (who, body)
}

#[test]
fn one_command_builds_every_image_of_the_project_for_prod_and_dev() {
    require_podman();
    let env = Env::new();
    let proj = project(&env);
    let file = s(&proj.join("hoist.toml"));
    let out = env.path("out");
    let prod = env.hoist(&["build", "-f", &file, "--output-dir", &s(&out)]);
    let stdout = prod.ok();
    for name in ["agent", "nextjs", "web"] {
        assert!(stdout.contains(&format!("{name} sha256:")), "{stdout}");
    }
    // The summary table: one line per image.
    assert!(
        prod.stderr.contains("image        target   digest"),
        "{}",
        prod.stderr
    );
    // nextjs-standalone builds in a stage, in the sandbox (not on the host).
    assert!(
        prod.stderr.contains("stage   build:") && prod.stderr.contains("next build (built)"),
        "{}",
        prod.stderr
    );
    let c = skopeo_config(&format!("oci-archive:{}", s(&out.join("web.tar"))));
    assert_eq!(c["config"]["User"], "1001:1001");
    assert_eq!(c["config"]["Cmd"], serde_json::json!(["node", "server.js"]));
    // skopeo reads the config as OCI's, which has no Healthcheck; the
    // history says it was set.
    let history = c["history"].to_string();
    assert!(
        history.contains("HEALTHCHECK [\\\"CMD\\\",\\\"node\\\""),
        "{history}"
    );

    let (who, body) = run_image(
        &out.join("web.tar"),
        "localhost/web:latest",
        "NODE_ENV",
        3911,
        "/health",
    );
    assert_eq!(who, "1001\n1001\nproduction\n/app\n");
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    let (who, body) = run_image(
        &out.join("agent.tar"),
        "localhost/agent:latest",
        "PYTHONUNBUFFERED",
        3912,
        "/health",
    );
    assert_eq!(who, "1001\n1001\n1\n/app\n");
    assert!(body.contains("ok"), "{body}");
    let (who, body) = run_image(
        &out.join("nextjs.tar"),
        "localhost/nextjs:latest",
        "NODE_ENV",
        3913,
        "/api/health",
    );
    assert_eq!(who, "1001\n1001\nproduction\n/app\n");
    assert_eq!(body, "{\"status\":\"ok\"}");

    let dev = env.hoist(&[
        "build",
        "-f",
        &file,
        "--target",
        "dev",
        "--output-dir",
        &s(&out),
    ]);
    dev.ok();
    let (who, body) = run_image(
        &out.join("web-dev.tar"),
        "localhost/web:dev",
        "NODE_ENV",
        3914,
        "/health",
    );
    assert_eq!(who, "1001\n1001\ndevelopment\n/app\n");
    assert!(body.contains("ok"), "{body}");
    // dev keeps devDependencies (nodemon) and runs node --watch.
    let c = skopeo_config(&format!("oci-archive:{}", s(&out.join("web-dev.tar"))));
    assert_eq!(
        c["config"]["Cmd"],
        serde_json::json!(["node", "--watch", "server.js"])
    );
    podman_store(&["load", "-i", &s(&out.join("web-dev.tar"))]).ok();
    run(
        "podman",
        &[
            "run",
            "--rm",
            "localhost/web:dev",
            "test",
            "-d",
            "/app/node_modules/nodemon",
        ],
    )
    .ok();
    podman_store(&["rmi", "-f", "localhost/web:dev"]);
    let (who, body) = run_image(
        &out.join("nextjs-dev.tar"),
        "localhost/nextjs:dev",
        "NODE_ENV",
        3915,
        "/api/health",
    );
    assert_eq!(who, "1001\n1001\ndevelopment\n/app\n");
    assert!(body.contains("\"mode\":\"dev\""), "{body}");
    let (_, body) = run_image(
        &out.join("agent-dev.tar"),
        "localhost/agent:dev",
        "APP_ENV",
        3916,
        "/health",
    );
    assert!(body.contains("ok"), "{body}");
}

#[test]
fn init_writes_a_file_that_builds_without_edits() {
    let env = Env::new();
    let proj = project(&env);
    let root = proj.parent().unwrap();
    for (app, recipe, base_file) in [
        ("web", "node", "node.oci.tar"),
        ("agent", "python", "python.oci.tar"),
        ("nextjs", "nextjs-standalone", "node.oci.tar"),
    ] {
        let dir = root.join(app);
        // testdata/nextjs carries its own hoist.toml (with a build stage).
        let _ = std::fs::remove_file(dir.join("hoist.toml"));
        let b = format!("oci-archive:{}", s(&base(base_file)));
        let r = env.hoist(&["init", &s(&dir), "--base", &b]);
        r.ok();
        assert!(
            r.stderr.contains(&format!("stock recipe `{recipe}`")),
            "{}",
            r.stderr
        );
        let text = std::fs::read_to_string(dir.join("hoist.toml")).unwrap();
        assert!(
            text.starts_with("# hoist.toml, written by `hoist init`"),
            "{text}"
        );
        env.hoist(&["init", &s(&dir)])
            .fails_with("exists; pass --force");
        let tar = env.path(&format!("{app}.tar"));
        let built = env.hoist(&[
            "build",
            &s(&dir),
            "--output",
            &format!("oci-archive:{}", s(&tar)),
        ]);
        built.ok();
        let c = skopeo_config(&format!("oci-archive:{}", s(&tar)));
        assert_eq!(c["config"]["User"], "1001:1001", "{app}");
    }
}

#[test]
fn dry_run_after_a_code_change_names_the_file_and_only_the_app_layer() {
    let env = Env::new();
    let app = env.path("web");
    copy_tree(&testdata("web"), &app);
    let b = format!("oci-archive:{}", s(&base("node.oci.tar")));
    let args = |extra: &[&str]| {
        let mut v = vec![
            "build".to_owned(),
            s(&app),
            "--recipe".into(),
            "node".into(),
            "--base".into(),
            b.clone(),
        ];
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let call = |extra: &[&str]| {
        let a = args(extra);
        env.hoist(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    call(&[]).ok();
    let unchanged = call(&["--dry-run"]);
    let text = unchanged.ok();
    assert!(text.contains("app     reuse  unchanged"), "{text}");
    let routes = app.join("src/routes.js");
    let mut code = std::fs::read_to_string(&routes).unwrap();
    code.push_str("\n// a code-only change\n");
    std::fs::write(&routes, code).unwrap();
    let cache = env.path("cache");
    let before = count_files(&cache);
    let plan = call(&["--dry-run", "--list-files"]);
    let text = plan.ok();
    assert!(text.contains("user    reuse"), "{text}");
    assert!(
        text.contains("deps    reuse  unchanged: package-lock.json, package.json"),
        "{text}"
    );
    assert!(
        text.contains("app     build  changed: /app/src/routes.js\n"),
        "{text}"
    );
    assert!(text.contains("file    /app/src/routes.js"), "{text}");
    assert!(
        !text.contains("file    /app/tests"),
        "the .dockerignore drops tests: {text}"
    );
    assert_eq!(count_files(&cache), before, "a dry run writes nothing");
    let built = call(&[]);
    built.ok();
    assert!(
        built.stderr.contains("deps     767.3 kB  reused") || built.stderr.contains("reused"),
        "{}",
        built.stderr
    );
}

fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            n += match e.file_type().map(|t| t.is_dir()) {
                Ok(true) => count_files(&e.path()),
                _ => 1,
            };
        }
    }
    n
}

#[test]
fn recipe_errors_name_file_line_and_key() {
    let env = Env::new();
    let dir = env.path("p");
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("[image]\nbase = \"alpine\"\nusr = 1\n", vec![], "hoist.toml:3:1: [image] unknown key `usr`; did you mean `user`?"),
        ("[image]\nbase = \"alpine\"\nexpose = \"x\"\n", vec![], "hoist.toml:3:10: [image] key `expose`: invalid type: string \"x\", expected a sequence"),
        ("[image]\nbase = \"alpine\"\n[deps]\nkind = \"yarn\"\n", vec![], "hoist.toml:4:8: [deps] key `kind`: unknown deps kind `yarn`: use npm, pip, none or auto"),
        ("[deps]\nkind = \"none\"\n", vec![], "hoist.toml:1:1: image `p` has no base: set key `base` in [image]"),
        ("[image]\nbase = \"alpine\"\n[target.staging]\n", vec!["--target", "qa"], "hoist.toml:3:9: target `qa` does not exist: hoist.toml has no [target.qa]; its targets are dev, prod, staging"),
    ];
    for (text, extra, want) in cases {
        std::fs::write(dir.join("hoist.toml"), text).unwrap();
        let mut a = vec!["build", "--dry-run"];
        a.extend(extra);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
        cmd.args(&a)
            .current_dir(&dir)
            .env("HOIST_CACHE", env.path("cache"));
        let o = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.starts_with(&format!("error: {want}")),
            "want {want}\ngot {err}"
        );
    }
}
