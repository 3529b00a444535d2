//! The embedded MQTT broker (rumqttd), for a small site or a test lab that does not run
//! its own broker, and for `iocd demo`. It listens on `[mqtt] embedded_listen`; the daemon
//! and any external publisher (vendors' feeds, `mosquitto_pub`) connect to it over TCP
//! like to any broker.
//!
//! rumqttd runs its router and listener on threads of its own and has no stop API: it
//! lives as long as the process. Its state is in memory only, so a production site with
//! durability needs should run Mosquitto (README, "Run in production").

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use tracing::{error, info};

/// Why the embedded broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The address is taken or cannot be bound.
    #[error(
        "cannot start the embedded MQTT broker on {addr}: {source} (is another broker, such as a \
         local Mosquitto, already listening there? choose another address with {hint})"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The flag or key that changes it.
        hint: &'static str,
        /// The bind error.
        source: std::io::Error,
    },
    /// rumqttd's thread could not be started.
    #[error("cannot start the embedded MQTT broker's thread: {0}")]
    Thread(std::io::Error),
}

/// A running embedded broker.
#[derive(Debug)]
pub struct EmbeddedBroker {
    /// Where it listens.
    pub addr: SocketAddr,
}

impl EmbeddedBroker {
    /// Starts rumqttd on `addr`, accepting payloads up to `max_packet_bytes`.
    ///
    /// The address is checked by binding it first, so a taken port is reported here with
    /// `hint` (the flag or key to change it) instead of as a log line from rumqttd's thread.
    ///
    /// # Errors
    /// [`BrokerError`] when the address is taken or the thread cannot start.
    pub async fn start(
        addr: SocketAddr,
        max_packet_bytes: usize,
        hint: &'static str,
    ) -> Result<Self, BrokerError> {
        drop(TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, hint, source })?);
        let connections = ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: max_packet_bytes,
            max_inflight_count: 500,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        };
        let server = ServerSettings {
            name: "iocd-embedded".into(),
            listen: addr,
            tls: None,
            next_connection_delay_ms: 1,
            connections,
        };
        let config = Config {
            id: 0,
            router: RouterConfig {
                max_connections: 10_010,
                max_outgoing_packet_count: 1000,
                max_segment_size: 100 * 1024 * 1024,
                max_segment_count: 10,
                ..RouterConfig::default()
            },
            v4: Some(HashMap::from([("1".to_owned(), server)])),
            ..Config::default()
        };
        std::thread::Builder::new()
            .name("embedded-broker".into())
            .spawn(move || {
                let mut broker = Broker::new(config);
                if let Err(e) = broker.start() {
                    error!(error = %e, "The embedded MQTT broker stopped.");
                }
            })
            .map_err(BrokerError::Thread)?;
        // rumqttd binds on its own thread: wait until it accepts connections, so the daemon's
        // first connection does not fail (and count as an error) for nothing.
        let target = if addr.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        } else {
            addr
        };
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while tokio::net::TcpStream::connect(target).await.is_err() {
            if tokio::time::Instant::now() >= deadline {
                return Err(BrokerError::Bind {
                    addr,
                    hint,
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the embedded broker did not start listening within 5 s",
                    ),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        info!(%addr, "Embedded MQTT broker listening.");
        Ok(Self { addr })
    }
}
