"""Runs inside the grading kernel: a fingerprint of everything that decides a cell's verdict.

The grader imports this module in every fresh kernel before any learner code runs, takes a
baseline with ``fingerprint(full=True)``, and asks again (through the execute request's
``user_expressions``, which no input or AST transformer sees) before and after each test.
A category whose digest changed means learner code touched the machinery that runs cells
or reports their errors; the grader then asks for the full lists and names the change.

Categories: IPython's input and AST transformers, event callbacks, custom exception
handlers, ``sys`` hooks (excepthook, trace and profile functions ...), the methods of the
shell, kernel and session classes and instances, ``ExecutionResult``, the compiler, the
identity of every built-in, the functions and classes of the libraries the tests use
(``torch``, ``torch.nn``, ``numpy``), built-in names redefined as callables in the learner's
namespace, and classes defined in a cell that subclass a value type (``int``, ``str``,
``tuple``, ``torch.Tensor`` ...) while overriding comparisons (always-equal objects).

Also: the globals of the modules on the execution path (``IPython.core.compilerop``,
``codeop``, ``ast``, ``operator``, ``ipykernel`` ..., every ``course_utils`` module), the
attributes of ``torch``, ``numpy``, ``operator`` and ``math`` compared by identity with the
fresh kernel's, and any subclass of a value type created after the baseline that overrides
comparisons or conversions, whatever its ``__module__``.

``install(name)`` (the grader runs it in every fresh kernel, before any learner code)
takes the private baseline those comparisons need, adds an audit hook that refuses every
later ``sys.addaudithook`` (a learner's hook could record the hidden tests' sources as they
compile), and publishes ``fingerprint`` as the built-in ``name`` (random per kernel) bound
to private copies of this module's functions, globals and built-ins: replacing
``sys.modules['course_utils.grading.probe'].fingerprint`` or a built-in it uses has no
effect on the grader's audit, and is itself reported.

Importing this module imports nothing heavy (``import_libraries`` does, in the kernel);
outside a kernel the shell-related categories are empty.

>>> import json
>>> sorted(json.loads(fingerprint()))[:3]
['always_equal', 'ast_transformers', 'builtins']
>>> "module_globals" in json.loads(fingerprint())
True
"""

from __future__ import annotations

import builtins
import gc
import json
import signal
import sys
import threading
import types
from collections.abc import Iterable
from typing import Any

__all__ = ["LIBRARIES", "WATCHED_MODULES", "fingerprint", "describe", "import_libraries",
           "install"]

# Libraries the tests rely on: their functions and classes are fingerprinted too, so an
# answer that patches ``torch.Tensor.numel`` or ``nn.Linear.__init__`` is caught.
LIBRARIES = ("torch", "torch.nn", "torch.nn.functional", "numpy")

# Modules whose globals decide how a cell is compiled, run and reported: a global replaced
# (``IPython.core.compilerop.compile = ...``) or added over a built-in name is tampering.
WATCHED_MODULES = ("IPython.core.compilerop", "IPython.core.interactiveshell",
                   "IPython.core.async_helpers", "IPython.core.events", "codeop", "ast",
                   "builtins", "ipykernel.ipkernel", "ipykernel.zmqshell",
                   "ipykernel.kernelbase", "ipykernel.iostream", "jupyter_client.session",
                   "zmq.sugar.socket", "operator", "json", "json.encoder", "sys",
                   "threading", "types", "gc", "signal")
# Modules whose attributes are compared by identity with the baseline.
_ATTRIBUTE_MODULES = (*LIBRARIES, "operator", "math")
# What an always-equal object overrides, whatever module its class claims to come from.
_EQUALITY = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__",
             "__bool__", "__index__", "__int__", "__float__", "__complex__")
# Module globals that change legitimately as cells run (caches, counters, lazy imports).
_VOLATILE = frozenset({"_", "__", "___", "__warningregistry__", "__builtins__", "last_type",
                       "last_value", "last_traceback", "last_exc"})
_state: dict[str, Any] = {}  # the private baseline; filled by ``install`` in the kernel
_COMPARISONS = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__",
                "__bool__", "__index__", "__int__", "__float__", "__contains__", "__len__",
                "__iter__", "__getitem__", "__repr__", "__str__", "__format__")
