/**
 * The lab of the active/standby pair tests (test/e2e/ha-pair.test.ts, ha-cluster.test.ts): five
 * network namespaces joined by a bridge in a switch namespace (client, lb1, lb2, backend), the
 * processes started in them with their output kept in a log directory, keepalived's shipped
 * template filled in for lb1 and lb2, and a teardown that removes every namespace. Each test file
 * makes its own lab with its own name letter, subnet and VRRP id, so two files never collide.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const root = resolve(import.meta.dir, '../..');
export const KEEPALIVED = ['/usr/sbin/keepalived', '/sbin/keepalived'].find((p) => existsSync(p));
export const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p));
export const REDIS = ['/usr/bin/redis-server', '/usr/sbin/redis-server'].find((p) => existsSync(p));

export function run(args: string[], allowFail = false): string {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 10_000 });
  if (!allowFail && r.status !== 0) throw new Error(`${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout ?? '';
}

/** Why the lab cannot run here, or null (`letter` names the probe namespace). */
export function labUnavailable(letter: string, needs: { redis?: boolean } = {}): string | null {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  if (IP === undefined) return 'needs iproute2 (ip)';
  if (KEEPALIVED === undefined) return 'needs keepalived (scripts/ensure-peers.sh installs it as root)';
  if (needs.redis === true && REDIS === undefined) return 'needs redis-server (scripts/ensure-peers.sh installs it as root)';
  const probe = `f${letter}p${process.pid % 100000}`;
  const r = spawnSync(IP, ['netns', 'add', probe], { encoding: 'utf8', timeout: 5_000 });
  if (r.status !== 0) return `network namespaces are not allowed here: ${r.stderr.trim()}`;
  spawnSync(IP, ['netns', 'del', probe], { timeout: 5_000 });
  return null;
}

export interface LabOptions {
  /** One letter in every namespace and interface name of this lab. */
  letter: string;
  /** The first two octets of the lab's addresses, e.g. '10.77'. */
  net: string;
  /** The prefix length of every address (a /16 leaves room for many client addresses). */
  mask: number;
  vrid: number;
  /** The admin API port of Fulcrum in lb1 and lb2 (keepalived's check asks its /healthz). */
  adminPort: number;
}

export type Host = 'sw' | 'client' | 'lb1' | 'lb2' | 'back';

export class HaLab {
  readonly o: LabOptions;
  readonly ns: Record<Host, string>;
  readonly addr: Record<'lb1' | 'lb2' | 'client' | 'back' | 'vip', string>;
  readonly dir: string;
  readonly children: ChildProcess[] = [];

  constructor(o: LabOptions) {
    this.o = o;
    // Short unique names: interface names are at most 15 bytes.
    const tag = String(process.pid % 100000);
    const l = o.letter;
    this.ns = { sw: `f${l}s${tag}`, client: `f${l}c${tag}`, lb1: `f${l}1${tag}`, lb2: `f${l}2${tag}`, back: `f${l}b${tag}` };
    this.addr = { lb1: `${o.net}.0.1`, lb2: `${o.net}.0.2`, client: `${o.net}.0.10`, back: `${o.net}.0.20`, vip: `${o.net}.0.100` };
    this.dir = mkdtempSync(join(tmpdir(), `fulcrum-ha-${l}-`));
  }

  inNs(host: Host, cmd: string[]): string[] {
    return [IP!, 'netns', 'exec', this.ns[host], ...cmd];
  }

