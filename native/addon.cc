// The N-API surface of the pass-through addon: open, execute (on the libuv pool), close, limits.
// Thin on purpose: argument checks beyond memory safety live in TypeScript (native-transport.ts).
#include <napi.h>

#include <cstring>
#include <unordered_map>

#include "passthrough.h"
#ifdef _WIN32
#include "list_windows.h"
#endif

namespace mocopy {
namespace {

constexpr double kMinTimeoutMs = 1;
constexpr double kMaxTimeoutMs = 24.0 * 60 * 60 * 1000;

struct HandleEntry {
  OsHandle os;
  int inFlight = 0;
  bool closing = false;
};

// Touched only on the JS thread (open/close/execute start and worker completion callbacks).
std::unordered_map<int32_t, HandleEntry> g_handles;
int32_t g_nextHandle = 1;

Napi::Error MakeOsError(Napi::Env env, const OsError& e, const std::string& path) {
  Napi::Error err = Napi::Error::New(env, e.syscall + " " + path + ": " + e.message);
  err.Set("code", Napi::String::New(env, e.code));
  err.Set("errno", Napi::Number::New(env, e.errnum));
  err.Set("oscode", Napi::Number::New(env, static_cast<double>(e.oscode)));
  err.Set("syscall", Napi::String::New(env, e.syscall));
  err.Set("path", Napi::String::New(env, path));
  return err;
}

void Release(int32_t id) {
  auto it = g_handles.find(id);
  if (it == g_handles.end()) return;
  if (--it->second.inFlight == 0 && it->second.closing) {
    OsClose(it->second.os);
    g_handles.erase(it);
  }
}

class ExecuteWorker : public Napi::AsyncWorker {
 public:
  ExecuteWorker(Napi::Env env, int32_t id, OsHandle os, Napi::Buffer<uint8_t> cdb, Direction dir,
                Napi::Value data, uint32_t timeoutMs)
      : Napi::AsyncWorker(env, "mocopy.execute"), deferred_(Napi::Promise::Deferred::New(env)), id_(id), os_(os) {
    // Copy the CDB (at most 16 bytes): the caller may reuse its buffer at once.
    cdbLen_ = cdb.Length();
    memcpy(cdb_, cdb.Data(), cdbLen_);
    req_.cdb = cdb_;
    req_.cdbLen = cdbLen_;
    req_.direction = dir;
    req_.timeoutMs = timeoutMs;
    if (data.IsTypedArray()) {
      Napi::Uint8Array arr = data.As<Napi::Uint8Array>();
      // The data buffer is used in place; the references keep the view and its ArrayBuffer alive until the
      // command ends. (N-API cannot forbid a transfer that detaches it meanwhile: that is checked on completion.)
      dataRef_ = Napi::Persistent(data.As<Napi::Object>());
      bufferRef_ = Napi::Persistent(arr.ArrayBuffer());
      req_.data = arr.Data();
      req_.dataLen = arr.ByteLength();
    }
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    if (!OsExecute(os_, req_, &resp_, &err_)) failed_ = true;
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Release(id_);
    const bool detached = !bufferRef_.IsEmpty() && bufferRef_.Value().IsDetached();
    dataRef_.Reset();
    bufferRef_.Reset();
    if (detached) {
      // The caller gave its memory away while the device was using it: nothing it holds now is the answer.
      Napi::Error e = Napi::Error::New(env, "the data buffer was detached (transferred) while the command was in flight");
      e.Set("code", Napi::String::New(env, "EDETACHED"));
      deferred_.Reject(e.Value());
      return;
    }
    if (failed_) {
      deferred_.Reject(MakeOsError(env, err_, "handle " + std::to_string(id_)).Value());
      return;
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("status", Napi::Number::New(env, resp_.status));
    r.Set("hostStatus", Napi::Number::New(env, resp_.hostStatus));
    r.Set("driverStatus", Napi::Number::New(env, resp_.driverStatus));
    r.Set("sense", Napi::Buffer<uint8_t>::Copy(env, resp_.sense, resp_.senseLen));
    r.Set("residual", Napi::Number::New(env, static_cast<double>(resp_.residual)));
    r.Set("durationUs", Napi::Number::New(env, static_cast<double>(resp_.durationUs)));
    deferred_.Resolve(r);
  }

  void OnError(const Napi::Error& e) override {
    Release(id_);
    dataRef_.Reset();
    bufferRef_.Reset();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  int32_t id_;
  OsHandle os_;
  uint8_t cdb_[16] = {0};
  size_t cdbLen_ = 0;
  Napi::ObjectReference dataRef_;
  Napi::Reference<Napi::ArrayBuffer> bufferRef_;
  Request req_;
  Response resp_;
  OsError err_;
  bool failed_ = false;
};

// A worker that does nothing on the pool: measures the cost of the libuv hop itself.
class NopWorker : public Napi::AsyncWorker {
 public:
  explicit NopWorker(Napi::Env env) : Napi::AsyncWorker(env, "mocopy.nop"), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {}
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
 private:
  Napi::Promise::Deferred deferred_;
};

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "open(path: string, {write: boolean})").ThrowAsJavaScriptException();
    return env.Null();
  }
  std::string path = info[0].As<Napi::String>();
  bool write = false;
  if (info.Length() > 1 && info[1].IsObject()) write = info[1].As<Napi::Object>().Get("write").ToBoolean();
  OsHandle os = OsInvalidHandle();
  OsError err;
  if (!OsOpen(path, write, &os, &err)) {
    MakeOsError(env, err, path).ThrowAsJavaScriptException();
    return env.Null();
  }
  int32_t id = g_nextHandle++;
  g_handles[id] = HandleEntry{os, 0, false};
  return Napi::Number::New(env, id);
}

HandleEntry* Lookup(Napi::Env env, const Napi::Value& v) {
  if (!v.IsNumber()) {
    Napi::TypeError::New(env, "handle must be a number").ThrowAsJavaScriptException();
    return nullptr;
  }
  auto it = g_handles.find(v.As<Napi::Number>().Int32Value());
  if (it == g_handles.end() || it->second.closing) {
    Napi::Error e = Napi::Error::New(env, "handle is closed or was never opened");
    e.Set("code", Napi::String::New(env, "EBADF"));
    e.ThrowAsJavaScriptException();
    return nullptr;
  }
  return &it->second;
}

Napi::Value Execute(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5) {
    Napi::TypeError::New(env, "execute(handle, cdb, direction, data, timeoutMs)").ThrowAsJavaScriptException();
    return env.Null();
  }
  HandleEntry* h = Lookup(env, info[0]);
  if (!h) return env.Null();
  if (!info[1].IsBuffer()) {
    Napi::TypeError::New(env, "cdb must be a Buffer").ThrowAsJavaScriptException();
    return env.Null();
  }
  Napi::Buffer<uint8_t> cdb = info[1].As<Napi::Buffer<uint8_t>>();
  if (cdb.Length() == 0 || cdb.Length() > 16) {
    Napi::TypeError::New(env, "cdb must be 1..16 bytes").ThrowAsJavaScriptException();
    return env.Null();
  }
  int32_t dir = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
  if (dir < 0 || dir > 2) {
    Napi::TypeError::New(env, "direction must be 0 (none), 1 (in) or 2 (out)").ThrowAsJavaScriptException();
    return env.Null();
  }
  Napi::Value data = info[3];
  if (data.IsTypedArray() && data.As<Napi::TypedArray>().ArrayBuffer().IsDetached()) {
    Napi::TypeError::New(env, "the data buffer is detached").ThrowAsJavaScriptException();
    return env.Null();
  }
  bool hasData = data.IsTypedArray() && data.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array &&
                 data.As<Napi::Uint8Array>().ByteLength() > 0;
  if ((dir == 0) == hasData) {
    Napi::TypeError::New(env, "direction and data buffer disagree").ThrowAsJavaScriptException();
    return env.Null();
  }
  // The same range native-transport.ts checks (validate.ts): a NaN or a huge value never reaches the OS.
  const double timeoutMs = info[4].IsNumber() ? info[4].As<Napi::Number>().DoubleValue() : -1;
  if (!(timeoutMs >= kMinTimeoutMs && timeoutMs <= kMaxTimeoutMs)) {
    Napi::TypeError::New(env, "timeoutMs must be a number from 1 to 86400000 (24 h)").ThrowAsJavaScriptException();
    return env.Null();
  }
  uint32_t timeout = static_cast<uint32_t>(timeoutMs);
  int32_t id = info[0].As<Napi::Number>().Int32Value();
  auto* w = new ExecuteWorker(env, id, h->os, cdb, static_cast<Direction>(dir), hasData ? data : env.Undefined(), timeout);
  h->inFlight++;
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "close(handle)").ThrowAsJavaScriptException();
    return env.Null();
  }
  auto it = g_handles.find(info[0].As<Napi::Number>().Int32Value());
  if (it == g_handles.end() || it->second.closing) return env.Undefined();
  if (it->second.inFlight > 0) {
    // Commands are still running on the pool: close when the last one ends, never under an ioctl.
    it->second.closing = true;
  } else {
    OsClose(it->second.os);
    g_handles.erase(it);
  }
  return env.Undefined();
}

