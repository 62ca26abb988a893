//! The fault suite (issue 18, item 7): hoist killed mid-build, builds
//! racing on one store, a disk that fills up, a registry that drops,
//! stalls and fails requests mid-transfer, and a 1.5 GB layer through
//! pull, build and push with flat memory.
//!
//! What each fault may never do is the same: leave a store blob that does
//! not match its digest, serve half a file as an output, or push a
//! manifest whose blobs are not all there.
//!
//! The long runs (50 kills, the 1.5 GB layer) run only with
//! `HOIST_TEST_SLOW=1`, which CI sets (.ci/run); without it the kill loop
//! is short and the large-layer test says it is skipped.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::fault_proxy::Proxy;
use crate::rcache::{registry, unique_repo};
use crate::support::*;

/// Whether the slow parts run (`HOIST_TEST_SLOW=1`).
fn slow() -> bool {
    std::env::var("HOIST_TEST_SLOW").is_ok_and(|v| v == "1")
}

/// A seeded xorshift: the same kill points on every run.
struct Rng(u64);

impl Rng {
    /// A fraction in [0, 1).
    fn next_fraction(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Every file in a blob folder (`blobs/sha256` of a store or a layout)
/// matches the digest it is named by; files whose name starts with `.`
/// (an unfinished write's temporary name) are skipped when `temps_allowed`
/// and refused otherwise. Returns how many were skipped.
fn assert_blobs_match(dir: &Path, temps_allowed: bool) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0; // nothing written yet: nothing to be inconsistent
    };
    let mut temps = 0;
    for entry in rd {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if temps_allowed && name.starts_with('.') {
            temps += 1;
            continue;
        }
        assert!(
            name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "a file that is not a blob among the blobs: {}",
            p.display()
        );
        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
        let mut f = std::fs::File::open(&p).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = std::io::Read::read(&mut f, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            sha2::Digest::update(&mut hasher, &buf[..n]);
        }
        let hex = hex::encode(sha2::Digest::finalize(hasher));
        assert_eq!(name, hex, "blob {} does not match its name", p.display());
    }
    temps
}

/// Every blob in the store at `cache` matches the digest it is named by,
/// nothing else sits among the blobs, and `hoist cache verify` (which also
/// checks that every entry's blobs are there) agrees.
fn assert_store_consistent(cache: &Path) {
    if !cache.exists() {
        return;
    }
    assert_blobs_match(&cache.join("blobs/sha256"), false);
    run_env(
        env!("CARGO_BIN_EXE_hoist"),
        &["cache", "verify", "-q"],
        &[("HOIST_CACHE", cache.to_str().unwrap())],
    )
    .ok();
}

/// An OCI layout that builds update in place stays whole: every image its
/// index.json names reads with skopeo, and its blobs match their names.
/// Returns the temporary files left in its blob folder.
fn assert_layout_whole(layout: &Path) -> usize {
    let Ok(text) = std::fs::read(layout.join("index.json")) else {
        return 0; // not made yet
    };
    let index: serde_json::Value = serde_json::from_slice(&text)
        .unwrap_or_else(|e| panic!("{}/index.json is not whole: {e}", layout.display()));
    for m in index["manifests"].as_array().unwrap() {
        if let Some(tag) = m["annotations"]["org.opencontainers.image.ref.name"].as_str() {
            run(
                "skopeo",
                &["inspect", &format!("oci:{}:{tag}", layout.display())],
            )
            .ok();
        }
    }
    assert_blobs_match(&layout.join("blobs/sha256"), true)
}

/// The store's unfinished writes (its `tmp/` folder).
fn store_temp_files(cache: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache.join("tmp"))
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

/// An output path is either absent or a complete archive skopeo reads.
fn assert_absent_or_complete(out: &Path) {
    if out.exists() {
        // `skopeo inspect` reads the index, the manifest and the config.
        run(
            "skopeo",
            &["inspect", &format!("oci-archive:{}", out.display())],
        )
        .ok();
    }
}

