#include "images/json_crit.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "images/json.h"
#include "images/proto/crit-opts.pb.h"

namespace ro::images::crit {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// An integer wide enough for every protobuf integer type and its range checks.
using Wide = __int128;

struct FlagBit {
  std::string_view name;
  uint64_t bit;
};

// crit's flag tables (pycriu's pb2dict.py), in crit's order, by the names
// the schemas give in (crit).flags.
constexpr FlagBit kMmapProt[] = {{"PROT_READ", 0x1}, {"PROT_WRITE", 0x2}, {"PROT_EXEC", 0x4}};
constexpr FlagBit kMmapFlags[] = {{"MAP_SHARED", 0x1}, {"MAP_PRIVATE", 0x2}, {"MAP_ANON", 0x20}, {"MAP_GROWSDOWN", 0x100}};
constexpr FlagBit kMmapStatus[] = {
    {"VMA_AREA_NONE", 0},           {"VMA_AREA_REGULAR", 1u << 0},  {"VMA_AREA_STACK", 1u << 1},
    {"VMA_AREA_VSYSCALL", 1u << 2}, {"VMA_AREA_VDSO", 1u << 3},     {"VMA_AREA_HEAP", 1u << 5},
    {"VMA_FILE_PRIVATE", 1u << 6},  {"VMA_FILE_SHARED", 1u << 7},   {"VMA_ANON_SHARED", 1u << 8},
    {"VMA_ANON_PRIVATE", 1u << 9},  {"VMA_AREA_SYSVIPC", 1u << 10}, {"VMA_AREA_SOCKET", 1u << 11},
    {"VMA_AREA_VVAR", 1u << 12},    {"VMA_AREA_AIORING", 1u << 13}, {"VMA_UNSUPP", 1u << 31},
};
constexpr FlagBit kRfileFlags[] = {
    {"O_WRONLY", 01},          {"O_RDWR", 02},         {"O_CREAT", 0100},         {"O_EXCL", 0200},
    {"O_NOCTTY", 0400},        {"O_TRUNC", 01000},     {"O_APPEND", 02000},       {"O_NONBLOCK", 04000},
    {"O_DSYNC", 010000},       {"FASYNC", 020000},     {"O_DIRECT", 040000},      {"O_LARGEFILE", 0100000},
    {"O_DIRECTORY", 0200000},  {"O_NOFOLLOW", 0400000}, {"O_NOATIME", 01000000}, {"O_CLOEXEC", 02000000},
};
constexpr FlagBit kPmapFlags[] = {{"PE_PARENT", 1}, {"PE_LAZY", 2}, {"PE_PRESENT", 4}};
constexpr FlagBit kSealsFlags[] = {
    {"F_SEAL_SEAL", 0x1}, {"F_SEAL_SHRINK", 0x2}, {"F_SEAL_GROW", 0x4}, {"F_SEAL_WRITE", 0x8}, {"F_SEAL_FUTURE_WRITE", 0x10},
};

struct FlagTable {
  std::string_view name;
  std::span<const FlagBit> bits;
};
constexpr FlagTable kFlagTables[] = {
    {"mmap.prot", kMmapProt},     {"mmap.flags", kMmapFlags}, {"mmap.status", kMmapStatus},
    {"rfile.flags", kRfileFlags}, {"pmap.flags", kPmapFlags}, {"seals.flags", kSealsFlags},
};

// crit's value tables: a dictionary holds names per field name.
struct DictName {
  std::string_view dict;
  std::string_view field;
  int64_t value;
  std::string_view name;
};
constexpr DictName kDicts[] = {
    {"gen", "task_state", 1, "Alive"},
    {"gen", "task_state", 3, "Zombie"},
    {"gen", "task_state", 6, "Stopped"},
};

const img::crit_opts& Opts(const FieldDescriptor* f) { return f->options().GetExtension(img::crit); }

// The field's JSON key: CRIU's name, which is the .proto name unless a
// json_name gives it (where CRIU's name cannot be a C++ accessor).
const std::string& Key(const FieldDescriptor* f) { return f->has_json_name() ? f->json_name() : f->name(); }

const FlagTable* FindFlags(std::string_view name) {
  for (const FlagTable& t : kFlagTables) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Error FieldError(std::string_view path, std::string what) { return Fail(std::string(path) + ": " + what); }

std::string Hex(Wide v) {
  char buf[40];
  uint64_t mag = v < 0 ? static_cast<uint64_t>(-v) : static_cast<uint64_t>(v);
  std::snprintf(buf, sizeof(buf), "%s0x%llx", v < 0 ? "-" : "", static_cast<unsigned long long>(mag));
  return buf;
}

bool ValidUtf8(std::string_view s) {
  static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};  // shortest form per length
  size_t i = 0;
  while (i < s.size()) {
    uint8_t c = uint8_t(s[i]);
    size_t n = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 4;
    if (n == 4 || s.size() - i < n + 1) return false;
    uint32_t cp = n == 0 ? c : c & (0x3fu >> n);
    for (size_t k = 1; k <= n; ++k) {
      uint8_t cc = uint8_t(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

// An integer field's value (element `index` of a repeated one, or -1).
Wide GetInt(const Message& m, const FieldDescriptor* f, int index) {
  const Reflection* r = m.GetReflection();
  bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: return rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f);
    case FieldDescriptor::CPPTYPE_INT64: return rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f);
    case FieldDescriptor::CPPTYPE_UINT32: return rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f);
    case FieldDescriptor::CPPTYPE_UINT64: return rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f);
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
    case FieldDescriptor::CPPTYPE_BOOL:
    case FieldDescriptor::CPPTYPE_ENUM:
    case FieldDescriptor::CPPTYPE_STRING:
    case FieldDescriptor::CPPTYPE_MESSAGE: break;
  }
  return 0;
}