Napi::Value GetLimits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  HandleEntry* h = Lookup(env, info.Length() ? info[0] : env.Undefined());
  if (!h) return env.Null();
  Limits l;
  OsError err;
  if (!OsLimits(h->os, &l, &err)) {
    MakeOsError(env, err, "handle").ThrowAsJavaScriptException();
    return env.Null();
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("maxTransferBytes", Napi::Number::New(env, static_cast<double>(l.maxTransferBytes)));
  r.Set("alignment", Napi::Number::New(env, l.alignment));
  r.Set("reservedSize", Napi::Number::New(env, static_cast<double>(l.reservedSize)));
  r.Set("maxSectors", Napi::Number::New(env, static_cast<double>(l.maxSectors)));
  return r;
}

Napi::Value OpenHandles(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(g_handles.size()));
}

Napi::Value Nop(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }

Napi::Value NopAsync(const Napi::CallbackInfo& info) {
  auto* w = new NopWorker(info.Env());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

#ifdef _WIN32
// listDevices(): { devices: [...], stats: {...} } from SetupDi and the \\.\ScsiN: adapters (list_windows.cc).
Napi::Value ListDevicesWin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  WinListStats stats;
  const std::vector<WinListedDevice> list = WinListDevices(&stats);
  Napi::Array arr = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); i++) {
    const WinListedDevice& d = list[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("path", d.path);
    o.Set("interfacePath", d.interfacePath);
    o.Set("source", d.source);
    o.Set("claimed", d.claimed);
    if (d.hasAddress) {
      o.Set("hctl", std::to_string(d.port) + ":" + std::to_string(d.bus) + ":" + std::to_string(d.target) + ":" + std::to_string(d.lun));
    }
    o.Set("peripheralType", Napi::Number::New(env, d.identity.peripheralType));
    o.Set("removable", d.identity.removable);
    o.Set("busType", Napi::Number::New(env, d.identity.busType));
    o.Set("vendor", d.identity.vendor);
    o.Set("product", d.identity.product);
    o.Set("revision", d.identity.revision);
    o.Set("serial", d.identity.serial);
    arr.Set(static_cast<uint32_t>(i), o);
  }
  Napi::Object s = Napi::Object::New(env);
  s.Set("interfaces", Napi::Number::New(env, stats.interfaces));
  s.Set("ports", Napi::Number::New(env, stats.ports));
  s.Set("adapterLuns", Napi::Number::New(env, stats.adapterLuns));
  Napi::Object r = Napi::Object::New(env);
  r.Set("devices", arr);
  r.Set("stats", s);
  return r;
}
#endif

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("execute", Napi::Function::New(env, Execute, "execute"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("limits", Napi::Function::New(env, GetLimits, "limits"));
  exports.Set("openHandles", Napi::Function::New(env, OpenHandles, "openHandles"));
  exports.Set("nop", Napi::Function::New(env, Nop, "nop"));
  exports.Set("nopAsync", Napi::Function::New(env, NopAsync, "nopAsync"));
#ifdef _WIN32
  exports.Set("platform", Napi::String::New(env, "win32"));
  exports.Set("listDevices", Napi::Function::New(env, ListDevicesWin, "listDevices"));
#else
  exports.Set("platform", Napi::String::New(env, "linux"));
#endif
  return exports;
}

}  // namespace
}  // namespace mocopy

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return mocopy::Init(env, exports); }

NODE_API_MODULE(mocopy_native, InitModule)
