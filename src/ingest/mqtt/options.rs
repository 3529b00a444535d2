//! From `[mqtt]` settings to rumqttc's options: TLS roots, client id and the input filters.
//! The URL, keepalive and inflight come typed and checked from the settings.

use std::sync::Arc;

use rumqttc::tokio_rustls::rustls;
use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use tracing::warn;

use super::publish::is_publishable_topic;
use crate::config::{MqttSettings, Secret};

/// The input sources, as the topic level right under the prefix (docs/contract.md §2).
pub(super) const SOURCES: [&str; 3] = ["onestop", "vc", "soc"];

/// Capacity of rumqttc's request channel (outgoing publishes, subscribe, disconnect).
///
/// It holds the dead letters and alerts produced while the link is down or slow: 1024 is
/// minutes of a bad-payload storm at realistic rates, and bounded memory (a dead letter is
/// usually well under 1 KiB). When it is full, [`Publisher::try_publish`] drops and counts.
pub(super) const REQUEST_CHANNEL_CAPACITY: usize = 1024;

/// The largest packet MQTT 3.1.1 can express (remaining length of 268,435,455 bytes).
///
/// Used as the *incoming* limit. A packet over rumqttc's limit is a connection error, and
/// with a persistent session the broker redelivers it after every reconnect, so the stream
/// halts for good (MQTT.md). The daemon cannot know the broker's `max_packet_size`
/// (Mosquitto's default is unlimited), so the only limit that can never halt it is the
/// protocol's. Oversized payloads reach the decoder, which rejects them as `too_large`.
/// Memory per packet is bounded by the broker's `max_packet_size`, which production brokers
/// should set (the daemon's `max_payload_bytes` plus headroom).
pub(super) const MQTT_MAX_PACKET_BYTES: usize = 268_435_455;

/// Headroom of an outgoing packet over its payload: fixed header, topic (at most 65,535
/// bytes plus its length) and packet id.
pub(super) const OUTGOING_HEADROOM_BYTES: usize = 70 * 1024;

