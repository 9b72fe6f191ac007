/*
** bf16_probe.c -- instruction throughput of this CPU's multiply-adds, the
** ground for core/cpu/gemm_half.c's choice of kernel (bench/NOTES.md).
**
**   cc -O2 -o /tmp/bf16_probe bench/bf16_probe.c && /tmp/bf16_probe
**
** Each probe is a loop of 24 independent accumulator chains (enough to
** cover any latency up to 12 cycles at two a cycle), so the loop runs at
** the instruction's throughput, not its latency.  Cycles are core cycles
** from perf's hardware counter where the kernel allows it, else from
** the clock a chain of dependent integer adds shows (one a cycle; a core
** that lowers its clock for AVX-512 makes the per-cycle figures of the
** zmm probes a little low, never high).
** Prints, per instruction: G instructions/s, and G multiply-adds/s
** (VFMADD231PS zmm: 16 lanes, one product each; VDPBF16PS zmm: 16 lanes,
** two bfloat16 products each).
*/
#define _GNU_SOURCE   /* syscall */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <immintrin.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ITERS 20000000L

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* A core-cycle counter of this thread, or -1. */
static int cycles_fd(void) {
  struct perf_event_attr pe;
  memset(&pe, 0, sizeof pe);
  pe.type = PERF_TYPE_HARDWARE;
  pe.size = sizeof pe;
  pe.config = PERF_COUNT_HW_CPU_CYCLES;
  pe.disabled = 1;
  pe.exclude_kernel = 1;
  pe.exclude_hv = 1;
  return (int)syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0);
}

/* The 24 chains are spelled out in asm so that the compiler can neither
   fold nor reorder them; the operands stay in zmm24..zmm26. */
#define CHAINS(op)                                                          \
  op " %%zmm25, %%zmm24, %%zmm0\n\t" op " %%zmm25, %%zmm24, %%zmm1\n\t"     \
  op " %%zmm25, %%zmm24, %%zmm2\n\t" op " %%zmm25, %%zmm24, %%zmm3\n\t"     \
  op " %%zmm25, %%zmm24, %%zmm4\n\t" op " %%zmm25, %%zmm24, %%zmm5\n\t"     \
  op " %%zmm25, %%zmm24, %%zmm6\n\t" op " %%zmm25, %%zmm24, %%zmm7\n\t"     \
  op " %%zmm25, %%zmm24, %%zmm8\n\t" op " %%zmm25, %%zmm24, %%zmm9\n\t"     \
  op " %%zmm25, %%zmm24, %%zmm10\n\t" op " %%zmm25, %%zmm24, %%zmm11\n\t"   \
  op " %%zmm25, %%zmm24, %%zmm12\n\t" op " %%zmm25, %%zmm24, %%zmm13\n\t"   \
  op " %%zmm25, %%zmm24, %%zmm14\n\t" op " %%zmm25, %%zmm24, %%zmm15\n\t"   \
  op " %%zmm25, %%zmm24, %%zmm16\n\t" op " %%zmm25, %%zmm24, %%zmm17\n\t"   \
  op " %%zmm25, %%zmm24, %%zmm18\n\t" op " %%zmm25, %%zmm24, %%zmm19\n\t"   \
  op " %%zmm25, %%zmm24, %%zmm20\n\t" op " %%zmm25, %%zmm24, %%zmm21\n\t"   \
  op " %%zmm25, %%zmm24, %%zmm22\n\t" op " %%zmm25, %%zmm24, %%zmm23\n\t"

#define YCHAINS(op)                                                         \
  op " %%ymm15, %%ymm14, %%ymm0\n\t" op " %%ymm15, %%ymm14, %%ymm1\n\t"     \
  op " %%ymm15, %%ymm14, %%ymm2\n\t" op " %%ymm15, %%ymm14, %%ymm3\n\t"     \
  op " %%ymm15, %%ymm14, %%ymm4\n\t" op " %%ymm15, %%ymm14, %%ymm5\n\t"     \
  op " %%ymm15, %%ymm14, %%ymm6\n\t" op " %%ymm15, %%ymm14, %%ymm7\n\t"     \
  op " %%ymm15, %%ymm14, %%ymm8\n\t" op " %%ymm15, %%ymm14, %%ymm9\n\t"     \
  op " %%ymm15, %%ymm14, %%ymm10\n\t" op " %%ymm15, %%ymm14, %%ymm11\n\t"   \
  op " %%ymm15, %%ymm14, %%ymm12\n\t" op " %%ymm15, %%ymm14, %%ymm13\n\t"

