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
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Pages read looking for new servers (`sort=id:desc`).
    pub server_scans: AtomicU64,
    /// Single servers read by id.
    pub server_gets: AtomicU64,
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

    /// One page of the newest servers (matching the label selector), newest first.
    pub async fn list_newest(&self, page: u32) -> Result<Vec<Server>, HcloudError> {
        self.stats.server_scans.fetch_add(1, Ordering::Relaxed);
        let mut query = vec![
            ("sort", "id:desc".to_string()),
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
        Ok(list.servers)
    }

    /// One server by id; `None` when it does not exist (404).
    pub async fn get_server(&self, id: u64) -> Result<Option<Server>, HcloudError> {
        self.stats.server_gets.fetch_add(1, Ordering::Relaxed);
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

/// Spend at most this many requests an hour on the periodic full server list (half of the
/// 10 % of Hetzner's 3,600 requests an hour that cheapam aims to stay under).
pub const LIST_BUDGET_PER_HOUR: u64 = 180;
/// A scan for new servers reads at most this many pages; more new servers than that
/// and a full list is cheaper.
pub const MAX_SCAN_PAGES: u32 = 5;
/// A name that is not found is not looked for again for a while: first `min_interval`,
/// doubling with every miss, at most this long.
pub const MAX_NEGATIVE: Duration = Duration::from_secs(600);
/// Window over which single-server look-ups are counted against a full list.
pub const DIRECT_WINDOW: Duration = Duration::from_secs(60);
/// Single-server look-ups allowed per window before a full list is used instead (at
/// least this many, or one per page of the full list).
pub const MIN_DIRECT_PER_WINDOW: usize = 20;

struct Entry {
    server: Arc<Server>,
    /// When this server's data was read from the API.
    fetched: Instant,
}

struct Negative {
    until: Instant,
    misses: u32,
}

#[derive(Default)]
struct Snapshot {
    by_id: HashMap<u64, Entry>,
    by_name: HashMap<String, u64>,
    /// Last full list, and how many pages it had.
    listed: Option<Instant>,
    pages: u32,
    /// Last look for new servers (a full list counts as one).
    scanned: Option<Instant>,
    /// Names not found, and until when not to look for them again.
    negative: HashMap<String, Negative>,
    /// Single-server look-ups in the last [`DIRECT_WINDOW`].
    direct: VecDeque<Instant>,
}

impl Snapshot {
    fn insert(&mut self, server: Server, fetched: Instant) -> Arc<Server> {
        let server = Arc::new(server);
        if let Some(old) = self.by_id.get(&server.id) {
            if old.server.name != server.name
                && self.by_name.get(&old.server.name) == Some(&server.id)
            {
                self.by_name.remove(&old.server.name);
            }
        }
        self.negative.remove(&server.name);
        self.by_name.insert(server.name.clone(), server.id);
        self.by_id.insert(
            server.id,
            Entry {
                server: server.clone(),
                fetched,
            },
        );
        server
    }

    fn remove(&mut self, id: u64) {
        if let Some(old) = self.by_id.remove(&id) {
            if self.by_name.get(&old.server.name) == Some(&id) {
                self.by_name.remove(&old.server.name);
            }
        }
    }

    fn by_name(&self, name: &str) -> Option<Arc<Server>> {
        let id = self.by_name.get(name)?;
        self.by_id.get(id).map(|e| e.server.clone())
    }
}

/// How fresh a server's data must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// What the (periodically refreshed) full list says is good enough.
    Listed,
    /// Read from the API at most this long ago.
    Within(Duration),
}

/// The clock the cache reads (replaceable, so a test can play an hour in a second).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// One server cache for all nodes, spending few requests (Hetzner allows 3,600 an hour):
///
/// - a full list (50 servers a page) at start and then periodically, every `max_age` or,
///   for large projects, less often so that it costs at most [`LIST_BUDGET_PER_HOUR`];
/// - a name not in the list (a node joining before the last list) triggers a scan of the
///   newest servers (`sort=id:desc`, page by page until a known one), at most once per
///   `min_interval` for all misses together; a name still missing is remembered
///   (negative cache, growing expiry up to [`MAX_NEGATIVE`]), so a Node without a server
///   costs a request every ten minutes, however often it changes;
/// - a server whose data must be fresh (a NotReady node: is it off, is it gone?) is read
///   alone (`GET /servers/{id}`), unless more than a full list's worth of such look-ups
///   happened in the last minute: then one full list answers them all.
pub struct ServerCache {
    client: Client,
    snapshot: Mutex<Snapshot>,
    /// One refresh (list or scan) in flight at a time.
    refreshing: tokio::sync::Mutex<()>,
    min_interval: Duration,
    max_age: Duration,
    network: Option<NetworkRef>,
    network_id: tokio::sync::OnceCell<Option<u64>>,
    clock: Clock,
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
    /// `min_interval`: least time between two scans for new servers; `max_age`: the full
    /// list is refreshed when older than this (or than the budget allows, see above).
    pub fn new(
        client: Client,
        min_interval: Duration,
        max_age: Duration,
        network: Option<NetworkRef>,
    ) -> Self {
        Self {
            client,
            snapshot: Mutex::new(Snapshot::default()),
            refreshing: tokio::sync::Mutex::new(()),
            min_interval,
            max_age,
            network,
            network_id: tokio::sync::OnceCell::new(),
            clock: Arc::new(Instant::now),
        }
    }

    /// Read time from `clock` instead of the system's monotonic clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// How old the data of a server may be, at most, when freshness matters.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    fn now(&self) -> Instant {
        (self.clock)()
    }

    fn snap(&self) -> std::sync::MutexGuard<'_, Snapshot> {
        self.snapshot.lock().expect("snapshot lock")
    }

    /// How long a full list is used before the next one: `max_age`, or longer for a
    /// project so large that its pages would exceed [`LIST_BUDGET_PER_HOUR`].
    pub fn list_interval(&self) -> Duration {
        let pages = u64::from(self.snap().pages.max(1));
        self.max_age
            .max(Duration::from_secs(pages * 3600 / LIST_BUDGET_PER_HOUR))
    }

    fn list_due(&self) -> bool {
        let interval = self.list_interval();
        let now = self.now();
        self.snap()
            .listed
            .is_none_or(|t| now.saturating_duration_since(t) >= interval)
    }

    /// List every server (if still due once we hold the refresh lock).
    async fn full_list(&self, due: impl Fn(&Self) -> bool) -> Result<(), HcloudError> {
        let _one = self.refreshing.lock().await;
        if !due(self) {
            return Ok(());
        }
        let servers = self.client.list_servers().await?;
        let now = self.now();
        let mut snap = self.snap();
        let count = servers.len();
        snap.by_id.clear();
        snap.by_name.clear();
        for s in servers {
            snap.insert(s, now);
        }
        snap.pages = u32::try_from(count.div_ceil(PER_PAGE as usize).max(1)).unwrap_or(u32::MAX);
        snap.listed = Some(now);
        snap.scanned = Some(now);
        debug!(servers = count, "hcloud server list refreshed");
        Ok(())
    }

    /// The periodic full list, when due.
    async fn ensure_listed(&self) -> Result<(), HcloudError> {
        if self.list_due() {
            self.full_list(Self::list_due).await?;
        }
        Ok(())
    }

    /// Look for servers created since the last list: newest first, until a known one.
    async fn scan_newest(&self) -> Result<(), HcloudError> {
        let _one = self.refreshing.lock().await;
        let (max_known, recent) = {
            let snap = self.snap();
            let now = self.now();
            (
                snap.by_id.keys().max().copied().unwrap_or(0),
                snap.scanned
                    .is_some_and(|t| now.saturating_duration_since(t) < self.min_interval),
            )
        };
        if recent {
            return Ok(());
        }
        let mut page = 1;
        loop {
            let servers = self.client.list_newest(page).await?;
            let full = servers.len() >= PER_PAGE as usize;
            let reached_known = servers.iter().any(|s| s.id <= max_known);
            let now = self.now();
            {
                let mut snap = self.snap();
                for s in servers.into_iter().filter(|s| s.id > max_known) {
                    debug!(server = %s.name, id = s.id, "new hcloud server");
                    snap.insert(s, now);
                }
                snap.scanned = Some(now);
            }
            if reached_known || !full {
                return Ok(());
            }
            if page >= MAX_SCAN_PAGES {
                drop(_one);
                // Many new servers: one full list is cheaper than more pages.
                return self.full_list(|_| true).await;
            }
            page += 1;
        }
    }

    /// The server of this name (for a joining Node). See the type's documentation.
    pub async fn by_name(&self, name: &str) -> Result<Option<Arc<Server>>, HcloudError> {
        self.ensure_listed().await?;
        {
            let snap = self.snap();
            if let Some(s) = snap.by_name(name) {
                return Ok(Some(s));
            }
            if snap
                .negative
                .get(name)
                .is_some_and(|n| n.until > self.now())
            {
                return Ok(None);
            }
        }
        self.scan_newest().await?;
        let now = self.now();
        let mut snap = self.snap();
        if let Some(s) = snap.by_name(name) {
            return Ok(Some(s));
        }
        let misses = snap.negative.get(name).map_or(0, |n| n.misses) + 1;
        let wait = self
            .min_interval
            .max(Duration::from_millis(100))
            .saturating_mul(1u32 << (misses - 1).min(16))
            .min(MAX_NEGATIVE);
        snap.negative.insert(
            name.to_string(),
            Negative {
                until: now + wait,
                misses,
            },
        );
        Ok(None)
    }

    /// The server with this id, its data as fresh as asked. `None`: it does not exist.
    pub async fn by_id(
        &self,
        id: u64,
        fresh: Freshness,
    ) -> Result<Option<Arc<Server>>, HcloudError> {
        self.ensure_listed().await?;
        let now = self.now();
        let budget = {
            let mut snap = self.snap();
            if let Some(e) = snap.by_id.get(&id) {
                let ok = match fresh {
                    Freshness::Listed => true,
                    Freshness::Within(age) => now.saturating_duration_since(e.fetched) <= age,
                };
                if ok {
                    return Ok(Some(e.server.clone()));
                }
            }
            while snap
                .direct
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) > DIRECT_WINDOW)
            {
                snap.direct.pop_front();
            }
            let budget = (snap.pages as usize).max(MIN_DIRECT_PER_WINDOW);
            let within = snap.direct.len() < budget;
            if within {
                snap.direct.push_back(now);
            }
            within
        };
        if budget {
            let got = self.client.get_server(id).await?;
            let mut snap = self.snap();
            return Ok(match got {
                Some(s) => Some(snap.insert(s, self.now())),
                None => {
                    snap.remove(id);
                    None
                }
            });
        }
        // Many servers wanted fresh at once (many NotReady nodes): one full list a
        // minute answers all of them.
        let stale = |c: &Self| {
            let now = c.now();
            c.snap()
                .listed
                .is_none_or(|t| now.saturating_duration_since(t) >= DIRECT_WINDOW)
        };
        self.full_list(stale).await?;
        Ok(self.snap().by_id.get(&id).map(|e| e.server.clone()))
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

    /// A clock the test moves.
    fn manual_clock() -> (Clock, Arc<Mutex<Instant>>) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let read = now.clone();
        (Arc::new(move || *read.lock().unwrap()), now)
    }

    #[tokio::test]
    async fn cache_lists_once_scans_for_new_servers_and_remembers_misses() {
        let fake = FakeHcloud::start().await;
        fake.add_server(fake_server(1, "n1", 1));
        let (clock, now) = manual_clock();
        let cache = ServerCache::new(
            client(&fake, 2000),
            Duration::from_secs(1),
            Duration::from_secs(60),
            None,
        )
        .with_clock(clock);
        let advance = |d: Duration| *now.lock().unwrap() += d;
        // 50 concurrent lookups share one list.
        let lookups = (0..50).map(|_| cache.by_name("n1"));
        for r in futures::future::join_all(lookups).await {
            assert_eq!(r.unwrap().unwrap().id, 1);
        }
        assert_eq!(fake.requests().len(), 1, "{:?}", fake.requests());
        // A new server: one newest-first page finds it (and everything else new).
        fake.add_server(fake_server(2, "n2", 2));
        fake.add_server(fake_server(3, "n3", 3));
        advance(Duration::from_secs(2));
        assert_eq!(cache.by_name("n2").await.unwrap().unwrap().id, 2);
        assert_eq!(cache.by_name("n3").await.unwrap().unwrap().id, 3);
        let reqs = fake.requests();
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        assert!(reqs[1].contains("sort=id%3Adesc"), "{reqs:?}");
        // A name that has no server: asked once, then remembered with a growing expiry,
        // however often it is looked up.
        advance(Duration::from_secs(2));
        for _ in 0..100 {
            assert!(cache.by_name("ghost").await.unwrap().is_none());
        }
        assert_eq!(fake.requests().len(), 3);
        for (wait, total) in [(1, 4), (1, 4), (1, 5), (3, 5), (1, 6)] {
            advance(Duration::from_secs(wait));
            assert!(cache.by_name("ghost").await.unwrap().is_none());
            assert_eq!(fake.requests().len(), total, "after +{wait}s");
        }
        // Known ids need nothing: the list answers until it is due again.
        assert_eq!(
            cache
                .by_id(1, Freshness::Listed)
                .await
                .unwrap()
                .unwrap()
                .name,
            "n1"
        );
        assert_eq!(fake.requests().len(), 6);
        // Fresh data for one server: a single GET, then cached for its freshness.
        fake.set_status(1, "off");
        let s = cache
            .by_id(1, Freshness::Within(Duration::from_secs(5)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.status, "off");
        assert_eq!(fake.requests().last().unwrap(), "/v1/servers/1");
        cache
            .by_id(1, Freshness::Within(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(fake.requests().len(), 7);
        // Gone: None, and forgotten.
        fake.remove_server(1);
        advance(Duration::from_secs(6));
        assert!(cache
            .by_id(1, Freshness::Within(Duration::from_secs(5)))
            .await
            .unwrap()
            .is_none());
        assert_eq!(fake.requests().len(), 8);
        assert!(cache.by_name("n1").await.unwrap().is_none());
        // The list is refreshed once it is older than max_age.
        advance(Duration::from_secs(61));
        let before = fake.list_calls().len();
        cache.by_id(2, Freshness::Listed).await.unwrap().unwrap();
        assert_eq!(fake.list_calls().len(), before + 1);
    }

    #[tokio::test]
    async fn large_projects_list_less_often_and_many_fresh_lookups_become_one_list() {
        let fake = FakeHcloud::start().await;
        for i in 1..=500 {
            fake.add_server(fake_server(i, &format!("n{i}"), i));
        }
        let (clock, now) = manual_clock();
        let cache = ServerCache::new(
            client(&fake, 2000),
            Duration::from_secs(1),
            Duration::from_secs(60),
            None,
        )
        .with_clock(clock);
        cache.by_id(1, Freshness::Listed).await.unwrap().unwrap();
        assert_eq!(fake.requests().len(), 10, "10 pages");
        // 10 pages: at most LIST_BUDGET_PER_HOUR requests an hour on lists.
        assert_eq!(cache.list_interval(), Duration::from_secs(200));
        // 100 servers wanted fresh at once (100 NotReady nodes): 20 single GETs, then one
        // list answers the rest.
        *now.lock().unwrap() += Duration::from_secs(120);
        fake.clear_requests();
        for i in 1..=100 {
            cache
                .by_id(i, Freshness::Within(Duration::from_secs(60)))
                .await
                .unwrap()
                .unwrap();
        }
        assert_eq!(fake.requests().len(), MIN_DIRECT_PER_WINDOW + 10);
    }
}