Json IntJson(Wide v) { return v < 0 ? Json(static_cast<int64_t>(v)) : Json(static_cast<uint64_t>(v)); }

// crit --pretty's form of an integer: hex, device, flags or dictionary name.
Result<Json> PrettyInt(const FieldDescriptor* f, Wide v, bool hex) {
  const img::crit_opts& o = Opts(f);
  if (hex) return Json(Hex(v));
  if (o.dev()) {
    uint64_t d = static_cast<uint64_t>(v);
    // Kernel encoding major << 20 | minor, or glibc's dev_t with odev.
    uint64_t maj = o.odev() ? ((d >> 8) & 0xfff) | ((d >> 32) & ~uint64_t{0xfff}) : d >> 20;
    uint64_t min = o.odev() ? (d & 0xff) | ((d >> 12) & ~uint64_t{0xff}) : d & 0xfffff;
    return Json(std::to_string(maj) + ":" + std::to_string(min));
  }
  if (o.has_flags()) {
    const FlagTable* table = FindFlags(o.flags());
    if (table == nullptr) return Json(Hex(v));  // crit: flags it has no table for print as hex
    uint64_t rest = static_cast<uint64_t>(v);
    std::string out;
    for (const FlagBit& b : table->bits) {
      if ((static_cast<uint64_t>(v) & b.bit) == 0) continue;
      out += (out.empty() ? "" : " | ") + std::string(b.name);
    }
    for (const FlagBit& b : table->bits) rest &= ~b.bit;
    if (rest != 0) out += (out.empty() ? "" : " | ") + Hex(rest);
    return Json(out);
  }
  if (o.has_dict()) {
    if (o.dict() != "gen") return Fail(f->full_name() + ": crit has no dictionary \"" + o.dict() + "\"");
    for (const DictName& d : kDicts) {
      if (d.dict == o.dict() && d.field == f->name() && d.value == v) return Json(std::string(d.name));
    }
  }
  return IntJson(v);
}

Result<Json> FieldValue(const Message& m, const FieldDescriptor* f, int index, bool pretty, bool hex);

Result<Json> ToJson(const Message& m, bool pretty, bool hex) {
  const Reflection* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  Json out = Json::object();
  for (const FieldDescriptor* f : fields) {
    bool field_hex = hex || Opts(f).hex();
    if (pretty && Opts(f).ipadd()) return Fail(f->full_name() + ": IP address fields are not supported");
    if (!f->is_repeated()) {
      RO_ASSIGN_OR_RETURN(out[Key(f)], FieldValue(m, f, -1, pretty, field_hex));
      continue;
    }
    Json list = Json::array();
    for (int i = 0; i < r->FieldSize(m, f); ++i) {
      RO_ASSIGN_OR_RETURN(Json item, FieldValue(m, f, i, pretty, field_hex));
      list.push_back(std::move(item));
    }
    out[Key(f)] = std::move(list);
  }
  return out;
}

