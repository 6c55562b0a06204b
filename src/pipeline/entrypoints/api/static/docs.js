// The API docs page (/docs): lists the operations of the OpenAPI document (its URL is the
// body's data-spec) with a form per operation that sends the request and shows the answer.
// A file of its own, not an inline script: the Content-Security-Policy allows only scripts
// from this origin.
"use strict";
const el = (tag, attrs = {}, ...kids) => {
  const node = document.createElement(tag);
  Object.entries(attrs).forEach(([k, v]) => node.setAttribute(k, v));
  kids.forEach(k => node.append(k));
  return node;
};
function operation(path, method, op) {
  const box = el("div", {class: "op"});
  box.append(el("div", {}, el("span", {class: "m " + method.toUpperCase()}, method.toUpperCase()),
    el("code", {}, path), " ", el("small", {}, op.summary || "")));
  if (op.description) box.append(el("p", {class: "desc"}, op.description));
  const form = el("form");
  const params = op.parameters || [];
  params.forEach(p => {
    const hint = [p.in, p.required ? "required" : "", (p.schema && p.schema.type) || ""]
      .filter(Boolean).join(", ");
    form.append(el("label", {}, el("code", {}, p.name), ` (${hint}) `,
      el("input", {name: p.name, "data-in": p.in, placeholder: p.description || ""})));
  });
  const out = el("pre", {hidden: ""});
  form.append(el("button", {type: "submit"}, "Send"));
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    let url = path;
    const query = new URLSearchParams();
    form.querySelectorAll("input").forEach(i => {
      if (i.value === "") return;
      if (i.dataset.in === "path") url = url.replace("{" + i.name + "}", encodeURIComponent(i.value));
      else query.append(i.name, i.value);
    });
    const qs = query.toString();
    const headers = {};
    const key = document.getElementById("apikey").value;
    if (key) headers["X-API-Key"] = key;
    const response = await fetch(url + (qs ? "?" + qs : ""), {method: method.toUpperCase(), headers});
    const text = await response.text();
    let body = text;
    try { body = JSON.stringify(JSON.parse(text), null, 2); } catch (e) {}
    out.textContent = `${response.status} ${response.statusText}\n\n${body}`;
    out.hidden = false;
  });
  box.append(form, out);
  return box;
}
fetch(document.body.dataset.spec).then(r => r.json()).then(spec => {
  const ops = document.getElementById("ops");
  ops.textContent = "";
  Object.entries(spec.paths).forEach(([path, item]) =>
    Object.entries(item).forEach(([method, op]) => {
      if (["get", "post", "put", "patch", "delete"].includes(method)) ops.append(operation(path, method, op));
    }));
}).catch(err => { document.getElementById("ops").textContent = "Could not load the API document: " + err; });
