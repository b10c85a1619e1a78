//! Several scenarios behind one port: connection 1 plays the first scenario, connection 2 the
//! second, and so on, starting over after the last (`agent mock FILE` without `--scenario`).
//!
//! Each scenario is a server of its own ([`ServerConfig`]), sharing only the listener: its
//! faults count its own connections from 0, and its violations are reported under its name.

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::Ordering},
};

use tokio::{sync::watch, task::JoinHandle};

use super::{ServerConfig, Shared, accept_loop, bind, lock};

/// Starts playlist servers; see the module docs.
#[derive(Debug)]
pub struct PlaylistServer;

impl PlaylistServer {
    /// Binds 127.0.0.1:`port` (0 = a free port) and serves `configs` in turn, one per
    /// connection; needs a running Tokio runtime and at least one config.
    pub fn start(configs: Vec<ServerConfig>, port: u16) -> std::io::Result<PlaylistHandle> {
        if configs.is_empty() {
            return Err(std::io::Error::other(
                "a playlist needs at least one scenario",
            ));
        }
        let (listener, addr) = bind(port)?;
        let servers: Vec<Arc<Shared>> = configs
            .into_iter()
            .map(|config| Arc::new(Shared::new(config)))
            .collect();
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, servers.clone(), stop_rx));
        Ok(PlaylistHandle {
            addr,
            servers,
            stop: stop_tx,
            task: Some(task),
        })
    }
}

/// A running playlist; dropping it stops the server and all its connections.
#[derive(Debug)]
pub struct PlaylistHandle {
    addr: SocketAddr,
    servers: Vec<Arc<Shared>>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl PlaylistHandle {
    /// The URL a client connects to: `ws://127.0.0.1:PORT/v1/realtime`.
    pub fn url(&self) -> String {
        format!("ws://{}/v1/realtime", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections each scenario served so far, in playlist order.
    pub fn connections(&self) -> Vec<usize> {
        self.servers
            .iter()
            .map(|shared| shared.connections.load(Ordering::SeqCst))
            .collect()
    }

    /// Protocol mistakes the clients made, each prefixed with its scenario's name.
    pub fn violations(&self) -> Vec<String> {
        self.servers
            .iter()
            .flat_map(|shared| {
                let name = shared.config.scenario.name.clone();
                lock(&shared.violations)
                    .iter()
                    .map(move |v| format!("scenario `{name}`, {v}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Stops accepting, closes every connection and waits until all tasks ended.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for PlaylistHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
