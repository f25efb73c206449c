// reelq dashboard: a small single-page app over the scheduler's /api. Pages are hash routes
// (#/overview, #/batches, #/batch/<id>, #/job/<id>, #/accounts, #/tenants) re-rendered every
// two seconds from fresh JSON. Everything user-supplied is inserted as text, never as HTML.
'use strict';

const POLL_MS = 2000;
let session = null;
let timer = null;
let renderSeq = 0;

// ---- DOM helpers -------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const svgNs = 'http://www.w3.org/2000/svg';
function sparkline(values) {
  const svg = document.createElementNS(svgNs, 'svg');
  const n = Math.max(values.length, 1);
  const max = Math.max(1, ...values);
  svg.setAttribute('viewBox', `0 0 ${n * 3} 28`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'completions per minute over the last hour');
  const base = document.createElementNS(svgNs, 'line');
  base.setAttribute('x1', 0);
  base.setAttribute('x2', n * 3);
  base.setAttribute('y1', 27.5);
  base.setAttribute('y2', 27.5);
  svg.append(base);
  values.forEach((v, i) => {
    if (!v) return;
    const r = document.createElementNS(svgNs, 'rect');
    const height = Math.max(1.5, (v / max) * 26);
    r.setAttribute('x', i * 3);
    r.setAttribute('y', 28 - height);
    r.setAttribute('width', 2.2);
    r.setAttribute('height', height);
    svg.append(r);
  });
  return svg;
}

