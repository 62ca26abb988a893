//! Reading members of a tar archive in place.
//!
//! An oci-archive or docker-archive can be gigabytes, and hoist must never
//! unpack an untrusted archive onto the host. So the archive is indexed
//! once (each member's name, data offset and size, found with the tar
//! crate's `raw_file_position()` while skipping data by seeking), and a
//! member is then read straight from the file at its offset. Reads are
//! positional (`pread`), so several members can be open at once without
//! sharing a cursor.
//!
//! Links inside the archive are followed (podman's docker-archive makes
//! `<id>/layer.tar` a symlink to `../<hex>.tar`), but only to other members:
//! a link that is absolute or climbs above the archive's root is refused.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use fs_err as fs;

use crate::layer::ImagePath;

use super::TransportError;

/// How many links a lookup follows before giving up (a loop, or abuse).
const MAX_LINK_HOPS: usize = 16;

#[derive(Debug, Clone)]
enum Member {
    Data {
        offset: u64,
        size: u64,
    },
    /// A symlink or hard link, its target already made an archive path;
    /// `None` for a target that leaves the archive.
    Link(Option<String>),
    /// A member hoist cannot read as a file (a device, a sparse file...).
    Unreadable(&'static str),
    Dir,
}

/// An indexed tar archive.
pub(crate) struct TarIndex {
    path: PathBuf,
    file: std::fs::File,
    members: HashMap<String, Member>,
}

impl TarIndex {
    /// Reads every header of the archive at `path`, skipping the data.
    pub(crate) fn open(path: &Path) -> Result<TarIndex, TransportError> {
        let file = fs::File::open(path)?;
        if file.metadata()?.is_dir() {
            return Err(TransportError::BadArchive {
                path: path.display().to_string(),
                source: io::Error::other(
                    "it is a folder; an OCI layout folder is read with oci:DIR",
                ),
            });
        }
        let file = file.into_file();
        let bad = |source| TransportError::BadArchive {
            path: path.display().to_string(),
            source,
        };
        let mut members = HashMap::new();
        {
            let mut archive = tar::Archive::new(&file);
            for entry in archive.entries_with_seek().map_err(bad)? {
                let entry = entry.map_err(bad)?;
                let Some(name) = member_name(&entry.path_bytes()) else {
                    continue;
                };
                let kind = entry.header().entry_type();
                let member = match kind {
                    tar::EntryType::Regular | tar::EntryType::Continuous => Member::Data {
                        offset: entry.raw_file_position(),
                        size: entry.size(),
                    },
                    tar::EntryType::Directory => Member::Dir,
                    tar::EntryType::Symlink => {
                        let target = entry.link_name_bytes().unwrap_or_default();
                        Member::Link(symlink_target(&name, &target))
                    }
                    tar::EntryType::Link => {
                        let target = entry.link_name_bytes().unwrap_or_default();
                        Member::Link(member_name(&target))
                    }
                    tar::EntryType::GNUSparse => Member::Unreadable("a sparse file"),
                    _ => Member::Unreadable("not a regular file"),
                };
                // A later member of the same name replaces an earlier one,
                // as when the archive is unpacked.
                members.insert(name, member);
            }
        }
        Ok(TarIndex {
            path: path.to_owned(),
            file,
            members,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// How a member is named in messages.
    pub(crate) fn location(&self, member: &str) -> String {
        format!("{} (member {member})", self.path.display())
    }

    /// Finds a regular-file member, following links; `Ok(None)` when no
    /// member has that name. `name` must already be a clean archive path.
    pub(crate) fn find(&self, name: &str) -> Result<Option<(u64, u64)>, TransportError> {
        let mut cur = name.to_owned();
        for _ in 0..MAX_LINK_HOPS {
            let Some(member) = self.members.get(&cur) else {
                return Ok(None);
            };
            match member {
                Member::Data { offset, size } => return Ok(Some((*offset, *size))),
                Member::Link(Some(target)) => cur = target.clone(),
                Member::Link(None) => {
                    return Err(self.bad_member(name, "is a link that leaves the archive"))
                }
                Member::Unreadable(what) => {
                    return Err(self.bad_member(name, &format!("is {what}")))
                }
                Member::Dir => return Err(self.bad_member(name, "is a folder")),
            }
        }
        Err(self.bad_member(name, "is a chain of links too long to follow"))
    }

    fn bad_member(&self, name: &str, why: &str) -> TransportError {
        TransportError::BadArchivePath {
            archive: self.path.display().to_string(),
            path: name.to_owned(),
            why: why.to_owned(),
        }
    }

    /// Opens the data of a member found with [`TarIndex::find`].
    pub(crate) fn reader(&self, member: &str, offset: u64, size: u64) -> MemberReader<'_> {
        MemberReader {
            file: &self.file,
            pos: offset,
            end: offset + size,
            location: self.location(member),
        }
    }

    /// Opens a member by name, following links.
    pub(crate) fn open_member(
        &self,
        name: &str,
    ) -> Result<Option<(MemberReader<'_>, u64)>, TransportError> {
        Ok(self
            .find(name)?
            .map(|(offset, size)| (self.reader(name, offset, size), size)))
    }
}

/// The data of one member, read by position.
pub(crate) struct MemberReader<'a> {
    file: &'a std::fs::File,
    pos: u64,
    end: u64,
    location: String,
}

impl Read for MemberReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = read_at(self.file, &mut buf[..want], self.pos)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.location)))?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: the archive ends inside this member (truncated?)",
                    self.location
                ),
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(unix)]
fn read_at(file: &std::fs::File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, pos)
}

