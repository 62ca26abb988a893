//! Expanded Dockerfile stages -> the build graph.
//!
//! Each stage the target reaches becomes a [`Stage`] whose steps run in
//! order (a sequenced [`Graph`]): RUN in the sandbox, COPY and ADD as
//! placed files, WORKDIR as a folder made when missing, and `RUN npm ci` /
//! `RUN pip install -r` as native installs where hoist can tell they are
//! exactly the command's work (the manifests were copied from the context
//! into the folder the command runs in, as root, with nothing else on the
//! line). The config instructions fold into the stage's
//! [`ConfigSettings`], with docker's rules: a stage built on another starts
//! from its config, an ENTRYPOINT drops a CMD the stage did not set, shell
//! forms go through the stage's SHELL.
//!
//! What hoist cannot honour yet is an error naming the line and the
//! instruction, never skipped: `RUN --mount=type=ssh`, ADD of a git
//! repository over SSH.

use std::collections::BTreeMap;

use super::expand::{Expanded, ExpandedStage};
use super::instructions::{Add, Command, CommandLine, Copy, Health, Instruction, Run};
use super::mount::{Mount, MountType, Sharing};
use super::native::{self, NativeOp};
use super::DockerfileError;
use crate::graph::chmod::Chmod;
use crate::graph::config::ConfigSettings;
use crate::graph::native::NativeRun;
use crate::graph::spec::{
    CacheSharing, DepsKind, InstallSpec, MkdirSpec, PlaceFrom, PlaceSpec, RunMount, RunMountKind,
    RunSpec, StageBase,
};
use crate::graph::{Graph, Stage, Step};
use crate::image::Healthcheck;
use crate::reference::transport::Transport;

/// What the lowering reads besides the expanded stages.
pub struct LowerInputs<'a> {
    /// The stage to build (`--target`); the last one when `None`.
    pub target: Option<&'a str>,
    /// The config of a base image: its WorkingDir and User.
    pub base_config: &'a dyn Fn(&str) -> BaseConfig,
    /// `--native=never`: every RUN goes to the sandbox as written.
    pub native: native::Native,
}

/// What a stage inherits from a base image's config.
#[derive(Debug, Clone, Default)]
pub struct BaseConfig {
    pub workdir: Option<String>,
    pub user: Option<String>,
}

/// The graph of the stages `inputs.target` reaches, in the Dockerfile's
/// order, the target last.
pub fn lower(file: &str, ex: &Expanded, inputs: &LowerInputs) -> Result<Graph, DockerfileError> {
    let err = |line: usize, message: String| DockerfileError {
        file: file.to_owned(),
        line,
        column: 1,
        message,
    };
    let names: Vec<String> = ex.stages.iter().map(stage_name).collect();
    let target = match inputs.target {
        None => ex.stages.len().checked_sub(1).ok_or_else(|| {
            err(
                1,
                "the Dockerfile has no FROM: start it with FROM IMAGE".into(),
            )
        })?,
        Some(t) => ex
            .stages
            .iter()
            .position(|s| s.stage.name.as_deref() == Some(&t.to_ascii_lowercase()))
            .ok_or_else(|| {
                let known: Vec<&str> = ex
                    .stages
                    .iter()
                    .filter_map(|s| s.stage.name.as_deref())
                    .collect();
                err(
                    1,
                    format!(
                        "--target {t}: there is no stage `{t}`; {}",
                        match known.is_empty() {
                            true => "this Dockerfile names no stages (FROM IMAGE AS NAME)".into(),
                            false => format!("its stages are {}", known.join(", ")),
                        }
                    ),
                )
            })?,
    };
    // The stages the target reaches, by index.
    let mut wanted = vec![false; ex.stages.len()];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if std::mem::replace(&mut wanted[i], true) {
            continue;
        }
        for n in reaches(ex, i, &names) {
            todo.push(n);
        }
    }
    let mut graph = Graph {
        stages: Vec::new(),
        sequenced: true,
    };
    let mut states: BTreeMap<usize, State> = BTreeMap::new();
    for (i, s) in ex.stages.iter().enumerate() {
        if !wanted[i] || i > target {
            continue;
        }
        let parent = parent_of(ex, i);
        let mut state = match parent {
            Some(p) => states
                .get(&p)
                .cloned()
                .ok_or_else(|| err(s.stage.line, format!("stage {} is not built", names[p])))?,
            None if is_scratch(&s.stage.base) => State {
                workdir: "/".into(),
                ..State::default()
            },
            None => {
                let bc = (inputs.base_config)(&s.stage.base);
                State {
                    workdir: bc
                        .workdir
                        .filter(|w| !w.is_empty())
                        .unwrap_or_else(|| "/".into()),
                    user: bc.user.filter(|u| !u.is_empty()),
                    native: inputs.native,
                    ..State::default()
                }
            }
        };
        state.cmd_set = false;
        let base = match parent {
            Some(p) => StageBase::Stage(names[p].clone()),
            None if is_scratch(&s.stage.base) => StageBase::Scratch,
            None => StageBase::Image(Transport::Registry(s.stage.base.clone())),
        };
        let mut steps = Vec::new();
        for c in &s.stage.commands {
            lower_command(file, c, &mut state, &mut steps, ex, &names, i)?;
        }
        graph.stages.push(Stage {
            name: names[i].clone(),
            base,
            workdir: state.workdir.clone(),
            steps,
            spec: None,
            config: Some(state.config.clone()),
        });
        states.insert(i, state);
    }
    Ok(graph)
}

