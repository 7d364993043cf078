//! One blocking generic netlink socket talking to the IPVS family. Only the
//! worker thread of an `Ipvs` handle owns it.

use std::io::{self, Cursor};
use std::os::fd::{AsRawFd, BorrowedFd};

use neli::consts::nl::NlmF;
use neli::consts::socket::{Msg, NlFamily};
use neli::genl::{Genlmsghdr, GenlmsghdrBuilder};
use neli::nl::{NlPayload, Nlmsghdr, NlmsghdrBuilder};
use neli::socket::NlSocket;
use neli::types::{Buffer, GenlBuffer};
use neli::utils::Groups;
use neli::{FromBytes, FromBytesWithInput, ToBytes};

use super::wire::{Attr, Attrs};

/// GENL_ID_CTRL and its CTRL_CMD_GETFAMILY / CTRL_ATTR_FAMILY_{ID,NAME}.
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const IPVS_GENL_VERSION: u8 = 1;

/// Big enough for any datagram the kernel sends: dump skbs are capped near
/// 32 KiB.
const RECV_BUF: usize = 64 * 1024;
/// Acks queue up while a batch is processed. Each costs ~1 KiB of receive
/// buffer (skb truesize), so a batch must stay well below SO_RCVBUF.
const RCVBUF: libc::c_int = 4 * 1024 * 1024;
const BATCH_MSGS: usize = 512;
/// One sendmsg must stay below SO_SNDBUF (default ~208 KiB).
const BATCH_BYTES: usize = 96 * 1024;
/// A kernel that never answers must not hang the daemon.
const RECV_TIMEOUT_S: libc::time_t = 30;

/// What a request can end in.
#[derive(Debug)]
pub(crate) enum ReqError {
    /// The kernel refused it with this errno.
    Kernel(io::Error),
    /// The socket itself failed, or the reply made no sense.
    Io(io::Error),
    Bad(String),
}

impl From<super::wire::WireError> for ReqError {
    fn from(e: super::wire::WireError) -> Self {
        ReqError::Bad(e.0)
    }
}

pub(crate) struct Conn {
    sock: NlSocket,
    family: u16,
    seq: u32,
    buf: Vec<u8>,
}

/// One request of a pipeline: command and top-level attributes.
pub(crate) type Request = (u8, Vec<Attr>);

fn encode(
    out: &mut Vec<u8>,
    nl_type: u16,
    flags: NlmF,
    seq: u32,
    cmd: u8,
    attrs: Vec<Attr>,
) -> Result<(), ReqError> {
    let genl: Genlmsghdr<u8, u16> = GenlmsghdrBuilder::default()
        .cmd(cmd)
        .version(IPVS_GENL_VERSION)
        .attrs(attrs.into_iter().collect::<GenlBuffer<u16, Buffer>>())
        .build()
        .map_err(|e| ReqError::Bad(e.to_string()))?;
    let msg = NlmsghdrBuilder::default()
        .nl_type(nl_type)
        .nl_flags(flags)
        .nl_seq(seq)
        .nl_payload(NlPayload::Payload(genl))
        .build()
        .map_err(|e| ReqError::Bad(e.to_string()))?;
    let mut c = Cursor::new(std::mem::take(out));
    c.set_position(c.get_ref().len() as u64);
    let r = msg.to_bytes(&mut c);
    *out = c.into_inner();
    r.map_err(|e| ReqError::Bad(e.to_string()))
}

fn kernel_err(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code.unsigned_abs() as i32)
}

