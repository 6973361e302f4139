// Fuzzes every decoder of protocol/s3_xml.hpp: the XML bodies an S3 server
// (or whatever answers in its place) sends. Byte 0 picks the decoder, the
// rest is the body:
//   byte 0 % 8:  0 parse_s3_xml               4 decode_complete_multipart_upload_result
//                1 decode_list_objects_v2      5 decode_list_parts
//                2 decode_initiate_multipart   6 decode_list_multipart_uploads
//                3 decode_complete_multipart_upload (request body)   7 decode_s3_error
// Promises checked, besides "never throws":
// - parse_s3_xml: a parsed tree nests at most max_s3_xml_depth deep, and
//   written back as XML (text escaped with escape_xml_text) parses to the
//   same tree; any body text without control bytes survives
//   escape_xml_text and a parse unchanged;
// - failures are errc::invalid_request with a printable message (an <Error>
//   inside a CompleteMultipartUpload result maps through s3_error_class);
// - each decoder's documented guarantees: truncated pages carry their
//   continuation token / marker, required fields are non-empty, numbers are
//   in range, identifiers are trimmed;
// - a decoded CompleteMultipartUpload request re-encodes (when its parts
//   ascend and hold no control bytes) and decodes to the same parts.

#include "fuzz_check.hpp"

#include "protocol/s3_xml.hpp"

#include <string>

namespace {

using namespace ferry;
using namespace ferry::protocol;

bool has_control(std::string_view text) {
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f)
      return true;
  }
  return false;
}

bool is_xml_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool trimmed(std::string_view text) {
  return text.empty() || (!is_xml_space(text.front()) && !is_xml_space(text.back()));
}

int depth(const xml_element& element) {
  int deepest = 0;
  for (const auto& child : element.children)
    deepest = std::max(deepest, depth(child));
  return deepest + 1;
}

// Written back with a prefix on every name, since a local name need not be a
// valid XML name on its own ("a:1" has the local name "1").
void write(const xml_element& element, std::string& out) {
  out += "<p:" + element.name + ">" + escape_xml_text(element.text);
  for (const auto& child : element.children)
    write(child, out);
  out += "</p:" + element.name + ">";
}

bool same(const xml_element& a, const xml_element& b) {
  if (a.name != b.name || a.text != b.text || a.children.size() != b.children.size())
    return false;
  for (size_t i = 0; i < a.children.size(); ++i)
    if (!same(a.children[i], b.children[i]))
      return false;
  return true;
}

void check_failure(const status& failure) {
  FUZZ_CHECK(!failure.ok());
  FUZZ_CHECK(failure.code() == errc::invalid_request);
  FUZZ_CHECK(!failure.message().empty());
  FUZZ_CHECK(ferry::fuzz::printable_ascii(failure.message()));
}

// The value, or nullptr after checking the failure.
template <class T>
const T* success(const result<T>& decoded) {
  if (decoded)
    return &*decoded;
  check_failure(decoded.error());
  return nullptr;
}
template <class T>
const T* success(const result<T>&& decoded) = delete;

void check_tree(std::string_view body) {
  const auto tree = parse_s3_xml(body);
  if (!success(tree))
    return;
  FUZZ_CHECK(depth(*tree) <= max_s3_xml_depth);
  std::string again;
  write(*tree, again);
  const auto reparsed = parse_s3_xml(again);
  FUZZ_CHECK(reparsed.ok());
  FUZZ_CHECK(same(*tree, *reparsed));
}

// Any text XML can carry comes back from escape_xml_text and a parse as is.
void check_escape(std::string_view text) {
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 && !is_xml_space(c))
      return;
  }
  const std::string body = "<Key>" + escape_xml_text(text) + "</Key>";
  if (body.size() > max_s3_xml_bytes)
    return;
  const auto parsed = parse_s3_xml(body);
  FUZZ_CHECK(parsed.ok());
  FUZZ_CHECK(parsed->name == "Key" && parsed->children.empty());
  FUZZ_CHECK(parsed->text == text);
}

void check_list_objects(std::string_view body) {
  const auto decoded = decode_list_objects_v2(body);
  const auto* list = success(decoded);
  if (!list)
    return;
  if (list->is_truncated)
    FUZZ_CHECK(list->next_continuation_token && !list->next_continuation_token->empty());
  if (list->key_count)
    FUZZ_CHECK(*list->key_count >= 0);
  for (const auto& object : list->contents) {
    FUZZ_CHECK(!object.key.empty());
    FUZZ_CHECK(object.size >= 0);
    FUZZ_CHECK(trimmed(object.last_modified));
  }
}

void check_initiate(std::string_view body) {
  const auto decoded = decode_initiate_multipart_upload(body);
  const auto* upload = success(decoded);
  if (!upload)
    return;
  FUZZ_CHECK(!upload->upload_id.empty());
  FUZZ_CHECK(trimmed(upload->upload_id));
}

