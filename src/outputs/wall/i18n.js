// Labels of the IOC wall display, Vietnamese (default) and English (`?lang=en`).
// A classic script: it defines `window.IOCD_I18N` (wall.js picks the language) and
// `window.IOCD_PAGE`, the setup the read-only pages (agency, scorecard) share.
// Keys used in index.html as `data-i18n="key"` replace that element's text.
// `{n}`, `{t}`, `{h}`, `{m}` are placeholders filled by wall.js.
window.IOCD_I18N = {
  vi: {
    locale: "vi-VN",
    percent_sep: "", // the province writes "88,5%"
    page_title: "IOC — Giám sát thời gian thực",
    title_main: "Trung tâm điều hành thông minh",
    title_sub: "Giám sát thời gian thực",
    lang_switch: "English",
    agency_back: "Màn hình chính",
    agency_open: "Đang giải quyết",
    agency_on_time: "Tỷ lệ đúng hạn (ước tính)",
    agency_online: "Tỷ lệ trực tuyến (ước tính)",
    agency_periods: "Tình hình giải quyết (ước tính)",
    period_month: "Tháng này",
    period_year: "Lũy kế năm",
    period_today: "Hôm nay: tiếp nhận {r}, giải quyết {s}",
    period_carried: "Tồn kỳ trước",
    period_received: "Tiếp nhận trong kỳ",
    period_received_online: "— trong đó trực tuyến",
    period_early: "Giải quyết trước hạn",
    period_on_time: "Giải quyết đúng hạn",
    period_late: "Giải quyết quá hạn",
    period_open_within: "Đang giải quyết trong hạn",
    period_open_overdue: "Đang giải quyết quá hạn",
    period_progress: "Tiến độ giải quyết (766, ước tính)",
    period_online_share: "Tỷ lệ trực tuyến (ước tính)",
    agency_overdue_list: "Hồ sơ đang xử lý quá hạn",
    agency_children: "Đơn vị trực thuộc",
    agency_children_sum: "{n} đơn vị: {o} hồ sơ quá hạn, {s} chậm luân chuyển",
    agency_incidents: "Sự cố đang mở",
    agency_unknown: "Chưa có trong danh mục đơn vị",
    agency_valid_to: "Hoạt động đến {d}",
    agency_none: "Không có",
    agency_ep_connected: "đã kết nối ({m})",
    agency_ep_poor: "chất lượng kém ({m})",
    agency_ep_missing: "chưa kết nối ({m})",
    agency_ep_idle: "không tham gia cuộc họp nào",
    agency_sys_ok: "có tín hiệu",
    agency_sys_silent: "mất tín hiệu",
    agency_not_found: "Không có đơn vị {c}",
    agency_error: "Máy chủ trả lời lỗi {s}",
    sc_title: "Chỉ số phục vụ người dân, doanh nghiệp (766)",
    agency_766: "Chỉ số 766 tháng này (ước tính)",
    sc_week: "Tuần này",
    sc_month: "Tháng này",
    sc_year: "Lũy kế năm",
    sc_estimate: "Ước tính của iocd từ các sự kiện nhận được, không phải điểm chính thức.",
    sc_province: "Toàn tỉnh (ước tính)",
    sc_score: "Điểm đạt / điểm đo được (ước tính)",
    sc_score_short: "Điểm (ước tính)",
    sc_indicators: "Các chỉ số (ước tính)",
    sc_ratio: "Tỷ lệ",
    sc_previous: "Kỳ trước",
    sc_points: "Điểm",
    sc_points_of: "{p} điểm",
    sc_not_measured: "Không đo được tại đây",
    sc_agencies: "Xếp hạng theo đơn vị (ước tính)",
    sc_communes: "Xếp hạng theo xã, phường (ước tính)",
    sc_agency: "Đơn vị",
    sc_no_data: "Chưa có dữ liệu",
    band_excellent: "Xuất sắc",
    band_good: "Tốt",
    band_average: "Trung bình",
    band_weak: "Yếu",

    conn_live: "Đã kết nối",
    conn_stale: "Mất kết nối",
    conn_connecting: "Đang kết nối…",
    replica_on: "· máy chủ {name}",
    banner_lost: "Mất kết nối — dữ liệu có thể đã cũ",
    banner_last: "(cập nhật lần cuối {t})",
    banner_never: "Chưa nhận được dữ liệu từ máy chủ",
    banner_retry: "Đang kết nối lại…",

    feed_onestop: "Giải quyết TTHC",
    feed_vc: "Hội nghị truyền hình",
    feed_soc: "SOC",
    feed_ok: "Hoạt động",
    feed_silent: "Mất tín hiệu",
    feed_gap: "Có thể thiếu dữ liệu",
    feed_never: "Chưa có dữ liệu",
    feed_unknown: "Không rõ",

    panel_onestop: "Hệ thống thông tin giải quyết TTHC",
    panel_vc: "Hội nghị truyền hình trực tuyến",
    panel_soc: "An toàn thông tin (SOC)",

    today_received: "Hồ sơ tiếp nhận hôm nay",
    today_resolved: "Đã giải quyết hôm nay",
    online_ratio: "Tỷ lệ trực tuyến",
    on_time_ratio: "Tỷ lệ đúng hạn (30 ngày)",
    per_minute: "Theo phút, 60 phút qua",
    spark_received: "Tiếp nhận",
    spark_resolved: "Giải quyết",
    spark_window: "60 phút",
    open_by_status: "Hồ sơ đang mở theo trạng thái",
    st_submitted: "Mới đăng ký",
    st_in_progress: "Đang xử lý",
    st_waiting_citizen: "Chờ bổ sung",
    st_paused: "Tạm dừng",
    overdue: "Đang xử lý quá hạn",
    due_soon: "Sắp đến hạn",
    stalled: "Chậm luân chuyển (> 48 giờ)",
    stalled_over: "Chậm luân chuyển (> {h} giờ)",
    stalled_over_working: "Chậm luân chuyển (> {h} giờ làm việc)",
    worst_agencies: "Đơn vị có nhiều hồ sơ quá hạn nhất",
    worst_of: "{n} trên {m} đơn vị",
    no_worst: "Không có hồ sơ quá hạn, sắp đến hạn hay chậm luân chuyển",

    meetings_active: "Cuộc họp đang diễn ra",
    endpoints_connected: "Điểm cầu đã kết nối",
    endpoints_missing: "Điểm cầu chưa kết nối",
    endpoints_poor: "Chất lượng kém",
    meetings_list: "Các cuộc họp",
    no_meetings: "Không có cuộc họp nào đang diễn ra",
    started: "Bắt đầu",
    connected_of: "điểm cầu đã kết nối",
    missing_short: "Chưa kết nối",
    poor_short: "Kém",
    lvl_central: "Trung ương",
    lvl_province: "Cấp tỉnh",
    lvl_commune: "Cấp xã",
    lvl_district: "Cấp huyện (trước 7/2025)",
    lvl_unknown: "Không rõ cấp",

    soc_alerts_60m: "Cảnh báo an ninh (60 phút)",
    incidents_by_sev: "Sự cố theo mức độ",
    incidents_open: "Sự cố đang mở",
    incidents_unack: "Chưa tiếp nhận",
    systems_silent: "Hệ thống mất tín hiệu",
    no_silent: "Không có hệ thống nào mất tín hiệu",
    sev_critical: "Nghiêm trọng",
    sev_high: "Cao",
    sev_medium: "Trung bình",
    sev_low: "Thấp",

    alerts_firing: "Cảnh báo đang kích hoạt",
    no_alerts: "Không có cảnh báo nào đang kích hoạt",
    al_critical: "Nghiêm trọng",
    al_warning: "Cảnh báo",
    al_info: "Thông tin",
    rule_dossier_overdue: "Hồ sơ đang xử lý quá hạn",
    rule_dossier_stalled: "Hồ sơ chậm luân chuyển",
    rule_feed_silent: "Nguồn dữ liệu mất tín hiệu",
    rule_endpoint_missing: "Điểm cầu chưa kết nối",
    rule_endpoint_poor_quality: "Điểm cầu chất lượng kém",
    rule_incident_unacknowledged: "Sự cố chưa tiếp nhận",
    rule_soc_system_silent: "Hệ thống mất tín hiệu",
    since: "từ {t}",
    h_new: "Mới",
    h_reminded: "nhắc {n} lần",
    h_escalated: "Leo thang: chưa ai tiếp nhận",
    h_taken: "Đã tiếp nhận: {by}",
    h_silenced: "Tạm tắt đến {t}",
    more: "+{n} mục khác",
    alerts_hidden: "+{n} cảnh báo không hiển thị:",
    alerts_hidden_one: "+1 cảnh báo không hiển thị:",
    hidden_critical: "{n} nghiêm trọng",
    hidden_warning: "{n} cảnh báo",
    hidden_info: "{n} thông tin",

    dur_lt1: "dưới 1 phút",
    dur_m: "{m} phút",
    dur_hm: "{h} giờ {m} phút",
    dur_d: "{n} ngày",
    weekdays: ["Chủ nhật", "Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy"],
  },

  en: {
    locale: "en-GB",
    percent_sep: "",
    page_title: "IOC — Live monitoring",
    title_main: "Intelligent Operations Centre",
    title_sub: "live monitoring",
    lang_switch: "Tiếng Việt",
    agency_back: "Main wall",
    agency_open: "Open",
    agency_on_time: "On-time ratio (estimate)",
    agency_online: "Online share (estimate)",
    agency_periods: "Dossiers handled (estimate)",
    period_month: "This month",
    period_year: "Year to date",
    period_today: "Today: {r} received, {s} resolved",
    period_carried: "Carried over",
    period_received: "Received in the period",
    period_received_online: "— of which online",
    period_early: "Resolved early",
    period_on_time: "Resolved on time",
    period_late: "Resolved late",
    period_open_within: "Open, within time",
    period_open_overdue: "Open, overdue",
    period_progress: "Progress (766, estimate)",
    period_online_share: "Online share (estimate)",
    agency_overdue_list: "Overdue dossiers",
    agency_children: "Units under it",
    agency_children_sum: "{n} units: {o} overdue, {s} stalled dossiers",
    agency_incidents: "Open incidents",
    agency_unknown: "Not in the agency directory",
    agency_valid_to: "Existed until {d}",
    agency_none: "None",
    agency_ep_connected: "connected ({m})",
    agency_ep_poor: "poor quality ({m})",
    agency_ep_missing: "missing ({m})",
    agency_ep_idle: "in no meeting",
    agency_sys_ok: "reporting",
    agency_sys_silent: "silent",
    agency_not_found: "No agency {c}",
    agency_error: "The server answered {s}",
    sc_title: "Citizen service index (Decision 766)",
    agency_766: "Decision 766 indicators this month (estimate)",
    sc_week: "This week",
    sc_month: "This month",
    sc_year: "Year to date",
    sc_estimate: "iocd's estimate from the events it received, not an official score.",
    sc_province: "Province (estimate)",
    sc_score: "Points earned / points measured (estimate)",
    sc_score_short: "Score (estimate)",
    sc_indicators: "Indicators (estimate)",
    sc_ratio: "Ratio",
    sc_previous: "Period before",
    sc_points: "Points",
    sc_points_of: "{p} points",
    sc_not_measured: "Not measured here",
    sc_agencies: "Ranking by agency (estimate)",
    sc_communes: "Ranking by commune (estimate)",
    sc_agency: "Agency",
    sc_no_data: "No data yet",
    band_excellent: "Excellent",
    band_good: "Good",
    band_average: "Average",
    band_weak: "Weak",

    conn_live: "Connected",
    conn_stale: "Disconnected",
    conn_connecting: "Connecting…",
    replica_on: "· replica {name}",
    banner_lost: "Connection lost — data may be out of date",
    banner_last: "(last update {t})",
    banner_never: "No data received from the server yet",
    banner_retry: "Reconnecting…",

    feed_onestop: "One-stop",
    feed_vc: "Video conferencing",
    feed_soc: "SOC",
    feed_ok: "Active",
    feed_silent: "Silent",
    feed_gap: "Possible gap",
    feed_never: "No data yet",
    feed_unknown: "Unknown",

    panel_onestop: "One-stop service",
    panel_vc: "Video conferencing",
    panel_soc: "Security operations (SOC)",

    today_received: "Dossiers received today",
    today_resolved: "Resolved today",
    online_ratio: "Online ratio",
    on_time_ratio: "On-time ratio (30 days)",
    per_minute: "Per minute, last 60 minutes",
    spark_received: "Received",
    spark_resolved: "Resolved",
    spark_window: "60 min",
    open_by_status: "Open dossiers by status",
    st_submitted: "Submitted",
    st_in_progress: "In progress",
    st_waiting_citizen: "Awaiting docs",
    st_paused: "Paused",
    overdue: "Overdue",
    due_soon: "Due soon",
    stalled: "Stalled (> 48 h)",
    stalled_over: "Stalled (> {h} h)",
    stalled_over_working: "Stalled (> {h} working h)",
    worst_agencies: "Agencies with the most overdue dossiers",
    worst_of: "{n} of {m} agencies",
    no_worst: "No overdue, due-soon or stalled dossiers",

    meetings_active: "Meetings in progress",
    endpoints_connected: "Endpoints connected",
    endpoints_missing: "Endpoints missing",
    endpoints_poor: "Poor quality",
    meetings_list: "Meetings",
    no_meetings: "No meeting in progress",
    started: "Started",
    connected_of: "endpoints connected",
    missing_short: "Missing",
    poor_short: "Poor",
    lvl_central: "Central",
    lvl_province: "Province",
    lvl_commune: "Commune",
    lvl_district: "District (before 7/2025)",
    lvl_unknown: "Unknown level",

    soc_alerts_60m: "Security alerts (60 min)",
    incidents_by_sev: "Incidents by severity",
    incidents_open: "Open incidents",
    incidents_unack: "Not acknowledged",
    systems_silent: "Silent systems",
    no_silent: "No silent system",
    sev_critical: "Critical",
    sev_high: "High",
    sev_medium: "Medium",
    sev_low: "Low",

    alerts_firing: "Firing alerts",
    no_alerts: "No alert is firing",
    al_critical: "Critical",
    al_warning: "Warning",
    al_info: "Info",
    rule_dossier_overdue: "Overdue dossiers",
    rule_dossier_stalled: "Stalled dossiers",
    rule_feed_silent: "Feed silent",
    rule_endpoint_missing: "Endpoints missing",
    rule_endpoint_poor_quality: "Poor-quality endpoints",
    rule_incident_unacknowledged: "Unacknowledged incident",
    rule_soc_system_silent: "Silent system",
    since: "since {t}",
    h_new: "New",
    h_reminded: "reminded {n}×",
    h_escalated: "Escalated: nobody has taken it",
    h_taken: "Taken: {by}",
    h_silenced: "Silenced until {t}",
    more: "+{n} more",
    alerts_hidden: "+{n} alerts not shown:",
    alerts_hidden_one: "+1 alert not shown:",
    hidden_critical: "{n} critical",
    hidden_warning: "{n} warning",
    hidden_info: "{n} info",

    dur_lt1: "under 1 min",
    dur_m: "{m} min",
    dur_hm: "{h} h {m} min",
    dur_d: "{n} d",
    weekdays: ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"],
  },
};

