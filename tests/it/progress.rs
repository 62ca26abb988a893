//! `--progress auto|tty|plain|quiet` (issue 18, item 5), from a pipe and
//! from a pseudo-terminal, against golden files in testdata/progress/.
//!
//! The builds need no network: an app of two files on the busybox base,
//! pushed to the plain test registry (so blobs, a manifest and a push
//! line show), and a `--no-index --find-links` wheel on the python base
//! (so a pip resolution shows). The app holds 24 MB of noise, so that its
//! layer takes long enough to compress for the live view to draw it.
//!
//! How the outputs are made stable, before an exact comparison:
//! - masked: the test's temporary folder, the bases folder, the registry
//!   address and the per-run repository name, durations (`1.6s`), and
//!   digests (the base's digests depend on how scripts/make-bases built
//!   it; the masks keep the lines' shape, `<digest>` for a short one);
//! - the `blob` lines of a push are sorted within their run: blobs are
//!   pushed side by side, so they finish in any order;
//! - the pseudo-terminal's output (stderr only: hoist's stdout goes to a
//!   file, and is asserted to be the digest alone) is replayed through a
//!   small terminal model ([`screen`]: a fixed width with auto-wrap,
//!   carriage return, cursor up and down, line and screen clearing, colour
//!   codes dropped) and the golden file is the final screen, what the user
//!   sees when hoist has ended. The live frames in between depend on
//!   timing, so they are not compared as a whole; the test asserts that
//!   they were drawn (redraw sequences, a compress spinner, push bars) and
//!   that none of them is left on the final screen.
//!
//! `HOIST_BLESS=1` rewrites the golden files from the outputs (then read
//! the diff); without it any difference fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// Terminal width of the pseudo-terminal.
const COLUMNS: usize = 120;

fn registry() -> String {
    std::env::var("HOIST_REGISTRY_PLAIN").unwrap_or_else(|_| {
        panic!("HOIST_REGISTRY_PLAIN is not set: run `eval \"$(scripts/registry start)\"` first (scripts/test does)")
    })
}

/// A repository name unique to this test run.
fn repo(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("it/progress-{name}-{nanos}")
}

/// The app: a text file and 24 MB of noise.
fn app(env: &Env) -> PathBuf {
    let dir = env.path("app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hello.txt"), "hello\n").unwrap();
    std::fs::write(dir.join("noise.bin"), noise(24 << 20, 7)).unwrap();
    dir
}

/// `hoist build` of [`app`] pushed to the plain registry, with `extra`.
fn push_args(env: &Env, tag: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "build".into(),
        app(env).display().to_string(),
        "--base".into(),
        format!("oci-archive:{}", base("busybox.oci.tar").display()),
        "--tag".into(),
        tag.into(),
        "--push".into(),
        "--insecure-registry".into(),
        registry(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// What hoist wrote when run in a pseudo-terminal.
struct PtyRun {
    status: i32,
    /// Everything written to the terminal (stderr), raw.
    terminal: String,
    stdout: String,
}

/// Runs hoist with `args` in a pseudo-terminal of [`COLUMNS`] columns
/// (python3's `pty` module), stdout to a file.
fn hoist_in_pty(env: &Env, args: &[String], vars: &[(&str, &str)]) -> PtyRun {
    require("python3", "python3");
    const PTY: &str = r#"
import fcntl, os, pty, struct, sys, termios
stdout_file = sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 50, int(sys.argv[2]), 0, 0))
    out = os.open(stdout_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.execv(sys.argv[3], sys.argv[3:])
data = bytearray()
while True:
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    data += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(data)
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let stdout_file = env.path("pty-stdout");
    let out = Command::new("python3")
        .arg("-c")
        .arg(PTY)
        .arg(&stdout_file)
        .arg(COLUMNS.to_string())
        .arg(env!("CARGO_BIN_EXE_hoist"))
        .args(args)
        .env("HOIST_CACHE", env.path("cache"))
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("HOIST_PROGRESS")
        .envs(vars.iter().copied())
        .output()
        .expect("run python3");
    PtyRun {
        status: out.status.code().unwrap_or(-1),
        terminal: String::from_utf8_lossy(&out.stdout).into_owned(),
        stdout: std::fs::read_to_string(&stdout_file).unwrap_or_default(),
    }
}

fn hoist_in_pipe(env: &Env, args: &[String]) -> Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.hoist_with(&args, &[])
}

