"""The codemod: every import of ``celery`` and ``kombu`` becomes one of celery_gcp, with the
names bound by ``import celery`` and the string targets of ``mock.patch`` and friends.

A binding (a name an import statement binds) is rewritten only when celery_gcp has its module
and every name the file reads through it; otherwise it is left exactly as written and reported
(``Left``). Nothing else in the file changes: libcst keeps formatting and comments.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import PositionProvider, QualifiedNameProvider, QualifiedNameSource

from .targets import ROOTS, dotted_target, module_target, name_exists, root_of

__all__ = ["Bindings", "Left", "Rewriter", "dotted"]

#: Calls whose first argument is a dotted string naming what to patch.
_PATCHERS = frozenset({"patch", "setattr", "delattr", "dict", "multiple"})


@dataclass(frozen=True)
class Left:
    """A Celery name the codemod left as written: celery_gcp has nothing by that name."""

    line: int
    name: str


def dotted(node: cst.BaseExpression) -> str | None:
    """``a.b.c`` for a chain of names, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted(node.value)
        return None if base is None else f"{base}.{node.attr.value}"
    return None


def _callee(node: cst.Call) -> str | None:
    if isinstance(node.func, cst.Name):
        return node.func.value
    if isinstance(node.func, cst.Attribute):
        return node.func.attr.value
    return None


def _string_target(node: cst.SimpleString) -> str | None:
    """The dotted name a string literal holds, when it names something in a rewritten root."""
    if node.prefix.lower() not in ("", "u"):
        return None
    value = node.raw_value
    return value if root_of(value) and all(p.isidentifier() for p in value.split(".")) else None


class Bindings(cst.CSTVisitor):
    """First pass: which names the imports bind, and what the file reads through each."""

    METADATA_DEPENDENCIES = (QualifiedNameProvider, PositionProvider)

    def __init__(self) -> None:
        self.targets: dict[str, list[str]] = defaultdict(list)  # local name -> imported names
        self.plain: set[str] = set()  # names bound by `import celery[.x]` (no `as`)
        self.reads: dict[str, list[tuple[int, str]]] = defaultdict(list)

    def visit_Import(self, node: cst.Import) -> bool:
        for alias in node.names:
            name = dotted(alias.name)
            if name is None or root_of(name) is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.targets[alias.asname.name.value].append(name)
            else:
                local = name.split(".", 1)[0]
                self.plain.add(local)
                self.targets[local].append(name)
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        module = None if node.relative or node.module is None else dotted(node.module)
        if module is None or root_of(module) is None or isinstance(node.names, cst.ImportStar):
            return False
        for alias in node.names:
            local = alias.asname.name if alias.asname is not None else alias.name
            if isinstance(local, cst.Name) and isinstance(alias.name, cst.Name):
                self.targets[local.value].append(f"{module}.{alias.name.value}")
        return False

    def _read(self, node: cst.Name | cst.Attribute) -> None:
        base: cst.BaseExpression = node
        while isinstance(base, cst.Attribute):
            base = base.value
        if not isinstance(base, cst.Name) or base.value not in self.targets:
            return
        line = self.get_metadata(PositionProvider, node).start.line
        for qname in self.get_metadata(QualifiedNameProvider, node, set()):
            if qname.source is QualifiedNameSource.IMPORT and root_of(qname.name):
                self.reads[base.value].append((line, qname.name))

    def visit_Name(self, node: cst.Name) -> None:
        self._read(node)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._read(node)


