//! What a build reports as it goes. The library prints nothing: the CLI
//! draws these events (`cli/render.rs`), a test can collect them.

use crate::deps::DepsSummary;
use crate::digest::Digest;
use crate::exec::steps::host::StepOutcome;
use crate::image::Platform;
use crate::layer::Layer;

/// What a build reports as it goes; the CLI renders it.
#[derive(Debug, Clone)]
pub enum Event {
    Base {
        source: String,
        digest: Digest,
        platform: Platform,
        layers: usize,
    },
    Layer {
        what: String,
        digest: Digest,
        size: u64,
        files: usize,
    },
    UserReused {
        name: String,
        uid: u32,
        gid: u32,
    },
    /// The deps layer, reused from the cache or built; its `Layer` event
    /// follows.
    Deps(DepsSummary),
    /// The host build step ran, or was skipped.
    Step(StepOutcome),
    /// A build stage's layer, reused from the cache or made.
    Stage {
        stage: String,
        what: String,
        digest: Digest,
        reused: bool,
    },
    /// What the registry cache did (a hit, a share, a problem).
    Cache(crate::cache::remote::Note),
    Output {
        output: String,
    },
    Pushed {
        target: String,
        digest: Digest,
        uploaded: usize,
        mounted: usize,
        skipped: usize,
        bytes: u64,
    },
    Warning(String),
}

/// Which of the layers hoist adds a layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// A `[[run]]` step's changes.
    Run,
    User,
    Deps,
    App,
    /// A copy from a build stage.
    Copy,
    /// The folder a Dockerfile's WORKDIR makes.
    Workdir,
}

impl LayerKind {
    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Run => "run",
            LayerKind::User => "user",
            LayerKind::Deps => "deps",
            LayerKind::App => "app",
            LayerKind::Copy => "copy",
            LayerKind::Workdir => "workdir",
        }
    }
}

/// One layer of the result, for the summary.
#[derive(Debug, Clone)]
pub struct LayerSummary {
    pub what: String,
    pub layer: Layer,
    pub kind: LayerKind,
    /// Taken from the cache rather than written.
    pub reused: bool,
}
