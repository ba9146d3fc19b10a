/**
 * Runs a Balancer inside the test process from a pen-style command line, so integration tests
 * can use real sockets and still look at internal counters. The CLI's own behaviour (signals,
 * pid files, daemonising) is covered by the e2e tests that spawn the real `fulcrum`.
 */
import { Balancer, resolveConfig, type Diagnostics } from '../../src/app/balancer.ts';
import { PenCommands } from '../../src/app/pen-commands.ts';
import { applyLongOptions, parsePenArgs } from '../../src/config/pen-args.ts';
import type { Harness } from '../harness/index.ts';
import { freePort } from '../harness/index.ts';

export interface InProcess {
  balancer: Balancer;
  commands: PenCommands;
  port: number;
  messages: string[];
}

export async function startInProcess(h: Harness, args: string[], listenHost = '127.0.0.1'): Promise<InProcess> {
  const port = freePort(listenHost);
  const listen = listenHost.includes(':') ? `[${listenHost}]:${port}` : `${listenHost}:${port}`;
  const parsed = parsePenArgs(['-f', ...args.map((a) => (a === 'LISTEN' ? listen : a))]);
  applyLongOptions(parsed.config, parsed.long); // Fulcrum's long options, as the CLI applies them
  const messages: string[] = [];
  const diag: Diagnostics = {
    info: (m) => messages.push(m),
    error: (m) => messages.push('error: ' + m),
    debug: (_l, m) => messages.push(m),
  };
  const balancer = new Balancer(await resolveConfig(parsed.config), diag);
  const commands = new PenCommands(balancer);
  for (const c of parsed.commands) await commands.execute(c);
  balancer.start();
  h.defer(() => balancer.stop());
  return { balancer, commands, port, messages };
}
