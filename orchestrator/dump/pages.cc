// The dump's page contents: for each task, the pages of its private VMAs
// that are its own (present or swapped, not the page cache's, not the zero
// page) into pagemap-<pid>.img and pages-<id>.img; for each shared
// anonymous memory object, once for all its tasks, its pages into
// pagemap-shmem-<ino>.img and pages-<id>.img (CRIU's classic form). Pages
// go through one reusable buffer of a few MiB, read many runs at a time
// (process_vm_readv), and are streamed into the target directory: a task's
// memory is never whole in restore-orch's.
#include <fcntl.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "images/kinds.h"
#include "images/proto/mm.pb.h"
#include "images/proto/pagemap.pb.h"
#include "orchestrator/dump/collector.h"
#include "sys/files.h"
#include "sys/io.h"
#include "sys/remote_mem.h"

namespace ro {

StreamedFiles::~StreamedFiles() {
  if (keep_ || !dirfd_) return;
  for (const auto& [name, bytes] : files_) (void)sys::UnlinkAt(dirfd_.get(), name);
}

Result<UniqueFd> StreamedFiles::Create(const std::string& name) {
  if (discard_) {
    RO_ASSIGN_OR_RETURN(UniqueFd null, sys::OpenAt(AT_FDCWD, "/dev/null", O_WRONLY));
    files_[name] = 0;
    return null;
  }
  if (!dirfd_) {
    RO_ASSIGN_OR_RETURN(dirfd_, sys::OpenAt(AT_FDCWD, dir_, O_RDONLY | O_DIRECTORY));
  }
  RO_ASSIGN_OR_RETURN(UniqueFd fd, sys::OpenAt(dirfd_.get(), name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600,
                                               dir_ + "/" + name));
  files_[name] = 0;
  return fd;
}

namespace dump {
namespace {

constexpr uint64_t kPage = sys::kPageSize;
constexpr size_t kBufferBytes = 4u << 20;  // pages read and written at once
constexpr size_t kPagemapChunk = 16384;    // pagemap entries read at once (64 MiB of address space)
constexpr size_t kMaxRuns = 1024;          // IOV_MAX: runs read by one process_vm_readv
constexpr uint32_t kPePresent = 4;         // PE_PRESENT

// CRIU's VMA_* status bits.
constexpr uint32_t kVmaRegular = 1u << 0, kVmaVdso = 1u << 3, kVmaFilePrivate = 1u << 6, kVmaAnonPrivate = 1u << 9,
                   kVmaVvar = 1u << 12;

using Clock = std::chrono::steady_clock;

bool IsZeroPage(const char* page) {
  uint64_t acc = 0;
  const auto* w = reinterpret_cast<const uint64_t*>(page);
  for (size_t i = 0; i < kPage / sizeof(uint64_t); i += 8) {
    acc |= w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7];
    if (acc != 0) return false;
  }
  return true;
}

// Where the pages of a run are read from.
struct Source {
  enum Kind { kTask, kFd } kind = kTask;  // process_vm_readv of `pid`, or pread of `fd` at the page's address
  pid_t pid = 0;
  int fd = -1;  // /proc/PID/mem (mappings without PROT_READ) or a shmem object (address = offset)
  bool drop_zero = false;  // pages that read all zero are left out (anonymous memory reads zero anyway)
  uint64_t end = UINT64_MAX;  // kFd: the file's size; a last page past it reads zero after it (a System V segment's)
  bool operator==(const Source&) const = default;
};

// One pages file being written: runs are gathered into batches that fill
// the buffer, read, and written out in address order.
class PageStream {
 public:
  PageStream(StreamedFiles& files, std::string name, UniqueFd out, const sys::Mapping& buffer, DumpCounts& counts,
             const std::function<Status()>& interrupted)
      : files_(files), name_(std::move(name)), out_(std::move(out)), buffer_(buffer), counts_(counts), interrupted_(interrupted) {}

  Status Add(uint64_t addr, uint64_t pages, const Source& from) {
    if (!pending_.empty() && !(from == source_)) RO_TRY(Flush());
    source_ = from;
    const uint64_t capacity = buffer_.size() / kPage;
    while (pages > 0) {
      if (pending_pages_ == capacity || pending_.size() == kMaxRuns) RO_TRY(Flush());
      uint64_t n = std::min(pages, capacity - pending_pages_);
      pending_.push_back(iovec{reinterpret_cast<void*>(addr), n * kPage});
      pending_pages_ += n;
      addr += n * kPage;
      pages -= n;
    }
    return {};
  }

  Status Finish() {
    RO_TRY(Flush());
    out_.reset();
    return {};
  }

