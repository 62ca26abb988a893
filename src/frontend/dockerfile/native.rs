//! Which `RUN` lines hoist can do natively, exactly as running them would.
//!
//! A Dockerfile's `RUN npm ci`, `RUN pip install -r requirements.txt`,
//! `RUN adduser ...` and `RUN mkdir -p /app && chown app /app` are the
//! steps hoist already knows how to do without running anything (deps
//! layers, the user layer, entries written as data). This module only
//! *recognises* them: it reads a RUN's command line and the variables the
//! RUN sees, and says which native operations it is, or `None` when it is
//! anything else, in which case the RUN goes to the sandbox as written.
//!
//! Recognition is conservative on purpose: a recognised line must leave
//! exactly what the command would, so every doubt is a `None`.
//!
//! - The shell string is split by a small POSIX tokenizer that knows
//!   quoting (`'...'`, `"..."`, `\x`). Simple commands may be joined by
//!   `&&` only (after an optional leading `set -e`/`-x`/`-u`, which cannot
//!   change a line with no variables and no pipes). Any other shell
//!   syntax refuses the line: `|`, `;`, `||`, `&`, redirections, `$`,
//!   backticks, globs (`*?[`), braces, `~`, `#`, subshells, newlines, an
//!   assignment in front of a command, `cd`. The shell never gets a
//!   chance to mean something the words do not say.
//! - Every simple command must be recognised, or the whole RUN is `None`:
//!   half a line natively and half in the sandbox would not be the line.
//! - Flags are an allow-list per program; an unknown one refuses.
//! - The environment can change what a program does (`NODE_ENV`,
//!   `npm_config_*`, `PIP_*`, `PATH`): the settings that only change
//!   output are allowed, the ones hoist honours are read, anything else
//!   refuses.
//!
//! Nothing here reads a file: what the recognised operations need from the
//! image (a lockfile, a venv, the accounts) is the caller's to check. The
//! caller also runs this only for a RUN in the default shell
//! (`/bin/sh -c`), as root, with no `--mount`: those change the line's
//! meaning in ways a command line does not show.

use super::instructions::CommandLine;

pub use crate::graph::native::{ModeChange, ModeSpec, NativeOp, UMASK};

/// `hoist build --native=auto|never`: whether RUN lines hoist recognises
/// are done natively (`auto`, the default) or every RUN runs as written
/// in the sandbox (`never`: to compare, or when a native result is in
/// doubt).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Native {
    #[default]
    Auto,
    Never,
}

impl Native {
    /// `auto` or `never`, as the command line spells them.
    pub fn parse(s: &str) -> Result<Native, String> {
        match s {
            "auto" => Ok(Native::Auto),
            "never" => Ok(Native::Never),
            _ => Err(format!(
                "--native={s}: give auto (RUN lines hoist recognises are done natively) or never (every RUN runs in the sandbox as written)"
            )),
        }
    }
}

/// Recognises a RUN whose every command hoist does natively; `None`
/// sends it to the sandbox. `env` is every variable the RUN sees (ARGs
/// and ENVs, expanded).
pub fn recognise(run: &CommandLine, env: &[(String, String)]) -> Option<Vec<NativeOp>> {
    if !run.heredocs.is_empty() {
        return None;
    }
    let commands = match run.shell {
        true => split_commands(run.args.first()?)?,
        false => vec![run.args.clone()],
    };
    if run.shell && run.args.len() != 1 {
        return None;
    }
    let mut ops = Vec::new();
    // `python -m venv DIR` waits for the pip that installs into DIR.
    let mut venvs: Vec<String> = Vec::new();
    for argv in &commands {
        match command(argv, env)? {
            Cmd::Op(op) => {
                if let NativeOp::Pip { venv: Some(v), .. } = &op {
                    venvs.retain(|w| w != v);
                }
                ops.push(op);
            }
            Cmd::Venv(dir) => {
                if venvs.contains(&dir) {
                    return None;
                }
                venvs.push(dir);
            }
            Cmd::Nothing => {}
        }
    }
    // A venv made and never installed into is a RUN hoist does not do.
    if !venvs.is_empty() || ops.is_empty() {
        return None;
    }
    Some(ops)
}

/// One shell token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    And,
    Semi,
}

