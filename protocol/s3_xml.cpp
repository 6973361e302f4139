#include "protocol/s3_xml.hpp"

#include <array>
#include <limits>
#include <utility>

#include "protocol/batch_api.hpp"
#include "protocol/parsing.hpp"

namespace ferry::protocol {

namespace {

// Longest piece of server input quoted inside a message.
constexpr size_t max_quote = 60;
// Longest server error message quoted inside a status.
constexpr size_t max_server_message = 200;
// Longest reference between '&' and ';' looked at ("#x0010FFFF" is 10).
constexpr size_t max_reference = 16;
// Highest Unicode code point.
constexpr uint32_t max_code_point = 0x10FFFF;

status malformed(const std::string& what) { return {errc::invalid_request, "S3 XML: " + what}; }

// Server text made safe to show: printable ASCII only, at most `limit`
// characters, so a body cannot drive the terminal or flood a log line.
std::string printable(std::string_view text, size_t limit) {
  std::string out;
  for (char c : text) {
    if (out.size() == limit) {
      out += "...";
      break;
    }
    const auto byte = static_cast<unsigned char>(c);
    out += byte < 0x20 || byte >= 0x7f ? '?' : c;
  }
  return out;
}

std::string quoted(std::string_view text) { return "'" + printable(text, max_quote) + "'"; }

bool is_xml_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim_xml_space(std::string_view text) {
  while (!text.empty() && is_xml_space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && is_xml_space(text.back()))
    text.remove_suffix(1);
  return text;
}

bool is_name_start(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || byte >= 0x80;
}

bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

// XML 1.0 Char production, restricted to what a numeric reference may name.
bool is_xml_char(uint32_t cp) {
  if (cp < 0x20)
    return cp == 0x9 || cp == 0xA || cp == 0xD;
  if (cp >= 0xD800 && cp <= 0xDFFF)
    return false;
  return cp != 0xFFFE && cp != 0xFFFF && cp <= max_code_point;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// A recursive-descent reader over the whole body. Every step returns false
// after recording the first failure and the byte offset where it happened.
class xml_reader {
public:
  explicit xml_reader(std::string_view text) : text_(text) {}

  result<xml_element> document() {
    if (text_.size() > max_s3_xml_bytes) {
      return malformed("body of " + std::to_string(text_.size()) + " bytes exceeds the limit of " +
                       std::to_string(max_s3_xml_bytes) + " bytes");
    }
    if (starts_with("\xEF\xBB\xBF"))
      pos_ += 3;
    if (starts_with("<?xml") && (pos_ + 5 < text_.size()) &&
        (is_xml_space(text_[pos_ + 5]) || text_[pos_ + 5] == '?')) {
      if (!skip_past("?>", "the XML declaration"))
        return failure();
    }
    xml_element root;
    if (!misc())
      return failure();
    if (at_end()) {
      fail("no root element");
      return failure();
    }
    if (text_[pos_] != '<') {
      fail("expected '<' starting the root element, found text");
      return failure();
    }
    if (!element(root, 1) || !misc())
      return failure();
    if (!at_end()) {
      fail("unexpected content after the root element <" + printable(root.name, max_quote) + ">");
      return failure();
    }
    return root;
  }

private:
  status failure() const { return malformed(error_); }

  bool fail(const std::string& what) {
    if (error_.empty())
      error_ = what + " at byte " + std::to_string(pos_);
    return false;
  }

  bool at_end() const { return pos_ >= text_.size(); }

  bool starts_with(std::string_view prefix) const {
    return text_.size() - pos_ >= prefix.size() && text_.compare(pos_, prefix.size(), prefix) == 0;
  }

  bool skip_space() {
    const size_t from = pos_;
    while (!at_end() && is_xml_space(text_[pos_]))
      ++pos_;
    return pos_ != from;
  }

  bool skip_past(std::string_view terminator, const char* what) {
    const size_t end = text_.find(terminator, pos_);
    if (end == std::string_view::npos) {
      pos_ = text_.size();
      return fail(std::string{"unexpected end of input inside "} + what);
    }
    pos_ = end + terminator.size();
    return true;
  }

  // Markup that is neither an element nor text: comments and processing
  // instructions are skipped; anything else starting with "<!" is refused.
  // Returns false on failure; sets `handled` when something was consumed.
  bool other_markup(bool& handled) {
    handled = true;
    if (starts_with("<!--"))
      return skip_past("-->", "a comment");
    if (starts_with("<?xml") && pos_ + 5 < text_.size() &&
        (is_xml_space(text_[pos_ + 5]) || text_[pos_ + 5] == '?')) {
      return fail("an XML declaration is only allowed at the very start");
    }
    if (starts_with("<?"))
      return skip_past("?>", "a processing instruction");
    if (starts_with("<!DOCTYPE"))
      return fail("document type declarations (<!DOCTYPE) are refused");
    if (starts_with("<!") && !starts_with("<![CDATA["))
      return fail("unsupported markup '<!'");
    handled = false;
    return true;
  }

  // Whitespace, comments and processing instructions around the root.
  bool misc() {
    for (;;) {
      skip_space();
      bool handled = false;
      if (!other_markup(handled))
        return false;
      if (!handled)
        return true;
    }
  }

  bool name(std::string& out) {
    const size_t from = pos_;
    if (at_end() || !is_name_start(text_[pos_]))
      return fail("expected a name");
    while (!at_end() && is_name_char(text_[pos_]))
      ++pos_;
    out.assign(text_.substr(from, pos_ - from));
    return true;
  }

  // `&...;` at pos_, decoded onto `out`.
  bool reference(std::string& out) {
    const size_t end = text_.find(';', pos_);
    if (end == std::string_view::npos || end - pos_ - 1 > max_reference) {
      return fail("'&' not followed by a complete entity or character reference");
    }
    const std::string_view ref = text_.substr(pos_ + 1, end - pos_ - 1);
    static constexpr std::array<std::pair<std::string_view, char>, 5> predefined = {
      {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}}};
    for (const auto& [entity, character] : predefined) {
      if (ref == entity) {
        out += character;
        pos_ = end + 1;
        return true;
      }
    }
    if (ref.empty() || ref.front() != '#') {
      return fail("unknown entity " + quoted("&" + std::string{ref} + ";") +
                  " (only amp, lt, gt, quot and apos exist without a DTD)");
    }
    const bool hex = ref.size() > 1 && ref[1] == 'x';
    const std::string_view digits = ref.substr(hex ? 2 : 1);
    uint32_t cp = 0;
    for (char c : digits) {
      uint32_t digit = 0;
      if (c >= '0' && c <= '9')
        digit = static_cast<uint32_t>(c - '0');
      else if (hex && c >= 'a' && c <= 'f')
        digit = static_cast<uint32_t>(c - 'a' + 10);
      else if (hex && c >= 'A' && c <= 'F')
        digit = static_cast<uint32_t>(c - 'A' + 10);
      else
        return fail("malformed character reference " + quoted("&" + std::string{ref} + ";"));
      cp = cp * (hex ? 16 : 10) + digit;
      // Stop before the accumulator could wrap.
      if (cp > max_code_point)
        break;
    }
    if (digits.empty() || !is_xml_char(cp)) {
      return fail("character reference " + quoted("&" + std::string{ref} + ";") +
                  " does not name an XML character");
    }
    append_utf8(out, cp);
    pos_ = end + 1;
    return true;
  }

  bool check_char(char c, const char* where) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 && !is_xml_space(c)) {
      return fail("control byte " + std::to_string(byte) + " in " + where);
    }
    return true;
  }

