/**
 * Lists SCSI devices from sysfs (Linux), without opening them: no root needed.
 * Each entry is a SCSI generic node with its identity and its block node, if any.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { peripheralTypeName } from './parse.js';

export interface ListedDevice {
  /** The SCSI generic node: the one to use for pass-through. */
  sg: string;
  /** Block node (/dev/sdX, /dev/srN), when the kernel bound one. */
  block?: string;
  hctl?: string;
  peripheralType: number;
  typeName: string;
  vendor: string;
  product: string;
  revision: string;
  removable?: boolean;
}

function readTrim(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

// sysfs and /dev paths are POSIX whatever the host (a test may point sysRoot at a copied tree on Windows).
const { join } = posix;

export function listDevices(sysRoot = '/sys', devRoot = '/dev'): ListedDevice[] {
  const classDir = join(sysRoot, 'class', 'scsi_generic');
  if (process.platform !== 'linux' && sysRoot === '/sys') return [];
  if (!existsSync(classDir)) return [];
  const out: ListedDevice[] = [];
  for (const name of readdirSync(classDir).sort((a, b) => Number(a.replace(/\D/g, '')) - Number(b.replace(/\D/g, '')))) {
    const dev = join(classDir, name, 'device');
    const type = Number(readTrim(join(dev, 'type')) ?? '31');
    let block: string | undefined;
    const blockDir = join(dev, 'block');
    if (existsSync(blockDir)) {
      const b = readdirSync(blockDir)[0];
      if (b) block = join(devRoot, b);
    }
    let removable: boolean | undefined;
    if (block) {
      const r = readTrim(join(blockDir, block.split('/').pop()!, 'removable'));
      if (r !== undefined) removable = r === '1';
    }
    let hctl: string | undefined;
    const sd = existsSync(join(dev, 'scsi_device')) ? readdirSync(join(dev, 'scsi_device'))[0] : undefined;
    if (sd) hctl = sd;
    out.push({
      sg: join(devRoot, name), ...(block ? { block } : {}), ...(hctl ? { hctl } : {}),
      peripheralType: type, typeName: peripheralTypeName(type),
      vendor: readTrim(join(dev, 'vendor')) ?? '', product: readTrim(join(dev, 'model')) ?? '', revision: readTrim(join(dev, 'rev')) ?? '',
      ...(removable !== undefined ? { removable } : {}),
    });
  }
  return out;
}
