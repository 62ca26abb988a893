//! Adding the app user to a base's `/etc/passwd` and `/etc/group`.
//!
//! `RUN adduser -u 1001 nextjs` cannot run here (hoist runs nothing inside
//! the image), so hoist writes what `adduser`/`useradd` would have written:
//! one line appended to each account file the base has, in that base's own
//! conventions, so the result looks as if the distribution's tool made it.
//! The files' existing lines (comments, blank lines, odd spacing) are kept
//! byte for byte; only a missing final newline is added before appending.
//!
//! The rules, in order:
//! - A user named NAME already in the base (like `node` in `node:*`
//!   images) is reused as it is: nothing is written, its uid, gid, home and
//!   shell are taken from passwd. Asking for another uid or gid for it is
//!   a clash.
//! - Otherwise the uid is the one asked for, else [`DEFAULT_UID`]; it must
//!   be free in passwd. The primary group is the group named NAME if the
//!   base has one (its gid must match the one asked for, if any), else a
//!   new group NAME with the gid asked for, else gid = uid, which must be
//!   free in group.
//! - The shell is a "no login" one, chosen by what the base's own system
//!   users use (`/sbin/nologin` on Alpine, `/usr/sbin/nologin` on Debian,
//!   `/bin/false` on busybox), else by the os family. GECOS is
//!   `Linux User,,,` where busybox `adduser` made the accounts (Alpine),
//!   empty where `useradd` did (Debian).
//! - `/etc/shadow` and `/etc/gshadow` get a locked entry only if the base
//!   has them (`NAME:!:DAYS:0:99999:7:::`, `NAME:!::`, as `useradd` and
//!   `adduser -D` write them). DAYS comes from the caller (days since the
//!   epoch of `SOURCE_DATE_EPOCH`) so the layer is reproducible.
//! - A base without `/etc/passwd` (scratch, some distroless) gets one with
//!   `root:x:0:0:root:/root:/sbin/nologin` and the user; one without
//!   `/etc/group` gets `root:x:0:` and the group. Without a root entry,
//!   tools that look up uid 0 (and some runtimes) misbehave.
//!
//! Everything here is a pure function over bytes: the files come from
//! [`crate::facts`], and the layer writer takes the result.

use crate::digest::Digest;
use crate::exec::{BuildError, BuildOptions};
use crate::facts::{Facts, OsFamily};
use crate::graph::spec::bad_id;
pub use crate::graph::spec::{UserSpec, UserSpecError};
use crate::layer::{EntryMeta, ImagePath, Layer, LayerWriter};
use crate::store::Store;

/// The uid (and gid) of the app user when none is given.
pub const DEFAULT_UID: u32 = 1001;

/// The passwd hoist creates for a base that has none.
const CREATED_PASSWD: &[u8] = b"root:x:0:0:root:/root:/sbin/nologin\n";
/// The group file hoist creates for a base that has none.
const CREATED_GROUP: &[u8] = b"root:x:0:\n";

/// What Alpine's (busybox) `adduser -D` puts in GECOS.
const BUSYBOX_GECOS: &str = "Linux User,,,";

/// Why the app user cannot be added.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error(transparent)]
    Spec(#[from] UserSpecError),
    #[error("the base's {file}, line {line}: {why}: `{text}`")]
    Malformed {
        file: &'static str,
        line: usize,
        text: String,
        why: String,
    },
    #[error(transparent)]
    Clash(#[from] Clash),
}

/// The user asked for cannot coexist with the base's accounts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Clash {
    #[error("uid {uid} already belongs to `{owner}` in the base's /etc/passwd; pick another uid with --user {name}:UID")]
    UidTaken {
        uid: u32,
        owner: String,
        name: String,
    },
    #[error("user `{name}` already exists in the base's /etc/passwd with uid {existing}, not {wanted}; drop the uid (--user {name}) to reuse it, or pick another name")]
    UserUid {
        name: String,
        existing: u32,
        wanted: u32,
    },
    #[error("user `{name}` already exists in the base's /etc/passwd with gid {existing}, not {wanted}; drop the gid (--user {name}:{uid}) to reuse it, or pick another name")]
    UserGid {
        name: String,
        uid: u32,
        existing: u32,
        wanted: u32,
    },
    #[error("gid {gid} already belongs to group `{owner}` in the base's /etc/group; pick another gid with --user {name}:{uid}:GID")]
    GidTaken {
        gid: u32,
        owner: String,
        name: String,
        uid: u32,
    },
    #[error("group `{name}` already exists in the base's /etc/group with gid {existing}, not {wanted}; drop the gid (--user {name}:{uid}) to use it")]
    GroupGid {
        name: String,
        uid: u32,
        existing: u32,
        wanted: u32,
    },
}

