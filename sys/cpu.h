// The CPU's XSAVE layout, from CPUID leaf 0xD and XCR0: where each state
// component lies in the standard (non-compacted) format that
// PTRACE_GETREGSET/SETREGSET NT_X86_XSTATE use.
#pragma once

#include <array>
#include <cstdint>

namespace ro::sys {

struct XstateComponent {
  uint32_t offset = 0;  // from the start of the XSAVE area
  uint32_t size = 0;
};

struct XstateLayout {
  // XCR0: the user state components the kernel enabled (bit i is component
  // i: 0 x87, 1 SSE, 2 AVX, 3-4 MPX, 5-7 AVX-512, 9 PKRU, 17-18 AMX...);
  // 0 on a CPU without XSAVE.
  uint64_t features = 0;
  // Bytes of the standard-format area holding them (CPUID.(0xD,0).EBX): the
  // length of the kernel's NT_X86_XSTATE buffer.
  uint32_t size = 0;
  // Offset and size of every component >= 2 in `features` (CPUID.(0xD,i)).
  std::array<XstateComponent, 64> components{};

  bool Has(int component) const { return (features >> component) & 1; }
};

// This CPU's layout, read once.
const XstateLayout& HostXstateLayout();

}  // namespace ro::sys
