#pragma once

#include "protocol/status.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

/// upload: a local file into the store; download: out of the store into a
/// local file; copy: from a migration's source store into the store.
enum class direction : uint8_t { upload, download, copy };

/// queued -> in_flight -> done | failed. A crash leaves in_flight records
/// behind; recovery turns them back into queued ones.
enum class transfer_state : uint8_t { queued, in_flight, done, failed };

const char* to_string(direction dir);
const char* to_string(transfer_state state);

/// One failed attempt, as kept in a record's error history.
struct attempt_error {
  int64_t at_ms = 0; ///< Unix time in milliseconds.
  std::string code;  ///< errc name (protocol/status.hpp).
  std::string message;
};

/// The journal's record of one object transfer.
struct transfer_record {
  /// Version written into every encoded value; decode() rejects others.
  static constexpr int format_version = 1;
  /// How many attempt errors a record keeps (the most recent ones).
  static constexpr size_t max_errors = 8;

  std::string oid;
  /// Correlation id: names this transfer in every log and trace line about
  /// it, across retries and a crash's resume (make_correlation_id()). Empty
  /// in records written before it existed.
  std::string cid;
  direction dir = direction::upload;
  int64_t size = 0;
  transfer_state state = transfer_state::queued;
  /// Bytes durably transferred so far (the resume point).
  int64_t committed = 0;
  /// Attempts started, including the current one.
  int attempts = 0;
  /// Bytes the latest attempt skipped because an earlier one had them.
  int64_t resumed_from = 0;
  /// Which store the object goes to or comes from (object_store::describe()).
  std::string backend;
  /// Local file: the upload's source or the download's destination.
  std::string path;
  /// What the store needs to resume the write (object_writer::resume_state(),
  /// an S3 multipart upload's id and parts); empty for most stores.
  std::string store_state;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  int64_t finished_ms = 0;
  /// Most recent attempt errors, oldest first, at most max_errors.
  std::vector<attempt_error> errors;

  /// Appends an error, dropping the oldest beyond max_errors.
  void add_error(attempt_error error);

  bool finished() const { return state == transfer_state::done || state == transfer_state::failed; }
};

/// Encodes a record as a versioned JSON object (one line, no spaces):
/// {"v":1,"oid":..,"cid":..,"direction":"upload"|"download"|"copy","size":..,
///  "state":"queued"|"in_flight"|"done"|"failed","committed":..,"attempts":..,
///  "resumed_from":..,"backend":..,"path":..,"created_ms":..,"updated_ms":..,
///  "finished_ms":..,"errors":[{"at_ms":..,"code":..,"message":..}]}
/// plus "store_state":".." at the end when it is not empty; "cid" is left out
/// when empty, and records without it (written before it existed) decode
/// with an empty cid.
/// `ferry status --json` prints records in this same shape.
std::string encode(const transfer_record& record);

/// Decodes a value written by encode(). Malformed bytes or an unknown format
/// version give errc::corrupt_record.
result<transfer_record> decode_record(const std::string& bytes);

/// Appends `text` as a JSON string, byte for byte as nlohmann::json's dump()
/// writes it with invalid UTF-8 replaced by U+FFFD.
void append_json_string(std::string& out, std::string_view text);

/// Appends `errors` as dump() writes them:
/// [{"at_ms":..,"code":..,"message":..},..].
void append_json_errors(std::string& out, const std::vector<attempt_error>& errors);

/// A new correlation id: 12 random hex digits.
std::string make_correlation_id();

/// Current Unix time in milliseconds.
int64_t now_ms();

} // namespace ferry