impl Conn {
    /// Opens the socket and resolves the "IPVS" family. `Err(Kernel(ENOENT))`
    /// means the family is not registered (no ip_vs in the kernel).
    pub(crate) fn open() -> Result<Conn, ReqError> {
        let sock =
            NlSocket::connect(NlFamily::Generic, None, Groups::empty()).map_err(ReqError::Io)?;
        sock.block().map_err(ReqError::Io)?;
        // SAFETY: the fd belongs to `sock`, which outlives this borrow.
        let fd = unsafe { BorrowedFd::borrow_raw(sock.as_raw_fd()) };
        // FORCE (root) passes rmem_max; without it the plain option is the
        // best there is.
        if crate::sockopt::set(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &RCVBUF).is_err() {
            let _ = crate::sockopt::set(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &RCVBUF);
        }
        let tv = libc::timeval {
            tv_sec: RECV_TIMEOUT_S,
            tv_usec: 0,
        };
        crate::sockopt::set(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv).map_err(ReqError::Io)?;
        let mut conn = Conn {
            sock,
            family: GENL_ID_CTRL,
            seq: 0,
            buf: vec![0; RECV_BUF],
        };
        let mut name = b"IPVS".to_vec();
        name.push(0);
        let attrs = vec![super::wire::attr(CTRL_ATTR_FAMILY_NAME, &name)?];
        let replies = conn.request(CTRL_CMD_GETFAMILY, attrs, false)?;
        let id = replies
            .iter()
            .find_map(|a| a.get(CTRL_ATTR_FAMILY_ID))
            .and_then(|b| b.get(..2))
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
            .ok_or_else(|| ReqError::Bad("family reply without an id".into()))?;
        conn.family = id;
        Ok(conn)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn recv(&mut self) -> io::Result<Vec<Nlmsghdr<u16, Buffer>>> {
        let (n, _) = self.sock.recv(&mut self.buf[..], Msg::empty())?;
        let mut c = Cursor::new(&self.buf[..n]);
        let mut msgs = Vec::new();
        while (c.position() as usize) < n {
            let m = Nlmsghdr::<u16, Buffer>::from_bytes(&mut c).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad netlink reply: {e}"),
                )
            })?;
            msgs.push(m);
        }
        Ok(msgs)
    }

    /// One request; returns the top-level attributes of every reply
    /// message (one for a GET, many for a dump, none for a change).
    pub(crate) fn request(
        &mut self,
        cmd: u8,
        attrs: Vec<Attr>,
        dump: bool,
    ) -> Result<Vec<Attrs>, ReqError> {
        let seq = self.next_seq();
        let flags = if dump {
            NlmF::REQUEST | NlmF::DUMP
        } else {
            NlmF::REQUEST | NlmF::ACK
        };
        let mut out = Vec::new();
        encode(&mut out, self.family, flags, seq, cmd, attrs)?;
        self.sock.send(&out, Msg::empty()).map_err(ReqError::Io)?;
        let mut replies = Vec::new();
        loop {
            for m in self.recv().map_err(ReqError::Io)? {
                // Left over from an earlier request that gave up (timeout).
                if *m.nl_seq() != seq {
                    continue;
                }
                match m.nl_payload() {
                    NlPayload::Payload(b) => {
                        let g = Genlmsghdr::<u8, u16>::from_bytes_with_input(
                            &mut Cursor::new(b.as_ref()),
                            b.len(),
                        )
                        .map_err(|e| ReqError::Bad(format!("bad generic netlink reply: {e}")))?;
                        replies.push(Attrs::from_genl(g.attrs()));
                    }
                    NlPayload::Err(e) => return Err(ReqError::Kernel(kernel_err(*e.error()))),
                    NlPayload::DumpExtAck(e) if *e.error() != 0 => {
                        return Err(ReqError::Kernel(kernel_err(*e.error())))
                    }
                    NlPayload::Ack(_) | NlPayload::DumpExtAck(_) | NlPayload::Empty => {
                        return Ok(replies)
                    }
                }
            }
        }
    }

    /// Sends `reqs` in order, each with NLM_F_ACK: a batch of them goes
    /// down in one sendmsg (the kernel runs every message of it, a failed
    /// one does not stop the rest), then its acks are read. Returns one
    /// outcome per request, in order.
    pub(crate) fn pipeline(&mut self, reqs: Vec<Request>) -> Vec<Result<(), ReqError>> {
        let mut results: Vec<Result<(), ReqError>> = Vec::with_capacity(reqs.len());
        let mut reqs = reqs.into_iter().peekable();
        while reqs.peek().is_some() {
            let mut out = Vec::new();
            let mut batch: Vec<Option<Result<(), ReqError>>> = Vec::new();
            let first = self.seq.wrapping_add(1);
            while batch.len() < BATCH_MSGS && out.len() < BATCH_BYTES {
                let Some((cmd, attrs)) = reqs.next() else {
                    break;
                };
                // A message that cannot be built is not sent, but keeps its
                // sequence number so that the acks still line up.
                let seq = self.next_seq();
                let flags = NlmF::REQUEST | NlmF::ACK;
                match encode(&mut out, self.family, flags, seq, cmd, attrs) {
                    Ok(()) => batch.push(None),
                    Err(e) => batch.push(Some(Err(e))),
                }
            }
            let mut pending = batch.iter().filter(|r| r.is_none()).count();
            if pending > 0 {
                if let Err(e) = self.sock.send(&out, Msg::empty()) {
                    fill(&mut batch, &e);
                    pending = 0;
                }
            }
            while pending > 0 {
                let msgs = match self.recv() {
                    Ok(m) => m,
                    // ENOBUFS (acks dropped) or a timeout: what is missing
                    // is unknown; the caller's next dump tells.
                    Err(e) => {
                        fill(&mut batch, &e);
                        break;
                    }
                };
                for m in msgs {
                    let idx = m.nl_seq().wrapping_sub(first) as usize;
                    let Some(slot) = batch.get_mut(idx) else {
                        continue;
                    };
                    if slot.is_some() {
                        continue;
                    }
                    *slot = match m.nl_payload() {
                        NlPayload::Err(e) => Some(Err(ReqError::Kernel(kernel_err(*e.error())))),
                        NlPayload::Ack(_) => Some(Ok(())),
                        // Changes send nothing else; ignore anything odd.
                        _ => continue,
                    };
                    pending -= 1;
                }
            }
            results.extend(
                batch
                    .into_iter()
                    .map(|r| r.unwrap_or_else(|| Err(ReqError::Bad("no acknowledgement".into())))),
            );
        }
        results
    }
}

fn fill(batch: &mut [Option<Result<(), ReqError>>], e: &io::Error) {
    for slot in batch.iter_mut().filter(|s| s.is_none()) {
        let copy = match e.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(e.kind(), e.to_string()),
        };
        *slot = Some(Err(ReqError::Io(copy)));
    }
}
