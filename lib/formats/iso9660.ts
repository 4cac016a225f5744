/**
 * ISO 9660 (ECMA-119), as much as a master needs: a writer that lays out a small volume
 * (Primary Volume Descriptor, path tables, directories, files streamed into their extents)
 * and a reader that parses a volume from 2048-byte sectors through a callback — the copying
 * station reads the master only through SCSI READ on the CD-ROM drive, never by mounting it.
 * The reader ignores Joliet/Rock Ridge/SUSP extensions, so it reads volumes made by xorriso too.
 */
import { FormatError } from '../errors.js';

export const SECTOR = 2048;
const SYSTEM_AREA_SECTORS = 16;

// ---------------------------------------------------------------------------- both-endian helpers
function both32(b: Buffer, off: number, v: number): void {
  b.writeUInt32LE(v, off);
  b.writeUInt32BE(v, off + 4);
}
function both16(b: Buffer, off: number, v: number): void {
  b.writeUInt16LE(v, off);
  b.writeUInt16BE(v, off + 2);
}
function recDate(d: Date): Buffer {
  return Buffer.from([d.getUTCFullYear() - 1900, d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), 0]);
}
function volDate(d: Date | undefined): Buffer {
  const b = Buffer.alloc(17, 0x30);
  b[16] = 0;
  if (!d) return b;
  const p = (n: number, w: number) => String(n).padStart(w, '0');
  b.write(`${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1, 2)}${p(d.getUTCDate(), 2)}${p(d.getUTCHours(), 2)}${p(d.getUTCMinutes(), 2)}${p(d.getUTCSeconds(), 2)}00`, 0, 'latin1');
  return b;
}
function padText(b: Buffer, off: number, len: number, text: string): void {
  b.write(text.padEnd(len, ' ').slice(0, len), off, 'latin1');
}

/** ISO 9660 level-1 style names: 8.3, uppercase d-characters. */
export function isValidIsoName(name: string, dir: boolean): boolean {
  return dir ? /^[A-Z0-9_]{1,8}$/.test(name) : /^[A-Z0-9_]{1,8}\.[A-Z0-9_]{0,3}$/.test(name);
}

// ---------------------------------------------------------------------------- writer
export interface IsoFileSpec {
  /** Absolute path in the volume, e.g. '/PROGRAMS/P0001.ENC'. */
  path: string;
  size: number;
}

export interface IsoLayoutFile extends IsoFileSpec {
  lba: number;
}

export interface IsoLayout {
  /** Sectors holding descriptors, path tables and directories, with their bytes. */
  metadata: Array<{ lba: number; bytes: Buffer }>;
  files: IsoLayoutFile[];
  totalSectors: number;
}

interface DirNode {
  name: string;
  parent: DirNode | undefined;
  dirs: DirNode[];
  files: Array<IsoFileSpec & { name: string; lba?: number }>;
  lba: number;
  sectors: number;
  number: number;
}

function dirRecord(name: Buffer, lba: number, size: number, isDir: boolean, date: Date): Buffer {
  const len = 33 + name.length + (name.length % 2 === 0 ? 1 : 0);
  const r = Buffer.alloc(len);
  r[0] = len;
  both32(r, 2, lba);
  both32(r, 10, size);
  recDate(date).copy(r, 18);
  r[25] = isDir ? 0x02 : 0x00;
  both16(r, 28, 1);
  r[32] = name.length;
  name.copy(r, 33);
  return r;
}

/** Packs records into sectors: a record never crosses a sector boundary. */
export function packRecords(records: Buffer[]): Buffer[] {
  const sectors: Buffer[] = [];
  let cur = Buffer.alloc(SECTOR);
  let off = 0;
  for (const r of records) {
    if (off + r.length > SECTOR) {
      sectors.push(cur);
      cur = Buffer.alloc(SECTOR);
      off = 0;
    }
    r.copy(cur, off);
    off += r.length;
  }
  sectors.push(cur);
  return sectors;
}

/**
 * Lays out a volume for the given files. Directories are created from the paths.
 * The caller then writes `metadata` sectors and each file's bytes at `lba * 2048`.
 */
