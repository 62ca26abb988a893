//! Registry trust: fake registries on loopback that misbehave on purpose
//! (echo credentials, lie about uploads, name token realms they should
//! not, serve refused documents, ignore `Range`), from
//! [`crate::fake_registry`]; loopback only.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fake_registry::*;
use crate::support::*;

const USER: &str = "reg";
const PASSWORD: &str = "pa55/w0rd-Secret";

fn basic_value() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
}

/// Asserts that no form of the test's secrets reached the output.
#[track_caller]
fn no_secret_in(run: &Run, also: &[&str]) {
    let out = format!("{}\n{}", run.stdout, run.stderr);
    let pair = format!("{USER}:{PASSWORD}");
    let basic = basic_value();
    for s in [PASSWORD, pair.as_str(), basic.as_str()].iter().chain(also) {
        assert!(!out.contains(s), "`{s}` was printed:\n{out}");
    }
}

/// An auth file with the test's credentials for `host`.
fn authfile(env: &Env, host: &str) -> PathBuf {
    let p = env.path(&format!("auth-{}.json", host.replace(':', "_")));
    std::fs::write(
        &p,
        format!(r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#, basic_value()),
    )
    .unwrap();
    p
}

fn pull(env: &Env, reference: &str, extra: &[&str]) -> Run {
    let out = env.path("pulled.tar");
    let out = format!("oci-archive:{}", out.display());
    let mut args = vec![
        "pull",
        reference,
        "--platform",
        "linux/amd64",
        "--output",
        &out,
    ];
    args.extend(extra);
    env.hoist(&args)
}

fn basic_challenge(req: &Req) -> Option<Resp> {
    (req.header("authorization") != Some(&format!("Basic {}", basic_value())))
        .then(|| Resp::new(401).header("WWW-Authenticate", r#"Basic realm="fake""#))
}

#[test]
fn echoed_basic_credentials_are_never_printed() {
    let env = Env::new();
    let fake = registry(Store::default(), |req, _| {
        if let Some(r) = basic_challenge(req) {
            return Some(r);
        }
        let echo = req.header("authorization").unwrap_or("").to_owned();
        Some(Resp::new(500).json(serde_json::json!({"errors":[{
            "code": "INTERNAL",
            "message": format!("backend failed for request with Authorization: {echo} (user {USER}:{PASSWORD})"),
        }]})))
    });
    let auth = authfile(&env, &fake.addr);
    let r = pull(
        &env,
        &format!("{}/library/alpine:3.20", fake.addr),
        &["--authfile", auth.to_str().unwrap()],
    );
    r.fails_with("HTTP 500");
    assert!(r.stderr.contains("backend failed"), "{}", r.stderr);
    no_secret_in(&r, &[]);
    assert!(
        fake.requests()
            .iter()
            .any(|q| q.header("authorization").is_some()),
        "the credentials were sent, so there was something to echo"
    );
}

#[test]
fn echoed_bearer_tokens_are_never_printed() {
    let env = Env::new();
    const TOKEN: &str = "tok.eyJzdWIiOiJyZWcifQ.c2lnbmF0dXJl";
    let realm: Arc<Mutex<String>> = Arc::default();
    let realm2 = realm.clone();
    let fake = registry(Store::default(), move |req, _| {
        if req.path() == "/token" {
            return Some(
                if req.header("authorization") == Some(&format!("Basic {}", basic_value())) {
                    Resp::new(200).json(serde_json::json!({"token": TOKEN, "expires_in": 300}))
                } else {
                    Resp::new(401)
                },
            );
        }
        if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            let challenge = format!(
                r#"Bearer realm="{}",service="fake",scope="repository:library/alpine:pull""#,
                realm2.lock().unwrap()
            );
            return Some(Resp::new(401).header("WWW-Authenticate", &challenge));
        }
        Some(
            Resp::new(502)
                .header("Content-Type", "text/plain")
                .body(format!(
                    "upstream said: Authorization: Bearer {TOKEN}; token {TOKEN} rejected"
                )),
        )
    });
    *realm.lock().unwrap() = format!("http://{}/token", fake.addr);
    let auth = authfile(&env, &fake.addr);
    let r = pull(
        &env,
        &format!("{}/library/alpine:3.20", fake.addr),
        &["--authfile", auth.to_str().unwrap()],
    );
    r.fails_with("HTTP 502");
    assert!(r.stderr.contains("upstream said"), "{}", r.stderr);
    no_secret_in(&r, &[TOKEN, "eyJzdWIiOiJyZWcifQ"]);
}

#[test]
fn a_token_service_echoing_the_credentials_is_never_printed() {
    let env = Env::new();
    let realm: Arc<Mutex<String>> = Arc::default();
    let realm2 = realm.clone();
    let fake = registry(Store::default(), move |req, _| {
        if req.path() == "/token" {
            let echo = req.header("authorization").unwrap_or("").to_owned();
            let value = echo.trim_start_matches("Basic ").to_owned();
            return Some(Resp::new(401).json(serde_json::json!({
                "details": format!("bad credentials {value} in header Authorization: {echo}"),
            })));
        }
        let challenge = format!(
            r#"Bearer realm="{}",service="fake""#,
            realm2.lock().unwrap()
        );
        Some(Resp::new(401).header("WWW-Authenticate", &challenge))
    });
    *realm.lock().unwrap() = format!("http://{}/token", fake.addr);
    let auth = authfile(&env, &fake.addr);
    let r = pull(
        &env,
        &format!("{}/library/alpine:3.20", fake.addr),
        &["--authfile", auth.to_str().unwrap()],
    );
    r.fails_with("bad credentials");
    no_secret_in(&r, &[]);
}

/// Builds `small_app` on the amd64 Alpine archive and pushes it to `tag`.
fn build_push(env: &Env, tag: &str) -> Run {
    let app = env.path("app");
    if !app.exists() {
        small_app(&app);
    }
    let base = format!("oci-archive:{}", base("alpine-amd64.oci.tar").display());
    env.hoist(&[
        "build",
        app.to_str().unwrap(),
        "--base",
        &base,
        "--tag",
        tag,
        "--push",
    ])
}

fn manifest_puts(fake: &Fake) -> usize {
    fake.requests()
        .iter()
        .filter(|q| q.method == "PUT" && q.path().contains("/manifests/"))
        .count()
}

#[test]
fn an_honest_push_is_confirmed_with_or_without_digest_headers() {
    let env = Env::new();
    let fake = registry(Store::default(), |_, _| None);
    let tag = format!("{}/it/honest:1", fake.addr);
    let digest = build_push(&env, &tag).ok().trim().to_owned();
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(manifest_puts(&fake), 1);

    // No Docker-Content-Digest on the final PUT: a HEAD confirms the blob.
    let env = Env::new();
    let fake = registry(Store::default(), |req, s| {
        if req.method == "PUT" && req.path().contains("/blobs/uploads/") {
            let mut r = s.answer(req);
            r.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("docker-content-digest"));
            return Some(r);
        }
        None
    });
    build_push(&env, &format!("{}/it/quiet:1", fake.addr)).ok();
    let reqs = fake.requests();
    let puts: Vec<(usize, String)> = reqs
        .iter()
        .enumerate()
        .filter(|(_, q)| q.method == "PUT" && q.path().contains("/blobs/uploads/"))
        .map(|(i, q)| (i, q.query("digest").unwrap_or_default()))
        .collect();
    assert!(!puts.is_empty());
    for (i, digest) in &puts {
        assert!(
            reqs[*i..]
                .iter()
                .any(|q| q.method == "HEAD" && q.path().ends_with(&format!("/blobs/{digest}"))),
            "no HEAD confirmed {digest} after its upload"
        );
    }
    assert_eq!(manifest_puts(&fake), 1);
}

/// A registry that takes a small blob in one `POST ?digest=` gets every
/// blob under 1 MiB that way (one request each, no PUT), and larger ones
/// in a session; one that ignores the body (the fake by default, as
/// distribution) answers 202 and the blob goes up through that session.
#[test]
fn small_blobs_go_up_in_one_post_where_the_registry_takes_them() {
    let env = Env::new();
    let store = Store {
        single_post: true,
        ..Store::default()
    };
    let fake = registry(store, |_, _| None);
    build_push(&env, &format!("{}/it/single:1", fake.addr)).ok();
    let reqs = fake.requests();
    let singles: Vec<String> = reqs
        .iter()
        .filter(|q| q.method == "POST" && !q.body.is_empty())
        .filter_map(|q| q.query("digest"))
        .collect();
    assert!(!singles.is_empty(), "small blobs went in one POST");
    for d in &singles {
        assert!(
            !reqs
                .iter()
                .any(|q| q.method == "PUT" && q.query("digest").as_deref() == Some(d.as_str())),
            "{d} was not sent again with a PUT"
        );
        assert!(reqs
            .iter()
            .all(|q| q.body.len() <= 1 << 20 || q.query("digest").as_deref() != Some(d.as_str())));
    }
    assert!(
        reqs.iter()
            .any(|q| q.method == "PUT" && q.body.len() > 1 << 20),
        "the base layer (over 1 MiB) went up in a session's PUT"
    );
    assert_eq!(manifest_puts(&fake), 1);

    // The default fake ignores the POST's body: everything still arrives.
    let env = Env::new();
    let fake = registry(Store::default(), |_, _| None);
    build_push(&env, &format!("{}/it/ignored:1", fake.addr)).ok();
    let reqs = fake.requests();
    assert!(
        reqs.iter()
            .any(|q| q.method == "POST" && q.query("digest").is_some()),
        "a single POST was tried"
    );
    assert_eq!(manifest_puts(&fake), 1);
}

#[test]
fn a_put_answering_another_digest_fails_before_the_manifest() {
    let env = Env::new();
    let fake = registry(Store::default(), |req, s| {
        if req.method == "PUT" && req.path().contains("/blobs/uploads/") {
            // Lose the blob, claim another.
            let _ = s.answer(req);
            s.blobs.clear();
            return Some(Resp::new(201).header(
                "Docker-Content-Digest",
                &format!("sha256:{}", "0".repeat(64)),
            ));
        }
        None
    });
    let r = build_push(&env, &format!("{}/it/liar:1", fake.addr));
    r.fails_with("did not confirm blob sha256:");
    assert!(r.stderr.contains(&"0".repeat(64)), "{}", r.stderr);
    assert!(
        !r.stdout.contains("pushed") && !r.stderr.contains("pushed "),
        "nothing reported pushed"
    );
    assert_eq!(manifest_puts(&fake), 0, "no manifest was put");
}

#[test]
fn a_patch_answering_a_stale_range_fails_before_the_manifest() {
    let env = Env::new();
    // A layer larger than one upload chunk (16 MiB) goes up in PATCHes.
    small_app(&env.path("app"));
    std::fs::write(env.path("app/data.bin"), noise(20 << 20, 9)).unwrap();
    let fake = registry(Store::default(), |req, s| {
        if req.method == "PATCH" {
            // Keeps only the first half of what was sent, and says so.
            let mut half = req.clone();
            half.body.truncate(req.body.len() / 2);
            let r = s.answer(&half);
            return Some(r);
        }
        None
    });
    let r = build_push(&env, &format!("{}/it/stale:1", fake.addr));
    r.fails_with("did not confirm blob sha256:");
    assert!(r.stderr.contains("Range"), "{}", r.stderr);
    assert_eq!(manifest_puts(&fake), 0, "no manifest was put");
}

#[test]
fn a_refused_manifest_leaves_nothing_in_the_store() {
    let env = Env::new();
    let im = Image::new(100, &[]);
    let mut doc: serde_json::Value = serde_json::from_slice(&im.manifest).unwrap();
    doc["manifests"] = serde_json::json!([]);
    let bad = doc.to_string().into_bytes();
    let hex = sha256(&bad)[7..].to_owned();
    let mut store = Store::default();
    store.manifests.insert("1".into(), bad);
    let fake = registry(store, |_, _| None);
    let r = pull(&env, &format!("{}/it/ambiguous:1", fake.addr), &[]);
    r.fails_with("manifests");
    let mut left = Vec::new();
    walk(&env.path("cache"), &mut left);
    assert!(
        !left.iter().any(|p| p.to_string_lossy().contains(&hex)),
        "the refused document was stored: {left:?}"
    );
    assert!(
        !left
            .iter()
            .any(|p| p.to_string_lossy().contains("registry-tag/")),
        "a tag record was written: {left:?}"
    );
}

#[test]
fn a_config_that_is_not_one_is_not_stored() {
    let env = Env::new();
    let mut im = Image::new(100, &[]);
    im.config = b"this is not a config".to_vec();
    let mut doc: serde_json::Value = serde_json::from_slice(&im.manifest).unwrap();
    doc["config"]["digest"] = sha256(&im.config).into();
    doc["config"]["size"] = im.config.len().into();
    im.manifest = doc.to_string().into_bytes();
    let hex = sha256(&im.config)[7..].to_owned();
    let fake = registry(Store::with_image("1", &im), |_, _| None);
    let r = pull(&env, &format!("{}/it/badconfig:1", fake.addr), &[]);
    assert_eq!(r.status, 1, "{}", r.stderr);
    assert!(
        fake.requests().iter().any(|q| q.path().ends_with(&hex)),
        "the config was read"
    );
    let mut left = Vec::new();
    walk(&env.path("cache"), &mut left);
    assert!(
        !left.iter().any(|p| p.to_string_lossy().contains(&hex)),
        "the refused config was stored: {left:?}"
    );
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn redirects_carry_no_authorization_and_foreign_urls_are_never_fetched() {
    let env = Env::new();
    let foreign = Fake::start(|_| Resp::new(200).body("not this"));
    let im = Image::new(3000, &[format!("http://{}/layer.tar.gz", foreign.addr)]);
    let layer = im.layer.clone();
    let storage = Fake::start(move |_| Resp::new(200).body(layer.clone()));
    let storage_addr = storage.addr.clone();
    let layer_digest = sha256(&im.layer);
    let ld = layer_digest.clone();
    let fake = registry(Store::with_image("1", &im), move |req, _| {
        if let Some(r) = basic_challenge(req) {
            return Some(r);
        }
        (req.method == "GET" && req.path().ends_with(&format!("/blobs/{ld}"))).then(|| {
            Resp::new(307).header(
                "Location",
                &format!("http://{storage_addr}/signed/{ld}?sig=x"),
            )
        })
    });
    let auth = authfile(&env, &fake.addr);
    pull(
        &env,
        &format!("{}/it/redirected:1", fake.addr),
        &["--authfile", auth.to_str().unwrap()],
    )
    .ok();
    let s = storage.requests();
    assert_eq!(s.len(), 1, "the layer came from storage: {s:?}");
    assert_eq!(s[0].header("authorization"), None, "{s:?}");
    assert!(foreign.requests().is_empty(), "the foreign url was fetched");
}

#[test]
fn a_download_resumes_and_a_server_ignoring_range_is_not_tried_per_increment() {
    // Cut once, then resumed with Range: 206.
    let env = Env::new();
    let im = Image::new(40_000, &[]);
    let layer = im.layer.clone();
    let ld = sha256(&im.layer);
    let cuts = AtomicUsize::new(0);
    let fake = registry(Store::with_image("1", &im), move |req, _| {
        if !(req.method == "GET" && req.path().ends_with(&ld)) {
            return None;
        }
        match req.header("range").and_then(|r| r.strip_prefix("bytes=")) {
            Some(r) => {
                let start: usize = r.trim_end_matches('-').parse().unwrap();
                Some(
                    Resp::new(206)
                        .header(
                            "Content-Range",
                            &format!("bytes {start}-{}/{}", layer.len() - 1, layer.len()),
                        )
                        .body(layer[start..].to_vec()),
                )
            }
            None if cuts.fetch_add(1, Ordering::Relaxed) == 0 => {
                let mut r = Resp::new(200).body(layer.clone());
                r.cut = Some(layer.len() / 2);
                Some(r)
            }
            None => None,
        }
    });
    pull(&env, &format!("{}/it/resumed:1", fake.addr), &[]).ok();
    let gets: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|q| q.method == "GET" && q.path().ends_with(&sha256(&im.layer)))
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert!(gets[1].header("range").is_some(), "{gets:?}");

    // Range ignored; each answer a little longer than the one before.
    let env = Env::new();
    let im = Image::new(40_000, &[]);
    let layer = im.layer.clone();
    let ld = sha256(&im.layer);
    let tries = AtomicUsize::new(0);
    let fake = registry(Store::with_image("1", &im), move |req, _| {
        if !(req.method == "GET" && req.path().ends_with(&ld)) {
            return None;
        }
        let n = tries.fetch_add(1, Ordering::Relaxed) + 1;
        let mut r = Resp::new(200).body(layer.clone());
        r.cut = Some(1000 + n * 100);
        Some(r)
    });
    let r = pull(&env, &format!("{}/it/creeping:1", fake.addr), &[]);
    r.fails_with("interrupted");
    let gets = fake
        .requests()
        .iter()
        .filter(|q| q.method == "GET" && q.path().ends_with(&sha256(&im.layer)))
        .count();
    assert!(gets <= 5, "tried {gets} times, once per increment");
}

#[test]
fn a_401_without_a_challenge_says_no_credentials_were_sent() {
    let env = Env::new();
    let fake = registry(Store::default(), |req, _| {
        req.path()
            .contains("/manifests/")
            .then(|| Resp::new(401).json(serde_json::json!({"errors":[{"code":"UNAUTHORIZED"}]})))
    });
    let r = pull(&env, &format!("{}/it/nochallenge:1", fake.addr), &[]);
    r.fails_with("no WWW-Authenticate");
    assert!(r.stderr.contains("sent no credentials"), "{}", r.stderr);
    assert!(!r.stderr.contains("not accepted"), "{}", r.stderr);
}

#[test]
fn a_retry_after_beyond_the_cap_is_reported_not_waited_for() {
    let env = Env::new();
    let fake = registry(Store::default(), |req, _| {
        req.path()
            .contains("/manifests/")
            .then(|| Resp::new(429).header("Retry-After", "100000"))
    });
    let started = Instant::now();
    let r = pull(&env, &format!("{}/it/later:1", fake.addr), &[]);
    r.fails_with("100000 s (about 28 hours)");
    assert!(r.stderr.contains("try again later"), "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(30));
    let gets = fake
        .requests()
        .iter()
        .filter(|q| q.path().contains("/manifests/"))
        .count();
    assert_eq!(gets, 1, "not retried");
}

/// A token service that hands out a token to anyone and logs who asked.
fn token_service() -> Fake {
    Fake::start(|_| Resp::new(200).json(serde_json::json!({"token": "anonymous-token-1234"})))
}

/// A registry on 127.0.0.1 whose Bearer realm is on `localhost` (another
/// host) over HTTPS: `tls-front.py` in front of a token service.
struct RealmElsewhere {
    registry: Fake,
    tokens: Fake,
    front: TlsFront,
    pki: Pki,
    /// The realm's port.
    port: String,
}

fn realm_elsewhere(env: &Env) -> RealmElsewhere {
    let pki = pki(&env.path("pki"));
    let tokens = token_service();
    let front = TlsFront::start(&pki, &tokens.addr, env.path("realm-tls.log"));
    let port = front.addr.rsplit(':').next().unwrap().to_owned();
    let realm = format!("https://localhost:{port}/token");
    let registry = registry(Store::default(), move |req, _| {
        let challenge = format!(r#"Bearer realm="{realm}",service="fake""#);
        (req.header("authorization").is_none())
            .then(|| Resp::new(401).header("WWW-Authenticate", &challenge))
    });
    RealmElsewhere {
        registry,
        tokens,
        front,
        pki,
        port,
    }
}

#[test]
fn an_insecure_mark_does_not_cover_a_token_realm_on_another_host() {
    let env = Env::new();
    let RealmElsewhere {
        registry: fake,
        tokens,
        front,
        pki: _,
        port,
    } = realm_elsewhere(&env);
    let auth = authfile(&env, &fake.addr);
    let r = pull(
        &env,
        &format!("{}/it/realm:1", fake.addr),
        &[
            "--authfile",
            auth.to_str().unwrap(),
            "--insecure-registry",
            &fake.addr,
            "--cert-dir",
            env.path("no-certs").to_str().unwrap(),
        ],
    );
    r.fails_with(&format!("localhost:{port}"));
    assert!(
        tokens.requests().is_empty(),
        "the realm got a request over unverified TLS: {:?}",
        tokens.requests()
    );
    let shakes = front.handshakes();
    assert_eq!(shakes.len(), 1, "not retried: {shakes:?}");
    assert!(shakes[0].starts_with("handshake-failed"), "{shakes:?}");
    no_secret_in(&r, &[]);
}

#[test]
fn a_verified_token_realm_on_another_host_gets_the_credentials() {
    let env = Env::new();
    // Every part bound: a part left out would be dropped (stopped) here.
    let RealmElsewhere {
        registry: fake,
        tokens,
        front: _front,
        pki,
        port,
    } = realm_elsewhere(&env);
    // The realm's CA in certs.d under the realm's own host.
    let certs_d = env.path("certs.d");
    let dir = certs_d.join(format!("localhost:{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&pki.ca, dir.join("ca.crt")).unwrap();
    let auth = authfile(&env, &fake.addr);
    let r = pull(
        &env,
        &format!("{}/it/verified:1", fake.addr),
        &[
            "--authfile",
            auth.to_str().unwrap(),
            "--cert-dir",
            certs_d.to_str().unwrap(),
        ],
    );
    r.fails_with("MANIFEST_UNKNOWN");
    let asked = tokens.requests();
    let want = format!("Basic {}", basic_value());
    assert!(
        asked
            .iter()
            .any(|q| q.header("authorization") == Some(want.as_str())),
        "the verified realm got the credentials: {asked:?}"
    );
    no_secret_in(&r, &[]);
}

#[test]
fn credentials_never_go_from_https_down_to_an_http_realm() {
    let env = Env::new();
    let pki = pki(&env.path("pki"));
    let tokens = token_service();
    let realm = format!("http://{}/token", tokens.addr);
    let backend = registry(Store::default(), move |req, _| {
        if req.header("authorization").is_none() {
            let challenge = format!(r#"Bearer realm="{realm}",service="fake""#);
            return Some(Resp::new(401).header("WWW-Authenticate", &challenge));
        }
        Some(Resp::new(404).json(serde_json::json!({"errors":[{"code":"MANIFEST_UNKNOWN"}]})))
    });
    let front = TlsFront::start(&pki, &backend.addr, env.path("registry-tls.log"));
    // The registry over HTTPS that hoist verifies (its CA in certs.d).
    let certs_d = env.path("certs.d");
    std::fs::create_dir_all(certs_d.join(&front.addr)).unwrap();
    std::fs::copy(&pki.ca, certs_d.join(&front.addr).join("ca.crt")).unwrap();
    let auth = authfile(&env, &front.addr);
    let r = pull(
        &env,
        &format!("{}/it/downgrade:1", front.addr),
        &[
            "--authfile",
            auth.to_str().unwrap(),
            "--cert-dir",
            certs_d.to_str().unwrap(),
        ],
    );
    assert_eq!(r.status, 1, "{}", r.stderr);
    assert!(
        front.handshakes().iter().any(|h| h == "handshake-ok"),
        "the registry was reached over verified HTTPS: {:?}",
        front.handshakes()
    );
    let asked = tokens.requests();
    assert!(!asked.is_empty(), "the realm was asked (anonymously)");
    assert!(
        asked.iter().all(|q| q.header("authorization").is_none()),
        "credentials went to the http:// realm: {asked:?}"
    );
    no_secret_in(&r, &[]);
}
