//! Issue 16: every RUN line hoist does natively, built twice from the same
//! Dockerfile: as hoist does it (`--native=auto`) and as written in the
//! sandbox (`--native=never`, the real npm, pip, useradd, mkdir of the
//! base). The layer that line made is read from each image (skopeo copies
//! the archive to a `dir:`, the `tar` crate lists the blob) and the two
//! are compared entry by entry: path, kind, mode, owner, link target and
//! file content.
//!
//! What the command leaves and hoist does not write on purpose (a cache,
//! npm's tree cache, bytecode, a clock's day) is ONE list per family
//! below, each rule with its reason; the README's "Where hoist's image
//! differs" names the same ones. Anything else that differs fails.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::support::*;

/// What a rule leaves out of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ignore {
    /// The entry, on either side.
    Entry,
    /// Its content (kind, mode and owner are still compared).
    Content,
    /// The last-change day (third field) of every /etc/shadow line.
    ShadowDay,
}

/// One documented difference: paths matching `pattern` (`*` within a
/// name, `**` any number of names), what is ignored, and why.
struct Rule {
    pattern: &'static str,
    ignore: Ignore,
    why: &'static str,
}

const NPM: &[Rule] = &[
    Rule {
        pattern: "**/node_modules/.package-lock.json",
        ignore: Ignore::Entry,
        why: "npm's cache of the tree; npm rebuilds it when missing",
    },
    Rule {
        pattern: "root/.npm/**",
        ignore: Ignore::Entry,
        why: "npm's download cache and logs",
    },
    Rule {
        pattern: "tmp/**",
        ignore: Ignore::Entry,
        why: "scratch files",
    },
];

const PIP: &[Rule] = &[
    Rule {
        pattern: "**/__pycache__/**",
        ignore: Ignore::Entry,
        why: "bytecode pip compiles without --no-compile; Python writes it on first import",
    },
    Rule {
        pattern: "**/__pycache__",
        ignore: Ignore::Entry,
        why: "the folders of that bytecode",
    },
    Rule {
        pattern: "**/*.dist-info/RECORD",
        ignore: Ignore::Content,
        why: "lists the bytecode files pip compiled",
    },
    Rule {
        pattern: "**/*.dist-info/INSTALLER",
        ignore: Ignore::Content,
        why: "names the installer: `hoist` rather than `pip`",
    },
    Rule {
        pattern: "root/.cache/**",
        ignore: Ignore::Entry,
        why: "pip's cache (none with --no-cache-dir)",
    },
    Rule {
        pattern: "root/.cache",
        ignore: Ignore::Entry,
        why: "the folder of pip's cache",
    },
    Rule {
        pattern: "tmp/**",
        ignore: Ignore::Entry,
        why: "scratch files",
    },
];

const ACCOUNTS: &[Rule] = &[Rule {
    pattern: "etc/shadow",
    ignore: Ignore::ShadowDay,
    why: "the tools write today's day; hoist writes SOURCE_DATE_EPOCH's",
}];

const PATHS: &[Rule] = &[];

/// Whether `path` matches `pattern` (`*` within a name, `**` any names).
fn matches(pattern: &str, path: &str) -> bool {
    fn names(p: &[&str], n: &[&str]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(&"**"), _) => names(&p[1..], n) || (!n.is_empty() && names(p, &n[1..])),
            (Some(pp), Some(nn)) => name(pp, nn) && names(&p[1..], &n[1..]),
            _ => false,
        }
    }
    fn name(p: &str, n: &str) -> bool {
        match p.split_once('*') {
            None => p == n,
            Some((head, tail)) => {
                n.starts_with(head)
                    && (head.len()..=n.len()).any(|i| n.is_char_boundary(i) && name(tail, &n[i..]))
            }
        }
    }
    let p: Vec<&str> = pattern.split('/').collect();
    let n: Vec<&str> = path.split('/').collect();
    names(&p, &n)
}

/// One entry of a layer: kind, mode, uid, gid, link target or content.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    body: Vec<u8>,
}

type Listing = BTreeMap<String, Entry>;

