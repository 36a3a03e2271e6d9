// SPDX-License-Identifier: MIT
// cli::parser over CLI11 (see cli.hpp): the one translation unit that includes <CLI/CLI.hpp>,
// built once into a static library that every example and bench/loadgen links.
#include "examples/common/cli.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <utility>

namespace cli {

std::string range_text(unsigned long long min, unsigned long long max) {
    if (min == 0)
        return "up to " + std::to_string(max);
    return "in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
}

std::string help_range(unsigned long long min, unsigned long long max) {
    return "[" + std::to_string(min) + "-" + std::to_string(max) + "]";
}

option& option::type(const std::string& name) {
    m_option->type_name(name);
    return *this;
}

option& option::required() {
    m_option->required();
    return *this;
}

option& option::default_text(const std::string& text) {
    m_option->default_str(text);
    return *this;
}

parser::parser(std::string program, std::string description, std::string footer)
    : m_program(std::move(program)),
      m_app(std::make_unique<CLI::App>(std::move(description), m_program)) {
    m_app->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    m_app->get_formatter()->column_width(36);
    while (!footer.empty() && footer.back() == '\n')
        footer.pop_back(); // CLI11 ends the help with a newline of its own
    if (!footer.empty())
        m_app->footer(footer);
}

parser::~parser() = default;

option parser::add(const std::string& flag, const std::string& help, check_fn check, store_fn store,
                   const std::string& default_shown) {
    CLI::Option* o = m_app->add_option_function<std::string>(flag, std::move(store), help);
    // A transform (it may rewrite the text) runs before the text reaches `store`.
    o->transform(CLI::Validator(std::move(check), "", "check"));
    if (!default_shown.empty())
        o->default_str(default_shown);
    return option(o);
}

std::optional<std::vector<int>> parse_cpu_list(std::string_view text, unsigned max) {
    std::vector<int> cpus;
    std::vector<bool> seen(max, false);
    while (true) {
        std::size_t comma = text.find(',');
        std::string_view item = text.substr(0, comma);
        std::size_t dash = item.find('-');
        std::optional<unsigned long long> low = parse_unsigned(item.substr(0, dash), 0, max - 1);
        std::optional<unsigned long long> high =
            dash == std::string_view::npos ? low
                                           : parse_unsigned(item.substr(dash + 1), 0, max - 1);
        if (!low || !high || *low > *high)
            return std::nullopt;
        for (unsigned long long cpu = *low; cpu <= *high; ++cpu) {
            if (seen[cpu])
                return std::nullopt;
            seen[cpu] = true;
            cpus.push_back(static_cast<int>(cpu));
        }
        if (comma == std::string_view::npos)
            return cpus;
        text.remove_prefix(comma + 1);
    }
}

check_fn parser::number_check(unsigned long long min, unsigned long long max) {
    return [min, max](std::string& text) -> std::string {
        if (parse_unsigned(text, min, max))
            return {};
        return "wants a number " + range_text(min, max) + ", got '" + text + "'";
    };
}

option parser::port(std::uint16_t& target) {
    return number<std::uint16_t>("--port", target, 0, 65535,
                                 "TCP port; 0 picks an ephemeral one, printed as "
                                 "`listening on N`");
}

option parser::cpu_list(const std::string& flag, std::vector<int>& target,
                        const std::string& help) {
    auto check = [](std::string& text) -> std::string {
        if (parse_cpu_list(text))
            return {};
        return "wants CPU numbers such as 0,1 or 0-3 (each once, below 1024), got '" + text + "'";
    };
    auto store = [&target](const std::string& text) { target = parse_cpu_list(text).value(); };
    return add(flag, help, check, store).type("LIST");
}

option parser::text(const std::string& flag, std::string& target, const std::string& help) {
    auto any = [](std::string&) { return std::string(); };
    auto store = [&target](const std::string& text) { target = text; };
    return add(flag, help, any, store, target).type("TEXT");
}

option parser::word(const std::string& flag, std::vector<std::string> words, store_fn store,
                    const std::string& help) {
    std::string wanted;
    std::string type;
    for (std::size_t i = 0; i < words.size(); ++i) {
        wanted += (i == 0 ? "" : i + 1 == words.size() ? " or " : ", ") + words[i];
        type += (i == 0 ? "" : "|") + words[i];
    }
    auto check = [words, wanted](std::string& text) -> std::string {
        for (const std::string& w : words)
            if (text == w)
                return {};
        return "wants " + wanted + ", got '" + text + "'";
    };
    return add(flag, help, check, std::move(store)).type(type);
}

option parser::flag(const std::string& flag, bool& target, const std::string& help) {
    return option(m_app->add_flag(flag, target, help));
}

option parser::positional(const std::string& name, std::string& target, const std::string& help) {
    return option(m_app->add_option(name, target, help)->required()->type_name(""));
}

void parser::parse(int argc, char** argv) {
    try {
        m_app->parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        std::fputs(m_app->help().c_str(), stdout);
        std::exit(0);
    } catch (const CLI::ParseError& e) {
        std::string what = e.what();
        fail(what + " (see --help)");
    }
}

void parser::fail(const std::string& message) const {
    std::fprintf(stderr, "%s: %s\n", m_program.c_str(), message.c_str());
    std::exit(2);
}

} // namespace cli
