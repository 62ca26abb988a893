//! Values expanded where docker expands them, with docker's ARG scoping:
//! [`expand`] takes typed [`Instructions`] and the build args and applies
//! [`super::shell`] to each value, as BuildKit's `Expand` methods and its
//! dispatcher do:
//!
//! - FROM's image and `--platform`: with the meta ARGs only.
//! - ENV and LABEL keys and values; ARG defaults (not names); COPY and ADD
//!   sources, destination, `--chown`, `--chmod`, ADD's `--checksum`, and
//!   heredoc bodies whose delimiter is unquoted (quotes kept there);
//!   WORKDIR, USER, VOLUME, STOPSIGNAL; EXPOSE (split into words); RUN's
//!   `--mount` values.
//! - Not expanded: the RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK
//!   commands (the shell in the container does that), ONBUILD (its stage
//!   does, later), MAINTAINER, stage names; COPY `--from` is refused when
//!   it holds a variable, as docker does.
//!
//! Scoping: a meta ARG is visible in FROM lines; inside a stage a name is
//! visible only after `ARG NAME` declares it (a bare `ARG NAME` takes the
//! meta value), and in the stages built on that stage; `--build-arg`
//! overrides any default; an ENV sets the variable for what follows,
//! shadowing an earlier ARG of the same name.
//! An ARG used but never given expands to empty, as in docker.

use super::instructions::{
    Add, ArgDecl, Command, Copy, Instruction, Instructions, Paths, Run, Stage,
};
use super::mount::parse_mount;
use super::parser::Heredoc;
use super::shell::{ExpandError, Lexer, Vars};
use super::DockerfileError;

/// A Dockerfile with every value docker expands, expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct Expanded {
    /// The meta ARGs' values (build args and defaults), as FROM saw them.
    pub meta_args: Vars,
    pub stages: Vec<ExpandedStage>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExpandedStage {
    /// The stage, base and platform expanded, commands expanded.
    pub stage: Stage,
    /// The image's environment at the end of the stage: the base's, then
    /// each ENV, in order.
    pub env: Vars,
    /// What expansion saw at the end of the stage: `env` and the declared
    /// ARGs. A stage built on this one starts from it, as docker's
    /// "an ARG is inherited by stages based on that stage".
    pub scope: Vars,
}

/// What [`expand`] reads besides the Dockerfile.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    /// `--build-arg K=V`.
    pub build_args: &'a [(String, String)],
    /// Meta ARGs that exist without an `ARG` line, as BuildKit's
    /// `TARGETPLATFORM`, `BUILDPLATFORM`, `TARGETOS`...: visible in FROM
    /// lines, and in a stage after a bare `ARG NAME`. A build arg of the
    /// same name wins.
    pub predefined: &'a Vars,
    /// The environment (config Env) of the image a stage starts from.
    pub base_env: &'a dyn Fn(&str) -> Vars,
}

/// Expands `ins` with `inputs`. A stage starting from an image starts
/// from `inputs.base_env` of it (its config's Env, for `$PATH` and
/// friends); a stage starting from an earlier stage, from that stage's
/// ENV and ARGs.
pub fn expand(ins: &Instructions, inputs: Inputs) -> Result<Expanded, DockerfileError> {
    let Inputs {
        build_args,
        predefined,
        base_env,
    } = inputs;
    let file = ins.file.as_str();
    let lx = Lexer::new(ins.escape);
    let given: Vars = build_args
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let fail = |line: usize, column: usize, e: ExpandError| DockerfileError {
        file: file.to_owned(),
        line,
        column,
        message: e.0,
    };

    let mut meta = predefined.clone();
    for (k, v) in build_args {
        if predefined.get(k).is_some() {
            meta.set(k, v);
        }
    }
    for c in &ins.meta_args {
        let Instruction::Arg(decls) = &c.instruction else {
            continue;
        };
        for d in decls {
            let value = match (given.get(&d.name), &d.default) {
                (Some(v), _) => Some(v.to_owned()),
                (None, Some(def)) => {
                    Some(lx.word(def, &meta).map_err(|e| fail(c.line, c.column, e))?)
                }
                (None, None) => None,
            };
            if let Some(v) = value {
                meta.set(&d.name, &v);
            }
        }
    }

    let mut done: Vec<ExpandedStage> = Vec::new();
    for stage in &ins.stages {
        let base = lx
            .word(&stage.base, &meta)
            .map_err(|e| fail(stage.line, 1, e))?;
        if base.is_empty() {
            return Err(DockerfileError {
                file: file.to_owned(),
                line: stage.line,
                column: 1,
                message: format!(
                    "base name (`{}`) should not be blank: give the ARG a default or pass --build-arg",
                    stage.base
                ),
            });
        }
        let platform = match &stage.platform {
            None => None,
            Some(p) => {
                let v = lx.word(p, &meta).map_err(|e| fail(stage.line, 1, e))?;
                if v.is_empty() {
                    return Err(DockerfileError {
                        file: file.to_owned(),
                        line: stage.line,
                        column: 1,
                        message: format!("empty platform value from expression `{p}`: pass --build-arg or write the platform"),
                    });
                }
                Some(v)
            }
        };
        let parent = done
            .iter()
            .find(|s| s.stage.name.as_deref() == Some(base.to_ascii_lowercase().as_str()));
        // What expansion sees: ENV and declared ARGs, the later winning.
        let (mut env, mut scope) = match parent {
            Some(parent) => (parent.env.clone(), parent.scope.clone()),
            None => (base_env(&base), base_env(&base)),
        };
        let mut commands = Vec::new();
        for c in &stage.commands {
            let at = |e: ExpandError| fail(c.line, c.column, e);
            let instruction = match &c.instruction {
                Instruction::Arg(decls) => {
                    let mut out = Vec::new();
                    for d in decls {
                        let value = match (given.get(&d.name), &d.default) {
                            (Some(v), _) => Some(v.to_owned()),
                            (None, Some(def)) => Some(lx.word(def, &scope).map_err(at)?),
                            (None, None) => meta.get(&d.name).map(str::to_owned),
                        };
                        if let Some(v) = &value {
                            scope.set(&d.name, v);
                        }
                        out.push(ArgDecl {
                            name: d.name.clone(),
                            default: value,
                        });
                    }
                    Instruction::Arg(out)
                }
                Instruction::Env(kvs) => {
                    let mut out = Vec::new();
                    for (k, v) in kvs {
                        let k = lx.word(k, &scope).map_err(at)?;
                        let v = lx.word(v, &scope).map_err(at)?;
                        scope.set(&k, &v);
                        env.set(&k, &v);
                        out.push((k, v));
                    }
                    Instruction::Env(out)
                }
                other => expand_instruction(other, &lx, &scope).map_err(at)?,
            };
            commands.push(Command {
                instruction,
                ..c.clone()
            });
        }
        done.push(ExpandedStage {
            stage: Stage {
                base,
                platform,
                commands,
                ..stage.clone()
            },
            env,
            scope,
        });
    }
    Ok(Expanded {
        meta_args: meta,
        stages: done,
    })
}

