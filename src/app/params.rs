//! From the settings to the state's parameters: the one place that knows both, so that
//! `config` and `state` need not know each other.
//!
//! In: loaded [`Settings`]. Out: [`Params`] in the state's units (seconds as `i64`, the
//! local calendar, the working calendar built once), and `Params::default()`: the shipped
//! configuration's values, so that the defaults are written only in `config/iocd.toml`.

use std::sync::Arc;

use crate::config::Settings;
use crate::state::Params;
use crate::state::evict::Caps;
use crate::state::vc::VcThresholds;
use crate::time::whole_secs;
use crate::time::workcal::CalendarError;

/// The state's parameters from the settings.
///
/// # Errors
/// [`CalendarError`] when the working calendar cannot be built (overlapping working hours;
/// refused when the settings were loaded, so only settings changed in code can hit it).
pub fn params(s: &Settings) -> Result<Params, CalendarError> {
    Ok(Params {
        cal: s.state.calendar(),
        dedupe_horizon_secs: whole_secs(s.ingest.dedupe_horizon),
        dedupe_max_ids: s.ingest.dedupe_max_ids,
        retention_secs: whole_secs(s.state.closed_retention),
        agency_label_limit: s.state.agency_label_limit,
        due_soon_secs: whole_secs(s.onestop.due_soon),
        stalled_secs: whole_secs(s.onestop.stalled),
        work: s.calendar.build()?.map(Arc::new),
        vc: VcThresholds {
            poor_packet_loss_pct: s.vc.poor_packet_loss_pct,
            poor_jitter_ms: s.vc.poor_jitter_ms,
            poor_rtt_ms: s.vc.poor_rtt_ms,
            missing_after_secs: whole_secs(s.vc.missing_after),
        },
        system_silent_secs: whole_secs(s.soc.system_silent),
        systems: s.soc.systems.clone(),
        caps: Caps {
            dossiers: s.state.max_items.dossiers,
            meetings: s.state.max_items.meetings,
            endpoints: s.state.max_items.endpoints,
            systems: s.state.max_items.systems,
            incidents: s.state.max_items.incidents,
        },
        source_silent_secs: whole_secs(s.sources.silent_after),
        ops_horizon_secs: whole_secs(s.alerts.audit_retention),
        ops_max_actions: s.alerts.max_actions,
    })
}

/// The parameters of the shipped configuration (tests, and a checkpoint's placeholder
/// before the daemon's own parameters are set).
impl Default for Params {
    fn default() -> Self {
        params(&Settings::default())
            .unwrap_or_else(|err| panic!("the shipped calendar settings must build: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_params_are_the_shipped_settings_in_seconds() {
        let p = Params::default();
        assert_eq!(p.cal.tz().iana_name(), Some("Asia/Ho_Chi_Minh"));
        assert_eq!(
            (
                p.dedupe_horizon_secs,
                p.retention_secs,
                p.due_soon_secs,
                p.stalled_secs
            ),
            (72 * 3600, 24 * 3600, 24 * 3600, 48 * 3600)
        );
        assert_eq!(
            (
                p.vc.missing_after_secs,
                p.system_silent_secs,
                p.source_silent_secs
            ),
            (300, 600, 300)
        );
        assert!(p.work.is_none());
    }

    #[test]
    fn an_enabled_calendar_is_built_once_into_the_params() {
        let mut s = Settings::default();
        s.calendar.enabled = true;
        assert!(params(&s).unwrap().work.is_some());
        s.calendar.working_hours = vec![(0, 7200), (3600, 9000)];
        assert_eq!(params(&s).err(), Some(CalendarError::Overlap));
    }
}
