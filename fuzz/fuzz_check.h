// FUZZ_CHECK(cond): a property every fuzz target asserts. Unlike assert() it holds in every build
// type; a failure prints the file, line and condition and aborts, which libFuzzer reports as a
// crash and saves the input for (reproduce with `build-fuzz/fuzz/<target> <artefact>`).
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)
