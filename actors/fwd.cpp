#include "actors/fwd.hpp"

#include "store/http/http_engine.hpp"

#include <caf/atom.hpp>
#include <caf/deep_to_string.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

namespace ferry {

std::string to_string(const job_action& action) {
  // Header values (tokens) are left out; redact_url drops the rest.
  std::string out = "job_action(" + redact_url(action.href) + ", headers:";
  for (auto& [name, value] : action.headers)
    out += " " + name;
  return out + ")";
}

caf::atom_value error_category() { return caf::atom("ferry"); }

caf::error to_error(const status& st) {
  if (st.ok())
    return caf::error{};
  return caf::error{static_cast<uint8_t>(st.code()), error_category(),
                    caf::make_message(st.message(), int64_t{st.retry_after().count()})};
}

status to_status(const caf::error& err) {
  if (!err)
    return status::success();
  if (err.category() == error_category()) {
    std::string message;
    int64_t retry_after_ms = 0;
    if (err.context().match_elements<std::string, int64_t>()) {
      message = err.context().get_as<std::string>(0);
      retry_after_ms = err.context().get_as<int64_t>(1);
    }
    return status{static_cast<errc>(err.code()), std::move(message)}.with_retry_after(
      std::chrono::milliseconds{retry_after_ms});
  }
  return {errc::internal, caf::to_string(err)};
}

} // namespace ferry
