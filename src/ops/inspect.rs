//! `hoist inspect`: what an image is, read where it lies.
//!
//! Inspecting reads through the same [`crate::transport::Source`] as a
//! build, but never imports: looking at an archive must not fill the
//! store. Every layer is streamed once through its decompressor to count
//! its uncompressed size, which also verifies its digest and its diff_id,
//! so `inspect` doubles as an integrity check of the source.
//!
//! The report is data ([`InspectReport`], serialisable for `--json`, with
//! exact byte counts); [`InspectReport::render`] is the text for people,
//! with sizes in decimal units as Docker prints them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;

use serde::Serialize;

use crate::digest::{Digest, HashingWriter};
use crate::image::{Healthcheck, Platform};
use crate::layer::compress::decompress;
use crate::transport::{open_source, HashOnly, IndexSummary, Transport, TransportError};

/// What `inspect` found.
#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    pub source: String,
    pub manifest_digest: Digest,
    pub media_type: String,
    /// True when the manifest was made from a docker-archive's
    /// `manifest.json` (such archives hold none).
    pub synthesized_manifest: bool,
    pub platform: String,
    /// The index the image was chosen from, with every platform it holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexSummary>,
    pub config_digest: Digest,
    pub created: Option<String>,
    pub user: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<Healthcheck>,
    pub layers: Vec<LayerReport>,
    /// Sum of the layers' compressed sizes, in bytes.
    pub total_size: u64,
    /// Sum of the layers' uncompressed sizes, in bytes.
    pub total_uncompressed_size: u64,
}

/// One layer of the report.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    pub digest: Digest,
    pub media_type: String,
    /// Compressed size in bytes (the blob's size).
    pub size: u64,
    /// Size of the uncompressed tar stream in bytes.
    pub uncompressed_size: u64,
    pub diff_id: Digest,
    /// The config history's `created_by` for this layer, pairing history
    /// entries that are not `empty_layer` with layers in order.
    pub created_by: Option<String>,
}

/// Reads the image `t` names and describes it. With no platform, an index
/// is resolved for the host's platform and a single image is taken as is.
pub fn inspect(
    t: &Transport,
    platform: Option<&Platform>,
) -> Result<InspectReport, TransportError> {
    let mut src = open_source(t)?;
    let resolved = src.resolve(platform, &mut HashOnly)?;
    let doc = Described {
        source: src.name().to_owned(),
        manifest: resolved.manifest.clone(),
        synthesized: resolved.synthesized,
        platform: resolved.platform.to_string(),
        index: resolved.index.clone(),
        config: resolved.config.clone(),
        config_digest: resolved.config_digest().clone(),
        layers: resolved.layers().to_vec(),
    };
    report(&doc, &mut |desc| src.open_blob(desc))
}

/// What a report is made of, wherever the image was read.
pub struct Described {
    pub source: String,
    pub manifest: crate::image::Descriptor,
    pub synthesized: bool,
    pub platform: String,
    pub index: Option<IndexSummary>,
    pub config: crate::image::ImageConfig,
    pub config_digest: Digest,
    pub layers: Vec<crate::image::Descriptor>,
}

/// The report of an image pulled from a registry into the store.
pub fn inspect_pulled(
    img: &crate::registry::RemoteImage,
    store: &crate::store::Store,
) -> Result<InspectReport, TransportError> {
    let doc = Described {
        source: format!("docker://{}", img.reference),
        manifest: img.manifest_descriptor.clone(),
        synthesized: false,
        platform: img.platform.to_string(),
        index: img.index.as_ref().map(|i| IndexSummary {
            digest: i.digest.clone(),
            media_type: i.media_type.clone(),
            platforms: i.platforms.clone(),
        }),
        config: img.config.clone(),
        config_digest: img.config_digest.clone(),
        layers: img.layers.clone(),
    };
    report(&doc, &mut |desc| {
        let file = store.open_blob(&desc.digest)?;
        let r: Box<dyn io::Read> = Box::new(crate::digest::VerifyingReader::new(
            io::BufReader::new(file),
            desc.digest.clone(),
            Some(desc.size),
        ));
        Ok(r)
    })
}

type Opener<'a> =
    dyn FnMut(&crate::image::Descriptor) -> Result<Box<dyn io::Read + 'a>, TransportError> + 'a;