/// What adding the user means for the base's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPlan {
    pub uid: u32,
    pub gid: u32,
    /// `/home/NAME`, or the existing user's home.
    pub home: String,
    pub shell: String,
    /// The user already existed in the base: nothing is added.
    pub reused: bool,
    /// New contents of `/etc/passwd`; `None` = unchanged.
    pub passwd: Option<Vec<u8>>,
    /// New contents of `/etc/group`; `None` = unchanged.
    pub group: Option<Vec<u8>>,
    /// New contents of `/etc/shadow`; `None` = unchanged (or absent).
    pub shadow: Option<Vec<u8>>,
    /// New contents of `/etc/gshadow`; `None` = unchanged (or absent).
    pub gshadow: Option<Vec<u8>>,
}

impl UserPlan {
    /// The image config's `User`: numeric, so Kubernetes' `runAsNonRoot`
    /// can check it.
    pub fn config_user(&self) -> String {
        format!("{}:{}", self.uid, self.gid)
    }
}

/// Plans adding `spec` to the base described by `facts` (see the module
/// docs for the rules). `epoch_days` is the "last password change" day
/// written to shadow: `SOURCE_DATE_EPOCH / 86400`.
pub fn plan_user(spec: &UserSpec, facts: &Facts, epoch_days: u64) -> Result<UserPlan, UserError> {
    UserSpec::check_name(&spec.name)?;
    let name = spec.name.as_str();
    for (what, id) in [("uid", spec.uid), ("gid", spec.gid)] {
        if id == Some(u32::MAX) {
            return Err(bad_id(name, what, &u32::MAX.to_string()).into());
        }
    }
    let passwd_base = facts
        .passwd
        .as_ref()
        .map_or(CREATED_PASSWD, |f| &f.content[..]);
    let group_base = facts
        .group
        .as_ref()
        .map_or(CREATED_GROUP, |f| &f.content[..]);
    let users = parse_passwd(passwd_base)?;
    let groups = parse_group(group_base)?;

    if let Some(user) = users.iter().find(|u| u.name == name) {
        if let Some(wanted) = spec.uid.filter(|w| *w != user.uid) {
            return Err(Clash::UserUid {
                name: name.to_owned(),
                existing: user.uid,
                wanted,
            }
            .into());
        }
        if let Some(wanted) = spec.gid.filter(|w| *w != user.gid) {
            return Err(Clash::UserGid {
                name: name.to_owned(),
                uid: user.uid,
                existing: user.gid,
                wanted,
            }
            .into());
        }
        return Ok(UserPlan {
            uid: user.uid,
            gid: user.gid,
            home: user.home.to_owned(),
            shell: user.shell.to_owned(),
            reused: true,
            passwd: None,
            group: None,
            shadow: None,
            gshadow: None,
        });
    }

    let uid = spec.uid.unwrap_or(DEFAULT_UID);
    if let Some(owner) = users.iter().find(|u| u.uid == uid) {
        return Err(Clash::UidTaken {
            uid,
            owner: owner.name.to_owned(),
            name: name.to_owned(),
        }
        .into());
    }
    let (gid, new_group) = match groups.iter().find(|g| g.name == name) {
        Some(group) => {
            if let Some(wanted) = spec.gid.filter(|w| *w != group.gid) {
                return Err(Clash::GroupGid {
                    name: name.to_owned(),
                    uid,
                    existing: group.gid,
                    wanted,
                }
                .into());
            }
            (group.gid, false)
        }
        None => {
            let gid = spec.gid.unwrap_or(uid);
            if let Some(owner) = groups.iter().find(|g| g.gid == gid) {
                return Err(Clash::GidTaken {
                    gid,
                    owner: owner.name.to_owned(),
                    name: name.to_owned(),
                    uid,
                }
                .into());
            }
            (gid, true)
        }
    };

    let family = facts.os_family();
    let home = format!("/home/{name}");
    let shell = pick_shell(&users, family);
    let gecos = if family == OsFamily::Alpine || users.iter().any(|u| u.gecos == BUSYBOX_GECOS) {
        BUSYBOX_GECOS
    } else {
        ""
    };
    let passwd = append_line(
        passwd_base,
        &format!("{name}:x:{uid}:{gid}:{gecos}:{home}:{shell}"),
    );
    let group = if new_group {
        Some(append_line(group_base, &format!("{name}:x:{gid}:")))
    } else if facts.group.is_none() {
        Some(group_base.to_vec())
    } else {
        None
    };
    let shadow = facts
        .shadow
        .as_ref()
        .filter(|f| !has_entry(&f.content, name))
        .map(|f| append_line(&f.content, &format!("{name}:!:{epoch_days}:0:99999:7:::")));
    let gshadow = facts
        .gshadow
        .as_ref()
        .filter(|f| new_group && !has_entry(&f.content, name))
        .map(|f| append_line(&f.content, &format!("{name}:!::")));
    Ok(UserPlan {
        uid,
        gid,
        home,
        shell,
        reused: false,
        passwd: Some(passwd),
        group,
        shadow,
        gshadow,
    })
}

