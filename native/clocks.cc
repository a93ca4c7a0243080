// Vector clock comparison for the addon over the packed representation of src/accel/api.ts;
// compare_range is a line-for-line copy of compareRange in src/accel/clocks-ts.ts.
#include "accel.h"

#include <string>

namespace imdb {
namespace {

ClockOrder compare_range(const uint32_t* aa, const double* ac, size_t ai, size_t ae,
                         const uint32_t* ba, const double* bc, size_t bi, size_t be) {
  bool a_less = false;
  bool a_more = false;
  size_t i = ai, j = bi;
  while (i < ae || j < be) {
    double x, y;
    if (j >= be || (i < ae && aa[i] < ba[j])) {
      x = ac[i]; y = 0; i++;
    } else if (i >= ae || ba[j] < aa[i]) {
      x = 0; y = bc[j]; j++;
    } else {
      x = ac[i]; y = bc[j]; i++; j++;
    }
    if (x < y) a_less = true;
    else if (x > y) a_more = true;
    if (a_less && a_more) return kConcurrent;
  }
  if (a_less) return kBefore;
  if (a_more) return kAfter;
  return kEqual;
}

template <typename T>
T typed(Napi::Env env, const Napi::Value& v, napi_typedarray_type type, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    throw Napi::TypeError::New(env, std::string(what) + ": wrong typed array type");
  }
  return v.As<T>();
}

struct Packed {
  const uint32_t* offsets;
  size_t n1;
  const uint32_t* actors;
  const double* counters;
};

// Same checks, in the same order, as checkPacked() in src/accel/clocks-ts.ts.
Packed packed(Napi::Env env, const Napi::CallbackInfo& info, size_t at, const std::string& what) {
  auto o = typed<Napi::Uint32Array>(env, info[at], napi_uint32_array, what.c_str());
  auto a = typed<Napi::Uint32Array>(env, info[at + 1], napi_uint32_array, what.c_str());
  auto c = typed<Napi::Float64Array>(env, info[at + 2], napi_float64_array, what.c_str());
  if (a.ElementLength() != c.ElementLength()) {
    throw_accel_error(env, "BAD_CLOCK", what + ": actors (" + std::to_string(a.ElementLength()) + ") and counters (" +
                                            std::to_string(c.ElementLength()) + ") differ in length");
  }
  Packed p{o.Data(), o.ElementLength(), a.Data(), c.Data()};
  if (p.n1 == 0 || p.offsets[0] != 0) throw_accel_error(env, "BAD_OFFSETS", what + ": offsets must start with 0");
  for (size_t i = 1; i < p.n1; i++) {
    if (p.offsets[i] < p.offsets[i - 1]) {
      throw_accel_error(env, "BAD_OFFSETS", what + ": offsets must be non-decreasing (index " + std::to_string(i) + ")");
    }
  }
  if (p.offsets[p.n1 - 1] > a.ElementLength()) {
    throw_accel_error(env, "BAD_OFFSETS", what + ": last offset " + std::to_string(p.offsets[p.n1 - 1]) +
                                              " is past the end (" + std::to_string(a.ElementLength()) + ")");
  }
  return p;
}

void check_clock(Napi::Env env, const Napi::Uint32Array& a, const Napi::Float64Array& c, const char* what) {
  if (a.ElementLength() != c.ElementLength()) {
    throw_accel_error(env, "BAD_CLOCK", std::string(what) + ": actors (" + std::to_string(a.ElementLength()) +
                                            ") and counters (" + std::to_string(c.ElementLength()) + ") differ in length");
  }
}

// compare(aActors, aCounters, bActors, bCounters): number
Napi::Value Compare(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4) throw Napi::TypeError::New(env, "compare: expected 4 typed arrays");
  auto aa = typed<Napi::Uint32Array>(env, info[0], napi_uint32_array, "compare a actors");
  auto ac = typed<Napi::Float64Array>(env, info[1], napi_float64_array, "compare a counters");
  auto ba = typed<Napi::Uint32Array>(env, info[2], napi_uint32_array, "compare b actors");
  auto bc = typed<Napi::Float64Array>(env, info[3], napi_float64_array, "compare b counters");
  check_clock(env, aa, ac, "compare a");
  check_clock(env, ba, bc, "compare b");
  return Napi::Number::New(env, compare_range(aa.Data(), ac.Data(), 0, aa.ElementLength(), ba.Data(), bc.Data(), 0, ba.ElementLength()));
}

// compareMany(aOffsets, aActors, aCounters, bOffsets, bActors, bCounters): Uint8Array
Napi::Value CompareMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 6) throw Napi::TypeError::New(env, "compareMany: expected 6 typed arrays");
  Packed a = packed(env, info, 0, "compareMany a");
  Packed b = packed(env, info, 3, "compareMany b");
  if (a.n1 != b.n1) {
    throw_accel_error(env, "BAD_CLOCK", "compareMany: a holds " + std::to_string(a.n1 - 1) + " clocks, b holds " + std::to_string(b.n1 - 1));
  }
  const size_t n = a.n1 - 1;
  Napi::Uint8Array out = Napi::Uint8Array::New(env, n);
  uint8_t* r = out.Data();
  for (size_t k = 0; k < n; k++) {
    r[k] = compare_range(a.actors, a.counters, a.offsets[k], a.offsets[k + 1], b.actors, b.counters, b.offsets[k], b.offsets[k + 1]);
  }
  return out;
}

}  // namespace

void register_clocks(Napi::Env env, Napi::Object exports) {
  exports.Set("compare", Napi::Function::New(env, Compare, "compare"));
  exports.Set("compareMany", Napi::Function::New(env, CompareMany, "compareMany"));
}

}  // namespace imdb
