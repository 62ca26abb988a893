//! Transport names: where an image comes from or goes to, spelled as
//! skopeo spells them (`oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`,
//! `docker-archive:FILE[:TAG]`, `docker://REF`, or a bare `REF`).
//!
//! Only the name lives here, beside [`super::Reference`]: a type that
//! proves a string names an image somewhere, which every frontend fills
//! in and the graph holds. Reading and writing images is `crate::transport`.

use std::fmt;
use std::path::PathBuf;

use super::name::{self, is_valid_oci_ref_name, normalize_name};

/// Why a transport name or an image name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("`{input}` is not a transport hoist understands: {why}")]
    BadTransport { input: String, why: String },
    #[error("`{input}` has an empty path")]
    EmptyPath { input: String },
    #[error("image name `{name}` {why}")]
    BadName { name: String, why: String },
    #[error("`{input}` is a path, not an image reference: name the format, as oci:{input} (an OCI layout folder, with index.json), oci-archive:{input} (a tar of one) or docker-archive:{input} (what `docker save` writes)")]
    BarePath { input: String },
}

/// Whether `s` is spelled as a file path (`/x`, `./x`, `../x`, `~/x`, or
/// `.`), which no image reference can be.
pub fn is_path_like(s: &str) -> bool {
    s == "." || s == ".." || ["/", "./", "../", "~/"].iter().any(|p| s.starts_with(p))
}

/// Where an image comes from or goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// An OCI image layout folder, optionally naming one image in it.
    Oci { dir: PathBuf, tag: Option<String> },
    /// A tar of an OCI image layout.
    OciArchive { file: PathBuf, tag: Option<String> },
    /// What `docker save` / `podman save` write: `manifest.json` and files
    /// named by it.
    DockerArchive { file: PathBuf, tag: Option<String> },
    /// A registry reference (`docker://REF` or a bare `REF`).
    Registry(String),
    /// A local container engine's image store (`docker-daemon:NAME[:TAG]`,
    /// `containers-storage:NAME[:TAG]`); an output only. Without a name
    /// the image is loaded under the build's tags.
    Engine {
        engine: Engine,
        name: Option<String>,
    },
}

/// The local engines hoist can load an image into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The Docker Engine API on its socket (`docker-daemon:`).
    Docker,
    /// Podman's image store for the user running hoist (`containers-storage:`).
    Podman,
}

impl Engine {
    /// The transport prefix, as skopeo spells it (without the colon).
    pub fn prefix(self) -> &'static str {
        match self {
            Engine::Docker => "docker-daemon",
            Engine::Podman => "containers-storage",
        }
    }

    /// The name a `--tag` (already normalised, `localhost/web:dev`) gets
    /// in the engine: Docker names it as `docker build -t web:dev` would
    /// (`web:dev`), podman as hoist's archives do.
    pub fn tag_name(self, full: &str) -> String {
        match (self, full.strip_prefix("localhost/")) {
            (Engine::Docker, Some(short)) => short.to_owned(),
            _ => full.to_owned(),
        }
    }

    /// The name the engine gives `name`: Docker keeps the user's spelling
    /// (`web` is Docker Hub's `web`), podman puts unqualified names under
    /// `localhost/`; both add `:latest` when there is no tag.
    pub fn full_name(self, name: &str) -> Result<String, NameError> {
        let full = normalize_name(name)?;
        Ok(match self {
            Engine::Podman => full,
            Engine::Docker => match name::split_tag(name) {
                (_, Some(_)) => name.to_owned(),
                (repo, None) => format!("{repo}:latest"),
            },
        })
    }
}

/// Skopeo transports hoist knows by name but does not read or write, so
/// that `dir:/tmp/x` gets a clear error instead of being taken for a
/// registry reference.
const FOREIGN_TRANSPORTS: &[&str] = &["dir", "ostree", "sif", "tarball"];

