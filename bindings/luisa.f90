! luisa.f90: the Fortran 2008 binding of luisa (Lua In Situ Analytics): module
! luisa, over ISO_C_BINDING and the C shim luisa_fortran.c (libluisa_fortran.a).
!
! Build:  mpif90 -I$PREFIX/include sim.f90 -L$PREFIX/lib -lluisa_fortran -lluisa
! The installed luisa.mod fits the gfortran that built it; for another
! compiler, compile this file (installed beside it) with that compiler:
! libluisa_fortran.a still provides the C shim.
! luisa.h says what each call does and when it is MPI collective; this file
! says how the Fortran calls map onto it.
!
!   use mpi_f08
!   use luisa
!   type(luisa_t) :: lz
!   real(8), allocatable, target :: u(:, :)     ! TARGET: the engine reads it in place
!   allocate(u(0:nx+1, 0:ny+1))                 ! nx x ny cells plus one ghost layer
!   call luisa_init(MPI_COMM_WORLD, 'stats.lua', lz, st)
!   call luisa_array(lz, 'U', LUISA_F64, [gnx, gny], st)
!   call luisa_chunk(lz, 'U', [x0, y0], [nx, ny], st, alloc_shape=shape(u), start=[2, 2])
!   do step = 1, nsteps
!     call compute(u)
!     call luisa_publish(lz, 'U', 1, u)         ! u must not change until luisa_step returns
!     st = luisa_step(lz, step)
!     if (st >= LUISA_ERR_FIRST) exit           ! LUISA_WARN_SCRIPT: the analysis failed, go on
!   end do
!   call luisa_finalize(lz)
!
! Conventions
! - Axes: dimension d of a Fortran array is axis d-1 of the engine and of the
!   Lua script. Shapes are given in Fortran order ([nx, ny] for u(nx, ny)) and
!   buffers are read in Fortran order (first index fastest): no transposition.
! - Positions are 1-based: a chunk's global offset (global index of its first
!   element, [1, 1] for the corner), its start in the buffer, chunk numbers.
!   Extents (shape, alloc_shape) are counts.
! - Index arguments of one call are all integer(int32) (default integer) or
!   all integer(int64); steps may be either.
! - status: optional on every subroutine. LUISA_OK and LUISA_WARN_SCRIPT
!   (below LUISA_ERR_FIRST) mean the call did its job; from LUISA_ERR_FIRST
!   on, the call was refused and changed nothing. With status absent, a
!   refusal is written to error_unit and the run goes on.
! - luisa_error(lz) explains the last failure. The binding's own refusals
!   speak Fortran; the engine's sentences speak C: 0-based offsets, starts and
!   chunk numbers, and "axis 0" for dimension 1.
! - Names: 1 to 63 characters [A-Za-z0-9_]; trailing blanks are ignored.
! - type(luisa_t) is a handle: one variable per context, never copied;
!   luisa_finalize it (collectively) before MPI_Finalize.
module luisa
  use, intrinsic :: iso_c_binding
  use, intrinsic :: iso_fortran_env, only: int32, int64, error_unit
  use mpi_f08, only: MPI_Comm
  implicit none
  private

  character(len=*), parameter, public :: LUISA_VERSION = '0.1.0'

  ! Status codes (luisa.h; luisa_fortran.c checks the numbers at build time).
  integer, parameter, public :: LUISA_OK = 0, LUISA_WARN_SCRIPT = 1, LUISA_SERVED = 3, &
    LUISA_ERR_FIRST = 16, LUISA_ERR_ARG = 16, LUISA_ERR_NOMEM = 17, LUISA_ERR_MPI = 18, &
    LUISA_ERR_ORDER = 19, LUISA_ERR_NAME = 20, LUISA_ERR_CHUNK = 21, LUISA_ERR_STEP = 22, &
    LUISA_ERR_LUA = 23, LUISA_ERR_TIMEOUT = 24, &
    LUISA_ERR_MODE = 25, LUISA_ERR_DATA = 26
  ! Element types: real(8), real(4), integer(8), integer(4).
  integer, parameter, public :: LUISA_F64 = 1, LUISA_F32 = 2, LUISA_I64 = 3, LUISA_I32 = 4
  ! Buffer orders: LUISA_ORDER_F (the default here) or a buffer filled by C code.
  integer, parameter, public :: LUISA_ORDER_C = 0, LUISA_ORDER_F = 1
  integer, parameter, public :: LUISA_LOG_ERROR = 0, LUISA_LOG_WARN = 1, &
    LUISA_LOG_INFO = 2, LUISA_LOG_DEBUG = 3

  ! What the binding remembers of an accepted declaration, to refuse in
  ! Fortran terms what the C API cannot see: a buffer of the wrong type or
  ! too small, a non-contiguous section, offsets of the wrong length.
  type :: array_info
    character(len=63) :: name = ''
    integer :: dtype = 0, ndim = 0, nchunks = 0
    integer(int64), allocatable :: need(:)   ! per chunk: elements its buffer spans
  end type

  ! A luisa context. Components are private: use the calls below.
  type, public :: luisa_t
    private
    type(c_ptr) :: ptr = c_null_ptr
    type(array_info), allocatable :: arrays(:)
    character(len=:), allocatable :: err       ! the binding's refusal, newer than the engine's
  end type

  ! struct luisa_layout.
  type, bind(C) :: layout_c
    integer(c_int) :: order
    integer(c_int64_t) :: alloc_shape(4), start(4)
  end type

  public :: luisa_init, luisa_finalize, luisa_array, luisa_chunk, luisa_publish, &
    luisa_step, luisa_reload, luisa_error, luisa_status_string, luisa_get_progress

  ! How far the analytics are (luisa_get_progress): luisa_step calls so far,
  ! those analysed, the calls that waited for the analytics, the time they
  ! waited. In thread mode (LUISA_MODE=thread; start MPI with
  ! MPI_Init_thread(MPI_THREAD_MULTIPLE, provided)) analysed may lag behind.
  type, bind(C), public :: luisa_progress_t
    integer(c_int64_t) :: steps, analysed, waits
    real(c_double) :: waited_s
  end type

  ! call luisa_init(comm, script, lz, status [, log_level])
  !   Create a context on comm (type(MPI_Comm), or the integer handle of
  !   `use mpi`). MPI collective; MPI must be initialised; comm is duplicated.
  !   script: path of the analysis script ('' for none): rank 0 reads it and
  !   sends it to every rank; it is reloaded when it changes (see luisa.h).
  !   log_level: LUISA_LOG_ERROR .. LUISA_LOG_DEBUG (default LUISA_LOG_WARN).
  !   status: LUISA_OK; LUISA_WARN_SCRIPT when the script did not load (lz
  !   works, analytics are off, luisa_error says file:line and why); an error
  !   when no context could be made (the reason is printed on stderr, lz stays
  !   empty and every call on it is refused). LUISA_ERR_ARG if lz already
  !   holds a context.
  interface luisa_init
    module procedure init_f08, init_int
  end interface

  ! call luisa_array(lz, name, dtype, shape, status)
  !   Declare a distributed array of global extents shape (Fortran order, 1
  !   to 4 dimensions). dtype: LUISA_F64, LUISA_F32, LUISA_I64, LUISA_I32.
  !   Local; every rank declares the same arrays in the same order, before
  !   the first luisa_step. status: LUISA_OK, LUISA_ERR_ARG, LUISA_ERR_NAME
  !   (already declared), LUISA_ERR_ORDER (after the first step).
  interface luisa_array
    module procedure array_i32, array_i64
  end interface

  ! call luisa_chunk(lz, name, offset, shape, status [, alloc_shape, start, order, chunk])
  !   Declare a block of `name` owned by this rank: global 1-based offset of
  !   its first element and its extents. Call once per block; the blocks of
  !   all ranks must tile the array (checked at the first luisa_step).
  !   The block may be the interior of a larger buffer:
  !     alloc_shape: the buffer's extents (default: the block's shape);
  !     start:       1-based position in the buffer of the block's first
  !                  element (default 1; ghost width + 1 along each axis);
  !     order:       LUISA_ORDER_F (default) or LUISA_ORDER_C. alloc_shape and
  !                  start stay in the array's dimension order either way.
  !   Example: a block of nx x ny cells at global (x0, y0) held in
  !   u(0:nx+1, 0:ny+1): offset=[x0, y0], shape=[nx, ny],
  !   alloc_shape=shape(u) (= [nx+2, ny+2]), start=[2, 2].
  !   chunk: receives the block's number for luisa_publish (1, 2, ... in the
  !   order of the calls for this name on this rank).
  !   status: LUISA_OK, LUISA_ERR_NAME, LUISA_ERR_ARG (outside the array,
  !   empty, a layout that cannot hold it, argument lengths that differ from
  !   the array's rank), LUISA_ERR_ORDER.
  interface luisa_chunk
    module procedure chunk_i32, chunk_i64
  end interface

  ! call luisa_publish(lz, name, chunk, data [, status])
  !   Hand this step's data of local chunk number `chunk` (1-based) to the
  !   engine. Zero copy: data is read in place during the next luisa_step, so
  !   it must be the whole buffer the chunk's layout describes (contiguous:
  !   not a section), have the TARGET attribute (or be a pointer), and stay
  !   unchanged until luisa_step returns. data: real(8), real(4), integer(4)
  !   or integer(8) of any rank, matching the array's dtype.
  !   status: LUISA_OK, LUISA_ERR_NAME, LUISA_ERR_ARG (no such chunk, wrong
  !   type, not contiguous, smaller than the layout).
  interface luisa_publish
    module procedure publish_f64, publish_f32, publish_i32, publish_i64
  end interface

  ! status = luisa_step(lz, step)
  !   Iteration boundary, MPI collective: runs the analytics due at `step`
  !   (greater than the previous call's). Returns LUISA_OK; LUISA_WARN_SCRIPT
  !   if the analysis failed at this step (logged; the run goes on);
  !   LUISA_ERR_STEP, LUISA_ERR_CHUNK, LUISA_ERR_NAME, LUISA_ERR_MPI: the
  !   same on every rank. Published data is forgotten when it returns.
  interface luisa_step
    module procedure step_i32, step_i64
  end interface

  ! status = luisa_reload(lz)
  !   Ask every rank to reload the script (local: one rank is enough); it is
  !   carried out at the end of the next luisa_step. LUISA_ERR_ORDER when
  !   luisa_init had no script.

  interface
    function c_init(comm, script, has_level, level, out) bind(C, name='luisa_fortran_init') result(st)
      import :: c_int, c_char, c_ptr
      integer(c_int), value :: comm, has_level, level
      character(kind=c_char), intent(in) :: script(*)
      type(c_ptr), intent(out) :: out
      integer(c_int) :: st
    end function
    subroutine c_finalize(lz) bind(C, name='luisa_finalize')
      import :: c_ptr
      type(c_ptr), value :: lz
    end subroutine
    function c_array(lz, name, dtype, ndim, shape) bind(C, name='luisa_array') result(st)
      import :: c_ptr, c_char, c_int, c_int64_t
      type(c_ptr), value :: lz
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int), value :: dtype, ndim
      integer(c_int64_t), intent(in) :: shape(*)
      integer(c_int) :: st
    end function
    function c_chunk(lz, name, offset, shape, layout) bind(C, name='luisa_chunk') result(st)
      import :: c_ptr, c_char, c_int, c_int64_t, layout_c
      type(c_ptr), value :: lz
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int64_t), intent(in) :: offset(*), shape(*)
      type(layout_c), intent(in) :: layout
      integer(c_int) :: st
    end function
    function c_publish(lz, name, chunk, data) bind(C, name='luisa_publish') result(st)
      import :: c_ptr, c_char, c_int
      type(c_ptr), value :: lz, data
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int), value :: chunk
      integer(c_int) :: st
    end function
    function c_reload(lz) bind(C, name='luisa_reload') result(st)
      import :: c_ptr, c_int
      type(c_ptr), value :: lz
      integer(c_int) :: st
    end function
    function c_progress(lz, out) bind(C, name='luisa_get_progress') result(st)
      import :: c_ptr, c_int, luisa_progress_t
      type(c_ptr), value :: lz
      type(luisa_progress_t), intent(out) :: out
      integer(c_int) :: st
    end function
    function c_step(lz, step) bind(C, name='luisa_step') result(st)
      import :: c_ptr, c_int, c_int64_t
      type(c_ptr), value :: lz
      integer(c_int64_t), value :: step
      integer(c_int) :: st
    end function
    ! Declared pure (they are) so that luisa_error can be.
    pure function c_error(lz) bind(C, name='luisa_error') result(msg)
      import :: c_ptr
      type(c_ptr), value :: lz
      type(c_ptr) :: msg
    end function
    pure function c_status_string(status) bind(C, name='luisa_status_string') result(msg)
      import :: c_ptr, c_int
      integer(c_int), value :: status
      type(c_ptr) :: msg
    end function
    pure function c_strlen(s) bind(C, name='strlen') result(n)
      import :: c_ptr, c_size_t
      type(c_ptr), value :: s
      integer(c_size_t) :: n
    end function
    ! memcpy, its result ignored: c_f_pointer would make from_c impure.
    pure subroutine c_memcpy(dst, src, n) bind(C, name='memcpy')
      import :: c_ptr, c_char, c_size_t
      character(kind=c_char), intent(out) :: dst(*)
      type(c_ptr), value :: src
      integer(c_size_t), value :: n
    end subroutine
  end interface

