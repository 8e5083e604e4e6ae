// A minimal AutoFS master for the tests, resumed by exec in a restored task
// or continued with its memory:
//   autofs_master READ_FD MOUNTPOINT LOG [counted]
// It reads v5 requests from the pipe it holds at READ_FD (the kernel's
// write end was handed to it by the restore), mounts a tmpfs on each
// requested key below MOUNTPOINT (an indirect mount) and answers READY.
// Each served key is appended to LOG ("KEY STATUS"; with `counted`, also
// "n=N cookie=C": how many keys it served, and a random cookie made at
// start, both kept only in its memory). Statically linked, so it runs in a
// restored mount namespace that holds nothing but its own directory.
#include <fcntl.h>
#include <linux/auto_fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  bool counted = argc == 5 && std::strcmp(argv[4], "counted") == 0;
  if (argc != 4 && !counted) {
    std::fprintf(stderr, "usage: autofs_master READ_FD MOUNTPOINT LOG [counted]\n");
    return 64;
  }
  int pipe_fd = std::atoi(argv[1]);
  std::string mountpoint = argv[2];
  int log = ::open(argv[3], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  // The master's own process group owns the mount: lookups from here do
  // not trigger it.
  int root = ::open(mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (log < 0 || root < 0) return 1;
  unsigned long long cookie = 0, served = 0;
  if (counted && ::getrandom(&cookie, sizeof(cookie), 0) != sizeof(cookie)) return 1;
  for (;;) {
    autofs_v5_packet packet{};
    ssize_t n = ::read(pipe_fd, &packet, sizeof(packet));
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(sizeof(packet))) return 2;
    std::string key(packet.name, packet.len);
    int status = 0;
    if (packet.hdr.type == autofs_ptype_missing_indirect) {
      std::string dir = mountpoint + "/" + key;
      if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) status = errno;
      if (status == 0 && ::mount("served", dir.c_str(), "tmpfs", 0, "size=64k") != 0) status = errno;
    }
    if (status == 0) {
      ::ioctl(root, AUTOFS_IOC_READY, packet.wait_queue_token);
    } else {
      ::ioctl(root, AUTOFS_IOC_FAIL, packet.wait_queue_token);
    }
    std::string line = key + " " + std::to_string(status);
    if (counted) {
      char extra[64];
      std::snprintf(extra, sizeof(extra), " n=%llu cookie=%016llx", ++served, cookie);
      line += extra;
    }
    line += "\n";
    (void)!::write(log, line.data(), line.size());
  }
}
