// The live dashboard: one WebSocket to /ws/sensors (same origin), readings folded into
// per-second means per sensor type and drawn on a canvas, the alert feed, and the stats tiles.
// Plain ES2020 without libraries or external URLs, so the page works offline.
"use strict";

const WINDOW_S = 120; // seconds of history on the chart
const MAX_ALERTS = 50; // alert feed entries kept
const REDRAW_MS = 500;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
const SILENCE_MS = 45000; // no frame at all for this long (heartbeats included): reconnect
const PING_MS = 20000;
const FUTURE_SLACK_S = 5; // readings stamped further ahead of the server's clock are not charted
const FINAL_CLOSE_CODES = new Set([1008, 4401]); // bad filter, missing key: not retried
// The catalog's types keep their colours from one page load to the next; others take the rest.
const TYPE_COLORS = { temperature: "#d64545", humidity: "#2b7de9", pressure: "#2a9d58" };
const COLORS = ["#9b51e0", "#d98a00", "#0fa3b1", "#6b7280", "#c2185b", "#5d4037"];

const $ = (id) => document.getElementById(id);
const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

const state = {
  // sensor type -> { color, unit, count, buckets: Map(second -> {sum, n}) }
  series: new Map(),
  newestSecond: 0,
  clockOffsetMs: 0, // server clock minus browser clock, from the stats frames
  readings: 0,
  alerts: 0,
  dropped: 0,
  dirty: false,
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

function insertSorted(parent, node) {
  const after = [...parent.children].find((child) => child.dataset.type > node.dataset.type);
  parent.insertBefore(node, after ?? null);
}

function seriesFor(type, unit) {
  let s = state.series.get(type);
  if (s === undefined) {
    const others = [...state.series.keys()].filter((t) => !(t in TYPE_COLORS)).length;
    const color = TYPE_COLORS[type] ?? COLORS[others % COLORS.length];
    s = { color, unit, count: 0, buckets: new Map() };
    state.series.set(type, s);
    // Counters and legend entries are created as types appear (the catalog is open), in
    // name order like the chart's bands.
    const counter = el("span", { id: `count-${type}`, "data-testid": `readings-${type}` }, "0");
    insertSorted($("type-counts"), el("li", { "data-type": type }, type, counter));
    const entry = el("span", { "data-type": type }, type);
    // Through the CSSOM: the page's Content Security Policy forbids inline style attributes.
    entry.style.setProperty("--swatch", s.color);
    insertSorted($("legend"), entry);
  }
  return s;
}

function onReading(frame) {
  const s = seriesFor(frame.sensor_type, frame.unit);
  const at = Date.parse(frame.time);
  if (!Number.isFinite(at) || typeof frame.value !== "number") return;
  s.count += 1;
  state.readings += 1;
  state.dirty = true;
  // Buckets by event time; the window ends at the newest second seen, so a skew between the
  // browser's clock and the sensors' does not empty the chart. A reading stamped ahead of the
  // server's clock (sensors may run up to minutes fast) is counted but not charted: it would
  // move the window's end forward and empty the chart until real time caught up.
  const second = Math.floor(at / 1000);
  if (second > Math.floor((Date.now() + state.clockOffsetMs) / 1000) + FUTURE_SLACK_S) return;
  const bucket = s.buckets.get(second);
  if (bucket === undefined) s.buckets.set(second, { sum: frame.value, n: 1 });
  else { bucket.sum += frame.value; bucket.n += 1; }
  if (second > state.newestSecond) state.newestSecond = second;
}

// Which check raised an alert: a threshold rule, or a model (with its version).
function source(frame) {
  const detector = String(frame.detector || "threshold");
  return frame.model_version ? `${detector} ${frame.model_version}` : detector;
}

function onAlert(frame) {
  state.alerts += 1;
  const severity = String(frame.severity || "warning");
  const when = new Date(frame.time);
  const time = Number.isNaN(when.getTime()) ? String(frame.time) : when.toLocaleTimeString();
  const item = el(
    "li",
    { class: severity, "data-severity": severity, "data-alert-id": String(frame.alert_id || "") },
    el("strong", {}, `${severity.toUpperCase()} ${frame.sensor_id || ""}`),
    " ",
    String(frame.message || ""),
    el("span", { class: "meta" }, `${time} · ${frame.sensor_type || ""} · ${source(frame)}`),
  );
  const list = $("alerts");
  list.prepend(item);
  while (list.children.length > MAX_ALERTS) list.lastElementChild.remove();
  $("alert-count").textContent = String(state.alerts);
}

function onStats(frame) {
  const serverTime = Date.parse(frame.time);
  if (Number.isFinite(serverTime)) state.clockOffsetMs = serverTime - Date.now();
  $("throughput").textContent = number.format(frame.readings_per_second ?? 0);
  $("lag").textContent = frame.lag === null || frame.lag === undefined ? "–" : String(frame.lag);
  $("clients").textContent = String(frame.clients ?? "–");
}

function onDropped(frame) {
  // `count` is what was lost since the previous notice: summed, the tile also keeps what
  // earlier connections lost (`total` starts again with every connection).
  state.dropped += frame.count ?? 0;
  $("dropped").textContent = String(state.dropped);
}

const handlers = {
  reading: onReading,
  alert: onAlert,
  stats: onStats,
  dropped: onDropped,
  error: (frame) => console.warn("dashboard: server error frame", frame),
};

// ---- chart ---------------------------------------------------------------------------------

function prune() {
  const oldest = state.newestSecond - WINDOW_S;
  for (const s of state.series.values()) {
    for (const second of s.buckets.keys()) if (second <= oldest) s.buckets.delete(second);
  }
}

function draw() {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = "12px system-ui, sans-serif";
  const types = [...state.series.keys()].sort();
  // Sensor types differ in scale (°C, %, hPa): each gets its own band and y axis.
  const left = 64;
  const right = width - 12;
  const band = types.length ? (height - 24) / types.length : height;
  const end = state.newestSecond;
  const x = (second) => left + ((second - (end - WINDOW_S)) / WINDOW_S) * (right - left);
  let points = 0;
  types.forEach((type, index) => {
    const s = state.series.get(type);
    const top = index * band + 8;
    const bottom = top + band - 16;
    // The newest second is still filling up: its mean over a few sensors would jump about.
    const seconds = [...s.buckets.keys()].filter((second) => second < end).sort((a, b) => a - b);
    const means = seconds.map((second) => {
      const b = s.buckets.get(second);
      return b.sum / b.n;
    });
    ctx.strokeStyle = "#e3e6eb";
    ctx.strokeRect(left, top, right - left, bottom - top);
    if (!means.length) return;
    let low = Math.min(...means);
    let high = Math.max(...means);
    if (high - low < 1e-9) { low -= 1; high += 1; }
    const pad = (high - low) * 0.1;
    low -= pad;
    high += pad;
    const y = (value) => bottom - ((value - low) / (high - low)) * (bottom - top);
    ctx.fillStyle = "#667085";
    ctx.textAlign = "right";
    ctx.fillText(number.format(high), left - 6, top + 10);
    ctx.fillText(number.format(low), left - 6, bottom);
    ctx.textAlign = "left";
    ctx.fillStyle = s.color;
    const last = means[means.length - 1];
    ctx.fillText(`${type} ${number.format(last)} ${s.unit}`, left + 6, top + 14);
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    seconds.forEach((second, i) => {
      if (i === 0) ctx.moveTo(x(second), y(means[i]));
      else ctx.lineTo(x(second), y(means[i]));
    });
    ctx.stroke();
    points += seconds.length;
  });
  ctx.fillStyle = "#667085";
  ctx.textAlign = "left";
  ctx.fillText(`−${WINDOW_S} s`, left, height - 4);
  ctx.textAlign = "right";
  ctx.fillText(end ? new Date(end * 1000).toLocaleTimeString() : "", right, height - 4);
  // Tests and tools read what was drawn from these attributes.
  canvas.dataset.points = String(points);
  canvas.dataset.series = String(types.length);
}

function refresh() {
  if (!state.dirty) return;
  state.dirty = false;
  prune();
  $("readings-total").textContent = String(state.readings);
  for (const [type, s] of state.series) $(`count-${type}`).textContent = String(s.count);
  draw();
}

// ---- connection ----------------------------------------------------------------------------

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  // The page's own query (api_key, sensor_type, alerts_only) is passed on: browsers cannot
  // set headers on a WebSocket, so the API key travels as a query parameter.
  return `${scheme}//${location.host}/ws/sensors${location.search}`;
}

