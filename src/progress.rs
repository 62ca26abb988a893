//! Rendering registry transfers for people: a bar per blob on a terminal,
//! one plain line per finished blob elsewhere (CI logs), nothing with
//! `--quiet`. The library reports [`crate::registry::Event`]s; this is the
//! only place that turns them into output, and it is used by the CLI.

use std::collections::HashMap;
use std::io::{IsTerminal, Write as _};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::registry::{Direction, Event, Progress};

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

/// Sizes for people, in decimal units as registries and docker show them.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}
