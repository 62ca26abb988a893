//! The HTTP core: one connection state per registry, authentication,
//! hand-followed redirects and retries. The operations (`pull.rs`,
//! `push.rs`) build requests and read responses; everything about getting
//! a request answered lives here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use reqwest::blocking::{Body, Response};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};

use super::certs;
use super::challenge::{self, Challenge};
use super::conf::{host_matches, RegistriesConf};
use super::credentials::{self, Credentials, Secret};
use super::redact::{Secrets, ServerText};
use super::{Event, Options, Progress, RegistryError};
use crate::net::retry::{is_certificate_error, is_retryable_status, retry_after};
use crate::reference::{api_host, host_part, is_loopback, Reference};

/// Redirects followed for one request before giving up.
const MAX_REDIRECTS: usize = 10;
/// A token is renewed when it has less than this left.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);
/// The longest a token is kept, whatever `expires_in` says: a clock
/// past this is not worth trusting, and it keeps `Instant` arithmetic far
/// from overflow.
const TOKEN_MAX_TTL: u64 = 24 * 60 * 60;

/// A registry client. Cheap to share between threads (`&Client` is all
/// the parallel transfers need); see the module docs of
/// [`crate::registry`].
pub struct Client {
    pub(crate) opts: Options,
    pub(crate) conf: RegistriesConf,
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    /// For hosts a registry redirects to (object storage): no registry
    /// TLS files, and never any credentials.
    foreign: Option<reqwest::blocking::Client>,
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
    challenge: Mutex<Option<Challenge>>,
    /// Credentials given to `login`, used instead of any lookup.
    creds_override: Option<Credentials>,
    /// Looked-up credentials, by repository (podman's auth.json can scope
    /// them to repositories).
    creds: Mutex<HashMap<String, Option<Credentials>>>,
    tokens: Mutex<HashMap<String, Token>>,
}

struct Token {
    value: Secret,
    expires: Instant,
}

/// What a request may do, as the token scopes asked for it.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    /// The repository whose credentials apply.
    pub repository: String,
    pub scopes: Vec<String>,
}

impl Scope {
    pub fn pull(repository: &str) -> Scope {
        Scope {
            repository: repository.to_owned(),
            scopes: vec![format!("repository:{repository}:pull")],
        }
    }

    /// Push to `repository`, and pull from `mount_from` for cross-repository
    /// mounts.
    pub fn push(repository: &str, mount_from: Option<&str>) -> Scope {
        let mut scopes = vec![format!("repository:{repository}:pull,push")];
        if let Some(from) = mount_from.filter(|f| *f != repository) {
            scopes.push(format!("repository:{from}:pull"));
        }
        Scope {
            repository: repository.to_owned(),
            scopes,
        }
    }

