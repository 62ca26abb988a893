//! The native layer against the real tools: each command runs in hoist's
//! sandbox on the test base (`scripts/make-bases`: Debian 12 slim, Alpine
//! 3.20), and the two layers are compared entry by entry (path, kind,
//! mode, owner, link target, file content).
//!
//! The sandbox step gets `SOURCE_DATE_EPOCH` in its environment, as a
//! Dockerfile RUN sees it when the build sets it: shadow's tools then
//! write its day into /etc/shadow, which is what hoist writes. busybox
//! reads the clock instead; for it the test checks that the new shadow
//! line's day is today's in the sandbox and the epoch's natively, and
//! that nothing else differs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;
use crate::frontend::dockerfile::accounts::parse;
use crate::image::Platform;
use crate::layer::compress::decompress;
use crate::layer::reader::{EntryKind, Flow, Item, LayerReader};
use crate::sandbox::{run_step, Step};
use crate::transport::{load_base, Transport};

const EPOCH: u64 = 1_700_000_000;

fn bases() -> PathBuf {
    std::env::var_os("HOIST_BASES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bases"))
}

/// A store with the base loaded, and the ground a RUN on it stands on.
fn ground(base: &str) -> (tempfile::TempDir, Store, Ground) {
    let file = bases().join(base);
    assert!(
        file.exists(),
        "test base {} is missing: run scripts/make-bases (scripts/test does)",
        file.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let t = Transport::OciArchive { file, tag: None };
    let base = load_base(&t, &Platform::parse("linux/amd64").unwrap(), &store).unwrap();
    let env = base
        .config
        .config
        .as_ref()
        .and_then(|c| c.env.clone())
        .unwrap_or_default();
    let ground = Ground {
        layers: base.layers.clone(),
        image_env: env,
        scratch_parent: store.root().join("sandbox"),
    };
    (dir, store, ground)
}

/// What a layer holds, by path: kind, mode, owner, and content or link.
type Listing = BTreeMap<String, (String, u32, u64, u64, Vec<u8>)>;

fn listing(store: &Store, layer: &Layer) -> Listing {
    let blob = store.open_blob(&layer.descriptor.digest).unwrap();
    let (_, stream) = decompress(blob).unwrap();
    let mut out = Listing::new();
    LayerReader::new(stream)
        .for_each(
            |item, content| -> Result<Flow, crate::layer::reader::LayerReadError> {
                let Item::Entry(e) = item else {
                    panic!("unexpected item {item:?}");
                };
                let (kind, body) = match e.kind {
                    EntryKind::Dir => ("dir".to_owned(), Vec::new()),
                    EntryKind::File { .. } => {
                        let mut b = Vec::new();
                        content.read_to_end(&mut b).unwrap();
                        ("file".to_owned(), b)
                    }
                    EntryKind::Symlink { target } => ("symlink".to_owned(), target.into_bytes()),
                    other => (format!("{other:?}"), Vec::new()),
                };
                out.insert(
                    e.path.as_str().to_owned(),
                    (kind, e.meta.mode & 0o7777, e.meta.uid, e.meta.gid, body),
                );
                Ok(Flow::Continue)
            },
        )
        .unwrap();
    out
}

/// The commands of `script` (`a && b`), each recognised.
fn ops(script: &str) -> Vec<AccountOp> {
    script
        .split("&&")
        .map(|c| {
            let words = shell_words::split(c.trim()).unwrap();
            parse(&words).unwrap_or_else(|| panic!("`{c}` is not recognised"))
        })
        .collect()
}

/// Runs `script` in the sandbox and natively on `base`; returns both
/// listings (the native one `None` when hoist declines).
fn both(base: &str, script: &str) -> (Listing, Option<Listing>) {
    both_at(base, script, EPOCH)
}

fn both_at(base: &str, script: &str, epoch: u64) -> (Listing, Option<Listing>) {
    let (_dir, store, ground) = ground(base);
    let step = Step {
        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec![("SOURCE_DATE_EPOCH".into(), epoch.to_string())],
        workdir: None,
        user: None,
        timeout: Some(std::time::Duration::from_secs(120)),
        mounts: Vec::new(),
        secret_env: Vec::new(),
    };
    let ran = run_step(&store, &ground, &step, Compression::Gzip, epoch)
        .unwrap_or_else(|e| panic!("the sandbox could not run `{script}`: {e}"));
    let native = native(&store, &ground, &ops(script), Compression::Gzip, epoch).unwrap();
    let (scoped, whole) = scoped_and_whole(&store, &ground, script, epoch);
    if let Some(scoped) = scoped {
        assert_eq!(
            scoped, whole,
            "`{script}`: the partial unpack and the whole one differ"
        );
    }
    let sandbox = listing(&store, &ran.layer);
    let native = native.map_err(|odd| eprintln!("hoist declined `{script}` at {}", odd.at));
    (sandbox, native.ok().map(|l| listing(&store, &l)))
}

/// [`attempt`] on the tools' part of the ground and on all of it, each
/// in a fresh folder: the layer digests (or where hoist declined); the
/// first `None` when the part was not enough.
fn scoped_and_whole(
    store: &Store,
    ground: &Ground,
    script: &str,
    epoch: u64,
) -> (
    Option<Result<String, &'static str>>,
    Result<String, &'static str>,
) {
    let run = |scope: Option<&[&str]>| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        attempt(
            store,
            ground,
            &ops(script),
            Compression::Gzip,
            epoch,
            &root,
            scope,
        )
        .unwrap()
        .map(|r| r.map(|l| l.descriptor.digest.to_string()).map_err(|o| o.at))
    };
    (
        run(Some(&SCOPE)),
        run(None).expect("a whole unpack always answers"),
    )
}

