/* decomp.c: the collective declaration check of the first luisa_step, run on
 * 2 or 3 ranks: overlaps, holes, mismatched declarations, a valid tiling. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "luisa.h"
#include "tap.h"

enum { LAST = -1 };      /* box owner: the last rank, whatever the size */
enum { MAXBOX = 8, MAXDECL = 2, MAXFRAG = 8, FRAG = 200 };

typedef struct box {
  int owner;             /* 0, 1 or LAST */
  int64_t off[LUISA_MAX_DIMS], shp[LUISA_MAX_DIMS];
} box;

typedef struct decl {
  const char *name;
  luisa_dtype dtype;
  int ndim;
  int64_t shape[LUISA_MAX_DIMS];
  int nbox;
  box box[MAXBOX];       /* each rank declares its boxes in table order */
} decl;

typedef struct scenario {
  const char *what;
  int want;              /* status of the first step on every rank */
  int ndecl;
  decl decl[MAXDECL];    /* what every rank declares... */
  int odd, nodd;         /* ...but rank `odd` (0, 1, LAST) when nodd > 0 */
  decl odd_decl[MAXDECL];
  const char *frags[4];  /* for a mismatch: what the sentence must also say */
} scenario;

#define F64 LUISA_F64
#define SLABS_6x8 { { 0, { 0, 0 }, { 2, 8 } }, { 1, { 2, 0 }, { 2, 8 } }, { LAST, { 4, 0 }, { 2, 8 } } }
#define TEMP_6x8 { "Temp", F64, 2, { 6, 8 }, 3, SLABS_6x8 }
#define PRES_8 { "Pres", F64, 1, { 8 }, 1, { { LAST, { 0 }, { 8 } } } }