/// The layers of the image archive `archive`, as the `tar` crate reads
/// them (after skopeo copied the archive to a `dir:`): the last one, and
/// the ones below it merged (an upper entry over a lower one).
fn last_layer(env: &Env, archive: &Path) -> (Listing, Listing) {
    let dir = env.path(&format!(
        "dir-{}",
        archive.file_name().unwrap().to_string_lossy()
    ));
    skopeo_copy(
        &format!("oci-archive:{}", archive.display()),
        &format!("dir:{}", dir.display()),
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let mut layers: Vec<Listing> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| {
            assert!(
                layer["mediaType"].as_str().unwrap().ends_with("gzip"),
                "{layer}"
            );
            let blob = dir.join(
                layer["digest"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("sha256:"),
            );
            listing(&blob)
        })
        .collect();
    let last = layers.pop().unwrap();
    let mut below = Listing::new();
    for l in layers {
        below.extend(l);
    }
    (last, below)
}

fn listing(blob: &Path) -> Listing {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(blob).unwrap());
    let mut out = Listing::new();
    for e in tar::Archive::new(gz).entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let path = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_owned();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Regular => 'f',
            // Device nodes of the base (dev/console).
            _ => 'o',
        };
        let body = match kind {
            'l' | 'h' => e
                .link_name_bytes()
                .map(|b| b.into_owned())
                .unwrap_or_default(),
            // Account files as text (a shadow day is blanked in them),
            // other files by their digest.
            'f' => {
                let mut b = Vec::new();
                e.read_to_end(&mut b).unwrap();
                match path.starts_with("etc/") {
                    true => b,
                    false => format!("sha256:{}", hex_sha(&b)).into_bytes(),
                }
            }
            _ => Vec::new(),
        };
        let entry = Entry {
            kind,
            mode: h.mode().unwrap() & 0o7777,
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            body,
        };
        assert!(
            out.insert(path.clone(), entry).is_none(),
            "{path} twice in a layer"
        );
    }
    out
}

/// `l` without the folders that only restate the layers below (same
/// mode and owner: in the merged tree they change nothing but the
/// folder's mtime). A native layer writes the folders above what it
/// writes; a command's layer lists the folders whose contents changed.
fn without_restated(l: &Listing, below: &Listing) -> Listing {
    l.iter()
        .filter(|(p, e)| !(e.kind == 'd' && below.get(*p) == Some(*e)))
        .map(|(p, e)| (p.clone(), e.clone()))
        .collect()
}

/// `l` with the rules applied: ignored entries out, ignored contents
/// emptied, shadow days blanked.
fn apply(rules: &[Rule], l: &Listing) -> Listing {
    let mut out = Listing::new();
    'entries: for (path, e) in l {
        let mut e = e.clone();
        for r in rules.iter().filter(|r| matches(r.pattern, path)) {
            match r.ignore {
                Ignore::Entry => continue 'entries,
                Ignore::Content => e.body.clear(),
                Ignore::ShadowDay => {
                    let text = String::from_utf8(e.body.clone()).unwrap();
                    let lines: Vec<String> = text
                        .lines()
                        .map(|line| {
                            let mut f: Vec<&str> = line.split(':').collect();
                            if f.len() > 2 {
                                f[2] = "DAY";
                            }
                            f.join(":") + "\n"
                        })
                        .collect();
                    e.body = lines.concat().into_bytes();
                }
            }
        }
        out.insert(path.clone(), e);
    }
    out
}

