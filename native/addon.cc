// The N-API surface of the pass-through addon: open, execute, close, limits, handleInfo.
// execute runs a command one of two ways, chosen per handle at open (handleInfo says which, and why):
//  - 'sg-async' (Linux /dev/sgN): the sg driver's asynchronous interface, no thread hop. execute() write()s the
//    command's sg_io_hdr and returns; a uv_poll_t on the descriptor wakes the loop when commands complete, and
//    read() collects them. Up to 16 (SG_MAX_QUEUE) are in the kernel per handle; more wait in a FIFO here and go
//    in as completions free slots. A completion already there when execute() returns is collected at once.
//  - 'worker' (block nodes, Windows, or the async interface turned off): SG_IO / IOCTL_SCSI_PASS_THROUGH_DIRECT
//    in a Napi::AsyncWorker on the libuv pool, one pool thread per command in flight.
// Thin on purpose: argument checks beyond memory safety live in TypeScript (native-transport.ts).
#include <napi.h>

#include <cstring>
#include <unordered_map>
#include <vector>
#ifdef __linux__
#include <uv.h>

#include <deque>
#include <memory>
#endif

#include "passthrough.h"
#ifdef _WIN32
#include "list_windows.h"
#endif

namespace mocopy {
namespace {

constexpr double kMinTimeoutMs = 1;
constexpr double kMaxTimeoutMs = 24.0 * 60 * 60 * 1000;
// Commands one executeBatch() call takes (the sg driver's queue per descriptor, SG_MAX_QUEUE); callers split larger
// batches.
constexpr size_t kMaxBatch = 16;

#ifdef __linux__
struct SgQueue;
#endif

struct HandleEntry {
  OsHandle os;
  int inFlight = 0;  // worker mode: commands on the pool
  bool closing = false;
#ifdef __linux__
  SgQueue* sg = nullptr;  // sg-async mode
#endif
  std::string fallbackReason;  // worker mode: why not sg-async
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
  ExecuteWorker(Napi::Env env, int32_t id, OsHandle os, const uint8_t* cdb, size_t cdbLen, Direction dir,
                Napi::Value data, uint32_t timeoutMs)
      : Napi::AsyncWorker(env, "mocopy.execute"), deferred_(Napi::Promise::Deferred::New(env)), id_(id), os_(os) {
    // Copy the CDB (at most 16 bytes): the caller may reuse its buffer at once.
    cdbLen_ = cdbLen;
    memcpy(cdb_, cdb, cdbLen_);
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


#ifdef __linux__
// ---- sg-async mode ----------------------------------------------------------------------------------------

// One command: its promise, the CDB copy, the caller's data buffer (used in place, referenced until the command
// is read back or the descriptor is closed) and the sense buffer the kernel writes into at read().
struct SgCommand {
  int32_t tag = 0;
  // Made only when execute() returns without the answer (see SgExecute): a command answered inside execute()
  // needs no promise at all. Every other command has one.
  napi_deferred deferred = nullptr;
  Napi::ObjectReference dataRef;
  Napi::Reference<Napi::ArrayBuffer> bufferRef;
  uint8_t cdb[16] = {0};
  Request req;
  uint8_t sense[kSenseBufferSize] = {0};
  uint64_t t0 = 0;
  // Its result slab row while execute()/executeBatch() may still answer it in place; -1 after.
  int row = -1;
};

// A completion collected inside execute() itself saves a trip through the event loop. A caller that awaits it and
// issues the next command never returns to the loop, so this goes on for at most this long (µs) after the first
// such completion; then commands go through the loop until it has turned (the poll callback), so that a device
// answering as fast as it is asked cannot keep timers and other I/O waiting. A time, not a count: a count of 16
// sent a third of the commands through the loop with 8 loops in flight (each hits the limit in turn).
constexpr uint64_t kSyncBudgetUs = 2000;


struct SgQueue {
  uv_poll_t poll;
  napi_env env = nullptr;
  napi_async_context asyncContext = nullptr;
  napi_async_cleanup_hook_handle cleanupHook = nullptr;
  int32_t id = 0;
  int fd = -1;
  bool syncReap = true;
  bool pollActive = false;
  bool refd = false;
  bool closing = false;
  bool dead = false;  // the device went away (or the descriptor failed): every command is refused with deadErr
  OsError deadErr;
  bool inStreak = false;  // completions collected inside calls since the loop last turned
  uint64_t streakStartUs = 0;
  int32_t nextTag = 1;
  std::unordered_map<int32_t, std::unique_ptr<SgCommand>> inFlight;
  std::deque<std::unique_ptr<SgCommand>> waiting;
  // The result objects' property names, made once (a V8 string per property per command is measurable) and kept in
  // an array (Node-API 8 references only objects), and the one empty sense buffer every GOOD answer shares.
  Napi::ObjectReference keys;
  Napi::ObjectReference emptySense;
  // The caller's result slab (bindResultSlab): a command answered inside execute() is written here (status, host
  // and driver status, sense length, residual, duration; the sense bytes beside) and execute() returns 0, so
  // the answer costs no promise, no result object and no property stores: under emulation (QEMU TCG) these
  // Node-API calls are most of a TEST UNIT READY. Without a slab every command gets a promise, as before.
  double* slab = nullptr;
  uint8_t* slabSense = nullptr;
  size_t slabRows = 0;  // rows of 6 numbers and kSenseBufferSize sense bytes each
  Napi::ObjectReference slabRef, slabSenseRef;
  // What became of each command of the running execute()/executeBatch() call that may be answered in place.
  enum class Outcome { Pending, Answered, Failed };
  Outcome outcome[kMaxBatch];
  Napi::ObjectReference rowError[kMaxBatch];
  // Counters for handleInfo (tests and benchmarks).
  double submitted = 0, queueFull = 0, syncCompleted = 0, polledCompleted = 0;
  size_t maxInFlight = 0, maxWaiting = 0;
};

Napi::Error ErrorWithCode(Napi::Env env, const std::string& message, const char* code, int errnum) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  if (errnum) e.Set("errno", Napi::Number::New(env, errnum));
  return e;
}

void SgReject(Napi::Env env, SgQueue* q, SgCommand& c, const Napi::Error& e) {
  Napi::HandleScope scope(env);
  if (c.deferred) {
    napi_reject_deferred(env, c.deferred, e.Value());
    c.deferred = nullptr;
  } else if (c.row >= 0) {
    // The call hands it back (execute() throws it, executeBatch() puts it in the command's place; native-transport.ts
    // turns either into a TransportError, as it does a rejection).
    q->rowError[c.row] = Napi::Persistent(e.Value());
    q->outcome[c.row] = SgQueue::Outcome::Failed;
  }
}

void SgResolve(Napi::Env env, SgQueue* q, std::unique_ptr<SgCommand> c, const Completion& done) {
  Napi::HandleScope scope(env);
  const uint64_t t1 = OsMonotonicUs();
  if (!c->bufferRef.IsEmpty() && c->bufferRef.Value().IsDetached()) {
    SgReject(env, q, *c, ErrorWithCode(env, "the data buffer was detached (transferred) while the command was in flight", "EDETACHED", 0));
    return;
  }
  const size_t senseLen = done.senseLen > kSenseBufferSize ? kSenseBufferSize : done.senseLen;
  if (!c->deferred && c->row >= 0) {
    double* s = q->slab + 6 * c->row;
    s[0] = done.status;
    s[1] = done.hostStatus;
    s[2] = done.driverStatus;
    s[3] = static_cast<double>(senseLen);
    s[4] = static_cast<double>(done.residual);
    s[5] = static_cast<double>(t1 - c->t0);
    if (senseLen) memcpy(q->slabSense + kSenseBufferSize * c->row, c->sense, senseLen);
    q->outcome[c->row] = SgQueue::Outcome::Answered;
    return;
  }
  if (!c->deferred) return;  // (its promise could not be made: nobody is waiting for it)
  Napi::Object r = Napi::Object::New(env);
  Napi::Object k = q->keys.Value();
  r.Set(k.Get(0u), Napi::Number::New(env, done.status));
  r.Set(k.Get(1u), Napi::Number::New(env, done.hostStatus));
  r.Set(k.Get(2u), Napi::Number::New(env, done.driverStatus));
  r.Set(k.Get(3u), senseLen ? Napi::Value(Napi::Buffer<uint8_t>::Copy(env, c->sense, senseLen)) : Napi::Value(q->emptySense.Value()));
  r.Set(k.Get(4u), Napi::Number::New(env, static_cast<double>(done.residual)));
  r.Set(k.Get(5u), Napi::Number::New(env, static_cast<double>(t1 - c->t0)));
  napi_resolve_deferred(env, c->deferred, r);
  c->deferred = nullptr;
}

bool SgFatalErrno(int e) { return e == ENODEV || e == ENXIO || e == EBADF || e == ESHUTDOWN; }

void SgStopPoll(SgQueue* q) {
  if (q->pollActive) {
    uv_poll_stop(&q->poll);
    q->pollActive = false;
  }
}

void SgUpdateRef(SgQueue* q) {
  // The poll handle keeps the process alive only while commands are outstanding (an idle open handle does not,
  // as with the worker mode).
  const bool want = q->pollActive && (!q->inFlight.empty() || !q->waiting.empty());
  if (want == q->refd) return;
  if (want) uv_ref(reinterpret_cast<uv_handle_t*>(&q->poll));
  else uv_unref(reinterpret_cast<uv_handle_t*>(&q->poll));
  q->refd = want;
}

void SgSetOs(int32_t id, OsHandle os) {
  auto it = g_handles.find(id);
  if (it != g_handles.end()) it->second.os = os;
}

// The descriptor is unusable (device gone, or read() failed for no one command): close it, which orphans whatever
// the kernel still holds (it then never touches our buffers), and fail every outstanding command with the errno.
void SgKill(Napi::Env env, SgQueue* q, const OsError& err) {
  if (q->dead) return;
  q->dead = true;
  q->deadErr = err;
  SgStopPoll(q);
  if (q->fd >= 0) {
    close(q->fd);
    q->fd = -1;
    SgSetOs(q->id, OsInvalidHandle());
  }
  auto inFlight = std::move(q->inFlight);
  auto waiting = std::move(q->waiting);
  q->inFlight.clear();
  q->waiting.clear();
  const std::string where = "handle " + std::to_string(q->id);
  for (auto& kv : inFlight) SgReject(env, q, *kv.second, MakeOsError(env, err, where));
  for (auto& c : waiting) SgReject(env, q, *c, MakeOsError(env, err, where));
}

// Tries to hand `c` to the kernel. Returns it back (non-null) when the descriptor's queue is full; otherwise it
// was submitted, or settled (rejected: a failure of its own, or the descriptor died).
std::unique_ptr<SgCommand> SgTrySubmit(Napi::Env env, SgQueue* q, std::unique_ptr<SgCommand> c) {
  if (q->dead) {
    SgReject(env, q, *c, MakeOsError(env, q->deadErr, "handle " + std::to_string(q->id)));
    return nullptr;
  }
  c->tag = q->nextTag;
  q->nextTag = q->nextTag == INT32_MAX ? 1 : q->nextTag + 1;
  c->t0 = OsMonotonicUs();
  OsError err;
  switch (OsAsyncSubmit(q->fd, c->tag, c->req, c->sense, &err)) {
    case SubmitStatus::Ok:
      q->submitted++;
      q->inFlight.emplace(c->tag, std::move(c));
      if (q->inFlight.size() > q->maxInFlight) q->maxInFlight = q->inFlight.size();
      return nullptr;
    case SubmitStatus::QueueFull:
      q->queueFull++;
      if (q->inFlight.empty()) {
        // Nothing of ours is outstanding, so no completion will ever free a slot: not a full queue after all.
        SgReject(env, q, *c, MakeOsError(env, err, "handle " + std::to_string(q->id)));
        return nullptr;
      }
      return c;
    case SubmitStatus::Failed:
      if (SgFatalErrno(err.errnum)) {
        q->waiting.push_front(std::move(c));
        SgKill(env, q, err);
      } else {
        SgReject(env, q, *c, MakeOsError(env, err, "handle " + std::to_string(q->id)));
      }
      return nullptr;
  }
  return nullptr;
}

void SgWait(SgQueue* q, std::unique_ptr<SgCommand> c, bool front) {
  if (front) q->waiting.push_front(std::move(c));
  else q->waiting.push_back(std::move(c));
  if (q->waiting.size() > q->maxWaiting) q->maxWaiting = q->waiting.size();
}

// A new command: to the kernel at once, or behind the ones already waiting (FIFO order is kept).
void SgEnqueue(Napi::Env env, SgQueue* q, std::unique_ptr<SgCommand> c) {
  if (!q->dead && !q->waiting.empty()) {
    SgWait(q, std::move(c), false);
    return;
  }
  std::unique_ptr<SgCommand> back = SgTrySubmit(env, q, std::move(c));
  if (back) SgWait(q, std::move(back), false);
}

// Moves waiting commands into the kernel while it takes them.
void SgPump(Napi::Env env, SgQueue* q) {
  while (!q->dead && !q->closing && !q->waiting.empty()) {
    std::unique_ptr<SgCommand> c = std::move(q->waiting.front());
    q->waiting.pop_front();
    std::unique_ptr<SgCommand> back = SgTrySubmit(env, q, std::move(c));
    if (back) {
      SgWait(q, std::move(back), true);
      return;
    }
  }
}

// Collects every completed command (read() until EAGAIN), resolving or rejecting each, and refills the kernel's
// queue from the FIFO. Returns how many were collected.
int SgDrain(Napi::Env env, SgQueue* q) {
  int n = 0;
  while (!q->dead && !q->inFlight.empty()) {  // (nothing of ours in the kernel: no read() to spend)
    Completion done;
    OsError err;
    CollectStatus st = OsAsyncCollect(q->fd, &done, &err);
    if (st == CollectStatus::Empty) break;
    if (st == CollectStatus::Failed && !done.tagged) {
      SgKill(env, q, err);
      break;
    }
    auto it = q->inFlight.find(done.tag);
    if (it == q->inFlight.end()) continue;  // not ours (cannot happen: the descriptor is this handle's alone)
    std::unique_ptr<SgCommand> c = std::move(it->second);
    q->inFlight.erase(it);
    n++;
    if (st == CollectStatus::Got) SgResolve(env, q, std::move(c), done);
    else SgReject(env, q, *c, MakeOsError(env, err, "handle " + std::to_string(q->id)));
    SgPump(env, q);
  }
  return n;
}

void SgOnPoll(uv_poll_t* handle, int status, int events) {
  (void)events;
  SgQueue* q = static_cast<SgQueue*>(handle->data);
  Napi::Env env(q->env);
  {
    Napi::HandleScope scope(env);
    // Resolving here, outside any JS call: the callback scope runs the promise reactions (microtasks) when it
    // closes. They may call execute() or close() on this handle, so q is not touched after the scope.
    Napi::CallbackScope cb(env, q->asyncContext);
    q->inStreak = false;
    const int n = SgDrain(env, q);
    q->polledCompleted += n;
    if (!q->dead) {
      OsError err;
      if (status < 0) {
        // libuv reports POLLERR as UV_EBADF and stops the handle.
        q->pollActive = false;
        OsFillErrno(&err, EIO, "poll(sg)");
        err.message = std::string("the descriptor reported an error (") + uv_strerror(status) + ")";
        SgKill(env, q, err);
      } else if (n == 0 && OsAsyncHungUp(q->fd, &err)) {
        SgKill(env, q, err);
      }
    }
    if (!q->dead) SgUpdateRef(q);
  }
}

void SgFreeQueue(uv_handle_t* h) {
  SgQueue* q = static_cast<SgQueue*>(h->data);
  if (q->asyncContext) napi_async_destroy(q->env, q->asyncContext);
  delete q;
}

// The environment is going away (process exit, worker thread end) with the handle still open: close the
// descriptor and the poll handle without calling into JavaScript; the promises go with the environment.
void SgOnEnvCleanup(napi_async_cleanup_hook_handle hook, void* arg) {
  (void)hook;
  SgQueue* q = static_cast<SgQueue*>(arg);
  SgStopPoll(q);
  if (q->fd >= 0) close(q->fd);
  q->fd = -1;
  g_handles.erase(q->id);
  for (auto& kv : q->inFlight) (void)kv.second.release();
  for (auto& c : q->waiting) (void)c.release();
  uv_close(reinterpret_cast<uv_handle_t*>(&q->poll), [](uv_handle_t* h) {
    SgQueue* q = static_cast<SgQueue*>(h->data);
    napi_remove_async_cleanup_hook(q->cleanupHook);
    delete q;  // (the async context goes with the environment)
  });
}

// Sets up sg-async mode on an sg descriptor; nullptr with *why when it cannot (the handle then uses workers).
SgQueue* SgCreate(Napi::Env env, int32_t id, int fd, bool syncReap, std::string* why) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) {
    *why = "no libuv loop for this environment";
    return nullptr;
  }
  auto* q = new SgQueue();
  q->env = env;
  q->id = id;
  q->fd = fd;
  q->syncReap = syncReap;
  int rc = uv_poll_init(loop, &q->poll, fd);
  if (rc != 0) {
    *why = std::string("uv_poll_init on the descriptor failed: ") + uv_strerror(rc);
    delete q;
    return nullptr;
  }
  q->poll.data = q;
  rc = uv_poll_start(&q->poll, UV_READABLE, SgOnPoll);
  if (rc != 0) {
    *why = std::string("uv_poll_start on the descriptor failed: ") + uv_strerror(rc);
    uv_close(reinterpret_cast<uv_handle_t*>(&q->poll), SgFreeQueue);
    return nullptr;
  }
  q->pollActive = true;
  uv_unref(reinterpret_cast<uv_handle_t*>(&q->poll));
  const char* names[6] = {"status", "hostStatus", "driverStatus", "sense", "residual", "durationUs"};
  Napi::Array keys = Napi::Array::New(env, 6);
  for (uint32_t i = 0; i < 6; i++) keys.Set(i, Napi::String::New(env, names[i]));
  q->keys = Napi::Persistent(Napi::Object(keys));
  q->emptySense = Napi::Persistent(Napi::Object(Napi::Buffer<uint8_t>::New(env, 0)));
  if (napi_async_init(env, nullptr, Napi::String::New(env, "mocopy.sg"), &q->asyncContext) != napi_ok) q->asyncContext = nullptr;
  if (napi_add_async_cleanup_hook(env, SgOnEnvCleanup, q, &q->cleanupHook) != napi_ok) q->cleanupHook = nullptr;
  return q;
}

// close() on an sg-async handle: commands already completed are resolved, those still waiting in the FIFO (never
// sent) and those in the kernel are rejected with ECANCELED, then the descriptor is closed (the kernel orphans
// what it still runs and, with indirect I/O, never writes into the caller's buffers again: they are released).
void SgClose(Napi::Env env, SgQueue* q) {
  q->closing = true;
  auto waiting = std::move(q->waiting);
  q->waiting.clear();
  const std::string where = "handle " + std::to_string(q->id);
  for (auto& c : waiting) {
    SgReject(env, q, *c, ErrorWithCode(env, where + ": closed before the command was sent to the device", "ECANCELED", ECANCELED));
  }
  if (!q->dead) SgDrain(env, q);
  SgStopPoll(q);
  if (q->fd >= 0) close(q->fd);
  q->fd = -1;
  auto inFlight = std::move(q->inFlight);
  q->inFlight.clear();
  for (auto& kv : inFlight) {
    SgReject(env, q, *kv.second, ErrorWithCode(env, where + ": closed while the command was in flight (the device may have executed it)", "ECANCELED", ECANCELED));
  }
  if (q->cleanupHook) napi_remove_async_cleanup_hook(q->cleanupHook);
  q->cleanupHook = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&q->poll), SgFreeQueue);
}

