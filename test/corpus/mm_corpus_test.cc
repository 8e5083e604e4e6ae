// Broken memory images: CRIU's memory-counter dump (two tasks that continue,
// sharing anonymous memory), one value edited per case, to values the
// kernel would refuse during the restore or that would kill a restored
// task right after the hand-over. Each must be refused at plan time: exit
// 2, one line naming the file, the entry and what is wrong, nothing on
// stdout, nothing created: with --dry-run, and (in a sandbox, as root)
// without it.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>

#include "images/image_dir.h"
#include "images/proto/core.pb.h"
#include "images/proto/fdinfo.pb.h"
#include "images/proto/mm.pb.h"
#include "images/proto/pagemap.pb.h"
#include "sys/meminfo.h"
#include "test/helpers/fixtures.h"
#include "test/helpers/sandbox.h"
#include "test/helpers/test_util.h"

namespace ro::test {
namespace {

using namespace ro::images;

// The fixture's images as the plan reads them: ImageFile by name.
struct Images {
  std::map<std::string, ImageFile> files;
  template <class M>
  M& Get(const std::string& name, size_t entry = 0) {
    return static_cast<M&>(*files.at(name).entries.at(entry).message);
  }
  img::mm_entry& Mm() { return Get<img::mm_entry>("mm-1.img"); }
  img::vma_entry& Vma(int i) { return *Mm().mutable_vmas(i); }
  img::core_entry& Core() { return Get<img::core_entry>("core-1.img"); }
  img::user_x86_regs_entry& Regs() { return *Core().mutable_thread_info()->mutable_gpregs(); }
  img::thread_core_entry& Thread() { return *Core().mutable_thread_core(); }
  img::task_core_entry& Tc() { return *Core().mutable_tc(); }
  // The mm entry's VMA with this status bit (the first).
  int VmaWith(uint32_t status) {
    for (int i = 0; i < Mm().vmas_size(); ++i) {
      if (Mm().vmas(i).status() & status) return i;
    }
    return -1;
  }
};

constexpr uint32_t kVmaVdso = 1u << 3, kVmaVvar = 1u << 12, kVmaMemfd = 1u << 14, kVmaFilePrivate = 1u << 6, kVmaFileShared = 1u << 7,
                   kVmaAnonPrivate = 1u << 9;

std::string Siginfo(int32_t signo) {
  std::string s(128, '\0');
  std::memcpy(s.data(), &signo, sizeof(signo));
  return s;
}

struct Case {
  std::string name;
  std::function<void(Images&)> edit;
  std::string expect;  // a substring of the one error line
};

std::vector<Case> Cases() {
  std::vector<Case> c;
  auto add = [&c](std::string name, std::function<void(Images&)> f, std::string expect) {
    c.push_back({std::move(name), std::move(f), std::move(expect)});
  };
  auto pagemap_flags = [](uint32_t flags) {
    return [flags](Images& im) { im.Get<img::pagemap_entry>("pagemap-1.img", 1).set_flags(flags); };
  };
  // Pages: only those in the pages image (PE_PRESENT; CRIU adds PE_LAZY to
  // the ones a page server could serve, as in this fixture) are restored.
  add("pagemap_lazy", pagemap_flags(2), "pagemap-1.img: entry 1: pages at 0x");
  add("pagemap_lazy_named", pagemap_flags(2),
      "have flags 0x2 (PE_LAZY without PE_PRESENT: lazy pages are not supported): only pages present in the pages image");
  add("pagemap_unknown_flag", pagemap_flags(4 | 8), "have flags 0xc (unknown bits 0x8)");
  add("pagemap_unknown_flag_with_lazy", pagemap_flags(6 | 16), "have flags 0x16 (unknown bits 0x10)");
  add("pagemap_no_flag", pagemap_flags(0), "have flags 0 (not PE_PRESENT)");
  // Registers.
  add("regs_cs_compat", [](Images& im) { im.Regs().set_cs(0x23); },
      "core-1.img: entry 0: gpregs: cs 0x23 or ss 0x2b is not the 64-bit user selector");
  add("regs_ss_null", [](Images& im) { im.Regs().set_ss(0); }, "core-1.img: entry 0: gpregs: cs 0x33 or ss 0 is not");
  add("regs_ds_ldt", [](Images& im) { im.Regs().set_ds(0x7); }, "gpregs: ds 0x7 is neither 0 nor the user data selector 0x2b");
  add("regs_gs_kernel", [](Images& im) { im.Regs().set_gs(0x10); }, "gpregs: gs 0x10 is neither 0 nor");
  add("regs_trap_flag", [](Images& im) { im.Regs().set_flags(0x302); },
      "gpregs: flags 0x302 hold 0x100 (TF: the task would trap after one instruction)");
  add("regs_iopl", [](Images& im) { im.Regs().set_flags(0x3202); }, "gpregs: flags 0x3202 hold 0x3000, bits a user task cannot hold");
  add("regs_vm86", [](Images& im) { im.Regs().set_flags(0x20202); }, "hold 0x20000");
  add("regs_fs_base_kernel", [](Images& im) { im.Regs().set_fs_base(0xffff888000000000ull); },
      "gpregs: fs_base 0xffff888000000000 or gs_base 0 is not a user address");
  add("regs_gs_base_noncanonical", [](Images& im) { im.Regs().set_gs_base(0x800000000000ull); }, "gs_base 0x800000000000 is not a user address");
  add("regs_ip_unmapped", [](Images& im) { im.Regs().set_ip(0x10000); }, "core-1.img: entry 0: ip 0x10000 lies in no executable VMA");
  add("regs_ip_in_data", [](Images& im) { im.Regs().set_ip(im.Mm().mm_start_brk()); }, "lies in no executable VMA of the task");
  add("mxcsr_reserved_bits", [](Images& im) { im.Core().mutable_thread_info()->mutable_fpregs()->set_mxcsr(0x11f80); },
      "core-1.img: entry 0: fpregs: mxcsr 73600 sets reserved bits");
  // The vdso and vvar pages: this kernel's sizes and placement.
  add("vdso_moved_from_vvar", [](Images& im) {
        img::vma_entry& v = im.Vma(im.VmaWith(kVmaVdso));
        v.set_start(v.start() + 0x100000);
        v.set_end(v.end() + 0x100000);
      }, "the vdso must keep this kernel's size and place next to its vvar pages");
  add("vdso_other_size", [](Images& im) { im.Vma(im.VmaWith(kVmaVdso)).set_end(im.Vma(im.VmaWith(kVmaVdso)).end() + 0x1000); },
      "mm-1.img: entry 0: the image's vdso 0x3000 bytes");
  add("vvar_other_size", [](Images& im) { im.Vma(im.VmaWith(kVmaVvar)).set_start(im.Vma(im.VmaWith(kVmaVvar)).start() + 0x1000); },
      "the vvar pages differ (images of another kernel)");
  add("vdso_without_vvar", [](Images& im) { im.Mm().mutable_vmas()->DeleteSubrange(im.VmaWith(kVmaVvar), 1); },
      "vvar (none)");
  // mm fields: what PR_SET_MM_MAP refuses.
  add("mm_arg_start_after_arg_end", [](Images& im) { im.Mm().set_mm_arg_start(im.Mm().mm_arg_end() + 8); },
      "mm-1.img: entry 0: mm_arg_start 0x");
  add("mm_arg_order_named", [](Images& im) { im.Mm().set_mm_arg_start(im.Mm().mm_arg_end() + 8); },
      "is above mm_arg_end 0x");
  add("mm_env_order", [](Images& im) { im.Mm().set_mm_env_end(im.Mm().mm_env_start() - 1); }, "mm_env_start 0x");
  add("mm_brk_below_start_brk", [](Images& im) { im.Mm().set_mm_brk(im.Mm().mm_start_brk() - 0x1000); }, "is above mm_brk 0x");
  add("mm_data_order", [](Images& im) { im.Mm().set_mm_end_data(im.Mm().mm_start_data() - 1); }, "is above mm_end_data");
  add("mm_code_empty", [](Images& im) { im.Mm().set_mm_end_code(im.Mm().mm_start_code()); }, "is not below mm_end_code");
  add("mm_field_beyond_user_space", [](Images& im) { im.Mm().set_mm_env_end(0xffff800000000000ull); },
      "mm-1.img: entry 0: mm_env_end 0xffff800000000000 is beyond user space");
  if (sys::MmapMinAddr() > 0) {
    add("mm_field_below_mmap_min_addr", [](Images& im) { im.Mm().set_mm_start_data(0); },
        "mm-1.img: entry 0: mm_start_data 0 is below vm.mmap_min_addr");
  }
  add("dumpable_2", [](Images& im) { im.Mm().set_dumpable(2); }, "mm-1.img: entry 0: dumpable 2 is neither 0 nor 1");
  // VMAs.
  add("shared_anon_pgoff_2_62", [](Images& im) { im.Vma(im.VmaWith(kVmaMemfd)).set_pgoff(1ull << 62); },
      "at offset 0x4000000000000000: the offset is out of range");
  add("file_vma_growsdown", [](Images& im) {
        img::vma_entry& v = im.Vma(im.VmaWith(kVmaFilePrivate));
        v.set_flags(v.flags() | MAP_GROWSDOWN);
      }, "mm-1.img: entry 0: vmas[0] 0x400000-0x401000 maps a file but is MAP_GROWSDOWN");
  add("file_vma_offset_overflow", [](Images& im) { im.Vma(im.VmaWith(kVmaFilePrivate)).set_pgoff(0x7ffffffffffff000ull); },
      "file offset 0x7ffffffffffff000 is out of range");
  add("file_vma_pgoff_unaligned", [](Images& im) {
        img::vma_entry& v = im.Vma(im.VmaWith(kVmaFilePrivate));
        v.set_pgoff(v.pgoff() + 1);
      }, "mm-1.img: entry 0: vmas[0] 0x400000-0x401000: pgoff 0x1 is not page-aligned");
  if (sys::MmapMinAddr() > 0) {
    // A VMA of its own at page 0, before all others.
    add("vma_below_mmap_min_addr", [](Images& im) {
          img::vma_entry* v = im.Mm().add_vmas();
          *v = im.Vma(im.VmaWith(kVmaAnonPrivate));
          v->set_start(0);
          v->set_end(0x1000);
          for (int i = im.Mm().vmas_size() - 1; i > 0; --i) im.Mm().mutable_vmas()->SwapElements(i, i - 1);
        }, "mm-1.img: entry 0: vmas[0] 0-0x1000 starts below vm.mmap_min_addr");
  }
  add("file_vma_shared_writable_read_only", [](Images& im) {
        img::vma_entry& v = im.Vma(im.VmaWith(kVmaFilePrivate));
        v.set_status((v.status() & ~kVmaFilePrivate) | kVmaFileShared);
        v.set_prot(PROT_READ | PROT_WRITE);
      }, "vmas[0] 0x400000-0x401000 is a writable shared mapping of /app/memory-counter, which files.img entry");
  // Task 1's program: a copy of its entry (task 2 shares the original) that
  // says it is a character device.
  add("exe_not_regular", [](Images& im) {
        std::vector<Entry>& entries = im.files.at("files.img").entries;
        for (size_t i = 0; i < entries.size(); ++i) {
          auto& f = static_cast<img::file_entry&>(*entries[i].message);
          if (f.id() != im.Mm().exe_file_id()) continue;
          auto copy = std::make_unique<img::file_entry>(f);
          copy->set_id(9999);
          copy->mutable_reg()->set_id(9999);
          copy->mutable_reg()->set_mode(S_IFCHR | 0666);
          entries.push_back(Entry{std::move(copy), {}});
          break;
        }
        im.Mm().set_exe_file_id(9999);
      }, "mm-1.img: entry 0: exe_file_id 9999 names no regular file entry of files.img");
  add("auxv_odd", [](Images& im) { im.Mm().add_mm_saved_auxv(0); }, "words is no whole number of (type, value) pairs");
  // Signal state and registrations.
  add("itimer_usec_1e6", [](Images& im) { im.Tc().mutable_timers()->mutable_real()->set_iusec(1000000); },
      "core-1.img: entry 0: itimer real: interval 0 s 1000000 us");
  add("itimer_value_usec", [](Images& im) { im.Tc().mutable_timers()->mutable_prof()->set_vusec(5000000); },
      "itimer prof: interval 0 s 0 us, value 0 s 5000000 us: microseconds must be below 1000000");
  add("itimer_negative_sec", [](Images& im) { im.Tc().mutable_timers()->mutable_virt()->set_vsec(~0ull); }, "itimer virt");
  add("rseq_unmapped", [](Images& im) { im.Thread().mutable_rseq_entry()->set_rseq_abi_pointer(0x10000); },
      "core-1.img: entry 0: rseq area 0x10000-0x10020 is not inside writable memory of the task");
  add("rseq_read_only", [](Images& im) { im.Thread().mutable_rseq_entry()->set_rseq_abi_pointer(im.Mm().mm_start_code()); },
      "is not inside writable memory of the task");
  add("rseq_misaligned", [](Images& im) {
        im.Thread().mutable_rseq_entry()->set_rseq_abi_pointer(im.Thread().rseq_entry().rseq_abi_pointer() + 8);
      }, "not 32-byte aligned");
  add("rseq_short", [](Images& im) { im.Thread().mutable_rseq_entry()->set_rseq_abi_size(16); }, "rseq refuses areas below 32 bytes");
  add("robust_list_length", [](Images& im) { im.Thread().set_futex_rla_len(16); },
      "robust list 0x");
  add("altstack_flags", [](Images& im) {
        auto* sas = im.Thread().mutable_sas();
        sas->set_ss_sp(im.Mm().mm_start_brk());
        sas->set_ss_size(8192);
        sas->set_ss_flags(4);
      }, "core-1.img: entry 0: sigaltstack at 0x");
  add("altstack_too_small", [](Images& im) {
        auto* sas = im.Thread().mutable_sas();
        sas->set_ss_sp(im.Mm().mm_start_brk());
        sas->set_ss_size(1024);
        sas->set_ss_flags(0);
      }, "1024 bytes: sigaltstack refuses");
  add("pending_signal_0", [](Images& im) { im.Tc().mutable_signals_s()->add_signals()->set_siginfo(Siginfo(0)); },
      "core-1.img: entry 0: a pending signal's siginfo names signal 0: not a signal");
  add("pending_signal_65", [](Images& im) { im.Thread().mutable_signals_p()->add_signals()->set_siginfo(Siginfo(65)); },
      "names signal 65");
  add("pending_sigkill", [](Images& im) { im.Tc().mutable_signals_s()->add_signals()->set_siginfo(Siginfo(9)); },
      "a pending SIGKILL would kill the task");
  add("sigaction_kernel_handler", [](Images& im) { im.Tc().mutable_sigactions(9)->set_sigaction(0xffffffff81000000ull); },
      "the sigaction of signal 11 has a handler 0xffffffff81000000");
  add("personality_query", [](Images& im) { im.Tc().set_personality(0xffffffffu); }, "personality 0xffffffff is not a personality");
  return c;
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// A copy of the fixture's images in `dir`, with `edit` applied; "" or what failed.
std::string WriteEdited(const TempDir& dir, const std::function<void(Images&)>& edit) {
  std::error_code ec;
  std::filesystem::copy(FixtureDir("memory-counter") + "/img", dir.path(), std::filesystem::copy_options::recursive, ec);
  if (ec) return "copy: " + ec.message();
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    std::filesystem::permissions(e.path(), std::filesystem::perms::owner_write, std::filesystem::perm_options::add);
  }
  if (std::string e = FitRlimitsToThisMachine(dir.path()); !e.empty()) return e;
  Images im;
  for (const char* name : {"mm-1.img", "core-1.img", "pagemap-1.img", "files.img"}) {
    auto f = ParseImageFile(dir.Read(name), name, Limits{});
    if (!f.ok()) return std::string(name) + ": " + f.error().ToString();
    im.files.emplace(name, std::move(f).value());
  }
  if (edit) edit(im);
  for (const auto& [name, file] : im.files) {
    auto bytes = SerializeImage(file);
    if (!bytes.ok()) return name + ": " + bytes.error().ToString();
    dir.Write(name, *bytes);
  }
  return "";
}

std::vector<std::string> Restore(const TempDir& dir, const TempDir& root, bool dry_run, const std::string& pidfile) {
  std::vector<std::string> cmd = {RestoreOrch(), "--images", dir.path(), "--root", root.path(), "--external", "usr=/usr"};
  if (dry_run) {
    cmd.push_back("--dry-run");
  } else {
    cmd.insert(cmd.end(), {"--detach", "--pidfile", pidfile});
  }
  return cmd;
}

// The refusal: exit 2, one line, naming the directory first.
std::string Refused(const RunResult& r, const std::string& dir, const std::string& expect) {
  std::string why;
  if (r.status != 2) why += "exit " + std::to_string(r.status) + "; ";
  if (r.err.find(expect) == std::string::npos) why += "no line says '" + expect + "'; ";
  if (std::count(r.err.begin(), r.err.end(), '\n') != 1) why += "not one line; ";
  if (r.err.rfind("restore-orch: " + dir + ": ", 0) != 0) why += "the line does not name the directory first; ";
  if (!r.out.empty()) why += "something on stdout; ";
  return why.empty() ? "" : why + "stderr: " + r.err;
}

class MmCorpus : public ::testing::TestWithParam<Case> {};

TEST_P(MmCorpus, RefusedAtPlanTime) {
  const Case& tc = GetParam();
  TempDir dir, root, work;
  ASSERT_EQ(WriteEdited(dir, tc.edit), "");
  RunResult r = RunCommand(Restore(dir, root, true, ""));
  EXPECT_EQ(Refused(r, dir.path(), tc.expect), "") << "--dry-run";
  if (::geteuid() != 0) return;  // a restore needs root
  // Without --dry-run: refused before anything is made (a sandbox, should
  // it not be: the tree dies with it).
  std::string err = InSandbox([&] {
    RunResult real = RunCommand(Restore(dir, root, false, work.File("pid")));
    std::string why = Refused(real, dir.path(), tc.expect);
    if (::access(work.File("pid").c_str(), F_OK) == 0) why += "; a pidfile was written";
    if (int n = OtherProcesses(); n != 0) why += "; " + std::to_string(n) + " processes left";
    return why;
  });
  EXPECT_EQ(err, "") << "without --dry-run";
}

INSTANTIATE_TEST_SUITE_P(BrokenMemoryImages, MmCorpus, ::testing::ValuesIn(Cases()), [](const auto& p) { return p.param.name; });

TEST(MmCorpusBase, TheUnbrokenFixtureIsAccepted) {
  TempDir dir, root;
  ASSERT_EQ(WriteEdited(dir, nullptr), "");
  RunResult r = RunCommand(Restore(dir, root, true, ""));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("4. tasks (fork order):"), std::string::npos) << r.out;
  // Both tasks continue (no resume image, memory images): said so, not "holder" or "exec".
  EXPECT_NE(r.out.find("   task 1: continues where it was dumped ("), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("   task 2: continues where it was dumped ("), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(": holder ("), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the root task runs with its pid in new PID and mount namespaces"), std::string::npos) << r.out;
}

// A mapped file that is not the one dumped can only be found at restore
// time, in the restored mount tree: the restore fails and is rolled back
// with one line naming the file. `edit` changes what files.img says of
// /app/memory-counter (false when it has nothing to change); "" or what
// went wrong.
std::string RestoreWithMappedFileEdited(const std::function<bool(img::reg_file_entry&)>& edit, const std::string& want) {
  return InSandbox([&] {
    TempDir work;
    if (std::string e = PrepareFixture("memory-counter", work); !e.empty()) return e;
    auto files = ParseImageFile(work.Read("img/files.img"), "files.img", Limits{});
    if (!files.ok()) return files.error().ToString();
    bool found = false;
    for (Entry& e : files->entries) {
      auto& f = static_cast<img::file_entry&>(*e.message);
      if (f.has_reg() && f.reg().name() == "/app/memory-counter") found = edit(*f.mutable_reg()) || found;
    }
    if (!found) return std::string("files.img has nothing to edit of /app/memory-counter");
    auto bytes = SerializeImage(*files);
    if (!bytes.ok()) return bytes.error().ToString();
    work.Write("img/files.img", *bytes);
    std::vector<std::string> cmd = FixtureRestoreArgs(work);
    cmd.insert(cmd.end(), {"--detach", "--pidfile", work.File("pid")});
    RunResult r = RunCommand(cmd);
    std::string why;
    if (r.status != 1) why += "exit " + std::to_string(r.status) + "; ";
    if (r.err.find("/app/memory-counter " + want) == std::string::npos || r.err.find("the images say") == std::string::npos) {
      why += "the error does not name the file; ";
    }
    if (::access(work.File("pid").c_str(), F_OK) == 0) why += "a pidfile was written; ";
    if (int n = OtherProcesses(); n != 0) why += std::to_string(n) + " processes left; ";
    return why.empty() ? why : why + "stderr: " + r.err;
  });
}

TEST(MmCorpusRestore, AMappedFileOfAnotherSizeIsNamed) {
  if (::geteuid() != 0) GTEST_SKIP() << "a restore needs root";
  EXPECT_EQ(RestoreWithMappedFileEdited(
                [](img::reg_file_entry& r) {
                  if (!r.has_size()) return false;
                  r.set_size(r.size() + 4096);
                  return true;
                },
                "is "),
            "");
}

// As CRIU checks it: a program rebuilt to the same size has another build-id.
TEST(MmCorpusRestore, AMappedFileWithAnotherBuildIdIsNamed) {
  if (::geteuid() != 0) GTEST_SKIP() << "a restore needs root";
  EXPECT_EQ(RestoreWithMappedFileEdited(
                [](img::reg_file_entry& r) {
                  if (r.build_id_size() == 0) return false;
                  r.set_build_id(0, r.build_id(0) ^ 1);
                  return true;
                },
                "has build-id "),
            "");
}

}  // namespace
}  // namespace ro::test
