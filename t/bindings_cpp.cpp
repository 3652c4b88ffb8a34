// bindings_cpp.cpp: the C++ binding on a 2D decomposition with ghost cells
// (statistics against a plain loop) and its refusals, thrown as luisa::error.
// usage: bindings_cpp SCRIPT   (t/bindings_stats.lua; results via $LUISA_TEST_OUT)
// Every check is agreed across ranks; rank 0 prints unnumbered TAP lines.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>
#include "luisa.hpp"

// dtypes follow element types, whatever the spelling of the integer type.
static_assert(luisa::dtype_of<double>() == LUISA_F64 && luisa::dtype_of<const float>() == LUISA_F32);
static_assert(luisa::dtype_of<int32_t>() == LUISA_I32 && luisa::dtype_of<int64_t>() == LUISA_I64);
static_assert(luisa::dtype_of<long long>() == LUISA_I64);
static_assert(std::is_base_of_v<std::runtime_error, luisa::error>);
static_assert(!std::is_copy_constructible_v<luisa::context> && std::is_nothrow_move_constructible_v<luisa::context>);

namespace {

// A 13 x 11 grid (C order: shape {NY, NX}) cut into 3 x 2 uneven blocks,
// block k owned by rank k % size: several chunks per rank. At step SKIP the
// last rank does not publish U.
const int NX = 13, NY = 11, BX = 3, BY = 2, NSTEPS = 5, SKIP = 4;
const double POISON = 1e30;   // in the ghosts: reading one spoils every statistic
const char NAMES[] = "UVIL";
const char *const STATS[4] = { "sum", "min", "max", "mean" };

int rank, nranks, failures;
std::string tag;

// One TAP line for a check agreed by every rank; the ranks where it failed say why.
void check(bool cond, const std::string &what, const std::string &why = "")
{
  int mine = cond, all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!cond && !why.empty())
    std::printf("# rank %d: %s\n", rank, why.c_str());
  failures += !all;
  if (rank == 0)
    std::printf("%sok - %s: %s\n", all ? "" : "not ", tag.c_str(), what.c_str());
  std::fflush(stdout);
}

bool has(const std::string &text, const char *frag) { return text.find(frag) != std::string::npos; }

// The refusal `call` must throw: its status and what() go to *status, *msg.
bool throws(const std::function<void()> &call, int *status, std::string *msg)
{
  try {
    call();
  } catch (const luisa::error &e) {
    *status = e.status();
    *msg = e.what();
    return true;
  }
  *status = LUISA_OK;
  *msg = "(nothing was thrown)";
  return false;
}

// The field, from global 0-based indices: what the engine must see.
double fu(int y, int x, int s) { return std::sin(0.3 * x + 0.1 * s) * (y + 1) - 0.5 * x; }
float fv(int y, int x, int s) { return static_cast<float>(std::cos(0.2 * x * y) + s); }
int32_t fi(int y, int x, int s) { return (7 * x + 3 * y + s) % 23 - 11; }
int64_t fl(int y, int x, int k, int s) { return int64_t(x) * 3000000007LL - (y * k * 17 + s); }

int split(int n, int parts, int p) { return p * n / parts; }   // first index of part p

struct block {
  int x0, y0, nx, ny;              // global position, extents
  int chunk[4];                    // its chunk numbers in U, V, I, L
  std::vector<double> u;           // (ny + 2) x (nx + 2), C order: one ghost layer
  std::vector<float> v;            // ny x nx, Fortran order: the first axis (y) fastest
  std::vector<int32_t> iv;         // ny x nx
  std::vector<int64_t> lv;         // ny x nx x 2: L is 3D
};

std::vector<block> make_blocks()
{
  std::vector<block> mine;
  for (int k = 0; k < BX * BY; k++) {
    if (k % nranks != rank)
      continue;
    block b{};
    int bi = k % BX, bj = k / BX;
    b.x0 = split(NX, BX, bi), b.nx = split(NX, BX, bi + 1) - b.x0;
    b.y0 = split(NY, BY, bj), b.ny = split(NY, BY, bj + 1) - b.y0;
    b.u.resize(size_t((b.ny + 2) * (b.nx + 2)));
    b.v.resize(size_t(b.ny * b.nx));
    b.iv.resize(size_t(b.ny * b.nx));
    b.lv.resize(size_t(b.ny * b.nx * 2));
    mine.push_back(std::move(b));
  }
  return mine;
}

