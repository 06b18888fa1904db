//! Non-blocking TCP sockets for tasks: the seed's `Accept`, `Recv`, `Send`
//! library calls and its `sockwrap.Socket` class.

use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::poll::{
    cancel_op, edge_wait, forget_fd, io_op, poll_op, poll_ready, reset_fd, try_op, Dir,
};
use super::task::Tid;

/// A listening TCP socket whose [`accept`](Listener::accept) suspends the
/// task, not the thread (the seed's `Accept(sock)` / `Socket.accept`).
///
/// # Examples
///
/// ```
/// use copipe::sched::{self, Listener, Scheduler, Socket};
///
/// let mut s = Scheduler::new()?;
/// let listener = Listener::bind("127.0.0.1:0".parse().unwrap())?;
/// let addr = listener.local_addr()?;
/// s.spawn(async move {
///     let (client, _) = listener.accept().await?;
///     let mut buf = [0; 64];
///     let n = client.recv(&mut buf).await?;
///     client.send_all(&buf[..n]).await?;
///     client.close().await
/// });
/// s.spawn(async move {
///     let sock = Socket::connect(addr).await?;
///     sock.send_all(b"ping").await?;
///     let mut buf = [0; 4];
///     sock.recv_exact(&mut buf).await?;
///     assert_eq!(&buf, b"ping");
///     Ok::<(), std::io::Error>(())
/// });
/// s.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Listener {
    inner: mio::net::TcpListener,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("addr", &self.inner.local_addr().ok())
            .finish()
    }
}

/// The listen backlog: the seed's `listen(1024)`, so bursts of clients
/// (the 3 x 300 echo test) are not refused while the server is busy.
const BACKLOG: i32 = 1024;

impl Listener {
    /// Binds a non-blocking listener to `addr` (with `SO_REUSEADDR`, as
    /// the seed), with a backlog of 1024.
    ///
    /// # Errors
    ///
    /// If the address cannot be bound.
    pub fn bind(addr: SocketAddr) -> io::Result<Listener> {
        let domain = socket2::Domain::for_address(addr);
        let sock = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
        sock.set_reuse_address(true)?;
        sock.set_nonblocking(true)?;
        sock.bind(&addr.into())?;
        sock.listen(BACKLOG)?;
        Ok(Listener::from_std(sock.into()))
    }

