# robot_ac: the two set-up commands of the README.
#   make demo   train, evaluate and export the Crazyflie hover policy on the embedded simulator
#   make test   run the test suite
# Both install what they need first (Python packages; Debian packages when run as root).

PYTHON ?= python3
PIP := $(PYTHON) -m pip
STAMP := .setup.stamp
export OMP_WAIT_POLICY := PASSIVE
export CYCLONEDDS_URI := file://$(CURDIR)/tests/cyclonedds-loopback.xml
DEB_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm socat
DEMO_OUT ?= runs/demo

.PHONY: setup system-packages demo test bench lint clean policy

# The stamp only says the install ran once: a checkout moved to another Python (or a fresh environment under the
# same checkout) has the stamp but not the package, so the stamp goes when the package cannot be found.
ifneq ($(shell cd / && $(PYTHON) -c "import importlib.util as u; print(u.find_spec('robot_ac') is not None)" 2>/dev/null),True)
$(shell rm -f $(STAMP))
endif

$(STAMP): pyproject.toml
	# The pinned CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(PIP) install --quiet "torch==2.13.0" || $(PIP) install --quiet "torch>=2.4"
	$(PIP) install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP) system-packages

system-packages:
	@missing=""; \
	for tool in arm-none-eabi-gcc qemu-system-arm socat; do command -v $$tool >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES)) >/dev/null \
	      || echo "warning: could not install $(DEB_PACKAGES); firmware tests will skip"; \
	  else echo "note: install $(DEB_PACKAGES) for the firmware and QEMU tests (they skip without them)"; fi; \
	fi

# train exits 1 when the budget ran out before the criterion held; the demo still evaluates and exports what it got.
demo: setup
	robot-ac train quadrotor-hover --until-success --out $(DEMO_OUT); rc=$$?; [ $$rc -le 1 ]
	-robot-ac eval $(DEMO_OUT)/policy.onnx --episodes 1000
	robot-ac export $(DEMO_OUT)/policy.onnx --c $(DEMO_OUT)/c --verify

# Re-export the shipped reference policy from a run folder (whenever the contract changes): make policy RUN=runs/...
POLICY_DIR := policies/crazyflie_hover
policy:
	robot-ac export $(RUN) --onnx $(POLICY_DIR)/policy.onnx
	-robot-ac eval $(POLICY_DIR)/policy.onnx --episodes 1000 --json $(POLICY_DIR)/eval.json
	$(PYTHON) bench/parameter_sensitivity.py --policy $(POLICY_DIR)/policy.onnx --out $(POLICY_DIR)/parameter_sensitivity.json
	$(PYTHON) -m robot_ac.policy.model_card $(POLICY_DIR)/policy.onnx --eval $(POLICY_DIR)/eval.json --run $(RUN) \
	  --sensitivity $(POLICY_DIR)/parameter_sensitivity.json

test: setup
	$(PYTHON) -m pytest -q

bench: setup
	$(PYTHON) bench/sim_throughput.py

lint:
	ruff check .

clean:
	rm -rf runs build $(STAMP) .pytest_cache
