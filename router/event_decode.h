// Decoding of block events from the wire (router.proto BlockEvent) into IngestEvents.
//
// Pure conversion: checks each event's kind, tier and hash bytes and turns every 32-byte chain
// hash into its 64-bit index key (IndexKeyOf) straight from the first 8 bytes, without building a
// ChainHash. A batch is decoded whole or not at all. Thread-safe (no state).
#pragma once

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/repeated_field.h"
#include "router/event_ingest.h"
#include "strata/v1/router.pb.h"

namespace strata::router {

struct DecodeLimits {
  // Events in one batch or snapshot chunk. A node groups a batch's blocks into few events (one per
  // chain or tier move), so this only bounds the per-event overhead of a hostile batch.
  size_t max_events = 1 << 16;
  // Block keys over all events of one batch or chunk (8 bytes each once decoded). gRPC's default
  // 4 MiB message holds 131,072 hashes; 1M leaves room for a raised message limit on snapshots.
  size_t max_keys = 1 << 20;
};

// Decodes `events` in order. InvalidArgument (naming the event) for chain_hashes whose length is
// not a multiple of 32, an unknown kind, or a STORED/REMOVED event without TIER_HBM/DRAM/SSD;
// ResourceExhausted when the batch has more events or keys than `limits` allow. CLEARED events
// carry no keys (their tier and hashes are ignored).
absl::StatusOr<std::vector<IngestEvent>> DecodeEvents(
    const google::protobuf::RepeatedPtrField<strata::v1::BlockEvent>& events,
    const DecodeLimits& limits = {});

}  // namespace strata::router
