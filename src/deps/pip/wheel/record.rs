//! RECORD: the wheel's list of its own files, with their hashes and sizes.
//!
//! The wheel spec (binary distribution format, "The .dist-info
//! directory") makes RECORD a CSV file of `path,algorithm=digest,size`
//! rows, the digest in URL-safe base64 without padding, one row for every
//! file of the wheel; RECORD's own row and those of its signatures
//! (`RECORD.jws`, `RECORD.p7s`) leave the hash and size empty. The reader
//! here follows Python's `csv` module as pip uses it (`,` between fields,
//! `"` quoting with `""` inside, `\r`, `\n` or `\r\n` between rows), so
//! that a path with a comma in it reads back as pip would read it.
//!
//! An installer rewrites RECORD with the paths where files landed, and
//! with new hashes for the files it changed or made; [`write()`] produces
//! the bytes pip writes: rows sorted, minimal quoting, `\r\n` line ends.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use sha2::Digest as _;

/// URL-safe base64: written without padding, read with or without.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a RECORD file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("RECORD is not UTF-8 text")]
    NotUtf8,
    #[error("RECORD line {line}: {why}")]
    Line { line: usize, why: String },
}

/// The hash algorithms the wheel spec allows in RECORD (sha256 or
/// stronger; md5 and sha1 are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgo {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlgo {
    fn name(self) -> &'static str {
        match self {
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha384 => "sha384",
            HashAlgo::Sha512 => "sha512",
        }
    }

    fn len(self) -> usize {
        match self {
            HashAlgo::Sha256 => 32,
            HashAlgo::Sha384 => 48,
            HashAlgo::Sha512 => 64,
        }
    }

    /// Starts hashing with this algorithm.
    pub fn hasher(self) -> Hasher {
        match self {
            HashAlgo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlgo::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            HashAlgo::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
}

/// A file's hash as RECORD states it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordHash {
    pub algo: HashAlgo,
    pub digest: Vec<u8>,
}

impl RecordHash {
    /// Parses `algorithm=<urlsafe base64>`.
    pub fn parse(s: &str) -> Result<RecordHash, String> {
        let Some((algo, value)) = s.split_once('=') else {
            return Err(format!("hash `{s}` is not `algorithm=digest`"));
        };
        let algo = match algo {
            "sha256" => HashAlgo::Sha256,
            "sha384" => HashAlgo::Sha384,
            "sha512" => HashAlgo::Sha512,
            other => {
                return Err(format!(
                    "hash algorithm `{other}` is not allowed in a wheel (sha256 or stronger)"
                ))
            }
        };
        let digest = B64
            .decode(value)
            .map_err(|e| format!("hash `{s}` is not URL-safe base64: {e}"))?;
        if digest.len() != algo.len() {
            return Err(format!(
                "hash `{s}` has {} bytes, {} needs {}",
                digest.len(),
                algo.name(),
                algo.len()
            ));
        }
        Ok(RecordHash { algo, digest })
    }

    /// The sha256 hash of `bytes`, as an installer records a file it made.
    pub fn sha256_of(bytes: &[u8]) -> RecordHash {
        let mut h = HashAlgo::Sha256.hasher();
        h.update(bytes);
        h.finish()
    }
}

impl fmt::Display for RecordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.algo.name(), B64.encode(&self.digest))
    }
}

/// A running hash of one of the [`HashAlgo`]s.
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha384(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> RecordHash {
        let (algo, digest) = match self {
            Hasher::Sha256(h) => (HashAlgo::Sha256, h.finalize().to_vec()),
            Hasher::Sha384(h) => (HashAlgo::Sha384, h.finalize().to_vec()),
            Hasher::Sha512(h) => (HashAlgo::Sha512, h.finalize().to_vec()),
        };
        RecordHash { algo, digest }
    }
}

/// One row of RECORD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    /// Inside the wheel: relative to its root, `/`-separated. Once
    /// installed: relative to the site-packages folder the wheel's root
    /// went to (`../../../bin/tool` for a script).
    pub path: String,
    pub hash: Option<RecordHash>,
    pub size: Option<u64>,
}

/// Reads RECORD. Blank rows are skipped; fields past the third are
/// ignored (pip warns and carries on); a missing hash or size is `None`.
pub fn parse(bytes: &[u8]) -> Result<Vec<RecordRow>, RecordError> {
    let text = std::str::from_utf8(bytes).map_err(|_| RecordError::NotUtf8)?;
    let mut rows = Vec::new();
    for (line, fields) in csv_rows(text)? {
        if fields.iter().all(String::is_empty) {
            continue;
        }
        let err = |why: String| RecordError::Line { line, why };
        let mut fields = fields.into_iter();
        let path = fields.next().unwrap_or_default();
        if path.is_empty() {
            return Err(err("the path is empty".to_owned()));
        }
        let hash = match fields.next().filter(|h| !h.is_empty()) {
            Some(h) => Some(RecordHash::parse(&h).map_err(err)?),
            None => None,
        };
        let size = match fields.next().filter(|s| !s.is_empty()) {
            Some(s) if s.bytes().all(|b| b.is_ascii_digit()) => Some(
                s.parse::<u64>()
                    .map_err(|_| err(format!("size `{s}` is too large")))?,
            ),
            Some(s) => return Err(err(format!("size `{s}` is not a number of bytes"))),
            None => None,
        };
        rows.push(RecordRow { path, hash, size });
    }
    Ok(rows)
}

