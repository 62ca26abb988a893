//! Which RUN lines hoist does natively (interim: `npm ci` and
//! `pip install -r FILE` alone on the line; the full recogniser replaces
//! this module).

use super::instructions::CommandLine;

/// A command hoist can do itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeOp {
    Npm {
        install: bool,
        omit_dev: bool,
        ignore_scripts: bool,
    },
    Pip {
        requirements: String,
        user: bool,
        compile: bool,
        venv: Option<String>,
    },
}

/// The native ops of `run`, or `None` when any part of it is not one.
pub fn recognise(run: &CommandLine, env: &[(String, String)]) -> Option<Vec<NativeOp>> {
    if !run.shell || !run.heredocs.is_empty() {
        return None;
    }
    let line = run.args.join(" ");
    if line.contains(['|', ';', '&', '>', '<', '$', '`', '(', ')', '*', '?', '[']) {
        return None;
    }
    let words = shell_words::split(&line).ok()?;
    let env_get = |k: &str| env.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.as_str());
    match words
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["npm", "ci", flags @ ..] => {
            if env
                .iter()
                .any(|(k, _)| k.to_ascii_lowercase().starts_with("npm_config_"))
            {
                return None;
            }
            let mut omit_dev = env_get("NODE_ENV") == Some("production");
            let mut ignore_scripts = false;
            for f in flags {
                match *f {
                    "--omit=dev" | "--only=production" | "--only=prod" | "--production" => {
                        omit_dev = true
                    }
                    "--ignore-scripts" => ignore_scripts = true,
                    "--no-audit"
                    | "--no-fund"
                    | "--no-update-notifier"
                    | "--silent"
                    | "--quiet"
                    | "--no-progress"
                    | "--prefer-offline" => {}
                    _ => return None,
                }
            }
            Some(vec![NativeOp::Npm {
                install: false,
                omit_dev,
                ignore_scripts,
            }])
        }
        ["pip" | "pip3", "install", rest @ ..] => {
            if env.iter().any(|(k, _)| {
                k.starts_with("PIP_")
                    && !matches!(
                        k.as_str(),
                        "PIP_NO_CACHE_DIR"
                            | "PIP_DISABLE_PIP_VERSION_CHECK"
                            | "PIP_ROOT_USER_ACTION"
                    )
            }) {
                return None;
            }
            let mut req = None;
            let mut compile = env_get("PYTHONDONTWRITEBYTECODE").is_none();
            let mut it = rest.iter();
            while let Some(f) = it.next() {
                match *f {
                    "-r" | "--requirement" if req.is_none() => req = Some(it.next()?.to_string()),
                    "--no-cache-dir"
                    | "-q"
                    | "--quiet"
                    | "--disable-pip-version-check"
                    | "--root-user-action=ignore" => {}
                    "--no-compile" => compile = false,
                    _ => return None,
                }
            }
            Some(vec![NativeOp::Pip {
                requirements: req?,
                user: false,
                compile,
                venv: None,
            }])
        }
        _ => None,
    }
}
