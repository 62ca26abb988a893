//! Why a build failed: one error type for the executor, each variant
//! naming the thing that failed and, where there is one, the fix.

use std::path::PathBuf;

use crate::deps::DepsError;
use crate::exec::steps::app::AppError;
use crate::exec::steps::context::ContextError;
use crate::exec::steps::host::StepError;
use crate::exec::steps::user;
use crate::facts;
use crate::layer::LayerError;
use crate::reference::ReferenceError;
use crate::registry::RegistryError;
use crate::store::StoreError;
use crate::transport;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("base {base}: {source}")]
    Base {
        base: String,
        #[source]
        source: transport::TransportError,
    },
    #[error("reading the base's facts (/etc/passwd, /etc/group, /etc/os-release, its C library and Python): {0}")]
    Facts(#[from] facts::FactsError),
    #[error(transparent)]
    User(#[from] user::UserError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Deps(#[from] DepsError),
    #[error("writing a layer: {0}")]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("output {output}: {source}")]
    Output {
        output: String,
        #[source]
        source: transport::TransportError,
    },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("--workdir {}", crate::graph::config::workdir_problem(.0))]
    Workdir(String),
    #[error(transparent)]
    App(#[from] AppError),
    #[error(transparent)]
    Step(#[from] StepError),
    /// A Dockerfile step that cannot be done as written.
    #[error("{at}: {message}")]
    Instruction { at: String, message: String },
    #[error("building image `{0}` stopped on a bug (a panic); please report it")]
    Panicked(String),
    #[error("--push needs a tag naming where to push image `{0}`: --tag registry.example.com/team/{0}:1.0, or tags = [...] in its [image]")]
    PushWithoutTag(String),
    #[error("[app] mtime = \"commit\": cannot read the last commit's time in {dir} ({why}); is it a git checkout? Use mtime = \"fixed\" otherwise")]
    CommitTime { dir: PathBuf, why: String },
    #[error("reading {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Sbom(#[from] crate::sbom::SbomError),
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
    #[error("stage `{stage}`, step {step}: {source}")]
    StageStep {
        stage: String,
        step: String,
        #[source]
        source: Box<crate::sandbox::SandboxError>,
    },
    #[error("copy from stage `{stage}`: `{path}` does not exist in the stage ({near})")]
    StagePath {
        stage: String,
        path: String,
        near: String,
    },
    #[error("copy from stage `{stage}`: `{path}`: {why}")]
    StageLink {
        stage: String,
        path: String,
        why: String,
    },
    #[error("{at}: copy owner `{owner}` is neither UID:GID nor the image user's name")]
    StageOwner { at: String, owner: String },
    #[error("an image that copies from stages is built for one platform: stages run their commands, and hoist does not emulate other platforms; build each platform on its own host")]
    StagesMultiPlatform,
}
