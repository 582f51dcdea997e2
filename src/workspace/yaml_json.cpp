#include "workspace/yaml_json.hpp"

#include <boost/json.hpp>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace customcode::workspace {
namespace json = boost::json;
namespace {

// A block literal keeps code readable in workspace.yaml; it cannot carry every string exactly
// (trailing spaces, leading blank lines, tabs at line start, carriage returns), so those are
// double-quoted instead.
bool fitsLiteralBlock(std::string_view s) {
  if (s.find('\n') == std::string_view::npos) return false;
  if (s.ends_with("\n\n")) return false;  // "|" and "|-" keep at most one final newline
  if (s.front() == ' ' || s.front() == '\n' || s.front() == '\t') return false;
  std::size_t lineStart = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '\n') {
      if (i > lineStart && (s[i - 1] == ' ' || s[i - 1] == '\t')) return false;
      lineStart = i + 1;
      continue;
    }
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '\r' || (c < 0x20 && c != '\t') || c == 0x7f) return false;
    if (c == '\t' && i == lineStart) return false;
  }
  return true;
}

// yaml-cpp always writes a block literal as "|", which reads back with a final newline; `strip`
// collects where to add the "-" of "|-" for text that has none.
void emit(YAML::Emitter& out, const json::value& v, std::vector<std::size_t>& strip) {
  switch (v.kind()) {
    case json::kind::null: out << YAML::Null; break;
    case json::kind::bool_: out << v.get_bool(); break;
    case json::kind::int64: out << v.get_int64(); break;
    case json::kind::uint64: out << v.get_uint64(); break;
    case json::kind::double_: {
      // Keep a decimal point so the value reads back as a double, and round-trip every digit.
      auto text = json::serialize(v);
      out << text;
      break;
    }
    case json::kind::string: {
      std::string_view s = v.get_string();
      if (fitsLiteralBlock(s)) {
        auto before = out.size();
        out << YAML::Literal << std::string(s);
        if (s.back() != '\n') strip.push_back(std::string_view(out.c_str()).find('|', before) + 1);
      } else {
        out << YAML::DoubleQuoted << std::string(s);
      }
      break;
    }
    case json::kind::array:
      out << YAML::BeginSeq;
      for (const auto& item : v.get_array()) emit(out, item, strip);
      out << YAML::EndSeq;
      break;
    case json::kind::object:
      out << YAML::BeginMap;
      for (const auto& [key, item] : v.get_object()) {
        out << YAML::Key << YAML::DoubleQuoted << std::string(key) << YAML::Value;
        emit(out, item, strip);
      }
      out << YAML::EndMap;
      break;
  }
}

json::value scalarToJson(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  // Quoted and block scalars carry the non-specific tag "!": they are strings whatever they read.
  if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") return json::string(s);
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  {
    std::int64_t i = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
    if (ec == std::errc{} && ptr == s.data() + s.size()) return i;
  }
  {
    std::uint64_t u = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), u);
    if (ec == std::errc{} && ptr == s.data() + s.size()) return u;
  }
  {
    double d = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
    if (ec == std::errc{} && ptr == s.data() + s.size() && std::isfinite(d)) return d;
  }
  return json::string(s);
}

json::value toJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: return nullptr;
    case YAML::NodeType::Scalar: return scalarToJson(node);
    case YAML::NodeType::Sequence: {
      json::array out;
      for (const auto& item : node) out.push_back(toJson(item));
      return out;
    }
    case YAML::NodeType::Map: {
      json::object out;
      for (const auto& item : node) out[item.first.as<std::string>()] = toJson(item.second);
      return out;
    }
  }
  return nullptr;
}

}  // namespace

std::string jsonToYaml(const json::value& value) {
  YAML::Emitter out;
  out.SetIndent(2);
  std::vector<std::size_t> strip;
  emit(out, value, strip);
  if (!out.good()) throw std::runtime_error("cannot write YAML: " + out.GetLastError());
  std::string text(out.c_str());
  for (auto it = strip.rbegin(); it != strip.rend(); ++it) text.insert(*it, 1, '-');
  return text + "\n";
}

json::value yamlToJson(std::string_view yaml) {
  try {
    return toJson(YAML::Load(std::string(yaml)));
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(std::string("invalid YAML: ") + e.what());
  }
}

}  // namespace customcode::workspace