  bool attribute() {
    std::string ignored;
    if (!name(ignored))
      return false;
    skip_space();
    if (at_end() || text_[pos_] != '=')
      return fail("expected '=' after attribute name");
    ++pos_;
    skip_space();
    if (at_end() || (text_[pos_] != '"' && text_[pos_] != '\'')) {
      return fail("expected a quoted attribute value");
    }
    const char quote = text_[pos_++];
    std::string value;
    for (;;) {
      if (at_end())
        return fail("unexpected end of input inside an attribute value");
      const char c = text_[pos_];
      if (c == quote)
        break;
      if (c == '<')
        return fail("'<' inside an attribute value");
      if (c == '&') {
        if (!reference(value))
          return false;
        continue;
      }
      if (!check_char(c, "an attribute value"))
        return false;
      ++pos_;
    }
    ++pos_;
    return true;
  }

  // The start tag's remainder after its name; sets `empty` for `<x/>`.
  bool start_tag_rest(const std::string& qname, bool& empty) {
    for (;;) {
      const bool spaced = skip_space();
      if (at_end()) {
        return fail("unexpected end of input inside the start tag of <" +
                    printable(qname, max_quote) + ">");
      }
      if (starts_with("/>")) {
        pos_ += 2;
        empty = true;
        return true;
      }
      if (text_[pos_] == '>') {
        ++pos_;
        empty = false;
        return true;
      }
      if (!spaced)
        return fail("expected whitespace, '>' or '/>' in a start tag");
      if (!attribute())
        return false;
    }
  }

