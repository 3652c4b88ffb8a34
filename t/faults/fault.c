/* fault.c: the __wrap_ allocators of the fault-injection build: they count
 * the engine's allocations, refuse the chosen one, and track live blocks. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <unwind.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fault.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_realloc(void *p, size_t n);

enum { STACK_MAX = 48 };

/* Thread mode allocates on the analytics thread too: one lock around
 * every wrapper, so the count and the table stay exact. Which thread gets
 * allocation N may differ from run to run there; each run still refuses
 * exactly one. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long fail_at = -1;               /* -1: LUISA_FAULT_AT not read yet */
static long trace_at;
static long count, live, foreign;
static size_t live_bytes;
static int injected, nframes;
static void *frames[STACK_MAX];

/* Live blocks: an open-addressing table of pointer -> size, kept beside
 * the blocks rather than in a header, so frees of pointers that libc made
 * (getline, realpath) pass through untouched. */
typedef struct slot {
  uintptr_t key;                       /* 0: empty */
  size_t size;
} slot;
static slot *table;
static size_t cap;                     /* a power of two, or 0 */

static size_t home(uintptr_t k)
{
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  return (size_t)k & (cap - 1);
}

static slot *find(uintptr_t k)
{
  if (!cap)
    return NULL;
  for (size_t i = home(k);; i = (i + 1) & (cap - 1)) {
    if (table[i].key == k)
      return &table[i];
    if (!table[i].key)
      return NULL;
  }
}

static void insert(uintptr_t k, size_t size);

static int grow(void)
{
  size_t old = cap, ncap = cap ? 2 * cap : 1024;
  slot *was = table, *t = __real_calloc(ncap, sizeof *t);
  if (!t)
    return 0;
  table = t;
  cap = ncap;
  for (size_t i = 0; i < old; i++)
    if (was[i].key)
      insert(was[i].key, was[i].size);
  __real_free(was);
  return 1;
}

static void insert(uintptr_t k, size_t size)
{
  for (size_t i = home(k);; i = (i + 1) & (cap - 1))
    if (!table[i].key) {
      table[i].key = k;
      table[i].size = size;
      return;
    }
}

/* Linear probing's deletion: shift later members of the run back. */
static void erase(slot *s)
{
  size_t i = (size_t)(s - table), j = i;
  table[i].key = 0;
  for (;;) {
    j = (j + 1) & (cap - 1);
    if (!table[j].key)
      return;
    size_t h = home(table[j].key);
    if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
      table[i] = table[j];
      table[j].key = 0;
      i = j;
    }
  }
}

static void track(void *p, size_t size)
{
  if ((size_t)(live + 1) * 2 > cap && !grow())
    abort();   /* the test's own bookkeeping cannot fail quietly */
  insert((uintptr_t)p, size);
  live++;
  live_bytes += size;
}

/* Forgets p; 0 if the wrappers never handed it out. */
static int untrack(void *p)
{
  slot *s = find((uintptr_t)p);
  if (!s)
    return 0;
  live--;
  live_bytes -= s->size;
  erase(s);
  return 1;
}

/* backtrace(3), but stopping at the first LuaJIT frame: the Lua heap's
 * allocations come from inside the VM, whose frames libgcc's unwinder may
 * abort on. What lies below them is the engine's host_run, named anyway. */
typedef struct walk {
  void **frames;
  int n, max;
} walk;

static _Unwind_Reason_Code step(struct _Unwind_Context *ctx, void *arg)
{
  walk *w = arg;
  void *ip = (void *)_Unwind_GetIP(ctx);
  Dl_info info;
  if (w->n >= w->max || (dladdr(ip, &info) && info.dli_fname && strstr(info.dli_fname, "luajit")))
    return _URC_END_OF_STACK;
  w->frames[w->n++] = ip;
  return _URC_NO_REASON;
}

static int safe_backtrace(void **frames, int max)
{
  walk w = { frames, 0, max };
  _Unwind_Backtrace(step, &w);
  return w.n;
}

/* Counts an allocation; 1 if it is the one to refuse. */
static int refuse(void)
{
  if (fail_at < 0) {
    const char *e = getenv("LUISA_FAULT_AT");
    fail_at = e ? atol(e) : 0;
  }
  if (++count == trace_at)
    nframes = safe_backtrace(frames, STACK_MAX);
  if (count != fail_at)
    return 0;
  injected = 1;
  nframes = safe_backtrace(frames, STACK_MAX);
  errno = ENOMEM;
  return 1;
}

