use super::*;
use crate::frontend::dockerfile::expand::{expand, Inputs};
use crate::frontend::dockerfile::shell::Vars;
use crate::frontend::dockerfile::{instructions, parser};
use crate::graph::dump;

/// Lowers `text` for `target`, as `hoist build -f Dockerfile` does, with
/// bases whose config says nothing and a context holding every file.
fn lowered(text: &str, target: Option<&str>) -> Result<Graph, String> {
    let df = parser::parse(text.as_bytes(), "Dockerfile").map_err(|e| e.to_string())?;
    let ins = instructions::parse(&df).map_err(|e| e.to_string())?;
    let pre = Vars::new();
    let env = |_: &str| Vars::new();
    let ex = expand(
        &ins,
        Inputs {
            build_args: &[],
            predefined: &pre,
            base_env: &env,
        },
    )
    .map_err(|e| e.to_string())?;
    let base = |b: &str| BaseConfig {
        workdir: (b == "node").then(|| "/home/node".to_owned()),
        user: None,
    };
    lower(
        "Dockerfile",
        &ex,
        &LowerInputs {
            target,
            base_config: &base,
            native: Default::default(),
        },
    )
    .map_err(|e| e.to_string())
}

fn dumped(text: &str, target: Option<&str>) -> Result<String, String> {
    lowered(text, target).map(|g| dump::render(&g, true, &|_, _| None))
}

/// (Dockerfile, target, the graph as `--dry-run` prints it, or the error)
type Case<'a> = (&'a str, Option<&'a str>, Result<&'a str, &'a str>);

