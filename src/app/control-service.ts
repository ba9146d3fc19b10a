/**
 * Wires pen's control port (-C) to pen's command language: the protocol layer
 * (control/control-port.ts) asks here who may connect (control_acl) and what a line does
 * (PenCommands, plus `reload` and `exit`, which act on the whole process).
 */
import { parseListenAddress } from '../core/address.ts';
import { ControlPort, type ControlPortOptions } from '../control/control-port.ts';
import { listenLines } from '../dataplane/control-socket.ts';
import type { Balancer } from './balancer.ts';
import type { PenCommands } from './pen-commands.ts';

export interface ControlHooks {
  /** `exit` (with -X): stop as on SIGTERM; called after the reply has gone out. */
  exit(): void;
  /** `reload`: what SIGHUP does; resolves to the reply. */
  reload(): Promise<string>;
  /** After each command (with workers: the primary sends them what it changed). */
  afterCommand?(): void;
}

export function createControlPort(b: Balancer, commands: PenCommands, hooks: ControlHooks, tuning: Partial<Pick<ControlPortOptions, 'timeoutMs' | 'firstByteTimeoutMs' | 'maxLineBytes' | 'maxConnections'>> = {}): ControlPort | null {
  const spec = b.global.control;
  if (spec === null) return null;
  return new ControlPort({
    address: parseListenAddress(spec),
    listen: (address, service, limits) => listenLines(address, service, { ...limits, clock: b.clock }),
    permits: (client) => b.acls.permits(b.global.controlAcl, client),
    log: (level, message) => b.diag.debug(level, message),
    run: async (line) => {
      let exitRequested = false;
      let reply: string;
      try {
        reply = await commands.execute(line, {
          allowExit: b.global.controlExit,
          exit: () => {
            exitRequested = true;
          },
          reload: hooks.reload,
        });
      } finally {
        hooks.afterCommand?.();
      }
      return exitRequested ? { reply, after: hooks.exit } : { reply };
    },
    ...tuning,
  });
}
