/**
 * A worker process (docs/workers.md): started by the primary with the same command line and
 * FULCRUM_WORKER set, it maps the shared memory, waits for the running configuration over IPC,
 * adopts the listening sockets the primary holds (inherited at spawn: one accept queue for all
 * workers; a listener added by a later reload is bound with SO_REUSEPORT) and serves. It never checks health, never opens the
 * control port and never writes reports: the primary does, once. Configuration changes arrive
 * as whole snapshots and are applied as reloads; server state changes arrive as events.
 *
 * It stops on SIGTERM from the primary, and also when the primary is gone (the IPC channel
 * closes), so that a killed primary never leaves orphans holding the port. Other signals are the
 * primary's to handle (a terminal's Ctrl-C reaches the whole process group).
 */
import type { Clock, Random } from '../../core/clock.ts';
import { systemClock, systemRandom } from '../../dataplane/system-clock.ts';
import { DIAGNOSTICS_ENV, makeDiagnostics, openDiagnosticOutput } from '../diagnostics.ts';
import { lookupUser, Serving, switchTo } from '../serving.ts';
import { SharedState } from './shared-state.ts';
import { drainConnections } from '../upgrade.ts';
import { closeUnusedInherited } from '../inherited-sockets.ts';
import { readDescriptorLimit } from '../../dataplane/resources.ts';
import { loadCodeFor } from '../on-demand.ts';
import { WORKER_COUNT_ENV, WORKER_ENV, WORKER_EPOCH_ENV, WORKER_SHM_ENV, type FromWorker, type ToWorker } from './protocol.ts';

/** A worker that gets no configuration in this time gives up (the primary is stuck or gone). */
const CONFIG_WAIT_MS = 30_000;

/** This process is a worker: serve what the primary sends until it says stop or is gone. */
export async function runWorker(clock: Clock = systemClock, random: Random = systemRandom): Promise<void> {
  const worker = Number(process.env[WORKER_ENV]);
  const workers = Number(process.env[WORKER_COUNT_ENV]);
  const shm = process.env[WORKER_SHM_ENV] ?? '';
  const epochMs = Number(process.env[WORKER_EPOCH_ENV]);
  const send = (m: FromWorker): void => {
    process.send?.(m);
  };
  if (process.send === undefined || !Number.isInteger(worker) || !Number.isInteger(workers) || shm === '') {
    process.stderr.write(`fulcrum: ${WORKER_ENV} is set, but this process was not started by a Fulcrum primary\n`);
    process.exit(2);
  }
  const slash = shm.lastIndexOf('/');
  const shared = SharedState.open({ dir: shm.slice(0, slash), prefix: shm.slice(slash + 1), workers, worker, epochMs });
  /** Each worker writes the access lines of its own connections (appending, like -l). */
  let serving: Serving | null = null;
  // The primary's target (its own start already checked that it can be opened).
  const output = await openDiagnosticOutput(process.env[DIAGNOSTICS_ENV] ?? 'stderr', clock);
  const diag = makeDiagnostics(`fulcrum worker ${worker}`, () => serving?.balancer.global.debug ?? 0, clock, output);

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await serving?.balancer.stop();
    await serving?.closeLogs();
    await output.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('disconnect', () => void stop());
  for (const sig of ['SIGINT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGTTIN'] as const) process.on(sig, () => undefined);

  const handle = async (m: ToWorker): Promise<void> => {
    if (stopping) return;
    switch (m.t) {
      case 'config': {
        shared.useDirectory(m.directory);
        if (serving === null) {
          try {
            await loadCodeFor(m.config);
            serving = new Serving(m.config, diag, clock, random, { mode: 'worker', shared });
            await serving.openAccessLog(m.config.global.accessLog);
            await readDescriptorLimit();
            serving.balancer.start();
            closeUnusedInherited();
            if (m.config.global.user !== null) switchTo(await lookupUser(m.config.global.user));
          } catch (e) {
            send({ t: 'failed', seq: 0, error: (e as Error).message });
            await serving?.balancer.stop();
            process.exit(1);
          }
          diag.debug(1, `serving (pid ${process.pid})`);
          send({ t: 'ready' });
          return;
        }
        try {
          // Messages are handled one at a time: the code is loaded before the next one is read.
          await loadCodeFor(m.config);
          const changes = serving.balancer.reload(m.config);
          diag.debug(1, `configuration ${m.seq} applied${changes.length > 0 ? `: ${changes.join('; ')}` : ''}`);
          send({ t: 'applied', seq: m.seq, changes });
        } catch (e) {
          diag.error(`configuration ${m.seq} not applied: ${(e as Error).message}`);
          send({ t: 'failed', seq: m.seq, error: (e as Error).message });
        }
        return;
      }
      case 'server': {
        const g = serving?.balancer.groups.get(m.group);
        if (g === undefined) return;
        for (const s of g.selector.allServers()) {
          if ((s as { slot?: number }).slot === m.slot) {
            g.serverChanged(s, m.up);
            return;
          }
        }
        return;
      }
      case 'reopen':
        serving?.reopenLogs();
        serving?.balancer.reloadTls('SIGHUP');
        return;
      case 'drain': {
        if (serving === null) return void stop();
        const left = await drainConnections(serving.balancer, m.ms);
        send({ t: 'drained', left });
        return void stop();
      }
    }
  };
  // One message at a time, in order (a configuration may wait for -u's user lookup).
  let queue = Promise.resolve();
  process.on('message', (m: ToWorker) => {
    queue = queue.then(() => handle(m)).catch((e: unknown) => diag.error(`IPC: ${(e as Error).message}`));
  });
  clock.setTimeout(
    () => {
      if (serving === null && !stopping) {
        diag.error(`no configuration from the primary after ${CONFIG_WAIT_MS} ms; exiting`);
        process.exit(1);
      }
    },
    CONFIG_WAIT_MS,
    undefined,
  );
  send({ t: 'hello' });
}
