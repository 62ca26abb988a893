//! `hoist build --dry-run`: what a build would do, and why, without
//! writing anything: the base it resolves to, whether the host build step
//! would run, and for each layer hoist adds whether it would be reused or
//! built, naming the inputs that changed.
//!
//! "Changed" is measured against the last successful build of the same
//! image (same context, platform and target): every build leaves a small
//! record in the store (`keys/last-build/`) of its base, its deps inputs
//! (the manifests' hashes) and its app layer's entries (path, mode, owner,
//! content hash). A code-only change then reads "app: build, changed:
//! /app/src/routes.js" while the deps layer reads "reuse".
//!
//! Reuse itself is decided as the build decides it: by the layer's cache
//! key (user and app layers) when it can be computed without the base's
//! bytes, else by comparing with the record.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::exec::record::{deps_inputs, deps_options, record_name, Record};
use crate::exec::steps::app::{AppFiles, AppKind};
use crate::exec::steps::host::{changed_files, HostStep, Verdict};
use crate::exec::steps::user::UserPlan;
use crate::exec::{steps, walk, BuildError, BuildOptions, LayerKind};
use crate::facts::{self, Facts, FactsError};
use crate::graph::spec::UserSpec;
use crate::layer::Layer;
use crate::registry;
use crate::store::Store;

pub use crate::exec::PlannedLayer;

/// What a build would do.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The base, as resolved: source, platform, manifest digest.
    pub base: String,
    /// The host build step and what would happen to it.
    pub step: Option<String>,
    pub layers: Vec<PlannedLayer>,
    /// The app layer's entries, with `--list-files`.
    pub files: Option<Vec<String>>,
    pub warnings: Vec<String>,
    /// The command line the container will run (entrypoint and command,
    /// the base's kept as the build keeps them).
    pub command: Option<String>,
}

impl Plan {
    /// The plan as people read it.
    pub fn render(&self, image: &str, target: &str) -> String {
        let mut t = format!("plan    {image} ({target})\nbase    {}\n", self.base);
        if let Some(s) = &self.step {
            t.push_str(&format!("step    {s}\n"));
        }
        for l in &self.layers {
            let how = if l.reuse { "reuse" } else { "build" };
            t.push_str(&format!("{:<7} {how:<6} {}\n", l.kind.name(), l.why));
        }
        if let Some(c) = &self.command {
            t.push_str(&format!("command {c}\n"));
        }
        for w in &self.warnings {
            t.push_str(&format!("warning {w}\n"));
        }
        for f in self.files.iter().flatten() {
            t.push_str(&format!("file    {f}\n"));
        }
        t
    }
}

/// Works out what `hoist build` would do with `opts`: the same walk as a
/// build, with a backend that only looks keys up.
pub fn plan(
    opts: &BuildOptions,
    store: &Store,
    list_files: bool,
    net: &dyn registry::Progress,
) -> Result<Plan, BuildError> {
    let mut e = Explain {
        opts,
        store,
        net,
        warnings: Vec::new(),
        step: None,
        step_runs: false,
        base_line: String::new(),
        base_digest: None,
        record: None,
        base_changed: false,
        planned: Vec::new(),
        base_config: None,
    };
    let walked = walk::walk(opts, store, &mut e)?;
    let mut command = None;
    if let Some(base) = &e.base_config {
        let cfg = crate::exec::steps::config::derive(base, &opts.settings, &[], "");
        let c = cfg.config.unwrap_or_default();
        let runs: Vec<String> = c
            .entrypoint
            .unwrap_or_default()
            .into_iter()
            .chain(c.cmd.unwrap_or_default())
            .collect();
        command = (!runs.is_empty()).then(|| shell_words::join(&runs));
        if let Some(w) = crate::exec::steps::config::entrypoint_warning(base, &opts.settings) {
            e.warnings.push(w);
        }
    }
    let files = walked.files;
    let listing = list_files.then(|| {
        files
            .entries
            .iter()
            .map(|e| match &e.kind {
                AppKind::Dir => format!("{}/", e.path.absolute()),
                AppKind::File { size, .. } => {
                    format!("{} ({size} B, from {})", e.path.absolute(), e.source)
                }
                AppKind::Symlink(t) => format!("{} -> {t}", e.path.absolute()),
                AppKind::Hardlink(t) => {
                    format!("{} (hard link to {})", e.path.absolute(), t.absolute())
                }
            })
            .collect()
    });
    Ok(Plan {
        base: e.base_line,
        step: e.step,
        layers: e.planned,
        files: listing,
        warnings: e.warnings,
        command,
    })
}

/// The backend of a dry run: each step's key looked up, nothing written,
/// nothing fetched but a registry base's manifest and config.
struct Explain<'a> {
    opts: &'a BuildOptions,
    store: &'a Store,
    net: &'a dyn registry::Progress,
    warnings: Vec<String>,
    step: Option<String>,
    step_runs: bool,
    base_line: String,
    base_digest: Option<Digest>,
    /// The last build of this image, to name what changed.
    record: Option<Record>,
    base_changed: bool,
    planned: Vec<PlannedLayer>,
    base_config: Option<crate::image::ImageConfig>,
}

