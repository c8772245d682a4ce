// Tributary web console: plain DOM over the SDK browser bundle (global `Tributary`).
// State for tests and the curious: window.__tributary = { client, received, subscription, tail, publish }
// (`received`: { partition, offset, key, value, contentType, kind, shown } — what the tail shows).
"use strict";
(function () {
  const MAX_ROWS = 500;
  const $ = (id) => document.getElementById(id);
  // Token (nodes with auth): kept in sessionStorage (this tab only, gone when it closes), sent
  // in the WebSocket hello (getToken: read again at every reconnect) and as Bearer to the API.
  const TOKEN_KEY = "tributary.token";
  const token = () => sessionStorage.getItem(TOKEN_KEY) || "";
  const authHeaders = () => (token() ? { Authorization: "Bearer " + token() } : {});
  const client = Tributary.connect(location.origin.replace(/^http/, "ws"), { getToken: token });
  const state = { client, received: [], subscription: null, errors: [], tail, publish, refreshTopics };
  window.__tributary = state;

  function showState() {
    const el = $("state");
    el.textContent = client.state;
    el.className = client.state;
  }
  client.on("state", showState);
  client.on("error", (err) => {
    state.errors.push(err.code + ": " + err.message);
    $("log").textContent = err.code + ": " + err.message;
  });
  client.on("connected", () => {
    $("log").textContent = "";
    refreshTopics();
  });
  client.on("offsetOutOfRange", (e) => {
    $("log").textContent = `partition ${e.partition}: offset ${e.requested} is gone (${e.reason}); continuing at ${e.offset} (reset ${e.reset})`;
  });
  showState();

  async function refreshTopics() {
    try {
      const res = await fetch("/topics", { headers: authHeaders() });
      const body = await res.json();
      if (!res.ok) throw new Error((body.error && body.error.code) + ": " + (body.error && body.error.message));
      const list = $("topics");
      list.replaceChildren();
      for (const name of body.topics || []) {
        const li = document.createElement("li");
        li.textContent = typeof name === "string" ? name : name.name;
        li.onclick = () => {
          $("tail-topic").value = li.textContent;
          $("pub-topic").value = li.textContent;
          tail(li.textContent, $("tail-from").value);
        };
        if (state.subscription && state.subscription.topic === li.textContent) li.className = "active";
        list.append(li);
      }
    } catch (err) {
      $("log").textContent = "cannot list topics: " + err;
    }
  }

  const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
  const mediaType = (contentType) => (contentType || "").split(";")[0].trim().toLowerCase();
  const isJsonType = (type) => type === "application/json" || type.endsWith("+json");

  /**
   * How the live tail shows a value, by its content type (docs/semantics.md): JSON (and CBOR,
   * decoded by the SDK) pretty-printed, text as text, `application/octet-stream` and other
   * binary types as hex; a record without a content type as text when it is UTF-8, else hex.
   * Returns { kind: "json" | "text" | "bytes" | "null", text }.
   */
  function render(m) {
    if (m.bytes === null) return { kind: "null", text: "null" };
    const type = mediaType(m.contentType);
    const value = m.value;
    if (!(value instanceof Uint8Array) && typeof value !== "string") {
      try {
        return { kind: "json", text: JSON.stringify(value, (k, v) => (v instanceof Uint8Array ? "0x" + hex(v).replace(/ /g, "") : typeof v === "bigint" ? v.toString() : v), 2) };
      } catch {
        return { kind: "json", text: String(value) };
      }
    }
    if (typeof value === "string") return { kind: isJsonType(type) ? "json" : "text", text: value };
    // Bytes: no content type, a binary type, or a value that did not decode as its type said.
    if (type === "application/octet-stream" || (type !== "" && !type.startsWith("text/") && !isJsonType(type))) return { kind: "bytes", text: hex(value) };
    try {
      return { kind: "text", text: strictUtf8.decode(value) };
    } catch {
      return { kind: "bytes", text: hex(value) };
    }
  }

  function addRow(m, shown) {
    const tr = document.createElement("tr");
    for (const text of [m.partition, m.offset, new Date(m.timestamp).toLocaleTimeString(), m.key === null ? "" : m.key, m.contentType || "", shown.text]) {
      const td = document.createElement("td");
      td.textContent = String(text);
      tr.append(td);
    }
    tr.lastChild.className = "value " + shown.kind;
    tr.lastChild.dataset.kind = shown.kind;
    const rows = $("rows");
    rows.prepend(tr);
    while (rows.childElementCount > MAX_ROWS) rows.lastChild.remove();
  }

  /** Tails `topic` from "latest" | "earliest"; replaces the current tail. */
  function tail(topic, from) {
    stop();
    state.received = [];
    $("rows").replaceChildren();
    state.subscription = client.subscribe(topic, (m) => {
      const shown = render(m);
      state.received.push({ partition: m.partition, offset: m.offset, key: m.key, value: m.value, contentType: m.contentType, kind: shown.kind, shown: shown.text });
      addRow(m, shown);
      $("count").textContent = state.received.length + " received";
    }, { from: from || "latest" });
    state.subscription.on("error", (err) => ($("log").textContent = err.code + ": " + err.message));
    return state.subscription;
  }

  function stop() {
    if (state.subscription) state.subscription.unsubscribe();
    state.subscription = null;
  }

  /** Publishes `value`: JSON text is parsed and sent as application/json; anything else as text/plain. */
  function publish(topic, key, value) {
    let parsed = value;
    if (typeof value === "string") {
      try {
        parsed = JSON.parse(value);
      } catch {
        parsed = value;
      }
    }
    return client.publish(topic, parsed, key ? { key } : {});
  }

  $("token").value = token();
  $("token-form").onsubmit = (ev) => {
    ev.preventDefault();
    const value = $("token").value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
    location.reload(); // a new connection with the new token
  };

  $("tail-form").onsubmit = (ev) => {
    ev.preventDefault();
    tail($("tail-topic").value.trim(), $("tail-from").value);
  };
  $("stop").onclick = stop;
  $("refresh").onclick = refreshTopics;
  $("publish-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const topic = $("pub-topic").value.trim();
    try {
      const r = await publish(topic, $("pub-key").value, $("pub-value").value);
      $("pub-result").textContent = `→ partition ${r.partition}, offset ${r.offset}`;
      refreshTopics();
    } catch (err) {
      $("pub-result").textContent = (err.code || "") + " " + err.message;
    }
  };

  const params = new URLSearchParams(location.search);
  if (params.get("topic")) {
    $("tail-topic").value = params.get("topic");
    $("pub-topic").value = params.get("topic");
    if (params.get("from")) $("tail-from").value = params.get("from");
    tail(params.get("topic"), params.get("from") || "latest");
  }
})();
