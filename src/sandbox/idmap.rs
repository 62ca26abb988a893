//! Which host ids the sandbox's ids stand for.
//!
//! Inside the sandbox the step runs as uid 0. Outside, that is the caller
//! alone (a single-id map, which any user may write for itself), or, when
//! `/etc/subuid` and `/etc/subgid` grant the caller a subordinate range,
//! 0 is the caller and 1..=N the range (written by the setuid helpers
//! `newuidmap`/`newgidmap`, as rootless podman does). With a single-id map
//! only uid 0 exists inside: files stay root-owned and a step that changes
//! owners (or drops to another user, as apt's `_apt` sandbox does) fails
//! or is told to stay root.
//!
//! Parsing takes bytes, so it is tested without the host's files.

use std::path::PathBuf;

/// A subordinate id range from `/etc/subuid` or `/etc/subgid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubRange {
    pub start: u32,
    pub count: u32,
}

/// How ids inside map to the host: inside 0 is `host`; inside 1..=count
/// are `range` when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMap {
    pub host_uid: u32,
    pub host_gid: u32,
    pub uid_range: Option<SubRange>,
    pub gid_range: Option<SubRange>,
}

/// The id a file whose owner is not mapped shows inside (the kernel's
/// overflow id).
pub const OVERFLOW_ID: u32 = 65534;

impl IdMap {
    /// The map for the calling user: its subordinate ranges when it has
    /// both, else a single id.
    pub fn for_caller(uid: u32, gid: u32, user_name: Option<&str>) -> IdMap {
        let read = |p: &str| std::fs::read(p).unwrap_or_default();
        let (uids, gids) = (read("/etc/subuid"), read("/etc/subgid"));
        let uid_range = first_range(&uids, user_name, uid);
        let gid_range = first_range(&gids, user_name, uid);
        let both = uid_range.is_some() && gid_range.is_some();
        IdMap {
            host_uid: uid,
            host_gid: gid,
            uid_range: uid_range.filter(|_| both),
            gid_range: gid_range.filter(|_| both),
        }
    }

    /// Whether the sandbox has more ids than its root.
    pub fn is_range(&self) -> bool {
        self.uid_range.is_some()
    }

    /// Ids inside that exist (0, and 1..=count with a range).
    pub fn inside_count(&self) -> u32 {
        self.uid_range.map_or(1, |r| r.count.saturating_add(1))
    }

    /// `/proc/PID/uid_map` lines (or `newuidmap` arguments, by 3s).
    pub fn uid_lines(&self) -> Vec<[u32; 3]> {
        lines(self.host_uid, self.uid_range)
    }

    /// `/proc/PID/gid_map` lines.
    pub fn gid_lines(&self) -> Vec<[u32; 3]> {
        lines(self.host_gid, self.gid_range)
    }

    /// The uid a host uid shows inside.
    pub fn uid_inside(&self, host: u32) -> u32 {
        inside(host, self.host_uid, self.uid_range)
    }

    /// The gid a host gid shows inside.
    pub fn gid_inside(&self, host: u32) -> u32 {
        inside(host, self.host_gid, self.gid_range)
    }
}

fn lines(host: u32, range: Option<SubRange>) -> Vec<[u32; 3]> {
    let mut v = vec![[0, host, 1]];
    if let Some(r) = range {
        v.push([1, r.start, r.count]);
    }
    v
}

fn inside(host: u32, root: u32, range: Option<SubRange>) -> u32 {
    if host == root {
        return 0;
    }
    match range {
        Some(r) if host >= r.start && host - r.start < r.count => host - r.start + 1,
        _ => OVERFLOW_ID,
    }
}

/// The first range `/etc/subuid`-style text grants to a user (by name or
/// by number); `None` when it grants none.
pub fn first_range(text: &[u8], name: Option<&str>, id: u32) -> Option<SubRange> {
    let text = String::from_utf8_lossy(text);
    let id = id.to_string();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            let ours = who == id || name == Some(who);
            let r = SubRange {
                start: start.trim().parse().ok()?,
                count: count.trim().parse().ok()?,
            };
            (ours && r.count > 0 && r.start.checked_add(r.count).is_some()).then_some(r)
        })
        .next()
}

/// Where the setuid helpers live, when installed.
pub fn helper(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subid_lines() {
        let text = b"# comment\nalice:100000:65536\nbob:200000:0\n1001:300000:1000\nbad line\n";
        let r = |n: Option<&str>, id| first_range(text, n, id);
        assert_eq!(
            r(Some("alice"), 1000),
            Some(SubRange {
                start: 100000,
                count: 65536
            })
        );
        assert_eq!(r(Some("bob"), 1002), None, "an empty range grants nothing");
        assert_eq!(r(None, 1001).map(|r| r.start), Some(300000), "by number");
        assert_eq!(r(Some("carol"), 7), None);
        assert_eq!(first_range(b"x:4294967295:2\n", Some("x"), 1), None);
    }

    #[test]
    fn ids_map_back() {
        let single = IdMap {
            host_uid: 1000,
            host_gid: 1000,
            uid_range: None,
            gid_range: None,
        };
        assert_eq!(single.uid_inside(1000), 0);
        assert_eq!(single.uid_inside(0), OVERFLOW_ID);
        assert_eq!(single.uid_lines(), vec![[0, 1000, 1]]);
        let range = IdMap {
            uid_range: Some(SubRange {
                start: 100000,
                count: 65536,
            }),
            gid_range: Some(SubRange {
                start: 100000,
                count: 65536,
            }),
            ..single
        };
        assert_eq!(range.uid_inside(100000), 1);
        assert_eq!(range.gid_inside(100041), 42);
        assert_eq!(range.uid_inside(165536), OVERFLOW_ID);
        assert_eq!(range.uid_lines(), vec![[0, 1000, 1], [1, 100000, 65536]]);
    }
}
