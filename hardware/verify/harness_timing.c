/* Host latency harness for bench/export_c.py: wall time of single policy_step calls.
 *
 * usage: harness_timing OBS.bin CALLS OUT.bin
 * Cycles through the observations in OBS.bin (n * ROBOT_AC_POLICY_N_OBS float32), times each call with
 * CLOCK_MONOTONIC and writes CALLS uint64 nanosecond durations to OUT.bin. One call per reading, as a
 * controller calls it once per tick; the clock read itself (~20 ns) is included. */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "policy.h"

#define MAX_OBS 4096

static float obs[MAX_OBS][ROBOT_AC_POLICY_N_OBS];

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s OBS.bin CALLS OUT.bin\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    if (!in) {
        fprintf(stderr, "harness_timing: cannot open %s\n", argv[1]);
        return 2;
    }
    size_t n = fread(obs, sizeof obs[0], MAX_OBS, in);
    fclose(in);
    long calls = atol(argv[2]);
    if (n == 0 || calls <= 0) {
        fprintf(stderr, "harness_timing: no observations or no calls\n");
        return 2;
    }
    uint64_t *ns = malloc((size_t)calls * sizeof *ns);
    if (!ns) {
        return 2;
    }
    float act[ROBOT_AC_POLICY_N_ACT];
    volatile float sink = 0.0f;
    policy_reset();
    for (long i = 0; i < 1000; ++i) { /* warm caches and branch predictors */
        policy_step(obs[(size_t)i % n], act);
    }
    for (long i = 0; i < calls; ++i) {
        const uint64_t t0 = now_ns();
        policy_step(obs[(size_t)i % n], act);
        const uint64_t t1 = now_ns();
        ns[i] = t1 - t0;
        sink += act[0];
    }
    FILE *out = fopen(argv[3], "wb");
    if (!out || fwrite(ns, sizeof *ns, (size_t)calls, out) != (size_t)calls || fclose(out) != 0) {
        fprintf(stderr, "harness_timing: cannot write %s\n", argv[3]);
        return 2;
    }
    free(ns);
    return 0;
}
