//! TLS set-up shared by every client in the process (the Realtime WebSocket, HTTP tools).
//!
//! rustls 0.23 needs a process-wide crypto provider before the first client is built; the
//! workspace uses `ring`. Call [`ensure_crypto_provider`] before building one: it installs the
//! provider once and is free afterwards.

use std::sync::Once;

/// Installs rustls' `ring` provider as the process default, once. If the embedding program
/// installed a provider already, that one stays.
pub fn ensure_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means a provider is already installed: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
