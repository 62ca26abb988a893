//! Dockerfile ADD and FROM scratch against the real thing: local tar
//! archives extracted as `docker build` extracts them (the same Dockerfile
//! built by both, the trees listed by the same tar), URLs downloaded from
//! a local HTTP server with good and bad checksums, and an image from
//! scratch holding a static busybox that runs under podman.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::*;

/// A folder tree with the modes and links an archive carries, packed by
/// GNU tar (every entry owned by 1000:50) and compressed by the system's
/// tools; `fake.tar.gz` is an empty file that only looks like one.
fn archives(ctx: &Path) {
    let src = ctx.join("src");
    let app = src.join("app");
    for d in ["bin", "data", "private"] {
        std::fs::create_dir_all(app.join(d)).unwrap();
    }
    let files: &[(&str, &str, u32)] = &[
        ("bin/tool", "#!/bin/sh\necho tool\n", 0o755),
        ("secret", "s3cret\n", 0o600),
        ("setuid", "x\n", 0o4755),
        ("data/readme.txt", "read me\n", 0o644),
    ];
    for (f, body, mode) in files {
        let p = app.join(f);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(*mode)).unwrap();
    }
    std::fs::set_permissions(
        app.join("private"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    std::os::unix::fs::symlink("bin/tool", app.join("latest")).unwrap();
    std::fs::hard_link(app.join("bin/tool"), app.join("bin/tool2")).unwrap();
    let tar = ctx.join("app.tar");
    run(
        "tar",
        &[
            "--numeric-owner",
            "--owner=1000",
            "--group=50",
            "--sort=name",
            "-cf",
            tar.to_str().unwrap(),
            "-C",
            src.to_str().unwrap(),
            "app",
        ],
    )
    .ok();
    for (tool, ext) in [
        ("gzip", "gz"),
        ("bzip2", "bz2"),
        ("xz", "xz"),
        ("zstd", "zst"),
    ] {
        let out = Command::new(tool)
            .args(["-c", tar.to_str().unwrap()])
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e} (apt-get install {tool})"));
        assert!(out.status.success(), "{tool}");
        std::fs::write(ctx.join(format!("app.tar.{ext}")), out.stdout).unwrap();
    }
    std::fs::write(ctx.join("fake.tar.gz"), b"").unwrap();
    std::fs::remove_dir_all(&src).unwrap();
}

/// `tar -tv` of what `tar -cf - -C / PATH` (busybox's tar, in the image)
/// packs: `mode uid/gid name [-> target]`, without sizes and dates (a
/// hard link's first name depends on the filesystem's order, so a hard
/// link reads as a file).
fn listed(tool: &str, tool_env: &[(&str, &str)], image: &str, path: &str) -> Vec<String> {
    let mut c = Command::new(tool);
    c.args([
        "run",
        "--rm",
        "--network=host",
        "--user",
        "0",
        "--entrypoint",
        "tar",
    ])
    .args([image, "-cf", "-", "-C", "/", path]);
    for (k, v) in tool_env {
        c.env(k, v);
    }
    let packed = c.output().unwrap();
    assert!(
        packed.status.success(),
        "{tool} run {image}: {}",
        String::from_utf8_lossy(&packed.stderr)
    );
    tv(&packed.stdout)
}

/// GNU tar's verbose listing of a tar stream, normalised as `listed` says.
fn tv(bytes: &[u8]) -> Vec<String> {
    let mut t = Command::new("tar")
        .args(["-tv", "--numeric-owner", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = t.stdin.take().unwrap();
    let data = bytes.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let out = t.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let mode = f[0].replacen('h', "-", 1);
            let name = f[5..].join(" ");
            let name = name
                .split(" link to ")
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_owned();
            format!("{mode} {} {name}", f[1])
        })
        .collect();
    lines.sort();
    lines
}

const ADD_ARCHIVES: &str = "ADD app.tar.gz /opt/gz/\nADD app.tar.bz2 /opt/bz2\nADD app.tar.xz /opt/xz/\nADD --chown=7:8 app.tar /opt/own/\nADD fake.tar.gz /opt/fake/\n";

