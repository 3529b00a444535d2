//! The Decision 766 scorecard over a real broker: events of contract 1.2 published on MQTT,
//! `GET /api/v1/scorecard` answering as docs/openapi.json says, with the figures they make.
//! The indicators' rules are checked exactly on a hand-built month in
//! `derive::scorecard::worked_example`.

use iocd_testkit as tk;
use serde_json::Value;

use crate::helpers::broker::TestBroker;
use crate::helpers::openapi::assert_matches_openapi;
use crate::helpers::{TestClient, spawn_app, test_settings};

const TOKEN: &str = "wall-viewer-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scorecard_counts_payments_digitisation_and_ratings_from_the_feed() {
    let broker = TestBroker::start();
    let mut settings = test_settings(&broker);
    // A viewer token, as the wall's pages pass it on in their URL.
    settings.http.access_tokens = vec![TOKEN.into()];
    let app = spawn_app(settings).await;
    let client = TestClient::connect(&broker, &[]).await;
    let topic = format!("{}/onestop/A/dossier", app.prefix);
    // D1: received online with fees, paid online, digitised, resolved with an electronic
    // result, rated satisfied. D2: received at the desk with fees, paid at the desk, not
    // digitised, still open and in time.
    let events = [
        tk::received("D1")
            .at(tk::at(-7200))
            .set("fee_required", true)
            .set("paper_result", true)
            .set("digitised", true)
            .set("reused_data", false),
        tk::dossier("paid", "D1")
            .at(tk::at(-7000))
            .set("method", "online_national"),
        tk::resolved("D1")
            .at(tk::at(-3600))
            .set("result_electronic", true),
        tk::dossier("rated", "D1")
            .at(tk::at(-1800))
            .set("rating", "satisfied"),
        tk::received("D2")
            .at(tk::at(-7100))
            .channel("direct")
            .due(tk::at(86_400 * 3))
            .set("fee_required", true)
            .set("digitised", false),
        tk::dossier("paid", "D2")
            .at(tk::at(-7000))
            .set("method", "direct"),
    ];
    for e in &events {
        client.publish(&topic, e.bytes()).await;
    }
    app.wait_metric(r#"iocd_events_total{source="onestop",type="paid"}"#, 2.0)
        .await;
    app.wait_metric(r#"iocd_events_total{source="onestop",type="rated"}"#, 1.0)
        .await;

    for period in ["week", "month", "year"] {
        let (status, body) = app
            .get(&format!("/api/v1/scorecard?period={period}&token={TOKEN}"))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_matches_openapi("/api/v1/scorecard", 200, &body);
        let card: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(card["period"], period);
        let p = &card["province"]["indicators"];
        // Received 2, 1 online; fees 2, 1 paid online; handled 2 (D1 resolved in time, D2
        // open in time); 4.2: D1 digitised and electronic (D2 not resolved).
        assert_eq!(p["3.3"]["ratio"], 0.5, "{card}");
        assert_eq!(p["3.6"]["ratio"], 0.5, "{card}");
        assert_eq!(p["2.1"]["ratio"], 1.0, "{card}");
        assert_eq!(p["4.2"]["ratio"], 1.0, "{card}");
        assert_eq!(
            p["4.3"]["ratio"], 0.0,
            "reuse known for D1 only: no; {card}"
        );
        assert_eq!(p["5.4"]["ratio"], 1.0, "{card}");
        assert_eq!(card["agencies"][0]["code"], "A", "{card}");
        assert!(
            card["estimate"].as_str().unwrap().contains("Ước tính"),
            "{card}"
        );
    }
    // The same on /metrics, per agency and for the province.
    for series in [
        r#"iocd_766_indicator_ratio{agency="A",indicator="3.6",period="month"}"#,
        r#"iocd_766_level_indicator_ratio{indicator="3.6",level="all",period="week"}"#,
    ] {
        app.wait_metric(series, 0.5).await;
    }
    let (status, body) = app
        .get(&format!("/api/v1/scorecard?period=quarter&token={TOKEN}"))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_matches_openapi("/api/v1/scorecard", 400, &body);
    let (status, _) = app
        .get(&format!("/api/v1/scorecard?rank=1&token={TOKEN}"))
        .await;
    assert_eq!(status, 400);
    let (status, _) = app.get("/api/v1/scorecard").await;
    assert_eq!(status, 401, "without the token");
}
