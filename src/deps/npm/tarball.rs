//! Where an npm tarball's entries land, and with what mode.
//!
//! npm unpacks with pacote over node-tar, and hoist must produce the same
//! files without a temporary tree, so the rules are reproduced here as pure
//! functions the layer writer calls per entry:
//!
//! - The first path component is stripped (node-tar's `strip: 1`). It is
//!   usually `package/`, but any name is allowed (`node/`, `.`), since
//!   npm never looks at it. An entry with nothing left (the top folder
//!   itself, or a loose file beside it) is skipped.
//! - What is left must stay inside the package: an absolute path or a `..`
//!   component is an error (node-tar only warns and skips; the issue asks
//!   for a clear failure), as is an empty component in the middle of the
//!   path. `.` components are dropped. A trailing `/` (directory entries)
//!   is fine.
//! - Only regular files are written. pacote drops hard and symbolic links
//!   and every other type, and does not extract directory entries: folders
//!   are created as needed, so they are always 0755.
//! - A file's mode is pacote's `((mode | 0o666) & ~umask) | 0o600`, with the
//!   usual umask 022: `0o644` plus whatever execute bits the tarball had,
//!   so `0o744` stays `0o744`; a bin target is `0o755` (bin-links'
//!   `fixBin`). Set-id and sticky bits are dropped, as hoist drops them for
//!   every package.
//! - pacote renames `.gitignore` to `.npmignore` (npm once published
//!   `.npmignore` files that way), unless an `.npmignore` already came
//!   earlier in the same folder, in which case the `.gitignore` is dropped:
//!   [`IgnoreFileRename`].
//! - When an entry's path comes twice, the last one wins, as it does when
//!   node-tar writes them to disk one after the other.
//! - bin-links' `fixBin` turns a bin target's CRLF shebang line into LF
//!   (a `#!...\r\n` first line within the first 2048 bytes), decoding and
//!   re-encoding the file as UTF-8 as Node does: [`fix_crlf_shebang`].
//!
//! [`scan`] applies these rules to a whole tarball stream, once, and keeps
//! for each file its place among the archive's entries ([`TarFile`]), so
//! the layer writer can find it again in a second read without keeping
//! any content. [`TarEntries`] is the one way both reads walk a tarball:
//! it bounds the decompressed size ([`MAX_TARBALL_BYTES`]) and the bytes
//! the `tar` crate buffers for one header (GNU long names and PAX records,
//! [`MAX_HEADER_BYTES`]), since a tarball is untrusted input even when its
//! integrity matches the lockfile.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::rc::Rc;

use super::lockfile::InstallPath;
use super::path::RelPath;

/// The most a tarball may expand to: 4 GiB (the largest npm packages,
/// native binaries, are a few hundred MB).
pub const MAX_TARBALL_BYTES: u64 = 4 << 30;

/// The most bytes the `tar` crate may consume for one entry's headers,
/// long names and PAX records (it buffers them whole).
pub const MAX_HEADER_BYTES: u64 = 1 << 20;

/// The largest bin target whose CRLF shebang is rewritten (the rewrite
/// needs the whole file in memory, as bin-links reads it).
pub const MAX_CRLF_BIN_BYTES: u64 = 64 << 20;

/// The mode of every folder in an installed package.
pub const DIR_MODE: u32 = 0o755;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TarballError {
    #[error("`{package}`: tarball entry `{entry}` is an absolute path")]
    Absolute { package: String, entry: String },
    #[error("`{package}`: tarball entry `{entry}` leaves the package (`..`)")]
    ParentDir { package: String, entry: String },
    #[error("`{package}`: tarball entry `{entry}` has an empty path component")]
    EmptyComponent { package: String, entry: String },
    #[error("`{package}`: tarball entry `{entry}` contains a NUL byte")]
    Nul { package: String, entry: String },
    #[error("`{package}`: tarball entry `{entry}` is not UTF-8")]
    NotUtf8 { package: String, entry: String },
    #[error(
        "`{package}`: bin target `{entry}` has a CRLF shebang and is {size} bytes; \
         hoist rewrites such files only up to {MAX_CRLF_BIN_BYTES} bytes"
    )]
    CrlfBinTooLarge {
        package: String,
        entry: String,
        size: u64,
    },
}

