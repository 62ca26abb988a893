//! Bytes -> a Dockerfile's syntax tree: one [`Node`] per instruction,
//! with the lines it spans. This rung gives no meaning to instructions
//! (that is [`super::instructions`]); it owns how text becomes lines,
//! as BuildKit's `frontend/dockerfile/parser` does:
//!
//! - Parser directives (`# syntax=`, `# escape=`, `# check=`) count only
//!   at the very top: the first line that is not one (an instruction, a
//!   blank line, any other comment) ends them. `# escape=`` makes the
//!   backtick the escape and line-continuation character.
//! - A line ending in the escape character continues on the next one;
//!   comment lines and blank lines inside a continuation are skipped.
//! - Flags (`--from=x`) are the `--` words right after the instruction
//!   name, with quotes and escapes read in them.
//! - RUN, COPY and ADD (also under ONBUILD) read heredocs: each `<<WORD`
//!   (`<<-WORD` strips leading tabs, a quoted word means "do not expand
//!   the body") takes the lines after the instruction up to `WORD`.
//! - Instructions that take a JSON array (RUN, CMD, ENTRYPOINT, SHELL,
//!   COPY, ADD, VOLUME, HEALTHCHECK CMD) try JSON first; text that is not
//!   valid JSON is the shell form, as docker does, but a valid array of
//!   something other than strings is an error.

use super::shell::{Lexer, Vars};
use super::DockerfileError;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    pub file: String,
    /// `\` unless `# escape=`` said otherwise.
    pub escape: char,
    /// `# syntax=`: recorded; hoist reads the Dockerfile itself.
    pub syntax: Option<String>,
    /// `# check=`: BuildKit's lint settings; recorded, not acted on.
    pub check: Option<String>,
    pub nodes: Vec<Node>,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The instruction name as written (`run`, `RUN`, `Run`).
    pub keyword: String,
    /// `--name[=value]` words, quotes and escapes read.
    pub flags: Vec<String>,
    pub args: Args,
    pub heredocs: Vec<Heredoc>,
    /// The whole instruction, continuations joined.
    pub original: String,
    /// 1-based lines, the heredoc bodies included.
    pub start_line: usize,
    pub end_line: usize,
    /// 1-based column of the keyword.
    pub column: usize,
}

/// An instruction's arguments, as the parser splits them per instruction.
#[derive(Debug, Clone, PartialEq)]
pub enum Args {
    None,
    /// A JSON array of strings (exec form).
    Json(Vec<String>),
    /// The rest of the line as written (shell form, or one value).
    Text(String),
    /// Words: split on blanks (FROM, EXPOSE, COPY...) or, for ARG, split
    /// with quotes kept for the expansion to read.
    Words(Vec<String>),
    /// ENV and LABEL: `KEY=VALUE...` (values still quoted as written) or
    /// the legacy `KEY VALUE`.
    Pairs(Vec<Pair>),
    /// HEALTHCHECK: the type word (CMD, NONE) and the command.
    Health {
        kind: String,
        cmd: Box<Args>,
    },
    /// ONBUILD: the instruction it wraps.
    Sub(Box<Node>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub key: String,
    pub value: String,
    /// `ENV K V`, without `=`.
    pub legacy: bool,
}

/// A heredoc body attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, quotes removed.
    pub name: String,
    /// `3<<EOF`: the file descriptor; 0 when not given.
    pub fd: u32,
    /// Unquoted delimiter: the body's variables are expanded.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body's lines.
    pub chomp: bool,
    /// The lines, each with its line ending.
    pub content: String,
}

