#include "store/store_compare.hpp"

#include "store/presence_check.hpp"

#include <algorithm>
#include <deque>
#include <mutex>
#include <thread>

namespace ferry {

namespace {

using steady = std::chrono::steady_clock;

/// Objects asked about, or taken for hashing, at once.
constexpr size_t page_objects = 100;

void add(inventory_totals::count& count, int64_t bytes) {
  count.objects += 1;
  count.bytes += bytes;
}

/// Collects the counts and hands findings and progress to the caller, one
/// thread at a time.
class comparison {
public:
  explicit comparison(const compare_options& options) : options_(options), shown_(steady::now()) {}

  void find(compare_finding finding) {
    std::lock_guard lock{mutex_};
    auto& count = count_of(finding.kind);
    add(count, finding.size);
    if (options_.found)
      options_.found(finding);
  }

  void matched(int64_t bytes, bool hashed) {
    std::lock_guard lock{mutex_};
    add(totals_.matched, bytes);
    if (hashed) {
      add(totals_.hashed, bytes);
      progress_.bytes_hashed += 2 * bytes;
    }
  }

  void listed(int64_t objects, int64_t bytes) {
    std::lock_guard lock{mutex_};
    totals_.source.objects += objects;
    totals_.source.bytes += bytes;
  }

  /// Enters a phase of `total` steps (0: unknown).
  void phase(const char* name, int64_t total) {
    std::lock_guard lock{mutex_};
    progress_.phase = name;
    progress_.done = 0;
    progress_.total = total;
  }

  void advance(int64_t steps) {
    std::lock_guard lock{mutex_};
    progress_.done += steps;
    show();
  }

  compare_totals& totals() { return totals_; }

private:
  inventory_totals::count& count_of(difference kind) {
    switch (kind) {
      case difference::missing:
        break;
      case difference::extra:
        return totals_.extra;
      case difference::size_differs:
        return totals_.size_differs;
      case difference::content_differs:
        return totals_.content_differs;
      case difference::corrupt_at_source:
        return totals_.corrupt_at_source;
      case difference::unreadable:
        return totals_.unreadable;
    }
    return totals_.missing;
  }

  // Quick comparisons show nothing; long ones every `progress_every`.
  void show() {
    if (!options_.progress)
      return;
    auto at = steady::now();
    if (at - shown_ < options_.progress_every)
      return;
    shown_ = at;
    options_.progress(progress_);
  }

