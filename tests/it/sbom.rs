//! `hoist build --sbom`: the documents validate against their format's
//! official JSON schema (testdata/sbom-schemas, checked by the
//! `jsonschema` Python package through tests/support/validate-sbom.py),
//! list exactly the npm packages and wheels the deps layer holds (read
//! back from the layer: each `node_modules/**/package.json`, each
//! `*.dist-info/METADATA`), are the same bytes on a rebuild (from the
//! cache, or in another store), and, pushed, are found next to the image
//! through the referrers tag (Debian's docker-registry 2.8 has no
//! referrers API, which the test checks too).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::*;

/// Fails with the install command unless the validator can run, then
/// validates `file` as `format` (`spdx` or `cyclonedx`).
fn validate(format: &str, file: &Path) {
    // Debian's Python, where scripts/install-tools puts python3-jsonschema
    // (a python3 earlier on PATH, such as pyenv's, may lack it).
    require("/usr/bin/python3", "python3");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/validate-sbom.py");
    let r = run(
        "/usr/bin/python3",
        &[
            script.to_str().unwrap(),
            testdata("sbom-schemas").to_str().unwrap(),
            format,
            file.to_str().unwrap(),
        ],
    );
    assert_ne!(
        r.status, 2,
        "the jsonschema Python package is missing: apt-get install python3-jsonschema (or python3 -m pip install jsonschema)\n{}",
        r.stderr
    );
    assert_eq!(
        r.status,
        0,
        "{} does not validate as {format}:\n{}{}",
        file.display(),
        r.stdout,
        r.stderr
    );
}

fn json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (purl type, name, version, checksums as `ALG:hex`) of each package a
/// document lists, for either format.
/// The purl types of the base's own packages (its dpkg or apk database),
/// which `listed` leaves out: it lists what the installers put in.
const BASE_KINDS: &[&str] = &["oci", "deb", "apk"];

fn listed(doc: &serde_json::Value) -> Vec<(String, String, String, Vec<String>)> {
    let mut out = Vec::new();
    if let Some(packages) = doc["packages"].as_array() {
        for p in packages {
            let purl = p["externalRefs"][0]["referenceLocator"]
                .as_str()
                .unwrap_or("");
            let kind = purl_type(purl);
            if BASE_KINDS.contains(&kind.as_str()) {
                continue;
            }
            let sums = p["checksums"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    format!(
                        "{}:{}",
                        c["algorithm"].as_str().unwrap(),
                        c["checksumValue"].as_str().unwrap()
                    )
                })
                .collect();
            if let Some(name) = p["name"].as_str().filter(|_| !kind.is_empty()) {
                out.push((
                    kind,
                    name.to_owned(),
                    p["versionInfo"].as_str().unwrap().to_owned(),
                    sums,
                ));
            }
        }
    }
    if let Some(components) = doc["components"].as_array() {
        for c in components {
            let kind = purl_type(c["purl"].as_str().unwrap_or(""));
            if kind.is_empty() || BASE_KINDS.contains(&kind.as_str()) {
                continue;
            }
            let name = match c["group"].as_str() {
                Some(g) => format!("{g}/{}", c["name"].as_str().unwrap()),
                None => c["name"].as_str().unwrap().to_owned(),
            };
            let sums = c["hashes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| {
                    format!(
                        "{}:{}",
                        h["alg"].as_str().unwrap().replace('-', ""),
                        h["content"].as_str().unwrap()
                    )
                })
                .collect();
            out.push((kind, name, c["version"].as_str().unwrap().to_owned(), sums));
        }
    }
    out
}

fn purl_type(purl: &str) -> String {
    purl.strip_prefix("pkg:")
        .and_then(|p| p.split('/').next())
        .unwrap_or("")
        .to_owned()
}

/// PEP 503: runs of `-_.` become `-`, lower case.
fn normalize(name: &str) -> String {
    let mut out = String::new();
    for part in name.split(['-', '_', '.']).filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&part.to_ascii_lowercase());
    }
    out
}

/// Every file under `dir`.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            walk(&p, out);
        } else if t.is_file() {
            out.push(p);
        }
    }
}

