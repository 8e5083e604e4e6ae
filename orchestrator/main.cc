#include "orchestrator/cli.h"

int main(int argc, char** argv) { return ro::RunCli(argc, argv); }
