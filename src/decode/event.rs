//! The decoded, validated events of docs/contract.md §2: what `decode` produces and
//! `state::State::apply` consumes. Strings borrow from the payload where JSON allows.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::time::Ts;

/// A source system, named by the topic level after the prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The one-stop system (một cửa điện tử).
    Onestop,
    /// The video-conferencing system.
    Vc,
    /// The security operations centre.
    Soc,
}

impl Source {
    /// Every source, in label order.
    pub const ALL: [Source; 3] = [Source::Onestop, Source::Vc, Source::Soc];

    /// The label and topic level of this source.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Onestop => "onestop",
            Source::Vc => "vc",
            Source::Soc => "soc",
        }
    }

    /// Index into per-source arrays.
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The source named by a topic level ([`Source::as_str`]).
    #[must_use]
    pub fn from_level(level: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == level)
    }
}

/// One accepted event: the envelope and its typed body.
#[derive(Clone, Debug, PartialEq)]
pub struct Event<'a> {
    /// The source, from the topic.
    pub source: Source,
    /// Unique per source; the dedupe key.
    pub event_id: Cow<'a, str>,
    /// When it happened at the source.
    pub occurred_at: Ts,
    /// What happened.
    pub body: Body<'a>,
}

impl Event<'_> {
    /// Position of this event's type in [`type_names`] of its source.
    #[must_use]
    pub fn type_index(&self) -> usize {
        match &self.body {
            Body::Heartbeat => type_names(self.source).len() - 1,
            Body::Dossier(d) => d.kind as usize,
            Body::Vc(v) => match v {
                VcEvent::MeetingStarted { .. } => 0,
                VcEvent::MeetingEnded { .. } => 1,
                VcEvent::EndpointJoined { .. } => 2,
                VcEvent::EndpointLeft { .. } => 3,
                VcEvent::EndpointStats { .. } => 4,
            },
            Body::Soc(s) => match s {
                SocEvent::Alert { .. } => 0,
                SocEvent::IncidentOpened { .. } => 1,
                SocEvent::IncidentAcknowledged { .. } => 2,
                SocEvent::IncidentResolved { .. } => 3,
                SocEvent::SystemHeartbeat { .. } => 4,
            },
        }
    }

    /// The `type` label of `iocd_events_total`.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match &self.body {
            Body::Heartbeat => "heartbeat",
            Body::Dossier(d) => d.kind.as_str(),
            Body::Vc(v) => v.type_name(),
            Body::Soc(s) => s.type_name(),
        }
    }
}

/// The typed part of an event.
#[derive(Clone, Debug, PartialEq)]
pub enum Body<'a> {
    /// `heartbeat`, accepted from every source: proves the feed is alive, nothing more.
    Heartbeat,
    /// A one-stop dossier event (1.2).
    Dossier(DossierEvent<'a>),
    /// A video-conferencing event (1.3).
    Vc(VcEvent<'a>),
    /// A SOC event (1.4).
    Soc(SocEvent<'a>),
}

/// The dossier event types of docs/contract.md §2.4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum DossierKind {
    Submitted,
    Received,
    Transferred,
    SupplementRequested,
    SupplementReceived,
    Paused,
    Resumed,
    Resolved,
    Returned,
    Rejected,
    Withdrawn,
    Cancelled,
    /// A payment for the dossier (contract 1.2); the status does not change.
    Paid,
    /// The citizen's rating of the dossier's handling (contract 1.2); the status does not
    /// change.
    Rated,
}

impl DossierKind {
    /// Every dossier event type, in contract order.
    pub const ALL: [DossierKind; 14] = [
        DossierKind::Submitted,
        DossierKind::Received,
        DossierKind::Transferred,
        DossierKind::SupplementRequested,
        DossierKind::SupplementReceived,
        DossierKind::Paused,
        DossierKind::Resumed,
        DossierKind::Resolved,
        DossierKind::Returned,
        DossierKind::Rejected,
        DossierKind::Withdrawn,
        DossierKind::Cancelled,
        DossierKind::Paid,
        DossierKind::Rated,
    ];

    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            DossierKind::Submitted => "submitted",
            DossierKind::Received => "received",
            DossierKind::Transferred => "transferred",
            DossierKind::SupplementRequested => "supplement_requested",
            DossierKind::SupplementReceived => "supplement_received",
            DossierKind::Paused => "paused",
            DossierKind::Resumed => "resumed",
            DossierKind::Resolved => "resolved",
            DossierKind::Returned => "returned",
            DossierKind::Rejected => "rejected",
            DossierKind::Withdrawn => "withdrawn",
            DossierKind::Cancelled => "cancelled",
            DossierKind::Paid => "paid",
            DossierKind::Rated => "rated",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The status a dossier is left in by this event (docs/contract.md §2.4 table); `None`
    /// for `paid` and `rated`, which leave it as it is.
    #[must_use]
    pub const fn status_after(self) -> Option<DossierStatus> {
        Some(match self {
            DossierKind::Submitted => DossierStatus::Submitted,
            DossierKind::Received
            | DossierKind::Transferred
            | DossierKind::SupplementReceived
            | DossierKind::Resumed => DossierStatus::InProgress,
            DossierKind::SupplementRequested => DossierStatus::WaitingCitizen,
            DossierKind::Paused => DossierStatus::Paused,
            DossierKind::Resolved => DossierStatus::Resolved,
            DossierKind::Returned => DossierStatus::Returned,
            DossierKind::Rejected | DossierKind::Withdrawn | DossierKind::Cancelled => {
                DossierStatus::Closed
            }
            DossierKind::Paid | DossierKind::Rated => return None,
        })
    }
}

/// A dossier's status (docs/contract.md §2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum DossierStatus {
    Submitted,
    InProgress,
    WaitingCitizen,
    Paused,
    Resolved,
    Returned,
    Closed,
}

