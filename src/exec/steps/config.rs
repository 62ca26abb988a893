//! The image config a build produces: the base's config inherited, then
//! the user's settings applied, as Dockerfile instructions would.
//!
//! Pure functions over data, so each rule (ENTRYPOINT resets an inherited
//! CMD, `--env` replaces a variable of the same name, ports normalise to
//! `PORT/proto`) is tested without building an image.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::image::{ContainerConfig, Healthcheck, History, ImageConfig};

/// Why a setting is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("--env `{0}` is not KEY=VALUE")]
    Env(String),
    #[error("--label `{0}` is not KEY=VALUE")]
    Label(String),
    #[error("--expose `{0}` is not PORT[/tcp|udp|sctp] with PORT from 1 to 65535")]
    Port(String),
    #[error("`{0}` is not a command: give a JSON array like '[\"node\",\"server.js\"]' or a command line")]
    Command(String),
    #[error("--stop-signal `{0}` is not a signal name (SIGTERM) or number")]
    Signal(String),
    #[error("duration `{0}` is not like 30s, 1m30s, 500ms or 1h")]
    Duration(String),
    #[error("duration `{0}` is longer than {MAX_DURATION_TEXT}, the most an image config can hold (Go's time.Duration): give a shorter one")]
    DurationTooLong(String),
    #[error("--healthcheck-retries {0} is more than an image config can hold ({max}): give a smaller count", max = i64::MAX)]
    Retries(u64),
}

/// The longest duration an image config can hold: Go's `time.Duration`
/// is an int64 of nanoseconds, and skopeo, podman and Docker refuse a
/// config with a larger value.
pub const MAX_DURATION_NS: u64 = i64::MAX as u64;
const MAX_DURATION_TEXT: &str = "2562047h47m16s";

/// What the user asked to set on top of the base's config.
#[derive(Debug, Clone, Default)]
pub struct ConfigSettings {
    pub user: Option<String>,
    pub env: Vec<(String, String)>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub workdir: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub expose: Vec<String>,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<Healthcheck>,
}

/// Parses `KEY=VALUE`.
pub fn parse_env(s: &str) -> Result<(String, String), ConfigError> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(ConfigError::Env(s.to_owned())),
    }
}

/// Parses `KEY=VALUE` for a label.
pub fn parse_label(s: &str) -> Result<(String, String), ConfigError> {
    parse_env(s).map_err(|_| ConfigError::Label(s.to_owned()))
}

/// Parses a command: a JSON array of strings (exec form), or a string
/// split into words as a shell would (quotes honoured, nothing expanded).
pub fn parse_command(s: &str) -> Result<Vec<String>, ConfigError> {
    let t = s.trim();
    if t.starts_with('[') {
        return serde_json::from_str::<Vec<String>>(t)
            .map_err(|_| ConfigError::Command(s.to_owned()));
    }
    match shell_words::split(t) {
        Ok(words) if !words.is_empty() => Ok(words),
        _ => Err(ConfigError::Command(s.to_owned())),
    }
}

