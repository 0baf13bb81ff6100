// Flotilla's dashboard: the nodes view, on every stage.
//
// One column per machine the runtime places replicas on: its name, role
// (and the leader's mark), state, availability, CPUs and memory, holding
// its replicas as small tiles coloured by group. On the swarm runtime each
// node has a Drain or an Activate button (PUT /api/v1/nodes/{id}); on the
// engine runtime there is one node, the local engine, which says so and
// has none. Replicas that wait for a node are shown apart.
//
// Everything comes from the stream: the snapshot's nodes, then a "nodes"
// message whenever a node or which replicas are on which node changed.
// Columns and tiles are kept by node ID and replica name and patched in
// place; a replica that moves is the same tile moved to its new column,
// so nothing else is redrawn and nothing flickers.
//
// app.js loads this script first and calls flotillaNodes with its helpers;
// what it returns takes the nodes and draws them in #nodes.
'use strict';

window.flotillaNodes = function (h) {
  const { setText, setAttr, setHidden, fromTemplate, uid, collator, act, fmtMiB } = h;
  const enc = encodeURIComponent;
  // Group colours: the number of hues style.css defines (--g0 to --g7).
  const HUES = 8;
  const STATE_ICON = { ready: '✓', down: '✕', disconnected: '✕', unknown: '?' };
  const AVAIL_TEXT = { active: 'active', pause: 'paused', drain: 'draining' };
  const AVAIL_TITLE = {
    active: 'takes new replicas',
    pause: 'keeps its replicas and takes no new ones',
    drain: 'its replicas move to other nodes; it takes no new ones',
  };

  const root = document.getElementById('nodes');
  const summary = document.getElementById('nodes-summary');
  const note = document.getElementById('nodes-note');
  const errorEl = document.getElementById('nodes-error');
  const cols = document.getElementById('nodes-cols');
  const waiting = document.getElementById('nodes-waiting');
  const waitingTiles = waiting.querySelector('.node-tiles');

  let st = null; // the last NodesStatus
  let dirty = false;
  const views = new Map(); // node ID -> column view
  const tiles = new Map(); // replica name -> tile <li>
  const hues = new Map(); // group -> hue number, kept while the page lives

  // set takes a NodesStatus from the snapshot, a nodes message or GET
  // /api/v1/nodes.
  function set(next) {
    if (!next || typeof next !== 'object' || !Array.isArray(next.nodes)) return;
    st = next;
    dirty = true;
  }

  // setNode takes one node as PUT answered it, until the stream confirms.
  function setNode(n) {
    if (!st || !n || !n.id) return;
    const i = st.nodes.findIndex((x) => x.id === n.id);
    if (i < 0) return;
    st = Object.assign({}, st, { nodes: st.nodes.slice() });
    st.nodes[i] = Object.assign({}, st.nodes[i], { availability: n.availability });
    dirty = true;
  }

  // hueOf gives each group its colour: the next free hue, in the order the
  // groups are first seen, sorted by name within one reading.
  function hueOf(group) {
    let hue = hues.get(group);
    if (hue === undefined) {
      hue = hues.size % HUES;
      hues.set(group, hue);
    }
    return hue;
  }

  function fmtCPUs(nano) {
    if (!nano || !isFinite(nano)) return '';
    const n = nano / 1e9;
    return `${+n.toFixed(2)} ${n === 1 ? 'CPU' : 'CPUs'}`;
  }
  function fmtMemory(bytes) {
    if (!bytes || !isFinite(bytes)) return '';
    if (bytes >= 1073741824) return (bytes / 1073741824).toFixed(1) + ' GiB';
    return fmtMiB(bytes);
  }

  function makeColumn(id) {
    const li = fromTemplate('tpl-node');
    const $ = (sel) => li.querySelector(sel);
    li.dataset.node = id;
    const name = $('.node-name');
    name.id = uid('node');
    li.setAttribute('aria-labelledby', name.id);
    const v = {
      el: li, name, id,
      leader: $('.node-leader'),
      role: $('.node-role'),
      stateIcon: $('.node-state-icon'),
      stateText: $('.node-state-text'),
      avail: $('.node-avail'),
      res: $('.node-res'),
      local: $('.node-local'),
      tiles: $('.node-tiles'),
      empty: $('.node-empty'),
      actions: $('.node-actions'),
      drain: $('[data-action="node-drain"]'),
      activate: $('[data-action="node-activate"]'),
      node: null,
    };
    v.tiles.setAttribute('aria-label', 'replicas');
    v.drain.addEventListener('click', () => change(v, 'drain'));
    v.activate.addEventListener('click', () => change(v, 'active'));
    return v;
  }

  async function change(v, availability) {
    const n = v.node;
    if (!n) return;
    const btn = availability === 'drain' ? v.drain : v.activate;
    btn.disabled = true;
    const verb = availability === 'drain' ? 'Draining' : 'Activating';
    const done = await act(`${verb} node ${n.name}`, 'PUT', `/nodes/${enc(n.id)}`, { availability });
    btn.disabled = false;
    if (done) {
      setNode(done);
      h.redraw();
    }
  }

  function makeTile(r) {
    const li = document.createElement('li');
    li.className = 'node-tile';
    const name = document.createElement('span');
    name.className = 'node-tile-name';
    li.appendChild(name);
    const state = document.createElement('span');
    state.className = 'node-tile-state';
    li.appendChild(state);
    li.dataset.nodeReplica = r.name;
    return li;
  }

  function patchTile(li, r) {
    setAttr(li, 'data-tile-group', r.group);
    setAttr(li, 'data-hue', String(hueOf(r.group)));
    setAttr(li, 'data-state', r.state || '');
    setAttr(li, 'title', `${r.name} of group ${r.group}: ${r.state || 'unknown'}${r.id ? ' · ' + r.id.slice(0, 12) : ''}`);
    setText(li.firstChild, r.name);
    // A running replica needs no word; any other state is said.
    const other = r.state && r.state !== 'running' ? r.state : '';
    setText(li.lastChild, other);
    setHidden(li.lastChild, !other);
  }

  // placeTiles makes list hold exactly reps' tiles, in order, moving a
  // tile from wherever it was and making only the ones that are new.
  function placeTiles(list, reps, seen) {
    const want = reps.slice().sort((a, b) => collator.compare(a.group, b.group) || collator.compare(a.name, b.name));
    let cur = list.firstElementChild;
    for (const r of want) {
      if (!r || !r.name || seen.has(r.name)) continue;
      seen.add(r.name);
      let li = tiles.get(r.name);
      if (!li) {
        li = makeTile(r);
        tiles.set(r.name, li);
      }
      patchTile(li, r);
      if (li === cur) {
        cur = cur.nextElementSibling;
      } else {
        list.insertBefore(li, cur);
      }
    }
    // What is left here is gone, or moved to a later column, which puts
    // the same tile back in its place within this frame.
    while (cur) {
      const next = cur.nextElementSibling;
      cur.remove();
      cur = next;
    }
  }

  function patchColumn(v, n, engine) {
    v.node = n;
    setAttr(v.el, 'data-state', n.state || 'unknown');
    setAttr(v.el, 'data-availability', n.availability || '');
    setAttr(v.el, 'data-role', n.role || '');
    setText(v.name, n.name || n.id);
    setHidden(v.leader, !n.leader);
    setText(v.role, n.role === 'engine' ? 'local engine' : (n.role || ''));
    setText(v.stateIcon, STATE_ICON[n.state] || '?');
    setText(v.stateText, n.state || 'unknown');
    setText(v.avail, AVAIL_TEXT[n.availability] || n.availability || '');
    setAttr(v.avail, 'title', AVAIL_TITLE[n.availability] || null);
    setText(v.res, [fmtCPUs(n.nanoCPUs), fmtMemory(n.memoryBytes)].filter(Boolean).join(' · '));
    setHidden(v.local, !engine);
    setHidden(v.actions, engine);
    const draining = n.availability === 'drain' || n.availability === 'pause';
    setHidden(v.drain, engine || draining);
    setHidden(v.activate, engine || !draining);
    for (const s of v.el.querySelectorAll('.node-btn-name')) setText(s, ` ${n.name || n.id}`);
    setHidden(v.empty, (n.replicas || []).length > 0);
  }

  function render() {
    if (!dirty) return;
    dirty = false;
    setHidden(root, !st);
    if (!st) return;
    const engine = st.runtime !== 'swarm';
    setAttr(root, 'data-runtime', st.runtime || '');
    const nodes = st.nodes;
    // Hues follow the groups' names, so a reload colours them the same.
    const groups = new Set();
    for (const n of nodes) for (const r of n.replicas || []) groups.add(r.group);
    for (const r of st.unassigned || []) groups.add(r.group);
    for (const g of [...groups].sort(collator.compare)) hueOf(g);

    let reps = 0;
    for (const n of nodes) reps += (n.replicas || []).length;
    const ready = nodes.filter((n) => n.state === 'ready').length;
    setText(summary, engine
      ? `engine runtime · one local engine · ${reps} ${reps === 1 ? 'replica' : 'replicas'}`
      : `swarm runtime · ${nodes.length} ${nodes.length === 1 ? 'node' : 'nodes'}, ${ready} ready · ${reps} ${reps === 1 ? 'replica' : 'replicas'}`);
    setText(note, engine ? '' : 'Drain a node and watch its replicas move to the others; Activate lets it take new ones again.');
    setHidden(note, engine);
    setText(errorEl, st.error ? `The controller could not read the nodes just now (${st.error}); this is its last good reading.` : '');
    setHidden(errorEl, !st.error);

    const alive = new Set(nodes.map((n) => n.id));
    for (const [id, v] of views) {
      if (!alive.has(id)) {
        v.el.remove();
        views.delete(id);
      }
    }
    const order = [];
    for (const n of nodes) {
      let v = views.get(n.id);
      if (!v) {
        v = makeColumn(n.id);
        views.set(n.id, v);
      }
      patchColumn(v, n, engine);
      order.push(v.el);
    }
    // Columns in the controller's order: managers first, then by name.
    let cur = cols.firstElementChild;
    for (const e of order) {
      if (e === cur) cur = cur.nextElementSibling;
      else cols.insertBefore(e, cur);
    }
    while (cur) {
      const next = cur.nextElementSibling;
      cur.remove();
      cur = next;
    }
    const seen = new Set();
    for (const n of nodes) placeTiles(views.get(n.id).tiles, n.replicas || [], seen);
    placeTiles(waitingTiles, st.unassigned || [], seen);
    setHidden(waiting, !(st.unassigned || []).length);
    for (const [name, li] of tiles) {
      if (!seen.has(name)) {
        li.remove();
        tiles.delete(name);
      }
    }
  }

  return { set, render, isDirty: () => dirty };
};
