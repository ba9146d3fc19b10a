/**
 * The active/standby pair of docs/ha.md, for real: five network namespaces joined by a bridge (a
 * switch namespace holding the bridge, a client, lb1, lb2 and a backend), Fulcrum and keepalived
 * in lb1 and lb2 with the shipped deploy/keepalived files, and a client that keeps connecting to
 * the virtual address. The backend answers each connection with the address it came from, which
 * says which balancer forwarded it. lb1's Fulcrum is killed; its track_script (fulcrum-check,
 * asking /healthz) fails, keepalived gives the address away, and the client must be answered
 * through lb2. The failover time is measured and printed, not asserted against a tight bound.
 *
 * Needs root, `ip` and keepalived (scripts/ensure-peers.sh installs them); skipped with a
 * message otherwise. Every namespace and process is removed at the end, also on failure.
 */
import { afterAll, expect, setDefaultTimeout, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bunPath } from '../harness/index.ts';
import { HaLab, labUnavailable, proberScript, until } from '../helpers/ha-lab.ts';

setDefaultTimeout(90_000);

const why = labUnavailable('h');
if (why !== null) console.warn(`ha-pair: skipped: ${why}`);

const PORT = 8080;
const ADMIN = 9900;
const lab = new HaLab({ letter: 'h', net: '10.77', mask: 24, vrid: 51, adminPort: ADMIN });
const { addr, dir } = lab;

const BACKEND = `
Bun.listen({ hostname: '0.0.0.0', port: 9000, socket: {
  open(s) { s.write(s.remoteAddress + '\\n'); s.end(); }, data() {}, close() {}, error() {},
} });
console.log('backend ready');
`;

const PROBER = proberScript(addr.vip, PORT);

afterAll(() => lab.cleanup('ha-pair', why === null));

test.skipIf(why !== null)('the virtual address moves to lb2 when lb1 Fulcrum is killed, and answers from lb2', async () => {
  lab.network();
  lab.installCheckScript();
  writeFileSync(join(dir, 'backend.ts'), BACKEND);
  writeFileSync(join(dir, 'prober.ts'), PROBER);
  const backend = lab.start(lab.inNs('back', [bunPath(), join(dir, 'backend.ts')]), 'backend.log');
  await until('the backend', 10_000, () => backend.output.join('').includes('backend ready'));

  const fulcrum = {} as Record<'lb1' | 'lb2', ReturnType<HaLab['start']>>;
  for (const lb of ['lb1', 'lb2'] as const) {
    const config = join(dir, `${lb}.yaml`);
    writeFileSync(
      config,
      [
        'admin:',
        `  listen: 127.0.0.1:${ADMIN}`,
        'groups:',
        '  web:',
        `    servers: [${addr.back}:9000]`,
        'listeners:',
        `  - listen: 0.0.0.0:${PORT}`,
        '    group: web',
        '',
      ].join('\n'),
    );
    fulcrum[lb] = lab.start(lab.inNs(lb, [bunPath(), 'src/cli/main.ts', '--config', config]), `fulcrum-${lb}.log`);
  }
  await until('both Fulcrums to pass fulcrum-check', 20_000, () => lab.fulcrumCheck('lb1') && lab.fulcrumCheck('lb2'));

  for (const lb of ['lb1', 'lb2'] as const) lab.startKeepalived(lb);
  const holds = (lb: 'lb1' | 'lb2'): boolean => lab.holds(lb);
  await until('lb1 to hold the virtual address', 20_000, () => holds('lb1'));

  const prober = lab.start(lab.inNs('client', [bunPath(), join(dir, 'prober.ts')]), 'prober.log');
  const answers = (): string[][] => prober.output.join('').split('\n').filter((l) => l.includes(' ')).map((l) => l.split(' '));
  await until('an answer through lb1', 15_000, () => answers().some((a) => a[1] === addr.lb1));

  const seenBefore = answers().length;
  const killedAt = Date.now();
  fulcrum.lb1.kill('SIGKILL');
  const answeredAt = await until('an answer through lb2 after lb1 was killed', 15_000, () => (answers().slice(seenBefore).some((a) => a[1] === addr.lb2) ? Date.now() : null));
  const failoverMs = answeredAt - killedAt;
  console.log(`ha-pair: lb1's Fulcrum killed -> the virtual address answered through lb2 after ${failoverMs} ms`);
  expect(holds('lb2')).toBe(true);
  expect(holds('lb1')).toBe(false);
  // Every answer after the switch comes through lb2 (none through a half-dead lb1).
  await until('two more answers', 5_000, () => answers().length >= seenBefore + 2 && answers().slice(-2).every((a) => a[1] === addr.lb2));
});
