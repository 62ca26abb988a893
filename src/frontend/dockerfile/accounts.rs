//! `RUN groupadd/useradd/addgroup/adduser ...` read as data, so hoist can
//! write the accounts itself instead of running the tool.
//!
//! Three tools answer to these names, with different flags:
//! - shadow's `groupadd`/`useradd` (Debian, Ubuntu, RHEL; Alpine only with
//!   the `shadow` package);
//! - Debian's perl `adduser`/`addgroup` (long options: `--system`,
//!   `--group`, `--ingroup`, `--gecos` ...);
//! - busybox's `adduser`/`addgroup` (Alpine: `-S`, `-D`, `-G GROUP`, `-g
//!   GECOS` ...).
//!
//! The same words can mean different things (`-g` is a group to shadow and
//! GECOS to busybox), and `adduser web` is valid for both adduser tools, so
//! an [`AccountOp`] keeps one [`Reading`] per flavour the words parse
//! under. Which one applies depends on the base (the executor looks at
//! what the program is in the image); an op with no reading for the base's
//! tool runs in the sandbox.
//!
//! Recognition is conservative: any flag not listed here, an abbreviated
//! long option, a flag that needs a terminal (a password prompt, an
//! interactive GECOS) or a value hoist does not model makes [`parse`]
//! answer `None`, and the command runs in the sandbox.

pub use crate::graph::native::{AccountOp, Action, Flavour, NewGroup, NewUser, Program, Reading};

/// Reads `argv` (program first) as an account command; `None` when it is
/// not one, or uses anything hoist does not model.
pub fn parse(argv: &[String]) -> Option<AccountOp> {
    let program = match argv.first()?.as_str() {
        "groupadd" => Program::Groupadd,
        "useradd" => Program::Useradd,
        "addgroup" => Program::Addgroup,
        "adduser" => Program::Adduser,
        _ => return None,
    };
    let args = &argv[1..];
    let mut readings = Vec::new();
    let mut add = |flavour, action: Option<Action>| {
        if let Some(action) = action {
            readings.push(Reading { flavour, action });
        }
    };
    match program {
        Program::Groupadd => add(Flavour::Shadow, shadow_groupadd(args)),
        Program::Useradd => add(Flavour::Shadow, shadow_useradd(args)),
        Program::Addgroup => {
            add(Flavour::Debian, debian(args, true));
            add(Flavour::Busybox, busybox_addgroup(args));
        }
        Program::Adduser => {
            add(Flavour::Debian, debian(args, false));
            add(Flavour::Busybox, busybox_adduser(args));
        }
    }
    if readings.is_empty() {
        return None;
    }
    Some(AccountOp {
        program,
        argv: argv.to_vec(),
        readings,
    })
}

/// One option of a tool: its short letter, its long name, whether it
/// takes a value.
struct Opt {
    short: Option<char>,
    long: &'static str,
    value: bool,
}

const fn opt(short: char, long: &'static str, value: bool) -> Opt {
    Opt {
        short: Some(short),
        long,
        value,
    }
}

const fn long(long: &'static str, value: bool) -> Opt {
    Opt {
        short: None,
        long,
        value,
    }
}

/// Options found (by long name, with their values) and operands.
type Parsed = (Vec<(&'static str, String)>, Vec<String>);

/// GNU-style option reading, as getopt_long (and perl's Getopt::Long with
/// `single_dash_long`) does it: options anywhere, `--` ends them, short
/// options bundle (`-rm`), values attached (`-u1001`, `--uid=1001`) or
/// in the next word. Options come back as their long names. `None` on an
/// unknown option, a missing value, or a value given to a flag.
fn getopt(args: &[String], opts: &[Opt], single_dash_long: bool) -> Option<Parsed> {
    let mut found = Vec::new();
    let mut operands = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            operands.extend(args[i..].iter().cloned());
            break;
        }
        let long_body = match a.strip_prefix("--") {
            Some(b) => Some(b),
            None if single_dash_long && a.len() > 2 && a.starts_with('-') => Some(&a[1..]),
            None => None,
        };
        if let Some(body) = long_body {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (body, None),
            };
            let o = opts.iter().find(|o| o.long == name)?;
            let value = match (o.value, inline) {
                (true, Some(v)) => v,
                (true, None) => {
                    let v = args.get(i)?.clone();
                    i += 1;
                    v
                }
                (false, Some(_)) => return None,
                (false, None) => String::new(),
            };
            found.push((o.long, value));
            continue;
        }
        match a.strip_prefix('-') {
            Some(letters) if !letters.is_empty() => {
                for (at, c) in letters.char_indices() {
                    let o = opts.iter().find(|o| o.short == Some(c))?;
                    if !o.value {
                        found.push((o.long, String::new()));
                        continue;
                    }
                    let rest = &letters[at + c.len_utf8()..];
                    let value = if rest.is_empty() {
                        let v = args.get(i)?.clone();
                        i += 1;
                        v
                    } else {
                        rest.to_owned()
                    };
                    found.push((o.long, value));
                    break;
                }
            }
            _ => operands.push(a.clone()),
        }
    }
    Some((found, operands))
}

