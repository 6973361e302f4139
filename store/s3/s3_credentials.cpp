#include "store/s3/s3_credentials.hpp"

#include "protocol/parsing.hpp"
#include "store/os/file_io.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <utility>

namespace ferry::s3 {

// What the shared credentials file parser accepts, and nothing more:
// - lines end with LF or CRLF; spaces and tabs around every line, key and
//   value are dropped;
// - blank lines and lines starting with '#' or ';' are comments (a '#' or
//   ';' after a value is part of the value);
// - `[name]` opens the profile `name`, compared exactly: the credentials
//   file has no `profile ` prefix, so `[profile ci]` is a profile named
//   "profile ci". A section that appears again continues, later keys win;
// - `key = value` inside a section, split at the first '=', keys in any
//   case; unknown keys are ignored. `key: value`, continuation lines and
//   keys before the first section are malformed.

namespace {

namespace fs = std::filesystem;

constexpr const char* access_key_variable = "AWS_ACCESS_KEY_ID";
constexpr const char* secret_key_variable = "AWS_SECRET_ACCESS_KEY";
constexpr const char* session_token_variable = "AWS_SESSION_TOKEN";
constexpr const char* profile_variable = "AWS_PROFILE";
constexpr const char* file_variable = "AWS_SHARED_CREDENTIALS_FILE";
constexpr const char* default_profile = "default";

constexpr const char* access_key_name = "aws_access_key_id";
constexpr const char* secret_key_name = "aws_secret_access_key";
constexpr const char* session_token_name = "aws_session_token";

// A credentials file holds a few lines; a bigger one is something else, and
// a path like /dev/zero must not fill the memory.
constexpr size_t max_file_size = size_t{1} << 20;

using maybe_found = result<std::optional<found_credentials>>;

/// A variable's value without outer spaces and tabs; std::nullopt when it is
/// unset or blank.
std::optional<std::string> variable(const credential_lookup& lookup, const char* name) {
  if (!lookup.getenv)
    return std::nullopt;
  auto value = lookup.getenv(name);
  if (!value)
    return std::nullopt;
  std::string trimmed(protocol::trim_ows(*value));
  if (trimmed.empty())
    return std::nullopt;
  return trimmed;
}

status malformed(size_t line_number, const std::string& what) {
  return {errc::config_error, "line " + std::to_string(line_number) + ": " + what};
}

/// The file's text; std::nullopt when it does not exist.
result<std::optional<std::string>> read_small_file(const fs::path& path) {
  const std::string what = "cannot read AWS credentials file " + path.string();
  fd_guard file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return std::optional<std::string>{};
    return from_errno(errno, what);
  }
  std::string text;
  char chunk[4096];
  while (true) {
    ssize_t got = ::read(file.get(), chunk, sizeof chunk);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return from_errno(errno, what);
    if (got == 0)
      return std::optional<std::string>{std::move(text)};
    text.append(chunk, static_cast<size_t>(got));
    if (text.size() > max_file_size)
      return status{errc::config_error, what + ": larger than 1 MiB"};
  }
}

/// Step 1: the environment.
maybe_found from_environment(const credential_lookup& lookup) {
  auto access_key = variable(lookup, access_key_variable);
  auto secret_key = variable(lookup, secret_key_variable);
  if (!access_key && !secret_key)
    return std::optional<found_credentials>{};
  if (!access_key || !secret_key) {
    const char* set = access_key ? access_key_variable : secret_key_variable;
    const char* missing = access_key ? secret_key_variable : access_key_variable;
    return status{errc::config_error,
                  std::string(set) + " is set but " + missing + " is not; set both or neither"};
  }
  credentials keys{std::move(*access_key), std::move(*secret_key),
                   variable(lookup, session_token_variable).value_or("")};
  return std::optional<found_credentials>{
    found_credentials{std::move(keys), std::string("environment (") + access_key_variable + ")"}};
}

/// Where the shared credentials file is; empty when neither
/// AWS_SHARED_CREDENTIALS_FILE nor the home directory is known.
fs::path credentials_file(const credential_lookup& lookup) {
  if (auto named = variable(lookup, file_variable))
    return *named;
  if (lookup.home.empty())
    return {};
  return lookup.home / ".aws" / "credentials";
}

/// Step 2: the shared credentials file. `looked` says where that was and
/// what was missing, for the message when nothing is found anywhere.
maybe_found from_file(const credential_lookup& lookup, std::string& looked) {
  const fs::path path = credentials_file(lookup);
  auto named_profile = variable(lookup, profile_variable);
  const std::string profile = named_profile.value_or(default_profile);
  const std::string how =
    std::string(access_key_name) + " and " + secret_key_name + " under [" + profile + "]";
  if (path.empty()) {
    looked = "~/.aws/credentials (home directory unknown): set " + std::string(file_variable) +
             " to a file with " + how;
    return std::optional<found_credentials>{};
  }
  const std::string where = path.string() + " [profile " + profile + "]";
  auto text = read_small_file(path);
  if (!text)
    return text.error();
  if (!*text) {
    looked = where + " (no such file): add " + how;
    return std::optional<found_credentials>{};
  }
  auto parsed = parse_shared_credentials(**text, profile);
  if (!parsed)
    return parsed.error().with_context("AWS credentials file " + path.string());
  if (*parsed)
    return std::optional<found_credentials>{found_credentials{std::move(**parsed), where}};
  if (named_profile)
    return status{errc::config_error, std::string(profile_variable) + " names the profile [" +
                                        profile + "], which " + path.string() + " lacks"};
  looked = where + " (no such section): add " + how;
  return std::optional<found_credentials>{};
}

/// Step 3: `git credential fill` for the endpoint.
maybe_found from_git(const s3_url& url, const credential_lookup& lookup) {
  if (!lookup.git)
    return std::optional<found_credentials>{};
  auto filled = lookup.git->fill(url.endpoint);
  if (!filled)
    return filled.error().with_context("cannot ask git credential for " + url.endpoint);
  if (!*filled)
    return std::optional<found_credentials>{};
  credentials keys;
  keys.access_key_id = protocol::trim_ows((*filled)->username);
  keys.secret_access_key = protocol::trim_ows((*filled)->password);
  if (keys.access_key_id.empty() || keys.secret_access_key.empty())
    return std::optional<found_credentials>{};
  return std::optional<found_credentials>{
    found_credentials{std::move(keys), "git credential for " + url.endpoint}};
}

/// The config_error for "nothing anywhere": every place in the order it was
/// searched, and how to fill it.
status nothing_found(const s3_url& url, const credential_lookup& lookup,
                     const std::string& file_looked) {
  // The endpoint is "scheme://host[:port]", what git credential calls
  // protocol and host.
  const size_t separator = url.endpoint.find("://");
  const std::string scheme = url.endpoint.substr(0, separator);
  const std::string host =
    separator == std::string::npos ? url.endpoint : url.endpoint.substr(separator + 3);
  return {errc::config_error,
          "no S3 credentials for " + url.endpoint +
            "; searched, in this order: " + "1. the environment: set " + access_key_variable +
            " and " + secret_key_variable + " (and " + session_token_variable +
            " for temporary keys); " + "2. the shared credentials file " + file_looked + "; " +
            "3. git credential for " + url.endpoint + (lookup.git ? "" : " (not asked here)") +
            ": store the access key id as username and the secret as password with "
            "`git credential approve` (protocol=" +
            scheme + ", host=" + host + ")"};
}

} // namespace

