//! `hoist login`.

use anyhow::{bail, Result};
use clap::Args;

use std::path::PathBuf;

use hoist::registry::{self, Client};

use super::render::Renderer;
use super::{registry_options, RegistryArgs};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry, HOST[:PORT].
    pub registry: String,
    /// The user name.
    #[arg(long, short = 'u')]
    pub username: String,
    /// Read the password from standard input (the password is never taken as an argument).
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry_args: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry, HOST[:PORT].
    pub registry: String,
    /// The auth file to remove the credentials from.
    #[arg(long, value_name = "FILE", env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<PathBuf>,
}

pub(super) fn run_login(a: LoginArgs, out: &Renderer) -> Result<()> {
    if !a.password_stdin {
        bail!("give the password on standard input with --password-stdin (a password on the command line would land in shell history)");
    }
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    let password = password.trim_end_matches(['\n', '\r']);
    let client = Client::new(registry_options(&a.registry_args))?;
    let file = client.login(
        &a.registry,
        &a.username,
        password,
        a.registry_args.authfile.as_deref(),
        out,
    )?;
    out.line(&format!(
        "Login Succeeded: credentials for {} saved in {}",
        a.registry,
        file.display()
    ));
    Ok(())
}

pub(super) fn run_logout(a: LogoutArgs, out: &Renderer) -> Result<()> {
    let (file, removed) = registry::logout(&a.registry, a.authfile.as_deref())?;
    if removed {
        out.line(&format!(
            "Removed login credentials for {} from {}",
            a.registry,
            file.display()
        ));
    } else {
        out.line(&format!(
            "Not logged in to {} (nothing in {})",
            a.registry,
            file.display()
        ));
    }
    Ok(())
}
