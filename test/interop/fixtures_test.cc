// Upstream CRIU 4.2 dumps (/work/shared/criu-images/*/img/, read-only), file
// by file: `image decode | image encode` gives back the very bytes; our
// JSON equals crit's (plain and --pretty), field for field; what crit
// prints, we encode as crit does; and every entry parses with no field our
// schemas do not declare. crit's side comes from test/interop/crit_batch.py,
// which runs the functions crit's CLI calls for all files in one process.
#include <dirent.h>
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "images/image_file.h"
#include "images/json.h"
#include "images/kinds.h"
#include "test/helpers/test_util.h"

namespace ro::test {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using Json = nlohmann::json;
using namespace ro::images;

struct Fixture {
  std::string path;   // full path
  std::string name;   // "tree-sessions/img/core-1.img"
  std::string bytes;
};

std::vector<Fixture> LoadFixtures() {
  std::vector<Fixture> out;
  const std::string root = RO_CRIU_FIXTURES;
  DIR* top = ::opendir(root.c_str());
  if (top == nullptr) return out;
  std::vector<std::string> trees;
  while (dirent* d = ::readdir(top)) {
    if (d->d_name[0] != '.') trees.push_back(d->d_name);
  }
  ::closedir(top);
  for (const std::string& tree : trees) {
    std::string dir = root + "/" + tree + "/img";
    DIR* img = ::opendir(dir.c_str());
    if (img == nullptr) continue;
    while (dirent* d = ::readdir(img)) {
      if (d->d_name[0] == '.') continue;
      Fixture f{dir + "/" + d->d_name, tree + "/img/" + d->d_name, {}};
      auto bytes = ReadWholeFile(f.path, 1ull << 30);
      if (bytes.ok()) f.bytes = *bytes;
      out.push_back(std::move(f));
    }
    ::closedir(img);
  }
  std::sort(out.begin(), out.end(), [](const Fixture& a, const Fixture& b) { return a.name < b.name; });
  return out;
}

const std::string& JsonKey(const FieldDescriptor* f) { return f->has_json_name() ? f->json_name() : f->name(); }

// Compares our JSON of one message with crit's by field number: crit names
// fields by its 3.17 schema, which lacks newer fields and calls
// compat_nr_pages nr_pages. Fields only we print must be unknown to that
// schema; they are collected in `newer`.
void CompareMessage(const Json& ours, const Json& crit, const Descriptor* d, const Json& schema,
                    const std::string& path, std::set<std::string>* newer, std::vector<std::string>* diffs) {
  if (!schema.contains(d->name())) {
    diffs->push_back(path + ": crit has no message " + d->name());
    return;
  }
  const Json& known = schema[d->name()];
  std::set<std::string> matched;
  for (const auto& [key, value] : crit.items()) {
    const FieldDescriptor* f = known.contains(key) ? d->FindFieldByNumber(known[key].get<int>()) : nullptr;
    if (f == nullptr || !ours.contains(JsonKey(f))) {
      diffs->push_back(path + "." + key + ": crit prints it, we do not");
      continue;
    }
    matched.insert(JsonKey(f));
    const Json& mine = ours[JsonKey(f)];
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      if (mine != value) diffs->push_back(path + "." + key + ": ours " + mine.dump() + ", crit's " + value.dump());
    } else if (!f->is_repeated()) {
      CompareMessage(mine, value, f->message_type(), schema, path + "." + key, newer, diffs);
    } else if (mine.size() != value.size()) {
      diffs->push_back(path + "." + key + ": " + std::to_string(mine.size()) + " items, crit's " + std::to_string(value.size()));
    } else {
      for (size_t i = 0; i < value.size(); ++i) {
        CompareMessage(mine[i], value[i], f->message_type(), schema, path + "." + key + "[" + std::to_string(i) + "]", newer, diffs);
      }
    }
  }
  for (const auto& [key, value] : ours.items()) {
    if (matched.count(key)) continue;
    const FieldDescriptor* f = nullptr;
    for (int i = 0; i < d->field_count(); ++i) {
      if (JsonKey(d->field(i)) == key) f = d->field(i);
    }
    bool crit_knows = false;
    for (const auto& [name, number] : known.items()) crit_knows |= f != nullptr && number.get<int>() == f->number();
    if (f == nullptr || crit_knows) {
      diffs->push_back(path + "." + key + ": we print it, crit does not");
    } else {
      newer->insert(d->name() + "." + key);
    }
  }
}