// A command from execute()'s or executeBatch()'s arguments: the CDB copied, the data buffer used in place.
std::unique_ptr<SgCommand> SgCommandFor(const uint8_t* cdb, size_t cdbLen, Direction dir, Napi::Value data, uint32_t timeoutMs) {
  auto c = std::make_unique<SgCommand>();
  memcpy(c->cdb, cdb, cdbLen);
  c->req.cdb = c->cdb;
  c->req.cdbLen = cdbLen;
  c->req.direction = dir;
  c->req.timeoutMs = timeoutMs;
  if (data.IsTypedArray()) {
    Napi::Uint8Array arr = data.As<Napi::Uint8Array>();
    // Used in place (no copy); referenced until the command is read back or the descriptor closed.
    c->dataRef = Napi::Persistent(data.As<Napi::Object>());
    c->bufferRef = Napi::Persistent(arr.ArrayBuffer());
    c->req.data = arr.Data();
    c->req.dataLen = arr.ByteLength();
  }
  return c;
}

// Whether commands completed by now may be collected inside this call (see kSyncBudgetUs).
bool SgMayCollectInPlace(SgQueue* q) {
  if (q->dead || !q->syncReap || q->inFlight.empty()) return false;
  if (!q->inStreak) return true;
  return OsMonotonicUs() - q->streakStartUs < kSyncBudgetUs;
}

