//! Table tests for the expansion and ARG scoping.

use super::*;
use crate::frontend::dockerfile::instructions::tests::{cl, ins, kv, s};
use crate::frontend::dockerfile::instructions::Health;

fn no_base_env(_: &str) -> Vars {
    Vars::new()
}

fn expanded(src: &str, args: &[(&str, &str)]) -> Result<Expanded, DockerfileError> {
    let args: Vec<(String, String)> = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    expand(
        &ins(src)?,
        Inputs {
            build_args: &args,
            predefined: &Vars::new(),
            base_env: &no_base_env,
        },
    )
}

fn stage_cmds(e: &Expanded, stage: usize) -> Vec<Instruction> {
    e.stages[stage]
        .stage
        .commands
        .iter()
        .map(|c| c.instruction.clone())
        .collect()
}

#[test]
fn expansion_follows_docker_scoping() {
    // Meta ARGs are seen by FROM; inside a stage only after `ARG NAME`.
    let src = "ARG TAG=3.20\nARG REG\nFROM ${REG:-docker.io}/alpine:$TAG AS base\nWORKDIR /w/$TAG\nARG TAG\nWORKDIR /w/$TAG\n";
    let e = expanded(src, &[]).unwrap();
    assert_eq!(e.stages[0].stage.base, "docker.io/alpine:3.20");
    assert_eq!(stage_cmds(&e, 0)[0], Instruction::Workdir("/w/".into()));
    assert_eq!(stage_cmds(&e, 0)[2], Instruction::Workdir("/w/3.20".into()));
    // A build arg overrides the meta default and the stage default.
    let e = expanded(src, &[("TAG", "3.19"), ("REG", "r.example")]).unwrap();
    assert_eq!(e.stages[0].stage.base, "r.example/alpine:3.19");
    assert_eq!(stage_cmds(&e, 0)[2], Instruction::Workdir("/w/3.19".into()));
    let e = expanded("FROM a\nARG V=def\nUSER $V\n", &[("V", "given")]).unwrap();
    assert_eq!(stage_cmds(&e, 0)[1], Instruction::User("given".into()));
    // A stage default does not see the meta value unless re-declared bare.
    let e = expanded("ARG V=meta\nFROM a\nARG V=stage\nUSER $V\n", &[]).unwrap();
    assert_eq!(stage_cmds(&e, 0)[1], Instruction::User("stage".into()));
    // ENV after ARG shadows it; ENV sees earlier ENV and ARG.
    let e = expanded(
        "FROM a\nARG V=arg\nENV V=env-$V W=${V}2\nUSER $V:$W\n",
        &[("V", "given")],
    )
    .unwrap();
    assert_eq!(
        stage_cmds(&e, 0)[1],
        Instruction::Env(kv(&[("V", "env-given"), ("W", "env-given2")]))
    );
    assert_eq!(
        stage_cmds(&e, 0)[2],
        Instruction::User("env-given:env-given2".into())
    );
    assert_eq!(e.stages[0].env.get("V"), Some("env-given"));
    // ARG values do not go into the stage's ENV.
    assert_eq!(e.stages[0].env.iter().count(), 2);
    // An unused build arg is fine; an unset ARG expands to empty.
    let e = expanded("FROM a\nARG U\nWORKDIR /x$U\n", &[("OTHER", "1")]).unwrap();
    assert_eq!(stage_cmds(&e, 0)[1], Instruction::Workdir("/x".into()));
    // ARGs declared in a stage are seen by the stages built on it, not by others.
    let src = "FROM a AS one\nARG V=one\nFROM one\nUSER x$V\nFROM a\nUSER y$V\n";
    let e = expanded(src, &[]).unwrap();
    assert_eq!(stage_cmds(&e, 1)[0], Instruction::User("xone".into()));
    assert_eq!(stage_cmds(&e, 2)[0], Instruction::User("y".into()));
    assert_eq!(e.stages[1].env.iter().count(), 0);
    // A stage from a stage starts with its ENV; from an image, with the image's.
    let src = "FROM a AS one\nENV P=/one\nFROM one\nWORKDIR $P\nFROM img\nWORKDIR $PATH\n";
    let image_env = |base: &str| {
        if base == "img" {
            [("PATH", "/usr/bin")].into_iter().collect()
        } else {
            Vars::new()
        }
    };
    let inputs = Inputs {
        build_args: &[],
        predefined: &Vars::new(),
        base_env: &image_env,
    };
    let e = expand(&ins(src).unwrap(), inputs).unwrap();
    assert_eq!(stage_cmds(&e, 1)[0], Instruction::Workdir("/one".into()));
    assert_eq!(
        stage_cmds(&e, 2)[0],
        Instruction::Workdir("/usr/bin".into())
    );
}

