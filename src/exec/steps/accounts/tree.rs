//! The image's files as the account tools see them: the ground unpacked
//! (read only), with what the simulated tools wrote kept on top, and the
//! folders whose entries changed (a tool that creates or renames a file
//! changes its folder's mtime, which the sandbox's walk sees).
//!
//! Reads never follow a link: a path with a link on the way reads as
//! "not a plain entry", and the caller gives up (the sandbox runs the
//! command instead).
//!
//! The ground may be unpacked only in part (the paths the tools read:
//! [`Tree::partial`]). A read outside that part reads as odd too, and
//! [`Tree::outside`] says so, so that the caller unpacks the whole ground
//! and starts again rather than take a missing file for an absent one.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

/// One entry: what it is, its mode (permission bits) and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

/// What the lookup of a path found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Missing,
    Node(Node),
    /// A link on the way, a special file, or a name hoist cannot read:
    /// nothing to model.
    Odd,
}

/// The unpacked ground plus the writes.
pub struct Tree {
    root: PathBuf,
    owners: HashMap<String, (u32, u32)>,
    written: BTreeMap<String, Node>,
    touched: BTreeSet<String>,
    /// The image paths unpacked (with the folders on the way), when not
    /// the whole ground.
    scope: Option<Vec<String>>,
    /// Whether a read fell outside `scope`.
    outside: Cell<bool>,
}

impl Tree {
    /// `root` is the unpacked ground; `owners` the owners of its entries
    /// not owned by root (as `sandbox::rootfs::unpack` returns them).
    pub fn new(root: PathBuf, owners: HashMap<String, (u32, u32)>) -> Tree {
        Tree {
            root,
            owners,
            written: BTreeMap::new(),
            touched: BTreeSet::new(),
            scope: None,
            outside: Cell::new(false),
        }
    }

    /// A tree over a ground of which only `scope` (image paths, and the
    /// folders on the way to them) was unpacked.
    pub fn partial(root: PathBuf, owners: HashMap<String, (u32, u32)>, scope: &[&str]) -> Tree {
        Tree {
            scope: Some(scope.iter().map(|s| (*s).to_owned()).collect()),
            ..Tree::new(root, owners)
        }
    }

    /// Whether a read fell outside the unpacked part: the answers given
    /// may be wrong, and only a whole unpack can tell.
    pub fn outside(&self) -> bool {
        self.outside.get()
    }

    /// Whether the unpacked part has `rel` as it is in the image: inside a
    /// scope path, or (unless `whole` is asked, as a listing does) a
    /// folder on the way to one.
    fn covers(&self, rel: &str, whole: bool) -> bool {
        let Some(scope) = &self.scope else {
            return true;
        };
        let under = |a: &str, b: &str| {
            a.len() > b.len() && a.starts_with(b) && a.as_bytes()[b.len()] == b'/'
        };
        let ok = scope
            .iter()
            .any(|w| rel == w || under(rel, w) || (!whole && (rel.is_empty() || under(w, rel))));
        if !ok {
            self.outside.set(true);
        }
        ok
    }

