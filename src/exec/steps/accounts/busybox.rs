//! busybox's `addgroup` and `adduser` (1.36.1, as Alpine builds it) as
//! the files they leave.
//!
//! Every change goes through busybox's `update_passwd`: the file is
//! written anew as `FILE+` (mode `& 0777` and owner of the old one), the
//! old one is kept as `FILE-` (a hard link, so its own mode and owner),
//! and `FILE+` is renamed into place; lines are copied as read, each
//! ending with a newline, and a new line goes last. Ids are the first free
//! ones from 100 (system, up to 999) or 1000 (up to 60000); a user without
//! `-G` gets a group of its own with gid = uid, so the uid is one free in
//! both files. `adduser` then runs `addgroup` for that group (or to add
//! the user to `-G`'s group; `nogroup` for system users), makes the home
//! (02755, the user's) and, with no `/etc/skel`, copies nothing.

use crate::graph::native::{Action, NewGroup, NewUser};

use super::db::{self, Lines};
use super::shadow::write_db;
use super::tree::{Kind, Node, Odd, Tree};

const FIRST_SYSTEM_ID: u32 = 100;
const LAST_SYSTEM_ID: u32 = 999;
const LAST_ID: u32 = 60000;

pub fn run(tree: &mut Tree, action: &Action, env: &[String], epoch: u64) -> Result<(), Odd> {
    match action {
        Action::Group(g) => addgroup(tree, g),
        Action::Member { user, group } => add_member(tree, user, group),
        Action::User(u) => adduser(tree, u, env, epoch),
    }
}

/// `update_passwd`: rewrites `rel` as `lines`; `Ok(false)` when the file
/// is missing (an error for passwd and group, ignored for the shadow
/// files).
fn update(tree: &mut Tree, rel: &str, change: impl FnOnce(&mut Lines)) -> Result<bool, Odd> {
    let Some(old) = db::read(tree, rel)? else {
        return Ok(false);
    };
    let mut lines = old.lines.clone();
    change(&mut lines);
    write_db(tree, rel, &old, &lines, old.node.mode & 0o777);
    Ok(true)
}

fn addgroup(tree: &mut Tree, g: &NewGroup) -> Result<(), Odd> {
    let group = db::read(tree, "etc/group")?.ok_or(odd!())?;
    if group.lines.odd(4, true) || group.lines.by_name(&g.name).is_some() {
        return Err(odd!());
    }
    let gid = match g.gid {
        Some(gid) if gid > LAST_ID || group.lines.by_id(gid).is_some() => return Err(odd!()),
        Some(gid) => gid,
        None => {
            let (first, max) = match g.system {
                true => (FIRST_SYSTEM_ID, LAST_SYSTEM_ID),
                false => (LAST_SYSTEM_ID + 1, LAST_ID),
            };
            (first..=max)
                .find(|i| group.lines.by_id(*i).is_none())
                .ok_or(odd!())?
        }
    };
    new_group(tree, &g.name, gid)
}

fn new_group(tree: &mut Tree, name: &str, gid: u32) -> Result<(), Odd> {
    if !update(tree, "etc/group", |l| l.0.push(format!("{name}:x:{gid}:")))? {
        return Err(odd!());
    }
    update(tree, "etc/gshadow", |l| l.0.push(format!("{name}:!::")))?;
    Ok(())
}

/// `addgroup USER GROUP`: the user appended to the group's member list
/// (in gshadow too, whose file is rewritten even when it lacks the
/// group's line).
fn add_member(tree: &mut Tree, user: &str, group_name: &str) -> Result<(), Odd> {
    let passwd = db::read(tree, "etc/passwd")?.ok_or(odd!())?;
    let group = db::read(tree, "etc/group")?.ok_or(odd!())?;
    if passwd.lines.by_name(user).is_none() {
        return Err(odd!());
    }
    let (_, f) = group.lines.by_name(group_name).ok_or(odd!())?;
    if f[3].split(',').any(|m| m == user) {
        return Ok(());
    }
    let prefix = format!("{group_name}:");
    let append = |l: &mut Lines| {
        for line in l.0.iter_mut() {
            if line.starts_with(&prefix) {
                if !line.ends_with(':') {
                    line.push(',');
                }
                line.push_str(user);
            }
        }
    };
    update(tree, "etc/group", append)?;
    update(tree, "etc/gshadow", append)?;
    Ok(())
}

