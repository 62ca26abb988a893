//! The image config a build produces: the base's config inherited, then
//! the user's settings applied, as Dockerfile instructions would.
//!
//! Pure functions over data, so each rule (ENTRYPOINT resets an inherited
//! CMD, `--env` replaces a variable of the same name, ports normalise to
//! `PORT/proto`) is tested without building an image.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::image::{ContainerConfig, History, ImageConfig};

use crate::graph::config::ConfigSettings;

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
    if let Some(a) = &settings.author {
        out.author = Some(a.clone());
    }
    out.config = Some(c);
    // A base with fewer layer entries in its history than layers (a
    // distroless base has none) would have readers (docker and podman
    // history, hoist inspect) pair the new entries with its own layers:
    // one entry per unlabelled base layer first, so every layer has its
    // line.
    let described = out.history.iter().filter(|h| !h.empty_layer).count();
    for n in described..out.rootfs.diff_ids.len() {
        out.history.push(History {
            created: base.created.clone(),
            created_by: Some(format!(
                "base layer {} (the base's history does not say)",
                n + 1
            )),
            comment: Some("hoist: base layer".to_owned()),
            ..History::default()
        });
    }
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
    if !s.volumes.is_empty() {
        let vols = c.volumes.get_or_insert_with(BTreeMap::new);
        for v in &s.volumes {
            vols.insert(v.clone(), Value::Object(Default::default()));
        }
    }
    // Docker's own config fields, which OCI does not name: docker and
    // podman read them from the config as BuildKit writes them.
    if !s.onbuild.is_empty() {
        c.extra
            .insert("OnBuild".into(), Value::from(s.onbuild.clone()));
    }
    if let Some(sh) = &s.shell {
        c.extra.insert("Shell".into(), Value::from(sh.clone()));
    }
}

/// The one warning line for a `--cmd` under an `Entrypoint` the base
/// keeps: what the container will run, and the two ways to change it.
/// `None` unless the base has an entrypoint and only the command is set.
pub fn entrypoint_warning(base: &ImageConfig, settings: &ConfigSettings) -> Option<String> {
    let cmd = settings.cmd.as_ref()?;
    if settings.entrypoint.is_some() {
        return None;
    }
    let entrypoint = base
        .config
        .as_ref()
        .and_then(|c| c.entrypoint.as_ref())
        .filter(|e| !e.is_empty())?;
    let runs: Vec<&str> = entrypoint.iter().chain(cmd).map(String::as_str).collect();
    let args = serde_json::to_string(&cmd.iter().skip(1).collect::<Vec<_>>()).unwrap_or_default();
    Some(format!(
        "the base's entrypoint stays, so the container will run: {}; to run the command alone add --entrypoint '[]', or give --cmd the entrypoint's arguments only (--cmd '{args}')",
        shell_words::join(runs)
    ))
}

/// Where a command runs through `/bin/sh -c`: the setting's name for
/// `flags` (`--cmd`) or a Dockerfile (`CMD`), the shell text, and the exec
/// form to give instead.
pub fn shell_forms(settings: &ConfigSettings, dockerfile: bool) -> Vec<(String, String, String)> {
    let exec = |text: &str| {
        let words = shell_words::split(text).unwrap_or_else(|_| vec![text.to_owned()]);
        serde_json::to_string(&words).unwrap_or_default()
    };
    let behind_sh = |v: &Vec<String>| match v.as_slice() {
        [sh, c, text] if (sh == "/bin/sh" || sh == "sh") && c == "-c" => Some(text.clone()),
        _ => None,
    };
    let mut out = Vec::new();
    let mut add = |flag: &str, instruction: &str, text: String| {
        let form = exec(&text);
        let fix = match dockerfile {
            true => format!("{instruction} {form}"),
            false => format!("{flag} '{form}'"),
        };
        let name = if dockerfile { instruction } else { flag };
        out.push((name.to_owned(), text, fix));
    };
    if let Some(text) = settings.entrypoint.as_ref().and_then(behind_sh) {
        add("--entrypoint", "ENTRYPOINT", text);
    }
    if let Some(text) = settings.cmd.as_ref().and_then(behind_sh) {
        add("--cmd", "CMD", text);
    }
    let health = settings.healthcheck.as_ref().and_then(|h| h.test.as_ref());
    if let Some([kind, text]) = health.map(Vec::as_slice) {
        if kind == "CMD-SHELL" {
            add("--healthcheck", "HEALTHCHECK CMD", text.clone());
        }
    }
    out
}

/// The error for the first of [`shell_forms`] on an image without
/// `/bin/sh`.
pub fn no_shell_error(settings: &ConfigSettings, dockerfile: bool) -> Option<(String, String)> {
    let (name, text, fix) = shell_forms(settings, dockerfile).into_iter().next()?;
    Some((
        name,
        format!("`{text}` runs through /bin/sh, which the image does not have (a distroless base?), so it can never run; give the exec form: {fix}"),
    ))
}

