// SPDX-License-Identifier: MIT
// Command dispatch (see commands.hpp). Replies and error texts follow Redis 7.0 (t_string.c,
// expire.c, db.c, server.c), checked against redis-server 7.0.15 with redis-cli.
#include "commands.hpp"

#include "glob.hpp"
#include "resp_parser.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <climits>
#include <cstring>
#include <unordered_map>

namespace kv {

namespace {

using args_t = std::span<const std::string_view>;

constexpr std::string_view k_not_integer = "ERR value is not an integer or out of range";
constexpr std::string_view k_syntax = "ERR syntax error";

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i];
        if (x >= 'A' && x <= 'Z')
            x = static_cast<char>(x - 'A' + 'a');
        char y = b[i];
        if (y >= 'A' && y <= 'Z')
            y = static_cast<char>(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

std::string_view int_text(std::int64_t v, char (&buf)[24]) noexcept {
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    (void)ec;
    return {buf, static_cast<std::size_t>(end - buf)};
}

/// a + b, or false on overflow.
bool add_overflows(std::int64_t a, std::int64_t b, std::int64_t& out) noexcept {
    return __builtin_add_overflow(a, b, &out);
}

} // namespace

struct engine::command {
    std::string_view name;  // lower case
    int arity;              // > 0: exactly; < 0: at least -arity
    exec_result (*run)(engine&, args_t, reply_writer&);
    std::string_view flags; // COMMAND's flags, space separated
    int first_key, last_key, step;
};

struct handlers {
    static exec_result ping(engine&, args_t a, reply_writer& w) {
        if (a.size() > 2) {
            w.error("ERR wrong number of arguments for 'ping' command");
            return exec_result::done;
        }
        if (a.size() == 1)
            w.simple("PONG");
        else
            w.bulk(a[1]);
        return exec_result::done;
    }
    static exec_result echo(engine&, args_t a, reply_writer& w) {
        w.bulk(a[1]);
        return exec_result::done;
    }
    static exec_result quit(engine&, args_t, reply_writer& w) {
        w.ok();
        return exec_result::quit;
    }
    static exec_result select(engine&, args_t a, reply_writer& w) {
        std::int64_t db = 0;
        if (!parse_int64(a[1], db))
            w.error(k_not_integer);
        else if (db != 0)
            w.error("ERR DB index is out of range");
        else
            w.ok();
        return exec_result::done;
    }
    static exec_result get(engine& e, args_t a, reply_writer& w) {
        store::node* n = e.m_store->find(a[1]);
        if (!n) {
            ++e.m_misses;
            w.null();
        } else {
            ++e.m_hits;
            w.bulk(n->second.value);
        }
        return exec_result::done;
    }
    static exec_result type(engine& e, args_t a, reply_writer& w) {
        w.simple(e.m_store->find(a[1]) ? "string" : "none");
        return exec_result::done;
    }
    static exec_result strlen(engine& e, args_t a, reply_writer& w) {
        store::node* n = e.m_store->find(a[1]);
        w.integer(n ? static_cast<std::int64_t>(n->second.value.size()) : 0);
        return exec_result::done;
    }
    static exec_result append(engine& e, args_t a, reply_writer& w) {
        bool created = false;
        store::node& n = e.m_store->upsert(a[1], created);
        n.second.value.append(a[2]);
        w.integer(static_cast<std::int64_t>(n.second.value.size()));
        e.propagate(a);
        return exec_result::done;
    }

