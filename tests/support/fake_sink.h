// An in-memory collector Sink with failure switches: transient and permanent failures, a
// poison message the store refuses for good, a stall, slow commits on a fake clock, and
// duplicates (keys already stored). It records every commit it accepted.
//
// The switches and records are plain members: set them before the loop runs and read them
// after it returned (or after its thread joined). Only stall(), release(), blocked() and
// attempts are thread-safe.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "outpost/collector/sink.h"

namespace outpost::test_support {

// Applies a commit's sequence-line updates to `lines` (device -> line) as a sink stores them:
// what Reader::seq_lines would return after the commit.
inline void apply_seq_lines(std::map<std::string, collector::SeqLineState>& lines,
                            const std::vector<collector::SeqLineUpdate>& updates) {
  for (const auto& u : updates) {
    collector::SeqLineState& line = lines[u.line.device];
    std::vector<collector::SeqHole> holes =
        u.replace_holes ? std::vector<collector::SeqHole>{} : std::move(line.holes);
    line = u.line;
    line.holes.clear();
    std::map<uint64_t, collector::SeqHole> by_first;
    for (const auto& h : holes) by_first[h.first] = h;
    for (uint64_t first : u.removed) by_first.erase(first);
    for (const auto& h : u.line.holes) by_first[h.first] = h;
    for (const auto& [first, h] : by_first) line.holes.push_back(h);
  }
}

class FakeSink final : public collector::Sink {
 public:
  using Key = std::tuple<std::string, uint64_t, uint64_t>;  // device, epoch, seq

  // --- Failure switches.
  int transient_failures = 0;  // the next N commits fail transiently ("database is locked")
  int permanent_failures = 0;  // the next N commits fail permanently
  bool always_fail = false;    // every commit fails (transient unless always_permanent)
  bool always_permanent = false;
  std::optional<Key> poison;                 // a commit holding this batch fails permanently
  std::optional<std::string> poison_status;  // ...or a status of this device
  bool fail_journal_position = false;
  bool fail_expire = false;
  uint64_t expirable_rows = 0;  // rows expire() can remove, max_rows per call at most
  // Runs at the start of every commit attempt (e.g. advance a fake clock: a slow commit).
  std::function<void(const collector::Transaction&)> on_commit;

  // --- Records.
  std::vector<collector::Transaction> committed;  // each accepted transaction, in order
  std::atomic<int> attempts{0};                   // commit() calls, failed ones included
  std::set<Key> stored;  // batch keys stored; seed it to simulate a batch stored before
  std::optional<collector::JournalPosition> position;        // the last committed journal position
  std::map<std::string, collector::SeqLineState> seq_lines;  // as Reader::seq_lines reads them
  struct ExpireCall {
    int64_t cutoff_us, dlq_cutoff_us, key_cutoff_us;
    uint64_t max_rows;
  };
  std::vector<ExpireCall> expire_calls;

  // Commits block from now until release() (from another thread).
  void stall() {
    std::lock_guard lock(mu_);
    stalled_ = true;
  }
  void release() {
    std::lock_guard lock(mu_);
    stalled_ = false;
    cv_.notify_all();
  }
  // True once a commit is blocked in a stall.
  bool blocked() {
    std::lock_guard lock(mu_);
    return blocked_;
  }

  common::Result<collector::CommitResult, collector::SinkError> commit(
      const collector::Transaction& tx) override {
    {
      std::unique_lock lock(mu_);
      blocked_ = stalled_;
      cv_.wait(lock, [&] { return !stalled_; });
      blocked_ = false;
    }
    ++attempts;
    if (on_commit) on_commit(tx);
    if (transient_failures > 0) {
      --transient_failures;
      return collector::SinkError{"database is locked", true};
    }
    if (permanent_failures > 0) {
      --permanent_failures;
      return collector::SinkError{"disk I/O error", false};
    }
    if (always_fail) return collector::SinkError{"the store is down", !always_permanent};
    for (const auto& b : tx.batches) {
      if (poison && key_of(b) == *poison) {
        return collector::SinkError{"CHECK constraint failed", false};
      }
    }
    for (const auto& s : tx.statuses) {
      if (poison_status && s.device == *poison_status) {
        return collector::SinkError{"CHECK constraint failed", false};
      }
    }
    collector::CommitResult result;
    for (const auto& b : tx.batches) {
      const bool fresh = stored.insert(key_of(b)).second;
      result.outcomes.push_back(fresh ? collector::BatchOutcome::kStored
                                      : collector::BatchOutcome::kDuplicate);
      if (!fresh) continue;
      if (const auto* r = std::get_if<common::ReadingBatch>(&b.envelope.body)) {
        result.readings_stored += r->readings.size();
      } else if (const auto* l = std::get_if<common::LogBatch>(&b.envelope.body)) {
        result.logs_stored += l->records.size();
      }
    }
    if (tx.journal) position = tx.journal;
    apply_seq_lines(seq_lines, tx.seq_lines);
    committed.push_back(tx);
    return result;
  }

  common::Result<std::optional<collector::JournalPosition>, collector::SinkError> journal_position()
      override {
    if (fail_journal_position) return collector::SinkError{"no such table: meta", false};
    return position;
  }

  common::Result<uint64_t, collector::SinkError> expire(int64_t cutoff_us, int64_t dlq_cutoff_us,
                                                        int64_t key_cutoff_us,
                                                        uint64_t max_rows) override {
    expire_calls.push_back({cutoff_us, dlq_cutoff_us, key_cutoff_us, max_rows});
    if (fail_expire) return collector::SinkError{"database is locked", true};
    const uint64_t n = std::min(expirable_rows, max_rows);
    expirable_rows -= n;
    return n;
  }

  // --- Views of the records.
  std::vector<collector::DlqItem> dlq() const {
    std::vector<collector::DlqItem> out;
    for (const auto& tx : committed) out.insert(out.end(), tx.dlq.begin(), tx.dlq.end());
    return out;
  }
  std::vector<collector::EventItem> events() const {
    std::vector<collector::EventItem> out;
    for (const auto& tx : committed) out.insert(out.end(), tx.events.begin(), tx.events.end());
    return out;
  }
  // Batch seqs of the committed transactions, in commit order (duplicates included).
  std::vector<uint64_t> batch_seqs() const {
    std::vector<uint64_t> out;
    for (const auto& tx : committed) {
      for (const auto& b : tx.batches) out.push_back(b.envelope.seq);
    }
    return out;
  }

  static Key key_of(const collector::BatchItem& b) {
    return {b.envelope.device_id, b.envelope.epoch, b.envelope.seq};
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stalled_ = false;
  bool blocked_ = false;
};

}  // namespace outpost::test_support