impl DossierStatus {
    /// The open statuses, in the order of the snapshot and the `status` label.
    pub const OPEN: [DossierStatus; 4] = [
        DossierStatus::Submitted,
        DossierStatus::InProgress,
        DossierStatus::WaitingCitizen,
        DossierStatus::Paused,
    ];

    /// The wire and label name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            DossierStatus::Submitted => "submitted",
            DossierStatus::InProgress => "in_progress",
            DossierStatus::WaitingCitizen => "waiting_citizen",
            DossierStatus::Paused => "paused",
            DossierStatus::Resolved => "resolved",
            DossierStatus::Returned => "returned",
            DossierStatus::Closed => "closed",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::OPEN.as_slice(),
            &[Self::Resolved, Self::Returned, Self::Closed],
        ]
        .concat()
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Whether the dossier is still being handled (`submitted` … `paused`).
    #[must_use]
    pub const fn is_open(self) -> bool {
        (self as u8) <= (DossierStatus::Paused as u8)
    }

    /// Index into `OPEN` for an open status.
    #[must_use]
    pub const fn open_index(self) -> Option<usize> {
        if self.is_open() {
            Some(self as usize)
        } else {
            None
        }
    }
}

/// How a dossier was filed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Channel {
    Online,
    Direct,
    Postal,
}

impl Channel {
    /// Every channel, in label order.
    pub const ALL: [Channel; 3] = [Channel::Online, Channel::Direct, Channel::Postal];
    /// The wire and label name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Online => "online",
            Channel::Direct => "direct",
            Channel::Postal => "postal",
        }
    }
}

/// Administrative level of an agency or a meeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Level {
    Central,
    Province,
    Commune,
    District,
    Unknown,
}

impl Level {
    /// Meeting levels in label order (`unknown` for meetings seen before their start).
    pub const MEETING: [Level; 4] = [
        Level::Central,
        Level::Province,
        Level::Commune,
        Level::Unknown,
    ];
    /// The wire and label name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Central => "central",
            Level::Province => "province",
            Level::Commune => "commune",
            Level::District => "district",
            Level::Unknown => "unknown",
        }
    }
}

/// Outcome of a resolved dossier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Outcome {
    Approved,
    Refused,
}

/// Why a dossier was paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum PauseReason {
    Fees,
    Suspended,
    Other,
}

/// How a dossier's fees were paid (contract 1.2, `paid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// Online, through the National Public Service Portal.
    OnlineNational,
    /// Online, through the province's own payment gateway.
    OnlineLocal,
    /// At the desk.
    Direct,
}

