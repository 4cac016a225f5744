// Linux backend, the sg driver's asynchronous interface (drivers/scsi/sg.c; the "sg v3" write()/read() API):
// a command is submitted by write() of its sg_io_hdr on the open /dev/sgN descriptor and collected by read() of
// one, so no thread blocks on it; the addon learns of completions by polling the descriptor (uv_poll_t, addon.cc).
// What this file relies on, from sg.c (Linux 4.x to 6.x):
//  - write() of a v3 header turns command queuing on for the descriptor (sfp->cmd_q) and refuses a command past
//    SG_MAX_QUEUE (16) requests held by the descriptor, in flight or completed-but-unread, with EDOM;
//  - read() with O_NONBLOCK returns one completed request (any, while SG_SET_FORCE_PACK_ID is off: its pack_id
//    names it) or EAGAIN; its header is copied out before the data and sense are, so a read() that fails while
//    copying still names its command;
//  - without SG_FLAG_DIRECT_IO the data goes through kernel buffers: data-out is copied in inside write(), data-in
//    copied out inside read(). The kernel never touches the caller's memory between the two, nor after close():
//    requests still outstanding at close() are orphaned, run to completion and freed by a kernel worker with no
//    user address space (blk_rq_unmap_user copies nothing then);
//  - poll() reports EPOLLIN while a completed request waits and EPOLLHUP once the device is detaching; a
//    non-blocking read() then still answers EAGAIN, so the hang-up has to be asked for (OsAsyncHungUp).
#ifdef __linux__
#include "passthrough.h"
#include "sg_header_linux.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/major.h>
#include <poll.h>
#include <scsi/sg.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#ifndef SG_FLAG_Q_AT_TAIL
#define SG_FLAG_Q_AT_TAIL 0x10
#endif

namespace mocopy {

// The sg reserved buffer asked for on a descriptor in sg-async mode (see OsAsyncProbe).
constexpr int kStreamReserve = 1 << 20;

bool OsAsyncProbe(OsHandle fd, std::string* whyNot) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    *whyNot = std::string("fstat failed: ") + strerror(errno);
    return false;
  }
  if (S_ISBLK(st.st_mode)) {
    *whyNot = "a block node: the sg asynchronous interface exists only on /dev/sgN, so SG_IO runs on the libuv thread pool";
    return false;
  }
  if (!S_ISCHR(st.st_mode)) {
    *whyNot = "not a character device (no sg asynchronous interface)";
    return false;
  }
  if (major(st.st_rdev) != SCSI_GENERIC_MAJOR) {
    *whyNot = "a character device that is not an sg node (major " + std::to_string(major(st.st_rdev)) + ", sg is " +
              std::to_string(SCSI_GENERIC_MAJOR) + ")";
    return false;
  }
  const int fl = fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_ACCMODE) != O_RDWR) {
    // write() needs a descriptor open for writing (EBADF otherwise); SG_IO does not (sg then allows only the
    // commands it deems read-only, as before).
    *whyNot = "opened read-only (write: false): the sg write()/read() interface needs a read-write descriptor, so SG_IO runs on the libuv thread pool";
    return false;
  }
  int version = 0;
  if (ioctl(fd, SG_GET_VERSION_NUM, &version) < 0) {
    *whyNot = std::string("ioctl(SG_GET_VERSION_NUM) failed: ") + strerror(errno);
    return false;
  }
  if (version < 30000) {
    *whyNot = "sg driver version " + std::to_string(version) + " has no v3 interface";
    return false;
  }
  // As sg_dd does: a reserved buffer as large as a stream's command (sg's default is 32 KiB), so a command that
  // finds it free needs no kernel pages of its own. sg keeps one per descriptor for one command at a time, and
  // caps it at the queue's max_sectors, so the transfer limits read after this stay right. A refusal (ENOMEM)
  // only leaves the default.
  int reserve = 0;
  if (ioctl(fd, SG_GET_RESERVED_SIZE, &reserve) == 0 && reserve < kStreamReserve) {
    int want = kStreamReserve;
    (void)ioctl(fd, SG_SET_RESERVED_SIZE, &want);
  }
  return true;
}

SubmitStatus OsAsyncSubmit(OsHandle fd, int32_t tag, const Request& req, uint8_t* sense, OsError* err) {
  sg_io_hdr_t h = SgHeaderFor(req, sense);
  // sg queues a v3 command at the head of the device's queue unless told otherwise: at the tail, several
  // commands in flight reach the device in the order they were submitted (sequential streams stay sequential).
  h.flags = SG_FLAG_Q_AT_TAIL;
  h.pack_id = tag;
  for (;;) {
    ssize_t n = write(fd, &h, sizeof h);
    if (n == static_cast<ssize_t>(sizeof h)) return SubmitStatus::Ok;
    if (n >= 0) {
      OsFillErrno(err, EIO, "write(sg)");
      return SubmitStatus::Failed;
    }
    if (errno == EINTR) continue;
    const int e = errno;
    OsFillErrno(err, e, "write(sg)");
    if (e == EDOM || e == EAGAIN || e == EBUSY) return SubmitStatus::QueueFull;
    return SubmitStatus::Failed;
  }
}

CollectStatus OsAsyncCollect(OsHandle fd, Completion* c, OsError* err) {
  for (;;) {
    sg_io_hdr_t h;
    memset(&h, 0, sizeof h);  // pack_id 0 is never a tag: a header the kernel filled before failing shows
    ssize_t n = read(fd, &h, sizeof h);
    if (n == static_cast<ssize_t>(sizeof h)) {
      c->tag = h.pack_id;
      c->tagged = true;
      c->status = h.status;
      c->hostStatus = h.host_status;
      c->driverStatus = h.driver_status;
      // DRIVER_SENSE is obsolete on new kernels: the sense length written is what counts (as for SG_IO).
      c->senseLen = h.sb_len_wr;
      c->residual = h.resid;
      return CollectStatus::Got;
    }
    if (n >= 0) {
      c->tagged = false;
      OsFillErrno(err, EIO, "read(sg)");
      return CollectStatus::Failed;
    }
    if (errno == EINTR && h.pack_id == 0) continue;
    if (errno == EAGAIN) return CollectStatus::Empty;
    OsFillErrno(err, errno, "read(sg)");
    c->tagged = h.pack_id != 0;
    c->tag = h.pack_id;
    return CollectStatus::Failed;
  }
}

bool OsAsyncHungUp(OsHandle fd, OsError* err) {
  struct pollfd p;
  p.fd = fd;
  p.events = POLLIN;
  p.revents = 0;
  int rc;
  do rc = poll(&p, 1, 0);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    OsFillErrno(err, errno, "poll(sg)");
    return true;
  }
  if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) {
    OsFillErrno(err, (p.revents & POLLNVAL) ? EBADF : ENODEV, "poll(sg)");
    err->message = (p.revents & POLLNVAL) ? "the descriptor is not open" : "the device is gone (the sg node hung up: detached or removed)";
    return true;
  }
  return false;
}

}  // namespace mocopy
#endif  // __linux__
