// x_forwarded_for (pen's -H) in the config file: a listener setting, refused where no HTTP request can be seen.
import { expect, test } from 'bun:test';
import { parseConfigText } from '../../../src/config/yaml/parse.ts';

const base = (listener: string[]): string => ['groups:', '  web:', '    servers: [127.0.0.1:9000]', 'listeners:', '  - listen: 8080', '    group: web', ...listener, ''].join('\n');

function errors(text: string): string[] {
  const r = parseConfigText(text, 'f.yaml');
  return 'errors' in r ? r.errors.map((e) => e.message) : [];
}

test('x_forwarded_for: true sets the listener\'s forwardedFor; absent leaves it unset', () => {
  const r = parseConfigText(base(['    x_forwarded_for: true']), 'f.yaml');
  expect('config' in r && r.config.listeners[0]!.forwardedFor).toBe(true);
  const plain = parseConfigText(base([]), 'f.yaml');
  expect('config' in plain && plain.config.listeners[0]!.forwardedFor).toBeUndefined();
});

test('x_forwarded_for on a UDP listener or a passthrough listener is a config error', () => {
  expect(errors(base(['    protocol: udp', '    x_forwarded_for: true'])).join()).toContain('x_forwarded_for needs HTTP over TCP');
  const passthrough = ['    x_forwarded_for: true', '    sni_routes:', '      - server_names: [a.example]', '        group: web'];
  expect(errors(base(passthrough)).join()).toContain('passthrough listener');
  expect(errors(base(['    x_forwarded_for: yes please'])).length).toBeGreaterThan(0);
});
