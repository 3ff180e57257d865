//! The UDP socket of one listener: bind with a large receive buffer, batched reads (`recvmmsg` on
//! Linux, `recv_from` elsewhere or when the kernel refuses it) and the kernel's own drop counter
//! (`SO_RXQ_OVFL` in-band, `/proc/net/udp{,6}` out of band).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::FlowSourceError;

/// Largest UDP payload we accept; anything longer is reported truncated.
pub(crate) const MAX_DATAGRAM: usize = 65_536;

/// What the kernel granted for the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveBuffer {
    /// Bytes asked for (`[flow] receive_buffer_bytes`).
    pub requested: usize,
    /// Bytes the kernel reports (`SO_RCVBUF` read back; Linux reports twice the accounted size).
    pub effective: usize,
    /// True when the kernel gave less than asked (raise `net.core.rmem_max`).
    pub capped: bool,
}

/// Binds `addr` for flow datagrams with a receive buffer of `rcvbuf` bytes and a read timeout.
pub(crate) fn bind(
    addr: SocketAddr,
    rcvbuf: usize,
    timeout: Duration,
) -> Result<(UdpSocket, ReceiveBuffer), FlowSourceError> {
    let bind_err = |e: io::Error| FlowSourceError::Bind { addr, source: e };
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(bind_err)?;
    let buf = set_receive_buffer(&sock, rcvbuf);
    enable_rxq_ovfl(&sock);
    sock.set_read_timeout(Some(timeout)).map_err(bind_err)?;
    sock.bind(&SockAddr::from(addr)).map_err(bind_err)?;
    Ok((sock.into(), buf))
}

/// Sets `SO_RCVBUF` (or `SO_RCVBUFFORCE`, which ignores `net.core.rmem_max`, when we may) and reads
/// back what the kernel granted.
fn set_receive_buffer(sock: &Socket, requested: usize) -> ReceiveBuffer {
    #[cfg(target_os = "linux")]
    let forced = {
        let v = libc::c_int::try_from(requested).unwrap_or(libc::c_int::MAX);
        setsockopt_int(sock, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v).is_ok()
    };
    #[cfg(not(target_os = "linux"))]
    let forced = false;
    if !forced {
        let _ = sock.set_recv_buffer_size(requested);
    }
    let effective = sock.recv_buffer_size().unwrap_or(0);
    // Linux doubles the value set (bookkeeping overhead) and reports the doubled value.
    let expected = if cfg!(target_os = "linux") {
        requested.saturating_mul(2)
    } else {
        requested
    };
    ReceiveBuffer {
        requested,
        effective,
        capped: effective < expected,
    }
}

#[cfg(target_os = "linux")]
fn setsockopt_int(
    sock: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the fd is open for the lifetime of `sock`; the option value is a c_int on the stack
    // whose size we pass.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks the kernel to attach its cumulative drop count to every datagram (Linux `SO_RXQ_OVFL`).
fn enable_rxq_ovfl(sock: &Socket) {
    #[cfg(target_os = "linux")]
    {
        if let Err(e) = setsockopt_int(sock, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1) {
            tracing::debug!(error = %e, "SO_RXQ_OVFL not available; kernel drops come from /proc/net/udp only");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = sock;
}

/// The kernel's drop count for this socket from `/proc/net/udp` or `/proc/net/udp6` (the `drops`
/// column, matched by socket inode). `None` when unavailable.
pub(crate) fn proc_drops(sock: &UdpSocket, v6: bool) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", sock.as_raw_fd()))
            .ok()?
            .ino();
        let table = std::fs::read_to_string(if v6 {
            "/proc/net/udp6"
        } else {
            "/proc/net/udp"
        })
        .ok()?;
        parse_proc_udp_drops(&table, inode)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (sock, v6);
        None
    }
}

/// Finds the `drops` column (last) of the row whose `inode` column (10th) is `inode`.
pub(crate) fn parse_proc_udp_drops(table: &str, inode: u64) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.len() >= 13 && cols[9].parse() == Ok(inode))
            .then(|| cols[cols.len() - 1].parse().ok())?
    })
}

/// One received datagram's place in the reader's buffers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received {
    /// Index of the buffer holding the payload.
    pub index: usize,
    /// Payload length.
    pub len: usize,
    /// Sender.
    pub from: Option<SocketAddr>,
    /// The payload did not fit and was cut.
    pub truncated: bool,
}

/// Batched reader: up to `vlen` datagrams per system call.
pub(crate) struct BatchReader {
    bufs: Vec<Vec<u8>>,
    got: Vec<Received>,
    /// Highest kernel drop count seen in `SO_RXQ_OVFL` ancillary data.
    pub kernel_drops: Option<u64>,
    #[cfg(target_os = "linux")]
    mmsg: Option<Mmsg>,
}

