#include "images/x86_fpu.h"

#include <cstring>
#include <type_traits>

namespace ro::images {
namespace {

// The FXSAVE image (struct user_fpregs_struct) and the XSAVE header.
constexpr size_t kCwd = 0, kSwd = 2, kTwd = 4, kFop = 6, kRip = 8, kRdp = 16, kMxcsr = 24, kMxcsrMask = 28;
constexpr size_t kSt = 32, kStWords = 32, kXmm = 160, kXmmWords = 64, kPadding = 416, kPaddingWords = 12;
constexpr size_t kSwReserved = 464, kLegacyBytes = 512, kHeader = 512, kHeaderBytes = 64;
constexpr uint64_t kLegacyFeatures = 0x3;  // x87 | SSE

template <class T>
T Load(std::string_view b, size_t at) {
  T v{};
  std::memcpy(&v, b.data() + at, sizeof(T));
  return v;
}
template <class T>
void Store(std::string& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof(T));
}

// One XSAVE component as the images hold it: a repeated field of u32 or
// u64 words.
struct Component {
  int feature;
  const char* name;
  bool wide;  // u64 words
  google::protobuf::RepeatedField<uint32_t>* (*narrow_of)(img::user_x86_xsave_entry&);
  google::protobuf::RepeatedField<uint64_t>* (*wide_of)(img::user_x86_xsave_entry&);
};

constexpr Component kComponents[] = {
    {2, "AVX upper halves (ymmh_space)", false, [](img::user_x86_xsave_entry& x) { return x.mutable_ymmh_space(); }, nullptr},
    {3, "MPX bound registers (bndreg_state)", true, nullptr, [](img::user_x86_xsave_entry& x) { return x.mutable_bndreg_state(); }},
    {4, "MPX bound configuration (bndcsr_state)", true, nullptr, [](img::user_x86_xsave_entry& x) { return x.mutable_bndcsr_state(); }},
    {5, "AVX-512 opmask registers (opmask_reg)", true, nullptr, [](img::user_x86_xsave_entry& x) { return x.mutable_opmask_reg(); }},
    {6, "AVX-512 zmm0-15 upper halves (zmm_upper)", true, nullptr, [](img::user_x86_xsave_entry& x) { return x.mutable_zmm_upper(); }},
    {7, "AVX-512 zmm16-31 (hi16_zmm)", true, nullptr, [](img::user_x86_xsave_entry& x) { return x.mutable_hi16_zmm(); }},
    {9, "protection keys (pkru)", false, [](img::user_x86_xsave_entry& x) { return x.mutable_pkru(); }, nullptr},
};

uint64_t KnownFeatures() {
  uint64_t m = kLegacyFeatures;
  for (const Component& c : kComponents) m |= uint64_t{1} << c.feature;
  return m;
}

std::string Bits(uint64_t mask) {
  std::string out;
  for (int i = 0; i < 64; ++i) {
    if ((mask >> i) & 1) out += (out.empty() ? "" : ",") + std::to_string(i);
  }
  return out;
}

template <class T>
void AppendWords(google::protobuf::RepeatedField<T>* field, std::string_view b, size_t at, size_t bytes) {
  field->Clear();
  field->Reserve(static_cast<int>(bytes / sizeof(T)));
  for (size_t i = 0; i < bytes / sizeof(T); ++i) field->Add(Load<T>(b, at + i * sizeof(T)));
}

template <class T>
bool AllZero(const google::protobuf::RepeatedField<T>& field) {
  for (T v : field) {
    if (v != 0) return false;
  }
  return true;
}

template <class T>
void StoreWords(std::string& b, size_t at, const google::protobuf::RepeatedField<T>& field) {
  for (int i = 0; i < field.size(); ++i) Store<T>(b, at + static_cast<size_t>(i) * sizeof(T), field.Get(i));
}

}  // namespace

Result<img::user_x86_fpregs_entry> XsaveToFpregs(std::string_view xsave, const sys::XstateLayout& layout) {
  size_t need = layout.features != 0 ? std::max<size_t>(layout.size, kHeader + kHeaderBytes) : kLegacyBytes;
  if (xsave.size() < need) {
    return Fail("XSAVE buffer of " + std::to_string(xsave.size()) + " bytes, the CPU's layout needs " + std::to_string(need));
  }
  img::user_x86_fpregs_entry fp;
  fp.set_cwd(Load<uint16_t>(xsave, kCwd));
  fp.set_swd(Load<uint16_t>(xsave, kSwd));
  fp.set_twd(Load<uint16_t>(xsave, kTwd));
  fp.set_fop(Load<uint16_t>(xsave, kFop));
  fp.set_rip(Load<uint64_t>(xsave, kRip));
  fp.set_rdp(Load<uint64_t>(xsave, kRdp));
  fp.set_mxcsr(Load<uint32_t>(xsave, kMxcsr));
  fp.set_mxcsr_mask(Load<uint32_t>(xsave, kMxcsrMask));
  AppendWords(fp.mutable_st_space(), xsave, kSt, kStWords * 4);
  AppendWords(fp.mutable_xmm_space(), xsave, kXmm, kXmmWords * 4);
  if (layout.features == 0) return fp;

  img::user_x86_xsave_entry& x = *fp.mutable_xsave();
  uint64_t in_use = Load<uint64_t>(xsave, kHeader);
  x.set_xstate_bv(in_use);
  if (uint64_t unknown = in_use & ~KnownFeatures(); unknown != 0) {
    return Fail("XSAVE state components " + Bits(unknown) + " are in use (AMX tiles or newer): CRIU's images cannot hold them");
  }
  for (const Component& c : kComponents) {
    if (!layout.Has(c.feature)) continue;
    sys::XstateComponent where = layout.components[static_cast<size_t>(c.feature)];
    if (where.offset + where.size > xsave.size()) {
      return Fail(std::string(c.name) + " lies beyond the " + std::to_string(xsave.size()) + "-byte XSAVE buffer");
    }
    if (c.wide) {
      AppendWords(c.wide_of(x), xsave, where.offset, where.size);
    } else {
      AppendWords(c.narrow_of(x), xsave, where.offset, where.size);
    }
  }
  x.mutable_cet()->set_cet(0);
  x.mutable_cet()->set_ssp(0);
  return fp;
}

