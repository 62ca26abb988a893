//! Golden cases (testdata/compose/<case>/: compose files, `.env`, `args`
//! naming the files and options, `expected` the dump or the error) and
//! one table per group of merge rules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::tree::{self, Node};
use super::{load, load_project, merge, model, services, Options, RealFiles, Source};

fn case_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/compose")
        .join(case)
}

/// Runs one golden case. `args` lines: `-f FILE`, `--profile P`,
/// `--env K=V` (the process environment), `--service S`, and `--builds`
/// to dump the builds ([`services::dump`]) instead of the project.
fn run_case(case: &str) -> String {
    let dir = case_dir(case);
    let args = fs_err::read_to_string(dir.join("args")).unwrap_or_else(|_| "-f compose.yml".into());
    let mut sources = Vec::new();
    let mut opts = Options::default();
    let mut builds = false;
    for line in args.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (flag, value) = line.split_once(' ').unwrap_or((line, ""));
        match flag {
            "-f" => {
                let path = dir.join(value);
                let bytes = fs_err::read(&path).unwrap_or_default();
                sources.push(Source { path, bytes });
            }
            "--profile" => opts.profiles.push(value.to_string()),
            "--builds" => builds = true,
            "--service" => opts.services.push(value.to_string()),
            "--env" => {
                let (k, v) = value.split_once('=').unwrap_or((value, ""));
                opts.env.insert(k.to_string(), v.to_string());
            }
            other => panic!("{case}/args: unknown flag {other}"),
        }
    }
    let prefix = format!("{}/", dir.display());
    if builds {
        return match services::load_builds(&sources, &opts, &RealFiles) {
            Ok(planned) => {
                let mut out = format!("project {}\n", planned.project);
                out.push_str(&services::dump(&planned.builds, &planned.skipped, &dir));
                for w in planned.warnings {
                    out.push_str(&format!("warning {w}\n"));
                }
                out
            }
            Err(e) => format!("error {}\n", e.to_string().replace(&prefix, "")),
        };
    }
    match load_project(&sources, &opts, &RealFiles) {
        Ok(loaded) => {
            let mut out = model::dump(&loaded.project);
            for w in loaded.warnings {
                out.push_str(&format!("warning {w}\n"));
            }
            out
        }
        Err(e) => format!("error {}\n", e.to_string().replace(&prefix, "")),
    }
}

