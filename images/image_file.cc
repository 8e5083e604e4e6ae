#include "images/image_file.h"
#include "images/payloads.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/unknown_field_set.h>

#include <cstring>

#include "images/proto/pipe-data.pb.h"

namespace ro::images {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

uint32_t LoadU32(std::string_view bytes, size_t at) {
  uint32_t v = 0;
  std::memcpy(&v, bytes.data() + at, sizeof(v));
  return v;
}

void AppendU32(std::string& out, uint32_t v) {
  char buf[sizeof(v)];
  std::memcpy(buf, &v, sizeof(v));
  out.append(buf, sizeof(v));
}

Error EntryError(size_t index, std::string what) {
  Error e = Fail(std::move(what));
  e.context = "entry " + std::to_string(index);
  return e;
}

Error HeaderError(std::string what) {
  Error e = Fail(std::move(what));
  e.context = "header";
  return e;
}

std::string Hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

// Walks every string/bytes field, bounding their length and the depth.
Status CheckFields(const Message& m, const Limits& limits, int depth) {
  if (depth > limits.max_nesting) return Fail("messages nested deeper than " + std::to_string(limits.max_nesting));
  const Reflection* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      std::string scratch;
      auto check = [&](const std::string& s) -> Status {
        if (s.size() > limits.max_string_bytes) {
          return Fail("field " + f->name() + " is " + std::to_string(s.size()) + " bytes, limit " +
                      std::to_string(limits.max_string_bytes));
        }
        return {};
      };
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(m, f); ++i) RO_TRY(check(r->GetRepeatedStringReference(m, f, i, &scratch)));
      } else {
        RO_TRY(check(r->GetStringReference(m, f, &scratch)));
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(m, f); ++i) RO_TRY(CheckFields(r->GetRepeatedMessage(m, f, i), limits, depth + 1));
      } else {
        RO_TRY(CheckFields(r->GetMessage(m, f), limits, depth + 1));
      }
    }
  }
  return {};
}

}  // namespace

std::unique_ptr<Message> NewMessage(const Kind& kind) { return NewEntryMessage(kind, 1); }

std::unique_ptr<Message> NewEntryMessage(const Kind& kind, size_t index) {
  const google::protobuf::Descriptor* desc = kind.EntryDescriptor(index);
  if (desc == nullptr) return nullptr;
  const Message* prototype = google::protobuf::MessageFactory::generated_factory()->GetPrototype(desc);
  return std::unique_ptr<Message>(prototype->New());
}

Status CheckAllFieldsKnown(const Message& m) {
  const Reflection* r = m.GetReflection();
  const google::protobuf::UnknownFieldSet& unknown = r->GetUnknownFields(m);
  if (!unknown.empty()) {
    return Fail(m.GetDescriptor()->name() + " holds field " + std::to_string(unknown.field(0).number()) +
                ", which its schema does not declare");
  }
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    int n = f->is_repeated() ? r->FieldSize(m, f) : 1;
    for (int i = 0; i < n; ++i) {
      const Message& sub = f->is_repeated() ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f);
      if (Status s = CheckAllFieldsKnown(sub); !s.ok()) {
        Error e = std::move(s).error();
        e.what = m.GetDescriptor()->name() + "." + f->name() + ": " + e.what;
        return e;
      }
    }
  }
  return {};
}

Status CheckMessage(const Message& message, const Limits& limits) {
  if (!message.IsInitialized()) {
    return Fail("missing required field(s): " + message.InitializationErrorString());
  }
  return CheckFields(message, limits, 1);
}

