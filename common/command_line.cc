#include "common/command_line.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_replace.h"

namespace strata::common {
namespace {

[[noreturn]] void Fail(const CommandLineSpec& spec, const std::string& message) {
  std::cerr << spec.program << ": " << message << " (see --help)\n";
  std::exit(2);
}

[[noreturn]] void PrintHelp(const CommandLineSpec& spec) {
  std::cout << spec.usage << "\n\nFlags:\n";
  for (const std::string& name : spec.flags) {
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) continue;
    const std::string dashed = absl::StrReplaceAll(name, {{"_", "-"}});
    std::cout << "  --" << dashed << "\n      " << flag->Help() << " (default: \""
              << flag->DefaultValue() << "\")\n";
  }
  std::cout << "  --help, -h\n      Print this text and exit.\n";
  std::exit(0);
}

bool IsKnown(const CommandLineSpec& spec, const std::string& name) {
  return std::find(spec.flags.begin(), spec.flags.end(), name) != spec.flags.end();
}

}  // namespace

std::vector<std::string> ParseCommandLineOrExit(const CommandLineSpec& spec, int argc,
                                                char** argv) {
  std::vector<std::string> positional;
  std::map<std::string, std::string> repeated;  // repeatable flag -> items so far, comma-joined
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "--helpfull" || arg == "-help") PrintHelp(spec);
    if (arg == "--") {
      for (++i; i < argc; ++i) positional.emplace_back(argv[i]);
      break;
    }
    if (arg.rfind("--", 0) != 0) {
      positional.push_back(arg);
      continue;
    }
    const size_t eq = arg.find('=');
    std::string name = absl::StrReplaceAll(
        arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2), {{"-", "_"}});
    std::string value;
    bool has_value = eq != std::string::npos;
    if (has_value) value = arg.substr(eq + 1);
    bool negated = false;
    if (!IsKnown(spec, name) && name.rfind("no", 0) == 0 && IsKnown(spec, name.substr(2))) {
      name = name.substr(2);
      negated = true;
    }
    absl::CommandLineFlag* flag = IsKnown(spec, name) ? absl::FindCommandLineFlag(name) : nullptr;
    if (flag == nullptr) Fail(spec, "unknown flag " + arg.substr(0, eq));
    const bool is_bool = flag->IsOfType<bool>();
    if (negated) {
      if (!is_bool || has_value) Fail(spec, "--no" + name + " is only for boolean flags");
      value = "false";
    } else if (!has_value) {
      if (is_bool) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        Fail(spec, "flag " + arg + " needs a value");
      }
    }
    if (std::find(spec.repeatable.begin(), spec.repeatable.end(), name) != spec.repeatable.end()) {
      std::string& so_far = repeated[name];
      value = so_far.empty() ? value : so_far + "," + value;
      so_far = value;
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      Fail(spec, "--" + absl::StrReplaceAll(name, {{"_", "-"}}) + "=" + value + ": " + error);
    }
  }
  return positional;
}

}  // namespace strata::common
