/**
 * The client tracking tables saved on stop and loaded on start (`--state-file`, `global.state_file`),
 * so that a restart does not send every known client to a new server.
 *
 * Entries name their server by address, not by index, so a changed server list cannot send a
 * client to the wrong server: an entry whose group or server no longer exists is dropped. The
 * order (least recently seen first) is kept, so the LRU order survives too, and expiry keeps
 * counting from the time the client was last seen.
 *
 * An upgrade (upgrade.ts) hands the new process the same file with two more fields: the totals
 * (counters since start) and the servers' operator states (drain, maintenance), so that neither a
 * counter nor an operator's decision goes back when the code is replaced.
 */
import type { Balancer } from './balancer.ts';
import { serverKey } from './group-servers.ts';
import { FulcrumError } from '../core/errors.ts';
import type { AdminState } from '../core/servers/server.ts';
import type { TerminationReason } from '../core/termination.ts';
import type { Totals } from './totals.ts';

/** node:fs/promises, taken on first use: not loaded at rest (docs/performance.md). */
function fsPromises(): typeof import('node:fs/promises') {
  return process.getBuiltinModule('node:fs/promises');
}

const VERSION = 1;

interface SavedClient {
  client: string;
  server: string;
  last_seen_ms: number;
}

interface SavedAdmin {
  group: string;
  server: string;
  state: AdminState;
}

interface StateFile {
  version: number;
  saved_at: string;
  groups: Record<string, SavedClient[]>;
  /** Only in an upgrade's hand-over. */
  totals?: Totals;
  admin?: SavedAdmin[];
}

/**
 * Writes the tables (atomically: a temporary file renamed over the old one); for an upgrade's
 * hand-over (`handover`), the totals and operator states too.
 */
export async function saveState(b: Balancer, path: string, handover = false): Promise<number> {
  const state: StateFile = { version: VERSION, saved_at: new Date(b.clock.now()).toISOString(), groups: {} };
  if (handover) {
    state.totals = { ...b.totals, ends: { ...b.totals.ends } };
    state.admin = [];
    for (const { group, server } of b.allServers()) if (server.admin !== 'enabled') state.admin.push({ group: group.name, server: serverKey(server), state: server.admin });
  }
  let n = 0;
  for (const g of b.groups.values()) {
    const out: SavedClient[] = [];
    for (const c of g.clients.values()) {
      const s = c.server >= 0 ? g.servers[c.server] : undefined;
      if (s === undefined) continue;
      out.push({ client: c.key, server: serverKey(s), last_seen_ms: c.lastSeenMs });
    }
    state.groups[g.name] = out;
    n += out.length;
  }
  const tmp = `${path}.tmp-${process.pid}`;
  await fsPromises().writeFile(tmp, JSON.stringify(state) + '\n', { mode: 0o600 });
  await fsPromises().rename(tmp, path);
  return n;
}

export interface LoadedState {
  loaded: number;
  dropped: number;
}

const ADMIN_STATES: readonly string[] = ['enabled', 'drain', 'maintenance'] satisfies AdminState[];

/** An upgrade's totals and operator states, if the file has them (a plain state file has not). */
function loadHandover(b: Balancer, state: Record<string, unknown>): void {
  const t = state.totals;
  // With workers the primary's totals are sums of the workers' shared records (read-only here).
  if (isRecord(t) && b.mode === 'single') {
    for (const k of ['accepted', 'connected', 'finished', 'queued', 'bytesFromClients', 'bytesToClients'] as const) {
      if (typeof t[k] === 'number') b.totals[k] += t[k];
    }
    if (isRecord(t.ends)) {
      for (const [r, n] of Object.entries(t.ends)) {
        const reason = r as TerminationReason;
        if (typeof n === 'number') b.totals.ends[reason] = (b.totals.ends[reason] ?? 0) + n;
      }
    }
  }
  if (!Array.isArray(state.admin)) return;
  for (const a of state.admin as unknown[]) {
    if (!isRecord(a) || typeof a.group !== 'string' || typeof a.server !== 'string' || !ADMIN_STATES.includes(a.state as string)) continue;
    for (const { group, server } of b.allServers()) {
      if (group.name === a.group && serverKey(server) === a.server) server.admin = a.state as AdminState;
    }
  }
}

/**
 * Loads saved tables into the groups. A missing file is a first start (nothing loaded); a file
 * that cannot be understood is reported by the caller and ignored, never fatal.
 */
export async function loadState(b: Balancer, path: string): Promise<LoadedState> {
  let text: string;
  try {
    text = await fsPromises().readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { loaded: 0, dropped: 0 };
    throw new FulcrumError('E_STATE_FILE', `cannot read the state file ${path}: ${(e as Error).message}`, { cause: e });
  }
  let state: unknown;
  try {
    state = JSON.parse(text);
  } catch (e) {
    throw new FulcrumError('E_STATE_FILE', `the state file ${path} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (!isRecord(state) || state.version !== VERSION || !isRecord(state.groups)) {
    throw new FulcrumError('E_STATE_FILE', `the state file ${path} is not a Fulcrum state file (version ${VERSION})`);
  }
  loadHandover(b, state);
  let loaded = 0;
  let dropped = 0;
  for (const [name, entries] of Object.entries(state.groups)) {
    const g = b.groups.get(name);
    if (!Array.isArray(entries)) continue;
    if (g === undefined) {
      dropped += entries.length;
      continue;
    }
    const index = new Map(g.servers.map((s) => [serverKey(s), s.index]));
    for (const e of entries as unknown[]) {
      if (!isRecord(e) || typeof e.client !== 'string' || typeof e.server !== 'string' || typeof e.last_seen_ms !== 'number') {
        dropped++;
        continue;
      }
      const i = index.get(e.server);
      if (i === undefined) {
        dropped++;
        continue;
      }
      g.clients.restore(e.client, i, e.last_seen_ms);
      loaded++;
    }
  }
  return { loaded, dropped };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