/// The usual account lines of each base are done on the tools' part of
/// the ground alone, not the whole of it.
#[test]
fn the_usual_lines_need_only_the_tools_part() {
    for (base, script) in [
        (
            "debian.oci.tar",
            "groupadd -r app && useradd -r -g app -m -d /home/app app",
        ),
        (
            "debian.oci.tar",
            "adduser --system --group --home /home/agent agent",
        ),
        ("debian.oci.tar", "useradd -u 1001 -m web"),
        (
            "alpine.oci.tar",
            "addgroup -S -g 1001 nodejs && adduser -S -u 1001 -G nodejs nextjs",
        ),
        ("alpine.oci.tar", "adduser -D app"),
    ] {
        let (_dir, store, ground) = ground(base);
        let (scoped, whole) = scoped_and_whole(&store, &ground, script, EPOCH);
        assert!(whole.is_ok(), "{base}: `{script}` declined: {whole:?}");
        assert_eq!(scoped, Some(whole), "{base}: `{script}`");
    }
}

fn show(l: &Listing) -> String {
    l.iter()
        .map(|(p, (k, m, u, g, b))| {
            let body = match k.as_str() {
                "file" if p.starts_with("etc/") => String::from_utf8_lossy(b).into_owned(),
                "file" => format!("{} bytes", b.len()),
                _ => String::from_utf8_lossy(b).into_owned(),
            };
            format!("{k} {m:o} {u}:{g} {p}\n{body}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_same(base: &str, script: &str) {
    assert_same_at(base, script, EPOCH);
}

fn assert_same_at(base: &str, script: &str, epoch: u64) {
    let (sandbox, native) = both_at(base, script, epoch);
    let native = native.unwrap_or_else(|| panic!("hoist declined `{script}` on {base}"));
    assert!(
        !sandbox.is_empty(),
        "`{script}` changed nothing in the sandbox"
    );
    assert_eq!(
        show(&native),
        show(&sandbox),
        "`{script}` on {base}: native (left) and sandbox (right) differ"
    );
    assert_eq!(native, sandbox);
}

/// As [`assert_same`], for busybox, whose /etc/shadow day is the clock's:
/// the sandbox's new line for `user` must carry today's day and hoist's
/// the epoch's, and with that field set aside the layers are the same.
fn assert_same_but_day(base: &str, script: &str, user: &str) {
    let (mut sandbox, native) = both(base, script);
    let native = native.unwrap_or_else(|| panic!("hoist declined `{script}` on {base}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86400;
    let epoch_day = (EPOCH / 86400).to_string();
    let shadow = sandbox
        .get_mut("etc/shadow")
        .expect("busybox wrote /etc/shadow");
    let text = String::from_utf8(shadow.4.clone()).unwrap();
    let mut seen = false;
    let fixed: Vec<String> = text
        .lines()
        .map(|l| {
            let mut f: Vec<String> = l.split(':').map(str::to_owned).collect();
            if f[0] == user {
                let day: u64 = f[2].parse().unwrap();
                assert!(
                    day == now || day + 1 == now,
                    "busybox wrote day {day}, today is {now}"
                );
                f[2] = epoch_day.clone();
                seen = true;
            }
            f.join(":") + "\n"
        })
        .collect();
    assert!(seen, "no shadow line for {user}:\n{text}");
    shadow.4 = fixed.concat().into_bytes();
    assert_eq!(
        show(&native),
        show(&sandbox),
        "`{script}` on {base}: native (left) and sandbox (right) differ"
    );
    assert_eq!(native, sandbox);
}

#[test]
fn debian_groupadd_and_useradd_system() {
    assert_same("debian.oci.tar", "groupadd -r app && useradd -r -g app app");
}

#[test]
fn debian_useradd_with_home_and_uid() {
    assert_same("debian.oci.tar", "useradd -m -u 1001 web");
}

/// hoist's default epoch: shadow leaves the change day empty for day 0.
#[test]
fn debian_useradd_at_epoch_zero() {
    assert_same_at("debian.oci.tar", "useradd -m web", 0);
}

#[test]
fn debian_adduser_system_with_group() {
    assert_same("debian.oci.tar", "adduser --system --group app");
}

#[test]
fn debian_adduser_disabled_password() {
    assert_same(
        "debian.oci.tar",
        "adduser --disabled-password --gecos '' web",
    );
}

#[test]
fn debian_more_shapes() {
    for script in [
        "groupadd web && useradd -g web -s /bin/false -c 'The web' -d /srv/web -m web",
        "addgroup --system svc && adduser --system --ingroup svc --home /srv/svc --gecos Svc svc",
        "adduser --disabled-login --uid 2000 --gecos 'Build bot' bot",
        "useradd -rmU -s /bin/sh worker",
        "adduser nobody users && adduser nobody staff && adduser nobody staff",
    ] {
        assert_same("debian.oci.tar", script);
    }
}

#[test]
fn alpine_addgroup_and_adduser_system() {
    assert_same_but_day(
        "alpine.oci.tar",
        "addgroup -S app && adduser -S -G app app",
        "app",
    );
}

#[test]
fn alpine_adduser_disabled_password_with_uid() {
    assert_same_but_day("alpine.oci.tar", "adduser -D -u 1001 web", "web");
}

#[test]
fn alpine_addgroup_user_to_group() {
    assert_same("alpine.oci.tar", "addgroup guest users");
}

#[test]
fn alpine_more_shapes() {
    for (script, user) in [
        ("adduser -S -H svc", "svc"),
        (
            "addgroup -g 2000 team && adduser -D -G team -h /srv/w -s /bin/ash -g 'W' w",
            "w",
        ),
    ] {
        assert_same_but_day("alpine.oci.tar", script, user);
    }
}

/// Commands hoist cannot reproduce exactly are left to the sandbox.
#[test]
fn declined_where_not_exact() {
    for (base, script) in [
        // The tool fails: the sandbox reports it.
        ("debian.oci.tar", "useradd -u 0 clash"),
        ("debian.oci.tar", "groupadd root"),
        ("alpine.oci.tar", "adduser -D root"),
        // Not the base's tool.
        ("alpine.oci.tar", "useradd -m web"),
        ("debian.oci.tar", "adduser -D -u 1001 web"),
        // No such group.
        ("debian.oci.tar", "adduser nobody wheel"),
        // chfn calls for a GECOS with commas are not modelled.
        (
            "debian.oci.tar",
            "adduser --disabled-password --gecos 'A,B' web",
        ),
    ] {
        let (_dir, store, ground) = ground(base);
        let native =
            accounts_layer(&store, &ground, &ops(script), Compression::Gzip, EPOCH).unwrap();
        assert!(native.is_none(), "`{script}` on {base} was done natively");
    }
}

#[test]
fn key_covers_ground_commands_shell_and_epoch() {
    let ground = |env: &[&str]| Ground {
        layers: Vec::new(),
        image_env: env.iter().map(|e| (*e).to_owned()).collect(),
        scratch_parent: PathBuf::from("/nowhere"),
    };
    let plain = ground(&["PATH=/bin"]);
    let base = key(&plain, &ops("adduser -D web"), Compression::Gzip, EPOCH);
    assert_eq!(
        base,
        key(&plain, &ops("adduser -D web"), Compression::Gzip, EPOCH)
    );
    for other in [
        key(
            &plain,
            &ops("adduser -D -u 7 web"),
            Compression::Gzip,
            EPOCH,
        ),
        key(
            &plain,
            &ops("adduser -D web && addgroup web users"),
            Compression::Gzip,
            EPOCH,
        ),
        key(
            &plain,
            &ops("adduser -D web"),
            Compression::Gzip,
            EPOCH + 86400,
        ),
        key(&plain, &ops("adduser -D web"), Compression::Zstd, EPOCH),
        key(
            &ground(&["SHELL=/bin/ash"]),
            &ops("adduser -D web"),
            Compression::Gzip,
            EPOCH,
        ),
    ] {
        assert_ne!(base, other);
    }
    // Other variables do not change what the tools write.
    assert_eq!(
        base,
        key(
            &ground(&["PATH=/usr/bin"]),
            &ops("adduser -D web"),
            Compression::Gzip,
            EPOCH
        )
    );
}
