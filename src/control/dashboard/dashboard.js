/* Fulcrum's live dashboard: plain JavaScript, no build step, no dependencies.
 * It listens to /api/v1/events (server-sent events, one snapshot per second), keeps the last
 * five minutes of connections/s and bytes/s per server, draws them as small SVG lines, and
 * sends drain / enable / disable / weight changes with the bearer token the operator types in.
 * It explains what it shows: each server's why and since when, its last check, its recent state
 * changes and connect latency; the queues, TLS failures by reason, and the latest connections. */
/* global document, window, fetch, EventSource, sessionStorage, Node */
'use strict';

const HISTORY_SECONDS = 300;
const SVG_NS = 'http://www.w3.org/2000/svg';

/** Per server (key "group/address"): its row, its last snapshot and its rate history. */
const rows = new Map();
let lastTotals = null;
let lastTime = 0;

const $ = (id) => document.getElementById(id);

function formatBytes(n) {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

function formatRate(n) {
  return n >= 100 ? String(Math.round(n)) : n.toFixed(1);
}

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * A small area graph (newest value at the right), scaled to its own maximum. The time axis spans
 * at least one minute and grows to five as history accumulates. Made once per cell; each update
 * only changes two attributes, so a page with many servers stays light.
 */
const GRAPH_W = 120;
const GRAPH_H = 26;

function makeGraph(cell) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('width', String(GRAPH_W));
  svg.setAttribute('height', String(GRAPH_H));
  svg.setAttribute('viewBox', `0 0 ${GRAPH_W} ${GRAPH_H}`);
  const base = document.createElementNS(SVG_NS, 'line');
  for (const [k, v] of [['x1', '0'], ['x2', String(GRAPH_W)], ['y1', String(GRAPH_H - 0.5)], ['y2', String(GRAPH_H - 0.5)], ['stroke', '#dcdcd8']]) base.setAttribute(k, v);
  const area = document.createElementNS(SVG_NS, 'polygon');
  area.setAttribute('fill', '#d6e4f3');
  const stroke = document.createElementNS(SVG_NS, 'polyline');
  stroke.setAttribute('fill', 'none');
  stroke.setAttribute('stroke', '#2f6fb0');
  stroke.setAttribute('stroke-width', '1.5');
  svg.append(base, area, stroke);
  const text = el('span', { class: 'rate' });
  cell.replaceChildren(svg, text);
  return { svg, area, stroke, text };
}

function drawGraph(graph, values, label) {
  const span = Math.max(60, values.length);
  const max = Math.max(1e-9, ...values);
  const step = GRAPH_W / (span - 1);
  const offset = span - values.length;
  const xy = values.map((v, i) => [((offset + i) * step).toFixed(1), (GRAPH_H - 1 - (v / max) * (GRAPH_H - 3)).toFixed(1)]);
  const line = xy.map(([x, y]) => `${x},${y}`).join(' ');
  graph.stroke.setAttribute('points', line);
  graph.area.setAttribute('points', `${xy[0][0]},${GRAPH_H} ${line} ${xy[xy.length - 1][0]},${GRAPH_H}`);
  const peak = Math.max(0, ...values);
  graph.svg.setAttribute('aria-label', `last ${values.length} s, peak ${label(peak)}`);
  graph.text.textContent = `${label(values[values.length - 1] ?? 0)} (peak ${label(peak)})`;
}

function push(history, value) {
  history.push(value);
  if (history.length > HISTORY_SECONDS) history.shift();
}

function setMessage(text, isError) {
  const m = $('message');
  m.textContent = text;
  m.className = isError ? 'error' : '';
}

function token() {
  return $('token').value.trim();
}

async function act(server, method, path, body) {
  const t = token();
  if (t === '') {
    setMessage('Type the admin token first: changes need it.', true);
    return;
  }
  const url = `/api/v1/groups/${encodeURIComponent(server.group)}/servers/${encodeURIComponent(server.address)}${path}`;
  const init = { method, headers: { authorization: `Bearer ${t}` } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    setMessage(`Request failed: ${e.message}`, true);
    return;
  }
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) {
    setMessage(`${server.address}: ${answer.error ? answer.error.message : res.statusText} (HTTP ${res.status})`, true);
    return;
  }
  const view = answer.server || answer;
  setMessage(`${server.address}: ${method === 'PATCH' ? `weight ${view.weight}` : `now ${view.state}`}`, false);
  if (view.address !== undefined) updateRow(rowFor(view), view, null);
}

