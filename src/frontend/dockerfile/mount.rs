//! `RUN --mount=...` typed: BuildKit's mount grammar (a CSV record of
//! `key=value` fields: type, from, source, target, readonly, id, sharing,
//! required, size, mode, uid, gid, env) and its rules (which keys each
//! type takes, read-only by default except cache and tmpfs, what a
//! secret mount needs). Values are expanded field by field, so the same
//! parser serves before expansion (checking) and after it (typing).

use super::shell::ExpandError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// A `RUN --mount=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountType,
    pub from: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    pub readonly: bool,
    pub id: Option<String>,
    pub sharing: Option<Sharing>,
    pub required: bool,
    pub size: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub env: Option<String>,
}

/// Parses one `--mount` value (comma-separated `key=value`, CSV quoting
/// allowed), expanding each value. With `check_only`, fields whose value
/// still holds a variable are only checked for their key, and no mount is
/// returned.
pub fn parse_mount(
    val: &str,
    expand: &dyn Fn(&str) -> Result<String, ExpandError>,
    check_only: bool,
) -> Result<Option<Mount>, String> {
    let mut m = Mount {
        kind: MountType::Bind,
        from: None,
        source: None,
        target: None,
        readonly: false,
        id: None,
        sharing: None,
        required: false,
        size: None,
        mode: None,
        uid: None,
        gid: None,
        env: None,
    };
    let mut ro_auto = true;
    let bool_of = |k: &str, v: &str| match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Ok(true),
        "0" | "f" | "false" => Ok(false),
        _ => Err(format!("invalid value for {k}: `{v}` (true or false)")),
    };
    for field in csv_fields(val)? {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(value) = value else {
            match key.as_str() {
                "readonly" | "ro" => {
                    m.readonly = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.readonly = false;
                    ro_auto = false;
                }
                "required" => m.required = true,
                _ => {
                    return Err(format!(
                        "invalid field `{field}`: it must be a key=value pair"
                    ))
                }
            }
            continue;
        };
        if key == "from" && value.contains('$') && !value.ends_with('$') {
            return Err("`from` doesn't support variable expansion: define an alias stage (FROM ... AS name) instead".to_owned());
        }
        if check_only && value.contains('$') {
            if !MOUNT_KEYS.contains(&key.as_str()) {
                return Err(format!(
                    "unexpected key `{key}` in `{field}`: use one of {}",
                    MOUNT_KEYS.join(", ")
                ));
            }
            continue;
        }
        let value = expand(value).map_err(|e| e.0)?;
        match key.as_str() {
            "type" => {
                m.kind = match value.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        return Err(format!(
                        "unsupported mount type `{value}`: use bind, cache, tmpfs, secret or ssh"
                    ))
                    }
                }
            }
            "from" => m.from = Some(value),
            "source" | "src" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "readonly" | "ro" => {
                m.readonly = bool_of(&key, &value)?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.readonly = !bool_of(&key, &value)?;
                ro_auto = false;
            }
            "required" => m.required = bool_of(&key, &value)?,
            "size" => m.size = Some(value),
            "id" => m.id = Some(value),
            "sharing" => {
                m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => {
                        return Err(format!(
                            "unsupported sharing value `{value}`: use shared, private or locked"
                        ))
                    }
                })
            }
            "mode" => {
                m.mode = Some(u32::from_str_radix(&value, 8).map_err(|_| {
                    format!("invalid value `{value}` for mode: give octal like 0644")
                })?)
            }
            "uid" => {
                m.uid = Some(
                    value
                        .parse()
                        .map_err(|_| format!("invalid value `{value}` for uid: give a number"))?,
                )
            }
            "gid" => {
                m.gid = Some(
                    value
                        .parse()
                        .map_err(|_| format!("invalid value `{value}` for gid: give a number"))?,
                )
            }
            "env" => m.env = Some(value),
            _ => {
                return Err(format!(
                    "unexpected key `{key}` in `{field}`: use one of {}",
                    MOUNT_KEYS.join(", ")
                ))
            }
        }
    }
    if check_only {
        return Ok(None);
    }
    let kind = format!("{:?}", m.kind).to_ascii_lowercase();
    let file_info = matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    if !file_info && (m.mode.is_some() || m.uid.is_some() || m.gid.is_some()) {
        return Err(format!(
            "mode, uid and gid are not allowed for {kind} mounts"
        ));
    }
    if m.required && !matches!(m.kind, MountType::Secret | MountType::Ssh) {
        return Err(format!("`required` is not allowed for {kind} mounts"));
    }
    if m.size.is_some() && m.kind != MountType::Tmpfs {
        return Err(format!("`size` is not allowed for {kind} mounts"));
    }
    if ro_auto {
        m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err("a secret mount should not have a from".to_owned());
        }
        if m.sharing.is_some() {
            return Err("a secret mount should not define sharing".to_owned());
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() {
            return Err("invalid secret mount: give id=NAME or target=PATH".to_owned());
        }
        if m.source.is_some() && m.id.is_some() {
            return Err("a secret mount takes source or id, not both".to_owned());
        }
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(format!("sharing is only for cache mounts, not {kind}"));
    }
    Ok(Some(m))
}