export function layoutIso(files: IsoFileSpec[], opts: { volumeId: string; publisher?: string; application?: string; date?: Date }): IsoLayout {
  const date = opts.date ?? new Date();
  const root: DirNode = { name: '', parent: undefined, dirs: [], files: [], lba: 0, sectors: 1, number: 1 };
  for (const f of files) {
    const parts = f.path.split('/').filter(Boolean);
    if (parts.length === 0) throw new FormatError(`bad ISO path "${f.path}"`);
    let dir = root;
    for (const d of parts.slice(0, -1)) {
      if (!isValidIsoName(d, true)) throw new FormatError(`directory name "${d}" is not an ISO 9660 name (A-Z 0-9 _, up to 8)`);
      let next = dir.dirs.find((x) => x.name === d);
      if (!next) {
        next = { name: d, parent: dir, dirs: [], files: [], lba: 0, sectors: 1, number: 0 };
        dir.dirs.push(next);
      }
      dir = next;
    }
    const name = parts[parts.length - 1]!;
    if (!isValidIsoName(name, false)) throw new FormatError(`file name "${name}" is not an ISO 9660 8.3 name`);
    if (dir.files.some((x) => x.name === name)) throw new FormatError(`duplicate file "${f.path}"`);
    dir.files.push({ ...f, name });
  }
  // Breadth-first order: path table order (ECMA-119 6.9.1).
  const order: DirNode[] = [];
  const queue = [root];
  while (queue.length) {
    const d = queue.shift()!;
    d.dirs.sort((a, b) => (a.name < b.name ? -1 : 1));
    d.files.sort((a, b) => (a.name < b.name ? -1 : 1));
    order.push(d);
    queue.push(...d.dirs);
  }
  order.forEach((d, i) => (d.number = i + 1));
  // Path table (L and M), one size.
  const ptEntry = (d: DirNode, le: boolean) => {
    const name = d === root ? Buffer.from([0]) : Buffer.from(d.name, 'latin1');
    const e = Buffer.alloc(8 + name.length + (name.length % 2));
    e[0] = name.length;
    if (le) { e.writeUInt32LE(d.lba, 2); e.writeUInt16LE(d.parent?.number ?? 1, 6); }
    else { e.writeUInt32BE(d.lba, 2); e.writeUInt16BE(d.parent?.number ?? 1, 6); }
    name.copy(e, 8);
    return e;
  };
  const ptSize = order.reduce((n, d) => n + ptEntry(d, true).length, 0);
  const ptSectors = Math.ceil(ptSize / SECTOR);
  // Directory sizes: records for '.', '..', subdirs and files.
  const dirRecordsLen = (d: DirNode) => packRecords([
    dirRecord(Buffer.from([0]), 0, 0, true, date), dirRecord(Buffer.from([1]), 0, 0, true, date),
    ...d.dirs.map((s) => dirRecord(Buffer.from(s.name, 'latin1'), 0, 0, true, date)),
    ...d.files.map((f) => dirRecord(Buffer.from(`${f.name};1`, 'latin1'), 0, 0, false, date)),
  ]).length;
  let lba = SYSTEM_AREA_SECTORS + 2; // PVD, terminator
  const lPathLba = lba; lba += ptSectors;
  const mPathLba = lba; lba += ptSectors;
  for (const d of order) {
    d.sectors = dirRecordsLen(d);
    d.lba = lba;
    lba += d.sectors;
  }
  const laidOut: IsoLayoutFile[] = [];
  for (const d of order) {
    for (const f of d.files) {
      f.lba = lba;
      laidOut.push({ path: f.path, size: f.size, lba });
      lba += Math.max(1, Math.ceil(f.size / SECTOR));
    }
  }
  const total = lba;
  const metadata: Array<{ lba: number; bytes: Buffer }> = [];
  // Directories, now that every LBA is known.
  for (const d of order) {
    const self = dirRecord(Buffer.from([0]), d.lba, d.sectors * SECTOR, true, date);
    const parent = d.parent ?? d;
    const up = dirRecord(Buffer.from([1]), parent.lba, parent.sectors * SECTOR, true, date);
    const recs = [self, up,
      ...d.dirs.map((s) => dirRecord(Buffer.from(s.name, 'latin1'), s.lba, s.sectors * SECTOR, true, date)),
      ...d.files.map((f) => dirRecord(Buffer.from(`${f.name};1`, 'latin1'), f.lba!, f.size, false, date))];
    packRecords(recs).forEach((bytes, i) => metadata.push({ lba: d.lba + i, bytes }));
  }
  const lpt = Buffer.concat(order.map((d) => ptEntry(d, true)));
  const mpt = Buffer.concat(order.map((d) => ptEntry(d, false)));
  const sectorsOf = (b: Buffer) => { const out = Buffer.alloc(ptSectors * SECTOR); b.copy(out); return out; };
  const lptS = sectorsOf(lpt);
  const mptS = sectorsOf(mpt);
  for (let i = 0; i < ptSectors; i++) {
    metadata.push({ lba: lPathLba + i, bytes: lptS.subarray(i * SECTOR, (i + 1) * SECTOR) });
    metadata.push({ lba: mPathLba + i, bytes: mptS.subarray(i * SECTOR, (i + 1) * SECTOR) });
  }
  // Primary Volume Descriptor.
  const pvd = Buffer.alloc(SECTOR);
  pvd[0] = 1;
  pvd.write('CD001', 1, 'latin1');
  pvd[6] = 1;
  padText(pvd, 8, 32, '');
  padText(pvd, 40, 32, opts.volumeId.toUpperCase().replace(/[^A-Z0-9_]/g, '_'));
  both32(pvd, 80, total);
  both16(pvd, 120, 1);
  both16(pvd, 124, 1);
  both16(pvd, 128, SECTOR);
  both32(pvd, 132, ptSize);
  pvd.writeUInt32LE(lPathLba, 140);
  pvd.writeUInt32BE(mPathLba, 148);
  dirRecord(Buffer.from([0]), root.lba, root.sectors * SECTOR, true, date).copy(pvd, 156);
  padText(pvd, 190, 128, '');
  padText(pvd, 318, 128, (opts.publisher ?? '').toUpperCase());
  padText(pvd, 446, 128, '');
  padText(pvd, 574, 128, (opts.application ?? 'MOCOPY').toUpperCase());
  padText(pvd, 702, 37, '');
  padText(pvd, 739, 37, '');
  padText(pvd, 776, 37, '');
  volDate(date).copy(pvd, 813);
  volDate(date).copy(pvd, 830);
  volDate(undefined).copy(pvd, 847);
  volDate(undefined).copy(pvd, 864);
  pvd[881] = 1;
  metadata.push({ lba: SYSTEM_AREA_SECTORS, bytes: pvd });
  const term = Buffer.alloc(SECTOR);
  term[0] = 255;
  term.write('CD001', 1, 'latin1');
  term[6] = 1;
  metadata.push({ lba: SYSTEM_AREA_SECTORS + 1, bytes: term });
  return { metadata, files: laidOut, totalSectors: total };
}

