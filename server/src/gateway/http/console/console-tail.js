// Tributary web console, live tail (SDK subscription over WebSocket) and publish (HTTP
// POST /topics/:t/records with a content type).
// window.__tributary.received: { partition, offset, key, value, contentType, kind, shown }
// for each record the tail got (the last MAX_KEPT), whether the filters show it or not.
"use strict";
(function () {
  const { $, el, api, explain, state, views } = window.TributaryConsole;
  const MAX_ROWS = 500;
  const MAX_KEPT = 5000;

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

  // ---- filters (what the table shows; every record is kept in `received`) ----
  function filters() {
    const p = $("filter-partition").value.trim();
    return { key: $("filter-key").value, partition: p === "" ? null : Number(p) };
  }
  const matches = (r, f) => (f.partition === null || r.partition === f.partition) && (f.key === "" || (r.key !== null && String(r.key).includes(f.key)));

  function row(r) {
    const tr = el("tr", null, el("td", { className: "num" }, String(r.partition)), el("td", { className: "num" }, String(r.offset)));
    for (const text of [new Date(r.timestamp).toLocaleTimeString(), r.key === null ? "" : r.key, r.contentType || ""]) tr.append(el("td", null, String(text)));
    tr.append(el("td", { className: "value " + r.kind, "data-kind": r.kind }, r.shown));
    return tr;
  }
  let shown = 0;
  function redraw() {
    const f = filters();
    const rows = [];
    for (let i = state.received.length - 1; i >= 0 && rows.length < MAX_ROWS; i--) if (matches(state.received[i], f)) rows.push(row(state.received[i]));
    shown = rows.length;
    $("rows").replaceChildren(...rows);
    announce(true);
  }
  $("filter-key").oninput = redraw;
  $("filter-partition").oninput = redraw;
  $("filter-form").onsubmit = (ev) => ev.preventDefault();

  // The count is a live region: announced at most once a second, not per record.
  let announceTimer = null;
  function announce(now) {
    const write = () => {
      announceTimer = null;
      const sub = state.subscription;
      $("count").textContent = sub ? `${state.received.length} received on ${sub.topic}${shown < state.received.length ? `, ${shown} shown` : ""}` : state.received.length ? `stopped, ${state.received.length} received` : "";
    };
    if (now) {
      clearTimeout(announceTimer);
      write();
    } else announceTimer ??= setTimeout(write, 1000);
  }

  /** Tails `topic` from "latest" | "earliest"; replaces the current tail. */
  let tailFrom = "latest";
  function tail(topic, from) {
    stop();
    tailFrom = from || "latest";
    state.received = [];
    $("rows").replaceChildren();
    shown = 0;
    const sub = state.client.subscribe(
      topic,
      (m) => {
        const view = render(m);
        const r = { partition: m.partition, offset: m.offset, timestamp: m.timestamp, key: m.key, value: m.value, contentType: m.contentType, kind: view.kind, shown: view.text };
        state.received.push(r);
        if (state.received.length > MAX_KEPT) state.received.splice(0, state.received.length - MAX_KEPT);
        if (matches(r, filters())) {
          const rows = $("rows");
          rows.prepend(row(r));
          if (++shown > MAX_ROWS) (rows.lastChild.remove(), (shown = MAX_ROWS));
        }
        announce(false);
      },
      { from: tailFrom },
    );
    sub.on("error", (err) => ($("log").textContent = explain(err)));
    state.subscription = sub;
    announce(true);
    return sub;
  }
  function stop() {
    if (state.subscription) state.subscription.unsubscribe();
    state.subscription = null;
    announce(true);
  }
  // A new client (another token): the tail follows it.
  window.TributaryConsole.onClient.push(() => {
    if (state.subscription) tail(state.subscription.topic, tailFrom);
  });

  views.tail = {
    enter(arg, query) {
      const topic = query.get("topic");
      if (!topic) return;
      const from = query.get("from") === "earliest" ? "earliest" : "latest";
      $("tail-topic").value = topic;
      $("tail-from").value = from;
      if (!state.subscription || state.subscription.topic !== topic) tail(topic, from);
    },
  };
  $("tail-form").onsubmit = (ev) => {
    ev.preventDefault();
    tail($("tail-topic").value.trim(), $("tail-from").value);
  };
  $("stop").onclick = stop;

  // ---- publish ----

  /**
   * The HTTP record for `value` as `contentType`: "auto" sends JSON text that parses as its
   * JSON value (application/json) and anything else as text; application/octet-stream takes
   * hex digits; any other type sends the text as it is with that type.
   */
  function record(value, contentType) {
    if (contentType === "auto") {
      try {
        return { value: JSON.parse(value) };
      } catch {
        return { value };
      }
    }
    if (contentType === "application/json") {
      JSON.parse(value); // throws SyntaxError: say so before sending
      return { value, contentType };
    }
    if (contentType === "application/octet-stream") {
      const digits = value.replace(/\s+/g, "");
      if (!/^([0-9a-fA-F]{2})*$/.test(digits)) throw new Error("hex bytes expected, e.g. 00 ff 10");
      const raw = String.fromCharCode(...(digits.match(/../g) || []).map((h) => parseInt(h, 16)));
      return { value: { base64: btoa(raw) }, contentType };
    }
    return { value, contentType };
  }

  /** Publishes one record over HTTP; resolves to { partition, offset }. */
  async function publish(topic, key, value, options = {}) {
    const body = { ...record(value, options.contentType || "auto"), ...(key ? { key } : {}), ...(options.partition !== undefined ? { partition: options.partition } : {}) };
    const reply = await api(`/topics/${encodeURIComponent(topic)}/records`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    return reply.offsets[0];
  }
  state.tail = tail;
  state.publish = publish;

  views.publish = {
    enter(arg, query) {
      if (query.get("topic")) $("pub-topic").value = query.get("topic");
    },
  };
  $("pub-type").onchange = () => ($("pub-custom-label").hidden = $("pub-type").value !== "custom");
  $("publish-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const type = $("pub-type").value === "custom" ? $("pub-custom").value.trim() : $("pub-type").value;
    const partition = $("pub-partition").value.trim();
    try {
      const r = await publish($("pub-topic").value.trim(), $("pub-key").value, $("pub-value").value, { contentType: type, ...(partition !== "" ? { partition: Number(partition) } : {}) });
      $("pub-result").textContent = `Published: partition ${r.partition}, offset ${r.offset}`;
    } catch (err) {
      $("pub-result").textContent = `Not published: ${err instanceof SyntaxError ? "the value is not JSON (" + err.message + ")" : explain(err)}`;
    }
  };
})();
