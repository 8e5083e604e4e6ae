// Fuzz target for the image reader and the plan builder. The input is a
// little image directory: records of [kind index u8][key u32][length u16]
// [file bytes], each parsed as that kind's file; whatever parses is handed
// to BuildPlan, FormatPlan and ShowImageDir. The whole input is also parsed
// as one file of unknown kind.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "images/image_dir.h"
#include "images/image_file.h"
#include "images/kinds.h"
#include "images/plan.h"
#include "images/show.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ro::images;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Limits limits;
  limits.max_entries = 4096;
  limits.max_entry_bytes = 1 << 16;
  limits.max_payload_bytes = 1 << 20;

  (void)ParseImage(in, nullptr, limits);

  ImageDir dir;
  dir.path = "fuzz";
  const auto& kinds = AllKinds();
  while (in.size() >= 7) {
    const Kind& kind = kinds[static_cast<uint8_t>(in[0]) % kinds.size()];
    uint32_t key = 0;
    uint16_t len = 0;
    std::memcpy(&key, in.data() + 1, 4);
    std::memcpy(&len, in.data() + 5, 2);
    in.remove_prefix(7);
    std::string_view bytes = in.substr(0, len);
    in.remove_prefix(bytes.size());
    auto file = ParseImage(bytes, &kind, limits);
    if (!file.ok()) continue;
    dir.files.insert_or_assign(MakeFileName(kind, key), std::move(file).value());
  }
  PlanOutcome out = BuildPlan(dir, PlanOptions{});
  if (out.plan) (void)FormatPlan(*out.plan);
  (void)ShowImageDir(dir);
  return 0;
}
