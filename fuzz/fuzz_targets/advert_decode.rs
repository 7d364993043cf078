//! Arbitrary bytes through both receive stages of the VRRP codec: nothing
//! may panic, and whatever parses must survive encode -> parse unchanged.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lbd_vrrp::auth::{AhReplayState, AuthKey};
use lbd_vrrp::codec::{
    encode_ipv4, encode_ipv6, parse_ipv4, parse_ipv6, validate, InstanceRx, RxAuth, RxOpts, TxOpts,
};
use lbd_vrrp::Version;
use libfuzzer_sys::fuzz_target;

fn instances() -> Vec<InstanceRx> {
    let addrs = vec![IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100))];
    let mut out = Vec::new();
    for version in [Version::V2, Version::V3] {
        for auth in [
            None,
            Some(AuthKey::pass(b"secret12")),
            Some(AuthKey::ah(b"ahkey")),
        ] {
            for check_addrs in [None, Some(addrs.clone())] {
                out.push(InstanceRx {
                    version,
                    interval_cs: 100,
                    auth,
                    check_addrs,
                    own_addr: Some(IpAddr::V4(Ipv4Addr::new(10, 99, 0, 2))),
                });
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    // First byte: options; the rest is the packet.
    let Some((&sel, pkt)) = data.split_first() else {
        return;
    };
    let opts = RxOpts {
        v3_checksum_as_v2: sel & 1 != 0,
        check_ttl: sel & 2 != 0,
        old_unicast_checksum_group: (sel & 8 != 0).then_some(lbd_vrrp::codec::MCAST_V4),
    };
    let insts = instances();

    if let Ok(p) = parse_ipv4(pkt, &opts) {
        let mut replay = AhReplayState::new();
        for i in &insts {
            let _ = validate(&p, i, &mut replay);
        }
        // Re-encoding what parsed gives the same advert back.
        if let (IpAddr::V4(src), IpAddr::V4(dst)) = (p.src, p.dst) {
            let auth = match p.auth {
                RxAuth::Pass(pw) => Some(AuthKey::Pass(pw)),
                RxAuth::Ah(_) => Some(AuthKey::ah(b"ahkey")),
                RxAuth::None => None,
            };
            let tx = TxOpts {
                auth,
                v3_checksum_as_v2: opts.v3_checksum_as_v2,
                checksum_dst: p.old_unicast_checksum.then_some(lbd_vrrp::codec::MCAST_V4),
                ..TxOpts::default()
            };
            let again = parse_ipv4(&encode_ipv4(src, dst, &p.advert, &tx), &opts);
            assert_eq!(again.map(|q| q.advert).as_ref(), Ok(&p.advert));
        }
    }

    // IPv6: addresses from the front of the input, the VRRP payload after.
    if let (Some(s), Some(d), Some(payload)) = (pkt.get(..16), pkt.get(16..32), pkt.get(32..)) {
        let (mut src, mut dst) = ([0u8; 16], [0u8; 16]);
        src.copy_from_slice(s);
        dst.copy_from_slice(d);
        let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
        let hop_limit = if sel & 4 != 0 { 255 } else { sel };
        if let Ok(p) = parse_ipv6(payload, src, dst, hop_limit, &opts) {
            let mut replay = AhReplayState::new();
            for i in &insts {
                let _ = validate(&p, i, &mut replay);
            }
            let again = parse_ipv6(&encode_ipv6(src, dst, &p.advert), src, dst, 255, &opts);
            assert_eq!(again.map(|q| q.advert).as_ref(), Ok(&p.advert));
        }
    }
});
