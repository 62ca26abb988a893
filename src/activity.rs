//! Signs of life from long work: resolving dependencies, downloading a
//! wheel or an npm tarball, compressing a layer. The library prints
//! nothing; it reports [`Event`]s and the CLI draws them (`cli/render.rs`).
//!
//! Why a process-wide sink rather than a parameter: the work that takes
//! seconds sits deep below the executor (a resolver's metadata reads, a
//! downloader's read loop, the layer writer), under signatures that carry
//! no reporter. Threading one through every installer would change them
//! all for what is only a view. This is the shape of the `log` facade:
//! the library calls [`Task`]s, the binary installs one [`set_sink`]; with
//! none installed a task costs a branch.
//!
//! Overhead stays small: a task counts with atomics (no lock per read or
//! write) and reports progress at most every [`EVERY`]; a download or a
//! compression becomes visible only once it has lasted that long, so a
//! build of many small layers does not flicker. A resolution is announced
//! at once (it is the long wait the user should see begin).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How often a task reports progress, at most.
pub const EVERY: Duration = Duration::from_millis(100);

/// What kind of work a task is, and so what its counts mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Dependency resolution; counts packages (read / found so far).
    Resolve,
    /// A package download (a wheel, an npm tarball); counts bytes.
    Download,
    /// A layer's tar stream going into the compressor; counts bytes in.
    Compress,
}

/// What a task reports.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// A task became visible.
    Start {
        id: u64,
        kind: Kind,
        /// What it works on: `requirements.txt`, a wheel's file name, a
        /// layer.
        name: &'a str,
        /// What there is to do, when known (else 0).
        total: u64,
    },
    /// Where it is: `done` of `total` (a total of 0 is not known yet),
    /// `elapsed` after its start (so a rate is `done / elapsed`: the task
    /// shows only once it has run a while, and its first report already
    /// counts what came before).
    Progress {
        id: u64,
        done: u64,
        total: u64,
        elapsed: Duration,
    },
    /// It ended after `elapsed`: `completed` when its work said so
    /// ([`Task::complete`]), else it was abandoned (an error) or its end
    /// is all there is to say (a download).
    Done {
        id: u64,
        done: u64,
        total: u64,
        elapsed: Duration,
        completed: bool,
    },
}

type Sink = Box<dyn Fn(&Event<'_>) + Send + Sync>;

static SINK: OnceLock<Sink> = OnceLock::new();
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Installs the process's one receiver of events; false when one was
/// installed already (the first stays).
pub fn set_sink(sink: impl Fn(&Event<'_>) + Send + Sync + 'static) -> bool {
    SINK.set(Box::new(sink)).is_ok()
}

fn emit(e: &Event<'_>) {
    if let Some(sink) = SINK.get() {
        sink(e);
    }
}

/// One piece of long work. Counting is lock-free; [`Drop`] reports its end.
pub struct Task {
    id: u64,
    kind: Kind,
    name: String,
    started: Instant,
    done: AtomicU64,
    total: AtomicU64,
    /// Nanoseconds after `started` of the last report.
    last: AtomicU64,
    shown: AtomicBool,
    completed: AtomicBool,
    /// False when no sink is installed: every call returns at once.
    live: bool,
}

impl Task {
    /// Starts a task; `total` is 0 when not known.
    pub fn start(kind: Kind, name: impl Into<String>, total: u64) -> Task {
        let live = SINK.get().is_some();
        let task = Task {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            kind,
            name: if live { name.into() } else { String::new() },
            started: Instant::now(),
            done: AtomicU64::new(0),
            total: AtomicU64::new(total),
            last: AtomicU64::new(0),
            shown: AtomicBool::new(false),
            completed: AtomicBool::new(false),
            live,
        };
        if live && kind == Kind::Resolve {
            task.show();
        }
        task
    }

    fn show(&self) {
        if !self.shown.swap(true, Ordering::Relaxed) {
            emit(&Event::Start {
                id: self.id,
                kind: self.kind,
                name: &self.name,
                total: self.total.load(Ordering::Relaxed),
            });
        }
    }

    /// Counts `n` more done.
    pub fn add(&self, n: u64) {
        if self.live {
            self.done.fetch_add(n, Ordering::Relaxed);
            self.tick();
        }
    }

    /// Counts `n` more to do.
    pub fn add_total(&self, n: u64) {
        if self.live {
            self.total.fetch_add(n, Ordering::Relaxed);
            self.tick();
        }
    }

    /// Reports progress when [`EVERY`] has passed since the last report;
    /// of several threads counting at once, one reports.
    fn tick(&self) {
        let now = self.started.elapsed().as_nanos() as u64;
        let last = self.last.load(Ordering::Relaxed);
        if now.saturating_sub(last) < EVERY.as_nanos() as u64 {
            return;
        }
        if self
            .last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        self.show();
        emit(&Event::Progress {
            id: self.id,
            done: self.done.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            elapsed: Duration::from_nanos(now),
        });
    }

    /// Marks the work done (not abandoned): its end reports `completed`.
    pub fn complete(&self) {
        self.completed.store(true, Ordering::Relaxed);
    }

    /// `inner`, counting what is read from it into this task.
    pub fn reader<R: std::io::Read>(self, inner: R) -> Reading<R> {
        Reading { inner, task: self }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if self.live && self.shown.load(Ordering::Relaxed) {
            emit(&Event::Done {
                id: self.id,
                done: self.done.load(Ordering::Relaxed),
                total: self.total.load(Ordering::Relaxed),
                elapsed: self.started.elapsed(),
                completed: self.completed.load(Ordering::Relaxed),
            });
        }
    }
}

/// A reader that counts its bytes into a [`Task`] (a download).
pub struct Reading<R> {
    inner: R,
    task: Task,
}

impl<R: std::io::Read> std::io::Read for Reading<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.task.add(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a sink, a task is inert: it counts nothing and names
    /// nothing (no allocation for the name).
    #[test]
    fn without_a_sink_a_task_does_nothing() {
        // The unit tests install no sink.
        let t = Task::start(Kind::Download, "a.whl", 10);
        t.add(5);
        t.add_total(1);
        assert!(!t.live);
        assert_eq!(t.done.load(Ordering::Relaxed), 0);
        assert_eq!(t.name, "");
        let mut r = t.reader(&b"abc"[..]);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut out).unwrap_or_default();
        assert_eq!(out, b"abc");
    }
}
