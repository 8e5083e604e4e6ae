#include "sys/elf.h"

#include <elf.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace ro::sys {
namespace {

constexpr size_t kMaxHeaders = 256;        // program headers read
constexpr uint64_t kMaxNoteBytes = 65536;  // of one PT_NOTE segment
constexpr uint32_t kMaxBuildId = 64;

// Reads up to `len` bytes at `offset`; a short file gives fewer.
Result<std::string> ReadAt(int fd, uint64_t offset, size_t len, const std::string& what) {
  std::string buf(len, '\0');
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, buf.data() + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SysError("pread " + what);
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  buf.resize(done);
  return buf;
}

template <class T>
T Get(const std::string& b, size_t at) {
  T v{};
  if (at + sizeof(T) <= b.size()) std::memcpy(&v, b.data() + at, sizeof(T));
  return v;
}

// The build-id in a PT_NOTE segment's notes, if any.
std::string FindInNotes(const std::string& notes) {
  auto align4 = [](uint64_t v) { return (v + 3) & ~uint64_t{3}; };
  for (uint64_t at = 0; at + 12 <= notes.size();) {
    uint32_t namesz = Get<uint32_t>(notes, at), descsz = Get<uint32_t>(notes, at + 4), type = Get<uint32_t>(notes, at + 8);
    uint64_t name_at = at + 12, desc_at = name_at + align4(namesz), next = desc_at + align4(descsz);
    if (next > notes.size() || next <= at) return {};
    if (type == NT_GNU_BUILD_ID && namesz == 4 && notes.compare(name_at, 4, std::string("GNU\0", 4)) == 0 && descsz > 0 &&
        descsz <= kMaxBuildId) {
      return notes.substr(desc_at, descsz);
    }
    at = next;
  }
  return {};
}

}  // namespace

Result<std::string> ElfBuildId(int fd, const std::string& what) {
  RO_ASSIGN_OR_RETURN(std::string eh, ReadAt(fd, 0, sizeof(Elf64_Ehdr), what));
  if (eh.size() < EI_NIDENT || eh.compare(0, SELFMAG, ELFMAG) != 0) return std::string();
  bool wide = eh[EI_CLASS] == ELFCLASS64;
  if (!wide && eh[EI_CLASS] != ELFCLASS32) return std::string();
  uint64_t phoff = wide ? Get<uint64_t>(eh, offsetof(Elf64_Ehdr, e_phoff)) : Get<uint32_t>(eh, offsetof(Elf32_Ehdr, e_phoff));
  uint16_t phentsize = wide ? Get<uint16_t>(eh, offsetof(Elf64_Ehdr, e_phentsize)) : Get<uint16_t>(eh, offsetof(Elf32_Ehdr, e_phentsize));
  uint16_t phnum = wide ? Get<uint16_t>(eh, offsetof(Elf64_Ehdr, e_phnum)) : Get<uint16_t>(eh, offsetof(Elf32_Ehdr, e_phnum));
  size_t need = wide ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
  if (phentsize < need || phnum == 0 || phnum > kMaxHeaders) return std::string();
  RO_ASSIGN_OR_RETURN(std::string ph, ReadAt(fd, phoff, static_cast<size_t>(phentsize) * phnum, what));
  for (size_t i = 0; (i + 1) * phentsize <= ph.size(); ++i) {
    size_t at = i * phentsize;
    uint32_t type = Get<uint32_t>(ph, at);
    if (type != PT_NOTE) continue;
    uint64_t offset = wide ? Get<uint64_t>(ph, at + offsetof(Elf64_Phdr, p_offset)) : Get<uint32_t>(ph, at + offsetof(Elf32_Phdr, p_offset));
    uint64_t size = wide ? Get<uint64_t>(ph, at + offsetof(Elf64_Phdr, p_filesz)) : Get<uint32_t>(ph, at + offsetof(Elf32_Phdr, p_filesz));
    if (size == 0 || size > kMaxNoteBytes) continue;
    RO_ASSIGN_OR_RETURN(std::string notes, ReadAt(fd, offset, static_cast<size_t>(size), what));
    std::string id = FindInNotes(notes);
    if (!id.empty()) return id;
  }
  return std::string();
}

}  // namespace ro::sys
