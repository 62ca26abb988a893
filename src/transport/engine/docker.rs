//! `docker-daemon:`: the image streamed into the Docker Engine API's
//! `POST /images/load` over its unix socket, as `docker load` sends it.
//!
//! The body is a docker-archive (uncompressed layers named by diff_id,
//! `manifest.json`, `repositories`), the format every Docker since 1.10
//! loads, written on the fly into a chunked request body: no archive is
//! staged on disk, and a build that fails half-way sends no final chunk,
//! so the daemon sees a cut-off upload and keeps nothing. Every layer is
//! measured (and its diff_id checked) before the socket is opened, as
//! the docker-archive file output does.
//!
//! The socket is found as the docker CLI finds it: `DOCKER_HOST`, else
//! the current context (`DOCKER_CONTEXT`, else `currentContext` in
//! `$DOCKER_CONFIG/config.json`), else `/var/run/docker.sock`. Only
//! `unix://` endpoints are spoken; `tcp://` and `ssh://` are refused by
//! name rather than sent without the TLS and SSH setup they need.

use std::io::{self, BufWriter, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::http::{self, Chunked, MAX_ANSWER};
use super::EngineError;
use crate::store::Store;
use crate::transport::output::{docker_archive_entries, TarStream};
use crate::transport::{BuiltImage, TransportError};

/// Where rootful Docker listens unless told otherwise.
pub(crate) const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The daemon's socket and how it was found (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Socket {
    pub(crate) path: PathBuf,
    pub(crate) from: String,
}

impl Socket {
    /// The socket the docker CLI would use.
    pub(crate) fn find() -> Result<Socket, EngineError> {
        if let Some(host) = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()) {
            return Ok(Socket {
                path: parse_host(&host, "DOCKER_HOST")?,
                from: format!("DOCKER_HOST={host}"),
            });
        }
        if let Some((name, host)) = context_host()? {
            return Ok(Socket {
                path: parse_host(&host, &format!("docker context `{name}`"))?,
                from: format!("docker context `{name}`"),
            });
        }
        Ok(Socket {
            path: PathBuf::from(DEFAULT_SOCKET),
            from: "the default socket".into(),
        })
    }

    fn shown(&self) -> String {
        format!("{} ({})", self.path.display(), self.from)
    }

    fn connect(&self) -> Result<UnixStream, EngineError> {
        UnixStream::connect(&self.path).map_err(|e| self.unreachable(&e))
    }

    fn unreachable(&self, e: &io::Error) -> EngineError {
        let why = match e.kind() {
            io::ErrorKind::NotFound => "there is no socket there".to_owned(),
            io::ErrorKind::ConnectionRefused => "nothing is listening on it".to_owned(),
            io::ErrorKind::PermissionDenied => {
                "this user may not open it (join the `docker` group, or use rootless Docker and point DOCKER_HOST at its socket)".to_owned()
            }
            _ => e.to_string(),
        };
        EngineError::DockerUnreachable {
            socket: self.shown(),
            why,
        }
    }

    /// Whether a daemon answers `GET /_ping` within a few seconds.
    pub(crate) fn ping(&self) -> Result<(), EngineError> {
        let mut stream = self.connect()?;
        let bad = |why: String| EngineError::DockerBadAnswer {
            socket: self.shown(),
            why,
        };
        let limit = Some(Duration::from_secs(5));
        let answer = stream
            .set_read_timeout(limit)
            .and_then(|()| stream.set_write_timeout(limit))
            .and_then(|()| stream.write_all(&http::request_head("GET", "/_ping", &[])))
            .and_then(|()| read_answer(&stream))
            .map_err(|e| bad(e.to_string()))?;
        let r = http::parse_response(&answer).map_err(bad)?;
        match r.is_success() {
            true => Ok(()),
            false => Err(bad(format!("`GET /_ping` got {} {}", r.status, r.reason))),
        }
    }
}

