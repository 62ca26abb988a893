//! The client against the project's own lab registries: Debian's
//! `docker-registry` in four modes, started by `scripts/registry` (which
//! `scripts/test` runs; by hand: `eval "$(scripts/registry start)"`).
//! A registry that is not running fails the test with that command.
//!
//! Each test first copies the test base `alpine` (a two-platform index,
//! from `scripts/make-bases`) to `library/alpine:3.20` on its registry with
//! skopeo, and pushes images read from the same base's OCI layout. The
//! mirror, credential-helper and redirect cases run through the `hoist`
//! command in `tests/it/registry.rs`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::*;
use crate::image::{media, Descriptor, ImageDoc, Platform};
use crate::reference::Reference;
use crate::store::Store;
use crate::transport::{load_base, Transport};

/// A lab setting: `HOIST_LIVE_PLAIN` is scripts/registry's
/// `HOIST_REGISTRY_PLAIN`, and so on; `HOIST_LIVE_AMD64` and `_ARM64` name
/// the test base layout (see [`image_from_layout`]).
fn env(k: &str) -> String {
    let lab = match k {
        "HOIST_LIVE_USER" => "HOIST_REGISTRY_USER".to_owned(),
        "HOIST_LIVE_PASS" => "HOIST_REGISTRY_PASSWORD".to_owned(),
        "HOIST_LIVE_AMD64" | "HOIST_LIVE_ARM64" => return base_layout(),
        _ => k.replace("HOIST_LIVE_", "HOIST_REGISTRY_"),
    };
    let v = std::env::var(&lab).unwrap_or_else(|_| {
        panic!("{lab} is not set: start the lab registries with `eval \"$(scripts/registry start)\"` (scripts/test does)")
    });
    if k.starts_with("HOIST_LIVE_")
        && !k.ends_with("USER")
        && !k.ends_with("PASS")
        && !k.ends_with("CERTS_D")
    {
        seed_alpine(k, &v);
    }
    v
}

/// The test bases' two-platform Alpine layout.
fn base_layout() -> String {
    let bases = std::env::var("HOIST_BASES")
        .unwrap_or_else(|_| format!("{}/target/bases", env!("CARGO_MANIFEST_DIR")));
    let dir = format!("{bases}/oci/alpine");
    assert!(
        Path::new(&dir).join("index.json").exists(),
        "{dir} is missing: build the test bases with scripts/make-bases (scripts/test does)"
    );
    dir
}

