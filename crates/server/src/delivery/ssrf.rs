//! SSRF guard: notifications never reach loopback, private, link-local, CGNAT, multicast or
//! other non-public addresses unless the configured allow-list opens them. Checked for IP
//! literals before sending and for every address DNS returns; the connection uses only the
//! addresses that passed (no second lookup, so no DNS rebinding).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;
use ipnet::IpNet;

/// Decides which addresses deliveries may reach.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allow: Vec<IpNet>,
}

/// Every address of the host was refused by the policy.
#[derive(Debug, thiserror::Error)]
#[error("address {0} is not public and not in allow_addresses")]
pub struct BlockedAddress(pub IpAddr);

/// The host name did not resolve.
#[derive(Debug, thiserror::Error)]
#[error("DNS lookup failed for {host}: {message}")]
pub struct DnsFailure {
    pub host: String,
    pub message: String,
}

impl AddressPolicy {
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self { allow }
    }

    /// Whether a delivery may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.allow.iter().any(|net| net.contains(&ip)) || is_public(ip)
    }
}

/// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || o[0] == 0                                   // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64)        // 100.64.0.0/10 CGNAT
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)     // 192.0.0.0/24 IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18)        // 198.18.0.0/15 benchmarking
        || o[0] >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4() {
        // ::a.b.c.d (compatible) and 64:ff9b::/96 (NAT64) carry an IPv4 address.
        if s[0] == 0
            && s[1] == 0
            && s[2] == 0
            && s[3] == 0
            && s[4] == 0
            && (s[5] == 0 || s[5] == 0xffff)
        {
            return !ip.is_unspecified() && !ip.is_loopback() && is_public_v4(v4);
        }
    }
    // ::ffff:0:a.b.c.d (SIIT, IPv4-translated) carries one too.
    if s[..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0 {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return is_public_v4(v4);
    }
    // 64:ff9b:1::/48: NAT64 for local use (RFC 8215), never a public host.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return false;
    }
    if s[0] == 0x64 && s[1] == 0xff9b {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return is_public_v4(v4);
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00   // fc00::/7 unique local
        || (s[0] & 0xffc0) == 0xfe80   // fe80::/10 link local
        || (s[0] & 0xffc0) == 0xfec0   // fec0::/10 site local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] < 0x0200) // 2001::/23 IETF protocol assignments (Teredo etc.)
        || s[0] == 0x2002) // 6to4
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The HTTP client's resolver: resolves with the system resolver, then drops the addresses the
/// policy refuses (all refused: [`BlockedAddress`]). IP literals never reach it; the sender
/// checks those itself.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub policy: Arc<AddressPolicy>,
}

impl tower::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| DnsFailure {
                    host: host.clone(),
                    message: e.to_string(),
                })?
                .collect();
            let Some(first) = addrs.first() else {
                return Err(DnsFailure {
                    host,
                    message: "no addresses".into(),
                }
                .into());
            };
            let first = first.ip();
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| policy.permits(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(BlockedAddress(first).into());
            }
            Ok(allowed.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn non_public_addresses_are_refused_by_default() {
        let p = AddressPolicy::default();
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "ff02::1",
        ] {
            assert!(!p.permits(ip(a)), "{a} should be refused");
        }
        for a in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(p.permits(ip(a)), "{a} should be allowed");
        }
    }

    #[test]
    fn translated_and_local_nat64_addresses_are_judged_by_what_they_carry() {
        let p = AddressPolicy::default();
        for blocked in [
            "::ffff:0:7f00:1",
            "::ffff:0:a00:1",
            "::ffff:0:c0a8:101",
            "64:ff9b:1::a00:1",
        ] {
            let ip: IpAddr = blocked.parse().unwrap();
            assert!(!p.permits(ip), "{blocked} must be refused");
        }
        assert!(
            p.permits("::ffff:0:5db8:d822".parse().unwrap()),
            "93.184.216.34, SIIT"
        );
    }

    #[test]
    fn the_allow_list_opens_ranges() {
        let p = AddressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(p.permits(ip("127.0.0.1")));
        assert!(p.permits(ip("::ffff:127.0.0.1")));
        assert!(!p.permits(ip("10.0.0.1")));
    }
}
