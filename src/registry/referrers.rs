//! The OCI distribution spec 1.1 referrers API: what refers to a
//! manifest (signatures, SBOMs), as `GET /v2/NAME/referrers/DIGEST`.
//!
//! A registry that implements the API must never answer 404 there (an
//! unknown subject gets an empty index), so a 404 means the registry
//! predates it (CNCF distribution 2.x), and a writer must keep the list
//! itself under the tag `sha256-<hex>` (the spec's "referrers tag
//! schema"). [`Client::referrers`] tells the two apart.

use reqwest::header::ACCEPT;
use reqwest::Method;

use super::answer::read_small;
use super::auth::Scope;
use super::client::{Call, Client};
use super::{Progress, RegistryError, MAX_MANIFEST_SIZE};
use crate::digest::Digest;
use crate::image::{media, Index};
use crate::reference::Reference;

impl Client {
    /// The referrers of `subject` in `r`'s repository, or `None` when the
    /// registry has no referrers API (it answers 404).
    pub fn referrers(
        &self,
        r: &Reference,
        subject: &Digest,
        progress: &dyn Progress,
    ) -> Result<Option<Index>, RegistryError> {
        self.check_blocked(r)?;
        let r = self.conf.rewrite(r)?;
        let what = format!("listing referrers of {}@{subject}", r.name());
        let ep = self.endpoint(&r, &what, progress)?;
        let scope = Scope::pull(r.repository());
        let url = ep.url(&format!("v2/{}/referrers/{subject}", r.repository()))?;
        let call = Call::new(self, Method::GET, url, &scope, &what, progress)
            .header(ACCEPT, media::OCI_INDEX);
        let resp = self.send(&ep, &call)?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        let resp = self.check(&ep, resp, &[200], &what, &scope)?;
        let body = read_small(resp, MAX_MANIFEST_SIZE).map_err(|e| RegistryError::Io {
            what: what.clone(),
            source: e,
        })?;
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| RegistryError::Protocol {
                what,
                registry: ep.registry.clone(),
                why: format!("its referrers answer is not an OCI index: {e}"),
            })
    }
}
