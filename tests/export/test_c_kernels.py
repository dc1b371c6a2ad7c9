"""The fast C pieces: rational tanh vs libm, blocked VFP kernels on odd shapes, exact plan rewrites."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from onnx import helper
from onnx_builders import make_model, rand

import robot_ac.export.verify_c as verify_c
from robot_ac.export import c_kernels
from robot_ac.export.onnx_graph import build_plan
from robot_ac.export.onnx_to_c import export_onnx_to_c, generate_c
from robot_ac.export.plan_opt import FusedElementwiseOp, optimize
from robot_ac.export.verify_c import arm_toolchain_missing, verify

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler 'cc' on PATH")

TANH_SWEEP = r"""
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
%(tanh)s
static float from_bits(uint32_t b) { float f; memcpy(&f, &b, sizeof f); return f; }
int main(void)
{
    double worst = 0.0;
    float worst_x = 0.0f;
    unsigned long n = 0;
    /* every 29th float from +0 to 16 (beyond the clamp), both signs: ~1.1e7 points */
    for (uint32_t b = 0; b <= 0x41800000u; b += 29u) {
        for (int s = 0; s < 2; ++s) {
            const float x = s ? -from_bits(b) : from_bits(b);
            const double err = fabs((double)robot_ac_tanhf(x) - tanh((double)x));
            if (!(err <= worst)) { worst = err; worst_x = x; }
            ++n;
        }
    }
    const float big = robot_ac_tanhf(3.0e38f), nbig = robot_ac_tanhf(-INFINITY);
    const float nan_out = robot_ac_tanhf(NAN), zero = robot_ac_tanhf(-0.0f);
    printf("%%lu %%.9e %%.9g %%.9g %%.9g %%d %%d\n", n, worst, worst_x, big, nbig, isnan(nan_out) ? 1 : 0,
           signbit(zero) ? 1 : 0);
    return 0;
}
"""


@needs_cc
def test_rational_tanh_matches_libm_on_a_dense_grid(tmp_path):
    src = tmp_path / "sweep.c"
    src.write_text(TANH_SWEEP % {"tanh": "\n".join(c_kernels.tanh_source())})
    exe = tmp_path / "sweep"
    subprocess.run(["cc", *verify_c.HOST_CFLAGS, str(src), "-o", str(exe), "-lm"], check=True)
    fields = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    n, worst, worst_x, big, nbig, nan_ok, neg_zero = fields
    assert int(n) > 10_000_000
    # onnxruntime's own float Tanh is off by up to 3.25e-7 from double tanh on [-10, 10]
    assert float(worst) < 4e-7, f"max abs error {worst} at x = {worst_x}"
    assert float(big) == 1.0 and float(nbig) == -1.0
    assert nan_ok == "1" and neg_zero == "1"


def chain(widths: list[int], seed: int, bias: list[bool] | None = None):
    """Dense layers of the given widths with Tanh between; ``bias[i]`` False uses a bare MatMul."""
    rng = np.random.default_rng(seed)
    nodes, inits, prev = [], {}, "obs"
    for i, (k, n) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        last = i == len(widths) - 2
        out = "act" if last else f"h{i}"
        lin = out if last else f"z{i}"
        inits[f"W{i}"] = rand(rng, n, k, scale=1 / np.sqrt(k))
        if bias is None or bias[i]:
            inits[f"b{i}"] = rand(rng, n, scale=0.3)
            nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"b{i}"], [lin], name=f"fc{i}", transB=1))
        else:
            inits[f"W{i}"] = np.ascontiguousarray(inits[f"W{i}"].T)
            nodes.append(helper.make_node("MatMul", [prev, f"W{i}"], [lin], name=f"mm{i}"))
        if not last:
            nodes.append(helper.make_node("Tanh", [lin], [out], name=f"tanh{i}"))
        prev = out
    return make_model(nodes, inits, widths[0], widths[-1])


# k = 1, 8 (one unrolled group), 6/13/7/9 (tails 2/1/3/1), 3, 12, 2, 5; n = 13 (8+4+1), 7 (4+3), 9 (8+1), 2, 3
CHAINS = [
    ([1, 8, 6, 13, 7, 9, 4, 3], None),
    ([3, 12, 2, 5, 16, 4], [True, False, True, False, True]),
]


@needs_cc
@pytest.mark.parametrize("widths,bias", CHAINS)
def test_kernel_shapes_host_and_cortex_m4_bit_identical(widths, bias, tmp_path):
    model = chain(widths, seed=len(widths), bias=bias)
    out = tmp_path / "c"
    export_onnx_to_c(model, out)
    source = (out / "policy.c").read_text()
    assert "robot_ac_gemv8x" in source and "robot_ac_gemv4x" in source
    plan = build_plan(model)
    obs = verify_c.random_observations(plan, 400, seed=1)
    ref = verify_c.reference_actions(model, obs, plan.n_act)
    host = verify_c.run_host(out, obs, plan.n_act, tmp_path)
    assert verify_c.compare("host", host, ref, 1e-5, 1e-5).passed
    why = arm_toolchain_missing()
    if why:
        pytest.skip(f"Cortex-M4 part skipped: {why}")
    # vmla rounds the product before adding, like the portable C: same operations, same order, same bits;
    # -O0 puts the kernel's operands through a very different register allocation
    for i, flags in enumerate([(), ("-DROBOT_AC_PORTABLE_C",), ("-O0",)]):
        work = tmp_path / f"m4_{i}"
        work.mkdir()
        elf, _ = verify_c.build_arm(out, work, policy_cflags=flags)
        m4, _ = verify_c.run_qemu(elf, obs, plan.n_act, work)
        assert np.array_equal(m4.view(np.uint32), host.view(np.uint32)), flags


def test_clip_chains_merge_and_elementwise_chains_fuse():
    inits = {"m": np.arange(6, dtype=np.float32), "s": np.full(6, 2.0, np.float32)}
    nodes = [
        helper.make_node("Sub", ["obs", "m"], ["a"], name="sub"),
        helper.make_node("Div", ["a", "s"], ["b"], name="div"),
        helper.make_node("Clip", ["b"], ["c"], name="c1", min=-1.0, max=1.0),
        helper.make_node("Clip", ["c"], ["d"], name="c2", min=0.5, max=3.0),
        helper.make_node("Relu", ["d"], ["act"], name="relu"),
    ]
    plan = optimize(build_plan(make_model(nodes, inits, 6, 6, opset=6)))
    assert len(plan.ops) == 1 and isinstance(plan.ops[0], FusedElementwiseOp)
    clips = [s for s, _ in plan.ops[0].stages if s.kind == "Clip"]
    assert len(clips) == 1 and clips[0].params == {"min": 0.5, "max": 1.0}


@needs_cc
@pytest.mark.parametrize("bounds", [((0.0, 1.0), (2.0, 3.0)), ((-2.0, 5.0), (-1.0, 1.0)), ((1.0, 0.0), (-3.0, 0.5))])
def test_merged_clips_match_onnxruntime_even_when_disjoint(bounds, tmp_path):
    (lo1, hi1), (lo2, hi2) = bounds
    inits = {"lo1": np.float32(lo1), "hi1": np.float32(hi1), "lo2": np.float32(lo2), "hi2": np.float32(hi2)}
    nodes = [
        helper.make_node("Clip", ["obs", "lo1", "hi1"], ["c"], name="first"),
        helper.make_node("Clip", ["c", "lo2", "hi2"], ["act"], name="second"),
    ]
    model = make_model(nodes, {k: np.asarray(v) for k, v in inits.items()}, 5, 5)
    assert generate_c(model).source.count("/* node") == 1
    out = tmp_path / "c"
    export_onnx_to_c(model, out)
    recorded = np.array([[np.nan, -np.inf, np.inf, 0.25, 2.5]] * 2, np.float32)
    report = verify(model, out, n_random=300, recorded=recorded, qemu=False, work_dir=tmp_path / "w")
    assert report.host is not None and report.host.passed, report.host
