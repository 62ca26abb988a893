//! The HTTP core: one connection state per registry and the three
//! exchanges hoist has with it, each with its retries: the ping of `/v2/`
//! that finds the scheme and the challenge ([`Client::connect`]), the token
//! request to the challenge's realm ([`Client::fetch_token`]), and every
//! other request, with hand-followed redirects and one re-authentication
//! ([`Client::send`]). The operations (`pull.rs`, `push.rs`) build requests
//! and read responses; everything about getting a request answered lives
//! here.
//!
//! What is decided rather than sent lives beside it, so each reads alone:
//! `auth.rs` says what a request carries (scopes, credentials, the token
//! cache, which realms may see credentials) and `answer.rs` what a refusal
//! means (the error, its hint, and reading a body within a bound).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use reqwest::blocking::{Body, Response};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, LOCATION};
use reqwest::{Method, StatusCode, Url};

use super::answer::{error_message, read_small};
use super::auth::{
    challenge_of, parse_token_answer, realm_ok_for_credentials, same_host, Scope, Token,
};
use super::certs;
use super::challenge::Challenge;
use super::conf::{host_matches, RegistriesConf};
use super::credentials::{Credentials, Secret};
use super::redact::Secrets;
use super::{Event, Options, Progress, RegistryError};
use crate::net::retry::{is_certificate_error, is_retryable_status, retry_after};
use crate::reference::{api_host, is_loopback, Reference};

/// Redirects followed for one request before giving up.
const MAX_REDIRECTS: usize = 10;

/// A registry client. Cheap to share between threads (`&Client` is all
/// the parallel transfers need); see the module docs of
/// [`crate::registry`].
pub struct Client {
    pub(crate) opts: Options,
    pub(crate) conf: RegistriesConf,
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    /// For hosts a registry redirects to (object storage): no registry
    /// TLS files, and never any credentials. Made on first use: setting
    /// up TLS loads the system's CA store (a few hundred files, tens of
    /// milliseconds), which most builds never need.
    foreign: OnceLock<reqwest::blocking::Client>,
    /// For token realms on another host than their registry, by realm and
    /// registry: always verified TLS (an insecure mark covers the registry
    /// the user named, nothing else); see [`Client::realm_client`].
    realm_clients: Mutex<HashMap<String, reqwest::blocking::Client>>,
    /// Everything secret this client sent, taken out of every text a
    /// server sends back before it reaches a message.
    pub(crate) secrets: Secrets,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// The connection state for one registry host.
pub(crate) struct Endpoint {
    /// The registry as references name it (`docker.io`).
    pub registry: String,
    /// `scheme://host[:port]/` where its v2 API answers.
    pub base: Url,
    client: reqwest::blocking::Client,
    pub(super) challenge: Mutex<Option<Challenge>>,
    /// Credentials given to `login`, used instead of any lookup.
    pub(super) creds_override: Option<Credentials>,
    /// Looked-up credentials, by repository (podman's auth.json can scope
    /// them to repositories).
    pub(super) creds: Mutex<HashMap<String, Option<Credentials>>>,
    pub(super) tokens: Mutex<HashMap<String, Token>>,
}

impl Endpoint {
    /// The endpoint whose `/v2/` at `url` answered `ping` (200 or 401).
    fn new(
        registry: &str,
        url: &Url,
        client: reqwest::blocking::Client,
        ping: &Response,
        creds_override: Option<Credentials>,
    ) -> Endpoint {
        let mut base = url.clone();
        base.set_path("/");
        Endpoint {
            registry: registry.to_owned(),
            base,
            client,
            challenge: Mutex::new(challenge_of(ping.headers())),
            creds_override,
            creds: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }
}

/// One request, as the operations describe it.
pub(crate) struct Call<'a> {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub scope: &'a Scope,
    /// What is being done, for errors and events.
    pub what: &'a str,
    /// Makes the body; called again for each try.
    pub body: Option<&'a (dyn Fn() -> std::io::Result<Body> + Sync)>,
    /// Whether to retry connection errors, 429 and 5xx here.
    pub retry: bool,
    pub timeout: Option<Duration>,
    pub progress: &'a dyn Progress,
}

impl<'a> Call<'a> {
    pub fn new(
        client: &Client,
        method: Method,
        url: Url,
        scope: &'a Scope,
        what: &'a str,
        progress: &'a dyn Progress,
    ) -> Call<'a> {
        Call {
            method,
            url,
            headers: HeaderMap::new(),
            scope,
            what,
            body: None,
            retry: true,
            timeout: Some(client.opts.request_timeout),
            progress,
        }
    }