static const scenario scenarios[] = {
  /* The overlap (row 2, columns 4-7) has the volume of the hole (row 5,
   * columns 4-7): counting elements alone would pass. */
  { .what = "overlap between chunks of two ranks", .want = LUISA_ERR_CHUNK, .ndecl = 1, .decl =
    { { "Temp", F64, 2, { 6, 8 }, 3,
        { { 0, { 0, 0 }, { 3, 8 } }, { LAST, { 3, 0 }, { 3, 4 } }, { LAST, { 2, 4 }, { 3, 4 } } } } } },
  /* Temp is fine; Pres, the second array, has two overlapping chunks on rank 1. */
  { .what = "overlap between two chunks of one rank", .want = LUISA_ERR_CHUNK, .ndecl = 2, .decl =
    { { "Temp", F64, 2, { 4, 6 }, 3,
        { { 0, { 0, 0 }, { 4, 2 } }, { 1, { 0, 2 }, { 4, 2 } }, { LAST, { 0, 4 }, { 4, 2 } } } },
      { "Pres", F64, 3, { 4, 3, 5 }, 4,
        { { 0, { 0, 0, 0 }, { 2, 3, 5 } }, { 1, { 2, 0, 0 }, { 2, 3, 2 } },
          { 1, { 2, 0, 2 }, { 2, 3, 3 } }, { 1, { 3, 1, 1 }, { 1, 1, 1 } } } } } },
  /* Holes at [2, 3] and in column 6 of rows 3-4. */
  { .what = "hole in a 2-d array", .want = LUISA_ERR_CHUNK, .ndecl = 1, .decl =
    { { "Temp", F64, 2, { 5, 7 }, 4,
        { { 0, { 0, 0 }, { 2, 7 } }, { 1, { 2, 0 }, { 1, 3 } }, { LAST, { 2, 4 }, { 1, 3 } },
          { 0, { 3, 0 }, { 2, 6 } } } } } },
  { .what = "hole in a 3-d array", .want = LUISA_ERR_CHUNK, .ndecl = 1, .decl =
    { { "Temp", F64, 3, { 3, 4, 2 }, 3,
        { { 0, { 0, 0, 0 }, { 3, 2, 2 } }, { LAST, { 0, 2, 0 }, { 3, 2, 1 } }, { 1, { 0, 2, 1 }, { 2, 2, 1 } } } } } },
  { .what = "array with no chunk on any rank", .want = LUISA_ERR_CHUNK, .ndecl = 1, .decl = { { "Temp", F64, 2, { 4, 5 }, 0, { { 0 } } } } },
  { .what = "dtype differs on rank 1", .want = LUISA_ERR_NAME, .ndecl = 1, .decl = { TEMP_6x8 },
    .odd = 1, .nodd = 1, .odd_decl = { { "Temp", LUISA_F32, 2, { 6, 8 }, 3, SLABS_6x8 } },
    .frags = { "Temp", "f32", "f64" } },
  { .what = "shape differs on the last rank", .want = LUISA_ERR_NAME, .ndecl = 1, .decl = { TEMP_6x8 },
    .odd = LAST, .nodd = 1, .odd_decl = { { "Temp", F64, 2, { 6, 9 }, 3,
                 { { 0, { 0, 0 }, { 2, 9 } }, { 1, { 2, 0 }, { 2, 9 } }, { LAST, { 4, 0 }, { 2, 9 } } } } },
    .frags = { "Temp", "[6, 9]", "[6, 8]" } },
  { .what = "declaration order differs on the last rank", .want = LUISA_ERR_NAME, .ndecl = 2,
    .decl = { TEMP_6x8, PRES_8 }, .odd = LAST, .nodd = 2, .odd_decl = { PRES_8, TEMP_6x8 },
    .frags = { "Temp", "Pres" } },
  { .what = "extra array on rank 0", .want = LUISA_ERR_NAME, .ndecl = 1, .decl = { TEMP_6x8 },
    .odd = 0, .nodd = 2, .odd_decl = { TEMP_6x8, PRES_8 }, .frags = { "Pres" } },
  { .what = "extra array on rank 1", .want = LUISA_ERR_NAME, .ndecl = 1, .decl = { TEMP_6x8 },
    .odd = 1, .nodd = 2, .odd_decl = { TEMP_6x8, PRES_8 }, .frags = { "Pres" } },
  /* Seven boxes, all of different shapes, several per rank, in no grid; Pres is owned
   * by the last rank alone, in two chunks. */
  { .what = "valid irregular tiling", .want = LUISA_OK, .ndecl = 2, .decl =
    { { "Temp", F64, 2, { 7, 10 }, 7,
        { { 1, { 0, 0 }, { 3, 4 } }, { 0, { 0, 4 }, { 1, 6 } }, { LAST, { 1, 4 }, { 4, 2 } },
          { 0, { 1, 6 }, { 6, 4 } }, { 1, { 3, 0 }, { 4, 1 } }, { 0, { 3, 1 }, { 2, 3 } },
          { LAST, { 5, 1 }, { 2, 5 } } } },
      { "Pres", F64, 1, { 8 }, 2, { { LAST, { 0 }, { 5 } }, { LAST, { 5 }, { 3 } } } } } },
};
enum { NSCEN = sizeof scenarios / sizeof scenarios[0] };

static int rank, size;

static const char *status_name(int st)
{
  return st == LUISA_OK ? "LUISA_OK" : st == LUISA_ERR_CHUNK ? "LUISA_ERR_CHUNK" : st == LUISA_ERR_NAME ? "LUISA_ERR_NAME" : "?";
}

static int resolve(int who) { return who == LAST ? size - 1 : who; }

static const decl *decls_of(const scenario *s, int r, int *n)
{
  int odd = s->nodd > 0 && r == resolve(s->odd);
  *n = odd ? s->nodd : s->ndecl;
  return odd ? s->odd_decl : s->decl;
}

static int64_t volume(int ndim, const int64_t *shape)
{
  int64_t v = 1;
  for (int d = 0; d < ndim; d++)
    v *= shape[d];
  return v;
}

static const char *index_text(char *buf, size_t cap, int ndim, const int64_t *v)
{
  size_t n = (size_t)snprintf(buf, cap, "[");
  for (int d = 0; d < ndim && n < cap; d++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? ", " : "", (long long)v[d]);
  if (n < cap)
    snprintf(buf + n, cap - n, "]");
  return buf;
}

/* Index of box k among the boxes of its owner: its local chunk index. */
static int local_index(const decl *a, int k)
{
  int n = 0;
  for (int i = 0; i < k; i++)
    n += resolve(a->box[i].owner) == resolve(a->box[k].owner);
  return n;
}

static int box_holds(int ndim, const box *b, const int64_t *p)
{
  for (int d = 0; d < ndim; d++)
    if (p[d] < b->off[d] || p[d] >= b->off[d] + b->shp[d])
      return 0;
  return 1;
}

