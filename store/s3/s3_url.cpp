#include "store/s3/s3_url.hpp"
#include "protocol/parsing.hpp"

#include "store/http/http_url.hpp"
#include "store/s3/s3_signer.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>

namespace ferry::s3 {

namespace {

constexpr const char* default_region = "us-east-1";

status url_error(const std::string& what) { return {errc::config_error, "S3 store URL: " + what}; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Dotted-quad IPv4: four groups of 1-3 digits.
bool is_ipv4(std::string_view text) {
  int groups = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = std::min(text.find('.', start), text.size());
    std::string_view group = text.substr(start, end - start);
    if (group.empty() || group.size() > 3 || !std::all_of(group.begin(), group.end(), is_digit))
      return false;
    ++groups;
    start = end + 1;
  }
  return groups == 4;
}

std::string default_endpoint(const std::string& region) {
  return "https://s3." + region + ".amazonaws.com";
}

status credentials_refused(const std::string& where) {
  return url_error(where + " carries credentials; remove them and provide them through "
                           "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, or git "
                           "credential");
}

// A query key that names a secret, whatever its spelling: refused before the
// unknown-key check so the message says why, not just "unknown".
bool looks_like_credential(const std::string& key) {
  static constexpr std::array<const char*, 6> words = {"key",      "secret",     "token",
                                                       "password", "credential", "signature"};
  std::string name = protocol::lower_ascii(key);
  return std::any_of(words.begin(), words.end(),
                     [&](const char* word) { return name.find(word) != std::string::npos; });
}

status check_prefix(const std::string& prefix) {
  if (prefix.empty())
    return status::success();
  size_t start = 0;
  while (start <= prefix.size()) {
    size_t end = std::min(prefix.find('/', start), prefix.size());
    std::string_view segment = std::string_view(prefix).substr(start, end - start);
    if (segment.empty())
      return url_error("prefix '" + prefix + "' has an empty segment ('//')");
    if (segment == "." || segment == "..")
      return url_error("prefix '" + prefix + "' has a '.' or '..' segment");
    start = end + 1;
  }
  if (prefix.find_first_of("%\\") != std::string::npos)
    return url_error("prefix '" + prefix + "' contains '%' or '\\'; use plain characters");
  return status::success();
}

result<std::string> parse_endpoint(const std::string& text) {
  auto url = parse_http_url(text);
  if (!url)
    return url_error("endpoint is not an http(s) URL; expected http(s)://host[:port]");
  if (url->has_userinfo)
    return credentials_refused("the endpoint");
  if ((!url->path.empty() && url->path != "/") || url->has_query || url->has_fragment)
    return url_error("endpoint " + url->scheme + "://" + url->host +
                     " must be scheme://host[:port] only, without path, query or fragment");
  std::string endpoint = url->scheme + "://" + url->host;
  // curl leaves a default port out of the Host header; so must the signer.
  bool default_port = url->port == (url->scheme == "https" ? "443" : "80");
  if (!url->port.empty() && !default_port)
    endpoint += ":" + url->port;
  return endpoint;
}

bool host_is_ip_address(const std::string& endpoint) {
  std::string authority = endpoint.substr(endpoint.find("://") + 3);
  if (!authority.empty() && authority.front() == '[')
    return true;
  return is_ipv4(authority.substr(0, authority.rfind(':')));
}

// Applies the query parameters to `url`; `explicit_path_style` tells whether
// the user chose path_style.
status apply_query(std::string_view query, s3_url& url, bool& explicit_path_style,
                   std::string& endpoint) {
  std::map<std::string, std::string> values;
  size_t start = 0;
  while (!query.empty() && start <= query.size()) {
    size_t end = std::min(query.find('&', start), query.size());
    std::string_view pair = query.substr(start, end - start);
    start = end + 1;
    if (pair.empty())
      return url_error("query has an empty parameter ('&&' or a trailing '&')");
    size_t equals = pair.find('=');
    std::string key(pair.substr(0, equals));
    if (looks_like_credential(key))
      return credentials_refused("query key '" + key + "'");
    if (key != "endpoint" && key != "region" && key != "path_style" && key != "layout")
      return url_error("unknown query key '" + key +
                       "'; known keys: endpoint, region, path_style, layout");
    if (equals == std::string_view::npos)
      return url_error("query key '" + key + "' has no value");
    // No value needs escaping, and a literal one cannot be misread.
    std::string value(pair.substr(equals + 1));
    if (value.find('%') != std::string::npos)
      return url_error("query key '" + key + "' has a '%'; write its value without escapes");
    if (!values.emplace(key, value).second)
      return url_error("query key '" + key + "' is given twice");
  }

  if (auto region = values.find("region"); region != values.end()) {
    const std::string& name = region->second;
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || is_digit(c) || c == '-';
        }))
      return url_error("region '" + name + "' must be lower-case letters, digits and '-'");
    url.region = name;
  }
  if (auto style = values.find("path_style"); style != values.end()) {
    if (style->second != "true" && style->second != "false")
      return url_error("path_style must be true or false, not '" + style->second + "'");
    url.path_style = style->second == "true";
    explicit_path_style = true;
  }
  if (auto layout = values.find("layout"); layout != values.end()) {
    if (layout->second != "nested" && layout->second != "flat")
      return url_error("layout must be nested or flat, not '" + layout->second + "'");
    url.layout = layout->second == "flat" ? key_layout::flat : key_layout::nested;
  }
  if (auto given = values.find("endpoint"); given != values.end()) {
    // An empty value (an unset shell variable) must not quietly mean Amazon,
    // where the user's keys would then be sent.
    if (given->second.empty())
      return url_error("endpoint is empty; give http(s)://host[:port], or leave endpoint out "
                       "for Amazon S3");
    endpoint = given->second;
  }
  return status::success();
}

} // namespace

