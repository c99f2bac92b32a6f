"""The persistent cache of compiled programs: its key, its entries, and the driver's use of it."""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import programs_compiled
from jax._src import compilation_cache

import weakpg
from weakpg._src import driver, program_cache
from weakpg._src.config import TrainConfig
from weakpg._src.program_cache import Unfingerprintable, compiled, fingerprint


@pytest.fixture
def cache(tmp_path):
    """JAX's persistent cache (and so this one) in a folder of the test's own."""
    before = jax.config.values["jax_compilation_cache_dir"]
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "xla"))
    compilation_cache.reset_cache()
    yield tmp_path / "xla" / program_cache.FOLDER_NAME
    jax.config.update("jax_compilation_cache_dir", before)
    compilation_cache.reset_cache()


@pytest.fixture
def events():
    """The names of the programs compiled (by XLA, or loaded by JAX's cache) and of those
    loaded by this cache while the test runs."""
    loaded: list[str] = []
    with programs_compiled(loaded) as compiled:
        yield {"compiled": compiled, "loaded": loaded}


def _refuse():
    raise AssertionError("traced and lowered although the cache holds the program")


def _program(scale: float):
    """A program of this module's own (no other test compiles it), and its input."""
    x = jnp.arange(7.0)
    return (lambda: (lambda v: jnp.sin(v) * scale, (x,))), x


def test_equal_objects_share_a_fingerprint_and_any_change_makes_another(lqr):
    policy = weakpg.LinearGaussian(lqr, sigma=0.5)
    config = TrainConfig(estimator="jd", gamma=0.9, iterations=5, env_steps=None)
    same = fingerprint((lqr, weakpg.LinearGaussian(lqr, sigma=0.5), dataclasses.replace(config)))
    assert fingerprint((lqr, policy, config)) == same
    assert fingerprint((lqr, weakpg.LinearGaussian(lqr, sigma=0.5 + 1e-7), config)) != same  # an array's bits
    assert fingerprint((lqr, policy, dataclasses.replace(config, batch_size=257))) != same
    assert fingerprint((lqr, policy, config, 1)) != fingerprint((lqr, policy, config, 1.0))  # types count
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint(jax.random.key(0)) != fingerprint(jax.random.key(1))


def test_what_a_fingerprint_cannot_pin_down_is_refused():
    class Local:
        pass

    def closure():
        return policy

    policy = object()
    cyclic: list = []
    cyclic.append(cyclic)
    for obj, match in [(lambda x: x, "lambda"), (closure, "closure"), (Local(), "inside a function"),
                       (np.random.default_rng(0), "outside its __dict__"), (np.sin, "outside its __dict__"),
                       (cyclic, "cyclic"), (np.array([object()]), "Python objects")]:
        with pytest.raises(Unfingerprintable, match=match):
            fingerprint(obj)
        assert program_cache.key("x", (1, obj), None) is None
    assert fingerprint(textwrap.dedent) != fingerprint(functools.partial(textwrap.dedent, "  a"))


def test_the_key_follows_the_compiler_options_xla_flags_and_jax_config(monkeypatch):
    key = program_cache.key("chunk", (1, 2.0), None)
    assert key == program_cache.key("chunk", (1, 2.0), {})
    assert program_cache.key("init", (1, 2.0), None) != key
    assert program_cache.key("chunk", (1, 2.0), {"xla_backend_optimization_level": 1}) != key
    with jax.numpy_rank_promotion("raise"):
        assert program_cache.key("chunk", (1, 2.0), None) != key
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=true")
    assert program_cache.key("chunk", (1, 2.0), None) != key


def test_a_stored_program_loads_without_tracing_and_computes_the_same(cache, events):
    lower, x = _program(1.5)
    first = compiled("sine", ("sine", 1.5), lower)
    assert len(list(cache.glob("*.bin"))) == 1
    again = compiled("sine", ("sine", 1.5), _refuse)
    assert events["loaded"] == ["sine"]
    np.testing.assert_array_equal(np.asarray(again(x)), np.asarray(first(x)))
    np.testing.assert_allclose(np.asarray(again(x)), np.sin(np.arange(7.0)) * 1.5, rtol=1e-6)
    with pytest.raises(AssertionError, match="traced and lowered"):  # other parts: another program
        compiled("sine", ("sine", 2.5), _refuse)


def test_a_damaged_entry_is_deleted_and_the_program_compiled_again(cache, events):
    lower, x = _program(3.5)
    compiled("sine", ("sine", 3.5), lower)
    (entry,) = cache.glob("*.bin")
    for n, cut in enumerate((0.5, 1.0, 0.0)):
        good = entry.read_bytes()
        damage = good[:int(len(good) * cut)]
        entry.write_bytes(damage[:-1] + bytes([damage[-1] ^ 1]) if cut == 1.0 else damage)
        program = compiled("sine", ("sine", 3.5), lower)
        np.testing.assert_allclose(np.asarray(program(x)), np.sin(np.arange(7.0)) * 3.5, rtol=1e-6)
        assert len(events["loaded"]) == n and not entry.exists()
        for jax_entry in cache.parent.glob("*-cache"):  # so that XLA compiles it, and it is stored
            jax_entry.unlink()
        compiled("sine", ("sine", 3.5), lower)
        compiled("sine", ("sine", 3.5), _refuse)
        assert len(events["loaded"]) == n + 1


