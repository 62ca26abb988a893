//! The store under management: `hoist cache ls/du/prune/verify`,
//! `hoist images` and `hoist history`, and builds sharing one store with
//! each other and with a prune.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::support::*;

fn busybox() -> String {
    format!("oci-archive:{}", base("busybox.oci.tar").display())
}

/// A small app with some bulk, so that a build takes long enough for
/// another process to get in its way.
fn bulky_app(dir: &Path, seed: u8) {
    small_app(dir);
    // Incompressible-ish bytes: a build spends real time on them.
    std::fs::write(dir.join("data.bin"), noise(6_000_000, seed)).unwrap();
}

fn build_args(env: &Env, app: &str, out: &str, tag: &str) -> Vec<String> {
    vec![
        "build".into(),
        env.path(app).display().to_string(),
        "--base".into(),
        busybox(),
        "--user".into(),
        "app".into(),
        "--tag".into(),
        tag.into(),
        "--output".into(),
        format!("oci-archive:{}", env.path(out).display()),
    ]
}

fn hoist_cmd(env: &Env, args: &[String]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
    cmd.args(args)
        .env("HOIST_CACHE", env.path("cache"))
        .env_remove("SOURCE_DATE_EPOCH")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn verify_clean(env: &Env) {
    let out = env.hoist(&["cache", "verify"]);
    assert!(out.ok().contains("all good"), "{}", out.stdout);
}

#[test]
fn two_builds_at_once_on_one_store_both_succeed_and_verify_is_clean() {
    let env = Env::new();
    bulky_app(&env.path("a"), 1);
    bulky_app(&env.path("b"), 2);
    let a = hoist_cmd(&env, &build_args(&env, "a", "a.tar", "a:1"))
        .spawn()
        .unwrap();
    let b = hoist_cmd(&env, &build_args(&env, "b", "b.tar", "b:1"))
        .spawn()
        .unwrap();
    for (name, child) in [("a", a), ("b", b)] {
        let o = child.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "build {name} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        skopeo_raw(&format!(
            "oci-archive:{}",
            env.path(&format!("{name}.tar")).display()
        ));
    }
    verify_clean(&env);
    let images = env.hoist(&["images"]);
    for tag in ["localhost/a:1", "localhost/b:1"] {
        assert!(images.ok().contains(tag), "{}", images.stdout);
    }
}

#[test]
fn a_prune_in_a_loop_does_not_break_running_builds() {
    let env = Env::new();
    bulky_app(&env.path("app"), 3);
    // Fill the store first, so that prunes have plenty to delete that
    // the builds then want back.
    env.hoist(
        &build_args(&env, "app", "warm.tar", "app:warm")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .ok();
    let done = AtomicBool::new(false);
    let prunes = AtomicUsize::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let policies: [&[&str]; 3] = [&["--all"], &["--max-size", "1"], &[]];
            let mut i = 0;
            while !done.load(Ordering::SeqCst) {
                let mut args: Vec<String> = ["cache", "prune", "--wait", "2m"]
                    .map(String::from)
                    .to_vec();
                args.extend(policies[i % 3].iter().map(|a| a.to_string()));
                let o = hoist_cmd(&env, &args).output().unwrap();
                assert!(
                    o.status.success(),
                    "prune failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                prunes.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
        });
        // Builds until at least two prunes have run alongside them (the
        // machine's speed decides how many builds that takes).
        for n in 0.. {
            if n >= 3 && prunes.load(Ordering::SeqCst) >= 2 {
                break;
            }
            assert!(n < 40, "the prunes never ran two rounds during the builds");
            // A new app layer each time, the rest from the store if a
            // prune left it.
            std::fs::write(env.path("app/server.js"), format!("// {n}\n")).unwrap();
            let out = format!("out{n}.tar");
            let o = hoist_cmd(&env, &build_args(&env, "app", &out, "app:1"))
                .output()
                .unwrap();
            let ok = o.status.success();
            if !ok {
                done.store(true, Ordering::SeqCst);
            }
            assert!(
                ok,
                "build {n} failed while pruning: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let m = skopeo_raw(&format!("oci-archive:{}", env.path(&out).display()));
            assert_eq!(m["layers"].as_array().unwrap().len(), 3, "{m}");
        }
        done.store(true, Ordering::SeqCst);
    });
    assert!(prunes.load(Ordering::SeqCst) >= 2, "the prunes did not run");
    verify_clean(&env);
}

