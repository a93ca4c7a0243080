// Durable append for the addon: one worker thread per open file does writev + fdatasync with
// group commit (everything queued while a round runs goes out in the next round) and reports
// each finished round to JS with a single thread-safe-function call.
#include "accel.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace imdb {
namespace {

constexpr size_t kIovecsPerWritevMax = 1024;          // Linux IOV_MAX; = iovecsPerWritevMax in TS
constexpr size_t kRoundBytesMax = 64u * 1024 * 1024;  // = roundBytesMax in src/accel/append-types.ts

struct Request {
  double id;
  std::vector<uint8_t> data;  // the call's records, copied contiguously
  bool sync;
  bool close;
};

struct Completion {
  double last_id;
  int err;
  const char* syscall;
  uint32_t covered;  // requests this round settled
};

struct FileState;
void call_js(Napi::Env env, Napi::Function cb, FileState* s, Completion* c);
using Tsfn = Napi::TypedThreadSafeFunction<FileState, Completion, call_js>;

struct FileState {
  int fd = -1;
  std::mutex m;
  std::condition_variable cv;
  std::deque<Request> queue;  // guarded by m
  bool stop = false;          // guarded by m: the JS handle was collected without close()
  Tsfn tsfn;
  std::atomic<uint64_t> calls{0}, rounds{0}, writevs{0}, fdatasyncs{0};
  std::atomic<uint64_t> write_ns{0}, sync_ns{0};  // time spent in writev / fdatasync
  // Requests enqueued whose round has not finished its writev / fdatasync yet: 0 means a request
  // enqueued now starts a round at once (fileIdle). Counted down before the round is reported
  // to JS, so JS sees the disk free while the completion is still on its way.
  std::atomic<uint32_t> outstanding{0};
  // JS thread only:
  uint64_t pending = 0;  // requests not yet settled; the tsfn keeps the loop alive only while > 0
  bool closed = false;
};

void call_js(Napi::Env env, Napi::Function cb, FileState* s, Completion* c) {
  if (env != nullptr && cb != nullptr) {
    s->pending -= c->covered;
    if (s->pending == 0) s->tsfn.Unref(env);
    const char* msg = c->err != 0 ? std::strerror(c->err) : "";
    cb.Call({Napi::Number::New(env, c->last_id), Napi::Number::New(env, c->err), Napi::String::New(env, c->syscall),
             Napi::String::New(env, msg)});
  }
  delete c;
}

// Writes every byte of iov[0..n) (writev may accept less than asked). Returns 0 or an errno.
int write_all(FileState* s, struct iovec* iov, size_t n) {
  while (n > 0) {
    s->writevs++;
    ssize_t w = ::writev(s->fd, iov, static_cast<int>(n));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    size_t left = static_cast<size_t>(w);
    while (n > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = static_cast<uint8_t*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return 0;
}

void worker(std::shared_ptr<FileState> s) {
  int poison = 0;
  const char* poison_syscall = "";
  std::vector<Request> round;
  std::vector<struct iovec> iov;
  bool closed = false;
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(s->m);
      s->cv.wait(lk, [&] { return !s->queue.empty() || s->stop; });
      if (s->queue.empty()) break;  // stop with nothing pending
      size_t bytes = 0;
      while (!s->queue.empty() && (round.empty() || bytes + s->queue.front().data.size() <= kRoundBytesMax)) {
        bytes += s->queue.front().data.size();
        round.push_back(std::move(s->queue.front()));
        s->queue.pop_front();
      }
    }
    s->rounds++;
    bool want_sync = false;
    bool want_close = false;
    iov.clear();
    for (Request& r : round) {
      want_sync |= r.sync;
      want_close |= r.close;
      if (!r.data.empty()) iov.push_back({r.data.data(), r.data.size()});
    }
    const auto t0 = std::chrono::steady_clock::now();
    if (poison == 0) {
      for (size_t i = 0; i < iov.size() && poison == 0; i += kIovecsPerWritevMax) {
        int e = write_all(s.get(), iov.data() + i, std::min(kIovecsPerWritevMax, iov.size() - i));
        if (e != 0) { poison = e; poison_syscall = "writev"; }
      }
      const auto t1 = std::chrono::steady_clock::now();
      s->write_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
      if (poison == 0 && want_sync) {
        s->fdatasyncs++;
        int rc;
        do rc = ::fdatasync(s->fd); while (rc != 0 && errno == EINTR);
        if (rc != 0) { poison = errno; poison_syscall = "fdatasync"; }
        s->sync_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t1).count();
      }
    }
    if (want_close) {
      ::close(s->fd);
      closed = true;
    }
    s->outstanding -= static_cast<uint32_t>(round.size());
    auto* c = new Completion{round.back().id, poison, poison_syscall, static_cast<uint32_t>(round.size())};
    round.clear();
    if (s->tsfn.BlockingCall(c) != napi_ok) delete c;
    if (closed) break;
  }
  if (!closed) ::close(s->fd);
  s->tsfn.Release();
}