fn adduser(tree: &mut Tree, u: &NewUser, env: &[String], epoch: u64) -> Result<(), Odd> {
    let passwd = db::read(tree, "etc/passwd")?.ok_or(odd!())?;
    let group = db::read(tree, "etc/group")?.ok_or(odd!())?;
    if passwd.lines.odd(7, true)
        || group.lines.odd(4, true)
        || passwd.lines.by_name(&u.name).is_some()
    {
        return Err(odd!());
    }
    let shell = match &u.shell {
        Some(s) => s.clone(),
        // Alpine's busybox gives system users /sbin/nologin (upstream:
        // /bin/false).
        None if u.system => "/sbin/nologin".to_owned(),
        None => login_shell(&passwd.lines, env),
    };
    let usegroup = match &u.group {
        Some(g) => Some(g.clone()),
        None if u.system => Some("nogroup".to_owned()),
        None => None,
    };
    let gid = match &usegroup {
        None => None,
        Some(g) => {
            let (_, f) = group.lines.by_name(g).ok_or(odd!())?;
            Some(f[2].parse::<u32>().map_err(|_| odd!())?)
        }
    };
    let uid = match u.uid {
        Some(uid) if uid > LAST_ID => return Err(odd!()),
        Some(uid) => {
            if passwd.lines.by_id(uid).is_some()
                || (gid.is_none() && group.lines.by_id(uid).is_some())
            {
                return Err(odd!());
            }
            uid
        }
        None => {
            let (first, max) = match u.system {
                true => (FIRST_SYSTEM_ID, LAST_SYSTEM_ID),
                false => (LAST_SYSTEM_ID + 1, LAST_ID),
            };
            (first..=max)
                .find(|i| {
                    passwd.lines.by_id(*i).is_none()
                        && (gid.is_some() || group.lines.by_id(*i).is_none())
                })
                .ok_or(odd!())?
        }
    };
    let gid = match gid {
        Some(g) => g,
        None => {
            if group.lines.by_name(&u.name).is_some() {
                return Err(odd!());
            }
            uid
        }
    };
    let gecos = u
        .gecos
        .clone()
        .unwrap_or_else(|| "Linux User,,,".to_owned());
    let home = u
        .home
        .clone()
        .unwrap_or_else(|| format!("/home/{}", u.name));
    let line = format!("{}:x:{uid}:{gid}:{gecos}:{home}:{shell}", u.name);
    update(tree, "etc/passwd", |l| l.0.push(line))?;
    let day = epoch / 86400;
    let name = &u.name;
    update(tree, "etc/shadow", |l| {
        l.0.push(format!("{name}:!:{day}:0:99999:7:::"))
    })?;
    match &usegroup {
        Some(g) => add_member(tree, &u.name, g)?,
        None => new_group(tree, &u.name, gid)?,
    }
    if u.create_home != Some(false) {
        let rel = home.trim_matches('/');
        let parent = rel.rsplit_once('/').map_or("", |(d, _)| d);
        let parent_ok = parent.is_empty()
            || matches!(
                tree.node(parent)?,
                Some(Node {
                    kind: Kind::Dir,
                    ..
                })
            );
        if rel.is_empty()
            || !parent_ok
            || tree.node(rel)?.is_some()
            || tree.node("etc/skel")?.is_some()
        {
            return Err(odd!());
        }
        tree.put(
            rel,
            Node {
                kind: Kind::Dir,
                mode: 0o2755,
                uid,
                gid,
            },
        );
    }
    Ok(())
}

/// busybox's `get_shell_name`: `$SHELL`, else the calling user's (root's)
/// shell, else `/bin/sh`.
fn login_shell(passwd: &Lines, env: &[String]) -> String {
    if let Some(s) = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("SHELL="))
        .filter(|s| !s.is_empty())
    {
        return s.to_owned();
    }
    passwd
        .by_id(0)
        .and_then(|root| passwd.by_name(&root))
        .map(|(_, f)| f[6].clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".to_owned())
}
