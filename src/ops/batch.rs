//! Several images built at once, as a compose file's services are: each
//! on its own thread, all on one shared store (whose writes are atomic,
//! so two builds that need the same blob both succeed), each reporting
//! under its name. One image failing does not stop the others; every
//! result comes back, in the order asked.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::digest::Digest;
use crate::exec::{self, BuildError, BuildOptions, BuildResult, Event};
use crate::image::Platform;
use crate::ops::images::{PlatformImage, Record};
use crate::registry;
use crate::store::Store;

/// One image to build.
#[derive(Debug, Clone)]
pub struct Job {
    /// The image's name, for reports and the summary.
    pub name: String,
    pub target: String,
    pub opts: BuildOptions,
    pub platforms: Vec<Platform>,
}

/// What one job made.
#[derive(Debug)]
pub struct Built {
    /// The manifest's digest (the index's for several platforms).
    pub digest: Digest,
    /// One result per platform.
    pub images: Vec<BuildResult>,
    pub elapsed: Duration,
}

impl Built {
    /// Compressed size of every layer of the (first platform's) image.
    pub fn size(&self) -> u64 {
        self.images.first().map_or(0, |r| {
            r.base_size
                + r.new_layers
                    .iter()
                    .map(|l| l.layer.descriptor.size)
                    .sum::<u64>()
        })
    }

    /// Layers hoist added that came from the cache, and that it wrote.
    pub fn reused_built(&self) -> (usize, usize) {
        let layers = self.images.iter().flat_map(|r| &r.new_layers);
        let reused = layers.clone().filter(|l| l.reused).count();
        (reused, layers.count() - reused)
    }
}

/// Runs one job: a single image, or an index over its platforms.
pub fn build_one(
    job: &Job,
    store: &Store,
    report: &mut dyn FnMut(Event),
    net: &dyn registry::Progress,
) -> Result<Built, BuildError> {
    let started = Instant::now();
    // A warning each platform repeats (the image runs as root) is said once.
    let mut said = std::collections::HashSet::new();
    let report = &mut |e: Event| match &e {
        Event::Warning(w) if !said.insert(w.clone()) => {}
        _ => report(e),
    };
    let opts = crate::exec::prepare(&job.opts, job.platforms.len(), store, report, net)?;
    let built = if job.platforms.len() > 1 {
        let multi = exec::build_platforms(&opts, &job.platforms, store, report, net)?;
        Built {
            digest: multi.index.digest,
            images: multi.images,
            elapsed: started.elapsed(),
        }
    } else {
        let r = exec::build(&opts, store, report, net)?;
        Built {
            digest: r.image.manifest.digest.clone(),
            images: vec![r],
            elapsed: started.elapsed(),
        }
    };
    // For `hoist images`, and so that a prune keeps what was built.
    crate::ops::images::record(store, record_of(job, &built, SystemTime::now()))?;
    Ok(built)
}

/// Builds every job at once; `report` gets each event with its job's
/// name.
pub fn build_all(
    jobs: &[Job],
    store: &Store,
    report: &(dyn Fn(&Job, Event) + Sync),
    net: &dyn registry::Progress,
) -> Vec<Result<Built, BuildError>> {
    if jobs.len() == 1 {
        let mut one = |e: Event| report(&jobs[0], e);
        return vec![build_one(&jobs[0], store, &mut one, net)];
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|job| {
                scope.spawn(move || {
                    let mut each = |e: Event| report(job, e);
                    build_one(job, store, &mut each, net)
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(jobs)
            .map(|(h, job)| {
                h.join()
                    .unwrap_or_else(|_| Err(BuildError::Panicked(job.name.clone())))
            })
            .collect()
    })
}

/// The record of `built`, made from `job` at time `now`, for `hoist
/// images` (the records know nothing of jobs: batch fills them in).
fn record_of(job: &Job, built: &Built, now: SystemTime) -> Record {
    let mut seen: Vec<&Digest> = Vec::new();
    let mut size = 0;
    let mut platforms = Vec::new();
    for r in &built.images {
        let m = &r.image.manifest_json;
        let blobs = std::iter::once(&m.config).chain(&m.layers);
        for d in blobs.clone() {
            if !seen.contains(&&d.digest) {
                seen.push(&d.digest);
                size += d.size;
            }
        }
        platforms.push(PlatformImage {
            platform: r
                .image
                .manifest
                .platform
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_else(|| job.opts.platform.to_string()),
            manifest: r.image.manifest.digest.clone(),
            config: m.config.digest.clone(),
            layers: m.layers.len(),
            size: blobs.map(|d| d.size).sum(),
        });
    }
    let outputs = job
        .opts
        .outputs
        .iter()
        .map(|o| o.to_string())
        .chain(job.opts.push.iter().map(|r| format!("docker://{r}")))
        .collect();
    Record {
        manifest: built.digest.clone(),
        name: job.name.clone(),
        target: job.target.clone(),
        tags: job.opts.tags.clone(),
        platforms,
        size,
        built: now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        outputs,
    }
}