static int boxes_meet(int ndim, const box *x, const box *y)
{
  for (int d = 0; d < ndim; d++)
    if (x->off[d] >= y->off[d] + y->shp[d] || y->off[d] >= x->off[d] + x->shp[d])
      return 0;
  return 1;
}

static int same_decls(const decl *x, int nx, const decl *y, int ny)
{
  if (nx != ny)
    return 0;
  for (int i = 0; i < nx; i++) {
    if (strcmp(x[i].name, y[i].name) || x[i].dtype != y[i].dtype || x[i].ndim != y[i].ndim)
      return 0;
    for (int d = 0; d < x[i].ndim; d++)
      if (x[i].shape[d] != y[i].shape[d])
        return 0;
  }
  return 1;
}

static void chunk_text(char *buf, const decl *a, int k)
{
  char o[64], s[64];
  snprintf(buf, FRAG, "chunk %d of rank %d (offset %s, shape %s)", local_index(a, k), resolve(a->box[k].owner),
           index_text(o, sizeof o, a->ndim, a->box[k].off), index_text(s, sizeof s, a->ndim, a->box[k].shp));
}

/* The verdict worked out by brute force, independently of the engine, and
 * the fragments its sentence must hold. Returns the status. */
static int oracle(const scenario *s, char frags[][FRAG], int *nf)
{
  *nf = 0;
  int n0;
  const decl *d0 = decls_of(s, 0, &n0);
  for (int r = 1; r < size; r++) {
    int nr;
    const decl *dr = decls_of(s, r, &nr);
    if (!same_decls(d0, n0, dr, nr)) {
      snprintf(frags[(*nf)++], FRAG, "rank %d declares", r);
      snprintf(frags[(*nf)++], FRAG, "rank 0 declares");
      for (int k = 0; k < 4 && s->frags[k]; k++)
        snprintf(frags[(*nf)++], FRAG, "%s", s->frags[k]);
      return LUISA_ERR_NAME;
    }
  }
  for (int i = 0; i < n0; i++) {
    const decl *a = &d0[i];
    int pairs = 0, px = -1, py = -1;
    for (int x = 0; x < a->nbox; x++)
      for (int y = x + 1; y < a->nbox; y++)
        if (boxes_meet(a->ndim, &a->box[x], &a->box[y]) && pairs++ == 0)
          px = x, py = y;
    if (pairs) {
      if (pairs > 1)   /* the engine may name any pair: the fixture must have one */
        snprintf(frags[(*nf)++], FRAG, "(fixture has %d overlapping pairs, expected 1)", pairs);
      snprintf(frags[(*nf)++], FRAG, "array \"%s\"", a->name);
      chunk_text(frags[(*nf)++], a, px);
      chunk_text(frags[(*nf)++], a, py);
      snprintf(frags[(*nf)++], FRAG, "overlaps");
      return LUISA_ERR_CHUNK;
    }
    /* First element in C order that no box holds. */
    int64_t p[LUISA_MAX_DIMS];
    for (int64_t e = 0, n = volume(a->ndim, a->shape); e < n; e++) {
      int64_t rest = e;
      for (int d = a->ndim - 1; d >= 0; d--) {
        p[d] = rest % a->shape[d];
        rest /= a->shape[d];
      }
      int held = 0;
      for (int k = 0; k < a->nbox && !held; k++)
        held = box_holds(a->ndim, &a->box[k], p);
      if (!held) {
        char t[64];
        snprintf(frags[(*nf)++], FRAG, "array \"%s\"", a->name);
        snprintf(frags[(*nf)++], FRAG, "no chunk holds element %s", index_text(t, sizeof t, a->ndim, p));
        return LUISA_ERR_CHUNK;
      }
    }
  }
  return LUISA_OK;
}

/* Value of the element at global linear index g at a step: exact sums. */
static double value(int64_t g, int64_t step) { return (double)(g + 1000 * step); }

static void fill(const decl *a, const box *b, void *buf, int64_t step)
{
  int64_t n = volume(a->ndim, b->shp), p[LUISA_MAX_DIMS];
  for (int64_t e = 0; e < n; e++) {
    int64_t rest = e, g = 0;
    for (int d = a->ndim - 1; d >= 0; d--) {
      p[d] = rest % b->shp[d];
      rest /= b->shp[d];
    }
    for (int d = 0; d < a->ndim; d++)
      g = g * a->shape[d] + b->off[d] + p[d];
    if (a->dtype == LUISA_F32)
      ((float *)buf)[e] = (float)value(g, step);
    else
      ((double *)buf)[e] = value(g, step);
  }
}

