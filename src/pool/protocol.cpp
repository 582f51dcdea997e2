#include "pool/protocol.hpp"

namespace customcode::pool {

bool LineSplitter::feed(std::string_view bytes) {
  // Drop what next() already handed out before growing the buffer.
  if (consumed_ > 0) {
    buffer_.erase(0, consumed_);
    lineStart_ -= consumed_;
    consumed_ = 0;
  }
  auto scanFrom = buffer_.size();
  buffer_.append(bytes);
  for (auto i = buffer_.find('\n', scanFrom); i != std::string::npos; i = buffer_.find('\n', i + 1)) {
    if (i - lineStart_ > maxLine_) return false;
    lineStart_ = i + 1;
  }
  return buffer_.size() - lineStart_ <= maxLine_;
}

bool LineSplitter::next(std::string_view& line) {
  auto end = buffer_.find('\n', consumed_);
  if (end == std::string::npos) return false;
  line = std::string_view(buffer_).substr(consumed_, end - consumed_);
  consumed_ = end + 1;
  return true;
}

std::string requestFrame(std::string_view type, std::uint64_t id, std::string_view members) {
  std::string frame;
  frame.reserve(32 + type.size() + members.size());
  frame += "{\"type\":\"";
  frame += type;
  frame += "\",\"id\":";
  frame += std::to_string(id);
  if (!members.empty()) {
    frame += ',';
    frame += members;
  }
  frame += "}\n";
  return frame;
}

}  // namespace customcode::pool
