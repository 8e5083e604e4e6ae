#include "test/helpers/test_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "images/json.h"
#include "images/kinds.h"
#include "images/proto/mnt.pb.h"

namespace ro::test {

ImageSet DemoImages() {
  ImageSet set;
  std::string dir = std::string(RO_SOURCE_DIR) + "/scripts/demo-images";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    auto file = images::ImageFromJson(text.str(), images::Limits{});
    if (!file.ok()) throw std::runtime_error(entry.path().string() + ": " + file.error().ToString());
    std::string stem = entry.path().stem().string();
    set.emplace(images::MakeFileName(*file->kind, file->kind->keyed ? std::optional<uint32_t>(std::stoul(stem.substr(stem.rfind('-') + 1))) : std::nullopt),
                std::move(file).value());
  }
  return set;
}

ImageSet DemoImagesForThisKernel() {
  ImageSet set = DemoImages();
  if (KernelHasAutofs()) return set;
  for (auto it = set.begin(); it != set.end();) {
    it = it->second.kind == &images::AutofsKind() ? set.erase(it) : std::next(it);
  }
  for (auto& [name, file] : set) {
    if (file.kind != &images::MountpointsKind()) continue;
    std::erase_if(file.entries, [](const images::Entry& e) { return static_cast<const img::mnt_entry&>(*e.message).fstype() == img::AUTOFS; });
  }
  return set;
}

images::ImageFile CloneFile(const images::ImageFile& file) {
  images::ImageFile out;
  out.kind = file.kind;
  for (const auto& e : file.entries) {
    images::Entry copy;
    if (e.message) {
      copy.message.reset(e.message->New());
      copy.message->CopyFrom(*e.message);
    }
    copy.payload = e.payload;
    out.entries.push_back(std::move(copy));
  }
  return out;
}

ImageSet CloneSet(const ImageSet& set) {
  ImageSet out;
  for (const auto& [name, file] : set) out.emplace(name, CloneFile(file));
  return out;
}

images::ImageDir ToImageDir(const ImageSet& set, const std::string& path) {
  images::ImageDir dir;
  dir.path = path;
  for (const auto& [name, file] : set) dir.files.emplace(name, CloneFile(file));
  return dir;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = std::string(base != nullptr ? base : "/tmp") + "/ro-test-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void TempDir::Write(const std::string& name, const std::string& bytes) const {
  std::ofstream out(File(name), std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::string TempDir::Read(const std::string& name) const {
  std::ifstream in(File(name), std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

RunResult RunCommand(const std::vector<std::string>& argv, const std::string& input) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe2 failed");
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    _exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  // Feed stdin while draining both outputs, so no pipe can fill up.
  RunResult r;
  size_t written = 0;
  int in_fd = in[1];
  if (input.empty()) {
    ::close(in_fd);
    in_fd = -1;
  } else {
    ::fcntl(in_fd, F_SETFL, O_NONBLOCK);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  int open_outputs = 2;
  char buf[65536];
  while (open_outputs > 0) {
    pollfd fds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {in_fd, POLLOUT, 0}};
    int n = ::poll(fds, in_fd >= 0 ? 3 : 2, 1000);
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      break;
    }
    if (n <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t got = ::read(fds[i].fd, buf, sizeof(buf));
      if (got <= 0) {
        --open_outputs;
        ::close(fds[i].fd);
        (i == 0 ? out[0] : err[0]) = -1;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(got));
      }
    }
    if (in_fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = ::write(in_fd, input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 || written == input.size()) {
        ::close(in_fd);
        in_fd = -1;
      }
    }
  }
  if (in_fd >= 0) ::close(in_fd);
  if (out[0] >= 0) ::close(out[0]);
  if (err[0] >= 0) ::close(err[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

void KillTree(pid_t root) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, root, 0));
  if (fd >= 0) {
    ::syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0);
    ::close(fd);
  }
  ::waitpid(root, nullptr, 0);
}

std::string RestoreOrch() {
  // Another build's binary, to see whether a test fails there (say main's).
  if (const char* other = std::getenv("RESTORE_ORCH_UNDER_TEST"); other != nullptr && *other != 0) return other;
  return RO_BINARY;
}

bool KernelHasAutofs() {
  std::ifstream in("/proc/filesystems");
  for (std::string line; std::getline(in, line);) {
    size_t tab = line.rfind('\t');
    if (line.substr(tab == std::string::npos ? 0 : tab + 1) == "autofs") return true;
  }
  return false;
}

}  // namespace ro::test