    /// Wraps a listener made elsewhere; it is switched to non-blocking.
    pub fn from_std(listener: std::net::TcpListener) -> Listener {
        // Setting O_NONBLOCK on a valid listener does not fail.
        let _ = listener.set_nonblocking(true);
        reset_fd(listener.as_raw_fd());
        Listener {
            inner: mio::net::TcpListener::from_std(listener),
        }
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// If the operating system cannot tell.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Accepts a connection, suspending the task until one arrives.
    ///
    /// # Errors
    ///
    /// As `accept(2)`. `EMFILE`/`ENFILE` (out of file descriptors) come
    /// back as errors, not as a loop: the caller decides how to back off
    /// (`copipe echo` sleeps with a growing delay).
    ///
    /// # Panics
    ///
    /// If it must wait outside a task of a running
    /// [`Scheduler`](super::Scheduler).
    pub async fn accept(&self) -> io::Result<(Socket, SocketAddr)> {
        let (stream, addr) = io_op(
            self.inner.as_raw_fd(),
            Dir::Read,
            || self.inner.accept(),
            |_| false,
        )
        .await?;
        Ok((Socket::from_mio(stream), addr))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        forget_fd(self.inner.as_raw_fd());
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

/// A connected, non-blocking TCP socket whose operations suspend the task
/// (the seed's sockwrap `Socket`).
///
/// Each operation is tried at once; only when it would block does the
/// task wait for the socket's next readiness edge.
pub struct Socket {
    inner: mio::net::TcpStream,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("fd", &self.inner.as_raw_fd())
            .field("peer", &self.inner.peer_addr().ok())
            .finish()
    }
}

impl Socket {
    fn from_mio(inner: mio::net::TcpStream) -> Socket {
        reset_fd(inner.as_raw_fd());
        Socket { inner }
    }

    /// Wraps a connected stream made elsewhere; it is switched to
    /// non-blocking.
    pub fn from_std(stream: std::net::TcpStream) -> Socket {
        // Setting O_NONBLOCK on a valid socket does not fail.
        let _ = stream.set_nonblocking(true);
        Socket::from_mio(mio::net::TcpStream::from_std(stream))
    }

    /// Connects to `addr`, suspending the task until the connection is
    /// made.
    ///
    /// # Errors
    ///
    /// If the connection is refused or fails.
    ///
    /// # Panics
    ///
    /// If it must wait outside a task of a running
    /// [`Scheduler`](super::Scheduler).
    pub async fn connect(addr: SocketAddr) -> io::Result<Socket> {
        let sock = Socket::from_mio(mio::net::TcpStream::connect(addr)?);
        // A non-blocking connect completes when the socket turns writable;
        // then SO_ERROR tells how it went.
        loop {
            edge_wait(sock.fd(), Dir::Write).await?;
            if let Some(e) = sock.inner.take_error()? {
                return Err(e);
            }
            match sock.inner.peer_addr() {
                Ok(_) => return Ok(sock),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }

    /// Receives up to `buf.len()` bytes, suspending the task until some
    /// arrive. `Ok(0)` is end of stream.
    ///
    /// # Errors
    ///
    /// As `recv(2)`, e.g. `ConnectionReset` when the peer vanished.
    ///
    /// # Panics
    ///
    /// If it must wait outside a task of a running
    /// [`Scheduler`](super::Scheduler).
    pub fn recv<'a>(&'a self, buf: &'a mut [u8]) -> SocketRecv<'a> {
        SocketRecv {
            sock: self,
            buf,
            waiting: None,
        }
    }

    /// Receives exactly `buf.len()` bytes.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` if the stream ends first; otherwise as
    /// [`recv`](Socket::recv).
    pub async fn recv_exact(&self, buf: &mut [u8]) -> io::Result<()> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.recv(&mut buf[filled..]).await? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => filled += n,
            }
        }
        Ok(())
    }

    /// Sends some of `buf`, suspending the task until there is room in the
    /// socket buffer; returns how many bytes were sent.
    ///
    /// # Errors
    ///
    /// As `send(2)`, e.g. `BrokenPipe` when the peer is gone.
    pub fn send<'a>(&'a self, buf: &'a [u8]) -> SocketSend<'a> {
        SocketSend {
            sock: self,
            buf,
            waiting: None,
        }
    }

    /// Sends all of `buf` (the seed's `Send` library call).
    ///
    /// # Errors
    ///
    /// As [`send`](Socket::send); `WriteZero` if the socket takes nothing.
    pub fn send_all<'a>(&'a self, buf: &'a [u8]) -> SendAll<'a> {
        SendAll {
            sock: self,
            buf,
            waiting: None,
        }
    }

    /// One try at a read, waiting for the next readiness edge if it would
    /// block. A read shorter than the buffer drained the socket buffer.
    fn poll_recv(&self, buf: &mut [u8], waiting: &mut Option<Tid>) -> Poll<io::Result<usize>> {
        let mut stream = &self.inner;
        let len = buf.len();
        poll_op(
            self.fd(),
            Dir::Read,
            waiting,
            || stream.read(buf),
            |&n| n > 0 && n < len,
        )
    }

    /// One try at a write, as [`poll_recv`](Socket::poll_recv). A short
    /// write filled the socket buffer.
    fn poll_send(&self, buf: &[u8], waiting: &mut Option<Tid>) -> Poll<io::Result<usize>> {
        let mut stream = &self.inner;
        poll_op(
            self.fd(),
            Dir::Write,
            waiting,
            || stream.write(buf),
            |&n| n < buf.len(),
        )
    }

    /// Waits until the socket is readable (data, end of stream or an error
    /// is there to be read), without reading.
    ///
    /// With [`try_recv`](Socket::try_recv) this lets a task read into a
    /// buffer it does not hold while it waits: `copipe echo` reads every
    /// connection into one buffer shared by all its tasks, as a
    /// hand-written event loop would, instead of an 8 KiB buffer per
    /// connection, which keeps the copy out of the socket in the CPU cache.
    /// A wake-up may be spurious: `try_recv` then says `WouldBlock`, and
    /// the next `readable` waits for the next edge.
    ///
    /// # Errors
    ///
    /// If the scheduler cannot watch the socket (epoll refuses it).
    ///
    /// # Panics
    ///
    /// If awaited outside a task of a running
    /// [`Scheduler`](super::Scheduler).
    ///
    /// # Examples
    ///
    /// ```
    /// use copipe::sched::{Listener, Scheduler, Socket};
    ///
    /// let mut s = Scheduler::new()?;
    /// let listener = Listener::bind("127.0.0.1:0".parse().unwrap())?;
    /// let addr = listener.local_addr()?;
    /// s.spawn(async move {
    ///     let (client, _) = listener.accept().await?;
    ///     let mut buf = [0; 64];
    ///     let n = loop {
    ///         client.readable().await?;
    ///         match client.try_recv(&mut buf) {
    ///             Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
    ///             r => break r?,
    ///         }
    ///     };
    ///     assert_eq!(&buf[..n], b"hi");
    ///     Ok::<(), std::io::Error>(())
    /// });
    /// s.spawn(async move { Socket::connect(addr).await?.send_all(b"hi").await });
    /// s.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn readable(&self) -> Readable<'_> {
        Readable {
            sock: self,
            waiting: None,
        }
    }