/// The endpoint of the docker CLI's current context, unless that is the
/// built-in `default`.
fn context_host() -> Result<Option<(String, String)>, EngineError> {
    let config_dir = match std::env::var_os("DOCKER_CONFIG") {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME") {
            Some(h) => Path::new(&h).join(".docker"),
            None => return Ok(None),
        },
    };
    let name = match std::env::var("DOCKER_CONTEXT")
        .ok()
        .filter(|c| !c.is_empty())
    {
        Some(n) => n,
        None => {
            let Ok(bytes) = fs_err::read(config_dir.join("config.json")) else {
                return Ok(None);
            };
            match current_context(&bytes) {
                Some(n) => n,
                None => return Ok(None),
            }
        }
    };
    if name == "default" {
        return Ok(None);
    }
    let meta = config_dir
        .join("contexts/meta")
        .join(hex::encode(Sha256::digest(name.as_bytes())))
        .join("meta.json");
    let bytes = fs_err::read(&meta).map_err(|e| EngineError::BadContext {
        name: name.clone(),
        why: e.to_string(),
    })?;
    match context_endpoint(&bytes) {
        Some(host) => Ok(Some((name, host))),
        None => Err(EngineError::BadContext {
            name,
            why: format!("{} names no docker endpoint", meta.display()),
        }),
    }
}

/// `currentContext` of a docker CLI config.json.
fn current_context(config: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(config).ok()?;
    let name = v.get("currentContext")?.as_str()?;
    (!name.is_empty()).then(|| name.to_owned())
}

/// `Endpoints.docker.Host` of a context's meta.json.
fn context_endpoint(meta: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(meta).ok()?;
    let host = v.get("Endpoints")?.get("docker")?.get("Host")?.as_str()?;
    Some(host.to_owned())
}

/// The socket path of a `unix://PATH` endpoint; other schemes are refused
/// with what to do instead.
pub(crate) fn parse_host(host: &str, from: &str) -> Result<PathBuf, EngineError> {
    let refuse = |why: &str| EngineError::UnsupportedHost {
        host: host.to_owned(),
        from: from.to_owned(),
        why: why.to_owned(),
    };
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() || !path.starts_with('/') {
            return Err(refuse(
                "a unix:// endpoint needs an absolute socket path, as unix:///var/run/docker.sock",
            ));
        }
        return Ok(PathBuf::from(path));
    }
    let scheme = host.split_once("://").map_or(host, |(s, _)| s);
    Err(refuse(&match scheme {
        "tcp" | "http" | "https" => "hoist speaks to the Docker daemon over its unix socket only; run hoist on the daemon's host, or forward the socket (ssh -L /tmp/docker.sock:/var/run/docker.sock HOST) and set DOCKER_HOST=unix:///tmp/docker.sock".to_owned(),
        "ssh" => "hoist does not open ssh connections; forward the socket (ssh -L /tmp/docker.sock:/var/run/docker.sock HOST) and set DOCKER_HOST=unix:///tmp/docker.sock".to_owned(),
        _ => format!("`{scheme}` is not an endpoint hoist can use; give unix:///PATH/TO/docker.sock"),
    }))
}

/// The request path: unversioned (the daemon's own API version) unless
/// `DOCKER_API_VERSION` pins one, as it does for the docker CLI.
fn api_path(version: Option<&str>, path: &str) -> Result<String, EngineError> {
    let Some(v) = version.filter(|v| !v.is_empty()) else {
        return Ok(path.to_owned());
    };
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match v.split_once('.') {
        Some((major, minor)) if numeric(major) && numeric(minor) => Ok(format!("/v{v}{path}")),
        _ => Err(EngineError::BadApiVersion {
            version: v.to_owned(),
        }),
    }
}

