//! VRRPv2 authentication (RFC 3768 §5.3.6 kept the field; RFC 2338 §5.3.6
//! and §10 defined the methods): simple password and IPsec AH with
//! HMAC-MD5-96, the way keepalived implements them so the two interoperate.
//!
//! AH as keepalived builds it (vrrp.c `vrrp_build_ipsecah`, `vrrp_update_pkt`,
//! `vrrp_in_chk_ipsecah`):
//! - header (RFC 2402 §2): next header 112, payload length 4, reserved 0,
//!   SPI = the IPv4 source address, sequence number, 12-byte ICV;
//! - ICV = first 12 bytes of HMAC-MD5 keyed with the 8-byte, zero-padded
//!   password, over the IP header with TOS, fragment field and header checksum
//!   zeroed (TTL too, but only for unicast), then the AH header with the ICV
//!   zeroed, then the VRRP message;
//! - the receiver checks ICV, then SPI == source, then that the sequence
//!   number is above the last one accepted.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use hmac::{Hmac, Mac};
use md5::Md5;

/// Length of keepalived's AH header: 12 fixed bytes + 96-bit ICV.
pub const AH_LEN: usize = 24;
/// AH "Payload Len" for a 96-bit ICV: header length in 32-bit words minus 2
/// (RFC 2402 §2.2).
pub const AH_PAYLOAD_LEN: u8 = 4;
/// HMAC-MD5-96 truncation (RFC 2403 §2).
pub const ICV_LEN: usize = 12;

/// A configured v2 authentication method. Both carry keepalived's 8-byte
/// `auth_data`: the password cut to 8 bytes and zero-padded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthKey {
    /// Auth type 1: the 8 bytes travel in clear in the auth data field.
    Pass([u8; 8]),
    /// Auth type 2: the 8 bytes are the HMAC-MD5 key.
    Ah([u8; 8]),
}

impl AuthKey {
    /// Password auth from the configured string (keepalived keeps 8 bytes).
    pub fn pass(password: &[u8]) -> Self {
        AuthKey::Pass(pad8(password))
    }

    /// AH auth from the configured string (keepalived keeps 8 bytes).
    pub fn ah(password: &[u8]) -> Self {
        AuthKey::Ah(pad8(password))
    }

    /// The value of the v2 "Auth Type" field.
    pub fn wire_type(&self) -> u8 {
        match self {
            AuthKey::Pass(_) => 1,
            AuthKey::Ah(_) => 2,
        }
    }
}

fn pad8(s: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (o, b) in out.iter_mut().zip(s) {
        *o = *b;
    }
    out
}

/// HMAC-MD5-96 of `parts` concatenated. The key is the full 8 bytes, as
/// keepalived passes `sizeof(auth_data)`; HMAC zero-pads short keys to the
/// block size anyway, so this equals keying with the unpadded password.
pub fn icv(key: &[u8; 8], parts: &[&[u8]]) -> [u8; ICV_LEN] {
    // HMAC keys shorter than the MD5 block are zero-padded to 64 bytes
    // (RFC 2104 §2); doing it here makes key setup infallible.
    let mut block = [0u8; 64];
    for (o, b) in block.iter_mut().zip(key) {
        *o = *b;
    }
    let mut mac = <Hmac<Md5> as Mac>::new(&block.into());
    for p in parts {
        mac.update(p);
    }
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; ICV_LEN];
    for (o, b) in out.iter_mut().zip(full.iter()) {
        *o = *b;
    }
    out
}

/// Comparison whose time does not depend on where the inputs differ
/// (password and ICV checks).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// AH sequence numbers of one instance: the replay window on receive (per
/// source) and the counter for sending.
///
/// keepalived keeps one counter per instance for both directions: a backup
/// raises it to each accepted sequence number, and a new master continues
/// from there. A keepalived backup therefore drops any advert whose number is
/// not above the last master's, so our send counter must also move past every
/// number we accepted; [`AhReplayState::next_tx_seq`] does that.
#[derive(Clone, Debug, Default)]
pub struct AhReplayState {
    last_rx: HashMap<Ipv4Addr, u32>,
    last_tx: u32,
}

impl AhReplayState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `seq` from `src` if it is above the last accepted from that
    /// source (RFC 2402 §3.4.3 anti-replay, without a window: adverts are
    /// periodic and in order). Records it on success.
    pub fn check_and_update(&mut self, src: Ipv4Addr, seq: u32) -> bool {
        let last = self.last_rx.get(&src).copied().unwrap_or(0);
        if seq > last {
            self.last_rx.insert(src, seq);
            true
        } else {
            false
        }
    }

    /// Last sequence number accepted from `src`.
    pub fn last_rx(&self, src: Ipv4Addr) -> Option<u32> {
        self.last_rx.get(&src).copied()
    }

    /// Sequence number for the next advert we send: one above everything sent
    /// or accepted so far, so keepalived peers accept it. Starts at 1 like
    /// keepalived. Saturates (at one advert a second that is 136 years).
    pub fn next_tx_seq(&mut self) -> u32 {
        let highest_rx = self.last_rx.values().copied().max().unwrap_or(0);
        self.last_tx = self.last_tx.max(highest_rx).saturating_add(1);
        self.last_tx
    }

    /// Forget a peer, e.g. one that restarted (its counter starts again at 1).
    pub fn forget(&mut self, src: Ipv4Addr) {
        self.last_rx.remove(&src);
    }

    /// Start over (keepalived does this when it becomes master after its
    /// counter ran out).
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn password_is_cut_and_padded_to_8() {
        assert_eq!(AuthKey::pass(b"abc"), AuthKey::Pass(*b"abc\0\0\0\0\0"));
        assert_eq!(AuthKey::ah(b"0123456789"), AuthKey::Ah(*b"01234567"));
        assert_eq!(AuthKey::pass(b"x").wire_type(), 1);
        assert_eq!(AuthKey::ah(b"x").wire_type(), 2);
    }

    #[test]
    fn icv_matches_rfc2202_hmac_md5_vector() {
        // RFC 2202 §2 test case 2: key "Jefe", data "what do ya want for
        // nothing?", HMAC-MD5 = 750c783e6ab0b503eaa86e310a5db738.
        let mut key = [0u8; 8];
        key[..4].copy_from_slice(b"Jefe");
        let got = icv(&key, &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            got,
            [0x75, 0x0c, 0x78, 0x3e, 0x6a, 0xb0, 0xb5, 0x03, 0xea, 0xa8, 0x6e, 0x31]
        );
    }

    #[test]
    fn ct_eq_compares() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn replay_per_source_and_tx_counter() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        let mut st = AhReplayState::new();
        assert_eq!(st.next_tx_seq(), 1);
        assert!(st.check_and_update(a, 5));
        assert!(!st.check_and_update(a, 5));
        assert!(!st.check_and_update(a, 4));
        assert!(st.check_and_update(b, 1));
        assert_eq!(st.last_rx(a), Some(5));
        // Past everything accepted, so a keepalived backup accepts it.
        assert_eq!(st.next_tx_seq(), 6);
        assert_eq!(st.next_tx_seq(), 7);
        st.forget(a);
        assert!(st.check_and_update(a, 1));
        st.reset();
        assert_eq!(st.last_rx(b), None);
        assert_eq!(st.next_tx_seq(), 1);
    }
}