/// A problem with the local MQTT setup, found before connecting.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A setting cannot be used as it is.
    #[error("mqtt.{key}: {reason}")]
    Setting {
        /// The key under `[mqtt]`.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA file could not be read.
    #[error("mqtt.ca_file: cannot read {path}: {source}")]
    CaFileUnreadable {
        /// The configured path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("mqtt.ca_file: {path} holds no usable PEM certificate: {reason}")]
    CaFileInvalid {
        /// The configured path.
        path: String,
        /// Why no certificate could be used.
        reason: String,
    },
    /// `mqtts://` without a CA file, and the system's root certificates could not be loaded.
    #[error("mqtt.ca_file is empty and no system root certificate could be loaded: {0}")]
    NoSystemRoots(String),
}

/// Builds rumqttc's options from the settings (STYLE section 7: in one place): one per
/// broker URL (`mqtt.url`, then `mqtt.other_urls`), the same client id in each, so that a
/// clustered broker resumes the session on whichever node iocd reaches.
pub(super) fn mqtt_options(
    settings: &MqttSettings,
    password: Option<&Secret>,
    max_out_payload: usize,
) -> Result<Vec<MqttOptions>, IngestError> {
    let client_id = client_id(settings)?;
    std::iter::once(&settings.url)
        .chain(&settings.other_urls)
        .map(|url| options_for(settings, url, &client_id, password, max_out_payload))
        .collect()
}

/// rumqttc's options to reach `broker` as `client_id`.
fn options_for(
    settings: &MqttSettings,
    broker: &crate::config::BrokerUrl,
    client_id: &str,
    password: Option<&Secret>,
    max_out_payload: usize,
) -> Result<MqttOptions, IngestError> {
    let mut options = MqttOptions::new(client_id, broker.connect_host(), broker.port());
    options
        .set_clean_session(!settings.persistent_session)
        .set_keep_alive(settings.keepalive)
        .set_inflight(settings.inflight.get())
        // Ingest acknowledges (once a message is in the pipeline queue or the event log),
        // never rumqttc as it reads: that is what makes the broker hold QoS 1 messages while
        // the pipeline is behind, with the event loop still polling (handoff.rs).
        .set_manual_acks(true)
        .set_request_channel_capacity(REQUEST_CHANNEL_CAPACITY)
        .set_max_packet_size(
            MQTT_MAX_PACKET_BYTES,
            max_out_payload + OUTGOING_HEADROOM_BYTES,
        );
    if !settings.username.is_empty() {
        let password = password.map_or("", Secret::expose);
        options.set_credentials(settings.username.clone(), password);
    }
    if broker.tls() {
        options.set_transport(Transport::tls_with_config(tls_config(&settings.ca_file)?));
    }
    Ok(options)
}

/// The configured client id; with a clean session and none configured, `iocd-` and a
/// random suffix so that two daemons never take over each other's connection.
pub(super) fn client_id(settings: &MqttSettings) -> Result<String, IngestError> {
    let id = settings.client_id.trim();
    if !id.is_empty() {
        return Ok(id.to_owned());
    }
    if settings.persistent_session {
        let reason = "must not be empty with a persistent session".to_owned();
        return Err(IngestError::Setting {
            key: "client_id",
            reason,
        });
    }
    Ok(format!("iocd-{:016x}", rand::random::<u64>()))
}

/// `{prefix}/onestop/#`, `{prefix}/vc/#`, `{prefix}/soc/#`.
pub(super) fn input_filters(prefix: &str) -> Result<Vec<String>, IngestError> {
    if prefix.is_empty() || prefix.ends_with('/') || !is_publishable_topic(prefix) {
        let reason =
            format!("{prefix:?} must be a non-empty topic without wildcards or a trailing '/'");
        return Err(IngestError::Setting {
            key: "prefix",
            reason,
        });
    }
    let mut filters: Vec<String> = SOURCES.iter().map(|s| format!("{prefix}/{s}/#")).collect();
    // Operator actions of the other replicas (and this one's own, back: a duplicate).
    filters.push(format!("{prefix}/{}", crate::state::ACTIONS_LEVEL));
    Ok(filters)
}

/// rustls configuration: the CA file's certificates, or the system's roots (`ca_file`
/// empty). Shared with `iocd simulate`.
///
/// # Errors
/// When the CA file cannot be read or holds no usable certificate, or no system root can
/// be loaded.
pub fn tls_config(ca_file: &str) -> Result<TlsConfiguration, IngestError> {
    let roots = if ca_file.is_empty() {
        system_roots()?
    } else {
        file_roots(ca_file)?
    };
    // The provider is named, not taken from the process: the pollers' HTTP client brings a
    // second one (ring), and with two compiled in rustls cannot choose by itself.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| IngestError::Setting {
            key: "url",
            reason: format!("TLS cannot be set up: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConfiguration::Rustls(Arc::new(config)))
}

fn file_roots(path: &str) -> Result<rustls::RootCertStore, IngestError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;

    let pem = std::fs::read(path).map_err(|source| IngestError::CaFileUnreadable {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |reason: String| IngestError::CaFileInvalid {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(invalid(format!(
            "{ignored} certificate(s) found, none usable"
        )));
    }
    Ok(roots)
}

fn system_roots() -> Result<rustls::RootCertStore, IngestError> {
    let found = rustls_native_certs::load_native_certs();
    for err in &found.errors {
        warn!(error = %err, "A system root certificate could not be loaded.");
    }
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let reason = found
            .errors
            .first()
            .map_or_else(|| "none found".to_owned(), ToString::to_string);
        return Err(IngestError::NoSystemRoots(reason));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_options_take_the_typed_url_keepalive_and_password() {
        let settings = MqttSettings {
            url: "mqtt://[::1]:1884".parse().unwrap(),
            keepalive: std::time::Duration::from_secs(7),
            username: "iocd".into(),
            ..MqttSettings::default()
        };
        let all = mqtt_options(&settings, Some(&"pw".into()), 1024).unwrap();
        assert_eq!(all.len(), 1);
        let options = &all[0];
        assert_eq!(options.broker_address(), ("[::1]".to_owned(), 1884));
        assert!(options.manual_acks(), "ingest acknowledges, never rumqttc");
        assert_eq!(options.keep_alive(), std::time::Duration::from_secs(7));
        assert_eq!(
            options.credentials().map(|l| (l.username, l.password)),
            Some(("iocd".to_owned(), "pw".into()))
        );
    }

    #[test]
    fn each_node_of_a_cluster_gets_options_with_the_same_client_id() {
        let settings = MqttSettings {
            url: "mqtt://10.0.0.1:1883".parse().unwrap(),
            other_urls: vec!["mqtt://10.0.0.2:1883".parse().unwrap()],
            client_id: "iocd-a".into(),
            ..MqttSettings::default()
        };
        let all = mqtt_options(&settings, None, 1024).unwrap();
        let seen: Vec<_> = all
            .iter()
            .map(|o| (o.broker_address(), o.client_id()))
            .collect();
        assert_eq!(
            seen,
            [
                (("10.0.0.1".to_owned(), 1883), "iocd-a".to_owned()),
                (("10.0.0.2".to_owned(), 1883), "iocd-a".to_owned())
            ]
        );
    }

    #[test]
    fn prefixes_with_wildcards_are_refused() {
        assert_eq!(input_filters("ioc/v1").map(|f| f.len()).ok(), Some(4));
        for bad in ["", "ioc/+", "ioc/#", "ioc/"] {
            assert!(input_filters(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_persistent_session_needs_a_client_id() {
        let mut s = MqttSettings {
            client_id: String::new(),
            ..MqttSettings::default()
        };
        assert!(client_id(&s).is_err());
        s.persistent_session = false;
        assert!(client_id(&s).is_ok_and(|id| id.starts_with("iocd-")));
    }

    #[test]
    fn an_unreadable_ca_file_is_named_in_the_error() {
        let err = file_roots("/nonexistent/ca.pem")
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("/nonexistent/ca.pem")));
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let Ok(dir) = tempfile::tempdir() else {
            panic!("temporary directory")
        };
        let path = dir.path().join("ca.pem");
        assert!(std::fs::write(&path, "not a certificate\n").is_ok());
        let path = path.to_string_lossy().into_owned();
        let err = file_roots(&path).err();
        assert!(matches!(&err, Some(IngestError::CaFileInvalid { path: p, .. }) if *p == path));
    }
}
