//! Syntax nodes -> typed instructions and stages (BuildKit's
//! `instructions` package).
//!
//! [`parse`] checks each instruction's arguments and flags (an unknown
//! instruction or flag is an error naming the line, never skipped) and
//! groups them into [`Stage`]s; ARGs before the first FROM are the meta
//! ARGs. Values stay as written: [`super::expand`] expands them, so that
//! ARG scoping lives in one place. `RUN --mount` values are typed here
//! when they hold no variable ([`super::mount`]), so a bad mount fails
//! before any build.

use super::mount::parse_mount;
pub use super::mount::{Mount, MountType, Sharing};
use super::parser::{Args, Dockerfile, Heredoc, Node};
use super::DockerfileError;

/// Instructions after parsing: meta ARGs and stages.
#[derive(Debug, Clone, PartialEq)]
pub struct Instructions {
    pub file: String,
    pub escape: char,
    pub meta_args: Vec<Command>,
    pub stages: Vec<Stage>,
}

/// `FROM [--platform=P] image [AS name]` and what follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Position among the stages, from 0.
    pub index: usize,
    /// Lower-cased, as docker compares them.
    pub name: Option<String>,
    pub base: String,
    pub platform: Option<String>,
    pub line: usize,
    pub commands: Vec<Command>,
}

/// One instruction with where it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub line: usize,
    pub end_line: usize,
    pub column: usize,
    pub instruction: Instruction,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Instruction {
    Arg(Vec<ArgDecl>),
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Expose(Vec<String>),
    User(String),
    Workdir(String),
    Volume(Vec<String>),
    StopSignal(String),
    Healthcheck(Health),
    Entrypoint(CommandLine),
    Cmd(CommandLine),
    /// JSON form only.
    Shell(Vec<String>),
    /// The trigger as written (recorded in the image config) and, checked
    /// now, what it will run.
    Onbuild {
        expression: String,
        trigger: Box<Instruction>,
    },
    Run(Run),
    Copy(Copy),
    Add(Add),
    /// Deprecated; BuildKit records it as the image's `author`.
    Maintainer(String),
}

/// `ARG NAME[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// RUN, CMD, ENTRYPOINT, HEALTHCHECK CMD: a command in exec (JSON) form,
/// or shell form (one string, run by the stage's SHELL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub args: Vec<String>,
    /// Shell form: the stage's SHELL goes in front.
    pub shell: bool,
    pub heredocs: Vec<Heredoc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// `HEALTHCHECK NONE`: turn off the base's check.
    None,
    Cmd {
        cmd: CommandLine,
        interval_ns: Option<u64>,
        timeout_ns: Option<u64>,
        start_period_ns: Option<u64>,
        start_interval_ns: Option<u64>,
        retries: Option<u32>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub cmd: CommandLine,
    /// `--mount` values as written; [`Run::mounts`] holds them typed once
    /// they are free of variables (always, after [`super::expand`](mod@super::expand)).
    pub mount_flags: Vec<String>,
    pub mounts: Vec<Mount>,
    pub network: Option<Network>,
    pub security: Option<Security>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Sandbox,
    Insecure,
}

/// Sources and destination of COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub sources: Vec<String>,
    /// Heredoc sources: files made from the bodies.
    pub inline: Vec<Heredoc>,
    pub dest: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub paths: Paths,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    pub paths: Paths,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub exclude: Vec<String>,
    pub checksum: Option<String>,
    pub keep_git_dir: Option<bool>,
    pub unpack: Option<bool>,
}

const INSTRUCTIONS: &str = "FROM, ARG, ENV, LABEL, EXPOSE, USER, WORKDIR, VOLUME, STOPSIGNAL, HEALTHCHECK, ENTRYPOINT, CMD, SHELL, ONBUILD, RUN, COPY, ADD, MAINTAINER";

/// Flags an instruction takes.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Bool,
    One,
    Many,
}

/// Flags as given: `(name, values)`.
struct Flags {
    given: Vec<(String, Vec<String>)>,
}