Result<Json> FieldValue(const Message& m, const FieldDescriptor* f, int index, bool pretty, bool hex) {
  const Reflection* r = m.GetReflection();
  bool rep = index >= 0;
  std::string scratch;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      if (pretty) return PrettyInt(f, GetInt(m, f, index), hex);
      return IntJson(GetInt(m, f, index));
    case FieldDescriptor::CPPTYPE_BOOL: return Json(rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f));
    case FieldDescriptor::CPPTYPE_ENUM:
      return Json((rep ? r->GetRepeatedEnum(m, f, index) : r->GetEnum(m, f))->name());
    case FieldDescriptor::CPPTYPE_STRING: {
      const std::string& s = rep ? r->GetRepeatedStringReference(m, f, index, &scratch) : r->GetStringReference(m, f, &scratch);
      if (f->type() == FieldDescriptor::TYPE_BYTES) {
        if (Opts(f).has_conv()) return Fail(f->full_name() + ": conversion \"" + Opts(f).conv() + "\" is not supported");
        return Json(Base64EncodeLines(s));
      }
      if (!ValidUtf8(s)) return Fail(f->full_name() + " is not UTF-8; JSON cannot carry it");
      return Json(s);
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      auto sub = ToJson(rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f), pretty, hex);
      if (!sub.ok()) return std::move(sub).error();
      return std::move(sub).value();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: break;
  }
  return Fail(f->full_name() + ": floating-point fields are not in CRIU's images");
}

// Python's int(text, 0): optional sign, 0x/0o/0b prefixes, '_' between digits.
std::optional<Wide> ParsePyInt(std::string_view s) {
  while (!s.empty() && std::isspace(uint8_t(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(uint8_t(s.back()))) s.remove_suffix(1);
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && std::strchr("xXoObB", s[1]) != nullptr) {
    base = (s[1] == 'x' || s[1] == 'X') ? 16 : (s[1] == 'o' || s[1] == 'O') ? 8 : 2;
    s.remove_prefix(2);
  }
  if (s.empty() || s.front() == '_' || s.back() == '_') return std::nullopt;
  Wide v = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '_' && s[i - 1] != '_') continue;
    int d = std::isdigit(uint8_t(c)) ? c - '0' : std::isxdigit(uint8_t(c)) ? std::tolower(c) - 'a' + 10 : 99;
    if (d >= base) return std::nullopt;
    v = v * base + d;
    if (v > (Wide(1) << 65)) return std::nullopt;
  }
  return neg ? -v : v;
}

Result<Wide> IntFromJson(const Json& v, const FieldDescriptor* f, std::string_view path) {
  if (v.is_number_unsigned()) return Wide(v.get<uint64_t>());
  if (v.is_number_integer()) return Wide(v.get<int64_t>());
  if (!v.is_string()) return FieldError(path, "expected an integer, got " + v.dump());
  const std::string& s = v.get_ref<const std::string&>();
  const img::crit_opts& o = Opts(f);
  if (o.dev() && s.find(':') != std::string::npos) {
    auto maj = ParsePyInt(s.substr(0, s.find(':')));
    auto min = ParsePyInt(s.substr(s.find(':') + 1));
    if (!maj || !min || *maj < 0 || *min < 0) return FieldError(path, "bad device \"" + s + "\"");
    uint64_t ma = static_cast<uint64_t>(*maj), mi = static_cast<uint64_t>(*min);
    if (o.odev()) return Wide(((ma & 0xfff) << 8) | ((ma & ~uint64_t{0xfff}) << 32) | (mi & 0xff) | ((mi & ~uint64_t{0xff}) << 12));
    return Wide((ma << 20) | mi);
  }
  if (const FlagTable* table = o.has_flags() ? FindFlags(o.flags()) : nullptr) {
    Wide sum = 0;
    if (s.empty()) return sum;
    for (size_t at = 0; at <= s.size();) {
      size_t bar = s.find('|', at);
      std::string_view token = std::string_view(s).substr(at, bar == std::string::npos ? std::string::npos : bar - at);
      while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
      while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
      std::optional<Wide> bit;
      for (const FlagBit& b : table->bits) {
        if (b.name == token) bit = Wide(b.bit);
      }
      if (!bit) bit = ParsePyInt(token);
      if (!bit) return FieldError(path, "unknown flag \"" + std::string(token) + "\" of " + o.flags());
      sum += *bit;
      if (bar == std::string::npos) break;
      at = bar + 1;
    }
    return sum;
  }
  if (o.has_dict()) {
    for (const DictName& d : kDicts) {
      if (d.dict == o.dict() && d.field == f->name() && d.name == s) return Wide(d.value);
    }
  }
  std::optional<Wide> n = ParsePyInt(s);
  if (!n) return FieldError(path, "\"" + s + "\" is not an integer");
  return *n;
}

Status SetValue(const Json& v, const FieldDescriptor* f, Message* m, bool add, const std::string& path, int depth);

