import type { LookupAddress } from 'node:dns';
import {
  checkEndpointUrl,
  classifyAddress,
  connectOptions,
  createAddressPolicy,
  DestinationRefusedError,
  guardedLookup,
  isAllowed,
  parseCidr,
  type Resolver,
} from './ssrf-guard';

// Only classification: nothing here resolves or connects; the lookup tests inject a fake resolver.

describe('classifyAddress', () => {
  it.each([
    // loopback
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    // private
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.10', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fec0::1', 'private'],
    ['64:ff9b:1::a00:1', 'private'],
    // link-local
    ['169.254.1.1', 'link_local'],
    ['fe80::1', 'link_local'],
    ['fe80::1%eth0', 'link_local'],
    ['febf::1', 'link_local'],
    // CGNAT
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    // multicast
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    // unspecified
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    // cloud metadata
    ['169.254.169.254', 'cloud_metadata'],
    ['169.254.170.2', 'cloud_metadata'],
    ['100.100.100.200', 'cloud_metadata'],
    ['fd00:ec2::254', 'cloud_metadata'],
    // IPv4-mapped and NAT64: the embedded IPv4 decides
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::FFFF:10.1.2.3', 'private'],
    ['::ffff:169.254.169.254', 'cloud_metadata'],
    ['::ffff:8.8.8.8', 'public'],
    ['64:ff9b::192.168.0.1', 'private'],
    ['64:ff9b::808:808', 'public'],
    // documentation
    ['192.0.2.1', 'documentation'],
    ['198.51.100.7', 'documentation'],
    ['203.0.113.9', 'documentation'],
    ['2001:db8::1', 'documentation'],
    ['3fff::1', 'documentation'],
    // reserved
    ['192.0.0.8', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['192.88.99.1', 'reserved'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    ['::127.0.0.1', 'reserved'],
    ['100::1', 'reserved'],
    ['2001::1', 'reserved'],
    ['2002:7f00:1::1', 'reserved'],
    ['4000::1', 'reserved'],
    // public, including neighbours of the ranges above
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['172.15.255.255', 'public'],
    ['172.32.0.0', 'public'],
    ['100.63.255.255', 'public'],
    ['100.128.0.0', 'public'],
    ['11.0.0.1', 'public'],
    ['2606:4700:4700::1111', 'public'],
    ['2a00:1450:4001::200e', 'public'],
    // not addresses
    ['localhost', 'invalid'],
    ['256.1.1.1', 'invalid'],
    ['', 'invalid'],
  ])('%s is %s', (address, expected) => {
    expect(classifyAddress(address).class).toBe(expected);
  });

  it('reports the embedded IPv4 of a mapped address', () => {
    expect(classifyAddress('::ffff:7f00:1')).toEqual({
      address: '::ffff:7f00:1',
      family: 6,
      class: 'loopback',
      embeddedIpv4: '127.0.0.1',
    });
  });
});

describe('address policy', () => {
  it('allows only public addresses by default', () => {
    const policy = createAddressPolicy([]);
    expect(policy.check('8.8.8.8')).toMatchObject({ allowed: true, reason: 'public' });
    expect(policy.check('127.0.0.1')).toMatchObject({ allowed: false, reason: 'loopback' });
    expect(policy.check('::ffff:127.0.0.1')).toMatchObject({ allowed: false, reason: 'loopback' });
    expect(policy.check('nonsense')).toMatchObject({ allowed: false, reason: 'invalid' });
  });

  it.each([
    ['127.0.0.1', ['127.0.0.0/8'], true],
    ['::ffff:127.0.0.1', ['127.0.0.0/8'], true],
    ['::1', ['127.0.0.0/8'], false],
    ['::1', ['::1/128'], true],
    ['10.1.2.3', ['10.1.0.0/16'], true],
    ['10.2.0.1', ['10.1.0.0/16'], false],
    ['fd00::5', ['fd00::/8'], true],
    ['10.0.0.5', ['10.0.0.5'], true],
    // Metadata only by its exact host, never through a wider range.
    ['169.254.169.254', ['169.254.0.0/16'], false],
    ['169.254.169.254', ['169.254.169.254/32'], true],
    ['::ffff:169.254.169.254', ['169.254.0.0/16'], false],
    ['fd00:ec2::254', ['fd00::/8'], false],
    ['fd00:ec2::254', ['fd00:ec2::254/128'], true],
    ['8.8.8.8', ['10.0.0.0/8'], true],
  ])('isAllowed(%s, %j) is %s', (address, networks, expected) => {
    expect(isAllowed(address, networks)).toBe(expected);
  });

  it.each(['10.0.0.0/33', 'fd00::/129', 'example.com/8', '10.0.0.0/8/1', '10.0.0.0/-1', '10.0.0.0/'])(
    'refuses the allow-list entry %p',
    (entry) => {
      expect(() => createAddressPolicy([entry])).toThrow(entry);
    },
  );

  it('parses CIDRs and bare hosts', () => {
    expect(parseCidr('10.0.0.0/8')).toEqual({ network: '10.0.0.0', prefix: 8, family: 'ipv4' });
    expect(parseCidr('::1')).toEqual({ network: '::1', prefix: 128, family: 'ipv6' });
  });
});

describe('checkEndpointUrl', () => {
  const strict = { policy: createAddressPolicy([]), allowHttp: false };
  const local = { policy: createAddressPolicy(['127.0.0.0/8', '::1/128']), allowHttp: true };

  it.each([
    ['https://hooks.example.com/x', strict, true],
    ['http://hooks.example.com/x', strict, 'scheme http: not allowed'],
    ['ftp://hooks.example.com/x', local, 'scheme ftp: not allowed'],
    ['https://8.8.8.8/x', strict, true],
    ['https://127.0.0.1:8443/x', strict, 'loopback'],
    ['https://[::1]/x', strict, 'loopback'],
    ['https://[::ffff:169.254.169.254]/latest', strict, 'cloud_metadata'],
    // The URL parser turns these into 127.0.0.1 and 10.0.0.1 before we look.
    ['https://2130706433/x', strict, 'loopback'],
    ['https://0x7f.1/x', strict, 'loopback'],
    ['https://012.0.0.1/x', strict, 'private'],
    ['http://127.0.0.1:9000/hook', local, true],
    ['http://[::1]:9000/hook', local, true],
    ['not a url', strict, 'not a URL'],
  ] as const)('%s', (url, options, expected) => {
    const result = checkEndpointUrl(url, options);
    if (expected === true) expect(result.ok).toBe(true);
    else {
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error.message).toContain(expected);
    }
  });
});

