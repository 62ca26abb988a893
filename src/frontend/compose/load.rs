//! Reading: which files (`COMPOSE_FILE`, else compose's default names and
//! the override beside them), YAML bytes to the untyped
//! [`tree`](super::tree), the project's `.env`, the project name, and
//! relative build contexts made the project's.
//!
//! The YAML comes through yaml-rust2's event parser rather than a serde
//! value: events carry each node's line (so an error after merging still
//! names the file and line that set the value) and its tag (compose's
//! `!reset` and `!override`). Anchors and aliases are expanded as go-yaml
//! expands them, with a budget on the nodes built so that a few aliases
//! cannot grow a small file without bound; `<<` merge keys are honoured
//! (explicit keys win); a key written twice in one mapping is an error, as
//! in compose. Plain scalars are typed as YAML 1.2's core schema types them
//! (null, booleans, numbers, else strings): compose interpolates strings
//! only.
//!
//! `.env` follows compose-go's dotenv reader: `KEY=VALUE` or `KEY: VALUE`,
//! an optional `export ` prefix, `#` comments (inline only after a space),
//! single quotes literal, double quotes with backslash escapes, `${VAR}`
//! expanded in unquoted and double-quoted values (the process environment
//! first, then the keys above), a bare `KEY` taken from the process
//! environment. The process environment wins over `.env`.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

use super::tree::{Node, Pos, Tag, Value};
use super::{interpolate, Error, Options};

/// How the loader reads files other than the ones given (`.env`, the
/// targets of `extends: {file: ...}`): the real file system, or a map in
/// tests and property tests.
pub trait Files {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    fn is_file(&self, path: &Path) -> bool;
}

pub struct RealFiles;

impl Files for RealFiles {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs_err::read(path)
    }
    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }
}

impl Files for BTreeMap<PathBuf, Vec<u8>> {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
    fn is_file(&self, path: &Path) -> bool {
        self.contains_key(path)
    }
}

/// The names `docker compose` looks for without `-f`, in its order.
pub const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];
/// The override it then adds from the same folder, in its order.
pub const DEFAULT_OVERRIDES: &[&str] = &[
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// The files `docker compose` reads when given no `-f`: `COMPOSE_FILE`
/// (split on `COMPOSE_PATH_SEPARATOR`, default `:`), else the first of
/// [`DEFAULT_FILES`] in `dir` or the nearest folder above it, plus the
/// first of [`DEFAULT_OVERRIDES`] beside it. Empty when there is none.
pub fn default_files(
    dir: &Path,
    env: &BTreeMap<String, String>,
    files: &dyn Files,
) -> Vec<PathBuf> {
    if let Some(list) = env.get("COMPOSE_FILE") {
        let sep = env
            .get("COMPOSE_PATH_SEPARATOR")
            .filter(|s| !s.is_empty())
            .map_or(":", String::as_str);
        return list
            .split(sep)
            .filter(|s| !s.is_empty())
            .map(|s| dir.join(s))
            .collect();
    }
    for folder in dir.ancestors() {
        let first = |names: &[&str]| {
            names
                .iter()
                .map(|n| folder.join(n))
                .find(|p| files.is_file(p))
        };
        if let Some(main) = first(DEFAULT_FILES) {
            let mut out = vec![main];
            out.extend(first(DEFAULT_OVERRIDES));
            return out;
        }
    }
    Vec::new()
}

/// Nodes the loader may build in all, aliases expanded: far above any real
/// compose file, far below what exhausts memory.
const MAX_NODES: usize = 1_000_000;
/// Nesting deeper than this is refused: the later steps recurse.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Default)]
pub struct Budget {
    nodes: usize,
}

impl Budget {
    fn spend(&mut self, n: usize, file: &str) -> Result<(), Error> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(Error::Project(format!(
                "{file}: the YAML expands to more than {MAX_NODES} nodes (aliases of aliases?); \
                 write the repeated parts out or use fewer aliases"
            )));
        }
        Ok(())
    }
}

