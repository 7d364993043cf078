//! A small DNS client for checks (RFC 1035): one question, answers as text.
//! UDP first; a truncated answer (TC) is asked again over TCP (§4.2.2).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::PrimError;

pub struct Query {
    pub server: SocketAddr,
    pub name: String,
    pub qtype: String,
    pub timeout: Duration,
    pub tcp: bool,
}

#[derive(Debug, PartialEq)]
pub struct Record {
    pub name: String,
    pub rtype: String,
    pub ttl: u32,
    pub data: String,
}

#[derive(Debug)]
pub struct Answer {
    pub rcode: String,
    pub records: Vec<Record>,
}

const TYPES: &[(&str, u16)] = &[
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("PTR", 12),
    ("MX", 15),
    ("TXT", 16),
    ("AAAA", 28),
    ("SRV", 33),
];

pub fn type_code(name: &str) -> Option<u16> {
    let up = name.to_ascii_uppercase();
    TYPES
        .iter()
        .find(|(n, _)| *n == up)
        .map(|(_, c)| *c)
        .or_else(|| up.strip_prefix("TYPE").and_then(|n| n.parse().ok()))
}

fn type_name(code: u16) -> String {
    TYPES
        .iter()
        .find(|(_, c)| *c == code)
        .map_or_else(|| format!("TYPE{code}"), |(n, _)| n.to_string())
}

fn rcode_name(r: u8) -> String {
    match r {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("RCODE{n}"),
    }
}

/// §4.1.1 header, §4.1.2 question; recursion desired.
pub fn encode(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, PrimError> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        if label.len() > 63 {
            return Err(PrimError::Msg(format!(
                "dns: label {label:?} longer than 63"
            )));
        }
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes()); // class IN
    Ok(m)
}

struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

fn bad(what: &str) -> PrimError {
    PrimError::Msg(format!("dns: malformed reply: {what}"))
}

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, PrimError> {
        let v = *self.msg.get(self.pos).ok_or_else(|| bad("short"))?;
        self.pos += 1;
        Ok(v)
    }
    fn u16(&mut self) -> Result<u16, PrimError> {
        Ok(u16::from(self.u8()?) << 8 | u16::from(self.u8()?))
    }
    fn u32(&mut self) -> Result<u32, PrimError> {
        Ok(u32::from(self.u16()?) << 16 | u32::from(self.u16()?))
    }
    fn bytes(&mut self, n: usize) -> Result<&[u8], PrimError> {
        let end = self.pos.checked_add(n).ok_or_else(|| bad("length"))?;
        let b = self.msg.get(self.pos..end).ok_or_else(|| bad("short"))?;
        self.pos = end;
        Ok(b)
    }

    /// §4.1.4 compressed names; a pointer may only go backwards, which
    /// also rules out loops.
    fn name(&mut self) -> Result<String, PrimError> {
        let mut labels: Vec<String> = Vec::new();
        let mut pos = self.pos;
        let mut jumped = false;
        let mut limit = pos;
        loop {
            let len = *self.msg.get(pos).ok_or_else(|| bad("name"))?;
            match len {
                0 => {
                    pos += 1;
                    break;
                }
                l if l & 0xc0 == 0xc0 => {
                    let lo = *self.msg.get(pos + 1).ok_or_else(|| bad("pointer"))?;
                    let target = usize::from(l & 0x3f) << 8 | usize::from(lo);
                    if target >= limit {
                        return Err(bad("forward name pointer"));
                    }
                    if !jumped {
                        self.pos = pos + 2;
                        jumped = true;
                    }
                    limit = target;
                    pos = target;
                }
                l if l < 64 => {
                    let s = self
                        .msg
                        .get(pos + 1..pos + 1 + usize::from(l))
                        .ok_or_else(|| bad("label"))?;
                    labels.push(String::from_utf8_lossy(s).into_owned());
                    pos += 1 + usize::from(l);
                }
                _ => return Err(bad("label type")),
            }
        }
        if !jumped {
            self.pos = pos;
        }
        Ok(if labels.is_empty() {
            ".".into()
        } else {
            format!("{}.", labels.join("."))
        })
    }
}

