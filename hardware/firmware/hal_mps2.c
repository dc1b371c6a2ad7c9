/* Target HAL for the Arm MPS2 AN386 (Cortex-M4) board as emulated by QEMU (-M mps2-an386).
 * UART0 is a CMSDK APB UART at 0x40004000 and TIMER0 a CMSDK APB timer at 0x40000000 clocked at
 * 25 MHz (register maps: Arm Cortex-M System Design Kit Technical Reference Manual, ARM DDI 0479;
 * addresses and clock: QEMU hw/arm/mps2.c). */
#include "hal.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#define UART0 0x40004000u
#define UART_DATA REG(UART0 + 0x00u)
#define UART_STATE REG(UART0 + 0x04u) /* bit0 TX buffer full, bit1 RX buffer full */
#define UART_CTRL REG(UART0 + 0x08u)  /* bit0 TX enable, bit1 RX enable */
#define UART_INTCLEAR REG(UART0 + 0x0Cu) /* write 1s: bit0 TX, bit1 RX */
#define UART_BAUDDIV REG(UART0 + 0x10u)
#define UART_CTRL_RX_IRQ 0x8u

#define TIMER0 0x40000000u
#define TIMER_CTRL REG(TIMER0 + 0x00u) /* bit0 enable */
#define TIMER_VALUE REG(TIMER0 + 0x04u)
#define TIMER_RELOAD REG(TIMER0 + 0x08u)
#define TIMER_TICKS_PER_US 25u

/* TIMER1 ticks every 1 ms only to wake the core from WFI, so the watchdog is checked while the line is idle. */
#define TIMER1 0x40001000u
#define TIMER1_CTRL REG(TIMER1 + 0x00u) /* bit0 enable, bit3 interrupt enable */
#define TIMER1_VALUE REG(TIMER1 + 0x04u)
#define TIMER1_RELOAD REG(TIMER1 + 0x08u)
#define TIMER1_INTCLEAR REG(TIMER1 + 0x0Cu)

/* NVIC; IRQ numbers of the MPS2 AN385/AN386 image: UART0 RX = 0, TIMER1 = 9 (QEMU hw/arm/mps2.c, Arm AN385). */
#define NVIC_ISER0 REG(0xE000E100u)
#define NVIC_ICPR0 REG(0xE000E280u)
#define WAKE_IRQS ((1u << 0) | (1u << 9))

static uint32_t last_count;
static uint64_t ticks;

int hal_init(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    UART_BAUDDIV = 16u; /* smallest legal divider; QEMU ignores the rate */
    UART_CTRL = 0x3u | UART_CTRL_RX_IRQ;
    TIMER1_RELOAD = 1000u * TIMER_TICKS_PER_US;
    TIMER1_VALUE = 1000u * TIMER_TICKS_PER_US;
    TIMER1_CTRL = 0x9u;
    /* Interrupts stay masked (PRIMASK): a pending, enabled IRQ still ends WFI (ARMv7-M ARM B1.5.19) but no
     * handler runs, so the vector table needs no IRQ entries. */
    __asm__ volatile("cpsid i" ::: "memory");
    NVIC_ISER0 = WAKE_IRQS;
    TIMER_RELOAD = 0xFFFFFFFFu;
    TIMER_VALUE = 0xFFFFFFFFu;
    TIMER_CTRL = 0x1u;
    last_count = TIMER_VALUE;
    return 0;
}

size_t hal_uart_read(uint8_t *buf, size_t cap)
{
    size_t n = 0;
    while (n < cap && (UART_STATE & 0x2u))
        buf[n++] = (uint8_t)UART_DATA;
    return n;
}

void hal_uart_write(const uint8_t *buf, size_t len)
{
    size_t i;
    for (i = 0; i < len; ++i) {
        while (UART_STATE & 0x1u) {
        }
        UART_DATA = buf[i];
    }
}

/* The timer counts down and wraps every ~172 s; accumulating deltas gives a clock that does not. */
uint32_t hal_micros(void)
{
    uint32_t now = TIMER_VALUE;
    ticks += (uint32_t)(last_count - now);
    last_count = now;
    return (uint32_t)(ticks / TIMER_TICKS_PER_US);
}

/* Sleep until a byte arrives or the 1 ms tick: a core that busy-polls an idle line holds a whole host CPU in
 * QEMU (measured: ~100% before, ~3% idle with WFI). A byte that arrived just before WFI has already set its IRQ
 * pending, so WFI returns at once and nothing is lost. */
void hal_wait(uint32_t max_us)
{
    (void)max_us; /* the 1 ms TIMER1 tick bounds the sleep */
    if (!(UART_STATE & 0x2u))
        __asm__ volatile("dsb\n\twfi" ::: "memory");
    UART_INTCLEAR = 0x2u;
    TIMER1_INTCLEAR = 0x1u;
    NVIC_ICPR0 = WAKE_IRQS;
}

void hal_actuate(const float *action, size_t n)
{
    (void)action; /* a real board would write PWM compare registers here */
    (void)n;
}
