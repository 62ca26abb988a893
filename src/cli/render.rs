//! Rendering what the library reports, for people: the `--progress`
//! modes. `tty` draws a live view (a bar per registry blob and per
//! download, a spinner for a resolution or a layer being compressed,
//! finished work as lines above them); `plain` prints one line per
//! finished step, stage, layer and blob, with no redrawing and no ANSI
//! codes, for CI logs; `quiet` prints nothing (errors still reach stderr
//! from `main`); `auto` is `tty` when stderr is a terminal, else `plain`.
//! The library reports [`hoist::registry::Event`]s, [`hoist::exec::Event`]s
//! and [`hoist::activity::Event`]s; this is the only place that turns them
//! into output. Stdout carries only results, in every mode.

use std::collections::HashMap;
use std::io::{IsTerminal, Write as _};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{
    HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike,
};

use hoist::activity::{Event as Activity, Kind};
use hoist::exec::Event as BuildEvent;
use hoist::registry::{Direction, Event, Progress};
use hoist::store::human_size;

/// `--progress`: how progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressArg {
    /// `tty` when stderr is a terminal, `plain` otherwise.
    Auto,
    /// A live view, redrawn in place.
    Tty,
    /// One line per finished step, stage, layer and blob; no redrawing.
    Plain,
    /// Nothing but errors.
    Quiet,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bars, redrawn in place.
    Bars,
    /// A line per finished piece of work.
    Lines,
    /// Nothing.
    Quiet,
}

impl Mode {
    /// The mode `--progress` (and `--quiet`, its `quiet` alias) asks for;
    /// `auto` looks at whether stderr is a terminal.
    pub fn detect(progress: ProgressArg, quiet: bool) -> Mode {
        match (quiet, progress) {
            (true, _) | (_, ProgressArg::Quiet) => Mode::Quiet,
            (_, ProgressArg::Tty) => Mode::Bars,
            (_, ProgressArg::Plain) => Mode::Lines,
            (_, ProgressArg::Auto) if std::io::stderr().is_terminal() => Mode::Bars,
            (_, ProgressArg::Auto) => Mode::Lines,
        }
    }
}

/// Stderr as a terminal even when it is not one (`--progress tty` into a
/// file or pipe): indicatif's own stderr target draws nothing there.
#[derive(Debug)]
struct ForcedTerm;

impl ForcedTerm {
    fn put(&self, s: &str) -> std::io::Result<()> {
        std::io::stderr().lock().write_all(s.as_bytes())
    }

    /// Moves the cursor `n` places (a terminal reads 0 as 1: nothing is
    /// written then).
    fn cursor(&self, n: usize, direction: char) -> std::io::Result<()> {
        match n {
            0 => Ok(()),
            n => self.put(&format!("\x1b[{n}{direction}")),
        }
    }
}

impl TermLike for ForcedTerm {
    fn width(&self) -> u16 {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(100)
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'A')
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'B')
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'C')
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'D')
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.put(&format!("{s}\n"))
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.put(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.put("\r\x1b[2K")
    }
    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Renders every kind of event to stderr.
pub struct Renderer {
    mode: Mode,
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// The names of the activities shown, by id.
    tasks: Mutex<HashMap<u64, (Kind, String)>>,
}

/// A style from a template (the templates are constants, so the fallback
/// is never taken).
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

const BYTES_BAR: &str = "{prefix:<32} {bar:30} {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12}";
/// A download: its rate is the task's own average (see
/// [`hoist::activity::Event::Progress`]), in the message.
const DOWNLOAD_BAR: &str = "{prefix:<32} {bar:30} {bytes:>10}/{total_bytes:<10} {msg:>12}";

