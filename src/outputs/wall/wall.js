// IOC wall display: connects to /ws (docs/contract.md §4), renders each snapshot into the
// static markup of index.html, applies alert frames at once, and shows plainly when the data
// is stale. Classic script, no framework, no network besides /ws and /api/v1/replicas (the
// other replicas, to move to when this one stops answering). All server text goes in
// through textContent. Tests and previews may drive it through `window.iocdWall`.
(function () {
  "use strict";

  const TZ = "Asia/Ho_Chi_Minh"; // the IOC's local time (UTC+7, no daylight saving)
  const BACKOFF_MIN_MS = 1000;
  const BACKOFF_MAX_MS = 10000;
  // The server only pushes when figures change, so a quiet feed is silent on the socket.
  // After IDLE_PROBE_MS without a frame we send a `subscribe` (answered at once with a
  // snapshot); no answer within PROBE_TIMEOUT_MS means a dead link: close and reconnect.
  const IDLE_PROBE_MS = 15000;
  const PROBE_TIMEOUT_MS = 5000;
  const CONNECT_TIMEOUT_MS = 10000; // an opening handshake that hangs is given up too
  const ALL_TOPICS = ["onestop", "vc", "soc", "alerts"];
  const STATUSES = ["submitted", "in_progress", "waiting_citizen", "paused"];
  const SOC_SEVS = ["critical", "high", "medium", "low"];
  const ALERT_SEVS = ["critical", "warning", "info"];
  const ALERT_ICON = { critical: "i-crit", warning: "i-warn", info: "i-info" };

  const params = new URLSearchParams(location.search);
  const lang = (params.get("lang") || "").toLowerCase() === "en" ? "en" : "vi";
  const I18N = window.IOCD_I18N || {};
  const T = I18N[lang] || I18N.vi || {};

  function t(key, vars) {
    let s = T[key] !== undefined ? String(T[key]) : key;
    for (const k in vars || {}) s = s.split("{" + k + "}").join(vars[k]);
    return s;
  }

  // ---- formatting -------------------------------------------------------------------
  const intFmt = new Intl.NumberFormat(T.locale || "vi-VN", { maximumFractionDigits: 0 });
  const pctFmt = new Intl.NumberFormat(T.locale || "vi-VN", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const partsFmt = new Intl.DateTimeFormat("en-GB", {
    timeZone: TZ, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const fmtInt = (v) => (isNum(v) ? intFmt.format(v) : "—");

  function localParts(ms) {
    const p = {};
    for (const x of partsFmt.formatToParts(new Date(ms))) p[x.type] = x.value;
    return p;
  }
  const fmtClock = (ms) => { const p = localParts(ms); return p.hour + ":" + p.minute + ":" + p.second; };
  function fmtWhen(ms, seconds) { // HH:MM[:SS] today, dd/mm HH:MM on another day
    const p = localParts(ms), n = localParts(now());
    const hm = p.hour + ":" + p.minute + (seconds ? ":" + p.second : "");
    return p.day === n.day && p.month === n.month && p.year === n.year ? hm : p.day + "/" + p.month + " " + hm;
  }
  function fmtDuration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return t("dur_lt1");
    const m = Math.floor(s / 60);
    if (m < 60) return t("dur_m", { m: m });
    if (m < 48 * 60) return t("dur_hm", { h: Math.floor(m / 60), m: m % 60 });
    return t("dur_d", { n: Math.floor(m / 1440) });
  }
  const parseTime = (s) => { const ms = typeof s === "string" ? Date.parse(s) : NaN; return Number.isFinite(ms) ? ms : null; };

  // ---- DOM helpers ------------------------------------------------------------------
  const byId = (id) => document.querySelector('[data-testid="' + id + '"]');
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function icon(name) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "ic");
    svg.setAttribute("aria-hidden", "true");
    const use = document.createElementNS(ns, "use");
    use.setAttribute("href", "#" + name);
    svg.appendChild(use);
    return svg;
  }
  function setInt(id, v) {
    const e = byId(id);
    if (!e) return;
    e.textContent = fmtInt(v);
    e.dataset.value = isNum(v) ? String(v) : "";
    const tile = e.closest("[data-sev]");
    if (tile && tile.contains(e)) tile.classList.toggle("on", isNum(v) && v > 0);
  }
  function setPct(id, ratio) {
    const e = byId(id);
    if (!e) return;
    e.dataset.value = isNum(ratio) ? String(ratio) : "";
    if (!isNum(ratio)) { e.textContent = "—"; return; }
    e.textContent = pctFmt.format(ratio * 100);
    e.appendChild(el("span", "unit", (T.percent_sep || "") + "%")); // textContent "88,5 %"
  }
  const sum = (o, keys) => (o ? keys.reduce((a, k) => (isNum(o[k]) ? a + o[k] : a), 0) : null);

  // Hides the items of a fixed-height list that do not fit (the list is in order of
  // importance); tells how many in `moreEl`, and returns how many.
  function fitList(box, moreEl) {
    const items = Array.from(box.children);
    items.forEach((it) => { it.hidden = false; });
    let hidden = 0;
    for (const it of items) {
      if (hidden || it.offsetTop + it.offsetHeight > box.clientHeight + 1) { it.hidden = true; hidden++; }
    }
    if (moreEl) moreEl.textContent = hidden ? t("more", { n: fmtInt(hidden) }) : "";
    return hidden;
  }
  // Fills a chip box with labels; those that overflow become one "+N" chip.
  function fillChips(box, labels, cls) {
    box.replaceChildren(...labels.map((l) => el("span", "chip " + (cls || ""), l)));
    const limit = box.clientHeight + 1;
    const out = (c) => c.offsetTop + c.offsetHeight > limit;
    const chips = Array.from(box.children);
    let shown = chips.findIndex(out);
    if (shown < 0) return;
    chips.slice(shown).forEach((c) => c.remove());
    const more = el("span", "chip more-chip", "+" + fmtInt(labels.length - shown));
    box.appendChild(more);
    while (out(more) && more.previousElementSibling) {
      more.previousElementSibling.remove();
      more.textContent = "+" + fmtInt(labels.length - --shown);
    }
  }

  // ---- state ------------------------------------------------------------------------
  let snap = null;          // last snapshot rendered
  let alerts = null;        // firing alerts, or null when unknown
  let skewMs = 0;           // daemon clock minus browser clock, from snapshot `at`
  let lastDataAt = null;    // daemon time of the last frame received
  let lastSeq = null;       // seq of the last frame on this connection
  let seqGaps = 0;
  let state = "stale";
  let ws = null, attempt = 0, retryTimer = null, connectMs = 0, lastFrameMs = 0, probeSentMs = 0;
  const now = () => Date.now() + skewMs;

  // ---- panels -----------------------------------------------------------------------
  function renderOnestop(o) {
    o = o || {};
    const today = o.today || {};
    setInt("onestop-today-received", today.received);
    setInt("onestop-today-resolved", today.resolved);
    setPct("onestop-online-ratio", o.today ? today.online_ratio : undefined);
    setPct("onestop-on-time-ratio", o.on_time_ratio_30d);
    for (const s of STATUSES) setInt("onestop-open-" + s, (o.open || {})[s]);
    setInt("onestop-overdue", o.overdue);
    setInt("onestop-due-soon", o.due_soon);
    setInt("onestop-stalled", o.stalled);
    const sa = o.stalled_after;
    if (sa && isNum(sa.hours)) {
      byId("onestop-stalled-label").textContent = t(sa.working_hours === true ? "stalled_over_working" : "stalled_over", { h: fmtInt(sa.hours) });
    }
    const pm = o.per_minute_60m || {};
    const max = Math.max(1, ...(pm.received || []), ...(pm.resolved || []));
    for (const name of ["received", "resolved"]) {
      const arr = Array.isArray(pm[name]) ? pm[name] : null;
      renderSpark(byId("onestop-sparkline-" + name), arr, max, t("spark_" + name) + " — " + t("per_minute"));
      setInt("onestop-" + name + "-60m", arr ? arr.reduce((a, x) => a + (isNum(x) ? x : 0), 0) : undefined);
    }
    renderWorst(Array.isArray(o.worst_agencies) ? o.worst_agencies : null, o.agencies_with_open_dossiers);
  }

  function renderSpark(svg, values, max, label) {
    const ns = "http://www.w3.org/2000/svg";
    svg.replaceChildren();
    svg.setAttribute("aria-label", label);
    const base = document.createElementNS(ns, "line");
    for (const [k, v] of [["x1", 0], ["x2", 600], ["y1", 99], ["y2", 99], ["class", "spark-base"]]) base.setAttribute(k, v);
    svg.appendChild(base);
    if (!values) return;
    const w = 600 / Math.max(values.length, 1);
    values.forEach((v, i) => {
      const h = isNum(v) && v > 0 ? Math.max(3, (v / max) * 96) : 0;
      if (!h) return;
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("x", (i * w + w * 0.15).toFixed(1));
      r.setAttribute("width", (w * 0.7).toFixed(1));
      r.setAttribute("y", (100 - h).toFixed(1));
      r.setAttribute("height", h.toFixed(1));
      if (i === values.length - 1) r.setAttribute("class", "cur"); // minute in progress
      svg.appendChild(r);
    });
  }

  // The worst agencies, and what they are a part of: "5 of 41 agencies" (agencies with
  // open dossiers), counting the rows shown.
  function renderWorst(rows, total) {
    const box = byId("onestop-worst-agencies");
    const of = byId("onestop-worst-of");
    of.textContent = "";
    if (!rows) { box.replaceChildren(el("div", "empty", "—")); return; }
    if (!rows.length) { box.replaceChildren(el("div", "empty ok", t("no_worst"))); return; }
    box.replaceChildren(...rows.map((r, i) => {
      const row = el("div", "worst-row");
      row.dataset.testid = "onestop-worst-" + i;
      // The short name from the directory; the code when the directory does not know it.
      // It opens the agency's page (not for the `unknown` and `other` labels).
      const linked = r.agency !== "unknown" && r.agency !== "other";
      const name = el(linked ? "a" : "span", "agency", typeof r.name === "string" && r.name ? r.name : r.agency);
      name.title = r.agency;
      if (linked) {
        const q = new URLSearchParams();
        if (lang === "en") q.set("lang", "en");
        if (params.get("token")) q.set("token", params.get("token"));
        name.href = "/agency/" + encodeURIComponent(r.agency) + (q.toString() ? "?" + q.toString() : "");
      }
      name.dataset.testid = "onestop-worst-" + i + "-agency";
      row.appendChild(name);
      for (const [key, cls] of [["overdue", "critical"], ["due_soon", "warning"], ["stalled", "warning"]]) {
        const c = el("span", "n " + (isNum(r[key]) && r[key] > 0 ? cls : "zero"), fmtInt(r[key]));
        c.dataset.testid = "onestop-worst-" + i + "-" + key.replace("_", "-");
        row.appendChild(c);
      }
      return row;
    }));
    // The line takes its place before the rows are fitted, then counts those shown.
    const ofText = (n) => (isNum(total) && total >= n ? t("worst_of", { n: fmtInt(n), m: fmtInt(total) }) : "");
    of.textContent = ofText(rows.length);
    of.textContent = ofText(rows.length - fitList(box, null));
  }

  function renderVc(v) {
    v = v || {};
    setInt("vc-meetings-active", v.meetings_active);
    setInt("vc-endpoints-connected", v.endpoints_connected);
    setInt("vc-endpoints-missing", v.endpoints_missing);
    setInt("vc-endpoints-poor", v.endpoints_poor_quality);
    const box = byId("vc-meetings-list");
    const list = Array.isArray(v.meetings) ? v.meetings : null;
    if (!list || !list.length) {
      box.replaceChildren(el("div", "empty", list ? t("no_meetings") : "—"));
      byId("vc-meetings-more").textContent = "";
      return;
    }
    box.replaceChildren(...list.map(meetingCard));
    box.querySelectorAll(".chips").forEach((c) => fillChips(c, JSON.parse(c.dataset.ids), c.dataset.cls));
    fitList(box, byId("vc-meetings-more"));
  }

  function meetingCard(m, i) {
    const id = "vc-meeting-" + i;
    const missing = Array.isArray(m.missing) ? m.missing : [];
    const poor = Array.isArray(m.poor) ? m.poor : [];
    const card = el("article", "meeting");
    card.dataset.testid = id;
    card.dataset.meetingId = m.meeting_id || "";
    card.dataset.sev = missing.length ? "critical" : poor.length ? "warning" : "ok";
    const head = el("div", "m-head");
    const level = ["central", "province", "commune", "district"].includes(m.level) ? m.level : "unknown";
    const lvl = el("span", "lvl", t("lvl_" + level));
    lvl.dataset.level = level;
    const title = el("span", "m-title", m.title || m.meeting_id || "—");
    title.dataset.testid = id + "-title";
    const started = parseTime(m.started_at);
    head.append(lvl, title);
    const body = el("div", "m-body");
    const conn = el("span", "m-conn");
    const c = el("b", null, fmtInt(m.connected));
    c.dataset.testid = id + "-connected";
    conn.appendChild(c);
    if (isNum(m.expected) && m.expected > 0) {
      const ex = el("span", "m-exp", fmtInt(m.expected));
      ex.dataset.testid = id + "-expected";
      conn.append(el("span", "m-slash", "/"), ex);
    }
    body.append(conn, el("span", "m-conn-label", t("connected_of")));
    if (isNum(m.expected) && m.expected > 0 && isNum(m.connected)) {
      const bar = el("div", "bar");
      const fill = el("i");
      fill.style.width = Math.min(100, (m.connected / m.expected) * 100).toFixed(1) + "%";
      bar.appendChild(fill);
      body.appendChild(bar);
    }
    if (started !== null) body.append(el("span", "m-start", t("started") + " " + fmtWhen(started)));
    card.append(head, body);
    for (const [ids, key, sev, ic] of [[missing, "missing", "critical", "i-crit"], [poor, "poor", "warning", "i-warn"]]) {
      if (!ids.length) continue;
      const row = el("div", "m-eps");
      row.dataset.sev = sev;
      const lab = el("span", "m-eps-label");
      const n = el("b", null, fmtInt(ids.length));
      n.dataset.testid = id + "-" + key;
      lab.append(icon(ic), el("span", null, t(key + "_short") + " "), n);
      const chips = el("div", "chips");
      chips.dataset.ids = JSON.stringify(ids.map(String));
      chips.dataset.cls = sev;
      row.append(lab, chips);
      card.appendChild(row);
    }
    return card;
  }

  function renderSoc(s) {
    s = s || {};
    for (const sev of SOC_SEVS) {
      setInt("soc-alerts-60m-" + sev, (s.alerts_60m || {})[sev]);
      setInt("soc-incidents-open-" + sev, (s.incidents_open || {})[sev]);
      setInt("soc-incidents-unack-" + sev, (s.incidents_unacknowledged || {})[sev]);
    }
    setInt("soc-incidents-open", s.incidents_open ? sum(s.incidents_open, SOC_SEVS) : undefined);
    setInt("soc-incidents-unack", s.incidents_unacknowledged ? sum(s.incidents_unacknowledged, SOC_SEVS) : undefined);
    // An incident tile turns red when a critical or high incident is in it.
    for (const [kind, o] of [["open", s.incidents_open], ["unack", s.incidents_unacknowledged]]) {
      const hot = !!o && ((o.critical || 0) + (o.high || 0)) > 0;
      document.querySelector('.inc[data-kind="' + kind + '"]').classList.toggle("hot", hot);
    }
    setInt("soc-systems-silent", s.systems_silent);
    const box = byId("soc-silent-systems");
    const ids = Array.isArray(s.silent_system_ids) ? s.silent_system_ids.map(String) : null;
    if (ids && ids.length) fillChips(box, ids, "warning");
    else box.replaceChildren(el("div", "empty" + (ids || s.systems_silent === 0 ? " ok" : ""), ids || s.systems_silent === 0 ? t("no_silent") : "—"));
  }

  function renderSources(src) {
    for (const name of ["onestop", "vc", "soc"]) {
      const chip = byId("source-" + name);
      const info = src && src[name];
      const last = info ? parseTime(info.last_event_at) : null;
      const status = !info ? "unknown" : info.silent ? "silent" : last === null ? "never" : info.possible_gap ? "gap" : "ok";
      chip.dataset.status = status;
      chip.dataset.silent = info ? String(!!info.silent) : "";
      chip.querySelector("use").setAttribute("href", status === "ok" ? "#i-ok" : status === "silent" ? "#i-off" : "#i-info");
      chip.querySelector(".feed-status").textContent = t({ ok: "feed_ok", gap: "feed_gap", silent: "feed_silent", never: "feed_never", unknown: "feed_unknown" }[status]);
      chip.querySelector(".feed-time").textContent = last === null ? "" : " " + fmtWhen(last, true); // the space keeps textContent readable
      chip.title = last === null ? "" : fmtClock(last);
    }
  }

  // The severity an alert is shown at: one step up once escalated (nobody took it in time).
  const shownSev = (a) => (a.escalated && a.escalated.severity) || a.severity;
  // Silenced alerts are shown apart, after the others.
  const muted = (a) => a.handling === "silenced";
  // Most severe first (critical, warning, info), then newest `since`, ties by ascending id;
  // silenced ones last.
  const sevRank = (a) => { const i = ALERT_SEVS.indexOf(shownSev(a)); return i < 0 ? ALERT_SEVS.length : i; };
  function sortAlerts() {
    alerts.sort((a, b) => Number(muted(a)) - Number(muted(b)) || sevRank(a) - sevRank(b) ||
      (parseTime(b.since) || 0) - (parseTime(a.since) || 0) ||
      (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  // The alert's sentence in the page's language, from its `rule` and `params`; the server's
  // `summary` (in the daemon's language) for a rule or params the page does not know.
  function alertText(a) {
    const others = a.params && a.params.others === true;
    const digest = a.params && a.params.digest === true;
    const tpl = digest ? (T.alert_digest || {})[a.rule] : others ? (T.alert_others || {})[a.rule] : (T.alert_text || {})[a.rule];
    if (tpl && a.params && typeof a.params === "object") {
      try { return tpl(a.params); } catch (e) { /* falls back to the summary */ }
    }
    return a.summary || a.id || "";
  }

  // Where an alert stands with the operators: new, escalated, taken by whom (and given to
  // whom), or silenced until when.
  function handlingText(a) {
    const until = parseTime(a.silenced && a.silenced.until);
    switch (a.handling) {
      case "acknowledged": {
        const by = (a.acknowledged && a.acknowledged.by) || "";
        const to = a.assignee && a.assignee.to ? " → " + a.assignee.to : "";
        return t("h_taken", { by: by }) + to;
      }
      case "escalated": return t("h_escalated");
      case "silenced": return t("h_silenced", { t: until === null ? "—" : fmtWhen(until) });
      case "new": return t("h_new") + (a.reminders ? " · " + t("h_reminded", { n: a.reminders }) : "");
      default: return "";
    }
  }

  // "+12 alerts not shown: 2 critical, 10 warning", the counts in their severity's colour.
  function renderHidden(moreEl, items) {
    const hidden = items.filter((li) => li.hidden);
    moreEl.replaceChildren();
    if (!hidden.length) return;
    moreEl.append(el("span", null, hidden.length === 1 ? t("alerts_hidden_one") : t("alerts_hidden", { n: fmtInt(hidden.length) })));
    const parts = ALERT_SEVS.map((sev) => [sev, hidden.filter((li) => li.dataset.sev === sev).length]).filter(([, n]) => n > 0);
    parts.forEach(([sev, n], i) => {
      const part = el("span", "hidden-sev", t("hidden_" + sev, { n: fmtInt(n) }));
      part.dataset.sev = sev;
      part.dataset.testid = "alerts-hidden-" + sev;
      moreEl.append(" ", part, i < parts.length - 1 ? "," : "");
    });
  }

  // Rebuilt only when the alerts, the minute (for the ages) or the space change, so that
  // the aria-live list does not chatter at every snapshot.
  let alertsKey = "";
  function renderAlerts() {
    const list = byId("alerts-list");
    const key = JSON.stringify(alerts) + "|" + Math.floor(now() / 60000) + "|" + list.clientHeight + "|" + list.clientWidth;
    if (key === alertsKey) return;
    alertsKey = key;
    setInt("alerts-count", alerts ? alerts.length : undefined);
    for (const sev of ALERT_SEVS) setInt("alerts-count-" + sev, alerts ? alerts.filter((a) => !muted(a) && shownSev(a) === sev).length : undefined);
    if (!alerts) { list.replaceChildren(el("li", "empty", "—")); byId("alerts-more").textContent = ""; return; }
    if (!alerts.length) { list.replaceChildren(el("li", "empty ok", t("no_alerts"))); byId("alerts-more").textContent = ""; return; }
    const n = now();
    const items = alerts.map((a) => {
      const sev = ALERT_SEVS.includes(shownSev(a)) ? shownSev(a) : "info";
      const li = el("li", "alert");
      li.dataset.testid = "alert-item";
      li.dataset.alertId = a.id || "";
      li.dataset.sev = sev;
      li.dataset.handling = a.handling || "new";
      const badge = el("span", "a-sev");
      badge.append(icon(ALERT_ICON[sev]), el("span", null, t("al_" + sev)));
      const text = alertText(a);
      const summary = el("span", "a-summary", text);
      summary.title = text;
      const since = parseTime(a.since);
      const meta = el("span", "a-meta");
      meta.append(el("span", "a-rule", T["rule_" + a.rule] || a.rule || ""));
      const handling = handlingText(a);
      if (handling) {
        const h = el("span", "a-handling", handling);
        h.dataset.testid = "alert-handling";
        meta.prepend(h);
      }
      if (since !== null) meta.append(el("span", "a-since", t("since", { t: fmtWhen(since) }) + " · " + fmtDuration(n - since)));
      li.append(badge, summary, meta);
      return li;
    });
    list.replaceChildren(...items);
    // Most severe first, so the ones that do not fit are the least severe.
    fitList(list, null);
    renderHidden(byId("alerts-more"), items);
  }

  // ---- whole page -------------------------------------------------------------------
  function render(s) {
    if (!s || typeof s !== "object") return;
    snap = s;
    const at = parseTime(s.at);
    if (at !== null) skewMs = at - Date.now();
    lastDataAt = now();
    alerts = Array.isArray(s.alerts) ? s.alerts.filter((a) => a && a.state !== "resolved") : null;
    if (alerts) sortAlerts();
    draw();
    tick();
  }

  // Draws the last snapshot again (also after a resize: the lists fit to the space).
  function draw() {
    if (!snap) return;
    renderOnestop(snap.onestop);
    renderVc(snap.vc);
    renderSoc(snap.soc);
    renderSources(snap.sources);
    renderAlerts();
  }

  function applyAlert(a) {
    if (!a || !a.id) return;
    if (!alerts) alerts = [];
    alerts = alerts.filter((x) => x.id !== a.id);
    if (a.state === "firing") alerts.push(a);
    sortAlerts();
    renderAlerts();
  }

  function handleFrame(f) {
    if (!f || typeof f !== "object") return;
    if (isNum(f.seq)) {
      if (lastSeq !== null && f.seq !== lastSeq + 1) {
        seqGaps++;
        console.warn("iocd wall: seq gap, expected " + (lastSeq + 1) + ", got " + f.seq);
      }
      lastSeq = f.seq;
      document.body.dataset.seq = String(f.seq);
    }
    if (f.type === "snapshot") render(f);
    else if (f.type === "alert") { applyAlert(f.alert); lastDataAt = now(); }
    else if (f.type === "error") console.warn("iocd wall: server error frame: " + f.error);
  }

  function setState(next) {
    state = next === "live" ? "live" : "stale";
    document.body.dataset.state = state;
    const conn = byId("connection-state");
    const kind = state === "live" ? "live" : lastDataAt === null ? "connecting" : "stale";
    conn.dataset.kind = kind;
    conn.querySelector(".conn-text").textContent = t("conn_" + kind);
    byId("stale-banner-text").textContent = lastDataAt === null
      ? t("banner_never")
      : t("banner_lost") + " " + t("banner_last", { t: fmtClock(lastDataAt) });
  }

  // ---- replicas --------------------------------------------------------------------
  // With several replicas ([ha] in the daemon) the page learns them from /api/v1/replicas,
  // moves to the next one when its own stops answering, and shows which one it is on.
  // Alone, the list is this page's origin only. The replicas hold the same figures (docs/ha.md).
  let replicas = [{ name: "", base: location.origin }];
  let current = 0;

  function loadReplicas() {
    const token = params.get("token");
    fetch("/api/v1/replicas", { headers: token ? { Authorization: "Bearer " + token } : {} })
      .then((r) => (r.ok ? r.json() : null))
      .then((b) => {
        if (!b || !Array.isArray(b.peers)) return;
        const on = replicas[current].base;
        const own = { name: typeof b.replica === "string" ? b.replica : "", base: location.origin };
        const peers = b.peers
          .filter((p) => p && typeof p.name === "string" && typeof p.url === "string" && /^https?:\/\//.test(p.url))
          .map((p) => ({ name: p.name, base: p.url.replace(/\/+$/, "") }));
        replicas = [own].concat(peers);
        current = Math.max(0, replicas.findIndex((r) => r.base === on));
        showReplica();
      })
      .catch(() => { /* this replica is down: the list stays as it was */ });
  }

  function showReplica() {
    const r = replicas[current];
    byId("replica").textContent = replicas.length > 1 || r.name ? t("replica_on", { name: r.name || r.base }) : "";
    document.body.dataset.replica = r.name;
  }

  // ---- socket -----------------------------------------------------------------------
  function wsUrl() {
    const token = params.get("token");
    return replicas[current].base.replace(/^http/, "ws") + "/ws" +
      (token ? "?token=" + encodeURIComponent(token) : "");
  }

  function connect() {
    if (ws) return;
    clearTimeout(retryTimer);
    retryTimer = null;
    let sock;
    // A URL the browser refuses (an http:// peer of an https:// page) is a replica that
    // does not answer: the next one.
    try { sock = new WebSocket(wsUrl()); } catch (e) { abandon(true); return; }
    ws = sock;
    connectMs = Date.now();
    sock.onopen = () => {
      lastFrameMs = Date.now(); probeSentMs = 0; lastSeq = null;
      if (current === 0) loadReplicas(); // the list as this page's own replica has it now
    };
    sock.onmessage = (ev) => {
      if (sock !== ws) return;
      lastFrameMs = Date.now();
      probeSentMs = 0;
      let f;
      try { f = JSON.parse(ev.data); } catch (e) { console.warn("iocd wall: frame is not JSON"); return; }
      try { handleFrame(f); } catch (e) { console.error("iocd wall: cannot render frame", e); }
      if (f && f.type === "snapshot") { attempt = 0; setState("live"); }
    };
    sock.onclose = () => { if (sock === ws) abandon(true); }; // seq restarts on the next connection
  }

  // Forgets the socket at once: a close handshake over a dead link can take a minute.
  function abandon(reconnect) {
    const sock = ws;
    ws = null;
    lastSeq = null;
    if (sock) { sock.onclose = sock.onmessage = null; try { sock.close(); } catch (e) { /* already closed */ } }
    setState("stale");
    if (!reconnect) return;
    // The replica stopped answering: the next one, if there are others.
    if (replicas.length > 1) { current = (current + 1) % replicas.length; showReplica(); }
    scheduleReconnect();
  }

  function disconnect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    abandon(false);
  }

  function scheduleReconnect() {
    if (retryTimer) return;
    // Backs off per round of every replica: the first try on another one is quick.
    const round = Math.floor(attempt++ / replicas.length);
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, round));
    const delay = Math.min(BACKOFF_MAX_MS, base * (0.8 + 0.4 * Math.random())); // jitter ±20 %
    retryTimer = setTimeout(() => { retryTimer = null; connect(); }, delay);
  }

  // Every second: the clock, the liveness probe, and the ages shown in the alerts band.
  let lastMinute = null;
  function tick() {
    const n = now(), p = localParts(n);
    byId("clock").textContent = p.hour + ":" + p.minute + ":" + p.second;
    const wd = new Date(Date.UTC(+p.year, +p.month - 1, +p.day)).getUTCDay();
    byId("clock-date").textContent = (T.weekdays || [])[wd] + ", " + p.day + "/" + p.month + "/" + p.year;
    if (ws && ws.readyState === WebSocket.CONNECTING && Date.now() - connectMs > CONNECT_TIMEOUT_MS) abandon(true);
    else if (ws && ws.readyState === WebSocket.OPEN) {
      const idle = Date.now() - lastFrameMs;
      if (probeSentMs && Date.now() - probeSentMs > PROBE_TIMEOUT_MS) abandon(true);
      else if (!probeSentMs && idle > IDLE_PROBE_MS) {
        probeSentMs = Date.now();
        ws.send(JSON.stringify({ type: "subscribe", topics: ALL_TOPICS }));
      }
    }
    const minute = Math.floor(n / 60000);
    if (minute !== lastMinute) { lastMinute = minute; if (alerts) renderAlerts(); }
  }

  function applyLanguage() {
    document.documentElement.lang = lang;
    document.title = t("page_title");
    document.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = t(e.dataset.i18n); });
    const other = new URLSearchParams(location.search);
    if (lang === "en") other.delete("lang"); else other.set("lang", "en");
    const q = other.toString();
    document.getElementById("lang-switch").setAttribute("href", location.pathname + (q ? "?" + q : ""));
  }

  function start() {
    applyLanguage();
    setState("stale");
    tick();
    setInterval(tick, 1000);
    window.addEventListener("resize", draw);
    window.addEventListener("online", () => { if (!ws) { attempt = 0; connect(); } });
    // Only a page served by the daemon has a /ws to talk to (a file:// preview has none).
    // The replicas are asked for at once too: the page must know them before its own dies.
    if (location.protocol === "http:" || location.protocol === "https:") { loadReplicas(); connect(); }
  }

  window.iocdWall = {
    render: render,              // render one snapshot object (as a `snapshot` frame would)
    handleFrame: handleFrame,    // process one decoded frame as from the socket (seq check; state untouched)
    setState: setState,          // "live" | "stale": force the connection display (previews)
    connect: connect,
    disconnect: disconnect,
    get state() { return state; },
    get seq() { return lastSeq; },
    get seqGaps() { return seqGaps; },
    get alerts() { return alerts ? alerts.slice() : null; },
    get replica() { return replicas[current].name; }, // the replica the page is on ("" alone)
    alertText: alertText,        // an alert's sentence in the page's language
    lang: lang,
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
