//! The guard that keeps webhooks off loopback, private and link-local addresses (SSRF).
//!
//! A URL is checked when an endpoint is registered and again before each send, for a clear
//! error in the delivery log. Neither check can bind the connection to what it saw: the name
//! could resolve to a public address for the check and to 127.0.0.1 a moment later (DNS
//! rebinding). So the webhook client resolves through `PublicOnly`, and the addresses it
//! connects to are the ones that passed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether a webhook may connect to `ip`. IPv6 addresses that carry an IPv4 address (mapped,
/// compatible, NAT64, 6to4, Teredo) are judged by the IPv4 address they reach: a NAT64
/// gateway turns `64:ff9b::a9fe:a9fe` into 169.254.169.254.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    // fc00::/7 unique local, fe80::/10 link-local, fec0::/10 site-local
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
                    || (first & 0xffc0) == 0xfec0
                    // 2001:db8::/32 and 3fff::/20 documentation, 100::/64 discard
                    || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                    || (first == 0x3fff && v6.segments()[1] & 0xf000 == 0)
                    // 2001:2::/48 benchmarking; 2001:10::/28 and 2001:20::/28 ORCHID, which
                    // are identifiers, never routed addresses
                    || (first == 0x2001 && v6.segments()[1..3] == [2, 0])
                    || (first == 0x2001 && matches!(v6.segments()[1] & 0xfff0, 0x10 | 0x20))
                    || (first == 0x0100 && v6.segments()[1..4] == [0, 0, 0]))
            }
        },
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    !(v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0 // 0.0.0.0/8 "this network" (Linux connects 0.x to itself)
        || (a == 100 && (64..128).contains(&b)) // 100.64.0.0/10 carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // 192.0.0.0/24 IETF protocol assignments
        || (a == 192 && b == 88 && c == 99) // 192.88.99.0/24 6to4 relay anycast (deprecated)
        || (a == 198 && (b & 0xfe) == 18) // 198.18.0.0/15 benchmarking
        || a >= 240) // 240.0.0.0/4 reserved
}

/// The IPv4 address an IPv6 address stands for, where it stands for one.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4); // ::ffff:0:0/96
    }
    if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return Some(low); // ::ffff:0:0:0/96, IPv4-translated (SIIT)
    }
    if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
        return Some(low); // ::/96, IPv4-compatible (deprecated, still routed by some stacks)
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) {
        return Some(low); // 64:ff9b::/96 well-known NAT64, 64:ff9b:1::/48 local-use NAT64
    }
    if s[0] == 0x2002 {
        // 2002::/16 6to4: the IPv4 address is bits 16..48
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    if s[0] == 0x2001 && s[1] == 0 {
        // 2001::/32 Teredo: the client's address is the last 32 bits, inverted
        return Some(Ipv4Addr::from(!u32::from(low)));
    }
    None
}

const NOT_PUBLIC: &str = "resolves to a loopback, private or link-local address";

/// Refuses URLs that are not http(s), or whose host resolves to a non-public address.
pub async fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    let host = parsed
        .host_str()
        .ok_or("has no host")?
        .trim_matches(['[', ']'])
        .to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    if allow_private {
        return Ok(parsed);
    }
    public_addrs(&host, port).await?;
    Ok(parsed)
}

/// Every address `host` resolves to, if all of them are public.
async fn public_addrs(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("does not resolve: {e}"))?
        .collect();
    if addrs.is_empty() || addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(NOT_PUBLIC.into());
    }
    Ok(addrs)
}

/// A resolver that answers only with public addresses, and fails for names that resolve to
/// anything else.
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            // Port 0: the client puts in the URL's port.
            let addrs = public_addrs(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            // IPv4 ranges that are not on the public Internet
            "0.1.2.3",
            "192.0.0.8",
            "198.18.0.1",
            "198.19.255.255",
            "240.0.0.1",
            "255.255.255.255",
            // IPv6 spellings of private IPv4 addresses
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "64:ff9b:1::a00:1",
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::",
            "::a9fe:a9fe",
            "::127.0.0.1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2", // Teredo, client 192.0.2.45
            "2001:0:4136:e378:8000:63bf:f5ff:fffe", // Teredo, client 10.0.0.1
            // IPv6 ranges
            "fec0::1",
            "feff::1",
            "2001:db8::1",
            "3fff::1",
            "3fff:fff::1",
            "2001:2::1",
            "2001:10::1",
            "2001:1f::1",
            "2001:20::1",
            // the ranges a later audit found still open
            "::ffff:0:a9fe:a9fe", // IPv4-translated 169.254.169.254
            "::ffff:0:7f00:1",    // IPv4-translated 127.0.0.1
            "192.88.99.1",        // 6to4 relay anycast
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "64:ff9b::5db8:d822",   // NAT64 of 93.184.216.34
            "2002:5db8:d822::1",    // 6to4 of 93.184.216.34
            "::ffff:93.184.216.34", // mapped
            "198.20.0.1",           // just past 198.18.0.0/15
            "192.0.1.1",            // just past 192.0.0.0/24
            "192.88.100.1",         // just past 192.88.99.0/24
            "::ffff:0:5db8:d822",   // IPv4-translated 93.184.216.34
            "2001:3::1",            // just past 2001:2::/48's neighbourhood (AMT)
            "2001:30::1",           // just past ORCHIDv2
            "3ff0::1",              // below 3fff::/20
            "3fff:1000::1",         // just past 3fff::/20
            "1.1.1.1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn the_client_resolver_refuses_names_of_private_addresses() {
        let err = PublicOnly
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("localhost is refused");
        assert!(err.to_string().contains("loopback"), "{err}");
    }
}
