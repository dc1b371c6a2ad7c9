/* Bare-metal startup for QEMU's mps2-an386 (Cortex-M4F): vector table, .data/.bss init, FPU enable.
 *
 * Cortex-M reset reads the initial stack pointer and reset vector from the table at address 0
 * (ARMv7-M Architecture Reference Manual, B1.5.3); CPACR is at 0xE000ED88 and CP10/CP11 full access
 * is bits 20..23 (ARMv7-M ARM, B3.2.20). */
#include <stdint.h>

#include "semihost.h"

extern uint32_t _estack;
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss;

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void) __attribute__((weak, alias("Ignore_Handler")));
void Ignore_Handler(void);

#define CPACR (*(volatile uint32_t *)0xE000ED88u)

void Reset_Handler(void)
{
    /* FPU first: the rest of the program is compiled for -mfloat-abi=hard. */
    CPACR |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0u;
    }
    sh_exit(main() == 0);
}

void Ignore_Handler(void)
{
}

void Default_Handler(void)
{
    sh_puts("robot_ac harness: unexpected exception\n");
    sh_exit(0);
}

void HardFault_Handler(void)
{
    sh_puts("robot_ac harness: HardFault\n");
    sh_exit(0);
}

typedef void (*vector_fn)(void);

__attribute__((section(".isr_vector"), used)) const vector_fn vector_table[16] = {
    (vector_fn)(uintptr_t)&_estack, /* initial SP */
    Reset_Handler,
    Default_Handler,   /* NMI */
    HardFault_Handler, /* HardFault */
    Default_Handler,   /* MemManage */
    Default_Handler,   /* BusFault */
    Default_Handler,   /* UsageFault */
    0,
    0,
    0,
    0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
};
