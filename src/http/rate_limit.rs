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
}

/// Parses `[rate_limit] trusted_proxies`: addresses (one host) or CIDR ranges.
pub fn parse_proxies(entries: &[String]) -> anyhow::Result<Vec<IpNet>> {
    entries
        .iter()
        .map(|e| {
            let e = e.trim();
            e.parse::<IpNet>()
                .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| anyhow::anyhow!("[rate_limit] trusted_proxies: {e:?} is not an address or a CIDR range"))
        })
        .collect()
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
    pub fn new(config: &RateLimitConfig, trusted_proxies: Vec<IpNet>) -> RateLimits {
        let api = (config.api_per_second > 0)
            .then(|| Quota::per_second(nz(config.api_per_second)).allow_burst(nz(config.api_burst)));
        RateLimits {
            api_ip: api.map(RateLimiter::keyed),
            api_user: api.map(RateLimiter::keyed),
            auth_ip: RateLimiter::keyed(Quota::per_minute(nz(config.auth_per_minute_per_ip))),
            login_account: RateLimiter::keyed(Quota::per_minute(nz(config.login_per_minute_per_account))),
            trusted_proxies,
        }
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

    /// Checks the general per-IP limit.
    pub fn check_api_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        match &self.api_ip {
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
        self.auth_ip.retain_recent();
        self.login_account.retain_recent();
    }
}

/// The client IP of a request, resolved once by [`limit_api`].
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// Middleware: resolves the client IP and applies the general per-IP limit.
pub async fn limit_api(State(limits): State<Arc<RateLimits>>, mut request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let ip = limits.client_ip(peer, request.headers());
    if let Err(e) = limits.check_api_ip(ip) {
        return e.into_response();
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
        );
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
        );
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
}