fn opt(lx: &Lexer, v: &Option<String>, vars: &Vars) -> Result<Option<String>, ExpandError> {
    v.as_ref().map(|v| lx.word(v, vars)).transpose()
}

fn expand_paths(lx: &Lexer, p: &Paths, vars: &Vars) -> Result<Paths, ExpandError> {
    let body = Lexer {
        skip_quotes: true,
        ..Lexer::new('\\')
    };
    Ok(Paths {
        sources: p
            .sources
            .iter()
            .map(|s| lx.word(s, vars))
            .collect::<Result<_, _>>()?,
        inline: p
            .inline
            .iter()
            .map(|h| {
                Ok(Heredoc {
                    content: if h.expand {
                        body.word(&h.body(), vars)?
                    } else {
                        h.body()
                    },
                    chomp: false,
                    ..h.clone()
                })
            })
            .collect::<Result<_, ExpandError>>()?,
        dest: lx.word(&p.dest, vars)?,
    })
}

fn expand_instruction(
    i: &Instruction,
    lx: &Lexer,
    vars: &Vars,
) -> Result<Instruction, ExpandError> {
    let w = |s: &String| lx.word(s, vars);
    Ok(match i {
        Instruction::Label(kvs) => Instruction::Label(
            kvs.iter()
                .map(|(k, v)| Ok((w(k)?, w(v)?)))
                .collect::<Result<_, ExpandError>>()?,
        ),
        Instruction::Expose(ports) => {
            let mut out = Vec::new();
            for p in ports {
                out.extend(lx.words(p, vars)?);
            }
            Instruction::Expose(out)
        }
        Instruction::User(u) => Instruction::User(w(u)?),
        Instruction::Workdir(d) => Instruction::Workdir(w(d)?),
        Instruction::StopSignal(s) => Instruction::StopSignal(w(s)?),
        Instruction::Volume(vs) => Instruction::Volume(vs.iter().map(w).collect::<Result<_, _>>()?),
        Instruction::Copy(c) => {
            if let Some(from) = &c.from {
                if lx.word(from, &Vars::new())? != *from {
                    return Err(ExpandError(
                        "variable expansion is not supported for --from: define a stage with `FROM ${ARG} AS name` (ARG from the global scope) and copy from it".to_owned(),
                    ));
                }
            }
            Instruction::Copy(Copy {
                paths: expand_paths(lx, &c.paths, vars)?,
                chown: opt(lx, &c.chown, vars)?,
                chmod: opt(lx, &c.chmod, vars)?,
                ..c.clone()
            })
        }
        Instruction::Add(a) => Instruction::Add(Add {
            paths: expand_paths(lx, &a.paths, vars)?,
            chown: opt(lx, &a.chown, vars)?,
            chmod: opt(lx, &a.chmod, vars)?,
            checksum: opt(lx, &a.checksum, vars)?,
            ..a.clone()
        }),
        Instruction::Run(r) => {
            let mut mounts = Vec::new();
            for m in &r.mount_flags {
                let expand = |v: &str| lx.word(v, vars);
                let mount = parse_mount(m, &expand, false)
                    .map_err(|e| ExpandError(format!("--mount={m}: {e}")))?;
                mounts.extend(mount);
            }
            Instruction::Run(Run {
                mounts,
                ..r.clone()
            })
        }
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests;
