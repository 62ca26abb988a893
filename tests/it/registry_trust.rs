//! Registry trust: fake registries on loopback that misbehave on purpose
//! (echo credentials, lie about uploads, name token realms they should
//! not, serve refused documents, ignore `Range`). Each fake is a small
//! HTTP/1.1 server written here on a std `TcpListener`; it stops when its
//! test drops it, and by itself after two minutes. HTTPS, where a case
//! needs it, is `tests/support/tls-front.py` in front of a fake, with
//! certificates made by `openssl` for the test.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// One request as the fake read it.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    /// With the query.
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then(|| v.replace("%3A", ":").replace("%3a", ":"))
        })
    }
}

/// An answer; `cut` sends only that many body bytes (after a full
/// Content-Length), then closes.
#[derive(Debug, Clone)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    cut: Option<usize>,
}

impl Resp {
    fn new(status: u16) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            cut: None,
        }
    }

    fn header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }

    fn body(mut self, b: impl Into<Vec<u8>>) -> Resp {
        self.body = b.into();
        self
    }

    fn json(self, v: serde_json::Value) -> Resp {
        self.header("Content-Type", "application/json")
            .body(v.to_string())
    }
}

type Handler = dyn Fn(&Req) -> Resp + Send + Sync;

/// A fake HTTP server on 127.0.0.1; every request it read is logged.
struct Fake {
    addr: String,
    log: Arc<Mutex<Vec<Req>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Fake {
    fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let log: Arc<Mutex<Vec<Req>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (l, s) = (log.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let born = Instant::now();
            while !s.load(Ordering::Relaxed) && born.elapsed() < Duration::from_secs(120) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (h, l) = (handler.clone(), l.clone());
                        std::thread::spawn(move || serve(conn, &*h, &l));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Fake {
            addr,
            log,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One connection, one request (every answer says `Connection: close`).
/// Anything that is not HTTP (a TLS hello, when hoist tries HTTPS first
/// on loopback) is dropped.
fn serve(conn: TcpStream, handler: &Handler, log: &Mutex<Vec<Req>>) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    // A TLS hello starts with 0x16, HTTP with a method's capital letter:
    // drop TLS at once, so hoist falls back to plain HTTP without waiting.
    let mut first = [0u8; 1];
    match conn.peek(&mut first) {
        Ok(1) if first[0].is_ascii_uppercase() => {}
        _ => return,
    }
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = Vec::new();
    if reader.read_until(b'\n', &mut line).is_err() {
        return;
    }
    let Ok(line) = String::from_utf8(line) else {
        return;
    };
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return;
    };
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut req = Req {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body: Vec::new(),
    };
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    req.body = body;
    log.lock().unwrap().push(req.clone());
    let resp = handler(&req);
    let mut out = format!("HTTP/1.1 {} Fake\r\n", resp.status);
    let mut has_len = false;
    for (k, v) in &resp.headers {
        has_len |= k.eq_ignore_ascii_case("content-length");
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_len {
        out.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut conn = conn;
    let _ = conn.write_all(out.as_bytes());
    if method != "HEAD" {
        let n = resp.cut.unwrap_or(resp.body.len()).min(resp.body.len());
        let _ = conn.write_all(&resp.body[..n]);
    }
    let _ = conn.flush();
    let _ = conn.shutdown(std::net::Shutdown::Both);
}

fn sha256(b: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b))
    )
}

/// A tiny one-layer linux/amd64 image, built here.
#[derive(Clone)]
struct Image {
    manifest: Vec<u8>,
    config: Vec<u8>,
    layer: Vec<u8>,
}

impl Image {
    /// `size` bytes of incompressible file content in the layer;
    /// `urls`: foreign URLs on the layer's descriptor.
    fn new(size: usize, urls: &[String]) -> Image {
        let mut x: u32 = 0x9e37_79b9;
        let content: Vec<u8> = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, "data.bin", content.as_slice())
            .unwrap();
        let tar = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let layer = gz.finish().unwrap();
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [sha256(&tar)]},
        })
        .to_string()
        .into_bytes();
        let mut ldesc = serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": sha256(&layer),
            "size": layer.len(),
        });
        if !urls.is_empty() {
            ldesc["urls"] = serde_json::json!(urls);
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(&config),
                "size": config.len(),
            },
            "layers": [ldesc],
        })
        .to_string()
        .into_bytes();
        Image {
            manifest,
            config,
            layer,
        }
    }
}

/// What an honest registry holds and does; tests put their lies in front.
#[derive(Default)]
struct Store {
    blobs: HashMap<String, Vec<u8>>,
    /// By tag and by digest.
    manifests: HashMap<String, Vec<u8>>,
    uploads: HashMap<String, Vec<u8>>,
    next: usize,
}

impl Store {
    fn with_image(tag: &str, im: &Image) -> Store {
        let mut s = Store::default();
        s.blobs.insert(sha256(&im.config), im.config.clone());
        s.blobs.insert(sha256(&im.layer), im.layer.clone());
        s.manifests.insert(tag.to_owned(), im.manifest.clone());
        s.manifests
            .insert(sha256(&im.manifest), im.manifest.clone());
        s
    }