impl Flags {
    fn parse(node: &Node, file: &str, allowed: &[(&str, Kind)]) -> Result<Flags, DockerfileError> {
        let upper = node.name().to_ascii_uppercase();
        let mut given: Vec<(String, Vec<String>)> = Vec::new();
        for f in &node.flags {
            let Some(body) = f.strip_prefix("--") else {
                return Err(node.error_at(
                    file,
                    f,
                    format!("{upper} flag `{f}` should start with --"),
                ));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some((_, kind)) = allowed.iter().find(|(n, _)| *n == name) else {
                let takes = if allowed.is_empty() {
                    format!("{upper} takes no flags")
                } else {
                    let names: Vec<String> =
                        allowed.iter().map(|(n, _)| format!("--{n}")).collect();
                    format!("{upper} takes {}", names.join(", "))
                };
                return Err(node.error_at(
                    file,
                    f,
                    format!("unknown flag --{name} on {upper}: {takes}"),
                ));
            };
            let value = match (kind, value) {
                (Kind::Bool, None) => "true".to_owned(),
                (Kind::Bool, Some(v)) if v.eq_ignore_ascii_case("true") => "true".to_owned(),
                (Kind::Bool, Some(v)) if v.eq_ignore_ascii_case("false") => "false".to_owned(),
                (Kind::Bool, Some(v)) => {
                    return Err(node.error_at(
                        file,
                        f,
                        format!("--{name} on {upper} is true or false, not `{v}`"),
                    ));
                }
                (_, None) => {
                    return Err(node.error_at(
                        file,
                        f,
                        format!("--{name} on {upper} needs a value: --{name}=VALUE"),
                    ));
                }
                (_, Some(v)) => v.to_owned(),
            };
            match given.iter_mut().find(|(n, _)| n == name) {
                Some((_, vs)) if *kind == Kind::Many => vs.push(value),
                Some(_) => {
                    return Err(node.error_at(
                        file,
                        f,
                        format!("--{name} given twice on {upper}: keep one"),
                    ));
                }
                None => given.push((name.to_owned(), vec![value])),
            }
        }
        Ok(Flags { given })
    }

    fn one(&self, name: &str) -> Option<String> {
        self.given
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.first().cloned())
    }
    fn many(&self, name: &str) -> Vec<String> {
        self.given
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
    fn bool(&self, name: &str) -> Option<bool> {
        self.one(name).map(|v| v == "true")
    }
}

/// Typed instructions and stages from a parsed Dockerfile.
pub fn parse(df: &Dockerfile) -> Result<Instructions, DockerfileError> {
    let file = df.file.as_str();
    let mut out = Instructions {
        file: df.file.clone(),
        escape: df.escape,
        meta_args: Vec::new(),
        stages: Vec::new(),
    };
    for node in &df.nodes {
        if node.name() == "from" {
            let stage = from(node, file, out.stages.len())?;
            out.stages.push(stage);
            continue;
        }
        let command = Command {
            line: node.start_line,
            end_line: node.end_line,
            column: node.column,
            instruction: instruction(node, file, &node.heredocs)?,
        };
        match out.stages.last_mut() {
            Some(stage) => stage.commands.push(command),
            None if matches!(command.instruction, Instruction::Arg(_)) => {
                out.meta_args.push(command)
            }
            None => {
                return Err(node.error(
                    file,
                    format!(
                        "{} before the first FROM: only ARG may come before FROM; add a FROM line above it",
                        node.name().to_ascii_uppercase()
                    ),
                ));
            }
        }
    }
    if out.stages.is_empty() {
        let line = df.nodes.last().map(|n| n.end_line).unwrap_or(1);
        return Err(DockerfileError {
            file: file.to_owned(),
            line,
            column: 1,
            message: "no FROM instruction: a Dockerfile starts its first stage with `FROM image`"
                .to_owned(),
        });
    }
    Ok(out)
}

fn words(node: &Node) -> Vec<String> {
    match &node.args {
        Args::Words(w) | Args::Json(w) => w.clone(),
        Args::Text(t) => vec![t.clone()],
        _ => Vec::new(),
    }
}

fn from(node: &Node, file: &str, index: usize) -> Result<Stage, DockerfileError> {
    let flags = Flags::parse(node, file, &[("platform", Kind::One)])?;
    let args = words(node);
    let name = match args.as_slice() {
        [_] => None,
        [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
            let lower = name.to_ascii_lowercase();
            let mut chars = lower.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !valid {
                return Err(node.error_at(file, name, format!(
                    "invalid name for build stage: `{name}`: a stage name starts with a letter and holds only letters, digits, -, _ and ."
                )));
            }
            Some(lower)
        }
        _ => {
            return Err(node.error(
                file,
                "FROM requires either one or three arguments: `FROM image` or `FROM image AS name`",
            ));
        }
    };
    Ok(Stage {
        index,
        name,
        base: args[0].clone(),
        platform: flags.one("platform"),
        line: node.start_line,
        commands: Vec::new(),
    })
}

fn exactly_one(node: &Node, file: &str) -> Result<String, DockerfileError> {
    match &node.args {
        Args::Text(t) => Ok(t.clone()),
        _ => {
            let upper = node.name().to_ascii_uppercase();
            Err(node.error(file, format!("{upper} requires exactly one argument")))
        }
    }
}

fn command_line(args: &Args, heredocs: &[Heredoc]) -> CommandLine {
    match args {
        Args::Json(v) => CommandLine {
            args: v.clone(),
            shell: false,
            heredocs: heredocs.to_vec(),
        },
        Args::Text(t) => CommandLine {
            args: vec![t.clone()],
            shell: true,
            heredocs: heredocs.to_vec(),
        },
        _ => CommandLine {
            args: Vec::new(),
            shell: true,
            heredocs: heredocs.to_vec(),
        },
    }
}

fn pairs(node: &Node, file: &str) -> Result<Vec<(String, String)>, DockerfileError> {
    let upper = node.name().to_ascii_uppercase();
    let Args::Pairs(ps) = &node.args else {
        return Err(node.error(
            file,
            format!("{upper} requires at least one argument: {upper} NAME=VALUE"),
        ));
    };
    ps.iter()
        .map(|p| {
            if p.key.is_empty() {
                Err(node.error(file, format!("{upper} names can not be blank")))
            } else {
                Ok((p.key.clone(), p.value.clone()))
            }
        })
        .collect()
}

fn duration(
    node: &Node,
    file: &str,
    flags: &Flags,
    name: &str,
) -> Result<Option<u64>, DockerfileError> {
    let Some(v) = flags.one(name) else {
        return Ok(None);
    };
    let ns = crate::graph::config::parse_duration(&v)
        .map_err(|e| node.error_at(file, &format!("--{name}"), format!("--{name}: {e}")))?;
    if ns != 0 && ns < 1_000_000 {
        return Err(node.error_at(
            file,
            &format!("--{name}"),
            format!("--{name} cannot be less than 1ms"),
        ));
    }
    Ok((ns != 0).then_some(ns))
}

fn paths(node: &Node, file: &str, heredocs: &[Heredoc]) -> Result<Paths, DockerfileError> {
    let upper = node.name().to_ascii_uppercase();
    let args = words(node);
    let Some((dest, srcs)) = args.split_last().filter(|(_, s)| !s.is_empty()) else {
        return Err(node.error(file, format!(
            "{upper} requires at least two arguments, but only one was provided: give the source(s) and a destination"
        )));
    };
    if super::parser::heredoc_word(dest).is_some() {
        return Err(node.error_at(
            file,
            dest,
            format!("{upper} cannot accept a heredoc as a destination"),
        ));
    }
    let mut p = Paths {
        sources: Vec::new(),
        inline: Vec::new(),
        dest: dest.clone(),
    };
    for s in srcs {
        match super::parser::heredoc_word(s) {
            Some(h) => match heredocs.iter().find(|d| d.name == h.name) {
                Some(d) => p.inline.push(d.clone()),
                None => p.sources.push(s.clone()),
            },
            None => p.sources.push(s.clone()),
        }
    }
    Ok(p)
}

fn instruction(
    node: &Node,
    file: &str,
    heredocs: &[Heredoc],
) -> Result<Instruction, DockerfileError> {
    let name = node.name();
    let upper = name.to_ascii_uppercase();
    let no_flags = |node: &Node| Flags::parse(node, file, &[]).map(|_| ());
    let at_least_one = || node.error(file, format!("{upper} requires at least one argument"));
    Ok(match name.as_str() {
        "arg" => {
            no_flags(node)?;
            let ws = words(node);
            if ws.is_empty() {
                return Err(at_least_one());
            }
            let decls = ws
                .into_iter()
                .map(|w| match w.split_once('=') {
                    Some(("", _)) => Err(node.error(file, "ARG names can not be blank")),
                    Some((k, v)) => Ok(ArgDecl {
                        name: k.to_owned(),
                        default: Some(v.to_owned()),
                    }),
                    None => Ok(ArgDecl {
                        name: w,
                        default: None,
                    }),
                })
                .collect::<Result<_, _>>()?;
            Instruction::Arg(decls)
        }
        "env" => {
            no_flags(node)?;
            Instruction::Env(pairs(node, file)?)
        }
        "label" => {
            no_flags(node)?;
            Instruction::Label(pairs(node, file)?)
        }
        "expose" => {
            no_flags(node)?;
            let mut ports = words(node);
            if ports.is_empty() {
                return Err(at_least_one());
            }
            ports.sort();
            Instruction::Expose(ports)
        }
        "user" => {
            no_flags(node)?;
            Instruction::User(exactly_one(node, file)?)
        }
        "workdir" => {
            no_flags(node)?;
            Instruction::Workdir(exactly_one(node, file)?)
        }
        "stopsignal" => {
            no_flags(node)?;
            Instruction::StopSignal(exactly_one(node, file)?)
        }
        "maintainer" => {
            no_flags(node)?;
            Instruction::Maintainer(exactly_one(node, file)?)
        }
        "volume" => {
            no_flags(node)?;
            let vs = words(node);
            if vs.is_empty() {
                return Err(at_least_one());
            }
            if vs.iter().any(|v| v.trim().is_empty()) {
                return Err(node.error(file, "VOLUME specified can not be an empty string"));
            }
            Instruction::Volume(vs.into_iter().map(|v| v.trim().to_owned()).collect())
        }
        "cmd" => {
            no_flags(node)?;
            Instruction::Cmd(command_line(&node.args, heredocs))
        }
        "entrypoint" => {
            no_flags(node)?;
            Instruction::Entrypoint(command_line(&node.args, heredocs))
        }
        "shell" => {
            no_flags(node)?;
            match &node.args {
                Args::Json(v) if !v.is_empty() => Instruction::Shell(v.clone()),
                Args::Json(_) | Args::None => return Err(at_least_one()),
                _ => {
                    return Err(node.error(file, "SHELL requires the arguments to be in JSON form: SHELL [\"/bin/sh\", \"-c\"]"));
                }
            }
        }
        "healthcheck" => {
            let flags = Flags::parse(
                node,
                file,
                &[
                    ("interval", Kind::One),
                    ("timeout", Kind::One),
                    ("start-period", Kind::One),
                    ("start-interval", Kind::One),
                    ("retries", Kind::One),
                ],
            )?;
            let Args::Health { kind, cmd } = &node.args else {
                return Err(at_least_one());
            };
            match kind.to_ascii_uppercase().as_str() {
                "NONE" if matches!(**cmd, Args::None) => Instruction::Healthcheck(Health::None),
                "NONE" => return Err(node.error(file, "HEALTHCHECK NONE takes no arguments")),
                "CMD" => {
                    let cmd = command_line(cmd, &[]);
                    if cmd.args.is_empty() {
                        return Err(node.error(file, "Missing command after HEALTHCHECK CMD"));
                    }
                    let retries = match flags.one("retries") {
                        None => None,
                        Some(r) => Some(r.parse::<u32>().map_err(|_| {
                            node.error_at(
                                file,
                                "--retries",
                                format!(
                                    "--retries `{r}` is not a count: give a whole number like 3"
                                ),
                            )
                        })?),
                    };
                    Instruction::Healthcheck(Health::Cmd {
                        cmd,
                        interval_ns: duration(node, file, &flags, "interval")?,
                        timeout_ns: duration(node, file, &flags, "timeout")?,
                        start_period_ns: duration(node, file, &flags, "start-period")?,
                        start_interval_ns: duration(node, file, &flags, "start-interval")?,
                        retries,
                    })
                }
                _ => {
                    return Err(node.error_at(
                        file,
                        kind,
                        format!("Unknown type `{kind}` in HEALTHCHECK (try CMD or NONE)"),
                    ));
                }
            }
        }
        "onbuild" => {
            no_flags(node)?;
            let Args::Sub(inner) = &node.args else {
                return Err(at_least_one());
            };
            let trigger = inner.name().to_ascii_uppercase();
            match trigger.as_str() {
                "ONBUILD" => {
                    return Err(
                        node.error(file, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
                    )
                }
                "FROM" | "MAINTAINER" => {
                    return Err(node.error(
                        file,
                        format!("{trigger} isn't allowed as an ONBUILD trigger"),
                    ));
                }
                _ => {}
            }
            let mut expression = inner.original.clone();
            for h in heredocs {
                expression.push('\n');
                expression.push_str(&h.content);
                expression.push_str(&h.name);
            }
            Instruction::Onbuild {
                expression,
                trigger: Box::new(instruction(inner, file, heredocs)?),
            }
        }
        "run" => {
            let flags = Flags::parse(
                node,
                file,
                &[
                    ("mount", Kind::Many),
                    ("network", Kind::One),
                    ("security", Kind::One),
                ],
            )?;
            let cmd = command_line(&node.args, heredocs);
            if cmd.args.is_empty() {
                return Err(at_least_one());
            }
            let network = match flags.one("network").as_deref() {
                None => None,
                Some("default") => Some(Network::Default),
                Some("none") => Some(Network::None),
                Some("host") => Some(Network::Host),
                Some(other) => {
                    return Err(node.error_at(
                        file,
                        "--network",
                        format!("unsupported network mode `{other}`: use default, none or host"),
                    ));
                }
            };
            let security = match flags.one("security").as_deref() {
                None => None,
                Some("sandbox") => Some(Security::Sandbox),
                Some("insecure") => Some(Security::Insecure),
                Some(other) => {
                    return Err(node.error_at(
                        file,
                        "--security",
                        format!("unsupported security mode `{other}`: use sandbox or insecure"),
                    ));
                }
            };
            let mount_flags = flags.many("mount");
            let mut mounts = Vec::new();
            for m in &mount_flags {
                let parsed = if m.contains('$') {
                    parse_mount(m, &|v| Ok(v.to_owned()), true)
                } else {
                    parse_mount(m, &|v| Ok(v.to_owned()), false)
                };
                let mount =
                    parsed.map_err(|e| node.error_at(file, m, format!("--mount={m}: {e}")))?;
                mounts.extend(mount);
            }
            if mounts.len() != mount_flags.len() {
                mounts.clear();
            }
            Instruction::Run(Run {
                cmd,
                mount_flags,
                mounts,
                network,
                security,
            })
        }
        "copy" => {
            let flags = Flags::parse(
                node,
                file,
                &[
                    ("from", Kind::One),
                    ("chown", Kind::One),
                    ("chmod", Kind::One),
                    ("link", Kind::Bool),
                    ("parents", Kind::Bool),
                    ("exclude", Kind::Many),
                ],
            )?;
            Instruction::Copy(Copy {
                paths: paths(node, file, heredocs)?,
                from: flags.one("from"),
                chown: flags.one("chown"),
                chmod: flags.one("chmod"),
                link: flags.bool("link").unwrap_or(false),
                parents: flags.bool("parents").unwrap_or(false),
                exclude: flags.many("exclude"),
            })
        }
        "add" => {
            let flags = Flags::parse(
                node,
                file,
                &[
                    ("chown", Kind::One),
                    ("chmod", Kind::One),
                    ("link", Kind::Bool),
                    ("keep-git-dir", Kind::Bool),
                    ("checksum", Kind::One),
                    ("unpack", Kind::Bool),
                    ("exclude", Kind::Many),
                ],
            )?;
            Instruction::Add(Add {
                paths: paths(node, file, heredocs)?,
                chown: flags.one("chown"),
                chmod: flags.one("chmod"),
                link: flags.bool("link").unwrap_or(false),
                exclude: flags.many("exclude"),
                checksum: flags.one("checksum"),
                keep_git_dir: flags.bool("keep-git-dir"),
                unpack: flags.bool("unpack"),
            })
        }
        _ => {
            return Err(node.error(
                file,
                format!(
                    "unknown instruction `{}`: a Dockerfile instruction is one of {INSTRUCTIONS}",
                    node.keyword
                ),
            ));
        }
    })
}

#[cfg(test)]
pub(crate) mod tests;