enum Frame {
    Seq(Vec<Node>, Pos, Tag, usize),
    Map {
        entries: Vec<(String, Node)>,
        /// Each key's line, to find one written twice without a scan.
        seen: HashMap<String, u32>,
        key: Option<(String, u32)>,
        pos: Pos,
        tag: Tag,
        anchor: usize,
        merges: Vec<Node>,
    },
}

fn tag_of(tag: &Option<yaml_rust2::parser::Tag>) -> Tag {
    match tag {
        Some(t) if t.handle == "!" && t.suffix == "reset" => Tag::Reset,
        Some(t) if t.handle == "!" && t.suffix == "override" => Tag::Override,
        _ => Tag::None,
    }
}

fn count(node: &Node) -> usize {
    1 + match &node.value {
        Value::Seq(s) => s.iter().map(count).sum(),
        Value::Map(m) => m.iter().map(|(_, v)| count(v)).sum(),
        _ => 0,
    }
}

/// The type YAML 1.2's core schema gives a plain scalar.
fn plain_scalar(s: String) -> Value {
    match s.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ if is_number(&s) => Value::Number(s),
        _ => Value::Str(s),
    }
}

fn is_number(s: &str) -> bool {
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0o")) {
        return !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit());
    }
    if matches!(t, ".inf" | ".Inf" | ".INF") || matches!(s, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let (mant, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let digits = mant.replace('.', "");
    let dots = mant.matches('.').count();
    let mant_ok = dots <= 1 && !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit());
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    });
    mant_ok && exp_ok
}

/// Parses every document of one YAML file.
pub fn parse_yaml(bytes: &[u8], file: &Arc<str>, budget: &mut Budget) -> Result<Vec<Node>, Error> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Yaml {
        file: file.to_string(),
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count(),
        col: 0,
        message: "not UTF-8 text".into(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let yaml_err = |line: usize, col: usize, message: String| Error::Yaml {
        file: file.to_string(),
        line,
        col,
        message,
    };
    loop {
        let (event, mark) = parser.next_token().map_err(|e| {
            yaml_err(
                e.marker().line(),
                e.marker().col() + 1,
                e.info().to_string(),
            )
        })?;
        let pos = Pos {
            file: file.clone(),
            line: u32::try_from(mark.line()).unwrap_or(u32::MAX),
        };
        let done: Option<(Node, usize)> = match event {
            Event::StreamEnd => break,
            Event::Nothing | Event::StreamStart | Event::DocumentStart | Event::DocumentEnd => None,
            Event::Alias(id) => {
                let node = anchors.get(&id).cloned().ok_or_else(|| {
                    yaml_err(
                        mark.line(),
                        mark.col() + 1,
                        "alias of an unknown anchor".into(),
                    )
                })?;
                budget.spend(count(&node), file)?;
                Some((node, 0))
            }
            Event::Scalar(text, style, anchor, tag) => {
                budget.spend(1, file)?;
                let value = match style {
                    TScalarStyle::Plain if tag.is_none() || tag_of(&tag) != Tag::None => {
                        plain_scalar(text)
                    }
                    _ => Value::Str(text),
                };
                let mut node = Node::new(value, pos);
                node.tag = tag_of(&tag);
                Some((node, anchor))
            }
            Event::SequenceStart(anchor, tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(yaml_err(
                        mark.line(),
                        mark.col() + 1,
                        "nested too deep".into(),
                    ));
                }
                stack.push(Frame::Seq(Vec::new(), pos, tag_of(&tag), anchor));
                None
            }
            Event::MappingStart(anchor, tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(yaml_err(
                        mark.line(),
                        mark.col() + 1,
                        "nested too deep".into(),
                    ));
                }
                stack.push(Frame::Map {
                    entries: Vec::new(),
                    seen: HashMap::new(),
                    key: None,
                    pos,
                    tag: tag_of(&tag),
                    anchor,
                    merges: Vec::new(),
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(items, pos, tag, anchor)) => {
                    budget.spend(1, file)?;
                    let mut node = Node::new(Value::Seq(items), pos);
                    node.tag = tag;
                    Some((node, anchor))
                }
                _ => {
                    return Err(yaml_err(
                        mark.line(),
                        mark.col() + 1,
                        "unbalanced sequence".into(),
                    ))
                }
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    mut entries,
                    pos,
                    tag,
                    anchor,
                    merges,
                    ..
                }) => {
                    budget.spend(1, file)?;
                    for m in merges {
                        merge_key(&mut entries, m, file)?;
                    }
                    let mut node = Node::new(Value::Map(entries), pos);
                    node.tag = tag;
                    Some((node, anchor))
                }
                _ => {
                    return Err(yaml_err(
                        mark.line(),
                        mark.col() + 1,
                        "unbalanced mapping".into(),
                    ))
                }
            },
        };
        let Some((node, anchor)) = done else {
            continue;
        };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => docs.push(node),
            Some(Frame::Seq(items, ..)) => items.push(node),
            Some(Frame::Map {
                entries,
                seen,
                key,
                merges,
                ..
            }) => match key.take() {
                None => {
                    let name =
                        match &node.value {
                            Value::Null => "null".to_string(),
                            Value::Seq(_) | Value::Map(_) => return Err(yaml_err(
                                node.pos.line as usize,
                                0,
                                "a mapping key must be a plain value, not a sequence or mapping"
                                    .into(),
                            )),
                            _ => node.scalar_text().unwrap_or_default(),
                        };
                    *key = Some((name, node.pos.line));
                }
                Some((name, line)) => {
                    if name == "<<" {
                        merges.push(node);
                    } else if let Some(first) = seen.get(&name) {
                        return Err(yaml_err(
                            line as usize,
                            0,
                            format!("mapping key {name:?} already defined at line {first}"),
                        ));
                    } else {
                        seen.insert(name.clone(), line);
                        entries.push((name, node));
                    }
                }
            },
        }
    }
    Ok(docs)
}

