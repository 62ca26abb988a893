//! Subresource Integrity strings, as npm writes them in `integrity`.
//!
//! A lockfile's `integrity` is an SRI string (W3C Subresource Integrity, as
//! read by npm's `ssri`): one or more whitespace-separated
//! `<algorithm>-<base64 digest>[?options]` tokens. Like `ssri` we ignore
//! algorithms we do not know and verify against the strongest hash present,
//! so `sha1-… sha512-…` is checked with sha512. Unlike `ssri` we decode each
//! digest and check its length at parse time, so a malformed lockfile fails
//! before anything is downloaded.
//!
//! sha1 (npm 4 and older publishes, still in some old lockfiles) is
//! verified like the others when it is the only hash present; npm does the
//! same.

use std::fmt;
use std::io;

use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// Hash algorithms npm writes, weakest first (the derived order is strength).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha1" => Some(Algorithm::Sha1),
            "sha256" => Some(Algorithm::Sha256),
            "sha384" => Some(Algorithm::Sha384),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha384 => 48,
            Algorithm::Sha512 => 64,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One algorithm and its decoded digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hash {
    algorithm: Algorithm,
    digest: Vec<u8>,
}

impl Hash {
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// Lower-case hex of the digest, for file names in the store.
    pub fn hex(&self) -> String {
        hex::encode(&self.digest)
    }
}

/// The SRI form, `sha512-<base64>`.
impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.algorithm, encode_base64(&self.digest))
    }
}

/// A parsed SRI string holding at least one hash hoist knows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Integrity {
    hashes: Vec<Hash>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegrityError {
    #[error("integrity `{0}` has no sha512, sha384, sha256 or sha1 hash")]
    NoSupportedHash(String),
    #[error("integrity `{value}`: the {algorithm} digest is not valid base64")]
    BadBase64 { value: String, algorithm: Algorithm },
    #[error("integrity `{value}`: the {algorithm} digest is {len} bytes, expected {expected}")]
    BadLength {
        value: String,
        algorithm: Algorithm,
        len: usize,
        expected: usize,
    },
    #[error("integrity mismatch: expected {expected}, got {actual}")]
    Mismatch { expected: String, actual: String },
}

impl Integrity {
    /// Parses an SRI string. Tokens with unknown algorithms are skipped, as
    /// `ssri` does; `?options` after a digest are ignored.
    pub fn parse(value: &str) -> Result<Integrity, IntegrityError> {
        let mut hashes = Vec::new();
        for token in value.split_ascii_whitespace() {
            let Some((name, rest)) = token.split_once('-') else {
                continue;
            };
            let Some(algorithm) = Algorithm::from_name(name) else {
                continue;
            };
            let encoded = rest.split_once('?').map_or(rest, |(d, _)| d);
            let digest = decode_base64(encoded).ok_or_else(|| IntegrityError::BadBase64 {
                value: value.to_owned(),
                algorithm,
            })?;
            if digest.len() != algorithm.digest_len() {
                return Err(IntegrityError::BadLength {
                    value: value.to_owned(),
                    algorithm,
                    len: digest.len(),
                    expected: algorithm.digest_len(),
                });
            }
            hashes.push(Hash { algorithm, digest });
        }
        if hashes.is_empty() {
            return Err(IntegrityError::NoSupportedHash(value.to_owned()));
        }
        Ok(Integrity { hashes })
    }

    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The hash npm checks against: the strongest algorithm present (the
    /// first of several with the same algorithm).
    pub fn strongest(&self) -> &Hash {
        // `parse` never builds an empty list, so index 0 exists.
        let mut best = &self.hashes[0];
        for h in &self.hashes[1..] {
            if h.algorithm > best.algorithm {
                best = h;
            }
        }
        best
    }

    /// A streaming checker for the strongest hash.
    pub fn verifier(&self) -> Verifier {
        let expected = self.strongest().clone();
        let state = match expected.algorithm {
            Algorithm::Sha256 => State::Sha256(Sha256::new()),
            Algorithm::Sha384 => State::Sha384(Sha384::new()),
            Algorithm::Sha512 => State::Sha512(Sha512::new()),
            Algorithm::Sha1 => State::Sha1(Sha1::new()),
        };
        Verifier { expected, state }
    }

    /// Checks a whole buffer at once.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), IntegrityError> {
        let mut v = self.verifier();
        v.update(bytes);
        v.finish()
    }
}

/// The SRI form of every hash, space-separated.
impl fmt::Display for Integrity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, h) in self.hashes.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{h}")?;
        }
        Ok(())
    }
}

enum State {
    Sha1(Sha1),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

/// Hashes bytes as they stream past and compares at the end. Also an
/// [`io::Write`], so it can sit in a tee while a tarball is read.
pub struct Verifier {
    expected: Hash,
    state: State,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("expected", &self.expected.to_string())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Sha1(h) => h.update(data),
            State::Sha256(h) => h.update(data),
            State::Sha384(h) => h.update(data),
            State::Sha512(h) => h.update(data),
        }
    }

    /// The hash this verifier compares against.
    pub fn expected(&self) -> &Hash {
        &self.expected
    }

    pub fn finish(self) -> Result<(), IntegrityError> {
        let actual = match self.state {
            State::Sha1(h) => h.finalize().to_vec(),
            State::Sha256(h) => h.finalize().to_vec(),
            State::Sha384(h) => h.finalize().to_vec(),
            State::Sha512(h) => h.finalize().to_vec(),
        };
        if actual == self.expected.digest {
            Ok(())
        } else {
            let actual = Hash {
                algorithm: self.expected.algorithm,
                digest: actual,
            };
            Err(IntegrityError::Mismatch {
                expected: self.expected.to_string(),
                actual: actual.to_string(),
            })
        }
    }
}

