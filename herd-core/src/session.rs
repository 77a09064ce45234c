//! Session IDs: caller-chosen strings, checked once at the edge.

use crate::error::{Error, ErrorKind};

/// The longest session ID herd accepts, in bytes.
pub const MAX_SESSION_ID_LEN: usize = 256;

/// Checks that `id` can be used as a session ID: not empty, at most
/// [`MAX_SESSION_ID_LEN`] bytes, and free of control characters (which would
/// let a caller forge log lines or header values).
pub fn validate_session_id(id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::new(ErrorKind::InvalidSessionId, "the session ID is empty"));
    }
    if id.len() > MAX_SESSION_ID_LEN {
        return Err(Error::new(
            ErrorKind::InvalidSessionId,
            format!("the session ID is {} bytes long; the limit is {MAX_SESSION_ID_LEN}", id.len()),
        ));
    }
    if let Some((at, c)) = id.char_indices().find(|(_, c)| c.is_control()) {
        return Err(Error::new(
            ErrorKind::InvalidSessionId,
            format!("the session ID contains a control character ({:?}) at byte {at}", c),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        for id in ["a", "user-42", "ümlaut-ok", &"x".repeat(MAX_SESSION_ID_LEN)] {
            assert!(validate_session_id(id).is_ok(), "{id:?}");
        }
    }

    #[test]
    fn rejects_empty_long_and_control() {
        for id in ["", "a\nb", "tab\there", "\u{7f}", "nul\0", &"x".repeat(MAX_SESSION_ID_LEN + 1)] {
            let err = validate_session_id(id).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidSessionId, "{id:?}");
        }
    }
}