void fill(block &b, int s)
{
  std::fill(b.u.begin(), b.u.end(), POISON);
  for (int j = 0; j < b.ny; j++)
    for (int i = 0; i < b.nx; i++) {
      int y = b.y0 + j, x = b.x0 + i;
      b.u[size_t((j + 1) * (b.nx + 2) + i + 1)] = fu(y, x, s);
      b.v[size_t(i * b.ny + j)] = fv(y, x, s);      // Fortran order: the first axis (y) fastest
      b.iv[size_t(j * b.nx + i)] = fi(y, x, s);
      for (int k = 0; k < 2; k++)
        b.lv[size_t((j * b.nx + i) * 2 + k)] = fl(y, x, k, s);
    }
}

// Rank 0 reads what the script wrote and compares with a plain loop over the
// global formula; the step that failed must have written nothing.
void compare_results()
{
  bool good[4] = { true, true, true, true }, quiet = true;
  if (rank == 0) {
    double got[4][4][NSTEPS + 1];
    bool seen[4][4][NSTEPS + 1] = {};
    const char *path = std::getenv("LUISA_TEST_OUT");
    std::FILE *f = path ? std::fopen(path, "r") : nullptr;
    if (!f) {
      std::printf("# cannot open %s\n", path ? path : "$LUISA_TEST_OUT");
      std::fill(good, good + 4, false);
    }
    int step;
    char key[32];
    double x;
    while (f && std::fscanf(f, "%d %31s %lf", &step, key, &x) == 3) {
      const char *a = std::strchr(NAMES, key[0]);
      int t = 0;
      while (t < 4 && std::strcmp(key + 2, STATS[t]))
        t++;
      if (step < 1 || step > NSTEPS || !a || !key[0] || key[1] != '_' || t == 4) {
        std::printf("# unexpected line for %s\n", key);
        std::fill(good, good + 4, false);
        continue;
      }
      got[a - NAMES][t][step] = x;
      seen[a - NAMES][t][step] = true;
    }
    if (f)
      std::fclose(f);
    for (int a = 0; a < 4; a++)
      for (int t = 0; t < 4; t++)
        quiet = quiet && !seen[a][t][SKIP];
    for (step = 1; step <= NSTEPS; step++) {
      if (step == SKIP)
        continue;
      double want[4][4];
      for (int a = 0; a < 4; a++)
        want[a][0] = 0, want[a][1] = HUGE_VAL, want[a][2] = -HUGE_VAL;
      auto add = [&](int a, double v) {
        want[a][0] += v;
        want[a][1] = std::min(want[a][1], v);
        want[a][2] = std::max(want[a][2], v);
      };
      for (int y = 0; y < NY; y++)
        for (int x = 0; x < NX; x++) {
          add(0, fu(y, x, step));
          add(1, double(fv(y, x, step)));
          add(2, double(fi(y, x, step)));
          for (int k = 0; k < 2; k++)
            add(3, double(fl(y, x, k, step)));
        }
      for (int a = 0; a < 4; a++)
        want[a][3] = want[a][0] / (NX * NY * (a == 3 ? 2 : 1));
      // Relative tolerance: the sum's order differs, but integer sums, minima
      // and maxima are exact in double precision (all below 2^53).
      auto tol = [](int a, int t) { return a >= 2 && t < 3 ? 0.0 : 1e-12; };
      for (int a = 0; a < 4; a++)
        for (int t = 0; t < 4; t++)
          if (!seen[a][t][step]) {
            std::printf("# step %d: %c_%s not reported\n", step, NAMES[a], STATS[t]);
            good[a] = false;
          } else if (!(std::fabs(got[a][t][step] - want[a][t]) <= tol(a, t) * std::max(1.0, std::fabs(want[a][t])))) {
            std::printf("# step %d: %c_%s = %.17g, expected %.17g\n", step, NAMES[a], STATS[t],
                        got[a][t][step], want[a][t]);
            good[a] = false;
          }
    }
  }
  check(good[0], "U (double, ghost cells): sum, min, max, mean match the plain loop");
  check(good[1], "V (float, Fortran-order buffer): sum, min, max, mean match the plain loop");
  check(good[2], "I (int32_t): sum, min, max, mean match the plain loop");
  check(good[3], "L (int64_t, 3D): sum, min, max, mean match the plain loop");
  check(quiet, "nothing was reported for the failed step");
}

} // namespace

