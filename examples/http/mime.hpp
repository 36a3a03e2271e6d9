// SPDX-License-Identifier: MIT
// Content-Type by file name extension.
#pragma once

#include <string_view>

namespace corio_http {

/// The media type for `path`'s extension (ASCII case ignored); application/octet-stream when
/// the extension is unknown or missing. Text types carry "; charset=utf-8".
[[nodiscard]] std::string_view mime_type(std::string_view path) noexcept;

} // namespace corio_http
