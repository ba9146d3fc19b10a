/**
 * Re-reading the configuration, shared by SIGHUP, the control port's `reload` and the admin API's
 * POST /api/v1/reload: the YAML file (--config) is loaded, validated and resolved completely
 * before Balancer.reload applies it as one transaction (or, if a new listener cannot bind, not at
 * all), so a broken file changes nothing and is reported with every error; pen's -F command file
 * is re-run as pen does. The Reloader serialises reloads, so a SIGHUP arriving during an API
 * reload waits its turn.
 */
import type { FulcrumConfig } from '../config/model.ts';
import { formatIssue, type ConfigIssue } from '../config/yaml/issue.ts';
import { resolveConfig, type Balancer } from './balancer.ts';
import type { PenCommands } from './pen-commands.ts';

/** Loads and validates a YAML config file; every problem is listed in the error's message. */
export async function loadYamlConfig(path: string): Promise<FulcrumConfig> {
  // The YAML parser and schema (yaml, zod: ~15 MB resident) load only with a config file.
  const { loadConfigFile } = await import('./config-file.ts');
  const result = await loadConfigFile(path);
  if ('errors' in result) {
    throw new FulcrumError('E_CONFIG_INVALID', `${path} has ${result.errors.length} error(s):\n` + result.errors.map((i) => '  ' + formatIssue(i)).join('\n'));
  }
  result.config.global.configFile = path;
  return result.config;
}

export interface ReloadResult {
  /** The file that was re-read, or null when Fulcrum runs without --config and -F. */
  file: string | null;
  /** What changed (YAML only; a command file's effects are its commands). */
  changes: string[];
}

/** The control port's reply to `reload`. */
export function formatReload(r: ReloadResult, yaml: boolean): string {
  if (r.file === null) return 'log reopened; no --config or -F file to re-read\n';
  if (!yaml) return `re-read ${r.file}\n`;
  if (r.changes.length === 0) return `reloaded ${r.file} (no changes)\n`;
  return `reloaded ${r.file}\n` + r.changes.map((c) => c + '\n').join('');
}

// ---------------------------------------------------------------------------------------------
// Structured and serialised: what SIGHUP, the control port and the admin API use.

// The outcome's shape is declared by control/ (it reports it); app produces it.
export type { ReloadIssue, ReloadOutcome } from '../control/observed.ts';
import type { ReloadIssue, ReloadOutcome } from '../control/observed.ts';
import { FulcrumError } from '../core/errors.ts';

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
  /** pen's command language, loaded on first use (a -F reload). */
  readonly #commands: () => Promise<PenCommands>;
  #chain: Promise<unknown> = Promise.resolve();
  /** Outcomes since start, for metrics and the status endpoint. */
  readonly counts = { ok: 0, failed: 0 };
  lastSuccessMs = 0;
  lastFailureMs = 0;
  lastResult: ReloadOutcome | null = null;

  /** The command line's global settings, which override the file's on every reload too. */
  readonly #overrides: Partial<FulcrumConfig['global']>;

  constructor(balancer: Balancer, commands: () => Promise<PenCommands>, overrides: Partial<FulcrumConfig['global']> = {}) {
    this.#b = balancer;
    this.#commands = commands;
    this.#overrides = overrides;
  }

  /** What a reload would re-read, or null when Fulcrum was started from a command line alone. */
  get source(): string | null {
    return this.#b.global.configFile ?? this.#b.global.commandFile;
  }

  /** Re-reads the config file (or pen's -F file) after any reload in progress has finished. */
  reload(): Promise<ReloadOutcome> {
    const run = this.#chain.then(() => this.#reload());
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #reload(): Promise<ReloadOutcome> {
    let result: ReloadOutcome;
    try {
      result = await this.#attempt();
    } catch (e) {
      // Whatever went wrong, the reload is reported as failed and the balancer keeps serving.
      result = { ok: false, source: this.source, message: `reload failed: ${(e as Error).message}`, issues: [] };
    }
    this.lastResult = result;
    if (result.ok) {
      this.counts.ok++;
      this.lastSuccessMs = this.#b.clock.now();
    } else {
      this.counts.failed++;
      this.lastFailureMs = this.#b.clock.now();
    }
    return result;
  }

  async #attempt(): Promise<ReloadOutcome> {
    const b = this.#b;
    const configFile = b.global.configFile;
    if (configFile !== null) {
      const { loadConfigFile } = await import('./config-file.ts');
      const loaded = await loadConfigFile(configFile);
      if ('errors' in loaded) {
        return { ok: false, source: configFile, message: `${configFile} has ${loaded.errors.length} error(s)`, issues: loaded.errors.map(fromConfigIssue) };
      }
      loaded.config.global.configFile = configFile;
      Object.assign(loaded.config.global, this.#overrides);
      try {
        const next = await resolveConfig(loaded.config);
        const changes = b.reload(next);
        return { ok: true, source: configFile, changes };
      } catch (e) {
        const message = (e as Error).message;
        return { ok: false, source: configFile, message: `${configFile} could not be applied`, issues: [plainIssue(message, configFile)] };
      }
    }
    const commandFile = b.global.commandFile;
    if (commandFile !== null) {
      try {
        await (await this.#commands()).runFile(commandFile, { baseDir: process.getBuiltinModule('node:path').dirname(commandFile) });
      } catch (e) {
        // pen's command files apply line by line: lines before the bad one have taken effect.
        return { ok: false, source: commandFile, message: `${commandFile} stopped at an error (commands before it were applied, as in pen)`, issues: [plainIssue((e as Error).message, null)] };
      }
      // Certificate and key files too (pen needs a restart for that).
      return { ok: true, source: commandFile, changes: [`re-read ${commandFile}`, ...b.reloadTls()] };
    }
    const tls = b.reloadTls();
    if (tls.length > 0) return { ok: true, source: 'the TLS certificate files', changes: tls };
    return { ok: false, source: null, message: 'nothing to reload: Fulcrum was started without --config or -F', issues: [] };
  }
}

/** The control port's reply for an outcome (pen's text), or a CommandError-worthy message. */
export function outcomeReply(r: ReloadOutcome, yaml: boolean): { reply: string } | { error: string } {
  const warnings = (r.warnings ?? []).map((w) => `warning: ${w}\n`).join('');
  if (r.ok) return { reply: formatReload({ file: r.source, changes: r.changes }, yaml) + warnings };
  if (r.source === null) {
    return { reply: warnings === '' ? formatReload({ file: null, changes: [] }, yaml) : 'no --config or -F file to re-read\n' + warnings };
  }
  return { error: `reload failed, keeping the running configuration: ${r.message}` + r.issues.map((i) => '\n  ' + formatReloadIssue(i)).join('') + (warnings === '' ? '' : '\n' + warnings.trimEnd()) };
}
