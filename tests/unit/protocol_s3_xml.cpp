#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "protocol/s3_xml.hpp"

using namespace ferry::protocol;
using ferry::errc;

namespace {

// The decoded value; fails the test with the decoder's message instead.
template <class T>
T require_ok(ferry::result<T> decoded) {
  if (!decoded)
    FAIL("unexpected error: " << decoded.error().message());
  return std::move(decoded).value();
}

// The message of a decode that must fail with invalid_request.
template <class T>
std::string require_invalid(const ferry::result<T>& decoded) {
  REQUIRE_FALSE(decoded.ok());
  CHECK(decoded.error().code() == errc::invalid_request);
  CHECK_FALSE(decoded.error().message().empty());
  return decoded.error().message();
}

// A ListObjectsV2 page as AWS S3 sends it: prolog, namespace, no indentation.
const std::string aws_list_page =
  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
  "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
  "<Name>lfs</Name><Prefix>lfs/objects/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
  "<IsTruncated>true</IsTruncated>"
  "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
  "<Contents><Key>lfs/objects/4d/7a/4d7a2146</Key><LastModified>2026-11-22T03:14:55.000Z"
  "</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>"
  "<Size>5242880</Size><StorageClass>STANDARD</StorageClass></Contents>"
  "<Contents><Key>lfs/objects/6a/1e/6a1e4b2b</Key><LastModified>2026-11-22T03:15:01.000Z"
  "</LastModified><ETag>\"d41d8cd98f00b204e9800998ecf8427e-2\"</ETag>"
  "<Size>9223372036854775807</Size><StorageClass>STANDARD</StorageClass></Contents>"
  "</ListBucketResult>";

// The last page as radosgw sends it: indented, with Owner and Type extras.
const std::string radosgw_last_page = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>lfs</Name>
  <Prefix></Prefix>
  <MaxKeys>1000</MaxKeys>
  <IsTruncated>false</IsTruncated>
  <Contents>
    <Key>a &amp; b &lt;c&gt; &#233;&#x4E2D;</Key>
    <LastModified>2026-11-22T03:14:55.123Z</LastModified>
    <ETag>&quot;0cc175b9c0f1b6a831c399e269772661&quot;</ETag>
    <Size>0</Size>
    <StorageClass>STANDARD</StorageClass>
    <Owner><ID>lfs</ID><DisplayName>lfs</DisplayName></Owner>
    <Type>Normal</Type>
  </Contents>
  <KeyCount>1</KeyCount>
</ListBucketResult>
)";

std::string list_with_contents(const std::string& contents) {
  return "<ListBucketResult><IsTruncated>false</IsTruncated><Contents>" + contents +
         "</Contents></ListBucketResult>";
}

std::string error_body(const std::string& code, const std::string& message) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + code + "</Code><Message>" +
         message +
         "</Message><Resource>/lfs/key</Resource>"
         "<RequestId>tx0000042-lfs</RequestId><HostId>abc</HostId></Error>";
}

} // namespace

TEST_CASE("parse_s3_xml reads elements, text, CDATA and comments", "[s3_xml]") {
  auto doc = parse_s3_xml("\xEF\xBB\xBF<?xml version='1.0'?><!-- lead --><?pi data?>\n"
                          "<s3:Root xmlns:s3='urn:x' a=\"1&amp;\">"
                          "x<!-- skipped -->y<![CDATA[<raw & text>]]>\r\nz<Empty/>"
                          "<Child>&apos;&quot;&#65;&#x42;&#x1F600;</Child></s3:Root>"
                          "<!-- trailing -->\n");
  const auto root = require_ok(std::move(doc));
  CHECK(root.name == "Root");
  CHECK(root.text == "xy<raw & text>\nz");
  REQUIRE(root.children.size() == 2);
  CHECK(root.children[0].name == "Empty");
  CHECK(root.children[0].text.empty());
  REQUIRE(root.child("Child") != nullptr);
  CHECK(root.child("Child")->text == "'\"AB\xF0\x9F\x98\x80");
  CHECK(root.child("Missing") == nullptr);
}