/// Files hoist left beside `out` while writing it (`.NAME.*.tmp`).
fn temp_beside(out: &Path) -> Vec<PathBuf> {
    let prefix = format!(".{}.", out.file_name().unwrap().to_string_lossy());
    std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .collect()
}

/// hoist as a child process with the store at `cache`.
fn hoist_cmd(cache: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
    cmd.args(args)
        .env("HOIST_CACHE", cache)
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The digest a build prints on stdout.
fn digest_of(stdout: &str) -> String {
    let d = stdout.trim().to_owned();
    assert!(d.starts_with("sha256:"), "a digest on stdout: {d}");
    d
}

/// The arguments of a build of `app` on a test base into the archive `out`.
fn build_args(app: &Path, base_file: &str, out: &Path) -> Vec<String> {
    build_to(app, base_file, &format!("oci-archive:{}", out.display()))
}

/// The arguments of a build of `app` on a test base into `output`.
fn build_to(app: &Path, base_file: &str, output: &str) -> Vec<String> {
    vec![
        "build".into(),
        app.display().to_string(),
        "--base".into(),
        format!("oci-archive:{}", base(base_file).display()),
        "--user".into(),
        "agent".into(),
        "--output".into(),
        output.into(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// (a) `kill -9` at points spread over a build, again and again on one
/// store: the next build always succeeds with the digest a clean store
/// gives, the store always matches its digests, and an output path is
/// always absent or a whole archive, and an OCI layout updated in place
/// keeps every image it had. Each round changes the app (a new app layer
/// to write) and alternates bases and outputs; every fourth round empties
/// the store first, so kills also land in base imports.
#[test]
fn kill_9_at_random_points_leaves_a_store_the_next_build_trusts() {
    require("skopeo", "skopeo");
    let rounds = if slow() { 50 } else { 8 };
    let env = Env::new();
    let app = env.path("app");
    small_app(&app);
    let cache = env.path("cache");
    let bases = ["debian.oci.tar", "busybox.oci.tar"];
    let layout = env.path("layout");
    let set_round = |i: usize| {
        std::fs::write(app.join("data.bin"), noise(3 << 20, i as u8)).unwrap();
    };

    // How long a build takes from an empty store (`cold`) and with the
    // base already stored (`warm`), to spread the kills over each.
    set_round(0);
    let reference_store = env.path("reference-cache");
    let reference_cache = [("HOIST_CACHE", reference_store.to_str().unwrap())];
    let started = Instant::now();
    let reference = env.hoist_with(
        &strs(&build_args(&app, bases[0], &env.path("reference.tar"))),
        &reference_cache,
    );
    let first_digest = digest_of(reference.ok());
    let cold = started.elapsed();
    set_round(1);
    let t = Instant::now();
    env.hoist_with(
        &strs(&build_args(&app, bases[0], &env.path("reference.tar"))),
        &reference_cache,
    )
    .ok();
    let warm = t.elapsed();
    eprintln!("faults: a build takes {cold:?} from an empty store, {warm:?} with the base stored; {rounds} kills");

    let mut rng = Rng(0x5eed_f00d_1234_5678);
    let (mut cold, mut warm) = (cold, warm);
    let mut finished_before_kill = 0;
    let mut last = None;
    for i in 0..rounds {
        let base_file = bases[(i / 2) % bases.len()];
        let is_cold = i % 4 == 0;
        // Even rounds write a new archive; odd ones add a tag to one OCI
        // layout, updated in place.
        let out = env.path(&format!("out-{i}.tar"));
        let args = if i % 2 == 0 {
            build_args(&app, base_file, &out)
        } else {
            build_to(&app, base_file, &format!("oci:{}:r{i}", layout.display()))
        };
        // A build that ends before its kill (the machine was faster than
        // measured) teaches the real duration, and the round is tried
        // again with new app bytes, so that every round kills a build.
        let mut seed = i;
        let mut landed = false;
        for attempt in 0..4 {
            seed = i + 1000 * attempt;
            set_round(seed);
            if is_cold && (i != 0 || attempt != 0) {
                env.hoist(&["cache", "prune", "--all", "-q"]).ok();
            }
            let span = if is_cold { cold } else { warm };
            let delay = span.mul_f64(0.02 + 0.98 * rng.next_fraction());
            let started = Instant::now();
            let mut child = hoist_cmd(&cache, &strs(&args)).spawn().unwrap();
            let mut ended = None;
            while started.elapsed() < delay {
                if child.try_wait().unwrap().is_some() {
                    ended = Some(started.elapsed());
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let _ = child.kill(); // SIGKILL
            child.wait().unwrap();
            assert_absent_or_complete(&out);
            assert_layout_whole(&layout);
            assert_store_consistent(&cache);
            match ended {
                Some(took) => {
                    finished_before_kill += 1;
                    *(if is_cold { &mut cold } else { &mut warm }) = took;
                }
                None => {
                    landed = true;
                    break;
                }
            }
        }
        assert!(
            landed,
            "round {i}: four builds in a row ended before their kill"
        );

        let again = env.hoist(&strs(&args));
        let digest = digest_of(again.ok());
        if i % 2 == 0 {
            assert_absent_or_complete(&out);
            assert!(out.exists(), "round {i}: the build wrote {}", out.display());
            // The killed writer's temporary archive went with the next write.
            assert_eq!(temp_beside(&out), Vec::<PathBuf>::new(), "round {i}");
        } else {
            // The killed writer's temporary blobs went with the next write.
            assert_eq!(
                assert_layout_whole(&layout),
                0,
                "round {i}: no temporary blobs"
            );
            run(
                "skopeo",
                &["inspect", &format!("oci:{}:r{i}", layout.display())],
            )
            .ok();
        }
        if seed == 0 {
            assert_eq!(digest, first_digest, "round 0 gives a clean store's digest");
        }
        last = Some((args, digest));
    }
    assert_store_consistent(&cache);
    // What a kill -9 leaves in the store's tmp/ is never served and goes
    // at the next prune.
    eprintln!(
        "faults: left by the kills: {} unfinished writes in the store's tmp/",
        store_temp_files(&cache).len()
    );
    // The last round's result is what an empty store builds.
    let (args, digest) = last.unwrap();
    let clean = env.hoist_with(
        &strs(&args),
        &[("HOIST_CACHE", env.path("clean-cache").to_str().unwrap())],
    );
    assert_eq!(digest_of(clean.ok()), digest);
    eprintln!(
        "faults: {rounds} builds killed midway ({finished_before_kill} more ended before their kill) in {:?}",
        started.elapsed()
    );
}

/// Takes every lock file of the store exclusively without waiting: no
/// lock is held by a process that has ended.
fn assert_no_lock_held(cache: &Path) {
    let mut locks = Vec::new();
    let mut todo = vec![cache.to_owned()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                todo.push(p);
            } else if p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n == "lock" || n.ends_with(".lock")
            }) {
                locks.push(p);
            }
        }
    }
    assert!(!locks.is_empty(), "the store has its lock file");
    for p in locks {
        let f = std::fs::OpenOptions::new().read(true).open(&p).unwrap();
        // SAFETY: the descriptor is open while `f` lives.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(r, 0, "{} is still locked", p.display());
    }
}

/// (b) Four builds at once on one empty store: two of the same image, one
/// of the same app on another base, one of another app. All succeed, the
/// same input gives the same digest (and the digest a store of its own
/// gives), and no lock is held afterwards.
#[test]
fn four_builds_at_once_on_one_store() {
    require("skopeo", "skopeo");
    let env = Env::new();
    let (app, other) = (env.path("app"), env.path("other"));
    small_app(&app);
    std::fs::write(app.join("data.bin"), noise(4 << 20, 1)).unwrap();
    small_app(&other);
    std::fs::write(other.join("data.bin"), noise(4 << 20, 2)).unwrap();
    let cache = env.path("cache");
    let builds = [
        build_args(&app, "debian.oci.tar", &env.path("same-1.tar")),
        build_args(&app, "debian.oci.tar", &env.path("same-2.tar")),
        build_args(&app, "busybox.oci.tar", &env.path("busybox.tar")),
        build_args(&other, "debian.oci.tar", &env.path("other.tar")),
    ];
    let children: Vec<_> = builds
        .iter()
        .map(|args| hoist_cmd(&cache, &strs(args)).spawn().unwrap())
        .collect();
    let digests: Vec<String> = children
        .into_iter()
        .zip(&builds)
        .map(|(child, args)| {
            let o = child.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "hoist {} failed:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr)
            );
            digest_of(&String::from_utf8_lossy(&o.stdout))
        })
        .collect();
    assert_eq!(digests[0], digests[1], "the same input, the same digest");
    assert_ne!(digests[0], digests[2]);
    assert_ne!(digests[0], digests[3]);
    for name in ["same-1.tar", "same-2.tar", "busybox.tar", "other.tar"] {
        run(
            "skopeo",
            &[
                "inspect",
                &format!("oci-archive:{}", env.path(name).display()),
            ],
        )
        .ok();
    }
    let alone = env.hoist_with(
        &strs(&builds[3]),
        &[("HOIST_CACHE", env.path("alone").to_str().unwrap())],
    );
    assert_eq!(
        digest_of(alone.ok()),
        digests[3],
        "as a store of its own gives"
    );
    assert_no_lock_held(&cache);
    assert_eq!(store_temp_files(&cache), Vec::<PathBuf>::new());
    assert_store_consistent(&cache);
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    /// Mounts a tmpfs of `size` at `dir`, or says why it cannot.
    fn mount(dir: &Path, size: &str) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(dir).unwrap();
        let r = run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                dir.to_str().unwrap(),
            ],
        );
        if r.status != 0 {
            return Err(format!("mount -t tmpfs failed: {}", r.stderr.trim()));
        }
        Ok(SmallDisk(dir.to_owned()))
    }

    fn resize(&self, size: &str) {
        run(
            "mount",
            &[
                "-o",
                &format!("remount,size={size}"),
                self.0.to_str().unwrap(),
            ],
        )
        .ok();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// (c) A store and an output on a disk that fills up: first while the
/// base goes into the store, then while the archive is written. Each time
/// a clear error names the full disk, the store still matches its
/// digests with no unfinished write left in it, and there is no output
/// file (whole or partial); once there is room the same build works.
#[test]
fn a_full_disk_gives_a_clear_error_and_leaves_no_partial_file() {
    require("skopeo", "skopeo");
    let env = Env::new();
    let app = env.path("app");
    small_app(&app);
    std::fs::write(app.join("data.bin"), noise(4 << 20, 3)).unwrap();
    let disk = match SmallDisk::mount(&env.path("disk"), "12m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("SKIPPED a_full_disk_gives_a_clear_error: {why} (run as root where mounts are allowed)");
            return;
        }
    };
    let cache = disk.0.join("cache");
    let out = disk.0.join("out.tar");
    let args = build_args(&app, "debian.oci.tar", &out);
    let cache_env = [("HOIST_CACHE", cache.to_str().unwrap())];
    // 12 MB: the base (30 MB) does not fit into the store.
    // 40 MB: the store takes the base and the layers; the archive (~40 MB) does not fit.
    for (size, what) in [("12m", "the store"), ("40m", "the output")] {
        disk.resize(size);
        let r = env.hoist_with(&strs(&args), &cache_env);
        r.fails_with("");
        eprintln!("faults: {what} full at {size}: {}", r.stderr.trim());
        let says = match what {
            "the store" => format!(
                "no space left on the disk of the store at {}",
                cache.display()
            ),
            _ => format!(
                "cannot write {}: no space left on the disk of",
                out.display()
            ),
        };
        assert!(
            r.stderr.contains(&says),
            "{what}: the error says `{says}`:\n{}",
            r.stderr
        );
        assert!(!out.exists(), "{what}: no output file");
        assert_eq!(
            temp_beside(&out),
            Vec::<PathBuf>::new(),
            "{what}: nothing beside the output"
        );
        assert_eq!(
            store_temp_files(&cache),
            Vec::<PathBuf>::new(),
            "{what}: no unfinished write in the store"
        );
        assert_store_consistent(&cache);
    }
    disk.resize("150m");
    let digest = digest_of(env.hoist_with(&strs(&args), &cache_env).ok());
    assert_absent_or_complete(&out);
    let clean = env.hoist_with(
        &strs(&build_args(&app, "debian.oci.tar", &env.path("clean.tar"))),
        &[("HOIST_CACHE", env.path("clean-cache").to_str().unwrap())],
    );
    assert_eq!(digest_of(clean.ok()), digest);
    assert_store_consistent(&cache);
}

