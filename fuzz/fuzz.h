/* fuzz.h: what the libFuzzer targets share: reading values from the input
 * bytes, MPI started once, a scratch directory for scripts. */
#ifndef LUISA_FUZZ_H
#define LUISA_FUZZ_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "luisa.h"

typedef struct fz {
  const uint8_t *p;
  size_t n;
} fz;

static inline uint8_t fz_u8(fz *f)
{
  if (!f->n)
    return 0;
  f->n--;
  return *f->p++;
}

/* Mostly small numbers, which reach deeper; sometimes an extreme, or any
 * 64 bits. */
static inline int64_t fz_i64(fz *f)
{
  static const int64_t extremes[] = { INT64_MIN, INT64_MAX, INT64_MAX / 2, (int64_t)1 << 62, -((int64_t)1 << 62),
                                      (int64_t)1 << 31, -1, ((int64_t)1 << 32) + 1, INT32_MAX, INT32_MIN,
                                      (int64_t)3037000500, 1000000, -1000000, 64, 65, 0 };
  uint8_t sel = fz_u8(f);
  if (sel < 208)
    return (int64_t)(sel % 20) - 3;
  if (sel < 240)
    return extremes[sel % 16];
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | fz_u8(f);
  return (int64_t)v;
}

static inline double fz_f64(fz *f)
{
  uint8_t sel = fz_u8(f);
  if (sel < 128)
    return (double)((int)sel - 64) / 8.0;
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | fz_u8(f);
  double d;
  memcpy(&d, &v, sizeof d);
  return d;
}

/* MPI once per process (libFuzzer runs every input in one process); the
 * environment t/lib.sh sets for containers. */
static inline void fz_start(int *argc, char ***argv)
{
  setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0);
  setenv("OMPI_MCA_mca_base_component_disable_dlclose", "1", 0);
  int up = 0;
  MPI_Initialized(&up);
  int provided;   /* thread mode's level, so that LUISA_MODE=thread fuzzes it too */
  if (!up)
    MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
}

/* A fresh directory under /tmp for the scripts, removed at exit with the
 * one file a target writes there. */
static char fz_dir_path[64], fz_file[256];
static inline void fz_clean(void)
{
  if (fz_file[0])
    remove(fz_file);
  remove(fz_dir_path);
}

static inline const char *fz_dir(void)
{
  if (!fz_dir_path[0]) {
    snprintf(fz_dir_path, sizeof fz_dir_path, "/tmp/luisa-fuzz-XXXXXX");
    if (!mkdtemp(fz_dir_path))
      abort();
    atexit(fz_clean);
  }
  return fz_dir_path;
}

static inline void fz_write(const char *path, const void *text, size_t n)
{
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(text, 1, n, f) != n)
    abort();
  fclose(f);
  snprintf(fz_file, sizeof fz_file, "%s", path);
}

/* A status no documented code names is a defect too. */
static inline void fz_documented(int status)
{
  if (!strcmp(luisa_status_string(status), "unknown status code")) {
    fprintf(stderr, "fuzz: undocumented status %d\n", status);
    abort();
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#endif
