//! Reading ahead: every project's listing and its likely version's core
//! metadata fetched as soon as the project's name is known, on a few
//! threads, while pubgrub decides one package at a time.
//!
//! pubgrub asks its questions one after the other, and each answer waits
//! on the network (a listing, then a `.metadata` file): asked in turn,
//! a cold resolution of 40 projects is 80 round trips end to end. uv walks
//! ahead of its solver; so does this module. When a requirement names a
//! project, a worker lists it, guesses the version pip's finder would take
//! for the requirement, narrowed by the top-level requirements and the
//! constraints on the project, which hold whoever asks (the newest
//! installable release in that range, see [`guess`]), reads that wheel's metadata and names that
//! version's own dependencies in turn. The resolver then finds most
//! answers waiting, or in flight (it waits for the one fetch rather than
//! starting another).
//!
//! Reading ahead never changes the resolution: the provider asks the same
//! questions in the same order, and an answer is the [`Source`]'s whatever
//! thread fetched it. A guess that turns out wrong (backtracking, a
//! constraint) costs a fetch nobody reads, never an answer. A failed fetch
//! ahead is forgotten: the resolver asks again itself and reports the
//! error as it always did.
//!
//! A version pubgrub has decided on is also handed to
//! [`Source::download_ahead`], so that its wheel downloads while the rest
//! is resolved; those go after every listing and metadata fetch waiting.
//! When the resolution ends, work not started is dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use pep440_rs::Version;
use pep508_rs::{ExtraName, MarkerEnvironment, PackageName, VersionOrUrl};

use super::super::dist::{DistFile, DistKind};
use super::super::metadata::CoreMetadata;
use super::super::tags::Tag;
use super::range::{specifiers_range, Range};
use super::{Source, SourceError};

/// Fetches at once, ahead of the resolver. Listings and `.metadata`
/// files are small: the round trip is the cost, so more than the
/// downloader's eight pay off.
pub(super) const WORKERS: usize = 16;

/// A fetch kept for the resolver: under way on some thread, or done.
enum Slot<T> {
    Fetching,
    Done(Arc<T>),
}

/// A project to walk: list it, guess its version for `range`, read that
/// version's metadata and walk its dependencies (those `extras` add too).
struct Walk {
    name: PackageName,
    range: Range,
    extras: Vec<ExtraName>,
}

#[derive(Default)]
struct State {
    walks: VecDeque<Walk>,
    downloads: VecDeque<DistFile>,
    /// Walks queued once: by name, range and extras.
    walked: HashSet<String>,
    /// Versions whose metadata a walk has read (or is reading).
    guessed: HashSet<(PackageName, Version, Vec<ExtraName>)>,
    downloading: HashSet<String>,
    files: HashMap<PackageName, Slot<Vec<DistFile>>>,
    metadata: HashMap<String, Slot<CoreMetadata>>,
    /// What the top-level requirements and constraints allow, by project.
    narrow: HashMap<PackageName, Range>,
    /// The resolution ended: workers stop.
    done: bool,
}

/// Calls [`Ahead::finish`] when dropped.
pub(super) struct FinishOnDrop<'r, 'a>(pub(super) &'r Ahead<'a>);

impl Drop for FinishOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// What a guess needs to know of the image.
pub(super) struct Image<'a> {
    pub(super) tag_ranks: HashMap<Tag, usize>,
    pub(super) python: &'a Version,
    pub(super) markers: &'a MarkerEnvironment,
    pub(super) pre: bool,
}

/// The listings and metadata fetched so far, and the work queued.
pub(super) struct Ahead<'a> {
    source: &'a dyn Source,
    image: Image<'a>,
    /// Whether workers run: without them nothing is queued, and every
    /// fetch happens on the resolver's thread when it asks.
    enabled: bool,
    state: Mutex<State>,
    /// Signalled when work is queued, a fetch ends, or the resolution does.
    changed: Condvar,
}

impl<'a> Ahead<'a> {
    pub(super) fn new(source: &'a dyn Source, image: Image<'a>, enabled: bool) -> Ahead<'a> {
        Ahead {
            source,
            image,
            enabled,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'g>(&self, guard: MutexGuard<'g, State>) -> MutexGuard<'g, State> {
        self.changed.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    /// The project's files: fetched ahead, or waited for when a worker is
    /// fetching them, or fetched now.
    pub(super) fn files(&self, name: &PackageName) -> Result<Arc<Vec<DistFile>>, SourceError> {
        once(
            self,
            |s| &mut s.files,
            name.clone(),
            || self.source.files(name),
        )
    }

