// SPDX-License-Identifier: MIT
// The open_fds field of the example servers' stats lines (echo, corio-http).
#pragma once

#include <dirent.h>

namespace example {

/// Counts the process's open fds; run it on the offload pool (`corio::offload(count_open_fds{})`):
/// listing a directory is blocking work. -1 when /proc/self/fd cannot be read.
struct count_open_fds {
    long operator()() const {
        DIR* dir = ::opendir("/proc/self/fd");
        if (!dir)
            return -1;
        long n = 0;
        while (const dirent* entry = ::readdir(dir))
            n += entry->d_name[0] != '.';
        ::closedir(dir);
        return n - 1; // the directory's own fd
    }
};

} // namespace example
