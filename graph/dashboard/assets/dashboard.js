// The wall screen. It holds no data of its own: everything comes from the
// GraphQL API, live over one graphql-transport-ws connection (the npm
// graphql-ws client, vendored in this folder) that reconnects by itself,
// plus a few periodic queries for the charts. A wall screen has no
// keyboard: open it once as /#token=<token> and the token is kept in
// localStorage and removed from the address bar.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

  const frag = new URLSearchParams(location.hash.slice(1));
  if (frag.get("token")) {
    localStorage.setItem("rpacloud.token", frag.get("token"));
    history.replaceState(null, "", location.pathname);
  }
  let token = localStorage.getItem("rpacloud.token") || "";

  const ANOMALY = `id rule severity status title message since detectedAt acknowledgedBy resolution resolvedAt resolvedBy facts { name value }`;
  const DASHBOARD = `subscription { dashboard {
    at
    robotsByVendorStatus { vendor status count }
    tasksByState { key count }
    pools { pool { name min max pausedAt pausedBy pauseReason } robots idle busy suspect pending running provider providerHealthy }
    running { taskID attempt process vendor robot customer pool startedAt deadline }
    openAnomalies { ${ANOMALY} }
    recentlyResolved { ${ANOMALY} }
  } }`;
  const ANOMALIES = `subscription { anomalies { kind anomaly { ${ANOMALY} } } }`;

  // ---- clock and durations ------------------------------------------------
  function dur(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }
  function tick() {
    $("clock").textContent = new Date().toLocaleTimeString([], { hour12: false });
    document.querySelectorAll("[data-since]").forEach((el) => {
      el.textContent = dur(Date.now() - Date.parse(el.dataset.since));
    });
  }
  setInterval(tick, 1000);

  // ---- anomalies ------------------------------------------------------------
  const open = new Map(); // id -> anomaly
  const fresh = new Set();
  const sevRank = { critical: 0, warning: 1, info: 2 };
  const FACT_ORDER = ["process", "vendor", "robot", "department", "pool", "vm", "task", "last step", "error", "reason", "last seen", "silent for"];

  function renderAlerts() {
    const list = [...open.values()].sort((a, b) => (sevRank[a.severity] - sevRank[b.severity]) || (Date.parse(b.detectedAt) - Date.parse(a.detectedAt)));
    const box = $("alerts");
    box.innerHTML = "";
    if (list.length === 0) {
      box.innerHTML = `<div id="all-clear" class="allclear">No open anomalies</div>`;
      return;
    }
    for (const a of list.slice(0, 6)) {
      const facts = (a.facts || []).slice().sort((x, y) => {
        const i = FACT_ORDER.indexOf(x.name), j = FACT_ORDER.indexOf(y.name);
        return (i < 0 ? 99 : i) - (j < 0 ? 99 : j);
      }).filter((f) => f.name !== "since" && f.name !== "silent for");
      const div = document.createElement("div");
      div.className = `alert ${a.severity}` + (fresh.has(a.id) ? " fresh" : "");
      div.dataset.rule = a.rule;
      div.dataset.id = a.id;
      div.innerHTML = `<span class="sev">${esc(a.severity)}</span>
        <span class="title">${esc(a.title)}</span>
        <span class="since">since <span data-since="${esc(a.since)}">${dur(Date.now() - Date.parse(a.since))}</span></span>
        <div class="facts">${facts.map((f) => `<span><b>${esc(f.name)}</b>${esc(f.value)}</span>`).join("")}</div>
        ${a.status === "acknowledged" ? `<div class="ack">acknowledged by ${esc(a.acknowledgedBy)}${a.resolution ? ": " + esc(a.resolution) : ""}</div>` : ""}`;
      box.appendChild(div);
    }
    if (list.length > 6) {
      const more = document.createElement("div");
      more.className = "allclear bad";
      more.textContent = `+ ${list.length - 6} more open anomalies`;
      box.appendChild(more);
    }
  }

  function setOpen(list) {
    open.clear();
    for (const a of list) open.set(a.id, a);
    renderAlerts();
  }

  function onAnomaly(n) {
    const a = n.anomaly;
    if (n.kind === "resolved") {
      open.delete(a.id);
    } else {
      if (!open.has(a.id)) {
        fresh.add(a.id);
        setTimeout(() => fresh.delete(a.id), 6000);
      }
      open.set(a.id, a);
    }
    renderAlerts();
  }

  function renderResolved(list) {
    $("resolved").innerHTML = list.slice(0, 8).map((a) =>
      `<li><span class="ok">✔</span> ${esc(a.title)} <span class="dim">— ${esc(a.resolution)} (${new Date(a.resolvedAt).toLocaleTimeString([], { hour12: false })})</span></li>`).join("")
      || `<li class="dim">none</li>`;
  }

  // ---- fleet, tasks, running ------------------------------------------------
  function renderSummary(d) {
    const byVendor = {};
    for (const c of d.robotsByVendorStatus) {
      const v = (byVendor[c.vendor] ||= { total: 0 });
      v[c.status] = (v[c.status] || 0) + c.count;
      if (c.status !== "offline") v.total += c.count;
    }
    $("fleet").innerHTML = Object.entries(byVendor).map(([v, c]) => `
      <div class="tile"><b>${c.total}</b><span>${esc(v)} robots</span></div>
      <div class="tile"><b class="ok">${c.idle || 0}</b><span>${esc(v)} idle</span></div>
      <div class="tile"><b class="${(c.suspect || 0) > 0 ? "bad" : ""}">${c.busy || 0}${(c.suspect || 0) > 0 ? ` <small class="bad">${c.suspect}!</small>` : ""}</b><span>${esc(v)} busy</span></div>`).join("")
      || `<div class="tile"><b>0</b><span>robots</span></div>`;
    const t = Object.fromEntries(d.tasksByState.map((c) => [c.key, c.count]));
    $("tasks").innerHTML = `
      <div class="tile"><b class="warn">${t.pending || 0}</b><span>queued</span></div>
      <div class="tile"><b class="ok">${t.succeeded || 0}</b><span>done / h</span></div>
      <div class="tile"><b class="${(t.failed || 0) > 0 ? "bad" : ""}">${t.failed || 0}</b><span>failed / h</span></div>` +
      // Cancelled by an operator (batch cancel, task stop): shown only when there are some.
      ((t.cancelled || 0) > 0 ? `<div class="tile"><b>${t.cancelled}</b><span>cancelled / h</span></div>` : "");
    $("running-count").textContent = d.running.length ? `(${d.running.length})` : "";
    $("running").tBodies[0].innerHTML = d.running.slice(0, 12).map((r) => `<tr>
      <td>${esc(r.process)}</td><td>${esc(r.vendor)}</td><td>${esc(r.robot)}</td><td>${esc(r.customer)}</td>
      <td data-since="${esc(r.startedAt)}">${dur(Date.now() - Date.parse(r.startedAt))}</td></tr>`).join("")
      || `<tr><td colspan="5" class="dim">nothing running</td></tr>`;
    poolNow = d.pools;
    renderPoolHeads();
    setOpen(d.openAnomalies);
    renderResolved(d.recentlyResolved);
  }

  // ---- pools: size and queue over time ---------------------------------------
  let poolNow = [];
  const poolCharts = new Map();
  const axis = { axisLabel: { color: "#8795a3", fontSize: 14 }, splitLine: { lineStyle: { color: "#1f2832" } } };

  function poolDiv(name) {
    let el = document.querySelector(`.pool[data-pool="${CSS.escape(name)}"]`);
    if (!el) {
      el = document.createElement("div");
      el.className = "pool";
      el.dataset.pool = name;
      el.innerHTML = `<h3><span class="name"></span><span class="now"></span></h3><div class="chart"></div>`;
      $("pools").appendChild(el);
    }
    return el;
  }

  function renderPoolHeads() {
    for (const p of poolNow) {
      const el = poolDiv(p.pool.name);
      el.querySelector(".name").innerHTML = `${esc(p.pool.name)} <span class="${p.providerHealthy ? "ok" : "bad"}">●</span>`;
      el.querySelector(".now").innerHTML = `<span>${p.robots}/${p.pool.max} robots</span> · <span class="warn">${p.pending} queued</span> · <span>${p.running} running</span>`;
      // A paused pool (rpacloud pool pause) dispatches nothing: say so,
      // with who paused it, when and why, so a full queue is not mistaken
      // for a fault.
      el.classList.toggle("paused", !!p.pool.pausedAt);
      let why = el.querySelector(".pause");
      if (p.pool.pausedAt) {
        if (!why) {
          why = document.createElement("div");
          why.className = "pause";
          el.insertBefore(why, el.querySelector(".chart"));
        }
        why.innerHTML = `⏸ paused by ${esc(p.pool.pausedBy || "an operator")} <span data-since="${esc(p.pool.pausedAt)}">${dur(Date.now() - Date.parse(p.pool.pausedAt))}</span> ago` +
          (p.pool.pauseReason ? `: ${esc(p.pool.pauseReason)}` : "") + ` — nothing is dispatched`;
      } else if (why) {
        why.remove();
      }
    }
  }

  async function gql(query, variables) {
    const r = await fetch("/graphql", { method: "POST", headers: { "Content-Type": "application/json", Authorization: "Bearer " + token }, body: JSON.stringify({ query, variables }) });
    if (r.status === 401) { showLogin(); throw new Error("unauthenticated"); }
    const j = await r.json();
    if (j.errors) throw new Error(j.errors.map((e) => e.message).join("; "));
    return j.data;
  }

  async function refreshPools() {
    try {
      const d = await gql(`{ poolSeries { pool { name max } points { at robots pending running max } } }`);
      for (const s of d.poolSeries) {
        const el = poolDiv(s.pool.name).querySelector(".chart");
        let c = poolCharts.get(s.pool.name);
        if (!c) { c = echarts.init(el, null, { renderer: "canvas" }); poolCharts.set(s.pool.name, c); }
        c.setOption({
          animation: false, backgroundColor: "transparent",
          grid: { left: 40, right: 10, top: 26, bottom: 22 },
          legend: { top: 0, right: 0, textStyle: { color: "#c9d4df", fontSize: 14 }, itemWidth: 18 },
          xAxis: { type: "time", ...axis, splitLine: { show: false } },
          yAxis: { type: "value", minInterval: 1, ...axis },
          series: [
            { name: "robots", type: "line", step: "end", showSymbol: false, lineStyle: { width: 3, color: "#58a6ff" }, itemStyle: { color: "#58a6ff" }, data: s.points.map((p) => [p.at, p.robots]) },
            { name: "queue", type: "line", showSymbol: false, areaStyle: { opacity: .25 }, lineStyle: { width: 3, color: "#ffb224" }, itemStyle: { color: "#ffb224" }, data: s.points.map((p) => [p.at, p.pending]) },
            { name: "max", type: "line", step: "end", showSymbol: false, lineStyle: { width: 2, type: "dashed", color: "#8795a3" }, itemStyle: { color: "#8795a3" }, data: s.points.map((p) => [p.at, p.max]) },
          ],
        });
      }
    } catch (e) { status("down", e.message); }
  }

  // ---- saturation ---------------------------------------------------------------
  let satChart;
  async function refreshSaturation() {
    try {
      const d = await gql(`{ saturation(window: DAY, buckets: 0) { pools { key robots utilisation recommended idle } vendors { key robots utilisation recommended } idleRobots } }`);
      const s = d.saturation;
      const rows = [...s.pools.map((p) => ({ ...p, label: "pool " + p.key })), ...s.vendors.map((v) => ({ ...v, label: v.key + " licences" }))];
      satChart ||= echarts.init($("saturation"));
      satChart.setOption({
        animation: false, backgroundColor: "transparent",
        grid: { left: 160, right: 120, top: 6, bottom: 24 },
        xAxis: { type: "value", max: 100, ...axis, axisLabel: { ...axis.axisLabel, formatter: "{value}%" } },
        yAxis: { type: "category", data: rows.map((r) => r.label), axisLabel: { color: "#f0f4f8", fontSize: 16 } },
        series: [{
          type: "bar", barMaxWidth: 28,
          data: rows.map((r) => ({ value: Math.round(r.utilisation * 100), itemStyle: { color: r.utilisation > .85 ? "#ff4d4d" : r.utilisation < .05 ? "#8795a3" : "#3fd96b" } })),
          label: { show: true, position: "right", color: "#f0f4f8", fontSize: 15, formatter: (p) => `${p.value}% · need ${rows[p.dataIndex].recommended} of ${rows[p.dataIndex].robots}` },
        }],
      });
      $("saturation-note").textContent = s.idleRobots.length ? `idle robots: ${s.idleRobots.slice(0, 8).join(", ")}${s.idleRobots.length > 8 ? " …" : ""}` : "";
    } catch (e) { status("down", e.message); }
  }

  // ---- connection -------------------------------------------------------------------
  function status(cls, text) {
    const el = $("conn");
    el.className = cls;
    el.textContent = text;
  }
  function showLogin() { $("login").hidden = false; status("down", "not signed in"); }

  let client;
  function start() {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/graphql";
    client = graphqlWs.createClient({
      url,
      connectionParams: () => ({ Authorization: "Bearer " + token }),
      lazy: false,
      keepAlive: 10000,
      retryAttempts: Infinity,
      shouldRetry: () => true,
      retryWait: async (n) => new Promise((r) => setTimeout(r, Math.min(10000, 500 * 2 ** n))),
      on: {
        connected: () => { status("live", "live"); refreshPools(); refreshSaturation(); },
        closed: () => status("down", "reconnecting…"),
        error: () => status("down", "reconnecting…"),
      },
    });
    const sink = (onData) => ({
      next: (r) => { if (r.errors) status("down", r.errors.map((e) => e.message).join("; ")); else onData(r.data); },
      error: (e) => status("down", String(e && e.message || e)),
      complete: () => {},
    });
    // Subscriptions are re-made after every reconnect by the client itself.
    client.subscribe({ query: DASHBOARD }, sink((d) => renderSummary(d.dashboard)));
    client.subscribe({ query: ANOMALIES }, sink((d) => onAnomaly(d.anomalies)));
    setInterval(refreshPools, 15000);
    setInterval(refreshSaturation, 60000);
    tick();
  }

  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("token").value.trim();
    localStorage.setItem("rpacloud.token", token);
    $("login").hidden = true;
    start();
  });
  window.addEventListener("resize", () => { poolCharts.forEach((c) => c.resize()); satChart && satChart.resize(); });
  if (token) start(); else showLogin();
})();
