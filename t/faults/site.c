/* site.c: names the engine call stack of an allocation (addr2line over the
 * library's debug info), and matches failures with t/faults/known. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "site.h"

/* "f (file:line) < g (file:line) < ..." for the engine frames, innermost
 * first, the wrappers' own frames left out; "" when nothing resolves. The
 * innermost engine function alone goes to fn. */
void site_describe(void *const *frames, int n, char *out, size_t cap, char *fn, size_t fcap)
{
  char cmd[8192] = "", lib[1024] = "";
  size_t len = 0;
  out[0] = fn[0] = '\0';
  for (int i = 0; i < n; i++) {
    Dl_info info;
    if (!dladdr(frames[i], &info) || !info.dli_fname || !strstr(info.dli_fname, "libluisa"))
      continue;
    if (!lib[0]) {
      snprintf(lib, sizeof lib, "%s", info.dli_fname);
      len = (size_t)snprintf(cmd, sizeof cmd, "addr2line -f -i -p -e '%s'", lib);
    }
    /* a return address: the call is the byte before it */
    unsigned long off = (unsigned long)((char *)frames[i] - (char *)info.dli_fbase) - 1;
    if (len + 24 < sizeof cmd)
      len += (size_t)snprintf(cmd + len, sizeof cmd - len, " %#lx", off);
  }
  if (!lib[0])
    return;
  FILE *p = popen(cmd, "r");
  if (!p)
    return;
  char line[1024];
  size_t used = 0;
  int shown = 0;
  while (fgets(line, sizeof line, p)) {
    line[strcspn(line, "\n")] = '\0';
    char *at = strstr(line, " at "), *name = line;
    if (!strncmp(name, " (inlined by) ", 14))
      name += 14;
    if (!at || strstr(at, "/faults/fault.c") || shown >= 6)
      continue;
    *at = '\0';
    const char *file = strrchr(at + 4, '/') ? strrchr(at + 4, '/') + 1 : at + 4;
    char *disc = strstr(at + 4, " (discriminator");
    if (disc)
      *disc = '\0';
    if (!fn[0])
      snprintf(fn, fcap, "%s", name);
    if (used < cap)
      used += (size_t)snprintf(out + used, cap - used, "%s%s (%s)", shown ? " < " : "", name, file);
    shown++;
  }
  pclose(p);
}

/* t/faults/known: "function symptom  reason" per line, # comments. */
int site_known(const char *path, const char *fn, const char *symptom, char *why, size_t cap)
{
  FILE *f = fopen(path, "r");
  char line[1024];
  int found = 0;
  why[0] = '\0';
  while (f && !found && fgets(line, sizeof line, f)) {
    char kfn[256], ksym[64];
    int used = 0;
    if (line[0] == '#' || sscanf(line, "%255s %63s %n", kfn, ksym, &used) < 2)
      continue;
    if (!strcmp(kfn, fn) && !strcmp(ksym, symptom)) {
      found = 1;
      line[strcspn(line, "\n")] = '\0';
      snprintf(why, cap, "%s", line + used);
    }
  }
  if (f)
    fclose(f);
  return found;
}
