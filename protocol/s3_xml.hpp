#pragma once

// The XML bodies of the S3 REST API that Ferry's S3 backend sends and
// receives: listing, multipart upload and error responses, plus the mapping
// of S3 error codes onto Ferry's error taxonomy.
// Pure functions: no I/O, nothing throws. Malformed input is reported as
// errc::invalid_request with a message naming what is wrong and where.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/status.hpp"

namespace ferry::protocol {

/// Largest XML body accepted. A ListObjectsV2 page of 1000 keys is well
/// under 1 MiB; anything this big is not an S3 response.
inline constexpr size_t max_s3_xml_bytes = 16 * 1024 * 1024;

/// Deepest element nesting accepted. S3 bodies nest at most 4 levels; the
/// reader recurses per level, so the cap also bounds its stack use.
inline constexpr int max_s3_xml_depth = 32;

/// Highest part number S3 accepts in a multipart upload.
inline constexpr int max_s3_part_number = 10000;

/// The namespace S3 puts on its response roots and expects on request roots.
inline constexpr std::string_view s3_xml_namespace = "http://s3.amazonaws.com/doc/2006-03-01/";

/// One element of a parsed XML document. Attributes (S3 only sends xmlns)
/// are checked for well-formedness and then dropped.
struct xml_element {
  /// The local name: a namespace prefix ("s3:Key") is removed.
  std::string name;
  /// The character data directly inside this element (CDATA included),
  /// with references decoded and nothing trimmed.
  std::string text;
  std::vector<xml_element> children;

