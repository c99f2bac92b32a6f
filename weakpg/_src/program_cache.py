"""A persistent cache of compiled programs, keyed by what the programs are built from.

JAX's persistent compilation cache skips XLA's compilation, but it keys an entry by the
lowered program, so a warm start still traces and lowers the training program: about
1.5 s of a 2.7 s Pendulum warm start on a 2-core CPU. This cache keys the compiled
executable by the inputs it is built from instead, so that a hit traces, lowers and
compiles nothing. The key is a SHA-256 of

- the fingerprint of the objects the program is built from (environment, policy,
  settings): their classes and, recursively, their attributes, arrays by content;
- weakpg's source, and the version of JAX, jaxlib, NumPy, optax, Python and of every
  package whose classes the fingerprint met;
- JAX's configuration (``jax.config.values``, its cache settings aside), ``XLA_FLAGS``,
  the compiler options and the device.

It is on where JAX's persistent cache is on, in ``weakpg-programs/`` inside its folder.
A program it keeps is named after its entry, so that JAX's cache never holds a twin of a
program whose entry is new (after an upgrade of weakpg): a program JAX loaded from its
own cache cannot be serialised again.
A program is cached only when every object can be fingerprinted: numbers, strings,
arrays, tuples, lists, dicts and objects of classes from weakpg or from an installed,
versioned package. A function, a closure or an object of a class defined in a script
makes it uncacheable, and so does a host callback in the program. Like
``functools.lru_cache``, the cache assumes that nobody patches weakpg's code at run time.
Entries are written atomically, with a checksum; one that cannot be read is compiled
again and replaced. Loading an entry runs it (as JAX's own cache does): keep the folder
as private as the code.
"""

from __future__ import annotations

import contextlib
import copyreg
import enum
import functools
import hashlib
import importlib.metadata
import os
import pickle
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np

from weakpg._src.runs import atomic_write

FOLDER_NAME = "weakpg-programs"
MAX_ENTRIES = 64  # the least recently used entries beyond these are deleted
LOAD_EVENT = "/weakpg/program_cache/load_duration"  # a jax.monitoring event, per loaded program
_MAGIC = b"weakpg-program-2\n"  # 2: PRNG implementations pickled by name
_JAX_CACHE_HIT = "/jax/compilation_cache/cache_hits"
_MAX_DEPTH = 32
NAME_DIGITS = 16  # hex digits of the entry key in a program's name: jit(chunk_<digits>)
_SCALARS = (type(None), bool, int, float, complex, str, bytes)
_CONTAINERS = (tuple, list, dict)
_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: set for classes written in Python


class Unfingerprintable(TypeError):
    """An object whose behaviour its fingerprint would not pin down."""


def folder() -> Path | None:
    """Where the cache lives: inside JAX's persistent cache folder, when that is on."""
    directory = jax.config.values.get("jax_compilation_cache_dir")
    if not directory or not jax.config.values.get("jax_enable_compilation_cache", True):
        return None
    return Path(directory) / FOLDER_NAME


def fingerprint(obj: Any) -> str:
    """A SHA-256 of ``obj``'s class and contents, recursively; raises ``Unfingerprintable``."""
    digest = hashlib.sha256()
    for token in _tokens(obj, set(), 0):
        digest.update(token.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _tokens(obj: Any, active: set[int], depth: int) -> Iterator[str]:
    """The fingerprint's tokens of ``obj``; ``active`` holds the ids being walked (cycles)."""
    kind = type(obj)
    if kind in _SCALARS:
        yield f"{kind.__name__}:{obj!r}"
        return
    if isinstance(obj, jax.core.Tracer):
        raise Unfingerprintable("a traced value")
    if isinstance(obj, (np.ndarray, np.generic, jax.Array)):
        yield from _array_tokens(obj)
        return
    if depth > _MAX_DEPTH or id(obj) in active:
        raise Unfingerprintable(f"a structure deeper than {_MAX_DEPTH} or cyclic, at a {kind.__qualname__}")
    active.add(id(obj))
    try:
        yield from _container_tokens(obj, active, depth + 1)
    finally:
        active.discard(id(obj))


def _array_tokens(obj: Any) -> Iterator[str]:
    if isinstance(obj, jax.Array) and jax.dtypes.issubdtype(obj.dtype, jax.dtypes.prng_key):
        yield f"key:{jax.random.key_impl(obj)}"
        obj = jax.random.key_data(obj)
    array = np.ascontiguousarray(obj)
    if array.dtype.hasobject:
        raise Unfingerprintable("an array of Python objects")
    yield f"array:{type(obj).__module__}:{array.dtype.str}:{array.shape}:{hashlib.sha256(array).hexdigest()}"


def _container_tokens(obj: Any, active: set[int], depth: int) -> Iterator[str]:
    kind = type(obj)
    if isinstance(obj, type):
        yield f"class:{_class_name(obj)}"
        return
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)):
        yield f"function:{_function_name(obj)}"
        return
    if isinstance(obj, enum.Enum):
        yield f"enum:{_class_name(kind)}.{obj.name}"
        return
    if kind is functools.partial:
        children = [obj.func, obj.args, obj.keywords]
    else:
        if kind not in _CONTAINERS:
            _check_python_class(kind)
        children = list(obj) if isinstance(obj, (tuple, list)) else []
        if isinstance(obj, dict):
            children = [item for k in sorted(obj, key=repr) for item in (k, obj[k])]
        attributes = getattr(obj, "__dict__", {})
        children += [item for k in sorted(attributes) for item in (k, attributes[k])]
    yield f"{_class_name(kind)}[{len(children)}"
    for child in children:
        yield from _tokens(child, active, depth)