  bool end_tag(const std::string& qname) {
    pos_ += 2;
    std::string closing;
    if (!name(closing))
      return false;
    if (closing != qname) {
      return fail("closing tag </" + printable(closing, max_quote) + "> does not match <" +
                  printable(qname, max_quote) + ">");
    }
    skip_space();
    if (at_end() || text_[pos_] != '>')
      return fail("expected '>' ending a closing tag");
    ++pos_;
    return true;
  }

  bool cdata(std::string& out) {
    pos_ += 9; // "<![CDATA["
    const size_t from = pos_;
    if (!skip_past("]]>", "a CDATA section"))
      return false;
    const std::string_view data = text_.substr(from, pos_ - 3 - from);
    for (char c : data) {
      if (!check_char(c, "a CDATA section"))
        return false;
    }
    out += data;
    return true;
  }

  bool element(xml_element& out, int depth) {
    if (depth > max_s3_xml_depth) {
      return fail("elements nest deeper than " + std::to_string(max_s3_xml_depth) + " levels");
    }
    ++pos_; // '<'
    std::string qname;
    bool empty = false;
    if (!name(qname) || !start_tag_rest(qname, empty))
      return false;
    const size_t colon = qname.find(':');
    out.name = colon == std::string::npos ? qname : qname.substr(colon + 1);
    if (empty)
      return true;
    for (;;) {
      if (at_end()) {
        return fail("unexpected end of input: <" + printable(qname, max_quote) + "> is not closed");
      }
      const char c = text_[pos_];
      if (c == '<') {
        bool handled = false;
        if (starts_with("</"))
          return end_tag(qname);
        if (!other_markup(handled))
          return false;
        if (handled)
          continue;
        if (starts_with("<![CDATA[")) {
          if (!cdata(out.text))
            return false;
          continue;
        }
        out.children.emplace_back();
        if (!element(out.children.back(), depth + 1))
          return false;
      } else if (c == '&') {
        if (!reference(out.text))
          return false;
      } else if (c == '\r') {
        // Line ends are normalised to LF, as every XML parser does.
        out.text += '\n';
        ++pos_;
        if (!at_end() && text_[pos_] == '\n')
          ++pos_;
      } else {
        if (!check_char(c, "character data"))
          return false;
        if (c == '>' && pos_ >= 2 && text_.compare(pos_ - 2, 3, "]]>") == 0) {
          return fail("']]>' in character data");
        }
        out.text += c;
        ++pos_;
      }
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::string error_;
};

// Reads the fields of one element for a typed decoder. The first problem is
// kept (with `where`, e.g. "ListBucketResult.Contents[2]") and later calls
// become no-ops, so decoders read all fields and check error() once.
class field_reader {
public:
  field_reader(const xml_element& element, std::string where)
      : element_(element), where_(std::move(where)) {}

  bool has(std::string_view name) const { return element_.child(name) != nullptr; }

  // The element's text as sent; "" when absent.
  std::string text(std::string_view name, bool required) {
    const xml_element* field = find(name, required);
    return field == nullptr ? std::string{} : field->text;
  }

  std::optional<int64_t> integer(std::string_view name, bool required, int64_t min, int64_t max) {
    const xml_element* field = find(name, required);
    if (field == nullptr)
      return std::nullopt;
    const std::string_view digits = trim_xml_space(field->text);
    int64_t value = 0;
    bool overflow = digits.empty();
    for (char c : digits) {
      if (c < '0' || c > '9') {
        fail(name, quoted(field->text) + " is not a non-negative integer");
        return std::nullopt;
      }
      overflow = overflow || __builtin_mul_overflow(value, 10, &value) ||
                 __builtin_add_overflow(value, c - '0', &value);
    }
    if (digits.empty()) {
      fail(name, "is empty, expected an integer");
      return std::nullopt;
    }
    if (overflow || value < min || value > max) {
      fail(name, quoted(field->text) + " is out of range " + std::to_string(min) + ".." +
                   std::to_string(max));
      return std::nullopt;
    }
    return value;
  }

  // false when absent.
  bool boolean(std::string_view name) {
    const xml_element* field = find(name, false);
    if (field == nullptr)
      return false;
    const std::string_view value = trim_xml_space(field->text);
    if (equals_ci(value, "true"))
      return true;
    if (!equals_ci(value, "false"))
      fail(name, quoted(field->text) + " is not true or false");
    return false;
  }

  void fail(std::string_view name, const std::string& what) {
    if (error_.ok()) {
      error_ = malformed(where_ + "." + std::string{name} + ": " + what);
    }
  }

  const status& error() const { return error_; }

private:
  const xml_element* find(std::string_view name, bool required) {
    const xml_element* first = nullptr;
    for (const auto& child : element_.children) {
      if (child.name != name)
        continue;
      if (first != nullptr) {
        fail(name, "appears more than once");
        return nullptr;
      }
      first = &child;
    }
    if (first == nullptr && required)
      fail(name, "is missing");
    if (first != nullptr && !first->children.empty()) {
      fail(name, "holds elements, expected text");
      return nullptr;
    }
    return first;
  }

  const xml_element& element_;
  std::string where_;
  status error_;
};

result<xml_element> parse_root(std::string_view body, std::string_view root_name) {
  auto document = parse_s3_xml(body);
  if (!document)
    return document.error();
  if (document->name != root_name) {
    return malformed("expected a <" + std::string{root_name} + "> document, got <" +
                     printable(document->name, max_quote) + ">");
  }
  return document;
}

std::string indexed(std::string_view parent, std::string_view name, size_t index) {
  return std::string{parent} + "." + std::string{name} + "[" + std::to_string(index) + "]";
}

result<s3_error> decode_error_element(const xml_element& root) {
  field_reader fields{root, "Error"};
  s3_error error;
  error.code = std::string{trim_xml_space(fields.text("Code", true))};
  error.message = fields.text("Message", false);
  error.request_id = fields.text("RequestId", false);
  error.resource = fields.text("Resource", false);
  if (fields.error().ok() && error.code.empty())
    fields.fail("Code", "is empty");
  if (!fields.error().ok())
    return fields.error();
  return error;
}

bool has_control(std::string_view text) {
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f)
      return true;
  }
  return false;
}