    pub fn header(mut self, name: reqwest::header::HeaderName, value: &str) -> Call<'a> {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these maps inconsistent: every update
    // is a single insert or remove.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An error and its causes on one line: reqwest's own message is terse
/// ("error sending request"), the cause says what happened.
pub(crate) use crate::error_chain;

/// `host[:port]` of a URL, the port only when it is not the scheme's
/// (`host_str` keeps IPv6 brackets).
pub(super) fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

impl Client {
    /// A client with `opts`. Reads registries.conf; connects to nothing
    /// until an operation needs a registry.
    pub fn new(opts: Options) -> Result<Client, RegistryError> {
        let conf_path = opts
            .registries_conf
            .clone()
            .unwrap_or_else(RegistriesConf::default_path);
        let conf = RegistriesConf::load(&conf_path)?;
        Ok(Client {
            opts,
            conf,
            endpoints: Mutex::new(HashMap::new()),
            foreign: OnceLock::new(),
            realm_clients: Mutex::new(HashMap::new()),
            secrets: Secrets::default(),
        })
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The client for hosts other than the registry's own (see
    /// [`Client::foreign`]'s field), made the first time one is asked.
    fn foreign(&self) -> Result<&reqwest::blocking::Client, RegistryError> {
        if let Some(c) = self.foreign.get() {
            return Ok(c);
        }
        let c = crate::net::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| RegistryError::Protocol {
                what: "setting up HTTP".into(),
                registry: "-".into(),
                why: error_chain(&e),
            })?;
        Ok(self.foreign.get_or_init(|| c))
    }

    /// The registries.conf rules in force.
    pub fn registries_conf(&self) -> &RegistriesConf {
        &self.conf
    }

    /// Whether `registry` may use plain HTTP or unverified TLS by
    /// configuration (loopback registries are not "insecure" here).
    pub fn is_insecure(&self, registry: &str) -> bool {
        self.opts.insecure.iter().any(|h| host_matches(h, registry))
            || self.conf.is_insecure(registry)
    }

    /// Refuses a reference registries.conf blocks.
    pub(crate) fn check_blocked(&self, r: &Reference) -> Result<(), RegistryError> {
        if self.conf.is_blocked(r) {
            return Err(RegistryError::Blocked {
                reference: r.to_string(),
                conf: self.conf.origin.clone(),
            });
        }
        Ok(())
    }

    /// The offline error for `what`, when offline.
    pub(crate) fn check_online(
        &self,
        what: &str,
        reference: &Reference,
    ) -> Result<(), RegistryError> {
        if self.opts.offline {
            return Err(RegistryError::Offline {
                what: what.to_owned(),
                reference: reference.to_string(),
            });
        }
        Ok(())
    }

    /// The connection to `reference`'s registry, connecting (pinging
    /// `/v2/`) the first time.
    pub(crate) fn endpoint(
        &self,
        reference: &Reference,
        what: &str,
        progress: &dyn Progress,
    ) -> Result<Arc<Endpoint>, RegistryError> {
        self.check_online(what, reference)?;
        let host = reference.api_host().to_owned();
        if let Some(ep) = lock(&self.endpoints).get(&host) {
            return Ok(ep.clone());
        }
        let ep = Arc::new(self.connect(reference.registry(), None, progress)?);
        Ok(lock(&self.endpoints).entry(host).or_insert(ep).clone())
    }

