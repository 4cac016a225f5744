/** The master CD-ROM: authored by the publisher (build.ts), read at the station through its drive (read.ts). */
export * from './build.js';
export * from './read.js';
export type { CatalogEntry, MasterCatalog } from '../formats/catalog.js';