/// ADD of local archives (gzip, bzip2, xz, plain; --chown; an empty
/// `.tar.gz` copied as a file) gives the tree `docker build` gives, and
/// the archive's own modes and owners.
#[test]
fn add_archives_match_docker_build() {
    require_podman();
    for (t, p) in [("bzip2", "bzip2"), ("xz", "xz-utils"), ("zstd", "zstd")] {
        require(t, p);
    }
    let Some(host) = std::env::var_os("HOIST_TEST_DOCKER_HOST") else {
        panic!("no dockerd for tests: run `scripts/dockerd start` and set HOIST_TEST_DOCKER_HOST (scripts/test does)");
    };
    let host = host.to_string_lossy().into_owned();
    let denv = [("DOCKER_HOST", host.as_str()), ("DOCKER_BUILDKIT", "1")];
    let env = Env::new();
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    archives(&ctx);
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("ARG BASE\nFROM ${{BASE}}\n{ADD_ARCHIVES}"),
    )
    .unwrap();

    // docker: the busybox base loaded with skopeo.
    let name = "hoist-df-busybox:base";
    let dtar = env.path("busybox.docker.tar");
    skopeo_copy(
        &format!("oci-archive:{}", base("busybox.oci.tar").display()),
        &format!("docker-archive:{}:{name}", dtar.display()),
    );
    run_env(
        "/usr/bin/docker",
        &["load", "-i", dtar.to_str().unwrap()],
        &denv,
    )
    .ok();
    let barg = format!("BASE={name}");
    run_env(
        "/usr/bin/docker",
        &[
            "build",
            "--network",
            "host",
            "--build-arg",
            &barg,
            "-t",
            "hoist-df-add:docker",
            ctx.to_str().unwrap(),
        ],
        &denv,
    )
    .ok();

    // hoist.
    let tag = "localhost/hoist-df-add:hoist";
    let out = env.path("add.docker.tar");
    let harg = format!("BASE=oci-archive:{}", base("busybox.oci.tar").display());
    let o = format!("docker-archive:{}", out.display());
    build_ctx(&env, &ctx, &o, &["--build-arg", &harg, "--tag", tag]).ok();
    let _loaded = Loaded::load(&out, tag);

    let ours = listed("podman", &[], tag, "opt");
    let theirs = listed("/usr/bin/docker", &denv, "hoist-df-add:docker", "opt");
    run_env(
        "/usr/bin/docker",
        &["rmi", "-f", "hoist-df-add:docker"],
        &denv,
    );
    // `ADD --chown` of an archive: BuildKit 0.22 and later (moby/buildkit
    // 46e52f4, May 2025) give the extracted entries the --chown owner, as
    // hoist does; the test daemon's older BuildKit keeps the archive's.
    // So /opt/own is compared with the archive below, not with docker.
    let not_own = |v: &[String]| -> Vec<String> {
        v.iter()
            .filter(|l| !l.contains(" opt/own/"))
            .cloned()
            .collect()
    };
    assert_eq!(
        not_own(&ours),
        not_own(&theirs),
        "hoist's /opt (left) and docker's (right)"
    );

    // And what the archive says, entry for entry, under /opt/gz.
    let archive = tv(&std::fs::read(ctx.join("app.tar")).unwrap());
    let gz: Vec<String> = ours
        .iter()
        .filter_map(|l| {
            let (head, name) = l.rsplit_once(" opt/gz/")?;
            Some(format!("{head} {name}"))
        })
        .collect();
    assert_eq!(gz, archive, "/opt/gz against `tar -tv` of the archive");
    let own: Vec<String> = ours
        .iter()
        .filter_map(|l| {
            let (head, name) = l.rsplit_once(" opt/own/")?;
            let mode = head.split(' ').next()?;
            Some(format!("{mode} 1000/50 {name}"))
        })
        .collect();
    assert_eq!(
        own, archive,
        "/opt/own: the archive's modes, --chown's owner"
    );
    assert!(
        ours.iter()
            .filter(|l| l.contains(" opt/own"))
            .all(|l| l.split(' ').nth(1) == Some("7/8")),
        "--chown=7:8 owns every entry under /opt/own: {ours:#?}"
    );
    for want in [
        "-rwsr-xr-x 1000/50 opt/gz/app/setuid",
        "drwx------ 1000/50 opt/gz/app/private",
        "lrwxrwxrwx 1000/50 opt/gz/app/latest -> bin/tool",
        "-rw------- 7/8 opt/own/app/secret",
        "-rw-r--r-- 0/0 opt/fake/fake.tar.gz",
    ] {
        assert!(ours.iter().any(|l| l == want), "{want} not in {ours:#?}");
    }
}