    /// Pings `registry`'s `/v2/` to learn its scheme and challenge.
    pub(crate) fn connect(
        &self,
        registry: &str,
        creds_override: Option<Credentials>,
        progress: &dyn Progress,
    ) -> Result<Endpoint, RegistryError> {
        let host = api_host(registry).to_owned();
        let what = format!("connecting to {registry}");
        let insecure = self.is_insecure(registry) || self.is_insecure(&host);
        let allow_http = insecure || is_loopback(&host);
        let mut tls = certs::discover(&self.opts.certs_dirs, &host)?;
        if tls.is_none() && host != registry {
            tls = certs::discover(&self.opts.certs_dirs, registry)?;
        }
        let setting_up = |e: reqwest::Error| RegistryError::Protocol {
            what: what.clone(),
            registry: registry.to_owned(),
            why: error_chain(&e),
        };
        let bad_url = |why: String| RegistryError::Protocol {
            what: what.clone(),
            registry: registry.to_owned(),
            why,
        };
        let https =
            Url::parse(&format!("https://{host}/v2/")).map_err(|e| bad_url(e.to_string()))?;
        let http = Url::parse(&format!("http://{host}/v2/")).map_err(|e| bad_url(e.to_string()))?;
        let policy = &self.opts.retry;
        let mut retry = 0;
        let mut asked_wait = None;
        // A loopback registry is asked over plain HTTP first: it may use
        // it anyway, the ping carries no credentials, and a local
        // registry (a CI job's service container) usually speaks it, so
        // the TLS handshake that would fail first (tens of milliseconds of
        // crypto set-up per process) is saved. Only a registry's answer
        // (200 or 401) counts; anything else goes the usual way, HTTPS
        // first. The plain client trusts no CA at all: it never speaks
        // TLS (the endpoint's own requests go to `http://HOST`, anything
        // else to the foreign client), and not loading the system's CA
        // store spares every push to a local registry tens of
        // milliseconds.
        if is_loopback(&host) {
            let plain = crate::net::builder()
                .redirect(reqwest::redirect::Policy::none())
                .tls_certs_only(Vec::new())
                .build()
                .map_err(setting_up)?;
            let answered = plain
                .get(http.clone())
                .timeout(self.opts.request_timeout)
                .send()
                .ok()
                .filter(|r| matches!(r.status().as_u16(), 200 | 401));
            if let Some(resp) = answered {
                return Ok(Endpoint::new(registry, &http, plain, &resp, creds_override));
            }
        }
        let mut builder = crate::net::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(t) = &tls {
            builder = certs::apply(builder, t)?;
        }
        if insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder.build().map_err(setting_up)?;
        loop {
            let tried = client
                .get(https.clone())
                .timeout(self.opts.request_timeout)
                .send();
            let plain = tried.as_ref().is_ok_and(|r| r.url().scheme() == "http");
            let (result, url) = match tried {
                Ok(resp) if plain => (Ok(resp), &http),
                Ok(resp) => (Ok(resp), &https),
                Err(e) if allow_http => {
                    // Plain HTTP only when the server answers like a
                    // registry there; else the HTTPS error is the one
                    // to report.
                    match client
                        .get(http.clone())
                        .timeout(self.opts.request_timeout)
                        .send()
                    {
                        Ok(resp)
                            if matches!(resp.status().as_u16(), 200 | 401)
                                || is_retryable_status(resp.status().as_u16()) =>
                        {
                            (Ok(resp), &http)
                        }
                        _ => (Err(e), &https),
                    }
                }
                Err(e) => (Err(e), &https),
            };
            let why = match result {
                Ok(resp) => {
                    let status = resp.status();
                    if is_retryable_status(status.as_u16()) && retry + 1 < policy.tries {
                        asked_wait = retry_after(&resp);
                        if let Some(asked) = asked_wait.filter(|a| *a > policy.max_retry_after) {
                            return Err(self.wait_too_long(registry, &what, resp, asked));
                        }
                        format!("HTTP {status}")
                    } else if status.is_success() || status == StatusCode::UNAUTHORIZED {
                        return Ok(Endpoint::new(registry, url, client, &resp, creds_override));
                    } else {
                        return Err(RegistryError::Protocol {
                            what,
                            registry: registry.to_owned(),
                            why: format!(
                                "GET {url} answered HTTP {status}; this is not a registry speaking the v2 API"
                            ),
                        });
                    }
                }
                Err(e) => {
                    let detail = error_chain(&e);
                    let lower = detail.to_ascii_lowercase();
                    // A certificate the client cannot verify will not
                    // become verifiable by waiting.
                    let bad_cert = is_certificate_error(&detail);
                    if retry + 1 >= policy.tries || bad_cert {
                        let tls_trouble = bad_cert
                            || ["tls", "ssl", "corrupt", "invalidcontenttype"]
                                .iter()
                                .any(|w| lower.contains(w));
                        let hint = if tls_trouble {
                            let root = self.certs_root();
                            format!("; put the registry's CA certificate in {root}/{host}/ca.crt, or, to skip verification (and allow plain HTTP), mark it insecure: --insecure-registry {registry}, or `insecure = true` in registries.conf")
                        } else {
                            String::new()
                        };
                        return Err(RegistryError::Unreachable {
                            what,
                            registry: registry.to_owned(),
                            detail: format!("{detail}{hint}"),
                        });
                    }
                    detail
                }
            };
            retry += 1;
            let wait = policy.delay(retry, asked_wait.take());
            progress.event(&Event::Retrying {
                what: &what,
                retry,
                wait,
                why: &why,
            });
            std::thread::sleep(wait);
        }
    }