/// A decimal id, as the tools read one (no sign, no spaces).
fn id(v: &str) -> Option<u32> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// A name every flavour accepts the same way: `[a-z_][a-z0-9_-]*`, at
/// most 32 bytes. The tools differ beyond that (Debian relaxes shadow's
/// rule, adduser has its own, busybox allows capitals and dots), so any
/// other name is left to the tool in the sandbox.
fn name(v: &str) -> Option<String> {
    let mut bytes = v.bytes();
    let ok = v.len() <= 32
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
    ok.then(|| v.to_owned())
}

/// A value for a passwd field: no colon, no newline.
fn field(v: &str) -> Option<String> {
    (!v.contains([':', '\n', '\r', '\0'])).then(|| v.to_owned())
}

/// An absolute path for a home or a shell.
fn path(v: &str) -> Option<String> {
    (v.starts_with('/') && field(v).is_some()).then(|| v.to_owned())
}

fn shadow_groupadd(args: &[String]) -> Option<Action> {
    const OPTS: &[Opt] = &[opt('r', "system", false), opt('g', "gid", true)];
    let (found, operands) = getopt(args, OPTS, false)?;
    let [n] = operands.as_slice() else {
        return None;
    };
    let mut g = NewGroup {
        name: name(n)?,
        gid: None,
        system: false,
    };
    for (k, v) in found {
        match k {
            "system" => g.system = true,
            _ => g.gid = Some(id(&v)?),
        }
    }
    Some(Action::Group(g))
}

fn shadow_useradd(args: &[String]) -> Option<Action> {
    const OPTS: &[Opt] = &[
        opt('r', "system", false),
        opt('u', "uid", true),
        opt('g', "gid", true),
        opt('m', "create-home", false),
        opt('M', "no-create-home", false),
        opt('d', "home-dir", true),
        opt('s', "shell", true),
        opt('c', "comment", true),
        opt('l', "no-log-init", false),
        opt('U', "user-group", false),
        opt('N', "no-user-group", false),
    ];
    let (found, operands) = getopt(args, OPTS, false)?;
    let [n] = operands.as_slice() else {
        return None;
    };
    let mut u = NewUser {
        name: name(n)?,
        ..NewUser::default()
    };
    for (k, v) in found {
        match k {
            "system" => u.system = true,
            "uid" => u.uid = Some(id(&v)?),
            "gid" => u.group = Some(id(&v).map_or_else(|| name(&v), |g| Some(g.to_string()))?),
            "create-home" => u.create_home = Some(true),
            "no-create-home" => u.create_home = Some(false),
            "home-dir" => u.home = Some(path(&v)?),
            "shell" => u.shell = Some(path(&v)?),
            "comment" => u.gecos = Some(field(&v)?),
            "no-log-init" => u.no_log_init = true,
            "user-group" => u.user_group = Some(true),
            _ => u.user_group = Some(false),
        }
    }
    // useradd refuses -U with -g (and -U with -N).
    if u.user_group == Some(true) && u.group.is_some() {
        return None;
    }
    Some(Action::User(u))
}