/// Copies the Alpine base to `library/alpine:3.20` on `reg` (idempotent:
/// the same bytes each time), so a test needs no hand-made setup.
fn seed_alpine(k: &str, reg: &str) {
    let mut args = vec!["copy".to_owned(), "-q".into(), "--all".into()];
    match k {
        "HOIST_LIVE_TLS" => {
            let certs = env("HOIST_LIVE_CERTS_D");
            args.push(format!("--dest-cert-dir={certs}/{reg}"));
        }
        _ => args.push("--dest-tls-verify=false".into()),
    }
    if k == "HOIST_LIVE_BASIC" || k == "HOIST_LIVE_TOKEN" {
        args.push(format!(
            "--dest-creds={}:{}",
            env("HOIST_LIVE_USER"),
            env("HOIST_LIVE_PASS")
        ));
    }
    args.push(format!("oci:{}", base_layout()));
    args.push(format!("docker://{reg}/library/alpine:3.20"));
    let out = std::process::Command::new("skopeo")
        .args(&args)
        .output()
        .unwrap_or_else(|e| {
            panic!("skopeo: {e}: install it with scripts/install-tools (apt-get install skopeo)")
        });
    assert!(
        out.status.success(),
        "skopeo {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn opts(tmp: &Path) -> Options {
    Options {
        insecure: Vec::new(),
        registries_conf: Some(tmp.join("no-registries.conf")),
        certs_dirs: Vec::new(),
        auth_files: vec![tmp.join("auth.json")],
        offline: false,
        retry: RetryPolicy::default(),
        parallel: 4,
        request_timeout: std::time::Duration::from_secs(30),
        pull: super::PullPolicy::default(),
    }
}

/// Records events, to check what happened.
#[derive(Default)]
struct Log(Mutex<Vec<String>>);

impl Progress for Log {
    fn event(&self, e: &Event<'_>) {
        let line = match e {
            Event::BlobDone {
                digest, outcome, ..
            } => format!("{outcome:?} {}", digest.short()),
            Event::ManifestPushed { reference, .. } => format!("manifest {reference}"),
            Event::Retrying { what, why, .. } => format!("retry {what}: {why}"),
            _ => return,
        };
        eprintln!("  event: {line}");
        self.0.lock().unwrap().push(line);
    }
}

/// One platform's image from an OCI layout, loaded into `store`.
fn image_from_layout(dir: &str, platform: &str, store: &Store) -> PushImage {
    let t = Transport::Oci {
        dir: PathBuf::from(dir),
        tag: None,
    };
    let base = load_base(&t, &Platform::parse(platform).unwrap(), store).unwrap();
    let bytes = store.read_blob(&base.manifest_digest).unwrap();
    let ImageDoc::Manifest(m) = ImageDoc::parse(&bytes, "m", None).unwrap() else {
        panic!("not a manifest")
    };
    let mut desc = Descriptor::new(
        media::OCI_MANIFEST,
        base.manifest_digest.clone(),
        bytes.len() as u64,
    );
    desc.platform = Some(base.platform.clone());
    let mut blobs = vec![m.config.clone()];
    blobs.extend(m.layers.iter().cloned());
    PushImage {
        manifest: desc,
        manifest_bytes: bytes,
        blobs,
    }
}

#[test]
fn live_plain_pull_and_push() {
    let reg = env("HOIST_LIVE_PLAIN");
    let tmp = tempfile::tempdir().unwrap();
    let client = Client::new(opts(tmp.path())).unwrap();
    let log = Log::default();

    // Resolve through the index, with variant.
    let base = Reference::parse(&format!("{reg}/library/alpine:3.20")).unwrap();
    let store = Store::open(tmp.path().join("store")).unwrap();
    let img = client
        .resolve(
            &base,
            &Platform::parse("linux/arm64").unwrap(),
            &store,
            &log,
        )
        .unwrap();
    assert_eq!(img.platform.to_string(), "linux/arm64/v8");
    assert!(img.index.is_some());
    assert!(store.has(&img.config_digest) && store.has(&img.manifest_digest));
    let err = client
        .resolve(
            &base,
            &Platform::parse("linux/s390x").unwrap(),
            &store,
            &log,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("linux/amd64, linux/arm64/v8"), "{err}");
    eprintln!("{err}");
    let r = client
        .fetch_blobs(&base, &img.layers, &store, &log)
        .unwrap();
    assert_eq!(r.downloaded.len(), 1);
    let r = client
        .fetch_blobs(&base, &img.layers, &store, &log)
        .unwrap();
    assert_eq!(r.present.len(), 1);
    // Offline by digest from the store.
    let mut o = opts(tmp.path());
    o.offline = true;
    let offline = Client::new(o).unwrap();
    let again = offline
        .resolve(
            &img.pinned(),
            &Platform::parse("linux/arm64").unwrap(),
            &store,
            &log,
        )
        .unwrap();
    assert_eq!(again.manifest_digest, img.manifest_digest);
    // The tag resolved online before resolves offline from the store...
    let again = offline
        .resolve(
            &base,
            &Platform::parse("linux/arm64").unwrap(),
            &store,
            &log,
        )
        .unwrap();
    assert_eq!(again.manifest_digest, img.manifest_digest);
    // ...but another tag needs the network.
    let err = offline
        .resolve(
            &base.with_tag("3.19").unwrap(),
            &Platform::parse("linux/arm64").unwrap(),
            &store,
            &log,
        )
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("--offline:"), "{err}");
    eprintln!("{err}");

    // Push the amd64 app image with its base layer NOT in the store: it
    // must be mounted from library/alpine, never downloaded.
    let store2 = Store::open(tmp.path().join("store2")).unwrap();
    let app = image_from_layout(&env("HOIST_LIVE_AMD64"), "linux/amd64", &store2);
    let base_layer = app.blobs[1].digest.clone();
    std::fs::remove_file(store2.blob_path(&base_layer)).unwrap();
    let target = Reference::parse(&format!("{reg}/test/app:1")).unwrap();
    let plan = PushPlan {
        images: std::slice::from_ref(&app),
        index: None,
        extra_tags: &["latest".to_string()],
        base: Some(&base),
    };
    let rep = client.push(&target, &plan, &store2, &log).unwrap();
    eprintln!("{rep:?}");
    assert!(
        rep.mounted.contains(&base_layer) || rep.skipped.contains(&base_layer),
        "{rep:?}"
    );
    assert!(rep.downloaded.is_empty());
    assert!(!store2.has(&base_layer));
    assert_eq!(rep.tags, vec!["1", "latest"]);
    // Second push: nothing uploaded.
    let rep = client.push(&target, &plan, &store2, &log).unwrap();
    assert!(rep.uploaded.is_empty() && rep.mounted.is_empty(), "{rep:?}");
    assert_eq!(rep.skipped.len(), app.blobs.len());

    // A multi-platform push under an index.
    let arm = image_from_layout(&env("HOIST_LIVE_ARM64"), "linux/arm64", &store2);
    let images = vec![app.clone(), arm.clone()];
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [app.manifest, arm.manifest],
    });
    let index = serde_json::to_vec(&index).unwrap();
    let multi = Reference::parse(&format!("{reg}/test/multi:1")).unwrap();
    let plan = PushPlan {
        images: &images,
        index: Some(&index),
        extra_tags: &[],
        base: Some(&base),
    };
    let rep = client.push(&multi, &plan, &store2, &log).unwrap();
    eprintln!("{rep:?}");
    assert_eq!(rep.digest, crate::digest::Digest::of(&index));
    let back = client
        .resolve(
            &multi,
            &Platform::parse("linux/arm64").unwrap(),
            &store,
            &log,
        )
        .unwrap();
    assert_eq!(back.manifest_digest, arm.manifest.digest);
    let tags = client.tags(&multi, &log).unwrap();
    assert_eq!(tags, vec!["1"]);

    // Upload without a base: the base layer must come from the store.
    let lonely = Reference::parse(&format!("{reg}/test/lonely:1")).unwrap();
    let plan = PushPlan {
        images: std::slice::from_ref(&app),
        index: None,
        extra_tags: &[],
        base: None,
    };
    let err = client
        .push(&lonely, &plan, &store2, &log)
        .unwrap_err()
        .to_string();
    assert!(err.contains(base_layer.as_str()), "{err}");
    eprintln!("{err}");
    // With a base on the same registry it is mounted; on another repo
    // through a fresh store it is downloaded then uploaded when no mount
    // is possible (tested with the TLS registry below).
}