    static exec_result set(engine& e, args_t a, reply_writer& w) {
        enum : unsigned { nx = 1, xx = 2, get_flag = 4, keepttl = 8, ex = 16, px = 32, exat = 64,
                          pxat = 128 };
        unsigned flags = 0;
        std::string_view expire_arg;
        for (std::size_t j = 3; j < a.size(); ++j) {
            std::string_view opt = a[j];
            bool has_next = j + 1 < a.size();
            unsigned time_flags = ex | px | exat | pxat;
            if (iequals(opt, "nx") && !(flags & xx)) {
                flags |= nx;
            } else if (iequals(opt, "xx") && !(flags & nx)) {
                flags |= xx;
            } else if (iequals(opt, "get")) {
                flags |= get_flag;
            } else if (iequals(opt, "keepttl") && !(flags & time_flags)) {
                flags |= keepttl;
            } else if (has_next && !(flags & keepttl) &&
                       ((iequals(opt, "ex") && !(flags & (time_flags & ~ex))) ||
                        (iequals(opt, "px") && !(flags & (time_flags & ~px))) ||
                        (iequals(opt, "exat") && !(flags & (time_flags & ~exat))) ||
                        (iequals(opt, "pxat") && !(flags & (time_flags & ~pxat))))) {
                flags |= iequals(opt, "ex")   ? ex
                         : iequals(opt, "px") ? px
                         : iequals(opt, "exat") ? exat
                                                : pxat;
                expire_arg = a[++j];
            } else {
                w.error(k_syntax);
                return exec_result::done;
            }
        }
        std::int64_t expire_at = 0;
        if (flags & (ex | px | exat | pxat)) {
            std::int64_t v = 0;
            if (!parse_int64(expire_arg, v)) {
                w.error(k_not_integer);
                return exec_result::done;
            }
            bool seconds = flags & (ex | exat);
            if (v <= 0 || (seconds && v > LLONG_MAX / 1000)) {
                w.error("ERR invalid expire time in 'set' command");
                return exec_result::done;
            }
            if (seconds)
                v *= 1000;
            if ((flags & (ex | px)) && add_overflows(v, e.m_store->now(), v)) {
                w.error("ERR invalid expire time in 'set' command");
                return exec_result::done;
            }
            expire_at = v;
        }
        store& s = *e.m_store;
        store::node* found = s.find(a[1]);
        if (found)
            ++e.m_hits;
        if (((flags & nx) && found) || ((flags & xx) && !found)) {
            if ((flags & get_flag) && found)
                w.bulk(found->second.value);
            else
                w.null();
            return exec_result::done;
        }
        if (flags & get_flag) {
            if (found)
                w.bulk(found->second.value);
            else
                w.null();
        }
        bool created = false;
        store::node& n = found ? *found : s.upsert(a[1], created);
        n.second.value.assign(a[2]);
        if (!(flags & keepttl))
            s.set_expire(n, expire_at);
        if (!(flags & get_flag))
            w.ok();
        if (e.m_log) {
            char buf[24];
            if (expire_at != 0) {
                std::array<std::string_view, 5> rec{"SET", a[1], a[2], "PXAT",
                                                    int_text(expire_at, buf)};
                e.propagate(rec);
            } else if ((flags & keepttl) && n.second.expire_at != 0) {
                std::array<std::string_view, 5> rec{"SET", a[1], a[2], "PXAT",
                                                    int_text(n.second.expire_at, buf)};
                e.propagate(rec);
            } else {
                std::array<std::string_view, 3> rec{"SET", a[1], a[2]};
                e.propagate(rec);
            }
        }
        return exec_result::done;
    }