struct known_error {
  std::string_view code;
  errc kind;
  const char* advice;
};

// What each S3 error code means for Ferry, and what the user should do.
constexpr std::array<known_error, 22> known_errors = {{
  {"SlowDown", errc::unavailable, "the server is throttling requests; retrying after a pause"},
  {"ServiceUnavailable", errc::unavailable,
   "the server is temporarily unavailable; retrying after a pause"},
  {"RequestTimeout", errc::unavailable,
   "the server gave up waiting for the request body; retrying"},
  {"InternalError", errc::unavailable, "the server failed internally; retrying"},
  {"RequestTimeTooSkewed", errc::config_error,
   "this machine's clock differs from the server's by more than 15 minutes; synchronise it "
   "(for example with NTP) and try again"},
  {"NoSuchBucket", errc::not_found,
   "the bucket does not exist; check the bucket name, the endpoint URL and the region"},
  {"AccessDenied", errc::permission_denied,
   "check that the credentials are allowed to access this bucket and key (user and bucket "
   "policies)"},
  {"InvalidAccessKeyId", errc::permission_denied,
   "the server does not know the access key id; check the configured access key and that the "
   "endpoint is the right server"},
  {"SignatureDoesNotMatch", errc::permission_denied,
   "check the secret access key and the region; a proxy that rewrites requests also causes this"},
  {"ExpiredToken", errc::permission_denied,
   "the session token has expired; refresh the credentials"},
  {"InvalidToken", errc::permission_denied,
   "the session token is malformed or invalid; check the credentials"},
  {"NoSuchKey", errc::not_found, "the object does not exist in the bucket"},
  {"NoSuchUpload", errc::not_found,
   "the multipart upload was aborted or has expired; the upload must start over"},
  {"BadDigest", errc::hash_mismatch,
   "the body did not match the checksum sent with it; it was damaged in transit"},
  {"XAmzContentSHA256Mismatch", errc::hash_mismatch,
   "the body did not match its x-amz-content-sha256; it was damaged in transit"},
  {"InvalidDigest", errc::invalid_request, "the Content-MD5 or checksum header is malformed"},
  {"EntityTooSmall", errc::invalid_request,
   "every part but the last must be at least 5 MiB; raise the part size"},
  {"EntityTooLarge", errc::invalid_request,
   "the object or part is larger than the server allows; lower the part size"},
  {"InvalidPart", errc::invalid_request,
   "a listed part was not uploaded or its ETag differs; the upload must start over"},
  {"InvalidPartOrder", errc::invalid_request, "parts must be listed in ascending order"},
  {"QuotaExceeded", errc::no_space, "the bucket's or user's quota is used up"},
  {"InvalidRange", errc::invalid_request, "the requested byte range lies outside the object"},
}};

