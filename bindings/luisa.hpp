// luisa.hpp: header-only C++17 binding of luisa (Lua In Situ Analytics): an
// RAII context, refusals thrown as luisa::error, dtypes from element types.
//
// Build:  mpicxx -std=c++17 sim.cpp $(pkg-config --cflags --libs luisa)
// (add -DOMPI_SKIP_MPICXX to keep Open MPI's deprecated C++ API, which is
// not warning-free, out of -Wextra -Werror builds)
// luisa.h says what each call does and when it is MPI collective; this file
// says how the C++ calls map onto it.
//
//   luisa::context lz(MPI_COMM_WORLD, "stats.lua");          // collective
//   lz.array<double>("U", {NY, NX});
//   // ny x nx cells at (y0, x0) inside a buffer with one ghost layer:
//   int c = lz.chunk("U", {y0, x0}, {ny, nx}, {LUISA_ORDER_C, {ny + 2, nx + 2}, {1, 1}});
//   for (int64_t step = 0; step < nsteps; step++) {
//     compute(u);
//     lz.publish("U", c, u.data());        // zero copy: u must not change until step() returns
//     if (lz.step(step) == LUISA_WARN_SCRIPT) { /* the analysis failed (logged): go on */ }
//   }
//   // ~context(): luisa_finalize, collective
//
// Conventions: exactly those of luisa.h: offsets, starts and chunk numbers
// are 0-based, shapes are in the array's axis order. A refused call (status
// >= LUISA_ERR_FIRST) throws luisa::error: what() is luisa_error()'s sentence,
// status() the code; the call changed nothing and the simulation may catch it
// and go on. Statuses below LUISA_ERR_FIRST (LUISA_OK, LUISA_WARN_SCRIPT) are
// returned, never thrown. Collective calls (constructor, step, destructor,
// finalize) must be made on every rank: do not let an exception thrown on one
// rank only destroy a context there while the others go on.
#ifndef LUISA_HPP
#define LUISA_HPP

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>
#include <mpi.h>
#include <stdint.h>

// luisa.h names its opaque handle `luisa`, which is also the name of this
// namespace, and C++ refuses both at global scope. Seen from C++ the handle
// is therefore called luisa_handle: the same C type, the same ABI.
#ifdef LUISA_H
#error "luisa.hpp must be included before luisa.h (or instead of it): luisa.h's type `luisa` takes the name of namespace luisa"
#endif
#define luisa luisa_handle
#include "luisa.h"
#undef luisa

namespace luisa {

// A refused call: status() >= LUISA_ERR_FIRST, what() the sentence.
class error : public std::runtime_error {
public:
  error(int status, const std::string &what) : std::runtime_error(what), status_(status) {}
  int status() const noexcept { return status_; }

private:
  int status_;
};

// Where a chunk's elements sit in memory: struct luisa_layout, see luisa.h.
// The default {} is a contiguous C-order buffer of exactly the chunk's shape.
using layout = luisa_layout;

// Global extents, offsets: one value per axis, axis 0 first.
using dims = std::vector<int64_t>;

namespace detail {
template <class T, std::size_t N>
inline constexpr bool is_int = std::is_integral_v<T> && std::is_signed_v<T> &&
                               sizeof(T) == N && !std::is_same_v<T, wchar_t>;
template <class>
inline constexpr bool unsupported = false;

inline const char *dtype_name(luisa_dtype d)
{
  switch (d) {
  case LUISA_F64: return "double (LUISA_F64)";
  case LUISA_F32: return "float (LUISA_F32)";
  case LUISA_I64: return "int64_t (LUISA_I64)";
  case LUISA_I32: return "int32_t (LUISA_I32)";
  }
  return "an unknown dtype";
}

// The 4 first values of v (the C API reads ndim <= 4 of them), zero-padded.
struct axes {
  int64_t v[LUISA_MAX_DIMS] = {};
  explicit axes(const dims &d)
  {
    for (std::size_t i = 0; i < d.size() && i < LUISA_MAX_DIMS; i++)
      v[i] = d[i];
  }
};
} // namespace detail

// dtype_of<T>(): the luisa_dtype of elements of type T: double, float, and
// the 32- and 64-bit signed integers (int32_t, int64_t, long long...).
template <class T>
constexpr luisa_dtype dtype_of()
{
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, double>)
    return LUISA_F64;
  else if constexpr (std::is_same_v<U, float>)
    return LUISA_F32;
  else if constexpr (detail::is_int<U, 8>)
    return LUISA_I64;
  else if constexpr (detail::is_int<U, 4>)
    return LUISA_I32;
  else
    static_assert(detail::unsupported<U>, "luisa: element type must be double, float, int32_t or int64_t");
}

