// Unit test of native/win_list_parse.h (the Windows device listing's parsers), run natively and under wine64 by
// scripts/test-windows-clamp.sh. Buffers are built byte by byte in the documented layouts, including hostile ones.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../win_list_parse.h"

using mocopy::ParseAdapterBusInfo;
using mocopy::ParseStorageDeviceDescriptor;
using mocopy::WinAdapterLun;
using mocopy::WinDeviceIdentity;

static int passed = 0, failed = 0;
#define CHECK(cond)                                                   \
  do {                                                                \
    if (cond) {                                                       \
      passed++;                                                       \
    } else {                                                          \
      failed++;                                                       \
      std::printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);     \
    }                                                                 \
  } while (0)

static void Put32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  if (b.size() < at + 4) b.resize(at + 4);
  for (int i = 0; i < 4; i++) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
static void PutStr(std::vector<uint8_t>& b, size_t at, const char* s, bool nul = true) {
  size_t n = std::strlen(s) + (nul ? 1 : 0);
  if (b.size() < at + n) b.resize(at + n);
  std::memcpy(&b[at], s, n);
}

static std::vector<uint8_t> Descriptor() {
  std::vector<uint8_t> b(48, 0);
  b[8] = 0x07;   // optical memory (MO)
  b[10] = 1;     // removable
  Put32(b, 28, 1);  // BusTypeScsi
  Put32(b, 12, 48);
  PutStr(b, 48, "FUJITSU ");
  Put32(b, 16, 57);
  PutStr(b, 57, "MCP3130SS       ");
  Put32(b, 20, 74);
  PutStr(b, 74, "0040");
  Put32(b, 24, 0);  // no serial
  Put32(b, 4, static_cast<uint32_t>(b.size()));
  return b;
}

static void TestDescriptor() {
  std::vector<uint8_t> b = Descriptor();
  WinDeviceIdentity id;
  CHECK(ParseStorageDeviceDescriptor(b.data(), b.size(), &id));
  CHECK(id.peripheralType == 7 && id.removable && id.busType == 1);
  CHECK(id.vendor == "FUJITSU" && id.product == "MCP3130SS" && id.revision == "0040" && id.serial.empty());
  // Too short, or a Size below the fixed part: refused.
  WinDeviceIdentity x;
  CHECK(!ParseStorageDeviceDescriptor(b.data(), 31, &x));
  std::vector<uint8_t> small = b;
  Put32(small, 4, 16);
  CHECK(!ParseStorageDeviceDescriptor(small.data(), small.size(), &x));
  // Offsets past the returned length give empty strings, not reads past the buffer.
  std::vector<uint8_t> lying = b;
  Put32(lying, 12, 5000);
  Put32(lying, 16, 0xFFFFFFFFu);
  WinDeviceIdentity y;
  CHECK(ParseStorageDeviceDescriptor(lying.data(), lying.size(), &y) && y.vendor.empty() && y.product.empty() && y.revision == "0040");
  // A string with no NUL before the end stops at the end; control bytes become '?'.
  std::vector<uint8_t> unterminated = b;
  unterminated.resize(78);
  Put32(unterminated, 4, 78);
  unterminated[57] = 0x01;
  WinDeviceIdentity z;
  CHECK(ParseStorageDeviceDescriptor(unterminated.data(), unterminated.size(), &z) && z.revision == "0040" && z.product[0] == '?');
  // The descriptor's Size limits the strings even when the call returned more.
  std::vector<uint8_t> sized = b;
  Put32(sized, 4, 60);
  WinDeviceIdentity w;
  CHECK(ParseStorageDeviceDescriptor(sized.data(), sized.size(), &w) && w.vendor == "FUJITSU" && w.product == "MCP");
}