_VALUE_TYPES = (int, float, complex, str, bytes, tuple, list, dict, set, frozenset)


def describe(obj: Any) -> str:
    """A stable description of a callable or object: module, qualified name and identity.

    >>> describe(len).startswith("builtins.len#")
    True
    """
    func = getattr(obj, "__func__", obj)
    owner = getattr(obj, "__self__", None)
    name = getattr(func, "__qualname__", None) or type(func).__qualname__
    module = getattr(func, "__module__", None) or type(func).__module__
    text = f"{module}.{name}#{id(func):x}"
    return text if owner is None or isinstance(owner, type(sys)) else f"{text}@{id(owner):x}"


def _items(values: Iterable[Any]) -> list[str]:
    return [describe(v) for v in values]


def _class_dicts(obj: Any, prefixes: tuple[str, ...]) -> list[Any]:
    """(class, name, identity) for every attribute of the classes of ``obj`` from the given
    packages (tuples, not strings: this runs before and after every test)."""
    found: list[Any] = [("type of", type(obj).__qualname__, id(type(obj)))]
    for cls in type(obj).__mro__:
        if cls.__module__.startswith(prefixes):
            found += [(cls.__qualname__, name, id(value)) for name, value in vars(cls).items()]
    return found


def _instance_callables(obj: Any) -> list[str]:
    """Callables stored on the instance itself (a monkeypatched method shows up here)."""
    try:
        own = vars(obj)
    except TypeError:
        return []
    return [f"{name}={describe(value)}" for name, value in sorted(own.items())
            if callable(value) and not isinstance(value, type)
            and not name.startswith("_trait")]


def _shell_categories(ip: Any) -> dict[str, list[str]]:
    manager = getattr(ip, "input_transformer_manager", None)
    transformers = [*ip.input_transformers_cleanup, *ip.input_transformers_post]
    if manager is not None:
        transformers += [*manager.cleanup_transforms, *manager.line_transforms,
                         *manager.token_transformers]
    events = [f"{event}:{describe(cb)}" for event, callbacks in sorted(ip.events.callbacks.items())
              for cb in callbacks]
    exceptions = [describe(c) for c in ip.custom_exceptions] + [
        f"CustomTB={describe(getattr(ip, 'CustomTB', None))}",
        f"InteractiveTB={type(ip.InteractiveTB).__qualname__}"]
    from IPython.core import interactiveshell

    results = [f"{cls.__qualname__}.{name}={id(value):x}"
               for cls in (interactiveshell.ExecutionResult, interactiveshell.ExecutionInfo)
               for name, value in sorted(vars(cls).items())]
    kernel = getattr(ip, "kernel", None)
    machinery = _class_dicts(ip, ("IPython", "ipykernel")) + _instance_callables(ip)
    if kernel is not None:
        machinery += _class_dicts(kernel, ("ipykernel",)) + _instance_callables(kernel)
        machinery += [f"handler {name}={describe(h)}" for name, h in
                      sorted(getattr(kernel, "shell_handlers", {}).items())]
        session = getattr(kernel, "session", None)
        if session is not None:
            machinery += _class_dicts(session, ("jupyter_client",))
            machinery += _instance_callables(session)
    compiler = getattr(ip, "compile", None)
    if compiler is not None:
        machinery += _class_dicts(compiler, ("IPython", "codeop"))
        machinery += _instance_callables(compiler) + [f"flags={compiler.flags}"]
    for helper in (ip.events, manager, getattr(kernel, "shell_stream", None)):
        if helper is not None:  # objects the shell delegates to: replaced or patched?
            machinery += _class_dicts(helper, ("IPython", "ipykernel", "zmq", "tornado"))
            machinery += _instance_callables(helper)
    zmq = sys.modules.get("zmq")
    if zmq is not None:
        machinery += [(cls.__qualname__, name, id(value)) for cls in zmq.Socket.__mro__
                      if cls.__module__.startswith("zmq") for name, value in vars(cls).items()]
    return {"input_transformers": _items(transformers),
            "ast_transformers": _items(ip.ast_transformers),
            "events": events, "exception_handlers": exceptions,
            "execution_result": results, "shell_and_kernel": machinery}


