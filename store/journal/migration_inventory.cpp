#include "store/journal/migration_inventory.hpp"

#include "protocol/transfer_protocol.hpp"
#include "store/journal/rocksdb_support.hpp"

#include <nlohmann/json.hpp>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/utilities/table_properties_collectors.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <limits>
#include <mutex>
#include <string_view>
#include <system_error>

namespace ferry {

// Key space (RocksDB's bytewise order is oid order within each prefix):
//   `i/<oid>`          the item: {"v":2,"size":..,"state":..,"attempts":..,
//                      "errors":[{"at_ms":..,"code":..,"message":..}],"run":..}
//                      (version 1, without "run", is read as run 0)
//   `s/<state>/<oid>`  "": the per-state index page() walks; always written in
//                      the same batch as the item, so it never disagrees with it
//   `m/identity`       the migration this inventory belongs to
//   `m/run`            the number of the latest run (begin_run())
//
// totals() reads every `i/` value once (one sequential pass, constant memory).

namespace {

using json = nlohmann::json;

constexpr int format_version = 2;
const std::string item_prefix = "i/";
const std::string identity_key = "m/identity";
const std::string run_key = "m/run";

constexpr item_state all_states[] = {item_state::pending, item_state::missing,  item_state::copied,
                                     item_state::present, item_state::verified, item_state::failed,
                                     item_state::corrupt};

// move_all() and forget_unlisted() commit in batches of about this many
// RocksDB entries (up to three per item), so a pass over millions of items
// needs no huge batch; each item moves atomically anyway.
constexpr size_t batch_entries = 3000;

std::string item_key(const std::string& oid) { return item_prefix + oid; }

std::string index_prefix(item_state state) { return std::string{"s/"} + to_string(state) + "/"; }

std::string index_key(item_state state, const std::string& oid) {
  return index_prefix(state) + oid;
}

// The first key after every key that starts with `prefix` (which ends in '/',
// and '0' follows '/').
std::string prefix_end(std::string prefix) {
  prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

std::optional<item_state> parse_state(const std::string& name) {
  for (item_state state : all_states)
    if (name == to_string(state))
      return state;
  return std::nullopt;
}

rocksdb::WriteOptions logged() {
  // Whatever a call wrote survives kill -9 once it returns: RocksDB has
  // handed its log to the kernel. It is not flushed to disk, which would
  // cost a sync per object; after a power loss an item may be pending
  // again, and the migration asks the destination about it before copying.
  return rocksdb::WriteOptions{};
}

// An oid names one content, so one size: a listing that names it with two
// sizes is wrong, and neither can be trusted.
status listed_twice(const object_info& object, int64_t other_size) {
  return {errc::config_error, "object " + object.oid + " is listed twice, with sizes " +
                                std::to_string(other_size) + " and " + std::to_string(object.size)};
}

status check_oid(const std::string& oid) {
  if (protocol::is_valid_oid(oid))
    return status::success();
  return {errc::invalid_request, "invalid oid \"" + oid + "\""};
}

// Written directly rather than through a json value, byte for byte as
// dump() wrote an ordered_json: every copied object is encoded twice.
std::string encode_item(const inventory_item& item) {
  std::string out;
  out.reserve(128);
  out += "{\"v\":";
  out += std::to_string(format_version);
  out += ",\"size\":";
  out += std::to_string(item.size);
  out += ",\"state\":\"";
  out += to_string(item.state);
  out += "\",\"attempts\":";
  out += std::to_string(item.attempts);
  out += ",\"errors\":";
  append_json_errors(out, item.errors);
  out += ",\"run\":";
  out += std::to_string(item.run);
  if (!item.cid.empty()) {
    out += ",\"cid\":";
    append_json_string(out, item.cid);
  }
  out += '}';
  return out;
}

// A non-negative integer field of `object`, or nullopt when it is absent or
// is anything else.
std::optional<int64_t> count_field(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_number_integer())
    return std::nullopt;
  // Unsigned values above INT64_MAX would wrap when read as int64_t.
  if (it->is_number_unsigned())
    return it->get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max())
             ? std::optional<int64_t>{it->get<int64_t>()}
             : std::nullopt;
  int64_t value = it->get<int64_t>();
  return value >= 0 ? std::optional<int64_t>{value} : std::nullopt;
}

const std::string* text_field(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string())
    return nullptr;
  return it->get_ptr<const std::string*>();
}

