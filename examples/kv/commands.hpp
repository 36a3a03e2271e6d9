// SPDX-License-Identifier: MIT
// Command dispatch of examples/kv: looks a command up, checks its arity, runs it against the
// store, writes the reply, and appends what must be logged (an AOF record with absolute expiry
// times, so replaying it later sets the same deadline) to the propagation buffer. Strings are
// the only type, so Redis's WRONGTYPE error cannot happen here.
#pragma once

#include "reply.hpp"
#include "store.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace kv {

/// What a command needs from the server around it (INFO sections, CONFIG GET values, a log
/// rewrite). Units and the fuzzer run without one.
class server_hooks {
public:
    virtual ~server_hooks() = default;
    /// Appends the `key:value\r\n` lines of INFO section `section` ("server", "clients", "stats",
    /// "persistence"), without the `# Title` line.
    virtual void info_section(std::string_view section, std::string& out) = 0;
    /// The value of configuration parameter `name` (lower case), or false when unknown.
    virtual bool config_value(std::string_view name, std::string& value) = 0;
    /// Every configuration parameter name CONFIG GET can report.
    virtual std::span<const std::string_view> config_names() = 0;
    /// Starts a rewrite of the append-only file; an error text (without "ERR ") when it cannot.
    virtual std::string start_rewrite() = 0;
};

/// How a command ended for the connection.
enum class exec_result : unsigned char {
    done, ///< reply written; keep reading
    quit, ///< reply written; close the connection after sending it
};

/// Runs commands against one store.
class engine {
public:
    explicit engine(store& s, server_hooks* hooks = nullptr);
    engine(const engine&) = delete;
    engine& operator=(const engine&) = delete;

    /// Runs `args` (args[0] is the command name, in any case) and appends the reply to `out`.
    exec_result execute(std::span<const std::string_view> args, reply_writer& out);

    /// Where write commands append their AOF records (null: not logged).
    void set_propagation(std::string* log) noexcept { m_log = log; }

    /// Commands run, lookups that found a key, lookups that did not (INFO stats).
    [[nodiscard]] std::uint64_t commands_processed() const noexcept { return m_commands; }
    [[nodiscard]] std::uint64_t keyspace_hits() const noexcept { return m_hits; }
    [[nodiscard]] std::uint64_t keyspace_misses() const noexcept { return m_misses; }

    [[nodiscard]] store& keyspace() noexcept { return *m_store; }

    struct command;

private:
    friend struct handlers;
    void propagate(std::span<const std::string_view> args);
    void propagate_del(std::string_view key);
    static void on_expired(void* self, std::string_view key);

    store* m_store;           // the keyspace
    server_hooks* m_hooks;    // the server around, or null
    std::string* m_log = nullptr; // AOF records go here, or nowhere
    std::uint64_t m_commands = 0; // see commands_processed()
    std::uint64_t m_hits = 0;
    std::uint64_t m_misses = 0;
};

/// Serialises the live keyspace as AOF records (SET, plus PXAT for keys with an expiry): the
/// content of a rewritten log.
void snapshot_records(const store& s, std::string& out);

} // namespace kv