/// Reads an answer to its end (the request asked the daemon to close).
fn read_answer(stream: &UnixStream) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Streams `image` into the daemon under `repo_tags`.
pub(crate) fn load(
    socket: &Socket,
    image: &BuiltImage,
    repo_tags: &[String],
    store: &Store,
) -> Result<(), TransportError> {
    let path = api_path(
        std::env::var("DOCKER_API_VERSION").ok().as_deref(),
        "/images/load?quiet=1",
    )?;
    let entries = docker_archive_entries(image, repo_tags, store)?;
    let stream = socket.connect()?;
    // The answer is read beside the upload: a daemon that refuses early
    // (an API error, a full disk) says why, and the upload then stops
    // on a closed socket instead of hanging.
    let reader = stream.try_clone()?;
    let answer = std::thread::spawn(move || read_answer(&reader));

    let head = http::request_head(
        "POST",
        &path,
        &[
            ("Content-Type", "application/x-tar"),
            ("Transfer-Encoding", "chunked"),
        ],
    );
    let sent = (|| -> Result<(), TransportError> {
        (&stream).write_all(&head)?;
        let body = BufWriter::with_capacity(256 * 1024, Chunked::new(&stream));
        let mut tar = TarStream::new(body);
        tar.write_all(entries, store)?;
        let body = tar.finish()?;
        body.into_inner().map_err(|e| e.into_error())?.finish()?;
        Ok(())
    })();
    if sent.is_err() {
        // Cut the upload off without its last chunk: the daemon drops it.
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
    let answer = answer
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the thread reading the answer failed")));
    let said = answer
        .ok()
        .and_then(|bytes| http::parse_response(&bytes).ok());
    match (sent, said) {
        (Ok(()), Some(r)) => judge(socket, &r),
        // The daemon's words explain a broken upload better than EPIPE.
        (Err(e), Some(r)) => judge(socket, &r).and(Err(e)),
        (Err(e), None) => Err(e),
        (Ok(()), None) => Err(EngineError::DockerBadAnswer {
            socket: socket.shown(),
            why: "it closed the connection without an answer".into(),
        }
        .into()),
    }
}

/// Success, or the daemon's own words.
fn judge(socket: &Socket, r: &http::Response) -> Result<(), TransportError> {
    let said = http::read_stream(&r.body);
    let message = match (r.is_success(), said.error) {
        (true, None) => return Ok(()),
        (_, Some(e)) => e,
        (false, None) => match said.lines.is_empty() {
            true => format!("{} {}", r.status, r.reason),
            false => format!("{} {}: {}", r.status, r.reason, said.lines.join(" ")),
        },
    };
    Err(EngineError::DockerSaid {
        socket: socket.shown(),
        message,
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_host_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("unix:///var/run/docker.sock", Ok("/var/run/docker.sock")),
            (
                "unix:///run/user/1000/docker.sock",
                Ok("/run/user/1000/docker.sock"),
            ),
            ("unix://", Err("absolute socket path")),
            ("unix://relative.sock", Err("absolute socket path")),
            ("tcp://10.0.0.1:2376", Err("unix socket only")),
            ("ssh://me@host", Err("does not open ssh")),
            (
                "npipe:////./pipe/docker_engine",
                Err("`npipe` is not an endpoint"),
            ),
            ("/var/run/docker.sock", Err("is not an endpoint")),
        ];
        for (host, want) in cases {
            match (parse_host(host, "DOCKER_HOST"), want) {
                (Ok(p), Ok(path)) => assert_eq!(p, Path::new(path)),
                (Err(e), Err(needle)) => {
                    let e = e.to_string();
                    assert!(e.contains(needle) && e.contains(host), "{host}: {e}");
                }
                (got, _) => panic!("{host}: {got:?}"),
            }
        }
    }

    #[test]
    fn api_path_table() {
        let cases: &[(Option<&str>, Result<&str, ()>)] = &[
            (None, Ok("/images/load")),
            (Some(""), Ok("/images/load")),
            (Some("1.41"), Ok("/v1.41/images/load")),
            (Some("1"), Err(())),
            (Some("1.x"), Err(())),
            (Some("../1.41"), Err(())),
        ];
        for (v, want) in cases {
            let got = api_path(*v, "/images/load").map_err(drop);
            assert_eq!(got.as_deref(), want.as_deref(), "{v:?}");
        }
    }

    #[test]
    fn context_documents_table() {
        let configs: &[(&str, Option<&str>)] = &[
            (
                r#"{"currentContext":"rootless","auths":{}}"#,
                Some("rootless"),
            ),
            (r#"{"currentContext":""}"#, None),
            (r#"{"auths":{}}"#, None),
            ("not json", None),
        ];
        for (c, want) in configs {
            assert_eq!(current_context(c.as_bytes()).as_deref(), *want, "{c}");
        }
        let metas: &[(&str, Option<&str>)] = &[
            (
                r#"{"Name":"rootless","Metadata":{},"Endpoints":{"docker":{"Host":"unix:///run/user/1000/docker.sock","SkipTLSVerify":false}}}"#,
                Some("unix:///run/user/1000/docker.sock"),
            ),
            (r#"{"Name":"x","Endpoints":{}}"#, None),
            ("[]", None),
        ];
        for (m, want) in metas {
            assert_eq!(context_endpoint(m.as_bytes()).as_deref(), *want, "{m}");
        }
    }
}
