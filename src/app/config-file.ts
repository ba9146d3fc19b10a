/**
 * Reading the YAML config file: the one place where configuration touches the disk. Parsing and
 * checking are pure (src/config/yaml/parse.ts).
 */
import { readFile } from 'node:fs/promises';
import { parseConfigText, type ConfigResult } from '../config/yaml/parse.ts';

/** Reads and parses a config file. Unreadable files are reported as issues, not thrown. */
export async function loadConfigFile(path: string): Promise<ConfigResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    return { errors: [{ file: path, line: 0, column: 0, path: '', message: `cannot read the config file: ${reason}` }] };
  }
  return parseConfigText(text, path);
}
