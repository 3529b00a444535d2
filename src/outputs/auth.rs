//! Access control of docs/contract.md §4: bearer tokens for `/ws` and `/api/*` (and
//! `/metrics` when `protect_metrics` is on), and the `Origin` allow-list for `/ws`.
//!
//! Tokens are compared in constant time (`subtle`), against every configured token, so
//! neither the position of the first wrong byte nor which token matched leaks in timing.

use axum::http::{HeaderMap, StatusCode, header};
use subtle::{ConditionallySelectable as _, ConstantTimeEq as _};

use crate::config::HttpSettings;
use crate::decode::action::{Actor, Role};

/// Who may use the protected endpoints.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// Every reading token (access tokens and named tokens)…
    tokens: Vec<Vec<u8>>,
    /// … and who holds each, in the same order.
    holders: Vec<Actor>,
    /// Tokens of the `ingest` scope: HTTP ingest only.
    ingest_tokens: Vec<Vec<u8>>,
    /// Whether `/metrics` needs a token.
    pub protect_metrics: bool,
    allowed_origins: Vec<String>,
}

impl Access {
    /// From the `[http]` settings.
    #[must_use]
    pub fn from_settings(s: &HttpSettings) -> Self {
        let unnamed = s.access_tokens.iter().enumerate().map(|(i, t)| {
            let holder = Actor {
                name: format!("access token {}", i + 1).into(),
                role: Role::Viewer,
            };
            (t.expose().as_bytes().to_vec(), holder)
        });
        let named = s.tokens.iter().map(|t| {
            let holder = Actor {
                name: t.name.as_str().into(),
                role: t.role,
            };
            (t.token.expose().as_bytes().to_vec(), holder)
        });
        let (tokens, holders) = unnamed.chain(named).unzip();
        Self {
            tokens,
            holders,
            ingest_tokens: s
                .ingest_tokens
                .iter()
                .map(|t| t.expose().as_bytes().to_vec())
                .collect(),
            protect_metrics: s.protect_metrics,
            allowed_origins: s.allowed_origins.clone(),
        }
    }

    /// Lets pages of `origins` open the WebSocket too: the other replicas' (`[ha] peers`),
    /// whose wall moves here when its own replica stops answering.
    #[must_use]
    pub fn with_origins(mut self, origins: Vec<String>) -> Self {
        for o in origins {
            if !self
                .allowed_origins
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&o))
            {
                self.allowed_origins.push(o);
            }
        }
        self
    }

    /// Checks the bearer token of an HTTP ingest request: an `ingest` token. With no
    /// token of either scope configured, ingest is as open as reading.
    ///
    /// # Errors
    /// 401 when no ingest token given matches; 403 when ingest tokens are not configured
    /// but access tokens are (HTTP ingest is closed then).
    pub fn check_ingest(&self, headers: &HeaderMap, query: Option<&str>) -> Result<(), StatusCode> {
        match (self.ingest_tokens.is_empty(), self.tokens.is_empty()) {
            (true, true) => Ok(()),
            (true, false) => Err(StatusCode::FORBIDDEN),
            (false, _) => match_any(&self.ingest_tokens, headers, query).map(|_| ()),
        }
    }

    /// Who is asking, and whether they may act as `role`: the holder of the bearer token
    /// given. With no token configured at all, everyone is an operator named `local` (only
    /// safe on a local address, as the rest of the open mode); with ingest tokens alone,
    /// nobody may act (403).
    ///
    /// # Errors
    /// 401 when tokens are configured and none given matches; 403 when the token's role is
    /// below `role`.
    pub fn check_role(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        role: Role,
    ) -> Result<Actor, StatusCode> {
        let holder = if self.tokens.is_empty() && self.ingest_tokens.is_empty() {
            Actor {
                name: "local".into(),
                role: Role::Operator,
            }
        } else if self.tokens.is_empty() {
            // Ingest tokens but no reading token: not the open mode, and nobody is named.
            return Err(StatusCode::FORBIDDEN);
        } else {
            let i = match_any(&self.tokens, headers, query)?;
            self.holders
                .get(i)
                .cloned()
                .ok_or(StatusCode::UNAUTHORIZED)?
        };
        if holder.role >= role {
            Ok(holder)
        } else {
            Err(StatusCode::FORBIDDEN)
        }
    }

    /// Checks the bearer token in `Authorization` or the `token` query parameter.
    ///
    /// # Errors
    /// 401 when tokens are configured and none given matches.
    pub fn check_token(&self, headers: &HeaderMap, query: Option<&str>) -> Result<(), StatusCode> {
        if self.tokens.is_empty() {
            return Ok(());
        }
        match_any(&self.tokens, headers, query).map(|_| ())
    }

    /// Checks the `Origin` of a WebSocket upgrade: absent (not a browser), the daemon's own
    /// (same host and port as `Host`), or listed in `allowed_origins`.
    ///
    /// # Errors
    /// 403 for any other origin.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), StatusCode> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let origin = origin.to_str().map_err(|_| StatusCode::FORBIDDEN)?;
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let own = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|rest| !host.is_empty() && rest.eq_ignore_ascii_case(host));
        if own
            || self
                .allowed_origins
                .iter()
                .any(|o| o.eq_ignore_ascii_case(origin))
        {
            Ok(())
        } else {
            Err(StatusCode::FORBIDDEN)
        }
    }
}

