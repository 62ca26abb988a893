//! The layout rule that data flows one way: no circle of imports between
//! the top-level modules of `src/` (LAYOUT.md, "Which module may use
//! which"). A circle means no module in it can be read, tested or moved
//! without the others, and the build graph and the frontends coming next
//! need a tree they can land in that says which way data goes.
//!
//! The check reads the source rather than asking rustc, so it runs without
//! a nightly compiler or a dependency: [`graph`] takes the text of the files
//! and returns the edges between top-level modules, each with the places
//! that make it; [`circles`] finds the circles and, for each, the edges
//! that close it against the flow. Both are tested below on small synthetic
//! trees; `src_has_no_circle` runs them on the real `src/`.
//!
//! What counts as an edge from module `a` (the file `src/a.rs` or anything
//! under `src/a/`) to module `b`:
//! - a path that starts `crate::b` (or `$crate::b` in a macro), in a `use`
//!   or inline in code, whatever the spacing or line breaks, and each first
//!   name of a group, `use crate::{b::X, c}`, but not the names nested
//!   deeper in it;
//! - a path of `super::` that climbs to the crate root and names `b` there
//!   (`super::b` in `src/a.rs`, `super::super::b` in `src/a/x.rs`, one more
//!   `super` per inline `mod` it is written in);
//! - only when `b` is a top-level module: `crate::error_chain` names a
//!   function of the root, not a module.
//!
//! Comments, doc comments and the insides of string and char literals are
//! blanked before reading, so a path in them is no edge. `lib.rs` and
//! `main.rs` are crate roots, not modules; `hoist::` paths in the binary are
//! not read (the library cannot import the binary back, so they close no
//! circle).
//!
//! Test code is left out: rustc does not build it into hoist, and tests may
//! reach across the tree. It is found the way rustc finds it, not by file
//! name: the files are walked from the crate roots through their `mod`
//! declarations, a file declared under `#[cfg(test)]` (or `cfg(all(test,
//! ..))`) is test code with all it declares, and inside a file an item under
//! that attribute is skipped up to its `;` or the `}` that closes its body.
//! A `#![cfg(test)]` makes its whole module test code. A `.rs` file under
//! `src/` that no `mod` declares is an error (cargo would not build it, so
//! the check could not vouch for it), as is a `mod x;` whose file is missing
//! (a `#[path]` attribute is not followed).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

/// One place that makes an edge: the file (relative to `src/`), its line
/// (1-based) and that line's text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Site {
    file: String,
    line: usize,
    text: String,
}

/// The edges between the top-level modules of a source tree.
#[derive(Debug, Default)]
struct Graph {
    modules: BTreeSet<String>,
    /// (from, to) -> every place that makes the edge, in file and line order.
    edges: BTreeMap<(String, String), Vec<Site>>,
}

/// One circle (a strongly connected set of modules) and the edges that
/// close it.
#[derive(Debug)]
struct Circle {
    modules: Vec<String>,
    closing: Vec<Closing>,
}

/// An edge against the flow, and the circle it closes: `path` runs from
/// `to` along the flow back to `from`.
#[derive(Debug)]
struct Closing {
    from: String,
    to: String,
    path: Vec<String>,
    site: Site,
}

// ---------------------------------------------------------------- lexing

