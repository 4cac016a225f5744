/** `mocopy center ...`: the license center's ledger and service. */
import type { Command } from 'commander';
import { createConsoleLazily, DEFAULT_PORT, exportLedger, importLedger, Ledger, LicenseCenter, parseLogFormat, parseLogLevel, serveCenter, UsageError, validateContentId, writeStationKey } from '../../lib/index.js';
import { jsonOption, info, out, parseListen, printJson } from '../common.js';
import { parseSchemes } from './master.js';
import { registerOperator } from './operator.js';
import { DB_HELP, ledgerSpec, withCenter, withLedger } from '../ledger-options.js';


export function register(program: Command): void {
  const center = program.command('center').description('the license center: ledger, stations, contents, service');
  registerOperator(center);
  const station = center.command('station').description('copying stations registered with the center');
  station.command('add')
    .argument('<name>', 'a name for the station (shop, place)')
    .option('--db <ledger>', `${DB_HELP}; a SQLite file is created if missing`)
    .requiredOption('--key-out <file>', 'where to write the station key file (written once, mode 0600)')
    .addOption(jsonOption())
    .description('register a station and write its key file')
    .action(async (name: string, o: { db?: string; keyOut: string; json?: boolean }) => {
      const key = await withCenter(o, async (c) => {
        const k = await c.addStation(name);
        try {
          writeStationKey(o.keyOut, k);
        } catch (e) {
          await c.revokeStation(k.stationId); // no key file: the station could never be used
          throw e;
        }
        return k;
      });
      if (o.json) printJson({ stationId: key.stationId, centerId: key.centerId, keyFile: o.keyOut });
      else out(`station ${key.stationId} registered with ${key.centerId}; key written to ${o.keyOut} (keep it private)`);
    });
  station.command('revoke')
    .argument('<station-id>', 'the station to revoke')
    .option('--db <ledger>', DB_HELP)
    .description('revoke a station: it gets no more licenses')
    .action(async (id: string, o: { db?: string }) => {
      await withCenter(o, (c) => c.revokeStation(id), { create: false });
      out(`station ${id} revoked`);
    });
  station.command('list')
    .option('--db <ledger>', DB_HELP)
    .addOption(jsonOption())
    .description('list stations')
    .action(async (o: { db?: string; json?: boolean }) => {
      const rows = await withLedger(o, (l) => l.stations());
      if (o.json) return printJson({ stations: rows });
      for (const r of rows) out(`${r.id.padEnd(12)} ${r.status.padEnd(8)} ${r.name}`);
    });
  center.command('content')
    .description('contents the center licenses')
    .command('add')
    .argument('<content-id>', 'content ID')
    .option('--db <ledger>', DB_HELP)
    .requiredOption('--name <name>', 'program name')
    .option('--schemes <list>', 'a, b or a,b', 'a,b')
    .option('--price <cents>', 'price per licensed copy in cents', '0')
    .description('register a content (mocopy master build does this for the contents it writes)')
    .action(async (id: string, o: { db?: string; name: string; schemes: string; price: string }) => {
      validateContentId(id);
      const price = Number(o.price);
      if (!Number.isInteger(price) || price < 0) throw new UsageError('--price must be a non-negative integer (cents)');
      await withCenter(o, (c) => c.registerContent({ contentId: id, name: o.name, schemes: parseSchemes(o.schemes), price }));
      out(`content ${id} registered`);
    });
  center.command('report')
    .option('--db <ledger>', DB_HELP)
    .addOption(jsonOption())
    .description('licenses issued and billing rows')
    .action(async (o: { db?: string; json?: boolean }) => {
      const r = await withLedger(o, (l) => l.report());
      if (o.json) return printJson(r);
      out(`${r.licenses.length} license(s), ${r.billing.length} billing row(s)`);
      for (const x of r.licenses) out(`  ${x.issuedAt}  ${x.stationId.padEnd(12)} ${x.contentId.padEnd(16)} scheme ${x.scheme.toUpperCase()} medium ${x.mediumId}`);
    });
  center.command('migrate')
    .option('--db <ledger>', DB_HELP)
    .addOption(jsonOption())
    .description('create or upgrade the ledger\'s schema (run once before serving a new PostgreSQL ledger, and after upgrading mocopy)')
    .action(async (o: { db?: string; json?: boolean }) => {
      const r = await Ledger.migrate(ledgerSpec(o));
      if (o.json) return printJson(r);
      out(r.from === r.to ? `ledger schema is at version ${r.to}: nothing to do` : `ledger schema migrated from version ${r.from} to ${r.to}`);
    });
  center.command('export')
    .option('--db <ledger>', DB_HELP)
    .requiredOption('--out <file>', 'where to write the export (JSON, mode 0600: it holds the center\'s secrets and station keys)')
    .addOption(jsonOption())
    .description('write every row of the ledger to a file (to move a ledger, e.g. from SQLite to PostgreSQL)')
    .action(async (o: { db?: string; out: string; json?: boolean }) => {
      const counts = await exportLedger(ledgerSpec(o), o.out);
      if (o.json) return printJson({ file: o.out, ...counts });
      out(`exported ${counts.stations} station(s), ${counts.contents} content(s), ${counts.licenses} license(s), ${counts.billing} bill(s), ${counts.operators} operator(s), ${counts.auditLog} audit row(s) to ${o.out}`);
    });
  center.command('import')
    .option('--db <ledger>', DB_HELP)
    .requiredOption('--in <file>', 'a file written by `mocopy center export`')
    .addOption(jsonOption())
    .description('load an export into a new, empty ledger (migrated first), then check every row arrived')
    .action(async (o: { db?: string; in: string; json?: boolean }) => {
      const counts = await importLedger(ledgerSpec(o), o.in);
      if (o.json) return printJson(counts);
      out(`imported ${counts.stations} station(s), ${counts.contents} content(s), ${counts.licenses} license(s), ${counts.billing} bill(s), ${counts.operators} operator(s), ${counts.auditLog} audit row(s); read back and compared: identical`);
    });
  center.command('serve')
    .option('--db <ledger>', DB_HELP)
    .option('--listen <host:port>', `address to listen on (default 127.0.0.1:${DEFAULT_PORT})`, `127.0.0.1:${DEFAULT_PORT}`)
    .option('--tls-cert <file>', 'TLS certificate (PEM): serve HTTPS')
    .option('--tls-key <file>', 'TLS private key (PEM)')
    .option('--metrics-listen <host:port>', 'serve /metrics on this address instead of the service port (recommended)')
    .option('--log-format <json|text>', 'log lines as JSON or text (default: json unless stdout is a terminal)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', 'info')
    .option('--drain-ms <ms>', 'on SIGTERM, keep serving this long while load balancers see /v1/ready fail', '5000')
    .option('--drain-timeout <ms>', 'on SIGTERM, stop hard (exit 1) if in-flight requests are not answered by then', '30000')
    .option('--no-console', 'do not serve the operators\' web console under /console/ (docs/console.md)')
    .description('run the license center service (JSON over HTTP, /v1/...; docs/operations.md)')
    .action(async (o: { db?: string; listen: string; tlsCert?: string; tlsKey?: string; metricsListen?: string; logFormat?: string; logLevel?: string; drainMs: string; drainTimeout: string; console: boolean }) => {
      if (!!o.tlsCert !== !!o.tlsKey) throw new UsageError('--tls-cert and --tls-key go together');
      const { host, port } = parseListen(o.listen, DEFAULT_PORT);
      const ms = (v: string, flag: string) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0 || n > 3_600_000) throw new UsageError(`${flag} must be a whole number of milliseconds (0 to 3600000)`);
        return n;
      };
      const drainMs = ms(o.drainMs, '--drain-ms');
      const drainTimeout = ms(o.drainTimeout, '--drain-timeout');
      const logFormat = parseLogFormat(o.logFormat);
      const logLevel = parseLogLevel(o.logLevel);
      const running = await serveCenter({
        db: ledgerSpec(o), host, port,
        ...(o.tlsCert && o.tlsKey ? { tls: { cert: o.tlsCert, key: o.tlsKey } } : {}),
        ...(o.metricsListen ? { metricsListen: parseListen(o.metricsListen, 9464) } : {}),
        ...(logFormat ? { logFormat } : {}), ...(logLevel ? { logLevel } : {}),
        ...(o.console ? { console: (c: LicenseCenter) => createConsoleLazily(c) } : {}),
      });
      info(`license center ${running.center.centerId} listening on ${running.url} (ledger ${running.center.ledger.name}; metrics ${running.metricsUrl}/metrics${o.console ? `; console ${running.url}/console/` : ''})`);
      await new Promise<void>((resolve) => {
        let stopping = false;
        // A second signal, or in-flight requests outlasting --drain-timeout: cut the connections and exit 1.
        const hard = () => {
          process.exitCode = 1;
          running.close({ force: true }).finally(resolve);
        };
        const stop = (sig: string) => {
          if (stopping) return hard();
          stopping = true;
          // Ctrl-C at a terminal stops without the load-balancer wait; SIGTERM drains.
          const wait = sig === 'SIGINT' ? 0 : drainMs;
          info(`${sig}: not ready now; serving ${wait} ms more, then finishing in-flight requests (a second ${sig} stops at once)`);
          const t = setTimeout(hard, wait + drainTimeout);
          t.unref();
          running.drain(wait).then(() => { clearTimeout(t); resolve(); }, hard);
        };
        process.on('SIGTERM', () => stop('SIGTERM'));
        process.on('SIGINT', () => stop('SIGINT'));
      });
    });
}