#[cfg(target_os = "linux")]
struct Mmsg {
    iovecs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_storage>,
    /// Control buffers, u64 for alignment, `CTRL_WORDS` per message.
    ctrl: Vec<u64>,
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in `Mmsg` only ever point into buffers owned by the same `BatchReader`
// (rebuilt before every call) and are dereferenced only by the kernel inside `recv_mmsg`, which
// needs `&mut self`; moving the reader to another thread moves those buffers with it (their heap
// addresses do not change).
#[cfg(target_os = "linux")]
unsafe impl Send for Mmsg {}

#[cfg(target_os = "linux")]
const CTRL_WORDS: usize = 8;

/// An IPv4 exporter seen through a dual-stack `[::]` socket (`::ffff:a.b.c.d`) is still an IPv4
/// exporter: templates, sampling overrides and metrics are keyed by its IPv4 address.
fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::from((v4, v6.port())),
            None => a,
        },
        v4 => v4,
    }
}

/// The sender address the kernel wrote into a `sockaddr_storage`.
#[cfg(target_os = "linux")]
fn sockaddr_to_std(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    match libc::c_int::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: ss_family says the storage holds a sockaddr_in, which it is large and aligned
            // enough for.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Some(match ip.to_ipv4_mapped() {
                Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
                None => SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    port,
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )),
            })
        }
        _ => None,
    }
}

impl BatchReader {
    /// A reader for up to `vlen` datagrams per call.
    pub fn new(vlen: usize) -> Self {
        let vlen = vlen.max(1);
        Self {
            bufs: (0..vlen).map(|_| vec![0u8; MAX_DATAGRAM]).collect(),
            got: Vec::with_capacity(vlen),
            kernel_drops: None,
            #[cfg(target_os = "linux")]
            mmsg: Some(Mmsg {
                // SAFETY: iovec, sockaddr_storage and mmsghdr are plain C structs for which all-zero
                // bytes is a valid value.
                iovecs: vec![unsafe { std::mem::zeroed() }; vlen],
                addrs: vec![unsafe { std::mem::zeroed() }; vlen],
                ctrl: vec![0u64; CTRL_WORDS * vlen],
                hdrs: vec![unsafe { std::mem::zeroed() }; vlen],
            }),
        }
    }

    /// The payload of a received datagram.
    pub fn payload(&self, r: &Received) -> &[u8] {
        &self.bufs[r.index][..r.len]
    }

    /// The `i`th datagram of the last [`BatchReader::recv`].
    pub fn received(&self, i: usize) -> Received {
        self.got[i]
    }