void append_error(inventory_item& item, attempt_error error) {
  item.errors.push_back(std::move(error));
  if (item.errors.size() > transfer_record::max_errors)
    item.errors.erase(item.errors.begin(), item.errors.end() - transfer_record::max_errors);
}

// Reads the value encode_item() writes for an item without errors, and
// nothing else: any other byte sequence (escapes, spaces, another field
// order, errors, version 1) gives nullopt and goes to the JSON parser.
class canonical_item_reader {
public:
  explicit canonical_item_reader(std::string_view bytes) : rest_(bytes) {}

  std::optional<inventory_item> read(const std::string& oid) {
    inventory_item item;
    item.oid = oid;
    std::string_view state;
    std::optional<int64_t> version, size, attempts, run;
    if (!(literal("{\"v\":") && (version = number()) && literal(",\"size\":") &&
          (size = number()) && literal(",\"state\":") && plain_text(state) &&
          literal(",\"attempts\":") && (attempts = number()) &&
          literal(",\"errors\":[],\"run\":") && (run = number())))
      return std::nullopt;
    std::string_view cid;
    if (literal(",\"cid\":") && !plain_text(cid))
      return std::nullopt;
    auto parsed_state = parse_state(std::string{state});
    if (!literal("}") || !rest_.empty() || *version != format_version || !parsed_state ||
        *attempts > std::numeric_limits<int>::max())
      return std::nullopt;
    item.size = *size;
    item.state = *parsed_state;
    item.attempts = static_cast<int>(*attempts);
    item.run = *run;
    item.cid = std::string{cid};
    return item;
  }

private:
  bool literal(std::string_view text) {
    if (rest_.substr(0, text.size()) != text)
      return false;
    rest_.remove_prefix(text.size());
    return true;
  }

  // A non-negative integer as JSON writes it (no leading zero), small
  // enough that it cannot overflow.
  std::optional<int64_t> number() {
    size_t digits = 0;
    while (digits < rest_.size() && rest_[digits] >= '0' && rest_[digits] <= '9')
      ++digits;
    if (digits == 0 || digits > 18 || (digits > 1 && rest_[0] == '0'))
      return std::nullopt;
    int64_t value = 0;
    for (size_t i = 0; i < digits; ++i)
      value = value * 10 + (rest_[i] - '0');
    rest_.remove_prefix(digits);
    return value;
  }

  // A string of printable ASCII without escapes, as append_json_string()
  // writes such text.
  bool plain_text(std::string_view& text) {
    if (!literal("\""))
      return false;
    size_t end = 0;
    while (end < rest_.size() && rest_[end] != '"') {
      auto byte = static_cast<unsigned char>(rest_[end]);
      if (byte < 0x20 || byte >= 0x7f || byte == '\\')
        return false;
      ++end;
    }
    if (end == rest_.size())
      return false;
    text = rest_.substr(0, end);
    rest_.remove_prefix(end + 1);
    return true;
  }

  std::string_view rest_;
};

