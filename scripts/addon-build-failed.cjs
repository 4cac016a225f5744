// The native addon is optional: the emulator and everything above it work without it.
// Reached only when no prebuilt addon (prebuilds/<platform>-<arch>) loads here and compiling one failed too.
// A failed build must not fail the install; opening a real device will then say how to rebuild.
const where = `${process.platform}-${process.arch}`;
console.warn(`mocopy: no prebuilt SCSI pass-through addon fits ${where} and compiling one failed; emulated drives (emu:...) still work.`);
console.warn('mocopy: to use real drives, install python3, make and a C++ compiler, then run `npx node-gyp rebuild` (or `npx cmake-js compile`).');