impl Heredoc {
    /// The body as it is used: with `<<-`, leading tabs stripped.
    pub fn body(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

impl Node {
    /// The keyword, lower-cased.
    pub fn name(&self) -> String {
        self.keyword.to_ascii_lowercase()
    }

    /// An error at this instruction.
    pub fn error(&self, file: &str, message: impl Into<String>) -> DockerfileError {
        DockerfileError {
            file: file.to_owned(),
            line: self.start_line,
            column: self.column,
            message: message.into(),
        }
    }

    /// An error pointing at `needle` when it is on the instruction's
    /// first line, else at the instruction.
    pub fn error_at(
        &self,
        file: &str,
        needle: &str,
        message: impl Into<String>,
    ) -> DockerfileError {
        let mut e = self.error(file, message);
        let first = self.original.split('\n').next().unwrap_or_default();
        if let Some(i) = first.find(needle).filter(|_| !needle.is_empty()) {
            e.column = self.column + first[..i].chars().count();
        }
        e
    }

    /// A stable one-line form for tests: `name ["flags"] args`.
    pub fn dump(&self) -> String {
        let mut s = self.name();
        if !self.flags.is_empty() {
            s.push_str(&format!(" {:?}", self.flags));
        }
        let args = self.args.dump();
        if !args.is_empty() {
            s.push(' ');
            s.push_str(&args);
        }
        for h in &self.heredocs {
            s.push_str(&format!(
                " <<{}{}{}{}={:?}",
                if h.fd != 0 {
                    h.fd.to_string()
                } else {
                    String::new()
                },
                if h.chomp { "-" } else { "" },
                if h.expand { "" } else { "'" },
                h.name,
                h.content
            ));
        }
        s
    }
}

impl Args {
    fn dump(&self) -> String {
        match self {
            Args::None => String::new(),
            Args::Json(v) => format!("json{v:?}"),
            Args::Text(t) => format!("{t:?}"),
            Args::Words(w) => format!("{w:?}"),
            Args::Pairs(ps) => ps
                .iter()
                .map(|p| {
                    format!(
                        "{:?}{}{:?}",
                        p.key,
                        if p.legacy { " " } else { "=" },
                        p.value
                    )
                })
                .collect::<Vec<_>>()
                .join(" "),
            Args::Health { kind, cmd } => format!("{kind:?} {}", cmd.dump()).trim_end().to_owned(),
            Args::Sub(n) => format!("({})", n.dump()),
        }
    }
}

/// The instructions that may carry heredocs.
fn takes_heredocs(name: &str) -> bool {
    matches!(name, "run" | "copy" | "add")
}

/// Blanks as BuildKit's `[\t\v\f\r ]` splits on.
fn is_blank(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Parses a Dockerfile; `file` names it in errors.
pub fn parse(bytes: &[u8], file: &str) -> Result<Dockerfile, DockerfileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        DockerfileError {
            file: file.to_owned(),
            line,
            column: 1,
            message: "not UTF-8 text: save the Dockerfile as UTF-8".to_owned(),
        }
    })?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let at = |line: usize, column: usize, message: String| DockerfileError {
        file: file.to_owned(),
        line,
        column,
        message,
    };

    let mut df = Dockerfile {
        file: file.to_owned(),
        escape: '\\',
        syntax: None,
        check: None,
        nodes: Vec::new(),
    };

    // Directives: a prefix of `# key=value` lines.
    let mut i = 0;
    let mut seen: Vec<String> = Vec::new();
    while i < lines.len() {
        let Some((key, value)) = directive(lines[i]) else {
            break;
        };
        if seen.contains(&key) {
            return Err(at(
                i + 1,
                1,
                format!("only one `# {key}=` parser directive can be used: remove this one"),
            ));
        }
        match key.as_str() {
            "syntax" => df.syntax = Some(value),
            "check" => df.check = Some(value),
            _ => {
                df.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(at(
                            i + 1,
                            1,
                            format!(
                                "invalid escape token `{value}`: use `# escape=\\` or `# escape=``"
                            ),
                        ));
                    }
                }
            }
        }
        seen.push(key);
        i += 1;
    }

    let esc = df.escape;
    while i < lines.len() {
        let raw = trim_newline(lines[i]);
        let start_line = i + 1;
        i += 1;
        let trimmed = raw.trim_start();
        let column = raw[..raw.len() - trimmed.len()].chars().count() + 1;
        if trimmed.starts_with('#') {
            continue;
        }
        let (first, mut done) = continuation(trimmed, esc);
        if done && first.is_empty() {
            continue;
        }
        let mut line = first.to_owned();
        while !done && i < lines.len() {
            let next = trim_newline(lines[i]);
            i += 1;
            if next.trim_start().starts_with('#') || next.trim_start().is_empty() {
                continue;
            }
            let (part, d) = continuation(next, esc);
            line.push_str(part);
            done = d;
        }
        let end_line = i;
        let mut node = node_from_line(&line, esc).map_err(|m| at(start_line, column, m))?;
        node.start_line = start_line;
        node.column = column;
        let heredoc_node = match &node.args {
            Args::Sub(inner) if node.name() == "onbuild" => inner.as_ref(),
            _ => &node,
        };
        let wants_heredocs = takes_heredocs(&heredoc_node.name())
            && !matches!(heredoc_node.args, Args::Json(_))
            && line.contains("<<");
        if wants_heredocs {
            for mut h in heredoc_words(&line) {
                let mut terminated = false;
                while i < lines.len() {
                    let body_line = lines[i];
                    i += 1;
                    let mut candidate = body_line.trim_end_matches(['\r', '\n']);
                    if h.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == h.name {
                        terminated = true;
                        break;
                    }
                    h.content.push_str(body_line);
                }
                if !terminated {
                    return Err(at(
                        start_line,
                        column,
                        format!(
                            "unterminated heredoc `<<{}`: end it with a line holding only `{}`",
                            h.name, h.name
                        ),
                    ));
                }
                node.heredocs.push(h);
            }
        }
        node.end_line = end_line.max(i);
        let (start, end) = (node.start_line, node.end_line);
        if let Args::Sub(inner) = &mut node.args {
            inner.start_line = start;
            inner.end_line = end;
            inner.column = column;
        }
        df.nodes.push(node);
    }
    if df.nodes.is_empty() {
        return Err(at(
            lines.len().max(1),
            1,
            "file with no instructions: a Dockerfile needs at least a FROM line".to_owned(),
        ));
    }
    Ok(df)
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

