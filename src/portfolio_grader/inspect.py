"""inspect: static facts about a repository, read without running anything from it."""

from __future__ import annotations

import codecs
import json
import os
import re
from pathlib import Path
from typing import Literal

import yaml

from .manifest import read_manifest
from .models import Manifest, RepoFacts

MANIFEST_NAMES = ("portfolio-grader.yaml", "portfolio-grader.yml")
_IGNORED_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", "dist", "build", ".tox", "site-packages"}
_MAX_FILES = 5000
_MAX_SOURCE_BYTES = 512 * 1024
_README_BYTES = 64 * 1024

_FRAMEWORKS = {
    "python": ["fastapi", "flask", "django", "djangorestframework", "starlette", "litestar", "sanic", "aiohttp"],
    "node": ["express", "@nestjs/core", "fastify", "koa", "hapi", "@hapi/hapi", "hono"],
}
_PY_ROUTE = re.compile(
    r"@\s*(?P<obj>\w+)\s*\.\s*(?P<verb>get|post|put|patch|delete|route|api_route)\s*\(\s*[rfb]?(?P<q>['\"])(?P<path>[^'\"]*)(?P=q)(?P<rest>[^\n]*)"
)
_JS_ROUTE = re.compile(
    r"\b(?P<obj>app|router|\w+Router|server|api)\s*\.\s*(?P<verb>get|post|put|patch|delete|all)\s*\(\s*(?P<q>['\"`])(?P<path>/[^'\"`]*)(?P=q)"
)
_METHODS_ARG = re.compile(r"methods\s*=\s*[\[(]([^\])]*)[\])]")
_ROUTER_PREFIX = re.compile(r"(?P<var>\w+)\s*=\s*(?:APIRouter|Blueprint)\s*\((?P<args>[^)]*)\)")
_PREFIX_ARG = re.compile(r"(?:prefix|url_prefix)\s*=\s*['\"]([^'\"]*)['\"]")


