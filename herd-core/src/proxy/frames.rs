//! Frame boundaries in a WebSocket byte stream (RFC 6455 §5.2), so herd
//! can put a close frame of its own into the worker → client stream.
//!
//! herd forwards an upgraded connection as raw bytes. A frame injected in
//! the middle of another would corrupt the stream, so the worker → client
//! direction is watched frame by frame: only headers are parsed (2 to 14
//! bytes each), payloads are counted and skipped. Control frames may be
//! sent between the fragments of a message (§5.4), so any frame boundary
//! is a safe place for a close frame. Server frames are unmasked, but a
//! mask is skipped correctly too.

/// Where the stream is: inside a frame header, or in a payload.
#[derive(Debug, Clone, Default)]
pub(crate) struct FrameTracker {
    header: [u8; 14],
    have: usize,
    payload_left: u64,
    saw_close: bool,
}

const OPCODE_CLOSE: u8 = 0x8;

impl FrameTracker {
    /// Whether the bytes seen so far end exactly at a frame boundary.
    pub(crate) fn at_boundary(&self) -> bool {
        self.have == 0 && self.payload_left == 0
    }

    /// Whether the peer has sent a close frame.
    pub(crate) fn saw_close(&self) -> bool {
        self.saw_close
    }

    /// Follows `bytes` and returns how many of them to forward: all of
    /// them, or with `stop_at_boundary`, only up to the first boundary
    /// reached (possibly 0 when already at one).
    pub(crate) fn advance(&mut self, bytes: &[u8], stop_at_boundary: bool) -> usize {
        let mut at = 0;
        while at < bytes.len() {
            if stop_at_boundary && self.at_boundary() {
                return at;
            }
            if self.payload_left > 0 {
                let take = self.payload_left.min((bytes.len() - at) as u64);
                self.payload_left -= take;
                at += take as usize;
                continue;
            }
            self.header[self.have] = bytes[at];
            self.have += 1;
            at += 1;
            if let Some(payload) = self.complete_header() {
                if self.header[0] & 0x0f == OPCODE_CLOSE {
                    self.saw_close = true;
                }
                self.have = 0;
                self.payload_left = payload;
            }
        }
        at
    }

    /// The payload length once the header bytes so far form a whole header.
    fn complete_header(&self) -> Option<u64> {
        if self.have < 2 {
            return None;
        }
        let masked = self.header[1] & 0x80 != 0;
        let short = u64::from(self.header[1] & 0x7f);
        let extended = match short {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let needed = 2 + extended + if masked { 4 } else { 0 };
        if self.have < needed {
            return None;
        }
        Some(match extended {
            2 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            8 => u64::from_be_bytes(self.header[2..10].try_into().unwrap_or([0; 8])),
            _ => short,
        })
    }
}

/// A close frame from a server (unmasked) with `code` and `reason`; the
/// reason is cut to fit the 125-byte control frame payload, on a character
/// boundary.
pub(crate) fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let reason = &reason.as_bytes()[..cut];
    let mut frame = Vec::with_capacity(4 + reason.len());
    frame.push(0x80 | OPCODE_CLOSE);
    frame.push((2 + reason.len()) as u8);
    frame.extend_from_slice(&code.to_be_bytes());
    frame.extend_from_slice(reason);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(opcode: u8, payload_len: usize, masked: bool) -> Vec<u8> {
        let mut f = vec![0x80 | opcode];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload_len {
            n if n < 126 => f.push(mask_bit | n as u8),
            n if n <= 0xffff => {
                f.push(mask_bit | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(mask_bit | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            f.extend_from_slice(&[1, 2, 3, 4]);
        }
        f.extend(std::iter::repeat_n(b'x', payload_len));
        f
    }

    #[test]
    fn follows_frames_of_every_length_split_anywhere() {
        let mut stream = Vec::new();
        let mut boundaries = vec![0];
        for (len, masked) in [(0, false), (5, false), (125, true), (126, false), (70_000, false), (3, true)] {
            stream.extend(frame(0x2, len, masked));
            boundaries.push(stream.len());
        }
        for chunk in [1, 2, 3, 7, 100, 4096, stream.len()] {
            let mut t = FrameTracker::default();
            let mut seen = 0;
            for piece in stream.chunks(chunk) {
                assert_eq!(t.advance(piece, false), piece.len());
                seen += piece.len();
                assert_eq!(t.at_boundary(), boundaries.contains(&seen), "chunk {chunk}, at {seen}");
            }
        }
    }

    #[test]
    fn stops_at_the_next_boundary_when_asked() {
        let mut stream = frame(0x1, 10, false);
        let first = stream.len();
        stream.extend(frame(0x1, 10, false));
        let mut t = FrameTracker::default();
        assert_eq!(t.advance(&stream[..3], false), 3);
        assert_eq!(t.advance(&stream[3..], true), first - 3);
        assert!(t.at_boundary());
        assert_eq!(t.advance(&stream[first..], true), 0);
    }

    #[test]
    fn notices_close_frames_and_builds_them() {
        let close = close_frame(1001, "session ended: idle_timeout");
        let mut t = FrameTracker::default();
        t.advance(&close, false);
        assert!(t.saw_close() && t.at_boundary());
        assert_eq!(&close[..4], &[0x88, 2 + 27, 0x03, 0xe9]);
        let long = close_frame(1000, &"é".repeat(100));
        assert!(long.len() <= 127 && (long[1] as usize) == long.len() - 2);
    }
}
