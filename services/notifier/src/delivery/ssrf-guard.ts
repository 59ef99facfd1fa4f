import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP, isIPv4, type LookupFunction } from 'node:net';

/**
 * Classes of destination address. Only `public` is allowed by default; every other class needs an entry in
 * NOTIFIER_ALLOWED_NETWORKS (and `cloud_metadata` an exact host entry, see {@link createAddressPolicy}).
 */
export type AddressClass =
  | 'public'
  | 'loopback'
  | 'private'
  | 'link_local'
  | 'cgnat'
  | 'multicast'
  | 'unspecified'
  | 'cloud_metadata'
  | 'documentation'
  | 'reserved'
  | 'invalid';

export interface AddressInfo {
  /** The address as given, without brackets or an IPv6 zone (`%eth0`). */
  address: string;
  family: 4 | 6 | null;
  class: AddressClass;
  /** The IPv4 address carried inside an IPv4-mapped (`::ffff:a.b.c.d`) or NAT64 (`64:ff9b::/96`) address. */
  embeddedIpv4: string | null;
}

type Family = 'ipv4' | 'ipv6';
type Range = readonly [network: string, prefix: number];

/**
 * Ranges per class, first match wins (so metadata hosts come before the link-local and CGNAT ranges that
 * contain them). Sources: the IANA IPv4 and IPv6 special-purpose address registries.
 */
const IPV4_RANGES: ReadonlyArray<readonly [AddressClass, readonly Range[]]> = [
  // AWS/GCP/Azure/OpenStack instance metadata, ECS task metadata, Alibaba Cloud metadata.
  [
    'cloud_metadata',
    [
      ['169.254.169.254', 32],
      ['169.254.170.2', 32],
      ['100.100.100.200', 32],
    ],
  ],
  // All of 0/8 "this network": Linux connects 0.0.0.0 (and friends) to the local host.
  ['unspecified', [['0.0.0.0', 8]]],
  ['loopback', [['127.0.0.0', 8]]],
  [
    'private',
    [
      ['10.0.0.0', 8],
      ['172.16.0.0', 12],
      ['192.168.0.0', 16],
    ],
  ],
  ['link_local', [['169.254.0.0', 16]]],
  ['cgnat', [['100.64.0.0', 10]]],
  ['multicast', [['224.0.0.0', 4]]],
  [
    'documentation',
    [
      ['192.0.2.0', 24],
      ['198.51.100.0', 24],
      ['203.0.113.0', 24],
    ],
  ],
  // IETF protocol assignments, 6to4 relay anycast, benchmarking, class E and the limited broadcast.
  [
    'reserved',
    [
      ['192.0.0.0', 24],
      ['192.88.99.0', 24],
      ['198.18.0.0', 15],
      ['240.0.0.0', 4],
    ],
  ],
];

const IPV6_RANGES: ReadonlyArray<readonly [AddressClass, readonly Range[]]> = [
  ['cloud_metadata', [['fd00:ec2::254', 128]]],
  ['unspecified', [['::', 128]]],
  ['loopback', [['::1', 128]]],
  ['multicast', [['ff00::', 8]]],
  ['link_local', [['fe80::', 10]]],
  // Unique local, the deprecated site-local, and local-use NAT64 (which translates to anything).
  [
    'private',
    [
      ['fc00::', 7],
      ['fec0::', 10],
      ['64:ff9b:1::', 48],
    ],
  ],
  [
    'documentation',
    [
      ['2001:db8::', 32],
      ['3fff::', 20],
    ],
  ],
  // IPv4-compatible (deprecated), discard-only, IETF protocol assignments (Teredo among them), 6to4: tunnels
  // and special cases whose real destination we cannot see.
  [
    'reserved',
    [
      ['::', 96],
      ['100::', 64],
      ['2001::', 23],
      ['2002::', 16],
    ],
  ],
];

function blockList(ranges: readonly Range[], family: Family): BlockList {
  const list = new BlockList();
  for (const [network, prefix] of ranges) list.addSubnet(network, prefix, family);
  return list;
}

const IPV4_CLASSES = IPV4_RANGES.map(([cls, ranges]) => [cls, blockList(ranges, 'ipv4')] as const);
const IPV6_CLASSES = IPV6_RANGES.map(([cls, ranges]) => [cls, blockList(ranges, 'ipv6')] as const);
/** Global unicast: the only IPv6 space handed out for the public Internet. */
const GLOBAL_UNICAST = blockList([['2000::', 3]], 'ipv6');

/** `[::1]` → `::1`, `fe80::1%eth0` → `fe80::1`. */
function bare(address: string): string {
  const unbracketed = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const zone = unbracketed.indexOf('%');
  return zone === -1 ? unbracketed : unbracketed.slice(0, zone);
}