    /// A wheel's core metadata, likewise.
    pub(super) fn metadata(&self, wheel: &DistFile) -> Result<Arc<CoreMetadata>, SourceError> {
        once(
            self,
            |s| &mut s.metadata,
            file_key(wheel),
            || self.source.metadata(wheel).map(Arc::new),
        )
    }

    /// Every requirement on `name` is narrowed to `range` (a top-level
    /// requirement or a constraint): guesses for it stay within.
    pub(super) fn narrow(&self, name: &PackageName, range: &Range) {
        let mut state = self.lock();
        let narrowed = match state.narrow.get(name) {
            Some(r) => r.intersection(range),
            None => range.clone(),
        };
        state.narrow.insert(name.clone(), narrowed);
    }

    /// A requirement's project (and `extras`) will be asked about:
    /// walk it ahead.
    pub(super) fn want(&self, name: &PackageName, range: &Range, extras: &[ExtraName]) {
        if !self.enabled {
            return;
        }
        let mut state = self.lock();
        let range = match state.narrow.get(name) {
            Some(r) => r.intersection(range),
            None => range.clone(),
        };
        let key = format!("{name}[{extras:?}]{range}");
        if state.done || !state.walked.insert(key) {
            return;
        }
        state.walks.push_back(Walk {
            name: name.clone(),
            range,
            extras: extras.to_vec(),
        });
        drop(state);
        self.changed.notify_one();
    }

    /// The resolver decided on this wheel's version: have it downloaded.
    pub(super) fn download(&self, wheel: &DistFile) {
        if !self.enabled {
            return;
        }
        let mut state = self.lock();
        if state.done || !state.downloading.insert(file_key(wheel)) {
            return;
        }
        state.downloads.push_back(wheel.clone());
        drop(state);
        self.changed.notify_one();
    }

    /// Ends the work: queued walks and downloads are dropped, workers
    /// return once their current fetch ends.
    pub(super) fn finish(&self) {
        let mut state = self.lock();
        state.done = true;
        state.walks.clear();
        state.downloads.clear();
        drop(state);
        self.changed.notify_all();
    }

    /// A worker's loop: walks first, then downloads, until [`Self::finish`].
    pub(super) fn work(&self) {
        loop {
            let mut state = self.lock();
            let job = loop {
                if state.done {
                    return;
                }
                if let Some(walk) = state.walks.pop_front() {
                    break Ok(walk);
                }
                if let Some(wheel) = state.downloads.pop_front() {
                    break Err(wheel);
                }
                state = self.wait(state);
            };
            drop(state);
            match job {
                Ok(walk) => self.walk(walk),
                Err(wheel) => self.source.download_ahead(&wheel),
            }
        }
    }

    /// Lists the project, reads its likely version's metadata and queues
    /// that version's dependencies. Failures end the walk quietly.
    ///
    /// When the source has the project's listing and that version's
    /// metadata from an earlier run at no cost ([`Source::kept_files`]),
    /// the dependencies they name are queued first, so that other workers
    /// ask for them while this one waits for the listing: a warm
    /// resolution then sends its requests at once instead of one level of
    /// the dependency tree after the other. The listing the index gives
    /// now is walked as ever; a version already walked is not walked
    /// twice.
    fn walk(&self, walk: Walk) {
        if let Some(kept) = self.source.kept_files(&walk.name) {
            if let Some(wheel) = guess(&self.image, &walk.name, &kept, &walk.range) {
                if let Some(metadata) = self.source.kept_metadata(wheel) {
                    if self.first_guess(&walk, wheel) {
                        self.want_dependencies(&walk, &metadata);
                    }
                }
            }
        }
        let Ok(files) = self.files(&walk.name) else {
            return;
        };
        let Some(wheel) = guess(&self.image, &walk.name, &files, &walk.range) else {
            return;
        };
        if !self.first_guess(&walk, wheel) {
            return;
        }
        let Ok(metadata) = self.metadata(wheel) else {
            return;
        };
        self.want_dependencies(&walk, &metadata);
    }