fn show(l: &Listing) -> String {
    l.iter()
        .map(|(p, e)| {
            let body = String::from_utf8_lossy(&e.body);
            format!("{} {:o} {}:{} {p} {body}", e.kind, e.mode, e.uid, e.gid)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn hex_sha(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Builds `dockerfile` (its `FROM` line added: `base`) in a context with
/// `files`, with `--native=native`; returns the image archive and hoist's
/// output.
fn build(
    env: &Env,
    base_file: &str,
    dockerfile: &str,
    files: &[(&str, &str)],
    native: &str,
) -> (PathBuf, String) {
    let ctx = env.path(&format!("ctx-{native}"));
    std::fs::create_dir_all(&ctx).unwrap();
    for (name, text) in files {
        std::fs::write(ctx.join(name), text).unwrap();
    }
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM oci-archive:{}\n{dockerfile}",
            base(base_file).display()
        ),
    )
    .unwrap();
    let out = env.path(&format!("image-{native}.tar"));
    let file = ctx.join("Dockerfile");
    let native_flag = format!("--native={native}");
    let o = format!("oci-archive:{}", out.display());
    let plan = env
        .hoist(&[
            "build",
            "-f",
            file.to_str().unwrap(),
            ctx.to_str().unwrap(),
            &native_flag,
            "--dry-run",
        ])
        .ok()
        .to_owned();
    let r = env.hoist(&[
        "build",
        "-f",
        file.to_str().unwrap(),
        ctx.to_str().unwrap(),
        &native_flag,
        "--output",
        &o,
    ]);
    r.ok();
    (out, format!("{plan}\n{}{}", r.stdout, r.stderr))
}

/// Builds the line both ways and compares the layers it made under
/// `rules`; `native_says` is what hoist's report says of the native line.
fn compare(
    family: &str,
    base_file: &str,
    dockerfile: &str,
    files: &[(&str, &str)],
    rules: &[Rule],
    native_says: &str,
) {
    let env = Env::new();
    let (auto, auto_report) = build(&env, base_file, dockerfile, files, "auto");
    let (never, never_report) = build(&env, base_file, dockerfile, files, "never");
    assert!(
        auto_report.contains(native_says),
        "{family}: the line was not done natively:\n{auto_report}"
    );
    assert!(
        !never_report.contains("(hoist: native") && never_report.contains("--native=never"),
        "{family}: --native=never did something natively:\n{never_report}"
    );
    let (native, native_below) = last_layer(&env, &auto);
    let (sandbox, sandbox_below) = last_layer(&env, &never);
    assert!(
        native_below == sandbox_below,
        "{family}: the layers below the line differ"
    );
    let native = without_restated(&native, &native_below);
    let sandbox = without_restated(&sandbox, &sandbox_below);
    assert!(!sandbox.is_empty(), "{family}: the command changed nothing");
    let (native_kept, sandbox_kept) = (apply(rules, &native), apply(rules, &sandbox));
    let documented: Vec<String> = rules
        .iter()
        .map(|r| format!("{} ({:?}): {}", r.pattern, r.ignore, r.why))
        .collect();
    assert_eq!(
        show(&native_kept),
        show(&sandbox_kept),
        "{family}: native (left) and sandbox (right) layers differ, past the documented differences:\n{}",
        documented.join("\n")
    );
    assert_eq!(native_kept, sandbox_kept);
}

#[test]
fn patterns_match_as_documented() {
    for (pattern, path, want) in [
        ("**/__pycache__", "usr/lib/x/__pycache__", true),
        ("**/__pycache__/**", "a/__pycache__/m.cpython-311.pyc", true),
        (
            "**/*.dist-info/RECORD",
            "s/six-1.17.0.dist-info/RECORD",
            true,
        ),
        (
            "**/*.dist-info/RECORD",
            "s/six-1.17.0.dist-info/METADATA",
            false,
        ),
        ("root/.npm/**", "root/.npm/_logs/x.log", true),
        ("root/.npm/**", "root/.npmrc", false),
        ("tmp/**", "tmp", true),
        ("etc/shadow", "etc/shadow-", false),
    ] {
        assert_eq!(matches(pattern, path), want, "{pattern} vs {path}");
    }
}

const LOCK: &str = r#"{
  "name": "nvs",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {
      "name": "nvs",
      "version": "1.0.0",
      "dependencies": { "kleur": "4.1.5", "ms": "2.1.3" },
      "devDependencies": { "is-number": "7.0.0" }
    },
    "node_modules/is-number": {
      "version": "7.0.0",
      "resolved": "https://registry.npmjs.org/is-number/-/is-number-7.0.0.tgz",
      "integrity": "sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng==",
      "dev": true,
      "engines": { "node": ">=0.12.0" }
    },
    "node_modules/kleur": {
      "version": "4.1.5",
      "resolved": "https://registry.npmjs.org/kleur/-/kleur-4.1.5.tgz",
      "integrity": "sha512-o+NO+8WrRiQEE4/7nwRJhN1HWpVmJm511pBHUxPLtp0BUISzlBplORYSmTclCnJvQq2tKu/sgl3xVpkc7ZWuQQ==",
      "engines": { "node": ">=6" }
    },
    "node_modules/ms": {
      "version": "2.1.3",
      "resolved": "https://registry.npmjs.org/ms/-/ms-2.1.3.tgz",
      "integrity": "sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA=="
    }
  }
}
"#;