/// `FROM scratch`: the empty image (docker's reserved name, any case).
fn is_scratch(base: &str) -> bool {
    base.eq_ignore_ascii_case("scratch")
}

/// A stage's name in the graph: its `AS` name, else its index.
fn stage_name(s: &ExpandedStage) -> String {
    s.stage
        .name
        .clone()
        .unwrap_or_else(|| s.stage.index.to_string())
}

/// The earlier stage stage `i` is built on, if its base names one.
fn parent_of(ex: &Expanded, i: usize) -> Option<usize> {
    let base = ex.stages[i].stage.base.to_ascii_lowercase();
    ex.stages[..i]
        .iter()
        .position(|s| s.stage.name.as_deref() == Some(base.as_str()))
}

/// The stage `from` names (`--from=NAME` or `--from=INDEX`), before `i`.
fn stage_ref(ex: &Expanded, i: usize, names: &[String], from: &str) -> Option<usize> {
    let lower = from.to_ascii_lowercase();
    if let Ok(n) = lower.parse::<usize>() {
        return (n < i).then_some(n);
    }
    ex.stages[..i]
        .iter()
        .enumerate()
        .find(|(_, s)| {
            names.get(s.stage.index).is_some() && s.stage.name.as_deref() == Some(&lower)
        })
        .map(|(n, _)| n)
}

/// The stages stage `i` reads: its base and its COPY --from stages.
fn reaches(ex: &Expanded, i: usize, names: &[String]) -> Vec<usize> {
    let mut out: Vec<usize> = parent_of(ex, i).into_iter().collect();
    for c in &ex.stages[i].stage.commands {
        if let Instruction::Copy(Copy { from: Some(f), .. }) = &c.instruction {
            if let Some(n) = stage_ref(ex, i, names, f) {
                out.push(n);
            }
        }
        if let Instruction::Run(r) = &c.instruction {
            for f in r.mounts.iter().filter_map(|m| m.from.as_deref()) {
                if let Some(n) = stage_ref(ex, i, names, f) {
                    out.push(n);
                }
            }
        }
    }
    out
}

/// What lowering knows of a stage as it goes.
#[derive(Debug, Clone, Default)]
struct State {
    workdir: String,
    user: Option<String>,
    shell: Option<Vec<String>>,
    /// ENV, in order (the image's environment on top of the base's).
    env: Vec<(String, String)>,
    /// Declared ARGs with a value: RUN steps see them.
    args: Vec<(String, String)>,
    config: ConfigSettings,
    /// CMD was set in this stage (an ENTRYPOINT then keeps it).
    cmd_set: bool,
    /// Context files copied in: (folder in the image, context folder,
    /// source pattern's last part).
    copied: Vec<(String, String, String)>,
    native: native::Native,
}

