// Gannet dashboard: a single page over the admin JSON API. No framework, no
// build step. It polls /api/v1/stats every second and keeps five minutes of
// history for the charts; the clients table and the topics refresh more
// slowly. Everything that comes from the broker is put in the page as text
// (textContent), never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "gannet.admin.token";
  const POLL_MS = 1000;
  const WINDOW_MS = 5 * 60 * 1000; // chart history
  const CLIENTS_EVERY = 2; // polls between client table refreshes
  const TOPICS_EVERY = 5;
  const CLIENT_LIMIT = 200;

  const authRequired = (document.querySelector('meta[name="gannet-auth"]') || {}).content === "token";
  const $ = (id) => document.getElementById(id);

  // ---- API -------------------------------------------------------------

  class AuthError extends Error {}

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  async function api(path, init) {
    init = init || {};
    const headers = new Headers(init.headers || {});
    headers.set("Accept", "application/json");
    const t = token();
    if (t) headers.set("Authorization", "Bearer " + t);
    const resp = await fetch("api/v1/" + path, Object.assign({}, init, { headers: headers, cache: "no-store" }));
    let body = null;
    try {
      body = await resp.json();
    } catch (e) {
      body = null;
    }
    if (resp.status === 401) throw new AuthError((body && body.error) || "unauthorized");
    if (!resp.ok) throw new Error((body && body.error) || resp.status + " " + resp.statusText);
    return body;
  }

  // clientURL names one client in the query, not the path: a path segment
  // "." or ".." (or its %2E spelling) is removed by the browser's URL parser,
  // and the API refuses paths with such segments.
  function clientURL(id) {
    return "clients?id=" + encodeURIComponent(id);
  }

  // ---- formatting ------------------------------------------------------

  const intFmt = new Intl.NumberFormat("en");
  function fmtInt(n) {
    return intFmt.format(n);
  }
  function fmtRate(r) {
    if (!isFinite(r)) return "–";
    if (r >= 1e6) return (r / 1e6).toFixed(1) + "M";
    if (r >= 1e4) return (r / 1e3).toFixed(1) + "k";
    if (r >= 100) return Math.round(r).toString();
    if (r >= 10) return r.toFixed(1);
    return r.toFixed(r === 0 ? 0 : 2);
  }
  function fmtBytes(b) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (b >= 1024 && i < units.length - 1) {
      b /= 1024;
      i++;
    }
    return (i === 0 ? Math.round(b) : b.toFixed(b >= 100 ? 0 : 1).replace(/\.0$/, "")) + " " + units[i];
  }
  function fmtDuration(s) {
    s = Math.floor(s);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    if (m > 0) return m + "m " + (s % 60) + "s";
    return s + "s";
  }
  function setText(id, text) {
    const el = $(id);
    if (el && el.textContent !== text) el.textContent = text;
  }
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "data") Object.entries(v).forEach(([dk, dv]) => (e.dataset[dk] = dv));
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c == null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  let toastTimer = 0;
  function toast(msg, isErr) {
    const t = $("toast");
    t.textContent = msg;
    t.className = "toast" + (isErr ? " err" : "");
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (t.hidden = true), 3500);
  }

  // ---- state -----------------------------------------------------------

  // samples: {t (ms, server clock), conn, inRate, outRate, bytesIn, bytesOut}
  const samples = [];
  let last = null; // previous stats body
  let tick = 0;
  let pollTimer = 0;
  let running = false;

  function setStatus(live, text) {
    $("status-dot").className = "dot " + (live ? "live" : "down");
    setText("status-text", text);
  }

  function showLogin(message) {
    running = false;
    clearTimeout(pollTimer);
    $("app").hidden = true;
    $("logout").hidden = true;
    $("login").hidden = false;
    setText("login-error", message || "");
    setStatus(false, "signed out");
    $("token").focus();
  }

  function showApp() {
    $("login").hidden = true;
    $("app").hidden = false;
    $("logout").hidden = !authRequired;
    if (!running) {
      running = true;
      tick = 0;
      poll();
    }
  }

  function handleError(err) {
    if (err instanceof AuthError) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin("Sign in again: " + err.message);
      return true;
    }
    return false;
  }

  // ---- polling ---------------------------------------------------------

  async function poll() {
    if (!running) return;
    try {
      const st = await api("stats");
      onStats(st);
      setStatus(true, "live");
      if (tick % CLIENTS_EVERY === 0) await refreshClients();
      if (tick % TOPICS_EVERY === 0) await refreshTopics();
      if (tick % TOPICS_EVERY === 0) await refreshBridges();
      if (clustered && tick % CLIENTS_EVERY === 0) await refreshCluster();
    } catch (err) {
      if (handleError(err)) return;
      setStatus(false, "unreachable: " + err.message);
    }
    tick++;
    if (running) pollTimer = setTimeout(poll, POLL_MS);
  }

  function onStats(st) {
    const t = Date.parse(st.time);
    let inRate = 0, outRate = 0, bIn = 0, bOut = 0, rated = false;
    if (last) {
      const dt = st.uptime_seconds - last.uptime_seconds;
      if (dt > 0 && st.messages_received >= last.messages_received) {
        inRate = (st.messages_received - last.messages_received) / dt;
        outRate = (st.messages_sent - last.messages_sent) / dt;
        bIn = (st.bytes_received - last.bytes_received) / dt;
        bOut = (st.bytes_sent - last.bytes_sent) / dt;
        rated = true;
      } else {
        samples.length = 0; // the broker restarted: counters went back
      }
    }
    last = st;
    samples.push({ t: t, conn: st.connections, rated: rated, inRate: inRate, outRate: outRate, bytesIn: bIn, bytesOut: bOut });
    while (samples.length && samples[0].t < t - WINDOW_MS) samples.shift();

    setText("stat-connections", fmtInt(st.connections));
    setText("stat-max-connections", fmtInt(st.max_connections));
    setText("stat-accepted", fmtInt(st.accepted));
    setText("stat-rate-in", rated ? fmtRate(inRate) : "–");
    setText("stat-rate-out", rated ? fmtRate(outRate) : "–");
    setText("stat-received", fmtInt(st.messages_received));
    setText("stat-sent", fmtInt(st.messages_sent));
    setText("stat-bytes-in", rated ? fmtBytes(bIn) + "/s" : "–");
    setText("stat-bytes-out", rated ? fmtBytes(bOut) + "/s" : "–");
    setText("stat-sessions", fmtInt(st.sessions));
    setText("stat-subscriptions", fmtInt(st.subscriptions));
    setText("stat-retained", fmtInt(st.retained));
    const dropped = st.dropped_queue_full + st.dropped_slow_consumer + st.dropped_too_large;
    setText("stat-dropped", fmtInt(dropped));
    setText("stat-dropped-detail",
      "queue " + fmtInt(st.dropped_queue_full) + " · slow " + fmtInt(st.dropped_slow_consumer) + " · large " + fmtInt(st.dropped_too_large));
    setText("stat-uptime", fmtDuration(st.uptime_seconds));
    drawCharts();
  }

  // ---- charts ----------------------------------------------------------

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // niceStep rounds v up to 1, 2, 2.5 or 5 times a power of ten; with
  // integer set, to at least 1.
  function niceStep(v, integer) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) {
      const step = m * p;
      if (step >= v && !(integer && step !== Math.round(step))) return Math.max(step, integer ? 1 : 0);
    }
    return 10 * p;
  }

  // The time axis fits the history until it holds five minutes: a page
  // open for twenty seconds shows those twenty seconds, not a sliver.
  const MIN_SPAN_MS = 30 * 1000;
  const TIME_STEPS = [5, 10, 15, 30, 60].map((s) => s * 1000);

  function timeLabel(ms) {
    if (ms === 0) return "now";
    return ms % 60000 === 0 ? "-" + ms / 60000 + "m" : "-" + ms / 1000 + "s";
  }

  // byteStep is niceStep in units of 1024: steps of 256 B, 512 KiB, 2 MiB.
  function byteStep(v) {
    const unit = Math.pow(1024, Math.max(0, Math.floor(Math.log(Math.max(v, 1)) / Math.log(1024))));
    return niceStep(v / unit, false) * unit;
  }

  // drawChart draws series over the history. opts.fmt formats the values;
  // opts.integer keeps the value axis on whole numbers, opts.bytes on
  // binary multiples.
  function drawChart(canvas, series, opts) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (w === 0 || h === 0) return;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);

    const padL = 54, padR = 10, padT = 8, padB = 20;
    const pw = w - padL - padR, ph = h - padT - padB;
    const now = samples.length ? samples[samples.length - 1].t : Date.now();
    const span = Math.min(WINDOW_MS, Math.max(MIN_SPAN_MS, samples.length ? now - samples[0].t : 0));
    const t0 = now - span;
    // A rate needs two samples: the first has none.
    const points = (s) => (s.rate ? samples.filter((p) => p.rated) : samples);
    let vmax = 0;
    for (const s of series) for (const p of points(s)) vmax = Math.max(vmax, s.value(p));
    const ystep = opts.bytes ? byteStep(vmax / 4) : niceStep(vmax / 4, opts.integer);
    const ymax = Math.max(ystep, Math.ceil(vmax / ystep) * ystep);
    const x = (t) => padL + ((t - t0) / span) * pw;
    const y = (v) => padT + ph - (v / ymax) * ph;

    // grid and labels
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = cssVar("--muted");
    ctx.strokeStyle = cssVar("--line");
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let v = 0; v <= ymax + ystep / 2; v += ystep) {
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(padL, yy);
      ctx.lineTo(padL + pw, yy);
      ctx.stroke();
      ctx.fillText(opts.fmt(v), padL - 6, yy);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const tstep = TIME_STEPS.find((st) => span / st <= 6) || 60000;
    for (let ago = 0; ago <= span; ago += tstep) {
      const xx = x(now - ago);
      ctx.fillText(timeLabel(ago), Math.min(Math.max(xx, padL + 12), padL + pw - 12), padT + ph + 5);
    }

    for (const s of series) {
      const pts = points(s);
      if (pts.length === 0) continue;
      const color = cssVar(s.color);
      ctx.beginPath();
      pts.forEach((p, i) => {
        const px = x(p.t), py = y(s.value(p));
        if (i === 0) ctx.moveTo(px, py);
        else ctx.lineTo(px, py);
      });
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.lineJoin = "round";
      ctx.stroke();
      if (s.fill) {
        ctx.lineTo(x(pts[pts.length - 1].t), y(0));
        ctx.lineTo(x(pts[0].t), y(0));
        ctx.closePath();
        ctx.globalAlpha = 0.12;
        ctx.fillStyle = color;
        ctx.fill();
        ctx.globalAlpha = 1;
      }
    }
  }

  function drawCharts() {
    drawChart($("chart-messages"), [
      { value: (p) => p.inRate, color: "--in", fill: true, rate: true },
      { value: (p) => p.outRate, color: "--out", rate: true },
    ], { fmt: fmtRate });
    drawChart($("chart-connections"), [{ value: (p) => p.conn, color: "--conn", fill: true }], { fmt: fmtInt, integer: true });
    drawChart($("chart-bytes"), [
      { value: (p) => p.bytesIn, color: "--in", fill: true, rate: true },
      { value: (p) => p.bytesOut, color: "--out", rate: true },
    ], { fmt: fmtBytes, bytes: true });
  }

  // ---- clients ---------------------------------------------------------

  let searchTimer = 0;

  async function refreshClients() {
    const q = $("client-search").value.trim();
    const body = await api("clients?limit=" + CLIENT_LIMIT + (q ? "&q=" + encodeURIComponent(q) : ""));
    renderClients(body.clients, body.total, q);
  }

  function renderClients(clients, total, q) {
    const tbody = $("clients-body");
    const rows = clients.map((c) =>
      el("tr", { data: { client: c.client_id } },
        el("td", { class: "mono" }, el("button", { class: "link", type: "button", title: "Details", onclick: () => showClient(c.client_id) }, c.client_id)),
        el("td", {}, el("span", { class: "pill" + (c.connected ? " on" : "") }, c.connected ? "online" : "offline")),
        el("td", {}, c.username || "–"),
        el("td", { class: "mono" }, c.remote || "–"),
        el("td", { class: "num" }, protocolName(c.protocol_version)),
        el("td", { class: "num" }, fmtInt(c.subscriptions)),
        el("td", { class: "num" }, fmtInt(c.inflight)),
        el("td", { class: "num" }, fmtInt(c.queued)),
        el("td", { class: "num" }, fmtInt(c.dropped)),
        el("td", { class: "actions" },
          c.connected ? el("button", { class: "small ghost", type: "button", data: { action: "disconnect", client: c.client_id }, onclick: (e) => disconnect(e.currentTarget, c.client_id, false) }, "Disconnect") : null,
          " ",
          discardButton(c.client_id))));
    if (rows.length === 0) rows.push(el("tr", { class: "empty" }, el("td", { colspan: "10" }, q ? "No client matches “" + q + "”" : "No clients")));
    tbody.replaceChildren(...rows);
    setText("clients-count", total > clients.length ? "showing " + clients.length + " of " + fmtInt(total) : fmtInt(total) + (total === 1 ? " client" : " clients"));
  }

  function protocolName(v) {
    return { 3: "3.1", 4: "3.1.1", 5: "5.0" }[v] || String(v);
  }

  // Ending a session needs a second click within a few seconds; the
  // pending confirmation outlives the table's refreshes.
  const CONFIRM_MS = 4000;
  const confirming = new Map(); // client id -> time of the first click

  function discardButton(id) {
    const pending = Date.now() - (confirming.get(id) || 0) < CONFIRM_MS;
    return el("button", {
      class: "small danger" + (pending ? " confirm" : ""), type: "button", title: "Disconnect and end the session",
      data: { action: "discard", client: id }, onclick: (e) => disconnect(e.currentTarget, id, true),
    }, pending ? "Confirm?" : "End session");
  }

  // disconnect asks the broker to drop a client, and with discard to end
  // its session too.
  async function disconnect(button, id, discard) {
    if (discard && !(Date.now() - (confirming.get(id) || 0) < CONFIRM_MS)) {
      confirming.set(id, Date.now());
      button.replaceWith(discardButton(id));
      setTimeout(() => {
        confirming.delete(id);
        document.querySelectorAll('button[data-action="discard"].confirm').forEach((b) => {
          if (b.dataset.client === id) b.replaceWith(discardButton(id));
        });
      }, CONFIRM_MS);
      return;
    }
    confirming.delete(id);
    button.disabled = true;
    try {
      await api(clientURL(id) + (discard ? "&discard=true" : ""), { method: "DELETE" });
      toast((discard ? "Ended the session of " : "Disconnected ") + id);
    } catch (err) {
      if (handleError(err)) return;
      toast(err.message, true);
    }
    try {
      await refreshClients();
    } catch (err) {
      handleError(err);
    }
  }

  async function showClient(id) {
    try {
      const body = await api(clientURL(id));
      const c = body.client;
      setText("detail-title", "Client " + c.client_id);
      const info = [
        ["State", c.connected ? "online" : "offline"],
        ["Protocol", protocolName(c.protocol_version)],
        ["Address", c.remote || "–"],
        ["Listener", c.listener || "–"],
        ["User", c.username || "–"],
        ["Keep alive", c.keep_alive_ns ? fmtDuration(c.keep_alive_ns / 1e9) : "–"],
        ["Persistent", c.persistent ? "yes" : "no"],
        ["Disconnected", c.disconnected_at ? new Date(c.disconnected_at).toLocaleString() : "–"],
      ];
      $("detail-info").replaceChildren(...info.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
      const subs = body.subscriptions.map((s) => {
        const opts = [];
        if (s.no_local) opts.push("no local");
        if (s.retain_as_published) opts.push("retain as published");
        if (s.retain_handling) opts.push("retain handling " + s.retain_handling);
        if (s.subscription_id) opts.push("id " + s.subscription_id);
        return el("tr", {}, el("td", { class: "mono" }, s.filter), el("td", { class: "num" }, s.qos), el("td", {}, opts.join(", ") || "–"));
      });
      if (subs.length === 0) subs.push(el("tr", { class: "empty" }, el("td", { colspan: "3" }, "No subscriptions")));
      $("detail-subs").replaceChildren(...subs);
      $("client-detail").hidden = false;
    } catch (err) {
      if (handleError(err)) return;
      toast(err.message, true);
    }
  }

  // ---- topics ----------------------------------------------------------

  async function refreshTopics() {
    const body = await api("topics?limit=8");
    const byRate = body.ranked_by === "message_rate"; // per-topic metrics configured
    const head = byRate
      ? ["Topic filter", "Messages/s in", "Messages/s out", "Dropped"]
      : ["Topic filter", "Subscribers", "Max QoS", "Retained"];
    $("topics-head").replaceChildren(...head.map((h, i) => el("th", i && (byRate || i < 3) ? { class: "num" } : {}, h)));
    const score = (t) => byRate ? t.messages_in_per_second + t.messages_out_per_second : t.subscribers;
    const top = Math.max(body.topics.length ? score(body.topics[0]) : 1, 1e-9);
    const rows = body.topics.map((t) => byRate
      ? el("tr", {},
        el("td", { class: "mono" }, t.filter),
        el("td", { class: "num" }, barFor(score(t), top), fmtRate(t.messages_in_per_second || 0)),
        el("td", { class: "num" }, fmtRate(t.messages_out_per_second || 0)),
        el("td", { class: "num" }, fmtInt(t.dropped || 0)))
      : el("tr", {},
        el("td", { class: "mono" }, t.filter),
        el("td", { class: "num" }, barFor(t.subscribers, top), fmtInt(t.subscribers)),
        el("td", { class: "num" }, t.max_qos),
        el("td", {}, t.retained ? "yes" : "–")));
    if (rows.length === 0) rows.push(el("tr", { class: "empty" }, el("td", { colspan: "4" }, "No subscriptions yet")));
    $("topics-body").replaceChildren(...rows);
    setText("topics-basis", (byRate ? "by message rate" : "by " + body.ranked_by) + (body.total > body.topics.length ? " · top " + body.topics.length + " of " + fmtInt(body.total) : ""));
  }

  function barFor(n, top) {
    const b = el("span", { class: "bar" });
    b.style.width = Math.max(4, Math.round((n / top) * 60)) + "px";
    return b;
  }

  // ---- bridges ---------------------------------------------------------

  async function refreshBridges() {
    const body = await api("bridges");
    const rows = body.bridges.map((b) =>
      el("tr", {},
        el("td", { class: "mono" }, b.name),
        el("td", {}, b.state),
        el("td", { class: "mono" }, b.address || "–"),
        el("td", { class: "num" }, fmtInt(b.queued)),
        el("td", { class: "num" }, fmtInt(b.sent)),
        el("td", { class: "num" }, fmtInt(b.received)),
        el("td", { class: "num" }, fmtInt(b.dropped)),
        el("td", {}, el("button", { class: "small ghost", type: "button", data: { action: "restart", bridge: b.name }, onclick: (e) => restartBridge(e.currentTarget, b.name) }, "Restart"))));
    if (rows.length === 0) rows.push(el("tr", { class: "empty" }, el("td", { colspan: "8" }, "No bridges")));
    $("bridges-body").replaceChildren(...rows);
  }

  // ---- cluster ---------------------------------------------------------

  // A clustered node names itself in the page; a single node has no
  // Cluster panel and is never asked for one.
  let clustered = ((document.querySelector('meta[name="gannet-node"]') || {}).content || "") !== "";

  async function refreshCluster() {
    let st;
    try {
      st = await api("cluster");
    } catch (err) {
      if (err instanceof AuthError) throw err;
      if (/single node/.test(err.message)) {
        clustered = false;
        $("cluster-card").hidden = true;
        return;
      }
      setText("cluster-summary", "unavailable: " + err.message);
      return;
    }
    $("cluster-card").hidden = false;
    setText("cluster-name", st.cluster + " · seen from " + st.node);
    const alive = st.nodes.filter((n) => n.alive).length;
    setText("cluster-summary", alive + " of " + st.nodes.length + " nodes alive · JetStream " +
      (st.jetstream_ready ? "ready" : "not formed") + " · meta leader " + (st.meta_leader || "none"));
    const now = Date.now();
    const nodes = st.nodes.map((n) => {
      const state = n.alive ? (n.draining ? "draining" : "alive") : "dead";
      const hb = n.last_heartbeat ? fmtDuration(Math.max(0, now - Date.parse(n.last_heartbeat)) / 1000) + " ago" : "never";
      return el("tr", { data: { node: n.name, state: state } },
        el("td", { class: "mono" }, n.name + (n.self ? " (this node)" : "")),
        el("td", {}, el("span", { class: "pill" + (n.alive && !n.draining ? " on" : " off") }, state)),
        el("td", { class: "mono" }, n.address || "–"),
        el("td", { class: "num" }, fmtInt(n.clients)),
        el("td", {}, hb));
    });
    if (nodes.length === 0) nodes.push(el("tr", { class: "empty" }, el("td", { colspan: "5" }, "No nodes")));
    $("cluster-nodes-body").replaceChildren(...nodes);
    const streams = st.streams.map((s) =>
      el("tr", { data: { stream: s.name } },
        el("td", { class: "mono" }, s.name),
        el("td", { class: "num" }, fmtInt(s.replicas)),
        el("td", { class: "mono" }, s.leader || "none"),
        el("td", { class: "num" }, fmtInt(s.messages)),
        el("td", { class: "mono" }, s.peers.map((p) =>
          p.name + (p.leader ? " leader" : p.offline ? " offline" : p.current ? " current" : " lagging") + (p.leader ? "" : " (" + p.lag + ")")).join(", "))));
    if (streams.length === 0) streams.push(el("tr", { class: "empty" }, el("td", { colspan: "5" }, (st.errors || []).join("; ") || "No streams")));
    $("cluster-streams-body").replaceChildren(...streams);
  }

  async function restartBridge(btn, name) {
    btn.disabled = true;
    try {
      await api("bridges/" + encodeURIComponent(name) + "/restart", { method: "POST" });
      toast("Bridge " + name + " restarted", false);
      await refreshBridges();
    } catch (err) {
      if (!handleError(err)) toast(err.message, true);
    } finally {
      btn.disabled = false;
    }
  }

  // ---- publish ---------------------------------------------------------

  async function publish(ev) {
    ev.preventDefault();
    const result = $("pub-result");
    const req = {
      topic: $("pub-topic").value,
      payload: $("pub-payload").value,
      qos: Number($("pub-qos").value),
      retain: $("pub-retain").checked,
    };
    $("pub-submit").disabled = true;
    try {
      const body = await api("publish", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(req),
      });
      result.className = "result ok";
      result.textContent = "Published " + fmtInt(body.bytes) + " bytes to " + body.topic + (body.retain ? " (retained)" : "");
    } catch (err) {
      if (!handleError(err)) {
        result.className = "result err";
        result.textContent = err.message;
      }
    } finally {
      $("pub-submit").disabled = false;
    }
  }

  // ---- start -----------------------------------------------------------

  function init() {
    $("login-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const t = $("token").value.trim();
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      try {
        await api("stats");
        $("token").value = "";
        showApp();
      } catch (err) {
        sessionStorage.removeItem(TOKEN_KEY);
        setText("login-error", err instanceof AuthError ? "The token was refused." : err.message);
      }
    });
    $("logout").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin("");
    });
    $("client-search").addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => refreshClients().catch((err) => handleError(err) || toast(err.message, true)), 250);
    });
    $("detail-close").addEventListener("click", () => ($("client-detail").hidden = true));
    $("publish-form").addEventListener("submit", publish);
    window.addEventListener("resize", drawCharts);

    if (authRequired && !token()) showLogin("");
    else showApp();
  }

  init();
})();
