/**
 * Re-reading the configuration, shared by SIGHUP and the control port's `reload`: the YAML file
 * (--config) is loaded, validated and resolved completely before Balancer.reload applies it as
 * one transaction, so a broken file changes nothing; pen's -F command file is re-run as pen does.
 * The log file is reopened first (for rotation), as pen does on SIGHUP.
 */
import { dirname } from 'node:path';
import type { FulcrumConfig } from '../config/model.ts';
import { formatIssue, loadConfigFile } from '../config/yaml-config.ts';
import { resolveConfig, type Balancer } from './balancer.ts';
import type { PenCommands } from './pen-commands.ts';

/** Loads and validates a YAML config file; every problem is listed in the error's message. */
export async function loadYamlConfig(path: string): Promise<FulcrumConfig> {
  const result = await loadConfigFile(path);
  if ('errors' in result) {
    throw new Error(`${path} has ${result.errors.length} error(s):\n` + result.errors.map((i) => '  ' + formatIssue(i)).join('\n'));
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

/** Reopens the log and re-reads --config or -F; throws (with nothing changed, for YAML) on errors. */
export async function reloadConfiguration(b: Balancer, commands: PenCommands): Promise<ReloadResult> {
  b.log?.reopen();
  const configFile = b.global.configFile;
  if (configFile !== null) {
    const next = await resolveConfig(await loadYamlConfig(configFile));
    return { file: configFile, changes: b.reload(next) };
  }
  const commandFile = b.global.commandFile;
  if (commandFile !== null) {
    await commands.runFile(commandFile, { baseDir: dirname(commandFile) });
    return { file: commandFile, changes: [] };
  }
  return { file: null, changes: [] };
}

/** The control port's reply to `reload`. */
export function formatReload(r: ReloadResult, yaml: boolean): string {
  if (r.file === null) return 'log reopened; no --config or -F file to re-read\n';
  if (!yaml) return `re-read ${r.file}\n`;
  if (r.changes.length === 0) return `reloaded ${r.file} (no changes)\n`;
  return `reloaded ${r.file}\n` + r.changes.map((c) => c + '\n').join('');
}
