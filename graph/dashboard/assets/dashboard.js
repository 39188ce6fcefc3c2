// The wall screen. It holds no data of its own: everything comes from the
// GraphQL API, live over one graphql-transport-ws connection (the npm
// graphql-ws client, vendored in this folder) that reconnects by itself,
// plus a few periodic queries for the charts. A wall screen has no
// keyboard: open it once as /#token=<token> and the token is kept in
// localStorage and removed from the address bar.
//
// URL parameters (the query string; README "The wall screen"):
//   view=overview|anomalies|vendors|pools|department   what this display shows
//   customer=NAME     the department of view=department (implies it)
//   stale=SECONDS     no message from the server for this long marks the
//                     screen stale (default 30)
//   sound=1           a short tone when a critical anomaly opens
//   operator=1        acknowledge / resolve buttons on each anomaly
//
// The screen never shows all-clear unless it is connected, has received
// the summary since it (re)connected and is not stale: unknown is never
// green.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

  const frag = new URLSearchParams(location.hash.slice(1));
  if (frag.get("token")) {
    localStorage.setItem("rpacloud.token", frag.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  let token = localStorage.getItem("rpacloud.token") || "";

  // ---- parameters ------------------------------------------------------------
  const P = new URLSearchParams(location.search);
  const VIEWS = ["overview", "anomalies", "vendors", "pools", "department"];
  const dept = (P.get("customer") || "").trim();
  let view = (P.get("view") || (dept ? "department" : "overview")).toLowerCase();
  if (!VIEWS.includes(view)) view = "overview";
  if (view === "department" && !dept) view = "overview";
  const staleSec = Math.max(2, Number(P.get("stale")) || 30);
  const sound = P.get("sound") === "1";
  const operator = P.get("operator") === "1";
  document.body.className = "view-" + view + (operator ? " operator" : "");
  $("view-name").textContent = view === "department" ? "· department " + dept : view === "overview" ? "" : "· " + view;

  const ANOMALY = `id rule severity status title message since detectedAt acknowledgedBy resolution resolvedAt resolvedBy facts { name value }`;
  const DASHBOARD = `subscription { dashboard {
    at timeZone
    robotsByVendorStatus { vendor status count }
    tasksByState { key count }
    pools { pool { name min max pausedAt pausedBy pauseReason } robots idle busy suspect pending running provider providerHealthy }
    running { taskID attempt process vendor robot customer pool startedAt deadline }
    vendorJobs { vendor externalID process customer since }
    openAnomalies { ${ANOMALY} }
    recentlyResolved { ${ANOMALY} }
  } }`;
  const ANOMALIES = `subscription { anomalies { kind anomaly { ${ANOMALY} } } }`;

  // ---- readable times, durations and IDs ----------------------------------------
  let zone = "UTC";
  let timeFmt = new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  function setZone(z) {
    if (!z || z === zone) return;
    try {
      timeFmt = new Intl.DateTimeFormat("en-GB", { timeZone: z, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
      zone = z;
    } catch (e) { /* a zone this browser does not know: stay on the last good one */ }
  }
  const hms = (t) => timeFmt.format(typeof t === "number" ? new Date(t) : new Date(Date.parse(t)));
  function dur(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }
  // rpacloud's IDs are global (the type's number in the high 32 bits, the
  // row's in the low ones): 4294967297 is task 1. People read the row's
  // number; the API takes either.
  function shortID(v) {
    const s = String(v ?? "");
    if (/^\d{10,}$/.test(s)) {
      const n = BigInt(s);
      if (n >= 4294967296n) return "#" + (n & 0xffffffffn).toString();
    }
    // A vendor's GUIDs: their last 8 characters are enough to tell them apart on a screen.
    if (/^[0-9a-f-]{20,}$/i.test(s)) return "…" + s.slice(-8);
    return s;
  }
  const ID_FACTS = new Set(["task", "vm", "attempt", "job", "batch"]);
  // Texts the server wrote (titles, resolutions, facts) may carry RFC 3339
  // times in UTC: show them as clock times in the server's zone.
  const readable = (text) => String(text ?? "").replace(/\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)/g, (t) => hms(t));
  // ECharts sizes are pixels: scale them with the screen, as the CSS does.
  const px = (n) => Math.round(n * innerWidth / 1920);

  // ---- connection truth ------------------------------------------------------------
  let connected = false; // the websocket is open and acknowledged
  let haveData = false;  // a summary arrived since the last (re)connection
  let lastMsg = 0;       // when the server last said anything (data, ping or pong)
  let stale = false;

  function status(cls, text) {
    const el = $("conn");
    el.className = cls;
    el.textContent = "● " + text;
  }
  function showErr(text) { $("err").textContent = text || ""; }

  function tick() {
    const now = Date.now();
    $("clock").textContent = hms(now);
    $("zone").textContent = zone;
    document.querySelectorAll("[data-since]").forEach((el) => {
      el.textContent = dur(now - Date.parse(el.dataset.since));
    });
    const s = !lastMsg || now - lastMsg > staleSec * 1000;
    const b = $("stale-banner");
    if (s && token) {
      b.hidden = false;
      b.textContent = lastMsg
        ? `STALE — no word from the server for ${dur(now - lastMsg)} (last at ${hms(lastMsg)}): what this screen shows may be out of date`
        : "NO DATA — not connected to the server yet";
    } else {
      b.hidden = true;
    }
    if (s !== stale) {
      stale = s;
      document.body.classList.toggle("stale", s);
      renderAlerts();
    }
  }
  setInterval(tick, 1000);

  // ---- anomalies --------------------------------------------------------------------
  const open = new Map(); // id -> anomaly
  const seen = new Set(); // ids known to this page
  let seeded = false;     // the first summary's anomalies are not news
  const fresh = new Map(); // id -> until (ms): new critical anomalies blink
  const sevRank = { critical: 0, warning: 1, info: 2 };
  const FACT_ORDER = ["process", "vendor", "robot", "department", "pool", "vm", "task", "job", "last step", "error", "reason", "last seen", "silent for"];

  function department(a) {
    const f = (a.facts || []).find((x) => x.name === "department");
    return f ? f.value : "";
  }
  const mine = (customer) => view !== "department" || customer === dept;

  function noteNew(a) {
    if (seen.has(a.id)) return;
    seen.add(a.id);
    if (!seeded || a.severity !== "critical" || a.status !== "open") return;
    fresh.set(a.id, Date.now() + 60000);
    setTimeout(() => { fresh.delete(a.id); renderAlerts(); }, 60000);
    if (sound) beep();
  }

  let audio;
  function beep() {
    try {
      audio ||= new AudioContext();
      for (let i = 0; i < 3; i++) {
        const o = audio.createOscillator(), g = audio.createGain();
        o.frequency.value = 880;
        g.gain.value = 0.2;
        o.connect(g).connect(audio.destination);
        const t = audio.currentTime + i * 0.35;
        o.start(t);
        o.stop(t + 0.2);
      }
    } catch (e) { /* no audio device: the blink still draws the eye */ }
  }

  function card(a, compact) {
    const facts = (a.facts || []).slice().sort((x, y) => {
      const i = FACT_ORDER.indexOf(x.name), j = FACT_ORDER.indexOf(y.name);
      return (i < 0 ? 99 : i) - (j < 0 ? 99 : j);
    }).filter((f) => f.name !== "since" && f.name !== "silent for");
    const div = document.createElement("div");
    div.className = `alert ${a.severity}` + (fresh.has(a.id) && a.status === "open" ? " fresh" : "") + (compact ? " compact" : "");
    div.dataset.rule = a.rule;
    div.dataset.id = a.id;
    const fv = (f) => ID_FACTS.has(f.name) ? shortID(f.value) : readable(f.value);
    div.innerHTML = `<span class="sev">${esc(a.severity)}</span>
      <span class="title">${esc(readable(a.title))}</span>
      <span class="since">since <span data-since="${esc(a.since)}">${dur(Date.now() - Date.parse(a.since))}</span></span>
      <div class="facts">${facts.map((f) => `<span><b>${esc(f.name)}</b>${esc(fv(f))}</span>`).join("")}</div>
      ${a.status === "acknowledged" ? `<div class="ack">acknowledged by ${esc(a.acknowledgedBy)}${a.resolution ? ": " + esc(readable(a.resolution)) : ""}</div>` : ""}
      ${operator ? `<div class="ops">${a.status === "open" ? `<button data-act="ack">Acknowledge</button>` : ""}<button data-act="resolve">Resolve</button></div>` : ""}`;
    return div;
  }

  // renderAlerts shows what fits: most severe, then newest, first; what
  // does not fit is counted in "+N more" and never pushes the panels below
  // off the screen (the box has a bounded height).
  let editing = null; // the anomaly whose resolution an operator is typing
  function renderAlerts() {
    // Re-drawing would wipe what the operator is typing: wait for it.
    if (editing) return;
    const list = [...open.values()].filter((a) => mine(department(a)))
      .sort((a, b) => (sevRank[a.severity] - sevRank[b.severity]) || (Date.parse(b.detectedAt) - Date.parse(a.detectedAt)));
    const box = $("alerts");
    box.innerHTML = "";
    if (list.length === 0) {
      const known = connected && haveData && !stale;
      box.innerHTML = known
        ? `<div id="all-clear" class="allclear">No open anomalies${view === "department" ? " for " + esc(dept) : ""}</div>`
        : `<div id="all-clear" class="unknown">Anomalies unknown: ${connected ? "no live data yet" : "not connected"}</div>`;
      return;
    }
    const compact = list.length > (view === "anomalies" ? 6 : 2);
    const cards = [];
    for (const a of list.slice(0, 100)) {
      const c = card(a, compact);
      box.appendChild(c);
      cards.push(c);
    }
    const more = document.createElement("div");
    more.className = "more";
    box.appendChild(more);
    let hidden = list.length - cards.length;
    const label = () => { more.textContent = hidden > 0 ? `+${hidden} more open anomalies` : ""; more.hidden = hidden === 0; };
    label();
    while (cards.length > 1 && box.scrollHeight > box.clientHeight + 1) {
      cards.pop().remove();
      hidden++;
      label();
    }
  }

  function setOpen(list) {
    open.clear();
    for (const a of list) { open.set(a.id, a); noteNew(a); }
    seeded = true;
    renderAlerts();
  }

  function onAnomaly(n) {
    const a = n.anomaly;
    if (n.kind === "resolved") {
      open.delete(a.id);
    } else {
      noteNew(a);
      open.set(a.id, a);
    }
    renderAlerts();
  }

  // Operator mode: the buttons call the same mutations as the API's users;
  // the server decides whether this token may act (operators and admins).
  $("alerts").addEventListener("click", async (ev) => {
    const btn = ev.target.closest("button[data-act]");
    if (!btn) return;
    const card = btn.closest(".alert");
    const id = card.dataset.id;
    if (btn.dataset.act === "cancel") { editing = null; renderAlerts(); return; }
    if (btn.dataset.act === "resolve") {
      // The resolution is typed in the card (a browser dialog would stop
      // the screen's updates behind it).
      editing = id;
      card.querySelector(".ops").innerHTML = `<form class="resolve"><input name="r" required placeholder="resolution: what was done" autocomplete="off">` +
        `<button>Resolve</button><button type="button" data-act="cancel">Cancel</button></form>`;
      card.querySelector("input").focus();
      return;
    }
    try {
      await gql(`mutation($id:ID!){acknowledgeAnomaly(id:$id, note:"acknowledged on the wall screen"){id}}`, { id });
      showErr("");
    } catch (e) { showErr(e.message); }
  });
  $("alerts").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const id = ev.target.closest(".alert").dataset.id;
    const r = ev.target.elements.r.value.trim();
    if (!r) return;
    try {
      await gql(`mutation($id:ID!,$r:String!){resolveAnomaly(id:$id, resolution:$r){id}}`, { id, r });
      showErr("");
      editing = null;
      renderAlerts();
    } catch (e) { showErr(e.message); }
  });

  function renderResolved(list) {
    const ul = $("resolved");
    ul.innerHTML = list.filter((a) => mine(department(a))).slice(0, 8).map((a) =>
      `<li><span class="ok">✔</span> ${esc(readable(a.title))} <span class="dim">— ${esc(readable(a.resolution))} (${hms(a.resolvedAt)})</span></li>`).join("")
      || `<li class="dim">none</li>`;
    // What does not fit the card is left out, not cut in half.
    const cardEl = $("resolved-card");
    while (ul.children.length > 1 && cardEl.scrollHeight > cardEl.clientHeight + 1) ul.lastElementChild.remove();
  }

  // ---- fleet by vendor, tasks, running ------------------------------------------------
  // Robot states differ by vendor (rpacloud: idle/busy/...; the vendors'
  // orchestrators: available/busy/disconnected/...): idle and available are
  // both "idle".
  const IDLE = new Set(["idle", "available"]);

  function vendorRows(d) {
    const by = {};
    const row = (v) => (by[v] ||= { robots: 0, idle: 0, busy: 0, other: 0, suspect: 0, running: 0, jobs: [] });
    for (const c of d.robotsByVendorStatus) {
      const r = row(c.vendor);
      if (c.status === "offline") continue;
      r.robots += c.count;
      if (IDLE.has(c.status)) r.idle += c.count;
      else if (c.status === "busy") r.busy += c.count;
      else r.other += c.count;
      if (c.status === "suspect") r.suspect += c.count;
    }
    for (const x of d.running) if (mine(x.customer)) { const r = row(x.vendor); r.running++; r.jobs.push({ process: x.process, who: x.robot, customer: x.customer, since: x.startedAt }); }
    for (const j of d.vendorJobs) if (mine(j.customer)) { const r = row(j.vendor); r.running++; r.jobs.push({ process: j.process || "(no process)", who: "job " + shortID(j.externalID), customer: j.customer, since: j.since }); }
    // rpacloud first, then the vendors by name.
    return Object.entries(by).sort(([a], [b]) => (a === "rpacloud" ? -1 : b === "rpacloud" ? 1 : a.localeCompare(b)));
  }

  function renderSummary(d) {
    haveData = true;
    setZone(d.timeZone);
    const rows = vendorRows(d);
    $("fleet").tBodies[0].innerHTML = rows.map(([v, r]) => `<tr data-vendor="${esc(v)}">
      <td>${esc(v)}</td><td>${r.robots}</td><td class="ok">${r.idle}</td><td>${r.busy}</td>
      <td class="${r.suspect > 0 ? "bad" : "dim"}">${r.other}</td><td>${r.running}</td></tr>`).join("")
      || `<tr><td colspan="6" class="dim">no robots</td></tr>`;
    $("vendors").innerHTML = rows.map(([v, r]) => `<div class="vendor" data-vendor="${esc(v)}">
      <h3>${esc(v)}</h3>
      <div class="tiles"><div class="tile"><b>${r.robots}</b><span>robots</span></div><div class="tile"><b class="ok">${r.idle}</b><span>idle</span></div>
      <div class="tile"><b>${r.busy}</b><span>busy</span></div><div class="tile"><b>${r.running}</b><span>running</span></div></div>
      <ul>${r.jobs.slice(0, 6).map((j) => `<li>${esc(j.process)} <span class="dim">${esc(j.who)} ${esc(j.customer)}</span> <span data-since="${esc(j.since)}">${dur(Date.now() - Date.parse(j.since))}</span></li>`).join("")}
      ${r.jobs.length > 6 ? `<li class="dim">+${r.jobs.length - 6} more</li>` : ""}</ul></div>`).join("")
      || `<div class="dim">no robots</div>`;

    const t = Object.fromEntries(d.tasksByState.map((c) => [c.key, c.count]));
    $("tasks").innerHTML = `
      <div class="tile"><b class="warn">${t.pending || 0}</b><span>queued</span></div>
      <div class="tile"><b class="ok">${t.succeeded || 0}</b><span>done / h</span></div>
      <div class="tile"><b class="${(t.failed || 0) > 0 ? "bad" : ""}">${t.failed || 0}</b><span>failed / h</span></div>` +
      // Cancelled by an operator (batch cancel, task stop): shown only when there are some.
      ((t.cancelled || 0) > 0 ? `<div class="tile"><b>${t.cancelled}</b><span>cancelled / h</span></div>` : "");

    const runs = [
      ...d.running.filter((r) => mine(r.customer)).map((r) => ({ process: r.process, vendor: r.vendor, who: r.robot, customer: r.customer, since: r.startedAt })),
      ...d.vendorJobs.filter((j) => mine(j.customer)).map((j) => ({ process: j.process || "(no process)", vendor: j.vendor, who: "job " + shortID(j.externalID), customer: j.customer, since: j.since })),
    ];
    $("running-count").textContent = runs.length ? `(${runs.length})` : "";
    const tb = $("running").tBodies[0];
    tb.innerHTML = runs.map((r) => `<tr>
      <td>${esc(r.process)}</td><td>${esc(r.vendor)}</td><td>${esc(r.who)}</td><td>${esc(r.customer)}</td>
      <td data-since="${esc(r.since)}">${dur(Date.now() - Date.parse(r.since))}</td></tr>`).join("")
      || `<tr><td colspan="5" class="dim">nothing running</td></tr>`;
    // Rows that do not fit the card are counted, not scrolled.
    const cardEl = $("running-card");
    let cut = 0;
    while (tb.rows.length > 1 && cardEl.scrollHeight > cardEl.clientHeight + 1) { tb.deleteRow(-1); cut++; $("running-more").textContent = `+${cut} more`; }
    $("running-more").textContent = cut ? `+${cut} more` : "";

    poolNow = d.pools;
    renderPoolHeads();
    setOpen(d.openAnomalies);
    renderResolved(d.recentlyResolved);
  }

  // ---- pools: size and queue over time ---------------------------------------
  let poolNow = [];
  const poolCharts = new Map();
  const axis = { axisLabel: { color: "#8795a3", fontSize: px(14) }, splitLine: { lineStyle: { color: "#1f2832" } } };

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
          grid: { left: px(40), right: px(10), top: px(26), bottom: px(22) },
          legend: { top: 0, right: 0, textStyle: { color: "#c9d4df", fontSize: px(14) }, itemWidth: px(18), itemHeight: px(14) },
          xAxis: { type: "time", ...axis, splitLine: { show: false }, axisLabel: { ...axis.axisLabel, formatter: (v) => hms(v).slice(0, 5) } },
          yAxis: { type: "value", minInterval: 1, ...axis },
          series: [
            { name: "robots", type: "line", step: "end", showSymbol: false, lineStyle: { width: px(3), color: "#58a6ff" }, itemStyle: { color: "#58a6ff" }, data: s.points.map((p) => [p.at, p.robots]) },
            { name: "queue", type: "line", showSymbol: false, areaStyle: { opacity: .25 }, lineStyle: { width: px(3), color: "#ffb224" }, itemStyle: { color: "#ffb224" }, data: s.points.map((p) => [p.at, p.pending]) },
            { name: "max", type: "line", step: "end", showSymbol: false, lineStyle: { width: px(2), type: "dashed", color: "#8795a3" }, itemStyle: { color: "#8795a3" }, data: s.points.map((p) => [p.at, p.max]) },
          ],
        });
        c.resize();
      }
      showErr("");
    } catch (e) { showErr(e.message); }
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
        grid: { left: px(160), right: px(120), top: px(6), bottom: px(24) },
        xAxis: { type: "value", max: 100, ...axis, axisLabel: { ...axis.axisLabel, formatter: "{value}%" } },
        yAxis: { type: "category", data: rows.map((r) => r.label), axisLabel: { color: "#f0f4f8", fontSize: px(16) } },
        series: [{
          type: "bar", barMaxWidth: px(28),
          data: rows.map((r) => ({ value: Math.round(r.utilisation * 100), itemStyle: { color: r.utilisation > .85 ? "#ff4d4d" : r.utilisation < .05 ? "#8795a3" : "#3fd96b" } })),
          label: { show: true, position: "right", color: "#f0f4f8", fontSize: px(15), formatter: (p) => `${p.value}% · need ${rows[p.dataIndex].recommended} of ${rows[p.dataIndex].robots}` },
        }],
      });
      satChart.resize();
      $("saturation-note").textContent = s.idleRobots.length ? `idle robots: ${s.idleRobots.slice(0, 8).join(", ")}${s.idleRobots.length > 8 ? " …" : ""}` : "";
      showErr("");
    } catch (e) { showErr(e.message); }
  }

  // ---- connection -------------------------------------------------------------------
  function showLogin() { $("login").hidden = false; status("down", "not signed in"); }

  let client;
  function start() {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/graphql";
    const down = (text) => {
      connected = false;
      haveData = false;
      status("down", text);
      renderAlerts();
    };
    client = graphqlWs.createClient({
      url,
      connectionParams: () => ({ Authorization: "Bearer " + token }),
      lazy: false,
      // A ping at least three times per stale bound: a quiet but healthy
      // connection still hears a pong, so only a dead one turns stale.
      keepAlive: Math.min(10000, Math.floor(staleSec * 1000 / 3)),
      retryAttempts: Infinity,
      shouldRetry: () => true,
      retryWait: async (n) => new Promise((r) => setTimeout(r, Math.min(10000, 500 * 2 ** n))),
      on: {
        connected: () => { connected = true; lastMsg = Date.now(); status("live", "live"); refreshPools(); refreshSaturation(); },
        message: () => { lastMsg = Date.now(); },
        pong: () => { lastMsg = Date.now(); },
        // 4401/4403: the token was refused or revoked. graphql-ws does
        // not retry 4401 (a 4403 is retried once and then gets 4401), so
        // say so rather than "reconnecting" for ever.
        closed: (e) => down(e && (e.code === 4401 || e.code === 4403)
          ? "token refused (" + e.code + ") — open the screen with a valid token"
          : "disconnected — reconnecting…"),
        error: () => down("disconnected — reconnecting…"),
      },
    });
    const sink = (onData) => ({
      next: (r) => { if (r.errors) showErr(r.errors.map((e) => e.message).join("; ")); else onData(r.data); },
      error: (e) => showErr(String(e && e.message || e)),
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
  // Sizes are computed for one screen (the charts' pixels, what fits): a
  // screen that changes size starts over at its new size.
  let resizing;
  const size0 = innerWidth + "x" + innerHeight;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => { if (innerWidth + "x" + innerHeight !== size0) location.reload(); }, 1000);
  });
  renderAlerts();
  tick();
  if (token) start(); else showLogin();
})();
