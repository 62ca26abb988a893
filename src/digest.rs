//! Content digests and the readers and writers that compute them.
//!
//! Every blob hoist touches is named by a [`Digest`]. A `Digest` can only
//! hold a valid `sha256:<64 lower-case hex>` string, so once a value has
//! this type it is safe to use in a file name inside the store or an
//! archive: no `..`, no separators, no surprises. Parsing happens once, at
//! the edge (a manifest, an index, a command-line argument).
//!
//! The hashing reader and writer let the layer writer and the importers
//! compute digests in the same pass that moves the bytes, so no blob is
//! ever read twice or held whole in memory.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A validated `sha256:<64 hex>` content digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

/// Why a string is not a digest hoist accepts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("digest `{0}` has no algorithm prefix (expected `sha256:<64 hex digits>`)")]
    NoAlgorithm(String),
    #[error("digest `{0}` uses algorithm `{1}`; hoist supports sha256 only")]
    UnsupportedAlgorithm(String, String),
    #[error("digest `{0}` is not 64 lower-case hex digits after `sha256:`")]
    BadHex(String),
}

impl Digest {
    /// Parses `sha256:<64 lower-case hex>`.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let Some((algo, hex)) = s.split_once(':') else {
            return Err(DigestError::NoAlgorithm(s.to_owned()));
        };
        if algo != "sha256" {
            return Err(DigestError::UnsupportedAlgorithm(
                s.to_owned(),
                algo.to_owned(),
            ));
        }
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::BadHex(s.to_owned()));
        }
        Ok(Digest(s.to_owned()))
    }

    /// The digest of a finished SHA-256 computation.
    pub fn from_sha256(hasher: Sha256) -> Self {
        Digest(format!("sha256:{}", hex::encode(hasher.finalize())))
    }

    /// The digest of a byte slice.
    /// The SHA-256 digest of everything `r` yields, read in 64 KiB
    /// pieces (memory stays flat whatever the size).
    pub fn of_reader(mut r: impl std::io::Read) -> std::io::Result<Self> {
        let mut h = <Sha256 as sha2::Digest>::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(Self::from_sha256(h));
            }
            sha2::Digest::update(&mut h, &buf[..n]);
        }
    }

    pub fn of(bytes: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(bytes);
        Self::from_sha256(h)
    }

    /// The hex part, safe to use as a file name.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The full `sha256:...` form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short form for people: the first 12 hex digits.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The digest of what was written so far followed by `zeros` zero
    /// bytes, leaving this writer as it is.
    pub fn digest_with_zeros(&self, zeros: u64) -> Digest {
        let mut h = self.hasher.clone();
        let block = [0u8; 512];
        let mut left = zeros;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            h.update(&block[..n]);
            left -= n as u64;
        }
        Digest::from_sha256(h)
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Returns the inner writer, the digest and the size of what was written.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_sha256(self.hasher), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that checks, when it reaches the end, that what it read has
/// the expected digest and size. A mismatch surfaces as an
/// `io::ErrorKind::InvalidData` error from the final `read`, so a consumer
/// that reads to the end can never use unverified bytes silently.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    expected: Digest,
    expected_size: Option<u64>,
    verified: bool,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest, expected_size: Option<u64>) -> Self {
        VerifyingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
            expected,
            expected_size,
            verified: false,
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.hasher.update(&buf[..n]);
            self.count += n as u64;
            if let Some(size) = self.expected_size {
                if self.count > size {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "blob {} is larger than its descriptor's size {size}",
                            self.expected
                        ),
                    ));
                }
            }
        } else if !self.verified && !buf.is_empty() {
            let actual = Digest::from_sha256(std::mem::take(&mut self.hasher));
            if actual != self.expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "blob content does not match its digest: expected {}, got {actual}",
                        self.expected
                    ),
                ));
            }
            if let Some(size) = self.expected_size {
                if size != self.count {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "blob {} has {} bytes, its descriptor says {size}",
                            self.expected, self.count
                        ),
                    ));
                }
            }
            self.verified = true;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok = format!("sha256:{}", "a".repeat(64));
        let cases: &[(&str, bool)] = &[
            (&ok, true),
            ("sha256:abc", false),
            ("sha512:aa", false),
            ("", false),
            (&format!("sha256:{}", "A".repeat(64)), false),
            (&format!("sha256:{}", "g".repeat(64)), false),
            (&format!("sha256:../{}", "a".repeat(61)), false),
            (&"a".repeat(64), false),
        ];
        for (s, want) in cases {
            assert_eq!(Digest::parse(s).is_ok(), *want, "{s}");
        }
    }

    #[test]
    fn of_empty() {
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn verifying_reader_detects_mismatch() {
        let mut out = Vec::new();
        let good = Digest::of(b"hello");
        VerifyingReader::new(&b"hello"[..], good.clone(), Some(5))
            .read_to_end(&mut out)
            .unwrap();
        let err = VerifyingReader::new(&b"hellx"[..], good.clone(), Some(5))
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let err = VerifyingReader::new(&b"hello"[..], good, Some(4))
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