  /** Starts a process; its output goes to `log` in the lab's directory when it exits. */
  start(cmd: string[], log: string): ChildProcess & { output: string[] } {
    const child = spawn(cmd[0]!, cmd.slice(1), { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] }) as ChildProcess & { output: string[] };
    const out: string[] = [];
    child.stdout?.on('data', (d: Buffer) => out.push(d.toString()));
    child.stderr?.on('data', (d: Buffer) => out.push(d.toString()));
    child.on('exit', () => writeFileSync(join(this.dir, log), out.join('')));
    child.output = out;
    this.children.push(child);
    return child;
  }

  /** The namespaces, the bridge, and one veth per host with its address. */
  network(): void {
    const { ns, addr } = this;
    for (const n of Object.values(ns)) run([IP!, 'netns', 'add', n]);
    for (const n of Object.values(ns)) run([IP!, 'netns', 'exec', n, IP!, 'link', 'set', 'lo', 'up']);
    run(this.inNs('sw', [IP!, 'link', 'add', 'br0', 'type', 'bridge']));
    run(this.inNs('sw', [IP!, 'link', 'set', 'br0', 'up']));
    const tag = String(process.pid % 100000);
    const hosts: ['client' | 'lb1' | 'lb2' | 'back', string][] = [['client', addr.client], ['lb1', addr.lb1], ['lb2', addr.lb2], ['back', addr.back]];
    for (const [host, ip] of hosts) {
      const outer = `${this.o.letter}${host}${tag}`.slice(0, 15);
      run([IP!, 'link', 'add', outer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns[host]]);
      run([IP!, 'link', 'set', outer, 'netns', ns.sw]);
      run(this.inNs('sw', [IP!, 'link', 'set', outer, 'master', 'br0', 'up']));
      run(this.inNs(host, [IP!, 'addr', 'add', `${ip}/${this.o.mask}`, 'dev', 'eth0']));
      run(this.inNs(host, [IP!, 'link', 'set', 'eth0', 'up']));
    }
  }

  teardown(): void {
    for (const n of Object.values(this.ns)) spawnSync(IP!, ['netns', 'del', n], { timeout: 5_000 });
  }

  /** keepalived refuses a check script others could write: a private copy, mode 0755 in a 0700 dir. */
  installCheckScript(): void {
    chmodSync(this.dir, 0o700);
    writeFileSync(join(this.dir, 'fulcrum-check'), readFileSync(join(root, 'deploy/keepalived/fulcrum-check')));
    chmodSync(join(this.dir, 'fulcrum-check'), 0o755);
  }

  /** Whether the shipped check script says the Fulcrum in `lb` serves. */
  fulcrumCheck(lb: 'lb1' | 'lb2'): boolean {
    return spawnSync(IP!, ['netns', 'exec', this.ns[lb], join(this.dir, 'fulcrum-check'), `http://127.0.0.1:${this.o.adminPort}/healthz`], { timeout: 5_000 }).status === 0;
  }

  startKeepalived(lb: 'lb1' | 'lb2'): ChildProcess {
    const conf = join(this.dir, `keepalived-${lb}.conf`);
    writeFileSync(conf, this.keepalivedConf(lb));
    const pids = (n: string): string => join(this.dir, `${lb}-${n}.pid`);
    return this.start(this.inNs(lb, [KEEPALIVED!, '--dont-fork', '--log-console', '--log-detail', '--vrrp', '-f', conf, '-p', pids('main'), '-r', pids('vrrp'), '-c', pids('checkers')]), `keepalived-${lb}.log`);
  }

  /** Whether `lb` holds the virtual address now. */
  holds(lb: 'lb1' | 'lb2'): boolean {
    return run(this.inNs(lb, [IP!, '-o', 'addr', 'show', 'dev', 'eth0']), true).includes(`${this.addr.vip}/`);
  }

  /** After the test: every process stopped, every namespace removed, the logs kept on request. */
  async cleanup(name: string, networked: boolean): Promise<void> {
    await Promise.all(this.children.map((c) => stopChild(c)));
    if (IP !== undefined && networked) this.teardown();
    if (process.env.FULCRUM_KEEP_HA_LOGS === undefined) rmSync(this.dir, { recursive: true, force: true });
    else console.log(`${name}: logs in ${this.dir}`);
  }

  /** The shipped keepalived template with this lab's values for `self`. */
  keepalivedConf(self: 'lb1' | 'lb2'): string {
    const values: Record<string, string> = {
      ROUTER_ID: self,
      STATE: self === 'lb1' ? 'MASTER' : 'BACKUP',
      PRIORITY: self === 'lb1' ? '150' : '100',
      INTERFACE: 'eth0',
      SELF: this.addr[self],
      PEER: self === 'lb1' ? this.addr.lb2 : this.addr.lb1,
      VIP: `${this.addr.vip}/${this.o.mask}`,
      VRID: String(this.o.vrid),
      CHECK: `${join(this.dir, 'fulcrum-check')} http://127.0.0.1:${this.o.adminPort}/healthz`,
      PASSWORD: 'fulcrum',
    };
    return readFileSync(join(root, 'deploy/keepalived/keepalived.conf'), 'utf8').replace(/\{\{([A-Z_]+)\}\}/g, (_m, k: string) => values[k] ?? `{{${k}}}`);
  }
}

/** Sends `signal`, then SIGKILL after 5 s; resolves once the process has exited. */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      done();
    }, 5_000);
    child.once('exit', () => {
      clearTimeout(t);
      done();
    });
    child.kill(signal);
  });
}

/** Polls `probe` every 50 ms until it gives a value, at most `ms`. */
export async function until<T>(what: string, ms: number, probe: () => T | null | undefined | false | Promise<T | null | undefined | false>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms}ms waiting for ${what}`);
    await Bun.sleep(50);
  }
}

/** A client that connects to `host:port` every 100 ms and prints "<ms since start> <answer or error>". */
export function proberScript(host: string, port: number): string {
  return `
const t0 = Date.now();
async function once() {
  return await new Promise((resolve) => {
    let text = '';
    const timer = setTimeout(() => resolve('timeout'), 500);
    Bun.connect({ hostname: '${host}', port: ${port}, socket: {
      data(s, d) { text += Buffer.from(d).toString(); },
      close() { clearTimeout(timer); resolve(text.trim() || 'closed'); },
      error(s, e) { clearTimeout(timer); resolve('error'); },
      connectError() { clearTimeout(timer); resolve('refused'); },
    } }).catch(() => { clearTimeout(timer); resolve('refused'); });
  });
}
for (;;) { const a = await once(); console.log(Date.now() - t0, a); await Bun.sleep(100); }
`;
}
