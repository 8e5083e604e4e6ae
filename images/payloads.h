// The raw bytes that follow an entry of a kListWithPayload kind (see
// Payload in kinds.h): how many there are, their crit JSON ("extra"), and
// the System V IPC payloads' contents. Layouts are CRIU's
// (criu/ipc_ns.c, criu/pipes.c) and crit's (lib/pycriu/images/images.py).
#pragma once

#include <google/protobuf/message.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "images/image_file.h"
#include "images/json_crit.h"
#include "sys/status.h"

namespace ro::img {
class ipc_msg_entry;
class ipc_sem_entry;
class ipc_shm_entry;
}  // namespace ro::img

namespace ro::images {

// How many bytes at the start of `rest` belong to `entry` (of `kind`, a
// kListWithPayload kind). Errors: the file ends before them, they exceed
// limits.max_payload_bytes, or (message queues) a message in them is
// malformed; the message names what.
Result<size_t> PayloadSize(const Kind& kind, const google::protobuf::Message& entry, std::string_view rest, const Limits& limits);

// crit's "extra" for an entry and its payload: base64 text (pipe data,
// segment contents without their padding), the list of values (semaphore
// sets), or [message, base64 text, ...] (message queues).
Result<crit::Json> PayloadToJson(const Kind& kind, const google::protobuf::Message& entry, std::string_view payload);
// The payload bytes from crit's "extra", padded as the file has them.
// Errors name what does not fit the entry.
Result<std::string> PayloadFromJson(const Kind& kind, const google::protobuf::Message& entry, const crit::Json& extra,
                                    const Limits& limits);

// One message of a System V message queue.
struct SysvMessage {
  uint64_t mtype = 0;
  std::string text;
};
// The messages after a queue entry, oldest first. Errors: malformed.
Result<std::vector<SysvMessage>> MsgQueueMessages(const img::ipc_msg_entry& queue, std::string_view payload);
// The payload for `messages` (the entry's qnum must be their count).
std::string MsgQueuePayload(const std::vector<SysvMessage>& messages);
// The values after a semaphore set entry. Errors: the payload is not nsems values.
Result<std::vector<uint16_t>> SemValues(const img::ipc_sem_entry& set, std::string_view payload);
std::string SemPayload(const std::vector<uint16_t>& values);
// The contents after a segment entry (size bytes; empty when in_pagemaps).
std::string_view ShmContents(const img::ipc_shm_entry& segment, std::string_view payload);

}  // namespace ro::images