/// Splits a shell string into simple commands joined by `&&` (with an
/// optional leading `set -e;`); `None` for any other shell syntax.
fn split_commands(line: &str) -> Option<Vec<Vec<String>>> {
    let tokens = tokenize(line)?;
    let mut commands: Vec<Vec<String>> = vec![Vec::new()];
    let mut semis = 0;
    for t in tokens {
        match t {
            Token::Word(w) => commands.last_mut()?.push(w),
            Token::And | Token::Semi => {
                let cur = commands.last()?;
                if cur.is_empty() {
                    return None;
                }
                if t == Token::Semi {
                    // Only `set -e;` in front.
                    semis += 1;
                    if semis > 1 || commands.len() != 1 || !is_set(cur) {
                        return None;
                    }
                }
                commands.push(Vec::new());
            }
        }
    }
    if commands.last()?.is_empty() {
        return None;
    }
    // `set` is only allowed first.
    if commands.iter().skip(1).any(|c| c[0] == "set") {
        return None;
    }
    Some(commands)
}

/// `set -e`, `set -ex`, `set -eux`...: options that change nothing in a
/// line with no variables and no pipes (a failing command fails the RUN
/// either way).
fn is_set(argv: &[String]) -> bool {
    argv[0] == "set"
        && argv.len() > 1
        && argv[1..]
            .iter()
            .all(|a| a.len() > 1 && a.starts_with('-') && a[1..].chars().all(|c| "eux".contains(c)))
}

/// POSIX token recognition, refusing what it does not need to know.
fn tokenize(line: &str) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let end_word = |out: &mut Vec<Token>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            out.push(Token::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => end_word(&mut out, &mut word, &mut in_word),
            '&' => {
                if chars.next() != Some('&') {
                    return None;
                }
                end_word(&mut out, &mut word, &mut in_word);
                out.push(Token::And);
            }
            ';' => {
                end_word(&mut out, &mut word, &mut in_word);
                out.push(Token::Semi);
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        // Expansions and escapes inside double quotes.
                        '$' | '`' | '\\' => return None,
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                let next = chars.next()?;
                if next == '\n' {
                    return None;
                }
                in_word = true;
                word.push(next);
            }
            // Pipes, redirections, expansions, globs, subshells, groups,
            // comments, tilde, history, newlines.
            '|' | '<' | '>' | '(' | ')' | '$' | '`' | '*' | '?' | '[' | ']' | '{' | '}' | '~'
            | '#' | '!' | '^' | '\n' | '\r' => return None,
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    end_word(&mut out, &mut word, &mut in_word);
    Some(out)
}

/// What one simple command is.
enum Cmd {
    Op(NativeOp),
    /// `python -m venv DIR`
    Venv(String),
    /// `set -e`
    Nothing,
}

fn command(argv: &[String], env: &[(String, String)]) -> Option<Cmd> {
    let program = argv.first()?;
    // `NAME=value cmd` changes the command's environment.
    if program.contains('=') {
        return None;
    }
    if is_set(argv) {
        return Some(Cmd::Nothing);
    }
    let (dir, name) = match program.rsplit_once('/') {
        Some((d, n)) => (Some(d), n),
        None => (None, program.as_str()),
    };
    let system_dir =
        |d: Option<&str>| d.is_none_or(|d| ["/bin", "/usr/bin", "/sbin", "/usr/sbin"].contains(&d));
    let args = &argv[1..];
    match name {
        "mkdir" if system_dir(dir) => mkdir(args).map(Cmd::Op),
        "chown" if system_dir(dir) => chown(args).map(Cmd::Op),
        "chmod" if system_dir(dir) => chmod(args).map(Cmd::Op),
        "useradd" | "groupadd" | "adduser" | "addgroup" if system_dir(dir) => {
            Some(Cmd::Op(NativeOp::Account(argv.to_vec())))
        }
        "npm" if dir.is_none() && standard_path(env) => npm(args, env).map(Cmd::Op),
        _ => python(argv, dir, name, env),
    }
}

/// The directories a stock image's PATH holds. A PATH with another one
/// in it (`/opt/venv/bin`, `/root/.local/bin`) may name another `pip` or
/// `npm` than the system's, which only the image knows.
fn standard_path(env: &[(String, String)]) -> bool {
    const STANDARD: &[&str] = &[
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ];
    env.iter()
        .filter(|(k, _)| k == "PATH")
        .all(|(_, v)| v.split(':').all(|d| STANDARD.contains(&d)))
}