const fmt = {
  int: (n) => (n ?? 0).toLocaleString('en-US'),
  // `n`: how many samples the figure comes from (none: a dash, not a zero).
  secs(s, n) {
    if (n === 0 || (n === undefined && !s)) return '—';
    if (s < 1) return `${Math.round(s * 1000)} ms`;
    if (s < 90) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
    return `${(s / 60).toFixed(1)} min`;
  },
  time: (ms) => (ms ? new Date(ms).toLocaleTimeString([], { hour12: false }) : '—'),
  datetime: (ms) => (ms ? new Date(ms).toLocaleString([], { hour12: false }) : '—'),
  ago(ms) {
    if (!ms) return '—';
    const s = Math.max(0, (Date.now() - ms) / 1000);
    if (s < 60) return `${Math.round(s)} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    return `${(s / 3600).toFixed(1)} h ago`;
  },
  pct: (x) => `${Math.round(x * 100)} %`,
  rate: (x) => (x >= 10 ? Math.round(x).toString() : (x || 0).toFixed(1)),
};

const chip = (state) => h('span', { class: `chip state-${state}`, text: state.toLowerCase() });

function progressBar(b, big) {
  const total = Math.max(b.total, 1);
  const bar = h('div', { class: big ? 'bar big' : 'bar', role: 'progressbar' });
  for (const part of ['succeeded', 'failed', 'cancelled', 'running']) {
    const seg = h('span', { class: part, title: `${part}: ${b[part]}` });
    seg.style.width = `${(100 * b[part]) / total}%`;
    bar.append(seg);
  }
  return bar;
}

// `plain`: a share, not a quota (no warning colours when full).
function meter(used, limit, plain) {
  const frac = limit > 0 ? Math.min(1, used / limit) : 0;
  const m = h('div', { class: `meter${plain ? '' : frac >= 1 ? ' full' : frac >= 0.8 ? ' hot' : ''}` });
  const fill = h('span');
  fill.style.width = `${frac * 100}%`;
  m.append(fill);
  return m;
}

// ---- API ---------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const init = { credentials: 'same-origin', headers: {}, ...options };
  if (init.method === 'POST' && session && session.csrf) init.headers['X-CSRF-Token'] = session.csrf;
  const res = await fetch(path, init);
  let body = null;
  try {
    body = await res.json();
  } catch (_) {
    body = null;
  }
  if (!res.ok) throw new ApiError(res.status, (body && body.error) || res.statusText);
  return body;
}

// ---- pages -------------------------------------------------------------------------------------

function pageHead(title, sub, crumbs) {
  return h('div', {},
    crumbs ? h('div', { class: 'crumbs' }, crumbs) : null,
    h('div', { class: 'page-head' }, h('h1', { text: title }), sub ? h('div', { class: 'sub' }, sub) : null));
}

function card(label, value, hint, testid) {
  return h('div', { class: 'card', 'data-testid': testid },
    h('div', { class: 'label', text: label }),
    h('div', { class: 'value', text: value }),
    hint ? h('div', { class: 'hint', text: hint }) : null);
}

async function overviewPage() {
  const o = await api('/api/overview');
  const t = o.totals;
  const windowMin = Math.round(o.window_seconds / 60);
  const perMinute = o.models.reduce((acc, m) => acc + (m.succeeded_last_minute || 0), 0);
  const rows = o.models.map((m) => {
    const series = m.completions_per_minute || [];
    return h('tr', { 'data-model': m.id },
      h('td', {}, h('div', { class: 'model-name', text: m.id }), h('div', { class: 'sub-line', text: m.provider || '' })),
      h('td', { class: 'num', text: m.queued === undefined ? '—' : fmt.int(m.queued) }),
      h('td', { class: 'num', text: fmt.int(m.dispatched) }),
      h('td', { class: 'num', text: fmt.int(m.running) }),
      h('td', { class: 'num' }, h('div', { text: fmt.int(m.succeeded_last_minute || 0) }), h('div', { class: 'sub-line', text: `${fmt.int(m.succeeded || 0)} in ${windowMin} min` })),
      h('td', { class: 'hide-sm' }, sparkline(series)),
      h('td', { class: 'num' }, fmt.secs(m.generation?.p50_s, m.generation?.n ?? 0), h('div', { class: 'sub-line', text: `p95 ${fmt.secs(m.generation?.p95_s, m.generation?.n ?? 0)}` })),
      h('td', { class: 'num' }, fmt.secs(m.wait?.p50_s, m.wait?.n ?? 0), h('div', { class: 'sub-line', text: `p95 ${fmt.secs(m.wait?.p95_s, m.wait?.n ?? 0)}` })),
      h('td', { class: 'num hide-sm', text: fmt.int(m.failed || 0) }));
  });
  return [
    pageHead('Overview', o.scope === 'all' ? `all tenants · last ${windowMin} minutes` : `tenant ${o.scope} · last ${windowMin} minutes`),
    o.stale ? h('div', { class: 'notice', text: `Figures may be stale: ${o.stale}` }) : null,
    h('div', { class: 'cards' },
      card('Queued', fmt.int(t.queued), 'waiting for capacity', 'queued'),
      card('Dispatched', fmt.int(t.dispatched), 'slot held, no worker yet'),
      card('Running', fmt.int(t.running), t.workers !== undefined ? `${fmt.int(t.workers)} workers` : 'at the providers'),
      card('Completions / min', fmt.int(perMinute), `last 60 s · ${fmt.int(t.succeeded_window)} in ${windowMin} min`, 'completions')),
    h('div', { class: 'panel flush' },
      h('h2', { text: 'Models' }),
      h('div', { class: 'table-wrap' },
        h('table', {},
          h('thead', {}, h('tr', {},
            h('th', { text: 'Model' }), h('th', { class: 'num', text: 'Queued' }), h('th', { class: 'num', text: 'Dispatched' }),
            h('th', { class: 'num', text: 'Running' }), h('th', { class: 'num', text: 'Done / min' }), h('th', { class: 'hide-sm', text: `Last ${windowMin} min` }),
            h('th', { class: 'num', text: 'Generation p50' }), h('th', { class: 'num', text: 'Queue wait p50' }), h('th', { class: 'num hide-sm', text: 'Failed' }))),
          h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 9, class: 'empty', text: 'No models yet.' })))))),
  ];
}

async function batchesPage() {
  const { batches } = await api('/api/batches');
  const rows = batches.map((b) => {
    const done = b.succeeded + b.failed + b.cancelled;
    const pct = b.total ? Math.floor((100 * done) / b.total) : 0;
    const failures = Object.entries(b.failures_by_category || {});
    return h('tr', { 'data-batch-id': b.batch_id },
      h('td', {}, h('a', { href: `#/batch/${encodeURIComponent(b.batch_id)}`, class: 'mono', text: b.batch_id }),
        h('div', { class: 'sub-line', text: `${b.tenant || '—'} · started ${fmt.ago(b.first_ms)}` })),
      h('td', { class: 'bar-cell' }, progressBar(b)),
      h('td', { class: 'num' }, h('span', { class: 'pct', 'data-testid': 'batch-percent', 'data-percent': pct, text: `${pct} %` })),
      h('td', { class: 'num', text: `${fmt.int(done)} / ${fmt.int(b.total)}` }),
      h('td', { class: 'num hide-sm', text: fmt.int(b.running) }),
      h('td', {}, failures.length
        ? h('div', { class: 'chips' }, failures.map(([c, n]) => h('span', { class: 'chip state-FAILED', text: `${c.replace(/_/g, ' ')} ${n}` })))
        : h('span', { class: 'muted', text: b.failed ? fmt.int(b.failed) : 'none' })));
  });
  return [
    pageHead('Batches', 'batches active in the last 24 hours, newest first'),
    h('div', { class: 'panel flush' },
      h('div', { class: 'table-wrap' },
        h('table', {},
          h('thead', {}, h('tr', {}, h('th', { text: 'Batch' }), h('th', { text: 'Progress' }), h('th', { class: 'num', text: 'Done' }),
            h('th', { class: 'num', text: 'Jobs' }), h('th', { class: 'num hide-sm', text: 'Running' }), h('th', { class: 'hide-sm', text: 'Failures by category' }))),
          h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 6, class: 'empty', text: 'No batches yet. Submit one with `reelq batch`.' })))))),
  ];
}

