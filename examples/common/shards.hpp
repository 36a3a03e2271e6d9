// SPDX-License-Identifier: MIT
// The shards of the example servers (echo, corio-http): --shards N loops, one thread and one
// io_context each, sharing nothing. Every shard runs its own net::server, on its own SO_REUSEPORT
// listener (--accept each: the kernel spreads the connections) or fed by shard 0's acceptor
// (--accept one: round robin); shard 0 alone reads the signals and fans a drain out to the
// others; a stats line is gathered shard by shard from shard 0.
#pragma once

#include <corio/corio.hpp>
#include <corio/runtime/shard.hpp>

#include "examples/common/cli.hpp"
#include "examples/common/listen.hpp"

#include <sched.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace example {

/// Who accepts the connections of a server on several shards.
enum class accept_mode {
    each, // every shard on its own SO_REUSEPORT listener: the kernel spreads the connections
    one,  // shard 0 accepts on the one listener and hands them round robin to the shards
};

/// `--shards`, `--cpus` and `--accept` as the servers parse them.
struct shard_flags {
    unsigned count = 1;    // 0: one per CPU this process may run on (or per entry of cpus)
    std::vector<int> cpus; // shard i runs on cpus[i % cpus.size()]; empty: not pinned
    accept_mode accept = accept_mode::each;
};

/// Adds `--shards`, `--cpus` and `--accept` to a server's command line.
inline void add_shard_flags(cli::parser& p, shard_flags& flags) {
    p.number("--shards", flags.count, 0, 1024, "loops (threads) serving the port; 0: one per CPU");
    p.cpu_list("--cpus", flags.cpus,
               "pin shard i to the i-th CPU of LIST (0,1 or 0-3; round robin when the list is "
               "shorter); with --shards 0, one shard per CPU listed");
    p.word(
         "--accept", {"each", "one"},
         [&flags](const std::string& v) {
             flags.accept = v == "one" ? accept_mode::one : accept_mode::each;
         },
         "with several shards: each accepts on its own SO_REUSEPORT listener (each), or shard 0 "
         "accepts and hands the connections round robin to the shards (one)")
        .default_text("each");
}

/// Empty when every CPU of `cpus` is one this process may run on, else the message naming the
/// first that is not (for cli::parser::fail: the command line is wrong, exit 2).
inline std::string check_cpus(const std::vector<int>& cpus) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        return {};
    for (int cpu : cpus)
        if (!CPU_ISSET(cpu, &allowed))
            return "--cpus: CPU " + std::to_string(cpu) + " is not one this process may run on";
    return {};
}

/// Binds `count` listeners on ADDR:PORT, the first one as bind_listener() does (port 0: an
/// ephemeral port), the others on the port the first one got. With count > 1 every one sets
/// SO_REUSEPORT, so the kernel spreads the connections over them. Empty on failure (the
/// error printed and `*status` set as bind_listener() does).
inline std::vector<corio::net::tcp_listener> bind_listeners(const char* program,
                                                            const std::string& bind,
                                                            std::uint16_t port, unsigned count,
                                                            int* status) {
    corio::net::listen_options lo;
    lo.reuse_port = count > 1;
    std::vector<corio::net::tcp_listener> listeners;
    for (unsigned i = 0; i < count; ++i) {
        std::optional<corio::net::tcp_listener> l = bind_listener(program, bind, port, status, lo);
        if (!l)
            return {};
        if (i == 0)
            port = l->local_address().value().port();
        listeners.push_back(std::move(*l));
    }
    return listeners;
}

/// What the shards of a server share: one slot per shard, each touched only on its own shard's
/// thread (the posts and on_shard() calls that reach it run there), and the group.
class shard_link {
public:
    /// One shard's view.
    struct slot {
        corio::net::server* server = nullptr; // while its run() runs
        bool drain_requested = false; // another shard fanned a drain out (maybe before `server`)
        int drain_signo = 0;          // the signal that started that drain
        corio::event drained;         // set once the server drained (the final stats wait)
        std::vector<int> early;       // connections handed over before `server` existed
        slot() = default;
        slot(const slot&) = delete;
        slot& operator=(const slot&) = delete;
        ~slot() {
            for (int fd : early) // the group stopped before this shard's server existed
                corio::io_context::close_fd(fd);
        }
    };

