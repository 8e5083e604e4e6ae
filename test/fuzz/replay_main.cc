// Runs a fuzz target (whichever it is linked with) over files without
// libFuzzer: its corpus as a plain test. With --write-seed OUT it writes the
// demo image set in plan_fuzz's input format, as that target's first seed.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "images/image_file.h"
#include "images/kinds.h"
#include "test/helpers/test_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

int WriteSeed(const char* out_path) {
  std::string out;
  const auto& kinds = ro::images::AllKinds();
  for (const auto& [name, file] : ro::test::DemoImages()) {
    auto parsed = ro::images::ParseFileName(name);
    auto bytes = ro::images::SerializeImage(file);
    if (!parsed || !bytes.ok() || bytes->size() > 0xffff) continue;
    uint8_t index = static_cast<uint8_t>(parsed->kind - kinds.data());
    uint32_t key = parsed->key.value_or(0);
    uint16_t len = static_cast<uint16_t>(bytes->size());
    out += static_cast<char>(index);
    out.append(reinterpret_cast<const char*>(&key), 4);
    out.append(reinterpret_cast<const char*>(&len), 2);
    out += *bytes;
  }
  std::ofstream(out_path, std::ios::binary) << out;
  return 0;
}

int Replay(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--write-seed") == 0) return WriteSeed(argv[2]);
  int n = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::directory_iterator(p)) {
        if (e.is_regular_file()) n += 1 + Replay(e.path().string());
      }
    } else {
      n += 1 + Replay(p.string());
    }
  }
  std::printf("replayed %d inputs\n", n);
  return n > 0 ? 0 : 1;
}
