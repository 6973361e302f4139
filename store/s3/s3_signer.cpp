#include "store/s3/s3_signer.hpp"
#include "protocol/parsing.hpp"

#include "store/os/sha256.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <map>

namespace ferry::s3 {

namespace {

constexpr const char* algorithm = "AWS4-HMAC-SHA256";
constexpr const char* service = "s3";

// Fetched once and never freed, like sha256's digest: an explicit fetch
// avoids a provider lookup (and its lock) on every signature.
EVP_MAC* hmac_algorithm() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  EVP_MAC* mac = hmac_algorithm();
  EVP_MAC_CTX* ctx = mac != nullptr ? EVP_MAC_CTX_new(mac) : nullptr;
  char digest_name[] = "SHA256";
  OSSL_PARAM params[] = {
    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
    OSSL_PARAM_construct_end(),
  };
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t length = 0;
  // Fails only without memory or an HMAC/SHA-256 provider; nothing can be
  // signed then, and this function reports no errors (as sha256 does not).
  if (ctx == nullptr ||
      EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params) !=
        1 ||
      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
      EVP_MAC_final(ctx, out, &length, sizeof(out)) != 1)
    std::abort();
  EVP_MAC_CTX_free(ctx);
  return std::string(reinterpret_cast<const char*>(out), length);
}

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    auto byte = static_cast<unsigned char>(c);
    out.push_back(digits[byte >> 4]);
    out.push_back(digits[byte & 0x0f]);
  }
  return out;
}

std::string sha256_hex(const std::string& text) { return sha256::of(text.data(), text.size()); }

bool unreserved(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

std::string encode(std::string_view raw, bool keep_slash) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size());
  for (char c : raw) {
    if (unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(c);
      continue;
    }
    auto byte = static_cast<unsigned char>(c);
    out.push_back('%');
    out.push_back(digits[byte >> 4]);
    out.push_back(digits[byte & 0x0f]);
  }
  return out;
}

bool is_control(char c) {
  auto byte = static_cast<unsigned char>(c);
  return byte < 0x20 || byte == 0x7f;
}

// Characters that would change how the Authorization header or the
// credential scope is read.
bool safe_in_scope(std::string_view text) {
  return !text.empty() && std::none_of(text.begin(), text.end(), [](char c) {
    return is_control(c) || c == ' ' || c == '/' || c == ',' || c == '=';
  });
}

