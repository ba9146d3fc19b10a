/**
 * The old home of the YAML config loader, kept as re-exports while callers move to src/config/yaml/
 * (parse.ts: text → config or issues; admin-api.ts: the admin API's field checks). Reading the file
 * is src/app/config-file.ts's job: config/ is pure.
 */
export { formatIssue, parseConfigText, type ConfigIssue, type ConfigResult } from './yaml/parse.ts';
export { parseDuration } from './yaml/leaves.ts';
export { checkServerPatch, checkServerValue, type Checked, type FieldIssue, type ServerSettingsPatch } from './yaml/admin-api.ts';
