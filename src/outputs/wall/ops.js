// The duty officer's page (/ops): lists the firing alerts from GET /api/v1/alerts and acts
// on them through the operators' API (docs/openapi.json); follows /ws and reads the list
// again at every alert frame or snapshot, so what another operator does shows within one
// push interval. The token (operator role) is kept in this browser's localStorage or
// given as ?token=. All server text goes in through textContent.
(function () {
  "use strict";

  const RULES = ["dossier_overdue", "dossier_stalled", "feed_silent", "endpoint_missing",
    "endpoint_poor_quality", "incident_unacknowledged", "soc_system_silent"];
  const params = new URLSearchParams(location.search);
  const lang = (params.get("lang") || "").toLowerCase() === "en" ? "en" : "vi";
  const I18N = window.IOCD_I18N || {};
  const T = Object.assign({}, I18N[lang] || I18N.vi || {}, (lang === "en" ? {
    ops_title: "Alert handling", ops_token: "Access token", ops_save: "Save",
    ops_col_sev: "Severity", ops_col_alert: "Alert", ops_col_state: "Status", ops_col_act: "Actions",
    ops_ack: "Take", ops_unack: "Release", ops_assign: "Assign", ops_comment: "Note",
    ops_comment_ph: "Comment", ops_assignee_ph: "Person or unit", ops_silences: "Silences",
    ops_rule: "Rule", ops_subject: "Subject (empty: all)", ops_minutes: "Minutes", ops_reason: "Reason",
    ops_silence: "Silence", ops_expire: "End now", ops_done: "Done: {what}", ops_failed: "Refused: {why}",
    ops_active: "in force until {t}", ops_ended: "ended {t}", ops_none: "No silence",
    ops_no_token: "Give a token with the operator role",
  } : {
    ops_title: "Xử lý cảnh báo", ops_token: "Mã truy cập", ops_save: "Lưu",
    ops_col_sev: "Mức", ops_col_alert: "Cảnh báo", ops_col_state: "Tình trạng", ops_col_act: "Xử lý",
    ops_ack: "Tiếp nhận", ops_unack: "Bỏ tiếp nhận", ops_assign: "Giao việc", ops_comment: "Ghi chú",
    ops_comment_ph: "Nội dung", ops_assignee_ph: "Người hoặc đơn vị", ops_silences: "Tạm tắt cảnh báo",
    ops_rule: "Quy tắc", ops_subject: "Đối tượng (để trống: tất cả)", ops_minutes: "Số phút", ops_reason: "Lý do",
    ops_silence: "Tạm tắt", ops_expire: "Kết thúc ngay", ops_done: "Đã thực hiện: {what}", ops_failed: "Không thực hiện được: {why}",
    ops_active: "đang hiệu lực đến {t}", ops_ended: "đã kết thúc {t}", ops_none: "Không có",
    ops_no_token: "Cần mã truy cập có vai trò trực ban (operator)",
  }));
  function t(key, vars) {
    let s = T[key] !== undefined ? String(T[key]) : key;
    for (const k in vars || {}) s = s.split("{" + k + "}").join(vars[k]);
    return s;
  }
  const byId = (id) => document.querySelector('[data-testid="' + id + '"]');
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  const when = (s) => { const d = s ? new Date(s) : null; return d && !isNaN(d) ? d.toLocaleString(lang === "en" ? "en-GB" : "vi-VN", { timeZone: "Asia/Ho_Chi_Minh" }) : "—"; };

  let token = params.get("token") || localStorage.getItem("iocd.token") || "";
  byId("ops-token").value = token;
  byId("ops-token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    token = byId("ops-token").value.trim();
    localStorage.setItem("iocd.token", token);
    refresh();
    connect();
  });

  function status(text, ok) {
    const s = byId("ops-status");
    s.textContent = text;
    s.dataset.ok = ok ? "true" : "false";
  }

  async function call(method, path, body) {
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    const resp = await fetch(path, { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body) });
    let doc = null;
    try { doc = await resp.json(); } catch (e) { doc = null; }
    if (!resp.ok) throw new Error((doc && doc.error) || resp.status + " " + resp.statusText);
    return doc;
  }

  async function act(alert, action, body) {
    try {
      await call("POST", "/api/v1/alerts/" + encodeURIComponent(alert.id) + "/" + action, body);
      status(t("ops_done", { what: t("ops_" + { acknowledge: "ack", unacknowledge: "unack", assign: "assign", comment: "comment" }[action]) }), true);
      refresh();
    } catch (e) {
      status(t("ops_failed", { why: e.message }), false);
    }
  }

  const shownSev = (a) => (a.escalated && a.escalated.severity) || a.severity;
  function stateText(a) {
    switch (a.handling) {
      case "acknowledged": return t("h_taken", { by: (a.acknowledged && a.acknowledged.by) || "" }) + (a.assignee ? " → " + a.assignee.to : "");
      case "escalated": return t("h_escalated");
      case "silenced": return t("h_silenced", { t: when(a.silenced && a.silenced.until) });
      default: return t("h_new") + (a.reminders ? " · " + t("h_reminded", { n: a.reminders }) : "");
    }
  }

  function row(a) {
    const tr = el("tr", "ops-row");
    tr.dataset.testid = "ops-alert";
    tr.dataset.alertId = a.id;
    tr.dataset.handling = a.handling || "new";
    tr.dataset.sev = shownSev(a);
    tr.append(el("td", "ops-sev", t("al_" + shownSev(a))));
    const what = el("td", "ops-what");
    what.append(el("div", "ops-summary", a.summary), el("div", "ops-since", t("since", { t: when(a.since) }) + " · " + a.id));
    tr.append(what);
    const st = el("td", "ops-state", stateText(a));
    st.dataset.testid = "ops-state";
    if (a.acknowledged && a.acknowledged.comment) st.append(el("div", "ops-note", "“" + a.acknowledged.comment + "”"));
    tr.append(st);
    const acts = el("td", "ops-acts");
    const comment = el("input");
    comment.placeholder = t("ops_comment_ph");
    comment.dataset.testid = "ops-comment";
    const assignee = el("input");
    assignee.placeholder = t("ops_assignee_ph");
    assignee.dataset.testid = "ops-assignee";
    const button = (key, testid, onClick) => {
      const b = el("button", null, t(key));
      b.type = "button";
      b.dataset.testid = testid;
      b.addEventListener("click", onClick);
      return b;
    };
    const withComment = () => (comment.value.trim() ? { comment: comment.value.trim() } : {});
    // The comment goes with whatever is done; the assignee with "assign".
    acts.append(comment);
    if (a.handling === "acknowledged") acts.append(button("ops_unack", "ops-unack", () => act(a, "unacknowledge", withComment())));
    else acts.append(button("ops_ack", "ops-ack", () => act(a, "acknowledge", withComment())));
    acts.append(button("ops_comment", "ops-note", () => act(a, "comment", { comment: comment.value.trim() })),
      assignee, button("ops_assign", "ops-assign", () => act(a, "assign", Object.assign({ assignee: assignee.value.trim() }, withComment()))));
    tr.append(acts);
    return tr;
  }

  const sevRank = (a) => ["critical", "warning", "info"].indexOf(shownSev(a));
  let refreshing = null;
  async function refresh() {
    if (refreshing) return refreshing;
    refreshing = (async () => {
      try {
        const list = await call("GET", "/api/v1/alerts?limit=1000");
        const alerts = (list.alerts || []).slice().sort((a, b) =>
          Number(a.handling === "silenced") - Number(b.handling === "silenced") || sevRank(a) - sevRank(b) ||
          String(b.since).localeCompare(String(a.since)) || String(a.id).localeCompare(String(b.id)));
        byId("ops-count").textContent = String(list.total ?? alerts.length);
        byId("ops-alerts").replaceChildren(...alerts.map(row));
        const sil = await call("GET", "/api/v1/silences");
        const items = (sil.silences || []).map((x) => {
          const li = el("li", "ops-silence-item");
          li.dataset.testid = "ops-silence";
          li.dataset.active = String(x.active);
          li.append(el("span", null, (T["rule_" + x.rule] || x.rule) + (x.subject ? " · " + x.subject : "") + " — " + x.reason + " — " + x.by + ", " +
            (x.active ? t("ops_active", { t: when(x.ends_at) }) : t("ops_ended", { t: when(x.ends_at) }))));
          if (x.active) {
            const b = el("button", null, t("ops_expire"));
            b.type = "button";
            b.dataset.testid = "ops-expire";
            b.addEventListener("click", async () => {
              try { await call("POST", "/api/v1/silences/" + encodeURIComponent(x.silence_id) + "/expire", {}); refresh(); }
              catch (e) { status(t("ops_failed", { why: e.message }), false); }
            });
            li.append(" ", b);
          }
          return li;
        });
        byId("ops-silences").replaceChildren(...(items.length ? items : [el("li", "empty", t("ops_none"))]));
        document.body.dataset.loaded = "true";
      } catch (e) {
        status(token ? t("ops_failed", { why: e.message }) : t("ops_no_token"), false);
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }

  const ruleSelect = byId("ops-silence-rule");
  for (const r of RULES) {
    const o = el("option", null, T["rule_" + r] || r);
    o.value = r;
    ruleSelect.append(o);
  }
  byId("ops-silence-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = e.target;
    const body = { rule: f.rule.value, duration_minutes: Number(f.minutes.value), reason: f.reason.value.trim() };
    if (f.subject.value.trim()) body.subject = f.subject.value.trim();
    try {
      await call("POST", "/api/v1/silences", body);
      status(t("ops_done", { what: t("ops_silence") }), true);
      refresh();
    } catch (err) {
      status(t("ops_failed", { why: err.message }), false);
    }
  });

  // Follow the daemon: any snapshot or alert frame means the list may have changed.
  let ws = null;
  let timer = null;
  function connect() {
    if (ws) { ws.onclose = null; ws.close(); }
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws" + (token ? "?token=" + encodeURIComponent(token) : "");
    ws = new WebSocket(url);
    ws.onmessage = () => { clearTimeout(timer); timer = setTimeout(refresh, 50); };
    ws.onclose = () => { setTimeout(connect, 2000); };
  }

  for (const e of document.querySelectorAll("[data-i18n]")) {
    const v = T[e.dataset.i18n];
    if (v !== undefined) e.textContent = v;
  }
  // The wall link keeps the token (the wall needs one too when tokens are configured).
  const home = document.querySelector('a[href="/"]');
  if (home && token) home.href = "/?token=" + encodeURIComponent(token) + (lang === "en" ? "&lang=en" : "");
  const sw = document.getElementById("lang-switch");
  if (sw) sw.href = lang === "en" ? "?lang=vi" : "?lang=en";
  document.documentElement.lang = lang;
  refresh();
  connect();
})();
