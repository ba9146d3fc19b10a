/**
 * Reading the YAML config file: the one place where configuration touches the disk. Parsing and
 * checking are pure (src/config/yaml/parse.ts). The file is read in bounded chunks and refused
 * past MAX_CONFIG_BYTES (files.ts), so a wrong path such as /dev/zero cannot fill the memory.
 */
import { parseConfigText, type ConfigResult } from '../config/yaml/parse.ts';
import { readBoundedText } from './files.ts';

/** Reads and parses a config file. Unreadable or oversized files are reported as issues, not thrown. */
export async function loadConfigFile(path: string): Promise<ConfigResult> {
  let text: string;
  try {
    text = readBoundedText(path, 'config file');
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    return { errors: [{ file: path, line: 0, column: 0, path: '', message: reason }] };
  }
  return parseConfigText(text, path);
}