  // The runs written, as pagemap entries after the head.
  void AddEntries(images::ImageFile& pagemap, uint32_t pages_id) const {
    auto head = std::make_unique<img::pagemap_head>();
    head->set_pages_id(pages_id);
    pagemap.entries.push_back(images::Entry{std::move(head), {}});
    for (const auto& [addr, pages] : written_) {
      auto e = std::make_unique<img::pagemap_entry>();
      e->set_vaddr(addr);
      e->set_compat_nr_pages(0);  // CRIU 4 keeps the count in nr_pages
      e->set_flags(kPePresent);
      e->set_nr_pages(pages);
      pagemap.entries.push_back(images::Entry{std::move(e), {}});
    }
  }

 private:
  Status Flush() {
    if (pending_.empty()) return {};
    char* buf = static_cast<char*>(buffer_.base());
    if (source_.kind == Source::kTask) {
      RO_TRY(sys::ReadTaskMemory(source_.pid, buf, pending_));
    } else {
      size_t off = 0;
      for (const iovec& run : pending_) {
        const uint64_t at = reinterpret_cast<uint64_t>(run.iov_base);
        const uint64_t n = at >= source_.end ? 0 : std::min<uint64_t>(run.iov_len, source_.end - at);
        RO_TRY(sys::PreadExactly(source_.fd, buf + off, n, at, "memory"));
        std::memset(buf + off + n, 0, run.iov_len - n);
        off += run.iov_len;
      }
    }
    // Keep the pages to write as pieces of the buffer, merging neighbours.
    pieces_.clear();
    uint64_t bytes = 0;
    size_t off = 0;
    for (const iovec& run : pending_) {
      uint64_t addr = reinterpret_cast<uint64_t>(run.iov_base);
      for (uint64_t i = 0; i < run.iov_len / kPage; ++i, off += kPage, addr += kPage) {
        if (source_.drop_zero && IsZeroPage(buf + off)) {
          ++counts_.zero_pages;
          continue;
        }
        if (!pieces_.empty() && static_cast<char*>(pieces_.back().iov_base) + pieces_.back().iov_len == buf + off) {
          pieces_.back().iov_len += kPage;
        } else {
          pieces_.push_back(iovec{buf + off, kPage});
        }
        if (!written_.empty() && written_.back().first + written_.back().second * kPage == addr) {
          ++written_.back().second;
        } else {
          written_.emplace_back(addr, 1);
        }
        bytes += kPage;
      }
    }
    RO_TRY(sys::WriteAllV(out_.get(), pieces_, name_));
    counts_.pages += bytes / kPage;
    counts_.pages_bytes += bytes;
    files_.Account(name_, bytes);
    pending_.clear();
    pending_pages_ = 0;
    return interrupted_ ? interrupted_() : Status();
  }

