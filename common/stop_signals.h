// Stop signals for Strata's binaries: SIGTERM and SIGINT are blocked in every thread and taken by
// the main thread with sigwait, so a drain runs as ordinary code instead of in a signal handler.
#pragma once

#include <csignal>

namespace strata::common {

// Blocks SIGTERM and SIGINT in the calling thread and every thread it starts later. Call first in
// main, before any thread exists.
sigset_t BlockStopSignals();

// Waits for one of the blocked stop signals; returns its name ("SIGTERM" or "SIGINT").
const char* WaitForStopSignal(const sigset_t& signals);

}  // namespace strata::common
