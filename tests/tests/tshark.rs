//! tshark decodes lbd's adverts (v2, v3 over IPv4, v3 over IPv6) as VRRP
//! with a good checksum. Needs a working lbd binary.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use lbd_tests::tshark::{decode_verbose, Capture, CHECKSUM_GOOD, VRRP_FILTER};
use lbd_tests::{lab_for, Daemon, Instance, Kind};

#[test]
fn tshark_decodes_lbd() {
    let lab = lab_for("tshark_decodes_lbd", &[Kind::Lbd]);
    let a = lab.node("a");
    let b = lab.node("b");
    let c = lab.node("c");
    let watcher = lab.host("watch");
    let cap = Capture::start(
        &lab,
        &watcher,
        "eth0",
        VRRP_FILTER,
        30,
        Duration::from_secs(40),
    );
    Daemon::start(&lab, Kind::Lbd, &a, &Instance::v2(150).render("a"));
    let v3 = Instance {
        vrid: 52,
        vips: vec!["10.0.0.101/24".into()],
        ..Instance::v3(150)
    };
    Daemon::start(&lab, Kind::Lbd, &b, &v3.render("b"));
    let v6 = Instance {
        vrid: 53,
        ..Instance::v3_ipv6(150)
    };
    Daemon::start(&lab, Kind::Lbd, &c, &v6.render("c"));
    cap.wait(&lab, Duration::from_secs(60));

    let fields = [
        "vrrp.version",
        "vrrp.virt_rtr_id",
        "vrrp.checksum.status",
        "ipv6.src",
        "ip.ttl",
        "ipv6.hlim",
    ];
    let rows = cap.fields(&fields, &[]);
    let dump = || decode_verbose(&cap.file);
    let seen = |ver: &str, vrid: &str, v6: bool| {
        rows.iter()
            .any(|r| r[0] == ver && r[1] == vrid && (r[3].is_empty() != v6))
    };
    assert!(seen("2", "51", false), "no v2 advert from lbd: {rows:?}");
    assert!(
        seen("3", "52", false),
        "no v3 IPv4 advert from lbd: {rows:?}"
    );
    assert!(
        seen("3", "53", true),
        "no v3 IPv6 advert from lbd: {rows:?}"
    );
    assert!(
        rows.iter().all(|r| r[2] == CHECKSUM_GOOD),
        "bad checksum: {rows:?}\n{}",
        dump()
    );
    // RFC 5798 §5.1.1.3 / §5.1.2.3: TTL and hop limit 255; v6 source is link-local.
    assert!(
        rows.iter().all(|r| r[4] == "255" || r[5] == "255"),
        "TTL/hop limit not 255: {rows:?}"
    );
    assert!(
        rows.iter()
            .filter(|r| !r[3].is_empty())
            .all(|r| r[3].starts_with("fe80:")),
        "v6 source not link-local: {rows:?}"
    );
}
