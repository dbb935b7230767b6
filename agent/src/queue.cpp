// Names of the queue operations, for metrics and logs.
#include "outpost/agent/queue.h"

namespace outpost::agent {

std::string_view store_op_name(StoreOp op) {
  switch (op) {
    case StoreOp::kAppend:
      return "append";
    case StoreOp::kExpire:
      return "expire";
    case StoreOp::kAcknowledge:
      return "acknowledge";
    case StoreOp::kCommitAck:
      return "commit_ack";
    case StoreOp::kSeal:
      return "seal";
    case StoreOp::kReadOutbox:
      return "read_outbox";
    case StoreOp::kReadItems:
      return "read_items";
    case StoreOp::kTailOffset:
      return "tail_offset";
    case StoreOp::kStats:
      return "stats";
  }
  return "unknown";
}

}  // namespace outpost::agent
