// CRC32C (Castagnoli) for the addon: the CPU's CRC instruction (SSE4.2 on x86-64, the CRC
// extension on ARMv8) chosen at load time by a runtime check, and slicing-by-8 tables otherwise.
#include "accel.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_acle.h>
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#endif

namespace imdb {
namespace {

uint32_t g_table[8][256];

void build_tables() {
  const uint32_t poly = 0x82F63B78u;
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t c = b;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
    g_table[0][b] = c;
  }
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t c = g_table[0][b];
    for (int k = 1; k < 8; k++) {
      c = g_table[0][c & 0xFF] ^ (c >> 8);
      g_table[k][b] = c;
    }
  }
}

uint32_t crc_table(uint32_t crc, const uint8_t* p, size_t len) {
  while (len >= 8) {
    uint32_t lo;
    std::memcpy(&lo, p, 4);  // little-endian hosts only (x86-64, aarch64 Linux)
    lo ^= crc;
    crc = g_table[7][lo & 0xFF] ^ g_table[6][(lo >> 8) & 0xFF] ^ g_table[5][(lo >> 16) & 0xFF] ^
          g_table[4][lo >> 24] ^ g_table[3][p[4]] ^ g_table[2][p[5]] ^ g_table[1][p[6]] ^ g_table[0][p[7]];
    p += 8;
    len -= 8;
  }
  while (len--) crc = g_table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc_sse42(uint32_t crc, const uint8_t* p, size_t len) {
  uint64_t c = crc;
  while (len >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    len -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (len--) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}

// Many records: three independent CRC chains in flight hide the instruction's 3-cycle latency
// (one chain per record, so no CRC combination step is needed); tails finish one at a time.
__attribute__((target("sse4.2"))) void crc_many_sse42(const uint8_t* d, const uint32_t* o, uint32_t* out, size_t n) {
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint8_t* p0 = d + o[i];
    const uint8_t* p1 = d + o[i + 1];
    const uint8_t* p2 = d + o[i + 2];
    size_t l0 = o[i + 1] - o[i], l1 = o[i + 2] - o[i + 1], l2 = o[i + 3] - o[i + 2];
    size_t words = std::min(l0, std::min(l1, l2)) / 8;
    uint64_t c0 = 0xFFFFFFFFu, c1 = 0xFFFFFFFFu, c2 = 0xFFFFFFFFu;
    for (size_t k = 0; k < words; k++) {
      uint64_t v0, v1, v2;
      std::memcpy(&v0, p0, 8);
      std::memcpy(&v1, p1, 8);
      std::memcpy(&v2, p2, 8);
      c0 = _mm_crc32_u64(c0, v0);
      c1 = _mm_crc32_u64(c1, v1);
      c2 = _mm_crc32_u64(c2, v2);
      p0 += 8;
      p1 += 8;
      p2 += 8;
    }
    const size_t done = words * 8;
    out[i] = crc_sse42(static_cast<uint32_t>(c0), p0, l0 - done) ^ 0xFFFFFFFFu;
    out[i + 1] = crc_sse42(static_cast<uint32_t>(c1), p1, l1 - done) ^ 0xFFFFFFFFu;
    out[i + 2] = crc_sse42(static_cast<uint32_t>(c2), p2, l2 - done) ^ 0xFFFFFFFFu;
  }
  for (; i < n; i++) out[i] = crc_sse42(0xFFFFFFFFu, d + o[i], o[i + 1] - o[i]) ^ 0xFFFFFFFFu;
}
#endif

#if defined(__aarch64__)
__attribute__((target("+crc"))) uint32_t crc_armv8(uint32_t crc, const uint8_t* p, size_t len) {
  while (len >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    crc = __crc32cd(crc, v);
    p += 8;
    len -= 8;
  }
  while (len--) crc = __crc32cb(crc, *p++);
  return crc;
}
#endif

using CrcFn = uint32_t (*)(uint32_t, const uint8_t*, size_t);
using CrcManyFn = void (*)(const uint8_t*, const uint32_t*, uint32_t*, size_t);
CrcFn g_crc = crc_table;

void crc_many_generic(const uint8_t* d, const uint32_t* o, uint32_t* out, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = g_crc(0xFFFFFFFFu, d + o[i], o[i + 1] - o[i]) ^ 0xFFFFFFFFu;
}
CrcManyFn g_crc_many = crc_many_generic;
const char* g_name = "table";

// crc32c(data: Uint8Array): number
Napi::Value Crc32c(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "crc32c: data must be a Uint8Array");
  Napi::Uint8Array a = info[0].As<Napi::Uint8Array>();
  return Napi::Number::New(env, crc32c(a.Data(), a.ByteLength()));
}

