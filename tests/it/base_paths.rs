//! Paths from bases. A base whose layer names `/abs/file`,
//! `../../up/file`, `a/../../b`, hard links to such names and a whiteout
//! that climbs, and names under links (made with python's tarfile, not
//! with hoist) unpacks in the
//! sandbox into the tree containerd's rules give, which is also the tree
//! podman gives for the same base. A base that expands past the free
//! space of a small file system stops with an error that says so, and
//! leaves nothing in the store's sandbox folder.

use crate::support::*;

/// Adds two layers to the OCI layout at argv[1]: a lower one with `gone`,
/// `kept`, a folder and two links to it (absolute, and climbing), and an
/// upper one whose names are those of argv[2]
/// (`climb`: climbing and absolute names; `zeros`: one file of argv[3]
/// MiB of zeros, a tiny gzip). Descriptors, diff_ids and history are
/// fixed to match.
const MAKE: &str = r#"
import sys, json, gzip, hashlib, os, tarfile, io
d, mode = sys.argv[1], sys.argv[2]
B = os.path.join(d, 'blobs', 'sha256')
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(os.path.join(B, h), 'wb').write(b)
    return 'sha256:' + h
def layer(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.GNU_FORMAT) as t:
        for kind, name, arg in entries:
            i = tarfile.TarInfo(name)
            if kind == 'f':
                i.size = len(arg); i.mode = 0o644
                t.addfile(i, io.BytesIO(arg))
            elif kind == 'd':
                i.type = tarfile.DIRTYPE; i.mode = 0o755
                t.addfile(i)
            else:
                i.type = tarfile.LNKTYPE if kind == 'h' else tarfile.SYMTYPE
                i.linkname = arg; i.mode = 0o777
                t.addfile(i)
    raw = buf.getvalue()
    return raw, gzip.compress(raw, mtime=0)
lower = [('f', 'gone', b'lower'), ('f', 'kept', b'lower'), ('d', 'deep/dir', None),
         ('s', 'ln', '/deep/dir'), ('s', 'rel', '../../deep')]
if mode == 'climb':
    upper = [('f', '/abs/file', b'abs'), ('f', '../../up/file', b'up'), ('f', 'a/../../b', b'b'),
             ('h', 'hl', '/abs/file'), ('h', 'up/hl', '../../up/../up/file'),
             ('s', '../sym', '../../outside'), ('f', 'x/../../.wh.gone', b''),
             ('f', 'ln/f', b'via-ln'), ('f', 'rel/g', b'via-rel'),
             ('d', 'deep/dir', None), ('s', 'ln2', '/deep/dir'), ('f', 'ln2/h', b'via-ln2')]
else:
    upper = [('f', 'zeros', b'\0' * (int(sys.argv[3]) << 20))]
idx = json.load(open(os.path.join(d, 'index.json')))
m = json.load(open(os.path.join(B, idx['manifests'][0]['digest'][7:])))
cfg = json.load(open(os.path.join(B, m['config']['digest'][7:])))
for entries in (lower, upper):
    raw, gz = layer(entries)
    m['layers'].append({'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip',
                        'digest': put(gz), 'size': len(gz)})
    cfg['rootfs']['diff_ids'].append('sha256:' + hashlib.sha256(raw).hexdigest())
    cfg.setdefault('history', []).append({'created_by': 'python3 tarfile ' + mode})
cb = json.dumps(cfg).encode()
m['config']['digest'] = put(cb); m['config']['size'] = len(cb)
mb = json.dumps(m).encode()
idx['manifests'][0]['digest'] = put(mb); idx['manifests'][0]['size'] = len(mb)
json.dump(idx, open(os.path.join(d, 'index.json'), 'w'))
print(m['layers'][-1]['digest'])
"#;

