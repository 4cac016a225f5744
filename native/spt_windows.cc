// Windows backend: IOCTL_SCSI_PASS_THROUGH_DIRECT for large transfers (the caller's buffer in place when it
// meets the adapter's AlignmentMask, an aligned bounce buffer otherwise; split above MaximumTransferLength by
// the TypeScript layer), and the buffered IOCTL_SCSI_PASS_THROUGH for small ones. Paths: \\.\CdRom0,
// \\.\PhysicalDrive2, \\.\E:. Compiled in CI with mingw-w64; not run there (no Windows host).
#ifdef _WIN32
#include "passthrough.h"
#include "spt_clamp.h"

#include <windows.h>
#include <winioctl.h>
#include <ntddscsi.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <malloc.h>
#include <vector>

namespace mocopy {

namespace {

// Direct: the data stays in the caller's buffer; sense follows the header in our struct.
struct SptdWithSense {
  SCSI_PASS_THROUGH_DIRECT sptd;
  ULONG filler;  // keeps the sense buffer aligned
  UCHAR sense[kSenseBufferSize];
};

// Buffered: small transfers are copied through a bounce area after the header.
constexpr size_t kBufferedMax = 4096;
struct SptWithBuffers {
  SCSI_PASS_THROUGH spt;
  ULONG filler;
  UCHAR sense[kSenseBufferSize];
  UCHAR data[kBufferedMax];
};

void FillWin(OsError* err, DWORD code, const char* syscall) {
  err->oscode = code;
  err->syscall = syscall;
  switch (code) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_DRIVE:
    case ERROR_BAD_UNIT:
    case ERROR_DEV_NOT_EXIST: err->errnum = ENOENT; err->code = "ENOENT"; break;
    case ERROR_INVALID_NAME:  // "\\.\bad<>name", "\\.\": not a path at all
    case ERROR_BAD_PATHNAME:
    case ERROR_FILENAME_EXCED_RANGE: err->errnum = EINVAL; err->code = "EINVAL"; break;
    case ERROR_INVALID_HANDLE: err->errnum = EBADF; err->code = "EBADF"; break;
    case ERROR_ACCESS_DENIED: err->errnum = EACCES; err->code = "EACCES"; break;
    case ERROR_INVALID_FUNCTION:
    case ERROR_NOT_SUPPORTED: err->errnum = ENOTTY; err->code = "ENOTTY"; break;
    case ERROR_INVALID_PARAMETER: err->errnum = EINVAL; err->code = "EINVAL"; break;
    case ERROR_NOT_READY: err->errnum = EIO; err->code = "ENOMEDIUM"; break;
    case ERROR_SHARING_VIOLATION: err->errnum = EBUSY; err->code = "EBUSY"; break;
    case ERROR_SEM_TIMEOUT: err->errnum = ETIMEDOUT; err->code = "ETIMEDOUT"; break;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY: err->errnum = ENOMEM; err->code = "ENOMEM"; break;
    default: err->errnum = EIO; err->code = "EIO"; break;
  }
  char buf[512] = {0};
  DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, code, 0, buf, sizeof buf - 1, nullptr);
  while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = 0;
  err->message = n ? buf : "Windows error";
  if (code == ERROR_ACCESS_DENIED) err->message += " (SCSI pass-through needs an administrator: run the station as Administrator)";
}

UCHAR DataIn(Direction d) {
  switch (d) {
    case Direction::In: return SCSI_IOCTL_DATA_IN;
    case Direction::Out: return SCSI_IOCTL_DATA_OUT;
    default: return SCSI_IOCTL_DATA_UNSPECIFIED;
  }
}

// TimeOutValue is in seconds; round up so a 500 ms timeout is not 0 (= infinite on some ports).
ULONG TimeoutSeconds(uint32_t ms) { return ms == 0 ? 1 : (ms + 999) / 1000; }