/// `<<: *base` or `<<: [*a, *b]`: keys not written in the mapping itself
/// come from the merged ones, the first merged one winning.
fn merge_key(entries: &mut Vec<(String, Node)>, merged: Node, file: &str) -> Result<(), Error> {
    let line = merged.pos.line as usize;
    let maps = match merged.value {
        Value::Map(m) => vec![m],
        Value::Seq(items) => {
            let mut maps = Vec::new();
            for item in items {
                match item.value {
                    Value::Map(m) => maps.push(m),
                    _ => {
                        return Err(Error::Yaml {
                            file: file.to_string(),
                            line,
                            col: 0,
                            message: "`<<` takes a mapping or a sequence of mappings".into(),
                        })
                    }
                }
            }
            maps
        }
        _ => {
            return Err(Error::Yaml {
                file: file.to_string(),
                line,
                col: 0,
                message: "`<<` takes a mapping or a sequence of mappings".into(),
            })
        }
    };
    let mut present: std::collections::HashSet<String> =
        entries.iter().map(|(k, _)| k.clone()).collect();
    for map in maps {
        for (k, v) in map {
            if present.insert(k.clone()) {
                entries.push((k, v));
            }
        }
    }
    Ok(())
}

/// The environment compose interpolates with: `.env` in the project folder
/// (when there is one) under the process environment.
pub fn project_env(
    project_dir: &Path,
    process: &BTreeMap<String, String>,
    files: &dyn Files,
) -> Result<BTreeMap<String, String>, Error> {
    let path = project_dir.join(".env");
    let mut env = match files.read(&path) {
        Ok(bytes) => parse_dotenv(&bytes, &path.display().to_string(), process)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => {
            return Err(Error::Read {
                path: path.display().to_string(),
                source: e,
            })
        }
    };
    env.extend(process.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(env)
}

fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

/// Parses a `.env` file; `process` answers `${VAR}` (before the keys
/// above in the file) and bare `KEY` lines.
pub fn parse_dotenv(
    bytes: &[u8],
    file: &str,
    process: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Error> {
    let text = String::from_utf8_lossy(bytes);
    let text = text
        .strip_prefix('\u{feff}')
        .unwrap_or(&text)
        .replace("\r\n", "\n");
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut line = 1usize;
    let err = |line: usize, message: String| Error::Dotenv {
        file: file.to_string(),
        line,
        message,
    };
    let mut rest: &str = &text;
    loop {
        // Skip blank space and comment lines.
        let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace());
        line += rest[..rest.len() - trimmed.len()].matches('\n').count();
        rest = trimmed;
        if rest.is_empty() {
            break;
        }
        if rest.starts_with('#') {
            rest = rest.find('\n').map_or("", |i| &rest[i..]);
            continue;
        }
        if let Some(after) = rest.strip_prefix("export") {
            if after.starts_with(is_space) {
                rest = after.trim_start_matches(is_space);
            }
        }
        // The key, up to `=`, `:` or the end of the line.
        let mut end = None;
        for (i, c) in rest.char_indices() {
            match c {
                '=' | ':' | '\n' => {
                    end = Some((i, c));
                    break;
                }
                '_' | '.' | '-' | '[' | ']' => {}
                c if is_space(c) || c.is_alphanumeric() => {}
                c => {
                    let first = rest.lines().next().unwrap_or_default();
                    return Err(err(
                        line,
                        format!("unexpected character {c:?} in variable name {first:?}"),
                    ));
                }
            }
        }
        let (key, sep, after) = match end {
            Some((i, c)) => (&rest[..i], Some(c), &rest[i + c.len_utf8()..]),
            None => (rest, None, ""),
        };
        let key = key.trim_end_matches(is_space);
        if key.contains(' ') {
            return Err(err(line, "a key cannot contain a space".into()));
        }
        if key.is_empty() {
            return Err(err(line, "a line with a value but no key".into()));
        }
        if sep != Some('=') && sep != Some(':') {
            // A bare `KEY`: taken from the process environment, if set.
            if let Some(v) = process.get(key) {
                out.insert(key.to_string(), v.clone());
            }
            line += usize::from(sep.is_some());
            rest = after;
            continue;
        }
        let after = after.trim_start_matches(is_space);
        let lookup = |name: &str| process.get(name).or_else(|| out.get(name)).cloned();
        let (value, next) = match after.chars().next() {
            Some(q @ ('\'' | '"')) => {
                let body = &after[1..];
                let mut chars = String::new();
                let mut escaped = false;
                let mut close = None;
                for (i, c) in body.char_indices() {
                    if c == '\n' {
                        line += 1;
                    }
                    if c != q {
                        if !escaped && c == '\\' {
                            escaped = true;
                            continue;
                        }
                        if escaped {
                            escaped = false;
                            chars.push('\\');
                        }
                        chars.push(c);
                        continue;
                    }
                    if escaped {
                        escaped = false;
                        chars.push(c);
                        continue;
                    }
                    close = Some(i);
                    break;
                }
                let Some(i) = close else {
                    let first = after.lines().next().unwrap_or_default();
                    return Err(err(line, format!("unterminated quoted value {first}")));
                };
                let value = if q == '"' {
                    expand(&unescape(&chars), &lookup).map_err(|m| err(line, m))?
                } else {
                    chars
                };
                (value, &body[i + 1..])
            }
            _ => {
                let (raw, next) = after.split_once('\n').unwrap_or((after, ""));
                line += 1;
                let raw = raw.split(" #").next().unwrap_or_default();
                let raw = raw.trim_end_matches(char::is_whitespace);
                (expand(raw, &lookup).map_err(|m| err(line - 1, m))?, next)
            }
        };
        out.insert(key.to_string(), value);
        // As in compose, what follows a closing quote is read as the next
        // statement (a comment, usually).
        rest = next;
    }
    Ok(out)
}

fn expand(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    interpolate::substitute(value, lookup).map_err(|e| e.to_string())
}

/// Double-quoted escapes: `\n`, `\t`, `\"`, `\\`... ; `\$` stays an
/// escaped dollar for the expansion that follows.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('a') => out.push('\u{7}'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('$') => out.push_str("$$"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// compose's project-name rule: lower case, only `[a-z0-9_-]`, no leading
/// `_` or `-`.
pub fn normalize_project_name(s: &str) -> String {
    let kept: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_string()
}

/// The name, as compose picks it: `-p`, then `COMPOSE_PROJECT_NAME` (both
/// must already be valid), then `name:` in the files (normalised), then
/// the project folder's name (normalised).
pub fn project_name(
    opts: &Options,
    env: &BTreeMap<String, String>,
    merged: &Node,
    project_dir: &Path,
) -> Result<String, Error> {
    let imperative = opts
        .project_name
        .clone()
        .or_else(|| env.get("COMPOSE_PROJECT_NAME").cloned())
        .filter(|n| !n.is_empty());
    if let Some(name) = imperative {
        if normalize_project_name(&name) != name || name.is_empty() {
            return Err(Error::Project(format!(
                "invalid project name {name:?}: it must be lower-case letters, digits, `-` and `_`, \
                 starting with a letter or digit (try {:?})",
                normalize_project_name(&name)
            )));
        }
        return Ok(name);
    }
    if let Some(n) = merged.get("name").and_then(Node::scalar_text) {
        let n = normalize_project_name(&n);
        if !n.is_empty() {
            return Ok(n);
        }
    }
    let folder = project_dir
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .or_else(|| {
            std::env::current_dir()
                .ok()
                .and_then(|d| d.file_name().map(|s| s.to_string_lossy().to_string()))
        })
        .unwrap_or_default();
    let name = normalize_project_name(&folder);
    if name.is_empty() {
        return Err(Error::Project(format!(
            "no project name: the folder name {folder:?} has no letter or digit; set `name:` in \
             the compose file or pass -p NAME"
        )));
    }
    Ok(name)
}

/// Whether a build context is a URL (git or http), left as written.
pub(crate) fn is_remote(s: &str) -> bool {
    s.contains("://") || s.starts_with("git@") || s.starts_with("github.com/")
}

/// `base/rel`, cleaned lexically as Go's `filepath.Join` cleans it (compose
/// resolves with it): no `.` components, `dir/..` removed, `..` above the
/// root dropped. An absolute `rel` stays as written.
pub fn join(base: &Path, rel: &str) -> String {
    let p = Path::new(rel);
    if p.is_absolute() {
        return rel.to_string();
    }
    let mut out = PathBuf::new();
    // Normal components pushed and not popped yet: a `..` pops one of
    // them, else (a relative path) it is kept.
    let mut normal = 0usize;
    for c in base.join(p).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if normal > 0 => {
                out.pop();
                normal -= 1;
            }
            Component::ParentDir if out.has_root() => {}
            Component::ParentDir => out.push(".."),
            Component::Normal(_) => {
                out.push(c);
                normal += 1;
            }
            Component::RootDir | Component::Prefix(_) => out.push(c),
        }
    }
    if out.as_os_str().is_empty() {
        return ".".into();
    }
    out.display().to_string()
}

