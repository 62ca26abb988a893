//! Layer compression: gzip (the default, readable by every runtime), zstd
//! (smaller and faster, needs Docker 23+ or podman), or none.
//!
//! Settings are fixed (gzip level 6 with zlib-rs, zstd level 3, the
//! stream cut into 1 MiB chunks compressed on every core, see
//! [`super::parallel`]) because the compressed bytes are part of the image's
//! identity: changing a setting changes every digest.
//!
//! Reading a base layer goes through [`decode`]: the layer's media type
//! (every OCI and Docker spelling, see [`LayerType::parse`]) says how it is
//! compressed, and a media type hoist does not know is refused by name
//! rather than guessed at. The decoders read what real writers make:
//! gzip with several members (`MultiGzDecoder`, not `GzDecoder`, which
//! stops after the first) and zstd with several frames, skippable ones
//! included (the `zstd:chunked` table of contents sits in a skippable
//! frame; the zstd decoder steps over it, so the tar reader never sees
//! it). Each decoder checks its stream's own checksum (gzip CRC-32 and
//! length, zstd's content checksum when the frame has one) as the stream
//! ends, and a stream cut short is an error, never a short tar.

use std::io::{self, BufRead, BufReader, Read, Write};

use crate::image::media;

use super::parallel::{self, ChunkedEncoder, Codec};

/// How a layer's tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    None,
    #[default]
    Gzip,
    Zstd,
}

impl Compression {
    /// Parses the `--compression` value.
    pub fn parse(s: &str) -> Result<Compression, String> {
        match s {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            "none" | "uncompressed" => Ok(Compression::None),
            other => Err(format!(
                "unknown compression `{other}`: use gzip (default), zstd or none"
            )),
        }
    }

    /// The OCI media type of a layer compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => media::OCI_LAYER,
            Compression::Gzip => media::OCI_LAYER_GZIP,
            Compression::Zstd => media::OCI_LAYER_ZSTD,
        }
    }

    /// Tells the compression from a stream's first bytes. A zstd stream
    /// may open with a skippable frame (magic `0x184D2A50`..`5F`).
    pub fn sniff(prefix: &[u8]) -> Compression {
        if prefix.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
            || (prefix.len() >= 4 && prefix[0] & 0xf0 == 0x50 && prefix[1..4] == [0x2a, 0x4d, 0x18])
        {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// Wraps `w` in an encoder for this compression, on as many threads
    /// as [`parallel::default_threads`] says.
    pub fn encoder<W: Write>(self, w: W) -> io::Result<Encoder<W>> {
        let threads = parallel::default_threads()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(self.encoder_threads(w, threads))
    }

    /// Wraps `w` in an encoder using `threads` threads; the bytes are the
    /// same whatever the number.
    pub fn encoder_threads<W: Write>(self, w: W, threads: usize) -> Encoder<W> {
        match self {
            Compression::None => Encoder::None(w),
            Compression::Gzip => {
                Encoder::Chunked(Box::new(ChunkedEncoder::new(w, Codec::Gzip, threads)))
            }
            Compression::Zstd => {
                Encoder::Chunked(Box::new(ChunkedEncoder::new(w, Codec::Zstd, threads)))
            }
        }
    }
}

/// A compressing writer; [`Encoder::finish`] writes the trailer.
pub enum Encoder<W: Write> {
    None(W),
    Chunked(Box<ChunkedEncoder<W>>),
}

impl<W: Write> Encoder<W> {
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Chunked(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Chunked(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Chunked(e) => e.flush(),
        }
    }
}

/// What a layer media type says about the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerType {
    pub compression: Compression,
    /// A Docker "foreign" or OCI "nondistributable" layer: the kind
    /// Windows bases use, which registries and tools may not copy.
    pub foreign: bool,
}

/// A layer media type hoist cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown layer media type `{0}`: hoist reads OCI and Docker tar layers, uncompressed, gzip or zstd")]
pub struct UnknownLayerType(pub String);

impl LayerType {
    /// Parses a layer media type in any spelling OCI or Docker uses:
    /// `application/vnd.oci.image.layer.v1.tar` (and `+gzip`, `+zstd`),
    /// the OCI `nondistributable` forms, Docker's
    /// `application/vnd.docker.image.rootfs.diff.tar.gzip` (and `.tar`,
    /// `.tar.zstd`) and its `foreign` form; `.gzip`/`.zstd` and
    /// `+gzip`/`+zstd` suffixes are accepted on either family.
    pub fn parse(media_type: &str) -> Result<LayerType, UnknownLayerType> {
        const BASES: [(&str, bool); 4] = [
            ("application/vnd.oci.image.layer.v1.tar", false),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar",
                true,
            ),
            ("application/vnd.docker.image.rootfs.diff.tar", false),
            ("application/vnd.docker.image.rootfs.foreign.diff.tar", true),
        ];
        let unknown = || UnknownLayerType(media_type.to_owned());
        let (rest, foreign) = BASES
            .iter()
            .find_map(|(b, f)| media_type.strip_prefix(b).map(|r| (r, *f)))
            .ok_or_else(unknown)?;
        let compression = match rest {
            "" => Compression::None,
            "+gzip" | ".gzip" => Compression::Gzip,
            "+zstd" | ".zstd" => Compression::Zstd,
            _ => return Err(unknown()),
        };
        Ok(LayerType {
            compression,
            foreign,
        })
    }
}

