// SPDX-License-Identifier: MIT
// A pipe whose ends close themselves: the simplest fd on which a read stays pending.
#pragma once

#include <unistd.h>

#include <stdexcept>
#include <utility>

namespace corio::test {

struct pipe_pair {
    int read_end = -1;
    int write_end = -1;

    pipe_pair() {
        int fds[2];
        if (::pipe(fds) != 0)
            throw std::runtime_error("pipe() failed");
        read_end = fds[0];
        write_end = fds[1];
    }
    pipe_pair(const pipe_pair&) = delete;
    pipe_pair& operator=(const pipe_pair&) = delete;
    ~pipe_pair() {
        ::close(read_end);
        ::close(write_end);
    }
};

} // namespace corio::test
