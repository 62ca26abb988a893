//! `hoist pull`.

use anyhow::{Context as _, Result};
use clap::Args;

use hoist::reference::Reference;
use hoist::registry::Client;
use hoist::store::Store;
use hoist::transport::Transport;

use super::render::Renderer;
use super::{platform, registry_options, RegistryArgs};

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image, e.g. alpine:3.20 or docker://registry.example.com/team/base:1.
    pub reference: String,
    /// The platform to pull, os/arch[/variant] (default: this machine's).
    #[arg(long)]
    pub platform: Option<String>,
    /// Where to write it: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:TAG], or docker://REF to copy it to another registry (repeatable).
    #[arg(long = "output", short = 'o', required = true)]
    pub outputs: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub(super) fn run(a: PullArgs, out: &Renderer) -> Result<()> {
    let r = Reference::parse(
        a.reference
            .strip_prefix("docker://")
            .unwrap_or(&a.reference),
    )?;
    let platform = platform(a.platform.as_deref())?;
    let outputs: Vec<Transport> = a
        .outputs
        .iter()
        .map(|o| Transport::parse(o))
        .collect::<Result<_, _>>()?;
    let store = Store::open_default()?;
    let client = Client::new(registry_options(&a.registry))?;
    let remote = hoist::ops::pull::pull(&client, &r, &platform, &store, out)?;
    let img = hoist::ops::pull::built(&remote);
    let name = r.to_string();
    for dest in &outputs {
        if let Transport::Registry(target) = dest {
            let target = Reference::parse(target).with_context(|| format!("--output {dest}"))?;
            let pushed = hoist::ops::pull::push(&client, &remote, &target, &store, out)
                .with_context(|| format!("pushing to {dest}"))?;
            out.line(&format!(
                "pushed  docker://{} ({} uploaded, {} mounted, {} already there)",
                pushed.target,
                pushed.uploaded.len(),
                pushed.mounted.len(),
                pushed.skipped.len()
            ));
            continue;
        }
        hoist::transport::write_output(dest, &img, std::slice::from_ref(&name), &store)
            .with_context(|| format!("writing {dest}"))?;
        out.line(&format!("wrote   {dest}"));
    }
    outln!("{}", img.manifest.digest);
    Ok(())
}
