//! Just enough HTTP/1.1 to talk to the Docker Engine API over its unix
//! socket: a request head, a chunked request body, and a response read
//! to its end (the request says `Connection: close`) then taken apart.
//!
//! reqwest cannot dial a unix socket, and the Engine API needs only one
//! request shape, so this is a few functions rather than a client. The
//! parsers take bytes, so they are tested without a daemon; the daemon's
//! own answers are tested against the real one in the integration tests.

use std::io::{self, Write};

/// The most of an answer hoist reads: a load's answer is a few lines of
/// JSON; anything longer is not the Engine API.
pub(crate) const MAX_ANSWER: u64 = 16 << 20;

/// A response: status code, reason phrase and body (chunks joined).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) reason: String,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The request head for `method path`, with the headers given.
pub(crate) fn request_head(method: &str, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: hoist/{}\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION")
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Parses a whole response: the status line, the headers, and the body
/// as `Transfer-Encoding: chunked`, `Content-Length` or the rest of the
/// bytes says.
pub(crate) fn parse_response(bytes: &[u8]) -> Result<Response, String> {
    let end = find(bytes, b"\r\n\r\n").ok_or("the answer ends before its headers do")?;
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| "its headers are not text")?;
    let rest = &bytes[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("`{status_line}` is not an HTTP/1.x status line"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| format!("`{status_line}` has no status code"))?;
    let reason = parts.next().unwrap_or_default().to_owned();
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            return Err(format!("header line `{line}` has no `:`"));
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.eq_ignore_ascii_case("chunked");
        } else if k.eq_ignore_ascii_case("content-length") {
            length = Some(
                v.parse::<usize>()
                    .map_err(|_| format!("Content-Length `{v}` is not a number"))?,
            );
        }
    }
    let body = match (chunked, length) {
        (true, _) => dechunk(rest)?,
        (false, Some(n)) => rest
            .get(..n)
            .ok_or_else(|| format!("the body ends after {} of its {n} bytes", rest.len()))?
            .to_vec(),
        (false, None) => rest.to_vec(),
    };
    Ok(Response {
        status,
        reason,
        body,
    })
}