/// Returns a reader of the uncompressed tar stream in `r`, decoded as the
/// layer's media type says (see the module docs for what each decoder
/// accepts and checks).
pub fn decode<'a, R: Read + 'a>(media_type: &str, r: R) -> Result<Box<dyn Read + 'a>, DecodeError> {
    let kind = LayerType::parse(media_type)?.compression;
    Ok(decoder(kind, BufReader::with_capacity(256 * 1024, r))?)
}

/// Why [`decode`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Unknown(#[from] UnknownLayerType),
    #[error("starting the decoder: {0}")]
    Io(#[from] io::Error),
}

fn decoder<'a, B: BufRead + 'a>(kind: Compression, buf: B) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match kind {
        Compression::None => Box::new(buf),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buf)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buf)?),
    })
}

/// Returns a reader of the uncompressed tar stream in `r`, whatever its
/// compression, told from its magic bytes (for layers hoist wrote itself
/// or whose media type is not at hand; base layers go through [`decode`]).
pub fn decompress<'a, R: Read + 'a>(r: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut buf = BufReader::with_capacity(256 * 1024, r);
    let kind = Compression::sniff(buf.fill_buf()?);
    Ok((kind, decoder(kind, buf)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_each_compression() {
        let data = b"hello layer".repeat(1000);
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut enc = c.encoder(Vec::new()).unwrap();
            enc.write_all(&data).unwrap();
            let bytes = enc.finish().unwrap();
            let (kind, mut r) = decompress(&bytes[..]).unwrap();
            assert_eq!(kind, c);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let mut enc = Compression::Gzip.encoder(Vec::new()).unwrap();
        enc.write_all(&b"x".repeat(100_000)).unwrap();
        let bytes = enc.finish().unwrap();
        let (_, mut r) = decompress(&bytes[..bytes.len() / 2]).unwrap();
        assert!(r.read_to_end(&mut Vec::new()).is_err());
    }

    /// A small layer tar with a folder, two files and a symlink.
    fn sample_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, kind: tar::EntryType, data: &[u8]| {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            if kind == tar::EntryType::Symlink {
                h.set_link_name("a.txt").unwrap();
            }
            h.set_cksum();
            b.append_data(&mut h, path, data).unwrap();
        };
        add("etc/", tar::EntryType::Directory, b"");
        add(
            "etc/a.txt",
            tar::EntryType::Regular,
            &b"alpha\n".repeat(5000),
        );
        add("etc/b.bin", tar::EntryType::Regular, &[7u8; 70_000]);
        add("etc/link", tar::EntryType::Symlink, b"");
        b.into_inner().unwrap()
    }

    fn gzip_members(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            let mut e = Compression::Gzip.encoder(Vec::new()).unwrap();
            e.write_all(p).unwrap();
            out.extend(e.finish().unwrap());
        }
        out
    }

    fn zstd_frame(data: &[u8]) -> Vec<u8> {
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        e.include_checksum(true).unwrap();
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// A skippable frame (RFC 8878 section 3.1.2) with magic `0x184D2A5n`.
    fn skippable(n: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x50 | n, 0x2a, 0x4d, 0x18];
        out.extend((payload.len() as u32).to_le_bytes());
        out.extend(payload);
        out
    }

    /// Every encoding a real writer makes, by hand.
    fn encodings(tar: &[u8]) -> Vec<(&'static str, Compression, Vec<u8>)> {
        let (a, rest) = tar.split_at(1000);
        let (b, c) = rest.split_at(rest.len() / 2);
        let toc = br#"{"version":1,"entries":[]}"#;
        vec![
            ("uncompressed", Compression::None, tar.to_vec()),
            ("gzip, one member", Compression::Gzip, gzip_members(&[tar])),
            ("gzip, three members", Compression::Gzip, gzip_members(&[a, b, c])),
            ("zstd, one frame", Compression::Zstd, zstd_frame(tar)),
            (
                "zstd, skippable frame then two frames",
                Compression::Zstd,
                [skippable(0, b"hello"), zstd_frame(a), zstd_frame(rest)].concat(),
            ),
            (
                "zstd:chunked shape: frames, then a table of contents and footer in skippable frames",
                Compression::Zstd,
                [
                    zstd_frame(a),
                    zstd_frame(b),
                    zstd_frame(c),
                    skippable(1, &zstd_frame(toc)),
                    skippable(1, &[0u8; 64]),
                ]
                .concat(),
            ),
        ]
    }

    const SPELLINGS: [(&str, Compression, bool); 15] = [
        (
            "application/vnd.oci.image.layer.v1.tar",
            Compression::None,
            false,
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Gzip,
            false,
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::Zstd,
            false,
        ),
        (
            "application/vnd.oci.image.layer.v1.tar.gzip",
            Compression::Gzip,
            false,
        ),
        (
            "application/vnd.oci.image.layer.v1.tar.zstd",
            Compression::Zstd,
            false,
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar",
            Compression::None,
            true,
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            Compression::Gzip,
            true,
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
            Compression::Zstd,
            true,
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar",
            Compression::None,
            false,
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Compression::Gzip,
            false,
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar+gzip",
            Compression::Gzip,
            false,
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar.zstd",
            Compression::Zstd,
            false,
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar+zstd",
            Compression::Zstd,
            false,
        ),
        (
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            Compression::Gzip,
            true,
        ),
        (
            "application/vnd.docker.image.rootfs.foreign.diff.tar",
            Compression::None,
            true,
        ),
    ];

    #[test]
    fn every_spelling_reads_the_same_tree() {
        let tar = sample_tar();
        let mut checked = 0;
        for (mt, kind, foreign) in SPELLINGS {
            let parsed = LayerType::parse(mt).unwrap();
            assert_eq!(
                (parsed.compression, parsed.foreign),
                (kind, foreign),
                "{mt}"
            );
            for (what, c, bytes) in encodings(&tar) {
                if c != kind {
                    continue;
                }
                let mut out = Vec::new();
                decode(mt, &bytes[..])
                    .unwrap()
                    .read_to_end(&mut out)
                    .unwrap_or_else(|e| panic!("{mt}, {what}: {e}"));
                assert!(out == tar, "{mt}, {what}: the tar differs");
                // The sniffing reader agrees, skippable frame first or not.
                let (sniffed, mut r) = decompress(&bytes[..]).unwrap();
                assert_eq!(sniffed, c, "{what}");
                let mut again = Vec::new();
                r.read_to_end(&mut again).unwrap();
                assert!(again == tar, "{what}: sniffed read differs");
                checked += 1;
            }
        }
        // 4 uncompressed spellings x 1 encoding, 6 gzip x 2, 5 zstd x 3.
        assert_eq!(checked, 4 + 6 * 2 + 5 * 3, "every pairing was tried");
    }

    #[test]
    fn unknown_media_types_are_refused_by_name() {
        for mt in [
            "",
            "application/octet-stream",
            "application/vnd.oci.image.layer.v1.tar+bzip2",
            "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
            "application/vnd.docker.image.rootfs.diff.tar.gz2",
            "application/vnd.oci.image.config.v1+json",
        ] {
            let err = decode(mt, &b""[..]).err().expect(mt);
            assert!(err.to_string().contains(&format!("`{mt}`")), "{err}");
        }
    }

    #[test]
    fn damaged_streams_are_errors() {
        let tar = sample_tar();
        let gz = gzip_members(&[&tar]);
        let zs = zstd_frame(&tar);
        let flip = |b: &[u8], at: usize| {
            let mut b = b.to_vec();
            b[at] ^= 0x01;
            b
        };
        let cases: Vec<(&str, &str, Vec<u8>)> = vec![
            (
                "gzip, CRC byte flipped",
                media::OCI_LAYER_GZIP,
                flip(&gz, gz.len() - 8),
            ),
            (
                "gzip, length byte flipped",
                media::OCI_LAYER_GZIP,
                flip(&gz, gz.len() - 1),
            ),
            (
                "gzip, cut short",
                media::OCI_LAYER_GZIP,
                gz[..gz.len() - 20].to_vec(),
            ),
            (
                "gzip, second member cut short",
                media::OCI_LAYER_GZIP,
                [gz.clone(), gz[..30].to_vec()].concat(),
            ),
            (
                "zstd, checksum flipped",
                media::OCI_LAYER_ZSTD,
                flip(&zs, zs.len() - 1),
            ),
            (
                "zstd, cut short",
                media::OCI_LAYER_ZSTD,
                zs[..zs.len() - 20].to_vec(),
            ),
            (
                "zstd, skippable frame cut short",
                media::OCI_LAYER_ZSTD,
                [zs.clone(), skippable(0, &[1; 50])[..20].to_vec()].concat(),
            ),
            (
                "gzip bytes labelled zstd",
                media::OCI_LAYER_ZSTD,
                gz.clone(),
            ),
        ];
        for (what, mt, bytes) in cases {
            let res = decode(mt, &bytes[..]).and_then(|mut r| Ok(r.read_to_end(&mut Vec::new())?));
            assert!(res.is_err(), "{what} was read without an error");
        }
    }
}
