/**
 * The master's catalog file (`/MOCOPY.CAT` on the ISO volume): which programs the master offers,
 * under which schemes, where each encrypted program lies and its SHA-256. Pure encode/decode.
 */
import { FormatError } from '../errors.js';
import { isContentId, isScheme, type Scheme } from '../domain/index.js';

export const CATALOG_PATH = '/MOCOPY.CAT';
export const CATALOG_FORMAT = 'mocopy-master-catalog';
/** A catalog larger than this is refused before it is read (9999 entries take well under 4 MiB). */
export const MAX_CATALOG_BYTES = 4 << 20;
/** `master build` refuses more; a catalog claiming more was not made by it. */
export const MAX_CATALOG_CONTENTS = 9999;
const MAX_TEXT = 256;

export interface CatalogEntry {
  contentId: string;
  name: string;
  /** Plaintext size of the program. */
  size: number;
  /** Size of the encrypted program file. */
  encryptedSize: number;
  schemes: Scheme[];
  /** SHA-256 of the encrypted program file, hex. */
  sha256: string;
  /** ISO path of the encrypted program. */
  path: string;
}

export interface MasterCatalog {
  format: typeof CATALOG_FORMAT;
  version: 1;
  title: string;
  created: string;
  contents: CatalogEntry[];
}

export function encodeCatalog(c: MasterCatalog): Buffer {
  return Buffer.from(JSON.stringify(c, null, 1));
}

/** Parses and checks a catalog; `where` names the drive or file in errors. */
export function decodeCatalog(bytes: Buffer, where: string): MasterCatalog {
  let c: unknown;
  try {
    c = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new FormatError(`${where}: the master catalog is not valid JSON (${(e as Error).message})`);
  }
  const cat = c as MasterCatalog;
  if (!cat || typeof cat !== 'object' || cat.format !== CATALOG_FORMAT || cat.version !== 1 || !Array.isArray(cat.contents)) {
    throw new FormatError(`${where}: not a mocopy master catalog (format/version)`);
  }
  if (typeof cat.title !== 'string' || cat.title.length > MAX_TEXT) throw new FormatError(`${where}: the master catalog has a bad title`);
  if (cat.contents.length > MAX_CATALOG_CONTENTS) throw new FormatError(`${where}: the master catalog lists ${cat.contents.length} contents (at most ${MAX_CATALOG_CONTENTS})`);
  const ids = new Set<string>();
  for (const [i, e] of cat.contents.entries()) {
    const bad = (f: string) => new FormatError(`${where}: catalog entry ${i}: bad ${f}`);
    if (!e || typeof e !== 'object' || Array.isArray(e)) throw bad('entry');
    if (!isContentId(e.contentId)) throw bad('contentId');
    if (ids.has(e.contentId)) throw bad(`contentId (${e.contentId} appears twice)`);
    ids.add(e.contentId);
    if (typeof e.name !== 'string' || e.name.length > MAX_TEXT) throw bad('name');
    if (!Number.isSafeInteger(e.size) || e.size < 0) throw bad('size');
    if (!Number.isSafeInteger(e.encryptedSize) || e.encryptedSize <= e.size) throw bad('encryptedSize');
    if (!Array.isArray(e.schemes) || e.schemes.length === 0 || !e.schemes.every(isScheme)) throw bad('schemes');
    if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256)) throw bad('sha256');
    if (typeof e.path !== 'string' || !/^(\/[A-Za-z0-9_.;-]{1,64}){1,8}$/.test(e.path)) throw bad('path');
  }
  return cat;
}

export function findCatalogEntry(catalog: MasterCatalog, contentId: string): CatalogEntry | undefined {
  return catalog.contents.find((c) => c.contentId === contentId);
}
