//! What a webhook URL resolves to, worked out once per URL and cached: the route of its
//! requests (what to connect to, the request line's path, the `Host` header), its origin (a
//! bearer token's audience and the key of kept-alive connections) and an IP literal host
//! (checked against the address policy before sending, since it never reaches the resolver).

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use hyper::header::HeaderValue;
use tidings_core::fasthash::HashMap;

use super::sender::CACHE_BOUND;

/// A webhook URL parsed once, with its origin (a bearer token's audience).
#[derive(Debug)]
pub(super) struct Target {
    /// Where and what to ask (`None`: the URL is no valid HTTP URI).
    pub route: Option<Route>,
    /// The URL's origin: a bearer token's audience, and the key of its kept-alive connections.
    pub origin: Arc<str>,
    /// The host, when it is an IP literal (never resolved, so checked before sending).
    pub ip: Option<IpAddr>,
}

/// A request's way to its receiver, worked out once per URL.
#[derive(Debug)]
pub(super) struct Route {
    /// Scheme and authority: what the connector connects to.
    pub connect: hyper::Uri,
    /// The path and query (origin form), as the request line carries it.
    pub path: hyper::Uri,
    /// The `Host` header: the host, and the port unless it is the scheme's default.
    pub host: HeaderValue,
}

impl Route {
    fn of(uri: &hyper::Uri) -> Option<Self> {
        let (scheme, authority) = (uri.scheme()?, uri.authority()?);
        let connect = hyper::Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .ok()?;
        let path = match uri.path_and_query() {
            Some(p) if p.as_str() != "/" => hyper::Uri::from(p.clone()),
            _ => hyper::Uri::from_static("/"),
        };
        let default_port = match scheme.as_str() {
            "https" => 443,
            _ => 80,
        };
        let host = match uri.port_u16() {
            Some(port) if port != default_port => format!("{}:{port}", authority.host()),
            _ => authority.host().to_string(),
        };
        Some(Self {
            connect,
            path,
            host: HeaderValue::from_str(&host).ok()?,
        })
    }
}

/// Parsed webhook URLs by their text: parsing (with IDNA) on every request was a measurable
/// share of a delivery's CPU.
pub(super) type UrlCache = HashMap<String, Arc<Target>>;

/// The parsed URL, from `cache` when it was parsed before; `None` if it does not parse.
pub(super) fn target(cache: &Mutex<UrlCache>, url: &str) -> Option<Arc<Target>> {
    let mut cache = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(t) = cache.get(url) {
        return Some(t.clone());
    }
    let parsed = url::Url::parse(url).ok()?;
    let target = Arc::new(Target {
        origin: parsed.origin().ascii_serialization().into(),
        ip: literal_ip(&parsed),
        route: parsed
            .as_str()
            .parse::<hyper::Uri>()
            .ok()
            .and_then(|u| Route::of(&u)),
    });
    if cache.len() >= CACHE_BOUND {
        cache.clear();
    }
    cache.insert(url.to_string(), target.clone());
    Some(target)
}

fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_parsed_once_with_their_origin_and_ip_literal() {
        let cache = Mutex::default();
        let a = target(&cache, "https://Hooks.Example.com:8443/in?x=1").unwrap();
        let again = target(&cache, "https://Hooks.Example.com:8443/in?x=1").unwrap();
        assert!(
            Arc::ptr_eq(&a, &again),
            "the second use comes from the cache"
        );
        assert_eq!(&*a.origin, "https://hooks.example.com:8443");
        assert_eq!(a.ip, None);
        let route = a.route.as_ref().unwrap();
        assert_eq!(route.connect, "https://hooks.example.com:8443/");
        assert_eq!(route.path, "/in?x=1");
        assert_eq!(route.host, "hooks.example.com:8443");
        let plain = target(&cache, "https://hooks.example.com:443").unwrap();
        let route = plain.route.as_ref().unwrap();
        assert_eq!(route.path, "/");
        assert_eq!(
            route.host, "hooks.example.com",
            "the default port is left out"
        );
        let ip = target(&cache, "http://127.0.0.1:9000/").unwrap();
        assert_eq!(ip.ip, Some(IpAddr::from([127, 0, 0, 1])));
        let v6 = target(&cache, "http://[::1]:8080/hook").unwrap();
        assert_eq!(v6.ip, Some(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)));
        assert_eq!(v6.route.as_ref().unwrap().host, "[::1]:8080");
        assert!(target(&cache, "not a url").is_none());
    }
}