impl PaymentMethod {
    /// Every method, in label order.
    pub const ALL: [PaymentMethod; 3] = [
        PaymentMethod::OnlineNational,
        PaymentMethod::OnlineLocal,
        PaymentMethod::Direct,
    ];
    /// The wire and label name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::OnlineNational => "online_national",
            PaymentMethod::OnlineLocal => "online_local",
            PaymentMethod::Direct => "direct",
        }
    }
    /// Either online method: what indicator 3.6 counts.
    #[must_use]
    pub const fn is_online(self) -> bool {
        matches!(
            self,
            PaymentMethod::OnlineNational | PaymentMethod::OnlineLocal
        )
    }
}

/// The citizen's rating of a dossier's handling (contract 1.2, `rated`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    /// Rất hài lòng.
    VerySatisfied,
    /// Hài lòng.
    Satisfied,
    /// Không hài lòng.
    Unsatisfied,
}

impl Rating {
    /// Every rating, in label order.
    pub const ALL: [Rating; 3] = [
        Rating::VerySatisfied,
        Rating::Satisfied,
        Rating::Unsatisfied,
    ];
    /// The wire and label name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Rating::VerySatisfied => "very_satisfied",
            Rating::Satisfied => "satisfied",
            Rating::Unsatisfied => "unsatisfied",
        }
    }
}

/// The optional facts of contract 1.2 an event carries; `None` is unknown, never false.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The dossier carries fees or charges (on `received`).
    pub fee_required: Option<bool>,
    /// The procedure returns a paper result (on `received`).
    pub paper_result: Option<bool>,
    /// The dossier's components were digitised at receipt (on `received`).
    pub digitised: Option<bool>,
    /// A component was reused from digitised data (on `received`).
    pub reused_data: Option<bool>,
    /// An electronic result is attached (on `resolved` and `returned`).
    pub result_electronic: Option<bool>,
    /// The citizen complained (on `rated`).
    pub complaint: Option<bool>,
}

/// A `due_at` as the event carried it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Not carried (absent, or `null` where the field is optional).
    Absent,
    /// Explicitly no deadline: `null` on `received` or `resolved`, where the key is required.
    NoDeadline,
    /// A deadline.
    At(Ts),
}

/// A one-stop dossier event.
#[derive(Clone, Debug, PartialEq)]
pub struct DossierEvent<'a> {
    /// The event type.
    pub kind: DossierKind,
    /// The dossier.
    pub dossier_id: Cow<'a, str>,
    /// The agency handling it, when carried.
    pub agency: Option<Cow<'a, str>>,
    /// The agency's level, when carried.
    pub agency_level: Option<Level>,
    /// The procedure code, when carried.
    pub procedure: Option<Cow<'a, str>>,
    /// The procedure's sector, when carried.
    pub sector: Option<Cow<'a, str>>,
    /// The filing channel, when carried.
    pub channel: Option<Channel>,
    /// The deadline, when carried.
    pub due_at: Due,
    /// Outcome, on `resolved`.
    pub outcome: Option<Outcome>,
    /// Pause reason, on `paused`.
    pub reason: Option<PauseReason>,
    /// Payment method, on `paid`.
    pub method: Option<PaymentMethod>,
    /// Rating, on `rated`.
    pub rating: Option<Rating>,
    /// The optional facts of contract 1.2 (on `received`, `resolved`, `returned`, `rated`).
    pub facts: Facts,
}

/// A video-conferencing event.
#[derive(Clone, Debug, PartialEq)]
pub enum VcEvent<'a> {
    /// A meeting went on air.
    MeetingStarted {
        /// The meeting.
        meeting_id: Cow<'a, str>,
        /// Its title.
        title: Cow<'a, str>,
        /// Its level.
        level: Level,
        /// Endpoints expected to join, when listed.
        expected_endpoints: Option<Vec<Cow<'a, str>>>,
    },
    /// A meeting ended.
    MeetingEnded {
        /// The meeting.
        meeting_id: Cow<'a, str>,
    },
    /// An endpoint joined a meeting.
    EndpointJoined {
        /// The meeting.
        meeting_id: Cow<'a, str>,
        /// The endpoint.
        endpoint_id: Cow<'a, str>,
        /// The endpoint's agency, when carried.
        agency: Option<Cow<'a, str>>,
    },
    /// An endpoint left a meeting.
    EndpointLeft {
        /// The meeting.
        meeting_id: Cow<'a, str>,
        /// The endpoint.
        endpoint_id: Cow<'a, str>,
    },
    /// Link quality of an endpoint in a meeting.
    EndpointStats {
        /// The meeting.
        meeting_id: Cow<'a, str>,
        /// The endpoint.
        endpoint_id: Cow<'a, str>,
        /// The link quality.
        stats: LinkStats,
    },
}

