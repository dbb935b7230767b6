// The agent's SQLite store-and-forward queue.
#include "outpost/agent/store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

#include "outpost/common/sqlite.h"

namespace outpost::agent {
namespace {

using common::Error;
using common::Result;
using common::Status;

constexpr int kSchemaVersion = 1;

// Item kinds in the items table: how to read the value column back.
enum ItemKind : int { kDouble = 0, kInt = 1, kBool = 2, kString = 3, kLog = 4 };

// Separators for log fields packed into one column; validated text never contains them.
constexpr char kFieldSep = '\x1e';
constexpr char kKeyValueSep = '\x1f';

// Prepared statements: made for one use (finalized on scope exit), or one the store keeps
// prepared (Store::cached), reset and unbound on scope exit. outpost/common/sqlite.h.
using Stmt = common::sqlite::Statement;

// The statements the store runs on every append, seal, send and ack, prepared once:
// parsing SQL showed up in profiles of the agent under load.
constexpr const char* kCachedSql[] = {
    // Store::kInsertItem
    "INSERT INTO items (stream, time_us, kind, name, extra, value, bytes) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)",
    // kPeek
    "SELECT id, time_us, kind, name, extra, value FROM items WHERE stream = ? "
    "ORDER BY id LIMIT ?",
    // kCount
    "SELECT COUNT(*) FROM (SELECT 1 FROM items WHERE stream = ? ORDER BY id LIMIT ?)",
    // kDeleteItems
    "DELETE FROM items WHERE stream = ?1 AND id BETWEEN ?2 AND ?3 RETURNING id, bytes",
    // kInsertOutbox
    "INSERT INTO outbox (stream, epoch, seq, item_count, payload, bytes) "
    "VALUES (?, ?, ?, ?, ?, ?)",
    // kOutbox
    "SELECT id, stream, epoch, seq, item_count, payload FROM outbox ORDER BY id LIMIT ?",
    // kAcknowledge
    "DELETE FROM outbox WHERE id = ? RETURNING bytes",
    // kReadCounter
    "SELECT value FROM meta WHERE key = ?",
    // kBumpCounter
    "INSERT INTO meta (key, value) VALUES (?1, ?2) "
    "ON CONFLICT (key) DO UPDATE SET value = value + ?2",
    // kStats
    "SELECT (SELECT COUNT(*) FROM items), (SELECT COUNT(*) FROM outbox), "
    "(SELECT MIN(time_us) FROM items)",
    // kBegin, kCommit, kRollback
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
};

Error sql_error(sqlite3* db, std::string_view what) {
  return Error{std::string(what) + ": " + sqlite3_errmsg(db)};
}

// Runs a "DELETE ... RETURNING bytes" statement: how many rows went, and their bytes.
struct Deleted {
  std::size_t rows = 0;
  uint64_t bytes = 0;
};
std::optional<Deleted> run_delete(Stmt& q) {
  Deleted d;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    d.bytes += static_cast<uint64_t>(q.integer(0));
    ++d.rows;
  }
  if (rc != SQLITE_DONE) return std::nullopt;
  return d;
}

// Rolls back unless committed: every state change is one transaction.
class Transaction {
 public:
  Transaction(sqlite3_stmt* begin, sqlite3_stmt* commit, sqlite3_stmt* rollback)
      : commit_(commit), rollback_(rollback) {
    ok_ = begin && commit && rollback && Stmt(begin).step() == SQLITE_DONE;
  }
  ~Transaction() {
    if (ok_ && !done_) (void)Stmt(rollback_).step();
  }
  bool ok() const { return ok_; }
  Status<> commit() {
    if (Stmt(commit_).step() != SQLITE_DONE) {
      return sql_error(sqlite3_db_handle(commit_), "commit");
    }
    done_ = true;
    return {};
  }

