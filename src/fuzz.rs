//! Property tests: every parser that reads outside input (a registry's
//! answer, a file in the user's project or in a base image, a flag) gets
//! arbitrary bytes and mutations of valid documents, and must return,
//! an error or a value, never panic.
//!
//! Each target sees [`CASES`] arbitrary inputs and [`CASES`] mutations of
//! its seeds (`HOIST_FUZZ_CASES` changes the count, e.g. for a longer run
//! by hand). The inputs are the same on every run, so the suite is
//! repeatable; `HOIST_FUZZ_SEED=N` draws others, to look further by hand.
//! Mutations splice in the target's own tokens (keys, quotes,
//! separators, huge numbers) so that most inputs get past the first
//! syntax check and reach the code behind it. Every target counts what it
//! saw and fails when it saw fewer inputs than asked, so a target cannot
//! silently stop running.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Inputs per strategy and target, unless `HOIST_FUZZ_CASES` says.
const CASES: u32 = 25_000;

fn cases() -> u32 {
    std::env::var("HOIST_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES)
}

/// One edit of a seed.
#[derive(Debug, Clone)]
enum Edit {
    /// Insert one of the target's tokens at a position.
    Token(usize, usize),
    /// Insert a raw byte.
    Byte(usize, u8),
    /// Delete a range.
    Delete(usize, usize),
    /// Repeat a range after itself.
    Repeat(usize, usize),
    /// Cut the rest.
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), any::<usize>()).prop_map(|(p, t)| Edit::Token(p, t)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Byte(p, b)),
        2 => (any::<usize>(), 0usize..16).prop_map(|(p, n)| Edit::Delete(p, n)),
        1 => (any::<usize>(), 0usize..24).prop_map(|(p, n)| Edit::Repeat(p, n)),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// Applies `edits` to `seed`, splicing in `tokens`.
fn mutate(seed: &[u8], tokens: &[String], edits: &[Edit]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for e in edits {
        let at = |p: usize, v: &Vec<u8>| p % (v.len() + 1);
        match *e {
            Edit::Token(p, t) if !tokens.is_empty() => {
                let p = at(p, &v);
                let tok = tokens[t % tokens.len()].as_bytes();
                v.splice(p..p, tok.iter().copied());
            }
            Edit::Token(..) => {}
            Edit::Byte(p, b) => {
                let p = at(p, &v);
                v.insert(p, b);
            }
            Edit::Delete(p, n) => {
                let p = at(p, &v);
                let end = (p + n).min(v.len());
                v.drain(p..end);
            }
            Edit::Repeat(p, n) => {
                let p = at(p, &v);
                let end = (p + n).min(v.len());
                let part = v[p..end].to_vec();
                v.splice(end..end, part);
            }
            Edit::Truncate(p) => {
                let p = at(p, &v);
                v.truncate(p);
            }
        }
    }
    v
}

/// Tokens every text format meets: quoting, nesting, numbers at and past
/// the edges of integer types, odd Unicode.
const COMMON: &[&str] = &[
    "\"",
    "'",
    "\\",
    "\n",
    "\r\n",
    "\t",
    " ",
    "=",
    ":",
    ",",
    ";",
    "#",
    "/",
    "..",
    "[",
    "]",
    "{",
    "}",
    "0",
    "-1",
    "65535",
    "65536",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "99999999999999999999999",
    "1e999",
    "null",
    "true",
    "\u{0}",
    "\u{feff}",
    "é",
    "\u{10ffff}",
    "%",
    "%2F",
    "@",
    "*",
    "**",
    "!",
    "?",
    "$",
    "${A}",
    "~",
];

