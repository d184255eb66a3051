#include <cstdio>
#include "core/version.h"
int main() { std::printf("loom %s\n", loom::kVersion); return 0; }