/// A parser directive line: `# key = value` with a known key.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = trim_newline(line)
        .trim_start()
        .strip_prefix('#')?
        .trim_start();
    let (key, value) = rest.split_once('=')?;
    let key = key.trim_end();
    let mut chars = key.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric());
    let value = value.trim();
    let key = key.to_ascii_lowercase();
    (ok && !value.is_empty() && matches!(key.as_str(), "syntax" | "escape" | "check"))
        .then(|| (key, value.to_owned()))
}

/// Strips a trailing line-continuation escape: `(line, ends here)`.
/// An escaped escape (`\\`) at the end is not a continuation.
fn continuation(line: &str, esc: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(esc) {
        if before.is_empty() || !before.ends_with(esc) {
            return (before, false);
        }
    }
    (line, true)
}

/// Splits an instruction line into a node, the lines left to the caller.
fn node_from_line(line: &str, esc: char) -> Result<Node, String> {
    let line = line.trim_matches(is_blank);
    let (keyword, rest) = match line.find(is_blank) {
        Some(p) => (&line[..p], line[p..].trim_start_matches(is_blank)),
        None => (line, ""),
    };
    let (rest, flags) = builder_flags(rest, esc);
    let rest = rest.trim();
    let name = keyword.to_ascii_lowercase();
    let args = match name.as_str() {
        "add" | "copy" | "volume" => match json(rest)? {
            Some(v) => Args::Json(v),
            None => Args::Words(split_blanks(rest)),
        },
        "cmd" | "entrypoint" | "run" | "shell" => maybe_json(rest)?,
        "arg" => Args::Words(parse_words(rest, esc)),
        "env" | "label" => name_values(rest, &name.to_ascii_uppercase(), esc)?,
        "expose" | "from" => Args::Words(split_blanks(rest)),
        "maintainer" | "stopsignal" | "user" | "workdir" => text(rest),
        "healthcheck" => {
            let (kind, cmd) = match rest.find(|c: char| c.is_whitespace()) {
                Some(p) => (&rest[..p], rest[p..].trim_start()),
                None => (rest, ""),
            };
            if kind.is_empty() {
                Args::None
            } else {
                Args::Health {
                    kind: kind.to_owned(),
                    cmd: Box::new(maybe_json(cmd)?),
                }
            }
        }
        "onbuild" if !rest.is_empty() => Args::Sub(Box::new(node_from_line(rest, esc)?)),
        _ => text(rest),
    };
    Ok(Node {
        keyword: keyword.to_owned(),
        flags,
        args,
        heredocs: Vec::new(),
        original: line.to_owned(),
        start_line: 0,
        end_line: 0,
        column: 1,
    })
}

fn text(rest: &str) -> Args {
    if rest.is_empty() {
        Args::None
    } else {
        Args::Text(rest.to_owned())
    }
}

