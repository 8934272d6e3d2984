#include "common/fail_point.h"

#include <cstdlib>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/string_view_interop.h"

namespace strata::common {
namespace {

// absl has no name -> code parser in this release; these are the codes a fault can stand for.
std::optional<absl::StatusCode> CodeFromName(absl::string_view name) {
  static const std::pair<absl::string_view, absl::StatusCode> kCodes[] = {
      {"CANCELLED", absl::StatusCode::kCancelled},
      {"UNKNOWN", absl::StatusCode::kUnknown},
      {"INVALID_ARGUMENT", absl::StatusCode::kInvalidArgument},
      {"DEADLINE_EXCEEDED", absl::StatusCode::kDeadlineExceeded},
      {"NOT_FOUND", absl::StatusCode::kNotFound},
      {"ALREADY_EXISTS", absl::StatusCode::kAlreadyExists},
      {"PERMISSION_DENIED", absl::StatusCode::kPermissionDenied},
      {"RESOURCE_EXHAUSTED", absl::StatusCode::kResourceExhausted},
      {"FAILED_PRECONDITION", absl::StatusCode::kFailedPrecondition},
      {"ABORTED", absl::StatusCode::kAborted},
      {"OUT_OF_RANGE", absl::StatusCode::kOutOfRange},
      {"UNIMPLEMENTED", absl::StatusCode::kUnimplemented},
      {"INTERNAL", absl::StatusCode::kInternal},
      {"UNAVAILABLE", absl::StatusCode::kUnavailable},
      {"DATA_LOSS", absl::StatusCode::kDataLoss},
  };
  for (const auto& [n, code] : kCodes) {
    if (n == name) return code;
  }
  return std::nullopt;
}

// "error(CODE)" -> CODE; nullopt when `text` is not "head(...)".
std::optional<absl::string_view> Argument(absl::string_view text, absl::string_view head) {
  if (!absl::ConsumePrefix(&text, head) || !absl::ConsumePrefix(&text, "(") ||
      !absl::ConsumeSuffix(&text, ")")) {
    return std::nullopt;
  }
  return text;
}

}  // namespace

absl::Status FailPointSpec::Parse(std::string_view text_in, FailPointSpec* out) {
  FailPointSpec spec;
  std::vector<absl::string_view> parts = absl::StrSplit(ToAbsl(text_in), ',');
  absl::string_view action = parts[0];
  if (action == "error") {
    spec.action = Action::kError;
  } else if (auto code = Argument(action, "error")) {
    auto parsed = CodeFromName(*code);
    if (!parsed)
      return absl::InvalidArgumentError(absl::StrCat("unknown status code '", *code, "'"));
    spec.action = Action::kError;
    spec.code = *parsed;
  } else if (auto delay = Argument(action, "delay")) {
    spec.action = Action::kDelay;
    if (!absl::ParseDuration(*delay, &spec.delay) || spec.delay < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat("bad delay '", *delay, "'"));
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown action '", action, "' (error, error(CODE), delay(D) or off)"));
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(parts[i], absl::MaxSplits('=', 1));
    uint64_t n = 0;
    if (kv.first == "p") {
      if (!absl::SimpleAtod(kv.second, &spec.probability) || spec.probability < 0 ||
          spec.probability > 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("p must be in [0, 1], got '", kv.second, "'"));
      }
    } else if (kv.first == "times" && absl::SimpleAtoi(kv.second, &n)) {
      spec.times = n;
    } else if (kv.first == "skip" && absl::SimpleAtoi(kv.second, &n)) {
      spec.skip = n;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("bad option '", parts[i], "' (p=, times=, skip=)"));
    }
  }
  *out = spec;
  return absl::OkStatus();
}

FailPoints& FailPoints::Global() {
  static FailPoints* registry = new FailPoints();
  return *registry;
}

void FailPoints::Arm(std::string_view name, const FailPointSpec& spec) {
  Point point;
  point.spec = spec;
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = points_.insert_or_assign(std::string(name), std::move(point));
  if (inserted) armed_.fetch_add(1, std::memory_order_relaxed);
}

