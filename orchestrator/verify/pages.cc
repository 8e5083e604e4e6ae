// verify, pages: at restore time, the memory of every continuing task,
// stopped at its restorer's end (every VMA in place, its registers not set
// yet, nothing of the program run), holds the bytes of its pages images:
// each run of pagemap-<pid>.img at its address, each run of a shared
// object's pagemap-shmem-<id>.img at every address where a continuing task
// maps that part of the object. Read through /proc/PID/mem (what ptrace
// sees, PROT_NONE pages included) and compared with the pages files in
// batches of 4 MiB; restore-orch's memory does not grow with the pages.
// Not compared: each thread's rseq area, which the kernel writes when the
// restorer registers it (cpu_id_start, cpu_id, node_id, mm_cid of struct
// rseq, include/uapi/linux/rseq.h) — the task would see it so too.
#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "orchestrator/verify/verify.h"
#include "sys/files.h"
#include "sys/futex.h"
#include "sys/remote_mem.h"

namespace ro {
namespace {

constexpr size_t kBatch = 4u << 20;
constexpr size_t kMaxLinesPerTask = 16;

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

class PageChecker {
 public:
  PageChecker(int images_fd, PagesCheckStats* stats) : images_fd_(images_fd), stats_(stats) {}

  // Ranges [start, end) of the next task's memory the kernel may have
  // written since the restore.
  void Ignore(std::vector<std::pair<uint64_t, uint64_t>> ranges) { ignored_ = std::move(ranges); }

  // Compares `run` of `pages_file` with the memory of `mem` (a task's
  // /proc/PID/mem) at `addr`; a difference or a failed read is one line.
  void Compare(const std::string& who, int mem, const std::string& pages_file, const images::PagesRun& run, uint64_t addr) {
    if (lines_ >= kMaxLinesPerTask) {
      ++skipped_;
      return;
    }
    std::string what = who + ": " + std::to_string(run.nr_pages) + " pages at " + Hex(addr) + " from " + pages_file + " at offset " +
                       Hex(run.offset);
    auto file = Open(pages_file);
    if (!file.ok()) return Line(what + ": " + file.error().ToString());
    uint64_t len = run.nr_pages * images::kPageSize;
    for (uint64_t done = 0; done < len;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kBatch, len - done));
      if (Status s = sys::PreadExactly(*file, want_.get(), n, run.offset + done, pages_file); !s.ok()) {
        return Line(what + ": " + s.error().ToString());
      }
      if (Status s = sys::PreadExactly(mem, have_.get(), n, addr + done, "memory at " + Hex(addr + done)); !s.ok()) {
        return Line(what + ": " + s.error().ToString());
      }
      for (const auto& [from, to] : ignored_) {  // as the images have them
        uint64_t a = std::max(from, addr + done), b = std::min(to, addr + done + n);
        if (a < b) std::memcpy(have_.get() + (a - addr - done), want_.get() + (a - addr - done), b - a);
      }
      if (std::memcmp(want_.get(), have_.get(), n) != 0) {
        size_t at = 0;
        while (want_[at] == have_[at]) ++at;
        return Line(what + ": differ, first at " + Hex(addr + done + at));
      }
      done += n;
      if (stats_ != nullptr) stats_->bytes += n;
    }
  }

  void EndTask(const std::string& who) {
    if (skipped_ > 0) out_.push_back(who + ": " + std::to_string(skipped_) + " more runs not compared");
    lines_ = skipped_ = 0;
  }

  std::vector<std::string> Lines() { return std::move(out_); }

 private:
  Result<int> Open(const std::string& name) {
    auto it = files_.find(name);
    if (it != files_.end()) return it->second.get();
    RO_ASSIGN_OR_RETURN(UniqueFd fd, sys::OpenAt(images_fd_, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    int n = fd.get();
    files_.emplace(name, std::move(fd));
    return n;
  }

  void Line(std::string line) {
    out_.push_back(std::move(line));
    ++lines_;
  }

  int images_fd_;
  PagesCheckStats* stats_;
  std::map<std::string, UniqueFd> files_;
  std::unique_ptr<unsigned char[]> want_{new unsigned char[kBatch]}, have_{new unsigned char[kBatch]};
  std::vector<std::string> out_;
  std::vector<std::pair<uint64_t, uint64_t>> ignored_;
  size_t lines_ = 0, skipped_ = 0;
};

}  // namespace

std::vector<std::string> ComparePages(const images::RestorePlan& plan, const std::map<size_t, pid_t>& tasks, int images_fd,
                                      PagesCheckStats* stats) {
  uint64_t t0 = sys::MonotonicNs();
  PageChecker check(images_fd, stats);
  std::vector<std::string> failed;
  for (const auto& [index, outer] : tasks) {
    const images::TaskPlan& t = plan.tasks.at(index);
    if (!t.cont) continue;
    std::string who = "task " + std::to_string(t.pid);
    auto mem = sys::OpenTaskMem(outer);
    if (!mem.ok()) {
      failed.push_back(who + ": " + mem.error().ToString());
      continue;
    }
    const images::MmPlan& mm = t.cont->mm;
    std::vector<std::pair<uint64_t, uint64_t>> ignored;
    for (const images::ThreadPlan& th : t.cont->threads) {
      if (th.rseq) ignored.emplace_back((*th.rseq)[0], (*th.rseq)[0] + std::max<uint64_t>((*th.rseq)[1], 32));
    }
    check.Ignore(std::move(ignored));
    for (const images::PagesRun& r : mm.runs) check.Compare(who, mem->get(), mm.pages_file, r, r.vaddr);
    // The parts of shared objects this task maps.
    for (const images::VmaPlan& v : mm.vmas) {
      if (v.kind != images::VmaKind::kAnonShared) continue;
      const images::ShmemPlan& s = plan.shmem.at(v.shmem);
      uint64_t from = v.pgoff, to = v.pgoff + (v.end - v.start);
      for (const images::PagesRun& r : s.runs) {
        uint64_t start = std::max(from, r.vaddr), end = std::min(to, r.vaddr + r.nr_pages * images::kPageSize);
        if (start >= end) continue;
        images::PagesRun part{start, (end - start) / images::kPageSize, r.offset + (start - r.vaddr)};
        check.Compare(who, mem->get(), s.pages_file, part, v.start + (start - from));
      }
    }
    check.EndTask(who);
  }
  std::vector<std::string> out = check.Lines();
  out.insert(out.end(), failed.begin(), failed.end());
  if (stats != nullptr) stats->ns += sys::MonotonicNs() - t0;
  return out;
}

}  // namespace ro