void check_complete_request(std::string_view body) {
  const auto decoded = decode_complete_multipart_upload(body);
  const auto* parts = success(decoded);
  if (!parts)
    return;
  FUZZ_CHECK(!parts->empty());
  bool ascending = true;
  bool encodable = true;
  int previous = 0;
  for (const auto& part : *parts) {
    FUZZ_CHECK(part.part_number >= 1 && part.part_number <= max_s3_part_number);
    FUZZ_CHECK(!part.etag.empty());
    if (part.checksum_sha256)
      FUZZ_CHECK(trimmed(*part.checksum_sha256));
    ascending = ascending && part.part_number > previous;
    previous = part.part_number;
    encodable = encodable && !strip_etag_quotes(part.etag).empty() && !has_control(part.etag) &&
                !(part.checksum_sha256 && has_control(*part.checksum_sha256));
  }
  const auto encoded = encode_complete_multipart_upload(*parts);
  FUZZ_CHECK(encoded.ok() == (ascending && encodable));
  if (!encoded) {
    FUZZ_CHECK(encoded.error().code() == errc::invalid_request);
    return;
  }
  const auto again = decode_complete_multipart_upload(*encoded);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->size() == parts->size());
  for (size_t i = 0; i < parts->size(); ++i) {
    const auto& was = (*parts)[i];
    const auto& now = (*again)[i];
    FUZZ_CHECK(now.part_number == was.part_number);
    // Sent quoted whatever it came with; read back without quotes.
    FUZZ_CHECK(now.etag == strip_etag_quotes(was.etag));
    FUZZ_CHECK(now.checksum_sha256 == was.checksum_sha256);
  }
}

void check_complete_result(std::string_view body) {
  const auto decoded = decode_complete_multipart_upload_result(body);
  if (decoded)
    return;
  const status& failure = decoded.error();
  FUZZ_CHECK(!failure.message().empty());
  FUZZ_CHECK(ferry::fuzz::printable_ascii(failure.message()));
  // Either malformed, or the <Error> a 200 carried, classed as S3 errors are.
  const auto as_error = decode_s3_error(body);
  if (as_error) {
    FUZZ_CHECK(failure.code() == s3_error_class(as_error->code, 200));
    FUZZ_CHECK(failure.message() == s3_error_status(*as_error, 200).message());
  } else {
    FUZZ_CHECK(failure.code() == errc::invalid_request);
  }
}

void check_list_parts(std::string_view body) {
  const auto decoded = decode_list_parts(body);
  const auto* list = success(decoded);
  if (!list)
    return;
  if (list->is_truncated)
    FUZZ_CHECK(list->next_part_number_marker.has_value());
  if (list->next_part_number_marker)
    FUZZ_CHECK(*list->next_part_number_marker >= 0 &&
               *list->next_part_number_marker <= max_s3_part_number);
  for (const auto& part : list->parts) {
    FUZZ_CHECK(part.part_number >= 1 && part.part_number <= max_s3_part_number);
    FUZZ_CHECK(part.size >= 0);
  }
}

void check_list_uploads(std::string_view body) {
  const auto decoded = decode_list_multipart_uploads(body);
  const auto* list = success(decoded);
  if (!list)
    return;
  if (list->is_truncated)
    FUZZ_CHECK(list->next_key_marker && !list->next_key_marker->empty());
  for (const auto& upload : list->uploads) {
    FUZZ_CHECK(!upload.key.empty());
    FUZZ_CHECK(!upload.upload_id.empty());
    FUZZ_CHECK(trimmed(upload.upload_id));
  }
}

void check_error(std::string_view body) {
  const auto decoded = decode_s3_error(body);
  const auto* error = success(decoded);
  if (!error)
    return;
  FUZZ_CHECK(!error->code.empty());
  FUZZ_CHECK(trimmed(error->code));
  for (long http_status : {200L, 403L, 404L, 429L, 500L, 503L}) {
    const status mapped = s3_error_status(*error, http_status);
    FUZZ_CHECK(!mapped.ok());
    FUZZ_CHECK(mapped.code() == s3_error_class(error->code, http_status));
    FUZZ_CHECK(ferry::fuzz::printable_ascii(mapped.message()));
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view body = ferry::fuzz::as_text(data, size);
  switch (ferry::fuzz::take_byte(body) % 8) {
    case 0:
      check_tree(body);
      check_escape(body);
      break;
    case 1:
      check_list_objects(body);
      break;
    case 2:
      check_initiate(body);
      break;
    case 3:
      check_complete_request(body);
      break;
    case 4:
      check_complete_result(body);
      break;
    case 5:
      check_list_parts(body);
      break;
    case 6:
      check_list_uploads(body);
      break;
    default:
      check_error(body);
      break;
  }
  return 0;
}