 private:
  sqlite3_stmt* commit_;
  sqlite3_stmt* rollback_;
  bool ok_ = false;
  bool done_ = false;
};

uint64_t item_bytes(const QueueItem& item) {
  uint64_t n = 32 + item.sensor.size() + item.unit.size();
  if (item.stream == Stream::kLogs) {
    n += item.log.message.size();
    for (const auto& f : item.log.fields) n += f.key.size() + f.value.size() + 2;
  } else if (const auto* s = std::get_if<std::string>(&item.value)) {
    n += s->size();
  } else {
    n += 8;
  }
  return n;
}

std::string pack_fields(const std::vector<common::LogField>& fields) {
  std::string out;
  for (const auto& f : fields) {
    if (!out.empty()) out += kFieldSep;
    out += f.key;
    out += kKeyValueSep;
    out += f.value;
  }
  return out;
}

std::vector<common::LogField> unpack_fields(std::string_view packed) {
  std::vector<common::LogField> fields;
  while (!packed.empty()) {
    std::size_t end = packed.find(kFieldSep);
    std::string_view kv = packed.substr(0, end);
    const std::size_t sep = kv.find(kKeyValueSep);
    fields.push_back({std::string(kv.substr(0, sep)),
                      sep == std::string_view::npos ? "" : std::string(kv.substr(sep + 1))});
    if (end == std::string_view::npos) break;
    packed.remove_prefix(end + 1);
  }
  return fields;
}

// SQLite counts every allocation under a global mutex unless told not to, and we never
// read the counts. Only possible before SQLite initialises, so before the first open.
void configure_sqlite_once() {
  static const bool configured = [] {
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);  // SQLITE_MISUSE if already initialised
    return true;
  }();
  (void)configured;
}

// Opens `path` and checks it is a healthy store; nullptr (and a reason) if not.
sqlite3* open_checked(const std::string& path, std::string& problem) {
  configure_sqlite_once();
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    problem = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return nullptr;
  }
  sqlite3_extended_result_codes(db, 1);
  Stmt check(db, "PRAGMA quick_check");
  if (!check.ok()) {
    problem = sqlite3_errmsg(db);
    sqlite3_close_v2(db);
    return nullptr;
  }
  const int rc = check.step();
  const std::string verdict = rc == SQLITE_ROW ? check.text(0) : sqlite3_errmsg(db);
  if (verdict != "ok") {
    problem = "integrity check: " + verdict;
    check.reset();
    sqlite3_close_v2(db);
    return nullptr;
  }
  return db;
}

}  // namespace

Store::Store(sqlite3* db, StoreOptions options, uint64_t epoch)
    : db_(db), options_(std::move(options)), epoch_(epoch) {}

Store::~Store() {
  for (sqlite3_stmt* stmt : cached_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

sqlite3_stmt* Store::cached(Query query) {
  static_assert(std::size(kCachedSql) == kCachedQueries);
  sqlite3_stmt*& stmt = cached_[query];
  if (!stmt)
    (void)sqlite3_prepare_v3(db_, kCachedSql[query], -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  return stmt;
}

Status<> Store::exec(const char* sql) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return sql_error(db_, sql);
  }
  return {};
}

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& options, uint64_t epoch) {
  std::string problem;
  uint32_t resets = 0;
  sqlite3* db = open_checked(options.path, problem);
  std::unique_ptr<Store> store;
  if (db) {
    store.reset(new Store(db, options, epoch));
    if (auto s = store->init(); !s.ok()) {
      problem = s.error().message;
      store.reset();
    }
  }
  if (!store) {
    // Keep the bad file for a post-mortem and start afresh: the agent must keep working.
    if (!std::filesystem::exists(options.path)) {
      return Error{"cannot create the store " + options.path + ": " + problem};
    }
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    const std::string aside = options.path + ".corrupt-" + std::to_string(now);
    std::error_code ec;
    std::filesystem::rename(options.path, aside, ec);
    if (ec)
      return Error{"cannot move the corrupt store " + options.path + " aside: " + ec.message()};
    for (const char* suffix : {"-wal", "-shm"}) {
      std::filesystem::rename(options.path + suffix, aside + suffix, ec);  // may not exist
    }
    resets = 1;
    db = open_checked(options.path, problem);
    if (!db) return Error{"cannot create the store " + options.path + ": " + problem};
    store.reset(new Store(db, options, epoch));
    if (auto s = store->init(); !s.ok()) return s.error();
    if (auto s = store->bump_counter("store_resets", resets); !s.ok()) return s.error();
  }
  return store;
}