  /// The first child called `child_name`, or nullptr.
  const xml_element* child(std::string_view child_name) const;
};

/// Parses the subset of XML 1.0 that S3 servers send: an optional
/// `<?xml ...?>` declaration, one root element, attributes, character data
/// with the five predefined entities and numeric character references,
/// CDATA sections, comments and processing instructions (skipped).
/// Document type declarations are rejected outright, so no entity can
/// expand. Bodies over max_s3_xml_bytes, nesting deeper than
/// max_s3_xml_depth and malformed input fail with errc::invalid_request.
result<xml_element> parse_s3_xml(std::string_view body);

/// Character data escaped for use as element text: `& < >` become entities
/// and CR becomes `&#13;` (a parser would otherwise turn it into LF). Quotes
/// stay literal, as S3 clients send ETags. Other control bytes cannot appear
/// in XML 1.0 at all; callers reject them first (see
/// encode_complete_multipart_upload).
std::string escape_xml_text(std::string_view text);

/// An ETag without its surrounding double quotes (S3 sends `"<md5>"` and
/// `"<md5>-<parts>"`); returned unchanged when it is not quoted.
std::string strip_etag_quotes(std::string_view etag);

/// One object in a ListObjectsV2 page.
struct s3_object_entry {
  std::string key;
  int64_t size = 0;
  /// Quotes stripped; empty when the server sent none.
  std::string etag;
  /// As sent (ISO 8601, e.g. "2026-11-22T03:14:55.000Z"); empty when absent.
  std::string last_modified;
};

/// A ListObjectsV2 response (`<ListBucketResult>`).
struct s3_list_objects_result {
  bool is_truncated = false;
  /// Present whenever is_truncated is; pass it as continuation-token.
  std::optional<std::string> next_continuation_token;
  /// Keys plus common prefixes on this page, when the server said.
  std::optional<int64_t> key_count;
  std::vector<s3_object_entry> contents;
};

/// Decodes a ListObjectsV2 body. Each Contents needs Key and a non-negative
/// Size; a truncated page without NextContinuationToken is rejected, since
/// the listing could not go on. Unknown elements are ignored.
result<s3_list_objects_result> decode_list_objects_v2(std::string_view body);

/// A CreateMultipartUpload response (`<InitiateMultipartUploadResult>`).
struct s3_initiate_multipart_result {
  std::string bucket;
  std::string key;
  /// Never empty.
  std::string upload_id;
};

/// Decodes a CreateMultipartUpload body; UploadId is required.
result<s3_initiate_multipart_result> decode_initiate_multipart_upload(std::string_view body);

/// One uploaded part named in a CompleteMultipartUpload request.
struct s3_completed_part {
  int part_number = 0;
  /// With or without quotes; it is sent quoted.
  std::string etag;
  /// Base64 SHA-256 of the part, when the upload uses that checksum.
  std::optional<std::string> checksum_sha256;
};

/// The CompleteMultipartUpload request body. Fails with invalid_request when
/// there are no parts, part numbers are outside 1..max_s3_part_number or not
/// strictly ascending (S3 answers InvalidPartOrder), an ETag is empty, or a
/// value holds control characters XML cannot carry.
result<std::string> encode_complete_multipart_upload(const std::vector<s3_completed_part>& parts);

/// Decodes a CompleteMultipartUpload request body (what
/// encode_complete_multipart_upload produces, or what a client sends to an
/// S3 server). ETags come back without quotes.
result<std::vector<s3_completed_part>> decode_complete_multipart_upload(std::string_view body);

/// A CompleteMultipartUpload response (`<CompleteMultipartUploadResult>`).
struct s3_complete_multipart_result {
  std::string location;
  std::string bucket;
  std::string key;
  /// Quotes stripped. Empty when the server sent none (radosgw sends an
  /// empty element); HEAD the object when the ETag matters.
  std::string etag;
};

/// Decodes a CompleteMultipartUpload response. S3 may answer 200 and still
/// put an `<Error>` in the body (the failure shows up after the headers were
/// sent); such a body yields s3_error_status() for that error, not a result.
result<s3_complete_multipart_result> decode_complete_multipart_upload_result(std::string_view body);

/// One part in a ListParts page.
struct s3_part_entry {
  int part_number = 0;
  /// Quotes stripped.
  std::string etag;
  int64_t size = 0;
};

/// A ListParts response (`<ListPartsResult>`).
struct s3_list_parts_result {
  bool is_truncated = false;
  /// Present whenever is_truncated is; pass it as part-number-marker.
  std::optional<int> next_part_number_marker;
  std::vector<s3_part_entry> parts;
};

/// Decodes a ListParts body. Each Part needs PartNumber (1..10000), ETag and
/// a non-negative Size; a truncated page needs NextPartNumberMarker.
result<s3_list_parts_result> decode_list_parts(std::string_view body);

/// One multipart upload in progress, from a ListMultipartUploads page.
struct s3_multipart_upload_entry {
  std::string key;
  /// Never empty.
  std::string upload_id;
  /// When the upload was started (the server's Initiated).
  std::chrono::system_clock::time_point initiated;
};

/// A ListMultipartUploads response (`<ListMultipartUploadsResult>`).
struct s3_list_multipart_uploads_result {
  bool is_truncated = false;
  /// Present whenever is_truncated is; pass it as key-marker.
  std::optional<std::string> next_key_marker;
  /// Pass it as upload-id-marker when present.
  std::optional<std::string> next_upload_id_marker;
  std::vector<s3_multipart_upload_entry> uploads;
};

/// Decodes a ListMultipartUploads body. Each Upload needs a non-empty Key
/// and UploadId and an Initiated date-time (RFC 3339, as S3 sends
/// "2026-11-22T03:58:32.462Z"); a truncated page needs NextKeyMarker. Unknown
/// elements (Initiator, Owner, StorageClass, CommonPrefixes) are ignored.
result<s3_list_multipart_uploads_result> decode_list_multipart_uploads(std::string_view body);

/// An S3 error response (`<Error>`). Unknown elements (HostId, BucketName,
/// radosgw's extras) are ignored.
struct s3_error {
  /// Never empty, e.g. "NoSuchKey".
  std::string code;
  std::string message;
  std::string request_id;
  std::string resource;
};

/// Decodes an error body; Code is required.
result<s3_error> decode_s3_error(std::string_view body);

/// Ferry's class for an S3 error code and the response's HTTP status:
/// - SlowDown, ServiceUnavailable, RequestTimeout, InternalError, 503, 500,
///   429, 408, unknown 5xx and unknown codes on non-error statuses (an
///   `<Error>` inside a 200): unavailable.
/// - RequestTimeTooSkewed: config_error (the local clock is wrong).
/// - NoSuchBucket, NoSuchKey, NoSuchUpload: not_found.
/// - AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch, ExpiredToken,
///   InvalidToken: permission_denied.
/// - BadDigest, XAmzContentSHA256Mismatch: hash_mismatch.
/// - QuotaExceeded: no_space.
/// - EntityTooSmall, EntityTooLarge, InvalidPart, InvalidPartOrder,
///   InvalidDigest and unknown 4xx: invalid_request.
errc s3_error_class(std::string_view code, long http_status);

/// The status for an S3 error: s3_error_class() as the code, and a message
/// quoting the Code, HTTP status, Message and RequestId plus what to check
/// or do next. It carries no retry_after; for SlowDown and 503 the caller
/// adds the response's Retry-After (S3 usually sends none, so the retry
/// policy's backoff applies).
status s3_error_status(const s3_error& error, long http_status);

} // namespace ferry::protocol
