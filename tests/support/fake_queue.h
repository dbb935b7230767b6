// An in-memory queue (outpost/agent/queue.h) with a failure switch per operation.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "outpost/agent/queue.h"

namespace outpost::test_support {

class FakeQueue final : public agent::Outbox, public agent::ItemQueue, public agent::ItemSink {
 public:
  using QueueItem = agent::QueueItem;
  using OutboxMessage = agent::OutboxMessage;
  using Stream = agent::Stream;

  explicit FakeQueue(uint64_t epoch = 7) : epoch_(epoch) {}

  // Failure switches: while set, the operation fails and changes nothing.
  bool fail_append = false;
  bool fail_expire = false;
  bool fail_acknowledge = false;
  bool fail_acknowledge_range = false;
  bool fail_seal = false;
  bool fail_outbox = false;
  bool fail_count = false;
  bool fail_peek = false;
  bool fail_set_tail_offset = false;

  // What the calls did, for assertions.
  int outbox_reads = 0;
  std::map<std::string, agent::TailOffset> tail_offsets;
  int expire_calls = 0;

  // Puts a message straight into the outbox, as a previous run would have left it.
  OutboxMessage& add_message(Stream stream, uint64_t seq, std::vector<uint8_t> payload = {1}) {
    OutboxMessage m;
    m.id = next_id_++;
    m.stream = stream;
    m.epoch = epoch_;
    m.seq = seq;
    m.item_count = 1;
    m.payload = std::move(payload);
    last_seq_ = std::max(last_seq_, seq);
    return outbox_.emplace_back(std::move(m));
  }

  const std::deque<OutboxMessage>& messages() const { return outbox_; }
  const std::vector<QueueItem>& items() const { return items_; }
  std::vector<uint64_t> outbox_seqs() const {
    std::vector<uint64_t> seqs;
    for (const auto& m : outbox_) seqs.push_back(m.seq);
    return seqs;
  }

  // ItemSink
  common::Result<agent::AppendResult> append(std::span<const QueueItem> items) override {
    if (fail_append) return common::Error{"append: disk full"};
    for (QueueItem item : items) {
      item.id = next_id_++;
      items_.push_back(std::move(item));
    }
    return agent::AppendResult{items.size(), 0, 0};
  }
  common::Result<std::size_t> expire(int64_t) override {
    ++expire_calls;
    if (fail_expire) return common::Error{"expire: I/O error"};
    return std::size_t{0};
  }
  common::Status<> set_tail_offset(const std::string& path, agent::TailOffset offset) override {
    if (fail_set_tail_offset) return common::Error{"set_tail_offset: I/O error"};
    tail_offsets[path] = offset;
    return {};
  }

  // ItemQueue
  common::Result<std::size_t> count(Stream stream, std::size_t limit) override {
    if (fail_count) return common::Error{"count: I/O error"};
    std::size_t n = 0;
    for (const auto& item : items_) n += item.stream == stream && n < limit;
    return n;
  }
  common::Result<std::vector<QueueItem>> peek(Stream stream, std::size_t max_items) override {
    if (fail_peek) return common::Error{"peek: I/O error"};
    std::vector<QueueItem> out;
    for (const auto& item : items_) {
      if (item.stream == stream && out.size() < max_items) out.push_back(item);
    }
    return out;
  }
  common::Result<OutboxMessage> seal(Stream stream, std::span<const int64_t> ids,
                                     const agent::Encoder& encode) override {
    if (fail_seal) return common::Error{"seal: I/O error"};
    auto payload = encode(last_seq_ + 1);
    if (!payload.ok()) return payload.error();
    OutboxMessage& m = add_message(stream, last_seq_ + 1, std::move(payload).value());
    m.item_count = static_cast<uint32_t>(ids.size());
    std::erase_if(items_, [&](const QueueItem& item) {
      return std::find(ids.begin(), ids.end(), item.id) != ids.end();
    });
    return m;
  }

  // Outbox
  common::Result<std::vector<OutboxMessage>> outbox(std::size_t limit) override {
    ++outbox_reads;
    if (fail_outbox) return common::Error{"outbox: I/O error"};
    std::vector<OutboxMessage> out;
    for (const auto& m : outbox_) {
      if (out.size() < limit) out.push_back(m);
    }
    return out;
  }
  common::Status<> acknowledge(int64_t id) override {
    if (fail_acknowledge) return common::Error{"acknowledge: I/O error"};
    std::erase_if(outbox_, [&](const OutboxMessage& m) { return m.id == id; });
    return {};
  }
  common::Result<std::size_t> acknowledge_range(uint64_t epoch, uint64_t first,
                                                uint64_t last) override {
    if (fail_acknowledge_range) return common::Error{"acknowledge_range: I/O error"};
    return static_cast<std::size_t>(std::erase_if(outbox_, [&](const OutboxMessage& m) {
      return m.epoch == epoch && m.seq >= first && m.seq <= last;
    }));
  }

 private:
  uint64_t epoch_;
  int64_t next_id_ = 1;
  uint64_t last_seq_ = 0;
  std::vector<QueueItem> items_;
  std::deque<OutboxMessage> outbox_;
};

}  // namespace outpost::test_support
