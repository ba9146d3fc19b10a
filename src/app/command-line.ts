/**
 * From argv to what to serve: pen's options and the long ones, the YAML file of --config, and
 * the checks that must pass before anything is bound or the process detaches (pen's root rule
 * for the control port, listeners that workers cannot share). A mistake is a StartError with
 * its exit code (2 for usage, 1 otherwise), which the CLI prints.
 */
import { availableParallelism } from 'node:os';
import { errorCode, FulcrumError } from '../core/errors.ts';
import type { FulcrumConfig } from '../config/model.ts';
import { applyLongOptions, parsePenArgs, UsageError, type ParsedCommandLine } from '../config/pen-args.ts';
import { workerListenProblem } from './balancer.ts';
import { controlRootRefusal } from './control-service.ts';
import { loadYamlConfig } from './reload.ts';

/** A reason not to start, with the exit code to leave with. */
export class StartError extends FulcrumError {
  override readonly name = 'StartError';
  /** The cause's own code when it has one (E_LISTEN, E_TLS_CONFIG, ...). */
  constructor(
    message: string,
    readonly exitCode = 1,
    cause?: unknown,
  ) {
    super(errorCode(cause) ?? (exitCode === 2 ? 'E_USAGE' : 'E_START'), message, cause === undefined ? undefined : { cause });
  }
}

export interface ServeRequest {
  config: FulcrumConfig;
  /** penctl commands from -o/-O, applied after the command line, before -F. */
  commands: string[];
  /** Serving processes (1: this one serves; more: it is their primary). */
  workers: number;
  /** false: detach (pen's default without -f). */
  foreground: boolean;
  /** --quiet: no start line. */
  quiet: boolean;
}

export type CommandLine = { action: 'help' } | { action: 'version' } | { action: 'serve'; serve: ServeRequest };

function usage<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof UsageError) throw new StartError(e.message, 2, e);
    throw e;
  }
}

/** --workers auto: one per CPU this process may use. */
function workerCount(w: number | 'auto'): number {
  return w === 'auto' ? Math.max(1, availableParallelism()) : w;
}

/** Reads the command line (and --config's file); `note` gets pen's accepted-but-ignored options. */
export async function readCommandLine(argv: readonly string[], note: (text: string) => void): Promise<CommandLine> {
  const parsed: ParsedCommandLine = usage(() => parsePenArgs(argv));
  if (parsed.long.help) return { action: 'help' };
  if (parsed.long.version) return { action: 'version' };
  let config = parsed.config;
  if (parsed.long.configFile !== null) {
    try {
      config = await loadYamlConfig(parsed.long.configFile);
    } catch (e) {
      throw new StartError((e as Error).message, 1, e);
    }
    config.global.foreground = true; // a config file is for supervised, modern use
    // The control port is given on the command line in both modes.
    config.global.control = parsed.config.global.control;
    config.global.controlExit = parsed.config.global.controlExit;
  }
  usage(() => applyLongOptions(config, parsed.long));
  const refusal = controlRootRefusal(config.global, process.getuid?.() ?? -1);
  if (refusal !== null) throw new StartError(refusal, 2);
  for (const n of parsed.notes) note(n);
  const workers = workerCount(config.global.workers);
  if (workers > 1) {
    for (const l of config.listeners) {
      const problem = workerListenProblem(l.address);
      if (problem !== null) throw new StartError(`--workers ${workers}: ${problem}`, 2);
    }
  }
  return { action: 'serve', serve: { config, commands: parsed.commands, workers, foreground: config.global.foreground, quiet: parsed.long.quiet } };
}
