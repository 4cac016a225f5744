/** The stations' side of the center benchmarks: a closed loop of signed license requests over HTTP. */
import { randomBytes, randomUUID } from 'node:crypto';
import { HttpCenterClient } from '../lib/center/http-client.js';
import type { StationKey } from '../lib/domain/index.js';
import { now } from './util.js';

/**
 * `total` license requests from `stations`, each sending its next request when the last is answered, station i to
 * `urls[i % urls.length]`. Returns the rate, the 99th-percentile latency and the elapsed time.
 */
export async function licenseLoad(urls: string[], stations: StationKey[], total: number): Promise<{ rate: number; p99: number; ms: number }> {
  const clients = stations.map((s, i) => new HttpCenterClient(urls[i % urls.length]!, s));
  let left = total;
  const lat: number[] = [];
  const t0 = now();
  await Promise.all(clients.map(async (cl) => {
    while (left-- > 0) {
      const t = now();
      await cl.requestLicense({ requestId: randomUUID(), scheme: left % 2 ? 'a' : 'b', contentId: 'APP', mediumId: randomBytes(8).toString('hex') });
      lat.push(now() - t);
    }
  }));
  const ms = now() - t0;
  lat.sort((a, b) => a - b);
  return { rate: total / (ms / 1000), p99: lat[Math.floor(lat.length * 0.99)]!, ms };
}
