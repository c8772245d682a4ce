// Tributary web console: plain DOM over the SDK browser bundle (global `Tributary`).
// State for tests and the curious: window.__tributary = { client, received, subscription, tail, publish }.
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

  function render(value) {
    if (value instanceof Uint8Array) return Array.from(value, (b) => b.toString(16).padStart(2, "0")).join(" ");
    if (typeof value === "string") return value;
    try {
      return JSON.stringify(value, (k, v) => (v instanceof Uint8Array ? "0x" + Array.from(v, (b) => b.toString(16).padStart(2, "0")).join("") : typeof v === "bigint" ? v.toString() : v));
    } catch {
      return String(value);
    }
  }

  function addRow(m) {
    const tr = document.createElement("tr");
    for (const text of [m.partition, m.offset, new Date(m.timestamp).toLocaleTimeString(), m.key === null ? "" : m.key, render(m.value)]) {
      const td = document.createElement("td");
      td.textContent = String(text);
      tr.append(td);
    }
    tr.lastChild.className = "value";
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
      state.received.push({ partition: m.partition, offset: m.offset, key: m.key, value: m.value });
      addRow(m);
      $("count").textContent = state.received.length + " received";
    }, { from: from || "latest" });
    state.subscription.on("error", (err) => ($("log").textContent = err.code + ": " + err.message));
    return state.subscription;
  }

  function stop() {
    if (state.subscription) state.subscription.unsubscribe();
    state.subscription = null;
  }

  /** Publishes `value` (JSON text is parsed; anything else is sent as a string). */
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
