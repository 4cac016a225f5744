/** `mocopy devices | info | medium-id | raw | probe-id`: the SCSI layer for the lab. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { cdbHex, type DataDirection, ExitCode, formatSense, hostStatusName, listDevices, opcodeName, parseSense, peripheralTypeName, probeMediumId, statusName, UsageError } from '../../lib/index.js';
import { hexDump, jsonOption, out, parseHex, parseIntOption, printJson, openDrive, queueMode } from '../common.js';

export function register(program: Command): void {
  program.command('devices')
    .description('list the SCSI drives this machine sees (Linux sysfs; no root needed)')
    .addOption(jsonOption())
    .action((o: { json?: boolean }) => {
      const list = listDevices();
      if (o.json) return printJson({ devices: list });
      if (list.length === 0) return out('no SCSI generic devices found (is the sg module loaded? `modprobe sg`)');
      for (const d of list) out(`${d.sg.padEnd(10)} ${(d.block ?? '-').padEnd(10)} ${d.typeName.padEnd(28)} ${d.vendor} ${d.product} ${d.revision}`);
    });

  program.command('info')
    .argument('<device>', 'device spec: emu:IMAGE, /dev/sgN, \\\\.\\CdRom0, ...')
    .description('identity, type, capacity, block size, write protect, medium ID and max transfer of a drive')
    .addOption(jsonOption())
    .action(async (spec: string, o: { json?: boolean }) => {
      const dev = await openDrive(spec, { write: false });
      try {
        const inq = await dev.inquiry();
        const serial = await dev.unitSerial().catch(() => undefined);
        const result: Record<string, unknown> = {
          device: spec, vendor: inq.vendor, product: inq.product, revision: inq.revision, peripheralType: inq.peripheralType,
          type: peripheralTypeName(inq.peripheralType), removable: inq.removable, unitSerial: serial ?? null,
          maxTransferBytes: dev.transport.limits.maxTransferBytes, ...queueMode(dev),
        };
        try {
          const cap = await dev.capacity();
          Object.assign(result, { blockSize: cap.blockSize, blocks: cap.blockCount, capacityBytes: cap.bytes, writeProtected: await dev.isWriteProtected() });
        } catch (e) {
          result.medium = (e as Error).message;
        }
        try {
          const id = await dev.mediumId();
          Object.assign(result, { mediumId: id.id.toString('hex'), mediumIdMethod: id.method, mediumIdStandIn: id.standIn });
        } catch (e) {
          result.mediumId = null;
          result.mediumIdError = (e as Error).message;
        }
        if (o.json) return printJson(result);
        for (const [k, v] of Object.entries(result)) out(`${k.padEnd(18)} ${v === null ? '-' : String(v)}`);
      } finally {
        await dev.close();
      }
    });

  program.command('medium-id')
    .argument('<device>', 'device spec')
    .description("print the disc's medium ID (the non-rewritable medium-ID zone) in hex")
    .addOption(jsonOption())
    .action(async (spec: string, o: { json?: boolean }) => {
      const dev = await openDrive(spec, { write: false });
      try {
        const id = await dev.mediumId();
        if (o.json) return printJson({ device: spec, mediumId: id.id.toString('hex'), method: id.method, standIn: id.standIn });
        out(id.id.toString('hex'));
        if (id.standIn) process.stderr.write(`warning: ${id.method}\n`);
      } finally {
        await dev.close();
      }
    });

  program.command('raw')
    .argument('<device>', 'device spec')
    .argument('<cdb-hex>', 'the CDB as hex bytes, e.g. "12 00 00 00 60 00"')
    .option('--in <n>', 'read N bytes from the device and print them as hex')
    .option('--out <file>', "send FILE's bytes to the device")
    .option('--timeout <ms>', 'command timeout in milliseconds', '20000')
    .description('send one CDB (an sg_raw for the lab): prints status and decoded sense; exits 4 on CHECK CONDITION')
    .addOption(jsonOption())
    .action(async (spec: string, hex: string, o: { in?: string; out?: string; timeout: string; json?: boolean }) => {
      const cdbBytes = parseHex(hex, 'the CDB');
      if (cdbBytes.length > 16) throw new UsageError('a CDB is at most 16 bytes');
      if (o.in && o.out) throw new UsageError('give --in or --out, not both');
      let direction: DataDirection = 'none';
      let data: Buffer | undefined;
      if (o.in) { direction = 'in'; data = Buffer.alloc(parseIntOption(o.in, '--in', 1, 16 << 20)); }
      if (o.out) { direction = 'out'; data = readFileSync(o.out); if (data.length === 0) throw new UsageError(`${o.out} is empty`); }
      const timeout = parseIntOption(o.timeout, '--timeout', 1, 3_600_000);
      const dev = await openDrive(spec, { write: true });
      try {
        const r = await dev.raw(cdbBytes, direction, data, timeout);
        const sense = parseSense(r.sense);
        const res = {
          device: spec, command: opcodeName(cdbBytes), cdb: cdbHex(cdbBytes), status: r.status, statusName: statusName(r.status),
          hostStatus: r.hostStatus, hostStatusName: hostStatusName(r.hostStatus), driverStatus: r.driverStatus, residual: r.residual, durationUs: r.durationUs,
          sense: r.sense.toString('hex'), senseText: sense ? formatSense(sense) : null, data: r.data ? r.data.toString('hex') : null,
        };
        if (o.json) printJson(res);
        else {
          out(`${res.command} [${res.cdb}] -> ${res.statusName}${r.hostStatus ? `, ${res.hostStatusName}` : ''}, residual ${r.residual}, ${r.durationUs} us`);
          if (res.senseText) out(`sense: ${res.senseText}\n${hexDump(r.sense)}`);
          if (r.data && r.data.length) out(hexDump(r.data));
        }
        if (r.hostStatus !== 0) process.exitCode = ExitCode.DEVICE;
        else if (r.status !== 0) process.exitCode = ExitCode.SCSI_CHECK;
      } finally {
        await dev.close();
      }
    });

  program.command('probe-id')
    .argument('<device>', 'device spec')
    .description('try every known way of reading the medium ID and print a quirk entry ready to paste')
    .addOption(jsonOption())
    .action(async (spec: string, o: { json?: boolean }) => {
      const dev = await openDrive(spec, { write: false });
      try {
        const report = await probeMediumId(dev, await dev.inquiry());
        if (o.json) return printJson(report);
        out(`${spec}: ${report.inquiry.vendor} ${report.inquiry.product} ${report.inquiry.revision}`);
        for (const a of report.attempts) out(`  ${a.ok ? 'ok  ' : 'fail'} ${a.method}: ${a.answer}`);
        if (report.quirk) out(`\nquirk entry (add to your quirks file, see docs/medium-id.md):\n${JSON.stringify(report.quirk, null, 2)}`);
        else out('\nno method gave a medium ID: this drive needs a vendor-specific method (see docs/medium-id.md)');
      } finally {
        await dev.close();
      }
    });
}