    /// The entry at `rel` (no leading slash), never following a link.
    pub fn get(&self, rel: &str) -> Found {
        if let Some(n) = self.written.get(rel) {
            return Found::Node(n.clone());
        }
        if !self.covers(rel, false) {
            return Found::Odd;
        }
        let mut p = self.root.clone();
        let parts: Vec<&str> = rel.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            if part.is_empty() || *part == "." || *part == ".." {
                return Found::Odd;
            }
            p.push(part);
            // Folders written on the way are real folders.
            let so_far = parts[..=i].join("/");
            if i + 1 < parts.len() {
                match self.written.get(&so_far) {
                    Some(Node {
                        kind: Kind::Dir, ..
                    }) => continue,
                    Some(_) => return Found::Odd,
                    None => {}
                }
            }
            let m = match fs::symlink_metadata(&p) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Found::Missing,
                Err(_) => return Found::Odd,
            };
            if i + 1 < parts.len() && !m.is_dir() {
                return match m.file_type().is_symlink() {
                    true => Found::Odd,
                    false => Found::Missing,
                };
            }
        }
        let Ok(m) = fs::symlink_metadata(&p) else {
            return Found::Odd;
        };
        let kind = if m.is_dir() {
            Kind::Dir
        } else if m.is_file() {
            match fs::read(&p) {
                Ok(b) => Kind::File(b),
                Err(_) => return Found::Odd,
            }
        } else if m.file_type().is_symlink() {
            match fs::read_link(&p) {
                Ok(t) => match t.to_str() {
                    Some(t) => Kind::Symlink(t.to_owned()),
                    None => return Found::Odd,
                },
                Err(_) => return Found::Odd,
            }
        } else {
            return Found::Odd;
        };
        let (uid, gid) = self.owners.get(rel).copied().unwrap_or((0, 0));
        Found::Node(Node {
            kind,
            mode: m.permissions().mode() & 0o7777,
            uid,
            gid,
        })
    }

    /// The node at `rel`, `None` when missing, `Err` when odd.
    pub fn node(&self, rel: &str) -> Result<Option<Node>, Odd> {
        match self.get(rel) {
            Found::Missing => Ok(None),
            Found::Node(n) => Ok(Some(n)),
            Found::Odd => Err(odd!()),
        }
    }

    /// The entry `rel` names once links are followed (inside the image,
    /// as a process in it would see them): for probes like
    /// `access("/sbin/pam_tally2")` where `/sbin` is a link.
    pub fn resolve(&self, rel: &str) -> Result<Option<Node>, Odd> {
        let mut todo: Vec<String> = rel.split('/').rev().map(str::to_owned).collect();
        let mut at: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = todo.pop() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    at.pop();
                    continue;
                }
                _ => {}
            }
            at.push(part);
            let here = at.join("/");
            let Some(node) = self.node(&here)? else {
                return Ok(None);
            };
            if let Kind::Symlink(target) = &node.kind {
                hops += 1;
                if hops > 40 {
                    return Err(odd!());
                }
                at.pop();
                if target.starts_with('/') {
                    at.clear();
                }
                todo.extend(target.split('/').rev().map(str::to_owned));
                continue;
            }
            if todo.iter().any(|p| !p.is_empty()) && node.kind != Kind::Dir {
                return Ok(None);
            }
            if todo.is_empty() {
                return Ok(Some(node));
            }
        }
        self.node(&at.join("/"))
    }

    /// The content of the regular file at `rel`; `None` when missing.
    pub fn file(&self, rel: &str) -> Result<Option<(Vec<u8>, Node)>, Odd> {
        match self.node(rel)? {
            None => Ok(None),
            Some(n) => match &n.kind {
                Kind::File(b) => Ok(Some((b.clone(), n))),
                _ => Err(odd!()),
            },
        }
    }

    /// Whether a host path of the unpacked ground has several names (a
    /// hard link, which a copy would keep and hoist does not model).
    pub fn linked(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.root.join(rel)).is_ok_and(|m| m.is_file() && m.nlink() > 1)
    }

    /// The names in the folder `rel`, sorted; written entries included.
    pub fn list(&self, rel: &str) -> Result<Vec<String>, Odd> {
        let mut names = BTreeSet::new();
        if !self.written.contains_key(rel) {
            if !self.covers(rel, true) {
                return Err(odd!());
            }
            let rd = fs::read_dir(self.root.join(rel)).map_err(|_| odd!())?;
            for e in rd {
                let e = e.map_err(|_| odd!())?;
                names.insert(e.file_name().to_str().ok_or(odd!())?.to_owned());
            }
        }
        let under = format!("{rel}/");
        for k in self.written.keys() {
            if let Some(rest) = k.strip_prefix(&under) {
                if !rest.contains('/') {
                    names.insert(rest.to_owned());
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Puts `node` at `rel` (a new entry or a replacement made by
    /// renaming into place), which changes its folder.
    pub fn put(&mut self, rel: &str, node: Node) {
        self.touch_parent(rel);
        self.written.insert(rel.to_owned(), node);
    }

    fn touch_parent(&mut self, rel: &str) {
        let parent = rel.rsplit_once('/').map_or("", |(d, _)| d);
        if !parent.is_empty() {
            self.touched.insert(parent.to_owned());
        }
    }

    /// Everything the tools changed, by path: written entries and the
    /// folders they changed (as they are now).
    pub fn changes(&self) -> Result<BTreeMap<String, Node>, Odd> {
        let mut out = self.written.clone();
        for d in &self.touched {
            if !out.contains_key(d) {
                let n = self.node(d)?.ok_or(odd!())?;
                out.insert(d.clone(), n);
            }
        }
        Ok(out)
    }
}

/// Something hoist does not model (a link on the way, a special file, a
/// setting, a command the tool would refuse): the command runs in the
/// sandbox. `at` is where in hoist it was found, for `--explain` and
/// tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Odd {
    pub at: &'static str,
}
