"""Our place among other instrumentations of the same SDK method: directly around the SDK's function.

Other instrumentations of the openai SDK (OpenTelemetry's official one, OpenLLMetry) wrap the same
methods with wrapt and remove theirs with `opentelemetry.instrumentation.utils.unwrap`, which takes off
whatever wrapper is outermost, theirs or not. Ours always goes innermost, under any wrapt wrapper
already there, and leaves by being taken out of the chain wherever it is: either side can then be
instrumented and uninstrumented in any order without removing the other's wrapper, and ours sees what
the SDK method itself returns (a wrapper of a lower method, like OpenInference's of `OpenAI.request`,
can still hand it a proxy).
"""

from __future__ import annotations

from typing import Any

from wrapt import FunctionWrapper, apply_patch, resolve_path


def wrap_innermost(module: str, method: str, wrapper: Any) -> Any:
    """Wrap `module`'s `method` ("Class.method" or "function") with `wrapper`; returns our wrapper."""
    owner, name, original = resolve_path(module, method)
    holder: Any = innermost_wrapper(original)
    if holder is None:
        ours = FunctionWrapper(original, wrapper)
        apply_patch(owner, name, ours)
    else:
        ours = FunctionWrapper(holder.__wrapped__, wrapper)
        holder.__wrapped__ = ours
    return ours


def unwrap_ours(owner: object, name: str, ours: Any) -> None:
    """Take `ours` out of the wrapper chain of `owner.name`, leaving every other wrapper in place."""
    node: Any = vars(owner).get(name) if isinstance(owner, type) else getattr(owner, name, None)
    if _is(node, ours):
        setattr(owner, name, ours.__wrapped__)
        return
    link = _link(node)
    while link is not None:
        if _is(link.__wrapped__, ours):
            link.__wrapped__ = ours.__wrapped__
            return
        link = _link(link.__wrapped__)
    # Not in the chain: something replaced the method wholesale, and nothing of ours is left there.


def innermost_wrapper(obj: object) -> Any:
    """The wrapt wrapper nearest the SDK's function in a chain of them; None when `obj` is not one."""
    holder: Any = None
    link = _link(obj)
    while link is not None:
        holder, link = link, _link(link.__wrapped__)
    return holder


def _link(node: Any) -> Any:
    """The wrapt wrapper `node` stands for in a chain, or None.

    `unwrap()` reads the outermost wrapper through the class, so what it puts back in the class is the
    next wrapper bound to the class (a BoundFunctionWrapper without instance), which delegates every
    access to its parent: that parent is the link, whose `__wrapped__` can be read and replaced.
    """
    if isinstance(node, FunctionWrapper):
        return node
    parent = getattr(node, "_self_parent", None)
    if isinstance(parent, FunctionWrapper) and getattr(node, "_self_instance", True) is None:
        return parent
    return None


def _is(node: Any, ours: Any) -> bool:
    # `ours` itself, or ours bound to the class by an `unwrap()` of a wrapper above it (see `_link`).
    return node is ours or getattr(node, "_self_parent", None) is ours
