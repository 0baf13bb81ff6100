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
  const HEALTH_ICON = { ready: '✓', starting: '◐', unready: '⊘', unhealthy: '!', paused: '‖', dead: '✕' };
  const ROLE_ICON = { pooled: '❄', waking: '◔' };
  const STATUS_ICON = { converged: '✓', scaling: '↕', starting: '◐', degraded: '⊘', 'crash-loop': '↻', deleting: '✕', error: '!', 'rolling-out': '⇄' };
  // The shop's features, which feature faults target.
  const FEATURES = ['catalog', 'deals', 'cart', 'orders', 'checkout'];
  // Services a shopper's journey can walk from end to end.
  const SHOP_ENTRIES = ['monolith', 'gateway'];
  // The steps of a shopper's journey, in order, as the load report names them.
  const STEPS = ['browse', 'deals', 'add', 'cart', 'checkout'];
  const STEP_LABEL = { browse: 'browse', deals: 'view deals', add: 'add to cart', cart: 'cart complete', checkout: 'checkout' };
  // "Last few seconds" rates compare the newest report with the one this
  // long before it.
  const RECENT_MS = 5000;
  const TONE_MARK = { good: '✓', warn: '!', bad: '✗', none: '–' };
  const TONE_WORD = { good: 'ok', warn: 'degraded', bad: 'failing', none: 'no answers yet' };
  // What one replica of a group is, in the order the comparison shows them;
  // a group without one is a container.
  const ISOLATIONS = ['container', 'pod', 'vm'];
  const ISOLATION_TITLE = {
    container: 'each replica is one container: a process the host\'s kernel fences off',
    pod: 'each replica is a pod: containers sharing one network, process and IPC namespace and one hostname, started and replaced as one',
    vm: 'each replica is a virtual machine booting a kernel of its own under QEMU',
  };
  // The rows of the comparison table, as index.html names them.
  const COMPARE_ROWS = ['isolation', 'startup', 'mem', 'cpu', 'kernel', 'memTotal', 'cpus', 'procs', 'ready'];
  const UNKNOWN = '…';

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
    samples: new Map(), // load run id -> [{t, c}], journey counts over time
    scenarios: [], // in stage order
    scenario: '', // the one applied last, '' for none
    scenarioPending: '', // the one being applied by this page
    faults: [], // newest first
    bus: null, // the bus's status as the controller last read it
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
    story: false,
    faults: false,
    faultForm: false,
    bus: false,
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
  // fmtStartup is a start-up time: ms under a second, else seconds.
  function fmtStartup(ms) {
    if (ms == null || !isFinite(ms)) return UNKNOWN;
    if (ms < 1000) return Math.round(ms) + ' ms';
    return (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + ' s';
  }
  function fmtKiB(kib) {
    if (!kib || !isFinite(kib)) return UNKNOWN;
    const m = kib / 1024;
    if (m >= 1024) return (m / 1024).toFixed(1) + ' GiB';
    return (m >= 100 ? m.toFixed(0) : m.toFixed(1)) + ' MiB';
  }
  // median is the middle of values (the mean of the two middle ones for an
  // even count); null for none.
  function median(values) {
    const n = values.length;
    if (!n) return null;
    const v = values.slice().sort((a, b) => a - b);
    return n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
  function fmtTime(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return '';
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  }

  // The serverless panel of autoscaled groups lives in serverless.js.
  const fnPanel = window.flotillaServerless({ el, fromTemplate, uid, setText, setAttr, setHidden, fmtMs, fmtMiB, fmtTime });
  // The nodes view lives in nodes.js.
  const nodesView = window.flotillaNodes({
    setText, setAttr, setHidden, fromTemplate, uid, collator, act, fmtMiB, redraw: () => schedule(),
  });
  // The rollout strip and the version control live in rollout.js.
  const roPanel = window.flotillaRollout({
    el, fromTemplate, uid, setText, setAttr, setHidden, setWidth, fmtPct, fmtTime, api, act, groupSpec,
    group: (name) => state.groups.get(name),
    redraw: (name) => { dirty.groups.add(name); schedule(); },
  });

  // ---- notices -------------------------------------------------------------

  const notice = $('#notice');
  const noticeText = $('.notice-text', notice);
  let noticeTimer = 0;
  function notify(message, kind) {
    clearTimeout(noticeTimer);
    notice.dataset.kind = kind || 'info';
    noticeText.textContent = message;
    notice.hidden = false;
    const ms = kind === 'error' ? 12000 : Math.min(10000, Math.max(4000, message.length * 60));
    noticeTimer = setTimeout(() => { notice.hidden = true; }, ms);
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

  // refresher returns a function that GETs path soon and hands the answer
  // (or null and the error) to apply; calls while one is pending or under
  // way coalesce into one more request.
  function refresher(path, apply) {
    let timer = 0;
    let busy = false;
    let again = false;
    async function run() {
      timer = 0;
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      try {
        apply(await api('GET', path), null);
      } catch (err) {
        apply(null, err);
      }
      busy = false;
      schedule();
      if (again) {
        again = false;
        run();
      }
    }
    return (delay) => {
      if (!timer) timer = setTimeout(run, delay || 0);
    };
  }

  // groupSpec is the full spec of a group as it stands, to send back with
  // one thing changed.
  function groupSpec(g) {
    const spec = { service: g.service, replicas: g.desired };
    if (g.resources) spec.resources = g.resources;
    // Left out, a vm or pod group would come back as containers.
    if (g.isolation) spec.isolation = g.isolation;
    if (g.settings && Object.keys(g.settings).length) spec.settings = Object.assign({}, g.settings);
    // Left out, the version would fall back to v1 and start a rollout.
    if (g.version) {
      const m = /^(v\d+)(?:\s*\(([^)]*)\))?/.exec(g.version);
      if (m) {
        spec.version = m[1];
        if (m[2]) spec.flaw = m[2];
      }
    }
    if (g.probe && g.probe.periodMs > 0) spec.probe = Object.assign({}, g.probe);
    if (g.liveness && g.liveness.periodMs > 0) spec.liveness = Object.assign({}, g.liveness);
    // An autoscaled group keeps its settings; its count is the autoscaler's.
    if (g.autoscale && g.autoscale.settings) {
      spec.autoscale = g.autoscale.settings;
      spec.replicas = g.autoscale.want || 0;
    }
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
      // {"type": "bus", "bus": {...}}; a flat message is read the same.
      case 'bus': setBus(msg.bus || msg); break;
      // {"type": "nodes", "nodes": {...}}: the runtime's nodes changed.
      case 'nodes': nodesView.set(msg.nodes); break;
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
    for (const r of m.loads || []) putLoad(r);
    for (const id of state.samples.keys()) if (!state.loads.has(id)) state.samples.delete(id);
    dirty.loads = true;
    // What changed while the stream was down comes by REST.
    refreshScenarios();
    refreshFaults();
    // A controller that reads a bus puts its last reading in the snapshot.
    if (m.bus) setBus(m.bus, true);
    else refreshBus();
    // So does one that knows its nodes; an older one is asked.
    if (m.nodes) nodesView.set(m.nodes);
    else refreshNodes();
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
    if (!e.kind) return;
    if (e.kind.startsWith('load.')) refreshLoads();
    else if (e.kind.startsWith('fault.')) refreshFaults(100);
    else if (e.kind === 'scenario.applied') refreshScenarios(100);
  }

  function putGroup(g) {
    if (!g || !g.name) return;
    if (!state.groups.has(g.name)) {
      dirty.order = true;
      dirty.choices = true;
    }
    state.groups.set(g.name, g);
    dirty.groups.add(g.name);
    if (g.name === faultGroup.value) dirty.faultForm = true;
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
    for (const r of m.loads || []) putLoad(r);
    if (m.loads) dirty.loads = true;
    dirty.stats = true;
  }

  // putLoad stores a load report and, for a journey run, a sample of its
  // counts, from which the rates of the last few seconds are computed.
  function putLoad(r) {
    if (!r || !r.id) return;
    state.loads.set(r.id, r);
    if (!r.steps) return;
    const c = journeyCounts(r);
    let arr = state.samples.get(r.id);
    if (!arr) {
      arr = [];
      state.samples.set(r.id, arr);
    }
    const last = arr[arr.length - 1];
    // A run that ended says the same thing again and again: keep the samples
    // that show its last seconds.
    if (last && r.state !== 'running' && sameCounts(last.c, c)) return;
    const now = Date.now();
    arr.push({ t: now, c });
    // Three windows of history: enough to look back from the last moment a
    // run's counts moved, even a little after they stopped.
    while (arr.length > 2 && (arr[1].t <= now - 3 * RECENT_MS || arr.length > 120)) arr.shift();
  }

  // journeyCounts flattens a report's journey figures into ok, failed and
  // incomplete per step, plus the journeys as "journey".
  function journeyCounts(r) {
    const c = {};
    for (const name of STEPS) {
      const s = (r.steps && r.steps[name]) || {};
      c[name] = { ok: +s.ok || 0, failed: +s.failed || 0, inc: +s.incomplete || 0 };
    }
    const j = r.journeys || {};
    c.journey = { ok: +j.succeeded || 0, failed: +j.failed || 0, inc: 0 };
    return c;
  }
  function sameCounts(a, b) {
    for (const k in b) {
      if (!a[k] || a[k].ok !== b[k].ok || a[k].failed !== b[k].failed || a[k].inc !== b[k].inc) return false;
    }
    return true;
  }

  // A load run that ended after the last stats message would otherwise stay
  // "running" on screen; ask once for the final reports.
  let loadsTimer = 0;
  function refreshLoads() {
    clearTimeout(loadsTimer);
    loadsTimer = setTimeout(async () => {
      try {
        const data = await api('GET', '/load');
        for (const r of (data && data.runs) || []) putLoad(r);
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
    const compare = dirty.groups.size > 0 || dirty.order || dirty.stats;
    // The bus draws each consumer's group and its replicas.
    const bus = dirty.bus || dirty.groups.size > 0 || dirty.order;
    if (dirty.groups.size || dirty.order) renderGroups();
    if (bus) renderBus();
    if (dirty.stats) renderAllStats();
    if (compare) renderCompare();
    if (dirty.eventsAll || dirty.newEvents.length) renderEvents();
    if (dirty.loads) renderLoad();
    if (dirty.choices) renderChoices();
    if (dirty.faultForm) renderFaultForm();
    if (dirty.faults) renderFaults();
    if (dirty.story) renderStory();
    nodesView.render(); // draws only when its nodes changed
    renderSummary();
    const renderMs = performance.now() - t0;
    diag.frames++;
    diag.lastFrame = { applyMs: diag.applyMs, renderMs, stats: hadStats, bus, tiles: tileCount };
    diag.frameLog.push(diag.lastFrame);
    if (diag.frameLog.length > 50) diag.frameLog.shift();
    diag.applyMs = 0;
  }

  const groupsEl = $('#groups');
  const emptyEl = $('#empty');
  const cards = new Map(); // group name -> card view
  let tileCount = 0;
  roPanel.attach(groupsEl, (name) => (cards.get(name) || {}).verCtl);

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
      iso: $('.iso-tag', root),
      statusPill: $('.status-pill', root),
      statusIcon: $('.status-icon', root),
      statusText: $('.status-text', root),
      ready: $('.ready-count', root),
      readyFill: $('.readybar-fill', root),
      message: $('.card-message', root),
      hint: $('.card-hint', root),
      policy: $('.policy', root),
      endpoint: $('.endpoint', root),
      scaleInput: $('.scale-input', root),
      stepper: $('.stepper', root),
      scaleAuto: $('.scale-auto', root),
      tilesEl: $('.tiles', root),
      fn: null, // the serverless panel, while the group is autoscaled
      ro: null, // the rollout strip, while a rollout runs or just ended
      verCtl: roPanel.makeControl(root, name),
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
    patchIsolationTag(c, g);
    setText(c.statusIcon, STATUS_ICON[g.status] || '•');
    setText(c.statusText, g.status || 'unknown');
    // An autoscaled group's desired count includes its paused warm pool,
    // which is never ready: its bar is of the replicas the autoscaler wants.
    const want = g.autoscale ? (g.autoscale.want || 0) : (g.desired ?? 0);
    setText(c.ready, `${g.ready ?? 0} / ${want} ${g.autoscale ? 'serving' : 'ready'}`);
    setWidth(c.readyFill, want ? (g.ready || 0) / want : (g.ready ? 1 : 0));
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
    setHidden(c.hint, current !== 'none');

    roPanel.patchControl(c.verCtl, g);
    patchRollout(c, g);
    patchServerless(c, g);

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
      patchTile(t, r, !!g.endpoint);
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

  // patchRollout adds, patches or removes the card's rollout strip, which
  // sits above the serverless panel and the tiles.
  function patchRollout(c, g) {
    setAttr(c.el, 'data-version', roPanel.versionKey(g.version) || null);
    if (!roPanel.shows(g)) {
      if (c.ro) {
        c.ro.el.remove();
        c.ro = null;
      }
      return;
    }
    if (!c.ro) {
      c.ro = roPanel.make(c.name);
      c.el.insertBefore(c.ro.el, c.fn ? c.fn.el : c.tilesEl);
    }
    roPanel.patch(c.ro, g);
  }

  // patchServerless adds, patches or removes the card's serverless panel.
  // The autoscaler owns an autoscaled group's count: no stepper then.
  function patchServerless(c, g) {
    const auto = !!(g.autoscale && g.autoscale.settings);
    setAttr(c.el, 'data-autoscale', auto);
    setHidden(c.stepper, auto);
    setHidden(c.scaleAuto, !auto);
    if (!auto) {
      if (c.fn) {
        c.fn.el.remove();
        c.fn = null;
      }
      return;
    }
    const s = g.autoscale.settings;
    setText(c.scaleAuto, `${s.min}–${s.max}, set by the autoscaler`);
    if (!c.fn) {
      c.fn = fnPanel.make(c.name);
      c.el.insertBefore(c.fn.el, c.tilesEl);
    }
    fnPanel.patch(c.fn, g);
  }

  // patchIsolationTag shows on the card what one replica is, unless it is
  // the plain container everyone expects.
  function patchIsolationTag(c, g) {
    const kind = isolationOf(g);
    setAttr(c.el, 'data-isolation', kind);
    setHidden(c.iso, kind === 'container');
    setText(c.iso, kind === 'vm' && g.accel ? `vm · ${g.accel.toUpperCase()}` : kind);
    const accel = kind !== 'vm' ? '' : g.accel === 'tcg'
      ? '; emulated by QEMU\'s TCG (no KVM), so slower than on real hardware'
      : (g.accel === 'kvm' ? '; run by KVM at close to native speed' : '');
    setAttr(c.iso, 'title', (ISOLATION_TITLE[kind] || `isolation ${kind}`) + accel);
  }

  function makeTile(name) {
    const root = fromTemplate('tpl-tile');
    root.dataset.replica = name;
    const t = {
      name,
      el: root,
      healthText: $('.health-text', root),
      healthIcon: $('.health-icon', root),
      version: $('.tile-version', root),
      sub: $('.tile-sub', root),
      reason: $('.tile-reason', root),
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

  function patchTile(t, r, balanced) {
    t.status = r;
    t.hasBalancer = !!r.traffic;
    const health = r.health || 'unknown';
    const root = t.el;
    setAttr(root, 'data-health', health);
    setAttr(root, 'data-state', r.state || '');
    setAttr(root, 'data-traffic', r.traffic ? r.traffic.state : null);
    // A replica of the warm pool is paused on purpose, and a waking one is
    // what a held request waits for: each says so rather than its health.
    const role = r.pooled ? 'pooled' : (r.waking ? 'waking' : null);
    setAttr(root, 'data-role', role);
    setText(t.healthIcon, role ? ROLE_ICON[role] : (HEALTH_ICON[health] || '?'));
    setText(t.healthText, role || health);
    // The release it runs, coloured by version, so a rollout is seen to
    // move through the tiles.
    setAttr(root, 'data-version', roPanel.versionKey(r.version) || null);
    setText(t.version, r.version || '');
    setHidden(t.version, !r.version);
    setAttr(t.version, 'data-version', roPanel.versionKey(r.version) || null);
    setAttr(t.version, 'title', r.version ? `runs ${r.version}` : null);

    const parts = [r.pooled ? 'paused in the warm pool' : (r.waking ? 'waking for a held request' : (r.state || 'unknown'))];
    if (r.state === 'exited' || r.state === 'dead' || r.exitCode) parts.push(`exit ${r.exitCode || 0}`);
    if (r.traffic && r.traffic.state !== 'ready') parts.push(r.traffic.state === 'ejected' ? 'ejected from balancer' : 'out of rotation');
    else if (balanced && !r.traffic && health === 'unready') parts.push('out of rotation');
    const broken = faultsOn.get(r.name);
    if (broken) parts.push(broken);
    setAttr(root, 'data-fault', broken || null);
    setText(t.sub, parts.join(' · '));
    setAttr(t.sub, 'title', r.upstream ? `published ${r.address}, balancer dials ${r.upstream}` : (r.address || null));
    setText(t.restarts, String(r.restarts || 0));

    // Why a replica is not ready (often a dependency that is down: it is
    // out of rotation and kept) or not live (it will be replaced).
    const reason = r.reason || '';
    setText(t.reason, reason);
    setHidden(t.reason, !reason);
    setAttr(t.reason, 'title', !reason ? null : health === 'unhealthy'
      ? `not live: ${reason}. It is replaced unless it answers again soon.`
      : `not ready: ${reason}. It gets no traffic until it is ready again; it is not restarted for this.`);

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
      setAttr(t.share, 'data-address', false);
      setWidth(t.shareFill, share || 0);
      const rps = s && s.rps != null ? ` · ${fmtRate(s.rps)} req/s` : '';
      setText(t.shareText, `${fmtPct(share || 0)}${rps}`);
      setAttr(t.share, 'title', `share of the balancer's requests${rps ? ', and requests per second' : ''}`);
    } else {
      // Without a balancer a client must know each replica's own address.
      setWidth(t.shareFill, 0);
      setText(t.shareText, r.address || 'no balancer');
      setAttr(t.share, 'data-address', !!r.address);
      setAttr(t.share, 'title', r.address ? `${t.name}'s own address: with no balancer, clients connect here` : null);
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

  // ---- isolation side by side ------------------------------------------------------

  // When the groups are of more than one isolation kind (stage 5 runs the
  // shop as a container, a pod and a VM), a table compares them: one
  // column per group, built when the set of groups changes and patched in
  // place with every group status and stats message.
  const compareEl = $('#compare');
  const compareHead = $('thead tr', compareEl);
  const compareCorner = $('.compare-corner', compareEl);
  const compareRows = new Map(); // row name -> {tr, th}
  for (const row of COMPARE_ROWS) {
    const tr = $(`tr[data-row="${row}"]`, compareEl);
    compareRows.set(row, { tr, th: $('th', tr) });
  }
  const compareCols = new Map(); // group name -> column view
  let compareKey = '';

  function isolationOf(g) {
    return g.isolation || 'container';
  }
  function isolationRank(g) {
    const i = ISOLATIONS.indexOf(isolationOf(g));
    return i < 0 ? ISOLATIONS.length : i;
  }
  function isolationLabel(g) {
    const kind = isolationOf(g);
    if (kind !== 'vm') return kind;
    if (g.accel === 'tcg') return 'vm (TCG, emulated)';
    if (g.accel === 'kvm') return 'vm (KVM)';
    return 'vm';
  }

  // seenBy is what a group's replicas see of their machine: a ready
  // replica's view first, else any replica's; null while none has said.
  function seenBy(g) {
    let any = null;
    for (const r of g.replicas || []) {
      if (!r.sees) continue;
      if (r.health === 'ready') return r.sees;
      if (!any) any = r.sees;
    }
    return any;
  }

  // hostKernel is the kernel a container or pod replica sees, which is the
  // host's own; '' while none has said.
  function hostKernel(groups) {
    for (const g of groups) {
      if (isolationOf(g) === 'vm') continue;
      const sees = seenBy(g);
      if (sees && sees.kernel) return sees.kernel;
    }
    return '';
  }

  function renderCompare() {
    // A group being deleted has no spec left to say what it was.
    const groups = [...state.groups.values()].filter((g) => g.status !== 'deleting');
    const show = new Set(groups.map(isolationOf)).size > 1;
    setHidden(compareEl, !show);
    if (!show) return;
    groups.sort((a, b) => (isolationRank(a) - isolationRank(b)) || collator.compare(a.name, b.name));
    const key = groups.map((g) => g.name).join('\u0000');
    if (key !== compareKey) {
      compareKey = key;
      const cols = groups.map((g) => compareCols.get(g.name) || makeCompareCol(g.name));
      compareCols.clear();
      for (const c of cols) compareCols.set(c.name, c);
      reorder(compareHead, [compareCorner, ...cols.map((c) => c.th)]);
      for (const [row, v] of compareRows) reorder(v.tr, [v.th, ...cols.map((c) => c.cells[row])]);
    }
    const host = hostKernel(groups);
    for (const g of groups) patchCompareCol(compareCols.get(g.name), g, host);
  }

  function makeCompareCol(name) {
    const th = el('th', 'cmp-group', name);
    th.scope = 'col';
    th.dataset.col = name;
    const cells = {};
    for (const row of COMPARE_ROWS) {
      const td = el('td');
      td.dataset.col = name;
      cells[row] = td;
    }
    const kernel = el('code', 'cmp-kernel');
    const note = el('span', 'cmp-note');
    cells.kernel.append(kernel, note);
    return { name, th, cells, kernel, note };
  }

  // setCell shows value, or … while it is not known.
  function setCell(td, value) {
    setText(td, value == null ? UNKNOWN : value);
    setAttr(td, 'data-unknown', value == null);
  }

  function patchCompareCol(c, g, host) {
    const reps = g.replicas || [];
    const cells = c.cells;
    setAttr(c.th, 'data-isolation', isolationOf(g));
    setCell(cells.isolation, isolationLabel(g));
    setAttr(cells.isolation, 'title', ISOLATION_TITLE[isolationOf(g)] || null);

    const startups = [];
    const mems = [];
    const cpus = [];
    let limit = 0;
    for (const r of reps) {
      if (r.startupMs > 0) startups.push(r.startupMs);
      const s = r.state === 'running' ? state.stats.get(r.name) : null;
      // A replica's first sample has no usage yet: 0 bytes is not a figure.
      if (!s || !(s.memBytes > 0)) continue;
      mems.push(s.memBytes);
      if (s.cpuPercent != null && isFinite(s.cpuPercent)) cpus.push(s.cpuPercent);
      if (s.memLimitBytes) limit = s.memLimitBytes;
    }
    const startup = median(startups);
    setCell(cells.startup, startup == null ? null : fmtStartup(startup));
    const mem = median(mems);
    setCell(cells.mem, mem == null ? null : fmtMiB(mem));
    setAttr(cells.mem, 'title', limit ? `its container's limit is ${fmtMiB(limit)}` : null);
    const cpu = median(cpus);
    setCell(cells.cpu, cpu == null ? null : cpu.toFixed(1) + '%');

    const sees = seenBy(g) || {};
    setText(c.kernel, sees.kernel || UNKNOWN);
    setAttr(cells.kernel, 'data-unknown', !sees.kernel);
    const own = !sees.kernel || !host ? '' : (sees.kernel === host ? 'the host\'s' : 'its own');
    setText(c.note, own);
    setHidden(c.note, !own);
    setAttr(cells.kernel, 'data-kernel', own === 'its own' ? 'own' : (own ? 'host' : null));
    setCell(cells.memTotal, sees.memTotalKiB > 0 ? fmtKiB(sees.memTotalKiB) : null);
    setCell(cells.cpus, sees.cpus > 0 ? String(sees.cpus) : null);
    setCell(cells.procs, sees.processes > 0 ? String(sees.processes) : null);
    setAttr(c.th, 'title', sees.hostname ? `${g.name}: a replica's hostname is ${sees.hostname}` : null);
    setCell(cells.ready, `${g.ready ?? 0} / ${g.desired ?? 0}`);
  }

  // ---- the message bus ---------------------------------------------------------------

  // Stage 7's bus, drawn as its messages flow: the publisher (checkout) →
  // each stream → one edge per durable consumer → the consumer's group and
  // its replicas, with the rates, the lag and the dead letters on the
  // edges. Boxes and edges are built when the set of streams and consumers
  // changes and patched in place with every bus status; dots move along the
  // edges at the rate of the messages, capped, in an animation loop of their
  // own that only moves dots it built once. A table says the same for
  // screen readers.
  // At most this many dots a second per edge, however fast messages go: a
  // dozen on an edge at once still read as single messages.
  const BUS_DOTS_PER_SEC = 12;
  const BUS_TRAVEL_MS = 1000; // a dot's trip along an edge
  const BUS_POOL = Math.ceil(BUS_DOTS_PER_SEC * BUS_TRAVEL_MS / 1000) + 2;
  const BUS_PIPS = 12; // replicas drawn one by one; past that, a count
  const PUBLISHER_SERVICES = ['checkout'];

  const busEl = $('#bus');
  const busStateText = $('.bus-state-text', busEl);
  const busStateIcon = $('.bus-state-icon', busEl);
  const busErrorEl = $('#bus-error');
  const busFlow = $('#bus-flow');
  const busTableBody = $('#bus-table tbody');
  const busDeadTable = $('#bus-dead');
  const busDeadBody = $('tbody', busDeadTable);
  const busDeadEmpty = $('#bus-dead-empty');
  const busDeadCount = $('#bus-dead-count');
  const busDeadScroll = $('.bus-dead-scroll', busEl);
  let busKey = null;
  let busView = null; // {pub, streams: Map name -> {edge, node, row, consumers: Map name -> {edge, node, row}}}
  let busEdges = []; // every edge, with its dots
  let busShown = false;
  const deadRows = new Map(); // seq -> row view
  const replaying = new Map(); // seq -> 'pending' | 'done', for the replays this page asked for
  const reduceMotion = window.matchMedia ? window.matchMedia('(prefers-reduced-motion: reduce)') : { matches: false };
  diag.dots = { frames: 0, log: [], live: 0, maxLivePerEdge: 0, spawned: 0 };

  // setBus keeps the newer of what the stream and GET /api/v1/bus say; a
  // snapshot's reading is taken whatever its time, as a fresh start.
  function setBus(st, fresh) {
    if (!st || typeof st !== 'object') return;
    const prev = state.bus;
    const t = Date.parse(st.time);
    const before = prev ? Date.parse(prev.time) : NaN;
    if (!fresh && t > 0 && before > 0 && t < before) return;
    state.bus = {
      up: !!st.up, error: st.error || '', time: st.time || '',
      streams: Array.isArray(st.streams) ? st.streams : [],
      deadLetters: Array.isArray(st.deadLetters) ? st.deadLetters : [],
    };
    dirty.bus = true;
  }

  const refreshNodes = refresher('/nodes', (data) => {
    // A controller without the route has no nodes view.
    if (data) nodesView.set(data);
  });

  const refreshBus = refresher('/bus', (data) => {
    // An older controller has no bus: the panel stays hidden.
    if (data) setBus(data);
  });

  // A bus exists once the controller reads one, or a group runs it.
  function busExists() {
    const b = state.bus;
    if (b && (b.up || b.streams.length)) return true;
    for (const g of state.groups.values()) if (g.service === 'bus') return true;
    return false;
  }

  function fmtBytes(n) {
    if (n == null || !isFinite(n)) return '–';
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(n < 10240 ? 1 : 0) + ' KiB';
    if (n < 1073741824) return fmtMiB(n);
    return (n / 1073741824).toFixed(1) + ' GiB';
  }
  // fmtFlow is a rate of messages: 0.5, 42, 5,000.
  function fmtFlow(n) {
    return n >= 1000 ? fmtNum(n) : fmtRate(n);
  }
  function plural(n, one, many) {
    return `${fmtNum(n)} ${n === 1 ? one : (many || one + 's')}`;
  }

  function renderBus() {
    dirty.bus = false;
    const show = busExists();
    setHidden(busEl, !show);
    busShown = show;
    if (!show) {
      clearDots();
      return;
    }
    const b = state.bus || { up: false, error: '', streams: [], deadLetters: [] };
    const streams = b.streams;
    setAttr(busEl, 'data-up', String(b.up));
    setText(busStateIcon, b.up ? '✓' : '!');
    let published = 0;
    for (const s of streams) published += +s.publishedPerSec || 0;
    setText(busStateText, b.up
      ? `up · ${plural(streams.length, 'stream')} · ${fmtFlow(published)} published/s`
      : 'not reachable');
    const why = b.error ? `The controller cannot read the bus: ${b.error}` : (b.up ? '' : 'The controller has not read the bus yet.');
    setText(busErrorEl, why);
    setHidden(busErrorEl, !why);

    const key = streams.map((s) => s.name + '\u0000' + (s.consumers || []).map((c) => c.name).join('\u0000')).join('\u0001');
    if (key !== busKey) buildFlow(streams, key);
    patchFlow(b);
    renderDeadLetters(b.deadLetters);
    startDots();
  }

  function place(node, col, row, span) {
    node.style.gridColumn = String(col);
    node.style.gridRow = span > 1 ? `${row} / span ${span}` : String(row);
  }

  function buildFlow(streams, key) {
    busKey = key;
    busEdges = [];
    const nodes = [];
    const rows = [];
    const total = streams.reduce((n, s) => n + Math.max(1, (s.consumers || []).length), 0);
    const pubEdges = [];
    const pub = flowNode('bf-pub', true);
    place(pub.el, 1, 1, Math.max(1, total));
    nodes.push(pub.el);
    busView = { pub, streams: new Map() };
    let row = 1;
    for (const s of streams) {
      const cs = s.consumers || [];
      const span = Math.max(1, cs.length);
      const sv = { edge: flowEdge('publish', s.name), node: flowNode('bf-stream', false), consumers: new Map() };
      sv.node.el.dataset.stream = s.name;
      place(sv.edge.el, 2, row, span);
      pubEdges.push(sv.edge.el);
      place(sv.node.el, 3, row, span);
      nodes.push(sv.edge.el, sv.node.el);
      if (!cs.length) {
        const none = el('p', 'bf-none', 'no consumer yet: messages are kept until one reads them');
        place(none, 4, row, 1);
        none.style.gridColumnEnd = 'span 2';
        nodes.push(none);
        sv.row = tableRow(s.name, '');
        rows.push(sv.row.tr);
      }
      cs.forEach((c, i) => {
        const cv = { edge: flowEdge('consume', s.name + '/' + c.name), node: flowNode('bf-group', true), row: tableRow(s.name, c.name) };
        cv.node.el.dataset.consumer = c.name;
        cv.edge.el.dataset.consumer = c.name;
        place(cv.edge.el, 4, row + i, 1);
        place(cv.node.el, 5, row + i, 1);
        nodes.push(cv.edge.el, cv.node.el);
        rows.push(cv.row.tr);
        sv.consumers.set(c.name, cv);
      });
      fan([...sv.consumers.values()].map((cv) => cv.edge.el));
      busView.streams.set(s.name, sv);
      row += span;
    }
    fan(pubEdges);
    busFlow.replaceChildren(...nodes);
    busTableBody.replaceChildren(...rows);
  }

  // fan joins the edges that leave one box with a line down their left
  // ends: from the first one's middle to the last one's.
  function fan(edges) {
    edges.forEach((e, i) => {
      if (edges.length > 1) e.dataset.fan = i === 0 ? 'first' : (i === edges.length - 1 ? 'last' : 'mid');
    });
  }

  function flowNode(kind, pips) {
    const root = el('div', 'bf-node ' + kind);
    const title = el('div', 'bf-title');
    const sub = el('div', 'bf-sub');
    const sub2 = el('div', 'bf-sub2');
    root.append(title, sub);
    const n = { el: root, title, sub, sub2, pipEls: [], pips: null, more: null };
    if (pips) {
      n.pips = el('div', 'bf-pips');
      for (let i = 0; i < BUS_PIPS; i++) {
        const p = el('span', 'bf-pip');
        n.pipEls.push(p);
        n.pips.append(p);
      }
      n.more = el('span', 'bf-more');
      n.pips.append(n.more);
      root.append(n.pips);
    }
    root.append(sub2);
    return n;
  }

  function flowEdge(kind, id) {
    const root = el('div', 'bf-edge');
    root.dataset.edge = kind;
    root.dataset.id = id;
    const label = el('div', 'bf-label');
    const rate = el('span', 'bf-rate');
    const dead = el('span', 'bf-dead');
    dead.hidden = true;
    label.append(rate, dead);
    const track = el('div', 'bf-track');
    track.append(el('span', 'bf-line'));
    const dots = [];
    for (let i = 0; i < BUS_POOL; i++) {
      const d = el('span', 'bf-dot');
      track.append(d);
      dots.push({ el: d, born: 0, on: false });
    }
    const extra = el('div', 'bf-extra');
    root.append(label, track, extra);
    const e = { el: root, rate, dead, extra, dots, perSec: 0, acc: 0, live: 0 };
    busEdges.push(e);
    return e;
  }

  function tableRow(stream, consumer) {
    const tr = el('tr');
    tr.dataset.stream = stream;
    tr.dataset.consumer = consumer;
    const cells = {};
    for (const k of ['stream', 'published', 'consumer', 'group', 'replicas', 'acked', 'lag', 'unacked', 'redelivered', 'dead']) {
      const c = el(k === 'consumer' ? 'th' : 'td');
      if (k === 'consumer') c.scope = 'row';
      c.dataset.col = k;
      cells[k] = c;
      tr.append(c);
    }
    return { tr, cells };
  }

  // patchPips draws a group's replicas, the first BUS_PIPS one by one and
  // the rest as a count.
  function patchPips(n, reps) {
    const shown = Math.min(reps.length, BUS_PIPS);
    for (let i = 0; i < BUS_PIPS; i++) {
      const p = n.pipEls[i];
      setHidden(p, i >= shown);
      if (i < shown) setAttr(p, 'data-health', reps[i].health || 'unknown');
    }
    const more = reps.length - shown;
    setText(n.more, more > 0 ? `+${fmtNum(more)}` : '');
    setHidden(n.more, more <= 0);
    setHidden(n.pips, reps.length === 0);
  }

  function groupReplicas(groups) {
    const reps = [];
    for (const g of groups) for (const r of g.replicas || []) reps.push(r);
    return reps.sort((a, b) => collator.compare(a.name, b.name));
  }

  function readyText(groups) {
    let ready = 0;
    let desired = 0;
    for (const g of groups) {
      ready += g.ready || 0;
      desired += g.desired || 0;
    }
    return `${fmtNum(ready)} / ${plural(desired, 'replica')} ready`;
  }

  function patchFlow(b) {
    const v = busView;
    const pubs = [...state.groups.values()].filter((g) => PUBLISHER_SERVICES.includes(g.service))
      .sort((x, y) => collator.compare(x.name, y.name));
    const pubName = pubs.length ? pubs.map((g) => g.name).join(', ') : 'publishers';
    setText(v.pub.title, pubName);
    setText(v.pub.sub, pubs.length ? `publisher · ${readyText(pubs)}` : 'no checkout group runs');
    setAttr(v.pub.el, 'data-empty', !pubs.length);
    // Checkout's setting events says whether it publishes (bus) or calls
    // the subscribers in line over HTTP (http, the default, which a
    // group's status leaves out).
    const onBus = pubs.filter((g) => g.settings && g.settings.events === 'bus');
    const mode = !pubs.length ? '' : (onBus.length === pubs.length ? 'bus' : (onBus.length ? 'mixed' : 'http'));
    setAttr(v.pub.el, 'data-events', mode || null);
    setText(v.pub.sub2, mode === 'bus' ? 'events: bus: publishes, answers without waiting'
      : mode === 'http' ? 'events: http: calls the subscribers in line, publishes nothing'
        : mode === 'mixed' ? `events: bus on ${onBus.map((g) => g.name).join(', ')} only` : '');
    setHidden(v.pub.sub2, !mode);
    patchPips(v.pub, groupReplicas(pubs));

    const dead = new Map(); // "stream/consumer" -> count
    for (const d of b.deadLetters) {
      const k = d.stream + '/' + d.consumer;
      dead.set(k, (dead.get(k) || 0) + 1);
    }
    for (const s of b.streams) {
      const sv = v.streams.get(s.name);
      if (!sv) continue;
      const pub = +s.publishedPerSec || 0;
      sv.edge.perSec = pub;
      setText(sv.edge.rate, `${fmtFlow(pub)}/s`);
      setText(sv.edge.extra, 'published');
      setAttr(sv.edge.el, 'data-state', pub > 0 ? 'flowing' : 'idle');
      setAttr(sv.edge.el, 'title', `${pubName} → ${s.name}: ${fmtFlow(pub)} messages published a second`);
      setText(sv.node.title, s.name);
      setText(sv.node.sub, (s.subjects || []).join(', ') + (s.workQueue ? ' · work queue' : ''));
      setText(sv.node.sub2, `${plural(+s.messages || 0, 'message')} · ${fmtBytes(+s.bytes || 0)}`);
      setAttr(sv.node.el, 'data-work-queue', !!s.workQueue);
      setAttr(sv.node.el, 'title', `stream ${s.name}: sequences ${s.firstSeq || 0} to ${s.lastSeq || 0}` +
        (s.workQueue ? '; a work queue: each message goes to one consumer and is removed once acked' : '; every consumer gets every message'));
      if (sv.row) patchRow(sv.row, s, null, null, 0);
      for (const c of s.consumers || []) {
        const cv = sv.consumers.get(c.name);
        if (!cv) continue;
        const n = dead.get(s.name + '/' + c.name) || 0;
        const acked = +c.ackedPerSec || 0;
        const pending = +c.pending || 0;
        const e = cv.edge;
        e.perSec = acked;
        setText(e.rate, `${fmtFlow(acked)}/s`);
        setText(e.dead, `✕ ${plural(n, 'dead letter')}`);
        setHidden(e.dead, n === 0);
        const parts = [`lag ${fmtNum(pending)}`];
        if (c.ackPending) parts.push(`${fmtNum(c.ackPending)} unacked`);
        if (c.redelivered) parts.push(`${fmtNum(c.redelivered)} redelivered`);
        setText(e.extra, parts.join(' · '));
        setAttr(e.el, 'data-state', n > 0 ? 'dead' : (pending > 0 ? 'lag' : (acked > 0 ? 'flowing' : 'idle')));
        setAttr(e.el, 'title', `${s.name} → ${c.name}: ${fmtFlow(acked)} acked a second; ${fmtNum(pending)} not yet delivered (lag), ` +
          `${fmtNum(c.ackPending || 0)} delivered and not acked, ${fmtNum(c.redelivered || 0)} delivered more than once` +
          (c.maxDeliver > 0 ? `; gives up after ${c.maxDeliver} tries` : ''));

        const g = c.group ? state.groups.get(c.group) : null;
        const groups = g ? [g] : [];
        setText(cv.node.title, c.group || c.name);
        setText(cv.node.sub, g ? `${c.name} · ${readyText(groups)}`
          : (c.group ? `group ${c.group} not found` : 'no group runs it: its messages wait'));
        setText(cv.node.sub2, c.waiting ? `${plural(c.waiting, 'replica')} asking for messages` : '');
        setHidden(cv.node.sub2, !c.waiting);
        setAttr(cv.node.el, 'data-empty', !g);
        setAttr(cv.node.el, 'data-for-group', c.group || null);
        patchPips(cv.node, groupReplicas(groups));
        patchRow(cv.row, s, c, g, n);
      }
    }
  }

  function patchRow(r, s, c, g, dead) {
    const x = r.cells;
    setText(x.stream, s.name);
    setText(x.published, fmtFlow(+s.publishedPerSec || 0));
    setText(x.consumer, c ? c.name : 'none');
    setText(x.group, c ? (c.group || 'none runs') : '–');
    setText(x.replicas, g ? `${g.ready || 0} of ${g.desired || 0}` : '–');
    setText(x.acked, c ? fmtFlow(+c.ackedPerSec || 0) : '–');
    setText(x.lag, c ? fmtNum(+c.pending || 0) : '–');
    setText(x.unacked, c ? fmtNum(+c.ackPending || 0) : '–');
    setText(x.redelivered, c ? fmtNum(+c.redelivered || 0) : '–');
    setText(x.dead, c ? fmtNum(dead) : '–');
  }

  // ---- dead letters ----

  function renderDeadLetters(list) {
    const sorted = list.slice().sort((a, b) => (b.seq || 0) - (a.seq || 0));
    const seen = new Set();
    const order = [];
    for (const d of sorted) {
      if (!d || !d.seq || seen.has(d.seq)) continue;
      seen.add(d.seq);
      let r = deadRows.get(d.seq);
      if (!r) {
        r = deadRow(d.seq);
        deadRows.set(d.seq, r);
      }
      patchDeadRow(r, d);
      order.push(r.tr);
    }
    // A replayed letter's button may hold focus: hand it to the next one,
    // or to the list, rather than lose it.
    let refocus = null;
    for (const [seq, r] of deadRows) {
      if (seen.has(seq)) continue;
      if (r.tr.contains(document.activeElement)) {
        const next = order.find((tr) => Number(tr.dataset.seq) < seq) || order[order.length - 1];
        refocus = next ? $('button', next) : busDeadScroll;
      }
      deadRows.delete(seq);
      replaying.delete(seq);
    }
    reorder(busDeadBody, order);
    setHidden(busDeadTable, order.length === 0);
    setHidden(busDeadEmpty, order.length > 0);
    setText(busDeadCount, order.length ? `(${fmtNum(order.length)})` : '');
    if (refocus) refocus.focus();
  }

  function deadRow(seq) {
    const tr = el('tr', 'dead-letter');
    tr.dataset.seq = String(seq);
    const c = {};
    for (const k of ['seq', 'message', 'consumer', 'deliveries', 'reason', 'event']) {
      c[k] = el('td');
      c[k].dataset.col = k;
      tr.append(c[k]);
    }
    c.subject = el('code', 'dl-subject');
    c.where = el('span', 'dl-where');
    c.message.append(c.subject, c.where);
    c.eventId = el('code', 'dl-event');
    c.event.append(c.eventId);
    const act = el('td', 'dl-act');
    const btn = el('button', 'btn small');
    btn.type = 'button';
    btn.dataset.action = 'replay';
    btn.dataset.seq = String(seq);
    act.append(btn);
    tr.append(act);
    return { tr, c, btn };
  }

  function patchDeadRow(r, d) {
    const c = r.c;
    setText(c.seq, String(d.seq));
    setText(c.subject, d.subject || '');
    setText(c.where, `${d.stream || '?'} #${d.streamSeq || '?'}`);
    setAttr(c.message, 'title', d.data ? `body: ${d.data}` : null);
    setText(c.consumer, d.consumer || '');
    setText(c.deliveries, fmtNum(+d.deliveries || 0));
    setText(c.reason, d.reason || '');
    setText(c.eventId, d.eventId || '–');
    setAttr(r.tr, 'title', d.time ? `dead since ${fmtTime(d.time)}` : null);
    const st = replaying.get(d.seq);
    setText(r.btn, st === 'pending' ? 'Replaying…' : (st === 'done' ? 'Replayed' : 'Replay'));
    setAttr(r.btn, 'aria-busy', st === 'pending' ? 'true' : null);
    setAttr(r.btn, 'aria-disabled', st ? 'true' : null);
    setAttr(r.btn, 'aria-label', `Replay dead letter ${d.seq}: ${d.subject || 'a message'} that ${d.consumer || 'a consumer'} gave up on` +
      (d.eventId ? `, event ${d.eventId}` : ''));
    setAttr(r.btn, 'title', st === 'done' ? 'Published again: it leaves the list with the next reading of the bus'
      : 'Publish it again to its subject; the consumers that already applied it count a duplicate');
  }

  busDeadBody.addEventListener('click', async (e) => {
    const btn = e.target.closest('button[data-action="replay"]');
    if (!btn) return;
    const seq = Number(btn.dataset.seq);
    if (!seq || replaying.has(seq)) return;
    replaying.set(seq, 'pending');
    dirty.bus = true;
    schedule();
    try {
      const res = (await api('POST', `/bus/deadletters/${enc(String(seq))}/replay`)) || {};
      const d = res.replayed || {};
      replaying.set(seq, 'done');
      notify(`Replayed dead letter ${seq}${d.eventId ? ` (event ${d.eventId})` : ''}: published again to ${res.subject || d.subject} as ${res.msgId || '?'}.` +
        (d.consumer ? ` ${d.consumer} tries it again; consumers that already applied it count a duplicate.` : ''), 'ok');
      refreshBus(250);
    } catch (err) {
      replaying.delete(seq);
      notify(`Replaying dead letter ${seq} failed: ${err.message}`, 'error');
    }
    dirty.bus = true;
    schedule();
  });

  // ---- dots ----

  let dotsOn = false;
  let dotsLast = 0;

  function dotsWanted() {
    if (!busShown || reduceMotion.matches || document.visibilityState === 'hidden') return false;
    for (const e of busEdges) if (e.perSec > 0 || e.live > 0) return true;
    return false;
  }

  function startDots() {
    if (dotsOn || !dotsWanted()) return;
    dotsOn = true;
    dotsLast = performance.now();
    requestAnimationFrame(dotFrame);
  }

  function clearDots() {
    for (const e of busEdges) {
      e.acc = 0;
      e.live = 0;
      for (const d of e.dots) {
        if (!d.on) continue;
        d.on = false;
        d.el.style.opacity = '0';
      }
    }
  }

  function dotFrame(now) {
    const t0 = performance.now();
    // After a pause (a hidden tab, a busy machine) start afresh rather
    // than catch up.
    const dt = Math.min(0.1, Math.max(0, (now - dotsLast) / 1000));
    dotsLast = now;
    let live = 0;
    let most = 0;
    for (const e of busEdges) {
      const n = stepEdge(e, dt, now);
      live += n;
      if (n > most) most = n;
    }
    const dd = diag.dots;
    dd.frames++;
    dd.live = live;
    if (most > dd.maxLivePerEdge) dd.maxLivePerEdge = most;
    dd.log.push(performance.now() - t0);
    if (dd.log.length > 120) dd.log.shift();
    if (dotsWanted()) {
      requestAnimationFrame(dotFrame);
    } else {
      dotsOn = false;
      if (!busShown || reduceMotion.matches) clearDots();
    }
  }

  // stepEdge sends new dots at the edge's rate, capped at BUS_DOTS_PER_SEC,
  // moves the ones under way and returns how many are.
  function stepEdge(e, dt, now) {
    const per = Math.min(e.perSec, BUS_DOTS_PER_SEC);
    if (per > 0) {
      e.acc = Math.min(e.acc + per * dt, 2);
      while (e.acc >= 1) {
        e.acc -= 1;
        const d = e.dots.find((x) => !x.on);
        if (!d) break;
        d.on = true;
        // Spread the dots of one frame along the way they would have gone.
        d.born = now - (e.acc / per) * 1000;
        d.el.style.transform = 'translateX(0%)';
        d.el.style.opacity = '1';
        diag.dots.spawned++;
      }
    } else {
      e.acc = 0;
    }
    let live = 0;
    for (const d of e.dots) {
      if (!d.on) continue;
      const p = (now - d.born) / BUS_TRAVEL_MS;
      if (p >= 1) {
        d.on = false;
        d.el.style.opacity = '0';
        continue;
      }
      live++;
      d.el.style.transform = `translateX(${(Math.max(0, p) * 100).toFixed(1)}%)`;
    }
    e.live = live;
    return live;
  }

  document.addEventListener('visibilitychange', startDots);
  if (reduceMotion.addEventListener) {
    reduceMotion.addEventListener('change', () => {
      if (reduceMotion.matches) clearDots();
      startDots();
    });
  }

  // ---- events ------------------------------------------------------------------

  const eventsEl = $('#events');

  function eventTone(kind) {
    switch (kind) {
      case 'replica.died': case 'replica.unhealthy': case 'group.crash-loop': case 'balancer.ejected':
        return 'bad';
      case 'replica.unready':
        return 'warn';
      case 'replica.ready': case 'replica.live': case 'replica.started': case 'replica.unpaused': case 'balancer.restored':
        return 'good';
      case 'replica.paused': case 'replica.removed': case 'group.deleted':
        return 'warn';
      case 'fault.injected':
        return 'bad';
      case 'fault.reverted': case 'bus.replayed':
        return 'good';
      case 'bus.dead-letter':
        return 'bad';
      case 'load.started': case 'load.finished':
        return 'load';
      case 'rollout.complete':
        return 'good';
      case 'rollout.failed':
        return 'bad';
      case 'rollout.rolled-back':
        return 'warn';
      case 'rollout.started': case 'rollout.step':
        return 'rollout';
      case 'node.availability': case 'node.changed':
        return 'warn';
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
  const faultGroup = $('#fault-group');

  function renderChoices() {
    const svcs = state.services.map((s) => ({ value: s.name, label: s.name }));
    fillSelect(ngService, svcs, true);
    // A new group is the shop by default, not the first name in the list.
    if (!ngService._touched && svcs.some((x) => x.value === 'monolith')) ngService.value = 'monolith';
    describeService();
    fillSelect(ngPolicy, state.policies.map((p) => ({ value: p, label: p === 'none' ? 'none (no balancer)' : p })), true);
    if (!ngPolicy._touched && state.policies.includes('round-robin')) ngPolicy.value = 'round-robin';
    const names = [...state.groups.keys()].sort(collator.compare);
    const labelled = names.map((n) => ({ value: n, label: `${n} · ${state.groups.get(n).service || '?'}` }));

    // Load goes by default to where a shopper enters the shop: a gateway,
    // else a monolith.
    const prevLoad = lgGroup.value;
    fillSelect(lgGroup, labelled, true);
    if (!lgGroup._touched || !names.includes(prevLoad)) {
      const entry = (svc) => names.find((n) => state.groups.get(n).service === svc);
      const pick = entry('gateway') || entry('monolith');
      if (pick) lgGroup.value = pick;
    }
    lgGroup.disabled = names.length === 0;
    syncJourneyDefault();

    fillSelect(faultGroup, labelled, true);
    faultGroup.disabled = names.length === 0;
    dirty.choices = false;
    renderFaultForm();
  }

  function describeService() {
    const s = state.services.find((x) => x.name === ngService.value);
    ngServiceDesc.textContent = s && s.description ? s.description : '';
  }

  // ---- load generator ------------------------------------------------------------------

  const loadReport = $('#load-report');
  const loadSummary = $('.load-summary', loadReport);
  const loadSpread = $('.load-spread', loadReport);
  const lgStop = $('#lg-stop');
  const lgJourney = $('#lg-journey');
  const lgPathsField = $('#lg-paths-field');
  let shownRun = null;

  // Journeys are the default for a group a shopper can walk through, until
  // the user says otherwise.
  function syncJourneyDefault() {
    if (!lgJourney._touched) {
      const g = state.groups.get(lgGroup.value);
      lgJourney.checked = !!g && SHOP_ENTRIES.includes(g.service);
    }
    setHidden(lgPathsField, lgJourney.checked);
  }

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
    renderJourneys(r);
    if (!r) {
      loadSummary.replaceChildren(el('p', 'muted', 'No load run yet.'));
      loadSpread.replaceChildren();
      return;
    }
    const spec = r.spec || {};
    const target = spec.target || (spec.targets || []).join(', ');
    const group = groupOfTarget(spec.target);
    const head = el('p', 'load-head');
    const badge = el('span', 'pill load-state', r.state);
    badge.dataset.state = r.state;
    const what = spec.journey || r.steps ? 'journeys' : '';
    head.append(badge, ` ${what}${group ? ' to ' + group : ''} ${target ? '(' + target + ')' : ''}`);

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
    loadSummary.replaceChildren(...parts);

    const by = Object.entries(r.byReplica || {}).sort((a, b) => collator.compare(a[0], b[0]));
    const spread = [];
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
      spread.push(el('h3', 'sub-heading', 'Spread by replica'), list);
    }
    loadSpread.replaceChildren(...spread);
  }

  // ---- journeys ------------------------------------------------------------------------

  // The journey table is built once, in the page, and patched in place, so
  // its bars glide from one second to the next.
  const journeysEl = $('#journeys');
  const journeysLive = $('#journeys-live');
  const jRecent = $('.j-recent', journeysEl);
  const jRecentPct = $('.j-pct', journeysEl);
  const jRecentIcon = $('.j-icon', journeysEl);
  const jRecentWord = $('.j-word', journeysEl);
  const jRecentText = $('.j-text', journeysEl);
  const jWhole = $('.j-whole', journeysEl);
  const jNotes = $('.journey-notes', journeysEl);
  const colRecent = $('.col-recent', journeysEl);
  const stepRows = new Map();
  for (const name of STEPS) {
    const row = $(`[data-step="${name}"]`, journeysEl);
    const recent = $('.st-recent', row);
    const bar = el('span', 'st-bar');
    bar.setAttribute('aria-hidden', 'true');
    const fill = el('span', 'st-fill');
    bar.append(fill);
    const pct = el('span', 'st-pct');
    const mark = el('span', 'st-mark');
    const icon = el('span', 'st-icon');
    icon.setAttribute('aria-hidden', 'true');
    const word = el('span', 'sr-only');
    mark.append(icon, word);
    recent.append(bar, pct, mark);
    stepRows.set(name, { row, fill, pct, icon, word, whole: $('.st-whole', row) });
  }
  let journeyRun = '';
  let journeyTones = {};

  // rate is the share of ok in ok + failed, less the incomplete carts (an
  // incomplete cart answered, but the journey cannot go on with it); null
  // when nothing was counted.
  function rate(c) {
    if (!c) return null;
    const n = c.ok + c.failed;
    return n > 0 ? Math.max(0, c.ok - c.inc) / n : null;
  }
  function toneOf(f) {
    if (f == null) return 'none';
    if (f >= 0.99) return 'good';
    if (f >= 0.9) return 'warn';
    return 'bad';
  }

  // recentCounts is the difference between the newest sample of run r and
  // the one RECENT_MS before it (or the oldest there is). For a run that
  // has ended, "newest" is when its counts last moved.
  function recentCounts(r) {
    const arr = state.samples.get(r.id);
    if (!arr || arr.length < 2) return null;
    let end = arr.length - 1;
    if (r.state !== 'running') while (end > 0 && sameCounts(arr[end - 1].c, arr[end].c)) end--;
    if (end === 0) return null;
    const cutoff = arr[end].t - RECENT_MS;
    let from = 0;
    for (let i = end - 1; i >= 0; i--) {
      if (arr[i].t <= cutoff) {
        from = i;
        break;
      }
    }
    const a = arr[from].c;
    const b = arr[end].c;
    const d = {};
    for (const k in b) {
      const x = { ok: b[k].ok - a[k].ok, failed: b[k].failed - a[k].failed, inc: b[k].inc - a[k].inc };
      d[k] = x.ok < 0 || x.failed < 0 || x.inc < 0 ? null : x;
    }
    return d;
  }

  function fmtRatePct(f) {
    if (f == null) return '–';
    const p = f * 100;
    return (p > 0 && p < 100 && (p < 1 || p > 99) ? p.toFixed(1) : p.toFixed(0)) + '%';
  }

  function renderJourneys(r) {
    const show = !!(r && r.steps);
    setHidden(journeysEl, !show);
    if (!show) return;
    if (journeyRun !== r.id) {
      journeyRun = r.id;
      journeyTones = {};
    }
    const running = r.state === 'running';
    setText(colRecent, running ? 'last 5 s' : 'its last 5 s');
    const whole = journeyCounts(r);
    const recent = recentCounts(r);
    const changes = [];
    for (const name of STEPS) {
      const v = stepRows.get(name);
      const fr = recent ? rate(recent[name]) : null;
      const fw = rate(whole[name]);
      const tone = toneOf(fr);
      setAttr(v.row, 'data-recent-rate', fr == null ? '' : String(+fr.toFixed(4)));
      setAttr(v.row, 'data-tone', tone);
      setAttr(v.row, 'data-whole-tone', toneOf(fw));
      setWidth(v.fill, fr == null ? 0 : fr);
      setText(v.pct, fmtRatePct(fr));
      setText(v.icon, TONE_MARK[tone]);
      setText(v.word, TONE_WORD[tone]);
      setText(v.whole, fmtRatePct(fw));
      setAttr(v.row, 'title', fr == null
        ? `${STEP_LABEL[name]}: no answers in the last 5 s${fw == null ? '' : `; ${fmtRatePct(fw)} ok over the whole run`}`
        : `${STEP_LABEL[name]}: ${fmtRatePct(fr)} ok in the last 5 s, ${fmtRatePct(fw)} over the whole run`);
      const prev = journeyTones[name];
      if (running && prev !== tone && tone !== 'none' && (prev === 'bad' || tone === 'bad')) {
        changes.push(tone === 'bad'
          ? `${STEP_LABEL[name]} is failing: ${fmtRatePct(fr)} in the last 5 seconds`
          : `${STEP_LABEL[name]} recovered: ${fmtRatePct(fr)} in the last 5 seconds`);
      }
      if (tone !== 'none') journeyTones[name] = tone;
    }
    // Screen readers hear when a step starts failing or recovers, not every
    // second's figures.
    if (changes.length) journeysLive.textContent = changes.join('. ') + '.';

    const fr = recent ? rate(recent.journey) : null;
    const fw = rate(whole.journey);
    const jt = toneOf(fr);
    setText(jRecentPct, fmtRatePct(fr));
    setText(jRecentIcon, TONE_MARK[jt]);
    setText(jRecentWord, `${TONE_WORD[jt]}: `);
    setAttr(jRecent, 'data-tone', jt);
    setText(jRecentText, `of journeys succeeded, ${running ? 'last 5 s' : 'its last 5 s'}`);
    const j = r.journeys || {};
    setText(jWhole, `whole run: ${fmtRatePct(fw)} of ${fmtNum((j.succeeded || 0) + (j.failed || 0))} ended journeys · ${fmtNum(j.started || 0)} started`);
    setAttr(jWhole, 'data-tone', toneOf(fw));

    const notes = [];
    const cart = (r.steps && r.steps.cart) || {};
    if (cart.incomplete > 0) {
      notes.push(`${fmtNum(cart.incomplete)} of ${fmtNum(cart.ok)} carts came back incomplete (whole run)`);
    }
    const errs = [];
    for (const name of STEPS) {
      const e = Object.entries((r.steps[name] && r.steps[name].errors) || {}).filter(([, n]) => n > 0);
      if (e.length) errs.push(`${STEP_LABEL[name]}: ${e.map(([k, n]) => `${k} ${fmtNum(n)}`).join(', ')}`);
    }
    if (errs.length) notes.push(`errors, whole run — ${errs.join(' · ')}`);
    setText(jNotes, notes.join('\n'));
    setHidden(jNotes, notes.length === 0);
  }

  // ---- the story: stages -----------------------------------------------------------------

  const storyEl = $('#story');
  const pickerEl = $('#stage-picker');
  const stageEl = $('#stage');
  const storyToggle = $('#story-toggle');
  const storyStatus = $('#story-status');
  const stageTitle = $('.stage-title', stageEl);
  const stageExpl = $('.stage-explanation', stageEl);
  const stageTry = $('.stage-try', stageEl);
  const stageTryBox = $('.stage-try-box', stageEl);
  const stageButtons = new Map();
  let pickerKey = '';
  let stageShown; // undefined until the first frame

  const refreshScenarios = refresher('/scenarios', (data) => {
    if (!data) return; // an older controller has no stages: the section stays hidden
    state.scenarios = (data.scenarios || []).slice().sort((a, b) => (a.stage - b.stage) || collator.compare(a.name, b.name));
    state.scenario = data.current || '';
    dirty.story = true;
  });

  function shortTitle(sc) {
    return (sc.title || '').replace(/^stage\s*\d+\s*[:.\-–]\s*/i, '') || sc.name;
  }

  function renderStory() {
    dirty.story = false;
    setHidden(storyEl, state.scenarios.length === 0);
    const key = state.scenarios.map((sc) => `${sc.name}\u0000${sc.stage}\u0000${sc.title}`).join('\u0001');
    if (key !== pickerKey) {
      pickerKey = key;
      const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.scenario : undefined;
      stageButtons.clear();
      pickerEl.replaceChildren(...state.scenarios.map((sc) => {
        const li = el('li');
        const b = el('button', 'stage-btn');
        b.type = 'button';
        b.dataset.action = 'scenario';
        b.dataset.scenario = sc.name;
        b.setAttribute('aria-label', sc.title || sc.name);
        const num = el('span', 'stage-num', String(sc.stage || '?'));
        num.setAttribute('aria-hidden', 'true');
        const name = el('span', 'stage-name', shortTitle(sc));
        name.setAttribute('aria-hidden', 'true');
        b.append(num, name);
        li.append(b);
        stageButtons.set(sc.name, b);
        return li;
      }));
      if (focused && stageButtons.has(focused)) stageButtons.get(focused).focus();
    }
    for (const [name, b] of stageButtons) {
      setAttr(b, 'aria-current', name === state.scenario ? 'step' : null);
      setAttr(b, 'aria-busy', name === state.scenarioPending ? 'true' : null);
      setAttr(b, 'aria-disabled', state.scenarioPending ? 'true' : null);
      const sc = state.scenarios.find((x) => x.name === name);
      setAttr(b, 'title', name === state.scenario
        ? `${sc.title}: the stage now running. Click to apply it again and undo your changes to its groups.`
        : `Apply ${sc.title}: its groups replace the ones running now.`);
    }
    const pending = state.scenarios.find((x) => x.name === state.scenarioPending);
    setText(storyStatus, pending ? `Applying ${pending.title}…` : '');

    const sc = state.scenarios.find((x) => x.name === state.scenario) || null;
    if (sc === stageShown) return;
    stageShown = sc;
    stageEl.dataset.scenario = sc ? sc.name : '';
    if (!sc) {
      setText(stageTitle, 'No stage running yet');
      setText(stageExpl, 'Pick a stage above to set up its groups and follow the story: each stage replaces the running groups with its own, and tells you what to look for.');
      stageTry.replaceChildren();
      setHidden(stageTryBox, true);
      return;
    }
    setText(stageTitle, sc.title || sc.name);
    setText(stageExpl, (sc.explanation || '').trim());
    stageTry.replaceChildren(...(sc.try || []).map((step) => el('li', null, step)));
    setHidden(stageTryBox, !(sc.try && sc.try.length));
  }

  // What applying a stage changed, in a line: "created gateway; deleted shop".
  function describeChanges(res) {
    if (!res) return 'done';
    const parts = [];
    const list = (verb, names) => {
      if (names && names.length) parts.push(`${verb} ${names.join(', ')}`);
    };
    list('created', res.created);
    list('updated', res.updated);
    list('deleted', res.deleted);
    if (!parts.length) parts.push('nothing to change');
    if (res.unchanged && res.unchanged.length) parts.push(`kept ${res.unchanged.join(', ')}`);
    return parts.join('; ');
  }

  async function applyScenario(name) {
    if (state.scenarioPending) return;
    const sc = state.scenarios.find((x) => x.name === name);
    const title = sc ? sc.title : name;
    state.scenarioPending = name;
    dirty.story = true;
    schedule();
    try {
      const res = await api('PUT', '/scenario', { name });
      state.scenario = (res && res.scenario) || name;
      notify(`${title} applied: ${describeChanges(res)}.`, 'ok');
    } catch (err) {
      notify(`Applying ${title} failed: ${err.message}`, 'error');
    }
    state.scenarioPending = '';
    dirty.story = true;
    schedule();
    refreshScenarios();
  }

  pickerEl.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-action="scenario"]');
    if (b) applyScenario(b.dataset.scenario);
  });

  const STORY_KEY = 'flotilla.story.collapsed';
  function setStoryOpen(open, save) {
    setHidden(stageEl, !open);
    storyToggle.setAttribute('aria-expanded', String(open));
    storyToggle.textContent = open ? 'Hide details' : 'Show details';
    storyEl.classList.toggle('collapsed', !open);
    if (save) {
      try { localStorage.setItem(STORY_KEY, open ? '0' : '1'); } catch (err) { /* private mode */ }
    }
  }
  storyToggle.addEventListener('click', () => setStoryOpen(stageEl.hidden, true));
  try {
    if (localStorage.getItem(STORY_KEY) === '1') setStoryOpen(false, false);
  } catch (err) { /* no storage: stays open */ }

  // ---- faults --------------------------------------------------------------------------

  const faultForm = $('#fault-form');
  const faultKind = $('#fault-kind');
  const faultReplica = $('#fault-replica');
  const faultFeature = $('#fault-feature');
  const faultLatency = $('#fault-latency');
  const faultRate = $('#fault-rate');
  const faultMessages = $('#fault-messages');
  const faultPreview = $('#fault-preview');
  const faultError = $('#fault-error');
  const faultInject = $('[data-action="inject-fault"]', faultForm);
  const faultsEl = $('#faults');
  const faultsEmpty = $('#faults-empty');
  const faultItems = new Map(); // id -> li
  let faultsOn = new Map(); // replica name -> what is done to it, for its tile
  const FEATURE_KINDS = ['crash-feature', 'latency', 'errors'];
  const WHOLE_KINDS = ['kill', 'pause', 'partition'];

  const refreshFaults = refresher('/faults', (data) => {
    if (!data) return;
    state.faults = data.faults || [];
    dirty.faults = true;
  });

  // renderFaultForm shows the fields the chosen kind takes and says in a
  // sentence what injecting would do.
  function renderFaultForm() {
    dirty.faultForm = false;
    const kind = faultKind.value;
    const g = state.groups.get(faultGroup.value);
    const reps = g ? (g.replicas || []).filter((r) => r.state === 'running' || r.state === 'paused')
      .map((r) => r.name).sort(collator.compare) : [];
    const whole = WHOLE_KINDS.includes(kind);
    // One replica for whole-replica faults, every replica for feature faults:
    // as the controller does with no replica named.
    fillSelect(faultReplica, [{ value: '', label: whole ? 'any one' : 'all' }]
      .concat(reps.map((n) => ({ value: n, label: n }))), true);
    faultReplica.disabled = !g;

    const needsFeature = FEATURE_KINDS.includes(kind);
    setHidden($('#fault-feature-field'), !needsFeature);
    setHidden($('#fault-latency-field'), kind !== 'latency' && kind !== 'slow-consumer');
    setHidden($('#fault-messages-field'), kind !== 'poison');
    setHidden($('#fault-rate-field'), kind !== 'errors');
    const feats = FEATURES.map((f) => ({ value: f, label: f }));
    if (kind !== 'crash-feature') feats.unshift({ value: '', label: 'every path' });
    const prevFeature = faultFeature.value;
    fillSelect(faultFeature, feats, true);
    if (kind === 'crash-feature' && !prevFeature) faultFeature.value = g && FEATURES.includes(g.service) ? g.service : 'deals';
    // A group that serves one feature is broken in that feature, unless the
    // user picks another.
    if (g && faultFeature._group !== g.name) {
      faultFeature._group = g.name;
      if (FEATURES.includes(g.service)) faultFeature.value = g.service;
    }
    faultInject.disabled = !g;

    const group = g ? g.name : 'the group';
    const rep = faultReplica.value;
    const where = rep || `every replica of ${group}`;
    const feature = faultFeature.value;
    const what = feature ? `${feature} requests` : 'every request';
    let text = '';
    switch (kind) {
      case 'kill':
        text = `Kills ${rep || 'one replica of ' + group} at once, like a crash. The controller notices and starts a replacement.`;
        break;
      case 'pause':
        text = `Freezes ${rep || 'one replica of ' + group}: it stays up but answers nothing until you revert the fault.`;
        break;
      case 'partition':
        text = `Cuts ${rep || 'one replica of ' + group} off the network until you revert: nothing reaches it, and it reaches nothing.`;
        break;
      case 'crash-feature':
        text = `On ${where}, the next ${feature || 'feature'} request panics and kills the whole process.`;
        break;
      case 'latency':
        text = `Adds ${faultLatency.value || '?'} ms to ${what} on ${where}, until you revert.`;
        break;
      case 'poison':
        text = `On ${where}, the next ${faultMessages.value || '?'} new messages fail at every delivery, until you revert: after their attempts they become dead letters.`;
        break;
      case 'slow-consumer':
        text = `${where} takes ${faultLatency.value || '?'} ms more for each message, until you revert: the lag on the bus grows, checkout does not wait.`;
        break;
      case 'errors': {
        const f = parseFloat(faultRate.value);
        text = `${isFinite(f) ? fmtRatePct(f) : '?'} of ${what} on ${where} fail with an error 500, until you revert.`;
        break;
      }
      default:
        text = '';
    }
    if (!g) text = state.groups.size ? 'Pick a group to break.' : 'Nothing to break yet: start a stage or create a group.';
    setText(faultPreview, text);
  }

  for (const node of [faultKind, faultGroup, faultReplica, faultFeature, faultLatency, faultRate, faultMessages]) {
    node.addEventListener('input', () => { dirty.faultForm = true; schedule(); });
    node.addEventListener('change', () => { dirty.faultForm = true; schedule(); });
  }

  faultForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (faultInject._busy) return;
    // The choices may have changed since the last frame drew them.
    renderFaultForm();
    const kind = faultKind.value;
    const group = faultGroup.value;
    if (!group) {
      showFaultError('Pick a group first: start a stage or create a group.');
      return;
    }
    const body = { kind, group };
    if (faultReplica.value) body.replica = faultReplica.value;
    if (FEATURE_KINDS.includes(kind) && faultFeature.value) body.feature = faultFeature.value;
    if (kind === 'poison') {
      const n = Number(faultMessages.value);
      if (!Number.isInteger(n) || n < 1) {
        showFaultError('Messages is a whole number of messages to fail, like 1.');
        faultMessages.focus();
        return;
      }
      body.messages = n;
    }
    if (kind === 'latency' || kind === 'slow-consumer') {
      const ms = Number(faultLatency.value);
      if (!Number.isInteger(ms)) {
        showFaultError('Latency is a whole number of milliseconds, like 300.');
        faultLatency.focus();
        return;
      }
      body.latencyMs = ms;
    }
    if (kind === 'errors') {
      const f = Number(faultRate.value);
      if (faultRate.value.trim() === '' || !isFinite(f)) {
        showFaultError('The error rate is a number from 0 to 1, like 0.5 for half the requests.');
        faultRate.focus();
        return;
      }
      body.errorRate = f;
    }
    faultInject._busy = true;
    faultInject.setAttribute('aria-busy', 'true');
    try {
      const f = await api('POST', '/faults', body);
      showFaultError('');
      notify(f && f.message ? `Fault injected: ${f.message}` : `Injected ${kind} on ${group}`, 'ok');
      if (f && f.id && !state.faults.some((x) => x.id === f.id)) {
        state.faults.unshift(f);
        dirty.faults = true;
        schedule();
      }
    } catch (err) {
      showFaultError(err.message);
      notify(`Injecting ${kind} on ${group} failed: ${err.message}`, 'error');
    }
    faultInject._busy = false;
    faultInject.removeAttribute('aria-busy');
    refreshFaults();
  });

  function showFaultError(msg) {
    faultError.textContent = msg ? `Not injected: ${msg}` : '';
    faultError.hidden = !msg;
  }

  function faultItem(f) {
    const li = el('li', 'fault');
    li.dataset.faultId = f.id;
    const head = el('div', 'fault-head');
    const kind = el('span', 'fault-kind', f.kind);
    const where = el('span', 'fault-where', f.group || '');
    const time = el('time', 'fault-time');
    head.append(kind, where, time);
    const msg = el('p', 'fault-msg');
    const btn = el('button', 'btn small');
    btn.type = 'button';
    btn.dataset.action = 'revert-fault';
    btn.dataset.fault = f.id;
    li.append(head, msg, btn);
    li._v = { kind, where, time, msg, btn };
    return li;
  }

  function patchFault(li, f) {
    const v = li._v;
    const active = f.active !== false;
    setAttr(li, 'data-kind', f.kind || '');
    setAttr(li, 'data-active', String(active));
    setText(v.kind, active ? f.kind : `${f.kind} · done`);
    const reps = (f.replicas || []).join(', ');
    setText(v.where, reps ? `${f.group}: ${reps}` : (f.group || ''));
    setText(v.time, f.created ? `since ${fmtTime(f.created)}` : '');
    if (f.created) setAttr(v.time, 'datetime', f.created);
    setText(v.msg, f.message || f.kind);
    setText(v.btn, active ? 'Revert' : 'Clear');
    setAttr(v.btn, 'aria-label', `${active ? 'Revert' : 'Clear'} fault ${f.id}: ${f.message || f.kind}`);
    setAttr(v.btn, 'title', active ? 'Undo this fault' : 'A kill is over once done: clear it from the list');
  }

  // faultLabel is a fault in a few words, for the tile it acts on.
  function faultLabel(f) {
    switch (f.kind) {
      case 'latency': return `+${f.latencyMs} ms${f.feature ? ' on ' + f.feature : ''}`;
      case 'errors': return `${fmtRatePct(f.errorRate)} errors${f.feature ? ' on ' + f.feature : ''}`;
      case 'poison': return `poison: next ${f.messages} messages`;
      case 'slow-consumer': return `+${f.latencyMs} ms a message`;
      case 'crash-feature': return `${f.feature} crashes`;
      case 'partition': return 'cut off the network';
      case 'pause': return 'fault: paused';
      default: return `fault: ${f.kind}`;
    }
  }

  function renderFaults() {
    dirty.faults = false;
    // Tiles say what is done to their replica.
    const on = new Map();
    for (const f of state.faults) {
      if (!f || f.active === false) continue;
      for (const name of f.replicas || []) on.set(name, (on.has(name) ? on.get(name) + ', ' : '') + faultLabel(f));
    }
    const touched = new Set([...on.keys(), ...faultsOn.keys()].filter((n) => on.get(n) !== faultsOn.get(n)));
    faultsOn = on;
    if (touched.size) {
      for (const [name, c] of cards) {
        for (const t of touched) {
          if (c.tiles.has(t)) dirty.groups.add(name);
        }
      }
      if (dirty.groups.size) renderGroups();
    }
    const seen = new Set();
    const order = [];
    for (const f of state.faults) {
      if (!f || !f.id) continue;
      seen.add(f.id);
      let li = faultItems.get(f.id);
      if (!li) {
        li = faultItem(f);
        faultItems.set(f.id, li);
      }
      patchFault(li, f);
      order.push(li);
    }
    // A reverted fault's button may hold focus: hand it to the next one, or
    // to the Inject button, rather than lose it.
    let refocus = null;
    for (const [id, li] of faultItems) {
      if (seen.has(id)) continue;
      if (li.contains(document.activeElement)) {
        const i = [...faultsEl.children].indexOf(li);
        const next = [...faultsEl.children].slice(i + 1).concat([...faultsEl.children].slice(0, i).reverse())
          .find((x) => seen.has(x.dataset.faultId));
        refocus = next ? $('button', next) : faultInject;
      }
      faultItems.delete(id);
    }
    reorder(faultsEl, order);
    setHidden(faultsEmpty, order.length > 0);
    if (refocus) refocus.focus();
  }

  faultsEl.addEventListener('click', async (e) => {
    const btn = e.target.closest('button[data-action="revert-fault"]');
    if (!btn || btn.getAttribute('aria-busy')) return;
    const id = btn.dataset.fault;
    const f = state.faults.find((x) => x.id === id);
    btn.setAttribute('aria-busy', 'true');
    try {
      const done = await api('DELETE', `/faults/${enc(id)}`);
      const msg = (done && done.message) || (f && f.message) || id;
      notify(`Reverted: ${msg}`, 'ok');
      state.faults = state.faults.filter((x) => x.id !== id);
      dirty.faults = true;
      schedule();
    } catch (err) {
      notify(`Reverting ${id} failed: ${err.message}`, 'error');
    }
    btn.removeAttribute('aria-busy');
    refreshFaults();
  });

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
    card.policyPending = true;
    const spec = await roPanel.fullSpec(g);
    spec.balancer.policy = sel.value;
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

  ngService.addEventListener('change', () => { ngService._touched = true; describeService(); });
  lgGroup.addEventListener('change', () => {
    lgGroup._touched = true;
    syncJourneyDefault();
  });
  lgJourney.addEventListener('change', () => {
    lgJourney._touched = true;
    syncJourneyDefault();
  });
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
    const journey = lgJourney.checked;
    const paths = journey ? [] : $('#lg-paths').value.split(',').map((p) => p.trim()).filter(Boolean);
    const body = { group };
    if (Number.isInteger(rate) && rate > 0) body.rate = rate;
    if (duration) body.duration = duration;
    if (Number.isInteger(shoppers) && shoppers > 0) body.shoppers = shoppers;
    if (journey) body.journey = true; // a journey run takes no paths
    if (paths.length) body.paths = paths;
    const r = await act(`Starting ${journey ? 'shopper journeys' : 'load'} on ${group}`, 'POST', '/load', body);
    if (r && r.id) {
      state.myRun = r.id;
      putLoad(r);
      dirty.loads = true;
      schedule();
    }
  });

  lgStop.addEventListener('click', async () => {
    const r = shownRun;
    if (!r || r.state !== 'running') return;
    const final = await act(`Stopping load run ${r.id}`, 'DELETE', `/load/${enc(r.id)}`);
    if (final && final.id) {
      putLoad(final);
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
  dirty.faults = true;
  dirty.story = true;
  refreshBus();
  schedule();
  connect();
})();