Status FromJson(const Json& value, Message* m, const std::string& path, int depth) {
  if (depth <= 0) return FieldError(path, "messages nested too deep");
  if (!value.is_object()) return FieldError(path, "expected an object, got " + value.dump());
  const Descriptor* desc = m->GetDescriptor();
  for (const auto& [key, item] : value.items()) {
    // By its key; or by an older schema's name for it (crit 3.17 calls
    // compat_nr_pages nr_pages) when the object does not spell its key.
    const FieldDescriptor* f = nullptr;
    for (int i = 0; i < desc->field_count(); ++i) {
      const FieldDescriptor* g = desc->field(i);
      if (Key(g) == key && f == nullptr) f = g;
      if (Opts(g).old_name() == key && !value.contains(Key(g))) f = g;
    }
    std::string sub = path.empty() ? key : path + "." + key;
    if (f == nullptr) return FieldError(sub, "no such field in " + desc->name());
    if (!f->is_repeated()) {
      RO_TRY(SetValue(item, f, m, false, sub, depth));
      continue;
    }
    if (!item.is_array()) return FieldError(sub, "expected a list, got " + item.dump());
    for (size_t i = 0; i < item.size(); ++i) RO_TRY(SetValue(item[i], f, m, true, sub + "[" + std::to_string(i) + "]", depth));
  }
  return {};
}

Status SetValue(const Json& v, const FieldDescriptor* f, Message* m, bool add, const std::string& path, int depth) {
  const Reflection* r = m->GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64: {
      RO_ASSIGN_OR_RETURN(Wide n, IntFromJson(v, f, path));
      bool is32 = f->cpp_type() == FieldDescriptor::CPPTYPE_INT32 || f->cpp_type() == FieldDescriptor::CPPTYPE_UINT32;
      bool is_signed = f->cpp_type() == FieldDescriptor::CPPTYPE_INT32 || f->cpp_type() == FieldDescriptor::CPPTYPE_INT64;
      int bits = is32 ? 32 : 64;
      Wide lo = is_signed ? -(Wide(1) << (bits - 1)) : 0;
      Wide hi = is_signed ? (Wide(1) << (bits - 1)) - 1 : (Wide(1) << bits) - 1;
      if (n < lo || n > hi) return FieldError(path, "value out of range of " + std::string(f->type_name()));
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT32) {
        add ? r->AddInt32(m, f, int32_t(n)) : r->SetInt32(m, f, int32_t(n));
      } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT64) {
        add ? r->AddInt64(m, f, int64_t(n)) : r->SetInt64(m, f, int64_t(n));
      } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_UINT32) {
        add ? r->AddUInt32(m, f, uint32_t(n)) : r->SetUInt32(m, f, uint32_t(n));
      } else {
        add ? r->AddUInt64(m, f, uint64_t(n)) : r->SetUInt64(m, f, uint64_t(n));
      }
      return {};
    }
    case FieldDescriptor::CPPTYPE_BOOL:
      if (!v.is_boolean()) return FieldError(path, "expected true or false, got " + v.dump());
      add ? r->AddBool(m, f, v.get<bool>()) : r->SetBool(m, f, v.get<bool>());
      return {};
    case FieldDescriptor::CPPTYPE_ENUM: {
      const google::protobuf::EnumValueDescriptor* e = nullptr;
      if (v.is_string()) e = f->enum_type()->FindValueByName(v.get<std::string>());
      if (v.is_number_integer() && v.get<int64_t>() >= INT32_MIN && v.get<int64_t>() <= INT32_MAX) {
        e = f->enum_type()->FindValueByNumber(int(v.get<int64_t>()));
      }
      if (e == nullptr) return FieldError(path, v.dump() + " is not a value of " + f->enum_type()->name());
      add ? r->AddEnum(m, f, e) : r->SetEnum(m, f, e);
      return {};
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      if (!v.is_string()) return FieldError(path, "expected a string, got " + v.dump());
      std::string s = v.get<std::string>();
      if (f->type() == FieldDescriptor::TYPE_BYTES) {
        if (Opts(f).has_conv()) return FieldError(path, "conversion \"" + Opts(f).conv() + "\" is not supported");
        auto bytes = Base64Decode(s);
        if (!bytes.ok()) return FieldError(path, bytes.error().what);
        s = std::move(bytes).value();
      }
      add ? r->AddString(m, f, std::move(s)) : r->SetString(m, f, std::move(s));
      return {};
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return FromJson(v, add ? r->AddMessage(m, f) : r->MutableMessage(m, f), path, depth - 1);
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: break;
  }
  return FieldError(path, "floating-point fields are not in CRIU's images");
}

}  // namespace

Result<Json> MessageToJson(const Message& message, bool pretty) { return ToJson(message, pretty, false); }

Status MessageFromJson(const Json& value, Message* message, int max_nesting) {
  return FromJson(value, message, "", max_nesting);
}

}  // namespace ro::images::crit
