/**
 * deploy/grafana/fulcrum.json asks only for metrics Fulcrum exposes: every `fulcrum_*` name in
 * its queries is a family of a real scrape (in process, with reload counts and prom-client's
 * process metrics, as the admin API serves them), and every label it groups or filters by is one
 * that family carries.
 */
import { expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Balancer } from '../../../src/app/balancer.ts';
import { defaultGlobal, defaultGroup, serverConfig } from '../../../src/config/model.ts';
import { Metrics } from '../../../src/control/metrics.ts';
import { parsePrometheusText } from '../../helpers/prom-parse.ts';

const repoRoot = join(import.meta.dir, '../../..');

interface Panel { title: string; targets?: { expr: string }[] }

test('every metric and label the Grafana dashboard queries exists in /metrics', async () => {
  const dash = JSON.parse(readFileSync(join(repoRoot, 'deploy/grafana/fulcrum.json'), 'utf8')) as { panels: Panel[] };
  const b = new Balancer(
    { global: defaultGlobal(), acls: [], groups: [{ ...defaultGroup('g'), servers: [serverConfig({ kind: 'tcp', host: '127.0.0.1', port: 1 })] }], listeners: [] },
    { info() {}, error() {}, debug() {} },
  );
  const metrics = new Metrics(b, { version: 'test', reloads: { counts: { ok: 0, failed: 0 }, lastSuccessMs: 0 } });
  const families = parsePrometheusText(await metrics.scrape());
  const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
  expect(exprs.length).toBeGreaterThan(10);
  // Labels of families with no sample here (TLS listeners, listeners): from metrics.ts's own text.
  const source = readFileSync(join(repoRoot, 'src/control/metrics.ts'), 'utf8');
  const known = new Set(['job', 'instance', 'group', 'server', 'role', 'state', 'listener', 'address', 'reason', 'result', 'version', 'bun']);
  const missing: string[] = [];
  for (const { panel, expr } of exprs) {
    for (const name of expr.match(/\bfulcrum_[a-z0-9_]+/g) ?? []) {
      if (!families.has(name)) missing.push(`${panel}: ${name}`);
    }
    const labels = [...expr.matchAll(/by \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((l) => l.trim()));
    labels.push(...[...expr.matchAll(/[{,]\s*([a-z_]+)\s*(?:=~|!=|=)/g)].map((m) => m[1]!));
    for (const l of labels) if (!known.has(l) || (!['job', 'instance'].includes(l) && !source.includes(`${l}`))) missing.push(`${panel}: label ${l}`);
  }
  expect(missing).toEqual([]);
});
