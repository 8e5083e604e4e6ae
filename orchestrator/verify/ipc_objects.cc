// verify, ipc: each System V object of the tree's own IPC namespace is the
// images' (id, key, owner, creator, mode, size or limit, and contents:
// segment bytes (compared as they are read), messages in order, semaphore
// values) and no other is there; so is each POSIX message queue (name,
// owner, mode, maxmsg, msgsize, and its messages by count and bytes:
// reading them would take them from a tree that runs).
#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "orchestrator/verify/verifier.h"
#include "sys/files.h"

namespace ro::verify {
namespace {

constexpr uint32_t kShmLocked = 02000;  // SHM_LOCKED, include/uapi/linux/shm.h

// The differences of two ipc_perm, as "field have, images say want".
// "NAME have, images say want" when they differ (octal: as modes are
// written), else "".
std::string FieldDiff(const char* name, uint64_t have, uint64_t want, bool octal = false) {
  if (have == want) return "";
  char hb[32], wb[32];
  std::snprintf(hb, sizeof(hb), octal ? "%llo" : "%llu", static_cast<unsigned long long>(have));
  std::snprintf(wb, sizeof(wb), octal ? "%llo" : "%llu", static_cast<unsigned long long>(want));
  return std::string(name) + " " + hb + ", images say " + wb;
}

std::vector<std::string> PermDiffs(const sys::SysvPerm& have, const images::SysvPermPlan& want) {
  std::vector<std::string> out;
  auto field = [&](const char* name, uint64_t h, uint64_t w, bool octal = false) {
    if (std::string d = FieldDiff(name, h, w, octal); !d.empty()) out.push_back(std::move(d));
  };
  if (have.key != want.key) out.push_back("key " + sys::SysvKeyName(have.key) + ", images say " + sys::SysvKeyName(want.key));
  field("uid", have.uid, want.uid);
  field("gid", have.gid, want.gid);
  field("cuid", have.cuid, want.cuid);
  field("cgid", have.cgid, want.cgid);
  field("mode", have.mode & 0777, want.mode, true);
  return out;
}

// Live objects by id.
template <class Live>
std::map<int, const Live*> ById(const std::vector<Live>& live) {
  std::map<int, const Live*> out;
  for (const Live& l : live) out[l.perm.id] = &l;
  return out;
}

}  // namespace

void Verifier::CompareSegmentContents(const images::SysvShmPlan& want, int live, const std::string& what) {
  const uint64_t kChunk = std::min<uint64_t>(1 << 20, want.size);
  std::string have(kChunk, '\0'), expect(kChunk, '\0');
  UniqueFd pages;
  if (!want.runs.empty()) {
    auto fd = sys::OpenAt(images_fd_, want.pages_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (!fd.ok()) return Diff(what + ": " + fd.error().ToString());
    pages = std::move(fd).value();
  }
  size_t run = 0;
  for (uint64_t at = 0; at < want.size; at += kChunk) {
    const uint64_t n = std::min(kChunk, want.size - at);
    std::fill(expect.begin(), expect.begin() + static_cast<long>(n), '\0');
    if (at < want.contents.size()) std::memcpy(expect.data(), want.contents.data() + at, std::min<uint64_t>(n, want.contents.size() - at));
    while (run < want.runs.size() && want.runs[run].vaddr + want.runs[run].nr_pages * images::kPageSize <= at) ++run;
    for (size_t r = run; r < want.runs.size() && want.runs[r].vaddr < at + n; ++r) {
      const images::PagesRun& p = want.runs[r];
      uint64_t lo = std::max(at, p.vaddr), hi = std::min(at + n, p.vaddr + p.nr_pages * images::kPageSize);
      if (Status s = sys::PreadExactly(pages.get(), expect.data() + (lo - at), hi - lo, p.offset + (lo - p.vaddr), want.pages_file); !s.ok()) {
        return Diff(what + ": " + s.error().ToString());
      }
    }
    if (Status s = sys::PreadExactly(live, have.data(), n, at, "the segment"); !s.ok()) return Diff(what + ": " + s.error().ToString());
    if (std::memcmp(have.data(), expect.data(), n) != 0) {
      uint64_t first = 0;
      while (have[first] == expect[first]) ++first;
      return Diff(what + ": its contents differ from the images' from byte " + std::to_string(at + first) + " on");
    }
  }
}

void Verifier::CompareSysvObjects(const sys::SysvObjects& live, const std::string& root) {
  const images::IpcPlan& ipc = *plan_.ns.ipc;
  const std::string in = root + ": IPC ";
  auto segments = ById(live.shm);
  for (const images::SysvShmPlan& w : ipc.shm) {
    const std::string what = in + "shared memory segment " + std::to_string(w.perm.id);
    auto it = segments.find(w.perm.id);
    if (it == segments.end()) {
      Diff(what + ": missing (key " + sys::SysvKeyName(w.perm.key) + ")");
      continue;
    }
    const sys::SysvShmSegment& h = *it->second;
    segments.erase(it);
    for (const std::string& d : PermDiffs(h.perm, w.perm)) Diff(what + ": " + d);
    if (((h.perm.mode & kShmLocked) != 0) != w.locked) Diff(what + (w.locked ? ": not locked, images have it SHM_LOCKED" : ": SHM_LOCKED, images have it not locked"));
    if (h.size != w.size) {
      Diff(what + ": size " + std::to_string(h.size) + ", images say " + std::to_string(w.size));
      continue;
    }
  }
  for (const auto& [id, h] : segments) Diff(in + "shared memory segment " + std::to_string(id) + " (key " + sys::SysvKeyName(h->perm.key) + "): the images do not have it");

  auto queues = ById(live.msg);
  for (const images::SysvMsgQueuePlan& w : ipc.msg) {
    const std::string what = in + "message queue " + std::to_string(w.perm.id);
    auto it = queues.find(w.perm.id);
    if (it == queues.end()) {
      Diff(what + ": missing (key " + sys::SysvKeyName(w.perm.key) + ")");
      continue;
    }
    const sys::SysvMsgQueue& h = *it->second;
    queues.erase(it);
    for (const std::string& d : PermDiffs(h.perm, w.perm)) Diff(what + ": " + d);
    if (h.qbytes != w.qbytes) Diff(what + ": qbytes " + std::to_string(h.qbytes) + ", images say " + std::to_string(w.qbytes));
    if (h.messages.size() != w.messages.size()) {
      Diff(what + ": holds " + std::to_string(h.messages.size()) + " messages, images say " + std::to_string(w.messages.size()));
      continue;
    }
    for (size_t m = 0; m < w.messages.size(); ++m) {
      if (h.messages[m].mtype != w.messages[m].mtype || h.messages[m].text != w.messages[m].text) {
        Diff(what + ": message " + std::to_string(m) + " (type " + std::to_string(h.messages[m].mtype) + ", " +
             std::to_string(h.messages[m].text.size()) + " bytes) differs from the images' (type " + std::to_string(w.messages[m].mtype) +
             ", " + std::to_string(w.messages[m].text.size()) + " bytes)");
      }
    }
  }
  for (const auto& [id, h] : queues) Diff(in + "message queue " + std::to_string(id) + " (key " + sys::SysvKeyName(h->perm.key) + "): the images do not have it");

  auto sets = ById(live.sem);
  for (const images::SysvSemPlan& w : ipc.sem) {
    const std::string what = in + "semaphore set " + std::to_string(w.perm.id);
    auto it = sets.find(w.perm.id);
    if (it == sets.end()) {
      Diff(what + ": missing (key " + sys::SysvKeyName(w.perm.key) + ")");
      continue;
    }
    const sys::SysvSemSet& h = *it->second;
    sets.erase(it);
    for (const std::string& d : PermDiffs(h.perm, w.perm)) Diff(what + ": " + d);
    if (h.values.size() != w.values.size()) {
      Diff(what + ": " + std::to_string(h.values.size()) + " semaphores, images say " + std::to_string(w.values.size()));
      continue;
    }
    for (size_t v = 0; v < w.values.size(); ++v) {
      if (h.values[v] != w.values[v]) Diff(what + ": semaphore " + std::to_string(v) + " is " + std::to_string(h.values[v]) + ", images say " + std::to_string(w.values[v]));
    }
  }
  for (const auto& [id, h] : sets) Diff(in + "semaphore set " + std::to_string(id) + " (key " + sys::SysvKeyName(h->perm.key) + "): the images do not have it");
}

void Verifier::ComparePosixMqueues(const std::vector<sys::PosixMqueue>& live, const std::string& root) {
  const std::string in = root + ": POSIX message queue /";
  std::map<std::string, const sys::PosixMqueue*> by_name;
  for (const sys::PosixMqueue& q : live) by_name[q.name] = &q;
  for (const images::PosixMqueuePlan& w : plan_.ns.ipc->mqueues) {
    const std::string what = in + w.name;
    auto it = by_name.find(w.name);
    if (it == by_name.end()) {
      Diff(what + ": missing");
      continue;
    }
    const sys::PosixMqueue& h = *it->second;
    by_name.erase(it);
    auto field = [&](const char* name, uint64_t have, uint64_t want, bool octal = false) {
      if (std::string d = FieldDiff(name, have, want, octal); !d.empty()) Diff(what + ": " + d);
    };
    field("uid", h.uid, w.uid);
    field("gid", h.gid, w.gid);
    field("mode", h.mode, w.mode, true);
    field("maxmsg", static_cast<uint64_t>(h.maxmsg), w.maxmsg);
    field("msgsize", static_cast<uint64_t>(h.msgsize), w.msgsize);
    uint64_t bytes = 0;
    for (const images::PosixMqMessagePlan& m : w.messages) bytes += m.data.size();
    if (static_cast<uint64_t>(h.curmsgs) != w.messages.size() || h.qsize != bytes) {
      Diff(what + ": holds " + std::to_string(h.curmsgs) + " messages of " + std::to_string(h.qsize) + " bytes, images say " +
           std::to_string(w.messages.size()) + " of " + std::to_string(bytes));
    }
    if (h.notify_pid != 0) Diff(what + ": has an mq_notify(3) registration (pid " + std::to_string(h.notify_pid) + "), which the images do not have");
  }
  for (const auto& [name, h] : by_name) Diff(in + name + ": the images do not have it");
}

}  // namespace ro::verify