    /// Waits (up to the socket's read timeout) for datagrams and returns how many arrived (0 on
    /// timeout); read them with [`BatchReader::received`] and [`BatchReader::payload`].
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        self.got.clear();
        #[cfg(target_os = "linux")]
        if self.mmsg.is_some() {
            match self.recv_mmsg(sock) {
                Ok(()) => return Ok(self.got.len()),
                Err(e)
                    if e.raw_os_error() == Some(libc::ENOSYS)
                        || e.raw_os_error() == Some(libc::EPERM) =>
                {
                    tracing::info!("recvmmsg unavailable ({e}); falling back to recv_from");
                    self.mmsg = None;
                }
                Err(e) => return Err(e),
            }
        }
        self.recv_one(sock)?;
        Ok(self.got.len())
    }

    fn recv_one(&mut self, sock: &UdpSocket) -> io::Result<()> {
        match sock.recv_from(&mut self.bufs[0]) {
            Ok((len, from)) => {
                self.got.push(Received {
                    index: 0,
                    len,
                    from: Some(unmap(from)),
                    truncated: len > MAX_DATAGRAM - 1,
                });
                Ok(())
            }
            Err(e) if is_timeout(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    #[cfg(target_os = "linux")]
    fn recv_mmsg(&mut self, sock: &UdpSocket) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let m = self.mmsg.as_mut().expect("checked by the caller");
        let vlen = m.hdrs.len();
        for i in 0..vlen {
            m.iovecs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: self.bufs[i].len(),
            };
            let h = &mut m.hdrs[i];
            h.msg_len = 0;
            h.msg_hdr.msg_name = (&mut m.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut m.iovecs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = m.ctrl[i * CTRL_WORDS..].as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = CTRL_WORDS * 8;
            h.msg_hdr.msg_flags = 0;
        }
        let n = loop {
            // SAFETY: every header points into buffers owned by `self` that live across the call, with
            // their true lengths; vlen is the number of headers.
            let rc = unsafe {
                libc::recvmmsg(
                    sock.as_raw_fd(),
                    m.hdrs.as_mut_ptr(),
                    vlen as libc::c_uint,
                    libc::MSG_WAITFORONE,
                    std::ptr::null_mut(),
                )
            };
            if rc >= 0 {
                break rc as usize;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                _ if is_timeout(&e) => return Ok(()),
                _ => return Err(e),
            }
        };
        for i in 0..n {
            let h = &m.hdrs[i];
            let from = sockaddr_to_std(&m.addrs[i]);
            if let Some(d) = rxq_ovfl(&h.msg_hdr) {
                let d = u64::from(d);
                self.kernel_drops = Some(self.kernel_drops.map_or(d, |k| k.max(d)));
            }
            self.got.push(Received {
                index: i,
                len: h.msg_len as usize,
                from,
                truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            });
        }
        Ok(())
    }
}

/// The `SO_RXQ_OVFL` value in a received message's ancillary data.
#[cfg(target_os = "linux")]
fn rxq_ovfl(msg: &libc::msghdr) -> Option<u32> {
    // SAFETY: `msg` was filled by recvmmsg: msg_control/msg_controllen describe a valid control
    // buffer, and the CMSG_* helpers stay inside it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_RXQ_OVFL {
                return Some(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<u32>()));
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_udp_drops_are_found_by_inode() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  1: 00000000:0807 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17\n\
  2: 0100007F:1283 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 999 2 0000000000000000 0\n";
        assert_eq!(parse_proc_udp_drops(table, 4242), Some(17));
        assert_eq!(parse_proc_udp_drops(table, 999), Some(0));
        assert_eq!(parse_proc_udp_drops(table, 1), None);
    }

    #[test]
    fn batch_reader_receives_several_datagrams_and_their_senders() {
        let (sock, buf) = bind(
            "127.0.0.1:0".parse().unwrap(),
            1 << 20,
            Duration::from_millis(200),
        )
        .unwrap();
        assert!(buf.effective > 0);
        let to = sock.local_addr().unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..5u8 {
            tx.send_to(&[i; 10], to).unwrap();
        }
        let mut r = BatchReader::new(8);
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while seen.len() < 5 && std::time::Instant::now() < deadline {
            let n = r.recv(&sock).unwrap();
            for g in (0..n).map(|i| r.received(i)) {
                assert_eq!(g.from, Some(tx.local_addr().unwrap()));
                seen.push(r.payload(&g).to_vec());
            }
        }
        assert_eq!(seen, (0..5u8).map(|i| vec![i; 10]).collect::<Vec<_>>());
        // Nothing more: the read times out with an empty batch.
        assert_eq!(r.recv(&sock).unwrap(), 0);
        assert!(proc_drops(&sock, false).is_some() || !cfg!(target_os = "linux"));
    }

    #[test]
    fn kernel_drops_of_a_full_receive_queue_are_reported() {
        // The smallest buffer the kernel allows, and nobody reading while 300 datagrams arrive.
        let (sock, _) = bind(
            "127.0.0.1:0".parse().unwrap(),
            1,
            Duration::from_millis(100),
        )
        .unwrap();
        let to = sock.local_addr().unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..300 {
            tx.send_to(&[7u8; 1400], to).unwrap();
        }
        let drops = proc_drops(&sock, false);
        if cfg!(target_os = "linux") {
            assert!(drops.unwrap() > 0, "{drops:?}");
        }
        let mut r = BatchReader::new(64);
        let n = r.recv(&sock).unwrap();
        assert!(n > 0 && n < 300);
        // One more datagram carries the drop count in its SO_RXQ_OVFL ancillary data.
        while r.recv(&sock).unwrap() > 0 {}
        tx.send_to(&[1u8; 10], to).unwrap();
        assert_eq!(r.recv(&sock).unwrap(), 1);
        if cfg!(target_os = "linux") {
            assert_eq!(r.kernel_drops, drops);
        }
    }

    #[test]
    fn ipv4_senders_on_a_dual_stack_socket_are_reported_as_ipv4() {
        let Ok((sock, _)) = bind(
            "[::]:0".parse().unwrap(),
            1 << 16,
            Duration::from_millis(200),
        ) else {
            return; // no IPv6 in this environment
        };
        let port = sock.local_addr().unwrap().port();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"x", ("127.0.0.1", port)).unwrap();
        let mut r = BatchReader::new(4);
        assert_eq!(r.recv(&sock).unwrap(), 1);
        assert_eq!(r.received(0).from, Some(tx.local_addr().unwrap()));
    }

    #[test]
    fn binding_a_used_port_names_the_address() {
        let (a, _) = bind(
            "127.0.0.1:0".parse().unwrap(),
            1 << 16,
            Duration::from_millis(100),
        )
        .unwrap();
        let addr = a.local_addr().unwrap();
        let e = bind(addr, 1 << 16, Duration::from_millis(100))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&addr.to_string()) && e.contains("[flow] listen"),
            "{e}"
        );
    }
}