@functools.cache
def _check_python_class(kind: type) -> None:
    """Refuse a class whose instances may hold state outside ``__dict__``: one without a
    ``__dict__``, with slots, or with a base written in C (but tuple, list and dict)."""
    for base in kind.__mro__:
        if base is object or base in _CONTAINERS:
            continue
        if not base.__flags__ & _HEAP_TYPE or getattr(base, "__slots__", ()) not in ((), []):
            raise Unfingerprintable(f"{kind.__qualname__} may hold state outside its __dict__")
    if not kind.__dictoffset__:
        raise Unfingerprintable(f"{kind.__qualname__} has no __dict__")


def _class_name(kind: type) -> str:
    """``module.qualname@version`` of a class from weakpg, the standard library or a package."""
    if kind.__module__ == "builtins" or kind in (functools.partial,):
        return kind.__qualname__
    if "<locals>" in kind.__qualname__:
        raise Unfingerprintable(f"{kind.__qualname__} is defined inside a function")
    return f"{kind.__module__}.{kind.__qualname__}@{_package_version(kind.__module__)}"


def _function_name(fn: Any) -> str:
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if module is None or "<" in name or getattr(fn, "__closure__", None):
        raise Unfingerprintable(f"function {name or fn!r} is a lambda, a closure or has no module")
    return f"{module}.{name}@{_package_version(module)}"


@functools.cache
def _package_version(module: str) -> str:
    """weakpg's source digest, Python's version for the standard library, else the package's."""
    top = module.partition(".")[0]
    if top == "weakpg":
        return "source"  # covered by the source digest of the key
    if top in sys.stdlib_module_names or top == "builtins":
        return f"python-{sys.version}"
    try:
        return importlib.metadata.version(top)
    except importlib.metadata.PackageNotFoundError:
        version = getattr(sys.modules.get(top), "__version__", None)
        if version is None:
            raise Unfingerprintable(f"module {module} belongs to no installed, versioned package") from None
        return str(version)


@functools.cache
def _source_digest() -> str:
    """SHA-256 of every Python file of the weakpg package."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def key(name: str, parts: Any, compiler_options: dict[str, Any] | None) -> str | None:
    """The cache key of program ``name`` built from ``parts``, or None when uncacheable."""
    try:
        objects = fingerprint(parts)
    except Unfingerprintable:
        return None
    settings = {k: v for k, v in jax.config.values.items() if "cache" not in k}
    text = "\n".join([_installation(), name, objects, repr(sorted(settings.items())),
                      os.environ.get("XLA_FLAGS", ""), repr(sorted((compiler_options or {}).items()))])
    return hashlib.sha256(text.encode()).hexdigest()


@functools.cache
def _installation() -> str:
    """What a process's programs depend on beyond their inputs: code, versions, device."""
    device = jax.devices()[0]
    return "\n".join([_MAGIC.decode(), _source_digest(), sys.version, np.__version__,
                      *(f"{d}={importlib.metadata.version(d)}" for d in ("jax", "jaxlib", "optax")),
                      device.platform, device.device_kind, device.client.platform_version,
                      str(jax.device_count())])


