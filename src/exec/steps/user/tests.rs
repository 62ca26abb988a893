use super::*;
use crate::facts::{FileFact, Libc, OsRelease};
use crate::layer::EntryMeta;

/// From alpine-minirootfs-3.20.3.
const ALPINE_PASSWD: &str = "root:x:0:0:root:/root:/bin/sh
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
lp:x:4:7:lp:/var/spool/lpd:/sbin/nologin
sync:x:5:0:sync:/sbin:/bin/sync
shutdown:x:6:0:shutdown:/sbin:/sbin/shutdown
halt:x:7:0:halt:/sbin:/sbin/halt
mail:x:8:12:mail:/var/mail:/sbin/nologin
news:x:9:13:news:/usr/lib/news:/sbin/nologin
uucp:x:10:14:uucp:/var/spool/uucppublic:/sbin/nologin
cron:x:16:16:cron:/var/spool/cron:/sbin/nologin
ftp:x:21:21::/var/lib/ftp:/sbin/nologin
sshd:x:22:22:sshd:/dev/null:/sbin/nologin
games:x:35:35:games:/usr/games:/sbin/nologin
ntp:x:123:123:NTP:/var/empty:/sbin/nologin
guest:x:405:100:guest:/dev/null:/sbin/nologin
nobody:x:65534:65534:nobody:/:/sbin/nologin
";
const ALPINE_GROUP: &str = "root:x:0:root
bin:x:1:root,bin,daemon
daemon:x:2:root,bin,daemon
sys:x:3:root,bin
adm:x:4:root,daemon
tty:x:5:
disk:x:6:root
lp:x:7:lp
kmem:x:9:
wheel:x:10:root
floppy:x:11:root
mail:x:12:mail
news:x:13:news
uucp:x:14:uucp
cron:x:16:cron
audio:x:18:
cdrom:x:19:
dialout:x:20:root
ftp:x:21:
sshd:x:22:
input:x:23:
tape:x:26:root
video:x:27:root
netdev:x:28:
kvm:x:34:kvm
games:x:35:
shadow:x:42:
www-data:x:82:
users:x:100:games
ntp:x:123:
abuild:x:300:
utmp:x:406:
ping:x:999:
nogroup:x:65533:
nobody:x:65534:
";
const ALPINE_SHADOW: &str = "root:*::0:::::
bin:!::0:::::
nobody:!::0:::::
";
/// The shape of debian:12's files.
const DEBIAN_PASSWD: &str = "root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
games:x:5:60:games:/usr/games:/usr/sbin/nologin
man:x:6:12:man:/var/cache/man:/usr/sbin/nologin
lp:x:7:7:lp:/var/spool/lpd:/usr/sbin/nologin
mail:x:8:8:mail:/var/mail:/usr/sbin/nologin
news:x:9:9:news:/var/spool/news:/usr/sbin/nologin
uucp:x:10:10:uucp:/var/spool/uucp:/usr/sbin/nologin
proxy:x:13:13:proxy:/bin:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
backup:x:34:34:backup:/var/backups:/usr/sbin/nologin
list:x:38:38:Mailing List Manager:/var/list:/usr/sbin/nologin
irc:x:39:39:ircd:/run/ircd:/usr/sbin/nologin
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
";
const DEBIAN_GROUP: &str = "root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
news:x:9:
uucp:x:10:
man:x:12:
proxy:x:13:
kmem:x:15:
dialout:x:20:
fax:x:21:
voice:x:22:
cdrom:x:24:
floppy:x:25:
tape:x:26:
sudo:x:27:
audio:x:29:
dip:x:30:
www-data:x:33:
backup:x:34:
operator:x:37:
list:x:38:
irc:x:39:
src:x:40:
shadow:x:42:
utmp:x:43:
video:x:44:
sasl:x:45:
plugdev:x:46:
staff:x:50:
games:x:60:
users:x:100:
nogroup:x:65534:
";
const DEBIAN_SHADOW: &str = "root:*:19800:0:99999:7:::
daemon:*:19800:0:99999:7:::
nobody:*:19800:0:99999:7:::
";
const DEBIAN_GSHADOW: &str = "root:*::
daemon:*::
nogroup:*::
";
/// busybox:latest.
const BUSYBOX_PASSWD: &str = "root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
";
const BUSYBOX_GROUP: &str = "root:x:0:
daemon:x:1:
nogroup:x:65534:
";

