#include "sys/cpu.h"

#include <cpuid.h>

#include <cstddef>

namespace ro::sys {
namespace {

constexpr unsigned kOsxsaveBit = 1u << 27;  // CPUID.1:ECX: the OS enabled XSAVE (XGETBV works)

XstateLayout ReadLayout() {
  XstateLayout out;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0, nullptr) < 0xd) return out;
  __cpuid(1, eax, ebx, ecx, edx);
  if ((ecx & kOsxsaveBit) == 0) return out;
  unsigned lo = 0, hi = 0;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  out.features = (static_cast<uint64_t>(hi) << 32) | lo;
  __cpuid_count(0xd, 0, eax, ebx, ecx, edx);
  out.size = ebx;
  for (int i = 2; i < 64; ++i) {
    if (!out.Has(i)) continue;
    __cpuid_count(0xd, static_cast<unsigned>(i), eax, ebx, ecx, edx);
    out.components[static_cast<size_t>(i)] = XstateComponent{ebx, eax};
  }
  return out;
}

}  // namespace

const XstateLayout& HostXstateLayout() {
  static const XstateLayout layout = ReadLayout();
  return layout;
}

}  // namespace ro::sys
