//! The build graph: what a build is, as pure data.
//!
//! A build is a set of stages. Each stage starts from a base (an image, or
//! another stage's filesystem) and adds steps, each one layer whose cache
//! key is chained from the layers below. The image is the last stage; the
//! others exist because the image (or a stage it reaches) copies from them.
//! Every frontend (hoist.toml and stock recipes today) compiles to this;
//! the executor ([`crate::exec`]) walks it and `--dry-run` prints it
//! ([`dump`]).
//!
//! Nothing here runs, reads a file or touches the store.

pub mod chmod;
pub mod config;
pub mod dump;
pub mod native;
pub mod spec;

use std::collections::BTreeMap;

use spec::{
    CopyRule, InstallSpec, MkdirSpec, PlaceFrom, PlaceSpec, RunSpec, StageBase, StageCopy,
    StageDeps, StageSpec,
};

/// Why a set of stages is not a graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("{at}: there is no stage `{stage}`; {known}")]
    UnknownStage {
        at: String,
        stage: String,
        known: String,
    },
    #[error("{at}: stage `{stage}` reaches itself: {cycle}; a stage can only build on stages that do not use it")]
    Cycle {
        at: String,
        stage: String,
        cycle: String,
    },
}

/// One step of a stage: one layer (or, for `Config`, the image config).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A command run on the host first (`[build]`, the explicit opt-in).
    Host(Vec<String>),
    /// A command run in the sandbox; its changes are the layer.
    Run(RunSpec),
    /// The app user added to passwd and group.
    User(String),
    /// Dependencies installed natively.
    Deps(StageDeps),
    /// Files of the build context (`[]`: all of it).
    Context(Vec<CopyRule>),
    /// Exactly one path of another stage's filesystem.
    FromStage(StageCopy),
    /// The image config: entrypoint, env, user, labels...
    Config,
    /// Files placed by docker's COPY and ADD rules (a Dockerfile).
    Place(PlaceSpec),
    /// A folder made (a Dockerfile's WORKDIR).
    Mkdir(MkdirSpec),
    /// Dependencies installed natively for a Dockerfile's `RUN npm ci` or
    /// `RUN pip install -r`.
    Install(InstallSpec),
}

impl Step {
    /// The step's kind, as `--dry-run` and reports name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Host(_) => "host",
            Step::Run(_) => "run",
            Step::User(_) => "user",
            Step::Deps(_) => "deps",
            Step::Context(_) => "copy",
            Step::FromStage(_) => "copy",
            Step::Config => "config",
            Step::Place(_) => "copy",
            Step::Mkdir(_) => "mkdir",
            Step::Install(_) => "deps",
        }
    }
}

/// One stage: a base and its steps, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub name: String,
    pub base: StageBase,
    pub workdir: String,
    pub steps: Vec<Step>,
    /// The stage as written (for build stages; the image's own stage is
    /// described by the build options).
    pub spec: Option<StageSpec>,
    /// For a graph whose every stage is a list of steps (a Dockerfile):
    /// the image config the stage ends with, on top of its first base
    /// image's config.
    pub config: Option<crate::graph::config::ConfigSettings>,
}

impl Stage {
    /// The stages this one reads: its base, and what it copies from.
    pub fn needs(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        if let StageBase::Stage(s) = &self.base {
            out.push(s);
        }
        for step in &self.steps {
            let from = match step {
                Step::FromStage(c) => &c.stage,
                Step::Place(PlaceSpec {
                    from: PlaceFrom::Stage(s),
                    ..
                }) => s,
                _ => continue,
            };
            if !out.contains(&from.as_str()) {
                out.push(from);
            }
        }
        out
    }
}

/// A build: its stages in an order where each comes after those it needs;
/// the image's stage is last.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub stages: Vec<Stage>,
    /// Every stage, the image's too, is a list of steps run in order, and
    /// the image is the last stage's filesystem with its config (a
    /// Dockerfile). Otherwise the image's stage is walked as hoist lays
    /// an image out (user, deps, app) and the stages only feed its copies.
    pub sequenced: bool,
}

impl Graph {
    /// The image's stage.
    pub fn image(&self) -> Option<&Stage> {
        self.stages.last()
    }

    /// The stage named `name`.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The build stages grouped in waves: every stage of a wave needs only
    /// stages of earlier waves, so a wave's stages can build concurrently.
    pub fn waves(&self) -> Vec<Vec<&Stage>> {
        let build = &self.stages[..self.stages.len().saturating_sub(1)];
        let mut level: BTreeMap<&str, usize> = BTreeMap::new();
        let mut waves: Vec<Vec<&Stage>> = Vec::new();
        for s in build {
            let l = s
                .needs()
                .iter()
                .filter_map(|n| level.get(n))
                .map(|l| l + 1)
                .max()
                .unwrap_or(0);
            level.insert(&s.name, l);
            if waves.len() <= l {
                waves.resize_with(l + 1, Vec::new);
            }
            waves[l].push(s);
        }
        waves
    }
}

/// A build stage's steps: native deps, the context's files, then the run
/// steps.
pub fn stage_steps(spec: &StageSpec) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(d) = spec.deps {
        steps.push(Step::Deps(d));
    }
    steps.push(Step::Context(spec.copy.clone().unwrap_or_default()));
    steps.extend(spec.run.iter().cloned().map(Step::Run));
    steps
}

