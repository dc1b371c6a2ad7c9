/* Minimal ARM semihosting client for QEMU (-semihosting-config enable=on,target=native).
 *
 * Operation numbers, open modes and exit reasons follow Arm's "Semihosting for AArch32 and AArch64"
 * specification (SYS_OPEN 0x01 ... SYS_EXIT 0x18, ADP_Stopped_ApplicationExit 0x20026).
 * Used only by the verification harness: the generated policy never depends on it. */
#ifndef ROBOT_AC_SEMIHOST_H
#define ROBOT_AC_SEMIHOST_H

#include <stddef.h>

#define SH_MODE_RB 1 /* fopen "rb" */
#define SH_MODE_WB 5 /* fopen "wb" */

int sh_open(const char *path, int mode);              /* handle, or -1 */
int sh_close(int fd);
size_t sh_read(int fd, void *buf, size_t len);        /* bytes NOT read (0 = all read) */
size_t sh_write(int fd, const void *buf, size_t len); /* bytes NOT written (0 = all written) */
long sh_flen(int fd);                                 /* file length in bytes, or -1 */
void sh_puts(const char *text);                       /* to QEMU's stdout */
void sh_exit(int ok) __attribute__((noreturn));       /* QEMU exits 0 when ok, 1 otherwise */

#endif
