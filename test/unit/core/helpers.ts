import { AclTable } from '../../../src/core/acl/acl.ts';
import { algorithms, type AlgorithmName } from '../../../src/core/balancing/registry.ts';
import { ClientTable } from '../../../src/core/clients/client-table.ts';
import { seededRandom } from '../../../src/core/clock.ts';
import { ManualClock } from '../../helpers/manual-clock.ts';
import { defaultSelectorSettings, newSelectionState, Selector, type SelectorSettings } from '../../../src/core/selector.ts';
import { Server } from '../../../src/core/servers/server.ts';

export function servers(n: number, fields: Partial<{ maxConnections: number; hardLimit: number; weight: number; priority: number }>[] = []): Server[] {
  return Array.from({ length: n }, (_, i) =>
    new Server(i, {
      address: { kind: 'tcp', host: '10.0.0.' + (i + 1), port: 80 },
      maxConnections: 0,
      hardLimit: 0,
      weight: 0,
      priority: 0,
      acl: 0,
      ...fields[i],
    }),
  );
}

export function selectorFor(
  list: Server[],
  algorithm: AlgorithmName = 'roundrobin',
  settings: Partial<SelectorSettings> = {},
  clientsMax = 2048,
  trackingMs = 0,
): { selector: Selector; clock: ManualClock; acls: AclTable; clients: ClientTable } {
  const clock = new ManualClock();
  const acls = new AclTable();
  const clients = new ClientTable(clientsMax, trackingMs);
  const kind = algorithms[algorithm];
  const selector = new Selector({
    servers: list,
    balancer: kind.create(seededRandom(42)),
    needsClientHash: kind.hashesClient,
    settings: { ...defaultSelectorSettings(), ...settings },
    acls,
    clients,
    clock,
  });
  return { selector, clock, acls, clients };
}

/** Runs one whole connection that succeeds: returns the server index (or a role name, or null). */
export function connectOnce(selector: Selector, client: string, keepOpen = false): string | number | null {
  const st = newSelectionState(client);
  const s = selector.begin(st);
  if (s === null) return null;
  selector.connected(st);
  if (!keepOpen) selector.released(st);
  return s.role === 'regular' ? s.index : s.role;
}
