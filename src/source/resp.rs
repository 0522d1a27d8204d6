//! The frames a single-server pub/sub connection receives, parsed straight
//! from its read buffer: RESP2 (`*3 message`, `*4 pmessage`, subscribe and
//! unsubscribe confirmations, `*2 pong`) and RESP3 (the same as `>` push
//! frames, `+PONG`), errors (`-ERR`, `!` blob errors) and any other reply
//! (the handshake's `+OK`, `HELLO`'s map), which is measured and passed over.
//!
//! Hand-written rather than redis-rs's parser because that one builds a
//! `Value` tree (an array and a heap string per element) for every message
//! ahead of the accounted queue; here a message's channel and payload are
//! slices of the one read buffer ([`BytesMut::split_to`], then `freeze`), and
//! nothing else is allocated for it.
//!
//! Bounded whatever the server sends:
//! - a payload larger than `max_payload` is never buffered whole: its
//!   header is read, [`Frame::TooLarge`] is returned at once, and its bytes
//!   are streamed past as they arrive (so are the message's later
//!   elements, and the two bytes after each skipped one, unchecked);
//! - a channel name longer than [`NAME_MAX`] makes the message too large
//!   the same way (a pattern subscription can be sent any channel name);
//! - a pattern or a message kind longer than [`NAME_MAX`], and any other
//!   reply larger than [`REPLY_MAX`] or nested deeper than [`DEPTH_MAX`],
//!   is [`Malformed`] (the connection's session ends and is made again).
//!
//! The parser is incremental: [`Parser::next`] returns `Ok(None)` until a
//! whole frame (or a too-large message's header) is buffered, consuming
//! nothing of an incomplete frame, so bytes split anywhere parse as the
//! same frames as the bytes whole (`fuzz/fuzz_targets/resp.rs` checks it).
//! Never panics on any input.
//!
//! Not owned here: the connection, its handshake and commands (see
//! `super::subscriber`).

use bytes::{Buf as _, Bytes, BytesMut};

/// The longest channel name a message is buffered with, and the longest
/// pattern, confirmation name or other reply element read.
pub const NAME_MAX: usize = 64 << 10;
/// The largest reply that is not a message (the handshake's replies,
/// confirmations, pongs and errors are far smaller).
pub const REPLY_MAX: usize = 1 << 20;
/// The deepest nesting of a reply that is not a message.
pub const DEPTH_MAX: usize = 8;
/// The longest line (a length, an integer, a simple string or error).
const LINE_MAX: usize = NAME_MAX;

/// One frame from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A message: `pattern` is `Some` for a pattern subscription's, and
    /// `channel` is the channel it was published to.
    Message {
        pattern: Option<Bytes>,
        channel: Bytes,
        payload: Bytes,
    },
    /// A message whose payload is larger than `max_payload` (`channel` is
    /// `Some`, `len` is the payload's) or whose channel name is longer than
    /// [`NAME_MAX`] (`channel` is `None`, `len` is the name's): streamed
    /// past, not buffered.
    TooLarge {
        pattern: Option<Bytes>,
        channel: Option<Bytes>,
        len: u64,
    },
    /// A subscribe or unsubscribe confirmation (one per name).
    Confirmed(Confirm),
    /// The answer to `PING` (`+PONG`, or `*2 pong` while subscribed).
    Pong,
    /// An error reply, as the server wrote it.
    Error(String),
    /// Any other reply (`+OK`, `HELLO`'s map, ...).
    Reply,
}

/// What a confirmation confirms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    Subscribe,
    Unsubscribe,
    PSubscribe,
    PUnsubscribe,
    SSubscribe,
    SUnsubscribe,
}

/// Bytes that are not RESP, or a reply past the bounds above.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed reply from redis: {0}")]
pub struct Malformed(pub String);

type Parsed<T> = Result<Option<T>, Malformed>;

fn bad<T>(why: impl Into<String>) -> Parsed<T> {
    Err(Malformed(why.into()))
}

/// Reads frames from a buffer that the connection keeps filling.
#[derive(Debug)]
pub struct Parser {
    /// `max_payload` as a length in this process's memory, settled once.
    limit: usize,
    /// Bytes still to stream past (a too-large element and its CRLF).
    skip: u64,
    /// Bulk strings still to stream past after `skip` (the rest of a
    /// too-large message).
    skip_bulks: usize,
    /// Bytes the incomplete frame at the front is known to need in all.
    need: usize,
}