    /// Receives without waiting: up to `buf.len()` bytes that are already
    /// there. `Ok(0)` is end of stream.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if nothing is there yet (wait with
    /// [`readable`](Socket::readable)); otherwise as `recv(2)`.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut stream = &self.inner;
        let len = buf.len();
        try_op(
            self.fd(),
            Dir::Read,
            || stream.read(buf),
            |&n| n > 0 && n < len,
        )
    }

    /// Sends without waiting: as much of `buf` as the socket buffer takes
    /// now (possibly 0).
    ///
    /// # Errors
    ///
    /// As `send(2)`, except that `WouldBlock` is `Ok(0)`.
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        match (&self.inner).write(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            r => r,
        }
    }

    /// Shuts down one or both directions.
    ///
    /// # Errors
    ///
    /// As `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// If the socket is not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// If the operating system cannot tell.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// As `setsockopt(2)`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_nodelay(on)
    }

    /// Closes the socket (the seed's `yield client.close()`); dropping it
    /// does the same.
    ///
    /// # Errors
    ///
    /// A pending socket error (`SO_ERROR`), if any.
    pub async fn close(self) -> io::Result<()> {
        match self.inner.take_error()? {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        forget_fd(self.inner.as_raw_fd());
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

/// The future of [`Socket::recv`].
#[must_use = "a receive does nothing unless awaited"]
pub struct SocketRecv<'a> {
    sock: &'a Socket,
    buf: &'a mut [u8],
    /// The task registered as waiting for the socket's next read edge.
    waiting: Option<Tid>,
}

impl fmt::Debug for SocketRecv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketRecv")
            .field("fd", &self.sock.fd())
            .field("len", &self.buf.len())
            .finish()
    }
}

impl Future for SocketRecv<'_> {
    type Output = io::Result<usize>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.sock.poll_recv(this.buf, &mut this.waiting)
    }
}

impl Drop for SocketRecv<'_> {
    fn drop(&mut self) {
        cancel_op(self.sock.fd(), Dir::Read, self.waiting);
    }
}

/// The future of [`Socket::send`].
#[must_use = "a send does nothing unless awaited"]
pub struct SocketSend<'a> {
    sock: &'a Socket,
    buf: &'a [u8],
    waiting: Option<Tid>,
}

impl fmt::Debug for SocketSend<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketSend")
            .field("fd", &self.sock.fd())
            .field("len", &self.buf.len())
            .finish()
    }
}

impl Future for SocketSend<'_> {
    type Output = io::Result<usize>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.sock.poll_send(this.buf, &mut this.waiting)
    }
}

impl Drop for SocketSend<'_> {
    fn drop(&mut self) {
        cancel_op(self.sock.fd(), Dir::Write, self.waiting);
    }
}

/// The future of [`Socket::send_all`].
#[must_use = "a send does nothing unless awaited"]
pub struct SendAll<'a> {
    sock: &'a Socket,
    /// What is left to send.
    buf: &'a [u8],
    waiting: Option<Tid>,
}

impl fmt::Debug for SendAll<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendAll")
            .field("fd", &self.sock.fd())
            .field("left", &self.buf.len())
            .finish()
    }
}

impl Future for SendAll<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while !this.buf.is_empty() {
            match this.sock.poll_send(this.buf, &mut this.waiting) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => this.buf = &this.buf[n..],
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for SendAll<'_> {
    fn drop(&mut self) {
        cancel_op(self.sock.fd(), Dir::Write, self.waiting);
    }
}

/// The future of [`Socket::readable`].
#[must_use = "waiting does nothing unless awaited"]
pub struct Readable<'a> {
    sock: &'a Socket,
    waiting: Option<Tid>,
}

impl fmt::Debug for Readable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readable")
            .field("fd", &self.sock.fd())
            .finish()
    }
}

impl Future for Readable<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        poll_ready(this.sock.fd(), Dir::Read, &mut this.waiting)
    }
}

impl Drop for Readable<'_> {
    fn drop(&mut self) {
        cancel_op(self.sock.fd(), Dir::Read, self.waiting);
    }
}