#define ZCLOBBER                                                            \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",   \
  "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16",    \
  "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24",   \
  "xmm25"

static __attribute__((target("avx512f"))) void run_fma(long n) {
  __asm__ volatile("vpxord %%zmm24, %%zmm24, %%zmm24\n\t"
                   "vpxord %%zmm25, %%zmm25, %%zmm25\n\t"
                   "1:\n\t" CHAINS("vfmadd231ps") "dec %0\n\t jnz 1b"
                   : "+r"(n) : : ZCLOBBER, "cc");
}

static __attribute__((target("avx512f,avx512bf16"))) void run_dpbf16(long n) {
  __asm__ volatile("vpxord %%zmm24, %%zmm24, %%zmm24\n\t"
                   "vpxord %%zmm25, %%zmm25, %%zmm25\n\t"
                   "1:\n\t" CHAINS("vdpbf16ps") "dec %0\n\t jnz 1b"
                   : "+r"(n) : : ZCLOBBER, "cc");
}

static __attribute__((target("avx2,fma"))) void run_fma_ymm(long n) {
  /* 14 chains only (ymm0..15), so scale: see the caller */
  __asm__ volatile("vpxor %%ymm14, %%ymm14, %%ymm14\n\t"
                   "vpxor %%ymm15, %%ymm15, %%ymm15\n\t"
                   "1:\n\t" YCHAINS("vfmadd231ps") "dec %0\n\t jnz 1b"
                   : "+r"(n) : : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
                     "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
                     "xmm13", "xmm14", "xmm15", "cc");
}

/* A chain of dependent register-to-register integer adds: one a cycle,
   so its rate is the core clock (for the per-cycle figures when there is
   no counter).  Not an immediate: newer cores fold chains of those. */
static void run_clock(long n) {
  long x = 0, one = 1;
  __asm__ volatile("1:\n\t"
                   "add %2, %1\n\t add %2, %1\n\t add %2, %1\n\t add %2, %1\n\t"
                   "add %2, %1\n\t add %2, %1\n\t add %2, %1\n\t add %2, %1\n\t"
                   "dec %0\n\t jnz 1b"
                   : "+r"(n), "+r"(x) : "r"(one) : "cc");
}

static double ghz;   /* from run_clock, when there is no counter */

static void probe(const char *name, void (*fn)(long), int per_iter,
                  int macs_per_instr, int fd) {
  fn(ITERS / 20);   /* warm-up: lets the core reach its AVX-512 frequency */
  double best = 1e30;
  long long cyc = -1;
  for (int rep = 0; rep < 3; rep++) {
    long long c = -1;
    if (fd >= 0) { ioctl(fd, PERF_EVENT_IOC_RESET, 0); ioctl(fd, PERF_EVENT_IOC_ENABLE, 0); }
    double t0 = now();
    fn(ITERS);
    double t = now() - t0;
    if (fd >= 0) {
      ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
      if (read(fd, &c, sizeof c) != sizeof c) c = -1;
    }
    if (t < best) { best = t; cyc = c; }
  }
  double instr = (double)ITERS * per_iter;
  printf("%-22s %6.2f G instr/s  %6.1f G multiply-adds/s", name, instr / best * 1e-9,
         instr * macs_per_instr / best * 1e-9);
  if (cyc <= 0 && ghz > 0) cyc = (long long)(best * ghz * 1e9);
  if (cyc > 0)
    printf("  %.2f instr/cycle  %.1f multiply-adds/cycle  (%.2f GHz)",
           instr / cyc, instr * macs_per_instr / cyc, cyc / best * 1e-9);
  printf("\n");
}

int main(void) {
  int fd = cycles_fd();
  if (fd < 0) {
    run_clock(ITERS);
    double t0 = now();
    run_clock(ITERS);
    ghz = ITERS * 8.0 / (now() - t0) * 1e-9;
    printf("# no cycle counter (perf_event_open): cycles from a chain of dependent "
           "adds, %.2f GHz\n", ghz);
  }
  if (__builtin_cpu_supports("avx512f"))
    probe("vfmadd231ps zmm", run_fma, 24, 16, fd);
  if (__builtin_cpu_supports("avx512bf16"))
    probe("vdpbf16ps zmm", run_dpbf16, 24, 32, fd);
  probe("vfmadd231ps ymm", run_fma_ymm, 14, 8, fd);
  return 0;
}