fn fact(s: &str) -> Option<FileFact> {
    Some(FileFact {
        content: s.as_bytes().to_vec(),
        meta: EntryMeta::root(0o644),
    })
}

fn os(id: &str) -> Option<OsRelease> {
    Some(OsRelease::parse(format!("ID={id}\n").as_bytes()))
}

fn alpine() -> Facts {
    Facts {
        passwd: fact(ALPINE_PASSWD),
        group: fact(ALPINE_GROUP),
        shadow: fact(ALPINE_SHADOW),
        gshadow: None,
        os_release: os("alpine"),
        home: Some(EntryMeta::root(0o755)),
        libc: Some(Libc::Musl),
        ..Facts::default()
    }
}

fn node_alpine() -> Facts {
    Facts {
        passwd: fact(&format!(
            "{ALPINE_PASSWD}node:x:1000:1000:Linux User,,,:/home/node:/bin/sh\n"
        )),
        group: fact(&format!("{ALPINE_GROUP}node:x:1000:node\n")),
        ..alpine()
    }
}

fn debian() -> Facts {
    Facts {
        passwd: fact(DEBIAN_PASSWD),
        group: fact(DEBIAN_GROUP),
        shadow: fact(DEBIAN_SHADOW),
        gshadow: fact(DEBIAN_GSHADOW),
        os_release: os("debian"),
        home: Some(EntryMeta::root(0o755)),
        libc: Some(Libc::Glibc),
        ..Facts::default()
    }
}

#[test]
fn spec_parse_table() {
    let ok = |name: &str, uid, gid| {
        Ok(UserSpec {
            name: name.into(),
            uid,
            gid,
        })
    };
    let cases: &[(&str, Result<UserSpec, &str>)] = &[
        ("nextjs", ok("nextjs", None, None)),
        ("nextjs:1001", ok("nextjs", Some(1001), None)),
        ("app:1001:2000", ok("app", Some(1001), Some(2000))),
        ("_svc-2", ok("_svc-2", None, None)),
        ("machine$", ok("machine$", None, None)),
        ("a:0:0", ok("a", Some(0), Some(0))),
        (&"a".repeat(32), ok(&"a".repeat(32), None, None)),
        (&"a".repeat(33), Err("is too long")),
        ("", Err("is empty")),
        ("Nextjs", Err("does not start")),
        ("1app", Err("does not start")),
        ("-app", Err("does not start")),
        ("app.js", Err("refuses")),
        ("a$b", Err("refuses")),
        ("app:", Err("uid ``")),
        ("app:x", Err("uid `x`")),
        ("app:-1", Err("uid `-1`")),
        ("app:+5", Err("uid `+5`")),
        ("app:4294967295", Err("uid `4294967295`")),
        ("app:4294967296", Err("uid `4294967296`")),
        ("app:1:", Err("gid ``")),
        ("app:1:2:3", Err("not NAME[:UID[:GID]]")),
    ];
    for (input, want) in cases {
        let got = UserSpec::parse(input);
        match want {
            Ok(spec) => assert_eq!(got.as_ref(), Ok(spec), "{input}"),
            Err(needle) => {
                let err = got.unwrap_err().to_string();
                assert!(err.contains(needle), "{input}: {err}");
            }
        }
    }
}

/// What a successful plan should look like; file fields are the
/// lines expected appended to the base's file (`None`: unchanged).
struct Want {
    uid: u32,
    gid: u32,
    home: &'static str,
    shell: &'static str,
    reused: bool,
    passwd: Option<&'static str>,
    group: Option<&'static str>,
    shadow: Option<&'static str>,
    gshadow: Option<&'static str>,
}

