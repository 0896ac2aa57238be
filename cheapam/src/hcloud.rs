//! Hetzner Cloud API client (the few calls cheapam needs) and a shared server cache.
//!
//! - every request has a timeout;
//! - 429 waits for `RateLimit-Reset` (a Unix time in seconds), 5xx and transport errors back
//!   off exponentially, both up to `max_attempts`;
//! - when `RateLimit-Remaining` reaches 0 the next request waits for the reset;
//! - lists follow `meta.pagination.next_page`;
//! - the token lives in a [`Secret`] and is only ever put in the Authorization header.

use crate::config::{NetworkRef, Secret};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::{debug, warn};

/// Page size for lists (the API's maximum).
pub const PER_PAGE: u32 = 50;

#[derive(Debug, thiserror::Error)]
pub enum HcloudError {
    #[error("request to Hetzner API timed out after {attempts} attempt(s)")]
    Timeout { attempts: u32 },
    #[error("Hetzner API rate limit still exceeded after {attempts} attempt(s)")]
    RateLimited { attempts: u32 },
    #[error("Hetzner API returned {status} after {attempts} attempt(s): {message}")]
    Status {
        status: u16,
        attempts: u32,
        message: String,
    },
    #[error("cannot reach Hetzner API: {0}")]
    Transport(String),
    #[error("unexpected Hetzner API response: {0}")]
    Decode(String),
    #[error("private network {0:?} not found in the Hetzner project")]
    NetworkNotFound(String),
}

