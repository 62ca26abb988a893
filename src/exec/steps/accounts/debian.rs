//! Debian's perl `adduser`/`addgroup` (3.134, Debian 12) as the programs
//! it runs: it takes its lock (`/run/adduser`, created if missing), picks
//! ids itself (the first free one from the bottom of its ranges: 100-999
//! for system accounts, 1000-59999 otherwise, a user's id free as both uid
//! and gid when it gets its own group), then runs `groupadd -g`, `useradd
//! ... -u`, `chfn -f` for `--gecos`, makes the home itself (0700, or 0755
//! for a system user, with `/etc/skel` copied for a normal one) and adds a
//! normal user to `users` with `gpasswd -M`. `adduser USER GROUP` runs
//! `usermod -a -G GROUP USER`.
//!
//! Only the built-in configuration is modelled: an `/etc/adduser.conf`
//! with any setting, or an `adduser.local` hook, is not.

use crate::graph::native::{Action, NewGroup, NewUser};

use super::db::{self, Defs};
use super::shadow::{copy_skel, make_parents, Shadow};
use super::tree::{Kind, Node, Odd, Tree};

const SYSTEM_IDS: (u32, u32) = (100, 999);
const USER_IDS: (u32, u32) = (1000, 59999);

pub fn run(tree: &mut Tree, action: &Action, epoch: u64) -> Result<(), Odd> {
    if let Some((bytes, _)) = tree.file("etc/adduser.conf")? {
        let text = String::from_utf8_lossy(&bytes).replace('=', " ");
        if Defs::parse(text.as_bytes()).keys().next().is_some() {
            return Err(odd!());
        }
    }
    if tree.node("usr/local/sbin/adduser.local")?.is_some() {
        return Err(odd!());
    }
    match action {
        Action::Group(g) => {
            lock(tree)?;
            let group = db::read(tree, "etc/group")?.ok_or(odd!())?;
            if group.lines.by_name(&g.name).is_some() {
                return Err(odd!());
            }
            let range = if g.system { SYSTEM_IDS } else { USER_IDS };
            let gid = match g.gid {
                Some(gid) if group.lines.by_id(gid).is_some() => return Err(odd!()),
                Some(gid) => gid,
                None => first_free(range, |i| group.lines.by_id(i).is_none())?,
            };
            Shadow::new(tree, epoch)?.groupadd(&NewGroup {
                name: g.name.clone(),
                gid: Some(gid),
                system: false,
            })
        }
        Action::User(u) => {
            lock(tree)?;
            add_user(tree, u, epoch)
        }
        Action::Member { user, group } => {
            // `addusertogroup`: checked before the lock; a member already
            // is left alone.
            let passwd = db::read(tree, "etc/passwd")?.ok_or(odd!())?;
            let groups = db::read(tree, "etc/group")?.ok_or(odd!())?;
            passwd.lines.by_name(user).ok_or(odd!())?;
            let (_, f) = groups.lines.by_name(group).ok_or(odd!())?;
            if f.len() != 4 {
                return Err(odd!());
            }
            if f[3].split(',').any(|m| m == user) {
                return Ok(());
            }
            lock(tree)?;
            Shadow::new(tree, epoch)?.usermod_append(group, user)
        }
    }
}

/// `acquire_lock`: `open('>>', '/run/adduser')` (umask 022).
fn lock(tree: &mut Tree) -> Result<(), Odd> {
    match tree.node("run")? {
        Some(Node {
            kind: Kind::Dir, ..
        }) => {}
        _ => return Err(odd!()),
    }
    match tree.node("run/adduser")? {
        Some(Node {
            kind: Kind::File(_),
            ..
        }) => Ok(()),
        Some(_) => Err(odd!()),
        None => {
            tree.put(
                "run/adduser",
                Node {
                    kind: Kind::File(Vec::new()),
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                },
            );
            Ok(())
        }
    }
}

fn first_free((min, max): (u32, u32), free: impl Fn(u32) -> bool) -> Result<u32, Odd> {
    (min..=max).find(|i| free(*i)).ok_or(odd!())
}

