#include "common/text.hpp"

#include <cctype>
#include <charconv>
#include <cmath>

namespace customcode::text {

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

std::string toLower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string> splitList(std::string_view text, char sep) {
  std::vector<std::string> out;
  while (true) {
    auto pos = text.find(sep);
    auto piece = trim(text.substr(0, pos));
    if (!piece.empty()) out.emplace_back(piece);
    if (pos == std::string_view::npos) break;
    text.remove_prefix(pos + 1);
  }
  return out;
}

std::optional<std::string> percentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
    if (ec != std::errc{} || ptr != text.data() + i + 3) return std::nullopt;
    out.push_back(static_cast<char>(value));
    i += 2;
  }
  return out;
}

std::optional<std::uint64_t> parseByteSize(std::string_view text) {
  auto s = toLower(trim(text));
  std::size_t split = 0;
  while (split < s.size() && (std::isdigit(static_cast<unsigned char>(s[split])) || s[split] == '.')) ++split;
  if (split == 0) return std::nullopt;
  double number = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + split, number);
  if (ec != std::errc{} || ptr != s.data() + split || !std::isfinite(number)) return std::nullopt;
  auto unit = trim(std::string_view(s).substr(split));
  double scale = 1;
  if (unit.empty() || unit == "b") scale = 1;
  else if (unit == "kb" || unit == "k") scale = 1024.0;
  else if (unit == "mb" || unit == "m") scale = 1024.0 * 1024;
  else if (unit == "gb" || unit == "g") scale = 1024.0 * 1024 * 1024;
  else return std::nullopt;
  double bytes = std::floor(number * scale);
  if (bytes > 1e15) return std::nullopt;
  return static_cast<std::uint64_t>(bytes);
}

std::uint64_t fingerprint(std::string_view bytes) {
  std::uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

bool isValidUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    std::size_t extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : 9;
    if (extra == 9 || i + extra >= text.size()) return false;
    for (std::size_t k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(text[i + k]) >> 6) != 0x2) return false;
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8 (RFC 3629).
    auto next = extra > 0 ? static_cast<unsigned char>(text[i + 1]) : 0;
    if ((extra == 1 && c < 0xC2) || (c == 0xE0 && next < 0xA0) || (c == 0xED && next >= 0xA0) ||
        (c == 0xF0 && next < 0x90) || (c == 0xF4 && next >= 0x90) || c > 0xF4)
      return false;
    i += extra + 1;
  }
  return true;
}

}  // namespace customcode::text