// crc32cMany(buf: Uint8Array, offsets: Uint32Array): Uint32Array
Napi::Value Crc32cMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsTypedArray()) {
    throw Napi::TypeError::New(env, "crc32cMany: expected (Uint8Array, Uint32Array)");
  }
  Napi::Uint8Array buf = info[0].As<Napi::Uint8Array>();
  Napi::TypedArray ot = info[1].As<Napi::TypedArray>();
  if (ot.TypedArrayType() != napi_uint32_array) throw Napi::TypeError::New(env, "crc32cMany: offsets must be a Uint32Array");
  Napi::Uint32Array offs = ot.As<Napi::Uint32Array>();
  const size_t n1 = offs.ElementLength();
  const uint32_t* o = offs.Data();
  const uint8_t* data = buf.Data();
  const size_t len = buf.ByteLength();
  // Same checks, in the same order, as checkOffsets() in src/accel/errors.ts.
  if (n1 == 0) throw_accel_error(env, "BAD_OFFSETS", "crc32cMany: offsets must have n+1 >= 1 entries");
  if (o[0] != 0) throw_accel_error(env, "BAD_OFFSETS", "crc32cMany: offsets[0] must be 0");
  for (size_t i = 1; i < n1; i++) {
    if (o[i] < o[i - 1]) {
      throw_accel_error(env, "BAD_OFFSETS", "crc32cMany: offsets must be non-decreasing (index " + std::to_string(i) + ")");
    }
  }
  if (o[n1 - 1] > len) {
    throw_accel_error(env, "BAD_OFFSETS", "crc32cMany: last offset " + std::to_string(o[n1 - 1]) + " is past the end (" + std::to_string(len) + ")");
  }
  Napi::Uint32Array out = Napi::Uint32Array::New(env, n1 - 1);
  g_crc_many(data, o, out.Data(), n1 - 1);
  return out;
}

Napi::Value CrcImpl(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), g_name); }

}  // namespace

uint32_t crc32c_update(uint32_t crc, const uint8_t* data, size_t len) { return g_crc(crc, data, len); }
const char* crc32c_impl_name() { return g_name; }

void crc32c_init() {
  build_tables();
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2")) {
    g_crc = crc_sse42;
    g_crc_many = crc_many_sse42;
    g_name = "sse4.2";
  }
#endif
#if defined(__aarch64__)
  if (getauxval(AT_HWCAP) & HWCAP_CRC32) {
    g_crc = crc_armv8;
    g_name = "armv8";
  }
#endif
  // IMDB_ACCEL_CRC=table forces the C++ table path (to test it on a CPU that has the instruction).
  const char* force = std::getenv("IMDB_ACCEL_CRC");
  if (force && std::strcmp(force, "table") == 0) {
    g_crc = crc_table;
    g_crc_many = crc_many_generic;
    g_name = "table";
  }
}

void register_checksums(Napi::Env env, Napi::Object exports) {
  exports.Set("crc32c", Napi::Function::New(env, Crc32c, "crc32c"));
  exports.Set("crc32cMany", Napi::Function::New(env, Crc32cMany, "crc32cMany"));
  exports.Set("crcImpl", Napi::Function::New(env, CrcImpl, "crcImpl"));
}

}  // namespace imdb