static void PutLun(std::vector<uint8_t>& b, size_t at, uint8_t bus, uint8_t target, uint8_t lun, bool claimed, uint32_t next,
                   uint8_t type, const char* vendor, const char* product) {
  if (b.size() < at + 12 + 36) b.resize(at + 12 + 36);
  b[at] = bus;
  b[at + 1] = target;
  b[at + 2] = lun;
  b[at + 3] = claimed ? 1 : 0;
  Put32(b, at + 4, 36);
  Put32(b, at + 8, next);
  uint8_t* inq = &b[at + 12];
  std::memset(inq, ' ', 36);
  inq[0] = type;
  std::memcpy(inq + 8, vendor, std::strlen(vendor));
  std::memcpy(inq + 16, product, std::strlen(product));
  std::memcpy(inq + 32, "1.00", 4);
}

static void TestAdapter() {
  // Two buses: bus 0 has a CD-ROM (claimed) and an MO (unclaimed); bus 1 has one disk.
  std::vector<uint8_t> b(20, 0);
  b[0] = 2;
  b[4] = 2;
  Put32(b, 8, 20);
  b[12] = 1;
  Put32(b, 16, 116);
  PutLun(b, 20, 0, 3, 0, true, 68, 0x05, "PLEXTOR", "CD-R PX-W4012A");
  PutLun(b, 68, 0, 5, 0, false, 0, 0x07, "FUJITSU", "MCP3130SS");
  PutLun(b, 116, 1, 0, 0, true, 0, 0x00, "SEAGATE", "ST318406LC");
  std::vector<WinAdapterLun> l;
  CHECK(ParseAdapterBusInfo(b.data(), b.size(), &l));
  CHECK(l.size() == 3);
  if (l.size() == 3) {
    CHECK(l[0].target == 3 && l[0].claimed && l[0].peripheralType == 5 && l[0].vendor == "PLEXTOR" && l[0].product == "CD-R PX-W4012A");
    CHECK(l[1].target == 5 && !l[1].claimed && l[1].peripheralType == 7 && l[1].revision == "1.00");
    CHECK(l[2].bus == 1 && l[2].peripheralType == 0 && l[2].vendor == "SEAGATE");
  }
  // A chain that points at itself, or in a cycle, ends (bounded by the LUN count).
  std::vector<uint8_t> loop = b;
  Put32(loop, 68 + 8, 20);  // MO -> CD-ROM -> MO -> ...
  loop[4] = 200;            // the header claims 200 LUNs on bus 0
  std::vector<WinAdapterLun> l2;
  CHECK(ParseAdapterBusInfo(loop.data(), loop.size(), &l2) && l2.size() == 201);
  std::vector<uint8_t> self = b;
  Put32(self, 20 + 8, 20);
  std::vector<WinAdapterLun> l3;
  CHECK(ParseAdapterBusInfo(self.data(), self.size(), &l3) && l3.size() == 2);  // bus 0: one entry; bus 1: one
  // Offsets past the end stop the chain; an entry whose inquiry data is cut short keeps what is there.
  std::vector<uint8_t> past = b;
  Put32(past, 20 + 8, 100000);
  std::vector<WinAdapterLun> l4;
  CHECK(ParseAdapterBusInfo(past.data(), past.size(), &l4) && l4.size() == 2);
  std::vector<uint8_t> cut(b.begin(), b.begin() + 116 + 12 + 20);
  std::vector<WinAdapterLun> l5;
  CHECK(ParseAdapterBusInfo(cut.data(), cut.size(), &l5) && l5.size() == 3 && l5[2].vendor == "SEAGATE" && l5[2].product.empty());
  // A header whose bus table does not fit is refused; no buses is an empty, valid answer.
  std::vector<uint8_t> hdr(8, 0);
  hdr[0] = 4;
  std::vector<WinAdapterLun> l6;
  CHECK(!ParseAdapterBusInfo(hdr.data(), hdr.size(), &l6) && l6.empty());
  std::vector<uint8_t> none(4, 0);
  CHECK(ParseAdapterBusInfo(none.data(), none.size(), &l6) && l6.empty());
  CHECK(!ParseAdapterBusInfo(none.data(), 3, &l6));
}

int main() {
  TestDescriptor();
  TestAdapter();
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
