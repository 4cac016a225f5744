/**
 * The center's Prometheus metrics (prom-client), one registry per running center (several may share a
 * process in tests). Labels are low-cardinality and public: routes, statuses, schemes, refusal reasons —
 * never a station ID, medium ID, nonce or anything secret.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Scheme } from '../domain/index.js';
import { CenterRefusal } from './types.js';

/** Refusal codes as the `reason` label: a fixed set, so a hostile client cannot mint label values. */
const REASONS: Record<string, string> = {
  [CenterRefusal.REPLAYED_NONCE]: 'replay',
  [CenterRefusal.UNAUTHORIZED]: 'unauthorized',
  [CenterRefusal.STATION_REVOKED]: 'revoked',
  [CenterRefusal.UNKNOWN_CONTENT]: 'unknown_content',
  [CenterRefusal.SCHEME_NOT_ALLOWED]: 'scheme_not_allowed',
  [CenterRefusal.STALE_TIMESTAMP]: 'stale_timestamp',
  [CenterRefusal.BAD_REQUEST]: 'bad_request',
  [CenterRefusal.BAD_HEADERS]: 'bad_headers',
  [CenterRefusal.REQUEST_CONFLICT]: 'request_conflict',
  [CenterRefusal.BODY_TOO_LARGE]: 'body_too_large',
  E_LEDGER_WRITE: 'ledger_write',
  E_LEDGER_UNAVAILABLE: 'ledger_unavailable',
  E_SHUTTING_DOWN: 'shutting_down',
};

export function refusalReason(code: string): string {
  return REASONS[code] ?? 'other';
}

export class CenterMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'mocopy_http_requests_total', help: 'HTTP requests answered, by route and status', labelNames: ['route', 'status'] as const, registers: [this.registry] });
  private readonly duration = new Histogram({
    name: 'mocopy_http_request_duration_seconds', help: 'Time from a request\'s arrival to its answer, by route', labelNames: ['route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry],
  });
  private readonly issuedTotal = new Counter({ name: 'mocopy_licenses_issued_total', help: 'Licenses newly issued and billed (a stored license answered again is not counted)', labelNames: ['scheme'] as const, registers: [this.registry] });
  private readonly refusals = new Counter({ name: 'mocopy_license_refusals_total', help: 'Station requests refused, by reason', labelNames: ['reason'] as const, registers: [this.registry] });
  private readonly commitDuration = new Histogram({
    name: 'mocopy_ledger_commit_duration_seconds', help: 'Duration of a ledger transaction from its start to its durable commit',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers: [this.registry],
  });
  private readonly batchSize = new Histogram({
    name: 'mocopy_ledger_batch_size', help: 'Requests per group commit (SQLite ledger)', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers: [this.registry],
  });
  readonly inflight = new Gauge({ name: 'mocopy_inflight_requests', help: 'Requests being served', registers: [this.registry] });
  private readonly readyGauge = new Gauge({ name: 'mocopy_ready', help: '1 while the instance can serve (ledger answers, not draining)', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    for (const s of ['a', 'b']) this.issuedTotal.inc({ scheme: s }, 0); // present from the first scrape, so sums and rates start at 0
  }

  request(route: string, status: number, seconds: number): void {
    this.requests.inc({ route, status: String(status) });
    this.duration.observe({ route }, seconds);
  }

  issued(scheme: Scheme): void {
    this.issuedTotal.inc({ scheme });
  }

  refused(code: string): void {
    this.refusals.inc({ reason: refusalReason(code) });
  }

  commit(seconds: number, items: number, grouped: boolean): void {
    this.commitDuration.observe(seconds);
    if (grouped) this.batchSize.observe(items);
  }

  ready(up: boolean): void {
    this.readyGauge.set(up ? 1 : 0);
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
