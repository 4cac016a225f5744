// Post-IOCTL length handling of the Windows backend (spt_windows.cc), kept free of Windows headers so it can be
// unit-tested on any host (native/test/spt_clamp_test.cc, scripts/test-windows-clamp.sh).
//
// After IOCTL_SCSI_PASS_THROUGH(_DIRECT) the driver writes back SenseInfoLength and DataTransferLength. Both are
// only claims: a buggy or hostile driver (or filter driver) can report more than the buffers we gave it hold.
// Nothing the driver reports may size a memcpy or the residual without being clamped here first.
#pragma once
#include <cstddef>
#include <cstdint>

namespace mocopy {

// Pass as bounceCapacity when the data is not copied through an intermediate buffer (direct I/O in place).
constexpr size_t kSptNoBounce = SIZE_MAX;

struct SptLengths {
  size_t senseLen = 0;          // sense bytes to copy: <= senseCapacity; 0 when ScsiStatus is GOOD
  size_t transferred = 0;       // data bytes moved: <= requested and <= bounceCapacity
  size_t residual = 0;          // requested - transferred (never negative)
  bool dataOverrun = false;     // the driver reported more data than requested / than the buffer holds
  bool senseTruncated = false;  // the driver reported more sense than senseCapacity (only when senseLen counts)
};

// senseCapacity:    bytes of sense the backend can hold (min of its sense area and Response::sense)
// requested:        DataTransferLength the backend asked for (the caller's buffer length)
// bounceCapacity:   size of the buffer the data is copied out of (bounce / embedded area), or kSptNoBounce
// reportedSense:    SenseInfoLength as written back by the driver
// reportedTransfer: DataTransferLength as written back by the driver
// scsiStatus:       ScsiStatus as written back by the driver (sense is only taken when it is not GOOD)
constexpr SptLengths ClampSptLengths(size_t senseCapacity, size_t requested, size_t bounceCapacity,
                                     uint32_t reportedSense, uint32_t reportedTransfer,
                                     uint8_t scsiStatus) noexcept {
  SptLengths r;
  if (scsiStatus != 0) {
    const size_t sense = static_cast<size_t>(reportedSense);
    r.senseTruncated = sense > senseCapacity;
    r.senseLen = r.senseTruncated ? senseCapacity : sense;
  }
  const size_t limit = requested < bounceCapacity ? requested : bounceCapacity;
  const size_t moved = static_cast<size_t>(reportedTransfer);
  r.dataOverrun = moved > limit;
  r.transferred = r.dataOverrun ? limit : moved;
  r.residual = requested - r.transferred;  // transferred <= limit <= requested
  return r;
}

}  // namespace mocopy
