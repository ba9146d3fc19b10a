/**
 * The scaling chart, hand-written SVG (a few polylines need no plotting library): throughput
 * against idle connections held, one line per balancer, keep-alive and connection rate side by
 * side. The direct path is drawn dashed, as the ceiling.
 */
import type { PeerName } from './peers.ts';
import { find, summaryOf, type Metric, type Row } from './results.ts';

const COLORS: Record<PeerName, string> = {
  direct: '#888888',
  fulcrum: '#d62728',
  naive: '#8c564b',
  'naive-raw': '#c49c94',
  pen: '#1f77b4',
  'pen-poll': '#17becf',
  haproxy: '#2ca02c',
  nginx: '#9467bd',
  'fulcrum-tracked': '#ff7f0e',
  'fulcrum-cluster': '#8c564b',
};

const PANEL_W = 440;
const PANEL_H = 330;
const MARGIN = { left: 70, right: 20, top: 80, bottom: 50 };
const LEGEND_H = 40;

function escape(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** A round upper bound and tick step for an axis from 0 to `max`. */
export function niceScale(max: number, ticks = 5): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.2 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  return { top: Math.ceil(max / step) * step, step };
}

function short(n: number): string {
  if (n >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return String(+n.toFixed(1));
}

interface Series {
  peer: PeerName;
  points: Array<[number, number]>;
}

function seriesFor(rows: readonly Row[], peers: readonly PeerName[], ladder: readonly number[], scenario: 'keepalive' | 'connrate', metric: Metric): Series[] {
  return peers
    .map((peer) => ({
      peer,
      points: ladder
        .map((n): [number, number] => {
          const r = find(rows, peer, scenario, metric, n);
          return [n, r === undefined ? NaN : summaryOf(r).median];
        })
        .filter(([, y]) => Number.isFinite(y)),
    }))
    .filter((s) => s.points.length > 0);
}

function panel(x0: number, title: string, yLabel: string, series: Series[], xMax: number): string[] {
  const out: string[] = [];
  const left = x0 + MARGIN.left;
  const top = MARGIN.top;
  const w = PANEL_W - MARGIN.left - MARGIN.right;
  const h = PANEL_H - MARGIN.top - MARGIN.bottom;
  const yMax = Math.max(0, ...series.flatMap((s) => s.points.map(([, y]) => y)));
  const ys = niceScale(yMax);
  const xs = niceScale(xMax, 4);
  const px = (x: number): number => left + (x / xs.top) * w;
  const py = (y: number): number => top + h - (y / ys.top) * h;
  out.push(`<text x="${left + w / 2}" y="${top - 12}" text-anchor="middle" font-weight="bold">${escape(title)}</text>`);
  for (let y = 0; y <= ys.top + 1e-9; y += ys.step) {
    out.push(`<line x1="${left}" x2="${left + w}" y1="${py(y)}" y2="${py(y)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${left - 6}" y="${py(y) + 4}" text-anchor="end">${short(y)}</text>`);
  }
  for (let x = 0; x <= xs.top + 1e-9; x += xs.step) {
    out.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${top + h}" y2="${top + h + 4}" stroke="#333"/>`);
    out.push(`<text x="${px(x)}" y="${top + h + 18}" text-anchor="middle">${short(x)}</text>`);
  }
  out.push(`<rect x="${left}" y="${top}" width="${w}" height="${h}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${left + w / 2}" y="${top + h + 38}" text-anchor="middle">idle connections held through the balancer</text>`);
  out.push(`<text transform="translate(${x0 + 16} ${top + h / 2}) rotate(-90)" text-anchor="middle">${escape(yLabel)}</text>`);
  for (const s of series) {
    const color = COLORS[s.peer];
    const dash = s.peer === 'direct' ? ' stroke-dasharray="6 4"' : '';
    const width = s.peer === 'fulcrum' ? 3 : 2;
    const pts = s.points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
    out.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="${width}"${dash}/>`);
    for (const [x, y] of s.points) out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${color}"/>`);
  }
  return out;
}

export interface ChartInput {
  rows: readonly Row[];
  peers: readonly PeerName[];
  ladder: readonly number[];
  /** Shown under the title: the machine, and for a smoke run a warning. */
  subtitle: string;
}

export function scalingSvg(input: ChartInput): string {
  const xMax = Math.max(1, ...input.ladder);
  const ka = seriesFor(input.rows, input.peers, input.ladder, 'keepalive', 'req_per_s');
  const cr = seriesFor(input.rows, input.peers, input.ladder, 'connrate', 'conn_per_s');
  const width = PANEL_W * 2;
  const height = PANEL_H + LEGEND_H + 10;
  const shown = input.peers.filter((p) => ka.some((s) => s.peer === p) || cr.some((s) => s.peer === p));
  const legend = shown.map((p, i) => {
    const x = 40 + i * 140;
    const y = PANEL_H + 20;
    const dash = p === 'direct' ? ' stroke-dasharray="6 4"' : '';
    return `<line x1="${x}" x2="${x + 28}" y1="${y}" y2="${y}" stroke="${COLORS[p]}" stroke-width="3"${dash}/><text x="${x + 34}" y="${y + 4}">${escape(p === 'direct' ? 'direct (ceiling)' : p)}</text>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">Throughput while idle connections are held (one core per balancer)</text>`,
    `<text x="${width / 2}" y="38" text-anchor="middle" fill="#555">${escape(input.subtitle)}</text>`,
    ...panel(0, 'Keep-alive forwarding', 'requests per second', ka, xMax),
    ...panel(PANEL_W, 'Connection rate', 'new connections per second', cr, xMax),
    ...legend,
    '</svg>',
    '',
  ].join('\n');
}
