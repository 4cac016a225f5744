/** The in-process center (`--center-db LEDGER`): the same CenterClient as over HTTP, without the network. */
import { LicenseCenter } from './center.js';
import type { CenterClient, ContentInfo, License, LicenseRequest, StationKey } from './types.js';

export class LocalCenterClient implements CenterClient {
  /** Opened at construction; a missing ledger surfaces at `ready()` or the first request. */
  readonly center: Promise<LicenseCenter>;
  constructor(ledger: string, private readonly station: StationKey) {
    this.center = LicenseCenter.open(ledger, { create: false });
    this.center.catch(() => undefined); // reported by whoever awaits it
  }
  /** Resolves once the ledger is open; rejects with the reason it cannot be. */
  async ready(): Promise<void> {
    await this.center;
  }
  async requestLicense(req: LicenseRequest): Promise<License> {
    const c = await this.center;
    await c.authenticateKey(this.station.stationId, this.station.key);
    return c.issue(this.station.stationId, req);
  }
  async listContents(): Promise<ContentInfo[]> {
    return (await this.center).listContents();
  }
  async close(): Promise<void> {
    const c = await this.center.catch(() => undefined);
    await c?.close();
  }
}