// Hands `cmds` to the kernel in order (one write() each, back to back; the FIFO keeps the order when the queue is
// full), collects what has completed already, and sets out[i] for each: 0 when it was answered in place (slab row
// i), an Error when it failed inside this call, else its promise. False (with a JS exception) only when Node-API
// could not make a promise.
bool SgRun(Napi::Env env, SgQueue* q, std::vector<std::unique_ptr<SgCommand>>& cmds, std::vector<napi_value>* out) {
  const size_t n = cmds.size();
  const bool inPlace = q->slab != nullptr && q->syncReap && n <= q->slabRows;
  std::vector<SgCommand*> me(n);
  out->assign(n, nullptr);
  for (size_t i = 0; i < n; i++) {
    me[i] = cmds[i].get();
    if (inPlace) {
      me[i]->row = static_cast<int>(i);
      q->outcome[i] = SgQueue::Outcome::Pending;
    } else if (napi_create_promise(env, &me[i]->deferred, &(*out)[i]) != napi_ok) {
      Napi::Error::New(env, "napi_create_promise failed").ThrowAsJavaScriptException();
      return false;  // (nothing was submitted)
    }
  }
  for (auto& c : cmds) SgEnqueue(env, q, std::move(c));
  if (SgMayCollectInPlace(q)) {
    const int got = SgDrain(env, q);
    if (got > 0) {
      if (!q->inStreak) {
        q->inStreak = true;
        q->streakStartUs = OsMonotonicUs();
      }
      q->syncCompleted += got;
    }
  }
  if (!q->dead) SgUpdateRef(q);
  if (!inPlace) return true;
  for (size_t i = 0; i < n; i++) {
    switch (q->outcome[i]) {
      case SgQueue::Outcome::Answered:
        (*out)[i] = Napi::Number::New(env, 0);
        break;
      case SgQueue::Outcome::Failed:
        (*out)[i] = q->rowError[i].Value();
        q->rowError[i].Reset();
        break;
      case SgQueue::Outcome::Pending:
        // Still in the kernel or waiting in the FIFO (alive: only settling frees a command).
        me[i]->row = -1;
        if (napi_create_promise(env, &me[i]->deferred, &(*out)[i]) != napi_ok) {
          Napi::Error::New(env, "napi_create_promise failed").ThrowAsJavaScriptException();
          return false;
        }
        break;
    }
  }
  return true;
}

