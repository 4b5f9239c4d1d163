// Customer look-up page of `custscore serve --scores FILE`. Reads the server's JSON routes
// (/customers/api/...) and scores an opened customer again through POST /score.
// Every value from the server is written with textContent or as an attribute value, never as HTML.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const state = { page: 1, pages: 1, meta: null, opened: 0, opener: null };

  const dash = "\u2013";
  const pct = (p) => (p == null ? dash : (100 * p).toFixed(1) + " %");
  const num = (v, d = 2) => (v == null ? dash : v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }));
  const money = (v) => num(v, state.meta && state.meta.has_amounts ? 2 : 1);

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text != null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  async function getJSON(url, options) {
    const response = await fetch(url, options);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    return body;
  }

  function fillSelect(select, choices) {
    for (const choice of choices) {
      const option = el("option", choice.label ?? choice);
      option.value = choice.value ?? choice;
      select.append(option);
    }
  }

  function showMeta(meta) {
    state.meta = meta;
    $("context").textContent =
      `${meta.n_customers.toLocaleString("en-US")} customers of ${meta.scores_file}, scored as of ${meta.as_of} ` +
      `by model ${meta.model_version}. Expected purchases and CLV cover the ${meta.horizon_words}` +
      (meta.has_amounts ? `, ${meta.discount_words}.` : " (the log has no amounts: values are purchases).");
    const note = $("log-note");
    note.hidden = false;
    note.textContent = meta.has_log
      ? `Purchase histories from ${meta.log_file}.`
      : "No transaction log was given (start the server with --transactions LOG): purchase histories and " +
        "scoring again on demand are not available; the scores come from the score file.";
    fillSelect($("segment"), meta.segments);
    fillSelect($("action"), meta.actions);
    fillSelect($("risk"), meta.risks);
  }

  function query() {
    const params = new URLSearchParams();
    for (const name of ["q", "segment", "action", "risk", "sort"]) {
      const value = $(name).value.trim();
      if (value) params.set(name, value);
    }
    params.set("page", String(state.page));
    return params;
  }

  async function loadTable() {
    const count = $("count");
    let answer;
    try {
      answer = await getJSON(`/customers/api/table?${query()}`);
    } catch (error) {
      count.textContent = `Could not load the customers: ${error.message}`;
      count.className = "error";
      return;
    }
    count.className = "";
    state.page = answer.page;
    state.pages = answer.pages;
    const body = $("customers").tBodies[0];
    body.replaceChildren();
    for (const row of answer.rows) {
      const tr = el("tr");
      const th = el("th");
      th.scope = "row";
      const open = el("button", row.customer_id, "open");
      open.type = "button";
      open.dataset.id = row.customer_id;
      open.setAttribute("aria-label", `Open customer ${row.customer_id}`);
      open.addEventListener("click", () => openCustomer(row.customer_id, open));
      th.append(open);
      tr.append(th,
        el("td", money(row.value_at_risk), "num"), el("td", pct(row.churn_probability), "num"),
        el("td", pct(row.p_alive), "num"), el("td", num(row.expected_purchases), "num"),
        el("td", money(row.clv), "num"), el("td", `${row.value_class} ${row.value_class_name}`),
        el("td", row.lifecycle_stage), el("td", row.retention_policy), el("td", row.reason_1 || dash));
      body.append(tr);
    }
    const total = answer.total.toLocaleString("en-US");
    count.textContent = answer.total === 1 ? "1 customer matches." : `${total} customers match.`;
    $("page-info").textContent = `page ${answer.page} of ${answer.pages}`;
    $("prev").disabled = answer.page <= 1;
    $("next").disabled = answer.page >= answer.pages;
  }

  function addNumber(list, label, value, field) {
    const dd = el("dd", value);
    dd.dataset.field = field;
    list.append(el("dt", label), dd);
  }

  function showNumbers(list, s, horizon) {
    list.replaceChildren();
    addNumber(list, "P(alive)", pct(s.p_alive), "p_alive");
    addNumber(list, "churn risk", pct(s.churn_probability), "churn_probability");
    addNumber(list, `expected purchases, next ${horizon} days`, num(s.expected_purchases), "expected_purchases");
    addNumber(list, `CLV, next ${horizon} days`, money(s.clv), "clv");
    if (s.clv_p10 != null && s.clv_p90 != null) {
      addNumber(list, "CLV interval (10 % to 90 %)", `${money(s.clv_p10)} to ${money(s.clv_p90)}`, "clv_interval");
    }
    return list;
  }

  async function openCustomer(id, opener) {
    const token = ++state.opened;
    state.opener = opener || null;
    let answer;
    try {
      answer = await getJSON(`/customers/api/customer?id=${encodeURIComponent(id)}`);
    } catch (error) {
      $("count").textContent = `Could not open customer ${id}: ${error.message}`;
      return;
    }
    if (token !== state.opened) return; // another customer was opened meanwhile
    const s = answer.score;
    const meta = state.meta;
    $("detail-title").textContent = `Customer ${s.customer_id}`;
    const numbers = showNumbers($("numbers"), s, s.horizon_days);
    addNumber(numbers, "value at risk", money(s.value_at_risk), "value_at_risk");
    addNumber(numbers, "segment", `${s.value_class} ${s.value_class_name}`, "value_class");
    addNumber(numbers, "stage", s.lifecycle_stage, "lifecycle_stage");
    addNumber(numbers, "days since last purchase", num(s.days_since_last_purchase, 0), "days_since_last_purchase");
    $("action-text").textContent = s.retention_policy || dash;
    const reasons = $("reasons");
    reasons.replaceChildren(...["reason_1", "reason_2", "reason_3"].filter((c) => s[c]).map((c) => el("li", s[c])));
    $("no-reasons").hidden = reasons.children.length > 0;
    showHistory(answer.purchases, s.as_of.slice(0, 10));
    const detail = $("detail");
    detail.hidden = false;
    detail.focus();
    detail.scrollIntoView({ block: "start" });
    await scoreAgain(s, answer.purchases, token, meta);
  }

  function showHistory(purchases, asOf) {
    const box = $("timeline");
    box.replaceChildren();
    const tbody = $("purchases").tBodies[0];
    tbody.replaceChildren();
    const note = $("timeline-note");
    if (purchases == null) {
      note.textContent = "Not available: the server was started without --transactions LOG.";
      $("purchases-box").hidden = true;
      return;
    }
    const before = purchases.filter((p) => p.date <= asOf);
    note.textContent = `${purchases.length} purchase day(s) in the log, ${before.length} up to the scoring date ` +
      `${asOf}` + (purchases.length ? ` (first ${purchases[0].date}, last ${purchases[purchases.length - 1].date}).` : ".");
    for (const p of purchases) {
      const tr = el("tr");
      tr.append(el("td", p.date), el("td", money(p.amount), "num"), el("td", p.date <= asOf ? "yes" : "no"));
      tbody.append(tr);
    }
    $("purchases-box").hidden = purchases.length === 0;
    box.append(timeline(purchases, asOf));
  }

  function svgNode(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text != null) node.textContent = String(text);
    return node;
  }

  function timeline(purchases, asOf) {
    const W = 960, H = 150, left = 20, right = 20, y = 70;
    const day = (d) => Date.parse(d + "T00:00:00Z");
    const times = purchases.map((p) => day(p.date)).concat([day(asOf)]);
    const t0 = Math.min(...times), t1 = Math.max(...times), span = Math.max(t1 - t0, 86400000);
    const x = (t) => left + ((t - t0) / span) * (W - left - right);
    const svg = svgNode("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "timeline-title",
      "aria-describedby": "timeline-note" });
    svg.append(svgNode("line", { x1: left, x2: W - right, y1: y, y2: y, stroke: "#6b6b6b", "stroke-width": 1 }));
    const years = new Set(times.map((t) => new Date(t).getUTCFullYear()));
    for (const year of years) {
      const t = Date.UTC(year, 0, 1);
      if (t < t0 || t > t1) continue;
      svg.append(svgNode("line", { x1: x(t), x2: x(t), y1: y - 6, y2: y + 6, stroke: "#6b6b6b" }));
      svg.append(svgNode("text", { x: x(t), y: y + 22, "text-anchor": "middle", "font-size": 12, fill: "#4d4d4d" }, year));
    }
    const xa = x(day(asOf));
    svg.append(svgNode("line", { x1: xa, x2: xa, y1: 12, y2: H - 20, stroke: "#a50e0e", "stroke-dasharray": "4 3" }));
    svg.append(svgNode("text", { x: Math.min(xa, W - 120), y: 12, "font-size": 12, fill: "#a50e0e",
      "dominant-baseline": "hanging", dx: 4 }, `scored as of ${asOf}`));
    const top = Math.max(...purchases.map((p) => Math.abs(p.amount)), 0);
    for (const p of purchases) {
      const r = top > 0 ? 4 + 10 * Math.sqrt(Math.abs(p.amount) / top) : 6;
      const dot = svgNode("circle", { cx: x(day(p.date)), cy: y, r, fill: p.date <= asOf ? "#0b5cad" : "#8c8c8c",
        "fill-opacity": 0.75, stroke: "#1a1a1a", "stroke-width": 0.5 });
      dot.append(svgNode("title", {}, `${p.date}: ${money(p.amount)}`));
      svg.append(dot);
    }
    return svg;
  }

  async function scoreAgain(s, purchases, token, meta) {
    const list = $("live");
    list.replaceChildren();
    const note = $("live-note");
    note.className = "note";
    if (purchases == null) {
      note.textContent = "Needs the transaction log (--transactions LOG); the numbers above are the score file's.";
      return;
    }
    const asOf = s.as_of.slice(0, 10);
    const transactions = purchases.filter((p) => p.date <= asOf)
      .map((p) => (meta.has_amounts ? { date: p.date, amount: p.amount } : { date: p.date }));
    if (!transactions.length) {
      note.textContent = `No purchase up to ${asOf} in the log: nothing to score.`;
      return;
    }
    note.textContent = "Scoring through POST /score\u2026";
    try {
      const answer = await getJSON("/score", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ as_of: asOf, horizon_days: s.horizon_days,
          customers: [{ customer_id: s.customer_id, transactions }] }),
      });
      if (token !== state.opened) return;
      showNumbers(list, answer.scores[0], s.horizon_days);
      note.textContent = `Scored as of ${asOf} through POST /score by the model the server runs ` +
        `(${answer.model_version}); the score file was made by ${s.model_version}.`;
    } catch (error) {
      if (token !== state.opened) return;
      note.textContent = `Could not score again: ${error.message}`;
      note.className = "error";
    }
  }

  function closeCustomer() {
    $("detail").hidden = true;
    state.opened++;
    if (state.opener && document.body.contains(state.opener)) state.opener.focus();
  }

  function search(event) {
    if (event) event.preventDefault();
    state.page = 1;
    loadTable();
  }

  async function start() {
    $("filters").addEventListener("submit", search);
    $("filters").addEventListener("reset", () => setTimeout(search, 0));
    for (const name of ["segment", "action", "risk", "sort"]) $(name).addEventListener("change", search);
    $("prev").addEventListener("click", () => { state.page = Math.max(1, state.page - 1); loadTable(); });
    $("next").addEventListener("click", () => { state.page = Math.min(state.pages, state.page + 1); loadTable(); });
    $("close").addEventListener("click", closeCustomer);
    document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !$("detail").hidden) closeCustomer(); });
    try {
      showMeta(await getJSON("/customers/api/meta"));
    } catch (error) {
      $("context").textContent = `Could not load the score file's settings: ${error.message}`;
      $("context").className = "error";
      return;
    }
    await loadTable();
    document.body.dataset.ready = "yes";
  }

  document.addEventListener("DOMContentLoaded", start);
})();