let batchFilter = '';
async function batchPage(id) {
  const q = new URLSearchParams({ id });
  if (batchFilter) q.set('state', batchFilter);
  const b = await api(`/api/batch?${q}`);
  const done = b.succeeded + b.failed + b.cancelled;
  const pct = b.total ? Math.floor((100 * done) / b.total) : 0;
  const filters = ['', 'PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'].map((s) =>
    h('button', { class: batchFilter === s ? 'on' : '', onclick: () => { batchFilter = s; refresh(); }, text: s ? s.toLowerCase() : 'all' }));
  const jobs = b.jobs.map((j) => h('tr', { 'data-job-id': j.job_id, 'data-state': j.state },
    h('td', {}, h('a', { href: `#/job/${encodeURIComponent(j.job_id)}`, class: 'mono', text: j.job_id.slice(0, 12) })),
    h('td', {}, chip(j.state), j.phase ? h('div', { class: 'sub-line', text: j.phase.toLowerCase() }) : null),
    h('td', { text: j.model || '—' }),
    h('td', { class: 'prompt hide-sm', title: j.prompt, text: j.prompt }),
    h('td', { class: 'num hide-sm', text: `${j.attempt}/${j.max_attempts}` }),
    h('td', {}, j.error_category ? h('span', { class: 'chip state-FAILED', text: j.error_category.replace(/_/g, ' ') }) : null)));
  const failures = Object.entries(b.failures_by_category || {});
  return [
    pageHead(`Batch ${id}`, b.tenant ? `tenant ${b.tenant}` : null, h('a', { href: '#/batches', text: '← Batches' })),
    h('div', { class: 'grid two' },
      h('div', { class: 'panel' },
        h('h2', {}, 'Progress ', h('span', { class: 'pct', 'data-testid': 'batch-percent', 'data-percent': pct, text: `${pct} %` })),
        progressBar(b, true),
        h('div', { class: 'legend' },
          h('span', {}, h('i', { class: 'lg-ok' }), `${fmt.int(b.succeeded)} succeeded`),
          h('span', {}, h('i', { class: 'lg-bad' }), `${fmt.int(b.failed)} failed`),
          h('span', {}, h('i', { class: 'lg-run' }), `${fmt.int(b.running)} running`),
          h('span', {}, h('i', { class: 'lg-wait' }), `${fmt.int(b.pending)} waiting`),
          b.cancelled ? h('span', {}, h('i', { class: 'lg-cancel' }), `${fmt.int(b.cancelled)} cancelled`) : null)),
      h('div', { class: 'panel' },
        h('h2', { text: 'Failures by category' }),
        failures.length
          ? h('dl', { class: 'kv' }, failures.flatMap(([c, n]) => [h('dt', { text: c.replace(/_/g, ' ') }), h('dd', { text: fmt.int(n) })]))
          : h('div', { class: 'muted', text: 'No failures.' }))),
    h('div', { class: 'panel flush' },
      h('div', { class: 'filters' }, filters),
      h('div', { class: 'table-wrap' },
        h('table', {},
          h('thead', {}, h('tr', {}, h('th', { text: 'Job' }), h('th', { text: 'State' }), h('th', { text: 'Model' }),
            h('th', { class: 'hide-sm', text: 'Prompt' }), h('th', { class: 'num hide-sm', text: 'Attempt' }), h('th', { text: 'Error' }))),
          h('tbody', {}, jobs.length ? jobs : h('tr', {}, h('td', { colspan: 6, class: 'empty', text: 'No jobs match.' }))))),
      b.next_page ? h('div', { class: 'empty', text: 'Showing the first 50 jobs.' }) : null),
  ];
}