impl State {
    fn shell(&self) -> Vec<String> {
        self.shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// A command line as the image runs it: exec form as written, shell
    /// form behind the stage's SHELL.
    fn command(&self, cmd: &CommandLine) -> Vec<String> {
        match cmd.shell {
            true => {
                let mut v = self.shell();
                v.push(cmd.args.join(" "));
                v
            }
            false => cmd.args.clone(),
        }
    }

    /// The env a RUN sees: the declared ARGs, then ENV (which wins).
    fn run_env(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in self.args.iter().chain(&self.env) {
            match out.iter_mut().find(|(ok, _)| ok == k) {
                Some(e) => e.1.clone_from(v),
                None => out.push((k.clone(), v.clone())),
            }
        }
        out
    }

    /// `p` made absolute against the workdir; a trailing `/` kept.
    fn abs(&self, p: &str) -> String {
        match p.starts_with('/') {
            true => p.to_owned(),
            false => {
                let rel = p.strip_prefix("./").unwrap_or(p);
                let base = self.workdir.trim_end_matches('/');
                match rel {
                    "." | "" => format!("{base}/"),
                    r => format!("{base}/{r}"),
                }
            }
        }
    }

    /// The context folder from which every one of `files` was copied
    /// into `dir` (the latest COPY that placed each), when it is one
    /// folder.
    fn copied_from(&self, dir: &str, files: &[&str]) -> Option<String> {
        let dir = dir.trim_end_matches('/');
        let mut from: Option<&str> = None;
        for f in files {
            let (_, src, _) = self
                .copied
                .iter()
                .rev()
                .find(|(d, _, pat)| d.trim_end_matches('/') == dir && glob_match(pat, f))?;
            match from {
                Some(prev) if prev != src => return None,
                _ => from = Some(src),
            }
        }
        from.map(str::to_owned)
    }
}

#[allow(clippy::too_many_arguments)]
fn lower_command(
    file: &str,
    c: &Command,
    st: &mut State,
    steps: &mut Vec<Step>,
    ex: &Expanded,
    names: &[String],
    i: usize,
) -> Result<(), DockerfileError> {
    let err = |message: String| DockerfileError {
        file: file.to_owned(),
        line: c.line,
        column: c.column,
        message,
    };
    let at = format!("{file}:{}", c.line);
    match &c.instruction {
        Instruction::Arg(decls) => {
            for d in decls {
                if let Some(v) = &d.default {
                    set(&mut st.args, &d.name, v);
                }
            }
        }
        Instruction::Env(kvs) => {
            for (k, v) in kvs {
                set(&mut st.env, k, v);
                set(&mut st.config.env, k, v);
            }
        }
        Instruction::Label(kvs) => {
            for (k, v) in kvs {
                st.config.labels.insert(k.clone(), v.clone());
            }
        }
        Instruction::Expose(ports) => {
            for p in ports {
                let port = crate::graph::config::parse_port(p)
                    .map_err(|e| err(format!("EXPOSE {p}: {e}")))?;
                if !st.config.expose.contains(&port) {
                    st.config.expose.push(port);
                }
            }
        }
        Instruction::User(u) => {
            st.user = Some(u.clone());
            st.config.user = Some(u.clone());
        }
        Instruction::Workdir(w) => {
            let abs = st.abs(w);
            let abs = match abs.trim_end_matches('/') {
                "" => "/".to_owned(),
                a => a.to_owned(),
            };
            st.workdir = abs.clone();
            st.config.workdir = Some(abs.clone());
            steps.push(Step::Mkdir(MkdirSpec {
                path: abs,
                owner: st.user.clone(),
            }));
        }
        Instruction::Volume(v) => {
            for p in v {
                if !st.config.volumes.contains(p) {
                    st.config.volumes.push(p.clone());
                }
            }
        }
        Instruction::StopSignal(s) => {
            let sig = crate::graph::config::parse_signal(s)
                .map_err(|e| err(format!("STOPSIGNAL {s}: {e}")))?;
            st.config.stop_signal = Some(sig);
        }
        Instruction::Healthcheck(h) => {
            st.config.healthcheck = Some(match h {
                Health::None => Healthcheck {
                    test: Some(vec!["NONE".into()]),
                    ..Healthcheck::default()
                },
                Health::Cmd {
                    cmd,
                    interval_ns,
                    timeout_ns,
                    start_period_ns,
                    start_interval_ns: _,
                    retries,
                } => {
                    let mut test = vec![match cmd.shell {
                        true => "CMD-SHELL".to_owned(),
                        false => "CMD".to_owned(),
                    }];
                    match cmd.shell {
                        true => test.push(cmd.args.join(" ")),
                        false => test.extend(cmd.args.iter().cloned()),
                    }
                    Healthcheck {
                        test: Some(test),
                        interval: *interval_ns,
                        timeout: *timeout_ns,
                        start_period: *start_period_ns,
                        retries: retries.map(u64::from),
                    }
                }
            });
        }
        Instruction::Entrypoint(cmd) => {
            st.config.entrypoint = Some(st.command(cmd));
            if !st.cmd_set {
                st.config.cmd = None;
            }
        }
        Instruction::Cmd(cmd) => {
            st.config.cmd = Some(st.command(cmd));
            st.cmd_set = true;
        }
        Instruction::Shell(sh) => {
            st.shell = Some(sh.clone());
            st.config.shell = Some(sh.clone());
        }
        Instruction::Onbuild { expression, .. } => st.config.onbuild.push(expression.clone()),
        Instruction::Maintainer(m) => st.config.author = Some(m.clone()),
        Instruction::Run(run) => {
            let from_of = |f: &str| source_of(ex, names, i, f, &format!("RUN --mount=from={f}"));
            steps.push(lower_run(run, st, &at, &from_of).map_err(err)?)
        }
        Instruction::Copy(cp) => {
            steps.push(lower_copy(cp, st, ex, names, i, &at).map_err(err)?);
        }
        Instruction::Add(add) => steps.push(lower_add(add, st, &at).map_err(err)?),
    }
    Ok(())
}

/// Sets `k` in an ordered list, in place when present.
fn set(list: &mut Vec<(String, String)>, k: &str, v: &str) {
    match list.iter_mut().find(|(ek, _)| ek == k) {
        Some(e) => e.1 = v.to_owned(),
        None => list.push((k.to_owned(), v.to_owned())),
    }
}

fn lower_run(
    run: &Run,
    st: &State,
    at: &str,
    from_of: &dyn Fn(&str) -> Result<PlaceFrom, String>,
) -> Result<Step, String> {
    let Run {
        cmd,
        mounts,
        network,
        security,
        ..
    } = run;
    if let Some(super::instructions::Security::Insecure) = security {
        return Err("RUN --security=insecure: hoist runs every step rootless in its sandbox and grants no privileges; drop the flag".into());
    }
    if let Some(super::instructions::Network::None) = network {
        return Err("RUN --network=none: hoist's sandbox shares the host's network; drop the flag (or use default)".into());
    }
    let env = st.run_env();
    // A native install when the line is exactly one, the manifests came
    // from the context into the folder it runs in, and it runs as root.
    let as_root = st
        .user
        .as_deref()
        .is_none_or(|u| u == "root" || u == "0" || u.starts_with("0:") || u.starts_with("root:"));
    let mut native_line = None;
    let mut note = (st.native == native::Native::Never).then(|| "--native=never".to_owned());
    if as_root && cmd.heredocs.is_empty() && st.shell.is_none() && note.is_none() {
        if let Some(ops) = native::recognise(cmd, &env) {
            if let [op] = ops.as_slice() {
                if let Some(step) = install_step(op, st, cmd, at) {
                    return Ok(step);
                }
            }
            if ops
                .iter()
                .any(|o| matches!(o, NativeOp::Pip { venv: Some(_), .. }))
            {
                note = Some("hoist does not write a venv natively yet".to_owned());
            }
            let accounts = ops.iter().all(|o| matches!(o, NativeOp::Account(_)));
            let paths = ops.iter().all(|o| {
                matches!(
                    o,
                    NativeOp::Mkdir { .. } | NativeOp::Chown { .. } | NativeOp::Chmod { .. }
                )
            });
            if mounts.is_empty() && accounts {
                native_line = ops
                    .iter()
                    .map(|o| match o {
                        NativeOp::Account(argv) => super::accounts::parse(argv),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()
                    .map(NativeRun::Accounts);
            } else if mounts.is_empty() && paths {
                native_line = Some(NativeRun::Paths(ops));
            }
        }
    }
    let mounts = mounts
        .iter()
        .map(|m| run_mount(m, st, from_of))
        .collect::<Result<Vec<_>, _>>()?;
    let command = match (&cmd.heredocs[..], cmd.shell) {
        ([], _) => st.command(cmd),
        ([h], true)
            if cmd.args.join(" ").trim().starts_with("<<")
                && !cmd.args.join(" ").trim().contains(' ') =>
        {
            if h.body().starts_with("#!") {
                return Err("RUN <<EOF with a #! line: hoist runs heredoc scripts with the stage's SHELL only; drop the #! line or write `RUN interpreter <<EOF`".into());
            }
            let mut v = st.shell();
            v.push(h.body());
            v
        }
        (docs, true) => {
            // The shell reads the heredocs itself: the line, then each
            // body and its delimiter, as one script.
            let mut script = cmd.args.join(" ");
            script.push('\n');
            for h in docs {
                script.push_str(&h.content);
                if !h.content.is_empty() && !h.content.ends_with('\n') {
                    script.push('\n');
                }
                script.push_str(&h.name);
                script.push('\n');
            }
            let mut v = st.shell();
            v.push(script);
            v
        }
        (_, false) => return Err("RUN in JSON form with a heredoc: write it in shell form".into()),
    };
    Ok(Step::Run(RunSpec {
        command,
        env,
        workdir: Some(st.workdir.clone()),
        user: st.user.clone(),
        timeout: None,
        native: native_line,
        note,
        mounts,
    }))
}

/// One `RUN --mount` as graph data: targets made absolute against the
/// workdir (as BuildKit does), `from` resolved to a stage or an image.
fn run_mount(
    m: &Mount,
    st: &State,
    from_of: &dyn Fn(&str) -> Result<PlaceFrom, String>,
) -> Result<RunMount, String> {
    let kind = match m.kind {
        MountType::Bind => RunMountKind::Bind,
        MountType::Cache => RunMountKind::Cache,
        MountType::Tmpfs => RunMountKind::Tmpfs,
        MountType::Secret => RunMountKind::Secret,
        MountType::Ssh => {
            return Err("RUN --mount=type=ssh: not supported yet; fetch what the step needs before the build, or use a secret (--mount=type=secret with hoist build --secret)".into())
        }
    };
    let name = format!("{:?}", m.kind).to_lowercase();
    let target = match (&m.target, kind) {
        (Some(t), _) => Some(st.abs(t).trim_end_matches('/').to_owned()),
        // A secret is a file at /run/secrets/ID unless it is only an
        // environment variable.
        (None, RunMountKind::Secret) if m.env.is_some() => None,
        (None, RunMountKind::Secret) => {
            let id = m.id.as_deref().or(m.source.as_deref()).unwrap_or_default();
            Some(format!("/run/secrets/{id}"))
        }
        (None, _) => {
            return Err(format!(
                "RUN --mount=type={name}: it needs a target: add target=/PATH"
            ))
        }
    };
    if target.as_deref() == Some("") {
        return Err(format!(
            "RUN --mount=type={name},target=/: a mount cannot cover the whole root; pick a folder"
        ));
    }
    if kind == RunMountKind::Cache && m.from.is_some() {
        return Err("RUN --mount=type=cache,from=...: seeding a cache from a stage is not supported yet; drop `from`".into());
    }
    let from = match (&m.from, kind) {
        (Some(f), RunMountKind::Bind) => Some(from_of(f)?),
        _ => None,
    };
    let size = m
        .size
        .as_deref()
        .map(|s| {
            parse_size(s).ok_or_else(|| {
                format!("RUN --mount=type=tmpfs,size={s}: give bytes, or a number with k, m or g")
            })
        })
        .transpose()?;
    let mut id = m.id.clone();
    // A secret's source names its id, as BuildKit reads it.
    if kind == RunMountKind::Secret && id.is_none() {
        id = m.source.clone();
    }
    Ok(RunMount {
        kind,
        target,
        source: match kind {
            RunMountKind::Secret => None,
            _ => m.source.clone(),
        },
        from,
        id,
        sharing: match m.sharing {
            Some(Sharing::Private) => CacheSharing::Private,
            Some(Sharing::Locked) => CacheSharing::Locked,
            Some(Sharing::Shared) | None => CacheSharing::Shared,
        },
        readonly: m.readonly,
        uid: m.uid,
        gid: m.gid,
        mode: m.mode,
        required: m.required,
        env: m.env.clone(),
        size,
    })
}

/// A tmpfs size as docker reads it: bytes, or with a binary k, m or g.
fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1u64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// Where a `--from` (of a COPY or a RUN mount) reads: an earlier stage,
/// else an image; a later stage is an error.
fn source_of(
    ex: &Expanded,
    names: &[String],
    i: usize,
    f: &str,
    what: &str,
) -> Result<PlaceFrom, String> {
    match stage_ref(ex, i, names, f) {
        Some(n) => Ok(PlaceFrom::Stage(names[n].clone())),
        None if ex.stages[i..]
            .iter()
            .any(|s| s.stage.name.as_deref() == Some(&f.to_ascii_lowercase())) =>
        {
            Err(format!(
                "{what}: stage `{f}` comes later in the file; a stage can copy only from stages above it"
            ))
        }
        None => Ok(PlaceFrom::Image(Transport::Registry(f.to_owned()))),
    }
}

/// The native install for `op`, when the stage holds its manifests as
/// the context has them.
fn install_step(op: &NativeOp, st: &State, cmd: &CommandLine, at: &str) -> Option<Step> {
    let command = cmd.args.join(" ");
    let mut user_home = None;
    let (kind, dev, project, scripts) = match op {
        NativeOp::Npm {
            install: _,
            omit_dev,
            ignore_scripts,
        } => {
            let p = st.copied_from(&st.workdir, &["package.json", "package-lock.json"])?;
            (DepsKind::Npm, !omit_dev, p, !ignore_scripts)
        }
        NativeOp::Pip {
            requirements,
            user,
            compile: _,
            venv: None,
        } => {
            // `--user` as root (the caller's check): root's `~/.local`,
            // unless HOME says another home.
            if *user {
                let env = st.run_env();
                if env.iter().any(|(k, v)| k == "HOME" && v != "/root") {
                    return None;
                }
                user_home = Some("/root".to_owned());
            }
            let req = st.abs(requirements);
            let (dir, name) = req.rsplit_once('/')?;
            if name != "requirements.txt" {
                return None;
            }
            let dir = if dir.is_empty() { "/" } else { dir };
            let p = st.copied_from(dir, &["requirements.txt"])?;
            (DepsKind::Pip, false, p, true)
        }
        _ => return None,
    };
    Some(Step::Install(InstallSpec {
        kind,
        dev,
        project,
        workdir: st.workdir.clone(),
        scripts,
        command,
        at: at.to_owned(),
        user_home,
    }))
}

fn parse_mode(m: &Option<String>) -> Result<Option<Chmod>, String> {
    m.as_deref().map(Chmod::parse).transpose()
}

fn lower_copy(
    cp: &Copy,
    st: &mut State,
    ex: &Expanded,
    names: &[String],
    i: usize,
    at: &str,
) -> Result<Step, String> {
    let from = match &cp.from {
        None => PlaceFrom::Context,
        Some(f) => source_of(ex, names, i, f, &format!("COPY --from={f}"))?,
    };
    place_step(
        st,
        from,
        &cp.paths,
        (&cp.chown, &cp.chmod, &cp.exclude),
        (None, cp.parents),
        at,
    )
}

/// The step of a COPY or ADD: the destination made absolute and checked,
/// what the context puts where remembered for the native installs.
fn place_step(
    st: &mut State,
    from: PlaceFrom,
    paths: &super::instructions::Paths,
    (chown, chmod, exclude): (&Option<String>, &Option<String>, &[String]),
    (add, parents): (Option<&Add>, bool),
    at: &str,
) -> Result<Step, String> {
    let mut dest = st.abs(&paths.dest);
    if parents && !dest.ends_with('/') {
        // The sources keep their folders: the destination is a folder.
        dest.push('/');
    }
    check_sources(&paths.sources, paths.inline.len(), &dest)?;
    if matches!(from, PlaceFrom::Context) && !parents {
        let local: Vec<String> = paths
            .sources
            .iter()
            .filter(|s| !is_url(s) && !is_git(s))
            .cloned()
            .collect();
        remember_copied(st, &local, &dest);
    }
    let git = paths.sources.iter().any(|s| is_git(s));
    let commit = match add.and_then(|a| a.checksum.as_deref()) {
        Some(c) if git => {
            if c.is_empty() || c.len() > 64 || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("ADD --checksum={c}: for a git repository give its commit (or the start of it) in hex"));
            }
            Some(c.to_ascii_lowercase())
        }
        _ => None,
    };
    let checksum = add
        .and_then(|a| a.checksum.as_deref())
        .filter(|_| !git)
        .map(|c| {
            crate::digest::Digest::parse(c).map_err(|_| {
                format!("ADD --checksum={c}: give the SHA-256 of the file as sha256:<64 hex digits> (for example from `sha256sum FILE`)")
            })
        })
        .transpose()?;
    Ok(Step::Place(PlaceSpec {
        from,
        sources: paths.sources.clone(),
        inline: paths
            .inline
            .iter()
            .map(|h| (h.name.clone(), h.body()))
            .collect(),
        dest,
        owner: chown.clone(),
        mode: parse_mode(chmod)?,
        exclude: exclude.to_vec(),
        extract: add.is_some_and(|a| a.unpack != Some(false)),
        unpack_urls: add.is_some_and(|a| a.unpack == Some(true)),
        parents,
        checksum,
        commit,
        keep_git_dir: add.is_some_and(|a| a.keep_git_dir == Some(true)),
        at: at.to_owned(),
    }))
}

/// ADD: local files (tar archives extracted), URLs (downloaded, not
/// extracted unless `--unpack=true`) and git repositories over HTTPS
/// (cloned; SSH addresses are an error).
fn lower_add(add: &Add, st: &mut State, at: &str) -> Result<Step, String> {
    if let Some(git) = add
        .paths
        .sources
        .iter()
        .find(|s| is_git(s) && !s.starts_with("http://") && !s.starts_with("https://"))
    {
        return Err(format!(
            "ADD {git}: hoist clones git repositories over http(s) only (it has no SSH agent); write the https:// address, or clone it into the context first (git clone --depth 1 URL DIR) and COPY DIR"
        ));
    }
    let gits = add.paths.sources.iter().filter(|s| is_git(s)).count();
    let urls = add.paths.sources.iter().filter(|s| is_url(s)).count();
    let all = add.paths.sources.len();
    if add.checksum.is_some() {
        match (gits, urls) {
            (1, 0) if all == 1 => {}
            (0, 1) if all == 1 => {}
            (g, _) if g > 0 => {
                return Err(
                    "ADD --checksum of a git repository: give the repository its own ADD".into(),
                )
            }
            (_, u) if u > 1 && u == all => return Err(
                "ADD --checksum with several URLs: give each URL its own ADD with its own checksum"
                    .into(),
            ),
            _ => return Err("ADD --checksum: it checks a downloaded file, so every source must be one http:// or https:// URL".into()),
        }
    }
    place_step(
        st,
        PlaceFrom::Context,
        &add.paths,
        (&add.chown, &add.chmod, &add.exclude),
        (Some(add), false),
        at,
    )
}

/// An ADD source to download.
pub fn is_url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://")) && !is_git(s)
}

