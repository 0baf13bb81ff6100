// Flotilla's dashboard: one plain script, no framework, no build step.
//
// The page's state comes from the websocket at /api/v1/stream: a snapshot
// first, then events, full group statuses and once-a-second stats. Every
// message only updates the state below and marks what changed; one
// requestAnimationFrame callback then patches the DOM in place, keyed by
// group and replica name, so 100 replicas stay smooth. Commands go to the
// REST API; their effects come back through the stream like anyone else's.
//
// The server sends Content-Security-Policy default-src 'self': no inline
// script or style, no eval, and nothing but this origin is ever contacted.
'use strict';

(function () {
  const API = '/api/v1';
  const HISTORY = 60; // sparkline points: about a minute of stats
  const MAX_EVENTS = 200;
  const MAX_REPLICAS = 50;
  const BACKOFF_MIN = 500;
  const BACKOFF_MAX = 5000;
  // Stats arrive every second; this long without any message means the
  // connection is dead even if the socket has not noticed.
  const SILENCE_MS = 15000;
  const FALLBACK_POLICIES = ['round-robin', 'least-connections', 'p2c', 'sticky', 'none'];
  const HEALTH_ICON = { ready: '✓', starting: '◐', unhealthy: '!', paused: '‖', dead: '✕' };
  const STATUS_ICON = { converged: '✓', scaling: '↕', starting: '◐', 'crash-loop': '↻', deleting: '✕', error: '!' };

  // ---- state -------------------------------------------------------------

  const state = {
    groups: new Map(), // name -> GroupStatus
    services: [],
    policies: FALLBACK_POLICIES,
    events: [], // newest first
    lastSeq: 0,
    loads: new Map(), // id -> load Report
    myRun: '', // the run this page started, shown first
    stats: new Map(), // replica name -> latest stats
    hist: new Map(), // replica name -> {p50: [], p99: []}
  };

  // What the next frame must redraw.
  const dirty = {
    groups: new Set(),
    order: false,
    stats: false,
    eventsAll: false,
    newEvents: [],
    loads: false,
    choices: false,
  };

  // Diagnostics for people and tests: how long applying messages and
  // drawing frames took, in ms of script time.
  const diag = {
    messages: 0,
    snapshots: 0,
    statsApplied: 0,
    frames: 0,
    applyMs: 0, // script time applying messages since the last frame
    lastFrame: null, // {applyMs, renderMs, stats, tiles}
    frameLog: [], // the last 50 frames
  };
  window.flotilla = Object.freeze({ diag });

  // ---- small DOM helpers ---------------------------------------------------

  const $ = (sel, root) => (root || document).querySelector(sel);

  // Writes only what changed: most of a frame's values are the same as last
  // frame's, and skipping them keeps style and layout work small.
  function setText(node, value) {
    const v = String(value);
    if (node._v !== v) {
      node._v = v;
      node.textContent = v;
    }
  }
  function setAttr(node, name, value) {
    const key = '_a_' + name;
    if (value == null || value === false) {
      if (node[key] !== null) {
        node[key] = null;
        node.removeAttribute(name);
      }
      return;
    }
    const v = value === true ? '' : String(value);
    if (node[key] !== v) {
      node[key] = v;
      node.setAttribute(name, v);
    }
  }
  function setHidden(node, hidden) {
    if (node.hidden !== hidden) node.hidden = hidden;
  }
  function setWidth(node, fraction) {
    const v = Math.max(0, Math.min(1, fraction || 0));
    const s = (v * 100).toFixed(1) + '%';
    if (node._w !== s) {
      node._w = s;
      node.style.width = s; // CSSOM, which the style-src policy allows
    }
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function fromTemplate(id) {
    return document.getElementById(id).content.firstElementChild.cloneNode(true);
  }
  let uidCount = 0;
  const uid = (p) => p + '-' + (++uidCount);

  // Orders replica names by their number: web-2 before web-10.
  const collator = new Intl.Collator(undefined, { numeric: true });

  function fmtPct(f) {
    if (f == null || !isFinite(f)) return '–';
    const p = f * 100;
    return (p >= 10 || p === 0 ? p.toFixed(0) : p.toFixed(1)) + '%';
  }
  function fmtMs(ms) {
    if (ms == null || !isFinite(ms)) return '–';
    if (ms >= 1000) return (ms / 1000).toFixed(2) + ' s';
    if (ms >= 100) return ms.toFixed(0) + ' ms';
    if (ms >= 10) return ms.toFixed(1) + ' ms';
    return ms.toFixed(2) + ' ms';
  }
  function fmtNum(n) {
    if (n == null || !isFinite(n)) return '–';
    return Math.round(n).toLocaleString();
  }
  function fmtRate(n) {
    if (n == null || !isFinite(n)) return '–';
    return n >= 10 ? n.toFixed(0) : n.toFixed(1);
  }
  function fmtMiB(bytes) {
    if (bytes == null || !isFinite(bytes)) return '–';
    const m = bytes / 1048576;
    return (m >= 100 ? m.toFixed(0) : m.toFixed(1)) + ' MiB';
  }
  function fmtTime(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return '';
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  }

  // ---- notices -------------------------------------------------------------

  const notice = $('#notice');
  const noticeText = $('.notice-text', notice);
  let noticeTimer = 0;
  function notify(message, kind) {
    clearTimeout(noticeTimer);
    notice.dataset.kind = kind || 'info';
    noticeText.textContent = message;
    notice.hidden = false;
    noticeTimer = setTimeout(() => { notice.hidden = true; }, kind === 'error' ? 12000 : 4000);
  }
  $('.notice-close', notice).addEventListener('click', () => {
    clearTimeout(noticeTimer);
    notice.hidden = true;
  });

  // ---- REST ------------------------------------------------------------------

  // api sends one request and returns its decoded body; a 4xx or 5xx, or no
  // answer at all, throws an Error whose message is fit to show.
  async function api(method, path, body) {
    const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' };
    if (method !== 'GET') {
      init.headers['Content-Type'] = 'application/json';
      if (body !== undefined) init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(API + path, init);
    } catch (err) {
      throw new Error(`${method} ${API}${path}: the controller did not answer`);
    }
    let data = null;
    const text = await res.text();
    if (text) {
      try { data = JSON.parse(text); } catch (err) { data = null; }
    }
    if (!res.ok) {
      const why = data && data.error ? data.error : (text.trim() || res.statusText);
      throw new Error(`${why} (${res.status})`);
    }
    return data;
  }

  // act runs a command and tells the user how it went.
  async function act(label, method, path, body) {
    try {
      const data = await api(method, path, body);
      notify(label, 'ok');
      return data;
    } catch (err) {
      notify(`${label} failed: ${err.message}`, 'error');
      return undefined;
    }
  }

  const enc = encodeURIComponent;

  // groupSpec is the full spec of a group as it stands, to send back with
  // one thing changed.
  function groupSpec(g) {
    const spec = { service: g.service, replicas: g.desired };
    if (g.resources) spec.resources = g.resources;
    spec.balancer = Object.assign({}, g.balancer || { policy: 'round-robin' });
    return spec;
  }

  function scale(name, n) {
    if (!Number.isInteger(n) || n < 0 || n > MAX_REPLICAS) {
      notify(`Replicas must be a whole number from 0 to ${MAX_REPLICAS}.`, 'error');
      return;
    }
    act(`Scaling ${name} to ${n}`, 'POST', `/groups/${enc(name)}/scale`, { replicas: n });
  }

  // ---- websocket ---------------------------------------------------------------

  const conn = $('#conn');
  const connText = $('.conn-text', conn);
  let socket = null;
  let backoff = BACKOFF_MIN;
  let retryTimer = 0;
  let silenceTimer = 0;
  let everConnected = false;

  function setConn(s, text) {
    conn.dataset.state = s;
    connText.textContent = text;
    document.body.classList.toggle('stale', s !== 'connected' && everConnected);
  }

  function connect() {
    retryTimer = 0;
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + API + '/stream';
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      retry('cannot open the stream');
      return;
    }
    socket = ws;
    ws.addEventListener('message', (e) => {
      if (socket !== ws) return;
      armSilence(ws);
      const t0 = performance.now();
      let msg;
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      handle(msg);
      diag.applyMs += performance.now() - t0;
      diag.messages++;
    });
    ws.addEventListener('close', (e) => {
      if (socket !== ws) return;
      socket = null;
      clearTimeout(silenceTimer);
      retry(e.code === 4000 ? 'fell behind' : 'connection lost');
    });
    // An error is always followed by close, which retries.
    armSilence(ws);
  }

  function armSilence(ws) {
    clearTimeout(silenceTimer);
    silenceTimer = setTimeout(() => {
      if (socket === ws) ws.close(); // close fires, and retries
    }, SILENCE_MS);
  }

  function retry(why) {
    if (retryTimer) return;
    const delay = Math.round(backoff * (0.8 + Math.random() * 0.4));
    backoff = Math.min(backoff * 2, BACKOFF_MAX);
    setConn('reconnecting', everConnected ? `Reconnecting… (${why})` : 'Connecting…');
    retryTimer = setTimeout(connect, delay);
  }

  // ---- messages ------------------------------------------------------------------

  function handle(msg) {
    switch (msg.type) {
      case 'snapshot': applySnapshot(msg); break;
      case 'event': addEvent(msg.event); break;
      case 'group': putGroup(msg.group); break;
      case 'group-removed': removeGroup(msg.name); break;
      case 'stats': applyStats(msg); break;
      default: break; // a newer server may say more; ignore what we do not know
    }
    schedule();
  }

  function applySnapshot(m) {
    diag.snapshots++;
    for (const name of state.groups.keys()) dirty.groups.add(name);
    state.groups.clear();
    for (const g of m.groups || []) {
      state.groups.set(g.name, g);
      dirty.groups.add(g.name);
    }
    dirty.order = true;
    state.services = m.services || [];
    state.policies = (m.policies && m.policies.length) ? m.policies : FALLBACK_POLICIES;
    dirty.choices = true;
    // Events arrive oldest first; the log shows newest first.
    state.events = (m.events || []).slice(-MAX_EVENTS).reverse();
    state.lastSeq = m.seq || 0;
    dirty.eventsAll = true;
    dirty.newEvents = [];
    state.loads.clear();
    for (const r of m.loads || []) state.loads.set(r.id, r);
    dirty.loads = true;
    // Keep latency history across a reconnect for replicas that still exist.
    const alive = new Set();
    for (const g of state.groups.values()) for (const r of g.replicas || []) alive.add(r.name);
    for (const name of state.hist.keys()) if (!alive.has(name)) state.hist.delete(name);
    dirty.stats = true;
    everConnected = true;
    backoff = BACKOFF_MIN;
    setConn('connected', 'Connected');
  }

  function addEvent(e) {
    if (!e || (e.seq && e.seq <= state.lastSeq)) return;
    if (e.seq) state.lastSeq = e.seq;
    state.events.unshift(e);
    if (state.events.length > MAX_EVENTS) state.events.length = MAX_EVENTS;
    // While the tab is hidden no frame is drawn; past a screenful of news,
    // redrawing the whole log is cheaper than keeping every step.
    if (dirty.newEvents.length >= MAX_EVENTS) {
      dirty.eventsAll = true;
      dirty.newEvents = [];
    } else if (!dirty.eventsAll) {
      dirty.newEvents.push(e);
    }
    if (e.kind && e.kind.startsWith('load.')) refreshLoads();
  }

  function putGroup(g) {
    if (!g || !g.name) return;
    if (!state.groups.has(g.name)) {
      dirty.order = true;
      dirty.choices = true;
    }
    state.groups.set(g.name, g);
    dirty.groups.add(g.name);
  }

  function removeGroup(name) {
    if (state.groups.delete(name)) {
      dirty.groups.add(name);
      dirty.order = true;
      dirty.choices = true;
    }
  }

  function applyStats(m) {
    diag.statsApplied++;
    const reps = m.replicas || {};
    state.stats.clear();
    for (const name in reps) {
      const s = reps[name];
      state.stats.set(name, s);
      let h = state.hist.get(name);
      if (!h) {
        h = { p50: [], p99: [] };
        state.hist.set(name, h);
      }
      h.p50.push(+s.p50Ms || 0);
      h.p99.push(+s.p99Ms || 0);
      if (h.p50.length > HISTORY) {
        h.p50.shift();
        h.p99.shift();
      }
    }
    for (const r of m.loads || []) state.loads.set(r.id, r);
    if (m.loads) dirty.loads = true;
    dirty.stats = true;
  }

  // A load run that ended after the last stats message would otherwise stay
  // "running" on screen; ask once for the final reports.
  let loadsTimer = 0;
  function refreshLoads() {
    clearTimeout(loadsTimer);
    loadsTimer = setTimeout(async () => {
      try {
        const data = await api('GET', '/load');
        for (const r of (data && data.runs) || []) state.loads.set(r.id, r);
        dirty.loads = true;
        schedule();
      } catch (err) {
        // The stream will bring the next reports; nothing to tell the user.
      }
    }, 300);
  }

  // ---- rendering -------------------------------------------------------------------

  let framePending = false;
  function schedule() {
    if (framePending) return;
    framePending = true;
    requestAnimationFrame(frame);
  }

  function frame() {
    framePending = false;
    const t0 = performance.now();
    const hadStats = dirty.stats;
    if (dirty.groups.size || dirty.order) renderGroups();
    if (dirty.stats) renderAllStats();
    if (dirty.eventsAll || dirty.newEvents.length) renderEvents();
    if (dirty.loads) renderLoad();
    if (dirty.choices) renderChoices();
    renderSummary();
    const renderMs = performance.now() - t0;
    diag.frames++;
    diag.lastFrame = { applyMs: diag.applyMs, renderMs, stats: hadStats, tiles: tileCount };
    diag.frameLog.push(diag.lastFrame);
    if (diag.frameLog.length > 50) diag.frameLog.shift();
    diag.applyMs = 0;
  }

  const groupsEl = $('#groups');
  const emptyEl = $('#empty');
  const cards = new Map(); // group name -> card view
  let tileCount = 0;

  function renderGroups() {
    for (const name of dirty.groups) {
      const g = state.groups.get(name);
      let card = cards.get(name);
      if (!g) {
        if (card) {
          for (const t of card.tiles.keys()) state.hist.delete(t);
          tileCount -= card.tiles.size;
          card.el.remove();
          cards.delete(name);
        }
        continue;
      }
      if (!card) {
        card = makeCard(name);
        cards.set(name, card);
        dirty.order = true;
      }
      patchCard(card, g);
    }
    dirty.groups.clear();
    if (dirty.order) {
      const names = [...cards.keys()].sort(collator.compare);
      reorder(groupsEl, names.map((n) => cards.get(n).el));
      dirty.order = false;
    }
    setHidden(emptyEl, cards.size > 0);
  }

  // reorder makes parent's children exactly nodes, in order, moving only
  // the ones out of place (moving a node that holds focus would lose it).
  function reorder(parent, nodes) {
    let cur = parent.firstElementChild;
    for (const n of nodes) {
      if (n === cur) {
        cur = cur.nextElementSibling;
      } else {
        parent.insertBefore(n, cur);
      }
    }
    while (cur) {
      const next = cur.nextElementSibling;
      cur.remove();
      cur = next;
    }
  }

  function makeCard(name) {
    const root = fromTemplate('tpl-card');
    const c = {
      name,
      el: root,
      title: $('.card-name', root),
      service: $('.service-tag', root),
      statusPill: $('.status-pill', root),
      statusIcon: $('.status-icon', root),
      statusText: $('.status-text', root),
      ready: $('.ready-count', root),
      readyFill: $('.readybar-fill', root),
      message: $('.card-message', root),
      policy: $('.policy', root),
      endpoint: $('.endpoint', root),
      scaleInput: $('.scale-input', root),
      tilesEl: $('.tiles', root),
      tiles: new Map(),
      policiesKey: '',
    };
    root.dataset.group = name;
    const titleId = uid('group');
    c.title.id = titleId;
    c.title.textContent = name;
    root.setAttribute('aria-labelledby', titleId);
    const policyId = uid('policy');
    c.policy.id = policyId;
    $('.policy-label', root).htmlFor = policyId;
    c.policy.setAttribute('aria-label', `Balancer policy of ${name}`);
    const scaleId = uid('scale');
    c.scaleInput.id = scaleId;
    $('.scale-label', root).htmlFor = scaleId;
    c.scaleInput.setAttribute('aria-label', `Replicas of ${name}`);
    c.scaleInput.max = String(MAX_REPLICAS);
    $('.stepper', root).setAttribute('aria-label', `Scale ${name}`);
    $('[data-action="scale-down"]', root).setAttribute('aria-label', `Scale ${name} down by one`);
    $('[data-action="scale-up"]', root).setAttribute('aria-label', `Scale ${name} up by one`);
    $('[data-action="scale-apply"]', root).setAttribute('aria-label', `Apply replica count of ${name}`);
    c.deleteBtn = $('[data-action="delete"]', root);
    c.deleteBtn.setAttribute('aria-label', `Delete group ${name}`);
    c.tilesEl.setAttribute('aria-label', `Replicas of ${name}`);
    return c;
  }

  function patchCard(c, g) {
    const root = c.el;
    setAttr(root, 'data-status', g.status || '');
    setText(c.service, g.service || '');
    setText(c.statusIcon, STATUS_ICON[g.status] || '•');
    setText(c.statusText, g.status || 'unknown');
    setText(c.ready, `${g.ready ?? 0} / ${g.desired ?? 0} ready`);
    setWidth(c.readyFill, g.desired ? (g.ready || 0) / g.desired : (g.ready ? 1 : 0));
    setText(c.message, g.message || '');
    setHidden(c.message, !g.message);

    const policies = state.policies.slice();
    const current = (g.balancer && g.balancer.policy) || 'none';
    if (!policies.includes(current)) policies.push(current);
    const key = policies.join('|');
    if (c.policiesKey !== key) {
      c.policy.replaceChildren(...policies.map((p) => {
        const o = el('option', null, p === 'none' ? 'none (no balancer)' : p);
        o.value = p;
        return o;
      }));
      c.policiesKey = key;
      c.policy._v = undefined;
    }
    // Leave the select alone while a change is on its way.
    if (!c.policyPending && c.policy._v !== current) {
      c.policy.value = current;
      c.policy._v = current;
    }
    setText(c.endpoint, g.endpoint || (current === 'none' ? 'none: clients pick a replica' : '–'));
    setAttr(c.endpoint, 'data-empty', !g.endpoint);

    // The field shows the desired count, except while it has focus or holds
    // a number typed but not yet applied.
    if (!c.scaleInput.dataset.edited && document.activeElement !== c.scaleInput) {
      const v = String(g.desired ?? 0);
      if (c.scaleInput.value !== v) c.scaleInput.value = v;
    }

    const reps = (g.replicas || []).slice().sort((a, b) => collator.compare(a.name, b.name));
    const seen = new Set();
    const order = [];
    // Stats are drawn later this frame anyway when they are dirty.
    const top = dirty.stats ? 0 : groupScale(g);
    for (const r of reps) {
      seen.add(r.name);
      let t = c.tiles.get(r.name);
      if (!t) {
        t = makeTile(r.name);
        c.tiles.set(r.name, t);
        tileCount++;
      }
      patchTile(t, r);
      if (top) patchTileStats(t, top);
      order.push(t.el);
    }
    for (const [name, t] of c.tiles) {
      if (!seen.has(name)) {
        t.el.remove();
        state.hist.delete(name);
        c.tiles.delete(name);
        tileCount--;
      }
    }
    reorder(c.tilesEl, order);
  }

  function makeTile(name) {
    const root = fromTemplate('tpl-tile');
    root.dataset.replica = name;
    const t = {
      name,
      el: root,
      healthText: $('.health-text', root),
      healthIcon: $('.health-icon', root),
      sub: $('.tile-sub', root),
      share: $('.share', root),
      shareFill: $('.share-fill', root),
      shareText: $('.share-text', root),
      spark: $('.spark', root),
      p99Line: $('.spark-p99', root),
      p50Line: $('.spark-p50', root),
      cpu: $('.m-cpu', root),
      mem: $('.m-mem', root),
      p99: $('.m-p99', root),
      restarts: $('.m-restarts', root),
      kill: $('[data-action="kill"]', root),
      pause: $('[data-action="pause"]', root),
      unpause: $('[data-action="unpause"]', root),
      status: null,
      hasBalancer: false,
    };
    $('.tile-name', root).textContent = name;
    t.kill.setAttribute('aria-label', `Kill ${name}`);
    t.pause.setAttribute('aria-label', `Pause ${name}`);
    t.unpause.setAttribute('aria-label', `Unpause ${name}`);
    return t;
  }

  function patchTile(t, r) {
    t.status = r;
    t.hasBalancer = !!r.traffic;
    const health = r.health || 'unknown';
    const root = t.el;
    setAttr(root, 'data-health', health);
    setAttr(root, 'data-state', r.state || '');
    setAttr(root, 'data-traffic', r.traffic ? r.traffic.state : null);
    setText(t.healthIcon, HEALTH_ICON[health] || '?');
    setText(t.healthText, health);

    const parts = [r.state || 'unknown'];
    if (r.state === 'exited' || r.state === 'dead' || r.exitCode) parts.push(`exit ${r.exitCode || 0}`);
    if (r.traffic && r.traffic.state !== 'ready') parts.push(r.traffic.state === 'ejected' ? 'ejected from balancer' : 'out of rotation');
    setText(t.sub, parts.join(' · '));
    setAttr(t.sub, 'title', r.upstream ? `published ${r.address}, balancer dials ${r.upstream}` : (r.address || null));
    setText(t.restarts, String(r.restarts || 0));

    const live = r.state === 'running' || r.state === 'paused';
    t.kill.disabled = !live;
    setHidden(t.pause, r.state === 'paused');
    setHidden(t.unpause, r.state !== 'paused');
    t.pause.disabled = r.state !== 'running';
  }

  // groupScale is the top of the y axis of a group's sparklines, shared so
  // that a slow replica stands out from its siblings.
  function groupScale(g) {
    let max = 1;
    for (const r of g.replicas || []) {
      const h = state.hist.get(r.name);
      if (!h) continue;
      for (const v of h.p99) if (v > max) max = v;
    }
    return max;
  }

  function renderAllStats() {
    for (const [name, c] of cards) {
      const g = state.groups.get(name);
      if (!g) continue;
      const top = groupScale(g);
      for (const t of c.tiles.values()) patchTileStats(t, top);
    }
    dirty.stats = false;
  }

  function patchTileStats(t, top) {
    const s = state.stats.get(t.name);
    const r = t.status || {};
    const tr = r.traffic;
    const share = s && s.share != null ? s.share : (tr ? tr.share : null);
    setAttr(t.share, 'data-none', !t.hasBalancer);
    if (t.hasBalancer) {
      setWidth(t.shareFill, share || 0);
      const rps = s && s.rps != null ? ` · ${fmtRate(s.rps)} req/s` : '';
      setText(t.shareText, `${fmtPct(share || 0)}${rps}`);
      setAttr(t.share, 'title', `share of the balancer's requests${rps ? ', and requests per second' : ''}`);
    } else {
      setWidth(t.shareFill, 0);
      setText(t.shareText, 'no balancer');
    }
    setText(t.cpu, s && s.cpuPercent != null ? s.cpuPercent.toFixed(1) + '%' : '–');
    setText(t.mem, s && s.memBytes != null ? fmtMiB(s.memBytes) : '–');
    setAttr(t.mem, 'title', s && s.memLimitBytes ? `limit ${fmtMiB(s.memLimitBytes)}` : null);
    const p99 = s && s.p99Ms != null ? s.p99Ms : (tr ? tr.p99Ms : null);
    const p50 = s && s.p50Ms != null ? s.p50Ms : (tr ? tr.p50Ms : null);
    setText(t.p99, p99 != null ? fmtMs(p99) : '–');

    const h = state.hist.get(t.name);
    if (h && h.p99.length) {
      setAttr(t.p99Line, 'points', points(h.p99, top));
      setAttr(t.p50Line, 'points', points(h.p50, top));
      setAttr(t.spark, 'aria-label', `latency of ${t.name}: p99 ${fmtMs(p99)}, p50 ${fmtMs(p50)}`);
    } else {
      setAttr(t.p99Line, 'points', '');
      setAttr(t.p50Line, 'points', '');
    }
  }

  // points draws the newest value at the right edge of a 59×20 box.
  function points(values, top) {
    const n = values.length;
    let out = '';
    for (let i = 0; i < n; i++) {
      const x = HISTORY - n + i;
      const y = 19.5 - (Math.min(values[i], top) / top) * 18.5;
      out += (i ? ' ' : '') + x + ',' + y.toFixed(1);
    }
    // One sample is a point, which a polyline does not draw: make it a dash.
    if (n === 1) out = (HISTORY - 4) + ',' + out.split(',')[1] + ' ' + out;
    return out;
  }

  // ---- events ------------------------------------------------------------------

  const eventsEl = $('#events');

  function eventTone(kind) {
    switch (kind) {
      case 'replica.died': case 'replica.unhealthy': case 'group.crash-loop': case 'balancer.ejected':
        return 'bad';
      case 'replica.ready': case 'replica.started': case 'replica.unpaused': case 'balancer.restored':
        return 'good';
      case 'replica.paused': case 'replica.removed': case 'group.deleted':
        return 'warn';
      case 'load.started': case 'load.finished':
        return 'load';
      default:
        return 'info';
    }
  }

  function eventItem(e) {
    const li = el('li', 'event');
    li.dataset.kind = e.kind || '';
    li.dataset.tone = eventTone(e.kind);
    const time = el('time', 'event-time', fmtTime(e.time));
    if (e.time) time.dateTime = e.time;
    li.append(time, el('span', 'event-kind', e.kind || ''), el('span', 'event-msg', e.message || ''));
    return li;
  }

  function renderEvents() {
    if (dirty.eventsAll) {
      // A snapshot's history is not news: keep screen readers from reading
      // out all of it.
      const frag = document.createDocumentFragment();
      for (const e of state.events) frag.append(eventItem(e));
      eventsEl.setAttribute('aria-live', 'off');
      eventsEl.replaceChildren(frag);
      setTimeout(() => eventsEl.setAttribute('aria-live', 'polite'), 1000);
    } else {
      // newEvents is oldest first; each goes on top.
      for (const e of dirty.newEvents) eventsEl.prepend(eventItem(e));
      while (eventsEl.childElementCount > MAX_EVENTS) eventsEl.lastElementChild.remove();
    }
    dirty.eventsAll = false;
    dirty.newEvents = [];
  }

  // ---- summary, select choices ------------------------------------------------------

  const summaryEl = $('#summary');
  function renderSummary() {
    let desired = 0;
    let ready = 0;
    for (const g of state.groups.values()) {
      desired += g.desired || 0;
      ready += g.ready || 0;
    }
    const n = state.groups.size;
    setText(summaryEl, n ? `${n} group${n === 1 ? '' : 's'} · ${ready} of ${desired} replicas ready` : '');
  }

  function fillSelect(select, items, keep) {
    const prev = select.value;
    const key = items.map((i) => i.value + '\u0000' + i.label).join('\u0001');
    if (select._key !== key) {
      select.replaceChildren(...items.map((i) => {
        const o = el('option', null, i.label);
        o.value = i.value;
        return o;
      }));
      select._key = key;
    }
    if (keep && items.some((i) => i.value === prev)) select.value = prev;
  }

  const ngService = $('#ng-service');
  const ngServiceDesc = $('#ng-service-desc');
  const ngPolicy = $('#ng-policy');
  const lgGroup = $('#lg-group');

  function renderChoices() {
    const svcs = state.services.map((s) => ({ value: s.name, label: s.name }));
    fillSelect(ngService, svcs, true);
    describeService();
    fillSelect(ngPolicy, state.policies.map((p) => ({ value: p, label: p === 'none' ? 'none (no balancer)' : p })), true);
    if (!ngPolicy._touched && state.policies.includes('round-robin')) ngPolicy.value = 'round-robin';
    const names = [...state.groups.keys()].sort(collator.compare);
    fillSelect(lgGroup, names.map((n) => ({ value: n, label: n })), true);
    lgGroup.disabled = names.length === 0;
    dirty.choices = false;
  }

  function describeService() {
    const s = state.services.find((x) => x.name === ngService.value);
    ngServiceDesc.textContent = s && s.description ? s.description : '';
  }

  // ---- load generator ------------------------------------------------------------------

  const loadReport = $('#load-report');
  const lgStop = $('#lg-stop');
  let shownRun = null;

  // The run to show: this page's own while it runs, else the newest running
  // one, else the newest of all.
  function pickRun() {
    const runs = [...state.loads.values()];
    const started = (r) => Date.parse(r.started) || 0;
    runs.sort((a, b) => started(b) - started(a));
    const mine = state.loads.get(state.myRun);
    if (mine && mine.state === 'running') return mine;
    return runs.find((r) => r.state === 'running') || mine || runs[0] || null;
  }

  function groupOfTarget(target) {
    if (!target) return '';
    for (const g of state.groups.values()) if (g.endpoint === target) return g.name;
    return '';
  }

  function renderLoad() {
    dirty.loads = false;
    const r = pickRun();
    shownRun = r;
    lgStop.disabled = !(r && r.state === 'running');
    lgStop.setAttribute('aria-label', r && r.state === 'running' ? `Stop load run ${r.id}` : 'Stop load run');
    if (!r) {
      loadReport.replaceChildren(el('p', 'muted', 'No load run yet.'));
      return;
    }
    const spec = r.spec || {};
    const target = spec.target || (spec.targets || []).join(', ');
    const group = groupOfTarget(spec.target);
    const head = el('p', 'load-head');
    const badge = el('span', 'pill load-state', r.state);
    badge.dataset.state = r.state;
    head.append(badge, ` ${group ? 'to ' + group : ''} ${target ? '(' + target + ')' : ''}`);

    const lat = r.latencyMs || {};
    const dl = el('dl', 'load-figures');
    const fig = (label, value, cls) => {
      const d = el('div', cls);
      d.append(el('dt', null, label), el('dd', null, value));
      dl.append(d);
    };
    fig('sent', fmtNum(r.sent));
    fig('ok', fmtNum(r.succeeded), 'ok');
    fig('failed', fmtNum(r.failed), r.failed ? 'bad' : '');
    fig('rate', `${fmtRate(r.ratePerSec)}/s`);
    fig('p50', fmtMs(lat.p50));
    fig('p99', fmtMs(lat.p99));

    const parts = [head, dl];
    const errs = Object.entries(r.errors || {}).filter(([, n]) => n > 0);
    if (errs.length) {
      parts.push(el('p', 'load-errors', 'errors: ' + errs.map(([k, n]) => `${k} ${fmtNum(n)}`).join(', ')));
    }
    const by = Object.entries(r.byReplica || {}).sort((a, b) => collator.compare(a[0], b[0]));
    if (by.length) {
      const total = by.reduce((s, [, n]) => s + n, 0) || 1;
      const list = el('ul', 'spread');
      list.setAttribute('aria-label', 'Responses by replica');
      for (const [name, n] of by) {
        const li = el('li');
        const bar = el('span', 'spread-bar');
        bar.setAttribute('aria-hidden', 'true');
        const fill = el('span', 'spread-fill');
        setWidth(fill, n / total);
        bar.append(fill);
        li.append(el('span', 'spread-name', name), bar, el('span', 'spread-n', `${fmtNum(n)} · ${fmtPct(n / total)}`));
        list.append(li);
      }
      parts.push(el('h3', 'spread-heading', 'Spread by replica'), list);
    }
    loadReport.replaceChildren(...parts);
  }

  // ---- user input --------------------------------------------------------------------

  // One listener per kind of input on the groups container, so cards and
  // tiles come and go without listeners to add or remove.
  groupsEl.addEventListener('click', (e) => {
    const btn = e.target.closest('button[data-action]');
    if (!btn || !groupsEl.contains(btn)) return;
    const cardEl = btn.closest('[data-group]');
    if (!cardEl) return;
    const name = cardEl.dataset.group;
    const card = cards.get(name);
    const g = state.groups.get(name);
    const action = btn.dataset.action;
    const tile = btn.closest('[data-replica]');
    if (tile) {
      const replica = tile.dataset.replica;
      const verb = { kill: 'Killing', pause: 'Pausing', unpause: 'Unpausing' }[action];
      if (verb) act(`${verb} ${replica}`, 'POST', `/groups/${enc(name)}/replicas/${enc(replica)}/${action}`);
      return;
    }
    if (!card || !g) return;
    const input = card.scaleInput;
    const typed = parseInt(input.value, 10);
    const base = Number.isInteger(typed) ? typed : (g.desired || 0);
    switch (action) {
      case 'scale-up':
      case 'scale-down': {
        const n = Math.max(0, Math.min(MAX_REPLICAS, base + (action === 'scale-up' ? 1 : -1)));
        input.value = String(n);
        delete input.dataset.edited;
        scale(name, n);
        break;
      }
      case 'scale-apply':
        delete input.dataset.edited;
        scale(name, typed);
        break;
      case 'delete':
        confirmDelete(card, btn);
        break;
      default:
        break;
    }
  });

  // Deleting takes a second click within a few seconds, so a stray click
  // or keypress cannot remove a group.
  function confirmDelete(card, btn) {
    const name = card.name;
    if (btn.dataset.armed) {
      clearTimeout(card.deleteTimer);
      disarm(btn, name);
      act(`Deleting ${name}`, 'DELETE', `/groups/${enc(name)}`);
      return;
    }
    btn.dataset.armed = 'true';
    btn.textContent = 'Confirm delete';
    btn.setAttribute('aria-label', `Confirm: delete group ${name} and all its replicas`);
    notify(`Click "Confirm delete" to delete ${name} and its replicas.`, 'info');
    card.deleteTimer = setTimeout(() => disarm(btn, name), 5000);
  }
  function disarm(btn, name) {
    delete btn.dataset.armed;
    btn.textContent = 'Delete';
    btn.setAttribute('aria-label', `Delete group ${name}`);
  }

  groupsEl.addEventListener('change', async (e) => {
    const sel = e.target.closest('select[data-action="policy"]');
    if (!sel) return;
    const name = sel.closest('[data-group]').dataset.group;
    const g = state.groups.get(name);
    const card = cards.get(name);
    if (!g || !card) return;
    const spec = groupSpec(g);
    spec.balancer.policy = sel.value;
    card.policyPending = true;
    await act(`Switching ${name} to ${sel.value}`, 'PUT', `/groups/${enc(name)}`, spec);
    card.policyPending = false;
    // Show what the controller says now, whether the change took or not.
    card.policy._v = undefined;
    dirty.groups.add(name);
    schedule();
  });

  groupsEl.addEventListener('input', (e) => {
    if (e.target.matches('[data-action="scale-input"]')) e.target.dataset.edited = 'true';
  });

  groupsEl.addEventListener('keydown', (e) => {
    const input = e.target;
    if (!input.matches || !input.matches('[data-action="scale-input"]')) return;
    const name = input.closest('[data-group]').dataset.group;
    if (e.key === 'Enter') {
      e.preventDefault();
      delete input.dataset.edited;
      scale(name, parseInt(input.value, 10));
    } else if (e.key === 'Escape') {
      const g = state.groups.get(name);
      delete input.dataset.edited;
      if (g) input.value = String(g.desired ?? 0);
    }
  });

  groupsEl.addEventListener('focusout', (e) => {
    const input = e.target;
    if (!input.matches || !input.matches('[data-action="scale-input"]') || input.dataset.edited) return;
    // Catch up with changes that arrived while it had focus.
    const name = input.closest('[data-group]').dataset.group;
    dirty.groups.add(name);
    schedule();
  });

  ngService.addEventListener('change', describeService);
  ngPolicy.addEventListener('change', () => { ngPolicy._touched = true; });

  $('#new-group').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    const name = $('#ng-name').value.trim();
    const replicas = parseInt($('#ng-replicas').value, 10);
    // The controller validates names and says what is wrong; this only
    // catches the empty field.
    if (!name) {
      notify('Give the group a name, like web or cart-2.', 'error');
      $('#ng-name').focus();
      return;
    }
    if (!ngService.value) {
      notify('Pick a service: the list comes from the controller once connected.', 'error');
      return;
    }
    if (!Number.isInteger(replicas) || replicas < 0 || replicas > MAX_REPLICAS) {
      notify(`Replicas must be a whole number from 0 to ${MAX_REPLICAS}.`, 'error');
      $('#ng-replicas').focus();
      return;
    }
    const spec = { service: ngService.value, replicas, balancer: { policy: ngPolicy.value || 'round-robin' } };
    const verb = state.groups.has(name) ? 'Updating' : 'Creating';
    const ok = await act(`${verb} ${name}`, 'PUT', `/groups/${enc(name)}`, spec);
    if (ok !== undefined) form.reset();
  });

  $('#load-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const group = lgGroup.value;
    if (!group) {
      notify('Create a group first: load goes to a group.', 'error');
      return;
    }
    const rate = parseInt($('#lg-rate').value, 10);
    const shoppers = parseInt($('#lg-shoppers').value, 10);
    const duration = $('#lg-duration').value.trim();
    const paths = $('#lg-paths').value.split(',').map((p) => p.trim()).filter(Boolean);
    const body = { group };
    if (Number.isInteger(rate) && rate > 0) body.rate = rate;
    if (duration) body.duration = duration;
    if (Number.isInteger(shoppers) && shoppers > 0) body.shoppers = shoppers;
    if (paths.length) body.paths = paths;
    const r = await act(`Starting load on ${group}`, 'POST', '/load', body);
    if (r && r.id) {
      state.myRun = r.id;
      state.loads.set(r.id, r);
      dirty.loads = true;
      schedule();
    }
  });

  lgStop.addEventListener('click', async () => {
    const r = shownRun;
    if (!r || r.state !== 'running') return;
    const final = await act(`Stopping load run ${r.id}`, 'DELETE', `/load/${enc(r.id)}`);
    if (final && final.id) {
      state.loads.set(final.id, final);
      dirty.loads = true;
      schedule();
    } else {
      refreshLoads();
    }
  });

  // ---- start -------------------------------------------------------------------------

  // The services list also comes with the snapshot; asking now fills the
  // form even before the stream is up.
  api('GET', '/services').then((data) => {
    if (data && data.services && !state.services.length) {
      state.services = data.services;
      dirty.choices = true;
      schedule();
    }
  }).catch(() => {});

  setConn('reconnecting', 'Connecting…');
  dirty.choices = true;
  dirty.loads = true;
  schedule();
  connect();
})();
