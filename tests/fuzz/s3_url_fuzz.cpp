// Fuzzes parse_s3_url (store/s3/s3_url.hpp, in ferry_remote): the whole input
// is an s3:// store URL as a user writes it in git config or on the command
// line. Promises checked, besides "never throws":
// - a parsed URL has a bucket that passes check_bucket_name, a prefix
//   without leading, trailing or doubled '/' and without '.' or '..'
//   segments, a region of [a-z0-9-], an endpoint "scheme://host[:port]"
//   with no default port that names the server the user gave (same scheme,
//   host and port), and path style whenever the host is an IP address;
// - describe() is an s3:// URL again that parses to the same settings;
// - object keys sit under the prefix, and request URLs parse as http(s)
//   URLs of the endpoint's scheme;
// - failures are config_error, and their messages repeat neither user info
//   nor the value of a query key that looks like a credential.

#include "fuzz_check.hpp"

#include "store/http/http_url.hpp"
#include "store/s3/s3_url.hpp"

#include <string>
#include <vector>

namespace {

using namespace ferry;
using ferry::s3::s3_url;

const std::string some_oid = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

bool is_ipv4(std::string_view host) {
  int groups = 0;
  size_t digits = 0;
  for (char c : host) {
    if (c == '.') {
      if (digits == 0 || digits > 3)
        return false;
      ++groups;
      digits = 0;
    } else if (c >= '0' && c <= '9') {
      ++digits;
    } else {
      return false;
    }
  }
  return digits > 0 && digits <= 3 && groups == 3;
}

bool same(const s3_url& a, const s3_url& b) {
  return a.bucket == b.bucket && a.prefix == b.prefix && a.endpoint == b.endpoint &&
         a.region == b.region && a.path_style == b.path_style && a.layout == b.layout;
}

// The value of the query key `endpoint`, when the URL has one.
std::optional<std::string_view> given_endpoint(std::string_view text) {
  const size_t question = text.find('?');
  if (question == std::string_view::npos)
    return std::nullopt;
  std::string_view query = text.substr(question + 1);
  while (!query.empty()) {
    const std::string_view pair = query.substr(0, query.find('&'));
    query.remove_prefix(std::min(query.size(), pair.size() + 1));
    if (pair.rfind("endpoint=", 0) == 0)
      return pair.substr(9);
  }
  return std::nullopt;
}

void check_url(const s3_url& url, std::string_view text) {
  FUZZ_CHECK(s3::check_bucket_name(url.bucket).ok());
  if (!url.prefix.empty()) {
    FUZZ_CHECK(url.prefix.front() != '/' && url.prefix.back() != '/');
    FUZZ_CHECK(url.prefix.find("//") == std::string::npos);
    const std::string framed = "/" + url.prefix + "/";
    FUZZ_CHECK(framed.find("/./") == std::string::npos && framed.find("/../") == std::string::npos);
  }
  FUZZ_CHECK(!url.region.empty());
  for (char c : url.region)
    FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');

  const auto endpoint = parse_http_url(url.endpoint);
  FUZZ_CHECK(endpoint.has_value());
  FUZZ_CHECK(endpoint->path.empty() && !endpoint->has_userinfo && !endpoint->has_query &&
             !endpoint->has_fragment);
  FUZZ_CHECK(url.endpoint == endpoint->scheme + "://" + endpoint->host +
                               (endpoint->port.empty() ? "" : ":" + endpoint->port));
  FUZZ_CHECK(endpoint->port != (endpoint->scheme == "https" ? "443" : "80"));
  if (endpoint->host.front() == '[' || is_ipv4(endpoint->host))
    FUZZ_CHECK(url.path_style);
  // Requests go to the server the user named: same scheme, host and port.
  if (const auto given = given_endpoint(text)) {
    const auto named = parse_http_url(*given);
    FUZZ_CHECK(named.has_value());
    FUZZ_CHECK(named->scheme == endpoint->scheme && named->host == endpoint->host &&
               named->effective_port() == endpoint->effective_port());
  }

  // What the logs show is the same store again.
  const auto described = s3::parse_s3_url(url.describe());
  FUZZ_CHECK(described.ok());
  FUZZ_CHECK(same(*described, url));

  const std::string key = url.object_key(some_oid);
  FUZZ_CHECK(key.size() >= some_oid.size() &&
             key.compare(key.size() - some_oid.size(), some_oid.size(), some_oid) == 0);
  if (!url.prefix.empty())
    FUZZ_CHECK(key.rfind(url.prefix + "/", 0) == 0);
  const std::string host = url.host();
  FUZZ_CHECK(host.find('/') == std::string::npos);
  FUZZ_CHECK(url.request_path(key).front() == '/');
  const auto request = parse_http_url(url.request_url(key));
  FUZZ_CHECK(request.has_value());
  FUZZ_CHECK(request->scheme == endpoint->scheme && !request->has_userinfo && !request->has_query &&
             !request->has_fragment);
  const auto host_url = parse_http_url(endpoint->scheme + "://" + host);
  FUZZ_CHECK(host_url.has_value());
  FUZZ_CHECK(request->host_port() == host_url->host_port());
}

// Texts that must not show up in a message: user info, and the values of
// query keys that look like credentials. Only secret-like ones that appear
// once in the URL are telling.
std::vector<std::string> secrets(std::string_view text) {
  std::vector<std::string> found;
  // Compared ignoring case: hosts are shown in lower case.
  std::string lowered{text};
  for (char& c : lowered)
    c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  auto add = [&](std::string_view secret) {
    std::string lower_secret{secret};
    for (char& c : lower_secret)
      c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (ferry::fuzz::secret_like(secret) &&
        lowered.find(lower_secret) == lowered.rfind(lower_secret))
      found.emplace_back(secret);
  };
  const size_t scheme = text.find("://");
  if (scheme == std::string_view::npos)
    return found;
  const std::string_view rest = text.substr(scheme + 3);
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos)
    add(authority.substr(0, at));
  const size_t question = rest.find('?');
  if (question == std::string_view::npos)
    return found;
  std::string_view query = rest.substr(question + 1);
  while (!query.empty()) {
    const std::string_view pair = query.substr(0, query.find('&'));
    query.remove_prefix(std::min(query.size(), pair.size() + 1));
    const size_t equals = pair.find('=');
    if (equals == std::string_view::npos)
      continue;
    std::string key{pair.substr(0, equals)};
    for (char& c : key)
      c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    for (const char* word : {"key", "secret", "token", "password", "credential", "signature"})
      if (key.find(word) != std::string::npos) {
        add(pair.substr(equals + 1));
        break;
      }
    // An endpoint's user info.
    if (key == "endpoint") {
      const std::string_view value = pair.substr(equals + 1);
      const size_t inner = value.find("://");
      if (inner != std::string_view::npos) {
        const std::string_view after = value.substr(inner + 3);
        const std::string_view where = after.substr(0, after.find('/'));
        if (const size_t at = where.rfind('@'); at != std::string_view::npos)
          add(where.substr(0, at));
      }
    }
  }
  return found;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = ferry::fuzz::as_text(data, size);
  const auto url = s3::parse_s3_url(text);
  if (url) {
    check_url(*url, text);
    return 0;
  }
  const status& failure = url.error();
  FUZZ_CHECK(failure.code() == errc::config_error);
  FUZZ_CHECK(!failure.message().empty());
  for (const std::string& secret : secrets(text))
    FUZZ_CHECK(failure.message().find(secret) == std::string::npos);
  return 0;
}
