#include "options.h"

#include <cmath>
#include <sstream>

#include "error.h"

namespace neoserve {

namespace {

std::string number_text(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

std::string range_text(const char* kind, Range r) {
  return std::string(kind) + " in [" + number_text(r.min) + ", " + number_text(r.max) + "]";
}

std::string label_of(const std::string& v) { return v; }
template <typename T>
std::string label_of(const T& v) {
  return std::to_string(static_cast<int>(v));
}

struct Validator {
  void check(const char* name, double value, Range r, const char* kind) const {
    if (!(value >= r.min && value <= r.max))
      throw_invalid(std::string(name) + " must be " + range_text(kind, r) + ", got " + number_text(value));
  }
  void integer(const char* name, const int32_t& v, Range r, const char*) const { check(name, v, r, "an integer"); }
  void number(const char* name, const double& v, Range r, const char*) const { check(name, v, r, "a number"); }
  void bytes(const char* name, const size_t& v, Range r, const char*) const {
    check(name, static_cast<double>(v), r, "a byte count");
  }
  void text(const char*, const std::string&, const char*) const {}
  template <typename T>
  void choice(const char* name, const T& v, Choices<T> choices, const char*) const {
    for (const auto& [_, value] : choices)
      if (value == v) return;
    throw_not_a_choice(name, label_of(v), choices);
  }
};

struct Describer {
  std::vector<OptionDescription>& out;
  OptionDescription& add(const char* name, const char* kind, const char* meaning) {
    OptionDescription& d = out.emplace_back();
    d.name = name;
    d.kind = kind;
    d.meaning = meaning;
    return d;
  }
  void numeric(const char* name, const char* kind, double v, Range r, const char* meaning) {
    OptionDescription& d = add(name, kind, meaning);
    d.default_number = v;
    d.default_text = number_text(v);
    d.min = r.min;
    d.max = r.max;
  }
  void integer(const char* name, int32_t& v, Range r, const char* m) { numeric(name, "integer", v, r, m); }
  void number(const char* name, double& v, Range r, const char* m) { numeric(name, "number", v, r, m); }
  void bytes(const char* name, size_t& v, Range r, const char* m) { numeric(name, "bytes", static_cast<double>(v), r, m); }
  void text(const char* name, std::string& v, const char* m) { add(name, "text", m).default_text = v; }
  template <typename T>
  void choice(const char* name, T& v, Choices<T> choices, const char* m) {
    OptionDescription& d = add(name, "choice", m);
    for (const auto& [label, value] : choices) {
      d.choices.emplace_back(label);
      if (value == v) d.default_text = label;
    }
  }
};

}  // namespace

void validate(const LoadOptions& options) {
  visit_load_options(options, Validator{});
}

std::vector<OptionDescription> describe_load_options() {
  std::vector<OptionDescription> out;
  LoadOptions defaults;
  visit_load_options(defaults, Describer{out});
  return out;
}

}  // namespace neoserve
