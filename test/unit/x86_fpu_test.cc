// images/x86_fpu: a real XSAVE buffer, read from a stopped child whose
// vector registers hold known patterns, goes to the images and back to the
// very same bytes, which the kernel takes again (PTRACE_SETREGSET). No
// privileges: the child is traced by its parent.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "images/x86_fpu.h"
#include "sys/cpu.h"
#include "sys/ptrace_api.h"

namespace ro::images {
namespace {

// xmm<i> (and zmm<i>, k<i> with AVX-512) hold patterns; then the child
// stops itself with a raw kill(2), so no library code runs in between.
[[noreturn]] void PatternsThenStop(bool avx512) {
  alignas(64) static uint32_t pattern[16 * 16];
  for (uint32_t i = 0; i < 16 * 16; ++i) pattern[i] = 0x01010101u * (i / 16 + 1) + i;
  asm volatile(
      "movdqu 0(%0), %%xmm0\n movdqu 64(%0), %%xmm1\n movdqu 128(%0), %%xmm2\n movdqu 192(%0), %%xmm3\n"
      "movdqu 256(%0), %%xmm4\n movdqu 320(%0), %%xmm5\n movdqu 384(%0), %%xmm6\n movdqu 448(%0), %%xmm7\n" ::"r"(pattern)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7");
  if (avx512) {
    asm volatile(
        "vmovdqu32 0(%0), %%zmm1\n vmovdqu32 64(%0), %%zmm17\n vmovdqu32 128(%0), %%zmm31\n"
        "mov $0x5a5a5a5a5a5a5a5a, %%rax\n kmovq %%rax, %%k3\n" ::"r"(pattern)
        : "rax", "memory");
  }
  ::syscall(SYS_kill, ::getpid(), SIGSTOP);
  ::_exit(0);
}

class StoppedChild {
 public:
  explicit StoppedChild(bool avx512) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
      PatternsThenStop(avx512);
    }
    int status = 0;
    ::waitpid(pid_, &status, 0);
    stopped_ = WIFSTOPPED(status);
  }
  ~StoppedChild() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }
  bool stopped() const { return stopped_; }

 private:
  pid_t pid_ = -1;
  bool stopped_ = false;
};

TEST(Xsave, LayoutFromCpuid) {
  const sys::XstateLayout& l = sys::HostXstateLayout();
  if (l.features == 0) GTEST_SKIP() << "no XSAVE";
  EXPECT_EQ(l.features & 3u, 3u);  // x87 and SSE always
  EXPECT_GE(l.size, 576u);
  if (l.Has(2)) {
    EXPECT_EQ(l.components[2].offset, 576u);  // AVX: right after the header
    EXPECT_EQ(l.components[2].size, 256u);
  }
}

TEST(Xsave, LiveBufferRoundTripsThroughTheImage) {
  const sys::XstateLayout& layout = sys::HostXstateLayout();
  if (layout.features == 0) GTEST_SKIP() << "no XSAVE";
  bool avx512 = layout.Has(5) && layout.Has(6) && layout.Has(7);
  StoppedChild child(avx512);
  ASSERT_TRUE(child.stopped());
  auto live = sys::PtraceGetXstate(child.pid());
  ASSERT_TRUE(live.ok()) << live.error().ToString();
  EXPECT_EQ(live->size(), layout.size);

  auto fp = XsaveToFpregs(*live, layout);
  ASSERT_TRUE(fp.ok()) << fp.error().ToString();
  ASSERT_EQ(fp->xmm_space_size(), 64);
  EXPECT_EQ(fp->xmm_space(3 * 4), 0x04040404u + 48);  // xmm3 word 0: pattern[48]
  EXPECT_EQ(fp->xmm_space(7 * 4 + 3), 0x08080808u + 115);
  EXPECT_EQ(fp->mxcsr(), 0x1f80u);
  ASSERT_TRUE(fp->has_xsave());
  if (layout.Has(2)) {
    EXPECT_EQ(fp->xsave().ymmh_space_size(), 64);
  }
  if (avx512) {
    ASSERT_EQ(fp->xsave().opmask_reg_size(), 8);
    EXPECT_EQ(fp->xsave().opmask_reg(3), 0x5a5a5a5a5a5a5a5aull);
    ASSERT_EQ(fp->xsave().zmm_upper_size(), 64);  // zmm1 bits 256..511: pattern[8..15]
    EXPECT_EQ(fp->xsave().zmm_upper(4), (uint64_t{0x01010101u + 9} << 32) | (0x01010101u + 8));
    ASSERT_EQ(fp->xsave().hi16_zmm_size(), 128);  // zmm17 = hi16 slot 1: pattern[16..31]
    EXPECT_EQ(fp->xsave().hi16_zmm(8), (uint64_t{0x02020202u + 17} << 32) | (0x02020202u + 16));
    EXPECT_NE(fp->xsave().xstate_bv() & (1u << 7), 0u);
  }

  auto back = FpregsToXsave(*fp, layout);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  ASSERT_EQ(back->size(), live->size());
  for (size_t i = 0; i < live->size(); ++i) ASSERT_EQ((*back)[i], (*live)[i]) << "byte " << i;

  // The kernel takes it, and a changed register comes back changed.
  img::user_x86_fpregs_entry changed = *fp;
  changed.set_xmm_space(0, 0xdeadbeef);
  auto buf = FpregsToXsave(changed, layout);
  ASSERT_TRUE(buf.ok());
  ASSERT_TRUE(sys::PtraceSetXstate(child.pid(), *buf).ok());
  auto again = sys::PtraceGetXstate(child.pid());
  ASSERT_TRUE(again.ok());
  auto reread = XsaveToFpregs(*again, layout);
  ASSERT_TRUE(reread.ok());
  EXPECT_EQ(reread->xmm_space(0), 0xdeadbeefu);
  EXPECT_EQ(reread->xmm_space(1), fp->xmm_space(1));
}

TEST(Xsave, RefusesStateTheCpuLacksAndShortBuffers) {
  sys::XstateLayout sse_only;
  sse_only.features = 3;
  sse_only.size = 576;
  img::user_x86_fpregs_entry fp;
  for (int i = 0; i < 32; ++i) fp.add_st_space(0);
  for (int i = 0; i < 64; ++i) fp.add_xmm_space(0);
  fp.mutable_xsave()->set_xstate_bv(3);
  for (int i = 0; i < 8; ++i) fp.mutable_xsave()->add_opmask_reg(0);  // AVX-512 in init state: nothing lost
  EXPECT_TRUE(FpregsToXsave(fp, sse_only).ok());
  fp.mutable_xsave()->set_opmask_reg(2, 1);
  EXPECT_FALSE(FpregsToXsave(fp, sse_only).ok());
  fp.mutable_xsave()->set_opmask_reg(2, 0);
  fp.mutable_xsave()->set_xstate_bv(0x23);  // opmask in use
  EXPECT_FALSE(FpregsToXsave(fp, sse_only).ok());
  EXPECT_FALSE(XsaveToFpregs(std::string(100, '\0'), sse_only).ok());
  // AMX tiles in use cannot be written into CRIU's images.
  std::string amx(576, '\0');
  uint64_t bv = 3 | (1ull << 18);
  std::memcpy(amx.data() + 512, &bv, 8);
  EXPECT_FALSE(XsaveToFpregs(amx, sse_only).ok());
}

}  // namespace
}  // namespace ro::images
