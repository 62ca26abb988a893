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

use crate::deps;
use crate::exec::record::{deps_inputs, deps_options, record_name, Record};
use crate::exec::steps::app::AppKind;
use crate::exec::steps::host::{changed_files, Verdict};
use crate::exec::steps::user;
use crate::exec::{self, steps, BuildError, BuildOptions, LayerKind};
use crate::facts::{self, FactsError};
use crate::layer::ImagePath;
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
        for w in &self.warnings {
            t.push_str(&format!("warning {w}\n"));
        }
        for f in self.files.iter().flatten() {
            t.push_str(&format!("file    {f}\n"));
        }
        t
    }
}

/// Works out what `hoist build` would do with `opts`.
pub fn plan(
    opts: &BuildOptions,
    store: &Store,
    list_files: bool,
    net: &dyn registry::Progress,
) -> Result<Plan, BuildError> {
    let workdir = ImagePath::new(&opts.workdir)
        .ok()
        .filter(|_| opts.workdir.starts_with('/'))
        .ok_or_else(|| BuildError::Workdir(opts.workdir.clone()))?;
    let mut warnings = Vec::new();
    let mut step_runs = false;
    let step = match &opts.step {
        Some(s) => Some(match s.verdict(&opts.context, store)? {
            Verdict::Skip => format!(
                "`{}`: skipped, its inputs are unchanged",
                shell_words::join(&s.run)
            ),
            Verdict::Run(why) => {
                step_runs = true;
                format!("`{}`: would run ({why})", shell_words::join(&s.run))
            }
        }),
        None => None,
    };
    let ctx = steps::app::scan_context(opts)?;
    let project = deps::prepare(&opts.context, &opts.deps, &mut |w| warnings.push(w))?;

    // The base: a local one is read without importing anything; a
    // registry one is resolved (its manifest and config are cached).
    let crate::exec::base::PeekedBase {
        digest: base_digest,
        line: base_line,
        layers,
    } = crate::exec::base::peek(&opts.base, opts, store, net)?;
    let record: Option<Record> = store
        .get_key("last-build", &record_name(opts))?
        .and_then(|b| serde_json::from_slice(&b).ok());
    let base_changed = record
        .as_ref()
        .is_some_and(|r| r.base != base_digest.to_string());
    let mut planned = Vec::new();

    // The run steps: each layer is reused when the cache has it under the
    // key of the steps and layers below; after the first that would run,
    // every later one runs too.
    let mut ground = crate::sandbox::Ground {
        layers: layers.clone(),
        image_env: Vec::new(),
        scratch_parent: store.root().join("sandbox"),
    };
    let mut chain = steps::run::RunChain::new(&base_digest, opts.compression, opts.epoch);
    let mut runs = false;
    for step in &opts.run {
        let key = chain.key(step);
        let hit = match runs {
            true => None,
            false => crate::cache::layer::lookup(store, "run-layer", &key)?,
        };
        let why = match (&hit, runs) {
            (Some(_), _) => format!("`{}`: unchanged (in the cache)", step.shown()),
            (None, true) => format!("`{}`: a step below runs", step.shown()),
            (None, false) => format!("`{}`: not in the cache", step.shown()),
        };
        planned.push(PlannedLayer {
            kind: LayerKind::Run,
            reuse: hit.is_some(),
            why,
        });
        match hit {
            Some(layer) => {
                chain.made(&layer);
                ground = ground.with(&layer.descriptor);
            }
            None => runs = true,
        }
    }

    // The user layer needs the base's passwd: known when its facts are
    // in the store, never fetched here.
    #[derive(Debug)]
    struct NotFetched;
    impl From<FactsError> for NotFetched {
        fn from(_: FactsError) -> Self {
            NotFetched
        }
    }
    let stack = exec::build::facts_key(&base_digest, layers.len(), &ground);
    let facts = match runs {
        true => None,
        false => facts::read_facts_cached::<NotFetched>(store, &stack, &ground.layers, &mut || {
            Err(NotFetched)
        })
        .ok(),
    };
    let mut owner = None;
    if let Some(spec) = &opts.user {
        match &facts {
            Some(f) => {
                let p = user::plan_user(spec, f, opts.epoch / 86_400)?;
                owner = Some((p.uid, p.gid));
                if !p.reused {
                    let hit = store.get_key("user-layer", &steps::user::user_key(opts, &p))?;
                    planned.push(PlannedLayer {
                        kind: LayerKind::User,
                        reuse: hit.is_some(),
                        why: match (hit.is_some(), base_changed) {
                            (true, _) => "unchanged (in the cache)".into(),
                            (false, true) => "the base changed".into(),
                            (false, false) => "not in the cache".into(),
                        },
                    });
                }
            }
            None => {
                owner = Some((
                    spec.uid.unwrap_or(user::DEFAULT_UID),
                    spec.gid.or(spec.uid).unwrap_or(user::DEFAULT_UID),
                ));
                planned.push(PlannedLayer {
                    kind: LayerKind::User,
                    reuse: false,
                    why: "the base's /etc/passwd has not been read yet (first build on this base)"
                        .into(),
                });
            }
        }
    }

    if project.is_some() {
        let now = deps_inputs(opts);
        let options = deps_options(opts, &base_digest);
        let names = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<Vec<_>>().join(", ");
        planned.push(match &record {
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
                why: match base_changed {
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
    }

    let mut files = steps::app::app_files(opts, &ctx, &workdir, owner)?;
    files.hash()?;
    let key = files.key(opts.compression, steps::app::app_epoch(opts)?);
    let hit = store.get_key("app-layer", &key)?.is_some();
    let mut why = match (&record, hit) {
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
    if step_runs {
        why.push_str("; the build step runs first and may change it");
    }
    if !opts.app.none_from_context {
        planned.push(PlannedLayer {
            kind: LayerKind::App,
            reuse: hit && !step_runs,
            why,
        });
    }
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
        base: base_line,
        step,
        layers: planned,
        files: listing,
        warnings,
    })
}
