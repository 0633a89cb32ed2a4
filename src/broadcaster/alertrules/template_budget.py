"""The render budget of alert-rule templates: a Jinja2 sandbox that counts and refuses.

Operators write the templates and senders fill them, so one render must never stall the process or allocate
without bound. `BudgetedEnvironment` adds to `ImmutableSandboxedEnvironment` (which keeps templates away from
Python internals):

- every `{% for %}` item and every macro, block or recursive-loop call counts against MAX_LOOPS (the code
  generator wraps each loop's iterable), and nested calls against MAX_DEPTH;
- every arithmetic operator is intercepted (`call_binop`, so none is folded at compile time either): repeating
  or joining text or lists past MAX_VALUE, and numbers past MAX_INT_BITS, are refused *before* they are built;
- `~`, `str.format`/`%` formatting, the string methods and filters that pad, repeat or join (`center`, `ljust`,
  `rjust`, `zfill`, `expandtabs`, `replace`, `join`, `translate`, `indent`, `wordwrap`, `batch`, `slice`,
  `sum`, `tojson`, ...) check the size of what they would build first; what every filter and method builds
  counts against MAX_BUILT in all;
- `range()` is capped at MAX_RANGE items, and CPU time at TIME_MS (checked as the budget is spent).

What the sandbox cannot see (a single C-level operation on a maliciously shaped value, e.g. the text of a list
nested forty times into itself) is bounded by the process that renders: `sandbox_process` runs this module in
a child with an address-space and CPU limit and kills it after KILL_AFTER_SECONDS.

This module imports only Jinja2 (the child process imports it alone).
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
import types
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextvars import ContextVar
from string import Formatter
from typing import Any

from jinja2 import StrictUndefined, Undefined, nodes, pass_environment, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.filters import (
    do_batch,
    do_center,
    do_format,
    do_indent,
    do_replace,
    do_wordwrap,
    make_attrgetter,
    sync_do_join,
    sync_do_slice,
)
from jinja2.nodes import EvalContext
from jinja2.runtime import BlockReference, Context, LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from markupsafe import EscapeFormatter, Markup, soft_str

#: loop iterations (every item a `{% for %}` takes, kept or filtered out) plus macro/block/recursive-loop calls
MAX_LOOPS = 100_000
#: items of one `range()`
MAX_RANGE = 10_000
#: characters (or items) of one value a template builds: repeated, joined, padded or formatted text and lists
MAX_VALUE = 100_000
#: characters built by filters, methods and operators in one render, in all
MAX_BUILT = 10_000_000
#: bits of an integer a template computes (`9**9**9`)
MAX_INT_BITS = 4_096
#: macro, block and recursive-loop calls nested in one another
MAX_DEPTH = 50
#: characters of rendered text kept (rendering stops there); on the upload check, longer is refused
MAX_OUTPUT = 20_000
#: CPU time of one render
TIME_MS = 100
#: memory the rendering process may use beyond what it needs at rest
MEMORY_MB = 256
#: wall-clock time after which the rendering process is killed (the hard stop behind TIME_MS)
KILL_AFTER_SECONDS = 2.0

_CLOCK_EVERY = 64  # budget steps between two looks at the clock


class BudgetExceeded(Exception):
    """A template went over its budget; `reason` says how ("loops more than 100000 times")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Budget:
    """What one render has spent."""

    __slots__ = ("built", "countdown", "deadline", "depth", "loops")

    def __init__(self, time_ms: float = TIME_MS) -> None:
        self.loops = 0
        self.built = 0
        self.depth = 0
        self.countdown = _CLOCK_EVERY
        self.deadline = time.thread_time() + time_ms / 1000

    def loop(self) -> None:
        self.loops += 1
        if self.loops > MAX_LOOPS:
            raise BudgetExceeded(f"loops more than {MAX_LOOPS} times")
        self.countdown -= 1
        if self.countdown <= 0:
            self.clock()

    def build(self, size: int, kind: str = "text") -> None:
        """Count `size` characters (items) about to be built; refuse a value or a total over the budget."""
        if size > MAX_VALUE:
            unit = "characters" if kind == "text" else "items"
            raise BudgetExceeded(f"builds {_a(kind)} longer than {MAX_VALUE} {unit}")
        self.built += size
        if self.built > MAX_BUILT:
            raise BudgetExceeded(f"builds more than {MAX_BUILT} characters of text in all")
        self.countdown -= 1 + size // 4096
        if self.countdown <= 0:
            self.clock()

    def clock(self) -> None:
        self.countdown = _CLOCK_EVERY
        if time.thread_time() > self.deadline:
            raise BudgetExceeded(f"took longer than {TIME_MS} ms")