/// Debian's `adduser`/`addgroup` (adduser 3.x, Getopt::Long: long options
/// with one or two dashes).
fn debian(args: &[String], addgroup: bool) -> Option<Action> {
    const OPTS: &[Opt] = &[
        long("system", false),
        long("group", false),
        long("uid", true),
        long("gid", true),
        long("ingroup", true),
        long("home", true),
        long("shell", true),
        long("no-create-home", false),
        long("disabled-password", false),
        long("disabled-login", false),
        long("gecos", true),
        long("comment", true),
        opt('q', "quiet", false),
    ];
    let (found, operands) = getopt(args, OPTS, true)?;
    let mut u = NewUser::default();
    let mut group_opt = false;
    let mut gid = None;
    let mut password_set = false;
    let mut any_user_flag = false;
    for (k, v) in found {
        match k {
            "system" => u.system = true,
            "group" => group_opt = true,
            "uid" => {
                u.uid = Some(id(&v)?);
                any_user_flag = true
            }
            "gid" => gid = Some(id(&v)?),
            "ingroup" => {
                u.group = Some(name(&v)?);
                any_user_flag = true
            }
            "home" => {
                u.home = Some(path(&v)?);
                any_user_flag = true
            }
            "shell" => {
                u.shell = Some(path(&v)?);
                any_user_flag = true
            }
            "no-create-home" => {
                u.create_home = Some(false);
                any_user_flag = true
            }
            "disabled-password" => password_set = true,
            "disabled-login" => {
                password_set = true;
                u.disabled_login = true
            }
            "gecos" | "comment" => {
                u.gecos = Some(field(&v)?);
                any_user_flag = true
            }
            _ => {}
        }
    }
    if usize::from(group_opt) + usize::from(u.group.is_some()) + usize::from(gid.is_some()) > 1 {
        return None;
    }
    match operands.as_slice() {
        [user, group] if !addgroup && !u.system && !group_opt && !any_user_flag => {
            Some(Action::Member {
                user: name(user)?,
                group: name(group)?,
            })
        }
        [n] if addgroup || (group_opt && !u.system) => {
            if any_user_flag || password_set {
                return None;
            }
            Some(Action::Group(NewGroup {
                name: name(n)?,
                gid,
                system: u.system,
            }))
        }
        [n] => {
            u.name = name(n)?;
            if group_opt {
                u.user_group = Some(true);
            }
            if let Some(g) = gid {
                u.group = Some(g.to_string());
            }
            // A user (not a system one) needs a password: without
            // --disabled-password/--disabled-login adduser prompts, and
            // without --gecos it asks for the finger information.
            if !u.system && (!password_set || u.gecos.is_none()) {
                return None;
            }
            Some(Action::User(u))
        }
        _ => None,
    }
}

fn busybox_adduser(args: &[String]) -> Option<Action> {
    const OPTS: &[Opt] = &[
        opt('h', "home", true),
        opt('g', "gecos", true),
        opt('s', "shell", true),
        opt('G', "ingroup", true),
        opt('D', "disabled-password", false),
        opt('S', "system", false),
        opt('H', "no-create-home", false),
        opt('u', "uid", true),
    ];
    let (found, operands) = getopt(args, OPTS, false)?;
    let mut u = NewUser::default();
    let mut no_password = false;
    let flags = !found.is_empty();
    for (k, v) in found {
        match k {
            "home" => u.home = Some(path(&v)?),
            "gecos" => u.gecos = Some(field(&v)?),
            "shell" => u.shell = Some(path(&v)?),
            "ingroup" => u.group = Some(name(&v)?),
            "disabled-password" => no_password = true,
            "system" => u.system = true,
            "no-create-home" => u.create_home = Some(false),
            _ => u.uid = Some(id(&v)?),
        }
    }
    match operands.as_slice() {
        [user, group] if !flags => Some(Action::Member {
            user: name(user)?,
            group: name(group)?,
        }),
        // Without -D (which -S implies) busybox runs `passwd`, which
        // prompts.
        [n] if no_password || u.system => {
            u.name = name(n)?;
            Some(Action::User(u))
        }
        _ => None,
    }
}