fn built(env: &Env) -> String {
    bulky_app(&env.path("app"), 4);
    let args = build_args(env, "app", "out.tar", "app:1");
    env.hoist(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .ok()
        .trim()
        .to_owned()
}

#[test]
fn verify_finds_a_flipped_byte_and_a_dangling_entry_and_repair_mends_them() {
    let env = Env::new();
    let digest = built(&env);
    verify_clean(&env);
    let blobs = env.path("cache/blobs/sha256");
    // The app layer: the largest blob (it holds data.bin).
    let mut all: Vec<_> = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    all.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let victim = all.last().unwrap().clone();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&victim, bytes).unwrap();
    // And an entry whose blob is gone: the user layer's.
    let user_entry = std::fs::read_dir(env.path("cache/keys/user-layer"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let user_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&user_entry).unwrap()).unwrap();
    let user_blob = user_json["descriptor"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::remove_file(blobs.join(user_blob.trim_start_matches("sha256:"))).unwrap();

    let bad = env.hoist(&["cache", "verify"]);
    bad.fails_with("hoist cache verify --repair");
    let victim_hex = victim.file_name().unwrap().to_str().unwrap();
    assert!(
        bad.stdout
            .contains(&format!("corrupt blob sha256:{victim_hex}")),
        "{}",
        bad.stdout
    );
    assert!(
        bad.stdout.contains(&format!("blob {user_blob} is missing")),
        "{}",
        bad.stdout
    );
    assert!(
        bad.stdout.contains("dangling entry user-layer/"),
        "{}",
        bad.stdout
    );

    env.hoist(&["cache", "verify", "--repair"]).ok();
    verify_clean(&env);
    // The next build makes what was removed again, to the same digest.
    let args = build_args(&env, "app", "again.tar", "app:1");
    let again = env.hoist(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(again.ok().trim(), digest);
    verify_clean(&env);
}

#[test]
fn ls_and_du_show_entries_by_category() {
    let env = Env::new();
    built(&env);
    let ls = env.hoist(&["cache", "ls"]);
    let lines: Vec<&str> = ls.ok().lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["CATEGORY", "KIND", "ENTRY", "SIZE", "LAST", "USED"]
    );
    for (cat, kind) in [
        ("bases", "facts"),
        ("layers", "app-layer"),
        ("layers", "user-layer"),
        ("images", "image"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(cat) && l.split_whitespace().nth(1) == Some(kind)),
            "no {cat} {kind} in:\n{}",
            ls.stdout
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(env.hoist(&["cache", "ls", "--json"]).ok()).unwrap();
    let entries = json["entries"].as_array().unwrap();
    let app = entries.iter().find(|e| e["kind"] == "app-layer").unwrap();
    assert!(app["size"].as_u64().unwrap() > 1_000_000, "{app}");
    assert!(app["last_used"].as_u64().unwrap() > 1_700_000_000, "{app}");

    let du = env.hoist(&["cache", "du"]);
    let rows: Vec<Vec<&str>> = du
        .ok()
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["CATEGORY", "ENTRIES", "BLOBS", "SIZE"]);
    let cats: Vec<&str> = rows[1..].iter().map(|r| r[0]).collect();
    for want in ["bases", "layers", "images", "metadata", "total"] {
        assert!(cats.contains(&want), "{}", du.stdout);
    }
    let json: serde_json::Value =
        serde_json::from_str(env.hoist(&["cache", "du", "--json"]).ok()).unwrap();
    let sum: u64 = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, json["total"].as_u64().unwrap());
    // Every blob is counted once: the total is what is on disk.
    let on_disk: u64 = ["blobs/sha256", "tmp"]
        .iter()
        .flat_map(|d| std::fs::read_dir(env.path(&format!("cache/{d}"))).unwrap())
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum::<u64>()
        + std::fs::read_dir(env.path("cache/keys"))
            .unwrap()
            .flat_map(|k| std::fs::read_dir(k.unwrap().path()).unwrap())
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum::<u64>();
    assert_eq!(sum, on_disk);
}