def inspect_repo(root: Path) -> RepoFacts:
    files = _list_files(root)
    names = {f.lower(): f for f in files}

    dockerfile = _first(files, lambda f: f == "Dockerfile") or _first(
        files, lambda f: os.path.basename(f) == "Dockerfile" and f.count("/") <= 2)
    compose = _first(files, lambda f: f in ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"))
    manifest, manifest_error = _read_manifest(root, files)
    readme = _first(files, lambda f: "/" not in f and f.lower().split(".")[0] == "readme")
    stack, frameworks = _stack(root, names)

    return RepoFacts(
        root=root,
        stack=stack,
        frameworks=frameworks,
        dockerfile=dockerfile,
        compose_file=compose,
        exposed_ports=_exposed_ports(root / dockerfile) if dockerfile else [],
        spec_files=[f for f in files if _looks_like_spec_file(root, f)],
        readme=readme,
        readme_text=read_text(root / readme, _README_BYTES) if readme else "",
        test_paths=sorted({_test_root(f) for f in files if _is_test_file(f)})[:20],
        ci_configs=[f for f in files if f.startswith((".github/workflows/", ".circleci/"))
                    or f in (".gitlab-ci.yml", "Jenkinsfile", "azure-pipelines.yml", ".travis.yml")],
        manifest=manifest,
        manifest_error=manifest_error,
        routes_in_code=_routes_in_code(root, files) + _operation_id_routes(root, files) + _django_routes(root, files),
    )


def _list_files(root: Path) -> list[str]:
    out: list[str] = []
    for dirpath, dirs, filenames in os.walk(root):  # os.walk does not follow symlinked folders
        dirs[:] = sorted(d for d in dirs if d not in _IGNORED_DIRS)
        for name in sorted(filenames):
            out.append(os.path.relpath(os.path.join(dirpath, name), root))
            if len(out) >= _MAX_FILES:
                return out
    return out


def _first(files: list[str], predicate) -> str | None:
    return next((f for f in files if predicate(f)), None)


def read_text(path: Path, limit: int = _MAX_SOURCE_BYTES) -> str:
    """File text, bounded; never follows a link out of the repo."""
    try:
        if path.is_symlink():
            return ""
        with open(path, "rb") as handle:
            return decode(handle.read(limit))
    except OSError:
        return ""


def decode(data: bytes) -> str:
    """Text by its byte-order mark, as pip and editors read it (PowerShell's `pip freeze > requirements.txt`
    writes UTF-16), else UTF-8."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    return data.decode("utf-8", errors="replace")


def _read_manifest(root: Path, files: list[str]) -> tuple[Manifest | None, str | None]:
    name = next((n for n in MANIFEST_NAMES if n in files), None)
    if name is None:
        return None, None
    manifest, problems = read_manifest(read_text(root / name), name)
    return manifest, "; ".join(problems) or None


def _stack(root: Path, names: dict[str, str]) -> tuple[Literal["python", "node", "other", "unknown"], list[str]]:
    py_deps = " ".join(read_text(root / names[n]).lower() for n in
                       ("requirements.txt", "pyproject.toml", "pipfile", "setup.py", "setup.cfg") if n in names)
    if "package.json" in names:
        try:
            pkg = json.loads(read_text(root / names["package.json"]))
            deps = {**pkg.get("dependencies", {}), **pkg.get("devDependencies", {})}
        except (ValueError, AttributeError):
            deps = {}
        return "node", [f for f in _FRAMEWORKS["node"] if f in deps]
    if py_deps or any(n.endswith(".py") for n in names):
        return "python", [f for f in _FRAMEWORKS["python"] if re.search(rf"(^|[\s\"'\[]){re.escape(f)}\b", py_deps)]
    return ("other" if names else "unknown"), []


def _exposed_ports(dockerfile: Path) -> list[int]:
    ports: list[int] = []
    for line in read_text(dockerfile).splitlines():
        match = re.match(r"\s*EXPOSE\s+(.+)", line, re.IGNORECASE)
        if match:
            for token in match.group(1).split():
                number = token.split("/")[0]
                if number.isdigit() and 0 < int(number) < 65536 and int(number) not in ports:
                    ports.append(int(number))
    return ports


def _looks_like_spec_file(root: Path, rel: str) -> bool:
    base = os.path.basename(rel).lower()
    if not re.fullmatch(r"(openapi|swagger|api|api-spec|spec)[\w.-]*\.(ya?ml|json)", base) or rel.count("/") > 3:
        return False
    head = read_text(root / rel, 4096)
    return bool(re.search(r"""^\s*["']?(openapi|swagger)["']?\s*:""", head, re.MULTILINE))


def _is_test_file(rel: str) -> bool:
    parts = rel.lower().split("/")
    base = parts[-1]
    if any(p in ("tests", "test", "__tests__", "spec") for p in parts[:-1]) and base.endswith(
            (".py", ".js", ".ts", ".mjs", ".cjs", ".jsx", ".tsx", ".java", ".kt")):
        return True  # pytest's tests/, Django's <app>/tests/, Node's test/ and __tests__/, Java's src/test/
    # pytest, Django's <app>/tests.py, Jest/Vitest/Mocha, Go
    return bool(re.fullmatch(r"(test_.*\.py|.*_test\.py|tests?\.py|conftest\.py|.*\.(test|spec)\.(js|ts|mjs|cjs|jsx|tsx)|"
                             r".*_test\.go)", base))


def _test_root(rel: str) -> str:
    parts = rel.split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower() in ("tests", "test", "__tests__", "spec"):
            return "/".join(parts[: i + 1]) + "/"
    return rel


_DJANGO_PATH = re.compile(r"\b(?:re_)?path\s*\(\s*r?(?P<q>['\"])(?P<path>[^'\"]*)(?P=q)\s*,\s*(?P<view>[^\n]*)")
_DJANGO_INCLUDE = re.compile(r"include\s*\(\s*\(?\s*['\"](?P<module>[\w.]+)['\"]")
_DRF_REGISTER = re.compile(r"\.register\s*\(\s*r?['\"](?P<prefix>[^'\"]*)['\"]\s*,\s*(?P<viewset>\w+)")
# what a DRF router serves for a viewset, by the viewset's base class: (method, on the item?)
_VIEWSET_ROUTES = {
    "ModelViewSet": [("GET", False), ("POST", False), ("GET", True), ("PUT", True), ("PATCH", True), ("DELETE", True)],
    "ReadOnlyModelViewSet": [("GET", False), ("GET", True)],
}


def _django_routes(root: Path, files: list[str]) -> list[tuple[str, str, str]]:
    """Routes of a Django project: `path(...)` in each urls.py under the prefix that includes it, and the routes
    a DRF router makes for each registered viewset (its methods by its base class; any method when unknown)."""
    urls = [f for f in files if f.rsplit("/", 1)[-1] == "urls.py" and not _is_test_file(f)]
    if not urls:
        return []
    texts = {rel: read_text(root / rel) for rel in urls}
    prefixes: dict[str, str] = {}  # urls module file -> the prefix the project mounts it under
    for rel, text in texts.items():
        for match in _DJANGO_PATH.finditer(text):
            included = _DJANGO_INCLUDE.search(match.group("view"))
            if included:
                prefixes[included.group("module").replace(".", "/") + ".py"] = match.group("path")
    bases = {m.group(1): m.group(2) for f in files if f.endswith(".py") and not _is_test_file(f)
             for m in re.finditer(r"class\s+(\w+)\s*\(\s*(?:\w+\.)*(\w+)", read_text(root / f))}
    routes = []
    for rel, text in texts.items():
        prefix = "/" + _mounted_prefix(rel, prefixes).strip("/")
        for match in _DJANGO_PATH.finditer(text):
            if _DJANGO_INCLUDE.search(match.group("view")) or "admin.site" in match.group("view"):
                continue  # a mount point (its module's routes carry the prefix), or Django's own admin site
            path = _join(prefix, match.group("path").lstrip("^").rstrip("$"))
            routes.append(("*", path, f"{rel}:{text.count(chr(10), 0, match.start()) + 1}"))
        for match in _DRF_REGISTER.finditer(text):
            where = f"{rel}:{text.count(chr(10), 0, match.start()) + 1}"
            collection = _join(prefix, match.group("prefix"))
            item = _join(collection, "{pk}")
            plan = _VIEWSET_ROUTES.get(bases.get(match.group("viewset"), ""), [("*", False), ("*", True)])
            routes += [(method, (item if on_item else collection), where) for method, on_item in plan]
    return routes


def _mounted_prefix(rel: str, prefixes: dict[str, str]) -> str:
    for module, prefix in prefixes.items():
        if rel == module or rel.endswith("/" + module):
            return prefix
    return ""


def _join(prefix: str, path: str) -> str:
    return "/" + "/".join(p for p in (prefix.strip("/"), path.strip("/")) if p) + "/"


_SPEC_FIRST = re.compile(r"\bconnexion\b[\s\S]*\.add_api\s*\(|\.add_api\s*\([\s\S]*\bconnexion\b")


def _operation_id_routes(root: Path, files: list[str]) -> list[tuple[str, str, str]]:
    """Routes of a spec-first app (connexion: the document routes each operation to the function its dotted
    operationId names): an operation counts as implemented where that function is defined in the repo."""
    sources = [f for f in files if f.endswith(".py") and not _is_test_file(f)]
    if not any(_SPEC_FIRST.search(read_text(root / f)) for f in sources):
        return []
    routes = []
    for rel in (f for f in files if _looks_like_spec_file(root, f)):
        try:
            spec = yaml.safe_load(read_text(root / rel))
        except yaml.YAMLError:
            continue
        for path, item in ((spec or {}).get("paths") or {}).items() if isinstance(spec, dict) else ():
            for method, op in (item or {}).items() if isinstance(item, dict) else ():
                target = op.get("operationId") if isinstance(op, dict) else None
                where = _defined_at(root, str(target)) if target and "." in str(target) else None
                if where and method.lower() in ("get", "post", "put", "patch", "delete"):
                    routes.append((method.upper(), str(path), where))
    return routes


def _defined_at(root: Path, dotted: str) -> str | None:
    """"file:line" of the function `pkg.module.func` (or `module.Class.method`) in the repo, None when absent."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        rel = "/".join(parts[:cut]) + ".py"
        if (root / rel).is_file():
            text = read_text(root / rel)
            match = re.search(rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(parts[-1])}\s*\(", text, re.M)
            return f"{rel}:{text.count(chr(10), 0, match.start()) + 1}" if match else None
    return None


def _routes_in_code(root: Path, files: list[str]) -> list[tuple[str, str, str]]:
    """Routes declared in Python (FastAPI, Flask) and JavaScript/TypeScript (Express-like) sources."""
    routes: list[tuple[str, str, str]] = []
    for rel in files:
        if rel.endswith(".py"):
            pattern = _PY_ROUTE
        elif rel.endswith((".js", ".ts", ".mjs", ".cjs")) and not rel.endswith((".test.js", ".spec.js", ".test.ts", ".spec.ts")):
            pattern = _JS_ROUTE
        else:
            continue
        if _is_test_file(rel):
            continue
        text = read_text(root / rel)
        prefixes = {m.group("var"): prefix.group(1) if (prefix := _PREFIX_ARG.search(m.group("args"))) else ""
                    for m in _ROUTER_PREFIX.finditer(text)}
        for match in pattern.finditer(text):
            verb = match.group("verb").upper()
            methods = [verb]
            if verb in ("ROUTE", "API_ROUTE"):
                found = _METHODS_ARG.search(match.groupdict().get("rest") or "")
                methods = re.findall(r"[A-Za-z]+", found.group(1)) if found else ["GET"]
            elif verb == "ALL":
                methods = ["*"]
            path = prefixes.get(match.group("obj"), "") + match.group("path")
            line = text.count("\n", 0, match.start()) + 1
            for method in methods:
                routes.append((method.upper(), path or "/", f"{rel}:{line}"))
    return routes
