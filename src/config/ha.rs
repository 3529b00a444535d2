//! `[ha]`: this replica's name and its peers, when several iocd run side by side on a
//! clustered broker (docs/ha.md).
//!
//! In: the `[ha]` table as written. Out: [`HaSettings`] with the name checked and the peers'
//! URLs parsed, or the problems keyed `ha.*`.

use serde::Deserialize;

use super::check::Problems;

/// At most this many peers: a wall tries each in turn.
const MAX_PEERS: usize = 16;
/// The longest replica name (it is a label value and a field of every alert publication).
const MAX_NAME: usize = 64;

/// `[ha]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HaFile {
    replica: String,
    peers: Vec<PeerFile>,
}

/// One `[[ha.peers]]` entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerFile {
    name: String,
    url: String,
}

/// `[ha]`: who this replica is and where the others are.
#[derive(Clone, Debug, PartialEq)]
pub struct HaSettings {
    /// This replica's name; empty: a replica alone. When set, each alert published on
    /// `{prefix}/alerts/{rule}` carries it as `replica`, and the other replicas' alerts
    /// are read there so that all agree on each alert's `since`.
    pub replica: String,
    /// The other replicas, which the wall moves to when this one stops answering.
    pub peers: Vec<Peer>,
}

/// Another replica, as the wall reaches it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Peer {
    /// Its `[ha] replica` name, shown on the wall.
    pub name: String,
    /// Its HTTP base URL (`http://host:port`, or behind a proxy `https://host/path`), no
    /// trailing slash.
    pub url: String,
}

impl HaSettings {
    /// Whether this replica runs beside others (a name is set).
    #[must_use]
    pub fn is_replicated(&self) -> bool {
        !self.replica.is_empty()
    }

    /// The peers' origins (`scheme://host:port`), which may open this replica's WebSocket:
    /// a wall served by one replica moves to another.
    #[must_use]
    pub fn peer_origins(&self) -> Vec<String> {
        self.peers
            .iter()
            .filter_map(|p| reqwest::Url::parse(&p.url).ok())
            .map(|u| u.origin().ascii_serialization())
            .collect()
    }
}

/// Whether `name` is a usable replica name: 1 to 64 letters, digits, `.`, `_` or `-` (also
/// what a replica's alert publication must carry to be read).
#[must_use]
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl HaFile {
    pub(super) fn check(self, p: &mut Problems) -> Option<HaSettings> {
        let mut ok = true;
        if !self.replica.is_empty() && !valid_name(&self.replica) {
            p.add(
                "ha.replica",
                "must be 1 to 64 letters, digits, '.', '_' or '-' (or empty: one replica alone)",
            );
            ok = false;
        }
        if !self.peers.is_empty() && self.replica.is_empty() {
            p.add("ha.peers", "needs ha.replica: name this replica too");
            ok = false;
        }
        if self.peers.len() > MAX_PEERS {
            p.add("ha.peers", format!("at most {MAX_PEERS} peers"));
            ok = false;
        }
        let names: Vec<String> = self.peers.iter().map(|p| p.name.clone()).collect();
        let mut peers = Vec::with_capacity(self.peers.len());
        for (i, peer) in self.peers.into_iter().enumerate() {
            if !valid_name(&peer.name) || peer.name == self.replica {
                p.add(
                    format!("ha.peers[{i}].name"),
                    "must be 1 to 64 letters, digits, '.', '_' or '-', other than ha.replica",
                );
                ok = false;
            }
            if names[..i].contains(&peer.name) {
                p.add(format!("ha.peers[{i}].name"), "is listed twice");
                ok = false;
            }
            match reqwest::Url::parse(&peer.url) {
                // No user:password@ (the list is served to every wall), no query or fragment
                // (the wall adds `/ws` to it).
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.host().is_some()
                        && u.username().is_empty()
                        && u.password().is_none()
                        && u.query().is_none()
                        && u.fragment().is_none() =>
                {
                    peers.push(Peer {
                        name: peer.name,
                        url: peer.url.trim_end_matches('/').to_owned(),
                    });
                }
                _ => {
                    p.add(
                        format!("ha.peers[{i}].url"),
                        "must be an http:// or https:// URL: scheme, host, port and path \
                         only (no user:password@, query or fragment)",
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(HaSettings {
            replica: self.replica,
            peers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(replica: &str, peers: &[(&str, &str)]) -> (Option<HaSettings>, Vec<String>) {
        let file = HaFile {
            replica: replica.to_owned(),
            peers: peers
                .iter()
                .map(|(n, u)| PeerFile {
                    name: (*n).to_owned(),
                    url: (*u).to_owned(),
                })
                .collect(),
        };
        let mut p = Problems::default();
        let s = file.check(&mut p);
        (s, p.0.into_iter().map(|(k, _)| k).collect())
    }

    #[test]
    fn a_replica_alone_is_the_default() {
        let (s, problems) = check("", &[]);
        assert!(problems.is_empty());
        assert!(!s.is_some_and(|s| s.is_replicated()));
    }

    #[test]
    fn peers_are_named_urls_whose_origins_may_open_the_websocket() {
        let (s, problems) = check(
            "a",
            &[
                ("b", "http://10.0.0.2:8080/"),
                ("c", "https://ioc.example/wall-c"),
            ],
        );
        assert!(problems.is_empty(), "{problems:?}");
        let s = s.unwrap();
        assert_eq!(s.peers[0].url, "http://10.0.0.2:8080");
        assert_eq!(
            s.peer_origins(),
            vec![
                "http://10.0.0.2:8080".to_owned(),
                "https://ioc.example".to_owned()
            ]
        );
    }

    #[test]
    fn bad_names_and_urls_are_named_by_key() {
        let (s, problems) = check("a b", &[("a b", "ftp://x"), ("", "not a url")]);
        assert!(s.is_none());
        assert_eq!(
            problems,
            [
                "ha.replica",
                "ha.peers[0].name",
                "ha.peers[0].url",
                "ha.peers[1].name",
                "ha.peers[1].url"
            ]
        );
        let (_, problems) = check("", &[("b", "http://x:1")]);
        assert_eq!(problems, ["ha.peers"]);
        let (_, problems) = check(
            "a",
            &[
                ("b", "http://u:secret@x:1"),
                ("c", "http://x:1/?q"),
                ("c", "http://x:2"),
            ],
        );
        assert_eq!(
            problems,
            ["ha.peers[0].url", "ha.peers[1].url", "ha.peers[2].name"]
        );
    }
}