// Decodes an `i/` value; `why` gets the first problem found.
std::optional<inventory_item> decode_item(const std::string& oid, const std::string& bytes,
                                          std::string& why) {
  // Most values are read several times per migration: the common form
  // skips building a JSON document.
  if (auto item = canonical_item_reader{bytes}.read(oid))
    return item;
  json doc = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    why = "is not a JSON object";
    return std::nullopt;
  }
  auto version = doc.find("v");
  if (version == doc.end() || !version->is_number_integer() || version->get<int64_t>() < 1 ||
      version->get<int64_t>() > format_version) {
    why = "has unsupported format version " +
          (version == doc.end() ? std::string{"(none)"} : version->dump()) + " (expected 1 to " +
          std::to_string(format_version) + ")";
    return std::nullopt;
  }
  inventory_item item;
  item.oid = oid;
  auto size = count_field(doc, "size");
  auto attempts = count_field(doc, "attempts");
  const std::string* state = text_field(doc, "state");
  auto parsed_state = state ? parse_state(*state) : std::nullopt;
  auto errors = doc.find("errors");
  if (!size || !attempts || *attempts > std::numeric_limits<int>::max() || !parsed_state ||
      errors == doc.end() || !errors->is_array()) {
    why = "lacks a valid size, attempts, state or errors field";
    return std::nullopt;
  }
  item.size = *size;
  item.attempts = static_cast<int>(*attempts);
  item.state = *parsed_state;
  if (version->get<int64_t>() >= 2) {
    auto run = count_field(doc, "run");
    if (!run) {
      why = "lacks a valid run field";
      return std::nullopt;
    }
    item.run = *run;
  }
  // Items written before correlation ids have none.
  if (auto cid = doc.find("cid"); cid != doc.end()) {
    if (!cid->is_string()) {
      why = "has a cid that is not a string";
      return std::nullopt;
    }
    item.cid = cid->get<std::string>();
  }
  for (const json& entry : *errors) {
    auto at_ms = entry.is_object() ? count_field(entry, "at_ms") : std::nullopt;
    const std::string* code = entry.is_object() ? text_field(entry, "code") : nullptr;
    const std::string* message = entry.is_object() ? text_field(entry, "message") : nullptr;
    if (!at_ms || !code || !message) {
      why = "has a malformed errors entry";
      return std::nullopt;
    }
    append_error(item, {*at_ms, *code, *message});
  }
  return item;
}

inventory_totals::count& count_of(inventory_totals& totals, item_state state) {
  switch (state) {
    case item_state::pending:
      break;
    case item_state::missing:
      return totals.missing;
    case item_state::copied:
      return totals.copied;
    case item_state::present:
      return totals.present;
    case item_state::verified:
      return totals.verified;
    case item_state::failed:
      return totals.failed;
    case item_state::corrupt:
      return totals.corrupt;
  }
  return totals.pending;
}

// Walks the keys under one prefix in order, through one snapshot, so that
// an index entry and the item it names are seen as one write left them, and
// writes made during the walk do not move it.
class prefix_scan {
public:
  /// Starts after `prefix + after` (empty `after`: at the first key).
  prefix_scan(rocksdb::DB& db, std::string prefix, const std::string& after = {})
      : db_(db), prefix_(std::move(prefix)), end_(prefix_end(prefix_)), upper_(end_),
        snapshot_(db.GetSnapshot()) {
    reads_.snapshot = snapshot_;
    rocksdb::ReadOptions scan = reads_;
    scan.iterate_upper_bound = &upper_;
    it_.reset(db.NewIterator(scan));
    std::string start = prefix_ + after;
    it_->Seek(start);
    if (!after.empty() && it_->Valid() && it_->key() == rocksdb::Slice{start})
      it_->Next();
  }
  ~prefix_scan() {
    it_.reset();
    db_.ReleaseSnapshot(snapshot_);
  }
  prefix_scan(const prefix_scan&) = delete;
  prefix_scan& operator=(const prefix_scan&) = delete;

  bool valid() const { return it_->Valid(); }
  void next() { it_->Next(); }
  /// The current key without the prefix: an oid.
  std::string oid() const {
    rocksdb::Slice key = it_->key();
    key.remove_prefix(prefix_.size());
    return key.ToString();
  }
  std::string value() const { return it_->value().ToString(); }
  /// Options for reads at the walk's snapshot.
  const rocksdb::ReadOptions& reads() const { return reads_; }
  /// What stopped the walk, once valid() is false.
  status end_status(const std::string& where) const {
    return from_rocksdb(it_->status(), where + ": cannot read " + prefix_);
  }

private:
  rocksdb::DB& db_;
  std::string prefix_;
  std::string end_;
  rocksdb::Slice upper_;
  const rocksdb::Snapshot* snapshot_;
  rocksdb::ReadOptions reads_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

} // namespace

