/* action0 = 0.5*o0 - o1 + 0.25*o2 (overflows to inf for huge finite inputs: the non-finite path);
 * action1 = 2*o3 + 0.125*k, k = steps since policy_reset (shows when the firmware resets the policy).
 * o0 == -12345 makes the step burn a few milliseconds, to exercise the overrun report. */
#include "policy.h"

static unsigned steps;

void policy_step(const float *obs, float *action)
{
    if (obs[0] == -12345.0f) {
        volatile unsigned long spin;
        for (spin = 0; spin < 5000000ul; ++spin) {
        }
    }
    action[0] = 0.5f * obs[0] - obs[1] + 0.25f * obs[2];
    action[1] = 2.0f * obs[3] + 0.125f * (float)steps;
    if (steps < 1000u)
        steps++;
}

void policy_reset(void)
{
    steps = 0;
}
