#include "bench/process_stats.h"

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace strata::bench {
namespace {

// Finds "name:" at the start of a line and parses the first number after it.
bool FindField(absl::string_view text, absl::string_view name, uint64_t* value) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, name) || !absl::ConsumePrefix(&line, ":")) continue;
    line = absl::StripLeadingAsciiWhitespace(line);
    const absl::string_view number = line.substr(0, line.find_first_not_of("0123456789"));
    return absl::SimpleAtoi(number, value);
  }
  return false;
}

absl::StatusOr<std::string> ReadWholeFile(const char* path) {
  std::ifstream in(path);
  if (!in) return absl::UnavailableError(absl::StrCat("cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<IoCounters> ParseProcIo(std::string_view text_in) {
  const absl::string_view text(text_in.data(), text_in.size());
  IoCounters c;
  if (!FindField(text, "read_bytes", &c.read_bytes) ||
      !FindField(text, "write_bytes", &c.write_bytes)) {
    return absl::InvalidArgumentError("proc io: read_bytes/write_bytes missing or malformed");
  }
  return c;
}

absl::StatusOr<MemoryCounters> ParseProcStatus(std::string_view text_in) {
  const absl::string_view text(text_in.data(), text_in.size());
  MemoryCounters m;
  uint64_t kib = 0;
  if (!FindField(text, "VmRSS", &kib)) {
    return absl::InvalidArgumentError("proc status: VmRSS missing or malformed");
  }
  m.rss_bytes = kib << 10;
  // VmHWM is absent in some containers' procfs; the current value is the best lower bound then.
  m.peak_rss_bytes = FindField(text, "VmHWM", &kib) ? (kib << 10) : m.rss_bytes;
  if (FindField(text, "RssAnon", &kib)) m.rss_anon_bytes = kib << 10;
  if (FindField(text, "RssShmem", &kib)) m.rss_shmem_bytes = kib << 10;
  return m;
}

absl::StatusOr<IoCounters> ReadIoCounters() {
  absl::StatusOr<std::string> text = ReadWholeFile("/proc/self/io");
  if (!text.ok()) return text.status();
  return ParseProcIo(*text);
}

absl::StatusOr<MemoryCounters> ReadMemoryCounters(int pid) {
  absl::StatusOr<std::string> text =
      ReadWholeFile(pid == 0 ? std::string("/proc/self/status").c_str()
                             : absl::StrCat("/proc/", pid, "/status").c_str());
  if (!text.ok()) return text.status();
  return ParseProcStatus(*text);
}

double Amplification(uint64_t before, uint64_t after, uint64_t payload_bytes) {
  if (payload_bytes == 0) return 0;
  return static_cast<double>(after - before) / static_cast<double>(payload_bytes);
}

std::optional<double> MeasuredAmplification(const absl::StatusOr<IoCounters>& before,
                                            const absl::StatusOr<IoCounters>& after, bool reads,
                                            uint64_t payload_bytes) {
  if (!before.ok() || !after.ok() || payload_bytes == 0) return std::nullopt;
  const uint64_t b = reads ? before->read_bytes : before->write_bytes;
  const uint64_t a = reads ? after->read_bytes : after->write_bytes;
  if (a == b) return std::nullopt;
  return Amplification(b, a, payload_bytes);
}

}  // namespace strata::bench