const char* to_string(item_state state) {
  switch (state) {
    case item_state::pending:
      return "pending";
    case item_state::missing:
      return "missing";
    case item_state::copied:
      return "copied";
    case item_state::present:
      return "present";
    case item_state::verified:
      return "verified";
    case item_state::failed:
      return "failed";
    case item_state::corrupt:
      return "corrupt";
  }
  return "pending";
}

inventory_totals::count inventory_totals::all() const {
  count sum;
  for (const count* part : {&pending, &missing, &copied, &present, &verified, &failed, &corrupt}) {
    sum.objects += part->objects;
    sum.bytes += part->bytes;
  }
  return sum;
}

inventory_totals::count inventory_totals::open() const {
  return {pending.objects + missing.objects, pending.bytes + missing.bytes};
}

struct migration_inventory::impl {
  std::unique_ptr<rocksdb::DB> db;
  std::filesystem::path dir;
  // The current run's number; items its listing names carry it.
  int64_t run = 0;
  // set_state(), set_states() and requeue() read an item, change it
  // and write it back; calls from several threads must not interleave there.
  std::mutex writing;

  std::string where() const { return "journal " + dir.string(); }

  status corrupt(const std::string& key, const std::string& why) const {
    return {errc::corrupt_record, where() + ": " + key + " " + why};
  }

  result<inventory_item> decode(const std::string& oid, const std::string& bytes) const {
    std::string why;
    auto item = decode_item(oid, bytes, why);
    if (!item)
      return corrupt(item_key(oid), why);
    return std::move(*item);
  }

  result<std::optional<inventory_item>> read(const std::string& oid,
                                             const rocksdb::ReadOptions& opts) const {
    std::string key = item_key(oid);
    std::string value;
    rocksdb::Status s = db->Get(opts, key, &value);
    if (s.IsNotFound())
      return std::optional<inventory_item>{};
    if (!s.ok())
      return from_rocksdb(s, where() + ": cannot read " + key);
    auto item = decode(oid, value);
    if (!item)
      return item.error();
    return std::optional<inventory_item>{std::move(item).value()};
  }

  // Stages the item and moves its index entry from `previous` (nullopt for a
  // new item) to its current state.
  static void stage(rocksdb::WriteBatch& batch, const inventory_item& item,
                    std::optional<item_state> previous) {
    batch.Put(item_key(item.oid), encode_item(item));
    if (previous == item.state)
      return;
    if (previous)
      batch.Delete(index_key(*previous, item.oid));
    batch.Put(index_key(item.state, item.oid), "");
  }

  // Stages the move of `oid` to `state`, adding `attempts` and `error` to
  // its history; false when the oid is not in the inventory.
  result<bool> stage_move(rocksdb::WriteBatch& batch, const std::string& oid, item_state state,
                          int attempts, const std::optional<attempt_error>& error,
                          const std::string& cid = {}) const {
    auto found = read(oid, rocksdb::ReadOptions{});
    if (!found)
      return found.error();
    if (!found->has_value())
      return false;
    inventory_item item = std::move(found).value().value();
    item_state previous = item.state;
    item.state = state;
    item.attempts = attempts > std::numeric_limits<int>::max() - item.attempts
                      ? std::numeric_limits<int>::max()
                      : item.attempts + attempts;
    if (error)
      append_error(item, *error);
    if (!cid.empty())
      item.cid = cid;
    stage(batch, item, previous);
    return true;
  }

  status write(rocksdb::WriteBatch& batch, const std::string& what) {
    return from_rocksdb(db->Write(logged(), &batch), where() + ": cannot " + what);
  }

  // An index entry whose item is missing or in another state means the
  // journal was damaged; skipping it would silently drop an object.
  result<inventory_item> indexed_item(item_state state, const std::string& oid,
                                      const rocksdb::ReadOptions& opts) const {
    auto item = read(oid, opts);
    if (!item)
      return item.error();
    if (!item->has_value())
      return corrupt(index_key(state, oid), "names an object that is not in the inventory");
    if (item->value().state != state)
      return corrupt(index_key(state, oid), std::string{"names an object whose state is "} +
                                              to_string(item->value().state));
    return std::move(*item).value();
  }