/** The 16 bytes of a valid IPv6 address (as {@link isIP} accepts it, zone removed). */
function ipv6Bytes(address: string): Uint8Array {
  let text = address;
  const bytes = new Uint8Array(16);
  // A trailing dotted quad stands for the last two groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = [
    ...headGroups,
    ...Array(8 - headGroups.length - tailGroups.length).fill('0'),
    ...tailGroups,
  ];
  groups.forEach((group: string, i) => {
    const value = parseInt(group, 16);
    bytes[2 * i] = value >> 8;
    bytes[2 * i + 1] = value & 0xff;
  });
  return bytes;
}

function embeddedIpv4(bytes: Uint8Array): string | null {
  const prefix = (n: number[]) => n.every((v, i) => bytes[i] === v);
  const mapped = prefix([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
  const nat64 = prefix([0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0]);
  return mapped || nat64 ? Array.from(bytes.subarray(12)).join('.') : null;
}

function classifyIpv4(address: string): AddressClass {
  for (const [cls, list] of IPV4_CLASSES) if (list.check(address, 'ipv4')) return cls;
  return 'public';
}

/**
 * Classifies an IP address (v4 or v6; brackets and a zone are ignored). An IPv4-mapped (`::ffff:a.b.c.d`) or
 * NAT64 (`64:ff9b::a.b.c.d`) address takes the class of the IPv4 address it carries, since that is where a
 * connection to it ends up: `::ffff:127.0.0.1` is loopback, `::ffff:8.8.8.8` public. Not an address: `invalid`.
 */
export function classifyAddress(input: string): AddressInfo {
  const address = bare(input.trim());
  const family = isIP(address);
  if (family === 4) return { address, family: 4, class: classifyIpv4(address), embeddedIpv4: null };
  if (family !== 6) return { address, family: null, class: 'invalid', embeddedIpv4: null };
  const v4 = embeddedIpv4(ipv6Bytes(address));
  if (v4 !== null) return { address, family: 6, class: classifyIpv4(v4), embeddedIpv4: v4 };
  for (const [cls, list] of IPV6_CLASSES) {
    if (list.check(address, 'ipv6')) return { address, family: 6, class: cls, embeddedIpv4: null };
  }
  const cls = GLOBAL_UNICAST.check(address, 'ipv6') ? 'public' : 'reserved';
  return { address, family: 6, class: cls, embeddedIpv4: null };
}

/** Parses `a.b.c.d/n`, `x:y::/n` or a bare address (a single host) into a network and prefix length. */
export function parseCidr(text: string): { network: string; prefix: number; family: Family } {
  const [rawNetwork, rawPrefix, ...rest] = text.trim().split('/');
  const network = bare(rawNetwork ?? '');
  const family = isIP(network);
  if (rest.length > 0 || (family !== 4 && family !== 6)) throw new Error(`"${text}" is not a CIDR`);
  const max = family === 4 ? 32 : 128;
  const prefix = rawPrefix === undefined ? max : /^\d{1,3}$/.test(rawPrefix) ? Number(rawPrefix) : NaN;
  if (!(prefix >= 0 && prefix <= max)) throw new Error(`"${text}" has a prefix outside 0..${max}`);
  return { network, prefix, family: family === 4 ? 'ipv4' : 'ipv6' };
}

export interface AddressVerdict {
  allowed: boolean;
  info: AddressInfo;
  /** Why it was allowed or refused, for logs and attempt records. */
  reason: 'public' | 'allow_listed' | AddressClass;
}

export interface AddressPolicy {
  check(address: string): AddressVerdict;
}

/**
 * The address policy of the notifier: public addresses are allowed; any other class only inside an allowed
 * network (NOTIFIER_ALLOWED_NETWORKS, CIDRs; default none, so loopback and private networks are refused).
 * Cloud metadata addresses are refused even inside an allowed network unless the list names that exact host
 * (`169.254.169.254/32`): allow-listing a link-local or CGNAT range for a device must not hand out cloud
 * credentials. Invalid addresses are never allowed. A mapped or NAT64 address is matched by its IPv4 too.
 *
 * @throws Error naming the first entry that is not a CIDR
 */
export function createAddressPolicy(allowedNetworks: readonly string[]): AddressPolicy {
  const networks = new BlockList();
  const exactHosts = new BlockList();
  for (const entry of allowedNetworks) {
    const { network, prefix, family } = parseCidr(entry);
    networks.addSubnet(network, prefix, family);
    if (prefix === (family === 'ipv4' ? 32 : 128)) exactHosts.addAddress(network, family);
  }
  const inList = (list: BlockList, info: AddressInfo): boolean =>
    info.family === 4
      ? list.check(info.address, 'ipv4')
      : list.check(info.address, 'ipv6') ||
        (info.embeddedIpv4 !== null && list.check(info.embeddedIpv4, 'ipv4'));
  return {
    check(address) {
      const info = classifyAddress(address);
      if (info.class === 'invalid') return { allowed: false, info, reason: 'invalid' };
      if (info.class === 'public') return { allowed: true, info, reason: 'public' };
      const listed = inList(info.class === 'cloud_metadata' ? exactHosts : networks, info);
      return listed
        ? { allowed: true, info, reason: 'allow_listed' }
        : { allowed: false, info, reason: info.class };
    },
  };
}

/** One-off form of {@link createAddressPolicy}: is `address` allowed given the allow-listed CIDRs? */
export function isAllowed(address: string, allowedNetworks: readonly string[] = []): boolean {
  return createAddressPolicy(allowedNetworks).check(address).allowed;
}

/** Raised (and passed to a lookup callback) when a destination is refused; never retried as a network blip. */
export class DestinationRefusedError extends Error {
  readonly code = 'ERR_DESTINATION_REFUSED';
  constructor(
    readonly host: string,
    readonly reason: string,
  ) {
    super(`destination ${host} refused: ${reason}`);
    this.name = 'DestinationRefusedError';
  }
}

/**
 * Checks an endpoint URL before any connection: the scheme (`https:`, or `http:` with NOTIFIER_ALLOW_HTTP) and,
 * when the host is an IP literal, the address itself. This is needed besides {@link guardedLookup} because
 * Node's `net.connect` skips the lookup for IP literals. The WHATWG URL parser has already turned forms such
 * as `http://2130706433/` or `http://0x7f.1/` into dotted quads, so they are caught here.
 */
export function checkEndpointUrl(
  url: string,
  options: { policy: AddressPolicy; allowHttp: boolean },
): { ok: true; url: URL } | { ok: false; error: DestinationRefusedError } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, error: new DestinationRefusedError(url, 'not a URL') };
  }
  const host = parsed.hostname;
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && options.allowHttp)) {
    return { ok: false, error: new DestinationRefusedError(host, `scheme ${parsed.protocol} not allowed`) };
  }
  if (isIP(bare(host)) !== 0) {
    const verdict = options.policy.check(host);
    if (!verdict.allowed) return { ok: false, error: new DestinationRefusedError(host, verdict.reason) };
  }
  return { ok: true, url: parsed };
}

