#include "store/lfs/batch_gatherer.hpp"

#include <set>
#include <string>

namespace ferry::lfs {

protocol::batch_response answer_for(const protocol::batch_response& response,
                                    const std::vector<protocol::batch_object>& objects) {
  std::set<std::string> oids;
  for (const auto& object : objects)
    oids.insert(object.oid);
  protocol::batch_response out;
  out.transfer = response.transfer;
  for (const auto& object : response.objects)
    if (oids.count(object.oid) > 0)
      out.objects.push_back(object);
  return out;
}

} // namespace ferry::lfs