struct Handle {
  std::shared_ptr<FileState> s;
};

FileState* state_of(Napi::Env env, const Napi::Value& v) {
  if (!v.IsExternal()) throw Napi::TypeError::New(env, "not a file handle");
  return v.As<Napi::External<Handle>>().Data()->s.get();
}

[[noreturn]] void throw_errno(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, std::strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  throw e;
}

// fileOpen(path, onDone): [handle, size]
Napi::Value FileOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsFunction()) throw Napi::TypeError::New(env, "fileOpen: expected (path, onDone)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno(env, errno, "open");
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw_errno(env, e, "fstat");
  }
  auto s = std::make_shared<FileState>();
  s->fd = fd;
  auto* keep = new std::shared_ptr<FileState>(s);  // lives until the tsfn is finalized
  s->tsfn = Tsfn::New(env, info[1].As<Napi::Function>(), "imdb_accel_append", 0, 1, s.get(),
                      [](Napi::Env, std::shared_ptr<FileState>* k, FileState*) { delete k; }, keep);
  s->tsfn.Unref(env);
  std::thread(worker, s).detach();
  auto handle = Napi::External<Handle>::New(env, new Handle{s}, [](Napi::Env, Handle* h) {
    if (!h->s->closed) {
      std::lock_guard<std::mutex> lk(h->s->m);
      h->s->stop = true;
      h->s->cv.notify_one();
    }
    delete h;
  });
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, handle);
  out.Set(1u, Napi::Number::New(env, static_cast<double>(st.st_size)));
  return out;
}

void enqueue(Napi::Env env, FileState* s, Request&& r) {
  s->calls++;
  if (s->pending++ == 0) s->tsfn.Ref(env);
  s->outstanding++;
  {
    std::lock_guard<std::mutex> lk(s->m);
    s->queue.push_back(std::move(r));
  }
  s->cv.notify_one();
}

// fileAppend(handle, records: Uint8Array[], sync: boolean, id: number): void
Napi::Value FileAppend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[1].IsArray() || !info[3].IsNumber()) throw Napi::TypeError::New(env, "fileAppend: expected (handle, records, sync, id)");
  FileState* s = state_of(env, info[0]);
  if (s->closed) throw Napi::Error::New(env, "fileAppend: file is closed");
  Napi::Array recs = info[1].As<Napi::Array>();
  const uint32_t n = recs.Length();
  std::vector<std::pair<const uint8_t*, size_t>> parts;
  parts.reserve(n);
  size_t total = 0;
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = recs.Get(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      throw Napi::TypeError::New(env, "fileAppend: records must be Uint8Arrays");
    }
    Napi::Uint8Array u = v.As<Napi::Uint8Array>();
    parts.emplace_back(u.Data(), u.ByteLength());
    total += u.ByteLength();
  }
  Request r{info[3].As<Napi::Number>().DoubleValue(), {}, info[2].ToBoolean().Value(), false};
  r.data.resize(total);
  size_t at = 0;
  for (auto& p : parts) {
    if (p.second) std::memcpy(r.data.data() + at, p.first, p.second);
    at += p.second;
  }
  enqueue(env, s, std::move(r));
  return env.Undefined();
}

// fileClose(handle, id): void — settles after everything queued before it.
Napi::Value FileClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FileState* s = state_of(env, info[0]);
  if (s->closed) throw Napi::Error::New(env, "fileClose: already closed");
  s->closed = true;
  enqueue(env, s, Request{info[1].As<Napi::Number>().DoubleValue(), {}, false, true});
  return env.Undefined();
}

// fileIdle(handle): boolean — nothing enqueued is waiting for or inside a round.
Napi::Value FileIdle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FileState* s = state_of(env, info[0]);
  return Napi::Boolean::New(env, s->outstanding.load() == 0);
}

// fileStats(handle): Float64Array [calls, rounds, writevs, fdatasyncs, writeMs, fdatasyncMs]
Napi::Value FileStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FileState* s = state_of(env, info[0]);
  Napi::Float64Array out = Napi::Float64Array::New(env, 6);
  out[0] = static_cast<double>(s->calls.load());
  out[1] = static_cast<double>(s->rounds.load());
  out[2] = static_cast<double>(s->writevs.load());
  out[3] = static_cast<double>(s->fdatasyncs.load());
  out[4] = static_cast<double>(s->write_ns.load()) / 1e6;
  out[5] = static_cast<double>(s->sync_ns.load()) / 1e6;
  return out;
}

}  // namespace

void register_append(Napi::Env env, Napi::Object exports) {
  exports.Set("fileOpen", Napi::Function::New(env, FileOpen, "fileOpen"));
  exports.Set("fileAppend", Napi::Function::New(env, FileAppend, "fileAppend"));
  exports.Set("fileClose", Napi::Function::New(env, FileClose, "fileClose"));
  exports.Set("fileIdle", Napi::Function::New(env, FileIdle, "fileIdle"));
  exports.Set("fileStats", Napi::Function::New(env, FileStats, "fileStats"));
}

}  // namespace imdb
