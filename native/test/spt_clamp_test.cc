// Unit test of ClampSptLengths (native/spt_clamp.h), the length handling of the Windows pass-through backend.
// Plain C++17, no framework: one line per case, then "N passed, N failed"; exit status 1 on any failure.
// Built and run natively and as a PE32+ under wine64 by scripts/test-windows-clamp.sh.
#include "../spt_clamp.h"

#include <cstdio>
#include <cstdint>

using mocopy::ClampSptLengths;
using mocopy::kSptNoBounce;
using mocopy::SptLengths;

namespace {

constexpr size_t kSense = 96;      // the backend's sense capacity (kSenseBufferSize)
constexpr size_t kBuffered = 4096; // the buffered path's embedded data area
constexpr uint8_t kCheck = 0x02;   // CHECK CONDITION
constexpr uint8_t kGood = 0x00;

int passed = 0, failed = 0;

struct Want {
  size_t senseLen, transferred, residual;
  bool overrun, senseTruncated;
};

void Check(const char* name, const SptLengths& got, const Want& want) {
  const bool ok = got.senseLen == want.senseLen && got.transferred == want.transferred &&
                  got.residual == want.residual && got.dataOverrun == want.overrun &&
                  got.senseTruncated == want.senseTruncated;
  std::printf("%s %-52s sense=%zu transferred=%zu residual=%zu overrun=%d senseTruncated=%d",
              ok ? "PASS" : "FAIL", name, got.senseLen, got.transferred, got.residual, got.dataOverrun ? 1 : 0,
              got.senseTruncated ? 1 : 0);
  if (!ok)
    std::printf("  (want sense=%zu transferred=%zu residual=%zu overrun=%d senseTruncated=%d)", want.senseLen,
                want.transferred, want.residual, want.overrun ? 1 : 0, want.senseTruncated ? 1 : 0);
  std::printf("\n");
  (ok ? passed : failed)++;
}

// Compile-time too: the function is constexpr, so the worst cases are pinned at build time as well.
static_assert(ClampSptLengths(kSense, 512, kBuffered, 0xFFFFFFFFu, 0xFFFFFFFFu, kCheck).senseLen == kSense, "");
static_assert(ClampSptLengths(kSense, 512, kBuffered, 0xFFFFFFFFu, 0xFFFFFFFFu, kCheck).transferred == 512, "");
static_assert(ClampSptLengths(kSense, 512, kBuffered, 0xFFFFFFFFu, 0xFFFFFFFFu, kCheck).residual == 0, "");

}  // namespace

int main() {
  // Normal values.
  Check("normal: full read, GOOD", ClampSptLengths(kSense, 2048, kBuffered, 0, 2048, kGood), {0, 2048, 0, false, false});
  Check("normal: short read, GOOD", ClampSptLengths(kSense, 2048, kBuffered, 0, 36, kGood), {0, 36, 2012, false, false});
  Check("normal: CHECK CONDITION with 18 sense bytes", ClampSptLengths(kSense, 2048, kBuffered, 18, 0, kCheck),
        {18, 0, 2048, false, false});
  Check("normal: direct 1 MiB in place", ClampSptLengths(kSense, 1u << 20, kSptNoBounce, 0, 1u << 20, kGood),
        {0, 1u << 20, 0, false, false});
  Check("normal: direct 64 KiB via bounce, short", ClampSptLengths(kSense, 65536, 65536, 0, 32768, kGood),
        {0, 32768, 32768, false, false});
  Check("GOOD status ignores a reported sense length", ClampSptLengths(kSense, 512, kBuffered, 0xFFFFFFFFu, 512, kGood),
        {0, 512, 0, false, false});

  // Zero.
  Check("zero: no data, no sense", ClampSptLengths(kSense, 0, kBuffered, 0, 0, kGood), {0, 0, 0, false, false});
  Check("zero: CHECK CONDITION without sense", ClampSptLengths(kSense, 512, kBuffered, 0, 0, kCheck),
        {0, 0, 512, false, false});
  Check("zero: no-data command, driver claims 1 byte", ClampSptLengths(kSense, 0, kSptNoBounce, 0, 1, kGood),
        {0, 0, 0, true, false});

  // Exactly the capacity.
  Check("capacity: sense exactly 96", ClampSptLengths(kSense, 512, kBuffered, kSense, 512, kCheck),
        {kSense, 512, 0, false, false});
  Check("capacity: buffered data exactly 4096", ClampSptLengths(kSense, kBuffered, kBuffered, 0, kBuffered, kGood),
        {0, kBuffered, 0, false, false});

  // Capacity + 1.
  Check("capacity+1: sense 97", ClampSptLengths(kSense, 512, kBuffered, kSense + 1, 512, kCheck),
        {kSense, 512, 0, false, true});
  Check("capacity+1: buffered data 4097", ClampSptLengths(kSense, kBuffered, kBuffered, 0, kBuffered + 1, kGood),
        {0, kBuffered, 0, true, false});
  Check("capacity+1: sense 255 (UCHAR max)", ClampSptLengths(kSense, 512, kBuffered, 255, 512, kCheck),
        {kSense, 512, 0, false, true});

  // 0xFFFFFFFF.
  Check("0xFFFFFFFF: sense", ClampSptLengths(kSense, 512, kBuffered, 0xFFFFFFFFu, 512, kCheck),
        {kSense, 512, 0, false, true});
  Check("0xFFFFFFFF: buffered data", ClampSptLengths(kSense, 512, kBuffered, 0, 0xFFFFFFFFu, kGood),
        {0, 512, 0, true, false});
  Check("0xFFFFFFFF: direct data in place", ClampSptLengths(kSense, 1u << 20, kSptNoBounce, 0, 0xFFFFFFFFu, kGood),
        {0, 1u << 20, 0, true, false});
  Check("0xFFFFFFFF: both, CHECK CONDITION", ClampSptLengths(kSense, 8192, 8192, 0xFFFFFFFFu, 0xFFFFFFFFu, kCheck),
        {kSense, 8192, 0, true, true});

  // More data than requested, still within the buffer the backend owns.
  Check("larger than request: 512 asked, 513 reported", ClampSptLengths(kSense, 512, kBuffered, 0, 513, kGood),
        {0, 512, 0, true, false});
  Check("larger than request: 512 asked, 4096 reported", ClampSptLengths(kSense, 512, kBuffered, 0, kBuffered, kGood),
        {0, 512, 0, true, false});
  Check("larger than request: direct 8192 asked, 16384", ClampSptLengths(kSense, 8192, 8192, 0, 16384, kGood),
        {0, 8192, 0, true, false});
  // A bounce smaller than the request (the backend never does this): the bounce bounds the copy.
  Check("bounce smaller than request", ClampSptLengths(kSense, 8192, 4096, 0, 8192, kGood), {0, 4096, 4096, true, false});

  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