  StreamedFiles& files_;
  std::string name_;
  UniqueFd out_;
  const sys::Mapping& buffer_;
  DumpCounts& counts_;
  const std::function<Status()>& interrupted_;
  Source source_;
  std::vector<iovec> pending_;
  uint64_t pending_pages_ = 0;
  std::vector<iovec> pieces_;
  std::vector<std::pair<uint64_t, uint64_t>> written_;  // (address, pages)
};

}  // namespace

Status Collector::DumpTaskPages(const Task& t, const img::mm_entry& mm) {
  Clock::time_point start = Clock::now();
  if (!page_buffer_) {
    RO_ASSIGN_OR_RETURN(page_buffer_, sys::MapPrivateAnonymous(kBufferBytes));
  }
  pagemap_buffer_.resize(kPagemapChunk);
  if (!zero_pfn_) {
    RO_ASSIGN_OR_RETURN(zero_pfn_, sys::ZeroPagePfn());
  }
  uint32_t pages_id = next_pages_id_++;
  std::string name = images::MakeFileName(*images::KindByName("PAGES"), pages_id);
  RO_ASSIGN_OR_RETURN(UniqueFd out, options_.streamed->Create(name));
  PageStream stream(*options_.streamed, name, std::move(out), page_buffer_, out_.counts, options_.interrupted);
  RO_ASSIGN_OR_RETURN(sys::Pagemap pagemap, sys::Pagemap::Open(t.outer));
  UniqueFd mem;  // /proc/PID/mem, for mappings without PROT_READ

  // A VMA smaps counts no page of is not read through pagemap: a reserve
  // of terabytes (a sanitizer's shadow, a runtime's heap) costs nothing.
  const std::vector<sys::Vma>& live = t.live->vmas;  // in address order
  auto holds_no_page = [&](uint64_t lo, uint64_t hi) {
    auto it = std::partition_point(live.begin(), live.end(), [&](const sys::Vma& l) { return l.end <= lo; });
    for (; it != live.end() && it->start < hi; ++it) {
      if (!it->HoldsNoPage()) return false;
    }
    return true;
  };
  for (const img::vma_entry& v : mm.vmas()) {
    uint32_t st = v.status();
    // Shared mappings live in their file or shmem object; VVAR and
    // vsyscall are the kernel's; the vDSO is dumped whole, as CRIU does.
    if (!(st & kVmaRegular) || (st & kVmaVvar) || !(st & (kVmaAnonPrivate | kVmaFilePrivate))) continue;
    bool vdso = (st & kVmaVdso) != 0, file_private = (st & kVmaFilePrivate) != 0;
    if (!vdso && holds_no_page(v.start(), v.end())) continue;
    Source from;
    from.pid = t.outer;
    // A copied page of a file mapping that reads zero is not the file's
    // page: only anonymous memory may leave zero pages out.
    from.drop_zero = !file_private && !vdso;
    if (!(v.prot() & PROT_READ)) {
      if (!mem) {
        RO_ASSIGN_OR_RETURN(mem, sys::OpenTaskMem(t.outer));
      }
      from.kind = Source::kFd;
      from.fd = mem.get();
    }
    // Only where the page tables hold pages (all of the VMA on a kernel
    // without PAGEMAP_SCAN, and for the vDSO) are the entries read.
    std::vector<std::pair<uint64_t, uint64_t>> ranges = {{v.start(), v.end()}};
    if (!vdso) {
      RO_ASSIGN_OR_RETURN(auto populated, pagemap.PopulatedRanges(v.start(), v.end()));
      if (populated) ranges = std::move(*populated);
    }
    uint64_t run_start = 0, run_pages = 0;
    for (const auto& [lo, hi] : ranges) {
      for (uint64_t at = lo; at < hi;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(kPagemapChunk, (hi - at) / kPage));
        RO_TRY(pagemap.Read(at / kPage, std::span<uint64_t>(pagemap_buffer_.data(), n)));
        for (size_t i = 0; i < n; ++i, at += kPage) {
          uint64_t pme = pagemap_buffer_[i];
          bool take = (pme & (sys::kPmPresent | sys::kPmSwapped)) != 0;
          if (take && !vdso) {
            if (file_private && (pme & sys::kPmFile)) take = false;  // still the file's page
            bool zero_pfn = (pme & sys::kPmPresent) && *zero_pfn_ != 0 && (pme & sys::kPmPfnMask) == *zero_pfn_;
            if (zero_pfn) {
              take = false;
              ++out_.counts.zero_pages;
            }
          }
          if (take && run_pages > 0 && run_start + run_pages * kPage == at) {
            ++run_pages;
            continue;
          }
          if (run_pages > 0) RO_TRY(stream.Add(run_start, run_pages, from));
          run_pages = take ? 1 : 0;
          run_start = at;
        }
      }
    }
    if (run_pages > 0) RO_TRY(stream.Add(run_start, run_pages, from));
  }
  RO_TRY(stream.Finish());
  stream.AddEntries(File(*images::KindByName("PAGEMAP"), static_cast<uint32_t>(t.pid)), pages_id);
  out_.counts.pages_ms += std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return {};
}

Status Collector::DumpShmemObject(uint64_t key, int fd, uint64_t extent) {
  if (!page_buffer_) {
    RO_ASSIGN_OR_RETURN(page_buffer_, sys::MapPrivateAnonymous(kBufferBytes));
  }
  uint32_t pages_id = next_pages_id_++;
  std::string name = images::MakeFileName(*images::KindByName("PAGES"), pages_id);
  RO_ASSIGN_OR_RETURN(UniqueFd out, options_.streamed->Create(name));
  PageStream stream(*options_.streamed, name, std::move(out), page_buffer_, out_.counts, options_.interrupted);
  Source from;
  from.kind = Source::kFd;
  from.fd = fd;
  from.drop_zero = true;
  from.end = extent;
  // Only what was ever written holds data: holes are never read.
  for (uint64_t at = 0; at < extent;) {
    RO_ASSIGN_OR_RETURN(auto range, sys::NextDataRange(fd, at, extent));
    if (range.first >= extent) break;
    uint64_t first = range.first / kPage * kPage, end = (range.second + kPage - 1) / kPage * kPage;
    RO_TRY(stream.Add(first, (end - first) / kPage, from));
    at = end;
  }
  RO_TRY(stream.Finish());
  const images::Kind& kind = *images::KindByName("SHMEM_PAGEMAP");
  images::ImageFile& f = out_.files[images::MakeFileName(kind, key)];
  f.kind = &kind;
  stream.AddEntries(f, pages_id);
  ++out_.counts.shmem;
  return {};
}

Status Collector::DumpSharedMemory() {
  Clock::time_point start = Clock::now();
  for (auto& [ino, shm] : shmem_) {
    if (Status s = DumpShmemObject(ino, shm.fd.get(), shm.extent); !s.ok()) {
      return std::move(s).error().Within("shared memory " + Str(static_cast<long long>(ino)));
    }
    shm.fd.reset();
  }
  out_.counts.pages_ms += std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return {};
}

}  // namespace dump
}  // namespace ro