/// Prints the tree the climbing base's names make, as busybox sees it.
const TREE: &str = r#"cd /
for p in abs/file up/file b hl up/hl sym gone kept outside ln ln/f rel rel/g deep/dir/f deep/g ln2 deep/dir/h; do
  if [ -L "$p" ]; then echo "$p -> $(readlink "$p")"
  elif [ -d "$p" ]; then echo "$p dir"
  elif [ -f "$p" ]; then echo "$p $(cat "$p") links=$(stat -c %h "$p")"
  else echo "$p missing"; fi
done
[ "$(stat -c %i hl)" = "$(stat -c %i abs/file)" ] && echo "hl is abs/file"
[ "$(stat -c %i up/hl)" = "$(stat -c %i up/file)" ] && echo "up/hl is up/file"
"#;

/// The tree containerd's `archive.Apply` makes of the climbing layer:
/// every name (and hard-link target) cleaned as if it hung from `/`
/// (`fs.RootPath`, `hardlinkRootPath`), so `..` stops at the root; the
/// symlink's target kept as written; the whiteout `x/../../.wh.gone`
/// removing `/gone`. A name under a link the same layer made is written
/// where the link leads, inside the image (`fs.RootPath` again); a name
/// under a lower layer's link makes a folder that hides the link (the
/// overlayfs applier, containerd's default, unpacks each layer on its own
/// over the ones below; podman's overlay driver does the same).
const CONTAINERD_TREE: &str = "\
abs/file abs links=2
up/file up links=2
b b links=1
hl abs links=2
up/hl up links=2
sym -> ../../outside
gone missing
kept lower links=1
outside missing
ln dir
ln/f via-ln links=1
rel dir
rel/g via-rel links=1
deep/dir/f missing
deep/g missing
ln2 -> /deep/dir
deep/dir/h via-ln2 links=1
hl is abs/file
up/hl is up/file
";

/// A copy of the busybox layout with MAKE's layers; returns its folder
/// and the digest of the upper layer.
fn crafted(env: &Env, mode: &str, mib: u32) -> (String, String) {
    require("python3", "python3");
    let dir = env.path(&format!("base-{mode}"));
    copy_tree(&base("oci/busybox"), &dir);
    let dir = dir.display().to_string();
    let out = run("python3", &["-c", MAKE, &dir, mode, &mib.to_string()]);
    let digest = out.ok().trim().to_owned();
    (dir, digest)
}

/// A context whose hoist.toml builds on `base` with one `[[run]]` step.
fn project(env: &Env, base: &str, script: &str) -> String {
    let dir = env.path("ctx");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("app.txt"), "app\n").unwrap();
    std::fs::write(
        dir.join("hoist.toml"),
        format!(
            "[image]\nbase = \"{base}\"\ncmd = [\"sh\"]\n\n[[run]]\ncommand = [\"sh\", \"-c\", '''\n{script}''']\n"
        ),
    )
    .unwrap();
    dir.display().to_string()
}

#[test]
fn climbing_and_absolute_names_unpack_as_containerd_and_podman_unpack_them() {
    let env = Env::new();
    let (dir, _) = crafted(&env, "climb", 0);
    let ctx = project(
        &env,
        &format!("oci:{dir}"),
        &format!("{{\n{TREE}}} > /tree.txt\n"),
    );
    let out = env.path("out");
    env.hoist(&["build", &ctx, "--output", &format!("oci:{}", out.display())])
        .ok();
    let digest = layer_digest(&out, "hoist run").expect("a run layer");
    let blob = out
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let tree = run("tar", &["-xzOf", &blob.display().to_string(), "tree.txt"]);
    assert_eq!(
        tree.ok(),
        CONTAINERD_TREE,
        "the sandbox saw the base as containerd unpacks it"
    );
    let sandbox: Vec<_> = std::fs::read_dir(env.path("cache/sandbox"))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(sandbox.is_empty(), "scratch left: {sandbox:?}");
    for outside in ["up", "outside", "cache/up", "cache/outside"] {
        assert!(!env.path(outside).exists(), "{outside} written");
    }

    // podman (containers/storage applies a layer inside a chroot) agrees.
    require_podman();
    let archive = env.path("base.tar");
    run(
        "tar",
        &["-C", &dir, "-cf", &archive.display().to_string(), "."],
    )
    .ok();
    let podman = podman_store(&[
        "run",
        "--rm",
        &format!("oci-archive:{}", archive.display()),
        "sh",
        "-c",
        TREE,
    ]);
    assert_eq!(podman.ok(), CONTAINERD_TREE, "podman unpacks it the same");
}

