//! The graph as text: one line per stage and per step, stable enough for
//! golden tests, and what `hoist build --dry-run` prints with a verdict
//! (reuse or build, and why) after each step.

use super::spec::StageBase;
use super::{Graph, Stage, Step};

/// What one step is, in a few words.
pub fn describe(step: &Step) -> String {
    match step {
        Step::Host(run) => format!("on the host: {}", shell_words::join(run)),
        Step::Run(r) => {
            let mut t = shell_words::join(&r.command);
            if !r.mounts.is_empty() {
                let with: Vec<String> = r.mounts.iter().map(mount_text).collect();
                t.push_str(&format!(" (with {})", with.join(", ")));
            }
            if let Some(n) = &r.note {
                t.push_str(&format!(" (in the sandbox: {n})"));
            }
            t
        }
        Step::User(name) => name.clone(),
        Step::Deps(d) => format!(
            "{} {}",
            format!("{:?}", d.kind).to_lowercase(),
            if d.dev { "(with dev)" } else { "(prod)" }
        ),
        Step::Context(rules) if rules.is_empty() => "the context".into(),
        Step::Context(rules) => format!(
            "the context's {}",
            rules
                .iter()
                .map(|r| match r.from.as_str() {
                    "" => ".",
                    f => f,
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Step::FromStage(c) => format!(
            "stage {}:{} -> {}",
            c.stage,
            c.from,
            match c.to.as_str() {
                "" => ".",
                t => t,
            }
        ),
        Step::Config => "entrypoint, cmd, env, user, labels".into(),
        Step::Place(p) => {
            let from = match &p.from {
                super::spec::PlaceFrom::Context => String::new(),
                super::spec::PlaceFrom::Stage(s) => format!("stage {s}:"),
                super::spec::PlaceFrom::Image(t) => format!("image {t}:"),
            };
            let mut srcs: Vec<String> = p.sources.iter().map(|s| format!("{from}{s}")).collect();
            srcs.extend(p.inline.iter().map(|(n, _)| format!("<<{n}")));
            let mut t = format!("{} -> {}", srcs.join(" "), p.dest);
            if let Some(o) = &p.owner {
                t.push_str(&format!(" (owner {o})"));
            }
            if let Some(m) = &p.mode {
                t.push_str(&format!(" (mode {m})"));
            }
            t
        }
        Step::Mkdir(m) => m.path.clone(),
        Step::Install(i) => format!(
            "{} natively (for `{}`{})",
            format!("{:?}", i.kind).to_lowercase(),
            i.command,
            if i.dev { "" } else { ", no dev" }
        ),
    }
}

/// The stage's header line.
pub fn header(stage: &Stage, image: bool) -> String {
    let base = match &stage.base {
        StageBase::Image(t) => t.to_string(),
        StageBase::Stage(s) => format!("stage {s}"),
        StageBase::Scratch => "scratch".to_owned(),
    };
    let what = if image { "image" } else { "stage" };
    format!(
        "{what} {} (from {base}, workdir {})",
        stage.name, stage.workdir
    )
}

/// The graph's stages (the image's too when `with_image`), with
/// `verdict(stage, step)` after each step when it has one.
pub fn render(
    graph: &Graph,
    with_image: bool,
    verdict: &dyn Fn(usize, usize) -> Option<String>,
) -> String {
    let mut t = String::new();
    let n = graph.stages.len() - usize::from(!with_image && !graph.stages.is_empty());
    for (i, stage) in graph.stages[..n].iter().enumerate() {
        t.push_str(&header(stage, with_image && i + 1 == n));
        t.push('\n');
        for (j, step) in stage.steps.iter().enumerate() {
            t.push_str(&format!("  {:<7} {}", step.kind(), describe(step)));
            if let Some(v) = verdict(i, j) {
                t.push_str(&format!(": {v}"));
            }
            t.push('\n');
        }
    }
    t
}

/// A `RUN --mount` in a line: `cache /root/.cache`, `secret tok at
/// /run/secrets/tok`, `bind stage build:/out at /mnt`.
fn mount_text(m: &super::spec::RunMount) -> String {
    use super::spec::{PlaceFrom, RunMountKind};
    let target = m.target.as_deref().unwrap_or("");
    match m.kind {
        RunMountKind::Cache => match &m.id {
            Some(id) if id != target => format!("cache {id} at {target}"),
            _ => format!("cache {target}"),
        },
        RunMountKind::Tmpfs => format!("tmpfs {target}"),
        RunMountKind::Secret => {
            let id = m.id.clone().unwrap_or_default();
            match (&m.env, &m.target) {
                (Some(e), None) => format!("secret {id} as ${e}"),
                _ => format!("secret {id} at {target}"),
            }
        }
        RunMountKind::Bind => {
            let src = m.source.as_deref().unwrap_or(".");
            let from = match &m.from {
                None | Some(PlaceFrom::Context) => "context ".to_owned(),
                Some(PlaceFrom::Stage(s)) => format!("stage {s}:"),
                Some(PlaceFrom::Image(t)) => format!("image {t}:"),
            };
            let rw = if m.readonly { "" } else { " (rw)" };
            format!("bind {from}{src} at {target}{rw}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::spec::{CopyRule, DepsKind, RunSpec, StageCopy, StageDeps};
    use super::*;

    #[test]
    fn golden() {
        let base = StageBase::Image(crate::reference::transport::Transport::Registry(
            "docker.io/library/node:22".into(),
        ));
        let g = Graph {
            stages: vec![
                Stage {
                    name: "build".into(),
                    base: base.clone(),
                    workdir: "/app".into(),
                    steps: vec![
                        Step::Deps(StageDeps {
                            kind: DepsKind::Npm,
                            dev: true,
                        }),
                        Step::Context(vec![]),
                        Step::Run(RunSpec {
                            command: vec!["npm".into(), "run".into(), "build".into()],
                            ..Default::default()
                        }),
                    ],
                    spec: None,
                    config: None,
                },
                Stage {
                    name: "web".into(),
                    base,
                    workdir: "/app".into(),
                    steps: vec![
                        Step::User("nextjs".into()),
                        Step::Context(vec![CopyRule {
                            from: "package.json".into(),
                            to: "package.json".into(),
                        }]),
                        Step::FromStage(StageCopy {
                            stage: "build".into(),
                            from: "/app/dist".into(),
                            to: "dist".into(),
                            owner: None,
                            mode: None,
                            at: String::new(),
                        }),
                        Step::Config,
                    ],
                    spec: None,
                    config: None,
                },
            ],
            sequenced: false,
        };
        let text = render(&g, true, &|i, j| {
            (i == 0 && j == 2).then(|| "build".to_owned())
        });
        assert_eq!(
            text,
            "stage build (from docker://docker.io/library/node:22, workdir /app)
  deps    npm (with dev)
  copy    the context
  run     npm run build: build
image web (from docker://docker.io/library/node:22, workdir /app)
  user    nextjs
  copy    the context's package.json
  copy    stage build:/app/dist -> dist
  config  entrypoint, cmd, env, user, labels
"
        );
    }
}
