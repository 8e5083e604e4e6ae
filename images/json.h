// JSON form of an image file, as CRIU's crit prints it:
//   {"magic": "PSTREE", "entries": [{...}, ...]}
// `magic` is crit's name of the kind; each entry is the message as crit's
// pb2dict shows it (images/json_crit.h), and the raw payload after a
// pipes-data entry is the entry's "extra" key, in base64. Raw kinds, which
// crit cannot decode, are one entry holding the whole file as "extra":
//   {"magic": "PAGES", "entries": [{"extra": "..."}]}
#pragma once

#include <string>
#include <string_view>

#include "images/image_file.h"
#include "sys/status.h"

namespace ro::images {

// `crit decode` (pretty = false: one line, plain numbers) or `crit decode
// --pretty` (indented by 4, hex/device/flag/name forms). Fails on an entry
// holding fields its schema does not declare (JSON would drop them) or a
// string that is not UTF-8.
Result<std::string> ImageToJson(const ImageFile& file, bool pretty);
// Reads both forms (and decimal strings for 64-bit numbers). The result is
// checked against `limits` and required fields.
Result<ImageFile> ImageFromJson(std::string_view json, const Limits& limits);

// Standard base64, one line, no newline.
std::string Base64Encode(std::string_view bytes);
// Base64 as crit writes it (Python's base64.encodebytes): lines of 76
// characters, each ending in "\n"; "" for no bytes.
std::string Base64EncodeLines(std::string_view bytes);
// Accepts and skips whitespace (crit ends its base64 with a newline).
Result<std::string> Base64Decode(std::string_view text);

}  // namespace ro::images