credential_lookup credential_lookup::from_process() {
  credential_lookup lookup;
  lookup.getenv = [](const char* name) -> std::optional<std::string> {
    const char* value = ::getenv(name);
    if (value == nullptr)
      return std::nullopt;
    return std::string(value);
  };
  if (const char* home = ::getenv("HOME"))
    lookup.home = home;
  return lookup;
}

result<found_credentials> find_credentials(const s3_url& url, const credential_lookup& lookup) {
  std::string file_looked;
  maybe_found found = from_environment(lookup);
  if (found && !*found)
    found = from_file(lookup, file_looked);
  if (found && !*found)
    found = from_git(url, lookup);
  if (!found)
    return found.error();
  if (!*found)
    return nothing_found(url, lookup, file_looked);
  return std::move(**found);
}

result<std::optional<credentials>> parse_shared_credentials(std::string_view text,
                                                            std::string_view profile) {
  bool in_section = false;
  bool in_profile = false;
  bool profile_seen = false;
  // Only the wanted profile's keys are kept; the others are checked for form.
  std::map<std::string, std::string> values;
  size_t line_number = 0;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = std::min(text.find('\n', start), text.size());
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    line = protocol::trim_ows(line);
    if (line.empty() || line.front() == '#' || line.front() == ';')
      continue;
    if (line.front() == '[') {
      if (line.back() != ']')
        return malformed(line_number, "a section header must end with ']'");
      std::string_view name = protocol::trim_ows(line.substr(1, line.size() - 2));
      if (name.empty())
        return malformed(line_number, "empty section name");
      in_section = true;
      in_profile = name == profile;
      profile_seen = profile_seen || in_profile;
      continue;
    }
    const size_t equals = line.find('=');
    if (equals == std::string_view::npos)
      return malformed(line_number, "expected `key = value` or `[profile]`");
    const std::string key = protocol::lower_ascii(protocol::trim_ows(line.substr(0, equals)));
    if (key.empty())
      return malformed(line_number, "no key before '='");
    if (!in_section)
      return malformed(line_number, "`key = value` before the first [profile] section");
    if (in_profile)
      values[key] = std::string(protocol::trim_ows(line.substr(equals + 1)));
  }
  if (!profile_seen)
    return std::optional<credentials>{};

  credentials keys{values[access_key_name], values[secret_key_name], values[session_token_name]};
  std::string missing;
  if (keys.access_key_id.empty())
    missing = access_key_name;
  if (keys.secret_access_key.empty())
    missing += (missing.empty() ? "" : " and ") + std::string(secret_key_name);
  if (!missing.empty())
    return status{errc::config_error, "profile [" + std::string(profile) + "] has no " + missing};
  return std::optional<credentials>{std::move(keys)};
}

} // namespace ferry::s3
