// Durable append for the addon: one worker thread per open file does pwritev + fdatasync with
// group commit (everything queued while a round runs goes out in the next round) and reports
// each finished round to JS with a single thread-safe-function call. Zeros are written ahead of
// the data so that appends land in blocks the file already has (see zeroAheadBytes in
// src/accel/append-types.ts; src/accel/append-ts.ts does the same).
//
// The worker only writes; up to kSyncersMax syncer threads run the fdatasyncs, so a round's
// fdatasync starts while the one before is still running (the block layer then serves both with
// fewer device flushes; on the development VM two WAL files syncing at once gave ~2.8x the
// records/s of one). An fdatasync makes durable everything written before it started, so a
// syncer takes every written round not yet taken, and rounds are reported strictly in order:
// a round is acknowledged only once it and every round before it are durable, and after the
// first failure every later round reports that failure. Each syncer has its own descriptor of
// the file: Linux reports a writeback error once per open file description, and with one shared
// descriptor a concurrent fdatasync could take the error that belonged to this round's pages.
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
constexpr size_t kZeroAheadBytes = 512u * 1024;       // = zeroAheadBytes in src/accel/append-types.ts
constexpr int kSyncersMax = 2;                        // fdatasyncs in flight per file
const std::vector<uint8_t> kZeros(kZeroAheadBytes);

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

// A written round waiting for its report (guarded by FileState::jm).
struct SyncJob {
  double last_id;
  uint32_t covered;
  bool taken;  // a syncer runs (or ran) the fdatasync covering it, or it needs none
  bool done;
  int err;
  const char* syscall;
};

struct FileState;
void call_js(Napi::Env env, Napi::Function cb, FileState* s, Completion* c);
using Tsfn = Napi::TypedThreadSafeFunction<FileState, Completion, call_js>;