describe('guardedLookup', () => {
  function fakeResolver(table: Record<string, string[]>): Resolver & { calls: string[] } {
    const calls: string[] = [];
    const resolve = async (hostname: string, family: 0 | 4 | 6): Promise<LookupAddress[]> => {
      calls.push(`${hostname}/${family}`);
      const addresses = table[hostname];
      if (!addresses)
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
      return addresses
        .map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))
        .filter((a) => family === 0 || a.family === family);
    };
    return Object.assign(resolve, { calls });
  }

  const resolver = fakeResolver({
    'public.test': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
    'rebind.test': ['93.184.215.14', '127.0.0.1'],
    'metadata.test': ['169.254.169.254'],
    'mapped.test': ['::ffff:10.0.0.1'],
    'local.test': ['127.0.0.1'],
    'empty.test': [],
  });

  function run(
    lookup: ReturnType<typeof guardedLookup>,
    hostname: string,
    options: Parameters<ReturnType<typeof guardedLookup>>[1],
  ): Promise<{ error: NodeJS.ErrnoException | null; address: unknown; family: unknown }> {
    return new Promise((resolve) => {
      lookup(hostname, options, (error, address, family) => resolve({ error, address, family }));
    });
  }

  const strict = guardedLookup(createAddressPolicy([]), resolver);

  it('answers one address in the single form', async () => {
    expect(await run(strict, 'public.test', {})).toEqual({
      error: null,
      address: '93.184.215.14',
      family: 4,
    });
  });

  it('answers every address when asked for all (autoSelectFamily)', async () => {
    const { error, address } = await run(strict, 'public.test', { all: true });
    expect(error).toBeNull();
    expect(address).toEqual([
      { address: '93.184.215.14', family: 4 },
      { address: '2606:2800:21f:cb07:6820:80da:af6b:8b2c', family: 6 },
    ]);
  });

  it('passes the requested family to the resolver', async () => {
    expect(await run(strict, 'public.test', { family: 6 })).toMatchObject({
      address: '2606:2800:21f:cb07:6820:80da:af6b:8b2c',
      family: 6,
    });
    expect(resolver.calls).toContain('public.test/6');
  });

  it.each([
    ['rebind.test', '127.0.0.1 is loopback'],
    ['metadata.test', '169.254.169.254 is cloud_metadata'],
    ['mapped.test', '::ffff:10.0.0.1 is private'],
    ['local.test', '127.0.0.1 is loopback'],
  ])('refuses %s when any address is not allowed', async (hostname, reason) => {
    for (const options of [{}, { all: true }]) {
      const { error } = await run(strict, hostname, options);
      expect(error).toBeInstanceOf(DestinationRefusedError);
      expect(error).toMatchObject({ code: 'ERR_DESTINATION_REFUSED', host: hostname, reason });
    }
  });

  it('allows an allow-listed network', async () => {
    const local = guardedLookup(createAddressPolicy(['127.0.0.0/8']), resolver);
    expect(await run(local, 'local.test', {})).toEqual({ error: null, address: '127.0.0.1', family: 4 });
  });

  it('checks an IP literal without resolving it', async () => {
    const calls = resolver.calls.length;
    expect((await run(strict, '10.0.0.1', {})).error).toBeInstanceOf(DestinationRefusedError);
    expect(await run(strict, '8.8.8.8', {})).toEqual({ error: null, address: '8.8.8.8', family: 4 });
    expect(resolver.calls.length).toBe(calls);
  });

  it('passes resolver errors through and turns an empty answer into ENOTFOUND', async () => {
    expect((await run(strict, 'nowhere.test', {})).error).toMatchObject({ code: 'ENOTFOUND' });
    expect((await run(strict, 'empty.test', {})).error).toMatchObject({ code: 'ENOTFOUND' });
  });

  it('is what connectOptions hands to an undici Agent', () => {
    expect(typeof connectOptions(createAddressPolicy([]), resolver).lookup).toBe('function');
  });
});