/// `npm ci` and `npm install` with no package names, and flags that
/// only change output or what hoist does anyway.
fn npm(args: &[String], env: &[(String, String)]) -> Option<NativeOp> {
    if env
        .iter()
        .any(|(k, _)| k.to_ascii_lowercase().starts_with("npm_config_"))
    {
        return None;
    }
    let install = match args.first()?.as_str() {
        "ci" | "clean-install" | "ic" | "install-clean" => false,
        "install" | "i" => true,
        _ => return None,
    };
    // npm reads NODE_ENV=production as --omit=dev.
    let mut omit_dev = env
        .iter()
        .any(|(k, v)| k == "NODE_ENV" && v == "production");
    let mut ignore_scripts = false;
    let mut rest = args[1..].iter();
    const LEVELS: &[&str] = &[
        "silent", "error", "warn", "notice", "http", "timing", "info", "verbose", "silly",
    ];
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--omit=dev" | "--only=production" | "--only=prod" | "--production" => omit_dev = true,
            "--omit" => (rest.next()? == "dev").then(|| omit_dev = true)?,
            "--only" => {
                matches!(rest.next()?.as_str(), "production" | "prod").then(|| omit_dev = true)?
            }
            "--ignore-scripts" => ignore_scripts = true,
            "--no-audit"
            | "--no-fund"
            | "--no-update-notifier"
            | "--silent"
            | "--quiet"
            | "--prefer-offline"
            | "--no-progress" => {}
            "--loglevel" => LEVELS.contains(&rest.next()?.as_str()).then_some(())?,
            a if a
                .strip_prefix("--loglevel=")
                .is_some_and(|l| LEVELS.contains(&l)) => {}
            _ => return None,
        }
    }
    Some(NativeOp::Npm {
        install,
        omit_dev,
        ignore_scripts,
    })
}

/// `pip`, `pip3`, `pip3.12`.
fn is_pip(name: &str) -> bool {
    name == "pip" || name == "pip3" || versioned(name, "pip3.")
}

/// `python`, `python3`, `python3.12`.
fn is_python(name: &str) -> bool {
    name == "python" || name == "python3" || versioned(name, "python3.")
}

fn versioned(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
}

/// A path as the shell passes it, compared as the file system would:
/// no `./` in front, no trailing `/`, no doubled `/`.
fn tidy(p: &str) -> String {
    let abs = p.starts_with('/');
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    match abs {
        true => format!("/{}", parts.join("/")),
        false => parts.join("/"),
    }
}

/// pip and `python -m venv`, whichever spelling.
fn python(argv: &[String], dir: Option<&str>, name: &str, env: &[(String, String)]) -> Option<Cmd> {
    // Where the program lives: the system's, or a venv's `DIR/bin`.
    let venv = match dir {
        None => {
            if !standard_path(env) {
                return None;
            }
            None
        }
        Some(d) => {
            let d = tidy(d);
            match d.as_str() {
                "/bin" | "/usr/bin" | "/usr/local/bin" => None,
                _ => {
                    let root = d
                        .strip_suffix("/bin")
                        .or_else(|| (d == "bin").then_some(""))?;
                    if root.is_empty() || root.split('/').any(|c| c == "..") {
                        return None;
                    }
                    Some(root.to_owned())
                }
            }
        }
    };
    let args = &argv[1..];
    if is_pip(name) {
        return pip(args, venv, env).map(Cmd::Op);
    }
    if !is_python(name) || args.first()? != "-m" {
        return None;
    }
    match args.get(1)?.as_str() {
        "pip" => pip(&args[2..], venv, env).map(Cmd::Op),
        // The system's python making a venv, nothing else.
        "venv" if venv.is_none() && args.len() == 3 && !args[2].starts_with('-') => {
            let d = tidy(&args[2]);
            if d.is_empty() || d == "/" || d.split('/').any(|c| c == "..") {
                return None;
            }
            Some(Cmd::Venv(d))
        }
        _ => None,
    }
}

