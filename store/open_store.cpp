#include "store/open_store.hpp"

#include "store/folder/folder_store.hpp"
#include "store/http/http_url.hpp"
#include "store/os/child_process.hpp"
#include "store/s3/s3_credentials.hpp"
#include "store/s3/s3_keys.hpp"

#include <cctype>
#include <optional>

namespace ferry {

namespace {

constexpr const char* supported =
  "supported: file:///absolute/path or an absolute path such as /srv/lfs-store, "
  "lfs+https://host/path (an LFS endpoint), https://host/owner/repo.git (a git remote) or "
  "s3://bucket/prefix?endpoint=...&region=... (an S3 bucket) or proton://LFS (Proton Drive)";

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes; nullopt for a malformed escape or an encoded NUL,
// which no path can contain.
std::optional<std::string> percent_decode(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size())
      return std::nullopt;
    int high = hex_value(text[i + 1]);
    int low = hex_value(text[i + 2]);
    if (high < 0 || low < 0 || (high == 0 && low == 0))
      return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

result<std::shared_ptr<object_store>> open_folder(const std::string& path,
                                                  const store_context& context) {
  auto store = folder_store::open(path, context.create_folder);
  if (!store)
    return store.error();
  return std::shared_ptr<object_store>(std::move(store).value());
}

/// The LFS endpoint git-lfs derives from a git remote URL.
/// The environment `git credential` runs in: the agent's, when given.
std::optional<std::vector<std::string>> git_environment(const store_context& context) {
  if (!context.environment)
    return std::nullopt;
  return environment_entries(*context.environment);
}

std::unique_ptr<credential_source> credentials_for(const store_context& context) {
  if (context.credentials)
    return git_credentials(context.credentials);
  return git_credentials(context.cwd, git_environment(context));
}

std::string endpoint_of_remote(const http_url& remote) {
  std::string base = endpoint_text(remote);
  if (base.size() < 4 || base.compare(base.size() - 4, 4, ".git") != 0)
    base += ".git";
  return base + "/info/lfs";
}

result<std::shared_ptr<object_store>> open_lfs(const std::string& url, const std::string& scheme,
                                               const store_context& context) {
  std::string endpoint;
  if (scheme == "lfs+http" || scheme == "lfs+https") {
    auto parsed = lfs_endpoint_from_url(url);
    if (!parsed)
      return parsed.error();
    endpoint = std::move(*parsed);
  } else {
    auto remote = parse_endpoint_url(url, scheme);
    if (!remote)
      return remote.error();
    endpoint = endpoint_of_remote(*remote);
  }
  lfs_store_options options = context.lfs;
  options.endpoint = std::move(endpoint);
  auto credentials = credentials_for(context);
  if (context.share_credentials)
    credentials = context.share_credentials(options.endpoint, std::move(credentials));
  return std::shared_ptr<object_store>(
    std::make_shared<lfs_store>(context.http, std::move(options), std::move(credentials)));
}

result<std::shared_ptr<object_store>> open_s3(const std::string& url,
                                              const store_context& context) {
  auto parsed = s3::parse_s3_url(url);
  if (!parsed)
    return parsed.error();
  // Kept with the store's keys, which are looked up again when refused.
  std::shared_ptr<credential_source> git = credentials_for(context);
  auto lookup = s3::credential_lookup::from_process();
  if (context.environment) {
    auto environment = *context.environment;
    lookup.getenv = [environment](const char* name) -> std::optional<std::string> {
      auto found = environment.find(name);
      if (found == environment.end())
        return std::nullopt;
      return found->second;
    };
    auto home = environment.find("HOME");
    lookup.home = home != environment.end() ? home->second : std::string{};
  }
  lookup.git = git.get();
  auto found = s3::find_credentials(*parsed, lookup);
  if (!found)
    return found.error().with_context(parsed->describe());
  if (context.notice)
    context.notice("S3 keys for " + parsed->describe() + " from " + found->source);
  auto look_again = [url = *parsed, lookup, git] { return s3::find_credentials(url, lookup); };
  auto keys = std::make_shared<s3::key_holder>(std::move(*found), std::move(look_again));
  return std::shared_ptr<object_store>(
    std::make_shared<s3_store>(context.http, *parsed, std::move(keys), context.s3));
}

result<std::shared_ptr<object_store>> open_proton(const std::string& url,
                                                  const store_context& context) {
  auto base = parse_proton_url(url);
  if (!base)
    return base.error();
  if (context.proton_command.empty())
    return status{errc::config_error,
                  url + " needs the proton-drive-cli bridge: set ferry.proton.command (git config) "
                        "or FERRY_PROTON_COMMAND to its command line, such as "
                        "'node /opt/proton-drive-cli/dist/index.js' (see docs/proton.md)"};
  auto words = split_command_line(context.proton_command);
  if (!words)
    return words.error().with_context("ferry.proton.command");
  proton_store_options options = context.proton;
  options.bridge.command = std::move(*words);
  if (!options.notice)
    options.notice = context.notice;
  if (options.scratch_dir.empty()) {
    std::error_code error;
    options.scratch_dir = std::filesystem::temp_directory_path(error) / "ferry-proton";
  }
  return std::shared_ptr<object_store>(std::make_shared<proton_store>(*base, std::move(options)));
}

} // namespace

result<std::shared_ptr<object_store>> open_store(const std::string& url,
                                                 const store_context& context) {
  if (url.empty())
    return status{errc::config_error,
                  "no store configured: run 'ferry install --store file:///path' or set "
                  "ferry.store"};

  if (url.front() == '/')
    return open_folder(url, context);

  auto separator = url.find("://");
  if (separator == std::string::npos)
    return status{errc::config_error, "store path '" + url +
                                        "' is relative; an absolute path is needed (" + supported +
                                        ")"};

  std::string scheme = url.substr(0, separator);
  for (char& c : scheme)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme == "http" || scheme == "https" || scheme == "lfs+http" || scheme == "lfs+https")
    return open_lfs(url, scheme, context);
  if (scheme == "s3")
    return open_s3(url, context);
  if (scheme == "proton")
    return open_proton(url, context);
  if (scheme != "file")
    return status{errc::config_error,
                  "unsupported store URL scheme '" + scheme + "' (" + supported + ")"};

  std::string rest = url.substr(separator + 3);
  if (rest.empty() || rest.front() != '/')
    return status{errc::config_error,
                  "store URL '" + url +
                    "' does not name an absolute path; use three slashes, as in "
                    "file:///srv/lfs-store"};
  auto path = percent_decode(rest);
  if (!path)
    return status{errc::config_error,
                  "store URL '" + url + "' has a malformed %-escape (expected %XX, not %00)"};
  return open_folder(*path, context);
}

} // namespace ferry
