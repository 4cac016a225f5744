/** Shared vocabulary: identifiers and license shapes (see ids.ts, license.ts). */
export * from './ids.js';
export * from './license.js';