  status open_identity(const std::string& identity) {
    std::string stored;
    rocksdb::Status s = db->Get(rocksdb::ReadOptions{}, identity_key, &stored);
    if (s.ok()) {
      if (stored == identity)
        return status::success();
      return {errc::config_error, where() + " belongs to migration '" + stored + "', not '" +
                                    identity + "'; use another --journal or delete it"};
    }
    if (!s.IsNotFound())
      return from_rocksdb(s, where() + ": cannot read " + identity_key);
    // A directory holding other data (another tool's database) is not
    // adopted as this migration's journal.
    std::unique_ptr<rocksdb::Iterator> it{db->NewIterator(rocksdb::ReadOptions{})};
    it->SeekToFirst();
    if (it->Valid())
      return {errc::config_error, where() + " holds data but no migration identity" +
                                    "; use another --journal or delete it"};
    if (!it->status().ok())
      return from_rocksdb(it->status(), where() + ": cannot read");
    return from_rocksdb(db->Put(logged(), identity_key, identity),
                        where() + ": cannot write " + identity_key);
  }

  status open_run() {
    std::string stored;
    rocksdb::Status s = db->Get(rocksdb::ReadOptions{}, run_key, &stored);
    if (s.IsNotFound())
      return status::success();
    if (!s.ok())
      return from_rocksdb(s, where() + ": cannot read " + run_key);
    if (stored.empty() || stored.size() > 18 ||
        stored.find_first_not_of("0123456789") != std::string::npos)
      return corrupt(run_key, "holds \"" + stored + "\", not a run number");
    run = std::stoll(stored);
    return status::success();
  }

  // Writes the batch once it holds `limit` entries (or at the end: limit 0),
  // so a pass over millions of items needs no huge batch.
  status flush(rocksdb::WriteBatch& batch, size_t limit, const std::string& what) {
    if (batch.Count() == 0 || batch.Count() < limit)
      return status::success();
    auto written = write(batch, what);
    batch.Clear();
    return written;
  }
};

migration_inventory::migration_inventory(std::unique_ptr<impl> state) : impl_(std::move(state)) {}

migration_inventory::~migration_inventory() = default;

result<std::unique_ptr<migration_inventory>>
migration_inventory::open(const std::filesystem::path& dir, const std::string& identity) {
  auto state = std::make_unique<impl>();
  state->dir = dir;

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return from_errno(ec.value(), "cannot create journal directory " + dir.string());

  auto db_opts = small_db_options(dir);
  // Every item leaves a tombstone in its old state's index when it moves on;
  // files dense with them get compacted early so page() does not wade
  // through millions of deleted `s/pending/` keys.
  db_opts.table_properties_collector_factories.emplace_back(
    rocksdb::NewCompactOnDeletionCollectorFactory(1000, 500));

  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_opts, dir.string(), &raw);
  state->db.reset(raw);
  if (!s.ok()) {
    if (held_by_another_process(s))
      return status{errc::busy, "another ferry migrate is using " + dir.string()};
    return from_rocksdb(s, "cannot open journal " + dir.string());
  }
  if (auto checked = state->open_identity(identity); !checked)
    return checked;
  if (auto run = state->open_run(); !run)
    return run;
  return std::unique_ptr<migration_inventory>{new migration_inventory{std::move(state)}};
}

result<std::string> migration_inventory::identity_in(const std::filesystem::path& dir) {
  std::error_code ec;
  bool found = std::filesystem::exists(dir / "CURRENT", ec);
  if (ec)
    return from_errno(ec.value(), "cannot read journal " + dir.string());
  if (!found)
    return std::string{};
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(small_db_options(dir), dir.string(), &raw);
  std::unique_ptr<rocksdb::DB> db{raw};
  if (!s.ok())
    return from_rocksdb(s, "cannot open journal " + dir.string());
  std::string stored;
  s = db->Get(rocksdb::ReadOptions{}, identity_key, &stored);
  if (s.IsNotFound())
    return std::string{};
  if (!s.ok())
    return from_rocksdb(s, "journal " + dir.string() + ": cannot read " + identity_key);
  return stored;
}

