//! `${VAR}` interpolation, as compose-go's `template` package does it, over
//! every string value of one file's tree (keys are left alone, and so are
//! numbers and booleans: YAML already typed them).
//!
//! The forms: `$VAR` and `${VAR}` (unset: empty, with a warning),
//! `${VAR:-word}` (word when unset or empty), `${VAR-word}` (when unset),
//! `${VAR:?msg}` / `${VAR?msg}` (an error naming VAR and msg when unset or
//! empty / unset), `${VAR:+word}` / `${VAR+word}` (word when set and not
//! empty / set, else the value). `word` is itself interpolated, so
//! defaults nest (`${A:-${B:-x}}`). `$$` is a literal `$`. A name is
//! `[A-Za-z_][A-Za-z0-9_]*`. As in compose, a `$` followed by anything
//! else is kept as written, while `${` without a valid name and an
//! operator, or without its `}`, is an error.
//!
//! A scanner rather than compose-go's regular expression: the same answers
//! for these forms, and the nesting is explicit.

use std::collections::BTreeMap;

use super::tree::{Node, Path, Value};
use super::Error;

/// Why a template could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstError {
    #[error(
        "invalid interpolation {0:?}: write ${{NAME}}, ${{NAME:-default}}... or $$ for a literal $"
    )]
    Invalid(String),
    #[error("required variable {name} is missing a value{}", if .reason.is_empty() { String::new() } else { format!(": {}", .reason) })]
    Required { name: String, reason: String },
}

/// Nesting of `${...}` inside defaults deeper than this is refused.
const MAX_NESTING: usize = 32;

/// Expands `template`; `lookup` answers variables.
pub fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, SubstError> {
    substitute_with(template, lookup, &mut |_| {}, 0)
}

fn is_name_start(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphabetic()
}