/// The text with comments and string and char literals blanked to spaces.
/// Newlines are kept, so lines still count, and whole characters are
/// replaced, so the text stays UTF-8.
fn blank(src: &str) -> String {
    let s = src.as_bytes();
    let n = s.len();
    let mut out = s.to_vec();
    let wipe = |out: &mut Vec<u8>, from: usize, to: usize| {
        for b in &mut out[from..to.min(n)] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    };
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
    let mut i = 0;
    while i < n {
        let c = s[i];
        let next = s.get(i + 1).copied();
        if c == b'/' && next == Some(b'/') {
            let end = s[i..].iter().position(|&b| b == b'\n').map_or(n, |p| i + p);
            wipe(&mut out, i, end);
            i = end;
        } else if c == b'/' && next == Some(b'*') {
            let (mut depth, mut j) = (1, i + 2);
            while j < n && depth > 0 {
                if s[j] == b'/' && s.get(j + 1) == Some(&b'*') {
                    depth += 1;
                    j += 2;
                } else if s[j] == b'*' && s.get(j + 1) == Some(&b'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            wipe(&mut out, i, j);
            i = j;
        } else if c == b'"' {
            let mut j = i + 1;
            while j < n && s[j] != b'"' {
                j += if s[j] == b'\\' { 2 } else { 1 };
            }
            wipe(&mut out, i, j + 1);
            i = j + 1;
        } else if (c == b'r' || ((c == b'b' || c == b'c') && next == Some(b'r')))
            && (i == 0 || !ident(s[i - 1]))
        {
            // r"..", r#".."#, br"..", cr"..": no escapes, ends at `"` and as many `#`.
            let start = i + if c == b'r' { 1 } else { 2 };
            let hashes = s[start..].iter().take_while(|&&b| b == b'#').count();
            if s.get(start + hashes) != Some(&b'"') {
                i += 1; // an identifier (or r#raw identifier)
                continue;
            }
            let mut j = start + hashes + 1;
            while j < n
                && !(s[j] == b'"'
                    && s[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&b| b == b'#')
                        .count()
                        == hashes)
            {
                j += 1;
            }
            let end = j + 1 + hashes;
            wipe(&mut out, i, end);
            i = end;
        } else if c == b'\'' {
            // A char literal, or a lifetime or label ('a, 'static), which stays.
            if next == Some(b'\\') {
                let mut j = i + 3;
                while j < n && s[j] != b'\'' {
                    j += 1;
                }
                wipe(&mut out, i, j + 1);
                i = j + 1;
            } else {
                let len = next.map_or(1, |b| match b {
                    0xf0.. => 4,
                    0xe0.. => 3,
                    0xc0.. => 2,
                    _ => 1,
                });
                if s.get(i + 1 + len) == Some(&b'\'') {
                    wipe(&mut out, i, i + 2 + len);
                    i += 2 + len;
                } else {
                    i += 1;
                }
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A token of blanked text: an identifier or number, `::`, or one other
/// character; and its line.
#[derive(Debug, Clone, Copy)]
struct Tok<'a> {
    text: &'a str,
    line: usize,
}

fn tokens(text: &str) -> Vec<Tok<'_>> {
    let s = text.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
    let (mut out, mut line, mut i) = (Vec::new(), 1, 0);
    while i < s.len() {
        let c = s[i];
        let len = if c == b'\n' {
            line += 1;
            i += 1;
            continue;
        } else if c.is_ascii_whitespace() || c == b'\'' {
            i += 1;
            continue;
        } else if ident(c) {
            s[i..].iter().take_while(|&&b| ident(b)).count()
        } else if c == b':' && s.get(i + 1) == Some(&b':') {
            2
        } else {
            1
        };
        // Token boundaries fall on ASCII bytes, so the slice is whole characters.
        out.push(Tok {
            text: &text[i..i + len],
            line,
        });
        i += len;
    }
    out
}

/// The index of the bracket that closes the one at `open`, or the last token.
fn closer(toks: &[Tok], open: usize) -> usize {
    let mut depth = 0usize;
    for (j, t) in toks.iter().enumerate().skip(open) {
        match t.text {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j;
                }
            }
            _ => {}
        }
    }
    toks.len().saturating_sub(1)
}

/// Whether a cfg predicate (the tokens inside `cfg( .. )`) holds only in
/// test builds: `test`, or `all(..)` with such a predicate among its own.
fn test_only(pred: &[Tok]) -> bool {
    match pred {
        [t] => t.text == "test",
        [all, open, inner @ .., close]
            if all.text == "all" && open.text == "(" && close.text == ")" =>
        {
            let mut depth = 0usize;
            let mut start = 0;
            for (j, t) in inner.iter().enumerate() {
                match t.text {
                    "(" | "[" | "{" => depth += 1,
                    ")" | "]" | "}" => depth = depth.saturating_sub(1),
                    "," if depth == 0 => {
                        if test_only(&inner[start..j]) {
                            return true;
                        }
                        start = j + 1;
                    }
                    _ => {}
                }
            }
            test_only(&inner[start..])
        }
        _ => false,
    }
}

/// Marks the tokens that are test code: items under `#[cfg(test)]`, and the
/// rest of a block (or file) that says `#![cfg(test)]`.
fn test_mask(toks: &[Tok]) -> Vec<bool> {
    let mut mask = vec![false; toks.len()];
    let mut open: Vec<usize> = Vec::new(); // indexes of the enclosing `{`
    let at = |j: usize| toks.get(j).map_or("", |t| t.text);
    let mut i = 0;
    while i < toks.len() {
        match at(i) {
            "{" => open.push(i),
            "}" => {
                open.pop();
            }
            "#" => {
                let inner = at(i + 1) == "!";
                let bracket = if inner { i + 2 } else { i + 1 };
                if at(bracket) == "[" {
                    let end = closer(toks, bracket);
                    let body = &toks[bracket + 1..end];
                    let is_test = body.len() > 3
                        && body[0].text == "cfg"
                        && body[1].text == "("
                        && body[body.len() - 1].text == ")"
                        && test_only(&body[2..body.len() - 1]);
                    if is_test {
                        let (from, to) = match (inner, open.last()) {
                            (false, _) => (i, item_end(toks, end + 1)),
                            (true, Some(&brace)) => (brace, closer(toks, brace)),
                            (true, None) => (0, toks.len().saturating_sub(1)),
                        };
                        mask[from..=to.min(toks.len() - 1)].fill(true);
                    }
                    i = end + 1;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    mask
}

/// The last token of the item that starts at `start` (after its
/// attributes): its `;` or `,`, or the `}` that closes its body, or the
/// token before the bracket that closes the enclosing block.
fn item_end(toks: &[Tok], start: usize) -> usize {
    let mut j = start;
    while toks.get(j).is_some_and(|t| t.text == "#")
        && toks.get(j + 1).is_some_and(|t| t.text == "[")
    {
        j = closer(toks, j + 1) + 1;
    }
    let mut depth = 0usize;
    while j < toks.len() {
        match toks[j].text {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" if depth == 0 => return j.saturating_sub(1),
            ")" | "]" => depth -= 1,
            "}" => {
                depth -= 1;
                if depth == 0 {
                    return if toks.get(j + 1).is_some_and(|t| t.text == ";") {
                        j + 1
                    } else {
                        j
                    };
                }
            }
            ";" | "," if depth == 0 => return j,
            _ => {}
        }
        j += 1;
    }
    toks.len().saturating_sub(1)
}

// ---------------------------------------------------------------- reading

/// A `mod name;` declaration: the inline modules it sits in, whether it is
/// test code, and its line.
#[derive(Debug)]
struct ModDecl {
    inline: Vec<String>,
    name: String,
    test: bool,
    line: usize,
}

/// What one file says: the `mod x;` it declares, the inline modules it
/// opens at its top, and the names its paths reach at the crate root, with
/// their lines (test code left out).
#[derive(Debug, Default)]
struct FileFacts {
    mods: Vec<ModDecl>,
    inline_mods: Vec<String>,
    roots: Reached,
}

/// Reads one file. `depth` is how deep the file's module sits below the
/// crate root (0 for `lib.rs`, 1 for `src/a.rs`, 2 for `src/a/x.rs`).
fn read_file(text: &str, depth: usize) -> FileFacts {
    let blanked = blank(text);
    let toks = tokens(&blanked);
    let mask = test_mask(&toks);
    let at = |j: usize| toks.get(j).map_or("", |t| t.text);
    let mut facts = FileFacts::default();
    // The enclosing brackets, each with the name of the inline module it opens.
    let mut open: Vec<Option<&str>> = Vec::new();
    // The names at the crate root that the path or group starting at `j` reaches.
    let reach = |j: usize, out: &mut Vec<(String, usize)>| {
        if at(j) == "{" {
            let mut depth = 0;
            for k in j..closer(&toks, j) {
                match at(k) {
                    "{" => depth += 1,
                    "}" => depth -= 1,
                    _ => {}
                }
                if depth == 1 && matches!(at(k), "{" | ",") && is_name(at(k + 1)) {
                    out.push((at(k + 1).to_string(), toks[k + 1].line));
                }
            }
        } else if is_name(at(j)) {
            out.push((at(j).to_string(), toks[j].line));
        }
    };
    for i in 0..toks.len() {
        match at(i) {
            "{" | "(" | "[" => {
                let name = (at(i) == "{" && i >= 2 && at(i - 2) == "mod").then(|| at(i - 1));
                if let (Some(name), true) = (name, open.is_empty()) {
                    facts.inline_mods.push(name.to_string());
                }
                open.push(name);
            }
            "}" | ")" | "]" => {
                open.pop();
            }
            "mod" if is_name(at(i + 1)) && at(i + 2) == ";" => facts.mods.push(ModDecl {
                inline: open.iter().flatten().map(|m| m.to_string()).collect(),
                name: at(i + 1).to_string(),
                test: mask[i],
                line: toks[i].line,
            }),
            _ if mask[i] => {}
            "crate" if at(i + 1) == "::" => reach(i + 2, &mut facts.roots),
            "super" if at(i + 1) == "::" && at(i.wrapping_sub(1)) != "::" => {
                let mut k = i;
                while at(k) == "super" && at(k + 1) == "::" {
                    k += 2;
                }
                if (k - i) / 2 == depth + open.iter().flatten().count() {
                    reach(k, &mut facts.roots);
                }
            }
            _ => {}
        }
    }
    facts
}

/// Whether a token names a module (and is not `self`, `super`, `*` ..).
fn is_name(t: &str) -> bool {
    t.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && !matches!(t, "self" | "super" | "crate")
}

/// The names at the crate root a file's paths reach, with their lines.
type Reached = Vec<(String, usize)>;

/// A file to read: its path, its top-level module (none for a crate root),
/// how deep its module sits, whether it is test code, and its crate root.
struct Pending {
    file: String,
    top: Option<String>,
    depth: usize,
    test: bool,
    root: String,
}

/// The edges between the top-level modules of a source tree, from its
/// files: each a path relative to `src/` (`lib.rs`, `store/gc.rs`) and its
/// text. Errors name a file no `mod` declares, or a `mod` whose file is
/// missing.
fn graph<P: AsRef<str>, T: AsRef<str>>(files: &[(P, T)]) -> Result<Graph, String> {
    let texts: BTreeMap<&str, &str> = files
        .iter()
        .map(|(p, t)| (p.as_ref(), t.as_ref()))
        .collect();
    let is_root = |p: &str| {
        matches!(p, "lib.rs" | "main.rs")
            || p.strip_prefix("bin/")
                .is_some_and(|b| !b.contains('/') || b.ends_with("/main.rs"))
    };
    let mut queue: VecDeque<Pending> = texts
        .keys()
        .filter(|p| is_root(p))
        .map(|p| Pending {
            file: p.to_string(),
            top: None,
            depth: 0,
            test: false,
            root: p.to_string(),
        })
        .collect();
    if queue.is_empty() {
        return Err("no crate root (lib.rs, main.rs or bin/*.rs) among the files".into());
    }
    let mut seen = BTreeSet::new();
    // Each crate root's top-level modules.
    let mut modules: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // The files that are code: (file, its module, its crate root, what it reaches).
    let mut code: Vec<(String, String, String, Reached)> = Vec::new();
    while let Some(p) = queue.pop_front() {
        if !seen.insert(p.file.clone()) {
            continue;
        }
        let facts = read_file(texts[p.file.as_str()], p.depth);
        // Where its `mod x;` files sit: beside a crate root or a mod.rs, else in a folder named for it.
        let dir = if p.top.is_none() || p.file == "mod.rs" || p.file.ends_with("/mod.rs") {
            p.file.rsplit_once('/').map_or("", |(d, _)| d).to_string()
        } else {
            p.file.trim_end_matches(".rs").to_string()
        };
        if p.top.is_none() {
            let names = modules.entry(p.root.clone()).or_default();
            names.extend(facts.inline_mods.iter().cloned());
            names.extend(
                facts
                    .mods
                    .iter()
                    .filter(|m| m.inline.is_empty())
                    .map(|m| m.name.clone()),
            );
        }
        for m in &facts.mods {
            let base = std::iter::once(dir.as_str())
                .filter(|d| !d.is_empty())
                .chain(m.inline.iter().map(String::as_str))
                .chain(std::iter::once(m.name.as_str()))
                .collect::<Vec<_>>()
                .join("/");
            let child = [format!("{base}.rs"), format!("{base}/mod.rs")]
                .into_iter()
                .find(|c| texts.contains_key(c.as_str()))
                .ok_or_else(|| {
                    format!(
                        "src/{}:{}: `mod {};` names neither src/{base}.rs nor src/{base}/mod.rs \
                         (this check does not follow #[path])",
                        p.file, m.line, m.name
                    )
                })?;
            queue.push_back(Pending {
                file: child,
                top: Some(
                    p.top
                        .clone()
                        .unwrap_or_else(|| m.inline.first().unwrap_or(&m.name).clone()),
                ),
                depth: p.depth + m.inline.len() + 1,
                test: p.test || m.test,
                root: p.root.clone(),
            });
        }
        if let (Some(top), false) = (p.top, p.test) {
            code.push((p.file, top, p.root, facts.roots));
        }
    }
    let strays: Vec<String> = texts
        .keys()
        .filter(|p| !seen.contains(**p))
        .map(|p| format!("src/{p}"))
        .collect();
    if !strays.is_empty() {
        return Err(format!(
            "no `mod` declares {}: cargo does not build it; declare it or remove it",
            strays.join(", ")
        ));
    }
    let mut g = Graph::default();
    for names in modules.values() {
        g.modules.extend(names.iter().cloned());
    }
    for (file, from, root, roots) in code {
        for (to, line) in roots {
            if to != from && modules[&root].contains(&to) {
                let text = texts[file.as_str()]
                    .lines()
                    .nth(line - 1)
                    .unwrap_or("")
                    .trim()
                    .to_string();
                let site = Site {
                    file: file.clone(),
                    line,
                    text,
                };
                g.edges.entry((from.clone(), to)).or_default().push(site);
            }
        }
    }
    Ok(g)
}

// ---------------------------------------------------------------- circles

/// The circles of a graph: its strongly connected sets of more than one
/// module (Tarjan), each with the edges that close it.
///
/// Which edges those are is a choice, made to be the few worth cutting:
/// the modules of a circle are put in the order that leaves the fewest
/// uses pointing backwards (the greedy order of Eades, Lin and Smyth,
/// weighted by the number of uses, then improved by moving one module at a
/// time while that helps). The edges against that order are named, except
/// one that closes no circle once the lighter ones are cut (tried from the
/// most uses down). Cutting the edges named leaves no circle; in a circle of
/// two, the edge named is the one with fewer uses.
fn circles(g: &Graph) -> Vec<Circle> {
    let out: BTreeMap<&str, Vec<&str>> = g
        .modules
        .iter()
        .map(|m| {
            let to = g
                .edges
                .keys()
                .filter(|(a, _)| a == m)
                .map(|(_, b)| b.as_str())
                .collect();
            (m.as_str(), to)
        })
        .collect();
    let mut found = Vec::new();
    for set in strong_sets(&out) {
        let weight: Vec<Vec<usize>> = set
            .iter()
            .map(|a| {
                set.iter()
                    .map(|b| {
                        g.edges
                            .get(&(a.to_string(), b.to_string()))
                            .map_or(0, Vec::len)
                    })
                    .collect()
            })
            .collect();
        let order = sift(greedy_order(&weight), &weight);
        let mut pos = vec![0; set.len()];
        for (i, &m) in order.iter().enumerate() {
            pos[m] = i;
        }
        // The edges along the order, and those against it, fewest uses first.
        let mut kept: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        let mut against = Vec::new();
        for (a, row) in weight.iter().enumerate() {
            for (b, &w) in row.iter().enumerate().filter(|(_, &w)| w > 0) {
                if pos[a] < pos[b] {
                    kept.entry(a).or_default().push(b);
                } else {
                    against.push((w, a, b));
                }
            }
        }
        against.sort_by_key(|&(w, a, b)| (w, set[a], set[b]));
        let mut closing = Vec::new();
        // Keep the heavier edges that close nothing once the lighter ones are cut.
        for &(_, a, b) in against.iter().rev() {
            match path(&kept, b, a) {
                Some(path) => closing.push(Closing {
                    from: set[a].to_string(),
                    to: set[b].to_string(),
                    path: path.iter().map(|&m| set[m].to_string()).collect(),
                    site: g.edges[&(set[a].to_string(), set[b].to_string())][0].clone(),
                }),
                None => kept.entry(a).or_default().push(b),
            }
        }
        closing.sort_by(|x, y| (&x.from, &x.to).cmp(&(&y.from, &y.to)));
        found.push(Circle {
            modules: set.iter().map(|m| m.to_string()).collect(),
            closing,
        });
    }
    found
}

/// Tarjan's strongly connected sets of more than one module, each sorted.
fn strong_sets<'a>(out: &BTreeMap<&'a str, Vec<&'a str>>) -> Vec<Vec<&'a str>> {
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        sets: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(v: &'a str, out: &BTreeMap<&'a str, Vec<&'a str>>, st: &mut State<'a>) {
        let n = st.index.len();
        st.index.insert(v, n);
        st.low.insert(v, n);
        st.stack.push(v);
        for &w in out.get(v).into_iter().flatten() {
            if !st.index.contains_key(w) {
                visit(w, out, st);
                let lw = st.low[w];
                st.low.entry(v).and_modify(|l| *l = (*l).min(lw));
            } else if st.stack.contains(&w) {
                let iw = st.index[w];
                st.low.entry(v).and_modify(|l| *l = (*l).min(iw));
            }
        }
        if st.low[v] == st.index[v] {
            let at = st.stack.iter().rposition(|&m| m == v).unwrap_or(0);
            let mut set = st.stack.split_off(at);
            if set.len() > 1 {
                set.sort();
                st.sets.push(set);
            }
        }
    }
    let mut st = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        sets: Vec::new(),
    };
    for &v in out.keys() {
        if !st.index.contains_key(v) {
            visit(v, out, &mut st);
        }
    }
    st.sets.sort();
    st.sets
}

/// Orders the modules `0..n` of a set (with `weight[a][b]` uses from `a`
/// of `b`) so that few uses point backwards: take sinks to the end and
/// sources to the front while there are any, else the module whose uses
/// out most outweigh its uses in (Eades, Lin and Smyth).
fn greedy_order(weight: &[Vec<usize>]) -> Vec<usize> {
    let mut left: Vec<usize> = (0..weight.len()).collect();
    let (mut front, mut back) = (Vec::new(), Vec::new());
    let w_out = |m: usize, left: &[usize]| left.iter().map(|&o| weight[m][o]).sum::<usize>();
    let w_in = |m: usize, left: &[usize]| left.iter().map(|&o| weight[o][m]).sum::<usize>();
    while !left.is_empty() {
        if let Some(i) = left.iter().position(|&m| w_out(m, &left) == 0) {
            back.push(left.remove(i));
        } else if let Some(i) = left.iter().position(|&m| w_in(m, &left) == 0) {
            front.push(left.remove(i));
        } else {
            let score = |m: usize| w_out(m, &left) as i64 - w_in(m, &left) as i64;
            let best = (0..left.len())
                .max_by_key(|&i| (score(left[i]), std::cmp::Reverse(i)))
                .unwrap_or(0);
            front.push(left.remove(best));
        }
    }
    back.reverse();
    front.extend(back);
    front
}

/// Improves an order by moving one module at a time to the place where
/// the fewest uses point backwards, while any move helps.
fn sift(mut order: Vec<usize>, weight: &[Vec<usize>]) -> Vec<usize> {
    let cost = |o: &[usize]| -> usize {
        (0..o.len())
            .map(|j| o[..j].iter().map(|&i| weight[o[j]][i]).sum::<usize>())
            .sum()
    };
    loop {
        let mut improved = false;
        for m in order.clone() {
            let now = cost(&order);
            let rest: Vec<usize> = order.iter().copied().filter(|&x| x != m).collect();
            let best = (0..=rest.len())
                .map(|i| {
                    let mut o = rest.clone();
                    o.insert(i, m);
                    o
                })
                .min_by_key(|o| cost(o));
            if let Some(o) = best.filter(|o| cost(o) < now) {
                order = o;
                improved = true;
            }
        }
        if !improved {
            return order;
        }
    }
}

/// The shortest path from `from` to `to` (breadth first), both ends
/// included, if there is one.
fn path(out: &BTreeMap<usize, Vec<usize>>, from: usize, to: usize) -> Option<Vec<usize>> {
    let mut came: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(v) = queue.pop_front() {
        if v == to {
            let mut path = vec![to];
            let mut v = to;
            while v != from {
                v = came[&v];
                path.push(v);
            }
            path.reverse();
            return Some(path);
        }
        for &w in out.get(&v).into_iter().flatten() {
            if w != from && !came.contains_key(&w) {
                came.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    None
}

/// The failure message: each circle, and each edge that closes it with the
/// circle it makes and one `use` that makes it.
fn describe(found: &[Circle]) -> String {
    let mut msg = String::new();
    for c in found {
        msg.push_str(&format!(
            "circle between {} top-level modules: {}\n",
            c.modules.len(),
            c.modules.join(", ")
        ));
        for e in &c.closing {
            msg.push_str(&format!(
                "  closed by {} -> {} at src/{}:{}: {}\n    {} -> {}\n",
                e.from,
                e.to,
                e.site.file,
                e.site.line,
                e.site.text,
                e.path.join(" -> "),
                e.to
            ));
        }
    }
    msg
}

// ---------------------------------------------------------------- the check

/// Every `.rs` file under `dir`, as (path relative to `root`, text).
fn read_tree(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
                .path()
        })
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            read_tree(root, &p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            let rel = p
                .strip_prefix(root)
                .unwrap_or(&p)
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, text));
        }
    }
}

#[test]
fn src_has_no_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    read_tree(&src, &src, &mut files);
    let g = graph(&files).unwrap_or_else(|e| panic!("{e}"));
    // The edges, for `-- --nocapture`: compare with what you expect.
    for ((a, b), sites) in &g.edges {
        println!("{a} -> {b}: {}", sites.len());
    }
    let found = circles(&g);
    assert!(
        found.is_empty(),
        "data must flow one way between the top-level modules of src/ (LAYOUT.md); cut an edge that closes each circle:\n{}",
        describe(&found)
    );
}

// ---------------------------------------------------------------- tests

/// A tree: the files given, and a `lib.rs` that declares a module for
/// each `x.rs` and `x/mod.rs`.
fn tree(files: &[(&str, &str)]) -> Vec<(String, String)> {
    let lib = files
        .iter()
        .filter_map(|(p, _)| {
            let m = p
                .strip_suffix("/mod.rs")
                .or_else(|| p.strip_suffix(".rs"))?;
            (!m.contains('/')).then_some(m)
        })
        .map(|m| format!("pub mod {m};\n"))
        .collect();
    let mut all = vec![("lib.rs".to_string(), lib)];
    all.extend(files.iter().map(|(p, t)| (p.to_string(), t.to_string())));
    all
}

/// The edges out of module `a` in a tree of modules a, b, c whose file
/// `a.rs` is `text` (and `a/tests.rs` is `tests`): (to, line) for each use.
fn edges_of_a(text: &str, tests: Option<&str>) -> Vec<(String, usize)> {
    let mut files = vec![("a.rs", text), ("b.rs", ""), ("c.rs", "")];
    if let Some(t) = tests {
        files.push(("a/tests.rs", t));
    }
    let g = graph(&tree(&files)).unwrap_or_else(|e| panic!("{e}"));
    let mut got: Vec<(String, usize)> = g
        .edges
        .iter()
        .filter(|((from, _), _)| from == "a")
        .flat_map(|((_, to), sites)| sites.iter().map(move |s| (to.clone(), s.line)))
        .collect();
    got.sort();
    got
}

/// The edges a case expects: (module, line).
type Want = &'static [(&'static str, usize)];

