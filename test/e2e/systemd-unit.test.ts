/**
 * deploy/systemd/fulcrum.service: systemd's own checker accepts it (offline, with the paths
 * pointed at this checkout), and, on a machine whose PID 1 is systemd, Fulcrum runs as a
 * Type=notify transient unit: the start job completes only on READY=1, `systemctl show` has the
 * STATUS= line, a reload keeps it active and a stop ends it cleanly. Without systemd as PID 1
 * the second test skips (the sd_notify messages are tested in daemon-ops.test.ts).
 */
import { describe, expect, setDefaultTimeout, test } from 'bun:test';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, repoRoot, useHarness, waitFor, whoServes } from '../harness/index.ts';

setDefaultTimeout(60_000);
const h = useHarness();
const analyze = Bun.which('systemd-analyze');
const systemdRuns = ((): boolean => {
  try {
    return readFileSync('/proc/1/comm', 'utf8').trim() === 'systemd' && Bun.which('systemd-run') !== null;
  } catch {
    return false;
  }
})();

function sh(cmd: string[]): { code: number; out: string } {
  const r = Bun.spawnSync(cmd, { stdout: 'pipe', stderr: 'pipe' });
  return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
}

describe('the shipped systemd unit', () => {
  test.skipIf(analyze === null)('systemd-analyze verify finds nothing to say about it', () => {
    const unit = readFileSync(join(repoRoot, 'deploy/systemd/fulcrum.service'), 'utf8');
    expect(unit).toMatch(/^Type=notify$/m);
    expect(unit).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    expect(unit).toMatch(/^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m);
    expect(unit).toMatch(/^User=fulcrum$/m);
    const dir = mkdtempSync(join(tmpdir(), 'fulcrum-unit-'));
    const path = join(dir, 'fulcrum.service');
    writeFileSync(path, unit.replaceAll('/opt/fulcrum/bin/fulcrum', join(repoRoot, 'bin/fulcrum')));
    const r = sh([analyze!, 'verify', path]);
    expect(r.out).toBe('');
    expect(r.code).toBe(0);
  });

  test.skipIf(!systemdRuns)('under the real systemd: ready, status, reload and stop through the unit', async () => {
    const a = h.identify('A');
    const port = freePort();
    const unit = `fulcrum-test-${process.pid}-${port}`;
    h.defer(() => void sh(['systemctl', 'stop', unit]));
    // systemd-run returns once the start job is done, which for Type=notify means READY=1.
    const started = sh(['systemd-run', '--collect', `--unit=${unit}`, '-p', 'Type=notify', '-p', 'NotifyAccess=main', join(repoRoot, 'bin/fulcrum'), '-f', `127.0.0.1:${port}`, a.address]);
    expect(started.code).toBe(0);
    const show = (): string => sh(['systemctl', 'show', unit, '-p', 'ActiveState', '-p', 'StatusText']).out;
    expect(show()).toContain('ActiveState=active');
    expect(show()).toContain(`StatusText=pid `);
    expect(show()).toContain(`listening on 127.0.0.1:${port}`);
    expect(await whoServes(port)).toBe('A');
    expect(sh(['systemctl', 'kill', '-s', 'HUP', '--kill-whom=main', unit]).code).toBe(0);
    await waitFor(() => show().includes('StatusText=reloaded (SIGHUP)'), { what: 'the reload in StatusText', details: show });
    expect(show()).toContain('ActiveState=active');
    expect(sh(['systemctl', 'stop', unit]).code).toBe(0);
    expect(sh(['systemctl', 'show', unit, '-p', 'Result']).out).not.toMatch(/Result=(?!success)/);
  });
});
