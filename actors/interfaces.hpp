#pragma once

// The typed interfaces of every engine actor, one comment per handler.
// Message flow for one object (docs/architecture.md has the picture):
//   stdin -> PROTOCOL IO -> COORDINATOR -> SUPERVISOR -> WORKER
//   WORKER -> JOURNAL (begin, commit), WORKER -> COORDINATOR (progress)
//   SUPERVISOR -> JOURNAL (failed, finish), SUPERVISOR -> COORDINATOR (outcome)
//   COORDINATOR -> PROTOCOL IO -> stdout

#include "actors/fwd.hpp"

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

namespace ferry {

/// The STORE SYNCER: the JOURNAL's helper for the engine's store, on a
/// thread of its own, so the journal keeps serving while a group's sync runs.
using store_syncer_actor = caf::typed_actor<
  // Publishes the store's committed objects and makes them durable
  // (object_store::sync_published); replies with the group's outcomes, a
  // success the store could not publish or make durable turned into a failure.
  caf::replies_to<atom::flush, std::vector<transfer_outcome>>::with<std::vector<transfer_outcome>>>;

/// The JOURNAL actor: sole owner of the RocksDB journal.
using journal_actor = caf::typed_actor<
  // Starts an attempt: loads (or creates) the object's record, marks it
  // in flight and counts the attempt. The reply's `committed` is where the
  // attempt may resume.
  caf::replies_to<atom::begin, transfer_job, std::string>::with<transfer_record>,
  // Records the offset the attempt actually continues from.
  caf::reacts_to<atom::started, direction, std::string, int64_t>,
  // Records that bytes up to the given offset are durable (the resume
  // point), with the store's state for resuming (object_writer::resume_state).
  caf::reacts_to<atom::commit, direction, std::string, int64_t, std::string>,
  // Records a failed attempt that will be retried; the record is queued again.
  caf::replies_to<atom::failed, direction, std::string, attempt_error>::with<bool>,
  // Ends a transfer (done or failed) and moves its record to history. The
  // reply is the outcome as recorded, sent once the result is durable: a
  // success whose store could not be synced comes back as a failure.
  caf::replies_to<atom::finish, transfer_outcome>::with<transfer_outcome>,
  // Ends the finishes received so far as one group (self-sent).
  caf::reacts_to<atom::flush>,
  // Start-up recovery: records left in flight by a crash are queued again.
  caf::replies_to<atom::recover>::with<std::vector<transfer_record>>,
  // Active records and recent history.
  caf::replies_to<atom::snapshot>::with<journal_snapshot>>;

/// The COORDINATOR's inbox for worker progress and outcomes.
using progress_sink_actor = caf::typed_actor<
  // A running transfer moved more bytes.
  caf::reacts_to<atom::progress, progress_note>,
  // Job `id` stored its object, which now waits for the journal's sync.
  caf::reacts_to<atom::stored, uint64_t>>;

/// A transfer WORKER: owns one attempt at one object.
using worker_actor = caf::typed_actor<
  // Moves the next chunk (self-sent, so other messages interleave).
  caf::reacts_to<atom::step>,
  // The blocking call running on the pool has its result.
  caf::reacts_to<atom::resume>>;

/// The transfer SUPERVISOR: runs each job in a worker and restarts failed
/// workers with backoff, within the attempt and restart budgets; paces
/// network jobs per host (rate limiter, circuit breaker, retry budget).
using supervisor_actor = caf::typed_actor<
  // Runs a job to its final outcome (success or a reported failure).
  caf::replies_to<atom::run, transfer_job, progress_sink_actor>::with<transfer_outcome>,
  // A worker finished its object (sent by the worker before it exits).
  // The bool: the store already held the object and nothing was written.
  caf::reacts_to<atom::done, uint64_t, std::string, bool>,
  // A worker's attempt at job `id` began in the journal; the second
  // argument is the transfer's correlation id, for the supervisor's logs.
  caf::reacts_to<atom::begun, uint64_t, std::string>,
  // Timer: start the next attempt of job `id` (first argument) if its
  // pending wake-up is still the second argument; a job woken another way
  // meanwhile (a closed circuit, a freed retry slot) ignores the old timer.
  caf::reacts_to<atom::restart, uint64_t, uint64_t>,
  // The caller of the jobs numbered `first` to `last` went away: each that
  // has not ended is answered with errc::cancelled, its waiting dropped or
  // its worker stopped, never retried; its journal record stays as it is
  // (in flight: a later job of the object resumes from what is durable).
  caf::reacts_to<atom::cancel, uint64_t, uint64_t>>;

/// The RATE LIMITER, shared by all workers of an engine: paces requests and
/// bytes per host and holds a host back while its server asked us to wait.
using rate_limiter_actor = caf::typed_actor<
  // Answers once one request carrying the given bytes may go to the host;
  // callers for the same host are answered in the order they asked.
  caf::replies_to<atom::acquire, std::string, int64_t>::with<bool>,
  // The host asked us to wait (Retry-After or similar): no acquisition for it
  // is answered before now + duration. Never shortens an earlier cooldown.
  caf::reacts_to<atom::cooldown, std::string, caf::timespan>,
  // The host answered 429 or 503: its rate is cut, then recovers over time
  // (policy/rate_backoff.hpp). No effect on a host without a rate limit.
  caf::reacts_to<atom::throttled, std::string>,
  // How many acquisitions are waiting for the host.
  caf::replies_to<atom::get, std::string>::with<int>,
  // Every host's pace now (ferry daemon status).
  caf::replies_to<atom::get>::with<std::vector<host_pace>>,
  // Timer: answers the host's acquisitions whose turn has come.
  caf::reacts_to<atom::wake, std::string>>;

/// A SESSION (ferry daemon): what authenticates requests to one store for
/// every repository the daemon serves with it, per user, so that one `git
/// credential fill` serves them all (policy/credential_session.hpp). The git
/// calls run in the caller's context; the session only decides who runs them.
using session_actor = caf::typed_actor<
  // Credentials to use, or the caller's turn to fill them; while another
  // caller fills, answered once that fill has ended.
  caf::replies_to<atom::fill>::with<credential_session::turn>,
  // The fill a turn handed out ended (no credential: git had none or
  // failed); replies with the credentials' generation (0 without).
  caf::replies_to<atom::filled, std::optional<http_credential>>::with<uint64_t>,
  // A request with the credentials of a generation succeeded; true: the
  // caller runs `git credential approve` (once per fill).
  caf::replies_to<atom::approve, uint64_t>::with<bool>,
  // The server refused the credentials of a generation; true: they were
  // dropped and the caller runs `git credential reject`.
  caf::replies_to<atom::reject, uint64_t>::with<bool>>;

/// The PROTOCOL IO actor: decodes stdin lines and writes replies to stdout.
using protocol_io_actor = caf::typed_actor<
  // A line read from stdin.
  caf::reacts_to<atom::input, std::string>,
  // A line longer than the limit was read and dropped.
  caf::reacts_to<atom::too_long>,
  // stdin is closed.
  caf::reacts_to<atom::eof>,
  // Writes one reply line to stdout.
  caf::reacts_to<atom::reply, std::string>>;

/// The PAGE CHECKER: asks the destination (and the source) about one page of
/// a migration at a time, on a thread of its own, while the MIGRATOR goes on
/// starting copies.
using page_checker_actor = caf::typed_actor<
  // The page with the destination's answers (check_page()).
  caf::replies_to<atom::check, inventory_page>::with<inventory_page>>;

/// The MIGRATOR (`ferry migrate`): feeds the inventory's pending objects to
/// the SUPERVISOR as copy jobs, within the concurrency limit, and records
/// each outcome in the inventory.
using migrator_actor = progress_sink_actor::extend<
  // Take more work: check the destination for the next pending objects and
  // start copies while the limit allows (self-sent after every change).
  caf::reacts_to<atom::pump>,
  // Timer: show progress.
  caf::reacts_to<atom::tick>>;

/// The COORDINATOR: turns protocol requests into jobs and outcomes into replies.
using coordinator_actor = progress_sink_actor::extend<
  // git-lfs's init.
  caf::reacts_to<protocol::init_request>,
  // An upload or download request.
  caf::reacts_to<protocol::transfer_request>,
  // git-lfs's terminate: finish in-flight work, then stop.
  caf::reacts_to<atom::terminate>,
  // The input ended without terminate (git-lfs went away): cancel the jobs
  // in flight, then stop.
  caf::reacts_to<atom::eof>>;

} // namespace ferry
