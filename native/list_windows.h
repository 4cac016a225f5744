// Windows device listing (list_windows.cc), exported by the addon as listDevices() on win32.
#pragma once
#ifdef _WIN32
#include <string>
#include <vector>

#include "win_list_parse.h"

namespace mocopy {

struct WinListedDevice {
  std::string path;           // what mocopy opens: \\.\CdRomN, \\.\PhysicalDriveN, or \\.\ScsiN: for an unclaimed LUN
  std::string interfacePath;  // the SetupDi interface path (\\?\scsi#cdrom&ven_...), empty for port LUNs
  std::string source;         // "setupdi" or "scsi-port"
  bool claimed = true;        // false: no class driver owns the LUN
  bool hasAddress = false;
  int port = 0, bus = 0, target = 0, lun = 0;
  WinDeviceIdentity identity;
};

struct WinListStats {
  unsigned interfaces = 0;    // SetupDi interfaces seen (CD-ROM + disk)
  unsigned ports = 0;         // \\.\ScsiN: adapters that opened
  unsigned adapterLuns = 0;   // LUNs the adapters reported
};

std::vector<WinListedDevice> WinListDevices(WinListStats* stats);

}  // namespace mocopy
#endif  // _WIN32