/// Copies a test base into the plain registry.
fn seed_plain(base_file: &str, repo: &str) -> String {
    let reference = format!("{}/{repo}:1", registry("plain"));
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &format!("oci-archive:{}", base(base_file).display()),
            &format!("docker://{reference}"),
        ],
    )
    .ok();
    reference
}

/// The pushed image under `reference` is whole: skopeo copies it out of
/// the registry (every blob fetched and checked against its digest).
fn assert_pushed_whole(env: &Env, reference: &str, into: &str) {
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            "--src-tls-verify=false",
            &format!("docker://{reference}"),
            &format!("oci:{}", env.path(into).display()),
        ],
    )
    .ok();
}

/// Every rule of `faults` was applied to some request in the proxy's log.
fn assert_injected(requests: &[serde_json::Value], faults: &str) {
    let faulted: Vec<&str> = requests
        .iter()
        .filter_map(|r| r["fault"].as_str())
        .collect();
    for rule in faults.split(',') {
        assert!(faulted.contains(&rule), "{rule} was injected: {faulted:?}");
    }
}

/// The request that `rule` answered (with `Retry-After: secs`) was sent
/// again no sooner than the server asked.
fn assert_waited_after(requests: &[serde_json::Value], rule: &str, secs: f64) {
    let f = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap_or(0.0);
    let hit = requests
        .iter()
        .find(|r| r["fault"] == rule)
        .unwrap_or_else(|| panic!("{rule} was injected"));
    let answered = f(hit, "ts") + f(hit, "dur_ms") / 1000.0;
    let again = requests
        .iter()
        .filter(|r| {
            r["method"] == hit["method"]
                && r["path"].as_str().map(|p| p.split('?').next())
                    == hit["path"].as_str().map(|p| p.split('?').next())
        })
        .map(|r| f(r, "ts"))
        .filter(|ts| *ts > f(hit, "ts"))
        .fold(f64::INFINITY, f64::min);
    assert!(
        again.is_finite(),
        "after `{rule}` the request was sent again"
    );
    assert!(
        again - answered >= secs - 0.05,
        "after `{rule}` the request came again {:.2}s later, before Retry-After's {secs}s",
        again - answered
    );
}