#[cfg(windows)]
fn read_at(file: &std::fs::File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, pos)
}

/// A member's name as an archive path: `./` and `/` prefixes dropped,
/// repeated slashes folded. Names that are not UTF-8 or that climb with
/// `..` cannot be asked for, so they are left out of the index.
pub(crate) fn member_name(raw: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(raw).ok()?;
    ImagePath::new(s).ok().map(|p| p.as_str().to_owned())
}

/// Resolves a symlink's target against the folder of the link, lexically.
/// `None` when it is absolute or climbs above the archive's root.
fn symlink_target(link: &str, target: &[u8]) -> Option<String> {
    let target = std::str::from_utf8(target).ok()?;
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_target_table() {
        let cases = [
            ("a/layer.tar", "../b.tar", Some("b.tar")),
            ("a/layer.tar", "c.tar", Some("a/c.tar")),
            ("a/layer.tar", "./x/../c.tar", Some("a/c.tar")),
            ("a/layer.tar", "../../b.tar", None),
            ("a/layer.tar", "/etc/passwd", None),
            ("top", "..", None),
        ];
        for (link, target, want) in cases {
            assert_eq!(
                symlink_target(link, target.as_bytes()).as_deref(),
                want,
                "{link} -> {target}"
            );
        }
    }

    #[test]
    fn member_name_table() {
        let cases = [
            ("./index.json", Some("index.json")),
            ("/blobs//sha256/x", Some("blobs/sha256/x")),
            ("blobs/", Some("blobs")),
            ("./", None),
            ("../x", None),
        ];
        for (raw, want) in cases {
            assert_eq!(member_name(raw.as_bytes()).as_deref(), want, "{raw}");
        }
    }

    fn build(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> tempfile::NamedTempFile {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let mut b = tar::Builder::new(tmp.reopen().unwrap());
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            if link.is_empty() {
                b.append_data(&mut h, name, *data).unwrap();
            } else {
                b.append_link(&mut h, name, link).unwrap();
            }
        }
        b.finish().unwrap();
        tmp
    }

    #[test]
    fn reads_members_by_offset_and_follows_links() {
        use tar::EntryType as E;
        let long = format!("dir/{}", "n".repeat(200));
        let tmp = build(&[
            ("./a.txt", E::Regular, b"alpha", ""),
            (&long, E::Regular, b"long name", ""),
            ("dir/sym", E::Symlink, b"", "../a.txt"),
            ("hard", E::Link, b"", "a.txt"),
            ("escape", E::Symlink, b"", "../../etc/passwd"),
            ("loop1", E::Symlink, b"", "loop2"),
            ("loop2", E::Symlink, b"", "loop1"),
            ("dir", E::Directory, b"", ""),
        ]);
        let idx = TarIndex::open(tmp.path()).unwrap();
        let read = |name: &str| {
            let (mut r, size) = idx.open_member(name).unwrap().unwrap();
            let mut out = String::new();
            r.read_to_string(&mut out).unwrap();
            assert_eq!(out.len() as u64, size);
            out
        };
        assert_eq!(read("a.txt"), "alpha");
        assert_eq!(read(&long), "long name");
        assert_eq!(read("dir/sym"), "alpha");
        assert_eq!(read("hard"), "alpha");
        assert!(idx.open_member("missing").unwrap().is_none());
        for bad in ["escape", "loop1", "dir"] {
            let err = idx.open_member(bad).err().unwrap();
            assert!(
                matches!(err, TransportError::BadArchivePath { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn truncated_archive_is_an_error() {
        let tmp = build(&[("a", tar::EntryType::Regular, &[7u8; 4000], "")]);
        let idx = TarIndex::open(tmp.path()).unwrap();
        tmp.as_file().set_len(1024).unwrap();
        let (mut r, _) = idx.open_member("a").unwrap().unwrap();
        let err = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("member a"), "{err}");
    }
}
