// JSON form of an image file, the same shape crit uses:
//   {"magic": "PSTREE", "entries": [{...}, ...]}
// Entries follow protobuf's JSON mapping with the .proto field names; the raw
// payload after a pipes-data entry is the entry's "extra" key, in base64.
#pragma once

#include <string>
#include <string_view>

#include "images/image_file.h"
#include "sys/status.h"

namespace ro::images {

Result<std::string> ImageToJson(const ImageFile& file, bool pretty);
Result<ImageFile> ImageFromJson(std::string_view json, const Limits& limits);

std::string Base64Encode(std::string_view bytes);
// Accepts and skips whitespace (crit ends its base64 with a newline).
Result<std::string> Base64Decode(std::string_view text);

}  // namespace ro::images
