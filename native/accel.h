// Declarations shared by the addon's translation units: the plain C++ cores (testable without
// N-API) and the N-API registration hooks of each primitive.
#pragma once

#include <napi.h>
#include <cstddef>
#include <cstdint>

namespace imdb {

// CRC32C (Castagnoli). crc32c_update continues a raw (non-inverted) CRC.
uint32_t crc32c_update(uint32_t crc, const uint8_t* data, size_t len);
inline uint32_t crc32c(const uint8_t* data, size_t len) { return crc32c_update(0xFFFFFFFFu, data, len) ^ 0xFFFFFFFFu; }
const char* crc32c_impl_name();
void crc32c_init();

// Clock order values, wire-stable, as in src/accel/api.ts.
enum ClockOrder : uint8_t { kEqual = 0, kBefore = 1, kAfter = 2, kConcurrent = 3 };

// Throws a JS Error whose `code` property is one of src/accel/errors.ts' AccelErrorCode values.
[[noreturn]] void throw_accel_error(Napi::Env env, const char* code, const std::string& message);

void register_checksums(Napi::Env env, Napi::Object exports);
void register_clocks(Napi::Env env, Napi::Object exports);
void register_append(Napi::Env env, Napi::Object exports);

}  // namespace imdb
