//! A single server's pub/sub connection of our own: the socket (TCP, or
//! TLS through rustls as redis-rs configures it), the handshake, a reader
//! that parses every frame straight from a bounded read buffer into the
//! deliver callback ([`super::resp`]), and a writer of the subscribe
//! commands whose confirmations come back through the reader.
//!
//! Why not redis-rs here: its async pub/sub parses each message into a
//! `Value` and queues it in an unbounded channel of its own ahead of our
//! accounted queue (a million-message burst cost more memory there than in
//! the queue). redis-rs has no public way to hand over the raw stream it
//! connects, so this file makes the socket and the handshake itself, from
//! the address as redis-rs reads it (`IntoConnectionInfo`: host, port,
//! user, password, database, `protocol=resp3`), with the same TLS roots
//! (the TLS CA file, else the system's) and the same commands (`HELLO 3
//! AUTH` or `AUTH`, then `SELECT`), packed by redis-rs's `Cmd`. It skips
//! redis-rs's `CLIENT SETINFO` (optional, informational). Cluster
//! subscriptions and every other connection keep redis-rs.
//!
//! The reader never waits for anything but the socket: a message is handed
//! to the non-blocking deliver callback, a confirmation or error to the
//! writer through an unbounded channel (no longer than the commands sent),
//! a pong to the pinger. So Redis never finds this subscriber slow while
//! handlers run, and a reload's commands or a ping can wait for their
//! answers while reading goes on.
//!
//! A payload shorter than [`SLICE_MIN`] is copied out of the read buffer:
//! a slice would keep the whole read buffer alive while it waits in a
//! queue, far more memory than the queue's budget charges it. Longer ones
//! are handed on as slices of it (no copy); a frame larger than
//! [`READ_MIN`] that did not arrive whole in one read is read into an
//! allocation of exactly its size, so its slice keeps no more than itself
//! alive (one that did keeps at most the read buffer it came in).
//!
//! Not owned here: reconnecting, the session loop and the watchdog
//! (`super::pubsub`, `super::reconnect`), parsing (`super::resp`).

use super::connect::{Endpoint, describe};
use super::pubsub::{Deliver, Payload};
use super::resp::{Confirm, Frame, Parser};
use super::subscriptions::SubscribeCommands;
use bytes::{Bytes, BytesMut};
use redis::{ConnectionAddr, ErrorKind, IntoConnectionInfo as _, RedisError, RedisResult, Value};
use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc, watch};

/// The least room the read buffer makes for each read.
pub const READ_MIN: usize = 64 << 10;
/// The shortest payload handed on as a slice of the read buffer rather
/// than copied (see the module docs).
pub const SLICE_MIN: usize = 64 << 10;

/// The socket: plain TCP or TLS.
enum Io {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// What the reader tells the writer: the answer to a subscribe command.
enum Control {
    Confirmed(Confirm),
    Error(String),
}

/// A connected, authenticated connection, in its three parts.
pub struct Connection {
    pub reader: Reader,
    pub commands: Commands,
    pub pinger: Pinger,
}

/// Connects to the endpoint's (first) server and authenticates; the caller
/// bounds the time. Errors never carry the password.
pub async fn connect(endpoint: &Endpoint, max_payload: u64) -> Result<Connection, String> {
    let info = endpoint
        .address()
        .connection_url()
        .into_connection_info()
        .map_err(|e| describe(&e))?;
    let mut io = match info.addr() {
        ConnectionAddr::Tcp(host, port) => Io::Tcp(tcp(host, *port).await?),
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure,
            ..
        } => {
            if *insecure {
                return Err("an insecure TLS address (#insecure) is not supported".into());
            }
            Io::Tls(Box::new(tls(endpoint, host, *port).await?))
        }
        _ => return Err("only redis:// and rediss:// addresses are supported".into()),
    };
    let mut parser = Parser::new(max_payload);
    let mut buf = BytesMut::with_capacity(READ_MIN);
    let settings = info.redis_settings();
    let mut handshake = Vec::new();
    if settings.protocol().supports_resp3() {
        let mut hello = redis::cmd("HELLO");
        hello.arg(3);
        if let Some(password) = settings.password() {
            hello
                .arg("AUTH")
                .arg(settings.username().unwrap_or("default"))
                .arg(password);
        }
        handshake.push(("HELLO 3", hello));
    } else if let Some(password) = settings.password() {
        let mut auth = redis::cmd("AUTH");
        if let Some(user) = settings.username() {
            auth.arg(user);
        }
        handshake.push(("AUTH", auth.arg(password).clone()));
    }
    if settings.db() != 0 {
        handshake.push(("SELECT", redis::cmd("SELECT").arg(settings.db()).clone()));
    }
    for (name, cmd) in handshake {
        io.write_all(&cmd.get_packed_command())
            .await
            .map_err(|e| format!("writing {name} failed: {e}"))?;
        match reply(&mut io, &mut parser, &mut buf).await? {
            Frame::Error(e) if e.contains("WRONGPASS") || name == "AUTH" => {
                return Err(describe(&RedisError::from((
                    ErrorKind::AuthenticationFailed,
                    "authentication failed",
                ))));
            }
            Frame::Error(e) => return Err(format!("{name} was refused: {e}")),
            Frame::Reply => {}
            // Nothing is subscribed yet: anything else is not an answer.
            _ => return Err(format!("{name} was answered with a pub/sub frame")),
        }
    }
    let (read, write) = tokio::io::split(io);
    let write = Arc::new(Mutex::new(write));
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let (pongs_tx, pongs_rx) = watch::channel(0u64);
    Ok(Connection {
        reader: Reader {
            io: read,
            buf,
            parser,
            control: control_tx,
            pongs: pongs_tx,
        },
        commands: Commands {
            write: write.clone(),
            control: control_rx,
        },
        pinger: Pinger {
            write,
            pongs: pongs_rx,
        },
    })
}

