// The shop view: one WebSocket to /ws/shop (same origin) sending a snapshot of the shop job's
// tables whenever they change: funnel tiles and chart, revenue line per currency, top
// products and shop alerts. Plain ES2020 without libraries or external URLs (works offline).
"use strict";

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
const FINAL_CLOSE_CODES = new Set([1008, 4401]);
const STAGES = [["views", "#2b7de9"], ["carts", "#d98a00"], ["purchases", "#2a9d58"]];
const COLORS = ["#2b7de9", "#d64545", "#2a9d58", "#9b51e0", "#d98a00", "#0fa3b1", "#6b7280"];

const $ = (id) => document.getElementById(id);
const count = new Intl.NumberFormat(undefined);
const percent = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 2 });
let snapshot = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

function canvas2d(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = "12px system-ui, sans-serif";
  return { ctx, width, height };
}

function time(iso) {
  return new Date(iso).toISOString().slice(11, 16);
}

// Grouped bars per window: views, carts, purchases (on one scale), the conversion above.
function drawFunnel(windows) {
  const canvas = $("funnel-chart");
  canvas.dataset.windows = String(windows.length);
  const { ctx, width, height } = canvas2d(canvas);
  const top = Math.max(1, ...windows.map((w) => w.views));
  const slot = width / Math.max(windows.length, 1);
  const bar = Math.max(2, (slot * 0.8) / STAGES.length);
  const plot = height - 34;
  windows.forEach((w, i) => {
    STAGES.forEach(([stage, color], j) => {
      const h = (w[stage] / top) * (plot - 14);
      ctx.fillStyle = color;
      ctx.fillRect(i * slot + slot * 0.1 + j * bar, plot - h, bar - 1, h);
    });
    ctx.fillStyle = "#667085";
    ctx.fillText(time(w.window_start), i * slot + 2, height - 18);
    if (w.conversion_rate !== null) ctx.fillText(percent.format(w.conversion_rate), i * slot + 2, height - 4);
  });
}

// One line per currency: revenue per minute.
function drawRevenue(minutes) {
  const canvas = $("revenue-chart");
  const series = new Map();
  for (const m of minutes) {
    if (!series.has(m.currency)) series.set(m.currency, []);
    series.get(m.currency).push([Date.parse(m.minute), Number(m.revenue)]);
  }
  canvas.dataset.points = String(minutes.length);
  canvas.dataset.series = String(series.size);
  const legend = $("legend");
  legend.replaceChildren();
  const { ctx, width, height } = canvas2d(canvas);
  if (!minutes.length) return;
  const times = minutes.map((m) => Date.parse(m.minute));
  const t0 = Math.min(...times);
  const span = Math.max(60000, Math.max(...times) - t0);
  const top = Math.max(...minutes.map((m) => Number(m.revenue)), 1);
  const plot = height - 20;
  [...series.keys()].sort().forEach((currency, i) => {
    const color = COLORS[i % COLORS.length];
    const entry = el("span", { "data-currency": currency }, currency);
    entry.style.setProperty("--swatch", color);
    legend.append(entry);
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    series.get(currency).forEach(([t, value], k) => {
      const x = ((t - t0) / span) * (width - 10) + 5;
      const y = plot - (value / top) * (plot - 10);
      if (k === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  });
  ctx.fillStyle = "#667085";
  ctx.fillText(time(new Date(t0).toISOString()), 2, height - 4);
}

function render() {
  if (snapshot === null) return;
  const total = snapshot.funnel.total;
  $("views").textContent = count.format(total.views);
  $("carts").textContent = count.format(total.carts);
  $("purchases").textContent = count.format(total.purchases);
  $("conversion").textContent = total.conversion_rate === null ? "–" : percent.format(total.conversion_rate);
  drawFunnel(snapshot.funnel.windows);
  drawRevenue(snapshot.revenue.minutes);
  $("top-products").replaceChildren(...snapshot.top_products.products.map((p) =>
    el("li", { "data-product": p.product_id }, `${p.product_id} · ${p.revenue_eur} EUR · ${p.units} units`)));
  $("alerts").replaceChildren(...snapshot.alerts.map((a) => {
    const item = el("li", { "data-alert": a.alert_id }, a.message,
      el("span", { class: "meta" }, `${a.severity} · ${new Date(a.timestamp).toISOString()}`));
    if (a.severity === "critical") item.classList.add("critical");
    return item;
  }));
}

function setConnection(value, label) {
  const node = $("connection");
  node.dataset.state = value;
  node.textContent = label;
}

function connect(attempt = 0) {
  setConnection("connecting", attempt ? `reconnecting (attempt ${attempt + 1})…` : "connecting…");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  // The page's query (api_key) is passed on: browsers cannot set headers on a WebSocket.
  const socket = new WebSocket(`${scheme}//${location.host}/ws/shop${location.search}`);
  socket.addEventListener("open", () => setConnection("open", "live"));
  socket.addEventListener("message", (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    if (!frame || frame.type !== "shop") return;
    attempt = 0;
    snapshot = frame;
    render();
  });
  socket.addEventListener("close", (event) => {
    const reason = event.reason ? `: ${event.reason}` : "";
    if (FINAL_CLOSE_CODES.has(event.code)) {
      setConnection("closed", `refused (${event.code}${reason}); fix the page's URL and reload`);
      return;
    }
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
    setConnection("closed", `disconnected (${event.code}${reason}), retry in ${delay / 1000} s`);
    setTimeout(() => connect(attempt + 1), delay);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  window.addEventListener("resize", render);
  connect();
});
