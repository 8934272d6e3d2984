// Building Prometheus metric families by hand, for the collectors that read a component's plain
// stats struct at scrape time. Header-only, and included only by the binaries' metrics exporters:
// the one place each binary includes prometheus-cpp (STYLE.md).
#pragma once

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include <string>
#include <utility>
#include <vector>

namespace strata::common::metrics {

inline prometheus::MetricFamily Family(std::string name, std::string help,
                                       prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

// Appends one sample to a counter or gauge family.
inline void Add(prometheus::MetricFamily& f, double value,
                std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  if (f.type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

}  // namespace strata::common::metrics
