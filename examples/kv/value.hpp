// SPDX-License-Identifier: MIT
// A stored string of examples/kv. Short values live inline; long ones live in a buffer that the
// replies being sent may share, so a GET of a large value is sent from the stored bytes instead of
// a copy per pending reply.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace kv {

/// A binary-safe string value. From k_shared_min bytes on, the bytes live in a shared buffer:
/// share() hands out a reference that keeps this version alive, and changing a value while such
/// a reference exists gives the value a new buffer (copy on write), so bytes that a reply is
/// still sending never change under it. Not thread-safe (one loop owns the store).
class value {
public:
    /// Values this long or longer are shared with the replies that send them (shorter ones are
    /// cheaper to copy than to count references to).
    static constexpr std::size_t k_shared_min = 16 * 1024;

    value() = default;

    [[nodiscard]] std::string_view view() const noexcept {
        return m_shared ? std::string_view(*m_shared) : std::string_view(m_inline);
    }
    operator std::string_view() const noexcept { return view(); }
    [[nodiscard]] std::size_t size() const noexcept {
        return m_shared ? m_shared->size() : m_inline.size();
    }
    [[nodiscard]] bool empty() const noexcept { return size() == 0; }

    /// Reads like the std::string it replaced (tests build dumps this way).
    friend std::string operator+(const value& v, std::string_view tail) {
        std::string out(v.view());
        out.append(tail);
        return out;
    }
    friend bool operator==(const value& v, std::string_view bytes) noexcept {
        return v.view() == bytes;
    }

    /// True when the bytes live in a shared buffer (share() is not null).
    [[nodiscard]] bool is_shared() const noexcept { return m_shared != nullptr; }

    /// The shared buffer of a long value (null for a short one). The bytes it points to never
    /// change, whatever happens to this value later.
    [[nodiscard]] std::shared_ptr<const std::string> share() const noexcept { return m_shared; }

    /// Replaces the bytes (reusing the buffer when nobody shares it).
    void assign(std::string_view bytes) {
        if (bytes.size() < k_shared_min) {
            m_shared.reset();
            m_inline.assign(bytes);
            return;
        }
        if (m_shared && m_shared.use_count() == 1) {
            m_shared->assign(bytes);
        } else {
            m_shared = std::make_shared<std::string>(bytes);
        }
        release_inline();
    }

    /// Appends `bytes` (APPEND).
    void append(std::string_view bytes) {
        std::size_t total = size() + bytes.size();
        if (total < k_shared_min) {
            m_inline.append(bytes);
            return;
        }
        if (!m_shared || m_shared.use_count() > 1) {
            auto grown = std::make_shared<std::string>();
            grown->reserve(total);
            grown->append(view());
            m_shared = std::move(grown);
            release_inline();
        }
        m_shared->append(bytes);
    }

private:
    void release_inline() noexcept {
        std::string().swap(m_inline); // a long value keeps no short buffer besides
    }

    std::string m_inline;                  // the bytes of a short value
    std::shared_ptr<std::string> m_shared; // the bytes of a long value, or null
};

} // namespace kv
