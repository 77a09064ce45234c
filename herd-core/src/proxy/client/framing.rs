//! Where a body ends (RFC 9112 §6.3 and §7.1): after `Content-Length`
//! bytes, after the last chunk and its trailer section, or when the sender
//! closes the connection.
//!
//! [`Decoder`] reads only framing. It tells its caller which bytes are
//! framing (chunk lines, the CRLF after chunk data, trailers) and which
//! are body data, so the caller hands the data on straight from its read
//! buffer. Chunk extensions and trailer fields are checked and skipped,
//! never forwarded (as with hyper's client before: herd strips `Trailer`
//! as a hop-by-hop header, so the client was never promised any).
//!
//! Taken from the unmerged `proxyperf` branch (d53e94c), with its tests.

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    None,
    /// `Content-Length` bytes (more than 0).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the sender closes the connection (responses only).
    UntilClose,
}

/// A body whose framing is broken; the text says how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FramingError(pub &'static str);

impl std::fmt::Display for FramingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A piece of a body at the front of some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// Framing bytes before the data.
    pub framing: usize,
    /// Body data bytes right after the framing bytes.
    pub data: usize,
    /// The body ends right after these bytes.
    pub end: bool,
}

impl Span {
    /// Bytes of the body, framing and data, in this span.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.framing + self.data
    }
}

/// Chunk extensions and trailer fields are skipped, up to this many bytes
/// per body (hyper's limit is the same order): more is refused.
const MAX_OVERHEAD: usize = 16 * 1024;

/// Follows the framing of one body.
#[derive(Debug, Clone)]
pub(crate) struct Decoder {
    state: State,
    /// Chunk-extension and trailer bytes seen so far.
    overhead: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Bytes left of a `Content-Length` body.
    Length(u64),
    UntilClose,
    /// Reading a chunk size: its value so far and whether a digit was seen.
    Size {
        size: u64,
        digits: bool,
    },
    /// After the size: whitespace and extensions up to CR.
    Extension {
        size: u64,
    },
    /// The LF ending a chunk-size line.
    SizeLf {
        size: u64,
    },
    /// Bytes left of the chunk's data.
    Data(u64),
    /// The CRLF after chunk data.
    DataCr,
    DataLf,
    /// At the start of a trailer line, or of the final CRLF.
    TrailerStart,
    /// Inside a trailer field line.
    TrailerLine,
    TrailerLf,
    /// The LF of the final CRLF.
    EndLf,
    Done,
}

impl Decoder {
    pub(crate) fn new(framing: Framing) -> Decoder {
        let state = match framing {
            Framing::None => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Size { size: 0, digits: false },
            Framing::UntilClose => State::UntilClose,
        };
        Decoder { state, overhead: 0 }
    }