// `alert_text`: an alert's sentence from its `rule` and `params` (docs/alerts.md), the same
// sentences as src/outputs/alerts/summary.rs. A template throws when a value it needs is
// missing, and the page then shows the alert's own `summary`.
(function () {
  "use strict";

  // A value of `params`: present, else the template cannot be used.
  function req(p, key) {
    const v = p[key];
    if (v === undefined || v === null || v === "") throw new Error("alert params: no " + key);
    return v;
  }
  function int(p, key) {
    const v = req(p, key);
    if (!Number.isInteger(v)) throw new Error("alert params: " + key + " is not an integer");
    return v;
  }
  function num(p, key) {
    const v = req(p, key);
    if (typeof v !== "number" || !Number.isFinite(v)) throw new Error("alert params: " + key + " is not a number");
    return String(v); // as Rust writes a float: 1, 0.5, 300
  }
  // `1 dossier`, `2 dossiers`.
  const counted = (n, one, many) => (n === 1 ? "1 " + one : n + " " + many);
  // `«title» (id)`, or the id alone when the title is unknown.
  function meetingName(p) {
    const id = req(p, "meeting");
    return p.title ? "«" + p.title + "» (" + id + ")" : id;
  }
  // The agency as a sentence names it: its name from the directory, else prefix + code.
  function agencyName(p, prefix) {
    return typeof p.agency_name === "string" && p.agency_name ? p.agency_name : prefix + req(p, "agency");
  }
  // A threshold in whole minutes, or in seconds when it is not whole minutes.
  function viDuration(p) {
    const s = int(p, "seconds");
    return s % 60 === 0 ? s / 60 + " phút" : s + " giây";
  }
  function enDuration(p) {
    const s = int(p, "seconds");
    return s % 60 === 0 ? counted(s / 60, "minute", "minutes") : counted(s, "second", "seconds");
  }
  function source(p, names) {
    const name = names[req(p, "source")];
    if (!name) throw new Error("alert params: unknown source");
    return name;
  }
  function severity(p, names) {
    const name = names[req(p, "incident_severity")];
    if (!name) throw new Error("alert params: unknown severity");
    return name;
  }
  const VI_SOURCES = {
    onestop: "Hệ thống thông tin giải quyết TTHC",
    vc: "Hệ thống hội nghị truyền hình",
    soc: "Trung tâm giám sát an toàn thông tin (SOC)",
  };
  const EN_SOURCES = {
    onestop: "The administrative procedures information system",
    vc: "The video-conferencing system",
    soc: "The security operations centre (SOC)",
  };
  const VI_SEVERITIES = { low: "thấp", medium: "trung bình", high: "cao", critical: "nghiêm trọng" };
  const EN_SEVERITIES = { low: "low", medium: "medium", high: "high", critical: "critical" };
  const viNum = (p, key) => num(p, key).replace(".", ",");

  const VI_ALERTS = {
    dossier_overdue: (p) =>
      agencyName(p, "Đơn vị ") + " có " + int(p, "count") + " hồ sơ đang xử lý quá hạn trả kết quả.",
    dossier_stalled: (p) =>
      agencyName(p, "Đơn vị ") + " có " + int(p, "count") + " hồ sơ chậm luân chuyển, không có tiến triển quá " +
      int(p, "hours") + " giờ" + (p.working_hours === true ? " làm việc" : "") + ".",
    feed_silent: (p) => source(p, VI_SOURCES) + " không gửi sự kiện nào trong hơn " + viDuration(p) + ".",
    endpoint_missing: (p) =>
      "Cuộc họp " + meetingName(p) + " thiếu " + int(p, "count") + " điểm cầu chưa kết nối sau hơn " +
      viDuration(p) + " kể từ khi bắt đầu.",
    endpoint_poor_quality: (p) =>
      "Cuộc họp " + meetingName(p) + " có " + int(p, "count") + " điểm cầu chất lượng kém (mất gói trên " +
      viNum(p, "packet_loss_pct") + "%, jitter trên " + viNum(p, "jitter_ms") + " ms hoặc trễ khứ hồi trên " +
      viNum(p, "rtt_ms") + " ms).",
    incident_unacknowledged: (p) =>
      "Sự cố " + req(p, "incident") + " mức " + severity(p, VI_SEVERITIES) + " trên hệ thống " + req(p, "system") +
      " chưa được tiếp nhận sau hơn " + viDuration(p) + ".",
    soc_system_silent: (p) =>
      "Hệ thống " + req(p, "system") + " không gửi cảnh báo hay tín hiệu nào trong hơn " + viDuration(p) + ".",
  };

  const EN_ALERTS = {
    dossier_overdue: (p) => {
      const n = int(p, "count");
      return agencyName(p, "Agency ") + " has " + counted(n, "dossier", "dossiers") + " in progress past " +
        (n === 1 ? "its" : "their") + " due date.";
    },
    dossier_stalled: (p) => {
      const h = int(p, "hours");
      return agencyName(p, "Agency ") + " has " + counted(int(p, "count"), "stalled dossier", "stalled dossiers") +
        " with no progress for more than " +
        (p.working_hours === true ? counted(h, "working hour", "working hours") : counted(h, "hour", "hours")) + ".";
    },
    feed_silent: (p) => source(p, EN_SOURCES) + " has sent no event for more than " + enDuration(p) + ".",
    endpoint_missing: (p) =>
      "Meeting " + meetingName(p) + " is missing " +
      counted(int(p, "count"), "expected endpoint", "expected endpoints") + " more than " + enDuration(p) +
      " after it started.",
    endpoint_poor_quality: (p) =>
      "Meeting " + meetingName(p) + " has " + counted(int(p, "count"), "endpoint", "endpoints") +
      " with poor quality (packet loss over " + num(p, "packet_loss_pct") + "%, jitter over " + num(p, "jitter_ms") +
      " ms or round-trip time over " + num(p, "rtt_ms") + " ms).",
    incident_unacknowledged: (p) =>
      "Incident " + req(p, "incident") + " (" + severity(p, EN_SEVERITIES) + ") on system " + req(p, "system") +
      " has not been acknowledged for more than " + enDuration(p) + ".",
    soc_system_silent: (p) =>
      "System " + req(p, "system") + " has sent no alert or heartbeat for more than " + enDuration(p) + ".",
  };

  // The roll-up alert of a rule beyond its cap of subjects (`params.others`), as summary.rs.
  const VI_OTHERS_WHAT = {
    dossier_overdue: "đơn vị khác có hồ sơ đang xử lý quá hạn",
    dossier_stalled: "đơn vị khác có hồ sơ chậm luân chuyển",
    feed_silent: "nguồn dữ liệu khác không gửi sự kiện",
    endpoint_missing: "cuộc họp khác thiếu điểm cầu",
    endpoint_poor_quality: "cuộc họp khác có điểm cầu chất lượng kém",
    incident_unacknowledged: "sự cố khác chưa được tiếp nhận",
    soc_system_silent: "hệ thống khác không gửi tín hiệu",
  };
  const EN_OTHERS_WHAT = {
    dossier_overdue: ["agency", "agencies", "with overdue dossiers"],
    dossier_stalled: ["agency", "agencies", "with stalled dossiers"],
    feed_silent: ["source", "sources", "silent"],
    endpoint_missing: ["meeting", "meetings", "with missing endpoints"],
    endpoint_poor_quality: ["meeting", "meetings", "with poor-quality endpoints"],
    incident_unacknowledged: ["incident", "incidents", "not acknowledged"],
    soc_system_silent: ["system", "systems", "silent"],
  };
  const VI_OTHERS = {};
  const EN_OTHERS = {};
  for (const rule of Object.keys(VI_OTHERS_WHAT)) {
    VI_OTHERS[rule] = (p) => "Và " + int(p, "count") + " " + VI_OTHERS_WHAT[rule] + ".";
    EN_OTHERS[rule] = (p) => {
      const [one, many, what] = EN_OTHERS_WHAT[rule];
      const n = int(p, "count");
      return "And " + n + " more " + (n === 1 ? one : many) + " " + what + ".";
    };
  }

  // The province-wide digest of a dossier rule (`{rule}:*`, params.digest).
  const VI_DIGEST = {
    dossier_overdue: (p) => "Toàn tỉnh có " + int(p, "count") + " hồ sơ đang xử lý quá hạn trả kết quả, tại " + int(p, "agencies") + " đơn vị.",
    dossier_stalled: (p) => "Toàn tỉnh có " + int(p, "count") + " hồ sơ chậm luân chuyển, tại " + int(p, "agencies") + " đơn vị.",
  };
  const EN_DIGEST = {
    dossier_overdue: (p) => "Province-wide, " + counted(int(p, "count"), "dossier", "dossiers") + " past due at " + counted(int(p, "agencies"), "agency", "agencies") + ".",
    dossier_stalled: (p) => "Province-wide, " + counted(int(p, "count"), "stalled dossier", "stalled dossiers") + " at " + counted(int(p, "agencies"), "agency", "agencies") + ".",
  };
  window.IOCD_I18N.vi.alert_digest = VI_DIGEST;
  window.IOCD_I18N.en.alert_digest = EN_DIGEST;
  window.IOCD_I18N.vi.alert_text = VI_ALERTS;
  window.IOCD_I18N.en.alert_text = EN_ALERTS;
  window.IOCD_I18N.vi.alert_others = VI_OTHERS;
  window.IOCD_I18N.en.alert_others = EN_OTHERS;
})();

