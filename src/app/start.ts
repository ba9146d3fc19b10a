/**
 * The composition root: `start` turns a ServeRequest into a running Fulcrum — the balancer and
 * its access log (serving.ts), pen's commands and -F file, the state file, the control port, the
 * admin API with its metrics, the worker pool (with --workers: this process is their primary),
 * the switch to -u's user and the pid file — and returns the handle the CLI forwards signals to.
 * A worker process builds on the same Serving (workers/worker.ts). Every failure to start undoes
 * what was started and throws a StartError with the reason.
 */
import type { Clock, Random } from '../core/clock.ts';
import { Ring } from '../core/ring.ts';
import type { SessionRecord } from '../control/observed.ts';
// The admin API (with prom-client's metrics) and the workers' pool load only when configured.
import type { AdminServer } from '../control/admin-server.ts';
import type { ControlPort } from '../control/control-port.ts';
import { formatAddress } from '../core/address.ts';
import { readDescriptorLimit } from '../dataplane/resources.ts';
import { systemClock, systemRandom } from '../dataplane/system-clock.ts';
import { resolveConfig, resolveServer } from './balancer.ts';
import { StartError, type ServeRequest } from './command-line.ts';
import { DIAGNOSTICS_ENV, makeDiagnostics, openDiagnosticOutput, type DiagnosticOutput } from './diagnostics.ts';
import { fulcrumVersion } from './facts.ts';
import { fileProblem, writeFileWhole } from './files.ts';
import { CommandError } from './pen-command-args.ts';
import type { PenCommands } from './pen-commands.ts';
import { fileProblems } from './preflight.ts';
import { outcomeReply, Reloader, type ReloadOutcome } from './reload.ts';
import { Serving, lookupUser, switchTo } from './serving.ts';
import { statsText } from './status.ts';
import { writeStderr } from './stderr.ts';
import type { Cluster } from './cluster.ts';
import type { Notifier } from './systemd.ts';
import type { ListenerRuntime } from './runtime.ts';
import type { WorkerPool } from './workers/primary.ts';
import { closeUnusedInherited, takeHandoverPath } from './inherited-sockets.ts';
import type { SharedState } from './workers/shared-state.ts';

export { readCommandLine, StartError, type CommandLine, type ServeRequest } from './command-line.ts';
export { versionLine } from './facts.ts';
export { defaultDiagnosticsTarget } from './diagnostics.ts';
export { isWorkerProcess } from './workers/environment.ts';

/** This process is a worker of --workers: serve what the primary sends (workers/worker.ts, loaded only then). */
export async function runWorker(): Promise<void> {
  await (await import('./workers/worker.ts')).runWorker();
}

/** What tells systemd nothing: outside a Type=notify unit. */
const SILENT: Notifier = { ready: () => undefined, reloading: () => undefined, stopping: () => undefined, status: () => undefined };

/** How long a start waits for the cluster's shared state before serving without it. */
const CLUSTER_START_WAIT_MS = 3000;
/** Finished connections kept for the dashboard and GET /api/v1/connections/recent. */
const RECENT_SESSIONS = 50;

export interface StartOptions {
  /** The command line a worker runs (the same as this process's). */
  workerCommand: string[];
  /** The environment for workers (this process's, minus what concerns it alone). */
  workerEnv: Record<string, string | undefined>;
  clock?: Clock;
  random?: Random;
  /** Where diagnostics go (diagnostics.ts), when the config says nothing; default stderr. */
  diagnostics?: string;
  /** An upgrade's new process: the environment that makes it report `ready` or its error on fd 3. */
  successorEnv?: Record<string, string | undefined>;
  /** How long an upgraded-away process lets its connections finish (default 30 s). */
  drainMs?: number;
}

/** A started Fulcrum, driven by the CLI's signals. */
export interface Running {
  /** Resolves once stopped, by `stop` or by the control port's `exit`. */
  readonly done: Promise<void>;
  /** SIGTERM, SIGINT: stop listening, let go of everything, save the state file. */
  stop(why: string): Promise<void>;
  /** SIGHUP: reopen the logs, re-read the admin token and the config; the outcome is logged. */
  reload(why: string): Promise<void>;
  /** SIGUSR1: the statistics text (and pen's status page written to its file, if any). */
  stats(): string;
  /**
   * SIGUSR2, `fulcrum upgrade`: start the new process on the same listening sockets, then drain
   * and exit (upgrade.ts); if it cannot start, this one goes on serving. The outcome is logged.
   */
  upgrade(why: string): Promise<void>;
  /**
   * SIGTTIN with --workers: replace the workers one at a time on the same listening sockets
   * (WorkerPool.restartWorkers); the primary stays. The outcome is logged.
   */
  restartWorkers(why: string): Promise<void>;
  /** "pid N, listening on ADDR (group G), ...; messages to WHERE": what the start prints. */
  readonly startLine: string;
  /** Writes a block (SIGUSR1's report) where the diagnostics go. */
  log(text: string): void;
}