    /// Asks the challenge's realm for a token. `creds` overrides the
    /// lookup (login). Credentials are sent only to a realm over HTTPS or
    /// on the registry's own host.
    pub(crate) fn fetch_token(
        &self,
        ep: &Endpoint,
        c: &Challenge,
        scope: &Scope,
        creds: Option<&Credentials>,
        what: &str,
        progress: &dyn Progress,
    ) -> Result<(Secret, Duration), RegistryError> {
        let registry = ep.registry.clone();
        let proto = |why: String| RegistryError::Protocol {
            what: what.to_owned(),
            registry: registry.clone(),
            why,
        };
        let realm = c
            .param("realm")
            .ok_or_else(|| proto("its Bearer challenge names no realm".into()))?;
        let url = Url::parse(realm).map_err(|e| {
            let shown = self.secrets.clean(realm);
            proto(format!("its token realm `{shown}` is not a URL: {e}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            let shown = self.secrets.clean(realm);
            return Err(proto(format!("its token realm `{shown}` is not http(s)")));
        }
        let looked_up;
        let creds = match creds {
            Some(c) => {
                self.secrets.remember_credentials(c);
                Some(c)
            }
            None => {
                looked_up = self.credentials(ep, &scope.repository)?;
                looked_up.as_ref()
            }
        };
        let realm_ok_for_creds = realm_ok_for_credentials(&url, &ep.base);
        let creds = creds.filter(|_| realm_ok_for_creds);
        let realm_host = authority(&url);
        // The registry's own host shares its connection settings (and its
        // insecure mark); any other host gets a client that verifies TLS.
        let client = if same_host(&url, &ep.base) {
            ep.client.clone()
        } else {
            self.realm_client(&url, &ep.base, what)?
        };
        let service = c.param("service").unwrap_or("");
        let refresh = creds.and_then(|c| c.identity_token.as_ref());
        let token_what = format!("{what} (token from {})", url_without_query(&url));
        let policy = &self.opts.retry;
        let mut retry = 0;
        let resp = loop {
            let req = if let Some(refresh) = refresh {
                // OAuth2 refresh-token grant (Docker's identity tokens).
                let mut form = vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", refresh.expose().to_owned()),
                    ("client_id", "hoist".to_owned()),
                    ("service", service.to_owned()),
                ];
                if !scope.scopes.is_empty() {
                    form.push(("scope", scope.scopes.join(" ")));
                }
                let body = form
                    .iter()
                    .map(|(k, v)| format!("{k}={}", form_encode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                client
                    .post(url.clone())
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body)
            } else {
                let mut u = url.clone();
                {
                    let mut q = u.query_pairs_mut();
                    if !service.is_empty() {
                        q.append_pair("service", service);
                    }
                    for s in &scope.scopes {
                        q.append_pair("scope", s);
                    }
                }
                let mut rb = client.get(u);
                if let Some(c) = creds {
                    let mut h = HeaderValue::from_str(&c.basic_header())
                        .map_err(|_| proto("the credentials cannot be sent in a header".into()))?;
                    h.set_sensitive(true);
                    rb = rb.header(AUTHORIZATION, h);
                }
                rb
            };
            let why = match req.timeout(self.opts.request_timeout).send() {
                Ok(resp)
                    if is_retryable_status(resp.status().as_u16()) && retry + 1 < policy.tries =>
                {
                    format!("HTTP {}", resp.status())
                }
                Ok(resp) => break resp,
                Err(e) => {
                    let detail = error_chain(&e);
                    // A certificate that cannot be verified will not become
                    // verifiable by waiting; it is the realm's, not the
                    // registry's.
                    if is_certificate_error(&detail) {
                        let root = self.certs_root();
                        return Err(RegistryError::Unreachable {
                            what: token_what,
                            registry: realm_host.clone(),
                            detail: format!(
                                "{detail}; the token service's certificate is not trusted: put its CA certificate in {root}/{realm_host}/ca.crt (an insecure mark covers only the registry itself, never its token service)"
                            ),
                        });
                    }
                    if retry + 1 >= policy.tries {
                        return Err(RegistryError::Unreachable {
                            what: token_what,
                            registry: realm_host.clone(),
                            detail,
                        });
                    }
                    detail
                }
            };
            retry += 1;
            let wait = policy.delay(retry, None);
            progress.event(&Event::Retrying {
                what: &token_what,
                retry,
                wait,
                why: &why,
            });
            std::thread::sleep(wait);
        };
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let message = error_message(&self.secrets, resp);
            let hint = match creds {
                Some(c) => format!(
                    "the token service refused the credentials from {}; log in again with `hoist login {registry}`",
                    c.source
                ),
                None if !realm_ok_for_creds => format!(
                    "credentials are not sent to the token service {} over plain HTTP: only a plain-HTTP registry may have a plain-HTTP token service, on its own host",
                    url_without_query(&url)
                ),
                None => format!("log in with `hoist login {registry}`"),
            };
            return Err(RegistryError::Unauthorized {
                what: token_what,
                registry,
                message,
                hint,
            });
        }
        if !status.is_success() {
            return Err(RegistryError::Status {
                what: token_what,
                registry,
                status: status.as_u16(),
                message: error_message(&self.secrets, resp),
            });
        }
        let body = read_small(resp, 1 << 20).map_err(|e| RegistryError::Io {
            what: token_what.clone(),
            source: e,
        })?;
        // Whatever it hands out is secret from now on (see `redact`), even
        // when the answer is refused below.
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
            for k in ["token", "access_token", "refresh_token"] {
                if let Some(t) = v.get(k).and_then(|t| t.as_str()) {
                    self.secrets.remember(t);
                }
            }
        }
        parse_token_answer(&body).map_err(|why| proto(why.into()))
    }

    /// The client for a token realm on another host than its registry:
    /// TLS always verified, with that host's certs.d files, else the CA
    /// certificates (never the client certificate) the user gave for the
    /// registry, whose token service it is.
    fn realm_client(
        &self,
        realm: &Url,
        registry_base: &Url,
        what: &str,
    ) -> Result<reqwest::blocking::Client, RegistryError> {
        let host = authority(realm);
        let registry = authority(registry_base);
        let key = format!("{host} {registry}");
        if let Some(c) = lock(&self.realm_clients).get(&key) {
            return Ok(c.clone());
        }
        let files = match certs::discover(&self.opts.certs_dirs, &host)? {
            Some(t) => Some(t),
            None => certs::discover(&self.opts.certs_dirs, &registry)?.map(|mut t| {
                t.client = None;
                t
            }),
        };
        let mut builder = crate::net::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(t) = &files {
            builder = certs::apply(builder, t)?;
        }
        let client = builder.build().map_err(|e| RegistryError::Protocol {
            what: what.to_owned(),
            registry: host.clone(),
            why: error_chain(&e),
        })?;
        lock(&self.realm_clients).insert(key, client.clone());
        Ok(client)
    }

    /// The first certs.d root, for hints.
    fn certs_root(&self) -> String {
        self.opts
            .certs_dirs
            .first()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "/etc/containers/certs.d".into())
    }

