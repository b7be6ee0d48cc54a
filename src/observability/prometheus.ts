/**
 * The one module that imports prom-client (15.1.3, pinned): the server's counters in the
 * Prometheus text format at http://HOST:PORT/metrics (`swfw serve --metrics`), plus prom-client's
 * default process metrics (CPU, memory, file descriptors, event loop lag, GC).
 */
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ListenAddress } from '../config/schema.js';
import type { Logger } from '../core/logger.js';
import type { FirmwareServer, FirmwareServerEvents } from '../server/server.js';

/** A running metrics endpoint. */
export interface MetricsEndpoint {
  /** The bound address (the real port when asked for port 0). */
  address(): { address: string; port: number };
  /** Stops listening and closes every scrape connection (keep-alive ones too). */
  stop(): Promise<void>;
}

type Listener<K extends keyof FirmwareServerEvents> = (...args: FirmwareServerEvents[K]) => void;

/** The server's metrics in their own registry: a second server in one process never collides. */
export function serverMetrics(server: FirmwareServer): { registry: Registry; detach(): void } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers: [registry] });
  const transfers = counter('swfw_transfers_total', 'Transfers finished, by protocol (ftp, http, https), result (complete, aborted) and final reply code (FTP 226, 425, 426, 451; HTTP 200, 206)', ['protocol', 'result', 'code']);
  const sentBytes = counter('swfw_sent_bytes_total', 'Bytes written to data connections by RETR, aborted transfers included');
  const loginFailures = counter('swfw_login_failures_total', 'PASS commands that did not log in (wrong password, unknown user, outside allowFrom)');
  const pasvWaits = counter('swfw_passive_waits_total', 'PASV/EPSV that found every passive port reserved and waited for one');
  const pasvTimeouts = counter('swfw_passive_wait_timeouts_total', 'Waiting PASV/EPSV that got no port within pasvWait: answered 425');
  const catalogRefusals = counter('swfw_catalog_refusals_total', 'RETR refused by the catalog: 550 (drifted or missing image) or 450 (being re-hashed)', ['code']);
  const granted = counter('swfw_one_time_access_granted_total', 'One-time accounts issued (one per switch pull of a rollout)');
  const revoked = counter('swfw_one_time_access_revoked_total', 'One-time accounts revoked');
  new Gauge({
    name: 'swfw_sessions',
    help: 'Control connections open now',
    registers: [registry],
    collect() {
      this.set(server.sessionCount());
    },
  });
  const listeners: { [K in keyof FirmwareServerEvents]?: Listener<K> } = {
    transfer: (record) => {
      transfers.inc({ protocol: record.protocol, result: record.result, code: String(record.code) });
      sentBytes.inc(record.bytes);
    },
    'login-failure': () => loginFailures.inc(),
    'pasv-wait': () => pasvWaits.inc(),
    'pasv-timeout': () => pasvTimeouts.inc(),
    'catalog-refusal': ({ code }) => catalogRefusals.inc({ code: String(code) }),
    'access-granted': () => granted.inc(),
    'access-revoked': () => revoked.inc(),
  };
  const entries = Object.entries(listeners) as Array<[keyof FirmwareServerEvents, (...args: unknown[]) => void]>;
  for (const [event, listener] of entries) server.on(event, listener as never);
  return {
    registry,
    detach: () => {
      for (const [event, listener] of entries) server.removeListener(event, listener as never);
    },
  };
}

/**
 * Serves `server`'s metrics at http://HOST:PORT/metrics (anything else: 404). Resolves once
 * bound, so `swfw serve` binds it before dropping root; rejects with the listen error.
 */
export async function startMetrics(options: { listen: ListenAddress; server: FirmwareServer; logger: Logger }): Promise<MetricsEndpoint> {
  const { registry, detach } = serverMetrics(options.server);
  const http: Server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    if (request.method !== 'GET' || path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: the metrics are at /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => {
        options.logger.error('metrics collection failed', { error: err.message });
        response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
      },
    );
  });
  http.listen(options.listen.port, options.listen.host);
  try {
    await Promise.race([once(http, 'listening'), once(http, 'error').then(([err]) => Promise.reject(err as Error))]);
  } catch (err) {
    detach();
    throw err;
  }
  http.on('error', (err) => options.logger.error('metrics listener error', { error: err.message }));
  const bound = http.address();
  if (bound === null || typeof bound === 'string') throw new Error('metrics listener has no address');
  options.logger.info('metrics at /metrics', { address: bound.address, port: bound.port });
  return {
    address: () => ({ address: bound.address, port: bound.port }),
    async stop() {
      detach();
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await closed;
    },
  };
}
