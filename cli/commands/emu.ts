/** `mocopy emu create-mo`: blank MO images for the emulator; `mocopy emu serve --iscsi`: emulated drives as an iSCSI target. */
import type { Command } from 'commander';
import { readFileSync, statSync } from 'node:fs';
import { createMoImage, parseSize, serveEmulatedDrives, UsageError } from '../../lib/index.js';
import { info, isLoopbackHost, jsonOption, out, parseHex, parseListen, printJson } from '../common.js';

export function register(program: Command): void {
  const emu = program.command('emu').description('emulated drives and their media');
  emu.command('create-mo')
    .argument('<file>', 'image file to create')
    .requiredOption('--medium-id <hex>', "the disc's factory medium ID (1-64 bytes, hex)")
    .requiredOption('--capacity <size>', 'user capacity, e.g. 640M, 1.3G')
    .option('--block-size <n>', '512 or 2048', '2048')
    .option('--write-protect', 'set the write-protect tab')
    .option('--force', 'replace an existing file')
    .option('--count <n>', 'create N discs FILE-1 … FILE-N (extension kept), medium IDs HEX+1 … HEX+N', '1')
    .addOption(jsonOption())
    .description('create a blank MO disc image (4096-byte header + user data area; docs/emulator.md)')
    .action((file: string, o: { mediumId: string; capacity: string; blockSize: string; writeProtect?: boolean; force?: boolean; count: string; json?: boolean }) => {
      const bs = Number(o.blockSize);
      if (bs !== 512 && bs !== 2048) throw new UsageError('--block-size must be 512 or 2048');
      const capacityBytes = parseSize(o.capacity);
      if (capacityBytes < 1 << 20) throw new UsageError('--capacity must be at least 1M');
      const count = Number(o.count);
      if (!Number.isInteger(count) || count < 1 || count > 256) throw new UsageError('--count must be 1 to 256');
      if (count > 1) {
        const base = parseHex(o.mediumId, '--medium-id');
        const made = Array.from({ length: count }, (_, i) => {
          const id = Buffer.from(base);
          id.writeUIntBE((id.readUIntBE(Math.max(0, id.length - 4), Math.min(4, id.length)) + i + 1) % 2 ** (8 * Math.min(4, id.length)), Math.max(0, id.length - 4), Math.min(4, id.length));
          const name = file.replace(/(\.[^./\\]+)?$/, `-${i + 1}$1`);
          const h = createMoImage(name, { mediumId: id, capacityBytes, blockSize: bs, writeProtected: !!o.writeProtect, overwrite: !!o.force });
          return { file: name, mediumId: h.mediumId.toString('hex') };
        });
        if (o.json) printJson(made);
        else for (const m of made) out(`created ${m.file}: medium ID ${m.mediumId}`);
        return;
      }
      const h = createMoImage(file, { mediumId: parseHex(o.mediumId, '--medium-id'), capacityBytes, blockSize: bs, writeProtected: !!o.writeProtect, overwrite: !!o.force });
      const res = { file, mediumId: h.mediumId.toString('hex'), blockSize: h.blockSize, blocks: h.blockCount, capacityBytes: h.blockCount * h.blockSize, writeProtected: h.writeProtected };
      if (o.json) printJson(res);
      else out(`created ${file}: ${res.blocks} blocks of ${res.blockSize} bytes, medium ID ${res.mediumId}${res.writeProtected ? ', write-protected' : ''}`);
    });

  const collect = (v: string, prev: string[] = []) => [...prev, v];
  emu.command('serve')
    .requiredOption('--iscsi', 'serve the drives as an iSCSI target (the only transport offered)')
    .option('--listen <host:port>', 'portal address', '127.0.0.1:3260')
    .option('--iqn <name>', 'target IQN', 'iqn.2026-11.org.mocopy:emu')
    .option('--mo <image>', 'an MO image (repeat; LUN 0, 1, … in order; device-spec options such as ?fault= allowed)', collect, [])
    .option('--cd <image>', 'a CD image (repeat; LUNs after the MO drives)', collect, [])
    .option('--chap-user <name>', 'require CHAP with this user name')
    .option('--chap-secret-file <file>', 'the CHAP secret (a file readable only by its owner; 12-16 bytes recommended)')
    .option('--allow-remote', 'allow a non-loopback listen address')
    .option('--power-on', 'the drives were just switched on: each initiator\'s first command to each LUN gets the unit attention POWER ON OCCURRED (29/00), as after a real power cut')
    .addOption(jsonOption())
    .description('serve emulated MO and CD-ROM drives to real initiators over iSCSI (docs/iscsi.md)')
    .action(async (o: { listen: string; iqn: string; mo: string[]; cd: string[]; chapUser?: string; chapSecretFile?: string; allowRemote?: boolean; powerOn?: boolean; json?: boolean }) => {
      const { host, port } = parseListen(o.listen, 3260);
      if (!isLoopbackHost(host) && !o.allowRemote) throw new UsageError(`--listen ${o.listen} is not a loopback address`, 'add --allow-remote to serve other machines (and set up CHAP)');
      if (!!o.chapUser !== !!o.chapSecretFile) throw new UsageError('--chap-user and --chap-secret-file go together');
      let chap: { user: string; secret: Buffer } | undefined;
      if (o.chapUser && o.chapSecretFile) {
        if (process.platform !== 'win32' && (statSync(o.chapSecretFile).mode & 0o077) !== 0) throw new UsageError(`${o.chapSecretFile} is readable by others`, 'chmod 600 it');
        const secret = Buffer.from(readFileSync(o.chapSecretFile, 'utf8').trim(), 'utf8');
        if (secret.length < 12) throw new UsageError('the CHAP secret must be at least 12 bytes (RFC 7143 §12.1.3)');
        chap = { user: o.chapUser, secret };
      }
      if (!isLoopbackHost(host) && !chap) info('mocopy: warning: serving beyond loopback without CHAP: anyone who reaches this port can read and write the images');
      const log = o.json ? (e: Record<string, unknown>) => process.stdout.write(JSON.stringify({ t: new Date().toISOString(), ...e }) + '\n') : undefined;
      const served = await serveEmulatedDrives({ mo: o.mo, cd: o.cd, iqn: o.iqn, host, port, ...(chap ? { chap } : {}), ...(log ? { log } : {}), ...(o.powerOn ? { powerOnAttention: true } : {}) });
      if (o.json) process.stdout.write(JSON.stringify({ event: 'ready', portal: served.portal, iqn: o.iqn, luns: served.luns, chap: !!chap }) + '\n');
      else {
        out(`mocopy: iSCSI target ${o.iqn} ready on ${served.portal}${chap ? ' (CHAP)' : ''}`);
        for (const l of served.luns) out(`  LUN ${l.lun}: ${l.kind === 'mo' ? 'MO ' : 'CD '} ${l.spec}${l.mediumId ? ` (medium ID ${l.mediumId})` : ''}   iscsi://${served.portal}/${o.iqn}/${l.lun}`);
      }
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await served.close();
      if (o.json) process.stdout.write(JSON.stringify({ event: 'stopped' }) + '\n');
      else out('mocopy: iSCSI target stopped; images flushed');
    });
}