/// The final screen of a terminal of `width` columns after `raw`: the
/// subset of a VT100 that indicatif and hoist write. A line of text the
/// terminal wrapped is given back whole.
fn screen(raw: &str, width: usize) -> String {
    let mut rows: Vec<Vec<char>> = vec![Vec::new()];
    // Whether a row continues the one above (the terminal wrapped there).
    let mut continues: Vec<bool> = vec![false];
    let (mut row, mut col, mut pending) = (0usize, 0usize, false);
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.peek() != Some(&'[') {
                    chars.next();
                    continue;
                }
                chars.next();
                let mut params = String::new();
                let mut fin = ' ';
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() || c == '@' || c == '~' {
                        fin = c;
                        break;
                    }
                    params.push(c);
                }
                let n: usize = params.parse().unwrap_or(1).max(1);
                match fin {
                    'A' => {
                        row = row.saturating_sub(n);
                        pending = false;
                    }
                    'B' => {
                        row += n;
                        pending = false;
                    }
                    'C' => col = (col + n).min(width - 1),
                    'D' => {
                        col = col.saturating_sub(n);
                        pending = false;
                    }
                    'K' | 'J' => {
                        while rows.len() <= row {
                            rows.push(Vec::new());
                            continues.push(false);
                        }
                        match params.as_str() {
                            "2" if fin == 'K' => rows[row].clear(),
                            _ => rows[row].truncate(col),
                        }
                        if col == 0 {
                            continues[row] = false;
                        }
                        if fin == 'J' {
                            rows.truncate(row + 1);
                            continues.truncate(row + 1);
                        }
                    }
                    // Colours, cursor visibility.
                    _ => {}
                }
            }
            '\r' => {
                col = 0;
                pending = false;
            }
            '\n' => {
                row += 1;
                pending = false;
            }
            c => {
                let wrapped = pending;
                if pending {
                    row += 1;
                    col = 0;
                    pending = false;
                }
                while rows.len() <= row {
                    rows.push(Vec::new());
                    continues.push(false);
                }
                if wrapped {
                    continues[row] = true;
                }
                let line = &mut rows[row];
                while line.len() <= col {
                    line.push(' ');
                }
                line[col] = c;
                if col + 1 == width {
                    pending = true;
                } else {
                    col += 1;
                }
            }
        }
    }
    // indicatif ends each line by padding it with spaces to the edge and
    // lets the terminal wrap; only a wrap in the middle of text (the last
    // column is not blank) continues a line.
    let mut lines: Vec<String> = Vec::new();
    for (n, (r, more)) in rows.iter().zip(&continues).enumerate() {
        let text: String = r.iter().collect();
        let mid_text = n > 0 && rows[n - 1].len() == width && rows[n - 1][width - 1] != ' ';
        match lines.last_mut() {
            Some(last) if *more && mid_text => last.push_str(&text),
            _ => lines.push(text),
        }
    }
    let mut lines: Vec<String> = lines.iter().map(|l| l.trim_end().to_owned()).collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines.join("\n") + "\n"
}

/// Masks what varies from run to run and machine to machine (see the
/// module docs) and sorts each run of `blob` lines.
fn mask(text: &str, env: &Env, tag_repo: Option<&str>) -> String {
    let mut t = text.to_owned();
    t = t.replace(&bases().display().to_string(), "<BASES>");
    t = t.replace(&env.tmp.path().display().to_string(), "<TMP>");
    if let Some(r) = tag_repo {
        t = t.replace(r, "<REPO>");
    }
    t = t.replace(&registry(), "<REGISTRY>");
    let rules = [
        (r"sha256:[0-9a-f]{64}", "<DIGEST>"),
        (r"\b[0-9a-f]{12}\b", "<digest>"),
        (r"\b\d+(\.\d+)?s\b", "<T>"),
    ];
    for (re, with) in rules {
        t = regex::Regex::new(re)
            .unwrap()
            .replace_all(&t, with)
            .into_owned();
    }
    let mut out: Vec<String> = Vec::new();
    let mut blobs: Vec<String> = Vec::new();
    for line in t.lines() {
        if line.starts_with("blob ") {
            blobs.push(line.to_owned());
            continue;
        }
        blobs.sort();
        out.append(&mut blobs);
        out.push(line.to_owned());
    }
    blobs.sort();
    out.append(&mut blobs);
    out.join("\n") + "\n"
}

