//! The dependencies' install scripts, run in the sandbox
//! (`scripts = "sandbox"`).
//!
//! `npm ci` runs each package's preinstall, install and postinstall
//! scripts (or `node-gyp rebuild` for a package with a binding.gyp) after
//! laying node_modules out; native addons are built that way. hoist lays
//! node_modules out natively as always, then, only when the selection
//! has packages the lockfile marks `hasInstallScript`, unpacks base, run
//! steps and that layer into its sandbox and runs the scripts there with
//! the image's own node, compilers and headers (a `[[run]]` step installs
//! them), so what they build matches the image, not the host. The deps
//! layer then becomes the native one with the scripts' changes under
//! node_modules applied: files they wrote (the addon's build/ folder)
//! added, files they changed replaced, files they removed gone. Changes
//! elsewhere (a cache under $HOME) stay out, and are counted.
//!
//! The order is npm's (arborist's rebuild): every preinstall script,
//! then every install script, then every postinstall script, the
//! packages shallowest first and then by path; one at a time here, where
//! npm runs a few at once.
//!
//! The result is cached by the native layer, the ground's layers, the
//! packages and this runner, so a rebuild with the same inputs runs
//! nothing.

use crate::digest::Digest;
use crate::layer::{Compression, ImagePath, Layer};
use crate::sandbox::{self, Ground, SandboxError, Step};
use crate::store::Store;

/// The lifecycle runner, run by the image's node.
const RUNNER: &str = include_str!("lifecycle.js");

/// The store's cache-entry kind for scripted deps layers.
pub const KEY_KIND: &str = "deps-npm-scripts";

/// What running the scripts made.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub layer: Layer,
    pub reused: bool,
    /// Changes outside node_modules, left out of the layer.
    pub left_out: usize,
}

/// Runs the install scripts of `packages` (lockfile keys such as
/// `node_modules/epoll`) over `native` on `ground`; the project is at
/// `workdir` in the image.
#[allow(clippy::too_many_arguments)]
pub fn run(
    store: &Store,
    ground: &Ground,
    native: &Layer,
    workdir: &ImagePath,
    packages: &[String],
    no_cache: bool,
    compression: Compression,
    epoch: u64,
) -> Result<Scripted, SandboxError> {
    let mut order: Vec<&String> = packages.iter().collect();
    order.sort_by(|a, b| {
        let depth = |p: &str| p.matches("node_modules/").count();
        depth(a).cmp(&depth(b)).then(a.cmp(b))
    });
    let key = Digest::of(
        format!(
            "hoist npm scripts v1\n{}\n{}\n{}\n{:?}\n{compression:?} {epoch}\n{}\n",
            native.diff_id,
            ground.key(),
            workdir.absolute(),
            order,
            Digest::of(RUNNER.as_bytes()),
        )
        .as_bytes(),
    )
    .hex()
    .to_owned();
    if !no_cache {
        if let Some(layer) = crate::cache::layer::lookup(store, KEY_KIND, &key)? {
            return Ok(Scripted {
                layer,
                reused: true,
                left_out: 0,
            });
        }
    }

    let project = workdir.absolute();
    let mut command = vec![
        "node".to_owned(),
        "-e".to_owned(),
        RUNNER.to_owned(),
        project.clone(),
    ];
    command.extend(order.iter().map(|p| p.to_string()));
    let step = Step {
        command,
        env: Vec::new(),
        workdir: Some(project),
        user: None,
        timeout: None,
        mounts: Vec::new(),
        secret_env: Vec::new(),
    };
    let modules = format!("{}/node_modules", workdir.as_str());
    let under = format!("{modules}/");
    let keep = |p: &str| p == modules || p.starts_with(&under);
    let ground = ground.with(&native.descriptor);
    let (layer, left_out) = sandbox::run_in(store, &ground, &step, &[], |root, walked| {
        sandbox::diff::write_over(
            store,
            &native.descriptor,
            root,
            walked,
            &keep,
            compression,
            epoch,
        )
    })
    .map_err(|e| match e {
        SandboxError::Failed { how, output, .. } => SandboxError::Failed {
            command: format!(
                "the install scripts of {} (scripts = \"sandbox\")",
                packages.join(", ")
            ),
            how,
            output,
        },
        other => other,
    })?;
    crate::cache::layer::remember(store, KEY_KIND, &key, &layer)?;
    Ok(Scripted {
        layer,
        reused: false,
        left_out,
    })
}