    /// Sends `call` to `ep`: authorization, redirects (credentials only to
    /// `ep`'s own origin), one re-authentication on 401, and retries.
    /// Returns whatever final response the server gave; the caller judges
    /// its status (see [`Client::check`]).
    pub(crate) fn send(&self, ep: &Endpoint, call: &Call<'_>) -> Result<Response, RegistryError> {
        let mut url = call.url.clone();
        let mut retry: u32 = 0;
        let mut hops = 0;
        let mut reauthenticated = false;
        let policy = &self.opts.retry;
        loop {
            let own = same_origin(&url, &ep.base);
            let client = if own { &ep.client } else { self.foreign()? };
            let mut rb = client
                .request(call.method.clone(), url.clone())
                .headers(call.headers.clone());
            if own {
                if let Some(h) = self.authorization(ep, call.scope, call.what, call.progress)? {
                    rb = rb.header(AUTHORIZATION, h);
                }
            }
            if let Some(t) = call.timeout {
                rb = rb.timeout(t);
            }
            if let Some(body) = call.body {
                rb = rb.body(body().map_err(|e| RegistryError::Io {
                    what: call.what.to_owned(),
                    source: e,
                })?);
            }
            let why = match rb.send() {
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_redirection() {
                        let follow = matches!(status.as_u16(), 307 | 308)
                            || matches!(call.method, Method::GET | Method::HEAD);
                        if let (true, Some(next)) = (follow, location(&resp, &url)) {
                            hops += 1;
                            if hops > MAX_REDIRECTS {
                                return Err(RegistryError::Protocol {
                                    what: call.what.to_owned(),
                                    registry: ep.registry.clone(),
                                    why: format!("more than {MAX_REDIRECTS} redirects"),
                                });
                            }
                            url = next;
                            continue;
                        }
                    }
                    if status == StatusCode::UNAUTHORIZED && own && !reauthenticated {
                        reauthenticated = true;
                        if self.reauthenticate(ep, resp.headers(), call.scope) {
                            continue;
                        }
                        return Ok(resp);
                    }
                    if call.retry
                        && is_retryable_status(status.as_u16())
                        && retry + 1 < policy.tries
                    {
                        let ra = retry_after(&resp);
                        if let Some(asked) = ra.filter(|a| *a > policy.max_retry_after) {
                            return Err(self.wait_too_long(&ep.registry, call.what, resp, asked));
                        }
                        let why = format!("HTTP {status}");
                        retry += 1;
                        let wait = policy.delay(retry, ra);
                        call.progress.event(&Event::Retrying {
                            what: call.what,
                            retry,
                            wait,
                            why: &why,
                        });
                        std::thread::sleep(wait);
                        url = call.url.clone();
                        continue;
                    }
                    return Ok(resp);
                }
                Err(e) => {
                    let detail = error_chain(&e.without_url());
                    if !call.retry || retry + 1 >= policy.tries {
                        return Err(RegistryError::Unreachable {
                            what: call.what.to_owned(),
                            registry: ep.registry.clone(),
                            detail,
                        });
                    }
                    detail
                }
            };
            retry += 1;
            let wait = policy.delay(retry, None);
            call.progress.event(&Event::Retrying {
                what: call.what,
                retry,
                wait,
                why: &why,
            });
            std::thread::sleep(wait);
            // Start again from the registry: a redirect target (a signed
            // URL) may have expired.
            url = call.url.clone();
        }
    }