const known_error* find_known(std::string_view code) {
  for (const auto& known : known_errors) {
    if (known.code == code)
      return &known;
  }
  return nullptr;
}

} // namespace

const xml_element* xml_element::child(std::string_view child_name) const {
  for (const auto& candidate : children) {
    if (candidate.name == child_name)
      return &candidate;
  }
  return nullptr;
}

result<xml_element> parse_s3_xml(std::string_view body) { return xml_reader{body}.document(); }

std::string escape_xml_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\r':
        out += "&#13;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string strip_etag_quotes(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag.remove_prefix(1);
    etag.remove_suffix(1);
  }
  return std::string{etag};
}

result<s3_list_objects_result> decode_list_objects_v2(std::string_view body) {
  auto root = parse_root(body, "ListBucketResult");
  if (!root)
    return root.error();
  field_reader fields{*root, "ListBucketResult"};
  s3_list_objects_result list;
  list.is_truncated = fields.boolean("IsTruncated");
  if (fields.has("NextContinuationToken")) {
    list.next_continuation_token = fields.text("NextContinuationToken", true);
  }
  list.key_count = fields.integer("KeyCount", false, 0, std::numeric_limits<int64_t>::max());
  const bool has_token = list.next_continuation_token && !list.next_continuation_token->empty();
  if (list.is_truncated && !has_token) {
    fields.fail("NextContinuationToken", "is missing although IsTruncated is true");
  }
  if (!fields.error().ok())
    return fields.error();
  for (const auto& child : root->children) {
    if (child.name != "Contents")
      continue;
    field_reader entry{child, indexed("ListBucketResult", "Contents", list.contents.size())};
    s3_object_entry object;
    object.key = entry.text("Key", true);
    object.size = entry.integer("Size", true, 0, std::numeric_limits<int64_t>::max()).value_or(0);
    object.etag = strip_etag_quotes(trim_xml_space(entry.text("ETag", false)));
    object.last_modified = std::string{trim_xml_space(entry.text("LastModified", false))};
    if (entry.error().ok() && object.key.empty())
      entry.fail("Key", "is empty");
    if (!entry.error().ok())
      return entry.error();
    list.contents.push_back(std::move(object));
  }
  return list;
}

result<s3_initiate_multipart_result> decode_initiate_multipart_upload(std::string_view body) {
  auto root = parse_root(body, "InitiateMultipartUploadResult");
  if (!root)
    return root.error();
  field_reader fields{*root, "InitiateMultipartUploadResult"};
  s3_initiate_multipart_result upload;
  upload.bucket = fields.text("Bucket", false);
  upload.key = fields.text("Key", false);
  upload.upload_id = std::string{trim_xml_space(fields.text("UploadId", true))};
  if (fields.error().ok() && upload.upload_id.empty())
    fields.fail("UploadId", "is empty");
  if (!fields.error().ok())
    return fields.error();
  return upload;
}