/// A runner drawing the same inputs on every run, or those of
/// `HOIST_FUZZ_SEED`.
fn seeded_runner(config: Config) -> TestRunner {
    let seed: u64 = std::env::var("HOIST_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x68_6f69_7374);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Runs `check` on arbitrary bytes and on mutations of `seeds`; returns
/// how many inputs it saw.
fn fuzz(name: &str, seeds: &[&str], tokens: &[&str], check: impl Fn(&[u8])) -> usize {
    let seen = AtomicUsize::new(0);
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let mut tokens_all: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
    tokens_all.extend(COMMON.iter().map(|t| t.to_string()));
    let run = |runner: &mut TestRunner, strategy: BoxedStrategy<Vec<u8>>| {
        runner
            .run(&strategy, |bytes| {
                seen.fetch_add(1, Ordering::Relaxed);
                check(&bytes);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    };
    let mut runner = seeded_runner(config.clone());
    run(
        &mut runner,
        proptest::collection::vec(any::<u8>(), 0..512).boxed(),
    );
    if !seeds.is_empty() {
        let seeds: Vec<Vec<u8>> = seeds.iter().map(|s| s.as_bytes().to_vec()).collect();
        let strategy = (0..seeds.len(), proptest::collection::vec(edit(), 1..8))
            .prop_map(move |(i, edits)| mutate(&seeds[i], &tokens_all, &edits))
            .boxed();
        let mut runner = seeded_runner(config);
        run(&mut runner, strategy);
    }
    let seen = seen.load(Ordering::Relaxed);
    let want = cases() as usize * if seeds.is_empty() { 1 } else { 2 };
    eprintln!("fuzz {name}: {seen} inputs");
    assert!(seen >= want, "{name}: saw {seen} inputs, wanted {want}");
    seen
}

fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

#[test]
fn image_references() {
    fuzz(
        "reference",
        &[
            "alpine",
            "alpine:3.20",
            "docker.io/library/alpine:3.20@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "localhost:5000/a/b-c_d.e:tag",
            "[::1]:5000/x",
            "docker://registry.example.com/team/base:1",
        ],
        &["docker.io/", "localhost", ":5000", "@sha256:", "library/", "[::1]", "-", "_", "."],
        |b| {
            let s = text(b);
            if let Ok(r) = crate::reference::Reference::parse(&s) {
                let _ = r.to_string();
                let _ = crate::reference::Reference::parse(&r.to_string());
            }
            let _ = crate::transport::Transport::parse(&s);
            let _ = crate::digest::Digest::parse(&s);
            let _ = crate::image::Platform::parse(&s);
        },
    );
}

#[test]
fn hoist_toml() {
    fuzz(
        "hoist.toml",
        &[
            "[image]\nbase = \"oci-archive:base.tar\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nworkdir = \"/app\"\nuser = { name = \"app\", uid = 1000 }\ncmd = [\"node\", \"server.js\"]\nenv = { A = \"1\" }\nexpose = [3000, \"53/udp\"]\nhealthcheck = { cmd = [\"true\"], interval = \"30s\", retries = 2 }\n",
            "recipe = \"node\"\n[deps]\ndev = true\n[app]\ncopy = [{ from = \"dist\", to = \"/srv\" }]\n[[run]]\ncommand = \"apt-get update\"\ntimeout = \"5m\"\n",
            "[images.web]\ncontext = \"web\"\n[images.web.image]\ntags = [\"web:1\"]\n[target.dev]\nimage.cmd = \"npm run dev\"\n",
        ],
        &[
            "[image]", "[deps]", "[app]", "[[run]]", "[target.x]", "[images.a]", "platforms = []",
            "base = ", "workdir = ", "user = ", "interval = \"5000000h\"", "timeout = ",
            "retries = ", "expose = ", "cmd = []", "\"\"\"", "'''", "recipe = ", "tags = ",
            "outputs = ", "compression = ", "stop-signal = ", "context = ", "copy = ",
        ],
        |b| {
            let _ = crate::frontend::recipe::file::parse(b, "hoist.toml", Path::new("/p"));
        },
    );
}

#[test]
fn dockerfile() {
    fuzz(
        "Dockerfile",
        &[
            "# syntax=docker/dockerfile:1\n# escape=\\\nARG BASE=alpine:3.20\nFROM --platform=$BUILDPLATFORM ${BASE:-x} AS build\nARG V\nENV A=1 B=\"x $V\" \\\n  C='y'\nRUN --mount=type=cache,target=/c,id=$V --network=none <<EOF bash\necho $A\nEOF\nCOPY --from=build --chown=a:a [\"a\", \"b\"] /d/\nHEALTHCHECK --interval=5s CMD [\"true\"]\nONBUILD RUN x\nEXPOSE ${P:-80} 53/udp\nUSER ${U:?no}\n",
            "# escape=`\nFROM a\nRUN dir `\n  c:\\\nCOPY <<-\"X\" <<Y /o\n\tx\n\tX\ny\nY\nLABEL k=v\nVOLUME [\"/v\"]\nSHELL [\"sh\",\"-c\"]\n",
        ],
        &[
            "FROM ", "RUN ", "COPY ", "ADD ", "ARG ", "ENV ", "ONBUILD ", "HEALTHCHECK ", "\\\n", "`\n",
            "<<EOF", "<<-EOF", "<<'EOF'", "\nEOF\n", "${", "${A:-", "${A:?", ":+", "}", "--mount=", "--from=",
            "type=secret", "[\"", "\"]", "# escape=`\n", " AS ",
        ],
        |b| {
            use crate::frontend::dockerfile::{expand, instructions, parser};
            if let Ok(df) = parser::parse(b, "Dockerfile") {
                for n in &df.nodes {
                    let _ = n.dump();
                }
                if let Ok(ins) = instructions::parse(&df) {
                    let args = vec![("A".to_owned(), "1 2".to_owned())];
                    let predefined = [("TARGETOS", "linux")].into_iter().collect();
                    let _ = expand::expand(
                        &ins,
                        expand::Inputs {
                            build_args: &args,
                            predefined: &predefined,
                            base_env: &|_| Default::default(),
                        },
                    );
                }
            }
        },
    );
}

#[test]
fn compose_files() {
    use crate::frontend::compose;
    fuzz(
        "compose",
        &[
            include_str!("../testdata/compose/web-agent/docker-compose.yml"),
            include_str!("../testdata/compose/web-agent/docker-compose.prod.yml"),
            include_str!("../testdata/compose/extends/compose.yml"),
            include_str!("../testdata/compose/interpolation/compose.yml"),
            "services:\n  s:\n    extends: {file: base.yml, service: s}\n    build: !reset null\n    ports: !override [\"1:1\"]\n",
            "# .env\nexport A=1\nB='x $A'\nC=\"y ${A:-z}\\n\" # c\nD\n",
        ],
        &[
            "${A:-", "${A?", "${A:+x}", "}", "$$", "!reset ", "!override ", "<<: *a", "&a ", "*a",
            "extends: ", "file: base.yml", "file: compose.yml", "service: s", "build: ",
            "services:\n  ", "\n    ", "- ", "'", "\"", "export ", "profiles: [", "---\n",
            "environment: ", "args: ", "ports: ", "volumes: ", "healthcheck: ", "{target: 1}",
            "secrets: ", "platform: ", "platforms: [", "dockerfile_inline: ", "ssh: ", "x-a: ",
        ],
        |b| {
            let mut files: std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> =
                std::collections::BTreeMap::new();
            files.insert("p/.env".into(), b.to_vec());
            files.insert("p/base.yml".into(), b.to_vec());
            let sources = [
                compose::Source {
                    path: "p/compose.yml".into(),
                    bytes: b.to_vec(),
                },
                compose::Source {
                    path: "p/compose.override.yml".into(),
                    bytes: b.to_vec(),
                },
            ];
            let opts = compose::Options {
                profiles: vec!["debug".into()],
                ..compose::Options::default()
            };
            if let Ok(loaded) = compose::load_project(&sources, &opts, &files) {
                let _ = compose::model::dump(&loaded.project);
                if let Ok((builds, skipped)) = compose::builds(&loaded.project, &[]) {
                    let _ = compose::services::dump(&builds, &skipped, "p".as_ref());
                }
            }
            let _ = compose::load::parse_dotenv(b, ".env", &std::collections::BTreeMap::new());
            let _ = compose::interpolate::substitute(&text(b), &|_| Some("v".into()));
        },
    );
}

#[test]
fn dockerignore() {
    fuzz(
        ".dockerignore",
        &["node_modules\n!node_modules/keep\n**/*.log\n# c\n[a-z]?.txt\n\\#x\n/abs/../b\n"],
        &["!", "**", "*", "?", "[", "[^", "]", "\\", "[a-", "\\pL"],
        |b| {
            if let Ok(rules) = crate::ignore::IgnoreRules::parse(b) {
                for p in ["a", "node_modules/x", "a/b/c.log", "..", ""] {
                    let _ = rules.is_excluded(p);
                    let _ = rules.may_include_under(p);
                }
                let _ = rules.is_excluded(&text(b));
            }
        },
    );
}

#[test]
fn requirements_lines() {
    fuzz(
        "requirements.txt",
        &[
            "flask==3.0.0 --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000\nrequests[socks]>=2,<3 ; python_version >= \"3.8\"\n-r other.txt\n-c constraints.txt\n--index-url https://pypi.org/simple\n./local\nfoo @ https://x/foo.whl \\\n  --hash=sha256:00\n",
        ],
        &[
            "==", ">=", "~=", "!=", "===", ";", "python_version", "extra == 'a'", "--hash=sha256:",
            "-r ", "-e ", "--index-url ", "--extra-index-url ", "--find-links ", "@ ", "[", "]",
            "\\\n", ".*",
        ],
        |b| {
            let _ = crate::deps::pip::requirements::RequirementsTxt::parse(b);
        },
    );
}

#[test]
fn package_lock_json() {
    fuzz(
        "package-lock.json",
        &[
            r#"{"name":"a","lockfileVersion":3,"packages":{"":{"name":"a","dependencies":{"b":"^1"}},"node_modules/b":{"version":"1.0.0","resolved":"https://registry.npmjs.org/b/-/b-1.0.0.tgz","integrity":"sha512-AAAA","bin":{"b":"cli.js"},"os":["!win32"],"cpu":["x64"],"dev":true,"hasInstallScript":true},"node_modules/b/node_modules/c":{"version":"2.0.0"},"packages/w":{"name":"w"},"node_modules/w":{"resolved":"packages/w","link":true}}}"#,
            r#"{"name":"a","version":"1.0.0","dependencies":{"b":"^1"},"bin":"cli.js","scripts":{"postinstall":"node x"},"workspaces":["packages/*"]}"#,
        ],
        &[
            "\"node_modules/",
            "/node_modules/",
            "\"lockfileVersion\":",
            "\"packages\":",
            "\"link\":true",
            "\"resolved\":",
            "\"integrity\":\"sha512-",
            "\"bin\":",
            "\"os\":",
            "\"version\":",
            "../",
            "\"\":",
        ],
        |b| {
            use crate::deps::npm::lockfile::{InstallPath, Lockfile, PackageJson};
            let _ = Lockfile::parse(b);
            let _ = PackageJson::parse(b);
            if let Ok(p) = InstallPath::parse(&text(b)) {
                let _ = (p.name(), p.parent(), p.node_modules(), p.depth());
            }
            let _ = crate::deps::npm::integrity::Integrity::parse(&text(b));
        },
    );
}

#[test]
fn npmrc() {
    fuzz(
        ".npmrc",
        &["registry=https://registry.npmjs.org/\n@scope:registry=https://npm.example.com/\n//npm.example.com/:_authToken=${NPM_TOKEN}\n//x/:_auth=dXNlcjpwYXNz\n//x/:username=u\n//x/:_password=cGFzcw==\nalways-auth=true\n; c\n"],
        &["${", "}", "${NPM_TOKEN}", "//", ":_authToken=", ":_auth=", ":_password=", "@", ":registry=", "[section]"],
        |b| {
            let env = |k: &str| (k == "NPM_TOKEN").then(|| "t".to_owned());
            if let Ok(rc) = crate::deps::npm::npmrc::Npmrc::parse(&text(b), &env) {
                let _ = rc.registry_for("@scope/x");
                let _ = rc.auth_for("https://npm.example.com/a");
            }
        },
    );
}

#[test]
fn passwd_and_group() {
    fuzz(
        "passwd/group",
        &[
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            "root:x:0:\nusers:x:100:a,b\n",
        ],
        &[":", "::", "x", "4294967295", "4294967296", "+", "-", "\n"],
        |b| {
            let _ = crate::exec::steps::user::parse_passwd(b);
            let _ = crate::exec::steps::user::parse_group(b);
            let _ = crate::graph::spec::UserSpec::parse(&text(b));
        },
    );
}

#[test]
fn os_release() {
    fuzz(
        "os-release",
        &["NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nID_LIKE='debian ubuntu'\nPRETTY_NAME=\"a \\\"b\\\" \\$c\"\n"],
        &["ID=", "VERSION_ID=", "ID_LIKE=", "\\\"", "\\$", "\\`", "\\\\"],
        |b| {
            let os = crate::facts::OsRelease::parse(b);
            let _ = os.family();
        },
    );
}

#[test]
fn registries_conf() {
    fuzz(
        "registries.conf",
        &["unqualified-search-registries = [\"docker.io\"]\n[[registry]]\nprefix = \"docker.io/library\"\nlocation = \"mirror.example.com/lib\"\ninsecure = true\nblocked = false\n[[registry.mirror]]\nlocation = \"127.0.0.1:5000\"\npull-from-mirror = \"digest-only\"\n[aliases]\nalpine = \"docker.io/library/alpine\"\n"],
        &["[[registry]]", "[[registry.mirror]]", "prefix = ", "location = ", "*.", "insecure = ", "pull-from-mirror = ", "mirror-by-digest-only = "],
        |b| {
            if let Ok(conf) = crate::registry::conf::RegistriesConf::parse(&text(b), "registries.conf") {
                if let Ok(r) = crate::reference::Reference::parse("docker.io/library/alpine:3") {
                    let _ = conf.pull_sources(&r);
                    let _ = conf.rewrite(&r);
                    let _ = conf.is_blocked(&r);
                }
                let _ = conf.is_insecure("127.0.0.1:5000");
            }
        },
    );
}

#[test]
fn auth_files_and_helpers() {
    fuzz(
        "auth.json",
        &[
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},"127.0.0.1:5000/team":{"username":"u","password":"p"},"ghcr.io":{"identitytoken":"t"}},"credHelpers":{"ghcr.io":"gh"},"credsStore":"desktop"}"#,
            r#"{"ServerURL":"x","Username":"<token>","Secret":"s"}"#,
        ],
        &[
            "\"auths\":",
            "\"auth\":\"",
            "\"credHelpers\":",
            "\"credsStore\":",
            "https://",
            "/v1/",
            ":",
            "dXNlcjpwYXNz",
            "==",
        ],
        |b| {
            for (reg, repo) in [
                ("docker.io", "library/alpine"),
                ("127.0.0.1:5000", "team/x"),
            ] {
                let _ = crate::registry::credentials::lookup_in(b, "auth.json", reg, repo);
            }
            let _ = crate::registry::credentials::parse_helper_output(b, "docker-credential-x");
        },
    );
}

#[test]
fn registry_answers() {
    fuzz(
        "token/challenge/error answers",
        &[
            r#"{"token":"t","access_token":"a","expires_in":300,"issued_at":"2026-01-01T00:00:00Z"}"#,
            r#"Bearer realm="https://auth.example.com/token",service="registry",scope="repository:a:pull,push", Basic realm="x""#,
            r#"{"errors":[{"code":"DENIED","message":"no","detail":{}}]}"#,
            "Wed, 21 Oct 2015 07:28:00 GMT",
        ],
        &[
            "\"expires_in\":",
            "18446744073709551615",
            "1e300",
            "-5",
            "realm=",
            "\"",
            ",",
            "Bearer ",
            "Basic ",
            "120",
        ],
        |b| {
            let _ = crate::registry::client_parse_token_answer(b);
            let _ = crate::registry::client_parse_error_body(b);
            let s = text(b);
            for c in crate::registry::challenge::parse(&s) {
                let _ = c.param("realm");
            }
            let _ = crate::net::retry::parse_retry_after(&s, std::time::SystemTime::now());
        },
    );
}

#[test]
fn manifests_indexes_configs() {
    fuzz(
        "manifest/index/config",
        &[
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":9223372036854775807}]}"#,
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1,"platform":{"architecture":"arm64","os":"linux","variant":"v8"},"annotations":{"org.opencontainers.image.ref.name":"x"}}]}"#,
            r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"],"User":"1000","ExposedPorts":{"80/tcp":{}},"Healthcheck":{"Test":["CMD","true"],"Interval":30000000000}},"rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]},"history":[{"created_by":"x","empty_layer":true}]}"#,
            r#"[{"Config":"blobs/sha256/00","RepoTags":["a:1"],"Layers":["blobs/sha256/11"]}]"#,
        ],
        &[
            "\"manifests\":",
            "\"layers\":",
            "\"config\":",
            "\"size\":",
            "\"digest\":\"sha256:",
            "\"mediaType\":",
            "\"platform\":",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "\"Interval\":",
            "-1",
        ],
        |b| {
            for media in [
                None,
                Some(crate::image::media::OCI_INDEX),
                Some(crate::image::media::OCI_MANIFEST),
            ] {
                let _ = crate::image::ImageDoc::parse(b, "fuzz", media);
            }
            let _ = crate::image::ImageConfig::parse(b, "fuzz");
            let _ = crate::transport::fuzz_parse_manifest_json(b);
            let _ = crate::ops::bundle::parse_index(b, Path::new("bundle.tar"));
            // A registry cache entry (--cache-from) is a manifest too.
            let _ = crate::cache::Artifact::parse(b, "k-0", "npm-deps", "0");
        },
    );
}

