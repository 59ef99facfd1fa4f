import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'svix';
import type { VerifiedWebhook } from './outcome';

/** A receiver of customer webhooks on 127.0.0.1 that verifies each with svix. */
export interface Sink {
  url: string;
  /** Verified webhooks, each `webhook-id` once (a redelivery is acknowledged again, not counted twice). */
  webhooks: VerifiedWebhook[];
  /** Requests that did not verify (answered 401). */
  unverified(): number;
  /** The endpoint's secret, known once the endpoint is created; until then every request is refused. */
  setSecret(secret: string): void;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1_048_576;

export async function startSink(host = '127.0.0.1'): Promise<Sink> {
  let verifier: Webhook | undefined;
  let unverified = 0;
  const webhooks: VerifiedWebhook[] = [];
  const seen = new Set<string>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers))
        headers[name] = Array.isArray(value) ? value.join(',') : (value ?? '');
      let body: { type: string; timestamp: string; data: unknown };
      try {
        if (!verifier || size > MAX_BODY_BYTES) throw new Error('cannot verify');
        // Verifies the signature over the raw body and the timestamp's freshness; returns the parsed body.
        body = verifier.verify(Buffer.concat(chunks).toString('utf8'), headers) as typeof body;
      } catch {
        unverified += 1;
        res.writeHead(401).end();
        return;
      }
      const id = headers['webhook-id'] ?? headers['svix-id'] ?? '';
      if (!seen.has(id)) {
        seen.add(id);
        webhooks.push({ id, type: body.type, data: body.data, timestamp: body.timestamp });
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}/ampflow-demo`,
    webhooks,
    unverified: () => unverified,
    setSecret(secret) {
      verifier = new Webhook(secret);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
