/** Where Redis is: one server, or the seed nodes of a Redis Cluster (the client learns the rest from them). */
export type RedisTarget =
  | { mode: 'single'; url: string }
  | {
      mode: 'cluster';
      nodes: Array<{ host: string; port: number }>;
      username?: string;
      password?: string;
      tls: boolean;
    };

const DEFAULT_PORT = 6379;
const URL_FORM = /^(rediss?)(\+cluster)?:\/\/(?:([^@/?#]*)@)?([^/?#]+)(?:\/(\d*))?$/;

/**
 * Parses `REDIS_URL`. One server: `redis://[user:password@]host[:port][/db]` (`rediss://` for TLS), as before.
 * A Redis Cluster: `redis+cluster://[user:password@]host[:port][,host[:port]...]` (`rediss+cluster://` for
 * TLS), or a plain `redis://` URL naming more than one node (`redis://host:port,host:port`). The nodes are
 * seeds: any reachable one is enough, the client discovers the others. A cluster has only database 0.
 * Throws an Error whose message says what is wrong (never the password).
 */
export function parseRedisUrl(url: string): RedisTarget {
  const match = URL_FORM.exec(url.trim());
  if (!match)
    throw new Error(
      'expected redis://host:port[/db], or a cluster: redis+cluster://host:port,host:port (rediss for TLS)',
    );
  const [, scheme, clusterSuffix, credentials, hostList, db] = match;
  const hosts = hostList!.split(',');
  const nodes = hosts.map((entry) => parseNode(entry.trim()));
  const cluster = clusterSuffix !== undefined || nodes.length > 1;
  if (!cluster) return { mode: 'single', url: url.trim() };
  if (db !== undefined && db !== '' && Number(db) !== 0)
    throw new Error(`a Redis Cluster has only database 0, not /${db}`);
  const target: RedisTarget = { mode: 'cluster', nodes, tls: scheme === 'rediss' };
  if (credentials !== undefined && credentials !== '') {
    const colon = credentials.indexOf(':');
    const user = decode(colon < 0 ? credentials : credentials.slice(0, colon));
    const password = colon < 0 ? undefined : decode(credentials.slice(colon + 1));
    // `redis://:password@host` (no user) is the usual form: the default user.
    if (user !== '') target.username = user;
    if (password !== undefined && password !== '') target.password = password;
  }
  return target;
}

function parseNode(entry: string): { host: string; port: number } {
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(entry);
  const plain = /^([A-Za-z0-9.-]+)(?::(\d+))?$/.exec(entry);
  const found = bracketed ?? plain;
  if (!found) throw new Error(`"${entry}" is not a host[:port] (IPv6 as [addr]:port)`);
  const port = found[2] === undefined ? DEFAULT_PORT : Number(found[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65_535)
    throw new Error(`port ${found[2]} is out of range`);
  return { host: found[1]!, port };
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new Error('the user or password is not URL-encoded correctly');
  }
}
