#include "store/journal/journal_db.hpp"

#include "protocol/transfer_protocol.hpp"
#include "store/journal/rocksdb_support.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <charconv>
#include <cstdio>
#include <string>
#include <system_error>

namespace ferry {

namespace {

const std::string active_prefix = "a/";
const std::string history_prefix = "h/";
// The first key after every "h/..." key ('0' follows '/').
const std::string history_end = "h0";
const std::string seq_key = "m/seq";

std::string active_key(direction dir, const std::string& oid) {
  const char* kind = dir == direction::upload ? "u/" : dir == direction::download ? "d/" : "c/";
  return active_prefix + kind + oid;
}

// Zero-padded so that key order is numeric order.
std::string history_key(uint64_t seq) {
  char digits[21];
  std::snprintf(digits, sizeof digits, "%020llu", static_cast<unsigned long long>(seq));
  return history_prefix + digits;
}

bool starts_with(const rocksdb::Slice& key, const std::string& prefix) {
  return key.starts_with(rocksdb::Slice{prefix});
}

} // namespace

struct journal_db::impl {
  std::unique_ptr<rocksdb::DB> db;
  std::filesystem::path dir;
  journal_db::options opts;
  // The seq the next finish() writes; persisted as m/seq.
  uint64_t next_seq = 1;

  std::string where() const { return "journal " + dir.string(); }

  // With sync_writes a record survives kill -9 and power loss once a write
  // returns; without, it survives kill -9 (the write-ahead log is in the
  // kernel's hands) but not a power loss.
  rocksdb::WriteOptions
  write_options(journal_db::durability how = journal_db::durability::synced) const {
    rocksdb::WriteOptions out;
    out.sync = opts.sync_writes && how == journal_db::durability::synced;
    return out;
  }

  status writable() const {
    if (opts.read_only)
      return {errc::internal, where() + " is open read-only"};
    return status::success();
  }

  // A decoded value must match its key, so that recover() can never write a
  // record back under another object's key.
  result<transfer_record> decode_active(const std::string& key, const std::string& value) const {
    auto record = decode_record(value);
    if (!record)
      return record.error().with_context(where() + ": " + key);
    if (active_key(record->dir, record->oid) != key || record->finished())
      return status{errc::corrupt_record, where() + ": " + key + " holds a " +
                                            to_string(record->state) + " " +
                                            to_string(record->dir) + " record for " + record->oid};
    return record;
  }
};

journal_db::journal_db(std::unique_ptr<impl> state) : impl_(std::move(state)) {}

journal_db::~journal_db() = default;

result<std::unique_ptr<journal_db>> journal_db::open(const std::filesystem::path& dir,
                                                     options opts) {
  auto state = std::make_unique<impl>();
  state->dir = dir;
  state->opts = opts;

  std::error_code ec;
  if (opts.read_only) {
    // A reader must not create anything; no CURRENT file means no journal.
    bool found = std::filesystem::exists(dir / "CURRENT", ec);
    if (ec)
      return from_errno(ec.value(), "cannot read journal " + dir.string());
    if (!found)
      return status{errc::not_found, "no journal at " + dir.string() + " yet"};
  } else {
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return from_errno(ec.value(), "cannot create journal directory " + dir.string());
  }

  auto db_opts = small_db_options(dir);

  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = opts.read_only ? rocksdb::DB::OpenForReadOnly(db_opts, dir.string(), &raw)
                                     : rocksdb::DB::Open(db_opts, dir.string(), &raw);
  state->db.reset(raw);
  if (!s.ok()) {
    if (held_by_another_process(s))
      return status{errc::busy, "journal " + dir.string() + " is in use by another ferry process"};
    return from_rocksdb(s, "cannot open journal " + dir.string());
  }

  std::string seq;
  s = state->db->Get(rocksdb::ReadOptions{}, seq_key, &seq);
  if (s.ok()) {
    auto [end, err] = std::from_chars(seq.data(), seq.data() + seq.size(), state->next_seq);
    if (err != std::errc{} || end != seq.data() + seq.size() || seq.empty())
      return status{errc::corrupt_record,
                    state->where() + ": " + seq_key + " is not a number: \"" + seq + "\""};
  } else if (!s.IsNotFound()) {
    return from_rocksdb(s, state->where() + ": cannot read " + seq_key);
  }
  // finish() drops one entry at a time; a limit lowered since the last run
  // is applied here, once.
  if (!opts.read_only && state->next_seq > opts.history_limit) {
    s = state->db->DeleteRange(state->write_options(), state->db->DefaultColumnFamily(),
                               history_prefix, history_key(state->next_seq - opts.history_limit));
    if (!s.ok())
      return from_rocksdb(s, state->where() + ": cannot prune history");
  }
  return std::unique_ptr<journal_db>{new journal_db{std::move(state)}};
}

result<std::optional<transfer_record>> journal_db::get(direction dir, const std::string& oid) {
  std::string key = active_key(dir, oid);
  std::string value;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions{}, key, &value);
  if (s.IsNotFound())
    return std::optional<transfer_record>{};
  if (!s.ok())
    return from_rocksdb(s, impl_->where() + ": cannot read " + key);
  auto record = impl_->decode_active(key, value);
  if (!record)
    return record.error();
  return std::optional<transfer_record>{std::move(record).value()};
}

