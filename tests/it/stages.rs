//! Build stages: `[stages.NAME]` run in the sandbox, copies from them into
//! the image, their caching, their errors, and the real Next.js app built
//! with no node or npm on the host.

use std::path::Path;

use crate::support::{
    base, layer_digest, podman_serve, podman_store, require_podman, run, testdata, Env,
};

/// A small project: a build stage on busybox that upper-cases src/a.txt
/// into out/ (and touches a stamp file: its mtime, now, must not reach the image), and an
/// image that copies out/ from it.
fn project(dir: &Path, run_cmd: &str, from: &str) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/a.txt"), "hello\n").unwrap();
    std::fs::write(dir.join("README.md"), "readme\n").unwrap();
    let bb = base("busybox.oci.tar");
    std::fs::write(
        dir.join("hoist.toml"),
        format!(
            r#"[image]
base = "oci-archive:{bb}"
workdir = "/app"
cmd = ["cat", "/app/out/A.txt"]

[deps]
kind = "none"

[stages.build]
copy = [{{ from = "src", to = "src" }}]
run = [{{ command = ["sh", "-c", "{run_cmd}"] }}]

[app]
copy = [{{ stage = "build", from = "{from}", to = "out" }}]
"#,
            bb = bb.display()
        ),
    )
    .unwrap();
}

const UPPER: &str = "mkdir -p out && tr a-z A-Z < src/a.txt > out/A.txt && touch out/stamp";

/// The copy layer's entries (mode owner mtime path) and A.txt's content.
fn copied(layout: &Path) -> (Vec<String>, String) {
    let digest = layer_digest(layout, "hoist copy: stage build").expect("a copy layer");
    let blob = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let blob = blob.display().to_string();
    let list = run("tar", &["tvzf", &blob, "--utc", "--full-time"]);
    let entries = list
        .ok()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {} {}", f[0], f[1], f[3], f[5])
        })
        .collect();
    let a = run("tar", &["xzOf", &blob, "app/out/A.txt"]);
    (entries, a.ok().to_owned())
}

#[test]
fn a_stage_runs_once_its_copy_is_exact_and_only_its_inputs_rerun_it() {
    let env = Env::new();
    let dir = env.path("p");
    project(&dir, UPPER, "/app/out");
    let d = dir.display().to_string();
    let out = env.path("img");
    let o = format!("oci:{}", out.display());
    let first = env.hoist(&["build", &d, "-o", &o]);
    first.ok();
    assert!(
        first.stderr.contains("stage   build:") && first.stderr.contains("(built)"),
        "{}",
        first.stderr
    );
    let (entries, a) = copied(&out);
    assert_eq!(a, "HELLO\n");
    assert!(
        entries
            .iter()
            .all(|e| e.contains(" 0/0 ") && e.contains(" 1970-01-01")),
        "root-owned, mtime SOURCE_DATE_EPOCH (0): {entries:?}"
    );
    assert!(entries.iter().any(|e| e.ends_with("app/out/stamp")));

    // No change: the dry run reuses everything; the build starts no
    // sandbox (no stage step is even looked at).
    let dry = env.hoist(&["build", &d, "--dry-run"]);
    assert!(
        dry.ok()
            .contains("copy    reuse  stage build:/app/out -> /app/out"),
        "{}",
        dry.stdout
    );
    let again = env.hoist(&["build", &d, "-o", &o]);
    assert!(!again.stderr.contains("stage   build"), "{}", again.stderr);
    assert_eq!(again.ok(), first.ok(), "same image");

    // A file the stage does not copy: nothing reruns.
    std::fs::write(dir.join("README.md"), "changed\n").unwrap();
    let dry = env.hoist(&["build", &d, "--dry-run"]);
    assert!(
        dry.ok().contains("copy    reuse  stage build"),
        "{}",
        dry.stdout
    );

    // A file it copies: the dry run names it; the run step reruns.
    std::fs::write(dir.join("src/a.txt"), "world\n").unwrap();
    let dry = env.hoist(&["build", &d, "--dry-run"]);
    let text = dry.ok();
    assert!(text.contains("changed: /app/src/a.txt"), "{text}");
    assert!(
        text.contains("  run     sh -c") && text.contains("build its inputs changed"),
        "{text}"
    );
    assert!(text.contains("copy    build  stage build"), "{text}");
    let changed = env.hoist(&["build", &d, "-o", &o]);
    changed.ok();
    assert!(
        changed.stderr.contains("run: sh -c") && changed.stderr.contains("(built)"),
        "{}",
        changed.stderr
    );
    assert_eq!(copied(&out).1, "WORLD\n");
}