async fn tcp(host: &str, port: u16) -> Result<TcpStream, String> {
    let s = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connecting failed: {e}"))?;
    // Commands are small and a pong is awaited: no Nagle delay.
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// TLS as redis-rs makes it: the CA file's certificates if one is given,
/// else the system's; the host name verified.
async fn tls(
    endpoint: &Endpoint,
    host: &str,
    port: u16,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    match endpoint.root_cert().map_err(|e| describe(&e))? {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| format!("the TLS CA file is not PEM: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("the TLS CA file's certificate is refused: {e}"))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            if let Some(e) = native.errors.first() {
                return Err(format!("cannot load the system's certificates: {e}"));
            }
            for cert in native.certs {
                // Unusable system certificates are passed over, as redis-rs
                // would fail on them; an empty store refuses every server.
                let _ = roots.add(cert);
            }
        }
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host:?} is not a TLS server name: {e}"))?;
    let tcp = tcp(host, port).await?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS failed: {e}"))
}

/// Reads one reply of the handshake.
async fn reply(io: &mut Io, parser: &mut Parser, buf: &mut BytesMut) -> Result<Frame, String> {
    loop {
        if let Some(frame) = parser.next(buf).map_err(|e| e.to_string())? {
            return Ok(frame);
        }
        buf.reserve(READ_MIN.max(parser.need().saturating_sub(buf.len())));
        match io.read_buf(buf).await {
            Ok(0) => return Err("the server closed the connection".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("reading failed: {e}")),
        }
    }
}

/// The read side: parses and hands on every frame until the connection
/// fails.
pub struct Reader {
    io: ReadHalf<Io>,
    buf: BytesMut,
    parser: Parser,
    control: mpsc::UnboundedSender<Control>,
    pongs: watch::Sender<u64>,
}

impl Reader {
    /// Reads until the connection is lost or the server sends what is not
    /// RESP; returns why. Cancel-safe only as a whole (drop it to stop).
    pub async fn run(mut self, deliver: &Deliver) -> String {
        loop {
            let (control, pongs) = (&self.control, &self.pongs);
            let parsed = self.parser.each(&mut self.buf, |frame| {
                hand_on(frame, deliver, control, pongs);
            });
            if let Err(e) = parsed {
                return e.to_string();
            }
            self.make_room();
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) => return "the server closed the connection".into(),
                // Bytes arriving answer a ping as well as a pong does: the
                // pong of a ping sent while a large frame is on its way
                // (one being streamed past, say) queues behind it, and a
                // slow link must not make a live server look dead.
                Ok(_) => self.pongs.send_modify(|n| *n += 1),
                Err(e) => return format!("reading failed: {e}"),
            }
        }
    }

    /// Room for the next read: [`READ_MIN`], or for a frame larger than
    /// that, an allocation of exactly its size (what is buffered of it is
    /// copied once), so that its payload, handed on as a slice, keeps
    /// alive no more than its own frame.
    fn make_room(&mut self) {
        let need = self.parser.need();
        if need > READ_MIN && self.buf.capacity() < need {
            let mut own = BytesMut::with_capacity(need);
            own.extend_from_slice(&self.buf);
            self.buf = own;
        } else {
            self.buf.reserve(READ_MIN);
        }
    }
}