/// (d) Mid-upload faults: the second 16 MiB chunk of an upload cut off
/// half way (reset), a chunk stalled and then dropped, a chunk answered
/// 429 with `Retry-After: 2` (waited for), a final PUT answered 502, an
/// upload start and a manifest PUT answered 500. Four failed uploads fit
/// the retry budget (5 tries) even when all hit one blob, so the push
/// finishes, and the pushed image is whole.
#[test]
fn pushes_survive_stalls_resets_and_5xx_mid_upload() {
    require("skopeo", "skopeo");
    let env = Env::new();
    let faults = "reset@blob-patch:1+1,stall@blob-patch:1,429@blob-patch:1,502@blob-put:1,500@blob-post:1,500@manifest-put:1";
    let proxy = Proxy::start_with(
        &env,
        &format!("http://{}", registry("plain")),
        &["--faults", faults, "--stall", "3", "--retry-after", "2"],
    );
    let app = env.path("app");
    small_app(&app);
    std::fs::write(app.join("data.bin"), noise(40 << 20, 4)).unwrap();
    let tag = format!("{}/{}:1", proxy.addr, unique_repo("faults-push"));
    let started = Instant::now();
    let pushed = env.hoist(&[
        "build",
        app.to_str().unwrap(),
        "--base",
        &format!("oci-archive:{}", base("debian.oci.tar").display()),
        "--tag",
        &tag,
        "--push",
    ]);
    let digest = digest_of(pushed.ok());
    eprintln!(
        "faults: push through the faults took {:?}",
        started.elapsed()
    );
    let requests = proxy.requests();
    assert_injected(&requests, faults);
    // The retry after the 429 waited the 2 s the registry asked for.
    let line = pushed
        .stderr
        .lines()
        .find(|l| l.contains("HTTP 429"))
        .unwrap_or_else(|| panic!("a retry after the 429:\n{}", pushed.stderr));
    let wait: f64 = line
        .split_once(", in ")
        .and_then(|(_, rest)| rest.split_once("s)"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("a wait in: {line}"));
    assert!(
        wait >= 2.0,
        "waited {wait}s after a 429 asking for 2 s: {line}"
    );
    let direct = tag.replace(&proxy.addr, &registry("plain"));
    let seen = run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            &format!("docker://{direct}"),
        ],
    );
    assert_eq!(seen.ok().trim(), digest);
    assert_pushed_whole(&env, &direct, "pushed");
}