    shard_link(corio::shard_group& group, accept_mode accept)
        : m_group(group), m_accept(accept), m_slots(group.size()) {
        for (auto& s : m_slots)
            s = std::make_unique<slot>();
    }

    [[nodiscard]] unsigned size() const noexcept { return m_group.size(); }
    /// Listeners to bind: one per shard, or the acceptor's only.
    [[nodiscard]] unsigned listener_count() const noexcept {
        return m_accept == accept_mode::one ? 1 : size();
    }

    /// On shard k: its server. With accept_mode::each, on listener k; with accept_mode::one,
    /// shard 0's on the listener, handing every connection but its own share to the others,
    /// whose servers have no listener and run what they are handed (net::server::adopt).
    std::unique_ptr<corio::net::server>
    make_server(unsigned k, std::vector<corio::net::tcp_listener>& listeners,
                corio::net::server::handler_type handler, corio::net::server_options so) {
        if (m_accept == accept_mode::each)
            return std::make_unique<corio::net::server>(listeners[k], std::move(handler),
                                                        std::move(so));
        if (k != 0)
            return std::make_unique<corio::net::server>(std::move(handler), std::move(so));
        so.hand_off = [this](corio::net::tcp_stream& s) { return hand_off(s); };
        return std::make_unique<corio::net::server>(listeners[0], std::move(handler),
                                                    std::move(so));
    }
    [[nodiscard]] slot& at(unsigned k) noexcept { return *m_slots[k]; }

    /// On shard k: its server exists (and drains at once when a drain already reached it).
    void attach(unsigned k, corio::net::server* srv) {
        slot& s = at(k);
        s.server = srv;
        for (int fd : s.early)
            srv->adopt(corio::net::tcp_stream(fd)); // closed there if a drain came first
        s.early.clear();
        if (s.drain_requested)
            srv->drain();
    }
    /// On shard k: its server's run() returned.
    void detach(unsigned k) noexcept {
        at(k).server = nullptr;
        at(k).drained.set();
    }

    /// On shard k, from its server's on_drain: the signal to report (the one that reached shard
    /// 0 when the drain came from there). A drain that began on shard k itself (a signal on
    /// shard 0, a broken listener anywhere) is fanned out to every other shard first.
    int on_drain(unsigned k, int signo) {
        slot& s = at(k);
        if (s.drain_requested)
            return s.drain_signo;
        for (unsigned other = 0; other < size(); ++other) {
            if (other == k)
                continue;
            slot* target = &at(other);
            m_group.post(other, [target, signo] {
                target->drain_requested = true;
                target->drain_signo = signo;
                if (target->server)
                    target->server->drain();
            });
        }
        return signo;
    }

private:
    /// On shard 0 (accept_mode::one): the next shard in turn gets `s` as a plain fd through its
    /// inbox; shard 0's own turn runs here (false).
    bool hand_off(corio::net::tcp_stream& s) {
        unsigned target = m_next_target;
        m_next_target = (m_next_target + 1) % size();
        if (target == 0)
            return false;
        slot* to = &at(target);
        int fd = s.release();
        bool posted = m_group.post(target, [to, fd] {
            // Shard 0 may accept before this shard's server exists: it then takes them at
            // attach(). After its run() (server null again, drained) the stream just closes.
            if (!to->server && !to->drained.is_set() && !to->drain_requested) {
                to->early.push_back(fd);
                return;
            }
            corio::net::tcp_stream stream(fd);
            if (to->server)
                to->server->adopt(std::move(stream)); // closed there when it drains
        });
        if (!posted)
            corio::io_context::close_fd(fd); // the group is stopping
        return true;
    }

    corio::shard_group& m_group;
    accept_mode m_accept;
    unsigned m_next_target = 0;                 // shard 0's round robin (accept_mode::one)
    std::vector<std::unique_ptr<slot>> m_slots; // stable addresses: posted functions hold them
};

/// Blocks until shard k's server has drained (for the final stats line).
inline corio::task<void> wait_drained(shard_link::slot* s) {
    auto waiting = s->drained.wait();
    corio::result<void> done = co_await waiting;
    (void)done;
}

} // namespace example
