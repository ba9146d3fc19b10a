/**
 * Re-reading the configuration (SIGHUP and the admin API's POST /api/v1/reload) as one
 * transaction: the file is read, checked and resolved completely before anything changes, and
 * Balancer.reload applies it in one synchronous step (or, if a new listener cannot bind, not at
 * all). A broken file is rejected whole with every error, and the running config stays.
 * Reloads are serialised, so a SIGHUP arriving during an API reload waits its turn.
 */
import { dirname } from 'node:path';
import { formatIssue, loadConfigFile, type ConfigIssue } from '../config/yaml-config.ts';
import { resolveConfig, type Balancer } from './balancer.ts';
import type { PenCommands } from './pen-commands.ts';

/** One reason a reload was refused; file positions when the config file itself is wrong. */
export interface ReloadIssue {
  file: string | null;
  line: number;
  column: number;
  path: string;
  message: string;
}

export type ReloadResult =
  | { ok: true; source: string; changes: string[] }
  | { ok: false; source: string | null; message: string; issues: ReloadIssue[] };

function fromConfigIssue(i: ConfigIssue): ReloadIssue {
  return { file: i.file, line: i.line, column: i.column, path: i.path, message: i.message };
}

function plainIssue(message: string, file: string | null = null): ReloadIssue {
  return { file, line: 0, column: 0, path: '', message };
}

export function formatReloadIssue(i: ReloadIssue): string {
  if (i.file !== null) return formatIssue({ ...i, file: i.file });
  return i.path === '' ? i.message : `${i.path}: ${i.message}`;
}

export class Reloader {
  readonly #b: Balancer;
  readonly #commands: PenCommands;
  #chain: Promise<unknown> = Promise.resolve();
  /** Outcomes since start, for metrics and the status endpoint. */
  readonly counts = { ok: 0, failed: 0 };
  lastSuccessMs = 0;
  lastFailureMs = 0;
  lastResult: ReloadResult | null = null;

  constructor(balancer: Balancer, commands: PenCommands) {
    this.#b = balancer;
    this.#commands = commands;
  }

  /** What a reload would re-read, or null when Fulcrum was started from a command line alone. */
  get source(): string | null {
    return this.#b.global.configFile ?? this.#b.global.commandFile;
  }

  /** Re-reads the config file (or pen's -F file) after any reload in progress has finished. */
  reload(): Promise<ReloadResult> {
    const run = this.#chain.then(() => this.#reload());
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #reload(): Promise<ReloadResult> {
    const result = await this.#attempt();
    this.lastResult = result;
    if (result.ok) {
      this.counts.ok++;
      this.lastSuccessMs = Date.now();
    } else {
      this.counts.failed++;
      this.lastFailureMs = Date.now();
    }
    return result;
  }

  async #attempt(): Promise<ReloadResult> {
    const b = this.#b;
    const configFile = b.global.configFile;
    if (configFile !== null) {
      const loaded = await loadConfigFile(configFile);
      if ('errors' in loaded) {
        return { ok: false, source: configFile, message: `${configFile} has ${loaded.errors.length} error(s); the running configuration is kept`, issues: loaded.errors.map(fromConfigIssue) };
      }
      loaded.config.global.configFile = configFile;
      try {
        const next = await resolveConfig(loaded.config);
        const changes = b.reload(next);
        return { ok: true, source: configFile, changes };
      } catch (e) {
        const message = (e as Error).message;
        return { ok: false, source: configFile, message: `${configFile} could not be applied; the running configuration is kept`, issues: [plainIssue(message, configFile)] };
      }
    }
    const commandFile = b.global.commandFile;
    if (commandFile !== null) {
      try {
        await this.#commands.runFile(commandFile, { baseDir: dirname(commandFile) });
        return { ok: true, source: commandFile, changes: [`re-read ${commandFile}`] };
      } catch (e) {
        // pen's command files apply line by line: lines before the bad one have taken effect.
        return { ok: false, source: commandFile, message: `${commandFile} stopped at an error (commands before it were applied, as in pen)`, issues: [plainIssue((e as Error).message, null)] };
      }
    }
    return { ok: false, source: null, message: 'nothing to reload: Fulcrum was started without --config or -F', issues: [] };
  }
}
