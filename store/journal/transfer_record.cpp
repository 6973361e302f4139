#include "store/journal/transfer_record.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>

namespace ferry {

namespace {

using json = nlohmann::json;

std::optional<direction> parse_direction(const std::string& name) {
  if (name == "upload")
    return direction::upload;
  if (name == "download")
    return direction::download;
  if (name == "copy")
    return direction::copy;
  return std::nullopt;
}

std::optional<transfer_state> parse_state(const std::string& name) {
  if (name == "queued")
    return transfer_state::queued;
  if (name == "in_flight")
    return transfer_state::in_flight;
  if (name == "done")
    return transfer_state::done;
  if (name == "failed")
    return transfer_state::failed;
  return std::nullopt;
}

status corrupt(const std::string& why) { return {errc::corrupt_record, "journal record " + why}; }

// Reads the fields of one JSON object; the first problem found is kept in
// `error` and later reads become no-ops, so decoding reads straight through.
class field_reader {
public:
  field_reader(const json& object, std::string where) : object_(object), where_(std::move(where)) {}

  const status& error() const { return error_; }

  // Sizes, counters and timestamps: integers that are never negative.
  int64_t count(const char* name, bool required = true) {
    const json* value = find(name, required);
    if (value == nullptr)
      return 0;
    // Unsigned values above INT64_MAX would wrap when read as int64_t.
    bool fits = value->is_number_integer() &&
                (value->is_number_unsigned()
                   ? value->get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max())
                   : value->get<int64_t>() >= 0);
    if (!fits) {
      fail(std::string{"field \""} + name + "\"" + where_ + " must be a non-negative integer");
      return 0;
    }
    return value->get<int64_t>();
  }

  std::string text(const char* name, bool required = true) {
    const json* value = find(name, required);
    if (value == nullptr)
      return {};
    if (!value->is_string()) {
      fail(std::string{"field \""} + name + "\"" + where_ + " must be a string");
      return {};
    }
    return value->get<std::string>();
  }

  // Null when absent (and not required) or of the wrong type.
  const json* find(const char* name, bool required) {
    if (!error_.ok())
      return nullptr;
    auto it = object_.find(name);
    if (it == object_.end()) {
      if (required)
        fail(std::string{"has no field \""} + name + "\"" + where_);
      return nullptr;
    }
    return &*it;
  }

  void fail(const std::string& why) {
    if (error_.ok())
      error_ = corrupt(why);
  }

private:
  const json& object_;
  std::string where_;
  status error_;
};

} // namespace

const char* to_string(direction dir) {
  switch (dir) {
    case direction::download:
      return "download";
    case direction::copy:
      return "copy";
    case direction::upload:
      break;
  }
  return "upload";
}

const char* to_string(transfer_state state) {
  switch (state) {
    case transfer_state::queued:
      return "queued";
    case transfer_state::in_flight:
      return "in_flight";
    case transfer_state::done:
      return "done";
    case transfer_state::failed:
      return "failed";
  }
  return "queued";
}

void transfer_record::add_error(attempt_error error) {
  errors.push_back(std::move(error));
  if (errors.size() > max_errors)
    errors.erase(errors.begin(), errors.end() - max_errors);
}

std::string encode(const transfer_record& record) {
  // ordered_json keeps "v" first and the fields in the documented order.
  nlohmann::ordered_json errors = nlohmann::ordered_json::array();
  for (const auto& e : record.errors)
    errors.push_back({{"at_ms", e.at_ms}, {"code", e.code}, {"message", e.message}});
  nlohmann::ordered_json out = {
    {"v", transfer_record::format_version},
    {"oid", record.oid},
    {"direction", to_string(record.dir)},
    {"size", record.size},
    {"state", to_string(record.state)},
    {"committed", record.committed},
    {"attempts", record.attempts},
    {"resumed_from", record.resumed_from},
    {"backend", record.backend},
    {"path", record.path},
    {"created_ms", record.created_ms},
    {"updated_ms", record.updated_ms},
    {"finished_ms", record.finished_ms},
    {"errors", std::move(errors)},
  };
  if (!record.store_state.empty())
    out["store_state"] = record.store_state;
  // Messages and paths may hold invalid UTF-8 (OS errors, odd file names);
  // replacing it with U+FFFD keeps dump() from throwing.
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

result<transfer_record> decode_record(const std::string& bytes) {
  json doc = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded())
    return corrupt("is not valid JSON");
  if (!doc.is_object())
    return corrupt("is not a JSON object");

  auto version = doc.find("v");
  if (version == doc.end())
    return corrupt("has no format version (field \"v\")");
  if (!version->is_number_integer())
    return corrupt("format version (field \"v\") is not an integer");
  // An unsigned value above INT64_MAX reads back negative, never as 1.
  if (version->get<int64_t>() != transfer_record::format_version)
    return status{errc::corrupt_record, "unsupported journal record format version " +
                                          version->dump() + " (this ferry understands " +
                                          std::to_string(transfer_record::format_version) + ")"};

  field_reader fields{doc, ""};
  transfer_record record;
  record.oid = fields.text("oid");
  std::string dir = fields.text("direction");
  record.size = fields.count("size");
  std::string state = fields.text("state");
  record.committed = fields.count("committed");
  int64_t attempts = fields.count("attempts");
  record.resumed_from = fields.count("resumed_from", false);
  record.backend = fields.text("backend");
  record.path = fields.text("path", false);
  record.store_state = fields.text("store_state", false);
  record.created_ms = fields.count("created_ms");
  record.updated_ms = fields.count("updated_ms");
  record.finished_ms = fields.count("finished_ms");
  const json* errors = fields.find("errors", false);
  if (!fields.error().ok())
    return fields.error();

  if (attempts > std::numeric_limits<int>::max())
    return corrupt("field \"attempts\" is too large");
  record.attempts = static_cast<int>(attempts);

  auto parsed_dir = parse_direction(dir);
  if (!parsed_dir)
    return corrupt("has unknown direction \"" + dir + "\"");
  record.dir = *parsed_dir;
  auto parsed_state = parse_state(state);
  if (!parsed_state)
    return corrupt("has unknown state \"" + state + "\"");
  record.state = *parsed_state;

  if (errors != nullptr) {
    if (!errors->is_array())
      return corrupt("field \"errors\" must be an array");
    for (size_t i = 0; i < errors->size(); ++i) {
      const json& entry = (*errors)[i];
      if (!entry.is_object())
        return corrupt("errors[" + std::to_string(i) + "] is not a JSON object");
      field_reader error_fields{entry, " in errors[" + std::to_string(i) + "]"};
      attempt_error e;
      e.at_ms = error_fields.count("at_ms");
      e.code = error_fields.text("code");
      e.message = error_fields.text("message");
      if (!error_fields.error().ok())
        return error_fields.error();
      // add_error() also enforces max_errors on records written elsewhere.
      record.add_error(std::move(e));
    }
  }
  return record;
}

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

} // namespace ferry
