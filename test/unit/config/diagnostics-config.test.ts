/** Where diagnostics go: --diagnostics-log and global.diagnostics_log (start-only), --quiet. */
import { expect, test } from 'bun:test';
import { reloadedGlobal } from '../../../src/config/model.ts';
import { applyLongOptions, parsePenArgs } from '../../../src/config/pen-args.ts';
import { parseConfigText } from '../../../src/config/yaml/parse.ts';

const file = (extra: string): string => `global:\n${extra}groups:\n  app:\n    servers: [127.0.0.1:9001]\nlisteners:\n  - listen: 8080\n    group: app\n`;

test('--diagnostics-log and --quiet on the command line; unset means the default', () => {
  const p = parsePenArgs(['--diagnostics-log', 'syslog', '--quiet', '8080', '127.0.0.1:1']);
  applyLongOptions(p.config, p.long);
  expect(p.config.global.diagnosticsLog).toBe('syslog');
  expect(p.long.quiet).toBe(true);
  const d = parsePenArgs(['8080', '127.0.0.1:1']);
  expect(d.config.global.diagnosticsLog).toBeNull();
  expect(d.long.quiet).toBe(false);
  expect(() => parsePenArgs(['--diagnostics-log=', '8080', '127.0.0.1:1'])).toThrow(/needs a value/);
});

test('global.diagnostics_log in the file, distinct from pen\'s log_file; the command line wins; a reload keeps the running one', () => {
  const r = parseConfigText(file('  diagnostics_log: /var/log/fulcrum/fulcrum.log\n  log_file: /var/log/fulcrum/pen.log\n'), 'f.yaml');
  if (!('config' in r)) throw new Error(JSON.stringify(r));
  expect(r.config.global.diagnosticsLog).toBe('/var/log/fulcrum/fulcrum.log');
  expect(r.config.global.logFile).toBe('/var/log/fulcrum/pen.log');
  const next = parseConfigText(file('  diagnostics_log: syslog\n'), 'f.yaml');
  if (!('config' in next)) throw new Error(JSON.stringify(next));
  expect(reloadedGlobal(r.config.global, next.config.global).diagnosticsLog).toBe('/var/log/fulcrum/fulcrum.log');
  const long = parsePenArgs(['--config', 'f.yaml', '--diagnostics-log', 'stderr']).long;
  applyLongOptions(r.config, long);
  expect(r.config.global.diagnosticsLog).toBe('stderr');
  const bad = parseConfigText(file('  diagnostics_log: 3\n'), 'f.yaml');
  expect('errors' in bad && bad.errors.map((e) => e.message).join()).toMatch(/a file path/);
});