/// Makes each service's build context, its additional contexts that are
/// folders, and the `file` of each top-level secret relative to `base`
/// (the project folder for the files given, the file's own folder for an
/// `extends` target), as compose resolves relative paths. URLs, `docker-image://`, `target:` and
/// `service:` contexts stay as written; so does `dockerfile` (it is
/// relative to the context).
pub fn resolve_paths(doc: &mut Node, base: &Path) {
    if let Some(Node {
        value: Value::Map(secrets),
        ..
    }) = doc.get_mut("secrets")
    {
        for (_, secret) in secrets.iter_mut() {
            if let Some(Node {
                value: Value::Str(s),
                ..
            }) = secret.get_mut("file")
            {
                *s = join(base, s);
            }
        }
    }
    let Some(Node {
        value: Value::Map(services),
        ..
    }) = doc.get_mut("services")
    else {
        return;
    };
    let local = |s: &str| !is_remote(s) && !s.starts_with("target:") && !s.starts_with("service:");
    for (_, service) in services.iter_mut() {
        let Some(build) = service.get_mut("build") else {
            continue;
        };
        if let Value::Str(s) = &mut build.value {
            if local(s) {
                *s = join(base, s);
            }
            continue;
        }
        if let Some(Node {
            value: Value::Str(s),
            ..
        }) = build.get_mut("context")
        {
            if local(s) {
                *s = join(base, s);
            }
        }
        match build.get_mut("additional_contexts").map(|n| &mut n.value) {
            Some(Value::Map(entries)) => {
                for (_, v) in entries.iter_mut() {
                    if let Value::Str(s) = &mut v.value {
                        if local(s) {
                            *s = join(base, s);
                        }
                    }
                }
            }
            Some(Value::Seq(items)) => {
                for item in items.iter_mut() {
                    if let Value::Str(s) = &mut item.value {
                        if let Some((k, v)) = s.split_once('=') {
                            if local(v) {
                                *s = format!("{k}={}", join(base, v));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Vec<Node>, Error> {
        parse_yaml(s.as_bytes(), &Arc::from("c.yml"), &mut Budget::default())
    }

    #[test]
    fn yaml_scalars_lines_and_tags() {
        let docs = parse("a: 1\nb: '1'\nc: ~\nd: true\ne: x\nf: !reset []\ng: !override {x: 1}\n")
            .expect("parses");
        let d = &docs[0];
        for (key, value, line) in [
            ("a", Value::Number("1".into()), 1),
            ("b", Value::Str("1".into()), 2),
            ("c", Value::Null, 3),
            ("d", Value::Bool(true), 4),
            ("e", Value::Str("x".into()), 5),
        ] {
            let n = d.get(key).expect(key);
            assert_eq!(n.value, value, "{key}");
            assert_eq!(n.pos.line, line, "{key}");
        }
        assert_eq!(d.get("f").map(|n| n.tag), Some(Tag::Reset));
        assert_eq!(d.get("g").map(|n| n.tag), Some(Tag::Override));
    }

    #[test]
    fn yaml_anchors_merge_keys_and_errors() {
        let docs = parse("x: &b {p: 1, q: 2}\ny:\n  <<: *b\n  q: 3\n").expect("parses");
        let y = docs[0].get("y").expect("y");
        assert_eq!(y.get("p").and_then(Node::scalar_text).as_deref(), Some("1"));
        assert_eq!(y.get("q").and_then(Node::scalar_text).as_deref(), Some("3"));
        for (input, want) in [
            (
                "a: 1\na: 2\n",
                "c.yml:2: mapping key \"a\" already defined at line 1",
            ),
            ("a: [1\n", "c.yml:"),
            ("? [a]\n: 1\n", "a mapping key must be a plain value"),
            ("a: *nope\n", "c.yml:1:"),
            ("a:\n  <<: 1\n", "`<<` takes a mapping"),
        ] {
            let e = parse(input).expect_err(input).to_string();
            assert!(e.contains(want), "{input:?}: {e}");
        }
        // Aliases of aliases cannot grow without bound.
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse(&bomb).expect_err("bomb").to_string();
        assert!(e.contains("more than"), "{e}");
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn dotenv_table() {
        let process: BTreeMap<String, String> =
            [("HOME".to_string(), "/home/u".to_string())].into();
        for (input, want) in [
            ("A=1\n", vec![("A", "1")]),
            ("export A=1\n", vec![("A", "1")]),
            ("A: 1\n", vec![("A", "1")]),
            ("# c\n\nA=1 # c\nB=x#y\n", vec![("A", "1"), ("B", "x#y")]),
            ("A='a $HOME \\n'\n", vec![("A", "a $HOME \\n")]),
            ("A=\"a $HOME\\n\"\n", vec![("A", "a /home/u\n")]),
            ("A=\"q \\\" \\$HOME\"\n", vec![("A", "q \" $HOME")]),
            (
                "A=\"two\nlines\"\nB=2\n",
                vec![("A", "two\nlines"), ("B", "2")],
            ),
            ("A=1\nB=${A}2\n", vec![("A", "1"), ("B", "12")]),
            ("B=${HOME:-x}\n", vec![("B", "/home/u")]),
            ("HOME\nNOPE\n", vec![("HOME", "/home/u")]),
            ("A=  spaced  \n", vec![("A", "spaced")]),
            ("A=\n", vec![("A", "")]),
        ] {
            let got = parse_dotenv(input.as_bytes(), ".env", &process).expect(input);
            let want: BTreeMap<String, String> = want
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(got, want, "{input:?}");
        }
        for (input, want) in [
            ("A B=1\n", ".env:1: a key cannot contain a space"),
            ("\n\nA=\"open\n", ".env:"),
            ("A/B=1\n", "unexpected character '/'"),
            ("A=${B:?needed}\n", "needed"),
        ] {
            let e = parse_dotenv(input.as_bytes(), ".env", &process)
                .expect_err(input)
                .to_string();
            assert!(e.contains(want), "{input:?}: {e}");
        }
    }

    #[test]
    fn default_file_discovery() {
        let tree = |names: &[&str]| -> BTreeMap<PathBuf, Vec<u8>> {
            names
                .iter()
                .map(|n| (PathBuf::from(n), Vec::new()))
                .collect()
        };
        let none: BTreeMap<String, String> = BTreeMap::new();
        for (present, dir, want) in [
            (
                vec!["/p/docker-compose.yml"],
                "/p",
                vec!["/p/docker-compose.yml"],
            ),
            (
                vec!["/p/docker-compose.yml", "/p/docker-compose.override.yml"],
                "/p",
                vec!["/p/docker-compose.yml", "/p/docker-compose.override.yml"],
            ),
            (
                vec![
                    "/p/compose.yaml",
                    "/p/docker-compose.yml",
                    "/p/compose.override.yml",
                ],
                "/p",
                vec!["/p/compose.yaml", "/p/compose.override.yml"],
            ),
            (
                vec!["/p/compose.yml"],
                "/p/sub/deeper",
                vec!["/p/compose.yml"],
            ),
            (vec!["/p/docker-compose.prod.yml"], "/p", vec![]),
        ] {
            let got = default_files(Path::new(dir), &none, &tree(&present));
            let want: Vec<PathBuf> = want.iter().map(PathBuf::from).collect();
            assert_eq!(got, want, "{present:?} from {dir}");
        }
        let env: BTreeMap<String, String> = [
            ("COMPOSE_FILE".to_string(), "a.yml;b/c.yml".to_string()),
            ("COMPOSE_PATH_SEPARATOR".to_string(), ";".to_string()),
        ]
        .into();
        assert_eq!(
            default_files(Path::new("/p"), &env, &tree(&[])),
            vec![PathBuf::from("/p/a.yml"), PathBuf::from("/p/b/c.yml")]
        );
    }

    #[test]
    fn project_names() {
        for (input, want) in [
            ("My App", "myapp"),
            ("web_Agent-2", "web_agent-2"),
            ("__x", "x"),
            ("-._", ""),
            ("Ünïcode", "ncode"),
        ] {
            assert_eq!(normalize_project_name(input), want, "{input}");
        }
        let empty = Node::new(
            Value::Map(Vec::new()),
            Pos {
                file: "c.yml".into(),
                line: 1,
            },
        );
        let named = |n: &str| {
            let mut m = empty.clone();
            m.insert("name", Node::new(Value::Str(n.into()), empty.pos.clone()));
            m
        };
        let env: BTreeMap<String, String> = BTreeMap::new();
        let opts = Options::default();
        let dir = Path::new("/src/My Shop");
        assert_eq!(
            project_name(&opts, &env, &empty, dir).ok().as_deref(),
            Some("myshop")
        );
        assert_eq!(
            project_name(&opts, &env, &named("Prod App"), dir)
                .ok()
                .as_deref(),
            Some("prodapp")
        );
        let env_named: BTreeMap<String, String> =
            [("COMPOSE_PROJECT_NAME".to_string(), "fromenv".to_string())].into();
        assert_eq!(
            project_name(&opts, &env_named, &named("x"), dir)
                .ok()
                .as_deref(),
            Some("fromenv")
        );
        let bad = Options {
            project_name: Some("Bad Name".into()),
            ..Options::default()
        };
        let e = project_name(&bad, &env, &empty, dir)
            .expect_err("invalid")
            .to_string();
        assert!(
            e.contains("invalid project name \"Bad Name\"") && e.contains("badname"),
            "{e}"
        );
        assert!(project_name(&opts, &env, &empty, Path::new("/src/__")).is_err());
    }

    #[test]
    fn joined_paths_are_cleaned_as_go_cleans_them() {
        for (base, rel, want) in [
            ("proj", "./web", "proj/web"),
            ("proj", "../web", "web"),
            ("proj", "../../web", "../web"),
            ("a/b", "../c/./d/..", "a/c"),
            ("", "..", ".."),
            ("", ".", "."),
            ("proj", "", "proj"),
            ("/srv/proj", "../../../x", "/x"),
            ("proj", "/abs/./path", "/abs/./path"),
            ("../up", "x", "../up/x"),
        ] {
            assert_eq!(join(Path::new(base), rel), want, "{base} + {rel}");
        }
    }

    #[test]
    fn build_contexts_are_the_projects() {
        let mut doc = parse(
            "services:\n  a: {build: ./web}\n  b: {build: {context: ../agent}}\n  c: {build: {context: 'https://x/y.git'}}\n  d: {build: /abs}\n",
        )
        .expect("parses")
        .remove(0);
        resolve_paths(&mut doc, Path::new("proj"));
        let ctx = |s: &str| {
            let b = doc
                .get("services")
                .and_then(|x| x.get(s))
                .and_then(|x| x.get("build"));
            b.and_then(|b| b.get("context").or(Some(b)))
                .and_then(Node::scalar_text)
                .unwrap_or_default()
        };
        assert_eq!(ctx("a"), "proj/web");
        assert_eq!(ctx("b"), "agent");
        assert_eq!(ctx("c"), "https://x/y.git");
        assert_eq!(ctx("d"), "/abs");
        let mut doc = parse(
            "services:\n  a:\n    build:\n      context: .\n      additional_contexts:\n        shared: ../shared\n        base: docker-image://alpine\n        other: service:web\n  b:\n    build:\n      additional_contexts: [lib=./lib, t=target:deps, g=https://x/y.git]\n",
        )
        .expect("parses")
        .remove(0);
        resolve_paths(&mut doc, Path::new("proj"));
        let extra = |s: &str| {
            let n = doc
                .get("services")
                .and_then(|x| x.get(s))
                .and_then(|x| x.get("build"));
            let n = n
                .and_then(|b| b.get("additional_contexts"))
                .expect("contexts");
            match &n.value {
                Value::Map(m) => m
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.scalar_text().unwrap_or_default()))
                    .collect::<Vec<_>>(),
                Value::Seq(items) => items.iter().filter_map(Node::scalar_text).collect(),
                _ => Vec::new(),
            }
        };
        assert_eq!(
            extra("a"),
            [
                "shared=shared",
                "base=docker-image://alpine",
                "other=service:web"
            ]
        );
        assert_eq!(
            extra("b"),
            ["lib=proj/lib", "t=target:deps", "g=https://x/y.git"]
        );
    }
}