/// Why a tarball could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Entry(#[from] TarballError),
    #[error("`{package}`: the tarball is not a valid gzipped tar: {source}")]
    Format {
        package: String,
        #[source]
        source: io::Error,
    },
}

type MakeError = fn(String, String) -> TarballError;
const ABSOLUTE: MakeError = |package, entry| TarballError::Absolute { package, entry };
const PARENT_DIR: MakeError = |package, entry| TarballError::ParentDir { package, entry };
const EMPTY_COMPONENT: MakeError = |package, entry| TarballError::EmptyComponent { package, entry };
const NUL: MakeError = |package, entry| TarballError::Nul { package, entry };

/// The path inside the package for a tarball entry of the package at
/// `package`; `Ok(None)` when the entry maps to nothing (the top folder).
pub fn entry_path(package: &InstallPath, entry: &str) -> Result<Option<RelPath>, TarballError> {
    let fail = |make: MakeError| Err(make(package.to_string(), entry.to_owned()));
    if entry.contains('\0') {
        return fail(NUL);
    }
    if entry.starts_with('/') {
        return fail(ABSOLUTE);
    }
    let Some((first, rest)) = entry.split_once('/') else {
        return Ok(None);
    };
    if first == ".." {
        return fail(PARENT_DIR);
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok(None);
    }
    let mut kept: Vec<&str> = Vec::new();
    for component in rest.split('/') {
        match component {
            "" => return fail(EMPTY_COMPONENT),
            "." => {}
            ".." => return fail(PARENT_DIR),
            c => kept.push(c),
        }
    }
    if kept.is_empty() {
        return Ok(None);
    }
    // Every component was checked above, so this cannot fail; map the
    // impossible case to the closest error rather than panic.
    match RelPath::new(&kept.join("/")) {
        Ok(path) => Ok(Some(path)),
        Err(_) => fail(EMPTY_COMPONENT),
    }
}

/// The mode npm gives a regular file from a tarball whose header says
/// `tar_mode`.
pub fn file_mode(tar_mode: u32, bin_target: bool) -> u32 {
    if bin_target {
        0o755
    } else {
        0o644 | (tar_mode & 0o111)
    }
}

/// pacote's `.gitignore` to `.npmignore` rename, which depends on the order
/// of entries in one tarball; use one per tarball.
#[derive(Debug, Default)]
pub struct IgnoreFileRename {
    seen_npmignore: HashSet<RelPath>,
}

impl IgnoreFileRename {
    pub fn new() -> Self {
        Self::default()
    }

    /// For a regular file at `path` (already through [`entry_path`]): the
    /// path to write it at, or `None` to drop it.
    pub fn file(&mut self, path: RelPath) -> Option<RelPath> {
        match path.file_name() {
            ".npmignore" => {
                self.seen_npmignore.insert(path.clone());
                Some(path)
            }
            ".gitignore" => {
                let renamed = match path.parent() {
                    Some(dir) => dir.join_str(".npmignore").ok()?,
                    None => RelPath::new(".npmignore").ok()?,
                };
                if self.seen_npmignore.contains(&renamed) {
                    None
                } else {
                    Some(renamed)
                }
            }
            _ => Some(path),
        }
    }
}

/// A regular file of a tarball, as the layer writer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarFile {
    /// Where it goes inside the package.
    pub path: RelPath,
    /// Its place among the archive's entries ([`TarEntries`] counts them).
    pub ordinal: u32,
    /// Its size in the tarball.
    pub size: u64,
    /// The mode to write.
    pub mode: u32,
    /// For a bin target whose shebang line ends in CRLF: its size once the
    /// line ends in LF ([`fix_crlf_shebang`]).
    pub fixed_size: Option<u64>,
}