/// `install -r FILE` with flags that change nothing hoist installs.
fn pip(args: &[String], venv: Option<String>, env: &[(String, String)]) -> Option<NativeOp> {
    const ALLOWED_ENV: &[&str] = &[
        "PIP_NO_CACHE_DIR",
        "PIP_DISABLE_PIP_VERSION_CHECK",
        "PIP_ROOT_USER_ACTION",
    ];
    for (k, _) in env {
        let pip_var = k.starts_with("PIP_") && !ALLOWED_ENV.contains(&k.as_str());
        // Another interpreter home or user base moves where pip installs.
        if pip_var || k == "PYTHONHOME" || k == "PYTHONUSERBASE" {
            return None;
        }
    }
    if args.first()? != "install" {
        return None;
    }
    let mut requirements = None;
    let mut user = false;
    let mut compile = true;
    let mut rest = args[1..].iter();
    let mut set_req = |r: &str| {
        if requirements.is_some() || r.is_empty() {
            return None;
        }
        requirements = Some(r.to_owned());
        Some(())
    };
    while let Some(a) = rest.next() {
        match a.as_str() {
            "-r" | "--requirement" => set_req(rest.next()?)?,
            "--no-compile" => compile = false,
            "--compile" => compile = true,
            "--user" => user = true,
            // Output, caching and the root warning: no change to files.
            "--no-cache-dir"
            | "-q"
            | "-qq"
            | "-qqq"
            | "--quiet"
            | "--disable-pip-version-check"
            | "--root-user-action=ignore"
            | "--no-warn-script-location" => {}
            "--root-user-action" => (rest.next()? == "ignore").then_some(())?,
            // `--upgrade` only changes what pip does with a requirement
            // that is already installed (it upgrades it; without it pip
            // keeps a version that satisfies). hoist's installer never
            // looks at what is installed: it resolves the requirements
            // afresh either way. So with or without -U the result is the
            // same one exactly when no requirement is installed in the
            // image yet, which the caller checks for both (a stock python
            // image has only pip, setuptools and wheel).
            "--upgrade" | "-U" => {}
            // Prefers an older wheel over a newer sdist; hoist's
            // installer takes wheels only (an sdist is a sandbox
            // fallback the caller sees), so with wheels for every
            // resolved version it picks the same.
            "--prefer-binary" => {}
            a => {
                let r = a
                    .strip_prefix("--requirement=")
                    .or_else(|| a.strip_prefix("-r").filter(|r| !r.starts_with('-')))?;
                set_req(r)?;
            }
        }
    }
    Some(NativeOp::Pip {
        requirements: requirements?,
        user,
        compile,
        venv,
    })
}

/// Short options bundled or not (`-pv`, `-Rv`, `-m 700`, `-m700`).
struct Opts {
    flags: Vec<char>,
    /// The value of the one option that takes one (`-m`), if given.
    value: Option<String>,
    operands: Vec<String>,
}

/// getopt's reading of `args`: `allowed` short flags, `with_value` the
/// one taking a value, `long` the long spellings (`--parents` -> 'p',
/// `--mode=` -> the value). Options after the first operand refuse the
/// line (GNU permutes them, busybox does not).
fn getopt(
    args: &[String],
    allowed: &str,
    with_value: Option<char>,
    long: &[(&str, char)],
) -> Option<Opts> {
    let mut o = Opts {
        flags: Vec::new(),
        value: None,
        operands: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if !o.operands.is_empty() {
            if a.starts_with('-') && a.len() > 1 {
                return None;
            }
            o.operands.push(a.clone());
            continue;
        }
        if a == "--" {
            o.operands.extend(it.cloned());
            break;
        }
        if let Some(l) = a.strip_prefix("--") {
            let (name, v) = match l.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (l, None),
            };
            let &(_, c) = long.iter().find(|(n, _)| *n == name)?;
            if Some(c) == with_value {
                let v = match v {
                    Some(v) => v.to_owned(),
                    None => it.next()?.clone(),
                };
                o.value.is_none().then_some(())?;
                o.value = Some(v);
            } else {
                v.is_none().then_some(())?;
                o.flags.push(c);
            }
            continue;
        }
        match a.strip_prefix('-') {
            Some(s) if !s.is_empty() => {
                for (i, c) in s.char_indices() {
                    if Some(c) == with_value {
                        let v = match &s[i + c.len_utf8()..] {
                            "" => it.next()?.clone(),
                            v => v.to_owned(),
                        };
                        o.value.is_none().then_some(())?;
                        o.value = Some(v);
                        break;
                    }
                    allowed.contains(c).then_some(())?;
                    o.flags.push(c);
                }
            }
            _ => o.operands.push(a.clone()),
        }
    }
    Some(o)
}

/// Operands that are plain paths: no `..` (a path hoist resolves itself
/// must not depend on where links lead), not empty.
fn plain_paths(operands: Vec<String>) -> Option<Vec<String>> {
    let ok = !operands.is_empty()
        && operands
            .iter()
            .all(|p| !p.is_empty() && !p.split('/').any(|c| c == ".."));
    ok.then_some(operands)
}

