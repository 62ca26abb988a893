//! The fault-injecting proxy (tests/support/fault-proxy.py) that the
//! registry and fault tests put in front of the lab's registries: it counts
//! requests and injects resets, stalls, truncations and error statuses.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::support::*;

/// The fault proxy in front of the plain registry; its log lists every
/// request.
pub struct Proxy {
    child: Child,
    pub addr: String,
    log: std::path::PathBuf,
}

impl Proxy {
    pub fn start(env: &Env, faults: &str) -> Proxy {
        let mut extra = Vec::new();
        if !faults.is_empty() {
            extra.extend(["--faults", faults]);
        }
        Proxy::start_with(
            env,
            &format!("http://{}", crate::rcache::registry("plain")),
            &extra,
        )
    }

    /// A proxy in front of `upstream` (http://HOST:PORT) with more
    /// fault-proxy arguments.
    pub fn start_with(env: &Env, upstream: &str, extra: &[&str]) -> Proxy {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let log = env.path(&format!(
            "proxy-{}.jsonl",
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fault-proxy.py");
        require("python3", "python3");
        let mut args = vec![
            script.display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--upstream".into(),
            upstream.to_owned(),
            "--log".into(),
            log.display().to_string(),
            "--exit-on-stdin-eof".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut child = Command::new("python3")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the fault proxy");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(addr.starts_with("127.0.0.1:"), "proxy said: {line}");
        Proxy { child, addr, log }
    }

    /// Every request logged so far. The proxy logs a request once it has
    /// answered it, so this waits until the log stops growing.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let read = || std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut text = read();
        for _ in 0..50 {
            std::thread::sleep(std::time::Duration::from_millis(150));
            let again = read();
            if again == text && text.ends_with('\n') {
                break;
            }
            text = again;
        }
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Digests of blobs stored by uploads that completed: a final `PUT`,
    /// or a single-request `POST ?digest=` the registry took (not a mount).
    pub fn uploaded(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| {
                r["kind"] == "upload"
                    && r["status"] == 201
                    && (r["method"] == "PUT"
                        || (r["method"] == "POST" && r["mount_from"].is_null()))
            })
            .filter_map(|r| r["digest"].as_str().map(str::to_owned))
            .collect()
    }

    pub fn manifest_puts(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r["kind"] == "manifest" && r["method"] == "PUT")
            .count()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