fn add_user(tree: &mut Tree, u: &NewUser, epoch: u64) -> Result<(), Odd> {
    let passwd = db::read(tree, "etc/passwd")?.ok_or(odd!())?;
    let group = db::read(tree, "etc/group")?.ok_or(odd!())?;
    if passwd.lines.by_name(&u.name).is_some() {
        return Err(odd!());
    }
    if u.uid.is_some_and(|i| passwd.lines.by_id(i).is_some()) {
        return Err(odd!());
    }
    let uid_free = |i: u32| passwd.lines.by_id(i).is_none();
    let gid_free = |i: u32| group.lines.by_id(i).is_none();
    let gid_of = |name: &str| -> Result<u32, Odd> {
        let (_, f) = group.lines.by_name(name).ok_or(odd!())?;
        f[2].parse().map_err(|_| odd!())
    };
    // --gid N, --ingroup NAME, --group (own group), or neither.
    let named: Option<(String, u32)> = match &u.group {
        None => None,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => Some((group.lines.by_id(gid).ok_or(odd!())?, gid)),
            Err(_) => Some((g.clone(), gid_of(g)?)),
        },
    };
    let own_group = if u.system {
        u.user_group == Some(true)
    } else {
        named.is_none()
    };
    if own_group && group.lines.by_name(&u.name).is_some() {
        return Err(odd!());
    }
    let range = if u.system { SYSTEM_IDS } else { USER_IDS };
    let uid = match u.uid {
        Some(uid) => uid,
        None if u.system || named.is_some() => first_free(range, uid_free)?,
        None => first_free(range, |i| uid_free(i) && gid_free(i))?,
    };
    let (group_name, gid) = match named {
        Some(n) => n,
        None if own_group && u.system && u.uid.is_none() => {
            (u.name.clone(), first_free(range, gid_free)?)
        }
        None if own_group => {
            if !gid_free(uid) {
                return Err(odd!());
            }
            (u.name.clone(), uid)
        }
        None => {
            let gid = gid_of("nogroup").unwrap_or(65534);
            (group.lines.by_id(gid).ok_or(odd!())?, gid)
        }
    };
    let home = match &u.home {
        Some(h) => h.clone(),
        None if u.system => "/nonexistent".to_owned(),
        None => format!("/home/{}", u.name),
    };
    let shell = match &u.shell {
        Some(s) => s.clone(),
        None if u.system || u.disabled_login => "/usr/sbin/nologin".to_owned(),
        None => "/bin/bash".to_owned(),
    };

    let mut sh = Shadow::new(tree, epoch)?;
    if own_group {
        sh.groupadd(&NewGroup {
            name: u.name.clone(),
            gid: Some(gid),
            system: false,
        })?;
    }
    let call = NewUser {
        name: u.name.clone(),
        uid: Some(uid),
        system: u.system,
        group: Some(if u.system {
            group_name.clone()
        } else {
            gid.to_string()
        }),
        home: Some(home.clone()),
        shell: Some(shell),
        ..NewUser::default()
    };
    let k: &[(&str, u32)] = if u.system {
        &[("SYS_UID_MIN", SYSTEM_IDS.0), ("SYS_UID_MAX", SYSTEM_IDS.1)]
    } else {
        &[]
    };
    sh.useradd(&call, k)?;

    if u.system {
        if let Some(g) = &u.gecos {
            chfn(&mut sh, &u.name, g)?;
        }
        home_dir(sh.tree, &home, u, uid, gid)?;
        return Ok(());
    }
    home_dir(sh.tree, &home, u, uid, gid)?;
    // The parser only lets through users with --gecos (no chfn prompt)
    // and no password prompt.
    chfn(&mut sh, &u.name, u.gecos.as_deref().ok_or(odd!())?)?;
    // Then `users`, as a supplemental group.
    let group = db::read(sh.tree, "etc/group")?.ok_or(odd!())?;
    if let Some((_, f)) = group.lines.by_name("users") {
        let mut members: Vec<String> = f[3]
            .split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect();
        if !members.contains(&u.name) {
            members.push(u.name.clone());
            sh.gpasswd_members("users", &members)?;
        }
    }
    Ok(())
}

/// `ch_comment`: a GECOS with commas is split over several `chfn` calls,
/// which hoist does not model.
fn chfn(sh: &mut Shadow<'_>, user: &str, gecos: &str) -> Result<(), Odd> {
    if gecos.contains(',') {
        return Err(odd!());
    }
    sh.chfn_full_name(user, gecos)
}

/// `create_homedir`: nothing for `/nonexistent`, `--no-create-home` or an
/// existing folder; else the folders up to it (0755), the home given to
/// the user (0700, system users 0755), and for a normal user the skeleton.
fn home_dir(tree: &mut Tree, home: &str, u: &NewUser, uid: u32, gid: u32) -> Result<(), Odd> {
    let rel = home.trim_matches('/');
    let nonexistent = rel == "nonexistent" || rel.starts_with("nonexistent/");
    if nonexistent || u.create_home == Some(false) || rel.is_empty() {
        return Ok(());
    }
    match tree.node(rel)? {
        // adduser warns and leaves an existing folder as it is.
        Some(Node {
            kind: Kind::Dir, ..
        }) => return Ok(()),
        Some(_) => return Err(odd!()),
        None => {}
    }
    make_parents(tree, rel)?;
    tree.put(
        rel,
        Node {
            kind: Kind::Dir,
            mode: if u.system { 0o755 } else { 0o700 },
            uid,
            gid,
        },
    );
    if !u.system {
        let keep = |name: &str| {
            let ignored = [
                ".dpkg-old",
                ".dpkg-new",
                ".dpkg-dist",
                ".ucf-old",
                ".ucf-new",
                ".ucf-dist",
            ];
            !ignored.iter().any(|s| name.ends_with(s))
        };
        copy_skel(tree, "etc/skel", rel, uid, gid, keep, |m, _| m)?;
    }
    Ok(())
}
