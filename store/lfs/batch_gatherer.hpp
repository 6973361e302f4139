#pragma once

// Batch API questions gathered into shared requests (request_gatherer): one
// request for several objects also spares a server that limits Batch API
// calls.

#include "protocol/batch_api.hpp"
#include "store/request_gatherer.hpp"

#include <cstddef>
#include <vector>

namespace ferry::lfs {

/// The part of `response` about `objects`.
protocol::batch_response answer_for(const protocol::batch_response& response,
                                    const std::vector<protocol::batch_object>& objects);

/// One per store and operation.
class batch_gatherer : public request_gatherer<protocol::batch_object, protocol::batch_response> {
public:
  explicit batch_gatherer(size_t max_objects = protocol::max_batch_objects)
      : request_gatherer(max_objects, answer_for) {}
};

} // namespace ferry::lfs
