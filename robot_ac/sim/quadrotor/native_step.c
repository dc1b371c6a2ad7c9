/* The quadrotor environment step, fused into one pass over the environments, for the CPU.
 *
 * Why: the step written in torch (env.py, `_step_core`) is the reference; compiled with inductor it ran at 1.0-1.3M
 * env-steps/s at 4096 environments here, a sixth of issue #2's target, while merely writing the step's outputs
 * runs at ~20M (bench/sim_throughput.py, "copy floor"). Inductor splits the step into many loops that each read and
 * write all environments; this file reads each environment's state once, integrates it, and writes every output.
 *
 * It computes what `_step_core` computes, operation by operation in the same order and in float32 (contraction into
 * fused multiply-adds is off), so results agree with the torch step to float rounding: the test suite compares the
 * two through episodes and resets (tests/sim/test_native_step.py). The configuration (constants, the observation
 * groups' layouts, the noise) comes from a generated header, `step_config.h` (robot_ac/sim/quadrotor/native.py).
 *
 * Two phases in one parallel region, each thread owning a contiguous range of environments:
 *   1. action, dynamics (RK4), termination, reward terms, observation noise and the observations of the state
 *      reached: those to act on where the episode goes on, the final ones where it ended (the final observations'
 *      other rows stay unwritten); per block of environments, first as structure-of-arrays loops the compiler
 *      vectorizes, then as row writes;
 *   2. after a barrier, the automatic resets: environment i that ended takes pool entry
 *      (cursor + number of ended environments up to and including i - 1) mod pool size, as `torch.cumsum` gives it.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* A copy of `count` floats as a loop the compiler vectorizes (sizes are constants where it is inlined): memcpy of
 * these few hundred bytes went through the C library's generic path. */
static inline void copy_floats(float *restrict dst, const float *restrict src, int64_t count) {
    for (int64_t q = 0; q < count; q++) dst[q] = src[q];
}

#ifndef BLOCK
#define BLOCK 64 /* environments per block: the block's arrays (~39 KB) stay near L1 */
#endif
/* The dynamics run on blocks of environments held as structure of arrays, X[variable][environment]: every loop below
 * is over environments with unit stride and no arrays of its own, which is what the compiler vectorizes. */
typedef float Block[BLOCK];

#include "step_config.h"

#define STATE (13 + R)
#define PREFETCH_ROWS 8 /* how many environments ahead the history rows are fetched (4 to 16 measured alike) */
#define MAX_THREADS 64

/* ------------------------------------------------------------------------------------------- noise math */
/* Counter-based noise as in robot_ac/sim/counter_rng.py: Wellons' lowbias32 hash, Box-Muller on a pair of hashes. */
static inline uint32_t lowbias32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7FEB352DU;
    x ^= x >> 15;
    x *= 0x846CA68BU;
    x ^= x >> 16;
    return x;
}

