//! Rate limits (governor, GCRA): a general per-IP limit as middleware, a per-user limit applied
//! when a token is verified, and strict login/registration limits per IP and per account.
//!
//! Hot path: one keyed check (a sharded map lookup and an atomic compare-and-swap) per request;
//! no lock is held across requests. Keyed state is pruned by a background worker.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use super::error::ApiError;
use crate::config::RateLimitConfig;
use crate::domain::Id;
use crate::service::ServiceError;
use crate::worker::{Progress, Worker};

/// All limiters.
pub struct RateLimits {
    api_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    api_user: Option<DefaultKeyedRateLimiter<Id>>,
    auth_ip: DefaultKeyedRateLimiter<IpAddr>,
    login_account: DefaultKeyedRateLimiter<String>,
    trusted_proxies: Vec<IpNet>,
    cdn_ranges: Vec<IpNet>,
    /// `None`: addresses in `cdn_ranges` are not limited.
    cdn_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

/// Parses `[rate_limit] trusted_proxies`: addresses (one host) or CIDR ranges.
pub fn parse_proxies(entries: &[String]) -> anyhow::Result<Vec<IpNet>> {
    parse_ranges("trusted_proxies", entries)
}

fn parse_ranges(key: &str, entries: &[String]) -> anyhow::Result<Vec<IpNet>> {
    entries
        .iter()
        .map(|e| {
            let e = e.trim();
            e.parse::<IpNet>()
                .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| anyhow::anyhow!("[rate_limit] {key}: {e:?} is not an address or a CIDR range"))
        })
        .collect()
}

/// A limit of `N/window`: `N` requests per window, all of which may come at once (the
/// burst), refilled evenly across the window. Windows: `s`, `min`, `h`, `d` (or `second`,
/// `minute`, `hour`, `day`), optionally with a count (`5m`, `10s`, `2h`).
pub fn parse_rate(key: &str, text: &str) -> anyhow::Result<Quota> {
    let bad = || anyhow::anyhow!("[rate_limit] {key}: {text:?} is not a rate such as 100/min, 20/s or 300/5m");
    let (count, window) = text.trim().split_once('/').ok_or_else(bad)?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    let window = window.trim();
    let digits = window.bytes().take_while(u8::is_ascii_digit).count();
    let (n, unit) = window.split_at(digits);
    let n: u64 = if n.is_empty() { 1 } else { n.parse().map_err(|_| bad())? };
    let unit_secs: u64 = match unit {
        "s" | "sec" | "second" => 1,
        "m" | "min" | "minute" => 60,
        "h" | "hour" => 3_600,
        "d" | "day" => 86_400,
        _ => return Err(bad()),
    };
    let window = std::time::Duration::from_secs(n.checked_mul(unit_secs).filter(|w| *w > 0).ok_or_else(bad)?);
    let count = NonZeroU32::new(count).ok_or_else(bad)?;
    let period = window / count.get();
    anyhow::ensure!(!period.is_zero(), bad());
    Ok(Quota::with_period(period).ok_or_else(bad)?.allow_burst(count))
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).expect("at least 1")
}

fn check<K: std::hash::Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>, key: &K) -> Result<(), ApiError> {
    limiter.check_key(key).map_err(|not_until| ApiError::RateLimited {
        retry_after_secs: not_until.wait_time_from(DefaultClock::default().now()).as_secs().max(1),
    })
}