/// zstd archives (which the test's docker is too old to read) extract
/// too, `--unpack=false` keeps an archive whole, and a second build
/// reuses the layer without extracting again.
#[test]
fn add_zstd_and_unpack_false() {
    require("zstd", "zstd");
    let env = Env::new();
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    archives(&ctx);
    let text = "FROM scratch\nADD app.tar.zst /z/\nADD --unpack=false app.tar.gz /keep/\n";
    std::fs::write(ctx.join("Dockerfile"), text).unwrap();
    let out = env.path("z.oci.tar");
    let o = format!("oci-archive:{}", out.display());
    build_ctx(&env, &ctx, &o, &[]).ok();
    let names = layer_listing(&env, &out);
    for want in [
        "-rwsr-xr-x 1000/50 z/app/setuid",
        "-rwxr-xr-x 1000/50 z/app/bin/tool",
        "-rw-r--r-- 0/0 keep/app.tar.gz",
    ] {
        assert!(names.iter().any(|l| l == want), "{want} not in {names:#?}");
    }
    let again = build_ctx(&env, &ctx, &o, &[]);
    assert!(
        again.ok().contains("reused") || again.stderr.contains("reused"),
        "{}{}",
        again.stdout,
        again.stderr
    );
}

/// `hoist build -f CTX/Dockerfile CTX --output OUTPUT` with `extra`.
fn build_ctx(env: &Env, ctx: &Path, output: &str, extra: &[&str]) -> Run {
    let file = ctx.join("Dockerfile");
    let mut a = vec![
        "build",
        "-f",
        file.to_str().unwrap(),
        ctx.to_str().unwrap(),
        "--output",
        output,
    ];
    a.extend(extra);
    env.hoist(&a)
}