#[test]
fn live_basic_auth() {
    let reg = env("HOIST_LIVE_BASIC");
    let tmp = tempfile::tempdir().unwrap();
    let client = Client::new(opts(tmp.path())).unwrap();
    let log = Log::default();
    let auth = tmp.path().join("auth.json");
    let err = client
        .login(&reg, &env("HOIST_LIVE_USER"), "wrong", Some(&auth), &log)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&reg) && err.contains("refused"), "{err}");
    eprintln!("{err}");
    assert!(!auth.exists());
    // Anonymous: refused with a hint.
    let base = Reference::parse(&format!("{reg}/library/alpine:3.20")).unwrap();
    let store = Store::open(tmp.path().join("store")).unwrap();
    let err = client
        .resolve(
            &base,
            &Platform::parse("linux/amd64").unwrap(),
            &store,
            &log,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("hoist login"), "{err}");
    eprintln!("{err}");
    client
        .login(
            &reg,
            &env("HOIST_LIVE_USER"),
            &env("HOIST_LIVE_PASS"),
            Some(&auth),
            &log,
        )
        .unwrap();
    let client = Client::new(opts(tmp.path())).unwrap();
    let img = client
        .resolve(
            &base,
            &Platform::parse("linux/amd64").unwrap(),
            &store,
            &log,
        )
        .unwrap();
    let store2 = Store::open(tmp.path().join("store2")).unwrap();
    let app = image_from_layout(&env("HOIST_LIVE_AMD64"), "linux/amd64", &store2);
    let target = Reference::parse(&format!("{reg}/test/app:basic")).unwrap();
    let plan = PushPlan {
        images: std::slice::from_ref(&app),
        index: None,
        extra_tags: &[],
        base: Some(&img.reference),
    };
    let rep = client.push(&target, &plan, &store2, &log).unwrap();
    eprintln!("{rep:?}");
    let (path, removed) = logout(&reg, Some(&auth)).unwrap();
    assert!(removed && path == auth);
}

