// One SCSI pass-through interface, one backend per OS (sg_linux.cc, spt_windows.cc).
// The backend knows the OS ioctl and nothing of N-API or of mocopy's protocol.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace mocopy {

#ifdef _WIN32
using OsHandle = void*;  // HANDLE
#else
using OsHandle = int;    // file descriptor
#endif

enum class Direction { None = 0, In = 1, Out = 2 };

constexpr size_t kSenseBufferSize = 96;  // >= 64: room for descriptor-format sense

struct OsError {
  int errnum = 0;         // POSIX errno, or a mapped one on Windows
  unsigned long oscode = 0;  // raw OS code (GetLastError on Windows, errno on Linux)
  std::string code;       // "ENOENT", "EACCES", ...
  std::string syscall;    // "open", "ioctl(SG_IO)", "DeviceIoControl(IOCTL_SCSI_PASS_THROUGH_DIRECT)"
  std::string message;    // strerror / FormatMessage text
};

struct Request {
  const uint8_t* cdb = nullptr;
  size_t cdbLen = 0;
  Direction direction = Direction::None;
  uint8_t* data = nullptr;
  size_t dataLen = 0;
  uint32_t timeoutMs = 0;
};

struct Response {
  uint8_t status = 0;
  uint16_t hostStatus = 0;
  uint16_t driverStatus = 0;
  uint8_t sense[kSenseBufferSize] = {0};
  size_t senseLen = 0;
  int64_t residual = 0;
  uint64_t durationUs = 0;
};

struct Limits {
  uint64_t maxTransferBytes = 0;  // 0 = unknown
  uint32_t alignment = 1;
  uint64_t reservedSize = 0;      // Linux SG_GET_RESERVED_SIZE (0 if not available)
  uint64_t maxSectors = 0;        // Linux BLKSECTGET (block nodes), in 512-byte sectors
};

// All return true on success, false with *err filled.
bool OsOpen(const std::string& path, bool write, OsHandle* out, OsError* err);
bool OsExecute(OsHandle h, const Request& req, Response* resp, OsError* err);
bool OsLimits(OsHandle h, Limits* out, OsError* err);
void OsClose(OsHandle h);
OsHandle OsInvalidHandle();

}  // namespace mocopy
