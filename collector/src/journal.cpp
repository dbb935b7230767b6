// The raw-message journal: append on arrival, replay at start, delete what is committed.
#include "outpost/collector/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace outpost::collector {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kHeader = 4 + 4 + 8 + 4;
constexpr uint32_t kMaxField = 16u << 20;
// Set in the topic length of a cut record (an oversized message: its first bytes and a
// trailer of kCutTrailer bytes: u64 full length, u64 limit, the SHA-256 of the whole).
constexpr uint32_t kCutFlag = 0x8000'0000u;
constexpr std::size_t kCutTrailer = 8 + 8 + 32;
// A burst larger than this does not keep its buffer for the next one.
constexpr std::size_t kKeepBufferBytes = 4u << 20;

uint32_t checksum(std::string_view a, std::string_view b, int64_t t) {
  uint32_t h = 2166136261u;  // FNV-1a
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) h = (h ^ c) * 16777619u;
  };
  mix(a);
  mix(std::string_view(reinterpret_cast<const char*>(&t), sizeof t));
  mix(b);
  return h;
}

void put32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
void put64(std::string& out, int64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }

// The payload field of a record: the payload, and for a cut message its trailer.
std::string_view payload_field(const RawMessage& m, std::string& scratch) {
  if (!m.cut) return m.payload;
  scratch = m.payload;
  put64(scratch, static_cast<int64_t>(m.cut->full_bytes));
  put64(scratch, static_cast<int64_t>(m.cut->limit));
  scratch.append(reinterpret_cast<const char*>(m.cut->sha256.data()), m.cut->sha256.size());
  return scratch;
}

}  // namespace

Journal::Journal(std::string dir, bool full_sync, uint64_t segment_bytes, uint64_t next_segment)
    : dir_(std::move(dir)),
      full_sync_(full_sync),
      segment_bytes_(segment_bytes),
      segment_(next_segment) {}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

std::string Journal::path_of(uint64_t segment) const {
  return dir_ + "/" + std::to_string(segment) + ".journal";
}

std::vector<uint64_t> Journal::segments() const {
  std::vector<uint64_t> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.ends_with(".journal")) continue;
    char* end = nullptr;
    const unsigned long long n = std::strtoull(name.c_str(), &end, 10);
    if (end && std::string_view(end) == ".journal") out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

common::Result<std::unique_ptr<Journal>> Journal::open(const std::string& dir, bool full_sync,
                                                       uint64_t segment_bytes) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return common::Error{"cannot create journal directory " + dir + ": " + ec.message()};
  std::unique_ptr<Journal> j(new Journal(dir, full_sync, segment_bytes, 1));
  auto existing = j->segments();
  if (!existing.empty()) j->segment_ = existing.back() + 1;
  std::lock_guard lock(j->mu_);
  if (auto s = j->roll(); !s.ok()) return s.error();
  return j;
}

common::Status<> Journal::roll() {
  if (fd_ >= 0) ::close(fd_);
  if (offset_ > 0) ++segment_;
  offset_ = 0;
  fd_ =
      ::open(path_of(segment_).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) {
    return common::Error{"cannot open journal " + path_of(segment_) + ": " + std::strerror(errno)};
  }
  return {};
}

common::Result<uint64_t> Journal::replay(
    std::optional<JournalPosition> from,
    const std::function<void(RawMessage&&, JournalPosition after)>& each) {
  uint64_t count = 0;
  for (uint64_t seg : segments()) {
    if (seg >= segment_) break;  // the one we write to now is new and empty
    if (from && seg < from->segment) continue;
    // Record by record: replay holds one record in memory, never a whole segment.
    std::ifstream in(path_of(seg), std::ios::binary);
    if (!in) return common::Error{"cannot read journal " + path_of(seg)};
    std::size_t pos = (from && seg == from->segment) ? from->offset : 0;
    in.seekg(static_cast<std::streamoff>(pos));
    char header[kHeader];
    while (in.read(header, kHeader)) {
      uint32_t tlen, plen, sum;
      int64_t t;
      std::memcpy(&tlen, header, 4);
      std::memcpy(&plen, header + 4, 4);
      std::memcpy(&t, header + 8, 8);
      std::memcpy(&sum, header + 16, 4);
      const bool is_cut = (tlen & kCutFlag) != 0;
      tlen &= ~kCutFlag;
      if (tlen > kMaxField || plen > kMaxField) break;
      RawMessage m{std::string(tlen, '\0'), std::string(plen, '\0'), t};
      if (!in.read(m.topic.data(), tlen) || !in.read(m.payload.data(), plen)) break;
      if (is_cut && plen < kCutTrailer) break;
      if (checksum(m.topic, m.payload, t) != sum) break;
      if (is_cut) {
        CutPayload cut;
        const char* trailer = m.payload.data() + plen - kCutTrailer;
        std::memcpy(&cut.full_bytes, trailer, 8);
        std::memcpy(&cut.limit, trailer + 8, 8);
        std::memcpy(cut.sha256.data(), trailer + 16, 32);
        m.payload.resize(plen - kCutTrailer);
        m.cut = cut;
      }
      pos += kHeader + tlen + plen;
      each(std::move(m), JournalPosition{seg, pos});
      ++count;
    }
  }
  return count;
}

common::Status<> Journal::append(const std::vector<RawMessage>& messages,
                                 std::vector<JournalPosition>& after) {
  std::lock_guard lock(mu_);
  if (offset_ >= segment_bytes_) {
    if (auto s = roll(); !s.ok()) return s;
  }
  buffer_.clear();
  after.clear();
  std::string scratch;
  for (const RawMessage& m : messages) {
    const std::string_view payload = payload_field(m, scratch);
    put32(buffer_, static_cast<uint32_t>(m.topic.size()) | (m.cut ? kCutFlag : 0));
    put32(buffer_, static_cast<uint32_t>(payload.size()));
    put64(buffer_, m.received_us);
    put32(buffer_, checksum(m.topic, payload, m.received_us));
    buffer_ += m.topic;
    buffer_ += payload;
    after.push_back(JournalPosition{segment_, offset_ + buffer_.size()});
  }
  std::size_t done = 0;
  while (done < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // A partial record at the tail is ignored by replay; start a clean segment.
      const std::string why = std::strerror(errno);
      offset_ += done;
      if (auto rolled = roll(); !rolled.ok()) {
        return common::Error{"journal write failed: " + why +
                             "; no new segment either: " + rolled.error().message};
      }
      return common::Error{"journal write failed: " + why};
    }
    done += static_cast<std::size_t>(n);
  }
  if (full_sync_) ::fdatasync(fd_);
  offset_ += buffer_.size();
  bytes_written_ += buffer_.size();
  if (buffer_.capacity() > kKeepBufferBytes) std::string().swap(buffer_);
  return {};
}

common::Status<> Journal::release(JournalPosition committed) {
  std::lock_guard lock(mu_);
  for (uint64_t seg : segments()) {
    if (seg >= committed.segment || seg >= segment_) break;
    std::error_code ec;
    fs::remove(path_of(seg), ec);
    if (ec) return common::Error{"journal: cannot remove " + path_of(seg) + ": " + ec.message()};
  }
  return {};
}

}  // namespace outpost::collector