/// The stages `image` reaches, each after the stages it needs, then the
/// image; an unknown stage or a cycle is an error naming where it is
/// written.
pub fn order(
    stages: &BTreeMap<String, StageSpec>,
    image: Stage,
    default_base: &StageBase,
) -> Result<Graph, GraphError> {
    let known = || match stages.is_empty() {
        true => "this image defines no [stages.*]".to_owned(),
        false => format!(
            "its stages are {}",
            stages.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    };
    let build = |name: &str| -> Stage {
        let spec = &stages[name];
        Stage {
            name: name.to_owned(),
            base: spec.base.clone().unwrap_or_else(|| default_base.clone()),
            workdir: spec.workdir.clone().unwrap_or_else(|| "/app".into()),
            steps: stage_steps(spec),
            spec: Some(spec.clone()),
            config: None,
        }
    };
    // Depth first from the image; `path` is the chain being visited.
    fn visit(
        name: &str,
        at: &str,
        stages: &BTreeMap<String, StageSpec>,
        build: &dyn Fn(&str) -> Stage,
        known: &dyn Fn() -> String,
        path: &mut Vec<String>,
        done: &mut Vec<Stage>,
    ) -> Result<(), GraphError> {
        if done.iter().any(|s| s.name == name) {
            return Ok(());
        }
        let Some(spec) = stages.get(name) else {
            return Err(GraphError::UnknownStage {
                at: at.to_owned(),
                stage: name.to_owned(),
                known: known(),
            });
        };
        if let Some(i) = path.iter().position(|p| p == name) {
            let mut cycle = path[i..].to_vec();
            cycle.push(name.to_owned());
            return Err(GraphError::Cycle {
                at: spec.at.clone(),
                stage: name.to_owned(),
                cycle: cycle.join(" -> "),
            });
        }
        path.push(name.to_owned());
        let stage = build(name);
        for need in stage.needs() {
            visit(need, &spec.at, stages, build, known, path, done)?;
        }
        path.pop();
        done.push(stage);
        Ok(())
    }
    let mut done = Vec::new();
    let mut path = Vec::new();
    for step in &image.steps {
        if let Step::FromStage(c) = step {
            visit(
                &c.stage, &c.at, stages, &build, &known, &mut path, &mut done,
            )?;
        }
    }
    done.push(image);
    Ok(Graph {
        stages: done,
        sequenced: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(base: Option<&str>, copies: &[&str]) -> StageSpec {
        StageSpec {
            base: base.map(|b| StageBase::Stage(b.into())),
            run: copies
                .iter()
                .map(|c| RunSpec {
                    command: vec![format!("from {c}")],
                    ..Default::default()
                })
                .collect(),
            at: "hoist.toml:1:1".into(),
            ..Default::default()
        }
    }

    fn image(copies: &[&str]) -> Stage {
        Stage {
            name: "image".into(),
            base: StageBase::Stage("unused".into()),
            workdir: "/app".into(),
            steps: copies
                .iter()
                .map(|s| {
                    Step::FromStage(StageCopy {
                        stage: (*s).into(),
                        from: "/app/out".into(),
                        to: "".into(),
                        owner: None,
                        mode: None,
                        at: "hoist.toml:9:1".into(),
                    })
                })
                .collect(),
            spec: None,
            config: None,
        }
    }

    /// (stages as (name, base stage), what the image copies from, the
    /// order or the error)
    type Case<'a> = (
        &'a [(&'a str, Option<&'a str>)],
        &'a [&'a str],
        Result<&'a str, &'a str>,
    );

    #[test]
    fn order_table() {
        let img = StageBase::Image(crate::reference::transport::Transport::Registry(
            "alpine".into(),
        ));
        let cases: &[Case] = &[
            (&[], &[], Ok("image")),
            (&[("build", None)], &[], Ok("image")),
            (&[("build", None)], &["build"], Ok("build image")),
            (
                &[("a", None), ("b", Some("a")), ("c", Some("a"))],
                &["c", "b"],
                Ok("a c b image"),
            ),
            (
                &[],
                &["build"],
                Err("hoist.toml:9:1: there is no stage `build`; this image defines no [stages.*]"),
            ),
            (
                &[("a", Some("zz"))],
                &["a"],
                Err("hoist.toml:1:1: there is no stage `zz`; its stages are a"),
            ),
            (
                &[("a", Some("b")), ("b", Some("a"))],
                &["a"],
                Err("hoist.toml:1:1: stage `a` reaches itself: a -> b -> a; a stage can only build on stages that do not use it"),
            ),
        ];
        for (defs, copies, want) in cases {
            let stages: BTreeMap<String, StageSpec> = defs
                .iter()
                .map(|(n, b)| ((*n).to_owned(), stage(*b, &[])))
                .collect();
            let got = order(&stages, image(copies), &img)
                .map(|g| {
                    g.stages
                        .iter()
                        .map(|s| s.name.clone())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .map_err(|e| e.to_string());
            assert_eq!(
                got,
                want.map(str::to_owned).map_err(str::to_owned),
                "{defs:?} {copies:?}"
            );
        }
    }

    #[test]
    fn waves_put_independent_stages_together() {
        let img = StageBase::Image(crate::reference::transport::Transport::Registry(
            "alpine".into(),
        ));
        let stages: BTreeMap<String, StageSpec> = [
            ("a", stage(None, &[])),
            ("b", stage(None, &[])),
            ("c", stage(Some("a"), &[])),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_owned(), s))
        .collect();
        let g = order(&stages, image(&["c", "b"]), &img).unwrap();
        let names: Vec<Vec<&str>> = g
            .waves()
            .iter()
            .map(|w| w.iter().map(|s| s.name.as_str()).collect())
            .collect();
        assert_eq!(names, vec![vec!["a", "b"], vec!["c"]]);
    }
}
