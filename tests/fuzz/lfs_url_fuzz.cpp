// Fuzzes the http(s) URL parsing of LFS stores (store/http/http_url.hpp, in
// ferry_remote): the whole input is a URL from a store URL, git config or a
// server's href. Promises checked, besides "never throws":
// - a parsed URL has scheme http or https, a non-empty lower-case host
//   without ':' (unless an IPv6 literal in brackets), a port that is empty
//   or 1-65535, a path that is empty or starts with '/', and no whitespace
//   or control bytes anywhere;
// - without_secrets(), origin() and endpoint_text() are URLs again, with the
//   same host and port, and carry neither user info, query nor fragment;
// - parse_endpoint_url accepts exactly the URLs without user info, query and
//   fragment, and its messages never repeat the user info.

#include "fuzz_check.hpp"

#include "store/http/http_url.hpp"

#include <string>

namespace {

using namespace ferry;
using ferry::http_url;

std::string lower(std::string_view text) {
  std::string out{text};
  for (char& c : out)
    c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

void check_url(const http_url& url) {
  FUZZ_CHECK(url.scheme == "http" || url.scheme == "https");
  FUZZ_CHECK(!url.host.empty());
  // RFC 3986: a ':' in the host only inside an IPv6 literal's brackets;
  // anywhere else it would make "host:port" ambiguous.
  if (url.host.front() != '[')
    FUZZ_CHECK(url.host.find(':') == std::string::npos);
  for (char c : url.host)
    FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
  if (!url.port.empty()) {
    FUZZ_CHECK(url.port.size() <= 5);
    for (char c : url.port)
      FUZZ_CHECK(c >= '0' && c <= '9');
    const int number = std::stoi(url.port);
    FUZZ_CHECK(number >= 1 && number <= 65535);
  }
  FUZZ_CHECK(url.path.empty() || url.path.front() == '/');
  if (!url.has_userinfo)
    FUZZ_CHECK(url.userinfo.empty());
  for (const std::string* part : {&url.scheme, &url.userinfo, &url.host, &url.port, &url.path})
    for (char c : *part)
      FUZZ_CHECK(static_cast<unsigned char>(c) > 0x20 && c != 0x7f);
  FUZZ_CHECK(url.effective_port() == (!url.port.empty()       ? url.port
                                      : url.scheme == "https" ? "443"
                                                              : "80"));
  FUZZ_CHECK(url.host_port() == url.host + ":" + url.effective_port());

  // Derived URLs parse again, naming the same server, and hold no secret.
  const auto clean = parse_http_url(url.without_secrets());
  FUZZ_CHECK(clean.has_value());
  FUZZ_CHECK(clean->scheme == url.scheme && clean->host == url.host && clean->port == url.port &&
             clean->path == url.path);
  FUZZ_CHECK(!clean->has_userinfo && !clean->has_query && !clean->has_fragment);

  const auto origin = parse_http_url(url.origin());
  FUZZ_CHECK(origin.has_value());
  FUZZ_CHECK(origin->host == url.host && origin->effective_port() == url.effective_port() &&
             origin->path.empty() && origin->origin() == url.origin());

  const std::string endpoint = endpoint_text(url);
  FUZZ_CHECK(endpoint.empty() || endpoint.back() != '/');
  const auto reparsed = parse_http_url(endpoint);
  FUZZ_CHECK(reparsed.has_value());
  FUZZ_CHECK(reparsed->host == url.host && reparsed->port == url.port && !reparsed->has_userinfo &&
             !reparsed->has_query && !reparsed->has_fragment);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = ferry::fuzz::as_text(data, size);
  const auto url = parse_http_url(text);
  if (url)
    check_url(*url);

  const auto endpoint = parse_endpoint_url(text, "lfs+https");
  FUZZ_CHECK(endpoint.ok() == (url && !url->has_userinfo && !url->has_query && !url->has_fragment));
  if (endpoint) {
    FUZZ_CHECK(endpoint->host == url->host && endpoint->path == url->path);
  } else {
    FUZZ_CHECK(endpoint.error().code() == errc::config_error);
    // User info (a password, a token) is never repeated; only judged when
    // it looks like a secret and appears nowhere else in the URL (ignoring
    // case, since the host is shown in lower case) to be telling.
    if (url && ferry::fuzz::secret_like(url->userinfo)) {
      const std::string lowered = lower(text);
      const std::string secret = lower(url->userinfo);
      if (lowered.find(secret) == lowered.rfind(secret))
        FUZZ_CHECK(endpoint.error().message().find(url->userinfo) == std::string::npos);
    }
  }
  return 0;
}
