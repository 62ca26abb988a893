//! Hand-run checks against real registries (ignored by default).
//!
//! They need Debian's `docker-registry` running in four modes and two
//! images built by hoist as OCI layouts; `scripts/registry start` sets up
//! the registries. Run with, e.g.:
//!
//! ```text
//! HOIST_LIVE_PLAIN=127.0.0.1:5100 HOIST_LIVE_BASIC=127.0.0.1:5101 \
//! HOIST_LIVE_TLS=127.0.0.1:5102 HOIST_LIVE_TOKEN=127.0.0.1:5103 \
//! HOIST_LIVE_CERTS_D=.../certs.d HOIST_LIVE_USER=hoist HOIST_LIVE_PASS=hoist-pass \
//! HOIST_LIVE_AMD64=DIR HOIST_LIVE_ARM64=DIR \
//! cargo test --lib registry::live_tests -- --ignored --test-threads 1 --nocapture
//! ```
//!
//! Each registry must hold `library/alpine:3.20` (the two-platform index
//! the images were built on). The integration tests in `tests/` are the
//! lasting ones; these let the client be checked before they exist.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::*;
use crate::image::{media, Descriptor, ImageDoc, Platform};
use crate::reference::Reference;
use crate::store::Store;
use crate::transport::{load_base, Transport};

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("set {k}"))
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

/// An image from a hoist-built OCI layout, loaded into `store`.
fn image_from_layout(dir: &str, store: &Store) -> PushImage {
    let t = Transport::Oci {
        dir: PathBuf::from(dir),
        tag: None,
    };
    let base = load_base(&t, &Platform::parse("linux/amd64").unwrap(), store)
        .or_else(|_| load_base(&t, &Platform::parse("linux/arm64").unwrap(), store))
        .unwrap();
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
#[ignore]
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
    let app = image_from_layout(&env("HOIST_LIVE_AMD64"), &store2);
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
    let arm = image_from_layout(&env("HOIST_LIVE_ARM64"), &store2);
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
#[ignore]
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
    let app = image_from_layout(&env("HOIST_LIVE_AMD64"), &store2);
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
#[ignore]
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
    let app = image_from_layout(&env("HOIST_LIVE_AMD64"), &store2);
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
#[ignore]
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
    let app = image_from_layout(&env("HOIST_LIVE_AMD64"), &store2);
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

#[test]
#[ignore]
fn live_mirror() {
    let reg = env("HOIST_LIVE_PLAIN");
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("registries.conf");
    // The origin (nothing listens on :5199) is only reached through its
    // mirror.
    std::fs::write(
        &conf,
        format!("[[registry]]\nlocation = \"127.0.0.1:5199\"\n[[registry.mirror]]\nlocation = \"{reg}\"\n"),
    )
    .unwrap();
    let mut o = opts(tmp.path());
    o.registries_conf = Some(conf);
    o.retry.tries = 2;
    let client = Client::new(o).unwrap();
    let log = Log::default();
    let store = Store::open(tmp.path().join("store")).unwrap();
    let r = Reference::parse("127.0.0.1:5199/library/alpine:3.20").unwrap();
    let img = client
        .resolve(&r, &Platform::parse("linux/amd64").unwrap(), &store, &log)
        .unwrap();
    assert_eq!(img.source.registry(), reg);
    let rep = client.fetch_blobs(&r, &img.layers, &store, &log).unwrap();
    assert_eq!(rep.downloaded.len(), 1);
    // Offline: a missing blob is named.
    let mut o = opts(tmp.path());
    o.offline = true;
    let offline = Client::new(o).unwrap();
    let store2 = Store::open(tmp.path().join("store2")).unwrap();
    let err = offline
        .fetch_blobs(&r, &img.layers, &store2, &log)
        .unwrap_err()
        .to_string();
    assert!(err.contains(img.layers[0].digest.as_str()), "{err}");
    eprintln!("{err}");
}

/// Needs `HOIST_LIVE_REDIRECT`: a registry needing Basic auth whose blob
/// GETs redirect to another host, and `docker-credential-fake` on PATH
/// answering for it.
#[test]
#[ignore]
fn live_helper_and_redirect() {
    let reg = env("HOIST_LIVE_REDIRECT");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("auth.json"),
        format!(r#"{{"auths":{{}},"credHelpers":{{"{reg}":"fake"}}}}"#),
    )
    .unwrap();
    let client = Client::new(opts(tmp.path())).unwrap();
    let log = Log::default();
    let store = Store::open(tmp.path().join("store")).unwrap();
    let r = Reference::parse(&format!("{reg}/library/alpine:3.20")).unwrap();
    let img = client
        .resolve(&r, &Platform::parse("linux/amd64").unwrap(), &store, &log)
        .unwrap();
    let rep = client.fetch_blobs(&r, &img.layers, &store, &log).unwrap();
    assert_eq!(rep.downloaded.len(), 1);
}