#[test]
fn edges_are_read_from_paths_not_from_comments_or_strings() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, Want)] = &[
        ("plain use", "use crate::b::X;", &[("b", 1)]),
        ("use of a module itself", "use crate::b;\nuse crate::c as see;", &[("b", 1), ("c", 2)]),
        ("grouped", "use crate::{b::X, c};", &[("b", 1), ("c", 1)]),
        ("nested group counts first names only", "use crate::{b::{c, X}, self};", &[("b", 1)]),
        ("multi-line group", "use crate::{\n    b::X,\n    c::{\n        Y,\n    },\n};", &[("b", 2), ("c", 3)]),
        ("path broken over lines", "use crate\n    ::b\n    ::X;", &[("b", 2)]),
        ("group inside a group", "use {crate::b::X, std::fmt};", &[("b", 1)]),
        ("inline path in code", "fn f() { let x = crate::b::f(); }", &[("b", 1)]),
        ("$crate in a macro", "macro_rules! m { () => { $crate::b::f() } }", &[("b", 1)]),
        ("each use is a site", "use crate::b::X;\nfn f() { crate::b::g() }", &[("b", 1), ("b", 2)]),
        ("line comment", "// use crate::b::X;\nfn f() {} // crate::c", &[]),
        ("doc comments", "//! [`crate::b`]\n/// See crate::c::X.\nfn f() {}", &[]),
        ("nested block comment", "/* a /* crate::b */ crate::c */ use crate::b::X;", &[("b", 1)]),
        ("string literal", "const S: &str = \"use crate::b::X; \\\" crate::c\";", &[]),
        ("raw string", "const S: &str = r#\"crate::b \" crate::c\"#; use crate::c::X;", &[("c", 1)]),
        ("byte string", "const S: &[u8] = b\"crate::b\";", &[]),
        ("char literals do not open strings", "const Q: char = '\"'; const E: char = '\\''; use crate::b::X;", &[("b", 1)]),
        ("lifetimes are not char literals", "fn f<'a>(x: &'a str) -> crate::b::T<'a> { todo!() }", &[("b", 1)]),
        ("visibility is no edge", "pub(crate) fn f() {}\npub(super) fn g() {}", &[]),
        ("a root item is no module", "fn f(e: &E) -> String { crate::error_chain(e) }", &[]),
        ("a module's own paths are no edge", "use crate::a::X;", &[]),
        ("super from a top-level file is the root", "use super::b::X;\nuse super::{c, error_chain};", &[("b", 1), ("c", 2)]),
        ("super inside an inline mod", "mod inner { use super::b::X; use super::super::c::Y; }", &[("c", 1)]),
        ("cfg(test) mod block", "#[cfg(test)]\nmod tests {\n    use crate::b::X;\n}\nuse crate::c::Y;", &[("c", 5)]),
        ("cfg(test) use", "#[cfg(test)]\nuse crate::{b, c};\nuse crate::c::Y;", &[("c", 3)]),
        ("cfg(test) fn", "#[cfg(test)]\n#[allow(dead_code)]\nfn f() -> crate::b::X { crate::b::x() }\nfn g() -> crate::c::Y {}", &[("c", 4)]),
        ("cfg(all(test, ..)) is test code", "#[cfg(all(unix, test))]\nuse crate::b::X;", &[]),
        ("cfg(any(test, ..)) is not", "#[cfg(any(test, unix))]\nuse crate::b::X;", &[("b", 2)]),
        ("cfg(not(test)) is not", "#[cfg(not(test))]\nuse crate::b::X;", &[("b", 2)]),
        ("inner cfg(test) makes the module test code", "mod t {\n    #![cfg(test)]\n    use crate::b::X;\n}\nuse crate::c::Y;", &[("c", 5)]),
        ("cfg(test) field", "struct S {\n    #[cfg(test)]\n    x: crate::b::X,\n    y: crate::c::Y,\n}", &[("c", 4)]),
    ];
    for (name, text, want) in cases {
        let want: Vec<(String, usize)> = want.iter().map(|(m, l)| (m.to_string(), *l)).collect();
        assert_eq!(edges_of_a(text, None), want, "{name}:\n{text}");
    }
}

