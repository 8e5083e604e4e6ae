// One image file: magic words, then u32-size-prefixed protobuf entries, each
// optionally followed by a raw payload (pipes-data). Parsing is bounded by
// Limits, so a hostile file can neither make it allocate without bound nor
// crash it; every error names the entry it is about.
#pragma once

#include <google/protobuf/message.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "images/kinds.h"
#include "sys/status.h"

namespace ro::images {

struct Limits {
  uint64_t max_file_bytes = 1ull << 30;    // a whole image file
  uint32_t max_entry_bytes = 8u << 20;     // one protobuf entry
  uint32_t max_payload_bytes = 64u << 20;  // raw bytes after one entry
  uint32_t max_entries = 1u << 20;         // entries in one file
  uint32_t max_string_bytes = 1u << 20;    // one string or bytes field
  int max_nesting = 16;                    // message nesting depth
};

// Where a large payload lives in the image directory: validated by its
// size and read when it is needed, never loaded whole (tmpfs archives,
// memory pages).
struct PayloadRef {
  std::string file;     // name inside the image directory
  uint64_t offset = 0;  // bytes from the start of the file
  uint64_t length = 0;
};

struct Entry {
  std::unique_ptr<google::protobuf::Message> message;  // null in raw kinds
  std::string payload;  // raw bytes after the entry (payload kinds), or a raw file read into memory
  std::optional<PayloadRef> ref;  // a raw file left on disk: `payload` is empty
};

struct ImageFile {
  const Kind* kind = nullptr;
  std::vector<Entry> entries;

  template <class M>
  const M& As(size_t i) const {
    return static_cast<const M&>(*entries.at(i).message);
  }
};

// A new, empty message of the kind's entry type (null for raw kinds).
std::unique_ptr<google::protobuf::Message> NewMessage(const Kind& kind);
// The same for entry `index`: pagemaps start with a pagemap_head.
std::unique_ptr<google::protobuf::Message> NewEntryMessage(const Kind& kind, size_t index);

// Parses a whole file. With `expected` set the magic must be that kind's;
// without, the kind is found from the magic (head magic optional, as crit
// accepts). Errors read "entry N: problem" or "header: problem".
Result<ImageFile> ParseImage(std::string_view bytes, const Kind* expected, const Limits& limits);

// Parses a file whose name is known (a path or a bare name): a raw kind
// (pages-N.img, tmpfs-dev-N.tar.gz.img) is known by its name only, a name
// whose kind carries the file's magic picks that kind (pagemap-shmem-N.img
// rather than pagemap-N.img), and any other file is known by its magic.
Result<ImageFile> ParseImageFile(std::string_view bytes, std::string_view file_name, const Limits& limits);

// Checks one parsed message against the limits and required fields.
Status CheckMessage(const google::protobuf::Message& message, const Limits& limits);

// Fails, naming the first one ("file_entry.usk: field 16"), if the message
// or one below it holds fields its schema does not declare.
Status CheckAllFieldsKnown(const google::protobuf::Message& message);

// Encodes a file; fails on a message with missing required fields, a
// payload on a kind without payloads, or a single-entry kind with a count
// other than one.
Result<std::string> SerializeImage(const ImageFile& file);

}  // namespace ro::images