impl Parser {
    /// A parser that streams past payloads larger than `max_payload`.
    pub fn new(max_payload: u64) -> Parser {
        Parser {
            limit: usize::try_from(max_payload).unwrap_or(usize::MAX),
            skip: 0,
            skip_bulks: 0,
            need: 0,
        }
    }

    /// How many bytes the buffer must hold, from its start, for the
    /// incomplete message at its front to be whole (as far as its headers
    /// read so far tell; 0 when nothing is known).
    pub fn need(&self) -> usize {
        self.need
    }

    /// The next frame, consumed from the front of `buf`; `Ok(None)` when
    /// more bytes are needed (the incomplete frame stays in `buf`).
    pub fn next(&mut self, buf: &mut BytesMut) -> Parsed<Frame> {
        self.need = 0;
        if !self.skipped(buf)? {
            return Ok(None);
        }
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let parsed = match first {
            b'*' | b'>' => self.aggregate(buf)?,
            b'+' => line(buf, 1)?.map(|(text, end)| {
                let pong = text.eq_ignore_ascii_case(b"PONG");
                (if pong { Frame::Pong } else { Frame::Reply }, end)
            }),
            b'-' => line(buf, 1)?.map(|(text, end)| (error(text), end)),
            b'!' => match bulk(buf, 0, b'!', NAME_MAX)? {
                None => None,
                Some(Bulk::Null(end)) => Some((Frame::Error(String::new()), end)),
                Some(Bulk::Data(r, end)) => Some((error(&buf[r]), end)),
                Some(Bulk::Long(len, _)) => return bad(format!("an error of {len} bytes")),
            },
            _ => measure(buf, 0, 0)?.map(|end| (Frame::Reply, end)),
        };
        Ok(parsed.map(|(frame, end)| {
            buf.advance(end);
            frame
        }))
    }

    /// Hands every whole frame buffered to `each`, in order, consuming it;
    /// stops at the first malformed one.
    pub fn each(
        &mut self,
        buf: &mut BytesMut,
        mut each: impl FnMut(Frame),
    ) -> Result<(), Malformed> {
        while let Some(frame) = self.next(buf)? {
            each(frame);
        }
        Ok(())
    }

    /// Streams past what a too-large message left; `true` once done.
    fn skipped(&mut self, buf: &mut BytesMut) -> Result<bool, Malformed> {
        loop {
            if self.skip > 0 {
                let n = self.skip.min(buf.len() as u64);
                // n <= buf.len(), so it fits in usize.
                buf.advance(n as usize);
                self.skip -= n;
                if self.skip > 0 {
                    return Ok(false);
                }
            }
            if self.skip_bulks == 0 {
                return Ok(true);
            }
            match header(buf, 0, b'$')? {
                None => return Ok(false),
                Some((len, at)) => {
                    buf.advance(at);
                    // A null (`$-1`) has no data and no CRLF.
                    self.skip = if len < 0 { 0 } else { len as u64 + 2 };
                    self.skip_bulks -= 1;
                }
            }
        }
    }