def _a(kind: str) -> str:
    return "a list" if kind == "list" else "text"


_BUDGET: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


def current() -> Budget:
    """The budget of the render in progress (outside a render, nothing may be computed: compile-time constant
    folding of a filter is refused this way, and the filter runs at render time under the budget)."""
    budget = _BUDGET.get()
    if budget is None:
        raise BudgetExceeded("rendered outside a budget")
    return budget


# --- size estimates ----------------------------------------------------------------------------------------------

_SEQUENCES = (str, bytes, list, tuple)


def _kind(value: Any) -> str:
    return "text" if isinstance(value, str | bytes) else "list"


def _width(value: Any) -> int:
    """A width/count argument as an int (not an int: 0, Python raises its own error)."""
    return value if isinstance(value, int) else 0


def _check_width(width: Any) -> None:
    if _width(width) > MAX_VALUE:
        raise BudgetExceeded(f"pads text to more than {MAX_VALUE} characters")


def _check_items(count: Any, what: str) -> None:
    if _width(count) > MAX_RANGE:
        raise BudgetExceeded(f"asks for {what} of more than {MAX_RANGE} items")


def _check_int(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise BudgetExceeded(f"computes a number larger than {MAX_INT_BITS} bits")


def _check_mul(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        _check_int(left.bit_length() + right.bit_length())
    elif isinstance(left, _SEQUENCES) and isinstance(right, int):
        current().build(len(left) * max(right, 0), _kind(left))
    elif isinstance(right, _SEQUENCES) and isinstance(left, int):
        current().build(len(right) * max(left, 0), _kind(right))


def _check_pow(left: Any, right: Any) -> None:
    # |left| ** right needs right * log2|left| bits: refused before Python starts on it
    big = isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1
    if big and right * math.log2(abs(left)) > MAX_INT_BITS:
        raise BudgetExceeded(f"computes a number larger than {MAX_INT_BITS} bits")


def _check_add(left: Any, right: Any) -> None:
    if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        current().build(len(left) + len(right), _kind(left))


_SPEC_NUMBERS = re.compile(r"\d+")


def _check_spec(spec: str) -> None:
    """A format spec's width and precision (`'{:>100000000}'`, `'%.99999999f'`)."""
    for digits in _SPEC_NUMBERS.findall(spec):
        if len(digits) > 7 or int(digits) > MAX_VALUE:
            raise BudgetExceeded(f"pads text to more than {MAX_VALUE} characters")


#: one printf-style conversion: flags, width, precision (`*` takes them from the arguments)
_CONVERSION = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")


def _piece(value: Any) -> int:
    """Most characters one conversion of `value` produces (without width)."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, int | float):
        return 1_300  # an int of MAX_INT_BITS has 1,234 digits; a float's %f of 1e308 has 316
    return len(soft_str(value))


def _check_percent(fmt: str | bytes, args: Any) -> None:
    """`fmt % args` (and the `format` filter) before it runs: each conversion is at most as wide as its width and
    the widest argument, so their count times that bounds the result."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    if isinstance(args, Mapping) and "%(" in text:
        values = list(args.values())
    else:
        values = list(args) if isinstance(args, tuple) else [args]
    count, width = 0, 0
    for match in _CONVERSION.finditer(text):
        if match[3] == "%":
            continue
        count += 1
        for number in (match[1], match[2]):
            if number == "*":
                width = max([width, *(v for v in values if isinstance(v, int))])
            elif number:
                _check_spec(number)
                width = max(width, int(number))
    if count:
        widest = max((_piece(v) for v in values), default=0)
        current().build(len(fmt) + count * (max(widest, width) + 8))


# --- string methods and str.format -------------------------------------------------------------------------------


def _method_padding(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    width = args[0] if args else kwargs.get("width", 0)
    _check_width(width)
    current().build(max(_width(width), len(obj)))


def _method_expandtabs(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    size = _width(args[0] if args else kwargs.get("tabsize", 8))
    tabs = obj.count("\t" if isinstance(obj, str) else b"\t")
    current().build(len(obj) + tabs * max(size, 0))


def _replaced_size(obj: Any, old: Any, new: Any, count: Any) -> int:
    if not isinstance(old, type(obj)) or not isinstance(new, type(obj)):
        return len(obj)
    hits = obj.count(old) if old else len(obj) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(obj) + hits * max(len(new) - len(old), 0)


def _method_replace(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    old, new = (*args[:2], None, None)[:2]
    count = args[2] if len(args) > 2 else kwargs.get("count", -1)
    current().build(_replaced_size(obj, old, new, count))


def _method_translate(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    table = args[0] if args else None
    if isinstance(table, Mapping):
        longest = max((len(v) for v in table.values() if isinstance(v, str | bytes)), default=1)
        current().build(len(obj) * max(longest, 1))


def _method_to_bytes(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    current().build(_width(args[0] if args else kwargs.get("length", 1)))


#: checks run before a str/bytes (or int) method is called from a template
_METHOD_CHECKS: dict[str, Callable[[Any, tuple[Any, ...], dict[str, Any]], None]] = {
    "center": _method_padding,
    "ljust": _method_padding,
    "rjust": _method_padding,
    "zfill": _method_padding,
    "expandtabs": _method_expandtabs,
    "replace": _method_replace,
    "translate": _method_translate,
}


def _joined(items: Iterable[Any], separator: Any) -> list[Any]:
    """The items of a join, materialised; refused when the joined text would be too long."""
    parts = list(items)
    size = sum(len(p) if isinstance(p, str | bytes) else len(soft_str(p)) for p in parts)
    sep = len(separator) if isinstance(separator, str | bytes) else len(soft_str(separator))
    current().build(size + sep * max(len(parts) - 1, 0))
    return parts


class _BoundedFormatter(SandboxedFormatter):
    """`str.format` whose fields are checked (width) and counted (size) before the result is joined."""

    def __init__(self, env: Any, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.size = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        _check_spec(format_spec)
        out = super().format_field(value, format_spec)
        self.size += len(out)
        if self.size > MAX_VALUE:
            raise BudgetExceeded(f"builds text longer than {MAX_VALUE} characters")
        current().build(len(out))
        return out


class _BoundedEscapeFormatter(_BoundedFormatter, EscapeFormatter):
    pass


# --- filters ------------------------------------------------------------------------------------------------------


def _charged(result: Any, *inputs: Any) -> Any:
    """Count what a filter or method built (a value passed through unchanged costs nothing)."""
    if isinstance(result, str | bytes) and not any(result is i for i in inputs):
        current().build(len(result))
    return result


def _charging(func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that counts what it builds (and runs only inside a render: never folded at compile time)."""

    @functools.wraps(func)  # keeps jinja_pass_arg (pass_context/pass_environment/pass_eval_context)
    def filter_(*args: Any, **kwargs: Any) -> Any:
        current()
        return _charged(func(*args, **kwargs), *args)

    return filter_


def _center(value: Any, width: int = 80) -> str:
    _check_width(width)
    current().build(max(_width(width), len(soft_str(value))))
    return do_center(value, width)


def _indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    indention = len(width) if isinstance(width, str) else _width(width)
    text = soft_str(s)
    current().build(len(text) + (text.count("\n") + 2) * max(indention, 0))
    return do_indent(s, width, first, blank)


@pass_environment
def _wordwrap(
    environment: Any,
    s: Any,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    text = soft_str(s)
    wrap = len(wrapstring if wrapstring is not None else environment.newline_sequence)
    lines = text.count(" ") + text.count("\n") + len(text) // max(_width(width), 1) + 1
    current().build(len(text) + lines * wrap)
    return do_wordwrap(environment, s, width, break_long_words, wrapstring, break_on_hyphens)


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    _check_percent(soft_str(value), kwargs or args)
    return do_format(value, *args, **kwargs)


@pass_eval_context
def _replace(eval_ctx: EvalContext, s: Any, old: Any, new: Any, count: int | None = None) -> str:
    current().build(_replaced_size(soft_str(s), soft_str(old), soft_str(new), -1 if count is None else count))
    return do_replace(eval_ctx, s, old, new, count)


@pass_eval_context
def _join(eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: str | int | None = None) -> str:
    if attribute is not None:
        value = map(make_attrgetter(eval_ctx.environment, attribute), value)
    return sync_do_join(eval_ctx, _joined(value, d), d)


def _batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Iterator[list[Any]]:
    current()
    _check_items(linecount, "batches")
    return do_batch(value, linecount, fill_with)


def _slice(value: Collection[Any], slices: int, fill_with: Any = None) -> Iterator[list[Any]]:
    current()
    _check_items(slices, "slices")
    return sync_do_slice(value, slices, fill_with)


@pass_environment
def _sum(environment: Any, iterable: Iterable[Any], attribute: str | int | None = None, start: Any = 0) -> Any:
    current()
    if attribute is not None:
        iterable = map(make_attrgetter(environment, attribute), iterable)
    items = list(iterable)
    numbers = (int, float)
    if isinstance(start, numbers) and all(isinstance(i, numbers) for i in items):
        return sum(items, start)  # as Jinja's own filter (numbers grow by a bit per addition at most)
    total = start
    for item in items:  # one checked `+` per item: summing lists or text is counted like any other `+`
        total = environment.call_binop(None, "+", total, item)
    return total


def _bounded_dumps(obj: Any, **kwargs: Any) -> str:
    """`tojson`: JSON built piece by piece, refused when it grows past MAX_VALUE."""
    indent = kwargs.get("indent")
    _check_width(len(indent) if isinstance(indent, str) else indent)
    current()
    size, parts = 0, []
    for chunk in json.JSONEncoder(**kwargs).iterencode(obj):
        size += len(chunk)
        if size > MAX_VALUE:
            raise BudgetExceeded(f"builds text longer than {MAX_VALUE} characters")
        parts.append(chunk)
    return "".join(parts)  # counted by the tojson filter's wrapper


_CHECKED_FILTERS: dict[str, Callable[..., Any]] = {
    "center": _center,
    "indent": _indent,
    "wordwrap": _wordwrap,
    "format": _format,
    "replace": _replace,
    "join": _join,
    "batch": _batch,
    "slice": _slice,
    "sum": _sum,
}


# --- globals ------------------------------------------------------------------------------------------------------


def _range(*args: int) -> range:
    try:
        items = range(*args)
        size = len(items)
    except OverflowError:
        size = MAX_RANGE + 1
    if size > MAX_RANGE:
        raise BudgetExceeded(f"asks for a range of more than {MAX_RANGE} items")
    return items


# --- the environment ---------------------------------------------------------------------------------------------


def _is_counted(node: nodes.Node) -> bool:
    return (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.EnvironmentAttribute)
        and node.node.name == "loop_items"
    )


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator with every loop's iterable wrapped in `environment.loop_items(...)` and `~` written
    as `environment.checked_concat(...)` (Jinja allows no new node types: the wrapper is an ordinary call)."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        if not _is_counted(node.iter):
            wrapper = nodes.EnvironmentAttribute("loop_items", lineno=node.iter.lineno)
            node.iter = nodes.Call(wrapper, [node.iter], [], None, None, lineno=node.iter.lineno)
        super().visit_For(node, frame)

    def visit_Call(self, node: nodes.Call, frame: Frame, forward_caller: bool = False) -> None:
        if _is_counted(node):  # our wrapper: called directly, not through the sandbox's `call`
            self.write("environment.loop_items(")
            self.visit(node.args[0], frame)
            self.write(")")
        else:
            super().visit_Call(node, frame, forward_caller=forward_caller)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            markup = "context.eval_ctx.autoescape"
        else:
            markup = "True" if frame.eval_ctx.autoescape else "False"
        self.write("environment.checked_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(f"), {markup})")


def _buffered_concat(parts: Iterable[str]) -> str:
    """What a `{% set %}`, macro, call or filter block rendered, joined (checked like any text built)."""
    pieces = parts if isinstance(parts, list) else list(parts)
    current().build(sum(map(len, pieces)))
    return "".join(pieces)


_NESTED_CALLS = (Macro, BlockReference, LoopContext)
_METHODS = (types.BuiltinMethodType, types.MethodType)


class BudgetedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with the render budget (see the module docstring)."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    code_generator_class = _CodeGenerator
    concat = staticmethod(_buffered_concat)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _range
        self.globals.pop("lipsum", None)  # lipsum(n) writes n paragraphs: not for alerts
        self.filters = {name: _charging(func) for name, func in self.filters.items()}
        self.filters.update(_CHECKED_FILTERS)
        self.policies["json.dumps_function"] = _bounded_dumps

    def loop_items(self, iterable: Iterable[Any]) -> Iterator[Any]:
        budget = current()
        for item in iterable:
            budget.loop()
            yield item

    def checked_concat(self, values: tuple[Any, ...], markup: bool) -> str:
        """`a ~ b`: the parts' text measured before it is joined."""
        parts = [soft_str(v) for v in values]
        current().build(sum(map(len, parts)))
        if markup and any(hasattr(v, "__html__") for v in values):
            return Markup("").join(Markup.escape(v) for v in values)
        return "".join(parts)

    def call_binop(self, context: Context | None, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_mul(left, right)
        elif operator == "**":
            _check_pow(left, right)
        elif operator == "+":
            _check_add(left, right)
        elif operator == "%" and isinstance(left, str | bytes):
            _check_percent(left, right)
        return self.binop_table[operator](left, right)  # what can grow was counted before it was built

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        if isinstance(obj, _NESTED_CALLS):
            budget = current()
            budget.loop()
            if isinstance(obj, LoopContext) and args:  # a recursive loop's `loop(children)`
                args = (self.loop_items(args[0]), *args[1:])
            budget.depth += 1
            try:
                if budget.depth > MAX_DEPTH:
                    raise BudgetExceeded(f"nests macro or loop calls more than {MAX_DEPTH} deep")
                return super().call(context, obj, *args, **kwargs)
            finally:
                budget.depth -= 1
        # a method of text or a number (str's are builtins; Markup's are Python wrappers around them)
        owner = getattr(obj, "__self__", None) if isinstance(obj, _METHODS) else None
        if not isinstance(owner, str | bytes | int) or isinstance(owner, bool):
            return super().call(context, obj, *args, **kwargs)
        name = getattr(obj, "__name__", "")
        if name == "join" and args and isinstance(owner, str | bytes):
            args = (_joined(args[0], owner), *args[1:])
        elif name == "to_bytes" and isinstance(owner, int):
            _method_to_bytes(owner, args, kwargs)
        elif (check := _METHOD_CHECKS.get(name)) is not None and isinstance(owner, str | bytes):
            check(owner, args, kwargs)
        else:
            return _charged(super().call(context, obj, *args, **kwargs), owner, *args)
        return super().call(context, obj, *args, **kwargs)  # counted by its check

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`str.format` / `str.format_map` with a bounded formatter (a new one per call)."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or value.__name__ not in (
            "format",
            "format_map",
        ):
            return None
        owner: Any = value.__self__
        if not isinstance(owner, str):
            return None
        is_format_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one positional argument")
                kwargs, args = args[0], ()
            formatter: Formatter
            if isinstance(owner, Markup):
                formatter = _BoundedEscapeFormatter(self, escape=owner.escape)
            else:
                formatter = _BoundedFormatter(self)
            return type(owner)(formatter.vformat(owner, args, kwargs))

        return functools.update_wrapper(wrapper, value)


# --- rendering ----------------------------------------------------------------------------------------------------


def render_text(template: Any, context: dict[str, Any], *, check: bool, time_ms: float = TIME_MS) -> str:
    """Render a template compiled by a BudgetedEnvironment under a fresh budget; the text stripped and cut at
    MAX_OUTPUT characters (rendering stops there). With `check` (the upload check) longer output is refused.
    BudgetExceeded says what went over; any other exception is the template's own error."""
    token = _BUDGET.set(Budget(time_ms))
    try:
        chunks: list[str] = []
        size = 0
        stream = template.generate(**context)
        try:
            for chunk in stream:
                chunks.append(chunk)
                size += len(chunk)
                if size > 2 * MAX_OUTPUT:  # room for the leading whitespace that is stripped
                    break
        finally:
            stream.close()
        text = "".join(chunks).strip()
        if check and len(text) > MAX_OUTPUT:
            raise BudgetExceeded(f"output longer than {MAX_OUTPUT} characters")
        return text[:MAX_OUTPUT]
    finally:
        _BUDGET.reset(token)


@functools.lru_cache(maxsize=2)
def environment(strict: bool = False) -> BudgetedEnvironment:
    """The environment alert templates compile in: text, not HTML (channels escape what they put into HTML);
    missing labels render empty, except in the strict one (generic webhook mappings), where they are an error."""
    if strict:
        return BudgetedEnvironment(autoescape=False, undefined=StrictUndefined)
    return BudgetedEnvironment(autoescape=False, undefined=Undefined, trim_blocks=True, lstrip_blocks=True)