def _sys_hooks() -> list[str]:
    hooks = [f"{name}={describe(getattr(sys, name, None))}"
             for name in ("excepthook", "displayhook", "breakpointhook", "unraisablehook")]
    hooks += [f"trace={describe(sys.gettrace())}", f"profile={describe(sys.getprofile())}",
              f"thread trace={describe(getattr(threading, '_trace_hook', None))}",
              f"thread profile={describe(getattr(threading, '_profile_hook', None))}"]
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is not None:
        hooks += [f"monitoring {i}={monitoring.get_tool(i)}" for i in range(6)]
    # code that runs in the middle of a test without being called: garbage-collector
    # callbacks and timer or user signal handlers
    hooks += [f"gc callback={describe(callback)}" for callback in gc.callbacks]
    hooks += [f"signal {name}={describe(signal.getsignal(getattr(signal, name)))}"
              for name in ("SIGALRM", "SIGVTALRM", "SIGPROF", "SIGUSR1", "SIGUSR2")
              if hasattr(signal, name)]
    return hooks


def _subclasses(root: type) -> Iterable[type]:
    seen, stack = set(), [root]
    while stack:
        cls = stack.pop()
        for sub in type.__subclasses__(cls) if cls is not type else ():
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
                yield sub


def _value_roots() -> list[type]:
    roots: list[type] = list(_VALUE_TYPES)
    torch = sys.modules.get("torch")
    if torch is not None:
        roots += [torch.Tensor, torch.Size]
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        roots += [numpy.generic, numpy.ndarray]
    return roots


def _always_equal() -> list[str]:
    """Subclasses of a value type that override comparisons or conversions: the "always
    equal" objects that fool ``==`` checks. Classes defined in a cell (``__main__``) count
    with any override of ``_COMPARISONS``; every other class (its ``__module__`` is the
    class's own claim) that did not exist at the baseline, or whose overrides changed since,
    counts with an override of ``_EQUALITY``."""
    known = _state.get("value_classes", {})
    found = []
    for root in _value_roots():
        for cls in _subclasses(root):
            own = vars(cls)
            if cls.__module__ == "__main__":
                overridden = sorted(n for n in _COMPARISONS if n in own)
            else:
                now = {n: own[n] for n in _EQUALITY if n in own}
                before = known.get(id(cls), (None, {}))
                if before[0] is cls and all(before[1].get(n) is v for n, v in now.items()):
                    continue
                overridden = sorted(n for n, v in now.items() if not _library_code(v))
            if overridden:
                found.append(f"class {cls.__qualname__} subclasses {root.__name__} and "
                             f"overrides {', '.join(overridden)}")
    return sorted(set(found))


def _trusted_folders() -> tuple[str, ...]:
    """Where library code lives: the Python installation and ``course_utils``."""
    import os

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return tuple(os.path.join(os.path.realpath(p), "") for p in {
        sys.prefix, sys.base_prefix, sys.exec_prefix, here})


def _library_code(value: Any) -> bool:
    """True for a value a library can put on a class: None, a slot wrapper or method
    descriptor of a built-in type, or a function compiled from a file of the Python
    installation or of ``course_utils`` (a cell's code, a file in the scratch folder or
    ``exec``'d text is none of these)."""
    if value is None or isinstance(value, (types.WrapperDescriptorType,
                                           types.MethodDescriptorType)):
        return True
    func = getattr(value, "__func__", None) or getattr(value, "fget", None) or value
    code = getattr(func, "__code__", None)
    if not isinstance(func, types.FunctionType) or code is None:
        return False
    folders = _state.get("trusted") or _trusted_folders()
    return code.co_filename.startswith(folders)


def _value_classes() -> dict[int, tuple[type, dict[str, Any]]]:
    """Every subclass of a value type now, with its comparison overrides (the baseline)."""
    return {id(cls): (cls, {n: vars(cls)[n] for n in _EQUALITY if n in vars(cls)})
            for root in _value_roots() for cls in _subclasses(root)}


def _watched_modules() -> list[str]:
    names = [*WATCHED_MODULES, *_ATTRIBUTE_MODULES]
    return names + sorted(n for n in list(sys.modules)
                          if n == "course_utils" or n.startswith("course_utils."))


