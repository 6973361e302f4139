#include "cli/docs.hpp"

#include "ferry/version.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace ferry::cli {

namespace fs = std::filesystem;

namespace {

/// Text made safe for roff: backslashes escaped, a line that starts with a
/// control character kept as text, hyphens as real minus signs in options.
std::string roff(const std::string& text) {
  std::string out;
  bool line_start = true;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\''))
      out += "\\&";
    if (c == '\\')
      out += "\\e";
    else if (c == '-')
      out += "\\-";
    else
      out += c;
    line_start = c == '\n';
  }
  return out;
}

// Hidden commands and options (group "") have no documentation.
std::vector<const CLI::App*> visible_commands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* s) { return !s->get_group().empty(); });
}

std::vector<const CLI::Option*> visible_options(const CLI::App& command) {
  return command.get_options([](const CLI::Option* o) { return !o->get_group().empty(); });
}

/// "-h, --help", "--from TEXT", or "DIR" for a positional argument `dir`.
std::string option_label(const CLI::Option& option, bool for_roff) {
  if (option.get_snames().empty() && option.get_lnames().empty()) {
    std::string name = option.get_name();
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return for_roff ? "\\fI" + roff(name) + "\\fR" : name;
  }
  std::string names;
  for (auto& name : option.get_snames())
    names += (names.empty() ? "" : ", ") + std::string{"-"} + name;
  for (auto& name : option.get_lnames())
    names += (names.empty() ? "" : ", ") + std::string{"--"} + name;
  if (!for_roff)
    return names;
  std::string label = "\\fB" + roff(names) + "\\fR";
  if (option.get_type_size() != 0 && !option.get_type_name().empty())
    label += " \\fI" + roff(option.get_type_name()) + "\\fR";
  return label;
}

std::string option_text(const CLI::Option& option) {
  std::string text = option.get_description();
  if (option.get_required())
    text += " (required)";
  for (const CLI::Option* other : option.get_excludes())
    text += " (not with " + other->get_name() + ")";
  return text;
}

/// The date of SOURCE_DATE_EPOCH as YYYY-MM-DD, or nothing.
std::string page_date() {
  const char* epoch = std::getenv("SOURCE_DATE_EPOCH");
  if (!epoch || !*epoch)
    return {};
  std::time_t seconds = static_cast<std::time_t>(std::strtoll(epoch, nullptr, 10));
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  char text[16];
  std::strftime(text, sizeof text, "%Y-%m-%d", &parts);
  return text;
}