/// (name, version) of each npm package in an extracted deps layer: each
/// package.json right inside `node_modules/NAME` or
/// `node_modules/@SCOPE/NAME`.
fn npm_in_layer(root: &Path) -> BTreeSet<(String, String)> {
    let mut files = Vec::new();
    walk(root, &mut files);
    files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "package.json"))
        .filter(|f| {
            let dir = f.parent().unwrap();
            let up = dir.parent().unwrap();
            let is_nm = |p: &Path| p.file_name().is_some_and(|n| n == "node_modules");
            is_nm(up)
                || (up
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('@'))
                    && is_nm(up.parent().unwrap()))
        })
        .map(|f| {
            let pj = json(f);
            (
                pj["name"].as_str().unwrap().to_owned(),
                pj["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// (normalised name, version) of each wheel in an extracted deps layer,
/// from its `*.dist-info/METADATA`.
fn wheels_in_layer(root: &Path) -> BTreeSet<(String, String)> {
    let mut files = Vec::new();
    walk(root, &mut files);
    files
        .iter()
        .filter(|f| {
            f.file_name().is_some_and(|n| n == "METADATA")
                && f.parent()
                    .unwrap()
                    .to_string_lossy()
                    .ends_with(".dist-info")
        })
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let field = |k: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .unwrap()
                    .trim()
                    .to_owned()
            };
            (normalize(&field("Name:")), field("Version:"))
        })
        .collect()
}

/// `hoist build CTX --base BASE --output oci:LAYOUT:x ARGS...`.
fn build(env: &Env, ctx: &Path, base_file: &str, layout: &str, args: &[&str]) -> Run {
    let base = format!("oci-archive:{}", base(base_file).display());
    let out = format!("oci:{}:x", env.path(layout).display());
    let mut all = vec![
        "build",
        ctx.to_str().unwrap(),
        "--base",
        &base,
        "--output",
        &out,
        "--tag",
        "localhost/sbom-test:1",
    ];
    all.extend(args);
    env.hoist(&all)
}

/// The image's manifest digest in an OCI layout hoist wrote.
fn layout_digest(layout: &Path) -> String {
    json(&layout.join("index.json"))["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Done when, SBOM line, for npm: testdata/web on the node base. Both
/// formats validate and list exactly the packages of the deps layer, each
/// with its sha512 from the lockfile's integrity; the document describes
/// the image by its digest and names the base and its os-release; a
/// rebuild from the cache, and a build in another store, give the same
/// bytes.
#[test]
fn web_sbom_lists_every_npm_package() {
    let env = Env::new();
    let web = env.path("web");
    copy_tree(&testdata("web"), &web);
    build(&env, &web, "node.oci.tar", "one", &["--sbom", "spdx"]).ok();
    let spdx = env.path("one.spdx.json");
    validate("spdx", &spdx);
    let layer = env.path("layer");
    extract_deps_layer(&env.path("one"), &layer);
    let want = npm_in_layer(&layer);
    assert!(want.len() > 50, "the web app has many packages: {want:?}");
    let doc = json(&spdx);
    // The base's packages are listed too, from its dpkg status file.
    let base_libc = doc["packages"].as_array().unwrap().iter().any(|p| {
        p["externalRefs"][0]["referenceLocator"]
            .as_str()
            .is_some_and(|l| l.starts_with("pkg:deb/debian/libc6@2.36-"))
    });
    assert!(base_libc, "the base's libc6 is not in the SBOM");
    let got = listed(&doc);
    let names: BTreeSet<(String, String)> = got
        .iter()
        .map(|(k, n, v, _)| {
            assert_eq!(k, "npm");
            (n.clone(), v.clone())
        })
        .collect();
    assert_eq!(names, want, "SPDX lists the layer's packages");
    for (_, n, _, sums) in &got {
        assert!(
            sums.iter()
                .any(|s| s.starts_with("SHA512:") && s.len() == "SHA512:".len() + 128),
            "{n}: {sums:?}"
        );
    }
    // The image, by digest; the base and its distribution.
    let digest = layout_digest(&env.path("one"));
    let image = &doc["packages"][0];
    assert_eq!(image["versionInfo"], digest.as_str());
    assert_eq!(
        doc["relationships"][0],
        serde_json::json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-Image"})
    );
    assert!(doc["documentNamespace"]
        .as_str()
        .unwrap()
        .starts_with("https://spdx.org/spdxdocs/sbom-test-"));
    assert_eq!(doc["creationInfo"]["created"], "1970-01-01T00:00:00Z");
    let os = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["primaryPackagePurpose"] == "OPERATING_SYSTEM")
        .expect("the base's os-release");
    assert_eq!(os["name"], "debian");

    // Rebuilt from the cache: the same bytes.
    let again = build(&env, &web, "node.oci.tar", "two", &["--sbom", "spdx"]);
    again.ok();
    assert!(
        again.stderr.contains("reused from the cache"),
        "{}",
        again.stderr
    );
    assert_eq!(
        std::fs::read(env.path("two.spdx.json")).unwrap(),
        std::fs::read(&spdx).unwrap()
    );
    // Another store, CycloneDX to a file of its own: valid, same packages,
    // and the same bytes as this store's CycloneDX.
    let other = Env::new();
    let cdx = other.path("web.cdx.json");
    build(
        &other,
        &web,
        "node.oci.tar",
        "three",
        &[
            "--sbom",
            "cyclonedx",
            "--sbom-output",
            cdx.to_str().unwrap(),
        ],
    )
    .ok();
    assert!(!other.path("three.cdx.json").exists(), "--sbom-output only");
    validate("cyclonedx", &cdx);
    let got: BTreeSet<(String, String)> = listed(&json(&cdx))
        .into_iter()
        .map(|(_, n, v, _)| (n, v))
        .collect();
    assert_eq!(got, want, "CycloneDX lists the layer's packages");
    build(&env, &web, "node.oci.tar", "four", &["--sbom", "cyclonedx"]).ok();
    assert_eq!(
        std::fs::read(env.path("four.cdx.json")).unwrap(),
        std::fs::read(&cdx).unwrap()
    );
}

/// Done when, SBOM line, for pip: testdata/agent on the python base. Both
/// formats validate and list exactly the wheels of the deps layer, each
/// with the sha256 of the wheel hoist installed (its blob in the store),
/// also when the layer comes from the cache.
#[test]
fn agent_sbom_lists_every_wheel() {
    let env = Env::new();
    let agent = testdata("agent");
    let args = ["--deps", "pip", "--sbom", "spdx"];
    build(&env, &agent, "python.oci.tar", "one", &args).ok();
    let spdx = env.path("one.spdx.json");
    validate("spdx", &spdx);
    let layer = env.path("layer");
    extract_deps_layer(&env.path("one"), &layer);
    let want = wheels_in_layer(&layer);
    assert!(want.len() >= 6, "requests, PyYAML and their deps: {want:?}");
    let check = |file: &Path| {
        let got = listed(&json(file));
        let names: BTreeSet<(String, String)> = got
            .iter()
            .map(|(k, n, v, _)| {
                assert_eq!(k, "pypi");
                (normalize(n), v.clone())
            })
            .collect();
        assert_eq!(names, want, "{} lists the layer's wheels", file.display());
        for (_, n, _, sums) in &got {
            let [sum] = sums.as_slice() else {
                panic!("{n}: one sha256: {sums:?}")
            };
            let hex = sum.strip_prefix("SHA256:").expect("a sha256");
            assert!(
                env.path("cache/blobs/sha256").join(hex).is_file(),
                "{n}: the wheel hoist installed has sha256 {hex}"
            );
        }
    };
    check(&spdx);
    let cdx = ["--deps", "pip", "--sbom", "cyclonedx"];
    let again = build(&env, &agent, "python.oci.tar", "two", &cdx);
    again.ok();
    assert!(
        again.stderr.contains("reused from the cache"),
        "{}",
        again.stderr
    );
    validate("cyclonedx", &env.path("two.cdx.json"));
    check(&env.path("two.cdx.json"));
    build(&env, &agent, "python.oci.tar", "three", &args).ok();
    assert_eq!(
        std::fs::read(env.path("three.spdx.json")).unwrap(),
        std::fs::read(&spdx).unwrap()
    );
}

/// A registry started by `scripts/registry`.
fn plain_registry() -> String {
    std::env::var("HOIST_REGISTRY_PLAIN").unwrap_or_else(|_| {
        panic!("HOIST_REGISTRY_PLAIN is not set: run `eval \"$(scripts/registry start)\"` first (scripts/test does)")
    })
}

/// Done when, SBOM line, pushed: the SBOM is an OCI artifact next to the
/// image. Debian's registry has no referrers API (404), so the artifact is
/// listed under the referrers tag `sha256-<image hex>`, which skopeo
/// reads; the artifact's subject is the image's manifest, its layer the
/// document, byte for byte. A second push adds nothing; a CycloneDX one
/// joins the list.
#[test]
fn pushed_sbom_is_found_next_to_the_image() {
    require("skopeo", "skopeo");
    require("curl", "curl");
    let registry = plain_registry();
    let env = Env::new();
    let app = env.path("app");
    small_app(&app);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let repo = format!("{registry}/it/sbom-{nanos}");
    let base = format!("oci-archive:{}", base("alpine-amd64.oci.tar").display());
    let sbom_file = env.path("pushed.spdx.json");
    let push = |format: &str, out: &Path| {
        env.hoist(&[
            "build",
            app.to_str().unwrap(),
            "--base",
            &base,
            "--tag",
            &format!("{repo}:1"),
            "--push",
            "--insecure-registry",
            &registry,
            "--sbom",
            format,
            "--sbom-output",
            out.to_str().unwrap(),
        ])
    };
    let first = push("spdx", &sbom_file);
    let digest = first.ok().trim().to_owned();
    validate("spdx", &sbom_file);
    let hex = digest.trim_start_matches("sha256:");
    // No referrers API here: the fallback is what is used.
    let api = run(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{registry}/v2/it/sbom-{nanos}/referrers/{digest}"),
        ],
    );
    assert_eq!(api.ok(), "404", "docker-registry 2.8 has no referrers API");
    assert!(
        first
            .stderr
            .contains(&format!("listed under the referrers tag sha256-{hex}")),
        "{}",
        first.stderr
    );
    let raw = |image: String| -> serde_json::Value {
        let r = run(
            "skopeo",
            &["inspect", "--tls-verify=false", "--raw", &image],
        );
        serde_json::from_str(r.ok()).expect("manifest JSON")
    };
    let referrers = || raw(format!("docker://{repo}:sha256-{hex}"));
    let index = referrers();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{index}");
    assert_eq!(entries[0]["artifactType"], "application/spdx+json");
    let artifact = raw(format!(
        "docker://{repo}@{}",
        entries[0]["digest"].as_str().unwrap()
    ));
    assert_eq!(artifact["artifactType"], "application/spdx+json");
    assert_eq!(artifact["subject"]["digest"], digest.as_str());
    assert_eq!(
        artifact["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    // The document in the registry is the one written to the file.
    let layer = artifact["layers"][0]["digest"].as_str().unwrap();
    let blob = run(
        "curl",
        &[
            "-sf",
            &format!("http://{registry}/v2/it/sbom-{nanos}/blobs/{layer}"),
        ],
    );
    assert_eq!(blob.ok().as_bytes(), std::fs::read(&sbom_file).unwrap());

    // The same push again: the list does not grow.
    push("spdx", &env.path("again.spdx.json")).ok();
    assert_eq!(referrers(), index);
    // A CycloneDX document joins it.
    push("cyclonedx", &env.path("pushed.cdx.json")).ok();
    let grown = referrers();
    let types: Vec<&str> = grown["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["application/spdx+json", "application/vnd.cyclonedx+json"]
    );
}

/// --sbom with nowhere to write it fails before building, and names the
/// ways out; an unknown format is refused by name.
#[test]
fn sbom_without_destination_or_with_unknown_format() {
    let env = Env::new();
    let app = env.path("app");
    small_app(&app);
    let base = format!("oci-archive:{}", base("alpine-amd64.oci.tar").display());
    env.hoist(&[
        "build",
        app.to_str().unwrap(),
        "--base",
        &base,
        "--sbom",
        "spdx",
    ])
    .fails_with("--sbom has nowhere to go");
    env.hoist(&[
        "build",
        app.to_str().unwrap(),
        "--base",
        &base,
        "--output",
        &format!("oci:{}", env.path("o").display()),
        "--sbom",
        "swid",
    ])
    .fails_with("unknown --sbom `swid`: use spdx");
    assert!(!env.path("o").exists());
}
