// The native addon is optional: the emulator and everything above it work without it.
// A failed build must not fail `npm ci`; opening a real device will then say how to rebuild.
console.warn('mocopy: the native SCSI pass-through addon did not build; emulated drives (emu:...) still work.');
console.warn('mocopy: to use real drives, install python3, make and a C++ compiler, then run `npx node-gyp rebuild` (or `npx cmake-js compile`).');