function rowFor(s) {
  const key = `${s.group}/${s.address}`;
  let r = rows.get(key);
  if (r !== undefined) return r;
  const tr = el('tr', { 'data-server': key, 'data-group': s.group, 'data-address': s.address });
  const cells = {};
  for (const name of ['group', 'index', 'address', 'state', 'why', 'weight', 'connections', 'pending', 'total', 'failures', 'latency', 'cps', 'bps', 'actions']) {
    cells[name] = el('td', { class: name });
    tr.appendChild(cells[name]);
  }
  for (const n of ['index', 'connections', 'pending', 'total', 'failures']) cells[n].classList.add('num');
  const why = { text: el('div', { class: 'why-text' }), since: el('div', { class: 'since' }), check: el('div'), details: el('details'), list: el('ol', { class: 'history' }), summary: el('summary'), shown: '' };
  why.details.append(why.summary, why.list);
  cells.why.append(why.text, why.since, why.check, why.details);
  cells.cps.classList.add('graph');
  cells.bps.classList.add('graph');
  const weight = el('input', { type: 'number', min: '0', max: '65535', 'aria-label': `weight of ${s.address}` });
  const setWeight = el('button', { type: 'button', 'data-action': 'weight' }, 'set');
  cells.weight.append(weight, ' ', setWeight);
  const actions = [
    ['drain', 'POST', '/drain'],
    ['enable', 'POST', '/enable'],
    ['disable', 'POST', '/disable'],
  ];
  r = { tr, cells, weight, why, last: s, cps: [], bps: [], graphs: null };
  for (const [name, method, path] of actions) {
    const b = el('button', { type: 'button', 'data-action': name }, name);
    b.addEventListener('click', () => act(r.last, method, path));
    cells.actions.append(b, ' ');
  }
  setWeight.addEventListener('click', () => {
    const w = Number(weight.value);
    if (!Number.isInteger(w) || w < 0 || w > 65535) {
      setMessage('A weight is an integer 0-65535.', true);
      return;
    }
    act(r.last, 'PATCH', '', { weight: w });
  });
  rows.set(key, r);
  $('servers').tBodies[0].appendChild(tr);
  return r;
}

function updateRow(r, s, dt) {
  const prev = r.last;
  r.last = s;
  const c = r.cells;
  c.group.textContent = s.group;
  c.index.textContent = s.role === 'regular' ? String(s.index) : s.role === 'backup' ? `backup ${s.index}` : s.role;
  c.address.textContent = s.address;
  c.state.textContent = s.state;
  c.state.className = `state state-${s.state}`;
  c.state.title =
    s.state === 'down' ? s.down_reason || `agent: ${s.agent}` : s.state === 'ejected' ? `for ${Math.ceil(s.blacklisted_for_ms / 1000)} s more` : s.state === 'starting' ? `slow start: weight × ${s.weight_scale}` : '';
  r.tr.dataset.state = s.state;
  if (document.activeElement !== r.weight) r.weight.value = String(s.weight);
  c.connections.textContent = String(s.connections);
  c.pending.textContent = String(s.pending);
  c.total.textContent = String(s.total_connections);
  c.failures.textContent = String(s.connect_failures + s.connect_timeouts);
  explain(r.why, s);
  const l = s.connect_ms;
  c.latency.textContent = l === undefined || l.count === 0 ? '–' : `${ms(l.p50)} / ${ms(l.p90)} / ${ms(l.p99)}`;
  c.latency.title = l === undefined ? '' : `${l.count} connects`;
  if (dt !== null && dt > 0 && prev !== s) {
    push(r.cps, Math.max(0, (s.total_connections - prev.total_connections) / dt));
    const bytes = s.bytes_to_server + s.bytes_from_server - prev.bytes_to_server - prev.bytes_from_server;
    push(r.bps, Math.max(0, bytes / dt));
    r.graphs ??= { cps: makeGraph(c.cps), bps: makeGraph(c.bps) };
    drawGraph(r.graphs.cps, r.cps, (v) => `${formatRate(v)}/s`);
    drawGraph(r.graphs.bps, r.bps, (v) => `${formatBytes(v)}/s`);
  }
}


function ms(v) {
  return v === null ? '–' : v >= 100 ? `${Math.round(v)} ms` : `${v} ms`;
}

function clock(iso) {
  return new Date(iso).toLocaleTimeString([], { hour12: false });
}