// status_string(status): the fixed text of a status code.
inline std::string status_string(int status) { return luisa_status_string(status); }

class context {
public:
  // Create a context on comm: luisa_init, MPI collective; comm is duplicated.
  // script: the analysis script, "" for none: rank 0 reads it and sends it to
  // every rank; it is reloaded when it changes (see luisa.h).
  // Throws luisa::error when no context could be made (the engine printed
  // why on stderr). A script that did not load does not throw: the context
  // works without analytics, init_status() is LUISA_WARN_SCRIPT and
  // last_error() says file:line and why.
  explicit context(MPI_Comm comm, const std::string &script = "",
                   luisa_log_level log_level = LUISA_LOG_WARN)
  {
    luisa_options opts = luisa_options_default();
    opts.script = script.empty() ? nullptr : script.c_str();
    opts.log_level = log_level;
    init(comm, opts);
  }
  // The same from full options (start from luisa_options_default()).
  context(MPI_Comm comm, const luisa_options &opts) { init(comm, opts); }

  // luisa_finalize: MPI collective. A moved-from context does nothing.
  ~context() { luisa_finalize(lz_); }

  context(const context &) = delete;
  context &operator=(const context &) = delete;
  context(context &&other) noexcept
    : lz_(std::exchange(other.lz_, nullptr)), init_status_(other.init_status_),
      arrays_(std::move(other.arrays_)) {}
  // Finalizes the context held here first (collective), then takes other's.
  context &operator=(context &&other) noexcept
  {
    if (this != &other) {
      luisa_finalize(lz_);
      lz_ = std::exchange(other.lz_, nullptr);
      init_status_ = other.init_status_;
      arrays_ = std::move(other.arrays_);
    }
    return *this;
  }

  // luisa_finalize now rather than at destruction (before MPI_Finalize, say).
  // Collective; afterwards every call throws LUISA_ERR_ARG.
  void finalize() noexcept
  {
    luisa_finalize(lz_);
    lz_ = nullptr;
    arrays_.clear();
  }

  // LUISA_OK, or LUISA_WARN_SCRIPT if the script did not load.
  int init_status() const noexcept { return init_status_; }

  // array<T>(name, shape): declare a distributed array of elements T
  // (double, float, int32_t, int64_t) and global extents shape (1 to 4
  // axes). Local; every rank declares the same arrays in the same order,
  // before the first step(). Throws LUISA_ERR_ARG, LUISA_ERR_NAME (already
  // declared), LUISA_ERR_ORDER (after the first step).
  template <class T>
  void array(const std::string &name, const dims &shape)
  {
    constexpr luisa_dtype dtype = dtype_of<T>();
    check(luisa_array(lz_, name.c_str(), dtype, static_cast<int>(shape.size()), shape.data()));
    arrays_[name] = { dtype, static_cast<int>(shape.size()), 0 };
  }

  // chunk(name, offset, shape, layout): declare a block of `name` owned by
  // this rank, at global offset with extents shape; layout places it in its
  // buffer (ghost cells, Fortran order; see luisa_layout in luisa.h).
  // Returns the chunk's local number for publish(): 0, 1, ... in the order of
  // the calls for this name. Together the chunks of all ranks must tile the
  // array (checked at the first step). Throws LUISA_ERR_NAME, LUISA_ERR_ARG
  // (outside the array, empty, a layout that cannot hold it, offset or shape
  // lengths other than the array's ndim), LUISA_ERR_ORDER.
  int chunk(const std::string &name, const dims &offset, const dims &shape, const layout &where = {})
  {
    auto a = arrays_.find(name);
    if (a != arrays_.end() && (offset.size() != std::size_t(a->second.ndim) ||
                               shape.size() != std::size_t(a->second.ndim)))
      throw error(LUISA_ERR_ARG, "luisa_chunk(\"" + name + "\"): offset and shape have " +
                  std::to_string(offset.size()) + " and " + std::to_string(shape.size()) +
                  " values, expected " + std::to_string(a->second.ndim) + " (the array's ndim)");
    check(luisa_chunk(lz_, name.c_str(), detail::axes(offset).v, detail::axes(shape).v, &where));
    return a == arrays_.end() ? 0 : a->second.nchunks++;
  }

