// One protobuf message as crit shows it (pycriu's pb2dict and dict2pb),
// driven by the (ro.img.crit) field options of images/proto/crit-opts.proto.
// Internal to images/: json.cc wraps it into whole image files.
#pragma once

#include <google/protobuf/message.h>

#include <nlohmann/json.hpp>

#include "sys/status.h"

namespace ro::images::crit {

using Json = nlohmann::ordered_json;

// The message as a JSON object: fields that are set, in field-number order,
// by their .proto names; integers as JSON numbers (64 bits exact), enums by
// name, bytes in base64 with crit's line breaks. With `pretty` (crit's
// --pretty) integers follow their options: hex strings ("0x1f", inherited
// by every field below a hex message field), "major:minor" devices, flag
// names joined by " | ", dictionary names. Fails on a string that is not
// UTF-8 (JSON cannot carry it) or an option crit's tables do not know.
Result<Json> MessageToJson(const google::protobuf::Message& message, bool pretty);

// Merges a JSON object in either form (plain numbers, or crit's pretty
// strings; also decimal strings for 64-bit numbers) into `message`.
// Fails, naming the field path, on an unknown key, a value of the wrong
// type or out of its field's range, an unknown enum or flag name, or
// messages nested deeper than `max_nesting` (cgroup directories nest).
Status MessageFromJson(const Json& value, google::protobuf::Message* message, int max_nesting);

}  // namespace ro::images::crit
