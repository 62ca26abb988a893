//! Outputs into a local container engine: `docker-daemon:NAME[:TAG]`
//! (the Docker Engine API on its unix socket) and
//! `containers-storage:NAME[:TAG]` (podman's store for the user running
//! hoist), and the choice `hoist build --load` makes between them.
//!
//! Both stream the image as an archive built on the fly, through a socket
//! or a pipe, so nothing is staged on disk by hoist and a failed build
//! leaves nothing loaded: the engine sees a cut-off archive and keeps
//! nothing. No docker CLI is needed; podman is run as `podman load`, its
//! own loading path, so its configuration and rootless setup apply as
//! they do for the user's other podman commands.
//!
//! `--load` picks Docker when `DOCKER_HOST` is set or a daemon answers
//! on the socket the docker CLI would use (what `docker buildx build
//! --load` users expect, and podman's Docker-compatible socket answers
//! there too when a podman user enabled it), else podman when it runs
//! here, else it fails naming both and how to start either.

mod docker;
mod http;
mod podman;

pub use crate::reference::transport::Engine;

use crate::store::Store;
use crate::transport::{BuiltImage, TransportError};

/// Why an image could not be loaded into an engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{host} ({from}) cannot be used: {why}")]
    UnsupportedHost {
        host: String,
        from: String,
        why: String,
    },
    #[error("DOCKER_API_VERSION={version} is not an API version: give MAJOR.MINOR, as 1.41, or unset it")]
    BadApiVersion { version: String },
    #[error("docker context `{name}` cannot be read: {why}; set DOCKER_HOST=unix:///PATH/TO/docker.sock, or `docker context use default`")]
    BadContext { name: String, why: String },
    #[error("cannot reach the Docker daemon at {socket}: {why}. Start Docker (`sudo systemctl start docker`, or `dockerd-rootless.sh` for rootless Docker) or point DOCKER_HOST at its socket (unix:///run/user/$UID/docker.sock for rootless Docker)")]
    DockerUnreachable { socket: String, why: String },
    #[error("the Docker daemon at {socket} refused the image: {message}")]
    DockerSaid { socket: String, message: String },
    #[error("the Docker daemon at {socket} answered something hoist cannot read: {why}")]
    DockerBadAnswer { socket: String, why: String },
    #[error("`podman` is not installed (not found on PATH): install it (`apt-get install podman`, `dnf install podman`), or load into Docker with --output docker-daemon:NAME")]
    NoPodman,
    #[error("`podman {args}` failed: {message}")]
    PodmanFailed { args: String, message: String },
    #[error("--load found no container engine: {docker}; and {podman}. Start Docker (`sudo systemctl start docker`, or `dockerd-rootless.sh`; DOCKER_HOST=unix:///PATH names another socket) or install podman, or name the engine with --output docker-daemon:NAME or --output containers-storage:NAME")]
    NoEngine { docker: String, podman: String },
    #[error("{output} holds one image for one platform: build with one --platform, or write several platforms to oci: or oci-archive:")]
    OnePlatform { output: String },
}

/// Loads `image` into `engine`, named `name` (as the user spelled it
/// after the prefix) and `tags` (full names, as `--tag` gives them).
pub(crate) fn load(
    engine: Engine,
    name: Option<&str>,
    image: &BuiltImage,
    tags: &[String],
    store: &Store,
) -> Result<(), TransportError> {
    let mut names = Vec::new();
    if let Some(n) = name {
        names.push(engine.full_name(n)?);
    }
    for t in tags {
        let t = engine.tag_name(t);
        if !names.contains(&t) {
            names.push(t);
        }
    }
    match engine {
        Engine::Docker => docker::load(&docker::Socket::find()?, image, &names, store),
        Engine::Podman => podman::load(image, &names, store),
    }
}

/// The engine `hoist build --load` loads into: Docker when `DOCKER_HOST`
/// is set or its socket answers, else podman when it runs, else an error
/// naming both.
pub fn detect() -> Result<Engine, EngineError> {
    let socket = docker::Socket::find()?;
    if std::env::var_os("DOCKER_HOST").is_some_and(|h| !h.is_empty()) {
        return Ok(Engine::Docker);
    }
    let docker = match socket.ping() {
        Ok(()) => return Ok(Engine::Docker),
        Err(EngineError::DockerUnreachable { socket, why }) => {
            format!("no Docker daemon answers at {socket} ({why})")
        }
        Err(e) => e.to_string(),
    };
    match podman::available() {
        Ok(()) => Ok(Engine::Podman),
        Err(e) => Err(EngineError::NoEngine {
            docker,
            podman: match e {
                EngineError::NoPodman => "`podman` is not on PATH".to_owned(),
                e => e.to_string(),
            },
        }),
    }
}