contains

  subroutine init_f08(comm, script, lz, status, log_level)
    type(MPI_Comm), intent(in) :: comm
    character(len=*), intent(in) :: script
    type(luisa_t), intent(inout) :: lz
    integer, intent(out), optional :: status
    integer, intent(in), optional :: log_level
    call init_fint(comm%MPI_VAL, script, lz, status, log_level)
  end subroutine

  subroutine init_int(comm, script, lz, status, log_level)
    integer, intent(in) :: comm
    character(len=*), intent(in) :: script
    type(luisa_t), intent(inout) :: lz
    integer, intent(out), optional :: status
    integer, intent(in), optional :: log_level
    call init_fint(comm, script, lz, status, log_level)
  end subroutine

  subroutine init_fint(comm, script, lz, status, log_level)
    integer, intent(in) :: comm
    character(len=*), intent(in) :: script
    type(luisa_t), intent(inout) :: lz
    integer, intent(out), optional :: status
    integer, intent(in), optional :: log_level
    integer(c_int) :: st, has_level, level
    if (c_associated(lz%ptr)) then   ! overwriting it would lose a live context
      call refuse(lz, LUISA_ERR_ARG, 'luisa_init: lz already holds a context: ' // &
                  'call luisa_finalize on it first', status)
      return
    end if
    lz = luisa_t()
    has_level = 0
    level = 0
    if (present(log_level)) then
      has_level = 1
      level = int(log_level, c_int)
    end if
    st = c_init(int(comm, c_int), trim(script) // c_null_char, has_level, level, lz%ptr)
    if (st >= LUISA_ERR_FIRST) lz%err = 'luisa_init: ' // luisa_status_string(int(st)) // &
                                        ': no context was made (the reason is on stderr)'
    call done(lz, int(st), status)
  end subroutine

  ! call luisa_finalize(lz)
  !   Free the context (MPI collective) and empty lz. An empty lz is a no-op.
  subroutine luisa_finalize(lz)
    type(luisa_t), intent(inout) :: lz
    call c_finalize(lz%ptr)
    lz = luisa_t()
  end subroutine

  subroutine array_i32(lz, name, dtype, shape, status)
    type(luisa_t), intent(inout) :: lz
    character(len=*), intent(in) :: name
    integer, intent(in) :: dtype
    integer(int32), intent(in) :: shape(:)
    integer, intent(out), optional :: status
    call array_i64(lz, name, dtype, int(shape, int64), status)
  end subroutine

  subroutine array_i64(lz, name, dtype, shape, status)
    type(luisa_t), intent(inout) :: lz
    character(len=*), intent(in) :: name
    integer, intent(in) :: dtype
    integer(int64), intent(in) :: shape(:)
    integer, intent(out), optional :: status
    type(array_info) :: info
    integer :: st
    st = c_array(lz%ptr, trim(name) // c_null_char, int(dtype, c_int), int(size(shape), c_int), shape)
    call engine_said(lz, st)
    if (st == LUISA_OK) then
      info%name = name
      info%dtype = dtype
      info%ndim = size(shape)
      allocate(info%need(0))
      if (.not. allocated(lz%arrays)) allocate(lz%arrays(0))
      lz%arrays = [lz%arrays, info]
    end if
    call done(lz, st, status)
  end subroutine

  subroutine chunk_i32(lz, name, offset, shape, status, alloc_shape, start, order, chunk)
    type(luisa_t), intent(inout) :: lz
    character(len=*), intent(in) :: name
    integer(int32), intent(in) :: offset(:), shape(:)
    integer, intent(out), optional :: status
    integer(int32), intent(in), optional :: alloc_shape(:), start(:)
    integer, intent(in), optional :: order
    integer, intent(out), optional :: chunk
    integer(int64), allocatable :: alloc8(:), start8(:)   ! unallocated = absent
    if (present(alloc_shape)) alloc8 = int(alloc_shape, int64)
    if (present(start)) start8 = int(start, int64)
    call chunk_i64(lz, name, int(offset, int64), int(shape, int64), status, alloc8, start8, order, chunk)
  end subroutine

  subroutine chunk_i64(lz, name, offset, shape, status, alloc_shape, start, order, chunk)
    type(luisa_t), intent(inout) :: lz
    character(len=*), intent(in) :: name
    integer(int64), intent(in) :: offset(:), shape(:)
    integer, intent(out), optional :: status
    integer(int64), intent(in), optional :: alloc_shape(:), start(:)
    integer, intent(in), optional :: order
    integer, intent(out), optional :: chunk
    character(len=*), parameter :: what = 'luisa_chunk("'
    type(layout_c) :: layout
    integer(int64) :: off(4), ext(4)
    integer :: k, nd, d, st
    if (present(chunk)) chunk = 0
    k = find(lz, name)
    nd = 0
    if (k > 0) then   ! unknown names go to the engine, which says so
      nd = lz%arrays(k)%ndim
      if (size(offset) /= nd .or. size(shape) /= nd) then
        call refuse(lz, LUISA_ERR_ARG, what // trim(name) // '"): offset and shape have ' // &
                    str(size(offset)) // ' and ' // str(size(shape)) // ' values, expected ' // &
                    str(nd) // ' (the rank of "' // trim(name) // '")', status)
        return
      end if
      if (present(alloc_shape)) then
        if (size(alloc_shape) /= nd) then
          call refuse(lz, LUISA_ERR_ARG, what // trim(name) // '"): alloc_shape has ' // &
                      str(size(alloc_shape)) // ' values, expected ' // str(nd), status)
          return
        end if
      end if
      if (present(start)) then
        if (size(start) /= nd) then
          call refuse(lz, LUISA_ERR_ARG, what // trim(name) // '"): start has ' // &
                      str(size(start)) // ' values, expected ' // str(nd), status)
          return
        end if
      end if
      ! 0-based habits are the likeliest mistake: say it in Fortran terms.
      do d = 1, nd
        if (offset(d) < 1) then
          call refuse(lz, LUISA_ERR_ARG, what // trim(name) // '"): offset(' // str(d) // &
                      ') is ' // str(offset(d)) // ', expected >= 1: global offsets are 1-based', status)
          return
        end if
        if (present(start)) then
          if (start(d) < 1) then
            call refuse(lz, LUISA_ERR_ARG, what // trim(name) // '"): start(' // str(d) // &
                        ') is ' // str(start(d)) // ', expected >= 1: the 1-based position ' // &
                        'in the buffer of the first element', status)
            return
          end if
        end if
      end do
    end if

    off = 0
    ext = 0
    off(1:nd) = offset(1:nd) - 1
    ext(1:nd) = shape(1:nd)
    layout%order = LUISA_ORDER_F
    if (present(order)) layout%order = int(order, c_int)
    layout%alloc_shape = 0
    layout%start = 0
    if (present(alloc_shape)) layout%alloc_shape(1:nd) = alloc_shape(1:nd)
    if (present(start)) layout%start(1:nd) = start(1:nd) - 1
    st = c_chunk(lz%ptr, trim(name) // c_null_char, off, ext, layout)
    call engine_said(lz, st)
    if (st == LUISA_OK .and. k > 0) then
      associate (a => lz%arrays(k))
        a%nchunks = a%nchunks + 1
        a%need = [a%need, product(merge(layout%alloc_shape(1:nd), ext(1:nd), &
                                        layout%alloc_shape(1:nd) /= 0))]
        if (present(chunk)) chunk = a%nchunks
      end associate
    end if
    call done(lz, st, status)
  end subroutine

  ! The four element types share publish_any; the generic picks by type, so
  ! the dtype check below cannot be fooled.
  subroutine publish_f64(lz, name, chunk, data, status)
    type(luisa_t), intent(inout) :: lz
    character(len=*), intent(in) :: name
    integer, intent(in) :: chunk
    real(c_double), intent(in), target :: data(..)
    integer, intent(out), optional :: status
    type(c_ptr) :: p
    p = c_null_ptr
    if (is_contiguous(data) .and. size(data) > 0) p = c_loc(data)
    call publish_any(lz, name, chunk, LUISA_F64, p, is_contiguous(data), size(data, kind=int64), status)
  end subroutine

  subroutine publish_f32(lz, name, chunk, data, status)
    type(luisa_t), intent(inout) :: lz
    character(len=*), intent(in) :: name
    integer, intent(in) :: chunk
    real(c_float), intent(in), target :: data(..)
    integer, intent(out), optional :: status
    type(c_ptr) :: p
    p = c_null_ptr
    if (is_contiguous(data) .and. size(data) > 0) p = c_loc(data)
    call publish_any(lz, name, chunk, LUISA_F32, p, is_contiguous(data), size(data, kind=int64), status)
  end subroutine

  subroutine publish_i32(lz, name, chunk, data, status)
    type(luisa_t), intent(inout) :: lz
    character(len=*), intent(in) :: name
    integer, intent(in) :: chunk
    integer(c_int32_t), intent(in), target :: data(..)
    integer, intent(out), optional :: status
    type(c_ptr) :: p
    p = c_null_ptr
    if (is_contiguous(data) .and. size(data) > 0) p = c_loc(data)
    call publish_any(lz, name, chunk, LUISA_I32, p, is_contiguous(data), size(data, kind=int64), status)
  end subroutine

  subroutine publish_i64(lz, name, chunk, data, status)
    type(luisa_t), intent(inout) :: lz
    character(len=*), intent(in) :: name
    integer, intent(in) :: chunk
    integer(c_int64_t), intent(in), target :: data(..)
    integer, intent(out), optional :: status
    type(c_ptr) :: p
    p = c_null_ptr
    if (is_contiguous(data) .and. size(data) > 0) p = c_loc(data)
    call publish_any(lz, name, chunk, LUISA_I64, p, is_contiguous(data), size(data, kind=int64), status)
  end subroutine

  subroutine publish_any(lz, name, chunk, dtype, p, contiguous, n, status)
    type(luisa_t), intent(inout) :: lz
    character(len=*), intent(in) :: name
    integer, intent(in) :: chunk, dtype
    type(c_ptr), intent(in) :: p
    logical, intent(in) :: contiguous
    integer(int64), intent(in) :: n
    integer, intent(out), optional :: status
    character(len=:), allocatable :: why
    integer :: k, st
    k = find(lz, name)
    if (k > 0) then   ! unknown names go to the engine, which says so
      associate (a => lz%arrays(k))
        if (a%nchunks == 0) then
          why = 'this rank declared no chunk of "' // trim(name) // '"'
        else if (chunk < 1 .or. chunk > a%nchunks) then
          why = 'no such chunk on this rank: expected 1 to ' // str(a%nchunks)
        else if (dtype /= a%dtype) then
          why = 'data is ' // type_name(dtype) // ' but "' // trim(name) // '" was declared ' // &
                type_name(a%dtype)
        else if (.not. contiguous) then
          why = 'data is not contiguous: the engine reads it in place, pass the whole ' // &
                'buffer the chunk''s layout describes, not a section'
        else if (n < a%need(chunk)) then
          why = 'data has ' // str(n) // ' elements, the chunk''s layout spans ' // str(a%need(chunk))
        end if
      end associate
      if (allocated(why)) then
        call refuse(lz, LUISA_ERR_ARG, 'luisa_publish("' // trim(name) // '", chunk ' // &
                    str(chunk) // '): ' // why, status)
        return
      end if
    end if
    st = c_publish(lz%ptr, trim(name) // c_null_char, int(chunk - 1, c_int), p)
    call engine_said(lz, st)
    call done(lz, st, status)
  end subroutine

  function step_i32(lz, step) result(status)
    type(luisa_t), intent(inout) :: lz
    integer(int32), intent(in) :: step
    integer :: status
    status = step_i64(lz, int(step, int64))
  end function

  function step_i64(lz, step) result(status)
    type(luisa_t), intent(inout) :: lz
    integer(int64), intent(in) :: step
    integer :: status
    status = c_step(lz%ptr, step)
    call engine_said(lz, status)
  end function

  function luisa_reload(lz) result(status)
    type(luisa_t), intent(inout) :: lz
    integer :: status
    status = c_reload(lz%ptr)
    call engine_said(lz, status)
  end function

  ! status = luisa_get_progress(lz, progress)
  function luisa_get_progress(lz, progress) result(status)
    type(luisa_t), intent(inout) :: lz
    type(luisa_progress_t), intent(out) :: progress
    integer :: status
    status = c_progress(lz%ptr, progress)
    call engine_said(lz, status)
  end function

  ! msg = luisa_error(lz)
  !   The last failure on lz in one sentence naming the argument and what was
  !   expected; '' if none. Engine sentences use C conventions (see the top).
  pure function luisa_error(lz) result(msg)
    type(luisa_t), intent(in) :: lz
    character(len=:), allocatable :: msg
    if (allocated(lz%err)) then
      msg = lz%err
    else
      msg = from_c(c_error(lz%ptr))
    end if
  end function

  ! msg = luisa_status_string(status)
  !   The fixed text of a status code.
  pure function luisa_status_string(status) result(msg)
    integer, intent(in) :: status
    character(len=:), allocatable :: msg
    msg = from_c(c_status_string(int(status, c_int)))
  end function

  ! --- internals ---

  ! After an engine call: a failure there is now the latest one.
  subroutine engine_said(lz, st)
    type(luisa_t), intent(inout) :: lz
    integer, intent(in) :: st
    if (st /= LUISA_OK .and. allocated(lz%err)) deallocate(lz%err)
  end subroutine

  subroutine refuse(lz, st, msg, status)
    type(luisa_t), intent(inout) :: lz
    integer, intent(in) :: st
    character(len=*), intent(in) :: msg
    integer, intent(out), optional :: status
    lz%err = msg
    call done(lz, st, status)
  end subroutine

  ! The status to the caller, or a refusal to stderr when no one asked for it.
  subroutine done(lz, st, status)
    type(luisa_t), intent(in) :: lz
    integer, intent(in) :: st
    integer, intent(out), optional :: status
    if (present(status)) then
      status = st
    else if (st >= LUISA_ERR_FIRST) then
      write (error_unit, '(a)') 'luisa: ' // luisa_error(lz)
    end if
  end subroutine

  integer function find(lz, name)
    type(luisa_t), intent(in) :: lz
    character(len=*), intent(in) :: name
    if (allocated(lz%arrays)) then
      do find = 1, size(lz%arrays)
        if (lz%arrays(find)%name == name) return   ! == ignores trailing blanks
      end do
    end if
    find = 0
  end function

  pure function from_c(p) result(s)
    type(c_ptr), intent(in) :: p
    character(len=:), allocatable :: s
    integer(c_size_t) :: n
    n = 0
    if (c_associated(p)) n = c_strlen(p)
    allocate (character(len=n) :: s)
    if (n > 0) call c_memcpy(s, p, n)
  end function

  function type_name(dtype) result(s)
    integer, intent(in) :: dtype
    character(len=:), allocatable :: s
    select case (dtype)
    case (LUISA_F64); s = 'real(8) (LUISA_F64)'
    case (LUISA_F32); s = 'real(4) (LUISA_F32)'
    case (LUISA_I64); s = 'integer(8) (LUISA_I64)'
    case (LUISA_I32); s = 'integer(4) (LUISA_I32)'
    case default; s = 'dtype ' // str(dtype)
    end select
  end function

  function str(i) result(s)
    class(*), intent(in) :: i
    character(len=:), allocatable :: s
    character(len=24) :: buf
    select type (i)
    type is (integer(int32)); write (buf, '(i0)') i
    type is (integer(int64)); write (buf, '(i0)') i
    class default; buf = '?'
    end select
    s = trim(buf)
  end function
end module luisa
