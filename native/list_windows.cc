// Windows device listing for `mocopy devices`: no administrator needed (handles are opened with no access
// rights, enough for the query IOCTLs). Two sources:
//  1. SetupDi: the present CD-ROM and disk interfaces (GUID_DEVINTERFACE_CDROM / _DISK). Each is opened and asked
//     IOCTL_STORAGE_GET_DEVICE_NUMBER (-> \\.\CdRomN or \\.\PhysicalDriveN, the paths mocopy opens),
//     IOCTL_STORAGE_QUERY_PROPERTY (StorageDeviceProperty: peripheral type, vendor, product, revision, removable,
//     bus) and IOCTL_SCSI_GET_ADDRESS (port:bus:target:lun). An MO drive is a disk with peripheral type 7.
//  2. \\.\Scsi0: .. \\.\Scsi31: (the SCSI port drivers): IOCTL_SCSI_GET_INQUIRY_DATA lists every LUN the adapter
//     found with its INQUIRY data, including ones no class driver claimed (an MO drive Windows has no driver for);
//     those are reported with the adapter's path and their address. Claimed LUNs are already in list 1.
#ifdef _WIN32
#include "list_windows.h"

#include <windows.h>
#include <setupapi.h>
#include <winioctl.h>
#include <ntddscsi.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "win_list_parse.h"