/** "3 min ago" from the feed's own time (the server's clock), not the browser's. */
function ago(iso) {
  const s = Math.max(0, Math.round(((lastTime || Date.parse(iso)) - Date.parse(iso)) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** The server's why (the API's words), since when, its last check and its recent state changes. */
function explain(w, s) {
  w.text.textContent = s.why ?? '';
  w.since.textContent = s.since ? `${s.state} since ${clock(s.since)} (${ago(s.since)})` : '';
  const chk = s.last_check;
  // A down server's why is its failing check already: the line would say it twice.
  const repeats = chk && !chk.passed && chk.detail === s.why;
  w.check.textContent = chk && !repeats ? `last check ${chk.passed ? 'passed' : 'failed'}: ${chk.detail} (${ago(chk.at)})` : '';
  w.check.className = chk && !chk.passed ? 'check-failed' : 'check-ok';
  const h = s.history ?? [];
  const key = h.length === 0 ? '' : `${h.length}/${h[h.length - 1].at}/${h[h.length - 1].reason}`;
  w.details.hidden = h.length === 0;
  if (key === w.shown) return;
  w.shown = key;
  w.summary.textContent = `history (${h.length})`;
  w.list.replaceChildren(
    ...h
      .slice()
      .reverse()
      .map((e) => {
        const li = el('li');
        li.append(el('time', { datetime: e.at }, clock(e.at)), ' ', el('span', { class: `h-state state-${e.state}` }, e.state), ` ${e.reason}`);
        return li;
      }),
  );
}

function cellsRow(attrs, values) {
  const tr = el('tr', attrs);
  for (const v of values) tr.appendChild(v instanceof Node ? v : el('td', {}, String(v)));
  return tr;
}

function renderQueue(q) {
  if (q === undefined) return;
  $('admission-queue').textContent = `Admission (-x, -q): ${q.waiting} waiting now · ${q.queued_total} waited since start · ${q.refused_queue_full} refused, queue full`;
  $('queues').tBodies[0].replaceChildren(
    ...q.groups.map((g) => cellsRow({ 'data-queue': g.group }, [g.group, g.length, g.max === 0 ? 'no queue' : g.max, g.timeout_ms === 0 ? '–' : ms(g.timeout_ms), g.queued, g.served, g.timeouts, g.full])),
  );
}

function renderRecent(recent) {
  if (recent === undefined) return;
  $('recent').tBodies[0].replaceChildren(
    ...recent.map((c) =>
      cellsRow({ 'data-connection': String(c.id) }, [
        c.ended ? clock(c.ended) : '–',
        c.client,
        c.listener ?? '–',
        c.server ?? 'none',
        c.why === null ? '–' : c.why === 'algorithm' && c.algorithm ? `algorithm (${c.algorithm})` : c.why,
        c.failed_servers.length === 0 ? '–' : c.failed_servers.join(', '),
        c.connect_ms === null ? '–' : ms(c.connect_ms),
        c.duration_ms === null ? '–' : ms(c.duration_ms),
        c.termination,
        `${formatBytes(c.bytes_from_client)} / ${formatBytes(c.bytes_to_client)}`,
      ]),
    ),
  );
}

function renderListeners(listeners) {
  const body = $('listeners').tBodies[0];
  body.replaceChildren(
    ...listeners.map((l) => {
      const tr = el('tr', { 'data-listener': l.name });
      const failures = Object.entries(l.tls_failures ?? {});
      const reasons = failures.length === 0 ? '–' : failures.map(([k, n]) => `${k}: ${n}`).join(', ');
      for (const v of [l.name, l.protocol === 'udp' ? `${l.address} (udp)` : l.address, l.group, l.connections, l.total_connections, formatBytes(l.bytes_from_clients), formatBytes(l.bytes_to_clients), l.tls_handshakes ?? 0]) {
        tr.appendChild(el('td', {}, String(v)));
      }
      tr.appendChild(el('td', { class: 'reasons' }, reasons));
      return tr;
    }),
  );
}

function onSnapshot(snap) {
  const dt = lastTime === 0 ? null : (snap.time - lastTime) / 1000;
  $('about').textContent = `version ${snap.version} · pid ${snap.pid} · up ${snap.uptime_s} s`;
  const t = snap.totals;
  $('t-active').textContent = String(t.active);
  $('t-waiting').textContent = String(t.waiting);
  $('t-accepted').textContent = String(t.accepted);
  if (dt !== null && dt > 0 && lastTotals !== null) {
    $('t-cps').textContent = formatRate(Math.max(0, (t.accepted - lastTotals.accepted) / dt));
    let bytes = 0;
    for (const s of snap.servers) {
      const r = rows.get(`${s.group}/${s.address}`);
      if (r !== undefined) bytes += s.bytes_to_server + s.bytes_from_server - r.last.bytes_to_server - r.last.bytes_from_server;
    }
    $('t-bps').textContent = `${formatBytes(Math.max(0, bytes / dt))}/s`;
  }
  lastTime = snap.time;
  const seen = new Set();
  for (const s of snap.servers) {
    const key = `${s.group}/${s.address}`;
    seen.add(key);
    const known = rows.has(key);
    const r = rowFor(s);
    updateRow(r, s, known ? dt : null);
  }
  for (const [key, r] of rows) {
    if (!seen.has(key)) {
      r.tr.remove();
      rows.delete(key);
    }
  }
  renderListeners(snap.listeners);
  renderQueue(snap.queue);
  renderRecent(snap.recent);
  lastTotals = t;
  document.body.dataset.updated = String(snap.time);
}

function connect() {
  const feed = $('feed');
  const es = new EventSource('/api/v1/events');
  es.addEventListener('open', () => {
    feed.textContent = 'live';
    feed.className = 'feed-up';
  });
  es.addEventListener('error', () => {
    feed.textContent = 'reconnecting…';
    feed.className = 'feed-down';
  });
  es.addEventListener('snapshot', (ev) => onSnapshot(JSON.parse(ev.data)));
}

window.addEventListener('DOMContentLoaded', () => {
  const input = $('token');
  input.value = sessionStorage.getItem('fulcrum-token') ?? '';
  input.addEventListener('change', () => sessionStorage.setItem('fulcrum-token', input.value.trim()));
  connect();
});
