/**
 * Emulated drives served over iSCSI: opens each image as an emulated drive (device-spec options such as
 * `?fault=` and `?speed=` apply) and puts them behind one target, MO images first (LUN 0, 1, …), then CD
 * images. Closing stops the target, then closes every drive (which writes its cache back to the image).
 */
import { UsageError } from '../errors.js';
import { openEmulator, type EmulatedDrive } from '../emulator/index.js';
import { IscsiTarget, MAX_TASK_BYTES, type IscsiTargetConfig } from '../iscsi/index.js';

export interface ServedLun {
  lun: number;
  kind: 'mo' | 'cd';
  spec: string;
  mediumId?: string;
}

export interface ServedDrives {
  target: IscsiTarget;
  drives: EmulatedDrive[];
  luns: ServedLun[];
  portal: string;
  close(): Promise<void>;
}

export async function serveEmulatedDrives(o: {
  mo?: string[]; cd?: string[]; iqn: string; host?: string; port?: number;
  chap?: IscsiTargetConfig['chap']; log?: IscsiTargetConfig['log']; options?: IscsiTargetConfig['options'];
  powerOnAttention?: boolean;
}): Promise<ServedDrives> {
  const wanted = [...(o.mo ?? []).map((p) => ({ kind: 'mo' as const, spec: `emu-mo:${p}` })), ...(o.cd ?? []).map((p) => ({ kind: 'cd' as const, spec: `emu-cd:${p}` }))];
  if (wanted.length === 0) throw new UsageError('nothing to serve: give --mo IMAGE and/or --cd IMAGE');
  const drives: EmulatedDrive[] = [];
  try {
    for (const w of wanted) drives.push(await openEmulator(w.spec, { maxTransferBytes: MAX_TASK_BYTES }));
    const target = await IscsiTarget.listen({
      iqn: o.iqn, host: o.host ?? '127.0.0.1', port: o.port ?? 3260,
      luns: drives.map((d, lun) => ({ lun, transport: d, blockSize: () => d.mediumInfo?.blockSize })),
      ...(o.chap ? { chap: o.chap } : {}), ...(o.log ? { log: o.log } : {}), ...(o.options ? { options: o.options } : {}),
      ...(o.powerOnAttention ? { powerOnAttention: true } : {}),
    });
    const luns = wanted.map((w, lun) => ({ lun, kind: w.kind, spec: w.spec, ...(drives[lun]!.mediumInfo?.mediumId ? { mediumId: drives[lun]!.mediumInfo!.mediumId!.toString('hex') } : {}) }));
    const a = target.address;
    return {
      target, drives, luns, portal: `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
      async close() {
        await target.close();
        for (const d of drives) await d.close();
      },
    };
  } catch (e) {
    for (const d of drives) await d.close().catch(() => undefined);
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new UsageError(`the address ${o.host ?? '127.0.0.1'}:${o.port ?? 3260} is in use`, 'choose another port with --listen HOST:PORT');
    if (e instanceof TypeError) throw new UsageError(e.message);
    throw e;
  }
}
