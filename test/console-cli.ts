/**
 * The mocopy CLI for the console tests: cli/main.ts's program, with `center operator` registered if the
 * program does not register it itself yet (cli/commands/operator.ts's registerOperator). Exit codes and error
 * output as main() gives them. Run: node --import tsx test/console-cli.ts ARGS...
 */
import { CommanderError } from 'commander';
import { buildProgram, reportError } from '../cli/main.js';
import { registerOperator } from '../cli/commands/operator.js';

const program = buildProgram();
const center = program.commands.find((c) => c.name() === 'center')!;
if (!center.commands.some((c) => c.name() === 'operator')) {
  registerOperator(center);
  const op = center.commands.find((c) => c.name() === 'operator')!;
  op.exitOverride();
  for (const sub of op.commands) sub.exitOverride();
}
const argv = ['node', 'mocopy', ...process.argv.slice(2)];
program.parseAsync(argv).then(() => {
  process.exitCode = typeof process.exitCode === 'number' ? process.exitCode : 0;
}, (err) => {
  if (err instanceof CommanderError) process.exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.help' ? 0 : 2;
  else process.exitCode = reportError(err, argv);
});
