// Writes a made-up run directory (tests/sim/synthetic_run.hpp) and its
// report.html, for the screenshot test: report_example DIR
#include "simulations/harness/report.hpp"
#include "synthetic_run.hpp"

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " DIR\n";
    return 2;
  }
  std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  ferry::sim_report::testing::write_synthetic_run(dir);
  std::string error;
  int status = ferry::sim_report::write_report(dir, error);
  if (status != ferry::sim_report::report_written)
    std::cerr << "report: " << error << '\n';
  return status;
}