result<size_t> migration_inventory::add(const std::vector<object_info>& objects) {
  for (const auto& object : objects) {
    if (auto valid = check_oid(object.oid); !valid)
      return valid;
    if (object.size < 0)
      return status{errc::invalid_request,
                    "negative size " + std::to_string(object.size) + " for " + object.oid};
  }
  // In oid order: RocksDB's memtable takes a batch of ordered keys far
  // faster than scattered ones, and an oid listed twice sits next to itself.
  std::vector<const object_info*> listed;
  listed.reserve(objects.size());
  for (const auto& object : objects)
    listed.push_back(&object);
  auto by_oid = [](const object_info* a, const object_info* b) { return a->oid < b->oid; };
  std::sort(listed.begin(), listed.end(), by_oid);
  for (size_t i = 1; i < listed.size(); ++i)
    if (listed[i]->oid == listed[i - 1]->oid && listed[i]->size != listed[i - 1]->size)
      return listed_twice(*listed[i], listed[i - 1]->size);
  listed.erase(
    std::unique(listed.begin(), listed.end(),
                [](const object_info* a, const object_info* b) { return a->oid == b->oid; }),
    listed.end());

  std::lock_guard<std::mutex> lock{impl_->writing};
  std::vector<std::pair<inventory_item, std::optional<item_state>>> stamped;
  stamped.reserve(listed.size());
  size_t fresh = 0;
  for (const object_info* object : listed) {
    auto found = impl_->read(object->oid, rocksdb::ReadOptions{});
    if (!found)
      return found.error();
    inventory_item item;
    std::optional<item_state> previous;
    if (found->has_value()) {
      item = std::move(found).value().value();
      previous = item.state;
      if (item.run == impl_->run && item.size != object->size)
        return listed_twice(*object, item.size);
      bool dead_letter = item.state == item_state::failed || item.state == item_state::corrupt;
      // This run's listing is the truth: a size an earlier listing got
      // wrong is corrected, and the object gets a fresh chance.
      if (!dead_letter || item.size != object->size) {
        item.state = item_state::pending;
        item.size = object->size;
      }
    } else {
      item.oid = object->oid;
      item.size = object->size;
      ++fresh;
    }
    item.run = impl_->run;
    stamped.emplace_back(std::move(item), previous);
  }
  if (stamped.empty())
    return size_t{0};
  // Items first, then their index entries: each run stays in key order.
  rocksdb::WriteBatch batch;
  for (const auto& [item, previous] : stamped)
    batch.Put(item_key(item.oid), encode_item(item));
  for (const auto& [item, previous] : stamped) {
    if (previous == item.state)
      continue;
    if (previous)
      batch.Delete(index_key(*previous, item.oid));
    batch.Put(index_key(item.state, item.oid), "");
  }
  if (auto written = impl_->write(batch, "add listed objects"); !written)
    return written;
  return fresh;
}

result<int64_t> migration_inventory::begin_run() {
  std::lock_guard<std::mutex> lock{impl_->writing};
  int64_t next = impl_->run + 1;
  auto s = from_rocksdb(impl_->db->Put(logged(), run_key, std::to_string(next)),
                        impl_->where() + ": cannot write " + run_key);
  if (!s)
    return s;
  impl_->run = next;
  return next;
}

result<size_t> migration_inventory::forget_unlisted() {
  std::lock_guard<std::mutex> lock{impl_->writing};
  size_t forgotten = 0;
  rocksdb::WriteBatch batch;
  const std::string what = "forget objects gone from the source";
  prefix_scan scan{*impl_->db, item_prefix};
  for (; scan.valid(); scan.next()) {
    auto item = impl_->decode(scan.oid(), scan.value());
    if (!item)
      return item.error();
    if (item->run == impl_->run)
      continue;
    batch.Delete(item_key(item->oid));
    batch.Delete(index_key(item->state, item->oid));
    ++forgotten;
    if (auto written = impl_->flush(batch, batch_entries, what); !written)
      return written;
  }
  if (auto read = scan.end_status(impl_->where()); !read)
    return read;
  if (auto written = impl_->flush(batch, 0, what); !written)
    return written;
  return forgotten;
}