fn is_name(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// The index of the `}` closing the `{` at `open`, counting nested braces.
fn closing_brace(s: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < s.len() {
        match s[i] {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn substitute_with(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
    depth: usize,
) -> Result<String, SubstError> {
    if depth > MAX_NESTING {
        return Err(SubstError::Invalid(template.to_string()));
    }
    let b = template.as_bytes();
    let mut out = String::with_capacity(template.len());
    let mut i = 0;
    let mut literal_from = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        let next = b.get(i + 1).copied();
        match next {
            Some(b'$') => {
                out.push_str(&template[literal_from..i]);
                out.push('$');
                i += 2;
                literal_from = i;
            }
            Some(c) if is_name_start(c) => {
                out.push_str(&template[literal_from..i]);
                let start = i + 1;
                let mut end = start;
                while end < b.len() && is_name(b[end]) {
                    end += 1;
                }
                let name = &template[start..end];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => unset(name),
                }
                i = end;
                literal_from = i;
            }
            Some(b'{') => {
                out.push_str(&template[literal_from..i]);
                let close =
                    closing_brace(b, i + 1).ok_or_else(|| SubstError::Invalid(template.into()))?;
                let inner = &template[i + 2..close];
                out.push_str(&braced(inner, template, lookup, unset, depth)?);
                i = close + 1;
                literal_from = i;
            }
            // `$` before anything else stays as written.
            _ => i += 1,
        }
    }
    out.push_str(&template[literal_from..]);
    Ok(out)
}

/// `NAME`, or `NAME` + operator + word, inside `${...}`.
fn braced(
    inner: &str,
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
    depth: usize,
) -> Result<String, SubstError> {
    let b = inner.as_bytes();
    let invalid = || SubstError::Invalid(template.to_string());
    if b.is_empty() || !is_name_start(b[0]) {
        return Err(invalid());
    }
    let mut end = 1;
    while end < b.len() && is_name(b[end]) {
        end += 1;
    }
    let name = &inner[..end];
    let rest = &inner[end..];
    if rest.is_empty() {
        return Ok(match lookup(name) {
            Some(v) => v,
            None => {
                unset(name);
                String::new()
            }
        });
    }
    let (colon, rest) = match rest.strip_prefix(':') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let mut ops = rest.chars();
    let op = ops.next().ok_or_else(invalid)?;
    let word = ops.as_str();
    let value = lookup(name);
    // `:` makes an empty value count as unset.
    let set = match &value {
        Some(v) => !(colon && v.is_empty()),
        None => false,
    };
    let mut word_of = |w: &str| substitute_with(w, lookup, unset, depth + 1);
    match op {
        '-' if set => Ok(value.unwrap_or_default()),
        '-' => word_of(word),
        '+' if set => word_of(word),
        '+' => Ok(value.unwrap_or_default()),
        '?' if set => Ok(value.unwrap_or_default()),
        '?' => Err(SubstError::Required {
            name: name.to_string(),
            reason: word_of(word)?,
        }),
        _ => Err(invalid()),
    }
}

/// Interpolates every string value of `node` from `env`; a variable that
/// is not set adds compose's warning to `warnings` (once per name).
pub fn tree(
    node: &mut Node,
    env: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<(), Error> {
    walk(node, &Path::root(), env, warnings)
}

fn walk(
    node: &mut Node,
    path: &Path,
    env: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<(), Error> {
    let lookup = |n: &str| env.get(n).cloned();
    match &mut node.value {
        Value::Str(s) => {
            let mut unset = |name: &str| {
                let w = format!("The {name:?} variable is not set. Defaulting to a blank string.");
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            };
            match substitute_with(s, &lookup, &mut unset, 0) {
                Ok(v) => *s = v,
                Err(e) => {
                    return Err(Error::At {
                        pos: node.pos.clone(),
                        path: path.to_string(),
                        message: e.to_string(),
                    })
                }
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &path.child(&format!("[{i}]")), env, warnings)?;
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries.iter_mut() {
                let p = path.child(k);
                walk(v, &p, env, warnings)?;
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn env() -> BTreeMap<String, String> {
        [
            ("SET", "v"),
            ("EMPTY", ""),
            ("NODE_ENV", "production"),
            ("N", "2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn forms() {
        let env = env();
        let lookup = |n: &str| env.get(n).cloned();
        for (template, want) in [
            ("plain", "plain"),
            ("$SET", "v"),
            ("${SET}", "v"),
            ("a${SET}b$SET.c", "avbv.c"),
            ("$UNSET", ""),
            ("${UNSET}", ""),
            ("${SET:-d}", "v"),
            ("${EMPTY:-d}", "d"),
            ("${UNSET:-d}", "d"),
            ("${SET-d}", "v"),
            ("${EMPTY-d}", ""),
            ("${UNSET-d}", "d"),
            ("${SET:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${UNSET:+alt}", ""),
            ("${SET+alt}", "alt"),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("${SET:?boom}", "v"),
            ("${EMPTY?boom}", ""),
            ("$$", "$"),
            ("$${SET}", "${SET}"),
            ("$$$SET", "$v"),
            ("${UNSET:-${SET}}", "v"),
            ("${UNSET:-${ALSO:-deep}-x}", "deep-x"),
            ("${UNSET:-a:b-c}", "a:b-c"),
            ("node:${NODE_ENV:-dev}-${N}", "node:production-2"),
            ("cost $5 and $ alone $", "cost $5 and $ alone $"),
            ("${UNSET:-}", ""),
            ("${lower_case:-x}", "x"),
        ] {
            assert_eq!(
                substitute(template, &lookup).as_deref(),
                Ok(want),
                "{template:?}"
            );
        }
        for (template, want) in [
            ("${}", SubstError::Invalid("${}".into())),
            ("${SET", SubstError::Invalid("${SET".into())),
            ("${1A}", SubstError::Invalid("${1A}".into())),
            ("${A B}", SubstError::Invalid("${A B}".into())),
            ("${A:}", SubstError::Invalid("${A:}".into())),
            ("${A:x}", SubstError::Invalid("${A:x}".into())),
            (
                "${UNSET:?set it in .env}",
                SubstError::Required {
                    name: "UNSET".into(),
                    reason: "set it in .env".into(),
                },
            ),
            (
                "${EMPTY:?}",
                SubstError::Required {
                    name: "EMPTY".into(),
                    reason: String::new(),
                },
            ),
            (
                "${UNSET?need ${SET}}",
                SubstError::Required {
                    name: "UNSET".into(),
                    reason: "need v".into(),
                },
            ),
        ] {
            assert_eq!(substitute(template, &lookup), Err(want), "{template:?}");
        }
    }

    #[test]
    fn tree_values_not_keys_with_located_errors() {
        let file: Arc<str> = Arc::from("compose.yml");
        let mut budget = super::super::load::Budget::default();
        let mut doc = super::super::load::parse_yaml(
            b"services:\n  web:\n    image: app:${SET}\n    ports: [3000]\n    labels:\n      $SET: ${UNSET}\n",
            &file,
            &mut budget,
        )
        .expect("parses")
        .remove(0);
        let mut warnings = Vec::new();
        tree(&mut doc, &env(), &mut warnings).expect("interpolates");
        let web = doc.get("services").and_then(|s| s.get("web")).expect("web");
        assert_eq!(
            web.get("image").and_then(Node::scalar_text).as_deref(),
            Some("app:v")
        );
        let labels = web.get("labels").expect("labels");
        assert_eq!(
            labels.get("$SET").and_then(Node::scalar_text).as_deref(),
            Some("")
        );
        assert_eq!(
            warnings,
            ["The \"UNSET\" variable is not set. Defaulting to a blank string."]
        );
        let mut bad = super::super::load::parse_yaml(
            b"services:\n  web:\n    build:\n      args:\n        - A=${A:?give A}\n",
            &file,
            &mut budget,
        )
        .expect("parses")
        .remove(0);
        let e = tree(&mut bad, &env(), &mut warnings)
            .expect_err("required")
            .to_string();
        assert_eq!(
            e,
            "compose.yml:5: services.web.build.args.[0]: required variable A is missing a value: give A"
        );
    }
}