fn report(doc: &Described, open: &mut Opener<'_>) -> Result<InspectReport, TransportError> {
    let config = &doc.config;
    let history = config.layer_history();
    let mut layers = Vec::with_capacity(doc.layers.len());
    for (i, desc) in doc.layers.iter().enumerate() {
        let (diff_id, uncompressed_size) = measure(open(desc)?, desc)?;
        if let Some(expected) = config.rootfs.diff_ids.get(i) {
            if *expected != diff_id {
                return Err(TransportError::DiffIdMismatch {
                    digest: desc.digest.clone(),
                    expected: expected.clone(),
                    actual: diff_id,
                });
            }
        }
        layers.push(LayerReport {
            digest: desc.digest.clone(),
            media_type: desc.media_type.clone(),
            size: desc.size,
            uncompressed_size,
            diff_id,
            created_by: history
                .get(i)
                .copied()
                .flatten()
                .and_then(|h| h.created_by.clone()),
        });
    }
    let c = config.config.clone().unwrap_or_default();
    Ok(InspectReport {
        source: doc.source.clone(),
        manifest_digest: doc.manifest.digest.clone(),
        media_type: doc.manifest.media_type.clone(),
        synthesized_manifest: doc.synthesized,
        platform: doc.platform.clone(),
        index: doc.index.clone(),
        config_digest: doc.config_digest.clone(),
        created: config.created.clone(),
        user: c.user,
        entrypoint: c.entrypoint,
        cmd: c.cmd,
        env: c.env.unwrap_or_default(),
        working_dir: c.working_dir,
        exposed_ports: c.exposed_ports.unwrap_or_default().into_keys().collect(),
        labels: c.labels.unwrap_or_default(),
        stop_signal: c.stop_signal,
        healthcheck: c.healthcheck,
        total_size: layers.iter().map(|l| l.size).sum(),
        total_uncompressed_size: layers.iter().map(|l| l.uncompressed_size).sum(),
        layers,
    })
}

/// Streams a layer through its decompressor: its diff_id and uncompressed
/// size. The blob's own digest is verified on the way.
fn measure(
    mut blob: Box<dyn io::Read + '_>,
    desc: &crate::image::Descriptor,
) -> Result<(Digest, u64), TransportError> {
    let read_err = |source| TransportError::ReadBlob {
        digest: desc.digest.clone(),
        source,
    };
    let mut sink = HashingWriter::new(io::sink());
    {
        let (_, mut r) = decompress(&mut blob).map_err(read_err)?;
        io::copy(&mut r, &mut sink).map_err(read_err)?;
    }
    // A decompressor may stop at the end of its stream; read on to the
    // end of the blob so its digest is checked.
    io::copy(&mut blob, &mut io::sink()).map_err(read_err)?;
    let (_, diff_id, size) = sink.finish();
    Ok((diff_id, size))
}

impl InspectReport {
    /// The report as text for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |label: &str, value: &str| {
            let label = if label.is_empty() {
                String::new()
            } else {
                format!("{label}:")
            };
            let _ = writeln!(out, "{label:<15}{value}");
        };
        let or_dash = |v: Option<&str>| v.map_or_else(|| "-".to_owned(), str::to_owned);
        let json_list = |v: &Option<Vec<String>>| {
            v.as_ref().map_or_else(
                || "-".to_owned(),
                |v| serde_json::to_string(v).unwrap_or_default(),
            )
        };
        line("Source", &self.source);
        let manifest_note = if self.synthesized_manifest {
            " (made from the archive's manifest.json)"
        } else {
            ""
        };
        line(
            "Manifest",
            &format!("{}{manifest_note}", self.manifest_digest),
        );
        line("Media type", &self.media_type);
        line("Platform", &self.platform);
        if let Some(index) = &self.index {
            line("Index", &format!("{} ({})", index.digest, index.media_type));
            line("Platforms", &index.platforms.join(", "));
        }
        line("Config", self.config_digest.as_str());
        line("Created", &or_dash(self.created.as_deref()));
        line(
            "User",
            &self
                .user
                .as_deref()
                .filter(|u| !u.is_empty())
                .map_or_else(|| "- (root)".to_owned(), str::to_owned),
        );
        line("Entrypoint", &json_list(&self.entrypoint));
        line("Cmd", &json_list(&self.cmd));
        line("Working dir", &or_dash(self.working_dir.as_deref()));
        multi(&mut line, "Env", &self.env);
        line(
            "Exposed ports",
            &if self.exposed_ports.is_empty() {
                "-".to_owned()
            } else {
                self.exposed_ports.join(", ")
            },
        );
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        multi(&mut line, "Labels", &labels);
        line("Stop signal", &or_dash(self.stop_signal.as_deref()));
        line(
            "Healthcheck",
            &self
                .healthcheck
                .as_ref()
                .map_or_else(|| "-".to_owned(), render_healthcheck),
        );

        let rows: Vec<[String; 5]> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                [
                    (i + 1).to_string(),
                    l.digest.short().to_owned(),
                    human_size(l.size),
                    human_size(l.uncompressed_size),
                    l.created_by
                        .as_deref()
                        .map_or_else(|| "-".to_owned(), one_line),
                ]
            })
            .collect();
        let header = ["#", "DIGEST", "SIZE", "UNCOMPRESSED", "CREATED BY"].map(str::to_owned);
        let mut widths = header.clone().map(|h| h.len());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        out.push_str("\nLayers:\n");
        for row in std::iter::once(&header).chain(&rows) {
            let _ = writeln!(
                out,
                "  {:>w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
            );
        }
        let n = self.layers.len();
        let _ = writeln!(
            out,
            "Total: {n} layer{}, {} compressed, {} uncompressed",
            if n == 1 { "" } else { "s" },
            human_size(self.total_size),
            human_size(self.total_uncompressed_size),
        );
        out
    }
}

