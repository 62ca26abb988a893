//! The executor: walks the build graph. For every step, its key first,
//! then the cache, and only on a miss the work (a native install, a copy,
//! a sandbox run), whose layer is recorded under the key.
//!
//! Shaped as the flow is:
//! - this module runs what the image copies from: the build stages it
//!   reaches ([`stage`]), the independent ones concurrently, each only
//!   when a copy it feeds is not in the cache. A copy's layer is looked up
//!   in the store, then in `--cache-from` (so a fresh CI job whose copies
//!   hit there runs no stage), and shared to `--cache-to` once it is known;
//! - `walk.rs` walks the image's own stage (host step, base, run steps,
//!   facts, user, deps, app) in one order with one set of keys, over a
//!   backend: [`build`](mod@build) makes the layers, [`explain`](mod@explain) (`--dry-run`) only
//!   looks the keys up and says why each would be reused or built;
//! - [`steps`] holds what each step kind does, [`base`] resolves a base,
//!   [`assemble`] writes indexes, outputs, pushes and SBOMs;
//! - [`BuildOptions`], [`BuildError`] and [`Event`] are the
//!   executor's input, failure and report: `ops` fills the first in from
//!   a frontend's spec, the CLI draws the last.

pub mod assemble;
pub mod base;
pub mod build;
mod error;
mod event;
pub mod explain;
mod options;
pub mod record;
pub mod sequence;
pub mod stage;
pub mod steps;
mod walk;

pub use assemble::{build_platforms, MultiResult};
pub use build::{build, BuildResult};
pub use error::BuildError;
pub use event::{Event, LayerKind, LayerSummary};
pub use options::{AppOptions, BuildOptions, RunSettings, SecretSource};

use std::collections::{BTreeMap, BTreeSet};

use crate::graph::spec::StageCopy;
use crate::graph::{dump, Graph, Step};
use crate::registry;
use crate::store::Store;

use stage::{StageKeys, StageOut};

/// The store (and shared cache) kind of a copy-from-stage layer.
const COPY_KIND: &str = "stage-copy";

/// One layer hoist would add, as the dry run explains it.
#[derive(Debug, Clone)]
pub struct PlannedLayer {
    pub kind: LayerKind,
    pub reuse: bool,
    pub why: String,
}

