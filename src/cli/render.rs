//! Rendering registry transfers for people: a bar per blob on a terminal,
//! one plain line per finished blob elsewhere (CI logs), nothing with
//! `--quiet`. The library reports [`hoist::registry::Event`]s; this is the
//! only place that turns them into output, and it is used by the CLI.

use std::collections::HashMap;
use std::io::{IsTerminal, Write as _};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use hoist::exec::Event as BuildEvent;
use hoist::registry::{Direction, Event, Progress};
use hoist::store::human_size;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bars, redrawn in place (stderr is a terminal).
    Bars,
    /// A line per finished blob and per retry (stderr is a file or pipe).
    Lines,
    /// Nothing.
    Quiet,
}

impl Mode {
    /// Bars on a terminal, lines elsewhere, nothing when `quiet`.
    pub fn detect(quiet: bool) -> Mode {
        match (quiet, std::io::stderr().is_terminal()) {
            (true, _) => Mode::Quiet,
            (false, true) => Mode::Bars,
            (false, false) => Mode::Lines,
        }
    }
}

/// A [`Progress`] that renders to stderr.
pub struct Renderer {
    mode: Mode,
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Renderer {
    pub fn new(mode: Mode) -> Renderer {
        let multi = MultiProgress::with_draw_target(match mode {
            Mode::Bars => ProgressDrawTarget::stderr(),
            _ => ProgressDrawTarget::hidden(),
        });
        Renderer {
            mode,
            multi,
            bars: Mutex::new(HashMap::new()),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Prints a line above the bars (or plainly), unless quiet.
    pub fn line(&self, text: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Bars => {
                let _ = self.multi.println(text);
            }
            // Not eprintln!, which panics when stderr is a closed pipe.
            Mode::Lines => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }

    fn bar(&self, key: &str, size: u64, label: String) {
        let style = ProgressStyle::with_template(
            "{prefix} {bar:30} {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = self.multi.add(ProgressBar::new(size).with_style(style));
        bar.set_prefix(label);
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(key.to_owned(), bar);
        }
    }
}

impl Progress for Renderer {
    fn event(&self, e: &Event<'_>) {
        match e {
            Event::BlobStart {
                digest,
                size,
                direction,
            } if self.mode == Mode::Bars => {
                let verb = match direction {
                    Direction::Download => "pull",
                    Direction::Upload => "push",
                };
                self.bar(digest.as_str(), *size, format!("{verb} {}", digest.short()));
            }
            Event::BlobProgress { digest, done, .. } => {
                if let Some(bar) = self
                    .bars
                    .lock()
                    .ok()
                    .and_then(|b| b.get(digest.as_str()).cloned())
                {
                    bar.set_position(*done);
                }
            }
            Event::BlobDone {
                digest,
                size,
                outcome,
            } => {
                if let Some(bar) = self
                    .bars
                    .lock()
                    .ok()
                    .and_then(|mut b| b.remove(digest.as_str()))
                {
                    bar.finish_and_clear();
                }
                self.line(&format!(
                    "blob    {} {:>10}  {outcome:?}",
                    digest.short(),
                    human_size(*size)
                ));
            }
            Event::ManifestPushed { reference, digest } => {
                self.line(&format!("manifest {reference} {}", digest.short()))
            }
            Event::Retrying {
                what,
                retry,
                wait,
                why,
            } => self.line(&format!(
                "retry   {what} (try {retry}, in {:.1}s): {why}",
                wait.as_secs_f64()
            )),
            _ => {}
        }
    }
}

/// One line for a build event.
pub(crate) fn event_line(e: BuildEvent, color: bool) -> String {
    match e {
        BuildEvent::Base {
            source,
            digest,
            platform,
            layers,
        } => format!("base    {source} {platform} {} ({layers} layers)", digest.short()),
        BuildEvent::Layer {
            what, digest, size, ..
        } => format!("layer   {} {:>10}  {what}", digest.short(), human_size(size)),
        BuildEvent::UserReused { name, uid, gid } => {
            format!("user    {name} ({uid}:{gid}) already in the base, reused")
        }
        BuildEvent::Deps(d) => {
            let how = if d.reused {
                "reused from the cache".to_owned()
            } else {
                format!(
                    "built: {} downloaded ({}), {} from the store",
                    d.downloaded,
                    human_size(d.downloaded_bytes),
                    d.from_store
                )
            };
            let how = match d.built_sdists {
                0 => how,
                n => format!("{how}; {n} sdists built into wheels in the sandbox"),
            };
            let bins = if d.ecosystem == "pip" {
                "scripts"
            } else {
                "bin links"
            };
            format!(
                "deps    {} from {}: {} packages, {} files, {} {bins}; {how}",
                d.ecosystem, d.manifest, d.packages, d.files, d.bin_links
            )
        }
        BuildEvent::Output { output } => format!("wrote   {output}"),
        BuildEvent::Step(s) if s.ran => format!("step    ran `{}` ({})", s.command, s.why),
        BuildEvent::Step(s) => format!("step    skipped `{}`: {}", s.command, s.why),
        BuildEvent::Pushed {
            target,
            digest,
            uploaded,
            mounted,
            skipped,
            bytes,
        } => format!(
            "pushed  {target}@{digest}: {uploaded} uploaded ({}), {mounted} mounted, {skipped} already there",
            human_size(bytes)
        ),
        BuildEvent::Cache(note) => cache_line(note),
        BuildEvent::Stage {
            stage,
            what,
            digest,
            reused,
        } => format!(
            "stage   {stage}: {} {what} ({})",
            digest.short(),
            if reused { "reused" } else { "built" }
        ),
        BuildEvent::Warning(w) if color => format!("\x1b[33mwarning\x1b[0m {w}"),
        BuildEvent::Warning(w) => format!("warning {w}"),
    }
}

/// One line for what the registry cache did.
fn cache_line(note: hoist::cache::remote::Note) -> String {
    use hoist::cache::remote::Note;
    match note {
        Note::Hit {
            kind,
            from,
            downloaded,
            bytes,
        } => format!(
            "cache   {kind} hit in {from}: {downloaded} blobs downloaded ({})",
            human_size(bytes)
        ),
        Note::Shared {
            kind,
            to,
            uploaded,
            bytes,
        } => format!(
            "cache   {kind} shared to {to}: {uploaded} blobs uploaded ({})",
            human_size(bytes)
        ),
        Note::Problem(p) => format!("cache   {p}"),
    }
}