#[test]
fn expansion_applies_where_docker_expands() {
    let src = "FROM a\nARG V=v\nARG P=\"8080 9090\"\n\
LABEL $V=\"$V x\"\n\
EXPOSE $P 53/udp\n\
STOPSIGNAL SIG$V\n\
VOLUME /d/$V\n\
COPY --chown=$V:$V --chmod=7$V $V /$V/\n\
ADD --checksum=sha256:$V https://x/$V /o\n\
RUN --mount=type=cache,target=/c/$V,id=$V echo $V\n\
CMD echo $V\n\
ENTRYPOINT [\"$V\"]\n\
HEALTHCHECK CMD echo $V\n\
ONBUILD RUN echo $V\n\
MAINTAINER $V\n\
COPY <<EOF <<'RAW' /h/\n$V ${V}\nEOF\n$V\nRAW\n";
    let e = expanded(src, &[]).unwrap();
    let c = stage_cmds(&e, 0);
    assert_eq!(c[2], Instruction::Label(kv(&[("v", "v x")])));
    assert_eq!(c[3], Instruction::Expose(s(&["8080", "9090", "53/udp"])));
    assert_eq!(c[4], Instruction::StopSignal("SIGv".into()));
    assert_eq!(c[5], Instruction::Volume(s(&["/d/v"])));
    let Instruction::Copy(cp) = &c[6] else {
        panic!()
    };
    assert_eq!(
        (
            cp.chown.as_deref(),
            cp.chmod.as_deref(),
            cp.paths.sources.clone(),
            cp.paths.dest.as_str()
        ),
        (Some("v:v"), Some("7v"), s(&["v"]), "/v/")
    );
    let Instruction::Add(ad) = &c[7] else {
        panic!()
    };
    assert_eq!(
        (ad.checksum.as_deref(), ad.paths.sources.clone()),
        (Some("sha256:v"), s(&["https://x/v"]))
    );
    let Instruction::Run(r) = &c[8] else { panic!() };
    assert_eq!(
        (r.mounts[0].target.as_deref(), r.mounts[0].id.as_deref()),
        (Some("/c/v"), Some("v"))
    );
    assert_eq!(r.cmd.args, s(&["echo $V"]));
    assert_eq!(c[9], Instruction::Cmd(cl(&["echo $V"], true)));
    assert_eq!(c[10], Instruction::Entrypoint(cl(&["$V"], false)));
    let Instruction::Healthcheck(Health::Cmd { cmd, .. }) = &c[11] else {
        panic!()
    };
    assert_eq!(cmd.args, s(&["echo $V"]));
    let Instruction::Onbuild { expression, .. } = &c[12] else {
        panic!()
    };
    assert_eq!(expression, "RUN echo $V");
    assert_eq!(c[13], Instruction::Maintainer("$V".into()));
    let Instruction::Copy(h) = &c[14] else {
        panic!()
    };
    assert_eq!(
        h.paths
            .inline
            .iter()
            .map(|h| h.content.as_str())
            .collect::<Vec<_>>(),
        vec!["v v\n", "$V\n"]
    );
    assert!(h.paths.sources.is_empty());
}

#[test]
fn expansion_errors_name_the_line() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            "ARG B\nFROM $B\n",
            &[],
            "Dockerfile:2:1: base name (`$B`) should not be blank",
        ),
        (
            "FROM --platform=$P a\n",
            &[],
            "Dockerfile:1:1: empty platform value",
        ),
        (
            "FROM a\nARG V\nUSER ${V:?set V with --build-arg V=...}\n",
            &[],
            "Dockerfile:3:1: V: set V with --build-arg V=...",
        ),
        (
            "FROM a\nCOPY --from=$S a b\n",
            &[],
            "Dockerfile:2:1: variable expansion is not supported for --from",
        ),
        (
            "FROM a\nWORKDIR ${X\n",
            &[],
            "Dockerfile:2:1: syntax error: missing `}`",
        ),
        (
            "FROM a\nARG M=nfs\nRUN --mount=type=$M x\n",
            &[],
            "Dockerfile:3:1: --mount=type=$M: unsupported mount type `nfs`",
        ),
    ];
    for (src, args, want) in cases {
        let e = expanded(src, args).expect_err(src).to_string();
        assert!(e.starts_with(want), "{src:?}: {e}");
    }
    // Given, the same lines expand.
    let e = expanded("ARG B\nFROM $B\n", &[("B", "alpine")]).unwrap();
    assert_eq!(e.stages[0].stage.base, "alpine");
    assert_eq!(e.meta_args.get("B"), Some("alpine"));
}

#[test]
fn backtick_escape_applies_to_expansion() {
    let e = expanded("# escape=`\nFROM a\nWORKDIR C:\\app\nENV A=`$HOME\n", &[]).unwrap();
    let c = stage_cmds(&e, 0);
    assert_eq!(c[0], Instruction::Workdir("C:\\app".into()));
    assert_eq!(c[1], Instruction::Env(kv(&[("A", "$HOME")])));
}

#[test]
fn predefined_args_are_meta_args_without_an_arg_line() {
    let predefined: Vars = [("TARGETARCH", "amd64"), ("BUILDPLATFORM", "linux/amd64")]
        .into_iter()
        .collect();
    let src = "FROM --platform=$BUILDPLATFORM img:$TARGETARCH\nUSER u$TARGETARCH\nARG TARGETARCH\nUSER u$TARGETARCH\n";
    for (args, want) in [
        (vec![], "amd64"),
        (vec![("TARGETARCH".to_owned(), "arm64".to_owned())], "arm64"),
    ] {
        let inputs = Inputs {
            build_args: &args,
            predefined: &predefined,
            base_env: &no_base_env,
        };
        let e = expand(&ins(src).unwrap(), inputs).unwrap();
        assert_eq!(e.stages[0].stage.base, format!("img:{want}"));
        assert_eq!(e.stages[0].stage.platform.as_deref(), Some("linux/amd64"));
        let c = stage_cmds(&e, 0);
        assert_eq!(c[0], Instruction::User("u".into()));
        assert_eq!(c[2], Instruction::User(format!("u{want}")));
    }
}