// ---- API types (only the fields cheapam reads) ----

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Server {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub status: String,
    pub public_net: PublicNet,
    #[serde(default)]
    pub private_net: Vec<PrivateNet>,
    pub server_type: ServerType,
    pub datacenter: Datacenter,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct PublicNet {
    pub ipv4: Option<Ipv4Info>,
    pub ipv6: Option<Ipv6Info>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Ipv4Info {
    pub ip: String,
}

/// `ip` is the server's /64, e.g. `2001:db8:1:2::/64`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Ipv6Info {
    pub ip: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct PrivateNet {
    pub network: u64,
    pub ip: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ServerType {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Datacenter {
    pub name: String,
    pub location: Location,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Location {
    pub name: String,
    #[serde(default)]
    pub network_zone: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Meta {
    pagination: Option<Pagination>,
}

#[derive(Debug, Clone, Deserialize)]
struct Pagination {
    next_page: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct ServerList {
    servers: Vec<Server>,
    meta: Option<Meta>,
}

#[derive(Debug, Deserialize)]
struct ServerOne {
    server: Server,
}

#[derive(Debug, Deserialize)]
struct NetworkList {
    networks: Vec<Network>,
}

#[derive(Debug, Deserialize)]
struct Network {
    id: u64,
}

/// Retry policy of the client.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Upper bound on one wait for a rate-limit reset.
    pub max_rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_rate_limit_wait: Duration::from_secs(60),
        }
    }
}

/// Counters, read by metrics and the benchmark.
#[derive(Debug, Default)]
pub struct Stats {
    /// HTTP requests sent (every attempt, every page).
    pub requests: AtomicU64,
    /// Logical server-list calls (all pages of one list count once).
    pub server_lists: AtomicU64,
    /// Retries after 429.
    pub rate_limited: AtomicU64,
    /// Retries after 5xx, timeouts or transport errors.
    pub retries: AtomicU64,
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Secret,
    label_selector: Option<String>,
    retry: RetryPolicy,
    /// When `RateLimit-Remaining` hit 0: do not send before this instant.
    throttle_until: Arc<Mutex<Option<Instant>>>,
    pub stats: Arc<Stats>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("hcloud::Client")
            .field("base", &self.base)
            .field("token", &self.token)
            .field("label_selector", &self.label_selector)
            .field("retry", &self.retry)
            .finish()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn header_u64(resp: &reqwest::Response, name: &str) -> Option<u64> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Small jitter (0–25 %) without a random-number dependency.
fn jitter(d: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    d + d.mul_f64(f64::from(nanos % 250) / 1000.0)
}

impl Client {
    pub fn new(
        base: &str,
        token: Secret,
        timeout: Duration,
        label_selector: Option<String>,
        retry: RetryPolicy,
    ) -> Result<Self, HcloudError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("cheapam/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(4)
            .build()
            .map_err(|e| HcloudError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
            label_selector,
            retry,
            throttle_until: Arc::new(Mutex::new(None)),
            stats: Arc::new(Stats::default()),
        })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .retry
            .base_backoff
            .saturating_mul(1u32 << attempt.min(16));
        jitter(exp.min(self.retry.max_backoff))
    }

    async fn wait_throttle(&self) {
        let until = *self.throttle_until.lock().expect("throttle lock");
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                debug!(
                    wait_ms = (until - now).as_millis() as u64,
                    "hcloud rate limit: waiting for reset"
                );
                tokio::time::sleep(until - now).await;
            }
        }
    }

    fn reset_wait(&self, resp: &reqwest::Response) -> Option<Duration> {
        header_u64(resp, "ratelimit-reset").map(|reset| {
            Duration::from_secs(reset.saturating_sub(unix_now()))
                .max(Duration::from_millis(100))
                .min(self.retry.max_rate_limit_wait)
        })
    }

    /// GET `path` (relative to the base, with query), retrying as documented above.
    /// Returns `Ok(None)` on 404.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<T>, HcloudError> {
        let url = format!("{}{}", self.base, path);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            self.wait_throttle().await;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let sent = self
                .http
                .get(&url)
                .query(query)
                .bearer_auth(self.token.expose())
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    let timeout = e.is_timeout();
                    if attempt >= self.retry.max_attempts {
                        return Err(if timeout {
                            HcloudError::Timeout { attempts: attempt }
                        } else {
                            HcloudError::Transport(e.without_url().to_string())
                        });
                    }
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    let wait = self.backoff(attempt - 1);
                    warn!(
                        path,
                        attempt,
                        timeout,
                        ?wait,
                        "hcloud request failed, retrying"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            let status = resp.status();
            if header_u64(&resp, "ratelimit-remaining") == Some(0) {
                if let Some(wait) = self.reset_wait(&resp) {
                    *self.throttle_until.lock().expect("throttle lock") =
                        Some(Instant::now() + wait);
                }
            }
            if status.as_u16() == 429 {
                if attempt >= self.retry.max_attempts {
                    return Err(HcloudError::RateLimited { attempts: attempt });
                }
                self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                let wait = self
                    .reset_wait(&resp)
                    .unwrap_or_else(|| self.backoff(attempt - 1));
                warn!(
                    path,
                    attempt,
                    ?wait,
                    "hcloud rate limited (429), waiting for reset"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.is_server_error() {
                if attempt >= self.retry.max_attempts {
                    let message = resp.text().await.unwrap_or_default();
                    return Err(HcloudError::Status {
                        status: status.as_u16(),
                        attempts: attempt,
                        message: truncate(&message),
                    });
                }
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                let wait = self.backoff(attempt - 1);
                warn!(
                    path,
                    attempt,
                    status = status.as_u16(),
                    ?wait,
                    "hcloud server error, retrying"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.as_u16() == 404 {
                return Ok(None);
            }
            if !status.is_success() {
                let message = resp.text().await.unwrap_or_default();
                return Err(HcloudError::Status {
                    status: status.as_u16(),
                    attempts: attempt,
                    message: truncate(&message),
                });
            }
            let body = match resp.bytes().await {
                Ok(b) => b,
                Err(e) if e.is_timeout() && attempt < self.retry.max_attempts => {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(self.backoff(attempt - 1)).await;
                    continue;
                }
                Err(e) if e.is_timeout() => return Err(HcloudError::Timeout { attempts: attempt }),
                Err(e) => return Err(HcloudError::Transport(e.without_url().to_string())),
            };
            return serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| HcloudError::Decode(e.to_string()));
        }
    }

    /// Every server (matching the label selector, if one is set), following pagination.
    pub async fn list_servers(&self) -> Result<Vec<Server>, HcloudError> {
        self.stats.server_lists.fetch_add(1, Ordering::Relaxed);
        let mut out = Vec::new();
        let mut page: u32 = 1;
        loop {
            let mut query = vec![
                ("page", page.to_string()),
                ("per_page", PER_PAGE.to_string()),
            ];
            if let Some(sel) = &self.label_selector {
                query.push(("label_selector", sel.clone()));
            }
            let list: ServerList = self
                .get("/servers", &query)
                .await?
                .ok_or_else(|| HcloudError::Decode("/servers returned 404".into()))?;
            out.extend(list.servers);
            match list
                .meta
                .and_then(|m| m.pagination)
                .and_then(|p| p.next_page)
            {
                Some(next) if next > page => page = next,
                _ => break,
            }
        }
        Ok(out)
    }

    /// One server by id; `None` when it does not exist (404).
    pub async fn get_server(&self, id: u64) -> Result<Option<Server>, HcloudError> {
        Ok(self
            .get::<ServerOne>(&format!("/servers/{id}"), &[])
            .await?
            .map(|s| s.server))
    }

    /// Id of the private network with this name.
    pub async fn network_id_by_name(&self, name: &str) -> Result<Option<u64>, HcloudError> {
        let list: Option<NetworkList> =
            self.get("/networks", &[("name", name.to_string())]).await?;
        Ok(list.and_then(|l| l.networks.first().map(|n| n.id)))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(300).collect()
}

// ---- shared server cache ----

#[derive(Default)]
struct Snapshot {
    by_name: HashMap<String, Arc<Server>>,
    by_id: HashMap<u64, Arc<Server>>,
    fetched: Option<Instant>,
}

/// One cached server list for all nodes, refreshed on a miss or when older than
/// `max_age`, at most once per `min_interval`, with one refresh in flight at a time.
pub struct ServerCache {
    client: Client,
    snapshot: RwLock<Snapshot>,
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
    min_interval: Duration,
    max_age: Duration,
    network: Option<NetworkRef>,
    network_id: tokio::sync::OnceCell<Option<u64>>,
}

impl std::fmt::Debug for ServerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCache")
            .field("client", &self.client)
            .field("min_interval", &self.min_interval)
            .field("max_age", &self.max_age)
            .finish()
    }
}

impl ServerCache {
    pub fn new(
        client: Client,
        min_interval: Duration,
        max_age: Duration,
        network: Option<NetworkRef>,
    ) -> Self {
        Self {
            client,
            snapshot: RwLock::new(Snapshot::default()),
            last_refresh: tokio::sync::Mutex::new(None),
            min_interval,
            max_age,
            network,
            network_id: tokio::sync::OnceCell::new(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn lookup<F>(&self, find: F) -> Result<Option<Arc<Server>>, HcloudError>
    where
        F: Fn(&Snapshot) -> Option<Arc<Server>>,
    {
        let started = Instant::now();
        {
            let snap = self.snapshot.read().expect("snapshot lock");
            let fresh = snap.fetched.is_some_and(|t| t.elapsed() < self.max_age);
            if fresh {
                if let Some(found) = find(&snap) {
                    return Ok(Some(found));
                }
            }
        }
        let mut last = self.last_refresh.lock().await;
        {
            // Someone refreshed while we waited for the lock: use that.
            let snap = self.snapshot.read().expect("snapshot lock");
            if snap.fetched.is_some_and(|t| t >= started) {
                return Ok(find(&snap));
            }
        }
        if last.is_some_and(|t| t.elapsed() < self.min_interval) {
            // Refreshed too recently: answer from what we have; a miss is retried later.
            let snap = self.snapshot.read().expect("snapshot lock");
            return Ok(find(&snap));
        }
        *last = Some(Instant::now());
        let servers = self.client.list_servers().await?;
        let mut snap = Snapshot {
            fetched: Some(Instant::now()),
            ..Snapshot::default()
        };
        for s in servers {
            let s = Arc::new(s);
            snap.by_id.insert(s.id, s.clone());
            snap.by_name.insert(s.name.clone(), s);
        }
        debug!(servers = snap.by_id.len(), "hcloud server list refreshed");
        let found = find(&snap);
        *self.snapshot.write().expect("snapshot lock") = snap;
        Ok(found)
    }

    pub async fn by_name(&self, name: &str) -> Result<Option<Arc<Server>>, HcloudError> {
        self.lookup(|s| s.by_name.get(name).cloned()).await
    }

    pub async fn by_id(&self, id: u64) -> Result<Option<Arc<Server>>, HcloudError> {
        self.lookup(|s| s.by_id.get(&id).cloned()).await
    }

    /// Whether a server exists, asked directly (not from the cache), before deleting a Node.
    pub async fn exists(&self, id: u64) -> Result<bool, HcloudError> {
        Ok(self.client.get_server(id).await?.is_some())
    }

    /// Id of the private network chosen for InternalIP (resolved once).
    pub async fn network_id(&self) -> Result<Option<u64>, HcloudError> {
        let network = self.network.clone();
        let client = self.client.clone();
        self.network_id
            .get_or_try_init(|| async move {
                match network {
                    None => Ok(None),
                    Some(NetworkRef::Id(id)) => Ok(Some(id)),
                    Some(NetworkRef::Name(name)) => match client.network_id_by_name(&name).await? {
                        Some(id) => Ok(Some(id)),
                        None => Err(HcloudError::NetworkNotFound(name)),
                    },
                }
            })
            .await
            .copied()
    }

    /// Whether a private network was asked for by configuration.
    pub fn network_configured(&self) -> bool {
        self.network.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{fake_server, Behaviour, FakeHcloud};

    fn client(fake: &FakeHcloud, timeout_ms: u64) -> Client {
        Client::new(
            &fake.url(),
            Secret::new("test-token"),
            Duration::from_millis(timeout_ms),
            None,
            RetryPolicy {
                max_attempts: 4,
                base_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(200),
                max_rate_limit_wait: Duration::from_secs(3),
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn rate_limited_then_success_honours_reset() {
        let fake = FakeHcloud::start().await;
        fake.add_server(fake_server(1, "n1", 1));
        fake.script([Behaviour::RateLimited { reset_in_secs: 1 }]);
        let c = client(&fake, 2000);
        let t = Instant::now();
        let servers = c.list_servers().await.unwrap();
        assert_eq!(servers.len(), 1);
        // RateLimit-Reset is a whole-second Unix time: the wait is > 0 and at most ~1 s.
        assert!(
            t.elapsed() >= Duration::from_millis(90),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(c.stats.rate_limited.load(Ordering::Relaxed), 1);
        assert_eq!(fake.requests().len(), 2);
    }

    #[tokio::test]
    async fn remaining_zero_delays_next_request() {
        let fake = FakeHcloud::start().await;
        fake.add_server(fake_server(1, "n1", 1));
        fake.script([Behaviour::RemainingZero { reset_in_secs: 1 }]);
        let c = client(&fake, 2000);
        c.list_servers().await.unwrap();
        let t = Instant::now();
        c.list_servers().await.unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(90),
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test]
    async fn server_error_then_success() {
        let fake = FakeHcloud::start().await;
        fake.add_server(fake_server(7, "n7", 7));
        fake.script([Behaviour::Status(500), Behaviour::Status(503)]);
        let c = client(&fake, 2000);
        let s = c.get_server(7).await.unwrap().unwrap();
        assert_eq!(s.name, "n7");
        assert_eq!(c.stats.retries.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn server_error_gives_up() {
        let fake = FakeHcloud::start().await;
        fake.script([Behaviour::Status(500); 4]);
        let c = client(&fake, 2000);
        let e = c.list_servers().await.unwrap_err();
        assert!(
            matches!(
                e,
                HcloudError::Status {
                    status: 500,
                    attempts: 4,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[tokio::test]
    async fn slow_responses_hit_timeout() {
        let fake = FakeHcloud::start().await;
        fake.add_server(fake_server(1, "n1", 1));
        fake.script([Behaviour::Delay(Duration::from_millis(800)); 4]);
        let c = client(&fake, 150);
        let t = Instant::now();
        let e = c.list_servers().await.unwrap_err();
        assert!(matches!(e, HcloudError::Timeout { attempts: 4 }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }

    #[tokio::test]
    async fn slow_once_then_fast() {
        let fake = FakeHcloud::start().await;
        fake.add_server(fake_server(1, "n1", 1));
        fake.script([Behaviour::Delay(Duration::from_millis(800))]);
        let c = client(&fake, 150);
        assert_eq!(c.list_servers().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn pagination_over_several_pages() {
        let fake = FakeHcloud::start().await;
        for i in 1..=123 {
            fake.add_server(fake_server(i, &format!("n{i}"), i));
        }
        let c = client(&fake, 2000);
        let servers = c.list_servers().await.unwrap();
        assert_eq!(servers.len(), 123);
        let ids: Vec<u64> = servers.iter().map(|s| s.id).collect();
        assert_eq!(ids, (1..=123).collect::<Vec<_>>());
        let reqs = fake.requests();
        assert_eq!(reqs.len(), 3, "{reqs:?}");
        assert!(reqs[2].contains("page=3"), "{reqs:?}");
        assert_eq!(c.stats.server_lists.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn token_sent_but_not_debug_printed() {
        let fake = FakeHcloud::start().await;
        let c = client(&fake, 2000);
        assert!(
            c.list_servers().await.is_ok(),
            "fake checks the bearer token"
        );
        assert!(!format!("{c:?}").contains("test-token"));
        let bad = Client::new(
            &fake.url(),
            Secret::new("wrong"),
            Duration::from_secs(1),
            None,
            RetryPolicy::default(),
        )
        .unwrap();
        assert!(matches!(
            bad.list_servers().await,
            Err(HcloudError::Status { status: 401, .. })
        ));
    }

    #[tokio::test]
    async fn cache_refreshes_on_miss_at_most_once_per_interval() {
        let fake = FakeHcloud::start().await;
        fake.add_server(fake_server(1, "n1", 1));
        let cache = ServerCache::new(
            client(&fake, 2000),
            Duration::from_millis(300),
            Duration::from_secs(60),
            None,
        );
        // 50 concurrent lookups share one list.
        let lookups = (0..50).map(|_| cache.by_name("n1"));
        for r in futures::future::join_all(lookups).await {
            assert_eq!(r.unwrap().unwrap().id, 1);
        }
        assert_eq!(cache.client().stats.server_lists.load(Ordering::Relaxed), 1);
        // A miss right after a refresh does not list again...
        fake.add_server(fake_server(2, "n2", 2));
        assert!(cache.by_name("n2").await.unwrap().is_none());
        assert_eq!(cache.client().stats.server_lists.load(Ordering::Relaxed), 1);
        // ...but does once the interval passed.
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(cache.by_name("n2").await.unwrap().unwrap().id, 2);
        assert_eq!(cache.client().stats.server_lists.load(Ordering::Relaxed), 2);
        assert_eq!(cache.by_id(2).await.unwrap().unwrap().name, "n2");
        assert_eq!(cache.client().stats.server_lists.load(Ordering::Relaxed), 2);
    }
}
