#pragma once

// Every atom and message type of the engine, in one type-ID block (the form
// that compiles on CAF 0.17.6 and 0.18). Engine messages never leave the
// process, so the structs are local-only message types.

#include "actors/policy/credential_session.hpp"
#include "protocol/status.hpp"
#include "protocol/transfer_protocol.hpp"
#include "store/http/host_pacer.hpp"
#include "store/journal/transfer_record.hpp"
#include "store/presence_check.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

/// Where an LFS server wants one object sent or fetched (non-standalone
/// mode): git-lfs passes the server's action on, and the headers usually
/// carry credentials. An empty href means there is no action.
struct job_action {
  std::string href;
  std::map<std::string, std::string> headers;
};

/// The action without its secrets, for logs and CAF's to_string: the href
/// without user info, query or fragment, and the header names only.
std::string to_string(const job_action& action);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_action& x) {
  return f(caf::meta::type_name("job_action"), x.href, x.headers);
}

/// One object to move, as the coordinator hands it to the supervisor.
struct transfer_job {
  uint64_t id = 0;
  direction dir = direction::upload;
  std::string oid;
  int64_t size = 0;
  /// Upload: the local source file. Download: unused (see download_dir).
  std::string path;
  /// The server's action in non-standalone mode; without one (standalone
  /// mode) the object goes to or comes from the engine's own store.
  job_action action;
  /// Copy: this run found the destination without the object, so the copy
  /// does not ask it again.
  bool known_absent = false;
  /// Download: the directory its verified file is named in, which the
  /// caller's git-lfs takes it from; empty: the engine's download_dir, where
  /// every download is assembled. Agents sharing one engine each have their
  /// own, so that two downloads of one object never hand one file to two.
  std::string download_dir{};

  bool has_action() const { return !action.href.empty(); }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, transfer_job& x) {
  return f(caf::meta::type_name("transfer_job"), x.id, x.dir, x.oid, x.size, x.path, x.action,
           x.known_absent, x.download_dir);
}

/// How a transfer ended. `code == errc::ok` means the object was moved and
/// verified; for downloads `path` names the verified file.
struct transfer_outcome {
  uint64_t id = 0;
  direction dir = direction::upload;
  std::string oid;
  errc code = errc::ok;
  std::string message;
  std::string path;
  int attempts = 0;
  /// The transfer's correlation id (transfer_record::cid), once the journal
  /// recorded the outcome.
  std::string cid;
  /// A success that wrote nothing: the store already held the object.
  bool found_present = false;

  bool ok() const { return code == errc::ok; }
};

/// Bytes moved so far by a running transfer.
struct progress_note {
  uint64_t id = 0;
  std::string oid;
  int64_t bytes_so_far = 0;
  int64_t bytes_since_last = 0;
};

/// The journal's view for `ferry status` and tests.
struct journal_snapshot {
  std::vector<transfer_record> active;
  std::vector<transfer_record> history;
};

/// Error category of ferry::errc inside caf::error.
caf::atom_value error_category();

/// Wraps a status into a caf::error (code + message survive the trip).
caf::error to_error(const status& st);

/// Unwraps a caf::error; errors from CAF itself become errc::internal with
/// CAF's rendering of the error.
status to_status(const caf::error& err);

} // namespace ferry

CAF_BEGIN_TYPE_ID_BLOCK(ferry, caf::first_custom_type_id)

CAF_ADD_TYPE_ID(ferry, (ferry::job_action))
CAF_ADD_TYPE_ID(ferry, (ferry::transfer_job))
CAF_ADD_TYPE_ID(ferry, (ferry::transfer_outcome))
CAF_ADD_TYPE_ID(ferry, (ferry::progress_note))
CAF_ADD_TYPE_ID(ferry, (ferry::journal_snapshot))
CAF_ADD_TYPE_ID(ferry, (ferry::transfer_record))
CAF_ADD_TYPE_ID(ferry, (ferry::attempt_error))
CAF_ADD_TYPE_ID(ferry, (std::vector<ferry::transfer_record>))
CAF_ADD_TYPE_ID(ferry, (std::vector<ferry::transfer_outcome>))
CAF_ADD_TYPE_ID(ferry, (ferry::direction))
CAF_ADD_TYPE_ID(ferry, (ferry::protocol::init_request))
CAF_ADD_TYPE_ID(ferry, (ferry::protocol::transfer_request))
CAF_ADD_TYPE_ID(ferry, (ferry::inventory_page))
CAF_ADD_TYPE_ID(ferry, (std::vector<ferry::host_pace>))
CAF_ADD_TYPE_ID(ferry, (ferry::credential_session::turn))
CAF_ADD_TYPE_ID(ferry, (std::optional<ferry::http_credential>))