static int all_true(int mine)
{
  int all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all;
}

/* Rank 0's verdict, told to every rank so all count the same ok lines. */
static int from_root(int v)
{
  MPI_Bcast(&v, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return v;
}

enum { STEPS = 3 };

static void run(const scenario *s, const char *script, const char *result)
{
  char what[256];
  snprintf(what, sizeof what, "%d ranks, %s", size, s->what);
  luisa_options opts = luisa_options_default();
  opts.script = script;
  char dir[300];
  snprintf(dir, sizeof dir, "%s", script);
  *strrchr(dir, '/') = '\0';
  opts.output_dir = dir;   /* the sandboxed script writes its results there */
  luisa *lz = NULL;
  int st = luisa_init(MPI_COMM_WORLD, &opts, &lz), setup = st == LUISA_OK;

  /* This rank's declarations, chunks and buffers. */
  int n;
  const decl *ds = decls_of(s, rank, &n);
  void *bufs[MAXDECL][MAXBOX] = { { 0 } };
  for (int i = 0; i < n && lz; i++) {
    setup &= luisa_array(lz, ds[i].name, ds[i].dtype, ds[i].ndim, ds[i].shape) == LUISA_OK;
    for (int k = 0; k < ds[i].nbox; k++)
      if (resolve(ds[i].box[k].owner) == rank) {
        setup &= luisa_chunk(lz, ds[i].name, ds[i].box[k].off, ds[i].box[k].shp, NULL) == LUISA_OK;
        bufs[i][k] = malloc((size_t)volume(ds[i].ndim, ds[i].box[k].shp) * sizeof(double));
      }
  }
  if (!all_true(setup))
    tap_print("# %s: setup failed on some rank (init status %d)\n", what, st);

  /* Steps 1 to STEPS, publishing every local chunk before each. */
  int status[STEPS], published = 1;
  for (int step = 1; step <= STEPS; step++) {
    for (int i = 0; i < n && lz; i++)
      for (int k = 0, c = 0; k < ds[i].nbox; k++)
        if (bufs[i][k]) {
          fill(&ds[i], &ds[i].box[k], bufs[i][k], step);
          published &= luisa_publish(lz, ds[i].name, c++, bufs[i][k]) == LUISA_OK;
        }
    status[step - 1] = luisa_step(lz, step);
  }

  /* 1: the first step's status, the same on every rank. */
  int *statuses = rank == 0 ? malloc((size_t)size * sizeof *statuses) : NULL;
  MPI_Gather(&status[0], 1, MPI_INT, statuses, 1, MPI_INT, 0, MPI_COMM_WORLD);
  int good = 1;
  for (int r = 0; rank == 0 && r < size; r++)
    if (statuses[r] != s->want) {
      tap_print("#   rank %d: luisa_step(1) returned %d, expected %d\n", r, statuses[r], s->want);
      good = 0;
    }
  ok(from_root(good), "%s: luisa_step(1) returns %s on every rank", what, status_name(s->want));

  /* 2: every rank's sentence names what the oracle found ("" if valid). */
  enum { LEN = 4096 };
  char mine[LEN], *all = rank == 0 ? malloc((size_t)size * LEN) : NULL;
  snprintf(mine, sizeof mine, "%s", luisa_error(lz));
  MPI_Gather(mine, LEN, MPI_CHAR, all, LEN, MPI_CHAR, 0, MPI_COMM_WORLD);
  good = 1;
  if (rank == 0) {
    char frags[MAXFRAG][FRAG];
    const char *list[MAXFRAG + 1];
    int nf, verdict = oracle(s, frags, &nf);
    if (verdict != s->want) {
      tap_print("#   fixture: the brute-force verdict is %d, the table expects %d\n", verdict, s->want);
      good = 0;
    }
    for (int k = 0; k < nf; k++)
      list[k] = frags[k];
    list[nf] = NULL;
    for (int r = 0; r < size; r++) {
      const char *text = all + (size_t)r * LEN;
      int fine = s->want == LUISA_OK ? *text == '\0' : tap_mentions(text, list);
      if (!fine)   /* tap_mentions showed the sentence, not whose it is */
        tap_print(s->want == LUISA_OK ? "#   rank %d says \"%s\"\n" : "#   (on rank %d)\n", r, text);
      good &= fine;
    }
  }
  ok(from_root(good), "%s: luisa_error on every rank %s", what,
     s->want == LUISA_OK ? "is \"\"" : s->want == LUISA_ERR_NAME ? "names the ranks and arrays that differ"
     : "names the array and the chunks and ranks, or the element, involved");

  /* 3: the simulation goes on. */
  good = published;
  for (int k = 1; k < STEPS; k++)
    good &= status[k] == LUISA_OK;
  if (!good)
    printf("# rank %d: %s: publish %s, steps 2-%d returned %d %d\n", rank, what, published ? "ok" : "refused",
           STEPS, status[1], status[2]);
  ok(all_true(good), "%s: later luisa_publish and luisa_step(2..%d) return LUISA_OK on every rank", what, STEPS);

  /* 4: after finalize, the script's output: nothing when the check failed,
   * the exact sum of Temp at every step when it passed. */
  luisa_finalize(lz);
  good = 1;
  if (rank == 0) {
    FILE *f = fopen(result, "r");
    long long got_step;
    double got;
    int lines = 0, want_lines = s->want == LUISA_OK ? STEPS : 0;
    int64_t vol = volume(s->decl[0].ndim, s->decl[0].shape);
    while (f && fscanf(f, "%lld %lf", &got_step, &got) == 2) {
      lines++;
      double sum = 0;
      for (int64_t g = 0; g < vol; g++)
        sum += value(g, lines);
      if (lines > want_lines || got_step != lines || got != sum) {
        if (lines > want_lines)
          tap_print("#   script line %d: step %lld sum %.17g; expected no line\n", lines, got_step, got);
        else
          tap_print("#   script line %d: step %lld sum %.17g; expected step %d sum %.17g\n", lines, got_step,
                    got, lines, sum);
        good = 0;
      }
    }
    if (f)
      fclose(f);
    if (lines != want_lines) {
      tap_print("#   the script wrote %d lines, expected %d\n", lines, want_lines);
      good = 0;
    }
    remove(result);
  }
  ok(from_root(good), "%s: after luisa_finalize, %s", what,
     s->want == LUISA_OK ? "the script reported the exact sums of every step" : "analytics stayed off");

  for (int i = 0; i < MAXDECL; i++)
    for (int k = 0; k < MAXBOX; k++)
      free(bufs[i][k]);
  free(statuses);
  free(all);
}

/* usage: decomp FIRST. Numbers its ok lines from FIRST and prints no plan,
 * so that t/011-decomp.t joins its runs into one TAP stream; every scenario
 * prints exactly 4 lines, whatever fails (t/011-decomp.t counts on it). */
int main(int argc, char **argv)
{
  tap_mpi_init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  tap_rank = rank;
  tap_count = argc > 1 ? atoi(argv[1]) - 1 : 0;

  /* Rank 0 writes the script; all ranks run on this machine and read it. */
  char dir[256] = "", script[300], result[300];
  if (rank == 0) {
    char tmpl[] = "/tmp/luisa-decomp-XXXXXX";
    if (mkdtemp(tmpl))
      snprintf(dir, sizeof dir, "%s", tmpl);
    snprintf(script, sizeof script, "%s/sum.lua", dir);
    FILE *f = *dir ? fopen(script, "w") : NULL;
    if (f) {
      fprintf(f, "-- written by t/decomp.c: the sum of Temp at every step, from the root\n"
                 "local luisa = require \"luisa\"\n"
                 "local T = luisa.array \"Temp\"\n"
                 "local out = luisa.rank == 0 and assert(io.open([[%s/sum.out]], \"w\"))\n"
                 "luisa.every(1, { sum = T:sum() }, function(step, r)\n"
                 "  out:write(string.format(\"%%d %%.17g\\n\", step, r.sum))\n"
                 "  out:flush()\n"
                 "end)\n", dir);
      fclose(f);
    }
  }
  MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
  snprintf(script, sizeof script, "%s/sum.lua", dir);
  snprintf(result, sizeof result, "%s/sum.out", dir);

  for (int k = 0; k < NSCEN; k++)
    run(&scenarios[k], script, result);

  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    remove(script);
    rmdir(dir);
  }
  MPI_Finalize();
  return tap_failed ? 1 : 0;
}