// ---------------------------------------------------------------------------- reader
export type ReadSectors = (lba: number, count: number) => Promise<Buffer>;

export interface IsoEntry {
  name: string;
  isDir: boolean;
  /** Extents in order (more than one only for multi-extent files). */
  extents: Array<{ lba: number; size: number }>;
  size: number;
}

export interface IsoVolume {
  volumeId: string;
  totalSectors: number;
  root: IsoEntry;
}

// ---------------------------------------------------------------------------- reader limits
// A master comes from outside the station, so every structure the reader follows is bounded: a
// hostile image (issue 17: a catalog chained over 360,000 zero-length extents) must end in a
// FormatError after a bounded amount of reading and memory. docs/master.md lists these limits.

/** Bytes in one directory's extent. A master's /PROGRAMS with 9999 programs takes ~440 KiB. */
export const MAX_DIR_BYTES = 16 << 20;
/**
 * Directory records in one directory, '.' and '..' and every piece of a multi-extent file included.
 * A master's /PROGRAMS holds at most 9999 files plus '.' and '..'.
 */
export const MAX_DIR_RECORDS = 16_384;
/**
 * Extents of one (multi-extent) file, zero-length ones included. One extent holds up to 4 GiB − 1 byte,
 * so a file on any optical disc needs at most 3 (a CD or DVD file needs 1 or 2); 64 covers 256 GiB.
 */
export const MAX_EXTENTS_PER_FILE = 64;
/** Directory records read by one path lookup, over all the directories it walks (2 × MAX_DIR_RECORDS). */
export const MAX_LOOKUP_RECORDS = 32_768;
/** Directory bytes read by one path lookup, over all the directories it walks (2 × MAX_DIR_BYTES). */
export const MAX_LOOKUP_DIR_BYTES = 32 << 20;
/** Components of a path looked up (and so directories walked). A master's deepest file is at depth 2. */
export const MAX_DEPTH = 16;
/**
 * The path table size in the Primary Volume Descriptor. The reader walks directories rather than the
 * path table, but a volume claiming a larger one is not a master: a master's takes about 30 bytes, and
 * 1 MiB holds the entries of more than 25,000 directories with 30-character names.
 */
export const MAX_PATH_TABLE_BYTES = 1 << 20;
/** Sectors read per command while a directory is parsed, so a limit is met before the rest is read. */
const DIR_READ_SECTORS = 16;

/** A path lookup found no entry of that name (the volume itself may be sound). */
export class IsoNotFoundError extends FormatError {}

/** What one lookup may still read; readDirectory charges it and throws when it runs out. */
export interface LookupBudget {
  /** The path the lookup is for, named in the error. */
  path: string;
  records: number;
  bytes: number;
}

