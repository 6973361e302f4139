#include "actors/fwd.hpp"

#include <caf/atom.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>
#include <caf/deep_to_string.hpp>

namespace ferry {

caf::atom_value error_category() {
  return caf::atom("ferry");
}

caf::error to_error(const status& st) {
  if (st.ok())
    return caf::error{};
  return caf::error{static_cast<uint8_t>(st.code()), error_category(),
                    caf::make_message(st.message())};
}

status to_status(const caf::error& err) {
  if (!err)
    return status::success();
  if (err.category() == error_category()) {
    std::string message;
    if (err.context().match_elements<std::string>())
      message = err.context().get_as<std::string>(0);
    return {static_cast<errc>(err.code()), std::move(message)};
  }
  return {errc::internal, caf::to_string(err)};
}

} // namespace ferry