struct FileState {
  int fd = -1;
  // Worker thread only (set before it starts): where the next append goes, and where the zeros
  // written ahead of it end.
  off_t end = 0;
  off_t zeroed_end = 0;
  int sync_fds[kSyncersMax];  // the syncers' own descriptors (see the top)
  std::mutex jm;
  std::condition_variable jcv;    // syncers: a job to take or stop; the worker: every job reported
  std::deque<SyncJob> jobs;       // guarded by jm: written rounds not yet reported, in order
  size_t untaken = 0;             // guarded by jm
  bool syncers_stop = false;      // guarded by jm
  int first_err = 0;              // guarded by jm: the first failure, reported by every later round
  const char* first_syscall = "";
  std::atomic<int> sync_err{0};   // a failed fdatasync: the worker writes nothing more
  std::mutex m;
  std::condition_variable cv;
  std::deque<Request> queue;  // guarded by m
  bool stop = false;          // guarded by m: the JS handle was collected without close()
  Tsfn tsfn;
  std::atomic<uint64_t> calls{0}, rounds{0}, writevs{0}, fdatasyncs{0};
  std::atomic<uint64_t> write_ns{0}, sync_ns{0};  // time spent in writev / fdatasync
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

// Writes every byte of iov[0..n) at s->end, advancing it (pwritev may accept less than asked).
// Returns 0 or an errno.
int write_all(FileState* s, struct iovec* iov, size_t n) {
  while (n > 0) {
    s->writevs++;
    ssize_t w = ::pwritev(s->fd, iov, static_cast<int>(n), s->end);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    s->end += w;
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

// Once the data reaches the zeros written before, writes kZeroAheadBytes more after it, so the
// next appends' fdatasync flushes data only. Best effort: on failure (a full disk) appends go on
// into blocks allocated as they come, as without it.
void zero_ahead(FileState* s) {
  if (s->end <= s->zeroed_end) return;
  off_t at = s->end;
  const off_t to = s->end + static_cast<off_t>(kZeroAheadBytes);
  while (at < to) {
    ssize_t w = ::pwrite(s->fd, kZeros.data(), static_cast<size_t>(to - at), at);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    at += w;
  }
  s->zeroed_end = at;
}

// Reports the finished jobs at the front, in order (jm held). BlockingCall never blocks here:
// the thread-safe function's queue is unbounded.
void report_ready(FileState* s) {
  while (!s->jobs.empty() && s->jobs.front().done) {
    const SyncJob j = s->jobs.front();
    s->jobs.pop_front();
    if (s->first_err == 0 && j.err != 0) {
      s->first_err = j.err;
      s->first_syscall = j.syscall;
    }
    auto* c = new Completion{j.last_id, s->first_err, s->first_err != 0 ? s->first_syscall : "", j.covered};
    if (s->tsfn.BlockingCall(c) != napi_ok) delete c;
  }
  if (s->jobs.empty()) s->jcv.notify_all();
}

void syncer(FileState* s, int fd) {
  std::vector<SyncJob*> mine;  // deque elements keep their address while others are pushed and popped
  std::unique_lock<std::mutex> lk(s->jm);
  for (;;) {
    s->jcv.wait(lk, [&] { return s->untaken > 0 || s->syncers_stop; });
    if (s->untaken == 0) break;
    mine.clear();
    for (SyncJob& j : s->jobs) {
      if (!j.taken) {
        j.taken = true;
        mine.push_back(&j);
      }
    }
    s->untaken = 0;
    lk.unlock();
    s->fdatasyncs++;
    const auto t0 = std::chrono::steady_clock::now();
    int rc;
    do rc = ::fdatasync(fd); while (rc != 0 && errno == EINTR);
    const int e = rc != 0 ? errno : 0;
    s->sync_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
    if (e != 0) s->sync_err = e;
    lk.lock();
    for (SyncJob* j : mine) {
      j->done = true;
      if (e != 0) {
        j->err = e;
        j->syscall = "fdatasync";
      }
    }
    report_ready(s);
  }
}

void worker(std::shared_ptr<FileState> s) {
  int poison = 0;
  const char* poison_syscall = "";
  std::vector<Request> round;
  std::vector<struct iovec> iov;
  std::vector<std::thread> syncers;
  for (int i = 0; i < kSyncersMax; i++) syncers.emplace_back(syncer, s.get(), s->sync_fds[i]);
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
    // After a failed fdatasync nothing more is written (its round reports the failure first).
    const bool writing = poison == 0 && s->sync_err.load() == 0;
    if (writing) {
      const auto t0 = std::chrono::steady_clock::now();
      for (size_t i = 0; i < iov.size() && poison == 0; i += kIovecsPerWritevMax) {
        int e = write_all(s.get(), iov.data() + i, std::min(kIovecsPerWritevMax, iov.size() - i));
        if (e != 0) { poison = e; poison_syscall = "writev"; }
      }
      if (poison == 0) zero_ahead(s.get());
      s->write_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
    }
    const uint32_t covered = static_cast<uint32_t>(round.size());
    const double last_id = round.back().id;
    round.clear();
    if (!want_close) {
      std::lock_guard<std::mutex> lk(s->jm);
      const bool needs_sync = want_sync && writing && poison == 0;
      s->jobs.push_back(SyncJob{last_id, covered, !needs_sync, !needs_sync, poison, poison_syscall});
      if (needs_sync) {
        s->untaken++;
        s->jcv.notify_all();
      } else {
        report_ready(s.get());
      }
      continue;
    }
    // Close: after every round before it is reported, sync this one's data here, cut the zeros
    // ahead (not data: a cleanly closed file ends at its last append; after any failure the end
    // is unknown, so nothing is cut), close, and report.
    std::unique_lock<std::mutex> lk(s->jm);
    s->jcv.wait(lk, [&] { return s->jobs.empty(); });
    int err = s->first_err != 0 ? s->first_err : poison;
    const char* syscall = s->first_err != 0 ? s->first_syscall : poison_syscall;
    if (err == 0 && want_sync) {
      s->fdatasyncs++;
      int rc;
      do rc = ::fdatasync(s->fd); while (rc != 0 && errno == EINTR);
      if (rc != 0) { err = errno; syscall = "fdatasync"; }
    }
    if (err == 0 && s->zeroed_end > s->end) {
      int rc;
      do rc = ::ftruncate(s->fd, s->end); while (rc != 0 && errno == EINTR);
    }
    auto* c = new Completion{last_id, err, syscall, covered};
    if (s->tsfn.BlockingCall(c) != napi_ok) delete c;
    break;
  }
  {
    std::lock_guard<std::mutex> lk(s->jm);
    s->syncers_stop = true;
    s->jcv.notify_all();
  }
  for (std::thread& t : syncers) t.join();
  for (int fd : s->sync_fds) ::close(fd);
  ::close(s->fd);
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
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno(env, errno, "open");
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw_errno(env, e, "fstat");
  }
  auto s = std::make_shared<FileState>();
  for (int i = 0; i < kSyncersMax; i++) {
    s->sync_fds[i] = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (s->sync_fds[i] < 0) {
      int e = errno;
      for (int k = 0; k < i; k++) ::close(s->sync_fds[k]);
      ::close(fd);
      throw_errno(env, e, "open");
    }
  }
  s->fd = fd;
  s->end = st.st_size;
  s->zeroed_end = st.st_size;
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
  exports.Set("fileStats", Napi::Function::New(env, FileStats, "fileStats"));
}

}  // namespace imdb