/// Splits CSV text into rows of fields, each with the line it starts on.
fn csv_rows(text: &str) -> Result<Vec<(usize, Vec<String>)>, RecordError> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut row_line = 1;
    let mut in_quotes = false;
    // A quote opens a quoted field only as the field's first character;
    // elsewhere it is an ordinary character, as Python's reader has it.
    let mut at_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                c => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            '"' if at_start => {
                in_quotes = true;
                at_start = false;
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                at_start = true;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                row.push(std::mem::take(&mut field));
                rows.push((row_line, std::mem::take(&mut row)));
                line += 1;
                row_line = line;
                at_start = true;
            }
            c => {
                field.push(c);
                at_start = false;
            }
        }
    }
    if in_quotes {
        return Err(RecordError::Line {
            line: row_line,
            why: "a quoted field is not closed".to_owned(),
        });
    }
    if !row.is_empty() || !field.is_empty() {
        row.push(field);
        rows.push((row_line, row));
    }
    Ok(rows)
}

/// Quotes a field as Python's `csv` writer does by default: only when it
/// holds a comma, a quote or a line break.
fn quote(field: &str, out: &mut String) {
    if field.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// The bytes of a RECORD holding `rows`, sorted by path (then hash and
/// size, as pip sorts them), each line ending in `\r\n`.
pub fn write(rows: &[RecordRow]) -> Vec<u8> {
    let mut cells: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.path.clone(),
                r.hash.as_ref().map(ToString::to_string).unwrap_or_default(),
                r.size.map(|s| s.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    cells.sort();
    let mut out = String::new();
    for (path, hash, size) in &cells {
        quote(path, &mut out);
        out.push(',');
        quote(hash, &mut out);
        out.push(',');
        quote(size, &mut out);
        out.push_str("\r\n");
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "sha256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0";

    fn row(path: &str, hash: Option<&str>, size: Option<u64>) -> RecordRow {
        RecordRow {
            path: path.to_owned(),
            hash: hash.map(|h| RecordHash::parse(h).unwrap()),
            size,
        }
    }

    #[test]
    fn hash_of_abc() {
        assert_eq!(RecordHash::sha256_of(b"abc").to_string(), ABC);
    }

    #[test]
    fn parse_table() {
        let padded = format!("{ABC}=");
        let cases: Vec<(String, Result<Vec<RecordRow>, &str>)> = vec![
            (
                format!("a.py,{ABC},3\nx.dist-info/RECORD,,\n"),
                Ok(vec![
                    row("a.py", Some(ABC), Some(3)),
                    row("x.dist-info/RECORD", None, None),
                ]),
            ),
            // CRLF, no final newline, blank lines.
            (
                format!("a.py,{ABC},3\r\n\r\nb.py,{ABC},3"),
                Ok(vec![
                    row("a.py", Some(ABC), Some(3)),
                    row("b.py", Some(ABC), Some(3)),
                ]),
            ),
            // Quoting: a comma and a doubled quote inside a path.
            (
                format!("\"a,b \"\"c\"\".py\",{ABC},3\n"),
                Ok(vec![row("a,b \"c\".py", Some(ABC), Some(3))]),
            ),
            // A quote not at the start of a field is a character.
            (
                format!("a\"b.py,{ABC},3\n"),
                Ok(vec![row("a\"b.py", Some(ABC), Some(3))]),
            ),
            // A quoted line break.
            (
                format!("\"a\nb\",{ABC},3\n"),
                Ok(vec![row("a\nb", Some(ABC), Some(3))]),
            ),
            // Padding tolerated, fewer fields tolerated, extra fields ignored.
            (
                format!("a.py,{padded},3\nb.py\nc.py,{ABC},3,extra\n"),
                Ok(vec![
                    row("a.py", Some(ABC), Some(3)),
                    row("b.py", None, None),
                    row("c.py", Some(ABC), Some(3)),
                ]),
            ),
            ("a.py,md5=abc,3\n".to_owned(), Err("line 1")),
            ("a.py,sha256=!!,3\n".to_owned(), Err("base64")),
            ("a.py,sha256=YWJj,3\n".to_owned(), Err("32")),
            ("a.py,sha256\n".to_owned(), Err("algorithm=digest")),
            (format!("ok,{ABC},3\na.py,{ABC},-3\n"), Err("line 2")),
            (format!("a.py,{ABC},3x\n"), Err("not a number")),
            (format!(",{ABC},3\n"), Err("path is empty")),
            (format!("\"a.py,{ABC},3\n"), Err("not closed")),
        ];
        for (input, want) in cases {
            let got = parse(input.as_bytes());
            match (&got, &want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{input:?}"),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{input:?}: {e}"),
                _ => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(parse(b"\xff,,\n"), Err(RecordError::NotUtf8));
    }

    #[test]
    fn write_sorts_quotes_and_round_trips() {
        let rows = vec![
            row("b.py", Some(ABC), Some(3)),
            row("x.dist-info/RECORD", None, None),
            row("a,\"q\".py", Some(ABC), Some(3)),
            row("../../../bin/tool", Some(ABC), Some(3)),
        ];
        let bytes = write(&rows);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(
            text,
            format!(
                "../../../bin/tool,{ABC},3\r\n\"a,\"\"q\"\".py\",{ABC},3\r\nb.py,{ABC},3\r\nx.dist-info/RECORD,,\r\n"
            )
        );
        let mut back = parse(&bytes).unwrap();
        let mut want = rows;
        back.sort_by(|a, b| a.path.cmp(&b.path));
        want.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(back, want);
    }
}
