#pragma once

// The parts of an http(s) URL that LFS stores need: where requests go, what
// `git credential` is asked about, and what may be shown in logs.

#include "protocol/status.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace ferry {

/// An absolute http:// or https:// URL split into its parts (RFC 3986).
struct http_url {
  /// "http" or "https", lower case.
  std::string scheme;
  /// Everything before '@' in the authority; has_userinfo tells whether an
  /// '@' was there at all (an empty user name still counts).
  std::string userinfo;
  bool has_userinfo = false;
  /// Lower case; an IPv6 literal keeps its brackets ("[::1]").
  std::string host;
  /// The explicit port, empty when the URL names none.
  std::string port;
  /// From the first '/' after the authority, without query or fragment;
  /// may be empty.
  std::string path;
  bool has_query = false;
  bool has_fragment = false;

  /// The port requests go to: the explicit one, or 80/443 by scheme.
  std::string effective_port() const;
  /// "host:port" with the effective port.
  std::string host_port() const;
  /// "scheme://host:port": two URLs with the same origin may share credentials.
  std::string origin() const;
  /// "scheme://host[:port]/path": the URL without user info, query or fragment.
  std::string without_secrets() const;
};

/// Parses an absolute http(s) URL; nullopt when it is not one, the host is
/// missing, the port is not a number from 1 to 65535, or it contains
/// whitespace or control characters.
std::optional<http_url> parse_http_url(std::string_view text);

/// Parses the http(s) URL inside a store URL (`shown_scheme` is what the
/// user wrote, e.g. "lfs+https") for use as an LFS endpoint: user info,
/// queries and fragments are refused with errc::config_error. Messages never
/// repeat the URL's user info.
result<http_url> parse_endpoint_url(std::string_view text, const std::string& shown_scheme);

/// "scheme://host[:port]/path" without trailing slashes: an LFS endpoint.
std::string endpoint_text(const http_url& url);

} // namespace ferry