#[test]
fn live_token_auth() {
    let reg = env("HOIST_LIVE_TOKEN");
    let tmp = tempfile::tempdir().unwrap();
    let client = Client::new(opts(tmp.path())).unwrap();
    let log = Log::default();
    let store = Store::open(tmp.path().join("store")).unwrap();
    // Anonymous pull works.
    let base = Reference::parse(&format!("{reg}/library/alpine:3.20")).unwrap();
    let img = client
        .resolve(
            &base,
            &Platform::parse("linux/amd64").unwrap(),
            &store,
            &log,
        )
        .unwrap();
    client
        .fetch_blobs(&base, &img.layers, &store, &log)
        .unwrap();
    // Anonymous push is refused.
    let store2 = Store::open(tmp.path().join("store2")).unwrap();
    let app = image_from_layout(&env("HOIST_LIVE_AMD64"), "linux/amd64", &store2);
    let target = Reference::parse(&format!("{reg}/test/app:token")).unwrap();
    let plan = PushPlan {
        images: std::slice::from_ref(&app),
        index: None,
        extra_tags: &[],
        base: Some(&base),
    };
    let err = client
        .push(&target, &plan, &store2, &log)
        .unwrap_err()
        .to_string();
    eprintln!("{err}");
    let auth = tmp.path().join("auth.json");
    let err = client
        .login(&reg, &env("HOIST_LIVE_USER"), "wrong", Some(&auth), &log)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&reg), "{err}");
    eprintln!("{err}");
    client
        .login(
            &reg,
            &env("HOIST_LIVE_USER"),
            &env("HOIST_LIVE_PASS"),
            Some(&auth),
            &log,
        )
        .unwrap();
    let client = Client::new(opts(tmp.path())).unwrap();
    let rep = client.push(&target, &plan, &store2, &log).unwrap();
    eprintln!("{rep:?}");
    // Mounted on a first run, already there on later ones.
    assert_eq!(
        rep.mounted.len() + rep.skipped.len() + rep.uploaded.len(),
        app.blobs.len()
    );
    assert!(rep.downloaded.is_empty(), "{rep:?}");
}

#[test]
fn live_tls() {
    let reg = env("HOIST_LIVE_TLS");
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::default();
    let store = Store::open(tmp.path().join("store")).unwrap();
    let base = Reference::parse(&format!("{reg}/library/alpine:3.20")).unwrap();
    // Without the CA: a clear certificate error.
    let client = Client::new(opts(tmp.path())).unwrap();
    let err = client
        .resolve(
            &base,
            &Platform::parse("linux/amd64").unwrap(),
            &store,
            &log,
        )
        .unwrap_err()
        .to_string();
    eprintln!("{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let mut o = opts(tmp.path());
    o.certs_dirs = vec![PathBuf::from(env("HOIST_LIVE_CERTS_D"))];
    let client = Client::new(o).unwrap();
    let img = client
        .resolve(
            &base,
            &Platform::parse("linux/amd64").unwrap(),
            &store,
            &log,
        )
        .unwrap();
    // Push to the TLS registry with the base on ANOTHER registry (the
    // plain one) and the base layer not in the store: downloaded from the
    // base, then uploaded.
    let store2 = Store::open(tmp.path().join("store2")).unwrap();
    let app = image_from_layout(&env("HOIST_LIVE_AMD64"), "linux/amd64", &store2);
    let base_layer = app.blobs[1].digest.clone();
    std::fs::remove_file(store2.blob_path(&base_layer)).unwrap();
    let other_base =
        Reference::parse(&format!("{}/library/alpine:3.20", env("HOIST_LIVE_PLAIN"))).unwrap();
    let target = Reference::parse(&format!("{reg}/test/app-from-elsewhere:1")).unwrap();
    let plan = PushPlan {
        images: std::slice::from_ref(&app),
        index: None,
        extra_tags: &[],
        base: Some(&other_base),
    };
    let rep = client.push(&target, &plan, &store2, &log).unwrap();
    eprintln!("{rep:?}");
    // The TLS registry has library/alpine, but in another repository and
    // no mount was asked from there: so either skipped (already linked)
    // or downloaded+uploaded.
    assert!(rep.uploaded.contains(&base_layer) || rep.skipped.contains(&base_layer));
    let _ = img;
}
