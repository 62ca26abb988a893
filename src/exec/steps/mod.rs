//! The step kinds the executor runs, one file each: the user layer, the
//! app layer over the build context, copies from stages, host steps, run
//! steps through the sandbox, and the image config rules. Each step turns
//! its inputs into a layer (or a config change) the executor records under
//! the step's key; none of them decides what is cached.

pub mod accounts;
pub mod app;
pub mod config;
pub mod context;
pub mod copy;
pub mod download;
pub mod git;
pub mod host;
pub mod mounts;
pub mod paths;
pub mod place;
pub mod run;
pub mod untar;
pub mod user;

/// What `f` is handed: the unpacked root and the owners the unpack did not
/// set on the host.
type Unpacked<'a> = (&'a std::path::Path, Vec<crate::sandbox::rootfs::Owner>);

/// Unpacks `ground` into a scratch folder under the store's `sandbox/`
/// (named `prefix...`), as the sandbox would, and hands `f` the root
/// folder and the owners the unpack did not set on the host; the folder
/// goes when `f` returns, whatever it returned.
pub(crate) fn with_unpacked<T>(
    store: &crate::store::Store,
    ground: &crate::sandbox::Ground,
    prefix: &str,
    f: impl FnMut(Unpacked<'_>) -> Result<T, crate::exec::BuildError>,
) -> Result<T, crate::exec::BuildError> {
    with_unpacked_only(store, ground, prefix, &[String::new()], f)
}

/// [`with_unpacked`], writing only what lies under `wanted` (image paths)
/// and the folders on the way ([`crate::sandbox::rootfs::unpack_only`]):
/// a copy of a few paths out of a stage does not write the stage's other
/// thousands of files. The whole tree where a link stands on the way, and
/// again when `f` fails on the cut-down tree, so that its error speaks of
/// the real one (a missing path's folder listed whole).
pub(crate) fn with_unpacked_only<T>(
    store: &crate::store::Store,
    ground: &crate::sandbox::Ground,
    prefix: &str,
    wanted: &[String],
    mut f: impl FnMut(Unpacked<'_>) -> Result<T, crate::exec::BuildError>,
) -> Result<T, crate::exec::BuildError> {
    let parent = store.root().join("sandbox");
    let made = |source| crate::exec::BuildError::WriteFile {
        path: parent.clone(),
        source,
    };
    std::fs::create_dir_all(&parent).map_err(made)?;
    let scratch = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&parent)
        .map_err(made)?;
    let root = scratch.path().join("rootfs");
    let fresh = || {
        crate::sandbox::remove_tree(&root);
        std::fs::create_dir(&root).map_err(|source| crate::exec::BuildError::WriteFile {
            path: root.clone(),
            source,
        })
    };
    let result = (|| {
        let cut = !wanted.iter().any(|w| w.trim_matches('/').is_empty());
        if cut {
            fresh()?;
            if let Some(owners) =
                crate::sandbox::rootfs::unpack_only(store, &ground.layers, &root, wanted)?
            {
                if let Ok(done) = f((&root, owners)) {
                    return Ok(done);
                }
            }
        }
        fresh()?;
        let owners = crate::sandbox::rootfs::unpack(store, &ground.layers, &root)?;
        f((&root, owners))
    })();
    crate::sandbox::remove_tree(scratch.path());
    result
}
