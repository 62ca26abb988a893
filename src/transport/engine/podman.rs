//! `containers-storage:`: the image fed to `podman load` on its standard
//! input, into the store podman uses for the user running hoist (rootless
//! or not, with whatever `CONTAINERS_STORAGE_CONF` and `CONTAINERS_CONF`
//! say, as every podman command honours them).
//!
//! The stream is an oci-archive: the blobs go as the store holds them
//! (compressed, no second pass), and podman keeps the manifest hoist
//! built, so the digest hoist prints is the one `podman images --digests`
//! shows. An oci-archive names one image; further names are added with
//! `podman tag`. hoist writes nothing on disk; podman itself copies its
//! standard input to its temporary folder (`$TMPDIR`, else /var/tmp)
//! before reading it, as it does for any `podman load` from a pipe.
//! A build that fails half-way closes the pipe on an archive without its
//! end (and, in name order, before its `index.json`), so podman refuses
//! it, loads nothing and removes its copy.

use std::io::{self, BufWriter, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::EngineError;
use crate::store::Store;
use crate::transport::output::{check_in_store, image_blobs, oci_archive_entries, TarStream};
use crate::transport::{BuiltImage, TransportError};

/// The podman command hoist runs.
const PODMAN: &str = "podman";

/// Loads `image` under `names` (full names, the first one carried by the
/// archive, the others tagged after it).
pub(crate) fn load(
    image: &BuiltImage,
    names: &[String],
    store: &Store,
) -> Result<(), TransportError> {
    let blobs = image_blobs(image);
    check_in_store(&blobs, store)?;
    let ref_name = names.first().cloned();
    let entries = oci_archive_entries(
        &image.manifest,
        image,
        ref_name,
        names.iter().take(1).cloned().collect(),
        &blobs,
    );
    let mut child = spawn(&["load", "--quiet"], true)?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(io::Error::other("podman load started without its pipes").into());
    };
    let out = collect(stdout);
    let err = collect(stderr);
    let open = Arc::new(AtomicBool::new(true));
    let gate = Gate {
        inner: stdin,
        open: open.clone(),
    };
    let mut tar = TarStream::new(BufWriter::with_capacity(256 * 1024, gate));
    let sent = match tar.write_all(entries, store) {
        Ok(()) => tar.finish().and_then(|body| {
            drop(body.into_inner().map_err(|e| e.into_error())?);
            Ok(())
        }),
        Err(e) => {
            // Close the pipe on a cut-off archive: nothing more reaches
            // podman (not the tar's end, not what is buffered), so it
            // fails to read it and removes its temporary copy. Killing
            // it instead would leave that copy behind.
            open.store(false, Ordering::SeqCst);
            drop(tar);
            Err(e)
        }
    };
    let status = child.wait()?;
    let said = joined(out, err);
    match sent {
        Err(TransportError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            return Err(podman_said("load --quiet", &said).into());
        }
        Err(e) => return Err(e),
        Ok(()) if !status.success() => return Err(podman_said("load --quiet", &said).into()),
        Ok(()) => {}
    }
    let id = image.manifest_json.config.digest.hex();
    for name in names.iter().skip(1) {
        run(&["tag", id, name])?;
    }
    Ok(())
}

/// A writer that stops passing bytes on once its flag is cleared.
struct Gate<W: Write> {
    inner: W,
    open: Arc<AtomicBool>,
}

impl<W: Write> Write for Gate<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.open.load(Ordering::SeqCst) {
            true => self.inner.write(buf),
            false => Err(io::Error::other("the archive was cut off")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.open.load(Ordering::SeqCst) {
            true => self.inner.flush(),
            false => Ok(()),
        }
    }
}

/// Whether a `podman` runs here (`podman version` answers).
pub(crate) fn available() -> Result<(), EngineError> {
    run(&["version", "--format", "{{.Client.Version}}"]).map(drop)
}

fn spawn(args: &[&str], stdin: bool) -> Result<Child, EngineError> {
    Command::new(PODMAN)
        .args(args)
        .stdin(match stdin {
            true => Stdio::piped(),
            false => Stdio::null(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => EngineError::NoPodman,
            _ => EngineError::PodmanFailed {
                args: args.join(" "),
                message: e.to_string(),
            },
        })
}

/// Runs `podman ARGS` to its end; its output, or its words on failure.
fn run(args: &[&str]) -> Result<String, EngineError> {
    let child = spawn(args, false)?;
    let o = child
        .wait_with_output()
        .map_err(|e| EngineError::PodmanFailed {
            args: args.join(" "),
            message: e.to_string(),
        })?;
    let said = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    match o.status.success() {
        true => Ok(said.0),
        false => Err(podman_said(&args.join(" "), &said)),
    }
}

fn collect(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = r.read_to_end(&mut bytes);
        bytes
    })
}

fn joined(out: JoinHandle<Vec<u8>>, err: JoinHandle<Vec<u8>>) -> (String, String) {
    let text = |h: JoinHandle<Vec<u8>>| {
        String::from_utf8_lossy(&h.join().unwrap_or_default()).into_owned()
    };
    (text(out), text(err))
}

/// podman's own words: its error lines, else all it printed.
fn podman_said(args: &str, (stdout, stderr): &(String, String)) -> EngineError {
    EngineError::PodmanFailed {
        args: args.to_owned(),
        message: podman_message(stderr, stdout),
    }
}

/// The lines of podman's output that say what went wrong (`Error: ...`),
/// else all of it.
pub(crate) fn podman_message(stderr: &str, stdout: &str) -> String {
    let errors: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("level=error"))
        .collect();
    let text = match stderr.find("Error: ") {
        // `Error: ...` is podman's last word; the lines after it detail it.
        Some(at) if at == 0 || stderr[..at].ends_with('\n') => stderr[at..].trim().to_owned(),
        _ if !errors.is_empty() => errors.join("; "),
        _ => format!("{}\n{}", stderr.trim(), stdout.trim())
            .trim()
            .to_owned(),
    };
    match text.is_empty() {
        true => "it failed and printed nothing".to_owned(),
        false => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_message_table() {
        let cases = [
            (
                "Getting image source signatures\nError: payload does not match any of the supported image formats:\n * oci: ...\n",
                "",
                "Error: payload does not match any of the supported image formats:\n * oci: ...",
            ),
            (
                "time=\"x\" level=warning msg=\"w\"\ntime=\"x\" level=error msg=\"no space\"\n",
                "",
                "time=\"x\" level=error msg=\"no space\"",
            ),
            ("something odd\n", "and more\n", "something odd\nand more"),
            ("", "", "it failed and printed nothing"),
        ];
        for (stderr, stdout, want) in cases {
            assert_eq!(podman_message(stderr, stdout), want);
        }
    }
}