impl TarFile {
    /// The size written to the layer.
    pub fn written_size(&self) -> u64 {
        self.fixed_size.unwrap_or(self.size)
    }
}

/// Reads a decompressed tarball's headers (and the content of bin targets
/// only) and returns its regular files as npm would write them, in the
/// order their paths first appear. `is_bin` says whether a path inside the
/// package is a bin target.
pub fn scan(
    package: &InstallPath,
    stream: impl Read,
    is_bin: &dyn Fn(&RelPath) -> bool,
) -> Result<Vec<TarFile>, ScanError> {
    let format = |source: io::Error| ScanError::Format {
        package: package.to_string(),
        source,
    };
    let mut tar = TarStream::new(stream);
    let entries = tar.entries().map_err(format)?;
    let mut files: Vec<TarFile> = Vec::new();
    let mut at: HashMap<RelPath, usize> = HashMap::new();
    let mut rename = IgnoreFileRename::new();
    for next in entries {
        let (ordinal, mut entry) = next.map_err(format)?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_contiguous()) {
            continue;
        }
        let raw = entry.path_bytes();
        let Ok(name) = std::str::from_utf8(&raw) else {
            return Err(TarballError::NotUtf8 {
                package: package.to_string(),
                entry: String::from_utf8_lossy(&raw).into_owned(),
            }
            .into());
        };
        let name = name.to_owned();
        let Some(path) = entry_path(package, &name)? else {
            continue;
        };
        let Some(path) = rename.file(path) else {
            continue;
        };
        let size = entry.size();
        let tar_mode = entry.header().mode().map_err(format)?;
        let bin = is_bin(&path);
        let fixed_size = if bin {
            crlf_fixed_size(package, &name, size, &mut entry).map_err(|e| match e {
                Fix::Tarball(t) => ScanError::Entry(t),
                Fix::Io(e) => format(e),
            })?
        } else {
            None
        };
        let file = TarFile {
            path: path.clone(),
            ordinal,
            size,
            mode: file_mode(tar_mode, bin),
            fixed_size,
        };
        match at.get(&path) {
            Some(&i) => files[i] = file,
            None => {
                at.insert(path, files.len());
                files.push(file);
            }
        }
    }
    Ok(files)
}

enum Fix {
    Tarball(TarballError),
    Io(io::Error),
}

/// The size of a bin target once its CRLF shebang is fixed, `None` when
/// it has none.
fn crlf_fixed_size(
    package: &InstallPath,
    name: &str,
    size: u64,
    content: &mut dyn Read,
) -> Result<Option<u64>, Fix> {
    let mut head = Vec::with_capacity(SHEBANG_WINDOW);
    content
        .take(SHEBANG_WINDOW as u64)
        .read_to_end(&mut head)
        .map_err(Fix::Io)?;
    if !has_crlf_shebang(&head) {
        return Ok(None);
    }
    if size > MAX_CRLF_BIN_BYTES {
        return Err(Fix::Tarball(TarballError::CrlfBinTooLarge {
            package: package.to_string(),
            entry: name.to_owned(),
            size,
        }));
    }
    let mut all = head;
    content.read_to_end(&mut all).map_err(Fix::Io)?;
    Ok(fix_crlf_shebang(&all).map(|fixed| fixed.len() as u64))
}

/// How much of a file bin-links looks at for a shebang.
const SHEBANG_WINDOW: usize = 2048;

/// bin-links' `isWindowsHashBang` on a file's first 2048 bytes:
/// `/^#![^\n]+\r\n/`.
fn has_crlf_shebang(head: &[u8]) -> bool {
    let head = &head[..head.len().min(SHEBANG_WINDOW)];
    if !head.starts_with(b"#!") {
        return false;
    }
    match head.iter().position(|b| *b == b'\n') {
        Some(nl) => nl >= 4 && head[nl - 1] == b'\r',
        None => false,
    }
}

