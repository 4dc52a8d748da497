//! Handing a listening socket, already bound, from a parent process to the node it starts
//! (`xnai-head --listen-fd N`, `xnai-worker --listen-fd N`), so a port the parent chose can never
//! be taken by someone else between the choice and the node's bind.
//!
//! Parent side: [`bind_for_child`] (or [`bind_retrying`] for a recorded port), then
//! [`pass_listener`] on the `Command`, spawn, and drop the listener so the child alone holds
//! the port (a killed node's port is then closed). The fd keeps its number in the child: only
//! its close-on-exec flag is cleared in the child between fork and exec, so nothing the
//! standard library set up there (stdio, its exec-error pipe) is overwritten.
//!
//! Child side: [`adopt`] checks the fd is a listening TCP socket and turns it into a tokio
//! listener.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::process::Command;
use std::time::{Duration, Instant};

/// The flag a node takes the inherited descriptor's number with.
pub const LISTEN_FD_FLAG: &str = "--listen-fd";

/// How long [`bind_retrying`] keeps trying a port that is in use.
pub const REBIND_PATIENCE: Duration = Duration::from_secs(5);

/// Bind a fresh loopback port (`127.0.0.1:0`) for a child node.
pub fn bind_for_child() -> io::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
}

/// Bind `addr` (a node's recorded port, for a restart), retrying with backoff while it is in use
/// (the previous holder may still be exiting) for up to `patience`; then fails with an error
/// naming the address. Other errors fail at once. Blocks the calling thread while it waits.
pub fn bind_retrying(addr: SocketAddr, patience: Duration) -> io::Result<TcpListener> {
    let deadline = Instant::now() + patience;
    let mut pause = Duration::from_millis(20);
    loop {
        match TcpListener::bind(addr) {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("{addr} is still in use by another process after {patience:?}: {e}"),
                ));
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("binding {addr}: {e}"))),
        }
    }
}

/// Arrange for the child `cmd` starts to inherit `listener` and adds `--listen-fd N` to its
/// arguments (so put this after the other arguments, or at least after any subcommand). Keep
/// `listener` open until `spawn` returns, then drop it. Works for `tokio::process::Command`
/// through `as_std_mut`.
pub fn pass_listener(cmd: &mut Command, listener: &TcpListener) -> io::Result<()> {
    use std::os::unix::process::CommandExt;
    let fd = listener.as_raw_fd();
    if fd <= 2 {
        // The child's stdio would be set up over it.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("listener fd {fd} is a stdio descriptor"),
        ));
    }
    cmd.arg(LISTEN_FD_FLAG).arg(fd.to_string());
    // SAFETY: the closure runs in the forked child before exec and calls only fcntl, which is
    // async-signal-safe; it allocates nothing and touches no lock. `fd` is open in the child
    // because the fork copied the parent's table while `listener` was open (the caller keeps it
    // open until `spawn` returns).
    unsafe {
        cmd.pre_exec(move || {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// One `int` socket option of `fd`.
fn sockopt(fd: RawFd, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes of a c_int and its size; getsockopt on a
    // bad or non-socket fd fails with EBADF or ENOTSOCK and writes nothing.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// Take over the inherited listening socket `fd` (`--listen-fd`): it must be a TCP socket
/// that is already listening. It becomes non-blocking and close-on-exec (so the node's own
/// children do not hold the port). Call at most once per fd, inside a tokio runtime.
pub fn adopt(fd: RawFd) -> io::Result<tokio::net::TcpListener> {
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd {fd} is not a listening TCP socket ({what})"),
        )
    };
    if fd < 0 {
        return Err(bad("negative"));
    }
    let accepting = sockopt(fd, libc::SO_ACCEPTCONN)
        .map_err(|e| io::Error::new(e.kind(), format!("fd {fd}: {e}")))?;
    if accepting == 0 {
        return Err(bad("not listening"));
    }
    if sockopt(fd, libc::SO_TYPE)? != libc::SOCK_STREAM {
        return Err(bad("not a stream socket"));
    }
    let domain = sockopt(fd, libc::SO_DOMAIN)?;
    if domain != libc::AF_INET && domain != libc::AF_INET6 {
        return Err(bad("not an IP socket"));
    }
    // SAFETY: `fd` is an open listening TCP socket (checked above) that this process inherited
    // for this purpose and nothing else owns; from here the listener owns and closes it.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    // SAFETY: fcntl on an fd we own, with plain integer arguments.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adopt_refuses_what_is_not_a_listening_socket() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _guard = rt.enter();
        let file = std::fs::File::open("/dev/null").expect("/dev/null");
        let e = adopt(file.as_raw_fd()).expect_err("a file is not a socket");
        assert!(e.to_string().contains("fd"), "{e}");
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        let e = adopt(udp.as_raw_fd()).expect_err("udp is not listening");
        assert!(e.to_string().contains("not"), "{e}");
        assert!(adopt(-1).is_err());
    }

    #[tokio::test]
    async fn an_adopted_listener_accepts_on_its_port() {
        use std::os::fd::IntoRawFd;
        let parent = bind_for_child().expect("bind");
        let addr = parent.local_addr().expect("addr");
        let fd = parent.try_clone().expect("dup").into_raw_fd();
        drop(parent);
        let listener = adopt(fd).expect("adopt");
        assert_eq!(listener.local_addr().expect("addr"), addr);
        let (accepted, connected) =
            tokio::join!(listener.accept(), tokio::net::TcpStream::connect(addr));
        accepted.expect("accept");
        connected.expect("connect");
    }

    #[test]
    fn a_child_inherits_the_listener_and_nothing_else() {
        let handed = bind_for_child().expect("bind");
        let kept = bind_for_child().expect("bind");
        // `sh -c SCRIPT NAME --listen-fd N`: $2 is the fd number.
        let check = |script: &str| {
            let mut cmd = Command::new("/bin/sh");
            cmd.args(["-c", script, "sh"]);
            pass_listener(&mut cmd, &handed).expect("pass");
            cmd.status().expect("run sh").success()
        };
        assert!(check(
            r#"[ "$1" = --listen-fd ] && [ -S "/proc/self/fd/$2" ]"#
        ));
        let other = kept.as_raw_fd();
        assert!(check(&format!("! [ -e /proc/self/fd/{other} ]")));
    }

    #[test]
    fn bind_retrying_names_a_port_still_in_use() {
        let held = bind_for_child().expect("bind");
        let addr = held.local_addr().expect("addr");
        let e = bind_retrying(addr, Duration::from_millis(50)).expect_err("in use");
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert!(e.to_string().contains(&addr.to_string()), "{e}");
        drop(held);
        bind_retrying(addr, REBIND_PATIENCE).expect("free again");
    }
}