Result<std::string> FpregsToXsave(const img::user_x86_fpregs_entry& fpregs, const sys::XstateLayout& layout) {
  if (layout.features == 0 || layout.size < kHeader + kHeaderBytes) return Fail("this CPU has no XSAVE: NT_X86_XSTATE is not available");
  if (fpregs.st_space_size() != static_cast<int>(kStWords) || fpregs.xmm_space_size() != static_cast<int>(kXmmWords)) {
    return Fail("st_space has " + std::to_string(fpregs.st_space_size()) + " words and xmm_space " +
                std::to_string(fpregs.xmm_space_size()) + " (32 and 64 expected)");
  }
  // MXCSR's reserved bits must be zero (the kernel refuses the buffer with
  // EINVAL); 0xffff is every bit an x86_64 CPU defines (DAZ included).
  if ((fpregs.mxcsr() & ~0xffffu) != 0) {
    return Fail("mxcsr " + std::to_string(fpregs.mxcsr()) + " sets reserved bits: the kernel refuses it");
  }
  std::string b(layout.size, '\0');
  Store<uint16_t>(b, kCwd, static_cast<uint16_t>(fpregs.cwd()));
  Store<uint16_t>(b, kSwd, static_cast<uint16_t>(fpregs.swd()));
  Store<uint16_t>(b, kTwd, static_cast<uint16_t>(fpregs.twd()));
  Store<uint16_t>(b, kFop, static_cast<uint16_t>(fpregs.fop()));
  Store<uint64_t>(b, kRip, fpregs.rip());
  Store<uint64_t>(b, kRdp, fpregs.rdp());
  Store<uint32_t>(b, kMxcsr, fpregs.mxcsr());
  Store<uint32_t>(b, kMxcsrMask, fpregs.mxcsr_mask());
  StoreWords(b, kSt, fpregs.st_space());
  StoreWords(b, kXmm, fpregs.xmm_space());
  if (fpregs.padding_size() == static_cast<int>(kPaddingWords)) StoreWords(b, kPadding, fpregs.padding());
  // The kernel puts XCR0 at the start of the software-reserved bytes for
  // debuggers (gdb reads it at offset 464) and ignores them when the
  // buffer is set.
  Store<uint64_t>(b, kSwReserved, layout.features);

  uint64_t in_use = fpregs.has_xsave() ? fpregs.xsave().xstate_bv() : kLegacyFeatures;
  if (uint64_t missing = in_use & ~layout.features; missing != 0) {
    return Fail("xstate_bv " + std::to_string(in_use) + " holds components " + Bits(missing) + " this CPU does not enable");
  }
  Store<uint64_t>(b, kHeader, in_use);
  if (!fpregs.has_xsave()) return b;
  img::user_x86_xsave_entry x = fpregs.xsave();
  for (const Component& c : kComponents) {
    bool zero = c.wide ? AllZero(*c.wide_of(x)) : AllZero(*c.narrow_of(x));
    size_t bytes = c.wide ? static_cast<size_t>(c.wide_of(x)->size()) * 8 : static_cast<size_t>(c.narrow_of(x)->size()) * 4;
    if (bytes == 0) continue;
    if (!layout.Has(c.feature)) {
      if (zero) continue;  // init state: nothing lost
      return Fail(std::string("the image holds ") + c.name + ", which this CPU does not have");
    }
    sys::XstateComponent where = layout.components[static_cast<size_t>(c.feature)];
    if (bytes != where.size) {
      return Fail(std::string(c.name) + ": " + std::to_string(bytes) + " bytes in the image, " + std::to_string(where.size) +
                  " on this CPU");
    }
    if (c.wide) {
      StoreWords(b, where.offset, *c.wide_of(x));
    } else {
      StoreWords(b, where.offset, *c.narrow_of(x));
    }
  }
  return b;
}

}  // namespace ro::images