    /// Whether the whole body has been seen.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done || self.state == State::Length(0)
    }

    /// Body bytes still to come, when known (a `Content-Length` body).
    pub(crate) fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(left) => Some(left),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// The sender closed its side. Fine for a body that runs until close
    /// (it is now complete), an error for any other unfinished body.
    pub(crate) fn closed(&mut self) -> Result<(), FramingError> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            State::Length(0) => Ok(()),
            _ => Err(FramingError("the connection closed before the end of the body")),
        }
    }

    /// Follows the framing at the front of `bytes` up to the first body
    /// data (returned as `data`, which counts as seen), the end of the
    /// body, or the end of `bytes`.
    pub(crate) fn decode(&mut self, bytes: &[u8]) -> Result<Span, FramingError> {
        let mut at = 0;
        loop {
            let span = |data, end| Span { framing: at, data, end };
            match self.state {
                State::Done => return Ok(span(0, true)),
                State::Length(left) => {
                    let n = left.min((bytes.len() - at) as u64);
                    self.state = State::Length(left - n);
                    return Ok(span(n as usize, left == n));
                }
                State::UntilClose => return Ok(span(bytes.len() - at, false)),
                State::Data(left) => {
                    let n = left.min((bytes.len() - at) as u64);
                    self.state = if n == left { State::DataCr } else { State::Data(left - n) };
                    return Ok(span(n as usize, false));
                }
                _ if at == bytes.len() => return Ok(span(0, false)),
                _ => {}
            }
            let b = bytes[at];
            at += 1;
            self.state = match self.state {
                State::Size { size, digits } => match (b as char).to_digit(16) {
                    Some(v) => {
                        if size > u64::MAX >> 4 {
                            return Err(FramingError("chunk size too large"));
                        }
                        State::Size { size: size << 4 | u64::from(v), digits: true }
                    }
                    None if !digits => return Err(FramingError("chunk size missing")),
                    None => match b {
                        b'\r' => State::SizeLf { size },
                        b';' | b' ' | b'\t' => State::Extension { size },
                        _ => return Err(FramingError("invalid chunk size line")),
                    },
                },
                State::Extension { size } => match b {
                    b'\r' => State::SizeLf { size },
                    b'\n' => return Err(FramingError("bare LF in a chunk size line")),
                    _ => {
                        self.skip_overhead()?;
                        State::Extension { size }
                    }
                },
                State::SizeLf { size } => match (b, size) {
                    (b'\n', 0) => State::TrailerStart,
                    (b'\n', size) => State::Data(size),
                    _ => return Err(FramingError("chunk size line not ended by CRLF")),
                },
                State::DataCr if b == b'\r' => State::DataLf,
                State::DataLf if b == b'\n' => State::Size { size: 0, digits: false },
                State::DataCr | State::DataLf => return Err(FramingError("chunk data not followed by CRLF")),
                State::TrailerStart | State::TrailerLine if b == b'\n' => {
                    return Err(FramingError("bare LF in the trailer section"));
                }
                State::TrailerStart if b == b'\r' => State::EndLf,
                State::TrailerLine if b == b'\r' => State::TrailerLf,
                State::TrailerStart | State::TrailerLine => {
                    self.skip_overhead()?;
                    State::TrailerLine
                }
                State::TrailerLf if b == b'\n' => State::TrailerStart,
                State::EndLf if b == b'\n' => State::Done,
                State::TrailerLf | State::EndLf => {
                    return Err(FramingError("trailer line not ended by CRLF"));
                }
                State::Length(_) | State::UntilClose | State::Data(_) | State::Done => {
                    unreachable!("handled above")
                }
            };
        }
    }

    /// How many bytes at the front of `bytes` belong to the body, framing
    /// and data alike, and whether the body ends there.
    #[cfg(test)]
    pub(crate) fn scan(&mut self, bytes: &[u8]) -> Result<(usize, bool), FramingError> {
        let mut at = 0;
        loop {
            let span = self.decode(&bytes[at..])?;
            at += span.len();
            if span.end || span.len() == 0 {
                return Ok((at, span.end));
            }
        }
    }

    fn skip_overhead(&mut self) -> Result<(), FramingError> {
        self.overhead += 1;
        if self.overhead > MAX_OVERHEAD {
            return Err(FramingError("chunk extensions or trailers too large"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` fed in pieces of `piece` bytes; returns the data and
    /// how many bytes the body took.
    fn decode_in_pieces(
        framing: Framing,
        wire: &[u8],
        piece: usize,
    ) -> Result<(Vec<u8>, usize), FramingError> {
        let mut decoder = Decoder::new(framing);
        let (mut data, mut pending, mut used) = (Vec::new(), Vec::new(), 0);
        for chunk in wire.chunks(piece.max(1)) {
            pending.extend_from_slice(chunk);
            loop {
                let span = decoder.decode(&pending)?;
                data.extend_from_slice(&pending[span.framing..span.len()]);
                pending.drain(..span.len());
                used += span.len();
                if span.end {
                    return Ok((data, used));
                }
                if span.len() == 0 {
                    break;
                }
            }
        }
        decoder.closed()?;
        Ok((data, used))
    }

    const CHUNKED: &[u8] =
        b"5\r\nhello\r\n1;name=\"v\"\r\n \r\n00A \r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";

    #[test]
    fn chunked_bodies_decode_the_same_however_they_are_split() {
        for piece in [1, 2, 3, 5, 8, 13, CHUNKED.len()] {
            let (data, used) = decode_in_pieces(Framing::Chunked, CHUNKED, piece).unwrap();
            assert_eq!(data, b"hello 0123456789", "pieces of {piece}");
            assert_eq!(used, CHUNKED.len() - 4, "the body ends before NEXT (pieces of {piece})");
        }
        let mut decoder = Decoder::new(Framing::Chunked);
        assert_eq!(decoder.scan(CHUNKED).unwrap(), (CHUNKED.len() - 4, true));
        assert!(decoder.is_done());
    }

    #[test]
    fn broken_chunked_framing_is_refused() {
        for wire in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"5 x\nhello",
            b"0\r\n\r\r",
            b"0\r\nX: y\n\r\n",
            b"fffffffffffffffff\r\n",
        ] {
            assert!(
                decode_in_pieces(Framing::Chunked, wire, 1).is_err(),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        let huge = format!("1;{}\r\n", "e".repeat(MAX_OVERHEAD + 1));
        assert!(decode_in_pieces(Framing::Chunked, huge.as_bytes(), 4096).is_err());
        let cut = decode_in_pieces(Framing::Chunked, b"5\r\nhel", 2).unwrap_err();
        assert_eq!(cut.0, "the connection closed before the end of the body");
    }

    #[test]
    fn length_until_close_and_empty_bodies() {
        assert_eq!(decode_in_pieces(Framing::Length(5), b"helloNEXT", 3).unwrap(), (b"hello".to_vec(), 5));
        assert!(decode_in_pieces(Framing::Length(5), b"hel", 3).is_err(), "closed early");
        assert_eq!(decode_in_pieces(Framing::UntilClose, b"all of it", 4).unwrap().0, b"all of it");
        let mut none = Decoder::new(Framing::None);
        assert!(none.is_done());
        assert_eq!(none.decode(b"NEXT").unwrap(), Span { framing: 0, data: 0, end: true });
        let mut length = Decoder::new(Framing::Length(3));
        assert_eq!(length.scan(b"abcdef").unwrap(), (3, true));
        assert!(length.is_done());
    }
}
