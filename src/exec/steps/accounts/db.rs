//! The account files as the tools read and rewrite them: colon files
//! (passwd, group, shadow, gshadow, subuid) as lines, and shadow's
//! `login.defs` settings.
//!
//! Both shadow (commonio) and busybox (`update_passwd`) rewrite a colon
//! file line by line, keeping every line they do not change as it was and
//! ending each with a newline, so a file is kept as its lines.

use std::collections::BTreeMap;

use super::tree::{Node, Odd, Tree};

/// A colon file as lines (without their newlines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lines(pub Vec<String>);

impl Lines {
    pub fn parse(bytes: &[u8]) -> Result<Lines, Odd> {
        let text = std::str::from_utf8(bytes).map_err(|_| odd!())?;
        if text.contains(['\0', '\r']) {
            return Err(odd!());
        }
        let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        Ok(Lines(lines))
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for l in &self.0 {
            out.extend_from_slice(l.as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// The fields of the account lines (not comments, blanks or NIS
    /// `+`/`-` lines).
    fn accounts(&self) -> impl Iterator<Item = (usize, Vec<&str>)> {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with(['#', '+', '-']))
            .map(|(i, l)| (i, l.split(':').collect()))
    }

    /// The index and fields of the line for `name`.
    pub fn by_name(&self, name: &str) -> Option<(usize, Vec<String>)> {
        self.accounts()
            .find(|(_, f)| f[0] == name)
            .map(|(i, f)| (i, f.into_iter().map(str::to_owned).collect()))
    }

    /// The name on the first line whose id field (the third) is `id`.
    pub fn by_id(&self, id: u32) -> Option<String> {
        self.accounts()
            .find(|(_, f)| f.get(2).and_then(|v| v.parse::<u32>().ok()) == Some(id))
            .map(|(_, f)| f[0].to_owned())
    }

    /// Every id on an account line.
    pub fn ids(&self) -> Vec<u32> {
        self.accounts()
            .filter_map(|(_, f)| f.get(2).and_then(|v| v.parse().ok()))
            .collect()
    }

    /// Whether any line is not `fields` colon-separated fields (with a
    /// numeric id as the third when `ids`): a file hoist would not read
    /// the way the tools do.
    pub fn odd(&self, fields: usize, ids: bool) -> bool {
        self.accounts().any(|(_, f)| {
            f.len() != fields || (ids && f[2].parse::<u32>().is_err()) || f[0].is_empty()
        }) || self.0.iter().any(|l| l.starts_with(['+', '-']))
    }
}

/// An account file as read: its lines and its entry (mode, owner).
#[derive(Debug, Clone)]
pub struct DbFile {
    pub lines: Lines,
    pub node: Node,
}

/// Reads the colon file at `rel`; `None` when the image has none.
pub fn read(tree: &Tree, rel: &str) -> Result<Option<DbFile>, Odd> {
    Ok(match tree.file(rel)? {
        None => None,
        Some((bytes, node)) => Some(DbFile {
            lines: Lines::parse(&bytes)?,
            node,
        }),
    })
}

/// shadow's settings file (`/etc/login.defs`): `KEY value` lines.
#[derive(Debug, Clone, Default)]
pub struct Defs(BTreeMap<String, String>);

impl Defs {
    pub fn parse(bytes: &[u8]) -> Defs {
        let text = String::from_utf8_lossy(bytes);
        let mut map = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once(|c: char| c.is_ascii_whitespace())
                .unwrap_or((line, ""));
            let v = v.trim().trim_matches('"');
            map.insert(k.to_owned(), v.to_owned());
        }
        Defs(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A number as `strtol(…, 0)` reads it (`022` is octal, `0x` hex);
    /// `Err` when set but not a number.
    pub fn num(&self, key: &str, default: i64) -> Result<i64, Odd> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => c_number(v).ok_or(odd!()),
        }
    }

    pub fn yes(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v.eq_ignore_ascii_case("yes"))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// A number in C's base-0 notation.
pub fn c_number(v: &str) -> Option<i64> {
    let (neg, v) = match v.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, v),
    };
    let n = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if v.len() > 1 && v.starts_with('0') {
        i64::from_str_radix(&v[1..], 8).ok()?
    } else {
        v.parse().ok()?
    };
    Some(if neg { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_everything_and_end_with_newlines() {
        for (input, lines, out) in [
            (
                &b"a:x:1:\nb:x:2:\n"[..],
                vec!["a:x:1:", "b:x:2:"],
                &b"a:x:1:\nb:x:2:\n"[..],
            ),
            (b"a:x:1:", vec!["a:x:1:"], b"a:x:1:\n"),
            (
                b"# c\n\na:x:1:\n",
                vec!["# c", "", "a:x:1:"],
                b"# c\n\na:x:1:\n",
            ),
            (b"", vec![], b""),
        ] {
            let l = Lines::parse(input).unwrap();
            assert_eq!(l.0, lines);
            assert_eq!(l.bytes(), out);
        }
        let g = Lines::parse(b"# x\nroot:x:0:\nusers:x:100:a,b\n").unwrap();
        assert_eq!(g.by_name("users").unwrap().0, 2);
        assert_eq!(g.by_id(0).as_deref(), Some("root"));
        assert_eq!(g.ids(), vec![0, 100]);
        assert!(!g.odd(4, true));
        assert!(Lines::parse(b"a:x:1\n").unwrap().odd(4, true));
        assert!(Lines::parse(b"+::::\n").unwrap().odd(4, true));
        assert!(!Lines::parse(b"root:*::\n").unwrap().odd(4, false));
        assert!(Lines::parse(b"a\r\n").is_err());
    }

    #[test]
    fn login_defs_as_shadow_reads_them() {
        let d = Defs::parse(b"# c\nUID_MIN\t\t 1000\nUMASK 022\nHOME_MODE 0700\nX \"q\"\nBAD x1\nUSERGROUPS_ENAB yes\n");
        assert_eq!(d.num("UID_MIN", 5), Ok(1000));
        assert_eq!(d.num("UMASK", 0), Ok(0o22));
        assert_eq!(d.num("HOME_MODE", 0), Ok(0o700));
        assert_eq!(d.num("MISSING", 7), Ok(7));
        assert!(d.num("BAD", 7).is_err());
        assert_eq!(d.get("X"), Some("q"));
        assert!(d.yes("USERGROUPS_ENAB"));
        assert_eq!(c_number("0x10"), Some(16));
        assert_eq!(c_number("-1"), Some(-1));
    }
}
