"""Fast C building blocks for the exported policy: a blocked matrix-vector kernel and a rational tanh.

Why: on a Cortex-M4 the forward pass is dominated by the dense layers. GCC at ``-O2 -std=c99`` emits one
``vldr`` per weight plus a separate ``vmul``/``vadd`` (about 3.5 instructions per multiply-add), while
``vldmia`` loads up to 16 weights in one instruction. The kernels below therefore keep 8 (or 4)
accumulators in registers and stream a re-laid-out weight block with ``vldmia`` + ``vmla``: about 1.1
instructions per multiply-add. ``vmla`` rounds the product before the add, exactly like the portable C
fallback compiled without contraction, so the host build and the Cortex-M4 build give the same bits.

The fallback (every other target, or ``-DROBOT_AC_PORTABLE_C``) is plain C99 with the same arithmetic order.
"""

from __future__ import annotations

import numpy as np

from robot_ac.c_source import c_float

# Blocks of output columns the kernels handle; the rest (< 4 columns) uses a plain loop.
BLOCK_WIDTHS = (8, 4)
K_GROUP = 4  # inputs per loop iteration (4 x values in s8..s11)
WEIGHT_REGS = 16  # s16..s31 hold one vldmia of weights

ASM_GUARD = "ROBOT_AC_VFP_ASM"

# Rational approximation tanh(x) ~ x P(x^2) / Q(x^2) on |x| <= 9 (beyond, tanh rounds to +-1 in float32),
# degree 13/6, the same form and clamp as onnxruntime's float Tanh (onnxruntime/core/mlas/lib/tanh.cpp, which
# uses Eigen's coefficients). Coefficients here are our own
# minimax fit (linear-programming differential correction, float64, then rounded to float32). Max abs
# error of the float32 evaluation vs. double tanh: 3.5e-7 (onnxruntime's own Tanh: 3.25e-7, measured the
# same way); checked over a dense grid by tests/export/test_c_kernels.py.
TANH_CLAMP = 9.0
TANH_P = (
    1.0, 0.13058407604694366, 0.003075716085731983, 1.087101009034086e-05,
    -1.9159717368211204e-08, 4.81423095832767e-11, -7.427530270519289e-14,
)  # fmt: skip
TANH_Q = (1.0, 0.46391725540161133, 0.024381697177886963, 0.0002505695738364011)


def tanh_source() -> list[str]:
    """``robot_ac_tanhf``: branch-free except for the clamp; NaN propagates (the comparisons are false)."""

    def horner(var: str, coeffs: tuple[float, ...]) -> list[str]:
        lines = [f"    float {var} = {c_float(coeffs[-1])};"]
        lines += [f"    {var} = {var} * z + {c_float(c)};" for c in reversed(coeffs[:-1])]
        return lines

    return [
        "/* tanh(x) ~ x P(x^2) / Q(x^2), |x| clamped to 9 where float32 tanh is +-1; max abs error 3.5e-7",
        " * (onnxruntime's own Tanh: 3.25e-7). Define ROBOT_AC_LIBM_TANH to use libm's tanhf instead. */",
        "static float robot_ac_tanhf(float x)",
        "{",
        "#ifdef ROBOT_AC_LIBM_TANH",
        "    return tanhf(x);",
        "#else",
        f"    x = x > {c_float(TANH_CLAMP)} ? {c_float(TANH_CLAMP)} : x;",
        f"    x = x < {c_float(-TANH_CLAMP)} ? {c_float(-TANH_CLAMP)} : x;",
        "    const float z = x * x;",
        *horner("p", TANH_P),
        *horner("q", TANH_Q),
        "    return (x * p) / q;",
        "#endif",
        "}",
    ]


def asm_guard_source() -> list[str]:
    """Use the VFP assembly only where it assembles: GCC/Clang on 32-bit Arm with single-precision VFP."""
    return [
        "#if defined(__GNUC__) && defined(__arm__) && defined(__ARM_FP) && (__ARM_FP & 4) && "
        "!defined(ROBOT_AC_PORTABLE_C)",
        f"#define {ASM_GUARD} 1",
        "#endif",
    ]


# --------------------------------------------------------------------------------------------------
# Blocked matrix-vector product y[j] = sum_k x[k] w[k][j] + b[j]


def column_blocks(n: int) -> list[tuple[int, int]]:
    """(first column, width) of the kernel blocks; columns past the last block use the plain loop."""
    blocks, start = [], 0
    for width in BLOCK_WIDTHS:
        while n - start >= width:
            blocks.append((start, width))
            start += width
    return blocks