void CompareImage(const Json& ours, const Json& crit, const Kind& kind, const Json& schema, std::set<std::string>* newer,
                  std::vector<std::string>* diffs) {
  if (ours["magic"] != crit["magic"]) diffs->push_back("magic: ours " + ours["magic"].dump() + ", crit's " + crit["magic"].dump());
  if (ours["entries"].size() != crit["entries"].size()) {
    diffs->push_back("entries: " + std::to_string(ours["entries"].size()) + ", crit's " + std::to_string(crit["entries"].size()));
    return;
  }
  for (size_t i = 0; i < crit["entries"].size(); ++i) {
    Json mine = ours["entries"][i];
    Json theirs = crit["entries"][i];
    if (mine.value("extra", Json()) != theirs.value("extra", Json())) diffs->push_back("entry " + std::to_string(i) + ": extra differs");
    mine.erase("extra");
    theirs.erase("extra");
    CompareMessage(mine, theirs, kind.EntryDescriptor(i), schema, "entry " + std::to_string(i), newer, diffs);
  }
}

// What `image decode FILE [--pretty]` and `image encode` print. The command
// itself runs for the first file of each image kind (`cli`); the other
// files go through the same library calls in this process (a command per
// file is most of the time under a sanitizer).
RunResult Decode(const Fixture& f, bool pretty, bool cli) {
  if (cli) {
    std::vector<std::string> argv = {RestoreOrch(), "image", "decode", f.path};
    if (pretty) argv.push_back("--pretty");
    return RunCommand(argv);
  }
  auto parsed = ParseImageFile(f.bytes, f.path, Limits{});
  if (!parsed.ok()) return {2, "", parsed.error().ToString()};
  auto json = ImageToJson(*parsed, pretty);
  if (!json.ok()) return {1, "", json.error().ToString()};
  return {0, *json, ""};
}

RunResult Encode(const std::string& json, bool cli) {
  if (cli) return RunCommand({RestoreOrch(), "image", "encode"}, json);
  auto file = ImageFromJson(json, Limits{});
  if (!file.ok()) return {2, "", file.error().ToString()};
  auto bytes = SerializeImage(*file);
  if (!bytes.ok()) return {2, "", bytes.error().ToString()};
  return {0, *bytes, ""};
}

// True for the first fixture of its magic (raw files count as one kind).
class FirstOfKind {
 public:
  bool operator()(const Fixture& f) {
    auto parsed = ParseImageFile(f.bytes, f.path, Limits{});
    return seen_.insert(parsed.ok() ? std::string(parsed->kind->name) : std::string("(unparsed)")).second;
  }

 private:
  std::set<std::string> seen_;
};

class CritFixtures : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixtures_ = new std::vector<Fixture>(LoadFixtures());
    std::vector<std::string> argv = {"/usr/bin/python3", std::string(RO_SOURCE_DIR) + "/test/interop/crit_batch.py"};
    for (const Fixture& f : *fixtures_) argv.push_back(f.path);
    RunResult r = RunCommand(argv);
    crit_ = new Json(r.status == 0 ? Json::parse(r.out, nullptr, false) : Json());
    batch_error_ = new std::string(r.err);
  }
  static void TearDownTestSuite() {
    delete fixtures_;
    delete crit_;
    delete batch_error_;
  }
  void SetUp() override {
    if (fixtures_->empty()) GTEST_SKIP() << "no CRIU fixtures under " << RO_CRIU_FIXTURES;
    ASSERT_TRUE(crit_->is_object()) << "crit_batch.py failed (Debian's criu and python3-protobuf?): " << *batch_error_;
  }
  static const Json& Crit(const Fixture& f) { return (*crit_)["files"][f.path]; }

  static std::vector<Fixture>* fixtures_;
  static Json* crit_;
  static std::string* batch_error_;
};
std::vector<Fixture>* CritFixtures::fixtures_ = nullptr;
Json* CritFixtures::crit_ = nullptr;
std::string* CritFixtures::batch_error_ = nullptr;

// crit_batch.py computes what crit's command prints: checked on one file of
// every magic (and one raw file, which crit refuses), in both forms.
TEST_F(CritFixtures, BatchIsWhatCritsCommandPrints) {
  std::set<std::string> seen;
  for (const Fixture& f : *fixtures_) {
    const Json& crit = Crit(f);
    std::string magic = crit.contains("error") ? "(none)" : crit["plain"]["magic"].get<std::string>();
    if (!seen.insert(magic).second) continue;
    for (bool pretty : {false, true}) {
      std::vector<std::string> argv = {"crit", "decode", "-i", f.path};
      if (pretty) argv.push_back("--pretty");
      RunResult r = RunCommand(argv);
      if (crit.contains("error")) {
        EXPECT_NE(r.status, 0) << f.name << ": crit decodes it";
        continue;
      }
      ASSERT_EQ(r.status, 0) << f.name << ": " << r.err;
      EXPECT_EQ(Json::parse(r.out, nullptr, false), crit[pretty ? "pretty" : "plain"]) << f.name;
    }
  }
  EXPECT_GE(seen.size(), 15u);
}