#[test]
fn golden_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/compose");
    let mut cases: Vec<String> = fs_err::read_dir(&root)
        .expect("testdata/compose")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    cases.sort();
    assert!(cases.len() >= 6, "golden cases: {cases:?}");
    let bless = std::env::var_os("HOIST_BLESS").is_some();
    let mut failed = Vec::new();
    for case in &cases {
        let got = run_case(case);
        let path = case_dir(case).join("expected");
        if bless {
            fs_err::write(&path, &got).expect("write expected");
            continue;
        }
        let want = fs_err::read_to_string(&path).unwrap_or_default();
        if got != want {
            failed.push(format!("--- {case}: want\n{want}--- got\n{got}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

fn yaml(s: &str) -> Node {
    load::parse_yaml(s.as_bytes(), &"t.yml".into(), &mut load::Budget::default())
        .expect("parses")
        .remove(0)
}

/// Merges `b` onto `a` as two `-f` files and returns `services.s.<key>`
/// as a compact text.
fn merged(a: &str, b: &str, key: &str) -> String {
    let mut base = yaml(a);
    let mut over = yaml(b);
    merge::strip_resets(&mut base);
    merge::apply_resets(&mut base, &over);
    merge::strip_resets(&mut over);
    let mut m = merge::merge(base, over, &tree::Path::root()).expect("merges");
    merge::enforce_unicity(&mut m, &tree::Path::root()).expect("unique");
    let node = m.get("services").and_then(|s| s.get("s"));
    let mut node = node.cloned();
    for part in key.split('.') {
        node = node.and_then(|n| n.get(part).cloned());
    }
    node.map(|n| text(&n)).unwrap_or_else(|| "<none>".into())
}

fn text(n: &Node) -> String {
    match &n.value {
        tree::Value::Seq(items) => format!(
            "[{}]",
            items.iter().map(text).collect::<Vec<_>>().join(", ")
        ),
        tree::Value::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}: {}", text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        tree::Value::Null => "null".into(),
        _ => n.scalar_text().unwrap_or_default(),
    }
}

fn svc(body: &str) -> String {
    format!(
        "services:\n  s:\n{}",
        body.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    )
}

fn check(table: &[(&str, &str, &str, &str)]) {
    for (a, b, key, want) in table {
        assert_eq!(merged(&svc(a), &svc(b), key), *want, "{key}: {a:?} + {b:?}");
    }
}

#[test]
fn merge_key_value_maps_and_lists() {
    check(&[
        (
            "environment: {A: 1, B: 2}",
            "environment: {B: 3, C: 4}",
            "environment",
            "[A=1, B=3, C=4]",
        ),
        (
            "environment: [A=1, B=2]",
            "environment: {B: 3}",
            "environment",
            "[A=1, B=3]",
        ),
        (
            "environment: {A: 1}",
            "environment: [A=9, D]",
            "environment",
            "[A=9, D]",
        ),
        ("labels: {x: 1}", "labels: [y=2]", "labels", "[x=1, y=2]"),
        (
            "build: {args: {V: 1, W: 2}}",
            "build: {args: [V=3]}",
            "build.args",
            "[V=3, W=2]",
        ),
        (
            "build: {labels: [a=1]}",
            "build: {labels: {a: 2}}",
            "build.labels",
            "[a=2]",
        ),
        ("environment: {A: 1}", "image: x", "environment", "{A: 1}"),
    ]);
}

#[test]
fn merge_replaced() {
    check(&[
        ("command: [a, b]", "command: [c]", "command", "[c]"),
        ("command: a b", "command: [c]", "command", "[c]"),
        (
            "entrypoint: [sh, -c]",
            "entrypoint: bash",
            "entrypoint",
            "bash",
        ),
        (
            "healthcheck: {test: [CMD, a], retries: 2}",
            "healthcheck: {test: [CMD, b]}",
            "healthcheck",
            "{test: [CMD, b], retries: 2}",
        ),
        ("image: a", "image: b", "image", "b"),
        ("user: a", "user: null", "user", "a"),
    ]);
}

#[test]
fn merge_appended_and_deduplicated() {
    check(&[
        (
            "ports: ['3000:3000']",
            "ports: ['3000:3000', '9229:9229']",
            "ports",
            "[3000:3000, 9229:9229]",
        ),
        (
            "ports: [{target: 80, published: 8080}]",
            "ports: [{target: 80, published: 8080, protocol: tcp}]",
            "ports",
            "[{target: 80, published: 8080, protocol: tcp}]",
        ),
        (
            "expose: [3000]",
            "expose: ['3000', 4000]",
            "expose",
            "[3000, 4000]",
        ),
        (
            "volumes: ['./a:/app', 'data:/data']",
            "volumes: ['./b:/app']",
            "volumes",
            "[./b:/app, data:/data]",
        ),
        (
            "volumes: [{type: bind, source: a, target: /x}]",
            "volumes: ['b:/x']",
            "volumes",
            "[b:/x]",
        ),
        (
            "build: {tags: [a:1, b:1]}",
            "build: {tags: [b:1, c:1]}",
            "build.tags",
            "[a:1, b:1, c:1]",
        ),
        (
            "build: {platforms: [linux/amd64]}",
            "build: {platforms: [linux/arm64]}",
            "build.platforms",
            "[linux/amd64, linux/arm64]",
        ),
        (
            "profiles: [dev]",
            "profiles: [dev, debug]",
            "profiles",
            "[dev, debug]",
        ),
        (
            "secrets: [a]",
            "secrets: [{source: a}]",
            "secrets",
            "[{source: a}]",
        ),
        (
            "extra_hosts: ['a:1.1.1.1']",
            "extra_hosts: ['a:1.1.1.1', 'b:2.2.2.2']",
            "extra_hosts",
            "[a:1.1.1.1, b:2.2.2.2]",
        ),
        (
            "build: {cache_from: [a]}",
            "build: {cache_from: [a]}",
            "build.cache_from",
            "[a, a]",
        ),
    ]);
}

#[test]
fn merge_build_mappings_and_tags() {
    check(&[
        (
            "build: ./web",
            "build: {target: prod}",
            "build",
            "{context: ./web, target: prod}",
        ),
        (
            "build: {context: ., target: dev}",
            "build: ./other",
            "build",
            "{context: ./other, target: dev}",
        ),
        (
            "depends_on: [db]",
            "depends_on: {db: {condition: service_healthy}}",
            "depends_on",
            "{db: {condition: service_healthy, required: true}}",
        ),
        (
            "networks: [a]",
            "networks: {b: {aliases: [x]}}",
            "networks",
            "{a: null, b: {aliases: [x]}}",
        ),
        (
            "logging: {driver: json-file, options: {a: 1}}",
            "logging: {options: {b: 2}}",
            "logging",
            "{driver: json-file, options: {a: 1, b: 2}}",
        ),
        (
            "logging: {driver: json-file, options: {a: 1}}",
            "logging: {driver: syslog}",
            "logging",
            "{driver: syslog}",
        ),
        ("ports: ['80:80']", "ports: !reset []", "ports", "<none>"),
        (
            "build: {args: {A: 1}, target: dev}",
            "build: {args: !reset {}}",
            "build",
            "{target: dev}",
        ),
        (
            "environment: {A: 1}",
            "environment: !override {B: 2}",
            "environment",
            "{B: 2}",
        ),
        (
            "build: {context: a, args: {A: 1}}",
            "build: !override {context: b}",
            "build",
            "{context: b}",
        ),
    ]);
}

#[test]
fn merge_type_clashes_are_errors() {
    let mut base = yaml(&svc("healthcheck: {test: x}"));
    let over = yaml(&svc("healthcheck: [a]"));
    merge::strip_resets(&mut base);
    let e = merge::merge(base, over, &tree::Path::root())
        .expect_err("clash")
        .to_string();
    assert_eq!(
        e,
        "t.yml:3: services.s.healthcheck: cannot override a mapping with a sequence"
    );
}

#[test]
fn in_memory_files_and_env() {
    let files: BTreeMap<PathBuf, Vec<u8>> = [
        (PathBuf::from("p/.env"), b"TAG=1.0\n".to_vec()),
        (
            PathBuf::from("p/base/common.yml"),
            b"services:\n  b:\n    build: ./ctx\n".to_vec(),
        ),
    ]
    .into();
    let sources = [Source {
        path: PathBuf::from("p/compose.yml"),
        bytes: b"services:\n  s:\n    extends: {file: base/common.yml, service: b}\n    image: s:${TAG}\n".to_vec(),
    }];
    let loaded = load_project(&sources, &Options::default(), &files).expect("loads");
    let s = &loaded.project.services["s"];
    assert_eq!(s.image.as_deref(), Some("s:1.0"));
    assert_eq!(
        s.build.as_ref().map(|b| b.context.as_str()),
        Some("p/base/ctx")
    );
    assert_eq!(loaded.project.name, "p");
}

/// Loads one service `s` from its body, in memory, and returns its dump
/// lines (without the `project`/`service`/`image-name` lines) or the error.
fn typed(body: &str) -> String {
    let files: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    let sources = [Source {
        path: PathBuf::from("p/compose.yml"),
        bytes: svc(body).into_bytes(),
    }];
    let opts = Options {
        env: [("FROM_ENV".to_string(), "e".to_string())].into(),
        ..Options::default()
    };
    match load_project(&sources, &opts, &files) {
        Ok(l) => model::dump(&l.project)
            .lines()
            .skip(3)
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("; "),
        Err(e) => format!("error {e}"),
    }
}

#[test]
fn model_attributes() {
    for (body, want) in [
        ("build: .", "build.context ."),
        ("build: {context: web, dockerfile: Dockerfile.prod}", "build.context web; build.dockerfile Dockerfile.prod"),
        ("build: {dockerfile_inline: \"FROM scratch\"}", "build.context .; build.dockerfile_inline FROM scratch"),
        ("build: {args: [A, FROM_ENV, B=]}", "build.context .; build.arg A; build.arg B=; build.arg FROM_ENV=e"),
        ("build: {ssh: [default]}", "build.context .; build.ssh default"),
        ("build: {ssh: {gh: ~/.ssh/id}}", "build.context .; build.ssh gh=~/.ssh/id"),
        ("build: {secrets: [npmrc, {source: token, target: t}]}", "build.context .; build.secret npmrc; build.secret token target=t"),
        ("build: {no_cache: true, pull: false, network: host}", "build.context .; build.network host; build.no_cache true"),
        ("build: {additional_contexts: {base: docker-image://alpine}}", "build.context .; build.additional_context base=docker-image://alpine"),
        ("image: a\nports: [{target: 80, published: 8080}, 3000, \"127.0.0.1:53:53/udp\"]", "image a; port 8080:80/tcp; port 3000; port 127.0.0.1:53:53/udp"),
        ("image: a\ncommand: sh -c 'echo hi'", "image a; command [\"sh\", \"-c\", \"echo hi\"]"),
        ("image: a\nhealthcheck: {test: curl -f localhost, retries: 3}", "image a; healthcheck.test [\"CMD-SHELL\", \"curl -f localhost\"]; healthcheck.retries 3"),
        ("image: a\nhealthcheck: {test: [NONE]}", "image a; healthcheck.test [\"NONE\"]; healthcheck.disable true"),
        ("image: a\nenvironment: [FROM_ENV, UNSET]\nuser: \"1000:1000\"", "image a; environment FROM_ENV=e; environment UNSET; user 1000:1000"),
        ("image: a\nlabels: [a=1, b]", "image a; label a=1; label b="),
        ("build: {dockerfile: a, dockerfile_inline: b}", "error p/compose.yml:3: services.s.build: `dockerfile` and `dockerfile_inline` both set: keep one"),
        ("build: [a]", "error p/compose.yml:3: services.s.build: `build` is a folder or a mapping (context, dockerfile...), not a sequence"),
        ("image: {a: 1}", "error p/compose.yml:3: services.s.image: expected a string, found a mapping"),
        ("image: a\nhealthcheck: {retries: many}", "error p/compose.yml:4: services.s.healthcheck.retries: expected a whole number"),
        ("image: a\ncommand: \"unclosed 'quote\"", "error p/compose.yml:4: services.s.command: cannot split \"unclosed 'quote\" as a shell would: missing closing quote"),
        ("build: {no_cache: yes}", "error p/compose.yml:3: services.s.build.no_cache: expected true or false, found a string"),
    ] {
        assert_eq!(typed(body), want, "{body}");
    }
}

#[test]
fn documents_merge_in_order_and_include_is_refused() {
    let files: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    let load = |text: &str| {
        let sources = [Source {
            path: PathBuf::from("p/compose.yml"),
            bytes: text.as_bytes().to_vec(),
        }];
        load_project(&sources, &Options::default(), &files)
    };
    let two = "version: '3.8'\nservices:\n  s: {build: ., environment: [A=1]}\n---\nservices:\n  s: {environment: {A: 2}, image: s:2}\n";
    let loaded = load(two).expect("loads");
    let s = &loaded.project.services["s"];
    assert_eq!(s.environment.get("A"), Some(&Some("2".to_string())));
    assert_eq!(s.image.as_deref(), Some("s:2"));
    assert_eq!(
        loaded.warnings,
        ["p/compose.yml: `version` is obsolete and ignored; remove it"]
    );
    let e = load("include: [other.yml]\nservices: {}\n")
        .expect_err("include")
        .to_string();
    assert!(
        e.starts_with("p/compose.yml:1: include: `include` is not supported yet"),
        "{e}"
    );
    let e = load("services: [a]\n").expect_err("list").to_string();
    assert_eq!(
        e,
        "p/compose.yml:1: services: `services` must be a mapping, not a sequence"
    );
    let e = load("- a\n").expect_err("top list").to_string();
    assert!(e.contains("the top level must be a mapping"), "{e}");
}

#[test]
fn many_services_and_keys_load() {
    const N: usize = 5_000;
    // Lookups are by index, not by scanning: N services, each extending
    // a base, with an N-key environment merged twice.
    let mut a = String::from("services:\n  base: {build: .}\n");
    let mut env = String::from("x-env: &env\n");
    for i in 0..N {
        a.push_str(&format!("  s{i}: {{extends: base}}\n"));
        env.push_str(&format!("  K{i}: v\n"));
    }
    let b = format!("{env}services:\n  base:\n    environment: *env\n");
    let files: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    let sources = [
        Source {
            path: PathBuf::from("p/a.yml"),
            bytes: a.into_bytes(),
        },
        Source {
            path: PathBuf::from("p/b.yml"),
            bytes: b.clone().into_bytes(),
        },
        Source {
            path: PathBuf::from("p/c.yml"),
            bytes: b.into_bytes(),
        },
    ];
    let loaded = load_project(&sources, &Options::default(), &files).expect("loads");
    assert_eq!(loaded.project.services.len(), N + 1);
    assert_eq!(loaded.project.services["base"].environment.len(), N);
}
