/**
 * The `cluster` section of the config file: where the instances of one cluster share their client
 * tables, operator states and health verdicts (docs/cluster.md). Kept apart from schema.ts so that
 * the section and its messages read in one place.
 */
import { z } from 'zod';
import type { ClusterConfig } from '../model.ts';
import { checkedText, mapping, nameText } from './leaves.ts';
import { expecting } from './messages.ts';

const SCHEMES = ['redis:', 'rediss:', 'valkey:', 'valkeys:', 'redis+unix:', 'valkey+unix:'];
const URL_TEXT = 'a Redis URL such as redis://127.0.0.1:6379 (redis://, rediss://, valkey:// or valkeys://)';

/**
 * Why `text` is not a Redis URL Fulcrum can use, or undefined. Pure: URL parsing only. The
 * messages never repeat the URL, which may hold a password.
 */
export function redisUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `expected ${URL_TEXT}; this value cannot be read as a URL`;
  }
  if (!SCHEMES.includes(url.protocol)) return `expected ${URL_TEXT}, got the scheme "${url.protocol.slice(0, -1)}"`;
  if (!url.protocol.includes('+unix') && url.hostname === '') return `expected ${URL_TEXT}; this URL names no host`;
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,2}$/.test(db)) return `the database number after the host must be 0-99, got "${db}"`;
  return undefined;
}

export const clusterShape = {
  redis: checkedText(URL_TEXT, redisUrlProblem),
  key_prefix: z
    .string({ error: expecting('a key prefix such as "fulcrum:"') })
    .regex(/^[A-Za-z0-9_:.{}-]{1,64}$/, { error: expecting('a key prefix of 1-64 letters, digits and "_ : . - { }"') })
    .optional(),
  instance: nameText('an instance name').optional(),
};

export const clusterSection = mapping('a mapping with redis, key_prefix and instance', clusterShape).transform(
  (c): ClusterConfig => ({ redis: c.redis, keyPrefix: c.key_prefix ?? 'fulcrum:', instance: c.instance ?? null }),
);
