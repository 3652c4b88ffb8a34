/* script.c: libFuzzer target for the script loader: the input is written as
 * the analysis script, luisa_init loads it (MPI_COMM_SELF), three steps run
 * over six tiny arrays, then finalize. The invariant: no crash and no
 * sanitizer report, whatever the script says. A first line, prepended,
 * takes away what could harm the machine or end the process (os.exit,
 * files, processes) and bounds the script's time and memory, so that a
 * timeout or an exit is a finding, not the fuzzer's own doing; files
 * opened for writing are /dev/null. */
#include "fuzz.h"

static char path[256];
static const char prologue[] =
  "do local function no() error('not in the fuzzer', 2) end "
  "os.exit, os.execute, os.remove, os.rename, os.tmpname = no, no, no, no, no "
  "local open = io.open "
  "io.open = function(_, m) return open('/dev/null', type(m) == 'string' and m:find('[wa+]') and 'w' or 'r') end "
  "io.popen, io.lines, io.output, io.input = no, no, no, no "
  "package.loadlib, package.cpath = no, '' "
  "jit.off() local n = 0 "
  "debug.sethook(function() n = n + 1 "
  "if n > 2000 or collectgarbage('count') > 262144 then error('budget', 2) end end, '', 10000) end ";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fz_start(argc, argv);
  snprintf(path, sizeof path, "%s/script.lua", fz_dir());
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static char text[sizeof prologue + 65536];
  if (size > 65536)
    return 0;
  memcpy(text, prologue, sizeof prologue - 1);
  memcpy(text + sizeof prologue - 1, data, size);
  fz_write(path, text, sizeof prologue - 1 + size);

  luisa_options o = luisa_options_default();
  o.script = path;
  o.log_level = LUISA_LOG_ERROR;
  o.reload_signal = 0;
  luisa *lz = NULL;
  fz_documented(luisa_init(MPI_COMM_SELF, &o, &lz));
  if (!lz)
    abort();
  /* the arrays and parameters the seed scripts (t/data, examples) name */
  static const char *const names[] = { "A", "C", "T", "U", "V" };
  static double grids[5][30], B[5];
  int64_t small[2] = { 4, 3 }, big[2] = { 6, 5 }, off[2] = { 0, 0 }, vshape[1] = { 5 }, voff[1] = { 0 };
  for (int a = 0; a < 5; a++) {
    luisa_array(lz, names[a], LUISA_F64, 2, a < 2 ? small : big);
    luisa_chunk(lz, names[a], off, a < 2 ? small : big, NULL);
  }
  luisa_array(lz, "B", LUISA_F64, 1, vshape);
  luisa_chunk(lz, "B", voff, vshape, NULL);
  double dt = 1e-3;
  int64_t n = 5;
  int flag = 0;
  char mode[16] = "fast";
  static const char *const modes[] = { "fast", "slow", "off", NULL };
  luisa_param_f64(lz, "dt", &dt, 1e-6, 1e-2, "time step");
  luisa_param_i64(lz, "n", &n, 1, 100, NULL);
  luisa_param_bool(lz, "flag", &flag, NULL);
  luisa_param_string(lz, "mode", mode, sizeof mode, modes, NULL);
  for (int64_t step = 1; step <= 3; step++) {
    for (int a = 0; a < 5; a++) {
      for (int i = 0; i < 30; i++)
        grids[a][i] = (double)((i * (a + 1) * step) % 7) - 2.5;
      luisa_publish(lz, names[a], 0, grids[a]);
    }
    for (int i = 0; i < 5; i++)
      B[i] = (double)i / (double)step;
    luisa_publish(lz, "B", 0, B);
    int s = luisa_step(lz, step);
    fz_documented(s);
    if (s == LUISA_STOP)
      break;
  }
  luisa_finalize(lz);
  return 0;
}