impl walk::Backend for Explain<'_> {
    type Base = ();

    fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    fn host_step(&mut self, s: &HostStep) -> Result<(), BuildError> {
        self.step = Some(match s.verdict(&self.opts.context, self.store)? {
            Verdict::Skip => format!(
                "`{}`: skipped, its inputs are unchanged",
                shell_words::join(&s.run)
            ),
            Verdict::Run(why) => {
                self.step_runs = true;
                format!("`{}`: would run ({why})", shell_words::join(&s.run))
            }
        });
        Ok(())
    }

    fn base(&mut self) -> Result<(walk::BaseView, ()), BuildError> {
        // A local base is read without importing anything; a registry one
        // is resolved (its manifest and config are cached).
        let crate::exec::base::PeekedBase {
            digest,
            line,
            layers,
            config,
        } = crate::exec::base::peek(&self.opts.base, self.opts, self.store, self.net)?;
        self.record = self
            .store
            .get_key("last-build", &record_name(self.opts))?
            .and_then(|b| serde_json::from_slice(&b).ok());
        self.base_changed = self
            .record
            .as_ref()
            .is_some_and(|r| r.base != digest.to_string());
        self.base_line = line;
        self.base_config = Some(config);
        self.base_digest = Some(digest.clone());
        let view = walk::BaseView {
            digest,
            layers,
            env: Vec::new(),
        };
        Ok((view, ()))
    }

    /// A run step's layer is reused when the cache has it under its key;
    /// after the first that would run, every later one runs too.
    fn run_step(
        &mut self,
        step: &crate::sandbox::Step,
        key: &str,
        _ground: &crate::sandbox::Ground,
        below_known: bool,
    ) -> Result<Option<Layer>, BuildError> {
        let hit = match below_known {
            false => None,
            true => crate::cache::layer::lookup(self.store, "run-layer", key)?,
        };
        let why = match (&hit, below_known) {
            (Some(_), _) => format!("`{}`: unchanged (in the cache)", step.shown()),
            (None, false) => format!("`{}`: a step below runs", step.shown()),
            (None, true) => format!("`{}`: not in the cache", step.shown()),
        };
        self.planned.push(PlannedLayer {
            kind: LayerKind::Run,
            reuse: hit.is_some(),
            why,
        });
        Ok(hit)
    }

    /// The user layer needs the base's passwd: known when its facts are
    /// in the store, never fetched here.
    fn facts(
        &mut self,
        stack: &Digest,
        ground: &crate::sandbox::Ground,
        runs_known: bool,
        _wanted: bool,
    ) -> Result<Option<Facts>, BuildError> {
        #[derive(Debug)]
        struct NotFetched;
        impl From<FactsError> for NotFetched {
            fn from(_: FactsError) -> Self {
                NotFetched
            }
        }
        Ok(match runs_known {
            false => None,
            true => facts::read_facts_cached::<NotFetched>(
                self.store,
                stack,
                &ground.layers,
                &mut || Err(NotFetched),
            )
            .ok(),
        })
    }

    fn user(
        &mut self,
        _spec: &UserSpec,
        plan: Option<&UserPlan>,
        _facts: Option<&Facts>,
    ) -> Result<(), BuildError> {
        match plan {
            Some(p) if p.reused => {}
            Some(p) => {
                let hit = self
                    .store
                    .get_key("user-layer", &steps::user::user_key(self.opts, p))?;
                self.planned.push(PlannedLayer {
                    kind: LayerKind::User,
                    reuse: hit.is_some(),
                    why: match (hit.is_some(), self.base_changed) {
                        (true, _) => "unchanged (in the cache)".into(),
                        (false, true) => "the base changed".into(),
                        (false, false) => "not in the cache".into(),
                    },
                });
            }
            None => self.planned.push(PlannedLayer {
                kind: LayerKind::User,
                reuse: false,
                why: "the base's /etc/passwd has not been read yet (first build on this base)"
                    .into(),
            }),
        }
        Ok(())
    }

    /// The deps layer's key needs the resolution (pip) or the base's
    /// bytes, so reuse is judged against the last build's record.
    fn deps(&mut self, _step: walk::DepsStep<'_>) -> Result<(), BuildError> {
        let Some(base_digest) = &self.base_digest else {
            return Ok(());
        };
        let now = deps_inputs(self.opts);
        let options = deps_options(self.opts, base_digest);
        let names = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<Vec<_>>().join(", ");
        self.planned.push(match &self.record {
            None => PlannedLayer {
                kind: LayerKind::Deps,
                reuse: false,
                why: "no earlier build of this image to compare with (the cache may still have it)"
                    .into(),
            },
            Some(r) if r.deps == now && r.deps_options == options => PlannedLayer {
                kind: LayerKind::Deps,
                reuse: true,
                why: format!("unchanged: {}", names(&now)),
            },
            Some(r) if r.deps == now => PlannedLayer {
                kind: LayerKind::Deps,
                reuse: false,
                why: match self.base_changed {
                    true => "the base changed".into(),
                    false => {
                        "its options changed (target, platform, compression or SOURCE_DATE_EPOCH)"
                            .into()
                    }
                },
            },
            Some(r) => PlannedLayer {
                kind: LayerKind::Deps,
                reuse: false,
                why: format!("changed: {}", changed_files(&r.deps, &now).join(", ")),
            },
        });
        Ok(())
    }

    fn app(&mut self, files: &AppFiles, key: &str) -> Result<(), BuildError> {
        let hit = self.store.get_key("app-layer", key)?.is_some();
        let mut why = match (&self.record, hit) {
            (_, true) => "unchanged (in the cache)".to_owned(),
            (None, false) => "no earlier build of this image to compare with".to_owned(),
            (Some(r), false) => {
                let changed = changed_files(&r.app, &files.manifest());
                match changed.is_empty() {
                    true => "not in the cache".to_owned(),
                    false => format!("changed: {}", changed.join(", ")),
                }
            }
        };
        if self.step_runs {
            why.push_str("; the build step runs first and may change it");
        }
        self.planned.push(PlannedLayer {
            kind: LayerKind::App,
            reuse: hit && !self.step_runs,
            why,
        });
        Ok(())
    }
}
