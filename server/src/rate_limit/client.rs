//! Who a request counts against: its user, from a valid access token, or else its IP address.

use std::net::IpAddr;

use poem::{Request, http::header};

use crate::{
    auth::jwt::{TokenKind, TokenService},
    config::Cidr,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Client {
    User(i64),
    /// Anonymous, by address; `None` when the connection has no IP (a test transport).
    Address(Option<IpAddr>),
}

impl Client {
    /// The `{user_id|ip}` part of a counter key.
    pub fn key(&self) -> String {
        match self {
            Self::User(id) => id.to_string(),
            Self::Address(Some(ip)) => ip.to_string(),
            Self::Address(None) => "unknown".into(),
        }
    }
}

/// The user of a valid access token (signature and expiry checked, no query), else the
/// address: an invalid token counts as anonymous.
pub fn identify(req: &Request, tokens: &TokenService, trusted: &[Cidr]) -> Client {
    let user = req
        .header(header::AUTHORIZATION)
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .and_then(|token| tokens.verify(token, TokenKind::Access).ok())
        .and_then(|claims| claims.user_id());
    match user {
        Some(id) => Client::User(id),
        None => Client::Address(client_ip(req, trusted)),
    }
}

/// The peer's address; when the peer is a trusted proxy, the right-most address of
/// `X-Forwarded-For` that is not a trusted proxy (what a client puts further left is not
/// believed).
pub fn client_ip(req: &Request, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = req.remote_addr().as_socket_addr()?.ip();
    let forwarded = req.headers().get_all("x-forwarded-for");
    let forwarded = forwarded.iter().filter_map(|value| value.to_str().ok());
    Some(resolve(peer, forwarded, trusted))
}

/// The client behind `peer`, given the `X-Forwarded-For` header values in order.
fn resolve<'a>(peer: IpAddr, forwarded: impl Iterator<Item = &'a str>, trusted: &[Cidr]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|cidr| cidr.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<&str> = forwarded.flat_map(|value| value.split(',')).collect();
    let mut nearest = peer;
    for hop in forwarded.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        let ip = ip.to_canonical();
        if !is_trusted(&ip) {
            return ip;
        }
        nearest = ip;
    }
    nearest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let trusted: Vec<Cidr> = ["10.0.0.0/8", "192.168.0.1"]
            .iter()
            .map(|c| c.parse().unwrap())
            .collect();
        let ip = |peer: &str, fwd: &[&str]| {
            resolve(peer.parse().unwrap(), fwd.iter().copied(), &trusted).to_string()
        };
        // An untrusted peer is the client, whatever it claims.
        assert_eq!(ip("203.0.113.9", &["1.2.3.4"]), "203.0.113.9");
        // Through trusted proxies: the right-most untrusted hop.
        assert_eq!(
            ip("10.1.1.1", &["6.6.6.6, 198.51.100.7, 10.2.2.2"]),
            "198.51.100.7"
        );
        assert_eq!(
            ip("192.168.0.1", &["6.6.6.6", "198.51.100.7"]),
            "198.51.100.7"
        );
        // Only trusted hops, or nothing forwarded: the nearest.
        assert_eq!(ip("10.1.1.1", &["10.3.3.3"]), "10.3.3.3");
        assert_eq!(ip("10.1.1.1", &[]), "10.1.1.1");
        // Garbage stops the walk.
        assert_eq!(ip("10.1.1.1", &["nonsense, 10.4.4.4"]), "10.4.4.4");
        // IPv4-mapped IPv6 peers are their IPv4 address.
        assert_eq!(ip("::ffff:203.0.113.9", &[]), "203.0.113.9");
    }
}