/// Every layer of an OCI archive, listed as `tv` does.
fn layer_listing(env: &Env, archive: &Path) -> Vec<String> {
    let dir = env.path(&format!(
        "dir-{}",
        archive.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    skopeo_copy(
        &format!("oci-archive:{}", archive.display()),
        &format!("dir:{}", dir.display()),
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let mut out = Vec::new();
    for l in manifest["layers"].as_array().unwrap() {
        let blob = dir.join(l["digest"].as_str().unwrap().trim_start_matches("sha256:"));
        let raw = Command::new("gzip")
            .args(["-dc", blob.to_str().unwrap()])
            .output()
            .unwrap()
            .stdout;
        out.extend(tv(&raw));
    }
    out
}

/// `python3 -m http.server` serving `dir` on a free port, stopped when
/// dropped.
struct Server {
    child: std::process::Child,
    port: u16,
}

impl Server {
    fn start(dir: &Path) -> Server {
        require("python3", "python3");
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Dropped (so stopped) on the panic below too.
        let server = Server { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("python3 -m http.server did not start on port {port}");
    }

    fn url(&self, file: &str) -> String {
        format!("http://127.0.0.1:{}/{file}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256_of(p: &Path) -> String {
    let out = run("sha256sum", &[p.to_str().unwrap()]);
    out.ok().split_whitespace().next().unwrap().to_owned()
}

/// ADD of URLs: the file named from the URL, mode 600, not extracted
/// unless --unpack=true; --checksum checked (a mismatch names the URL and
/// both digests) and, once stored, the file is not fetched again.
#[test]
fn add_url_with_checksums() {
    let env = Env::new();
    let served = env.path("served");
    std::fs::create_dir_all(&served).unwrap();
    archives(&served);
    std::fs::write(served.join("tool.sh"), "#!/bin/sh\necho hi\n").unwrap();
    let good = sha256_of(&served.join("tool.sh"));
    let server = Server::start(&served);
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let file = ctx.join("Dockerfile");
    let out = env.path("u.oci.tar");
    let o = format!("oci-archive:{}", out.display());
    let build = |text: String, extra: &[(&str, &str)]| {
        std::fs::write(&file, format!("FROM scratch\n{text}")).unwrap();
        env.hoist_with(
            &[
                "build",
                "-f",
                file.to_str().unwrap(),
                ctx.to_str().unwrap(),
                "--output",
                &o,
            ],
            extra,
        )
    };
    let text = format!(
        "ADD --checksum=sha256:{good} {} /bin/\nADD {} /dl/bundle\nADD --unpack=true {} /unpacked/\nADD --chmod=u+x,go=rx {} /bin/run-tool\n",
        server.url("tool.sh"),
        server.url("app.tar.gz"),
        server.url("app.tar.gz"),
        server.url("tool.sh"),
    );
    build(text.clone(), &[]).ok();
    let names = layer_listing(&env, &out);
    for want in [
        "-rw------- 0/0 bin/tool.sh",
        "-rw------- 0/0 dl/bundle",
        "-rwsr-xr-x 1000/50 unpacked/app/setuid",
        "-rwxr-xr-x 0/0 bin/run-tool",
    ] {
        assert!(names.iter().any(|l| l == want), "{want} not in {names:#?}");
    }

    // A wrong checksum: an error naming the URL and both digests.
    let bad = "0".repeat(64);
    let url = server.url("tool.sh");
    let r = build(format!("ADD --checksum=sha256:{bad} {url} /bin/\n"), &[]);
    r.fails_with(&format!("ADD {url}: checksum mismatch: --checksum says sha256:{bad} but the download is sha256:{good}"));

    // A missing file: the server's answer, at once (not retried).
    let missing = server.url("missing.bin");
    build(format!("ADD {missing} /bin/\n"), &[]).fails_with(&format!(
        "ADD {missing}: the server answered HTTP 404 Not Found"
    ));

    // Stored under its checksum: no server needed any more, --offline
    // too; a URL without a checksum is an error there.
    drop(server);
    build(
        format!("ADD --checksum=sha256:{good} {url} /bin/\n"),
        OFFLINE,
    )
    .ok();
    std::fs::write(
        &file,
        format!("FROM scratch\nADD --checksum=sha256:{good} {url} /bin/\n"),
    )
    .unwrap();
    build_ctx(&env, &ctx, &o, &["--offline"]).ok();
    std::fs::write(&file, format!("FROM scratch\nADD {url} /bin/\n")).unwrap();
    build_ctx(&env, &ctx, &o, &["--offline"]).fails_with(&format!(
        "ADD {url}: --offline: a URL without --checksum is fetched on every build"
    ));
}

/// FROM scratch: an image of one layer holding a static busybox, which
/// runs under podman; its config says the host's platform, or the one
/// `--platform` asks for (no emulation needed: nothing runs).
#[test]
fn from_scratch_runs_a_static_busybox() {
    require_podman();
    require("busybox", "busybox-static");
    let file_out = run("file", &["-L", "/bin/busybox"]);
    assert!(
        file_out.ok().contains("statically linked"),
        "/bin/busybox is not static: apt-get install busybox-static"
    );
    let env = Env::new();
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy("/bin/busybox", ctx.join("busybox")).unwrap();
    let file = ctx.join("Dockerfile");
    std::fs::write(
        &file,
        "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\nCMD [\"echo\", \"hello from scratch\"]\n",
    )
    .unwrap();
    let tag = "localhost/hoist-scratch:test";
    let out = env.path("scratch.docker.tar");
    let o = format!("docker-archive:{}", out.display());
    build_ctx(&env, &ctx, &o, &["--tag", tag]).ok();
    let _loaded = Loaded::load(&out, tag);
    let said = run("podman", &["run", "--rm", "--network=host", tag]);
    assert_eq!(said.ok().trim(), "hello from scratch");
    let cfg = skopeo_config(&format!("docker-archive:{}", out.display()));
    assert_eq!(
        cfg["rootfs"]["diff_ids"].as_array().unwrap().len(),
        1,
        "{cfg}"
    );
    assert_eq!(cfg["os"], "linux");

    let arm: PathBuf = env.path("arm.oci.tar");
    let o = format!("oci-archive:{}", arm.display());
    build_ctx(&env, &ctx, &o, &["--platform", "linux/arm64"]).ok();
    let cfg = skopeo_config(&format!("oci-archive:{}", arm.display()));
    assert_eq!(cfg["architecture"], "arm64", "{cfg}");
}

/// COPY --parents (Dockerfile 1.20): from the context and from a stage,
/// with a `/./` pivot and `**`, and a symbolic --chmod on the way.
#[test]
fn copy_parents_keeps_folders() {
    let env = Env::new();
    let ctx = env.path("ctx");
    for f in [
        "a/b/c/d/foo",
        "a/b/c/d/e/bay",
        "a/b2/c/d/e/bar",
        "x/a.txt",
        "y/a.txt",
        "src/one.txt",
        "src/deep/two.txt",
        "src/deep/skip.md",
    ] {
        std::fs::create_dir_all(ctx.join(f).parent().unwrap()).unwrap();
        std::fs::write(ctx.join(f), f).unwrap();
    }
    let file = ctx.join("Dockerfile");
    std::fs::write(
        &file,
        "FROM scratch AS base\nCOPY --parents a /test/\nFROM scratch\nCOPY --from=base --parents /test/a/b/./c/d /out/\nCOPY --parents ./x/a.txt ./y/a.txt /parents/\nCOPY --chmod=u=rw,go=r --parents src/**/*.txt /sym/\n",
    )
    .unwrap();
    let out = env.path("p.oci.tar");
    let o = format!("oci-archive:{}", out.display());
    build_ctx(&env, &ctx, &o, &[]).ok();
    let names: Vec<String> = layer_listing(&env, &out)
        .iter()
        .filter(|l| l.starts_with('-'))
        .map(|l| l.rsplit(' ').next().unwrap().to_owned())
        .collect();
    let mut want = vec![
        "out/c/d/foo",
        "out/c/d/e/bay",
        "parents/x/a.txt",
        "parents/y/a.txt",
        "sym/src/one.txt",
        "sym/src/deep/two.txt",
    ];
    want.sort();
    let mut got = names.clone();
    got.sort();
    assert_eq!(got, want);
    let all = layer_listing(&env, &out);
    assert!(
        all.iter()
            .any(|l| l == "-rw-r--r-- 0/0 sym/src/deep/two.txt"),
        "{all:#?}"
    );
}

/// An archive that names `lib/x` without listing `lib/` writes through
/// the stage's `/lib -> usr/lib` link (Debian's merged /usr), as docker's
/// extraction does, instead of hiding the link under a new folder.
#[test]
fn add_archive_writes_through_the_stage_links() {
    require_podman();
    let env = Env::new();
    let ctx = env.path("ctx");
    std::fs::create_dir_all(ctx.join("src/lib")).unwrap();
    std::fs::write(ctx.join("src/lib/hoist-test.txt"), "through\n").unwrap();
    run(
        "tar",
        &[
            "-cf",
            ctx.join("libs.tar").to_str().unwrap(),
            "-C",
            ctx.join("src").to_str().unwrap(),
            "lib/hoist-test.txt",
        ],
    )
    .ok();
    std::fs::remove_dir_all(ctx.join("src")).unwrap();
    let file = ctx.join("Dockerfile");
    std::fs::write(&file, "ARG BASE\nFROM ${BASE}\nADD libs.tar /\n").unwrap();
    let tag = "localhost/hoist-add-links:test";
    let out = env.path("links.docker.tar");
    let o = format!("docker-archive:{}", out.display());
    let barg = format!("BASE=oci-archive:{}", base("debian.oci.tar").display());
    build_ctx(&env, &ctx, &o, &["--build-arg", &barg, "--tag", tag]).ok();
    let _loaded = Loaded::load(&out, tag);
    let said = run(
        "podman",
        &[
            "run",
            "--rm",
            "--network=host",
            tag,
            "sh",
            "-c",
            "test -L /lib && cat /usr/lib/hoist-test.txt",
        ],
    );
    assert_eq!(said.ok().trim(), "through");
}

/// ADD of URLs gives the names and modes `docker build` gives: the URL's
/// last part in a folder destination, the destination's name otherwise,
/// mode 600, root-owned (or --chown's), an archive left whole.
#[test]
fn add_url_matches_docker_build() {
    require_podman();
    let Some(host) = std::env::var_os("HOIST_TEST_DOCKER_HOST") else {
        panic!("no dockerd for tests: run `scripts/dockerd start` and set HOIST_TEST_DOCKER_HOST (scripts/test does)");
    };
    let host = host.to_string_lossy().into_owned();
    let denv = [("DOCKER_HOST", host.as_str()), ("DOCKER_BUILDKIT", "1")];
    let env = Env::new();
    let served = env.path("served");
    std::fs::create_dir_all(&served).unwrap();
    archives(&served);
    std::fs::write(served.join("tool.sh"), "#!/bin/sh\necho hi\n").unwrap();
    let server = Server::start(&served);
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "ARG BASE\nFROM ${{BASE}}\nADD {} /dl/\nADD {} /dl/named\nADD --chown=7:8 {} /dl/own/\n",
            server.url("tool.sh"),
            server.url("app.tar.gz"),
            server.url("tool.sh"),
        ),
    )
    .unwrap();

    let name = "hoist-df-busybox:base";
    let dtar = env.path("busybox.docker.tar");
    skopeo_copy(
        &format!("oci-archive:{}", base("busybox.oci.tar").display()),
        &format!("docker-archive:{}:{name}", dtar.display()),
    );
    run_env(
        "/usr/bin/docker",
        &["load", "-i", dtar.to_str().unwrap()],
        &denv,
    )
    .ok();
    let barg = format!("BASE={name}");
    run_env(
        "/usr/bin/docker",
        &[
            "build",
            "--network",
            "host",
            "--build-arg",
            &barg,
            "-t",
            "hoist-df-addurl:docker",
            ctx.to_str().unwrap(),
        ],
        &denv,
    )
    .ok();

    let tag = "localhost/hoist-df-addurl:hoist";
    let out = env.path("url.docker.tar");
    let harg = format!("BASE=oci-archive:{}", base("busybox.oci.tar").display());
    let o = format!("docker-archive:{}", out.display());
    build_ctx(&env, &ctx, &o, &["--build-arg", &harg, "--tag", tag]).ok();
    let _loaded = Loaded::load(&out, tag);
    let ours = listed("podman", &[], tag, "dl");
    let theirs = listed("/usr/bin/docker", &denv, "hoist-df-addurl:docker", "dl");
    run_env(
        "/usr/bin/docker",
        &["rmi", "-f", "hoist-df-addurl:docker"],
        &denv,
    );
    assert_eq!(ours, theirs, "hoist's /dl (left) and docker's (right)");
    assert!(
        ours.iter().any(|l| l == "-rw------- 7/8 dl/own/tool.sh"),
        "{ours:#?}"
    );
}

/// ADD of a git repository over http (a bare repository served by
/// `python3 -m http.server`, git's dumb protocol): a ref and a subfolder,
/// `.git` left out unless --keep-git-dir=true, modes 644/755, the commit
/// checked by --checksum.
#[test]
fn add_git_repository() {
    require("git", "git");
    let env = Env::new();
    let work = env.path("work");
    std::fs::create_dir_all(work.join("sub")).unwrap();
    std::fs::write(work.join("a.txt"), "a\n").unwrap();
    std::fs::write(work.join("run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        work.join("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o775),
    )
    .unwrap();
    std::fs::write(work.join("sub/b.txt"), "b\n").unwrap();
    let w = work.to_str().unwrap();
    let git = |args: &[&str]| {
        let mut a = vec!["-C", w, "-c", "user.name=t", "-c", "user.email=t@e"];
        a.extend(args);
        run("git", &a).ok().trim().to_owned()
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "one"]);
    let commit = git(&["rev-parse", "HEAD"]);
    let served = env.path("served");
    std::fs::create_dir_all(&served).unwrap();
    let bare = served.join("repo.git");
    run("git", &["clone", "-q", "--bare", w, bare.to_str().unwrap()]).ok();
    run("git", &["-C", bare.to_str().unwrap(), "update-server-info"]).ok();
    let server = Server::start(&served);
    let repo = server.url("repo.git");
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let file = ctx.join("Dockerfile");
    let out = env.path("g.oci.tar");
    let o = format!("oci-archive:{}", out.display());
    std::fs::write(
        &file,
        format!(
            "FROM scratch\nADD {repo}#main /src/\nADD --keep-git-dir=true {repo} /keep\nADD {repo}#main:sub /sub/\nADD --checksum={} {repo} /chk/\n",
            &commit[..10]
        ),
    )
    .unwrap();
    build_ctx(&env, &ctx, &o, &[]).ok();
    let all = layer_listing(&env, &out);
    for want in [
        "-rw-r--r-- 0/0 src/a.txt",
        "-rwxr-xr-x 0/0 src/run.sh",
        "-rw-r--r-- 0/0 src/sub/b.txt",
        "drwxr-xr-x 0/0 src/sub",
        "-rw-r--r-- 0/0 sub/b.txt",
        "-rw-r--r-- 0/0 chk/a.txt",
        "-rw-r--r-- 0/0 keep/.git/HEAD",
    ] {
        assert!(all.iter().any(|l| l == want), "{want} not in {all:#?}");
    }
    assert!(
        !all.iter().any(|l| l.contains("src/.git")),
        ".git left out: {all:#?}"
    );
    std::fs::write(
        &file,
        format!("FROM scratch\nADD --checksum=0000000 {repo} /x/\n"),
    )
    .unwrap();
    build_ctx(&env, &ctx, &o, &[]).fails_with(&format!(
        "ADD {repo}: checksum mismatch: --checksum says commit 0000000 but HEAD is {commit}"
    ));
}