/// The error for a program the image would not find: the container's
/// command or its exec-form health check starts with a bare `node` while
/// the image's node is off `PATH` (distroless's `/nodejs/bin/node`).
/// `node` is where facts found it ([`crate::facts::Facts::node`]).
pub fn off_path_error(
    cfg: &ImageConfig,
    node: Option<&crate::layer::ImagePath>,
    dockerfile: bool,
) -> Option<(String, String)> {
    let node = node?.absolute();
    let path = cfg
        .config
        .as_ref()
        .and_then(|c| c.env.as_ref())
        .and_then(|env| env.iter().rev().find_map(|e| e.strip_prefix("PATH=")))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .to_owned();
    let on_path = path
        .split(':')
        .any(|dir| node.rsplit_once('/').is_some_and(|(d, _)| d == dir));
    if on_path {
        return None;
    }
    let c = cfg.config.as_ref()?;
    let runs: Vec<String> = match c.entrypoint.as_ref().filter(|e| !e.is_empty()) {
        Some(e) => e.clone(),
        None => c.cmd.clone().unwrap_or_default(),
    };
    let health = c.healthcheck.as_ref().and_then(|h| h.test.clone());
    let (name, words) = match (runs.first(), health.as_deref()) {
        (Some(p), _) if p == "node" => {
            let name = match c.entrypoint.as_ref().is_some_and(|e| !e.is_empty()) {
                true => ("--entrypoint", "ENTRYPOINT"),
                false => ("--cmd", "CMD"),
            };
            (name, runs.clone())
        }
        (_, Some([kind, p, ..])) if kind == "CMD" && p == "node" => (
            ("--healthcheck", "HEALTHCHECK CMD"),
            health.clone()?[1..].to_vec(),
        ),
        _ => return None,
    };
    let mut fixed = words;
    fixed[0] = node.clone();
    let form = serde_json::to_string(&fixed).unwrap_or_default();
    let (flag, instruction) = name;
    let (at, fix) = match dockerfile {
        true => (instruction, format!("{instruction} {form}")),
        false => (flag, format!("{flag} '{form}'")),
    };
    Some((
        at.to_owned(),
        format!("`node` is not on the image's PATH ({path}): its node is {node}; give the full path: {fix}"),
    ))
}