    /// An array or push frame at the front of `buf`: a message, a
    /// confirmation, a pong or another reply.
    fn aggregate(&mut self, buf: &mut BytesMut) -> Parsed<(Frame, usize)> {
        let Some((n, at)) = header(buf, 0, buf[0])? else {
            return Ok(None);
        };
        // An array whose first element is not a short bulk string is some
        // other reply (measured whole, which finds what is malformed).
        let (kind, at) = match bulk(buf, at, b'$', 16) {
            _ if n < 2 => (Kind::Other, at),
            Ok(None) => return Ok(None),
            Ok(Some(Bulk::Data(r, end))) => (Kind::of(&buf[r], n), end),
            _ => (Kind::Other, at),
        };
        let pattern = match kind {
            Kind::Message { pattern } => pattern,
            Kind::Confirm(c) => return Ok(measure(buf, 0, 0)?.map(|e| (Frame::Confirmed(c), e))),
            Kind::Pong => return Ok(measure(buf, 0, 0)?.map(|end| (Frame::Pong, end))),
            Kind::Other => return Ok(measure(buf, 0, 0)?.map(|end| (Frame::Reply, end))),
        };
        let (pattern, at) = if pattern {
            match bulk(buf, at, b'$', NAME_MAX)? {
                None => return self.wait(buf, at),
                Some(Bulk::Data(r, end)) => (Some(r), end),
                Some(Bulk::Long(len, _)) => return bad(format!("a pattern of {len} bytes")),
                Some(Bulk::Null(_)) => return bad("a message with a null pattern"),
            }
        } else {
            (None, at)
        };
        let (channel, at) = match bulk(buf, at, b'$', NAME_MAX)? {
            None => return self.wait(buf, at),
            Some(Bulk::Data(r, end)) => (r, end),
            Some(Bulk::Long(len, start)) => {
                // Stream past the name, then the payload.
                let frame = buf.split_to(start).freeze();
                self.skip = len + 2;
                self.skip_bulks = 1;
                let frame = Frame::TooLarge {
                    pattern: pattern.map(|r| frame.slice(r)),
                    channel: None,
                    len,
                };
                return Ok(Some((frame, 0)));
            }
            Some(Bulk::Null(_)) => return bad("a message with a null channel"),
        };
        match bulk(buf, at, b'$', self.limit)? {
            None => self.wait(buf, at),
            Some(Bulk::Data(payload, end)) => {
                let frame = buf.split_to(end).freeze();
                let frame = Frame::Message {
                    pattern: pattern.map(|r| frame.slice(r)),
                    channel: frame.slice(channel),
                    payload: frame.slice(payload),
                };
                // Consumed already (`split_to`).
                Ok(Some((frame, 0)))
            }
            Some(Bulk::Long(len, start)) => {
                let frame = buf.split_to(start).freeze();
                self.skip = len + 2;
                let frame = Frame::TooLarge {
                    pattern: pattern.map(|r| frame.slice(r)),
                    channel: Some(frame.slice(channel)),
                    len,
                };
                Ok(Some((frame, 0)))
            }
            Some(Bulk::Null(_)) => bad("a message with a null payload"),
        }
    }

    /// An incomplete message whose next element starts at `at`: notes how
    /// much the buffer must hold.
    fn wait<T>(&mut self, buf: &[u8], at: usize) -> Parsed<T> {
        self.need = match header(buf, at, b'$') {
            Ok(Some((len, data))) if len > 0 => data + len as usize + 2,
            _ => at + 32,
        };
        Ok(None)
    }
}

/// What an array's first element says it is.
enum Kind {
    Message { pattern: bool },
    Confirm(Confirm),
    Pong,
    Other,
}

impl Kind {
    fn of(kind: &[u8], n: i64) -> Kind {
        match (kind, n) {
            (b"message" | b"smessage", 3) => Kind::Message { pattern: false },
            (b"pmessage", 4) => Kind::Message { pattern: true },
            (b"pong", 2) => Kind::Pong,
            (_, 3) => match kind {
                b"subscribe" => Kind::Confirm(Confirm::Subscribe),
                b"unsubscribe" => Kind::Confirm(Confirm::Unsubscribe),
                b"psubscribe" => Kind::Confirm(Confirm::PSubscribe),
                b"punsubscribe" => Kind::Confirm(Confirm::PUnsubscribe),
                b"ssubscribe" => Kind::Confirm(Confirm::SSubscribe),
                b"sunsubscribe" => Kind::Confirm(Confirm::SUnsubscribe),
                _ => Kind::Other,
            },
            _ => Kind::Other,
        }
    }
}

fn error(text: &[u8]) -> Frame {
    Frame::Error(String::from_utf8_lossy(text).into_owned())
}

/// The line starting at `at` (after its type byte) and where the next
/// element starts; the line must end in CRLF.
fn line(buf: &[u8], at: usize) -> Parsed<(&[u8], usize)> {
    let rest = buf.get(at..).unwrap_or_default();
    let Some(lf) = rest.iter().take(LINE_MAX + 2).position(|&b| b == b'\n') else {
        if rest.len() > LINE_MAX + 1 {
            return bad(format!("a line longer than {LINE_MAX} bytes"));
        }
        return Ok(None);
    };
    if lf == 0 || rest[lf - 1] != b'\r' {
        return bad("a line that does not end in CRLF");
    }
    Ok(Some((&rest[..lf - 1], at + lf + 1)))
}

/// The length or count of the element at `at`, whose type byte must be
/// `kind`, and where its data starts.
fn header(buf: &[u8], at: usize, kind: u8) -> Parsed<(i64, usize)> {
    let Some(&first) = buf.get(at) else {
        return Ok(None);
    };
    if first != kind {
        return bad(format!(
            "{:?} where {:?} was expected",
            char::from(first),
            char::from(kind)
        ));
    }
    let Some((digits, end)) = line(buf, at + 1)? else {
        return Ok(None);
    };
    match number(digits) {
        Some(n) if n >= -1 => Ok(Some((n, end))),
        _ => bad(format!(
            "the length {:?}",
            String::from_utf8_lossy(&digits[..digits.len().min(32)])
        )),
    }
}

