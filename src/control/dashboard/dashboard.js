/* Fulcrum's live dashboard: plain JavaScript, no build step, no dependencies.
 * It listens to /api/v1/events (server-sent events, one snapshot per second), keeps the last
 * five minutes of connections/s and bytes/s per server, draws them as small SVG lines, and
 * sends drain / enable / disable / weight changes with the bearer token the operator types in. */
/* global document, window, fetch, EventSource, sessionStorage */
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
  for (const name of ['group', 'index', 'address', 'state', 'weight', 'connections', 'pending', 'total', 'failures', 'cps', 'bps', 'actions']) {
    cells[name] = el('td', { class: name });
    tr.appendChild(cells[name]);
  }
  for (const n of ['index', 'connections', 'pending', 'total', 'failures']) cells[n].classList.add('num');
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
  r = { tr, cells, weight, last: s, cps: [], bps: [], graphs: null };
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
  if (dt !== null && dt > 0 && prev !== s) {
    push(r.cps, Math.max(0, (s.total_connections - prev.total_connections) / dt));
    const bytes = s.bytes_to_server + s.bytes_from_server - prev.bytes_to_server - prev.bytes_from_server;
    push(r.bps, Math.max(0, bytes / dt));
    r.graphs ??= { cps: makeGraph(c.cps), bps: makeGraph(c.bps) };
    drawGraph(r.graphs.cps, r.cps, (v) => `${formatRate(v)}/s`);
    drawGraph(r.graphs.bps, r.bps, (v) => `${formatBytes(v)}/s`);
  }
}


function renderListeners(listeners) {
  const body = $('listeners').tBodies[0];
  body.replaceChildren(
    ...listeners.map((l) => {
      const tr = el('tr', { 'data-listener': l.name });
      for (const v of [l.name, l.protocol === 'udp' ? `${l.address} (udp)` : l.address, l.group, l.connections, l.total_connections, formatBytes(l.bytes_from_clients), formatBytes(l.bytes_to_clients)]) {
        tr.appendChild(el('td', {}, String(v)));
      }
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
  lastTotals = t;
  lastTime = snap.time;
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
