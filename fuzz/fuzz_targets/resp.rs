//! Fuzzes the pub/sub frame parser (`src/source/resp.rs`) on arbitrary
//! bytes in arbitrary chunkings. The first byte is the payload limit
//! (0-255 bytes, so that too-large payloads are common), the second seeds
//! the chunk sizes; the rest is what the server sends. Checks:
//! - never a panic;
//! - no message payload longer than the limit, and a too-large one is
//!   larger than it;
//! - bytes split anywhere parse as the same frames, ending in the same
//!   error (or none), as the bytes whole.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/source/resp.rs"]
mod resp;

use resp::{Frame, Malformed, Parser};

fuzz_target!(|data: &[u8]| {
    let [limit, seed, stream @ ..] = data else {
        return;
    };
    let limit = u64::from(*limit);
    let whole = frames(limit, stream, |_| stream.len().max(1));
    let mut state = u32::from(*seed) | 1;
    let chunked = frames(limit, stream, |_| {
        // A small xorshift: chunks of 1 to 16 bytes, mostly short.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 16 + 1) as usize
    });
    assert_eq!(whole, chunked, "a split changed what was parsed");
    for frame in &whole.0 {
        match frame {
            Frame::Message { payload, .. } => assert!(payload.len() as u64 <= limit),
            Frame::TooLarge {
                channel: Some(_),
                len,
                ..
            } => assert!(*len > limit),
            _ => {}
        }
    }
});

/// Feeds `stream` in pieces of `next_size()` bytes, reading every frame
/// after each; returns the frames and the error that ended them.
fn frames(
    limit: u64,
    mut stream: &[u8],
    mut next_size: impl FnMut(usize) -> usize,
) -> (Vec<Frame>, Option<Malformed>) {
    let mut parser = Parser::new(limit);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    while !stream.is_empty() {
        let (piece, rest) = stream.split_at(next_size(buf.len()).min(stream.len()));
        stream = rest;
        buf.extend_from_slice(piece);
        // Frame by frame, not `Parser::each`: `next` itself is under test.
        let error = loop {
            match parser.next(&mut buf) {
                Ok(Some(frame)) => out.push(frame),
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        if error.is_some() {
            return (out, error);
        }
    }
    (out, None)
}
