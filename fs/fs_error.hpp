// SPDX-License-Identifier: MIT
// The fs module's own error codes: the cases where corio, not the kernel, refuses or ends an
// operation. Each code says why in its message and maps to the closest std::errc where one fits.
#pragma once

#include <system_error>
#include <type_traits>

namespace corio {

/// Errors the fs module reports itself (everything else is the kernel's errno, system category).
enum class fs_errc {
    /// An O_DIRECT file was given a buffer address, file offset or length that is not a multiple
    /// of its direct-I/O alignment. Refused before submission; compares equal to
    /// std::errc::invalid_argument (the EINVAL the kernel would return).
    misaligned_direct_io = 1,
    // 2 was unexpected_eof: read_exact_at now reports end of file as io_errc::eof, like
    // recv_exact (one end-of-stream error for net and fs; see runtime/result.hpp).
    /// A write made no progress (the kernel returned 0 for a non-empty write). Compares equal to
    /// std::errc::io_error.
    write_made_no_progress = 3,
    /// A simulated crash requested through a test hook (write_file_options::crash_before_rename)
    /// stopped the operation on purpose. Compares equal to std::errc::operation_canceled.
    simulated_crash,
};

/// The category of fs_errc codes ("corio.fs").
[[nodiscard]] const std::error_category& fs_category() noexcept;

/// Makes `fs_errc` usable wherever a std::error_code is expected.
[[nodiscard]] inline std::error_code make_error_code(fs_errc e) noexcept {
    return {static_cast<int>(e), fs_category()};
}

} // namespace corio

template <>
struct std::is_error_code_enum<corio::fs_errc> : std::true_type {};
