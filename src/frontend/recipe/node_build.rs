//! The `node` recipe's build stage: a project whose package.json has a
//! `build` script (TypeScript compiled by `tsc`, a bundler) is built in a
//! stage, never on the host: dev dependencies installed natively, the
//! script run in the sandbox as `npm run build` would (node_modules/.bin
//! first on PATH, no npm needed in the base), and the image gets
//! package.json, the production dependencies and the script's output
//! folder (tsconfig.json's `outDir`, else `dist`) only.

use std::path::Path;

use crate::graph::spec::{CopyRule, DepsKind, RunSpec, StageCopy, StageDeps, StageSpec};

use super::spec::Spec;

/// What package.json and tsconfig.json say about the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeBuild {
    pub script: String,
    /// The build's output folder, relative to the project.
    pub out_dir: String,
    /// package.json's `main`, the image's entry point when set.
    pub main: Option<String>,
}

/// Reads the build script (if any) from package.json's bytes and the
/// output folder from tsconfig.json's (JSON with comments is read up to
/// the key, as tsc allows them).
pub fn read(package_json: &[u8], tsconfig: Option<&[u8]>) -> Option<NodeBuild> {
    let pkg: serde_json::Value = serde_json::from_slice(package_json).ok()?;
    let script = pkg["scripts"]["build"].as_str()?.trim().to_owned();
    if script.is_empty() {
        return None;
    }
    let out_dir = tsconfig
        .and_then(out_dir)
        .unwrap_or_else(|| "dist".to_owned());
    let main = pkg["main"]
        .as_str()
        .map(|m| m.trim_start_matches("./").to_owned())
        .filter(|m| !m.is_empty() && !m.contains(".."));
    Some(NodeBuild {
        script,
        out_dir,
        main,
    })
}

/// `compilerOptions.outDir`, found as the first `"outDir": "..."`.
fn out_dir(tsconfig: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(tsconfig).ok()?;
    let rest = &text[text.find("\"outDir\"")? + 8..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let dir = &rest[..rest.find('"')?];
    let dir = dir.trim_start_matches("./").trim_end_matches('/');
    (!dir.is_empty() && !dir.split('/').any(|c| c == ".." || c.is_empty())).then(|| dir.to_owned())
}

/// The settings the build adds over the `node` recipe, for the project in
/// `dir` (none when there is no build script).
pub fn layer(dir: &Path, workdir: &str) -> Option<Spec> {
    let pkg = std::fs::read(dir.join("package.json")).ok()?;
    let ts = std::fs::read(dir.join("tsconfig.json")).ok();
    let b = read(&pkg, ts.as_deref())?;
    let mut s = Spec::default();
    s.stages.insert(
        "build".into(),
        StageSpec {
            deps: Some(StageDeps {
                kind: DepsKind::Npm,
                dev: true,
            }),
            exclude: vec!["node_modules".into(), b.out_dir.clone()],
            run: vec![RunSpec {
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    format!("PATH={workdir}/node_modules/.bin:$PATH; {}", b.script),
                ],
                ..Default::default()
            }],
            workdir: Some(workdir.to_owned()),
            at: "recipes/node.toml (package.json has a build script)".into(),
            ..Default::default()
        },
    );
    s.app.copy = Some(vec![CopyRule {
        from: "package.json".into(),
        to: String::new(),
    }]);
    s.app.stage_copy = Some(vec![StageCopy {
        stage: "build".into(),
        from: format!("{}/{}", workdir.trim_end_matches('/'), b.out_dir),
        to: b.out_dir.clone(),
        owner: None,
        mode: None,
        at: "recipes/node.toml".into(),
    }]);
    if let Some(main) = b.main {
        s.image.cmd = Some(vec!["node".into(), main]);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// package.json, tsconfig.json, and (script, out dir, main).
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Option<(&'a str, &'a str, Option<&'a str>)>,
    );

    #[test]
    fn read_table() {
        let cases: &[Case] = &[
            (r#"{"scripts":{"start":"node a.js"}}"#, None, None),
            (r#"{"scripts":{"build":""}}"#, None, None),
            (
                r#"{"main":"dist/server.js","scripts":{"build":"tsc"}}"#,
                Some(
                    r#"{ // out
  "compilerOptions": { "outDir" : "./build/" } }"#,
                ),
                Some(("tsc", "build", Some("dist/server.js"))),
            ),
            (
                r#"{"scripts":{"build":"esbuild src/a.ts"}}"#,
                None,
                Some(("esbuild src/a.ts", "dist", None)),
            ),
            (
                r#"{"scripts":{"build":"tsc"}}"#,
                Some(r#"{"compilerOptions":{"outDir":"../x"}}"#),
                Some(("tsc", "dist", None)),
            ),
            ("not json", None, None),
        ];
        for (pkg, ts, want) in cases {
            let got = read(pkg.as_bytes(), ts.map(str::as_bytes));
            let want = want.map(|(s, o, m)| NodeBuild {
                script: s.into(),
                out_dir: o.into(),
                main: m.map(str::to_owned),
            });
            assert_eq!(got, want, "{pkg}");
        }
    }
}
