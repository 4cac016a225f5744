/* Wine 8.0 lacks bcryptprimitives.dll (Windows 10+; Wine 9 has it), which Rust >= 1.78 binaries import for
   ProcessPrng. This stand-in, used only by the Wine test, forwards it to RtlGenRandom (advapi32 SystemFunction036). */
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG len);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
    if (!SystemFunction036(data, n)) return FALSE;
    data += n; len -= n;
  }
  return TRUE;
}