    /// Notes that `wheel`'s version is walked with the walk's extras;
    /// false when it was already.
    fn first_guess(&self, walk: &Walk, wheel: &DistFile) -> bool {
        let key = (
            walk.name.clone(),
            wheel.version().clone(),
            walk.extras.clone(),
        );
        self.lock().guessed.insert(key)
    }

    /// Queues the dependencies `metadata` names for the image (with the
    /// walk's extras).
    fn want_dependencies(&self, walk: &Walk, metadata: &CoreMetadata) {
        for req in &metadata.requires_dist {
            if !req.marker.evaluate(self.image.markers, &walk.extras) {
                continue;
            }
            let range = match &req.version_or_url {
                None => Range::full(),
                Some(VersionOrUrl::VersionSpecifier(specs)) => specifiers_range(specs),
                Some(VersionOrUrl::Url(_)) => continue,
            };
            let extras: Vec<ExtraName> = req.extras.clone();
            self.want(&req.name, &range, &[]);
            if !extras.is_empty() {
                self.want(&req.name, &range, &extras);
            }
        }
    }
}

/// A fetch made once per key: the first asker fetches (with the lock
/// released), later askers wait for it. A failure is not kept: the slot
/// is emptied and the next asker fetches again, so the resolver sees its
/// own error.
fn once<K, T>(
    ahead: &Ahead<'_>,
    map: impl Fn(&mut State) -> &mut HashMap<K, Slot<T>>,
    key: K,
    fetch: impl FnOnce() -> Result<Arc<T>, SourceError>,
) -> Result<Arc<T>, SourceError>
where
    K: std::hash::Hash + Eq + Clone,
{
    let mut state = ahead.lock();
    loop {
        match map(&mut state).get(&key) {
            Some(Slot::Done(v)) => return Ok(Arc::clone(v)),
            Some(Slot::Fetching) => state = ahead.wait(state),
            None => break,
        }
    }
    map(&mut state).insert(key.clone(), Slot::Fetching);
    drop(state);
    let got = fetch();
    let mut state = ahead.lock();
    let out = match got {
        Ok(v) => {
            map(&mut state).insert(key, Slot::Done(Arc::clone(&v)));
            Ok(v)
        }
        Err(e) => {
            map(&mut state).remove(&key);
            Err(e)
        }
    };
    drop(state);
    ahead.changed.notify_all();
    out
}

/// A file's identity: its name and where it is.
fn file_key(file: &DistFile) -> String {
    format!("{}#{:?}", file.filename, file.location)
}

/// The wheel pip's finder would most likely take for `range` alone: of
/// the newest version in the range with a wheel for the image (its
/// `Requires-Python` admitting the image's Python, not yanked; a
/// pre-release only when `--pre` or the range names one, or no release
/// is left), the best-ranked wheel. `None` when no such version has a
/// wheel (a build is never started ahead).
fn guess<'f>(
    image: &Image<'_>,
    name: &PackageName,
    files: &'f [DistFile],
    range: &Range,
) -> Option<&'f DistFile> {
    let mut best: HashMap<&Version, (usize, &'f DistFile)> = HashMap::new();
    for file in files {
        let DistKind::Wheel(w) = &file.kind else {
            continue;
        };
        if w.name != *name || file.yanked || !range.contains(&w.version) {
            continue;
        }
        if file
            .requires_python
            .as_ref()
            .is_some_and(|rp| !rp.contains(image.python))
        {
            continue;
        }
        let Some(&rank) = w.tags().iter().filter_map(|t| image.tag_ranks.get(t)).min() else {
            continue;
        };
        let entry = best.entry(&w.version).or_insert((rank, file));
        if rank < entry.0 {
            *entry = (rank, file);
        }
    }
    let newest = |pre: bool| {
        best.iter()
            .filter(|(v, _)| pre || !v.any_prerelease())
            .max_by_key(|(v, _)| **v)
            .map(|(_, (_, f))| *f)
    };
    let pre = image.pre || range_names_prerelease(range);
    newest(pre).or_else(|| newest(true))
}

/// Whether a range's bounds name a pre-release (`>=2.0b1`): pip then
/// takes pre-releases for it.
fn range_names_prerelease(range: &Range) -> bool {
    use std::ops::Bound;
    range.iter().any(|(lo, hi)| {
        [lo, hi].into_iter().any(|b| match b {
            Bound::Included(v) | Bound::Excluded(v) => v.any_prerelease(),
            Bound::Unbounded => false,
        })
    })
}
