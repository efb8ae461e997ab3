#include "server/common/flags.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace rnnserve {
namespace {

absl::Status BadValue(const std::string& name, const std::string& value,
                      const std::string& expected) {
  return absl::InvalidArgumentError(absl::StrCat(
      "flag --", name, ": expected ", expected, ", got \"", value, "\""));
}

std::string FormatDouble(double v) { return absl::StrFormat("%g", v); }

}  // namespace

FlagSet::FlagSet(std::string usage, std::string description)
    : usage_(std::move(usage)), description_(std::move(description)) {}

void FlagSet::Add(Flag flag) { flags_.push_back(std::move(flag)); }

void FlagSet::String(const std::string& name, std::string* value,
                     const std::string& help) {
  Add({name, "string", absl::StrCat("\"", *value, "\""), help, false,
       [value](const std::string& v) {
         *value = v;
         return absl::OkStatus();
       }});
}

void FlagSet::Int(const std::string& name, int64_t* value,
                  const std::string& help, int64_t min, int64_t max) {
  Add({name, "int", absl::StrCat(*value), help, false,
       [=](const std::string& v) {
         int64_t parsed = 0;
         const char* end = v.data() + v.size();
         auto [ptr, ec] = std::from_chars(v.data(), end, parsed);
         if (v.empty() || ec != std::errc() || ptr != end) {
           return BadValue(name, v, "an integer");
         }
         if (parsed < min || parsed > max) {
           return BadValue(
               name, v, absl::StrCat("an integer in [", min, ", ", max, "]"));
         }
         *value = parsed;
         return absl::OkStatus();
       }});
}

void FlagSet::Double(const std::string& name, double* value,
                     const std::string& help) {
  Add({name, "float", FormatDouble(*value), help, false,
       [=](const std::string& v) {
         char* end = nullptr;
         const double parsed = std::strtod(v.c_str(), &end);
         if (v.empty() || *end != '\0' || !std::isfinite(parsed)) {
           return BadValue(name, v, "a finite number");
         }
         *value = parsed;
         return absl::OkStatus();
       }});
}

void FlagSet::Bool(const std::string& name, bool* value,
                   const std::string& help) {
  Add({name, "bool", *value ? "true" : "false", help, true,
       [=](const std::string& v) {
         if (v == "true" || v == "1") {
           *value = true;
         } else if (v == "false" || v == "0") {
           *value = false;
         } else {
           return BadValue(name, v, "true or false");
         }
         return absl::OkStatus();
       }});
}

void FlagSet::Duration(const std::string& name, absl::Duration* value,
                       const std::string& help) {
  Add({name, "duration", absl::FormatDuration(*value), help, false,
       [=](const std::string& v) {
         absl::Duration parsed;
         if (!absl::ParseDuration(v, &parsed) ||
             parsed < absl::ZeroDuration() ||
             parsed == absl::InfiniteDuration()) {
           return BadValue(name, v,
                           "a duration such as 250ms, 30s, 5m or 1h30m");
         }
         *value = parsed;
         return absl::OkStatus();
       }});
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(
    const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      positional.insert(positional.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      positional.push_back(arg);
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string name =
        arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (name == "help") {
      help_requested_ = true;
      return positional;
    }
    Flag* flag = nullptr;
    for (Flag& f : flags_) {
      if (f.name == name) flag = &f;
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (flag->is_bool) {
      value = "true";
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", name, " needs a value"));
    }
    if (absl::Status s = flag->set(value); !s.ok()) return s;
  }
  return positional;
}

std::string FlagSet::Help() const {
  std::string out =
      absl::StrCat("Usage: ", usage_, "\n\n", description_, "\n\nFlags:\n");
  for (const Flag& f : flags_) {
    absl::StrAppend(&out, "  --", f.name, " (", f.type,
                    ", default: ", f.default_value, ")\n      ", f.help, "\n");
  }
  absl::StrAppend(&out, "  --help\n      Prints this help and exits.\n");
  return out;
}

}  // namespace rnnserve