result<std::vector<inventory_item>>
migration_inventory::page(item_state state, const std::string& after, size_t limit) const {
  std::vector<inventory_item> items;
  if (limit == 0)
    return items;
  prefix_scan scan{*impl_->db, index_prefix(state), after};
  for (; scan.valid() && items.size() < limit; scan.next()) {
    auto item = impl_->indexed_item(state, scan.oid(), scan.reads());
    if (!item)
      return item.error();
    items.push_back(std::move(item).value());
  }
  if (auto read = scan.end_status(impl_->where()); !read)
    return read;
  return items;
}

result<std::optional<inventory_item>> migration_inventory::get(const std::string& oid) const {
  if (auto valid = check_oid(oid); !valid)
    return valid;
  return impl_->read(oid, rocksdb::ReadOptions{});
}

status migration_inventory::set_state(const std::string& oid, item_state state, int attempts,
                                      const std::optional<attempt_error>& error,
                                      const std::string& cid) {
  if (auto valid = check_oid(oid); !valid)
    return valid;
  if (attempts < 0)
    return {errc::invalid_request, "negative attempt count " + std::to_string(attempts)};
  std::lock_guard<std::mutex> lock{impl_->writing};
  rocksdb::WriteBatch batch;
  auto staged = impl_->stage_move(batch, oid, state, attempts, error, cid);
  if (!staged)
    return staged.error();
  if (!staged.value())
    return {errc::not_found, impl_->where() + " has no object " + oid};
  return impl_->write(batch, std::string{"record "} + to_string(state) + " for " + oid);
}

status migration_inventory::set_states(const std::vector<std::string>& oids, item_state state) {
  for (const auto& oid : oids)
    if (auto valid = check_oid(oid); !valid)
      return valid;
  // In oid order, once each: the batch's keys go in sorted, as in add().
  std::vector<std::string> unique_oids = oids;
  std::sort(unique_oids.begin(), unique_oids.end());
  unique_oids.erase(std::unique(unique_oids.begin(), unique_oids.end()), unique_oids.end());

  std::lock_guard<std::mutex> lock{impl_->writing};
  rocksdb::WriteBatch batch;
  for (const auto& oid : unique_oids)
    if (auto staged = impl_->stage_move(batch, oid, state, 0, std::nullopt); !staged)
      return staged.error();
  if (batch.Count() == 0)
    return status::success();
  return impl_->write(batch, std::string{"record "} + to_string(state) + " for " +
                               std::to_string(unique_oids.size()) + " objects");
}

result<size_t> migration_inventory::move_all(const std::vector<item_state>& states, item_state to) {
  std::lock_guard<std::mutex> lock{impl_->writing};
  size_t moved = 0;
  rocksdb::WriteBatch batch;
  const std::string what = std::string{"move objects to "} + to_string(to);
  for (item_state from : states) {
    if (from == to)
      continue;
    // The scan's snapshot keeps it on the entries that existed when it
    // started while the batches below move them away.
    prefix_scan scan{*impl_->db, index_prefix(from)};
    for (; scan.valid(); scan.next()) {
      auto item = impl_->indexed_item(from, scan.oid(), scan.reads());
      if (!item)
        return item.error();
      item->state = to;
      impl::stage(batch, item.value(), from);
      ++moved;
      if (auto written = impl_->flush(batch, batch_entries, what); !written)
        return written;
    }
    if (auto read = scan.end_status(impl_->where()); !read)
      return read;
  }
  if (auto written = impl_->flush(batch, 0, what); !written)
    return written;
  return moved;
}

result<inventory_totals> migration_inventory::totals() const {
  inventory_totals totals;
  prefix_scan scan{*impl_->db, item_prefix};
  for (; scan.valid(); scan.next()) {
    auto item = impl_->decode(scan.oid(), scan.value());
    if (!item)
      return item.error();
    inventory_totals::count& slot = count_of(totals, item->state);
    slot.objects += 1;
    slot.bytes += item->size;
  }
  if (auto read = scan.end_status(impl_->where()); !read)
    return read;
  return totals;
}

} // namespace ferry