static void *counted_malloc(size_t n)
{
  if (refuse())
    return NULL;
  void *p = __real_malloc(n);
  if (p)
    track(p, n);
  return p;
}

static void *counted_calloc(size_t k, size_t n)
{
  if (refuse())
    return NULL;
  void *p = __real_calloc(k, n);
  if (p)
    track(p, k * n);
  return p;
}

static void counted_free(void *p)
{
  if (p && !untrack(p))
    foreign++;
  __real_free(p);
}

/* realloc(NULL, n) allocates, realloc(p, 0) frees (as glibc does); a
 * shrink is never refused: allocators do not fail there, and Lua's
 * allocator contract says so. A refused realloc leaves p as it was. */
static void *counted_realloc(void *p, size_t n)
{
  if (!p)
    return counted_malloc(n);
  if (!n) {
    counted_free(p);
    return NULL;
  }
  slot *s = find((uintptr_t)p);
  if ((!s || n > s->size) && refuse())
    return NULL;
  void *q = __real_realloc(p, n);
  if (q) {
    if (!untrack(p))
      foreign++;
    track(q, n);
  }
  return q;
}

void *__wrap_reallocarray(void *p, size_t k, size_t n)
{
  if (n && k > SIZE_MAX / n) {
    errno = ENOMEM;
    return NULL;
  }
  return __wrap_realloc(p, k * n);
}

char *__wrap_strdup(const char *s)
{
  size_t n = strlen(s) + 1;
  char *d = __wrap_malloc(n);
  return d ? memcpy(d, s, n) : NULL;
}

char *__wrap_strndup(const char *s, size_t max)
{
  size_t n = strnlen(s, max);
  char *d = __wrap_malloc(n + 1);
  if (!d)
    return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

int __real_posix_memalign(void **out, size_t align, size_t n);
static int counted_posix_memalign(void **out, size_t align, size_t n)
{
  if (refuse())
    return ENOMEM;
  int rc = __real_posix_memalign(out, align, n);
  if (!rc)
    track(*out, n);
  return rc;
}

void *__real_aligned_alloc(size_t align, size_t n);
static void *counted_aligned_alloc(size_t align, size_t n)
{
  if (refuse())
    return NULL;
  void *p = __real_aligned_alloc(align, n);
  if (p)
    track(p, n);
  return p;
}

/* The wrappers proper: each takes the lock around its counted twin. */
void *__wrap_malloc(size_t n)
{
  pthread_mutex_lock(&lock);
  void *p = counted_malloc(n);
  pthread_mutex_unlock(&lock);
  return p;
}

void *__wrap_calloc(size_t k, size_t n)
{
  pthread_mutex_lock(&lock);
  void *p = counted_calloc(k, n);
  pthread_mutex_unlock(&lock);
  return p;
}

void __wrap_free(void *p)
{
  pthread_mutex_lock(&lock);
  counted_free(p);
  pthread_mutex_unlock(&lock);
}

void *__wrap_realloc(void *p, size_t n)
{
  pthread_mutex_lock(&lock);
  void *q = counted_realloc(p, n);
  pthread_mutex_unlock(&lock);
  return q;
}

int __wrap_posix_memalign(void **out, size_t align, size_t n)
{
  pthread_mutex_lock(&lock);
  int rc = counted_posix_memalign(out, align, n);
  pthread_mutex_unlock(&lock);
  return rc;
}

void *__wrap_aligned_alloc(size_t align, size_t n)
{
  pthread_mutex_lock(&lock);
  void *p = counted_aligned_alloc(align, n);
  pthread_mutex_unlock(&lock);
  return p;
}

void fault_fail_at(long n)
{
  fail_at = n;
  injected = 0;
  nframes = 0;
}

void fault_trace_at(long n)
{
  trace_at = n;
}

void fault_reset(void)
{
  count = 0;
  injected = 0;
  nframes = 0;
}

long fault_count(void) { return count; }
int fault_injected(void) { return injected; }
long fault_live(void) { return live; }
size_t fault_live_bytes(void) { return live_bytes; }
long fault_foreign_frees(void) { return foreign; }

int fault_stack(void **out, int n)
{
  int k = 0;
  for (int i = 0; i < nframes && k < n; i++)
    out[k++] = frames[i];
  return k;
}
