/** `mocopy center ...`: the license center's ledger and service. */
import type { Command } from 'commander';
import { DEFAULT_PORT, Ledger, LicenseCenter, serveCenter, UsageError, validateContentId, writeStationKey } from '../../lib/index.js';
import { jsonOption, info, out, parseListen, printJson } from '../common.js';
import { parseSchemes } from './master.js';

export function register(program: Command): void {
  const center = program.command('center').description('the license center: ledger, stations, contents, service');
  const station = center.command('station').description('copying stations registered with the center');
  station.command('add')
    .argument('<name>', 'a name for the station (shop, place)')
    .requiredOption('--db <ledger>', 'the center ledger (created if missing)')
    .requiredOption('--key-out <file>', 'where to write the station key file (written once, mode 0600)')
    .addOption(jsonOption())
    .description('register a station and write its key file')
    .action((name: string, o: { db: string; keyOut: string; json?: boolean }) => {
      const c = LicenseCenter.open(o.db);
      try {
        const key = c.addStation(name);
        try {
          writeStationKey(o.keyOut, key);
        } catch (e) {
          c.revokeStation(key.stationId); // no key file: the station could never be used
          throw e;
        }
        if (o.json) printJson({ stationId: key.stationId, centerId: key.centerId, keyFile: o.keyOut });
        else out(`station ${key.stationId} registered with ${key.centerId}; key written to ${o.keyOut} (keep it private)`);
      } finally {
        c.close();
      }
    });
  station.command('revoke')
    .argument('<station-id>', 'the station to revoke')
    .requiredOption('--db <ledger>', 'the center ledger')
    .description('revoke a station: it gets no more licenses')
    .action((id: string, o: { db: string }) => {
      const c = LicenseCenter.open(o.db, { create: false });
      try {
        c.revokeStation(id);
        out(`station ${id} revoked`);
      } finally {
        c.close();
      }
    });
  station.command('list')
    .requiredOption('--db <ledger>', 'the center ledger')
    .addOption(jsonOption())
    .description('list stations')
    .action((o: { db: string; json?: boolean }) => {
      const l = Ledger.open(o.db, { create: false });
      try {
        const rows = l.stations();
        if (o.json) return printJson({ stations: rows });
        for (const r of rows) out(`${r.id.padEnd(12)} ${r.status.padEnd(8)} ${r.name}`);
      } finally {
        l.close();
      }
    });
  center.command('content')
    .description('contents the center licenses')
    .command('add')
    .argument('<content-id>', 'content ID')
    .requiredOption('--db <ledger>', 'the center ledger')
    .requiredOption('--name <name>', 'program name')
    .option('--schemes <list>', 'a, b or a,b', 'a,b')
    .option('--price <cents>', 'price per licensed copy in cents', '0')
    .description('register a content (mocopy master build does this for the contents it writes)')
    .action((id: string, o: { db: string; name: string; schemes: string; price: string }) => {
      validateContentId(id);
      const c = LicenseCenter.open(o.db);
      try {
        c.registerContent({ contentId: id, name: o.name, schemes: parseSchemes(o.schemes), price: Number(o.price) });
        out(`content ${id} registered`);
      } finally {
        c.close();
      }
    });
  center.command('report')
    .requiredOption('--db <ledger>', 'the center ledger')
    .addOption(jsonOption())
    .description('licenses issued and billing rows')
    .action((o: { db: string; json?: boolean }) => {
      const l = Ledger.open(o.db, { create: false });
      try {
        const r = l.report();
        if (o.json) return printJson(r);
        out(`${r.licenses.length} license(s), ${r.billing.length} billing row(s)`);
        for (const x of r.licenses) out(`  ${x.issuedAt}  ${x.stationId.padEnd(12)} ${x.contentId.padEnd(16)} scheme ${x.scheme.toUpperCase()} medium ${x.mediumId}`);
      } finally {
        l.close();
      }
    });
  center.command('serve')
    .requiredOption('--db <ledger>', 'the center ledger')
    .option('--listen <host:port>', `address to listen on (default 127.0.0.1:${DEFAULT_PORT})`, `127.0.0.1:${DEFAULT_PORT}`)
    .option('--tls-cert <file>', 'TLS certificate (PEM): serve HTTPS')
    .option('--tls-key <file>', 'TLS private key (PEM)')
    .description('run the license center service (JSON over HTTP, /v1/...)')
    .action(async (o: { db: string; listen: string; tlsCert?: string; tlsKey?: string }) => {
      if (!!o.tlsCert !== !!o.tlsKey) throw new UsageError('--tls-cert and --tls-key go together');
      const { host, port } = parseListen(o.listen, DEFAULT_PORT);
      const running = await serveCenter({ db: o.db, host, port, ...(o.tlsCert && o.tlsKey ? { tls: { cert: o.tlsCert, key: o.tlsKey } } : {}) });
      info(`license center ${running.center.centerId} listening on ${running.url}`);
      await new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          info(`${sig}: finishing in-flight requests and closing the ledger`);
          running.close().then(resolve, resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
}