def _module_snapshot() -> dict[str, tuple[Any, dict[str, Any]]]:
    """module name -> (module, a copy of its globals): taken by ``install``."""
    return {name: (sys.modules[name], dict(vars(sys.modules[name])))
            for name in _watched_modules() if name in sys.modules}


def _module_globals() -> list[str]:
    """Globals of the watched modules that differ from the baseline: a module replaced in
    ``sys.modules``, a global replaced or removed, a new global that shadows a built-in or
    holds code from the notebook. Modules loaded later: only the last two."""
    base = _state.get("modules", {})
    names = vars(builtins)
    found = []
    for name in _watched_modules():
        module = sys.modules.get(name)
        if module is None:
            continue
        before_module, before = base.get(name, (module, {}))
        if before_module is not module:
            found.append(f"sys.modules[{name!r}] was replaced")
            continue
        space = vars(module)
        for key, value in list(space.items()):
            if key in _VOLATILE:
                continue
            if key in before:
                if _replaced(before[key], value):
                    found.append(f"{name}.{key} was replaced")
            elif (key in names and name != "builtins" and not key.startswith("__")) or (
                    _from_notebook(value)):
                found.append(f"{name}.{key} was added")
        found += [f"{name}.{key} was removed" for key in before
                  if key not in space and key not in _VOLATILE]
    return found


def _shadowed_builtins(namespace: dict[str, Any]) -> list[str]:
    """Built-in names the learner's namespace redefines as a different callable."""
    return sorted(name for name, value in namespace.items()
                  if name in vars(builtins) and not name.startswith("_") and callable(value)
                  and value is not vars(builtins)[name])


def import_libraries() -> None:
    """Import ``LIBRARIES`` that are installed (before the baseline, so it includes them)."""
    import importlib
    import importlib.util

    for name in LIBRARIES:
        try:
            if importlib.util.find_spec(name) is not None:
                importlib.import_module(name)
        except (ImportError, ValueError):
            continue


def _from_notebook(value: Any) -> bool:
    """True for a function, class or wrapper defined by code run in the kernel's cells."""
    for candidate in (value, getattr(value, "__func__", None), getattr(value, "func", None),
                      getattr(value, "fget", None)):
        if candidate is not None and getattr(candidate, "__module__", None) == "__main__":
            return True
    return False


def _library_owners() -> list[tuple[str, Any]]:
    """(name, module or class) of ``LIBRARIES``, ``Tensor`` and ``torch``'s ``nn.Module``
    classes, ``operator`` and ``math``."""
    owners: list[tuple[str, Any]] = [(n, sys.modules[n]) for n in _ATTRIBUTE_MODULES
                                     if n in sys.modules]
    torch = sys.modules.get("torch")
    if torch is not None:
        base = getattr(torch._C, "TensorBase", None) or getattr(torch._C, "_TensorBase", None)
        classes = [torch.Tensor, torch.nn.Module, torch.nn.Parameter, *(
            c for c in _subclasses(torch.nn.Module) if c.__module__.startswith("torch."))]
        owners += [(c.__qualname__, c) for c in ([base] if base else []) + classes]
    return owners


def _libraries() -> list[str]:
    """Attributes of the libraries (module functions, ``Tensor`` and ``nn.Module`` classes)
    that hold code defined in the notebook; and, against the baseline, attributes replaced
    (a library's own wrapper of the old value, as ``torch`` makes on first use, is fine)
    or added with code that is not a library's."""
    owners = _library_owners()
    found = [f"{owner}.{attr} is replaced by code from the notebook"
             for owner, obj in owners for attr, value in vars(obj).items()
             if _from_notebook(value)]
    # Attributes of the fresh kernel's libraries, compared by identity (their ``__module__``
    # is the attacker's to choose).
    for name, owner, before in _state.get("attributes", []):
        now = vars(owner)
        found += [f"{name}.{attr} was replaced" for attr, value in before.items()
                  if _replaced(value, now.get(attr, _MISSING))]
        # added: anything but a module, a class or a library's function (``torch`` adds
        # submodules as they are imported); on a class, a C function too (``__eq__ =
        # torch.ones_like`` makes every comparison true)
        found += [f"{name}.{attr} was added" for attr, value in list(now.items())
                  if attr not in before and attr not in _VOLATILE
                  and not isinstance(value, (type, types.ModuleType))
                  and not _library_code(value)
                  and (isinstance(owner, type) or callable(value))]
    return found