Status<> Store::init() {
  const std::string pragmas = std::string("PRAGMA journal_mode=WAL; PRAGMA synchronous=") +
                              (options_.full_sync ? "FULL" : "NORMAL") + "; PRAGMA cache_size=-" +
                              std::to_string(options_.cache_kib) + ";";
  if (auto s = exec(pragmas.c_str()); !s.ok()) return s;
  static constexpr const char* kSchema = R"sql(
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS items (
      id INTEGER PRIMARY KEY,
      stream INTEGER NOT NULL,
      time_us INTEGER NOT NULL,
      kind INTEGER NOT NULL,
      name TEXT NOT NULL,
      extra TEXT NOT NULL,
      value,
      bytes INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS items_by_stream ON items (stream, id);
    CREATE TABLE IF NOT EXISTS outbox (
      id INTEGER PRIMARY KEY,
      stream INTEGER NOT NULL,
      epoch INTEGER NOT NULL,
      seq INTEGER NOT NULL,
      item_count INTEGER NOT NULL,
      payload BLOB NOT NULL,
      bytes INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS outbox_by_seq ON outbox (epoch, seq);
    CREATE TABLE IF NOT EXISTS tail_offsets (
      path TEXT PRIMARY KEY, inode INTEGER NOT NULL, offset INTEGER NOT NULL) WITHOUT ROWID;
  )sql";
  if (auto s = exec(kSchema); !s.ok()) return s;
  auto version = read_counter("schema_version");
  if (!version.ok()) return version.error();
  if (version.value() == 0) {
    if (auto s = bump_counter("schema_version", kSchemaVersion); !s.ok()) return s;
  } else if (version.value() != kSchemaVersion) {
    return Error{"store schema version " + std::to_string(version.value()) + ", expected " +
                 std::to_string(kSchemaVersion)};
  }
  auto seq = read_counter("last_seq");
  if (!seq.ok()) return seq.error();
  last_seq_ = seq.value();
  // Recompute the byte total from the rows themselves: never trust a stored sum.
  Stmt sum(db_,
           "SELECT (SELECT COALESCE(SUM(bytes), 0) FROM items) + "
           "(SELECT COALESCE(SUM(bytes), 0) FROM outbox)");
  if (!sum.ok() || sum.step() != SQLITE_ROW) return sql_error(db_, "sum of queue bytes");
  bytes_ = static_cast<uint64_t>(sum.integer(0));
  return {};
}

Result<uint64_t> Store::read_counter(const char* key) {
  Stmt q(cached(kReadCounter));
  if (!q.ok()) return sql_error(db_, "read meta");
  q.bind(1, std::string_view(key));
  const int rc = q.step();
  if (rc == SQLITE_ROW) return static_cast<uint64_t>(q.integer(0));
  if (rc == SQLITE_DONE) return uint64_t{0};
  return sql_error(db_, "read meta");
}

Status<> Store::bump_counter(const char* key, uint64_t by) {
  if (by == 0) return {};
  Stmt q(cached(kBumpCounter));
  if (!q.ok()) return sql_error(db_, "update meta");
  q.bind(1, key);
  q.bind(2, static_cast<int64_t>(by));
  if (q.step() != SQLITE_DONE) return sql_error(db_, "update meta");
  return {};
}

Result<std::size_t> Store::evict_for(uint64_t needed) {
  std::size_t evicted = 0;
  // Sealed messages hold the oldest data, so they go first (a message already in
  // flight may still arrive: it is counted as dropped all the same); then the
  // oldest queued items, a chunk at a time.
  while (bytes_ + needed > options_.max_bytes) {
    Stmt q(db_, "SELECT id, bytes, item_count FROM outbox ORDER BY id LIMIT 1");
    if (!q.ok()) return sql_error(db_, "evict");
    if (q.step() != SQLITE_ROW) break;
    const int64_t id = q.integer(0);
    const auto freed = static_cast<uint64_t>(q.integer(1));
    const auto items = static_cast<std::size_t>(q.integer(2));
    Stmt del(db_, "DELETE FROM outbox WHERE id = ?");
    del.bind(1, id);
    if (del.step() != SQLITE_DONE) return sql_error(db_, "evict");
    bytes_ -= freed;
    evicted += items;
  }
  while (bytes_ + needed > options_.max_bytes) {
    Stmt q(db_, "SELECT id, bytes FROM items ORDER BY id LIMIT 256");
    if (!q.ok()) return sql_error(db_, "evict");
    std::vector<std::pair<int64_t, uint64_t>> victims;
    uint64_t freed = 0;
    while (q.step() == SQLITE_ROW && bytes_ + needed - freed > options_.max_bytes) {
      victims.emplace_back(q.integer(0), static_cast<uint64_t>(q.integer(1)));
      freed += victims.back().second;
    }
    if (victims.empty()) break;
    Stmt del(db_, "DELETE FROM items WHERE id <= ?");
    del.bind(1, victims.back().first);
    if (del.step() != SQLITE_DONE) return sql_error(db_, "evict");
    bytes_ -= freed;
    evicted += victims.size();
  }
  return evicted;
}

Result<AppendResult> Store::append(std::span<const QueueItem> items) {
  AppendResult result;
  if (items.empty()) return result;
  const uint64_t bytes_before = bytes_;
  Transaction tx(cached(kBegin), cached(kCommit), cached(kRollback));
  if (!tx.ok()) return sql_error(db_, "begin append");
  Stmt insert(cached(kInsertItem));
  std::string packed;  // log fields, bound without a copy: lives until the step
  if (!insert.ok()) return sql_error(db_, "prepare append");
  auto fail = [&](std::string_view what) {
    bytes_ = bytes_before;
    return sql_error(db_, what);
  };
  for (const QueueItem& item : items) {
    const uint64_t size = item_bytes(item);
    if (bytes_ + size > options_.max_bytes) {
      if (options_.policy == DropPolicy::kDropNewest || size > options_.max_bytes) {
        ++result.refused;
        continue;
      }
      auto evicted = evict_for(size);
      if (!evicted.ok()) return fail("evict");
      result.evicted += evicted.value();
      if (bytes_ + size > options_.max_bytes) {  // nothing left to evict
        ++result.refused;
        continue;
      }
    }
    insert.bind(1, static_cast<int64_t>(item.stream));
    insert.bind(2, item.time_us);
    if (item.stream == Stream::kLogs) {
      insert.bind(3, int64_t{kLog});
      packed = pack_fields(item.log.fields);
      insert.bind(4, item.log.message);
      insert.bind(5, packed);
      insert.bind(6, static_cast<int64_t>(item.log.severity));
    } else {
      insert.bind(4, item.sensor);
      insert.bind(5, item.unit);
      if (const auto* d = std::get_if<double>(&item.value)) {
        insert.bind(3, int64_t{kDouble});
        insert.bind(6, *d);
      } else if (const auto* n = std::get_if<int64_t>(&item.value)) {
        insert.bind(3, int64_t{kInt});
        insert.bind(6, *n);
      } else if (const auto* b = std::get_if<bool>(&item.value)) {
        insert.bind(3, int64_t{kBool});
        insert.bind(6, int64_t{*b});
      } else {
        insert.bind(3, int64_t{kString});
        insert.bind(6, std::get<std::string>(item.value));
      }
    }
    insert.bind(7, static_cast<int64_t>(size));
    if (insert.step() != SQLITE_DONE) return fail("append");
    insert.reset();
    bytes_ += size;
    ++result.accepted;
  }
  if (auto s = bump_counter("dropped_newest", result.refused); !s.ok()) return fail("count");
  if (auto s = bump_counter("dropped_oldest", result.evicted); !s.ok()) return fail("count");
  if (auto s = tx.commit(); !s.ok()) {
    bytes_ = bytes_before;
    return s.error();
  }
  return result;
}

Result<std::vector<QueueItem>> Store::peek(Stream stream, std::size_t max_items) {
  Stmt q(cached(kPeek));
  if (!q.ok()) return sql_error(db_, "peek");
  q.bind(1, static_cast<int64_t>(stream));
  q.bind(2, static_cast<int64_t>(std::min<std::size_t>(max_items, INT32_MAX)));
  std::vector<QueueItem> items;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    QueueItem& item = items.emplace_back();
    item.id = q.integer(0);
    item.stream = stream;
    item.time_us = q.integer(1);
    switch (q.integer(2)) {
      case kDouble:
        item.value = q.real(5);
        break;
      case kInt:
        item.value = q.integer(5);
        break;
      case kBool:
        item.value = q.integer(5) != 0;
        break;
      case kString:
        item.value = q.text(5);
        break;
      case kLog:
        item.log.time_us = item.time_us;
        item.log.message = q.text(3);
        item.log.fields = unpack_fields(q.text(4));
        item.log.severity = static_cast<common::Severity>(q.integer(5) & 7);
        continue;
      default:
        return Error{"peek: unknown item kind in row " + std::to_string(item.id)};
    }
    item.sensor = q.text(3);
    item.unit = q.text(4);
  }
  if (rc != SQLITE_DONE) return sql_error(db_, "peek");
  return items;
}

