//! The untyped tree every loading step works on, and the key paths the
//! merge rules are keyed by.
//!
//! compose merges before it types: interpolation, `extends` and the
//! override rules all walk plain YAML data, and only the merged result is
//! read into [`super::model`]. So the tree keeps what those steps need and
//! nothing more: the scalar's text and its YAML type (a number is not
//! interpolated, a string is), the file and line of every node (for errors
//! after merging), and the `!reset` / `!override` tags.

use std::fmt;
use std::sync::Arc;

/// Where a node was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// compose's own YAML tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    None,
    /// `!reset`: drop the value the files before this one set.
    Reset,
    /// `!override`: replace that value instead of merging with it.
    Override,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// An integer or float, as written.
    Number(String),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in the order written (a key appears once: the loader rejects
    /// duplicates).
    Map(Vec<(String, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
    pub tag: Tag,
}

impl Node {
    pub fn new(value: Value, pos: Pos) -> Node {
        Node {
            value,
            pos,
            tag: Tag::None,
        }
    }

    /// The text of a scalar (`None` for null, sequences and mappings), as
    /// compose prints one in `KEY=VALUE`.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(s) | Value::Str(s) => Some(s.clone()),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.value {
            Value::Map(m) => m.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Sets `key`, keeping its place when it exists.
    pub fn insert(&mut self, key: &str, value: Node) {
        if let Value::Map(m) = &mut self.value {
            match m.iter_mut().find(|(k, _)| k == key) {
                Some((_, v)) => *v = value,
                None => m.push((key.to_string(), value)),
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Node> {
        match &mut self.value {
            Value::Map(m) => {
                let i = m.iter().position(|(k, _)| k == key)?;
                Some(m.remove(i).1)
            }
            _ => None,
        }
    }

    /// A short name of the node's kind, for errors.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }
}

/// A key path such as `services.web.build.args`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(Vec<String>);

impl Path {
    pub fn root() -> Path {
        Path(Vec::new())
    }

    pub fn of(parts: &[&str]) -> Path {
        Path(parts.iter().map(|s| s.to_string()).collect())
    }

    pub fn child(&self, key: &str) -> Path {
        let mut p = self.0.clone();
        p.push(key.to_string());
        Path(p)
    }

    /// Whether the path matches `pattern`, dotted, where `*` is any one key.
    pub fn matches(&self, pattern: &str) -> bool {
        let pat: Vec<&str> = pattern.split('.').collect();
        pat.len() == self.0.len() && pat.iter().zip(&self.0).all(|(p, k)| *p == "*" || p == k)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        f.write_str(&self.0.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_patterns() {
        let p = Path::of(&["services", "web", "build", "args"]);
        for (pattern, want) in [
            ("services.*.build.args", true),
            ("services.web.build.args", true),
            ("services.*.build", false),
            ("services.*.build.args.*", false),
            ("*.*.*.*", true),
            ("services.api.build.args", false),
        ] {
            assert_eq!(p.matches(pattern), want, "{pattern}");
        }
        assert_eq!(p.to_string(), "services.web.build.args");
        assert_eq!(Path::root().to_string(), "(top level)");
    }
}
