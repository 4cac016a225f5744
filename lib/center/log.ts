/**
 * The center's structured log (pino): one line per request and one per lifecycle event, JSON for machines
 * (the default when stdout is not a terminal) or `time LEVEL event key=value…` for a person at a terminal.
 * Callers pass only the fields below: key material, MACs, nonces and license bodies are never given to it.
 */
import type { Logger } from 'pino';
import { UsageError } from '../errors.js';

export type LogFormat = 'json' | 'text';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface CenterLogOptions {
  format?: LogFormat;
  level?: LogLevel;
  /** Where complete lines go (one per call, no newline); default: `to`. */
  sink?: (line: string) => void;
  /** A file descriptor or path for the lines when no sink is given; default 1 (stdout). */
  to?: number | string;
}

export function parseLogFormat(v: string | undefined): LogFormat | undefined {
  if (v === undefined) return undefined;
  if (v !== 'json' && v !== 'text') throw new UsageError(`--log-format must be json or text, not ${JSON.stringify(v)}`);
  return v;
}

export function parseLogLevel(v: string | undefined): LogLevel | undefined {
  if (v === undefined) return undefined;
  if (!(LOG_LEVELS as readonly string[]).includes(v)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  return v as LogLevel;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** A JSON line as a person reads it: the time, the level, the event, then the fields in order. */
export function textLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { time, level, msg, ...rest } = o;
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  return [time, LEVEL_NAMES[level as number] ?? level, msg, ...fields].join(' ');
}

/** pino is loaded by the center service only: the station's commands never pay for it. */
export async function createCenterLog(o: CenterLogOptions = {}): Promise<Logger> {
  const { pino } = await import('pino');
  const format = o.format ?? (process.stdout.isTTY ? 'text' : 'json');
  const opts = { level: o.level ?? 'info', base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  if (!o.sink && format === 'json') {
    // pino's own asynchronous destination: lines written as they come, without a syscall per line under load.
    return pino(opts, pino.destination({ dest: o.to ?? 1, sync: false }));
  }
  const dest = o.sink ? undefined : pino.destination({ dest: o.to ?? 1, sync: false });
  const write = o.sink ?? ((line: string) => dest!.write(line + '\n'));
  const stream = { write: (chunk: string) => write(format === 'text' ? textLine(chunk.trimEnd()) : chunk.trimEnd()) };
  return pino(opts, stream);
}

/** Writes out what an asynchronous destination still holds (before the process exits). */
export function flushCenterLog(log: Logger): Promise<void> {
  return new Promise((resolve) => log.flush(() => resolve()));
}
