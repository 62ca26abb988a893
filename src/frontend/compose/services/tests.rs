//! The seed's compose pair (testdata/compose-seed) and one table of build
//! sections: what is carried, what is refused and how the error reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::super::{load_project, Options, RealFiles, Source};
use super::*;

fn seed(files: &[&str]) -> Planned {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/compose-seed");
    let sources: Vec<Source> = files
        .iter()
        .map(|f| {
            let path = dir.join(f);
            let bytes = fs_err::read(&path).expect("seed compose file");
            Source { path, bytes }
        })
        .collect();
    load_builds(&sources, &Options::default(), &RealFiles).expect("the seed's files load")
}

#[test]
fn seed_pair_builds_the_two_prod_images() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let planned = seed(&["docker-compose.yml", "docker-compose.prod.yml"]);
    assert_eq!(planned.project, "compose-seed");
    assert!(planned.skipped.is_empty(), "{:?}", planned.skipped);
    assert!(planned.warnings.is_empty(), "{:?}", planned.warnings);
    let got: Vec<(&str, &str, PathBuf, DockerfileSource, Option<&str>)> = planned
        .builds
        .iter()
        .map(|b| {
            (
                b.service.as_str(),
                b.image.as_str(),
                b.context.clone(),
                b.dockerfile.clone(),
                b.target.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "agent",
                "hoist-example-agent",
                root.join("agent"),
                DockerfileSource::Path(root.join("agent/Dockerfile")),
                Some("prod"),
            ),
            (
                "web",
                "hoist-example-web",
                root.join("web"),
                DockerfileSource::Path(root.join("web/Dockerfile")),
                Some("prod"),
            ),
        ]
    );
    for b in &planned.builds {
        // The contexts are the seed's apps, as they are on disk.
        assert!(
            b.context.join("Dockerfile").is_file(),
            "{}",
            b.context.display()
        );
        assert!(b.args.is_empty() && b.platforms.is_empty() && b.tags.is_empty());
        assert!(
            b.at.contains("compose-seed/docker-compose.yml:"),
            "{}",
            b.at
        );
    }
    // The health checks are the prod file's, over the dev file's services.
    let dir = root.join("compose-seed");
    let sources: Vec<Source> = ["docker-compose.yml", "docker-compose.prod.yml"]
        .iter()
        .map(|f| Source {
            path: dir.join(f),
            bytes: fs_err::read(dir.join(f)).expect("seed compose file"),
        })
        .collect();
    let project = load_project(&sources, &Options::default(), &RealFiles)
        .expect("loads")
        .project;
    for (name, port) in [("web", "3000"), ("agent", "8080")] {
        let s = &project.services[name];
        let h = s.healthcheck.as_ref().expect("a prod health check");
        assert_eq!(h.test.first().map(String::as_str), Some("CMD"), "{name}");
        assert!(h
            .test
            .iter()
            .any(|t| t.contains(&format!("127.0.0.1:{port}/health"))));
        assert_eq!(s.ports, [format!("{port}:{port}")]);
    }
}

#[test]
fn seed_dev_file_alone_builds_the_dev_targets() {
    let planned = seed(&["docker-compose.yml"]);
    let got: Vec<(String, String, Option<String>)> = planned
        .builds
        .into_iter()
        .map(|b| (b.service, b.image, b.target))
        .collect();
    let want = [
        ("agent", "compose-seed-agent", "dev"),
        ("web", "compose-seed-web", "dev"),
    ]
    .map(|(s, i, t)| (s.to_string(), i.to_string(), Some(t.to_string())));
    assert_eq!(got, want);
}