std::string first_line(const std::string& text) {
  auto end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

std::string upper(std::string text) {
  for (auto& c : text)
    if (c >= 'a' && c <= 'z')
      c = static_cast<char>(c - 'a' + 'A');
  return text;
}

/// One page: `command` is null for ferry(1) itself.
std::string man_page(const CLI::App& app, const CLI::App* command, const std::string& date) {
  const CLI::App& shown = command ? *command : app;
  std::string name = command ? "ferry-" + command->get_name() : "ferry";
  std::ostringstream page;
  page << ".TH " << roff(upper(name)) << " 1 \"" << date << "\" \"ferry " << version
       << "\" \"User Commands\"\n";
  page << ".SH NAME\n" << roff(name) << " \\- ";
  if (command)
    page << roff(command->get_description()) << "\n";
  else
    page << "a verified, resumable Git LFS transfer engine\n";
  auto commands = visible_commands(shown);
  page << ".SH SYNOPSIS\n.B ferry\n";
  if (command)
    page << ".B " << roff(command->get_name()) << "\n";
  if (!commands.empty())
    page << (command ? "\\fICOMMAND\\fR\n" : "[\\fICOMMAND\\fR]\n");
  page << "[\\fIOPTIONS\\fR]\n";
  page << ".SH DESCRIPTION\n" << roff(shown.get_description()) << "\n";
  if (!commands.empty())
    page << ".SH COMMANDS\n";
  for (const CLI::App* sub : commands) {
    page << ".TP\n\\fB" << roff(sub->get_name()) << "\\fR\n" << roff(sub->get_description());
    if (!command) {
      page << " See \\fBferry\\-" << roff(sub->get_name()) << "\\fR(1).\n";
      continue;
    }
    // A command's own commands have no page: their options are listed here.
    for (const CLI::Option* option : visible_options(*sub))
      if (option->get_lnames() != std::vector<std::string>{"help"})
        page << "\n.RS\n.TP\n"
             << option_label(*option, true) << "\n"
             << roff(option_text(*option)) << "\n.RE";
    page << "\n";
  }
  page << ".SH OPTIONS\n";
  for (const CLI::Option* option : visible_options(shown))
    page << ".TP\n" << option_label(*option, true) << "\n" << roff(option_text(*option)) << "\n";
  page << ".SH SEE ALSO\n";
  if (command)
    page << "\\fBferry\\fR(1), ";
  page << "\\fBgit\\-lfs\\fR(1), /usr/share/doc/ferry/README.md and docs/\n";
  return page.str();
}

std::string words(const std::vector<std::string>& list) {
  std::string out;
  for (auto& word : list)
    out += (out.empty() ? "" : " ") + word;
  return out;
}

std::vector<std::string> long_names(const CLI::App& command) {
  std::vector<std::string> names;
  for (const CLI::Option* option : visible_options(command))
    for (auto& name : option->get_lnames())
      names.push_back("--" + name);
  return names;
}

/// What may follow a command: its options, its own commands and theirs.
std::vector<std::string> completions_after(const CLI::App& command) {
  auto names = long_names(command);
  for (const CLI::App* sub : visible_commands(command)) {
    names.push_back(sub->get_name());
    for (auto& name : long_names(*sub))
      if (std::find(names.begin(), names.end(), name) == names.end())
        names.push_back(name);
  }
  return names;
}

std::string bash_completion(const CLI::App& app) {
  std::ostringstream out;
  std::vector<std::string> commands;
  for (const CLI::App* sub : visible_commands(app))
    commands.push_back(sub->get_name());
  out << "# bash completion for ferry, written from its command line definition.\n"
      << "_ferry() {\n"
      << "  local cur=${COMP_WORDS[COMP_CWORD]} words\n"
      << "  if ((COMP_CWORD == 1)); then\n"
      << "    words=\"" << words(commands) << " " << words(long_names(app)) << "\"\n"
      << "  else\n"
      << "    case ${COMP_WORDS[1]} in\n";
  for (const CLI::App* sub : visible_commands(app))
    out << "      " << sub->get_name() << ") words=\"" << words(completions_after(*sub))
        << "\" ;;\n";
  out << "      *) words=\"\" ;;\n"
      << "    esac\n"
      << "  fi\n"
      << "  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
      << "}\n"
      << "complete -o default -F _ferry ferry\n";
  return out.str();
}

/// zsh wants "[description]" with ] and : escaped.
std::string zsh_text(const std::string& text) {
  std::string out;
  for (char c : first_line(text)) {
    if (c == '[' || c == ']' || c == ':' || c == '\\')
      out += '\\';
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out;
}

std::string zsh_completion(const CLI::App& app) {
  std::ostringstream out;
  out << "#compdef ferry\n"
      << "# zsh completion for ferry, written from its command line definition.\n"
      << "_ferry() {\n"
      << "  local -a commands\n"
      << "  commands=(\n";
  for (const CLI::App* sub : visible_commands(app))
    out << "    '" << sub->get_name() << ":" << zsh_text(sub->get_description()) << "'\n";
  out << "  )\n"
      << "  if ((CURRENT == 2)); then\n"
      << "    _describe command commands\n"
      << "    return\n"
      << "  fi\n"
      << "  case $words[2] in\n";
  for (const CLI::App* sub : visible_commands(app)) {
    out << "    " << sub->get_name() << ")\n      _arguments";
    std::vector<std::string> nested;
    for (const CLI::App* own : visible_commands(*sub))
      nested.push_back(own->get_name());
    if (!nested.empty())
      out << " \\\n        '1:command:(" << words(nested) << ")'";
    for (const CLI::Option* option : visible_options(*sub))
      for (auto& name : option->get_lnames())
        out << " \\\n        '--" << name << "[" << zsh_text(option->get_description()) << "]"
            << (option->get_type_size() != 0 ? ":value:_files" : "") << "'";
    out << " ;;\n";
  }
  out << "  esac\n"
      << "}\n"
      << "_ferry \"$@\"\n";
  return out.str();
}

bool write_file(const fs::path& path, const std::string& text) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out << text;
  out.close();
  if (!out) {
    std::cerr << "ferry: cannot write " << path.string() << "\n";
    return false;
  }
  return true;
}

} // namespace

int write_docs(const CLI::App& app, const fs::path& dir) {
  std::error_code ec;
  for (auto* sub : {"man1", "completions"}) {
    fs::create_directories(dir / sub, ec);
    if (ec) {
      std::cerr << "ferry: cannot create " << (dir / sub).string() << ": " << ec.message() << "\n";
      return 1;
    }
  }
  auto date = page_date();
  bool ok = write_file(dir / "man1" / "ferry.1", man_page(app, nullptr, date));
  for (const CLI::App* sub : visible_commands(app))
    ok = write_file(dir / "man1" / ("ferry-" + sub->get_name() + ".1"), man_page(app, sub, date)) &&
         ok;
  ok = write_file(dir / "completions" / "ferry.bash", bash_completion(app)) && ok;
  ok = write_file(dir / "completions" / "_ferry", zsh_completion(app)) && ok;
  return ok ? 0 : 1;
}

} // namespace ferry::cli
