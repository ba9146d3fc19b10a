#!/usr/bin/env bun
/**
 * The `fulcrum` command. This file is the balancer's own process (npm links it as the bin and
 * Bun runs it directly), so supervisors' signals and the -p pid file refer to the process that
 * serves. It reads the command line, detaches (pen's default), maps start-up errors to messages
 * and exit codes, and forwards signals to the running instance; app/start.ts wires everything
 * else. `check` and `ctl` load only what they need.
 */
import { daemonize, isDaemonChild, tellParent, tellParentReady, childEnv, successorEnv } from './daemon.ts';
import { errorReport } from '../app/start-report.ts';
import { writeStderr } from '../app/stderr.ts';

function fail(message: string, code = 1): never {
  if (!tellParent(errorReport(code, `fulcrum: ${message}`))) writeStderr(`fulcrum: ${message}\n`);
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'check') {
    if (argv.length === 1) fail('check: give the config file(s) to validate: fulcrum check fulcrum.yaml', 2);
    const { checkConfigFiles } = await import('../app/check.ts');
    process.exit(await checkConfigFiles(argv.slice(1), { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }));
  }
  if (argv[0] === 'ctl') process.exit(await (await import('./ctl.ts')).ctl(argv.slice(1)));
  if (argv[0] === 'upgrade') process.exit(await (await import('../app/upgrade-client.ts')).upgradeCommand(argv.slice(1)));
  const app = await import('../app/start.ts');
  if (app.isWorkerProcess()) return app.runWorker();
  try {
    const line = await app.readCommandLine(argv, (note) => writeStderr(`fulcrum: note: ${note}\n`));
    if (line.action === 'help') return void process.stdout.write((await import('./help.ts')).HELP);
    if (line.action === 'version') return void process.stdout.write(await app.versionLine());
    const daemon = !line.serve.foreground || isDaemonChild();
    // Daemonised, messages go to syslog (as pen's do); with no syslog socket, say so while a
    // terminal still listens, rather than let them vanish without a word.
    const diagnostics = app.defaultDiagnosticsTarget(daemon);
    if (!isDaemonChild() && diagnostics === null && line.serve.config.global.diagnosticsLog === null) {
      writeStderr('fulcrum: note: no syslog socket at /dev/log: the background process\'s messages are lost; give --diagnostics-log FILE, or -f\n');
    }
    if (!line.serve.foreground && !isDaemonChild()) await daemonize(argv, line.serve.quiet);
    const drainS = Number(process.env.FULCRUM_DRAIN_TIMEOUT ?? 30);
    const running = await app.start(line.serve, {
      workerCommand: [process.execPath, ...process.argv.slice(1)],
      workerEnv: childEnv(),
      successorEnv: successorEnv(),
      drainMs: Number.isFinite(drainS) && drainS >= 0 ? drainS * 1000 : 30_000,
      diagnostics: diagnostics ?? 'stderr',
    });
    void running.done.then(() => process.exit(0));
    process.on('SIGTERM', () => void running.stop('SIGTERM'));
    process.on('SIGINT', () => void running.stop('SIGINT'));
    process.on('SIGHUP', () => void running.reload('SIGHUP'));
    process.on('SIGUSR1', () => running.log(running.stats()));
    // nginx's binary upgrade signal: the new code on disk takes over the listening sockets.
    process.on('SIGUSR2', () => void running.upgrade('SIGUSR2'));
    // With --workers: a rolling restart of the workers, one at a time, on the same sockets.
    process.on('SIGTTIN', () => void running.restartWorkers('SIGTTIN'));
    tellParentReady(running.startLine);
  } catch (e) {
    if (e instanceof app.StartError) fail(e.message, e.exitCode);
    throw e;
  }
}

await main(process.argv.slice(2));
