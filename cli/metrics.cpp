#include "cli/commands.hpp"

#include "store/os/metrics_endpoint.hpp"

#include <chrono>
#include <iostream>

namespace ferry::cli {

int run_metrics(const std::string& from) {
  result<std::string> text = std::string{};
  if (from.empty()) {
    text = daemon_metrics();
    if (!text &&
        (text.error().code() == errc::not_found || text.error().code() == errc::unavailable)) {
      std::cerr << "ferry metrics: no ferry daemon runs (" << text.error().message()
                << "); start one with 'ferry daemon start', or read a migration's with --from "
                   "ADDR\n";
      return 1;
    }
  } else {
    auto address = metrics_address::parse(from);
    if (!address)
      return std::cerr << "ferry metrics: --from: " << address.error().message() << "\n", 2;
    text = scrape_metrics(*address, std::chrono::seconds{10});
  }
  if (!text)
    return std::cerr << "ferry metrics: " << text.error().message() << "\n", 1;
  std::cout << *text << std::flush;
  return std::cout ? 0 : 1;
}

} // namespace ferry::cli