/// Compares `got` with testdata/progress/`name` exactly, or rewrites it
/// with `HOIST_BLESS=1`.
fn golden(name: &str, got: &str) {
    let path = testdata("progress").join(name);
    if std::env::var_os("HOIST_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (HOIST_BLESS=1 writes it)", path.display()));
    assert!(
        want == got,
        "{} differs from the output (HOIST_BLESS=1 rewrites it):\n--- want\n{want}\n--- got\n{got}",
        path.display()
    );
}

/// The result alone on stdout: one digest line.
#[track_caller]
fn only_the_digest(stdout: &str) {
    let re = regex::Regex::new(r"^sha256:[0-9a-f]{64}\n$").unwrap();
    assert!(
        re.is_match(stdout),
        "stdout is not the digest alone: {stdout:?}"
    );
}

/// From a pipe, `auto` is `plain`: a line per base, layer, blob, manifest
/// and push, with no ANSI code and no carriage return; the result alone on
/// stdout.
#[test]
fn plain_from_a_pipe() {
    let env = Env::new();
    let r = repo("plain");
    let tag = format!("{}/{r}:1", registry());
    let run = hoist_in_pipe(&env, &push_args(&env, &tag, &[]));
    only_the_digest(run.ok());
    assert!(
        !run.stderr.contains('\x1b') && !run.stderr.contains('\r'),
        "plain output redraws or has ANSI codes:\n{:?}",
        run.stderr
    );
    golden("plain.txt", &mask(&run.stderr, &env, Some(&r)));
}

/// In a terminal, `auto` is `tty`: the live view draws (a spinner while
/// the app layer is compressed, a bar per pushed blob) and leaves, once
/// hoist ends, only the finished lines on the screen.
#[test]
fn tty_in_a_terminal() {
    let env = Env::new();
    let r = repo("tty");
    let tag = format!("{}/{r}:1", registry());
    let run = hoist_in_pty(&env, &push_args(&env, &tag, &[]), &[]);
    assert_eq!(run.status, 0, "{}", run.terminal);
    only_the_digest(&run.stdout);
    for live in ["\x1b[2K", "compress layer", " in ", "push ", "░"] {
        assert!(
            run.terminal.contains(live),
            "the live view never drew {live:?}:\n{:?}",
            run.terminal
        );
    }
    let screen = screen(&run.terminal, COLUMNS);
    for gone in ["compress layer", "░", "█"] {
        assert!(
            !screen.contains(gone),
            "{gone:?} is left on the final screen:\n{screen}"
        );
    }
    golden("tty.txt", &mask(&screen, &env, Some(&r)));
}

/// `--progress tty` draws the live view into a pipe too, and `--progress
/// plain` stays plain in a terminal: the flag wins over detection. Both
/// leave the same lines (each build has its own store, so both build).
#[test]
fn the_flag_wins_over_detection() {
    let args = |env: &Env, mode: &str| -> Vec<String> {
        vec![
            "build".into(),
            app(env).display().to_string(),
            "--base".into(),
            format!("oci-archive:{}", base("busybox.oci.tar").display()),
            "--output".into(),
            format!("oci:{}", env.path("out").display()),
            "--progress".into(),
            mode.into(),
        ]
    };
    let (a, b) = (Env::new(), Env::new());
    let forced = {
        let args = args(&a, "tty");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        a.hoist_with(&args, &[("COLUMNS", "100")])
    };
    only_the_digest(forced.ok());
    assert!(
        forced.stderr.contains("\x1b[2K") && forced.stderr.contains("compress layer"),
        "--progress tty drew no live view into a pipe:\n{:?}",
        forced.stderr
    );
    let plain = hoist_in_pty(&b, &args(&b, "plain"), &[]);
    assert_eq!(plain.status, 0, "{}", plain.terminal);
    only_the_digest(&plain.stdout);
    assert!(
        !plain.terminal.contains('\x1b'),
        "--progress plain has ANSI codes in a terminal:\n{:?}",
        plain.terminal
    );
    // The pty turns \n into \r\n; nothing else may return the carriage.
    assert_eq!(
        mask(&plain.terminal.replace("\r\n", "\n"), &b, None),
        mask(&screen(&forced.stderr, 100), &a, None)
    );
}