// execute() in sg-async mode: the command's promise, or 0 when it was answered in place (slab row 0); a failure
// inside the call is thrown.
Napi::Value SgExecute(Napi::Env env, SgQueue* q, const uint8_t* cdb, size_t cdbLen, Direction dir, Napi::Value data, uint32_t timeoutMs) {
  std::vector<std::unique_ptr<SgCommand>> cmds;
  cmds.push_back(SgCommandFor(cdb, cdbLen, dir, data, timeoutMs));
  std::vector<napi_value> out;
  if (!SgRun(env, q, cmds, &out)) return env.Undefined();
  Napi::Value r(env, out[0]);
  if (r.IsObject() && !r.IsPromise()) {
    Napi::Error(env, r).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return r;
}
#endif  // __linux__

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "open(path: string, {write: boolean})").ThrowAsJavaScriptException();
    return env.Null();
  }
  std::string path = info[0].As<Napi::String>();
  bool write = false;
  bool wantAsync = true;  // {async: false}: the worker mode even on /dev/sgN
  bool syncReap = true;   // {syncReap: false}: sg-async completions only through the event loop
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    write = o.Get("write").ToBoolean();
    if (o.Has("async") && o.Get("async").IsBoolean()) wantAsync = o.Get("async").ToBoolean();
    if (o.Has("syncReap") && o.Get("syncReap").IsBoolean()) syncReap = o.Get("syncReap").ToBoolean();
  }
  OsHandle os = OsInvalidHandle();
  OsError err;
  if (!OsOpen(path, write, &os, &err)) {
    MakeOsError(env, err, path).ThrowAsJavaScriptException();
    return env.Null();
  }
  int32_t id = g_nextHandle++;
  HandleEntry e;
  e.os = os;