int main(int argc, char **argv)
{
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  tag = "c++, np " + std::to_string(nranks);
  const std::string script = argc > 1 ? argv[1] : "t/bindings_stats.lua";
  int st;
  std::string msg;

  {
    luisa::context lz(MPI_COMM_WORLD, script);
    check(lz.init_status() == LUISA_OK, "context(comm, script): init_status() is LUISA_OK", lz.last_error());

    bool declared = !throws([&] {
      lz.array<double>("U", { NY, NX });
      lz.array<float>("V", { NY, NX });
      lz.array<int32_t>("I", { NY, NX });
      lz.array<int64_t>("L", { NY, NX, 2 });
    }, &st, &msg);
    check(declared, "array<T>: four arrays of four types declared", msg);

    std::vector<block> blocks = make_blocks();
    bool numbered = !throws([&] {
      for (size_t m = 0; m < blocks.size(); m++) {
        block &b = blocks[m];
        b.chunk[0] = lz.chunk("U", { b.y0, b.x0 }, { b.ny, b.nx }, { LUISA_ORDER_C, { b.ny + 2, b.nx + 2 }, { 1, 1 } });
        b.chunk[1] = lz.chunk("V", { b.y0, b.x0 }, { b.ny, b.nx }, { LUISA_ORDER_F, {}, {} });
        b.chunk[2] = lz.chunk("I", { b.y0, b.x0 }, { b.ny, b.nx });
        b.chunk[3] = lz.chunk("L", { b.y0, b.x0, 0 }, { b.ny, b.nx, 2 });
        for (int c : b.chunk)
          if (c != int(m))
            throw luisa::error(-1, "chunk number " + std::to_string(c) + ", expected " + std::to_string(m));
      }
    }, &st, &msg);
    check(numbered, "chunk(): every block declared, numbered 0, 1, ... per rank", msg);

    // Refusals before the first step: each throws and changes nothing.
    throws([&] { lz.array<double>("U", { NY, NX }); }, &st, &msg);
    check(st == LUISA_ERR_NAME && has(msg, "\"U\"") && has(msg, "already declared"),
          "array<T>: a duplicate name throws LUISA_ERR_NAME", msg);
    throws([&] { lz.chunk("U", { 0, NX - 1 }, { NY, 2 }); }, &st, &msg);
    check(st == LUISA_ERR_ARG, "chunk(): a block outside the array throws LUISA_ERR_ARG", msg);
    check(st == LUISA_ERR_ARG && msg == lz.last_error() && msg.rfind("luisa_chunk(\"U\")", 0) == 0 &&
          has(msg, "outside the array"),
          "chunk(): what() is the engine's sentence, whole, naming the array", msg);
    throws([&] { lz.chunk("U", { 0, 0, 0 }, { 1, 1, 1 }); }, &st, &msg);
    check(st == LUISA_ERR_ARG && has(msg, "expected 2"),
          "chunk(): offsets of the wrong length are refused by the binding", msg);
    throws([&] { lz.publish("U", 0, blocks[0].v.data()); }, &st, &msg);
    check(st == LUISA_ERR_ARG && has(msg, "data is float") && has(msg, "\"U\" was declared double"),
          "publish(): data of the wrong type throws LUISA_ERR_ARG", msg);
    throws([&] { lz.publish("U", 0, static_cast<const double *>(nullptr)); }, &st, &msg);
    check(st == LUISA_ERR_ARG && has(msg, "data is NULL"), "publish(): null data throws LUISA_ERR_ARG", msg);
    throws([&] { lz.publish("U", 99, blocks[0].u.data()); }, &st, &msg);
    check(st == LUISA_ERR_ARG && has(msg, "chunk 99 does not exist"),
          "publish(): a chunk that does not exist throws LUISA_ERR_ARG", msg);

    // The run, on a moved-to context.
    luisa::context run(std::move(lz));
    throws([&] { lz.step(1); }, &st, &msg);
    check(run.native() && !lz.native() && st == LUISA_ERR_ARG && has(msg, "no luisa context"),
          "a moved-from context holds nothing and refuses calls", msg);
    int steps[NSTEPS + 1];
    bool thrown = false;   // a status below LUISA_ERR_FIRST must be returned, not thrown
    for (int s = 1; s <= NSTEPS; s++) {
      for (block &b : blocks) {
        fill(b, s);
        if (s != SKIP || rank != nranks - 1)
          run.publish("U", b.chunk[0], b.u.data());
        run.publish("V", b.chunk[1], b.v.data());
        run.publish("I", b.chunk[2], b.iv.data());
        run.publish("L", b.chunk[3], b.lv.data());
      }
      if (throws([&] { steps[s] = run.step(s); }, &st, &msg)) {
        steps[s] = st;
        thrown = true;
      }
      if (s == SKIP)
        check(!thrown && steps[s] == LUISA_WARN_SCRIPT && has(run.last_error(), "of array \"U\""),
              "step(): an unpublished chunk returns LUISA_WARN_SCRIPT (not thrown), naming it", run.last_error());
    }
    check(!thrown && std::count(steps + 1, steps + NSTEPS + 1, int(LUISA_OK)) == NSTEPS - 1,
          "step(): the other steps return LUISA_OK", run.last_error());
    luisa_progress p = run.progress();
    const char *mode = std::getenv("LUISA_MODE");
    bool inline_mode = !mode || !*mode || !std::strcmp(mode, "inline");
    check(p.steps == NSTEPS && p.analysed == NSTEPS && (inline_mode ? p.waits == 0 : p.waits <= NSTEPS),
          "progress(): every step analysed, no wait inline", std::to_string(p.analysed));
    throws([&] { run.step(NSTEPS); }, &st, &msg);
    check(st == LUISA_ERR_STEP && has(msg, "step 5 does not follow step 5"),
          "step(): a repeated step throws LUISA_ERR_STEP", msg);
    run.finalize();
    throws([&] { run.step(99); }, &st, &msg);
    check(st == LUISA_ERR_ARG && has(msg, "no luisa context"), "finalize(): later calls throw", msg);
  }
  compare_results();

  // Other ways in.
  {
    luisa_options opts = luisa_options_default();
    luisa::context a(MPI_COMM_WORLD, opts), b(MPI_COMM_WORLD, "t/no_such_script.lua", LUISA_LOG_ERROR);
    luisa_handle *bh = b.native();
    check(b.init_status() == LUISA_WARN_SCRIPT && has(b.last_error(), "t/no_such_script.lua") &&
          b.step(1) == LUISA_OK,
          "context: a missing script gives init_status() LUISA_WARN_SCRIPT, the run goes on", b.last_error());
    bool b_reloads = true;
    try { b.reload(); } catch (const luisa::error &) { b_reloads = false; }
    throws([&] { a.reload(); }, &st, &msg);
    check(st == LUISA_ERR_ORDER && has(msg, "no script to reload") && b_reloads,
          "reload(): throws LUISA_ERR_ORDER without a script, works with one that did not load", msg);
    a = std::move(b);
    check(a.native() == bh && !b.native() && a.step(2) == LUISA_OK,
          "move assignment finalizes the old context and takes the other's");
  }
  throws([] { luisa::context bad(MPI_COMM_WORLD, "", luisa_log_level(9)); }, &st, &msg);
  check(st == LUISA_ERR_ARG && has(msg, "luisa_init: invalid argument"),
        "context: a bad log level throws LUISA_ERR_ARG", msg);
  check(luisa::status_string(LUISA_ERR_CHUNK) == "chunk declarations are inconsistent",
        "status_string() gives the engine's text");

  MPI_Finalize();
  return failures != 0;
}
