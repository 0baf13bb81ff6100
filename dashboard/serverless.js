// Flotilla's dashboard: the serverless panel of stage 8, one per group with
// autoscale settings, drawn inside the group's card.
//
// It shows what the autoscaler was told (in words), what it wants now, the
// group's count over the last minutes (so 0 → N → 0 is seen), the latest
// cold starts as waterfalls of their phases, how requests found the group
// (cold, from the warm pool, warm) and what the warm pool costs in memory.
// Everything comes from the group's status (GroupStatus.autoscale) that the
// stream delivers; nothing here polls.
//
// app.js loads this script first and calls flotillaServerless with its DOM
// helpers; what it returns makes and patches one panel per card.
'use strict';

window.flotillaServerless = function (h) {
  const { el, setText, setAttr, setHidden, fmtMs, fmtMiB, fmtTime } = h;
  const SHOW_COLD = 5; // cold starts drawn, newest first
  const SHOW_DECISIONS = 5;
  // The chart's viewBox is CHART_S units wide. Its x axis spans the history
  // the controller keeps (a point a second, up to 4 minutes), at least
  // MIN_SPAN_S, so the first minute is not squeezed into the right edge.
  const CHART_S = 240;
  const MIN_SPAN_S = 60;
  const CHART_H = 60;
  const MODE_TITLE = {
    stable: 'the average over the stable window decided',
    panic: 'a burst: the short panic window decided, and the group does not scale in while it lasts',
    idle: 'no requests for the idle time: back to the minimum',
    wake: 'a request arrived at zero and was held: wake one replica',
    bounds: 'kept within min and max',
  };

  function plural(n, one, many) {
    return `${n} ${n === 1 ? one : many}`;
  }
  function fmtSec(s) {
    if (s == null || !isFinite(s)) return '–';
    if (s >= 120 && s % 60 === 0) return `${s / 60} min`;
    return `${+s.toFixed(1)} s`;
  }
  // setPos places a bar along its track, in % of the track (CSSOM, which
  // the style-src policy allows).
  function setPos(node, left, width) {
    const l = Math.max(0, Math.min(100, left)).toFixed(2) + '%';
    const w = Math.max(0, Math.min(100 - parseFloat(l), width)).toFixed(2) + '%';
    if (node._l !== l) { node._l = l; node.style.left = l; }
    if (node._w !== w) { node._w = w; node.style.width = w; }
  }
  // ---- make --------------------------------------------------------------

  function make(name) {
    const root = h.fromTemplate('tpl-fn');
    const $ = (sel) => root.querySelector(sel);
    root.dataset.fn = name;
    const title = $('.fn-heading');
    title.id = h.uid('fn');
    root.setAttribute('aria-labelledby', title.id);
    const fig = (key) => {
      const d = $(`[data-count="${key}"]`);
      return { d, dt: d.querySelector('dt'), dd: d.querySelector('dd') };
    };
    return {
      el: root,
      panic: $('.fn-panic'),
      settings: $('.fn-settings'),
      figs: { want: fig('want'), serving: fig('serving'), pooled: fig('pooled'), load: fig('load'), held: fig('held') },
      sfigs: { cold: fig('cold'), pooled: fig('from-pool'), warm: fig('warm'), held: fig('held-total'), failed: fig('failed') },
      chart: $('.fn-chart'),
      grid: $('.fn-grid'),
      lines: { serving: $('polyline.fn-serving'), want: $('polyline.fn-want'), pooled: $('polyline.fn-pooled') },
      yTop: $('.fn-y-top'),
      xFrom: $('.fn-x-from'),
      cold: $('.fn-cold'),
      coldEmpty: $('.fn-cold-empty'),
      coldKey: null,
      pool: $('.fn-pool'),
      decisions: $('.fn-decisions'),
      decEmpty: $('.fn-dec-empty'),
      decKey: null,
      gridTop: -1,
    };
  }

  // ---- patch -------------------------------------------------------------

  function patch(v, g) {
    const a = g.autoscale;
    const s = a.settings || {};
    const w = a.windows || {};
    const pooled = (a.pool || []).length;
    setText(v.settings, describe(s, w));
    setHidden(v.panic, !a.panicking);
    setAttr(v.el, 'data-panicking', !!a.panicking);

    setText(v.figs.want.dd, String(a.want ?? 0));
    setText(v.figs.serving.dd, String(g.ready ?? 0));
    setText(v.figs.pooled.dd, String(pooled));
    if (s.trigger) {
      setText(v.figs.load.dt, 'pending');
      setAttr(v.figs.load.d, 'title', `messages on ${s.trigger} waiting for the group's consumer or not yet acknowledged`);
      setText(v.figs.load.dd, String(a.pending || 0));
    } else {
      const c = a.concurrency || 0;
      setText(v.figs.load.dt, 'in flight');
      setAttr(v.figs.load.d, 'title', 'requests in flight at the balancer at the last sample, held ones included');
      setText(v.figs.load.dd, Number.isInteger(c) || c >= 10 ? c.toFixed(0) : c.toFixed(1));
    }
    setText(v.figs.held.dd, String(a.held || 0));
    setAttr(v.figs.held.d, 'data-some', (a.held || 0) > 0);

    patchChart(v, a, s);

    const st = a.starts || {};
    setText(v.sfigs.cold.dd, String(st.cold || 0));
    setText(v.sfigs.pooled.dd, String(st.pooled || 0));
    setText(v.sfigs.warm.dd, String(st.warm || 0));
    setText(v.sfigs.held.dd, String(st.held || 0));
    setText(v.sfigs.failed.dd, String(st.failed || 0));
    setAttr(v.sfigs.failed.d, 'data-some', (st.failed || 0) > 0);

    const poolWant = s.warmPool || 0;
    let poolText;
    if (!poolWant) {
      poolText = 'No warm pool: every wake makes a new replica.';
    } else if (!pooled) {
      poolText = `Warm pool of ${poolWant}: empty now, refilling.`;
    } else {
      poolText = `Warm pool (${pooled} of ${poolWant}): ${a.pool.join(', ')}, paused, holding ${fmtMiB(a.poolMemBytes || 0)} of memory so a wake is a thaw, not a start.`;
    }
    setText(v.pool, poolText);
    setAttr(v.pool, 'data-pool', poolWant ? 'yes' : 'no');

    patchColdStarts(v, a.coldStarts || []);
    patchDecisions(v, a.decisions || []);
  }

  // describe is the group's settings in words.
  function describe(s, w) {
    const parts = [];
    parts.push(`${s.min ?? 0}–${s.max ?? 0} replicas${s.min === 0 ? ' (sleeps at zero)' : ''}`);
    if (s.trigger) {
      parts.push(`one replica per ${+(s.targetConcurrency || 5)} messages waiting on ${s.trigger}`);
    } else {
      parts.push(`target ${+(s.targetConcurrency || 0)} ${s.targetConcurrency === 1 ? 'request' : 'requests'} in flight per replica`);
    }
    parts.push(`down to ${s.min ?? 0} after ${fmtSec(w.idleAfter)} idle`);
    if (w.stable) parts.push(`averaged over ${fmtSec(w.stable)} (${fmtSec(w.panic)} in a burst)`);
    parts.push(s.warmPool ? `warm pool of ${plural(s.warmPool, 'paused replica', 'paused replicas')}` : 'no warm pool');
    return parts.join(' · ');
  }

  function patchChart(v, a, s) {
    const hist = a.history || [];
    let top = Math.max(1, (s.max || 0) + (s.warmPool || 0));
    for (const p of hist) top = Math.max(top, p.serving, p.want, p.pooled);
    if (v.gridTop !== top) {
      v.gridTop = top;
      // A faint line at each whole count (every few, for a large max).
      const step = top <= 6 ? 1 : Math.ceil(top / 5);
      let d = '';
      for (let n = step; n <= top; n += step) d += `M0 ${yOf(n, top).toFixed(1)}H${CHART_S}`;
      setAttr(v.grid, 'd', d);
      setText(v.yTop, String(top));
    }
    if (!hist.length) {
      for (const l of Object.values(v.lines)) setAttr(l, 'points', '');
      setAttr(v.chart, 'aria-label', 'replica count: no data yet');
      setText(v.xFrom, '');
      return;
    }
    const last = hist[hist.length - 1].t;
    const span = Math.round((last - hist[0].t) / 1000);
    const axis = Math.max(MIN_SPAN_S, span);
    const xOf = (t) => Math.max(0, CHART_S - ((last - t) / 1000) * (CHART_S / axis));
    for (const key of ['serving', 'want', 'pooled']) {
      setAttr(v.lines[key], 'points', steps(hist, key, xOf, top));
    }
    setText(v.xFrom, `${fmtSec(axis)} ago`);
    const peak = Math.max(...hist.map((p) => p.serving));
    const p = hist[hist.length - 1];
    setAttr(v.chart, 'aria-label', `replica count over the last ${fmtSec(span)}: now ${p.serving} serving, want ${p.want}, ${p.pooled} pooled; at most ${peak} serving`);
  }

  function yOf(n, top) {
    return CHART_H - 1 - (n / top) * (CHART_H - 4);
  }

  // steps draws a count as a step line: it holds its value until the next
  // point, as a replica count does. A lone point is a short dash.
  function steps(hist, key, xOf, top) {
    let out = '';
    let prevY = null;
    for (const p of hist) {
      const x = xOf(p.t).toFixed(1);
      const y = yOf(p[key] || 0, top).toFixed(1);
      if (prevY !== null && prevY !== y) out += ` ${x},${prevY}`;
      out += (out ? ' ' : '') + `${x},${y}`;
      prevY = y;
    }
    if (hist.length === 1) out = `${CHART_S - 4},${prevY} ${out}`;
    return out;
  }

  // patchColdStarts rebuilds the waterfalls when a cold start is added or
  // finishes; they are few and change seldom.
  function patchColdStarts(v, list) {
    const shown = list.slice(-SHOW_COLD).reverse();
    const key = shown.map((c) => `${c.at}|${c.totalMs}|${c.held}|${c.failed}|${c.status}|${(c.phases || []).length}`).join('\u0001');
    setHidden(v.coldEmpty, shown.length > 0);
    if (key === v.coldKey) return;
    v.coldKey = key;
    // One scale for all rows, so a thaw from the pool is seen to be
    // shorter than a start from zero.
    let scale = 1;
    for (const c of shown) {
      scale = Math.max(scale, c.totalMs || 0);
      for (const p of c.phases || []) scale = Math.max(scale, p.startMs + p.ms);
    }
    v.cold.replaceChildren(...shown.map((c) => coldRow(c, scale)));
  }

  function coldRow(c, scale) {
    const li = el('li', 'fn-cs');
    li.dataset.from = c.from || 'zero';
    const head = el('p', 'fn-cs-head');
    const from = el('span', 'fn-cs-from', c.from === 'pool' ? 'from the pool' : 'from zero');
    const total = el('span', 'fn-cs-total', fmtMs(c.totalMs));
    total.title = 'from the first request held to its answer';
    head.append(from, total);
    if (c.replica) head.append(el('code', 'fn-cs-replica', c.replica));
    const held = el('span', 'fn-cs-held', `${plural(c.held || 0, 'request', 'requests')} held`);
    head.append(held);
    if (c.failed) head.append(el('span', 'fn-cs-failed', `${c.failed} failed`));
    if (c.status && c.status !== 200) head.append(el('span', 'fn-cs-status', `answered ${c.status}`));
    if (c.at) {
      const t = el('time', 'fn-cs-at', fmtTime(c.at));
      t.dateTime = c.at;
      head.append(t);
    }
    const phases = el('ol', 'fn-phases');
    phases.setAttribute('aria-label', `phases of the cold start ${c.from === 'pool' ? 'from the pool' : 'from zero'}, ${fmtMs(c.totalMs)} in all`);
    for (const p of c.phases || []) {
      const row = el('li', 'fn-phase');
      row.dataset.phase = p.name;
      const name = el('span', 'fn-phase-name', p.name);
      const track = el('span', 'fn-track');
      track.setAttribute('aria-hidden', 'true');
      const bar = el('span', 'fn-bar');
      setPos(bar, (p.startMs / scale) * 100, (p.ms / scale) * 100);
      track.append(bar);
      const ms = el('span', 'fn-phase-ms', fmtMs(p.ms));
      ms.title = `from ${fmtMs(p.startMs)} to ${fmtMs(p.startMs + p.ms)} after the first request was held`;
      row.append(name, track, ms);
      phases.append(row);
    }
    li.append(head, phases);
    return li;
  }

  function patchDecisions(v, list) {
    const shown = list.slice(-SHOW_DECISIONS).reverse();
    const key = shown.map((d) => `${d.at}|${d.from}|${d.to}|${d.mode}`).join('\u0001');
    setHidden(v.decEmpty, shown.length > 0);
    if (key === v.decKey) return;
    v.decKey = key;
    v.decisions.replaceChildren(...shown.map((d) => {
      const li = el('li', 'fn-decision');
      li.dataset.mode = d.mode || '';
      const t = el('time', 'fn-dec-at', fmtTime(d.at));
      if (d.at) t.dateTime = d.at;
      const mode = el('span', 'fn-mode', d.mode || '?');
      mode.title = MODE_TITLE[d.mode] || '';
      const change = el('span', 'fn-dec-change', `${d.from} → ${d.to}`);
      li.append(t, mode, change, el('span', 'fn-dec-reason', d.reason || ''));
      return li;
    }));
  }

  return { make, patch };
};
