//! A resolved recipe onto the build graph: the image's own stage (host
//! step, run steps, user, deps, the context's files, copies from stages,
//! config) and the build stages it copies from.

use crate::graph::spec::{StageBase, StageDeps};
use crate::graph::{self, Graph, GraphError, Stage, Step};

use super::Resolved;

/// The graph of `r`: the stages its image reaches, then the image.
pub fn lower(r: &Resolved) -> Result<Graph, GraphError> {
    let s = &r.spec;
    let mut steps = Vec::new();
    if let Some(run) = s.build.run.as_ref().filter(|r| !r.is_empty()) {
        steps.push(Step::Host(run.clone()));
    }
    steps.extend(s.run.iter().flatten().cloned().map(Step::Run));
    if let Some(u) = &s.image.user {
        steps.push(Step::User(u.name.clone()));
    }
    if s.deps.kind != Some(crate::graph::spec::DepsKind::None) {
        steps.push(Step::Deps(StageDeps {
            kind: s.deps.kind.unwrap_or_default(),
            dev: s.deps.dev.unwrap_or(false),
        }));
    }
    let stage_copies = s.app.stage_copy.clone().unwrap_or_default();
    let context = s.app.copy.clone().unwrap_or_default();
    if stage_copies.is_empty() || !context.is_empty() {
        steps.push(Step::Context(context));
    }
    steps.extend(stage_copies.into_iter().map(Step::FromStage));
    steps.push(Step::Config);
    let base = match &s.image.base {
        Some(t) => StageBase::Image(t.clone()),
        None => StageBase::Stage(String::new()),
    };
    let image = Stage {
        name: r.name.clone(),
        base: base.clone(),
        workdir: s.image.workdir.clone().unwrap_or_else(|| "/app".into()),
        steps,
        spec: None,
        config: None,
    };
    graph::order(&s.stages, image, &base)
}
