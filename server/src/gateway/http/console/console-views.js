// Tributary web console, read-only views: overview (GET /cluster, GET /metrics), topics and
// a topic (GET /topics, GET /topics/:t), consumer groups and a group (GET /groups, GET /groups/:g).
"use strict";
(function () {
  const { $, el, fillRows, api, apiText, explain, views, fmt, link } = window.TributaryConsole;
  const enc = encodeURIComponent;

  /** Runs `load` now and every `ms` while the view is shown. */
  function polling(load, ms) {
    let timer = null;
    return {
      enter(...args) {
        load(...args);
        clearInterval(timer);
        timer = setInterval(() => load(...args), ms);
      },
      leave() {
        clearInterval(timer);
        timer = null;
      },
    };
  }

  // ---- overview ----

  /**
   * Sums of Prometheus text-format samples by metric name, and by `labelName` when given:
   * { total, by: { labelValue: sum } }. Lines it does not understand are skipped (other
   * metrics come and go; only the names asked for matter).
   */
  function sumMetric(text, name, labelName) {
    const out = { total: 0, by: {}, seen: false };
    for (const line of text.split("\n")) {
      if (!line.startsWith(name)) continue;
      const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m || m[1] !== name) continue;
      const value = Number(m[4]);
      if (!Number.isFinite(value)) continue;
      out.seen = true;
      out.total += value;
      if (labelName) {
        const label = new RegExp(`(?:^|,)\\s*${labelName}="((?:[^"\\\\]|\\\\.)*)"`).exec(m[3] || "");
        const key = label ? label[1] : "";
        out.by[key] = (out.by[key] || 0) + value;
      }
    }
    return out;
  }

  const PROTOCOLS = [["ws", "WebSocket (SDK)"], ["mqtt", "MQTT over TCP"], ["mqtt-ws", "MQTT over WebSocket"]];
  let previous = null; // { at, counters: { name: value } }

  async function loadOverview() {
    const [cluster, metrics] = await Promise.allSettled([api("/cluster"), apiText("/metrics")]);
    $("overview-error").textContent = [cluster, metrics].filter((r) => r.status === "rejected").map((r) => (r.reason.status === 404 ? "GET /metrics is off on this node (metrics.enabled: false): no rates." : explain(r.reason))).join(" ");
    if (cluster.status === "fulfilled") {
      const nodes = cluster.value.nodes || [];
      const total = (p) => nodes.reduce((n, node) => n + ((node.connections && node.connections[p]) || 0), 0);
      $("conn-rows").replaceChildren(...PROTOCOLS.map(([p, label]) => el("tr", { "data-protocol": p }, el("th", { scope: "row" }, label), el("td", { className: "num" }, fmt.num(total(p))))));
      fillRows(
        $("node-rows"),
        nodes.map((n) => [
          n.nodeId + (n.nodeId === cluster.value.self ? " (this node)" : ""),
          n.engine,
          (n.urls && n.urls.http) || "—",
          (n.urls && n.urls.mqtt) || "—",
          fmt.time(n.startedAt),
          typeof n.health === "string" ? n.health : n.health ? JSON.stringify(n.health) : "—",
          ...PROTOCOLS.map(([p]) => ({ text: fmt.num((n.connections && n.connections[p]) || 0), num: true })),
        ]),
        "no live node",
      );
    }
    if (metrics.status === "fulfilled") showRates(metrics.value);
  }

  function showRates(text) {
    const produced = sumMetric(text, "tributary_produced_records_total");
    const delivered = sumMetric(text, "tributary_delivered_messages_total", "gateway");
    const counters = { produced: produced.total, delivered: delivered.total };
    for (const [gateway, v] of Object.entries(delivered.by)) counters["delivered:" + gateway] = v;
    const now = performance.now();
    const rate = (key) => {
      if (!previous || !(key in previous.counters) || counters[key] < previous.counters[key]) return null; // first scrape, or a restarted node
      return (counters[key] - previous.counters[key]) / ((now - previous.at) / 1000);
    };
    const row = (key, label) => {
      const r = rate(key);
      return el("tr", { "data-counter": key }, el("th", { scope: "row" }, label), el("td", { className: "num", "data-rate": r === null ? "" : String(r) }, r === null ? "…" : r.toFixed(1)), el("td", { className: "num", "data-total": String(counters[key]) }, fmt.num(counters[key])));
    };
    const rows = [row("produced", "Records produced"), row("delivered", "Messages delivered")];
    for (const gateway of Object.keys(delivered.by).sort()) rows.push(row("delivered:" + gateway, `… delivered over ${gateway}`));
    if (!produced.seen && !delivered.seen) rows.splice(0, rows.length, el("tr", null, el("td", { colSpan: 3, className: "help" }, "no produce or delivery counters in /metrics")));
    $("rate-rows").replaceChildren(...rows);
    previous = { at: now, counters };
  }

  views.overview = polling(() => loadOverview().catch((err) => ($("overview-error").textContent = explain(err))), 2000);

  // ---- topics ----

  const retention = (t) => [t.retentionMs !== null ? fmt.duration(t.retentionMs) : null, t.retentionBytes !== null ? `${fmt.bytes(t.retentionBytes)} per partition` : null].filter(Boolean).join(", ") || "forever";
  const records = (t) => t.partitionInfo.reduce((n, p) => n + p.endOffset - p.earliestOffset, 0);
  const MAX_DESCRIBED = 200;

  async function refreshTopics() {
    const internal = $("show-internal").checked;
    try {
      const { topics } = await api(`/topics${internal ? "?internal=true" : ""}`);
      $("topic-names").replaceChildren(...topics.map((t) => el("option", { value: t })));
      // Described one by one (GET /topics/:t); past MAX_DESCRIBED only the names are listed.
      const described = await Promise.all(topics.map((t, i) => (i < MAX_DESCRIBED ? api(`/topics/${enc(t)}`).catch((err) => ({ error: err })) : { error: null })));
      fillRows(
        $("topic-rows"),
        topics.map((name, i) => {
          const d = described[i];
          const named = { node: link(`#/topics/${enc(name)}`, name) };
          if (d.error !== undefined) return [named, { text: "—", num: true }, { text: d.error ? explain(d.error) : "—", className: "help" }, "", "", ""];
          return [named, { text: d.partitions, num: true }, { text: fmt.num(records(d)), num: true }, { text: fmt.bytes(d.sizeBytes), num: true }, retention(d), d.cleanupPolicy];
        }),
        internal ? "no topics" : "no topics yet (internal topics are hidden)",
      );
      $("topics-error").textContent = "";
    } catch (err) {
      $("topics-error").textContent = explain(err);
    }
  }
  window.__tributary.refreshTopics = refreshTopics;
  // The tail's and the publish form's topic suggestions, once connected (names only).
  window.TributaryConsole.onClient.push((client) =>
    client.on("connected", () => {
      api(`/topics${$("show-internal").checked ? "?internal=true" : ""}`).then(
        ({ topics }) => $("topic-names").replaceChildren(...topics.map((t) => el("option", { value: t }))),
        (err) => ($("topics-error").textContent = explain(err)),
      );
    }),
  );
  views.topics = { enter: refreshTopics };
  $("refresh").onclick = refreshTopics;
  $("show-internal").onchange = refreshTopics;

  async function loadTopic(name) {
    $("topic-h").textContent = `Topic ${name}`;
    $("topic-tail").href = `#/tail?topic=${enc(name)}&from=earliest`;
    $("topic-publish").href = `#/publish?topic=${enc(name)}`;
    try {
      const t = await api(`/topics/${enc(name)}`);
      const config = [
        ["Partitions", t.partitions],
        ["Records", fmt.num(records(t))],
        ["Size", fmt.bytes(t.sizeBytes)],
        ["Retention", retention(t)],
        ["Cleanup policy", t.cleanupPolicy],
        ["Replication factor", t.replicationFactor],
        ...(String(t.cleanupPolicy).includes("compact") ? [["Tombstones kept", fmt.duration(t.deleteRetentionMs)], ["Min cleanable dirty ratio", t.minCleanableDirtyRatio]] : []),
        ["Created", fmt.time(t.createdAt)],
      ];
      $("topic-config").replaceChildren(...config.flatMap(([k, v]) => [el("dt", null, k), el("dd", null, String(v))]));
      fillRows(
        $("partition-rows"),
        t.partitionInfo.map((p) => [{ text: p.partition, num: true }, { text: fmt.num(p.earliestOffset), num: true }, { text: fmt.num(p.endOffset), num: true }, { text: fmt.num(p.endOffset - p.earliestOffset), num: true }, p.epoch]),
      );
      $("topic-error").textContent = "";
    } catch (err) {
      $("topic-config").replaceChildren();
      $("partition-rows").replaceChildren();
      $("topic-error").textContent = explain(err);
    }
  }
  views.topic = { enter: loadTopic };

  // ---- consumer groups ----

  async function refreshGroups() {
    const internal = $("show-internal-groups").checked;
    try {
      const { groups } = await api(`/groups${internal ? "?internal=true" : ""}`);
      fillRows(
        $("group-rows"),
        groups.map((g) => [{ node: link(`#/groups/${enc(g.group)}`, g.group) }, g.state, { text: g.generation, num: true }, { text: g.members, num: true }]),
        "no consumer groups",
      );
      $("groups-error").textContent = "";
    } catch (err) {
      $("groups-error").textContent = explain(err);
    }
  }
  views.groups = { enter: refreshGroups };
  $("refresh-groups").onclick = refreshGroups;
  $("show-internal-groups").onchange = refreshGroups;

  let shownGroup = "";
  async function loadGroup(name) {
    shownGroup = name;
    $("group-h").textContent = `Group ${name}`;
    try {
      const g = await api(`/groups/${enc(name)}`);
      if (shownGroup !== name) return;
      const clientOf = new Map(g.members.map((m) => [m.memberId, m.clientId]));
      const summary = [["State", g.state], ["Generation", g.generation], ["Strategy", g.strategy || "—"], ["Members", g.members.length], ["Total lag", fmt.num(g.totalLag)]];
      $("group-summary").replaceChildren(...summary.flatMap(([k, v]) => [el("dt", null, k), el("dd", null, String(v))]));
      const tp = (list) => list.map((a) => `${a.topic}:${a.partition}`).join(", ") || "—";
      fillRows(
        $("member-rows"),
        g.members.map((m) => [m.memberId, m.clientId, m.user || "—", m.node, m.topics.join(", "), tp(m.assignment) + (m.revoking.length ? ` (revoking ${tp(m.revoking)})` : ""), fmt.time(m.joinedAt)]),
        "no members",
      );
      fillRows(
        $("lag-rows"),
        g.partitions.map((p) => [
          p.topic,
          { text: p.partition, num: true },
          p.owner ? clientOf.get(p.owner) || p.owner : "—",
          { text: p.committedOffset === null ? "—" : fmt.num(p.committedOffset), num: true },
          { text: fmt.num(p.endOffset), num: true },
          { text: p.lag === null ? "—" : fmt.num(p.lag), num: true, className: p.lag > 0 ? "lagging" : "" },
        ]),
        "no committed offsets or assignments",
      );
      $("group-error").textContent = "";
    } catch (err) {
      $("group-error").textContent = explain(err);
    }
  }
  views.group = polling(loadGroup, 3000);
  $("refresh-group").onclick = () => loadGroup(shownGroup);
})();
