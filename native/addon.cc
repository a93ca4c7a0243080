// Entry point of imdb_accel.node: registers the batch-shaped primitives (checksums, clocks,
// durable append). The JS-visible surface is wrapped by src/accel/native.ts only.
#include "accel.h"

namespace imdb {

void throw_accel_error(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::RangeError::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  throw e;
}

}  // namespace imdb

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  imdb::crc32c_init();
  imdb::register_checksums(env, exports);
  imdb::register_clocks(env, exports);
  imdb::register_append(env, exports);
  return exports;
}

NODE_API_MODULE(imdb_accel, Init)