/** Resolves a host name to every address (what `dns.lookup(host, { all: true })` does). */
export type Resolver = (hostname: string, family: 0 | 4 | 6) => Promise<LookupAddress[]>;

const systemResolver: Resolver = (hostname, family) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, family, verbatim: true }, (error, addresses) =>
      error ? reject(error) : resolve(addresses),
    );
  });

/**
 * A `lookup` for `net.connect` / `tls.connect` (and so for undici's `new Agent({ connect: { lookup } })`):
 * resolves the host, then refuses the connection when ANY resolved address is outside the policy. The socket
 * connects to exactly the addresses this function returned, so there is no window between the check and the
 * connection for a DNS-rebinding answer to slip into. Refusing on any bad address, rather than filtering, keeps
 * the verdict independent of which address a happy-eyeballs race would pick.
 *
 * Honours `options.all` (Node's `autoSelectFamily` asks for every address) and `options.family`.
 *
 * @param resolve injected by tests; default the system resolver (`dns.lookup`, all addresses, verbatim order)
 */
export function guardedLookup(policy: AddressPolicy, resolve: Resolver = systemResolver): LookupFunction {
  return (hostname: string, options: LookupOptions, callback) => {
    const family =
      options.family === 4 || options.family === 'IPv4'
        ? 4
        : options.family === 6 || options.family === 'IPv6'
          ? 6
          : 0;
    const literal = bare(hostname);
    const resolved: Promise<LookupAddress[]> =
      isIP(literal) !== 0
        ? Promise.resolve([{ address: literal, family: isIPv4(literal) ? 4 : 6 }])
        : resolve(hostname, family);
    resolved.then(
      (addresses) => {
        if (addresses.length === 0) {
          const error: NodeJS.ErrnoException = new Error(`no address for ${hostname}`);
          error.code = 'ENOTFOUND';
          callback(error, '', 0);
          return;
        }
        for (const { address } of addresses) {
          const verdict = policy.check(address);
          if (!verdict.allowed) {
            callback(new DestinationRefusedError(hostname, `${address} is ${verdict.reason}`), '', 0);
            return;
          }
        }
        if (options.all) callback(null, addresses);
        else callback(null, addresses[0]!.address, addresses[0]!.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, '', 0),
    );
  };
}

/**
 * The `connect` option of an undici `Agent` for endpoint deliveries: `new Agent({ connect: connectOptions(p) })`.
 * undici is not a dependency of the notifier yet; the shape is plain `net`/`tls` connect options so it needs none.
 */
export function connectOptions(policy: AddressPolicy, resolve?: Resolver): { lookup: LookupFunction } {
  return { lookup: guardedLookup(policy, resolve) };
}
