#include "cachenode/block_events.h"

#include <algorithm>

namespace strata::cachenode {

BlockEventBuffer::BlockEventBuffer(size_t max_events)
    : max_events_(std::max<size_t>(1, max_events)) {}

void BlockEventBuffer::OnBlockEvent(BlockEventKind kind, TierKind tier, const BlockKey& key) {
  absl::MutexLock lock(&mu_);
  if (snapshot_needed_) {
    ++dropped_;  // superseded by the snapshot that must come before any further batch
    return;
  }
  if (size_ >= max_events_) {
    dropped_ += size_ + 1;
    runs_.clear();
    front_taken_bytes_ = 0;
    size_ = 0;
    snapshot_needed_ = true;
    return;
  }
  if (runs_.empty() || runs_.back().kind != kind || runs_.back().tier != tier ||
      runs_.back().namespace_id != key.namespace_id) {
    runs_.push_back(BlockEventRun{kind, tier, key.namespace_id, {}});
  }
  runs_.back().hashes.append(key.hash.view());
  ++size_;
}

std::vector<BlockEventRun> BlockEventBuffer::Take(size_t max_events) {
  std::vector<BlockEventRun> out;
  absl::MutexLock lock(&mu_);
  size_t left = max_events;
  while (left > 0 && !runs_.empty()) {
    BlockEventRun& front = runs_.front();
    const size_t available = (front.hashes.size() - front_taken_bytes_) / common::kChainHashBytes;
    const size_t n = std::min(left, available);
    if (front_taken_bytes_ == 0 && n == available) {
      out.push_back(std::move(front));  // the common case: a whole run, no copy
      runs_.pop_front();
    } else {
      // An offset instead of erasing the prefix: splitting a long run stays linear.
      out.push_back(
          BlockEventRun{front.kind, front.tier, front.namespace_id,
                        front.hashes.substr(front_taken_bytes_, n * common::kChainHashBytes)});
      front_taken_bytes_ += n * common::kChainHashBytes;
      if (front_taken_bytes_ == front.hashes.size()) {
        runs_.pop_front();
        front_taken_bytes_ = 0;
      }
    }
    left -= n;
    size_ -= n;
  }
  return out;
}

void BlockEventBuffer::DiscardAll() {
  absl::MutexLock lock(&mu_);
  runs_.clear();
  front_taken_bytes_ = 0;
  size_ = 0;
  snapshot_needed_ = false;
}

bool BlockEventBuffer::snapshot_needed() const {
  absl::MutexLock lock(&mu_);
  return snapshot_needed_;
}

size_t BlockEventBuffer::size() const {
  absl::MutexLock lock(&mu_);
  return size_;
}

uint64_t BlockEventBuffer::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

}  // namespace strata::cachenode