#[test]
fn lowering_table() {
    let cases: &[Case] = &[
        // The classic npm pattern: manifests first, `npm ci` native.
        (
            "FROM node AS deps\nWORKDIR /app\nCOPY package.json package-lock.json ./\nRUN npm ci --omit=dev\nFROM node\nWORKDIR /app\nCOPY --from=deps /app/node_modules ./node_modules\nCOPY . .\n",
            None,
            Ok("stage deps (from docker://node, workdir /app)\n  mkdir   /app\n  copy    package.json package-lock.json -> /app/\n  deps    npm natively (for `npm ci --omit=dev`, no dev)\nimage 1 (from docker://node, workdir /app)\n  mkdir   /app\n  copy    stage deps:/app/node_modules -> /app/node_modules\n  copy    . -> /app/\n"),
        ),
        // A glob copy of the manifests, npm ci with dev deps.
        (
            "FROM node\nWORKDIR /app\nCOPY package*.json ./\nRUN npm ci\n",
            None,
            Ok("image 0 (from docker://node, workdir /app)\n  mkdir   /app\n  copy    package*.json -> /app/\n  deps    npm natively (for `npm ci`)\n"),
        ),
        // Anything else on the line: the sandbox.
        (
            "FROM node\nWORKDIR /app\nCOPY . .\nRUN npm ci && npm run build\n",
            None,
            Ok("image 0 (from docker://node, workdir /app)\n  mkdir   /app\n  copy    . -> /app/\n  run     /bin/sh -c 'npm ci && npm run build'\n"),
        ),
        // Not as root: the sandbox (the files would be the user's).
        (
            "FROM node\nWORKDIR /app\nCOPY package.json package-lock.json ./\nUSER node\nRUN npm ci\n",
            None,
            Ok("image 0 (from docker://node, workdir /app)\n  mkdir   /app\n  copy    package.json package-lock.json -> /app/\n  run     /bin/sh -c 'npm ci'\n"),
        ),
        // The manifests were not copied where npm runs: the sandbox.
        (
            "FROM node\nCOPY package.json package-lock.json /src/\nRUN npm ci\n",
            None,
            Ok("image 0 (from docker://node, workdir /home/node)\n  copy    package.json package-lock.json -> /src/\n  run     /bin/sh -c 'npm ci'\n"),
        ),
        // pip: a requirements file copied to its own path.
        (
            "FROM python\nCOPY requirements.txt /tmp/requirements.txt\nRUN pip install --no-cache-dir -r /tmp/requirements.txt\n",
            None,
            Ok("image 0 (from docker://python, workdir /)\n  copy    requirements.txt -> /tmp/requirements.txt\n  deps    pip natively (for `pip install --no-cache-dir -r /tmp/requirements.txt`, no dev)\n"),
        ),
        // pip with --root: the sandbox.
        (
            "FROM python\nWORKDIR /w\nCOPY requirements.txt .\nRUN pip install --root /install -r requirements.txt\n",
            None,
            Ok("image 0 (from docker://python, workdir /w)\n  mkdir   /w\n  copy    requirements.txt -> /w/\n  run     /bin/sh -c 'pip install --root /install -r requirements.txt'\n"),
        ),
        // pip --user as root: natively, into root's ~/.local; with HOME
        // moved, and as another USER, the sandbox.
        (
            "FROM python\nWORKDIR /w\nCOPY requirements.txt .\nRUN pip install --user -r requirements.txt\n",
            None,
            Ok("image 0 (from docker://python, workdir /w)\n  mkdir   /w\n  copy    requirements.txt -> /w/\n  deps    pip natively (for `pip install --user -r requirements.txt`, no dev)\n"),
        ),
        (
            "FROM python\nENV HOME=/srv\nCOPY requirements.txt .\nRUN pip install --user -r requirements.txt\n",
            None,
            Ok("image 0 (from docker://python, workdir /)\n  copy    requirements.txt -> /\n  run     /bin/sh -c 'pip install --user -r requirements.txt'\n"),
        ),
        // A venv made in the line: the sandbox, saying why.
        (
            "FROM python\nCOPY requirements.txt .\nRUN python -m venv /opt/venv && /opt/venv/bin/pip install -r requirements.txt\n",
            None,
            Ok("image 0 (from docker://python, workdir /)\n  copy    requirements.txt -> /\n  run     /bin/sh -c 'python -m venv /opt/venv && /opt/venv/bin/pip install -r requirements.txt' (in the sandbox: hoist does not write a venv natively yet)\n"),
        ),
        // SHELL changes how RUN's shell form runs; JSON form as written.
        (
            "FROM alpine\nSHELL [\"/bin/ash\", \"-eo\", \"pipefail\", \"-c\"]\nRUN echo a | cat\nRUN [\"echo\", \"b\"]\n",
            None,
            Ok("image 0 (from docker://alpine, workdir /)\n  run     /bin/ash -eo pipefail -c 'echo a | cat'\n  run     echo b\n"),
        ),
        // A heredoc script runs with the shell.
        (
            "FROM alpine\nRUN <<EOF\necho hi\nEOF\n",
            None,
            Ok("image 0 (from docker://alpine, workdir /)\n  run     /bin/sh -c 'echo hi\n'\n"),
        ),
        // WORKDIR after USER is made for the user; --target picks a stage
        // and only what it reaches.
        (
            "FROM alpine AS a\nRUN touch /a\nFROM alpine AS b\nUSER 1000\nWORKDIR /data\nFROM a AS c\nRUN touch /c\n",
            Some("b"),
            Ok("image b (from docker://alpine, workdir /data)\n  mkdir   /data\n"),
        ),
        (
            "FROM alpine AS a\nRUN touch /a\nFROM a AS c\nRUN touch /c\n",
            Some("C"),
            Ok("stage a (from docker://alpine, workdir /)\n  run     /bin/sh -c 'touch /a'\nimage c (from stage a, workdir /)\n  run     /bin/sh -c 'touch /c'\n"),
        ),
        // Bad input, each naming the line and the fix.
        (
            "FROM alpine AS a\n",
            Some("prod"),
            Err("Dockerfile:1:1: --target prod: there is no stage `prod`; its stages are a"),
        ),
        (
            "FROM alpine\nCOPY --from=later /x /x\nFROM alpine AS later\n",
            Some("0"),
            Err("Dockerfile:1:1: --target 0: there is no stage `0`; its stages are later"),
        ),
        (
            "FROM alpine AS first\nCOPY --from=later /x /x\nFROM alpine AS later\n",
            Some("first"),
            Err("Dockerfile:2:1: COPY --from=later: stage `later` comes later in the file; a stage can copy only from stages above it"),
        ),
        // ADD: URLs downloaded (checksum parsed), git refused, archives
        // by content at build time.
        (
            "FROM alpine\nADD https://example.com/a.tgz /a/\n",
            None,
            Ok("image 0 (from docker://alpine, workdir /)\n  copy    https://example.com/a.tgz -> /a/\n"),
        ),
        (
            "FROM alpine\nADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d --chmod=+x https://example.com/tool /usr/bin/tool\n",
            None,
            Ok("image 0 (from docker://alpine, workdir /)\n  copy    https://example.com/tool -> /usr/bin/tool (mode +x)\n"),
        ),
        (
            "FROM alpine\nADD --checksum=md5:abc https://example.com/tool /t\n",
            None,
            Err("Dockerfile:2:1: ADD --checksum=md5:abc: give the SHA-256 of the file as sha256:<64 hex digits> (for example from `sha256sum FILE`)"),
        ),
        (
            "FROM alpine\nADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d local.tar /t/\n",
            None,
            Err("Dockerfile:2:1: ADD --checksum: it checks a downloaded file, so every source must be one http:// or https:// URL"),
        ),
        (
            "FROM alpine\nADD --checksum=be1f38e https://github.com/moby/buildkit.git#v0.14.1:docs /src\n",
            None,
            Ok("image 0 (from docker://alpine, workdir /)\n  copy    https://github.com/moby/buildkit.git#v0.14.1:docs -> /src\n"),
        ),
        (
            "FROM alpine\nADD --checksum=sha256:abc https://github.com/moby/buildkit.git /src\n",
            None,
            Err("Dockerfile:2:1: ADD --checksum=sha256:abc: for a git repository give its commit (or the start of it) in hex"),
        ),
        (
            "FROM alpine\nADD git@github.com:moby/buildkit.git /src\n",
            None,
            Err("Dockerfile:2:1: ADD git@github.com:moby/buildkit.git: hoist clones git repositories over http(s) only (it has no SSH agent); write the https:// address, or clone it into the context first (git clone --depth 1 URL DIR) and COPY DIR"),
        ),
        (
            "FROM alpine\nWORKDIR /w\nCOPY --parents x/./a/*.txt .\n",
            None,
            Ok("image 0 (from docker://alpine, workdir /w)\n  mkdir   /w\n  copy    x/./a/*.txt -> /w/\n"),
        ),
        (
            "FROM alpine\nRUN --mount=type=ssh make\n",
            None,
            Err("Dockerfile:2:1: RUN --mount=type=ssh: not supported yet; fetch what the step needs before the build, or use a secret (--mount=type=secret with hoist build --secret)"),
        ),
        // FROM scratch: no base, the workdir /.
        (
            "FROM scratch\nCOPY a /a\n",
            None,
            Ok("image 0 (from scratch, workdir /)\n  copy    a -> /a\n"),
        ),
        (
            "FROM SCRATCH AS s\nCOPY a /a\nFROM s\nADD b.tar.gz /\n",
            None,
            Ok("stage s (from scratch, workdir /)\n  copy    a -> /a\nimage 1 (from stage s, workdir /)\n  copy    b.tar.gz -> /\n"),
        ),
        (
            "FROM alpine\nCOPY a b /dest\n",
            None,
            Err("Dockerfile:2:1: with more than one source the destination must be a folder ending in `/`: write `/dest/`"),
        ),
        (
            "FROM alpine\nCOPY --chmod=u+x,g=rX a /a\n",
            None,
            Ok("image 0 (from docker://alpine, workdir /)\n  copy    a -> /a (mode u+x,g=rX)\n"),
        ),
        (
            "FROM alpine\nCOPY --chmod=u+y a /a\n",
            None,
            Err("Dockerfile:2:1: --chmod=u+y: give an octal mode like 755, or symbolic clauses like u=rwX,go=rX or +x"),
        ),
        // RUN --mount: a cache (id defaults to the target; a relative
        // target is the workdir's), a secret (default target), a bind of
        // the context and of a stage (which the target then reaches), a
        // tmpfs.
        (
            "FROM alpine\nWORKDIR /w\nRUN --mount=type=cache,target=.cache --mount=type=cache,id=npm,target=/root/.npm,sharing=locked make\n",
            None,
            Ok("image 0 (from docker://alpine, workdir /w)\n  mkdir   /w\n  run     /bin/sh -c make (with cache /w/.cache, cache npm at /root/.npm)\n"),
        ),
        (
            "FROM alpine\nRUN --mount=type=secret,id=tok --mount=type=secret,id=api,env=API_KEY --mount=type=tmpfs,target=/scratch make\n",
            None,
            Ok("image 0 (from docker://alpine, workdir /)\n  run     /bin/sh -c make (with secret tok at /run/secrets/tok, secret api as $API_KEY, tmpfs /scratch)\n"),
        ),
        (
            "FROM alpine AS build\nRUN make\nFROM alpine\nRUN --mount=type=bind,source=.,target=/src --mount=type=bind,from=build,source=/out,target=/mnt,rw cp -r /mnt /out\n",
            None,
            Ok("stage build (from docker://alpine, workdir /)\n  run     /bin/sh -c make\nimage 1 (from docker://alpine, workdir /)\n  run     /bin/sh -c 'cp -r /mnt /out' (with bind context . at /src, bind stage build:/out at /mnt (rw))\n"),
        ),
        (
            "FROM alpine\nRUN --mount=type=bind,from=alpine:3.20,source=/etc,target=/e ls /e\n",
            None,
            Ok("image 0 (from docker://alpine, workdir /)\n  run     /bin/sh -c 'ls /e' (with bind image docker://alpine:3.20:/etc at /e)\n"),
        ),
        // A native npm ci with a cache mount stays native.
        (
            "FROM node\nWORKDIR /app\nCOPY package.json package-lock.json ./\nRUN --mount=type=cache,target=/root/.npm npm ci\n",
            None,
            Ok("image 0 (from docker://node, workdir /app)\n  mkdir   /app\n  copy    package.json package-lock.json -> /app/\n  deps    npm natively (for `npm ci`)\n"),
        ),
        (
            "FROM alpine AS first\nRUN --mount=from=later,target=/x true\nFROM alpine AS later\n",
            Some("first"),
            Err("Dockerfile:2:1: RUN --mount=from=later: stage `later` comes later in the file; a stage can copy only from stages above it"),
        ),
        (
            "FROM alpine\nRUN --mount=type=cache make\n",
            None,
            Err("Dockerfile:2:1: RUN --mount=type=cache: it needs a target: add target=/PATH"),
        ),
        (
            "FROM alpine\nRUN --mount=type=tmpfs,target=/t,size=lots make\n",
            None,
            Err("Dockerfile:2:1: RUN --mount=type=tmpfs,size=lots: give bytes, or a number with k, m or g"),
        ),
    ];
    for (text, target, want) in cases {
        let got = dumped(text, *target);
        assert_eq!(
            got,
            want.map(str::to_owned).map_err(str::to_owned),
            "{text}"
        );
    }
}