Result<std::size_t> Store::count(Stream stream, std::size_t limit) {
  Stmt q(cached(kCount));
  if (!q.ok()) return sql_error(db_, "count");
  q.bind(1, static_cast<int64_t>(stream));
  q.bind(2, static_cast<int64_t>(std::min<std::size_t>(limit, INT32_MAX)));
  if (q.step() != SQLITE_ROW) return sql_error(db_, "count");
  return static_cast<std::size_t>(q.integer(0));
}

Result<OutboxMessage> Store::seal(Stream stream, std::span<const int64_t> item_ids,
                                  const Encoder& encode) {
  Transaction tx(cached(kBegin), cached(kCommit), cached(kRollback));
  if (!tx.ok()) return sql_error(db_, "begin seal");
  OutboxMessage msg;
  msg.stream = stream;
  msg.epoch = epoch_;
  msg.seq = last_seq_ + 1;
  msg.item_count = static_cast<uint32_t>(item_ids.size());
  auto payload = encode(msg.seq);
  if (!payload.ok()) return payload.error();
  msg.payload = std::move(payload).value();

  // One range delete rather than one lookup per item; what it removed must be exactly
  // the given items, or the transaction is rolled back.
  uint64_t freed = 0;
  std::vector<int64_t> deleted;
  if (!item_ids.empty()) {
    Stmt del(cached(kDeleteItems));
    if (!del.ok()) return sql_error(db_, "prepare seal");
    del.bind(1, static_cast<int64_t>(stream));
    del.bind(2, item_ids.front());
    del.bind(3, item_ids.back());
    int rc;
    while ((rc = del.step()) == SQLITE_ROW) {
      deleted.push_back(del.integer(0));
      freed += static_cast<uint64_t>(del.integer(1));
    }
    if (rc != SQLITE_DONE) return sql_error(db_, "seal");
  }
  std::sort(deleted.begin(), deleted.end());  // RETURNING promises no order
  if (!std::equal(deleted.begin(), deleted.end(), item_ids.begin(), item_ids.end())) {
    return Error{"seal: the items are not a leading run of the stream's queue, in order"};
  }
  const uint64_t msg_bytes = 32 + msg.payload.size();
  Stmt insert(cached(kInsertOutbox));
  if (!insert.ok()) return sql_error(db_, "prepare seal");
  insert.bind(1, static_cast<int64_t>(stream));
  insert.bind(2, static_cast<int64_t>(msg.epoch));
  insert.bind(3, static_cast<int64_t>(msg.seq));
  insert.bind(4, static_cast<int64_t>(msg.item_count));
  insert.bind_blob(5, msg.payload);
  insert.bind(6, static_cast<int64_t>(msg_bytes));
  if (insert.step() != SQLITE_DONE) return sql_error(db_, "seal");
  msg.id = sqlite3_last_insert_rowid(db_);
  if (auto s = bump_counter("last_seq", 1); !s.ok()) return s.error();
  if (auto s = tx.commit(); !s.ok()) return s.error();
  last_seq_ = msg.seq;
  bytes_ = bytes_ - freed + msg_bytes;
  return msg;
}

