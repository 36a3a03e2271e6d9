// SPDX-License-Identifier: MIT
// The signals of the example servers (echo, corio-http, corio-kv), one behaviour for all three,
// implemented by net::server (server_options::signals, exit_on_second_signal): SIGUSR1 asks for a
// stats line, the first SIGINT/SIGTERM starts the graceful drain, and a second one ends the
// process at once (Ctrl-C twice means "now") with status 128+N.
#pragma once

namespace stop_signals {

/// The lines of each server's --help that say so.
inline constexpr const char* k_usage =
    "  SIGUSR1 prints a stats line. SIGINT/SIGTERM stop accepting, drain and exit 0;\n"
    "  a second SIGINT/SIGTERM exits at once without draining, status 128+N (130, 143).\n";

} // namespace stop_signals