// The player lives outside the re-rendered part of the job page, so polling never restarts it.
let player = { jobId: null, el: null, src: null };

function playerFor(job) {
  if (!job.clip) {
    player = { jobId: job.job_id, el: null, src: null };
    const text = {
      SUCCEEDED: 'The clip is not available.',
      FAILED: 'No clip: the job failed.',
      CANCELLED: 'No clip: the job was cancelled.',
    }[job.state] || `No clip yet (${job.state.toLowerCase()}).`;
    return h('div', { class: 'player empty', text });
  }
  if (player.jobId !== job.job_id || player.src !== job.clip.src || !player.el) {
    const video = h('video', { id: 'clip', controls: true, preload: 'auto', playsinline: true, muted: true, src: job.clip.src });
    video.muted = true;
    player = { jobId: job.job_id, el: h('div', { class: 'player' }, video), src: job.clip.src };
  }
  // A slot the shell swaps for the player in the same task as the page swap, so the video is
  // never out of the document long enough to pause.
  return h('div', { class: 'player-slot' });
}

async function act(kind, id, button) {
  button.disabled = true;
  try {
    await api(`/api/job/${kind}?id=${encodeURIComponent(id)}`, { method: 'POST' });
  } catch (e) {
    alert(`${kind} failed: ${e.message}`);
  }
  refresh();
}

