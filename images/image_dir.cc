#include "images/image_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "sys/io.h"

namespace ro::images {
namespace {

Error FileError(const std::string& name, Error e) {
  e.Within(name);
  return e;
}

Result<std::string> ReadFd(int fd, const std::string& name, uint64_t max_bytes) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return SysError("fstat " + name);
  if (!S_ISREG(st.st_mode)) return Fail(name + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return Fail(name + " is " + std::to_string(st.st_size) + " bytes, limit " + std::to_string(max_bytes));
  }
  std::string data;
  data.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SysError("read " + name);
    if (n == 0) break;  // shrank while we read: take what is there
    got += static_cast<size_t>(n);
  }
  data.resize(got);
  return data;
}

// A raw payload file (pages-<n>.img, tmpfs archives) is validated by its
// size and read in pieces where it is needed, never loaded whole: it is
// bounded by what it can fill (a task's pages, its address space), not by
// Limits::max_file_bytes, which bounds what is read into memory. (A task
// with 1 GiB of memory writes a pages file a little over 1 GiB.)
constexpr uint64_t kMaxRawFileBytes = 1ull << 40;

Result<uint64_t> RawFileSize(int dirfd, const std::string& name, uint64_t max_bytes) {
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd) return SysError("open " + name);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return SysError("fstat " + name);
  if (!S_ISREG(st.st_mode)) return Fail(name + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return Fail(name + " is " + std::to_string(st.st_size) + " bytes, limit " + std::to_string(max_bytes));
  }
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace

Result<UniqueFd> OpenPayload(int dirfd, const PayloadRef& ref) {
  UniqueFd fd(::openat(dirfd, ref.file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd) return SysError("open " + ref.file);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return SysError("fstat " + ref.file);
  if (!S_ISREG(st.st_mode)) return Fail(ref.file + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) < ref.offset + ref.length) {
    return Fail(ref.file + " shrank to " + std::to_string(st.st_size) + " bytes since it was read (" +
                std::to_string(ref.offset + ref.length) + " expected)");
  }
  if (::lseek(fd.get(), static_cast<off_t>(ref.offset), SEEK_SET) < 0) return SysError("lseek " + ref.file);
  return fd;
}

const ImageFile* ImageDir::Find(const Kind& kind, std::optional<uint64_t> key) const {
  auto it = files.find(MakeFileName(kind, key));
  return it == files.end() ? nullptr : &it->second;
}

Result<std::string> ReadWholeFile(int dirfd, const std::string& name, uint64_t max_bytes) {
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd) return SysError("open " + name);
  return ReadFd(fd.get(), name, max_bytes);
}

Result<std::string> ReadWholeFile(const std::string& path, uint64_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return SysError("open " + path);
  return ReadFd(fd.get(), path, max_bytes);
}

Result<ImageDir> LoadImageDir(const std::string& path, const Limits& limits) {
  UniqueFd dirfd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd) return SysError("open image directory " + path);
  int listing = ::dup(dirfd.get());
  if (listing < 0) return SysError("dup");
  DIR* dir = ::fdopendir(listing);
  if (dir == nullptr) {
    ::close(listing);
    return SysError("opendir " + path);
  }
  std::vector<std::string> names;
  while (dirent* d = ::readdir(dir)) {
    std::string name = d->d_name;
    if (name == "." || name == "..") continue;
    names.push_back(std::move(name));
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());

  ImageDir out;
  out.path = path;
  for (const std::string& name : names) {
    if (!name.ends_with(".img")) continue;
    std::optional<FileName> parsed = ParseFileName(name);
    // Only the name of a kind we do not restore is needed: never read it
    // (pages can be gigabytes).
    if (!parsed || !parsed->kind->restored) {
      out.unsupported.push_back(name);
      continue;
    }
    if (parsed->kind->layout == Layout::kRaw) {
      // A raw payload can be large: validated by its size, read when needed.
      RO_ASSIGN_OR_RETURN(uint64_t size, RawFileSize(dirfd.get(), name, kMaxRawFileBytes));
      ImageFile file;
      file.kind = parsed->kind;
      file.entries.push_back(Entry{nullptr, {}, PayloadRef{name, 0, size}});
      out.files.emplace(name, std::move(file));
      continue;
    }
    RO_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(dirfd.get(), name, limits.max_file_bytes));
    auto file = ParseImage(bytes, parsed->kind, limits);
    if (!file.ok()) return FileError(name, std::move(file).error());
    out.files.emplace(name, std::move(file).value());
  }
  return out;
}

Status WriteImageDir(const std::string& path, const std::map<std::string, ImageFile>& files) {
  std::map<std::string, std::string> encoded;
  for (const auto& [name, file] : files) {
    auto bytes = SerializeImage(file);
    if (!bytes.ok()) return FileError(name, std::move(bytes).error());
    encoded.emplace(name, std::move(bytes).value());
  }
  return WriteEncodedDir(path, encoded);
}

Status WriteEncodedDir(const std::string& path, const std::map<std::string, std::string>& files) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return SysError("mkdir " + path);
  UniqueFd dirfd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd) return SysError("open " + path);
  for (const auto& [name, bytes] : files) {
    UniqueFd fd(::openat(dirfd.get(), name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) return SysError("create " + path + "/" + name);
    RO_TRY(sys::WriteAll(fd.get(), bytes, name));
  }
  return {};
}

}  // namespace ro::images
