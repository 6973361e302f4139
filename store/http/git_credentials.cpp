#include "store/http/git_credentials.hpp"
#include "store/http/http_url.hpp"
#include "store/os/git_command.hpp"

#include <sstream>
#include <utility>

namespace ferry {

namespace {

namespace fs = std::filesystem;

/// Keeps git from asking on a terminal: a missing credential is an answer.
const std::vector<std::string> no_prompt = {"GIT_TERMINAL_PROMPT=0"};

/// A value of the credential protocol may not contain a newline (it would
/// start another attribute) or a NUL.
bool safe_value(const std::string& value) {
  return value.find('\n') == std::string::npos && value.find('\0') == std::string::npos;
}

class git_credential_source final : public credential_source {
public:
  explicit git_credential_source(credential_runner run) : run_(std::move(run)) {}

  result<std::optional<http_credential>> fill(const std::string& url) override {
    auto request = describe(url, nullptr);
    if (!request)
      return request.error();
    auto ran = run_("fill", *request);
    if (!ran)
      return ran.error().with_context("cannot run git credential fill");
    // git exits non-zero when no helper answered and it may not prompt.
    if (ran->exit_code != 0)
      return std::optional<http_credential>{};
    http_credential credential;
    bool has_user = false;
    bool has_password = false;
    std::istringstream lines(ran->out);
    std::string line;
    while (std::getline(lines, line)) {
      auto equals = line.find('=');
      if (equals == std::string::npos)
        continue;
      std::string key = line.substr(0, equals);
      if (key == "username") {
        credential.username = line.substr(equals + 1);
        has_user = true;
      } else if (key == "password") {
        credential.password = line.substr(equals + 1);
        has_password = true;
      }
    }
    if (!has_user || !has_password)
      return std::optional<http_credential>{};
    return std::optional<http_credential>{std::move(credential)};
  }

  void approve(const std::string& url, const http_credential& credential) override {
    tell("approve", url, credential);
  }

  void reject(const std::string& url, const http_credential& credential) override {
    tell("reject", url, credential);
  }

private:
  /// The credential protocol's description of `url` (and `credential`):
  /// protocol, host (with port) and path lines, then a blank line. The URL
  /// parser refuses control characters, so only the credential is checked.
  static result<std::string> describe(const std::string& url, const http_credential* credential) {
    auto parsed = parse_http_url(url);
    if (!parsed)
      return status{errc::config_error, "cannot ask git for credentials: not an http(s) URL"};
    std::string text = "protocol=" + parsed->scheme + "\nhost=" + parsed->host;
    if (!parsed->port.empty())
      text += ":" + parsed->port;
    std::string path = parsed->path;
    while (!path.empty() && path.front() == '/')
      path.erase(path.begin());
    if (!path.empty())
      text += "\npath=" + path;
    if (credential) {
      if (!safe_value(credential->username) || !safe_value(credential->password))
        return status{errc::invalid_request, "credentials contain a line break"};
      text += "\nusername=" + credential->username + "\npassword=" + credential->password;
    }
    return text + "\n\n";
  }

  // approve/reject only inform the helpers; a failure changes nothing for
  // the transfer, and its output may echo the secret, so it is dropped.
  void tell(const char* action, const std::string& url, const http_credential& credential) {
    auto request = describe(url, &credential);
    if (!request)
      return;
    (void)run_(action, *request);
  }

  credential_runner run_;
};

} // namespace

std::unique_ptr<credential_source>
git_credentials(std::filesystem::path cwd, std::optional<std::vector<std::string>> environment) {
  return git_credentials([cwd = std::move(cwd), environment = std::move(environment)](
                           const std::string& action, const std::string& input) {
    return run_git({"credential", action}, cwd, {input, no_prompt, environment});
  });
}

std::unique_ptr<credential_source> git_credentials(credential_runner run) {
  return std::make_unique<git_credential_source>(std::move(run));
}

} // namespace ferry