export function lookupBudget(path: string): LookupBudget {
  return { path, records: MAX_LOOKUP_RECORDS, bytes: MAX_LOOKUP_DIR_BYTES };
}

export async function readVolume(read: ReadSectors, totalSectors?: number): Promise<IsoVolume> {
  for (let lba = SYSTEM_AREA_SECTORS; lba < SYSTEM_AREA_SECTORS + 32; lba++) {
    if (totalSectors !== undefined && lba >= totalSectors) break;
    const s = await read(lba, 1);
    if (s.length < SECTOR) throw new FormatError(`ISO 9660: sector ${lba} is short`);
    if (s.toString('latin1', 1, 6) !== 'CD001') throw new FormatError(`ISO 9660: no volume descriptor at sector ${lba} (not an ISO 9660 volume)`);
    const type = s[0]!;
    if (type === 255) break;
    if (type !== 1) continue;
    const blockSize = s.readUInt16LE(128);
    if (blockSize !== SECTOR) throw new FormatError(`ISO 9660: logical block size ${blockSize} is not supported`);
    const total = s.readUInt32LE(80);
    const root = parseRecord(s.subarray(156, 190), 'root directory record');
    if (!root || !root.isDir) throw new FormatError('ISO 9660: bad root directory record');
    if (totalSectors !== undefined && total > totalSectors) throw new FormatError(`ISO 9660: volume claims ${total} sectors, the medium has ${totalSectors} (truncated image?)`);
    const pathTableBytes = s.readUInt32LE(132);
    if (pathTableBytes > MAX_PATH_TABLE_BYTES) {
      throw new FormatError(`ISO 9660: the volume descriptor claims a path table of ${pathTableBytes} bytes; the limit is ${MAX_PATH_TABLE_BYTES} (MAX_PATH_TABLE_BYTES)`);
    }
    const pathTableSectors = Math.ceil(pathTableBytes / SECTOR);
    for (const at of [s.readUInt32LE(140), s.readUInt32BE(148)]) {
      if (pathTableBytes > 0 && at + pathTableSectors > total) throw new FormatError(`ISO 9660: the path table lies past the end of the volume (sector ${at}, ${pathTableBytes} bytes, volume of ${total} sectors)`);
    }
    return { volumeId: s.toString('latin1', 40, 72).trim(), totalSectors: total, root };
  }
  throw new FormatError('ISO 9660: no Primary Volume Descriptor found');
}

function parseRecord(r: Buffer, where: string): IsoEntry | undefined {
  if (r.length < 34) throw new FormatError(`ISO 9660: ${where} is truncated`);
  const len = r[0]!;
  if (len < 34) return undefined;
  const nameLen = r[32]!;
  if (33 + nameLen > len) throw new FormatError(`ISO 9660: ${where}: name runs past the record`);
  const raw = r.subarray(33, 33 + nameLen);
  const name = nameLen === 1 && raw[0] === 0 ? '.' : nameLen === 1 && raw[0] === 1 ? '..' : raw.toString('latin1');
  const size = r.readUInt32LE(10);
  return { name, isDir: !!(r[25]! & 0x02), extents: [{ lba: r.readUInt32LE(2), size }], size };
}

