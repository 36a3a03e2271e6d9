// SPDX-License-Identifier: MIT
// The umbrella header for examples and quick programs: every public corio header.
#pragma once

#include "runtime/channel.hpp"
#include "runtime/event.hpp"
#include "runtime/io_context.hpp"
#include "runtime/mutex.hpp"
#include "runtime/offload.hpp"
#include "runtime/result.hpp"
#include "runtime/semaphore.hpp"
#include "runtime/stop.hpp"
#include "runtime/sync_wait.hpp"
#include "runtime/task.hpp"
#include "runtime/task_scope.hpp"
#include "runtime/timer.hpp"
#include "runtime/uring_op.hpp"
#include "runtime/when_all.hpp"
#include "runtime/when_any.hpp"