/// `mkdir [-p] [-m OCTAL] PATH...`
fn mkdir(args: &[String]) -> Option<NativeOp> {
    let o = getopt(
        args,
        "pv",
        Some('m'),
        &[("parents", 'p'), ("mode", 'm'), ("verbose", 'v')],
    )?;
    let mode = match &o.value {
        None => None,
        Some(m) => match ModeSpec::parse(m)? {
            // setuid and setgid on a folder differ between GNU and busybox.
            ModeSpec::Octal { mode, .. } if mode & 0o6000 == 0 => Some(mode),
            _ => return None,
        },
    };
    Some(NativeOp::Mkdir {
        parents: o.flags.contains(&'p'),
        mode,
        paths: plain_paths(o.operands)?,
    })
}

/// `chown [-R] OWNER[:GROUP] PATH...`
fn chown(args: &[String]) -> Option<NativeOp> {
    let o = getopt(args, "Rv", None, &[("recursive", 'R'), ("verbose", 'v')])?;
    let mut operands = o.operands.into_iter();
    let owner = operands.next()?;
    let name = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            && !s.starts_with('-')
    };
    // `USER`, `USER:GROUP`, `:GROUP`; not `USER:` (GNU and busybox read
    // it differently) nor `USER.GROUP`.
    let ok = match owner.split_once(':') {
        None => name(&owner),
        Some(("", g)) => name(g),
        Some((u, g)) => name(u) && name(g),
    };
    if !ok {
        return None;
    }
    Some(NativeOp::Chown {
        owner,
        recursive: o.flags.contains(&'R'),
        paths: plain_paths(operands.collect())?,
    })
}