impl RateLimits {
    /// Builds the limiters from config; `trusted_proxies` as [`parse_proxies`] read them.
    /// Fails on a malformed rate or range.
    pub fn new(config: &RateLimitConfig, trusted_proxies: Vec<IpNet>) -> anyhow::Result<RateLimits> {
        let api = (config.api_per_second > 0)
            .then(|| Quota::per_second(nz(config.api_per_second)).allow_burst(nz(config.api_burst)));
        let user = match config.user_limit.trim() {
            "" => api,
            text => Some(parse_rate("user_limit", text)?),
        };
        let cdn = match config.cdn_limit.trim() {
            "" => None,
            text => Some(parse_rate("cdn_limit", text)?),
        };
        Ok(RateLimits {
            api_ip: api.map(RateLimiter::keyed),
            api_user: user.map(RateLimiter::keyed),
            auth_ip: RateLimiter::keyed(Quota::per_minute(nz(config.auth_per_minute_per_ip))),
            login_account: RateLimiter::keyed(Quota::per_minute(nz(config.login_per_minute_per_account))),
            trusted_proxies,
            cdn_ranges: parse_ranges("cdn_ranges", &config.cdn_ranges)?,
            cdn_ip: cdn.map(RateLimiter::keyed),
        })
    }

    /// Returns the client IP: the socket peer, or, when the peer is a trusted proxy, the
    /// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let trusted = |ip: &IpAddr| self.trusted_proxies.iter().any(|net| net.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        forwarded.into_iter().rev().find(|ip| !trusted(ip)).unwrap_or(peer)
    }

    /// Checks the general per-IP limit, or for an address in `cdn_ranges` its own.
    pub fn check_api_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        let limiter = if !self.cdn_ranges.is_empty() && self.cdn_ranges.iter().any(|net| net.contains(&ip)) {
            &self.cdn_ip
        } else {
            &self.api_ip
        };
        match limiter {
            Some(l) => check(l, &ip),
            None => Ok(()),
        }
    }

    /// Checks the per-user limit.
    pub fn check_user(&self, user: Id) -> Result<(), ApiError> {
        match &self.api_user {
            Some(l) => check(l, &user),
            None => Ok(()),
        }
    }

    /// Checks the login/registration limit of a client IP.
    pub fn check_auth_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        check(&self.auth_ip, &ip)
    }

    /// Checks the login limit of an account (normalised email).
    pub fn check_login_account(&self, email: &str) -> Result<(), ApiError> {
        check(&self.login_account, &email.trim().to_lowercase())
    }

    /// Drops state of keys that are back at full capacity (bounds memory).
    pub fn prune(&self) {
        if let Some(l) = &self.api_ip {
            l.retain_recent();
        }
        if let Some(l) = &self.api_user {
            l.retain_recent();
        }
        if let Some(l) = &self.cdn_ip {
            l.retain_recent();
        }
        self.auth_ip.retain_recent();
        self.login_account.retain_recent();
    }
}

/// The client IP of a request, resolved once by [`limit_api`].
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// Middleware: resolves the client IP and applies the general per-IP limit to the API
/// (`/api/...`; the operations endpoints, `/metrics` and the probes, are not limited with it:
/// a scraper or an orchestrator must not be throttled by shoppers' traffic from its address).
pub async fn limit_api(State(limits): State<Arc<RateLimits>>, mut request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let ip = limits.client_ip(peer, request.headers());
    if request.uri().path().starts_with("/api/") {
        if let Err(e) = limits.check_api_ip(ip) {
            return e.into_response();
        }
    }
    request.extensions_mut().insert(ClientIp(ip));
    next.run(request).await
}

/// Prunes limiter state every minute until the process ends.
/// Drops idle keyed state once a minute, so the limiters' memory follows the active clients.
pub struct Pruner {
    limits: Arc<RateLimits>,
}

impl Pruner {
    /// The pruner of `limits`.
    pub fn new(limits: Arc<RateLimits>) -> Pruner {
        Pruner { limits }
    }
}