/// §4.1.3 resource records of the answer section, rdata as text.
pub fn decode(msg: &[u8], id: u16) -> Result<(bool, Answer), PrimError> {
    let mut r = Reader { msg, pos: 0 };
    if r.u16()? != id {
        return Err(bad("id does not match the query"));
    }
    let flags = r.u16()?;
    if flags & 0x8000 == 0 {
        return Err(bad("not a response"));
    }
    let truncated = flags & 0x0200 != 0;
    let rcode = rcode_name((flags & 0x000f) as u8);
    let qd = r.u16()?;
    let an = r.u16()?;
    r.u32()?; // NS and AR counts
    for _ in 0..qd {
        r.name()?;
        r.u32()?;
    }
    let mut records = Vec::new();
    for _ in 0..an {
        let name = r.name()?;
        let t = r.u16()?;
        r.u16()?; // class
        let ttl = r.u32()?;
        let len = usize::from(r.u16()?);
        let start = r.pos;
        let data = match t {
            1 => {
                let b = r.bytes(4)?;
                Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()
            }
            28 => {
                let b: [u8; 16] = r.bytes(16)?.try_into().map_err(|_| bad("AAAA"))?;
                Ipv6Addr::from(b).to_string()
            }
            2 | 5 | 12 => r.name()?,
            15 => {
                let pref = r.u16()?;
                format!("{pref} {}", r.name()?)
            }
            33 => {
                let (p, w, port) = (r.u16()?, r.u16()?, r.u16()?);
                format!("{p} {w} {port} {}", r.name()?)
            }
            6 => {
                let (m, rn) = (r.name()?, r.name()?);
                let v: Vec<String> = (0..5)
                    .map(|_| r.u32().map(|x| x.to_string()))
                    .collect::<Result<_, _>>()?;
                format!("{m} {rn} {}", v.join(" "))
            }
            16 => {
                let mut parts = Vec::new();
                while r.pos < start + len {
                    let l = usize::from(r.u8()?);
                    parts.push(format!("{:?}", String::from_utf8_lossy(r.bytes(l)?)));
                }
                parts.join(" ")
            }
            _ => r.bytes(len)?.iter().map(|b| format!("{b:02x}")).collect(),
        };
        if r.pos != start + len {
            return Err(bad("record length"));
        }
        records.push(Record {
            name,
            rtype: type_name(t),
            ttl,
            data,
        });
    }
    Ok((truncated, Answer { rcode, records }))
}

pub async fn query(q: Query) -> Result<Answer, PrimError> {
    let qtype = type_code(&q.qtype)
        .ok_or_else(|| PrimError::Msg(format!("dns: unknown type {:?}", q.qtype)))?;
    let id: u16 = rand::random();
    let msg = encode(id, &q.name, qtype)?;
    let at = q.server;
    let work = async {
        if !q.tcp {
            let local: SocketAddr = if at.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let s = tokio::net::UdpSocket::bind(local)
                .await
                .map_err(|e| PrimError::io("dns: udp socket", e))?;
            s.connect(at)
                .await
                .map_err(|e| PrimError::io(format!("dns {at}"), e))?;
            s.send(&msg)
                .await
                .map_err(|e| PrimError::io(format!("dns {at}"), e))?;
            let mut buf = vec![0u8; 4096];
            loop {
                let n = s
                    .recv(&mut buf)
                    .await
                    .map_err(|e| PrimError::io(format!("dns {at}"), e))?;
                // A stray datagram with another id is not our answer.
                match decode(buf.get(..n).unwrap_or_default(), id) {
                    Ok((false, a)) => return Ok(a),
                    Ok((true, _)) => break,
                    Err(_) => continue,
                }
            }
        }
        let mut s = tokio::net::TcpStream::connect(at)
            .await
            .map_err(|e| PrimError::io(format!("dns {at} (tcp)"), e))?;
        let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&msg);
        s.write_all(&framed)
            .await
            .map_err(|e| PrimError::io(format!("dns {at} (tcp)"), e))?;
        let len = s
            .read_u16()
            .await
            .map_err(|e| PrimError::io(format!("dns {at} (tcp)"), e))?;
        let mut buf = vec![0u8; usize::from(len)];
        s.read_exact(&mut buf)
            .await
            .map_err(|e| PrimError::io(format!("dns {at} (tcp)"), e))?;
        decode(&buf, id).map(|(_, a)| a)
    };
    tokio::time::timeout(q.timeout, work)
        .await
        .map_err(|_| PrimError::Msg(format!("dns {at}: timeout after {:?}", q.timeout)))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(id: u16, answers: &[u8], an: u16) -> Vec<u8> {
        let mut m = encode(id, "example.test", 1).unwrap();
        m[2] = 0x81;
        m[3] = 0x80;
        m[6..8].copy_from_slice(&an.to_be_bytes());
        m.extend_from_slice(answers);
        m
    }

    #[test]
    fn a_record_with_compression() {
        // Name pointer to offset 12 (the question), A 10.1.2.3, ttl 60.
        let rr = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3];
        let (tc, a) = decode(&reply(7, &rr, 1), 7).unwrap();
        assert!(!tc);
        assert_eq!(a.rcode, "NOERROR");
        assert_eq!(
            a.records,
            vec![Record {
                name: "example.test.".into(),
                rtype: "A".into(),
                ttl: 60,
                data: "10.1.2.3".into()
            }]
        );
    }

    #[test]
    fn malformed_replies_are_errors() {
        // Wrong id.
        assert!(decode(&reply(7, &[], 0), 8).is_err());
        // Pointer to itself: a loop.
        let looped = [0xc0, 29, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4];
        assert!(decode(&reply(7, &looped, 1), 7).is_err());
        // Announced answer missing, truncated rdata.
        assert!(decode(&reply(7, &[], 1), 7).is_err());
        assert!(decode(
            &reply(7, &[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10], 1),
            7
        )
        .is_err());
        for cut in 0..12 {
            assert!(decode(&reply(7, &[], 0)[..cut], 7).is_err());
        }
    }

    #[test]
    fn types() {
        assert_eq!(type_code("aaaa"), Some(28));
        assert_eq!(type_code("TYPE99"), Some(99));
        assert_eq!(type_code("BOGUS"), None);
    }
}
