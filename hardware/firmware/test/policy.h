/* Hand-written stand-in for the generated policy, with the generator's interface. Tests compute the
 * same function in numpy float32 (tests/hardware/firmware_util.py). */
#ifndef ROBOT_AC_POLICY_H
#define ROBOT_AC_POLICY_H

#define ROBOT_AC_POLICY_N_OBS 4
#define ROBOT_AC_POLICY_N_ACT 2

void policy_step(const float *obs, float *action);
void policy_reset(void);

#endif
