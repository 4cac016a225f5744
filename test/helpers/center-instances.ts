/** Center instances in processes of their own, as an operator runs them, and the ledger's billing figures. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { LedgerReport } from '../../lib/center/ledger.js';

/** A center instance in a process of its own, as an operator runs them. */
export function startInstance(ledger: string, port = 0): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'center-fixtures', 'serve.ts'), ledger, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout!.once('data', (d) => resolve({ child, url: String(d).trim() }));
    child.once('exit', (code) => reject(new Error(`center instance exited early (${code})`)));
  });
}

export async function stopInstance(i: { child: ChildProcess }, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (i.child.exitCode !== null || i.child.signalCode !== null) return;
  const gone = new Promise((r) => i.child.once('exit', r));
  i.child.kill(signal);
  await gone;
}

/** Every bill belongs to a license and every license has exactly one bill. */
export function billingFigures(rep: LedgerReport): { licenses: number; bills: number; doubleBilled: number; unbilled: number; orphanBills: number } {
  const per = new Map<string, number>();
  for (const b of rep.billing) per.set(b.licenseId, (per.get(b.licenseId) ?? 0) + 1);
  const ids = new Set(rep.licenses.map((l) => l.id));
  return {
    licenses: rep.licenses.length, bills: rep.billing.length,
    doubleBilled: [...per.values()].filter((n) => n > 1).length,
    unbilled: rep.licenses.filter((l) => !per.has(l.id)).length,
    orphanBills: rep.billing.filter((b) => !ids.has(b.licenseId)).length,
  };
}

