#include "store/rocksdb_support.hpp"

namespace ferry {

rocksdb::Options small_db_options() {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.info_log_level = rocksdb::WARN_LEVEL;
  options.keep_log_file_num = 2;
  options.max_log_file_size = 1 << 20;
  options.max_manifest_file_size = 4 << 20;
  return options;
}

status from_rocksdb(const rocksdb::Status& s, const std::string& context) {
  if (s.ok())
    return status::success();
  errc code = errc::io_error;
  if (s.IsCorruption())
    code = errc::corrupt_record;
  else if (s.IsNoSpace())
    code = errc::no_space;
  return {code, context + ": " + s.ToString()};
}

bool held_by_another_process(const rocksdb::Status& s) {
  return s.IsIOError() && s.ToString().find("/LOCK") != std::string::npos;
}

} // namespace ferry
