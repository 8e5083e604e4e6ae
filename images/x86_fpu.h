// x86_64 FPU and vector registers: the conversion between the kernel's
// XSAVE buffer (PTRACE_GETREGSET / PTRACE_SETREGSET NT_X86_XSTATE: the
// standard, non-compacted format) and the images' user_x86_fpregs_entry,
// filled as CRIU 4.2 fills it. The dump converts one way, a restore the
// other; both with the CPU's layout (sys::HostXstateLayout()).
#pragma once

#include <string>
#include <string_view>

#include "images/proto/core-x86.pb.h"
#include "sys/cpu.h"
#include "sys/status.h"

namespace ro::images {

// The legacy FXSAVE region (cwd, swd, twd, fop, rip, rdp, mxcsr,
// mxcsr_mask, st_space, xmm_space), then, when the CPU has XSAVE, `xsave`:
// xstate_bv from the XSAVE header and every component the CPU enables that
// CRIU's images hold (AVX ymmh_space, MPX bndreg_state/bndcsr_state,
// AVX-512 opmask_reg/zmm_upper/hi16_zmm, pkru), taken from its offset in
// `layout` whether in use or not, as CRIU does; `cet` is written zero
// (shadow stacks are not in this buffer). Errors: a buffer shorter than the
// layout, or a component in use that the images cannot hold (AMX tiles).
Result<img::user_x86_fpregs_entry> XsaveToFpregs(std::string_view xsave, const sys::XstateLayout& layout);

// The buffer PTRACE_SETREGSET NT_X86_XSTATE takes, `layout.size` bytes:
// the legacy region, the software-reserved bytes as the kernel fills them (XCR0),
// the header (the image's xstate_bv; x87|SSE for images without `xsave`)
// and each component the image holds at its offset; everything else zero
// (the init state of every extended component). Errors: state this CPU
// does not have (a bit of xstate_bv, or a non-zero component, outside
// `layout.features`), reserved MXCSR bits set, an array of the wrong
// length, a CPU without XSAVE.
Result<std::string> FpregsToXsave(const img::user_x86_fpregs_entry& fpregs, const sys::XstateLayout& layout);

}  // namespace ro::images