  // publish(name, chunk, data): hand this step's data of local chunk number
  // `chunk` to the engine. Zero copy: data (the buffer the chunk's layout
  // describes) is read in place during the next step(), so it must stay
  // valid and unchanged until step() returns. T must be the array's element
  // type. Throws LUISA_ERR_NAME, LUISA_ERR_ARG (no such chunk, wrong type,
  // null data).
  template <class T>
  void publish(const std::string &name, int chunk, const T *data)
  {
    same_type<T>("luisa_publish", name, chunk);
    check(luisa_publish(lz_, name.c_str(), chunk, data));
  }

  // publish_handover(name, chunk, data, release, user): hand the buffer
  // itself over instead (thread mode: no copy); release(data, user) gives it
  // back exactly once, from inside the step() that reports this step (see
  // luisa_publish_handover). Throws as publish().
  template <class T>
  void publish_handover(const std::string &name, int chunk, T *data, luisa_release_fn *release, void *user)
  {
    same_type<T>("luisa_publish_handover", name, chunk);
    check(luisa_publish_handover(lz_, name.c_str(), chunk, data, release, user));
  }

  // progress(): how far the analytics are (luisa_get_progress).
  luisa_progress progress()
  {
    luisa_progress p;
    check(luisa_get_progress(lz_, &p));
    return p;
  }

  // step(step): iteration boundary, MPI collective: runs the analytics due
  // at `step` (greater than the previous call's). Returns LUISA_OK, or
  // LUISA_WARN_SCRIPT if the analysis failed at this step (logged, explained
  // by last_error(); the run goes on). Throws LUISA_ERR_STEP, LUISA_ERR_CHUNK,
  // LUISA_ERR_NAME, LUISA_ERR_MPI, the same on every rank. Published data is
  // forgotten when it returns.
  int step(int64_t step) { return check(luisa_step(lz_, step)); }

  // reload(): ask every rank to reload the script (luisa_reload: local,
  // carried out at the end of the next step). Throws LUISA_ERR_ORDER when
  // the context has no script.
  void reload() { check(luisa_reload(lz_)); }

  // luisa_error(): the engine's last failure on this context ("" if none),
  // for the sentence behind LUISA_WARN_SCRIPT.
  std::string last_error() const { return luisa_error(lz_); }

  // The C handle (luisa_handle is luisa.h's `luisa`), for calls this wrapper
  // does not cover; still owned here.
  luisa_handle *native() const noexcept { return lz_; }

private:
  struct array_info {
    luisa_dtype dtype;
    int ndim;
    int nchunks;
  };

  void init(MPI_Comm comm, const luisa_options &opts)
  {
    int st = luisa_init(comm, &opts, &lz_);
    if (st >= LUISA_ERR_FIRST)
      throw error(st, "luisa_init: " + status_string(st) + ": no context was made (the reason is on stderr)");
    init_status_ = st;
  }

  int check(int st) const
  {
    if (st >= LUISA_ERR_FIRST)
      throw error(st, luisa_error(lz_));
    return st;
  }

  luisa_handle *lz_ = nullptr;
  int init_status_ = LUISA_OK;
  std::map<std::string, array_info> arrays_;   // to refuse a publish of the wrong type

  template <class T>
  void same_type(const char *fn, const std::string &name, int chunk) const
  {
    constexpr luisa_dtype dtype = dtype_of<T>();
    auto a = arrays_.find(name);
    if (a != arrays_.end() && a->second.dtype != dtype)
      throw error(LUISA_ERR_ARG, std::string(fn) + "(\"" + name + "\", chunk " + std::to_string(chunk) +
                  "): data is " + detail::dtype_name(dtype) + " but \"" + name + "\" was declared " +
                  detail::dtype_name(a->second.dtype));
  }
};

} // namespace luisa
#endif
