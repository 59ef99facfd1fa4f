import { Counter, type Registry } from 'prom-client';

/**
 * The console's own metric besides the data module's (`createConsoleDataMetrics`, src/data/metrics.ts): sign-ins
 * by outcome. A factory of its own, as in every service, so the metric-name test can gather it without a server.
 */
export function createConsoleMetrics(registry: Registry) {
  return {
    logins: new Counter({
      name: 'console_sign_ins_total',
      help: 'Sign-in attempts by outcome (operator, portal, refused, csrf, portal_expired, portal_bad_signature, portal_malformed)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
  };
}