/// bin-links' `dos2Unix`, when the file has a CRLF shebang: the file read
/// as UTF-8 (invalid bytes become U+FFFD, as Node decodes them), the first
/// line's `\r\n` made `\n`. `None` when the file has no CRLF shebang.
pub fn fix_crlf_shebang(content: &[u8]) -> Option<Vec<u8>> {
    if !has_crlf_shebang(content) {
        return None;
    }
    let text = String::from_utf8_lossy(content);
    // Invalid bytes before the first `\n` move it in the decoded text, so
    // it is found again there; the character before it is the `\r`.
    let nl = text.find('\n')?;
    let mut out = Vec::with_capacity(text.len() - 1);
    out.extend_from_slice(&text.as_bytes()[..nl - 1]);
    out.extend_from_slice(&text.as_bytes()[nl..]);
    Some(out)
}

/// The shared bounds of one tarball read.
#[derive(Debug)]
struct Guard {
    total: Cell<u64>,
    header_left: Cell<u64>,
}

/// A decompressed tarball stream that fails past the bounds.
pub struct Guarded<R> {
    inner: R,
    guard: Rc<Guard>,
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let header_left = self.guard.header_left.get();
        if header_left == 0 {
            return Err(io::Error::other(format!(
                "an entry's headers are larger than {MAX_HEADER_BYTES} bytes"
            )));
        }
        let len = buf
            .len()
            .min(usize::try_from(header_left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..len])?;
        if header_left != u64::MAX {
            self.guard.header_left.set(header_left - n as u64);
        }
        let total = self.guard.total.get() + n as u64;
        self.guard.total.set(total);
        if total > MAX_TARBALL_BYTES {
            return Err(io::Error::other(format!(
                "it expands to more than {MAX_TARBALL_BYTES} bytes"
            )));
        }
        Ok(n)
    }
}

/// A tarball read with bounds; [`TarStream::entries`] walks it.
pub struct TarStream<R: Read> {
    archive: tar::Archive<Guarded<R>>,
    guard: Rc<Guard>,
}

impl<R: Read> TarStream<R> {
    /// `stream` is the decompressed tar stream.
    pub fn new(stream: R) -> Self {
        let guard = Rc::new(Guard {
            total: Cell::new(0),
            header_left: Cell::new(u64::MAX),
        });
        TarStream {
            archive: tar::Archive::new(Guarded {
                inner: stream,
                guard: guard.clone(),
            }),
            guard,
        }
    }

    pub fn entries(&mut self) -> io::Result<TarEntries<'_, R>> {
        Ok(TarEntries {
            inner: self.archive.entries()?,
            guard: self.guard.clone(),
            next_ordinal: 0,
            next_header: 0,
        })
    }
}

/// The entries of a [`TarStream`], numbered from 0 in archive order.
pub struct TarEntries<'a, R: Read> {
    inner: tar::Entries<'a, Guarded<R>>,
    guard: Rc<Guard>,
    next_ordinal: u32,
    /// Where the next header starts: the `tar` crate skips what the
    /// caller left unread of the previous entry before reading it, and
    /// those bytes are not header bytes.
    next_header: u64,
}