class Rewriter(cst.CSTTransformer):
    """Second pass: rewrite what can be, and list in ``left`` what cannot."""

    METADATA_DEPENDENCIES = (QualifiedNameProvider, PositionProvider)

    def __init__(self, bindings: Bindings) -> None:
        super().__init__()
        self.left: list[Left] = []
        self._reads = bindings.reads
        self._ok: set[str] = set()  # local names whose imports are rewritten
        for local, names in bindings.targets.items():
            plain = local in bindings.plain
            if all(self._exists(n, plain=plain) for n in names) and all(
                    dotted_target(n) is not None for _, n in bindings.reads[local]):
                self._ok.add(local)
        self._strings: set[int] = set()  # ids of string literals naming a patch target
        self._plugins = 0

    @staticmethod
    def _exists(name: str, *, plain: bool) -> bool:
        if module_target(name, moved=not plain) is not None:
            return True
        module, _, attr = name.rpartition(".")
        target = module_target(module) if module else None
        return target is not None and name_exists(target, attr)

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def _leave(self, node: cst.CSTNode, names: list[str]) -> None:
        line = self._line(node)
        # The first missing part only: celery.bootsteps, not also celery.bootsteps.Step.
        self.left.extend(Left(line, name) for name in names
                         if not any(name.startswith(other + ".") for other in names))

    # -- imports --------------------------------------------------------------------------

    def leave_Import(self, original_node: cst.Import, updated_node: cst.Import) -> cst.Import:
        aliases = []
        for alias in updated_node.names:
            name = dotted(alias.name)
            if name is None or root_of(name) is None:
                aliases.append(alias)
                continue
            plain = alias.asname is None
            local = name.split(".", 1)[0] if plain else dotted(alias.asname.name)  # type: ignore[union-attr]
            target = module_target(name, moved=not plain)
            if local in self._ok and target is not None:
                alias = alias.with_changes(name=cst.parse_expression(target))
            else:
                self._leave(original_node, self._missing(name, local, plain=plain))
            aliases.append(alias)
        return updated_node.with_changes(names=aliases)

    def _missing(self, name: str, local: str | None, *, plain: bool) -> list[str]:
        missing = [] if self._exists(name, plain=plain) else [name]
        reads = self._reads.get(local or "", [])
        return missing + sorted({n for _, n in reads if dotted_target(n) is None})

    def leave_ImportFrom(self, original_node: cst.ImportFrom,
                         updated_node: cst.ImportFrom) -> cst.ImportFrom:
        module = None if original_node.relative or original_node.module is None \
            else dotted(original_node.module)
        if module is None or root_of(module) is None:
            return updated_node
        target = module_target(module)
        if isinstance(original_node.names, cst.ImportStar):
            if target is None:
                self._leave(original_node, [module])
                return updated_node
            return updated_node.with_changes(module=cst.parse_expression(target))
        locals_ = [(a.asname.name if a.asname else a.name) for a in original_node.names]
        names = [n.value for n in locals_ if isinstance(n, cst.Name)]
        if target is not None and all(n in self._ok for n in names):
            return updated_node.with_changes(module=cst.parse_expression(target))
        missing: list[str] = []
        for alias, local in zip(original_node.names, names, strict=False):
            full = f"{module}.{dotted(alias.name)}"
            missing += [full] if not self._exists(full, plain=False) else []
            missing += sorted({n for _, n in self._reads.get(local, [])
                               if dotted_target(n) is None and n != full})
        self._leave(original_node, missing or [module])
        return updated_node

    # -- names bound by `import celery` ---------------------------------------------------

    def leave_Name(self, original_node: cst.Name,
                   updated_node: cst.Name) -> cst.BaseExpression:
        root = original_node.value
        if root not in ROOTS or root not in self._ok:
            return updated_node
        qnames = self.get_metadata(QualifiedNameProvider, original_node, set())
        if any(q.source is QualifiedNameSource.IMPORT and q.name == root for q in qnames):
            return cst.parse_expression(ROOTS[root])
        return updated_node

    # -- string targets: mock.patch("celery..."), monkeypatch.setattr, pytest_plugins ------

    def visit_Call(self, node: cst.Call) -> None:
        if _callee(node) in _PATCHERS and node.args:
            first = node.args[0].value
            if isinstance(first, cst.SimpleString):
                self._strings.add(id(first))

    def visit_Assign(self, node: cst.Assign) -> None:
        if any(isinstance(t.target, cst.Name) and t.target.value == "pytest_plugins"
               for t in node.targets):
            self._plugins += 1

    def leave_Assign(self, original_node: cst.Assign, updated_node: cst.Assign) -> cst.Assign:
        if any(isinstance(t.target, cst.Name) and t.target.value == "pytest_plugins"
               for t in original_node.targets):
            self._plugins -= 1
        return updated_node

    def leave_SimpleString(self, original_node: cst.SimpleString,
                           updated_node: cst.SimpleString) -> cst.SimpleString:
        if not (self._plugins or id(original_node) in self._strings):
            return updated_node
        name = _string_target(original_node)
        if name is None:
            return updated_node
        target = dotted_target(name)
        if target is None:
            self._leave(original_node, [name])
            return updated_node
        quote = original_node.quote
        return updated_node.with_changes(value=f"{original_node.prefix}{quote}{target}{quote}")
