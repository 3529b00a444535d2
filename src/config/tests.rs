//! Loading: defaults from the shipped file, errors naming the file and the key, every
//! problem listed at once, typed values, secrets kept out of `Debug`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::check::chain;
use super::mqtt::check_prefix;
use super::*;
use crate::decode::Severity;
use crate::time::workcal::{HolidayFile, Holidays};

fn problems_of(text: &str) -> Vec<(String, String)> {
    match Settings::from_toml_str(text, "x.toml") {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected invalid values, got {other:?}"),
    }
}

fn keys(problems: &[(String, String)]) -> Vec<&str> {
    problems.iter().map(|(key, _)| key.as_str()).collect()
}

#[test]
fn the_shipped_file_equals_the_defaults() {
    let shipped = Settings::from_toml_str(DEFAULT_CONFIG, "config/iocd.toml").unwrap();
    assert_eq!(shipped, Settings::default());
}

#[test]
fn the_shipped_file_loads_and_names_every_key() {
    // The file model has no serde defaults, so the shipped file alone must parse: a key
    // missing from it would be "missing field" here.
    let table: toml::Table = DEFAULT_CONFIG.parse().unwrap();
    let file: Result<SettingsFile, _> = table.try_into();
    assert!(file.is_ok(), "{:?}", file.err().map(|e| e.to_string()));
    let s = Settings::default();
    assert_eq!(s.mqtt.url.to_string(), "mqtt://127.0.0.1:1883");
    assert_eq!(s.http.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
    assert_eq!(s.state.timezone.iana_name(), Some("Asia/Ho_Chi_Minh"));
    assert_eq!(s.mqtt.keepalive, Duration::from_secs(10));
    assert_eq!(s.onestop.stalled, Duration::from_secs(48 * 3600));
    assert_eq!(s.alerts.language, Lang::Vi);
    assert_eq!(s.alerts.incident_min_severity, Severity::High);
}

#[test]
fn loading_without_a_path_gives_the_defaults() {
    assert_eq!(Settings::load(None).unwrap(), Settings::default());
}

#[test]
fn an_empty_file_gives_the_defaults() {
    assert_eq!(
        Settings::from_toml_str("", "x.toml").unwrap(),
        Settings::default()
    );
}

#[test]
fn a_key_left_out_keeps_its_default() {
    let s = Settings::from_toml_str("[mqtt]\nkeepalive_secs = 30\n", "x.toml").unwrap();
    assert_eq!(s.mqtt.keepalive, Duration::from_secs(30));
    assert_eq!(s.mqtt.url, MqttSettings::default().url);
    assert_eq!(s.http, HttpSettings::default());
}

#[test]
fn a_rule_key_left_out_keeps_the_rule_default() {
    let s = Settings::from_toml_str(
        "[alerts.feed_silent]\nmin_count = 3\n[alerts.dossier_overdue]\nseverity = \"info\"\n",
        "x.toml",
    )
    .unwrap();
    assert_eq!(s.alerts.feed_silent.severity, AlertSeverity::Critical);
    assert_eq!(s.alerts.feed_silent.min_count, 3);
    assert!(s.alerts.dossier_overdue.enabled);
    assert_eq!(s.alerts.dossier_overdue.severity, AlertSeverity::Info);
}

#[test]
fn a_misspelt_key_is_an_error_naming_it() {
    let err = Settings::from_toml_str("[mqtt]\nkeepalive = 5\n", "config/x.toml").unwrap_err();
    let ConfigError::Parse { key, message, .. } = &err else {
        panic!("expected a parse error, got {err:?}");
    };
    assert_eq!(key, "mqtt.keepalive");
    assert!(
        message.contains("unknown field `keepalive`"),
        "message {message:?}"
    );
    let shown = err.to_string();
    assert!(shown.starts_with("config/x.toml: mqtt"), "{shown}");
}

#[test]
fn a_misspelt_section_is_an_error_naming_it() {
    let err = Settings::from_toml_str("[mqt]\nurl = \"mqtt://a\"\n", "x.toml").unwrap_err();
    assert!(err.to_string().contains("unknown field `mqt`"), "{err}");
}

#[test]
fn a_wrong_type_names_the_key_path() {
    let err =
        Settings::from_toml_str("[mqtt]\nkeepalive_secs = \"ten\"\n", "config/x.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "config/x.toml: mqtt.keepalive_secs: invalid type: string \"ten\", expected u64"
    );
}

#[test]
fn a_wrong_type_in_a_list_names_the_index() {
    let err = Settings::from_toml_str("[soc]\nsystems = [\"a\", 2]\n", "x.toml").unwrap_err();
    assert!(
        err.to_string().starts_with("x.toml: soc.systems[1]: "),
        "{err}"
    );
}

#[test]
fn a_syntax_error_names_the_line_and_column() {
    let err = Settings::from_toml_str("[mqtt]\nurl = \n", "x.toml").unwrap_err();
    let shown = err.to_string();
    assert!(shown.starts_with("x.toml: line 2, column 7: "), "{shown}");
    assert!(!shown.contains('\n'), "{shown}");
}

#[test]
fn several_invalid_values_are_all_listed() {
    let problems = problems_of(
        "[mqtt]\nurl = \"http://broker\"\nkeepalive_secs = 0\nprefix = \"ioc/#\"\n\
         reconnect_min_ms = 5000\nreconnect_max_ms = 100\n\
         [http]\nlisten = \"localhost\"\n\
         [state]\ntimezone = \"Mars/Olympus_Mons\"\n\
         [vc]\npoor_rtt_ms = nan\n\
         [soc]\nsystems = [\"\"]\n\
         [log]\nlevel = \"iocd=loud\"\n",
    );
    assert_eq!(
        keys(&problems),
        [
            "mqtt.url",
            "mqtt.prefix",
            "mqtt.keepalive_secs",
            "mqtt.reconnect_max_ms",
            "http.listen",
            "state.timezone",
            "vc.poor_rtt_ms",
            "soc.systems[0]",
            "log.level",
        ]
    );
}

#[test]
fn the_invalid_values_error_shows_file_key_and_problem() {
    let err = Settings::from_toml_str("[mqtt]\nkeepalive_secs = 0\n", "x.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "x.toml: mqtt.keepalive_secs: must be between 1 and 3600 (got 0)"
    );
    let err = Settings::from_toml_str("[mqtt]\nkeepalive_secs = 0\ninflight = 0\n", "x.toml")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "x.toml: 2 invalid values:\n  mqtt.keepalive_secs: must be between 1 and 3600 (got 0)\n  \
         mqtt.inflight: must be at least 1 (got 0)"
    );
}