result<std::string> encode_complete_multipart_upload(const std::vector<s3_completed_part>& parts) {
  if (parts.empty()) {
    return status{errc::invalid_request, "CompleteMultipartUpload needs at least one part"};
  }
  std::string body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  body += "<CompleteMultipartUpload xmlns=\"";
  body += s3_xml_namespace;
  body += "\">";
  int previous = 0;
  for (const auto& part : parts) {
    const std::string which = "CompleteMultipartUpload part " + std::to_string(part.part_number);
    if (part.part_number < 1 || part.part_number > max_s3_part_number) {
      return status{errc::invalid_request,
                    which + ": part numbers run from 1 to " + std::to_string(max_s3_part_number)};
    }
    if (part.part_number <= previous) {
      return status{errc::invalid_request,
                    which + ": part numbers must be strictly ascending (follows part " +
                      std::to_string(previous) + ")"};
    }
    previous = part.part_number;
    const std::string etag = strip_etag_quotes(part.etag);
    if (etag.empty())
      return status{errc::invalid_request, which + ": the ETag is empty"};
    if (has_control(etag) || (part.checksum_sha256 && has_control(*part.checksum_sha256))) {
      return status{errc::invalid_request, which + ": control characters in the ETag or checksum"};
    }
    body += "<Part><PartNumber>" + std::to_string(part.part_number) + "</PartNumber><ETag>\"" +
            escape_xml_text(etag) + "\"</ETag>";
    if (part.checksum_sha256) {
      body += "<ChecksumSHA256>" + escape_xml_text(*part.checksum_sha256) + "</ChecksumSHA256>";
    }
    body += "</Part>";
  }
  body += "</CompleteMultipartUpload>";
  return body;
}

result<std::vector<s3_completed_part>> decode_complete_multipart_upload(std::string_view body) {
  auto root = parse_root(body, "CompleteMultipartUpload");
  if (!root)
    return root.error();
  std::vector<s3_completed_part> parts;
  for (const auto& child : root->children) {
    if (child.name != "Part")
      continue;
    field_reader fields{child, indexed("CompleteMultipartUpload", "Part", parts.size())};
    s3_completed_part part;
    part.part_number =
      static_cast<int>(fields.integer("PartNumber", true, 1, max_s3_part_number).value_or(0));
    part.etag = strip_etag_quotes(trim_xml_space(fields.text("ETag", true)));
    if (fields.has("ChecksumSHA256")) {
      part.checksum_sha256 = std::string{trim_xml_space(fields.text("ChecksumSHA256", true))};
    }
    if (fields.error().ok() && part.etag.empty())
      fields.fail("ETag", "is empty");
    if (!fields.error().ok())
      return fields.error();
    parts.push_back(std::move(part));
  }
  if (parts.empty())
    return malformed("CompleteMultipartUpload lists no Part");
  return parts;
}

result<s3_complete_multipart_result>
decode_complete_multipart_upload_result(std::string_view body) {
  auto document = parse_s3_xml(body);
  if (!document)
    return document.error();
  if (document->name == "Error") {
    // A 200 whose body reports a failure (S3 sends the status line first).
    auto error = decode_error_element(*document);
    if (!error)
      return error.error();
    return s3_error_status(*error, 200);
  }
  if (document->name != "CompleteMultipartUploadResult") {
    return malformed("expected a <CompleteMultipartUploadResult> document, got <" +
                     printable(document->name, max_quote) + ">");
  }
  field_reader fields{*document, "CompleteMultipartUploadResult"};
  s3_complete_multipart_result completed;
  completed.location = fields.text("Location", false);
  completed.bucket = fields.text("Bucket", false);
  completed.key = fields.text("Key", false);
  completed.etag = strip_etag_quotes(trim_xml_space(fields.text("ETag", false)));
  if (!fields.error().ok())
    return fields.error();
  return completed;
}