async function jobPage(id) {
  const j = await api(`/api/job?id=${encodeURIComponent(id)}`);
  const canRetry = j.can_act && (j.state === 'FAILED' || j.state === 'CANCELLED');
  const canCancel = j.can_act && !['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(j.state);
  const readOnly = !j.can_act ? h('span', { class: 'muted', text: 'read-only: actions need an API token' }) : null;
  const timeline = j.transitions.slice().reverse().map((t) =>
    h('li', { class: t.state },
      h('div', {}, h('span', { class: 'what', text: t.state.toLowerCase() + (t.phase ? ` · ${t.phase.toLowerCase()}` : '') }), ' ',
        h('span', { class: 'when', text: fmt.time(t.at_ms) })),
      t.detail ? h('div', { class: 'detail', text: t.detail }) : null));
  const errors = j.attempt_errors.slice().reverse().map((e) =>
    h('div', { class: 'error-box' },
      h('div', { class: 'cat', text: `${e.category.replace(/_/g, ' ')} · attempt ${e.attempt}${e.provider_code ? ` · provider code ${e.provider_code}` : ''}` }),
      h('div', { class: 'msg', text: e.message }),
      h('div', { class: 'sub-line', text: fmt.datetime(e.at_ms) })));
  const prompt = j.prompt || j.shots.map((s, i) => `Shot ${i + 1} (${s.duration_seconds} s): ${s.prompt}`).join('\n');
  return [
    pageHead(`Job ${id.slice(0, 12)}`, chip(j.state),
      j.batch_id ? h('a', { href: `#/batch/${encodeURIComponent(j.batch_id)}`, text: `← Batch ${j.batch_id}` }) : h('a', { href: '#/batches', text: '← Batches' })),
    h('div', { class: 'grid job' },
      h('div', {},
        playerFor(j),
        h('div', { class: 'panel' },
          h('div', { class: 'actions' },
            h('button', { class: 'primary', 'data-testid': 'retry', disabled: !canRetry, onclick: (ev) => act('retry', id, ev.target), text: 'Retry' }),
            h('button', { class: 'danger', 'data-testid': 'cancel', disabled: !canCancel, onclick: (ev) => act('cancel', id, ev.target), text: 'Cancel' }),
            readOnly)),
        errors.length ? h('div', { class: 'panel' }, h('h2', { text: 'Errors' }), errors) : null,
        h('div', { class: 'panel' },
          h('h2', { text: 'Request' }),
          h('p', { class: 'prompt-text', text: prompt }),
          h('dl', { class: 'kv' },
            h('dt', { text: 'Models allowed' }), h('dd', { text: j.requested_models.length ? j.requested_models.join(', ') : 'auto' }),
            h('dt', { text: 'Clip' }), h('dd', { text: `${j.duration_seconds || j.shots.reduce((a, s) => a + s.duration_seconds, 0)} s · ${j.resolution} · ${j.aspect_ratio}` }),
            h('dt', { text: 'Priority' }), h('dd', { text: j.priority })))),
      h('div', {},
        h('div', { class: 'panel' },
          h('h2', { text: 'Details' }),
          h('dl', { class: 'kv' },
            h('dt', { text: 'Job id' }), h('dd', { class: 'mono', text: j.job_id }),
            h('dt', { text: 'State' }), h('dd', { 'data-testid': 'job-state', text: j.state + (j.phase ? ` · ${j.phase.toLowerCase()}` : '') }),
            h('dt', { text: 'Model' }), h('dd', { text: j.model ? `${j.model} via ${j.account}` : '—' }),
            h('dt', { text: 'Upstream id' }), h('dd', { class: 'mono', 'data-testid': 'upstream-id', text: j.upstream_task_id || '—' }),
            h('dt', { text: 'Attempt' }), h('dd', { 'data-testid': 'attempt', text: `${j.attempt} of ${j.max_attempts}` }),
            h('dt', { text: 'Worker' }), h('dd', { text: j.worker || '—' }),
            h('dt', { text: 'Tenant' }), h('dd', { text: j.tenant || '—' }),
            h('dt', { text: 'Created' }), h('dd', { text: fmt.datetime(j.created_ms) }),
            j.output_key ? [h('dt', { text: 'Object' }), h('dd', { class: 'mono', text: j.output_key })] : null,
            j.sha256 ? [h('dt', { text: 'SHA-256' }), h('dd', { class: 'mono', text: j.sha256.slice(0, 16) + '…' })] : null)),
        h('div', { class: 'panel' }, h('h2', { text: 'Timeline' }), h('ol', { class: 'timeline' }, timeline)))),
  ];
}

async function accountsPage() {
  const { accounts } = await api('/api/accounts');
  accounts.sort((x, y) => x.provider.localeCompare(y.provider) || x.account.localeCompare(y.account));
  const rows = accounts.map((a) => {
    const learned = a.learned_requests_per_minute > 0 && a.learned_requests_per_minute < a.requests_per_minute - 0.05;
    // The provider refused creates for concurrency: dispatch runs the account below its config.
    const concLearned = a.learned_max_concurrent > 0 && a.learned_max_concurrent < a.max_concurrent;
    const concLimit = concLearned ? a.learned_max_concurrent : a.max_concurrent;
    return h('tr', { 'data-account': a.account },
      h('td', {}, h('div', { class: 'model-name', text: a.account }), h('div', { class: 'sub-line', text: a.provider })),
      h('td', {}, meter(a.dispatched_last_minute, a.learned_requests_per_minute || a.requests_per_minute),
        h('div', { class: 'sub-line', text: `${fmt.int(a.dispatched_last_minute)} of ${fmt.rate(a.requests_per_minute)} / min` })),
      h('td', {}, learned ? h('span', { class: 'chip warn', text: `${fmt.rate(a.learned_requests_per_minute)} / min` }) : h('span', { class: 'muted', text: 'as configured' })),
      h('td', {}, meter(a.in_flight, concLimit), h('div', { class: 'sub-line', text: `${fmt.int(a.in_flight)} of ${fmt.int(concLimit)}` }),
        concLearned ? h('span', { class: 'chip warn', 'data-learned-conc': '', text: `learned ${fmt.int(concLimit)} of ${fmt.int(a.max_concurrent)}` }) : null),
      h('td', { class: 'hide-sm', text: a.daily_cap ? `${fmt.int(a.used_today)} of ${fmt.int(a.daily_cap)}` : `${fmt.int(a.used_today)} (no cap)` }),
      h('td', {}, a.cooling_down ? h('span', { class: 'chip state-FAILED', text: `${fmt.secs(a.cooldown_remaining_seconds)} left` }) : h('span', { class: 'chip ok', text: 'ready' })),
      h('td', { class: 'num', text: fmt.int(a.rate_limited_total) }));
  });
  return [
    pageHead('Accounts', 'provider API keys: create rate and slots against their quotas'),
    h('div', { class: 'panel flush' },
      h('div', { class: 'table-wrap' },
        h('table', {},
          h('thead', {}, h('tr', {}, h('th', { text: 'Account' }), h('th', { text: 'Creates (last minute)' }), h('th', { text: 'Learned rate' }),
            h('th', { text: 'Slots in use' }), h('th', { class: 'hide-sm', text: 'Today' }), h('th', { text: 'Cooldown' }), h('th', { class: 'num', text: '429s' }))),
          h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 7, class: 'empty', text: 'No accounts configured.' })))))),
  ];
}