#[async_trait::async_trait]
impl Worker for Pruner {
    async fn try_execute(&self) -> Result<Progress, ServiceError> {
        self.limits.prune();
        Ok(Progress::Idle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let limits = RateLimits::new(
            &RateLimitConfig::default(),
            parse_proxies(&["10.0.0.0/24".into(), "2001:db8::1".into()]).unwrap(),
        )
        .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.7, 10.0.0.1".parse().unwrap());
        assert_eq!(
            limits.client_ip("10.0.0.1".parse().unwrap(), &headers),
            "203.0.113.9".parse::<IpAddr>().unwrap(),
            "every proxy in the range is skipped"
        );
        assert!(parse_proxies(&["10.0.0.0/33".into()]).is_err());
        assert!(parse_proxies(&["proxy.local".into()]).is_err());
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.1".parse().unwrap());
        assert_eq!(
            limits.client_ip("10.0.0.1".parse().unwrap(), &headers),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            limits.client_ip("198.51.100.7".parse().unwrap(), &headers),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn a_spent_login_quota_answers_with_retry_after() {
        let limits = RateLimits::new(
            &RateLimitConfig {
                login_per_minute_per_account: 2,
                ..Default::default()
            },
            Vec::new(),
        )
        .unwrap();
        assert!(limits.check_login_account("A@x.io").is_ok());
        assert!(limits.check_login_account("a@x.io").is_ok());
        match limits.check_login_account("a@x.io") {
            Err(ApiError::RateLimited { retry_after_secs }) => assert!(retry_after_secs >= 1),
            other => panic!("{other:?}"),
        }
        assert!(
            limits.check_login_account("b@x.io").is_ok(),
            "accounts are limited separately"
        );
    }

    #[test]
    fn rates_take_any_window() {
        let per_minute = parse_rate("k", "100/min").unwrap();
        assert_eq!(per_minute.burst_size().get(), 100);
        assert_eq!(per_minute.replenish_interval(), std::time::Duration::from_millis(600));
        assert_eq!(
            parse_rate("k", " 300 / 5m ").unwrap().replenish_interval(),
            std::time::Duration::from_secs(1)
        );
        assert_eq!(parse_rate("k", "20/s").unwrap().burst_size().get(), 20);
        assert_eq!(
            parse_rate("k", "24/day").unwrap().replenish_interval(),
            std::time::Duration::from_secs(3600)
        );
        for bad in ["", "100", "0/s", "10/0s", "10/fortnight", "x/s", "-1/s", "10/m5"] {
            assert!(parse_rate("k", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cdn_ranges_get_their_own_limit_or_none() {
        let exempt = RateLimits::new(
            &RateLimitConfig {
                api_per_second: 1,
                api_burst: 1,
                cdn_ranges: vec!["198.51.100.0/24".into()],
                ..Default::default()
            },
            Vec::new(),
        )
        .unwrap();
        let edge: IpAddr = "198.51.100.20".parse().unwrap();
        let shopper: IpAddr = "203.0.113.9".parse().unwrap();
        assert!((0..1000).all(|_| exempt.check_api_ip(edge).is_ok()), "exempt");
        assert!(exempt.check_api_ip(shopper).is_ok());
        assert!(exempt.check_api_ip(shopper).is_err(), "the general limit still holds");

        let limited = RateLimits::new(
            &RateLimitConfig {
                cdn_ranges: vec!["198.51.100.0/24".into()],
                cdn_limit: "3/min".into(),
                ..Default::default()
            },
            Vec::new(),
        )
        .unwrap();
        assert!((0..3).all(|_| limited.check_api_ip(edge).is_ok()));
        assert!(limited.check_api_ip(edge).is_err());
        assert!(RateLimits::new(
            &RateLimitConfig {
                cdn_ranges: vec!["edge.example".into()],
                ..Default::default()
            },
            Vec::new()
        )
        .is_err());
    }

    proptest::proptest! {
        /// Any text either parses to a quota or is refused; never a panic.
        #[test]
        fn rate_parsing_never_panics(text in "\\PC{0,12}") {
            let _ = parse_rate("k", &text);
        }

        #[test]
        fn a_parsed_rate_allows_its_count_at_once(count in 1u32..10_000, n in 1u64..100, unit in proptest::sample::select(vec!["s", "min", "h"])) {
            let quota = parse_rate("k", &format!("{count}/{n}{unit}"));
            if let Ok(quota) = quota {
                proptest::prop_assert_eq!(quota.burst_size().get(), count);
            }
        }
    }
}