/// Joins the chunks of a chunked body (trailers ignored).
fn dechunk(mut bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = find(bytes, b"\r\n").ok_or("a chunk size line is cut off")?;
        let line = std::str::from_utf8(&bytes[..eol]).map_err(|_| "a chunk size is not text")?;
        let hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(hex, 16)
            .map_err(|_| format!("chunk size `{hex}` is not hexadecimal"))?;
        bytes = &bytes[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let data = bytes
            .get(..size)
            .ok_or_else(|| format!("a chunk of {size} bytes is cut off"))?;
        out.extend_from_slice(data);
        bytes = bytes
            .get(size..)
            .and_then(|b| b.strip_prefix(b"\r\n"))
            .ok_or("a chunk does not end with CRLF")?;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What the Engine API's JSON stream (one object per message) said: the
/// first error in it, and the `Loaded image` lines.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct StreamSaid {
    pub(crate) error: Option<String>,
    pub(crate) lines: Vec<String>,
}

/// Reads a JSON message stream (`{"stream":"..."}`,
/// `{"errorDetail":{"message":"..."},"error":"..."}`), or an error body
/// (`{"message":"..."}`). Text that is not JSON is kept as a line, so a
/// proxy's or another server's answer still reaches the user.
pub(crate) fn read_stream(body: &[u8]) -> StreamSaid {
    let mut said = StreamSaid::default();
    let mut objects = serde_json::Deserializer::from_slice(body).into_iter::<serde_json::Value>();
    for item in objects.by_ref() {
        let Ok(v) = item else {
            let text = String::from_utf8_lossy(body).trim().to_owned();
            if !text.is_empty() {
                said.lines.push(text);
            }
            return said;
        };
        let text = |key: &str| v.get(key).and_then(|s| s.as_str()).map(str::trim);
        let error = v
            .get("errorDetail")
            .and_then(|d| d.get("message"))
            .and_then(|m| m.as_str())
            .or_else(|| text("error"))
            .or_else(|| text("message"));
        if let Some(e) = error {
            said.error.get_or_insert_with(|| e.trim().to_owned());
        }
        if let Some(s) = text("stream").filter(|s| !s.is_empty()) {
            said.lines.extend(s.lines().map(str::to_owned));
        }
    }
    said
}

/// A request body in `Transfer-Encoding: chunked`: each write is one
/// chunk (put a `BufWriter` above it for large chunks), and
/// [`Chunked::finish`] writes the last, empty one. A body that stops
/// without it is, to the server, cut off: never taken as complete.
pub(crate) struct Chunked<W: Write> {
    inner: W,
}

impl<W: Write> Chunked<W> {
    pub(crate) fn new(inner: W) -> Self {
        Chunked { inner }
    }

    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(b"0\r\n\r\n")?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for Chunked<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.inner
            .write_all(format!("{:x}\r\n", buf.len()).as_bytes())?;
        self.inner.write_all(buf)?;
        self.inner.write_all(b"\r\n")?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_response_table() {
        type Case<'a> = (&'a [u8], Result<(u16, &'a str), &'a str>);
        let cases: &[Case] = &[
            (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n",
                Ok((200, "hello world")),
            ),
            (
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 13\r\n\r\n{\"message\":1}extra",
                Ok((500, "{\"message\":1}")),
            ),
            (b"HTTP/1.0 200 OK\r\n\r\nto the end", Ok((200, "to the end"))),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", Err("ends after 5 of its 9")),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", Err("not hexadecimal")),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nabc", Err("cut off")),
            (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", Err("not a number")),
            (b"SSH-2.0-OpenSSH\r\n\r\n", Err("not an HTTP/1.x status line")),
            (b"HTTP/1.1 abc\r\n\r\n", Err("no status code")),
            (b"HTTP/1.1 200 OK\r\nBroken\r\n\r\n", Err("has no `:`")),
            (b"HTTP/1.1 200 OK\r\n", Err("ends before its headers")),
        ];
        for (input, want) in cases {
            let got = parse_response(input);
            match (got, want) {
                (Ok(r), Ok((status, body))) => {
                    assert_eq!(r.status, *status);
                    assert_eq!(String::from_utf8_lossy(&r.body), *body);
                }
                (Err(e), Err(needle)) => assert!(e.contains(needle), "{e}"),
                (got, _) => panic!("{}: {got:?}", String::from_utf8_lossy(input)),
            }
        }
    }

    #[test]
    fn read_stream_table() {
        let cases: &[(&str, Option<&str>, &[&str])] = &[
            (
                "{\"stream\":\"Loaded image: web:dev\\n\"}\r\n",
                None,
                &["Loaded image: web:dev"],
            ),
            (
                "{\"stream\":\"Loaded image: a:1\\n\"}\n{\"stream\":\"Loaded image ID: sha256:ab\\n\"}",
                None,
                &["Loaded image: a:1", "Loaded image ID: sha256:ab"],
            ),
            (
                "{\"errorDetail\":{\"message\":\"unexpected EOF\"},\"error\":\"unexpected EOF\"}",
                Some("unexpected EOF"),
                &[],
            ),
            ("{\"error\":\"bad layer\"}", Some("bad layer"), &[]),
            (
                "{\"message\":\"client version 1.99 is too new\"}\n",
                Some("client version 1.99 is too new"),
                &[],
            ),
            ("404 page not found\n", None, &["404 page not found"]),
            ("", None, &[]),
        ];
        for (body, error, lines) in cases {
            let said = read_stream(body.as_bytes());
            assert_eq!(said.error.as_deref(), *error, "{body}");
            assert_eq!(said.lines, *lines, "{body}");
        }
    }

    #[test]
    fn chunked_body_round_trips() {
        let mut c = Chunked::new(Vec::new());
        c.write_all(b"hello").unwrap();
        c.write_all(b"").unwrap();
        c.write_all(&[b'x'; 300]).unwrap();
        let body = c.finish().unwrap();
        assert!(body.starts_with(b"5\r\nhello\r\n12c\r\n"));
        assert!(body.ends_with(b"\r\n0\r\n\r\n"));
        let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        response.extend_from_slice(&body);
        let r = parse_response(&response).unwrap();
        assert_eq!(r.body.len(), 305);
        assert!(r.body.starts_with(b"hello"));
    }

    #[test]
    fn request_head_ends_the_headers() {
        let head = request_head(
            "POST",
            "/images/load?quiet=1",
            &[("Transfer-Encoding", "chunked")],
        );
        let text = String::from_utf8(head).unwrap();
        assert!(text.starts_with("POST /images/load?quiet=1 HTTP/1.1\r\nHost: docker\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("Transfer-Encoding: chunked\r\n\r\n"));
    }
}