status journal_db::put(const transfer_record& record, durability how) {
  if (auto w = impl_->writable(); !w)
    return w;
  if (record.finished())
    return {errc::internal, std::string{"journal put() takes queued or in_flight records, not "} +
                              to_string(record.state) + " ones (use finish())"};
  if (!protocol::is_valid_oid(record.oid))
    return {errc::invalid_request, "invalid oid \"" + record.oid + "\""};
  std::string key = active_key(record.dir, record.oid);
  return from_rocksdb(impl_->db->Put(impl_->write_options(how), key, encode(record)),
                      impl_->where() + ": cannot write " + key);
}

status journal_db::finish(const transfer_record& record) {
  return finish(std::vector<transfer_record>{record});
}

status journal_db::finish(const std::vector<transfer_record>& records) {
  if (auto w = impl_->writable(); !w)
    return w;
  for (const auto& record : records) {
    if (!record.finished())
      return {errc::internal, std::string{"journal finish() takes done or failed records, not "} +
                                to_string(record.state) + " ones"};
    if (!protocol::is_valid_oid(record.oid))
      return {errc::invalid_request, "invalid oid \"" + record.oid + "\""};
  }
  if (records.empty())
    return status::success();

  uint64_t seq = impl_->next_seq;
  size_t limit = impl_->opts.history_limit;
  rocksdb::WriteBatch batch;
  for (const auto& record : records) {
    batch.Delete(active_key(record.dir, record.oid));
    if (limit > 0)
      batch.Put(history_key(seq), encode(record));
    // Seqs are consecutive and open() pruned anything older, so keeping
    // `limit` entries means dropping exactly the one that leaves the window.
    if (seq >= limit)
      batch.Delete(history_key(seq - limit));
    ++seq;
  }
  batch.Put(seq_key, std::to_string(seq));

  std::string what = records.size() == 1 ? "finished transfer of " + records.front().oid
                                         : std::to_string(records.size()) + " finished transfers";
  auto s = from_rocksdb(impl_->db->Write(impl_->write_options(), &batch),
                        impl_->where() + ": cannot record " + what);
  if (s)
    impl_->next_seq = seq;
  return s;
}

// One unreadable record fails the whole listing with errc::corrupt_record
// naming its key: skipping it would silently drop a transfer.
result<std::vector<transfer_record>> journal_db::active() {
  std::vector<transfer_record> records;
  std::unique_ptr<rocksdb::Iterator> it{impl_->db->NewIterator(rocksdb::ReadOptions{})};
  for (it->Seek(active_prefix); it->Valid() && starts_with(it->key(), active_prefix); it->Next()) {
    auto record = impl_->decode_active(it->key().ToString(), it->value().ToString());
    if (!record)
      return record.error();
    records.push_back(std::move(record).value());
  }
  if (!it->status().ok())
    return from_rocksdb(it->status(), impl_->where() + ": cannot read active transfers");
  return records;
}

result<std::vector<transfer_record>> journal_db::history(size_t limit) {
  std::vector<transfer_record> records;
  std::unique_ptr<rocksdb::Iterator> it{impl_->db->NewIterator(rocksdb::ReadOptions{})};
  for (it->SeekForPrev(history_end);
       records.size() < limit && it->Valid() && starts_with(it->key(), history_prefix);
       it->Prev()) {
    std::string key = it->key().ToString();
    auto record = decode_record(it->value().ToString());
    if (!record)
      return record.error().with_context(impl_->where() + ": " + key);
    if (!record->finished())
      return status{errc::corrupt_record, impl_->where() + ": " + key + " holds a " +
                                            to_string(record->state) + " record"};
    records.push_back(std::move(record).value());
  }
  if (!it->status().ok())
    return from_rocksdb(it->status(), impl_->where() + ": cannot read history");
  return records;
}

result<std::vector<transfer_record>> journal_db::recover() {
  if (auto w = impl_->writable(); !w)
    return w;
  auto all = active();
  if (!all)
    return all.error();
  std::vector<transfer_record> recovered;
  rocksdb::WriteBatch batch;
  int64_t now = now_ms();
  for (auto& record : all.value()) {
    if (record.state != transfer_state::in_flight)
      continue;
    // Committed bytes and errors stay: the next attempt resumes from them.
    record.state = transfer_state::queued;
    record.updated_ms = now;
    batch.Put(active_key(record.dir, record.oid), encode(record));
    recovered.push_back(std::move(record));
  }
  if (recovered.empty())
    return recovered;
  auto s = from_rocksdb(impl_->db->Write(impl_->write_options(), &batch),
                        impl_->where() + ": cannot requeue interrupted transfers");
  if (!s)
    return s;
  return recovered;
}

} // namespace ferry
