#include "protocol/status.hpp"

#include <array>
#include <cerrno>
#include <cstring>

namespace ferry {

namespace {

constexpr std::array<const char*, 16> names = {
  "ok",           "invalid_request", "size_mismatch",     "hash_mismatch",
  "not_found",    "path_rejected",   "permission_denied", "no_space",
  "io_error",     "unavailable",     "corrupt_record",    "busy",
  "config_error", "cancelled",       "internal",          nullptr,
};

} // namespace

const char* to_string(errc code) {
  auto index = static_cast<size_t>(code);
  if (index < names.size() && names[index] != nullptr)
    return names[index];
  return "internal";
}

errc errc_from_string(const std::string& name) {
  for (size_t i = 0; i < names.size() && names[i] != nullptr; ++i)
    if (name == names[i])
      return static_cast<errc>(i);
  return errc::internal;
}

status from_errno(int error_number, const std::string& what) {
  auto message = what + ": " + std::strerror(error_number);
  switch (error_number) {
    case ENOENT:
      return {errc::not_found, message};
    case EACCES:
    case EPERM:
    case EROFS:
      return {errc::permission_denied, message};
    case ENOSPC:
    case EDQUOT:
      return {errc::no_space, message};
    default:
      return {errc::io_error, message};
  }
}

std::string status::to_string() const {
  if (ok())
    return "ok";
  return std::string{ferry::to_string(code_)} + ": " + message_;
}

status status::with_context(const std::string& context) const {
  if (ok())
    return *this;
  status out{code_, context + ": " + message_};
  out.retry_after_ = retry_after_;
  return out;
}

status status::with_retry_after(std::chrono::milliseconds wait) const {
  status out = *this;
  out.retry_after_ = wait;
  return out;
}

retry_class classify(errc code) {
  switch (code) {
    case errc::io_error:
    case errc::unavailable:
    case errc::busy:
      return retry_class::transient;
    case errc::ok:
    case errc::invalid_request:
    case errc::size_mismatch:
    case errc::hash_mismatch:
    case errc::not_found:
    case errc::path_rejected:
    case errc::permission_denied:
    case errc::no_space:
    case errc::corrupt_record:
    case errc::config_error:
    case errc::cancelled:
    case errc::internal:
      return retry_class::permanent;
  }
  return retry_class::permanent;
}

} // namespace ferry
