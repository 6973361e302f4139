#include "store/http/http_url.hpp"
#include "protocol/parsing.hpp"

#include <algorithm>
#include <cctype>

namespace ferry {

namespace {

bool valid_port(const std::string& port) {
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  int value = std::stoi(port);
  return value >= 1 && value <= 65535;
}

} // namespace

std::string http_url::effective_port() const {
  if (!port.empty())
    return port;
  return scheme == "https" ? "443" : "80";
}

std::string http_url::host_port() const { return host + ":" + effective_port(); }

std::string http_url::origin() const { return scheme + "://" + host_port(); }

std::string http_url::without_secrets() const {
  std::string text = scheme + "://" + host;
  if (!port.empty())
    text += ":" + port;
  return text + path;
}

std::optional<http_url> parse_http_url(std::string_view text) {
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7f)
      return std::nullopt;
  }
  auto separator = text.find("://");
  if (separator == std::string_view::npos)
    return std::nullopt;
  http_url url;
  url.scheme = protocol::lower_ascii(text.substr(0, separator));
  if (url.scheme != "http" && url.scheme != "https")
    return std::nullopt;

  std::string_view rest = text.substr(separator + 3);
  if (auto hash = rest.find('#'); hash != std::string_view::npos) {
    url.has_fragment = true;
    rest = rest.substr(0, hash);
  }
  if (auto question = rest.find('?'); question != std::string_view::npos) {
    url.has_query = true;
    rest = rest.substr(0, question);
  }
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos)
    url.path = std::string(rest.substr(slash));

  // The last '@' ends the user info: passwords may contain '@' unescaped.
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    url.has_userinfo = true;
    url.userinfo = std::string(authority.substr(0, at));
    authority = authority.substr(at + 1);
  }

  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return std::nullopt;
    host = authority.substr(0, close + 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return std::nullopt;
      port = after.substr(1);
      if (port.empty())
        return std::nullopt;
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty())
      return std::nullopt;
  }
  // A ':' left in an unbracketed host ("example.com:8080:80") would make a
  // URL that names another port than it seems to, or none that parses.
  if (host.empty() || host == "[]" ||
      (host.front() != '[' && host.find(':') != std::string_view::npos))
    return std::nullopt;
  url.host = protocol::lower_ascii(host);
  url.port = std::string(port);
  if (!url.port.empty() && !valid_port(url.port))
    return std::nullopt;
  return url;
}

result<http_url> parse_endpoint_url(std::string_view text, const std::string& shown_scheme) {
  auto url = parse_http_url(text);
  if (!url)
    return status{errc::config_error, "store URL with scheme '" + shown_scheme +
                                        "' is not a valid URL; expected " + shown_scheme +
                                        "://host[:port]/path"};
  const std::string where = shown_scheme + "://" + url->host;
  if (url->has_userinfo)
    return status{errc::config_error,
                  "store URL " + where +
                    "/... contains a user name or password; remove it and let git's credential "
                    "helper provide credentials (git config credential.helper ...)"};
  if (url->has_query || url->has_fragment)
    return status{errc::config_error, "store URL " + where +
                                        "/... has a query or fragment ('?' or '#'); LFS "
                                        "endpoints take neither"};
  return *url;
}

std::string endpoint_text(const http_url& url) {
  std::string text = url.without_secrets();
  while (!text.empty() && text.back() == '/')
    text.pop_back();
  return text;
}

} // namespace ferry