#[test]
fn typed_values_are_errors_naming_their_key() {
    let one = |text: &str| {
        let problems = problems_of(text);
        assert_eq!(problems.len(), 1, "{problems:?}");
        problems.into_iter().next().unwrap()
    };
    let (key, problem) = one("[state]\ntimezone = \"Nowhere/None\"\n");
    assert_eq!(key, "state.timezone");
    assert!(
        problem.contains("`Nowhere/None` is not a known IANA time zone"),
        "{problem}"
    );
    let (key, problem) = one("[mqtt]\nembedded_listen = \"localhost:1883\"\n");
    assert_eq!(key, "mqtt.embedded_listen");
    assert!(problem.starts_with("must be an IP address and port such as 127.0.0.1:1883"));
    let (key, problem) = one("[alerts]\nlanguage = \"fr\"\n");
    assert_eq!(
        (key.as_str(), problem.as_str()),
        ("alerts.language", "must be `vi` or `en` (got `fr`)")
    );
    let (key, _) = one("[alerts]\nincident_min_severity = \"urgent\"\n");
    assert_eq!(key, "alerts.incident_min_severity");
    let (key, _) = one("[onestop]\nstalled_hours = -1\n");
    assert_eq!(key, "onestop.stalled_hours");
    let (key, _) = one("[calendar]\nworking_days = [\"mon\", \"lundi\"]\n");
    assert_eq!(key, "calendar.working_days[1]");
    let (key, problem) = one("[calendar]\nworking_hours = [\"08:00-12:00\", \"11:00-13:00\"]\n");
    assert_eq!(
        (key.as_str(), problem.as_str()),
        ("calendar.working_hours", "working hours overlap")
    );
}

