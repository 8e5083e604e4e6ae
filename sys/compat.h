// Kernel constants and structs that the system headers lack, or that the
// UAPI headers declare in a form C++ rejects.
#pragma once

#include <linux/ioctl.h>

#include <cstdint>

namespace ro::sys {

// <linux/auto_dev-ioctl.h> nests structs in an anonymous union, which C++
// refuses; this is the same layout (24 bytes before the path).
struct AutofsDevIoctl {
  uint32_t ver_major;
  uint32_t ver_minor;
  uint32_t size;  // the whole request, path included
  int32_t ioctlfd;
  union {
    uint32_t protover;
    uint32_t devid;  // OPENMOUNT
    int32_t pipefd;  // SETPIPEFD
    uint64_t timeout;
    uint32_t pad[2];
  } arg;
  char path[];
};
static_assert(sizeof(AutofsDevIoctl) == 24);

inline constexpr uint32_t kAutofsDevIoctlVersionMajor = 1;
inline constexpr uint32_t kAutofsDevIoctlVersionMinor = 1;
inline constexpr unsigned long kAutofsDevIoctlVersion = _IOWR(0x93, 0x71, AutofsDevIoctl);
inline constexpr unsigned long kAutofsDevIoctlOpenMount = _IOWR(0x93, 0x74, AutofsDevIoctl);
inline constexpr unsigned long kAutofsDevIoctlCloseMount = _IOWR(0x93, 0x75, AutofsDevIoctl);
inline constexpr unsigned long kAutofsDevIoctlSetPipeFd = _IOWR(0x93, 0x78, AutofsDevIoctl);
inline constexpr unsigned long kAutofsDevIoctlCatatonic = _IOWR(0x93, 0x79, AutofsDevIoctl);
static_assert(kAutofsDevIoctlOpenMount == 0xc0189374);
static_assert(kAutofsDevIoctlSetPipeFd == 0xc0189378);

}  // namespace ro::sys
