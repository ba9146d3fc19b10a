import { describe, expect, test } from 'bun:test';
import {
  applySslOption,
  globMatch,
  NameTable,
  normalizeServerName,
  penProtocolMinimum,
  Router,
  serverNamePatternProblem,
  type RouteRule,
} from '../../../src/core/tls-rules.ts';

describe('server name patterns', () => {
  test('names are compared in lower case without a trailing dot', () => {
    expect(normalizeServerName('API.Example.COM.')).toBe('api.example.com');
  });

  test('valid and invalid patterns', () => {
    for (const ok of ['example.com', '*.example.com', 'a-b.c_d.example', 'localhost', 'xn--bcher-kva.example']) expect(serverNamePatternProblem(ok)).toBeUndefined();
    for (const bad of ['', '*', '*.com', 'a.*.example.com', '*x.example.com', 'bad name.com', '-a.example', 'a..b']) expect(serverNamePatternProblem(bad)).toBeString();
  });

  test('exact beats wildcard; a wildcard covers exactly one label; the first value for a pattern stays', () => {
    const t = new NameTable<string>();
    expect(t.set('*.example.com', 'wild')).toBe(true);
    expect(t.set('api.example.com', 'api')).toBe(true);
    expect(t.set('API.example.com.', 'second')).toBe(false);
    expect(t.get('api.example.com')).toBe('api');
    expect(t.get('www.example.com')).toBe('wild');
    expect(t.get('example.com')).toBeUndefined();
    expect(t.get('a.b.example.com')).toBeUndefined();
    expect(t.get('localhost')).toBeUndefined();
    expect([...t.entries()].map(([k]) => k).sort()).toEqual(['*.example.com', 'api.example.com']);
  });

  test('identity globs', () => {
    expect(globMatch('CN=svc-*', 'CN=svc-billing')).toBe(true);
    expect(globMatch('CN=svc-*', 'CN=admin')).toBe(false);
    expect(globMatch('*', 'anything')).toBe(true);
    expect(globMatch('a*b*c', 'axxbyyc')).toBe(true);
    expect(globMatch('a*b*c', 'acb')).toBe(false);
    expect(globMatch('ab*ba', 'aba')).toBe(false);
    expect(globMatch('exact', 'exact')).toBe(true);
  });
});

describe('routing by server name, ALPN and client identity', () => {
  const rule = (target: string, serverNames: string[], more: Partial<RouteRule<string>> = {}): RouteRule<string> => ({
    serverNames,
    alpn: [],
    clientIdentities: [],
    target,
    ...more,
  });
  const facts = (serverName: string | null, alpn: string[] = [], clientIdentity: string | null = null) => ({ serverName, alpn, clientIdentity });

  test('the first matching rule in the order written wins, across exact, wildcard and any-name rules', () => {
    const r = new Router([
      rule('h2-api', ['api.example.com'], { alpn: ['h2'] }),
      rule('wild', ['*.example.com']),
      rule('api', ['api.example.com']),
      rule('admin', [], { clientIdentities: ['CN=admin'] }),
      rule('other', ['other.test']),
    ]);
    expect(r.choose(facts('api.example.com', ['h2']))).toBe('h2-api');
    expect(r.choose(facts('API.example.com.', ['http/1.1']))).toBe('wild');
    expect(r.choose(facts('www.example.com'))).toBe('wild');
    expect(r.choose(facts('other.test'))).toBe('other');
    expect(r.choose(facts('other.test', [], 'CN=admin'))).toBe('admin');
    expect(r.choose(facts(null, [], 'CN=admin'))).toBe('admin');
    expect(r.choose(facts(null))).toBeNull();
    expect(r.choose(facts('unknown.test'))).toBeNull();
  });

  test('an offered ALPN list matches when any protocol is listed', () => {
    const r = new Router([rule('grpc', ['*.svc.test'], { alpn: ['h2'] })]);
    expect(r.choose(facts('a.svc.test', ['http/1.1', 'h2']))).toBe('grpc');
    expect(r.choose(facts('a.svc.test', ['http/1.1']))).toBeNull();
    expect(r.choose(facts('a.svc.test', []))).toBeNull();
  });

  test('no rules: nothing chosen', () => {
    expect(new Router<string>([]).choose(facts('a.test'))).toBeNull();
  });
});

describe("pen's TLS words", () => {
  test('-L: ssl23 and tls1 become TLS 1.2 minimum; SSLv2/SSLv3 are refused clearly', () => {
    expect(penProtocolMinimum('ssl23')).toEqual({ min: 'TLSv1.2' });
    expect(penProtocolMinimum('tls1')).toMatchObject({ min: 'TLSv1.2', note: expect.stringContaining('RFC 8996') });
    expect(penProtocolMinimum('tls1.3')).toEqual({ min: 'TLSv1.3' });
    expect(penProtocolMinimum('ssl3')).toEqual({ error: expect.stringContaining('SSLv3 is insecure and refused') });
    expect(penProtocolMinimum('ssl2')).toEqual({ error: expect.stringContaining('SSLv2 is insecure and refused') });
    expect(penProtocolMinimum('tls9')).toEqual({ error: expect.stringContaining('not known') });
  });

  test('ssl_option moves the ends of the version range and refuses holes', () => {
    const modern = { min: 'TLSv1.2', max: 'TLSv1.3' } as const;
    const legacy = { min: 'TLSv1', max: 'TLSv1.3' } as const;
    expect(applySslOption(modern, 'no_sslv3')).toEqual({ range: modern });
    expect(applySslOption(modern, 'no_tlsv1')).toEqual({ range: modern });
    expect(applySslOption(modern, 'no_tlsv1.2')).toEqual({ range: { min: 'TLSv1.3', max: 'TLSv1.3' } });
    expect(applySslOption(modern, 'no_tlsv1.3')).toEqual({ range: { min: 'TLSv1.2', max: 'TLSv1.2' } });
    expect(applySslOption(legacy, 'no_tlsv1')).toEqual({ range: { min: 'TLSv1.1', max: 'TLSv1.3' } });
    expect(applySslOption(legacy, 'no_tlsv1.1')).toEqual({ error: expect.stringContaining('disable the lower versions first') });
    expect(applySslOption({ min: 'TLSv1.3', max: 'TLSv1.3' }, 'no_tlsv1.3')).toEqual({ error: expect.stringContaining('would leave none') });
    expect(applySslOption(modern, 'cipher_server_preference')).toEqual({ range: modern, serverPreference: true });
    expect(applySslOption(modern, 'no_such')).toEqual({ error: expect.stringContaining('unknown option') });
  });
});