#[test]
fn two_stores_and_two_folders_give_the_same_digest() {
    let (a, b) = (Env::new(), Env::new());
    let mut digests = Vec::new();
    for env in [&a, &b] {
        let dir = env.path("somewhere/p");
        project(&dir, UPPER, "/app/out");
        let r = env.hoist(&["build", &dir.display().to_string()]);
        digests.push(r.ok().trim().to_owned());
    }
    assert_eq!(
        digests[0], digests[1],
        "the stamp file's time is not in the image"
    );
}

#[test]
fn stage_errors_name_the_stage_the_step_and_the_path() {
    let env = Env::new();
    let dir = env.path("p");
    let out = env.path("img.tar");
    let o = format!("oci-archive:{}", out.display());
    project(&dir, "echo compiling; echo broken >&2; exit 3", "/app/out");
    let r = env.hoist(&["build", &dir.display().to_string(), "-o", &o]);
    r.fails_with("stage `build`, step run `sh -c");
    assert!(r.stderr.contains("broken"), "{}", r.stderr);
    assert!(!out.exists(), "no output written");

    let dir = env.path("q");
    project(&dir, UPPER, "/app/outt");
    let r = env.hoist(&["build", &dir.display().to_string(), "-o", &o]);
    r.fails_with("copy from stage `build`: `/app/outt` does not exist in the stage (/app/ holds ");
    assert!(r.stderr.contains("out"), "{}", r.stderr);
    assert!(!out.exists(), "no output written");

    let dir = env.path("r");
    project(&dir, UPPER, "/app/out");
    let toml = std::fs::read_to_string(dir.join("hoist.toml")).unwrap();
    std::fs::write(
        dir.join("hoist.toml"),
        toml.replace("stage = \"build\"", "stage = \"bild\""),
    )
    .unwrap();
    let r = env.hoist(&["build", &dir.display().to_string(), "--dry-run"]);
    r.fails_with("hoist.toml:14:");
    r.fails_with("there is no stage `bild`; its stages are build");
}

/// PATH without node and npm (the host's own are in /usr/bin).
fn path_without_node() -> String {
    let dir = tempfile::tempdir().unwrap().keep();
    for tool in ["sh", "tar", "git", "newuidmap", "newgidmap", "getent"] {
        if let Ok(p) = which(tool) {
            let _ = std::os::unix::fs::symlink(p, dir.join(tool));
        }
    }
    assert!(
        !dir.join("node").exists() && !dir.join("npm").exists(),
        "node hidden"
    );
    dir.display().to_string()
}

fn which(tool: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
        .ok_or(())
}

