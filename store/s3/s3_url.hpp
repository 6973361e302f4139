#pragma once

// S3 store URLs: `s3://bucket/prefix?endpoint=...&region=...&path_style=...&layout=...`.
// Parsing is strict so that a typo fails at `ferry install`, not at the first
// transfer. Credentials never belong in the URL: they come from the
// environment, ~/.aws/credentials or git credential.

#include "protocol/status.hpp"

#include <string>
#include <string_view>

namespace ferry::s3 {

/// Where objects go below the prefix.
enum class key_layout {
  /// `<prefix>/<oid[0:2]>/<oid[2:4]>/<oid>`, as git-lfs lays out its own store.
  nested,
  /// `<prefix>/<oid>`.
  flat,
};

/// A parsed S3 store URL.
struct s3_url {
  /// A valid S3 bucket name (3-63 characters of a-z, 0-9, '.', '-').
  std::string bucket;
  /// Key prefix without leading or trailing '/'; empty for the bucket root.
  std::string prefix;
  /// "scheme://host[:port]" without a default port; by default
  /// "https://s3.<region>.amazonaws.com".
  std::string endpoint;
  /// The signing region; "us-east-1" by default.
  std::string region = "us-east-1";
  /// Path style puts the bucket in the path (http://host/bucket/key);
  /// virtual-host style in the host name (http://bucket.host/key). Always
  /// true when the endpoint is an IP address.
  bool path_style = false;
  key_layout layout = key_layout::nested;

  /// The object key of `oid` (a validated 64-hex oid) under the prefix.
  std::string object_key(const std::string& oid) const;
  /// The Host header requests carry: "bucket.host[:port]" or "host[:port]".
  std::string host() const;
  /// The raw (unencoded) request path of `key`, as sigv4_signer takes it:
  /// "/bucket/key" or "/key".
  std::string request_path(const std::string& key) const;
  /// The URL of `key`, its path percent-encoded as S3 expects.
  std::string request_url(const std::string& key) const;
  /// "s3://bucket/prefix" plus the non-default settings: safe for logs.
  std::string describe() const;
};

/// Parses an s3:// store URL. errc::config_error, with a message naming the
/// offending part, for: another scheme, user info, a fragment, a bad bucket
/// name, empty or "." / ".." prefix segments, an unknown or repeated query
/// key, a bad value, an endpoint with a path, query or user info, and any
/// query key that looks like a credential. Messages never repeat user info
/// or query values that may be secret.
result<s3_url> parse_s3_url(std::string_view text);

/// Checks an S3 bucket name: 3-63 characters; lower-case letters, digits,
/// '.' and '-'; begins and ends with a letter or digit; no ".."; not an IPv4
/// address. Returns errc::config_error with the rule broken.
status check_bucket_name(std::string_view name);

} // namespace ferry::s3
