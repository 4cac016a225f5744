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

#ifdef __linux__
// The sg driver's asynchronous interface (sg_async_linux.cc), /dev/sgN only: a command is submitted by write()
// of its sg_io_hdr (v3) and collected by read() of one, so no thread waits on it. Block nodes have no such
// interface and keep OsExecute (SG_IO) on the libuv pool. Windows has no counterpart here (spt_windows.cc).

constexpr int kSgMaxQueue = 16;  // SG_MAX_QUEUE: commands one sg file descriptor holds (in flight or unread)

// Whether the asynchronous interface can be used on this descriptor; if not, *whyNot says why (for -v).
bool OsAsyncProbe(OsHandle h, std::string* whyNot);

enum class SubmitStatus { Ok, QueueFull, Failed };
// Submits with pack_id = tag (any completed command is returned by read(): SG_SET_FORCE_PACK_ID stays off) and
// SG_FLAG_Q_AT_TAIL, so queued commands reach the device in submission order. The kernel writes the sense into
// `sense` (kSenseBufferSize bytes) and, for data-in, the data into req.data when the command is read back: both
// must stay valid until OsAsyncCollect returns it or the descriptor is closed. EINTR is retried; EDOM (the fd's
// queue is full), EAGAIN and EBUSY are QueueFull; anything else is Failed with *err (nothing was submitted).
SubmitStatus OsAsyncSubmit(OsHandle h, int32_t tag, const Request& req, uint8_t* sense, OsError* err);

struct Completion {
  int32_t tag = 0;
  bool tagged = false;  // on Failed: the failure belongs to command `tag` alone (its header was returned)
  uint8_t status = 0;
  uint16_t hostStatus = 0;
  uint16_t driverStatus = 0;
  size_t senseLen = 0;
  int64_t residual = 0;
};
enum class CollectStatus { Got, Empty, Failed };
// Reads back one completed command (Got), or finds none ready (Empty: EAGAIN), or fails (Failed, *err; when
// c->tagged the error is that command's, else the descriptor's). EINTR is retried.
CollectStatus OsAsyncCollect(OsHandle h, Completion* c, OsError* err);

// poll() with no wait: true when the descriptor reports POLLHUP/POLLERR/POLLNVAL (the device is detaching),
// with *err filled (ENODEV).
bool OsAsyncHungUp(OsHandle h, OsError* err);

uint64_t OsMonotonicUs();
void OsFillErrno(OsError* err, int e, const char* syscall);
#endif

}  // namespace mocopy
