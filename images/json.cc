#include "images/json.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <array>
#include <nlohmann/json.hpp>

namespace ro::images {
namespace {

// ordered_json keeps the fields in the order protobuf prints them.
using json = nlohmann::ordered_json;

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

Error EntryError(size_t index, std::string what) {
  Error e = Fail(std::move(what));
  e.context = "entry " + std::to_string(index);
  return e;
}

// crit ends base64 strings with a newline, which protobuf's JSON parser
// refuses in bytes fields: drop the whitespace there.
void TrimBytesFields(json& value, const google::protobuf::Descriptor* desc) {
  if (!value.is_object()) return;
  for (auto& [key, item] : value.items()) {
    const google::protobuf::FieldDescriptor* f = desc->FindFieldByName(key);
    if (f == nullptr) f = desc->FindFieldByCamelcaseName(key);
    if (f == nullptr) continue;
    auto visit = [&](json& v) {
      if (f->type() == google::protobuf::FieldDescriptor::TYPE_BYTES && v.is_string()) {
        std::string s = v.get<std::string>();
        std::erase_if(s, [](char c) { return c == '\n' || c == '\r' || c == ' ' || c == '\t'; });
        v = s;
      } else if (f->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE) {
        TrimBytesFields(v, f->message_type());
      }
    };
    if (item.is_array()) {
      for (json& v : item) visit(v);
    } else {
      visit(item);
    }
  }
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
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  json doc;
  doc["magic"] = std::string(file.kind->name);
  doc["entries"] = json::array();
  for (size_t i = 0; i < file.entries.size(); ++i) {
    if (file.kind->layout == Layout::kRaw) {
      doc["entries"].push_back(json{{"extra", Base64Encode(file.entries[i].payload)}});
      continue;
    }
    std::string text;
    auto st = google::protobuf::util::MessageToJsonString(*file.entries[i].message, &text, opts);
    if (!st.ok()) return EntryError(i, "JSON conversion failed: " + st.ToString());
    json entry = json::parse(text);
    if (file.kind->layout == Layout::kListWithPayload) entry["extra"] = Base64Encode(file.entries[i].payload);
    doc["entries"].push_back(std::move(entry));
  }
  return pretty ? doc.dump(2) + "\n" : doc.dump() + "\n";
}

Result<ImageFile> ImageFromJson(std::string_view text, const Limits& limits) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Fail("input is not a JSON object");
  auto magic = doc.find("magic");
  if (magic == doc.end() || !magic->is_string()) return Fail("missing \"magic\" (a kind name such as \"PSTREE\")");
  const Kind* kind = KindByName(magic->get<std::string>());
  if (kind == nullptr) return Fail("unknown magic \"" + magic->get<std::string>() + "\"");
  auto entries = doc.find("entries");
  if (entries == doc.end() || !entries->is_array()) return Fail("missing \"entries\" array");
  if (entries->size() > limits.max_entries) return Fail("more than " + std::to_string(limits.max_entries) + " entries");

  google::protobuf::util::JsonParseOptions opts;
  ImageFile file;
  file.kind = kind;
  for (size_t i = 0; i < entries->size(); ++i) {
    json entry = (*entries)[i];
    if (!entry.is_object()) return EntryError(i, "entry is not a JSON object");
    Entry out;
    if (kind->layout == Layout::kListWithPayload || kind->layout == Layout::kRaw) {
      auto extra = entry.find("extra");
      if (extra != entry.end()) {
        if (!extra->is_string()) return EntryError(i, "\"extra\" is not a base64 string");
        auto payload = Base64Decode(extra->get<std::string>());
        if (!payload.ok()) return EntryError(i, "\"extra\": " + payload.error().what);
        out.payload = std::move(payload).value();
        entry.erase("extra");
      }
    }
    if (kind->layout == Layout::kRaw) {
      if (entries->size() != 1) return Fail("a raw image holds one entry");
      file.entries.push_back(std::move(out));
      continue;
    }
    out.message = NewMessage(*kind);
    TrimBytesFields(entry, kind->descriptor());
    auto st = google::protobuf::util::JsonStringToMessage(entry.dump(), out.message.get(), opts);
    if (!st.ok()) return EntryError(i, std::string(st.message()));
    if (Status s = CheckMessage(*out.message, limits); !s.ok()) return EntryError(i, s.error().what);
    file.entries.push_back(std::move(out));
  }
  return file;
}

}  // namespace ro::images
