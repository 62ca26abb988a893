//! Fake registries for the registry-trust tests: a small HTTP/1.1 server
//! on a std `TcpListener` (one request per connection, every request
//! logged), an honest distribution API behind it that a test's own lies
//! go in front of, a tiny image built in memory, and HTTPS through
//! `tests/support/tls-front.py` with certificates `openssl` makes for the
//! test. Each server stops when its test drops it, and by itself after
//! two minutes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::*;

/// One request as the fake read it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    /// With the query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn query(&self, key: &str) -> Option<String> {
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
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub cut: Option<usize>,
}

impl Resp {
    pub fn new(status: u16) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            cut: None,
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }

    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Resp {
        self.body = b.into();
        self
    }

    pub fn json(self, v: serde_json::Value) -> Resp {
        self.header("Content-Type", "application/json")
            .body(v.to_string())
    }
}

pub type Handler = dyn Fn(&Req) -> Resp + Send + Sync;

/// A fake HTTP server on 127.0.0.1; every request it read is logged.
pub struct Fake {
    pub addr: String,
    log: Arc<Mutex<Vec<Req>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Fake {
    pub fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Fake {
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

    pub fn requests(&self) -> Vec<Req> {
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

pub fn sha256(b: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b))
    )
}

/// A tiny one-layer linux/amd64 image, built here.
#[derive(Clone)]
pub struct Image {
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
}

impl Image {
    /// `size` bytes of incompressible file content in the layer;
    /// `urls`: foreign URLs on the layer's descriptor.
    pub fn new(size: usize, urls: &[String]) -> Image {
        let content = noise(size, 0);
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
pub struct Store {
    pub blobs: HashMap<String, Vec<u8>>,
    /// By tag and by digest.
    pub manifests: HashMap<String, Vec<u8>>,
    pub uploads: HashMap<String, Vec<u8>>,
    pub next: usize,
    /// Takes a blob sent whole in `POST ?digest=` (201), as the spec
    /// allows; else such a POST opens a session and its body is ignored,
    /// as distribution does.
    pub single_post: bool,
}

impl Store {
    pub fn with_image(tag: &str, im: &Image) -> Store {
        let mut s = Store::default();
        s.blobs.insert(sha256(&im.config), im.config.clone());
        s.blobs.insert(sha256(&im.layer), im.layer.clone());
        s.manifests.insert(tag.to_owned(), im.manifest.clone());
        s.manifests
            .insert(sha256(&im.manifest), im.manifest.clone());
        s
    }

    /// The distribution API, honestly (no authentication).
    pub fn answer(&mut self, req: &Req) -> Resp {
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
            if m == "POST" && self.single_post && !req.body.is_empty() {
                if let Some(want) = req.query("digest") {
                    if sha256(&req.body) != want {
                        return Resp::new(400)
                            .json(serde_json::json!({"errors":[{"code":"DIGEST_INVALID"}]}));
                    }
                    self.blobs.insert(want.clone(), req.body.clone());
                    return Resp::new(201)
                        .header("Docker-Content-Digest", &want)
                        .header("Location", &format!("/v2/{repo}/blobs/{want}"));
                }
            }
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
pub fn registry(
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

/// Test certificates: a CA, and a server certificate it signed for
/// `localhost` and 127.0.0.1.
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn pki(dir: &Path) -> Pki {
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
pub struct TlsFront {
    child: Child,
    pub addr: String,
    log: PathBuf,
}

impl TlsFront {
    pub fn start(pki: &Pki, upstream: &str, log: PathBuf) -> TlsFront {
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

    /// The handshakes logged, once the log has settled: the front writes a
    /// line only after the client has gone, which may be a moment after
    /// hoist exited.
    pub fn handshakes(&self) -> Vec<String> {
        let read = || std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut text = read();
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(100));
            let again = read();
            if again == text && !text.is_empty() {
                break;
            }
            text = again;
        }
        text.lines().map(str::to_owned).collect()
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