/** '/', '/PROGRAMS', 'PROGRAMS/P0001.ENC': how errors name a directory and a file in it. */
function joinIsoPath(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

export interface ReadDirectoryOptions {
  /** How errors name the directory (default: its name, '/' for the root). */
  path?: string;
  /** What the whole lookup may still read; charged as the directory is read. */
  budget?: LookupBudget;
}

/**
 * Lists a directory's entries ('.' and '..' left out; multi-extent files merged). The directory is read
 * DIR_READ_SECTORS at a time and every limit is checked as records are parsed, so a hostile directory
 * is refused without reading it all.
 */
export async function readDirectory(read: ReadSectors, dir: IsoEntry, volumeSectors?: number, opts: ReadDirectoryOptions = {}): Promise<IsoEntry[]> {
  const where = opts.path ?? (dir.name === '.' || dir.name === '' ? '/' : dir.name);
  const budget = opts.budget;
  if (!dir.isDir) throw new FormatError(`ISO 9660: ${where} is not a directory`);
  const ext = dir.extents[0]!;
  if (ext.size > MAX_DIR_BYTES) throw new FormatError(`ISO 9660: directory ${where} claims ${ext.size} bytes; the limit is ${MAX_DIR_BYTES} (MAX_DIR_BYTES)`);
  const sectors = Math.ceil(ext.size / SECTOR);
  if (volumeSectors !== undefined && ext.lba + sectors > volumeSectors) throw new FormatError(`ISO 9660: directory ${where} lies past the end of the volume`);
  const out: IsoEntry[] = [];
  let records = 0;
  /** The multi-extent file whose chain is open (its last record had the multi-extent flag). */
  let multi: IsoEntry | undefined;
  for (let first = 0; first < sectors; first += DIR_READ_SECTORS) {
    const count = Math.min(DIR_READ_SECTORS, sectors - first);
    if (budget) {
      budget.bytes -= count * SECTOR;
      if (budget.bytes < 0) throw new FormatError(`ISO 9660: ${budget.path}: the lookup read more than ${MAX_LOOKUP_DIR_BYTES} bytes of directories (MAX_LOOKUP_DIR_BYTES), in ${where}`);
    }
    const data = await read(ext.lba + first, count);
    if (data.length < count * SECTOR) throw new FormatError(`ISO 9660: directory ${where}: short read at sector ${ext.lba + first}`);
    for (let s = 0; s < count; s++) {
      const base = s * SECTOR;
      const end = Math.min(SECTOR, ext.size - (first + s) * SECTOR);
      let off = 0;
      while (off < end) {
        const len = data[base + off]!;
        if (len === 0) break; // padding to the next sector
        if (off + len > SECTOR) throw new FormatError(`ISO 9660: a record in ${where} crosses a sector boundary`);
        if (++records > MAX_DIR_RECORDS) throw new FormatError(`ISO 9660: directory ${where} has more than ${MAX_DIR_RECORDS} records (MAX_DIR_RECORDS)`);
        if (budget && --budget.records < 0) throw new FormatError(`ISO 9660: ${budget.path}: the lookup read more than ${MAX_LOOKUP_RECORDS} directory records (MAX_LOOKUP_RECORDS), in ${where}`);
        const at = base + off;
        const e = parseRecord(data.subarray(at, at + Math.max(len, 34)), `record in ${where}`);
        const flags = data[at + 25]!;
        off += len;
        if (!e || e.name === '.' || e.name === '..') continue;
        if (multi && multi.name === e.name) {
          if (multi.extents.length >= MAX_EXTENTS_PER_FILE) {
            throw new FormatError(`ISO 9660: file ${joinIsoPath(where, normalizeIsoName(e.name))} has more than ${MAX_EXTENTS_PER_FILE} extents (MAX_EXTENTS_PER_FILE, zero-length extents included)`);
          }
          multi.extents.push(...e.extents);
          multi.size += e.size;
        } else {
          if (multi) throw new FormatError(`ISO 9660: file ${joinIsoPath(where, normalizeIsoName(multi.name))}: its multi-extent chain is cut off by ${e.name}`);
          out.push(e);
        }
        multi = flags & 0x80 ? out[out.length - 1] : undefined;
      }
    }
  }
  if (multi) throw new FormatError(`ISO 9660: file ${joinIsoPath(where, normalizeIsoName(multi.name))}: its multi-extent chain does not end in ${where}`);
  return out;
}

/** d-name without ';1' version and trailing dot, uppercase. */
export function normalizeIsoName(name: string): string {
  return name.replace(/;\d+$/, '').replace(/\.$/, '').toUpperCase();
}

export async function lookupPath(read: ReadSectors, vol: IsoVolume, path: string): Promise<IsoEntry> {
  const parts = path.split('/').filter(Boolean);
  if (parts.length > MAX_DEPTH) throw new FormatError(`ISO 9660: path ${path} is deeper than ${MAX_DEPTH} levels (MAX_DEPTH)`);
  const budget = lookupBudget(path);
  let cur = vol.root;
  let at = '/';
  const seen = new Set<number>([cur.extents[0]!.lba]);
  for (const part of parts) {
    const entries = await readDirectory(read, cur, vol.totalSectors, { path: at, budget });
    const want = normalizeIsoName(part);
    const next = entries.find((e) => normalizeIsoName(e.name) === want);
    if (!next) throw new IsoNotFoundError(`ISO 9660: ${path}: "${part}" not found`);
    at = joinIsoPath(at, want);
    if (next.isDir) {
      if (seen.has(next.extents[0]!.lba)) throw new FormatError(`ISO 9660: directory loop at ${at}`);
      seen.add(next.extents[0]!.lba);
    }
    cur = next;
  }
  for (const x of cur.extents) {
    if (x.lba + Math.ceil(x.size / SECTOR) > vol.totalSectors) throw new FormatError(`ISO 9660: ${path} lies past the end of the volume`);
  }
  return cur;
}