#[test]
fn test_files_are_found_through_their_mod_declaration() {
    // A sibling tests.rs declared under cfg(test) is test code; the same
    // file declared plainly is not.
    let tests = "use crate::b::X;";
    assert_eq!(edges_of_a("#[cfg(test)]\nmod tests;", Some(tests)), vec![]);
    assert_eq!(
        edges_of_a("mod tests;", Some(tests)),
        vec![("b".to_string(), 1)]
    );
}

#[test]
fn files_below_a_module_belong_to_it() {
    let files = tree(&[
        ("a/mod.rs", "mod x;"),
        ("a/x.rs", "mod y;\nuse super::z;\nuse super::super::b::B;"),
        (
            "a/x/y.rs",
            "use crate::b::C;\nuse super::super::super::b::D;",
        ),
        ("b.rs", ""),
    ]);
    let g = graph(&files).unwrap_or_else(|e| panic!("{e}"));
    let sites: Vec<String> = g.edges[&("a".to_string(), "b".to_string())]
        .iter()
        .map(|s| format!("{}:{}", s.file, s.line))
        .collect();
    assert_eq!(sites, ["a/x.rs:3", "a/x/y.rs:1", "a/x/y.rs:2"]);
    assert_eq!(g.edges.len(), 1);
}

#[test]
fn a_file_no_mod_declares_or_a_missing_file_is_an_error() {
    let err = graph(&tree(&[("a.rs", ""), ("stray/x.rs", "use crate::a;")])).unwrap_err();
    assert!(err.contains("src/stray/x.rs"), "{err}");
    let err = graph(&tree(&[("a.rs", "mod gone;")])).unwrap_err();
    assert!(
        err.contains("src/a.rs:1") && err.contains("src/a/gone.rs"),
        "{err}"
    );
}