#ifdef __linux__
  if (!wantAsync) {
    e.fallbackReason = "the sg asynchronous interface was turned off for this handle (async: false)";
  } else if (OsAsyncProbe(os, &e.fallbackReason)) {
    e.sg = SgCreate(env, id, os, syncReap, &e.fallbackReason);
    if (e.sg) e.fallbackReason.clear();
  }
#else
  (void)wantAsync;
  (void)syncReap;
  e.fallbackReason = "Windows: IOCTL_SCSI_PASS_THROUGH_DIRECT runs on the libuv thread pool (no asynchronous pass-through path)";
#endif
  g_handles[id] = std::move(e);
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

// One command's arguments, checked for memory safety (the rest is native-transport.ts's job).
struct CommandArgs {
  const uint8_t* cdb = nullptr;  // valid for the call (copied by the command)
  size_t cdbLen = 0;
  Direction dir = Direction::None;
  Napi::Value data;  // undefined when there is no data phase
  uint32_t timeoutMs = 0;
};

// Checks a command given as numbers and its data value; false with a TypeError thrown (naming command `index` of a
// batch; -1: execute()'s one) when unusable.
bool CheckCommand(Napi::Env env, const uint8_t* cdb, double cdbLen, double dir, Napi::Value data, double timeoutMs, int index, CommandArgs* out) {
  auto fail = [&](const char* m) {
    Napi::TypeError::New(env, (index < 0 ? std::string() : "command " + std::to_string(index) + ": ") + m).ThrowAsJavaScriptException();
    return false;
  };
  if (!(cdbLen >= 1 && cdbLen <= 16)) return fail("cdb must be 1..16 bytes");
  if (!(dir == 0 || dir == 1 || dir == 2)) return fail("direction must be 0 (none), 1 (in) or 2 (out)");
  const bool typed = data.IsTypedArray();
  if (typed && data.As<Napi::TypedArray>().ArrayBuffer().IsDetached()) return fail("the data buffer is detached");
  const bool hasData = typed && data.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array &&
                       data.As<Napi::Uint8Array>().ByteLength() > 0;
  if ((dir == 0) == hasData) return fail("direction and data buffer disagree");
  // The same range native-transport.ts checks (validate.ts): a NaN or a huge value never reaches the OS.
  if (!(timeoutMs >= kMinTimeoutMs && timeoutMs <= kMaxTimeoutMs)) return fail("timeoutMs must be a number from 1 to 86400000 (24 h)");
  out->cdb = cdb;
  out->cdbLen = static_cast<size_t>(cdbLen);
  out->dir = static_cast<Direction>(static_cast<int>(dir));
  out->data = hasData ? data : env.Undefined();
  out->timeoutMs = static_cast<uint32_t>(timeoutMs);
  return true;
}