/// Runs `script` with `$T` a fresh tmpfs of `size` in a mount namespace of
/// its own (unprivileged: a user namespace maps the caller to root);
/// `None` when this host does not let the test mount one.
fn in_tmpfs(env: &Env, size: &str, script: &str, vars: &[(&str, &str)]) -> Option<Run> {
    require("unshare", "util-linux");
    let t = env.path("tmpfs");
    std::fs::create_dir_all(&t).unwrap();
    let t = t.display().to_string();
    let body = format!("mount -t tmpfs -o size={size} tmpfs \"$T\" || exit 77\n{script}");
    let mut all = vec![("T", t.as_str())];
    all.extend_from_slice(vars);
    let r = run_env("unshare", &["-rm", "sh", "-c", &body], &all);
    if r.status == 77 {
        eprintln!(
            "SKIPPED: this host does not let the test mount a tmpfs in a user namespace: {}",
            r.stderr.trim()
        );
        return None;
    }
    Some(r)
}

#[test]
fn a_base_that_expands_past_the_free_space_stops_with_a_clear_error() {
    let env = Env::new();
    // 64 MiB of zeros gzip to 64 kB; the file system holds 24 MiB.
    let (dir, digest) = crafted(&env, "zeros", 64);
    let ctx = project(&env, &format!("oci:{dir}"), "true\n");
    let out = env.path("out");
    let script = r#"HOIST_CACHE="$T/cache" "$HOIST" build "$CTX" --output "oci:$OUT"
echo "exit=$?"
echo "sandbox=$(ls -A "$T/cache/sandbox" | wc -l)"
df -k "$T" | awk 'NR == 2 { print "used_kb=" $3 }'
"#;
    let Some(r) = in_tmpfs(
        &env,
        "24m",
        script,
        &[
            ("HOIST", env!("CARGO_BIN_EXE_hoist")),
            ("CTX", &ctx),
            ("OUT", &out.display().to_string()),
        ],
    ) else {
        return;
    };
    let said = |k: &str| {
        r.stdout
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in:\n{}\n{}", r.stdout, r.stderr))
            .to_owned()
    };
    assert_eq!(said("exit="), "1", "{}", r.stderr);
    for needle in [
        format!("unpacking layer {digest} into "),
        "needs at least ".into(),
        // Stopped before writing the file (not by the file system
        // filling up, which says so differently).
        ", the next being /zeros of 67.1 MB, but that file system has ".into(),
        "free space there, or set HOIST_CACHE to a folder on a larger file system".into(),
    ] {
        assert!(r.stderr.contains(&needle), "{needle}\n{}", r.stderr);
    }
    assert_eq!(r.stderr.matches("panicked").count(), 0, "{}", r.stderr);
    assert_eq!(said("sandbox="), "0", "the scratch folder is removed");
    // The store holds the base (a few MB); nothing of the 64 MiB file.
    let used: u64 = said("used_kb=").parse().unwrap();
    assert!(used < 8 * 1024, "{used} kB used on the tmpfs");
    assert!(!out.exists(), "no output written");

    // The same build where there is room succeeds (outside the tmpfs:
    // the user namespace that mounts it maps no ids for the step).
    env.hoist(&["build", &ctx, "--output", &format!("oci:{}", out.display())])
        .ok();
}
