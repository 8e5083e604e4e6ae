// Fuzz target for the dump's readers of /proc text: every parser the dump
// (and verify, and the restore's few looks at /proc) hands the kernel's text
// to, called on a buffer. The input is a first line naming the file it
// holds, then the file:
//   mountinfo, fdinfo, status, stat, smaps, maps, children, timers, auxv,
//   cmdline
// An input whose first line names none of them goes whole to every parser.
// Besides not crashing, what a parser accepts must hold what its callers
// rely on (a VMA is a non-empty page-aligned range, ...): a breach traps.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "orchestrator/dump/collector.h"
#include "orchestrator/tmpfs.h"
#include "sys/mount_api.h"
#include "sys/mountinfo.h"
#include "sys/proc.h"
#include "sys/proc_maps.h"
#include "sys/proc_mm.h"
#include "sys/special_mappings.h"

namespace {

using namespace ro;

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

void MountInfoText(const std::string& text) {
  auto mounts = sys::ParseMountInfo(text);
  if (!mounts.ok()) return;
  for (const sys::MountInfo& m : *mounts) {
    // What the dump asks of a mount: its flags, its AutoFS and tmpfs options.
    (void)sys::SplitOptions(m.mount_options);
    (void)sys::SplitOptions(m.super_options);
    for (const char* key : {"fd", "pgrp", "timeout", "minproto", "maxproto", "pipe_ino", "uid", "gid"}) {
      std::optional<long long> v = dump::IntOption(m, key);
      Check(!v || !m.SuperOption(key).empty());
    }
    (void)TmpfsCapFor(m.super_options, 0, 1ull << 33);
    (void)UnlimitedTmpfsOption(m.super_options);
  }
}

void FdInfoText(const std::string& text) { (void)sys::ParseFdInfo(text); }

void StatusText(const std::string& text) {
  for (const char* key : {"NSpid", "NSpgid", "NSsid", "Tgid", "Uid", "Gid", "Groups", "Threads", "Seccomp",
                          "Seccomp_filters", "TracerPid", "NoNewPrivs", "THP_enabled"}) {
    std::vector<long> values = sys::StatusValues(text, key);
    long last = sys::StatusInnermost(text, key);
    Check(values.empty() ? last == -1 : last == values.back());
  }
  for (const char* key : {"SigBlk", "SigCgt", "SigIgn", "ShdPnd", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    (void)sys::StatusHex(text, key);
  }
}

void StatText(const std::string& text) {
  (void)sys::ParseProcStat(text);
  (void)sys::ParseProcStatMm(text);
}

void SmapsText(const std::string& text) {
  auto vmas = sys::ParseSmaps(text);
  if (!vmas.ok()) return;
  uint64_t pages = 0;
  for (const sys::Vma& v : *vmas) {
    Check(v.start < v.end && v.start % sys::kPageSize == 0 && v.end % sys::kPageSize == 0);
    pages += v.pages();
    for (const char* code : {"sd", "gd", "dd", "ht", "wf", "lo", "io", "sr", "rr", "mt"}) (void)v.HasFlag(code);
    (void)v.HoldsNoPage();
  }
  (void)pages;
}

void MapsText(const std::string& text) {
  auto maps = sys::ParseMaps(text);
  if (maps.ok()) {
    for (const sys::MapsEntry& e : *maps) Check(e.start < e.end && e.perms.size() == 4);
  }
  auto special = sys::ParseSpecialMappings(text);
  if (special.ok()) {
    for (const sys::SpecialMapping& m : *special) Check(m.start < m.end);
  }
}

void ChildrenText(const std::string& text) { (void)sys::ParsePidList(text); }

void TimersText(const std::string& text) { Check(sys::ParsePosixTimerCount(text) <= text.size() / 3); }

void AuxvBytes(const std::string& bytes) { Check(sys::ParseAuxv(bytes).size() == bytes.size() / 8); }

void LimitsText(const std::string& text) {
  for (int r = 0; r < 16; ++r) {
    auto l = sys::ParseProcLimit(text, r);
    if (!l) break;
  }
}

void CmdlineBytes(const std::string& bytes) {
  size_t total = 0;
  for (const std::string& s : sys::SplitNul(bytes)) total += s.size() + 1;
  Check(total >= bytes.size() && total <= bytes.size() + 1);
}

struct Parser {
  std::string_view name;
  void (*run)(const std::string&);
};

constexpr Parser kParsers[] = {
    {"mountinfo", MountInfoText}, {"fdinfo", FdInfoText},     {"status", StatusText}, {"stat", StatText},
    {"smaps", SmapsText},         {"maps", MapsText},         {"children", ChildrenText}, {"timers", TimersText},
    {"auxv", AuxvBytes},          {"cmdline", CmdlineBytes},     {"limits", LimitsText},
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nl = in.find('\n');
  if (nl != std::string_view::npos) {
    for (const Parser& p : kParsers) {
      if (in.substr(0, nl) == p.name) {
        p.run(std::string(in.substr(nl + 1)));
        return 0;
      }
    }
  }
  std::string whole(in);
  for (const Parser& p : kParsers) p.run(whole);
  return 0;
}