const MOUNT_KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "src",
    "target",
    "dst",
    "destination",
    "readonly",
    "ro",
    "readwrite",
    "rw",
    "required",
    "size",
    "id",
    "sharing",
    "mode",
    "uid",
    "gid",
    "env",
];

/// One CSV record: fields split on `,`, a field may be `"quoted"` with
/// `""` for a quote.
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    let mut field_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' && field_start {
            quoted = true;
            field_start = false;
        } else if c == '"' {
            return Err(
                "a `\"` inside a --mount field: quote the whole field, as `\"target=/a b\"`"
                    .to_owned(),
            );
        } else if c == ',' {
            fields.push(std::mem::take(&mut cur));
            field_start = true;
        } else {
            cur.push(c);
            field_start = false;
        }
    }
    if quoted {
        return Err("unterminated quote in --mount: close the `\"`".to_owned());
    }
    fields.push(cur);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> Result<Mount, String> {
        parse_mount(s, &|v| Ok(v.to_owned()), false).map(|m| m.expect("typed"))
    }

    #[test]
    fn defaults_and_csv_quoting() {
        // (mount, kind, target, readonly)
        let cases: &[(&str, MountType, &str, bool)] = &[
            ("target=/a", MountType::Bind, "/a", true),
            ("type=cache,target=/a", MountType::Cache, "/a", false),
            ("type=tmpfs,dst=/a", MountType::Tmpfs, "/a", false),
            (
                "type=secret,id=x,destination=/a",
                MountType::Secret,
                "/a",
                true,
            ),
            ("type=ssh,target=/a", MountType::Ssh, "/a", true),
            ("TYPE=CACHE,target=/a,ro", MountType::Cache, "/a", true),
            (
                "type=bind,\"target=/a,b\",rw=true",
                MountType::Bind,
                "/a,b",
                false,
            ),
            (
                "\"target=say \"\"hi\"\"\"",
                MountType::Bind,
                "say \"hi\"",
                true,
            ),
        ];
        for (s, kind, target, ro) in cases {
            let m = typed(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(
                (m.kind, m.target.as_deref(), m.readonly),
                (*kind, Some(*target), *ro),
                "{s}"
            );
        }
    }

    #[test]
    fn bad_mounts_say_what_to_write() {
        let cases: &[(&str, &str)] = &[
            ("type=cache,target=\"/a", "quote the whole field"),
            ("type=cache,\"target=/a", "unterminated quote"),
            (
                "type=bind,sharing=locked",
                "sharing is only for cache mounts",
            ),
            ("type=cache,sharing=odd", "unsupported sharing value `odd`"),
            (
                "type=bind,required",
                "`required` is not allowed for bind mounts",
            ),
            (
                "type=cache,size=1m",
                "`size` is not allowed for cache mounts",
            ),
            ("type=secret,id=a,src=b", "source or id, not both"),
            ("type=secret,id=a,from=b", "should not have a from"),
            ("type=cache,mode=9", "invalid value `9` for mode"),
            ("type=cache,ro=maybe", "invalid value for ro"),
        ];
        for (s, want) in cases {
            let e = typed(s).expect_err(s);
            assert!(e.contains(want), "{s}: {e}");
        }
    }
}
