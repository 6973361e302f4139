#include "store/journal/transfer_record.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string_view>

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

// Printable ASCII without quotes or backslashes (oids, names, most messages)
// is copied as it is; the rest goes through dump().
void append_json_string(std::string& out, std::string_view text) {
  bool plain = std::all_of(text.begin(), text.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte >= 0x20 && byte < 0x7f && c != '"' && c != '\\';
  });
  if (!plain) {
    out += json(std::string{text}).dump(-1, ' ', false, json::error_handler_t::replace);
    return;
  }
  out += '"';
  out += text;
  out += '"';
}

void append_json_errors(std::string& out, const std::vector<attempt_error>& errors) {
  out += '[';
  for (size_t i = 0; i < errors.size(); ++i) {
    out += i == 0 ? "{\"at_ms\":" : ",{\"at_ms\":";
    out += std::to_string(errors[i].at_ms);
    out += ",\"code\":";
    append_json_string(out, errors[i].code);
    out += ",\"message\":";
    append_json_string(out, errors[i].message);
    out += '}';
  }
  out += ']';
}

namespace {

// Appends `,"name":`.
void append_name(std::string& out, const char* name) {
  out += ",\"";
  out += name;
  out += "\":";
}

} // namespace

// Written directly rather than through a json value: the journal encodes
// every record it writes, twice per transfer.
std::string encode(const transfer_record& record) {
  std::string out;
  out.reserve(384);
  out += "{\"v\":";
  out += std::to_string(transfer_record::format_version);
  auto number = [&](const char* name, int64_t value) {
    append_name(out, name);
    out += std::to_string(value);
  };
  auto text = [&](const char* name, std::string_view value) {
    append_name(out, name);
    append_json_string(out, value);
  };
  text("oid", record.oid);
  if (!record.cid.empty())
    text("cid", record.cid);
  text("direction", to_string(record.dir));
  number("size", record.size);
  text("state", to_string(record.state));
  number("committed", record.committed);
  number("attempts", record.attempts);
  number("resumed_from", record.resumed_from);
  text("backend", record.backend);
  text("path", record.path);
  number("created_ms", record.created_ms);
  number("updated_ms", record.updated_ms);
  number("finished_ms", record.finished_ms);
  append_name(out, "errors");
  append_json_errors(out, record.errors);
  if (!record.store_state.empty())
    text("store_state", record.store_state);
  out += '}';
  return out;
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
  record.cid = fields.text("cid", false);
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

std::string make_correlation_id() {
  static thread_local std::random_device source;
  // 48 bits from two draws: every draw may be a system call, and the
  // journal makes an id per transfer.
  uint64_t bits = (uint64_t{source()} << 32) | source();
  std::string id(12, '0');
  for (auto& c : id) {
    c = "0123456789abcdef"[bits & 0xf];
    bits >>= 4;
  }
  return id;
}

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

} // namespace ferry
