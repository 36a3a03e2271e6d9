// SPDX-License-Identifier: MIT
// The "corio.fs" error category: messages that name the rule broken, and the std::errc each code
// is equivalent to.
#include <corio/fs/fs_error.hpp>

#include <string>

namespace corio {

namespace {

class fs_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "corio.fs"; }

    std::string message(int value) const override {
        switch (static_cast<fs_errc>(value)) {
        case fs_errc::misaligned_direct_io:
            return "O_DIRECT needs the buffer address, the file offset and the length to be "
                   "multiples of the file's direct-I/O alignment (use corio::aligned_buffer)";
        case fs_errc::write_made_no_progress:
            return "the kernel accepted no bytes of a non-empty write";
        case fs_errc::simulated_crash:
            return "stopped by a simulated crash (test hook)";
        }
        return "unknown corio.fs error";
    }

    std::error_condition default_error_condition(int value) const noexcept override {
        switch (static_cast<fs_errc>(value)) {
        case fs_errc::misaligned_direct_io:
            return std::errc::invalid_argument;
        case fs_errc::write_made_no_progress:
            return std::errc::io_error;
        case fs_errc::simulated_crash:
            return std::errc::operation_canceled;
        }
        return {value, *this};
    }
};

} // namespace

const std::error_category& fs_category() noexcept {
    static const fs_category_impl category;
    return category;
}

} // namespace corio
