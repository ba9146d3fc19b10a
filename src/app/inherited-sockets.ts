/**
 * Listening sockets inherited from the process this one replaces (an upgrade, upgrade.ts). The
 * old process starts this one with each listening socket as an extra descriptor and their
 * addresses in FULCRUM_UPGRADE_FDS ("fd=address" pairs, comma-separated); a listener whose
 * address is among them adopts the socket, accept queue and all, instead of binding a new one,
 * so the port never stops listening. Descriptors no listener wanted (the configuration on disk
 * dropped that address) are closed once the listeners are bound.
 */
import { formatAddress, type Address } from '../core/address.ts';

export const UPGRADE_FDS_ENV = 'FULCRUM_UPGRADE_FDS';
/** The hand-over file (state-file.ts format with totals and operator states). */
export const HANDOVER_ENV = 'FULCRUM_HANDOVER';

let inherited: Map<string, number> | null = null;

function table(): Map<string, number> {
  if (inherited !== null) return inherited;
  inherited = new Map();
  for (const pair of (process.env[UPGRADE_FDS_ENV] ?? '').split(',')) {
    const eq = pair.indexOf('=');
    const fd = Number(pair.slice(0, eq));
    if (eq > 0 && Number.isInteger(fd) && fd > 2) inherited.set(pair.slice(eq + 1), fd);
  }
  // Not for this process's workers or its own successor: they get their own.
  delete process.env[UPGRADE_FDS_ENV];
  return inherited;
}

/** The inherited listening socket for `address`, taken (each is adopted once), or undefined. */
export function takeInheritedFd(address: Address): number | undefined {
  const key = formatAddress(address);
  const fd = table().get(key);
  if (fd !== undefined) table().delete(key);
  return fd;
}

/** Closes the inherited sockets no listener adopted; returns their addresses. */
export function closeUnusedInherited(): string[] {
  const left = [...table()];
  for (const [, fd] of left) {
    try {
      process.getBuiltinModule('node:fs').closeSync(fd);
    } catch {
      // Already closed: nothing to release.
    }
  }
  table().clear();
  return left.map(([address]) => address);
}

/** The hand-over file the old process left, or null (a plain start). Read once. */
export function takeHandoverPath(): string | null {
  const path = process.env[HANDOVER_ENV] ?? null;
  delete process.env[HANDOVER_ENV];
  return path === '' ? null : path;
}
