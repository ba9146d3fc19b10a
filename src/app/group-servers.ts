/**
 * Helpers for the Server objects of a group, shared by the runtime, reloads and the operator's
 * commands: making a Server from its config, the key that identifies a server across reloads,
 * its label in log lines, and the Selector settings a group config gives.
 */
import { formatAddress, type Address } from '../core/address.ts';
import type { SelectorSettings } from '../core/selector.ts';
import { Server } from '../core/servers/server.ts';
import type { GroupConfig, ServerConfig } from '../config/model.ts';

/** Makes a Server object (with workers: one bound to shared memory). */
type ServerFactory = (index: number, settings: ServerConfig, role: Server['role']) => Server;
const plainServer: ServerFactory = (index, settings, role) => new Server(index, settings, role);

export function makeServer(index: number, c: ServerConfig, role: Server['role'] = 'regular', create: ServerFactory = plainServer): Server {
  const s = create(index, { ...c }, role);
  s.checkPort = c.checkPort ?? null;
  s.checkAddress = c.checkAddress ?? null;
  if (c.state !== undefined && c.state !== 'enabled') s.admin = c.state;
  return s;
}

export function serverKey(c: { address: Address }): string {
  return formatAddress(c.address);
}

/** "group app server 1 (127.0.0.1:9001)", for log lines. */
export function serverLabel(group: string, s: Server): string {
  const which = s.role === 'regular' ? `server ${s.index}` : s.role === 'backup' ? `backup ${s.index}` : s.role;
  return `group ${group} ${which} (${formatAddress(s.address)})`;
}

export function selectorSettings(c: GroupConfig): SelectorSettings {
  return {
    tracking: c.tracking,
    saveTracking: c.saveTracking,
    stubborn: c.stubborn,
    hashSourcePort: c.hashSourcePort,
    blacklistMs: c.blacklistMs,
    clientAcl: c.clientAcl,
    consecutiveFailures: c.outlier.consecutiveFailures,
    maxEjectionMs: c.outlier.maxEjectionMs,
    earlyResets: c.outlier.earlyResets,
    retries: c.retries,
    queueing: c.queueMax > 0,
    backupBalance: c.backupBalance,
  };
}
