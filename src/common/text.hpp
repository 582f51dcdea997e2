#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Small text helpers shared by config, http and workspace.
namespace customcode::text {

// Splits on `sep`, trims spaces of each piece and drops empty pieces.
std::vector<std::string> splitList(std::string_view text, char sep = ',');

std::string_view trim(std::string_view text);
std::string toLower(std::string_view text);

// Decodes %XX escapes; nullopt on a malformed escape. '+' stays '+' (path semantics).
std::optional<std::string> percentDecode(std::string_view text);

// Parses "1mb", "10kb", "512", "2 MB", "1.5mb" into bytes (1kb = 1024 bytes, as bodyParser).
std::optional<std::uint64_t> parseByteSize(std::string_view text);

// 64-bit FNV-1a: a stable fingerprint for change detection, not a security hash.
std::uint64_t fingerprint(std::string_view bytes);

bool isValidUtf8(std::string_view text);

}  // namespace customcode::text