bool AdapterProperties(HANDLE h, ULONG* alignmentMask, ULONG* maxTransfer) {
  STORAGE_PROPERTY_QUERY q;
  memset(&q, 0, sizeof q);
  q.PropertyId = StorageAdapterProperty;
  q.QueryType = PropertyStandardQuery;
  STORAGE_ADAPTER_DESCRIPTOR desc;
  memset(&desc, 0, sizeof desc);
  DWORD got = 0;
  if (!DeviceIoControl(h, IOCTL_STORAGE_QUERY_PROPERTY, &q, sizeof q, &desc, sizeof desc, &got, nullptr)) return false;
  *alignmentMask = desc.AlignmentMask;
  *maxTransfer = desc.MaximumTransferLength;
  return true;
}

// Linux DID_ERROR, the host byte the TypeScript layer already turns into a TransportError: reported when the
// driver claims to have moved more data than was asked for (the copy and the residual are clamped regardless).
constexpr uint16_t kHostError = 0x07;

constexpr size_t kSenseCapacity = sizeof(SptdWithSense::sense) < sizeof(Response::sense) ? sizeof(SptdWithSense::sense)
                                                                                          : sizeof(Response::sense);
static_assert(sizeof(SptWithBuffers::sense) >= kSenseCapacity, "both pass-through structs hold kSenseCapacity");

// The driver-reported lengths, clamped (spt_clamp.h), into *resp; sense copied from the backend's sense area.
void FillResponse(const SptLengths& n, UCHAR scsiStatus, const UCHAR* sense, Response* resp) {
  resp->status = scsiStatus;
  resp->hostStatus = n.dataOverrun ? kHostError : 0;
  resp->driverStatus = 0;
  resp->residual = static_cast<int64_t>(n.residual);
  resp->senseLen = n.senseLen;
  if (n.senseLen) memcpy(resp->sense, sense, n.senseLen);
}

uint64_t NowUs() {
  LARGE_INTEGER f, c;
  QueryPerformanceFrequency(&f);
  QueryPerformanceCounter(&c);
  return static_cast<uint64_t>(c.QuadPart * 1000000.0 / static_cast<double>(f.QuadPart));
}

}  // namespace

OsHandle OsInvalidHandle() { return INVALID_HANDLE_VALUE; }

bool OsOpen(const std::string& path, bool write, OsHandle* out, OsError* err) {
  // IOCTL_SCSI_PASS_THROUGH(_DIRECT) is defined with FILE_READ_ACCESS | FILE_WRITE_ACCESS: Windows refuses it
  // (ERROR_ACCESS_DENIED) on a handle opened for reading only, whatever the CDB. So the handle is always opened
  // read-write (docs/windows.md); `write` matters only on Linux, where O_RDONLY on an sg node limits the commands.
  (void)write;
  const DWORD access = GENERIC_READ | GENERIC_WRITE;
  HANDLE h = CreateFileA(path.c_str(), access, FILE_SHARE_READ | FILE_SHARE_WRITE, nullptr, OPEN_EXISTING, 0, nullptr);
  if (h == INVALID_HANDLE_VALUE) {
    FillWin(err, GetLastError(), "CreateFile");
    return false;
  }
  *out = h;
  return true;
}

