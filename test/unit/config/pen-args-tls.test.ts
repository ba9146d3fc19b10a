import { expect, test } from 'bun:test';
import { parsePenArgs, UsageError } from '../../../src/config/pen-args.ts';

const tlsOf = (args: string[]) => parsePenArgs(args).config.listeners[0]!.tls;

test('-E alone: the key is in the certificate file, modern versions, no client certificates', () => {
  expect(tlsOf(['-E', 'site.pem', '443', 'app1:80'])).toMatchObject({
    certificates: [{ cert: 'site.pem', key: 'site.pem', names: null, isDefault: true }],
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
    clientAuth: { mode: 'none', caFile: null, caDir: null },
  });
  expect(tlsOf(['443', 'app1:80'])).toBeNull();
});

test('-E -K -G -A -R -L as pen reads them, bundled and attached', () => {
  const p = parsePenArgs(['-fR', '-Ecert.pem', '-K', 'key.pem', '-G', 'ca.pem', '-A', '/etc/ssl/certs', '-L', 'tls1.3', '443', 'a:80']);
  expect(p.config.listeners[0]!.tls).toMatchObject({
    certificates: [{ cert: 'cert.pem', key: 'key.pem' }],
    minVersion: 'TLSv1.3',
    clientAuth: { mode: 'required', caFile: 'ca.pem', caDir: '/etc/ssl/certs' },
  });
  expect(p.config.global.foreground).toBe(true);
});

test("-L: pen's ssl23 and tls1 map to TLS 1.2 or newer; SSLv2 and SSLv3 are refused", () => {
  expect(tlsOf(['-E', 'c', '-L', 'ssl23', '443', 'a'])?.minVersion).toBe('TLSv1.2');
  const p = parsePenArgs(['-E', 'c', '-L', 'tls1', '443', 'a']);
  expect(p.config.listeners[0]!.tls?.minVersion).toBe('TLSv1.2');
  expect(p.notes.join('\n')).toContain('RFC 8996');
  expect(() => parsePenArgs(['-E', 'c', '-L', 'ssl3', '443', 'a'])).toThrow(/SSLv3 is insecure and refused/);
  expect(() => parsePenArgs(['-E', 'c', '-L', 'ssl2', '443', 'a'])).toThrow(/SSLv2 is insecure and refused/);
  expect(() => parsePenArgs(['-E', 'c', '-L', 'tls7', '443', 'a'])).toThrow(UsageError);
});

test('-Z is accepted and noted; -G without -R is noted (pen asks no certificate then)', () => {
  const p = parsePenArgs(['-Z', '-E', 'c', '-G', 'ca.pem', '443', 'a']);
  expect(p.notes.some((n) => n.includes('-Z'))).toBe(true);
  expect(p.notes.some((n) => n.includes('without -R'))).toBe(true);
  expect(p.config.listeners[0]!.tls?.clientAuth.mode).toBe('none');
});

test('TLS options without -E are refused with the reason', () => {
  expect(() => parsePenArgs(['-K', 'k.pem', '443', 'a'])).toThrow(/-K configure TLS termination, which needs the certificate: -E certfile/);
  expect(() => parsePenArgs(['-R', '-G', 'ca', '443', 'a'])).toThrow(/-G, -R configure/);
});