/// `quiet`, `--quiet` and `-q`: nothing on stderr but the result on
/// stdout; a failure prints its error, each cause once, and nothing else.
#[test]
fn quiet_prints_only_errors() {
    let env = Env::new();
    let out = env.path("out");
    let build = |extra: &[&str], base_path: &Path| -> Vec<String> {
        let mut a: Vec<String> = vec![
            "build".into(),
            app(&env).display().to_string(),
            "--base".into(),
            format!("oci-archive:{}", base_path.display()),
            "--output".into(),
            format!("oci:{}", out.display()),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let busybox = base("busybox.oci.tar");
    for flags in [&["--progress", "quiet"][..], &["--quiet"], &["-q"]] {
        let run = hoist_in_pty(&env, &build(flags, &busybox), &[]);
        assert_eq!(run.status, 0, "{flags:?}: {}", run.terminal);
        only_the_digest(&run.stdout);
        assert_eq!(run.terminal, "", "{flags:?} printed progress");
    }
    let quiet_env = hoist_in_pty(&env, &build(&[], &busybox), &[("HOIST_PROGRESS", "quiet")]);
    assert_eq!(
        quiet_env.terminal, "",
        "HOIST_PROGRESS=quiet printed progress"
    );

    let missing = env.path("no-such-base.tar");
    for mode in ["quiet", "plain", "tty"] {
        let run = hoist_in_pipe(&env, &build(&["--progress", mode], &missing));
        run.fails_with("no-such-base.tar");
        assert_eq!(run.stdout, "", "{mode}: a failure wrote to stdout");
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert!(
            lines[0].starts_with("error: "),
            "{mode}: stderr holds more than the error:\n{}",
            run.stderr
        );
        for (n, line) in lines.iter().enumerate().skip(1) {
            let cause = line.trim_start().trim_start_matches("caused by: ");
            assert!(
                line.trim_start().starts_with("caused by: ")
                    && !lines[..n].iter().any(|l| l.contains(cause)),
                "{mode}: line {n} is not a new cause:\n{}",
                run.stderr
            );
        }
    }
}

/// A pip resolution shows from its start (`plain`): which file, then how
/// many packages were read and how long it took; one that fails, only
/// its start and the error.
#[test]
fn pip_resolution_in_plain() {
    require("python3", "python3");
    let env = Env::new();
    let ctx = env.path("py");
    std::fs::create_dir_all(ctx.join("wheels")).unwrap();
    std::fs::write(
        ctx.join("requirements.txt"),
        "--no-index\n--find-links wheels\ngoodpkg==1.0\n",
    )
    .unwrap();
    std::fs::write(ctx.join("app.py"), "print('hi')\n").unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/make-wheel.py");
    run(
        "python3",
        &[
            script.to_str().unwrap(),
            ctx.join("wheels").to_str().unwrap(),
            "goodpkg",
            "1.0",
            "good",
        ],
    )
    .ok();
    let out = env.path("out");
    let args: Vec<String> = vec![
        "build".into(),
        ctx.display().to_string(),
        "--base".into(),
        format!("oci-archive:{}", base("python.oci.tar").display()),
        "--output".into(),
        format!("oci:{}", out.display()),
    ];
    let run = hoist_in_pipe(&env, &args);
    only_the_digest(run.ok());
    golden("pip-plain.txt", &mask(&run.stderr, &env, None));

    // A resolution that fails says that it started, and then only the
    // error: no line claims it read its packages.
    std::fs::write(
        ctx.join("requirements.txt"),
        "--no-index\n--find-links wheels\ngoodpkg==2.0\n",
    )
    .unwrap();
    let failed = hoist_in_pipe(&env, &args);
    failed.fails_with("goodpkg");
    assert!(
        failed
            .stderr
            .contains("resolve requirements.txt: resolving dependencies\n")
            && !failed.stderr.contains("packages read"),
        "{}",
        failed.stderr
    );
}
