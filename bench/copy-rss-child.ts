// Copies the one program of a prepared setup (scheme B) and prints the process's peak RSS in bytes.
// argv: dir ledger master stationKeyPath size. Run compiled (dist/bench), as the mocopy command runs.
import { readStationKey } from '../lib/center/station-key.js';
import { copyOnce } from './copy-throughput.js';

const [dir, ledger, master, stationKeyPath, size] = process.argv.slice(2);
await copyOnce({ dir: dir!, ledger: ledger!, master: master!, stationKeyPath: stationKeyPath!, station: readStationKey(stationKeyPath!), size: Number(size) }, 'b');
process.stdout.write(`${process.resourceUsage().maxRSS * 1024}\n`);