// Worker mode: the command on the libuv pool; its promise.
Napi::Value QueueWorker(Napi::Env env, HandleEntry* h, int32_t id, const CommandArgs& a) {
  auto* w = new ExecuteWorker(env, id, h->os, a.cdb, a.cdbLen, a.dir, a.data, a.timeoutMs);
  h->inFlight++;
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
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
  const double dir = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : -1;
  const double timeoutMs = info[4].IsNumber() ? info[4].As<Napi::Number>().DoubleValue() : -1;
  CommandArgs a;
  if (!CheckCommand(env, cdb.Data(), static_cast<double>(cdb.Length()), dir, info[3], timeoutMs, -1, &a)) return env.Null();
#ifdef __linux__
  if (h->sg) return SgExecute(env, h->sg, a.cdb, a.cdbLen, a.dir, a.data, a.timeoutMs);
#endif
  return QueueWorker(env, h, info[0].As<Napi::Number>().Int32Value(), a);
}

// executeBatch(handle, cdbs: Buffer, params: Float64Array, datas: Array): up to 16 commands in one call, handed to
// the device in order. Packed, because a Node-API call per array element would cost more than the batch saves:
// command i's CDB is cdbs[16i .. 16i+len), params[3i .. 3i+3) = [CDB length, direction, timeoutMs], datas[i] its data
// buffer (read only for a command with a data phase). Returns n when every command was answered in place (slab rows
// 0..n-1), else an array with, for each, what execute() returns for it (0: answered in place; its promise) or the
// Error it failed with inside the call. All commands are checked before any is sent.
Napi::Value ExecuteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[1].IsBuffer() || !info[2].IsTypedArray() || !info[3].IsArray() ||
      info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    Napi::TypeError::New(env, "executeBatch(handle, cdbs: Buffer, params: Float64Array, datas: Array)").ThrowAsJavaScriptException();
    return env.Null();
  }
  HandleEntry* h = Lookup(env, info[0]);
  if (!h) return env.Null();
  Napi::Buffer<uint8_t> cdbs = info[1].As<Napi::Buffer<uint8_t>>();
  Napi::Float64Array params = info[2].As<Napi::Float64Array>();
  Napi::Array datas = info[3].As<Napi::Array>();
  const uint32_t n = datas.Length();
  if (n == 0 || n > kMaxBatch || cdbs.Length() < 16 * n || params.ElementLength() < 3 * n) {
    Napi::TypeError::New(env, "executeBatch: 1 to 16 commands, 16 CDB bytes and 3 parameters each").ThrowAsJavaScriptException();
    return env.Null();
  }
  const uint8_t* cdbBytes = cdbs.Data();
  const double* p = params.Data();
  std::vector<CommandArgs> args(n);
  for (uint32_t i = 0; i < n; i++) {
    const double dir = p[3 * i + 1];
    Napi::Value data = dir == 0 ? env.Undefined() : datas.Get(i);
    if (!CheckCommand(env, cdbBytes + 16 * i, p[3 * i], dir, data, p[3 * i + 2], static_cast<int>(i), &args[i])) return env.Null();
  }
