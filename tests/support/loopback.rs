//! A loopback TCP server a test stands up in place of a remote peer (an HTTP
//! origin, a fake cluster node): each connection served on a thread of its
//! own, what it was sent kept in a shared log. Does not own any protocol:
//! the caller's `serve` reads and answers.

use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// Listens on a free loopback port and hands each connection, with the
/// shared log, to `serve` on a thread of its own. Returns the port and the
/// log.
pub fn serve_loopback<T: Send + 'static>(
    serve: impl Fn(TcpStream, &Mutex<Vec<T>>) + Send + Sync + 'static,
) -> (u16, Arc<Mutex<Vec<T>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (shared, serve) = (log.clone(), Arc::new(serve));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (log, serve) = (shared.clone(), serve.clone());
            std::thread::spawn(move || serve(stream, &log));
        }
    });
    (port, log)
}
