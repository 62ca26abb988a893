//! Image config settings as a user writes them (`--env K=V`, `--cmd`,
//! `--expose 3000`, `--healthcheck`, a recipe's `[image]`): their types
//! and their parsers. Every frontend fills in [`ConfigSettings`]; how they
//! combine with a base's config is the executor's rule
//! (`exec::steps::config`).

use std::collections::BTreeMap;

use crate::image::Healthcheck;

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
#[derive(Debug, Clone, Default, PartialEq)]
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
    /// VOLUME paths (a Dockerfile).
    pub volumes: Vec<String>,
    /// ONBUILD triggers as written, recorded for images built on this one.
    pub onbuild: Vec<String>,
    /// SHELL: recorded as docker records it.
    pub shell: Option<Vec<String>>,
    /// MAINTAINER: the config's `author`.
    pub author: Option<String>,
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
}