#[test]
fn nextjs_builds_in_a_stage_with_no_node_on_the_host_and_serves() {
    require_podman();
    let env = Env::new();
    let dir = env.path("nextjs");
    crate::support::copy_tree(&testdata("nextjs"), &dir);
    let toml = std::fs::read_to_string(dir.join("hoist.toml")).unwrap();
    let node = base("node.oci.tar");
    std::fs::write(
        dir.join("hoist.toml"),
        toml.replace(
            "oci-archive:../../target/bases/node.oci.tar",
            &format!("oci-archive:{}", node.display()),
        ),
    )
    .unwrap();
    let path = path_without_node();
    let d = dir.display().to_string();
    let archive = env.path("next.tar");
    let o = format!("oci-archive:{}", archive.display());
    let tag = "localhost/stages-next:test";
    let built = env.hoist_with(&["build", &d, "-o", &o, "--tag", tag], &[("PATH", &path)]);
    built.ok();
    assert!(
        built.stderr.contains("next build (built)"),
        "{}",
        built.stderr
    );

    // No change: nothing runs in the sandbox.
    let dry = env.hoist_with(&["build", &d, "--dry-run"], &[("PATH", &path)]);
    assert!(
        dry.ok()
            .contains("copy    reuse  stage build:/app/.next/standalone -> /app"),
        "{}",
        dry.stdout
    );
    let again = env.hoist_with(&["build", &d, "-o", &o, "--tag", tag], &[("PATH", &path)]);
    assert!(!again.stderr.contains("stage   build"), "{}", again.stderr);
    assert_eq!(again.ok(), built.ok());

    podman_store(&["load", "-i", &archive.display().to_string()]).ok();
    let cfg = crate::support::skopeo_config(&o);
    assert_eq!(cfg["config"]["User"], "1001:1001", "{cfg}");
    let port = crate::support::free_port();
    let health = podman_serve(tag, port, "/api/health");
    assert!(health.contains("ok"), "{health}");
    let port = crate::support::free_port();
    let asset = podman_serve(tag, port, "/hello.txt");
    // The page names its JS and CSS under /_next/static (the stage's
    // .next/static copy): one of them is served.
    let port = crate::support::free_port();
    let page = podman_serve(tag, port, "/");
    let at = page
        .find("/_next/static/")
        .expect("the page links /_next/static");
    let link = &page[at..];
    let link = &link[..link.find(['"', '\'']).unwrap_or(link.len())];
    let port = crate::support::free_port();
    let js = podman_serve(tag, port, link);
    podman_store(&["rmi", "-f", tag]);
    assert!(!js.is_empty(), "{link} served");
    let want = std::fs::read_to_string(dir.join("public/hello.txt")).unwrap();
    assert_eq!(asset, want);
}

/// Every path in the layers hoist added to the image in `layout`.
fn added_paths(layout: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for (what, digest) in crate::support::layers_by_history(layout) {
        if !what.starts_with("hoist ") {
            continue;
        }
        let blob = layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        let list = run("tar", &["tzf", &blob.display().to_string()]);
        out.extend(list.ok().lines().map(str::to_owned));
    }
    out
}

