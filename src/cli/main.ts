#!/usr/bin/env bun
/**
 * The `fulcrum` command. This file is the balancer's own process (npm links it as the bin and
 * Bun runs it directly), so supervisors' signals and the -p pid file refer to the process that
 * serves. It parses arguments, builds the balancer, and wires signals; nothing else.
 */
import { spawn } from 'node:child_process';
import { closeSync, writeSync } from 'node:fs';
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { Balancer, resolveConfig, resolveServer, systemClock, systemRandom, workerListenProblem, type Diagnostics } from '../app/balancer.ts';
import { controlRootRefusal, createControlPort } from '../app/control-service.ts';
import { CommandError, PenCommands } from '../app/pen-commands.ts';
import { penStatusHtml } from '../app/pen-reports.ts';
import { loadYamlConfig, outcomeReply, Reloader, type ReloadOutcome } from '../app/reload.ts';
import { loadState, saveState } from '../app/state-file.ts';
import { statsText } from '../app/status.ts';
import { WorkerPool } from '../app/workers/primary.ts';
import { SharedState } from '../app/workers/shared-state.ts';
import { isWorkerProcess, runWorker } from '../app/workers/worker.ts';
import { AccessLog } from '../control/access-log.ts';
import { AdminServer, readTokenFile } from '../control/admin-server.ts';
import type { ControlPort } from '../control/control-port.ts';
import { Metrics } from '../control/metrics.ts';
import { applyLongOptions, parsePenArgs, UsageError } from '../config/pen-args.ts';
import { loadConfigFile } from '../app/config-file.ts';
import { formatIssue } from '../config/yaml/parse.ts';
import { chownBlocks, sharedMemoryDir } from '../dataplane/shared-memory.ts';
import { ctl } from './ctl.ts';
import { HELP } from './help.ts';
import pkg from '../../package.json' with { type: 'json' };

const DAEMON_ENV = 'FULCRUM_DAEMON_CHILD';

/** In a daemonised child, startup messages travel to the waiting parent over fd 3. */
function tellParent(text: string): boolean {
  if (process.env[DAEMON_ENV] === undefined) return false;
  try {
    writeSync(3, text);
    return true;
  } catch {
    return false;
  }
}

function fail(message: string, code = 1): never {
  if (!tellParent(`error ${code} fulcrum: ${message}\n`)) process.stderr.write(`fulcrum: ${message}\n`);
  process.exit(code);
}

function makeDiagnostics(getDebug: () => number, name = 'fulcrum'): Diagnostics {
  const stamp = (): string => new Date().toISOString();
  return {
    info: (m) => process.stderr.write(`${stamp()} ${name}: ${m}\n`),
    error: (m) => process.stderr.write(`${stamp()} ${name}: error: ${m}\n`),
    debug: (level, m) => {
      if (getDebug() >= level) process.stderr.write(`${stamp()} ${name}[debug${level}]: ${m}\n`);
    },
  };
}

/** The environment of workers: the primary's, without what concerns only the primary. */
function workerEnv(): Record<string, string | undefined> {
  const env = { ...process.env };
  delete env[DAEMON_ENV];
  return env;
}

/** --workers auto: one per CPU this process may use. */
function workerCount(w: number | 'auto'): number {
  return w === 'auto' ? Math.max(1, availableParallelism()) : w;
}

async function check(files: string[]): Promise<number> {
  if (files.length === 0) fail('check: give the config file(s) to validate: fulcrum check fulcrum.yaml', 2);
  let bad = 0;
  for (const f of files) {
    const result = await loadConfigFile(f);
    if ('errors' in result) {
      bad++;
      for (const i of result.errors) process.stderr.write(formatIssue(i) + '\n');
    } else {
      process.stdout.write(`${f}: OK (${result.config.listeners.length} listener(s), ${result.config.groups.length} group(s))\n`);
    }
  }
  return bad === 0 ? 0 : 1;
}

/**
 * pen detaches unless -f: re-run ourselves in the background, with no stdio (so that a caller
 * waiting on our output is not held by the daemon), and exit once it is serving. Startup errors
 * come back over a pipe and are printed here, with the child's exit code.
 */
async function daemonize(argv: string[]): Promise<never> {
  const child = spawn(process.execPath, [process.argv[1]!, ...argv, '-f'], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: { ...process.env, [DAEMON_ENV]: '1' },
  });
  let text = '';
  const ok = await new Promise<boolean>((resolve) => {
    const pipe = child.stdio[3] as NodeJS.ReadableStream | null;
    pipe?.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('ready\n')) resolve(true);
    });
    child.on('exit', () => resolve(false));
  });
  if (!ok) {
    const m = /^error (\d+) ([\s\S]*)$/m.exec(text);
    process.stderr.write(m?.[2] ?? 'fulcrum: the background process exited during start-up\n');
    process.exit(Number(m?.[1] ?? child.exitCode ?? 1));
  }
  child.unref();
  process.exit(0);
}

