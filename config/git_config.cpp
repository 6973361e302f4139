#include "config/git_config.hpp"

#include "store/os/file_io.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <system_error>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ferry::config {

namespace fs = std::filesystem;

namespace {

/// Feeds `input` to `in` (a socket, so a child that exits early cannot
/// kill us with SIGPIPE) while draining both output pipes, so a child
/// filling one of them never blocks. Closes `in` when all input is written.
status exchange(fd_guard& in, const std::string& input, int out_fd, int err_fd, std::string& out,
                std::string& err) {
  pollfd fds[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {in.get(), POLLOUT, 0}};
  std::string* buffers[2] = {&out, &err};
  int open_count = 2;
  size_t written = 0;
  if (in.get() >= 0 && input.empty())
    in.reset();
  fds[2].fd = in.get();
  char chunk[65536];
  while (open_count > 0) {
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR)
        continue;
      return {errc::io_error, std::string{"cannot read git's output: "} + std::strerror(errno)};
    }
    if (fds[2].fd >= 0 && fds[2].revents != 0) {
      ssize_t sent = ::send(in.get(), input.data() + written, input.size() - written,
                            MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent > 0)
        written += static_cast<size_t>(sent);
      // A child that stops reading gets no more input; its exit code tells.
      if (written == input.size() || (sent < 0 && errno != EINTR && errno != EAGAIN)) {
        in.reset();
        fds[2].fd = -1;
      }
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0)
        continue;
      ssize_t got = ::read(fds[i].fd, chunk, sizeof chunk);
      if (got > 0) {
        buffers[i]->append(chunk, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        fds[i].fd = -1; // poll skips negative descriptors
        --open_count;
      }
    }
  }
  return status::success();
}

int wait_for(pid_t pid) {
  int wait_status = 0;
  while (::waitpid(pid, &wait_status, 0) < 0) {
    if (errno != EINTR)
      return -1;
  }
  if (WIFEXITED(wait_status))
    return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status))
    return 128 + WTERMSIG(wait_status);
  return -1;
}

std::string trim(const std::string& text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin])))
    ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1])))
    --end;
  return text.substr(begin, end - begin);
}

/// What went wrong in a failed git command, for an error message.
std::string describe_failure(const command_output& output) {
  auto message = trim(output.err);
  if (message.empty())
    return "git exited with code " + std::to_string(output.exit_code);
  return message;
}

/// Drops the newline git prints after a single path or value.
std::string strip_newline(std::string text) {
  if (!text.empty() && text.back() == '\n')
    text.pop_back();
  return text;
}

/// Lower-cases section and name; a subsection keeps its case, as in git.
std::string normalise_key(std::string key) {
  auto first_dot = key.find('.');
  auto last_dot = key.rfind('.');
  for (size_t i = 0; i < key.size(); ++i) {
    if (first_dot == std::string::npos || i < first_dot || i > last_dot)
      key[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(key[i])));
  }
  return key;
}

fs::path absolute_dir(const fs::path& cwd) {
  std::error_code ec;
  auto dir = cwd.empty() ? fs::current_path(ec) : fs::absolute(cwd, ec);
  return ec ? cwd : dir;
}

/// The inherited environment with `extra` ("NAME=value") replacing or
/// extending it.
std::vector<std::string> environment_with(const std::vector<std::string>& extra) {
  std::vector<std::string> entries;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string text = *entry;
    std::string name = text.substr(0, text.find('='));
    bool replaced = std::any_of(extra.begin(), extra.end(), [&](const std::string& e) {
      return e.compare(0, name.size() + 1, name + "=") == 0;
    });
    if (!replaced)
      entries.push_back(std::move(text));
  }
  entries.insert(entries.end(), extra.begin(), extra.end());
  return entries;
}

} // namespace

result<command_output> run_git(const std::vector<std::string>& args, const fs::path& cwd) {
  return run_git(args, cwd, git_run_options{});
}

result<command_output> run_git(const std::vector<std::string>& args, const fs::path& cwd,
                               const git_run_options& options) {
  // posix_spawn reports a failed chdir like a missing program; check first.
  if (!cwd.empty()) {
    std::error_code ec;
    if (!fs::is_directory(cwd, ec))
      return status{errc::not_found, "cannot run git in " + cwd.string() + ": no such directory"};
  }

  fd_guard out_read, out_write, err_read, err_write;
  if (auto made = make_pipe(out_read, out_write, "run git"); !made.ok())
    return made;
  if (auto made = make_pipe(err_read, err_write, "run git"); !made.ok())
    return made;

  fd_guard in_parent, in_child;
  if (!options.input.empty()) {
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0)
      return status{errc::io_error, std::string{"cannot run git: "} + std::strerror(errno)};
    in_parent.reset(ends[0]);
    in_child.reset(ends[1]);
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (in_child.get() >= 0)
    posix_spawn_file_actions_adddup2(&actions, in_child.get(), STDIN_FILENO);
  else
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_write.get(), STDERR_FILENO);
  if (!cwd.empty())
    posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());

  std::vector<char*> argv;
  argv.push_back(const_cast<char*>("git"));
  for (const auto& arg : args)
    argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);

  std::vector<std::string> env_entries;
  std::vector<char*> envp;
  char** env = environ;
  if (!options.environment.empty()) {
    env_entries = environment_with(options.environment);
    for (auto& entry : env_entries)
      envp.push_back(entry.data());
    envp.push_back(nullptr);
    env = envp.data();
  }

  pid_t pid = 0;
  int spawned = ::posix_spawnp(&pid, "git", &actions, nullptr, argv.data(), env);
  posix_spawn_file_actions_destroy(&actions);
  out_write.reset();
  err_write.reset();
  in_child.reset();
  if (spawned == ENOENT)
    return status{errc::not_found, "git is not installed or not on PATH"};
  if (spawned != 0)
    return status{errc::io_error, std::string{"cannot run git: "} + std::strerror(spawned)};

  command_output output;
  auto read = exchange(in_parent, options.input, out_read.get(), err_read.get(), output.out,
                       output.err);
  in_parent.reset();
  out_read.reset();
  err_read.reset();
  output.exit_code = wait_for(pid);
  if (!read.ok())
    return read;
  if (output.exit_code < 0)
    return status{errc::io_error, "cannot tell how git exited"};
  return output;
}

