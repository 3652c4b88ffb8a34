! bindings_fortran.f90: the Fortran binding on a 2D decomposition with ghost
! cells (statistics against a plain loop) and its refusals, with their sentences.
! usage: bindings_fortran SCRIPT   (t/bindings_stats.lua; results via $LUISA_TEST_OUT)
! Every check is agreed across ranks; rank 0 prints unnumbered TAP lines.
program bindings_fortran
  use, intrinsic :: iso_fortran_env, only: int32, int64, real32, real64, output_unit
  use mpi_f08
  use luisa
  implicit none

  ! A 13 x 11 grid cut into 3 x 2 uneven blocks, block k owned by rank
  ! mod(k, size): several chunks per rank. At step SKIP the last rank does
  ! not publish U.
  integer, parameter :: NX = 13, NY = 11, BX = 3, BY = 2, NSTEPS = 5, SKIP = 4
  real(real64), parameter :: POISON = 1d30   ! in the ghosts: reading one spoils every statistic
  character(len=*), parameter :: NAMES = 'UVIL', STATS(4) = [character(len=4) :: 'sum', 'min', 'max', 'mean']

  type :: block_t
    integer :: x0, y0, nx, ny                   ! 1-based global position, extents
    integer :: chunk(4)                         ! its chunk numbers in U, V, I, L
    real(real64), allocatable :: u(:, :)        ! u(0:nx+1, 0:ny+1): one ghost layer
    real(real32), allocatable :: v(:, :)
    integer(int32), allocatable :: iv(:, :)
    integer(int64), allocatable :: lv(:, :, :)  ! L is 3D: [NX, NY, 2]
  end type

  type(block_t), allocatable, target :: blocks(:)
  real(real64), target :: small(4)
  type(luisa_t) :: lz, lz2
  character(len=256) :: script
  character(len=32) :: tag
  integer :: rank, nranks, nmine, st, st2, m, s, failures, steps(NSTEPS), provided
  logical :: good
  type(luisa_progress_t) :: progress
  character(len=16) :: mode
  integer(int64) :: max_waits

  call MPI_Init_thread(MPI_THREAD_MULTIPLE, provided)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank)
  call MPI_Comm_size(MPI_COMM_WORLD, nranks)
  call get_command_argument(1, script)
  write (tag, '(a,i0)') 'fortran, np ', nranks
  failures = 0

  call luisa_init(MPI_COMM_WORLD, trim(script), lz, st, log_level=LUISA_LOG_WARN)
  call check(st == LUISA_OK, 'luisa_init(type(MPI_Comm)) returns LUISA_OK', luisa_error(lz))

  ! Declarations, in both integer kinds.
  good = .true.
  call luisa_array(lz, 'U', LUISA_F64, [NX, NY], st)
  good = good .and. st == LUISA_OK
  call luisa_array(lz, 'V', LUISA_F32, [NX, NY], st)
  good = good .and. st == LUISA_OK
  call luisa_array(lz, 'I', LUISA_I32, [NX, NY], st)
  good = good .and. st == LUISA_OK
  call luisa_array(lz, 'L   ', LUISA_I64, [integer(int64) :: NX, NY, 2], st)   ! trailing blanks ignored
  good = good .and. st == LUISA_OK
  call check(good, 'luisa_array: four arrays of four types declared', luisa_error(lz))

  call make_blocks()
  good = .true.
  do m = 1, nmine
    associate (b => blocks(m))
      call luisa_chunk(lz, 'U', [b%x0, b%y0], [b%nx, b%ny], st, alloc_shape=shape(b%u), &
                       start=[2, 2], chunk=b%chunk(1))
      good = good .and. st == LUISA_OK
      call luisa_chunk(lz, 'V', [b%x0, b%y0], [b%nx, b%ny], st, chunk=b%chunk(2))
      good = good .and. st == LUISA_OK
      call luisa_chunk(lz, 'I', [b%x0, b%y0], [b%nx, b%ny], st, chunk=b%chunk(3))
      good = good .and. st == LUISA_OK
      call luisa_chunk(lz, 'L', int([b%x0, b%y0, 1], int64), int([b%nx, b%ny, 2], int64), st, &
                       chunk=b%chunk(4))
      good = good .and. st == LUISA_OK .and. all(b%chunk == m)
    end associate
  end do
  call check(good, 'luisa_chunk: every block declared, numbered 1, 2, ... per rank', luisa_error(lz))

  ! Refusals before the first step: each changes nothing.
  call luisa_array(lz, 'U', LUISA_F64, [NX, NY], st)
  call check(st == LUISA_ERR_NAME .and. says(lz, '"U"') .and. says(lz, 'already declared'), &
             'luisa_array: a duplicate name gives LUISA_ERR_NAME', luisa_error(lz))
  call luisa_chunk(lz, 'U', [NX, 1], [2, NY], st)
  call check(st == LUISA_ERR_ARG, 'luisa_chunk: a block outside the array gives LUISA_ERR_ARG', luisa_error(lz))
  call check(st == LUISA_ERR_ARG .and. index(luisa_error(lz), 'luisa_chunk("U")') == 1 .and. &
             says(lz, 'outside the array') .and. ends_with(luisa_error(lz), '(global shape [13, 11])'), &
             'luisa_chunk: the engine''s sentence arrives whole, naming the array', luisa_error(lz))
  call luisa_chunk(lz, 'U', [1, 1, 1], [1, 1, 1], st)
  call check(st == LUISA_ERR_ARG .and. says(lz, 'expected 2'), &
             'luisa_chunk: offsets of the wrong length are refused by the binding', luisa_error(lz))
  call luisa_chunk(lz, 'U', [0, 1], [1, 1], st)
  call check(st == LUISA_ERR_ARG .and. says(lz, 'offset(1) is 0') .and. says(lz, '1-based'), &
             'luisa_chunk: a 0-based offset is refused in Fortran terms', luisa_error(lz))
  call luisa_publish(lz, 'U', 1, blocks(1)%v, st)
  call check(st == LUISA_ERR_ARG .and. says(lz, 'real(4)') .and. says(lz, '"U" was declared real(8)'), &
             'luisa_publish: data of the wrong type is refused', luisa_error(lz))
  call luisa_publish(lz, 'U', 1, blocks(1)%u(1:blocks(1)%nx, 1:blocks(1)%ny), st)
  call check(st == LUISA_ERR_ARG .and. says(lz, 'not contiguous'), &
             'luisa_publish: a section (not contiguous) is refused', luisa_error(lz))
  call luisa_publish(lz, 'U', 1, small, st)
  call check(st == LUISA_ERR_ARG .and. says(lz, 'data has 4 elements'), &
             'luisa_publish: a buffer smaller than the layout is refused', luisa_error(lz))
  call luisa_publish(lz, 'U', 0, blocks(1)%u, st)
  call check(st == LUISA_ERR_ARG .and. says(lz, 'chunk 0') .and. says(lz, 'expected 1 to'), &
             'luisa_publish: chunk numbers are 1-based', luisa_error(lz))
  call luisa_publish(lz, 'W', 1, small, st)
  call check(st == LUISA_ERR_NAME .and. says(lz, '"W"'), &
             'luisa_publish: an unknown name gives the engine''s LUISA_ERR_NAME', luisa_error(lz))

  ! The run.
  do s = 1, NSTEPS
    do m = 1, nmine
      call fill(blocks(m), s)
      if (s /= SKIP .or. rank /= nranks - 1) call luisa_publish(lz, 'U', blocks(m)%chunk(1), blocks(m)%u)
      call luisa_publish(lz, 'V', blocks(m)%chunk(2), blocks(m)%v)
      call luisa_publish(lz, 'I', blocks(m)%chunk(3), blocks(m)%iv)
      call luisa_publish(lz, 'L', blocks(m)%chunk(4), blocks(m)%lv)
    end do
    steps(s) = luisa_step(lz, s)
    if (s == SKIP) call check(steps(s) == LUISA_WARN_SCRIPT .and. says(lz, 'of array "U"'), &
                              'luisa_step: an unpublished chunk gives LUISA_WARN_SCRIPT, naming it', luisa_error(lz))
  end do
  call check(all(steps(1:SKIP-1) == LUISA_OK) .and. all(steps(SKIP+1:) == LUISA_OK), &
             'luisa_step: the other steps return LUISA_OK', luisa_error(lz))
  st = luisa_get_progress(lz, progress)
  call get_environment_variable('LUISA_MODE', mode)
  if (mode == '' .or. mode == 'inline') then
    max_waits = 0
  else
    max_waits = NSTEPS
  end if
  call check(st == LUISA_OK .and. progress%steps == NSTEPS .and. progress%analysed == NSTEPS &
             .and. progress%waits <= max_waits, 'luisa_get_progress: every step analysed, no wait inline', &
             luisa_error(lz))
  st = luisa_step(lz, int(NSTEPS, int64))
  call check(st == LUISA_ERR_STEP .and. says(lz, 'step 5 does not follow step 5'), &
             'luisa_step: a repeated step gives LUISA_ERR_STEP', luisa_error(lz))
  call luisa_finalize(lz)
  st = luisa_step(lz, 99)
  call check(st == LUISA_ERR_ARG .and. says(lz, 'no luisa context'), &
             'luisa_finalize empties the handle: later calls are refused', luisa_error(lz))
  call compare_results()

  ! Other ways in.
  call luisa_init(MPI_COMM_WORLD%MPI_VAL, '', lz2, st)
  st2 = luisa_step(lz2, 1)
  call check(st == LUISA_OK .and. st2 == LUISA_OK, 'luisa_init(integer handle, no script) works', luisa_error(lz2))
  call luisa_init(MPI_COMM_WORLD, '', lz2, st)
  call check(st == LUISA_ERR_ARG .and. says(lz2, 'already holds a context'), &
             'luisa_init on a live handle is refused', luisa_error(lz2))
  st = luisa_reload(lz2)
  call check(st == LUISA_ERR_ORDER .and. says(lz2, 'no script to reload'), &
             'luisa_reload: without a script gives LUISA_ERR_ORDER', luisa_error(lz2))
  call luisa_finalize(lz2)
  call luisa_init(MPI_COMM_WORLD, 't/no_such_script.lua', lz2, st, log_level=LUISA_LOG_ERROR)
  st2 = luisa_step(lz2, 1)
  call check(st == LUISA_WARN_SCRIPT .and. says(lz2, 't/no_such_script.lua') .and. st2 == LUISA_OK, &
             'luisa_init: a missing script gives LUISA_WARN_SCRIPT, the run goes on', luisa_error(lz2))
  call luisa_finalize(lz2)
  call luisa_init(MPI_COMM_WORLD, '', lz2, st, log_level=9)
  call check(st == LUISA_ERR_ARG .and. says(lz2, 'luisa_init: invalid argument'), &
             'luisa_init: a bad log level gives LUISA_ERR_ARG and no context', luisa_error(lz2))
  call check(luisa_status_string(LUISA_ERR_CHUNK) == 'chunk declarations are inconsistent' .and. &
             luisa_status_string(LUISA_WARN_SCRIPT) == 'the analysis script failed; the simulation goes on', &
             'status constants match the engine''s codes')

  deallocate (blocks)   ! main-program variables are never freed: valgrind would call them lost
  call MPI_Finalize()
  if (failures > 0) stop 1

