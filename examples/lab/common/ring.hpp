// SPDX-License-Identifier: MIT
// Raw liburing set-up shared by the two uring-style lab servers (no corio): the ring flags corio
// uses, tried from the newest down, and get_sqe() that submits when the SQ is full.
#pragma once

#include "lab.hpp"

#include <liburing.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace lab {

/// Sets `ring` up like corio's io_context (runtime/io_context.cpp, k_flag_attempts): each set of
/// flags in turn while the kernel answers EINVAL, then registers the ring fd. Exits 1 on failure.
inline void setup_ring(io_uring& ring, const options& opt) {
    constexpr unsigned attempts[] = {
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
            IORING_SETUP_TASKRUN_FLAG,                                                   // 6.1
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, // 5.19
        IORING_SETUP_SUBMIT_ALL,                                                         // 5.18
        0,
    };
    int rc = -EINVAL;
    for (unsigned flags : attempts) {
        io_uring_params params{};
        params.flags = flags;
        if (opt.cq_entries != 0) {
            params.flags |= IORING_SETUP_CQSIZE;
            params.cq_entries = opt.cq_entries;
        }
        rc = io_uring_queue_init_params(opt.sq_entries, &ring, &params);
        if (rc != -EINVAL)
            break;
    }
    if (rc < 0) {
        std::fprintf(stderr, "io_uring setup: %s\n", std::strerror(-rc));
        std::exit(1);
    }
    (void)io_uring_register_ring_fd(&ring); // saves an fget/fput per enter; optional
}

/// An SQE, submitting what is queued first when the SQ is full (never null).
inline io_uring_sqe* get_sqe(io_uring& ring) {
    for (;;) {
        if (io_uring_sqe* sqe = io_uring_get_sqe(&ring))
            return sqe;
        io_uring_submit(&ring);
    }
}

} // namespace lab
