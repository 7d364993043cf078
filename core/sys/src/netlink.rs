//! rtnetlink: links, addresses and link events.
//!
//! Two connections, each driven by its own task on the current runtime: one
//! for requests (cloned freely through [`Netlink`]), one bound to the
//! multicast groups and read through [`LinkEvents`]. Keeping them apart means
//! an events reader that falls behind never delays a VIP add.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST,
};
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::{AsyncSocket, SocketAddr};
use rtnetlink::{Handle, MulticastGroup};

use crate::error::{ifdesc, SysError};

/// One network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    /// All zero for links without an Ethernet-style address.
    pub mac: [u8; 6],
    /// Admin up (IFF_UP) and carrier (IFF_LOWER_UP).
    pub up: bool,
    pub mtu: u32,
}

/// An address on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    pub addr: IpAddr,
    pub prefix: u8,
    /// IPv4 label (`eth0:vip`); None when it is just the interface name.
    pub label: Option<String>,
    /// RT_SCOPE_* (0 universe, 253 link, 254 host).
    pub scope: u8,
}

/// An address to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrSpec {
    pub addr: IpAddr,
    pub prefix: u8,
    /// IPv4 only; the kernel requires it to start with the interface name.
    pub label: Option<String>,
    /// RT_SCOPE_*; None leaves the kernel default (universe).
    pub scope: Option<u8>,
    /// IPv4 broadcast; None sends none (as `ip addr add` without `brd`).
    pub brd: Option<IpAddr>,
}

/// A link change seen on the multicast stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// RTM_NEWLINK: state, name, MAC or MTU may have changed.
    Changed(LinkInfo),
    /// RTM_DELLINK.
    Removed { index: u32, name: String },
}

/// Link events in kernel order. Address notifications are subscribed to as
/// well (so the socket sees them) but not reported here.
pub struct LinkEvents {
    rx: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
}

impl LinkEvents {
    /// The next link event; None once the events connection has closed.
    pub async fn next(&mut self) -> Option<LinkEvent> {
        while let Some((msg, _)) = self.rx.next().await {
            match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => {
                    return Some(LinkEvent::Changed(link_info(&m)));
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(m)) => {
                    let info = link_info(&m);
                    return Some(LinkEvent::Removed {
                        index: info.index,
                        name: info.name,
                    });
                }
                _ => {}
            }
        }
        None
    }
}

/// Cheap handle to the request connection.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

/// Room for bursts of events (e.g. many VLANs flapping) before ENOBUFS.
const EVENTS_RCVBUF: usize = 1 << 20;

impl Netlink {
    /// Open the request and events connections and spawn their tasks.
    /// Must be called inside a tokio runtime.
    pub async fn connect() -> Result<(Netlink, LinkEvents), SysError> {
        let (conn, handle, _unsolicited) =
            rtnetlink::new_connection().map_err(|e| SysError::os("opening rtnetlink socket", e))?;
        tokio::spawn(conn);

        let groups = [
            MulticastGroup::Link,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ];
        let (mut ev_conn, _ev_handle, rx) = rtnetlink::new_multicast_connection(&groups)
            .map_err(|e| SysError::os("subscribing to rtnetlink link/address events", e))?;
        ev_conn
            .socket_mut()
            .socket_mut()
            .set_rx_buf_sz(EVENTS_RCVBUF)
            .map_err(|e| SysError::os("sizing rtnetlink events buffer", e))?;
        // The connection stops once both its handle and `rx` are gone, so
        // dropping LinkEvents ends the task.
        tokio::spawn(ev_conn);
        Ok((Netlink { handle }, LinkEvents { rx }))
    }

    /// The link called `name`; [`SysError::NotFound`] if there is none.
    pub async fn link_by_name(&self, name: &str) -> Result<LinkInfo, SysError> {
        let what = || format!("looking up interface {name}");
        let mut s = self.handle.link().get().match_name(name).execute();
        match s.next().await {
            Some(Ok(m)) => Ok(link_info(&m)),
            Some(Err(e)) => match nl_errno(&e) {
                Some(libc::ENODEV) => Err(SysError::NotFound(name.to_string())),
                _ => Err(nl_error(what(), e)),
            },
            None => Err(SysError::NotFound(name.to_string())),
        }
    }

    /// All links.
    pub async fn links(&self) -> Result<Vec<LinkInfo>, SysError> {
        let mut s = self.handle.link().get().execute();
        let mut out = Vec::new();
        while let Some(m) = s.next().await {
            let m = m.map_err(|e| nl_error("listing interfaces".into(), e))?;
            out.push(link_info(&m));
        }
        Ok(out)
    }

    /// IPv4 and IPv6 addresses on the link, in kernel order (IPv4 primaries
    /// before their secondaries).
    pub async fn addresses(&self, index: u32) -> Result<Vec<IfAddr>, SysError> {
        Ok(self
            .raw_addresses(index)
            .await?
            .into_iter()
            .map(|(a, _)| a)
            .collect())
    }

    /// The first IPv4 address that is not secondary: the one the kernel
    /// uses as source on this link.
    pub async fn primary_ipv4(&self, index: u32) -> Result<Option<Ipv4Addr>, SysError> {
        Ok(self
            .raw_addresses(index)
            .await?
            .into_iter()
            .find_map(|(a, flags)| match a.addr {
                IpAddr::V4(v4) if !flags.contains(AddressFlags::Secondary) => Some(v4),
                _ => None,
            }))
    }

