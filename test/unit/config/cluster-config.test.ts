import { expect, test } from 'bun:test';
import { parseConfigText } from '../../../src/config/yaml/parse.ts';

const BODY = 'groups:\n  app:\n    servers: [127.0.0.1:9001]\nlisteners:\n  - listen: 8080\n    group: app\n';
const parse = (cluster: string) => parseConfigText(`${cluster}\n${BODY}`, 'f.yaml');
const errors = (cluster: string): string => {
  const r = parse(cluster);
  return 'errors' in r ? r.errors.map((e) => `${e.line}:${e.column} ${e.path}: ${e.message}`).join('\n') : '';
};

test('cluster: absent means alone; a URL with the defaults; every field', () => {
  const none = parseConfigText(BODY, 'f.yaml');
  expect('config' in none && none.config.global.cluster).toBeNull();
  const plain = parse('cluster: {redis: "redis://127.0.0.1:6379"}');
  expect('config' in plain && plain.config.global.cluster).toEqual({ redis: 'redis://127.0.0.1:6379', keyPrefix: 'fulcrum:', instance: null });
  const all = parse('cluster:\n  redis: "rediss://user:secret@redis.internal:6380/2"\n  key_prefix: "lb-eu:"\n  instance: lb-1');
  expect('config' in all && all.config.global.cluster).toEqual({ redis: 'rediss://user:secret@redis.internal:6380/2', keyPrefix: 'lb-eu:', instance: 'lb-1' });
});

test('cluster: precise errors, at the field, without repeating a password', () => {
  expect(errors('cluster: {}')).toMatch(/^1:\d+ cluster.redis: missing; expected a Redis URL/);
  expect(errors('cluster: {redis: "http://127.0.0.1:6379"}')).toMatch(/cluster.redis: .*got the scheme "http"/);
  const bad = errors('cluster: {redis: "redis://u:hunter2@127.0.0.1:6379/x"}');
  expect(bad).toMatch(/cluster.redis: the database number after the host must be 0-99/);
  expect(bad).not.toContain('hunter2');
  expect(errors('cluster: {redis: "not a url"}')).toMatch(/cannot be read as a URL/);
  expect(errors('cluster: {redis: "redis://127.0.0.1", key_prefix: "has space"}')).toMatch(/cluster.key_prefix: expected a key prefix of 1-64/);
  expect(errors('cluster: {redis: "redis://127.0.0.1", instance: "a b"}')).toMatch(/cluster.instance: expected an instance name/);
  expect(errors('cluster: {redis: "redis://127.0.0.1", instanse: x}')).toMatch(/unknown field 'instanse'.*did you mean 'instance'/);
  expect(errors('cluster: redis://127.0.0.1')).toMatch(/cluster: expected a mapping with redis, key_prefix and instance/);
});
