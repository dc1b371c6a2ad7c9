/* Host harness for robot_ac.export.verify_c: runs policy_step over a file of float32 observations.
 *
 * usage: harness_host OBS.bin ACT.bin
 * OBS.bin holds n * ROBOT_AC_POLICY_N_OBS native float32 values; ACT.bin gets n * ROBOT_AC_POLICY_N_ACT.
 * Binary files instead of text keep 10,000 observations fast and bit-exact. */
#include <stdio.h>

#include "policy.h"

int main(int argc, char **argv)
{
    static float obs[ROBOT_AC_POLICY_N_OBS];
    static float act[ROBOT_AC_POLICY_N_ACT];
    if (argc != 3) {
        fprintf(stderr, "usage: %s OBS.bin ACT.bin\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    FILE *out = fopen(argv[2], "wb");
    if (!in || !out) {
        fprintf(stderr, "harness_host: cannot open %s or %s\n", argv[1], argv[2]);
        return 2;
    }
    long count = 0;
    policy_reset();
    while (fread(obs, sizeof obs, 1, in) == 1) {
        policy_step(obs, act);
        if (fwrite(act, sizeof act, 1, out) != 1) {
            fprintf(stderr, "harness_host: write failed\n");
            return 2;
        }
        ++count;
    }
    fclose(in);
    if (fclose(out) != 0) {
        return 2;
    }
    fprintf(stderr, "harness_host: %ld observations\n", count);
    return 0;
}