/// (Dockerfile, the final config's cmd and entrypoint)
type Cmds<'a> = (&'a str, Option<&'a [&'a str]>, Option<&'a [&'a str]>);

#[test]
fn entrypoint_and_cmd_follow_docker() {
    let cases: &[Cmds] = &[
        // ENTRYPOINT alone drops an inherited CMD.
        ("FROM alpine\nENTRYPOINT [\"/e\"]\n", None, Some(&["/e"])),
        // CMD before ENTRYPOINT in the same stage is kept.
        (
            "FROM alpine\nCMD [\"a\"]\nENTRYPOINT [\"/e\"]\n",
            Some(&["a"]),
            Some(&["/e"]),
        ),
        // A stage built on another keeps its CMD, drops it with a new ENTRYPOINT.
        (
            "FROM alpine AS b\nCMD [\"a\"]\nFROM b\n",
            Some(&["a"]),
            None,
        ),
        (
            "FROM alpine AS b\nCMD [\"a\"]\nFROM b\nENTRYPOINT [\"/e\"]\n",
            None,
            Some(&["/e"]),
        ),
        // Shell forms go through the shell.
        (
            "FROM alpine\nCMD node server.js\n",
            Some(&["/bin/sh", "-c", "node server.js"]),
            None,
        ),
    ];
    for (text, cmd, ep) in cases {
        let g = lowered(text, None).unwrap();
        let c = g.stages.last().unwrap().config.clone().unwrap();
        let owned =
            |v: &Option<&[&str]>| v.map(|v| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(c.cmd, owned(cmd), "{text}");
        assert_eq!(c.entrypoint, owned(ep), "{text}");
    }
}

#[test]
fn config_instructions_fold_into_the_stage() {
    let g = lowered(
        "FROM alpine\nENV A=1 B=2\nLABEL org.opencontainers.image.title=web\nEXPOSE 3000 53/udp\nVOLUME /data\nSTOPSIGNAL SIGINT\nUSER app:app\nWORKDIR /srv\nHEALTHCHECK --interval=5s --retries=2 CMD curl -f http://localhost/\nONBUILD RUN echo hi\nMAINTAINER someone\n",
        None,
    )
    .unwrap();
    let c = g.stages[0].config.clone().unwrap();
    assert_eq!(
        c.env,
        vec![("A".into(), "1".into()), ("B".into(), "2".into())]
    );
    assert_eq!(c.labels["org.opencontainers.image.title"], "web");
    assert_eq!(c.expose, vec!["3000/tcp".to_owned(), "53/udp".to_owned()]);
    assert_eq!(c.volumes, vec!["/data".to_owned()]);
    assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(c.user.as_deref(), Some("app:app"));
    assert_eq!(c.workdir.as_deref(), Some("/srv"));
    let h = c.healthcheck.unwrap();
    assert_eq!(
        h.test,
        Some(vec![
            "CMD-SHELL".to_owned(),
            "curl -f http://localhost/".to_owned()
        ])
    );
    assert_eq!(h.interval, Some(5_000_000_000));
    assert_eq!(h.retries, Some(2));
    assert_eq!(c.onbuild, vec!["RUN echo hi".to_owned()]);
    assert_eq!(c.author.as_deref(), Some("someone"));
    // The RUN env carries ARGs and ENV; WORKDIR is made for the user.
    assert_eq!(
        g.stages[0].steps,
        vec![Step::Mkdir(MkdirSpec {
            path: "/srv".into(),
            owner: Some("app:app".into()),
        })]
    );
}