    static exec_result incr_by(engine& e, args_t a, reply_writer& w, std::int64_t by) {
        store& s = *e.m_store;
        store::node* n = s.find(a[1]);
        std::int64_t value = 0;
        if (n && !parse_int64(n->second.value, value)) {
            w.error(k_not_integer);
            return exec_result::done;
        }
        if ((by < 0 && value < 0 && by < LLONG_MIN - value) ||
            (by > 0 && value > 0 && by > LLONG_MAX - value)) {
            w.error("ERR increment or decrement would overflow");
            return exec_result::done;
        }
        value += by;
        bool created = false;
        store::node& target = n ? *n : s.upsert(a[1], created);
        char buf[24];
        target.second.value.assign(int_text(value, buf)); // keeps the TTL, as Redis does
        w.integer(value);
        char by_buf[24];
        std::array<std::string_view, 3> rec{"INCRBY", a[1], int_text(by, by_buf)};
        e.propagate(rec);
        return exec_result::done;
    }
    static exec_result incr(engine& e, args_t a, reply_writer& w) { return incr_by(e, a, w, 1); }
    static exec_result decr(engine& e, args_t a, reply_writer& w) { return incr_by(e, a, w, -1); }
    static exec_result incrby(engine& e, args_t a, reply_writer& w) {
        std::int64_t by = 0;
        if (!parse_int64(a[2], by)) {
            w.error(k_not_integer);
            return exec_result::done;
        }
        return incr_by(e, a, w, by);
    }
    static exec_result decrby(engine& e, args_t a, reply_writer& w) {
        std::int64_t by = 0;
        if (!parse_int64(a[2], by)) {
            w.error(k_not_integer);
            return exec_result::done;
        }
        if (by == LLONG_MIN) {
            w.error("ERR decrement would overflow");
            return exec_result::done;
        }
        return incr_by(e, a, w, -by);
    }

    static exec_result del(engine& e, args_t a, reply_writer& w) {
        std::int64_t n = 0;
        for (std::size_t i = 1; i < a.size(); ++i)
            n += e.m_store->erase(a[i]);
        w.integer(n);
        if (n > 0)
            e.propagate(a);
        return exec_result::done;
    }
    static exec_result exists(engine& e, args_t a, reply_writer& w) {
        std::int64_t n = 0;
        for (std::size_t i = 1; i < a.size(); ++i)
            n += e.m_store->find(a[i]) != nullptr;
        w.integer(n);
        return exec_result::done;
    }
    static exec_result mget(engine& e, args_t a, reply_writer& w) {
        w.array(a.size() - 1);
        for (std::size_t i = 1; i < a.size(); ++i) {
            store::node* n = e.m_store->find(a[i]);
            if (n) {
                ++e.m_hits;
                w.bulk(n->second.value);
            } else {
                ++e.m_misses;
                w.null();
            }
        }
        return exec_result::done;
    }
    static exec_result mset(engine& e, args_t a, reply_writer& w) {
        if (a.size() % 2 == 0) {
            w.error("ERR wrong number of arguments for 'mset' command");
            return exec_result::done;
        }
        for (std::size_t i = 1; i < a.size(); i += 2) {
            bool created = false;
            store::node& n = e.m_store->upsert(a[i], created);
            n.second.value.assign(a[i + 1]);
            e.m_store->set_expire(n, 0);
        }
        w.ok();
        e.propagate(a);
        return exec_result::done;
    }

