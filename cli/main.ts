#!/usr/bin/env node
/**
 * The `mocopy` command. Each command group lives in cli/commands/*.ts and registers itself here;
 * this file only owns what every command shares: error printing and exit codes.
 *
 * Exit codes (lib/errors.ts ExitCode): 0 ok, 1 internal error, 2 usage, 3 device/transport,
 * 4 SCSI CHECK CONDITION, 5 protocol refusal, 6 malformed input, 7 license center unavailable.
 */
import './lean-heap.js'; // first: it sets V8's heap flags for copy, open and verify before the rest loads
import { Command, CommanderError } from 'commander';
import { ExitCode, MocopyError } from '../lib/index.js';
import * as catalogCmd from './commands/catalog.js';
import * as centerCmd from './commands/center.js';
import * as copyCmd from './commands/copy.js';
import * as demoCmd from './commands/demo.js';
import * as deviceCmd from './commands/device.js';
import * as emuCmd from './commands/emu.js';
import * as hilCmd from './commands/hil.js';
import * as masterCmd from './commands/master.js';
import * as openCmd from './commands/open.js';
import * as stationCmd from './commands/station.js';
import * as verifyCmd from './commands/verify.js';
import { verbosity } from './common.js';
import { isMocopyProcess } from './entry.js';

const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command('mocopy')
    .description('Licensed copies of programs from a master CD-ROM onto magneto-optical discs, bound to each disc\'s medium ID')
    .version(VERSION)
    .option('--debug', 'print stack traces with errors (also MOCOPY_DEBUG=1)')
    .option('-v, --verbose', 'say how each drive\'s commands run (the sg driver\'s queue, or the thread pool and why)')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: false });
  program.hook('preAction', (cmd) => { verbosity.verbose = !!cmd.optsWithGlobals().verbose; });
  for (const mod of [demoCmd, copyCmd, stationCmd, openCmd, verifyCmd, catalogCmd, masterCmd, deviceCmd, emuCmd, centerCmd, hilCmd]) {
    mod.register(program);
  }
  // Usage errors from any subcommand exit with ExitCode.USAGE instead of commander's exit(1).
  const exitOverride = (cmd: Command) => {
    cmd.exitOverride();
    for (const sub of cmd.commands) exitOverride(sub);
  };
  exitOverride(program);
  return program;
}

function wantsJson(argv: readonly string[]): boolean {
  return argv.includes('--json');
}

function wantsDebug(argv: readonly string[]): boolean {
  return argv.includes('--debug') || !!process.env.MOCOPY_DEBUG;
}

/** Prints an error the way a technician can act on it; never a stack trace unless --debug or MOCOPY_DEBUG is set. */
export function reportError(err: unknown, argv: readonly string[], stderr: NodeJS.WritableStream = process.stderr,
  stdout: NodeJS.WritableStream = process.stdout): number {
  if (err instanceof MocopyError) {
    stderr.write(`mocopy: ${err.message}\n`);
    if (err.hint) stderr.write(`hint: ${err.hint}\n`);
    if (wantsJson(argv)) stdout.write(JSON.stringify({ error: { code: err.code, message: err.message, hint: err.hint ?? null, exitCode: err.exitCode } }) + '\n');
    if (wantsDebug(argv) && err.stack) stderr.write(err.stack + '\n');
    return err.exitCode;
  }
  const e = err as Error;
  stderr.write(`mocopy: internal error: ${e?.message ?? String(err)}\n`);
  stderr.write('hint: this is a bug in mocopy; run again with --debug and report the output\n');
  if (wantsDebug(argv) && e?.stack) stderr.write(e.stack + '\n');
  if (wantsJson(argv)) stdout.write(JSON.stringify({ error: { code: 'E_INTERNAL', message: e?.message ?? String(err), hint: null, exitCode: ExitCode.INTERNAL } }) + '\n');
  return ExitCode.INTERNAL;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.OK;
      return ExitCode.USAGE;
    }
    return reportError(err, argv);
  }
}

if (isMocopyProcess()) {
  main().then((code) => {
    process.exitCode = code;
  }, (err) => {
    process.exitCode = reportError(err, process.argv);
  });
}