/// (d) Mid-download faults on a pull: a blob cut and reset, one stalled
/// half way and dropped, 500, 502 and 429 with Retry-After, a manifest
/// stalled. The pull finishes with the registry's digest, and the store
/// matches its digests.
#[test]
fn pulls_survive_stalls_resets_and_5xx_mid_download() {
    require("skopeo", "skopeo");
    let env = Env::new();
    let reference = seed_plain("debian.oci.tar", &unique_repo("faults-pull"));
    let faults = "stall@manifest-get:1,reset@blob-get:1,stall@blob-get:1,500@blob-get:1,502@blob-get:1,429@blob-get:1";
    let proxy = Proxy::start_with(
        &env,
        &format!("http://{}", registry("plain")),
        &["--faults", faults, "--stall", "3", "--retry-after", "1"],
    );
    let through = reference.replace(&registry("plain"), &proxy.addr);
    let out = env.path("pulled.tar");
    let started = Instant::now();
    let pulled = env.hoist(&[
        "pull",
        &through,
        "--output",
        &format!("oci-archive:{}", out.display()),
    ]);
    let digest = digest_of(pulled.ok());
    eprintln!(
        "faults: pull through the faults took {:?}",
        started.elapsed()
    );
    let requests = proxy.requests();
    assert_injected(&requests, faults);
    assert_waited_after(&requests, "429@blob-get:1", 1.0);
    let direct = run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            &format!("docker://{reference}"),
        ],
    );
    assert_eq!(digest, direct.ok().trim());
    assert_absent_or_complete(&out);
    assert_store_consistent(&env.path("cache"));
}

