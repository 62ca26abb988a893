//! The image's Python, as the installer sees it: where pip would put
//! files inside the image, which wheels fit it, and how its markers
//! evaluate.
//!
//! Everything here describes the image, never the host: hoist runs no
//! Python, so the interpreter's version, install scheme and C library are
//! read from the base's filesystem ([`crate::facts`]) and its platform.

use pep440_rs::Version;
use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder};

use super::tags;
use crate::layer::ImagePath;

/// The folders pip's install scheme names, as absolute paths in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheme {
    /// Pure-Python packages (`site-packages`, or Debian's `dist-packages`).
    pub purelib: ImagePath,
    /// Packages with extension modules; the same folder on every Linux
    /// Python hoist knows.
    pub platlib: ImagePath,
    /// Console and GUI entry points and `.data/scripts`.
    pub scripts: ImagePath,
    /// `.data/data`: the prefix (`/usr/local` or `/usr`).
    pub data: ImagePath,
    /// `.data/headers`: `<prefix>/include/python3.X/<package>`' parent.
    pub headers: ImagePath,
}

/// The image's interpreter and install scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonEnv {
    /// CPython major.minor.
    pub version: (u32, u32),
    /// `3.11.2`; major.minor.0 when the image does not say.
    pub full_version: Version,
    /// The interpreter scripts' shebangs name (`/usr/local/bin/python3.12`).
    pub interpreter: ImagePath,
    pub scheme: Scheme,
    /// Interpreter, CPU and C library, for the wheels' tags.
    pub target: tags::Target,
}

impl PythonEnv {
    /// The PEP 508 marker environment of the image's interpreter on Linux.
    pub fn markers(&self) -> MarkerEnvironment {
        let (major, minor) = self.version;
        let python_version = format!("{major}.{minor}");
        let full_version = self.full_version.to_string();
        MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: &full_version,
            os_name: "posix",
            platform_machine: self.target.arch.as_str(),
            platform_python_implementation: "CPython",
            // The kernel is the host's at run time; markers on it are rare
            // and have no right answer at build time.
            platform_release: "",
            platform_system: "Linux",
            platform_version: "",
            python_full_version: &full_version,
            python_version: &python_version,
            sys_platform: "linux",
        })
        .expect("a Version and two numbers print as parseable versions")
    }
}
