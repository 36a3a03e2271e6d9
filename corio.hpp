// SPDX-License-Identifier: MIT
// The umbrella header for examples and quick programs: every public corio header.
#pragma once

#include <corio/fs/aligned_buffer.hpp>
#include <corio/fs/file.hpp>
#include <corio/fs/fs_error.hpp>
#include <corio/fs/path_ops.hpp>
#include <corio/fs/send_file.hpp>
#include <corio/fs/whole_file.hpp>
#include <corio/net/address.hpp>
#include <corio/net/buffer_ring.hpp>
#include <corio/net/resolve.hpp>
#include <corio/net/server.hpp>
#include <corio/net/tcp_listener.hpp>
#include <corio/net/tcp_stream.hpp>
#include <corio/net/udp_socket.hpp>
#include <corio/net/unix_socket.hpp>
#include <corio/runtime/channel.hpp>
#include <corio/runtime/event.hpp>
#include <corio/runtime/io_context.hpp>
#include <corio/runtime/mutex.hpp>
#include <corio/runtime/offload.hpp>
#include <corio/runtime/result.hpp>
#include <corio/runtime/semaphore.hpp>
#include <corio/runtime/shard.hpp>
#include <corio/runtime/signal_set.hpp>
#include <corio/runtime/stop.hpp>
#include <corio/runtime/sync_wait.hpp>
#include <corio/runtime/task.hpp>
#include <corio/runtime/task_dump.hpp>
#include <corio/runtime/task_scope.hpp>
#include <corio/runtime/timer.hpp>
#include <corio/runtime/uring_op.hpp>
#include <corio/runtime/when_all.hpp>
#include <corio/runtime/when_any.hpp>

/// \namespace corio
/// The runtime (`<corio/runtime/...>`: task, io_context, sync_wait, combinators, timers,
/// cancellation, result, sync primitives) and files (`<corio/fs/...>`). Everything in a nested
/// `detail` namespace is internal.

/// \namespace corio::net
/// Sockets through the ring (`<corio/net/...>`): addresses, TCP listener and stream, provided
/// buffer rings, UDP, Unix sockets, resolve.
