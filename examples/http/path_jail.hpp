// SPDX-License-Identifier: MIT
// The first half of the document-root jail: a request target becomes a relative path with no
// way up, or a refusal. The second half is the kernel's: the path is opened with openat2 and
// RESOLVE_BENEATH below the root's descriptor, so symlinks cannot lead outside either.
#pragma once

#include <string>
#include <string_view>

namespace corio_http {

/// A decoded target: `path` is relative to the root ("" for the root itself), its segments
/// joined by single '/', never starting or ending with '/', never holding "." or "..".
struct decoded_target {
    int status = 0;              ///< 0 when usable, else the status to answer (400)
    std::string path;            ///< the relative path (valid when status == 0)
    bool trailing_slash = false; ///< the target named a directory ("/docs/")
};

/// Decodes the path of an origin-form target once (the query after '?' is dropped).
/// Refused with 400 (a request no sane client sends, so no 404 probing is offered):
/// a malformed %XX escape, a NUL or other control byte, an encoded '/' (%2F) or any '\'
/// (literal or %5C), and any ".." segment after decoding. "." segments and repeated slashes
/// are dropped. A target not starting with '/' is 400 too.
[[nodiscard]] decoded_target decode_target(std::string_view target);

} // namespace corio_http
