//! shadow's `groupadd`, `useradd`, `chfn -f` and `gpasswd -M` (4.13, as
//! Debian 12 ships them), as the files they leave.
//!
//! Every program rewrites each account file it changes through commonio:
//! the new file keeps the old one's mode and owner, and the old content is
//! kept as `FILE-` with the same mode and owner. Ids come from
//! `find_new_uid`/`find_new_gid`: a system id is the highest free one
//! below the lowest system id in use (from `SYS_*_MAX` down), any other
//! the lowest free one above the highest in use.

use crate::graph::native::{Action, NewGroup, NewUser};

use super::db::{self, Defs, Lines};
use super::tree::{Kind, Node, Odd, Tree};

/// `sizeof(struct faillog)` and `sizeof(struct lastlog)` on glibc's 64-bit
/// targets (amd64, arm64).
const FAILLOG_RECORD: u64 = 32;
const LASTLOG_RECORD: u64 = 292;

pub struct Shadow<'a> {
    pub tree: &'a mut Tree,
    defs: Defs,
    /// `SOURCE_DATE_EPOCH` in days.
    day: u64,
}

impl<'a> Shadow<'a> {
    pub fn new(tree: &'a mut Tree, epoch: u64) -> Result<Shadow<'a>, Odd> {
        let defs = match tree.file("etc/login.defs")? {
            Some((b, _)) => Defs::parse(&b),
            None => Defs::default(),
        };
        // Settings that change what the tools write and are not modelled.
        for k in ["USE_TCB", "CREATE_HOME", "MAX_MEMBERS_PER_GROUP"] {
            if defs.get(k).is_some() {
                return Err(odd!());
            }
        }
        if tree.resolve("etc/shadow-maint")?.is_some() || tree.resolve("sbin/pam_tally2")?.is_some()
        {
            return Err(odd!());
        }
        Ok(Shadow {
            tree,
            defs,
            day: epoch / 86400,
        })
    }

    pub fn run(&mut self, action: &Action) -> Result<(), Odd> {
        match action {
            Action::Group(g) => self.groupadd(g),
            Action::User(u) => self.useradd(u, &[]),
            Action::Member { .. } => Err(odd!()),
        }
    }

    /// Rewrites the colon file `rel` as `lines`, keeping the old one as
    /// `rel-`.
    pub fn write(&mut self, rel: &str, old: &db::DbFile, lines: &Lines) {
        write_db(self.tree, rel, old, lines, old.node.mode);
    }

    fn read(&self, rel: &str) -> Result<Option<db::DbFile>, Odd> {
        db::read(self.tree, rel)
    }

    /// `groupadd [-r] [-g GID] NAME`.
    pub fn groupadd(&mut self, g: &NewGroup) -> Result<(), Odd> {
        let group = self.read("etc/group")?.ok_or(odd!())?;
        if group.lines.odd(4, true) || group.lines.by_name(&g.name).is_some() {
            return Err(odd!());
        }
        let gid = match g.gid {
            Some(gid) if group.lines.by_id(gid).is_some() => return Err(odd!()),
            Some(gid) => gid,
            None => self.new_id(&group.lines.ids(), g.system, "GID", None)?,
        };
        self.add_group(&g.name, gid, group)
    }

    fn add_group(&mut self, name: &str, gid: u32, group: db::DbFile) -> Result<(), Odd> {
        let gshadow = self.read("etc/gshadow")?;
        let passwd = if gshadow.is_some() { "x" } else { "!" };
        let mut lines = group.lines.clone();
        lines.0.push(format!("{name}:{passwd}:{gid}:"));
        self.write("etc/group", &group, &lines);
        if let Some(gs) = gshadow {
            if gs.lines.odd(4, false) || gs.lines.by_name(name).is_some() {
                return Err(odd!());
            }
            let mut lines = gs.lines.clone();
            lines.0.push(format!("{name}:!::"));
            self.write("etc/gshadow", &gs, &lines);
        }
        Ok(())
    }

    /// `find_new_uid`/`find_new_gid` over the ids in use (`what` is `UID`
    /// or `GID`, naming the login.defs ranges).
    fn new_id(
        &self,
        used: &[u32],
        system: bool,
        what: &str,
        preferred: Option<u32>,
    ) -> Result<u32, Odd> {
        let num = |k: &str, d: i64| -> Result<u32, Odd> {
            u32::try_from(self.defs.num(k, d)?).map_err(|_| odd!())
        };
        let (min, max, preferred_min) = if system {
            let def_max = i64::from(num(&format!("{what}_MIN"), 1000)?) - 1;
            let min = num(&format!("SYS_{what}_MIN"), 101)?.max(1);
            (min, num(&format!("SYS_{what}_MAX"), def_max)?, 1)
        } else {
            let min = num(&format!("{what}_MIN"), 1000)?;
            (min, num(&format!("{what}_MAX"), 60000)?, min)
        };
        if max < min {
            return Err(odd!());
        }
        if let Some(p) = preferred {
            if p >= preferred_min && p <= max && !used.contains(&p) {
                return Ok(p);
            }
        }
        let in_range: Vec<u32> = used
            .iter()
            .copied()
            .filter(|i| (min..=max).contains(i))
            .collect();
        let free = |i: &u32| !used.contains(i);
        if system {
            let lowest = match in_range.iter().min() {
                Some(&l) if l > min => l - 1,
                _ => max,
            };
            (min..=lowest)
                .rev()
                .find(free)
                .or_else(|| {
                    (lowest != max)
                        .then(|| (min..=max).rev().find(free))
                        .flatten()
                })
                .ok_or(odd!())
        } else {
            let highest = match in_range.iter().max() {
                Some(&h) if h < max => h + 1,
                _ => min,
            };
            (highest..=max)
                .find(free)
                .or_else(|| (highest != min).then(|| (min..=max).find(free)).flatten())
                .ok_or(odd!())
        }
    }

    /// `useradd` (`extra_defs` are `-K KEY=VALUE` overrides, as Debian's
    /// adduser passes them).
    pub fn useradd(&mut self, u: &NewUser, extra_defs: &[(&str, u32)]) -> Result<(), Odd> {
        for (k, _) in extra_defs {
            // Only the range overrides adduser passes for system users,
            // which matter only when no uid is given.
            if !k.starts_with("SYS_UID_") || u.uid.is_none() {
                return Err(odd!());
            }
        }
        let defaults = self.useradd_defaults()?;
        let passwd = self.read("etc/passwd")?.ok_or(odd!())?;
        let group = self.read("etc/group")?.ok_or(odd!())?;
        if passwd.lines.odd(7, true)
            || group.lines.odd(4, true)
            || passwd.lines.by_name(&u.name).is_some()
        {
            return Err(odd!());
        }
        let user_group = match u.user_group {
            Some(b) => b,
            None => u.group.is_none() && self.defs.yes("USERGROUPS_ENAB"),
        };
        if user_group && group.lines.by_name(&u.name).is_some() {
            return Err(odd!());
        }
        let uid = match u.uid {
            Some(uid) if passwd.lines.by_id(uid).is_some() => return Err(odd!()),
            Some(uid) => uid,
            None => self.new_id(&passwd.lines.ids(), u.system, "UID", None)?,
        };
        let gid = match (&u.group, user_group) {
            (Some(g), _) => match g.parse::<u32>() {
                Ok(gid) if group.lines.by_id(gid).is_some() => gid,
                Ok(_) => return Err(odd!()),
                Err(_) => {
                    let (_, f) = group.lines.by_name(g).ok_or(odd!())?;
                    f[2].parse().map_err(|_| odd!())?
                }
            },
            (None, true) => self.new_id(&group.lines.ids(), u.system, "GID", Some(uid))?,
            // The default group (/etc/default/useradd's GROUP) is not
            // modelled.
            (None, false) => return Err(odd!()),
        };
        let shell = match &u.shell {
            Some(s) => s.clone(),
            None => defaults.get("SHELL").ok_or(odd!())?.to_owned(),
        };
        let home = match &u.home {
            Some(h) => h.clone(),
            None => format!("{}/{}", defaults.get("HOME").unwrap_or("/home"), u.name),
        };
        let gecos = u.gecos.clone().unwrap_or_default();
        let create_home = u.create_home == Some(true);

        // lastlog and faillog records are reset only inside files that
        // already reach that far; hoist does not rewrite them.
        if !u.no_log_init {
            for (file, record) in [
                ("var/log/faillog", FAILLOG_RECORD),
                ("var/log/lastlog", LASTLOG_RECORD),
            ] {
                if let Some((bytes, _)) = self.tree.file(file)? {
                    if bytes.len() as u64 > u64::from(uid) * record {
                        return Err(odd!());
                    }
                }
            }
        }

        if user_group {
            self.add_group(&u.name, gid, group)?;
        }
        let shadow = self.read("etc/shadow")?;
        let mut lines = passwd.lines.clone();
        let pw = if shadow.is_some() { "x" } else { "!" };
        lines.0.push(format!(
            "{}:{pw}:{uid}:{gid}:{gecos}:{home}:{shell}",
            u.name
        ));
        self.write("etc/passwd", &passwd, &lines);
        if let Some(sp) = shadow {
            if sp.lines.odd(9, false) || sp.lines.by_name(&u.name).is_some() {
                return Err(odd!());
            }
            let day = match self.day {
                0 => String::new(),
                d => d.to_string(),
            };
            let aging = if u.system {
                ":::".to_owned()
            } else {
                let age = |k: &str| -> Result<String, Odd> {
                    Ok(match self.defs.num(k, -1)? {
                        n if n < 0 => String::new(),
                        n => n.to_string(),
                    })
                };
                let inactive = match defaults.get("INACTIVE").map(db::c_number) {
                    None => String::new(),
                    Some(Some(n)) if n < 0 => String::new(),
                    Some(Some(n)) => n.to_string(),
                    Some(None) => return Err(odd!()),
                };
                format!(
                    "{}:{}:{}:{inactive}",
                    age("PASS_MIN_DAYS")?,
                    age("PASS_MAX_DAYS")?,
                    age("PASS_WARN_AGE")?
                )
            };
            let mut lines = sp.lines.clone();
            lines.0.push(format!("{}:!:{day}:{aging}::", u.name));
            self.write("etc/shadow", &sp, &lines);
        }
        if !u.system {
            let in_range = match u.uid {
                None => true,
                Some(uid) => {
                    let min = self.defs.num("UID_MIN", 1000)?;
                    let max = self.defs.num("UID_MAX", 60000)?;
                    (min..=max).contains(&i64::from(uid))
                }
            };
            if in_range {
                self.sub_ids(&u.name, "etc/subuid", "UID")?;
                self.sub_ids(&u.name, "etc/subgid", "GID")?;
            }
            if defaults
                .get("CREATE_MAIL_SPOOL")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes"))
            {
                return Err(odd!());
            }
        }
        if create_home {
            self.create_home(&home, uid, gid, defaults.get("SKEL").unwrap_or("/etc/skel"))?;
        }
        Ok(())
    }

    /// /etc/default/useradd's settings (`KEY=VALUE`); any setting that
    /// changes the outcome in a way not modelled is refused.
    fn useradd_defaults(&self) -> Result<Defs, Odd> {
        let Some((bytes, _)) = self.tree.file("etc/default/useradd")? else {
            return Ok(Defs::default());
        };
        let text = String::from_utf8_lossy(&bytes).replace('=', " ");
        let d = Defs::parse(text.as_bytes());
        for k in d.keys() {
            let ok = match k {
                "SHELL" | "HOME" | "SKEL" | "INACTIVE" | "GROUP" => true,
                "EXPIRE" => d.get(k) == Some(""),
                "CREATE_MAIL_SPOOL" => true,
                _ => false,
            };
            if !ok {
                return Err(odd!());
            }
        }
        Ok(d)
    }

    /// A new `/etc/subuid` (or subgid) range: the lowest free one. Only an
    /// empty file is modelled (useradd sorts the file when it has ranges).
    fn sub_ids(&mut self, name: &str, rel: &str, what: &str) -> Result<(), Odd> {
        let count = self.defs.num(&format!("SUB_{what}_COUNT"), 65536)?;
        if count == 0 {
            return Ok(());
        }
        let Some(file) = self.read(rel)? else {
            return Ok(());
        };
        if !file.lines.0.is_empty() {
            return Err(odd!());
        }
        let min = self.defs.num(&format!("SUB_{what}_MIN"), 100000)?;
        let max = self.defs.num(&format!("SUB_{what}_MAX"), 600100000)?;
        if count < 0 || max < min || max - min + 1 < count {
            return Err(odd!());
        }
        let lines = Lines(vec![format!("{name}:{min}:{count}")]);
        self.write(rel, &file, &lines);
        Ok(())
    }

    /// useradd's `create_home` and `copy_tree` from the skeleton.
    fn create_home(&mut self, home: &str, uid: u32, gid: u32, skel: &str) -> Result<(), Odd> {
        let rel = home.trim_matches('/');
        if rel.is_empty() || self.tree.node(rel)?.is_some() {
            // An existing home is left alone (useradd warns).
            return Err(odd!());
        }
        make_parents(self.tree, rel)?;
        let umask = self.defs.num("UMASK", 0o22)?;
        let mode = self.defs.num("HOME_MODE", 0o777 & !umask)?;
        let mode = u32::try_from(mode & 0o7777).map_err(|_| odd!())?;
        self.tree.put(
            rel,
            Node {
                kind: Kind::Dir,
                mode,
                uid,
                gid,
            },
        );
        copy_skel(
            self.tree,
            skel.trim_matches('/'),
            rel,
            uid,
            gid,
            |_| true,
            |m, _| m,
        )
    }

    /// `chfn -f FULLNAME USER`: GECOS becomes `FULL,ROOM,WORK,HOME[,OTHER]`.
    pub fn chfn_full_name(&mut self, user: &str, full: &str) -> Result<(), Odd> {
        if !full.bytes().all(|b| (0x20..0x7f).contains(&b)) || full.contains([',', ':', '=']) {
            return Err(odd!());
        }
        let passwd = self.read("etc/passwd")?.ok_or(odd!())?;
        let (i, f) = passwd.lines.by_name(user).ok_or(odd!())?;
        let old: Vec<&str> = f[4].split(',').collect();
        let part = |n: usize| old.get(n).copied().unwrap_or("");
        let other = old.get(4..).map(|o| o.join(",")).unwrap_or_default();
        let mut gecos = format!("{full},{},{},{}", part(1), part(2), part(3));
        if !other.is_empty() {
            gecos.push(',');
            gecos.push_str(&other);
        }
        let mut fields = f.clone();
        fields[4] = gecos;
        let mut lines = passwd.lines.clone();
        lines.0[i] = fields.join(":");
        self.write("etc/passwd", &passwd, &lines);
        Ok(())
    }

    /// `usermod -a -G GROUP USER`: the user appended to the group's
    /// member lists in group and gshadow.
    pub fn usermod_append(&mut self, group_name: &str, user: &str) -> Result<(), Odd> {
        let append = |lines: &Lines| -> Result<Lines, Odd> {
            let (i, mut f) = lines.by_name(group_name).ok_or(odd!())?;
            if f.len() != 4 || f[3].split(',').any(|m| m == user) {
                return Err(odd!());
            }
            if !f[3].is_empty() {
                f[3].push(',');
            }
            f[3].push_str(user);
            let mut out = lines.clone();
            out.0[i] = f.join(":");
            Ok(out)
        };
        let group = self.read("etc/group")?.ok_or(odd!())?;
        let new_group = append(&group.lines)?;
        let gshadow = self.read("etc/gshadow")?;
        let new_gshadow = gshadow.as_ref().map(|gs| append(&gs.lines)).transpose()?;
        self.write("etc/group", &group, &new_group);
        if let (Some(gs), Some(lines)) = (gshadow, new_gshadow) {
            self.write("etc/gshadow", &gs, &lines);
        }
        Ok(())
    }

    /// `gpasswd -M MEMBERS GROUP`: the member lists in group and gshadow.
    pub fn gpasswd_members(&mut self, group_name: &str, members: &[String]) -> Result<(), Odd> {
        let group = self.read("etc/group")?.ok_or(odd!())?;
        let gshadow = self.read("etc/gshadow")?;
        let list = members.join(",");
        let (i, mut f) = group.lines.by_name(group_name).ok_or(odd!())?;
        f[3] = list.clone();
        let mut lines = group.lines.clone();
        lines.0[i] = f.join(":");
        if let Some(gs) = gshadow {
            let (j, mut g) = gs.lines.by_name(group_name).ok_or(odd!())?;
            if g.len() != 4 {
                return Err(odd!());
            }
            g[3] = list;
            let mut glines = gs.lines.clone();
            glines.0[j] = g.join(":");
            self.write("etc/gshadow", &gs, &glines);
        }
        self.write("etc/group", &group, &lines);
        Ok(())
    }
}

/// Rewrites a colon file: the new content in place with `mode` and the
/// old owner, the old content as `rel-` with the old mode and owner.
pub fn write_db(tree: &mut Tree, rel: &str, old: &db::DbFile, lines: &Lines, mode: u32) {
    let mut backup = old.node.clone();
    backup.kind = Kind::File(old.lines.bytes());
    if let Ok(Some(b)) = tree.file(rel) {
        backup.kind = Kind::File(b.0);
    }
    tree.put(&format!("{rel}-"), backup);
    tree.put(
        rel,
        Node {
            kind: Kind::File(lines.bytes()),
            mode,
            ..old.node.clone()
        },
    );
}

/// Creates the missing folders above `rel` (root's, mode 0755), as both
/// useradd and adduser do.
pub fn make_parents(tree: &mut Tree, rel: &str) -> Result<(), Odd> {
    let parts: Vec<&str> = rel.split('/').collect();
    for i in 1..parts.len() {
        let p = parts[..i].join("/");
        match tree.node(&p)? {
            Some(Node {
                kind: Kind::Dir, ..
            }) => {}
            Some(_) => return Err(odd!()),
            None => tree.put(
                &p,
                Node {
                    kind: Kind::Dir,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
            ),
        }
    }
    Ok(())
}

/// Copies the skeleton folder `skel` into the new home `home`, every
/// entry given to `uid:gid` with its own mode (`mode(mode, is_dir)` may
/// change it); `keep(name)` filters the entries. A missing skeleton copies
/// nothing; hard links and special files are not modelled.
pub fn copy_skel(
    tree: &mut Tree,
    skel: &str,
    home: &str,
    uid: u32,
    gid: u32,
    keep: impl Fn(&str) -> bool + Copy,
    mode: impl Fn(u32, bool) -> u32 + Copy,
) -> Result<(), Odd> {
    match tree.node(skel)? {
        None => return Ok(()),
        Some(Node {
            kind: Kind::Dir, ..
        }) => {}
        Some(_) => return Err(odd!()),
    }
    for name in tree.list(skel)? {
        if !keep(&name) {
            continue;
        }
        let from = format!("{skel}/{name}");
        let to = format!("{home}/{name}");
        if tree.linked(&from) {
            return Err(odd!());
        }
        let node = tree.node(&from)?.ok_or(odd!())?;
        let is_dir = node.kind == Kind::Dir;
        let m = match node.kind {
            Kind::Symlink(_) => 0o777,
            _ => mode(node.mode, is_dir),
        };
        tree.put(
            &to,
            Node {
                mode: m,
                uid,
                gid,
                ..node
            },
        );
        if is_dir {
            copy_skel(tree, &from, &to, uid, gid, keep, mode)?;
        }
    }
    Ok(())
}