    /// No repository: `/v2/` itself (login).
    pub fn none() -> Scope {
        Scope {
            repository: String::new(),
            scopes: Vec::new(),
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these maps inconsistent: every update
    // is a single insert or remove.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An error and its causes on one line: reqwest's own message is terse
/// ("error sending request"), the cause says what happened.
pub(crate) use crate::error_chain;

/// `host[:port]` of a URL, the port only when it is not the scheme's
/// (`host_str` keeps IPv6 brackets).
fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

/// Whether a token realm is on the registry's own host (any port: the
/// same machine, which the user's trust in the registry covers).
fn same_host(realm: &Url, registry_base: &Url) -> bool {
    host_part(&authority(realm)).eq_ignore_ascii_case(host_part(&authority(registry_base)))
}

/// Credentials go to a token realm over HTTPS (verified, when the realm
/// is on another host: see [`Client::realm_client`]), or with the same
/// scheme on the registry's own host: so a plain-HTTP registry (loopback
/// or marked insecure) may have a plain-HTTP realm beside it, and a
/// registry reached over HTTPS never has its credentials sent in clear
/// text.
fn realm_ok_for_credentials(realm: &Url, registry_base: &Url) -> bool {
    realm.scheme() == "https"
        || (realm.scheme() == registry_base.scheme() && same_host(realm, registry_base))
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
        let foreign = if opts.offline {
            None
        } else {
            Some(
                crate::net::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| RegistryError::Protocol {
                        what: "setting up HTTP".into(),
                        registry: "-".into(),
                        why: error_chain(&e),
                    })?,
            )
        };
        Ok(Client {
            opts,
            conf,
            endpoints: Mutex::new(HashMap::new()),
            foreign,
            realm_clients: Mutex::new(HashMap::new()),
            secrets: Secrets::default(),
        })
    }

    pub fn options(&self) -> &Options {
        &self.opts
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
        let mut builder = crate::net::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(t) = &tls {
            builder = certs::apply(builder, t)?;
        }
        if insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder.build().map_err(|e| RegistryError::Protocol {
            what: what.clone(),
            registry: registry.to_owned(),
            why: error_chain(&e),
        })?;
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
        loop {
            let tried = client
                .get(https.clone())
                .timeout(self.opts.request_timeout)
                .send();
            let (result, url) = match tried {
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
                        let challenge = challenge_of(resp.headers());
                        let mut base = url.clone();
                        base.set_path("/");
                        return Ok(Endpoint {
                            registry: registry.to_owned(),
                            base,
                            client,
                            challenge: Mutex::new(challenge),
                            creds_override,
                            creds: Mutex::new(HashMap::new()),
                            tokens: Mutex::new(HashMap::new()),
                        });
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

    /// The credentials for `repository` on `ep`, looked up once.
    pub(crate) fn credentials(
        &self,
        ep: &Endpoint,
        repository: &str,
    ) -> Result<Option<Credentials>, RegistryError> {
        if let Some(c) = &ep.creds_override {
            self.secrets.remember_credentials(c);
            return Ok(Some(c.clone()));
        }
        if let Some(c) = lock(&ep.creds).get(repository) {
            return Ok(c.clone());
        }
        let found = credentials::lookup(&self.opts.auth_files, &ep.registry, repository)?;
        if let Some(c) = &found {
            self.secrets.remember_credentials(c);
        }
        lock(&ep.creds).insert(repository.to_owned(), found.clone());
        Ok(found)
    }

    /// The `Authorization` header for a request with `scope` on `ep`.
    pub(crate) fn authorization(
        &self,
        ep: &Endpoint,
        scope: &Scope,
        what: &str,
        progress: &dyn Progress,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let challenge = lock(&ep.challenge).clone();
        let value = match challenge {
            Some(c) if c.is_bearer() => Some(format!(
                "Bearer {}",
                self.token(ep, &c, scope, what, progress)?.expose()
            )),
            Some(c) if c.is_basic() => self
                .credentials(ep, &scope.repository)?
                .map(|c| c.basic_header()),
            _ => None,
        };
        Ok(value.and_then(|v| {
            let mut h = HeaderValue::from_str(&v).ok()?;
            h.set_sensitive(true);
            Some(h)
        }))
    }

    /// A Bearer token for `scope`, from the cache or the challenge's realm.
    fn token(
        &self,
        ep: &Endpoint,
        c: &Challenge,
        scope: &Scope,
        what: &str,
        progress: &dyn Progress,
    ) -> Result<Secret, RegistryError> {
        let key = scope.scopes.join(" ");
        if let Some(t) = lock(&ep.tokens).get(&key) {
            if Instant::now()
                .checked_add(TOKEN_MARGIN)
                .is_some_and(|soon| t.expires > soon)
            {
                return Ok(t.value.clone());
            }
        }
        let (token, ttl) = self.fetch_token(ep, c, scope, None, what, progress)?;
        lock(&ep.tokens).insert(
            key,
            Token {
                value: token.clone(),
                // `ttl` is at most a day (see parse_token_answer).
                expires: Instant::now().checked_add(ttl).unwrap_or_else(Instant::now),
            },
        );
        Ok(token)
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

    /// Whether credentials may go to `c`'s realm (see
    /// [`realm_ok_for_credentials`]).
    pub(crate) fn realm_accepts_credentials(&self, ep: &Endpoint, c: &Challenge) -> bool {
        c.param("realm")
            .and_then(|r| Url::parse(r).ok())
            .is_some_and(|u| realm_ok_for_credentials(&u, &ep.base))
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
            let client = if own {
                &ep.client
            } else {
                self.foreign.as_ref().unwrap_or(&ep.client)
            };
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

    /// After a 401: takes the response's challenge, forgets the token for
    /// `scope`. Whether trying again can help.
    fn reauthenticate(&self, ep: &Endpoint, headers: &HeaderMap, scope: &Scope) -> bool {
        let Some(c) = challenge_of(headers) else {
            return false;
        };
        let had_token = lock(&ep.tokens).remove(&scope.scopes.join(" ")).is_some();
        let mut current = lock(&ep.challenge);
        let changed = current.as_ref() != Some(&c);
        *current = Some(c);
        // Basic with the same challenge would send the same credentials.
        changed || had_token
    }

    /// Turns a response whose status is not one of `ok` into an error
    /// that names `what`, the registry and its message.
    pub(crate) fn check(
        &self,
        ep: &Endpoint,
        resp: Response,
        ok: &[u16],
        what: &str,
        scope: &Scope,
    ) -> Result<Response, RegistryError> {
        let status = resp.status().as_u16();
        if ok.contains(&status) {
            return Ok(resp);
        }
        // hoist sends credentials only after a challenge asked for them.
        let challenged = ep.challenge().is_some() || challenge_of(resp.headers()).is_some();
        let message = error_message(&self.secrets, resp);
        let registry = ep.registry.clone();
        let what = what.to_owned();
        Err(match status {
            401 => {
                let unchallenged =
                    "it sent no authentication challenge (no WWW-Authenticate header)";
                // Credentials the realm rules kept back (see
                // `realm_ok_for_credentials`) were not refused: never sent.
                let withheld = ep
                    .challenge()
                    .filter(|c| c.is_bearer())
                    .is_some_and(|c| !self.realm_accepts_credentials(ep, &c));
                let hint = match (self.credentials(ep, &scope.repository), challenged) {
                    (Ok(Some(c)), true) if withheld => format!(
                        "the credentials from {} were not sent: its token service is reached over plain HTTP, and hoist sends credentials there only when the registry itself is plain HTTP on the same host",
                        c.source
                    ),
                    (Ok(Some(c)), true) => format!(
                        "the credentials from {} were not accepted; log in again with `hoist login {registry}`",
                        c.source
                    ),
                    (Ok(Some(c)), false) => format!(
                        "{unchallenged}, so the credentials from {} were never sent; check that {registry} is the registry you meant and that no proxy in between strips the header",
                        c.source
                    ),
                    (_, false) => format!(
                        "{unchallenged} and hoist sent no credentials; check that {registry} is the registry you meant and that no proxy in between strips the header"
                    ),
                    (_, true) => format!("log in with `hoist login {registry}`"),
                };
                RegistryError::Unauthorized {
                    what,
                    registry,
                    message,
                    hint,
                }
            }
            403 => RegistryError::Denied {
                what,
                registry,
                message,
            },
            404 => RegistryError::NotFound {
                what,
                registry,
                message,
            },
            _ => RegistryError::Status {
                what,
                registry,
                status,
                message,
            },
        })
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

fn challenge_of(headers: &HeaderMap) -> Option<Challenge> {
    let all: Vec<Challenge> = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(challenge::parse)
        .collect();
    challenge::pick(&all).cloned()
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

/// Reads at most `limit` bytes of a body; an error if there are more.
pub(crate) fn read_small(resp: Response, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    resp.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the response is larger than {limit} bytes"),
        ));
    }
    Ok(buf)
}

/// The registry's explanation from an error body: the v2 `errors` list
/// (`CODE: message`), else the start of the text; redacted (see
/// [`super::redact`]).
pub(crate) fn error_message(secrets: &Secrets, resp: Response) -> ServerText {
    let body = read_small(resp, 64 * 1024).unwrap_or_default();
    secrets.clean(&parse_error_body(&body))
}

pub(crate) fn parse_error_body(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(errors) = v.get("errors").and_then(|e| e.as_array()) {
            let parts: Vec<String> = errors
                .iter()
                .map(|e| {
                    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                    let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
                    match (code.is_empty(), msg.is_empty()) {
                        (false, false) => format!("{code}: {msg}"),
                        (false, true) => code.to_owned(),
                        _ => msg.to_owned(),
                    }
                })
                .filter(|s| !s.is_empty())
                .collect();
            if !parts.is_empty() {
                return parts.join("; ");
            }
        }
        for k in ["details", "message", "error"] {
            if let Some(s) = v.get(k).and_then(|m| m.as_str()) {
                return s.to_owned();
            }
        }
    }
    // Cut to one line only after redaction (in `Secrets::clean`).
    String::from_utf8_lossy(body).into_owned()
}

/// A token service's JSON answer: the token (`token`, or OAuth2's
/// `access_token`) and how long to keep it (`expires_in`, 60 s by default
/// as the distribution spec says, at most [`TOKEN_MAX_TTL`]).
pub(crate) fn parse_token_answer(body: &[u8]) -> Result<(Secret, Duration), &'static str> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "the token service did not answer JSON")?;
    let token = v
        .get("token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .or_else(|| v.get("access_token").and_then(|t| t.as_str()))
        .filter(|t| !t.is_empty())
        .ok_or("the token service's answer has no token")?;
    let ttl = v
        .get("expires_in")
        .and_then(|e| e.as_u64())
        .filter(|&e| e > 0)
        .unwrap_or(60)
        .min(TOKEN_MAX_TTL);
    Ok((Secret::new(token), Duration::from_secs(ttl)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_table() {
        let cases = [
            (
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#,
                "MANIFEST_UNKNOWN: manifest unknown",
            ),
            (
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"a"},{"code":"DENIED","message":"b"}]}"#,
                "UNAUTHORIZED: a; DENIED: b",
            ),
            (
                r#"{"details":"incorrect username or password"}"#,
                "incorrect username or password",
            ),
            (
                "<html>\n<body>502 Bad Gateway</body>",
                "<html>\n<body>502 Bad Gateway</body>",
            ),
            ("", ""),
        ];
        for (body, want) in cases {
            assert_eq!(parse_error_body(body.as_bytes()), want, "{body}");
        }
    }

    #[test]
    fn token_answer_table() {
        let day = Duration::from_secs(24 * 60 * 60);
        type Want = Result<(&'static str, Duration), &'static str>;
        let cases: [(&str, Want); 7] = [
            (
                r#"{"token":"t","expires_in":300}"#,
                Ok(("t", Duration::from_secs(300))),
            ),
            (
                r#"{"access_token":"a"}"#,
                Ok(("a", Duration::from_secs(60))),
            ),
            (
                r#"{"token":"","access_token":"a","expires_in":0}"#,
                Ok(("a", Duration::from_secs(60))),
            ),
            // A token server may say anything: a huge lifetime is capped.
            (
                r#"{"token":"t","expires_in":18446744073709551615}"#,
                Ok(("t", day)),
            ),
            (
                r#"{"token":"t","expires_in":1e300}"#,
                Ok(("t", Duration::from_secs(60))),
            ),
            (
                r#"{"token":""}"#,
                Err("the token service's answer has no token"),
            ),
            ("<html>", Err("the token service did not answer JSON")),
        ];
        for (body, want) in cases {
            let got = parse_token_answer(body.as_bytes());
            let got = got.as_ref().map(|(t, d)| (t.expose(), *d)).map_err(|e| *e);
            assert_eq!(got, want, "{body}");
        }
    }

    #[test]
    fn scopes() {
        assert_eq!(
            Scope::pull("library/alpine").scopes,
            vec!["repository:library/alpine:pull"]
        );
        assert_eq!(
            Scope::push("team/web", Some("library/alpine")).scopes,
            vec![
                "repository:team/web:pull,push",
                "repository:library/alpine:pull"
            ]
        );
        assert_eq!(
            Scope::push("a", Some("a")).scopes,
            vec!["repository:a:pull,push"]
        );
    }

    #[test]
    fn realm_rules_table() {
        let u = |s: &str| Url::parse(s).unwrap();
        // (realm, registry base, credentials may go there)
        for (realm, base, want) in [
            (
                "https://auth.docker.io/token",
                "https://registry-1.docker.io/",
                true,
            ),
            (
                "http://127.0.0.1:5204/token",
                "http://127.0.0.1:5203/",
                true,
            ),
            (
                "http://localhost:5204/token",
                "http://127.0.0.1:5203/",
                false,
            ),
            ("http://r.io/token", "https://r.io/", false),
            ("http://r.io:8080/token", "https://r.io/", false),
            ("https://r.io/token", "http://r.io/", true),
            ("http://auth.r.io/token", "http://r.io/", false),
        ] {
            assert_eq!(
                realm_ok_for_credentials(&u(realm), &u(base)),
                want,
                "{realm} for {base}"
            );
        }
        assert!(same_host(&u("https://r.io:5001/t"), &u("http://R.io/")));
        assert!(!same_host(
            &u("https://localhost/t"),
            &u("http://127.0.0.1/")
        ));
    }

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