impl Renderer {
    pub fn new(mode: Mode) -> Renderer {
        let target = match mode {
            Mode::Bars if std::io::stderr().is_terminal() => ProgressDrawTarget::stderr(),
            Mode::Bars => ProgressDrawTarget::term_like_with_hz(Box::new(ForcedTerm), 20),
            _ => ProgressDrawTarget::hidden(),
        };
        Renderer {
            mode,
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
            tasks: Mutex::new(HashMap::new()),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Takes every bar still drawn off the screen (a transfer that failed
    /// never reports its end), so that an error prints on a clean line.
    pub fn clear(&self) {
        if let Ok(mut bars) = self.bars.lock() {
            for (_, bar) in bars.drain() {
                bar.finish_and_clear();
            }
        }
        let _ = self.multi.clear();
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

    /// Adds a bar under the lines; it is drawn only through the
    /// [`MultiProgress`] (a bar drawn before it was added would stay on the
    /// screen, never cleared), so set its prefix after this.
    fn add_bar(&self, key: String, bar: ProgressBar) -> ProgressBar {
        let bar = self.multi.add(bar);
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(key, bar.clone());
        }
        bar
    }

    fn bar(&self, key: &str, size: u64, label: String) {
        let bar = self.add_bar(
            key.to_owned(),
            ProgressBar::new(size).with_style(style(BYTES_BAR)),
        );
        bar.set_prefix(label);
    }

    fn get_bar(&self, key: &str) -> Option<ProgressBar> {
        self.bars.lock().ok().and_then(|b| b.get(key).cloned())
    }

    fn clear_bar(&self, key: &str) {
        if let Some(bar) = self.bars.lock().ok().and_then(|mut b| b.remove(key)) {
            bar.finish_and_clear();
        }
    }

    /// Draws long work the library reports: a resolution, a download, a
    /// layer being compressed. Plain lines say when a resolution starts and
    /// ends; downloads and compressions are summed up by the deps and layer
    /// lines that follow them.
    pub fn activity(&self, e: &Activity<'_>) {
        let key = |id: u64| format!("task:{id}");
        match *e {
            Activity::Start {
                id,
                kind,
                name,
                total,
            } => {
                if let Ok(mut t) = self.tasks.lock() {
                    t.insert(id, (kind, name.to_owned()));
                }
                if kind == Kind::Resolve {
                    self.line(&format!("resolve {name}: resolving dependencies"));
                }
                if self.mode != Mode::Bars {
                    return;
                }
                let bar = self.add_bar(
                    key(id),
                    match kind {
                        Kind::Resolve => ProgressBar::new_spinner()
                            .with_style(style("{spinner} {prefix} {pos}/{len} packages read")),
                        Kind::Download => ProgressBar::new(total).with_style(style(DOWNLOAD_BAR)),
                        Kind::Compress => ProgressBar::new_spinner()
                            .with_style(style("{spinner} {prefix:<30} {bytes:>10} in {msg:>12}")),
                    },
                );
                bar.set_prefix(match kind {
                    Kind::Resolve => format!("resolving {name}:"),
                    Kind::Download => format!("download {}", short_name(name)),
                    Kind::Compress => format!("compress {name}"),
                });
                if kind != Kind::Download {
                    bar.enable_steady_tick(Duration::from_millis(120));
                }
            }
            Activity::Progress {
                id,
                done,
                total,
                elapsed,
            } => {
                if let Some(bar) = self.get_bar(&key(id)) {
                    if total > 0 {
                        bar.set_length(total.max(done));
                    }
                    bar.set_position(done);
                    let secs = elapsed.as_secs_f64();
                    if secs > 0.0 {
                        bar.set_message(format!("{}/s", HumanBytes((done as f64 / secs) as u64)));
                    }
                }
            }
            Activity::Done {
                id,
                done,
                total,
                elapsed,
                completed,
            } => {
                self.clear_bar(&key(id));
                let task = self.tasks.lock().ok().and_then(|mut t| t.remove(&id));
                // A resolution that failed says why in the error instead.
                if let (Some((Kind::Resolve, name)), true) = (task, completed) {
                    self.line(&format!(
                        "resolve {name}: {} packages read in {:.1}s",
                        total.max(done),
                        elapsed.as_secs_f64()
                    ));
                }
            }
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
                if let Some(bar) = self.get_bar(digest.as_str()) {
                    bar.set_position(*done);
                }
            }
            Event::BlobDone {
                digest,
                size,
                outcome,
            } => {
                self.clear_bar(digest.as_str());
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

/// A wheel's `name-version`, without its tags (`numpy-2.1.3`); other
/// names as they are.
fn short_name(file: &str) -> &str {
    match file.strip_suffix(".whl") {
        Some(stem) => stem
            .match_indices('-')
            .nth(1)
            .map_or(stem, |(at, _)| &stem[..at]),
        None => file,
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

#[cfg(test)]
mod tests {
    use super::short_name;

    #[test]
    fn short_names() {
        for (file, want) in [
            (
                "numpy-2.1.3-cp311-cp311-manylinux_2_17_x86_64.whl",
                "numpy-2.1.3",
            ),
            ("six-1.16.0-py2.py3-none-any.whl", "six-1.16.0"),
            ("odd.whl", "odd"),
            ("express-4.21.1.tgz", "express-4.21.1.tgz"),
        ] {
            assert_eq!(short_name(file), want, "{file}");
        }
    }
}
