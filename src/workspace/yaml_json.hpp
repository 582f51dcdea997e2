#pragma once

#include <boost/json/value.hpp>

#include <string>
#include <string_view>

// Lossless conversion between JSON values and the YAML of workspace.yaml. Strings are always
// quoted (or block literals for multi-line code), so "true", "1" or "null" stay strings.
namespace customcode::workspace {

std::string jsonToYaml(const boost::json::value& value);

// Throws std::runtime_error on YAML that does not parse.
boost::json::value yamlToJson(std::string_view yaml);

}  // namespace customcode::workspace