/// Normalises `PORT[/proto]` to `PORT/proto` (tcp by default).
pub fn parse_port(s: &str) -> Result<String, ConfigError> {
    let (port, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let proto = proto.to_ascii_lowercase();
    match port.parse::<u16>() {
        Ok(p) if p > 0 && matches!(proto.as_str(), "tcp" | "udp" | "sctp") => {
            Ok(format!("{p}/{proto}"))
        }
        _ => Err(ConfigError::Port(s.to_owned())),
    }
}

/// Checks a stop signal: a number, or a name with or without `SIG`.
pub fn parse_signal(s: &str) -> Result<String, ConfigError> {
    const NAMES: &[&str] = &[
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    if s.parse::<u8>().is_ok_and(|n| (1..=64).contains(&n)) {
        return Ok(s.to_owned());
    }
    let upper = s.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let rt = bare
        .strip_prefix("RTMIN")
        .or_else(|| bare.strip_prefix("RTMAX"));
    let rt_ok = rt.is_some_and(|r| {
        r.is_empty()
            || r.strip_prefix(['+', '-'])
                .is_some_and(|n| n.parse::<u8>().is_ok())
    });
    if NAMES.contains(&bare) || rt_ok {
        Ok(format!("SIG{bare}"))
    } else {
        Err(ConfigError::Signal(s.to_owned()))
    }
}

/// Why `p` cannot be the folder the app is copied into (`--workdir`,
/// `workdir =`, `destination =`): the root would mix the app with the
/// base's own folders.
pub fn workdir_problem(p: &str) -> String {
    match p.trim_end_matches('/') {
        "" if p.starts_with('/') => format!(
            "`{p}` is the image's root: the app is copied into the working folder, so give it a folder of its own, like /app"
        ),
        _ => format!("`{p}` must be an absolute path inside the image, like /app"),
    }
}

/// Parses a Go-style duration (`30s`, `1m30s`, `500ms`, `1h`) to nanoseconds,
/// at most [`MAX_DURATION_NS`].
pub fn parse_duration(s: &str) -> Result<u64, ConfigError> {
    let err = || ConfigError::Duration(s.to_owned());
    let too_long = || ConfigError::DurationTooLong(s.trim().to_owned());
    let mut total: u64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        if digits == 0 {
            return Err(err());
        }
        // Only digits: a parse failure is a number too large for u64.
        let n: u64 = rest[..digits].parse().map_err(|_| too_long())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult: u64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(err()),
        };
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .filter(|t| *t <= MAX_DURATION_NS)
            .ok_or_else(too_long)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// A health check from a command: a JSON array runs without a shell
/// (`CMD`), a string runs with one (`CMD-SHELL`), as Docker's HEALTHCHECK.
pub fn healthcheck(
    cmd: &str,
    interval: Option<u64>,
    timeout: Option<u64>,
    retries: Option<u64>,
) -> Result<Healthcheck, ConfigError> {
    let t = cmd.trim();
    let test = if t.eq_ignore_ascii_case("none") {
        vec!["NONE".to_owned()]
    } else if t.starts_with('[') {
        let mut v = vec!["CMD".to_owned()];
        v.extend(parse_command(t)?);
        v
    } else if t.is_empty() {
        return Err(ConfigError::Command(cmd.to_owned()));
    } else {
        vec!["CMD-SHELL".to_owned(), t.to_owned()]
    };
    if let Some(r) = retries.filter(|r| i64::try_from(*r).is_err()) {
        return Err(ConfigError::Retries(r));
    }
    Ok(Healthcheck {
        test: Some(test),
        interval,
        timeout,
        start_period: None,
        retries,
    })
}

/// Fields of a base's config that describe how the base itself was built,
/// not the image: they are not inherited.
const NOT_INHERITED: &[&str] = &[
    "container",
    "container_config",
    "docker_version",
    "id",
    "parent",
    "comment",
];

/// Builds the new config: `base` inherited, `settings` applied, the new
/// layers' diff_ids and history appended, `created` set.
pub fn derive(
    base: &ImageConfig,
    settings: &ConfigSettings,
    new_layers: &[(crate::digest::Digest, String)],
    created: &str,
) -> ImageConfig {
    let mut out = base.clone();
    out.extra
        .retain(|k, _| !NOT_INHERITED.contains(&k.as_str()));
    out.created = Some(created.to_owned());
    let mut c = out.config.take().unwrap_or_default();
    apply(&mut c, settings);
    out.config = Some(c);
    for (diff_id, created_by) in new_layers {
        out.rootfs.diff_ids.push(diff_id.clone());
        out.history.push(History {
            created: Some(created.to_owned()),
            created_by: Some(created_by.clone()),
            comment: Some("hoist".to_owned()),
            ..History::default()
        });
    }
    if out.rootfs.kind.is_empty() {
        out.rootfs.kind = "layers".to_owned();
    }
    let summary = summarise(settings);
    if !summary.is_empty() {
        out.history.push(History {
            created: Some(created.to_owned()),
            created_by: Some(summary),
            comment: Some("hoist".to_owned()),
            empty_layer: true,
            ..History::default()
        });
    }
    out
}

fn apply(c: &mut ContainerConfig, s: &ConfigSettings) {
    if let Some(u) = &s.user {
        c.user = Some(u.clone());
    }
    if !s.env.is_empty() {
        let mut env = c.env.take().unwrap_or_default();
        for (k, v) in &s.env {
            let line = format!("{k}={v}");
            match env
                .iter_mut()
                .find(|e| e.split_once('=').map_or(e.as_str(), |p| p.0) == k)
            {
                Some(e) => *e = line,
                None => env.push(line),
            }
        }
        c.env = Some(env);
    }
    if let Some(ep) = &s.entrypoint {
        c.entrypoint = Some(ep.clone());
        // As in a Dockerfile, a new ENTRYPOINT drops the base's CMD.
        c.cmd = None;
    }
    if let Some(cmd) = &s.cmd {
        c.cmd = Some(cmd.clone());
    }
    if let Some(w) = &s.workdir {
        c.working_dir = Some(w.clone());
    }
    if !s.labels.is_empty() {
        let labels = c.labels.get_or_insert_with(BTreeMap::new);
        labels.extend(s.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if !s.expose.is_empty() {
        let ports = c.exposed_ports.get_or_insert_with(BTreeMap::new);
        for p in &s.expose {
            ports.insert(p.clone(), Value::Object(Default::default()));
        }
    }
    if let Some(sig) = &s.stop_signal {
        c.stop_signal = Some(sig.clone());
    }
    if let Some(h) = &s.healthcheck {
        c.healthcheck = Some(h.clone());
    }
}

fn summarise(s: &ConfigSettings) -> String {
    let mut parts = Vec::new();
    if let Some(u) = &s.user {
        parts.push(format!("USER {u}"));
    }
    if let Some(w) = &s.workdir {
        parts.push(format!("WORKDIR {w}"));
    }
    for (k, v) in &s.env {
        parts.push(format!("ENV {k}={v}"));
    }
    for p in &s.expose {
        parts.push(format!("EXPOSE {p}"));
    }
    for (k, v) in &s.labels {
        parts.push(format!("LABEL {k}={v}"));
    }
    if let Some(sig) = &s.stop_signal {
        parts.push(format!("STOPSIGNAL {sig}"));
    }
    if let Some(h) = &s.healthcheck {
        parts.push(format!(
            "HEALTHCHECK {}",
            serde_json::to_string(&h.test).unwrap_or_default()
        ));
    }
    if let Some(ep) = &s.entrypoint {
        parts.push(format!(
            "ENTRYPOINT {}",
            serde_json::to_string(ep).unwrap_or_default()
        ));
    }
    if let Some(cmd) = &s.cmd {
        parts.push(format!(
            "CMD {}",
            serde_json::to_string(cmd).unwrap_or_default()
        ));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_table() {
        let cases: &[(&str, Option<&[&str]>)] = &[
            (r#"["node","server.js"]"#, Some(&["node", "server.js"])),
            ("node server.js", Some(&["node", "server.js"])),
            (
                "sh -c 'echo hi there'",
                Some(&["sh", "-c", "echo hi there"]),
            ),
            ("[1,2]", None),
            ("", None),
            ("'unclosed", None),
        ];
        for (input, want) in cases {
            let got = parse_command(input).ok();
            assert_eq!(
                got.as_deref()
                    .map(|v| v.iter().map(String::as_str).collect::<Vec<_>>()),
                want.map(|w| w.to_vec()),
                "{input}"
            );
        }
    }

    #[test]
    fn port_signal_duration_table() {
        assert_eq!(parse_port("3000").unwrap(), "3000/tcp");
        assert_eq!(parse_port("53/UDP").unwrap(), "53/udp");
        assert!(parse_port("0").is_err());
        assert!(parse_port("70000").is_err());
        assert!(parse_port("80/icmp").is_err());
        assert_eq!(parse_signal("SIGTERM").unwrap(), "SIGTERM");
        assert_eq!(parse_signal("quit").unwrap(), "SIGQUIT");
        assert_eq!(parse_signal("9").unwrap(), "9");
        assert_eq!(parse_signal("SIGRTMIN+3").unwrap(), "SIGRTMIN+3");
        assert!(parse_signal("SIGFOO").is_err());
        assert_eq!(parse_duration("30s").unwrap(), 30_000_000_000);
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
        // Go's time.Duration is an int64 of nanoseconds: nothing longer.
        assert_eq!(
            parse_duration("2562047h").unwrap(),
            2_562_047 * 3_600_000_000_000
        );
        assert_eq!(
            parse_duration("2562047h47m16s854775807ns").unwrap(),
            i64::MAX as u64
        );
        for long in [
            "2562047h47m16s854775808ns",
            "5000000h",
            "99999999999999999999999s",
        ] {
            assert_eq!(
                parse_duration(long),
                Err(ConfigError::DurationTooLong(long.to_owned())),
                "{long}"
            );
        }
        assert_eq!(
            healthcheck("true", None, None, Some(u64::MAX)).map(|_| ()),
            Err(ConfigError::Retries(u64::MAX))
        );
    }

    #[test]
    fn derive_rules() {
        let base = ImageConfig::parse(
            br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin","A=1"],"Cmd":["sh"],"Entrypoint":null},"rootfs":{"type":"layers","diff_ids":[]},"container_config":{"Cmd":["x"]},"docker_version":"20"}"#,
            "t",
        )
        .unwrap();
        let s = ConfigSettings {
            user: Some("1001:1001".into()),
            env: vec![("A".into(), "2".into()), ("B".into(), "3".into())],
            entrypoint: Some(vec!["/entry".into()]),
            expose: vec!["3000/tcp".into()],
            ..Default::default()
        };
        let d = crate::digest::Digest::of(b"x");
        let out = derive(
            &base,
            &s,
            &[(d.clone(), "app".into())],
            "1970-01-01T00:00:00Z",
        );
        let c = out.config.as_ref().unwrap();
        assert_eq!(c.env.as_ref().unwrap(), &["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(c.cmd, None, "ENTRYPOINT resets the inherited CMD");
        assert_eq!(c.user.as_deref(), Some("1001:1001"));
        assert!(!out.extra.contains_key("container_config"));
        assert!(!out.extra.contains_key("docker_version"));
        assert_eq!(out.rootfs.diff_ids, vec![d]);
        assert_eq!(out.history.len(), 2);
        assert!(out.history[1].empty_layer);
    }
}