    /// The distribution API, honestly (no authentication).
    fn answer(&mut self, req: &Req) -> Resp {
        let path = req.path().to_owned();
        let m = req.method.as_str();
        if path == "/v2/" {
            return Resp::new(200).json(serde_json::json!({}));
        }
        let Some(rest) = path.strip_prefix("/v2/") else {
            return Resp::new(404);
        };
        if let Some((repo, reference)) = rest.split_once("/manifests/") {
            if m == "PUT" {
                let d = sha256(&req.body);
                self.manifests
                    .insert(reference.to_owned(), req.body.clone());
                self.manifests.insert(d.clone(), req.body.clone());
                return Resp::new(201)
                    .header("Docker-Content-Digest", &d)
                    .header("Location", &format!("/v2/{repo}/manifests/{d}"));
            }
            return match self.manifests.get(reference) {
                Some(b) => Resp::new(200)
                    .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                    .header("Docker-Content-Digest", &sha256(b))
                    .body(b.clone()),
                None => Resp::new(404).json(serde_json::json!({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})),
            };
        }
        if let Some((repo, id)) = rest.split_once("/blobs/uploads/") {
            let loc = |id: &str| format!("/v2/{repo}/blobs/uploads/{id}");
            if m == "POST" {
                self.next += 1;
                let id = format!("u{}", self.next);
                self.uploads.insert(id.clone(), Vec::new());
                return Resp::new(202)
                    .header("Location", &loc(&id))
                    .header("Range", "0-0");
            }
            let Some(buf) = self.uploads.get_mut(id) else {
                return Resp::new(404)
                    .json(serde_json::json!({"errors":[{"code":"BLOB_UPLOAD_UNKNOWN"}]}));
            };
            buf.extend_from_slice(&req.body);
            let held = buf.len();
            if m == "PATCH" {
                return Resp::new(202)
                    .header("Location", &loc(id))
                    .header("Range", &format!("0-{}", held.saturating_sub(1)));
            }
            if m == "PUT" {
                let want = req.query("digest").unwrap_or_default();
                let bytes = self.uploads.remove(id).unwrap_or_default();
                if sha256(&bytes) != want {
                    return Resp::new(400)
                        .json(serde_json::json!({"errors":[{"code":"DIGEST_INVALID"}]}));
                }
                self.blobs.insert(want.clone(), bytes);
                return Resp::new(201)
                    .header("Docker-Content-Digest", &want)
                    .header("Location", &format!("/v2/{repo}/blobs/{want}"));
            }
        }
        if let Some((_, digest)) = rest.split_once("/blobs/") {
            return match self.blobs.get(digest) {
                Some(b) => Resp::new(200)
                    .header("Docker-Content-Digest", digest)
                    .header("Content-Length", &b.len().to_string())
                    .body(if m == "HEAD" { Vec::new() } else { b.clone() }),
                None => Resp::new(404),
            };
        }
        Resp::new(404)
    }
}

/// A fake registry: `lie` answers first when it wants to, the honest
/// [`Store`] otherwise.
fn registry(
    store: Store,
    lie: impl Fn(&Req, &mut Store) -> Option<Resp> + Send + Sync + 'static,
) -> Fake {
    let store = Mutex::new(store);
    Fake::start(move |req| {
        let mut s = store.lock().unwrap();
        match lie(req, &mut s) {
            Some(r) => r,
            None => s.answer(req),
        }
    })
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

/// Test certificates: a CA, and a server certificate it signed for
/// `localhost` and 127.0.0.1.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    require("openssl", "openssl");
    std::fs::create_dir_all(dir).unwrap();
    let p = |f: &str| dir.join(f).display().to_string();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    let (ca_key, ca_crt) = (p("ca.key"), p("ca.crt"));
    ca.extend([
        "-keyout",
        &ca_key,
        "-out",
        &ca_crt,
        "-days",
        "2",
        "-subj",
        "/CN=hoist test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run("openssl", &ca).ok();
    let (key, csr, crt, ext) = (p("srv.key"), p("srv.csr"), p("srv.crt"), p("srv.ext"));
    let mut req = vec!["req"];
    req.extend(ec);
    req.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"]);
    run("openssl", &req).ok();
    std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    )
    .ok();
    Pki {
        ca: dir.join("ca.crt"),
        cert: dir.join("srv.crt"),
        key: dir.join("srv.key"),
    }
}

/// `tests/support/tls-front.py` in front of `upstream`.
struct TlsFront {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl TlsFront {
    fn start(pki: &Pki, upstream: &str, log: PathBuf) -> TlsFront {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/tls-front.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("--cert")
            .arg(&pki.cert)
            .arg("--key")
            .arg(&pki.key)
            .args(["--upstream", upstream, "--log"])
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs tls-front.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(addr.starts_with("127.0.0.1:"), "tls-front said: {line}");
        TlsFront { child, addr, log }
    }

    fn handshakes(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token service that hands out a token to anyone and logs who asked.
fn token_service() -> Fake {
    Fake::start(|_| Resp::new(200).json(serde_json::json!({"token": "anonymous-token-1234"})))
}

#[test]
fn an_insecure_mark_does_not_cover_a_token_realm_on_another_host() {
    let env = Env::new();
    let pki = pki(&env.path("pki"));
    let tokens = token_service();
    let front = TlsFront::start(&pki, &tokens.addr, env.path("realm-tls.log"));
    // The realm on `localhost`, the registry on 127.0.0.1: another host.
    let port = front.addr.rsplit(':').next().unwrap().to_owned();
    let realm = format!("https://localhost:{port}/token");
    let fake = registry(Store::default(), move |req, _| {
        let challenge = format!(r#"Bearer realm="{realm}",service="fake""#);
        (req.header("authorization").is_none())
            .then(|| Resp::new(401).header("WWW-Authenticate", &challenge))
    });
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