#[test]
fn durations_keep_their_keys_units() {
    let s = Settings::from_toml_str(
        "[mqtt]\nreconnect_min_ms = 250\n[ws]\npush_interval_ms = 100\n\
         [ingest]\ndedupe_horizon_hours = 2\n[vc]\nmissing_after_secs = 90\n",
        "x.toml",
    )
    .unwrap();
    assert_eq!(s.mqtt.reconnect_min, Duration::from_millis(250));
    assert_eq!(s.ws.push_interval, Duration::from_millis(100));
    assert_eq!(s.ingest.dedupe_horizon, Duration::from_secs(7200));
    assert_eq!(s.vc.missing_after, Duration::from_secs(90));
}

#[test]
fn lower_bounds_are_inclusive() {
    let text = "[ingest]\nmax_payload_bytes = 16\nmax_future_skew_secs = 0\n\
                [state]\nclosed_retention_hours = 0\n[onestop]\ndue_soon_hours = 0\n\
                [vc]\npoor_packet_loss_pct = 0.0\nmissing_after_secs = 0\n";
    Settings::from_toml_str(text, "x.toml").unwrap();
    let problems = problems_of("[ingest]\nmax_payload_bytes = 15\ndedupe_horizon_hours = 0\n");
    assert_eq!(
        keys(&problems),
        ["ingest.max_payload_bytes", "ingest.dedupe_horizon_hours"]
    );
}

#[test]
fn a_password_without_a_user_name_is_refused() {
    let problems = problems_of("[mqtt]\npassword_env = \"X\"\n");
    assert_eq!(keys(&problems), ["mqtt.username"]);
}

#[test]
fn a_broker_url_is_parsed_at_load() {
    let s = Settings::from_toml_str("[mqtt]\nurl = \"mqtts://[::1]\"\n", "x.toml").unwrap();
    assert_eq!(
        (s.mqtt.url.host(), s.mqtt.url.port(), s.mqtt.url.tls()),
        ("::1", 8883, true)
    );
    let problems = problems_of("[mqtt]\nurl = \"mqtt://host:0\"\n");
    assert_eq!(
        problems,
        [(
            "mqtt.url".to_owned(),
            "`0` is not a port (1 to 65535)".to_owned()
        )]
    );
}

#[test]
fn a_prefix_with_wildcards_or_edge_slashes_is_refused() {
    for bad in ["", "ioc/#", "ioc/+/x", "/ioc", "ioc/"] {
        assert!(check_prefix(bad).is_err(), "{bad:?} was accepted");
    }
    assert!(check_prefix("ioc/v1").is_ok());
}

#[test]
fn the_password_comes_from_the_named_environment_variable() {
    let mqtt = MqttSettings {
        username: "iocd".into(),
        password: "in-file".into(),
        password_env: "IOCD_MQTT_PASSWORD".into(),
        ..MqttSettings::default()
    };
    let password = mqtt
        .password_with(|name| {
            assert_eq!(name, "IOCD_MQTT_PASSWORD");
            Ok("from-env".into())
        })
        .unwrap();
    assert_eq!(password.as_ref().map(Secret::expose), Some("from-env"));
}

#[test]
fn the_password_comes_from_the_real_environment() {
    // Cargo sets CARGO_PKG_NAME for the test process; setting a variable ourselves would
    // need `unsafe` (edition 2024), which the crate forbids.
    let mut settings = Settings::default();
    settings.mqtt.password_env = "CARGO_PKG_NAME".into();
    if std::env::var_os("CARGO_PKG_NAME").is_some() {
        assert_eq!(
            settings
                .mqtt_password()
                .unwrap()
                .as_ref()
                .map(Secret::expose),
            Some("iocd")
        );
    }
}

