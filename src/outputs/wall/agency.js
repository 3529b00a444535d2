// The agency page: GET /api/v1/agencies/{code} every 5 s, drawn with the wall's words
// (i18n.js) and style. Read-only; a token in the page's URL is passed on to the API.
(function () {
  "use strict";
  const { lang, T, t, isNum, fmtInt, fmtPct, fmtPercent, byId, el, keep, api } = window.IOCD_PAGE();
  const code = decodeURIComponent(location.pathname.replace(/^\/agency\//, ""));
  byId("agency-back").href = keep("/");
  byId("agency-766-link").href = keep("/scorecard");

  function list(box, rows, empty) {
    box.replaceChildren(...(rows.length ? rows : [el("div", "empty ok", t(empty))]));
  }

  function render(a) {
    document.body.dataset.state = "live";
    byId("agency-name").textContent = a.name || a.code;
    byId("agency-code").textContent = a.code;
    document.title = "IOC — " + (a.short_name || a.code);
    const meta = [];
    if (a.level) meta.push(t("lvl_" + a.level));
    if (!a.known) meta.push(t("agency_unknown"));
    if (a.valid_to) meta.push(t("agency_valid_to", { d: a.valid_to }) + (a.successor ? " → " + a.successor : ""));
    byId("agency-meta").textContent = meta.join(" · ");
    byId("agency-open").textContent = fmtInt(a.open_total);
    byId("agency-overdue").textContent = fmtInt(a.overdue);
    byId("agency-due-soon").textContent = fmtInt(a.due_soon);
    byId("agency-stalled").textContent = fmtInt(a.stalled);
    for (const [id, n] of [["agency-overdue", a.overdue], ["agency-due-soon", a.due_soon], ["agency-stalled", a.stalled]]) {
      byId(id).parentElement.classList.toggle("on", isNum(n) && n > 0); // coloured as on the wall
    }
    byId("agency-on-time").textContent = fmtPct(a.on_time_ratio);
    byId("agency-online").textContent = fmtPct(a.online_ratio);
    // The month and year to date, as provinces report them (estimates from what iocd saw).
    const pr = a.periods || {};
    const today = pr.today || {};
    byId("agency-today").textContent = t("period_today", { r: fmtInt(today.received), s: fmtInt(today.resolved) });
    const rows = [
      ["period_carried", (p) => fmtInt(p.carried_over)],
      ["period_received", (p) => fmtInt(p.received.total)],
      ["period_received_online", (p) => fmtInt(p.received.online)],
      ["period_early", (p) => fmtInt(p.resolved.early)],
      ["period_on_time", (p) => fmtInt(p.resolved.on_time)],
      ["period_late", (p) => fmtInt(p.resolved.late)],
      ["period_open_within", (p) => fmtInt(p.open_within_time)],
      ["period_open_overdue", (p) => fmtInt(p.open_overdue)],
      ["period_progress", (p) => fmtPct(p.progress_estimate)],
      ["period_online_share", (p) => fmtPct(p.online_share_estimate)],
    ];
    byId("agency-periods").tBodies[0].replaceChildren(...rows.map(([key, f]) => {
      const tr = el("tr");
      tr.dataset.row = key;
      tr.append(el("th", null, t(key)));
      for (const p of [pr.month, pr.year]) tr.append(el("td", null, p ? f(p) : "—"));
      return tr;
    }));
    const od = (a.dossiers && a.dossiers.overdue) || { first: [], total: 0 };
    list(byId("agency-overdue-list"), od.first.map((id) => el("div", "agency-row", id)), "agency_none");
    const ch = a.children || { count: 0 };
    list(byId("agency-children"), ch.count ? [el("div", "agency-row",
      t("agency_children_sum", { n: fmtInt(ch.count), o: fmtInt(ch.rollup.overdue), s: fmtInt(ch.rollup.stalled) }))] : [], "agency_none");
    const vc = a.vc || { endpoints: [] };
    list(byId("agency-endpoints"), vc.endpoints.map((e) => {
      const state = e.connected_to ? (e.poor_quality ? "agency_ep_poor" : "agency_ep_connected")
        : (e.missing_from.length ? "agency_ep_missing" : "agency_ep_idle");
      const r = el("div", "agency-row", e.endpoint_id + " — " + t(state, { m: e.connected_to || e.missing_from.join(", ") }));
      r.dataset.state = state;
      return r;
    }), "agency_none");
    const soc = a.soc || { systems: [], incidents_open: [] };
    list(byId("agency-systems"), soc.systems.map((s) =>
      el("div", "agency-row", s.system_id + " — " + t(s.silent ? "agency_sys_silent" : "agency_sys_ok"))), "agency_none");
    list(byId("agency-incidents"), soc.incidents_open.map((i) =>
      el("div", "agency-row", i.incident_id + " · " + (i.severity ? t("sev_" + i.severity) : "") + " · " + i.system_id +
        (i.acknowledged ? "" : " · " + t("incidents_unack")))), "agency_none");
    list(byId("agency-alerts"), (a.alerts || []).map((al) => {
      // The sentence in the page's language from the alert's params, as on the wall; the
      // server's own sentence when a template cannot write it.
      let s = al.summary;
      const write = T.alert_text && T.alert_text[al.rule];
      try { if (write && !(al.params && al.params.others)) s = write(al.params || {}); } catch (e) { s = al.summary; }
      const r = el("div", "agency-row", s);
      r.dataset.rule = al.rule;
      return r;
    }), "no_alerts");
  }

  function fail(message) {
    document.body.dataset.state = "stale";
    byId("agency-error-text").textContent = message;
  }

  // The agency's Decision 766 indicators this month, from the scorecard (estimates).
  function render766(card) {
    const mine = (card.agencies || []).find((r) => r.code === code);
    const rows = (card.indicators || []).map((ind) => {
      const v = mine ? mine.indicators[ind.id] : null;
      const tr = el("tr");
      tr.dataset.indicator = ind.id;
      tr.append(el("th", null, ind.id + " " + (lang === "en" ? ind.name_en : ind.name_vi)),
        el("td", null, v ? fmtPct(v.ratio) : "—"), el("td", null, v ? fmtPct(v.previous_ratio) : "—"));
      return tr;
    });
    if (mine && mine.score) {
      const tr = el("tr");
      tr.dataset.indicator = "score";
      tr.dataset.band = mine.score.band || "none";
      tr.append(el("th", null, t("sc_score_short") + (mine.score.band ? " · " + t("band_" + mine.score.band) : "")),
        el("td", "sc-band", fmtPercent(mine.score.percent)), el("td", null, fmtPercent(mine.score.previous_percent)));
      rows.unshift(tr);
    }
    byId("agency-766").tBodies[0].replaceChildren(...rows);
  }

  async function refresh() {
    try {
      const res = await fetch(api("/api/v1/agencies/" + encodeURIComponent(code)), { cache: "no-store" });
      if (res.status === 404) { fail(t("agency_not_found", { c: code })); return; }
      if (!res.ok) { fail(t("agency_error", { s: res.status })); return; }
      render(await res.json());
    } catch (e) {
      fail(t("banner_lost"));
      return;
    }
    try {
      const card = await fetch(api("/api/v1/scorecard", { period: "month", agency: code }), { cache: "no-store" });
      if (card.ok) render766(await card.json());
    } catch (e) {
      // The agency's figures above stand; its 766 table keeps what it showed.
    }
  }
  refresh();
  setInterval(refresh, 5000);
})();
