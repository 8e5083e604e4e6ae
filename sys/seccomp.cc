#include "sys/seccomp.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ro::sys {

Status SeccompSetFilter(const std::string& program, unsigned flags) {
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(program.size() / sizeof(sock_filter));
  prog.filter = reinterpret_cast<sock_filter*>(const_cast<char*>(program.data()));
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) != 0) {
    return SysError("seccomp(SET_MODE_FILTER, flags " + std::to_string(flags) + ", " + std::to_string(prog.len) + " instructions)");
  }
  return {};
}

}  // namespace ro::sys
