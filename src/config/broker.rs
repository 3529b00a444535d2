//! The broker URL, parsed once for the daemon (`mqtt.url`, `--mqtt`), the simulator
//! (`iocd simulate --mqtt`) and the demo.
//!
//! In: text such as `mqtt://host:port` or `mqtts://[::1]`. Out: a [`BrokerUrl`] (scheme,
//! host, port) or a [`BrokerUrlError`] saying what is wrong. User names and passwords are
//! not part of the URL: they have keys and flags of their own, so a secret never sits in a
//! URL that gets logged.

use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// Where the broker is: `mqtt://host:port` (plain TCP) or `mqtts://host:port` (TLS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or IP address (an IPv6 address without its brackets).
    host: String,
    /// TCP port, 1 to 65535.
    port: u16,
    /// `mqtts://`: connect with TLS.
    tls: bool,
}

/// Why a text is not a broker URL. Each message says what the URL must look like.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BrokerUrlError {
    /// Not `mqtt://` or `mqtts://`, or otherwise not the shape.
    #[error("must look like mqtt://host:port or mqtts://host:port (got `{0}`)")]
    Shape(String),
    /// A path, query or fragment after the host and port.
    #[error(
        "must look like mqtt://host:port or mqtts://host:port (got `{0}`): only a host and a \
         port are allowed"
    )]
    NotOnlyHostAndPort(String),
    /// `user:password@` in the URL (not repeated in the message: it may hold a password).
    #[error(
        "must look like mqtt://host:port or mqtts://host:port, without `user:password@`: put \
         the user name and password in mqtt.username and mqtt.password_env (iocd simulate: \
         --username and --password-env)"
    )]
    Credentials,
    /// An IPv6 address without brackets.
    #[error(
        "must look like mqtt://host:port or mqtts://host:port (got `{0}`): put an IPv6 \
         address in brackets"
    )]
    UnbracketedIpv6(String),
    /// No host.
    #[error(
        "must look like mqtt://host:port or mqtts://host:port (got `{0}`): the host is missing"
    )]
    NoHost(String),
    /// Something in brackets that is not an IPv6 address.
    #[error("`{0}` is not an IPv6 address")]
    NotIpv6(String),
    /// A port that is not 1 to 65535.
    #[error("`{0}` is not a port (1 to 65535)")]
    Port(String),
}

impl BrokerUrl {
    /// Host name or IP address; an IPv6 address without brackets.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The host as a socket library wants it next to a port: an IPv6 address in brackets
    /// (`[::1]`), anything else as it is. This is what `rumqttc` takes.
    #[must_use]
    pub fn connect_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// TCP port (1883 or 8883 when the URL has none).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether to connect with TLS (`mqtts://`).
    #[must_use]
    pub fn tls(&self) -> bool {
        self.tls
    }
}

/// `mqtt://ip:port`: a plain-TCP broker at a socket address (the embedded broker, the demo).
impl From<SocketAddr> for BrokerUrl {
    fn from(addr: SocketAddr) -> Self {
        Self {
            host: addr.ip().to_string(),
            port: addr.port(),
            tls: false,
        }
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        write!(f, "{scheme}://{}:{}", self.connect_host(), self.port)
    }
}

impl FromStr for BrokerUrl {
    type Err = BrokerUrlError;

    /// Parses `mqtt://host[:port]` or `mqtts://host[:port]` (default ports 1883 and 8883;
    /// IPv6 hosts in brackets; one trailing `/` allowed).
    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let shape = || BrokerUrlError::Shape(url.to_owned());
        let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(shape());
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('@') {
            return Err(BrokerUrlError::Credentials);
        }
        if rest.contains(['/', '?', '#']) || rest.contains(char::is_whitespace) {
            return Err(BrokerUrlError::NotOnlyHostAndPort(url.to_owned()));
        }
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, tail) = bracketed.split_once(']').ok_or_else(shape)?;
            if host.parse::<Ipv6Addr>().is_err() {
                return Err(BrokerUrlError::NotIpv6(host.to_owned()));
            }
            match tail {
                "" => (host, default_port),
                _ => (host, port(tail.strip_prefix(':').ok_or_else(shape)?)?),
            }
        } else {
            match rest.split_once(':') {
                Some((_, port)) if port.contains(':') => {
                    return Err(BrokerUrlError::UnbracketedIpv6(url.to_owned()));
                }
                Some((host, p)) => (host, port(p)?),
                None => (rest, default_port),
            }
        };
        if host.is_empty() {
            return Err(BrokerUrlError::NoHost(url.to_owned()));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

/// A port from 1 to 65535.
fn port(text: &str) -> Result<u16, BrokerUrlError> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(BrokerUrlError::Port(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> Result<(String, u16, bool), BrokerUrlError> {
        url.parse::<BrokerUrl>()
            .map(|u| (u.host().to_owned(), u.port(), u.tls()))
    }

    #[allow(clippy::unnecessary_wraps)] // compared with `parse`'s `Result`
    fn addr(host: &str, port: u16, tls: bool) -> Result<(String, u16, bool), BrokerUrlError> {
        Ok((host.to_owned(), port, tls))
    }

    #[test]
    fn broker_urls_take_default_ports_and_bracketed_ipv6() {
        assert_eq!(
            parts("mqtt://example.org"),
            addr("example.org", 1883, false)
        );
        assert_eq!(
            parts("mqtts://example.org"),
            addr("example.org", 8883, true)
        );
        assert_eq!(
            parts("mqtts://10.0.0.5:8884/"),
            addr("10.0.0.5", 8884, true)
        );
        assert_eq!(parts("mqtt://[::1]:1884"), addr("::1", 1884, false));
        assert_eq!(parts("mqtt://[::1]"), addr("::1", 1883, false));
        let v6: BrokerUrl = "mqtt://[::1]:1884".parse().unwrap();
        assert_eq!(v6.to_string(), "mqtt://[::1]:1884");
        assert_eq!(v6.connect_host(), "[::1]");
        for bad in [
            "",
            "tcp://host:1883",
            "http://x",
            "mqtt://",
            "mqtt://:1883",
            "mqtt://host:0",
            "mqtt://host:70000",
            "mqtt://host:x",
            "mqtt://host/topic",
            "mqtt://host?x=1",
            "mqtt://user@host",
            "mqtt://u:p@localhost:1999",
            "mqtt://::1",
            "mqtt://[::1",
            "mqtt://[nope]:1",
            "mqtt://[]:1883",
        ] {
            assert!(bad.parse::<BrokerUrl>().is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn credentials_in_the_url_point_to_the_keys_and_flags() {
        let err = "mqtt://u:p@localhost:1999"
            .parse::<BrokerUrl>()
            .unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains("mqtt.password_env") && shown.contains("--username"),
            "{shown}"
        );
        assert!(
            !shown.contains("u:p"),
            "the password is not repeated: {shown}"
        );
    }

    #[test]
    fn a_socket_address_is_a_plain_broker_url() {
        let url = BrokerUrl::from(SocketAddr::from(([127, 0, 0, 1], 1999)));
        assert_eq!(url.to_string(), "mqtt://127.0.0.1:1999");
        assert_eq!(
            (url.connect_host().as_str(), url.port()),
            ("127.0.0.1", 1999)
        );
    }
}