    /// The error for a server that asked (with `Retry-After`) for a longer
    /// wait than hoist's cap: said, not waited for.
    fn wait_too_long(
        &self,
        registry: &str,
        what: &str,
        resp: Response,
        asked: Duration,
    ) -> RegistryError {
        RegistryError::WaitTooLong {
            what: what.to_owned(),
            registry: registry.to_owned(),
            status: resp.status().as_u16(),
            asked,
            limit: self.opts.retry.max_retry_after,
            message: error_message(&self.secrets, resp),
        }
    }

    /// Drops every cached connection (tests; after a login).
    pub(crate) fn forget(&self, registry: &str) {
        lock(&self.endpoints).remove(api_host(registry));
    }
}

impl Endpoint {
    /// `base` joined with an API path (`v2/NAME/blobs/DIGEST`).
    pub fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.base.join(path).map_err(|e| RegistryError::Protocol {
            what: format!("building the URL for {path}"),
            registry: self.registry.clone(),
            why: e.to_string(),
        })
    }

    /// Resolves a `Location` header against the request URL.
    pub fn resolve_location(&self, resp: &Response, what: &str) -> Result<Url, RegistryError> {
        location(resp, resp.url()).ok_or_else(|| RegistryError::Protocol {
            what: what.to_owned(),
            registry: self.registry.clone(),
            why: format!(
                "HTTP {} without a usable Location header",
                resp.status().as_u16()
            ),
        })
    }

    pub fn challenge(&self) -> Option<Challenge> {
        lock(&self.challenge).clone()
    }
}

fn location(resp: &Response, base: &Url) -> Option<Url> {
    let loc = resp.headers().get(LOCATION)?.to_str().ok()?;
    base.join(loc).ok()
}

fn url_without_query(u: &Url) -> String {
    let mut u = u.clone();
    u.set_query(None);
    u.to_string()
}

/// `application/x-www-form-urlencoded` escaping.
fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_authorities() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(same_origin(
            &u("https://r.io/v2/x"),
            &u("https://r.io:443/")
        ));
        assert!(!same_origin(&u("https://r.io/v2/x"), &u("http://r.io/")));
        assert!(!same_origin(&u("https://s3.aws/x"), &u("https://r.io/")));
        assert!(!same_origin(
            &u("http://127.0.0.1:5001/"),
            &u("http://127.0.0.1:5002/")
        ));
        assert_eq!(
            authority(&u("http://127.0.0.1:5104/token")),
            "127.0.0.1:5104"
        );
        assert_eq!(authority(&u("https://[::1]:5000/")), "[::1]:5000");
        assert_eq!(
            authority(&u("https://auth.docker.io/token")),
            "auth.docker.io"
        );
        assert_eq!(form_encode("a b/c+d"), "a+b%2Fc%2Bd");
    }
}