TEST_CASE("parse_s3_xml rejects malformed input with the place", "[s3_xml]") {
  struct bad_case {
    std::string body;
    std::string expected;
  };
  const std::vector<bad_case> cases = {
    {"", "no root element"},
    {"   \n", "no root element"},
    {"text", "expected '<'"},
    {"<a>", "<a> is not closed"},
    {"<a><b></a>", "closing tag </a> does not match <b>"},
    {"<a></b>", "does not match"},
    {"<a", "inside the start tag"},
    {"<a b='1'", "inside the start tag"},
    {"<a b='1></a>", "'<' inside an attribute value"},
    {"<a b></a>", "expected '='"},
    {"<a b=1></a>", "quoted attribute value"},
    {"<a b='1'c='2'/>", "expected whitespace"},
    {"<a>&unknown;</a>", "unknown entity '&unknown;'"},
    {"<a>&amp</a>", "complete entity"},
    {"<a>& b</a>", "complete entity"},
    {"<a>&#;</a>", "does not name an XML character"},
    {"<a>&#0;</a>", "does not name an XML character"},
    {"<a>&#xD800;</a>", "does not name an XML character"},
    {"<a>&#x110000;</a>", "does not name an XML character"},
    {"<a>&#99999999999999;</a>", "does not name an XML character"},
    {"<a>&#x1G;</a>", "malformed character reference"},
    {"<a>\x01</a>", "control byte 1"},
    {"<a>x]]>y</a>", "']]>'"},
    {"<a><![CDATA[open</a>", "inside a CDATA section"},
    {"<a><!-- open</a>", "inside a comment"},
    {"<a/><b/>", "after the root element"},
    {"<a/>text", "after the root element"},
    {"<a><?xml version='1.0'?></a>", "only allowed at the very start"},
    {"<a><!ELEMENT a ANY></a>", "unsupported markup"},
    {"<1a/>", "expected a name"},
    {"<?xml version='1.0'", "inside the XML declaration"},
  };
  for (const auto& c : cases) {
    INFO("body: " << c.body);
    const std::string message = require_invalid(parse_s3_xml(c.body));
    CHECK_THAT(message, Catch::Contains(c.expected));
    CHECK_THAT(message, Catch::Contains("at byte"));
  }
}

TEST_CASE("parse_s3_xml refuses DTDs so entities cannot expand", "[s3_xml]") {
  const std::string billion_laughs = "<?xml version=\"1.0\"?>\n"
                                     "<!DOCTYPE lolz [<!ENTITY lol \"lol\">"
                                     "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]>\n"
                                     "<Error><Code>&lol2;</Code></Error>";
  CHECK_THAT(require_invalid(parse_s3_xml(billion_laughs)), Catch::Contains("<!DOCTYPE"));
  CHECK_THAT(require_invalid(parse_s3_xml("<a><!DOCTYPE a></a>")), Catch::Contains("<!DOCTYPE"));
}

TEST_CASE("parse_s3_xml caps nesting depth and body size", "[s3_xml]") {
  auto nested = [](int depth) {
    std::string body;
    for (int i = 0; i < depth; ++i)
      body += "<e>";
    for (int i = 0; i < depth; ++i)
      body += "</e>";
    return body;
  };
  CHECK(parse_s3_xml(nested(max_s3_xml_depth)).ok());
  CHECK_THAT(require_invalid(parse_s3_xml(nested(max_s3_xml_depth + 1))),
             Catch::Contains("nest deeper than 32"));
  // Far deeper than the cap, unterminated: refused, not a stack overflow.
  CHECK_THAT(require_invalid(parse_s3_xml(std::string(100000, '<') + "x")),
             Catch::Contains("expected a name"));
  std::string deep_open;
  for (int i = 0; i < 100000; ++i)
    deep_open += "<e>";
  CHECK_THAT(require_invalid(parse_s3_xml(deep_open)), Catch::Contains("nest deeper"));

  // Exactly at the limit passes; one byte more is refused before parsing.
  const std::string at_limit = "<a/>" + std::string(max_s3_xml_bytes - 4, ' ');
  CHECK(parse_s3_xml(at_limit).ok());
  CHECK_THAT(require_invalid(parse_s3_xml(at_limit + " ")), Catch::Contains("exceeds the limit"));
}

