/**
 * From argv to what to serve: pen's options and the long ones, the YAML file of --config, and
 * the checks that must pass before anything is bound or the process detaches (pen's root rule
 * for the control port, listeners that workers cannot share). A mistake is a StartError with
 * its exit code (2 for usage, 1 otherwise), which the CLI prints.
 */
import { parseListenAddress } from '../core/address.ts';
import { errorCode, FulcrumError } from '../core/errors.ts';
import type { FulcrumConfig, GlobalConfig } from '../config/model.ts';
import { applyLongOptions, parsePenArgs, UsageError, type ParsedCommandLine } from '../config/pen-args.ts';
import { workerListenProblem } from './balancer.ts';
import { workerModeProblem } from './listeners.ts';
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
  /** With --config: the global settings the command line gave, applied over the file's on every reload too. */
  overrides: Partial<GlobalConfig>;
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
  return w === 'auto' ? Math.max(1, process.getBuiltinModule('node:os').availableParallelism()) : w;
}

/** Reads the command line (and --config's file); `note` gets pen's accepted-but-ignored options. */
export async function readCommandLine(argv: readonly string[], note: (text: string) => void): Promise<CommandLine> {
  const parsed: ParsedCommandLine = usage(() => parsePenArgs(argv));
  if (parsed.long.help) return { action: 'help' };
  if (parsed.long.version) return { action: 'version' };
  let config = parsed.config;
  let overrides: Partial<GlobalConfig> = {};
  if (parsed.long.configFile !== null) {
    // One rule (docs/config.md): an option given on the command line overrides the file's value;
    // the file's value applies otherwise. Options about pen's one listener and group have no
    // single place in a file of several, so they are refused rather than ignored.
    if (parsed.groupOptions.length > 0) {
      const opts = [...new Set(parsed.groupOptions)].join(', ');
      throw new StartError(`${opts}: with --config, set this in the file's groups and listeners (the command-line form configures pen's single group)`, 2);
    }
    overrides = globalsGiven(parsed.config.global, parsed.given);
    try {
      config = await loadYamlConfig(parsed.long.configFile);
    } catch (e) {
      throw new StartError((e as Error).message, 1, e);
    }
    config.global.foreground = true; // a config file is for supervised, modern use
    // The control port is given on the command line only (the file has no key for it).
    config.global.control = parsed.config.global.control;
    config.global.controlExit = parsed.config.global.controlExit;
    Object.assign(config.global, overrides);
  }
  usage(() => applyLongOptions(config, parsed.long));
  const refusal = controlRootRefusal(config.global, process.getuid?.() ?? -1);
  if (refusal !== null) throw new StartError(refusal, 2);
  for (const n of parsed.notes) note(n);
  const workers = workerCount(config.global.workers);
  if (workers > 1) {
    for (const l of config.listeners) {
      const problem = workerListenProblem(l.address) ?? workerModeProblem(l);
      if (problem !== null) throw new StartError(`--workers ${workers}: ${problem}`, 2);
    }
  }
  return { action: 'serve', serve: { config, commands: parsed.commands, workers, foreground: config.global.foreground, quiet: parsed.long.quiet, overrides } };
}

/**
 * pen opens no network control port when it runs as root without -u, because anyone who can
 * connect controls the balancer. Fulcrum keeps the rule but refuses to start (pen only prints a
 * debug line and runs without the port). A Unix socket is allowed: its file permissions decide.
 */
export function controlRootRefusal(global: GlobalConfig, uid: number): string | null {
  if (global.control === null || uid !== 0 || global.user !== null) return null;
  if (parseListenAddress(global.control).kind === 'unix') return null;
  return (
    `refusing to open the control port ${global.control} as root: whoever can connect to it controls the balancer ` +
    `(pen refuses it too). Give -u USER to drop privileges after binding (-u root to keep root deliberately), ` +
    `or use a Unix socket path, e.g. -C /run/fulcrum.ctl`
  );
}

/** The global settings among `keys`, as the command line set them. */
function globalsGiven(g: GlobalConfig, keys: ReadonlySet<keyof GlobalConfig>): Partial<GlobalConfig> {
  const out: Partial<GlobalConfig> = {};
  for (const k of keys) Object.assign(out, { [k]: g[k] });
  return out;
}
