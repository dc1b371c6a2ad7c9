/* Host HAL: the "UART" is a tty (a pseudo-terminal in tests, a USB serial adapter otherwise).
 * Usage: firmware_host <tty-path>   opens an existing tty, or
 *        firmware_host --pty        creates a pseudo-terminal and prints "pty: <slave path>". */
#define _XOPEN_SOURCE 600

#include "hal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int uart_fd = -1;

static int set_raw(int fd)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0)
        return -1;
    t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXOFF);
    t.c_oflag &= ~(tcflag_t)OPOST;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
    t.c_cflag |= (tcflag_t)(CS8 | CLOCAL | CREAD);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    cfsetispeed(&t, B115200);
    cfsetospeed(&t, B115200);
    return tcsetattr(fd, TCSANOW, &t);
}

int hal_init(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s <tty-path> | --pty\n", argc > 0 ? argv[0] : "firmware_host");
        return -1;
    }
    if (strcmp(argv[1], "--pty") == 0) {
        uart_fd = posix_openpt(O_RDWR | O_NOCTTY);
        if (uart_fd < 0 || grantpt(uart_fd) != 0 || unlockpt(uart_fd) != 0) {
            perror("posix_openpt");
            return -1;
        }
    } else {
        uart_fd = open(argv[1], O_RDWR | O_NOCTTY);
        if (uart_fd < 0) {
            fprintf(stderr, "cannot open %s: %s\n", argv[1], strerror(errno));
            return -1;
        }
    }
    if (set_raw(uart_fd) != 0 || fcntl(uart_fd, F_SETFL, fcntl(uart_fd, F_GETFL) | O_NONBLOCK) != 0) {
        perror("configure tty");
        return -1;
    }
    if (strcmp(argv[1], "--pty") == 0)
        printf("pty: %s\n", ptsname(uart_fd));
    fflush(stdout);
    return 0;
}

size_t hal_uart_read(uint8_t *buf, size_t cap)
{
    ssize_t n = read(uart_fd, buf, cap);
    return n > 0 ? (size_t)n : 0; /* EAGAIN: nothing yet; EIO: pty peer not open */
}

void hal_uart_write(const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(uart_fd, buf, len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {uart_fd, POLLOUT, 0};
            if (poll(&p, 1, 50) <= 0)
                return; /* peer stopped reading: drop, like a UART with nobody listening */
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return;
        }
    }
}

uint32_t hal_micros(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
}

void hal_wait(uint32_t max_us)
{
    struct pollfd p = {uart_fd, POLLIN, 0};
    int ms = (int)((max_us + 999u) / 1000u);
    if (poll(&p, 1, ms > 0 ? ms : 1) > 0 && !(p.revents & POLLIN)) {
        /* Hang-up with no data (pty peer closed): sleep instead of spinning on the event. */
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
}

void hal_actuate(const float *action, size_t n)
{
    (void)action; /* no motors on the host: the ACTION frame is the output */
    (void)n;
}