#[test]
fn an_unset_password_variable_is_an_error_naming_key_and_variable() {
    let mut settings = Settings::default();
    settings.mqtt.password_env = "IOCD_TEST_SURELY_UNSET_7F3A".into();
    let err = settings.mqtt_password().unwrap_err();
    assert_eq!(
        err.to_string(),
        "mqtt.password_env: environment variable IOCD_TEST_SURELY_UNSET_7F3A is not set"
    );
}

#[test]
fn without_a_variable_the_password_is_the_file_one_or_none() {
    let mut mqtt = MqttSettings::default();
    assert_eq!(mqtt.password_with(|_| unreachable!()).unwrap(), None);
    mqtt.password = "in-file".into();
    assert_eq!(
        mqtt.password_with(|_| unreachable!())
            .unwrap()
            .as_ref()
            .map(Secret::expose),
        Some("in-file")
    );
}

#[test]
fn debug_output_never_shows_the_password() {
    let mut settings = Settings::default();
    settings.mqtt.password = "hunter2".into();
    settings.http.access_tokens = vec!["wall-7f3c9a1e5b2d4c68".into()];
    let shown = format!("{settings:?}");
    assert!(!shown.contains("hunter2"));
    assert!(!shown.contains("wall-7f3c9a1e5b2d4c68"));
    assert!(shown.contains("***"));
}

#[test]
fn an_unreadable_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.toml");
    let err = Settings::load(Some(&path)).unwrap_err();
    assert!(matches!(err, ConfigError::Unreadable { .. }));
    assert!(err.to_string().contains("missing.toml"), "{err}");
}

#[test]
fn the_calendar_uses_the_configured_time_zone() {
    let state = Settings::from_toml_str("[state]\ntimezone = \"Europe/Paris\"\n", "x.toml")
        .unwrap()
        .state;
    assert_eq!(state.calendar().tz().iana_name(), Some("Europe/Paris"));
    // An unknown zone no longer falls back to Asia/Ho_Chi_Minh: it is refused at load.
    let problems = problems_of("[state]\ntimezone = \"Nowhere/None\"\n");
    assert_eq!(keys(&problems), ["state.timezone"]);
}

#[test]
fn the_holiday_file_is_read_at_load_only_when_the_calendar_is_on() {
    let off = "[calendar]\nholidays_file = \"/nonexistent/holidays.toml\"\n";
    let s = Settings::from_toml_str(off, "x.toml").unwrap();
    assert_eq!(s.calendar.holidays, Holidays::shipped().unwrap());
    let problems = problems_of(&format!("{off}enabled = true\n"));
    assert_eq!(keys(&problems), ["calendar.holidays_file"]);
    assert!(
        problems[0].1.contains("/nonexistent/holidays.toml"),
        "{problems:?}"
    );
}

#[test]
fn every_toml_file_in_config_loads_and_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let is_holidays = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("holidays"));
        if is_holidays {
            let text = std::fs::read_to_string(&path).unwrap();
            let file: HolidayFile = toml::from_str(&text).unwrap();
            let config = format!(
                "[calendar]\nenabled = true\nholidays_file = {:?}\n",
                path.display().to_string()
            );
            let cal = match Settings::from_toml_str(&config, "x.toml") {
                Ok(s) => s.calendar,
                Err(err) => panic!("{}: {}", path.display(), chain(&err)),
            };
            assert!(cal.build().unwrap().is_some(), "{}", path.display());
            assert!(
                file.day.iter().all(|d| !d.source.is_empty()),
                "every entry names its source"
            );
        } else if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("agencies"))
        {
            let config = format!("[directory]\nfile = {:?}\n", path.display().to_string());
            match Settings::from_toml_str(&config, "x.toml") {
                Ok(s) => assert!(s.directory.directory.len() > 100, "{}", path.display()),
                Err(err) => panic!("{}: {}", path.display(), chain(&err)),
            }
        } else if path.extension().is_some_and(|ext| ext == "toml") {
            if let Err(err) = Settings::load(Some(&path)) {
                panic!("{err}");
            }
            seen += 1;
        }
    }
    assert!(seen >= 1, "no *.toml in {}", dir.display());
}
