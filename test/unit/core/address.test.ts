import { expect, test } from 'bun:test';
import { parseListenAddress, parseServerArg } from '../../../src/core/address.ts';

test('listen addresses: port, host:port, [v6]:port, unix path', () => {
  expect(parseListenAddress('8080')).toEqual({ kind: 'tcp', host: '0.0.0.0', port: 8080 });
  expect(parseListenAddress('127.0.0.1:80')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 80 });
  expect(parseListenAddress('[::1]:8443')).toEqual({ kind: 'tcp', host: '::1', port: 8443 });
  expect(parseListenAddress('/run/f.sock')).toEqual({ kind: 'unix', path: '/run/f.sock' });
  expect(parseListenAddress('http')).toEqual({ kind: 'tcp', host: '0.0.0.0', port: 80 });
  expect(() => parseListenAddress('::1:80')).toThrow(/brackets/);
  expect(() => parseListenAddress('70000')).toThrow(/1-65535/);
});

test("servers: pen's host:port:maxc:hard:weight:prio with the listener's port as default", () => {
  expect(parseServerArg('10.0.0.1', 8080)).toEqual({ address: { kind: 'tcp', host: '10.0.0.1', port: 8080 }, maxConnections: 0, hardLimit: 0, weight: 0, priority: 0 });
  expect(parseServerArg('10.0.0.1:81:10:20:3:1', 80)).toEqual({ address: { kind: 'tcp', host: '10.0.0.1', port: 81 }, maxConnections: 10, hardLimit: 20, weight: 3, priority: 1 });
  expect(parseServerArg('[::1]:81:5', 80).address).toEqual({ kind: 'tcp', host: '::1', port: 81 });
  expect(parseServerArg('/tmp/s.sock:4', undefined)).toEqual({ address: { kind: 'unix', path: '/tmp/s.sock' }, maxConnections: 4, hardLimit: 0, weight: 0, priority: 0 });
  expect(() => parseServerArg('10.0.0.1:80:x', 80)).toThrow(/maxc/);
  expect(() => parseServerArg('host', undefined)).toThrow(/no port/);
  expect(() => parseServerArg('a:1:2:3:4:5:6', 80)).toThrow(/too many/);
});