/// The one warning line for an image that will run as root: its `User`
/// is empty (neither the build nor the base names one), `root` or uid 0,
/// with or without a group. `None` for any other user.
pub fn root_warning(cfg: &ImageConfig) -> Option<String> {
    let user = cfg
        .config
        .as_ref()
        .and_then(|c| c.user.as_deref())
        .unwrap_or("")
        .trim();
    let name = user.split_once(':').map_or(user, |(u, _)| u);
    let how = "name another with --user NAME[:UID], `user` in hoist.toml or USER in the Dockerfile";
    match name {
        "" => Some(format!(
            "the image runs as root: no user is set, by the build or by the base; {how}"
        )),
        "root" | "0" => Some(format!("the image runs as root (user `{user}`); {how}")),
        _ => None,
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

    #[test]
    fn history_pads_unlabelled_base_layers() {
        // (base history entries, base layers) -> labels of every layer
        let cases: &[(&str, usize, &[&str])] = &[
            ("[]", 2, &["base layer 1", "base layer 2", "app"]),
            (
                r#"[{"created_by":"ADD x"}]"#,
                2,
                &["ADD x", "base layer 2", "app"],
            ),
            (
                r#"[{"created_by":"ADD x"},{"created_by":"ENV A=1","empty_layer":true},{"created_by":"RUN y"}]"#,
                2,
                &["ADD x", "RUN y", "app"],
            ),
            ("[]", 0, &["app"]),
        ];
        let d = crate::digest::Digest::of(b"x");
        for (history, layers, want) in cases {
            let ids: Vec<String> = (0..*layers)
                .map(|i| format!("\"{}\"", crate::digest::Digest::of(&[i as u8])))
                .collect();
            let json = format!(
                r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}},"history":{history}}}"#,
                ids.join(",")
            );
            let base = ImageConfig::parse(json.as_bytes(), "t").unwrap();
            let out = derive(
                &base,
                &ConfigSettings::default(),
                &[(d.clone(), "app".into())],
                "t",
            );
            let got: Vec<String> = out
                .layer_history()
                .iter()
                .map(|h| h.and_then(|h| h.created_by.clone()).unwrap_or_default())
                .collect();
            assert_eq!(got.len(), want.len(), "{history}");
            for (g, w) in got.iter().zip(want.iter()) {
                assert!(g.starts_with(w), "{history}: {got:?}");
            }
        }
    }

    #[test]
    fn entrypoint_warning_table() {
        let base = |ep: &str| {
            ImageConfig::parse(
                format!(r#"{{"config":{{"Entrypoint":{ep}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#)
                    .as_bytes(),
                "t",
            )
            .unwrap()
        };
        let words = |w: &[&str]| Some(w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let cases: Vec<(&str, ConfigSettings, Option<&str>)> = vec![
            (
                r#"["/nodejs/bin/node"]"#,
                ConfigSettings { cmd: words(&["node", "server.js"]), ..Default::default() },
                Some("the base's entrypoint stays, so the container will run: /nodejs/bin/node node server.js; to run the command alone add --entrypoint '[]', or give --cmd the entrypoint's arguments only (--cmd '[\"server.js\"]')"),
            ),
            (
                r#"["/nodejs/bin/node"]"#,
                ConfigSettings {
                    cmd: words(&["node", "server.js"]),
                    entrypoint: words(&[]),
                    ..Default::default()
                },
                None,
            ),
            ("null", ConfigSettings { cmd: words(&["node"]), ..Default::default() }, None),
            ("[]", ConfigSettings { cmd: words(&["node"]), ..Default::default() }, None),
            (r#"["/x"]"#, ConfigSettings::default(), None),
        ];
        for (ep, s, want) in cases {
            assert_eq!(
                entrypoint_warning(&base(ep), &s).as_deref(),
                want,
                "{ep} {s:?}"
            );
        }
    }

    #[test]
    fn shell_forms_table() {
        let sh = |t: &str| Some(vec!["/bin/sh".to_string(), "-c".into(), t.into()]);
        let health = |test: &[&str]| {
            Some(crate::image::Healthcheck {
                test: Some(test.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            })
        };
        type Case = (ConfigSettings, bool, Option<(&'static str, &'static str)>);
        let cases: Vec<Case> = vec![
            (
                ConfigSettings {
                    healthcheck: health(&["CMD-SHELL", "curl -f http://x/health"]),
                    ..Default::default()
                },
                false,
                Some((
                    "--healthcheck",
                    "give the exec form: --healthcheck '[\"curl\",\"-f\",\"http://x/health\"]'",
                )),
            ),
            (
                ConfigSettings {
                    cmd: sh("python3 app.py"),
                    ..Default::default()
                },
                true,
                Some(("CMD", "give the exec form: CMD [\"python3\",\"app.py\"]")),
            ),
            (
                ConfigSettings {
                    entrypoint: sh("node 'a b.js'"),
                    ..Default::default()
                },
                false,
                Some((
                    "--entrypoint",
                    "give the exec form: --entrypoint '[\"node\",\"a b.js\"]'",
                )),
            ),
            (
                ConfigSettings {
                    healthcheck: health(&["CMD", "node", "h.js"]),
                    cmd: Some(vec!["node".into()]),
                    ..Default::default()
                },
                false,
                None,
            ),
        ];
        for (s, dockerfile, want) in cases {
            let got = no_shell_error(&s, dockerfile);
            match (got, want) {
                (None, None) => {}
                (Some((at, msg)), Some((want_at, want_end))) => {
                    assert_eq!(at, want_at);
                    assert!(msg.ends_with(want_end), "{msg}");
                    assert!(
                        msg.contains("runs through /bin/sh, which the image does not have"),
                        "{msg}"
                    );
                }
                (got, want) => panic!("{s:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn root_warning_table() {
        let cases: &[(&str, Option<&str>)] = &[
            (r#"{}"#, Some("no user is set")),
            (r#"{"User":""}"#, Some("no user is set")),
            (r#"{"User":"0:0"}"#, Some("(user `0:0`)")),
            (r#"{"User":"0"}"#, Some("(user `0`)")),
            (r#"{"User":"root"}"#, Some("(user `root`)")),
            (r#"{"User":"root:wheel"}"#, Some("(user `root:wheel`)")),
            (r#"{"User":"1001:1001"}"#, None),
            (r#"{"User":"nobody"}"#, None),
            (r#"{"User":"0x"}"#, None),
            (r#"{"User":"1000:0"}"#, None),
        ];
        for (config, want) in cases {
            let json = format!(
                r#"{{"architecture":"amd64","os":"linux","config":{config},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
            );
            let cfg = ImageConfig::parse(json.as_bytes(), "t").unwrap();
            let got = root_warning(&cfg);
            match (got.as_deref(), want) {
                (None, None) => {}
                (Some(g), Some(w)) => {
                    assert!(g.starts_with("the image runs as root"), "{config}: {g}");
                    assert!(g.contains(w), "{config}: {g}");
                }
                (g, w) => panic!("{config}: got {g:?}, want {w:?}"),
            }
        }
    }
}