result<s3_list_parts_result> decode_list_parts(std::string_view body) {
  auto root = parse_root(body, "ListPartsResult");
  if (!root)
    return root.error();
  field_reader fields{*root, "ListPartsResult"};
  s3_list_parts_result list;
  list.is_truncated = fields.boolean("IsTruncated");
  // The marker is the last part number listed, so 0 (no parts yet) is valid.
  const auto marker = fields.integer("NextPartNumberMarker", false, 0, max_s3_part_number);
  if (marker)
    list.next_part_number_marker = static_cast<int>(*marker);
  if (fields.error().ok() && list.is_truncated && !marker) {
    fields.fail("NextPartNumberMarker", "is missing although IsTruncated is true");
  }
  if (!fields.error().ok())
    return fields.error();
  for (const auto& child : root->children) {
    if (child.name != "Part")
      continue;
    field_reader entry{child, indexed("ListPartsResult", "Part", list.parts.size())};
    s3_part_entry part;
    part.part_number =
      static_cast<int>(entry.integer("PartNumber", true, 1, max_s3_part_number).value_or(0));
    part.etag = strip_etag_quotes(trim_xml_space(entry.text("ETag", true)));
    part.size = entry.integer("Size", true, 0, std::numeric_limits<int64_t>::max()).value_or(0);
    if (!entry.error().ok())
      return entry.error();
    list.parts.push_back(std::move(part));
  }
  return list;
}

result<s3_list_multipart_uploads_result> decode_list_multipart_uploads(std::string_view body) {
  auto root = parse_root(body, "ListMultipartUploadsResult");
  if (!root)
    return root.error();
  field_reader fields{*root, "ListMultipartUploadsResult"};
  s3_list_multipart_uploads_result list;
  list.is_truncated = fields.boolean("IsTruncated");
  if (fields.has("NextKeyMarker"))
    list.next_key_marker = fields.text("NextKeyMarker", true);
  if (fields.has("NextUploadIdMarker")) {
    list.next_upload_id_marker = fields.text("NextUploadIdMarker", true);
  }
  // Without a key marker the next page would start over at the first key.
  if (fields.error().ok() && list.is_truncated &&
      (!list.next_key_marker || list.next_key_marker->empty())) {
    fields.fail("NextKeyMarker", "is missing although IsTruncated is true");
  }
  if (!fields.error().ok())
    return fields.error();
  for (const auto& child : root->children) {
    if (child.name != "Upload")
      continue;
    field_reader entry{child, indexed("ListMultipartUploadsResult", "Upload", list.uploads.size())};
    s3_multipart_upload_entry upload;
    upload.key = entry.text("Key", true);
    upload.upload_id = std::string{trim_xml_space(entry.text("UploadId", true))};
    const std::string initiated = entry.text("Initiated", true);
    if (entry.error().ok() && upload.key.empty())
      entry.fail("Key", "is empty");
    if (entry.error().ok() && upload.upload_id.empty())
      entry.fail("UploadId", "is empty");
    if (entry.error().ok()) {
      const auto when = parse_rfc3339(trim_xml_space(initiated));
      if (when) {
        upload.initiated = *when;
      } else {
        entry.fail("Initiated", quoted(initiated) + " is not an RFC 3339 date-time");
      }
    }
    if (!entry.error().ok())
      return entry.error();
    list.uploads.push_back(std::move(upload));
  }
  return list;
}

result<s3_error> decode_s3_error(std::string_view body) {
  auto root = parse_root(body, "Error");
  if (!root)
    return root.error();
  return decode_error_element(*root);
}

errc s3_error_class(std::string_view code, long http_status) {
  if (const known_error* known = find_known(code))
    return known->kind;
  if (http_status == 500 || http_status == 503)
    return errc::unavailable;
  // 408 and 429 ask for a later retry whatever the code says.
  if (http_status == 408 || http_status == 429)
    return errc::unavailable;
  if (http_status >= 400 && http_status < 500)
    return errc::invalid_request;
  // 5xx, and an <Error> inside a 2xx: S3 documents both as retryable.
  return errc::unavailable;
}

status s3_error_status(const s3_error& error, long http_status) {
  std::string message =
    "S3 error " + printable(error.code, max_quote) + " (HTTP " + std::to_string(http_status) + ")";
  if (!error.message.empty()) {
    message += ": \"" + printable(error.message, max_server_message) + "\"";
  }
  if (!error.request_id.empty()) {
    message += " [request " + printable(error.request_id, max_quote) + "]";
  }
  const errc kind = s3_error_class(error.code, http_status);
  if (const known_error* known = find_known(error.code)) {
    message += "; ";
    message += known->advice;
  } else if (kind == errc::unavailable) {
    message += "; retrying may help";
  }
  return {kind, message};
}

} // namespace ferry::protocol
