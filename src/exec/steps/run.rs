//! `[[run]]` steps over the base: each runs in the sandbox and its
//! changes become a layer, keyed by the chain of steps before it. The walk
//! (`exec::walk`) keeps the chain; the build runs each step through
//! [`crate::sandbox::run_step`].

use crate::digest::Digest;
use crate::layer::Layer;

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