    /// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (expire.c expireGenericCommand).
    static exec_result expire_generic(engine& e, args_t a, reply_writer& w, bool seconds,
                                      bool absolute, std::string_view name) {
        enum : unsigned { nx = 1, xx = 2, gt = 4, lt = 8 };
        unsigned flags = 0;
        for (std::size_t j = 3; j < a.size(); ++j) {
            if (iequals(a[j], "nx"))
                flags |= nx;
            else if (iequals(a[j], "xx"))
                flags |= xx;
            else if (iequals(a[j], "gt"))
                flags |= gt;
            else if (iequals(a[j], "lt"))
                flags |= lt;
            else {
                std::string text = "ERR Unsupported option ";
                text.append(a[j]);
                w.error(text);
                return exec_result::done;
            }
        }
        if ((flags & nx) && (flags & (xx | gt | lt))) {
            w.error("ERR NX and XX, GT or LT options at the same time are not compatible");
            return exec_result::done;
        }
        if ((flags & gt) && (flags & lt)) {
            w.error("ERR GT and LT options at the same time are not compatible");
            return exec_result::done;
        }
        std::int64_t when = 0;
        if (!parse_int64(a[2], when)) {
            w.error(k_not_integer);
            return exec_result::done;
        }
        auto invalid = [&w, name] {
            std::string text = "ERR invalid expire time in '";
            text.append(name);
            text.append("' command");
            w.error(text);
            return exec_result::done;
        };
        if (seconds) {
            if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000)
                return invalid();
            when *= 1000;
        }
        store& s = *e.m_store;
        std::int64_t now = s.now();
        if (!absolute && add_overflows(when, now, when))
            return invalid();
        store::node* n = s.find(a[1]);
        if (!n) {
            w.integer(0);
            return exec_result::done;
        }
        std::int64_t current = n->second.expire_at; // 0: none (an infinite TTL)
        if (((flags & nx) && current != 0) || ((flags & xx) && current == 0) ||
            ((flags & gt) && (current == 0 || when <= current)) ||
            ((flags & lt) && current != 0 && when >= current)) {
            w.integer(0);
            return exec_result::done;
        }
        if (when <= now && !s.is_loading()) {
            std::string key(a[1]);
            s.erase(key);
            e.propagate_del(key);
            w.integer(1);
            return exec_result::done;
        }
        s.set_expire(*n, when);
        w.integer(1);
        char buf[24];
        std::array<std::string_view, 3> rec{"PEXPIREAT", a[1], int_text(when, buf)};
        e.propagate(rec);
        return exec_result::done;
    }
    static exec_result expire(engine& e, args_t a, reply_writer& w) {
        return expire_generic(e, a, w, true, false, "expire");
    }
    static exec_result pexpire(engine& e, args_t a, reply_writer& w) {
        return expire_generic(e, a, w, false, false, "pexpire");
    }
    static exec_result expireat(engine& e, args_t a, reply_writer& w) {
        return expire_generic(e, a, w, true, true, "expireat");
    }
    static exec_result pexpireat(engine& e, args_t a, reply_writer& w) {
        return expire_generic(e, a, w, false, true, "pexpireat");
    }
    static exec_result ttl_generic(engine& e, args_t a, reply_writer& w, bool seconds) {
        store::node* n = e.m_store->find(a[1]);
        if (!n) {
            w.integer(-2);
            return exec_result::done;
        }
        if (n->second.expire_at == 0) {
            w.integer(-1);
            return exec_result::done;
        }
        std::int64_t left = n->second.expire_at - e.m_store->now();
        if (left < 0)
            left = 0;
        w.integer(seconds ? (left + 500) / 1000 : left);
        return exec_result::done;
    }
    static exec_result ttl(engine& e, args_t a, reply_writer& w) { return ttl_generic(e, a, w, true); }
    static exec_result pttl(engine& e, args_t a, reply_writer& w) {
        return ttl_generic(e, a, w, false);
    }
    static exec_result persist(engine& e, args_t a, reply_writer& w) {
        store::node* n = e.m_store->find(a[1]);
        if (!n || n->second.expire_at == 0) {
            w.integer(0);
            return exec_result::done;
        }
        e.m_store->set_expire(*n, 0);
        w.integer(1);
        e.propagate(a);
        return exec_result::done;
    }
    static exec_result dbsize(engine& e, args_t, reply_writer& w) {
        w.integer(static_cast<std::int64_t>(e.m_store->size()));
        return exec_result::done;
    }
    static exec_result flushall(engine& e, args_t a, reply_writer& w) {
        if (a.size() > 2 || (a.size() == 2 && !iequals(a[1], "async") && !iequals(a[1], "sync"))) {
            w.error(k_syntax);
            return exec_result::done;
        }
        e.m_store->clear();
        w.ok();
        std::array<std::string_view, 1> rec{"FLUSHALL"};
        e.propagate(rec);
        return exec_result::done;
    }
    static exec_result keys(engine& e, args_t a, reply_writer& w) {
        // The count comes first in RESP: collect the matches, then write them.
        std::vector<const std::string*> matches;
        bool all = a[1] == "*";
        for (const store::node& n : e.m_store->nodes()) {
            if (e.m_store->is_expired(n))
                continue;
            if (all || glob_match(a[1], n.first))
                matches.push_back(&n.first);
        }
        w.array(matches.size());
        for (const std::string* k : matches)
            w.bulk(*k);
        return exec_result::done;
    }
    static exec_result info(engine& e, args_t a, reply_writer& w);
    static exec_result config(engine& e, args_t a, reply_writer& w);
    static exec_result command_cmd(engine& e, args_t a, reply_writer& w);
    static exec_result bgrewriteaof(engine& e, args_t, reply_writer& w) {
        std::string err = e.m_hooks ? e.m_hooks->start_rewrite() : "AOF is not available";
        if (err.empty())
            w.simple("Background append only file rewriting started");
        else
            w.error("ERR " + err);
        return exec_result::done;
    }
};