#[test]
fn typescript_express_builds_with_the_node_recipe_and_ships_only_js_and_prod_deps() {
    require_podman();
    let env = Env::new();
    let dir = env.path("ts-express");
    crate::support::copy_tree(&testdata("ts-express"), &dir);
    let d = dir.display().to_string();
    let b = format!("oci-archive:{}", base("node.oci.tar").display());
    let out = env.path("img");
    let o = format!("oci:{}", out.display());
    let tar = env.path("img.tar");
    let a = format!("oci-archive:{}", tar.display());
    let tag = "localhost/stages-ts:test";
    let path = path_without_node();
    let args = [
        "build", &d, "--recipe", "node", "--base", &b, "-o", &o, "-o", &a, "--tag", tag,
    ];
    let built = env.hoist_with(&args, &[("PATH", &path)]);
    built.ok();
    assert!(
        built.stderr.contains("tsc' (built)"),
        "tsc ran in the stage: {}",
        built.stderr
    );
    let paths = added_paths(&out);
    assert!(paths.iter().any(|p| p == "app/dist/server.js"), "{paths:?}");
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("app/node_modules/express/")),
        "prod deps: {paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.contains("node_modules/typescript/")
            || p.contains("node_modules/@types/")
            || p.ends_with(".ts") && !p.ends_with(".d.ts")
            || p.starts_with("app/src")),
        "no typescript, no .ts sources: {:?}",
        paths
            .iter()
            .filter(|p| p.contains("typescript") || p.ends_with(".ts"))
            .collect::<Vec<_>>()
    );
    podman_store(&["load", "-i", &tar.display().to_string()]).ok();
    let port = crate::support::free_port();
    let health = podman_serve(tag, port, "/health");
    podman_store(&["rmi", "-f", tag]);
    assert!(health.contains("ok"), "{health}");

    // No change: no sandbox process, the same image.
    let again = env.hoist_with(&args, &[("PATH", &path)]);
    assert!(!again.stderr.contains("stage   build"), "{}", again.stderr);
    assert_eq!(again.ok(), built.ok());

    // A code change: the build step and the copy of its output are all
    // that is rebuilt.
    let server = dir.join("src/server.ts");
    let code = std::fs::read_to_string(&server).unwrap();
    std::fs::write(&server, format!("{code}\n// a change\n")).unwrap();
    let dry = env.hoist_with(
        &["build", &d, "--recipe", "node", "--base", &b, "--dry-run"],
        &[("PATH", &path)],
    );
    let text = dry.ok();
    assert!(text.contains("changed: /app/src/server.ts"), "{text}");
    assert!(text.contains("tsc': build its inputs changed"), "{text}");
    for reused in ["user    reuse", "deps    reuse", "app     reuse"] {
        assert!(text.contains(reused), "{reused}: {text}");
    }
    assert!(
        text.contains("copy    build  stage build:/app/dist"),
        "{text}"
    );
    let changed = env.hoist_with(&args, &[("PATH", &path)]);
    changed.ok();
    let table = &changed.stderr;
    for (kind, how) in [
        ("user", "reused"),
        ("deps", "reused"),
        ("app", "reused"),
        ("copy", "built"),
    ] {
        assert!(
            table
                .lines()
                .any(|l| l.trim_start().starts_with(kind) && l.trim_end().ends_with(how)),
            "{kind} {how}: {table}"
        );
    }
}

#[test]
fn a_fresh_job_gets_the_stage_result_from_the_registry_cache_and_runs_no_stage() {
    let reg = crate::rcache::registry("plain");
    let cache = format!("{reg}/{}", crate::rcache::unique_repo("rcache-stage"));
    let build = |env: &Env, flag: &str| {
        let dir = env.path("p");
        project(&dir, UPPER, "/app/out");
        let out = env.path("img");
        let o = format!("oci:{}", out.display());
        env.hoist(&["build", &dir.display().to_string(), "-o", &o, flag, &cache])
    };

    // Job 1: an empty store; the stage runs and its result is shared.
    let job1 = Env::new();
    let run1 = build(&job1, "--cache-to");
    let digest1 = run1.ok().trim().to_owned();
    assert!(
        run1.stderr.contains("stage   build:") && run1.stderr.contains("(built)"),
        "{}",
        run1.stderr
    );
    assert!(
        run1.stderr.contains("cache   stage-copy shared to"),
        "{}",
        run1.stderr
    );

    // Job 2: another empty store: the copy's layer comes from the cache,
    // no stage step runs, and the image is the same.
    let job2 = Env::new();
    let run2 = build(&job2, "--cache-from");
    let digest2 = run2.ok().trim().to_owned();
    assert!(
        run2.stderr.contains("cache   stage-copy hit in"),
        "{}",
        run2.stderr
    );
    assert!(!run2.stderr.contains("stage   build"), "{}", run2.stderr);
    assert_eq!(digest2, digest1, "the same image");
    assert_eq!(copied(&job2.path("img")).1, "HELLO\n");

    // A cache nobody answers at: reported, and the stage runs as without.
    let job3 = Env::new();
    let dead = "127.0.0.1:9/cache";
    let dir = job3.path("p");
    project(&dir, UPPER, "/app/out");
    let run3 = job3.hoist(&["build", &dir.display().to_string(), "--cache-from", dead]);
    assert_eq!(run3.ok().trim(), digest1);
    assert!(
        run3.stderr
            .contains(&format!("cache   --cache-from {dead}"))
            && run3.stderr.contains("(built)"),
        "{}",
        run3.stderr
    );
}
