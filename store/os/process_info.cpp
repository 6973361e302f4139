#include "store/os/process_info.hpp"

#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>

namespace ferry {

namespace {

std::string proc_path(pid_t pid, const char* entry) {
  return "/proc/" + std::to_string(pid) + "/" + entry;
}

} // namespace

std::optional<std::string> environment_of(pid_t pid, const std::string& name) {
  std::ifstream in{proc_path(pid, "environ"), std::ios::binary};
  std::string prefix = name + "=";
  for (std::string entry; std::getline(in, entry, '\0');)
    if (entry.rfind(prefix, 0) == 0)
      return entry.substr(prefix.size());
  return std::nullopt;
}

pid_t parent_of(pid_t pid) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // the fields are read after its last ')'.
  std::ifstream in{proc_path(pid, "stat")};
  std::string stat{std::istreambuf_iterator<char>{in}, {}};
  auto end = stat.rfind(')');
  if (end == std::string::npos)
    return 0;
  std::istringstream fields{stat.substr(end + 1)};
  std::string state;
  pid_t parent = 0;
  fields >> state >> parent;
  return parent;
}

std::filesystem::path executable_of(pid_t pid) {
  std::error_code error;
  auto exe = std::filesystem::read_symlink(proc_path(pid, "exe"), error);
  return error ? std::filesystem::path{} : exe;
}

} // namespace ferry