fn appended(base: &Option<FileFact>, new: &Option<Vec<u8>>) -> Option<String> {
    let new = String::from_utf8(new.clone()?).unwrap();
    let base = base
        .as_ref()
        .map(|f| String::from_utf8(f.content.clone()).unwrap())
        .unwrap_or_default();
    let rest = new
        .strip_prefix(&base)
        .unwrap_or_else(|| panic!("{new:?} does not start with the base's {base:?}"));
    Some(rest.to_owned())
}

#[test]
fn plan_table() {
    let days = 19_700;
    let cases: Vec<(&str, Facts, &str, Result<Want, &str>)> = vec![
        (
            "add nextjs to alpine",
            alpine(),
            "nextjs",
            Ok(Want {
                uid: 1001,
                gid: 1001,
                home: "/home/nextjs",
                shell: "/sbin/nologin",
                reused: false,
                passwd: Some("nextjs:x:1001:1001:Linux User,,,:/home/nextjs:/sbin/nologin\n"),
                group: Some("nextjs:x:1001:\n"),
                shadow: Some("nextjs:!:19700:0:99999:7:::\n"),
                gshadow: None,
            }),
        ),
        (
            "add agent to debian",
            debian(),
            "agent:1500",
            Ok(Want {
                uid: 1500,
                gid: 1500,
                home: "/home/agent",
                shell: "/usr/sbin/nologin",
                reused: false,
                passwd: Some("agent:x:1500:1500::/home/agent:/usr/sbin/nologin\n"),
                group: Some("agent:x:1500:\n"),
                shadow: Some("agent:!:19700:0:99999:7:::\n"),
                gshadow: Some("agent:!::\n"),
            }),
        ),
        (
            "explicit gid on debian",
            debian(),
            "agent:1500:1600",
            Ok(Want {
                uid: 1500,
                gid: 1600,
                home: "/home/agent",
                shell: "/usr/sbin/nologin",
                reused: false,
                passwd: Some("agent:x:1500:1600::/home/agent:/usr/sbin/nologin\n"),
                group: Some("agent:x:1600:\n"),
                shadow: Some("agent:!:19700:0:99999:7:::\n"),
                gshadow: Some("agent:!::\n"),
            }),
        ),
        (
            "reuse node in node:alpine",
            node_alpine(),
            "node",
            Ok(Want {
                uid: 1000,
                gid: 1000,
                home: "/home/node",
                shell: "/bin/sh",
                reused: true,
                passwd: None,
                group: None,
                shadow: None,
                gshadow: None,
            }),
        ),
        (
            "reuse node with its own uid and gid",
            node_alpine(),
            "node:1000:1000",
            Ok(Want {
                uid: 1000,
                gid: 1000,
                home: "/home/node",
                shell: "/bin/sh",
                reused: true,
                passwd: None,
                group: None,
                shadow: None,
                gshadow: None,
            }),
        ),
        (
            "existing group of the same name is used",
            Facts {
                group: fact(&format!("{DEBIAN_GROUP}agent:x:3000:\n")),
                ..debian()
            },
            "agent",
            Ok(Want {
                uid: 1001,
                gid: 3000,
                home: "/home/agent",
                shell: "/usr/sbin/nologin",
                reused: false,
                passwd: Some("agent:x:1001:3000::/home/agent:/usr/sbin/nologin\n"),
                group: None,
                shadow: Some("agent:!:19700:0:99999:7:::\n"),
                gshadow: None,
            }),
        ),
        (
            "no newline at the end of the files",
            Facts {
                passwd: fact(DEBIAN_PASSWD.trim_end()),
                group: fact(DEBIAN_GROUP.trim_end()),
                shadow: fact(DEBIAN_SHADOW.trim_end()),
                gshadow: fact(DEBIAN_GSHADOW.trim_end()),
                ..debian()
            },
            "agent",
            Ok(Want {
                uid: 1001,
                gid: 1001,
                home: "/home/agent",
                shell: "/usr/sbin/nologin",
                reused: false,
                passwd: Some("\nagent:x:1001:1001::/home/agent:/usr/sbin/nologin\n"),
                group: Some("\nagent:x:1001:\n"),
                shadow: Some("\nagent:!:19700:0:99999:7:::\n"),
                gshadow: Some("\nagent:!::\n"),
            }),
        ),
        (
            "comments, blank and NIS lines are kept",
            Facts {
                passwd: fact("# users\n\nroot:x:0:0:root:/root:/bin/sh\n+@netgroup::::::\n"),
                group: fact("root:x:0:\n\n# end\n"),
                shadow: None,
                gshadow: None,
                os_release: None,
                home: None,
                libc: None,
                ..Facts::default()
            },
            "app",
            Ok(Want {
                uid: 1001,
                gid: 1001,
                home: "/home/app",
                shell: "/bin/false",
                reused: false,
                passwd: Some("app:x:1001:1001::/home/app:/bin/false\n"),
                group: Some("app:x:1001:\n"),
                shadow: None,
                gshadow: None,
            }),
        ),
        (
            "busybox uses /bin/false",
            Facts {
                passwd: fact(BUSYBOX_PASSWD),
                group: fact(BUSYBOX_GROUP),
                ..Facts::default()
            },
            "app",
            Ok(Want {
                uid: 1001,
                gid: 1001,
                home: "/home/app",
                shell: "/bin/false",
                reused: false,
                passwd: Some("app:x:1001:1001::/home/app:/bin/false\n"),
                group: Some("app:x:1001:\n"),
                shadow: None,
                gshadow: None,
            }),
        ),
        (
            "no passwd and no group in the base",
            Facts::default(),
            "app",
            Ok(Want {
                uid: 1001,
                gid: 1001,
                home: "/home/app",
                shell: "/sbin/nologin",
                reused: false,
                passwd: Some(
                    "root:x:0:0:root:/root:/sbin/nologin\napp:x:1001:1001::/home/app:/sbin/nologin\n",
                ),
                group: Some("root:x:0:\napp:x:1001:\n"),
                shadow: None,
                gshadow: None,
            }),
        ),
        (
            "uid clash",
            node_alpine(),
            "nextjs:1000",
            Err("uid 1000 already belongs to `node` in the base's /etc/passwd; pick another uid with --user nextjs:UID"),
        ),
        (
            "default uid clash",
            Facts {
                passwd: fact(&format!("{DEBIAN_PASSWD}ci:x:1001:1001::/home/ci:/bin/bash\n")),
                ..debian()
            },
            "agent",
            Err("uid 1001 already belongs to `ci`"),
        ),
        (
            "uid 0 is root's",
            debian(),
            "agent:0",
            Err("uid 0 already belongs to `root`"),
        ),
        (
            "gid clash",
            debian(),
            "agent:1500:100",
            Err("gid 100 already belongs to group `users` in the base's /etc/group; pick another gid with --user agent:1500:GID"),
        ),
        (
            "default gid clash",
            Facts {
                group: fact(&format!("{DEBIAN_GROUP}docker:x:1001:\n")),
                ..debian()
            },
            "agent",
            Err("gid 1001 already belongs to group `docker`"),
        ),
        (
            "name exists with another uid",
            node_alpine(),
            "node:1001",
            Err("user `node` already exists in the base's /etc/passwd with uid 1000, not 1001"),
        ),
        (
            "name exists with another gid",
            node_alpine(),
            "node:1000:5",
            Err("user `node` already exists in the base's /etc/passwd with gid 1000, not 5"),
        ),
        (
            "group exists with another gid",
            Facts {
                group: fact(&format!("{DEBIAN_GROUP}agent:x:3000:\n")),
                ..debian()
            },
            "agent:1500:1500",
            Err("group `agent` already exists in the base's /etc/group with gid 3000, not 1500"),
        ),
        (
            "malformed passwd line",
            Facts {
                passwd: fact("root:x:0:0:root:/root:/bin/sh\nbroken:x:1\n"),
                ..debian()
            },
            "agent",
            Err("the base's /etc/passwd, line 2: 3 fields where 7 are expected: `broken:x:1`"),
        ),
        (
            "passwd uid not a number",
            Facts {
                passwd: fact("root:x:zero:0:root:/root:/bin/sh\n"),
                ..debian()
            },
            "agent",
            Err("line 1: the uid `zero` is not a number"),
        ),
        (
            "malformed group line",
            Facts {
                group: fact("root:x:0:\n\nstaff:x:\n"),
                ..debian()
            },
            "agent",
            Err("the base's /etc/group, line 3: 3 fields where 4 are expected"),
        ),
    ];
    for (name, facts, spec, want) in cases {
        let spec = UserSpec::parse(spec).unwrap();
        let got = plan_user(&spec, &facts, days);
        match want {
            Err(needle) => {
                let err = got.unwrap_err();
                assert!(err.to_string().contains(needle), "{name}: {err}");
                if name.contains("clash") || name.contains("exists") {
                    assert!(matches!(err, UserError::Clash(_)), "{name}: {err:?}");
                }
            }
            Ok(w) => {
                let plan = got.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(
                    (plan.uid, plan.gid, plan.home.as_str(), plan.shell.as_str()),
                    (w.uid, w.gid, w.home, w.shell),
                    "{name}"
                );
                assert_eq!(plan.reused, w.reused, "{name}");
                assert_eq!(
                    appended(&facts.passwd, &plan.passwd).as_deref(),
                    w.passwd,
                    "{name}"
                );
                assert_eq!(
                    appended(&facts.group, &plan.group).as_deref(),
                    w.group,
                    "{name}"
                );
                assert_eq!(
                    appended(&facts.shadow, &plan.shadow).as_deref(),
                    w.shadow,
                    "{name}"
                );
                assert_eq!(
                    appended(&facts.gshadow, &plan.gshadow).as_deref(),
                    w.gshadow,
                    "{name}"
                );
                assert_eq!(plan.config_user(), format!("{}:{}", w.uid, w.gid));
            }
        }
    }
}