bool header_name_char(char c) {
  // RFC 9110 token characters.
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// SigV4 canonical value: trimmed, each inner run of spaces or tabs one space.
std::string canonical_value(std::string_view value) {
  std::string out;
  bool pending_space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space)
      out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

bool valid_payload_hash(const std::string& hash) {
  if (hash == unsigned_payload)
    return true;
  return hash.size() == 64 && std::all_of(hash.begin(), hash.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool signer_owned(const std::string& lower_name) {
  return lower_name == "authorization" || lower_name == "x-amz-date" ||
         lower_name == "x-amz-content-sha256" || lower_name == "x-amz-security-token";
}

status bad_request(const std::string& what) {
  return {errc::invalid_request, "cannot sign S3 request: " + what};
}

} // namespace

std::string credentials::describe() const {
  std::string text = "access key " + access_key_id + " (secret hidden)";
  if (!session_token.empty())
    text += ", with session token";
  return text;
}

std::string uri_encode(std::string_view raw) { return encode(raw, false); }

std::string uri_encode_path(std::string_view raw) {
  if (raw.empty())
    return "/";
  return encode(raw, true);
}

std::string amz_date(std::chrono::system_clock::time_point time) {
  std::time_t seconds =
    std::chrono::system_clock::to_time_t(std::chrono::time_point_cast<std::chrono::seconds>(time));
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  size_t length = std::strftime(text, sizeof(text), "%Y%m%dT%H%M%SZ", &utc);
  return std::string(text, length);
}

struct sigv4_signer::prepared {
  std::string date_time;
  std::string scope;
  std::string signed_headers;
  std::string canonical_request;
  std::string string_to_sign;
};

sigv4_signer::sigv4_signer(credentials keys, std::string region)
    : keys_(std::move(keys)), region_(std::move(region)) {}

std::string sigv4_signer::describe() const {
  return "s3 sigv4 " + region_ + ", " + keys_.describe();
}

result<sigv4_signer::prepared> sigv4_signer::prepare(const signing_request& request) const {
  if (!safe_in_scope(keys_.access_key_id))
    return status{errc::config_error,
                  "S3 access key id is empty or contains spaces, '/', ',', '=' or control "
                  "characters"};
  if (keys_.secret_access_key.empty())
    return status{errc::config_error, "S3 secret access key is empty"};
  if (std::any_of(keys_.session_token.begin(), keys_.session_token.end(), is_control))
    return status{errc::config_error, "S3 session token contains control characters"};
  if (!safe_in_scope(region_))
    return status{errc::config_error, "S3 region '" + region_ + "' is not a region name"};

  if (request.method.empty() || !std::all_of(request.method.begin(), request.method.end(),
                                             [](char c) { return c >= 'A' && c <= 'Z'; }))
    return bad_request("method '" + request.method + "' is not an upper-case HTTP method");
  if (!request.path.empty() && request.path.front() != '/')
    return bad_request("path must start with '/'");
  if (!valid_payload_hash(request.payload_hash))
    return bad_request("payload hash must be 64 lower-case hex digits or UNSIGNED-PAYLOAD");

  prepared out;
  out.date_time = amz_date(request.time);

  // Sorted by lower-case name, as the canonical form requires.
  std::map<std::string, std::string> headers;
  for (const auto& [raw_name, raw_value] : request.headers) {
    std::string name = protocol::lower_ascii(raw_name);
    if (name.empty() || !std::all_of(name.begin(), name.end(), header_name_char))
      return bad_request("header name '" + raw_name + "' is not a valid HTTP token");
    if (signer_owned(name))
      return bad_request("header " + name + " is set by the signer; do not pass it");
    if (std::any_of(raw_value.begin(), raw_value.end(),
                    [](char c) { return c == '\r' || c == '\n' || c == '\0'; }))
      return bad_request("header " + name + " contains a line break or NUL");
    auto [slot, inserted] = headers.emplace(name, canonical_value(raw_value));
    if (!inserted)
      slot->second += "," + canonical_value(raw_value);
  }
  if (headers.count("host") == 0)
    return bad_request("no Host header");
  headers["x-amz-date"] = out.date_time;
  headers["x-amz-content-sha256"] = request.payload_hash;
  if (!keys_.session_token.empty())
    headers["x-amz-security-token"] = keys_.session_token;

  std::vector<name_value> query;
  query.reserve(request.query.size());
  for (const auto& [name, value] : request.query)
    query.emplace_back(uri_encode(name), uri_encode(value));
  std::sort(query.begin(), query.end());

  std::string canonical = request.method + "\n" + uri_encode_path(request.path) + "\n";
  for (size_t i = 0; i < query.size(); ++i)
    canonical += (i == 0 ? "" : "&") + query[i].first + "=" + query[i].second;
  canonical += "\n";
  for (const auto& [name, value] : headers) {
    canonical += name + ":" + value + "\n";
    out.signed_headers += (out.signed_headers.empty() ? "" : ";") + name;
  }
  canonical += "\n" + out.signed_headers + "\n" + request.payload_hash;
  out.canonical_request = std::move(canonical);
  out.scope = out.date_time.substr(0, 8) + "/" + region_ + "/" + service + "/aws4_request";
  out.string_to_sign = std::string(algorithm) + "\n" + out.date_time + "\n" + out.scope + "\n" +
                       sha256_hex(out.canonical_request);
  return out;
}

result<std::string> sigv4_signer::canonical_request(const signing_request& request) const {
  auto parts = prepare(request);
  if (!parts)
    return parts.error();
  return std::move(parts->canonical_request);
}

result<std::string> sigv4_signer::string_to_sign(const signing_request& request) const {
  auto parts = prepare(request);
  if (!parts)
    return parts.error();
  return std::move(parts->string_to_sign);
}

result<std::vector<name_value>> sigv4_signer::sign(const signing_request& request) const {
  auto parts = prepare(request);
  if (!parts)
    return parts.error();

  std::string key = hmac_sha256("AWS4" + keys_.secret_access_key, parts->date_time.substr(0, 8));
  key = hmac_sha256(key, region_);
  key = hmac_sha256(key, service);
  key = hmac_sha256(key, "aws4_request");
  std::string signature = hex(hmac_sha256(key, parts->string_to_sign));

  std::vector<name_value> out;
  out.emplace_back("Authorization", std::string(algorithm) + " Credential=" + keys_.access_key_id +
                                      "/" + parts->scope + ",SignedHeaders=" +
                                      parts->signed_headers + ",Signature=" + signature);
  out.emplace_back("x-amz-date", parts->date_time);
  out.emplace_back("x-amz-content-sha256", request.payload_hash);
  if (!keys_.session_token.empty())
    out.emplace_back("x-amz-security-token", keys_.session_token);
  return out;
}

} // namespace ferry::s3