fn split_blanks(rest: &str) -> Vec<String> {
    rest.split(is_blank)
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A JSON array of strings, `None` when `rest` is not valid JSON.
fn json(rest: &str) -> Result<Option<Vec<String>>, String> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            other => Err(format!(
                "when using JSON array syntax, arrays must be comprised of strings only: quote `{other}`"
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn maybe_json(rest: &str) -> Result<Args, String> {
    if rest.is_empty() {
        return Ok(Args::None);
    }
    Ok(match json(rest)? {
        Some(v) => Args::Json(v),
        None => Args::Text(rest.to_owned()),
    })
}

/// The leading `--flag` words of `line` and what follows them. A bare
/// `--` ends the flags.
fn builder_flags(line: &str, esc: char) -> (&str, Vec<String>) {
    let mut flags = Vec::new();
    let mut rest = line;
    loop {
        let trimmed = rest.trim_start();
        if !trimmed.starts_with("--") {
            return (trimmed, flags);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut quoted = false;
        let mut chars = trimmed.char_indices();
        let mut end = trimmed.len();
        while let Some((p, c)) = chars.next() {
            match quote {
                None if c.is_whitespace() => {
                    end = p;
                    break;
                }
                None if c == '\'' || c == '"' => {
                    quote = Some(c);
                    quoted = true;
                }
                Some(q) if c == q => quote = None,
                _ if c == esc => {
                    if let Some((_, n)) = chars.next() {
                        word.push(n);
                    }
                }
                _ => word.push(c),
            }
        }
        rest = &trimmed[end..];
        if word == "--" && !quoted {
            return (rest.trim_start(), flags);
        }
        if quoted || !word.is_empty() {
            flags.push(word);
        }
    }
}

/// Words with quotes kept (ARG, ENV, LABEL): the expansion removes them.
fn parse_words(rest: &str, esc: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            None => {
                if c.is_whitespace() {
                    if in_word && (blank_ok || !word.is_empty()) {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    in_word = false;
                    blank_ok = false;
                    continue;
                }
                in_word = true;
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    blank_ok = true;
                }
                if c == esc {
                    match chars.next() {
                        None => continue,
                        Some(n) => {
                            word.push(c);
                            word.push(n);
                            continue;
                        }
                    }
                }
                word.push(c);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == esc && q != '\'' {
                    match chars.next() {
                        None => {
                            quote = None;
                            continue;
                        }
                        Some(n) => {
                            word.push(c);
                            word.push(n);
                            quote = Some(q);
                            continue;
                        }
                    }
                }
                word.push(c);
            }
        }
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// ENV and LABEL: `K=V K2="v 2"` or the legacy `K the value`.
fn name_values(rest: &str, instruction: &str, esc: char) -> Result<Args, String> {
    let words = parse_words(rest, esc);
    let Some(first) = words.first() else {
        return Ok(Args::None);
    };
    if !first.contains('=') {
        let Some(p) = rest.find(is_blank) else {
            return Err(format!(
                "{instruction} must have two arguments: write `{instruction} {rest}=VALUE`"
            ));
        };
        return Ok(Args::Pairs(vec![Pair {
            key: rest[..p].to_owned(),
            value: rest[p..].trim_start_matches(is_blank).to_owned(),
            legacy: true,
        }]));
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Ok(Pair {
                key: k.to_owned(),
                value: v.to_owned(),
                legacy: false,
            }),
            None => Err(format!(
                "syntax error: can't find = in `{w}`: {instruction} takes name=value pairs (quote values with blanks)"
            )),
        })
        .collect::<Result<_, _>>()
        .map(Args::Pairs)
}

/// The heredocs a line opens, in order, bodies still empty.
fn heredoc_words(line: &str) -> Vec<Heredoc> {
    let raw = Lexer {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
        ..Lexer::new('\\')
    };
    let words = raw.words(line, &Vars::new()).unwrap_or_default();
    words.iter().filter_map(|w| heredoc_word(w)).collect()
}

/// `[N]<<[-]WORD` -> a heredoc, if `w` is one.
pub fn heredoc_word(w: &str) -> Option<Heredoc> {
    let digits = w.len() - w.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let rest = w[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let fd = if digits == 0 {
        0
    } else {
        w[..digits].parse().ok()?
    };
    let lx = Lexer {
        skip_unset: true,
        ..Lexer::new('\\')
    };
    let words = lx.words(rest, &Vars::new()).ok()?;
    let [name] = words.as_slice() else {
        return None;
    };
    let raw = Lexer {
        raw_quotes: true,
        ..lx
    };
    let raw_name = raw.word(rest, &Vars::new()).ok()?;
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    Some(Heredoc {
        name: name.clone(),
        fd,
        expand: quotes(name) == quotes(&raw_name),
        chomp,
        content: String::new(),
    })
}

#[cfg(test)]
mod tests;