#ifdef __linux__
  if (h->sg) {
    std::vector<std::unique_ptr<SgCommand>> cmds;
    cmds.reserve(n);
    for (uint32_t i = 0; i < n; i++) {
      cmds.push_back(SgCommandFor(args[i].cdb, args[i].cdbLen, args[i].dir, args[i].data, args[i].timeoutMs));
    }
    std::vector<napi_value> out;
    if (!SgRun(env, h->sg, cmds, &out)) return env.Null();
    bool allInPlace = true;
    for (uint32_t i = 0; i < n && allInPlace; i++) {
      napi_valuetype t;
      allInPlace = napi_typeof(env, out[i], &t) == napi_ok && t == napi_number;
    }
    if (allInPlace) return Napi::Number::New(env, n);
    Napi::Array r = Napi::Array::New(env, n);
    for (uint32_t i = 0; i < n; i++) r.Set(i, Napi::Value(env, out[i]));
    return r;
  }
#endif
  const int32_t id = info[0].As<Napi::Number>().Int32Value();
  Napi::Array r = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; i++) r.Set(i, QueueWorker(env, h, id, args[i]));
  return r;
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "close(handle)").ThrowAsJavaScriptException();
    return env.Null();
  }
  auto it = g_handles.find(info[0].As<Napi::Number>().Int32Value());
  if (it == g_handles.end() || it->second.closing) return env.Undefined();
#ifdef __linux__
  if (it->second.sg) {
    SgQueue* q = it->second.sg;
    it->second.closing = true;  // execute() from the promise reactions below sees a closed handle
    SgClose(env, q);
    g_handles.erase(q->id);
    return env.Undefined();
  }