/// Link quality figures of `endpoint_stats`.
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct LinkStats {
    /// Packet loss, 0 to 100.
    pub packet_loss_pct: f64,
    /// Jitter in milliseconds.
    pub jitter_ms: f64,
    /// Round-trip time in milliseconds.
    pub rtt_ms: f64,
    /// Bitrate in kbit/s.
    pub bitrate_kbps: f64,
}

impl VcEvent<'_> {
    /// The wire type name.
    #[must_use]
    pub const fn type_name(&self) -> &'static str {
        match self {
            VcEvent::MeetingStarted { .. } => "meeting_started",
            VcEvent::MeetingEnded { .. } => "meeting_ended",
            VcEvent::EndpointJoined { .. } => "endpoint_joined",
            VcEvent::EndpointLeft { .. } => "endpoint_left",
            VcEvent::EndpointStats { .. } => "endpoint_stats",
        }
    }
}

/// SOC severities, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];
    /// The wire and label name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// SOC alert categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Category {
    Malware,
    Intrusion,
    Ddos,
    Phishing,
    Recon,
    Policy,
    Other,
}

impl Category {
    /// Every category, in label order.
    pub const ALL: [Category; 7] = [
        Category::Malware,
        Category::Intrusion,
        Category::Ddos,
        Category::Phishing,
        Category::Recon,
        Category::Policy,
        Category::Other,
    ];
    /// The wire and label name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Malware => "malware",
            Category::Intrusion => "intrusion",
            Category::Ddos => "ddos",
            Category::Phishing => "phishing",
            Category::Recon => "recon",
            Category::Policy => "policy",
            Category::Other => "other",
        }
    }
}

/// A SOC event.
#[derive(Clone, Debug, PartialEq)]
pub enum SocEvent<'a> {
    /// A security alert.
    Alert {
        /// The SIEM's alert id.
        alert_id: Cow<'a, str>,
        /// The monitored system.
        system_id: Cow<'a, str>,
        /// Severity.
        severity: Severity,
        /// Category.
        category: Category,
    },
    /// An incident was opened.
    IncidentOpened {
        /// The incident.
        incident_id: Cow<'a, str>,
        /// The affected system.
        system_id: Cow<'a, str>,
        /// Severity.
        severity: Severity,
        /// Title, when carried.
        title: Option<Cow<'a, str>>,
    },
    /// An incident was acknowledged.
    IncidentAcknowledged {
        /// The incident.
        incident_id: Cow<'a, str>,
    },
    /// An incident was resolved.
    IncidentResolved {
        /// The incident.
        incident_id: Cow<'a, str>,
    },
    /// A monitored system's log shipping is alive.
    SystemHeartbeat {
        /// The system.
        system_id: Cow<'a, str>,
    },
}

impl SocEvent<'_> {
    /// The wire type name.
    #[must_use]
    pub const fn type_name(&self) -> &'static str {
        match self {
            SocEvent::Alert { .. } => "alert",
            SocEvent::IncidentOpened { .. } => "incident_opened",
            SocEvent::IncidentAcknowledged { .. } => "incident_acknowledged",
            SocEvent::IncidentResolved { .. } => "incident_resolved",
            SocEvent::SystemHeartbeat { .. } => "system_heartbeat",
        }
    }
}

/// Every `type` label a source accepts, heartbeat last; used to pre-size counters.
#[must_use]
pub fn type_names(source: Source) -> &'static [&'static str] {
    match source {
        Source::Onestop => &[
            "submitted",
            "received",
            "transferred",
            "supplement_requested",
            "supplement_received",
            "paused",
            "resumed",
            "resolved",
            "returned",
            "rejected",
            "withdrawn",
            "cancelled",
            "paid",
            "rated",
            "heartbeat",
        ],
        Source::Vc => &[
            "meeting_started",
            "meeting_ended",
            "endpoint_joined",
            "endpoint_left",
            "endpoint_stats",
            "heartbeat",
        ],
        Source::Soc => &[
            "alert",
            "incident_opened",
            "incident_acknowledged",
            "incident_resolved",
            "system_heartbeat",
            "heartbeat",
        ],
    }
}
