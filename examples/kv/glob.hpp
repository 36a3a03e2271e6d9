// SPDX-License-Identifier: MIT
// Glob matching for KEYS with Redis's stringmatchlen semantics: `*`, `?`, `[abc]`, `[a-z]`,
// `[^x]`, and `\` escaping the next character. Binary safe; case sensitive.
#pragma once

#include <string_view>

namespace kv {

/// True when `text` matches `pattern`.
[[nodiscard]] bool glob_match(std::string_view pattern, std::string_view text) noexcept;

} // namespace kv
