// Command-line parsing for Strata's binaries, on top of Abseil flags.
//
// Abseil names flags with underscores (`data_dir`); Strata's documented spelling is dashes
// (`--data-dir`). ParseCommandLineOrExit accepts both, takes `--flag value` and `--flag=value`
// (`--flag` / `--noflag` for booleans), prints a usage text built from the flags' own help strings
// for `--help`/`-h` (exit 0), and turns every parse error into one line on stderr and exit code 2.
// Call it once, first thing in main(). Not thread-safe (flags are process state).
#pragma once

#include <string>
#include <vector>

namespace strata::common {

struct CommandLineSpec {
  std::string program;             // "strata-cachenode"
  std::string usage;               // paragraph printed before the flag list
  std::vector<std::string> flags;  // the binary's flags, underscore names, in display order
  // List flags (std::vector<std::string>) that may be given more than once: each occurrence adds
  // its comma-separated items instead of replacing the earlier ones.
  std::vector<std::string> repeatable;
};

// Parses argv into the named Abseil flags. Returns the positional arguments (argv[0] excluded).
// Exits 0 after printing help; exits 2 with one stderr line on an unknown flag, a missing value or
// a value the flag cannot parse.
std::vector<std::string> ParseCommandLineOrExit(const CommandLineSpec& spec, int argc, char** argv);

}  // namespace strata::common