#[test]
fn python_packaging_files() {
    fuzz(
        "wheel/pylock/metadata",
        &[
            "Metadata-Version: 2.1\nName: flask\nVersion: 3.0.0\nRequires-Python: >=3.8\nRequires-Dist: click>=8 ; extra == 'cli'\n\nbody",
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            "a/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\na.dist-info/RECORD,,\n",
            "[console_scripts]\nflask = flask.cli:main [extra]\n",
            "lock-version = \"1.0\"\ncreated-by = \"hoist\"\n[[packages]]\nname = \"a\"\nversion = \"1\"\nwheels = [{ url = \"https://x/a-1-py3-none-any.whl\", hashes = { sha256 = \"00\" } }]\n",
            "flask-3.0.0-1build-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        ],
        &[": ", "\n\n", "sha256=", ",", "[", "]", " = ", ":", ".", "-", "manylinux_", "2_17", "[[packages]]"],
        |b| {
            let s = text(b);
            let _ = crate::deps::pip::metadata::CoreMetadata::parse(b);
            let _ = crate::deps::pip::wheel::dist_info::parse_wheel_file(b);
            let _ = crate::deps::pip::wheel::record::parse(b);
            let _ = crate::deps::pip::wheel::record::RecordHash::parse(&s);
            let _ = crate::deps::pip::wheel::entry_points::parse(b);
            let _ = crate::deps::pip::lock::Lock::parse(b);
            let _ = crate::deps::pip::tags::WheelFilename::parse(&s);
            let _ = crate::deps::pip::sdist::BuildSystem::parse(Some(b));
        },
    );
}

#[test]
fn package_index_pages() {
    let page = reqwest::Url::parse("https://pypi.example.com/simple/flask/").ok();
    fuzz(
        "index pages/netrc",
        &[
            r#"{"meta":{"api-version":"1.1"},"name":"flask","files":[{"filename":"flask-3.0.0-py3-none-any.whl","url":"../../f/flask-3.0.0-py3-none-any.whl#sha256=00","hashes":{"sha256":"00"},"requires-python":">=3.8","yanked":"bad"}]}"#,
            "<html><body><a href=\"../f/flask-3.0.0.tar.gz#sha256=00\" data-requires-python=\"&gt;=3.8\" data-yanked>flask-3.0.0.tar.gz</a></body></html>",
            "machine pypi.example.com login u password p\ndefault login a password b\nmacdef x\nbody\n\n",
        ],
        &["<a href=\"", "\">", "</a>", "#sha256=", "&gt;", "&#", "%2B", "../", "//", "machine ", "login ", "password ", "macdef "],
        |b| {
            if let Some(page) = &page {
                let _ = crate::deps::pip::index::parse_json_page(b, page);
                let _ = crate::deps::pip::index::parse_html_page(b, page);
            }
            let _ = crate::deps::pip::index::parse_netrc(&text(b));
        },
    );
}

#[test]
fn command_line_values() {
    fuzz(
        "flag values",
        &[
            "30s",
            "1m30s",
            "500ms",
            "2562047h47m16s854775807ns",
            "[\"node\",\"server.js\"]",
            "53/udp",
            "SIGRTMIN+3",
            "A=1",
            "1000:1000",
            "linux/arm64/v8",
            "zstd:3",
            "7d",
            "10GiB",
        ],
        &[
            "h", "m", "s", "ms", "µs", "ns", "[", "\"", "/", "SIG", "+", "=", "GiB", "d",
        ],
        |b| {
            use crate::graph::config::*;
            let s = text(b);
            let _ = parse_duration(&s);
            let _ = parse_command(&s);
            let _ = parse_port(&s);
            let _ = parse_signal(&s);
            let _ = parse_env(&s);
            let _ = parse_label(&s);
            let _ = healthcheck(&s, None, None, None);
            let _ = crate::layer::Compression::parse(&s);
            let _ = crate::store::gc::parse_age(&s);
            let _ = crate::store::gc::parse_size(&s);
        },
    );
}

#[test]
fn layer_tars() {
    // A small valid tar to mutate: a folder, a file, a link.
    let mut tar = tar::Builder::new(Vec::new());
    for (path, kind, body) in [
        ("app/", tar::EntryType::Directory, &b""[..]),
        ("app/a.txt", tar::EntryType::Regular, &b"hello"[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        let _ = tar.append_data(&mut h, path, body);
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    let _ = tar.append_link(&mut h, "app/l", "../../etc/passwd");
    let bytes = tar.into_inner().unwrap_or_default();
    // Mutations work on text seeds; a tar of ASCII names and octal
    // fields is one, once NULs are kept as they are.
    let seed = String::from_utf8_lossy(&bytes).into_owned();
    fuzz(
        "layer tar",
        &[&seed],
        &[
            "\u{0}",
            "0000644",
            "77777777777",
            "../",
            "/",
            ".wh.",
            ".wh..wh..opq",
            "ustar",
            "././@LongLink",
        ],
        |b| {
            use crate::layer::reader::{Flow, LayerReadError, LayerReader};
            let r = LayerReader::with_limit(b, 1 << 20);
            let _ = r.for_each(|_item, content| {
                let _ = std::io::copy(content, &mut std::io::sink());
                Ok::<_, LayerReadError>(Flow::Continue)
            });
            if let Ok((_, mut r)) = crate::layer::compress::decompress(b) {
                let _ = std::io::copy(&mut Read::take(&mut *r, 1 << 20), &mut std::io::sink());
            }
        },
    );
}
