// Parsers for what Windows storage drivers return to the device listing (list_windows.cc): the
// STORAGE_DEVICE_DESCRIPTOR of IOCTL_STORAGE_QUERY_PROPERTY and the SCSI_ADAPTER_BUS_INFO of
// IOCTL_SCSI_GET_INQUIRY_DATA. Plain byte parsing with the documented layouts (list_windows.cc static_asserts them
// against the SDK's structs), every offset bounds-checked and every chain bounded: a driver's buffer is not trusted.
// No <windows.h>: unit-tested natively and under Wine (native/test/win_list_parse_test.cc).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mocopy {

struct WinDeviceIdentity {
  uint8_t peripheralType = 0x1f;  // SCSI peripheral device type (STORAGE_DEVICE_DESCRIPTOR.DeviceType)
  bool removable = false;
  uint32_t busType = 0;           // STORAGE_BUS_TYPE: 1 SCSI, 7 USB, 11 SATA, ...
  std::string vendor, product, revision, serial;
};

struct WinAdapterLun {
  uint8_t bus = 0, target = 0, lun = 0;
  bool claimed = false;           // a class driver (cdrom.sys, disk.sys) owns it: it also has a \\.\CdRomN / PhysicalDriveN
  uint8_t peripheralType = 0x1f;
  uint8_t qualifier = 0;
  std::string vendor, product, revision;
};

inline uint32_t WinLe32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

// Printable ASCII, trailing blanks trimmed (INQUIRY strings are blank-padded; descriptor strings NUL-terminated).
inline std::string WinCleanAscii(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n && p[i] != 0; i++) s.push_back(p[i] >= 0x20 && p[i] < 0x7f ? static_cast<char>(p[i]) : '?');
  while (!s.empty() && s.back() == ' ') s.pop_back();
  size_t b = 0;
  while (b < s.size() && s[b] == ' ') b++;
  return s.substr(b);
}

// A NUL-terminated string at `off` inside buf[0..len); offset 0 means "none" (the descriptor's convention).
inline std::string WinStringAt(const uint8_t* buf, size_t len, uint32_t off) {
  if (off == 0 || off >= len) return std::string();
  return WinCleanAscii(buf + off, len - off);
}

// STORAGE_DEVICE_DESCRIPTOR: Version@0 Size@4 DeviceType@8 Modifier@9 RemovableMedia@10 CommandQueueing@11
// VendorIdOffset@12 ProductIdOffset@16 ProductRevisionOffset@20 SerialNumberOffset@24 BusType@28 (32 bytes min).
// `len` is what DeviceIoControl returned; the descriptor's own Size may claim more (then only `len` is used).
inline bool ParseStorageDeviceDescriptor(const uint8_t* buf, size_t len, WinDeviceIdentity* out) {
  if (len < 32) return false;
  uint32_t size = WinLe32(buf + 4);
  if (size < 32) return false;
  if (size < len) len = size;
  out->peripheralType = buf[8] & 0x1f;
  out->removable = buf[10] != 0;
  out->busType = WinLe32(buf + 28);
  out->vendor = WinStringAt(buf, len, WinLe32(buf + 12));
  out->product = WinStringAt(buf, len, WinLe32(buf + 16));
  out->revision = WinStringAt(buf, len, WinLe32(buf + 20));
  out->serial = WinStringAt(buf, len, WinLe32(buf + 24));
  return true;
}

// SCSI_ADAPTER_BUS_INFO: NumberOfBuses@0, then SCSI_BUS_DATA[NumberOfBuses] from 4, 8 bytes each:
// NumberOfLogicalUnits@0 InitiatorBusId@1 InquiryDataOffset@4. Each bus's SCSI_INQUIRY_DATA chain:
// PathId@0 TargetId@1 Lun@2 DeviceClaimed@3 InquiryDataLength@4 NextInquiryDataOffset@8 InquiryData@12.
// Offsets are from the start of the buffer; 0 ends a chain. At most NumberOfLogicalUnits entries per bus and
// 4096 in all, so a looping chain ends. Returns false if the header itself does not fit.
inline bool ParseAdapterBusInfo(const uint8_t* buf, size_t len, std::vector<WinAdapterLun>* out) {
  if (len < 4) return false;
  const unsigned buses = buf[0];
  if (4 + static_cast<size_t>(buses) * 8 > len) return false;
  size_t total = 0;
  for (unsigned b = 0; b < buses; b++) {
    const uint8_t* bd = buf + 4 + b * 8;
    unsigned left = bd[0];
    uint32_t off = WinLe32(bd + 4);
    while (off != 0 && left > 0 && total < 4096) {
      if (off > len || len - off < 12) break;
      const uint8_t* e = buf + off;
      WinAdapterLun l;
      l.bus = e[0];
      l.target = e[1];
      l.lun = e[2];
      l.claimed = e[3] != 0;
      uint32_t ilen = WinLe32(e + 4);
      const size_t avail = len - off - 12;
      if (ilen > avail) ilen = static_cast<uint32_t>(avail);
      const uint8_t* inq = e + 12;
      if (ilen >= 1) {
        l.peripheralType = inq[0] & 0x1f;
        l.qualifier = inq[0] >> 5;
      }
      if (ilen >= 16) l.vendor = WinCleanAscii(inq + 8, 8);
      if (ilen >= 32) l.product = WinCleanAscii(inq + 16, 16);
      if (ilen >= 36) l.revision = WinCleanAscii(inq + 32, 4);
      out->push_back(l);
      total++;
      left--;
      const uint32_t next = WinLe32(e + 8);
      if (next == off) break;
      off = next;
    }
  }
  return true;
}

}  // namespace mocopy