fn busybox_addgroup(args: &[String]) -> Option<Action> {
    const OPTS: &[Opt] = &[opt('g', "gid", true), opt('S', "system", false)];
    let (found, operands) = getopt(args, OPTS, false)?;
    let mut g = NewGroup {
        name: String::new(),
        gid: None,
        system: false,
    };
    let flags = !found.is_empty();
    for (k, v) in found {
        match k {
            "system" => g.system = true,
            _ => g.gid = Some(id(&v)?),
        }
    }
    match operands.as_slice() {
        [user, group] if !flags => Some(Action::Member {
            user: name(user)?,
            group: name(group)?,
        }),
        [n] => {
            g.name = name(n)?;
            Some(Action::Group(g))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        shell_words::split(s).unwrap()
    }

    fn user(name: &str) -> NewUser {
        NewUser {
            name: name.into(),
            ..NewUser::default()
        }
    }

    fn group(name: &str, gid: Option<u32>, system: bool) -> Action {
        Action::Group(NewGroup {
            name: name.into(),
            gid,
            system,
        })
    }

    #[test]
    fn shadow_commands() {
        let cases: Vec<(&str, Option<Action>)> = vec![
            ("groupadd app", Some(group("app", None, false))),
            ("groupadd -r app", Some(group("app", None, true))),
            ("groupadd --system -g 1001 app", Some(group("app", Some(1001), true))),
            ("groupadd -rg1001 app", Some(group("app", Some(1001), true))),
            ("groupadd --gid=7 app", Some(group("app", Some(7), false))),
            ("groupadd app -r", Some(group("app", None, true))),
            ("groupadd -f app", None),
            ("groupadd -g x app", None),
            ("groupadd -g -1 app", None),
            ("groupadd", None),
            ("groupadd a b", None),
            ("groupadd -- -r", None),
            ("groupadd Web", None),
            ("groupadd web.team", None),
            ("groupadd 1web", None),
            ("groupadd _web-1", Some(group("_web-1", None, false))),
            ("groupadd aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Some(group("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", None, false))),
            ("groupadd aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", None),
            (
                "useradd -r -g app app",
                Some(Action::User(NewUser {
                    system: true,
                    group: Some("app".into()),
                    ..user("app")
                })),
            ),
            (
                "useradd -m -u 1001 web",
                Some(Action::User(NewUser {
                    uid: Some(1001),
                    create_home: Some(true),
                    ..user("web")
                })),
            ),
            (
                "useradd --system --uid=5 --gid 7 --no-create-home -d /srv/x -s /bin/false -c 'A B' --no-log-init -N svc",
                Some(Action::User(NewUser {
                    system: true,
                    uid: Some(5),
                    group: Some("7".into()),
                    create_home: Some(false),
                    home: Some("/srv/x".into()),
                    shell: Some("/bin/false".into()),
                    gecos: Some("A B".into()),
                    no_log_init: true,
                    user_group: Some(false),
                    ..user("svc")
                })),
            ),
            (
                "useradd -rmU web",
                Some(Action::User(NewUser {
                    system: true,
                    create_home: Some(true),
                    user_group: Some(true),
                    ..user("web")
                })),
            ),
            ("useradd -U -g app web", None),
            ("useradd -G wheel web", None),
            ("useradd -p hash web", None),
            ("useradd -d rel web", None),
            ("useradd -c 'a:b' web", None),
            ("useradd -u", None),
            ("useradd --uid web", None),
            ("useradd --create-home=yes web", None),
            ("useradd 1001", None),
            ("useradd -D", None),
            ("usermod -aG x y", None),
        ];
        for (cmd, want) in cases {
            let got = parse(&words(cmd)).map(|op| {
                assert_eq!(op.readings.len(), 1, "{cmd}");
                assert!(op.reading(Flavour::Shadow).is_some(), "{cmd}");
                op.readings[0].action.clone()
            });
            assert_eq!(got, want, "{cmd}");
        }
    }

    #[test]
    fn adduser_and_addgroup_by_flavour() {
        // (command, Debian's reading, busybox's reading)
        let cases: Vec<(&str, Option<Action>, Option<Action>)> = vec![
            (
                "adduser --system --group app",
                Some(Action::User(NewUser {
                    system: true,
                    user_group: Some(true),
                    ..user("app")
                })),
                None,
            ),
            // busybox takes these long options too.
            (
                "adduser --disabled-password --gecos '' web",
                Some(Action::User(NewUser {
                    gecos: Some(String::new()),
                    ..user("web")
                })),
                Some(Action::User(NewUser {
                    gecos: Some(String::new()),
                    ..user("web")
                })),
            ),
            (
                "adduser --system --uid 1001 --ingroup app --home /srv --shell /bin/sh --no-create-home app",
                Some(Action::User(NewUser {
                    system: true,
                    uid: Some(1001),
                    group: Some("app".into()),
                    home: Some("/srv".into()),
                    shell: Some("/bin/sh".into()),
                    create_home: Some(false),
                    ..user("app")
                })),
                Some(Action::User(NewUser {
                    system: true,
                    uid: Some(1001),
                    group: Some("app".into()),
                    home: Some("/srv".into()),
                    shell: Some("/bin/sh".into()),
                    create_home: Some(false),
                    ..user("app")
                })),
            ),
            (
                "adduser --disabled-login --gecos=X --gid 100 web",
                Some(Action::User(NewUser {
                    gecos: Some("X".into()),
                    group: Some("100".into()),
                    disabled_login: true,
                    ..user("web")
                })),
                None,
            ),
            // Interactive in Debian's adduser (password, finger
            // information); busybox needs -D.
            ("adduser web", None, None),
            ("adduser --disabled-password web", None, Some(Action::User(user("web")))),
            ("adduser --system --group --gid 5 app", None, None),
            ("adduser --disabled-pass --gecos '' web", None, None),
            (
                "adduser -S -D -H -u 100 -G app -s /bin/sh -h /srv -g 'A' app",
                None,
                Some(Action::User(NewUser {
                    system: true,
                    create_home: Some(false),
                    uid: Some(100),
                    group: Some("app".into()),
                    shell: Some("/bin/sh".into()),
                    home: Some("/srv".into()),
                    gecos: Some("A".into()),
                    ..user("app")
                })),
            ),
            (
                "adduser -S -G app app",
                None,
                Some(Action::User(NewUser {
                    system: true,
                    group: Some("app".into()),
                    ..user("app")
                })),
            ),
            (
                "adduser -D -u 1001 web",
                None,
                Some(Action::User(NewUser {
                    uid: Some(1001),
                    ..user("web")
                })),
            ),
            (
                "adduser -DHu1001 web",
                None,
                Some(Action::User(NewUser {
                    uid: Some(1001),
                    create_home: Some(false),
                    ..user("web")
                })),
            ),
            ("adduser -D -k /etc/skel2 web", None, None),
            (
                "adduser web staff",
                Some(Action::Member {
                    user: "web".into(),
                    group: "staff".into(),
                }),
                Some(Action::Member {
                    user: "web".into(),
                    group: "staff".into(),
                }),
            ),
            ("adduser -D web staff", None, None),
            (
                "addgroup app",
                Some(group("app", None, false)),
                Some(group("app", None, false)),
            ),
            (
                "addgroup --system app",
                Some(group("app", None, true)),
                Some(group("app", None, true)),
            ),
            ("addgroup -S -g 1001 app", None, Some(group("app", Some(1001), true))),
            ("addgroup --gid 1001 app", Some(group("app", Some(1001), false)), Some(group("app", Some(1001), false))),
            (
                "addgroup web staff",
                None,
                Some(Action::Member {
                    user: "web".into(),
                    group: "staff".into(),
                }),
            ),
            ("addgroup -x app", None, None),
            ("addgroup", None, None),
        ];
        for (cmd, debian, busybox) in cases {
            let op = parse(&words(cmd));
            let got = |f| op.as_ref().and_then(|op| op.reading(f).cloned());
            assert_eq!(got(Flavour::Debian), debian, "{cmd} (Debian)");
            assert_eq!(got(Flavour::Busybox), busybox, "{cmd} (busybox)");
            assert_eq!(got(Flavour::Shadow), None, "{cmd}");
            assert_eq!(op.is_some(), debian.is_some() || busybox.is_some(), "{cmd}");
        }
    }
}