impl io::Write for Verifier {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Standard-alphabet base64 (RFC 4648 §4), as Node's `Buffer` reads it
/// for `ssri`: padding optional (but when present it must be right), stray
/// low bits in the last character tolerated.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    BASE64.decode(text).ok()
}

fn encode_base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_SHA1: &str = "sha1-nefG/e5fV49ty/peeLiK5KuqGRM=";
    const HELLO_SHA256: &str = "sha256-16wc7CIiwC/C/kQvGGUAEbGo8V9MIFfKkuZMtO4venw=";
    const HELLO_SHA384: &str =
        "sha384-AWC6OvhlViJgZRrhO6JLUjjkj3NO8UHpQkqX+ztzKzKCFl8bFbLhOGxKghh6rtqt";
    const HELLO_SHA512: &str = "sha512-6v4IHpk8LhlrMxoEJQsbdqP/X7h2og9ojpR20GiIPC2rrYLY5HSaZg3bXMqtfBm/DzmeGVV69LUsE8YvhOvDTw==";

    #[test]
    fn base64_round_trips() {
        let cases: &[(&[u8], &str)] = &[
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (&[0xfb, 0xff, 0xbf], "+/+/"),
        ];
        for (raw, enc) in cases {
            assert_eq!(encode_base64(raw), *enc);
            assert_eq!(decode_base64(enc).as_deref(), Some(*raw), "{enc}");
        }
        // Unpadded is accepted; broken padding and foreign bytes are not.
        assert_eq!(decode_base64("Zm8").as_deref(), Some(&b"fo"[..]));
        for bad in ["Zm8==", "Z", "Zm9v!", "Zm-v", "Zg=a", "====="] {
            assert_eq!(decode_base64(bad), None, "{bad}");
        }
    }

    #[test]
    fn parse_picks_strongest() {
        let cases: &[(String, Algorithm, usize)] = &[
            (HELLO_SHA512.to_owned(), Algorithm::Sha512, 1),
            (HELLO_SHA1.to_owned(), Algorithm::Sha1, 1),
            (format!("{HELLO_SHA1} {HELLO_SHA512}"), Algorithm::Sha512, 2),
            (
                format!("{HELLO_SHA512}\n\t{HELLO_SHA256}"),
                Algorithm::Sha512,
                2,
            ),
            (
                format!("{HELLO_SHA256} {HELLO_SHA384}"),
                Algorithm::Sha384,
                2,
            ),
            (format!("md5-AAAA {HELLO_SHA256}"), Algorithm::Sha256, 1),
            (format!("{HELLO_SHA256}?foo=bar"), Algorithm::Sha256, 1),
        ];
        for (input, algorithm, count) in cases {
            let i = Integrity::parse(input).unwrap();
            assert_eq!(i.strongest().algorithm(), *algorithm, "{input}");
            assert_eq!(i.hashes().len(), *count, "{input}");
        }
    }

    #[test]
    fn parse_errors_name_the_value() {
        let cases: &[(&str, IntegrityError)] = &[
            ("", IntegrityError::NoSupportedHash(String::new())),
            (
                "md5-AAAA",
                IntegrityError::NoSupportedHash("md5-AAAA".into()),
            ),
            ("sha512", IntegrityError::NoSupportedHash("sha512".into())),
            (
                "sha512-!!!",
                IntegrityError::BadBase64 {
                    value: "sha512-!!!".into(),
                    algorithm: Algorithm::Sha512,
                },
            ),
            (
                "sha512-Zm9v",
                IntegrityError::BadLength {
                    value: "sha512-Zm9v".into(),
                    algorithm: Algorithm::Sha512,
                    len: 3,
                    expected: 64,
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(Integrity::parse(input).unwrap_err(), *want, "{input:?}");
        }
    }

    #[test]
    fn display_is_sri() {
        let input = format!("{HELLO_SHA1} {HELLO_SHA512}");
        let i = Integrity::parse(&input).unwrap();
        assert_eq!(i.to_string(), input);
        assert_eq!(i.strongest().to_string(), HELLO_SHA512);
        assert_eq!(i.strongest().hex().len(), 128);
    }

    #[test]
    fn verify_each_algorithm() {
        for sri in [HELLO_SHA1, HELLO_SHA256, HELLO_SHA384, HELLO_SHA512] {
            let i = Integrity::parse(sri).unwrap();
            assert_eq!(i.verify(b"hello npm"), Ok(()), "{sri}");
            let err = i.verify(b"hello npm!").unwrap_err();
            assert!(
                matches!(&err, IntegrityError::Mismatch { expected, .. } if expected == sri),
                "{err}"
            );
        }
    }

    #[test]
    fn verifier_streams_and_writes() {
        use std::io::Write as _;
        let i = Integrity::parse(HELLO_SHA512).unwrap();
        let mut v = i.verifier();
        v.write_all(b"hello ").unwrap();
        v.update(b"npm");
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn the_strongest_hash_decides() {
        let both = Integrity::parse(&format!("{HELLO_SHA1} {HELLO_SHA512}")).unwrap();
        assert_eq!(both.verify(b"hello npm"), Ok(()));
        assert_eq!(both.verifier().expected().algorithm(), Algorithm::Sha512);
        // A wrong sha1 beside a right sha512 does not matter, as in ssri.
        let wrong_sha1 = "sha1-AAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let mixed = Integrity::parse(&format!("{wrong_sha1} {HELLO_SHA512}")).unwrap();
        assert_eq!(mixed.verify(b"hello npm"), Ok(()));
    }
}