namespace mocopy {

// The parsers read the documented layouts by offset: hold the SDK's structs to them.
static_assert(offsetof(STORAGE_DEVICE_DESCRIPTOR, DeviceType) == 8, "layout");
static_assert(offsetof(STORAGE_DEVICE_DESCRIPTOR, RemovableMedia) == 10, "layout");
static_assert(offsetof(STORAGE_DEVICE_DESCRIPTOR, VendorIdOffset) == 12, "layout");
static_assert(offsetof(STORAGE_DEVICE_DESCRIPTOR, SerialNumberOffset) == 24, "layout");
static_assert(offsetof(STORAGE_DEVICE_DESCRIPTOR, BusType) == 28, "layout");
static_assert(offsetof(SCSI_ADAPTER_BUS_INFO, BusData) == 4 && sizeof(SCSI_BUS_DATA) == 8, "layout");
static_assert(offsetof(SCSI_BUS_DATA, InquiryDataOffset) == 4, "layout");
static_assert(offsetof(SCSI_INQUIRY_DATA, InquiryDataLength) == 4, "layout");
static_assert(offsetof(SCSI_INQUIRY_DATA, NextInquiryDataOffset) == 8, "layout");
static_assert(offsetof(SCSI_INQUIRY_DATA, InquiryData) == 12, "layout");

namespace {

// GUID_DEVINTERFACE_CDROM and GUID_DEVINTERFACE_DISK (ntddstor.h), spelled out: no INITGUID games.
const GUID kCdRomInterface = {0x53f56308, 0xb6bf, 0x11d0, {0x94, 0xf2, 0x00, 0xa0, 0xc9, 0x1e, 0xfb, 0x8b}};
const GUID kDiskInterface = {0x53f56307, 0xb6bf, 0x11d0, {0x94, 0xf2, 0x00, 0xa0, 0xc9, 0x1e, 0xfb, 0x8b}};

HANDLE OpenForQuery(const char* path) {
  return CreateFileA(path, 0, FILE_SHARE_READ | FILE_SHARE_WRITE, nullptr, OPEN_EXISTING, 0, nullptr);
}

bool Describe(const char* interfacePath, std::vector<WinListedDevice>* out) {
  HANDLE h = OpenForQuery(interfacePath);
  if (h == INVALID_HANDLE_VALUE) return false;
  WinListedDevice d;
  d.interfacePath = interfacePath;
  d.source = "setupdi";
  DWORD got = 0;
  STORAGE_DEVICE_NUMBER num;
  memset(&num, 0, sizeof num);
  if (DeviceIoControl(h, IOCTL_STORAGE_GET_DEVICE_NUMBER, nullptr, 0, &num, sizeof num, &got, nullptr)) {
    d.path = (num.DeviceType == FILE_DEVICE_CD_ROM ? std::string("\\\\.\\CdRom") : std::string("\\\\.\\PhysicalDrive")) +
             std::to_string(num.DeviceNumber);
  } else {
    d.path = interfacePath;  // still openable by this path
  }
  STORAGE_PROPERTY_QUERY q;
  memset(&q, 0, sizeof q);
  q.PropertyId = StorageDeviceProperty;
  q.QueryType = PropertyStandardQuery;
  std::vector<uint8_t> buf(1024);
  if (DeviceIoControl(h, IOCTL_STORAGE_QUERY_PROPERTY, &q, sizeof q, buf.data(), static_cast<DWORD>(buf.size()), &got, nullptr)) {
    ParseStorageDeviceDescriptor(buf.data(), got, &d.identity);
  }
  SCSI_ADDRESS a;
  memset(&a, 0, sizeof a);
  if (DeviceIoControl(h, IOCTL_SCSI_GET_ADDRESS, nullptr, 0, &a, sizeof a, &got, nullptr)) {
    d.hasAddress = true;
    d.port = a.PortNumber;
    d.bus = a.PathId;
    d.target = a.TargetId;
    d.lun = a.Lun;
  }
  CloseHandle(h);
  out->push_back(d);
  return true;
}

void ListInterfaces(const GUID& g, std::vector<WinListedDevice>* out, WinListStats* stats) {
  HDEVINFO set = SetupDiGetClassDevsA(&g, nullptr, nullptr, DIGCF_PRESENT | DIGCF_DEVICEINTERFACE);
  if (set == INVALID_HANDLE_VALUE) return;
  for (DWORD i = 0; i < 1024; i++) {
    SP_DEVICE_INTERFACE_DATA ifd;
    memset(&ifd, 0, sizeof ifd);
    ifd.cbSize = sizeof ifd;
    if (!SetupDiEnumDeviceInterfaces(set, nullptr, &g, i, &ifd)) break;
    stats->interfaces++;
    DWORD need = 0;
    SetupDiGetDeviceInterfaceDetailA(set, &ifd, nullptr, 0, &need, nullptr);
    if (need < sizeof(SP_DEVICE_INTERFACE_DETAIL_DATA_A)) continue;
    std::vector<uint8_t> buf(need);
    auto* detail = reinterpret_cast<SP_DEVICE_INTERFACE_DETAIL_DATA_A*>(buf.data());
    detail->cbSize = sizeof(SP_DEVICE_INTERFACE_DETAIL_DATA_A);
    if (!SetupDiGetDeviceInterfaceDetailA(set, &ifd, detail, need, nullptr, nullptr)) continue;
    Describe(detail->DevicePath, out);
  }
  SetupDiDestroyDeviceInfoList(set);
}

void ListPorts(std::vector<WinListedDevice>* out, WinListStats* stats) {
  const size_t classListed = out->size();
  for (int n = 0; n < 32; n++) {
    const std::string path = "\\\\.\\Scsi" + std::to_string(n) + ":";
    HANDLE h = OpenForQuery(path.c_str());
    if (h == INVALID_HANDLE_VALUE) continue;
    stats->ports++;
    std::vector<uint8_t> buf(64 * 1024);
    DWORD got = 0;
    const BOOL ok = DeviceIoControl(h, IOCTL_SCSI_GET_INQUIRY_DATA, nullptr, 0, buf.data(), static_cast<DWORD>(buf.size()), &got, nullptr);
    CloseHandle(h);
    std::vector<WinAdapterLun> luns;
    if (!ok || !ParseAdapterBusInfo(buf.data(), got, &luns)) continue;
    for (const WinAdapterLun& l : luns) {
      stats->adapterLuns++;
      if (l.qualifier != 0) continue;  // "not connected" / no device at this LUN
      bool seen = false;
      for (size_t i = 0; i < classListed; i++) {
        const WinListedDevice& c = (*out)[i];
        if (c.hasAddress && c.port == n && c.bus == l.bus && c.target == l.target && c.lun == l.lun) seen = true;
      }
      if (seen) continue;
      WinListedDevice d;
      d.path = path;
      d.source = "scsi-port";
      d.claimed = l.claimed;
      d.hasAddress = true;
      d.port = n;
      d.bus = l.bus;
      d.target = l.target;
      d.lun = l.lun;
      d.identity.peripheralType = l.peripheralType;
      d.identity.vendor = l.vendor;
      d.identity.product = l.product;
      d.identity.revision = l.revision;
      out->push_back(d);
    }
  }
}

}  // namespace

std::vector<WinListedDevice> WinListDevices(WinListStats* stats) {
  std::vector<WinListedDevice> out;
  ListInterfaces(kCdRomInterface, &out, stats);
  ListInterfaces(kDiskInterface, &out, stats);
  ListPorts(&out, stats);
  return out;
}

}  // namespace mocopy
#endif  // _WIN32
