//! Rewriting the shebang of a wheel's `.data/scripts` files.
//!
//! The wheel spec: "In wheel, scripts are packaged in
//! `{distribution}-{version}.data/scripts/`. If the first line of a file
//! in `scripts/` starts with exactly `b'#!python'`, rewrite to point to
//! the correct interpreter." pip replaces the whole first line (so
//! `#!pythonw -E` loses its flags) with `#!<interpreter>` and a newline,
//! and so does hoist, with the image's interpreter.
//!
//! The new file's hash goes into RECORD, which may be written before the
//! script in the layer's order, so planning reads each script once
//! ([`scan_script`]) for the new hash and size; the writer then reads it
//! again and skips the old first line ([`skip_first_line`]). Both reads
//! stream: no script is held in memory, and a first line is never kept
//! beyond its first 8 bytes.

use std::io::{BufRead, BufReader, Read};

use super::archive::{self, Zip};
use super::record::{HashAlgo, RecordHash};
use super::WheelError;

/// A script whose first line is replaced.
pub struct Rewritten {
    pub first_line: Vec<u8>,
    pub hash: RecordHash,
    pub size: u64,
}

/// Reads a `.data/scripts` file: when its first line starts with
/// `#!python`, the new first line and the new file's hash and size.
pub fn scan_script(
    zip: &mut Zip,
    wheel: &str,
    entry: &archive::Entry,
    expected: &RecordHash,
    interpreter: &str,
) -> Result<Option<Rewritten>, WheelError> {
    let reader = archive::open_entry(zip, wheel, entry, Some(expected))?;
    let mut br = BufReader::new(reader);
    let (first_len, rewrite) = match skip_first_line(&mut br, entry.size) {
        Ok(r) => r,
        Err(e) => return Err(br.into_inner().read_error(e)),
    };
    if !rewrite {
        return Ok(None);
    }
    let first_line = format!("#!{interpreter}\n").into_bytes();
    let mut new = HashAlgo::Sha256.hasher();
    new.update(&first_line);
    let mut buf = vec![0u8; 64 * 1024];
    let mut rest = (&mut br).take(entry.size.saturating_sub(first_len) + 1);
    loop {
        match rest.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => new.update(&buf[..n]),
            Err(e) => return Err(br.into_inner().read_error(e)),
        }
    }
    // The whole file was read: check it now, so the new hash is that of
    // the right bytes.
    br.into_inner().finish(entry.size)?;
    Ok(Some(Rewritten {
        size: first_line.len() as u64 + entry.size - first_len,
        first_line,
        hash: new.finish(),
    }))
}

/// Consumes the first line (through its `\n`, or all when there is
/// none); returns its length and whether it starts with `#!python`.
/// Stops past `limit` bytes, for data that inflates beyond its size.
pub fn skip_first_line(br: &mut impl BufRead, limit: u64) -> std::io::Result<(u64, bool)> {
    let mut head: Vec<u8> = Vec::with_capacity(8);
    let mut len = 0u64;
    loop {
        let buf = br.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let want = 8 - head.len().min(8);
        head.extend_from_slice(&buf[..take.min(want)]);
        br.consume(take);
        len += take as u64;
        if done || len > limit {
            break;
        }
    }
    Ok((len, head.starts_with(b"#!python")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_lines() {
        for (text, len, rewrite) in [
            (&b"#!python\nrest"[..], 9, true),
            (b"#!pythonw -E\r\nrest", 14, true),
            (b"#!python", 8, true),
            (b"#!/usr/bin/python\n", 18, false),
            (b"#!pytho\n", 8, false),
            (b"", 0, false),
            (b"\n#!python\n", 1, false),
        ] {
            let mut br = BufReader::with_capacity(3, text);
            assert_eq!(
                skip_first_line(&mut br, 100).unwrap(),
                (len, rewrite),
                "{text:?}"
            );
        }
    }
}
