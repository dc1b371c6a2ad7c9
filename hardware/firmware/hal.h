/* The few things the firmware needs from a platform: a byte UART, a microsecond clock, an actuator
 * output. hal_posix.c backs them with a tty, hal_mps2.c with the MPS2 CMSDK UART and timer. */
#ifndef ROBOT_AC_HAL_H
#define ROBOT_AC_HAL_H

#include <stddef.h>
#include <stdint.h>

/* Returns 0 when the UART is ready; argv is the host program's command line (unused on targets). */
int hal_init(int argc, char **argv);
/* Non-blocking: copies up to cap received bytes into buf and returns how many. */
size_t hal_uart_read(uint8_t *buf, size_t cap);
/* Blocking until the bytes are handed to the UART (or the peer is gone). */
void hal_uart_write(const uint8_t *buf, size_t len);
/* Monotonic microseconds; wraps at 2^32, so compare with unsigned differences. */
uint32_t hal_micros(void);
/* Idle for at most max_us or until UART input may be ready (host: poll; target: returns at once). */
void hal_wait(uint32_t max_us);
/* Drive the actuators; an all-zero action is the safe command (motors off). */
void hal_actuate(const float *action, size_t n);

#endif
