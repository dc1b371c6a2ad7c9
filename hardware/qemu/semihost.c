/* ARM semihosting calls through "bkpt 0xab" (the Thumb/M-profile trap), see semihost.h for the source. */
#include "semihost.h"

#include <string.h>

enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE0 = 0x04,
    SYS_WRITE = 0x05,
    SYS_READ = 0x06,
    SYS_FLEN = 0x0C,
    SYS_EXIT = 0x18,
};

#define ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define ADP_STOPPED_RUNTIME_ERROR 0x20023u

static int sh_call(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

int sh_open(const char *path, int mode)
{
    const unsigned int args[3] = {(unsigned int)path, (unsigned int)mode, (unsigned int)strlen(path)};
    return sh_call(SYS_OPEN, args);
}

int sh_close(int fd)
{
    const unsigned int args[1] = {(unsigned int)fd};
    return sh_call(SYS_CLOSE, args);
}

size_t sh_read(int fd, void *buf, size_t len)
{
    const unsigned int args[3] = {(unsigned int)fd, (unsigned int)buf, (unsigned int)len};
    return (size_t)sh_call(SYS_READ, args);
}

size_t sh_write(int fd, const void *buf, size_t len)
{
    const unsigned int args[3] = {(unsigned int)fd, (unsigned int)buf, (unsigned int)len};
    return (size_t)sh_call(SYS_WRITE, args);
}

long sh_flen(int fd)
{
    const unsigned int args[1] = {(unsigned int)fd};
    return (long)sh_call(SYS_FLEN, args);
}

void sh_puts(const char *text)
{
    (void)sh_call(SYS_WRITE0, text);
}

void sh_exit(int ok)
{
    /* On AArch32 SYS_EXIT takes the reason code itself in r1, not a pointer to a block. */
    (void)sh_call(SYS_EXIT, (const void *)(ok ? ADP_STOPPED_APPLICATION_EXIT : ADP_STOPPED_RUNTIME_ERROR));
    for (;;) {
    }
}
