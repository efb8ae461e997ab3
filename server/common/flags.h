// Command-line flags for the server and the client: typed, documented, with
// their defaults in --help. No global registry: each program builds a FlagSet
// over its own option variables.
#ifndef RNNSERVE_SERVER_COMMON_FLAGS_H_
#define RNNSERVE_SERVER_COMMON_FLAGS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace rnnserve {

// Parses `--name=value` and `--name value`; a boolean also takes `--name`
// alone. Each flag's default is the value its variable holds when added.
// Not thread-safe; use it from main.
class FlagSet {
 public:
  // `usage` is the first line of --help, e.g. "rnnserve [flags]".
  FlagSet(std::string usage, std::string description);

  // Each binds `--name` to `*value`, which must outlive the FlagSet.
  void String(const std::string& name, std::string* value,
              const std::string& help);
  // Integers must lie in [min, max].
  void Int(const std::string& name, int64_t* value, const std::string& help,
           int64_t min = INT64_MIN, int64_t max = INT64_MAX);
  void Double(const std::string& name, double* value, const std::string& help);
  void Bool(const std::string& name, bool* value, const std::string& help);
  // Durations as "250ms", "30s", "5m", "1h30m" or "0".
  void Duration(const std::string& name, absl::Duration* value,
                const std::string& help);

  // Parses args (without the program name). Returns the positional
  // arguments, in order. `--help` sets help_requested() and stops. An
  // unknown flag or a bad value is InvalidArgument naming the flag.
  absl::StatusOr<std::vector<std::string>> Parse(
      const std::vector<std::string>& args);

  bool help_requested() const { return help_requested_; }

  // Every flag with its type, default and help.
  std::string Help() const;

 private:
  struct Flag {
    std::string name;
    std::string type;
    std::string default_value;
    std::string help;
    bool is_bool = false;
    std::function<absl::Status(const std::string&)> set;
  };
  void Add(Flag flag);

  std::string usage_;
  std::string description_;
  std::vector<Flag> flags_;
  bool help_requested_ = false;
};

}  // namespace rnnserve

#endif  // RNNSERVE_SERVER_COMMON_FLAGS_H_