/// A case's files: (path under src/, text).
type Files = &'static [(&'static str, &'static str)];
/// A case's circles: (modules, closing edge, its site, the circle it closes).
type Named = &'static [(&'static str, &'static str, &'static str, &'static str)];

#[test]
fn circles_are_found_and_named_by_the_edge_that_closes_them() {
    // (name, files, the circle's modules, the closing edge, its site, the circle it closes)
    #[rustfmt::skip]
    let cases: &[(&str, Files, Named)] = &[
        ("no circle", &[
            ("a.rs", "use crate::b::X;\nuse crate::c::Y;"),
            ("b.rs", "use crate::c::Z;"),
            ("c.rs", "// use crate::a;\nconst S: &str = \"crate::a\";"),
        ], &[]),
        ("two modules: the edge with fewer uses closes it", &[
            ("a.rs", "use crate::b::X;\nfn f() { crate::b::g() }"),
            ("b.rs", "\n\nuse crate::a::Y;"),
            ("c.rs", ""),
        ], &[("a, b", "b -> a", "src/b.rs:3: use crate::a::Y;", "a -> b -> a")]),
        ("three modules", &[
            ("a.rs", "use crate::b::{X, Y};\nuse crate::b::Z;"),
            ("b.rs", "use crate::c::X;\nuse crate::c::Y;"),
            ("c.rs", "use crate::{\n    a::W,\n};"),
        ], &[("a, b, c", "c -> a", "src/c.rs:2: a::W,", "a -> b -> c -> a")]),
        ("one edge closing two circles is named once", &[
            ("a.rs", "use crate::b::X;\nuse crate::b::Y;\nuse crate::c::X;\nuse crate::c::Y;"),
            ("b.rs", "use crate::c::X;\nuse crate::c::Y;"),
            ("c.rs", "use crate::a::X;"),
        ], &[("a, b, c", "c -> a", "src/c.rs:1: use crate::a::X;", "a -> c -> a")]),
        ("two circles apart", &[
            ("a.rs", "use crate::b::X;\nuse crate::b::Y;"),
            ("b.rs", "use crate::a::X;"),
            ("c.rs", "use crate::d::X;"),
            ("d.rs", "use crate::c::X;\nuse crate::c::Y;"),
        ], &[
            ("a, b", "b -> a", "src/b.rs:1: use crate::a::X;", "a -> b -> a"),
            ("c, d", "c -> d", "src/c.rs:1: use crate::d::X;", "d -> c -> d"),
        ]),
        ("a test-only back edge closes nothing", &[
            ("a.rs", "use crate::b::X;"),
            ("b.rs", "#[cfg(test)]\nmod tests;"),
            ("b/tests.rs", "use crate::a::X;"),
            ("c.rs", ""),
        ], &[]),
    ];
    for (name, files, want) in cases {
        let g = graph(&tree(files)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let found = circles(&g);
        let msg = describe(&found);
        assert_eq!(found.len(), want.len(), "{name}:\n{msg}");
        for (c, (modules, edge, site, path)) in found.iter().zip(want.iter()) {
            assert_eq!(c.modules.join(", "), *modules, "{name}");
            assert_eq!(c.closing.len(), 1, "{name}:\n{msg}");
            let e = &c.closing[0];
            assert_eq!(format!("{} -> {}", e.from, e.to), *edge, "{name}");
            assert_eq!(
                format!("src/{}:{}: {}", e.site.file, e.site.line, e.site.text),
                *site,
                "{name}"
            );
            assert_eq!(
                format!("{} -> {}", e.path.join(" -> "), e.to),
                *path,
                "{name}"
            );
            for part in [*modules, *edge, *site, *path] {
                assert!(msg.contains(part), "{name}: {part:?} missing from:\n{msg}");
            }
        }
        // Cutting the edges named leaves no circle.
        let mut cut = g;
        for e in found.iter().flat_map(|c| &c.closing) {
            cut.edges.remove(&(e.from.clone(), e.to.clone()));
        }
        assert!(
            circles(&cut).is_empty(),
            "{name}: a circle is left after cutting:\n{msg}"
        );
    }
}
