//! The wall display: one page for the IOC's screens, embedded in the binary so that the
//! daemon alone serves it (no web server, no build step). The page connects to `/ws`.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("wall/index.html");
const SCRIPT: &str = include_str!("wall/wall.js");
const I18N: &str = include_str!("wall/i18n.js");
const STYLE: &str = include_str!("wall/wall.css");
const AGENCY: &str = include_str!("wall/agency.html");
const AGENCY_SCRIPT: &str = include_str!("wall/agency.js");
const OPS: &str = include_str!("wall/ops.html");
const SCORECARD: &str = include_str!("wall/scorecard.html");
const SCORECARD_SCRIPT: &str = include_str!("wall/scorecard.js");
const OPS_SCRIPT: &str = include_str!("wall/ops.js");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: the page (Vietnamese by default, `?lang=en` for English).
pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /wall.js`.
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /i18n.js`.
pub async fn i18n() -> Response {
    asset("text/javascript; charset=utf-8", I18N)
}

/// `GET /wall.css`.
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// `GET /agency/{code}`: one agency across the three systems (the page asks the API).
pub async fn agency() -> Response {
    asset("text/html; charset=utf-8", AGENCY)
}

/// `GET /agency.js`.
pub async fn agency_script() -> Response {
    asset("text/javascript; charset=utf-8", AGENCY_SCRIPT)
}

/// `GET /scorecard`: the Decision 766 scorecard, estimated (the page asks the API).
pub async fn scorecard() -> Response {
    asset("text/html; charset=utf-8", SCORECARD)
}

/// `GET /scorecard.js`.
pub async fn scorecard_script() -> Response {
    asset("text/javascript; charset=utf-8", SCORECARD_SCRIPT)
}

/// `GET /ops`: the duty officer's page (acknowledge, assign, comment, silence).
pub async fn ops() -> Response {
    asset("text/html; charset=utf-8", OPS)
}

/// `GET /ops.js`.
pub async fn ops_script() -> Response {
    asset("text/javascript; charset=utf-8", OPS_SCRIPT)
}
