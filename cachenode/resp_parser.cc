#include "cachenode/resp_parser.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace strata::cachenode {
namespace {

// `*N` and `$N` lines: a sign, at most 19 digits and CRLF fit easily; longer is garbage.
constexpr size_t kMaxHeaderLine = 32;
// Argument slots (and their small buffers) kept between requests.
constexpr size_t kKeptArgSlots = 16;
constexpr size_t kKeptSmallCapacity = 4u << 10;

// Parses a non-negative decimal of at most 18 digits (no sign, no spaces). -1 when it is not one;
// -2 when it is negative (a leading '-' followed by digits).
int64_t ParseLength(std::string_view s) {
  bool negative = false;
  if (!s.empty() && s[0] == '-') {
    negative = true;
    s.remove_prefix(1);
  }
  if (s.empty() || s.size() > 18) return -1;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return negative ? (v == 0 ? 0 : -2) : v;
}

// A byte an inline command may hold: printable text, tab and UTF-8; no other control bytes.
bool InlineByteOk(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

std::string Printable(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return std::string(1, c);
  return absl::StrCat("\\x", absl::Hex(u, absl::kZeroPad2));
}

}  // namespace

absl::Status RespParserOptions::Validate() const {
  if (max_bulk_bytes == 0) return absl::InvalidArgumentError("max_bulk_bytes must be positive");
  if (max_discard_bytes < max_bulk_bytes) {
    return absl::InvalidArgumentError("max_discard_bytes must be at least max_bulk_bytes");
  }
  if (max_args == 0) return absl::InvalidArgumentError("max_args must be positive");
  if (max_inline_bytes < 16 || max_inline_bytes > (64u << 20)) {
    return absl::InvalidArgumentError("max_inline_bytes must be between 16 B and 64 MiB");
  }
  // A header line (kMaxHeaderLine) must fit with room to spare, or the parser could wait forever.
  if (min_header_bytes < 64) {
    return absl::InvalidArgumentError("min_header_bytes must be at least 64");
  }
  if (big_bulk_bytes == 0) return absl::InvalidArgumentError("big_bulk_bytes must be positive");
  return absl::OkStatus();
}

BulkBuffer BulkBufferPool::Take(size_t bytes) {
  int best = -1;
  for (size_t i = 0; i < free_.size(); ++i) {
    const size_t cap = free_[i].capacity;
    if (cap >= bytes && cap / 2 <= bytes &&
        (best < 0 || cap < free_[static_cast<size_t>(best)].capacity)) {
      best = static_cast<int>(i);
    }
  }
  if (best >= 0) {
    BulkBuffer b = std::move(free_[static_cast<size_t>(best)]);
    free_.erase(free_.begin() + best);
    cached_bytes_ -= b.capacity;
    return b;
  }
  // new char[] leaves the bytes uninitialised: a multi-MiB value is not zero-filled first.
  return BulkBuffer{std::unique_ptr<char[]>(new char[bytes]), bytes};
}

void BulkBufferPool::Give(BulkBuffer buffer) {
  if (buffer.data == nullptr || cached_bytes_ + buffer.capacity > max_cached_bytes_) return;
  cached_bytes_ += buffer.capacity;
  free_.push_back(std::move(buffer));
}

RespParser::RespParser(const RespParserOptions& options, BulkBufferPool* pool, SlotSource* slots)
    : options_(options),
      pool_(pool),
      slots_(slots),
      header_capacity_(std::max<size_t>(options.min_header_bytes, options.max_inline_bytes + 2)),
      header_(new char[header_capacity_]) {}

RespParser::~RespParser() { ReleaseRequest(); }

RespParser::Result RespParser::Fail(std::string message) {
  state_ = State::kError;
  error_ = std::move(message);
  return Result::kError;
}

void RespParser::ReleaseRequest() {
  for (BulkBuffer& b : big_) {
    if (pool_ != nullptr) pool_->Give(std::move(b));
  }
  big_.clear();
  value_slot_ = ReservedSlot();  // unless the request's SET took it
  args_.clear();
  if (small_.size() > kKeptArgSlots) small_.resize(kKeptArgSlots);
  for (std::string& s : small_) {
    if (s.capacity() > kKeptSmallCapacity) std::string().swap(s);
  }
  args_expected_ = 0;
  too_large_ = false;
  discard_left_ = 0;
  held_ = 0;
  request_out_ = false;
}

char* RespParser::ArgData(size_t index) {
  const Arg& a = args_[index];
  if (a.in_slot) return reinterpret_cast<char*>(value_slot_.data().data());
  return a.big >= 0 ? big_[static_cast<size_t>(a.big)].data.get() : small_[index].data();
}

bool RespParser::StartingSetValue() const {
  // args_expected_ counts the bulks still to come, this one already taken: 0 with two before it
  // means a three-argument request.
  if (args_expected_ != 0 || args_.size() != 2 || args_[0].size != 3) return false;
  const char* name =
      args_[0].big >= 0 ? big_[static_cast<size_t>(args_[0].big)].data.get() : small_[0].data();
  return (name[0] | 0x20) == 's' && (name[1] | 0x20) == 'e' && (name[2] | 0x20) == 't';
}

void RespParser::StartBulk(size_t size) {
  const size_t index = args_.size();
  Arg arg;
  arg.size = size;
  if (size >= options_.big_bulk_bytes && slots_ != nullptr && StartingSetValue()) {
    if (absl::StatusOr<ReservedSlot> slot = slots_->Reserve(size); slot.ok()) {
      value_slot_ = std::move(*slot);
      arg.in_slot = true;
      args_.push_back(arg);
      state_ = State::kBulkBody;
      return;
    }
  }
  if (size >= options_.big_bulk_bytes) {
    big_.push_back(pool_ != nullptr ? pool_->Take(size)
                                    : BulkBuffer{std::unique_ptr<char[]>(new char[size]), size});
    arg.big = static_cast<int>(big_.size() - 1);
  } else {
    if (small_.size() <= index) small_.resize(index + 1);
    small_[index].resize(size);
  }
  args_.push_back(arg);
  state_ = State::kBulkBody;
}

size_t RespParser::ReadSpans(std::array<std::span<char>, 2>& spans) {
  if (request_out_) ReleaseRequest();
  direct_read_ = false;
  if (state_ == State::kBulkBody && pos_ == end_) {
    Arg& a = args_.back();
    const size_t left = a.size - a.filled;
    if (left >= options_.big_bulk_bytes) {
      // The header area is empty: the bulk's tail goes straight into its buffer, and whatever
      // follows it (CRLF, the next request) into the header area, in one readv.
      pos_ = end_ = 0;
      spans[0] = std::span<char>(ArgData(args_.size() - 1) + a.filled, left);
      spans[1] = std::span<char>(header_.get(), header_capacity_);
      direct_read_ = true;
      return 2;
    }
  }
  if (pos_ > 0) {
    std::memmove(header_.get(), header_.get() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  spans[0] = std::span<char>(header_.get() + end_, header_capacity_ - end_);
  return 1;
}

void RespParser::Advance(size_t n) {
  if (direct_read_) {
    Arg& a = args_.back();
    const size_t take = std::min(n, a.size - a.filled);
    a.filled += take;
    n -= take;
    direct_read_ = false;
  }
  end_ += n;
}

bool RespParser::TakeLine(std::string_view* line) {
  const size_t avail = end_ - pos_;
  const size_t scan = std::min(avail, kMaxHeaderLine);
  const char* start = header_.get() + pos_;
  const void* nl = std::memchr(start, '\n', scan);
  if (nl == nullptr) {
    if (avail >= kMaxHeaderLine) Fail("header line too long or missing CRLF");
    return false;
  }
  const size_t len = static_cast<size_t>(static_cast<const char*>(nl) - start);
  if (len < 2 || start[len - 1] != '\r') {
    Fail("missing CRLF after a header line");
    return false;
  }
  *line = std::string_view(start + 1, len - 2);  // without the '*' or '$'
  pos_ += len + 1;
  return true;
}

RespParser::Result RespParser::ParseInline(RespRequest& request, bool* skipped) {
  const size_t avail = end_ - pos_;
  const char* start = header_.get() + pos_;
  const size_t scan = std::min<size_t>(avail, options_.max_inline_bytes + 2);
  const void* nl = std::memchr(start, '\n', scan);
  if (nl == nullptr) {
    if (avail > options_.max_inline_bytes + 1) return Fail("too big inline request");
    return Result::kNeedMore;
  }
  size_t len = static_cast<size_t>(static_cast<const char*>(nl) - start);
  pos_ += len + 1;
  if (len > 0 && start[len - 1] == '\r') --len;
  if (len > options_.max_inline_bytes) return Fail("too big inline request");
  for (size_t i = 0; i < len; ++i) {
    if (!InlineByteOk(static_cast<unsigned char>(start[i]))) {
      return Fail(absl::StrCat("invalid inline request (byte '", Printable(start[i]), "')"));
    }
  }
  size_t i = 0;
  while (i < len) {
    while (i < len && (start[i] == ' ' || start[i] == '\t')) ++i;
    if (i == len) break;
    size_t j = i;
    while (j < len && start[j] != ' ' && start[j] != '\t') ++j;
    if (args_.size() >= options_.max_args) return Fail("invalid multibulk length");
    const size_t index = args_.size();
    if (small_.size() <= index) small_.resize(index + 1);
    small_[index].assign(start + i, j - i);
    args_.push_back(Arg{j - i, j - i, -1});
    i = j;
  }
  if (args_.empty()) {
    *skipped = true;
    return Result::kNeedMore;
  }
  FinishRequest(request);
  request.inline_command = true;
  return Result::kRequest;
}

void RespParser::FinishRequest(RespRequest& request) {
  request.args.clear();
  request.too_large = too_large_;
  request.inline_command = false;
  if (!too_large_) {
    for (size_t i = 0; i < args_.size(); ++i) request.args.emplace_back(ArgData(i), args_[i].size);
  }
  // Moved even when empty, so a slot the previous request left unused is freed now.
  request.value_slot = std::move(value_slot_);
  state_ = State::kStart;
  request_out_ = true;
}

RespParser::Result RespParser::Next(RespRequest& request) {
  if (request_out_) ReleaseRequest();
  while (true) {
    switch (state_) {
      case State::kError:
        return Result::kError;
      case State::kStart: {
        if (pos_ == end_) return Result::kNeedMore;
        if (header_[pos_] != '*') {
          bool skipped = false;
          const Result r = ParseInline(request, &skipped);
          if (skipped) continue;  // an empty line, ignored as Redis does
          return r;
        }
        std::string_view line;
        if (!TakeLine(&line)) return state_ == State::kError ? Result::kError : Result::kNeedMore;
        const int64_t count = ParseLength(line);
        if (count < 0 || count > static_cast<int64_t>(options_.max_args)) {
          return Fail("invalid multibulk length");
        }
        if (count == 0) continue;  // `*0`: an empty request, skipped as Redis does
        args_expected_ = count;
        state_ = State::kBulkHeader;
        break;
      }
      case State::kBulkHeader: {
        if (pos_ == end_) return Result::kNeedMore;
        if (header_[pos_] != '$') {
          return Fail(absl::StrCat("expected '$', got '", Printable(header_[pos_]), "'"));
        }
        std::string_view line;
        if (!TakeLine(&line)) return state_ == State::kError ? Result::kError : Result::kNeedMore;
        const int64_t len = ParseLength(line);
        if (len < 0 || static_cast<uint64_t>(len) > options_.max_discard_bytes) {
          return Fail("invalid bulk length");
        }
        --args_expected_;
        const uint64_t size = static_cast<uint64_t>(len);
        // A request never buffers more than one maximal bulk plus a bounded allowance for its
        // other arguments (keys); beyond that its remaining bulks are discarded.
        const uint64_t request_limit = options_.max_bulk_bytes + options_.max_inline_bytes;
        if (too_large_ || size > options_.max_bulk_bytes || held_ + size > request_limit) {
          too_large_ = true;
          discard_left_ = size;
          state_ = State::kDiscardBody;
        } else {
          held_ += size;
          StartBulk(size);
        }
        break;
      }
      case State::kBulkBody: {
        Arg& a = args_.back();
        const size_t take = std::min(end_ - pos_, a.size - a.filled);
        if (take > 0) {
          std::memcpy(ArgData(args_.size() - 1) + a.filled, header_.get() + pos_, take);
          pos_ += take;
          a.filled += take;
        }
        if (a.filled < a.size) return Result::kNeedMore;
        state_ = State::kBulkCrlf;
        break;
      }
      case State::kDiscardBody: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(end_ - pos_, discard_left_));
        pos_ += take;
        discard_left_ -= take;
        if (discard_left_ > 0) return Result::kNeedMore;
        state_ = State::kBulkCrlf;
        break;
      }
      case State::kBulkCrlf: {
        if (end_ - pos_ < 2) {
          if (end_ > pos_ && header_[pos_] != '\r') return Fail("missing CRLF after a bulk");
          return Result::kNeedMore;
        }
        if (header_[pos_] != '\r' || header_[pos_ + 1] != '\n') {
          return Fail("missing CRLF after a bulk");
        }
        pos_ += 2;
        if (args_expected_ == 0) {
          FinishRequest(request);
          return Result::kRequest;
        }
        state_ = State::kBulkHeader;
        break;
      }
    }
  }
}

}  // namespace strata::cachenode
