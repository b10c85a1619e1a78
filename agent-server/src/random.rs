//! Unguessable tokens from the system's random number generator: stream tokens, the console's
//! feed tokens, multipart boundaries.

use base64::Engine as _;
use ring::rand::{SecureRandom as _, SystemRandom};

/// The system's random number generator failed (it practically never does).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the system's random number generator failed; no token could be made")]
pub struct NoRandomness;

/// A fresh token: 256 random bits, URL-safe base64 without padding (43 characters).
pub fn token() -> Result<String, NoRandomness> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| NoRandomness)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_long_url_safe_and_different() {
        let (a, b) = (super::token().unwrap(), super::token().unwrap());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }
}