fn is_git(s: &str) -> bool {
    crate::graph::spec::is_git_source(s)
}

/// Several sources need a folder destination, written with a trailing
/// `/`, as docker requires.
fn check_sources(sources: &[String], inline: usize, dest: &str) -> Result<(), String> {
    if sources.len() + inline > 1 && !dest.ends_with('/') {
        return Err(format!(
            "with more than one source the destination must be a folder ending in `/`: write `{dest}/`"
        ));
    }
    Ok(())
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Notes which context files a COPY put where, for the native installs.
fn remember_copied(st: &mut State, sources: &[String], dest: &str) {
    for s in sources {
        let s = s.trim_start_matches("./").trim_end_matches('/');
        let (dir, pat) = match s {
            "" | "." => (String::new(), "*".to_owned()),
            s => match s.rsplit_once('/') {
                Some((d, p)) => (d.to_owned(), p.to_owned()),
                None => (String::new(), s.to_owned()),
            },
        };
        // A file copied to a folder destination lands in it, and a
        // folder's contents land at the destination (`COPY . .`); a file
        // copied to a path of the same name lands in that path's folder.
        let folder = dest.ends_with('/') || dest.trim_end_matches('/') == st.workdir;
        if folder || pat == "*" {
            st.copied.push((dest.to_owned(), dir, pat));
        } else if let Some((parent, name)) = dest.rsplit_once('/') {
            if name == pat && !has_glob(&pat) {
                st.copied.push((format!("{parent}/"), dir, pat));
            }
        }
    }
}

/// Shell-style glob match of one path part (`*`, `?`, `[...]`).
pub fn glob_match(pat: &str, name: &str) -> bool {
    crate::ignore::glob_match(pat, name)
}

#[cfg(test)]
mod tests;
