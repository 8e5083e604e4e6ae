#include "test/helpers/mm_images.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>

#include "images/image_dir.h"
#include "images/proto/pagemap.pb.h"
#include "sys/clone.h"
#include "sys/proc.h"

namespace ro::test {

std::string MmCounter() { return std::string(RO_HELPERS_DIR) + "/mm_counter"; }

RunResult RunDump(pid_t root, const std::string& dir, std::vector<std::string> extra) {
  std::vector<std::string> argv = {RestoreOrch(), "dump", "--tree", std::to_string(root), "--images", dir};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return RunCommand(argv);
}

std::string ReadText(const std::string& path) {
  auto text = sys::ReadProcFile(path);
  return text.ok() ? *text : "";
}

pid_t StartTreeInNewPidNs(const std::function<void()>& init) {
  sys::CloneSpec spec;
  spec.flags = CLONE_NEWPID;
  spec.want_pidfd = false;
  auto cloned = sys::Clone3(spec);
  if (!cloned.ok()) return -1;
  if (cloned->pid == 0) {
    ::close_range(3, ~0u, 0);
    if (::setsid() < 0) ::_exit(1);  // a session of its own: not a shell's job
    int null = ::open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; ++fd) ::dup2(null, fd);
    if (null > 2) ::close(null);
    init();
    ::_exit(0);
  }
  return cloned->pid;
}

std::vector<pid_t> TreeBelow(pid_t root) {
  std::vector<pid_t> out{root};
  for (size_t i = 0; i < out.size(); ++i) {
    std::string p = std::to_string(out[i]);
    std::istringstream in(ReadText("/proc/" + p + "/task/" + p + "/children"));
    for (pid_t k; in >> k;) out.push_back(k);
  }
  return out;
}

char TaskState(pid_t pid) {
  auto st = sys::ParseProcStat(ReadText("/proc/" + std::to_string(pid) + "/stat"));
  return st.ok() ? st->state : '?';
}

std::map<std::string, std::string> KeyValues(const std::string& line) {
  std::map<std::string, std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) {
    size_t eq = w.find('=');
    if (eq != std::string::npos) out[w.substr(0, eq)] = w.substr(eq + 1);
  }
  return out;
}

uint64_t NumberOf(const std::map<std::string, std::string>& fields, const std::string& key) {
  auto it = fields.find(key);
  return it == fields.end() ? 0 : std::strtoull(it->second.c_str(), nullptr, 0);
}

std::optional<images::ImageFile> ReadImage(const std::string& dir, const std::string& name) {
  auto bytes = images::ReadWholeFile(dir + "/" + name, 1ull << 30);
  if (!bytes.ok()) return std::nullopt;
  auto f = images::ParseImageFile(*bytes, name, images::Limits{});
  if (!f.ok()) return std::nullopt;
  return std::move(f).value();
}

bool ImageMemory::Load(const std::string& dir, const std::string& pagemap_name) {
  auto pm = ReadImage(dir, pagemap_name);
  if (!pm || pm->entries.empty()) return false;
  pages_id_ = pm->As<img::pagemap_head>(0).pages_id();
  uint64_t offset = 0;
  for (size_t i = 1; i < pm->entries.size(); ++i) {
    const auto& e = pm->As<img::pagemap_entry>(i);
    if (e.flags() != 4 || e.compat_nr_pages() != 0 || e.nr_pages() == 0) return false;
    runs_.push_back({e.vaddr(), e.nr_pages(), offset});
    offset += e.nr_pages() * kPage;
  }
  pages_ = dir + "/pages-" + std::to_string(pages_id_) + ".img";
  struct stat st {};
  return ::stat(pages_.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == offset;
}

std::optional<std::string> ImageMemory::Page(uint64_t addr) const {
  uint64_t page = addr / kPage * kPage;
  for (const Run& r : runs_) {
    if (page < r.vaddr || page >= r.vaddr + r.pages * kPage) continue;
    std::string buf(kPage, '\0');
    int fd = ::open(pages_.c_str(), O_RDONLY | O_CLOEXEC);
    ssize_t n = ::pread(fd, buf.data(), kPage, static_cast<off_t>(r.offset + page - r.vaddr));
    ::close(fd);
    if (n != static_cast<ssize_t>(kPage)) return std::nullopt;
    return buf;
  }
  return std::nullopt;
}

bool ImageMemory::Covers(uint64_t start, uint64_t end) const {
  for (const Run& r : runs_) {
    if (r.vaddr < end && start < r.vaddr + r.pages * kPage) return true;
  }
  return false;
}

uint64_t ImageMemory::pages() const {
  uint64_t n = 0;
  for (const Run& r : runs_) n += r.pages;
  return n;
}

}  // namespace ro::test