/// The no-login shell the base's own accounts use most, else `/bin/false`
/// if they use that, else the family's.
fn pick_shell(users: &[PasswdEntry<'_>], family: OsFamily) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for u in users.iter().filter(|u| u.shell.ends_with("/nologin")) {
        match counts.iter_mut().find(|(s, _)| *s == u.shell) {
            Some((_, n)) => *n += 1,
            None => counts.push((u.shell, 1)),
        }
    }
    // Ties go to the first seen: `max_by_key` keeps the last maximum.
    let best = counts.iter().rev().max_by_key(|(_, n)| *n).map(|(s, _)| *s);
    if let Some(shell) = best {
        return shell.to_owned();
    }
    if users.iter().any(|u| u.shell == "/bin/false") {
        return "/bin/false".to_owned();
    }
    match family {
        OsFamily::Alpine => "/sbin/nologin",
        OsFamily::Debian => "/usr/sbin/nologin",
        OsFamily::Other => "/bin/false",
    }
    .to_owned()
}

/// `base` with `line` appended, after a newline if `base` lacks a final one.
fn append_line(base: &[u8], line: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(base.len() + line.len() + 2);
    out.extend_from_slice(base);
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(line.as_bytes());
    out.push(b'\n');
    out
}

/// Whether a shadow-style file has a line for `name`.
fn has_entry(file: &[u8], name: &str) -> bool {
    file.split(|b| *b == b'\n')
        .any(|line| line.split(|b| *b == b':').next() == Some(name.as_bytes()))
}

/// One passwd(5) line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PasswdEntry<'a> {
    pub(crate) name: &'a str,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    gecos: &'a str,
    home: &'a str,
    shell: &'a str,
}

/// One group(5) line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct GroupEntry<'a> {
    pub(crate) name: &'a str,
    pub(crate) gid: u32,
}

/// The account lines of a passwd/group file, with their line numbers and
/// fields. Blank lines, `#` comments and NIS compat lines (`+...`,
/// `-...`) are not accounts and are skipped.
fn account_lines<'a>(
    file: &'static str,
    bytes: &'a [u8],
    fields: usize,
) -> Result<Vec<(usize, Vec<&'a str>)>, UserError> {
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let malformed = |why: String| UserError::Malformed {
            file,
            line: i + 1,
            text: String::from_utf8_lossy(raw).into_owned(),
            why,
        };
        let line = std::str::from_utf8(raw).map_err(|_| malformed("not UTF-8".into()))?;
        if line.trim().is_empty() || line.starts_with(['#', '+', '-']) {
            continue;
        }
        let parts: Vec<&str> = line.split(':').collect();
        if parts.len() != fields {
            return Err(malformed(format!(
                "{} fields where {fields} are expected",
                parts.len()
            )));
        }
        if parts[0].is_empty() {
            return Err(malformed("no name".into()));
        }
        out.push((i + 1, parts));
    }
    Ok(out)
}