// -- journal ----------------------------------------------------------------
CAF_ADD_ATOM(ferry, ferry::atom, begin, "begin")
CAF_ADD_ATOM(ferry, ferry::atom, started, "started")
CAF_ADD_ATOM(ferry, ferry::atom, commit, "commit")
CAF_ADD_ATOM(ferry, ferry::atom, failed, "failed")
CAF_ADD_ATOM(ferry, ferry::atom, finish, "finish")
CAF_ADD_ATOM(ferry, ferry::atom, flush, "flush")
CAF_ADD_ATOM(ferry, ferry::atom, recover, "recover")
CAF_ADD_ATOM(ferry, ferry::atom, snapshot, "snapshot")

// -- supervision and workers ------------------------------------------------
CAF_ADD_ATOM(ferry, ferry::atom, run, "run")
CAF_ADD_ATOM(ferry, ferry::atom, restart, "restart")
CAF_ADD_ATOM(ferry, ferry::atom, cancel, "cancel")
CAF_ADD_ATOM(ferry, ferry::atom, step, "step")
CAF_ADD_ATOM(ferry, ferry::atom, resume, "resume")
CAF_ADD_ATOM(ferry, ferry::atom, done, "done")
CAF_ADD_ATOM(ferry, ferry::atom, begun, "begun")
CAF_ADD_ATOM(ferry, ferry::atom, progress, "progress")
CAF_ADD_ATOM(ferry, ferry::atom, stored, "stored")

// -- protocol I/O and coordination ------------------------------------------
CAF_ADD_ATOM(ferry, ferry::atom, input, "input")
CAF_ADD_ATOM(ferry, ferry::atom, too_long, "too_long")
CAF_ADD_ATOM(ferry, ferry::atom, eof, "eof")
CAF_ADD_ATOM(ferry, ferry::atom, reply, "reply")
CAF_ADD_ATOM(ferry, ferry::atom, terminate, "terminate")

// -- rate limiting ----------------------------------------------------------
CAF_ADD_ATOM(ferry, ferry::atom, acquire, "acquire")
CAF_ADD_ATOM(ferry, ferry::atom, cooldown, "cooldown")
CAF_ADD_ATOM(ferry, ferry::atom, get, "get")
CAF_ADD_ATOM(ferry, ferry::atom, wake, "wake")
CAF_ADD_ATOM(ferry, ferry::atom, throttled, "throttled")

// -- migration --------------------------------------------------------------
CAF_ADD_ATOM(ferry, ferry::atom, pump, "pump")
CAF_ADD_ATOM(ferry, ferry::atom, tick, "tick")
CAF_ADD_ATOM(ferry, ferry::atom, check, "check")

// -- sessions (ferry daemon) -------------------------------------------------
CAF_ADD_ATOM(ferry, ferry::atom, fill, "fill")
CAF_ADD_ATOM(ferry, ferry::atom, filled, "filled")
CAF_ADD_ATOM(ferry, ferry::atom, approve, "approve")
CAF_ADD_ATOM(ferry, ferry::atom, reject, "reject")

CAF_END_TYPE_ID_BLOCK(ferry)

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::transfer_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::progress_note)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::journal_snapshot)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::transfer_record)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::attempt_error)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<ferry::transfer_record>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<ferry::transfer_outcome>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::direction)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::protocol::init_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::protocol::transfer_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::inventory_page)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<ferry::host_pace>)
// Credentials: no inspect(), so CAF can never print or serialize them.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::credential_session::turn)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<ferry::http_credential>)
