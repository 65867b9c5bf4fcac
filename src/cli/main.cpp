// mdnstab entry point: registers the subcommands and hands over to the App.
#include "app.hpp"

int main(int argc, char** argv) {
  mdnstab::cli::App app;
  mdnstab::cli::setup_point(app);
  mdnstab::cli::setup_sweep(app);
  mdnstab::cli::setup_certify(app);
  mdnstab::cli::setup_lyapunov(app);
  mdnstab::cli::setup_constraint(app);
  mdnstab::cli::setup_chunk_safety(app);
  mdnstab::cli::setup_ode(app);
  mdnstab::cli::setup_simulate(app);
  mdnstab::cli::setup_validate(app);
  mdnstab::cli::setup_report(app);
  return app.main(argc, argv);
}