/// The copies from stages the image makes, in order.
fn copies(graph: &Graph) -> Vec<&StageCopy> {
    graph
        .image()
        .map(|s| {
            s.steps
                .iter()
                .filter_map(|st| match st {
                    Step::FromStage(c) => Some(c),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The keys of every build stage, in the graph's order.
fn all_keys(
    opts: &BuildOptions,
    store: &Store,
    net: &dyn registry::Progress,
) -> Result<BTreeMap<String, StageKeys>, BuildError> {
    let mut keys = BTreeMap::new();
    let n = opts.graph.stages.len().saturating_sub(1);
    for s in &opts.graph.stages[..n] {
        let k = stage::keys(opts, s, &keys, store, net)?;
        keys.insert(s.name.clone(), k);
    }
    Ok(keys)
}

/// The stages `names` need, themselves included.
fn reach(graph: &Graph, names: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    while let Some(n) = todo.pop() {
        if let Some(s) = graph.stage(&n) {
            if out.insert(n.clone()) {
                todo.extend(s.needs().into_iter().map(str::to_owned));
            }
        }
    }
    out
}

/// Builds the stages the image copies from (those whose copies miss the
/// cache) and makes the copies' layers: `opts` with `stage_layers` set,
/// ready for [`crate::exec::build`](mod@crate::exec::build).
pub fn prepare(
    opts: &BuildOptions,
    platforms: usize,
    store: &Store,
    report: &mut dyn FnMut(Event),
    net: &dyn registry::Progress,
) -> Result<BuildOptions, BuildError> {
    let wanted = copies(&opts.graph);
    if wanted.is_empty() || opts.graph.sequenced {
        return Ok(opts.clone());
    }
    if platforms > 1 {
        return Err(BuildError::StagesMultiPlatform);
    }
    let keys = all_keys(opts, store, net)?;
    let remote = crate::cache::remote::RegistryCache::new(&opts.cache, &opts.registry)?;
    let shared = remote.as_ref().map(|c| c as &dyn crate::cache::SharedCache);
    let notes = |report: &mut dyn FnMut(Event)| {
        for note in remote.iter().flat_map(|c| c.take_notes()) {
            report(Event::Cache(note));
        }
    };
    let mut plan = Vec::new();
    for c in &wanted {
        let owner = steps::copy::owner(opts, c)?;
        let k = steps::copy::key(opts, c, keys[&c.stage].last(), owner);
        let hit = crate::cache::layer::lookup_shared(store, shared, COPY_KIND, &k)?;
        plan.push((*c, k, hit));
    }
    notes(report);
    let missing: Vec<&str> = plan
        .iter()
        .filter(|(_, _, hit)| hit.is_none())
        .map(|(c, _, _)| c.stage.as_str())
        .collect();
    let needed = reach(&opts.graph, &missing);
    let mut built: BTreeMap<String, StageOut> = BTreeMap::new();
    for wave in opts.graph.waves() {
        let todo: Vec<_> = wave
            .into_iter()
            .filter(|s| needed.contains(&s.name))
            .collect();
        // Independent stages build at once, each reporting into its own
        // list, replayed in order when the wave ends.
        let results: Vec<(Vec<Event>, Result<StageOut, BuildError>)> = std::thread::scope(|sc| {
            let handles: Vec<_> = todo
                .iter()
                .map(|s| {
                    let (built, keys) = (&built, &keys);
                    sc.spawn(move || {
                        let mut events = Vec::new();
                        let r = stage::run(
                            opts,
                            s,
                            &keys[&s.name],
                            built,
                            store,
                            &mut |e| events.push(e),
                            net,
                        );
                        (events, r)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        (Vec::new(), Err(BuildError::Panicked("a stage".into())))
                    })
                })
                .collect()
        });
        for (s, (events, r)) in todo.iter().zip(results) {
            events.into_iter().for_each(&mut *report);
            built.insert(s.name.clone(), r?);
        }
    }
    for (name, k) in &keys {
        let json = serde_json::to_vec(&StageRecord {
            files: k.files.clone(),
            deps: k.deps.clone(),
        })
        .unwrap_or_default();
        store.put_key("last-stage", &StageRecord::name(opts, name), &json)?;
    }
    // Each stage is unpacked once for all the copies from it that miss.
    let mut made: BTreeMap<usize, (crate::layer::Layer, usize)> = BTreeMap::new();
    for (name, out) in &built {
        let todo: Vec<(usize, &StageCopy)> = plan
            .iter()
            .enumerate()
            .filter(|(_, (c, _, hit))| hit.is_none() && &c.stage == name)
            .map(|(i, (c, _, _))| (i, *c))
            .collect();
        let cs: Vec<&StageCopy> = todo.iter().map(|(_, c)| *c).collect();
        for ((i, _), r) in todo
            .iter()
            .zip(steps::copy::write(opts, store, &out.ground, &cs)?)
        {
            made.insert(*i, r);
        }
    }
    let mut out = opts.clone();
    for (i, (c, k, hit)) in plan.into_iter().enumerate() {
        let mut files = 0;
        let (layer, reused) = match (hit, made.remove(&i)) {
            (Some(l), _) => (l, true),
            (None, Some((l, n))) => {
                files = n;
                crate::cache::layer::remember(store, COPY_KIND, &k, &l)?;
                (l, false)
            }
            (None, None) => {
                return Err(BuildError::Panicked(format!("copy from stage {}", c.stage)))
            }
        };
        crate::cache::layer::share(shared, store, COPY_KIND, &k, &layer);
        notes(report);
        let what = format!(
            "hoist copy: stage {}:{} -> {}",
            c.stage,
            c.from,
            steps::copy::destination(opts, c)?.absolute()
        );
        report(Event::Layer {
            what: what.clone(),
            digest: layer.descriptor.digest.clone(),
            size: layer.descriptor.size,
            files,
        });
        out.stage_layers.push(LayerSummary {
            what,
            layer,
            kind: LayerKind::Copy,
            reused,
        });
    }
    Ok(out)
}

/// `--dry-run` for the build stages and the image's copies from them: the
/// graph, each step with what a build would do (reuse or build, and why).
pub fn explain(
    opts: &BuildOptions,
    store: &Store,
    net: &dyn registry::Progress,
) -> Result<(String, Vec<PlannedLayer>), BuildError> {
    let wanted = copies(&opts.graph);
    if wanted.is_empty() {
        return Ok((String::new(), Vec::new()));
    }
    let keys = all_keys(opts, store, net)?;
    let mut lines = Vec::new();
    let mut missing = Vec::new();
    for c in &wanted {
        let owner = steps::copy::owner(opts, c)?;
        let k = steps::copy::key(opts, c, keys[&c.stage].last(), owner);
        let hit = crate::cache::layer::lookup(store, COPY_KIND, &k)?.is_some();
        if !hit {
            missing.push(c.stage.as_str());
        }
        lines.push(PlannedLayer {
            kind: LayerKind::Copy,
            reuse: hit,
            why: format!(
                "stage {}:{} -> {}: {}",
                c.stage,
                c.from,
                steps::copy::destination(opts, c)?.absolute(),
                match hit {
                    true => "unchanged (in the cache)",
                    false => "the stage's result changed or is not in the cache",
                }
            ),
        });
    }
    let needed = reach(&opts.graph, &missing);
    let last_run: BTreeMap<String, StageRecord> = keys
        .keys()
        .filter_map(|n| Some((n.clone(), StageRecord::load(store, opts, n)?)))
        .collect();
    let build_stages = &opts.graph;
    let mut verdicts: BTreeMap<(usize, usize), String> = BTreeMap::new();
    for (i, s) in build_stages.stages.iter().enumerate() {
        let Some(k) = keys.get(&s.name) else {
            continue;
        };
        let mut below_runs = false;
        for (j, (step, key)) in s.steps.iter().zip(&k.steps).enumerate() {
            let v = if !needed.contains(&s.name) {
                "reuse (not needed: what the image copies from it is in the cache)".to_owned()
            } else {
                let hit = match step {
                    Step::Run(_) if !below_runs => {
                        crate::cache::layer::lookup(store, "run-layer", key)?.is_some()
                    }
                    Step::Run(_) => false,
                    Step::Context(_) => store.get_key("app-layer", &k.copy)?.is_some(),
                    Step::Deps(_) => last_run.get(&s.name).is_none_or(|r| r.deps == k.deps),
                    _ => true,
                };
                let why = match (step, &last_run.get(&s.name)) {
                    (Step::Context(_), Some(r)) => {
                        let changed = crate::exec::steps::host::changed_files(&r.files, &k.files);
                        match changed.is_empty() {
                            true => "unchanged".to_owned(),
                            false => format!("changed: {}", changed.join(", ")),
                        }
                    }
                    (Step::Deps(_), Some(r)) if r.deps != k.deps => {
                        "changed: its manifests (package.json, the lockfile)".into()
                    }
                    (Step::Deps(_), _) => "native install, cached by its lockfile".into(),
                    (Step::Run(_), _) if below_runs => "a step below runs".into(),
                    (Step::Run(_), _) if hit => "unchanged (in the cache)".into(),
                    (Step::Run(_), _) => "its inputs changed (not in the cache)".into(),
                    _ => "no earlier build to compare with".into(),
                };
                if matches!(step, Step::Run(_)) && !hit {
                    below_runs = true;
                }
                format!("{} {why}", if hit { "reuse" } else { "build" })
            };
            verdicts.insert((i, j), v);
        }
    }
    let text = dump::render(build_stages, false, &|i, j| verdicts.get(&(i, j)).cloned());
    Ok((text, lines))
}

/// What a build stage last copied from the context, for "changed: ..."
/// in a dry run.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct StageRecord {
    files: BTreeMap<String, String>,
    #[serde(default)]
    deps: String,
}

impl StageRecord {
    fn name(opts: &BuildOptions, stage: &str) -> String {
        let abs = std::path::absolute(&opts.context).unwrap_or_else(|_| opts.context.clone());
        crate::digest::Digest::of(
            format!("{}\n{}\n{stage}", abs.display(), opts.platform).as_bytes(),
        )
        .hex()
        .to_owned()
    }

    fn load(store: &Store, opts: &BuildOptions, stage: &str) -> Option<StageRecord> {
        let b = store
            .get_key("last-stage", &Self::name(opts, stage))
            .ok()??;
        serde_json::from_slice(&b).ok()
    }
}
