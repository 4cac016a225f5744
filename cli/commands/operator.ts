/** `mocopy center operator ...`: the people who use the center's web console (/console/). */
import type { Command } from 'commander';
import { userInfo } from 'node:os';
import { generatePassword, hashPassword, MIN_PASSWORD_LENGTH, OPERATOR_NAME, UsageError } from '../../lib/index.js';
import { jsonOption, out, printJson } from '../common.js';
import { DB_HELP, withLedger } from '../ledger-options.js';


/** Changes made here are audited as the local user on this machine. */
const cliActor = () => ({ operator: `cli:${(() => { try { return userInfo().username; } catch { return 'unknown'; } })()}`, address: 'local' });

function checkName(name: string): void {
  if (!OPERATOR_NAME.test(name)) throw new UsageError('an operator name is 1-64 characters A-Z a-z 0-9 . _ @ - starting with a letter or digit');
}

async function readStdinPassword(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  const pw = Buffer.concat(parts).toString('utf8').replace(/\r?\n$/, '');
  if (pw.length < MIN_PASSWORD_LENGTH) throw new UsageError(`the password on stdin is shorter than ${MIN_PASSWORD_LENGTH} characters`);
  if (pw.length > 1024) throw new UsageError('the password on stdin is longer than 1024 characters');
  return pw;
}

/** The password to set: from stdin, or generated and printed once. */
async function newPassword(fromStdin: boolean | undefined): Promise<{ password: string; generated: boolean }> {
  return fromStdin ? { password: await readStdinPassword(), generated: false } : { password: generatePassword(), generated: true };
}

export function registerOperator(centerCommand: Command): void {
  const op = centerCommand.command('operator').description('operators of the web console (/console/): admins change, viewers read');
  op.command('add')
    .argument('<name>', 'the operator\'s sign-in name')
    .option('--db <ledger>', DB_HELP)
    .requiredOption('--role <role>', 'admin or viewer')
    .option('--password-stdin', `read the password from stdin (at least ${MIN_PASSWORD_LENGTH} characters); otherwise one is generated and printed once`)
    .addOption(jsonOption())
    .description('add an operator')
    .action(async (name: string, o: { db?: string; role: string; passwordStdin?: boolean; json?: boolean }) => {
      checkName(name);
      if (o.role !== 'admin' && o.role !== 'viewer') throw new UsageError('--role is admin or viewer');
      const { password, generated } = await newPassword(o.passwordStdin);
      const hash = await hashPassword(password);
      const at = new Date().toISOString();
      await withLedger(o, async (l) => {
        if (!(await l.addOperator({ name, role: o.role as 'admin' | 'viewer', passwordHash: hash, createdAt: at, passwordChangedAt: at }, cliActor()))) throw new UsageError(`there is an operator ${name} already`, 'use `mocopy center operator passwd` to set a new password');
      });
      if (o.json) return printJson({ name, role: o.role, ...(generated ? { password } : {}) });
      out(`operator ${name} (${o.role}) added`);
      if (generated) out(`password (shown once, not stored anywhere readable): ${password}`);
    });
  op.command('list')
    .option('--db <ledger>', DB_HELP)
    .addOption(jsonOption())
    .description('list operators (never their passwords)')
    .action(async (o: { db?: string; json?: boolean }) => {
      const rows = await withLedger(o, (l) => l.operators());
      if (o.json) return printJson({ operators: rows });
      for (const r of rows) out(`${r.name.padEnd(20)} ${r.role.padEnd(7)} added ${r.createdAt}  password set ${r.passwordChangedAt}`);
    });
  op.command('remove')
    .argument('<name>', 'the operator to remove')
    .option('--db <ledger>', DB_HELP)
    .description('remove an operator (their sessions end at once)')
    .action(async (name: string, o: { db?: string }) => {
      const removed = await withLedger(o, (l) => l.removeOperator(name, cliActor()));
      if (!removed) throw new UsageError(`no operator ${name}`);
      out(`operator ${name} removed`);
    });
  op.command('passwd')
    .argument('<name>', 'the operator')
    .option('--db <ledger>', DB_HELP)
    .option('--password-stdin', 'read the new password from stdin; otherwise one is generated and printed once')
    .addOption(jsonOption())
    .description('set a new password (the operator\'s sessions end at once)')
    .action(async (name: string, o: { db?: string; passwordStdin?: boolean; json?: boolean }) => {
      const { password, generated } = await newPassword(o.passwordStdin);
      const hash = await hashPassword(password);
      const changed = await withLedger(o, (l) => l.setOperatorPassword(name, hash, cliActor()));
      if (!changed) throw new UsageError(`no operator ${name}`);
      if (o.json) return printJson({ name, ...(generated ? { password } : {}) });
      out(`password of ${name} changed; their sessions have ended`);
      if (generated) out(`password (shown once): ${password}`);
    });
}