/// Loads `services.s` from `body` (plus `extra` top-level YAML), in
/// memory, and returns the dump of its builds or the error.
fn planned(body: &str, extra: &str) -> String {
    let yaml = format!(
        "services:\n  s:\n{}{extra}",
        body.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    let files: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    let sources = [Source {
        path: PathBuf::from("p/compose.yml"),
        bytes: yaml.into_bytes(),
    }];
    let opts = Options {
        env: [("SET".to_string(), "v".to_string())].into(),
        ..Options::default()
    };
    match load_builds(&sources, &opts, &files) {
        Ok(p) => dump(&p.builds, &p.skipped, Path::new("p"))
            .lines()
            .filter(|l| !l.starts_with("build "))
            .map(str::trim)
            .filter(|l| !l.starts_with("image ") && !l.starts_with("context "))
            .collect::<Vec<_>>()
            .join("; "),
        Err(e) => format!("error {e}"),
    }
}

#[test]
fn build_sections() {
    let secrets =
        "secrets:\n  f: {file: ./s/f.txt}\n  e: {environment: TOKEN}\n  x: {external: true}\n";
    for (body, extra, want) in [
        // The Dockerfile: default, relative to the context, absolute, inline.
        ("build: ./app", "", "dockerfile app/Dockerfile"),
        ("build: {context: app, dockerfile: ../Dockerfile.app}", "", "dockerfile Dockerfile.app"),
        ("build: {context: app, dockerfile: /abs/Dockerfile}", "", "dockerfile /abs/Dockerfile"),
        ("build: {dockerfile_inline: 'FROM scratch'}", "", "dockerfile_inline \"FROM scratch\""),
        // Args: a key with no value takes the environment's, else is dropped.
        ("build: {args: [A=1, SET, UNSET, EMPTY=]}", "", "dockerfile Dockerfile; arg A=1; arg EMPTY=; arg SET=v"),
        ("build: {args: {SET: null, UNSET: null, N: 3}}", "", "dockerfile Dockerfile; arg N=3; arg SET=v"),
        // Platforms: the service's when the build names none.
        ("platform: linux/arm64\nbuild: .", "", "dockerfile Dockerfile; platform linux/arm64"),
        ("platform: linux/arm64\nbuild: {platforms: [linux/amd64, linux/arm64]}", "", "dockerfile Dockerfile; platform linux/arm64; platform linux/amd64"),
        // Secrets: a file or a variable; the id is the target, else the name.
        ("build: {secrets: [f, {source: e, target: npm}]}", secrets, "dockerfile Dockerfile; secret f file=s/f.txt; secret npm env=TOKEN"),
        ("build: {secrets: [x]}", secrets, "error p/compose.yml:3: services.s.build.secrets: secret \"x\" (defined at p/compose.yml:7) has neither `file` nor `environment`; a build secret must come from one of them (an external secret exists only at run time)"),
        ("build: {secrets: [nope]}", secrets, "error p/compose.yml:3: services.s.build.secrets: no secret \"nope\" under the top-level `secrets:`; define it there, e.g. `secrets: {nope: {file: ./nope.txt}}`"),
        // Network: the sandbox's three modes.
        ("build: {network: none}", "", "dockerfile Dockerfile; network none"),
        ("build: {network: default}", "", "dockerfile Dockerfile; network default"),
        ("build: {network: backend}", "", "error p/compose.yml:3: services.s.build.network: network \"backend\" is not one hoist's build sandbox has: use default, none or host"),
        // Keys that ask for nothing pass; x- extensions pass.
        ("build: {ssh: [], privileged: false, isolation: default, extra_hosts: {}, x-note: hi}", "", "dockerfile Dockerfile"),
        // Keys that ask for something hoist cannot do are refused, by line.
        ("build:\n  context: .\n  ssh: [default]", "", "error p/compose.yml:5: services.s.build.ssh: not supported: hoist forwards no SSH agent into a build: give the key as a build secret (top-level `secrets:` with `file:`) and mount it with RUN --mount=type=secret"),
        ("build:\n  additional_contexts: {base: docker-image://alpine}", "", "error p/compose.yml:4: services.s.build.additional_contexts: not supported: hoist has no named build contexts: use a stage of the same Dockerfile, or COPY --from=IMAGE for an image"),
        ("build: {extra_hosts: ['db:10.0.0.2']}", "", "error p/compose.yml:3: services.s.build.extra_hosts: not supported: hoist's build sandbox adds no /etc/hosts entries: remove it and reach the host by its address"),
        ("build: {privileged: true}", "", "error p/compose.yml:3: services.s.build.privileged: not supported: hoist runs RUN steps rootless and unprivileged: remove it"),
        ("build: {entitlements: [network.host]}", "", "error p/compose.yml:3: services.s.build.entitlements: not supported: hoist runs RUN steps rootless and unprivileged: remove it"),
        ("build: {shm_size: 2gb}", "", "error p/compose.yml:3: services.s.build.shm_size: not supported: hoist's build sandbox has no settable /dev/shm size: remove it"),
        ("build: {ulimits: {nofile: 1024}}", "", "error p/compose.yml:3: services.s.build.ulimits: not supported: hoist's build sandbox sets no ulimits: remove it"),
        ("build: {isolation: hyperv}", "", "error p/compose.yml:3: services.s.build.isolation: not supported: an isolation mode for Windows containers: remove it"),
        ("build: {provenance: true}", "", "error p/compose.yml:3: services.s.build.provenance: not supported: hoist writes no provenance attestation: remove it or set it to false"),
        ("build: {sbom: true}", "", "error p/compose.yml:3: services.s.build.sbom: not supported: hoist attaches no BuildKit SBOM attestation (use `hoist build --sbom spdx|cyclonedx`): remove it or set it to false"),
        ("build: {context: ., tagz: [a]}", "", "error p/compose.yml:3: services.s.build.tagz: `tagz` is not a build key compose knows; check its spelling (the keys are: context, dockerfile, dockerfile_inline, target, args, labels, platforms, tags, cache_from, cache_to, secrets, network, no_cache, pull, ssh, additional_contexts, extra_hosts, privileged, entitlements, isolation, shm_size, ulimits, provenance, sbom)"),
        ("build: 'git@github.com:example/app.git'", "", "error p/compose.yml:3: services.s.build.context: the context \"git@github.com:example/app.git\" is a URL; hoist builds from a local folder: clone it and set `context` to the folder"),
        ("platform: linux/s390x\nbuild: {platforms: [linux/amd64]}", "", "error p/compose.yml:4: services.s.build.platforms: the service's platform \"linux/s390x\" is not one of its build.platforms (linux/amd64); add it to build.platforms or change it"),
        // Only an image: nothing to build, said so.
        ("image: redis:7", "", "skip s: uses image redis:7, nothing to build"),
        ("image: redis:7\nbuild: .", "", "dockerfile Dockerfile"),
    ] {
        assert_eq!(planned(body, extra), want, "{body}");
    }
}

#[test]
fn selection() {
    let files: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    let sources = [Source {
        path: PathBuf::from("shop/compose.yml"),
        bytes: b"services:\n  web: {build: ./web}\n  api: {build: ./api}\n  db: {image: postgres}\n  dbg: {build: ./dbg, profiles: [debug]}\n"
            .to_vec(),
    }];
    let project = load_project(&sources, &Options::default(), &files)
        .expect("loads")
        .project;
    let names = |sel: &[&str]| -> Result<(Vec<String>, Vec<String>), String> {
        let sel: Vec<String> = sel.iter().map(|s| s.to_string()).collect();
        builds(&project, &sel)
            .map(|(b, s)| {
                (
                    b.into_iter().map(|b| b.image).collect(),
                    s.into_iter().map(|s| s.service).collect(),
                )
            })
            .map_err(|e| e.to_string())
    };
    let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Sorted by name, whatever order the files or the selection give.
    assert_eq!(names(&[]), Ok((v(&["shop-api", "shop-web"]), v(&["db"]))));
    assert_eq!(names(&["web", "db"]), Ok((v(&["shop-web"]), v(&["db"]))));
    assert_eq!(
        names(&["nope"]),
        Err("no such service: \"nope\" (the files define: api, db, dbg, web)".into())
    );
    assert_eq!(
        names(&["dbg"]),
        Err("service \"dbg\" is left out by its profiles: enable one of them with --profile, or name the service when loading the project".into())
    );
    // Named when loading, as load_builds does, a service's profiles do not matter.
    let opts = Options {
        services: vec!["dbg".into()],
        ..Options::default()
    };
    let planned = load_builds(&sources, &opts, &files).expect("loads");
    assert_eq!(
        planned
            .builds
            .iter()
            .map(|b| b.image.as_str())
            .collect::<Vec<_>>(),
        ["shop-dbg"]
    );
}

#[test]
fn a_project_made_by_hand_is_checked_as_a_loaded_one() {
    let project = Project {
        name: "p".into(),
        dir: PathBuf::from("p"),
        services: [("bare".to_string(), Service::default())].into(),
        disabled: Vec::new(),
        secrets: BTreeMap::new(),
        default_platform: None,
    };
    let e = builds(&project, &[]).expect_err("neither").to_string();
    assert_eq!(
        e,
        "service bare: services.bare: service \"bare\" has neither `image` nor `build`: add `build: ./folder` (a folder with a Dockerfile) or `image: name:tag`"
    );
}

#[test]
fn docker_default_platform_comes_first() {
    let files: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    let load = |default: &str, body: &str| -> Result<Vec<String>, String> {
        let sources = [Source {
            path: PathBuf::from("p/compose.yml"),
            bytes: format!("services:\n  s:\n{body}").into_bytes(),
        }];
        let opts = Options {
            env: [("DOCKER_DEFAULT_PLATFORM".to_string(), default.to_string())].into(),
            ..Options::default()
        };
        load_builds(&sources, &opts, &files)
            .map(|p| p.builds.into_iter().flat_map(|b| b.platforms).collect())
            .map_err(|e| e.to_string())
    };
    let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        load("linux/arm64", "    build: .\n"),
        Ok(v(&["linux/arm64"]))
    );
    assert_eq!(load("", "    build: .\n"), Ok(v(&[])));
    assert_eq!(
        load(
            "linux/arm64",
            "    platform: linux/amd64\n    build: {platforms: [linux/amd64, linux/arm64, linux/arm/v7]}\n"
        ),
        Ok(v(&["linux/arm64", "linux/amd64", "linux/arm/v7"]))
    );
    assert_eq!(
        load("linux/s390x", "    build: {platforms: [linux/amd64]}\n"),
        Err("p/compose.yml:3: services.s.build.platforms: DOCKER_DEFAULT_PLATFORM \"linux/s390x\" is not one of its build.platforms (linux/amd64); add it to build.platforms or change it".into())
    );
}