status check_bucket_name(std::string_view name) {
  const std::string shown = "bucket name '" + std::string(name) + "'";
  if (name.size() < 3 || name.size() > 63)
    return url_error(shown + " must be 3 to 63 characters long");
  if (!std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || is_digit(c) || c == '.' || c == '-';
      }))
    return url_error(shown + " may contain only lower-case letters, digits, '.' and '-'");
  auto alphanumeric = [](char c) { return (c >= 'a' && c <= 'z') || is_digit(c); };
  if (!alphanumeric(name.front()) || !alphanumeric(name.back()))
    return url_error(shown + " must begin and end with a letter or digit");
  if (name.find("..") != std::string_view::npos)
    return url_error(shown + " must not contain '..'");
  if (is_ipv4(name))
    return url_error(shown + " must not be an IP address");
  return status::success();
}

result<s3_url> parse_s3_url(std::string_view text) {
  if (std::any_of(text.begin(), text.end(), [](char c) {
        auto byte = static_cast<unsigned char>(c);
        return byte <= 0x20 || byte == 0x7f;
      }))
    return url_error("contains whitespace or control characters");
  auto separator = text.find("://");
  if (separator == std::string_view::npos ||
      protocol::lower_ascii(text.substr(0, separator)) != "s3")
    return url_error("expected s3://bucket[/prefix][?endpoint=...&region=...]");
  std::string_view rest = text.substr(separator + 3);
  if (rest.find('#') != std::string_view::npos)
    return url_error("fragments ('#') are not allowed");

  std::string_view query;
  if (auto question = rest.find('?'); question != std::string_view::npos) {
    query = rest.substr(question + 1);
    rest = rest.substr(0, question);
    if (query.empty())
      return url_error("empty query after '?'");
  }
  auto slash = rest.find('/');
  std::string_view bucket = rest.substr(0, slash);
  // Checked before anything that could echo the bucket: it may hold a password.
  if (bucket.find('@') != std::string_view::npos)
    return credentials_refused("user info ('user:password@')");
  if (bucket.find(':') != std::string_view::npos)
    return url_error("the bucket part has a ':'; give the server as ?endpoint=http(s)://host:port");
  if (auto bad = check_bucket_name(bucket); !bad)
    return bad;

  s3_url url;
  url.bucket = std::string(bucket);
  if (slash != std::string_view::npos) {
    std::string_view prefix = rest.substr(slash);
    while (!prefix.empty() && prefix.front() == '/')
      prefix.remove_prefix(1);
    while (!prefix.empty() && prefix.back() == '/')
      prefix.remove_suffix(1);
    url.prefix = std::string(prefix);
  }
  if (auto bad = check_prefix(url.prefix); !bad)
    return bad;

  bool explicit_path_style = false;
  std::string endpoint;
  if (auto bad = apply_query(query, url, explicit_path_style, endpoint); !bad)
    return bad;
  if (endpoint.empty()) {
    url.endpoint = default_endpoint(url.region);
  } else {
    auto parsed = parse_endpoint(endpoint);
    if (!parsed)
      return parsed.error();
    url.endpoint = std::move(*parsed);
  }
  if (host_is_ip_address(url.endpoint)) {
    // There is no bucket.<ip> host name: only path style can reach the bucket.
    if (explicit_path_style && !url.path_style)
      return url_error("path_style=false cannot work with an IP-address endpoint (" + url.endpoint +
                       "); remove it or set path_style=true");
    url.path_style = true;
  }
  return url;
}

std::string s3_url::object_key(const std::string& oid) const {
  std::string base = prefix.empty() ? "" : prefix + "/";
  // Too short to split means not an oid; never index past its end.
  if (layout == key_layout::flat || oid.size() < 4)
    return base + oid;
  return base + oid.substr(0, 2) + "/" + oid.substr(2, 2) + "/" + oid;
}

std::string s3_url::host() const {
  std::string authority = endpoint.substr(endpoint.find("://") + 3);
  return path_style ? authority : bucket + "." + authority;
}

std::string s3_url::request_path(const std::string& key) const {
  return path_style ? "/" + bucket + "/" + key : "/" + key;
}

std::string s3_url::request_url(const std::string& key) const {
  std::string scheme = endpoint.substr(0, endpoint.find("://"));
  return scheme + "://" + host() + uri_encode_path(request_path(key));
}

std::string s3_url::describe() const {
  std::string text = "s3://" + bucket;
  if (!prefix.empty())
    text += "/" + prefix;
  std::string query;
  if (endpoint != default_endpoint(region))
    query += "&endpoint=" + endpoint;
  if (region != default_region)
    query += "&region=" + region;
  if (path_style)
    query += "&path_style=true";
  if (layout == key_layout::flat)
    query += "&layout=flat";
  if (!query.empty())
    text += "?" + query.substr(1);
  return text;
}

} // namespace ferry::s3
