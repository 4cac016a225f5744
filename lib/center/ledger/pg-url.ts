/**
 * PostgreSQL connection URLs as libpq reads them, including what node-postgres does not: several hosts
 * (`postgres://u@h1:5432,h2:5432/db`) and `target_session_attrs=read-write`, so a center lists a primary and
 * its standby and connects to whichever accepts writes — after a failover, the promoted one.
 */
import { UsageError } from '../../errors.js';

export interface PgHost { host: string; port: number }
export interface PgTarget {
  hosts: PgHost[];
  user: string | undefined;
  password: string | undefined;
  database: string | undefined;
  /** 'any' takes the first host that answers; 'read-write' (or 'primary') skips standbys and read-only servers. */
  targetSessionAttrs: 'any' | 'read-write' | 'primary';
  connectTimeoutMs: number;
  applicationName: string;
  ssl: boolean;
}

export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

/** The URL with its password replaced, safe for logs, messages and `--json` output. */
export function redactPostgresUrl(spec: string): string {
  return spec.replace(/^(postgres(?:ql)?:\/\/[^:@/]*:)[^@/]*@/i, '$1***@').replace(/([?&]password=)[^&]*/i, '$1***');
}

export function parsePostgresUrl(spec: string): PgTarget {
  const bad = (why: string) => new UsageError(`${redactPostgresUrl(spec)} is not a PostgreSQL URL: ${why}`, 'use postgres://USER[:PASSWORD]@HOST[:PORT][,HOST2[:PORT2]]/DATABASE[?target_session_attrs=read-write]');
  const m = /^postgres(?:ql)?:\/\/([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?$/i.exec(spec);
  if (!m) throw bad('it does not have the form postgres://…');
  let authority = m[1]!;
  let user: string | undefined;
  let password: string | undefined;
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const cred = authority.slice(0, at);
    authority = authority.slice(at + 1);
    const colon = cred.indexOf(':');
    user = decodeURIComponent(colon >= 0 ? cred.slice(0, colon) : cred) || undefined;
    password = colon >= 0 ? decodeURIComponent(cred.slice(colon + 1)) : undefined;
  }
  const params = new URLSearchParams(m[3] ?? '');
  const hostsText = params.get('host') ?? decodeURIComponent(authority);
  const portsText = params.get('port');
  const defaultPorts = portsText ? portsText.split(',') : [];
  const hosts: PgHost[] = [];
  if (hostsText) {
    const parts = hostsText.split(',');
    parts.forEach((h, i) => {
      // A bracketed IPv6 address keeps its colons; an authority's port follows the last colon.
      const hp = /^\[([^\]]+)\](?::(\d+))?$/.exec(h) ?? (h.startsWith('/') ? [h, h, undefined] : /^([^:]*)(?::(\d+))?$/.exec(h));
      if (!hp) throw bad(`host ${JSON.stringify(h)} does not parse`);
      const port = Number(hp[2] ?? defaultPorts[i] ?? defaultPorts[0] ?? 5432);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`port of ${h} is out of range`);
      hosts.push({ host: hp[1] || 'localhost', port });
    });
  } else {
    hosts.push({ host: 'localhost', port: Number(defaultPorts[0] ?? 5432) });
  }
  const tsa = (params.get('target_session_attrs') ?? 'any').toLowerCase();
  if (tsa !== 'any' && tsa !== 'read-write' && tsa !== 'primary') throw bad(`target_session_attrs=${tsa} is not supported (any, read-write, primary)`);
  const timeout = Number(params.get('connect_timeout') ?? 5);
  if (!Number.isFinite(timeout) || timeout <= 0) throw bad('connect_timeout must be a positive number of seconds');
  const sslmode = params.get('sslmode') ?? 'disable';
  return {
    hosts, user: params.get('user') ?? user, password: params.get('password') ?? password,
    database: m[2] ? decodeURIComponent(m[2]) : (params.get('dbname') ?? undefined),
    targetSessionAttrs: tsa, connectTimeoutMs: timeout * 1000,
    applicationName: params.get('application_name') ?? 'mocopy-center',
    ssl: sslmode !== 'disable' && sslmode !== 'allow' && sslmode !== 'prefer',
  };
}
