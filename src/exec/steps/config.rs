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