const PACKAGE: &str = r#"{
  "name": "nvs",
  "version": "1.0.0",
  "private": true,
  "dependencies": { "kleur": "4.1.5", "ms": "2.1.3" },
  "devDependencies": { "is-number": "7.0.0" }
}
"#;

#[test]
fn npm_ci_native_equals_npm() {
    for line in [
        "RUN npm ci --omit=dev --no-audit --no-fund",
        "RUN npm ci --no-audit --no-fund",
    ] {
        compare(
            line,
            "node-npm.oci.tar",
            &format!("WORKDIR /app\nCOPY package.json package-lock.json ./\n{line}\n"),
            &[("package.json", PACKAGE), ("package-lock.json", LOCK)],
            NPM,
            "(hoist: native, no npm ran)",
        );
    }
}

const REQUIREMENTS: &str = "six==1.17.0\nidna==3.10\n";

#[test]
fn pip_install_native_equals_pip() {
    for line in [
        "RUN pip install --no-cache-dir -r requirements.txt",
        "RUN pip install --no-cache-dir --no-compile -r requirements.txt",
        "RUN pip install --user -r requirements.txt",
    ] {
        compare(
            line,
            "python-pip.oci.tar",
            &format!("WORKDIR /app\nCOPY requirements.txt ./\n{line}\n"),
            &[("requirements.txt", REQUIREMENTS)],
            PIP,
            "(hoist: native, no pip ran)",
        );
    }
}

#[test]
fn debian_account_tools_native_equal_the_tools() {
    for line in [
        "RUN groupadd -r app && useradd -r -m -g app app",
        "RUN adduser --system --group --home /srv/svc svc",
        "RUN useradd -m -u 1001 -s /bin/bash web",
    ] {
        compare(
            line,
            "debian.oci.tar",
            &format!("{line}\n"),
            &[],
            ACCOUNTS,
            "(hoist: native)",
        );
    }
}

#[test]
fn alpine_busybox_account_tools_native_equal_the_tools() {
    for line in [
        "RUN addgroup -S app && adduser -S -G app app",
        "RUN adduser -D -u 1001 web",
    ] {
        compare(
            line,
            "alpine-amd64.oci.tar",
            &format!("{line}\n"),
            &[],
            ACCOUNTS,
            "(hoist: native)",
        );
    }
}

#[test]
fn paths_native_equal_mkdir_chown_chmod() {
    for (base_file, line) in [
        (
            "busybox.oci.tar",
            "RUN mkdir -p /srv/a/b && chown -R 1:1 /srv/a && chmod 750 /srv/a/b",
        ),
        (
            "debian.oci.tar",
            "RUN mkdir -p -m 700 /data/cache && chown -R nobody:nogroup /data && chmod g+rX /data",
        ),
    ] {
        compare(
            line,
            base_file,
            &format!("{line}\n"),
            &[],
            PATHS,
            "(hoist: native)",
        );
    }
}

/// `--native` takes auto or never, and only on a Dockerfile build.
#[test]
fn native_flag_is_checked() {
    let env = Env::new();
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN mkdir /a\n").unwrap();
    std::fs::write(ctx.join("hoist.toml"), "base = \"busybox\"\n").unwrap();
    let dockerfile = ctx.join("Dockerfile");
    env.hoist(&[
        "build",
        "-f",
        dockerfile.to_str().unwrap(),
        ctx.to_str().unwrap(),
        "--native=sometimes",
        "--dry-run",
    ])
    .fails_with("--native=sometimes: give auto");
    let toml = ctx.join("hoist.toml");
    env.hoist(&[
        "build",
        "-f",
        toml.to_str().unwrap(),
        "--native=never",
        "--dry-run",
    ])
    .fails_with("--native is for Dockerfile and compose builds");
}