// The read-only pages' shared setup: the page's language and words (its `data-i18n`
// elements filled, the language switch pointed at the other one), numbers as the province
// writes them ("88,5%"), and URLs: `keep` for the pages (language and token kept), `api` for
// the API (the token only: the API refuses parameters it does not know).
window.IOCD_PAGE = function () {
  "use strict";
  const params = new URLSearchParams(location.search);
  const lang = (params.get("lang") || "").toLowerCase() === "en" ? "en" : "vi";
  const I18N = window.IOCD_I18N || {};
  const T = I18N[lang] || I18N.vi || {};
  const t = (key, vars) => {
    let s = T[key] !== undefined ? String(T[key]) : key;
    for (const k in vars || {}) s = s.split("{" + k + "}").join(vars[k]);
    return s;
  };
  const intFmt = new Intl.NumberFormat(T.locale || "vi-VN", { maximumFractionDigits: 0 });
  const pctFmt = new Intl.NumberFormat(T.locale || "vi-VN", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const percent = (p) => (isNum(p) ? pctFmt.format(p) + (T.percent_sep || "") + "%" : "—");
  const token = params.get("token");
  const url = (path, extra, withLang) => {
    const q = new URLSearchParams(extra || {});
    if (withLang && lang === "en") q.set("lang", "en");
    if (token) q.set("token", token);
    const s = q.toString();
    return path + (s ? "?" + s : "");
  };
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = t(e.dataset.i18n); });
  const sw = document.getElementById("lang-switch");
  if (sw) {
    const q = new URLSearchParams(location.search);
    q.set("lang", lang === "en" ? "vi" : "en");
    sw.href = "?" + q.toString();
  }
  return {
    params, lang, T, t, isNum,
    fmtInt: (v) => (isNum(v) ? intFmt.format(v) : "—"),
    // A ratio (0.885) and a percentage (88.5), both written "88,5%".
    fmtPct: (r) => percent(isNum(r) ? r * 100 : r),
    fmtPercent: percent,
    byId: (id) => document.querySelector('[data-testid="' + id + '"]'),
    el: (tag, cls, text) => {
      const e = document.createElement(tag);
      if (cls) e.className = cls;
      if (text !== undefined && text !== null) e.textContent = String(text);
      return e;
    },
    keep: (path, extra) => url(path, extra, true),
    api: (path, extra) => url(path, extra, false),
  };
};