Result<std::vector<OutboxMessage>> Store::outbox(std::size_t limit) {
  Stmt q(cached(kOutbox));
  if (!q.ok()) return sql_error(db_, "outbox");
  q.bind(1, static_cast<int64_t>(std::min<std::size_t>(limit, INT32_MAX)));
  std::vector<OutboxMessage> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    out.push_back({q.integer(0), static_cast<Stream>(q.integer(1) & 1),
                   static_cast<uint64_t>(q.integer(2)), static_cast<uint64_t>(q.integer(3)),
                   static_cast<uint32_t>(q.integer(4)), q.bytes(5)});
  }
  if (rc != SQLITE_DONE) return sql_error(db_, "outbox");
  return out;
}

Status<> Store::acknowledge(int64_t id) {
  Stmt q(cached(kAcknowledge));
  if (!q.ok()) return sql_error(db_, "acknowledge");
  q.bind(1, id);
  const auto deleted = run_delete(q);
  if (!deleted) return sql_error(db_, "acknowledge");
  bytes_ -= deleted->bytes;
  return {};
}

Result<std::size_t> Store::acknowledge_range(uint64_t epoch, uint64_t first, uint64_t last) {
  Stmt q(db_, "DELETE FROM outbox WHERE epoch = ? AND seq BETWEEN ? AND ? RETURNING bytes");
  if (!q.ok()) return sql_error(db_, "acknowledge range");
  q.bind(1, static_cast<int64_t>(epoch));
  q.bind(2, static_cast<int64_t>(first));
  q.bind(3, static_cast<int64_t>(last));
  const auto deleted = run_delete(q);
  if (!deleted) return sql_error(db_, "acknowledge range");
  bytes_ -= deleted->bytes;
  return deleted->rows;
}