    /// The link's fe80::/10 address, skipping ones still in (or failed) DAD:
    /// those cannot be bound yet. None means "not yet": ask again later.
    pub async fn link_local_ipv6(&self, index: u32) -> Result<Option<Ipv6Addr>, SysError> {
        let unusable = AddressFlags::Tentative | AddressFlags::Dadfailed;
        Ok(self
            .raw_addresses(index)
            .await?
            .into_iter()
            .find_map(|(a, flags)| match a.addr {
                IpAddr::V6(v6) if is_link_local(v6) && !flags.intersects(unusable) => Some(v6),
                _ => None,
            }))
    }

    /// Add (or replace) an address. An address already present is not an
    /// error. IPv6 addresses skip DAD so a VIP answers at once.
    pub async fn addr_add(&self, index: u32, a: &AddrSpec) -> Result<(), SysError> {
        let what = || format!("adding {}/{} to {}", a.addr, a.prefix, ifdesc(index));
        let mut msg = addr_message(index, a.addr, a.prefix);
        if let Some(scope) = a.scope {
            msg.header.scope = AddressScope::from(scope);
        }
        match a.addr {
            IpAddr::V4(_) => {
                match a.brd {
                    Some(IpAddr::V4(b)) => msg.attributes.push(AddressAttribute::Broadcast(b)),
                    Some(IpAddr::V6(_)) => {
                        return Err(SysError::Invalid {
                            what: what(),
                            detail: "broadcast address must be IPv4".into(),
                        })
                    }
                    None => {}
                }
                if let Some(label) = &a.label {
                    msg.attributes.push(AddressAttribute::Label(label.clone()));
                }
            }
            IpAddr::V6(_) => {
                msg.header.flags = AddressHeaderFlags::Nodad;
                msg.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
        }
        let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
        match self.ack(RouteNetlinkMessage::NewAddress(msg), flags).await {
            Ok(()) => Ok(()),
            // Belt and braces: REPLACE should already avoid it.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(SysError::os(what(), e)),
        }
    }

    /// Remove an address; one that is not there is not an error.
    pub async fn addr_del(&self, index: u32, addr: IpAddr, prefix: u8) -> Result<(), SysError> {
        let msg = addr_message(index, addr, prefix);
        match self
            .ack(
                RouteNetlinkMessage::DelAddress(msg),
                NLM_F_REQUEST | NLM_F_ACK,
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(()),
            Err(e) => Err(SysError::os(
                format!("removing {addr}/{prefix} from {}", ifdesc(index)),
                e,
            )),
        }
    }

    async fn raw_addresses(&self, index: u32) -> Result<Vec<(IfAddr, AddressFlags)>, SysError> {
        let mut s = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut out = Vec::new();
        while let Some(m) = s.next().await {
            let m =
                m.map_err(|e| nl_error(format!("listing addresses of {}", ifdesc(index)), e))?;
            if let Some(a) = if_addr(&m) {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Send one request and wait for its ACK; the errno comes back as an
    /// io::Error so callers can pick out the ones that mean "already done".
    pub(crate) async fn ack(&self, msg: RouteNetlinkMessage, flags: u16) -> std::io::Result<()> {
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = flags;
        let mut handle = self.handle.clone();
        let mut resp = handle
            .request(req)
            .map_err(|_| std::io::Error::other("rtnetlink connection closed"))?;
        while let Some(m) = resp.next().await {
            if let NetlinkPayload::Error(e) = m.payload {
                if e.code.is_some() {
                    return Err(e.to_io());
                }
            }
        }
        Ok(())
    }
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// The message `ip addr add|del ADDR/PREFIX dev IDX` sends: IFA_LOCAL and
/// IFA_ADDRESS both set to the address (no peer).
fn addr_message(index: u32, addr: IpAddr, prefix: u8) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.prefix_len = prefix;
    msg.header.index = index;
    msg.attributes.push(AddressAttribute::Local(addr));
    msg.attributes.push(AddressAttribute::Address(addr));
    msg
}

fn link_info(m: &LinkMessage) -> LinkInfo {
    let mut info = LinkInfo {
        index: m.header.index,
        name: String::new(),
        mac: [0; 6],
        up: m.header.flags.contains(LinkFlags::Up) && m.header.flags.contains(LinkFlags::LowerUp),
        mtu: 0,
    };
    for attr in &m.attributes {
        match attr {
            LinkAttribute::IfName(n) => info.name = n.clone(),
            LinkAttribute::Mtu(mtu) => info.mtu = *mtu,
            LinkAttribute::Address(a) if a.len() == 6 => info.mac.copy_from_slice(a),
            _ => {}
        }
    }
    info
}

fn if_addr(m: &AddressMessage) -> Option<(IfAddr, AddressFlags)> {
    let mut local = None;
    let mut address = None;
    let mut label = None;
    // IFA_FLAGS (32 bit) supersedes the 8-bit header field when present.
    let mut flags = AddressFlags::from_bits_retain(u32::from(m.header.flags.bits()));
    for attr in &m.attributes {
        match attr {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Label(l) => label = Some(l.clone()),
            AddressAttribute::Flags(f) => flags = *f,
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
    // point-to-point links (and the only one IPv6 usually sends).
    let addr = local.or(address)?;
    let ifa = IfAddr {
        addr,
        prefix: m.header.prefix_len,
        label,
        scope: u8::from(m.header.scope),
    };
    Some((ifa, flags))
}

fn nl_errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.to_io().raw_os_error(),
        _ => None,
    }
}

fn nl_error(what: String, e: rtnetlink::Error) -> SysError {
    match e {
        rtnetlink::Error::NetlinkError(m) => SysError::os(what, m.to_io()),
        other => SysError::Netlink {
            what,
            detail: other.to_string(),
        },
    }
}