function setConnection(value, label) {
  const node = $("connection");
  node.dataset.state = value;
  node.textContent = label;
}

function connect(attempt = 0) {
  setConnection("connecting", attempt ? `reconnecting (attempt ${attempt + 1})…` : "connecting…");
  const socket = new WebSocket(socketUrl());
  let lastFrame = Date.now();
  let timer = null;
  socket.addEventListener("open", () => {
    setConnection("open", "live");
    timer = setInterval(() => {
      if (Date.now() - lastFrame > SILENCE_MS) socket.close(4000, "silent");
      else socket.send(JSON.stringify({ type: "ping" }));
    }, PING_MS);
  });
  socket.addEventListener("message", (event) => {
    lastFrame = Date.now();
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    // The backoff starts over only once data flows: a server that accepts and then closes
    // at once is not retried every half second.
    if (frame && frame.type !== "error") attempt = 0;
    const handler = handlers[frame && frame.type];
    if (handler) handler(frame);
  });
  socket.addEventListener("close", (event) => {
    clearInterval(timer);
    const reason = event.reason ? `: ${event.reason}` : "";
    if (FINAL_CLOSE_CODES.has(event.code)) {
      // A bad filter in the page's URL or a missing API key: retrying cannot help.
      setConnection("closed", `refused (${event.code}${reason}); fix the page's URL and reload`);
      return;
    }
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
    setConnection("closed", `disconnected (${event.code}${reason}), retry in ${delay / 1000} s`);
    setTimeout(() => connect(attempt + 1), delay);
  });
}

// ---- social: trending hashtags -------------------------------------------------------------

const TRENDING_MS = 15000; // the trending window advances each minute: a few looks per hop

async function loadTrending() {
  const key = new URLSearchParams(location.search).get("api_key");
  let body;
  try {
    const response = await fetch("/api/v1/social/trending?limit=10", {
      headers: key ? { "X-API-Key": key } : {},
    });
    if (!response.ok) return;
    body = await response.json();
  } catch { return; }
  const list = $("trending");
  list.replaceChildren(...body.tags.map((t) => el("li",
    { class: t.bursting ? "bursting" : "", "data-tag": t.tag, "data-bursting": String(t.bursting) },
    `#${t.tag} `,
    el("span", { class: "count" }, number.format(t.count)),
    el("span", { class: "meta" }, t.score === null ? "" : `score ${number.format(t.score)}`),
  )));
  $("trending-window").textContent = body.window_end
    ? `15 min to ${new Date(body.window_end).toLocaleTimeString()}` : "no hop closed yet";
}

document.addEventListener("DOMContentLoaded", () => {
  loadTrending();
  setInterval(loadTrending, TRENDING_MS);
  setInterval(refresh, REDRAW_MS);
  window.addEventListener("resize", () => { state.dirty = true; });
  connect();
});