#[test]
fn existing_shadow_entries_are_left_alone() {
    let facts = Facts {
        shadow: fact(&format!("{DEBIAN_SHADOW}agent:!:1:0:99999:7:::\n")),
        gshadow: fact(&format!("{DEBIAN_GSHADOW}agent:!::\n")),
        ..debian()
    };
    let plan = plan_user(&UserSpec::parse("agent").unwrap(), &facts, 5).unwrap();
    assert!(!plan.reused);
    assert_eq!(plan.shadow, None);
    assert_eq!(plan.gshadow, None);
}

#[test]
fn shell_prefers_the_most_used_nologin() {
    let users = parse_passwd(
        b"a:x:1:1::/:/sbin/nologin\nb:x:2:2::/:/usr/sbin/nologin\nc:x:3:3::/:/usr/sbin/nologin\nd:x:4:4::/:/bin/false\n",
    )
    .unwrap();
    assert_eq!(pick_shell(&users, OsFamily::Alpine), "/usr/sbin/nologin");
    assert_eq!(pick_shell(&users[..2], OsFamily::Other), "/sbin/nologin");
    assert_eq!(pick_shell(&users[3..], OsFamily::Debian), "/bin/false");
    assert_eq!(pick_shell(&[], OsFamily::Debian), "/usr/sbin/nologin");
    assert_eq!(pick_shell(&[], OsFamily::Alpine), "/sbin/nologin");
    assert_eq!(pick_shell(&[], OsFamily::Other), "/bin/false");
}