impl Transport {
    /// Parses a transport name. For the local transports the path ends at
    /// the first `:` after the prefix, and what follows is the tag, as
    /// containers/image splits them; an empty tag (`oci:DIR:`) means none.
    pub fn parse(s: &str) -> Result<Transport, NameError> {
        let bad = |why: &str| NameError::BadTransport {
            input: s.to_owned(),
            why: why.to_owned(),
        };
        if let Some(rest) = s.strip_prefix("docker://") {
            if rest.is_empty() {
                return Err(bad("`docker://` needs a reference after it"));
            }
            return Ok(Transport::Registry(rest.to_owned()));
        }
        for engine in [Engine::Docker, Engine::Podman] {
            let Some(rest) = s
                .strip_prefix(engine.prefix())
                .and_then(|r| r.strip_prefix(':'))
            else {
                continue;
            };
            if rest.is_empty() {
                return Ok(Transport::Engine { engine, name: None });
            }
            if rest.starts_with('[') {
                return Err(bad(
                    "hoist loads into the store podman uses for this user; a `[driver@root]` store specifier is not supported: set CONTAINERS_STORAGE_CONF instead, as podman reads it",
                ));
            }
            engine.full_name(rest)?;
            return Ok(Transport::Engine {
                engine,
                name: Some(rest.to_owned()),
            });
        }
        type Make = fn(PathBuf, Option<String>) -> Transport;
        let local: [(&str, Make); 3] = [
            ("oci:", |dir, tag| Transport::Oci { dir, tag }),
            ("oci-archive:", |file, tag| Transport::OciArchive {
                file,
                tag,
            }),
            ("docker-archive:", |file, tag| Transport::DockerArchive {
                file,
                tag,
            }),
        ];
        for (prefix, make) in local {
            let Some(rest) = s.strip_prefix(prefix) else {
                continue;
            };
            let (path, tag) = match rest.split_once(':') {
                Some((p, t)) => (p, (!t.is_empty()).then(|| t.to_owned())),
                None => (rest, None),
            };
            if path.is_empty() {
                return Err(NameError::EmptyPath {
                    input: s.to_owned(),
                });
            }
            let t = make(PathBuf::from(path), tag);
            t.check_tag()?;
            return Ok(t);
        }
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if is_path_like(s) {
            return Err(NameError::BarePath {
                input: s.to_owned(),
            });
        }
        if let Some((scheme, rest)) = s.split_once(':') {
            if FOREIGN_TRANSPORTS.contains(&scheme) && !super::is_valid_tag(rest) {
                return Err(bad(&format!(
                    "hoist does not read or write skopeo's `{scheme}:` transport; use oci:, oci-archive:, docker-archive: or docker://"
                )));
            }
        }
        if s.chars().any(char::is_whitespace) {
            return Err(bad("a reference cannot contain spaces"));
        }
        Ok(Transport::Registry(s.to_owned()))
    }

    /// The tag part, for the local transports.
    pub fn tag(&self) -> Option<&str> {
        match self {
            Transport::Oci { tag, .. }
            | Transport::OciArchive { tag, .. }
            | Transport::DockerArchive { tag, .. } => tag.as_deref(),
            Transport::Registry(_) | Transport::Engine { .. } => None,
        }
    }

    /// Checks the tag against the grammar of its format: an OCI ref name
    /// for layouts, a Docker name or `@INDEX` for docker-archive.
    fn check_tag(&self) -> Result<(), NameError> {
        match self {
            Transport::Oci { tag: Some(t), .. } | Transport::OciArchive { tag: Some(t), .. }
                if !is_valid_oci_ref_name(t) =>
            {
                Err(NameError::BadName {
                    name: t.clone(),
                    why: "is not a valid OCI ref name (letters, digits and `-._:@/+` between them)"
                        .into(),
                })
            }
            Transport::DockerArchive { tag: Some(t), .. } if name::parse_index_tag(t).is_none() => {
                normalize_name(t).map(|_| ())
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, path, tag) = match self {
            Transport::Registry(r) => return write!(f, "docker://{r}"),
            Transport::Engine { engine, name } => {
                return write!(f, "{}:{}", engine.prefix(), name.as_deref().unwrap_or(""))
            }
            Transport::Oci { dir, tag } => ("oci", dir, tag),
            Transport::OciArchive { file, tag } => ("oci-archive", file, tag),
            Transport::DockerArchive { file, tag } => ("docker-archive", file, tag),
        };
        write!(f, "{prefix}:{}", path.display())?;
        if let Some(t) = tag {
            write!(f, ":{t}")?;
        }
        Ok(())
    }
}
