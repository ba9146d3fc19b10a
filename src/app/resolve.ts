/**
 * Server host names to addresses, at start, on reload and on an API add (never per
 * connection): the only DNS lookups Fulcrum makes. Resolving a whole configuration is the step
 * that makes it ready to apply, so it also loads the code the configuration uses (on-demand.ts).
 */
import { isIpLiteral } from '../core/ip.ts';
import type { FulcrumConfig, GroupConfig, ServerConfig } from '../config/model.ts';
import { FulcrumError } from '../core/errors.ts';
import { loadCodeFor } from './on-demand.ts';

/** Resolves a server's host name to an address, keeping the name for TLS and reports. */
export async function resolveServer(s: ServerConfig): Promise<ServerConfig> {
  if (s.address.kind !== 'tcp' || isIpLiteral(s.address.host)) return s;
  const name = s.hostname ?? s.address.host;
  let found: { address: string };
  try {
    found = await process.getBuiltinModule('node:dns/promises').lookup(name);
  } catch (e) {
    throw new FulcrumError('E_RESOLVE', `cannot resolve server host name "${name}": ${(e as Error).message}`);
  }
  return { ...s, hostname: name, address: { kind: 'tcp', host: found.address, port: s.address.port } };
}

/**
 * Resolves every server host name of a config (servers, emergency, abuse) and loads the code it
 * needs (TLS, UDP, HTTP mode, health checks), before it is applied.
 */
export async function resolveConfig(config: FulcrumConfig): Promise<FulcrumConfig> {
  await loadCodeFor(config);
  const groups: GroupConfig[] = [];
  for (const g of config.groups) {
    groups.push({
      ...g,
      servers: await Promise.all(g.servers.map(resolveServer)),
      emergency: g.emergency === null ? null : await resolveServer(g.emergency),
      abuse: g.abuse === null ? null : await resolveServer(g.abuse),
    });
  }
  return { ...config, groups };
}
