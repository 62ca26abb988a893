//! `[[run]]` steps over the base: each runs in the sandbox and its
//! changes become a layer, keyed by the chain of steps before it.

use crate::digest::Digest;
use crate::exec::{BuildError, BuildOptions, Event, LayerKind, LayerSummary};
use crate::layer::Layer;
use crate::store::Store;
use crate::transport::BaseImage;

/// The cache keys of the run steps' layers: a chain that starts with the
/// base, to which each step adds its text and each layer made its
/// diff_id, so a step's key covers everything below it.
pub(crate) struct RunChain(String);

impl RunChain {
    pub(crate) fn new(base: &Digest, compression: crate::layer::Compression, epoch: u64) -> Self {
        RunChain(format!(
            "hoist run layer v2\n{base} {compression:?} {epoch}\n"
        ))
    }

    /// The key of `step`'s layer.
    pub(crate) fn key(&mut self, step: &crate::sandbox::Step) -> String {
        self.0.push_str(&format!("{}\n", step.key_text()));
        Digest::of(self.0.as_bytes()).hex().to_owned()
    }

    /// Records the layer the step made.
    pub(crate) fn made(&mut self, layer: &Layer) {
        self.0.push_str(&format!("{}\n", layer.diff_id));
    }
}

/// Runs the `[[run]]` steps in the sandbox, each on the base and the
/// steps before it; each step's layer is cached by a key of the base's
/// digest, the steps so far and the layers they made. Returns the ground
/// the deps' install scripts and builds run on: the base and the steps.
pub(crate) fn run_steps(
    opts: &BuildOptions,
    store: &Store,
    base: &BaseImage,
    need_layers: &mut dyn FnMut(&Store) -> Result<(), BuildError>,
    report: &mut dyn FnMut(Event),
    new_layers: &mut Vec<LayerSummary>,
) -> Result<crate::sandbox::Ground, BuildError> {
    let mut ground = crate::sandbox::Ground {
        layers: base.layers.clone(),
        image_env: base
            .config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default(),
        scratch_parent: store.root().join("sandbox"),
    };
    if opts.run.is_empty() {
        return Ok(ground);
    }
    need_layers(store)?;
    let mut chain = RunChain::new(&base.manifest_digest, opts.compression, opts.epoch);
    for step in &opts.run {
        let key = chain.key(step);
        let mut files = 0;
        let (layer, reused) =
            crate::cache::layer::get_or_make::<BuildError>(store, "run-layer", &key, || {
                let made =
                    crate::sandbox::run_step(store, &ground, step, opts.compression, opts.epoch)?;
                files = made.changes;
                Ok(made.layer)
            })?;
        chain.made(&layer);
        ground = ground.with(&layer.descriptor);
        let what = format!("hoist run: {}", step.shown());
        report(Event::Layer {
            what: what.clone(),
            digest: layer.descriptor.digest.clone(),
            size: layer.descriptor.size,
            files,
        });
        new_layers.push(LayerSummary {
            what,
            layer,
            kind: LayerKind::Run,
            reused,
        });
    }
    Ok(ground)
}