/// `chmod [-R] MODE PATH...`
fn chmod(args: &[String]) -> Option<NativeOp> {
    let o = getopt(args, "Rv", None, &[("recursive", 'R'), ("verbose", 'v')])?;
    let mut operands = o.operands.into_iter();
    let mode = ModeSpec::parse(&operands.next()?)?;
    Some(NativeOp::Chmod {
        mode,
        recursive: o.flags.contains(&'R'),
        paths: plain_paths(operands.collect())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(s: &str) -> CommandLine {
        CommandLine {
            args: vec![s.to_owned()],
            shell: true,
            heredocs: Vec::new(),
        }
    }

    fn env(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn npm(install: bool, omit_dev: bool, ignore_scripts: bool) -> NativeOp {
        NativeOp::Npm {
            install,
            omit_dev,
            ignore_scripts,
        }
    }

    fn pip(req: &str, user: bool, compile: bool, venv: Option<&str>) -> NativeOp {
        NativeOp::Pip {
            requirements: req.into(),
            user,
            compile,
            venv: venv.map(String::from),
        }
    }

    fn mkdir(parents: bool, mode: Option<u32>, paths: &[&str]) -> NativeOp {
        NativeOp::Mkdir {
            parents,
            mode,
            paths: s(paths),
        }
    }

    fn chown(owner: &str, recursive: bool, paths: &[&str]) -> NativeOp {
        NativeOp::Chown {
            owner: owner.into(),
            recursive,
            paths: s(paths),
        }
    }

    fn chmod(mode: &str, recursive: bool, paths: &[&str]) -> NativeOp {
        NativeOp::Chmod {
            mode: ModeSpec::parse(mode).unwrap(),
            recursive,
            paths: s(paths),
        }
    }

    /// A line, the variables it sees, what it is.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Vec<NativeOp>);

    #[test]
    fn recognised_lines() {
        let no_env: &[(&str, &str)] = &[];
        let cases: Vec<Case> = vec![
            ("npm ci", no_env, vec![npm(false, false, false)]),
            ("npm ci --omit=dev", no_env, vec![npm(false, true, false)]),
            ("npm ci --omit dev", no_env, vec![npm(false, true, false)]),
            ("npm ci --only=production", no_env, vec![npm(false, true, false)]),
            ("npm ci --only prod", no_env, vec![npm(false, true, false)]),
            ("npm install --production", no_env, vec![npm(true, true, false)]),
            ("npm i --ignore-scripts", no_env, vec![npm(true, false, true)]),
            (
                "npm ci --no-audit --no-fund --no-update-notifier --loglevel=error --silent --quiet --prefer-offline --no-progress",
                no_env,
                vec![npm(false, false, false)],
            ),
            ("npm ci --loglevel warn", no_env, vec![npm(false, false, false)]),
            ("npm ci", &[("NODE_ENV", "production")], vec![npm(false, true, false)]),
            ("npm ci", &[("NODE_ENV", "development")], vec![npm(false, false, false)]),
            ("npm clean-install", no_env, vec![npm(false, false, false)]),
            (
                "npm ci",
                &[("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")],
                vec![npm(false, false, false)],
            ),
            ("pip install -r requirements.txt", no_env, vec![pip("requirements.txt", false, true, None)]),
            (
                "pip install --no-cache-dir -r requirements.txt",
                no_env,
                vec![pip("requirements.txt", false, true, None)],
            ),
            (
                "pip3 install --no-cache-dir --no-compile --user -r /app/req.txt",
                no_env,
                vec![pip("/app/req.txt", true, false, None)],
            ),
            ("pip3.12 install -rreq.txt", no_env, vec![pip("req.txt", false, true, None)]),
            (
                "python -m pip install --requirement=r.txt -q --disable-pip-version-check --root-user-action=ignore",
                no_env,
                vec![pip("r.txt", false, true, None)],
            ),
            (
                "python3 -m pip install -U --prefer-binary --requirement r.txt",
                no_env,
                vec![pip("r.txt", false, true, None)],
            ),
            (
                "/usr/local/bin/pip install -r r.txt",
                no_env,
                vec![pip("r.txt", false, true, None)],
            ),
            (
                "/opt/venv/bin/pip install -r requirements.txt",
                no_env,
                vec![pip("requirements.txt", false, true, Some("/opt/venv"))],
            ),
            (
                "python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt",
                no_env,
                vec![pip("requirements.txt", false, true, Some("/opt/venv"))],
            ),
            (
                "python3 -m venv /opt/venv/ && /opt/venv/bin/python -m pip install -r r.txt",
                no_env,
                vec![pip("r.txt", false, true, Some("/opt/venv"))],
            ),
            (
                "python3 -m venv .venv && ./.venv/bin/pip install -r r.txt",
                no_env,
                vec![pip("r.txt", false, true, Some(".venv"))],
            ),
            (
                "pip install -r r.txt",
                &[("PIP_NO_CACHE_DIR", "1"), ("PIP_DISABLE_PIP_VERSION_CHECK", "1"), ("PYTHONDONTWRITEBYTECODE", "1")],
                vec![pip("r.txt", false, true, None)],
            ),
            (
                "addgroup -S app && adduser -S app -G app",
                no_env,
                vec![
                    NativeOp::Account(s(&["addgroup", "-S", "app"])),
                    NativeOp::Account(s(&["adduser", "-S", "app", "-G", "app"])),
                ],
            ),
            (
                "groupadd --system --gid 1001 nodejs && useradd --system --uid 1001 -g nodejs nextjs",
                no_env,
                vec![
                    NativeOp::Account(s(&["groupadd", "--system", "--gid", "1001", "nodejs"])),
                    NativeOp::Account(s(&["useradd", "--system", "--uid", "1001", "-g", "nodejs", "nextjs"])),
                ],
            ),
            (
                "/usr/sbin/useradd -m 'agent'",
                no_env,
                vec![NativeOp::Account(s(&["/usr/sbin/useradd", "-m", "agent"]))],
            ),
            ("mkdir -p a/b/c", no_env, vec![mkdir(true, None, &["a/b/c"])]),
            ("mkdir -m 700 /data", no_env, vec![mkdir(false, Some(0o700), &["/data"])]),
            ("mkdir -pm700 /x /y", no_env, vec![mkdir(true, Some(0o700), &["/x", "/y"])]),
            ("mkdir --parents --mode=0755 -- /x", no_env, vec![mkdir(true, Some(0o755), &["/x"])]),
            ("/bin/mkdir /x", no_env, vec![mkdir(false, None, &["/x"])]),
            ("mkdir '/a b'", no_env, vec![mkdir(false, None, &["/a b"])]),
            ("mkdir /a\\ b", no_env, vec![mkdir(false, None, &["/a b"])]),
            ("mkdir \"/a b\"", no_env, vec![mkdir(false, None, &["/a b"])]),
            (
                "mkdir -p /app && chown -R app:app /app",
                no_env,
                vec![mkdir(true, None, &["/app"]), chown("app:app", true, &["/app"])],
            ),
            ("chown 1000:1000 /x /y", no_env, vec![chown("1000:1000", false, &["/x", "/y"])]),
            ("chown :staff /x", no_env, vec![chown(":staff", false, &["/x"])]),
            ("chown -Rv www-data /var/www", no_env, vec![chown("www-data", true, &["/var/www"])]),
            ("chmod 755 /x", no_env, vec![chmod("755", false, &["/x"])]),
            ("chmod -R g+w /x", no_env, vec![chmod("g+w", true, &["/x"])]),
            ("chmod u+x,g-w,o=r f", no_env, vec![chmod("u+x,g-w,o=r", false, &["f"])]),
            ("chmod +x f", no_env, vec![chmod("+x", false, &["f"])]),
            ("chmod -- a+rX f", no_env, vec![chmod("a+rX", false, &["f"])]),
            (
                "set -e; mkdir -p /a && chmod 700 /a",
                no_env,
                vec![mkdir(true, None, &["/a"]), chmod("700", false, &["/a"])],
            ),
            ("set -eux && mkdir /a", no_env, vec![mkdir(false, None, &["/a"])]),
            ("mkdir /a&&chmod 700 /a", no_env, vec![mkdir(false, None, &["/a"]), chmod("700", false, &["/a"])]),
            (
                "mkdir -p /app",
                &[("PATH", "/opt/venv/bin:/usr/bin:/bin")],
                vec![mkdir(true, None, &["/app"])],
            ),
        ];
        for (line, e, want) in cases {
            let got = recognise(&shell(line), &env(e));
            assert_eq!(got, Some(want), "{line}");
        }
    }

    #[test]
    fn refused_lines() {
        let no_env: &[(&str, &str)] = &[];
        let cases: Vec<(&str, &[(&str, &str)])> = vec![
            ("", no_env),
            ("npm ci | tee log", no_env),
            ("npm ci; npm test", no_env),
            ("npm ci || true", no_env),
            ("npm ci &", no_env),
            ("npm ci > log", no_env),
            ("npm ci 2>&1", no_env),
            ("npm ci --omit=$OMIT", no_env),
            ("npm ci --omit=\"$OMIT\"", no_env),
            ("npm ci `x`", no_env),
            ("mkdir /a/*", no_env),
            ("mkdir /a?", no_env),
            ("mkdir /a[1]", no_env),
            ("mkdir /{a,b}", no_env),
            ("mkdir ~/x", no_env),
            ("(mkdir /x)", no_env),
            ("mkdir /x # comment", no_env),
            ("cd /app && npm ci", no_env),
            ("NODE_ENV=production npm ci", no_env),
            ("npm ci && npm run build", no_env),
            ("npm ci &&", no_env),
            ("&& npm ci", no_env),
            ("npm ci && && npm ci", no_env),
            ("mkdir /x\nmkdir /y", no_env),
            ("'unterminated", no_env),
            ("npm test", no_env),
            ("npm install express", no_env),
            ("npm ci --omit=optional", no_env),
            ("npm ci --include=dev", no_env),
            ("npm ci --legacy-peer-deps", no_env),
            ("npm ci --loglevel=loud", no_env),
            ("npm ci", &[("npm_config_omit", "dev")]),
            ("npm ci", &[("NPM_CONFIG_REGISTRY", "http://x")]),
            (
                "npm ci",
                &[("PATH", "/app/node_modules/.bin:/usr/bin:/bin")],
            ),
            ("/usr/local/bin/npm ci", no_env),
            ("pip install flask", no_env),
            ("pip install -r a.txt -r b.txt", no_env),
            ("pip install -r r.txt --no-deps", no_env),
            ("pip install -r r.txt --target /x", no_env),
            ("pip install -r r.txt -i https://example.org/simple", no_env),
            ("pip install --upgrade pip && pip install -r r.txt", no_env),
            ("pip install -r r.txt", &[("PIP_INDEX_URL", "http://x")]),
            ("pip install -r r.txt", &[("PIP_NO_COMPILE", "1")]),
            ("pip install --user -r r.txt", &[("PYTHONUSERBASE", "/x")]),
            (
                "pip install -r r.txt",
                &[("PATH", "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin")],
            ),
            ("pip download -r r.txt", no_env),
            ("python -m venv /opt/venv", no_env),
            ("python -m venv /opt/venv && pip install -r r.txt", no_env),
            (
                "python -m venv /opt/venv && /opt/other/bin/pip install -r r.txt",
                no_env,
            ),
            (
                "python -m venv --copies /opt/venv && /opt/venv/bin/pip install -r r.txt",
                no_env,
            ),
            ("python -c 'print(1)'", no_env),
            (
                "/opt/venv/bin/python -m venv /x && /x/bin/pip install -r r.txt",
                no_env,
            ),
            ("usermod -aG docker app", no_env),
            ("/app/bin/useradd x", no_env),
            ("mkdir", no_env),
            ("mkdir -x /a", no_env),
            ("mkdir -m u=rwx /a", no_env),
            ("mkdir -m 2775 /a", no_env),
            ("mkdir -m 800 /a", no_env),
            ("mkdir /a/../b", no_env),
            ("mkdir /a -p", no_env),
            // busybox stops at the first operand: `--` would be a file.
            ("chmod a+rX -- f", no_env),
            ("chown app", no_env),
            ("chown app: /x", no_env),
            ("chown app.app /x", no_env),
            ("chown -h app /x", no_env),
            ("chown --from=a b /x", no_env),
            ("chown --reference=/y /x", no_env),
            ("chown +1000 /x", no_env),
            ("chmod 755", no_env),
            ("chmod +w f", no_env),
            ("chmod =r f", no_env),
            ("chmod -w f", no_env),
            ("chmod g=u f", no_env),
            ("chmod u+z f", no_env),
            ("chmod 77777 f", no_env),
            ("chmod u f", no_env),
            ("chmod ,u+x f", no_env),
            ("chmod o-t /d", no_env),
            ("chmod u+t /d", no_env),
            ("set -o pipefail; mkdir /x", no_env),
            ("set -e; set -x; mkdir /x", no_env),
            ("mkdir /x; set -e", no_env),
            ("set -e", no_env),
            ("echo hi", no_env),
            ("true", no_env),
        ];
        for (line, e) in cases {
            assert_eq!(recognise(&shell(line), &env(e)), None, "{line:?}");
        }
    }

    #[test]
    fn exec_form_and_heredocs() {
        let exec = |v: &[&str]| CommandLine {
            args: s(v),
            shell: false,
            heredocs: Vec::new(),
        };
        assert_eq!(
            recognise(&exec(&["npm", "ci", "--omit=dev"]), &[]),
            Some(vec![npm(false, true, false)])
        );
        // No shell: `&&` is an argument, `$X` a literal.
        assert_eq!(
            recognise(&exec(&["mkdir", "/a", "&&", "x"]), &[]),
            Some(vec![mkdir(false, None, &["/a", "&&", "x"])])
        );
        assert_eq!(recognise(&exec(&["sh", "-c", "npm ci"]), &[]), None);
        assert_eq!(recognise(&exec(&[]), &[]), None);
        let mut h = shell("mkdir /x");
        h.heredocs
            .push(crate::frontend::dockerfile::parser::Heredoc {
                name: "EOF".into(),
                fd: 0,
                content: "x".into(),
                expand: true,
                chomp: false,
            });
        assert_eq!(recognise(&h, &[]), None);
    }

    #[test]
    fn modes_as_gnu_chmod_computes_them() {
        // (spec, old mode, is dir, new mode)
        let cases: &[(&str, u32, bool, u32)] = &[
            ("755", 0o644, false, 0o755),
            ("0644", 0o4755, false, 0o644),
            ("755", 0o2775, true, 0o2755),
            ("00755", 0o2775, true, 0o755),
            ("1777", 0o755, true, 0o1777),
            ("u+x", 0o644, false, 0o744),
            ("+x", 0o644, false, 0o755),
            ("+x", 0o600, true, 0o711),
            ("a+rX", 0o600, false, 0o644),
            ("a+rX", 0o700, false, 0o755),
            ("a+rX", 0o700, true, 0o755),
            ("a+rX", 0o600, true, 0o755),
            ("g+w", 0o644, false, 0o664),
            ("g-w,o=r", 0o777, false, 0o754),
            ("o=", 0o777, false, 0o770),
            ("u=rwx,go=rx", 0o600, false, 0o755),
            ("go-rwx", 0o755, false, 0o700),
            ("u+s", 0o755, false, 0o4755),
            ("g+s", 0o755, true, 0o2755),
            ("+t", 0o777, true, 0o1777),
            ("a=r", 0o4755, false, 0o444),
            // A folder keeps setgid unless the clause names it.
            ("a=rx", 0o2775, true, 0o2555),
            ("g-s", 0o2775, true, 0o775),
            ("u+x-w", 0o644, false, 0o544),
            ("+r", 0o000, false, 0o444),
            ("-x", 0o755, false, 0o644),
        ];
        for (spec, old, dir, want) in cases {
            let m = ModeSpec::parse(spec).unwrap_or_else(|| panic!("{spec} should parse"));
            assert_eq!(
                m.apply(*old, *dir),
                *want,
                "{spec} on {old:o} (dir: {dir}): got {:o}",
                m.apply(*old, *dir)
            );
        }
    }
}