bool OsExecute(OsHandle h, const Request& req, Response* resp, OsError* err) {
  ULONG alignmentMask = 0, maxTransfer = 0;
  AdapterProperties(h, &alignmentMask, &maxTransfer);
  bool aligned = (reinterpret_cast<uintptr_t>(req.data) & alignmentMask) == 0;
  DWORD got = 0;
  uint64_t t0 = NowUs();
  if (req.dataLen > kBufferedMax) {
    // The direct path needs a buffer aligned to the adapter's AlignmentMask. JS cannot choose the address of a
    // Buffer, so an unaligned one goes through an aligned bounce buffer here (one copy, only when needed).
    UCHAR* io = req.data;
    void* bounce = nullptr;
    if (!aligned) {
      bounce = _aligned_malloc(req.dataLen, static_cast<size_t>(alignmentMask) + 1);
      if (!bounce) {
        FillWin(err, ERROR_NOT_ENOUGH_MEMORY, "_aligned_malloc");
        return false;
      }
      io = static_cast<UCHAR*>(bounce);
      if (req.direction == Direction::Out) memcpy(io, req.data, req.dataLen);
    }
    SptdWithSense s;
    memset(&s, 0, sizeof s);
    s.sptd.Length = sizeof(SCSI_PASS_THROUGH_DIRECT);
    s.sptd.CdbLength = static_cast<UCHAR>(req.cdbLen);
    s.sptd.SenseInfoLength = static_cast<UCHAR>(kSenseBufferSize);
    s.sptd.DataIn = DataIn(req.direction);
    s.sptd.DataTransferLength = static_cast<ULONG>(req.dataLen);
    s.sptd.TimeOutValue = TimeoutSeconds(req.timeoutMs);
    s.sptd.DataBuffer = io;
    s.sptd.SenseInfoOffset = static_cast<ULONG>(offsetof(SptdWithSense, sense));
    memcpy(s.sptd.Cdb, req.cdb, req.cdbLen);
    BOOL ok = DeviceIoControl(h, IOCTL_SCSI_PASS_THROUGH_DIRECT, &s, sizeof s, &s, sizeof s, &got, nullptr);
    DWORD lastError = ok ? 0 : GetLastError();
    // The bounce buffer is req.dataLen bytes; in place, the caller's buffer is. Either way never more than asked.
    const SptLengths n = ClampSptLengths(kSenseCapacity, req.dataLen, bounce ? req.dataLen : kSptNoBounce,
                                         s.sptd.SenseInfoLength, s.sptd.DataTransferLength, s.sptd.ScsiStatus);
    if (bounce) {
      if (ok && req.direction == Direction::In && n.transferred) memcpy(req.data, bounce, n.transferred);
      _aligned_free(bounce);
    }
    if (!ok) {
      FillWin(err, lastError, "DeviceIoControl(IOCTL_SCSI_PASS_THROUGH_DIRECT)");
      return false;
    }
    FillResponse(n, s.sptd.ScsiStatus, s.sense, resp);
  } else {
    std::vector<UCHAR> storage(sizeof(SptWithBuffers));
    SptWithBuffers* s = reinterpret_cast<SptWithBuffers*>(storage.data());
    s->spt.Length = sizeof(SCSI_PASS_THROUGH);
    s->spt.CdbLength = static_cast<UCHAR>(req.cdbLen);
    s->spt.SenseInfoLength = static_cast<UCHAR>(kSenseBufferSize);
    s->spt.DataIn = DataIn(req.direction);
    s->spt.DataTransferLength = static_cast<ULONG>(req.dataLen);
    s->spt.TimeOutValue = TimeoutSeconds(req.timeoutMs);
    s->spt.DataBufferOffset = offsetof(SptWithBuffers, data);
    s->spt.SenseInfoOffset = static_cast<ULONG>(offsetof(SptWithBuffers, sense));
    memcpy(s->spt.Cdb, req.cdb, req.cdbLen);
    if (req.direction == Direction::Out && req.dataLen) memcpy(s->data, req.data, req.dataLen);
    DWORD len = static_cast<DWORD>(offsetof(SptWithBuffers, data) + req.dataLen);
    if (!DeviceIoControl(h, IOCTL_SCSI_PASS_THROUGH, s, len, s, len, &got, nullptr)) {
      FillWin(err, GetLastError(), "DeviceIoControl(IOCTL_SCSI_PASS_THROUGH)");
      return false;
    }
    const SptLengths n = ClampSptLengths(kSenseCapacity, req.dataLen, sizeof s->data, s->spt.SenseInfoLength,
                                         s->spt.DataTransferLength, s->spt.ScsiStatus);
    if (req.direction == Direction::In && n.transferred) memcpy(req.data, s->data, n.transferred);
    FillResponse(n, s->spt.ScsiStatus, s->sense, resp);
  }
  resp->durationUs = NowUs() - t0;
  return true;
}

bool OsLimits(OsHandle h, Limits* out, OsError* err) {
  ULONG alignmentMask = 0, maxTransfer = 0;
  if (!AdapterProperties(h, &alignmentMask, &maxTransfer)) {
    FillWin(err, GetLastError(), "DeviceIoControl(IOCTL_STORAGE_QUERY_PROPERTY)");
    return false;
  }
  out->maxTransferBytes = maxTransfer;
  out->alignment = alignmentMask + 1;
  return true;
}

void OsClose(OsHandle h) {
  if (h != INVALID_HANDLE_VALUE) CloseHandle(h);
}

}  // namespace mocopy
#endif  // _WIN32
