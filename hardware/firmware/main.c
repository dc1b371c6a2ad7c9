/* Reference firmware: answers each STATE frame with an ACTION from the exported policy.
 *
 * The loop is event-driven (the host sets the control rate by sending STATE) with a watchdog on the
 * microsecond clock: armed and no STATE for 200 ms -> safe action (zeros, motors off), FAULT, disarm.
 * 200 ms follows the learning-to-fly Crazyflie controller (arplaboratory/learning_to_fly_controller,
 * rl_tools_controller.c: CONTROL_PACKET_TIMEOUT_USEC (1000*200)), which stops applying the learned
 * policy's motor commands once no control packet arrived for 200 ms. See hardware/PROTOCOL.md. */
#include <math.h>
#include <string.h>

#include "hal.h"
#include "policy.h"
#include "protocol.h"

#define N_OBS ROBOT_AC_POLICY_N_OBS
#define N_ACT ROBOT_AC_POLICY_N_ACT
/* 200 ms as in PROTOCOL.md; test builds on a shared, overloaded machine may raise it (-DWATCHDOG_US=...) so
 * that a scheduler stall of the emulating process is not mistaken for a lost link. */
#ifndef WATCHDOG_US
#define WATCHDOG_US 200000u
#endif
#define ACTION_FIXED 6u /* state_seq u16 + compute_us u32 */

#if ACTION_FIXED + 4 * N_ACT > RAC_MAX_PAYLOAD || 4 * N_OBS > RAC_MAX_PAYLOAD
#error "policy dimensions exceed the protocol's payload limit"
#endif

static struct {
    int armed;
    uint16_t rate_hz;
    uint16_t tx_seq;
    uint16_t last_state_seq;
    uint32_t last_state_us;
    float command[N_ACT];
} g;

static rac_decoder rx;
static uint8_t tx_buf[RAC_MAX_WIRE];

static void send(uint8_t type, const uint8_t *payload, uint16_t len)
{
    size_t n = rac_frame_encode(type, g.tx_seq++, payload, len, tx_buf, sizeof tx_buf);
    hal_uart_write(tx_buf, n);
}

static void send_fault(uint16_t code, uint16_t ref_seq)
{
    uint8_t p[4];
    rac_put_u16(p, code);
    rac_put_u16(p + 2, ref_seq);
    send(RAC_MSG_FAULT, p, sizeof p);
}

static void send_heartbeat(void)
{
    uint8_t p[5];
    rac_put_u32(p, hal_micros());
    p[4] = g.armed ? RAC_FLAG_ARMED : 0u;
    send(RAC_MSG_HEARTBEAT, p, sizeof p);
}

/* Sets the actuator command; NULL commands the safe action (all zeros: motors off). */
static void command(const float *action)
{
    int i;
    for (i = 0; i < N_ACT; ++i)
        g.command[i] = action ? action[i] : 0.0f;
    hal_actuate(g.command, N_ACT);
}

/* Commands `action` (or the safe action) and reports it to the host as the answer to STATE seq. */
static void command_and_reply(uint16_t state_seq, uint32_t compute_us, const float *action)
{
    uint8_t p[ACTION_FIXED + 4 * N_ACT];
    int i;
    command(action);
    rac_put_u16(p, state_seq);
    rac_put_u32(p + 2, compute_us);
    for (i = 0; i < N_ACT; ++i)
        rac_put_f32(p + ACTION_FIXED + 4 * i, g.command[i]);
    send(RAC_MSG_ACTION, p, sizeof p);
}

static int all_finite(const float *v, int n)
{
    int i;
    for (i = 0; i < n; ++i)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

static void on_state(const rac_frame *f)
{
    float obs[N_OBS], act[N_ACT];
    uint32_t t0, dt;
    int i;
    if (!g.armed) {
        send_fault(RAC_FAULT_NOT_ARMED, f->seq);
        command_and_reply(f->seq, 0, NULL);
        return;
    }
    g.last_state_us = hal_micros();
    g.last_state_seq = f->seq;
    if (f->len != 4u * N_OBS) {
        send_fault(RAC_FAULT_BAD_LENGTH, f->seq);
        command_and_reply(f->seq, 0, NULL);
        return;
    }
    for (i = 0; i < N_OBS; ++i)
        obs[i] = rac_get_f32(f->payload + 4 * i);
    if (!all_finite(obs, N_OBS)) {
        send_fault(RAC_FAULT_NONFINITE_OBS, f->seq);
        command_and_reply(f->seq, 0, NULL);
        return;
    }
    t0 = hal_micros();
    policy_step(obs, act);
    dt = hal_micros() - t0;
    if (!all_finite(act, N_ACT)) {
        policy_reset(); /* a recurrent state that produced NaN would keep producing it */
        send_fault(RAC_FAULT_NONFINITE_ACTION, f->seq);
        command_and_reply(f->seq, dt, NULL);
        return;
    }
    if (g.rate_hz && dt > 1000000u / g.rate_hz)
        send_fault(RAC_FAULT_OVERRUN, f->seq);
    command_and_reply(f->seq, dt, act);
}

static void on_config(const rac_frame *f)
{
    int arm;
    if (f->len != 3u) {
        send_fault(RAC_FAULT_BAD_FRAME, f->seq);
        return;
    }
    arm = (f->payload[0] & RAC_FLAG_ARMED) != 0;
    g.rate_hz = rac_get_u16(f->payload + 1);
    if (arm && !g.armed) {
        policy_reset();
        g.last_state_us = hal_micros(); /* the watchdog starts now: first STATE due within 200 ms */
    }
    if (!arm)
        command(NULL);
    g.armed = arm;
    send_heartbeat();
}

static void on_frame(int r, const rac_frame *f)
{
    if (r == RAC_RX_CRC_ERROR || r == RAC_RX_FRAMING_ERROR) {
        send_fault(RAC_FAULT_BAD_FRAME, 0);
        return;
    }
    if (r == RAC_RX_BAD_VERSION) {
        send_fault(RAC_FAULT_BAD_VERSION, f->seq);
        return;
    }
    switch (f->type) {
    case RAC_MSG_STATE:
        on_state(f);
        break;
    case RAC_MSG_CONFIG:
        on_config(f);
        break;
    case RAC_MSG_HEARTBEAT:
        send_heartbeat();
        break;
    default:
        send_fault(RAC_FAULT_UNKNOWN_TYPE, f->seq);
    }
}

static void check_watchdog(void)
{
    if (g.armed && (uint32_t)(hal_micros() - g.last_state_us) > WATCHDOG_US) {
        g.armed = 0;
        command(NULL);
        send_fault(RAC_FAULT_WATCHDOG_TIMEOUT, g.last_state_seq);
    }
}

int main(int argc, char **argv)
{
    uint8_t chunk[64];
    static const uint8_t resync = 0;
    rac_frame frame;
    size_t n, i;
    if (hal_init(argc, argv) != 0)
        return 1;
    rac_decoder_init(&rx);
    memset(&g, 0, sizeof g);
    command(NULL);
    hal_uart_write(&resync, 1); /* lets a host decoder drop whatever partial frame it holds */
    for (;;) {
        n = hal_uart_read(chunk, sizeof chunk);
        for (i = 0; i < n; ++i) {
            int r = rac_decoder_push(&rx, chunk[i], &frame);
            if (r != RAC_RX_NONE)
                on_frame(r, &frame);
        }
        check_watchdog();
        if (n == 0)
            hal_wait(1000u);
    }
}