_MISSING = object()


def _replaced(before: Any, now: Any) -> bool:
    """``now`` is not ``before``, nor a library's own wrapper of it (``torch`` wraps
    ``torch.manual_seed`` when ``torch._dynamo`` is first imported)."""
    return now is not before and not (
        getattr(now, "__wrapped__", None) is before and _library_code(now))


def _categories() -> dict[str, list[str]]:
    ip = _get_ipython()
    found: dict[str, list[str]] = {
        "input_transformers": [], "ast_transformers": [], "events": [],
        "exception_handlers": [], "execution_result": [], "shell_and_kernel": []}
    if ip is not None:
        found.update(_shell_categories(ip))
    namespace = ip.user_ns if ip is not None else {}
    found["sys_hooks"] = _sys_hooks()
    found["builtins"] = [f"{name}={id(value):x}" for name, value in sorted(vars(builtins).items())
                         if name != "_"] + [
        f"user __builtins__={id(namespace.get('__builtins__', builtins)):x}",
        f"module={id(sys.modules.get('builtins')):x}"]
    found["shadowed_builtins"] = _shadowed_builtins(namespace)
    found["always_equal"] = _always_equal()
    found["libraries"] = _libraries()
    found["module_globals"] = _module_globals()
    hook = _state.get("audit_hook")
    found["sys_hooks"] += [f"audit hook={id(getattr(hook, '__code__', None)):x}",
                           f"audit hooks refused={_state.get('refused', 0)}"]
    return found


def _get_ipython() -> Any:
    """The running shell, or None (outside a kernel, or IPython not imported)."""
    if _state.get("ip") is not None:
        return _state["ip"]
    if "IPython" not in sys.modules:
        return None
    from IPython.core.getipython import get_ipython

    return get_ipython()


def _text(item: Any) -> str:
    if isinstance(item, tuple):
        *names, identity = item
        return f"{'.'.join(names)}={identity:x}"
    return str(item)


def _refuse_audit_hooks(event: str, args: tuple) -> None:
    """The grader's audit hook: no hook may be added after it (hooks cannot be removed)."""
    if event == "sys.addaudithook":
        _state["refused"] = _state.get("refused", 0) + 1  # an attempt is reported too
        raise RuntimeError("the grader does not allow audit hooks")


def install(name: str) -> None:
    """Take the private baseline, refuse later audit hooks, and make ``builtins.<name>`` a
    ``fingerprint`` that runs on private copies of this module's code and globals (and of
    the built-ins), so replacing them from a cell changes nothing in the grader's audit."""
    private = dict(vars(builtins))
    private.update(globals())
    for key, value in list(private.items()):
        if isinstance(value, types.FunctionType) and value.__module__ == __name__:
            copy = types.FunctionType(value.__code__, private, value.__name__,
                                      value.__defaults__, value.__closure__)
            copy.__kwdefaults__ = value.__kwdefaults__
            private[key] = copy
    state: dict[str, Any] = {}
    private["_state"] = state
    private["json"] = types.SimpleNamespace(dumps=json.dumps)
    state["ip"] = _get_ipython()
    state["trusted"] = _trusted_folders()
    private["_categories"]()  # warm up: the first run imports what it needs
    state["audit_hook"] = private["_refuse_audit_hooks"]
    sys.addaudithook(private["_refuse_audit_hooks"])
    setattr(builtins, name, private["fingerprint"])


def _take_baseline() -> None:
    """The private baseline: taken by the first ``fingerprint`` call after ``install`` (the
    grader's own, in the fresh kernel, outside any cell, like every later call)."""
    _state["modules"] = _module_snapshot()
    _state["attributes"] = [(n, owner, dict(vars(owner))) for n, owner in _library_owners()]
    _state["value_classes"] = _value_classes()
    _state["ready"] = True


def fingerprint(full: bool = False) -> str:
    """JSON: each category's digest (valid within this process), or (``full``) its items."""
    if "audit_hook" in _state and "ready" not in _state:
        _take_baseline()
    found = _categories()
    if full:
        return json.dumps({k: sorted(_text(i) for i in v) for k, v in found.items()})
    return json.dumps({k: str(hash(tuple(v))) for k, v in found.items()})
