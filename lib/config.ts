/**
 * Station settings: a technician at a copying station should type only the devices and the
 * content ID. Flags override environment variables, which override the config file.
 *
 *   MOCOPY_CENTER        URL of the license center service
 *   MOCOPY_CENTER_DB     path of a local ledger (in-process center)
 *   MOCOPY_STATION_KEY   path of the station key file
 *   MOCOPY_SCHEME        default scheme, a or b
 *   MOCOPY_CONFIG        config file path (default: $XDG_CONFIG_HOME/mocopy/config.json,
 *                        ~/.config/mocopy/config.json, or %APPDATA%\mocopy\config.json on Windows)
 *
 * The config file is JSON: {"center": "...", "centerDb": "...", "stationKey": "...", "scheme": "a"}.
 * Relative paths in it are taken relative to the file's directory.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isScheme, type Scheme } from './domain/index.js';
import { UsageError } from './errors.js';

export interface StationSettings {
  center?: string;
  centerDb?: string;
  stationKeyPath?: string;
  scheme?: Scheme;
  /** Where each setting came from, for `--json` output and messages. */
  sources: Partial<Record<'center' | 'centerDb' | 'stationKeyPath' | 'scheme', 'flag' | 'env' | 'config'>>;
}

export interface StationFlags {
  center?: string;
  centerDb?: string;
  stationKey?: string;
  scheme?: string;
}

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  if (env.MOCOPY_CONFIG) return env.MOCOPY_CONFIG;
  if (platform === 'win32' && env.APPDATA) return join(env.APPDATA, 'mocopy', 'config.json');
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'mocopy', 'config.json');
}

interface FileSettings { center?: string; centerDb?: string; stationKey?: string; scheme?: string }

export function readConfigFile(path: string): FileSettings {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new UsageError(`cannot read the config file ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`the config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError(`the config file ${path} must hold a JSON object`);
  }
  const out: FileSettings = {};
  const dir = dirname(path);
  for (const key of ['center', 'centerDb', 'stationKey', 'scheme'] as const) {
    const v = (parsed as Record<string, unknown>)[key];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v === '') throw new UsageError(`the config file ${path}: "${key}" must be a non-empty string`);
    out[key] = (key === 'centerDb' && /^postgres(ql)?:\/\//i.test(v)) ? v : (key === 'centerDb' || key === 'stationKey') && !isAbsolute(v) ? resolve(dir, v) : v;
  }
  return out;
}

export function parseScheme(value: string, from: string): Scheme {
  const v = value.trim().toLowerCase();
  if (isScheme(v)) return v;
  throw new UsageError(`${from}: scheme must be "a" or "b", not "${value}"`);
}

export function resolveStationSettings(flags: StationFlags, env: NodeJS.ProcessEnv = process.env): StationSettings {
  const file = readConfigFile(defaultConfigPath(env));
  const s: StationSettings = { sources: {} };
  const pick = <K extends 'center' | 'centerDb' | 'stationKeyPath' | 'scheme'>(
    key: K, flag: string | undefined, envName: string, fileValue: string | undefined,
  ): string | undefined => {
    if (flag !== undefined) { s.sources[key] = 'flag'; return flag; }
    const e = env[envName];
    if (e) { s.sources[key] = 'env'; return e; }
    if (fileValue !== undefined) { s.sources[key] = 'config'; return fileValue; }
    return undefined;
  };
  const center = pick('center', flags.center, 'MOCOPY_CENTER', file.center);
  const centerDb = pick('centerDb', flags.centerDb, 'MOCOPY_CENTER_DB', file.centerDb);
  const stationKeyPath = pick('stationKeyPath', flags.stationKey, 'MOCOPY_STATION_KEY', file.stationKey);
  const scheme = pick('scheme', flags.scheme, 'MOCOPY_SCHEME', file.scheme);
  // A flag for one kind of center overrides the other kind coming from env or the config file.
  if (s.sources.center === 'flag' && s.sources.centerDb !== 'flag') {
    if (center !== undefined) s.center = center;
  } else if (s.sources.centerDb === 'flag' && s.sources.center !== 'flag') {
    if (centerDb !== undefined) s.centerDb = centerDb;
  } else {
    if (center !== undefined) s.center = center;
    if (centerDb !== undefined) s.centerDb = centerDb;
  }
  if (s.center === undefined) delete s.sources.center;
  if (s.centerDb === undefined) delete s.sources.centerDb;
  if (s.center !== undefined && s.centerDb !== undefined) {
    throw new UsageError('both a center URL and a local ledger are set: give only one of --center / --center-db',
      'check MOCOPY_CENTER, MOCOPY_CENTER_DB and the config file ' + defaultConfigPath(env));
  }
  if (stationKeyPath !== undefined) s.stationKeyPath = stationKeyPath;
  if (scheme !== undefined) s.scheme = parseScheme(scheme, s.sources.scheme === 'flag' ? '--scheme' : s.sources.scheme === 'env' ? 'MOCOPY_SCHEME' : 'config file');
  return s;
}
