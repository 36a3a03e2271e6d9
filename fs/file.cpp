// SPDX-License-Identifier: MIT
// The synchronous fallbacks of corio::file: a file or close op dropped without the ring closes
// its descriptor with ::close().
#include <corio/fs/file.hpp>

#include <unistd.h>

namespace corio {

void file::close_now() noexcept {
    if (m_fd >= 0)
        io_context::close_fd(m_fd);
    m_fd = -1;
}

close_op::~close_op() {
    if (!m_submitted && m_fd >= 0)
        io_context::close_fd(m_fd);
}

} // namespace corio
