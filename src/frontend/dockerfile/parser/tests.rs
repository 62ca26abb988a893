//! Table tests for the parser: each case is a Dockerfile and the dump of
//! its nodes (one per line, `start-end: dump`).

use super::*;

fn dump(src: &str) -> String {
    let df = parse(src.as_bytes(), "Dockerfile").unwrap_or_else(|e| panic!("{src:?}: {e}"));
    df.nodes
        .iter()
        .map(|n| format!("{}-{}: {}", n.start_line, n.end_line, n.dump()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn instructions_parse_into_nodes() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "from",
            "FROM alpine:3.20 AS build\n",
            r#"1-1: from ["alpine:3.20", "AS", "build"]"#,
        ),
        (
            "lower case name",
            "from  alpine\n",
            r#"1-1: from ["alpine"]"#,
        ),
        ("no final newline", "FROM a", r#"1-1: from ["a"]"#),
        (
            "crlf",
            "FROM a\r\nRUN b\r\n",
            "1-1: from [\"a\"]\n2-2: run \"b\"",
        ),
        ("bom", "\u{feff}FROM a\n", r#"1-1: from ["a"]"#),
        (
            "platform flag",
            "FROM --platform=$BUILDPLATFORM node AS b\n",
            r#"1-1: from ["--platform=$BUILDPLATFORM"] ["node", "AS", "b"]"#,
        ),
        ("run shell", "RUN echo hi  \n", r#"1-1: run "echo hi""#),
        (
            "run json",
            "RUN [\"echo\", \"hi\"]\n",
            r#"1-1: run json["echo", "hi"]"#,
        ),
        (
            "run json with blanks",
            "RUN   [ \"a\" ,\"b\" ]  \n",
            r#"1-1: run json["a", "b"]"#,
        ),
        (
            "invalid json is shell form",
            "RUN [\"echo\", hi]\n",
            r#"1-1: run "[\"echo\", hi]""#,
        ),
        (
            "json with trailing text is shell form",
            "CMD [\"a\"] b\n",
            r#"1-1: cmd "[\"a\"] b""#,
        ),
        (
            "single quotes are not json",
            "CMD ['a']\n",
            r#"1-1: cmd "['a']""#,
        ),
        ("empty json", "CMD []\n", r#"1-1: cmd json[]"#),
        (
            "json escapes",
            r#"ENTRYPOINT ["a\"b", "c\\d", "\u00e9"]"#,
            r#"1-1: entrypoint json["a\"b", "c\\d", "é"]"#,
        ),
        (
            "mount flags repeat",
            "RUN --mount=type=cache,target=/root/.npm --mount=type=secret,id=t npm ci\n",
            r#"1-1: run ["--mount=type=cache,target=/root/.npm", "--mount=type=secret,id=t"] "npm ci""#,
        ),
        (
            "flags with quotes",
            "COPY --chown=\"app:app\" a b\n",
            r#"1-1: copy ["--chown=app:app"] ["a", "b"]"#,
        ),
        (
            "bare -- ends flags",
            "RUN -- --version\n",
            r#"1-1: run "--version""#,
        ),
        (
            "copy words",
            "COPY --from=build /app/dist  /srv/\n",
            r#"1-1: copy ["--from=build"] ["/app/dist", "/srv/"]"#,
        ),
        (
            "copy json",
            "COPY [\"a b\", \"/d/\"]\n",
            r#"1-1: copy json["a b", "/d/"]"#,
        ),
        (
            "volume words",
            "VOLUME /a /b\n",
            r#"1-1: volume ["/a", "/b"]"#,
        ),
        (
            "volume json",
            "VOLUME [\"/data\"]\n",
            r#"1-1: volume json["/data"]"#,
        ),
        (
            "env pairs",
            "ENV A=1 B=\"two words\" C='x' D=\n",
            r#"1-1: env "A"="1" "B"="\"two words\"" "C"="'x'" "D"="""#,
        ),
        (
            "env legacy",
            "ENV PATH /usr/local/bin:$PATH with  spaces\n",
            r#"1-1: env "PATH" "/usr/local/bin:$PATH with  spaces""#,
        ),
        (
            "env escaped blank",
            "ENV A=a\\ b\n",
            r#"1-1: env "A"="a\\ b""#,
        ),
        (
            "label pairs",
            "LABEL org.opencontainers.image.title=\"web app\" version=1\n",
            r#"1-1: label "org.opencontainers.image.title"="\"web app\"" "version"="1""#,
        ),
        (
            "arg words",
            "ARG A B=2 C=\"x y\"\n",
            r#"1-1: arg ["A", "B=2", "C=\"x y\""]"#,
        ),
        (
            "expose",
            "EXPOSE 80 443/tcp\t53/udp\n",
            r#"1-1: expose ["80", "443/tcp", "53/udp"]"#,
        ),
        ("user", "USER app:app\n", r#"1-1: user "app:app""#),
        (
            "workdir keeps spaces",
            "WORKDIR /my app\n",
            r#"1-1: workdir "/my app""#,
        ),
        (
            "stopsignal",
            "STOPSIGNAL SIGINT\n",
            r#"1-1: stopsignal "SIGINT""#,
        ),
        (
            "maintainer",
            "MAINTAINER Jane <j@x>\n",
            r#"1-1: maintainer "Jane <j@x>""#,
        ),
        (
            "shell",
            "SHELL [\"/bin/bash\", \"-c\"]\n",
            r#"1-1: shell json["/bin/bash", "-c"]"#,
        ),
        (
            "healthcheck none",
            "HEALTHCHECK NONE\n",
            r#"1-1: healthcheck "NONE""#,
        ),
        (
            "healthcheck cmd",
            "HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/\n",
            r#"1-1: healthcheck ["--interval=5s", "--retries=3"] "CMD" "curl -f http://localhost/""#,
        ),
        (
            "healthcheck json",
            "HEALTHCHECK CMD [\"wget\", \"-q\", \"x\"]\n",
            r#"1-1: healthcheck "CMD" json["wget", "-q", "x"]"#,
        ),
        (
            "onbuild",
            "ONBUILD RUN make\n",
            r#"1-1: onbuild (run "make")"#,
        ),
        (
            "onbuild with flags",
            "ONBUILD COPY --chown=a . /src\n",
            r#"1-1: onbuild (copy ["--chown=a"] [".", "/src"])"#,
        ),
        (
            "unknown kept for the next rung",
            "FOO bar\n",
            r#"1-1: foo "bar""#,
        ),
        (
            "flags and nothing else",
            "CMD --verbose\n",
            r#"1-1: cmd ["--verbose"]"#,
        ),
        (
            "bool flag spelled out",
            "COPY --link=true a b\n",
            r#"1-1: copy ["--link=true"] ["a", "b"]"#,
        ),
        ("healthcheck alone", "HEALTHCHECK\n", "1-1: healthcheck"),
        (
            "healthcheck other type kept",
            "HEALTHCHECK PING x y\n",
            r#"1-1: healthcheck "PING" "x y""#,
        ),
        (
            "json control escapes",
            r#"CMD ["\b\f\t\u0000", ""]"#,
            r#"1-1: cmd json["\u{8}\u{c}\t\0", ""]"#,
        ),
        (
            "json inside a json string",
            r#"CMD ["echo", "[\"x\"]"]"#,
            r#"1-1: cmd json["echo", "[\"x\"]"]"#,
        ),
        (
            "unterminated json is shell form",
            "CMD [\"a\", \"b\"\n",
            r#"1-1: cmd "[\"a\", \"b\"""#,
        ),
        (
            "escaped quote outside quotes in env",
            "ENV A=\\\"x\n",
            r#"1-1: env "A"="\\\"x""#,
        ),
    ];
    for (name, src, want) in cases {
        assert_eq!(dump(src), *want, "{name}");
    }
}

#[test]
fn comments_blank_lines_and_continuations() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "comments and blanks",
            "# c\n\nFROM a\n   # indented comment\n\nRUN b\n",
            "3-3: from [\"a\"]\n6-6: run \"b\"",
        ),
        (
            "continuation",
            "RUN apt-get update && \\\n    apt-get install -y curl\n",
            r#"1-2: run "apt-get update &&     apt-get install -y curl""#,
        ),
        (
            "continuation with trailing blanks",
            "RUN a \\  \n b\n",
            r#"1-2: run "a  b""#,
        ),
        (
            "comment inside continuation",
            "RUN a \\\n# skipped\n  b \\\n\n  c\n",
            r#"1-5: run "a   b   c""#,
        ),
        (
            "escaped escape ends the line",
            "RUN echo \\\\\nRUN b\n",
            "1-1: run \"echo \\\\\\\\\"\n2-2: run \"b\"",
        ),
        (
            "escape alone on a line",
            "RUN a \\\n\\\nb\n",
            r#"1-3: run "a b""#,
        ),
        (
            "continuation at end of file",
            "FROM a\nRUN b \\\n",
            "1-1: from [\"a\"]\n2-2: run \"b\"",
        ),
        (
            "hash inside a line is not a comment",
            "RUN echo a # b\n",
            r##"1-1: run "echo a # b""##,
        ),
    ];
    for (name, src, want) in cases {
        assert_eq!(dump(src), *want, "{name}");
    }
}

#[test]
fn parser_directives_only_at_the_top() {
    let df = parse(
        b"# syntax=docker/dockerfile:1\n#escape=`\n# check=skip=all\nFROM a\nRUN b `\n  c\n",
        "D",
    )
    .unwrap();
    assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.check.as_deref(), Some("skip=all"));
    assert_eq!(df.escape, '`');
    assert_eq!(df.nodes[1].dump(), r#"run "b   c""#);

    // A backslash is an ordinary character once the escape is a backtick.
    let df = parse(b"# escape=`\nRUN dir C:\\\nRUN b\n", "D").unwrap();
    assert_eq!(df.nodes.len(), 2, "{df:?}");

    let cases: &[(&str, &str)] = &[
        ("after a blank line", "\n# escape=`\nRUN a `\nRUN b\n"),
        ("after a comment", "# hello\n# escape=`\nRUN a `\nRUN b\n"),
        (
            "after an instruction",
            "FROM x\n# escape=`\nRUN a `\nRUN b\n",
        ),
        (
            "unknown directive ends them",
            "# foo=bar\n# escape=`\nRUN a `\nRUN b\n",
        ),
    ];
    for (name, src) in cases {
        let df = parse(src.as_bytes(), "D").unwrap();
        assert_eq!(df.escape, '\\', "{name}");
    }
}

#[test]
fn heredocs() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "run",
            "RUN <<EOF\napt-get update\necho $HOME\nEOF\nRUN x\n",
            "1-4: run \"<<EOF\" <<EOF=\"apt-get update\\necho $HOME\\n\"\n5-5: run \"x\"",
        ),
        (
            "quoted delimiter",
            "RUN <<\"EOF\" bash\necho $A\nEOF\n",
            r#"1-3: run "<<\"EOF\" bash" <<'EOF="echo $A\n""#,
        ),
        (
            "single quoted delimiter",
            "RUN <<'X'\na\nX\n",
            r#"1-3: run "<<'X'" <<'X="a\n""#,
        ),
        (
            "chomp",
            "RUN <<-EOF\n\techo a\n\tEOF\n",
            r#"1-3: run "<<-EOF" <<-EOF="\techo a\n""#,
        ),
        (
            "two heredocs",
            "RUN <<A cat - <<B\na\nA\nb\nB\n",
            r#"1-5: run "<<A cat - <<B" <<A="a\n" <<B="b\n""#,
        ),
        (
            "copy",
            "COPY <<EOF /etc/conf\nk=v\nEOF\n",
            r#"1-3: copy ["<<EOF", "/etc/conf"] <<EOF="k=v\n""#,
        ),
        (
            "fd",
            "RUN 3<<EOF cat /dev/fd/3\nx\nEOF\n",
            r#"1-3: run "3<<EOF cat /dev/fd/3" <<3EOF="x\n""#,
        ),
        (
            "blank after <<",
            "RUN cat << EOF\nx\nEOF\n",
            r#"1-3: run "cat << EOF" <<EOF="x\n""#,
        ),
        (
            "empty body",
            "RUN <<EOF\nEOF\n",
            r#"1-2: run "<<EOF" <<EOF="""#,
        ),
        (
            "json form takes none",
            "RUN [\"cat\", \"<<EOF\"]\n",
            r#"1-1: run json["cat", "<<EOF"]"#,
        ),
        (
            "other instructions take none",
            "LABEL a=<<EOF\n",
            r#"1-1: label "a"="<<EOF""#,
        ),
        (
            "quoted << is not a heredoc",
            "RUN echo \"<<EOF\"\n",
            r#"1-1: run "echo \"<<EOF\"""#,
        ),
        (
            "onbuild",
            "ONBUILD RUN <<EOF\nx\nEOF\n",
            r#"1-3: onbuild (run "<<EOF") <<EOF="x\n""#,
        ),
    ];
    for (name, src, want) in cases {
        assert_eq!(dump(src), *want, "{name}");
    }
    let h = &parse(b"RUN <<-EOF\n\ta\n\t\tb\nEOF\n", "D").unwrap().nodes[0].heredocs[0];
    assert_eq!(h.body(), "a\nb\n");
}