impl<'a, R: Read> Iterator for TarEntries<'a, R> {
    type Item = io::Result<(u32, tar::Entry<'a, Guarded<R>>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let unread = self.next_header.saturating_sub(self.guard.total.get());
        self.guard
            .header_left
            .set(MAX_HEADER_BYTES.saturating_add(unread));
        let next = self.inner.next();
        self.guard.header_left.set(u64::MAX);
        let entry = match next? {
            Ok(entry) => entry,
            Err(e) => return Some(Err(e)),
        };
        self.next_header = entry
            .raw_file_position()
            .saturating_add(entry.size().div_ceil(512).saturating_mul(512));
        let ordinal = self.next_ordinal;
        self.next_ordinal = self.next_ordinal.saturating_add(1);
        Some(Ok((ordinal, entry)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::reader::tests::RawTar;

    fn scan_raw(tar: &[u8], bins: &[&str]) -> Result<Vec<TarFile>, ScanError> {
        let pkg = InstallPath::parse("node_modules/@s/a").unwrap();
        scan(&pkg, tar, &|p: &RelPath| bins.contains(&p.as_str()))
    }

    #[test]
    fn scan_keeps_what_npm_writes() {
        let tar = RawTar::new()
            .dir("package/")
            .file_meta("package/package.json", b"{}", 0o600, 501, 20)
            .file_meta(
                "package/bin/cli.js",
                b"#!/usr/bin/env node\r\nrun()\r\n",
                0o644,
                0,
                0,
            )
            .file_meta("package/bin/tool", b"#!/bin/sh\n", 0o700, 0, 0)
            .symlink("package/link", "index.js")
            .hardlink("package/hard", "package/package.json")
            .fifo("package/fifo")
            .file("package/.gitignore", b"x")
            .file("package/lib/.npmignore", b"y")
            .file("package/lib/.gitignore", b"dropped")
            .file("package/dup.js", b"first")
            .file("package/dup.js", b"second!")
            .file("README", b"outside the folder")
            .finish();
        let files = scan_raw(&tar, &["bin/cli.js"]).unwrap();
        let got: Vec<(&str, u32, u64, u32, Option<u64>)> = files
            .iter()
            .map(|f| (f.path.as_str(), f.ordinal, f.size, f.mode, f.fixed_size))
            .collect();
        assert_eq!(
            got,
            [
                ("package.json", 1, 2, 0o644, None),
                ("bin/cli.js", 2, 28, 0o755, Some(27)),
                ("bin/tool", 3, 10, 0o744, None),
                (".npmignore", 7, 1, 0o644, None),
                ("lib/.npmignore", 8, 1, 0o644, None),
                ("dup.js", 11, 7, 0o644, None),
            ]
        );
        assert_eq!(files[1].written_size(), 27);
        assert_eq!(files[0].written_size(), 2);
    }

    #[test]
    fn scan_errors_name_package_and_entry() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                RawTar::new().file("package/../../etc/x", b"").finish(),
                "`node_modules/@s/a`: tarball entry `package/../../etc/x` leaves the package",
            ),
            (
                RawTar::new().file("/etc/passwd", b"").finish(),
                "`node_modules/@s/a`: tarball entry `/etc/passwd` is an absolute path",
            ),
            (
                {
                    let mut t = RawTar::new().file("package/aXb", b"").finish();
                    let at = t.windows(3).position(|w| w == b"aXb").unwrap();
                    t[at + 1] = 0xff;
                    // The header checksum counts the byte: fix it.
                    let mut h = tar::Header::new_old();
                    h.as_mut_bytes().copy_from_slice(&t[..512]);
                    h.set_cksum();
                    t[..512].copy_from_slice(h.as_bytes());
                    t
                },
                "is not UTF-8",
            ),
            (
                RawTar::new().gnu_long_name(2 << 20).file("x", b"").finish(),
                "headers are larger than",
            ),
            (b"not a tar at all".repeat(64), "not a valid gzipped tar"),
        ];
        for (tar, want) in cases {
            let err = scan_raw(&tar, &[]).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        // Links with `..` are dropped before any check, as pacote does.
        let tar = RawTar::new()
            .symlink("package/../../x", "y")
            .file("package/ok", b"")
            .finish();
        assert_eq!(scan_raw(&tar, &[]).unwrap().len(), 1);
    }

    #[test]
    fn crlf_shebangs_like_bin_links() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (
                b"#!/usr/bin/env node\r\nx\r\n",
                Some(b"#!/usr/bin/env node\nx\r\n"),
            ),
            (b"#!node\r\r\n", Some(b"#!node\r\n")),
            (b"#!/usr/bin/env node\nx\r\n", None),
            (b"#!\r\n", None),
            (b"#!x\r\n", Some(b"#!x\n")),
            (b"no shebang\r\n", None),
            (b"#!/bin/sh", None),
            (
                b"#!/bin/\xffsh\r\n\xfe",
                Some("#!/bin/\u{fffd}sh\n\u{fffd}".as_bytes()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                fix_crlf_shebang(input).as_deref(),
                *want,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        // Only the first 2048 bytes are looked at.
        let mut late = b"#!".to_vec();
        late.extend(vec![b'a'; 3000]);
        late.extend(b"\r\n");
        assert_eq!(fix_crlf_shebang(&late), None);
    }

    #[test]
    fn entry_paths() {
        let pkg = InstallPath::parse("node_modules/@s/a").unwrap();
        let cases: &[(&str, Option<&str>)] = &[
            ("package/index.js", Some("index.js")),
            ("package/lib/x.js", Some("lib/x.js")),
            ("package/lib/", Some("lib")),
            ("package/", None),
            ("package", None),
            ("README.md", None),
            ("node/lib/x.js", Some("lib/x.js")),
            ("./package.json", Some("package.json")),
            ("package/./lib/./x.js", Some("lib/x.js")),
            ("package/.", None),
            ("package/..x/y..", Some("..x/y..")),
            ("package/.gitignore", Some(".gitignore")),
        ];
        for (entry, want) in cases {
            let got = entry_path(&pkg, entry).unwrap();
            assert_eq!(got.as_ref().map(RelPath::as_str), *want, "{entry}");
        }
    }

    #[test]
    fn entry_path_errors_name_package_and_entry() {
        let pkg = InstallPath::parse("node_modules/a").unwrap();
        let cases = [
            ("package/../x", PARENT_DIR),
            ("package/lib/../../x", PARENT_DIR),
            ("../x", PARENT_DIR),
            ("/package/x", ABSOLUTE),
            ("package//x", EMPTY_COMPONENT),
            ("package/a//", EMPTY_COMPONENT),
            ("package/a\0b", NUL),
        ];
        for (entry, make) in cases {
            let err = entry_path(&pkg, entry).unwrap_err();
            assert!(err.to_string().contains("`node_modules/a`"), "{err}");
            assert_eq!(
                err,
                make("node_modules/a".into(), entry.into()),
                "{entry:?}"
            );
        }
    }

    #[test]
    fn modes_like_pacote() {
        let cases = [
            (0o644, false, 0o644),
            (0o600, false, 0o644),
            (0o666, false, 0o644),
            (0o000, false, 0o644),
            (0o755, false, 0o755),
            (0o744, false, 0o744),
            (0o700, false, 0o744),
            (0o711, false, 0o755),
            (0o4755, false, 0o755),
            (0o2644, false, 0o644),
            (0o1777, false, 0o755),
            (0o644, true, 0o755),
            (0o600, true, 0o755),
            (0o4755, true, 0o755),
        ];
        for (tar_mode, bin, want) in cases {
            assert_eq!(file_mode(tar_mode, bin), want, "{tar_mode:o} bin={bin}");
        }
        assert_eq!(DIR_MODE, 0o755);
    }

    #[test]
    fn gitignore_becomes_npmignore() {
        let p = |s: &str| RelPath::new(s).unwrap();
        let mut r = IgnoreFileRename::new();
        // entry in tarball order, written as
        let cases: &[(&str, Option<&str>)] = &[
            (".gitignore", Some(".npmignore")),
            ("lib/.npmignore", Some("lib/.npmignore")),
            ("lib/.gitignore", None),
            ("test/.gitignore", Some("test/.npmignore")),
            ("test/.npmignore", Some("test/.npmignore")),
            ("index.js", Some("index.js")),
            ("x.gitignore", Some("x.gitignore")),
        ];
        for (path, want) in cases {
            assert_eq!(
                r.file(p(path)).as_ref().map(RelPath::as_str),
                *want,
                "{path}"
            );
        }
    }
}
