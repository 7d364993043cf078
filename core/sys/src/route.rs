//! Routes over rtnetlink: replace (so an identical route already there is
//! adopted, never an EEXIST) and delete (one already gone is not an error).

use std::net::IpAddr;

use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::{ifdesc, SysError};
use crate::netlink::Netlink;

/// Route types lbd installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
}

/// A route with its interface resolved to an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub kind: RouteKind,
    pub dst: IpAddr,
    pub dst_len: u8,
    /// Preferred source (RTA_PREFSRC).
    pub src: Option<IpAddr>,
    /// Gateway (RTA_GATEWAY); same family as `dst`.
    pub via: Option<IpAddr>,
    /// Output interface index (RTA_OIF).
    pub oif: Option<u32>,
    /// RT_SCOPE_* used when adding; deletes match any scope.
    pub scope: u8,
    pub table: u32,
    /// RTA_PRIORITY; None = the kernel's default (0 IPv4, 1024 IPv6).
    pub metric: Option<u32>,
    /// RTPROT_*: deletes only match routes of this protocol.
    pub protocol: u8,
    pub onlink: bool,
}

impl std::fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            RouteKind::Unicast => {}
            RouteKind::Blackhole => f.write_str("blackhole ")?,
            RouteKind::Unreachable => f.write_str("unreachable ")?,
            RouteKind::Prohibit => f.write_str("prohibit ")?,
            RouteKind::Throw => f.write_str("throw ")?,
        }
        write!(f, "{}/{}", self.dst, self.dst_len)?;
        if let Some(s) = self.src {
            write!(f, " src {s}")?;
        }
        if let Some(v) = self.via {
            write!(f, " via {v}")?;
        }
        if let Some(i) = self.oif {
            write!(f, " dev {}", ifdesc(i))?;
        }
        if self.table != u32::from(RouteHeader::RT_TABLE_MAIN) {
            write!(f, " table {}", self.table)?;
        }
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        Ok(())
    }
}

/// The metric the kernel gives an IPv6 route added without one.
const IP6_RT_PRIO_USER: u32 = 1024;

/// RT_SCOPE_NOWHERE: in a delete request, "any scope" (as `ip route del`).
const SCOPE_NOWHERE: u8 = 255;

impl RouteSpec {
    fn message(&self, delete: bool) -> Result<RouteMessage, String> {
        let family_of = |a: &IpAddr| a.is_ipv6();
        let v6 = self.dst.is_ipv6();
        for (what, a) in [("src", self.src), ("via", self.via)] {
            if a.is_some_and(|a| family_of(&a) != v6) {
                return Err(format!("{what} is not of the destination's address family"));
            }
        }
        let mut m = RouteMessage::default();
        let h = &mut m.header;
        h.address_family = if v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        h.destination_prefix_length = self.dst_len;
        // Tables above 255 only fit RTA_TABLE, which the kernel prefers anyway.
        h.table = u8::try_from(self.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
        h.protocol = RouteProtocol::from(self.protocol);
        h.scope = RouteScope::from(if delete { SCOPE_NOWHERE } else { self.scope });
        h.kind = match self.kind {
            RouteKind::Unicast => RouteType::Unicast,
            RouteKind::Blackhole => RouteType::BlackHole,
            RouteKind::Unreachable => RouteType::Unreachable,
            RouteKind::Prohibit => RouteType::Prohibit,
            RouteKind::Throw => RouteType::Throw,
        };
        if self.onlink {
            h.flags = RouteFlags::Onlink;
        }
        let a = &mut m.attributes;
        a.push(RouteAttribute::Table(self.table));
        a.push(RouteAttribute::Destination(RouteAddress::from(self.dst)));
        if let Some(s) = self.src {
            a.push(RouteAttribute::PrefSource(RouteAddress::from(s)));
        }
        if let Some(g) = self.via {
            a.push(RouteAttribute::Gateway(RouteAddress::from(g)));
        }
        if let Some(i) = self.oif {
            a.push(RouteAttribute::Oif(i));
        }
        // An IPv6 delete without a metric matches any metric, so it could
        // take a neighbour of ours; the kernel gave ours 1024 (IP6_RT_PRIO_USER).
        let metric = match (self.metric, delete && v6) {
            (None, true) => Some(IP6_RT_PRIO_USER),
            (m, _) => m,
        };
        if let Some(p) = metric {
            a.push(RouteAttribute::Priority(p));
        }
        Ok(m)
    }
}

impl Netlink {
    /// Add a route, replacing the one with the same destination, table and
    /// metric (an identical route is adopted). ESRCH here usually means
    /// the gateway is not reachable or `src` is not a local address.
    pub async fn route_replace(&self, r: &RouteSpec) -> Result<(), SysError> {
        let what = || format!("adding route {r}");
        let msg = r.message(false).map_err(|detail| SysError::Invalid {
            what: what(),
            detail,
        })?;
        let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
        self.ack(RouteNetlinkMessage::NewRoute(msg), flags)
            .await
            .map_err(|e| SysError::os(what(), e))
    }

    /// Delete a route of `r.protocol`. A route that is not there (ESRCH,
    /// ENOENT), or whose interface is gone (ENODEV: the kernel removed its
    /// routes with it), is not an error.
    pub async fn route_del(&self, r: &RouteSpec) -> Result<(), SysError> {
        let what = || format!("removing route {r}");
        let msg = r.message(true).map_err(|detail| SysError::Invalid {
            what: what(),
            detail,
        })?;
        match self
            .ack(
                RouteNetlinkMessage::DelRoute(msg),
                NLM_F_REQUEST | NLM_F_ACK,
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ESRCH | libc::ENOENT | libc::ENODEV)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(SysError::os(what(), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RouteSpec {
        RouteSpec {
            kind: RouteKind::Unicast,
            dst: "10.1.0.0".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            dst_len: 16,
            src: None,
            via: Some(IpAddr::from([10, 0, 0, 254])),
            oif: None,
            scope: 0,
            table: 100,
            metric: Some(5),
            protocol: 18,
            onlink: false,
        }
    }

    #[test]
    fn delete_matches_any_scope_and_big_tables_use_the_attribute() {
        let mut r = spec();
        let add = r.message(false).map_err(|e| e.to_string());
        let del = r.message(true).map_err(|e| e.to_string());
        assert_eq!(add.as_ref().map(|m| m.header.table), Ok(100));
        assert_eq!(del.map(|m| u8::from(m.header.scope)), Ok(SCOPE_NOWHERE));
        r.table = 1000;
        let m = r.message(false).map_err(|e| e.to_string());
        assert_eq!(m.as_ref().map(|m| m.header.table), Ok(0));
        assert!(m.is_ok_and(|m| m.attributes.contains(&RouteAttribute::Table(1000))));
    }

    #[test]
    fn mixed_families_are_refused_before_the_kernel() {
        let r = RouteSpec {
            via: Some("fe80::1".parse().unwrap_or(IpAddr::from([0u16; 8]))),
            ..spec()
        };
        assert!(r.message(false).is_err());
        assert_eq!(
            spec().to_string(),
            "10.1.0.0/16 via 10.0.0.254 table 100 metric 5"
        );
    }
}