void FailPoints::Disarm(std::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = points_.find(name);
  if (it == points_.end()) return;
  points_.erase(it);
  armed_.fetch_sub(1, std::memory_order_relaxed);
}

void FailPoints::DisarmAll() {
  absl::MutexLock lock(&mu_);
  armed_.fetch_sub(static_cast<int>(points_.size()), std::memory_order_relaxed);
  points_.clear();
}

void FailPoints::Seed(uint64_t seed) {
  absl::MutexLock lock(&mu_);
  rng_.seed(seed);
}

absl::Status FailPoints::ArmFromString(std::string_view text_in) {
  const absl::string_view text = ToAbsl(text_in);
  struct Entry {
    std::string name;
    std::optional<FailPointSpec> spec;  // nullopt: off
  };
  std::vector<Entry> entries;
  std::optional<uint64_t> seed;
  for (absl::string_view item : absl::StrSplit(text, ';', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(item, absl::MaxSplits('=', 1));
    if (kv.first.empty() || kv.second.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("fail point entry '", item, "' is not NAME=SPEC"));
    }
    if (kv.first == "seed") {
      uint64_t s = 0;
      if (!absl::SimpleAtoi(kv.second, &s))
        return absl::InvalidArgumentError("seed must be a number");
      seed = s;
      continue;
    }
    Entry entry{std::string(kv.first), std::nullopt};
    if (kv.second != "off") {
      FailPointSpec spec;
      absl::Status parsed = FailPointSpec::Parse(ToStd(kv.second), &spec);
      if (!parsed.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("fail point ", kv.first, ": ", parsed.message()));
      }
      entry.spec = spec;
    }
    entries.push_back(std::move(entry));
  }
  if (seed) Seed(*seed);
  for (const Entry& e : entries) {
    if (e.spec) {
      Arm(e.name, *e.spec);
    } else {
      Disarm(e.name);
    }
  }
  return absl::OkStatus();
}

absl::Status FailPoints::ArmFromEnvironment() {
  const char* text = std::getenv("STRATA_FAIL_POINTS");
  if (text == nullptr || *text == '\0') return absl::OkStatus();
  if (!kFailPointsCompiled) {
    return absl::FailedPreconditionError(
        "STRATA_FAIL_POINTS is set but this build has no fail points (configure with "
        "-DSTRATA_FAIL_POINTS=ON)");
  }
  return ArmFromString(text);
}

void FailPoints::SetCallback(std::string_view name, std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  if (fn) {
    callbacks_.insert_or_assign(std::string(name), std::move(fn));
  } else {
    callbacks_.erase(std::string(name));
  }
}

uint64_t FailPoints::evaluations(std::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = points_.find(name);
  return it == points_.end() ? 0 : it->second.evaluations;
}

uint64_t FailPoints::fired(std::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = points_.find(name);
  return it == points_.end() ? 0 : it->second.fired;
}

absl::Status FailPoints::EvaluateSlow(std::string_view name) {
  FailPointSpec spec;
  std::function<void()> callback;
  {
    absl::MutexLock lock(&mu_);
    auto it = points_.find(name);
    if (it == points_.end()) return absl::OkStatus();
    Point& p = it->second;
    const uint64_t n = p.evaluations++;
    if (n < p.spec.skip) return absl::OkStatus();
    if (p.spec.times && p.fired >= *p.spec.times) return absl::OkStatus();
    if (p.spec.probability < 1.0 &&
        std::uniform_real_distribution<double>(0.0, 1.0)(rng_) >= p.spec.probability) {
      return absl::OkStatus();
    }
    ++p.fired;
    spec = p.spec;
    auto cb = callbacks_.find(name);
    if (cb != callbacks_.end()) callback = cb->second;
  }
  total_fired_.fetch_add(1, std::memory_order_relaxed);
  if (spec.action == FailPointSpec::Action::kDelay) {
    absl::SleepFor(spec.delay);
    if (callback) callback();
    return absl::OkStatus();
  }
  if (callback) callback();
  return absl::Status(spec.code, Concat("fail point ", name));
}

}  // namespace strata::common
