// The Decision 766 scorecard page: GET /api/v1/scorecard every 10 s, drawn with the wall's
// words (i18n.js) and style. Read-only; a token in the page's URL is passed on to the API.
(function () {
  "use strict";
  const { params, lang, T, t, isNum, fmtPct, fmtPercent, byId, el, keep, api } = window.IOCD_PAGE();
  const period = ["week", "month", "year"].includes(params.get("period")) ? params.get("period") : "month";
  const ptsFmt = new Intl.NumberFormat(T.locale || "vi-VN", { maximumFractionDigits: 1 });
  byId("sc-back").href = keep("/");
  document.querySelectorAll("[data-period]").forEach((a) => {
    a.href = keep("/scorecard", { period: a.dataset.period });
    a.classList.toggle("on", a.dataset.period === period);
  });

  const trend = (d) => (isNum(d) ? (d > 0 ? "▲ " : d < 0 ? "▼ " : "= ") + ptsFmt.format(Math.abs(d)) : "");
  const name = (ind) => (lang === "en" ? ind.name_en : ind.name_vi);

  function province(card) {
    const s = card.province.score;
    byId("sc-province-percent").textContent = fmtPercent(s.percent);
    const box = byId("sc-province-score");
    box.dataset.band = s.band || "none";
    byId("sc-province-band").textContent = (s.band ? t("band_" + s.band) : t("sc_no_data")) + (s.trend !== null ? " · " + trend(s.trend) : "");
    byId("sc-province-indicators").tBodies[0].replaceChildren(...card.indicators.map((ind) => {
      const v = card.province.indicators[ind.id];
      const tr = el("tr");
      tr.dataset.indicator = ind.id;
      tr.append(el("th", null, ind.id + " " + name(ind)), el("td", null, fmtPct(v.ratio)),
        el("td", null, fmtPct(v.previous_ratio)), el("td", null, ptsFmt.format(v.points) + " / " + ptsFmt.format(ind.points)));
      return tr;
    }));
    byId("sc-not-measured").replaceChildren(...card.not_measured.map((n) =>
      el("div", "agency-row", n.id + " — " + (lang === "en" ? n.name_en : n.name_vi) + " (" + t("sc_points_of", { p: ptsFmt.format(n.points) }) + ")")));
  }

  function ranking(table, rows, card) {
    const head = el("tr");
    head.append(el("th", null, "#"), el("th", null, t("sc_agency")), el("th", null, t("sc_score_short")));
    for (const ind of card.indicators) {
      const th = el("th", null, ind.id);
      th.title = name(ind);
      head.append(th);
    }
    table.tHead.replaceChildren(head);
    const body = rows.map((r, i) => {
      const tr = el("tr");
      tr.dataset.code = r.code;
      tr.dataset.band = r.score.band || "none";
      const link = el("a", null, r.short_name || r.name || r.code);
      link.href = keep("/agency/" + encodeURIComponent(r.code));
      const who = el("th");
      who.append(link);
      const score = el("td", "sc-band", fmtPercent(r.score.percent) + (r.score.trend !== null ? " " + trend(r.score.trend) : ""));
      tr.append(el("td", null, String(i + 1)), who, score);
      for (const ind of card.indicators) tr.append(el("td", null, fmtPct(r.indicators[ind.id].ratio)));
      return tr;
    });
    table.tBodies[0].replaceChildren(...(body.length ? body : [(() => {
      const tr = el("tr");
      const td = el("td", "empty ok", t("sc_no_data"));
      td.colSpan = 3 + card.indicators.length;
      tr.append(td);
      return tr;
    })()]));
  }

  function render(card) {
    document.body.dataset.state = "live";
    byId("sc-dates").textContent = t("sc_" + card.period) + " " + card.current.from + " → " + card.current.to;
    province(card);
    const communes = card.agencies.filter((a) => a.level === "commune");
    const others = card.agencies.filter((a) => a.level !== "commune");
    ranking(byId("sc-agencies"), others, card);
    ranking(byId("sc-communes"), communes, card);
  }

  function fail(message) {
    document.body.dataset.state = "stale";
    byId("sc-error-text").textContent = message;
  }

  async function refresh() {
    try {
      const res = await fetch(api("/api/v1/scorecard", { period: period }), { cache: "no-store" });
      if (!res.ok) { fail(t("agency_error", { s: res.status })); return; }
      render(await res.json());
    } catch (e) {
      fail(t("banner_lost"));
    }
  }
  refresh();
  setInterval(refresh, 10000);
})();