result<std::map<std::string, std::string>> read_git_config(const fs::path& cwd) {
  auto listed = run_git({"config", "--list", "-z"}, cwd);
  if (!listed)
    return listed.error();
  if (listed->exit_code != 0 && !trim(listed->err).empty())
    return status{errc::io_error, "cannot read git config: " + describe_failure(*listed)};

  // Each entry is "key\nvalue\0", or "key\0" for a key without a value.
  std::map<std::string, std::string> values;
  const std::string& text = listed->out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\0', pos);
    if (end == std::string::npos)
      end = text.size();
    std::string entry = text.substr(pos, end - pos);
    pos = end + 1;
    if (entry.empty())
      continue;
    size_t newline = entry.find('\n');
    std::string value = newline == std::string::npos ? std::string{} : entry.substr(newline + 1);
    values[normalise_key(entry.substr(0, newline))] = std::move(value);
  }
  return values;
}

result<repo_paths> discover_repo(const fs::path& cwd) {
  auto here = absolute_dir(cwd);
  auto dirs = run_git({"rev-parse", "--absolute-git-dir", "--git-common-dir"}, cwd);
  if (!dirs)
    return dirs.error();
  if (dirs->exit_code != 0) {
    std::string message = "not inside a git repository (" + here.string() + ")";
    // Anything but the usual complaint (e.g. "dubious ownership") is worth showing.
    if (dirs->err.find("not a git repository") == std::string::npos)
      message += ": " + describe_failure(*dirs);
    return status{errc::not_found, message};
  }

  auto newline = dirs->out.find('\n');
  if (newline == std::string::npos)
    return status{errc::internal, "unexpected output from git rev-parse: " + dirs->out};
  repo_paths paths;
  paths.git_dir = dirs->out.substr(0, newline);
  paths.common_dir = strip_newline(dirs->out.substr(newline + 1));
  // git prints the common dir relative to where it ran.
  if (paths.common_dir.is_relative())
    paths.common_dir = here / paths.common_dir;
  paths.common_dir = paths.common_dir.lexically_normal();
  if (!paths.common_dir.has_filename())
    paths.common_dir = paths.common_dir.parent_path();

  // A bare repository has no working tree; git refuses --show-toplevel there.
  auto top = run_git({"rev-parse", "--show-toplevel"}, cwd);
  if (!top)
    return top.error();
  if (top->exit_code == 0)
    paths.top_level = strip_newline(top->out);

  auto storage = run_git({"config", "--type=path", "--get", "lfs.storage"}, cwd);
  if (!storage)
    return storage.error();
  if (storage->exit_code == 0) {
    fs::path dir = strip_newline(storage->out);
    // git-lfs resolves a relative lfs.storage against the common git dir.
    paths.lfs_dir = dir.is_absolute() ? dir : (paths.common_dir / dir).lexically_normal();
  } else if (storage->exit_code == 1) {
    paths.lfs_dir = paths.common_dir / "lfs";
  } else {
    return status{errc::io_error, "cannot read lfs.storage: " + describe_failure(*storage)};
  }
  return paths;
}

status set_git_config(const std::string& key, const std::string& value, bool global,
                      const fs::path& cwd) {
  // --replace-all so a key that already has several values still ends up with one.
  std::vector<std::string> args{"config"};
  if (global)
    args.emplace_back("--global");
  args.insert(args.end(), {"--replace-all", key, value});
  auto done = run_git(args, cwd);
  if (!done)
    return done.error();
  if (done->exit_code != 0)
    return {errc::io_error, "cannot set " + key + " in git config: " + describe_failure(*done)};
  return status::success();
}

status unset_git_config(const std::string& key, bool global, const fs::path& cwd) {
  std::vector<std::string> args{"config"};
  if (global)
    args.emplace_back("--global");
  args.insert(args.end(), {"--unset-all", key});
  auto done = run_git(args, cwd);
  if (!done)
    return done.error();
  // Exit code 5 means the key was not there, which is what we wanted.
  if (done->exit_code != 0 && done->exit_code != 5)
    return {errc::io_error, "cannot unset " + key + " in git config: " + describe_failure(*done)};
  return status::success();
}

} // namespace ferry::config
