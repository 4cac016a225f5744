/** The in-process center (`--center-db LEDGER`): the same CenterClient as over HTTP, without the network. */
import { LicenseCenter } from './center.js';
import type { CenterClient, ContentInfo, License, LicenseRequest, StationKey } from './types.js';

export class LocalCenterClient implements CenterClient {
  private readonly center: LicenseCenter;
  constructor(ledgerPath: string, private readonly station: StationKey) {
    this.center = LicenseCenter.open(ledgerPath, { create: false });
  }
  async requestLicense(req: LicenseRequest): Promise<License> {
    this.center.authenticateKey(this.station.stationId, this.station.key);
    return this.center.issue(this.station.stationId, req);
  }
  async listContents(): Promise<ContentInfo[]> {
    return this.center.listContents();
  }
  async close(): Promise<void> {
    this.center.close();
  }
}
