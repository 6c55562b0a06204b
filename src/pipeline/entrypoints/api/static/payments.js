// The payments view: per-rule counts and the stored flagged transactions from
// /api/v1/payments, and the fraud alerts as they are raised, from /ws/sensors filtered to the
// payments stream. Plain ES2020 without libraries or external URLs, so the page works offline.
"use strict";

const RULES = ["velocity", "card_testing", "impossible_travel", "amount_spike", "night_new_category"];
const MAX_ALERTS = 50;
const REFRESH_MS = 5000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
const FINAL_CLOSE_CODES = new Set([1008, 4401]);

const $ = (id) => document.getElementById(id);
// With PIPELINE_API__REQUIRE_KEY_FOR_READS, open /payments?api_key=KEY: the key goes in a
// header to the REST API and in the query to the WebSocket (browsers cannot set its headers).
const API_KEY = new URLSearchParams(location.search).get("api_key");
const HEADERS = API_KEY ? { "X-API-Key": API_KEY } : {};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

function ruleTiles() {
  for (const rule of RULES) {
    const count = el("span", { id: `rule-${rule}`, "data-testid": `rule-${rule}` }, "–");
    $("rule-tiles").append(el("div", { class: "tile" }, el("h2", {}, rule.replaceAll("_", " ")),
      el("p", {}, count, " ", el("small", {}, "flagged"))));
  }
}

function entry(title, reasons, meta, critical) {
  const item = el("li", critical ? { class: "critical" } : {}, title);
  const tags = el("span", { class: "meta", "data-testid": "reasons" }, reasons.join(", "));
  item.append(tags, el("span", { class: "meta" }, meta));
  return item;
}

async function refresh() {
  try {
    const [rules, flagged] = await Promise.all([
      fetch("/api/v1/payments/rules", { headers: HEADERS }).then((r) => r.json()),
      fetch("/api/v1/payments/flagged?limit=20", { headers: HEADERS }).then((r) => r.json()),
    ]);
    for (const { rule, count } of rules.rules) {
      const node = $(`rule-${rule}`);
      if (node) node.textContent = String(count);
    }
    $("flagged").replaceChildren(...flagged.items.map((f) => entry(
      `${f.transaction_id}: ${f.amount} ${f.currency} at ${f.merchant} (${f.country}, ${f.channel})`,
      f.reasons, `${f.account_id} · score ${f.score} · ${f.timestamp}`, f.score >= 0.9)));
  } catch (error) {
    // The next refresh tries again; the live feed carries on meanwhile.
  }
}

function connect(backoff) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = new URLSearchParams({ domain: "payments", alerts_only: "true" });
  if (API_KEY) query.set("api_key", API_KEY);
  const socket = new WebSocket(`${scheme}://${location.host}/ws/sensors?${query}`);
  socket.onopen = () => {
    $("connection").dataset.state = "open";
    $("connection").textContent = "live";
    backoff = BACKOFF_MIN_MS;
  };
  socket.onmessage = (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type !== "alert") return;
    const alerts = $("alerts");
    alerts.prepend(entry(frame.message, frame.reasons,
      `${frame.source} · score ${frame.score} · ${frame.time}`, frame.severity === "critical"));
    while (alerts.children.length > MAX_ALERTS) alerts.lastChild.remove();
  };
  socket.onclose = (event) => {
    $("connection").dataset.state = "closed";
    $("connection").textContent = event.reason || "disconnected";
    if (FINAL_CLOSE_CODES.has(event.code)) return;
    setTimeout(() => connect(Math.min(backoff * 2, BACKOFF_MAX_MS)), backoff);
  };
}

ruleTiles();
refresh();
setInterval(refresh, REFRESH_MS);
connect(BACKOFF_MIN_MS);