async function lookupUser(name: string): Promise<{ uid: number; gid: number }> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] !== undefined && f[3] !== undefined) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  if (/^\d+$/.test(name)) return { uid: Number(name), gid: Number(name) };
  throw new Error(`-u: no such user "${name}"`);
}

async function main(argv: string[]): Promise<void> {
  if (isWorkerProcess()) {
    await runWorker({
      makeDiagnostics: (name, getDebug) => makeDiagnostics(getDebug, name),
      switchUser: async (user) => {
        const { uid, gid } = await lookupUser(user);
        process.setgid?.(gid);
        process.setuid?.(uid);
      },
    });
    return;
  }
  if (argv[0] === 'check') process.exit(await check(argv.slice(1)));
  if (argv[0] === 'ctl') process.exit(await ctl(argv.slice(1)));

  let parsed;
  try {
    parsed = parsePenArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) fail(e.message, 2);
    throw e;
  }
  if (parsed.long.help) {
    process.stdout.write(HELP);
    return;
  }
  if (parsed.long.version) {
    process.stdout.write(`fulcrum ${pkg.version} (bun ${Bun.version})\n`);
    return;
  }
  let config = parsed.config;
  const yamlMode = parsed.long.configFile !== null;
  if (yamlMode) {
    try {
      config = await loadYamlConfig(parsed.long.configFile!);
    } catch (e) {
      fail((e as Error).message);
    }
    config.global.foreground = true; // a config file is for supervised, modern use
    // The control port is given on the command line in both modes.
    config.global.control = parsed.config.global.control;
    config.global.controlExit = parsed.config.global.controlExit;
  }
  try {
    applyLongOptions(config, parsed.long);
  } catch (e) {
    if (e instanceof UsageError) fail(e.message, 2);
    throw e;
  }
  const refusal = controlRootRefusal(config.global, process.getuid?.() ?? -1);
  if (refusal !== null) fail(refusal, 2);
  for (const n of parsed.notes) process.stderr.write(`fulcrum: note: ${n}\n`);
  const workers = workerCount(config.global.workers);
  if (workers > 1) {
    for (const l of config.listeners) {
      const problem = workerListenProblem(l.address);
      if (problem !== null) fail(`--workers ${workers}: ${problem}`, 2);
    }
  }
  if (!config.global.foreground && process.env[DAEMON_ENV] === undefined) await daemonize(argv);

  // With workers, this process is the primary: it checks, reports and answers the control port,
  // and the workers it starts serve (docs/workers.md). The shared memory goes when it exits.
  let shared: SharedState | null = null;
  if (workers > 1) {
    try {
      shared = SharedState.create({ dir: sharedMemoryDir(), prefix: `fulcrum-${process.pid}-`, workers, worker: -1, epochMs: Date.now() });
    } catch (e) {
      fail(`cannot create the shared memory for ${workers} workers: ${(e as Error).message}`);
    }
    process.on('exit', () => shared?.remove());
  }
  let balancer: Balancer;
  try {
    const diag = makeDiagnostics(() => balancer?.global.debug ?? config.global.debug);
    balancer = new Balancer(await resolveConfig(config), diag, systemClock, systemRandom, shared === null ? {} : { mode: 'primary', shared });
  } catch (e) {
    fail((e as Error).message);
  }
  const commands = new PenCommands(balancer);
  try {
    for (const c of parsed.commands) await commands.execute(c);
    if (config.global.commandFile !== null) {
      await commands.runFile(config.global.commandFile, { baseDir: dirname(config.global.commandFile) });
    }
  } catch (e) {
    if (e instanceof CommandError) fail(e.message);
    throw e;
  }
  if (balancer.defaultGroup.servers.length === 0) fail('no servers configured');

  const stateFile = config.global.stateFile;
  if (stateFile !== null) {
    try {
      const { loaded, dropped } = await loadState(balancer, stateFile);
      balancer.diag.debug(1, `state file ${stateFile}: ${loaded} tracked client(s) loaded, ${dropped} dropped (server or group gone)`);
    } catch (e) {
      balancer.diag.error(`${(e as Error).message}; starting with empty client tables`);
    }
  }
  let accessLog: AccessLog | null = null;
  if (config.global.accessLog !== null) {
    try {
      accessLog = new AccessLog(config.global.accessLog);
    } catch (e) {
      fail(`cannot open the access log ${config.global.accessLog.path}: ${(e as Error).message}`);
    }
    balancer.onSessionEnd.push(accessLog.onSessionEnd);
  }
  const adminConfig = config.global.admin;
  if (adminConfig?.tokenFile != null) {
    // A bad token file stops the start before any listener is bound.
    try {
      readTokenFile(adminConfig.tokenFile);
    } catch (e) {
      fail((e as Error).message);
    }
  }

  const pidFile = config.global.pidFile;
  let stopping = false;
  let control: ControlPort | null = null;
  let pool: WorkerPool | null = null;
  let admin: AdminServer | null = null;
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    balancer.diag.debug(1, `${why}: stopping`);
    control?.stop();
    await admin?.stop();
    await pool?.stop();
    await balancer.stop();
    if (stateFile !== null) {
      try {
        const n = await saveState(balancer, stateFile);
        balancer.diag.debug(1, `state file ${stateFile}: ${n} tracked client(s) saved`);
      } catch (e) {
        balancer.diag.error(`cannot save the state file ${stateFile}: ${(e as Error).message}`);
      }
    }
    await accessLog?.close();
    if (pidFile !== null) await unlink(pidFile).catch(() => undefined);
    process.exit(0);
  };
  /**
   * SIGHUP, the control port's `reload` and the admin API's: reopen the logs (rotation), re-read
   * the admin token, then re-read --config (one transaction) or -F; serialised by the Reloader.
   */
  const reloader = new Reloader(balancer, commands);
  const reloadOutcome = async (): Promise<ReloadOutcome> => {
    balancer.log?.reopen();
    accessLog?.reopen();
    admin?.reloadToken();
    pool?.reopenLogs();
    try {
      return await reloader.reload();
    } finally {
      // With workers: they get what changed (nothing is sent when nothing did).
      pool?.configChanged();
    }
  };
  /** The same as pen's text: the report, or a CommandError saying why nothing changed. */
  const reload = async (): Promise<string> => {
    const r = outcomeReply(await reloadOutcome(), balancer.global.configFile !== null);
    if ('error' in r) throw new CommandError(r.error);
    return r.reply;
  };

  try {
    balancer.start();
    control = createControlPort(balancer, commands, { exit: () => void stop('exit command'), reload, afterCommand: () => pool?.configChanged() });
    control?.start();
  } catch (e) {
    await balancer.stop();
    fail(control === null ? (e as Error).message : `cannot open the control port ${config.global.control}: ${(e as Error).message}`);
  }
  if (adminConfig !== null) {
    try {
      admin = AdminServer.start({
        config: adminConfig,
        balancer,
        metrics: new Metrics(balancer, { version: pkg.version, reloads: reloader }),
        reload: reloadOutcome,
        reloadSource: () => reloader.source,
        resolveServer,
        version: pkg.version,
        diag: balancer.diag,
        changed: () => pool?.configChanged(),
      });
    } catch (e) {
      control?.stop();
      await balancer.stop();
      fail((e as Error).message);
    }
    balancer.diag.debug(1, `admin API on ${admin.url ?? admin.address}${admin.readOnly ? ' (read-only: no token file)' : ''}`);
  }
  if (shared !== null) {
    pool = new WorkerPool({
      count: workers,
      shared,
      balancer,
      command: [process.execPath, ...process.argv.slice(1)],
      env: workerEnv(),
      diag: balancer.diag,
    });
    try {
      await pool.start();
    } catch (e) {
      control?.stop();
      await admin?.stop();
      await balancer.stop();
      fail((e as Error).message);
    }
    balancer.diag.debug(1, `${workers} workers ready (pids ${pool.pids.join(', ')})`);
  }
  if (config.global.user !== null) {
    try {
      const { uid, gid } = await lookupUser(config.global.user);
      // Replacement workers are started by this process after it has dropped privileges.
      if (shared !== null) chownBlocks(shared.paths, uid, gid);
      process.setgid?.(gid);
      process.setuid?.(uid);
    } catch (e) {
      control?.stop();
      await admin?.stop();
      await pool?.stop();
      await balancer.stop();
      fail(`cannot switch to user ${config.global.user}: ${(e as Error).message}`);
    }
  }
  if (pidFile !== null) await writeFile(pidFile, `${process.pid}\n`);
  balancer.diag.debug(1, `fulcrum ${pkg.version} started, pid ${process.pid}`);

  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGUSR1', () => {
    process.stderr.write(statsText(balancer));
    if (pool !== null) process.stderr.write(pool.statsLines().join('\n') + '\n');
    if (control !== null) process.stderr.write(`  ${control.statsLine()}\n`);
    const file = balancer.global.statusFile;
    if (file !== null) writeFile(file, penStatusHtml(balancer, balancer.defaultGroup)).catch((e: Error) => balancer.diag.error(`cannot write ${file}: ${e.message}`));
  });
  process.on('SIGHUP', () => {
    reload().then(
      (report) => balancer.diag.info(`SIGHUP: ${report.trimEnd().split('\n').join('; ')}`),
      (e: Error) => balancer.diag.error(`SIGHUP: ${e.message}`),
    );
  });
  if (tellParent('ready\n')) closeSync(3);
}

await main(process.argv.slice(2));