#[test]
fn prune_by_age_and_size_and_all() {
    let env = Env::new();
    let digest = built(&env);
    let blobs = || {
        std::fs::read_dir(env.path("cache/blobs/sha256"))
            .unwrap()
            .count()
    };
    let before = blobs();
    // Everything was just used: an age prune keeps it all.
    env.hoist(&["cache", "prune", "--older-than", "1d"]).ok();
    assert_eq!(blobs(), before);
    // Age the app layer's entry: it goes, and its blob with it.
    let app_dir = env.path("cache/keys/app-layer");
    let app_entry = std::fs::read_dir(&app_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    run(
        "touch",
        &["-d", "10 days ago", &app_entry.display().to_string()],
    )
    .ok();
    // The image record still names the layer: it stays until the record goes.
    let image_entry = env.path(&format!(
        "cache/keys/image/{}",
        digest.trim_start_matches("sha256:")
    ));
    assert!(image_entry.exists());
    run(
        "touch",
        &["-d", "10 days ago", &image_entry.display().to_string()],
    )
    .ok();
    let dry = env.hoist(&["cache", "prune", "--older-than", "7d", "--dry-run"]);
    assert!(
        dry.stderr.contains("would remove 2 entries"),
        "{}",
        dry.stderr
    );
    assert_eq!(blobs(), before);
    let r = env.hoist(&["cache", "prune", "--older-than", "7d"]);
    assert!(r.stderr.contains("removed 2 entries"), "{}", r.stderr);
    assert!(!app_entry.exists() && !image_entry.exists());
    assert!(blobs() < before);
    verify_clean(&env);
    // A budget of one byte leaves nothing; --all too.
    env.hoist(&["cache", "prune", "--max-size", "1"]).ok();
    assert_eq!(blobs(), 0);
    built(&env);
    env.hoist(&["cache", "prune", "--all"]).ok();
    assert_eq!(blobs(), 0);
    assert!(env.hoist(&["images"]).ok().lines().count() == 1);
    env.hoist(&["cache", "prune", "--older-than", "soon"])
        .fails_with("--older-than: `soon` is not an age");
}

#[test]
fn images_and_history_of_a_build() {
    let env = Env::new();
    let digest = built(&env);
    let images = env.hoist(&["images"]);
    let row = images
        .ok()
        .lines()
        .find(|l| l.starts_with("localhost/app:1"))
        .unwrap_or_else(|| panic!("{}", images.stdout));
    let short = &digest["sha256:".len()..][..12];
    assert!(row.contains(short) && row.contains("linux/amd64"), "{row}");
    let json: serde_json::Value =
        serde_json::from_str(env.hoist(&["images", "--json"]).ok()).unwrap();
    assert_eq!(json[0]["manifest"], digest.as_str());
    assert_eq!(json[0]["platforms"][0]["layers"], 3);

    let by_history = |image: &str| {
        let h = env.hoist(&["history", image, "--json"]);
        let v: serde_json::Value = serde_json::from_str(h.ok()).unwrap();
        assert_eq!(v["manifest"], digest.as_str(), "{image}");
        v["steps"].as_array().unwrap().clone()
    };
    let archive = format!("oci-archive:{}", env.path("out.tar").display());
    let steps = by_history("app:1");
    for other in [&digest["sha256:".len()..][..10], &digest, "app", &archive] {
        assert_eq!(by_history(other), steps, "{other}");
    }
    let made: Vec<&str> = steps
        .iter()
        .filter(|s| !s["layer"].is_null())
        .map(|s| s["created_by"].as_str().unwrap())
        .collect();
    assert_eq!(made.len(), 3, "{made:?}");
    assert!(made[1].contains("user"), "{made:?}");
    assert!(made[2].contains("hoist app"), "{made:?}");
    let text = env.hoist(&["history", "app:1"]);
    let lines: Vec<&str> = text.ok().lines().collect();
    assert!(lines[1].starts_with("LAYER"), "{}", text.stdout);
    let top_layer = lines[2..].iter().find(|l| !l.starts_with("<none>"));
    assert!(
        top_layer.is_some_and(|l| l.contains("hoist app")),
        "newest first:\n{}",
        text.stdout
    );

    env.hoist(&["history", "nope:1"]).fails_with("hoist images");
    env.hoist(&["history", "docker://example.com/x:1"])
        .fails_with("hoist pull example.com/x:1");
}