def blocked_weights(w_nk: np.ndarray, n: int, k: int) -> np.ndarray:
    """Re-lay a [n][k] weight matrix: each kernel block as [k][width], then leftover rows as [n][k]."""
    w = np.asarray(w_nk, np.float32).reshape(n, k)
    parts = [w[start : start + width].T.reshape(-1) for start, width in column_blocks(n)]
    done = sum(width for _, width in column_blocks(n))
    parts.append(w[done:].reshape(-1))
    return np.concatenate(parts).astype(np.float32)


def kernel_name(width: int, k: int, bias: bool) -> str:
    return f"robot_ac_gemv{width}x{k}{'' if bias else '_nobias'}"


def _regs(first: int, count: int) -> str:
    return f"{{s{first}}}" if count == 1 else f"{{s{first}-s{first + count - 1}}}"


def _group_asm(width: int, n_k: int, first_k: bool) -> list[str]:
    """One group of ``n_k`` (<= 4) inputs: load x, stream weights in chunks of 16 registers, accumulate."""
    lines = [f"vldmia %[x]!, {_regs(8, n_k)}"]
    total = n_k * width
    for chunk in range(0, total, WEIGHT_REGS):
        size = min(WEIGHT_REGS, total - chunk)
        lines.append(f"vldmia %[w]!, {_regs(16, size)}")
        for flat in range(chunk, chunk + size):
            i, j = divmod(flat, width)
            op = "vmul.f32" if (first_k and i == 0) else "vmla.f32"
            lines.append(f"{op} s{j}, s{8 + i}, s{16 + flat - chunk}")
    return lines


def kernel_source(width: int, k: int, bias: bool) -> list[str]:
    """The kernel for one (block width, input length) pair: VFP assembly, else portable C (same order)."""
    name = kernel_name(width, k, bias)
    sig = f"static void {name}(const float *x, const float *w, const float *b, float *y)"
    body_asm: list[str] = []
    first = min(K_GROUP, k)
    body_asm += _group_asm(width, first, first_k=True)
    loops = (k - first) // K_GROUP
    if loops == 1:
        body_asm += _group_asm(width, K_GROUP, first_k=False)
    elif loops > 1:
        body_asm += ["1:", *_group_asm(width, K_GROUP, first_k=False), "subs %[n], %[n], #1", "bne 1b"]
    tail = (k - first) % K_GROUP
    if tail:
        body_asm += _group_asm(width, tail, first_k=False)
    if bias:
        body_asm.append(f"vldmia %[b], {_regs(8, width)}")
        body_asm += [f"vadd.f32 s{j}, s{j}, s{8 + j}" for j in range(width)]
    body_asm.append(f"vstmia %[y], {_regs(0, width)}")
    clobbers = ", ".join(f'"s{r}"' for r in range(32))  # s16-s31 are callee-saved: one vpush/vpop
    asm_text = "\n".join(f'        "{line}\\n\\t"' for line in body_asm)
    operands = '[x] "+r"(x), [w] "+r"(w)' + (', [n] "+r"(n)' if loops > 1 else "")
    lines = [
        f"/* y[0..{width - 1}] = sum_k x[k] * w[k * {width} + j]{' + b[j]' if bias else ''}, k < {k} */",
        sig,
        "{",
        f"#ifdef {ASM_GUARD}",
    ]
    if loops > 1:
        lines.append(f"    unsigned n = {loops}u;")
    lines += [
        "    __asm__ volatile(",
        asm_text,
        f"        : {operands}",
        '        : [b] "r"(b), [y] "r"(y)',
        f'        : {clobbers}, "cc", "memory");',
    ]
    lines += [
        "#else",
        *_portable_body(width, k, bias),
    ]
    if not bias:
        lines.append("    (void)b;")
    lines += ["#endif", "}"]
    return lines


def _portable_body(width: int, k: int, bias: bool) -> list[str]:
    """Plain C99, one named accumulator per column (kept in registers), k ascending: the kernel's order."""

    def rows(indent: str, fmt: str) -> list[str]:
        return [indent + " ".join(fmt.format(j=j) for j in range(i, min(i + 4, width))) for i in range(0, width, 4)]

    return [
        *rows("    ", "float a{j} = x[0] * w[{j}];"),
        f"    for (int k = 1; k < {k}; ++k) {{",
        "        const float xk = x[k];",
        f"        const float *wk = w + k * {width};",
        *rows("        ", "a{j} += xk * wk[{j}];"),
        "    }",
        *rows("    ", "y[{j}] = a{j}" + (" + b[{j}];" if bias else ";")),
    ]