/// (d) A registry that fails every upload's final PUT, then one that fails
/// every manifest PUT: the push fails with the registry's own words, and
/// the tag never names a manifest (no manifest is put while a blob is
/// missing).
#[test]
fn a_push_that_cannot_finish_says_why_and_puts_no_manifest() {
    require("skopeo", "skopeo");
    let env = Env::new();
    let app = env.path("app");
    small_app(&app);
    for (faults, words) in [
        ("500@blob-put:*", "fault injected by fault-proxy (500)"),
        ("502@manifest-put:*", "fault injected by fault-proxy (502)"),
    ] {
        let proxy = Proxy::start(&env, faults);
        let tag = format!("{}/{}:1", proxy.addr, unique_repo("faults-down"));
        let started = Instant::now();
        let r = env.hoist(&[
            "build",
            app.to_str().unwrap(),
            "--base",
            &format!("oci-archive:{}", base("busybox.oci.tar").display()),
            "--tag",
            &tag,
            "--push",
        ]);
        r.fails_with(words);
        eprintln!(
            "faults: `{faults}` failed the push after {:?}",
            started.elapsed()
        );
        let stored_manifests = proxy
            .requests()
            .iter()
            .filter(|q| {
                q["kind"] == "manifest" && q["method"] == "PUT" && q["upstream_status"] == 201
            })
            .count();
        assert_eq!(
            stored_manifests, 0,
            "{faults}: no manifest reached the registry"
        );
        let direct = tag.replace(&proxy.addr, &registry("plain"));
        let gone = run(
            "skopeo",
            &[
                "inspect",
                "--tls-verify=false",
                "--raw",
                &format!("docker://{direct}"),
            ],
        );
        assert_ne!(gone.status, 0, "{faults}: the tag names nothing");
    }
}

