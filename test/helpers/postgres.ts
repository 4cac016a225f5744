/**
 * Real PostgreSQL servers for the tests, from Debian's `postgresql` package: initdb + pg_ctl into a temporary
 * directory, as an unprivileged user (initdb refuses root: as root the server runs as `postgres`), on a
 * loopback port. Stopped and removed when the test process exits. A standby is a pg_basebackup of its primary.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, appendFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Ledger } from '../../lib/center/ledger.js';
import { requireCapability } from './tools.js';

/** The newest PostgreSQL server binaries on this machine (Debian keeps them off PATH). */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  const p = which.stdout.trim();
  return p ? join(p, '..') : undefined;
}

/** Skips (listed as not run) when PostgreSQL's server binaries are missing; fails under MOCOPY_TEST_ALL=1. */
export function requirePostgres(ctx: Mocha.Context): void {
  requireCapability(ctx, postgresBinDir() !== undefined, 'PostgreSQL server binaries (initdb, pg_ctl)', 'postgresql');
}

const asRoot = userInfo().uid === 0;
const servers = new Set<PgServer>();
let exitHook = false;

function run(bin: string, args: string[], opts: { input?: string } = {}): string {
  const dir = postgresBinDir()!;
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(dir, bin), ...args]] : [join(dir, bin), args];
  return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(opts.input ? { input: opts.input } : {}) });
}

/** A loopback TCP port free right now (for servers that take a port on their command line). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function privateDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  return dir;
}

export class PgServer {
  stopped = false;
  private constructor(readonly dir: string, readonly port: number, readonly name: string) {}

  get data(): string {
    return join(this.dir, 'data');
  }

  /** A URL for one database on this server. */
  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  private static register(s: PgServer): PgServer {
    servers.add(s);
    if (!exitHook) {
      exitHook = true;
      process.on('exit', () => {
        for (const x of servers) x.stopNow();
      });
    }
    return s;
  }

  /** A new primary: initdb (trust on loopback only), started and answering. */
  static async start(name = 'primary'): Promise<PgServer> {
    const dir = privateDir('mocopy-pg-');
    const s = PgServer.register(new PgServer(dir, await freePort(), name));
    run('initdb', ['-D', s.data, '-U', 'postgres', '--auth=trust', '--no-locale', '-E', 'UTF8', '--no-sync']);
    s.configure();
    s.pgctl(['start', '-w', '-t', '60']);
    return s;
  }

  /** A streaming standby of `primary`, named `name` (its application_name, for synchronous_standby_names). */
  static async standbyOf(primary: PgServer, name = 'standby1'): Promise<PgServer> {
    const dir = privateDir('mocopy-pg-standby-');
    const s = PgServer.register(new PgServer(dir, await freePort(), name));
    run('pg_basebackup', ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', s.data, '-R', '-X', 'stream', '-c', 'fast', '--no-sync']);
    s.configure();
    appendFileSync(join(s.data, 'postgresql.auto.conf'), `primary_conninfo = 'host=127.0.0.1 port=${primary.port} user=postgres application_name=${name}'\n`);
    s.pgctl(['start', '-w', '-t', '60']);
    return s;
  }

  private configure(): void {
    const sock = this.dir;
    appendFileSync(join(this.data, 'postgresql.conf'), [
      `port = ${this.port}`, "listen_addresses = '127.0.0.1'", `unix_socket_directories = '${sock}'`,
      'fsync = on', 'synchronous_commit = on', 'max_connections = 200', 'shared_buffers = 64MB',
      "logging_collector = off", `cluster_name = '${this.name}'`, '',
    ].join('\n'));
  }

  private pgctl(args: string[]): void {
    run('pg_ctl', ['-D', this.data, '-l', join(this.dir, 'server.log'), ...args]);
  }

  /** SQL as the superuser (in `database`). */
  async sql(text: string, database = 'postgres'): Promise<pg.QueryResult> {
    const c = new pg.Client({ connectionString: this.url(database) });
    await c.connect();
    try {
      return await c.query(text);
    } finally {
      await c.end();
    }
  }

  /** A new, migrated ledger database on this server; returns its URL. */
  async freshLedger(): Promise<string> {
    const db = `ledger_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
    await this.sql(`CREATE DATABASE ${db}`);
    const url = this.url(db);
    await Ledger.migrate(url);
    return url;
  }

  /** The postmaster's PID, from postmaster.pid. */
  pid(): number {
    return Number(readFileSync(join(this.data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  }

  /** The whole server dies at once, as in a power cut of its machine. */
  kill(): void {
    try {
      process.kill(this.pid(), 'SIGKILL');
    } catch { /* already gone */ }
    this.stopped = true;
  }

  promote(): void {
    this.pgctl(['promote', '-w', '-t', '60']);
  }

  stop(mode: 'fast' | 'immediate' = 'fast'): void {
    if (this.stopped) return;
    this.stopped = true;
    try {
      this.pgctl(['stop', '-m', mode, '-w', '-t', '60']);
    } catch { /* not running */ }
  }

  start(): void {
    this.pgctl(['start', '-w', '-t', '60']);
    this.stopped = false;
  }

  /** Synchronous, for the exit hook: stop whatever still runs and remove the directory. */
  stopNow(): void {
    if (existsSync(join(this.data, 'postmaster.pid'))) {
      try {
        process.kill(this.pid(), 'SIGQUIT'); // immediate shutdown: the data is thrown away anyway
      } catch { /* gone */ }
      for (let i = 0; i < 100 && existsSync(join(this.data, 'postmaster.pid')); i++) spawnSync('sleep', ['0.05']);
    }
    rmSync(this.dir, { recursive: true, force: true });
    servers.delete(this);
  }
}

let shared: Promise<PgServer> | undefined;

/** One server for every suite of the test run (each suite takes fresh databases on it). */
export function sharedPostgres(): Promise<PgServer> {
  shared ??= PgServer.start('shared');
  return shared;
}

/** The ledger backends every center suite runs on. */
export const LEDGER_BACKENDS = ['sqlite', 'postgres'] as const;
export type LedgerBackend = (typeof LEDGER_BACKENDS)[number];

/** makeWorld's options for a backend: a fresh migrated database on the shared server for PostgreSQL. */
export async function worldLedger(backend: LedgerBackend): Promise<{ ledger?: string }> {
  return backend === 'postgres' ? { ledger: await (await sharedPostgres()).freshLedger() } : {};
}
