// Flotilla's dashboard: rollouts, drawn inside each group's card.
//
// A group's card gets a version control (version, v3's flaw, strategy) that
// sends the group's whole spec back with the new version, and, while a
// rollout runs or for a while after it ended, a strip that shows it: the
// strategy, revision and versions from → to, how far it got, each
// version's share of the traffic and of failed answers, its status and why
// it failed, with Pause/Resume and Roll back. Everything comes from the
// group's status (GroupStatus.rollout) that the stream delivers; nothing
// here polls.
//
// app.js loads this script first and calls flotillaRollout with its helpers;
// what it returns makes and patches the strip and the control of one card.
'use strict';

window.flotillaRollout = function (h) {
  const { el, setText, setAttr, setHidden, setWidth, fmtPct, fmtTime } = h;
  const enc = encodeURIComponent;
  // An ended rollout stays on its card this long after it finished.
  const SHOW_ENDED_MS = 5 * 60 * 1000;
  const VERSIONS = ['v1', 'v2', 'v3'];
  const VERSION_TEXT = { v1: 'v1 · first release', v2: 'v2 · good release', v3: 'v3 · bad release' };
  const FLAWS = ['errors', 'unready', 'crash'];
  const FLAW_TEXT = { errors: '30% of requests fail', unready: 'never ready', crash: 'crashes soon after start' };
  const STRATEGIES = ['rolling', 'recreate', 'blue-green', 'canary'];
  const STRATEGY_TITLE = {
    rolling: 'replace a few replicas at a time: new ones join once ready, old ones drain',
    recreate: 'stop every old replica, then start the new ones: downtime in between',
    'blue-green': 'start a full new set beside the old, then switch all traffic at once',
    canary: 'send a growing share of traffic to the new version, step by step',
  };
  const STATUS_ICON = { progressing: '↻', paused: '‖', complete: '✓', failed: '✗', 'rolled-back': '↶', superseded: '⤳' };

  // versionKey is the release of a version label: "v3" of "v3 (errors)".
  function versionKey(label) {
    const m = /^v\d+/.exec(label || '');
    return m ? m[0] : '';
  }
  // parseVersion splits a label like "v3 (errors)" into version and flaw.
  function parseVersion(label) {
    const m = /^(v\d+)(?:\s*\(([^)]*)\))?/.exec(label || '');
    return m ? { version: m[1], flaw: m[2] || '' } : { version: 'v1', flaw: '' };
  }
  function active(r) {
    return !!r && (r.status === 'progressing' || r.status === 'paused');
  }
  function option(value, text, title) {
    const o = el('option', null, text);
    o.value = value;
    if (title) o.title = title;
    return o;
  }
  function versionChip(cls, label) {
    const s = el('span', 'ver ' + cls, label || '–');
    s.dataset.version = versionKey(label);
    return s;
  }

  // ---- the strip -----------------------------------------------------------

  // Ended rollouts leave the card on their own: one timer per group asks
  // app.js to redraw the card when its rollout's time is up.
  const expiry = new Map();

  // shows reports whether g's card shows a rollout strip now.
  function shows(g) {
    const r = g.rollout;
    if (!r) return false;
    if (active(r)) return true;
    const end = Date.parse(r.finished || r.updated || '');
    if (!isFinite(end)) return false;
    const left = end + SHOW_ENDED_MS - Date.now();
    if (left <= 0) return false;
    if (!expiry.has(g.name)) {
      expiry.set(g.name, setTimeout(() => {
        expiry.delete(g.name);
        h.redraw(g.name);
      }, left + 100));
    }
    return true;
  }

  function make(name) {
    const root = h.fromTemplate('tpl-rollout');
    const $ = (sel) => root.querySelector(sel);
    root.dataset.rollout = name;
    const title = $('.ro-heading');
    title.id = h.uid('ro');
    root.setAttribute('aria-labelledby', title.id);
    const v = {
      el: root,
      name,
      strategy: $('.ro-strategy'),
      revs: $('.ro-revs'),
      from: $('.ro-from'),
      to: $('.ro-to'),
      status: $('.ro-status'),
      statusIcon: $('.ro-status-icon'),
      statusText: $('.ro-status-text'),
      rollback: $('.ro-rollback'),
      reason: $('.ro-reason'),
      bar: $('.ro-bar'),
      barFill: $('.ro-bar-fill'),
      progress: $('.ro-progress-text'),
      split: $('.ro-split'),
      splitNew: $('.ro-split-new'),
      splitOld: $('.ro-split-old'),
      traffic: $('.ro-traffic-text'),
      errors: $('.ro-errors'),
      errKey: null,
      detail: $('.ro-detail'),
      time: $('.ro-time'),
      pause: $('[data-action="rollout-pause"]'),
      resume: $('[data-action="rollout-resume"]'),
      back: $('[data-action="rollback"]'),
    };
    v.pause.setAttribute('aria-label', `Pause the rollout of ${name}`);
    v.resume.setAttribute('aria-label', `Resume the rollout of ${name}`);
    v.back.setAttribute('aria-label', `Roll ${name} back to its previous revision`);
    return v;
  }

  function patch(v, g) {
    const r = g.rollout;
    const root = v.el;
    const status = r.status || 'progressing';
    setAttr(root, 'data-status', status);
    setAttr(root, 'data-strategy', r.strategy || '');
    setText(v.strategy, r.strategy || 'rolling');
    setAttr(v.strategy, 'title', STRATEGY_TITLE[r.strategy] || null);
    setText(v.revs, r.from ? `revision ${r.from} → ${r.revision}` : `revision ${r.revision}`);
    patchChip(v.from, r.fromVersion || '?');
    patchChip(v.to, r.version || '?');
    setAttr(v.status, 'data-status', status);
    setText(v.statusIcon, STATUS_ICON[status] || '•');
    setText(v.statusText, status);
    setHidden(v.rollback, !r.rollback);
    const why = r.reason || '';
    setText(v.reason, why);
    setHidden(v.reason, !why);

    // Progress: new replicas available of the count wanted, and the
    // strategy's own milestone.
    const count = r.count || 0;
    const ready = r.newReady || 0;
    const frac = status === 'complete' ? 1 : (count ? ready / count : 0);
    setWidth(v.barFill, frac);
    setAttr(v.bar, 'aria-valuenow', Math.round(frac * 100));
    setAttr(v.bar, 'aria-valuetext', `${ready} of ${count} new replicas ready`);
    const parts = [`${ready} / ${count} new ready`];
    if (r.strategy === 'canary' && r.steps && r.steps.length) {
      parts.push(`step ${r.step || 1} of ${r.steps.length}: ${r.steps[(r.step || 1) - 1]}% of traffic`);
    } else if (r.strategy === 'blue-green') {
      parts.push(switched(r) ? 'traffic switched to the new set' : 'not switched yet');
    }
    if (r.old) parts.push(`${r.old} old left`);
    setText(v.progress, parts.join(' · '));
    setText(v.detail, r.progress || '');
    setHidden(v.detail, !r.progress);
    const at = r.finished || r.started;
    setText(v.time, at ? `${r.finished ? 'ended' : 'started'} ${fmtTime(at)}` : '');
    if (at) setAttr(v.time, 'datetime', at);

    // Traffic: the new version's share against the old one's.
    const t = shareNew(r, g);
    const pctNew = Math.round(t.share);
    setAttr(v.splitNew, 'data-version', versionKey(r.version));
    setAttr(v.splitOld, 'data-version', versionKey(r.fromVersion));
    setWidth(v.splitNew, pctNew / 100);
    setWidth(v.splitOld, 1 - pctNew / 100);
    setText(v.traffic, `${r.version || 'new'} ${pctNew}% · ${r.fromVersion || 'old'} ${100 - pctNew}%`);
    setAttr(v.split, 'title', t.how);
    setAttr(v.traffic, 'title', t.how);

    patchErrors(v, r);

    const on = active(r);
    setHidden(v.pause, !on || status === 'paused');
    setHidden(v.resume, status !== 'paused');
  }

  function patchChip(node, label) {
    setText(node, label);
    setAttr(node, 'data-version', versionKey(label));
  }

  function switched(r) {
    return !!r.switched && !r.switched.startsWith('0001-');
  }

  // shareNew is the new version's share of traffic in percent, and how it
  // is known: the balancer's split for a canary, the switch for blue-green,
  // else the ready replicas, among which the balancer spreads requests.
  function shareNew(r, g) {
    const status = r.status;
    if (status === 'complete') return { share: 100, how: 'the rollout is complete: all traffic on the new version' };
    if (status === 'rolled-back' || status === 'failed' || status === 'superseded') {
      return { share: 0, how: 'the rollout ended: the new version gets no traffic from it' };
    }
    if (r.strategy === 'canary') return { share: r.share || 0, how: 'the balancer sends this share of requests to the canary' };
    if (r.strategy === 'blue-green') {
      return switched(r)
        ? { share: 100, how: 'switched: the balancer sends every request to the new set' }
        : { share: 0, how: 'not switched: the balancer sends every request to the old set' };
    }
    const total = g.ready || 0;
    const share = total ? Math.min(100, (100 * (r.newReady || 0)) / total) : 0;
    return { share, how: 'the new version\'s ready replicas among all ready replicas, which share the requests' };
  }

  function patchErrors(v, r) {
    const rates = r.errorRates || {};
    const names = Object.keys(rates).sort();
    const key = names.map((n) => `${n}=${rates[n]}`).join('\u0001');
    if (key === v.errKey) return;
    v.errKey = key;
    if (!names.length) {
      v.errors.replaceChildren(el('span', 'muted', 'no answers counted yet'));
      return;
    }
    v.errors.replaceChildren(...names.map((n) => {
      const item = el('span', 'ro-err');
      item.dataset.version = versionKey(n);
      if (rates[n] >= 0.05) item.dataset.high = 'true';
      item.append(versionChip('ro-err-ver', n), el('span', 'ro-err-rate', fmtPct(rates[n] || 0)));
      item.title = `${n}: ${fmtPct(rates[n] || 0)} of its answers at the balancer failed over the last 10 s`;
      return item;
    }));
  }

  // ---- the version control -------------------------------------------------

  function makeControl(root, name) {
    const $ = (sel) => root.querySelector(sel);
    const c = {
      version: $('[data-action="version"]'),
      flaw: $('[data-action="flaw"]'),
      strategy: $('[data-action="strategy"]'),
      apply: $('[data-action="version-apply"]'),
    };
    c.version.replaceChildren(...VERSIONS.map((x) => option(x, VERSION_TEXT[x])));
    c.flaw.replaceChildren(...FLAWS.map((x) => option(x, FLAW_TEXT[x])));
    c.strategy.replaceChildren(...STRATEGIES.map((x) => option(x, x, STRATEGY_TITLE[x])));
    const id = h.uid('version');
    c.version.id = id;
    $('.version-label').htmlFor = id;
    c.version.setAttribute('aria-label', `Version of ${name}`);
    c.flaw.setAttribute('aria-label', `How v3 of ${name} goes wrong`);
    c.strategy.setAttribute('aria-label', `Rollout strategy of ${name}`);
    c.apply.setAttribute('aria-label', `Roll ${name} out to the chosen version`);
    $('.version-ctl').setAttribute('aria-label', `Roll out a version of ${name}`);
    return c;
  }

  // patchControl shows the group's version and strategy, except in selects
  // the user has changed and not yet applied.
  function patchControl(c, g) {
    const cur = parseVersion(g.version);
    const strategy = (g.rollout && g.rollout.strategy) || 'rolling';
    for (const [sel, value] of [[c.version, cur.version], [c.flaw, cur.flaw || 'errors'], [c.strategy, strategy]]) {
      if (sel.dataset.edited || document.activeElement === sel) continue;
      if (sel.value !== value && [...sel.options].some((o) => o.value === value)) sel.value = value;
    }
    setHidden(c.flaw, c.version.value !== 'v3');
  }

  // fullSpec is g's spec to send back with one thing changed. The status
  // does not carry the rollout settings; the current revision's spec does,
  // so they are kept when the API lists the group's revisions.
  async function fullSpec(g) {
    const spec = h.groupSpec(g);
    try {
      const data = await h.api('GET', `/groups/${enc(g.name)}/rollouts`);
      const rev = data && data.revisions && data.revisions[0];
      if (rev && rev.spec && rev.spec.rollout) spec.rollout = rev.spec.rollout;
    } catch (err) {
      // Without the history, keep what the status says: the strategy.
    }
    if (!spec.rollout && g.rollout && g.rollout.strategy) spec.rollout = { strategy: g.rollout.strategy };
    return spec;
  }

  async function applyVersion(name, c) {
    const g = h.group(name);
    if (!g || c.apply.getAttribute('aria-busy')) return;
    const version = c.version.value;
    const flaw = version === 'v3' ? c.flaw.value : '';
    const strategy = c.strategy.value;
    c.apply.setAttribute('aria-busy', 'true');
    const spec = await fullSpec(g);
    spec.version = version;
    if (flaw) spec.flaw = flaw;
    else delete spec.flaw;
    spec.rollout = Object.assign({}, spec.rollout, { strategy });
    const label = flaw ? `${version} (${flaw})` : version;
    const ok = await h.act(`Rolling ${name} out to ${label} (${strategy})`, 'PUT', `/groups/${enc(name)}`, spec);
    c.apply.removeAttribute('aria-busy');
    if (ok !== undefined) {
      for (const sel of [c.version, c.flaw, c.strategy]) delete sel.dataset.edited;
    }
    h.redraw(name);
  }

  // ---- commands --------------------------------------------------------------

  function attach(groupsEl, controlOf) {
    groupsEl.addEventListener('change', (e) => {
      const sel = e.target.closest('select[data-action="version"], select[data-action="flaw"], select[data-action="strategy"]');
      if (!sel) return;
      sel.dataset.edited = 'true';
      const name = sel.closest('[data-group]').dataset.group;
      const c = controlOf(name);
      if (c) setHidden(c.flaw, c.version.value !== 'v3');
    });
    groupsEl.addEventListener('click', async (e) => {
      const btn = e.target.closest('button[data-action]');
      if (!btn) return;
      const action = btn.dataset.action;
      if (!['version-apply', 'rollout-pause', 'rollout-resume', 'rollback'].includes(action)) return;
      const cardEl = btn.closest('[data-group]');
      if (!cardEl) return;
      const name = cardEl.dataset.group;
      if (action === 'version-apply') {
        const c = controlOf(name);
        if (c) applyVersion(name, c);
        return;
      }
      if (btn.getAttribute('aria-busy')) return;
      btn.setAttribute('aria-busy', 'true');
      if (action === 'rollback') {
        await h.act(`Rolling ${name} back`, 'POST', `/groups/${enc(name)}/rollback`);
      } else {
        const verb = action === 'rollout-pause' ? 'pause' : 'resume';
        await h.act(`${verb === 'pause' ? 'Pausing' : 'Resuming'} the rollout of ${name}`, 'POST', `/groups/${enc(name)}/rollout/${verb}`);
      }
      btn.removeAttribute('aria-busy');
    });
  }

  return { shows, make, patch, makeControl, patchControl, fullSpec, attach, versionKey };
};
