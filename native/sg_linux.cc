// Linux backend: SG_IO with sg_io_hdr v3 on /dev/sgN (preferred) and on block nodes (/dev/sdX, /dev/srN).
// The addon uses OsExecute on block nodes and where the sg asynchronous interface (sg_async_linux.cc) is off.
#ifdef __linux__
#include "passthrough.h"
#include "sg_header_linux.h"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <linux/fs.h>
#include <scsi/sg.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace mocopy {

static const char* ErrnoName(int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOTTY: return "ENOTTY";
    case EINVAL: return "EINVAL";
    case EIO: return "EIO";
    case ENOMEM: return "ENOMEM";
    case ENOMEDIUM: return "ENOMEDIUM";
    case EROFS: return "EROFS";
    case EBUSY: return "EBUSY";
    case ENXIO: return "ENXIO";
    case ENODEV: return "ENODEV";
    case EBADF: return "EBADF";
    case EISDIR: return "EISDIR";
    case EAGAIN: return "EAGAIN";
    case EFAULT: return "EFAULT";
    case EOVERFLOW: return "EOVERFLOW";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EDOM: return "EDOM";
    case EINTR: return "EINTR";
    case ECANCELED: return "ECANCELED";
    case ESHUTDOWN: return "ESHUTDOWN";
    case EMSGSIZE: return "EMSGSIZE";
    default: return "EUNKNOWN";
  }
}

static void Fill(OsError* err, int e, const char* syscall) { OsFillErrno(err, e, syscall); }

void OsFillErrno(OsError* err, int e, const char* syscall) {
  err->errnum = e;
  err->oscode = static_cast<unsigned long>(e);
  err->code = ErrnoName(e);
  err->syscall = syscall;
  err->message = strerror(e);
}

OsHandle OsInvalidHandle() { return -1; }

bool OsOpen(const std::string& path, bool write, OsHandle* out, OsError* err) {
  // O_NONBLOCK: opening a removable drive must not wait for (or fail on) a medium;
  // sg nodes are opened read-write because the sg driver checks write access for most commands.
  int flags = (write ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC;
  int fd = open(path.c_str(), flags);
  if (fd < 0 && !write && errno == EACCES) {
    // fall through: report the read-only failure as is
  }
  if (fd < 0) {
    Fill(err, errno, "open");
    return false;
  }
  *out = fd;
  return true;
}

uint64_t OsMonotonicUs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

bool OsExecute(OsHandle fd, const Request& req, Response* resp, OsError* err) {
  sg_io_hdr_t h = SgHeaderFor(req, resp->sense);
  uint64_t t0 = OsMonotonicUs();
  int rc = ioctl(fd, SG_IO, &h);
  uint64_t t1 = OsMonotonicUs();
  if (rc < 0) {
    Fill(err, errno, "ioctl(SG_IO)");
    return false;
  }
  resp->status = h.status;
  resp->hostStatus = h.host_status;
  resp->driverStatus = h.driver_status;
  // DRIVER_SENSE is obsolete on new kernels: the sense length written is what counts.
  resp->senseLen = h.sb_len_wr;
  resp->residual = h.resid;
  resp->durationUs = t1 - t0;
  return true;
}

bool OsLimits(OsHandle fd, Limits* out, OsError* err) {
  int version = 0;
  if (ioctl(fd, SG_GET_VERSION_NUM, &version) < 0) {
    Fill(err, errno, "ioctl(SG_GET_VERSION_NUM)");
    return false;
  }
  int reserved = 0;
  if (ioctl(fd, SG_GET_RESERVED_SIZE, &reserved) == 0 && reserved > 0) out->reservedSize = static_cast<uint64_t>(reserved);
  unsigned short maxSectors = 0;
  if (ioctl(fd, BLKSECTGET, &maxSectors) == 0 && maxSectors > 0) out->maxSectors = maxSectors;
  uint64_t m = 0;
  if (out->maxSectors) m = out->maxSectors * 512ull;
  if (out->reservedSize && (m == 0 || out->reservedSize < m)) m = out->reservedSize;
  out->maxTransferBytes = m;
  out->alignment = 1;  // SG_IO bounces unaligned buffers; alignment only matters for direct I/O
  return true;
}

void OsClose(OsHandle fd) {
  if (fd >= 0) close(fd);
}

}  // namespace mocopy
#endif  // __linux__