namespace {

const engine::command k_commands[] = {
    {"append", 3, &handlers::append, "write denyoom", 1, 1, 1},
    {"bgrewriteaof", 1, &handlers::bgrewriteaof, "admin noscript", 0, 0, 0},
    {"command", -1, &handlers::command_cmd, "loading stale", 0, 0, 0},
    {"config", -2, &handlers::config, "admin noscript loading stale", 0, 0, 0},
    {"dbsize", 1, &handlers::dbsize, "readonly fast", 0, 0, 0},
    {"decr", 2, &handlers::decr, "write denyoom fast", 1, 1, 1},
    {"decrby", 3, &handlers::decrby, "write denyoom fast", 1, 1, 1},
    {"del", -2, &handlers::del, "write", 1, -1, 1},
    {"echo", 2, &handlers::echo, "fast", 0, 0, 0},
    {"exists", -2, &handlers::exists, "readonly fast", 1, -1, 1},
    {"expire", -3, &handlers::expire, "write fast", 1, 1, 1},
    {"expireat", -3, &handlers::expireat, "write fast", 1, 1, 1},
    {"flushall", -1, &handlers::flushall, "write", 0, 0, 0},
    {"get", 2, &handlers::get, "readonly fast", 1, 1, 1},
    {"incr", 2, &handlers::incr, "write denyoom fast", 1, 1, 1},
    {"incrby", 3, &handlers::incrby, "write denyoom fast", 1, 1, 1},
    {"info", -1, &handlers::info, "loading stale", 0, 0, 0},
    {"keys", 2, &handlers::keys, "readonly", 0, 0, 0},
    {"mget", -2, &handlers::mget, "readonly fast", 1, -1, 1},
    {"mset", -3, &handlers::mset, "write denyoom", 1, -1, 2},
    {"persist", 2, &handlers::persist, "write fast", 1, 1, 1},
    {"pexpire", -3, &handlers::pexpire, "write fast", 1, 1, 1},
    {"pexpireat", -3, &handlers::pexpireat, "write fast", 1, 1, 1},
    {"ping", -1, &handlers::ping, "fast", 0, 0, 0},
    {"pttl", 2, &handlers::pttl, "readonly fast", 1, 1, 1},
    {"quit", -1, &handlers::quit, "fast", 0, 0, 0},
    {"select", 2, &handlers::select, "loading stale fast", 0, 0, 0},
    {"set", -3, &handlers::set, "write denyoom", 1, 1, 1},
    {"strlen", 2, &handlers::strlen, "readonly fast", 1, 1, 1},
    {"ttl", 2, &handlers::ttl, "readonly fast", 1, 1, 1},
    {"type", 2, &handlers::type, "readonly fast", 1, 1, 1},
    {"unlink", -2, &handlers::del, "write fast", 1, -1, 1},
};

const engine::command* lookup(std::string_view name) {
    static const std::unordered_map<std::string_view, const engine::command*> table = [] {
        std::unordered_map<std::string_view, const engine::command*> t;
        for (const engine::command& c : k_commands)
            t.emplace(c.name, &c);
        return t;
    }();
    char lower[24];
    if (name.size() >= sizeof lower)
        return nullptr;
    for (std::size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        lower[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    auto it = table.find(std::string_view(lower, name.size()));
    return it == table.end() ? nullptr : it->second;
}

/// Like printf's "%.*s" of a C string: stops at a NUL byte.
std::string_view c_string(std::string_view s, std::size_t max) noexcept {
    std::size_t nul = s.find('\0');
    if (nul != std::string_view::npos)
        s = s.substr(0, nul);
    return s.substr(0, std::min(max, s.size()));
}

void write_command_info(reply_writer& w, const engine::command& c) {
    w.array(10);
    w.bulk(c.name);
    w.integer(c.arity);
    std::size_t nflags = 0;
    for (std::string_view f = c.flags; !f.empty();) {
        std::size_t sp = f.find(' ');
        ++nflags;
        f = sp == std::string_view::npos ? std::string_view{} : f.substr(sp + 1);
    }
    w.array(nflags);
    for (std::string_view f = c.flags; !f.empty();) {
        std::size_t sp = f.find(' ');
        w.simple(f.substr(0, sp));
        f = sp == std::string_view::npos ? std::string_view{} : f.substr(sp + 1);
    }
    w.integer(c.first_key);
    w.integer(c.last_key);
    w.integer(c.step);
    w.array(0); // ACL categories
    w.array(0); // tips
    w.array(0); // key specs
    w.array(0); // subcommands
}

} // namespace

exec_result handlers::command_cmd(engine&, args_t a, reply_writer& w) {
    if (a.size() == 1) {
        w.array(std::size(k_commands));
        for (const engine::command& c : k_commands)
            write_command_info(w, c);
        return exec_result::done;
    }
    if (iequals(a[1], "count") && a.size() == 2) {
        w.integer(static_cast<std::int64_t>(std::size(k_commands)));
    } else if (iequals(a[1], "info")) {
        w.array(a.size() - 2);
        for (std::size_t i = 2; i < a.size(); ++i) {
            const engine::command* c = lookup(a[i]);
            if (c)
                write_command_info(w, *c);
            else
                w.null();
        }
    } else if (iequals(a[1], "docs")) {
        w.array(0); // no documentation: redis-cli then goes without hints
    } else {
        std::string text = "ERR unknown subcommand '";
        text.append(c_string(a[1], 128));
        text.append("'. Try COMMAND HELP.");
        w.error(text);
    }
    return exec_result::done;
}

exec_result handlers::config(engine& e, args_t a, reply_writer& w) {
    if (iequals(a[1], "get")) {
        if (a.size() < 3) {
            w.error("ERR wrong number of arguments for 'config|get' command");
            return exec_result::done;
        }
        std::vector<std::pair<std::string_view, std::string>> found;
        if (e.m_hooks) {
            for (std::string_view name : e.m_hooks->config_names()) {
                for (std::size_t i = 2; i < a.size(); ++i) {
                    std::string pattern(a[i]);
                    for (char& c : pattern)
                        c = static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
                    if (glob_match(pattern, name)) {
                        std::string value;
                        if (e.m_hooks->config_value(name, value))
                            found.emplace_back(name, std::move(value));
                        break;
                    }
                }
            }
        }
        w.array(found.size() * 2);
        for (const auto& [name, value] : found) {
            w.bulk(name);
            w.bulk(value);
        }
    } else if (iequals(a[1], "resetstat") && a.size() == 2) {
        w.ok();
    } else if (iequals(a[1], "set")) {
        w.error("ERR CONFIG SET is not supported: use the command line");
    } else {
        std::string text = "ERR unknown subcommand '";
        text.append(c_string(a[1], 128));
        text.append("'. Try CONFIG HELP.");
        w.error(text);
    }
    return exec_result::done;
}

exec_result handlers::info(engine& e, args_t a, reply_writer& w) {
    static constexpr std::string_view sections[] = {"server", "clients", "stats", "persistence",
                                                    "keyspace"};
    static constexpr std::string_view titles[] = {"Server", "Clients", "Stats", "Persistence",
                                                  "Keyspace"};
    std::string text;
    for (std::size_t s = 0; s < std::size(sections); ++s) {
        bool wanted = a.size() == 1;
        for (std::size_t i = 1; i < a.size(); ++i)
            wanted = wanted || iequals(a[i], sections[s]) || iequals(a[i], "all") ||
                     iequals(a[i], "default") || iequals(a[i], "everything");
        if (!wanted)
            continue;
        if (!text.empty())
            text.append("\r\n");
        text.append("# ").append(titles[s]).append("\r\n");
        if (sections[s] == "keyspace") {
            if (e.m_store->size() > 0) {
                text.append("db0:keys=").append(std::to_string(e.m_store->size()));
                text.append(",expires=").append(std::to_string(e.m_store->volatile_count()));
                text.append(",avg_ttl=0\r\n");
            }
            continue;
        }
        if (sections[s] == "stats") {
            text.append("total_commands_processed:").append(std::to_string(e.m_commands));
            text.append("\r\nexpired_keys:").append(std::to_string(e.m_store->expired_keys()));
            text.append("\r\nkeyspace_hits:").append(std::to_string(e.m_hits));
            text.append("\r\nkeyspace_misses:").append(std::to_string(e.m_misses));
            text.append("\r\n");
        }
        if (e.m_hooks)
            e.m_hooks->info_section(sections[s], text);
    }
    w.bulk(text);
    return exec_result::done;
}

engine::engine(store& s, server_hooks* hooks) : m_store(&s), m_hooks(hooks) {
    s.set_expire_listener(&engine::on_expired, this);
}

void engine::on_expired(void* self, std::string_view key) {
    static_cast<engine*>(self)->propagate_del(key);
}

void engine::propagate(std::span<const std::string_view> args) {
    if (m_log)
        encode_command(*m_log, args);
}

void engine::propagate_del(std::string_view key) {
    std::array<std::string_view, 2> rec{"DEL", key};
    propagate(rec);
}

exec_result engine::execute(std::span<const std::string_view> args, reply_writer& out) {
    if (args.empty())
        return exec_result::done;
    ++m_commands;
    const command* c = lookup(args[0]);
    if (!c) {
        std::string text = "ERR unknown command '";
        text.append(c_string(args[0], 128));
        text.append("', with args beginning with: ");
        std::size_t listed = 0;
        for (std::size_t i = 1; i < args.size() && listed < 128; ++i) {
            std::string_view arg = c_string(args[i], 128 - listed);
            text.push_back('\'');
            text.append(arg);
            text.append("' ");
            listed += arg.size() + 3;
        }
        out.error(text);
        return exec_result::done;
    }
    auto argc = static_cast<std::int64_t>(args.size());
    if ((c->arity > 0 && argc != c->arity) || (c->arity < 0 && argc < -c->arity)) {
        std::string text = "ERR wrong number of arguments for '";
        text.append(c->name);
        text.append("' command");
        out.error(text);
        return exec_result::done;
    }
    return c->run(*this, args, out);
}

void snapshot_records(const store& s, std::string& out) {
    for (const store::node& n : s.nodes()) {
        if (s.is_expired(n))
            continue;
        if (n.second.expire_at != 0) {
            char buf[24];
            std::array<std::string_view, 5> rec{"SET", n.first, n.second.value, "PXAT",
                                                int_text(n.second.expire_at, buf)};
            encode_command(out, rec);
        } else {
            std::array<std::string_view, 3> rec{"SET", n.first, n.second.value};
            encode_command(out, rec);
        }
    }
}

} // namespace kv
