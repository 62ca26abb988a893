//! Table tests for typed instructions and stages; its helpers serve the
//! expansion's tests too.

use super::*;
use crate::frontend::dockerfile::parser;

pub(crate) fn ins(src: &str) -> Result<Instructions, DockerfileError> {
    parse(&parser::parse(src.as_bytes(), "Dockerfile")?)
}

fn one(src: &str) -> Instruction {
    let i = ins(&format!("FROM a\n{src}")).unwrap_or_else(|e| panic!("{src}: {e}"));
    i.stages[0].commands[0].instruction.clone()
}

pub(crate) fn cl(args: &[&str], shell: bool) -> CommandLine {
    CommandLine {
        args: args.iter().map(|s| s.to_string()).collect(),
        shell,
        heredocs: vec![],
    }
}

pub(crate) fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub(crate) fn kv(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn stages_and_meta_args() {
    let i = ins("ARG V=3.20\nARG X\nFROM alpine:$V AS Build\nRUN a\nFROM --platform=linux/arm64 build\nCOPY --from=build /a /b\n").unwrap();
    assert_eq!(i.meta_args.len(), 2);
    assert_eq!(i.stages.len(), 2);
    assert_eq!(
        (
            i.stages[0].index,
            i.stages[0].name.as_deref(),
            i.stages[0].base.as_str()
        ),
        (0, Some("build"), "alpine:$V")
    );
    assert_eq!(
        (
            i.stages[1].index,
            i.stages[1].name.as_deref(),
            i.stages[1].platform.as_deref()
        ),
        (1, None, Some("linux/arm64"))
    );
    assert_eq!((i.stages[1].line, i.stages[1].commands[0].line), (5, 6));
}

#[test]
fn every_instruction_types() {
    let cases: Vec<(&str, Instruction)> = vec![
        ("ARG A B=2 C=", Instruction::Arg(vec![
            ArgDecl { name: "A".into(), default: None },
            ArgDecl { name: "B".into(), default: Some("2".into()) },
            ArgDecl { name: "C".into(), default: Some("".into()) },
        ])),
        ("ENV A=1 B=\"x y\"", Instruction::Env(kv(&[("A", "1"), ("B", "\"x y\"")]))),
        ("ENV A hello world", Instruction::Env(kv(&[("A", "hello world")]))),
        ("LABEL a=b", Instruction::Label(kv(&[("a", "b")]))),
        ("EXPOSE 443 80/tcp", Instruction::Expose(s(&["443", "80/tcp"]))),
        ("USER app:app", Instruction::User("app:app".into())),
        ("WORKDIR /app", Instruction::Workdir("/app".into())),
        ("VOLUME /a /b", Instruction::Volume(s(&["/a", "/b"]))),
        ("VOLUME [\"/a\"]", Instruction::Volume(s(&["/a"]))),
        ("STOPSIGNAL SIGTERM", Instruction::StopSignal("SIGTERM".into())),
        ("MAINTAINER me", Instruction::Maintainer("me".into())),
        ("HEALTHCHECK NONE", Instruction::Healthcheck(Health::None)),
        ("HEALTHCHECK --interval=30s --timeout=1m30s --start-period=5s --start-interval=1s --retries=3 CMD curl -f x",
            Instruction::Healthcheck(Health::Cmd {
                cmd: cl(&["curl -f x"], true),
                interval_ns: Some(30_000_000_000),
                timeout_ns: Some(90_000_000_000),
                start_period_ns: Some(5_000_000_000),
                start_interval_ns: Some(1_000_000_000),
                retries: Some(3),
            })),
        ("HEALTHCHECK CMD [\"true\"]", Instruction::Healthcheck(Health::Cmd {
            cmd: cl(&["true"], false), interval_ns: None, timeout_ns: None, start_period_ns: None, start_interval_ns: None, retries: None,
        })),
        ("ENTRYPOINT [\"node\"]", Instruction::Entrypoint(cl(&["node"], false))),
        ("ENTRYPOINT exec node", Instruction::Entrypoint(cl(&["exec node"], true))),
        ("CMD [\"server.js\"]", Instruction::Cmd(cl(&["server.js"], false))),
        ("CMD", Instruction::Cmd(cl(&[], true))),
        ("SHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]", Instruction::Shell(s(&["/bin/bash", "-eo", "pipefail", "-c"]))),
        ("ONBUILD RUN make", Instruction::Onbuild {
            expression: "RUN make".into(),
            trigger: Box::new(Instruction::Run(Run { cmd: cl(&["make"], true), mount_flags: vec![], mounts: vec![], network: None, security: None })),
        }),
        ("RUN --network=none --security=sandbox [\"make\"]", Instruction::Run(Run {
            cmd: cl(&["make"], false), mount_flags: vec![], mounts: vec![], network: Some(Network::None), security: Some(Security::Sandbox),
        })),
        ("COPY --from=build --chown=app:app --chmod=0755 --link --parents --exclude=*.md --exclude=x a b /dst/", Instruction::Copy(Copy {
            paths: Paths { sources: s(&["a", "b"]), inline: vec![], dest: "/dst/".into() },
            from: Some("build".into()), chown: Some("app:app".into()), chmod: Some("0755".into()),
            link: true, parents: true, exclude: s(&["*.md", "x"]),
        })),
        ("COPY --link=false a b", Instruction::Copy(Copy {
            paths: Paths { sources: s(&["a"]), inline: vec![], dest: "b".into() },
            from: None, chown: None, chmod: None, link: false, parents: false, exclude: vec![],
        })),
        ("ADD --checksum=sha256:00 --keep-git-dir --unpack=false https://x/a.tar.gz /opt/", Instruction::Add(Add {
            paths: Paths { sources: s(&["https://x/a.tar.gz"]), inline: vec![], dest: "/opt/".into() },
            chown: None, chmod: None, link: false, exclude: vec![], checksum: Some("sha256:00".into()),
            keep_git_dir: Some(true), unpack: Some(false),
        })),
    ];
    for (src, want) in cases {
        assert_eq!(one(src), want, "{src}");
    }
}

#[test]
fn run_mounts_are_typed() {
    let Instruction::Run(r) = one("RUN --mount=type=cache,target=/root/.npm,id=npm,sharing=locked --mount=type=secret,id=tok,required --mount=type=bind,from=build,source=/out,target=/in,rw --mount=type=tmpfs,target=/t,size=64m --mount=target=/x,ro=false npm ci") else {
        panic!("not a RUN");
    };
    assert_eq!(r.mounts.len(), 5);
    let m = &r.mounts;
    assert_eq!(
        (
            m[0].kind,
            m[0].target.as_deref(),
            m[0].id.as_deref(),
            m[0].sharing,
            m[0].readonly
        ),
        (
            MountType::Cache,
            Some("/root/.npm"),
            Some("npm"),
            Some(Sharing::Locked),
            false
        )
    );
    assert_eq!(
        (m[1].kind, m[1].id.as_deref(), m[1].required, m[1].readonly),
        (MountType::Secret, Some("tok"), true, true)
    );
    assert_eq!(
        (
            m[2].kind,
            m[2].from.as_deref(),
            m[2].source.as_deref(),
            m[2].readonly
        ),
        (MountType::Bind, Some("build"), Some("/out"), false)
    );
    assert_eq!(
        (m[3].kind, m[3].size.as_deref(), m[3].readonly),
        (MountType::Tmpfs, Some("64m"), false)
    );
    assert_eq!((m[4].kind, m[4].readonly), (MountType::Bind, false));
    let Instruction::Run(r) = one("RUN --mount=type=cache,target=/c,mode=0700,uid=1000,gid=1000 x")
    else {
        panic!()
    };
    assert_eq!(
        (r.mounts[0].mode, r.mounts[0].uid, r.mounts[0].gid),
        (Some(0o700), Some(1000), Some(1000))
    );
    // With a variable in it, the mount is typed only after expansion.
    let Instruction::Run(r) = one("RUN --mount=type=cache,target=$HOME/.cache x") else {
        panic!()
    };
    assert!(r.mounts.is_empty());
}

#[test]
fn bad_instructions_name_line_column_and_fix() {
    let cases: &[(&str, &str)] = &[
        (
            "FROM a\nFOO bar\n",
            "Dockerfile:2:1: unknown instruction `FOO`",
        ),
        ("RUN x\n", "Dockerfile:1:1: RUN before the first FROM"),
        ("ARG A\n", "Dockerfile:1:1: no FROM instruction"),
        (
            "FROM a b\n",
            "Dockerfile:1:1: FROM requires either one or three arguments",
        ),
        (
            "FROM a AS 1x\n",
            "Dockerfile:1:11: invalid name for build stage: `1x`",
        ),
        (
            "FROM a\nCOPY --form=x a b\n",
            "Dockerfile:2:6: unknown flag --form on COPY: COPY takes --from, --chown",
        ),
        (
            "FROM a\nCOPY --from=a --from=b x y\n",
            "Dockerfile:2:15: --from given twice on COPY",
        ),
        (
            "FROM a\nCOPY --from x y\n",
            "Dockerfile:2:6: --from on COPY needs a value",
        ),
        (
            "FROM a\nCOPY --link=maybe x y\n",
            "Dockerfile:2:6: --link on COPY is true or false",
        ),
        (
            "FROM a\nCOPY x\n",
            "Dockerfile:2:1: COPY requires at least two arguments",
        ),
        (
            "FROM a\nADD --from=x a b\n",
            "Dockerfile:2:5: unknown flag --from on ADD",
        ),
        (
            "FROM a\nCOPY a <<EOF\nx\nEOF\n",
            "Dockerfile:2:8: COPY cannot accept a heredoc as a destination",
        ),
        (
            "FROM a\nENV --x=1 A=1\n",
            "Dockerfile:2:5: unknown flag --x on ENV: ENV takes no flags",
        ),
        ("FROM a\nUSER a b\n", ""),
        (
            "FROM a\nWORKDIR\n",
            "Dockerfile:2:1: WORKDIR requires exactly one argument",
        ),
        (
            "FROM a\nEXPOSE\n",
            "Dockerfile:2:1: EXPOSE requires at least one argument",
        ),
        (
            "FROM a\nSHELL /bin/sh -c\n",
            "Dockerfile:2:1: SHELL requires the arguments to be in JSON form",
        ),
        (
            "FROM a\nHEALTHCHECK NONE x\n",
            "Dockerfile:2:1: HEALTHCHECK NONE takes no arguments",
        ),
        (
            "FROM a\nHEALTHCHECK CMD\n",
            "Dockerfile:2:1: Missing command after HEALTHCHECK CMD",
        ),
        (
            "FROM a\nHEALTHCHECK RUN x\n",
            "Dockerfile:2:13: Unknown type `RUN` in HEALTHCHECK",
        ),
        (
            "FROM a\nHEALTHCHECK --interval=soon CMD x\n",
            "Dockerfile:2:13: --interval: duration `soon`",
        ),
        (
            "FROM a\nHEALTHCHECK --timeout=1ns CMD x\n",
            "Dockerfile:2:13: --timeout cannot be less than 1ms",
        ),
        (
            "FROM a\nHEALTHCHECK --retries=-1 CMD x\n",
            "Dockerfile:2:13: --retries `-1` is not a count",
        ),
        (
            "FROM a\nONBUILD ONBUILD RUN x\n",
            "Dockerfile:2:1: Chaining ONBUILD",
        ),
        (
            "FROM a\nONBUILD FROM b\n",
            "Dockerfile:2:1: FROM isn't allowed as an ONBUILD trigger",
        ),
        (
            "FROM a\nONBUILD MAINTAINER b\n",
            "Dockerfile:2:1: MAINTAINER isn't allowed",
        ),
        (
            "FROM a\nONBUILD BOGUS x\n",
            "Dockerfile:2:1: unknown instruction `BOGUS`",
        ),
        (
            "FROM a\nRUN --network=bridge x\n",
            "Dockerfile:2:5: unsupported network mode `bridge`",
        ),
        (
            "FROM a\nRUN --device=x y\n",
            "Dockerfile:2:5: unknown flag --device on RUN",
        ),
        (
            "FROM a\nRUN --mount=type=nfs x\n",
            "Dockerfile:2:13: --mount=type=nfs: unsupported mount type `nfs`",
        ),
        (
            "FROM a\nRUN --mount=type=bind,mode=0700 x\n",
            "mode, uid and gid are not allowed for bind mounts",
        ),
        (
            "FROM a\nRUN --mount=type=secret x\n",
            "invalid secret mount",
        ),
        (
            "FROM a\nRUN --mount=type=cache,bogus=1 x\n",
            "unexpected key `bogus`",
        ),
        (
            "FROM a\nRUN --mount=type=cache,from=$X,target=/c x\n",
            "`from` doesn't support variable expansion",
        ),
        (
            "FROM a\nRUN --mount=type=cache,target=/c,uid=x y\n",
            "invalid value `x` for uid",
        ),
        (
            "FROM a\nRUN --mount=type=cache,target=/c,frob x\n",
            "invalid field `frob`",
        ),
        (
            "FROM a\nRUN\n",
            "Dockerfile:2:1: RUN requires at least one argument",
        ),
        (
            "FROM a\nARG =x\n",
            "Dockerfile:2:1: ARG names can not be blank",
        ),
        (
            "FROM a\nVOLUME [\"\"]\n",
            "VOLUME specified can not be an empty string",
        ),
    ];
    for (src, want) in cases {
        match ins(src) {
            Err(e) => {
                let e = e.to_string();
                assert!(!want.is_empty() && e.contains(want), "{src:?}: got {e}");
            }
            Ok(i) => assert!(want.is_empty(), "{src:?}: parsed as {i:?}"),
        }
    }
}