TEST_F(CritFixtures, DecodeThenEncodeIsByteIdentical) {
  size_t files = 0, bytes = 0;
  FirstOfKind first;
  for (const Fixture& f : *fixtures_) {
    bool cli = first(f);
    for (bool pretty : {false, true}) {
      RunResult d = Decode(f, pretty, cli);
      ASSERT_EQ(d.status, 0) << f.name << ": " << d.err;
      RunResult e = Encode(d.out, cli);
      ASSERT_EQ(e.status, 0) << f.name << (pretty ? " (pretty)" : "") << ": " << e.err;
      EXPECT_TRUE(e.out == f.bytes) << f.name << (pretty ? " (pretty)" : "") << ": " << e.out.size() << " bytes back, "
                                    << f.bytes.size() << " in the file";
    }
    ++files;
    bytes += f.bytes.size();
  }
  std::printf("decode | encode byte-identical: %zu files, %zu bytes\n", files, bytes);
  EXPECT_GE(files, 138u);
}

TEST_F(CritFixtures, DecodeEqualsCritsDecode) {
  size_t compared = 0, skipped = 0;
  std::set<std::string> newer;
  FirstOfKind first;
  for (const Fixture& f : *fixtures_) {
    bool cli = first(f);
    const Json& crit = Crit(f);
    auto parsed = ParseImageFile(f.bytes, f.name, Limits{});
    ASSERT_TRUE(parsed.ok()) << f.name << ": " << parsed.error().ToString();
    if (crit.contains("error")) {
      // crit cannot decode a file without magic; nothing else may fail it.
      EXPECT_EQ(parsed->kind->layout, Layout::kRaw) << f.name << ": crit fails: " << crit["error"];
      std::printf("skipped %s: crit 3.17 cannot decode it (%s)\n", f.name.c_str(), crit["error"].get<std::string>().c_str());
      ++skipped;
      continue;
    }
    for (bool pretty : {false, true}) {
      RunResult d = Decode(f, pretty, cli);
      ASSERT_EQ(d.status, 0) << f.name << ": " << d.err;
      Json ours = Json::parse(d.out, nullptr, false);
      ASSERT_FALSE(ours.is_discarded()) << f.name << ": not JSON: " << d.out;
      std::vector<std::string> diffs;
      CompareImage(ours, crit[pretty ? "pretty" : "plain"], *parsed->kind, (*crit_)["schema"], &newer, &diffs);
      for (const std::string& diff : diffs) ADD_FAILURE() << f.name << (pretty ? " (pretty): " : ": ") << diff;
    }
    ++compared;
  }
  std::string fields;
  for (const std::string& n : newer) fields += " " + n;
  std::printf("equal to crit's decode: %zu files (plain and --pretty), %zu skipped; fields crit 3.17 does not know:%s\n",
              compared, skipped, fields.c_str());
  EXPECT_GE(compared, 100u);
}

TEST_F(CritFixtures, EncodeOfCritsJsonEqualsCritsEncode) {
  size_t checked = 0;
  FirstOfKind first;
  for (const Fixture& f : *fixtures_) {
    bool cli = first(f);
    const Json& crit = Crit(f);
    if (crit.contains("error")) continue;
    for (const char* form : {"plain", "pretty"}) {
      RunResult e = Encode(crit[form].dump(), cli);
      ASSERT_EQ(e.status, 0) << f.name << " (" << form << "): " << e.err;
      auto want = Base64Decode(crit[std::string(form) + "_encoded"].get<std::string>());
      ASSERT_TRUE(want.ok());
      EXPECT_TRUE(e.out == *want) << f.name << " (" << form << "): our encoding of crit's JSON differs from crit's";
    }
    ++checked;
  }
  EXPECT_GE(checked, 100u);
}

TEST(SchemaFixtures, EveryEntryParsesWithNoUnknownField) {
  std::vector<Fixture> fixtures = LoadFixtures();
  if (fixtures.empty()) GTEST_SKIP() << "no CRIU fixtures under " << RO_CRIU_FIXTURES;
  size_t entries = 0, raw = 0;
  for (const Fixture& f : fixtures) {
    auto parsed = ParseImageFile(f.bytes, f.name, Limits{});
    ASSERT_TRUE(parsed.ok()) << f.name << ": " << parsed.error().ToString();
    for (size_t i = 0; i < parsed->entries.size(); ++i) {
      const Entry& e = parsed->entries[i];
      if (!e.message) {
        ++raw;
        continue;
      }
      Status known = CheckAllFieldsKnown(*e.message);
      EXPECT_TRUE(known.ok()) << f.name << " entry " << i << ": " << known.error().what;
      ++entries;
    }
  }
  std::printf("no unknown field: %zu entries in %zu files (%zu raw files)\n", entries, fixtures.size(), raw);
  EXPECT_GE(entries, 300u);
}

}  // namespace
}  // namespace ro::test