TEST_CASE("every truncation of a valid body is rejected cleanly", "[s3_xml]") {
  // Cutting anywhere inside the root element must fail, never crash or pass.
  const size_t root_end = radosgw_last_page.rfind('>') + 1;
  for (size_t cut = 0; cut < root_end; ++cut) {
    INFO("cut at " << cut);
    const auto decoded = decode_list_objects_v2(std::string_view{radosgw_last_page}.substr(0, cut));
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code() == errc::invalid_request);
  }
  CHECK(decode_list_objects_v2(radosgw_last_page).ok());
}

TEST_CASE("decode_list_objects_v2 reads an AWS page", "[s3_xml]") {
  const auto page = require_ok(decode_list_objects_v2(aws_list_page));
  CHECK(page.is_truncated);
  REQUIRE(page.next_continuation_token);
  CHECK(*page.next_continuation_token == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
  CHECK(page.key_count == std::optional<int64_t>{2});
  REQUIRE(page.contents.size() == 2);
  CHECK(page.contents[0].key == "lfs/objects/4d/7a/4d7a2146");
  CHECK(page.contents[0].size == 5242880);
  CHECK(page.contents[0].etag == "9b2cf535f27731c974343645a3985328");
  CHECK(page.contents[0].last_modified == "2026-11-22T03:14:55.000Z");
  CHECK(page.contents[1].etag == "d41d8cd98f00b204e9800998ecf8427e-2");
  CHECK(page.contents[1].size == INT64_MAX);
}

TEST_CASE("decode_list_objects_v2 reads an indented radosgw page with entities", "[s3_xml]") {
  const auto page = require_ok(decode_list_objects_v2(radosgw_last_page));
  CHECK_FALSE(page.is_truncated);
  CHECK_FALSE(page.next_continuation_token);
  CHECK(page.key_count == std::optional<int64_t>{1});
  REQUIRE(page.contents.size() == 1);
  CHECK(page.contents[0].key == "a & b <c> \xC3\xA9\xE4\xB8\xAD");
  CHECK(page.contents[0].size == 0);
  CHECK(page.contents[0].etag == "0cc175b9c0f1b6a831c399e269772661");
  CHECK(page.contents[0].last_modified == "2026-11-22T03:14:55.123Z");
}

TEST_CASE("decode_list_objects_v2 keeps key whitespace and an empty listing", "[s3_xml]") {
  const auto page =
    require_ok(decode_list_objects_v2(list_with_contents("<Key> spaced </Key><Size> 7\n</Size>")));
  REQUIRE(page.contents.size() == 1);
  CHECK(page.contents[0].key == " spaced ");
  CHECK(page.contents[0].size == 7);
  CHECK(page.contents[0].etag.empty());

  const auto empty = require_ok(decode_list_objects_v2(
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>lfs</Name>"
    "<KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>"));
  CHECK(empty.contents.empty());
  CHECK(empty.key_count == std::optional<int64_t>{0});
}

TEST_CASE("decode_list_objects_v2 rejects bad fields", "[s3_xml]") {
  struct bad_case {
    std::string body;
    std::string expected;
  };
  const std::vector<bad_case> cases = {
    {list_with_contents("<Key>k</Key><Size>9223372036854775808</Size>"),
     "Contents[0].Size: '9223372036854775808' is out of range"},
    {list_with_contents("<Key>k</Key><Size>-1</Size>"), "is not a non-negative integer"},
    {list_with_contents("<Key>k</Key><Size>1.5</Size>"), "is not a non-negative integer"},
    {list_with_contents("<Key>k</Key><Size>1e3</Size>"), "is not a non-negative integer"},
    {list_with_contents("<Key>k</Key><Size></Size>"), "Size: is empty"},
    {list_with_contents("<Key>k</Key>"), "Contents[0].Size: is missing"},
    {list_with_contents("<Size>1</Size>"), "Contents[0].Key: is missing"},
    {list_with_contents("<Key></Key><Size>1</Size>"), "Contents[0].Key: is empty"},
    {list_with_contents("<Key>k</Key><Size>1</Size><Size>2</Size>"), "appears more than once"},
    {list_with_contents("<Key><b/></Key><Size>1</Size>"), "holds elements"},
    {"<ListBucketResult><IsTruncated>yes</IsTruncated></ListBucketResult>",
     "IsTruncated: 'yes' is not true or false"},
    {"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
     "NextContinuationToken: is missing although IsTruncated is true"},
    {"<ListBucketResult><KeyCount>99999999999999999999</KeyCount></ListBucketResult>",
     "KeyCount: '99999999999999999999' is out of range"},
    {"<ListAllMyBucketsResult/>", "expected a <ListBucketResult> document, got"},
  };
  for (const auto& c : cases) {
    INFO("body: " << c.body);
    CHECK_THAT(require_invalid(decode_list_objects_v2(c.body)), Catch::Contains(c.expected));
  }
}

TEST_CASE("decode_initiate_multipart_upload", "[s3_xml]") {
  const auto upload = require_ok(decode_initiate_multipart_upload(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
    "  <Bucket>lfs</Bucket>\n  <Key>lfs/objects/4d/7a/4d7a2146</Key>\n"
    "  <UploadId>2~iCw_lDmTdHzDjuZVgCFvgaGo1ixjWJ6</UploadId>\n"
    "</InitiateMultipartUploadResult>"));
  CHECK(upload.bucket == "lfs");
  CHECK(upload.key == "lfs/objects/4d/7a/4d7a2146");
  CHECK(upload.upload_id == "2~iCw_lDmTdHzDjuZVgCFvgaGo1ixjWJ6");

  CHECK_THAT(require_invalid(
               decode_initiate_multipart_upload("<InitiateMultipartUploadResult><Bucket>b</Bucket>"
                                                "</InitiateMultipartUploadResult>")),
             Catch::Contains("UploadId: is missing"));
  CHECK_THAT(require_invalid(decode_initiate_multipart_upload(
               "<InitiateMultipartUploadResult><UploadId> </UploadId>"
               "</InitiateMultipartUploadResult>")),
             Catch::Contains("UploadId: is empty"));
}

TEST_CASE("encode_complete_multipart_upload round-trips and escapes", "[s3_xml]") {
  const std::vector<s3_completed_part> parts = {
    {1, "\"a54357aff0632cce46d942af68356b38\"", std::nullopt},
    {2, "0c78aef83f66abc1fa1e8477f296d394",
     std::string{"n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="}},
    {10000, "odd<&>etag", std::nullopt},
  };
  const auto body = require_ok(encode_complete_multipart_upload(parts));
  CHECK_THAT(body, Catch::StartsWith("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
  CHECK_THAT(body, Catch::Contains("<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/"
                                   "2006-03-01/\"><Part><PartNumber>1</PartNumber>"
                                   "<ETag>\"a54357aff0632cce46d942af68356b38\"</ETag></Part>"));
  CHECK_THAT(body, Catch::Contains("<ETag>\"odd&lt;&amp;&gt;etag\"</ETag>"));

  const auto decoded = require_ok(decode_complete_multipart_upload(body));
  REQUIRE(decoded.size() == parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    CHECK(decoded[i].part_number == parts[i].part_number);
    CHECK(decoded[i].etag == strip_etag_quotes(parts[i].etag));
    CHECK(decoded[i].checksum_sha256 == parts[i].checksum_sha256);
  }
}

TEST_CASE("encode_complete_multipart_upload rejects what S3 would refuse", "[s3_xml]") {
  struct bad_case {
    std::vector<s3_completed_part> parts;
    std::string expected;
  };
  const std::vector<bad_case> cases = {
    {{}, "at least one part"},
    {{{0, "e", std::nullopt}}, "part numbers run from 1 to 10000"},
    {{{10001, "e", std::nullopt}}, "part numbers run from 1 to 10000"},
    {{{2, "e", std::nullopt}, {1, "e", std::nullopt}}, "strictly ascending"},
    {{{1, "e", std::nullopt}, {1, "e", std::nullopt}}, "strictly ascending"},
    {{{1, "\"\"", std::nullopt}}, "the ETag is empty"},
    {{{1, "e\nx", std::nullopt}}, "control characters"},
    {{{1, "e", std::string{"abc\x01"}}}, "control characters"},
  };
  for (const auto& c : cases) {
    INFO("expected: " << c.expected);
    CHECK_THAT(require_invalid(encode_complete_multipart_upload(c.parts)),
               Catch::Contains(c.expected));
  }
}

TEST_CASE("decode_complete_multipart_upload_result", "[s3_xml]") {
  const auto aws = require_ok(decode_complete_multipart_upload_result(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Location>https://lfs.s3.amazonaws.com/lfs/objects/4d</Location><Bucket>lfs</Bucket>"
    "<Key>lfs/objects/4d</Key><ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag>"
    "</CompleteMultipartUploadResult>"));
  CHECK(aws.location == "https://lfs.s3.amazonaws.com/lfs/objects/4d");
  CHECK(aws.bucket == "lfs");
  CHECK(aws.key == "lfs/objects/4d");
  CHECK(aws.etag == "3858f62230ac3c915f300c664312c11f-9");

  // radosgw answers with an empty ETag element.
  const auto rgw = require_ok(decode_complete_multipart_upload_result(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult "
    "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>127.0.0.1/lfs/k</Location>"
    "<Bucket>lfs</Bucket><Key>k</Key><ETag></ETag></CompleteMultipartUploadResult>"));
  CHECK(rgw.etag.empty());
  CHECK(rgw.key == "k");
}

TEST_CASE("an Error inside a 200 Complete response becomes its status", "[s3_xml]") {
  const auto internal = decode_complete_multipart_upload_result(
    error_body("InternalError", "We encountered an internal error. Please try again."));
  REQUIRE_FALSE(internal.ok());
  CHECK(internal.error().code() == errc::unavailable);
  CHECK_THAT(internal.error().message(), Catch::Contains("InternalError (HTTP 200)"));

  const auto invalid_part = decode_complete_multipart_upload_result(
    error_body("InvalidPart", "One or more of the specified parts could not be found."));
  REQUIRE_FALSE(invalid_part.ok());
  CHECK(invalid_part.error().code() == errc::invalid_request);

  CHECK_THAT(require_invalid(decode_complete_multipart_upload_result("<Other/>")),
             Catch::Contains("expected a <CompleteMultipartUploadResult> document"));
}

TEST_CASE("decode_list_parts", "[s3_xml]") {
  const auto page = require_ok(decode_list_parts(R"(<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>lfs</Bucket><Key>k</Key><UploadId>2~abc</UploadId>
  <PartNumberMarker>0</PartNumberMarker>
  <NextPartNumberMarker>2</NextPartNumberMarker>
  <MaxParts>2</MaxParts>
  <IsTruncated>true</IsTruncated>
  <Part>
    <PartNumber>1</PartNumber><LastModified>2026-11-22T03:14:55.000Z</LastModified>
    <ETag>&quot;7778aef83f66abc1fa1e8477f296d394&quot;</ETag><Size>5242880</Size>
  </Part>
  <Part>
    <PartNumber>2</PartNumber><LastModified>2026-11-22T03:14:56.000Z</LastModified>
    <ETag>"aaaa18db4cc2f85cedef654fccc4a4d8"</ETag><Size>1234</Size>
  </Part>
</ListPartsResult>)"));
  CHECK(page.is_truncated);
  CHECK(page.next_part_number_marker == std::optional<int>{2});
  REQUIRE(page.parts.size() == 2);
  CHECK(page.parts[0].part_number == 1);
  CHECK(page.parts[0].etag == "7778aef83f66abc1fa1e8477f296d394");
  CHECK(page.parts[0].size == 5242880);
  CHECK(page.parts[1].part_number == 2);
  CHECK(page.parts[1].etag == "aaaa18db4cc2f85cedef654fccc4a4d8");
  CHECK(page.parts[1].size == 1234);

  const std::string wrap = "<ListPartsResult><IsTruncated>false</IsTruncated><Part>";
  CHECK_THAT(require_invalid(decode_list_parts(
               wrap + "<PartNumber>10001</PartNumber><ETag>e</ETag><Size>1</Size></Part>"
                      "</ListPartsResult>")),
             Catch::Contains("Part[0].PartNumber: '10001' is out of range 1..10000"));
  CHECK_THAT(require_invalid(decode_list_parts(
               wrap + "<PartNumber>1</PartNumber><Size>1</Size></Part></ListPartsResult>")),
             Catch::Contains("Part[0].ETag: is missing"));
  CHECK_THAT(require_invalid(decode_list_parts("<ListPartsResult><IsTruncated>true</IsTruncated>"
                                               "</ListPartsResult>")),
             Catch::Contains("NextPartNumberMarker: is missing"));
}

TEST_CASE("decode_s3_error keeps the known fields", "[s3_xml]") {
  const auto error = require_ok(decode_s3_error(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>NoSuchKey</Code>\n"
    "  <Message>The specified key does not exist.</Message>\n"
    "  <Key>lfs/x</Key><BucketName>lfs</BucketName>\n  <Resource>/lfs/lfs/x</Resource>\n"
    "  <RequestId>tx00000b1f-lfs</RequestId>\n  <HostId>4c3f-default</HostId>\n</Error>\n"));
  CHECK(error.code == "NoSuchKey");
  CHECK(error.message == "The specified key does not exist.");
  CHECK(error.resource == "/lfs/lfs/x");
  CHECK(error.request_id == "tx00000b1f-lfs");

  CHECK_THAT(require_invalid(decode_s3_error("<Error><Message>m</Message></Error>")),
             Catch::Contains("Error.Code: is missing"));
  CHECK_THAT(require_invalid(decode_s3_error("<Error><Code></Code></Error>")),
             Catch::Contains("Error.Code: is empty"));
  CHECK_THAT(require_invalid(decode_s3_error("<html><body>Bad Gateway</body></html>")),
             Catch::Contains("expected a <Error> document"));
}

TEST_CASE("s3_error_class maps S3 codes onto Ferry's taxonomy", "[s3_xml]") {
  struct mapping {
    std::string code;
    long http_status;
    errc expected;
  };
  const std::vector<mapping> mappings = {
    {"SlowDown", 503, errc::unavailable},
    {"ServiceUnavailable", 503, errc::unavailable},
    {"RequestTimeout", 400, errc::unavailable},
    {"InternalError", 500, errc::unavailable},
    {"RequestTimeTooSkewed", 403, errc::config_error},
    {"NoSuchBucket", 404, errc::not_found},
    {"NoSuchKey", 404, errc::not_found},
    {"NoSuchUpload", 404, errc::not_found},
    {"AccessDenied", 403, errc::permission_denied},
    {"InvalidAccessKeyId", 403, errc::permission_denied},
    {"SignatureDoesNotMatch", 403, errc::permission_denied},
    {"ExpiredToken", 400, errc::permission_denied},
    {"BadDigest", 400, errc::hash_mismatch},
    {"XAmzContentSHA256Mismatch", 400, errc::hash_mismatch},
    {"InvalidDigest", 400, errc::invalid_request},
    {"EntityTooSmall", 400, errc::invalid_request},
    {"InvalidPart", 400, errc::invalid_request},
    {"InvalidPartOrder", 400, errc::invalid_request},
    {"QuotaExceeded", 403, errc::no_space},
    {"SomethingNew", 400, errc::invalid_request},
    {"SomethingNew", 404, errc::invalid_request},
    {"SomethingNew", 408, errc::unavailable},
    {"SomethingNew", 429, errc::unavailable},
    {"SomethingNew", 500, errc::unavailable},
    {"SomethingNew", 502, errc::unavailable},
    {"SomethingNew", 503, errc::unavailable},
    {"SomethingNew", 200, errc::unavailable},
  };
  for (const auto& m : mappings) {
    INFO(m.code << " " << m.http_status);
    CHECK(s3_error_class(m.code, m.http_status) == m.expected);
  }
}

TEST_CASE("s3_error_status quotes Code and Message and says what to do", "[s3_xml]") {
  struct advice_case {
    std::string code;
    long http_status;
    errc expected;
    std::string advice;
  };
  const std::vector<advice_case> cases = {
    {"SlowDown", 503, errc::unavailable, "throttling"},
    {"RequestTimeTooSkewed", 403, errc::config_error, "clock"},
    {"NoSuchBucket", 404, errc::not_found, "check the bucket name"},
    {"AccessDenied", 403, errc::permission_denied, "check that the credentials"},
    {"InvalidAccessKeyId", 403, errc::permission_denied, "check the configured access key"},
    {"SignatureDoesNotMatch", 403, errc::permission_denied, "check the secret access key"},
    {"NoSuchUpload", 404, errc::not_found, "must start over"},
    {"EntityTooSmall", 400, errc::invalid_request, "5 MiB"},
    {"BadDigest", 400, errc::hash_mismatch, "damaged in transit"},
    {"Mystery", 502, errc::unavailable, "retrying may help"},
  };
  for (const auto& c : cases) {
    INFO(c.code);
    const auto error = require_ok(decode_s3_error(error_body(c.code, "Details &amp; more")));
    const ferry::status failed = s3_error_status(error, c.http_status);
    CHECK(failed.code() == c.expected);
    CHECK_THAT(failed.message(),
               Catch::Contains("S3 error " + c.code + " (HTTP " + std::to_string(c.http_status) +
                               "): \"Details & more\" [request tx0000042-lfs]"));
    CHECK_THAT(failed.message(), Catch::Contains(c.advice));
  }

  // Server text is shown printable and bounded.
  const s3_error noisy{"Code\x1b[31m", std::string(5000, 'm') + "\n", "", ""};
  const ferry::status shown = s3_error_status(noisy, 400);
  CHECK(shown.message().find('\x1b') == std::string::npos);
  CHECK(shown.message().size() < 400);
}

TEST_CASE("decode_list_multipart_uploads reads a radosgw page and its markers", "[s3_xml]") {
  // As radosgw 16 answers ListMultipartUploads with max-uploads=2.
  const auto page = require_ok(decode_list_multipart_uploads(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListMultipartUploadsResult "
    "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>lfs</Bucket><Prefix>p/</Prefix>"
    "<NextKeyMarker>p/aa/bb/x2</NextKeyMarker>"
    "<NextUploadIdMarker>2~cQnOJtEEGGgAxDgPxCYOekNtHfNylla</NextUploadIdMarker>"
    "<MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>"
    "<Upload><Key>p/aa/bb/x1</Key><UploadId>2~698TtUritgV27MJqrqBmqXnNH5F_lqv</UploadId>"
    "<Initiator><ID>lfs</ID><DisplayName>lfs</DisplayName></Initiator>"
    "<Owner><ID>lfs</ID><DisplayName>lfs</DisplayName></Owner>"
    "<StorageClass>STANDARD</StorageClass><Initiated>2026-11-22T03:58:32.462Z</Initiated>"
    "</Upload>"
    "<Upload><Key>p/x &amp; y</Key><UploadId>2~cQnOJtEEGGgAxDgPxCYOekNtHfNylla</UploadId>"
    "<StorageClass>STANDARD</StorageClass><Initiated>2026-11-22T03:58:33Z</Initiated>"
    "</Upload></ListMultipartUploadsResult>"));
  CHECK(page.is_truncated);
  CHECK(page.next_key_marker == std::optional<std::string>{"p/aa/bb/x2"});
  CHECK(page.next_upload_id_marker ==
        std::optional<std::string>{"2~cQnOJtEEGGgAxDgPxCYOekNtHfNylla"});
  REQUIRE(page.uploads.size() == 2);
  CHECK(page.uploads[0].key == "p/aa/bb/x1");
  CHECK(page.uploads[0].upload_id == "2~698TtUritgV27MJqrqBmqXnNH5F_lqv");
  CHECK(page.uploads[1].key == "p/x & y");
  // 2026-11-22T03:58:32.462Z: 20779 days after the epoch, plus the time of day.
  const auto epoch_ms = [](const s3_multipart_upload_entry& upload) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
             upload.initiated.time_since_epoch())
      .count();
  };
  const int64_t day_ms = 86400000;
  CHECK(epoch_ms(page.uploads[0]) == 20779 * day_ms + (3 * 3600 + 58 * 60 + 32) * 1000 + 462);
  CHECK(epoch_ms(page.uploads[1]) - epoch_ms(page.uploads[0]) == 538);
}

TEST_CASE("decode_list_multipart_uploads reads an empty last page", "[s3_xml]") {
  const auto page = require_ok(decode_list_multipart_uploads(R"(<?xml version="1.0"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>lfs</Bucket>
  <KeyMarker>p/x</KeyMarker>
  <MaxUploads>1000</MaxUploads>
  <IsTruncated>false</IsTruncated>
</ListMultipartUploadsResult>)"));
  CHECK_FALSE(page.is_truncated);
  CHECK_FALSE(page.next_key_marker.has_value());
  CHECK_FALSE(page.next_upload_id_marker.has_value());
  CHECK(page.uploads.empty());
}

TEST_CASE("decode_list_multipart_uploads rejects bad fields", "[s3_xml]") {
  const std::string open = "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>";
  const std::string close = "</ListMultipartUploadsResult>";
  const auto upload = [](const std::string& key, const std::string& id, const std::string& when) {
    return "<Upload>" + key + id + when + "</Upload>";
  };
  const std::string key = "<Key>k</Key>";
  const std::string id = "<UploadId>u</UploadId>";
  const std::string when = "<Initiated>2026-11-22T03:58:32.462Z</Initiated>";
  CHECK_THAT(require_invalid(decode_list_multipart_uploads(open + upload("", id, when) + close)),
             Catch::Contains("Upload[0].Key: is missing"));
  CHECK_THAT(require_invalid(decode_list_multipart_uploads(
               open + upload(key, id, when) + upload(key, "<UploadId> </UploadId>", when) + close)),
             Catch::Contains("Upload[1].UploadId: is empty"));
  CHECK_THAT(require_invalid(decode_list_multipart_uploads(open + upload(key, id, "") + close)),
             Catch::Contains("Upload[0].Initiated: is missing"));
  CHECK_THAT(require_invalid(decode_list_multipart_uploads(
               open + upload(key, id, "<Initiated>yesterday</Initiated>") + close)),
             Catch::Contains("Upload[0].Initiated: 'yesterday' is not an RFC 3339 date-time"));
  CHECK_THAT(require_invalid(decode_list_multipart_uploads(
               "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
               "<NextUploadIdMarker>u</NextUploadIdMarker></ListMultipartUploadsResult>")),
             Catch::Contains("NextKeyMarker: is missing although IsTruncated is true"));
  CHECK_THAT(require_invalid(decode_list_multipart_uploads("<ListPartsResult/>")),
             Catch::Contains("expected a <ListMultipartUploadsResult> document"));
}