/// A labelled list, one item a line, or `-` when empty.
fn multi(line: &mut impl FnMut(&str, &str), label: &str, items: &[String]) {
    match items.split_first() {
        None => line(label, "-"),
        Some((first, rest)) => {
            line(label, first);
            for item in rest {
                line("", item);
            }
        }
    }
}

/// A `created_by` fit for one table cell.
fn one_line(s: &str) -> String {
    const MAX: usize = 70;
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= MAX {
        flat
    } else {
        let cut: String = flat.chars().take(MAX - 1).collect();
        format!("{cut}…")
    }
}

fn render_healthcheck(h: &Healthcheck) -> String {
    let test = match h.test.as_deref() {
        Some([kind, ..]) if kind == "NONE" => return "disabled (NONE)".to_owned(),
        Some([kind, cmd]) if kind == "CMD-SHELL" => cmd.clone(),
        Some([kind, args @ ..]) if kind == "CMD" => serde_json::to_string(args).unwrap_or_default(),
        Some(other) => serde_json::to_string(other).unwrap_or_default(),
        None => "(inherited)".to_owned(),
    };
    let mut opts = Vec::new();
    for (name, v) in [
        ("interval", h.interval),
        ("timeout", h.timeout),
        ("start period", h.start_period),
    ] {
        if let Some(ns) = v {
            opts.push(format!("{name} {}", human_duration(ns)));
        }
    }
    if let Some(r) = h.retries {
        opts.push(format!("retries {r}"));
    }
    if opts.is_empty() {
        test
    } else {
        format!("{test} ({})", opts.join(", "))
    }
}

/// Nanoseconds as Docker's flags spell them: `30s`, `1.5s`, `250ms`.
fn human_duration(ns: u64) -> String {
    if ns.is_multiple_of(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else if ns.is_multiple_of(1_000_000) && ns < 1_000_000_000 {
        format!("{}ms", ns / 1_000_000)
    } else {
        let s = format!("{:.3}", ns as f64 / 1e9);
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// Bytes in decimal units with one decimal: `512 B`, `3.6 MB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_size_table() {
        let cases = [
            (0, "0 B"),
            (999, "999 B"),
            (1000, "1.0 kB"),
            (3_649_000, "3.6 MB"),
            (999_960, "1.0 MB"),
            (7_800_000_000, "7.8 GB"),
        ];
        for (n, want) in cases {
            assert_eq!(human_size(n), want, "{n}");
        }
    }

    #[test]
    fn healthcheck_table() {
        let hc = |test: &[&str], interval: Option<u64>| Healthcheck {
            test: Some(test.iter().map(|s| s.to_string()).collect()),
            interval,
            retries: interval.map(|_| 3),
            ..Healthcheck::default()
        };
        let cases = [
            (hc(&["NONE"], None), "disabled (NONE)"),
            (
                hc(
                    &["CMD-SHELL", "curl -f http://localhost/"],
                    Some(30_000_000_000),
                ),
                "curl -f http://localhost/ (interval 30s, retries 3)",
            ),
            (
                hc(&["CMD", "/bin/check", "-q"], Some(1_500_000_000)),
                r#"["/bin/check","-q"] (interval 1.5s, retries 3)"#,
            ),
            (
                hc(&["CMD", "x"], Some(250_000_000)),
                r#"["x"] (interval 250ms, retries 3)"#,
            ),
        ];
        for (h, want) in cases {
            assert_eq!(render_healthcheck(&h), want);
        }
    }

    #[test]
    fn one_line_table() {
        let long = "x".repeat(100);
        let cases = [
            (
                "/bin/sh -c #(nop)  CMD [\"sh\"]",
                "/bin/sh -c #(nop) CMD [\"sh\"]",
            ),
            ("a\n  b", "a b"),
            (long.as_str(), ""),
        ];
        for (input, want) in cases {
            let got = one_line(input);
            if want.is_empty() {
                assert_eq!(got.chars().count(), 70);
                assert!(got.ends_with('…'));
            } else {
                assert_eq!(got, want);
            }
        }
    }
}
