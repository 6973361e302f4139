#pragma once

#include "store/object_store.hpp"

#include <memory>
#include <string>

namespace ferry {

/// Opens the store a URL names. Supported now: `file:///absolute/path`
/// (a folder store). A bare absolute path is accepted as a folder too.
/// Unknown schemes and relative paths give errc::config_error with a message
/// that lists what is supported.
result<std::shared_ptr<object_store>> open_store(const std::string& url);

} // namespace ferry