async function tenantsPage() {
  const { tenants, share_window_seconds: win } = await api('/api/tenants');
  const rows = tenants.map((t) => h('tr', { 'data-tenant': t.tenant },
    h('td', { class: 'model-name', text: t.tenant }),
    h('td', { class: 'num', text: t.weight }),
    h('td', {}, meter(t.weight_share, 1, true), h('div', { class: 'sub-line', text: t.active ? fmt.pct(t.weight_share) : 'idle' })),
    h('td', {}, meter(t.dispatch_share, 1, true), h('div', { class: 'sub-line', text: `${fmt.pct(t.dispatch_share)} · ${fmt.int(t.dispatched_recently)} jobs` })),
    h('td', { class: 'num', text: fmt.int(t.pending) }),
    h('td', { class: 'num hide-sm', text: fmt.int(t.dispatched + t.running) })));
  return [
    pageHead('Tenants', `share of dispatches over the last ${Math.round(win / 60)} minutes against the share their weight entitles them to`),
    h('div', { class: 'panel flush' },
      h('div', { class: 'table-wrap' },
        h('table', {},
          h('thead', {}, h('tr', {}, h('th', { text: 'Tenant' }), h('th', { class: 'num', text: 'Weight' }), h('th', { text: 'Entitled share' }),
            h('th', { text: 'Actual share' }), h('th', { class: 'num', text: 'Queued' }), h('th', { class: 'num hide-sm', text: 'In flight' }))),
          h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 6, class: 'empty', text: 'No tenant has work queued or running.' })))))),
  ];
}

