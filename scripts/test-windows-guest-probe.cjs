// Run by scripts/test-windows-guest.sh inside the QEMU guest: the Windows node.exe under Wine, the win32 addon, and
// \\.\D: (a Wine drive mapped to the guest's /dev/sr0, QEMU's scsi-cd). Wine turns IOCTL_SCSI_PASS_THROUGH(_DIRECT)
// into SG_IO on the guest kernel. Prints one line per check and `N passed, N failed`.
const fs = require('fs');
const addon = require(process.argv[2]);
const image = fs.readFileSync(process.argv[3]);
let passed = 0, failed = 0;
const check = (name, ok, detail) => { if (ok) passed++; else failed++; console.log(`${ok ? 'ok' : 'not ok'} - ${name}${detail ? ` (${detail})` : ''}`); };
const cdb = (...b) => Buffer.from(b);
const senseText = (s) => s.length ? `sense ${s.subarray(0, 18).toString('hex')} key ${(s[0] & 0x7f) >= 0x72 ? s[1] & 15 : s[2] & 15} asc ${((s[0] & 0x7f) >= 0x72 ? s[2] : s[12]).toString(16)}` : 'no sense';
(async () => {
  let h;
  try { h = addon.open('\\\\.\\D:', { write: true }); check('open \\\\.\\D: (the scsi-cd through Wine)', true); }
  catch (e) { check('open \\\\.\\D:', false, `${e.code} ${e.oscode} ${e.message}`); console.log(`${passed} passed, ${failed} failed`); return; }
  try { const l = addon.limits(h); check('limits (IOCTL_STORAGE_QUERY_PROPERTY)', l.maxTransferBytes > 0, JSON.stringify(l)); }
  catch (e) { check('limits (IOCTL_STORAGE_QUERY_PROPERTY)', false, `${e.code} ${e.oscode} ${e.message}`); }
  const run = async (name, c, dir, buf) => {
    try { return await addon.execute(h, c, dir, buf, 10000); }
    catch (e) { check(name, false, `${e.code} ${e.oscode} ${e.message}`); return undefined; }
  };
  for (let i = 0; i < 3; i++) { // unit attentions after power-on/medium change come first
    const r = await run('TEST UNIT READY', cdb(0, 0, 0, 0, 0, 0), 0);
    if (!r) break;
    if (r.status === 0) { check('TEST UNIT READY -> GOOD', true, i ? `after ${i} unit attention(s): ${senseText(Buffer.from(r.sense))}` : ''); break; }
    if (i === 2) check('TEST UNIT READY -> GOOD', false, `status ${r.status} ${senseText(Buffer.from(r.sense))}`);
  }
  let buf = Buffer.alloc(96);
  let r = await run('INQUIRY', cdb(0x12, 0, 0, 0, 96, 0), 1, buf);
  if (r) check('INQUIRY: peripheral type 5, vendor QEMU', r.status === 0 && (buf[0] & 31) === 5 && buf.subarray(8, 16).toString().trim() === 'QEMU',
    `status ${r.status} type ${buf[0] & 31} "${buf.subarray(8, 16).toString().trim()}" "${buf.subarray(16, 32).toString().trim()}" residual ${r.residual}`);
  buf = Buffer.alloc(8);
  r = await run('READ CAPACITY(10)', cdb(0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0), 1, buf);
  const blocks = image.length / 2048;
  if (r) check('READ CAPACITY(10): the image size in 2048-byte blocks', r.status === 0 && buf.readUInt32BE(0) === blocks - 1 && buf.readUInt32BE(4) === 2048,
    `status ${r.status} last LBA ${buf.readUInt32BE(0)} block ${buf.readUInt32BE(4)}`);
  for (const [lba, n, path] of [[0, 2, 'buffered IOCTL_SCSI_PASS_THROUGH'], [100, 32, 'IOCTL_SCSI_PASS_THROUGH_DIRECT'], [1000, 64, 'IOCTL_SCSI_PASS_THROUGH_DIRECT, 128 KiB']]) {
    buf = Buffer.alloc(n * 2048);
    r = await run(`READ(10) ${n} blocks at ${lba}`, cdb(0x28, 0, lba >> 24, (lba >> 16) & 255, (lba >> 8) & 255, lba & 255, 0, n >> 8, n & 255, 0), 1, buf);
    if (r) check(`READ(10) ${n} blocks at LBA ${lba} (${path}): the master's bytes`, r.status === 0 && buf.equals(image.subarray(lba * 2048, (lba + n) * 2048)),
      `status ${r.status} residual ${r.residual} ${senseText(Buffer.from(r.sense))}`);
  }
  buf = Buffer.alloc(2048);
  const past = blocks + 10;
  r = await run('READ(10) past the end', cdb(0x28, 0, past >> 24, (past >> 16) & 255, (past >> 8) & 255, past & 255, 0, 0, 1, 0), 1, buf);
  if (r) {
    const s = Buffer.from(r.sense);
    const key = s.length ? ((s[0] & 0x7f) >= 0x72 ? s[1] & 15 : s[2] & 15) : -1;
    const asc = s.length ? ((s[0] & 0x7f) >= 0x72 ? s[2] : s[12]) : -1;
    check('READ(10) past the end: CHECK CONDITION, ILLEGAL REQUEST, LBA OUT OF RANGE (sense through Wine)', r.status === 2 && key === 5 && asc === 0x21, `status ${r.status} ${senseText(s)}`);
  }
  // Residuals: a buffer larger than the CDB's transfer; the drive moves less, the rest must come back as residual.
  for (const [n, size, path] of [[1, 4096, 'buffered'], [2, 8192, 'direct']]) {
    buf = Buffer.alloc(size);
    r = await run(`READ(10) ${n} block(s) into ${size} bytes`, cdb(0x28, 0, 0, 0, 0, 8, 0, 0, n, 0), 1, buf);
    const same = buf.subarray(0, n * 2048).equals(image.subarray(8 * 2048, (8 + n) * 2048));
    if (r) check(`READ(10) of ${n * 2048} bytes into a ${size}-byte buffer (${path}): residual ${size - n * 2048}`,
      r.status === 0 && r.residual === size - n * 2048 && same,
      `status ${r.status} residual ${r.residual} data ${same ? 'equal' : 'not copied back'} ${senseText(Buffer.from(r.sense))}`);
  }
  addon.close(h);
  console.log(`${passed} passed, ${failed} failed`);
})();
