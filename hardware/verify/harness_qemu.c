/* Cortex-M4F harness for robot_ac.export.verify_c, run under QEMU mps2-an386 with semihosting.
 *
 * Reads obs.bin (n * N_OBS float32) and writes act.bin (n * N_ACT float32) in QEMU's working folder,
 * then writes stats.bin: eight little-endian uint64 values
 *   [magic, n, repeats, ticks_policy, ticks_empty, ticks_calib, calib_instructions, stack_bytes].
 *
 * Instruction counting: QEMU is run with "-icount shift=0", so virtual time advances exactly one
 * nanosecond per executed guest instruction (QEMU docs, "-icount"). SysTick runs on that virtual clock.
 * Instead of trusting the SysTick clock frequency, a loop of a known instruction count calibrates
 * instructions per tick, so instructions per inference = (ticks_policy - ticks_empty) * calib / repeats.
 * Stack: a painted region below the stack pointer shows the deepest stack used by one policy_step. */
#include <stdint.h>

#include "policy.h"
#include "semihost.h"

#define MAGIC 0x524f424f54414331ull /* "ROBOTAC1" */
#define REPEATS 64u
#define CALIB_ITERATIONS 1000000u
#define STACK_PAINT_BYTES 16384u
#define PAINT 0xA5C3E10Fu

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_RELOAD 0x00FFFFFFu

static volatile uint32_t systick_wraps;

void SysTick_Handler(void)
{
    systick_wraps++;
}

static void systick_start(void)
{
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0u;
    SYST_CSR = 7u; /* enable, interrupt on wrap, processor clock */
    while (SYST_CVR == 0u) {
        /* the write above cleared the counter; wait for the first reload so readings are monotonic */
    }
}

static uint64_t ticks(void)
{
    uint32_t wraps, value;
    do {
        wraps = systick_wraps;
        value = SYST_CVR;
    } while (wraps != systick_wraps);
    return (uint64_t)wraps * (SYST_RELOAD + 1u) + (SYST_RELOAD - value);
}

/* Exactly 2 instructions per iteration (subs + bne). */
static void __attribute__((noinline)) calib_loop(uint32_t n)
{
    __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n)::"cc");
}

/* Deepest stack touched by one policy_step (plus this function's call), from a painted region. */
static uint32_t __attribute__((noinline)) measure_stack(const float *obs, float *act)
{
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    volatile uint32_t *lo = (volatile uint32_t *)(sp - STACK_PAINT_BYTES);
    volatile uint32_t *hi = (volatile uint32_t *)(sp - 64u); /* keep clear of our own frame */
    for (volatile uint32_t *p = lo; p < hi; ++p) {
        *p = PAINT;
    }
    policy_step(obs, act);
    volatile uint32_t *p = lo;
    while (p < hi && *p == PAINT) {
        ++p;
    }
    return sp - (uint32_t)(uintptr_t)p;
}

static int fail(const char *msg)
{
    sh_puts(msg);
    return 1;
}

int main(void)
{
    static float obs[ROBOT_AC_POLICY_N_OBS];
    static float act[ROBOT_AC_POLICY_N_ACT];
    static uint64_t stats[8];

    int in = sh_open("obs.bin", SH_MODE_RB);
    int out = sh_open("act.bin", SH_MODE_WB);
    if (in < 0 || out < 0) {
        return fail("harness_qemu: cannot open obs.bin/act.bin\n");
    }
    long bytes = sh_flen(in);
    if (bytes < 0 || bytes % (long)sizeof obs != 0) {
        return fail("harness_qemu: obs.bin size is not a multiple of one observation\n");
    }
    uint32_t n = (uint32_t)(bytes / (long)sizeof obs);

    policy_reset();
    for (uint32_t i = 0; i < ROBOT_AC_POLICY_N_OBS; ++i) {
        obs[i] = 0.0f;
    }
    uint32_t stack_bytes = measure_stack(obs, act); /* before SysTick: no exception frames in the paint */

    for (uint32_t i = 0; i < n; ++i) {
        if (sh_read(in, obs, sizeof obs) != 0) {
            return fail("harness_qemu: short read\n");
        }
        policy_step(obs, act);
        if (sh_write(out, act, sizeof act) != 0) {
            return fail("harness_qemu: short write\n");
        }
    }
    sh_close(in);
    sh_close(out);

    systick_start();
    uint64_t t0 = ticks();
    for (uint32_t r = 0; r < REPEATS; ++r) {
        policy_step(obs, act);
    }
    uint64_t t1 = ticks();
    uint64_t e0 = ticks();
    for (uint32_t r = 0; r < REPEATS; ++r) {
        __asm__ volatile("" ::: "memory");
    }
    uint64_t e1 = ticks();
    uint64_t c0 = ticks();
    calib_loop(CALIB_ITERATIONS);
    uint64_t c1 = ticks();
    SYST_CSR = 0u;

    stats[0] = MAGIC;
    stats[1] = n;
    stats[2] = REPEATS;
    stats[3] = t1 - t0;
    stats[4] = e1 - e0;
    stats[5] = c1 - c0;
    stats[6] = 2ull * CALIB_ITERATIONS;
    stats[7] = stack_bytes;
    int st = sh_open("stats.bin", SH_MODE_WB);
    if (st < 0 || sh_write(st, stats, sizeof stats) != 0) {
        return fail("harness_qemu: cannot write stats.bin\n");
    }
    sh_close(st);
    return 0;
}
