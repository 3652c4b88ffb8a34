/* replay.c: a main() for the fuzz targets built with the ordinary compiler
 * against the ordinary library: runs the target once on each file named,
 * so that inputs the fuzzer saved (t/data/fuzz/) stay regression tests.
 * Prints TAP: one line per file, which dies with the process if it fails. */
#include <stdio.h>
#include <stdlib.h>
#include "fuzz.h"

int main(int argc, char **argv)
{
  LLVMFuzzerInitialize(&argc, &argv);
  for (int i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    if (!f) {
      printf("not ok %d - %s: cannot open\n", i, argv[i]);
      continue;
    }
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    printf("ok %d - %s\n", i, argv[i]);
    fflush(stdout);
  }
  printf("1..%d\n", argc - 1);
  MPI_Finalize();
  return 0;
}
