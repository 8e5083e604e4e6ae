// verify, mm: every task that continued has the address space of its
// images: the same VMAs (start, end, protection, private or shared, the
// file mapped and the offset in it, the madvise advice it keeps, whether
// it is mlock'd), and no other (the bootstrap zone is gone). VMAs the
// kernel merged or split while the program ran are compared as the ranges
// they cover.
#include <sys/mman.h>

#include <algorithm>
#include <map>
#include <optional>

#include "orchestrator/verify/verifier.h"
#include "sys/proc_maps.h"
#include "sys/proc_mm.h"

namespace ro::verify {
namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

// "rw-p" as /proc/PID/maps prints a VMA's protection and sharing.
// What /proc/PID/maps names an attachment of System V segment `id`
// (ipc/shm.c names its file "SYSV%08x" after the key).
std::string SysvPath(const images::RestorePlan& plan, int32_t id) {
  uint32_t key = 0;
  for (const images::SysvShmPlan& s : plan.ns.ipc->shm) {
    if (s.perm.id == id) key = s.perm.key;
  }
  char path[40];
  std::snprintf(path, sizeof(path), "/SYSV%08x (deleted)", key);
  return path;
}

std::string Perms(uint32_t prot, bool shared) {
  std::string p = "----";
  if (prot & PROT_READ) p[0] = 'r';
  if (prot & PROT_WRITE) p[1] = 'w';
  if (prot & PROT_EXEC) p[2] = 'x';
  p[3] = shared ? 's' : 'p';
  return p;
}

// The advice a VMA keeps, by its smaps VmFlags code (as the dump reads it).
struct Advice {
  const char* code;
  int advice;
  const char* name;
};
constexpr Advice kAdvice[] = {{"sr", MADV_SEQUENTIAL, "MADV_SEQUENTIAL"}, {"rr", MADV_RANDOM, "MADV_RANDOM"},
                              {"dc", MADV_DONTFORK, "MADV_DONTFORK"},     {"dd", MADV_DONTDUMP, "MADV_DONTDUMP"},
                              {"mg", MADV_MERGEABLE, "MADV_MERGEABLE"},   {"hg", MADV_HUGEPAGE, "MADV_HUGEPAGE"},
                              {"nh", MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE"}, {"wf", MADV_WIPEONFORK, "MADV_WIPEONFORK"}};

std::string AdviceNames(uint64_t madv) {
  std::string out;
  for (const Advice& a : kAdvice) {
    if ((madv >> a.advice) & 1) out += (out.empty() ? "" : "|") + std::string(a.name);
  }
  return out.empty() ? "none" : out;
}

}  // namespace

// Every page of a VMA of the images has the advice the images give it, and
// is mlock'd (VM_LOCKED, VmFlags `lo`) as the images' MAP_LOCKED says: each
// live VMA over it (the kernel splits and merges VMAs by both too).
void Verifier::CompareVmFlags(const images::TaskPlan& t, pid_t outer, const std::string& who) {
  auto smaps = sys::ReadVmas(outer);
  if (!smaps.ok()) {
    Diff(who + ": " + smaps.error().ToString());
    return;
  }
  for (const images::VmaPlan& v : t.cont->mm.vmas) {
    if (v.kind == images::VmaKind::kVdso || v.kind == images::VmaKind::kVvar || v.kind == images::VmaKind::kVsyscall) continue;
    for (const sys::Vma& l : *smaps) {
      if (l.end <= v.start || l.start >= v.end) continue;
      uint64_t have = 0;
      for (const Advice& a : kAdvice) {
        if (l.HasFlag(a.code)) have |= uint64_t{1} << a.advice;
      }
      if (have != v.madv) {
        Diff(who + ": VMA " + Hex(v.start) + "-" + Hex(v.end) + ": madvise " + AdviceNames(have) + " at " + Hex(std::max(l.start, v.start)) +
             ", images say " + AdviceNames(v.madv));
        break;
      }
    }
    bool locked = (v.flags & MAP_LOCKED) != 0;
    for (const sys::Vma& l : *smaps) {
      if (l.end <= v.start || l.start >= v.end || l.HasFlag("lo") == locked) continue;
      Diff(who + ": VMA " + Hex(v.start) + "-" + Hex(v.end) + ": " + (locked ? "not locked" : "mlock'd (VmFlags lo)") + " at " +
           Hex(std::max(l.start, v.start)) + ", images say " + (locked ? "locked (MAP_LOCKED)" : "not locked"));
      break;
    }
  }
}

void Verifier::CompareMemory() {
  for (const auto& t : plan_.tasks) {
    if (t.resume_mode != images::ResumeMode::kContinue || !t.cont) continue;
    auto it = live_.find(t.pid);
    if (it == live_.end()) continue;  // reported with the tasks
    std::string who = "task " + std::to_string(t.pid);
    CompareVmFlags(t, it->second.info.outer, who);
    auto maps = sys::ReadMaps(it->second.info.outer);
    if (!maps.ok()) {
      Diff(who + ": " + maps.error().ToString());
      continue;
    }
    // Every page of the image's VMAs, as (perms, what) runs.
    struct Want {
      uint64_t end;
      std::string perms, what;
      std::optional<uint64_t> offset;  // file mappings: the offset of `start` in the file
    };
    std::map<uint64_t, Want> want;
    for (const images::VmaPlan& v : t.cont->mm.vmas) {
      bool shared = v.kind == images::VmaKind::kFileShared || v.kind == images::VmaKind::kAnonShared || v.kind == images::VmaKind::kSysvShm;
      std::string what;
      switch (v.kind) {
        case images::VmaKind::kFilePrivate: case images::VmaKind::kFileShared: what = plan_.files.at(v.file_id).path; break;
        case images::VmaKind::kAnonShared: what = "/dev/zero (deleted)"; break;
        case images::VmaKind::kSysvShm: what = SysvPath(plan_, v.sysv_id); break;
        case images::VmaKind::kVdso: what = "[vdso]"; break;
        case images::VmaKind::kVvar: what = "[vvar]"; break;
        case images::VmaKind::kVsyscall: what = "[vsyscall]"; break;
        case images::VmaKind::kAnonPrivate: break;
      }
      bool file = v.kind == images::VmaKind::kFilePrivate || v.kind == images::VmaKind::kFileShared;
      want[v.start] = Want{v.end, Perms(v.prot, shared), what, file ? std::optional<uint64_t>(v.pgoff) : std::nullopt};
    }
    std::map<uint64_t, Want> have;
    for (const sys::MapsEntry& m : *maps) {
      std::string what = m.path;
      if (what == "[heap]" || what == "[stack]") what.clear();  // names the kernel gives anonymous memory
      if (what == "[vvar_vclock]") what = "[vvar]";
      bool file = !what.empty() && what[0] == '/' && m.inode != 0 && what.find(" (deleted)") == std::string::npos;
      have[m.start] = Want{m.end, m.perms.substr(0, 4), what, file ? std::optional<uint64_t>(m.offset) : std::nullopt};
    }
    // Merge adjacent runs that agree, on both sides, so that merged or split
    // VMAs compare as the memory they cover.
    auto merge = [](std::map<uint64_t, Want>& runs) {
      for (auto i = runs.begin(); i != runs.end();) {
        auto next = std::next(i);
        bool contiguous = !i->second.offset || (next != runs.end() && next->second.offset &&
                                                *next->second.offset == *i->second.offset + (i->second.end - i->first));
        if (next != runs.end() && i->second.end == next->first && i->second.perms == next->second.perms &&
            i->second.what == next->second.what && contiguous) {
          i->second.end = next->second.end;
          runs.erase(next);
        } else {
          ++i;
        }
      }
    };
    merge(want);
    merge(have);
    for (const auto& [start, w] : want) {
      auto h = have.find(start);
      std::string where = who + ": VMA " + Hex(start) + "-" + Hex(w.end) + " " + w.perms + (w.what.empty() ? "" : " " + w.what);
      if (h == have.end()) {
        Diff(where + ": missing");
        continue;
      }
      if (h->second.end != w.end || h->second.perms != w.perms || h->second.what != w.what) {
        Diff(where + ": live " + Hex(h->first) + "-" + Hex(h->second.end) + " " + h->second.perms + " " + h->second.what);
      } else if (w.offset != h->second.offset) {
        Diff(where + ": maps its file from offset " + Hex(w.offset.value_or(0)) + ", live from " + Hex(h->second.offset.value_or(0)));
      }
      have.erase(h);
    }
    for (const auto& [start, h] : have) {
      Diff(who + ": VMA " + Hex(start) + "-" + Hex(h.end) + " " + h.perms + " " + h.what + ": not in the images");
    }
  }
}

}  // namespace ro::verify
