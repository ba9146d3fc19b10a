/**
 * Pieces of the schema for the admin API, so that a change made through the API is checked exactly
 * like the same change written in the file (same rules, same messages).
 */
import { z } from 'zod';
import type { ServerConfig } from '../model.ts';
import { mapping } from './leaves.ts';
import { formatPath } from './messages.ts';
import { flatten, globalShape, server, serverShape } from './schema.ts';

/** A problem with an admin API request body; `path` is relative to the body, e.g. `weight`. */
export interface FieldIssue {
  path: string;
  message: string;
}

export type Checked<T> = { value: T } | { issues: FieldIssue[] };

function check<T>(schema: z.ZodType<T>, raw: unknown, fields: readonly string[]): Checked<T> {
  const r = schema.safeParse(raw);
  if (r.success) return { value: r.data };
  const found = r.error.issues.flatMap((i) => flatten(i, [], (p) => (p.length === 0 ? fields : [])));
  return { issues: found.map((f) => ({ path: formatPath(f.path), message: f.message })) };
}

/** A server as the config file writes it: pen's short form string, or the long-form mapping. */
export function checkServerValue(raw: unknown): Checked<ServerConfig> {
  return check(server, raw, Object.keys(serverShape));
}

/** What can be changed on a running server: its limits, weight, priority and ACL. */
const serverSettingsShape = {
  max_connections: serverShape.max_connections,
  hard_limit: serverShape.hard_limit,
  weight: serverShape.weight,
  priority: serverShape.priority,
  acl: serverShape.acl,
};

/** Settings of an existing server (no address): the long form's fields, all optional. */
export interface ServerSettingsPatch {
  max_connections?: number | undefined;
  hard_limit?: number | undefined;
  weight?: number | undefined;
  priority?: number | undefined;
  acl?: number | undefined;
}

const serverPatch = mapping('a mapping of server settings (max_connections, hard_limit, weight, priority, acl)', serverSettingsShape);

export function checkServerPatch(raw: unknown): Checked<ServerSettingsPatch> {
  return check(serverPatch, raw, Object.keys(serverSettingsShape));
}

/** The per-source limits, as the file's `global:` writes them (admin API: /api/v1/source-limits). */
const sourceLimitsShape = {
  max_connections_per_source: globalShape.max_connections_per_source,
  max_new_connections_per_source_per_second: globalShape.max_new_connections_per_source_per_second,
};

export interface SourceLimitsPatch {
  max_connections_per_source?: number | undefined;
  max_new_connections_per_source_per_second?: number | undefined;
}

const sourceLimitsPatch = mapping('a mapping of per-source limits (max_connections_per_source, max_new_connections_per_source_per_second)', sourceLimitsShape);

export function checkSourceLimits(raw: unknown): Checked<SourceLimitsPatch> {
  return check(sourceLimitsPatch, raw, Object.keys(sourceLimitsShape));
}