def compiled(name: str, parts: Any, build: Callable[[], tuple[Callable[..., Any], tuple[Any, ...]]],
             compiler_options: dict[str, Any] | None = None) -> jax.stages.Compiled:
    """Program ``name`` built from ``parts``: loaded from the cache, or built and compiled.

    ``build()`` returns the function and its arguments (arrays or ``jax.ShapeDtypeStruct``)
    and must make both from ``parts`` (and from weakpg's code) alone. It is called on a
    miss only; the function is jitted with ``compiler_options``, lowered and compiled, and
    the program stored when it can be.
    """
    where, entry = folder(), key(name, parts, compiler_options)
    path = None if where is None or entry is None else where / f"{entry}.bin"
    if path is not None:
        loaded = _load(path, name)
        if loaded is not None:
            return loaded
    fun, args = build()
    # Named after its entry, a program has no twin in JAX's cache (which keys an entry by
    # the lowered program, its name included) from a process whose entry differed, as
    # after an upgrade of weakpg: one JAX loaded could not be stored (below).
    renamed = _named(fun, name if path is None else f"{name}_{entry[:NAME_DIGITS]}")
    lowered = jax.jit(renamed, compiler_options=compiler_options).lower(*args)
    hits: list[str] = []
    listener = hits.append
    jax.monitoring.register_event_listener(listener)
    try:
        program = lowered.compile()
    finally:
        jax.monitoring.unregister_event_listener(listener)
    # XLA serialises only an executable it compiled: one JAX loaded from its own cache
    # comes back without its kernels. Such a program is not stored (another thread's hit
    # counts too: storing nothing is always safe).
    if path is not None and _JAX_CACHE_HIT not in hits:
        _store(path, program)
    return program


def _named(fun: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``fun`` under the name ``name``, which ``jax.jit`` gives its compiled program."""
    def renamed(*args: Any) -> Any:
        return fun(*args)

    renamed.__name__ = renamed.__qualname__ = name
    return renamed


def _load(path: Path, name: str) -> jax.stages.Compiled | None:
    """The entry at ``path``, or None when there is none or it cannot be read."""
    from jax.experimental import serialize_executable

    start = time.perf_counter()
    try:
        data = path.read_bytes()
    except OSError:
        return None
    header, body = data[:len(_MAGIC)], data[len(_MAGIC):]
    checksum, payload = body[:64], body[64:]
    try:
        if header != _MAGIC or checksum.decode(errors="replace") != hashlib.sha256(payload).hexdigest():
            raise ValueError("damaged")
        program = serialize_executable.deserialize_and_load(*pickle.loads(payload))
    except Exception:  # damaged, or from another build of jaxlib: deleted and compiled again
        path.unlink(missing_ok=True)
        return None
    os.utime(path)  # recently used
    jax.monitoring.record_event_duration_secs(LOAD_EVENT, time.perf_counter() - start, fun_name=name)
    return program


def _store(path: Path, program: jax.stages.Compiled) -> None:
    """Save ``program`` at ``path`` when it can be saved; keep ``MAX_ENTRIES`` entries."""
    from jax.experimental import serialize_executable

    unloaded = getattr(getattr(program, "_executable", None), "_unloaded_executable", None)
    if unloaded is None or getattr(unloaded, "host_callbacks", True):
        return  # a host callback's address means nothing to another process
    try:
        with _prng_by_name():
            payload = pickle.dumps(serialize_executable.serialize(program))
    except Exception:  # noqa: BLE001 - programs XLA cannot serialise are just not cached
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, _MAGIC + hashlib.sha256(payload).hexdigest().encode() + payload)
        entries = sorted(path.parent.glob("*.bin"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-MAX_ENTRIES]:
            old.unlink(missing_ok=True)
    except OSError:
        return  # a read-only or full cache folder: the program runs uncached


def _registered_prng(name: str) -> Any:
    """The PRNG implementation registered in this process under ``name``."""
    from jax._src.random import prng

    return prng.prngs[name]


@contextlib.contextmanager
def _prng_by_name() -> Iterator[None]:
    """Pickle PRNG implementations by name while the block runs. By value (a NamedTuple),
    a program's key types come back in another process as copies of the registered
    implementation, whose keys ``jax.random`` refuses (``poisson``: "only implemented
    for the threefry2x32 RNG")."""
    from jax._src.random import prng

    copyreg.dispatch_table[prng.PRNGImpl] = lambda impl: (_registered_prng, (impl.name,))
    try:
        yield
    finally:
        copyreg.dispatch_table.pop(prng.PRNGImpl, None)