/// A decimal integer as RESP writes it (an optional `-`, then digits).
fn number(digits: &[u8]) -> Option<i64> {
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    Some(if negative { -n } else { n })
}

/// A bulk string read from the buffer.
enum Bulk {
    /// Its data, and where the next element starts.
    Data(std::ops::Range<usize>, usize),
    /// Null (`$-1`), and where the next element starts.
    Null(usize),
    /// Longer than the limit asked for: its length and where its data
    /// starts (its data is not read).
    Long(u64, usize),
}

/// The bulk string (type byte `kind`) at `at`, if no longer than `limit`.
fn bulk(buf: &[u8], at: usize, kind: u8, limit: usize) -> Parsed<Bulk> {
    let Some((len, start)) = header(buf, at, kind)? else {
        return Ok(None);
    };
    if len < 0 {
        return Ok(Some(Bulk::Null(start)));
    }
    let len = len as u64;
    if len > limit as u64 {
        return Ok(Some(Bulk::Long(len, start)));
    }
    // len <= limit, a usize.
    let end = start + len as usize;
    match buf.get(end..end + 2) {
        None => Ok(None),
        Some(b"\r\n") => Ok(Some(Bulk::Data(start..end, end + 2))),
        Some(_) => bad("a bulk string longer than its length says"),
    }
}