def test_programs_that_cannot_be_stored_are_not(cache):
    x = jnp.arange(3.0)

    def with_callback(v):
        return jax.pure_callback(np.cos, jax.ShapeDtypeStruct(v.shape, v.dtype), v)

    program = compiled("callback", ("callback",), lambda: (with_callback, (x,)))
    np.testing.assert_allclose(np.asarray(program(x)), np.cos(np.arange(3.0)), rtol=1e-6)
    assert not cache.exists() or not list(cache.glob("*.bin"))
    # One JAX loaded from its own cache: XLA serialises it without its kernels.
    lower, _ = _program(4.5)
    compiled("sine", ("sine", 4.5), lower)
    for entry in cache.glob("*.bin"):
        entry.unlink()
    compiled("sine", ("sine", 4.5), lower)
    assert not list(cache.glob("*.bin"))


def test_a_program_is_stored_again_after_an_upgrade_though_jax_s_cache_holds_its_twin(cache, monkeypatch):
    lower, x = _program(8.5)
    compiled("sine", ("sine", 8.5), lower)
    monkeypatch.setattr(program_cache, "_installation", lambda: "another build of weakpg")
    # The same lowered program under another entry: named after its entry, it misses JAX's
    # cache, so XLA compiles it and it can be stored (one JAX loaded could not).
    program = compiled("sine", ("sine", 8.5), lower)
    assert len(list(cache.glob("*.bin"))) == 2
    again = compiled("sine", ("sine", 8.5), _refuse)
    np.testing.assert_array_equal(np.asarray(again(x)), np.asarray(program(x)))


_KEY_PROGRAM = """
import sys, jax
from weakpg._src import program_cache
jax.config.update("jax_compilation_cache_dir", sys.argv[1])
loads = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kwargs: loads.append(event) if event == program_cache.LOAD_EVENT else None)
key = jax.random.key(0)
program = program_cache.compiled("split", ("split",), lambda: (jax.random.split, (key,)))
print(len(loads), int(jax.random.poisson(program(key)[0], 3.0)))
"""


def test_keys_from_a_program_another_process_stored_have_the_registered_implementation(tmp_path):
    # Pickled by value, the key type came back as a copy of threefry2x32, which
    # jax.random.poisson refuses ("only implemented for the threefry2x32 RNG").
    outputs = [subprocess.run([sys.executable, "-c", _KEY_PROGRAM, str(tmp_path)], capture_output=True,
                              text=True, check=True).stdout.split() for _ in range(2)]
    assert [loads for loads, _ in outputs] == ["0", "1"]  # compiled and stored, then loaded
    assert outputs[1][1] == outputs[0][1]


_TRAIN_PROGRAM = """
import sys, jax
jax.config.update("jax_compilation_cache_dir", sys.argv[1])
import weakpg
from weakpg.train import TrainConfig, train
env = weakpg.envs.LinearQuadratic(A=[[0.9]], B=[[0.5]], Q=[[1.0]], R=[[0.1]], noise_cov=[[0.1]],
                                  init_cov=[[1.0]])
config = TrainConfig(gamma=0.9, batch_size=8, lr=0.01, iterations=4, env_steps=None, eval_every=2,
                     eval_episodes=2, max_grad_norm=10.0)
_, rows = train(env, weakpg.LinearGaussian(env, sigma=0.5), config)
print("optax" in sys.modules, repr([{k: v for k, v in r.items() if k != "wall_seconds"} for r in rows]))
"""


def test_a_training_whose_programs_are_stored_imports_no_optax(tmp_path):
    # Its state holds no optax class, so loading its programs needs none (0.06-0.18 s).
    outputs = [subprocess.run([sys.executable, "-c", _TRAIN_PROGRAM, str(tmp_path)], capture_output=True,
                              text=True, check=True).stdout.split(" ", 1) for _ in range(2)]
    assert [imported for imported, _ in outputs] == ["True", "False"]  # traced, then loaded
    assert outputs[1][1] == outputs[0][1]


def test_the_least_recently_used_entries_beyond_the_limit_are_deleted(cache, monkeypatch):
    monkeypatch.setattr(program_cache, "MAX_ENTRIES", 2)
    for scale in (5.5, 6.5, 7.5):
        compiled("sine", ("sine", scale), _program(scale)[0])
    assert len(list(cache.glob("*.bin"))) == 2
    with pytest.raises(AssertionError, match="traced and lowered"):
        compiled("sine", ("sine", 5.5), _refuse)


def test_no_cache_folder_without_jax_persistent_cache(cache):
    assert program_cache.folder() == cache
    jax.config.update("jax_enable_compilation_cache", False)
    try:
        assert program_cache.folder() is None
    finally:
        jax.config.update("jax_enable_compilation_cache", True)


def test_a_second_training_loads_its_programs_and_writes_the_same_rows(cache, events, lqr):
    policy = weakpg.LinearGaussian(lqr, sigma=0.5)
    config = TrainConfig(estimator="jd", gamma=0.9, batch_size=40, lr=0.05, schedule_power=0.6, iterations=6,
                         env_steps=None, eval_every=2)
    driver._programs.cache_clear()
    _, rows = driver.train_seeds(lqr, policy, config, seeds=[3, 4])
    assert {"jit(init)", "jit(chunk)"} <= set(events["compiled"]) and len(list(cache.glob("*.bin"))) == 2
    driver._programs.cache_clear()  # as in a new process
    events["compiled"].clear()
    _, again = driver.train_seeds(lqr, weakpg.LinearGaussian(lqr, sigma=0.5), config, seeds=[3, 4])
    assert sorted(events["loaded"]) == ["chunk", "init"] and "jit(chunk)" not in events["compiled"]
    def without_wall_clock(runs):  # repr: nan equals nan
        return repr([[{k: v for k, v in row.items() if k != "wall_seconds"} for row in run] for run in runs])

    assert without_wall_clock(again) == without_wall_clock(rows)