/** What the start prints (and systemd's STATUS= shows): the pid, each listener, where messages go. */
function startLine(pid: number, listeners: readonly ListenerRuntime[], where: string): string {
  const on = listeners.map((l) => `${formatAddress(l.config.address)} (group ${l.group.name})`).join(', ');
  return `pid ${pid}, listening on ${on}; messages to ${where}`;
}

export async function start(req: ServeRequest, options: StartOptions): Promise<Running> {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? systemRandom;
  const { config, workers } = req;
  if (config.global.cluster !== null && workers > 1) throw new StartError('cluster: sharing state through Redis is not available with --workers (docs/cluster.md)');

  // With workers, this process is the primary: it checks, reports and answers the control port,
  // and the workers it starts serve (docs/workers.md). The shared memory goes when it exits.
  let shared: SharedState | null = null;
  let sharedMemory: typeof import('../dataplane/shared-memory.ts') | null = null;
  if (workers > 1) {
    const { SharedState } = await import('./workers/shared-state.ts');
    sharedMemory = await import('../dataplane/shared-memory.ts');
    try {
      shared = SharedState.create({ dir: sharedMemory.sharedMemoryDir(), prefix: `fulcrum-${process.pid}-`, workers: 2 * workers, worker: -1, epochMs: clock.now() });
    } catch (e) {
      throw new StartError(`cannot create the shared memory for ${workers} workers: ${(e as Error).message}`, 1, e);
    }
    process.on('exit', () => shared?.remove());
  }
  // Files it will write and -u's user, before anything is bound: a mistake is one line (preflight.ts).
  const early = await fileProblems(config);
  if (early.length > 0) throw new StartError(early[0]!.message);
  let serving: Serving;
  const diagnosticsTarget = config.global.diagnosticsLog ?? options.diagnostics ?? 'stderr';
  let output: DiagnosticOutput;
  try {
    output = await openDiagnosticOutput(diagnosticsTarget, clock);
  } catch (e) {
    throw new StartError((e as Error).message, 1, e);
  }
  try {
    const diag = makeDiagnostics('fulcrum', () => serving?.balancer.global.debug ?? config.global.debug, clock, output);
    serving = new Serving(await resolveConfig(config), diag, clock, random, shared === null ? {} : { mode: 'primary', shared });
  } catch (e) {
    throw new StartError((e as Error).message, 1, e);
  }
  const balancer = serving.balancer;
  // systemd's notifications (systemd.ts) are loaded only under a unit that asks for them.
  const notify: Notifier = (process.env.NOTIFY_SOCKET ?? '') === '' ? SILENT : (await import('./systemd.ts')).systemdNotifier(process.env, balancer.diag);
  // pen's command language (-o, -F, the control port, a reload of -F) is loaded only when used.
  let commandsLoaded: Promise<PenCommands> | null = null;
  const penCommands = (): Promise<PenCommands> => (commandsLoaded ??= import('./pen-commands.ts').then(({ PenCommands }) => new PenCommands(balancer)));
  try {
    if (req.commands.length > 0) {
      const commands = await penCommands();
      for (const c of req.commands) await commands.execute(c);
    }
    if (config.global.commandFile !== null) {
      await (await penCommands()).runFile(config.global.commandFile, { baseDir: process.getBuiltinModule('node:path').dirname(config.global.commandFile) });
    }
  } catch (e) {
    if (e instanceof CommandError) throw new StartError(e.message, 1, e);
    throw e;
  }
  if (balancer.defaultGroup.servers.length === 0) throw new StartError('no servers configured');

  const stateFile = config.global.stateFile;
  // An upgrade's hand-over (tracking tables, totals, operator states) replaces the state file.
  const handover = takeHandoverPath();
  if (handover !== null) {
    try {
      const { loaded, dropped } = await (await import('./state-file.ts')).loadState(balancer, handover);
      balancer.diag.debug(1, `upgrade: ${loaded} tracked client(s) taken over, ${dropped} dropped (server or group gone)`);
    } catch (e) {
      balancer.diag.error(`upgrade: ${(e as Error).message}; starting with empty client tables`);
    }
  } else if (stateFile !== null) {
    try {
      const { loaded, dropped } = await (await import('./state-file.ts')).loadState(balancer, stateFile);
      balancer.diag.debug(1, `state file ${stateFile}: ${loaded} tracked client(s) loaded, ${dropped} dropped (server or group gone)`);
    } catch (e) {
      balancer.diag.error(`${(e as Error).message}; starting with empty client tables`);
    }
  }
  try {
    // Waits until the file is open, so that a later failure leaves nothing half-open at exit.
    await serving.openAccessLog(config.global.accessLog);
  } catch (e) {
    const path = config.global.accessLog?.path ?? '';
    await balancer.stop();
    throw new StartError(`cannot open the access log ${path}: ${fileProblem(e, path, 'write')}`, 1, e);
  }
  const adminConfig = config.global.admin;
  if (adminConfig?.tokenFile != null) {
    // A bad token file stops the start before any listener is bound.
    const { readTokenFile } = await import('../control/admin-server.ts');
    try {
      readTokenFile(adminConfig.tokenFile);
    } catch (e) {
      throw new StartError((e as Error).message, 1, e);
    }
  }

  const pidFile = config.global.pidFile;
  let control: ControlPort | null = null;
  let pool: WorkerPool | null = null;
  let admin: AdminServer | null = null;
  let cluster: Cluster | null = null;
  let stopping: Promise<void> | null = null;
  let stopped!: () => void;
  const done = new Promise<void>((resolve) => (stopped = resolve));
  /** Undoes a start that failed half-way, then reports why. */
  const abandon = async (message: string, cause?: unknown): Promise<never> => {
    cluster?.stop();
    control?.stop();
    await admin?.stop();
    await pool?.stop();
    await balancer.stop();
    throw new StartError(message, 1, cause);
  };
  /** Set once a successor serves: it owns the pid file and the state file now. */
  let succeeded = false;
  const stop = (why: string): Promise<void> => {
    stopping ??= (async () => {
      balancer.diag.debug(1, `${why}: stopping`);
      const open = balancer.activeCount;
      const waiting = balancer.waitingCount;
      if (open + waiting > 0) balancer.diag.info(`${why}: stopped accepting; closed ${open} connections (${waiting} waiting)`);
      cluster?.stop();
      notify.stopping(`stopping (${why})`);
      control?.stop();
      await admin?.stop();
      await pool?.stop();
      await balancer.stop();
      if (stateFile !== null && !succeeded) {
        try {
          const n = await (await import('./state-file.ts')).saveState(balancer, stateFile);
          balancer.diag.debug(1, `state file ${stateFile}: ${n} tracked client(s) saved`);
        } catch (e) {
          balancer.diag.error(`cannot save the state file ${stateFile}: ${(e as Error).message}`);
        }
      }
      await serving.closeLogs();
      if (pidFile !== null && !succeeded) await process.getBuiltinModule('node:fs/promises').unlink(pidFile).catch(() => undefined);
      await output.close();
      stopped();
    })();
    return stopping;
  };
  /**
   * SIGHUP, the control port's `reload` and the admin API's: reopen the logs (rotation), re-read
   * the admin token, then re-read --config (one transaction) or -F; serialised by the Reloader.
   */
  const reloader = new Reloader(balancer, penCommands, req.overrides);
  const reloadOutcome = async (): Promise<ReloadOutcome> => {
    // A log that cannot be reopened is reported and the old file kept: the reload goes on.
    const warnings = serving.reopenLogs();
    output.reopen();
    admin?.reloadToken();
    pool?.reopenLogs();
    let outcome: ReloadOutcome;
    try {
      outcome = await reloader.reload();
    } finally {
      cluster?.attach(); // new groups' client tables

      // With workers: they get what changed (nothing is sent when nothing did).
      pool?.configChanged();
    }
    return warnings.length === 0 ? outcome : { ...outcome, warnings };
  };
  /** The same as pen's text: the report, or a CommandError saying why nothing changed. */
  const reload = async (): Promise<string> => {
    const r = outcomeReply(await reloadOutcome(), balancer.global.configFile !== null);
    if ('error' in r) throw new CommandError(r.error);
    return r.reply;
  };

  /** The admin API's modules (and the version it reports), loaded only when it is configured. */
  let adminApi: [typeof import('../control/admin-server.ts'), typeof import('../control/metrics.ts'), typeof import('../dataplane/http-listener.ts'), string] | null = null;
  const openAdmin = (): void => {
    if (adminConfig === null || adminApi === null) return;
    const [{ AdminServer }, { Metrics }, { listenHttp }, version] = adminApi;
    // The dashboard's latest connections: one O(1) push per finished connection, only with an admin listener.
    const recent = new Ring<SessionRecord>(RECENT_SESSIONS);
    balancer.onSessionEnd.push((s) => recent.push(s));
    balancer.onUdpSessionEnd.push((s) => recent.push(s));
    admin = AdminServer.start({
      config: adminConfig,
      balancer,
      metrics: new Metrics(balancer, { version, reloads: reloader, logs: serving, ...(cluster === null ? {} : { cluster }) }),
      listen: listenHttp,
      clock,
      reload: reloadOutcome,
      reloadSource: () => reloader.source,
      resolveServer,
      version,
      runtimeVersion: Bun.version,
      diag: balancer.diag,
      changed: () => pool?.configChanged(),
      recent,
    });
  };
  /** The control port's code and pen's commands, loaded before it opens: only with -C. */
  let controlApi: { createControlPort: typeof import('./control-service.ts').createControlPort; commands: PenCommands } | null = null;
  const openControl = (): void => {
    if (controlApi === null) return;
    control = controlApi.createControlPort(balancer, controlApi.commands, { exit: () => void stop('exit command'), reload, afterCommand: () => pool?.configChanged() });
    control?.start();
  };
  if (config.global.control !== null) {
    controlApi = { createControlPort: (await import('./control-service.ts')).createControlPort, commands: await penCommands() };
  }
  // A cluster loads the shared state before the listeners open (bounded: a Redis that is down
  // never holds up the start). Its code is imported only when configured.
  if (config.global.cluster !== null) {
    const { Cluster } = await import('./cluster.ts');
    cluster = new Cluster(balancer, config.global.cluster, clock);
    await cluster.start(CLUSTER_START_WAIT_MS);
  }
  // The open-files limit the descriptor budget is made of, read before binding without node:fs.
  await readDescriptorLimit();
  try {
    balancer.start();
    for (const a of closeUnusedInherited()) balancer.diag.info(`upgrade: listener ${a} is gone from the configuration; its socket is closed`);
    openControl();
  } catch (e) {
    cluster?.stop();
    await balancer.stop();
    throw new StartError(control === null ? (e as Error).message : `cannot open the control port ${config.global.control}: ${(e as Error).message}`, 1, e);
  }
  if (adminConfig !== null) {
    adminApi = await Promise.all([import('../control/admin-server.ts'), import('../control/metrics.ts'), import('../dataplane/http-listener.ts'), fulcrumVersion()]);
    try {
      openAdmin();
    } catch (e) {
      await abandon((e as Error).message, e);
    }
    balancer.diag.debug(1, `admin API on ${admin!.url ?? admin!.address}${admin!.readOnly ? ' (read-only: no token file)' : ''}`);
  }
  if (shared !== null) {
    // Workers write their diagnostics where this process writes its own.
    const env = { ...options.workerEnv, [DIAGNOSTICS_ENV]: diagnosticsTarget };
    const { WorkerPool } = await import('./workers/primary.ts');
    pool = new WorkerPool({ count: workers, shared, balancer, command: options.workerCommand, env, diag: balancer.diag });
    try {
      await pool.start();
    } catch (e) {
      await abandon((e as Error).message, e);
    }
    balancer.diag.debug(1, `${workers} workers ready (pids ${pool.pids.join(', ')})`);
  }
  if (config.global.user !== null) {
    try {
      const ids = await lookupUser(config.global.user);
      // Replacement workers are started by this process after it has dropped privileges.
      if (shared !== null) sharedMemory!.chownBlocks(shared.paths, ids.uid, ids.gid);
      switchTo(ids);
    } catch (e) {
      await abandon(`cannot switch to user ${config.global.user}: ${(e as Error).message}`, e);
    }
  }
  // Written as -u's user, as pen does (preflight.ts checked it before anything was bound).
  if (pidFile !== null) {
    try {
      await process.getBuiltinModule('node:fs/promises').writeFile(pidFile, `${process.pid}\n`);
    } catch (e) {
      await abandon(`cannot write the pid file ${pidFile}: ${fileProblem(e, pidFile, 'write', config.global.user)}`, e);
    }
  }
  if (balancer.global.debug >= 1) balancer.diag.debug(1, `fulcrum ${await fulcrumVersion()} started, pid ${process.pid}`);
  const line = startLine(process.pid, balancer.listeners, output.where);
  if (!req.quiet) balancer.diag.info(line);
  notify.ready(line);

  let upgrading = false;
  /** Hands the listening sockets to a new process, then drains and exits (upgrade.ts). */
  const upgrade = async (why: string): Promise<void> => {
    if (upgrading || stopping !== null) return balancer.diag.info(`${why}: an upgrade or a stop is already under way`);
    upgrading = true;
    // The new process binds the control port and admin API itself: they close for its start-up.
    control?.stop();
    control = null;
    await admin?.stop();
    admin = null;
    let pid: number;
    try {
      pid = await (await import('./upgrade.ts')).startSuccessor(balancer, { command: options.workerCommand, env: options.successorEnv ?? options.workerEnv, timeoutMs: 30_000 });
    } catch (e) {
      balancer.diag.error(`${why}: ${(e as Error).message}; this process (pid ${process.pid}) goes on serving`);
      try {
        openAdmin();
        openControl();
      } catch (e2) {
        balancer.diag.error(`${why}: cannot reopen the control port or admin API: ${(e2 as Error).message}`);
      }
      upgrading = false;
      return;
    }
    succeeded = true;
    const drainMs = options.drainMs ?? 30_000;
    balancer.diag.info(`${why}: pid ${pid} serves on the same listening sockets; pid ${process.pid} drains ${balancer.activeCount} connection(s) (deadline ${drainMs / 1000} s)`);
    const left = pool !== null ? await pool.drain(drainMs) : await (await import('./upgrade.ts')).drainConnections(balancer, drainMs);
    if (left > 0) balancer.diag.error(`${why}: drain deadline passed: ${left} connection(s) closed`);
    else balancer.diag.info(`${why}: drained; exiting`);
    await stop(why);
  };

  return {
    done,
    stop,
    startLine: line,
    // On a terminal SIGUSR1's report stays pen's plain block; elsewhere it is stamped and tagged.
    log: (text) => (diagnosticsTarget === 'stderr' ? writeStderr(text) : output.write('info', 'fulcrum', text)),
    reload: (why) => {
      notify.reloading(`reloading (${why})`);
      return reload().then(
        (report) => {
          balancer.diag.info(`${why}: ${report.trimEnd().split('\n').join('; ')}`);
          notify.ready(`reloaded (${why}); ${startLine(process.pid, balancer.listeners, output.where)}`);
        },
        (e: Error) => {
          balancer.diag.error(`${why}: ${e.message}`);
          notify.ready(`reload failed (${why}): ${e.message}; still serving the previous configuration`);
        },
      );
    },
    upgrade,
    restartWorkers: async (why) => {
      if (pool === null) return balancer.diag.info(`${why}: no workers to restart (one process: use SIGUSR2 or fulcrum upgrade)`);
      if (upgrading || stopping !== null) return balancer.diag.info(`${why}: an upgrade or a stop is under way`);
      try {
        balancer.diag.info(`${why}: ${await pool.restartWorkers(options.drainMs ?? 30_000)}`);
      } catch (e) {
        balancer.diag.error(`${why}: ${(e as Error).message}`);
      }
    },
    stats: () => {
      let text = statsText(balancer);
      if (pool !== null) text += pool.statsLines().join('\n') + '\n';
      if (control !== null) text += `  ${control.statsLine()}\n`;
      const file = balancer.global.statusFile;
      // pen's status page (pen-reports.ts) is loaded when a status file is first written.
      if (file !== null) {
        import('./pen-reports.ts')
          .then(({ penStatusHtml }) => writeFileWhole(file, penStatusHtml(balancer, balancer.defaultGroup)))
          .catch((e: Error) => balancer.diag.error(`cannot write ${file}: ${e.message}`));
      }
      return text;
    },
  };
}