/// Which of `tokens` the bearer token in `Authorization` or the `token` query parameter is
/// (compared in constant time with each).
fn match_any(
    tokens: &[Vec<u8>],
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<usize, StatusCode> {
    // `Bearer <token>`; the scheme is case-insensitive (RFC 7235 §2.1).
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_start().split_once(' '))
        .and_then(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer").then_some(token))
        .map(str::trim);
    let from_query = query.and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .map(percent_decode)
    });
    let given = from_header.map(str::to_owned).or(from_query);
    let Some(given) = given else {
        return Err(StatusCode::UNAUTHORIZED);
    };
    let mut ok = subtle::Choice::from(0);
    let mut which = 0u32;
    for (i, t) in tokens.iter().enumerate() {
        let eq = t.as_slice().ct_eq(given.as_bytes());
        which.conditional_assign(&u32::try_from(i).unwrap_or(u32::MAX), eq);
        ok |= eq;
    }
    if bool::from(ok) {
        Ok(which as usize)
    } else {
        Err(StatusCode::UNAUTHORIZED)
    }
}

/// Decodes `%XX` escapes of a query value (tokens are usually plain ASCII).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn access() -> Access {
        Access::from_settings(&HttpSettings {
            access_tokens: vec!["0123456789abcdef".into(), "fedcba9876543210".into()],
            allowed_origins: vec!["https://wall.example".into()],
            ..HttpSettings::default()
        })
    }

    #[test]
    fn any_configured_token_opens_by_header_or_query() {
        let a = access();
        let mut h = HeaderMap::new();
        assert_eq!(a.check_token(&h, None), Err(StatusCode::UNAUTHORIZED));
        assert_eq!(
            a.check_token(&h, Some("x=1&token=fedcba9876543210")),
            Ok(())
        );
        assert_eq!(
            a.check_token(&h, Some("token=fedcba987654321")),
            Err(StatusCode::UNAUTHORIZED)
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer 0123456789abcdef"),
        );
        assert_eq!(a.check_token(&h, None), Ok(()));
        for any_case in [
            "bearer 0123456789abcdef",
            "BEARER  0123456789abcdef",
            "bEaReR 0123456789abcdef ",
        ] {
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(any_case));
            assert_eq!(a.check_token(&h, None), Ok(()), "{any_case}");
        }
        for wrong in [
            "Bearer0123456789abcdef",
            "Bearers 0123456789abcdef",
            "bearer",
            "0123456789abcdef",
        ] {
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(wrong));
            assert_eq!(
                a.check_token(&h, None),
                Err(StatusCode::UNAUTHORIZED),
                "{wrong}"
            );
        }
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic 0123456789abcdef"),
        );
        assert_eq!(a.check_token(&h, None), Err(StatusCode::UNAUTHORIZED));
        assert_eq!(
            Access::default().check_token(&HeaderMap::new(), None),
            Ok(())
        );
    }

    #[test]
    fn only_the_own_and_listed_origins_may_open_the_socket() {
        let a = access();
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert_eq!(a.check_origin(&h), Ok(()));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert_eq!(a.check_origin(&h), Ok(()));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://wall.example"),
        );
        assert_eq!(a.check_origin(&h), Ok(()));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:9999"),
        );
        assert_eq!(a.check_origin(&h), Err(StatusCode::FORBIDDEN));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert_eq!(a.check_origin(&h), Err(StatusCode::FORBIDDEN));
    }

    #[test]
    fn actions_need_an_operator_and_the_open_mode_only_without_any_token() {
        use crate::config::NamedToken;
        let h = |t: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(t));
            h
        };
        let open = Access::default();
        let local = open.check_role(&HeaderMap::new(), None, Role::Operator);
        assert_eq!(local.map(|a| a.name.to_string()), Ok("local".to_owned()));
        let named = Access::from_settings(&HttpSettings {
            access_tokens: vec!["viewer-0123456789ab".into()],
            tokens: vec![NamedToken {
                name: "Trực ban ca 1".into(),
                role: Role::Operator,
                token: "operator-0123456789".into(),
            }],
            ..HttpSettings::default()
        });
        assert_eq!(
            named.check_role(&HeaderMap::new(), None, Role::Operator),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            named.check_role(&h("Bearer viewer-0123456789ab"), None, Role::Operator),
            Err(StatusCode::FORBIDDEN)
        );
        let op = named.check_role(&h("Bearer operator-0123456789"), None, Role::Operator);
        assert_eq!(
            op.map(|a| a.name.to_string()),
            Ok("Trực ban ca 1".to_owned())
        );
        let ingest_only = Access::from_settings(&HttpSettings {
            ingest_tokens: vec!["ingest-0123456789ab".into()],
            ..HttpSettings::default()
        });
        assert_eq!(
            ingest_only.check_role(&HeaderMap::new(), None, Role::Operator),
            Err(StatusCode::FORBIDDEN),
            "ingest tokens alone are not the open mode"
        );
    }
}
