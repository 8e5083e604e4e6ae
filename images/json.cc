#include "images/json.h"

#include <google/protobuf/descriptor.h>

#include <array>

#include "images/json_crit.h"
#include "images/payloads.h"
#include "images/proto/pipe-data.pb.h"

namespace ro::images {
namespace {

using crit::Json;

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

Error EntryError(size_t index, std::string what) {
  Error e = Fail(std::move(what));
  e.context = "entry " + std::to_string(index);
  return e;
}

// A raw kind's JSON, written without a JSON library: the payload can be a
// gigabyte of pages, and its base64 needs no escaping but its newlines.
std::string RawJson(const Kind& kind, std::string_view payload, bool pretty) {
  std::string b64 = Base64EncodeLines(payload);
  std::string extra;
  extra.reserve(b64.size() + b64.size() / 76 + 2);
  for (char c : b64) {
    if (c == '\n') {
      extra += "\\n";
    } else {
      extra += c;
    }
  }
  std::string magic(kind.JsonName());
  if (!pretty) return "{\"magic\":\"" + magic + "\",\"entries\":[{\"extra\":\"" + extra + "\"}]}\n";
  return "{\n    \"magic\": \"" + magic + "\",\n    \"entries\": [\n        {\n            \"extra\": \"" + extra +
         "\"\n        }\n    ]\n}\n";
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out += kAlphabet[(v >> shift) & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = uint8_t(bytes[i]) << 16;
    if (rest == 2) v |= uint8_t(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string Base64EncodeLines(std::string_view bytes) {
  constexpr size_t kLineBytes = 57;  // 76 base64 characters
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4 + bytes.size() / kLineBytes + 1);
  for (size_t at = 0; at < bytes.size(); at += kLineBytes) {
    out += Base64Encode(bytes.substr(at, kLineBytes));
    out += '\n';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  std::array<int, 256> value{};
  value.fill(-1);
  for (size_t i = 0; i < kAlphabet.size(); ++i) value[uint8_t(kAlphabet[i])] = int(i);
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  int pad = 0;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++pad;
      continue;
    }
    int v = value[uint8_t(c)];
    if (v < 0 || pad > 0) return Fail("invalid base64");
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  if (pad > 2 || bits >= 6) return Fail("invalid base64 length");
  return out;
}

Result<std::string> ImageToJson(const ImageFile& file, bool pretty) {
  const Kind& kind = *file.kind;
  if (kind.layout == Layout::kRaw) {
    if (file.entries.size() != 1) return Fail("a raw image is one payload");
    return RawJson(kind, file.entries[0].payload, pretty);
  }
  Json doc;
  doc["magic"] = std::string(kind.JsonName());
  doc["entries"] = Json::array();
  for (size_t i = 0; i < file.entries.size(); ++i) {
    const Entry& e = file.entries[i];
    if (Status s = CheckAllFieldsKnown(*e.message); !s.ok()) {
      return EntryError(i, std::move(s).error().what + "; its JSON would lose it");
    }
    auto entry = crit::MessageToJson(*e.message, pretty);
    if (!entry.ok()) return EntryError(i, std::move(entry).error().what);
    if (kind.layout == Layout::kListWithPayload) {
      auto extra = PayloadToJson(kind, *e.message, e.payload);
      if (!extra.ok()) return EntryError(i, std::move(extra).error().what);
      (*entry)["extra"] = std::move(extra).value();
    }
    doc["entries"].push_back(std::move(entry).value());
  }
  return pretty ? doc.dump(4) + "\n" : doc.dump() + "\n";
}

Result<ImageFile> ImageFromJson(std::string_view text, const Limits& limits) {
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Fail("input is not a JSON object");
  auto magic = doc.find("magic");
  if (magic == doc.end() || !magic->is_string()) return Fail("missing \"magic\" (a kind name such as \"PSTREE\")");
  const Kind* kind = KindByName(magic->get<std::string>());
  if (kind == nullptr) return Fail("unknown magic \"" + magic->get<std::string>() + "\"");
  auto entries = doc.find("entries");
  if (entries == doc.end() || !entries->is_array()) return Fail("missing \"entries\" array");
  if (entries->size() > limits.max_entries) return Fail("more than " + std::to_string(limits.max_entries) + " entries");
  if (kind->layout == Layout::kRaw && entries->size() != 1) return Fail("a raw image holds one entry");

  ImageFile file;
  file.kind = kind;
  for (size_t i = 0; i < entries->size(); ++i) {
    Json entry = (*entries)[i];
    if (!entry.is_object()) return EntryError(i, "entry is not a JSON object");
    Entry out;
    Json extra;
    if (kind->layout == Layout::kListWithPayload || kind->layout == Layout::kRaw) {
      if (auto it = entry.find("extra"); it != entry.end()) {
        extra = std::move(*it);
        entry.erase("extra");
      }
    }
    if (kind->layout == Layout::kRaw && !extra.is_null()) {
      if (!extra.is_string()) return EntryError(i, "\"extra\" is not a base64 string");
      auto payload = Base64Decode(extra.get<std::string>());
      if (!payload.ok()) return EntryError(i, "\"extra\": " + payload.error().what);
      if (payload->size() > limits.max_file_bytes) {
        return EntryError(i, "payload of " + std::to_string(payload->size()) + " bytes exceeds the limit " +
                                 std::to_string(limits.max_file_bytes));
      }
      out.payload = std::move(payload).value();
    }
    if (kind->layout == Layout::kRaw) {
      if (!entry.empty()) return EntryError(i, "a raw image's entry holds only \"extra\"");
      file.entries.push_back(std::move(out));
      continue;
    }
    out.message = NewEntryMessage(*kind, i);
    if (Status s = crit::MessageFromJson(entry, out.message.get(), limits.max_nesting); !s.ok()) {
      return EntryError(i, std::move(s).error().what);
    }
    if (Status s = CheckMessage(*out.message, limits); !s.ok()) return EntryError(i, s.error().what);
    if (kind->layout == Layout::kListWithPayload && !extra.is_null()) {
      auto payload = PayloadFromJson(*kind, *out.message, extra, limits);
      if (!payload.ok()) return EntryError(i, "\"extra\": " + payload.error().what);
      out.payload = std::move(payload).value();
    }
    file.entries.push_back(std::move(out));
  }
  return file;
}

}  // namespace ro::images