/// Hands one frame on: a message to `deliver`, an answer to the writer
/// (`control`), a pong to the pinger.
fn hand_on(
    frame: Frame,
    deliver: &Deliver,
    control: &mpsc::UnboundedSender<Control>,
    pongs: &watch::Sender<u64>,
) {
    match frame {
        Frame::Message {
            pattern,
            channel,
            payload,
        } => {
            let payload = if payload.len() < SLICE_MIN {
                Bytes::copy_from_slice(&payload)
            } else {
                payload
            };
            let pattern = pattern.as_deref().map(String::from_utf8_lossy);
            deliver(
                pattern.as_deref(),
                &String::from_utf8_lossy(&channel),
                Payload::Whole(payload),
            );
        }
        Frame::TooLarge {
            pattern,
            channel,
            len,
        } => {
            let pattern = pattern.as_deref().map(String::from_utf8_lossy);
            let channel = channel
                .as_deref()
                .map_or(Cow::Borrowed(""), String::from_utf8_lossy);
            deliver(pattern.as_deref(), &channel, Payload::TooLarge(len));
        }
        // The writer may be gone (the session is ending): nothing to tell.
        Frame::Confirmed(c) => drop(control.send(Control::Confirmed(c))),
        Frame::Error(e) => drop(control.send(Control::Error(e))),
        Frame::Pong => pongs.send_modify(|n| *n += 1),
        Frame::Reply => {}
    }
}

/// The subscribe commands, written on the connection; each waits for its
/// confirmations, which the reader passes on.
pub struct Commands {
    write: Arc<Mutex<WriteHalf<Io>>>,
    control: mpsc::UnboundedReceiver<Control>,
}

impl Commands {
    /// Sends `command` for `names` and waits for a confirmation of `kind`
    /// for each.
    async fn run(&mut self, command: &str, kind: Confirm, names: &[String]) -> RedisResult<()> {
        let mut cmd = redis::cmd(command);
        cmd.arg(names);
        write(&self.write, &cmd.get_packed_command()).await?;
        for _ in names {
            match self.control.recv().await {
                Some(Control::Confirmed(k)) if k == kind => {}
                Some(Control::Confirmed(k)) => {
                    return Err(refused(command, format!("confirmed as {k:?}")));
                }
                Some(Control::Error(e)) => return Err(refused(command, e)),
                None => return Err(io::Error::from(io::ErrorKind::ConnectionAborted).into()),
            }
        }
        Ok(())
    }

    /// An answer nobody waits for: an error ends the session (returned);
    /// a stray confirmation is passed over.
    pub async fn unsolicited(&mut self) -> String {
        loop {
            match self.control.recv().await {
                Some(Control::Error(e)) => return format!("redis sent an error: {e}"),
                Some(Control::Confirmed(kind)) => {
                    tracing::debug!(?kind, "a confirmation nothing waited for");
                }
                // The reader ended; the session sees why from it.
                None => std::future::pending().await,
            }
        }
    }
}

fn refused(command: &str, detail: String) -> RedisError {
    RedisError::from((
        ErrorKind::Server(redis::ServerErrorKind::ResponseError),
        "refused",
        format!("{command}: {detail}"),
    ))
}

async fn write(to: &Mutex<WriteHalf<Io>>, bytes: &[u8]) -> RedisResult<()> {
    let mut w = to.lock().await;
    w.write_all(bytes).await?;
    w.flush().await?;
    Ok(())
}

impl SubscribeCommands for Commands {
    async fn channels(
        &mut self,
        on: bool,
        _sharded: bool,
        names: &[String],
    ) -> redis::RedisResult<()> {
        match on {
            true => self.run("SUBSCRIBE", Confirm::Subscribe, names).await,
            false => self.run("UNSUBSCRIBE", Confirm::Unsubscribe, names).await,
        }
    }

    async fn patterns(&mut self, on: bool, names: &[String]) -> redis::RedisResult<()> {
        match on {
            true => self.run("PSUBSCRIBE", Confirm::PSubscribe, names).await,
            false => self.run("PUNSUBSCRIBE", Confirm::PUnsubscribe, names).await,
        }
    }
}

/// Sends `PING` for the watchdog and waits for the reader to see a pong,
/// or any bytes at all (see [`Reader::run`]).
#[derive(Clone)]
pub struct Pinger {
    write: Arc<Mutex<WriteHalf<Io>>>,
    pongs: watch::Receiver<u64>,
}

impl Pinger {
    /// One ping, answered once a pong (or anything) arrives after it was
    /// sent.
    pub fn ping(&self) -> impl Future<Output = RedisResult<Value>> + Send + 'static {
        let write_to = self.write.clone();
        let mut pongs = self.pongs.clone();
        async move {
            pongs.borrow_and_update();
            write(&write_to, &redis::cmd("PING").get_packed_command()).await?;
            pongs
                .changed()
                .await
                .map_err(|_| io::Error::from(io::ErrorKind::ConnectionAborted))?;
            Ok(Value::Okay)
        }
    }
}
