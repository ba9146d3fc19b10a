/**
 * Helpers for the admin API, metrics, access log, dashboard and reload tests: a temporary
 * directory per test, a YAML config written from an object, the real `fulcrum` started from it
 * with its admin listener, and a small fetch wrapper that returns status, headers and JSON.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort, waitFor, type Harness, type RunningProcess } from '../harness/index.ts';

/** A long enough token (the admin listener refuses tokens under 16 characters). */
export const TOKEN = 'test-token-0123456789abcdef';

/** A fresh directory, removed when the harness closes. */
export function tempDir(h: Harness): string {
  const dir = mkdtempSync(join(tmpdir(), 'fulcrum-admin-'));
  h.defer(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function writeYaml(path: string, config: unknown): void {
  writeFileSync(path, stringify(config));
}

export interface AdminFulcrum {
  proc: RunningProcess;
  dir: string;
  configPath: string;
  /** The first listener's port. */
  port: number;
  adminPort: number;
  /** http://127.0.0.1:ADMINPORT */
  base: string;
  tokenFile: string;
}

export interface StartOptions {
  /** The config (without `admin`; it is added). Listener ports must be free ports. */
  config: Record<string, unknown>;
  /** Ports to wait for (the listeners'); the admin port is added. */
  ports: number[];
  /** Write a token file and configure it (default true). */
  token?: boolean;
  extraArgs?: string[];
  dir?: string;
}

/** Starts `fulcrum --config` with an admin listener on a free loopback port. */
export async function startWithAdmin(h: Harness, o: StartOptions): Promise<AdminFulcrum> {
  const dir = o.dir ?? tempDir(h);
  const adminPort = freePort();
  const tokenFile = join(dir, 'admin.token');
  writeFileSync(tokenFile, TOKEN + '\n', { mode: 0o600 });
  const config = { ...o.config, admin: { listen: `127.0.0.1:${adminPort}`, ...(o.token === false ? {} : { token_file: tokenFile }) } };
  const configPath = join(dir, 'fulcrum.yaml');
  writeYaml(configPath, config);
  const proc = await h.startFulcrum(['--config', configPath, ...(o.extraArgs ?? [])], { port: [...o.ports, adminPort] });
  return { proc, dir, configPath, port: o.ports[0]!, adminPort, base: `http://127.0.0.1:${adminPort}`, tokenFile };
}

export interface ApiAnswer {
  status: number;
  headers: Headers;
  text: string;
  // The tests look into answers freely; a wrong shape fails their expectations.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface ApiOptions {
  method?: string;
  token?: string | null;
  /** A value to send as JSON, or a string sent as it is. */
  body?: unknown;
  headers?: Record<string, string>;
  unix?: string;
}

/** One request, bounded; the body is parsed as JSON when it is JSON. */
export async function api(base: string, path: string, o: ApiOptions = {}): Promise<ApiAnswer> {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.token !== undefined && o.token !== null) headers.authorization = `Bearer ${o.token}`;
  let body: string | undefined;
  if (o.body !== undefined) {
    body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
    headers['content-type'] ??= 'application/json';
  }
  const init: RequestInit & { unix?: string } = { method: o.method ?? 'GET', headers, body, signal: AbortSignal.timeout(10_000) };
  if (o.unix !== undefined) init.unix = o.unix;
  const res = await fetch(base + path, init);
  const text = await res.text();
  let parsed: unknown = undefined;
  if ((res.headers.get('content-type') ?? '').startsWith('application/json')) parsed = JSON.parse(text);
  return { status: res.status, headers: res.headers, text, body: parsed };
}

/** POST/PATCH/DELETE with the right token. */
export function change(base: string, method: string, path: string, body?: unknown): Promise<ApiAnswer> {
  return api(base, path, { method, token: TOKEN, body });
}

/** Lines of a JSON-lines file that parse (a line being written may be cut). */
export async function jsonLines(path: string): Promise<Record<string, unknown>[]> {
  const file = Bun.file(path);
  if (!(await file.exists())) return [];
  const out: Record<string, unknown>[] = [];
  for (const line of (await file.text()).split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // partial last line
    }
  }
  return out;
}

/** Waits (bounded) until the access log has a line matching `pred`, and returns it. */
export async function waitForLogLine(path: string, pred: (r: Record<string, unknown>) => boolean, what: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  let seen: Record<string, unknown>[] = [];
  return await waitFor(
    async () => {
      seen = await jsonLines(path);
      return seen.find(pred);
    },
    { timeoutMs, what: `an access log line: ${what}`, details: () => `lines so far:\n${seen.map((l) => JSON.stringify(l)).join('\n')}` },
  );
}