Result<std::size_t> Store::expire(int64_t now_us) {
  if (options_.max_age_us <= 0) return std::size_t{0};
  Transaction tx(cached(kBegin), cached(kCommit), cached(kRollback));
  if (!tx.ok()) return sql_error(db_, "begin expire");
  Stmt q(db_, "DELETE FROM items WHERE time_us < ? RETURNING bytes");
  if (!q.ok()) return sql_error(db_, "expire");
  int64_t cutoff;
  if (__builtin_sub_overflow(now_us, options_.max_age_us, &cutoff)) {
    cutoff = std::numeric_limits<int64_t>::min();
  }
  q.bind(1, cutoff);
  const auto deleted = run_delete(q);
  if (!deleted) return sql_error(db_, "expire");
  if (auto s = bump_counter("dropped_expired", deleted->rows); !s.ok()) return s.error();
  if (auto s = tx.commit(); !s.ok()) return s.error();
  bytes_ -= deleted->bytes;
  return deleted->rows;
}

Result<std::optional<Store::TailOffset>> Store::tail_offset(const std::string& path) {
  Stmt q(db_, "SELECT inode, offset FROM tail_offsets WHERE path = ?");
  if (!q.ok()) return sql_error(db_, "tail offset");
  q.bind(1, std::string_view(path));
  const int rc = q.step();
  if (rc == SQLITE_ROW) {
    return std::optional<TailOffset>(
        TailOffset{static_cast<uint64_t>(q.integer(0)), static_cast<uint64_t>(q.integer(1))});
  }
  if (rc == SQLITE_DONE) return std::optional<TailOffset>();
  return sql_error(db_, "tail offset");
}

Status<> Store::set_tail_offset(const std::string& path, TailOffset offset) {
  Stmt q(db_,
         "INSERT INTO tail_offsets (path, inode, offset) VALUES (?1, ?2, ?3) "
         "ON CONFLICT (path) DO UPDATE SET inode = ?2, offset = ?3");
  if (!q.ok()) return sql_error(db_, "set tail offset");
  q.bind(1, std::string_view(path));
  q.bind(2, static_cast<int64_t>(offset.inode));
  q.bind(3, static_cast<int64_t>(offset.offset));
  if (q.step() != SQLITE_DONE) return sql_error(db_, "set tail offset");
  return {};
}

Result<StoreStats> Store::stats() {
  StoreStats s;
  Stmt q(cached(kStats));
  if (!q.ok() || q.step() != SQLITE_ROW) return sql_error(db_, "stats");
  s.queued_items = static_cast<uint64_t>(q.integer(0));
  s.outbox_messages = static_cast<uint64_t>(q.integer(1));
  if (!q.is_null(2)) s.oldest_time_us = q.integer(2);
  s.bytes = bytes_;
  for (auto [key, field] : {std::pair{"dropped_oldest", &s.dropped_oldest},
                            std::pair{"dropped_newest", &s.dropped_newest},
                            std::pair{"dropped_expired", &s.dropped_expired}}) {
    auto v = read_counter(key);
    if (!v.ok()) return v.error();
    *field = v.value();
  }
  auto resets = read_counter("store_resets");
  if (!resets.ok()) return resets.error();
  s.store_resets = static_cast<uint32_t>(resets.value());
  return s;
}

}  // namespace outpost::agent
