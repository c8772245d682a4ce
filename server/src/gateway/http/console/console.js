// Tributary web console, core: token, HTTP API, SDK client, hash router, formatting.
// Plain DOM over the SDK browser bundle (global `Tributary`); the views register themselves
// in console-views.js (overview, topics, groups) and console-tail.js (live tail, publish).
// State for tests and the curious: window.__tributary = { client, received, subscription,
// errors, tail, publish, refreshTopics } (`received`: what the tail got, see console-tail.js).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);

  /** `el("td", { className: "num" }, "42")`: an element with properties and children (strings become text). */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) for (const [k, v] of Object.entries(props)) if (v !== undefined && v !== null) k.startsWith("data-") || k.startsWith("aria-") ? node.setAttribute(k, v) : (node[k] = v);
    for (const c of children) if (c !== undefined && c !== null) node.append(typeof c === "string" || typeof c === "number" ? String(c) : c);
    return node;
  }

  /** Fills `tbody` with one row per item; the first cell is the row header (`<th scope="row">`). A cell is text or { text | node, num, className }. */
  function fillRows(tbody, rows, emptyText) {
    const out = rows.map((cells) =>
      el("tr", null, ...cells.map((c, i) => {
        const cell = c !== null && typeof c === "object" && !(c instanceof Node) ? c : { text: c };
        const td = el(i === 0 ? "th" : "td", { className: [cell.num ? "num" : "", cell.className || ""].join(" ").trim() || undefined }, cell.node || String(cell.text ?? ""));
        if (i === 0) td.scope = "row";
        return td;
      })),
    );
    if (out.length === 0 && emptyText) out.push(el("tr", null, el("td", { colSpan: tbody.parentElement.tHead.rows[0].cells.length, className: "help" }, emptyText)));
    tbody.replaceChildren(...out);
  }

  // ---- token: sessionStorage only (this tab, gone when it closes) ----
  const TOKEN_KEY = "tributary.token";
  const token = () => sessionStorage.getItem(TOKEN_KEY) || "";
  function setToken(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
    showIdentity();
  }
  /** The token's claims, for display only (the node verifies it); null when absent or unreadable. */
  function claims() {
    try {
      const part = token().split(".")[1];
      return part ? JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))) : null;
    } catch {
      return null;
    }
  }
  function showIdentity() {
    const c = claims();
    $("who").textContent = token() ? `Token: ${c && c.sub ? c.sub : "?"}${c && c.admin ? " (admin)" : ""}` : "";
    $("logout").hidden = !token();
  }

  // ---- HTTP API ----
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }
  /** GET (or `init`) `path` with the Bearer token; resolves to the JSON body, rejects with ApiError (401s also open the login view). */
  async function api(path, init = {}) {
    const headers = { ...(init.headers || {}), ...(token() ? { Authorization: "Bearer " + token() } : {}) };
    const res = await fetch(path, { ...init, headers });
    const text = await res.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!res.ok) {
      const e = (body && body.error) || {};
      const err = new ApiError(res.status, e.code || "HTTP_" + res.status, e.message || text || res.statusText);
      if (res.status === 401) needLogin(err.code, err.message);
      throw err;
    }
    return body;
  }
  /** Plain text of a route (`/metrics`). */
  async function apiText(path) {
    const res = await fetch(path, { headers: token() ? { Authorization: "Bearer " + token() } : {} });
    if (!res.ok) throw new ApiError(res.status, "HTTP_" + res.status, `${path}: ${res.status} ${res.statusText}`);
    return res.text();
  }

  /** What to tell a person about an error: 401 / TOKEN_EXPIRED / 403 in words, the rest as code: message. */
  function explain(err) {
    const code = err && err.code;
    if (code === "TOKEN_EXPIRED") return "Your token has expired: sign in with a fresh one (TOKEN_EXPIRED).";
    if (code === "UNAUTHORIZED" || (err && err.status === 401)) return token() ? `The node refused this token (UNAUTHORIZED: ${err.message}).` : "This node requires a token: sign in with a JWT.";
    if (code === "FORBIDDEN" || (err && err.status === 403)) return `Not permitted with this token (FORBIDDEN: ${err.message}).`;
    return `${code ? code + ": " : ""}${err && err.message ? err.message : String(err)}`;
  }

  const state = { client: null, received: [], subscription: null, errors: [] };
  window.__tributary = state;

  // ---- SDK client: getToken is read again at every (re)connect ----
  function showState() {
    $("state").textContent = state.client ? state.client.state : "—";
    $("state").className = state.client ? state.client.state : "";
  }
  function connectClient() {
    const old = state.client;
    if (old) old.close().catch(() => {}); // best effort: the old connection is being replaced (its listeners check state.client)
    const client = Tributary.connect(location.origin.replace(/^http/, "ws"), { getToken: token });
    state.client = client;
    client.on("state", showState);
    client.on("error", (err) => {
      if (state.client !== client) return;
      state.errors.push(err.code + ": " + err.message);
      if (err.code === "UNAUTHORIZED" || err.code === "TOKEN_EXPIRED") {
        client.close().catch(() => {}); // best effort: getToken would return the same refused token
        needLogin(err.code, err.message);
      } else $("log").textContent = explain(err);
    });
    client.on("connected", () => {
      if (state.client === client) $("log").textContent = "";
    });
    client.on("offsetOutOfRange", (e) => {
      $("log").textContent = `partition ${e.partition}: offset ${e.requested} is gone (${e.reason}); continuing at ${e.offset} (reset ${e.reset})`;
    });
    showState();
    app.onClient.forEach((f) => f(client));
    return client;
  }

  // ---- login ----
  let returnTo = "";
  let signedOut = false; // keeps "Signed out" on the login view rather than the refusal that follows it
  function needLogin(code, message) {
    if (!(signedOut && current === "login")) $("login-why").textContent = explain({ code, message, status: 401 });
    if (current !== "login") {
      returnTo = location.hash && !location.hash.startsWith("#/login") ? location.hash : returnTo;
      location.hash = "#/login";
    }
  }
  $("token-form").onsubmit = async (ev) => {
    ev.preventDefault();
    signedOut = false;
    setToken($("token").value.trim());
    $("token").value = "";
    try {
      await api("/topics"); // any identity may list topics: a token this refuses is not kept
    } catch (err) {
      $("login-why").textContent = explain(err);
      if (err.status === 401) setToken("");
      return;
    }
    $("log").textContent = "";
    connectClient();
    location.hash = returnTo || "#/overview";
  };
  $("logout").onclick = () => {
    setToken("");
    signedOut = true;
    connectClient();
    $("login-why").textContent = "Signed out: the token was removed from this tab.";
    location.hash = "#/login";
  };

  // ---- router: #/<view>[/<arg>][?query] ----
  const views = { login: { enter() {} } };
  let current = null;
  function parseHash() {
    const m = /^#\/([a-z]+)(?:\/([^?]*))?(?:\?(.*))?$/.exec(location.hash);
    if (!m) return { name: "overview", arg: "", query: new URLSearchParams() };
    return { name: m[1], arg: m[2] ? decodeURIComponent(m[2]) : "", query: new URLSearchParams(m[3] || "") };
  }
  function route(focus) {
    let { name, arg, query } = parseHash();
    if (name === "topics" && arg) name = "topic";
    if (name === "groups" && arg) name = "group";
    if (!views[name]) name = "overview";
    if (current && current !== name && views[current].leave) views[current].leave();
    current = name;
    for (const s of document.querySelectorAll("main > section")) s.hidden = s.dataset.view !== name;
    const navName = name === "topic" ? "topics" : name === "group" ? "groups" : name;
    for (const a of document.querySelectorAll("nav a")) a.getAttribute("href") === "#/" + navName ? a.setAttribute("aria-current", "page") : a.removeAttribute("aria-current");
    document.title = `${$(`${name}-h`).textContent} · Tributary console`;
    views[name].enter(arg, query);
    // Moving focus to the view's heading tells screen readers the page changed.
    if (focus) $(`${name}-h`).focus();
  }
  window.addEventListener("hashchange", () => route(true));

  // ---- formatting ----
  const nf = new Intl.NumberFormat("en");
  const num = (n) => (n === null || n === undefined ? "—" : nf.format(n));
  function bytes(n) {
    if (n === null || n === undefined) return "—";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
    return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
  }
  function duration(ms) {
    if (ms === null || ms === undefined) return "forever";
    for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["min", 60_000], ["s", 1000]]) if (ms >= size && ms % size === 0) return `${ms / size} ${unit}`;
    return `${ms} ms`;
  }
  const time = (ms) => (ms ? new Date(ms).toLocaleString() : "—");
  const link = (href, text) => el("a", { href }, text);

  const app = { $, el, fillRows, api, apiText, explain, token, state, views, connectClient, onClient: [], fmt: { num, bytes, duration, time }, link };
  window.TributaryConsole = app;

  showIdentity();
  // After every script has registered its view: connect, then show the view the address names.
  document.addEventListener("DOMContentLoaded", () => {
    connectClient();
    const params = new URLSearchParams(location.search);
    // Old links `/?topic=x&from=earliest` open the live tail on that topic.
    if (params.get("topic") && !location.hash) history.replaceState(null, "", `${location.pathname}${location.search}#/tail?${params}`);
    route(false);
  });
})();