static inline float bits_to_float(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static inline uint32_t float_to_bits(float f) {
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

/* isfinite as an integer test of the exponent bits: the same answer, and loops that use it vectorize. */
static inline int finite_bits(float f) {
    return (float_to_bits(f) & 0x7F800000U) != 0x7F800000U;
}

/* Natural log of a normal, positive float. Branch-free so that loops over environments vectorize; the
 * range reduction and the polynomial are those of Cephes' logf (S. L. Moshier, Cephes Math Library 2.2),
 * relative error ~1e-7 on [sqrt(1/2), sqrt(2)]. */
static inline float vlogf(float x) {
    uint32_t b = float_to_bits(x);
    float e = (float)((int32_t)(b >> 23) - 126);
    float m = bits_to_float((b & 0x007FFFFFU) | 0x3F000000U); /* x = m * 2^e, m in [0.5, 1) */
    int low = m < 0.707106781186547524f;
    e = low ? e - 1.0f : e;
    m = low ? m + m - 1.0f : m - 1.0f;
    float z = m * m;
    float y = 7.0376836292E-2f;
    y = y * m - 1.1514610310E-1f;
    y = y * m + 1.1676998740E-1f;
    y = y * m - 1.2420140846E-1f;
    y = y * m + 1.4249322787E-1f;
    y = y * m - 1.6668057665E-1f;
    y = y * m + 2.0000714765E-1f;
    y = y * m - 2.4999993993E-1f;
    y = y * m + 3.3333331174E-1f;
    y = y * m * z;
    y += -2.12194440e-4f * e;
    y += -0.5f * z;
    return m + y + 0.693359375f * e;
}

/* sin and cos of x in [0, 2 pi). Branch-free; the octant reduction (pi/4 split in three parts) and the two
 * polynomials are Cephes' sinf/cosf (S. L. Moshier), error ~1 ulp on this range. */
static inline void vsincosf(float x, float *s, float *c) {
    int j = (int)(x * 1.27323954473516f); /* 4 / pi */
    j += j & 1;
    float y = (float)j;
    j &= 7;
    x = ((x - y * 0.78515625f) - y * 2.4187564849853515625e-4f) - y * 3.77489497744594108e-8f;
    float z = x * x;
    float sp = ((-1.9515295891E-4f * z + 8.3321608736E-3f) * z - 1.6666654611E-1f) * z * x + x;
    float cp = ((2.443315711809948E-5f * z - 1.388731625493765E-3f) * z + 4.166664568298827E-2f) * z * z
               - 0.5f * z + 1.0f;
    int swap = (j == 2) | (j == 6);          /* octants where sin and cos trade polynomials */
    float sv = swap ? cp : sp, cv = swap ? sp : cp;
    *s = (j >= 4) ? -sv : sv;                /* sin < 0 in octants 4..7 */
    *c = ((j == 2) | (j == 4)) ? -cv : cv;  /* cos < 0 in octants 2..5 (j is even here) */
}

/* Box-Muller on pair `pair` of the step `key`: the cosine and the sine branch. */
static inline void normal_pair(uint32_t key, uint32_t pair, float *cos_branch, float *sin_branch) {
    uint32_t bits1 = lowbias32(lowbias32(pair) ^ key);
    uint32_t bits2 = lowbias32(bits1 ^ 0x5BD1E995U);
    float u1 = ((float)(bits1 >> 8) + 0.5f) * (1.0f / 16777216.0f);
    float angle = (float)(bits2 >> 8) * TWO_PI_OVER_2_24;
    float radius = sqrtf(-2.0f * vlogf(u1));
    float s, c;
    vsincosf(angle, &s, &c);
    *cos_branch = radius * c;
    *sin_branch = radius * s;
}

/* Noise of column j, environment i: element e = j * n + i of a [NOISE_K, n] tensor whose first `pairs`
 * elements are cosine branches and the rest sine branches (counter_normal). */
static inline float noise_element(uint32_t key, int64_t j, int64_t i, int64_t n) {
    int64_t e = j * n + i, pairs = (NOISE_K * n + 1) / 2;
    float c, s;
    normal_pair(key, (uint32_t)(e < pairs ? e : e - pairs), &c, &s);
    return e < pairs ? c : s;
}

/* ------------------------------------------------------------------------------------------- dynamics */
/* d(state)/dt of `nb` environments, as dynamics.quadrotor_derivative_columns (same operations, same order). */
static inline void derivative(int nb, const Block *restrict x, const Block *restrict cmd,
                              const Block *restrict body, Block *restrict d) {
    for (int k = 0; k < nb; k++) {
        const float qw = x[3][k], qx = x[4][k], qy = x[5][k], qz = x[6][k];
        const float vx = x[7][k], vy = x[8][k], vz = x[9][k], wx = x[10][k], wy = x[11][k], wz = x[12][k];
        const float mass = body[0][k], ixx = body[1][k], iyy = body[2][k], izz = body[3][k];
        const float kf = body[4][k], km = body[5][k], tau = body[6][k], drag = body[7][k];
        float total = 0.0f, roll = 0.0f, pitch = 0.0f, yaw = 0.0f;
        #pragma GCC unroll 32
        for (int r = 0; r < R; r++) {
            const float thrust = kf * x[13 + r][k] * x[13 + r][k];
            total = r == 0 ? thrust : total + thrust;  /* sum(thrusts[1:], thrusts[0]) */
            roll += thrust * ROTOR_Y[r];                /* sum() starts at 0: 0 + t0 y0 is t0 y0 exactly */
            pitch += thrust * ROTOR_X[r];
            yaw += thrust * ROTOR_YAW[r];
        }
        pitch = -pitch;
        yaw = km * yaw;
        const float bx = 2.0f * (qx * qz + qw * qy), by = 2.0f * (qy * qz - qw * qx);
        const float bz = 1.0f - 2.0f * (qx * qx + qy * qy);
        const float fx = (total * bx + body[8][k]) - drag * vx;
        const float fy = (total * by + body[9][k]) - drag * vy;
        const float fz = (total * bz + body[10][k]) - drag * vz;
        const float tx = roll + body[11][k], ty = pitch + body[12][k], tz = yaw + body[13][k];
        const float inv_mass = 1.0f / mass;
        d[0][k] = vx;
        d[1][k] = vy;
        d[2][k] = vz;
        d[3][k] = 0.5f * ((-qx * wx - qy * wy) - qz * wz);
        d[4][k] = 0.5f * ((qw * wx + qy * wz) - qz * wy);
        d[5][k] = 0.5f * ((qw * wy + qz * wx) - qx * wz);
        d[6][k] = 0.5f * ((qw * wz + qx * wy) - qy * wx);
        d[7][k] = fx * inv_mass;
        d[8][k] = fy * inv_mass;
        d[9][k] = fz * inv_mass - GRAVITY;
        d[10][k] = (tx - (wy * izz * wz - wz * iyy * wy)) / ixx;
        d[11][k] = (ty - (wz * ixx * wx - wx * izz * wz)) / iyy;
        d[12][k] = (tz - (wx * iyy * wy - wy * ixx * wx)) / izz;
        #pragma GCC unroll 32
        for (int r = 0; r < R; r++) d[13 + r][k] = (cmd[r][k] - x[13 + r][k]) / tau;
    }
}

/* x = s + h * d for every variable of `nb` environments. */
static inline void stage(int nb, const Block *restrict s, float h, const Block *restrict d, Block *restrict x) {
    for (int q = 0; q < STATE; q++)
        for (int k = 0; k < nb; k++) x[q][k] = s[q][k] + h * d[q][k];
}

/* SUBSTEPS classic RK4 steps with the command held, the quaternion renormalized after each (dynamics.rk4_columns). */
static inline void rk4(int nb, Block *restrict s, const Block *restrict cmd, const Block *restrict body) {
    Block k1[STATE], k2[STATE], k3[STATE], k4[STATE], x[STATE];
    for (int sub = 0; sub < SUBSTEPS; sub++) {
        derivative(nb, s, cmd, body, k1);
        stage(nb, s, HALF_H, k1, x);
        derivative(nb, x, cmd, body, k2);
        stage(nb, s, HALF_H, k2, x);
        derivative(nb, x, cmd, body, k3);
        stage(nb, s, FULL_H, k3, x);
        derivative(nb, x, cmd, body, k4);
        for (int q = 0; q < STATE; q++)
            for (int k = 0; k < nb; k++)
                s[q][k] = s[q][k] + SIXTH_H * (((k1[q][k] + 2.0f * k2[q][k]) + 2.0f * k3[q][k]) + k4[q][k]);
        for (int k = 0; k < nb; k++) {
            const float inv = 1.0f / sqrtf(((s[3][k] * s[3][k] + s[4][k] * s[4][k]) + s[5][k] * s[5][k]) +
                                           s[6][k] * s[6][k]);
            s[3][k] *= inv;
            s[4][k] *= inv;
            s[5][k] *= inv;
            s[6][k] *= inv;
        }
    }
}

/* ------------------------------------------------------------------------------------------- the step */
typedef struct {
    /* inputs */
    const float *columns;      /* [STATE, n] */
    const float *history;      /* [n, HIST, R], newest first; history_out may be the same buffer */
    const int64_t *episode_step;
    const float *integral;     /* [3, n] */
    const float *params;       /* [14, n] */
    const int64_t *delay;      /* [n] */
    const int64_t *cursor;     /* [] pool entries taken so far */
    const int64_t *counter;    /* [] noise step counter */
    const int64_t *seed;       /* [] noise seed */
    const float *actions;      /* [n, R] */
    const float *weights;      /* [4] curriculum weights of the first four reward terms */
    const float *pool_state;   /* [STATE, pool] */
    const float *pool_params;  /* [14, pool] */
    const int64_t *pool_delay; /* [pool] */
    /* outputs */
    float *columns_out;
    float *history_out;
    int64_t *episode_step_out;
    float *integral_out;
    float *params_out;
    int64_t *delay_out;
    int64_t *cursor_out;
    int64_t *counter_out;
    float *reward;
    uint8_t *terminated, *truncated, *out_of_bounds, *nonfinite_state, *nonfinite_action;
    float *terms;              /* [n, 7] */
    float *position_error;
    float *observations[NUM_GROUPS];
    float *final_observations[NUM_GROUPS];
    int64_t n, pool_size, threads;
} StepArgs;

static inline uint32_t step_key(int64_t seed, int64_t counter) {
    return lowbias32((uint32_t)((uint64_t)lowbias32((uint32_t)(seed & 0xFFFFFFFF)) + (uint64_t)counter));
}

static void phase_one(const StepArgs *a, int64_t begin, int64_t end, uint32_t key, int64_t *done_count) {
    const int64_t n = a->n;
    /* local restrict copies: stores through one output cannot change the others, so the loops vectorize */
    const float *restrict actions_ = a->actions;
    const float *restrict columns_ = a->columns;
    float *restrict columns_out_ = a->columns_out;
    const int64_t *restrict delay_ = a->delay;
    int64_t *restrict delay_out_ = a->delay_out;
    const int64_t *restrict episode_step_ = a->episode_step;
    int64_t *restrict episode_step_out_ = a->episode_step_out;
    float *const *final_observations_ = a->final_observations;
    const float *history_ = a->history;  /* may be history_out itself: updated in place */
    float *history_out_ = a->history_out;
    const float *restrict integral_ = a->integral;
    float *restrict integral_out_ = a->integral_out;
    uint8_t *restrict nonfinite_action_ = a->nonfinite_action;
    uint8_t *restrict nonfinite_state_ = a->nonfinite_state;
    float *const *observations_ = a->observations;
    uint8_t *restrict out_of_bounds_ = a->out_of_bounds;
    const float *restrict params_ = a->params;
    float *restrict params_out_ = a->params_out;
    float *restrict position_error_ = a->position_error;
    float *restrict reward_ = a->reward;
    uint8_t *restrict terminated_ = a->terminated;
    float *restrict terms_ = a->terms;
    uint8_t *restrict truncated_ = a->truncated;
    const float *restrict weights_ = a->weights;
    int64_t count = 0;
    for (int64_t b0 = begin; b0 < end; b0 += BLOCK) {
        const int nb = (int)(end - b0 < BLOCK ? end - b0 : BLOCK);
        /* (a) the block as structure of arrays: loops over environments that the compiler vectorizes */
        Block S[STATE], BODY[14], ACT[R], CMD[R], INTEG[3], TERMS[7];
        Block NZ[NOISE_K > 0 ? NOISE_K : 1];
        uint8_t DONE[BLOCK];
        int32_t ACTION_FINITE[BLOCK];
        for (int q = 0; q < STATE; q++) copy_floats(S[q], columns_ + q * n + b0, nb);
        for (int q = 0; q < 14; q++) copy_floats(BODY[q], params_ + q * n + b0, nb);
        /* Every environment keeps its parameters; phase two overwrites those of the ones that ended. Copied here as
         * whole columns: written per environment in (b), for those that went on, the 14 strided stores per row took
         * ~7% of the step (perf, 4096 environments). */
        for (int q = 0; q < 14; q++) copy_floats(params_out_ + q * n + b0, BODY[q], nb);
        for (int k = 0; k < nb; k++) delay_out_[b0 + k] = delay_[b0 + k];
        for (int k = 0; k < nb; k++) {
            const int64_t i = b0 + k;
            /* Each environment's history row (HIST * R floats, 512 bytes by default) is read in this loop, one row
             * per iteration: their loads stalled on memory (~18% of the step's samples at line `previous = ...`,
             * perf at 4096 environments). Fetching the row PREFETCH_ROWS environments ahead hides that wait. */
            if (i + PREFETCH_ROWS < end) {
                const char *ahead = (const char *)(history_ + (i + PREFETCH_ROWS) * HIST * R);
                for (int byte = 0; byte < HIST * R * (int)sizeof(float); byte += 64) __builtin_prefetch(ahead + byte);
            }
            int finite = 1;
            #pragma GCC unroll 32
            for (int r = 0; r < R; r++) finite &= finite_bits(actions_[i * R + r]);
            const int64_t d = delay_[i];
            const int64_t lag = d > 0 ? d - 1 : 0;
            float t3 = 0.0f, t4 = 0.0f, t5 = 0.0f;
            #pragma GCC unroll 32
            for (int r = 0; r < R; r++) {
                float v = finite ? actions_[i * R + r] : HOVER_ACTION;
                v = v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v);
                const float previous = history_[i * HIST * R + r];
                const float delayed = history_[i * HIST * R + lag * R + r]; /* loaded always: no branch */
                const float applied = (MAX_DELAY > 0) & (d > 0) ? delayed : v;
                CMD[r][k] = RPM_MIN + (applied + 1.0f) * RPM_HALF_SPAN;
                ACT[r][k] = v;
                const float dh = v - HOVER_ACTION, dp = v - previous;
                t3 += dh * dh;
                t4 += dp * dp;
                t5 += v * v;
            }
            TERMS[3][k] = t3;
            TERMS[4][k] = t4;
            TERMS[5][k] = t5;
            ACTION_FINITE[k] = finite;
        }
        rk4(nb, S, CMD, BODY);
        int32_t STATE_FINITE[BLOCK], OUTSIDE[BLOCK], TERMINATED[BLOCK];
        /* floats and 32-bit masks only: mixed with 64-bit and byte stores this loop did not vectorize */
        #pragma GCC ivdep /* the outputs are distinct tensors: no run-time alias checks */
        for (int k = 0; k < nb; k++) {
            const int64_t i = b0 + k;
            int32_t state_finite = 1;
            #pragma GCC unroll 32
            for (int q = 0; q < STATE; q++) state_finite &= finite_bits(S[q][k]);
            const uint32_t keep = 0U - (uint32_t)state_finite; /* all ones, or zero: selects as bit masks vectorize */
            #pragma GCC unroll 32
            for (int q = 0; q < STATE; q++) {
                S[q][k] = bits_to_float(float_to_bits(S[q][k]) & keep);
                columns_out_[q * n + i] = S[q][k];
            }
            const float px = S[0][k], py = S[1][k], pz = S[2][k];
            const float pos_sq = (px * px + py * py) + pz * pz;
            const float distance = sqrtf(pos_sq);
            TERMS[0][k] = pos_sq;
            TERMS[1][k] = 1.0f - S[3][k] * S[3][k];
            TERMS[2][k] = (S[7][k] * S[7][k] + S[8][k] * S[8][k]) + S[9][k] * S[9][k];
            TERMS[6][k] = distance;
            const int32_t outside = (fabsf(px) > POSITION_LIMIT) | (fabsf(py) > POSITION_LIMIT) |
                                    (fabsf(pz) > POSITION_LIMIT) | !state_finite;
            const int32_t terminated = outside | !ACTION_FINITE[k];
            const float weighted = ((TERMS[0][k] * weights_[0] + TERMS[1][k] * weights_[1]) +
                                    TERMS[2][k] * weights_[2]) + TERMS[3][k] * weights_[3];
            float shaped = REWARD_CONSTANT - REWARD_SCALE * weighted;
            shaped = ((shaped - REWARD_ACTION_RATE * TERMS[4][k]) - REWARD_ACTION_MAGNITUDE * TERMS[5][k]) -
                     REWARD_POSITION_LINEAR * distance;
            shaped = shaped < REWARD_FLOOR ? REWARD_FLOOR : shaped;
            reward_[i] = shaped - REWARD_TERMINATION_PENALTY * (float)terminated;
            position_error_[i] = bits_to_float((float_to_bits(distance) & keep) | (0x7F800000U & ~keep)); /* inf */
            STATE_FINITE[k] = state_finite;
            OUTSIDE[k] = outside;
            TERMINATED[k] = terminated;
            #pragma GCC unroll 32
            for (int q = 0; q < 3; q++) {
                float v = integral_[q * n + i] + S[q][k] * DT;
                v = v < -INTEGRAL_LIMIT ? -INTEGRAL_LIMIT : (v > INTEGRAL_LIMIT ? INTEGRAL_LIMIT : v);
                INTEG[q][k] = v;
                integral_out_[q * n + i] = v;
            }
        }
        for (int k = 0; k < nb; k++) {
            const int64_t i = b0 + k;
            const int terminated = TERMINATED[k], state_finite = STATE_FINITE[k];
            const int64_t step = episode_step_[i] + 1;
            const int truncated = (step >= EPISODE_STEPS) & !terminated;
            terminated_[i] = (uint8_t)terminated;
            truncated_[i] = (uint8_t)truncated;
            nonfinite_state_[i] = (uint8_t)!state_finite;
            nonfinite_action_[i] = (uint8_t)!ACTION_FINITE[k];
            out_of_bounds_[i] = (uint8_t)(OUTSIDE[k] & state_finite);
            episode_step_out_[i] = step;
            DONE[k] = (uint8_t)(terminated | truncated);
        }
        /* observation noise, one Box-Muller pair per two columns where the layout allows */
#if NOISE_K > 0 && NOISE_K % 2 == 0
        for (int j = 0; j < NOISE_K / 2; j++)
            for (int k = 0; k < nb; k++)
                normal_pair(key, (uint32_t)(j * n + b0 + k), &NZ[j][k], &NZ[j + NOISE_K / 2][k]);
#elif NOISE_K > 0
        for (int j = 0; j < NOISE_K; j++)
            for (int k = 0; k < nb; k++) NZ[j][k] = noise_element(key, j, b0 + k, n);
#else
        (void)key;
        (void)NZ;
#endif
        /* the observation groups' computed columns, for the whole block at once */
        float DELAY[BLOCK];
        for (int k = 0; k < nb; k++) DELAY[k] = (float)delay_[b0 + k];
        Block STAGED[STAGED_COLUMNS > 0 ? STAGED_COLUMNS : 1];
        stage_groups(nb, S, INTEG, BODY, NZ, DELAY, STAGED);
        /* (b) row writes: history, reward terms, and the observations: to act on, or final where an episode ended */
        for (int k = 0; k < nb; k++) {
            const int64_t i = b0 + k;
            /* The history is updated in place (`history` and `history_out` are one buffer): its row is read back
             * from the caches it was loaded into in (a), where writing a fresh tensor went to memory. Against a new
             * tensor each step: 1.09-1.16x at 4096 environments (bench/native_step_ab.py, one process). */
            float *hist = history_out_ + i * HIST * R;
            float older[(HIST - 1) * R > 0 ? (HIST - 1) * R : 1];
            copy_floats(older, history_ + i * HIST * R, (HIST - 1) * R);
            #pragma GCC unroll 32
            for (int r = 0; r < R; r++) hist[r] = ACT[r][k];
            copy_floats(hist + R, older, (HIST - 1) * R);
            #pragma GCC unroll 32
            for (int t = 0; t < 7; t++) terms_[i * 7 + t] = TERMS[t][k];
            /* an episode that goes on acts on these observations; one that ended keeps them as its final ones
             * (the rows of the others stay unwritten: `final_observations` is defined where an episode ended) */
            write_staged(DONE[k] ? final_observations_ : observations_, i, k, STAGED, hist);
            count += DONE[k];
        }
    }
    *done_count = count;
}

/* Environments that ended take their next pool entries; `taken` counts the entries taken before `begin`. */
static void phase_two(const StepArgs *a, int64_t begin, int64_t end, uint32_t key, int64_t taken) {
    const int64_t n = a->n, pool = a->pool_size;
    for (int64_t i = begin; i < end; i++) {
        if (!(a->terminated[i] | a->truncated[i])) continue;
        taken++;
        const int64_t entry = ((*a->cursor + taken - 1) % pool + pool) % pool;
        /* the new episode's values as a block of one environment, for the same writers as phase one */
        Block S[STATE], INTEG[3], BODY[14], NZ[NOISE_K > 0 ? NOISE_K : 1];
        Block STAGED[STAGED_COLUMNS > 0 ? STAGED_COLUMNS : 1];
        #pragma GCC unroll 32
        for (int q = 0; q < STATE; q++) {
            S[q][0] = a->pool_state[q * pool + entry];
            a->columns_out[q * n + i] = S[q][0];
        }
        #pragma GCC unroll 32
        for (int q = 0; q < 14; q++) {
            BODY[q][0] = a->pool_params[q * pool + entry];
            a->params_out[q * n + i] = BODY[q][0];
        }
        a->delay_out[i] = a->pool_delay[entry];
        const float delay = (float)a->pool_delay[entry];
        float *hist = a->history_out + i * HIST * R;
        for (int q = 0; q < HIST * R; q++) hist[q] = HOVER_ACTION;
        #pragma GCC unroll 32
        for (int q = 0; q < 3; q++) {
            INTEG[q][0] = 0.0f;
            a->integral_out[q * n + i] = 0.0f;
        }
        a->episode_step_out[i] = 0;
        for (int j = 0; j < NOISE_K; j++) NZ[j][0] = noise_element(key, j, i, n);
        stage_groups(1, S, INTEG, BODY, NZ, &delay, STAGED);
        write_staged(a->observations, i, 0, STAGED, hist);
    }
}

/* The step of `a->n` environments on `a->threads` threads (OpenMP, the runtime torch itself uses). */
void robot_ac_quadrotor_step(const StepArgs *a) {
    const uint32_t key = step_key(*a->seed, *a->counter);
    int64_t counts[MAX_THREADS] = {0};
    int threads = (int)(a->threads < 1 ? 1 : (a->threads > MAX_THREADS ? MAX_THREADS : a->threads));
    if (a->n < 256) threads = 1;  /* below this, waking the workers costs more than the work */
#pragma omp parallel num_threads(threads)
    {
#ifdef _OPENMP
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        const int t = 0, nt = 1;
#endif
        /* contiguous ranges, split on block boundaries */
        const int64_t blocks = (a->n + BLOCK - 1) / BLOCK;
        const int64_t begin = (blocks * t / nt) * BLOCK, stop = (blocks * (t + 1) / nt) * BLOCK;
        const int64_t end = stop < a->n ? stop : a->n;
        int64_t done = 0;
        if (begin < end) phase_one(a, begin, end, key, &done);
        counts[t] = done;
#pragma omp barrier
        int64_t taken = 0;
        for (int u = 0; u < t; u++) taken += counts[u];
        if (begin < end) phase_two(a, begin, end, key, taken);
    }
    int64_t total = 0;
    for (int u = 0; u < MAX_THREADS; u++) total += counts[u];
    *a->cursor_out = *a->cursor + total;
    *a->counter_out = *a->counter + 1;
}