/// Peak resident memory (KiB) of a command run under /usr/bin/time.
fn peak_rss_kib(program: &str, args: &[&str], env: &[(&str, &str)]) -> (Run, u64) {
    let mut all = vec!["-f", "HOIST-PEAK-RSS %M", program];
    all.extend(args);
    let r = run_env("/usr/bin/time", &all, env);
    let kib = r
        .stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("HOIST-PEAK-RSS "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("/usr/bin/time printed no peak RSS:\n{}", r.stderr));
    (r, kib)
}

/// (e) A 1.5 GB layer of incompressible bytes (made with head, tar, umoci
/// and skopeo) through `hoist pull`, a build on it (its facts read from
/// the layer) and a push of the result to another registry (the layer
/// uploaded, not mounted): hoist's peak RSS stays under 150 MB in each.
#[test]
fn a_1_5_gb_layer_keeps_memory_under_150_mb() {
    if !slow() {
        eprintln!("SKIPPED a_1_5_gb_layer_keeps_memory_under_150_mb: slow (several minutes, ~8 GB of disk); run it with `HOIST_TEST_SLOW=1 scripts/test` (CI does), or `HOIST_TEST_SLOW=1 cargo test --test it faults::` with the lab services up");
        return;
    }
    for (tool, package) in [
        ("umoci", "umoci"),
        ("skopeo", "skopeo"),
        ("tar", "tar"),
        ("gzip", "gzip"),
    ] {
        require(tool, package);
    }
    require("/usr/bin/time", "time");
    let env = Env::new();
    // The base, its layout, the pulled archive, the store and the lab
    // registry's copies take about 8 GB: a disk without them is said, not
    // filled (the temporary folder here, the lab's registries under the
    // checkout's target/).
    let avail = |p: &std::path::Path| -> u64 {
        let out = run("df", &["-B1", "--output=avail", &p.display().to_string()]);
        out.ok()
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0)
    };
    let lab = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let free = avail(env.tmp.path()).min(avail(&lab));
    if free < 10_000_000_000 {
        eprintln!(
            "SKIPPED a_1_5_gb_layer_keeps_memory_under_150_mb: needs ~10 GB free, {} GB free here",
            free / 1_000_000_000
        );
        return;
    }
    let started = Instant::now();
    // The base: busybox plus one layer of 1.5 GB random bytes.
    let tree = env.path("big");
    std::fs::create_dir_all(&tree).unwrap();
    run(
        "sh",
        &[
            "-c",
            "head -c 1500M /dev/urandom > \"$0/data.bin\"",
            tree.to_str().unwrap(),
        ],
    )
    .ok();
    let layer = env.path("big-layer.tar");
    run(
        "tar",
        &[
            "-C",
            tree.to_str().unwrap(),
            "--owner=0",
            "--group=0",
            "-cf",
            layer.to_str().unwrap(),
            "data.bin",
        ],
    )
    .ok();
    std::fs::remove_dir_all(&tree).unwrap();
    let layout = format!("{}:big", env.path("layout").display());
    skopeo_copy(
        &format!("oci-archive:{}", base("busybox.oci.tar").display()),
        &format!("oci:{layout}"),
    );
    run(
        "umoci",
        &[
            "raw",
            "add-layer",
            "--image",
            &layout,
            layer.to_str().unwrap(),
        ],
    )
    .ok();
    std::fs::remove_file(&layer).unwrap();
    let plain = registry("plain");
    let big = format!("{plain}/{}:1", unique_repo("big-base"));
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &format!("oci:{layout}"),
            &format!("docker://{big}"),
        ],
    )
    .ok();
    std::fs::remove_dir_all(env.path("layout")).unwrap();
    eprintln!(
        "faults: the 1.5 GB base made and pushed in {:?}",
        started.elapsed()
    );

    let hoist = env!("CARGO_BIN_EXE_hoist");
    let cache = env.path("cache");
    let cache_env = [("HOIST_CACHE", cache.to_str().unwrap())];
    let limit_kib = 150 * 1024;
    let mut report = Vec::new();

    // pull: the layer downloaded into the store and written to an archive.
    let pulled = env.path("pulled.tar");
    let t = Instant::now();
    let (r, pull_kib) = peak_rss_kib(
        hoist,
        &[
            "pull",
            &big,
            "--output",
            &format!("oci-archive:{}", pulled.display()),
        ],
        &cache_env,
    );
    r.ok();
    report.push(format!("pull {pull_kib} KiB in {:?}", t.elapsed()));
    std::fs::remove_file(&pulled).unwrap();

    // build and push to the Basic registry: the facts read from the layer,
    // the layer uploaded to a registry that does not have it.
    let app = env.path("app");
    small_app(&app);
    let basic = registry("basic");
    let user = std::env::var("HOIST_REGISTRY_USER").unwrap_or("hoist".into());
    let pass = std::env::var("HOIST_REGISTRY_PASSWORD").unwrap_or("hoist-pass".into());
    use base64::Engine as _;
    let auth = env.path("auth.json");
    std::fs::write(
        &auth,
        format!(
            r#"{{"auths":{{"{basic}":{{"auth":"{}"}}}}}}"#,
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        ),
    )
    .unwrap();
    let tag = format!("{basic}/{}:1", unique_repo("big-app"));
    let t = Instant::now();
    let (r, push_kib) = peak_rss_kib(
        hoist,
        &[
            "build",
            app.to_str().unwrap(),
            "--base",
            &format!("docker://{big}"),
            "--user",
            "agent",
            "--tag",
            &tag,
            "--push",
            "--authfile",
            auth.to_str().unwrap(),
        ],
        &cache_env,
    );
    let digest = digest_of(r.ok());
    report.push(format!("build+push {push_kib} KiB in {:?}", t.elapsed()));
    eprintln!("faults: peak RSS: {}", report.join("; "));
    let creds = format!("--creds={user}:{pass}");
    let seen = run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &creds,
            "--format",
            "{{.Digest}}",
            &format!("docker://{tag}"),
        ],
    );
    assert_eq!(seen.ok().trim(), digest);
    assert!(
        pull_kib < limit_kib,
        "pull peak RSS {pull_kib} KiB (limit {limit_kib})"
    );
    assert!(
        push_kib < limit_kib,
        "build+push peak RSS {push_kib} KiB (limit {limit_kib})"
    );
}