Result<ImageFile> ParseImage(std::string_view bytes, const Kind* expected, const Limits& limits) {
  if (bytes.size() > limits.max_file_bytes) {
    return HeaderError("file is " + std::to_string(bytes.size()) + " bytes, limit " +
                       std::to_string(limits.max_file_bytes));
  }
  if (expected != nullptr && expected->layout == Layout::kRaw) {
    ImageFile raw;
    raw.kind = expected;
    raw.entries.push_back(Entry{nullptr, std::string(bytes)});
    return raw;
  }
  if (bytes.size() < 4) return HeaderError("file is too short to hold a magic (" + std::to_string(bytes.size()) + " bytes)");
  size_t pos = 0;
  uint32_t first = LoadU32(bytes, 0);
  const Kind* kind = nullptr;
  if (expected != nullptr) {
    kind = expected;
    if (kind->head_magic != 0) {
      if (first != kind->head_magic) {
        return HeaderError("head magic " + Hex(first) + " is not " + Hex(kind->head_magic));
      }
      if (bytes.size() < 8) return HeaderError("file ends before the type magic");
      uint32_t type = LoadU32(bytes, 4);
      if (type != kind->magic) {
        return HeaderError("type magic " + Hex(type) + " is not " + std::string(kind->name) + "'s " + Hex(kind->magic));
      }
      pos = 8;
    } else {
      if (first != kind->magic) {
        return HeaderError("magic " + Hex(first) + " is not " + std::string(kind->name) + "'s " + Hex(kind->magic));
      }
      pos = 4;
    }
  } else {
    uint32_t type = first;
    pos = 4;
    if (first == kCommonHeadMagic || first == kServiceHeadMagic) {
      if (bytes.size() < 8) return HeaderError("file ends before the type magic");
      type = LoadU32(bytes, 4);
      pos = 8;
    }
    kind = KindByMagic(type);
    if (kind == nullptr) return HeaderError("unknown magic " + Hex(type));
  }

  ImageFile file;
  file.kind = kind;
  while (pos < bytes.size()) {
    size_t index = file.entries.size();
    if (index >= limits.max_entries) {
      return EntryError(index, "more than " + std::to_string(limits.max_entries) + " entries");
    }
    if (bytes.size() - pos < 4) {
      return EntryError(index, "truncated size word (" + std::to_string(bytes.size() - pos) + " of 4 bytes)");
    }
    uint32_t size = LoadU32(bytes, pos);
    pos += 4;
    if (size > limits.max_entry_bytes) {
      return EntryError(index, "entry size " + std::to_string(size) + " exceeds the limit " +
                                   std::to_string(limits.max_entry_bytes));
    }
    if (bytes.size() - pos < size) {
      return EntryError(index, "truncated entry: " + std::to_string(bytes.size() - pos) + " of " +
                                   std::to_string(size) + " bytes");
    }
    Entry entry;
    entry.message = NewEntryMessage(*kind, index);
    google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data() + pos),
                                              static_cast<int>(size));
    in.SetRecursionLimit(limits.max_nesting);
    if (!entry.message->MergePartialFromCodedStream(&in) || !in.ConsumedEntireMessage()) {
      return EntryError(index, "malformed protobuf " + entry.message->GetDescriptor()->name());
    }
    pos += size;
    if (Status s = CheckMessage(*entry.message, limits); !s.ok()) {
      return EntryError(index, s.error().what);
    }
    if (kind->layout == Layout::kListWithPayload) {
      auto n = PayloadSize(*kind, *entry.message, bytes.substr(pos), limits);
      if (!n.ok()) return EntryError(index, n.error().what);
      entry.payload.assign(bytes.substr(pos, *n));
      pos += *n;
    }
    file.entries.push_back(std::move(entry));
  }
  if (kind->layout == Layout::kSingle && file.entries.size() != 1) {
    return EntryError(file.entries.size(), std::string(kind->name) + " image must hold exactly one entry, it holds " +
                                               std::to_string(file.entries.size()));
  }
  return file;
}

Result<ImageFile> ParseImageFile(std::string_view bytes, std::string_view file_name, const Limits& limits) {
  std::string_view base = file_name.substr(file_name.rfind('/') + 1);
  std::optional<FileName> named = ParseFileName(base);
  if (named && named->kind->layout == Layout::kRaw) return ParseImage(bytes, named->kind, limits);
  if (named && bytes.size() >= 8) {
    uint32_t type = LoadU32(bytes, named->kind->head_magic != 0 ? 4 : 0);
    uint32_t head = LoadU32(bytes, 0);
    if (type == named->kind->magic && (named->kind->head_magic == 0 || head == named->kind->head_magic)) {
      return ParseImage(bytes, named->kind, limits);
    }
  }
  return ParseImage(bytes, nullptr, limits);
}

Result<std::string> SerializeImage(const ImageFile& file) {
  const Kind& kind = *file.kind;
  if (kind.layout == Layout::kRaw) {
    if (file.entries.size() != 1 || file.entries[0].message) return Fail("a raw image is one payload");
    return file.entries[0].payload;
  }
  if (kind.layout == Layout::kSingle && file.entries.size() != 1) {
    return Fail(std::string(kind.name) + " image must hold exactly one entry, not " + std::to_string(file.entries.size()));
  }
  std::string out;
  if (kind.head_magic != 0) AppendU32(out, kind.head_magic);
  AppendU32(out, kind.magic);
  for (size_t i = 0; i < file.entries.size(); ++i) {
    const Entry& e = file.entries[i];
    if (!e.message || e.message->GetDescriptor() != kind.EntryDescriptor(i)) {
      if (!e.message) return EntryError(i, std::string(kind.name) + " entries are messages");
      return EntryError(i, "message type " + e.message->GetDescriptor()->name() + " does not belong in " + std::string(kind.name));
    }
    if (!e.message->IsInitialized()) {
      return EntryError(i, "missing required field(s): " + e.message->InitializationErrorString());
    }
    std::string body;
    if (!e.message->SerializeToString(&body)) return EntryError(i, "protobuf serialization failed");
    AppendU32(out, static_cast<uint32_t>(body.size()));
    out += body;
    if (kind.layout == Layout::kListWithPayload) {
      auto n = PayloadSize(kind, *e.message, e.payload, Limits{.max_payload_bytes = UINT32_MAX});
      if (!n.ok() || *n != e.payload.size()) {
        return EntryError(i, "the entry says " + (n.ok() ? std::to_string(*n) + " payload bytes follow" : n.error().what) +
                                 ", but the payload holds " + std::to_string(e.payload.size()));
      }
      out += e.payload;
    } else if (!e.payload.empty()) {
      return EntryError(i, std::string(kind.name) + " entries carry no payload");
    }
  }
  return out;
}

}  // namespace ro::images