/// Where the reply element at `at` ends; any RESP2 or RESP3 type, bounded
/// by [`REPLY_MAX`] and [`DEPTH_MAX`].
fn measure(buf: &[u8], at: usize, depth: usize) -> Parsed<usize> {
    if depth > DEPTH_MAX {
        return bad(format!("a reply nested deeper than {DEPTH_MAX}"));
    }
    let Some(&first) = buf.get(at) else {
        return Ok(None);
    };
    let end = match first {
        b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => match line(buf, at + 1)? {
            Some((_, end)) => end,
            None => return Ok(None),
        },
        b'$' | b'!' | b'=' => match bulk(buf, at, first, NAME_MAX)? {
            None => return Ok(None),
            Some(Bulk::Data(_, end) | Bulk::Null(end)) => end,
            Some(Bulk::Long(len, _)) => return bad(format!("a reply element of {len} bytes")),
        },
        b'*' | b'>' | b'~' | b'%' | b'|' => {
            let Some((n, mut end)) = header(buf, at, first)? else {
                return Ok(None);
            };
            // A map's and an attribute's entries are pairs.
            let per = if matches!(first, b'%' | b'|') { 2 } else { 1 };
            let n = n.max(0) as u64 * per;
            if n > (REPLY_MAX / 3) as u64 {
                return bad(format!("a reply of {n} elements"));
            }
            for _ in 0..n {
                match measure(buf, end, depth + 1)? {
                    Some(next) => end = next,
                    None => return Ok(None),
                }
            }
            end
        }
        other => return bad(format!("a reply starting with byte {other:#04x}")),
    };
    if end > REPLY_MAX {
        return bad(format!("a reply longer than {REPLY_MAX} bytes"));
    }
    Ok(Some(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every frame of `bytes` fed in pieces of `chunk` bytes, and the
    /// error that ended them, if any.
    fn parse(limit: u64, bytes: &[u8], chunk: usize) -> (Vec<Frame>, Option<Malformed>) {
        let mut parser = Parser::new(limit);
        let (mut buf, mut frames) = (BytesMut::new(), Vec::new());
        for piece in bytes.chunks(chunk.max(1)) {
            buf.extend_from_slice(piece);
            if let Err(e) = parser.each(&mut buf, |f| frames.push(f)) {
                return (frames, Some(e));
            }
        }
        (frames, None)
    }

    /// The same frames, however the bytes are split.
    fn frames(limit: u64, bytes: &[u8]) -> Vec<Frame> {
        let (whole, err) = parse(limit, bytes, bytes.len());
        assert_eq!(err, None);
        for chunk in 1..bytes.len().min(64) {
            assert_eq!(
                parse(limit, bytes, chunk),
                (whole.clone(), None),
                "chunk {chunk}"
            );
        }
        whole
    }

    fn message(pattern: Option<&'static str>, channel: &'static str, payload: &[u8]) -> Frame {
        Frame::Message {
            pattern: pattern.map(|p| Bytes::from_static(p.as_bytes())),
            channel: Bytes::from_static(channel.as_bytes()),
            payload: Bytes::copy_from_slice(payload),
        }
    }

    #[test]
    fn resp2_messages_confirmations_and_pongs_split_anywhere() {
        let bytes = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n\
            *3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n\
            *4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$0\r\n\r\n\
            *2\r\n$4\r\npong\r\n$0\r\n\r\n\
            *3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n";
        assert_eq!(
            frames(16, bytes),
            [
                Frame::Confirmed(Confirm::Subscribe),
                message(None, "news", b"hello"),
                message(Some("n*"), "news", b""),
                Frame::Pong,
                Frame::Confirmed(Confirm::PUnsubscribe),
            ]
        );
    }

    #[test]
    fn resp3_push_frames_and_replies() {
        let bytes = b"%2\r\n+server\r\n+redis\r\n$5\r\nproto\r\n:3\r\n\
            >3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:1\r\n\
            >4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$2\r\nnb\r\n$3\r\n\x00\xff\n\r\n\
            +PONG\r\n+OK\r\n_\r\n-ERR no\r\n!3\r\nbad\r\n";
        assert_eq!(
            frames(16, bytes),
            [
                Frame::Reply,
                Frame::Confirmed(Confirm::PSubscribe),
                message(Some("n*"), "nb", b"\x00\xff\n"),
                Frame::Pong,
                Frame::Reply,
                Frame::Reply,
                Frame::Error("ERR no".into()),
                Frame::Error("bad".into()),
            ]
        );
    }

    #[test]
    fn a_payload_over_the_limit_is_streamed_past_and_the_next_message_read() {
        let mut bytes = b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$20\r\n".to_vec();
        bytes.extend_from_slice(&[b'x'; 20]);
        bytes.extend_from_slice(b"\r\n*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$3\r\nnew\r\n");
        let too_large = Frame::TooLarge {
            pattern: None,
            channel: Some(Bytes::from_static(b"c")),
            len: 20,
        };
        assert_eq!(frames(19, &bytes), [too_large, message(None, "c", b"new")]);
        // At the limit, a payload is read.
        assert_eq!(frames(20, &bytes)[0], message(None, "c", &[b'x'; 20]));
        // Never buffered whole: the buffer keeps at most a header.
        let mut parser = Parser::new(19);
        let mut buf = BytesMut::from(&bytes[..40]);
        assert!(matches!(
            parser.next(&mut buf),
            Ok(Some(Frame::TooLarge { .. }))
        ));
        assert_eq!(parser.next(&mut buf), Ok(None));
        assert!(buf.is_empty());
    }

    #[test]
    fn a_channel_name_over_the_limit_skips_the_message() {
        let mut bytes = b"*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n".to_vec();
        bytes.extend_from_slice(format!("${}\r\n", NAME_MAX + 1).as_bytes());
        bytes.extend_from_slice(&vec![b'c'; NAME_MAX + 1]);
        bytes.extend_from_slice(b"\r\n$2\r\nhi\r\n+PONG\r\n");
        let (got, err) = parse(16, &bytes, 1000);
        assert_eq!(err, None);
        let too_large = Frame::TooLarge {
            pattern: Some(Bytes::from_static(b"*")),
            channel: None,
            len: NAME_MAX as u64 + 1,
        };
        assert_eq!(got, [too_large, Frame::Pong]);
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        for bad in [
            &b"?\r\n"[..],
            b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nabc\r\n",
            b"*3\r\n$7\r\nmessage\r\n:1\r\n$1\r\na\r\n",
            b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$-1\r\n",
            b"$x\r\n",
            b"+PONG\n",
            b"*99999999999999999999\r\n",
            b"*3\r\n$-5\r\n",
        ] {
            let (frames, err) = parse(16, bad, bad.len());
            assert!(
                err.is_some(),
                "{:?} gave {frames:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = "*1\r\n".repeat(DEPTH_MAX + 2) + ":1\r\n";
        assert!(parse(16, deep.as_bytes(), 7).1.is_some());
        let long_line = vec![b'+'; LINE_MAX + 10];
        assert!(parse(16, &long_line, 100).1.is_some());
        // An incomplete frame is not an error: it waits.
        assert_eq!(parse(16, b"*3\r\n$7\r\nmess", 3), (vec![], None));
    }
}