function loginPage(message) {
  const input = h('input', { type: 'password', id: 'token', autocomplete: 'current-password', placeholder: 'API token', 'aria-label': 'API token' });
  const error = h('div', { class: 'notice error', text: message || '' });
  if (!message) error.hidden = true;
  const form = h('form', {
    class: 'panel login',
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await api('/api/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: input.value.trim() }) });
        await loadSession();
        refresh();
      } catch (e) {
        error.textContent = e.status === 401 ? 'That token was refused.' : e.message;
        error.hidden = false;
      }
    },
  },
  h('h2', { text: 'Sign in' }),
  h('p', { class: 'muted', text: 'Enter an API token once; this browser keeps it in a secure cookie.' }),
  error, input, h('button', { class: 'primary', type: 'submit', text: 'Sign in' }));
  return [form];
}

// On a phone a table row becomes a card: every cell carries its column's name.
function labelCells(root) {
  for (const table of root.querySelectorAll('table')) {
    const labels = [...table.querySelectorAll('thead th')].map((th) => th.textContent);
    for (const row of table.querySelectorAll('tbody tr')) {
      [...row.children].forEach((td, i) => { if (labels[i]) td.dataset.label = labels[i]; });
    }
  }
}

// ---- shell -------------------------------------------------------------------------------------

async function loadSession() {
  session = await api('/api/session');
  const who = document.getElementById('who');
  who.replaceChildren();
  if (session.mode === 'open') {
    who.append(h('span', { class: 'chip', title: 'no API tokens are configured: loopback only, read-only', text: 'local · read-only' }));
  } else if (session.signed_in) {
    who.append(h('span', { class: 'chip', text: session.admin ? 'admin' : session.tenant }),
      h('button', { onclick: async () => { await api('/api/logout', { method: 'POST' }); await loadSession(); refresh(); }, text: 'Sign out' }));
  }
}

function route() {
  const parts = (location.hash.replace(/^#\/?/, '') || 'overview').split('/');
  return { page: parts[0], id: decodeURIComponent(parts.slice(1).join('/')) };
}

async function refresh() {
  clearTimeout(timer);
  const seq = ++renderSeq;
  const { page, id } = route();
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.page === page || (page === 'batch' && a.dataset.page === 'batches'));
  }
  let content;
  let retryLater = false;
  try {
    if (!session) await loadSession();
    if (!session.signed_in) {
      content = loginPage();
    } else if (page === 'batches') content = await batchesPage();
    else if (page === 'batch') content = await batchPage(id);
    else if (page === 'job') content = await jobPage(id);
    else if (page === 'accounts') content = await accountsPage();
    else if (page === 'tenants') content = await tenantsPage();
    else content = await overviewPage();
    document.getElementById('updated').textContent = `updated ${fmt.time(Date.now())} · refreshes every ${POLL_MS / 1000} s`;
  } catch (e) {
    if (e.status === 401) {
      session = null;
      await loadSession().catch(() => {});
      content = loginPage();
    } else {
      content = [h('div', { class: 'notice error', text: e.message || String(e) })];
      // The scheduler could not answer for now (503: Redis out of reach): ask again.
      if (e.status >= 500) retryLater = true;
    }
  }
  if (seq !== renderSeq) return; // a newer render started while this one waited
  const view = document.getElementById('view');
  view.replaceChildren(...[content].flat().filter(Boolean));
  labelCells(view);
  const slot = document.querySelector('.player-slot');
  if (slot && player.el) slot.replaceWith(player.el);
  if ((session && session.signed_in) || retryLater) timer = setTimeout(refresh, POLL_MS);
}

window.addEventListener('hashchange', () => { batchFilter = ''; refresh(); });
document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh(); });
refresh();
