#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "context.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  reelq::cli::Io io{std::cout, std::cerr, isatty(STDERR_FILENO) == 1};
  const int code = reelq::cli::RunCli(args, io);
  std::cout.flush();
  return code;
}
