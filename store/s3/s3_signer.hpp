#pragma once

// AWS Signature Version 4 for S3 requests, header-based ("Authorization:
// AWS4-HMAC-SHA256 ..."). Pure computation: no clock, no network. The caller
// supplies the time so that a request can be signed reproducibly.

#include "protocol/status.hpp"

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::s3 {

/// An HTTP header or query parameter: name and value.
using name_value = std::pair<std::string, std::string>;

/// The hex SHA-256 of an empty payload (GET, HEAD, DELETE).
inline constexpr const char* empty_payload_hash =
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The payload hash that tells S3 the body is not covered by the signature.
inline constexpr const char* unsigned_payload = "UNSIGNED-PAYLOAD";

/// Credentials for S3. Never logged, never put on a command line: describe()
/// shows the access key id and whether a session token is present, never the
/// secret or the token.
struct credentials {
  std::string access_key_id;
  std::string secret_access_key;
  /// Temporary credentials (STS) carry a token sent as x-amz-security-token;
  /// empty for long-term keys.
  std::string session_token;

  /// "access key <id> (secret hidden)" plus ", with session token" when set.
  std::string describe() const;
};

/// What is signed. Names and values are raw (not percent-encoded); the signer
/// encodes them as S3 expects.
struct signing_request {
  /// "GET", "PUT", ...
  std::string method;
  /// The raw path of the request: "/key" (virtual-host style) or
  /// "/bucket/key" (path style). Every byte except A-Za-z0-9-._~ and '/' is
  /// percent-encoded once, so a '%' in a key is data, not an escape.
  std::string path;
  /// Query parameters in any order; a parameter without value ("?uploads")
  /// has an empty value.
  std::vector<name_value> query;
  /// Headers to sign, in any order and case; must include Host. Values are
  /// trimmed and inner runs of spaces collapsed for signing. Repeated names
  /// are joined with ',' in the order given. x-amz-date,
  /// x-amz-content-sha256, x-amz-security-token and Authorization are the
  /// signer's and are refused here.
  std::vector<name_value> headers;
  /// Lower-case hex SHA-256 of the body, or unsigned_payload.
  std::string payload_hash;
  /// When the request is signed; S3 refuses signatures more than 15 minutes
  /// away from its own clock.
  std::chrono::system_clock::time_point time;
};

/// Percent-encodes `raw` for a SigV4 canonical query: everything except
/// A-Za-z0-9-._~ becomes %XX (upper-case hex), '/' included.
std::string uri_encode(std::string_view raw);

/// Percent-encodes a raw path as S3 expects it, in the canonical request and
/// on the wire: like uri_encode() but '/' is kept. An empty path is "/".
std::string uri_encode_path(std::string_view raw);

/// "YYYYMMDDTHHMMSSZ" (UTC), the x-amz-date format.
std::string amz_date(std::chrono::system_clock::time_point time);

/// Signs S3 requests for one region with one set of credentials.
class sigv4_signer {
public:
  /// `region` is the signing region ("us-east-1" for most S3-compatible
  /// servers that have none).
  sigv4_signer(credentials keys, std::string region);

  /// The headers to add to the request: Authorization, x-amz-date,
  /// x-amz-content-sha256 and, with a session token, x-amz-security-token.
  /// errc::invalid_request when the request cannot be signed (no Host, a
  /// header the signer owns, a malformed payload hash, a control character
  /// in a header); errc::config_error when the credentials or region are
  /// unusable. Messages never contain the secret or the token.
  result<std::vector<name_value>> sign(const signing_request& request) const;

  /// The canonical request of SigV4 step 1, for tests and diagnostics. It
  /// contains the session token when there is one (it is a signed header).
  result<std::string> canonical_request(const signing_request& request) const;

  /// The string to sign of SigV4 step 2.
  result<std::string> string_to_sign(const signing_request& request) const;

  /// "s3 sigv4 <region>, <credentials.describe()>": safe for logs.
  std::string describe() const;

private:
  struct prepared;
  result<prepared> prepare(const signing_request& request) const;

  credentials keys_;
  std::string region_;
};

} // namespace ferry::s3
