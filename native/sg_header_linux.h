// The sg_io_hdr (v3) describing one request: the same for SG_IO on the libuv pool (sg_linux.cc) and for the
// asynchronous write() (sg_async_linux.cc), which adds only its flags and pack ID.
#pragma once
#ifdef __linux__
#include <scsi/sg.h>

#include <cstring>

#include "passthrough.h"

namespace mocopy {

inline sg_io_hdr_t SgHeaderFor(const Request& req, uint8_t* sense) {
  sg_io_hdr_t h;
  memset(&h, 0, sizeof h);
  h.interface_id = 'S';
  switch (req.direction) {
    case Direction::In: h.dxfer_direction = SG_DXFER_FROM_DEV; break;
    case Direction::Out: h.dxfer_direction = SG_DXFER_TO_DEV; break;
    default: h.dxfer_direction = SG_DXFER_NONE; break;
  }
  h.cmd_len = static_cast<unsigned char>(req.cdbLen);
  h.cmdp = const_cast<unsigned char*>(req.cdb);
  h.mx_sb_len = static_cast<unsigned char>(kSenseBufferSize);
  h.sbp = sense;
  h.dxfer_len = static_cast<unsigned int>(req.dataLen);
  h.dxferp = req.dataLen ? req.data : nullptr;
  h.timeout = req.timeoutMs;
  return h;
}

}  // namespace mocopy
#endif