fn id_field(
    file: &'static str,
    line: usize,
    text: &[&str],
    idx: usize,
    what: &str,
) -> Result<u32, UserError> {
    text[idx].parse::<u32>().map_err(|_| UserError::Malformed {
        file,
        line,
        text: text.join(":"),
        why: format!("the {what} `{}` is not a number", text[idx]),
    })
}

pub(crate) fn parse_passwd(bytes: &[u8]) -> Result<Vec<PasswdEntry<'_>>, UserError> {
    const FILE: &str = "/etc/passwd";
    account_lines(FILE, bytes, 7)?
        .into_iter()
        .map(|(line, f)| {
            Ok(PasswdEntry {
                name: f[0],
                uid: id_field(FILE, line, &f, 2, "uid")?,
                gid: id_field(FILE, line, &f, 3, "gid")?,
                gecos: f[4],
                home: f[5],
                shell: f[6],
            })
        })
        .collect()
}

pub(crate) fn parse_group(bytes: &[u8]) -> Result<Vec<GroupEntry<'_>>, UserError> {
    const FILE: &str = "/etc/group";
    account_lines(FILE, bytes, 4)?
        .into_iter()
        .map(|(line, f)| {
            Ok(GroupEntry {
                name: f[0],
                gid: id_field(FILE, line, &f, 2, "gid")?,
            })
        })
        .collect()
}

/// The user layer: passwd, group (and shadow files where the base has
/// them) with the user appended, each keeping the base file's mode and
/// owner, and the user's home owned by the user.
pub(crate) fn user_layer(
    store: &Store,
    opts: &BuildOptions,
    facts: &Facts,
    plan: &UserPlan,
) -> Result<Layer, BuildError> {
    enum Item<'a> {
        Dir(EntryMeta),
        File(EntryMeta, &'a [u8]),
    }
    let path = |s: &str| ImagePath::new(s).map_err(|_| BuildError::Workdir(s.to_owned()));
    let mut entries: Vec<(ImagePath, Item)> = Vec::new();
    let files = [
        ("etc/passwd", &plan.passwd, &facts.passwd),
        ("etc/group", &plan.group, &facts.group),
        ("etc/shadow", &plan.shadow, &facts.shadow),
        ("etc/gshadow", &plan.gshadow, &facts.gshadow),
    ];
    for (name, content, fact) in files {
        if let Some(content) = content {
            let meta = fact.as_ref().map_or(EntryMeta::root(0o644), |f| f.meta);
            entries.push((path(name)?, Item::File(meta, content)));
        }
    }
    let home = path(&plan.home)?;
    for anc in home.ancestors() {
        // Only folders the base lacks are written, so the base's own
        // metadata for /home stays as it was.
        if anc.as_str() == "home" && facts.home.is_some() {
            continue;
        }
        entries.push((anc, Item::Dir(EntryMeta::root(0o755))));
    }
    let owned = EntryMeta {
        mode: 0o755,
        uid: plan.uid.into(),
        gid: plan.gid.into(),
    };
    entries.push((home, Item::Dir(owned)));
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut w = LayerWriter::new(store, opts.compression, opts.epoch)?;
    for (p, item) in entries {
        match item {
            Item::File(meta, bytes) => w.file(&p, meta, bytes.len() as u64, &mut &bytes[..])?,
            Item::Dir(meta) => w.dir(&p, meta)?,
        }
    }
    Ok(w.finish()?)
}

pub(crate) fn user_key(opts: &BuildOptions, plan: &UserPlan) -> String {
    let mut h = format!(
        "hoist user layer v1\n{:?} {} {}:{} {}\n",
        opts.compression, opts.epoch, plan.uid, plan.gid, plan.home
    )
    .into_bytes();
    for f in [&plan.passwd, &plan.group, &plan.shadow, &plan.gshadow] {
        h.extend_from_slice(
            Digest::of(f.as_deref().unwrap_or_default())
                .as_str()
                .as_bytes(),
        );
        h.push(b'\n');
    }
    Digest::of(&h).hex().to_owned()
}

#[cfg(test)]
mod tests;