  const compare_options& options_;
  std::mutex mutex_;
  compare_totals totals_;
  compare_progress progress_;
  steady::time_point shown_;
};

/// Asks the destination about the pending items a listing walk did not
/// settle, a page at a time.
status ask_pending(object_store& destination, migration_inventory& scratch, comparison& run) {
  std::string cursor;
  for (;;) {
    auto page = scratch.page(item_state::pending, cursor, page_objects);
    if (!page)
      return page.error();
    if (page->empty())
      return status::success();
    cursor = page->back().oid;
    std::vector<object_info> objects;
    for (auto& item : *page)
      objects.push_back({item.oid, item.size});
    auto answers = ask_sizes(destination, objects);
    std::vector<std::string> present;
    std::vector<std::string> missing;
    for (size_t i = 0; i < objects.size(); ++i) {
      auto& object = objects[i];
      auto& held = answers.sizes[i];
      if (!held)
        run.find({difference::unreadable, object.oid, object.size, std::nullopt,
                  "the destination cannot say whether it holds it: " + held.error().message()});
      else if (!*held)
        missing.push_back(object.oid);
      else if (**held != object.size)
        run.find({difference::size_differs, object.oid, object.size, **held, {}});
      else
        present.push_back(object.oid);
    }
    if (auto recorded = scratch.set_states(present, item_state::present); !recorded)
      return recorded;
    if (auto recorded = scratch.set_states(missing, item_state::missing); !recorded)
      return recorded;
    run.advance(static_cast<int64_t>(objects.size()));
  }
}

/// Calls `each` for every item in `state`, a page at a time.
status for_each_in(migration_inventory& scratch, item_state state,
                   const std::function<void(const inventory_item&)>& each) {
  std::string cursor;
  for (;;) {
    auto page = scratch.page(state, cursor, page_objects);
    if (!page)
      return page.error();
    if (page->empty())
      return status::success();
    cursor = page->back().oid;
    for (auto& item : *page)
      each(item);
  }
}

/// Reads both copies of every matched object and hashes them, with
/// `options.hash_workers` objects at once.
status hash_present(object_store& source, object_store& destination, migration_inventory& scratch,
                    const compare_options& options, comparison& run) {
  std::mutex mutex;
  std::deque<inventory_item> queue;
  std::string cursor;
  bool exhausted = false;
  status failure;
  auto next = [&]() -> std::optional<inventory_item> {
    std::lock_guard lock{mutex};
    if (queue.empty() && !exhausted && failure) {
      auto page = scratch.page(item_state::present, cursor, page_objects);
      if (!page)
        failure = page.error();
      else if (page->empty())
        exhausted = true;
      else {
        cursor = page->back().oid;
        // A store that must name sizes to a server (an LFS server) asks
        // about the whole page at once; a failure here shows again, per
        // object, when it is read.
        std::vector<object_info> objects;
        for (auto& item : *page)
          objects.push_back({item.oid, item.size});
        (void)source.expect_reads(objects);
        (void)destination.expect_reads(objects);
        queue.assign(std::make_move_iterator(page->begin()), std::make_move_iterator(page->end()));
      }
    }
    if (queue.empty())
      return std::nullopt;
    auto item = std::move(queue.front());
    queue.pop_front();
    return item;
  };
  auto check = [&](const inventory_item& item) {
    object_info object{item.oid, item.size};
    auto at_source = read_back_matches(source, object);
    auto at_destination = read_back_matches(destination, object);
    if (!at_source || !at_destination) {
      auto& problem = !at_source ? at_source.error() : at_destination.error();
      run.find({difference::unreadable, item.oid, item.size, std::nullopt,
                std::string{!at_source ? "the source's" : "the destination's"} +
                  " copy cannot be read: " + problem.message()});
    } else if (!*at_source) {
      run.find({difference::corrupt_at_source, item.oid, item.size, std::nullopt,
                std::string{"the source's copy does not hash to its oid"} +
                  (*at_destination ? "; the destination's does" : "; nor does the destination's")});
    } else if (!*at_destination) {
      run.find({difference::content_differs, item.oid, item.size, item.size,
                "the destination's copy does not hash to its oid"});
    } else {
      run.matched(item.size, true);
    }
    run.advance(1);
  };
  std::vector<std::thread> workers;
  for (int i = 0; i < std::max(1, options.hash_workers); ++i)
    workers.emplace_back([&] {
      while (auto item = next())
        check(*item);
    });
  for (auto& worker : workers)
    worker.join();
  return failure;
}

} // namespace

const char* to_string(difference kind) {
  switch (kind) {
    case difference::missing:
      return "missing";
    case difference::extra:
      return "extra";
    case difference::size_differs:
      return "size_differs";
    case difference::content_differs:
      return "content_differs";
    case difference::corrupt_at_source:
      return "corrupt_at_source";
    case difference::unreadable:
      return "unreadable";
  }
  return "missing";
}

bool compare_totals::match() const {
  for (auto* count :
       {&missing, &size_differs, &content_differs, &corrupt_at_source, &unreadable, &extra})
    if (count->objects > 0)
      return false;
  return true;
}

result<compare_totals> compare_stores(
  object_store& source, object_store& destination,
  const std::function<status(const std::function<status(const std::vector<object_info>&)>&)>&
    list_source,
  migration_inventory& scratch, const compare_options& options) {
  comparison run{options};
  if (auto begun = scratch.begin_run(); !begun)
    return begun.error();

  run.phase("listing the source", 0);
  auto listed = list_source([&](const std::vector<object_info>& batch) -> status {
    auto added = scratch.add(batch);
    if (!added)
      return added.error();
    run.advance(static_cast<int64_t>(batch.size()));
    return status::success();
  });
  if (!listed)
    return listed;
  auto listing = scratch.totals();
  if (!listing)
    return listing.error();
  run.listed(listing->pending.objects, listing->pending.bytes);

  // One walk of the destination's listing answers for every object at once
  // and finds the extra ones; a store that cannot list is asked per page.
  run.phase("listing the destination", 0);
  listing_visitors visitors;
  visitors.extra = [&](const object_info& held) {
    run.find({difference::extra, held.oid, held.size, held.size, {}});
  };
  visitors.size_differs = [&](const object_info& held, int64_t wanted) {
    run.find({difference::size_differs, held.oid, wanted, held.size, {}});
  };
  visitors.walked = [&run, counted = int64_t{0}](int64_t listed) mutable {
    run.advance(listed - counted);
    counted = listed;
  };
  auto settled = settle_by_listing(destination, scratch, -1, visitors, item_state::failed);
  if (!settled)
    return settled.error();
  if (settled->complete) {
    run.totals().extra_known = true;
  } else if (settled->stopped.code() != errc::invalid_request) {
    return settled->stopped.with_context("listing of " + destination.describe());
  } else {
    run.phase("asking the destination", listing->pending.objects);
    if (auto asked = ask_pending(destination, scratch, run); !asked)
      return asked;
  }

  if (auto reported =
        for_each_in(scratch, item_state::missing,
                    [&](const inventory_item& item) {
                      run.find({difference::missing, item.oid, item.size, std::nullopt, {}});
                    });
      !reported)
    return reported;
  if (options.hash) {
    auto present = scratch.totals();
    if (!present)
      return present.error();
    run.phase("hashing", present->present.objects);
    if (auto hashed = hash_present(source, destination, scratch, options, run); !hashed)
      return hashed;
  } else if (auto reported =
               for_each_in(scratch, item_state::present,
                           [&](const inventory_item& item) { run.matched(item.size, false); });
             !reported) {
    return reported;
  }
  return run.totals();
}

} // namespace ferry
