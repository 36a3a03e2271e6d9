// SPDX-License-Identifier: MIT
// Where a looping op waits between a partial completion and its next SQE: a per-loop queue that
// is drained from the ready queue, so no SQE is ever prepared inside the CQE iteration.
#pragma once

namespace corio {
class io_context;
}

namespace corio::detail {

/// An op waiting to submit its next SQE.
struct resubmit_node {
    void (*m_resubmit)(resubmit_node*) noexcept = nullptr; // queues the next SQE (or finishes)
    resubmit_node* m_next_resubmit = nullptr;              // next waiting op
};

/// Queues `node`; its m_resubmit runs later in this turn, from `ctx`'s ready queue.
/// NOTE: io_context::get_sqe() may submit and, on EBUSY, reap. The loop hands the CQ slots back
/// before it calls an op's m_complete, so a handler may take an SQE without reaping a CQE twice
/// (EINTR restarts do, at once, so that a cancel queued later this turn still finds them); a
/// loop's next step after a partial transfer takes this detour through the ready queue.
void defer_resubmit(io_context& ctx, resubmit_node* node) noexcept;

} // namespace corio::detail
