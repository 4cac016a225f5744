/**
 * Lists SCSI devices without opening them for I/O: no root or Administrator needed.
 * Linux: from sysfs, each entry a SCSI generic node with its identity and its block node, if any.
 * Windows: from the addon (native/list_windows.cc): SetupDi CD-ROM and disk interfaces (\\.\CdRomN,
 * \\.\PhysicalDriveN; an MO drive is a disk of peripheral type 7) and the LUNs of the \\.\ScsiN: adapters
 * that no class driver claimed (listed with the adapter's path).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { loadNativeBinding, type NativeBinding } from './native-binding.js';
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
  /** Windows: where the entry came from, and whether a class driver owns the LUN. */
  source?: 'sysfs' | 'setupdi' | 'scsi-port';
  claimed?: boolean;
  /** Windows: the SetupDi interface path, and the drive's serial number as the driver reports it. */
  interfacePath?: string;
  serial?: string;
}

/** The Windows listing, from the addon. Throws AddonMissingError when the addon is not there. */
export function listDevicesWindows(binding: NativeBinding = loadNativeBinding()): ListedDevice[] {
  if (typeof binding.listDevices !== 'function') return [];
  return binding.listDevices().devices.map((d) => ({
    sg: d.path,
    ...(d.hctl ? { hctl: d.hctl } : {}),
    peripheralType: d.peripheralType,
    typeName: peripheralTypeName(d.peripheralType),
    vendor: d.vendor,
    product: d.product,
    revision: d.revision,
    removable: d.removable,
    source: d.source,
    claimed: d.claimed,
    ...(d.interfacePath ? { interfacePath: d.interfacePath } : {}),
    ...(d.serial ? { serial: d.serial } : {}),
  }));
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
  if (process.platform === 'win32' && sysRoot === '/sys') return listDevicesWindows();
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