#endif
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

// handleInfo(handle): how this handle runs its commands ({mode: 'sg-async' | 'worker', fallbackReason}) and,
// in sg-async mode, its queue's counters.
Napi::Value HandleInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  HandleEntry* h = Lookup(env, info.Length() ? info[0] : env.Undefined());
  if (!h) return env.Null();
  Napi::Object r = Napi::Object::New(env);
#ifdef __linux__
  if (h->sg) {
    SgQueue* q = h->sg;
    r.Set("mode", "sg-async");
    r.Set("maxQueue", Napi::Number::New(env, kSgMaxQueue));
    r.Set("syncReap", Napi::Boolean::New(env, q->syncReap));
    r.Set("inFlight", Napi::Number::New(env, static_cast<double>(q->inFlight.size())));
    r.Set("waiting", Napi::Number::New(env, static_cast<double>(q->waiting.size())));
    r.Set("submitted", Napi::Number::New(env, q->submitted));
    r.Set("queueFull", Napi::Number::New(env, q->queueFull));
    r.Set("maxInFlight", Napi::Number::New(env, static_cast<double>(q->maxInFlight)));
    r.Set("maxWaiting", Napi::Number::New(env, static_cast<double>(q->maxWaiting)));
    r.Set("syncCompleted", Napi::Number::New(env, q->syncCompleted));
    r.Set("polledCompleted", Napi::Number::New(env, q->polledCompleted));
    if (q->dead) r.Set("gone", Napi::String::New(env, q->deadErr.code));
    // How far past its own timeout the oldest command in the kernel is (ms; negative: none is): the JS safety
    // sweep (native-transport.ts) reads this instead of keeping a timer per command.
    double overdue = -1;
    const uint64_t now = OsMonotonicUs();
    for (auto& kv : q->inFlight) {
      const double o = (static_cast<double>(now - kv.second->t0) / 1000.0) - kv.second->req.timeoutMs;
      if (overdue < 0 || o > overdue) overdue = o;
    }
    r.Set("overdueMs", Napi::Number::New(env, overdue));
    return r;
  }
#endif
  r.Set("mode", "worker");
  r.Set("fallbackReason", Napi::String::New(env, h->fallbackReason));
  r.Set("inFlight", Napi::Number::New(env, h->inFlight));
  return r;
}

// bindResultSlab(handle, meta: Float64Array(>= 6), sense: Uint8Array(>= kSenseBufferSize)): where execute() writes
// the answer of a command it completed in place (sg-async with syncReap), returning 0 instead of a promise. Returns
// false when the handle has no such path (worker mode, or syncReap off): every execute() then returns a promise.
Napi::Value BindResultSlab(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  HandleEntry* h = Lookup(env, info.Length() ? info[0] : env.Undefined());
  if (!h) return env.Null();
  if (info.Length() < 3 || !info[1].IsTypedArray() || !info[2].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    Napi::TypeError::New(env, "bindResultSlab(handle, Float64Array, Uint8Array)").ThrowAsJavaScriptException();
    return env.Null();
  }
  Napi::Float64Array meta = info[1].As<Napi::Float64Array>();
  Napi::Uint8Array sense = info[2].As<Napi::Uint8Array>();
  // Rows: one per command of a batch (6 numbers, 96 sense bytes each); execute() uses row 0.
  size_t rows = meta.ElementLength() / 6;
  if (sense.ByteLength() / kSenseBufferSize < rows) rows = sense.ByteLength() / kSenseBufferSize;
  if (rows > kMaxBatch) rows = kMaxBatch;
  if (rows == 0) {
    Napi::TypeError::New(env, "bindResultSlab: the meta slab needs 6 numbers and the sense slab 96 bytes per row").ThrowAsJavaScriptException();
    return env.Null();
  }
#ifdef __linux__
  if (h->sg && h->sg->syncReap) {
    SgQueue* q = h->sg;
    // Data() externalizes a typed array V8 kept on its heap, so the addresses stay put while referenced.
    q->slab = meta.Data();
    q->slabSense = sense.Data();
    q->slabRows = rows;
    q->slabRef = Napi::Persistent(Napi::Object(meta));
    q->slabSenseRef = Napi::Persistent(Napi::Object(sense));
    return Napi::Boolean::New(env, true);
  }
#endif
  return Napi::Boolean::New(env, false);
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
  exports.Set("handleInfo", Napi::Function::New(env, HandleInfo, "handleInfo"));
  exports.Set("bindResultSlab", Napi::Function::New(env, BindResultSlab, "bindResultSlab"));
  exports.Set("executeBatch", Napi::Function::New(env, ExecuteBatch, "executeBatch"));
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