contains

  ! One TAP line for a check agreed by every rank; the ranks where it failed
  ! say why.
  subroutine check(cond, what, why)
    logical, intent(in) :: cond
    character(len=*), intent(in) :: what
    character(len=*), intent(in), optional :: why
    logical :: everywhere
    call MPI_Allreduce(cond, everywhere, 1, MPI_LOGICAL, MPI_LAND, MPI_COMM_WORLD)
    if (.not. cond .and. present(why)) print '(a,i0,2a)', '# rank ', rank, ': ', why
    if (.not. everywhere) failures = failures + 1
    if (rank == 0 .and. everywhere) print '(4a)', 'ok - ', trim(tag), ': ', what
    if (rank == 0 .and. .not. everywhere) print '(4a)', 'not ok - ', trim(tag), ': ', what
    flush (output_unit)
  end subroutine

  pure logical function says(h, frag)   ! luisa_error(h) contains frag
    type(luisa_t), intent(in) :: h
    character(len=*), intent(in) :: frag
    says = index(luisa_error(h), frag) > 0
  end function

  pure logical function ends_with(text, tail)
    character(len=*), intent(in) :: text, tail
    ends_with = len(text) >= len(tail)
    if (ends_with) ends_with = text(len(text) - len(tail) + 1:) == tail
  end function

  ! The field, from global 1-based indices: what the engine must see.
  pure real(real64) function fu(i, j, s)
    integer, intent(in) :: i, j, s
    fu = sin(0.3d0 * i + 0.1d0 * s) * j - 0.5d0 * i
  end function

  pure real(real32) function fv(i, j, s)
    integer, intent(in) :: i, j, s
    fv = real(cos(0.2d0 * i * j) + s, real32)
  end function

  pure integer(int32) function fi(i, j, s)
    integer, intent(in) :: i, j, s
    fi = mod(7 * i + 3 * j + s, 23) - 11
  end function

  pure integer(int64) function fl(i, j, k, s)
    integer, intent(in) :: i, j, k, s
    fl = int(i, int64) * 3000000007_int64 - int(j * k * 17 + s, int64)
  end function

  pure integer function split(n, parts, p)   ! first index of part p (0-based) of 1..n
    integer, intent(in) :: n, parts, p
    split = p * n / parts + 1
  end function

  subroutine make_blocks()
    integer :: bi, bj, kb
    nmine = 0
    allocate (blocks((BX * BY + nranks - 1) / nranks))
    do kb = 0, BX * BY - 1
      if (mod(kb, nranks) /= rank) cycle
      nmine = nmine + 1
      bi = mod(kb, BX)
      bj = kb / BX
      associate (b => blocks(nmine))
        b%x0 = split(NX, BX, bi)
        b%nx = split(NX, BX, bi + 1) - b%x0
        b%y0 = split(NY, BY, bj)
        b%ny = split(NY, BY, bj + 1) - b%y0
        allocate (b%u(0:b%nx + 1, 0:b%ny + 1), b%v(b%nx, b%ny), b%iv(b%nx, b%ny), b%lv(b%nx, b%ny, 2))
      end associate
    end do
  end subroutine

  subroutine fill(b, s)
    type(block_t), intent(inout) :: b
    integer, intent(in) :: s
    integer :: i, j, kk
    b%u = POISON
    do j = 1, b%ny
      do i = 1, b%nx
        b%u(i, j) = fu(b%x0 + i - 1, b%y0 + j - 1, s)
        b%v(i, j) = fv(b%x0 + i - 1, b%y0 + j - 1, s)
        b%iv(i, j) = fi(b%x0 + i - 1, b%y0 + j - 1, s)
        do kk = 1, 2
          b%lv(i, j, kk) = fl(b%x0 + i - 1, b%y0 + j - 1, kk, s)
        end do
      end do
    end do
  end subroutine

  ! Rank 0 reads what the script wrote and compares with a plain loop over
  ! the global formula; the step that failed must have written nothing.
  subroutine compare_results()
    real(real64) :: got(4, 4, NSTEPS), want(4, 4), x, v(5), tol(4, 4)
    logical :: seen(4, 4, NSTEPS), good(4), quiet
    character(len=256) :: path
    character(len=16) :: key
    integer :: unit, ios, step, a, t, i, j
    good = .true.
    quiet = .true.
    ! Relative tolerance: the sum's order differs, but integer sums, minima
    ! and maxima are exact in double precision (all below 2^53).
    tol = 1d-12
    tol(3:4, 1:3) = 0
    if (rank == 0) then
      seen = .false.
      call get_environment_variable('LUISA_TEST_OUT', path)
      open (newunit=unit, file=trim(path), status='old', action='read', iostat=ios)
      if (ios /= 0) print '(2a)', '# cannot open ', trim(path)
      if (ios /= 0) good = .false.
      do while (ios == 0)
        read (unit, *, iostat=ios) step, key, x
        if (ios /= 0) exit
        a = index(NAMES, key(1:1))
        t = findloc(STATS, key(3:), dim=1)
        if (step < 1 .or. step > NSTEPS .or. a == 0 .or. t == 0 .or. key(2:2) /= '_') then
          print '(2a)', '# unexpected line for ', trim(key)
          good = .false.
          cycle
        end if
        got(a, t, step) = x
        seen(a, t, step) = .true.
      end do
      if (ios > 0) print '(2a)', '# cannot read ', trim(path)
      if (ios > 0) good = .false.
      if (ios < 0) close (unit)   ! end of file: it was open
      quiet = .not. any(seen(:, :, SKIP))
      do step = 1, NSTEPS
        if (step == SKIP) cycle
        want(:, 1) = 0
        want(:, 2) = huge(1d0)
        want(:, 3) = -huge(1d0)
        do j = 1, NY
          do i = 1, NX
            v = [fu(i, j, step), real(fv(i, j, step), real64), real(fi(i, j, step), real64), &
                 real(fl(i, j, 1, step), real64), real(fl(i, j, 2, step), real64)]
            want(:, 1) = want(:, 1) + [v(1:3), v(4) + v(5)]
            want(:, 2) = min(want(:, 2), [v(1:3), min(v(4), v(5))])
            want(:, 3) = max(want(:, 3), [v(1:3), max(v(4), v(5))])
          end do
        end do
        want(:, 4) = want(:, 1) / (NX * NY * [1, 1, 1, 2])
        do a = 1, 4
          do t = 1, 4
            if (.not. seen(a, t, step)) then
              print '(a,i0,4a)', '# step ', step, ': ', NAMES(a:a), '_', trim(STATS(t)) // ' not reported'
              good(a) = .false.
            else if (abs(got(a, t, step) - want(a, t)) > tol(a, t) * max(1d0, abs(want(a, t)))) then
              print '(a,i0,4a,es24.17,a,es24.17)', '# step ', step, ': ', NAMES(a:a), '_', &
                    trim(STATS(t)) // ' = ', got(a, t, step), ', expected ', want(a, t)
              good(a) = .false.
            end if
          end do
        end do
      end do
    end if
    call check(good(1), 'U (real(8), ghost cells): sum, min, max, mean match the plain loop')
    call check(good(2), 'V (real(4)): sum, min, max, mean match the plain loop')
    call check(good(3), 'I (integer(4)): sum, min, max, mean match the plain loop')
    call check(good(4), 'L (integer(8), 3D): sum, min, max, mean match the plain loop')
    call check(quiet, 'nothing was reported for the failed step')
  end subroutine
end program bindings_fortran