#[test]
fn errors_carry_file_line_column_and_the_fix() {
    let cases: &[(&str, &str, &str)] = &[
        ("empty", "", "Dockerfile:1:1: file with no instructions"),
        ("only comments", "# a\n# b\n", "Dockerfile:2:1: file with no instructions"),
        ("unterminated heredoc", "FROM a\n  RUN <<EOF\nx\n", "Dockerfile:2:3: unterminated heredoc `<<EOF`"),
        ("json not strings", "FROM a\nCMD [\"a\", 1]\n", "Dockerfile:2:1: when using JSON array syntax, arrays must be comprised of strings only"),
        ("env without value", "ENV A\n", "Dockerfile:1:1: ENV must have two arguments"),
        ("env pair without =", "ENV A=1 B\n", "Dockerfile:1:1: syntax error: can't find = in `B`"),
        ("bad escape", "# escape=x\nFROM a\n", "Dockerfile:1:1: invalid escape token `x`"),
        ("repeated directive", "# syntax=a\n# syntax=b\nFROM a\n", "Dockerfile:2:1: only one `# syntax=` parser directive"),
        ("not utf-8", "FROM a\nRUN \u{0}\n", ""),
        ("nested json", "CMD [\"echo\", [\"x\"]]\n", "Dockerfile:1:1: when using JSON array syntax"),
    ];
    for (name, src, want) in cases {
        let got = parse(src.as_bytes(), "Dockerfile");
        if want.is_empty() {
            assert!(got.is_ok(), "{name}");
            continue;
        }
        let e = got.expect_err(name).to_string();
        assert!(e.starts_with(want), "{name}: {e}");
    }
    let e = parse(b"FROM a\nRUN \xff\n", "x/Dockerfile").unwrap_err();
    assert_eq!(
        e.to_string(),
        "x/Dockerfile:2:1: not UTF-8 text: save the Dockerfile as UTF-8"
    );
}

#[test]
fn heredoc_words() {
    // (word, (name, fd, expand, chomp))
    type Want<'a> = Option<(&'a str, u32, bool, bool)>;
    let cases: &[(&str, Want)] = &[
        ("<<EOF", Some(("EOF", 0, true, false))),
        ("<<-EOF", Some(("EOF", 0, true, true))),
        ("<<\"EOF\"", Some(("EOF", 0, false, false))),
        ("<<'EOF'", Some(("EOF", 0, false, false))),
        ("<<E\"O\"F", Some(("EOF", 0, false, false))),
        ("2<<EOF", Some(("EOF", 2, true, false))),
        ("<<", None),
        ("<<a<b", None),
        ("x<<EOF", None),
        ("<<\"a b\"", Some(("a b", 0, false, false))),
    ];
    for (w, want) in cases {
        let got = heredoc_word(w).map(|h| (h.name, h.fd, h.expand, h.chomp));
        assert_eq!(got, want.map(|(n, f, e, c)| (n.to_owned(), f, e, c)), "{w}");
    }
}
